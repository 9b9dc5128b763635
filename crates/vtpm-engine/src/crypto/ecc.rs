//! Elliptic-curve cryptography over NIST P-256 and P-384: key derivation
//! and generation, ECDSA, ECDH and the curve parameters TPM2_ECC_Parameters
//! reports.
//!
//! Points travel as TPMS_ECC_POINT carries them: big-endian x and y. Points
//! this module produces always have coordinates of exactly
//! [`Curve::size`] bytes; points it accepts may have shorter coordinates
//! (leading zeros stripped), never longer ones.
//!
//! Deterministic scalar derivation for primary keys is part of vtpm's
//! compatibility contract and is described in docs/primary-keys.md:
//! read `size() + 8` bytes `c` from the stream, `d = (c mod (n − 1)) + 1`
//! (FIPS 186-5 §A.2.1, "extra random bits"). Nothing in that derivation may
//! change.

use crypto_bigint::{NonZero, U512};
use zeroize::Zeroizing;

/// Why an ECC operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EccError {
    /// A private scalar is zero, not below the order, or longer than the
    /// curve's size.
    #[error("the private scalar is not in [1, n-1] for {0:?}")]
    Scalar(Curve),
    /// A point is not on the curve, is the identity, or has coordinates
    /// longer than the curve's size.
    #[error("the point is not a valid {0:?} point other than the identity")]
    Point(Curve),
    /// An ECDSA signature does not verify (including r or s out of range).
    #[error("the ECDSA signature does not verify")]
    Signature,
    /// The signer refused to sign.
    #[error("ECDSA signing failed")]
    Sign,
}

/// An implemented curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 (TPM_ECC_NIST_P256).
    P256,
    /// NIST P-384 (TPM_ECC_NIST_P384).
    P384,
}

/// TPM_ECC_NIST_P256.
pub const TPM_ECC_NIST_P256: u16 = 0x0003;
/// TPM_ECC_NIST_P384.
pub const TPM_ECC_NIST_P384: u16 = 0x0004;

/// The domain parameters of a curve, for TPM2_ECC_Parameters: big-endian
/// byte strings, `p`, `a`, `b`, `gx`, `gy` and `n` of [`Curve::size`] bytes,
/// `h` one byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurveParameters {
    /// The field prime.
    pub p: Vec<u8>,
    /// Coefficient a of y² = x³ + ax + b.
    pub a: Vec<u8>,
    /// Coefficient b.
    pub b: Vec<u8>,
    /// x of the generator.
    pub gx: Vec<u8>,
    /// y of the generator.
    pub gy: Vec<u8>,
    /// The order of the generator.
    pub n: Vec<u8>,
    /// The cofactor.
    pub h: Vec<u8>,
}

impl Curve {
    /// The curve for a TPM_ECC_CURVE, if implemented.
    pub fn from_tpm(id: u16) -> Option<Curve> {
        match id {
            TPM_ECC_NIST_P256 => Some(Curve::P256),
            TPM_ECC_NIST_P384 => Some(Curve::P384),
            _ => None,
        }
    }

    /// Its TPM_ECC_CURVE.
    pub fn tpm_id(self) -> u16 {
        match self {
            Curve::P256 => TPM_ECC_NIST_P256,
            Curve::P384 => TPM_ECC_NIST_P384,
        }
    }

    /// Bytes in a coordinate and in a scalar.
    pub fn size(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }

    /// The order n, big-endian.
    pub fn order(self) -> &'static [u8] {
        match self {
            Curve::P256 => &P256_N,
            Curve::P384 => &P384_N,
        }
    }

    /// The domain parameters (SP 800-186 §3.2.1).
    pub fn parameters(self) -> CurveParameters {
        let [p, a, b, gx, gy, n]: [&[u8]; 6] = match self {
            Curve::P256 => [&P256_P, &P256_A, &P256_B, &P256_GX, &P256_GY, &P256_N],
            Curve::P384 => [&P384_P, &P384_A, &P384_B, &P384_GX, &P384_GY, &P384_N],
        };
        CurveParameters {
            p: p.to_vec(),
            a: a.to_vec(),
            b: b.to_vec(),
            gx: gx.to_vec(),
            gy: gy.to_vec(),
            n: n.to_vec(),
            h: vec![1],
        }
    }
}

/// A point as TPMS_ECC_POINT carries it: x and y big-endian, each exactly
/// [`Curve::size`] bytes when produced here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EccPoint {
    /// The x coordinate.
    pub x: Vec<u8>,
    /// The y coordinate.
    pub y: Vec<u8>,
}

/// `v` as exactly `size` bytes: left-padded with zeros when shorter; `None`
/// when longer.
fn fixed(v: &[u8], size: usize) -> Option<Zeroizing<Vec<u8>>> {
    let pad = size.checked_sub(v.len())?;
    let mut out = Zeroizing::new(vec![0u8; size]);
    out.get_mut(pad..)?.copy_from_slice(v);
    Some(out)
}

/// The digest as ECDSA uses it: only the leftmost `size` bytes count (the
/// orders of P-256 and P-384 are 256 and 384 bits long, so bits2int's
/// truncation to the order's bit length is a truncation to whole bytes),
/// and an empty digest is the integer 0.
fn ecdsa_digest(digest: &[u8], size: usize) -> &[u8] {
    if digest.is_empty() {
        return &[0];
    }
    digest.get(..size).unwrap_or(digest)
}

/// The operations of one curve, over its RustCrypto crate.
macro_rules! curve_ops {
    ($m:ident, $k:ident) => {
        mod $m {
            use super::EccPoint;
            use $k::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
            use $k::ecdsa::{Signature, SigningKey, VerifyingKey};
            use $k::elliptic_curve::sec1::ToSec1Point;
            use $k::{FieldBytes, PublicKey, SecretKey};
            use zeroize::Zeroize;

            /// The key for a scalar of exactly the curve's size; `None`
            /// unless in [1, n-1].
            pub(super) fn secret(d: &[u8]) -> Option<SecretKey> {
                let mut bytes = FieldBytes::try_from(d).ok()?;
                let key = SecretKey::from_bytes(&bytes).ok();
                bytes.zeroize();
                key
            }

            /// The big-endian scalar.
            pub(super) fn scalar(sk: &SecretKey) -> zeroize::Zeroizing<Vec<u8>> {
                let mut bytes = sk.to_bytes();
                let out = zeroize::Zeroizing::new(bytes.to_vec());
                bytes.zeroize();
                out
            }

            fn point(pk: &PublicKey) -> Option<EccPoint> {
                let enc = pk.as_affine().to_sec1_point(false);
                Some(EccPoint {
                    x: enc.x()?.to_vec(),
                    y: enc.y()?.to_vec(),
                })
            }

            /// The public point d·G.
            pub(super) fn public(sk: &SecretKey) -> Option<EccPoint> {
                point(&sk.public_key())
            }

            /// A point from coordinates of exactly the curve's size;
            /// `None` when off the curve (the identity has no affine
            /// coordinates, so it is never produced).
            pub(super) fn peer(x: &[u8], y: &[u8]) -> Option<PublicKey> {
                let mut sec1 = Vec::with_capacity(1 + x.len() + y.len());
                sec1.push(0x04);
                sec1.extend_from_slice(x);
                sec1.extend_from_slice(y);
                PublicKey::from_sec1_bytes(&sec1).ok()
            }

            /// ECDSA with an RFC 6979 nonce; (r, s) of the curve's size.
            pub(super) fn sign(sk: &SecretKey, z: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
                let signer = SigningKey::from(sk);
                let sig: Signature = signer.sign_prehash(z).ok()?;
                let (r, s) = sig.split_bytes();
                Some((r.to_vec(), s.to_vec()))
            }

            /// ECDSA verification; r and s of the curve's size.
            pub(super) fn verify(pk: &PublicKey, z: &[u8], r: &[u8], s: &[u8]) -> bool {
                let (Ok(r), Ok(s)) = (FieldBytes::try_from(r), FieldBytes::try_from(s)) else {
                    return false;
                };
                let Ok(sig) = Signature::from_scalars(r, s) else {
                    return false;
                };
                VerifyingKey::from(pk).verify_prehash(z, &sig).is_ok()
            }

            /// d·Q; `None` if it is the identity.
            pub(super) fn multiply(sk: &SecretKey, q: &PublicKey) -> Option<EccPoint> {
                let mut d = sk.to_nonzero_scalar();
                let product = q.to_projective() * d.as_ref();
                d.zeroize();
                point(&PublicKey::from_affine(product.to_affine()).ok()?)
            }
        }
    };
}

curve_ops!(p256_ops, p256);
curve_ops!(p384_ops, p384);

/// The secret scalar, held by the curve's crate (zeroized on drop).
enum Secret {
    P256(p256::SecretKey),
    P384(p384::SecretKey),
}

/// A peer's point, validated.
enum Peer {
    P256(p256::PublicKey),
    P384(p384::PublicKey),
}

fn peer(curve: Curve, q: &EccPoint) -> Result<Peer, EccError> {
    let size = curve.size();
    let (Some(x), Some(y)) = (fixed(&q.x, size), fixed(&q.y, size)) else {
        return Err(EccError::Point(curve));
    };
    match curve {
        Curve::P256 => p256_ops::peer(&x, &y).map(Peer::P256),
        Curve::P384 => p384_ops::peer(&x, &y).map(Peer::P384),
    }
    .ok_or(EccError::Point(curve))
}

/// An ECC private key: the curve and its secret scalar d in [1, n-1].
pub struct EccKey {
    curve: Curve,
    secret: Secret,
}

impl std::fmt::Debug for EccKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EccKey")
            .field("curve", &self.curve)
            .finish_non_exhaustive()
    }
}

/// Bytes read from the stream beyond the scalar size (FIPS 186-5 §A.2.1:
/// 64 extra bits make the bias of the reduction negligible).
const EXTRA_BYTES: usize = 8;

/// `(c mod (n − 1)) + 1` as a key, for `c` of at most 64 bytes.
fn scalar_from_extra_bits(curve: Curve, c: &[u8]) -> Result<EccKey, EccError> {
    const WIDE: usize = 64;
    let size = curve.size();
    let c_wide = fixed(c, WIDE).ok_or(EccError::Scalar(curve))?;
    let n_wide = fixed(curve.order(), WIDE).ok_or(EccError::Scalar(curve))?;
    let c_int = Zeroizing::new(U512::from_be_slice(&c_wide));
    let n_minus_1 = NonZero::new(U512::from_be_slice(&n_wide).wrapping_sub(&U512::ONE))
        .into_option()
        .ok_or(EccError::Scalar(curve))?;
    let d = Zeroizing::new(c_int.rem(&n_minus_1).wrapping_add(&U512::ONE));
    let d_bytes = Zeroizing::new(d.to_be_bytes());
    let tail = d_bytes
        .as_ref()
        .get(WIDE.saturating_sub(size)..)
        .ok_or(EccError::Scalar(curve))?;
    EccKey::from_scalar(curve, tail)
}

impl EccKey {
    /// The deterministic key for a primary object: reads `size() + 8` bytes
    /// `c` (big-endian) from `fill` and uses `d = (c mod (n − 1)) + 1`
    /// (FIPS 186-5 §A.2.1; docs/primary-keys.md). Part of the
    /// compatibility contract: never change it.
    pub fn derive(curve: Curve, fill: &mut dyn FnMut(&mut [u8])) -> Result<EccKey, EccError> {
        let mut c = Zeroizing::new(vec![0u8; curve.size() + EXTRA_BYTES]);
        fill(&mut c);
        scalar_from_extra_bits(curve, &c)
    }

    /// A random key: the same method as [`EccKey::derive`] over bytes from
    /// `fill` (the DRBG or the OS RNG).
    pub fn generate(curve: Curve, fill: &mut dyn FnMut(&mut [u8])) -> Result<EccKey, EccError> {
        Self::derive(curve, fill)
    }

    /// The key for a stored private scalar (TPM2B_ECC_PARAMETER:
    /// big-endian, possibly shorter than `size()`, never longer); it must be
    /// in [1, n-1].
    pub fn from_scalar(curve: Curve, d: &[u8]) -> Result<EccKey, EccError> {
        let d = fixed(d, curve.size()).ok_or(EccError::Scalar(curve))?;
        let secret = match curve {
            Curve::P256 => p256_ops::secret(&d).map(Secret::P256),
            Curve::P384 => p384_ops::secret(&d).map(Secret::P384),
        }
        .ok_or(EccError::Scalar(curve))?;
        Ok(EccKey { curve, secret })
    }

    /// The curve.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// The private scalar, exactly `size()` bytes.
    pub fn scalar(&self) -> Zeroizing<Vec<u8>> {
        match &self.secret {
            Secret::P256(sk) => p256_ops::scalar(sk),
            Secret::P384(sk) => p384_ops::scalar(sk),
        }
    }

    /// The public point d·G.
    pub fn public(&self) -> EccPoint {
        // d is in [1, n-1], so d·G is never the identity.
        match &self.secret {
            Secret::P256(sk) => p256_ops::public(sk),
            Secret::P384(sk) => p384_ops::public(sk),
        }
        .unwrap_or(EccPoint {
            x: Vec::new(),
            y: Vec::new(),
        })
    }

    /// ECDSA over an already-hashed digest of any length: the digest is
    /// truncated to the order's bit length (SEC 1 / FIPS 186-5 bits2int;
    /// shorter digests are integers as they are). The nonce is RFC 6979's
    /// deterministic one, with HMAC over the curve's own hash (SHA-256 for
    /// P-256, SHA-384 for P-384) whatever the digest's algorithm. Returns
    /// (r, s), each exactly `size()` bytes.
    pub fn ecdsa_sign(&self, digest: &[u8]) -> Result<(Vec<u8>, Vec<u8>), EccError> {
        let z = ecdsa_digest(digest, self.curve.size());
        match &self.secret {
            Secret::P256(sk) => p256_ops::sign(sk, z),
            Secret::P384(sk) => p384_ops::sign(sk, z),
        }
        .ok_or(EccError::Sign)
    }

    /// ECDH: d·Q for a peer point, validated on the curve (TPM2_ECDH_ZGen's
    /// outPoint; its x coordinate is the shared secret Z).
    pub fn ecdh(&self, peer_point: &EccPoint) -> Result<EccPoint, EccError> {
        let q = peer(self.curve, peer_point)?;
        match (&self.secret, &q) {
            (Secret::P256(sk), Peer::P256(q)) => p256_ops::multiply(sk, q),
            (Secret::P384(sk), Peer::P384(q)) => p384_ops::multiply(sk, q),
            _ => None,
        }
        .ok_or(EccError::Point(self.curve))
    }
}

/// Verifies ECDSA (r, s) over `digest` (any length, treated as in
/// [`EccKey::ecdsa_sign`]) with public point `q`. r and s may be shorter
/// than `size()`, never longer.
pub fn ecdsa_verify(
    curve: Curve,
    q: &EccPoint,
    digest: &[u8],
    r: &[u8],
    s: &[u8],
) -> Result<(), EccError> {
    let q = peer(curve, q)?;
    let size = curve.size();
    let (Some(r), Some(s)) = (fixed(r, size), fixed(s, size)) else {
        return Err(EccError::Signature);
    };
    let z = ecdsa_digest(digest, size);
    let ok = match &q {
        Peer::P256(q) => p256_ops::verify(q, z, &r, &s),
        Peer::P384(q) => p384_ops::verify(q, z, &r, &s),
    };
    if ok { Ok(()) } else { Err(EccError::Signature) }
}

/// Is `q` a point on the curve other than the identity? Coordinates may be
/// shorter than `size()` (leading zeros stripped), never longer.
pub fn point_is_valid(curve: Curve, q: &EccPoint) -> bool {
    peer(curve, q).is_ok()
}

/// One-pass ECDH with an ephemeral key (TPM2_ECDH_KeyGen; the ECC secret of
/// a salted session or of a duplication/credential seed, Part 1 §C.6.1):
/// draws de with [`EccKey::generate`] from `fill` and returns (Z = de·Q,
/// Qe = de·G).
pub fn ecdh_ephemeral(
    curve: Curve,
    q: &EccPoint,
    fill: &mut dyn FnMut(&mut [u8]),
) -> Result<(EccPoint, EccPoint), EccError> {
    // Validate before drawing randomness.
    peer(curve, q)?;
    let ephemeral = EccKey::generate(curve, fill)?;
    let z = ephemeral.ecdh(q)?;
    Ok((z, ephemeral.public()))
}

// The domain parameters (SP 800-186 §3.2.1.3 and §3.2.1.4), checked
// against the curve crates' constants and OpenSSL in the tests.

const P256_P: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
];
const P256_A: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc,
];
const P256_B: [u8; 32] = [
    0x5a, 0xc6, 0x35, 0xd8, 0xaa, 0x3a, 0x93, 0xe7, 0xb3, 0xeb, 0xbd, 0x55, 0x76, 0x98, 0x86, 0xbc,
    0x65, 0x1d, 0x06, 0xb0, 0xcc, 0x53, 0xb0, 0xf6, 0x3b, 0xce, 0x3c, 0x3e, 0x27, 0xd2, 0x60, 0x4b,
];
const P256_GX: [u8; 32] = [
    0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
    0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
];
const P256_GY: [u8; 32] = [
    0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
    0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
];
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
const P384_P: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
];
const P384_A: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xfc,
];
const P384_B: [u8; 48] = [
    0xb3, 0x31, 0x2f, 0xa7, 0xe2, 0x3e, 0xe7, 0xe4, 0x98, 0x8e, 0x05, 0x6b, 0xe3, 0xf8, 0x2d, 0x19,
    0x18, 0x1d, 0x9c, 0x6e, 0xfe, 0x81, 0x41, 0x12, 0x03, 0x14, 0x08, 0x8f, 0x50, 0x13, 0x87, 0x5a,
    0xc6, 0x56, 0x39, 0x8d, 0x8a, 0x2e, 0xd1, 0x9d, 0x2a, 0x85, 0xc8, 0xed, 0xd3, 0xec, 0x2a, 0xef,
];
const P384_GX: [u8; 48] = [
    0xaa, 0x87, 0xca, 0x22, 0xbe, 0x8b, 0x05, 0x37, 0x8e, 0xb1, 0xc7, 0x1e, 0xf3, 0x20, 0xad, 0x74,
    0x6e, 0x1d, 0x3b, 0x62, 0x8b, 0xa7, 0x9b, 0x98, 0x59, 0xf7, 0x41, 0xe0, 0x82, 0x54, 0x2a, 0x38,
    0x55, 0x02, 0xf2, 0x5d, 0xbf, 0x55, 0x29, 0x6c, 0x3a, 0x54, 0x5e, 0x38, 0x72, 0x76, 0x0a, 0xb7,
];
const P384_GY: [u8; 48] = [
    0x36, 0x17, 0xde, 0x4a, 0x96, 0x26, 0x2c, 0x6f, 0x5d, 0x9e, 0x98, 0xbf, 0x92, 0x92, 0xdc, 0x29,
    0xf8, 0xf4, 0x1d, 0xbd, 0x28, 0x9a, 0x14, 0x7c, 0xe9, 0xda, 0x31, 0x13, 0xb5, 0xf0, 0xb8, 0xc0,
    0x0a, 0x60, 0xb1, 0xce, 0x1d, 0x7e, 0x81, 0x9d, 0x7a, 0x43, 0x1d, 0x7c, 0x90, 0xea, 0x0e, 0x5f,
];
const P384_N: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hash::HashAlg;
    use crate::crypto::self_test::hex;
    use crate::crypto::stream::KdfStream;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn derive_from(curve: Curve, c: &[u8]) -> Result<EccKey, EccError> {
        let mut c = c.to_vec();
        EccKey::derive(curve, &mut |out: &mut [u8]| {
            let rest = c.split_off(out.len());
            out.copy_from_slice(&c);
            c = rest;
        })
    }

    /// GOLDEN VECTORS. These pin the derivation of primary ECC keys
    /// (docs/primary-keys.md) and MUST NEVER CHANGE: a change moves
    /// every primary ECC key (EKs, SRKs) of every existing vTPM.
    /// Computed independently with Python (hmac, hashlib and the
    /// `cryptography` package): c = the first size()+8 bytes of
    /// HMAC-SHA256(0x22*32, [i]_32 || "vtpm-primary-v1\0" ||
    /// "golden-template-name" || 00000000), i = 1, 2; d = c % (n-1) + 1;
    /// (x, y) = ec.derive_private_key(d, curve).public_key().
    #[test]
    fn golden_primary_keys() {
        let stream = || {
            KdfStream::new(
                HashAlg::Sha256,
                &[0x22; 32],
                b"vtpm-primary-v1",
                b"golden-template-name",
                b"",
            )
        };
        let mut s = stream();
        let k = EccKey::derive(Curve::P256, &mut |b: &mut [u8]| s.fill(b)).unwrap();
        assert_eq!(
            hex(&k.scalar()),
            "49c2cc140b3469f54695f77ff607c887233b734a23c65fcc9c0aa2e7d9e5f715"
        );
        let q = k.public();
        assert_eq!(
            hex(&q.x),
            "9f829879ac45a1484e8b784baf3ffad5719482451b2bd21a304cc60cd1ec8d3b"
        );
        assert_eq!(
            hex(&q.y),
            "a281ecc025e99c8963de2ca2ee2422d106dc25f0ac7dcd757694d72357c0ebec"
        );

        let mut s = stream();
        let k = EccKey::derive(Curve::P384, &mut |b: &mut [u8]| s.fill(b)).unwrap();
        assert_eq!(
            hex(&k.scalar()),
            "295eb9a7a559b54826ac7f351ce14c447d6dd11212dd210c049667e01963fd6b6874ca66822aa16eaaf6d20910bf9ad9"
        );
        let q = k.public();
        assert_eq!(
            hex(&q.x),
            "db07123f3b641bca4a2a6179ea4e37b1f6e534b1ea8ea6c0618b0f36d07e64a95119a420624e6fffeb56e57a8931fe7b"
        );
        assert_eq!(
            hex(&q.y),
            "2c37eb01605249984242e656a745a798d4c5761a518d4459b18ab63359f8aa75ba5c02398ab6ddf30040989b090ef7f4"
        );
    }

    /// d = (c mod (n−1)) + 1 exactly, not c mod n: the edges of the
    /// reduction, and all-ones input (Python: (c % (n-1) + 1), which
    /// differs from c % n for both curves).
    #[test]
    fn derivation_is_c_mod_n_minus_1_plus_1() {
        for curve in [Curve::P256, Curve::P384] {
            let size = curve.size();
            let wide = |v: &[u8]| fixed(v, size + 8).unwrap().to_vec();
            let n = curve.order().to_vec();
            let mut n_minus_1 = n.clone();
            *n_minus_1.last_mut().unwrap() -= 1; // n is odd
            let mut n_minus_2 = n.clone();
            *n_minus_2.last_mut().unwrap() -= 2;
            let one = fixed(&[1], size).unwrap().to_vec();
            let two = fixed(&[2], size).unwrap().to_vec();
            let cases: [(Vec<u8>, Vec<u8>); 5] = [
                (wide(&[]), one.clone()),
                (wide(&n_minus_2), n_minus_1.clone()),
                (wide(&n_minus_1), one),
                (wide(&n), two),
                (
                    wide(&[0xff; 64][..size + 8]),
                    match curve {
                        Curve::P256 => unhex(
                            "fffffffe00000001431905529c0166cd22159165b6faae71f756a572fc632550",
                        ),
                        Curve::P384 => unhex(
                            "00000000000000000000000000000000389cb27e0bc8d220a7e5f24db74f58851313e695333ad68e0000000000000000",
                        ),
                    },
                ),
            ];
            for (c, d) in cases {
                assert_eq!(c.len(), size + 8);
                let k = derive_from(curve, &c).unwrap();
                assert_eq!(*k.scalar(), d, "{curve:?} c={}", hex(&c));
            }
        }
    }

    #[test]
    fn curve_ids_and_parameters() {
        assert_eq!(Curve::from_tpm(0x0003), Some(Curve::P256));
        assert_eq!(Curve::from_tpm(0x0004), Some(Curve::P384));
        assert_eq!(Curve::from_tpm(0x0005), None);
        assert_eq!(Curve::from_tpm(0), None);
        for curve in [Curve::P256, Curve::P384] {
            assert_eq!(Curve::from_tpm(curve.tpm_id()), Some(curve));
            let p = curve.parameters();
            for v in [&p.p, &p.a, &p.b, &p.gx, &p.gy, &p.n] {
                assert_eq!(v.len(), curve.size());
            }
            assert_eq!(p.n, curve.order());
            assert_eq!(p.h, [1]);
            // The generator is the public point of d = 1, and is on the curve.
            let g = EccKey::from_scalar(curve, &[1]).unwrap().public();
            assert_eq!((g.x.clone(), g.y.clone()), (p.gx.clone(), p.gy.clone()));
            assert!(point_is_valid(curve, &g));
            // a = p - 3.
            let mut a = p.p.clone();
            *a.last_mut().unwrap() -= 3;
            assert_eq!(p.a, a);
        }
        // The orders match the curve crates' own.
        use p256::elliptic_curve::Curve as _;
        assert_eq!(
            p256::NistP256::ORDER.to_be_bytes().as_ref(),
            Curve::P256.order()
        );
        assert_eq!(
            p384::NistP384::ORDER.to_be_bytes().as_ref(),
            Curve::P384.order()
        );
        // And OpenSSL's, when it is installed.
        for (curve, name) in [(Curve::P256, "prime256v1"), (Curve::P384, "secp384r1")] {
            let Some(text) = openssl(&[
                "ecparam",
                "-name",
                name,
                "-param_enc",
                "explicit",
                "-text",
                "-noout",
            ]) else {
                return;
            };
            let text: String = String::from_utf8_lossy(&text)
                .chars()
                .filter(|c| !c.is_whitespace() && *c != ':')
                .collect();
            let p = curve.parameters();
            let g = format!("04{}{}", hex(&p.gx), hex(&p.gy));
            // OpenSSL prints a zero octet before a high bit.
            let int = |v: &[u8]| {
                if v[0] & 0x80 != 0 {
                    format!("00{}", hex(v))
                } else {
                    hex(v)
                }
            };
            for (label, v) in [
                ("Prime", int(&p.p)),
                ("A", int(&p.a)),
                ("B", int(&p.b)),
                ("Generator(uncompressed)", g),
                ("Order", int(&p.n)),
            ] {
                assert!(text.contains(&format!("{label}{v}")), "{name} {label}");
            }
        }
    }

    /// RFC 6979 A.2.5 (P-256) and A.2.6 (P-384): the key pairs, and
    /// signatures over digests of "sample" and "test".
    struct Rfc6979 {
        curve: Curve,
        x: &'static str,
        ux: &'static str,
        uy: &'static str,
        /// (hash, message, r, s).
        sigs: &'static [(HashAlg, &'static str, &'static str, &'static str)],
    }

    const RFC6979: [Rfc6979; 2] = [
        Rfc6979 {
            curve: Curve::P256,
            x: "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721",
            ux: "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6",
            uy: "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299",
            sigs: &[
                (
                    HashAlg::Sha256,
                    "sample",
                    "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716",
                    "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8",
                ),
                (
                    HashAlg::Sha256,
                    "test",
                    "f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367",
                    "019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083",
                ),
                (
                    HashAlg::Sha512,
                    "sample",
                    "8496a60b5e9b47c825488827e0495b0e3fa109ec4568fd3f8d1097678eb97f00",
                    "2362ab1adbe2b8adf9cb9edab740ea6049c028114f2460f96554f61fae3302fe",
                ),
            ],
        },
        Rfc6979 {
            curve: Curve::P384,
            x: "6b9d3dad2e1b8c1c05b19875b6659f4de23c3b667bf297ba9aa47740787137d896d5724e4c70a825f872c9ea60d2edf5",
            ux: "ec3a4e415b4e19a4568618029f427fa5da9a8bc4ae92e02e06aae5286b300c64def8f0ea9055866064a254515480bc13",
            uy: "8015d9b72d7d57244ea8ef9ac0c621896708a59367f9dfb9f54ca84b3f1c9db1288b231c3ae0d4fe7344fd2533264720",
            sigs: &[
                (
                    HashAlg::Sha384,
                    "sample",
                    "94edbb92a5ecb8aad4736e56c691916b3f88140666ce9fa73d64c4ea95ad133c81a648152e44acf96e36dd1e80fabe46",
                    "99ef4aeb15f178cea1fe40db2603138f130e740a19624526203b6351d0a3a94fa329c145786e679e7b82c71a38628ac8",
                ),
                (
                    HashAlg::Sha256,
                    "sample",
                    "21b13d1e013c7fa1392d03c5f99af8b30c570c6f98d4ea8e354b63a21d3daa33bde1e888e63355d92fa2b3c36d8fb2cd",
                    "f3aa443fb107745bf4bd77cb3891674632068a10ca67e3d45db2266fa7d1feebefdc63eccd1ac42ec0cb8668a4fa0ab0",
                ),
                (
                    HashAlg::Sha1,
                    "sample",
                    "ec748d839243d6fbef4fc5c4859a7dffd7f3abddf72014540c16d73309834fa37b9ba002899f6fda3a4a9386790d4eb2",
                    "a3bcfa947beef4732bf247ac17f71676cb31a847b9ff0cbc9c9ed4c1a5b3facf26f49ca031d4857570ccb5ca4424a443",
                ),
            ],
        },
    ];

    #[test]
    fn ecdsa_rfc6979_vectors() {
        for v in &RFC6979 {
            let key = EccKey::from_scalar(v.curve, &unhex(v.x)).unwrap();
            let q = key.public();
            assert_eq!(hex(&q.x), v.ux);
            assert_eq!(hex(&q.y), v.uy);
            for &(h, msg, r, s) in v.sigs {
                let digest = h.digest(&[msg.as_bytes()]);
                // The RFC's signatures verify: digests longer (SHA-512 on
                // P-256) and shorter (SHA-1, SHA-256 on P-384) than the order.
                ecdsa_verify(v.curve, &q, &digest, &unhex(r), &unhex(s)).unwrap();
                // Tampered ones do not.
                let mut bad = digest.clone();
                bad[0] ^= 1;
                assert_eq!(
                    ecdsa_verify(v.curve, &q, &bad, &unhex(r), &unhex(s)),
                    Err(EccError::Signature)
                );
                assert_eq!(
                    ecdsa_verify(v.curve, &q, &digest, &unhex(s), &unhex(r)),
                    Err(EccError::Signature)
                );
                // Our signature verifies, and its r, s have the full size.
                let (sr, ss) = key.ecdsa_sign(&digest).unwrap();
                assert_eq!((sr.len(), ss.len()), (v.curve.size(), v.curve.size()));
                ecdsa_verify(v.curve, &q, &digest, &sr, &ss).unwrap();
                // The signer is RFC 6979 with the curve's hash, so it equals
                // the RFC's signature when the digest uses that hash.
                let curve_hash = match v.curve {
                    Curve::P256 => HashAlg::Sha256,
                    Curve::P384 => HashAlg::Sha384,
                };
                if h == curve_hash {
                    assert_eq!((hex(&sr), hex(&ss)), (r.to_string(), s.to_string()));
                }
            }
        }
    }

    /// Only the leftmost bits of a long digest count; a short one is an
    /// integer as it is (left-padded); r and s may come without leading
    /// zeros.
    #[test]
    fn ecdsa_digest_lengths() {
        let key = EccKey::from_scalar(Curve::P256, &[7; 32]).unwrap();
        let q = key.public();
        let long: Vec<u8> = (0u8..64).collect();
        let (r, s) = key.ecdsa_sign(&long).unwrap();
        ecdsa_verify(Curve::P256, &q, &long[..32], &r, &s).unwrap();
        let mut other_tail = long.clone();
        other_tail[40] ^= 0xff;
        ecdsa_verify(Curve::P256, &q, &other_tail, &r, &s).unwrap();

        let short = [0x5a; 20];
        let (r, s) = key.ecdsa_sign(&short).unwrap();
        let mut padded = vec![0u8; 12];
        padded.extend_from_slice(&short);
        ecdsa_verify(Curve::P256, &q, &padded, &r, &s).unwrap();

        // Empty digest: the integer 0; no panic.
        let (r, s) = key.ecdsa_sign(&[]).unwrap();
        ecdsa_verify(Curve::P256, &q, &[], &r, &s).unwrap();
        ecdsa_verify(Curve::P256, &q, &[0, 0], &r, &s).unwrap();

        // Leading zeros of r and s stripped: still verifies. Search for a
        // signature whose r starts with a zero octet.
        let k = EccKey::from_scalar(Curve::P256, &[9; 32]).unwrap();
        let mut found = false;
        for i in 0u16..2000 {
            let digest = HashAlg::Sha256.digest(&[&i.to_be_bytes()]);
            let (r, s) = k.ecdsa_sign(&digest).unwrap();
            if r[0] == 0 {
                ecdsa_verify(Curve::P256, &k.public(), &digest, &r[1..], &s).unwrap();
                found = true;
                break;
            }
        }
        assert!(found);
    }

    #[test]
    fn ecdsa_rejects_malformed() {
        for curve in [Curve::P256, Curve::P384] {
            let size = curve.size();
            let key = EccKey::from_scalar(curve, &[3]).unwrap();
            let q = key.public();
            let d = [1u8; 32];
            let (r, s) = key.ecdsa_sign(&d).unwrap();
            let n = curve.order();
            let zero = vec![0u8; size];
            let mut long_r = vec![0u8];
            long_r.extend_from_slice(&r);
            for (rr, ss) in [
                (&zero[..], &s[..]),
                (&r[..], &zero[..]),
                (&[][..], &s[..]),
                (&r[..], n),
                (n, &s[..]),
                (&long_r[..], &s[..]),
                (&[0xff; 100][..], &s[..]),
            ] {
                assert_eq!(
                    ecdsa_verify(curve, &q, &d, rr, ss),
                    Err(EccError::Signature)
                );
            }
            // A bad public point.
            let off = EccPoint {
                x: q.x.clone(),
                y: q.x.clone(),
            };
            assert_eq!(
                ecdsa_verify(curve, &off, &d, &r, &s),
                Err(EccError::Point(curve))
            );
            // The other curve's point.
            let other = match curve {
                Curve::P256 => Curve::P384,
                Curve::P384 => Curve::P256,
            };
            assert!(ecdsa_verify(other, &q, &d, &r, &s).is_err());
            // Huge digests are fine.
            let huge = vec![0xabu8; 100_000];
            let (r, s) = key.ecdsa_sign(&huge).unwrap();
            ecdsa_verify(curve, &q, &huge, &r, &s).unwrap();
        }
    }

    #[test]
    fn ecdh_agrees_and_validates() {
        for curve in [Curve::P256, Curve::P384] {
            let mut rng = KdfStream::new(HashAlg::Sha256, b"ecdh", b"test", b"", b"");
            let mut fill = |b: &mut [u8]| rng.fill(b);
            let a = EccKey::generate(curve, &mut fill).unwrap();
            let b = EccKey::generate(curve, &mut fill).unwrap();
            assert_ne!(a.scalar(), b.scalar());
            let ab = a.ecdh(&b.public()).unwrap();
            let ba = b.ecdh(&a.public()).unwrap();
            assert_eq!(ab, ba);
            assert_eq!((ab.x.len(), ab.y.len()), (curve.size(), curve.size()));
            assert!(point_is_valid(curve, &ab));

            // Ephemeral: Z = de·Q and Qe = de·G, so d·Qe = Z.
            let (z, qe) = ecdh_ephemeral(curve, &a.public(), &mut fill).unwrap();
            assert_eq!(a.ecdh(&qe).unwrap(), z);
            assert_ne!(qe, a.public());

            // Off-curve, identity-ish, over-long and empty points.
            let q = b.public();
            let mut off = q.clone();
            *off.y.last_mut().unwrap() ^= 1;
            let zero = EccPoint {
                x: vec![0; curve.size()],
                y: vec![0; curve.size()],
            };
            let empty = EccPoint {
                x: vec![],
                y: vec![],
            };
            let mut long = q.clone();
            long.x.insert(0, 0);
            let p = curve.parameters().p;
            let beyond = EccPoint {
                x: p.clone(),
                y: q.y.clone(),
            };
            for bad in [&off, &zero, &empty, &long, &beyond] {
                assert!(!point_is_valid(curve, bad));
                assert_eq!(a.ecdh(bad), Err(EccError::Point(curve)));
                assert_eq!(
                    ecdh_ephemeral(curve, bad, &mut fill),
                    Err(EccError::Point(curve))
                );
            }
        }
    }

    /// The identity has no affine coordinates, so no TPMS_ECC_POINT is it;
    /// nor is the point at "x = p" (x ≡ 0) or any x ≥ p accepted. A point
    /// whose coordinates have leading zeros stripped is valid.
    #[test]
    fn point_validity_with_short_coordinates() {
        let key = EccKey::from_scalar(Curve::P256, &[1]).unwrap();
        // Find a public point with a leading zero octet in x.
        let mut found = false;
        for i in 1u16..2000 {
            let k = EccKey::from_scalar(Curve::P256, &i.to_be_bytes()).unwrap();
            let q = k.public();
            if q.x[0] == 0 {
                let short = EccPoint {
                    x: q.x[1..].to_vec(),
                    y: q.y.clone(),
                };
                assert!(point_is_valid(Curve::P256, &short));
                assert_eq!(key.ecdh(&short).unwrap(), q);
                found = true;
                break;
            }
        }
        assert!(found);
    }

    #[test]
    fn from_scalar_range() {
        for curve in [Curve::P256, Curve::P384] {
            let n = curve.order();
            let mut n_plus_1 = n.to_vec();
            *n_plus_1.last_mut().unwrap() += 1;
            let mut n_minus_1 = n.to_vec();
            *n_minus_1.last_mut().unwrap() -= 1;
            let err = Err(EccError::Scalar(curve));
            assert_eq!(EccKey::from_scalar(curve, &[]).map(|_| ()), err);
            assert_eq!(EccKey::from_scalar(curve, &[0]).map(|_| ()), err);
            assert_eq!(
                EccKey::from_scalar(curve, &vec![0; curve.size()]).map(|_| ()),
                err
            );
            assert_eq!(EccKey::from_scalar(curve, n).map(|_| ()), err);
            assert_eq!(EccKey::from_scalar(curve, &n_plus_1).map(|_| ()), err);
            assert_eq!(
                EccKey::from_scalar(curve, &vec![0xff; curve.size()]).map(|_| ()),
                err
            );
            assert_eq!(
                EccKey::from_scalar(curve, &vec![1; curve.size() + 1]).map(|_| ()),
                err
            );
            let k = EccKey::from_scalar(curve, &n_minus_1).unwrap();
            assert_eq!(*k.scalar(), n_minus_1);
            assert_eq!(k.curve(), curve);
            // Short scalars are left-padded.
            let k = EccKey::from_scalar(curve, &[0, 0, 5]).unwrap();
            assert_eq!(k.scalar().len(), curve.size());
            assert_eq!(k.scalar().last(), Some(&5));
            assert_eq!(
                k.public(),
                EccKey::from_scalar(curve, &[5]).unwrap().public()
            );
        }
        // Debug does not show the scalar.
        let k = EccKey::from_scalar(Curve::P256, &[0x42; 32]).unwrap();
        assert!(!format!("{k:?}").contains("42"));
    }

    /// Every length of every input, from empty to over-long: errors, never
    /// panics.
    #[test]
    fn no_panics_on_any_length() {
        for curve in [Curve::P256, Curve::P384] {
            let key = EccKey::from_scalar(curve, &[0x11; 16]).unwrap();
            for len in 0..=curve.size() + 2 {
                for byte in [0x00u8, 0x01, 0x7f, 0xff] {
                    let v = vec![byte; len];
                    let _ = EccKey::from_scalar(curve, &v);
                    let p = EccPoint {
                        x: v.clone(),
                        y: v.clone(),
                    };
                    let _ = point_is_valid(curve, &p);
                    let _ = key.ecdh(&p);
                    let _ = ecdsa_verify(curve, &key.public(), &v, &v, &v);
                    let _ = ecdsa_verify(curve, &p, &v, &v, &v);
                    let _ = ecdh_ephemeral(curve, &p, &mut |b: &mut [u8]| b.fill(byte));
                    key.ecdsa_sign(&v).unwrap();
                }
            }
            // A stream of zeros or of ones still gives keys in range.
            for byte in [0x00u8, 0xff] {
                let k = EccKey::generate(curve, &mut |b: &mut [u8]| b.fill(byte)).unwrap();
                assert!(point_is_valid(curve, &k.public()));
            }
        }
    }

    // --- Cross-checks with the openssl CLI (skipped when not installed). ---

    /// Runs openssl; `None` (with a note) when it is not installed.
    fn openssl(args: &[&str]) -> Option<Vec<u8>> {
        match std::process::Command::new("openssl").args(args).output() {
            Ok(out) => {
                assert!(
                    out.status.success(),
                    "openssl {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                Some(out.stdout)
            }
            Err(e) => {
                eprintln!("openssl not available ({e}); cross-check skipped");
                None
            }
        }
    }

    fn der(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match body.len() {
            l if l < 0x80 => out.push(l as u8),
            l if l < 0x100 => out.extend_from_slice(&[0x81, l as u8]),
            l => out.extend_from_slice(&[0x82, (l >> 8) as u8, l as u8]),
        }
        out.extend_from_slice(body);
        out
    }

    fn der_uint(v: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = v.iter().copied().skip_while(|&b| b == 0).collect();
        if v.first().is_none_or(|&b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        der(0x02, &v)
    }

    fn curve_oid(curve: Curve) -> Vec<u8> {
        match curve {
            Curve::P256 => der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
            Curve::P384 => der(0x06, &[0x2b, 0x81, 0x04, 0x00, 0x22]),
        }
    }

    fn sec1_point(q: &EccPoint) -> Vec<u8> {
        [&[4u8][..], &q.x, &q.y].concat()
    }

    /// SubjectPublicKeyInfo (RFC 5480).
    fn spki(curve: Curve, q: &EccPoint) -> Vec<u8> {
        let ec_public_key = der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
        let alg = der(0x30, &[ec_public_key, curve_oid(curve)].concat());
        let bits = der(0x03, &[&[0u8][..], &sec1_point(q)].concat());
        der(0x30, &[alg, bits].concat())
    }

    /// ECPrivateKey (RFC 5915).
    fn ec_private_key(k: &EccKey) -> Vec<u8> {
        let version = der(0x02, &[1]);
        let d = der(0x04, &k.scalar());
        let params = der(0xa0, &curve_oid(k.curve()));
        let public = der(
            0xa1,
            &der(0x03, &[&[0u8][..], &sec1_point(&k.public())].concat()),
        );
        der(0x30, &[version, d, params, public].concat())
    }

    /// (r, s) from an ECDSA-Sig-Value.
    fn parse_sig(sig: &[u8]) -> (Vec<u8>, Vec<u8>) {
        fn tlv(b: &[u8]) -> (&[u8], &[u8]) {
            let (len, hdr) = match b[1] {
                0x81 => (b[2] as usize, 3),
                l => (l as usize, 2),
            };
            (&b[hdr..hdr + len], &b[hdr + len..])
        }
        let (seq, _) = tlv(sig);
        let (r, rest) = tlv(seq);
        let (s, _) = tlv(rest);
        // DER integers carry a zero octet before a high bit; TPM2B values
        // do not.
        let strip = |v: &[u8]| v.iter().copied().skip_while(|&b| b == 0).collect();
        (strip(r), strip(s))
    }

    struct TempDir(std::path::PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!("vtpm-ecc-{}-{tag}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn write(&self, name: &str, data: &[u8]) -> String {
            let p = self.0.join(name);
            std::fs::write(&p, data).unwrap();
            p.to_string_lossy().into_owned()
        }
        fn path(&self, name: &str) -> String {
            self.0.join(name).to_string_lossy().into_owned()
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Signatures cross-verified with OpenSSL in both directions, for
    /// digests longer, equal to and shorter than the order; ECDH's x
    /// coordinate equals OpenSSL's derived secret.
    #[test]
    fn openssl_cross_check() {
        if openssl(&["version"]).is_none() {
            return;
        }
        let dir = TempDir::new("xcheck");
        for curve in [Curve::P256, Curve::P384] {
            let mut s = KdfStream::new(HashAlg::Sha256, b"openssl", b"xcheck", b"", b"");
            let key = EccKey::derive(curve, &mut |b: &mut [u8]| s.fill(b)).unwrap();
            let peer = EccKey::derive(curve, &mut |b: &mut [u8]| s.fill(b)).unwrap();
            let priv_der = dir.write("key.der", &ec_private_key(&key));
            let pub_der = dir.write("pub.der", &spki(curve, &key.public()));
            let peer_pub = dir.write("peer.der", &spki(curve, &peer.public()));
            for h in HashAlg::ALL {
                let digest = h.digest(&[b"cross-check message"]);
                let dg = dir.write("digest.bin", &digest);

                // Ours, verified by OpenSSL.
                let (r, s) = key.ecdsa_sign(&digest).unwrap();
                let sig = der(0x30, &[der_uint(&r), der_uint(&s)].concat());
                let sig_path = dir.write("ours.sig", &sig);
                let out = openssl(&[
                    "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", &pub_der, "-in",
                    &dg, "-sigfile", &sig_path,
                ])
                .unwrap();
                assert!(
                    String::from_utf8_lossy(&out).contains("Signature Verified Successfully"),
                    "{curve:?} {h:?}"
                );

                // OpenSSL's, verified by us.
                let theirs = dir.path("theirs.sig");
                openssl(&[
                    "pkeyutl", "-sign", "-keyform", "DER", "-inkey", &priv_der, "-in", &dg, "-out",
                    &theirs,
                ])
                .unwrap();
                let (r, s) = parse_sig(&std::fs::read(&theirs).unwrap());
                ecdsa_verify(curve, &key.public(), &digest, &r, &s)
                    .unwrap_or_else(|e| panic!("{curve:?} {h:?}: {e}"));
            }

            // ECDH: OpenSSL's shared secret is the x coordinate of d·Q.
            let z = openssl(&[
                "pkeyutl",
                "-derive",
                "-keyform",
                "DER",
                "-inkey",
                &priv_der,
                "-peerform",
                "DER",
                "-peerkey",
                &peer_pub,
            ])
            .unwrap();
            assert_eq!(key.ecdh(&peer.public()).unwrap().x, z);
        }
    }
}
