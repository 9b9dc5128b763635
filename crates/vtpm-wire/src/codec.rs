//! Bounded reader, writer and the marshalling traits.
//!
//! All TPM integers are big-endian. A [`Reader`] is a view of a byte slice
//! that shrinks as it is read: reading past its end is an error
//! ([`WireError::Insufficient`]), never a panic, and [`Reader::sub`] carves a
//! nested reader out of it so a size-prefixed structure cannot read beyond its
//! own size.

use crate::rc::TpmRc;

/// Why a structure could not be unmarshalled. Each variant maps to the
/// response code the spec assigns ([`WireError::rc`]); the caller adds the
/// handle/parameter/session position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer ended before the structure did.
    #[error("the buffer ended before the structure did")]
    Insufficient,
    /// A size field is larger than its structure allows, or bytes are left
    /// over after it.
    #[error("a size field does not fit the structure or bytes are left over")]
    Size,
    /// A value outside the range the interface type allows.
    #[error("a value is outside the allowed range")]
    Value,
    /// A hash algorithm this TPM does not implement where one is required.
    #[error("the hash algorithm is not supported")]
    Hash,
    /// An unknown structure tag.
    #[error("the structure tag is not valid here")]
    Tag,
    /// A union selector with no member.
    #[error("the union selector is not valid")]
    Selector,
    /// A public area type this TPM does not implement.
    #[error("the object type is not supported")]
    Type,
    /// A symmetric algorithm this TPM does not implement.
    #[error("the symmetric algorithm is not supported")]
    Symmetric,
    /// A block cipher mode this TPM does not implement.
    #[error("the symmetric mode is not supported")]
    Mode,
    /// A signing/encryption scheme this TPM does not implement.
    #[error("the scheme is not supported")]
    Scheme,
    /// A key derivation function this TPM does not implement.
    #[error("the key derivation function is not supported")]
    Kdf,
    /// An elliptic curve this TPM does not implement.
    #[error("the curve is not supported")]
    Curve,
    /// Reserved bits are set in an attribute field.
    #[error("reserved attribute bits are set")]
    ReservedBits,
}

impl WireError {
    /// The response code for this error (without a position).
    pub fn rc(self) -> TpmRc {
        match self {
            WireError::Insufficient => TpmRc::INSUFFICIENT,
            WireError::Size => TpmRc::SIZE,
            WireError::Value => TpmRc::VALUE,
            WireError::Hash => TpmRc::HASH,
            WireError::Tag => TpmRc::TAG,
            WireError::Selector => TpmRc::SELECTOR,
            WireError::Type => TpmRc::TYPE,
            WireError::Symmetric => TpmRc::SYMMETRIC,
            WireError::Mode => TpmRc::MODE,
            WireError::Scheme => TpmRc::SCHEME,
            WireError::Kdf => TpmRc::KDF,
            WireError::Curve => TpmRc::CURVE,
            WireError::ReservedBits => TpmRc::RESERVED_BITS,
        }
    }
}

impl From<WireError> for TpmRc {
    fn from(e: WireError) -> TpmRc {
        e.rc()
    }
}

/// A bounded big-endian reader over a byte slice.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// True when everything has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The unread bytes, without consuming them.
    pub fn peek_rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Takes exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(WireError::Insufficient);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes all remaining bytes.
    pub fn take_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// A nested reader over the next `len` bytes; this reader moves past
    /// them.
    pub fn sub(&mut self, len: usize) -> Result<Reader<'a>, WireError> {
        Ok(Reader::new(self.take(len)?))
    }

    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Fails with [`WireError::Size`] if any bytes are left.
    pub fn finish(self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::Size)
        }
    }

    /// Reads a `T`.
    pub fn read<T: Unmarshal>(&mut self) -> Result<T, WireError> {
        T::unmarshal(self)
    }
}

/// A big-endian writer into a growable buffer.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True if nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// The written bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// Writes raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Writes a `u8`.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Writes a big-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    /// Writes a big-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    /// Writes a big-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }

    /// Writes a value.
    pub fn write<T: Marshal + ?Sized>(&mut self, v: &T) {
        v.marshal(self);
    }

    /// Reserves a big-endian `u32` to be filled in later with
    /// [`Writer::patch_u32`]; returns its offset.
    pub fn reserve_u32(&mut self) -> usize {
        let at = self.buf.len();
        self.u32(0);
        at
    }

    /// Overwrites a `u32` written earlier at `at` (no-op if out of range).
    pub fn patch_u32(&mut self, at: usize, v: u32) {
        if let Some(dst) = self.buf.get_mut(at..at.saturating_add(4)) {
            dst.copy_from_slice(&v.to_be_bytes());
        }
    }

    /// Writes a `u16` size prefix followed by what `f` writes.
    pub fn sized_u16(&mut self, f: impl FnOnce(&mut Writer)) {
        let at = self.buf.len();
        self.u16(0);
        f(self);
        let n = u16::try_from(self.buf.len() - at - 2).unwrap_or(u16::MAX);
        if let Some(dst) = self.buf.get_mut(at..at + 2) {
            dst.copy_from_slice(&n.to_be_bytes());
        }
    }
}

/// A type that can be written in TPM wire format.
pub trait Marshal {
    /// Appends the wire form of `self`.
    fn marshal(&self, w: &mut Writer);

    /// The wire form as a new vector.
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.marshal(&mut w);
        w.into_vec()
    }
}

/// A type that can be read from TPM wire format.
pub trait Unmarshal: Sized {
    /// Reads one value, consuming exactly its bytes.
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError>;

    /// Reads one value that must fill `buf` exactly.
    fn from_bytes(buf: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(buf);
        let v = Self::unmarshal(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

macro_rules! int_codec {
    ($($t:ident),*) => {$(
        impl Marshal for $t {
            fn marshal(&self, w: &mut Writer) { w.$t(*self) }
        }
        impl Unmarshal for $t {
            fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> { r.$t() }
        }
    )*};
}
int_codec!(u8, u16, u32, u64);

/// Declares a plain structure whose wire form is its fields in order, with
/// `Marshal` and `Unmarshal` implementations.
///
/// ```
/// vtpm_wire::tpm_struct! {
///     /// Example.
///     pub struct Pair { pub a: u16, pub b: u32 }
/// }
/// let p = <Pair as vtpm_wire::Unmarshal>::from_bytes(&[0, 1, 0, 0, 0, 2]).unwrap();
/// assert_eq!((p.a, p.b), (1, 2));
/// ```
#[macro_export]
macro_rules! tpm_struct {
    (
        $(#[$m:meta])*
        pub struct $name:ident { $( $(#[$fm:meta])* pub $field:ident : $ty:ty ),* $(,)? }
    ) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name { $( $(#[$fm])* pub $field: $ty ),* }

        impl $crate::codec::Marshal for $name {
            fn marshal(&self, w: &mut $crate::codec::Writer) {
                $( $crate::codec::Marshal::marshal(&self.$field, w); )*
            }
        }

        impl $crate::codec::Unmarshal for $name {
            fn unmarshal(r: &mut $crate::codec::Reader<'_>) -> Result<Self, $crate::codec::WireError> {
                Ok($name { $( $field: <$ty as $crate::codec::Unmarshal>::unmarshal(r)? ),* })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_is_bounded() {
        let data = [0x12, 0x34, 0x56, 0x78, 0x9a];
        let mut r = Reader::new(&data);
        assert_eq!(r.u16(), Ok(0x1234));
        let mut sub = r.sub(2).unwrap();
        assert_eq!(sub.u8(), Ok(0x56));
        assert_eq!(sub.u16(), Err(WireError::Insufficient));
        assert_eq!(r.remaining(), 1);
        assert_eq!(r.take(2), Err(WireError::Insufficient));
        assert_eq!(r.clone().finish(), Err(WireError::Size));
        assert_eq!(r.u8(), Ok(0x9a));
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(Reader::new(&[]).u64(), Err(WireError::Insufficient));
        assert_eq!(
            Reader::new(&[1, 2]).take(usize::MAX),
            Err(WireError::Insufficient)
        );
    }

    #[test]
    fn writer_sizes_and_patches() {
        let mut w = Writer::new();
        let at = w.reserve_u32();
        w.sized_u16(|w| w.bytes(b"abc"));
        w.patch_u32(at, 0xdead_beef);
        w.patch_u32(100, 1);
        assert_eq!(
            w.into_vec(),
            vec![0xde, 0xad, 0xbe, 0xef, 0, 3, b'a', b'b', b'c']
        );
    }

    #[test]
    fn integers_round_trip_big_endian() {
        assert_eq!(
            0x0102_0304_0506_0708u64.to_bytes(),
            vec![1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(
            u64::from_bytes(&[1, 2, 3, 4, 5, 6, 7, 8]),
            Ok(0x0102_0304_0506_0708)
        );
        assert_eq!(u32::from_bytes(&[1, 2, 3, 4, 5]), Err(WireError::Size));
    }
}
