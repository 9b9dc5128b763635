//! TPM2_PolicySecret (Part 3 §23.4): the policy requires proof of an
//! entity's authValue (or of its policy), given by authorizing authHandle
//! in this command's authorization area.
//!
//! policyDigest ≔ H(H(policyDigest || TPM_CC_PolicySecret || authName) ||
//! policyRef) (PolicyUpdate). Not in trial sessions: nonceTPM, when given,
//! must be the session's nonce; cpHashA, when given, becomes the cpHash the
//! authorized command must have; a non-zero expiration limits the policy
//! in time (|expiration| seconds from the session's start when nonceTPM is
//! given, else from `_TPM_Init`), and a negative one asks for a ticket.
//!
//! The ticket (TPMT_TK_AUTH, TPM_ST_AUTH_SECRET) is this TPM's own
//! format: HMAC_contextAlg(proof(hierarchy of authHandle),
//! TPM_ST_AUTH_SECRET || cpHashA || policyRef || authName || timeout[,
//! resetCount when it expires on TPM Reset]). timeout is the 8-byte
//! TPM time (ms) at which the authorization expires, its top bit set when
//! it also expires at the next TPM Reset (no nonceTPM).

use super::AuthParams;
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::{CommandCode, StructureTag, handle};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Digest, Nonce, nv_attr};

/// TPM2_PolicySecret.
pub struct PolicySecret;

/// Parameter numbers.
const P_NONCE_TPM: usize = 1;
const P_CP_HASH_A: usize = 2;
const P_EXPIRATION: usize = 4;

/// Parameters.
pub struct PolicySecretIn {
    /// nonceTPM.
    nonce_tpm: Nonce,
    /// cpHashA.
    cp_hash_a: Digest,
    /// policyRef.
    policy_ref: Nonce,
    /// expiration (INT32, seconds).
    expiration: i32,
}

impl Command for PolicySecret {
    type In = PolicySecretIn;

    fn read(p: &mut Params<'_>) -> Result<PolicySecretIn, TpmRc> {
        Ok(PolicySecretIn {
            nonce_tpm: p.read()?,
            cp_hash_a: p.read()?,
            policy_ref: p.read()?,
            expiration: p.with(|r| r.u32().map(|v| i32::from_be_bytes(v.to_be_bytes())))?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: PolicySecretIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let [auth_handle, session_handle, _] = call.handles;
        let auth_name = tpm.entity_name(auth_handle);
        let hierarchy = entity_hierarchy(tpm, auth_handle);
        let params = AuthParams {
            nonce_tpm: input.nonce_tpm.as_bytes(),
            cp_hash_a: input.cp_hash_a.as_bytes(),
            policy_ref: input.policy_ref.as_bytes(),
            expiration: input.expiration,
        };
        let auth_timeout = tpm.policy_auth_checks(
            session_handle,
            2,
            &params,
            [P_NONCE_TPM, P_CP_HASH_A, P_EXPIRATION],
        )?;
        tpm.policy_auth_update(
            session_handle,
            2,
            CommandCode::PolicySecret,
            StructureTag::AUTH_SECRET,
            (&auth_name, hierarchy),
            &params,
            auth_timeout,
            out,
        )
    }
}

/// The hierarchy an entity belongs to, for its tickets (the reference
/// implementation's EntityGetHierarchy).
pub(crate) fn entity_hierarchy(tpm: &Tpm, h: u32) -> u32 {
    match handle::handle_type(h) {
        handle::HT_TRANSIENT | handle::HT_PERSISTENT => {
            tpm.object(h).map_or(handle::RH_NULL, |o| o.hierarchy)
        }
        handle::HT_NV_INDEX => match tpm.nv_index(h) {
            Some(i) if i.has(nv_attr::PLATFORMCREATE) => handle::RH_PLATFORM,
            _ => handle::RH_OWNER,
        },
        handle::HT_PERMANENT => match h {
            handle::RH_PLATFORM | handle::RH_ENDORSEMENT | handle::RH_NULL => h,
            _ => handle::RH_OWNER,
        },
        _ => handle::RH_OWNER,
    }
}
