//! Part 3 chapter 14: Asymmetric Primitives, and what RSA_Encrypt and
//! RSA_Decrypt share: the label rule and scheme selection (the reference
//! implementation's CryptRsaSelectScheme).

pub mod ecc_parameters;
pub mod ecdh_key_gen;
pub mod ecdh_zgen;
pub mod rsa_decrypt;
pub mod rsa_encrypt;

use crate::crypto::ecc::EccPoint;
use crate::crypto::hash::HashAlg;
use crate::crypto::rsa::RsaDecryptScheme as Padding;
use crate::keys::KeyObject;
use vtpm_wire::constants::AlgId;
use vtpm_wire::object::{EccParameter, RsaDecryptScheme, Tpm2bEccPoint};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Data, PublicParms};

/// Parameter number of inScheme in RSA_Encrypt and RSA_Decrypt.
const P_SCHEME: usize = 2;
/// Parameter number of label in RSA_Encrypt and RSA_Decrypt.
const P_LABEL: usize = 3;

/// The label rule of Part 3 §14.2: a label, when present, is a string
/// whose last octet is its terminating zero (TPM_RC_VALUE otherwise); the
/// zero is part of the label OAEP uses.
fn check_label(label: &Data) -> Result<(), TpmRc> {
    match label.as_bytes().last() {
        None | Some(0) => Ok(()),
        Some(_) => Err(TpmRc::VALUE.with_parameter(P_LABEL)),
    }
}

/// The padding for RSA_Encrypt / RSA_Decrypt: the key's scheme when it has
/// one (`in_scheme` must then be TPM_ALG_NULL or the same), else
/// `in_scheme`; both TPM_ALG_NULL is raw RSA. TPM_RC_SCHEME when they
/// disagree or the result is not an encryption scheme.
fn select_padding(
    key: &KeyObject,
    in_scheme: RsaDecryptScheme,
    label: &Data,
) -> Result<Padding, TpmRc> {
    let err = TpmRc::SCHEME.with_parameter(P_SCHEME);
    let PublicParms::Rsa { scheme, .. } = &key.public.parms else {
        return Err(TpmRc::KEY.with_handle(1));
    };
    let key_scheme = RsaDecryptScheme {
        scheme: scheme.scheme,
        hash: scheme.hash_alg.unwrap_or(AlgId::NULL),
    };
    let selected = if key_scheme.scheme == AlgId::NULL {
        in_scheme
    } else if in_scheme.scheme == AlgId::NULL || in_scheme == key_scheme {
        key_scheme
    } else {
        return Err(err);
    };
    match selected.scheme {
        AlgId::NULL => Ok(Padding::Raw),
        AlgId::RSAES => Ok(Padding::Rsaes),
        AlgId::OAEP => Ok(Padding::Oaep {
            hash: HashAlg::from_alg(selected.hash).ok_or(err)?,
            label: label.as_bytes().to_vec(),
        }),
        _ => Err(err),
    }
}

/// The object, if it is an RSA key (TPM_RC_KEY on handle 1 otherwise).
fn rsa_key(key: Option<&KeyObject>) -> Result<&KeyObject, TpmRc> {
    key.filter(|k| matches!(k.public.parms, PublicParms::Rsa { .. }))
        .ok_or(TpmRc::KEY.with_handle(1))
}

/// The object, if it is an ECC key (TPM_RC_KEY on handle 1 otherwise).
fn ecc_key(key: Option<&KeyObject>) -> Result<&KeyObject, TpmRc> {
    key.filter(|k| matches!(k.public.parms, PublicParms::Ecc { .. }))
        .ok_or(TpmRc::KEY.with_handle(1))
}

/// A point as TPM2B_ECC_POINT carries it.
fn wire_point(p: &EccPoint) -> Result<Tpm2bEccPoint, TpmRc> {
    Ok(Tpm2bEccPoint(vtpm_wire::object::EccPoint {
        x: EccParameter::new(&p.x).map_err(|_| TpmRc::FAILURE)?,
        y: EccParameter::new(&p.y).map_err(|_| TpmRc::FAILURE)?,
    }))
}

/// A TPMS_ECC_POINT as the crypto module takes it.
fn crypto_point(p: &vtpm_wire::object::EccPoint) -> EccPoint {
    EccPoint {
        x: p.x.as_bytes().to_vec(),
        y: p.y.as_bytes().to_vec(),
    }
}
