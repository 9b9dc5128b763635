//! Checks of a public area against the rules of Part 1 §27 (object
//! attributes) and Part 3 TPM2_Create (templates and the sensitive data
//! given with them). Every command that takes a public area as its second
//! parameter (Create, CreatePrimary, CreateLoaded, Load, LoadExternal,
//! Import) uses these; errors carry parameter 1 (the sensitive part) or 2
//! (the public area).

use super::KeyObject;
use crate::crypto::hash::HashAlg;
use vtpm_wire::constants::AlgId;
use vtpm_wire::object::{Public, object_attr as oa};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{PublicParms, Scheme};

/// Parameter number of the sensitive part.
pub const P_SENSITIVE: usize = 1;
/// Parameter number of the public area.
pub const P_PUBLIC: usize = 2;

fn public_err(rc: TpmRc) -> TpmRc {
    rc.with_parameter(P_PUBLIC)
}

/// Part 1 §27.2 attribute consistency, and against the parent's
/// attributes (`None`: a primary object, whose parent is a hierarchy).
pub fn attributes_validation(public: &Public, parent: Option<&KeyObject>) -> Result<(), TpmRc> {
    let has = |b| public.has(b);
    let attr_err = || public_err(TpmRc::ATTRIBUTES);
    // The parent's fixedTPM decides what fixedTPM/fixedParent may be.
    let parent_fixed_tpm = parent.is_none_or(|p| p.has(oa::FIXED_TPM));
    if parent_fixed_tpm {
        // Under a fixedTPM parent, fixedParent implies fixedTPM and
        // fixedTPM needs fixedParent.
        if has(oa::FIXED_PARENT) != has(oa::FIXED_TPM) {
            return Err(attr_err());
        }
    } else if has(oa::FIXED_TPM) {
        return Err(attr_err());
    }
    // sign and decrypt: a restricted key has exactly one; only a data
    // object may have neither.
    if has(oa::SIGN) == has(oa::DECRYPT) {
        if has(oa::RESTRICTED) {
            return Err(attr_err());
        }
        if !has(oa::SIGN) && public.type_alg() != AlgId::KEYEDHASH {
            return Err(attr_err());
        }
    }
    // An object that cannot be duplicated has no use for
    // encryptedDuplication.
    if has(oa::FIXED_TPM) && has(oa::ENCRYPTED_DUPLICATION) {
        return Err(attr_err());
    }
    // Children of a parent with encryptedDuplication inherit it unless they
    // cannot leave the TPM.
    if let Some(p) = parent
        && p.has(oa::ENCRYPTED_DUPLICATION)
        && !has(oa::ENCRYPTED_DUPLICATION)
        && !has(oa::FIXED_TPM)
    {
        return Err(attr_err());
    }
    // A storage key that cannot leave its parent uses its parent's nameAlg
    // and symmetric algorithm.
    if let Some(p) = parent
        && has(oa::RESTRICTED)
        && has(oa::DECRYPT)
        && has(oa::FIXED_PARENT)
    {
        if public.name_alg != p.public.name_alg {
            return Err(public_err(TpmRc::HASH));
        }
        let own = match &public.parms {
            PublicParms::Rsa { symmetric, .. } | PublicParms::Ecc { symmetric, .. } => {
                Some((symmetric.key_bits, symmetric.mode))
            }
            PublicParms::SymCipher { sym } => Some((sym.key_bits, sym.mode)),
            PublicParms::KeyedHash { .. } => None,
        };
        if own.is_some() && own != p.parent_symmetric() {
            return Err(public_err(TpmRc::SYMMETRIC));
        }
    }
    // authPolicy is empty or a digest of nameAlg.
    let policy = public.auth_policy.len();
    match HashAlg::from_alg(public.name_alg) {
        Some(alg) if policy != 0 && policy != alg.size() => {
            return Err(public_err(TpmRc::SIZE));
        }
        None if policy != 0 => return Err(public_err(TpmRc::SIZE)),
        _ => {}
    }
    Ok(())
}

fn is_sign_scheme(scheme: AlgId, ty: AlgId) -> bool {
    match ty {
        AlgId::RSA => matches!(scheme, AlgId::RSASSA | AlgId::RSAPSS),
        AlgId::ECC => scheme == AlgId::ECDSA,
        AlgId::KEYEDHASH => scheme == AlgId::HMAC,
        _ => false,
    }
}

fn is_decrypt_scheme(scheme: AlgId, ty: AlgId) -> bool {
    match ty {
        AlgId::RSA => matches!(scheme, AlgId::RSAES | AlgId::OAEP),
        AlgId::ECC => scheme == AlgId::ECDH,
        _ => false,
    }
}

/// Scheme and symmetric-algorithm consistency (the reference
/// implementation's SchemeChecks).
pub fn scheme_checks(public: &Public) -> Result<(), TpmRc> {
    let ty = public.type_alg();
    let restricted = public.has(oa::RESTRICTED);
    let sign = public.has(oa::SIGN);
    let decrypt = public.has(oa::DECRYPT);
    let check_scheme = |scheme: &Scheme| -> Result<(), TpmRc> {
        let s = scheme.scheme;
        if sign && decrypt {
            // An unrestricted sign+decrypt key has the scheme chosen per use.
            if s != AlgId::NULL {
                return Err(public_err(TpmRc::SCHEME));
            }
        } else if sign {
            if s == AlgId::NULL {
                if restricted {
                    return Err(public_err(TpmRc::SCHEME));
                }
            } else if !is_sign_scheme(s, ty) {
                return Err(public_err(TpmRc::SCHEME));
            }
        } else if decrypt {
            if restricted {
                if s != AlgId::NULL {
                    return Err(public_err(TpmRc::SCHEME));
                }
            } else if s != AlgId::NULL && !is_decrypt_scheme(s, ty) {
                return Err(public_err(TpmRc::SCHEME));
            }
        } else if s != AlgId::NULL {
            return Err(public_err(TpmRc::SCHEME));
        }
        Ok(())
    };
    match &public.parms {
        PublicParms::KeyedHash { scheme } => {
            if decrypt {
                // A keyed-hash decryption key is a derivation parent, which
                // this TPM does not implement.
                return Err(public_err(TpmRc::ATTRIBUTES));
            }
            check_scheme(scheme)
        }
        PublicParms::SymCipher { sym } => {
            // `sign` allows encryption, `decrypt` decryption; a restricted
            // symmetric key is a storage parent and only decrypts.
            if restricted && sign {
                return Err(public_err(TpmRc::ATTRIBUTES));
            }
            if restricted && sym.mode != AlgId::CFB {
                return Err(public_err(TpmRc::MODE));
            }
            Ok(())
        }
        PublicParms::Rsa {
            symmetric, scheme, ..
        }
        | PublicParms::Ecc {
            symmetric, scheme, ..
        } => {
            if restricted && decrypt {
                // A storage key: a CFB block cipher protects its children.
                if symmetric.algorithm == AlgId::NULL {
                    return Err(public_err(TpmRc::SYMMETRIC));
                }
                if symmetric.mode != AlgId::CFB {
                    return Err(public_err(TpmRc::MODE));
                }
            } else if symmetric.algorithm != AlgId::NULL {
                return Err(public_err(TpmRc::SYMMETRIC));
            }
            check_scheme(scheme)?;
            if let PublicParms::Ecc { kdf, .. } = &public.parms
                && kdf.scheme != AlgId::NULL
            {
                return Err(public_err(TpmRc::KDF));
            }
            if let PublicParms::Rsa { exponent, .. } = &public.parms
                && *exponent != 0
                && (*exponent < 3 || exponent % 2 == 0)
            {
                return Err(public_err(TpmRc::VALUE));
            }
            Ok(())
        }
    }
}

/// The checks of TPM2_Create / CreatePrimary / CreateLoaded on a template
/// and the sensitive data given with it.
pub fn create_checks(
    public: &Public,
    user_auth: &[u8],
    data: &[u8],
    parent: Option<&KeyObject>,
) -> Result<(), TpmRc> {
    let name_alg = HashAlg::from_alg(public.name_alg).ok_or(public_err(TpmRc::HASH))?;
    if user_auth.len() > name_alg.size() {
        return Err(TpmRc::SIZE.with_parameter(P_SENSITIVE));
    }
    let origin = public.has(oa::SENSITIVE_DATA_ORIGIN);
    // The caller provides the data exactly when sensitiveDataOrigin is
    // CLEAR; a primary object may mix extra data into its derivation.
    if !origin && data.is_empty() {
        return Err(public_err(TpmRc::ATTRIBUTES));
    }
    if parent.is_some() && origin && !data.is_empty() {
        return Err(public_err(TpmRc::ATTRIBUTES));
    }
    let restricted_provided = public.has(oa::RESTRICTED)
        && !origin
        && (public.has(oa::FIXED_PARENT) || public.has(oa::FIXED_TPM));
    match &public.parms {
        PublicParms::KeyedHash { .. } => {
            let data_object = !public.has(oa::SIGN) && !public.has(oa::DECRYPT);
            if (data_object && origin) || restricted_provided {
                return Err(public_err(TpmRc::ATTRIBUTES));
            }
        }
        PublicParms::SymCipher { sym } => {
            if restricted_provided {
                return Err(public_err(TpmRc::ATTRIBUTES));
            }
            if !origin && data.len() * 8 != usize::from(sym.key_bits) {
                return Err(TpmRc::KEY_SIZE.with_parameter(P_SENSITIVE));
            }
        }
        PublicParms::Rsa { .. } | PublicParms::Ecc { .. } => {
            if !origin {
                return Err(public_err(TpmRc::ATTRIBUTES));
            }
        }
    }
    attributes_validation(public, parent)?;
    scheme_checks(public)
}

/// The checks of TPM2_Load on a public area that comes with a private
/// area from outside (the TPM did not create it in this call).
pub fn load_checks(public: &Public, parent: Option<&KeyObject>) -> Result<(), TpmRc> {
    if HashAlg::from_alg(public.name_alg).is_none() {
        return Err(public_err(TpmRc::HASH));
    }
    attributes_validation(public, parent)?;
    scheme_checks(public)
}
