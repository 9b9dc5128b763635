//! Primary objects: derived from a hierarchy's primary seed and the
//! template, deterministically (docs/primary-keys.md), and cached so that
//! a repeated TPM2_CreatePrimary with the same template does not search
//! for primes again.

use super::create::{Created, Source, create_object};
use super::public_name;
use crate::crypto::hash::HashAlg;
use crate::crypto::stream::KdfStream;
use std::collections::VecDeque;
use vtpm_wire::object::Public;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Auth;
use zeroize::Zeroizing;

/// The label of the derivation stream. Part of the compatibility contract.
pub const PRIMARY_LABEL: &[u8] = b"vtpm-primary-v1";

/// Derives a primary object: the stream is
/// KdfStream(nameAlg, seed, "vtpm-primary-v1", Name(template), inSensitive.data).
pub fn derive_primary(
    seed: &[u8],
    template: &Public,
    user_auth: &[u8],
    data: &[u8],
) -> Result<Created, TpmRc> {
    let name_alg = HashAlg::from_alg(template.name_alg).ok_or(TpmRc::HASH.with_parameter(2))?;
    let name = public_name(template);
    let mut stream = KdfStream::new(name_alg, seed, PRIMARY_LABEL, &name, data);
    let mut fill = |b: &mut [u8]| stream.fill(b);
    create_object(template, user_auth, data, &mut Source::Derived(&mut fill))
}

/// How many derived primaries are remembered.
pub const PRIMARY_CACHE_SIZE: usize = 16;

/// A bounded cache of derived primary objects, keyed by
/// HMAC-SHA256(seed, template || data): the key reveals nothing of the seed
/// and changes with it (a new seed never hits an old entry).
#[derive(Default)]
pub struct PrimaryCache {
    entries: VecDeque<(Zeroizing<Vec<u8>>, Created)>,
}

impl std::fmt::Debug for PrimaryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrimaryCache({} entries)", self.entries.len())
    }
}

fn cache_key(seed: &[u8], template: &Public, data: &[u8]) -> Zeroizing<Vec<u8>> {
    let t = template.to_bytes();
    let len = u32::try_from(t.len()).unwrap_or(u32::MAX).to_be_bytes();
    Zeroizing::new(HashAlg::Sha256.hmac(seed, &[&len, &t, data]))
}

impl PrimaryCache {
    /// The primary object for (seed, template, data), derived or from the
    /// cache, with `user_auth` as its authValue.
    pub fn get_or_derive(
        &mut self,
        seed: &[u8],
        template: &Public,
        user_auth: &[u8],
        data: &[u8],
    ) -> Result<Created, TpmRc> {
        let key = cache_key(seed, template, data);
        let hit = self.entries.iter().position(|(k, _)| **k == *key);
        let created = match hit.and_then(|i| self.entries.remove(i)) {
            Some((_, c)) => c,
            None => derive_primary(seed, template, &[], data)?,
        };
        let mut out = Created {
            public: created.public.clone(),
            sensitive: created.sensitive.clone(),
            rsa: created.rsa.clone(),
        };
        out.sensitive.auth_value =
            Auth::new(user_auth).map_err(|_| TpmRc::SIZE.with_parameter(1))?;
        self.entries.push_front((key, created));
        self.entries.truncate(PRIMARY_CACHE_SIZE);
        Ok(out)
    }

    /// Forgets everything (a seed changed).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
