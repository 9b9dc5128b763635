//! Part 3 chapter 11: Session Commands.

pub mod start_auth_session;
