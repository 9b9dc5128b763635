//! Cryptographic primitives used by the engine, over RustCrypto.

pub mod drbg;
pub mod hash;
pub mod kdf;
pub mod rsa;
pub mod self_test;
pub mod stream;
pub mod sym;
