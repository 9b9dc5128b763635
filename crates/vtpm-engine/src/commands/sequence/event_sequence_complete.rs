//! TPM2_EventSequenceComplete (Part 3 §17.6).

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use crate::objects::Object;
use crate::pcr;
use vtpm_wire::constants::handle;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{DigestValues, Ha, MaxBuffer};

/// TPM2_EventSequenceComplete.
pub struct EventSequenceComplete;

impl Command for EventSequenceComplete {
    /// buffer.
    type In = MaxBuffer;

    fn read(p: &mut Params<'_>) -> Result<MaxBuffer, TpmRc> {
        p.read()
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        buffer: MaxBuffer,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let [pcr_handle, sequence, ..] = call.handles;
        if !matches!(
            tpm.v.objects.get(sequence),
            Some(Object::EventSequence { .. })
        ) {
            return Err(TpmRc::MODE.with_handle(2));
        }
        let pcr_index = usize::try_from(pcr_handle)
            .ok()
            .filter(|_| pcr_handle != handle::RH_NULL);
        if let Some(n) = pcr_index {
            let allowed = pcr::attributes(n)
                .is_some_and(|a| pcr::locality_allowed(a.extend_localities, call.locality));
            if !allowed {
                return Err(TpmRc::LOCALITY);
            }
        }
        let Some(Object::EventSequence { hashers, .. }) = tpm.v.objects.flush(sequence) else {
            return Err(TpmRc::MODE.with_handle(2));
        };
        let mut results = DigestValues::default();
        for (alg, mut h) in HashAlg::ALL.into_iter().zip(hashers) {
            h.update(buffer.as_bytes());
            let digest = h.finish();
            if let Some(n) = pcr_index {
                tpm.pcr_extend(n, alg, &digest);
            }
            results.0.push(Ha {
                alg: alg.alg(),
                digest,
            });
        }
        if let Some(n) = pcr_index {
            tpm.pcr_changed(n);
        }
        out.params.write(&results);
        Ok(())
    }
}
