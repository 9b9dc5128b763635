//! TPM2_IncrementalSelfTest (Part 3 §10.3).

use crate::Tpm;
use crate::crypto::self_test;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::AlgList;

/// TPM2_IncrementalSelfTest.
pub struct IncrementalSelfTest;

impl Command for IncrementalSelfTest {
    /// toTest.
    type In = AlgList;

    fn read(p: &mut Params<'_>) -> Result<AlgList, TpmRc> {
        p.read()
    }

    fn action(
        tpm: &mut Tpm,
        _call: &Call,
        to_test: AlgList,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        for alg in &to_test.0 {
            if !self_test::test_algorithm(*alg) {
                log::error!("self test of {alg:?} failed: entering failure mode");
                tpm.failure = Some(format!("self test of {alg:?} failed"));
                return Err(TpmRc::FAILURE);
            }
        }
        // Every algorithm was tested at power-on: nothing is left to do.
        out.params.write(&AlgList::default());
        Ok(())
    }
}
