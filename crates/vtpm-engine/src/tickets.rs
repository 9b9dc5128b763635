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

/// A ticket with an empty HMAC for the NULL hierarchy.
pub fn null_ticket(tag: StructureTag) -> vtpm_wire::object::Ticket {
    vtpm_wire::object::Ticket {
        tag,
        hierarchy: handle::RH_NULL,
        digest: Digest::empty(),
    }
}

impl Tpm {
    /// A ticket: HMAC_contextAlg(proof(hierarchy), tag || parts…); a NULL
    /// ticket for the NULL hierarchy.
    pub(crate) fn ticket(
        &self,
        tag: StructureTag,
        hierarchy: u32,
        parts: &[&[u8]],
    ) -> vtpm_wire::object::Ticket {
        if hierarchy == handle::RH_NULL {
            return null_ticket(tag);
        }
        let Some(proof) = self.hierarchy_proof(hierarchy) else {
            return null_ticket(tag);
        };
        let tag_bytes = tag.0.to_be_bytes();
        let mut all: Vec<&[u8]> = vec![&tag_bytes];
        all.extend_from_slice(parts);
        let hmac = CONTEXT_INTEGRITY_HASH.hmac(proof, &all);
        vtpm_wire::object::Ticket {
            tag,
            hierarchy,
            digest: Digest::new(&hmac).unwrap_or_default(),
        }
    }

    /// Checks a ticket made by [`Tpm::ticket`] (constant time).
    pub(crate) fn ticket_valid(&self, ticket: &vtpm_wire::object::Ticket, parts: &[&[u8]]) -> bool {
        use subtle::ConstantTimeEq;
        if ticket.hierarchy == handle::RH_NULL {
            return false;
        }
        let expected = self.ticket(ticket.tag, ticket.hierarchy, parts);
        let (a, b) = (expected.digest.as_bytes(), ticket.digest.as_bytes());
        !a.is_empty() && a.len() == b.len() && bool::from(a.ct_eq(b))
    }

    /// TPMT_TK_CREATION: HMAC(proof, TPM_ST_CREATION || Name || creationHash).
    pub(crate) fn creation_ticket(
        &self,
        hierarchy: u32,
        name: &[u8],
        creation_hash: &[u8],
    ) -> vtpm_wire::object::Ticket {
        self.ticket(StructureTag::CREATION, hierarchy, &[name, creation_hash])
    }
}
