//! TPM2_PCR_Extend (Part 3 §22.2).

use super::extendable_pcr;
use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::DigestValues;

/// TPM2_PCR_Extend.
pub struct PcrExtend;

impl Command for PcrExtend {
    /// digests.
    type In = DigestValues;

    fn read(p: &mut Params<'_>) -> Result<DigestValues, TpmRc> {
        p.read()
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        digests: DigestValues,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let Some(n) = extendable_pcr(call.handles[0], call.locality)? else {
            return Ok(());
        };
        for d in &digests.0 {
            if let Some(alg) = HashAlg::from_alg(d.alg) {
                tpm.pcr_extend(n, alg, &d.digest);
            }
        }
        tpm.pcr_changed(n);
        Ok(())
    }
}
