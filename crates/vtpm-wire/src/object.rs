//! Part 2 structures of objects and the commands that use them: public and
//! sensitive areas, creation data, tickets, signatures and schemes, ECC
//! points, and the TPM2Bs that carry key material.

use crate::codec::{Marshal, Reader, Unmarshal, WireError, Writer};
use crate::constants::{AlgId, StructureTag};
use crate::profile;
use crate::tpm_struct;
use crate::types::{Auth, Data, Digest, Name, PcrSelectionList, PublicParms, SensitiveData, Tpm2b};
use crate::types::{read_hash_alg, read_hierarchy};

/// MAX_RSA_KEY_BYTES (RSA-4096).
pub const MAX_RSA_KEY_BYTES: usize = 512;
/// MAX_ECC_KEY_BYTES (P-384).
pub const MAX_ECC_KEY_BYTES: usize = 48;
/// MAX_SYM_KEY_BYTES (AES-256).
pub const MAX_SYM_KEY_BYTES: usize = 32;
/// Capacity of TPM2B_PRIVATE.
pub const MAX_PRIVATE: usize = 1024;

/// TPM2B_PUBLIC_KEY_RSA.
pub type PublicKeyRsa = Tpm2b<MAX_RSA_KEY_BYTES>;
/// TPM2B_PRIVATE_KEY_RSA (one prime).
pub type PrivateKeyRsa = Tpm2b<{ MAX_RSA_KEY_BYTES / 2 }>;
/// TPM2B_ECC_PARAMETER.
pub type EccParameter = Tpm2b<MAX_ECC_KEY_BYTES>;
/// TPM2B_SYM_KEY.
pub type SymKey = Tpm2b<MAX_SYM_KEY_BYTES>;
/// TPM2B_IV.
pub type Iv = Tpm2b<16>;
/// TPM2B_PRIVATE: an encrypted sensitive area with its integrity value.
pub type Private = Tpm2b<MAX_PRIVATE>;
/// TPM2B_ID_OBJECT: a credential blob (integrity HMAC and encIdentity).
pub type IdObject = Tpm2b<{ 2 * (2 + profile::MAX_DIGEST_SIZE) }>;

/// TPMA_OBJECT bits.
pub mod object_attr {
    /// fixedTPM.
    pub const FIXED_TPM: u32 = 1 << 1;
    /// stClear.
    pub const ST_CLEAR: u32 = 1 << 2;
    /// fixedParent.
    pub const FIXED_PARENT: u32 = 1 << 4;
    /// sensitiveDataOrigin.
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    /// userWithAuth.
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    /// adminWithPolicy.
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    /// noDA.
    pub const NO_DA: u32 = 1 << 10;
    /// encryptedDuplication.
    pub const ENCRYPTED_DUPLICATION: u32 = 1 << 11;
    /// restricted.
    pub const RESTRICTED: u32 = 1 << 16;
    /// decrypt.
    pub const DECRYPT: u32 = 1 << 17;
    /// sign / encrypt.
    pub const SIGN: u32 = 1 << 18;
    /// Reserved bits (0, 3, 8, 9, 12–15, 19–31; x509sign is not
    /// implemented).
    pub const RESERVED: u32 = 1 | (1 << 3) | (0x3 << 8) | (0xF << 12) | (0x1FFF << 19);
}

/// TPMU_PUBLIC_ID: the unique field of a public area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicId {
    /// keyedHash: a digest.
    KeyedHash(Digest),
    /// sym: a digest.
    Sym(Digest),
    /// rsa: the modulus.
    Rsa(PublicKeyRsa),
    /// ecc: the public point.
    Ecc(EccPoint),
}

impl PublicId {
    /// Reads the member selected by `alg`.
    pub fn read_body(alg: AlgId, r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(match alg {
            AlgId::KEYEDHASH => PublicId::KeyedHash(Digest::unmarshal(r)?),
            AlgId::SYMCIPHER => PublicId::Sym(Digest::unmarshal(r)?),
            AlgId::RSA => PublicId::Rsa(PublicKeyRsa::unmarshal(r)?),
            AlgId::ECC => PublicId::Ecc(EccPoint::unmarshal(r)?),
            _ => return Err(WireError::Type),
        })
    }
}

impl Marshal for PublicId {
    fn marshal(&self, w: &mut Writer) {
        match self {
            PublicId::KeyedHash(d) | PublicId::Sym(d) => w.write(d),
            PublicId::Rsa(n) => w.write(n),
            PublicId::Ecc(p) => w.write(p),
        }
    }
}

tpm_struct! {
    /// TPMS_ECC_POINT.
    pub struct EccPoint {
        /// x.
        pub x: EccParameter,
        /// y.
        pub y: EccParameter,
    }
}

/// TPM2B_ECC_POINT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tpm2bEccPoint(pub EccPoint);

impl Marshal for Tpm2bEccPoint {
    fn marshal(&self, w: &mut Writer) {
        w.sized_u16(|w| w.write(&self.0));
    }
}

impl Unmarshal for Tpm2bEccPoint {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let size = usize::from(r.u16()?);
        if size == 0 {
            return Err(WireError::Size);
        }
        let mut sub = r.sub(size)?;
        let p = EccPoint::unmarshal(&mut sub)?;
        sub.finish()?;
        Ok(Tpm2bEccPoint(p))
    }
}

/// TPMT_PUBLIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Public {
    /// nameAlg (TPM_ALG_NULL only for some external objects).
    pub name_alg: AlgId,
    /// objectAttributes (TPMA_OBJECT).
    pub attributes: u32,
    /// authPolicy.
    pub auth_policy: Digest,
    /// type and parameters.
    pub parms: PublicParms,
    /// unique.
    pub unique: PublicId,
}

impl Public {
    /// The object's type.
    pub fn type_alg(&self) -> AlgId {
        self.parms.type_alg()
    }

    /// Is attribute `bit` (an [`object_attr`] constant) set?
    pub fn has(&self, bit: u32) -> bool {
        self.attributes & bit != 0
    }

    /// The marshalled TPMT_PUBLIC.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.write(self);
        w.into_vec()
    }
}

impl Marshal for Public {
    fn marshal(&self, w: &mut Writer) {
        w.write(&self.type_alg());
        w.write(&self.name_alg);
        w.u32(self.attributes);
        w.write(&self.auth_policy);
        self.parms.marshal_body(w);
        w.write(&self.unique);
    }
}

impl Unmarshal for Public {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let alg = AlgId(r.u16()?);
        if !matches!(
            alg,
            AlgId::KEYEDHASH | AlgId::SYMCIPHER | AlgId::RSA | AlgId::ECC
        ) {
            return Err(WireError::Type);
        }
        let name_alg = read_hash_alg(r, true)?;
        let attributes = r.u32()?;
        if attributes & object_attr::RESERVED != 0 {
            return Err(WireError::ReservedBits);
        }
        let auth_policy = Digest::unmarshal(r)?;
        let parms = PublicParms::read_body(alg, r)?;
        let unique = PublicId::read_body(alg, r)?;
        Ok(Public {
            name_alg,
            attributes,
            auth_policy,
            parms,
            unique,
        })
    }
}

/// TPM2B_PUBLIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tpm2bPublic(pub Public);

impl Marshal for Tpm2bPublic {
    fn marshal(&self, w: &mut Writer) {
        w.sized_u16(|w| w.write(&self.0));
    }
}

impl Unmarshal for Tpm2bPublic {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let size = usize::from(r.u16()?);
        if size == 0 {
            return Err(WireError::Size);
        }
        let mut sub = r.sub(size)?;
        let p = Public::unmarshal(&mut sub)?;
        sub.finish()?;
        Ok(Tpm2bPublic(p))
    }
}

/// TPMS_SENSITIVE_CREATE in its TPM2B.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SensitiveCreate {
    /// userAuth.
    pub user_auth: Auth,
    /// data.
    pub data: SensitiveData,
}

impl Marshal for SensitiveCreate {
    fn marshal(&self, w: &mut Writer) {
        w.sized_u16(|w| {
            w.write(&self.user_auth);
            w.write(&self.data);
        });
    }
}

impl Unmarshal for SensitiveCreate {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let size = usize::from(r.u16()?);
        if size == 0 {
            return Err(WireError::Size);
        }
        let mut sub = r.sub(size)?;
        let user_auth = Auth::unmarshal(&mut sub)?;
        let data = SensitiveData::unmarshal(&mut sub)?;
        sub.finish()?;
        Ok(SensitiveCreate { user_auth, data })
    }
}

/// TPMU_SENSITIVE_COMPOSITE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SensitiveComposite {
    /// rsa: one prime.
    Rsa(PrivateKeyRsa),
    /// ecc: the private scalar.
    Ecc(EccParameter),
    /// bits: HMAC key or sealed data.
    Bits(SensitiveData),
    /// sym: the symmetric key.
    Sym(SymKey),
}

/// TPMT_SENSITIVE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sensitive {
    /// authValue.
    pub auth_value: Auth,
    /// seedValue (for storage keys: the seed protecting children; for
    /// keyed-hash and symmetric objects: the obfuscation value of unique).
    pub seed_value: Digest,
    /// sensitiveType and sensitive.
    pub sensitive: SensitiveComposite,
}

impl Sensitive {
    /// sensitiveType.
    pub fn type_alg(&self) -> AlgId {
        match self.sensitive {
            SensitiveComposite::Rsa(_) => AlgId::RSA,
            SensitiveComposite::Ecc(_) => AlgId::ECC,
            SensitiveComposite::Bits(_) => AlgId::KEYEDHASH,
            SensitiveComposite::Sym(_) => AlgId::SYMCIPHER,
        }
    }
}

impl Marshal for Sensitive {
    fn marshal(&self, w: &mut Writer) {
        w.write(&self.type_alg());
        w.write(&self.auth_value);
        w.write(&self.seed_value);
        match &self.sensitive {
            SensitiveComposite::Rsa(b) => w.write(b),
            SensitiveComposite::Ecc(b) => w.write(b),
            SensitiveComposite::Bits(b) => w.write(b),
            SensitiveComposite::Sym(b) => w.write(b),
        }
    }
}

impl Unmarshal for Sensitive {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let alg = AlgId(r.u16()?);
        let auth_value = Auth::unmarshal(r)?;
        let seed_value = Digest::unmarshal(r)?;
        let sensitive = match alg {
            AlgId::RSA => SensitiveComposite::Rsa(PrivateKeyRsa::unmarshal(r)?),
            AlgId::ECC => SensitiveComposite::Ecc(EccParameter::unmarshal(r)?),
            AlgId::KEYEDHASH => SensitiveComposite::Bits(SensitiveData::unmarshal(r)?),
            AlgId::SYMCIPHER => SensitiveComposite::Sym(SymKey::unmarshal(r)?),
            _ => return Err(WireError::Type),
        };
        Ok(Sensitive {
            auth_value,
            seed_value,
            sensitive,
        })
    }
}

/// TPM2B_SENSITIVE (LoadExternal's inPrivate; size 0 means absent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tpm2bSensitive(pub Option<Sensitive>);

impl Unmarshal for Tpm2bSensitive {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let size = usize::from(r.u16()?);
        if size == 0 {
            return Ok(Tpm2bSensitive(None));
        }
        let mut sub = r.sub(size)?;
        let s = Sensitive::unmarshal(&mut sub)?;
        sub.finish()?;
        Ok(Tpm2bSensitive(Some(s)))
    }
}

impl Marshal for Tpm2bSensitive {
    fn marshal(&self, w: &mut Writer) {
        match &self.0 {
            None => w.u16(0),
            Some(s) => w.sized_u16(|w| w.write(s)),
        }
    }
}

/// TPMS_CREATION_DATA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreationData {
    /// pcrSelect.
    pub pcr_select: PcrSelectionList,
    /// pcrDigest.
    pub pcr_digest: Digest,
    /// locality (TPMA_LOCALITY).
    pub locality: u8,
    /// parentNameAlg.
    pub parent_name_alg: AlgId,
    /// parentName.
    pub parent_name: Name,
    /// parentQualifiedName.
    pub parent_qualified_name: Name,
    /// outsideInfo.
    pub outside_info: Data,
}

impl Marshal for CreationData {
    fn marshal(&self, w: &mut Writer) {
        w.write(&self.pcr_select);
        w.write(&self.pcr_digest);
        w.u8(self.locality);
        w.write(&self.parent_name_alg);
        w.write(&self.parent_name);
        w.write(&self.parent_qualified_name);
        w.write(&self.outside_info);
    }
}

impl Unmarshal for CreationData {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(CreationData {
            pcr_select: PcrSelectionList::unmarshal(r)?,
            pcr_digest: Digest::unmarshal(r)?,
            locality: r.u8()?,
            parent_name_alg: AlgId(r.u16()?),
            parent_name: Name::unmarshal(r)?,
            parent_qualified_name: Name::unmarshal(r)?,
            outside_info: Data::unmarshal(r)?,
        })
    }
}

/// A ticket (TPMT_TK_CREATION, TPMT_TK_VERIFIED, TPMT_TK_AUTH): a tag, a
/// hierarchy and an HMAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// tag.
    pub tag: StructureTag,
    /// hierarchy (TPMI_RH_HIERARCHY+).
    pub hierarchy: u32,
    /// digest.
    pub digest: Digest,
}

impl Ticket {
    /// Reads a ticket whose tag must be `tag`.
    pub fn read(r: &mut Reader<'_>, tag: StructureTag) -> Result<Self, WireError> {
        let t = StructureTag(r.u16()?);
        if t != tag {
            return Err(WireError::Tag);
        }
        Ok(Ticket {
            tag: t,
            hierarchy: read_hierarchy(r, true)?,
            digest: Digest::unmarshal(r)?,
        })
    }
}

impl Marshal for Ticket {
    fn marshal(&self, w: &mut Writer) {
        w.write(&self.tag);
        w.u32(self.hierarchy);
        w.write(&self.digest);
    }
}

/// TPMT_SIG_SCHEME(+) and the signing member of the key schemes: a scheme
/// and its hash (TPM_ALG_NULL when absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigScheme {
    /// scheme (RSASSA, RSAPSS, ECDSA, HMAC or NULL).
    pub scheme: AlgId,
    /// details.hashAlg.
    pub hash: AlgId,
}

impl SigScheme {
    /// TPM_ALG_NULL.
    pub const NULL: SigScheme = SigScheme {
        scheme: AlgId::NULL,
        hash: AlgId::NULL,
    };
}

impl Unmarshal for SigScheme {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let scheme = AlgId(r.u16()?);
        match scheme {
            AlgId::NULL => Ok(SigScheme::NULL),
            AlgId::RSASSA | AlgId::RSAPSS | AlgId::ECDSA | AlgId::HMAC => Ok(SigScheme {
                scheme,
                hash: read_hash_alg(r, false)?,
            }),
            _ => Err(WireError::Scheme),
        }
    }
}

impl Marshal for SigScheme {
    fn marshal(&self, w: &mut Writer) {
        w.write(&self.scheme);
        if self.scheme != AlgId::NULL {
            w.write(&self.hash);
        }
    }
}

/// TPMT_RSA_DECRYPT(+): RSAES, OAEP with a hash, or NULL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RsaDecryptScheme {
    /// scheme.
    pub scheme: AlgId,
    /// hash (OAEP only).
    pub hash: AlgId,
}

impl Unmarshal for RsaDecryptScheme {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let scheme = AlgId(r.u16()?);
        match scheme {
            AlgId::NULL | AlgId::RSAES => Ok(RsaDecryptScheme {
                scheme,
                hash: AlgId::NULL,
            }),
            AlgId::OAEP => Ok(RsaDecryptScheme {
                scheme,
                hash: read_hash_alg(r, false)?,
            }),
            _ => Err(WireError::Value),
        }
    }
}

impl Marshal for RsaDecryptScheme {
    fn marshal(&self, w: &mut Writer) {
        w.write(&self.scheme);
        if self.scheme == AlgId::OAEP {
            w.write(&self.hash);
        }
    }
}

/// TPMT_SIGNATURE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signature {
    /// TPM_ALG_NULL.
    Null,
    /// RSASSA or RSAPSS: hash and signature.
    Rsa {
        /// sigAlg (RSASSA or RSAPSS).
        scheme: AlgId,
        /// hash.
        hash: AlgId,
        /// sig.
        sig: PublicKeyRsa,
    },
    /// ECDSA: hash, r and s.
    Ecdsa {
        /// hash.
        hash: AlgId,
        /// signatureR.
        r: EccParameter,
        /// signatureS.
        s: EccParameter,
    },
    /// HMAC: TPMT_HA.
    Hmac {
        /// hashAlg.
        hash: AlgId,
        /// digest.
        digest: Vec<u8>,
    },
}

impl Marshal for Signature {
    fn marshal(&self, w: &mut Writer) {
        match self {
            Signature::Null => w.write(&AlgId::NULL),
            Signature::Rsa { scheme, hash, sig } => {
                w.write(scheme);
                w.write(hash);
                w.write(sig);
            }
            Signature::Ecdsa { hash, r, s } => {
                w.write(&AlgId::ECDSA);
                w.write(hash);
                w.write(r);
                w.write(s);
            }
            Signature::Hmac { hash, digest } => {
                w.write(&AlgId::HMAC);
                w.write(hash);
                w.bytes(digest);
            }
        }
    }
}

impl Unmarshal for Signature {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let alg = AlgId(r.u16()?);
        Ok(match alg {
            AlgId::NULL => Signature::Null,
            AlgId::RSASSA | AlgId::RSAPSS => Signature::Rsa {
                scheme: alg,
                hash: read_hash_alg(r, false)?,
                sig: PublicKeyRsa::unmarshal(r)?,
            },
            AlgId::ECDSA => Signature::Ecdsa {
                hash: read_hash_alg(r, false)?,
                r: EccParameter::unmarshal(r)?,
                s: EccParameter::unmarshal(r)?,
            },
            AlgId::HMAC => {
                let hash = read_hash_alg(r, false)?;
                let n = profile::digest_size(hash).ok_or(WireError::Hash)?;
                Signature::Hmac {
                    hash,
                    digest: r.take(n)?.to_vec(),
                }
            }
            _ => return Err(WireError::Scheme),
        })
    }
}

/// TPM2B_TEMPLATE read as a public area (CreateLoaded's inPublic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(pub Public);

impl Unmarshal for Template {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Tpm2bPublic::unmarshal(r).map(|p| Template(p.0))
    }
}

/// TPMS_ALGORITHM_DETAIL_ECC (TPM2_ECC_Parameters): a curve's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlgorithmDetailEcc {
    /// curveID.
    pub curve_id: crate::constants::EccCurve,
    /// keySize: the size of a key in bits.
    pub key_size: u16,
    /// kdf: the curve's KDF (TPM_ALG_NULL when it has none).
    pub kdf: crate::types::Scheme,
    /// sign: the curve's signing scheme (TPM_ALG_NULL when it has none).
    pub sign: crate::types::Scheme,
    /// p: the field prime (Fp) or the reduction polynomial.
    pub p: EccParameter,
    /// a: coefficient of the linear term.
    pub a: EccParameter,
    /// b: the constant term.
    pub b: EccParameter,
    /// gX: x of the base point G.
    pub g_x: EccParameter,
    /// gY: y of the base point G.
    pub g_y: EccParameter,
    /// n: the order of G.
    pub n: EccParameter,
    /// h: the cofactor.
    pub h: EccParameter,
}

impl Marshal for AlgorithmDetailEcc {
    fn marshal(&self, w: &mut Writer) {
        w.write(&self.curve_id);
        w.u16(self.key_size);
        w.write(&self.kdf);
        w.write(&self.sign);
        for v in [
            &self.p, &self.a, &self.b, &self.g_x, &self.g_y, &self.n, &self.h,
        ] {
            w.write(v);
        }
    }
}

impl Unmarshal for AlgorithmDetailEcc {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(AlgorithmDetailEcc {
            curve_id: crate::constants::EccCurve::unmarshal(r)?,
            key_size: r.u16()?,
            kdf: crate::types::Scheme::read_kdf(r)?,
            sign: crate::types::Scheme::read_ecc(r)?,
            p: EccParameter::unmarshal(r)?,
            a: EccParameter::unmarshal(r)?,
            b: EccParameter::unmarshal(r)?,
            g_x: EccParameter::unmarshal(r)?,
            g_y: EccParameter::unmarshal(r)?,
            n: EccParameter::unmarshal(r)?,
            h: EccParameter::unmarshal(r)?,
        })
    }
}

impl SigScheme {
    /// The signing scheme of a key's parameters (TPM_ALG_NULL for a
    /// symmetric cipher or a scheme without a hash).
    pub fn of_parms(parms: &PublicParms) -> SigScheme {
        let scheme = match parms {
            PublicParms::Rsa { scheme, .. }
            | PublicParms::Ecc { scheme, .. }
            | PublicParms::KeyedHash { scheme } => scheme,
            PublicParms::SymCipher { .. } => return SigScheme::NULL,
        };
        SigScheme {
            scheme: scheme.scheme,
            hash: scheme.hash_alg.unwrap_or(AlgId::NULL),
        }
    }
}

impl RsaDecryptScheme {
    /// TPM_ALG_NULL.
    pub const NULL: RsaDecryptScheme = RsaDecryptScheme {
        scheme: AlgId::NULL,
        hash: AlgId::NULL,
    };
}
