//! TPM2_DictionaryAttackParameters (Part 3 §25.3): with lockoutAuth, sets
//! maxTries, recoveryTime and lockoutRecovery. failedTries is kept (a
//! maxTries at or below it puts the TPM in lockout at once).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;

/// TPM2_DictionaryAttackParameters.
pub struct DictionaryAttackParameters;

/// Parameters: newMaxTries, newRecoveryTime, lockoutRecovery.
pub struct DictionaryAttackParametersIn {
    new_max_tries: u32,
    new_recovery_time: u32,
    lockout_recovery: u32,
}

impl Command for DictionaryAttackParameters {
    type In = DictionaryAttackParametersIn;

    fn read(p: &mut Params<'_>) -> Result<DictionaryAttackParametersIn, TpmRc> {
        Ok(DictionaryAttackParametersIn {
            new_max_tries: p.with(|r| r.u32())?,
            new_recovery_time: p.with(|r| r.u32())?,
            lockout_recovery: p.with(|r| r.u32())?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        _call: &Call,
        input: DictionaryAttackParametersIn,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let da = &mut tpm.nv.da;
        da.max_tries = input.new_max_tries;
        da.recovery_time = input.new_recovery_time;
        da.lockout_recovery = input.lockout_recovery;
        tpm.mark_nv_dirty();
        Ok(())
    }
}
