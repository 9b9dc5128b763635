//! Transient object slots. In this TPM they hold hash and event sequence
//! objects; keys join them with the object commands.

use crate::crypto::hash::{HashAlg, Hasher};
use vtpm_wire::constants::handle::TRANSIENT_FIRST;
use vtpm_wire::profile::MAX_LOADED_OBJECTS;
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
}

impl Object {
    /// The object's authValue.
    pub fn auth(&self) -> &[u8] {
        match self {
            Object::HashSequence { auth, .. } | Object::EventSequence { auth, .. } => auth,
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

    /// Free slots.
    pub fn available(&self) -> usize {
        self.slots.iter().filter(|s| s.is_none()).count()
    }
}
