//! TPM2_Import (Part 3 §13.3): a duplication blob made for a parent (by
//! TPM2_Duplicate on any TPM, or by software) becomes a TPM2B_PRIVATE
//! under that parent, which TPM2_Load then takes.

use super::outer_of;
use crate::Tpm;
use crate::commands::object::create::storage_parent;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use crate::keys::create::check_binding;
use crate::keys::protect::{duplicate_to_sensitive, sensitive_to_private};
use crate::keys::public_name;
use crate::keys::secret::{DUPLICATE, secret_decrypt};
use crate::keys::template::load_checks;
use vtpm_wire::constants::AlgId;
use vtpm_wire::object::{Private, Tpm2bPublic, object_attr as oa};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Data, EncryptedSecret, PublicParms, SymDefObject};

/// TPM2_Import.
pub struct Import;

/// Parameter numbers.
const P_ENCRYPTION_KEY: usize = 1;
const P_OBJECT_PUBLIC: usize = 2;
const P_DUPLICATE: usize = 3;
const P_IN_SYM_SEED: usize = 4;

/// Parameters.
pub struct ImportIn {
    /// encryptionKey.
    encryption_key: Data,
    /// objectPublic.
    object_public: Tpm2bPublic,
    /// duplicate.
    duplicate: Private,
    /// inSymSeed.
    in_sym_seed: EncryptedSecret,
    /// symmetricAlg (TPMT_SYM_DEF_OBJECT+).
    symmetric_alg: SymDefObject,
}

impl Command for Import {
    type In = ImportIn;

    fn read(p: &mut Params<'_>) -> Result<ImportIn, TpmRc> {
        Ok(ImportIn {
            encryption_key: p.read()?,
            object_public: p.read()?,
            duplicate: p.read()?,
            in_sym_seed: p.read()?,
            symmetric_alg: p.with(|r| SymDefObject::read(r, true))?,
        })
    }

    fn action(tpm: &mut Tpm, call: &Call, input: ImportIn, out: &mut Output) -> Result<(), TpmRc> {
        let public = &input.object_public.0;
        // Objects that cannot leave their TPM or parent cannot arrive either.
        if public.has(oa::FIXED_TPM) || public.has(oa::FIXED_PARENT) {
            return Err(TpmRc::ATTRIBUTES.with_parameter(P_OBJECT_PUBLIC));
        }
        let parent = storage_parent(tpm, call.handles[0])?;
        let sym = &input.symmetric_alg;
        let key = input.encryption_key.as_bytes();
        let encrypted_duplication = public.has(oa::ENCRYPTED_DUPLICATION);
        if sym.algorithm != AlgId::NULL {
            if key.len() != usize::from(sym.key_bits).div_ceil(8) {
                return Err(TpmRc::SIZE.with_parameter(P_ENCRYPTION_KEY));
            }
        } else {
            if !key.is_empty() {
                return Err(TpmRc::SIZE.with_parameter(P_ENCRYPTION_KEY));
            }
            // encryptedDuplication: there must be an inner wrap...
            if encrypted_duplication {
                return Err(TpmRc::ATTRIBUTES.with_parameter(P_ENCRYPTION_KEY));
            }
        }
        let seed = if input.in_sym_seed.is_empty() {
            // ... and an outer one.
            if encrypted_duplication {
                return Err(TpmRc::ATTRIBUTES.with_parameter(P_IN_SYM_SEED));
            }
            None
        } else {
            // A symmetric parent cannot take part in a key exchange.
            if matches!(parent.public.parms, PublicParms::SymCipher { .. }) {
                return Err(TpmRc::TYPE.with_handle(1));
            }
            Some(
                secret_decrypt(&parent, DUPLICATE, input.in_sym_seed.as_bytes())
                    .map_err(|rc| rc.with_parameter(P_IN_SYM_SEED))?,
            )
        };
        let name = public_name(public);
        let name_alg = HashAlg::from_alg(public.name_alg)
            .ok_or(TpmRc::HASH.with_parameter(P_OBJECT_PUBLIC))?;
        let outer = match &seed {
            Some(s) => Some(outer_of(&parent, s).map_err(|rc| rc.with_handle(1))?),
            None => None,
        };
        let inner_key = (sym.algorithm != AlgId::NULL).then_some(key);
        let sensitive = duplicate_to_sensitive(
            input.duplicate.as_bytes(),
            &name,
            name_alg,
            inner_key,
            outer,
        )
        .map_err(|rc| rc.with_parameter(P_DUPLICATE))?;
        // Under a fixedTPM parent the object is checked now as TPM2_Load
        // would check it.
        if parent.has(oa::FIXED_TPM) {
            if sensitive.seed_value.len() > name_alg.size() {
                return Err(TpmRc::KEY_SIZE.with_parameter(P_DUPLICATE));
            }
            if sensitive.auth_value.len() > name_alg.size() {
                return Err(TpmRc::SIZE.with_parameter(P_DUPLICATE));
            }
            load_checks(public, Some(&parent))?;
            check_binding(public, &sensitive).map_err(|rc| rc.with_parameter(P_OBJECT_PUBLIC))?;
        }
        let mut iv = [0u8; 16];
        tpm.random(&mut iv);
        let private = sensitive_to_private(&parent, &name, &sensitive, iv)?;
        out.params.sized_u16(|w| w.bytes(&private));
        Ok(())
    }
}
