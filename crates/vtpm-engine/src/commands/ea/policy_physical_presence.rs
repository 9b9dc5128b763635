//! TPM2_PolicyPhysicalPresence (Part 3 §23.13): the authorized command
//! must come with physical presence asserted. policyDigest ≔
//! H(policyDigest || TPM_CC_PolicyPhysicalPresence). This TPM has no
//! physical-presence signal, so such a policy never authorizes
//! (TPM_RC_PP).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;

/// TPM2_PolicyPhysicalPresence.
pub struct PolicyPhysicalPresence;

impl Command for PolicyPhysicalPresence {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), _out: &mut Output) -> Result<(), TpmRc> {
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        session.policy_update(CommandCode::PolicyPhysicalPresence.0, &[], None);
        session.pp_required = true;
        Ok(())
    }
}
