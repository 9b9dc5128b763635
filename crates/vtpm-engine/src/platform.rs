//! What the engine needs from the world: entropy, a clock and a place for
//! its NV image. The engine knows nothing of sockets, virtio or files.

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Why the NV image could not be committed.
#[derive(Debug, thiserror::Error)]
#[error("the NV image could not be stored: {0}")]
pub struct NvError(pub String);

/// The platform under the TPM.
pub trait Platform: Send {
    /// Fills `buf` with entropy from a source outside the TPM.
    fn fill_entropy(&mut self, buf: &mut [u8]);

    /// Milliseconds on a monotonic clock. Only differences are used.
    fn now_ms(&self) -> u64;

    /// The NV image committed last, or `None` for a TPM that was never
    /// manufactured.
    fn load_nv(&mut self) -> Result<Option<Vec<u8>>, NvError>;

    /// Stores a new NV image durably. The engine calls this before it
    /// returns the response of a command that changed NV state.
    fn commit_nv(&mut self, image: &[u8]) -> Result<(), NvError>;
}

/// Entropy from the operating system (`getrandom`).
pub fn os_entropy(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        // Without entropy there is no safe way on; the engine's self test
        // sees an all-zero seed as a failure.
        log::error!("the operating system refused entropy: {e}");
        buf.fill(0);
    }
}

/// A platform with OS entropy, the monotonic clock and NV kept in memory
/// (shared, so a test can look at or carry it across engine instances).
#[derive(Clone)]
pub struct MemoryPlatform {
    start: Instant,
    nv: Arc<Mutex<Option<Vec<u8>>>>,
    offset_ms: Arc<Mutex<u64>>,
}

impl Default for MemoryPlatform {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryPlatform {
    /// A fresh platform with empty NV.
    pub fn new() -> Self {
        MemoryPlatform {
            start: Instant::now(),
            nv: Arc::new(Mutex::new(None)),
            offset_ms: Arc::new(Mutex::new(0)),
        }
    }

    /// The NV image committed last.
    pub fn nv_image(&self) -> Option<Vec<u8>> {
        self.nv.lock().ok().and_then(|g| g.clone())
    }

    /// Moves this platform's clock forward (for tests of time-dependent
    /// behaviour).
    pub fn advance_ms(&self, ms: u64) {
        if let Ok(mut o) = self.offset_ms.lock() {
            *o += ms;
        }
    }
}

impl Platform for MemoryPlatform {
    fn fill_entropy(&mut self, buf: &mut [u8]) {
        os_entropy(buf);
    }

    fn now_ms(&self) -> u64 {
        let offset = self.offset_ms.lock().map(|o| *o).unwrap_or(0);
        u64::try_from(self.start.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(offset)
    }

    fn load_nv(&mut self) -> Result<Option<Vec<u8>>, NvError> {
        self.nv
            .lock()
            .map(|g| g.clone())
            .map_err(|_| NvError("lock poisoned".into()))
    }

    fn commit_nv(&mut self, image: &[u8]) -> Result<(), NvError> {
        let mut g = self
            .nv
            .lock()
            .map_err(|_| NvError("lock poisoned".into()))?;
        *g = Some(image.to_vec());
        Ok(())
    }
}
