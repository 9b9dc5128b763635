//! TPM2_NV_ReadPublic (Part 3 §31.6).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Name, Tpm2bNvPublic};

/// TPM2_NV_ReadPublic.
pub struct NvReadPublic;

impl Command for NvReadPublic {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), out: &mut Output) -> Result<(), TpmRc> {
        let index = tpm
            .nv_index(call.handles[0])
            .ok_or(TpmRc::HANDLE.with_handle(1))?;
        out.params.write(&Tpm2bNvPublic(index.public.clone()));
        out.params
            .write(&Name::new(&index.name()).unwrap_or_default());
        Ok(())
    }
}
