//! TPM2_ChangePPS (Part 3 §24.2): a new platform primary seed and
//! phProof; platformPolicy is emptied, and the platform hierarchy's loaded
//! and persistent objects are gone (its NV indices stay).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::state::HierarchyPolicy;
use vtpm_wire::constants::handle;
use vtpm_wire::rc::TpmRc;

/// TPM2_ChangePPS.
pub struct ChangePps;

impl Command for ChangePps {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, _call: &Call, _input: (), _out: &mut Output) -> Result<(), TpmRc> {
        tpm.renew_secret(|t| &mut t.nv.pps);
        tpm.renew_secret(|t| &mut t.nv.ph_proof);
        tpm.primary_cache.clear();
        tpm.v.platform_policy = HierarchyPolicy::default();
        tpm.flush_hierarchy_objects(handle::RH_PLATFORM);
        tpm.nv_flush_hierarchy(handle::RH_PLATFORM);
        tpm.mark_nv_dirty();
        Ok(())
    }
}
