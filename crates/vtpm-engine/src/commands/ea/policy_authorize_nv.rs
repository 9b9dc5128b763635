//! TPM2_PolicyAuthorizeNV (Part 3 §23.22): the policy so far must be the
//! one an NV index holds (a TPMT_HA with the session's hash; read with
//! authHandle's authorization, as TPM2_NV_Read). Then policyDigest ≔
//! H(0…0 || TPM_CC_PolicyAuthorizeNV || nvIndex Name). A trial session
//! checks nothing.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::nv::NvAuthBy;
use crate::session::SessionKind;
use subtle::ConstantTimeEq;
use vtpm_wire::codec::Reader;
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Ha, nv_attr};

/// TPM2_PolicyAuthorizeNV.
pub struct PolicyAuthorizeNv;

impl Command for PolicyAuthorizeNv {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), _out: &mut Output) -> Result<(), TpmRc> {
        let [auth_handle, nv_index, session_handle] = call.handles;
        let name = tpm.entity_name(nv_index);
        let session = tpm.policy_session_mut(session_handle, 3)?;
        let trial = session.kind == SessionKind::Trial;
        let (auth_hash, current) = (session.auth_hash, session.policy_digest.clone());
        if !trial {
            let index = tpm.nv_index(nv_index).ok_or(TpmRc::HANDLE.with_handle(2))?;
            Tpm::nv_read_allowed(
                index,
                NvAuthBy::from_handle(auth_handle, call.policy_auth[0]),
            )?;
            if index.has(nv_attr::READLOCKED) {
                return Err(TpmRc::NV_LOCKED);
            }
            if !index.has(nv_attr::WRITTEN) {
                return Err(TpmRc::NV_UNINITIALIZED);
            }
            let size = usize::from(index.public.data_size).min(index.data.len());
            let data = index.data.get(..size).unwrap_or(&[]);
            let policy = Ha::read(&mut Reader::new(data), false).map_err(|e| e.rc())?;
            if policy.alg != auth_hash.alg() {
                return Err(TpmRc::HASH);
            }
            if policy.digest.len() != current.len() || !bool::from(policy.digest.ct_eq(&current)) {
                return Err(TpmRc::VALUE);
            }
        }
        let session = tpm.policy_session_mut(session_handle, 3)?;
        session.policy_digest = vec![0; session.auth_hash.size()];
        session.policy_update(CommandCode::PolicyAuthorizeNV.0, &name, None);
        Ok(())
    }
}
