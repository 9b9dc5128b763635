//! One state file on disk: locked for the lifetime of a [`Store`], read
//! once at open, replaced atomically and durably on every write.

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::format::{self, FormatError, MAX_FILE_LEN, NvImage, SALT_LEN};
use crate::key::{KeyId, MasterKey};

/// Why a state file could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the lock.
    #[error("state file {} is in use by another vtpm process", path.display())]
    InUse {
        /// The state file.
        path: PathBuf,
    },
    /// The path has no file name (e.g. it ends in `..` or is `/`).
    #[error("state file path {} does not name a file", path.display())]
    BadPath {
        /// The path given.
        path: PathBuf,
    },
    /// An I/O error, with what was being done.
    #[error("could not {action} {}: {error}", path.display())]
    Io {
        /// What was being done ("read state file", ...).
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        error: io::Error,
    },
    /// The file is larger than any state file can be.
    #[error("state file {} is {len} bytes long, more than any state file can be", path.display())]
    TooLarge {
        /// The state file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The file's contents were refused.
    #[error("{} cannot be used: {error}", path.display())]
    Format {
        /// The state file.
        path: PathBuf,
        /// Why (part of the message, so not also a `source`).
        error: FormatError,
    },
    /// The operating system refused entropy for the KDF salt.
    #[error("the operating system refused entropy for the state file salt: {0}")]
    Entropy(String),
}

impl StoreError {
    /// The format error behind this error, if it is one.
    pub fn format_error(&self) -> Option<&FormatError> {
        match self {
            StoreError::Format { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// An open state file: holds the lock (`<file>.lock`, flock exclusive)
/// until dropped, and the master key to write with.
pub struct Store {
    path: PathBuf,
    dir: PathBuf,
    file_name: String,
    key: MasterKey,
    /// The open lock file; closing it releases the flock.
    _lock: File,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("key_id", &self.key.key_id())
            .finish_non_exhaustive()
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError + use<> {
    let path = path.to_owned();
    move |error| StoreError::Io {
        action,
        path,
        error,
    }
}

impl Store {
    /// Opens the state file at `path` with `key`: creates its directory
    /// (mode 0700) if missing, takes the lock, removes temporary files a
    /// crashed writer left behind, and reads the file. The image is `None`
    /// when there is no state file yet (a TPM never manufactured).
    pub fn open(
        path: impl AsRef<Path>,
        key: MasterKey,
    ) -> Result<(Store, Option<NvImage>), StoreError> {
        let path = path.as_ref().to_owned();
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| StoreError::BadPath { path: path.clone() })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_err("create directory", &dir))?;

        let lock_path = dir.join(format!("{file_name}.lock"));
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_err("open lock file", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StoreError::InUse { path }),
            Err(TryLockError::Error(e)) => return Err(io_err("lock", &lock_path)(e)),
        }

        let store = Store {
            path,
            dir,
            file_name,
            key,
            _lock: lock,
        };
        store.remove_stale_temps();
        let image = store.read()?;
        Ok((store, image))
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id of the key this store writes with.
    pub fn key_id(&self) -> KeyId {
        self.key.key_id()
    }

    /// Reads and opens the state file as it is on disk now; `None` if it
    /// does not exist.
    pub fn read(&self) -> Result<Option<NvImage>, StoreError> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open state file", &self.path)(e)),
        };
        let len = file
            .metadata()
            .map_err(io_err("read state file", &self.path))?
            .len();
        if len > MAX_FILE_LEN {
            return Err(StoreError::TooLarge {
                path: self.path.clone(),
                len,
            });
        }
        // `len` is at most MAX_FILE_LEN (checked), and `take` bounds the
        // read should the file grow meanwhile.
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(MAX_FILE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err("read state file", &self.path))?;
        format::unseal(&bytes, &self.key)
            .map(Some)
            .map_err(|error| StoreError::Format {
                path: self.path.clone(),
                error,
            })
    }

    /// Replaces the state file with one holding `image`, under a fresh
    /// salt: written to `.<file>.tmp.<pid>` (created exclusively, mode
    /// 0600), fsynced, renamed over the state file, and the directory
    /// fsynced. On any failure the previous state file is left as it was.
    pub fn write(&mut self, image: &[u8]) -> Result<(), StoreError> {
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(|e| StoreError::Entropy(e.to_string()))?;
        let sealed = format::seal(image, &self.key, &salt).map_err(|error| StoreError::Format {
            path: self.path.clone(),
            error,
        })?;

        let tmp = self.temp_path();
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("create temporary state file", &tmp))?;
        let written = file
            .write_all(&sealed)
            .and_then(|()| file.sync_all())
            .map_err(io_err("write temporary state file", &tmp));
        drop(file);
        let renamed = written.and_then(|()| {
            std::fs::rename(&tmp, &self.path).map_err(io_err("replace state file", &self.path))
        });
        if let Err(e) = renamed {
            if let Err(rm) = std::fs::remove_file(&tmp) {
                log::warn!("could not remove {}: {rm}", tmp.display());
            }
            return Err(e);
        }
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("sync directory", &self.dir))
    }

    fn temp_prefix(&self) -> String {
        format!(".{}.tmp.", self.file_name)
    }

    fn temp_path(&self) -> PathBuf {
        self.dir
            .join(format!("{}{}", self.temp_prefix(), std::process::id()))
    }

    /// Removes `.<file>.tmp.<digits>` files: under the lock no one else
    /// writes them, so any that exist were left by a writer that died.
    fn remove_stale_temps(&self) {
        let prefix = self.temp_prefix();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(prefix.as_str())) else {
                continue;
            };
            if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let p = entry.path();
            match std::fs::remove_file(&p) {
                Ok(()) => log::info!("removed {} left by an interrupted write", p.display()),
                Err(e) => log::warn!("could not remove {}: {e}", p.display()),
            }
        }
    }
}
