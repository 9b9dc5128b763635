//! Frozen state files of format version 1. Every future version of vtpm
//! must still read them: never change these files or this test's reading
//! half. See tests/fixtures/README.md for how they were made.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::PathBuf;

use vtpm_store::{MasterKey, read_header, seal, unseal};

/// The fixtures' test key: bytes 0x00, 0x01, ..., 0x1f. A published test
/// key, protecting nothing.
fn test_key() -> MasterKey {
    MasterKey::from_bytes(std::array::from_fn(|i| i as u8))
}

/// The fixtures' salt: bytes 0x80, 0x81, ..., 0x9f.
fn test_salt() -> [u8; 32] {
    std::array::from_fn(|i| 0x80 + i as u8)
}

/// The synthetic NV image: a text line, then bytes (7 * i + 3) mod 256,
/// 5000 bytes in all (two XTS sectors, the second one shorter).
fn synthetic_payload() -> Vec<u8> {
    let mut p = b"vtpm state file fixture, format version 1\n".to_vec();
    let start = p.len();
    p.extend((start..5000).map(|i| (7 * i + 3) as u8));
    p
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// (state file, payload file) pairs.
const FIXTURES: [(&str, &str); 2] = [
    ("state-v1.bin", "payload-v1.bin"),
    ("state-v1-empty.bin", "payload-v1-empty.bin"),
];

#[test]
fn version_1_fixtures_still_open() {
    for (state, payload) in FIXTURES {
        let bytes = std::fs::read(dir().join(state)).unwrap();
        let expected = std::fs::read(dir().join(payload)).unwrap();
        let opened = unseal(&bytes, &test_key()).unwrap_or_else(|e| panic!("{state}: {e}"));
        assert_eq!(*opened, expected, "{state}");

        let h = read_header(&bytes).unwrap();
        assert_eq!(h.version, 1);
        assert_eq!(h.cipher, 1);
        assert_eq!(h.salt, test_salt());
        assert_eq!(h.key_id, test_key().key_id());
    }
    // The committed payload is the documented one.
    assert_eq!(
        std::fs::read(dir().join("payload-v1.bin")).unwrap(),
        synthetic_payload()
    );
}

/// The key id of the test key, frozen: it is part of the format (the
/// header names the key by it).
#[test]
fn test_key_id_is_frozen() {
    assert_eq!(
        test_key().key_id().to_string(),
        std::fs::read_to_string(dir().join("key-id-v1.txt"))
            .unwrap()
            .trim()
    );
}

/// While this crate writes version 1, it writes these files bit for bit
/// (a change of key schedule, layout or padding shows up here). When the
/// writer moves to a new version, this test goes; the one above stays.
#[test]
fn writer_still_produces_version_1_fixtures() {
    for (state, payload) in FIXTURES {
        let expected = std::fs::read(dir().join(state)).unwrap();
        let payload = std::fs::read(dir().join(payload)).unwrap();
        assert_eq!(
            seal(&payload, &test_key(), &test_salt()).unwrap(),
            expected,
            "{state}"
        );
    }
}

/// Regenerates the fixtures. Run only when adding fixtures, never to
/// "fix" the tests above:
/// `cargo test -p vtpm-store --test fixtures -- --ignored regenerate_fixtures`
#[test]
#[ignore = "writes the frozen fixture files"]
fn regenerate_fixtures() {
    let payloads = [synthetic_payload(), Vec::new()];
    for ((state, payload_name), payload) in FIXTURES.iter().zip(payloads) {
        std::fs::write(dir().join(payload_name), &payload).unwrap();
        let sealed = seal(&payload, &test_key(), &test_salt()).unwrap();
        std::fs::write(dir().join(state), sealed).unwrap();
    }
    std::fs::write(
        dir().join("key-id-v1.txt"),
        format!("{}\n", test_key().key_id()),
    )
    .unwrap();
}
