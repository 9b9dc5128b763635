//! TPM2_Clear (Part 3 §24.6): removes everything of the Owner. The storage
//! primary seed, shProof and ehProof change (the endorsement primary seed
//! does not: the EK stays); the owner's and the endorsement hierarchy's
//! objects, persistent objects and owner NV indices are gone; ownerAuth,
//! endorsementAuth, lockoutAuth and their policies are empty; both
//! hierarchies are enabled; the dictionary-attack parameters return to
//! their defaults; Clock, resetCount and restartCount are zero.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::state::{DaState, HierarchyPolicy, PROOF_SIZE, SEED_SIZE};
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
        let mut sps = [0u8; SEED_SIZE];
        tpm.random(&mut sps);
        tpm.nv.sps.zeroize();
        tpm.nv.sps = sps;
        sps.zeroize();
        for which in [handle::RH_OWNER, handle::RH_ENDORSEMENT] {
            let mut proof = [0u8; PROOF_SIZE];
            tpm.random(&mut proof);
            let slot = if which == handle::RH_OWNER {
                &mut tpm.nv.sh_proof
            } else {
                &mut tpm.nv.eh_proof
            };
            slot.zeroize();
            *slot = proof;
            proof.zeroize();
        }
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
