//! TPM2_HMAC_Start (Part 3 §17.2): an HMAC sequence object under a
//! keyed-hash signing key (the same key checks as TPM2_HMAC).

use crate::Tpm;
use crate::commands::symmetric::hmac::hmac_key;
use crate::dispatch::{Call, Command, Output, Params};
use crate::objects::Object;
use vtpm_wire::constants::AlgId;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Auth, read_hash_alg};

/// TPM2_HMAC_Start.
pub struct HmacStart;

/// TPM2_HMAC_Start's parameters.
pub struct HmacStartIn {
    auth: Auth,
    hash_alg: AlgId,
}

impl Command for HmacStart {
    type In = HmacStartIn;

    fn read(p: &mut Params<'_>) -> Result<HmacStartIn, TpmRc> {
        let auth = p.read()?;
        let hash_alg = p.with(|r| read_hash_alg(r, true))?;
        Ok(HmacStartIn { auth, hash_alg })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: HmacStartIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let (key, alg) = hmac_key(tpm, call.handles[0], input.hash_alg, 2)?;
        let object = Object::HmacSequence {
            state: alg.hmac_start(&key),
            auth: zeroize::Zeroizing::new(input.auth.as_bytes().to_vec()),
        };
        let handle = tpm.v.objects.insert(object).ok_or(TpmRc::OBJECT_MEMORY)?;
        out.handle = Some(handle);
        Ok(())
    }
}
