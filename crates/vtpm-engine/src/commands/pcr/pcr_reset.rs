//! TPM2_PCR_Reset (Part 3 §22.8).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::pcr;
use vtpm_wire::rc::TpmRc;

/// TPM2_PCR_Reset.
pub struct PcrReset;

impl Command for PcrReset {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), _out: &mut Output) -> Result<(), TpmRc> {
        let n = usize::try_from(call.handles[0]).map_err(|_| TpmRc::VALUE.with_handle(1))?;
        let attrs = pcr::attributes(n).ok_or(TpmRc::VALUE.with_handle(1))?;
        if !pcr::locality_allowed(attrs.reset_localities, call.locality) {
            return Err(TpmRc::LOCALITY);
        }
        tpm.pcr_reset_to_zero(n);
        tpm.pcr_changed(n);
        Ok(())
    }
}
