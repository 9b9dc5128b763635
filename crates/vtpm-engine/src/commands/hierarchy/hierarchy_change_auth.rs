//! TPM2_HierarchyChangeAuth (Part 3 §24.8).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::tickets::CONTEXT_INTEGRITY_HASH;
use vtpm_wire::constants::handle;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Auth;
use zeroize::Zeroize;

/// TPM2_HierarchyChangeAuth.
pub struct HierarchyChangeAuth;

impl Command for HierarchyChangeAuth {
    /// newAuth.
    type In = Auth;

    fn read(p: &mut Params<'_>) -> Result<Auth, TpmRc> {
        p.read()
    }

    fn action(tpm: &mut Tpm, call: &Call, new_auth: Auth, _out: &mut Output) -> Result<(), TpmRc> {
        let b = new_auth.as_bytes();
        let end = b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
        let value = b.get(..end).unwrap_or(&[]).to_vec();
        // No longer than the digest of the context integrity hash.
        if value.len() > CONTEXT_INTEGRITY_HASH.size() {
            return Err(TpmRc::SIZE.with_parameter(1));
        }
        let slot = match call.handles[0] {
            handle::RH_OWNER => &mut tpm.nv.owner_auth,
            handle::RH_ENDORSEMENT => &mut tpm.nv.endorsement_auth,
            handle::RH_LOCKOUT => &mut tpm.nv.lockout_auth,
            // platformAuth is volatile: reset by every Startup(CLEAR).
            _ => &mut tpm.v.platform_auth,
        };
        slot.zeroize();
        *slot = value;
        if call.handles[0] != handle::RH_PLATFORM {
            tpm.mark_nv_dirty();
        }
        Ok(())
    }
}
