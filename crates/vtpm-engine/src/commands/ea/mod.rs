//! Part 3 §23 "Enhanced Authorization (EA) Commands": policy commands that
//! extend a policy (or trial) session's policyDigest and record the
//! conditions the authorized command must then meet.

pub mod policy_auth_value;
pub mod policy_authorize;
pub mod policy_command_code;
pub mod policy_cp_hash;
pub mod policy_get_digest;
pub mod policy_locality;
pub mod policy_name_hash;
pub mod policy_or;
pub mod policy_password;
pub mod policy_pcr;
pub mod policy_restart;
pub mod policy_secret;

use crate::Tpm;
use crate::session::Session;
use vtpm_wire::rc::TpmRc;

impl Tpm {
    /// The policy or trial session at `h` (the command's TPMI_SH_POLICY
    /// handle, already checked to be loaded).
    pub(crate) fn policy_session_mut(&mut self, h: u32, n: usize) -> Result<&mut Session, TpmRc> {
        self.v
            .sessions
            .get_mut(h)
            .ok_or(TpmRc::REFERENCE_H0.plus(n.saturating_sub(1)))
    }
}
