//! Cryptographic primitives used by the engine, over RustCrypto.

pub mod drbg;
pub mod hash;
pub mod self_test;
