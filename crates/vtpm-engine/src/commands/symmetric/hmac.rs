//! TPM2_HMAC (Part 3 §15.5), and the key checks it shares with
//! TPM2_HMAC_Start (§17.2).

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::AlgId;
use vtpm_wire::object::object_attr as oa;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Digest, MaxBuffer, PublicParms, read_hash_alg};
use zeroize::Zeroizing;

/// The HMAC key at `handle` (handle 1) and the hash to use with it: the
/// key's scheme hash when it has one (`hash_alg` must then be NULL or the
/// same), otherwise `hash_alg` (parameter `hash_param`), which must not be
/// NULL (TPM_RC_VALUE).
pub(crate) fn hmac_key(
    tpm: &Tpm,
    handle: u32,
    hash_alg: AlgId,
    hash_param: usize,
) -> Result<(Zeroizing<Vec<u8>>, HashAlg), TpmRc> {
    let key = tpm.object(handle).ok_or(TpmRc::TYPE.with_handle(1))?;
    let PublicParms::KeyedHash { scheme } = &key.public.parms else {
        return Err(TpmRc::TYPE.with_handle(1));
    };
    if key.has(oa::RESTRICTED) {
        return Err(TpmRc::ATTRIBUTES.with_handle(1));
    }
    if !key.has(oa::SIGN) {
        return Err(TpmRc::KEY.with_handle(1));
    }
    let value_err = || TpmRc::VALUE.with_parameter(hash_param);
    let alg = match scheme.hash_alg.filter(|_| scheme.scheme != AlgId::NULL) {
        Some(own) => {
            if hash_alg != AlgId::NULL && hash_alg != own {
                return Err(value_err());
            }
            own
        }
        None => hash_alg,
    };
    let alg = HashAlg::from_alg(alg).ok_or_else(value_err)?;
    // A public-only object has no key.
    let bits = key
        .sensitive_bits()
        .map_err(|_| TpmRc::KEY.with_handle(1))?;
    Ok((Zeroizing::new(bits.to_vec()), alg))
}

/// TPM2_HMAC.
pub struct Hmac;

/// TPM2_HMAC's parameters.
pub struct HmacIn {
    buffer: MaxBuffer,
    hash_alg: AlgId,
}

impl Command for Hmac {
    type In = HmacIn;

    fn read(p: &mut Params<'_>) -> Result<HmacIn, TpmRc> {
        let buffer = p.read()?;
        let hash_alg = p.with(|r| read_hash_alg(r, true))?;
        Ok(HmacIn { buffer, hash_alg })
    }

    fn action(tpm: &mut Tpm, call: &Call, input: HmacIn, out: &mut Output) -> Result<(), TpmRc> {
        let (key, alg) = hmac_key(tpm, call.handles[0], input.hash_alg, 2)?;
        let hmac = alg.hmac(&key, &[input.buffer.as_bytes()]);
        out.params
            .write(&Digest::new(&hmac).map_err(|_| TpmRc::FAILURE)?);
        Ok(())
    }
}
