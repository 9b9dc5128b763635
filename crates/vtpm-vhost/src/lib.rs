//! A virtio TPM device served as a vhost-user backend.
//!
//! The device: virtio device id 62 ([`VIRTIO_ID_TPM`], as crosvm numbers
//! it), one virtqueue, no config space. Each request is one descriptor
//! chain: the device-readable descriptors hold one TPM command (at most
//! 4096 bytes), the device-writable ones receive the response, and the used
//! length is the response's length. See [`tpm`] for how malformed chains
//! are answered, [`vhu_tpm`] for how VM resets reach the TPM as
//! `_TPM_Init`, and [`migration`] for how the TPM's state migrates with the
//! VM (`VHOST_USER_PROTOCOL_F_DEVICE_STATE`).
//!
//! ```no_run
//! use std::sync::{Arc, Mutex};
//! use vtpm_vhost::{ExitHandle, VhostUserTpmConfig, serve};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tpm = vtpm_engine::Tpm::new(Box::new(vtpm_engine::MemoryPlatform::new()))?;
//! let tpm = Arc::new(Mutex::new(tpm));
//! let exit = ExitHandle::new()?;
//! // Another thread calls `exit.request_exit()` to stop.
//! serve(&VhostUserTpmConfig::new("/run/vtpm.sock"), Arc::clone(&tpm), &exit)?;
//! if let Ok(mut t) = tpm.lock() {
//!     t.power_off(); // commits NV
//! }
//! # Ok(())
//! # }
//! ```
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

pub mod backend;
pub mod migration;
pub mod tpm;
pub mod vhu_tpm;

pub use backend::{Error, ExitHandle, VhostUserTpmConfig, serve};
pub use migration::MigrationError;
pub use vhu_tpm::{MAX_QUEUE_SIZE, VIRTIO_ID_TPM, VhostUserTpmBackend};
