//! HMAC_DRBG with SHA-256 (NIST SP 800-90A rev. 1, §10.1.2), the TPM's
//! random number generator. Seeded and periodically reseeded from the
//! platform's entropy; TPM2_StirRandom feeds it additional input.

use super::hash::HashAlg;
use zeroize::Zeroize;

/// Generate calls between reseeds from platform entropy.
pub const RESEED_INTERVAL: u32 = 1 << 16;

/// HMAC_DRBG state.
pub struct HmacDrbg {
    k: [u8; 32],
    v: [u8; 32],
    reseed_counter: u32,
}

impl HmacDrbg {
    /// Instantiate from `entropy || nonce || personalization` (§10.1.2.3).
    pub fn new(seed_material: &[u8]) -> Self {
        let mut d = HmacDrbg {
            k: [0; 32],
            v: [1; 32],
            reseed_counter: 1,
        };
        d.update(&[seed_material]);
        d
    }

    fn hmac_into(key: &[u8; 32], parts: &[&[u8]], out: &mut [u8; 32]) {
        let mac = HashAlg::Sha256.hmac(key, parts);
        if let Some(src) = mac.get(..32) {
            out.copy_from_slice(src);
        }
    }

    /// HMAC_DRBG_Update (§10.1.2.2).
    fn update(&mut self, provided: &[&[u8]]) {
        let empty = provided.iter().all(|p| p.is_empty());
        for round in [0u8, 1u8] {
            if round == 1 && empty {
                break;
            }
            let mut parts: Vec<&[u8]> = vec![&self.v, std::slice::from_ref(&round)];
            parts.extend_from_slice(provided);
            let mut k = [0u8; 32];
            Self::hmac_into(&self.k, &parts, &mut k);
            self.k = k;
            let mut v = [0u8; 32];
            Self::hmac_into(&self.k, &[&self.v], &mut v);
            self.v = v;
            k.zeroize();
            v.zeroize();
        }
    }

    /// Reseed with fresh entropy and additional input (§10.1.2.4).
    pub fn reseed(&mut self, entropy: &[u8], additional: &[u8]) {
        self.update(&[entropy, additional]);
        self.reseed_counter = 1;
    }

    /// True when the next generate should be preceded by a reseed.
    pub fn needs_reseed(&self) -> bool {
        self.reseed_counter >= RESEED_INTERVAL
    }

    /// Generate `out.len()` bytes (§10.1.2.5).
    pub fn generate(&mut self, out: &mut [u8], additional: &[u8]) {
        if !additional.is_empty() {
            self.update(&[additional]);
        }
        for chunk in out.chunks_mut(32) {
            let mut v = [0u8; 32];
            Self::hmac_into(&self.k, &[&self.v], &mut v);
            self.v = v;
            chunk.copy_from_slice(v.get(..chunk.len()).unwrap_or(&[]));
        }
        self.update(&[additional]);
        self.reseed_counter = self.reseed_counter.saturating_add(1);
    }
}

impl Drop for HmacDrbg {
    fn drop(&mut self) {
        self.k.zeroize();
        self.v.zeroize();
    }
}

impl std::fmt::Debug for HmacDrbg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacDrbg")
    }
}
