//! TPM2_PolicyTemplate (Part 3 §23.21): the policy authorizes only the
//! creation (TPM2_Create, TPM2_CreatePrimary, TPM2_CreateLoaded) of an
//! object whose inPublic template hashes to templateHash (H of the
//! template's bytes without their size). policyDigest ≔ H(policyDigest ||
//! TPM_CC_PolicyTemplate || templateHash). Another templateHash already
//! set is TPM_RC_VALUE, a cpHash or nameHash TPM_RC_CPHASH, a size other
//! than the session's hash TPM_RC_SIZE.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Digest;

/// TPM2_PolicyTemplate.
pub struct PolicyTemplate;

impl Command for PolicyTemplate {
    /// templateHash.
    type In = Digest;

    fn read(p: &mut Params<'_>) -> Result<Digest, TpmRc> {
        p.read()
    }

    fn action(tpm: &mut Tpm, call: &Call, hash: Digest, _out: &mut Output) -> Result<(), TpmRc> {
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        let hash = hash.as_bytes();
        if !session.template_hash.is_empty() {
            if session.template_hash != hash {
                return Err(TpmRc::VALUE.with_parameter(1));
            }
        } else if !session.cp_hash.is_empty() || !session.name_hash.is_empty() {
            return Err(TpmRc::CPHASH);
        }
        if hash.len() != session.auth_hash.size() {
            return Err(TpmRc::SIZE.with_parameter(1));
        }
        session.policy_update(CommandCode::PolicyTemplate.0, hash, None);
        session.template_hash = hash.to_vec();
        Ok(())
    }
}
