//! TPM2_NV_SetBits (Part 3 §31.10).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::nv_attr;

/// TPM2_NV_SetBits.
pub struct NvSetBits;

impl Command for NvSetBits {
    type In = u64;

    fn read(p: &mut Params<'_>) -> Result<u64, TpmRc> {
        p.read()
    }

    fn action(tpm: &mut Tpm, call: &Call, bits: u64, _out: &mut Output) -> Result<(), TpmRc> {
        let index = tpm.nv_write_target(call)?;
        if index.nt() != nv_attr::NT_BITS {
            return Err(TpmRc::ATTRIBUTES.with_handle(2));
        }
        // A bit field starts all zeros.
        let old = if index.has(nv_attr::WRITTEN) {
            index.u64_data()
        } else {
            0
        };
        index.set_u64_data(old | bits);
        tpm.mark_nv_dirty();
        Ok(())
    }
}
