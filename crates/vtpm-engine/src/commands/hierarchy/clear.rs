//! TPM2_Clear (Part 3 §24.6): removes everything of the Owner. The storage
//! primary seed, shProof and ehProof change (the endorsement primary seed
//! does not: the EK stays); the owner's and the endorsement hierarchy's
//! objects, persistent objects and owner NV indices are gone; ownerAuth,
//! endorsementAuth, lockoutAuth and their policies are empty; both
//! hierarchies are enabled; the dictionary-attack parameters return to
//! their defaults; Clock, resetCount and restartCount are zero.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::state::{DaState, HierarchyPolicy};
use vtpm_wire::constants::handle;
use vtpm_wire::rc::TpmRc;
use zeroize::Zeroize;

/// TPM2_Clear.
pub struct Clear;

impl Command for Clear {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, _call: &Call, _input: (), _out: &mut Output) -> Result<(), TpmRc> {
        if tpm.nv.disable_clear {
            return Err(TpmRc::DISABLED);
        }
        // New storage primary seed, shProof and ehProof.
        tpm.renew_secret(|t| &mut t.nv.sps);
        tpm.renew_secret(|t| &mut t.nv.sh_proof);
        tpm.renew_secret(|t| &mut t.nv.eh_proof);
        tpm.primary_cache.clear();

        tpm.v.sh_enable = true;
        tpm.v.eh_enable = true;

        tpm.nv.owner_auth.zeroize();
        tpm.nv.endorsement_auth.zeroize();
        tpm.nv.lockout_auth.zeroize();
        tpm.nv.owner_policy = HierarchyPolicy::default();
        tpm.nv.endorsement_policy = HierarchyPolicy::default();
        tpm.nv.lockout_policy = HierarchyPolicy::default();

        tpm.flush_hierarchy_objects(handle::RH_OWNER);
        tpm.flush_hierarchy_objects(handle::RH_ENDORSEMENT);
        tpm.nv_flush_hierarchy(handle::RH_OWNER);
        tpm.nv_flush_hierarchy(handle::RH_ENDORSEMENT);

        tpm.nv.da = DaState::manufacturer_default();
        tpm.nv.lockout_auth_enabled = true;

        tpm.reset_clock();
        tpm.nv.reset_count = 0;
        tpm.nv.restart_count = 0;

        // The PCRs are unchanged, but pcrUpdateCounter moves.
        tpm.v.pcr_counter = tpm.v.pcr_counter.wrapping_add(1);
        tpm.mark_nv_dirty();
        Ok(())
    }
}
