//! TPM2_PolicyCpHash (Part 3 §23.9): the policy authorizes only the
//! command with the given cpHash (command code, Names and parameters).
//! policyDigest ≔ H(policyDigest || TPM_CC_PolicyCpHash || cpHashA).
//! cpHashA must have the session's hash size (TPM_RC_SIZE); a different
//! cpHash already set, or a nameHash or templateHash, is TPM_RC_CPHASH.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Digest;

/// TPM2_PolicyCpHash.
pub struct PolicyCpHash;

impl Command for PolicyCpHash {
    /// cpHashA.
    type In = Digest;

    fn read(p: &mut Params<'_>) -> Result<Digest, TpmRc> {
        p.read()
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        cp_hash_a: Digest,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        let cp_hash_a = cp_hash_a.as_bytes();
        if cp_hash_a.len() != session.auth_hash.size() {
            return Err(TpmRc::SIZE.with_parameter(1));
        }
        if (!session.cp_hash.is_empty() && session.cp_hash != cp_hash_a)
            || !session.name_hash.is_empty()
            || !session.template_hash.is_empty()
        {
            return Err(TpmRc::CPHASH);
        }
        session.policy_update(CommandCode::PolicyCpHash.0, cp_hash_a, None);
        session.cp_hash = cp_hash_a.to_vec();
        Ok(())
    }
}
