//! Part 3 chapter 30: Capability Commands.

pub mod get_capability;
pub mod test_parms;
