//! TPM2_Sign (Part 3 §20.2).

use super::{SignError, is_signing_key, select_sign_scheme, sign_digest};
use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::StructureTag;
use vtpm_wire::object::{SigScheme, Ticket, object_attr};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Digest;

/// TPM2_Sign.
pub struct Sign;

/// TPM2_Sign parameters.
pub struct SignIn {
    digest: Digest,
    in_scheme: SigScheme,
    validation: Ticket,
}

impl Command for Sign {
    type In = SignIn;

    fn read(p: &mut Params<'_>) -> Result<SignIn, TpmRc> {
        let digest = p.read()?;
        let in_scheme = p.read()?;
        let validation = p.with(|r| Ticket::read(r, StructureTag::HASHCHECK))?;
        Ok(SignIn {
            digest,
            in_scheme,
            validation,
        })
    }

    fn action(tpm: &mut Tpm, call: &Call, input: SignIn, out: &mut Output) -> Result<(), TpmRc> {
        let key = tpm
            .object(call.handles[0])
            .filter(|k| is_signing_key(k))
            .ok_or(TpmRc::KEY.with_handle(1))?;
        let scheme =
            select_sign_scheme(key, input.in_scheme).ok_or(TpmRc::SCHEME.with_parameter(2))?;
        let hash = HashAlg::from_alg(scheme.hash).ok_or(TpmRc::SCHEME.with_parameter(2))?;
        let digest = input.digest.as_bytes();
        if !input.validation.digest.is_empty() || key.has(object_attr::RESTRICTED) {
            // A restricted key signs only digests the TPM computed itself
            // over data that does not start with TPM_GENERATED_VALUE.
            // The ticket: HMAC(proof, TPM_ST_HASHCHECK || hashAlg || digest).
            let alg = hash.alg().0.to_be_bytes();
            if !tpm.ticket_valid(&input.validation, &[&alg, digest]) {
                return Err(TpmRc::TICKET.with_parameter(3));
            }
        } else if digest.len() != hash.size() {
            return Err(TpmRc::SIZE.with_parameter(1));
        }
        let signature = sign_digest(key, scheme, digest).map_err(|e| match e {
            SignError::Scheme => TpmRc::SCHEME.with_parameter(2),
            SignError::Value => TpmRc::VALUE.with_parameter(1),
            other => other.rc().with_handle(1),
        })?;
        out.params.write(&signature);
        Ok(())
    }
}
