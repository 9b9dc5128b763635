//! Key providers: key files (formats, permission check) and descriptors.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vtpm_store::{KeyError, KeyFd, KeyFile, KeyProvider, MasterKey};

const RAW: [u8; 32] = [
    0x9c, 0x01, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0,
];
const HEX: &str = "9c0122334455667788 99aabbccddeeff00102030405060708090a0b0c0d0e0f0";

fn hex() -> String {
    HEX.replace(' ', "")
}

fn write_key(path: &Path, data: &[u8], mode: u32) {
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn expected_id() -> vtpm_store::KeyId {
    MasterKey::from_bytes(RAW).key_id()
}

#[test]
fn key_file_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("k");
    for data in [
        RAW.to_vec(),
        hex().into_bytes(),
        format!("{}\n", hex()).into_bytes(),
        format!("{}\n", hex().to_uppercase()).into_bytes(),
    ] {
        write_key(&p, &data, 0o600);
        let k = KeyFile::new(&p).master_key().unwrap();
        assert_eq!(k.key_id(), expected_id());
    }
    write_key(&p, &RAW, 0o400);
    assert_eq!(
        KeyFile::new(&p).master_key().unwrap().key_id(),
        expected_id()
    );
}

#[test]
fn key_file_permissions() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("k");
    for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o610] {
        write_key(&p, &RAW, mode);
        let e = KeyFile::new(&p).master_key().unwrap_err();
        assert!(
            matches!(e, KeyError::Permissions { mode: m, .. } if m == mode),
            "{mode:o}: {e:?}"
        );
        let msg = e.to_string();
        assert!(msg.contains(&format!("{mode:04o}")), "{msg}");
        assert!(msg.contains("accessible to group or others"), "{msg}");
        assert!(msg.contains("chmod 600"), "{msg}");
    }
    write_key(&p, &RAW, 0o600);
    KeyFile::new(&p).master_key().unwrap();
}

#[test]
fn key_file_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let e = KeyFile::new(&missing).master_key().unwrap_err();
    assert!(matches!(e, KeyError::Read { .. }), "{e:?}");
    assert!(e.to_string().contains(&missing.display().to_string()));

    let dir = tmp.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(matches!(
        KeyFile::new(&dir).master_key(),
        Err(KeyError::NotAFile { .. })
    ));

    let p = tmp.path().join("short");
    write_key(&p, b"too short\n", 0o600);
    let e = KeyFile::new(&p).master_key().unwrap_err();
    assert!(matches!(e, KeyError::Malformed { len: 10, .. }), "{e:?}");

    // A huge file is not read beyond the limit.
    write_key(&p, &vec![b'a'; 1 << 20], 0o600);
    assert!(matches!(
        KeyFile::new(&p).master_key(),
        Err(KeyError::Malformed { .. })
    ));
}

#[test]
fn key_fd_from_file_and_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("k");
    write_key(&p, format!("{}\n", hex()).as_bytes(), 0o600);
    let f = std::fs::File::open(&p).unwrap();
    let provider = KeyFd::new(f.as_raw_fd());
    assert_eq!(provider.master_key().unwrap().key_id(), expected_id());
    assert_eq!(
        provider.describe(),
        format!("file descriptor {}", f.as_raw_fd())
    );

    let (reader, mut writer) = std::io::pipe().unwrap();
    writer.write_all(&RAW).unwrap();
    drop(writer);
    let k = KeyFd::new(reader.as_raw_fd()).master_key().unwrap();
    assert_eq!(k.key_id(), expected_id());
}

#[test]
fn key_fd_errors() {
    assert!(matches!(
        KeyFd::new(-1).master_key(),
        Err(KeyError::BadFd { fd: -1 })
    ));
    // A descriptor number that is not open.
    let e = KeyFd::new(1_000_000).master_key().unwrap_err();
    assert!(matches!(e, KeyError::Read { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("could not read the state key from file descriptor 1000000"),
        "{e}"
    );
}
