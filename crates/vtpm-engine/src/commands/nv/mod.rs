//! Part 3 chapter 31: Non-volatile Storage.

pub mod nv_certify;
pub mod nv_change_auth;
pub mod nv_define_space;
pub mod nv_extend;
pub mod nv_global_write_lock;
pub mod nv_increment;
pub mod nv_read;
pub mod nv_read_lock;
pub mod nv_read_public;
pub mod nv_set_bits;
pub mod nv_undefine_space;
pub mod nv_undefine_space_special;
pub mod nv_write;
pub mod nv_write_lock;
