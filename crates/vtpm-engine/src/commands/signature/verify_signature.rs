//! TPM2_VerifySignature (Part 3 §20.1).

use super::{SignError, validate_signature};
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::tickets::null_ticket;
use vtpm_wire::constants::{AlgId, StructureTag};
use vtpm_wire::object::{Signature, object_attr};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Digest;

/// TPM2_VerifySignature.
pub struct VerifySignature;

/// TPM2_VerifySignature parameters.
pub struct VerifySignatureIn {
    digest: Digest,
    signature: Signature,
}

impl Command for VerifySignature {
    type In = VerifySignatureIn;

    fn read(p: &mut Params<'_>) -> Result<VerifySignatureIn, TpmRc> {
        let digest = p.read()?;
        let signature = p.read()?;
        // TPMT_SIGNATURE without '+': TPM_ALG_NULL is not a signature.
        if signature == Signature::Null {
            return Err(TpmRc::SCHEME.with_parameter(2));
        }
        Ok(VerifySignatureIn { digest, signature })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: VerifySignatureIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let key = tpm
            .object(call.handles[0])
            .filter(|k| k.has(object_attr::SIGN))
            .ok_or(TpmRc::ATTRIBUTES.with_handle(1))?;
        let digest = input.digest.as_bytes();
        validate_signature(key, digest, &input.signature).map_err(|e| match e {
            SignError::Key | SignError::Handle => e.rc().with_handle(1),
            other => other.rc().with_parameter(2),
        })?;
        // Tickets are for keys of a hierarchy that have a Name.
        let ticket = if key.public.name_alg == AlgId::NULL {
            null_ticket(StructureTag::VERIFIED)
        } else {
            tpm.ticket(StructureTag::VERIFIED, key.hierarchy, &[digest, &key.name])
        };
        out.params.write(&ticket);
        Ok(())
    }
}
