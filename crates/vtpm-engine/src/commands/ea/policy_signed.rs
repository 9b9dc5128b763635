//! TPM2_PolicySigned (Part 3 §23.3): the policy requires an authorization
//! signed by authObject over aHash ≔ H_sigHash(nonceTPM || expiration ||
//! cpHashA || policyRef). policyDigest ≔ H(H(policyDigest ||
//! TPM_CC_PolicySigned || authObject's Name) || policyRef). In a policy
//! session the signature is checked, nonceTPM, cpHashA and expiration as
//! for TPM2_PolicySecret; a negative expiration returns a TPMT_TK_AUTH
//! (TPM_ST_AUTH_SIGNED) that TPM2_PolicyTicket takes back. A trial session
//! checks nothing.

use super::AuthParams;
use super::policy_secret::entity_hierarchy;
use crate::Tpm;
use crate::commands::signature::{SignError, validate_signature};
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use crate::session::SessionKind;
use vtpm_wire::constants::{CommandCode, StructureTag};
use vtpm_wire::object::{Signature, object_attr};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Digest, Nonce};

/// TPM2_PolicySigned.
pub struct PolicySigned;

/// Parameter numbers.
const P_NONCE_TPM: usize = 1;
const P_CP_HASH_A: usize = 2;
const P_EXPIRATION: usize = 4;
const P_AUTH: usize = 5;

/// Parameters.
pub struct PolicySignedIn {
    /// nonceTPM.
    nonce_tpm: Nonce,
    /// cpHashA.
    cp_hash_a: Digest,
    /// policyRef.
    policy_ref: Nonce,
    /// expiration (INT32, seconds).
    expiration: i32,
    /// auth.
    auth: Signature,
}

impl Command for PolicySigned {
    type In = PolicySignedIn;

    fn read(p: &mut Params<'_>) -> Result<PolicySignedIn, TpmRc> {
        let nonce_tpm = p.read()?;
        let cp_hash_a = p.read()?;
        let policy_ref = p.read()?;
        let expiration = p.with(|r| r.u32().map(|v| i32::from_be_bytes(v.to_be_bytes())))?;
        let auth: Signature = p.read()?;
        // TPMT_SIGNATURE without '+'.
        if auth == Signature::Null {
            return Err(TpmRc::SCHEME.with_parameter(P_AUTH));
        }
        Ok(PolicySignedIn {
            nonce_tpm,
            cp_hash_a,
            policy_ref,
            expiration,
            auth,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: PolicySignedIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let [auth_object, session_handle, _] = call.handles;
        let name = tpm.entity_name(auth_object);
        let hierarchy = entity_hierarchy(tpm, auth_object);
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
        let trial = tpm.policy_session_mut(session_handle, 2)?.kind == SessionKind::Trial;
        if !trial {
            let sig_hash = match &input.auth {
                Signature::Rsa { hash, .. }
                | Signature::Ecdsa { hash, .. }
                | Signature::Hmac { hash, .. } => HashAlg::from_alg(*hash),
                Signature::Null => None,
            }
            .ok_or(TpmRc::SCHEME.with_parameter(P_AUTH))?;
            let a_hash = sig_hash.digest(&[
                params.nonce_tpm,
                &input.expiration.to_be_bytes(),
                params.cp_hash_a,
                params.policy_ref,
            ]);
            let key = tpm
                .object(auth_object)
                .filter(|k| k.has(object_attr::SIGN))
                .ok_or(TpmRc::ATTRIBUTES.with_handle(1))?;
            validate_signature(key, &a_hash, &input.auth).map_err(|e| match e {
                SignError::Key | SignError::Handle => e.rc().with_handle(1),
                other => other.rc().with_parameter(P_AUTH),
            })?;
        }
        tpm.policy_auth_update(
            session_handle,
            2,
            CommandCode::PolicySigned,
            StructureTag::AUTH_SIGNED,
            (&name, hierarchy),
            &params,
            auth_timeout,
            out,
        )
    }
}
