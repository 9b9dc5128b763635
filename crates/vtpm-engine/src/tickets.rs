//! Tickets (Part 1 "Tickets", Part 2 TPMT_TK_*): HMACs under a hierarchy's
//! proof that let the TPM recognise what it produced earlier.

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use vtpm_wire::constants::{AlgId, StructureTag, handle};
use vtpm_wire::types::{Digest, TkHashcheck};

/// The context integrity hash (TPM_PT_CONTEXT_HASH): used for tickets.
pub const CONTEXT_INTEGRITY_HASH: HashAlg = HashAlg::Sha512;

/// A NULL TPMT_TK_HASHCHECK.
pub fn null_hashcheck() -> TkHashcheck {
    TkHashcheck {
        tag: StructureTag::HASHCHECK,
        hierarchy: handle::RH_NULL,
        digest: Digest::empty(),
    }
}

impl Tpm {
    /// TPMT_TK_HASHCHECK for `digest`: hmac ≔ HMAC_contextAlg(proof,
    /// (TPM_ST_HASHCHECK || hashAlg || digest)). A NULL ticket for the NULL
    /// hierarchy.
    pub(crate) fn hashcheck_ticket(
        &self,
        hierarchy: u32,
        hash_alg: AlgId,
        digest: &[u8],
    ) -> TkHashcheck {
        if hierarchy == handle::RH_NULL {
            return null_hashcheck();
        }
        let Some(proof) = self.hierarchy_proof(hierarchy) else {
            return null_hashcheck();
        };
        let hmac = CONTEXT_INTEGRITY_HASH.hmac(
            proof,
            &[
                &StructureTag::HASHCHECK.0.to_be_bytes(),
                &hash_alg.0.to_be_bytes(),
                digest,
            ],
        );
        TkHashcheck {
            tag: StructureTag::HASHCHECK,
            hierarchy,
            digest: Digest::new(&hmac).unwrap_or_default(),
        }
    }
}
