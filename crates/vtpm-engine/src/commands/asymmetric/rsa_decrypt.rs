//! TPM2_RSA_Decrypt (Part 3 §14.3).

use super::{check_label, rsa_key, select_padding};
use crate::Tpm;
use crate::crypto::rsa::RsaError;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::object::{PublicKeyRsa, RsaDecryptScheme, object_attr};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Data;

/// TPM2_RSA_Decrypt.
pub struct RsaDecrypt;

/// TPM2_RSA_Decrypt parameters.
pub struct RsaDecryptIn {
    cipher_text: PublicKeyRsa,
    in_scheme: RsaDecryptScheme,
    label: Data,
}

impl Command for RsaDecrypt {
    type In = RsaDecryptIn;

    fn read(p: &mut Params<'_>) -> Result<RsaDecryptIn, TpmRc> {
        Ok(RsaDecryptIn {
            cipher_text: p.read()?,
            in_scheme: p.read()?,
            label: p.read()?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: RsaDecryptIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let key = rsa_key(tpm.object(call.handles[0]))?;
        if key.has(object_attr::RESTRICTED) || !key.has(object_attr::DECRYPT) {
            return Err(TpmRc::ATTRIBUTES.with_handle(1));
        }
        check_label(&input.label)?;
        let padding = select_padding(key, input.in_scheme, &input.label)?;
        let public = key.rsa_public().map_err(|_| TpmRc::KEY.with_handle(1))?;
        if input.cipher_text.len() != public.modulus().len() {
            return Err(TpmRc::SIZE.with_parameter(1));
        }
        let private = key.rsa_key().map_err(|_| TpmRc::KEY.with_handle(1))?;
        let message = private
            .decrypt(&padding, input.cipher_text.as_bytes())
            .map_err(|e| match e {
                RsaError::CiphertextSize => TpmRc::SIZE.with_parameter(1),
                RsaError::ValueTooLarge | RsaError::Decryption => TpmRc::VALUE.with_parameter(1),
                _ => TpmRc::FAILURE,
            })?;
        out.params
            .write(&PublicKeyRsa::new(&message).map_err(|_| TpmRc::FAILURE)?);
        Ok(())
    }
}
