//! TPM2_Load (Part 3 §12.2).

use super::create::storage_parent;
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::keys::create::check_binding;
use crate::keys::protect::private_to_sensitive;
use crate::keys::template::load_checks;
use crate::keys::{KeyObject, public_name};
use crate::objects::Object;
use vtpm_wire::object::{Private, Tpm2bPublic};
use vtpm_wire::rc::TpmRc;

/// TPM2_Load.
pub struct Load;

impl Command for Load {
    /// (inPrivate, inPublic).
    type In = (Private, Tpm2bPublic);

    fn read(p: &mut Params<'_>) -> Result<Self::In, TpmRc> {
        Ok((p.read()?, p.read()?))
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        (in_private, in_public): Self::In,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let parent = storage_parent(tpm, call.handles[0])?;
        if tpm.v.objects.available() == 0 {
            return Err(TpmRc::OBJECT_MEMORY);
        }
        if in_private.is_empty() {
            return Err(TpmRc::SIZE.with_parameter(1));
        }
        let public = in_public.0;
        load_checks(&public, Some(&parent))?;
        let name = public_name(&public);
        let sensitive = private_to_sensitive(&parent, &name, in_private.as_bytes())
            .map_err(|rc| rc.with_parameter(1))?;
        let alg = crate::crypto::hash::HashAlg::from_alg(public.name_alg).ok_or(TpmRc::HASH)?;
        if sensitive.auth_value.len() > alg.size() {
            return Err(TpmRc::SIZE.with_parameter(1));
        }
        let rsa = check_binding(&public, &sensitive).map_err(|rc| rc.with_parameter(2))?;
        let obj = KeyObject::new(
            public,
            Some(sensitive),
            parent.hierarchy,
            &parent.qualified_name,
        );
        if let Some(k) = rsa {
            obj.set_rsa_key(k);
        }
        let name = obj.name.clone();
        let h = tpm
            .v
            .objects
            .insert(Object::Key(Box::new(obj)))
            .ok_or(TpmRc::OBJECT_MEMORY)?;
        out.handle = Some(h);
        out.params.sized_u16(|w| w.bytes(&name));
        Ok(())
    }
}
