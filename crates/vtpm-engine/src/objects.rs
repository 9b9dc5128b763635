//! Transient object slots: keys and data objects, and hash, HMAC and event
//! sequence objects.

use crate::crypto::hash::{HashAlg, Hasher, HmacState};
use crate::keys::KeyObject;
use vtpm_wire::Unmarshal;
use vtpm_wire::codec::{Reader, Writer};
use vtpm_wire::constants::handle::TRANSIENT_FIRST;
use vtpm_wire::profile::MAX_LOADED_OBJECTS;
use vtpm_wire::types::Auth;
use zeroize::Zeroizing;

/// A sequence object (Part 1 "Hash, HMAC, and Event Sequences").
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Object {
    /// TPM2_HashSequenceStart with a hash algorithm.
    HashSequence {
        /// The hash state.
        hasher: Hasher,
        /// Its algorithm.
        alg: HashAlg,
        /// authValue.
        auth: Zeroizing<Vec<u8>>,
        /// No data has been added yet.
        first_block: bool,
        /// A ticket may be produced (the data did not start with
        /// TPM_GENERATED_VALUE).
        ticket_safe: bool,
    },
    /// TPM2_HashSequenceStart with TPM_ALG_NULL: one hash state per
    /// implemented algorithm.
    EventSequence {
        /// One state per algorithm, in [`HashAlg::ALL`] order.
        hashers: Vec<Hasher>,
        /// authValue.
        auth: Zeroizing<Vec<u8>>,
    },
    /// TPM2_HMAC_Start: an HMAC sequence under a keyed-hash key.
    HmacSequence {
        /// The HMAC state (it holds the key).
        state: HmacState,
        /// authValue.
        auth: Zeroizing<Vec<u8>>,
    },
    /// A key or data object.
    Key(Box<KeyObject>),
}

impl Object {
    /// The object's authValue.
    pub fn auth(&self) -> &[u8] {
        match self {
            Object::HashSequence { auth, .. }
            | Object::EventSequence { auth, .. }
            | Object::HmacSequence { auth, .. } => auth,
            Object::Key(k) => k.auth(),
        }
    }

    /// The key object, if this is one.
    pub fn key(&self) -> Option<&KeyObject> {
        match self {
            Object::Key(k) => Some(k),
            _ => None,
        }
    }
}

/// Kind octets of a serialized object.
const KIND_HASH_SEQUENCE: u8 = 1;
const KIND_EVENT_SEQUENCE: u8 = 2;
const KIND_KEY: u8 = 3;
const KIND_HMAC_SEQUENCE: u8 = 4;

impl Object {
    /// Serializes the object (for saved contexts and the volatile state).
    pub fn write(&self, w: &mut Writer) {
        match self {
            Object::HashSequence {
                hasher,
                alg,
                auth,
                first_block,
                ticket_safe,
            } => {
                w.u8(KIND_HASH_SEQUENCE);
                w.sized_u16(|w| w.bytes(auth));
                w.write(&alg.alg());
                w.u8(u8::from(*first_block));
                w.u8(u8::from(*ticket_safe));
                w.sized_u16(|w| w.bytes(&hasher.serialize()));
            }
            Object::EventSequence { hashers, auth } => {
                w.u8(KIND_EVENT_SEQUENCE);
                w.sized_u16(|w| w.bytes(auth));
                for h in hashers {
                    w.sized_u16(|w| w.bytes(&h.serialize()));
                }
            }
            Object::HmacSequence { state, auth } => {
                w.u8(KIND_HMAC_SEQUENCE);
                w.sized_u16(|w| w.bytes(auth));
                w.write(&state.alg().alg());
                w.sized_u16(|w| w.bytes(&state.serialize()));
            }
            Object::Key(k) => {
                w.u8(KIND_KEY);
                k.write(w);
            }
        }
    }

    /// Reads an object written by [`Object::write`].
    pub fn read(r: &mut Reader<'_>) -> Option<Object> {
        let flag = |r: &mut Reader<'_>| match r.u8() {
            Ok(0) => Some(false),
            Ok(1) => Some(true),
            _ => None,
        };
        match r.u8().ok()? {
            KIND_HASH_SEQUENCE => {
                let auth = Auth::unmarshal(r).ok()?;
                let alg = HashAlg::from_alg(vtpm_wire::constants::AlgId(r.u16().ok()?))?;
                let first_block = flag(r)?;
                let ticket_safe = flag(r)?;
                let n = usize::from(r.u16().ok()?);
                let hasher = Hasher::deserialize(alg, r.take(n).ok()?)?;
                Some(Object::HashSequence {
                    hasher,
                    alg,
                    auth: Zeroizing::new(auth.as_bytes().to_vec()),
                    first_block,
                    ticket_safe,
                })
            }
            KIND_EVENT_SEQUENCE => {
                let auth = Auth::unmarshal(r).ok()?;
                let mut hashers = Vec::with_capacity(HashAlg::ALL.len());
                for alg in HashAlg::ALL {
                    let n = usize::from(r.u16().ok()?);
                    hashers.push(Hasher::deserialize(alg, r.take(n).ok()?)?);
                }
                Some(Object::EventSequence {
                    hashers,
                    auth: Zeroizing::new(auth.as_bytes().to_vec()),
                })
            }
            KIND_HMAC_SEQUENCE => {
                let auth = Auth::unmarshal(r).ok()?;
                let alg = HashAlg::from_alg(vtpm_wire::constants::AlgId(r.u16().ok()?))?;
                let n = usize::from(r.u16().ok()?);
                let state = HmacState::deserialize(alg, r.take(n).ok()?)?;
                Some(Object::HmacSequence {
                    state,
                    auth: Zeroizing::new(auth.as_bytes().to_vec()),
                })
            }
            KIND_KEY => Some(Object::Key(Box::new(KeyObject::read(r).ok()?))),
            _ => None,
        }
    }
}

/// The loaded transient objects.
#[derive(Debug, Default)]
pub struct Objects {
    slots: [Option<Object>; MAX_LOADED_OBJECTS],
}

impl Objects {
    fn slot(h: u32) -> Option<usize> {
        h.checked_sub(TRANSIENT_FIRST)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < MAX_LOADED_OBJECTS)
    }

    /// Loads an object; its handle, or `None` when every slot is used.
    pub fn insert(&mut self, o: Object) -> Option<u32> {
        let (i, slot) = self
            .slots
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.is_none())?;
        *slot = Some(o);
        Some(TRANSIENT_FIRST + u32::try_from(i).ok()?)
    }

    /// The object at handle `h`.
    pub fn get(&self, h: u32) -> Option<&Object> {
        self.slots.get(Self::slot(h)?)?.as_ref()
    }

    /// The object at handle `h`, mutable.
    pub fn get_mut(&mut self, h: u32) -> Option<&mut Object> {
        self.slots.get_mut(Self::slot(h)?)?.as_mut()
    }

    /// Removes the object at `h`, returning it.
    pub fn flush(&mut self, h: u32) -> Option<Object> {
        self.slots.get_mut(Self::slot(h)?)?.take()
    }

    /// Handles of the loaded objects, ascending.
    pub fn handles(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .filter_map(|(i, _)| u32::try_from(i).ok().map(|i| TRANSIENT_FIRST + i))
    }

    /// Serializes every loaded object with its slot.
    pub fn write(&self, w: &mut Writer) {
        let loaded: Vec<(usize, &Object)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s.as_ref()?)))
            .collect();
        w.u8(u8::try_from(loaded.len()).unwrap_or(0));
        for (i, o) in loaded {
            w.u8(u8::try_from(i).unwrap_or(0));
            o.write(w);
        }
    }

    /// Reads what [`Objects::write`] wrote.
    pub fn read(r: &mut Reader<'_>) -> Option<Objects> {
        let mut objects = Objects::default();
        for _ in 0..r.u8().ok()? {
            let i = usize::from(r.u8().ok()?);
            let slot = objects.slots.get_mut(i)?;
            if slot.is_some() {
                return None;
            }
            *slot = Some(Object::read(r)?);
        }
        Some(objects)
    }

    /// Free slots.
    pub fn available(&self) -> usize {
        self.slots.iter().filter(|s| s.is_none()).count()
    }
}
