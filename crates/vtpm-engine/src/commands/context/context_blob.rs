//! Context protection (Part 1 §30, "Context Management"): a saved context
//! is encrypted and integrity-protected with keys only this TPM has, the
//! proof of the context's hierarchy.
//!
//! contextBlob ≔ integrity (TPM2B_DIGEST) || AES-256-CFB(sensitive), with
//! * symKey || iv ≔ KDFa(contextHash, proof, "CONTEXT", sequence, "", 256 + 128)
//! * integrity ≔ HMAC-contextHash(proof, resetCount || sequence || savedHandle
//!   || encrypted sensitive); resetCount makes every context die with a
//!   TPM Reset, as the null hierarchy's proof does.
//!
//! The sensitive part is this TPM's own format: the sequence number again
//! (a fingerprint), a kind octet and the kind's state.

use crate::Tpm;
use crate::crypto::kdf::kdfa;
use crate::crypto::sym::aes_cfb;
use crate::objects::Object;
use crate::tickets::CONTEXT_INTEGRITY_HASH;
use vtpm_wire::Unmarshal;
use vtpm_wire::codec::{Reader, Writer};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{ContextData, Digest};
use zeroize::Zeroizing;

/// Kind octets of the sensitive part.
const KIND_OBJECT: u8 = 1;
const KIND_SESSION: u8 = 3;

/// What a context holds.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Saved {
    /// A transient object.
    Object(Object),
    /// A session (its state stays in the TPM while saved).
    Session,
}

fn keys(proof: &[u8], sequence: u64) -> Zeroizing<Vec<u8>> {
    kdfa(
        CONTEXT_INTEGRITY_HASH,
        proof,
        b"CONTEXT",
        &sequence.to_be_bytes(),
        &[],
        256 + 128,
    )
}

fn integrity(
    proof: &[u8],
    reset_count: u32,
    sequence: u64,
    saved_handle: u32,
    encrypted: &[u8],
) -> Vec<u8> {
    CONTEXT_INTEGRITY_HASH.hmac(
        proof,
        &[
            &reset_count.to_be_bytes(),
            &sequence.to_be_bytes(),
            &saved_handle.to_be_bytes(),
            encrypted,
        ],
    )
}

/// Serializes what is saved: the sequence number (a fingerprint), a kind
/// octet and the object.
pub(crate) fn sensitive(sequence: u64, what: &Saved) -> Zeroizing<Vec<u8>> {
    let mut w = Writer::new();
    w.u64(sequence);
    match what {
        Saved::Session => w.u8(KIND_SESSION),
        Saved::Object(o) => {
            w.u8(KIND_OBJECT);
            o.write(&mut w);
        }
    }
    Zeroizing::new(w.into_vec())
}

fn parse_sensitive(sequence: u64, bytes: &[u8]) -> Option<Saved> {
    let mut r = Reader::new(bytes);
    if r.u64().ok()? != sequence {
        return None;
    }
    let saved = match r.u8().ok()? {
        KIND_SESSION => Saved::Session,
        KIND_OBJECT => Saved::Object(Object::read(&mut r)?),
        _ => return None,
    };
    r.finish().ok()?;
    Some(saved)
}

impl Tpm {
    /// Protects `sensitive` into a context blob.
    pub(crate) fn seal_context(
        &self,
        hierarchy: u32,
        sequence: u64,
        saved_handle: u32,
        sensitive: &[u8],
    ) -> Result<ContextData, TpmRc> {
        let proof = self.hierarchy_proof(hierarchy).ok_or(TpmRc::FAILURE)?;
        let k = keys(proof, sequence);
        let (key, iv) = k.split_at(32);
        let mut encrypted = sensitive.to_vec();
        if !aes_cfb(key, iv, &mut encrypted, true) {
            return Err(TpmRc::FAILURE);
        }
        let mac = integrity(
            proof,
            self.nv.reset_count,
            sequence,
            saved_handle,
            &encrypted,
        );
        let mut w = Writer::new();
        w.write(&Digest::new(&mac).map_err(|_| TpmRc::FAILURE)?);
        w.bytes(&encrypted);
        ContextData::new(w.as_slice()).map_err(|_| TpmRc::FAILURE)
    }

    /// Checks and opens a context blob (TPM_RC_INTEGRITY + P1 when it was
    /// not made by this TPM for this context, or is from before a TPM
    /// Reset).
    pub(crate) fn open_context(
        &self,
        hierarchy: u32,
        sequence: u64,
        saved_handle: u32,
        blob: &ContextData,
    ) -> Result<Saved, TpmRc> {
        let bad = TpmRc::INTEGRITY.with_parameter(1);
        let proof = self.hierarchy_proof(hierarchy).ok_or(bad)?;
        let mut r = Reader::new(blob.as_bytes());
        let mac = Digest::unmarshal(&mut r).map_err(|_| bad)?;
        let encrypted = r.take_rest();
        let expected = integrity(
            proof,
            self.nv.reset_count,
            sequence,
            saved_handle,
            encrypted,
        );
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_slice(),
            mac.as_bytes(),
        )) {
            return Err(bad);
        }
        let k = keys(proof, sequence);
        let (key, iv) = k.split_at(32);
        let mut plain = Zeroizing::new(encrypted.to_vec());
        if !aes_cfb(key, iv, &mut plain, false) {
            return Err(bad);
        }
        parse_sensitive(sequence, &plain).ok_or(bad)
    }
}

/// Sequence objects save with this savedHandle.
pub(crate) const SAVED_SEQUENCE: u32 = 0x8000_0001;
/// savedHandle of a saved key or data object.
pub(crate) const SAVED_OBJECT: u32 = 0x8000_0000;
/// savedHandle of a saved object with stClear.
pub(crate) const SAVED_ST_CLEAR: u32 = 0x8000_0002;
