//! TPM2_NV_GlobalWriteLock (Part 3 §31.12).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::nv_attr;

/// TPM2_NV_GlobalWriteLock.
pub struct NvGlobalWriteLock;

impl Command for NvGlobalWriteLock {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, _call: &Call, _in: (), _out: &mut Output) -> Result<(), TpmRc> {
        // Every GLOBALLOCK index becomes write-locked, until the next TPM
        // Reset or Restart (or for good for a written WRITEDEFINE index).
        for index in tpm.nv.nv_indices.values_mut() {
            if index.has(nv_attr::GLOBALLOCK) {
                index.public.attributes |= nv_attr::WRITELOCKED;
            }
        }
        tpm.mark_nv_dirty();
        Ok(())
    }
}
