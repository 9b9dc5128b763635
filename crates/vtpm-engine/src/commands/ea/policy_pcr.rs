//! TPM2_PolicyPCR (Part 3 §23.7): the policy requires the selected PCRs
//! to have given values. policyDigest ≔ H(policyDigest || TPM_CC_PolicyPCR
//! || pcrs || pcrDigest), pcrDigest being the digest of the selected PCRs
//! (with the session's hash) as given or, when empty, as they are now.
//!
//! In a policy session a non-empty pcrDigest must equal the current one
//! (TPM_RC_VALUE), and the session records pcrUpdateCounter: if a PCR
//! changes before the policy authorizes, the authorization fails with
//! TPM_RC_PCR_CHANGED.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::session::SessionKind;
use vtpm_wire::Marshal;
use vtpm_wire::codec::Writer;
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Digest, PcrSelectionList};

/// TPM2_PolicyPCR.
pub struct PolicyPcr;

/// Parameters.
pub struct PolicyPcrIn {
    /// pcrDigest.
    pcr_digest: Digest,
    /// pcrs.
    pcrs: PcrSelectionList,
}

impl Command for PolicyPcr {
    type In = PolicyPcrIn;

    fn read(p: &mut Params<'_>) -> Result<PolicyPcrIn, TpmRc> {
        Ok(PolicyPcrIn {
            pcr_digest: p.read()?,
            pcrs: p.read()?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: PolicyPcrIn,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let counter = tpm.v.pcr_counter;
        let auth_hash = tpm.policy_session_mut(call.handles[0], 1)?.auth_hash;
        let current = tpm.pcr_digest(auth_hash, &input.pcrs);
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        let given = input.pcr_digest.as_bytes();
        let trial = session.kind == SessionKind::Trial;
        let pcr_digest = if trial {
            if given.is_empty() {
                current
            } else {
                given.to_vec()
            }
        } else {
            if !given.is_empty() && given != current.as_slice() {
                return Err(TpmRc::VALUE.with_parameter(1));
            }
            // A policy that already checked PCRs that changed since.
            if session.pcr_counter.is_some_and(|c| c != counter) {
                return Err(TpmRc::PCR_CHANGED);
            }
            current
        };
        let mut w = Writer::new();
        input.pcrs.marshal(&mut w);
        w.bytes(&pcr_digest);
        session.policy_update(CommandCode::PolicyPCR.0, &w.into_vec(), None);
        if !trial {
            session.pcr_counter = Some(counter);
        }
        Ok(())
    }
}
