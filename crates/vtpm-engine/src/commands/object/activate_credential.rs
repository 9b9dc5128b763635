//! TPM2_ActivateCredential (Part 3 §12.5): recovers a credential made by
//! TPM2_MakeCredential when the object it names (activateHandle, ADMIN
//! role) and the key it was made for (keyHandle) are both loaded here.

use crate::Tpm;
use crate::commands::duplication::outer_of;
use crate::dispatch::{Call, Command, Output, Params};
use crate::keys::protect::credential_to_secret;
use crate::keys::secret::{IDENTITY, secret_decrypt};
use vtpm_wire::object::IdObject;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::EncryptedSecret;

/// TPM2_ActivateCredential.
pub struct ActivateCredential;

impl Command for ActivateCredential {
    /// (credentialBlob, secret).
    type In = (IdObject, EncryptedSecret);

    fn read(p: &mut Params<'_>) -> Result<Self::In, TpmRc> {
        Ok((p.read()?, p.read()?))
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        (credential_blob, secret): Self::In,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let [activate_handle, key_handle, _] = call.handles;
        let key = match tpm.object(key_handle) {
            Some(k) if k.is_asymmetric_storage() => k.clone(),
            _ => return Err(TpmRc::TYPE.with_handle(2)),
        };
        if key.sensitive.is_none() {
            return Err(TpmRc::KEY.with_handle(2));
        }
        // The credential is bound to the Name of the activated object (a
        // sequence object has none to be credentialed for).
        let name = tpm
            .object(activate_handle)
            .map(|o| o.name.clone())
            .ok_or(TpmRc::TYPE.with_handle(1))?;
        let seed = secret_decrypt(&key, IDENTITY, secret.as_bytes()).map_err(|rc| {
            if rc == TpmRc::KEY {
                TpmRc::FAILURE
            } else {
                rc.with_parameter(2)
            }
        })?;
        let outer = outer_of(&key, &seed).map_err(|rc| rc.with_handle(2))?;
        let cert_info = credential_to_secret(credential_blob.as_bytes(), &name, outer)
            .map_err(|rc| rc.with_parameter(1))?;
        out.params.sized_u16(|w| w.bytes(&cert_info));
        Ok(())
    }
}
