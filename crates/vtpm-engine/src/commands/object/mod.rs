//! Part 3 §12 "Object Commands".

pub mod activate_credential;
pub mod create;
pub mod create_loaded;
pub mod load;
pub mod load_external;
pub mod make_credential;
pub mod object_change_auth;
pub mod read_public;
pub mod unseal;

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::keys::KeyObject;
use vtpm_wire::codec::Writer;
use vtpm_wire::constants::AlgId;
use vtpm_wire::object::CreationData;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Data, Digest, Name, PcrSelectionList};

/// TPMA_LOCALITY of a locality.
pub(crate) fn locality_attr(locality: u8) -> u8 {
    if locality <= 4 {
        1 << locality
    } else {
        locality
    }
}

/// What TPM2_Create and TPM2_CreatePrimary say about how an object was
/// created.
pub(crate) struct CreationInputs<'a> {
    /// The parent's handle (a hierarchy for primary objects).
    pub parent_handle: u32,
    /// The parent object (`None` for a hierarchy).
    pub parent: Option<&'a KeyObject>,
    /// outsideInfo.
    pub outside_info: Data,
    /// creationPCR.
    pub creation_pcr: PcrSelectionList,
}

impl Tpm {
    /// Writes creationData (TPM2B_CREATION_DATA), creationHash and
    /// creationTicket for an object with `name` and `name_alg` in
    /// `hierarchy` (Part 3 §12.1, the reference implementation's
    /// FillInCreationData).
    pub(crate) fn write_creation(
        &self,
        locality: u8,
        inputs: CreationInputs<'_>,
        name_alg: HashAlg,
        name: &[u8],
        hierarchy: u32,
        w: &mut Writer,
    ) -> Result<(), TpmRc> {
        let pcr_digest = self.pcr_digest(name_alg, &inputs.creation_pcr);
        let (parent_name_alg, parent_name, parent_qn) = match inputs.parent {
            None => {
                let h = inputs.parent_handle.to_be_bytes();
                (AlgId::NULL, h.to_vec(), h.to_vec())
            }
            Some(p) => (p.public.name_alg, p.name.clone(), p.qualified_name.clone()),
        };
        let data = CreationData {
            pcr_select: inputs.creation_pcr,
            pcr_digest: Digest::new(&pcr_digest).map_err(|_| TpmRc::FAILURE)?,
            locality: locality_attr(locality),
            parent_name_alg,
            parent_name: Name::new(&parent_name).map_err(|_| TpmRc::FAILURE)?,
            parent_qualified_name: Name::new(&parent_qn).map_err(|_| TpmRc::FAILURE)?,
            outside_info: inputs.outside_info,
        };
        let mut cw = Writer::default();
        cw.write(&data);
        let bytes = cw.into_vec();
        let hash = name_alg.digest(&[&bytes]);
        w.sized_u16(|w| w.bytes(&bytes));
        w.sized_u16(|w| w.bytes(&hash));
        w.write(&self.creation_ticket(hierarchy, name, &hash));
        Ok(())
    }
}

/// Checks a creationPCR selection: every bank a hash this TPM implements
/// (the unmarshalling already did) and PCR numbers in range.
pub(crate) fn check_pcr_selection(sel: &PcrSelectionList, param: usize) -> Result<(), TpmRc> {
    for s in &sel.0 {
        if HashAlg::from_alg(s.hash).is_none() {
            return Err(TpmRc::HASH.with_parameter(param));
        }
    }
    Ok(())
}
