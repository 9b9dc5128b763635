//! TPM2_ChangeEPS (Part 3 §24.3): a new endorsement primary seed and
//! ehProof (a new EK); endorsementAuth and endorsementPolicy are emptied,
//! the endorsement hierarchy is enabled, and its loaded and persistent
//! objects are gone.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::state::{HierarchyPolicy, PROOF_SIZE, SEED_SIZE};
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
        let mut seed = [0u8; SEED_SIZE];
        tpm.random(&mut seed);
        tpm.nv.eps.zeroize();
        tpm.nv.eps = seed;
        seed.zeroize();
        let mut proof = [0u8; PROOF_SIZE];
        tpm.random(&mut proof);
        tpm.nv.eh_proof.zeroize();
        tpm.nv.eh_proof = proof;
        proof.zeroize();
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
