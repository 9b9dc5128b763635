//! TPM2_ChangeEPS (Part 3 §24.3): a new endorsement primary seed and
//! ehProof (a new EK); endorsementAuth and endorsementPolicy are emptied,
//! the endorsement hierarchy is enabled, and its loaded and persistent
//! objects are gone.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::state::HierarchyPolicy;
use vtpm_wire::constants::handle;
use vtpm_wire::rc::TpmRc;
use zeroize::Zeroize;

/// TPM2_ChangeEPS.
pub struct ChangeEps;

impl Command for ChangeEps {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, _call: &Call, _input: (), _out: &mut Output) -> Result<(), TpmRc> {
        tpm.renew_secret(|t| &mut t.nv.eps);
        tpm.renew_secret(|t| &mut t.nv.eh_proof);
        tpm.primary_cache.clear();
        tpm.v.eh_enable = true;
        tpm.nv.endorsement_auth.zeroize();
        tpm.nv.endorsement_policy = HierarchyPolicy::default();
        tpm.flush_hierarchy_objects(handle::RH_ENDORSEMENT);
        tpm.nv_flush_hierarchy(handle::RH_ENDORSEMENT);
        tpm.mark_nv_dirty();
        Ok(())
    }
}
