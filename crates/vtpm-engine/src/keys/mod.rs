//! Key and data objects (Part 1 §27 "Object Attributes", §26 "Object
//! Structure Elements"): a loaded object's public and sensitive areas, its
//! Name and Qualified Name, the hierarchy it belongs to, and the parsed key
//! material kept next to them so that each use does not parse it again.

pub mod create;
pub mod primary;
pub mod protect;
pub mod secret;
pub mod template;

use crate::crypto::ecc::{Curve, EccKey, EccPoint};
use crate::crypto::hash::HashAlg;
use crate::crypto::rsa::{RsaKey, RsaPublic};
use std::sync::{Arc, OnceLock};
use vtpm_wire::codec::{Marshal, Reader, Unmarshal, WireError, Writer};
use vtpm_wire::constants::AlgId;
use vtpm_wire::object::{Public, PublicId, Sensitive, SensitiveComposite, object_attr};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::PublicParms;

/// A loaded key or data object.
#[derive(Clone, Debug)]
pub struct KeyObject {
    /// The public area.
    pub public: Public,
    /// The sensitive area (`None` for a public-only external object).
    pub sensitive: Option<Sensitive>,
    /// Name: nameAlg || H(public).
    pub name: Vec<u8>,
    /// Qualified Name.
    pub qualified_name: Vec<u8>,
    /// The hierarchy the object belongs to (RH_OWNER, RH_ENDORSEMENT,
    /// RH_PLATFORM or RH_NULL).
    pub hierarchy: u32,
    /// Loaded with TPM2_LoadExternal (tickets it produces are NULL tickets
    /// unless it is in a hierarchy).
    pub external: bool,
    /// A primary object (its parent is a hierarchy).
    pub primary: bool,
    rsa: OnceLock<Option<Arc<RsaKey>>>,
}

/// Name of a public area: nameAlg || H_nameAlg(TPMT_PUBLIC); empty when
/// nameAlg is TPM_ALG_NULL.
pub fn public_name(public: &Public) -> Vec<u8> {
    let Some(alg) = HashAlg::from_alg(public.name_alg) else {
        return Vec::new();
    };
    let mut name = public.name_alg.0.to_be_bytes().to_vec();
    name.extend_from_slice(&alg.digest(&[&public.to_bytes()]));
    name
}

/// Qualified Name of a child: nameAlg || H_nameAlg(QN(parent) || Name).
pub fn qualified_name(public: &Public, parent_qn: &[u8], name: &[u8]) -> Vec<u8> {
    let Some(alg) = HashAlg::from_alg(public.name_alg) else {
        return Vec::new();
    };
    let mut qn = public.name_alg.0.to_be_bytes().to_vec();
    qn.extend_from_slice(&alg.digest(&[parent_qn, name]));
    qn
}

impl KeyObject {
    /// An object with its Name and Qualified Name computed.
    pub fn new(
        public: Public,
        sensitive: Option<Sensitive>,
        hierarchy: u32,
        parent_qn: &[u8],
    ) -> KeyObject {
        let name = public_name(&public);
        let qualified_name = qualified_name(&public, parent_qn, &name);
        KeyObject {
            public,
            sensitive,
            name,
            qualified_name,
            hierarchy,
            external: false,
            primary: false,
            rsa: OnceLock::new(),
        }
    }

    /// The object's nameAlg (SHA-256 for the rare NULL external object).
    pub fn name_alg(&self) -> HashAlg {
        HashAlg::from_alg(self.public.name_alg).unwrap_or(HashAlg::Sha256)
    }

    /// Is attribute `bit` set?
    pub fn has(&self, bit: u32) -> bool {
        self.public.has(bit)
    }

    /// authValue (empty for public-only objects).
    pub fn auth(&self) -> &[u8] {
        self.sensitive
            .as_ref()
            .map_or(&[][..], |s| s.auth_value.as_bytes())
    }

    /// seedValue (empty for public-only objects).
    pub fn seed_value(&self) -> &[u8] {
        self.sensitive
            .as_ref()
            .map_or(&[][..], |s| s.seed_value.as_bytes())
    }

    /// A storage parent: a restricted decryption key with a symmetric
    /// algorithm (Part 1 §27.3.4), with its sensitive area.
    pub fn is_storage_parent(&self) -> bool {
        self.sensitive.is_some()
            && self.has(object_attr::RESTRICTED)
            && self.has(object_attr::DECRYPT)
            && !self.has(object_attr::SIGN)
            && matches!(
                self.public.parms,
                PublicParms::Rsa { .. } | PublicParms::Ecc { .. } | PublicParms::SymCipher { .. }
            )
    }

    /// An asymmetric storage key, possibly public-only (the reference
    /// implementation's ObjectIsStorage): a new parent for duplication and
    /// the protector of credentials.
    pub fn is_asymmetric_storage(&self) -> bool {
        self.has(object_attr::RESTRICTED)
            && self.has(object_attr::DECRYPT)
            && !self.has(object_attr::SIGN)
            && matches!(
                self.public.parms,
                PublicParms::Rsa { .. } | PublicParms::Ecc { .. }
            )
    }

    /// The symmetric definition protecting this parent's children:
    /// (key bits, mode). `None` when it has none.
    pub fn parent_symmetric(&self) -> Option<(u16, AlgId)> {
        let sym = match &self.public.parms {
            PublicParms::Rsa { symmetric, .. } | PublicParms::Ecc { symmetric, .. } => symmetric,
            PublicParms::SymCipher { sym } => sym,
            PublicParms::KeyedHash { .. } => return None,
        };
        (sym.algorithm == AlgId::AES).then_some((sym.key_bits, sym.mode))
    }

    /// The RSA private key (parsed once).
    pub fn rsa_key(&self) -> Result<Arc<RsaKey>, TpmRc> {
        self.rsa
            .get_or_init(|| {
                let (PublicId::Rsa(n), Some(s)) = (&self.public.unique, &self.sensitive) else {
                    return None;
                };
                let SensitiveComposite::Rsa(p) = &s.sensitive else {
                    return None;
                };
                let PublicParms::Rsa { exponent, .. } = self.public.parms else {
                    return None;
                };
                RsaKey::from_prime_shared(n.as_bytes(), exponent, p.as_bytes()).ok()
            })
            .clone()
            .ok_or(TpmRc::KEY)
    }

    /// Sets the parsed RSA key (when the key was just generated).
    pub fn set_rsa_key(&self, key: Arc<RsaKey>) {
        let _ = self.rsa.set(Some(key));
    }

    /// The RSA public key.
    pub fn rsa_public(&self) -> Result<RsaPublic, TpmRc> {
        match (&self.public.parms, &self.public.unique) {
            (PublicParms::Rsa { exponent, .. }, PublicId::Rsa(n)) => {
                RsaPublic::new(n.as_bytes(), *exponent).map_err(|_| TpmRc::KEY)
            }
            _ => Err(TpmRc::KEY),
        }
    }

    /// The object's curve (ECC objects).
    pub fn curve(&self) -> Result<Curve, TpmRc> {
        match &self.public.parms {
            PublicParms::Ecc { curve, .. } => Curve::from_tpm(curve.0).ok_or(TpmRc::CURVE),
            _ => Err(TpmRc::KEY),
        }
    }

    /// The ECC private key.
    pub fn ecc_key(&self) -> Result<EccKey, TpmRc> {
        let curve = self.curve()?;
        match self.sensitive.as_ref().map(|s| &s.sensitive) {
            Some(SensitiveComposite::Ecc(d)) => {
                EccKey::from_scalar(curve, d.as_bytes()).map_err(|_| TpmRc::KEY)
            }
            _ => Err(TpmRc::KEY),
        }
    }

    /// The ECC public point.
    pub fn ecc_public(&self) -> Result<EccPoint, TpmRc> {
        match &self.public.unique {
            PublicId::Ecc(p) => Ok(EccPoint {
                x: p.x.as_bytes().to_vec(),
                y: p.y.as_bytes().to_vec(),
            }),
            _ => Err(TpmRc::KEY),
        }
    }

    /// The keyed-hash object's data (HMAC key or sealed data) or the
    /// symmetric key.
    pub fn sensitive_bits(&self) -> Result<&[u8], TpmRc> {
        match self.sensitive.as_ref().map(|s| &s.sensitive) {
            Some(SensitiveComposite::Bits(b)) => Ok(b.as_bytes()),
            Some(SensitiveComposite::Sym(b)) => Ok(b.as_bytes()),
            _ => Err(TpmRc::KEY),
        }
    }

    /// Serializes the object (saved contexts, persistent objects).
    pub fn write(&self, w: &mut Writer) {
        w.sized_u16(|w| w.write(&self.public));
        match &self.sensitive {
            None => w.u16(0),
            Some(s) => w.sized_u16(|w| w.write(s)),
        }
        w.sized_u16(|w| w.bytes(&self.qualified_name));
        w.u32(self.hierarchy);
        w.u8(u8::from(self.external) | (u8::from(self.primary) << 1));
    }

    /// Reads what [`KeyObject::write`] wrote.
    pub fn read(r: &mut Reader<'_>) -> Result<KeyObject, WireError> {
        let n = usize::from(r.u16()?);
        let mut sub = r.sub(n)?;
        let public = Public::unmarshal(&mut sub)?;
        sub.finish()?;
        let n = usize::from(r.u16()?);
        let sensitive = if n == 0 {
            None
        } else {
            let mut sub = r.sub(n)?;
            let s = Sensitive::unmarshal(&mut sub)?;
            sub.finish()?;
            Some(s)
        };
        let n = usize::from(r.u16()?);
        let qualified_name = r.take(n)?.to_vec();
        let hierarchy = r.u32()?;
        let flags = r.u8()?;
        if flags > 3 {
            return Err(WireError::Value);
        }
        let name = public_name(&public);
        Ok(KeyObject {
            public,
            sensitive,
            name,
            qualified_name,
            hierarchy,
            external: flags & 1 != 0,
            primary: flags & 2 != 0,
            rsa: OnceLock::new(),
        })
    }
}

impl Marshal for KeyObject {
    fn marshal(&self, w: &mut Writer) {
        self.write(w);
    }
}
