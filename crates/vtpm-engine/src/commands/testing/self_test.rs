//! TPM2_SelfTest (Part 3 §10.2).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::read_yes_no;

/// TPM2_SelfTest.
pub struct SelfTest;

impl Command for SelfTest {
    /// fullTest.
    type In = bool;

    fn read(p: &mut Params<'_>) -> Result<bool, TpmRc> {
        p.with(read_yes_no)
    }

    fn action(
        tpm: &mut Tpm,
        _call: &Call,
        full_test: bool,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        // Every test is fast, so "test what has not been tested" and "test
        // everything" both run the whole suite.
        let _ = full_test;
        tpm.run_self_tests();
        if tpm.failure.is_some() {
            Err(TpmRc::FAILURE)
        } else {
            Ok(())
        }
    }
}
