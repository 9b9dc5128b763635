//! TPM2_ChangePPS (Part 3 §24.2): a new platform primary seed and
//! phProof; platformPolicy is emptied, and the platform hierarchy's loaded
//! and persistent objects are gone (its NV indices stay).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::state::{HierarchyPolicy, PROOF_SIZE, SEED_SIZE};
use vtpm_wire::constants::handle;
use vtpm_wire::rc::TpmRc;
use zeroize::Zeroize;

/// TPM2_ChangePPS.
pub struct ChangePps;

impl Command for ChangePps {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, _call: &Call, _input: (), _out: &mut Output) -> Result<(), TpmRc> {
        let mut seed = [0u8; SEED_SIZE];
        tpm.random(&mut seed);
        tpm.nv.pps.zeroize();
        tpm.nv.pps = seed;
        seed.zeroize();
        let mut proof = [0u8; PROOF_SIZE];
        tpm.random(&mut proof);
        tpm.nv.ph_proof.zeroize();
        tpm.nv.ph_proof = proof;
        proof.zeroize();
        tpm.primary_cache.clear();
        tpm.v.platform_policy = HierarchyPolicy::default();
        tpm.flush_hierarchy_objects(handle::RH_PLATFORM);
        tpm.nv_flush_hierarchy(handle::RH_PLATFORM);
        tpm.mark_nv_dirty();
        Ok(())
    }
}
