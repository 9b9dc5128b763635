//! TPM2_Unseal (Part 3 §12.7): the data of a sealed data object (a
//! keyed-hash object with sign, decrypt and restricted all CLEAR).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::object::{SensitiveComposite, object_attr as oa};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{PublicParms, SensitiveData};

/// TPM2_Unseal.
pub struct Unseal;

impl Command for Unseal {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), out: &mut Output) -> Result<(), TpmRc> {
        let item = tpm
            .object(call.handles[0])
            .ok_or(TpmRc::TYPE.with_handle(1))?;
        if !matches!(item.public.parms, PublicParms::KeyedHash { .. }) {
            return Err(TpmRc::TYPE.with_handle(1));
        }
        if item.has(oa::DECRYPT) || item.has(oa::SIGN) || item.has(oa::RESTRICTED) {
            return Err(TpmRc::ATTRIBUTES.with_handle(1));
        }
        // A public-only data object (TPM2_LoadExternal) holds no data.
        match item.sensitive.as_ref().map(|s| &s.sensitive) {
            Some(SensitiveComposite::Bits(data)) => out.params.write(data),
            _ => out.params.write(&SensitiveData::empty()),
        }
        Ok(())
    }
}
