//! TPM2_TestParms (Part 3 §30.3). The parameters are checked entirely by
//! unmarshalling TPMT_PUBLIC_PARMS against this TPM's profile: an
//! unsupported algorithm, key size, curve, scheme or mode is refused there
//! with the response code Part 2 assigns.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::PublicParms;

/// TPM2_TestParms.
pub struct TestParms;

impl Command for TestParms {
    /// parameters.
    type In = PublicParms;

    fn read(p: &mut Params<'_>) -> Result<PublicParms, TpmRc> {
        p.read()
    }

    fn action(
        _tpm: &mut Tpm,
        _call: &Call,
        _parameters: PublicParms,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        Ok(())
    }
}
