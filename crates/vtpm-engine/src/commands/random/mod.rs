//! Part 3 chapter 16: Random Number Generator.

pub mod get_random;
pub mod stir_random;
