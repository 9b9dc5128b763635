//! TPM2_GetSessionAuditDigest (Part 3 §18.5).

use super::{sign_attest, signer};
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::attest::{Attested, SessionAuditInfo};
use vtpm_wire::object::SigScheme;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Data, Digest};

/// TPM2_GetSessionAuditDigest.
pub struct GetSessionAuditDigest;

/// TPM2_GetSessionAuditDigest parameters.
pub struct GetSessionAuditDigestIn {
    qualifying_data: Data,
    in_scheme: SigScheme,
}

impl Command for GetSessionAuditDigest {
    type In = GetSessionAuditDigestIn;

    fn read(p: &mut Params<'_>) -> Result<GetSessionAuditDigestIn, TpmRc> {
        Ok(GetSessionAuditDigestIn {
            qualifying_data: p.read()?,
            in_scheme: p.read()?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: GetSessionAuditDigestIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let session_handle = call.handles[2];
        let (key, scheme) = signer(tpm, call.handles[1], input.in_scheme, 2, 2)?;
        let session = tpm
            .v
            .sessions
            .get(session_handle)
            .ok_or(TpmRc::REFERENCE_H0.plus(2))?;
        let info = SessionAuditInfo {
            exclusive_session: u8::from(tpm.v.exclusive_audit_session == session_handle),
            session_digest: Digest::new(&session.audit_digest).map_err(|_| TpmRc::FAILURE)?,
        };
        let attest = tpm.fill_attest(
            key.as_ref(),
            &input.qualifying_data,
            Attested::SessionAudit(info),
        )?;
        sign_attest(key.as_ref(), scheme, attest, 2, 2, out)
    }
}
