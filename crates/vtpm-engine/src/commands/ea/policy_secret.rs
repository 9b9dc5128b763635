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
//! it also expires at the next TPM Reset (no nonceTPM). TPM2_PolicyTicket
//! is not implemented yet, so nothing takes these tickets back.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::tickets::null_ticket;
use vtpm_wire::constants::{CommandCode, StructureTag, handle};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Digest, Nonce, nv_attr};

/// TPM2_PolicySecret.
pub struct PolicySecret;

/// Parameter numbers.
const P_NONCE_TPM: usize = 1;
const P_CP_HASH_A: usize = 2;
const P_EXPIRATION: usize = 4;

/// The top bit of a timeout: the authorization also ends at TPM Reset.
const EXPIRES_ON_RESET: u64 = 1 << 63;

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
        let now = tpm.time_ms();
        let reset_count = tpm.nv.reset_count;
        let session = tpm.policy_session_mut(session_handle, 2)?;
        let trial = session.kind == crate::session::SessionKind::Trial;
        let nonce = input.nonce_tpm.as_bytes();
        let cp_hash_a = input.cp_hash_a.as_bytes();
        let mut auth_timeout = 0u64;
        if !trial {
            // ComputeAuthTimeout: seconds from the session's start, or (no
            // nonce) from _TPM_Init keeping the current millisecond.
            if input.expiration != 0 {
                let ms = u64::from(input.expiration.unsigned_abs()) * 1000;
                auth_timeout = if nonce.is_empty() {
                    ms + now % 1000
                } else {
                    session.start_time.saturating_add(ms)
                };
            }
            if !nonce.is_empty() && nonce != session.nonce_tpm.as_slice() {
                return Err(TpmRc::NONCE.with_parameter(P_NONCE_TPM));
            }
            if auth_timeout != 0 && auth_timeout < now {
                return Err(TpmRc::EXPIRED.with_parameter(P_EXPIRATION));
            }
            if !cp_hash_a.is_empty() {
                if cp_hash_a.len() != session.auth_hash.size() {
                    return Err(TpmRc::SIZE.with_parameter(P_CP_HASH_A));
                }
                if !session.cp_hash.is_empty() && session.cp_hash != cp_hash_a {
                    return Err(TpmRc::CPHASH);
                }
            }
        }
        // PolicyContextUpdate (trial sessions too).
        session.policy_update(
            CommandCode::PolicySecret.0,
            &auth_name,
            Some(input.policy_ref.as_bytes()),
        );
        if !cp_hash_a.is_empty() {
            session.cp_hash = cp_hash_a.to_vec();
        }
        if auth_timeout != 0 && (session.timeout == 0 || session.timeout > auth_timeout) {
            session.timeout = auth_timeout;
        }
        if input.expiration < 0 && !trial {
            let expires_on_reset = nonce.is_empty();
            let timeout_bytes = auth_timeout.to_be_bytes();
            let reset_bytes = reset_count.to_be_bytes();
            let mut parts: Vec<&[u8]> = vec![
                cp_hash_a,
                input.policy_ref.as_bytes(),
                &auth_name,
                &timeout_bytes,
            ];
            if expires_on_reset {
                parts.push(&reset_bytes);
            }
            let ticket = tpm.ticket(StructureTag::AUTH_SECRET, hierarchy, &parts);
            let flagged = if expires_on_reset {
                auth_timeout | EXPIRES_ON_RESET
            } else {
                auth_timeout
            };
            out.params.sized_u16(|w| w.u64(flagged));
            out.params.write(&ticket);
        } else {
            out.params.u16(0);
            out.params.write(&null_ticket(StructureTag::AUTH_SECRET));
        }
        Ok(())
    }
}

/// The hierarchy an entity belongs to, for its tickets (the reference
/// implementation's EntityGetHierarchy).
fn entity_hierarchy(tpm: &Tpm, h: u32) -> u32 {
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
