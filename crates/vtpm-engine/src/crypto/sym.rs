//! Session parameter encryption (Part 1 §21): AES in CFB mode (full-block
//! feedback) and XOR obfuscation; and AES in the block-cipher modes of
//! TPM2_EncryptDecrypt.

use super::hash::HashAlg;
use super::kdf::kdfa;
use aes::{Aes128, Aes256};
use cfb_mode::cipher::array::Array;
use cfb_mode::cipher::typenum::U16;
use cfb_mode::cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, BlockSizeUser,
    KeyInit, KeyIvInit, StreamCipher,
};
use zeroize::Zeroizing;

/// Why a TPM2_EncryptDecrypt operation could not be done.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SymError {
    /// The key is neither an AES-128 nor an AES-256 key.
    #[error("the AES key is {0} bytes long, not 16 or 32")]
    KeySize(usize),
    /// The IV is not one block long (modes other than ECB).
    #[error("the IV is {0} bytes long, not the 16-byte AES block")]
    IvSize(usize),
    /// CBC or ECB data that is not a whole number of blocks.
    #[error(
        "the data is {0} bytes long, not a multiple of the 16-byte block that CBC and ECB need"
    )]
    DataSize(usize),
}

/// A block-cipher mode of TPM2_EncryptDecrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymMode {
    /// Cipher feedback, full-block (128-bit) feedback (TPM_ALG_CFB).
    Cfb,
    /// Cipher block chaining, no padding (TPM_ALG_CBC).
    Cbc,
    /// Counter mode, the whole IV a 128-bit big-endian counter (TPM_ALG_CTR).
    Ctr,
    /// Output feedback (TPM_ALG_OFB).
    Ofb,
    /// Electronic codebook, no padding (TPM_ALG_ECB).
    Ecb,
}

const BLOCK: usize = 16;

/// AES (a 16- or 32-byte key) in `mode` over `data`, encrypting or
/// (`decrypt`) decrypting, with `iv` (16 bytes; for ECB it is not used and
/// may have any length). Returns (output, ivOut).
///
/// The semantics are those of TPM2_EncryptDecrypt (Part 3 §15.2) as the
/// reference implementation's CryptSymmetricEncrypt/CryptSymmetricDecrypt
/// carry them out. There is no padding: CBC and ECB need a whole number of
/// blocks ([`SymError::DataSize`] otherwise, TPM_RC_SIZE to the caller);
/// CFB, CTR and OFB take any length, the last block possibly partial.
/// ivOut is what lets the caller continue the chain with a next call:
///
/// - CBC: the last ciphertext block (the output's when encrypting, the
///   input's when decrypting);
/// - CFB: the last ciphertext block; after a partial final block of `r`
///   bytes, those `r` ciphertext bytes followed by `16 − r` zero octets
///   (the reference implementation's choice: the IV register holds the
///   ciphertext so far and is zero-filled);
/// - CTR: the counter after the last block used: the IV plus the number of
///   blocks (a partial block counts as one) as a 128-bit big-endian
///   integer, wrapping around;
/// - OFB: the last keystream block (all 16 bytes, even when only part of it
///   was used);
/// - ECB: `iv` as given (the reference implementation leaves ivIn alone).
///
/// Empty data gives empty output and ivOut = `iv` in every mode.
pub fn aes_mode(
    mode: SymMode,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
    decrypt: bool,
) -> Result<(Vec<u8>, Vec<u8>), SymError> {
    match key.len() {
        16 => mode_with::<Aes128>(mode, key, iv, data, decrypt),
        32 => mode_with::<Aes256>(mode, key, iv, data, decrypt),
        n => Err(SymError::KeySize(n)),
    }
}

fn mode_with<C>(
    mode: SymMode,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
    decrypt: bool,
) -> Result<(Vec<u8>, Vec<u8>), SymError>
where
    C: BlockCipherEncrypt + BlockCipherDecrypt + KeyInit + BlockSizeUser<BlockSize = U16>,
{
    let key_err = || SymError::KeySize(key.len());
    if matches!(mode, SymMode::Cbc | SymMode::Ecb) && !data.len().is_multiple_of(BLOCK) {
        return Err(SymError::DataSize(data.len()));
    }
    if mode == SymMode::Ecb {
        let mut out = data.to_vec();
        let (blocks, _) = Array::<u8, U16>::slice_as_chunks_mut(&mut out);
        if decrypt {
            ecb::Decryptor::<C>::new_from_slice(key)
                .map_err(|_| key_err())?
                .decrypt_blocks(blocks);
        } else {
            ecb::Encryptor::<C>::new_from_slice(key)
                .map_err(|_| key_err())?
                .encrypt_blocks(blocks);
        }
        return Ok((out, iv.to_vec()));
    }
    let iv_block: [u8; BLOCK] = iv.try_into().map_err(|_| SymError::IvSize(iv.len()))?;
    if data.is_empty() {
        return Ok((Vec::new(), iv.to_vec()));
    }
    // Work on whole blocks: the data, zero-padded. What the padding turns
    // into is cut off again (and serves to read OFB's last keystream block).
    let blocks_used = data.len().div_ceil(BLOCK);
    let mut buf = Zeroizing::new(vec![0u8; blocks_used * BLOCK]);
    buf.get_mut(..data.len())
        .ok_or(SymError::DataSize(data.len()))?
        .copy_from_slice(data);
    let last_start = (blocks_used - 1) * BLOCK;
    let iv_out: Vec<u8> = match mode {
        SymMode::Cbc | SymMode::Cfb => {
            let (blocks, _) = Array::<u8, U16>::slice_as_chunks_mut(&mut buf);
            match (mode, decrypt) {
                (SymMode::Cbc, false) => cbc::Encryptor::<C>::new_from_slices(key, iv)
                    .map_err(|_| key_err())?
                    .encrypt_blocks(blocks),
                (SymMode::Cbc, true) => cbc::Decryptor::<C>::new_from_slices(key, iv)
                    .map_err(|_| key_err())?
                    .decrypt_blocks(blocks),
                (_, false) => cfb_mode::Encryptor::<C>::new_from_slices(key, iv)
                    .map_err(|_| key_err())?
                    .encrypt_blocks(blocks),
                (_, true) => cfb_mode::Decryptor::<C>::new_from_slices(key, iv)
                    .map_err(|_| key_err())?
                    .decrypt_blocks(blocks),
            }
            // The ciphertext of the last block, zero-filled after a
            // partial one (CBC blocks are never partial).
            let ciphertext: &[u8] = if decrypt { data } else { &buf };
            let mut last = ciphertext
                .get(last_start..data.len())
                .unwrap_or_default()
                .to_vec();
            last.resize(BLOCK, 0);
            last
        }
        SymMode::Ofb => {
            let mut ofb = ofb::Ofb::<C>::new_from_slices(key, iv).map_err(|_| key_err())?;
            // OFB's keystream never ends; this cannot fail.
            ofb.try_apply_keystream(&mut buf)
                .map_err(|_| SymError::DataSize(data.len()))?;
            // The last keystream block: output XOR (zero-padded) input.
            let mut padded_last = data.get(last_start..).unwrap_or_default().to_vec();
            padded_last.resize(BLOCK, 0);
            buf.get(last_start..)
                .unwrap_or_default()
                .iter()
                .zip(&padded_last)
                .map(|(o, i)| o ^ i)
                .collect()
        }
        SymMode::Ctr => {
            let mut ctr = ctr::Ctr128BE::<C>::new_from_slices(key, iv).map_err(|_| key_err())?;
            // 2^128 blocks of keystream; this cannot fail.
            ctr.try_apply_keystream(&mut buf)
                .map_err(|_| SymError::DataSize(data.len()))?;
            let used = u128::try_from(blocks_used).unwrap_or(u128::MAX);
            u128::from_be_bytes(iv_block)
                .wrapping_add(used)
                .to_be_bytes()
                .to_vec()
        }
        SymMode::Ecb => iv.to_vec(),
    };
    buf.truncate(data.len());
    Ok((buf.to_vec(), iv_out))
}

/// Encrypts (`encrypt`) or decrypts `data` in place with AES-CFB; the key
/// length selects AES-128 or AES-256. Wrong lengths leave `data` alone and
/// return false.
pub fn aes_cfb(key: &[u8], iv: &[u8], data: &mut [u8], encrypt: bool) -> bool {
    fn run<C>(key: &[u8], iv: &[u8], data: &mut [u8], encrypt: bool) -> bool
    where
        C: cfb_mode::cipher::BlockCipherEncrypt + cfb_mode::cipher::KeyInit,
    {
        if encrypt {
            match cfb_mode::BufEncryptor::<C>::new_from_slices(key, iv) {
                Ok(mut c) => {
                    c.encrypt(data);
                    true
                }
                Err(_) => false,
            }
        } else {
            match cfb_mode::BufDecryptor::<C>::new_from_slices(key, iv) {
                Ok(mut c) => {
                    c.decrypt(data);
                    true
                }
                Err(_) => false,
            }
        }
    }
    match key.len() {
        16 => run::<Aes128>(key, iv, data, encrypt),
        32 => run::<Aes256>(key, iv, data, encrypt),
        _ => false,
    }
}

/// XOR obfuscation: data ^= KDFa(hash, key, "XOR", nonceNewer, nonceOlder,
/// len * 8). Its own inverse.
pub fn xor_obfuscate(
    hash: HashAlg,
    key: &[u8],
    nonce_newer: &[u8],
    nonce_older: &[u8],
    data: &mut [u8],
) {
    let bits = u32::try_from(data.len() * 8).unwrap_or(u32::MAX);
    let mask = kdfa(hash, key, b"XOR", nonce_newer, nonce_older, bits);
    for (d, m) in data.iter_mut().zip(mask.iter()) {
        *d ^= m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::self_test::hex;

    /// NIST SP 800-38A F.3.13 (CFB128-AES128.Encrypt), first two blocks.
    #[test]
    fn aes_cfb_matches_sp800_38a() {
        let key = [
            0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf,
            0x4f, 0x3c,
        ];
        let iv: Vec<u8> = (0u8..16).collect();
        let mut data = [
            0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93,
            0x17, 0x2a, 0xae, 0x2d, 0x8a, 0x57, 0x1e, 0x03, 0xac, 0x9c, 0x9e, 0xb7, 0x6f, 0xac,
            0x45, 0xaf, 0x8e, 0x51,
        ];
        let plain = data;
        assert!(aes_cfb(&key, &iv, &mut data, true));
        assert_eq!(
            hex(&data),
            "3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b"
        );
        assert!(aes_cfb(&key, &iv, &mut data, false));
        assert_eq!(data, plain);
        // A partial last block works (CFB is a stream mode).
        let mut short = plain[..5].to_vec();
        assert!(aes_cfb(&key, &iv, &mut short, true));
        assert_eq!(hex(&short), "3b3fd92eb7");
        assert!(!aes_cfb(&key[..15], &iv, &mut short, true));
    }

    #[test]
    fn xor_is_its_own_inverse() {
        let mut d = b"secret data".to_vec();
        xor_obfuscate(HashAlg::Sha256, b"k", b"n1", b"n2", &mut d);
        assert_ne!(d, b"secret data");
        xor_obfuscate(HashAlg::Sha256, b"k", b"n1", b"n2", &mut d);
        assert_eq!(d, b"secret data");
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// NIST SP 800-38A Appendix F: the common plaintext, keys and IVs.
    const PLAIN: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
    const KEY128: &str = "2b7e151628aed2a6abf7158809cf4f3c";
    const KEY256: &str = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
    const IV: &str = "000102030405060708090a0b0c0d0e0f";
    const CTR_IV: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

    /// (section, mode, key, iv, ciphertext) from SP 800-38A Appendix F.
    const SP800_38A: [(&str, SymMode, &str, &str, &str); 10] = [
        (
            "F.1.1",
            SymMode::Ecb,
            KEY128,
            "",
            "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf43b1cd7f598ece23881b00e3ed0306887b0c785e27e8ad3f8223207104725dd4",
        ),
        (
            "F.1.5",
            SymMode::Ecb,
            KEY256,
            "",
            "f3eed1bdb5d2a03c064b5a7e3db181f8591ccb10d410ed26dc5ba74a31362870b6ed21b99ca6f4f9f153e7b1beafed1d23304b7a39f9f3ff067d8d8f9e24ecc7",
        ),
        (
            "F.2.1",
            SymMode::Cbc,
            KEY128,
            IV,
            "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b273bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7",
        ),
        (
            "F.2.5",
            SymMode::Cbc,
            KEY256,
            IV,
            "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b",
        ),
        (
            "F.3.13",
            SymMode::Cfb,
            KEY128,
            IV,
            "3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b26751f67a3cbb140b1808cf187a4f4dfc04b05357c5d1c0eeac4c66f9ff7f2e6",
        ),
        (
            "F.3.17",
            SymMode::Cfb,
            KEY256,
            IV,
            "dc7e84bfda79164b7ecd8486985d386039ffed143b28b1c832113c6331e5407bdf10132415e54b92a13ed0a8267ae2f975a385741ab9cef82031623d55b1e471",
        ),
        (
            "F.4.1",
            SymMode::Ofb,
            KEY128,
            IV,
            "3b3fd92eb72dad20333449f8e83cfb4a7789508d16918f03f53c52dac54ed8259740051e9c5fecf64344f7a82260edcc304c6528f659c77866a510d9c1d6ae5e",
        ),
        (
            "F.4.5",
            SymMode::Ofb,
            KEY256,
            IV,
            "dc7e84bfda79164b7ecd8486985d38604febdc6740d20b3ac88f6ad82a4fb08d71ab47a086e86eedf39d1c5bba97c4080126141d67f37be8538f5a8be740e484",
        ),
        (
            "F.5.1",
            SymMode::Ctr,
            KEY128,
            CTR_IV,
            "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee",
        ),
        (
            "F.5.5",
            SymMode::Ctr,
            KEY256,
            CTR_IV,
            "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c52b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6",
        ),
    ];

    /// Every SP 800-38A vector in both directions; and split into two calls
    /// chained through ivOut, which must give the same result (so ivOut is
    /// what continues the chain).
    #[test]
    fn aes_modes_match_sp800_38a() {
        let plain = unhex(PLAIN);
        for (section, mode, key, iv, cipher) in SP800_38A {
            let (key, iv, cipher) = (unhex(key), unhex(iv), unhex(cipher));
            let (out, iv_out) = aes_mode(mode, &key, &iv, &plain, false).unwrap();
            assert_eq!(hex(&out), hex(&cipher), "{section} encrypt");
            let (back, iv_back) = aes_mode(mode, &key, &iv, &cipher, true).unwrap();
            assert_eq!(back, plain, "{section} decrypt");
            assert_eq!(iv_out, iv_back, "{section} ivOut");
            for split in [16, 32, 48] {
                for (input, expected, decrypt) in
                    [(&plain, &cipher, false), (&cipher, &plain, true)]
                {
                    let (a, iv1) = aes_mode(mode, &key, &iv, &input[..split], decrypt).unwrap();
                    let (b, iv2) = aes_mode(mode, &key, &iv1, &input[split..], decrypt).unwrap();
                    assert_eq!([a, b].concat(), *expected, "{section} split {split}");
                    assert_eq!(iv2, iv_out, "{section} split {split}");
                }
            }
            // ivOut, per mode.
            let last_ct = cipher[48..].to_vec();
            let expected_iv = match mode {
                SymMode::Cbc | SymMode::Cfb => last_ct,
                // The fourth keystream block.
                SymMode::Ofb => last_ct
                    .iter()
                    .zip(&plain[48..])
                    .map(|(c, p)| c ^ p)
                    .collect(),
                SymMode::Ctr => unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdff03"),
                SymMode::Ecb => Vec::new(),
            };
            assert_eq!(hex(&iv_out), hex(&expected_iv), "{section} ivOut value");
        }
    }

    /// Partial final blocks in the stream modes: the output is a prefix of
    /// the whole-block output, decrypt(encrypt(x)) = x for odd lengths, and
    /// ivOut follows the reference implementation.
    #[test]
    fn aes_stream_modes_partial_blocks() {
        let plain = unhex(PLAIN);
        for (section, mode, key, iv, cipher) in SP800_38A {
            if matches!(mode, SymMode::Cbc | SymMode::Ecb) {
                continue;
            }
            let (key, iv, cipher) = (unhex(key), unhex(iv), unhex(cipher));
            for len in [1usize, 5, 15, 17, 24, 31, 33, 63] {
                let (out, iv_out) = aes_mode(mode, &key, &iv, &plain[..len], false).unwrap();
                assert_eq!(out, cipher[..len], "{section} len {len}");
                let (back, iv_back) = aes_mode(mode, &key, &iv, &out, true).unwrap();
                assert_eq!(back, plain[..len], "{section} len {len}");
                assert_eq!(iv_out, iv_back);
                assert_eq!(iv_out.len(), 16);
                let last = (len - 1) / 16 * 16;
                let expected_iv = match mode {
                    // The partial ciphertext block, zero-filled.
                    SymMode::Cfb => {
                        let mut v = cipher[last..len].to_vec();
                        v.resize(16, 0);
                        v
                    }
                    // The whole keystream block, used only in part.
                    SymMode::Ofb => cipher[last..last + 16]
                        .iter()
                        .zip(&plain[last..last + 16])
                        .map(|(c, p)| c ^ p)
                        .collect(),
                    // The IV plus the blocks used, a partial one included.
                    _ => {
                        let n = u128::from_be_bytes(iv.clone().try_into().unwrap());
                        (n + len.div_ceil(16) as u128).to_be_bytes().to_vec()
                    }
                };
                assert_eq!(hex(&iv_out), hex(&expected_iv), "{section} len {len}");
            }
            // Odd lengths round-trip beyond the vectors too.
            let long: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
            let (ct, _) = aes_mode(mode, &key, &iv, &long, false).unwrap();
            assert_ne!(ct, long);
            assert_eq!(aes_mode(mode, &key, &iv, &ct, true).unwrap().0, long);
        }
    }

    /// CTR counts with the whole IV as one 128-bit big-endian integer and
    /// wraps around (as CryptSymmetricEncrypt's byte-wise increment does).
    #[test]
    fn aes_ctr_wraps_the_whole_block() {
        let key = unhex(KEY128);
        let iv = [0xff; 16];
        let data = [0u8; 40];
        let (out, iv_out) = aes_mode(SymMode::Ctr, &key, &iv, &data, false).unwrap();
        let mut counters = vec![0xffu8; 16];
        counters.extend_from_slice(&[0; 15]);
        counters.push(0);
        counters.extend_from_slice(&[0; 15]);
        counters.push(1);
        let (keystream, _) = aes_mode(SymMode::Ecb, &key, &[], &counters, false).unwrap();
        assert_eq!(out, keystream[..40]);
        let mut two = [0u8; 16];
        two[15] = 2;
        assert_eq!(iv_out, two);
    }

    #[test]
    fn aes_mode_rejects_bad_sizes() {
        let key = unhex(KEY128);
        let iv = unhex(IV);
        for mode in [SymMode::Cbc, SymMode::Ecb] {
            for len in [1usize, 15, 17, 33] {
                for decrypt in [false, true] {
                    assert_eq!(
                        aes_mode(mode, &key, &iv, &vec![0; len], decrypt),
                        Err(SymError::DataSize(len))
                    );
                }
            }
        }
        for mode in [SymMode::Cfb, SymMode::Cbc, SymMode::Ctr, SymMode::Ofb] {
            for iv_len in [0usize, 8, 15, 17, 32] {
                assert_eq!(
                    aes_mode(mode, &key, &vec![0; iv_len], &[0; 16], false),
                    Err(SymError::IvSize(iv_len))
                );
            }
            // Empty data: nothing to do, the IV comes back.
            assert_eq!(
                aes_mode(mode, &key, &iv, &[], false),
                Ok((Vec::new(), iv.clone()))
            );
        }
        for key_len in [0usize, 8, 15, 24, 33] {
            for mode in [
                SymMode::Cfb,
                SymMode::Cbc,
                SymMode::Ctr,
                SymMode::Ofb,
                SymMode::Ecb,
            ] {
                assert_eq!(
                    aes_mode(mode, &vec![0; key_len], &iv, &[0; 16], true),
                    Err(SymError::KeySize(key_len))
                );
            }
        }
        // ECB ignores the IV, whatever its length, and returns it.
        let (_, iv_out) = aes_mode(SymMode::Ecb, &key, &[1, 2, 3], &[0; 32], false).unwrap();
        assert_eq!(iv_out, [1, 2, 3]);
        assert_eq!(
            aes_mode(SymMode::Ecb, &key, &[], &[], true),
            Ok((Vec::new(), Vec::new()))
        );
    }
}
