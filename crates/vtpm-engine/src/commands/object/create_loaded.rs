//! TPM2_CreateLoaded (Part 3 §12.9). The parent is a storage key (an
//! ordinary object, returned with its private area) or a hierarchy (a
//! primary object). Derivation parents are not implemented: a keyed-hash
//! decryption parent is refused by the template checks.

use super::create::storage_parent;
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::objects::Object;
use vtpm_wire::constants::handle;
use vtpm_wire::object::{SensitiveCreate, Template, Tpm2bPublic};
use vtpm_wire::rc::TpmRc;

/// TPM2_CreateLoaded.
pub struct CreateLoaded;

impl Command for CreateLoaded {
    /// (inSensitive, inPublic).
    type In = (SensitiveCreate, Template);

    fn read(p: &mut Params<'_>) -> Result<Self::In, TpmRc> {
        Ok((p.read()?, p.read()?))
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        (in_sensitive, template): Self::In,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        if tpm.v.objects.available() == 0 {
            return Err(TpmRc::OBJECT_MEMORY);
        }
        let parent_handle = call.handles[0];
        let (obj, private) = match handle::handle_type(parent_handle) {
            handle::HT_TRANSIENT | handle::HT_PERSISTENT => {
                let parent = storage_parent(tpm, parent_handle)?;
                tpm.create_ordinary(&parent, &in_sensitive, &template.0)?
            }
            _ => (
                tpm.create_primary_object(parent_handle, &in_sensitive, &template.0)?,
                Vec::new(),
            ),
        };
        let public = obj.public.clone();
        let name = obj.name.clone();
        let h = tpm
            .v
            .objects
            .insert(Object::Key(Box::new(obj)))
            .ok_or(TpmRc::OBJECT_MEMORY)?;
        out.handle = Some(h);
        out.params.sized_u16(|w| w.bytes(&private));
        out.params.write(&Tpm2bPublic(public));
        out.params.sized_u16(|w| w.bytes(&name));
        Ok(())
    }
}
