//! TPM2_ClearControl (Part 3 §24.7): sets or clears disableClear.
//! lockoutAuth may only set it; platformAuth may do both.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::handle;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::read_yes_no;

/// TPM2_ClearControl.
pub struct ClearControl;

impl Command for ClearControl {
    /// disable (TPMI_YES_NO).
    type In = bool;

    fn read(p: &mut Params<'_>) -> Result<bool, TpmRc> {
        p.with(read_yes_no)
    }

    fn action(tpm: &mut Tpm, call: &Call, disable: bool, _out: &mut Output) -> Result<(), TpmRc> {
        if call.handles[0] == handle::RH_LOCKOUT && !disable {
            return Err(TpmRc::AUTH_FAIL);
        }
        if tpm.nv.disable_clear != disable {
            tpm.nv.disable_clear = disable;
            tpm.mark_nv_dirty();
        }
        Ok(())
    }
}
