//! TPM2_PolicyCommandCode (Part 3 §23.11): the policy authorizes only one
//! command. policyDigest ≔ H(policyDigest || TPM_CC_PolicyCommandCode ||
//! code).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params, lookup};
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;

/// TPM2_PolicyCommandCode.
pub struct PolicyCommandCode;

impl Command for PolicyCommandCode {
    /// code.
    type In = u32;

    fn read(p: &mut Params<'_>) -> Result<u32, TpmRc> {
        p.with(|r| r.u32())
    }

    fn action(tpm: &mut Tpm, call: &Call, code: u32, _out: &mut Output) -> Result<(), TpmRc> {
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        if session.command_code.is_some_and(|c| c != code) {
            return Err(TpmRc::VALUE.with_parameter(1));
        }
        // Only a command this TPM implements can be authorized.
        if lookup(CommandCode(code)).is_none() {
            return Err(TpmRc::POLICY_CC.with_parameter(1));
        }
        session.policy_update(CommandCode::PolicyCommandCode.0, &code.to_be_bytes(), None);
        session.command_code = Some(code);
        Ok(())
    }
}
