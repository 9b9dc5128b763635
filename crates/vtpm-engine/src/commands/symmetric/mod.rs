//! Part 3 chapter 15: Symmetric Primitives.

pub mod hash;
