//! Part 3 chapter 24: Hierarchy Commands.

pub mod create_primary;
pub mod hierarchy_change_auth;
pub mod hierarchy_control;
