//! TPM2_NV_Increment (Part 3 §31.8).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::nv_attr;

/// TPM2_NV_Increment.
pub struct NvIncrement;

impl Command for NvIncrement {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), _out: &mut Output) -> Result<(), TpmRc> {
        let max_counter = tpm.nv.max_counter;
        let index = tpm.nv_write_target(call)?;
        if index.nt() != nv_attr::NT_COUNTER {
            return Err(TpmRc::ATTRIBUTES.with_handle(2));
        }
        // A counter's first increment starts from the largest value any
        // counter has had, so that a counter never repeats a value.
        let old = if index.has(nv_attr::WRITTEN) {
            index.u64_data()
        } else {
            max_counter
        };
        // A 64-bit counter does not wrap in the life of a TPM; refuse
        // rather than repeat a value.
        let value = old.checked_add(1).ok_or(TpmRc::NV_RANGE)?;
        // Every increment is committed to NV before the response, ORDERLY
        // counters included (stronger than the spec requires: no increment
        // is lost on a disorderly shutdown).
        index.set_u64_data(value);
        tpm.nv_note_counter(value);
        tpm.mark_nv_dirty();
        Ok(())
    }
}
