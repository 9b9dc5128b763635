//! TPM2_NV_ReadLock (Part 3 §31.14).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::nv::NvAuthBy;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::nv_attr;

/// TPM2_NV_ReadLock.
pub struct NvReadLock;

impl Command for NvReadLock {
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
        match Tpm::nv_read_checks(
            index,
            NvAuthBy::from_handle(auth_handle, call.policy_auth[0]),
        ) {
            // An unwritten index may be read-locked.
            Ok(()) => {}
            Err(rc) if rc == TpmRc::NV_UNINITIALIZED => {}
            // Locking a locked index is no error.
            Err(rc) if rc == TpmRc::NV_LOCKED => return Ok(()),
            Err(rc) => return Err(rc),
        }
        if !index.has(nv_attr::READ_STCLEAR) {
            return Err(TpmRc::ATTRIBUTES.with_handle(2));
        }
        index.public.attributes |= nv_attr::READLOCKED;
        tpm.mark_nv_dirty();
        Ok(())
    }
}
