//! The state file of `vtpm socket`, with swtpm's storage-lock handoff for
//! migration over shared storage.
//!
//! A [`vtpm_store::Store`] holds the state file's lock for as long as it
//! lives. [`Storage`] keeps the store in a slot that can be emptied
//! (releasing the lock: `--migration release-lock-outgoing`) and filled
//! again (re-taking it: CMD_LOCK_STORAGE, or the next command after a
//! failed migration), or that starts empty (`--migration incoming`: the
//! lock is taken when the TPM state is first needed).
//!
//! [`StatePlatform`] is the engine's [`Platform`] on a [`Storage`]: while
//! the lock is released, NV commits fail, so a source process whose TPM
//! state now belongs to a migration destination never writes the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};
use vtpm_engine::Platform;
use vtpm_engine::platform::{NvError, os_entropy};
use vtpm_store::{MasterKey, NvImage, Store, StoreError};

/// Pause between two attempts to take the lock (swtpm: 10 ms).
pub const LOCK_RETRY_INTERVAL: Duration = Duration::from_millis(10);

/// The most attempts one request may ask for (60 s worth).
pub const MAX_LOCK_RETRIES: u32 = 6000;

struct Inner {
    path: PathBuf,
    key: MasterKey,
    /// The open store, holding the lock; `None` while released or not yet
    /// taken.
    store: Option<Store>,
    /// The lock was taken at least once (the engine has been loaded from
    /// the file).
    loaded: bool,
}

/// One state file whose lock can be released and taken again. Clones
/// share the slot.
#[derive(Clone)]
pub struct Storage(Arc<Mutex<Inner>>);

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner();
        f.debug_struct("Storage")
            .field("path", &inner.path)
            .field("locked", &inner.store.is_some())
            .finish_non_exhaustive()
    }
}

/// What [`Storage::lock`] did.
#[derive(Debug)]
pub enum Locked {
    /// The lock was already held.
    Already,
    /// The lock was taken again after a release; the engine in memory is
    /// still the authority (the file is not re-read).
    Again,
    /// The lock was taken for the first time: the engine must be loaded
    /// from this image (`None`: no state file yet).
    First(Option<NvImage>),
}

impl Storage {
    /// Opens and locks the state file now (see [`Store::open`]); returns
    /// the image it holds.
    pub fn open(path: &Path, key: MasterKey) -> Result<(Storage, Option<NvImage>), StoreError> {
        let (store, image) = Store::open(path, key.clone())?;
        Ok((
            Storage(Arc::new(Mutex::new(Inner {
                path: path.to_path_buf(),
                key,
                store: Some(store),
                loaded: true,
            }))),
            image,
        ))
    }

    /// A state file whose lock is taken later, by [`Storage::lock`].
    pub fn deferred(path: &Path, key: MasterKey) -> Storage {
        Storage(Arc::new(Mutex::new(Inner {
            path: path.to_path_buf(),
            key,
            store: None,
            loaded: false,
        })))
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state file.
    pub fn path(&self) -> PathBuf {
        self.inner().path.clone()
    }

    /// Is the lock held now?
    pub fn is_locked(&self) -> bool {
        self.inner().store.is_some()
    }

    /// Has the engine been loaded from the file (the lock taken once)?
    pub fn is_loaded(&self) -> bool {
        self.inner().loaded
    }

    /// Takes the lock, trying `1 + retries` times, [`LOCK_RETRY_INTERVAL`]
    /// apart, while another process holds it. Errors other than "in use"
    /// (a wrong key, a corrupt file) are returned at once.
    pub fn lock(&self, retries: u32) -> Result<Locked, StoreError> {
        let mut inner = self.inner();
        if inner.store.is_some() {
            return Ok(Locked::Already);
        }
        let mut left = retries.min(MAX_LOCK_RETRIES);
        let started = Instant::now();
        loop {
            match Store::open(&inner.path, inner.key.clone()) {
                Ok((store, image)) => {
                    inner.store = Some(store);
                    log::info!(
                        "took the lock of {} ({} ms)",
                        inner.path.display(),
                        started.elapsed().as_millis()
                    );
                    if inner.loaded {
                        return Ok(Locked::Again);
                    }
                    inner.loaded = true;
                    return Ok(Locked::First(image));
                }
                Err(StoreError::InUse { .. }) if left > 0 => {
                    left -= 1;
                    thread::sleep(LOCK_RETRY_INTERVAL);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Forgets a first lock whose image could not be loaded: the lock is
    /// released and the next [`Storage::lock`] loads the file again.
    pub fn unload(&self) {
        let mut inner = self.inner();
        inner.store = None;
        inner.loaded = false;
    }

    /// Releases the lock (closes the store). Returns whether it was held.
    pub fn release(&self) -> bool {
        let mut inner = self.inner();
        let held = inner.store.take().is_some();
        if held {
            log::info!(
                "released the lock of {} for an outgoing migration",
                inner.path.display()
            );
        }
        held
    }

    /// The engine's platform on this storage. `initial` is what the
    /// engine's first `load_nv` gets (the image read when the lock was
    /// taken); `None` makes the engine manufacture a new TPM.
    pub fn platform(&self, initial: Option<NvImage>) -> StatePlatform {
        StatePlatform {
            storage: self.clone(),
            start: Instant::now(),
            initial,
            fresh: false,
        }
    }

    /// A platform whose first `load_nv` finds nothing, whatever the file
    /// holds: the engine manufactures a new TPM and commits it over the
    /// file (`vtpm setup --overwrite`).
    pub fn platform_new(&self) -> StatePlatform {
        StatePlatform {
            fresh: true,
            ..self.platform(None)
        }
    }
}

/// OS entropy, a monotonic clock, and NV in the state file of a
/// [`Storage`].
pub struct StatePlatform {
    storage: Storage,
    start: Instant,
    /// What the first `load_nv` returns.
    initial: Option<NvImage>,
    /// The first `load_nv` returns `None`.
    fresh: bool,
}

impl Platform for StatePlatform {
    fn fill_entropy(&mut self, buf: &mut [u8]) {
        os_entropy(buf);
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn load_nv(&mut self) -> Result<Option<Vec<u8>>, NvError> {
        if std::mem::take(&mut self.fresh) {
            return Ok(None);
        }
        if let Some(mut image) = self.initial.take() {
            return Ok(Some(std::mem::take(&mut *image)));
        }
        let inner = self.storage.inner();
        match &inner.store {
            Some(store) => store
                .read()
                .map(|o| o.map(|mut image| std::mem::take(&mut *image)))
                .map_err(|e| NvError(e.to_string())),
            None => Err(NvError(format!(
                "the lock of {} is not held",
                inner.path.display()
            ))),
        }
    }

    fn commit_nv(&mut self, image: &[u8]) -> Result<(), NvError> {
        let mut inner = self.storage.inner();
        let path = inner.path.clone();
        match &mut inner.store {
            Some(store) => store.write(image).map_err(|e| {
                log::error!("{e}");
                NvError(e.to_string())
            }),
            None => Err(NvError(format!(
                "not writing {}: its lock was released (outgoing migration)",
                path.display()
            ))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_bytes([7; 32])
    }

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "vtpm-storage-{tag}-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn release_and_relock() {
        let dir = temp("relock");
        let path = dir.join("vtpm.state");
        let (a, image) = Storage::open(&path, key()).unwrap();
        assert!(image.is_none());
        let mut pa = a.platform(None);
        pa.commit_nv(b"one").unwrap();
        // A second process cannot take it while it is held.
        let b = Storage::deferred(&path, key());
        assert!(matches!(b.lock(2), Err(StoreError::InUse { .. })));
        assert!(a.release());
        assert!(!a.is_locked());
        // Released: commits fail and the file is unchanged.
        assert!(pa.commit_nv(b"two").is_err());
        match b.lock(0).unwrap() {
            Locked::First(Some(image)) => assert_eq!(&image[..], b"one"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(b.lock(0).unwrap(), Locked::Already));
        assert!(matches!(a.lock(1), Err(StoreError::InUse { .. })));
        assert!(b.release());
        assert!(matches!(a.lock(0).unwrap(), Locked::Again));
        pa.commit_nv(b"three").unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wrong_key_is_not_retried() {
        let dir = temp("wrongkey");
        let path = dir.join("vtpm.state");
        let (a, _) = Storage::open(&path, key()).unwrap();
        a.platform(None).commit_nv(b"x").unwrap();
        a.release();
        let b = Storage::deferred(&path, MasterKey::from_bytes([8; 32]));
        let t = Instant::now();
        assert!(b.lock(1000).is_err());
        assert!(t.elapsed() < Duration::from_secs(2));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
