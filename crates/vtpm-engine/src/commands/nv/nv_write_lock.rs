//! TPM2_NV_WriteLock (Part 3 §31.11).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::nv::NvAuthBy;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::nv_attr;

/// TPM2_NV_WriteLock.
pub struct NvWriteLock;

impl Command for NvWriteLock {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), _out: &mut Output) -> Result<(), TpmRc> {
        let [auth_handle, nv_index, _] = call.handles;
        let index = tpm
            .nv
            .nv_indices
            .get_mut(&nv_index)
            .ok_or(TpmRc::HANDLE.with_handle(2))?;
        match Tpm::nv_write_checks(
            index,
            NvAuthBy::from_handle(auth_handle, call.policy_auth[0]),
        ) {
            Ok(()) => {}
            // Locking a locked index is no error.
            Err(rc) if rc == TpmRc::NV_LOCKED => return Ok(()),
            Err(rc) => return Err(rc),
        }
        if !index.has(nv_attr::WRITEDEFINE) && !index.has(nv_attr::WRITE_STCLEAR) {
            return Err(TpmRc::ATTRIBUTES.with_handle(2));
        }
        index.public.attributes |= nv_attr::WRITELOCKED;
        tpm.mark_nv_dirty();
        Ok(())
    }
}
