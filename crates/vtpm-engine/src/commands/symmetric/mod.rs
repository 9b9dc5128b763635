//! Part 3 chapter 15: Symmetric Primitives.

pub mod encrypt_decrypt;
pub mod encrypt_decrypt2;
pub mod hash;
pub mod hmac;
