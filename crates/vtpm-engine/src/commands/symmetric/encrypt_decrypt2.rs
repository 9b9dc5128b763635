//! TPM2_EncryptDecrypt2 (Part 3 §15.3): TPM2_EncryptDecrypt with inData
//! first, so that a session can encrypt it.

use super::encrypt_decrypt::{EncryptDecryptIn, Positions, encrypt_decrypt, read_cipher_mode};
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::read_yes_no;

/// TPM2_EncryptDecrypt2.
pub struct EncryptDecrypt2;

impl Command for EncryptDecrypt2 {
    type In = EncryptDecryptIn;

    fn read(p: &mut Params<'_>) -> Result<EncryptDecryptIn, TpmRc> {
        let in_data = p.read()?;
        let decrypt = p.with(read_yes_no)?;
        let mode = p.with(read_cipher_mode)?;
        let iv_in = p.read()?;
        Ok(EncryptDecryptIn {
            decrypt,
            mode,
            iv_in,
            in_data,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: EncryptDecryptIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let pos = Positions {
            mode: 3,
            iv: 4,
            data: 1,
        };
        encrypt_decrypt(tpm, call.handles[0], &input, &pos, out)
    }
}
