//! Protected storage (Part 1 §22 "Protected Storage", §23 "Protected
//! Storage Hierarchy", §24 "Credential Protection"): the outer wrap that
//! protects an object's sensitive area under its parent (TPM2B_PRIVATE),
//! duplication blobs (outer wrap with a seed, optional inner wrap) and
//! credential blobs.
//!
//! Outer wrap, with `seed` (the parent's seedValue, or a duplication or
//! credential seed) and `hashAlg` (the parent's nameAlg):
//! * symKey ≔ KDFa(hashAlg, seed, "STORAGE", Name, ∅, symmetric key bits)
//! * HMACkey ≔ KDFa(hashAlg, seed, "INTEGRITY", ∅, ∅, digest bits)
//! * blob ≔ TPM2B_DIGEST(HMAC(HMACkey, [iv2b ||] enc || Name)) || [iv2b ||] enc,
//!   enc ≔ AES-CFB(symKey, iv, data); storage uses a random IV carried as a
//!   TPM2B_IV, duplication and credentials a zero IV.
//!
//! Inner wrap (duplication with a symmetric key, Part 1 §23.3.2.3):
//! AES-CFB(key, 0, TPM2B_DIGEST(H_nameAlg(data || Name)) || data).

use super::KeyObject;
use crate::crypto::hash::HashAlg;
use crate::crypto::kdf::kdfa;
use crate::crypto::sym::aes_cfb;
use subtle::ConstantTimeEq;
use vtpm_wire::codec::{Reader, Unmarshal, Writer};
use vtpm_wire::object::Sensitive;
use vtpm_wire::rc::TpmRc;
use zeroize::Zeroizing;

/// Size of the storage IV (one AES block).
const IV_SIZE: usize = 16;

/// The symmetric key of an outer wrap.
fn sym_key(hash: HashAlg, seed: &[u8], name: &[u8], key_bits: u16) -> Zeroizing<Vec<u8>> {
    kdfa(hash, seed, b"STORAGE", name, &[], u32::from(key_bits))
}

/// The HMAC key of an outer wrap.
fn hmac_key(hash: HashAlg, seed: &[u8]) -> Zeroizing<Vec<u8>> {
    let bits = u32::try_from(hash.size() * 8).unwrap_or(0);
    kdfa(hash, seed, b"INTEGRITY", &[], &[], bits)
}

/// Applies an outer wrap to `data`. With `iv`, the IV is carried in the
/// blob as a TPM2B_IV.
pub fn outer_wrap(
    hash: HashAlg,
    seed: &[u8],
    key_bits: u16,
    name: &[u8],
    data: &[u8],
    iv: Option<[u8; IV_SIZE]>,
) -> Result<Vec<u8>, TpmRc> {
    let key = sym_key(hash, seed, name, key_bits);
    let mut body = Zeroizing::new(Vec::with_capacity(data.len() + IV_SIZE + 2));
    let iv_bytes = iv.unwrap_or([0; IV_SIZE]);
    if iv.is_some() {
        body.extend_from_slice(&(IV_SIZE as u16).to_be_bytes());
        body.extend_from_slice(&iv_bytes);
    }
    let start = body.len();
    body.extend_from_slice(data);
    let enc = body.get_mut(start..).ok_or(TpmRc::FAILURE)?;
    if !aes_cfb(&key, &iv_bytes, enc, true) {
        return Err(TpmRc::SYMMETRIC);
    }
    let hmac = hash.hmac(&hmac_key(hash, seed), &[&body, name]);
    let mut w = Writer::with_capacity(2 + hmac.len() + body.len());
    w.sized_u16(|w| w.bytes(&hmac));
    w.bytes(&body);
    Ok(w.into_vec())
}

/// Checks and removes an outer wrap; the decrypted data. Errors without a
/// position: TPM_RC_INTEGRITY for a bad HMAC, TPM_RC_SIZE / TPM_RC_VALUE
/// for a malformed blob.
pub fn outer_unwrap(
    hash: HashAlg,
    seed: &[u8],
    key_bits: u16,
    name: &[u8],
    blob: &[u8],
    with_iv: bool,
) -> Result<Zeroizing<Vec<u8>>, TpmRc> {
    let mut r = Reader::new(blob);
    let n = usize::from(r.u16().map_err(|_| TpmRc::INSUFFICIENT)?);
    let integrity = r.take(n).map_err(|_| TpmRc::INSUFFICIENT)?;
    let body = r.peek_rest();
    let expected = hash.hmac(&hmac_key(hash, seed), &[body, name]);
    if !(integrity.len() == expected.len() && bool::from(integrity.ct_eq(&expected))) {
        return Err(TpmRc::INTEGRITY);
    }
    let mut iv = [0u8; IV_SIZE];
    let mut rest = Reader::new(body);
    if with_iv {
        let n = usize::from(rest.u16().map_err(|_| TpmRc::INSUFFICIENT)?);
        if n != IV_SIZE {
            return Err(TpmRc::VALUE);
        }
        iv.copy_from_slice(rest.take(IV_SIZE).map_err(|_| TpmRc::INSUFFICIENT)?);
    }
    let mut data = Zeroizing::new(rest.peek_rest().to_vec());
    let key = sym_key(hash, seed, name, key_bits);
    if !aes_cfb(&key, &iv, &mut data, false) {
        return Err(TpmRc::SYMMETRIC);
    }
    Ok(data)
}

/// TPM2B_SENSITIVE of a sensitive area (the size-prefixed TPMT_SENSITIVE).
pub fn marshal_sensitive(s: &Sensitive) -> Zeroizing<Vec<u8>> {
    let mut w = Writer::with_capacity(512);
    w.sized_u16(|w| w.write(s));
    Zeroizing::new(w.into_vec())
}

/// Reads a TPM2B_SENSITIVE that must fill `data` exactly (TPM_RC_SENSITIVE
/// otherwise).
pub fn unmarshal_sensitive(data: &[u8]) -> Result<Sensitive, TpmRc> {
    let mut r = Reader::new(data);
    let n = usize::from(r.u16().map_err(|_| TpmRc::SENSITIVE)?);
    let mut sub = r.sub(n).map_err(|_| TpmRc::SENSITIVE)?;
    let s = Sensitive::unmarshal(&mut sub).map_err(|_| TpmRc::SENSITIVE)?;
    if sub.finish().is_err() || r.finish().is_err() {
        return Err(TpmRc::SENSITIVE);
    }
    Ok(s)
}

/// The seed, hash and key size protecting `parent`'s children.
fn parent_protection(parent: &KeyObject) -> Result<(HashAlg, &[u8], u16), TpmRc> {
    let (bits, _) = parent.parent_symmetric().ok_or(TpmRc::TYPE)?;
    Ok((parent.name_alg(), parent.seed_value(), bits))
}

/// TPM2B_PRIVATE contents of an object under a storage parent.
pub fn sensitive_to_private(
    parent: &KeyObject,
    name: &[u8],
    sensitive: &Sensitive,
    iv: [u8; IV_SIZE],
) -> Result<Vec<u8>, TpmRc> {
    let (hash, seed, bits) = parent_protection(parent)?;
    outer_wrap(
        hash,
        seed,
        bits,
        name,
        &marshal_sensitive(sensitive),
        Some(iv),
    )
}

/// The sensitive area of a TPM2B_PRIVATE made by [`sensitive_to_private`].
pub fn private_to_sensitive(
    parent: &KeyObject,
    name: &[u8],
    private: &[u8],
) -> Result<Sensitive, TpmRc> {
    let (hash, seed, bits) = parent_protection(parent)?;
    let data = outer_unwrap(hash, seed, bits, name, private, true)?;
    unmarshal_sensitive(&data)
}

/// Inner wrap of a duplication blob.
pub fn inner_wrap(
    name_alg: HashAlg,
    key: &[u8],
    name: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, TpmRc> {
    let integrity = name_alg.digest(&[data, name]);
    let mut w = Writer::with_capacity(2 + integrity.len() + data.len());
    w.sized_u16(|w| w.bytes(&integrity));
    w.bytes(data);
    let mut out = w.into_vec();
    if !aes_cfb(key, &[0; IV_SIZE], &mut out, true) {
        return Err(TpmRc::SYMMETRIC);
    }
    Ok(out)
}

/// Removes an inner wrap; TPM_RC_INTEGRITY when the inner integrity fails.
pub fn inner_unwrap(
    name_alg: HashAlg,
    key: &[u8],
    name: &[u8],
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, TpmRc> {
    let mut data = Zeroizing::new(blob.to_vec());
    if !aes_cfb(key, &[0; IV_SIZE], &mut data, false) {
        return Err(TpmRc::SYMMETRIC);
    }
    let mut r = Reader::new(&data);
    let n = usize::from(r.u16().map_err(|_| TpmRc::INTEGRITY)?);
    let integrity = r.take(n).map_err(|_| TpmRc::INTEGRITY)?.to_vec();
    let rest = r.peek_rest();
    let expected = name_alg.digest(&[rest, name]);
    if !(integrity.len() == expected.len() && bool::from(integrity.ct_eq(&expected))) {
        return Err(TpmRc::INTEGRITY);
    }
    Ok(Zeroizing::new(rest.to_vec()))
}

/// An outer wrap's parameters: the hash (the protector's nameAlg), the seed
/// and the protector's symmetric key size.
#[derive(Clone, Copy, Debug)]
pub struct OuterWrap<'a> {
    /// nameAlg of the new parent or of the credential's protector.
    pub hash: HashAlg,
    /// The duplication or credential seed.
    pub seed: &'a [u8],
    /// The protector's symmetric key size in bits.
    pub key_bits: u16,
}

/// A duplication blob (Part 1 §23.3.2, the reference implementation's
/// SensitiveToDuplicate): TPM2B_SENSITIVE, inner-wrapped with `inner_key`
/// (integrity hash: the object's `name_alg`), then outer-wrapped without
/// IV.
pub fn sensitive_to_duplicate(
    sensitive: &Sensitive,
    name: &[u8],
    name_alg: HashAlg,
    inner_key: Option<&[u8]>,
    outer: Option<OuterWrap<'_>>,
) -> Result<Vec<u8>, TpmRc> {
    let mut data = marshal_sensitive(sensitive);
    if let Some(key) = inner_key {
        data = Zeroizing::new(inner_wrap(name_alg, key, name, &data)?);
    }
    match outer {
        Some(o) => outer_wrap(o.hash, o.seed, o.key_bits, name, &data, None),
        None => Ok(data.to_vec()),
    }
}

/// The sensitive area of a duplication blob (DuplicateToSensitive):
/// TPM_RC_INTEGRITY when a wrap's integrity fails, TPM_RC_SIZE or
/// TPM_RC_INSUFFICIENT when what remains is not exactly one
/// TPM2B_SENSITIVE (no position).
pub fn duplicate_to_sensitive(
    blob: &[u8],
    name: &[u8],
    name_alg: HashAlg,
    inner_key: Option<&[u8]>,
    outer: Option<OuterWrap<'_>>,
) -> Result<Sensitive, TpmRc> {
    let mut data = match outer {
        Some(o) => outer_unwrap(o.hash, o.seed, o.key_bits, name, blob, false)?,
        None => Zeroizing::new(blob.to_vec()),
    };
    if let Some(key) = inner_key {
        data = inner_unwrap(name_alg, key, name, &data)?;
    }
    let mut r = Reader::new(&data);
    let n = usize::from(r.u16().map_err(|_| TpmRc::INSUFFICIENT)?);
    if n != r.remaining() {
        return Err(TpmRc::SIZE);
    }
    let s = Sensitive::unmarshal(&mut r).map_err(|e| e.rc())?;
    r.finish().map_err(|_| TpmRc::SIZE)?;
    Ok(s)
}

/// The part of a duplication blob under its outer wrap (TPM2_Rewrap): the
/// blob with the outer integrity removed and decrypted.
pub fn remove_outer_wrap(
    blob: &[u8],
    name: &[u8],
    outer: OuterWrap<'_>,
) -> Result<Zeroizing<Vec<u8>>, TpmRc> {
    outer_unwrap(outer.hash, outer.seed, outer.key_bits, name, blob, false)
}

/// A credential blob (TPM2B_ID_OBJECT contents, Part 1 §24.4):
/// TPM2B_DIGEST(credential) outer-wrapped without IV, with the Name of
/// the object the credential is for.
pub fn secret_to_credential(
    credential: &[u8],
    object_name: &[u8],
    outer: OuterWrap<'_>,
) -> Result<Vec<u8>, TpmRc> {
    let mut w = Writer::with_capacity(2 + credential.len());
    w.sized_u16(|w| w.bytes(credential));
    let data = Zeroizing::new(w.into_vec());
    outer_wrap(
        outer.hash,
        outer.seed,
        outer.key_bits,
        object_name,
        &data,
        None,
    )
}

/// The credential in a credential blob: TPM_RC_INTEGRITY when the HMAC
/// fails (wrong seed or Name), TPM_RC_SIZE when what it decrypts to is not
/// exactly one TPM2B_DIGEST (no position).
pub fn credential_to_secret(
    blob: &[u8],
    object_name: &[u8],
    outer: OuterWrap<'_>,
) -> Result<Zeroizing<Vec<u8>>, TpmRc> {
    let data = outer_unwrap(
        outer.hash,
        outer.seed,
        outer.key_bits,
        object_name,
        blob,
        false,
    )?;
    let mut r = Reader::new(&data);
    let d = vtpm_wire::types::Digest::unmarshal(&mut r).map_err(|e| e.rc())?;
    r.finish().map_err(|_| TpmRc::SIZE)?;
    Ok(Zeroizing::new(d.as_bytes().to_vec()))
}
