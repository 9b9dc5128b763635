//! Part 3 chapter 20: Signing and Signature Verification, and the signing
//! primitives other commands (attestation, PolicySigned) share: scheme
//! selection (the reference implementation's CryptSelectSignScheme),
//! signing (CryptSign) and verification (CryptValidateSignature).

pub mod sign;
pub mod verify_signature;

use crate::crypto::ecc::{EccError, ecdsa_verify};
use crate::crypto::hash::HashAlg;
use crate::crypto::rsa::{RsaError, RsaSignScheme};
use crate::keys::KeyObject;
use vtpm_wire::constants::AlgId;
use vtpm_wire::object::{EccParameter, PublicKeyRsa, SigScheme, Signature, object_attr};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::PublicParms;

/// A key that may sign: the sign attribute, and not a symmetric cipher
/// (the reference implementation's IsSigningObject).
pub(crate) fn is_signing_key(key: &KeyObject) -> bool {
    key.has(object_attr::SIGN) && !matches!(key.public.parms, PublicParms::SymCipher { .. })
}

/// The scheme a signature is made with: the key's scheme when it has one
/// (`in_scheme` must then be TPM_ALG_NULL or the same scheme and hash),
/// else `in_scheme` (which must not be TPM_ALG_NULL). `None` when neither
/// rule gives a scheme (the caller answers TPM_RC_SCHEME).
pub(crate) fn select_sign_scheme(key: &KeyObject, in_scheme: SigScheme) -> Option<SigScheme> {
    if matches!(key.public.parms, PublicParms::SymCipher { .. }) {
        return None;
    }
    let key_scheme = SigScheme::of_parms(&key.public.parms);
    if key_scheme.scheme == AlgId::NULL {
        (in_scheme.scheme != AlgId::NULL).then_some(in_scheme)
    } else if in_scheme.scheme == AlgId::NULL || in_scheme == key_scheme {
        Some(key_scheme)
    } else {
        None
    }
}

/// Why [`sign_digest`] or [`validate_signature`] failed, before the caller
/// adds the parameter number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignError {
    /// The scheme does not suit the key's type (TPM_RC_SCHEME).
    Scheme,
    /// The digest does not suit the key or scheme (TPM_RC_VALUE).
    Value,
    /// The key's private part is missing or unusable (TPM_RC_KEY).
    Key,
    /// The signature does not verify (TPM_RC_SIGNATURE).
    Signature,
    /// An HMAC key without its private part (TPM_RC_HANDLE).
    Handle,
}

fn scheme_hash(hash: AlgId) -> Result<HashAlg, SignError> {
    HashAlg::from_alg(hash).ok_or(SignError::Scheme)
}

/// Signs `digest` with `key` under `scheme` (already selected with
/// [`select_sign_scheme`]).
pub(crate) fn sign_digest(
    key: &KeyObject,
    scheme: SigScheme,
    digest: &[u8],
) -> Result<Signature, SignError> {
    let hash = scheme_hash(scheme.hash)?;
    match (&key.public.parms, scheme.scheme) {
        (PublicParms::Rsa { .. }, AlgId::RSASSA | AlgId::RSAPSS) => {
            let rsa_scheme = if scheme.scheme == AlgId::RSASSA {
                RsaSignScheme::Pkcs1v15(hash)
            } else {
                RsaSignScheme::Pss(hash)
            };
            let rsa = key.rsa_key().map_err(|_| SignError::Key)?;
            let sig = rsa.sign(&rsa_scheme, digest).map_err(|e| match e {
                RsaError::DigestSize | RsaError::MessageTooLong | RsaError::ValueTooLarge => {
                    SignError::Value
                }
                _ => SignError::Key,
            })?;
            Ok(Signature::Rsa {
                scheme: scheme.scheme,
                hash: scheme.hash,
                sig: PublicKeyRsa::new(&sig).map_err(|_| SignError::Key)?,
            })
        }
        (PublicParms::Ecc { .. }, AlgId::ECDSA) => {
            let ecc = key.ecc_key().map_err(|_| SignError::Key)?;
            let (r, s) = ecc.ecdsa_sign(digest).map_err(|_| SignError::Value)?;
            Ok(Signature::Ecdsa {
                hash: scheme.hash,
                r: EccParameter::new(&r).map_err(|_| SignError::Key)?,
                s: EccParameter::new(&s).map_err(|_| SignError::Key)?,
            })
        }
        (PublicParms::KeyedHash { .. }, AlgId::HMAC) => {
            let k = key.sensitive_bits().map_err(|_| SignError::Key)?;
            Ok(Signature::Hmac {
                hash: scheme.hash,
                digest: hash.hmac(k, &[digest]),
            })
        }
        _ => Err(SignError::Scheme),
    }
}

/// Checks `signature` over `digest` with `key` (only its public part for
/// asymmetric keys; an HMAC key needs its private part).
pub(crate) fn validate_signature(
    key: &KeyObject,
    digest: &[u8],
    signature: &Signature,
) -> Result<(), SignError> {
    match (&key.public.parms, signature) {
        (PublicParms::Rsa { .. }, Signature::Rsa { scheme, hash, sig }) => {
            let hash = scheme_hash(*hash)?;
            let rsa_scheme = match *scheme {
                AlgId::RSASSA => RsaSignScheme::Pkcs1v15(hash),
                AlgId::RSAPSS => RsaSignScheme::Pss(hash),
                _ => return Err(SignError::Scheme),
            };
            let public = key.rsa_public().map_err(|_| SignError::Key)?;
            public
                .verify(&rsa_scheme, digest, sig.as_bytes())
                .map_err(|_| SignError::Signature)
        }
        (PublicParms::Ecc { .. }, Signature::Ecdsa { r, s, .. }) => {
            let curve = key.curve().map_err(|_| SignError::Key)?;
            let q = key.ecc_public().map_err(|_| SignError::Key)?;
            ecdsa_verify(curve, &q, digest, r.as_bytes(), s.as_bytes()).map_err(|e| match e {
                EccError::Point(_) => SignError::Key,
                _ => SignError::Signature,
            })
        }
        (PublicParms::KeyedHash { scheme }, Signature::Hmac { hash, digest: mac }) => {
            use subtle::ConstantTimeEq;
            if key.sensitive.is_none() {
                return Err(SignError::Handle);
            }
            // A key with a scheme only validates signatures of that scheme.
            if scheme.scheme != AlgId::NULL
                && (scheme.scheme != AlgId::HMAC || scheme.hash_alg != Some(*hash))
            {
                return Err(SignError::Signature);
            }
            let alg = scheme_hash(*hash)?;
            let k = key.sensitive_bits().map_err(|_| SignError::Handle)?;
            let expected = alg.hmac(k, &[digest]);
            if expected.len() == mac.len() && bool::from(expected.ct_eq(mac)) {
                Ok(())
            } else {
                Err(SignError::Signature)
            }
        }
        (_, Signature::Null) => Err(SignError::Signature),
        _ => Err(SignError::Scheme),
    }
}

impl SignError {
    /// The response code, without a position.
    pub(crate) fn rc(self) -> TpmRc {
        match self {
            SignError::Scheme => TpmRc::SCHEME,
            SignError::Value => TpmRc::VALUE,
            SignError::Key => TpmRc::KEY,
            SignError::Signature => TpmRc::SIGNATURE,
            SignError::Handle => TpmRc::HANDLE,
        }
    }
}
