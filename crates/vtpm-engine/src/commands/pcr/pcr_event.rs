//! TPM2_PCR_Event (Part 3 §22.3).

use super::extendable_pcr;
use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{DigestValues, Event, Ha};

/// TPM2_PCR_Event.
pub struct PcrEvent;

impl Command for PcrEvent {
    /// eventData.
    type In = Event;

    fn read(p: &mut Params<'_>) -> Result<Event, TpmRc> {
        p.read()
    }

    fn action(tpm: &mut Tpm, call: &Call, event: Event, out: &mut Output) -> Result<(), TpmRc> {
        let pcr = extendable_pcr(call.handles[0], call.locality)?;
        // One digest per implemented algorithm; allocated banks are extended.
        let mut digests = DigestValues::default();
        for alg in HashAlg::ALL {
            let digest = alg.digest(&[event.as_bytes()]);
            if let Some(n) = pcr {
                tpm.pcr_extend(n, alg, &digest);
            }
            digests.0.push(Ha {
                alg: alg.alg(),
                digest,
            });
        }
        if let Some(n) = pcr {
            tpm.pcr_changed(n);
        }
        out.params.write(&digests);
        Ok(())
    }
}
