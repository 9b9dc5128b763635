//! TPM2_CreatePrimary (Part 3 §24.1). The object is derived from the
//! hierarchy's primary seed and the template (docs/primary-keys.md): the
//! same seed and template give the same key every time.

use crate::Tpm;
use crate::commands::object::CreationInputs;
use crate::commands::object::create::CreateIn;
use crate::dispatch::{Call, Command, Output, Params};
use crate::keys::KeyObject;
use crate::keys::template::create_checks;
use crate::objects::Object;
use vtpm_wire::object::{Public, SensitiveCreate, Tpm2bPublic};
use vtpm_wire::rc::TpmRc;

/// TPM2_CreatePrimary.
pub struct CreatePrimary;

impl Tpm {
    /// A primary object of `hierarchy` from a template (checked here).
    pub(crate) fn create_primary_object(
        &mut self,
        hierarchy: u32,
        input: &SensitiveCreate,
        template: &Public,
    ) -> Result<KeyObject, TpmRc> {
        create_checks(
            template,
            input.user_auth.as_bytes(),
            input.data.as_bytes(),
            None,
        )?;
        let seed = self.primary_seed(hierarchy).ok_or(TpmRc::HIERARCHY)?;
        let created = self.primary_cache.get_or_derive(
            &seed,
            template,
            input.user_auth.as_bytes(),
            input.data.as_bytes(),
        )?;
        let mut obj = KeyObject::new(
            created.public,
            Some(created.sensitive),
            hierarchy,
            &hierarchy.to_be_bytes(),
        );
        obj.primary = true;
        if let Some(k) = created.rsa {
            obj.set_rsa_key(k);
        }
        Ok(obj)
    }
}

impl Command for CreatePrimary {
    type In = CreateIn;

    fn read(p: &mut Params<'_>) -> Result<CreateIn, TpmRc> {
        CreateIn::read(p)
    }

    fn action(tpm: &mut Tpm, call: &Call, input: CreateIn, out: &mut Output) -> Result<(), TpmRc> {
        if tpm.v.objects.available() == 0 {
            return Err(TpmRc::OBJECT_MEMORY);
        }
        let hierarchy = call.handles[0];
        let obj = tpm.create_primary_object(hierarchy, &input.in_sensitive, &input.in_public.0)?;
        let public = obj.public.clone();
        let name = obj.name.clone();
        let name_alg = obj.name_alg();
        let h = tpm
            .v
            .objects
            .insert(Object::Key(Box::new(obj)))
            .ok_or(TpmRc::OBJECT_MEMORY)?;
        out.handle = Some(h);
        out.params.write(&Tpm2bPublic(public));
        tpm.write_creation(
            call.locality,
            CreationInputs {
                parent_handle: hierarchy,
                parent: None,
                outside_info: input.outside_info,
                creation_pcr: input.creation_pcr,
            },
            name_alg,
            &name,
            hierarchy,
            &mut out.params,
        )?;
        out.params.sized_u16(|w| w.bytes(&name));
        Ok(())
    }
}
