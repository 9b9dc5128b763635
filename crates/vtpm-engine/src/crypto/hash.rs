//! Hash and HMAC over the implemented hash algorithms.

use hmac::{KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use vtpm_wire::constants::AlgId;

/// An implemented hash algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlg {
    /// All implemented algorithms, in bank order.
    pub const ALL: [HashAlg; 4] = [
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];

    /// The algorithm for a TPM_ALG_ID, if implemented.
    pub fn from_alg(alg: AlgId) -> Option<HashAlg> {
        match alg {
            AlgId::SHA1 => Some(HashAlg::Sha1),
            AlgId::SHA256 => Some(HashAlg::Sha256),
            AlgId::SHA384 => Some(HashAlg::Sha384),
            AlgId::SHA512 => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// Its TPM_ALG_ID.
    pub fn alg(self) -> AlgId {
        match self {
            HashAlg::Sha1 => AlgId::SHA1,
            HashAlg::Sha256 => AlgId::SHA256,
            HashAlg::Sha384 => AlgId::SHA384,
            HashAlg::Sha512 => AlgId::SHA512,
        }
    }

    /// Position in [`HashAlg::ALL`].
    pub fn index(self) -> usize {
        match self {
            HashAlg::Sha1 => 0,
            HashAlg::Sha256 => 1,
            HashAlg::Sha384 => 2,
            HashAlg::Sha512 => 3,
        }
    }

    /// Digest size in bytes.
    pub fn size(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// A new streaming hasher.
    pub fn hasher(self) -> Hasher {
        match self {
            HashAlg::Sha1 => Hasher::Sha1(Sha1::new()),
            HashAlg::Sha256 => Hasher::Sha256(Sha256::new()),
            HashAlg::Sha384 => Hasher::Sha384(Sha384::new()),
            HashAlg::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    /// One-shot digest of the concatenation of `parts`.
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        let mut h = self.hasher();
        for p in parts {
            h.update(p);
        }
        h.finish()
    }

    /// One-shot HMAC of the concatenation of `parts` under `key`.
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            // HMAC accepts keys of any length, so this cannot fail.
            match <M as KeyInit>::new_from_slice(key) {
                Ok(mut m) => {
                    for p in parts {
                        m.update(p);
                    }
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        match self {
            HashAlg::Sha1 => run::<hmac::Hmac<Sha1>>(key, parts),
            HashAlg::Sha256 => run::<hmac::Hmac<Sha256>>(key, parts),
            HashAlg::Sha384 => run::<hmac::Hmac<Sha384>>(key, parts),
            HashAlg::Sha512 => run::<hmac::Hmac<Sha512>>(key, parts),
        }
    }
}

/// A streaming hash state.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-1 state.
    Sha1(Sha1),
    /// SHA-256 state.
    Sha256(Sha256),
    /// SHA-384 state.
    Sha384(Sha384),
    /// SHA-512 state.
    Sha512(Sha512),
}

impl Hasher {
    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest.
    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

impl Hasher {
    /// The algorithm of this state.
    pub fn alg(&self) -> HashAlg {
        match self {
            Hasher::Sha1(_) => HashAlg::Sha1,
            Hasher::Sha256(_) => HashAlg::Sha256,
            Hasher::Sha384(_) => HashAlg::Sha384,
            Hasher::Sha512(_) => HashAlg::Sha512,
        }
    }

    /// The internal state (chaining value, block count and buffered
    /// input), for saving a sequence object's context.
    pub fn serialize(&self) -> Vec<u8> {
        use sha2::digest::common::hazmat::SerializableState;
        match self {
            Hasher::Sha1(h) => h.serialize().to_vec(),
            Hasher::Sha256(h) => h.serialize().to_vec(),
            Hasher::Sha384(h) => h.serialize().to_vec(),
            Hasher::Sha512(h) => h.serialize().to_vec(),
        }
    }

    /// A state saved by [`Hasher::serialize`]; `None` if it is not one.
    pub fn deserialize(alg: HashAlg, state: &[u8]) -> Option<Hasher> {
        use sha2::digest::common::hazmat::SerializableState;
        fn de<H: SerializableState>(state: &[u8]) -> Option<H> {
            let arr = state.try_into().ok()?;
            H::deserialize(arr).ok()
        }
        Some(match alg {
            HashAlg::Sha1 => Hasher::Sha1(de(state)?),
            HashAlg::Sha256 => Hasher::Sha256(de(state)?),
            HashAlg::Sha384 => Hasher::Sha384(de(state)?),
            HashAlg::Sha512 => Hasher::Sha512(de(state)?),
        })
    }
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}
