//! TPM2_StirRandom (Part 3 §16.2).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::SensitiveData;

/// TPM2_StirRandom.
pub struct StirRandom;

impl Command for StirRandom {
    /// inData.
    type In = SensitiveData;

    fn read(p: &mut Params<'_>) -> Result<SensitiveData, TpmRc> {
        p.read()
    }

    fn action(
        tpm: &mut Tpm,
        _call: &Call,
        in_data: SensitiveData,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        tpm.stir_random(in_data.as_bytes());
        Ok(())
    }
}
