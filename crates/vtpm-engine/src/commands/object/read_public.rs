//! TPM2_ReadPublic (Part 3 §12.4).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::object::Tpm2bPublic;
use vtpm_wire::rc::TpmRc;

/// TPM2_ReadPublic.
pub struct ReadPublic;

impl Command for ReadPublic {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), out: &mut Output) -> Result<(), TpmRc> {
        // A sequence object has no public area.
        let o = tpm
            .object(call.handles[0])
            .ok_or(TpmRc::SEQUENCE.with_handle(1))?;
        out.params.write(&Tpm2bPublic(o.public.clone()));
        out.params.sized_u16(|w| w.bytes(&o.name));
        out.params.sized_u16(|w| w.bytes(&o.qualified_name));
        Ok(())
    }
}
