//! Part 3 chapter 28: Context Management.

mod context_blob;
pub mod context_load;
pub mod context_save;
pub mod evict_control;
pub mod flush_context;
