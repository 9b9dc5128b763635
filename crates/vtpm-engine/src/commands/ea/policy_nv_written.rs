//! TPM2_PolicyNvWritten (Part 3 §23.24): the policy authorizes an NV
//! index only when its TPMA_NV_WRITTEN is writtenSet (e.g. a write-once
//! index). policyDigest ≔ H(policyDigest || TPM_CC_PolicyNvWritten ||
//! writtenSet). A conflicting earlier setting is TPM_RC_VALUE.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::read_yes_no;

/// TPM2_PolicyNvWritten.
pub struct PolicyNvWritten;

impl Command for PolicyNvWritten {
    /// writtenSet (TPMI_YES_NO).
    type In = bool;

    fn read(p: &mut Params<'_>) -> Result<bool, TpmRc> {
        p.with(read_yes_no)
    }

    fn action(tpm: &mut Tpm, call: &Call, written: bool, _out: &mut Output) -> Result<(), TpmRc> {
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        if session.nv_written.is_some_and(|w| w != written) {
            return Err(TpmRc::VALUE.with_parameter(1));
        }
        session.policy_update(CommandCode::PolicyNvWritten.0, &[u8::from(written)], None);
        session.nv_written = Some(written);
        Ok(())
    }
}
