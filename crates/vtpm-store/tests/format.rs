//! The state file format as pure functions: round trips, tampering,
//! truncation, wrong keys, unknown versions and ciphers.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use vtpm_store::format::{HEADER_LEN, MAC_LEN, MAX_IMAGE_LEN};
use vtpm_store::{FormatError, MasterKey, read_header, seal, unseal};

fn key() -> MasterKey {
    MasterKey::from_bytes(std::array::from_fn(|i| i as u8 ^ 0x5a))
}

fn image(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(131) ^ (i >> 8)) as u8)
        .collect()
}

#[test]
fn round_trip_sizes() {
    let k = key();
    for len in [0, 1, 15, 16, 17, 4095, 4096, 4097, 10000, 100000] {
        let img = image(len);
        let sealed = seal(&img, &k, &[len as u8; 32]).unwrap();
        let padded = len.next_multiple_of(16);
        assert_eq!(sealed.len(), HEADER_LEN + padded + MAC_LEN, "len {len}");
        let h = read_header(&sealed).unwrap();
        assert_eq!(h.plaintext_len, len as u64);
        assert_eq!(h.ciphertext_len, padded as u64);
        let opened = unseal(&sealed, &k).unwrap();
        assert_eq!(*opened, img, "len {len}");
        // The image does not appear in clear (for images with content).
        if len >= 32 {
            assert!(!sealed.windows(32).any(|w| w == &img[..32]), "len {len}");
        }
    }
}

#[test]
fn every_flipped_byte_is_refused() {
    let k = key();
    let sealed = seal(&image(40), &k, &[7; 32]).unwrap();
    assert_eq!(sealed.len(), HEADER_LEN + 48 + MAC_LEN);
    for pos in 0..sealed.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = sealed.clone();
            bad[pos] ^= mask;
            match unseal(&bad, &k) {
                Ok(_) => panic!("flipping byte {pos} with {mask:#04x} was accepted"),
                Err(e) => {
                    // Past the header only the MAC can catch it.
                    if pos >= HEADER_LEN {
                        assert_eq!(e, FormatError::Corrupt, "byte {pos}");
                    }
                }
            }
        }
    }
}

#[test]
fn every_truncation_and_extension_is_refused() {
    let k = key();
    let sealed = seal(&image(40), &k, &[7; 32]).unwrap();
    for len in 0..sealed.len() {
        let e = unseal(&sealed[..len], &k).unwrap_err();
        assert_eq!(e, FormatError::Truncated, "truncated to {len}");
        assert_eq!(e.to_string(), "state file is truncated");
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert_eq!(
        unseal(&longer, &k).unwrap_err(),
        FormatError::TrailingData(1)
    );
}

#[test]
fn wrong_key_is_named() {
    let k = key();
    let other = MasterKey::from_bytes([0x11; 32]);
    let sealed = seal(b"secret", &k, &[7; 32]).unwrap();
    let e = unseal(&sealed, &other).unwrap_err();
    assert_eq!(
        e,
        FormatError::WrongKey {
            file: k.key_id(),
            given: other.key_id()
        }
    );
    assert_eq!(
        e.to_string(),
        format!(
            "wrong state key: the file was written with key {}, the key provider gives {}",
            k.key_id(),
            other.key_id()
        )
    );
    assert_eq!(k.key_id().to_string().len(), 32);
}

#[test]
fn not_a_state_file() {
    let k = key();
    for junk in [&b"hello world, this is not it"[..], b"X", b"VTPMSTAX\0\x01"] {
        let e = unseal(junk, &k).unwrap_err();
        assert_eq!(e, FormatError::NotStateFile);
        assert_eq!(e.to_string(), "not a vtpm state file");
    }
}

#[test]
fn newer_and_invalid_versions() {
    let k = key();
    let mut sealed = seal(b"x", &k, &[7; 32]).unwrap();
    sealed[8..10].copy_from_slice(&2u16.to_be_bytes());
    let e = unseal(&sealed, &k).unwrap_err();
    assert_eq!(e, FormatError::NewerVersion(2));
    assert_eq!(
        e.to_string(),
        "state file format version 2 is newer than this vtpm (reads up to 1)"
    );
    // Checked before anything else after the magic: even a file cut short
    // right after its version says why it cannot be read.
    assert_eq!(
        unseal(&sealed[..10], &k).unwrap_err(),
        FormatError::NewerVersion(2)
    );
    sealed[8..10].copy_from_slice(&0u16.to_be_bytes());
    assert_eq!(
        unseal(&sealed, &k).unwrap_err(),
        FormatError::InvalidVersion(0)
    );
}

#[test]
fn unknown_cipher() {
    let k = key();
    let mut sealed = seal(b"x", &k, &[7; 32]).unwrap();
    sealed[10..12].copy_from_slice(&2u16.to_be_bytes());
    let e = unseal(&sealed, &k).unwrap_err();
    assert_eq!(e, FormatError::UnknownCipher(2));
    assert!(e.to_string().contains("cipher id 2"), "{e}");
}

#[test]
fn header_fields_are_checked() {
    let k = key();
    let sealed = seal(&image(40), &k, &[7; 32]).unwrap();
    let set = |off: usize, bytes: &[u8]| {
        let mut b = sealed.clone();
        b[off..off + bytes.len()].copy_from_slice(bytes);
        unseal(&b, &k).unwrap_err()
    };
    assert!(matches!(
        set(12, &88u16.to_be_bytes()),
        FormatError::BadHeader(_)
    ));
    assert!(matches!(
        set(14, &1u16.to_be_bytes()),
        FormatError::BadHeader(_)
    ));
    assert!(matches!(
        set(80, &512u32.to_be_bytes()),
        FormatError::BadHeader(_)
    ));
    // Lengths that disagree with each other or with the file.
    // A plaintext length that still rounds up to the ciphertext length
    // passes the header checks; the MAC catches it.
    assert_eq!(set(64, &41u64.to_be_bytes()), FormatError::Corrupt);
    assert_eq!(set(64, &48u64.to_be_bytes()), FormatError::Corrupt);
    assert!(matches!(
        set(72, &64u64.to_be_bytes()),
        FormatError::BadHeader(_)
    ));
    assert_eq!(
        set(64, &49u64.to_be_bytes()).to_string(),
        "state file header is invalid: the ciphertext length is not the plaintext length rounded up to 16"
    );
    let mut both = sealed.clone();
    both[64..72].copy_from_slice(&100u64.to_be_bytes());
    both[72..80].copy_from_slice(&112u64.to_be_bytes());
    assert_eq!(unseal(&both, &k).unwrap_err(), FormatError::Truncated);
    // Absurd lengths are refused before any allocation.
    assert_eq!(
        set(64, &u64::MAX.to_be_bytes()),
        FormatError::TooLarge(u64::MAX)
    );
    assert_eq!(
        set(64, &(MAX_IMAGE_LEN + 1).to_be_bytes()),
        FormatError::TooLarge(MAX_IMAGE_LEN + 1)
    );
}

#[test]
fn seal_refuses_oversized_image() {
    let big = vec![0u8; MAX_IMAGE_LEN as usize + 1];
    assert!(matches!(
        seal(&big, &key(), &[0; 32]),
        Err(FormatError::TooLarge(_))
    ));
}

/// A cheap, deterministic stand-in for the fuzz target: random edits of
/// a valid file and random bytes behind a valid magic never panic and are
/// never accepted.
#[test]
fn random_mutations_never_accepted() {
    let k = key();
    let sealed = seal(&image(300), &k, &[7; 32]).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3000 {
        let mut b = sealed.clone();
        let edits = 1 + next() % 4;
        for _ in 0..edits {
            let pos = (next() % b.len() as u64) as usize;
            b[pos] = next() as u8;
        }
        if b != sealed {
            assert!(unseal(&b, &k).is_err());
        }
        let len = (next() % 200) as usize;
        let mut junk: Vec<u8> = b"VTPMSTAT\0\x01\0\x01\0\x54\0\0".to_vec();
        junk.extend((0..len).map(|_| next() as u8));
        assert!(unseal(&junk, &k).is_err());
    }
}
