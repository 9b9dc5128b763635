//! TPM2_PolicyGetDigest (Part 3 §23.19): a policy or trial session's
//! current policyDigest.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;

/// TPM2_PolicyGetDigest.
pub struct PolicyGetDigest;

impl Command for PolicyGetDigest {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), out: &mut Output) -> Result<(), TpmRc> {
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        let digest = session.policy_digest.clone();
        out.params.sized_u16(|w| w.bytes(&digest));
        Ok(())
    }
}
