//! TPM2_PolicyAuthValue (Part 3 §23.17): the authorization must also
//! prove the entity's authValue with its HMAC (the session's HMAC key then
//! includes the authValue). policyDigest ≔ H(policyDigest ||
//! TPM_CC_PolicyAuthValue).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;

/// TPM2_PolicyAuthValue.
pub struct PolicyAuthValue;

impl Command for PolicyAuthValue {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), _out: &mut Output) -> Result<(), TpmRc> {
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        session.policy_update(CommandCode::PolicyAuthValue.0, &[], None);
        session.auth_value_needed = true;
        session.password_needed = false;
        Ok(())
    }
}
