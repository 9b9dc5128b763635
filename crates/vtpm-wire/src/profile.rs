//! What this TPM implements: the equivalent of the reference
//! implementation's `TpmProfile.h`. Interface types (`TPMI_*`) validate
//! against these tables, so an algorithm outside them is refused at
//! unmarshalling with the response code Part 2 assigns.

use crate::constants::{AlgId, EccCurve};

/// Number of PCRs (IMPLEMENTATION_PCR).
pub const IMPLEMENTATION_PCR: usize = 24;
/// Octets in a PCR selection bitmap (PCR_SELECT_MAX = PCR_SELECT_MIN here).
pub const PCR_SELECT_MAX: usize = IMPLEMENTATION_PCR.div_ceil(8);
/// Minimum octets in a PCR selection bitmap (PCR_SELECT_MIN).
pub const PCR_SELECT_MIN: usize = 3;
/// Largest digest (sizeof(TPMU_HA)).
pub const MAX_DIGEST_SIZE: usize = 64;
/// MAX_DIGEST_BUFFER: capacity of TPM2B_MAX_BUFFER.
pub const MAX_DIGEST_BUFFER: usize = 1024;
/// MAX_NV_BUFFER_SIZE.
pub const MAX_NV_BUFFER_SIZE: usize = 1024;
/// MAX_CAP_BUFFER: room for capability data in a GetCapability response.
pub const MAX_CAP_BUFFER: usize = 1024;
/// Largest command the TPM accepts (TPM_PT_MAX_COMMAND_SIZE).
pub const MAX_COMMAND_SIZE: usize = 4096;
/// Largest response the TPM produces (TPM_PT_MAX_RESPONSE_SIZE).
pub const MAX_RESPONSE_SIZE: usize = 4096;
/// MAX_SYM_DATA: capacity of TPM2B_SENSITIVE_DATA.
pub const MAX_SYM_DATA: usize = 128;
/// Capacity of TPM2B_EVENT.
pub const MAX_EVENT_DATA: usize = 1024;
/// Most sessions in one command.
pub const MAX_SESSION_NUM: usize = 3;
/// Transient object slots (sequence objects use them too).
pub const MAX_LOADED_OBJECTS: usize = 8;
/// Loaded session slots.
pub const MAX_LOADED_SESSIONS: usize = 3;
/// Active (loaded + saved) sessions.
pub const MAX_ACTIVE_SESSIONS: usize = 64;
/// Digests in a TPML_DIGEST.
pub const MAX_DIGEST_LIST: usize = 8;

/// Hash algorithms, in the order PCR banks and digest lists use them.
pub const HASH_ALGS: [AlgId; 4] = [AlgId::SHA1, AlgId::SHA256, AlgId::SHA384, AlgId::SHA512];
/// HASH_COUNT.
pub const HASH_COUNT: usize = HASH_ALGS.len();

/// RSA key sizes (TPMI_RSA_KEY_BITS).
pub const RSA_KEY_BITS: [u16; 3] = [2048, 3072, 4096];
/// ECC curves (TPMI_ECC_CURVE).
pub const ECC_CURVES: [EccCurve; 2] = [EccCurve::NIST_P256, EccCurve::NIST_P384];
/// AES key sizes (TPMI_AES_KEY_BITS).
pub const AES_KEY_BITS: [u16; 2] = [128, 256];
/// Block cipher modes (TPMI_ALG_SYM_MODE).
pub const SYM_MODES: [AlgId; 5] = [AlgId::CTR, AlgId::OFB, AlgId::CBC, AlgId::CFB, AlgId::ECB];

/// Digest size of an implemented hash algorithm.
pub fn digest_size(alg: AlgId) -> Option<usize> {
    match alg {
        AlgId::SHA1 => Some(20),
        AlgId::SHA256 => Some(32),
        AlgId::SHA384 => Some(48),
        AlgId::SHA512 => Some(64),
        _ => None,
    }
}

/// True if `alg` is an implemented hash algorithm.
pub fn is_hash(alg: AlgId) -> bool {
    digest_size(alg).is_some()
}

/// Key derivation functions (TPMI_ALG_KDF).
pub const KDFS: [AlgId; 3] = [AlgId::MGF1, AlgId::KDF1_SP800_56A, AlgId::KDF1_SP800_108];
/// RSA schemes (TPMI_ALG_RSA_SCHEME).
pub const RSA_SCHEMES: [AlgId; 4] = [AlgId::RSASSA, AlgId::RSAES, AlgId::RSAPSS, AlgId::OAEP];
/// ECC schemes (TPMI_ALG_ECC_SCHEME).
pub const ECC_SCHEMES: [AlgId; 2] = [AlgId::ECDSA, AlgId::ECDH];

/// TPMA_ALGORITHM bits.
pub mod alg_attr {
    /// An asymmetric algorithm.
    pub const ASYMMETRIC: u32 = 1 << 0;
    /// A symmetric block cipher.
    pub const SYMMETRIC: u32 = 1 << 1;
    /// A hash algorithm.
    pub const HASH: u32 = 1 << 2;
    /// An object type.
    pub const OBJECT: u32 = 1 << 3;
    /// A signing algorithm.
    pub const SIGNING: u32 = 1 << 8;
    /// An encryption/decryption algorithm.
    pub const ENCRYPTING: u32 = 1 << 9;
    /// A method such as a KDF.
    pub const METHOD: u32 = 1 << 10;
}

/// Every implemented algorithm with its TPMA_ALGORITHM, sorted by ID: the
/// answer to GetCapability(TPM_CAP_ALGS).
pub const ALGORITHMS: [(AlgId, u32); 25] = {
    use alg_attr::*;
    [
        (AlgId::RSA, ASYMMETRIC | OBJECT),
        (AlgId::SHA1, HASH),
        (AlgId::HMAC, HASH | SIGNING),
        (AlgId::AES, SYMMETRIC),
        (AlgId::MGF1, HASH | METHOD),
        (AlgId::KEYEDHASH, HASH | OBJECT | SIGNING | ENCRYPTING),
        (AlgId::XOR, SYMMETRIC | HASH),
        (AlgId::SHA256, HASH),
        (AlgId::SHA384, HASH),
        (AlgId::SHA512, HASH),
        (AlgId::RSASSA, ASYMMETRIC | SIGNING),
        (AlgId::RSAES, ASYMMETRIC | ENCRYPTING),
        (AlgId::RSAPSS, ASYMMETRIC | SIGNING),
        (AlgId::OAEP, ASYMMETRIC | ENCRYPTING),
        (AlgId::ECDSA, ASYMMETRIC | SIGNING),
        (AlgId::ECDH, ASYMMETRIC | METHOD),
        (AlgId::KDF1_SP800_56A, HASH | METHOD),
        (AlgId::KDF1_SP800_108, HASH | METHOD),
        (AlgId::ECC, ASYMMETRIC | OBJECT),
        (AlgId::SYMCIPHER, OBJECT),
        (AlgId::CTR, SYMMETRIC | ENCRYPTING),
        (AlgId::OFB, SYMMETRIC | ENCRYPTING),
        (AlgId::CBC, SYMMETRIC | ENCRYPTING),
        (AlgId::CFB, SYMMETRIC | ENCRYPTING),
        (AlgId::ECB, SYMMETRIC | ENCRYPTING),
    ]
};
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_table_is_sorted_and_consistent() {
        let ids: Vec<u16> = ALGORITHMS.iter().map(|(a, _)| a.0).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:x?}");
        for h in HASH_ALGS {
            assert!(ids.contains(&h.0));
        }
        for m in SYM_MODES
            .iter()
            .chain(&KDFS)
            .chain(&RSA_SCHEMES)
            .chain(&ECC_SCHEMES)
        {
            assert!(ids.contains(&m.0), "{m:?}");
        }
    }
}
