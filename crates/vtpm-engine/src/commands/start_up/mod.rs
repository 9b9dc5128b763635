//! Part 3 chapter 9: Start-up.

pub mod shutdown;
pub mod startup;
