//! RSA: deterministic derivation of primary keys (docs/primary-keys.md),
//! random key generation, a pool of pre-generated keys, and the TPM's
//! schemes (RSAES, OAEP and raw encryption; RSASSA and RSAPSS signatures).
//!
//! Every private-key operation goes through the `rsa` crate (constant-time
//! `crypto-bigint` arithmetic, blinded with the operating system's RNG).
//! Prime generation is this module's own, so that a primary key is a pure
//! function of its KDF stream whatever the `rsa` crate's key generation does.

use super::hash::HashAlg;
use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, NonZero, Odd, Resize};
use rsa::rand_core::{TryCryptoRng, TryRng};
use rsa::traits::{PaddingScheme, PublicKeyParts, SignatureScheme};
use rsa::{Oaep, Pkcs1v15Encrypt, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use zeroize::{Zeroize, Zeroizing};

/// Runs `$body` with `$d` a type alias for `$hash`'s RustCrypto digest.
macro_rules! with_digest {
    ($hash:expr, $d:ident => $body:expr) => {
        match $hash {
            HashAlg::Sha1 => {
                type $d = sha1::Sha1;
                $body
            }
            HashAlg::Sha256 => {
                type $d = sha2::Sha256;
                $body
            }
            HashAlg::Sha384 => {
                type $d = sha2::Sha384;
                $body
            }
            HashAlg::Sha512 => {
                type $d = sha2::Sha512;
                $body
            }
        }
    };
}

/// The public exponent used when a template's exponent is 0.
pub const DEFAULT_EXPONENT: u32 = 65537;

/// Smallest modulus accepted for public keys and loaded private keys.
const MIN_BITS: u32 = 1024;
/// Largest modulus accepted anywhere.
const MAX_BITS: u32 = 4096;

/// Why an RSA operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RsaError {
    /// The key size is not one this module handles.
    #[error("the RSA key size is not supported")]
    UnsupportedKeySize,
    /// The public exponent is even, too small, or (for key generation) not a
    /// prime of at least 65537.
    #[error("the RSA public exponent is not supported")]
    InvalidExponent,
    /// The modulus is malformed (even, too short, too long).
    #[error("the RSA modulus is not valid")]
    InvalidModulus,
    /// The prime does not divide the modulus, or the factors are not usable.
    #[error("the RSA prime does not match the modulus")]
    InvalidPrime,
    /// A digest's length differs from its hash algorithm's digest size.
    #[error("the digest size does not match the hash algorithm")]
    DigestSize,
    /// A raw RSA input is not smaller than the modulus.
    #[error("the value is not smaller than the RSA modulus")]
    ValueTooLarge,
    /// The message does not fit the key with this padding scheme.
    #[error("the message is too long for the RSA key and scheme")]
    MessageTooLong,
    /// A ciphertext's length differs from the modulus's.
    #[error("the ciphertext size does not match the RSA modulus")]
    CiphertextSize,
    /// The ciphertext does not decrypt (padding or label check failed).
    #[error("the RSA decryption failed")]
    Decryption,
    /// The signature does not verify.
    #[error("the RSA signature does not verify")]
    Verification,
    /// Prime generation gave up: the randomness source is broken.
    #[error("no RSA prime was found in the allowed number of candidates")]
    PrimeNotFound,
    /// The operating system's random number generator failed.
    #[error("the random number generator failed")]
    Rng,
    /// The underlying RSA implementation reported an unexpected failure.
    #[error("the RSA operation failed")]
    Internal,
}

fn map_rsa_error(e: rsa::Error) -> RsaError {
    match e {
        rsa::Error::Decryption => RsaError::Decryption,
        rsa::Error::Verification => RsaError::Verification,
        rsa::Error::MessageTooLong | rsa::Error::LabelTooLong | rsa::Error::InvalidPadLen => {
            RsaError::MessageTooLong
        }
        rsa::Error::InputNotHashed => RsaError::DigestSize,
        rsa::Error::Rng => RsaError::Rng,
        rsa::Error::InvalidPrime | rsa::Error::NprimesTooSmall | rsa::Error::TooFewPrimes => {
            RsaError::InvalidPrime
        }
        rsa::Error::InvalidModulus | rsa::Error::ModulusTooSmall | rsa::Error::ModulusTooLarge => {
            RsaError::InvalidModulus
        }
        rsa::Error::InvalidExponent
        | rsa::Error::PublicExponentTooSmall
        | rsa::Error::PublicExponentTooLarge => RsaError::InvalidExponent,
        _ => RsaError::Internal,
    }
}

// ---------------------------------------------------------------------------
// Randomness adapters for the `rsa` crate.

/// A caller's fill function as an RNG (padding randomness for encryption).
struct FillRng<'a>(&'a mut dyn FnMut(&mut [u8]));

impl TryRng for FillRng<'_> {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        (self.0)(&mut b);
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        (self.0)(&mut b);
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        (self.0)(dst);
        Ok(())
    }
}

impl TryCryptoRng for FillRng<'_> {}

/// The operating system's RNG (blinding and PSS salts).
struct OsRng;

impl TryRng for OsRng {
    type Error = getrandom::Error;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        getrandom::fill(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        getrandom::fill(dst)
    }
}

impl TryCryptoRng for OsRng {}

// ---------------------------------------------------------------------------
// Integer helpers.

/// `bytes` without its leading zero octets.
fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or(&[])
}

/// `x` as exactly `len` big-endian octets; `None` if it does not fit.
fn to_be_fixed(x: &BoxedUint, len: usize) -> Option<Zeroizing<Vec<u8>>> {
    let all = Zeroizing::new(x.to_be_bytes().into_vec());
    let mut out = Zeroizing::new(vec![0u8; len]);
    if all.len() >= len {
        let (high, low) = all.split_at(all.len() - len);
        if high.iter().any(|&b| b != 0) {
            return None;
        }
        out.copy_from_slice(low);
    } else {
        out.get_mut(len - all.len()..)?.copy_from_slice(&all);
    }
    Some(out)
}

/// The big-endian `bytes` reduced modulo `m` (`m` > 0).
fn rem_u64(bytes: &[u8], m: u64) -> u64 {
    let m = u128::from(m.max(1));
    let mut r: u128 = 0;
    let head = bytes.len() % 8;
    let (first, rest) = bytes.split_at(head);
    for &b in first {
        r = ((r << 8) | u128::from(b)) % m;
    }
    for chunk in rest.chunks_exact(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        r = ((r << 64) | u128::from(u64::from_be_bytes(w))) % m;
    }
    // r < m ≤ 2^64.
    u64::try_from(r).unwrap_or(0)
}

fn gcd_u64(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Deterministic primality of a 32-bit integer by trial division.
fn is_prime_u32(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d: u32 = 3;
    while d <= n / d {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

// ---------------------------------------------------------------------------
// Prime generation (docs/primary-keys.md, "RSA prime generation").

/// Number of odd primes below 2000.
const SMALL_PRIME_COUNT: usize = 302;

/// The odd primes below 2000, ascending: the trial divisors.
static SMALL_PRIMES: [u16; SMALL_PRIME_COUNT] = small_primes();

// Evaluated at compile time: an out-of-bounds index would fail the build,
// never panic at run time.
#[allow(clippy::indexing_slicing)]
const fn small_primes() -> [u16; SMALL_PRIME_COUNT] {
    let mut composite = [false; 2000];
    let mut out = [0u16; SMALL_PRIME_COUNT];
    let mut count = 0;
    let mut i = 3;
    while i < 2000 {
        if !composite[i] {
            out[count] = i as u16;
            count += 1;
            let mut j = i * i;
            while j < 2000 {
                composite[j] = true;
                j += i;
            }
        }
        i += 2;
    }
    assert!(count == SMALL_PRIME_COUNT);
    out
}

/// Products of consecutive runs of [`SMALL_PRIMES`], each below 2^64, with
/// the run's range: one multi-precision reduction per run.
fn small_prime_groups() -> &'static [(u64, std::ops::Range<usize>)] {
    static GROUPS: std::sync::OnceLock<Vec<(u64, std::ops::Range<usize>)>> =
        std::sync::OnceLock::new();
    GROUPS.get_or_init(|| {
        let mut groups = Vec::new();
        let mut start = 0;
        let mut product: u64 = 1;
        for (i, &p) in SMALL_PRIMES.iter().enumerate() {
            match product.checked_mul(u64::from(p)) {
                Some(next) => product = next,
                None => {
                    groups.push((product, start..i));
                    start = i;
                    product = u64::from(p);
                }
            }
        }
        groups.push((product, start..SMALL_PRIME_COUNT));
        groups
    })
}

/// True if the big-endian candidate is divisible by an odd prime below
/// 2000.
fn has_small_factor(candidate: &[u8]) -> bool {
    small_prime_groups().iter().any(|(product, range)| {
        let r = rem_u64(candidate, *product);
        SMALL_PRIMES
            .get(range.clone())
            .unwrap_or(&[])
            .iter()
            .any(|&p| r.is_multiple_of(u64::from(p)))
    })
}

/// Miller–Rabin rounds per prime size: FIPS 186-5 Table B.1, error
/// probability 2^-112 / 2^-128 / 2^-144 (M-R tests only).
fn mr_rounds(prime_bits: u32) -> u32 {
    match prime_bits {
        0..=1024 => 5,
        _ => 4,
    }
}

/// Candidates tried per prime before giving up (docs/primary-keys.md):
/// 32 × the prime's size in bits. A working source fails this with
/// probability below 2^-130.
fn candidate_limit(prime_bits: u32) -> u32 {
    32 * prime_bits
}

/// Reads the next `buf.len()` octets of the stream into `buf` and returns
/// them as an integer of `bits` precision.
fn read_integer(
    fill: &mut dyn FnMut(&mut [u8]),
    buf: &mut [u8],
    bits: u32,
) -> Option<Zeroizing<BoxedUint>> {
    fill(buf);
    BoxedUint::from_be_slice(buf, bits).ok().map(Zeroizing::new)
}

/// Miller–Rabin with `rounds` bases read from the stream: each base is
/// `2 + (B mod (c - 3))` for the next `k/8`-octet big-endian `B`. Stops
/// reading at the first round that proves `c` composite.
fn miller_rabin(fill: &mut dyn FnMut(&mut [u8]), c: &BoxedUint, bits: u32, rounds: u32) -> bool {
    let Some(odd) = Odd::new(c.clone()).into_option() else {
        return false;
    };
    let params = BoxedMontyParams::new(odd);
    let one = BoxedUint::one_with_precision(bits);
    let two = BoxedUint::from(2u32).resize_unchecked(bits);
    let three = BoxedUint::from(3u32).resize_unchecked(bits);
    let c_minus_1 = Zeroizing::new(c.wrapping_sub(&one));
    let Some(c_minus_3) = NonZero::new(c.wrapping_sub(&three)).into_option() else {
        return false;
    };
    let s = c_minus_1.trailing_zeros();
    if s == 0 {
        return false;
    }
    let d = Zeroizing::new(c_minus_1.wrapping_shr(s));
    let one_m = BoxedMontyForm::one(&params);
    let minus_one_m = BoxedMontyForm::new((*c_minus_1).clone(), &params);
    let mut buf = Zeroizing::new(vec![0u8; (bits / 8) as usize]);
    for _ in 0..rounds {
        let Some(b) = read_integer(fill, &mut buf, bits) else {
            return false;
        };
        let a = Zeroizing::new(b.rem(&c_minus_3).wrapping_add(&two));
        let mut x = BoxedMontyForm::new((*a).clone(), &params).pow(&d);
        let mut passed = x == one_m || x == minus_one_m;
        let mut i = 1;
        while !passed && i < s {
            x = x.square();
            if x == minus_one_m {
                passed = true;
            } else if x == one_m {
                break;
            }
            i += 1;
        }
        x.zeroize();
        if !passed {
            return false;
        }
    }
    true
}

/// |a - b| > 2^(bits - 100).
fn far_apart(a: &BoxedUint, b: &BoxedUint, bits: u32) -> bool {
    let diff = Zeroizing::new(if a > b {
        a.wrapping_sub(b)
    } else {
        b.wrapping_sub(a)
    });
    let bound = BoxedUint::one_with_precision(bits).wrapping_shl(bits.saturating_sub(100));
    *diff > bound
}

/// One prime of `bits` bits (docs/primary-keys.md). `other` is the first
/// prime when searching for the second. `count` counts the candidates read.
fn find_prime(
    fill: &mut dyn FnMut(&mut [u8]),
    bits: u32,
    e: u32,
    other: Option<&BoxedUint>,
    count: &mut u32,
) -> Result<Zeroizing<BoxedUint>, RsaError> {
    let len = (bits / 8) as usize;
    let rounds = mr_rounds(bits);
    let mut buf = Zeroizing::new(vec![0u8; len]);
    for _ in 0..candidate_limit(bits) {
        *count = count.saturating_add(1);
        fill(&mut buf);
        if let Some(top) = buf.first_mut() {
            *top |= 0xC0;
        }
        if let Some(low) = buf.last_mut() {
            *low |= 0x01;
        }
        if has_small_factor(&buf) {
            continue;
        }
        // gcd(c - 1, e) = 1, computed on (c - 1) mod e.
        let e64 = u64::from(e);
        let c_minus_1_mod_e = (rem_u64(&buf, e64) + e64 - 1) % e64;
        if gcd_u64(c_minus_1_mod_e, e64) != 1 {
            continue;
        }
        let c =
            Zeroizing::new(BoxedUint::from_be_slice(&buf, bits).map_err(|_| RsaError::Internal)?);
        if let Some(p) = other
            && !far_apart(&c, p, bits)
        {
            continue;
        }
        if miller_rabin(fill, &c, bits, rounds) {
            return Ok(c);
        }
    }
    Err(RsaError::PrimeNotFound)
}

/// The public exponent for key generation: 0 means 65537; otherwise a
/// prime ≥ 65537 (as the TCG reference implementation requires).
fn generation_exponent(exponent: u32) -> Result<u32, RsaError> {
    match exponent {
        0 => Ok(DEFAULT_EXPONENT),
        e if e >= DEFAULT_EXPONENT && is_prime_u32(e) => Ok(e),
        _ => Err(RsaError::InvalidExponent),
    }
}

/// The exponent of an existing key: 0 means 65537; otherwise odd and ≥ 3.
fn key_exponent(exponent: u32) -> Result<u32, RsaError> {
    match exponent {
        0 => Ok(DEFAULT_EXPONENT),
        e if e >= 3 && !e.is_multiple_of(2) => Ok(e),
        _ => Err(RsaError::InvalidExponent),
    }
}

/// p and q for a `bits`-bit key, and the number of candidates read.
fn generate_primes(
    fill: &mut dyn FnMut(&mut [u8]),
    bits: u16,
    e: u32,
) -> Result<(Zeroizing<BoxedUint>, Zeroizing<BoxedUint>, u32), RsaError> {
    if !matches!(bits, 2048 | 3072 | 4096) {
        return Err(RsaError::UnsupportedKeySize);
    }
    let half = u32::from(bits) / 2;
    let mut count = 0;
    let p = find_prime(fill, half, e, None, &mut count)?;
    let q = find_prime(fill, half, e, Some(&p), &mut count)?;
    Ok((p, q, count))
}

// ---------------------------------------------------------------------------
// Keys.

/// An RSA private key (TPM keeps n, e and the prime p in
/// TPM2B_PRIVATE_KEY_RSA).
#[derive(Clone)]
pub struct RsaKey {
    key: RsaPrivateKey,
    e: u32,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaKey")
            .field("bits", &self.bits())
            .field("e", &self.e)
            .finish_non_exhaustive()
    }
}

impl RsaKey {
    /// Deterministic derivation for primary keys from `fill` (a
    /// [`KdfStream`](super::stream::KdfStream)'s fill), `bits` ∈ {2048,
    /// 3072, 4096}, `exponent` (0 means 65537). The algorithm is specified
    /// in docs/primary-keys.md and must never change.
    pub fn derive(
        fill: &mut dyn FnMut(&mut [u8]),
        bits: u16,
        exponent: u32,
    ) -> Result<RsaKey, RsaError> {
        Self::derive_counted(fill, bits, exponent).map(|(k, _)| k)
    }

    /// [`RsaKey::derive`], also returning the number of prime candidates
    /// read.
    fn derive_counted(
        fill: &mut dyn FnMut(&mut [u8]),
        bits: u16,
        exponent: u32,
    ) -> Result<(RsaKey, u32), RsaError> {
        let e = generation_exponent(exponent)?;
        let (p, q, count) = generate_primes(fill, bits, e)?;
        Ok((Self::from_p_q(&p, &q, e, u32::from(bits) / 2)?, count))
    }

    /// A random key (ordinary objects) from the given randomness source
    /// (the OS RNG or the DRBG): the same algorithm as [`RsaKey::derive`].
    pub fn generate(
        fill: &mut dyn FnMut(&mut [u8]),
        bits: u16,
        exponent: u32,
    ) -> Result<RsaKey, RsaError> {
        Self::derive(fill, bits, exponent)
    }

    /// The key from two distinct odd primes that fit `prime_bits` bits; the
    /// larger is stored first (it is [`RsaKey::prime`]).
    fn from_p_q(p: &BoxedUint, q: &BoxedUint, e: u32, prime_bits: u32) -> Result<RsaKey, RsaError> {
        let (big, small) = if p > q { (p, q) } else { (q, p) };
        let big = big
            .clone()
            .try_resize(prime_bits)
            .ok_or(RsaError::InvalidPrime)?;
        let small = small
            .clone()
            .try_resize(prime_bits)
            .ok_or(RsaError::InvalidPrime)?;
        let key =
            RsaPrivateKey::from_p_q(big, small, BoxedUint::from(u64::from(e))).map_err(|err| {
                match map_rsa_error(err) {
                    RsaError::InvalidExponent => RsaError::InvalidExponent,
                    RsaError::InvalidModulus => RsaError::InvalidModulus,
                    _ => RsaError::InvalidPrime,
                }
            })?;
        let bits = key.n().bits_vartime();
        if !(MIN_BITS..=MAX_BITS).contains(&bits) {
            return Err(RsaError::UnsupportedKeySize);
        }
        Ok(RsaKey { key, e })
    }

    /// Rebuild from the public modulus `n` (big-endian), `exponent` (0 =
    /// 65537) and one prime `p` (big-endian, either factor) as stored in a
    /// TPM sensitive area. Checks that p divides n into two odd factors of
    /// at most half the modulus size each.
    pub fn from_prime(n: &[u8], exponent: u32, p: &[u8]) -> Result<RsaKey, RsaError> {
        let e = key_exponent(exponent)?;
        let n = parse_modulus(n)?;
        let n_bits = n.bits_vartime();
        let prime_bits = n_bits.div_ceil(2);
        let p = strip_zeros(p);
        if p.is_empty() || p.len() > n_bits.div_ceil(8) as usize {
            return Err(RsaError::InvalidPrime);
        }
        let p = Zeroizing::new(
            BoxedUint::from_be_slice(p, n.bits_precision()).map_err(|_| RsaError::InvalidPrime)?,
        );
        let one = BoxedUint::one_with_precision(n.bits_precision());
        if *p <= one || *p >= n {
            return Err(RsaError::InvalidPrime);
        }
        let p_nz = NonZero::new((*p).clone())
            .into_option()
            .ok_or(RsaError::InvalidPrime)?;
        let (q, r) = n.div_rem(&p_nz);
        let q = Zeroizing::new(q);
        let r = Zeroizing::new(r);
        if !bool::from(r.is_zero()) || *q <= one {
            return Err(RsaError::InvalidPrime);
        }
        if p.bits() > prime_bits || q.bits() > prime_bits {
            return Err(RsaError::InvalidPrime);
        }
        let key = Self::from_p_q(&p, &q, e, prime_bits)?;
        if key.key.n().as_ref() != &n {
            return Err(RsaError::InvalidPrime);
        }
        Ok(key)
    }

    /// [`RsaKey::from_prime`], remembered: the last [`REBUILT_KEYS`] keys
    /// rebuilt are kept, keyed by SHA-256(e ‖ n ‖ p), so that loading the
    /// same key again (a resource manager's ContextLoad before every
    /// command, a persistent key, TPM2_Load of a key used before) does not
    /// recompute its private exponent and CRT values. A pure function's
    /// memo: a different p, n or e is a different entry and gets every
    /// check of `from_prime`.
    pub fn from_prime_shared(n: &[u8], exponent: u32, p: &[u8]) -> Result<Arc<RsaKey>, RsaError> {
        use sha2::Digest as _;
        use subtle::ConstantTimeEq as _;
        let mut h = sha2::Sha256::new();
        h.update(exponent.to_be_bytes());
        h.update(u32::try_from(n.len()).unwrap_or(u32::MAX).to_be_bytes());
        h.update(n);
        h.update(p);
        let id: [u8; 32] = h.finalize().into();
        let found = rebuilt_keys()
            .iter()
            .find(|(k, _)| bool::from(k.ct_eq(&id)))
            .map(|(_, key)| Arc::clone(key));
        if let Some(key) = found {
            return Ok(key);
        }
        let key = Arc::new(Self::from_prime(n, exponent, p)?);
        let mut cache = rebuilt_keys();
        if cache.len() >= REBUILT_KEYS {
            cache.remove(0);
        }
        cache.push((id, Arc::clone(&key)));
        Ok(key)
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> u16 {
        u16::try_from(self.key.n().bits_vartime()).unwrap_or(u16::MAX)
    }

    /// The modulus, big-endian, exactly `bits/8` octets.
    pub fn modulus(&self) -> Vec<u8> {
        modulus_bytes(&self.key)
    }

    /// The public exponent (65537 when the template said 0).
    pub fn exponent(&self) -> u32 {
        self.e
    }

    /// The larger prime factor, big-endian, `bits/16` octets: what the TPM
    /// stores in TPM2B_PRIVATE_KEY_RSA.
    pub fn prime(&self) -> Zeroizing<Vec<u8>> {
        let len = self.key.size().div_ceil(2);
        rsa::traits::PrivateKeyParts::primes(&self.key)
            .first()
            .and_then(|p| to_be_fixed(p.as_ref(), len))
            .unwrap_or_else(|| Zeroizing::new(Vec::new()))
    }

    /// The public part.
    pub fn public(&self) -> RsaPublic {
        RsaPublic {
            key: self.key.to_public_key(),
            e: self.e,
        }
    }

    /// Decrypts `ciphertext` (exactly the modulus size) under `scheme`.
    ///
    /// RSAES uses implicit rejection: a ciphertext with bad padding yields a
    /// pseudo-random message derived from the key and ciphertext instead of
    /// an error (no Bleichenbacher/Marvin oracle).
    pub fn decrypt(
        &self,
        scheme: &RsaDecryptScheme,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, RsaError> {
        let k = self.key.size();
        if ciphertext.len() != k {
            return Err(RsaError::CiphertextSize);
        }
        let mut rng = OsRng;
        match scheme {
            RsaDecryptScheme::Raw => {
                let precision = self.key.n_bits_precision();
                let c = Zeroizing::new(
                    BoxedUint::from_be_slice(ciphertext, precision)
                        .map_err(|_| RsaError::ValueTooLarge)?,
                );
                if *c >= *self.key.n().as_ref() {
                    return Err(RsaError::ValueTooLarge);
                }
                let m = Zeroizing::new(
                    rsa::hazmat::rsa_decrypt_and_check(&self.key, Some(&mut rng), &c)
                        .map_err(map_rsa_error)?,
                );
                to_be_fixed(&m, k).ok_or(RsaError::Internal)
            }
            RsaDecryptScheme::Rsaes => Pkcs1v15Encrypt
                .decrypt(Some(&mut rng), &self.key, ciphertext)
                .map(Zeroizing::new)
                .map_err(|_| RsaError::Decryption),
            RsaDecryptScheme::Oaep { hash, label } => with_digest!(*hash, D => {
                Oaep::<D>::new_with_label(label.as_slice())
                    .decrypt(Some(&mut rng), &self.key, ciphertext)
                    .map(Zeroizing::new)
                    .map_err(|_| RsaError::Decryption)
            }),
        }
    }

    /// Signs `digest` (already hashed with the scheme's hash; its length
    /// must be that hash's digest size). PSS uses the salt length of the TCG
    /// reference implementation: the digest size, or less if the key is too
    /// small for it.
    pub fn sign(&self, scheme: &RsaSignScheme, digest: &[u8]) -> Result<Vec<u8>, RsaError> {
        let hash = scheme.hash();
        if digest.len() != hash.size() {
            return Err(RsaError::DigestSize);
        }
        let mut rng = OsRng;
        match scheme {
            RsaSignScheme::Pkcs1v15(_) => pkcs1v15_scheme(hash)
                .sign(Some(&mut rng), &self.key, digest)
                .map_err(map_rsa_error),
            RsaSignScheme::Pss(_) => {
                let em_len = (self.key.n().bits_vartime() as usize - 1).div_ceil(8);
                let salt_len = em_len
                    .checked_sub(hash.size() + 2)
                    .ok_or(RsaError::MessageTooLong)?
                    .min(hash.size());
                with_digest!(hash, D => {
                    Pss::<D>::new_with_salt(salt_len)
                        .sign(Some(&mut rng), &self.key, digest)
                        .map_err(map_rsa_error)
                })
            }
        }
    }
}

fn modulus_bytes(key: &impl PublicKeyParts) -> Vec<u8> {
    to_be_fixed(key.n().as_ref(), key.size())
        .map(|v| v.to_vec())
        .unwrap_or_default()
}

/// A modulus from big-endian octets: odd, 1024 to 4096 bits, stored at its
/// minimal precision.
fn parse_modulus(n: &[u8]) -> Result<BoxedUint, RsaError> {
    let n = strip_zeros(n);
    if n.len() > (MAX_BITS / 8) as usize {
        return Err(RsaError::UnsupportedKeySize);
    }
    let n = BoxedUint::from_be_slice_vartime(n);
    let bits = n.bits_vartime();
    if !(MIN_BITS..=MAX_BITS).contains(&bits) {
        return Err(RsaError::UnsupportedKeySize);
    }
    if !bool::from(n.bit(0)) {
        return Err(RsaError::InvalidModulus);
    }
    Ok(n.resize_unchecked(bits))
}

/// RSASSA-PKCS1-v1_5 with the DigestInfo prefix of `hash` (RFC 8017 §9.2,
/// note 1).
fn pkcs1v15_scheme(hash: HashAlg) -> Pkcs1v15Sign {
    let prefix: &[u8] = match hash {
        HashAlg::Sha1 => &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        HashAlg::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        HashAlg::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        HashAlg::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    };
    Pkcs1v15Sign {
        hash_len: Some(hash.size()),
        prefix: prefix.into(),
    }
}

/// An RSA public key.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublic {
    key: RsaPublicKey,
    e: u32,
}

impl std::fmt::Debug for RsaPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPublic")
            .field("bits", &self.bits())
            .field("e", &self.e)
            .finish_non_exhaustive()
    }
}

impl RsaPublic {
    /// The key with modulus `n` (big-endian, 1024 to 4096 bits) and
    /// `exponent` (0 = 65537; otherwise odd and ≥ 3).
    pub fn new(n: &[u8], exponent: u32) -> Result<RsaPublic, RsaError> {
        let e = key_exponent(exponent)?;
        let n = parse_modulus(n)?;
        let key = RsaPublicKey::new(n, BoxedUint::from(u64::from(e))).map_err(map_rsa_error)?;
        Ok(RsaPublic { key, e })
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> u16 {
        u16::try_from(self.key.n().bits_vartime()).unwrap_or(u16::MAX)
    }

    /// The modulus, big-endian, exactly `bits/8` octets.
    pub fn modulus(&self) -> Vec<u8> {
        modulus_bytes(&self.key)
    }

    /// The public exponent (65537 when given as 0).
    pub fn exponent(&self) -> u32 {
        self.e
    }

    /// Encrypts `msg` under `scheme`, with padding randomness from `fill`.
    /// Raw: `msg` is left-padded with zeros to the modulus size and must be
    /// smaller than the modulus. The result is exactly the modulus size.
    pub fn encrypt(
        &self,
        fill: &mut dyn FnMut(&mut [u8]),
        scheme: &RsaDecryptScheme,
        msg: &[u8],
    ) -> Result<Vec<u8>, RsaError> {
        let mut rng = FillRng(fill);
        match scheme {
            RsaDecryptScheme::Raw => {
                let k = self.key.size();
                if msg.len() > k {
                    return Err(RsaError::MessageTooLong);
                }
                let m = BoxedUint::from_be_slice(msg, self.key.n_bits_precision())
                    .map_err(|_| RsaError::ValueTooLarge)?;
                if m >= *self.key.n().as_ref() {
                    return Err(RsaError::ValueTooLarge);
                }
                let c = rsa::hazmat::rsa_encrypt(&self.key, &m).map_err(map_rsa_error)?;
                to_be_fixed(&c, k)
                    .map(|v| v.to_vec())
                    .ok_or(RsaError::Internal)
            }
            RsaDecryptScheme::Rsaes => Pkcs1v15Encrypt
                .encrypt(&mut rng, &self.key, msg)
                .map_err(map_rsa_error),
            RsaDecryptScheme::Oaep { hash, label } => with_digest!(*hash, D => {
                Oaep::<D>::new_with_label(label.as_slice())
                    .encrypt(&mut rng, &self.key, msg)
                    .map_err(map_rsa_error)
            }),
        }
    }

    /// Verifies `signature` over `digest` (whose length must be the scheme
    /// hash's digest size). PSS accepts any salt length.
    pub fn verify(
        &self,
        scheme: &RsaSignScheme,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<(), RsaError> {
        let hash = scheme.hash();
        if digest.len() != hash.size() {
            return Err(RsaError::DigestSize);
        }
        if signature.len() != self.key.size() {
            return Err(RsaError::Verification);
        }
        let result = match scheme {
            RsaSignScheme::Pkcs1v15(_) => {
                pkcs1v15_scheme(hash).verify(&self.key, digest, signature)
            }
            RsaSignScheme::Pss(_) => with_digest!(hash, D => {
                Pss::<D> {
                    blinded: false,
                    digest: <D as sha2::Digest>::new(),
                    salt_len: None,
                }
                .verify(&self.key, digest, signature)
            }),
        };
        result.map_err(|_| RsaError::Verification)
    }
}

/// An RSA encryption scheme (TPMT_RSA_DECRYPT).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RsaDecryptScheme {
    /// RSAES-PKCS1-v1_5.
    Rsaes,
    /// RSAES-OAEP with MGF1 over the same hash; the label is used as given.
    Oaep {
        /// The hash for the label digest and MGF1.
        hash: HashAlg,
        /// The label (the caller adds any terminating zero octet).
        label: Vec<u8>,
    },
    /// TPM_ALG_NULL: modular exponentiation only.
    Raw,
}

/// An RSA signature scheme (TPMT_SIG_SCHEME).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaSignScheme {
    /// RSASSA-PKCS1-v1_5.
    Pkcs1v15(HashAlg),
    /// RSASSA-PSS with MGF1 over the same hash.
    Pss(HashAlg),
}

impl RsaSignScheme {
    /// The scheme's hash algorithm.
    pub fn hash(&self) -> HashAlg {
        match *self {
            RsaSignScheme::Pkcs1v15(h) | RsaSignScheme::Pss(h) => h,
        }
    }
}

/// How many rebuilt keys [`RsaKey::from_prime_shared`] remembers.
pub const REBUILT_KEYS: usize = 8;

/// (SHA-256(e ‖ n ‖ p), key), oldest first.
type RebuiltKeys = Vec<([u8; 32], Arc<RsaKey>)>;
static REBUILT: Mutex<RebuiltKeys> = Mutex::new(Vec::new());

fn rebuilt_keys() -> MutexGuard<'static, RebuiltKeys> {
    // Every update leaves the list consistent, so a poisoned lock's
    // contents are still good.
    REBUILT.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------
// Key pool.

/// Pre-generated random RSA keys (each handed out once), refilled in the
/// background after use.
pub struct RsaKeyPool {
    bits: u16,
    shared: Arc<PoolShared>,
}

struct PoolShared {
    state: Mutex<PoolState>,
    wake: Condvar,
}

struct PoolState {
    keys: Vec<RsaKey>,
    shutdown: bool,
}

impl PoolShared {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for RsaKeyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaKeyPool")
            .field("bits", &self.bits)
            .field("ready", &self.ready())
            .finish()
    }
}

impl RsaKeyPool {
    /// `size` keys of `bits` (0 disables the pool). Starts one background
    /// thread that fills the pool from the OS RNG and then sleeps on a
    /// condition variable: an idle, full pool uses no CPU.
    pub fn new(bits: u16, size: usize) -> Arc<RsaKeyPool> {
        let shared = Arc::new(PoolShared {
            state: Mutex::new(PoolState {
                keys: Vec::with_capacity(size),
                shutdown: false,
            }),
            wake: Condvar::new(),
        });
        if size > 0 && matches!(bits, 2048 | 3072 | 4096) {
            let thread_shared = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name("vtpm-rsa-pool".into())
                .spawn(move || refill(&thread_shared, bits, size));
            if let Err(err) = spawned {
                log::warn!("the RSA key pool thread could not be started: {err}");
            }
        }
        Arc::new(RsaKeyPool { bits, shared })
    }

    /// A key if one is ready (never blocks); wakes the refill thread. Only
    /// requests for the pool's size and the default exponent (0 or 65537)
    /// match.
    pub fn take(&self, bits: u16, exponent: u32) -> Option<RsaKey> {
        if bits != self.bits || !(exponent == 0 || exponent == DEFAULT_EXPONENT) {
            return None;
        }
        let key = self.shared.lock().keys.pop();
        if key.is_some() {
            self.shared.wake.notify_one();
        }
        key
    }

    /// The number of keys ready.
    pub fn ready(&self) -> usize {
        self.shared.lock().keys.len()
    }
}

impl Drop for RsaKeyPool {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
    }
}

/// The pool thread: keep `size` keys ready until shut down.
fn refill(shared: &PoolShared, bits: u16, size: usize) {
    loop {
        {
            let mut state = shared.lock();
            while !state.shutdown && state.keys.len() >= size {
                state = shared
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.shutdown {
                return;
            }
        }
        let mut rng_failed = false;
        let key = RsaKey::generate(
            &mut |buf: &mut [u8]| {
                if getrandom::fill(buf).is_err() {
                    rng_failed = true;
                }
            },
            bits,
            0,
        );
        match key {
            Ok(key) if !rng_failed => {
                let mut state = shared.lock();
                if state.shutdown {
                    return;
                }
                state.keys.push(key);
            }
            _ => {
                log::warn!("the RSA key pool stopped: key generation failed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::self_test::hex;
    use crate::crypto::stream::KdfStream;

    fn os_fill(buf: &mut [u8]) {
        getrandom::fill(buf).unwrap();
    }

    fn golden_stream() -> KdfStream {
        KdfStream::new(
            HashAlg::Sha256,
            &[0x11; 32],
            b"vtpm-primary-v1",
            b"golden-template-name",
            b"",
        )
    }

    #[test]
    fn small_primes_table() {
        assert_eq!(SMALL_PRIMES.first(), Some(&3));
        assert_eq!(SMALL_PRIMES.last(), Some(&1999));
        assert!(SMALL_PRIMES.iter().all(|&p| is_prime_u32(u32::from(p))));
        let covered: usize = small_prime_groups().iter().map(|(_, r)| r.len()).sum();
        assert_eq!(covered, SMALL_PRIME_COUNT);
        for (product, range) in small_prime_groups() {
            let expect = SMALL_PRIMES[range.clone()]
                .iter()
                .fold(1u64, |a, &p| a * u64::from(p));
            assert_eq!(*product, expect);
        }
    }

    #[test]
    fn rem_u64_matches_bigint() {
        let bytes: Vec<u8> = (0u8..77)
            .map(|i| i.wrapping_mul(37).wrapping_add(5))
            .collect();
        let n = BoxedUint::from_be_slice_vartime(&bytes);
        for m in [3u64, 65537, 1_999 * 1_997 * 1_993, u64::MAX, u64::MAX - 58] {
            let nz = NonZero::new(BoxedUint::from(m)).unwrap();
            let expect = n.rem_vartime(&nz);
            assert_eq!(
                BoxedUint::from(rem_u64(&bytes, m)),
                expect.resize_unchecked(64)
            );
        }
    }

    #[test]
    fn miller_rabin_known_values() {
        // 2^127 - 1 is prime; 2^127 + 1 = 3 × … is composite and odd;
        // a Carmichael-like strong pseudoprime to base 2 (3215031751) must
        // fail for other bases.
        let mut stream = KdfStream::new(HashAlg::Sha256, b"mr", b"test", b"", b"");
        let mersenne = BoxedUint::one_with_precision(128)
            .wrapping_shl(127)
            .wrapping_sub(BoxedUint::one_with_precision(128));
        assert!(miller_rabin(&mut |b| stream.fill(b), &mersenne, 128, 20));
        let composite = mersenne.wrapping_add(BoxedUint::from(2u32).resize_unchecked(128));
        assert!(!miller_rabin(&mut |b| stream.fill(b), &composite, 128, 20));
        let spsp = BoxedUint::from(3_215_031_751u64).resize_unchecked(64);
        assert!(!miller_rabin(&mut |b| stream.fill(b), &spsp, 64, 20));
    }

    /// GOLDEN VECTORS. These pin the primary-key derivation of
    /// docs/primary-keys.md. They must never change: a change re-keys every
    /// RSA primary key, breaking every sealed blob and EK certificate.
    #[test]
    fn derive_golden_vectors() {
        for (bits, modulus_sha256, candidates) in [
            (
                2048u16,
                "ee22b6f6e107b655706bc1064b1803a625b9c040efaae23b3fd808e6bdc9c66a",
                368u32,
            ),
            (
                3072,
                "c89a40d7f6de86d440655275d229eedbb8963f43827ef33757de190e9e5b4c6e",
                948,
            ),
        ] {
            let mut stream = golden_stream();
            let (key, count) = RsaKey::derive_counted(&mut |b| stream.fill(b), bits, 0).unwrap();
            assert_eq!(key.bits(), bits);
            assert_eq!(key.modulus().len(), usize::from(bits) / 8);
            assert_eq!(key.prime().len(), usize::from(bits) / 16);
            assert_eq!(key.exponent(), 65537);
            assert_eq!(
                hex(&HashAlg::Sha256.digest(&[&key.modulus()])),
                modulus_sha256
            );
            assert_eq!(count, candidates);
            check_key(&key);
            // The same stream gives the same key, and so does the stored form.
            let mut again = golden_stream();
            let key2 = RsaKey::derive(&mut |b| again.fill(b), bits, 65537).unwrap();
            assert_eq!(key2.modulus(), key.modulus());
            assert_eq!(*key2.prime(), *key.prime());
            let key3 = RsaKey::from_prime(&key.modulus(), 0, &key.prime()).unwrap();
            assert_eq!(key3.modulus(), key.modulus());
        }
    }

    /// p·q = n with both factors prime-looking and balanced, and the key
    /// signs, verifies, encrypts and decrypts.
    fn check_key(key: &RsaKey) {
        let n = BoxedUint::from_be_slice_vartime(&key.modulus());
        let p = BoxedUint::from_be_slice_vartime(&key.prime());
        let (q, r) = n.div_rem_vartime(&NonZero::new(p.clone()).unwrap());
        assert!(bool::from(r.is_zero()));
        assert_eq!(p.bits(), u32::from(key.bits()) / 2);
        assert_eq!(q.bits_vartime(), u32::from(key.bits()) / 2);
        assert!(p > q.clone().resize_unchecked(p.bits_precision()));
        let digest = HashAlg::Sha256.digest(&[b"check"]);
        for scheme in [
            RsaSignScheme::Pkcs1v15(HashAlg::Sha256),
            RsaSignScheme::Pss(HashAlg::Sha256),
        ] {
            let sig = key.sign(&scheme, &digest).unwrap();
            key.public().verify(&scheme, &digest, &sig).unwrap();
        }
        let ct = key
            .public()
            .encrypt(&mut os_fill, &RsaDecryptScheme::Rsaes, b"msg")
            .unwrap();
        assert_eq!(
            &*key.decrypt(&RsaDecryptScheme::Rsaes, &ct).unwrap(),
            b"msg"
        );
    }

    fn test_key() -> RsaKey {
        let mut stream = KdfStream::new(HashAlg::Sha256, b"test key", b"L", b"", b"");
        RsaKey::derive(&mut |b| stream.fill(b), 2048, 0).unwrap()
    }

    #[test]
    fn raw_round_trip_and_range() {
        let key = test_key();
        let public = key.public();
        let msg = b"raw message";
        let ct = public
            .encrypt(&mut os_fill, &RsaDecryptScheme::Raw, msg)
            .unwrap();
        assert_eq!(ct.len(), 256);
        let pt = key.decrypt(&RsaDecryptScheme::Raw, &ct).unwrap();
        assert_eq!(pt.len(), 256);
        assert!(pt[..256 - msg.len()].iter().all(|&b| b == 0));
        assert_eq!(&pt[256 - msg.len()..], msg);
        // Raw is deterministic: m^e mod n.
        let ct2 = public
            .encrypt(&mut os_fill, &RsaDecryptScheme::Raw, msg)
            .unwrap();
        assert_eq!(ct, ct2);
        // m = n and m > n are refused both ways.
        let n = key.modulus();
        assert_eq!(
            public.encrypt(&mut os_fill, &RsaDecryptScheme::Raw, &n),
            Err(RsaError::ValueTooLarge)
        );
        assert_eq!(
            key.decrypt(&RsaDecryptScheme::Raw, &n).err(),
            Some(RsaError::ValueTooLarge)
        );
        let ff = vec![0xff; 256];
        assert_eq!(
            public.encrypt(&mut os_fill, &RsaDecryptScheme::Raw, &ff),
            Err(RsaError::ValueTooLarge)
        );
        assert_eq!(
            key.decrypt(&RsaDecryptScheme::Raw, &ff).err(),
            Some(RsaError::ValueTooLarge)
        );
        assert_eq!(
            public.encrypt(&mut os_fill, &RsaDecryptScheme::Raw, &[1; 257]),
            Err(RsaError::MessageTooLong)
        );
        // n - 1 is fine; zero is fine.
        let mut n_minus_1 = n.clone();
        *n_minus_1.last_mut().unwrap() -= 1;
        let c = public
            .encrypt(&mut os_fill, &RsaDecryptScheme::Raw, &n_minus_1)
            .unwrap();
        assert_eq!(*key.decrypt(&RsaDecryptScheme::Raw, &c).unwrap(), n_minus_1);
        let c = public
            .encrypt(&mut os_fill, &RsaDecryptScheme::Raw, &[])
            .unwrap();
        assert_eq!(c, vec![0; 256]);
    }

    #[test]
    fn schemes_round_trip() {
        let key = test_key();
        let public = key.public();
        for hash in HashAlg::ALL {
            let scheme = RsaDecryptScheme::Oaep {
                hash,
                label: b"label\0".to_vec(),
            };
            let ct = public.encrypt(&mut os_fill, &scheme, b"secret").unwrap();
            assert_eq!(&*key.decrypt(&scheme, &ct).unwrap(), b"secret");
            // Another label does not decrypt.
            let other = RsaDecryptScheme::Oaep {
                hash,
                label: b"label".to_vec(),
            };
            assert_eq!(key.decrypt(&other, &ct).err(), Some(RsaError::Decryption));
            let digest = hash.digest(&[b"data"]);
            for scheme in [RsaSignScheme::Pkcs1v15(hash), RsaSignScheme::Pss(hash)] {
                let sig = key.sign(&scheme, &digest).unwrap();
                assert_eq!(sig.len(), 256);
                public.verify(&scheme, &digest, &sig).unwrap();
                let mut bad = sig.clone();
                bad[10] ^= 1;
                assert_eq!(
                    public.verify(&scheme, &digest, &bad),
                    Err(RsaError::Verification)
                );
                assert_eq!(
                    public.verify(&scheme, &digest[1..], &sig),
                    Err(RsaError::DigestSize)
                );
            }
        }
        // OAEP with the largest message that fits, and one more.
        let scheme = RsaDecryptScheme::Oaep {
            hash: HashAlg::Sha256,
            label: Vec::new(),
        };
        let max = vec![7u8; 256 - 2 * 32 - 2];
        let ct = public.encrypt(&mut os_fill, &scheme, &max).unwrap();
        assert_eq!(*key.decrypt(&scheme, &ct).unwrap(), max);
        assert_eq!(
            public.encrypt(&mut os_fill, &scheme, &[7u8; 256 - 2 * 32 - 1]),
            Err(RsaError::MessageTooLong)
        );
        assert_eq!(
            public.encrypt(&mut os_fill, &RsaDecryptScheme::Rsaes, &[7u8; 246]),
            Err(RsaError::MessageTooLong)
        );
    }

    #[test]
    fn from_prime_rebuilds_the_key() {
        let key = test_key();
        let ct = key
            .public()
            .encrypt(&mut os_fill, &RsaDecryptScheme::Raw, b"x")
            .unwrap();
        let rebuilt = RsaKey::from_prime(&key.modulus(), 65537, &key.prime()).unwrap();
        assert_eq!(rebuilt.modulus(), key.modulus());
        assert_eq!(*rebuilt.prime(), *key.prime());
        assert_eq!(
            rebuilt.decrypt(&RsaDecryptScheme::Raw, &ct).unwrap(),
            key.decrypt(&RsaDecryptScheme::Raw, &ct).unwrap()
        );
        // The other factor rebuilds the same key too (the larger prime is
        // the one reported), and leading zeros are ignored.
        let n = BoxedUint::from_be_slice_vartime(&key.modulus());
        let p = BoxedUint::from_be_slice_vartime(&key.prime());
        let q = n.div_rem_vartime(&NonZero::new(p).unwrap()).0;
        let mut q_bytes = vec![0, 0];
        q_bytes.extend_from_slice(&q.to_be_bytes_trimmed_vartime());
        let mut n_bytes = vec![0];
        n_bytes.extend_from_slice(&key.modulus());
        let from_q = RsaKey::from_prime(&n_bytes, 0, &q_bytes).unwrap();
        assert_eq!(*from_q.prime(), *key.prime());
        assert_eq!(from_q.modulus(), key.modulus());
    }

    #[test]
    fn from_prime_shared_remembers_only_the_same_inputs() {
        let key = test_key();
        let (n, p) = (key.modulus(), key.prime());
        let a = RsaKey::from_prime_shared(&n, 65537, &p).unwrap();
        let b = RsaKey::from_prime_shared(&n, 65537, &p).unwrap();
        assert!(
            Arc::ptr_eq(&a, &b),
            "the second rebuild is the remembered key"
        );
        assert_eq!(a.modulus(), n);
        // Another exponent or a prime that does not divide n is a miss,
        // checked in full.
        assert!(RsaKey::from_prime_shared(&n, 3, &p).is_err());
        let mut bad = p.to_vec();
        if let Some(last) = bad.last_mut() {
            *last ^= 2;
        }
        assert!(RsaKey::from_prime_shared(&n, 65537, &bad).is_err());
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let key = test_key();
        let public = key.public();
        let n = key.modulus();
        let p = key.prime();
        // from_prime.
        assert!(RsaKey::from_prime(&n, 0, &[]).is_err());
        assert!(RsaKey::from_prime(&n, 0, &[0, 0]).is_err());
        assert!(RsaKey::from_prime(&n, 0, &[1]).is_err());
        assert!(RsaKey::from_prime(&n, 0, &[3]).is_err());
        assert!(RsaKey::from_prime(&n, 0, &n).is_err());
        assert!(RsaKey::from_prime(&[], 0, &p).is_err());
        assert!(RsaKey::from_prime(&n[1..], 0, &p).is_err());
        assert!(RsaKey::from_prime(&[0xff; 600], 0, &p).is_err());
        let mut p2 = p.to_vec();
        *p2.last_mut().unwrap() ^= 2;
        assert_eq!(
            RsaKey::from_prime(&n, 0, &p2).err(),
            Some(RsaError::InvalidPrime)
        );
        assert_eq!(
            RsaKey::from_prime(&n, 2, &p).err(),
            Some(RsaError::InvalidExponent)
        );
        assert!(RsaKey::from_prime(&n, 3, &p).is_err());
        // Unbalanced factors: 3 × (a 2046-bit odd number).
        let mut x = BoxedUint::from_be_slice_vartime(&n)
            .wrapping_shr(2)
            .to_be_bytes()
            .into_vec();
        *x.last_mut().unwrap() |= 1;
        let x = BoxedUint::from_be_slice_vartime(&x);
        let unbalanced =
            crypto_bigint::ConcatenatingMul::concatenating_mul(&x, &BoxedUint::from(3u64));
        let unbalanced = unbalanced.to_be_bytes_trimmed_vartime();
        assert_eq!(unbalanced.len(), 256);
        for factor in [&[3u8][..], &x.to_be_bytes_trimmed_vartime()[..]] {
            assert_eq!(
                RsaKey::from_prime(&unbalanced, 0, factor).err(),
                Some(RsaError::InvalidPrime)
            );
        }
        // An even modulus.
        let mut even_n = n.clone();
        *even_n.last_mut().unwrap() &= 0xfe;
        assert!(RsaKey::from_prime(&even_n, 0, &p).is_err());
        // Public keys.
        assert!(RsaPublic::new(&[], 0).is_err());
        assert!(RsaPublic::new(&[0; 256], 0).is_err());
        assert!(RsaPublic::new(&even_n, 0).is_err());
        assert!(RsaPublic::new(&n[..64], 0).is_err());
        assert!(RsaPublic::new(&[0xff; 513], 0).is_err());
        assert!(RsaPublic::new(&n, 4).is_err());
        assert!(RsaPublic::new(&n, 1).is_err());
        assert_eq!(RsaPublic::new(&n, 0).unwrap(), public);
        // Ciphertexts and signatures of the wrong size.
        for scheme in [
            RsaDecryptScheme::Raw,
            RsaDecryptScheme::Rsaes,
            RsaDecryptScheme::Oaep {
                hash: HashAlg::Sha256,
                label: Vec::new(),
            },
        ] {
            for ct in [&[][..], &[1u8; 255][..], &[1u8; 257][..]] {
                assert_eq!(
                    key.decrypt(&scheme, ct).err(),
                    Some(RsaError::CiphertextSize)
                );
            }
            assert!(key.decrypt(&scheme, &[0xff; 256]).is_err());
        }
        // OAEP on garbage is an error (RSAES returns a synthetic message).
        let oaep = RsaDecryptScheme::Oaep {
            hash: HashAlg::Sha1,
            label: Vec::new(),
        };
        assert_eq!(
            key.decrypt(&oaep, &[1u8; 256]).err(),
            Some(RsaError::Decryption)
        );
        assert!(key.decrypt(&RsaDecryptScheme::Rsaes, &[1u8; 256]).is_ok());
        let digest = [0u8; 32];
        for scheme in [
            RsaSignScheme::Pkcs1v15(HashAlg::Sha256),
            RsaSignScheme::Pss(HashAlg::Sha256),
        ] {
            assert_eq!(key.sign(&scheme, &[]), Err(RsaError::DigestSize));
            assert_eq!(key.sign(&scheme, &[0; 33]), Err(RsaError::DigestSize));
            for sig in [
                &[][..],
                &[1u8; 255][..],
                &[1u8; 257][..],
                &[0xff; 256][..],
                &n[..],
            ] {
                assert_eq!(
                    public.verify(&scheme, &digest, sig),
                    Err(RsaError::Verification)
                );
            }
        }
        // Generation parameters.
        let mut zero = |b: &mut [u8]| b.fill(0);
        assert_eq!(
            RsaKey::derive(&mut zero, 1024, 0).err(),
            Some(RsaError::UnsupportedKeySize)
        );
        assert_eq!(
            RsaKey::derive(&mut zero, 2047, 0).err(),
            Some(RsaError::UnsupportedKeySize)
        );
        for e in [3, 65535, 65539 * 3, 2, 65536] {
            assert_eq!(
                RsaKey::derive(&mut zero, 2048, e).err(),
                Some(RsaError::InvalidExponent)
            );
        }
    }

    #[test]
    fn broken_source_gives_up() {
        // An all-zero source yields the same composite candidate forever.
        let mut zero = |b: &mut [u8]| b.fill(0);
        assert_eq!(
            RsaKey::generate(&mut zero, 2048, 0).err(),
            Some(RsaError::PrimeNotFound)
        );
    }

    #[test]
    fn other_exponent() {
        let mut stream = KdfStream::new(HashAlg::Sha256, b"e", b"L", b"", b"");
        let key = RsaKey::derive(&mut |b| stream.fill(b), 2048, 65539).unwrap();
        assert_eq!(key.exponent(), 65539);
        assert_eq!(key.public().exponent(), 65539);
        let rebuilt = RsaKey::from_prime(&key.modulus(), 65539, &key.prime()).unwrap();
        assert_eq!(rebuilt.modulus(), key.modulus());
    }

    #[test]
    fn pool() {
        fn wait_for(pool: &RsaKeyPool, n: usize) {
            for _ in 0..1200 {
                if pool.ready() >= n {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            panic!("the pool did not fill");
        }
        let disabled = RsaKeyPool::new(2048, 0);
        assert!(disabled.take(2048, 0).is_none());
        assert_eq!(disabled.ready(), 0);

        let pool = RsaKeyPool::new(2048, 2);
        wait_for(&pool, 2);
        assert_eq!(pool.ready(), 2);
        assert!(pool.take(3072, 0).is_none());
        assert!(pool.take(2048, 3).is_none());
        let a = pool.take(2048, 0).unwrap();
        let b = pool.take(2048, 65537).unwrap();
        assert_ne!(a.modulus(), b.modulus());
        assert_eq!(a.bits(), 2048);
        check_key(&a);
        // Refilled in the background.
        wait_for(&pool, 2);
        let c = pool.take(2048, 0).unwrap();
        assert_ne!(c.modulus(), a.modulus());
        assert_ne!(c.modulus(), b.modulus());
        drop(pool);
    }

    #[test]
    fn thread_safety() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RsaKey>();
        assert_send_sync::<RsaPublic>();
        assert_send_sync::<RsaKeyPool>();
    }

    /// Release-mode timings: `cargo test --release -p vtpm-engine
    /// rsa_timings -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn rsa_timings() {
        use std::time::Instant;
        for bits in [2048u16, 3072, 4096] {
            let runs = if bits == 4096 { 3 } else { 10 };
            let mut total = std::time::Duration::ZERO;
            let mut candidates = 0;
            for i in 0..runs {
                let mut stream = KdfStream::new(HashAlg::Sha256, &[i as u8; 32], b"t", b"", b"");
                let start = Instant::now();
                let (_, count) = RsaKey::derive_counted(&mut |b| stream.fill(b), bits, 0).unwrap();
                total += start.elapsed();
                candidates += count;
            }
            println!(
                "derive {bits}: {:?} mean over {runs}, {} candidates mean",
                total / runs,
                candidates / runs
            );
        }
        let mut stream = golden_stream();
        let start = Instant::now();
        RsaKey::derive(&mut |b| stream.fill(b), 2048, 0).unwrap();
        println!("derive 2048 golden: {:?}", start.elapsed());
        let mut stream = golden_stream();
        let start = Instant::now();
        RsaKey::derive(&mut |b| stream.fill(b), 3072, 0).unwrap();
        println!("derive 3072 golden: {:?}", start.elapsed());
        let runs = 10;
        let start = Instant::now();
        for _ in 0..runs {
            RsaKey::generate(&mut os_fill, 2048, 0).unwrap();
        }
        println!(
            "generate 2048: {:?} mean over {runs}",
            start.elapsed() / runs
        );
        let key = test_key();
        let digest = [1u8; 32];
        let start = Instant::now();
        for _ in 0..runs {
            key.sign(&RsaSignScheme::Pkcs1v15(HashAlg::Sha256), &digest)
                .unwrap();
        }
        println!("sign 2048: {:?}", start.elapsed() / runs);
    }
}
