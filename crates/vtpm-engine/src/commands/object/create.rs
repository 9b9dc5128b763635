//! TPM2_Create (Part 3 §12.1).

use super::{CreationInputs, check_pcr_selection};
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::keys::KeyObject;
use crate::keys::create::{Source, create_object};
use crate::keys::protect::sensitive_to_private;
use crate::keys::template::create_checks;
use vtpm_wire::object::{SensitiveCreate, Tpm2bPublic};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Data, PcrSelectionList};

/// TPM2_Create.
pub struct Create;

/// Create's (and CreatePrimary's) parameters.
pub struct CreateIn {
    /// inSensitive.
    pub in_sensitive: SensitiveCreate,
    /// inPublic.
    pub in_public: Tpm2bPublic,
    /// outsideInfo.
    pub outside_info: Data,
    /// creationPCR.
    pub creation_pcr: PcrSelectionList,
}

impl CreateIn {
    /// Reads the four parameters.
    pub fn read(p: &mut Params<'_>) -> Result<CreateIn, TpmRc> {
        let in_sensitive = p.read()?;
        let in_public = p.read()?;
        let outside_info = p.read()?;
        let creation_pcr = p.read()?;
        check_pcr_selection(&creation_pcr, 4)?;
        Ok(CreateIn {
            in_sensitive,
            in_public,
            outside_info,
            creation_pcr,
        })
    }
}

/// The storage parent at `h` (TPM_RC_TYPE for anything else).
pub(crate) fn storage_parent(tpm: &Tpm, h: u32) -> Result<KeyObject, TpmRc> {
    match tpm.object(h) {
        Some(p) if p.is_storage_parent() => Ok(p.clone()),
        _ => Err(TpmRc::TYPE.with_handle(1)),
    }
}

impl Tpm {
    /// Creates an ordinary object under `parent` from a checked template:
    /// random key material (RSA keys from the pool when one is ready).
    pub(crate) fn create_ordinary(
        &mut self,
        parent: &KeyObject,
        input: &SensitiveCreate,
        template: &vtpm_wire::object::Public,
    ) -> Result<(KeyObject, Vec<u8>), TpmRc> {
        create_checks(
            template,
            input.user_auth.as_bytes(),
            input.data.as_bytes(),
            Some(parent),
        )?;
        let pool = self.rsa_pool.clone();
        let created = {
            let mut rng = |b: &mut [u8]| self.random(b);
            create_object(
                template,
                input.user_auth.as_bytes(),
                input.data.as_bytes(),
                &mut Source::Random {
                    rng: &mut rng,
                    pool: pool.as_deref(),
                },
            )?
        };
        let obj = KeyObject::new(
            created.public,
            Some(created.sensitive),
            parent.hierarchy,
            &parent.qualified_name,
        );
        if let Some(k) = created.rsa {
            obj.set_rsa_key(k);
        }
        let mut iv = [0u8; 16];
        self.random(&mut iv);
        let sensitive = obj.sensitive.as_ref().ok_or(TpmRc::FAILURE)?;
        let private = sensitive_to_private(parent, &obj.name, sensitive, iv)?;
        Ok((obj, private))
    }
}

impl Command for Create {
    type In = CreateIn;

    fn read(p: &mut Params<'_>) -> Result<CreateIn, TpmRc> {
        CreateIn::read(p)
    }

    fn action(tpm: &mut Tpm, call: &Call, input: CreateIn, out: &mut Output) -> Result<(), TpmRc> {
        let parent = storage_parent(tpm, call.handles[0])?;
        let (obj, private) =
            tpm.create_ordinary(&parent, &input.in_sensitive, &input.in_public.0)?;
        out.params.sized_u16(|w| w.bytes(&private));
        out.params.write(&Tpm2bPublic(obj.public.clone()));
        tpm.write_creation(
            call.locality,
            CreationInputs {
                parent_handle: call.handles[0],
                parent: Some(&parent),
                outside_info: input.outside_info,
                creation_pcr: input.creation_pcr,
            },
            obj.name_alg(),
            &obj.name,
            obj.hierarchy,
            &mut out.params,
        )
    }
}
