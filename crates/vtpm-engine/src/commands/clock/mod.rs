//! Part 3 chapter 29: Clocks and Timers.

pub mod clock_rate_adjust;
pub mod clock_set;
pub mod read_clock;
