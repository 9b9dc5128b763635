//! `vtpm backup` / `vtpm restore`: a self-describing archive holding the
//! state file's bytes exactly as on disk (still encrypted: the archive
//! never holds a decrypted byte). The format is in docs/lifecycle.md:
//!
//! ```text
//! magic "VTPMBKUP" (8) | version u16 = 1 | flags u16 = 0
//! | created_at u64 (Unix seconds) | key_id (16, from the state's header)
//! | vtpm_version_len u16 | vtpm_version (UTF-8)
//! | state_len u64 | state bytes (as on disk)
//! | SHA-256 of everything before it (32)
//! ```
//!
//! All integers big-endian.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use vtpm_store::format::MAX_FILE_LEN;
use vtpm_store::{FormatError, KeyId, MasterKey, Store};

/// The first eight bytes of every archive.
pub const MAGIC: [u8; 8] = *b"VTPMBKUP";
/// The archive format version written and read.
pub const VERSION: u16 = 1;
const SUM_LEN: usize = 32;
const KEY_ID_LEN: usize = 16;

/// An archive's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    pub created_at: u64,
    pub key_id: KeyId,
    pub vtpm_version: String,
    /// The state file's bytes as on disk (encrypted).
    pub state: Vec<u8>,
}

impl Archive {
    /// The archive's bytes, checksum included.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let ver = self.vtpm_version.as_bytes();
        let ver_len = u16::try_from(ver.len()).context("version string too long")?;
        let mut out = Vec::with_capacity(self.state.len() + 128);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&self.created_at.to_be_bytes());
        out.extend_from_slice(&self.key_id.0);
        out.extend_from_slice(&ver_len.to_be_bytes());
        out.extend_from_slice(ver);
        out.extend_from_slice(&(self.state.len() as u64).to_be_bytes());
        out.extend_from_slice(&self.state);
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        Ok(out)
    }

    /// Parses and checks an archive: magic, version, flags, lengths, the
    /// checksum, and that the state bytes have a valid state-file header
    /// naming the archive's key id.
    pub fn parse(bytes: &[u8]) -> Result<Archive> {
        let Some((body, sum)) = bytes.split_last_chunk::<SUM_LEN>() else {
            bail!("not a vtpm backup archive (too short)");
        };
        if !bytes.starts_with(&MAGIC) {
            bail!("not a vtpm backup archive (bad magic)");
        }
        let mut r = body.get(MAGIC.len()..).unwrap_or_default();
        let version = u16::from_be_bytes(take(&mut r)?);
        if version != VERSION {
            bail!("backup archive version {version} is not supported (this vtpm reads {VERSION})");
        }
        if Sha256::digest(body).as_slice() != sum.as_slice() {
            bail!("backup archive is corrupt: its checksum does not match");
        }
        let flags = u16::from_be_bytes(take(&mut r)?);
        if flags != 0 {
            bail!("backup archive is invalid: unknown flags {flags:#06x}");
        }
        let created_at = u64::from_be_bytes(take(&mut r)?);
        let key_id = KeyId(take::<KEY_ID_LEN>(&mut r)?);
        let ver_len = usize::from(u16::from_be_bytes(take(&mut r)?));
        let (ver, rest) = r.split_at_checked(ver_len).context(TRUNC)?;
        r = rest;
        let vtpm_version = std::str::from_utf8(ver)
            .context("backup archive is invalid: the vtpm version is not UTF-8")?
            .to_string();
        let state_len = u64::from_be_bytes(take(&mut r)?);
        if state_len > MAX_FILE_LEN || state_len != r.len() as u64 {
            bail!("backup archive is invalid: the state length does not match the archive");
        }
        let header = vtpm_store::read_header(r)
            .map_err(|e| anyhow::anyhow!("backup archive holds no valid state file: {e}"))?;
        if header.key_id != key_id {
            bail!("backup archive is invalid: its key id is not the state file's");
        }
        Ok(Archive {
            created_at,
            key_id,
            vtpm_version,
            state: r.to_vec(),
        })
    }
}

const TRUNC: &str = "backup archive is truncated";

fn take<const N: usize>(r: &mut &[u8]) -> Result<[u8; N]> {
    let (head, tail) = r.split_first_chunk::<N>().context(TRUNC)?;
    *r = tail;
    Ok(*head)
}

/// Writes `data` to a new file at `path`: a temporary file next to it
/// (mode 0600, fsynced), hard-linked into place (an existing file is never
/// replaced), the directory fsynced.
fn write_new_atomic(path: &Path, data: &[u8], tag: &str) -> Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: not a file path", path.display()))?;
    let tmp = path.with_file_name(format!(".{name}.{tag}.{}", std::process::id()));
    let result = (|| -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(data)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        drop(f);
        std::fs::hard_link(&tmp, path).with_context(|| format!("creating {}", path.display()))?;
        super::sync_parent_dir(path)
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// `vtpm backup`: takes the state's lock (so it fails while a server uses
/// the state, and reads a state no one is writing), checks the file opens
/// with `key`, and writes its bytes as on disk into a new archive `out`.
pub fn backup(state: &Path, key: MasterKey, out: &Path) -> Result<String> {
    if std::fs::symlink_metadata(state).is_err() {
        bail!("{}: no such TPM state", state.display());
    }
    if std::fs::symlink_metadata(out).is_ok() {
        bail!("{} already exists: not replacing it", out.display());
    }
    let key_id = key.key_id();
    let (store, image) = Store::open(state, key)?;
    if image.is_none() {
        bail!("{}: no such TPM state", state.display());
    }
    drop(image);
    // Under the lock nobody writes the file: these are the bytes just
    // checked (header, key id and MAC).
    let bytes = std::fs::read(state).with_context(|| format!("reading {}", state.display()))?;
    let header =
        vtpm_store::read_header(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", state.display()))?;
    let archive = Archive {
        created_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        key_id: header.key_id,
        vtpm_version: env!("CARGO_PKG_VERSION").to_string(),
        state: bytes,
    };
    write_new_atomic(out, &archive.to_bytes()?, "backup")?;
    drop(store);
    Ok(format!(
        "backed up {} to {} (encrypted with key id {key_id})",
        state.display(),
        out.display()
    ))
}

/// `vtpm restore`: checks the archive (checksum, state header), that `key`
/// is the key it was written with and opens it (MAC), then writes the
/// state bytes unchanged to the new file `state`, under its lock.
pub fn restore(archive_path: &Path, state: &Path, key: MasterKey) -> Result<String> {
    if std::fs::symlink_metadata(state).is_ok() {
        bail!(
            "{} already exists: `vtpm restore` never replaces a TPM state",
            state.display()
        );
    }
    let meta = std::fs::metadata(archive_path)
        .with_context(|| format!("reading {}", archive_path.display()))?;
    if meta.len() > MAX_FILE_LEN + 4096 {
        bail!("{}: too large for a backup archive", archive_path.display());
    }
    let bytes = std::fs::read(archive_path)
        .with_context(|| format!("reading {}", archive_path.display()))?;
    let archive = Archive::parse(&bytes).with_context(|| format!("{}", archive_path.display()))?;
    let given = key.key_id();
    if given != archive.key_id {
        bail!(
            "{}: the archive needs the key with id {}, the key given has id {given}",
            archive_path.display(),
            archive.key_id
        );
    }
    match vtpm_store::unseal(&archive.state, &key) {
        Ok(_image) => {}
        Err(FormatError::Corrupt) => bail!(
            "{}: the state in the archive is corrupt or was modified (its MAC does not match)",
            archive_path.display()
        ),
        Err(e) => bail!("{}: {e}", archive_path.display()),
    }
    // The target's lock, so no server starts on it while it is written.
    let (store, image) = Store::open(state, key)?;
    if image.is_some() {
        bail!(
            "{} already exists: `vtpm restore` never replaces a TPM state",
            state.display()
        );
    }
    write_new_atomic(state, &archive.state, "restore")?;
    drop(store);
    Ok(format!(
        "restored {} from {} (key id {given}, archived by vtpm {} at {} Unix time)",
        state.display(),
        archive_path.display(),
        archive.vtpm_version,
        archive.created_at
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sample() -> Archive {
        let key = MasterKey::from_bytes([7u8; 32]);
        let state = vtpm_store::seal(b"nv image", &key, &[1u8; 32]).unwrap();
        Archive {
            created_at: 1_700_000_000,
            key_id: key.key_id(),
            vtpm_version: "0.1.0".into(),
            state,
        }
    }

    #[test]
    fn round_trip_and_every_flipped_byte_is_refused() {
        let a = sample();
        let bytes = a.to_bytes().unwrap();
        assert_eq!(Archive::parse(&bytes).unwrap(), a);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(Archive::parse(&b).is_err(), "byte {i}");
        }
        for n in 0..bytes.len() {
            assert!(Archive::parse(&bytes[..n]).is_err(), "prefix {n}");
        }
    }
}
