//! Secret sharing with an asymmetric key (Part 1 §24 "Credential
//! Protection", §23 "Protected Storage Hierarchy" duplication, Annex B.10.3
//! "Secret Sharing" for RSA and Annex C.6 "Secret Sharing" for ECC): a
//! sender who has only the public part of a decryption key makes a random
//! seed and an encrypted form of it that only the key's holder can turn
//! back into the seed. Duplication (label "DUPLICATE"), credentials
//! ("IDENTITY") and salted sessions ("SECRET") carry their seeds this way.
//!
//! * RSA: seed ≔ nameAlg-sized random bytes; encrypted secret ≔
//!   RSAES-OAEP(nameAlg, label, seed). The holder decrypts with the key's
//!   own OAEP scheme, or OAEP with nameAlg when the key has none.
//! * ECC: an ephemeral key pair (de, Qe); Z ≔ (de·Q).x; seed ≔
//!   KDFe(nameAlg, Z, label, Qe.x, Q.x, digest bits); encrypted secret ≔
//!   TPMS_ECC_POINT(Qe). The holder computes Z ≔ (d·Qe).x.
//!
//! Labels are used with their terminating zero octet.

use super::KeyObject;
use crate::crypto::ecc::{EccError, EccPoint, ecdh_ephemeral};
use crate::crypto::kdf::kdfe;
use crate::crypto::rsa::{RsaDecryptScheme, RsaError};
use vtpm_wire::codec::{Reader, Unmarshal, Writer};
use vtpm_wire::constants::AlgId;
use vtpm_wire::object::{EccParameter, object_attr};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::PublicParms;
use zeroize::Zeroizing;

/// Label of a duplication seed.
pub const DUPLICATE: &[u8] = b"DUPLICATE\0";
/// Label of a credential seed.
pub const IDENTITY: &[u8] = b"IDENTITY\0";
/// Label of a session salt.
pub const SECRET: &[u8] = b"SECRET\0";

/// Size in bits of a digest of `key`'s nameAlg.
fn digest_bits(key: &KeyObject) -> u32 {
    u32::try_from(key.name_alg().size() * 8).unwrap_or(0)
}

/// Makes a seed for `key` (an RSA or ECC decryption key; its public part
/// is enough) and its encrypted form: (seed, TPM2B_ENCRYPTED_SECRET
/// contents). Errors without a position: TPM_RC_ATTRIBUTES (not a
/// decryption key), TPM_RC_TYPE (not RSA or ECC), TPM_RC_KEY (an ECC point
/// not on its curve, an unusable RSA modulus), TPM_RC_VALUE (the seed does
/// not fit the RSA key with OAEP).
pub fn secret_encrypt(
    key: &KeyObject,
    label: &[u8],
    fill: &mut dyn FnMut(&mut [u8]),
) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), TpmRc> {
    if !key.has(object_attr::DECRYPT) {
        return Err(TpmRc::ATTRIBUTES);
    }
    let name_alg = key.name_alg();
    match &key.public.parms {
        PublicParms::Rsa { .. } => {
            let public = key.rsa_public()?;
            let mut seed = Zeroizing::new(vec![0u8; name_alg.size()]);
            fill(&mut seed);
            let scheme = RsaDecryptScheme::Oaep {
                hash: name_alg,
                label: label.to_vec(),
            };
            let secret = public
                .encrypt(fill, &scheme, &seed)
                .map_err(|_| TpmRc::VALUE)?;
            Ok((seed, secret))
        }
        PublicParms::Ecc { .. } => {
            let curve = key.curve()?;
            let q = key.ecc_public()?;
            let (z, qe) = ecdh_ephemeral(curve, &q, fill).map_err(|_| TpmRc::KEY)?;
            let seed = kdfe(name_alg, &z.x, label, &qe.x, &q.x, digest_bits(key));
            let point = vtpm_wire::object::EccPoint {
                x: EccParameter::new(&qe.x).map_err(|_| TpmRc::FAILURE)?,
                y: EccParameter::new(&qe.y).map_err(|_| TpmRc::FAILURE)?,
            };
            let mut w = Writer::with_capacity(4 + qe.x.len() + qe.y.len());
            w.write(&point);
            Ok((seed, w.into_vec()))
        }
        _ => Err(TpmRc::TYPE),
    }
}

/// Recovers the seed from an encrypted secret with `key`'s private part.
/// Errors without a position: TPM_RC_TYPE (not an RSA or ECC key),
/// TPM_RC_KEY (no usable private key), TPM_RC_SCHEME (an RSA key whose
/// scheme is not OAEP), TPM_RC_SIZE (an RSA secret not the modulus size, a
/// malformed ECC point), TPM_RC_VALUE (RSA decryption fails or yields more
/// than a digest), TPM_RC_ECC_POINT (a point not on the key's curve),
/// TPM_RC_INSUFFICIENT (a truncated ECC point).
pub fn secret_decrypt(
    key: &KeyObject,
    label: &[u8],
    secret: &[u8],
) -> Result<Zeroizing<Vec<u8>>, TpmRc> {
    if key.sensitive.is_none() {
        return Err(TpmRc::KEY);
    }
    let name_alg = key.name_alg();
    match &key.public.parms {
        PublicParms::Rsa { scheme, .. } => {
            let hash = match scheme.scheme {
                AlgId::NULL => name_alg,
                AlgId::OAEP => scheme
                    .hash_alg
                    .and_then(crate::crypto::hash::HashAlg::from_alg)
                    .ok_or(TpmRc::SCHEME)?,
                _ => return Err(TpmRc::SCHEME),
            };
            let scheme = RsaDecryptScheme::Oaep {
                hash,
                label: label.to_vec(),
            };
            let rsa = key.rsa_key()?;
            let seed = rsa.decrypt(&scheme, secret).map_err(|e| match e {
                RsaError::CiphertextSize => TpmRc::SIZE,
                _ => TpmRc::VALUE,
            })?;
            if seed.len() > hash.size() {
                return Err(TpmRc::VALUE);
            }
            Ok(seed)
        }
        PublicParms::Ecc { .. } => {
            let mut r = Reader::new(secret);
            let qe = vtpm_wire::object::EccPoint::unmarshal(&mut r).map_err(|e| e.rc())?;
            r.finish().map_err(|_| TpmRc::SIZE)?;
            let qe = EccPoint {
                x: qe.x.as_bytes().to_vec(),
                y: qe.y.as_bytes().to_vec(),
            };
            let d = key.ecc_key()?;
            let z = d.ecdh(&qe).map_err(|e| match e {
                EccError::Point(_) => TpmRc::ECC_POINT,
                _ => TpmRc::NO_RESULT,
            })?;
            let q = key.ecc_public()?;
            Ok(kdfe(name_alg, &z.x, label, &qe.x, &q.x, digest_bits(key)))
        }
        _ => Err(TpmRc::TYPE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ecc::{Curve, EccKey};
    use crate::crypto::hash::HashAlg;
    use crate::crypto::rsa::RsaKey;
    use vtpm_wire::constants::EccCurve;
    use vtpm_wire::object::{Public, PublicId, PublicKeyRsa, Sensitive, SensitiveComposite};
    use vtpm_wire::types::{Auth, Digest, Scheme, SymDefObject};

    /// A deterministic xorshift64 byte stream.
    fn counter_rng() -> impl FnMut(&mut [u8]) {
        let mut n = 0x9E37_79B9_7F4A_7C15u64;
        move |b: &mut [u8]| {
            for x in b.iter_mut() {
                n ^= n << 13;
                n ^= n >> 7;
                n ^= n << 17;
                *x = n as u8;
            }
        }
    }

    fn storage_sym() -> SymDefObject {
        SymDefObject {
            algorithm: AlgId::AES,
            key_bits: 128,
            mode: AlgId::CFB,
        }
    }

    fn null_scheme() -> Scheme {
        Scheme {
            scheme: AlgId::NULL,
            hash_alg: None,
            kdf: None,
        }
    }

    fn attrs() -> u32 {
        object_attr::RESTRICTED | object_attr::DECRYPT | object_attr::FIXED_TPM
    }

    fn ecc_key(name_alg: AlgId) -> KeyObject {
        let mut rng = counter_rng();
        let key = EccKey::generate(Curve::P256, &mut rng).unwrap();
        let q = key.public();
        let public = Public {
            name_alg,
            attributes: attrs(),
            auth_policy: Digest::empty(),
            parms: PublicParms::Ecc {
                symmetric: storage_sym(),
                scheme: null_scheme(),
                curve: EccCurve(Curve::P256.tpm_id()),
                kdf: null_scheme(),
            },
            unique: PublicId::Ecc(vtpm_wire::object::EccPoint {
                x: EccParameter::new(&q.x).unwrap(),
                y: EccParameter::new(&q.y).unwrap(),
            }),
        };
        let sensitive = Sensitive {
            auth_value: Auth::empty(),
            seed_value: Digest::empty(),
            sensitive: SensitiveComposite::Ecc(EccParameter::new(&key.scalar()).unwrap()),
        };
        KeyObject::new(public, Some(sensitive), 0x4000_0001, &[])
    }

    fn rsa_key(name_alg: AlgId) -> KeyObject {
        let mut rng = counter_rng();
        let key = RsaKey::generate(&mut rng, 2048, 0).unwrap();
        let public = Public {
            name_alg,
            attributes: attrs(),
            auth_policy: Digest::empty(),
            parms: PublicParms::Rsa {
                symmetric: storage_sym(),
                scheme: null_scheme(),
                key_bits: 2048,
                exponent: 0,
            },
            unique: PublicId::Rsa(PublicKeyRsa::new(&key.modulus()).unwrap()),
        };
        let sensitive = Sensitive {
            auth_value: Auth::empty(),
            seed_value: Digest::empty(),
            sensitive: SensitiveComposite::Rsa(
                vtpm_wire::object::PrivateKeyRsa::new(&key.prime()).unwrap(),
            ),
        };
        KeyObject::new(public, Some(sensitive), 0x4000_0001, &[])
    }

    #[test]
    fn ecc_secret_round_trips() {
        for alg in [AlgId::SHA256, AlgId::SHA384] {
            let key = ecc_key(alg);
            let mut rng = counter_rng();
            let (seed, secret) = secret_encrypt(&key, DUPLICATE, &mut rng).unwrap();
            assert_eq!(seed.len(), HashAlg::from_alg(alg).unwrap().size());
            // The secret is a TPMS_ECC_POINT with 32-byte coordinates.
            assert_eq!(secret.len(), 2 + 32 + 2 + 32);
            assert_eq!(&secret[..2], &[0, 32]);
            let back = secret_decrypt(&key, DUPLICATE, &secret).unwrap();
            assert_eq!(*back, *seed);
            // Another label gives another seed.
            let other = secret_decrypt(&key, IDENTITY, &secret).unwrap();
            assert_ne!(*other, *seed);
        }
    }

    #[test]
    fn ecc_secret_errors() {
        let key = ecc_key(AlgId::SHA256);
        let mut rng = counter_rng();
        let (_, mut secret) = secret_encrypt(&key, SECRET, &mut rng).unwrap();
        // Trailing bytes.
        let mut long = secret.clone();
        long.push(0);
        assert_eq!(secret_decrypt(&key, SECRET, &long), Err(TpmRc::SIZE));
        // Truncated.
        assert_eq!(
            secret_decrypt(&key, SECRET, &secret[..40]),
            Err(TpmRc::INSUFFICIENT)
        );
        // A point off the curve.
        let last = secret.len() - 1;
        secret[last] ^= 1;
        assert_eq!(secret_decrypt(&key, SECRET, &secret), Err(TpmRc::ECC_POINT));
    }

    #[test]
    fn rsa_secret_round_trips() {
        let key = rsa_key(AlgId::SHA256);
        let mut rng = counter_rng();
        let (seed, secret) = secret_encrypt(&key, IDENTITY, &mut rng).unwrap();
        assert_eq!(seed.len(), 32);
        assert_eq!(secret.len(), 256);
        assert_eq!(
            *secret_decrypt(&key, IDENTITY, &secret).unwrap(),
            *seed,
            "same label"
        );
        assert_eq!(
            secret_decrypt(&key, DUPLICATE, &secret),
            Err(TpmRc::VALUE),
            "the OAEP label is checked"
        );
        assert_eq!(
            secret_decrypt(&key, IDENTITY, &secret[1..]),
            Err(TpmRc::SIZE)
        );
    }

    #[test]
    fn only_decryption_keys_share_secrets() {
        let mut key = ecc_key(AlgId::SHA256);
        key.public.attributes = object_attr::SIGN;
        let mut rng = counter_rng();
        assert_eq!(
            secret_encrypt(&key, SECRET, &mut rng).map(|_| ()),
            Err(TpmRc::ATTRIBUTES)
        );
    }
}
