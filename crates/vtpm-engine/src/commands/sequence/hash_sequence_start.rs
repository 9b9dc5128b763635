//! TPM2_HashSequenceStart (Part 3 §17.3).

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use crate::objects::Object;
use vtpm_wire::constants::AlgId;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Auth, read_hash_alg};

/// TPM2_HashSequenceStart.
pub struct HashSequenceStart;

/// Parameters: auth and hashAlg (TPM_ALG_NULL starts an event sequence).
pub struct HashSequenceStartIn {
    auth: Auth,
    hash_alg: Option<HashAlg>,
}

impl Command for HashSequenceStart {
    type In = HashSequenceStartIn;

    fn read(p: &mut Params<'_>) -> Result<HashSequenceStartIn, TpmRc> {
        let auth = p.read()?;
        let alg = p.with(|r| read_hash_alg(r, true))?;
        let hash_alg = if alg == AlgId::NULL {
            None
        } else {
            HashAlg::from_alg(alg)
        };
        Ok(HashSequenceStartIn { auth, hash_alg })
    }

    fn action(
        tpm: &mut Tpm,
        _call: &Call,
        input: HashSequenceStartIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let auth = zeroize::Zeroizing::new(input.auth.as_bytes().to_vec());
        let object = match input.hash_alg {
            Some(alg) => Object::HashSequence {
                hasher: alg.hasher(),
                alg,
                auth,
                first_block: true,
                ticket_safe: true,
            },
            None => Object::EventSequence {
                hashers: HashAlg::ALL.iter().map(|a| a.hasher()).collect(),
                auth,
            },
        };
        let handle = tpm.v.objects.insert(object).ok_or(TpmRc::OBJECT_MEMORY)?;
        out.handle = Some(handle);
        Ok(())
    }
}
