//! TPM2_ClockRateAdjust (Part 3 §29.3).
//!
//! vtpm's Clock advances with the host's monotonic clock, which is already
//! disciplined by the host; there is no oscillator to trim. A valid
//! adjustment (TPM_CLOCK_ADJUST, −3 … +3) is accepted and has no effect,
//! which the spec allows: the rate adjustment is only a request, bounded
//! by what the implementation can do.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;

/// TPM2_ClockRateAdjust.
pub struct ClockRateAdjust;

impl Command for ClockRateAdjust {
    type In = i8;

    fn read(p: &mut Params<'_>) -> Result<i8, TpmRc> {
        let v = p.with(|r| r.u8())?;
        let adjust = i8::from_ne_bytes([v]);
        // TPM_CLOCK_ADJUST: COARSE_SLOWER (−3) … COARSE_FASTER (+3).
        if !(-3..=3).contains(&adjust) {
            return Err(TpmRc::VALUE.with_parameter(1));
        }
        Ok(adjust)
    }

    fn action(tpm: &mut Tpm, _call: &Call, adjust: i8, _out: &mut Output) -> Result<(), TpmRc> {
        log::debug!("ClockRateAdjust({adjust}): Clock follows the host clock; no change");
        let _ = tpm;
        Ok(())
    }
}
