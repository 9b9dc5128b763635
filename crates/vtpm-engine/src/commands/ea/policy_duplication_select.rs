//! TPM2_PolicyDuplicationSelect (Part 3 §23.15): the policy authorizes
//! only TPM2_Duplicate of objectName to newParentName. nameHash ≔
//! H(objectName || newParentName) (the Names of Duplicate's handles);
//! policyDigest ≔ H(policyDigest || TPM_CC_PolicyDuplicationSelect ||
//! [objectName ||] newParentName || includeObject). A cpHash or nameHash
//! already set is TPM_RC_CPHASH, another command code TPM_RC_COMMAND_CODE.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Name, read_yes_no};

/// TPM2_PolicyDuplicationSelect.
pub struct PolicyDuplicationSelect;

/// Parameters.
pub struct PolicyDuplicationSelectIn {
    /// objectName.
    object_name: Name,
    /// newParentName.
    new_parent_name: Name,
    /// includeObject.
    include_object: bool,
}

impl Command for PolicyDuplicationSelect {
    type In = PolicyDuplicationSelectIn;

    fn read(p: &mut Params<'_>) -> Result<PolicyDuplicationSelectIn, TpmRc> {
        Ok(PolicyDuplicationSelectIn {
            object_name: p.read()?,
            new_parent_name: p.read()?,
            include_object: p.with(read_yes_no)?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: PolicyDuplicationSelectIn,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        if !session.cp_hash.is_empty()
            || !session.name_hash.is_empty()
            || !session.template_hash.is_empty()
        {
            return Err(TpmRc::CPHASH);
        }
        let duplicate = CommandCode::Duplicate.0;
        if session.command_code.is_some_and(|c| c != duplicate) {
            return Err(TpmRc::COMMAND_CODE);
        }
        let object_name = input.object_name.as_bytes();
        let new_parent_name = input.new_parent_name.as_bytes();
        session.name_hash = session.auth_hash.digest(&[object_name, new_parent_name]);
        let included: &[u8] = if input.include_object {
            object_name
        } else {
            &[]
        };
        session.policy_digest = session.auth_hash.digest(&[
            &session.policy_digest,
            &CommandCode::PolicyDuplicationSelect.0.to_be_bytes(),
            included,
            new_parent_name,
            &[u8::from(input.include_object)],
        ]);
        session.command_code = Some(duplicate);
        Ok(())
    }
}
