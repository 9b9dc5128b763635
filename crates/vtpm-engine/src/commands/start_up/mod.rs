//! Part 3 chapter 9: Start-up.

pub mod shutdown;
pub mod startup;

use crate::dispatch::Params;
use vtpm_wire::WireError;
use vtpm_wire::constants::StartupType;
use vtpm_wire::rc::TpmRc;

/// Reads a TPM_SU parameter: CLEAR or STATE, otherwise TPM_RC_VALUE.
pub(crate) fn read_su(p: &mut Params<'_>) -> Result<StartupType, TpmRc> {
    p.with(|r| match StartupType(r.u16()?) {
        t @ (StartupType::CLEAR | StartupType::STATE) => Ok(t),
        _ => Err(WireError::Value),
    })
}
