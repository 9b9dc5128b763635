//! Part 3 chapter 31: Non-volatile Storage.

pub mod nv_define_space;
pub mod nv_read;
pub mod nv_read_public;
pub mod nv_undefine_space;
pub mod nv_write;
