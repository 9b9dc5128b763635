//! Part 3 chapter 29: Clocks and Timers.

pub mod read_clock;
