//! TPM2_DictionaryAttackLockReset (Part 3 §25.2): with lockoutAuth, forgets
//! every counted authorization failure (failedTries ≔ 0), which ends a
//! lockout.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;

/// TPM2_DictionaryAttackLockReset.
pub struct DictionaryAttackLockReset;

impl Command for DictionaryAttackLockReset {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, _call: &Call, _input: (), _out: &mut Output) -> Result<(), TpmRc> {
        tpm.nv.da.failed_tries = 0;
        tpm.mark_nv_dirty();
        Ok(())
    }
}
