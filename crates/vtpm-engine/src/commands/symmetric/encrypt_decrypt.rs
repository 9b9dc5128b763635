//! TPM2_EncryptDecrypt (Part 3 §15.2), and the checks and action it shares
//! with TPM2_EncryptDecrypt2 (§15.3), which takes the same parameters with
//! inData first.
//!
//! The key is an unrestricted SYMCIPHER object with its sensitive area
//! loaded; `decrypt` needs its `decrypt` attribute and encryption its
//! `sign` attribute (for a symmetric key, SET means it may encrypt). The
//! mode is the key's, or when the key has none (TPM_ALG_NULL) the one the
//! caller names. ECB takes no IV; the other modes an IV of one block.

use crate::Tpm;
use crate::crypto::sym::{SymError, SymMode, aes_mode};
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::codec::{Reader, WireError};
use vtpm_wire::constants::AlgId;
use vtpm_wire::object::{Iv, object_attr as oa};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{MaxBuffer, PublicParms, read_yes_no};

/// The AES block size.
const BLOCK: usize = 16;

/// TPMI_ALG_CIPHER_MODE+: a block-cipher mode or TPM_ALG_NULL, otherwise
/// TPM_RC_MODE.
pub(crate) fn read_cipher_mode(r: &mut Reader<'_>) -> Result<AlgId, WireError> {
    let mode = AlgId(r.u16()?);
    match mode {
        AlgId::CTR | AlgId::OFB | AlgId::CBC | AlgId::CFB | AlgId::ECB | AlgId::NULL => Ok(mode),
        _ => Err(WireError::Mode),
    }
}

/// The parameters of both commands.
pub struct EncryptDecryptIn {
    /// decrypt: YES to decrypt, NO to encrypt.
    pub decrypt: bool,
    /// mode (TPM_ALG_NULL: the key's).
    pub mode: AlgId,
    /// ivIn.
    pub iv_in: Iv,
    /// inData.
    pub in_data: MaxBuffer,
}

/// Parameter numbers of mode, ivIn and inData (they differ between the
/// two commands).
pub(crate) struct Positions {
    /// mode.
    pub mode: usize,
    /// ivIn.
    pub iv: usize,
    /// inData.
    pub data: usize,
}

fn sym_mode(mode: AlgId) -> Option<SymMode> {
    match mode {
        AlgId::CFB => Some(SymMode::Cfb),
        AlgId::CBC => Some(SymMode::Cbc),
        AlgId::CTR => Some(SymMode::Ctr),
        AlgId::OFB => Some(SymMode::Ofb),
        AlgId::ECB => Some(SymMode::Ecb),
        _ => None,
    }
}

/// Checks the key and parameters, encrypts or decrypts, and writes outData
/// and ivOut.
pub(crate) fn encrypt_decrypt(
    tpm: &Tpm,
    key_handle: u32,
    input: &EncryptDecryptIn,
    pos: &Positions,
    out: &mut Output,
) -> Result<(), TpmRc> {
    let key_err = || TpmRc::KEY.with_handle(1);
    let key = tpm.object(key_handle).ok_or_else(key_err)?;
    let PublicParms::SymCipher { sym } = &key.public.parms else {
        return Err(key_err());
    };
    // Unrestricted, and allowed to do what is asked.
    let allowed = !key.has(oa::RESTRICTED)
        && if input.decrypt {
            key.has(oa::DECRYPT)
        } else {
            key.has(oa::SIGN)
        };
    if !allowed {
        return Err(TpmRc::ATTRIBUTES.with_handle(1));
    }
    if sym.algorithm != AlgId::AES {
        return Err(key_err());
    }
    let mode = if sym.mode != AlgId::NULL {
        if input.mode != AlgId::NULL && input.mode != sym.mode {
            return Err(TpmRc::MODE.with_parameter(pos.mode));
        }
        sym.mode
    } else if input.mode == AlgId::NULL {
        return Err(TpmRc::MODE.with_parameter(pos.mode));
    } else {
        input.mode
    };
    let mode = sym_mode(mode).ok_or(TpmRc::MODE.with_parameter(pos.mode))?;
    let iv_size = if mode == SymMode::Ecb { 0 } else { BLOCK };
    if input.iv_in.len() != iv_size {
        return Err(TpmRc::SIZE.with_parameter(pos.iv));
    }
    if matches!(mode, SymMode::Cbc | SymMode::Ecb) && !input.in_data.len().is_multiple_of(BLOCK) {
        return Err(TpmRc::SIZE.with_parameter(pos.data));
    }
    // A public-only key has no key bits.
    let bits = key.sensitive_bits().map_err(|_| key_err())?;
    let (data, iv_out) = aes_mode(
        mode,
        bits,
        input.iv_in.as_bytes(),
        input.in_data.as_bytes(),
        input.decrypt,
    )
    .map_err(|e| match e {
        SymError::KeySize(_) => key_err(),
        SymError::IvSize(_) => TpmRc::SIZE.with_parameter(pos.iv),
        SymError::DataSize(_) => TpmRc::SIZE.with_parameter(pos.data),
    })?;
    let data = zeroize::Zeroizing::new(data);
    out.params
        .write(&MaxBuffer::new(&data).map_err(|_| TpmRc::FAILURE)?);
    out.params
        .write(&Iv::new(&iv_out).map_err(|_| TpmRc::FAILURE)?);
    Ok(())
}

/// TPM2_EncryptDecrypt.
pub struct EncryptDecrypt;

impl Command for EncryptDecrypt {
    type In = EncryptDecryptIn;

    fn read(p: &mut Params<'_>) -> Result<EncryptDecryptIn, TpmRc> {
        let decrypt = p.with(read_yes_no)?;
        let mode = p.with(read_cipher_mode)?;
        let iv_in = p.read()?;
        let in_data = p.read()?;
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
            mode: 2,
            iv: 3,
            data: 4,
        };
        encrypt_decrypt(tpm, call.handles[0], &input, &pos, out)
    }
}
