//! TPM2_SetPrimaryPolicy (Part 3 §24.4): sets the authPolicy of the owner,
//! endorsement, platform or lockout hierarchy. platformPolicy is volatile
//! (gone at the next TPM Reset); the others are kept in NV.

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use crate::state::HierarchyPolicy;
use vtpm_wire::constants::{AlgId, handle};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Digest, read_hash_alg};

/// TPM2_SetPrimaryPolicy.
pub struct SetPrimaryPolicy;

/// Parameters: authPolicy and hashAlg (TPMI_ALG_HASH+).
pub struct SetPrimaryPolicyIn {
    auth_policy: Digest,
    hash_alg: AlgId,
}

impl Command for SetPrimaryPolicy {
    type In = SetPrimaryPolicyIn;

    fn read(p: &mut Params<'_>) -> Result<SetPrimaryPolicyIn, TpmRc> {
        let auth_policy = p.read()?;
        let hash_alg = p.with(|r| read_hash_alg(r, true))?;
        Ok(SetPrimaryPolicyIn {
            auth_policy,
            hash_alg,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: SetPrimaryPolicyIn,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        // The policy is a digest of hashAlg (empty with TPM_ALG_NULL).
        let size = HashAlg::from_alg(input.hash_alg).map_or(0, HashAlg::size);
        if input.auth_policy.len() != size {
            return Err(TpmRc::SIZE.with_parameter(1));
        }
        let policy = HierarchyPolicy {
            alg: input.hash_alg.0,
            digest: input.auth_policy.as_bytes().to_vec(),
        };
        match call.handles[0] {
            handle::RH_OWNER => tpm.nv.owner_policy = policy,
            handle::RH_ENDORSEMENT => tpm.nv.endorsement_policy = policy,
            handle::RH_LOCKOUT => tpm.nv.lockout_policy = policy,
            handle::RH_PLATFORM => {
                tpm.v.platform_policy = policy;
                return Ok(());
            }
            _ => return Err(TpmRc::VALUE.with_handle(1)),
        }
        tpm.mark_nv_dirty();
        Ok(())
    }
}
