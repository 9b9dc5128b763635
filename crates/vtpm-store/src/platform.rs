//! A [`vtpm_engine::Platform`] whose NV image lives in a state file.

use std::path::Path;
use std::time::Instant;

use vtpm_engine::Platform;
use vtpm_engine::platform::{NvError, os_entropy};

use crate::format::NvImage;
use crate::key::MasterKey;
use crate::store::{Store, StoreError};

/// OS entropy, a monotonic clock, and NV in an encrypted state file
/// (locked for as long as the platform lives).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use vtpm_store::{FilePlatform, KeyFile, KeyProvider};
/// let key = KeyFile::new("/etc/vtpm/vm1.key").master_key()?;
/// let tpm = vtpm_engine::Tpm::new(Box::new(FilePlatform::open("/var/lib/vtpm/vm1.state", key)?))?;
/// # drop(tpm); Ok(()) }
/// ```
pub struct FilePlatform {
    store: Store,
    start: Instant,
    /// The image read at open, handed to the engine by the first load_nv.
    initial: Option<NvImage>,
}

impl std::fmt::Debug for FilePlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilePlatform")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl FilePlatform {
    /// Opens (and locks) the state file at `path`; see [`Store::open`].
    pub fn open(path: impl AsRef<Path>, key: MasterKey) -> Result<FilePlatform, StoreError> {
        let (store, initial) = Store::open(path, key)?;
        Ok(FilePlatform {
            store,
            start: Instant::now(),
            initial,
        })
    }

    /// The store under this platform.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl Platform for FilePlatform {
    fn fill_entropy(&mut self, buf: &mut [u8]) {
        os_entropy(buf);
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn load_nv(&mut self) -> Result<Option<Vec<u8>>, NvError> {
        if let Some(mut image) = self.initial.take() {
            // Moved out, not copied: the engine owns the one copy now.
            return Ok(Some(std::mem::take(&mut *image)));
        }
        // Asked again: what is on disk now (the last commit).
        self.store
            .read()
            .map(|o| o.map(|mut image| std::mem::take(&mut *image)))
            .map_err(|e| NvError(e.to_string()))
    }

    fn commit_nv(&mut self, image: &[u8]) -> Result<(), NvError> {
        // A commit supersedes whatever was read at open.
        self.initial = None;
        self.store.write(image).map_err(|e| {
            log::error!("{e}");
            NvError(e.to_string())
        })
    }
}
