//! TPM2_Duplicate (Part 3 §13.1): a loaded object's sensitive area as a
//! duplication blob for a new parent (or for none), optionally with an
//! inner wrap under a symmetric key the caller gives or the TPM makes.
//! The object's DUP role needs a policy session (checked at
//! authorization).

use super::outer_of;
use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use crate::keys::protect::sensitive_to_duplicate;
use crate::keys::secret::{DUPLICATE, secret_encrypt};
use vtpm_wire::constants::{AlgId, handle};
use vtpm_wire::object::object_attr as oa;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Data, SymDefObject};
use zeroize::Zeroizing;

/// TPM2_Duplicate.
pub struct Duplicate;

/// Parameters.
pub struct DuplicateIn {
    /// encryptionKeyIn.
    encryption_key_in: Data,
    /// symmetricAlg (TPMT_SYM_DEF_OBJECT+).
    symmetric_alg: SymDefObject,
}

impl Command for Duplicate {
    type In = DuplicateIn;

    fn read(p: &mut Params<'_>) -> Result<DuplicateIn, TpmRc> {
        Ok(DuplicateIn {
            encryption_key_in: p.read()?,
            symmetric_alg: p.with(|r| SymDefObject::read(r, true))?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: DuplicateIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let [object_handle, new_parent_handle, _] = call.handles;
        // A sequence object or a public-only object has nothing to
        // duplicate.
        let object = tpm
            .object(object_handle)
            .filter(|o| o.sensitive.is_some())
            .ok_or(TpmRc::TYPE.with_handle(1))?
            .clone();
        if object.has(oa::FIXED_PARENT) {
            return Err(TpmRc::ATTRIBUTES.with_handle(1));
        }
        let name_alg =
            HashAlg::from_alg(object.public.name_alg).ok_or(TpmRc::TYPE.with_handle(1))?;
        let new_parent = if new_parent_handle == handle::RH_NULL {
            None
        } else {
            match tpm.object(new_parent_handle) {
                Some(p) if p.is_asymmetric_storage() => Some(p.clone()),
                _ => return Err(TpmRc::TYPE.with_handle(2)),
            }
        };
        let sym = &input.symmetric_alg;
        if object.has(oa::ENCRYPTED_DUPLICATION) {
            if sym.algorithm == AlgId::NULL {
                return Err(TpmRc::SYMMETRIC.with_parameter(2));
            }
            if new_parent.is_none() {
                return Err(TpmRc::HIERARCHY.with_handle(2));
            }
        }
        let key_in = input.encryption_key_in.as_bytes();
        let inner_bytes = usize::from(sym.key_bits).div_ceil(8);
        if sym.algorithm == AlgId::NULL {
            if !key_in.is_empty() {
                return Err(TpmRc::SIZE.with_parameter(1));
            }
        } else if !key_in.is_empty() && key_in.len() != inner_bytes {
            return Err(TpmRc::SIZE.with_parameter(1));
        }

        // The seed and its encryption for the new parent.
        let (seed, out_sym_seed) = match &new_parent {
            Some(p) => {
                let mut rng = |b: &mut [u8]| tpm.random(b);
                secret_encrypt(p, DUPLICATE, &mut rng).map_err(|rc| rc.with_handle(2))?
            }
            None => (Zeroizing::new(Vec::new()), Vec::new()),
        };
        // The inner wrap's key: the caller's, or a new one returned as
        // encryptionKeyOut.
        let mut key_out = Zeroizing::new(Vec::new());
        let inner_key = if sym.algorithm == AlgId::NULL {
            None
        } else if key_in.is_empty() {
            key_out.resize(inner_bytes, 0);
            tpm.random(&mut key_out);
            Some(key_out.as_slice())
        } else {
            Some(key_in)
        };
        let outer = match &new_parent {
            Some(p) => Some(outer_of(p, &seed).map_err(|rc| rc.with_handle(2))?),
            None => None,
        };
        let sensitive = object.sensitive.as_ref().ok_or(TpmRc::FAILURE)?;
        let duplicate =
            sensitive_to_duplicate(sensitive, &object.name, name_alg, inner_key, outer)?;
        if duplicate.len() > vtpm_wire::object::MAX_PRIVATE {
            return Err(TpmRc::SIZE);
        }
        out.params.sized_u16(|w| w.bytes(&key_out));
        out.params.sized_u16(|w| w.bytes(&duplicate));
        out.params.sized_u16(|w| w.bytes(&out_sym_seed));
        Ok(())
    }
}
