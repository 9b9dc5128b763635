//! Hash and HMAC over the implemented hash algorithms.

use hmac::{KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use vtpm_wire::constants::AlgId;
use zeroize::Zeroizing;

/// RFC 2104 inner and outer pad octets.
const IPAD: u8 = 0x36;
const OPAD: u8 = 0x5C;

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

    /// Block size in bytes (the HMAC key block, RFC 2104's B).
    pub fn block_size(self) -> usize {
        match self {
            HashAlg::Sha1 | HashAlg::Sha256 => 64,
            HashAlg::Sha384 | HashAlg::Sha512 => 128,
        }
    }

    /// Starts a streaming HMAC under `key` (RFC 2104: a key longer than a
    /// block is hashed first).
    pub fn hmac_start(self, key: &[u8]) -> HmacState {
        let mut k0 = Zeroizing::new(vec![0u8; self.block_size()]);
        if key.len() > k0.len() {
            let d = Zeroizing::new(self.digest(&[key]));
            k0.iter_mut().zip(d.iter()).for_each(|(o, i)| *o = *i);
        } else {
            k0.iter_mut().zip(key).for_each(|(o, i)| *o = *i);
        }
        let ipad: Zeroizing<Vec<u8>> = Zeroizing::new(k0.iter().map(|b| b ^ IPAD).collect());
        let mut inner = self.hasher();
        inner.update(&ipad);
        HmacState { inner, k0 }
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

/// A streaming HMAC (an HMAC sequence object's state): the inner hash
/// state after `K0 ⊕ ipad` and whatever data was added, and the key block
/// `K0` for the outer hash. Unlike the `hmac` crate's state it can be
/// serialized, for saved contexts.
#[derive(Clone)]
pub struct HmacState {
    inner: Hasher,
    k0: Zeroizing<Vec<u8>>,
}

impl HmacState {
    /// Absorbs `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    /// The hash algorithm.
    pub fn alg(&self) -> HashAlg {
        self.inner.alg()
    }

    /// The HMAC: H((K0 ⊕ opad) || H((K0 ⊕ ipad) || data)).
    pub fn finish(self) -> Vec<u8> {
        let alg = self.inner.alg();
        let inner = self.inner.finish();
        let opad: Zeroizing<Vec<u8>> = Zeroizing::new(self.k0.iter().map(|b| b ^ OPAD).collect());
        alg.digest(&[&opad, &inner])
    }

    /// `K0 || inner state` (secret: the key block is in it).
    pub fn serialize(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(self.k0.to_vec());
        out.extend_from_slice(&self.inner.serialize());
        out
    }

    /// A state saved by [`HmacState::serialize`]; `None` if it is not one.
    pub fn deserialize(alg: HashAlg, state: &[u8]) -> Option<HmacState> {
        let (k0, inner) = state.split_at_checked(alg.block_size())?;
        Some(HmacState {
            inner: Hasher::deserialize(alg, inner)?,
            k0: Zeroizing::new(k0.to_vec()),
        })
    }
}

impl std::fmt::Debug for HmacState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HmacState({:?})", self.alg())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_hmac_matches_one_shot_and_survives_serialization() {
        // RFC 4231 test case 2 (HMAC-SHA-256, key "Jefe").
        let mut s = HashAlg::Sha256.hmac_start(b"Jefe");
        s.update(b"what do ya want ");
        s.update(b"for nothing?");
        assert_eq!(
            s.finish(),
            [
                0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95,
                0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9,
                0x64, 0xec, 0x38, 0x43
            ]
        );
        let data: Vec<u8> = (0..700u32).map(|i| (i * 7) as u8).collect();
        for alg in HashAlg::ALL {
            // Keys shorter than, equal to and longer than a block.
            for klen in [0, 20, alg.block_size(), alg.block_size() + 1, 200] {
                let key: Vec<u8> = (0..klen).map(|i| (i * 13 + 1) as u8).collect();
                let mut s = alg.hmac_start(&key);
                s.update(&data[..300]);
                let saved = s.serialize();
                let mut s = HmacState::deserialize(alg, &saved).unwrap();
                s.update(&data[300..]);
                assert_eq!(s.finish(), alg.hmac(&key, &[&data]), "{alg:?} key {klen}");
            }
            assert!(HmacState::deserialize(alg, &[0; 10]).is_none());
        }
    }
}
