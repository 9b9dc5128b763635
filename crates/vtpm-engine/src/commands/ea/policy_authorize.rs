//! TPM2_PolicyAuthorize (Part 3 §23.16): the policy so far is replaced by
//! the authority of a signing key: approvedPolicy, signed by keySign over
//! aHash ≔ H_nameAlg(approvedPolicy || policyRef) and checked by
//! TPM2_VerifySignature (checkTicket, a TPMT_TK_VERIFIED), must be the
//! current policyDigest. Then policyDigest ≔ H(H(0…0 ||
//! TPM_CC_PolicyAuthorize || keySign) || policyRef). A trial session
//! checks nothing.

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use crate::session::SessionKind;
use subtle::ConstantTimeEq;
use vtpm_wire::constants::{AlgId, CommandCode, StructureTag, handle};
use vtpm_wire::object::Ticket;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Digest, Name, Nonce};

/// TPM2_PolicyAuthorize.
pub struct PolicyAuthorize;

/// Parameter numbers.
const P_APPROVED_POLICY: usize = 1;
const P_KEY_SIGN: usize = 3;
const P_CHECK_TICKET: usize = 4;

/// Parameters.
pub struct PolicyAuthorizeIn {
    /// approvedPolicy.
    approved_policy: Digest,
    /// policyRef.
    policy_ref: Nonce,
    /// keySign (a Name).
    key_sign: Name,
    /// checkTicket.
    check_ticket: Ticket,
}

impl Command for PolicyAuthorize {
    type In = PolicyAuthorizeIn;

    fn read(p: &mut Params<'_>) -> Result<PolicyAuthorizeIn, TpmRc> {
        Ok(PolicyAuthorizeIn {
            approved_policy: p.read()?,
            policy_ref: p.read()?,
            key_sign: p.read()?,
            check_ticket: p.with(|r| Ticket::read(r, StructureTag::VERIFIED))?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: PolicyAuthorizeIn,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        let trial = session.kind == SessionKind::Trial;
        let current = session.policy_digest.clone();
        let key_sign = input.key_sign.as_bytes();
        if !trial {
            // keySign is a digest Name: nameAlg || H(public).
            let (alg, digest) = key_sign
                .split_first_chunk::<2>()
                .ok_or(TpmRc::SIZE.with_parameter(P_KEY_SIGN))?;
            let name_alg = HashAlg::from_alg(AlgId(u16::from_be_bytes(*alg)))
                .ok_or(TpmRc::HASH.with_parameter(P_KEY_SIGN))?;
            if digest.len() != name_alg.size() {
                return Err(TpmRc::SIZE.with_parameter(P_KEY_SIGN));
            }
            let approved = input.approved_policy.as_bytes();
            if approved.len() != current.len() || !bool::from(approved.ct_eq(&current)) {
                return Err(TpmRc::VALUE.with_parameter(P_APPROVED_POLICY));
            }
            // The ticket VerifySignature gave for aHash under keySign. A
            // NULL ticket proves nothing.
            let a_hash = name_alg.digest(&[approved, input.policy_ref.as_bytes()]);
            let ticket = input.check_ticket;
            if ticket.hierarchy == handle::RH_NULL {
                return Err(TpmRc::VALUE.with_parameter(P_CHECK_TICKET));
            }
            let expected = tpm.ticket(
                StructureTag::VERIFIED,
                ticket.hierarchy,
                &[&a_hash, key_sign],
            );
            let got = ticket.digest.as_bytes();
            let want = expected.digest.as_bytes();
            if want.is_empty() || got.len() != want.len() || !bool::from(got.ct_eq(want)) {
                return Err(TpmRc::VALUE.with_parameter(P_CHECK_TICKET));
            }
        }
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        session.policy_digest = vec![0; session.auth_hash.size()];
        session.policy_update(
            CommandCode::PolicyAuthorize.0,
            key_sign,
            Some(input.policy_ref.as_bytes()),
        );
        Ok(())
    }
}
