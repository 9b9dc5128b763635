//! TPM2_Rewrap (Part 3 §13.2): the TPM as a migration authority takes the
//! outer wrap of a duplication blob made for `oldParent` off and puts one
//! for `newParent` on; the inner part (an inner-wrapped or plain
//! TPM2B_SENSITIVE) is never looked at.

use super::outer_of;
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::keys::protect::{outer_wrap, remove_outer_wrap};
use crate::keys::secret::{DUPLICATE, secret_decrypt, secret_encrypt};
use vtpm_wire::constants::handle;
use vtpm_wire::object::{MAX_PRIVATE, Private};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{EncryptedSecret, Name};
use zeroize::Zeroizing;

/// TPM2_Rewrap.
pub struct Rewrap;

/// Parameters.
pub struct RewrapIn {
    /// inDuplicate.
    in_duplicate: Private,
    /// name: the Name of the object in the blob.
    name: Name,
    /// inSymSeed.
    in_sym_seed: EncryptedSecret,
}

impl Command for Rewrap {
    type In = RewrapIn;

    fn read(p: &mut Params<'_>) -> Result<RewrapIn, TpmRc> {
        Ok(RewrapIn {
            in_duplicate: p.read()?,
            name: p.read()?,
            in_sym_seed: p.read()?,
        })
    }

    fn action(tpm: &mut Tpm, call: &Call, input: RewrapIn, out: &mut Output) -> Result<(), TpmRc> {
        let [old_parent_handle, new_parent_handle, _] = call.handles;
        // A seed comes exactly with an old parent.
        if input.in_sym_seed.is_empty() != (old_parent_handle == handle::RH_NULL) {
            return Err(TpmRc::HANDLE.with_handle(1));
        }
        let name = input.name.as_bytes();
        let inner = if old_parent_handle == handle::RH_NULL {
            Zeroizing::new(input.in_duplicate.as_bytes().to_vec())
        } else {
            let old = match tpm.object(old_parent_handle) {
                Some(p) if p.is_asymmetric_storage() && p.sensitive.is_some() => p.clone(),
                _ => return Err(TpmRc::TYPE.with_handle(1)),
            };
            let seed = secret_decrypt(&old, DUPLICATE, input.in_sym_seed.as_bytes())
                .map_err(|_| TpmRc::VALUE.with_parameter(3))?;
            let outer = outer_of(&old, &seed).map_err(|rc| rc.with_handle(1))?;
            remove_outer_wrap(input.in_duplicate.as_bytes(), name, outer)
                .map_err(|rc| rc.with_parameter(1))?
        };
        let (duplicate, out_sym_seed) = if new_parent_handle == handle::RH_NULL {
            (inner.to_vec(), Vec::new())
        } else {
            let new = match tpm.object(new_parent_handle) {
                Some(p) if p.is_asymmetric_storage() => p.clone(),
                _ => return Err(TpmRc::TYPE.with_handle(2)),
            };
            let (seed, secret) = {
                let mut rng = |b: &mut [u8]| tpm.random(b);
                secret_encrypt(&new, DUPLICATE, &mut rng).map_err(|rc| rc.with_handle(2))?
            };
            let outer = outer_of(&new, &seed).map_err(|rc| rc.with_handle(2))?;
            // The new outer integrity must still fit a TPM2B_PRIVATE.
            if inner.len() + 2 + outer.hash.size() > MAX_PRIVATE {
                return Err(TpmRc::VALUE.with_parameter(1));
            }
            let blob = outer_wrap(outer.hash, outer.seed, outer.key_bits, name, &inner, None)?;
            (blob, secret)
        };
        out.params.sized_u16(|w| w.bytes(&duplicate));
        out.params.sized_u16(|w| w.bytes(&out_sym_seed));
        Ok(())
    }
}
