//! TPM2_GetRandom (Part 3 §16.1).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::profile::MAX_DIGEST_SIZE;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Digest;

/// TPM2_GetRandom.
pub struct GetRandom;

impl Command for GetRandom {
    /// bytesRequested.
    type In = u16;

    fn read(p: &mut Params<'_>) -> Result<u16, TpmRc> {
        p.read()
    }

    fn action(
        tpm: &mut Tpm,
        _call: &Call,
        bytes_requested: u16,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        // At most the size of the largest digest (TPM2B_DIGEST).
        let mut buf = [0u8; MAX_DIGEST_SIZE];
        let n = usize::from(bytes_requested).min(MAX_DIGEST_SIZE);
        let bytes = buf.get_mut(..n).unwrap_or(&mut []);
        tpm.random(bytes);
        out.params.write(&Digest::new(bytes).unwrap_or_default());
        Ok(())
    }
}
