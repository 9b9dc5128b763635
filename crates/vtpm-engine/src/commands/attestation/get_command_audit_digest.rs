//! TPM2_GetCommandAuditDigest (Part 3 §18.4).

use super::{sign_attest, signer};
use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::attest::{Attested, CommandAuditInfo};
use vtpm_wire::constants::AlgId;
use vtpm_wire::object::SigScheme;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Data, Digest};

/// TPM2_GetCommandAuditDigest.
pub struct GetCommandAuditDigest;

/// TPM2_GetCommandAuditDigest parameters.
pub struct GetCommandAuditDigestIn {
    qualifying_data: Data,
    in_scheme: SigScheme,
}

impl Command for GetCommandAuditDigest {
    type In = GetCommandAuditDigestIn;

    fn read(p: &mut Params<'_>) -> Result<GetCommandAuditDigestIn, TpmRc> {
        Ok(GetCommandAuditDigestIn {
            qualifying_data: p.read()?,
            in_scheme: p.read()?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: GetCommandAuditDigestIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let (key, scheme) = signer(tpm, call.handles[1], input.in_scheme, 2, 2)?;
        let alg = HashAlg::from_alg(AlgId(tpm.nv.audit_alg)).ok_or(TpmRc::FAILURE)?;
        // commandDigest: the audited command codes, ascending.
        let codes: Vec<u8> = tpm
            .nv
            .audit_commands
            .iter()
            .flat_map(|cc| cc.to_be_bytes())
            .collect();
        let info = CommandAuditInfo {
            audit_counter: tpm.nv.audit_counter,
            digest_alg: AlgId(tpm.nv.audit_alg),
            audit_digest: Digest::new(&tpm.nv.command_audit_digest).map_err(|_| TpmRc::FAILURE)?,
            command_digest: Digest::new(&alg.digest(&[&codes])).map_err(|_| TpmRc::FAILURE)?,
        };
        let attest = tpm.fill_attest(
            key.as_ref(),
            &input.qualifying_data,
            Attested::CommandAudit(info),
        )?;
        sign_attest(key.as_ref(), scheme, attest, 2, 2, out)?;
        // The digest is reset once reported.
        tpm.nv.command_audit_digest.clear();
        tpm.mark_nv_dirty();
        Ok(())
    }
}
