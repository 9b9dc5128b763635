//! The master key that protects a state file, and where it comes from.
//!
//! The master key is 32 bytes. It never goes into the state file: only its
//! key id does (see [`MasterKey::key_id`]), so that a wrong key is told
//! apart from a corrupt file. Key bytes live in [`Zeroizing`] buffers and
//! are never logged, printed or formatted.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Length of a master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;

/// Length of a key id in bytes.
pub const KEY_ID_LEN: usize = 16;

/// HKDF-Expand info that derives the key id from the master key.
pub(crate) const KEY_ID_INFO: &[u8] = b"vtpm state key id v1";

/// The most bytes read from a key file or descriptor: a hex key with a
/// trailing CR LF is 66 bytes, so anything longer is refused unread.
const KEY_SOURCE_MAX: u64 = 128;

/// Why a master key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key source could not be opened or read.
    #[error("could not read the state key from {source_name}: {error}")]
    Read {
        /// The key source, as [`KeyProvider::describe`] gives it.
        source_name: String,
        /// The underlying error.
        #[source]
        error: std::io::Error,
    },
    /// A key file others may read.
    #[error(
        "key file {} is accessible to group or others (mode {mode:04o}); \
         restrict it with `chmod 600`",
        path.display()
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file that is not a regular file.
    #[error("key file {} is not a regular file", path.display())]
    NotAFile {
        /// The key file.
        path: PathBuf,
    },
    /// Neither 32 raw bytes nor 64 hex digits.
    #[error(
        "the state key from {source_name} is malformed: expected 32 raw bytes or \
         64 hex digits (optionally followed by a newline), found {len} bytes"
    )]
    Malformed {
        /// The key source.
        source_name: String,
        /// How many bytes it held (at most one more than was read).
        len: usize,
    },
    /// A key of 64 characters with a non-hex digit in it.
    #[error("the state key from {source_name} is 64 characters long but not all are hex digits")]
    BadHex {
        /// The key source.
        source_name: String,
    },
    /// All 32 bytes zero: almost certainly a mistake (e.g. /dev/zero).
    #[error("the state key from {source_name} is all zero bytes; refusing to use it")]
    AllZero {
        /// The key source.
        source_name: String,
    },
    /// A negative descriptor number.
    #[error("file descriptor {fd} is not valid for --key-fd")]
    BadFd {
        /// The number given.
        fd: i32,
    },
    /// The operating system refused entropy for a new key.
    #[error("the operating system refused entropy for a new state key: {0}")]
    Entropy(String),
}

/// The 32-byte master key of a state file. Zeroized on drop; its `Debug`
/// shows only the key id.
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; MASTER_KEY_LEN]>,
}

impl MasterKey {
    /// A master key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; MASTER_KEY_LEN]) -> MasterKey {
        MasterKey {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// A fresh random master key from the operating system.
    pub fn generate() -> Result<MasterKey, KeyError> {
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|e| KeyError::Entropy(e.to_string()))?;
        Ok(MasterKey { bytes })
    }

    /// A master key from the contents of a key file or descriptor: exactly
    /// 32 raw bytes, or 64 hex digits with an optional trailing newline
    /// (`\n` or `\r\n`). `source_name` only goes into error messages.
    pub fn parse(data: &[u8], source_name: &str) -> Result<MasterKey, KeyError> {
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        if let Ok(raw) = <&[u8; MASTER_KEY_LEN]>::try_from(data) {
            bytes.copy_from_slice(raw);
        } else {
            let text = data
                .strip_suffix(b"\r\n")
                .or_else(|| data.strip_suffix(b"\n"))
                .unwrap_or(data);
            if text.len() != 2 * MASTER_KEY_LEN {
                return Err(KeyError::Malformed {
                    source_name: source_name.to_owned(),
                    len: data.len(),
                });
            }
            let (pairs, _) = text.as_chunks::<2>();
            for (out, &[hi, lo]) in bytes.iter_mut().zip(pairs) {
                match (hex_digit(hi), hex_digit(lo)) {
                    (Some(hi), Some(lo)) => *out = (hi << 4) | lo,
                    _ => {
                        return Err(KeyError::BadHex {
                            source_name: source_name.to_owned(),
                        });
                    }
                }
            }
        }
        if bytes.iter().all(|&b| b == 0) {
            return Err(KeyError::AllZero {
                source_name: source_name.to_owned(),
            });
        }
        Ok(MasterKey { bytes })
    }

    /// The key id: the first 16 bytes of HKDF-Expand(PRK = master key,
    /// info = "vtpm state key id v1") with SHA-256. It names the key in the
    /// state file without revealing it.
    pub fn key_id(&self) -> KeyId {
        let mut id = [0u8; KEY_ID_LEN];
        // A 32-byte PRK is exactly SHA-256's output size, and 16 bytes of
        // output is far below HKDF's limit: neither call can fail.
        if let Ok(hk) = Hkdf::<Sha256>::from_prk(self.bytes.as_slice()) {
            let _ = hk.expand(KEY_ID_INFO, &mut id);
        }
        KeyId(id)
    }

    /// The key bytes (for the key schedule of the state file).
    pub(crate) fn as_bytes(&self) -> &[u8; MASTER_KEY_LEN] {
        &self.bytes
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The fingerprint of a master key, as stored in a state file header.
/// Displayed as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Where the master key comes from.
pub trait KeyProvider {
    /// Reads the master key.
    fn master_key(&self) -> Result<MasterKey, KeyError>;

    /// The key source in words, for messages (never the key itself).
    fn describe(&self) -> String;
}

/// `--key-file PATH`: a file holding the key (32 raw bytes, or 64 hex
/// digits and an optional newline). Refused if group or others have any
/// access to it.
#[derive(Debug, Clone)]
pub struct KeyFile {
    path: PathBuf,
}

impl KeyFile {
    /// A key provider reading `path`.
    pub fn new(path: impl Into<PathBuf>) -> KeyFile {
        KeyFile { path: path.into() }
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl KeyProvider for KeyFile {
    fn master_key(&self) -> Result<MasterKey, KeyError> {
        let read_err = |error| KeyError::Read {
            source_name: self.describe(),
            error,
        };
        let file = File::open(&self.path).map_err(read_err)?;
        // Checked on the open file, so the file checked is the file read.
        let meta = file.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(KeyError::NotAFile {
                path: self.path.clone(),
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: self.path.clone(),
                mode,
            });
        }
        let data = read_bounded(file).map_err(read_err)?;
        MasterKey::parse(&data, &self.describe())
    }

    fn describe(&self) -> String {
        format!("key file {}", self.path.display())
    }
}

/// `--key-fd N`: the key is read to its end from an inherited file
/// descriptor (a pipe, a memfd or an open file), through `/proc/self/fd/N`
/// so that no unsafe code is needed. For a pipe the writer must close its
/// end. The descriptor itself is left open.
#[derive(Debug, Clone, Copy)]
pub struct KeyFd {
    fd: i32,
}

impl KeyFd {
    /// A key provider reading descriptor `fd`.
    pub fn new(fd: i32) -> KeyFd {
        KeyFd { fd }
    }
}

impl KeyProvider for KeyFd {
    fn master_key(&self) -> Result<MasterKey, KeyError> {
        if self.fd < 0 {
            return Err(KeyError::BadFd { fd: self.fd });
        }
        let read_err = |error| KeyError::Read {
            source_name: self.describe(),
            error,
        };
        let file = File::open(format!("/proc/self/fd/{}", self.fd)).map_err(read_err)?;
        let data = read_bounded(file).map_err(read_err)?;
        MasterKey::parse(&data, &self.describe())
    }

    fn describe(&self) -> String {
        format!("file descriptor {}", self.fd)
    }
}

/// Reads at most `KEY_SOURCE_MAX + 1` bytes into a buffer that never
/// reallocates (so no stray copy of key bytes is left behind) and is
/// zeroized on drop.
fn read_bounded(file: File) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let cap = usize::try_from(KEY_SOURCE_MAX + 1).unwrap_or(usize::MAX);
    let mut buf = Zeroizing::new(Vec::with_capacity(cap));
    file.take(KEY_SOURCE_MAX + 1).read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_raw_and_hex() {
        let raw: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let a = MasterKey::parse(&raw, "t").unwrap();
        let b = MasterKey::parse(hex.as_bytes(), "t").unwrap();
        let c = MasterKey::parse(format!("{hex}\n").as_bytes(), "t").unwrap();
        let d = MasterKey::parse(hex.to_uppercase().as_bytes(), "t").unwrap();
        let e = MasterKey::parse(format!("{hex}\r\n").as_bytes(), "t").unwrap();
        for k in [&b, &c, &d, &e] {
            assert_eq!(k.as_bytes(), a.as_bytes());
        }
    }

    #[test]
    fn parse_refuses_bad_input() {
        let hex = "11".repeat(32);
        for bad in [
            Vec::new(),
            vec![1u8; 31],
            vec![1u8; 33],
            format!("{hex}\n\n").into_bytes(),
            hex.as_bytes()[..62].to_vec(),
            format!("{hex}0").into_bytes(),
        ] {
            assert!(
                matches!(MasterKey::parse(&bad, "t"), Err(KeyError::Malformed { .. })),
                "{} bytes",
                bad.len()
            );
        }
        let mut nothex = hex.clone().into_bytes();
        nothex[5] = b'g';
        assert!(matches!(
            MasterKey::parse(&nothex, "t"),
            Err(KeyError::BadHex { .. })
        ));
        assert!(matches!(
            MasterKey::parse(&[0u8; 32], "t"),
            Err(KeyError::AllZero { .. })
        ));
    }

    #[test]
    fn debug_hides_key() {
        let k = MasterKey::from_bytes([0xab; 32]);
        let s = format!("{k:?}");
        assert!(!s.contains("abab"), "{s}");
        assert!(s.contains(&k.key_id().to_string()));
    }

    #[test]
    fn key_id_differs_per_key() {
        let a = MasterKey::from_bytes([1; 32]).key_id();
        let b = MasterKey::from_bytes([2; 32]).key_id();
        assert_ne!(a, b);
        assert_eq!(a, MasterKey::from_bytes([1; 32]).key_id());
    }

    #[test]
    fn generate_is_random() {
        let a = MasterKey::generate().unwrap();
        let b = MasterKey::generate().unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
    }
}
