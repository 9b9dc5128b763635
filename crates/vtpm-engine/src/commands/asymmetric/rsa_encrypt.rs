//! TPM2_RSA_Encrypt (Part 3 §14.2).

use super::{check_label, rsa_key, select_padding};
use crate::Tpm;
use crate::crypto::rsa::{RsaDecryptScheme as Padding, RsaError};
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::object::{PublicKeyRsa, RsaDecryptScheme, object_attr};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Data;

/// TPM2_RSA_Encrypt.
pub struct RsaEncrypt;

/// TPM2_RSA_Encrypt parameters.
pub struct RsaEncryptIn {
    message: PublicKeyRsa,
    in_scheme: RsaDecryptScheme,
    label: Data,
}

impl Command for RsaEncrypt {
    type In = RsaEncryptIn;

    fn read(p: &mut Params<'_>) -> Result<RsaEncryptIn, TpmRc> {
        Ok(RsaEncryptIn {
            message: p.read()?,
            in_scheme: p.read()?,
            label: p.read()?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: RsaEncryptIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let key = rsa_key(tpm.object(call.handles[0]))?;
        if !key.has(object_attr::DECRYPT) {
            return Err(TpmRc::ATTRIBUTES.with_handle(1));
        }
        check_label(&input.label)?;
        let padding = select_padding(key, input.in_scheme, &input.label)?;
        let public = key.rsa_public().map_err(|_| TpmRc::KEY.with_handle(1))?;
        let mut message = input.message.as_bytes();
        if padding == Padding::Raw {
            // A number: leading zeros do not count against the modulus size.
            let zeros = message.iter().take_while(|&&b| b == 0).count();
            message = message.get(zeros..).unwrap_or_default();
        }
        let mut rng = |b: &mut [u8]| tpm.random(b);
        let c = public
            .encrypt(&mut rng, &padding, message)
            .map_err(|e| match e {
                RsaError::MessageTooLong | RsaError::ValueTooLarge => {
                    TpmRc::VALUE.with_parameter(1)
                }
                _ => TpmRc::FAILURE,
            })?;
        out.params
            .write(&PublicKeyRsa::new(&c).map_err(|_| TpmRc::FAILURE)?);
        Ok(())
    }
}
