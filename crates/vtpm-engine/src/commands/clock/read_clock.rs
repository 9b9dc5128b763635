//! TPM2_ReadClock (Part 3 §29.1).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{ClockInfo, TimeInfo};

/// TPM2_ReadClock.
pub struct ReadClock;

impl Tpm {
    /// TPMS_TIME_INFO now.
    pub(crate) fn time_info(&self) -> TimeInfo {
        TimeInfo {
            time: self.time_ms(),
            clock_info: ClockInfo {
                clock: self.clock_ms(),
                reset_count: self.nv.reset_count,
                restart_count: self.nv.restart_count,
                safe: u8::from(self.v.clock_safe),
            },
        }
    }
}

impl Command for ReadClock {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, _call: &Call, _in: (), out: &mut Output) -> Result<(), TpmRc> {
        out.params.write(&tpm.time_info());
        Ok(())
    }
}
