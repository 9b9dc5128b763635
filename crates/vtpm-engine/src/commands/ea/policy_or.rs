//! TPM2_PolicyOR (Part 3 §23.6): the policy is met when any of 2 to 8
//! branches is. In a policy session the current policyDigest must be one
//! of pHashList (TPM_RC_VALUE); then policyDigest ≔ H(0…0 ||
//! TPM_CC_PolicyOR || digests).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::session::SessionKind;
use subtle::ConstantTimeEq;
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::DigestList;

/// TPM2_PolicyOR.
pub struct PolicyOr;

impl Command for PolicyOr {
    /// pHashList.
    type In = DigestList;

    fn read(p: &mut Params<'_>) -> Result<DigestList, TpmRc> {
        let list: DigestList = p.read()?;
        // TPML_DIGEST of PolicyOR: at least two digests.
        if list.0.len() < 2 {
            return Err(TpmRc::SIZE.with_parameter(1));
        }
        Ok(list)
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        list: DigestList,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        if session.kind != SessionKind::Trial {
            let current = &session.policy_digest;
            let found = list.0.iter().any(|d| {
                let d = d.as_bytes();
                d.len() == current.len() && bool::from(d.ct_eq(current))
            });
            if !found {
                return Err(TpmRc::VALUE.with_parameter(1));
            }
        }
        let digests: Vec<u8> = list.0.iter().flat_map(|d| d.as_bytes().to_vec()).collect();
        session.policy_digest = vec![0; session.auth_hash.size()];
        session.policy_update(CommandCode::PolicyOR.0, &digests, None);
        Ok(())
    }
}
