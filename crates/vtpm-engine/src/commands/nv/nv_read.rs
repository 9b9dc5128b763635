//! TPM2_NV_Read (Part 3 §31.13).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::nv::NvAuthBy;
use vtpm_wire::profile::MAX_NV_BUFFER_SIZE;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::MaxNvBuffer;

/// TPM2_NV_Read.
pub struct NvRead;

/// Parameters: size, offset.
pub struct NvReadIn {
    size: u16,
    offset: u16,
}

impl Command for NvRead {
    type In = NvReadIn;

    fn read(p: &mut Params<'_>) -> Result<NvReadIn, TpmRc> {
        Ok(NvReadIn {
            size: p.read()?,
            offset: p.read()?,
        })
    }

    fn action(tpm: &mut Tpm, call: &Call, input: NvReadIn, out: &mut Output) -> Result<(), TpmRc> {
        let [auth_handle, nv_index, _] = call.handles;
        let index = tpm.nv_index(nv_index).ok_or(TpmRc::HANDLE.with_handle(2))?;
        Tpm::nv_read_checks(
            index,
            NvAuthBy::from_handle(auth_handle, call.policy_auth[0]),
        )?;
        let (offset, size) = (usize::from(input.offset), usize::from(input.size));
        if size > MAX_NV_BUFFER_SIZE {
            return Err(TpmRc::VALUE.with_parameter(1));
        }
        if offset > usize::from(index.public.data_size) {
            return Err(TpmRc::VALUE.with_parameter(2));
        }
        let data = index
            .data
            .get(offset..offset + size)
            .ok_or(TpmRc::NV_RANGE)?;
        out.params
            .write(&MaxNvBuffer::new(data).unwrap_or_default());
        Ok(())
    }
}
