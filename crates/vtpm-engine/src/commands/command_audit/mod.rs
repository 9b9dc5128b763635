//! Part 3 chapter 21: Command Audit.

pub mod set_command_code_audit_status;
