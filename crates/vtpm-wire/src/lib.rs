//! TPM 2.0 wire format (TCG TPM 2.0 Library specification, Part 2).
//!
//! * [`codec`]: a bounded [`Reader`] that can never read past its end and a
//!   [`Writer`], plus the [`Marshal`] / [`Unmarshal`] traits.
//! * [`rc`]: [`TpmRc`], response codes with the handle/parameter/session
//!   position the spec attaches to format-one codes.
//! * [`constants`]: open enums (algorithm IDs, command codes, handles, …)
//!   that keep values they do not know.
//! * [`profile`]: what this TPM implements (hash algorithms, key sizes,
//!   curves); the interface types (`TPMI_*`) validate against it.
//! * [`types`]: the structures themselves.
//!
//! Nothing here panics on any input, and no length read from the wire is
//! used to allocate before it has been checked against the structure's
//! capacity.
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

pub mod attest;
pub mod codec;
pub mod constants;
pub mod object;
pub mod profile;
pub mod rc;
pub mod types;

pub use codec::{Marshal, Reader, Unmarshal, WireError, Writer};
pub use rc::TpmRc;
