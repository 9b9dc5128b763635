//! TPM2_SetCommandCodeAuditStatus (Part 3 §21.2).

use crate::Tpm;
use crate::dispatch::{self, Call, Command, Output, Params};
use crate::state::CC_SET_COMMAND_CODE_AUDIT_STATUS;
use vtpm_wire::codec::Reader;
use vtpm_wire::codec::WireError;
use vtpm_wire::constants::{AlgId, CommandCode};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::read_hash_alg;

/// MAX_CAP_CC: the most command codes a TPML_CC holds.
const MAX_CAP_CC: usize = 256;

/// TPM2_SetCommandCodeAuditStatus.
pub struct SetCommandCodeAuditStatus;

/// TPM2_SetCommandCodeAuditStatus parameters.
pub struct SetCommandCodeAuditStatusIn {
    audit_alg: AlgId,
    set_list: Vec<u32>,
    clear_list: Vec<u32>,
}

/// TPML_CC.
fn read_cc_list(r: &mut Reader<'_>) -> Result<Vec<u32>, WireError> {
    let n = usize::try_from(r.u32()?).map_err(|_| WireError::Size)?;
    if n > MAX_CAP_CC {
        return Err(WireError::Size);
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(r.u32()?);
    }
    Ok(v)
}

impl Command for SetCommandCodeAuditStatus {
    type In = SetCommandCodeAuditStatusIn;

    fn read(p: &mut Params<'_>) -> Result<SetCommandCodeAuditStatusIn, TpmRc> {
        Ok(SetCommandCodeAuditStatusIn {
            audit_alg: p.with(|r| read_hash_alg(r, true))?,
            set_list: p.with(read_cc_list)?,
            clear_list: p.with(read_cc_list)?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        _call: &Call,
        input: SetCommandCodeAuditStatusIn,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        if input.audit_alg != AlgId::NULL && input.audit_alg.0 != tpm.nv.audit_alg {
            // The algorithm and the list do not change together.
            if !input.set_list.is_empty() || !input.clear_list.is_empty() {
                return Err(TpmRc::VALUE.with_parameter(1));
            }
            tpm.nv.audit_alg = input.audit_alg.0;
            tpm.nv.command_audit_digest.clear();
            tpm.mark_nv_dirty();
            return Ok(());
        }
        let mut list = tpm.nv.audit_commands.clone();
        for cc in input.set_list {
            // Only implemented commands are audited.
            if dispatch::lookup(CommandCode(cc)).is_some()
                && let Err(i) = list.binary_search(&cc)
            {
                list.insert(i, cc);
            }
        }
        for cc in input.clear_list {
            if cc != CC_SET_COMMAND_CODE_AUDIT_STATUS
                && let Ok(i) = list.binary_search(&cc)
            {
                list.remove(i);
            }
        }
        if list != tpm.nv.audit_commands {
            tpm.nv.audit_commands = list;
            tpm.mark_nv_dirty();
        }
        Ok(())
    }
}
