//! TPM2_NV_UndefineSpaceSpecial (Part 3 §31.5).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::nv_attr;

/// TPM2_NV_UndefineSpaceSpecial.
pub struct NvUndefineSpaceSpecial;

impl Command for NvUndefineSpaceSpecial {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), _out: &mut Output) -> Result<(), TpmRc> {
        let nv_index = call.handles[0];
        let index = tpm.nv_index(nv_index).ok_or(TpmRc::HANDLE.with_handle(1))?;
        // Only for indices that need their policy (ADMIN role, checked at
        // authorization) and platformAuth to be deleted.
        if !index.has(nv_attr::POLICY_DELETE) {
            return Err(TpmRc::ATTRIBUTES.with_handle(1));
        }
        if index.nt() == nv_attr::NT_COUNTER && index.has(nv_attr::WRITTEN) {
            let v = index.u64_data();
            tpm.nv_note_counter(v);
        }
        tpm.nv.nv_indices.remove(&nv_index);
        tpm.mark_nv_dirty();
        Ok(())
    }
}
