//! TPM2_GetTestResult (Part 3 §10.4).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::MaxBuffer;

/// TPM2_GetTestResult.
pub struct GetTestResult;

impl Command for GetTestResult {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, _call: &Call, _in: (), out: &mut Output) -> Result<(), TpmRc> {
        // outData: vendor-specific; we put the failure reason in it.
        let (data, rc) = match &tpm.failure {
            Some(why) => (
                why.as_bytes().get(..256).unwrap_or(why.as_bytes()).to_vec(),
                TpmRc::FAILURE,
            ),
            None if !tpm.v.self_tested => (Vec::new(), TpmRc::NEEDS_TEST),
            None => (Vec::new(), TpmRc::SUCCESS),
        };
        out.params.write(&MaxBuffer::new(&data).unwrap_or_default());
        out.params.u32(rc.0);
        Ok(())
    }
}
