//! TPM2_MakeCredential (Part 3 §12.6): what a certificate authority sends
//! to a TPM to prove that an object with a given Name lives in the same TPM
//! as a key it trusts (Part 1 §24): a seed shared with that key (label
//! "IDENTITY") and the credential under an outer wrap bound to the Name.
//! Needs only the key's public part.

use crate::Tpm;
use crate::commands::duplication::outer_of;
use crate::dispatch::{Call, Command, Output, Params};
use crate::keys::protect::secret_to_credential;
use crate::keys::secret::{IDENTITY, secret_encrypt};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Digest, Name};

/// TPM2_MakeCredential.
pub struct MakeCredential;

impl Command for MakeCredential {
    /// (credential, objectName).
    type In = (Digest, Name);

    fn read(p: &mut Params<'_>) -> Result<Self::In, TpmRc> {
        Ok((p.read()?, p.read()?))
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        (credential, object_name): Self::In,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        // An asymmetric restricted decryption key: it has a symmetric
        // algorithm for the outer wrap.
        let key = match tpm.object(call.handles[0]) {
            Some(k) if k.is_asymmetric_storage() => k.clone(),
            _ => return Err(TpmRc::TYPE.with_handle(1)),
        };
        if credential.len() > key.name_alg().size() {
            return Err(TpmRc::SIZE.with_parameter(1));
        }
        let (seed, secret) = {
            let mut rng = |b: &mut [u8]| tpm.random(b);
            secret_encrypt(&key, IDENTITY, &mut rng).map_err(|rc| rc.with_handle(1))?
        };
        let outer = outer_of(&key, &seed).map_err(|rc| rc.with_handle(1))?;
        let blob = secret_to_credential(credential.as_bytes(), object_name.as_bytes(), outer)?;
        out.params.sized_u16(|w| w.bytes(&blob));
        out.params.sized_u16(|w| w.bytes(&secret));
        Ok(())
    }
}
