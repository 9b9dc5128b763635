//! Part 3 chapter 28: Context Management.

pub mod flush_context;
