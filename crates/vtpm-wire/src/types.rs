//! Part 2 structures. Plain structures use [`tpm_struct!`](crate::tpm_struct);
//! unions, lists and interface types (`TPMI_*`, which validate the value
//! against [`profile`](crate::profile)) are written by hand.

use crate::codec::{Marshal, Reader, Unmarshal, WireError, Writer};
use crate::constants::{AlgId, Capability, EccCurve, StructureTag};
use crate::profile;
use crate::tpm_struct;

/// A TPM2B: a `u16` size followed by at most `CAP` bytes. The size is
/// checked against `CAP` before anything is allocated; the contents are
/// zeroed when dropped (TPM2Bs carry auth values and secrets).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Tpm2b<const CAP: usize>(Vec<u8>);

impl<const CAP: usize> Tpm2b<CAP> {
    /// Capacity of this TPM2B type.
    pub const CAPACITY: usize = CAP;

    /// An empty buffer.
    pub fn empty() -> Self {
        Tpm2b(Vec::new())
    }

    /// A buffer holding `bytes`, or [`WireError::Size`] if they do not fit.
    pub fn new(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > CAP {
            return Err(WireError::Size);
        }
        Ok(Tpm2b(bytes.to_vec()))
    }

    /// The contents.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<const CAP: usize> Drop for Tpm2b<CAP> {
    fn drop(&mut self) {
        // Volatile-free but sufficient: the optimiser may not elide a write
        // followed by a deallocation through `black_box`.
        for b in self.0.iter_mut() {
            *b = 0;
        }
        std::hint::black_box(&mut self.0);
    }
}

impl<const CAP: usize> std::fmt::Debug for Tpm2b<CAP> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tpm2b[{}]", self.0.len())
    }
}

impl<const CAP: usize> Marshal for Tpm2b<CAP> {
    fn marshal(&self, w: &mut Writer) {
        w.u16(u16::try_from(self.0.len()).unwrap_or(u16::MAX));
        w.bytes(&self.0);
    }
}

impl<const CAP: usize> Unmarshal for Tpm2b<CAP> {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let size = usize::from(r.u16()?);
        if size > CAP {
            return Err(WireError::Size);
        }
        Ok(Tpm2b(r.take(size)?.to_vec()))
    }
}

/// TPM2B_DIGEST.
pub type Digest = Tpm2b<{ profile::MAX_DIGEST_SIZE }>;
/// TPM2B_DATA.
pub type Data = Tpm2b<{ profile::MAX_DIGEST_SIZE }>;
/// TPM2B_NONCE.
pub type Nonce = Tpm2b<{ profile::MAX_DIGEST_SIZE }>;
/// TPM2B_AUTH.
pub type Auth = Tpm2b<{ profile::MAX_DIGEST_SIZE }>;
/// TPM2B_EVENT.
pub type Event = Tpm2b<{ profile::MAX_EVENT_DATA }>;
/// TPM2B_MAX_BUFFER.
pub type MaxBuffer = Tpm2b<{ profile::MAX_DIGEST_BUFFER }>;
/// TPM2B_SENSITIVE_DATA.
pub type SensitiveData = Tpm2b<{ profile::MAX_SYM_DATA }>;

/// Reads a `u32` element count and checks it against `max`
/// ([`WireError::Size`] otherwise) before anything is allocated.
fn list_count(r: &mut Reader<'_>, max: usize) -> Result<usize, WireError> {
    let n = usize::try_from(r.u32()?).map_err(|_| WireError::Size)?;
    if n > max {
        return Err(WireError::Size);
    }
    Ok(n)
}

fn read_list<T: Unmarshal>(r: &mut Reader<'_>, max: usize) -> Result<Vec<T>, WireError> {
    let n = list_count(r, max)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(T::unmarshal(r)?);
    }
    Ok(v)
}

fn write_list<T: Marshal>(w: &mut Writer, items: &[T]) {
    w.u32(u32::try_from(items.len()).unwrap_or(u32::MAX));
    for i in items {
        i.marshal(w);
    }
}

/// TPMI_ALG_HASH (`allow_null` for TPMI_ALG_HASH+): an implemented hash
/// algorithm, otherwise [`WireError::Hash`].
pub fn read_hash_alg(r: &mut Reader<'_>, allow_null: bool) -> Result<AlgId, WireError> {
    let alg = AlgId(r.u16()?);
    if profile::is_hash(alg) || (allow_null && alg == AlgId::NULL) {
        Ok(alg)
    } else {
        Err(WireError::Hash)
    }
}

/// TPMI_YES_NO: 0 or 1, otherwise [`WireError::Value`].
pub fn read_yes_no(r: &mut Reader<'_>) -> Result<bool, WireError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(WireError::Value),
    }
}

/// TPMI_RH_HIERARCHY (`allow_null` for TPMI_RH_HIERARCHY+): owner,
/// endorsement or platform, otherwise [`WireError::Value`].
pub fn read_hierarchy(r: &mut Reader<'_>, allow_null: bool) -> Result<u32, WireError> {
    use crate::constants::handle::{RH_ENDORSEMENT, RH_NULL, RH_OWNER, RH_PLATFORM};
    match r.u32()? {
        h @ (RH_OWNER | RH_ENDORSEMENT | RH_PLATFORM) => Ok(h),
        RH_NULL if allow_null => Ok(RH_NULL),
        _ => Err(WireError::Value),
    }
}

/// TPMT_HA: a digest tagged with its algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ha {
    /// hashAlg (TPM_ALG_NULL for an empty TPMT_HA+).
    pub alg: AlgId,
    /// The digest, exactly the algorithm's digest size.
    pub digest: Vec<u8>,
}

impl Ha {
    /// Reads a TPMT_HA (`allow_null` for TPMT_HA+).
    pub fn read(r: &mut Reader<'_>, allow_null: bool) -> Result<Ha, WireError> {
        let alg = read_hash_alg(r, allow_null)?;
        let size = profile::digest_size(alg).unwrap_or(0);
        Ok(Ha {
            alg,
            digest: r.take(size)?.to_vec(),
        })
    }
}

impl Marshal for Ha {
    fn marshal(&self, w: &mut Writer) {
        w.write(&self.alg);
        w.bytes(&self.digest);
    }
}

impl Unmarshal for Ha {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ha::read(r, false)
    }
}

/// TPML_DIGEST_VALUES.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DigestValues(pub Vec<Ha>);

impl Marshal for DigestValues {
    fn marshal(&self, w: &mut Writer) {
        write_list(w, &self.0);
    }
}

impl Unmarshal for DigestValues {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(DigestValues(read_list(r, profile::HASH_COUNT)?))
    }
}

/// TPML_DIGEST.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DigestList(pub Vec<Digest>);

impl Marshal for DigestList {
    fn marshal(&self, w: &mut Writer) {
        write_list(w, &self.0);
    }
}

impl Unmarshal for DigestList {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(DigestList(read_list(r, profile::MAX_DIGEST_LIST)?))
    }
}

/// TPMS_PCR_SELECTION.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcrSelection {
    /// The bank's hash algorithm.
    pub hash: AlgId,
    /// sizeofSelect as sent (PCR_SELECT_MIN..=PCR_SELECT_MAX).
    pub size_of_select: u8,
    /// The bitmap; bit `n % 8` of octet `n / 8` selects PCR `n`.
    pub select: [u8; profile::PCR_SELECT_MAX],
}

impl PcrSelection {
    /// A selection of `pcrs` in bank `hash`.
    pub fn new(hash: AlgId, pcrs: impl IntoIterator<Item = usize>) -> Self {
        let mut s = PcrSelection {
            hash,
            size_of_select: profile::PCR_SELECT_MAX as u8,
            select: [0; profile::PCR_SELECT_MAX],
        };
        for p in pcrs {
            s.set(p, true);
        }
        s
    }

    /// Is PCR `n` selected?
    pub fn is_selected(&self, n: usize) -> bool {
        self.select
            .get(n / 8)
            .is_some_and(|b| b & (1 << (n % 8)) != 0)
    }

    /// Selects or deselects PCR `n` (ignored beyond the bitmap).
    pub fn set(&mut self, n: usize, on: bool) {
        if let Some(b) = self.select.get_mut(n / 8) {
            if on {
                *b |= 1 << (n % 8);
            } else {
                *b &= !(1 << (n % 8));
            }
        }
    }

    /// The selected PCR numbers below IMPLEMENTATION_PCR.
    pub fn pcrs(&self) -> impl Iterator<Item = usize> + '_ {
        (0..profile::IMPLEMENTATION_PCR).filter(|&n| self.is_selected(n))
    }
}

impl Marshal for PcrSelection {
    fn marshal(&self, w: &mut Writer) {
        w.write(&self.hash);
        w.u8(self.size_of_select);
        let n = usize::from(self.size_of_select).min(profile::PCR_SELECT_MAX);
        w.bytes(self.select.get(..n).unwrap_or(&[]));
    }
}

impl Unmarshal for PcrSelection {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let hash = read_hash_alg(r, false)?;
        let size_of_select = r.u8()?;
        let n = usize::from(size_of_select);
        if !(profile::PCR_SELECT_MIN..=profile::PCR_SELECT_MAX).contains(&n) {
            return Err(WireError::Value);
        }
        let mut select = [0u8; profile::PCR_SELECT_MAX];
        if let Some(dst) = select.get_mut(..n) {
            dst.copy_from_slice(r.take(n)?);
        }
        Ok(PcrSelection {
            hash,
            size_of_select,
            select,
        })
    }
}

/// TPML_PCR_SELECTION.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PcrSelectionList(pub Vec<PcrSelection>);

impl Marshal for PcrSelectionList {
    fn marshal(&self, w: &mut Writer) {
        write_list(w, &self.0);
    }
}

impl Unmarshal for PcrSelectionList {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(PcrSelectionList(read_list(r, profile::HASH_COUNT)?))
    }
}

/// TPML_ALG.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AlgList(pub Vec<AlgId>);

/// MAX_ALG_LIST_SIZE.
pub const MAX_ALG_LIST_SIZE: usize = 64;

impl Marshal for AlgList {
    fn marshal(&self, w: &mut Writer) {
        write_list(w, &self.0);
    }
}

impl Unmarshal for AlgList {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(AlgList(read_list(r, MAX_ALG_LIST_SIZE)?))
    }
}

/// TPMA_SESSION bits.
pub mod session_attr {
    /// continueSession.
    pub const CONTINUE_SESSION: u8 = 0x01;
    /// auditExclusive.
    pub const AUDIT_EXCLUSIVE: u8 = 0x02;
    /// auditReset.
    pub const AUDIT_RESET: u8 = 0x04;
    /// Reserved bits 3 and 4.
    pub const RESERVED: u8 = 0x18;
    /// decrypt.
    pub const DECRYPT: u8 = 0x20;
    /// encrypt.
    pub const ENCRYPT: u8 = 0x40;
    /// audit.
    pub const AUDIT: u8 = 0x80;
}

/// TPMS_AUTH_COMMAND.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthCommand {
    /// sessionHandle.
    pub session_handle: u32,
    /// nonce.
    pub nonce: Nonce,
    /// sessionAttributes (TPMA_SESSION).
    pub attributes: u8,
    /// hmac: the HMAC, or the password for TPM_RS_PW.
    pub hmac: Auth,
}

impl Unmarshal for AuthCommand {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let session_handle = r.u32()?;
        let nonce = Nonce::unmarshal(r)?;
        let attributes = r.u8()?;
        if attributes & session_attr::RESERVED != 0 {
            return Err(WireError::ReservedBits);
        }
        let hmac = Auth::unmarshal(r)?;
        Ok(AuthCommand {
            session_handle,
            nonce,
            attributes,
            hmac,
        })
    }
}

impl Marshal for AuthCommand {
    fn marshal(&self, w: &mut Writer) {
        w.u32(self.session_handle);
        w.write(&self.nonce);
        w.u8(self.attributes);
        w.write(&self.hmac);
    }
}

tpm_struct! {
    /// TPMS_AUTH_RESPONSE.
    pub struct AuthResponse {
        /// nonce.
        pub nonce: Nonce,
        /// sessionAttributes.
        pub attributes: u8,
        /// hmac.
        pub hmac: Auth,
    }
}

tpm_struct! {
    /// TPMS_CLOCK_INFO.
    pub struct ClockInfo {
        /// clock: milliseconds the TPM has been powered, persisted.
        pub clock: u64,
        /// resetCount.
        pub reset_count: u32,
        /// restartCount.
        pub restart_count: u32,
        /// safe (TPMI_YES_NO).
        pub safe: u8,
    }
}

tpm_struct! {
    /// TPMS_TIME_INFO.
    pub struct TimeInfo {
        /// time: milliseconds since the last _TPM_Init.
        pub time: u64,
        /// clockInfo.
        pub clock_info: ClockInfo,
    }
}

tpm_struct! {
    /// TPMT_TK_HASHCHECK.
    pub struct TkHashcheck {
        /// tag (TPM_ST_HASHCHECK).
        pub tag: StructureTag,
        /// hierarchy.
        pub hierarchy: u32,
        /// digest: the ticket HMAC (empty for a NULL ticket).
        pub digest: Digest,
    }
}

/// TPMT_SYM_DEF_OBJECT(+).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymDefObject {
    /// algorithm (TPM_ALG_NULL: no symmetric algorithm).
    pub algorithm: AlgId,
    /// keyBits (absent for NULL).
    pub key_bits: u16,
    /// mode (absent for NULL).
    pub mode: AlgId,
}

impl SymDefObject {
    /// The NULL definition.
    pub const NULL: SymDefObject = SymDefObject {
        algorithm: AlgId::NULL,
        key_bits: 0,
        mode: AlgId::NULL,
    };

    /// Reads a TPMT_SYM_DEF_OBJECT (`allow_null` for the `+` form).
    pub fn read(r: &mut Reader<'_>, allow_null: bool) -> Result<Self, WireError> {
        let algorithm = AlgId(r.u16()?);
        match algorithm {
            AlgId::NULL if allow_null => Ok(SymDefObject::NULL),
            AlgId::AES => {
                let key_bits = r.u16()?;
                if !profile::AES_KEY_BITS.contains(&key_bits) {
                    return Err(WireError::Value);
                }
                let mode = AlgId(r.u16()?);
                if !(profile::SYM_MODES.contains(&mode) || mode == AlgId::NULL) {
                    return Err(WireError::Mode);
                }
                Ok(SymDefObject {
                    algorithm,
                    key_bits,
                    mode,
                })
            }
            _ => Err(WireError::Symmetric),
        }
    }
}

impl Marshal for SymDefObject {
    fn marshal(&self, w: &mut Writer) {
        w.write(&self.algorithm);
        if self.algorithm != AlgId::NULL {
            w.u16(self.key_bits);
            w.write(&self.mode);
        }
    }
}

/// TPMT_SYM_DEF(+): a session's symmetric algorithm for parameter
/// encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymDef {
    /// TPM_ALG_NULL.
    Null,
    /// TPM_ALG_AES with keyBits and mode.
    Aes {
        /// keyBits.
        key_bits: u16,
        /// mode.
        mode: AlgId,
    },
    /// TPM_ALG_XOR with its hash algorithm.
    Xor {
        /// keyBits.xor: the hash used by the XOR mask KDF.
        hash: AlgId,
    },
}

impl Unmarshal for SymDef {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        match AlgId(r.u16()?) {
            AlgId::NULL => Ok(SymDef::Null),
            AlgId::AES => {
                let key_bits = r.u16()?;
                if !profile::AES_KEY_BITS.contains(&key_bits) {
                    return Err(WireError::Value);
                }
                let mode = AlgId(r.u16()?);
                if !(profile::SYM_MODES.contains(&mode) || mode == AlgId::NULL) {
                    return Err(WireError::Mode);
                }
                Ok(SymDef::Aes { key_bits, mode })
            }
            AlgId::XOR => Ok(SymDef::Xor {
                hash: read_hash_alg(r, false)?,
            }),
            _ => Err(WireError::Symmetric),
        }
    }
}

impl Marshal for SymDef {
    fn marshal(&self, w: &mut Writer) {
        match self {
            SymDef::Null => w.write(&AlgId::NULL),
            SymDef::Aes { key_bits, mode } => {
                w.write(&AlgId::AES);
                w.u16(*key_bits);
                w.write(mode);
            }
            SymDef::Xor { hash } => {
                w.write(&AlgId::XOR);
                w.write(hash);
            }
        }
    }
}

/// TPM2B_ENCRYPTED_SECRET (room for an RSA-4096 encrypted seed).
pub type EncryptedSecret = Tpm2b<512>;

/// MAX_CONTEXT_SIZE: capacity of TPM2B_CONTEXT_DATA.
pub const MAX_CONTEXT_SIZE: usize = 2048;
/// TPM2B_CONTEXT_DATA.
pub type ContextData = Tpm2b<MAX_CONTEXT_SIZE>;

/// TPMS_CONTEXT: a saved object or session context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// sequence.
    pub sequence: u64,
    /// savedHandle (TPMI_DH_SAVED).
    pub saved_handle: u32,
    /// hierarchy (TPMI_RH_HIERARCHY+).
    pub hierarchy: u32,
    /// contextBlob.
    pub blob: ContextData,
}

/// TPMI_DH_SAVED: a session handle or one of the three saved-object
/// handles (0x80000000 object, 0x80000001 sequence, 0x80000002 stClear).
pub fn is_saved_handle(h: u32) -> bool {
    use crate::constants::handle::{HT_HMAC_SESSION, HT_POLICY_SESSION, handle_type};
    matches!(handle_type(h), HT_HMAC_SESSION | HT_POLICY_SESSION)
        || (0x8000_0000..=0x8000_0002).contains(&h)
}

impl Marshal for Context {
    fn marshal(&self, w: &mut Writer) {
        w.u64(self.sequence);
        w.u32(self.saved_handle);
        w.u32(self.hierarchy);
        w.write(&self.blob);
    }
}

impl Unmarshal for Context {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let sequence = r.u64()?;
        let saved_handle = r.u32()?;
        if !is_saved_handle(saved_handle) {
            return Err(WireError::Value);
        }
        let hierarchy = read_hierarchy(r, true)?;
        let blob = ContextData::unmarshal(r)?;
        Ok(Context {
            sequence,
            saved_handle,
            hierarchy,
            blob,
        })
    }
}

/// A scheme (TPMT_RSA_SCHEME, TPMT_ECC_SCHEME, TPMT_KDF_SCHEME,
/// TPMT_KEYEDHASH_SCHEME): the selector and whatever details it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheme {
    /// scheme (TPM_ALG_NULL for none).
    pub scheme: AlgId,
    /// details.hashAlg, for schemes that have one.
    pub hash_alg: Option<AlgId>,
    /// details.kdf, for XOR.
    pub kdf: Option<AlgId>,
}

impl Scheme {
    /// The NULL scheme.
    pub const NULL: Scheme = Scheme {
        scheme: AlgId::NULL,
        hash_alg: None,
        kdf: None,
    };

    fn read_with(
        r: &mut Reader<'_>,
        allowed: &[AlgId],
        unsupported: WireError,
        allow_null: bool,
    ) -> Result<Self, WireError> {
        let scheme = AlgId(r.u16()?);
        if scheme == AlgId::NULL && allow_null {
            return Ok(Scheme::NULL);
        }
        if !allowed.contains(&scheme) {
            return Err(unsupported);
        }
        let hash_alg = match scheme {
            AlgId::RSAES => None,
            _ => Some(read_hash_alg(r, false)?),
        };
        let kdf = if scheme == AlgId::XOR {
            Some(read_kdf(r, false)?)
        } else {
            None
        };
        Ok(Scheme {
            scheme,
            hash_alg,
            kdf,
        })
    }

    /// TPMT_RSA_SCHEME+.
    pub fn read_rsa(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Self::read_with(r, &profile::RSA_SCHEMES, WireError::Value, true)
    }

    /// TPMT_ECC_SCHEME+.
    pub fn read_ecc(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Self::read_with(r, &profile::ECC_SCHEMES, WireError::Scheme, true)
    }

    /// TPMT_KDF_SCHEME+.
    pub fn read_kdf(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Self::read_with(r, &profile::KDFS, WireError::Kdf, true)
    }

    /// TPMT_KEYEDHASH_SCHEME+.
    pub fn read_keyedhash(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Self::read_with(r, &[AlgId::HMAC, AlgId::XOR], WireError::Value, true)
    }
}

/// TPMI_ALG_KDF(+).
fn read_kdf(r: &mut Reader<'_>, allow_null: bool) -> Result<AlgId, WireError> {
    let kdf = AlgId(r.u16()?);
    if profile::KDFS.contains(&kdf) || (allow_null && kdf == AlgId::NULL) {
        Ok(kdf)
    } else {
        Err(WireError::Kdf)
    }
}

impl Marshal for Scheme {
    fn marshal(&self, w: &mut Writer) {
        w.write(&self.scheme);
        if let Some(h) = self.hash_alg {
            w.write(&h);
        }
        if let Some(k) = self.kdf {
            w.write(&k);
        }
    }
}

/// TPMT_PUBLIC_PARMS: the algorithm parameters of a public area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicParms {
    /// TPM_ALG_KEYEDHASH: TPMS_KEYEDHASH_PARMS.
    KeyedHash {
        /// scheme.
        scheme: Scheme,
    },
    /// TPM_ALG_SYMCIPHER: TPMS_SYMCIPHER_PARMS.
    SymCipher {
        /// sym.
        sym: SymDefObject,
    },
    /// TPM_ALG_RSA: TPMS_RSA_PARMS.
    Rsa {
        /// symmetric.
        symmetric: SymDefObject,
        /// scheme.
        scheme: Scheme,
        /// keyBits.
        key_bits: u16,
        /// exponent (0 = 2^16 + 1).
        exponent: u32,
    },
    /// TPM_ALG_ECC: TPMS_ECC_PARMS.
    Ecc {
        /// symmetric.
        symmetric: SymDefObject,
        /// scheme.
        scheme: Scheme,
        /// curveID.
        curve: EccCurve,
        /// kdf.
        kdf: Scheme,
    },
}

impl PublicParms {
    /// The object type (TPMI_ALG_PUBLIC) these parameters belong to.
    pub fn type_alg(&self) -> AlgId {
        match self {
            PublicParms::KeyedHash { .. } => AlgId::KEYEDHASH,
            PublicParms::SymCipher { .. } => AlgId::SYMCIPHER,
            PublicParms::Rsa { .. } => AlgId::RSA,
            PublicParms::Ecc { .. } => AlgId::ECC,
        }
    }

    /// Reads TPMU_PUBLIC_PARMS selected by `alg` (a TPMI_ALG_PUBLIC).
    pub fn read_body(alg: AlgId, r: &mut Reader<'_>) -> Result<Self, WireError> {
        match alg {
            AlgId::KEYEDHASH => Ok(PublicParms::KeyedHash {
                scheme: Scheme::read_keyedhash(r)?,
            }),
            AlgId::SYMCIPHER => Ok(PublicParms::SymCipher {
                sym: SymDefObject::read(r, false)?,
            }),
            AlgId::RSA => {
                let symmetric = SymDefObject::read(r, true)?;
                let scheme = Scheme::read_rsa(r)?;
                let key_bits = r.u16()?;
                if !profile::RSA_KEY_BITS.contains(&key_bits) {
                    return Err(WireError::Value);
                }
                let exponent = r.u32()?;
                Ok(PublicParms::Rsa {
                    symmetric,
                    scheme,
                    key_bits,
                    exponent,
                })
            }
            AlgId::ECC => {
                let symmetric = SymDefObject::read(r, true)?;
                let scheme = Scheme::read_ecc(r)?;
                let curve = EccCurve(r.u16()?);
                if !profile::ECC_CURVES.contains(&curve) {
                    return Err(WireError::Curve);
                }
                let kdf = Scheme::read_kdf(r)?;
                Ok(PublicParms::Ecc {
                    symmetric,
                    scheme,
                    curve,
                    kdf,
                })
            }
            _ => Err(WireError::Type),
        }
    }

    /// Writes TPMU_PUBLIC_PARMS without the selector.
    pub fn marshal_body(&self, w: &mut Writer) {
        match self {
            PublicParms::KeyedHash { scheme } => w.write(scheme),
            PublicParms::SymCipher { sym } => w.write(sym),
            PublicParms::Rsa {
                symmetric,
                scheme,
                key_bits,
                exponent,
            } => {
                w.write(symmetric);
                w.write(scheme);
                w.u16(*key_bits);
                w.u32(*exponent);
            }
            PublicParms::Ecc {
                symmetric,
                scheme,
                curve,
                kdf,
            } => {
                w.write(symmetric);
                w.write(scheme);
                w.write(curve);
                w.write(kdf);
            }
        }
    }
}

impl Unmarshal for PublicParms {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let alg = AlgId(r.u16()?);
        Self::read_body(alg, r)
    }
}

impl Marshal for PublicParms {
    fn marshal(&self, w: &mut Writer) {
        w.write(&self.type_alg());
        self.marshal_body(w);
    }
}

/// TPM2B_MAX_NV_BUFFER.
pub type MaxNvBuffer = Tpm2b<{ profile::MAX_NV_BUFFER_SIZE }>;
/// TPM2B_NAME (a handle or an algorithm ID and digest).
pub type Name = Tpm2b<{ 2 + profile::MAX_DIGEST_SIZE }>;

/// TPMA_NV bits and the TPM_NT field.
pub mod nv_attr {
    /// TPMA_NV_PPWRITE.
    pub const PPWRITE: u32 = 1 << 0;
    /// TPMA_NV_OWNERWRITE.
    pub const OWNERWRITE: u32 = 1 << 1;
    /// TPMA_NV_AUTHWRITE.
    pub const AUTHWRITE: u32 = 1 << 2;
    /// TPMA_NV_POLICYWRITE.
    pub const POLICYWRITE: u32 = 1 << 3;
    /// Shift of the TPM_NT field.
    pub const TPM_NT_SHIFT: u32 = 4;
    /// Mask of the TPM_NT field.
    pub const TPM_NT_MASK: u32 = 0xF << TPM_NT_SHIFT;
    /// TPMA_NV_POLICY_DELETE.
    pub const POLICY_DELETE: u32 = 1 << 10;
    /// TPMA_NV_WRITELOCKED.
    pub const WRITELOCKED: u32 = 1 << 11;
    /// TPMA_NV_WRITEALL.
    pub const WRITEALL: u32 = 1 << 12;
    /// TPMA_NV_WRITEDEFINE.
    pub const WRITEDEFINE: u32 = 1 << 13;
    /// TPMA_NV_WRITE_STCLEAR.
    pub const WRITE_STCLEAR: u32 = 1 << 14;
    /// TPMA_NV_GLOBALLOCK.
    pub const GLOBALLOCK: u32 = 1 << 15;
    /// TPMA_NV_PPREAD.
    pub const PPREAD: u32 = 1 << 16;
    /// TPMA_NV_OWNERREAD.
    pub const OWNERREAD: u32 = 1 << 17;
    /// TPMA_NV_AUTHREAD.
    pub const AUTHREAD: u32 = 1 << 18;
    /// TPMA_NV_POLICYREAD.
    pub const POLICYREAD: u32 = 1 << 19;
    /// TPMA_NV_NO_DA.
    pub const NO_DA: u32 = 1 << 25;
    /// TPMA_NV_ORDERLY.
    pub const ORDERLY: u32 = 1 << 26;
    /// TPMA_NV_CLEAR_STCLEAR.
    pub const CLEAR_STCLEAR: u32 = 1 << 27;
    /// TPMA_NV_READLOCKED.
    pub const READLOCKED: u32 = 1 << 28;
    /// TPMA_NV_WRITTEN.
    pub const WRITTEN: u32 = 1 << 29;
    /// TPMA_NV_PLATFORMCREATE.
    pub const PLATFORMCREATE: u32 = 1 << 30;
    /// TPMA_NV_READ_STCLEAR.
    pub const READ_STCLEAR: u32 = 1 << 31;
    /// Reserved bits (8, 9 and 20–24).
    pub const RESERVED: u32 = (0x3 << 8) | (0x1F << 20);
    /// TPM_NT_ORDINARY.
    pub const NT_ORDINARY: u32 = 0;
    /// TPM_NT_COUNTER.
    pub const NT_COUNTER: u32 = 1;
    /// TPM_NT_BITS.
    pub const NT_BITS: u32 = 2;
    /// TPM_NT_EXTEND.
    pub const NT_EXTEND: u32 = 4;
    /// TPM_NT_PIN_FAIL.
    pub const NT_PIN_FAIL: u32 = 8;
    /// TPM_NT_PIN_PASS.
    pub const NT_PIN_PASS: u32 = 9;

    /// The TPM_NT of an attribute word.
    pub fn nt(attributes: u32) -> u32 {
        (attributes & TPM_NT_MASK) >> TPM_NT_SHIFT
    }
}

/// First and last NV index handle (TPMI_RH_NV_INDEX).
pub const NV_INDEX_FIRST: u32 = 0x0100_0000;
/// Last NV index handle.
pub const NV_INDEX_LAST: u32 = 0x01FF_FFFF;

/// TPMI_RH_NV_INDEX.
pub fn read_nv_index(r: &mut Reader<'_>) -> Result<u32, WireError> {
    let h = r.u32()?;
    if (NV_INDEX_FIRST..=NV_INDEX_LAST).contains(&h) {
        Ok(h)
    } else {
        Err(WireError::Value)
    }
}

/// TPMS_NV_PUBLIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvPublic {
    /// nvIndex.
    pub nv_index: u32,
    /// nameAlg.
    pub name_alg: AlgId,
    /// attributes (TPMA_NV).
    pub attributes: u32,
    /// authPolicy.
    pub auth_policy: Digest,
    /// dataSize.
    pub data_size: u16,
}

impl Marshal for NvPublic {
    fn marshal(&self, w: &mut Writer) {
        w.u32(self.nv_index);
        w.write(&self.name_alg);
        w.u32(self.attributes);
        w.write(&self.auth_policy);
        w.u16(self.data_size);
    }
}

impl Unmarshal for NvPublic {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let nv_index = read_nv_index(r)?;
        let name_alg = read_hash_alg(r, false)?;
        let attributes = r.u32()?;
        if attributes & nv_attr::RESERVED != 0 {
            return Err(WireError::ReservedBits);
        }
        let auth_policy = Digest::unmarshal(r)?;
        let data_size = r.u16()?;
        Ok(NvPublic {
            nv_index,
            name_alg,
            attributes,
            auth_policy,
            data_size,
        })
    }
}

/// TPM2B_NV_PUBLIC: a TPMS_NV_PUBLIC with its size, which must match it
/// exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tpm2bNvPublic(pub NvPublic);

impl Marshal for Tpm2bNvPublic {
    fn marshal(&self, w: &mut Writer) {
        w.sized_u16(|w| self.0.marshal(w));
    }
}

impl Unmarshal for Tpm2bNvPublic {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let size = usize::from(r.u16()?);
        if size == 0 {
            return Err(WireError::Size);
        }
        let mut sub = r.sub(size)?;
        let public = NvPublic::unmarshal(&mut sub)?;
        sub.finish()?;
        Ok(Tpm2bNvPublic(public))
    }
}

tpm_struct! {
    /// TPMS_ALG_PROPERTY.
    pub struct AlgProperty {
        /// alg.
        pub alg: AlgId,
        /// algProperties (TPMA_ALGORITHM).
        pub attributes: u32,
    }
}

tpm_struct! {
    /// TPMS_TAGGED_PROPERTY.
    pub struct TaggedProperty {
        /// property (TPM_PT).
        pub property: u32,
        /// value.
        pub value: u32,
    }
}

/// TPMS_TAGGED_PCR_SELECT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaggedPcrSelect {
    /// tag (TPM_PT_PCR).
    pub tag: u32,
    /// pcrSelect (sizeofSelect octets).
    pub select: Vec<u8>,
}

impl Marshal for TaggedPcrSelect {
    fn marshal(&self, w: &mut Writer) {
        w.u32(self.tag);
        w.u8(u8::try_from(self.select.len()).unwrap_or(u8::MAX));
        w.bytes(&self.select);
    }
}

impl Unmarshal for TaggedPcrSelect {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let tag = r.u32()?;
        let n = usize::from(r.u8()?);
        if !(profile::PCR_SELECT_MIN..=profile::PCR_SELECT_MAX).contains(&n) {
            return Err(WireError::Value);
        }
        Ok(TaggedPcrSelect {
            tag,
            select: r.take(n)?.to_vec(),
        })
    }
}

tpm_struct! {
    /// TPMS_TAGGED_POLICY.
    pub struct TaggedPolicy {
        /// handle.
        pub handle: u32,
        /// policyHash.
        pub policy_hash: Ha,
    }
}

/// TPMU_CAPABILITIES, selected by TPM_CAP: the data of a
/// TPMS_CAPABILITY_DATA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CapabilityData {
    /// TPM_CAP_ALGS: TPML_ALG_PROPERTY.
    Algs(Vec<AlgProperty>),
    /// TPM_CAP_HANDLES: TPML_HANDLE.
    Handles(Vec<u32>),
    /// TPM_CAP_COMMANDS: TPML_CCA (TPMA_CC values).
    Commands(Vec<u32>),
    /// TPM_CAP_PP_COMMANDS: TPML_CC.
    PpCommands(Vec<u32>),
    /// TPM_CAP_AUDIT_COMMANDS: TPML_CC.
    AuditCommands(Vec<u32>),
    /// TPM_CAP_PCRS: TPML_PCR_SELECTION.
    Pcrs(PcrSelectionList),
    /// TPM_CAP_TPM_PROPERTIES: TPML_TAGGED_TPM_PROPERTY.
    TpmProperties(Vec<TaggedProperty>),
    /// TPM_CAP_PCR_PROPERTIES: TPML_TAGGED_PCR_PROPERTY.
    PcrProperties(Vec<TaggedPcrSelect>),
    /// TPM_CAP_ECC_CURVES: TPML_ECC_CURVE.
    EccCurves(Vec<EccCurve>),
    /// TPM_CAP_AUTH_POLICIES: TPML_TAGGED_POLICY.
    AuthPolicies(Vec<TaggedPolicy>),
    /// TPM_CAP_ACT: TPML_ACT_DATA (this TPM has no ACTs: always empty).
    Act,
}

impl CapabilityData {
    /// The TPM_CAP selector of this data.
    pub fn capability(&self) -> Capability {
        match self {
            CapabilityData::Algs(_) => Capability::ALGS,
            CapabilityData::Handles(_) => Capability::HANDLES,
            CapabilityData::Commands(_) => Capability::COMMANDS,
            CapabilityData::PpCommands(_) => Capability::PP_COMMANDS,
            CapabilityData::AuditCommands(_) => Capability::AUDIT_COMMANDS,
            CapabilityData::Pcrs(_) => Capability::PCRS,
            CapabilityData::TpmProperties(_) => Capability::TPM_PROPERTIES,
            CapabilityData::PcrProperties(_) => Capability::PCR_PROPERTIES,
            CapabilityData::EccCurves(_) => Capability::ECC_CURVES,
            CapabilityData::AuthPolicies(_) => Capability::AUTH_POLICIES,
            CapabilityData::Act => Capability::ACT,
        }
    }
}

impl Marshal for CapabilityData {
    fn marshal(&self, w: &mut Writer) {
        w.write(&self.capability());
        match self {
            CapabilityData::Algs(v) => write_list(w, v),
            CapabilityData::Handles(v)
            | CapabilityData::Commands(v)
            | CapabilityData::PpCommands(v)
            | CapabilityData::AuditCommands(v) => write_list(w, v),
            CapabilityData::Pcrs(v) => w.write(v),
            CapabilityData::TpmProperties(v) => write_list(w, v),
            CapabilityData::PcrProperties(v) => write_list(w, v),
            CapabilityData::EccCurves(v) => write_list(w, v),
            CapabilityData::AuthPolicies(v) => write_list(w, v),
            CapabilityData::Act => w.u32(0),
        }
    }
}

impl Unmarshal for CapabilityData {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        // Bounds: what fits in MAX_CAP_BUFFER.
        let max = profile::MAX_CAP_BUFFER;
        Ok(match Capability(r.u32()?) {
            Capability::ALGS => CapabilityData::Algs(read_list(r, max / 6)?),
            Capability::HANDLES => CapabilityData::Handles(read_list(r, max / 4)?),
            Capability::COMMANDS => CapabilityData::Commands(read_list(r, max / 4)?),
            Capability::PP_COMMANDS => CapabilityData::PpCommands(read_list(r, max / 4)?),
            Capability::AUDIT_COMMANDS => CapabilityData::AuditCommands(read_list(r, max / 4)?),
            Capability::PCRS => CapabilityData::Pcrs(PcrSelectionList::unmarshal(r)?),
            Capability::TPM_PROPERTIES => CapabilityData::TpmProperties(read_list(r, max / 8)?),
            Capability::PCR_PROPERTIES => CapabilityData::PcrProperties(read_list(r, max / 5)?),
            Capability::ECC_CURVES => CapabilityData::EccCurves(read_list(r, max / 2)?),
            Capability::AUTH_POLICIES => CapabilityData::AuthPolicies(read_list(r, max / 6)?),
            Capability::ACT => {
                if r.u32()? != 0 {
                    return Err(WireError::Size);
                }
                CapabilityData::Act
            }
            _ => return Err(WireError::Selector),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpm2b_checks_capacity_before_allocating() {
        // A size of 0xffff on a 64-byte TPM2B is refused from the size alone.
        assert_eq!(Digest::from_bytes(&[0xff, 0xff]), Err(WireError::Size));
        assert_eq!(Digest::from_bytes(&[0x00, 0x41]), Err(WireError::Size));
        assert_eq!(
            Digest::from_bytes(&[0x00, 0x02, 1]),
            Err(WireError::Insufficient)
        );
        let d = Digest::from_bytes(&[0x00, 0x02, 1, 2]).unwrap();
        assert_eq!(d.as_bytes(), &[1, 2]);
        assert_eq!(d.to_bytes(), vec![0, 2, 1, 2]);
        assert!(Digest::new(&[0; 65]).is_err());
    }

    #[test]
    fn pcr_selection_round_trip_and_limits() {
        let sel = PcrSelectionList(vec![
            PcrSelection::new(AlgId::SHA256, [0, 7, 16, 23]),
            PcrSelection::new(AlgId::SHA1, [1]),
        ]);
        let bytes = sel.to_bytes();
        assert_eq!(
            bytes,
            vec![
                0, 0, 0, 2, 0, 0x0b, 3, 0x81, 0x00, 0x81, 0, 0x04, 3, 0x02, 0, 0
            ]
        );
        let back = PcrSelectionList::from_bytes(&bytes).unwrap();
        assert_eq!(back, sel);
        assert_eq!(back.0[0].pcrs().collect::<Vec<_>>(), vec![0, 7, 16, 23]);
        // sizeofSelect below PCR_SELECT_MIN / above PCR_SELECT_MAX.
        assert_eq!(
            PcrSelection::from_bytes(&[0, 0x0b, 2, 0, 0]),
            Err(WireError::Value)
        );
        assert_eq!(
            PcrSelection::from_bytes(&[0, 0x0b, 4, 0, 0, 0, 0]),
            Err(WireError::Value)
        );
        // Unknown hash.
        assert_eq!(
            PcrSelection::from_bytes(&[0, 0x12, 3, 0, 0, 0]),
            Err(WireError::Hash)
        );
        // More selections than banks.
        assert_eq!(
            PcrSelectionList::from_bytes(&[0, 0, 0, 5]),
            Err(WireError::Size)
        );
        assert_eq!(
            PcrSelectionList::from_bytes(&[0xff, 0xff, 0xff, 0xff]),
            Err(WireError::Size)
        );
    }

    #[test]
    fn digest_values_take_the_algorithm_size() {
        let mut bytes = vec![0, 0, 0, 1, 0, 0x04];
        bytes.extend([0xaa; 20]);
        let v = DigestValues::from_bytes(&bytes).unwrap();
        assert_eq!(v.0[0].digest.len(), 20);
        assert_eq!(v.to_bytes(), bytes);
        bytes.pop();
        assert_eq!(
            DigestValues::from_bytes(&bytes),
            Err(WireError::Insufficient)
        );
    }

    #[test]
    fn auth_command_rejects_reserved_bits() {
        let ok = [0x40, 0, 0, 9, 0, 0, 0x01, 0, 0];
        let a = AuthCommand::from_bytes(&ok).unwrap();
        assert_eq!(a.session_handle, 0x4000_0009);
        assert_eq!(a.to_bytes(), ok.to_vec());
        let bad = [0x40, 0, 0, 9, 0, 0, 0x08, 0, 0];
        assert_eq!(AuthCommand::from_bytes(&bad), Err(WireError::ReservedBits));
    }

    #[test]
    fn public_parms_validate_against_the_profile() {
        // rsa2048, NULL symmetric and scheme, as tpm2_testparms sends it.
        let rsa = [0, 1, 0, 0x10, 0, 0x10, 0x08, 0x00, 0, 0, 0, 0];
        let p = PublicParms::from_bytes(&rsa).unwrap();
        assert_eq!(p.to_bytes(), rsa.to_vec());
        let rsa1024 = [0, 1, 0, 0x10, 0, 0x10, 0x04, 0x00, 0, 0, 0, 0];
        assert_eq!(PublicParms::from_bytes(&rsa1024), Err(WireError::Value));
        let ecc256 = [0, 0x23, 0, 0x10, 0, 0x10, 0, 3, 0, 0x10];
        assert!(PublicParms::from_bytes(&ecc256).is_ok());
        let ecc521 = [0, 0x23, 0, 0x10, 0, 0x10, 0, 5, 0, 0x10];
        assert_eq!(PublicParms::from_bytes(&ecc521), Err(WireError::Curve));
        let aes128cfb = [0, 0x25, 0, 6, 0, 128, 0, 0x43];
        assert!(PublicParms::from_bytes(&aes128cfb).is_ok());
        let aes192 = [0, 0x25, 0, 6, 0, 192, 0, 0x43];
        assert_eq!(PublicParms::from_bytes(&aes192), Err(WireError::Value));
        let camellia = [0, 0x25, 0, 0x26, 0, 128, 0, 0x43];
        assert_eq!(
            PublicParms::from_bytes(&camellia),
            Err(WireError::Symmetric)
        );
        let bad_type = [0, 0x99];
        assert_eq!(PublicParms::from_bytes(&bad_type), Err(WireError::Type));
        let hmac_sha256 = [0, 8, 0, 5, 0, 0x0b];
        assert!(PublicParms::from_bytes(&hmac_sha256).is_ok());
        let xor_no_kdf = [0, 8, 0, 0x0a, 0, 0x0b, 0, 0x10];
        assert_eq!(PublicParms::from_bytes(&xor_no_kdf), Err(WireError::Kdf));
    }

    #[test]
    fn capability_data_round_trip() {
        let data = CapabilityData::TpmProperties(vec![TaggedProperty {
            property: 0x100,
            value: 0x322e_3000,
        }]);
        let bytes = data.to_bytes();
        assert_eq!(
            bytes,
            vec![0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 1, 0, 0x32, 0x2e, 0x30, 0]
        );
        assert_eq!(CapabilityData::from_bytes(&bytes).unwrap(), data);
        assert_eq!(
            CapabilityData::from_bytes(&[0, 0, 0, 0x55, 0, 0, 0, 0]),
            Err(WireError::Selector)
        );
    }
}
