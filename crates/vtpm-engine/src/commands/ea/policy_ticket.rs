//! TPM2_PolicyTicket (Part 3 §23.5): a TPMT_TK_AUTH that TPM2_PolicySigned
//! (TPM_ST_AUTH_SIGNED) or TPM2_PolicySecret (TPM_ST_AUTH_SECRET) gave
//! takes the place of that authorization, until its timeout. The ticket is
//! recomputed from timeout, cpHashA, policyRef and authName
//! (TPM_RC_TICKET when it differs); then policyDigest is extended as the
//! command it replaces would have. Not in trial sessions.

use super::AuthParams;
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::session::SessionKind;
use subtle::ConstantTimeEq;
use vtpm_wire::codec::Reader;
use vtpm_wire::constants::{CommandCode, StructureTag, handle};
use vtpm_wire::object::Ticket;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Digest, Name, Nonce, Tpm2b, read_hierarchy};
use vtpm_wire::{Unmarshal, WireError};

/// TPM2_PolicyTicket.
pub struct PolicyTicket;

/// Parameter numbers.
const P_TIMEOUT: usize = 1;
const P_CP_HASH_A: usize = 2;
const P_TICKET: usize = 5;

/// The top bit of a timeout: the authorization also ends at TPM Reset.
const EXPIRES_ON_RESET: u64 = 1 << 63;

/// Parameters.
pub struct PolicyTicketIn {
    /// timeout (TPM2B_TIMEOUT).
    timeout: Tpm2b<8>,
    /// cpHashA.
    cp_hash_a: Digest,
    /// policyRef.
    policy_ref: Nonce,
    /// authName.
    auth_name: Name,
    /// ticket.
    ticket: Ticket,
}

/// TPMT_TK_AUTH: tag TPM_ST_AUTH_SIGNED or TPM_ST_AUTH_SECRET.
fn read_auth_ticket(r: &mut Reader<'_>) -> Result<Ticket, WireError> {
    let tag = StructureTag(r.u16()?);
    if tag != StructureTag::AUTH_SIGNED && tag != StructureTag::AUTH_SECRET {
        return Err(WireError::Tag);
    }
    Ok(Ticket {
        tag,
        hierarchy: read_hierarchy(r, true)?,
        digest: Digest::unmarshal(r)?,
    })
}

impl Command for PolicyTicket {
    type In = PolicyTicketIn;

    fn read(p: &mut Params<'_>) -> Result<PolicyTicketIn, TpmRc> {
        Ok(PolicyTicketIn {
            timeout: p.read()?,
            cp_hash_a: p.read()?,
            policy_ref: p.read()?,
            auth_name: p.read()?,
            ticket: p.with(read_auth_ticket)?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: PolicyTicketIn,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let session_handle = call.handles[0];
        let now = tpm.time_ms();
        let reset_count = tpm.nv.reset_count;
        let session = tpm.policy_session_mut(session_handle, 1)?;
        if session.kind == SessionKind::Trial {
            return Err(TpmRc::ATTRIBUTES.with_handle(1));
        }
        let timeout_bytes = <[u8; 8]>::try_from(input.timeout.as_bytes())
            .map_err(|_| TpmRc::SIZE.with_parameter(P_TIMEOUT))?;
        let flagged = u64::from_be_bytes(timeout_bytes);
        let expires_on_reset = flagged & EXPIRES_ON_RESET != 0;
        let timeout = flagged & !EXPIRES_ON_RESET;
        // PolicyParameterChecks without a nonce.
        if timeout != 0 && timeout < now {
            return Err(TpmRc::EXPIRED.with_parameter(P_TIMEOUT));
        }
        let cp_hash_a = input.cp_hash_a.as_bytes();
        if !cp_hash_a.is_empty() {
            if cp_hash_a.len() != session.auth_hash.size() {
                return Err(TpmRc::SIZE.with_parameter(P_CP_HASH_A));
            }
            if !session.cp_hash.is_empty() && session.cp_hash != cp_hash_a {
                return Err(TpmRc::CPHASH);
            }
        }
        let params = AuthParams {
            nonce_tpm: &[],
            cp_hash_a,
            policy_ref: input.policy_ref.as_bytes(),
            expiration: 0,
        };
        let ticket = &input.ticket;
        let name = input.auth_name.as_bytes();
        let expected = tpm.auth_ticket(
            ticket.tag,
            ticket.hierarchy,
            &params,
            name,
            timeout,
            expires_on_reset,
            reset_count,
        );
        let (got, want) = (ticket.digest.as_bytes(), expected.digest.as_bytes());
        if ticket.hierarchy == handle::RH_NULL
            || want.is_empty()
            || got.len() != want.len()
            || !bool::from(got.ct_eq(want))
        {
            return Err(TpmRc::TICKET.with_parameter(P_TICKET));
        }
        let cc = if ticket.tag == StructureTag::AUTH_SIGNED {
            CommandCode::PolicySigned
        } else {
            CommandCode::PolicySecret
        };
        // PolicyContextUpdate; the response has no parameters, so nothing
        // that policy_auth_update writes (expiration 0: an empty timeout and
        // a NULL ticket) may go out.
        let mut scratch = Output::default();
        tpm.policy_auth_update(
            session_handle,
            1,
            cc,
            ticket.tag,
            (name, handle::RH_NULL),
            &params,
            timeout,
            &mut scratch,
        )?;
        Ok(())
    }
}
