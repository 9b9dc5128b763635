//! TPM2_PolicyRestart (Part 3 §23.20): the session's policy starts over
//! (policyDigest zero, no conditions, a new start time).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;

/// TPM2_PolicyRestart.
pub struct PolicyRestart;

impl Command for PolicyRestart {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), _out: &mut Output) -> Result<(), TpmRc> {
        let now = tpm.time_ms();
        tpm.policy_session_mut(call.handles[0], 1)?
            .reset_policy(now);
        Ok(())
    }
}
