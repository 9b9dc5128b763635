//! Golden vectors for primary-key derivation: a seed and a template give
//! exactly this public key, forever (docs/primary-keys.md). EK certificates
//! and everything sealed to a primary key depend on it, so a change here
//! is a compatibility break, never a test to update.
//!
//! The expected values were computed by an independent implementation:
//! Python marshalling the TCG EK Credential Profile templates L-1 and L-2
//! by hand, the stream and prime search of docs/primary-keys-reference.py,
//! and the `cryptography` package for the P-256 point of
//! d = (c mod (n − 1)) + 1.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use vtpm_engine::keys::primary::derive_primary;
use vtpm_wire::codec::{Reader, Unmarshal};
use vtpm_wire::object::{Public, PublicId};

mod common;
use common::{hex, unhex};

fn template(bytes: &str) -> Public {
    let b = unhex(bytes);
    let mut r = Reader::new(&b);
    let t = Public::unmarshal(&mut r).unwrap();
    r.finish().unwrap();
    t
}

const SEED: [u8; 64] = [0x33; 64];
const POLICY: &str = "0020837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa";

/// TCG EK Credential Profile template L-1 (RSA 2048, AES-128-CFB).
fn ek_rsa_template() -> Public {
    let unique = "00".repeat(256);
    template(&format!(
        "0001000b000300b2{POLICY}00060080004300100800000000000100{unique}"
    ))
}

/// TCG EK Credential Profile template L-2 (NIST P-256, AES-128-CFB).
fn ek_ecc_template() -> Public {
    template(&format!(
        "0023000b000300b2{POLICY}00060080004300100003001000200{}00200{}",
        "0".repeat(63),
        "0".repeat(63)
    ))
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(b))
}

#[test]
fn ek_rsa_2048_golden() {
    let c = derive_primary(&SEED, &ek_rsa_template(), b"", b"").unwrap();
    let PublicId::Rsa(n) = &c.public.unique else {
        panic!("not an RSA key")
    };
    assert_eq!(n.len(), 256);
    assert_eq!(
        sha256(n.as_bytes()),
        "86abd325a2f4168a63a488086ffa4c703c373f57d53c0f8472d3f3fed55e9115",
        "RSA-2048 EK modulus for the golden seed changed: primary derivation is broken"
    );
}

#[test]
fn ek_ecc_p256_golden() {
    let c = derive_primary(&SEED, &ek_ecc_template(), b"", b"").unwrap();
    let PublicId::Ecc(q) = &c.public.unique else {
        panic!("not an ECC key")
    };
    assert_eq!(
        hex(q.x.as_bytes()),
        "0d7aeda711635a6e47c098072e1b4747d428ffd0272038a4c1829eca9fadd79e"
    );
    assert_eq!(
        hex(q.y.as_bytes()),
        "4671f18d30e0e4b1eb8fdeb7b34aaee7d084c8de3e3c8adc1b769c8884ce32ac"
    );
}

#[test]
fn other_seed_or_template_gives_another_key() {
    let a = derive_primary(&SEED, &ek_ecc_template(), b"", b"").unwrap();
    let b = derive_primary(&[0x34; 64], &ek_ecc_template(), b"", b"").unwrap();
    let c = derive_primary(&SEED, &ek_ecc_template(), b"", b"extra").unwrap();
    assert_ne!(a.public.unique, b.public.unique);
    assert_ne!(a.public.unique, c.public.unique);
    // The authValue is not part of the derivation.
    let d = derive_primary(&SEED, &ek_ecc_template(), b"password", b"").unwrap();
    assert_eq!(a.public.unique, d.public.unique);
}
