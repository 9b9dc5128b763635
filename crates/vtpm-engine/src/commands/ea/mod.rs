//! Part 3 §23 "Enhanced Authorization (EA) Commands": policy commands that
//! extend a policy (or trial) session's policyDigest and record the
//! conditions the authorized command must then meet.

pub mod policy_auth_value;
pub mod policy_authorize;
pub mod policy_authorize_nv;
pub mod policy_command_code;
pub mod policy_counter_timer;
pub mod policy_cp_hash;
pub mod policy_duplication_select;
pub mod policy_get_digest;
pub mod policy_locality;
pub mod policy_name_hash;
pub mod policy_nv;
pub mod policy_nv_written;
pub mod policy_or;
pub mod policy_password;
pub mod policy_pcr;
pub mod policy_physical_presence;
pub mod policy_restart;
pub mod policy_secret;
pub mod policy_signed;
pub mod policy_template;
pub mod policy_ticket;

use crate::Tpm;
use crate::dispatch::Output;
use crate::session::{Session, SessionKind};
use crate::tickets::null_ticket;
use vtpm_wire::constants::{CommandCode, StructureTag};
use vtpm_wire::rc::TpmRc;

/// The top bit of a timeout: the authorization also ends at TPM Reset.
const EXPIRES_ON_RESET: u64 = 1 << 63;

/// The parameters TPM2_PolicySecret and TPM2_PolicySigned share.
pub(crate) struct AuthParams<'a> {
    /// nonceTPM (empty: not limited to this session).
    pub nonce_tpm: &'a [u8],
    /// cpHashA (empty: any command).
    pub cp_hash_a: &'a [u8],
    /// policyRef.
    pub policy_ref: &'a [u8],
    /// expiration (seconds; negative: a ticket is asked for).
    pub expiration: i32,
}

impl Tpm {
    /// The policy or trial session at `h` (the command's TPMI_SH_POLICY
    /// handle, already checked to be loaded).
    pub(crate) fn policy_session_mut(&mut self, h: u32, n: usize) -> Result<&mut Session, TpmRc> {
        self.v
            .sessions
            .get_mut(h)
            .ok_or(TpmRc::REFERENCE_H0.plus(n.saturating_sub(1)))
    }
}

impl Tpm {
    /// ComputeAuthTimeout and PolicyParameterChecks (policy sessions
    /// only): nonceTPM must be the session's, the authorization must not
    /// have expired, cpHashA must have the session's hash size and agree
    /// with a cpHash already set. Returns the authorization's timeout (TPM
    /// time in ms; 0: none). `p` numbers nonceTPM, cpHashA and expiration.
    pub(crate) fn policy_auth_checks(
        &mut self,
        session_handle: u32,
        n: usize,
        a: &AuthParams<'_>,
        p: [usize; 3],
    ) -> Result<u64, TpmRc> {
        let [p_nonce, p_cp_hash, p_expiration] = p;
        let now = self.time_ms();
        let session = self.policy_session_mut(session_handle, n)?;
        if session.kind == SessionKind::Trial {
            return Ok(0);
        }
        let mut auth_timeout = 0u64;
        // ComputeAuthTimeout: seconds from the session's start, or (no
        // nonce) from _TPM_Init keeping the current millisecond.
        if a.expiration != 0 {
            let ms = u64::from(a.expiration.unsigned_abs()) * 1000;
            auth_timeout = if a.nonce_tpm.is_empty() {
                ms + now % 1000
            } else {
                session.start_time.saturating_add(ms)
            };
        }
        if !a.nonce_tpm.is_empty() && a.nonce_tpm != session.nonce_tpm.as_slice() {
            return Err(TpmRc::NONCE.with_parameter(p_nonce));
        }
        if auth_timeout != 0 && auth_timeout < now {
            return Err(TpmRc::EXPIRED.with_parameter(p_expiration));
        }
        if !a.cp_hash_a.is_empty() {
            if a.cp_hash_a.len() != session.auth_hash.size() {
                return Err(TpmRc::SIZE.with_parameter(p_cp_hash));
            }
            if !session.cp_hash.is_empty() && session.cp_hash != a.cp_hash_a {
                return Err(TpmRc::CPHASH);
            }
        }
        Ok(auth_timeout)
    }

    /// PolicyContextUpdate for TPM2_PolicySecret / TPM2_PolicySigned
    /// (policyDigest ≔ H(H(policyDigest || cc || name) || policyRef), the
    /// cpHash and the timeout), then their response: timeout and a ticket
    /// of type `tag` when expiration is negative in a policy session (a
    /// NULL ticket otherwise). `entity` is the authorizing entity's Name
    /// and hierarchy.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn policy_auth_update(
        &mut self,
        session_handle: u32,
        n: usize,
        cc: CommandCode,
        tag: StructureTag,
        entity: (&[u8], u32),
        a: &AuthParams<'_>,
        auth_timeout: u64,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let (name, hierarchy) = entity;
        let reset_count = self.nv.reset_count;
        let session = self.policy_session_mut(session_handle, n)?;
        let trial = session.kind == SessionKind::Trial;
        session.policy_update(cc.0, name, Some(a.policy_ref));
        if !a.cp_hash_a.is_empty() {
            session.cp_hash = a.cp_hash_a.to_vec();
        }
        if auth_timeout != 0 && (session.timeout == 0 || session.timeout > auth_timeout) {
            session.timeout = auth_timeout;
        }
        if a.expiration < 0 && !trial {
            let expires_on_reset = a.nonce_tpm.is_empty();
            let ticket = self.auth_ticket(
                tag,
                hierarchy,
                a,
                name,
                auth_timeout,
                expires_on_reset,
                reset_count,
            );
            let flagged = if expires_on_reset {
                auth_timeout | EXPIRES_ON_RESET
            } else {
                auth_timeout
            };
            out.params.sized_u16(|w| w.u64(flagged));
            out.params.write(&ticket);
        } else {
            out.params.u16(0);
            out.params.write(&null_ticket(tag));
        }
        Ok(())
    }

    /// A TPMT_TK_AUTH: HMAC_contextAlg(proof(hierarchy), tag || cpHashA ||
    /// policyRef || authName || timeout[, resetCount]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn auth_ticket(
        &self,
        tag: StructureTag,
        hierarchy: u32,
        a: &AuthParams<'_>,
        name: &[u8],
        auth_timeout: u64,
        expires_on_reset: bool,
        reset_count: u32,
    ) -> vtpm_wire::object::Ticket {
        let timeout_bytes = auth_timeout.to_be_bytes();
        let reset_bytes = reset_count.to_be_bytes();
        let mut parts: Vec<&[u8]> = vec![a.cp_hash_a, a.policy_ref, name, &timeout_bytes];
        if expires_on_reset {
            parts.push(&reset_bytes);
        }
        self.ticket(tag, hierarchy, &parts)
    }
}

/// TPM_EO: how operandA (the TPM's) compares with operandB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation(pub u16);

impl Operation {
    /// TPM_EO_BITCLEAR, the last one.
    const MAX: u16 = 0x000B;

    /// Reads a TPM_EO (TPM_RC_VALUE beyond TPM_EO_BITCLEAR).
    pub(crate) fn read(
        r: &mut vtpm_wire::codec::Reader<'_>,
    ) -> Result<Operation, vtpm_wire::WireError> {
        let v = r.u16()?;
        if v > Self::MAX {
            return Err(vtpm_wire::WireError::Value);
        }
        Ok(Operation(v))
    }
}

/// PolicySptCheckCondition: `a` and `b` are big-endian integers of the
/// same size (signed for the signed operations).
pub(crate) fn check_condition(op: Operation, a: &[u8], b: &[u8]) -> bool {
    use std::cmp::Ordering;
    if a.len() != b.len() {
        return false;
    }
    let unsigned = a.cmp(b);
    let signed = match (
        a.first().is_some_and(|x| x & 0x80 != 0),
        b.first().is_some_and(|x| x & 0x80 != 0),
    ) {
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => unsigned,
    };
    match op.0 {
        0x0 => unsigned == Ordering::Equal,
        0x1 => unsigned != Ordering::Equal,
        0x2 => signed == Ordering::Greater,
        0x3 => unsigned == Ordering::Greater,
        0x4 => signed == Ordering::Less,
        0x5 => unsigned == Ordering::Less,
        0x6 => signed != Ordering::Less,
        0x7 => unsigned != Ordering::Less,
        0x8 => signed != Ordering::Greater,
        0x9 => unsigned != Ordering::Greater,
        0xA => a.iter().zip(b).all(|(x, y)| x & y == *y),
        0xB => a.iter().zip(b).all(|(x, y)| x & y == 0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions() {
        let op = |v| Operation(v);
        assert!(check_condition(op(0), &[1, 2], &[1, 2]));
        assert!(check_condition(op(1), &[1, 2], &[1, 3]));
        // 0xFF.. is -1 signed, 255 unsigned.
        assert!(check_condition(op(3), &[0xFF], &[0x01]));
        assert!(!check_condition(op(2), &[0xFF], &[0x01]));
        assert!(check_condition(op(4), &[0xFF], &[0x01]));
        assert!(check_condition(op(5), &[0x00, 0x10], &[0x01, 0x00]));
        assert!(check_condition(op(6), &[0x01], &[0x01]));
        assert!(check_condition(op(7), &[0x02], &[0x01]));
        assert!(check_condition(op(8), &[0x80], &[0x7F]));
        assert!(check_condition(op(9), &[0x7F], &[0x7F]));
        assert!(check_condition(op(0xA), &[0b1110], &[0b0110]));
        assert!(!check_condition(op(0xA), &[0b1010], &[0b0110]));
        assert!(check_condition(op(0xB), &[0b1001], &[0b0110]));
        assert!(!check_condition(op(0), &[1], &[1, 2]));
    }
}
