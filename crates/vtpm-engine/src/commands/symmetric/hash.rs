//! TPM2_Hash (Part 3 §15.4).

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use crate::tickets::null_hashcheck;
use vtpm_wire::constants::TPM_GENERATED_VALUE;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Digest, MaxBuffer, read_hash_alg, read_hierarchy};

/// TPM2_Hash.
pub struct Hash;

/// TPM2_Hash parameters.
pub struct HashIn {
    data: MaxBuffer,
    hash_alg: HashAlg,
    hierarchy: u32,
}

impl Command for Hash {
    type In = HashIn;

    fn read(p: &mut Params<'_>) -> Result<HashIn, TpmRc> {
        let data = p.read()?;
        let alg = p.with(|r| read_hash_alg(r, false))?;
        let hash_alg = HashAlg::from_alg(alg).ok_or(TpmRc::HASH.with_parameter(2))?;
        let hierarchy = p.with(|r| read_hierarchy(r, true))?;
        Ok(HashIn {
            data,
            hash_alg,
            hierarchy,
        })
    }

    fn action(tpm: &mut Tpm, _call: &Call, input: HashIn, out: &mut Output) -> Result<(), TpmRc> {
        if !tpm.hierarchy_enabled(input.hierarchy) {
            return Err(TpmRc::HIERARCHY.with_parameter(3));
        }
        let digest = input.hash_alg.digest(&[input.data.as_bytes()]);
        // No ticket for data that could be a TPM-generated structure.
        let generated = input
            .data
            .as_bytes()
            .starts_with(&TPM_GENERATED_VALUE.to_be_bytes());
        let ticket = if generated {
            null_hashcheck()
        } else {
            tpm.hashcheck_ticket(input.hierarchy, input.hash_alg.alg(), &digest)
        };
        out.params.write(&Digest::new(&digest).unwrap_or_default());
        out.params.write(&ticket);
        Ok(())
    }
}
