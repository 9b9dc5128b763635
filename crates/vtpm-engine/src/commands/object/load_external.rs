//! TPM2_LoadExternal (Part 3 §12.3): loads an object that is not a
//! Protected Object: a public area alone, or a public area with its
//! sensitive area in the clear. An object with a sensitive area goes to
//! the null hierarchy only and may not claim to be this TPM's
//! (fixedTPM, fixedParent and restricted CLEAR). Its Qualified Name is its
//! Name.

use crate::Tpm;
use crate::crypto::ecc::{Curve, EccPoint, point_is_valid};
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use crate::keys::create::check_binding;
use crate::keys::template::{P_PUBLIC, P_SENSITIVE, attributes_validation, scheme_checks};
use crate::keys::{KeyObject, public_name};
use crate::objects::Object;
use std::sync::Arc;
use vtpm_wire::constants::{AlgId, handle};
use vtpm_wire::object::{
    Public, PublicId, Sensitive, SensitiveComposite, Tpm2bPublic, Tpm2bSensitive, object_attr as oa,
};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{PublicParms, read_hierarchy};

/// Parameter number of hierarchy.
const P_HIERARCHY: usize = 3;

/// TPM2_LoadExternal.
pub struct LoadExternal;

/// TPM2_LoadExternal's parameters.
pub struct LoadExternalIn {
    in_private: Option<Sensitive>,
    in_public: Public,
    hierarchy: u32,
}

fn public_err(rc: TpmRc) -> TpmRc {
    rc.with_parameter(P_PUBLIC)
}

fn sensitive_err(rc: TpmRc) -> TpmRc {
    rc.with_parameter(P_SENSITIVE)
}

/// A public area loaded alone: its key must have the size its parameters
/// say (TPM_RC_KEY) and an ECC point must be on the curve
/// (TPM_RC_ECC_POINT) when the object has a Name.
fn check_public_only(public: &Public) -> Result<(), TpmRc> {
    match (&public.parms, &public.unique) {
        (PublicParms::Rsa { key_bits, .. }, PublicId::Rsa(n)) => {
            let n = n.as_bytes();
            if n.len() * 8 != usize::from(*key_bits) || n.first().is_none_or(|&b| b < 0x80) {
                return Err(public_err(TpmRc::KEY));
            }
        }
        (PublicParms::Ecc { curve, .. }, PublicId::Ecc(q)) => {
            let curve = Curve::from_tpm(curve.0).ok_or(public_err(TpmRc::CURVE))?;
            if q.x.len() != curve.size() || q.y.len() != curve.size() {
                return Err(public_err(TpmRc::KEY));
            }
            let point = EccPoint {
                x: q.x.as_bytes().to_vec(),
                y: q.y.as_bytes().to_vec(),
            };
            if public.name_alg != AlgId::NULL && !point_is_valid(curve, &point) {
                return Err(public_err(TpmRc::ECC_POINT));
            }
        }
        (PublicParms::KeyedHash { .. }, PublicId::KeyedHash(u))
        | (PublicParms::SymCipher { .. }, PublicId::Sym(u)) => {
            // unique is a digest of nameAlg (nothing for TPM_ALG_NULL).
            let size = HashAlg::from_alg(public.name_alg).map_or(0, HashAlg::size);
            if u.len() != size {
                return Err(public_err(TpmRc::KEY));
            }
        }
        _ => return Err(public_err(TpmRc::TYPE)),
    }
    Ok(())
}

/// A public area with its sensitive area: they must belong together.
/// Without a nameAlg there is no unique field to check a symmetric or
/// keyed-hash key against, only its size.
fn check_with_sensitive(
    public: &Public,
    sensitive: &Sensitive,
) -> Result<Option<Arc<crate::crypto::rsa::RsaKey>>, TpmRc> {
    if sensitive.type_alg() != public.type_alg() {
        return Err(sensitive_err(TpmRc::TYPE));
    }
    let name_alg = HashAlg::from_alg(public.name_alg);
    if let Some(alg) = name_alg
        && sensitive.auth_value.len() > alg.size()
    {
        return Err(sensitive_err(TpmRc::SIZE));
    }
    let key_size_err = || sensitive_err(TpmRc::KEY_SIZE);
    let too_big = match (&public.parms, &sensitive.sensitive) {
        (PublicParms::SymCipher { sym }, SensitiveComposite::Sym(k)) => {
            k.len() * 8 != usize::from(sym.key_bits)
        }
        // An HMAC key is at most a block of its hash; data at most 128
        // octets (the buffer's size).
        (PublicParms::KeyedHash { scheme }, SensitiveComposite::Bits(b)) => {
            let max = scheme
                .hash_alg
                .and_then(HashAlg::from_alg)
                .map_or(128, HashAlg::block_size);
            b.len() > max
        }
        _ => false,
    };
    if too_big {
        return Err(key_size_err());
    }
    match (&public.parms, name_alg) {
        (PublicParms::SymCipher { .. } | PublicParms::KeyedHash { .. }, None) => Ok(None),
        (PublicParms::SymCipher { .. } | PublicParms::KeyedHash { .. }, Some(alg))
            if sensitive.seed_value.len() != alg.size() =>
        {
            Err(key_size_err())
        }
        _ => check_binding(public, sensitive).map_err(|rc| match rc {
            TpmRc::KEY_SIZE | TpmRc::TYPE => sensitive_err(rc),
            TpmRc::BINDING => rc,
            _ => public_err(rc),
        }),
    }
}

impl Command for LoadExternal {
    type In = LoadExternalIn;

    fn read(p: &mut Params<'_>) -> Result<LoadExternalIn, TpmRc> {
        let Tpm2bSensitive(in_private) = p.read()?;
        let Tpm2bPublic(in_public) = p.read()?;
        let hierarchy = p.with(|r| read_hierarchy(r, true))?;
        Ok(LoadExternalIn {
            in_private,
            in_public,
            hierarchy,
        })
    }

    fn action(
        tpm: &mut Tpm,
        _call: &Call,
        input: LoadExternalIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        if tpm.v.objects.available() == 0 {
            return Err(TpmRc::OBJECT_MEMORY);
        }
        if !tpm.hierarchy_enabled(input.hierarchy) {
            return Err(TpmRc::HIERARCHY.with_parameter(P_HIERARCHY));
        }
        let public = input.in_public;
        let rsa = match &input.in_private {
            None => {
                scheme_checks(&public)?;
                check_public_only(&public)?;
                None
            }
            Some(sensitive) => {
                // Only the null hierarchy, and nothing that could pass for
                // an object of this TPM.
                if input.hierarchy != handle::RH_NULL {
                    return Err(TpmRc::HIERARCHY.with_parameter(P_HIERARCHY));
                }
                if public.has(oa::FIXED_TPM)
                    || public.has(oa::FIXED_PARENT)
                    || public.has(oa::RESTRICTED)
                {
                    return Err(public_err(TpmRc::ATTRIBUTES));
                }
                if public.name_alg == AlgId::NULL {
                    scheme_checks(&public)?;
                } else {
                    attributes_validation(&public, None)?;
                    scheme_checks(&public)?;
                }
                check_with_sensitive(&public, sensitive)?
            }
        };
        let name = public_name(&public);
        let mut obj = KeyObject::new(public, input.in_private, input.hierarchy, &[]);
        obj.qualified_name = name.clone();
        obj.external = true;
        if let Some(k) = rsa {
            obj.set_rsa_key(k);
        }
        let h = tpm
            .v
            .objects
            .insert(Object::Key(Box::new(obj)))
            .ok_or(TpmRc::OBJECT_MEMORY)?;
        out.handle = Some(h);
        out.params.sized_u16(|w| w.bytes(&name));
        Ok(())
    }
}
