//! Part 3 chapter 10: Testing.

pub mod get_test_result;
pub mod incremental_self_test;
pub mod self_test;
