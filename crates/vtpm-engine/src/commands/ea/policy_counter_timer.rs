//! TPM2_PolicyCounterTimer (Part 3 §23.14): the policy requires a
//! comparison of the TPM's TPMS_TIME_INFO (time, clock, resetCount,
//! restartCount, safe, marshaled), from offset, with operandB.
//! policyDigest ≔ H(policyDigest || TPM_CC_PolicyCounterTimer ||
//! H(operandB || offset || operation)). In a policy session, operandB
//! beyond the structure is TPM_RC_RANGE and a false comparison
//! TPM_RC_POLICY.

use super::{Operation, check_condition};
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::session::SessionKind;
use vtpm_wire::codec::Writer;
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Tpm2b;

/// TPM2_PolicyCounterTimer.
pub struct PolicyCounterTimer;

/// Parameters.
pub struct PolicyCounterTimerIn {
    /// operandB (TPM2B_OPERAND).
    operand_b: Tpm2b<{ vtpm_wire::profile::MAX_DIGEST_SIZE }>,
    /// offset.
    offset: u16,
    /// operation (TPM_EO).
    operation: Operation,
}

impl Command for PolicyCounterTimer {
    type In = PolicyCounterTimerIn;

    fn read(p: &mut Params<'_>) -> Result<PolicyCounterTimerIn, TpmRc> {
        Ok(PolicyCounterTimerIn {
            operand_b: p.read()?,
            offset: p.with(|r| r.u16())?,
            operation: p.with(Operation::read)?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: PolicyCounterTimerIn,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let mut w = Writer::new();
        w.write(&tpm.time_info());
        let info = w.into_vec();
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        let operand_b = input.operand_b.as_bytes();
        if session.kind != SessionKind::Trial {
            let start = usize::from(input.offset);
            let operand_a = info
                .get(start..start + operand_b.len())
                .ok_or(TpmRc::RANGE.with_parameter(2))?;
            if !check_condition(input.operation, operand_a, operand_b) {
                return Err(TpmRc::POLICY);
            }
        }
        let args = session.auth_hash.digest(&[
            operand_b,
            &input.offset.to_be_bytes(),
            &input.operation.0.to_be_bytes(),
        ]);
        session.policy_update(CommandCode::PolicyCounterTimer.0, &args, None);
        Ok(())
    }
}
