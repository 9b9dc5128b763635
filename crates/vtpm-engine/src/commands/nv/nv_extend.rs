//! TPM2_NV_Extend (Part 3 §31.9).

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{MaxNvBuffer, nv_attr};

/// TPM2_NV_Extend.
pub struct NvExtend;

impl Command for NvExtend {
    type In = MaxNvBuffer;

    fn read(p: &mut Params<'_>) -> Result<MaxNvBuffer, TpmRc> {
        p.read()
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        data: MaxNvBuffer,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let index = tpm.nv_write_target(call)?;
        if index.nt() != nv_attr::NT_EXTEND {
            return Err(TpmRc::ATTRIBUTES.with_handle(2));
        }
        let alg = HashAlg::from_alg(index.public.name_alg).ok_or(TpmRc::FAILURE)?;
        // newValue = H_nameAlg(oldValue || data), oldValue all zeros before
        // the first extend.
        let old = if index.has(nv_attr::WRITTEN) {
            index.data.clone()
        } else {
            vec![0; alg.size()]
        };
        index.data = alg.digest(&[&old, data.as_bytes()]);
        index.public.attributes |= nv_attr::WRITTEN;
        tpm.mark_nv_dirty();
        Ok(())
    }
}
