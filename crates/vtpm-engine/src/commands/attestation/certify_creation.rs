//! TPM2_CertifyCreation (Part 3 §18.3).

use super::{sign_attest, signer};
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::attest::{Attested, CreationInfo};
use vtpm_wire::constants::StructureTag;
use vtpm_wire::object::{SigScheme, Ticket};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Data, Digest, Name};

/// TPM2_CertifyCreation.
pub struct CertifyCreation;

/// TPM2_CertifyCreation parameters.
pub struct CertifyCreationIn {
    qualifying_data: Data,
    creation_hash: Digest,
    in_scheme: SigScheme,
    creation_ticket: Ticket,
}

impl Command for CertifyCreation {
    type In = CertifyCreationIn;

    fn read(p: &mut Params<'_>) -> Result<CertifyCreationIn, TpmRc> {
        Ok(CertifyCreationIn {
            qualifying_data: p.read()?,
            creation_hash: p.read()?,
            in_scheme: p.read()?,
            creation_ticket: p.with(|r| Ticket::read(r, StructureTag::CREATION))?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: CertifyCreationIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let (key, scheme) = signer(tpm, call.handles[0], input.in_scheme, 1, 3)?;
        let certified = tpm
            .object(call.handles[1])
            .ok_or(TpmRc::HANDLE.with_handle(2))?;
        // TPMT_TK_CREATION: HMAC(proof, TPM_ST_CREATION || Name || creationHash).
        if !tpm.ticket_valid(
            &input.creation_ticket,
            &[&certified.name, input.creation_hash.as_bytes()],
        ) {
            return Err(TpmRc::TICKET.with_parameter(4));
        }
        let info = CreationInfo {
            object_name: Name::new(&certified.name).map_err(|_| TpmRc::FAILURE)?,
            creation_hash: input.creation_hash,
        };
        let attest = tpm.fill_attest(
            key.as_ref(),
            &input.qualifying_data,
            Attested::Creation(info),
        )?;
        sign_attest(key.as_ref(), scheme, attest, 1, 3, out)
    }
}
