//! The state file on disk: creation, permissions, the lock, atomic
//! replacement, and the engine on a `FilePlatform`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vtpm_store::{FilePlatform, FormatError, MasterKey, Store, StoreError, seal, unseal};

fn key() -> MasterKey {
    MasterKey::from_bytes([0x42; 32])
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn temp_name(file: &str) -> String {
    format!(".{file}.tmp.{}", std::process::id())
}

#[test]
fn create_write_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vms").join("vm1");
    let path = dir.join("tpm.state");

    let (mut store, image) = Store::open(&path, key()).unwrap();
    assert!(image.is_none());
    assert_eq!(mode(&dir), 0o700);
    assert!(!path.exists(), "nothing is written before the first write");
    store.write(b"first image").unwrap();
    store.write(b"second image").unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.join("tpm.state.lock")), 0o600);
    assert_eq!(store.read().unwrap().unwrap().as_slice(), b"second image");
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["tpm.state", "tpm.state.lock"]);
    drop(store);

    let (_store, image) = Store::open(&path, key()).unwrap();
    assert_eq!(image.unwrap().as_slice(), b"second image");
}

#[test]
fn every_write_uses_a_fresh_salt() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s");
    let (mut store, _) = Store::open(&path, key()).unwrap();
    store.write(b"same").unwrap();
    let a = std::fs::read(&path).unwrap();
    store.write(b"same").unwrap();
    let b = std::fs::read(&path).unwrap();
    assert_ne!(a, b);
    assert_ne!(a[32..64], b[32..64]);
}

#[test]
fn second_open_is_refused_while_first_lives() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("vm.state");
    let (first, _) = Store::open(&path, key()).unwrap();
    let e = Store::open(&path, key()).unwrap_err();
    assert!(matches!(e, StoreError::InUse { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "state file {} is in use by another vtpm process",
            path.display()
        )
    );
    drop(first);
    let (_second, _) = Store::open(&path, key()).unwrap();
}

#[test]
fn failed_write_leaves_old_file_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("vm.state");
    let (mut store, _) = Store::open(&path, key()).unwrap();
    store.write(b"committed").unwrap();
    let before = std::fs::read(&path).unwrap();

    // The temporary file is created exclusively: if one is in the way the
    // write fails before touching the state file.
    let blocker = tmp.path().join(temp_name("vm.state"));
    std::fs::write(&blocker, b"in the way").unwrap();
    let e = store.write(b"never committed").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("could not create temporary state file"),
        "{e}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(std::fs::read(&blocker).unwrap(), b"in the way");
    assert_eq!(store.read().unwrap().unwrap().as_slice(), b"committed");

    // A rename that fails (the target is now a directory) removes the
    // temporary file and reports the error.
    std::fs::remove_file(&blocker).unwrap();
    let other = tmp.path().join("other.state");
    let (mut s2, _) = Store::open(&other, key()).unwrap();
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("x"), b"").unwrap();
    let e = s2.write(b"image").unwrap_err();
    assert!(
        e.to_string().starts_with("could not replace state file"),
        "{e}"
    );
    assert!(!tmp.path().join(temp_name("other.state")).exists());

    store.write(b"next").unwrap();
    assert_eq!(store.read().unwrap().unwrap().as_slice(), b"next");
}

#[test]
fn stale_temporary_files_are_removed_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("vm.state");
    let stale = tmp.path().join(".vm.state.tmp.4000000000");
    let unrelated = tmp.path().join(".vm.state.tmp.notapid");
    std::fs::write(&stale, b"half").unwrap();
    std::fs::write(&unrelated, b"keep").unwrap();
    let (_store, _) = Store::open(&path, key()).unwrap();
    assert!(!stale.exists());
    assert!(unrelated.exists());
}

#[test]
fn wrong_key_and_corruption_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("vm.state");
    let (mut store, _) = Store::open(&path, key()).unwrap();
    store.write(b"image").unwrap();
    drop(store);

    let other = MasterKey::from_bytes([0x43; 32]);
    let e = Store::open(&path, other.clone()).unwrap_err();
    assert!(
        matches!(e.format_error(), Some(FormatError::WrongKey { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("wrong state key"), "{e}");

    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let e = Store::open(&path, key()).unwrap_err();
    assert_eq!(e.format_error(), Some(&FormatError::Corrupt));
    assert_eq!(
        e.to_string(),
        format!(
            "{} cannot be used: state file is corrupt or was modified",
            path.display()
        )
    );
}

#[test]
fn oversized_file_is_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("vm.state");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(vtpm_store::format::MAX_FILE_LEN + 1).unwrap(); // sparse
    drop(f);
    let e = Store::open(&path, key()).unwrap_err();
    assert!(matches!(e, StoreError::TooLarge { .. }), "{e:?}");
}

#[test]
fn empty_file_is_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("vm.state");
    std::fs::write(&path, b"").unwrap();
    let e = Store::open(&path, key()).unwrap_err();
    assert_eq!(e.format_error(), Some(&FormatError::Truncated));
}

#[test]
fn path_without_file_name() {
    let e = Store::open("/", key()).unwrap_err();
    assert!(matches!(e, StoreError::BadPath { .. }), "{e:?}");
}

#[test]
fn dotted_path_components() {
    // `.` and `..` components resolve as the OS resolves them.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("./sub/../vm.state");
    let (mut store, _) = Store::open(&path, key()).unwrap();
    store.write(b"abc").unwrap();
    let bytes = std::fs::read(tmp.path().join("vm.state")).unwrap();
    assert_eq!(unseal(&bytes, &key()).unwrap().as_slice(), b"abc");
    // And the file is what seal makes, apart from the salt.
    let resealed = seal(b"abc", &key(), bytes[32..64].try_into().unwrap()).unwrap();
    assert_eq!(resealed, bytes);
}

#[test]
fn engine_on_file_platform() {
    use vtpm_engine::Tpm;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("vm.state");

    // Fresh: the engine manufactures and commits NV at creation.
    let mut tpm = Tpm::new(Box::new(FilePlatform::open(&path, key()).unwrap())).unwrap();
    assert!(path.exists());
    let first = unseal(&std::fs::read(&path).unwrap(), &key()).unwrap();
    assert!(!first.is_empty());
    // Locked while the engine lives.
    assert!(matches!(
        FilePlatform::open(&path, key()),
        Err(StoreError::InUse { .. })
    ));
    tpm.power_on();
    // TPM2_Startup(SU_CLEAR) succeeds.
    let rsp = tpm.execute(0, &[0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0]);
    assert_eq!(rsp[6..10], [0, 0, 0, 0], "{rsp:02x?}");
    tpm.power_off();
    drop(tpm);

    // Reopened: the engine reads the committed image back.
    let platform = FilePlatform::open(&path, key()).unwrap();
    let mut tpm = Tpm::new(Box::new(platform)).unwrap();
    tpm.power_on();
    let rsp = tpm.execute(0, &[0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0]);
    assert_eq!(rsp[6..10], [0, 0, 0, 0], "{rsp:02x?}");
    drop(tpm);

    // With another key the engine never starts.
    let e = FilePlatform::open(&path, MasterKey::from_bytes([9; 32])).unwrap_err();
    assert!(e.to_string().contains("wrong state key"), "{e}");
}
