//! TPM2_NV_Write (Part 3 §31.7).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{MaxNvBuffer, nv_attr};

/// TPM2_NV_Write.
pub struct NvWrite;

/// Parameters: data, offset.
pub struct NvWriteIn {
    data: MaxNvBuffer,
    offset: u16,
}

impl Command for NvWrite {
    type In = NvWriteIn;

    fn read(p: &mut Params<'_>) -> Result<NvWriteIn, TpmRc> {
        Ok(NvWriteIn {
            data: p.read()?,
            offset: p.read()?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: NvWriteIn,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let index = tpm.nv_write_target(call)?;
        // Counter, bits and extend indices have commands of their own
        // (PIN indices are written with TPM2_NV_Write).
        if matches!(
            index.nt(),
            nv_attr::NT_COUNTER | nv_attr::NT_BITS | nv_attr::NT_EXTEND
        ) {
            return Err(TpmRc::ATTRIBUTES);
        }
        let offset = usize::from(input.offset);
        let len = input.data.len();
        let size = usize::from(index.public.data_size);
        if offset > size {
            return Err(TpmRc::VALUE.with_parameter(2));
        }
        if offset + len > size {
            return Err(TpmRc::NV_RANGE);
        }
        if index.has(nv_attr::WRITEALL) && len != size {
            return Err(TpmRc::NV_RANGE);
        }
        if let Some(dst) = index.data.get_mut(offset..offset + len) {
            dst.copy_from_slice(input.data.as_bytes());
        }
        index.public.attributes |= nv_attr::WRITTEN;
        tpm.mark_nv_dirty();
        Ok(())
    }
}
