//! The state file format, version 1: pure functions from bytes to bytes,
//! so that it can be tested and fuzzed without files.
//!
//! ```text
//! header (84 bytes, plaintext) || ciphertext (AES-256-XTS) || HMAC-SHA-256 (32 bytes)
//! ```
//!
//! `docs/state-file.md` is the specification; this module follows it.

use aes::Aes256;
use aes::cipher::KeyInit;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use xts_mode::{Xts128, get_tweak_default};
use zeroize::{Zeroize, Zeroizing};

use crate::key::{KEY_ID_LEN, KeyId, MasterKey};

/// The first eight bytes of every state file.
pub const MAGIC: [u8; 8] = *b"VTPMSTAT";
/// The format version this crate writes, and the newest it reads.
pub const FORMAT_VERSION: u16 = 1;
/// Cipher id 1: AES-256-XTS body, HMAC-SHA-256 over header and body, keys
/// by HKDF-SHA-256.
pub const CIPHER_AES256_XTS_HMAC_SHA256: u16 = 1;
/// Length of a version 1 header.
pub const HEADER_LEN: usize = 84;
/// Length of the KDF salt.
pub const SALT_LEN: usize = 32;
/// Length of the MAC at the end of the file.
pub const MAC_LEN: usize = 32;
/// The XTS data unit ("sector") size of version 1.
pub const SECTOR_SIZE: u32 = 4096;
/// The largest NV image a state file may hold (64 MiB). Lengths above it
/// are refused before anything is allocated.
pub const MAX_IMAGE_LEN: u64 = 64 * 1024 * 1024;
/// The largest state file there can be: header, padded body, MAC.
pub const MAX_FILE_LEN: u64 = HEADER_LEN as u64 + MAX_IMAGE_LEN + MAC_LEN as u64;

/// HKDF info for the 64-byte XTS key (key 1 || key 2).
const XTS_INFO: &[u8] = b"vtpm state xts v1";
/// HKDF info for the 32-byte HMAC key.
const MAC_INFO: &[u8] = b"vtpm state mac v1";
/// AES block size: XTS data units are multiples of it.
const BLOCK: usize = 16;

/// Why bytes are not a state file this crate can read with this key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    /// The magic is wrong.
    #[error("not a vtpm state file")]
    NotStateFile,
    /// A version newer than this crate reads.
    #[error("state file format version {0} is newer than this vtpm (reads up to {FORMAT_VERSION})")]
    NewerVersion(u16),
    /// Version 0, which never existed.
    #[error("state file format version {0} is not a valid version")]
    InvalidVersion(u16),
    /// A cipher id this crate does not know.
    #[error(
        "state file uses cipher id {0}, which this vtpm does not know \
         (it knows 1: AES-256-XTS with HMAC-SHA-256)"
    )]
    UnknownCipher(u16),
    /// Fewer bytes than the header says there are.
    #[error("state file is truncated")]
    Truncated,
    /// More bytes than the header says there are.
    #[error("state file has {0} bytes after its end")]
    TrailingData(u64),
    /// A header field that version 1 does not allow.
    #[error("state file header is invalid: {0}")]
    BadHeader(&'static str),
    /// An NV image longer than [`MAX_IMAGE_LEN`].
    #[error("state file holds {0} bytes, more than the limit of {MAX_IMAGE_LEN}")]
    TooLarge(u64),
    /// The file names another key than the one given.
    #[error(
        "wrong state key: the file was written with key {file}, the key provider gives {given}"
    )]
    WrongKey {
        /// The key id in the file.
        file: KeyId,
        /// The key id of the key given.
        given: KeyId,
    },
    /// The MAC does not match: the file was damaged or tampered with.
    #[error("state file is corrupt or was modified")]
    Corrupt,
}

/// An NV image in memory, wiped when dropped.
pub type NvImage = Zeroizing<Vec<u8>>;

/// The plaintext header of a state file, as read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Format version (1).
    pub version: u16,
    /// Cipher id (1).
    pub cipher: u16,
    /// Header length in bytes (84).
    pub header_len: u16,
    /// Flags (0).
    pub flags: u16,
    /// Fingerprint of the master key the file was written with.
    pub key_id: KeyId,
    /// The KDF salt of this file.
    pub salt: [u8; SALT_LEN],
    /// Length of the NV image.
    pub plaintext_len: u64,
    /// Length of the encrypted body (plaintext length rounded up to 16).
    pub ciphertext_len: u64,
    /// XTS data unit size (4096).
    pub sector_size: u32,
}

impl Header {
    /// The header as it is written.
    fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        let mut w = Writer(&mut h);
        w.put(&MAGIC);
        w.put(&self.version.to_be_bytes());
        w.put(&self.cipher.to_be_bytes());
        w.put(&self.header_len.to_be_bytes());
        w.put(&self.flags.to_be_bytes());
        w.put(&self.key_id.0);
        w.put(&self.salt);
        w.put(&self.plaintext_len.to_be_bytes());
        w.put(&self.ciphertext_len.to_be_bytes());
        w.put(&self.sector_size.to_be_bytes());
        h
    }
}

/// Appends into a fixed buffer (the header is fixed-size, so it fits).
struct Writer<'a>(&'a mut [u8]);

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let buf = std::mem::take(&mut self.0);
        if let Some((head, tail)) = buf.split_at_mut_checked(bytes.len()) {
            head.copy_from_slice(bytes);
            self.0 = tail;
        }
    }
}

/// Reads big-endian fields off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let (head, tail) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(FormatError::Truncated)?;
        self.0 = tail;
        Ok(*head)
    }
    fn u16(&mut self) -> Result<u16, FormatError> {
        self.take().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        self.take().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Result<u64, FormatError> {
        self.take().map(u64::from_be_bytes)
    }
}

/// The ciphertext length for a plaintext length: rounded up to 16.
fn padded_len(plaintext_len: u64) -> Option<u64> {
    plaintext_len.checked_next_multiple_of(BLOCK as u64)
}

/// Reads and checks the header of a state file: magic, version, cipher,
/// the fixed fields of version 1 and that `bytes` is exactly as long as
/// the header says. Neither the key id nor the MAC is checked.
pub fn read_header(bytes: &[u8]) -> Result<Header, FormatError> {
    let mut r = Reader(bytes);
    let magic: [u8; 8] = match r.take() {
        Ok(m) => m,
        // A prefix of the magic (even an empty file) was cut short; any
        // other short input is not a state file at all.
        Err(_) if MAGIC.starts_with(bytes) => return Err(FormatError::Truncated),
        Err(_) => return Err(FormatError::NotStateFile),
    };
    if magic != MAGIC {
        return Err(FormatError::NotStateFile);
    }
    let version = r.u16()?;
    if version > FORMAT_VERSION {
        return Err(FormatError::NewerVersion(version));
    }
    if version == 0 {
        return Err(FormatError::InvalidVersion(version));
    }
    let cipher = r.u16()?;
    if cipher != CIPHER_AES256_XTS_HMAC_SHA256 {
        return Err(FormatError::UnknownCipher(cipher));
    }
    let header = Header {
        version,
        cipher,
        header_len: r.u16()?,
        flags: r.u16()?,
        key_id: KeyId(r.take::<KEY_ID_LEN>()?),
        salt: r.take::<SALT_LEN>()?,
        plaintext_len: r.u64()?,
        ciphertext_len: r.u64()?,
        sector_size: r.u32()?,
    };
    if usize::from(header.header_len) != HEADER_LEN {
        return Err(FormatError::BadHeader("the header length is not 84"));
    }
    if header.flags != 0 {
        return Err(FormatError::BadHeader("unknown flags are set"));
    }
    if header.sector_size != SECTOR_SIZE {
        return Err(FormatError::BadHeader("the sector size is not 4096"));
    }
    if header.plaintext_len > MAX_IMAGE_LEN {
        return Err(FormatError::TooLarge(header.plaintext_len));
    }
    if padded_len(header.plaintext_len) != Some(header.ciphertext_len) {
        return Err(FormatError::BadHeader(
            "the ciphertext length is not the plaintext length rounded up to 16",
        ));
    }
    // Both lengths are now at most 64 MiB: no overflow.
    let total = HEADER_LEN as u64 + header.ciphertext_len + MAC_LEN as u64;
    let actual = bytes.len() as u64;
    if actual < total {
        return Err(FormatError::Truncated);
    }
    if actual > total {
        return Err(FormatError::TrailingData(actual - total));
    }
    Ok(header)
}

/// The per-file keys: 64 bytes of XTS key (key 1 for data, key 2 for the
/// tweak) and 32 bytes of MAC key.
struct FileKeys {
    xts: Zeroizing<[u8; 64]>,
    mac: Zeroizing<[u8; 32]>,
}

impl FileKeys {
    /// HKDF-SHA-256 with ikm = master key and salt = the file's salt.
    fn derive(key: &MasterKey, salt: &[u8; SALT_LEN]) -> FileKeys {
        let hk = Hkdf::<Sha256>::new(Some(salt), key.as_bytes());
        let mut keys = FileKeys {
            xts: Zeroizing::new([0u8; 64]),
            mac: Zeroizing::new([0u8; 32]),
        };
        // 64 and 32 bytes are far below HKDF-SHA-256's limit of 8160.
        let _ = hk.expand(XTS_INFO, keys.xts.as_mut_slice());
        let _ = hk.expand(MAC_INFO, keys.mac.as_mut_slice());
        keys
    }

    /// HMAC-SHA-256 over header || ciphertext. (HMAC takes keys of any
    /// length, so the error is never seen; it is mapped rather than
    /// unwrapped so that no code path can panic.)
    fn mac(&self, header: &[u8], ciphertext: &[u8]) -> Result<Hmac<Sha256>, FormatError> {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(self.mac.as_slice())
            .map_err(|_| FormatError::Corrupt)?;
        m.update(header);
        m.update(ciphertext);
        Ok(m)
    }
}

/// AES-256-XTS from a 64-byte key: the first 32 bytes are key 1 (data),
/// the last 32 key 2 (tweak).
fn xts(key: &[u8; 64]) -> Xts128<Aes256> {
    let (k1, k2) = key.split_at(32);
    Xts128::new(aes256(k1), aes256(k2))
}

/// AES-256 keyed with the 32-byte slice `k` (always 32 bytes here); the
/// key copy made on the way is wiped.
fn aes256(k: &[u8]) -> Aes256 {
    let mut key = aes::cipher::Key::<Aes256>::default();
    for (d, s) in key.iter_mut().zip(k) {
        *d = *s;
    }
    let cipher = Aes256::new(&key);
    key.as_mut_slice().zeroize();
    cipher
}

/// Encrypts `buf` in place, data unit by data unit, with tweak = the data
/// unit number (little-endian, 16 bytes) counted from `first_unit`. The
/// last data unit may be shorter than `unit`. Refused unless `buf.len()`
/// and `unit` are multiples of 16 (so every data unit is at least one
/// block, as XTS needs).
fn xts_encrypt(
    key: &[u8; 64],
    buf: &mut [u8],
    unit: usize,
    first_unit: u128,
) -> Result<(), FormatError> {
    check_units(buf, unit)?;
    xts(key).encrypt_area(buf, unit, first_unit, get_tweak_default);
    Ok(())
}

/// The inverse of [`xts_encrypt`].
fn xts_decrypt(
    key: &[u8; 64],
    buf: &mut [u8],
    unit: usize,
    first_unit: u128,
) -> Result<(), FormatError> {
    check_units(buf, unit)?;
    xts(key).decrypt_area(buf, unit, first_unit, get_tweak_default);
    Ok(())
}

fn check_units(buf: &[u8], unit: usize) -> Result<(), FormatError> {
    if buf.len().is_multiple_of(BLOCK) && unit.is_multiple_of(BLOCK) && unit > 0 {
        Ok(())
    } else {
        Err(FormatError::BadHeader(
            "the body is not a whole number of AES blocks",
        ))
    }
}

/// Seals an NV image into the bytes of a state file, with the given KDF
/// salt (callers take it fresh from the OS for every write; tests fix it).
pub fn seal(image: &[u8], key: &MasterKey, salt: &[u8; SALT_LEN]) -> Result<Vec<u8>, FormatError> {
    let plaintext_len = image.len() as u64;
    if plaintext_len > MAX_IMAGE_LEN {
        return Err(FormatError::TooLarge(plaintext_len));
    }
    let ciphertext_len = padded_len(plaintext_len).ok_or(FormatError::TooLarge(plaintext_len))?;
    let header = Header {
        version: FORMAT_VERSION,
        cipher: CIPHER_AES256_XTS_HMAC_SHA256,
        header_len: HEADER_LEN as u16,
        flags: 0,
        key_id: key.key_id(),
        salt: *salt,
        plaintext_len,
        ciphertext_len,
        sector_size: SECTOR_SIZE,
    }
    .to_bytes();
    let keys = FileKeys::derive(key, salt);

    // At most 64 MiB, checked above.
    let body_len =
        usize::try_from(ciphertext_len).map_err(|_| FormatError::TooLarge(plaintext_len))?;
    let mut out = Vec::with_capacity(HEADER_LEN + body_len + MAC_LEN);
    out.extend_from_slice(&header);
    out.extend_from_slice(image);
    out.resize(HEADER_LEN + body_len, 0);
    let body = out.get_mut(HEADER_LEN..).unwrap_or_default();
    xts_encrypt(&keys.xts, body, SECTOR_SIZE as usize, 0)?;
    let tag = keys
        .mac(&header, out.get(HEADER_LEN..).unwrap_or_default())?
        .finalize()
        .into_bytes();
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens the bytes of a state file with `key`: checks the header, the key
/// id and the MAC (in constant time) and only then decrypts.
pub fn unseal(bytes: &[u8], key: &MasterKey) -> Result<NvImage, FormatError> {
    let header = read_header(bytes)?;
    let given = key.key_id();
    if header.key_id != given {
        return Err(FormatError::WrongKey {
            file: header.key_id,
            given,
        });
    }
    // read_header checked the total length, so these splits succeed.
    let (head, rest) = bytes
        .split_at_checked(HEADER_LEN)
        .ok_or(FormatError::Truncated)?;
    let body_len = rest
        .len()
        .checked_sub(MAC_LEN)
        .ok_or(FormatError::Truncated)?;
    let (ciphertext, tag) = rest
        .split_at_checked(body_len)
        .ok_or(FormatError::Truncated)?;

    let keys = FileKeys::derive(key, &header.salt);
    keys.mac(head, ciphertext)?
        .verify_slice(tag)
        .map_err(|_| FormatError::Corrupt)?;

    let mut plain = Zeroizing::new(ciphertext.to_vec());
    xts_decrypt(&keys.xts, &mut plain, SECTOR_SIZE as usize, 0)?;
    let len = usize::try_from(header.plaintext_len).map_err(|_| FormatError::Truncated)?;
    // The padding was authenticated; it is zero in any file this crate
    // wrote, so anything else means a writer that does not follow the spec.
    if plain
        .get(len..)
        .is_none_or(|pad| pad.iter().any(|&b| b != 0))
    {
        return Err(FormatError::Corrupt);
    }
    plain.truncate(len);
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// IEEE P1619/D16 (IEEE 1619-2007) Annex B, XTS-AES-256 vector 10:
    /// 512-byte data unit, data unit sequence number 0xff, plaintext
    /// 00..ff 00..ff. Exercises our key split (key 1 = first half, data;
    /// key 2 = second half, tweak) and tweak encoding.
    #[test]
    fn xts_aes256_ieee1619_vector_10() {
        let key1 = unhex("2718281828459045235360287471352662497757247093699959574966967627");
        let key2 = unhex("3141592653589793238462643383279502884197169399375105820974944592");
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(&key1);
        key[32..].copy_from_slice(&key2);
        let plain: Vec<u8> = (0..512).map(|i| i as u8).collect();
        let expected = unhex(
            "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b
             5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd
             5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0
             c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca
             2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0
             b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f
             93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec
             583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a
             84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1
             505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae
             9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29
             a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac
             6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f
             645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385
             1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa
             773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151",
        );
        assert_eq!(expected.len(), 512);
        let mut buf = plain.clone();
        xts_encrypt(&key, &mut buf, 512, 0xff).unwrap();
        assert_eq!(buf[..16], unhex("1c3b3a102f770386e4836c99e370cf9b")[..]);
        assert_eq!(buf[496..], unhex("c4f36ffda9fcea70b9c6e693e148c151")[..]);
        assert_eq!(buf, expected);
        xts_decrypt(&key, &mut buf, 512, 0xff).unwrap();
        assert_eq!(buf, plain);
    }

    /// RFC 5869 test case 1 (HKDF-SHA-256), as a check of how `hkdf` is
    /// called here (extract with a salt, expand with an info).
    #[test]
    fn hkdf_sha256_rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt = unhex("000102030405060708090a0b0c");
        let info = unhex("f0f1f2f3f4f5f6f7f8f9");
        let (prk, hk) = Hkdf::<Sha256>::extract(Some(&salt), &ikm);
        assert_eq!(
            prk[..],
            unhex("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")[..]
        );
        let mut okm = [0u8; 42];
        hk.expand(&info, &mut okm).unwrap();
        assert_eq!(
            okm[..],
            unhex(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf
                 34007208d5b887185865"
            )[..]
        );
    }

    #[test]
    fn header_layout() {
        let key = MasterKey::from_bytes([7; 32]);
        let sealed = seal(b"abc", &key, &[9; 32]).unwrap();
        assert_eq!(sealed.len(), HEADER_LEN + 16 + MAC_LEN);
        assert_eq!(&sealed[..8], b"VTPMSTAT");
        assert_eq!(sealed[8..16], [0, 1, 0, 1, 0, 84, 0, 0]);
        assert_eq!(sealed[16..32], key.key_id().0);
        assert_eq!(sealed[32..64], [9; 32]);
        assert_eq!(sealed[64..72], 3u64.to_be_bytes());
        assert_eq!(sealed[72..80], 16u64.to_be_bytes());
        assert_eq!(sealed[80..84], 4096u32.to_be_bytes());
        let h = read_header(&sealed).unwrap();
        assert_eq!(h.plaintext_len, 3);
        assert_eq!(h.salt, [9; 32]);
    }

    #[test]
    fn salt_changes_everything() {
        let key = MasterKey::from_bytes([7; 32]);
        let a = seal(&[0u8; 64], &key, &[1; 32]).unwrap();
        let b = seal(&[0u8; 64], &key, &[2; 32]).unwrap();
        assert_ne!(a[HEADER_LEN..], b[HEADER_LEN..]);
    }

    #[test]
    fn sectors_use_their_own_tweak() {
        // Two identical 4096-byte sectors must not encrypt alike.
        let key = MasterKey::from_bytes([7; 32]);
        let sealed = seal(&[0x55u8; 8192], &key, &[1; 32]).unwrap();
        let body = &sealed[HEADER_LEN..HEADER_LEN + 8192];
        assert_ne!(body[..4096], body[4096..]);
    }

    #[test]
    fn nonzero_padding_is_refused() {
        // A file whose padding decrypts to non-zero (only a foreign writer
        // could make one: it must hold the key) is refused.
        let key = MasterKey::from_bytes([7; 32]);
        let salt = [3u8; 32];
        let mut sealed = seal(&[1u8; 16], &key, &salt).unwrap();
        // Rewrite the header to claim 15 bytes, re-MAC.
        sealed[64..72].copy_from_slice(&15u64.to_be_bytes());
        let keys = FileKeys::derive(&key, &salt);
        let n = sealed.len() - MAC_LEN;
        let tag = keys
            .mac(&sealed[..HEADER_LEN], &sealed[HEADER_LEN..n])
            .unwrap()
            .finalize()
            .into_bytes();
        sealed[n..].copy_from_slice(&tag);
        assert_eq!(unseal(&sealed, &key).unwrap_err(), FormatError::Corrupt);
    }
}
