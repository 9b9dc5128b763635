//! TPM2_ClockSet (Part 3 §29.2).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;

/// TPM2_ClockSet.
pub struct ClockSet;

/// Clock may not be set to this value or beyond (Part 3 §29.2: the top
/// 16 bits are reserved so that Clock cannot roll over).
pub const CLOCK_SET_LIMIT: u64 = 0xFFFF_0000_0000_0000;

impl Command for ClockSet {
    type In = u64;

    fn read(p: &mut Params<'_>) -> Result<u64, TpmRc> {
        p.read()
    }

    fn action(tpm: &mut Tpm, _call: &Call, new_time: u64, _out: &mut Output) -> Result<(), TpmRc> {
        // Clock only moves forward.
        if new_time >= CLOCK_SET_LIMIT || new_time < tpm.clock_ms() {
            return Err(TpmRc::VALUE.with_parameter(1));
        }
        tpm.set_clock(new_time);
        Ok(())
    }
}
