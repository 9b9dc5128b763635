//! TPM2_PolicyNameHash (Part 3 §23.10): the policy authorizes only a
//! command on the entities whose Names hash to nameHash (H(Name of each
//! handle, in order), with the session's hash). policyDigest ≔
//! H(policyDigest || TPM_CC_PolicyNameHash || nameHash). nameHash must
//! have the session's hash size (TPM_RC_SIZE); a cpHash, nameHash or
//! templateHash already set is TPM_RC_CPHASH.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Digest;

/// TPM2_PolicyNameHash.
pub struct PolicyNameHash;

impl Command for PolicyNameHash {
    /// nameHash.
    type In = Digest;

    fn read(p: &mut Params<'_>) -> Result<Digest, TpmRc> {
        p.read()
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        name_hash: Digest,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        let name_hash = name_hash.as_bytes();
        if name_hash.len() != session.auth_hash.size() {
            return Err(TpmRc::SIZE.with_parameter(1));
        }
        if !session.cp_hash.is_empty()
            || !session.name_hash.is_empty()
            || !session.template_hash.is_empty()
        {
            return Err(TpmRc::CPHASH);
        }
        session.policy_update(CommandCode::PolicyNameHash.0, name_hash, None);
        session.name_hash = name_hash.to_vec();
        Ok(())
    }
}
