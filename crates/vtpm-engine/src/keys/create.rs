//! Generation of an object's sensitive area and unique field from a
//! template (Part 1 §27.5 "Creation of an Object", the reference
//! implementation's CryptCreateObject), from either a seed-derived stream
//! (primary objects) or the TPM's random number generator.

use crate::crypto::ecc::{Curve, EccKey};
use crate::crypto::hash::HashAlg;
use crate::crypto::rsa::{RsaKey, RsaKeyPool};
use std::sync::Arc;
use vtpm_wire::object::{
    EccParameter, EccPoint, PrivateKeyRsa, Public, PublicId, PublicKeyRsa, Sensitive,
    SensitiveComposite, SymKey, object_attr as oa,
};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Auth, Digest, PublicParms, SensitiveData};

/// Where key material comes from.
pub enum Source<'a> {
    /// A primary object: everything from the seed-derived stream, in a fixed
    /// order (key material, then seedValue).
    Derived(&'a mut dyn FnMut(&mut [u8])),
    /// An ordinary object: the TPM's RNG, and for RSA keys a pool of
    /// pre-generated keys when one is configured.
    Random {
        /// Random bytes.
        rng: &'a mut dyn FnMut(&mut [u8]),
        /// Pre-generated RSA keys.
        pool: Option<&'a RsaKeyPool>,
    },
}

impl Source<'_> {
    fn fill(&mut self, out: &mut [u8]) {
        match self {
            Source::Derived(f) => f(out),
            Source::Random { rng, .. } => rng(out),
        }
    }
}

/// A created object.
pub struct Created {
    /// The public area with its unique field.
    pub public: Public,
    /// The sensitive area.
    pub sensitive: Sensitive,
    /// The RSA key, already parsed.
    pub rsa: Option<Arc<RsaKey>>,
}

/// Does the object need a seedValue (a storage parent, or a symmetric or
/// keyed-hash object whose unique field hides its key)?
fn needs_seed(public: &Public) -> bool {
    let parent = public.has(oa::RESTRICTED) && public.has(oa::DECRYPT);
    parent
        || matches!(
            public.parms,
            PublicParms::KeyedHash { .. } | PublicParms::SymCipher { .. }
        )
}

/// Creates the sensitive area and unique field for a checked template.
/// `data` is inSensitive.data (the key or sealed data when the caller
/// provides it).
pub fn create_object(
    template: &Public,
    user_auth: &[u8],
    data: &[u8],
    src: &mut Source<'_>,
) -> Result<Created, TpmRc> {
    let name_alg = HashAlg::from_alg(template.name_alg).ok_or(TpmRc::HASH)?;
    let mut public = template.clone();
    let mut rsa = None;
    // sensitiveDataOrigin: the TPM makes the key; otherwise `data` is it.
    let origin = template.has(oa::SENSITIVE_DATA_ORIGIN);
    let (composite, seed_len) = match &template.parms {
        PublicParms::Rsa {
            key_bits, exponent, ..
        } => {
            let key = match src {
                Source::Derived(f) => RsaKey::derive(*f, *key_bits, *exponent),
                Source::Random { rng, pool } => {
                    match pool.and_then(|p| p.take(*key_bits, *exponent)) {
                        Some(k) => Ok(k),
                        None => RsaKey::generate(*rng, *key_bits, *exponent),
                    }
                }
            }
            .map_err(|_| TpmRc::NO_RESULT)?;
            public.unique =
                PublicId::Rsa(PublicKeyRsa::new(&key.modulus()).map_err(|_| TpmRc::KEY_SIZE)?);
            let p = PrivateKeyRsa::new(&key.prime()).map_err(|_| TpmRc::KEY_SIZE)?;
            rsa = Some(Arc::new(key));
            (SensitiveComposite::Rsa(p), name_alg.size())
        }
        PublicParms::Ecc { curve, .. } => {
            let curve = Curve::from_tpm(curve.0).ok_or(TpmRc::CURVE)?;
            let key = match src {
                Source::Derived(f) => EccKey::derive(curve, *f),
                Source::Random { rng, .. } => EccKey::generate(curve, *rng),
            }
            .map_err(|_| TpmRc::NO_RESULT)?;
            let q = key.public();
            public.unique = PublicId::Ecc(EccPoint {
                x: EccParameter::new(&q.x).map_err(|_| TpmRc::FAILURE)?,
                y: EccParameter::new(&q.y).map_err(|_| TpmRc::FAILURE)?,
            });
            let d = EccParameter::new(&key.scalar()).map_err(|_| TpmRc::FAILURE)?;
            (SensitiveComposite::Ecc(d), name_alg.size())
        }
        PublicParms::KeyedHash { scheme } => {
            let bits = if origin {
                // A generated HMAC key: the size of the scheme's hash.
                let size = scheme
                    .hash_alg
                    .and_then(HashAlg::from_alg)
                    .unwrap_or(name_alg)
                    .size();
                let mut k = vec![0u8; size];
                src.fill(&mut k);
                let b = SensitiveData::new(&k);
                zeroize::Zeroize::zeroize(&mut k);
                b
            } else {
                SensitiveData::new(data)
            }
            .map_err(|_| TpmRc::SIZE.with_parameter(1))?;
            (SensitiveComposite::Bits(bits), name_alg.size())
        }
        PublicParms::SymCipher { sym } => {
            let key = if origin {
                let mut k = vec![0u8; usize::from(sym.key_bits / 8)];
                src.fill(&mut k);
                let b = SymKey::new(&k);
                zeroize::Zeroize::zeroize(&mut k);
                b
            } else {
                SymKey::new(data)
            }
            .map_err(|_| TpmRc::KEY_SIZE.with_parameter(1))?;
            (SensitiveComposite::Sym(key), name_alg.size())
        }
    };
    let mut seed = vec![0u8; if needs_seed(template) { seed_len } else { 0 }];
    src.fill(&mut seed);
    let seed_value = Digest::new(&seed).map_err(|_| TpmRc::FAILURE)?;
    zeroize::Zeroize::zeroize(&mut seed);
    // Keyed-hash and symmetric objects publish H(seedValue || key) as unique.
    match &composite {
        SensitiveComposite::Bits(b) => {
            let d = name_alg.digest(&[seed_value.as_bytes(), b.as_bytes()]);
            public.unique = PublicId::KeyedHash(Digest::new(&d).map_err(|_| TpmRc::FAILURE)?);
        }
        SensitiveComposite::Sym(k) => {
            let d = name_alg.digest(&[seed_value.as_bytes(), k.as_bytes()]);
            public.unique = PublicId::Sym(Digest::new(&d).map_err(|_| TpmRc::FAILURE)?);
        }
        _ => {}
    }
    Ok(Created {
        public,
        sensitive: Sensitive {
            auth_value: Auth::new(user_auth).map_err(|_| TpmRc::SIZE.with_parameter(1))?,
            seed_value,
            sensitive: composite,
        },
        rsa,
    })
}

/// Checks that a sensitive area belongs to a public area (TPM_RC_BINDING
/// otherwise) and that the key sizes agree (TPM_RC_KEY_SIZE): the
/// reference implementation's ObjectLoad checks.
pub fn check_binding(public: &Public, sensitive: &Sensitive) -> Result<Option<Arc<RsaKey>>, TpmRc> {
    let name_alg = HashAlg::from_alg(public.name_alg);
    if sensitive.type_alg() != public.type_alg() {
        return Err(TpmRc::TYPE);
    }
    if let Some(alg) = name_alg
        && sensitive.seed_value.len() > alg.size()
    {
        return Err(TpmRc::KEY_SIZE);
    }
    match (&public.parms, &public.unique, &sensitive.sensitive) {
        (
            PublicParms::Rsa {
                exponent, key_bits, ..
            },
            PublicId::Rsa(n),
            SensitiveComposite::Rsa(p),
        ) => {
            if n.len() * 8 != usize::from(*key_bits) {
                return Err(TpmRc::KEY_SIZE);
            }
            let key = RsaKey::from_prime_shared(n.as_bytes(), *exponent, p.as_bytes())
                .map_err(|_| TpmRc::BINDING)?;
            Ok(Some(key))
        }
        (PublicParms::Ecc { curve, .. }, PublicId::Ecc(q), SensitiveComposite::Ecc(d)) => {
            let curve = Curve::from_tpm(curve.0).ok_or(TpmRc::CURVE)?;
            let key = EccKey::from_scalar(curve, d.as_bytes()).map_err(|_| TpmRc::BINDING)?;
            let p = key.public();
            if strip(&p.x) != strip(q.x.as_bytes()) || strip(&p.y) != strip(q.y.as_bytes()) {
                return Err(TpmRc::BINDING);
            }
            Ok(None)
        }
        (PublicParms::KeyedHash { .. }, PublicId::KeyedHash(u), SensitiveComposite::Bits(b)) => {
            check_obfuscated(name_alg, sensitive, b.as_bytes(), u.as_bytes())
        }
        (PublicParms::SymCipher { sym }, PublicId::Sym(u), SensitiveComposite::Sym(b)) => {
            if b.len() * 8 != usize::from(sym.key_bits) {
                return Err(TpmRc::KEY_SIZE);
            }
            check_obfuscated(name_alg, sensitive, b.as_bytes(), u.as_bytes())
        }
        _ => Err(TpmRc::TYPE),
    }
}

/// unique = H_nameAlg(seedValue || key) for keyed-hash and symmetric
/// objects.
fn check_obfuscated(
    name_alg: Option<HashAlg>,
    sensitive: &Sensitive,
    bits: &[u8],
    unique: &[u8],
) -> Result<Option<Arc<RsaKey>>, TpmRc> {
    let alg = name_alg.ok_or(TpmRc::HASH)?;
    let d = alg.digest(&[sensitive.seed_value.as_bytes(), bits]);
    if d.as_slice() != unique {
        return Err(TpmRc::BINDING);
    }
    Ok(None)
}

fn strip(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or(&[])
}
