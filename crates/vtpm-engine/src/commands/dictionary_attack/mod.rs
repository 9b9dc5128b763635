//! Part 3 chapter 25: Dictionary Attack Functions (the protection itself
//! is in `crate::da`).

pub mod dictionary_attack_lock_reset;
pub mod dictionary_attack_parameters;
