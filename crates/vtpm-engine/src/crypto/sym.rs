//! Session parameter encryption (Part 1 §21): AES in CFB mode (full-block
//! feedback) and XOR obfuscation.

use super::hash::HashAlg;
use super::kdf::kdfa;
use aes::{Aes128, Aes256};
use cfb_mode::cipher::KeyIvInit;

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
}
