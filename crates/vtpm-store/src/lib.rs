//! The encrypted per-VM state file of vtpm.
//!
//! One file per VM holds the TPM's NV image, encrypted with AES-256-XTS and
//! authenticated with HMAC-SHA-256 under keys derived (HKDF-SHA-256) from a
//! 32-byte master key that a [`KeyProvider`] supplies. The format is
//! specified in `docs/state-file.md`.
//!
//! - [`seal`] / [`unseal`]: the format as pure functions of bytes.
//! - [`Store`]: one locked state file, written atomically and durably.
//! - [`FilePlatform`]: a [`vtpm_engine::Platform`] on a [`Store`].
//! - [`KeyFile`] / [`KeyFd`]: where the master key comes from.
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

pub mod format;
pub mod key;
pub mod platform;
pub mod store;

pub use format::{FormatError, Header, NvImage, read_header, seal, unseal};
pub use key::{KeyError, KeyFd, KeyFile, KeyId, KeyProvider, MasterKey};
pub use platform::FilePlatform;
pub use store::{Store, StoreError};
