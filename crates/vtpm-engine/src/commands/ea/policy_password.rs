//! TPM2_PolicyPassword (Part 3 §23.18): the authorization must also give
//! the entity's authValue, in clear in its hmac field. The policyDigest is
//! the one of TPM2_PolicyAuthValue: H(policyDigest ||
//! TPM_CC_PolicyAuthValue), so either proof meets the same policy.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;

/// TPM2_PolicyPassword.
pub struct PolicyPassword;

impl Command for PolicyPassword {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), _out: &mut Output) -> Result<(), TpmRc> {
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        session.policy_update(CommandCode::PolicyAuthValue.0, &[], None);
        session.password_needed = true;
        session.auth_value_needed = false;
        Ok(())
    }
}
