//! TPM2_NV_UndefineSpace (Part 3 §31.4).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::handle;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::nv_attr;

/// TPM2_NV_UndefineSpace.
pub struct NvUndefineSpace;

impl Command for NvUndefineSpace {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), _out: &mut Output) -> Result<(), TpmRc> {
        let [auth_handle, nv_index, _] = call.handles;
        let index = tpm.nv_index(nv_index).ok_or(TpmRc::HANDLE.with_handle(2))?;
        // Indices that need their policy to be deleted use
        // TPM2_NV_UndefineSpaceSpecial.
        if index.has(nv_attr::POLICY_DELETE) {
            return Err(TpmRc::ATTRIBUTES.with_handle(2));
        }
        // The owner cannot delete what the platform created.
        if index.has(nv_attr::PLATFORMCREATE) && auth_handle == handle::RH_OWNER {
            return Err(TpmRc::NV_AUTHORIZATION);
        }
        tpm.nv.nv_indices.remove(&nv_index);
        tpm.mark_nv_dirty();
        Ok(())
    }
}
