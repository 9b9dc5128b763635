//! TPM2_PolicyNV (Part 3 §23.9): the policy requires a comparison of NV
//! index data, from offset, with operandB (read with authHandle's
//! authorization, as TPM2_NV_Read). policyDigest ≔ H(policyDigest ||
//! TPM_CC_PolicyNV || H(operandB || offset || operation) || nvIndex
//! Name). In a policy session: offset beyond the data is TPM_RC_VALUE,
//! operandB beyond it TPM_RC_SIZE, a false comparison TPM_RC_POLICY.

use super::{Operation, check_condition};
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::nv::NvAuthBy;
use crate::session::SessionKind;
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Tpm2b, nv_attr};

/// TPM2_PolicyNV.
pub struct PolicyNv;

/// Parameters.
pub struct PolicyNvIn {
    /// operandB (TPM2B_OPERAND).
    operand_b: Tpm2b<{ vtpm_wire::profile::MAX_DIGEST_SIZE }>,
    /// offset.
    offset: u16,
    /// operation (TPM_EO).
    operation: Operation,
}

impl Command for PolicyNv {
    type In = PolicyNvIn;

    fn read(p: &mut Params<'_>) -> Result<PolicyNvIn, TpmRc> {
        Ok(PolicyNvIn {
            operand_b: p.read()?,
            offset: p.with(|r| r.u16())?,
            operation: p.with(Operation::read)?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: PolicyNvIn,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let [auth_handle, nv_index, session_handle] = call.handles;
        let name = tpm.entity_name(nv_index);
        let trial = tpm.policy_session_mut(session_handle, 3)?.kind == SessionKind::Trial;
        let operand_b = input.operand_b.as_bytes();
        if !trial {
            let index = tpm.nv_index(nv_index).ok_or(TpmRc::HANDLE.with_handle(2))?;
            Tpm::nv_read_allowed(
                index,
                NvAuthBy::from_handle(auth_handle, call.policy_auth[0]),
            )?;
            if index.has(nv_attr::READLOCKED) {
                return Err(TpmRc::NV_LOCKED);
            }
            if !index.has(nv_attr::WRITTEN) {
                return Err(TpmRc::NV_UNINITIALIZED);
            }
            let offset = usize::from(input.offset);
            let size = usize::from(index.public.data_size);
            if offset > size {
                return Err(TpmRc::VALUE.with_parameter(2));
            }
            if size - offset < operand_b.len() {
                return Err(TpmRc::SIZE.with_parameter(1));
            }
            let operand_a = index
                .data
                .get(offset..offset + operand_b.len())
                .ok_or(TpmRc::NV_RANGE)?;
            if !check_condition(input.operation, operand_a, operand_b) {
                return Err(TpmRc::POLICY);
            }
        }
        let session = tpm.policy_session_mut(session_handle, 3)?;
        let args = session.auth_hash.digest(&[
            operand_b,
            &input.offset.to_be_bytes(),
            &input.operation.0.to_be_bytes(),
        ]);
        session.policy_update(CommandCode::PolicyNV.0, &[args, name].concat(), None);
        Ok(())
    }
}
