//! Session audit (Part 1 §19.6.11) and TPM2_GetSessionAuditDigest
//! (Part 3 §18.5) through raw commands: the audit digest is recomputed
//! here with sha2 from the spec's formula (H(auditDigest || cpHash ||
//! rpHash) from an empty digest), the attribute rules and the exclusive
//! audit session from Part 1 and Part 3 §18.5.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use vtpm_engine::Tpm;

mod common;
use common::*;

/// TPMA_SESSION bits (Part 2 §8.4).
const CONTINUE: u8 = 0x01;
const AUDIT_EXCLUSIVE: u8 = 0x02;
const AUDIT_RESET: u8 = 0x04;
const AUDIT: u8 = 0x80;

/// An unbound, unsalted SHA-256 HMAC session and its nonceTPM.
struct Session {
    handle: u32,
    nonce_tpm: Vec<u8>,
}

fn start_session(t: &mut Tpm) -> Session {
    let (handle, nonce_tpm) = start_auth_session(t, 0x00);
    Session { handle, nonce_tpm }
}

/// TPM2_GetRandom(n) with `s` in the authorization area (attributes
/// `attrs`, HMAC with the empty session key). Returns (rc, randomBytes,
/// response attributes).
fn get_random(t: &mut Tpm, s: &mut Session, n: u16, attrs: u8) -> (u32, Vec<u8>, u8) {
    let params = n.to_be_bytes();
    let cp_hash = sha256(&[&cc::GET_RANDOM.to_be_bytes(), &params]);
    let nonce_caller = [9u8; 16];
    let hmac = hmac_sha256(&[], &[&cp_hash, &nonce_caller, &s.nonce_tpm, &[attrs]]);
    let area = auth(s.handle, &nonce_caller, attrs, &hmac);
    let mut body = (area.len() as u32).to_be_bytes().to_vec();
    body.extend(area);
    body.extend(params);
    let r = t.execute(0, &frame(SESSIONS, cc::GET_RANDOM, &body));
    if rc_of(&r) != 0 {
        return (rc_of(&r), Vec::new(), 0);
    }
    let psize = u32::from_be_bytes(r[10..14].try_into().unwrap()) as usize;
    let p = &r[14..14 + psize];
    let bytes = p[2..].to_vec();
    let mut a = &r[14 + psize..];
    let nlen = u16::from_be_bytes([a[0], a[1]]) as usize;
    s.nonce_tpm = a[2..2 + nlen].to_vec();
    a = &a[2 + nlen..];
    let rsp_attrs = a[0];
    // The response HMAC covers the response attributes.
    let rp_hash = sha256(&[&0u32.to_be_bytes(), &cc::GET_RANDOM.to_be_bytes(), p]);
    let expected = hmac_sha256(&[], &[&rp_hash, &s.nonce_tpm, &nonce_caller, &[rsp_attrs]]);
    assert_eq!(&a[3..], &expected[..], "response HMAC");
    (0, bytes, rsp_attrs)
}

/// The digest one audited TPM2_GetRandom adds.
fn extend(digest: &[u8], n: u16, bytes: &[u8]) -> Vec<u8> {
    let cp_hash = sha256(&[&cc::GET_RANDOM.to_be_bytes(), &n.to_be_bytes()]);
    let rp_hash = sha256(&[
        &0u32.to_be_bytes(),
        &cc::GET_RANDOM.to_be_bytes(),
        &tpm2b(bytes),
    ]);
    sha256(&[digest, &cp_hash, &rp_hash])
}

/// TPM2_GetSessionAuditDigest with no signing key: (exclusiveSession,
/// sessionDigest) from the unsigned TPMS_ATTEST.
fn session_audit_digest(t: &mut Tpm, session: u32) -> (u8, Vec<u8>) {
    let mut body = RH_ENDORSEMENT.to_be_bytes().to_vec();
    body.extend(RH_NULL.to_be_bytes());
    body.extend(session.to_be_bytes());
    // Two password sessions: privacyAdminHandle and signHandle (both
    // USER; TPM_RH_NULL's authValue is empty).
    body.extend(pw_area(2));
    body.extend(tpm2b(&[0xAA, 0xBB])); // qualifyingData
    body.extend(0x0010u16.to_be_bytes()); // inScheme TPM_ALG_NULL
    let r = t.execute(0, &frame(SESSIONS, cc::GET_SESSION_AUDIT_DIGEST, &body));
    assert_eq!(rc_of(&r), 0, "rc 0x{:x}", rc_of(&r));
    let out = params(&r, 0);
    let (ty, _, extra, body) = attest_fields(Cursor(&out).b());
    assert_eq!(ty, 0x8016, "TPM_ST_ATTEST_SESSION_AUDIT");
    assert_eq!(extra, [0xAA, 0xBB], "extraData");
    let mut c = Cursor(&body);
    let exclusive = c.take(1)[0];
    let digest = c.b().to_vec();
    assert!(c.0.is_empty());
    (exclusive, digest)
}

#[test]
fn audit_session_digest_and_exclusivity() {
    let mut t = started();
    let mut s = start_session(&mut t);
    // Not yet used for audit: an empty digest, not exclusive.
    assert_eq!(session_audit_digest(&mut t, s.handle), (0, Vec::new()));

    // First use as an audit session: it becomes exclusive; auditReset is
    // cleared in the response.
    let (r, b1, a) = get_random(&mut t, &mut s, 8, CONTINUE | AUDIT | AUDIT_RESET);
    assert_eq!(r, 0);
    assert_eq!(a, CONTINUE | AUDIT | AUDIT_EXCLUSIVE);
    let mut digest = extend(&[], 8, &b1);
    let (r, b2, a) = get_random(&mut t, &mut s, 16, CONTINUE | AUDIT | AUDIT_EXCLUSIVE);
    assert_eq!(r, 0);
    assert_eq!(a, CONTINUE | AUDIT | AUDIT_EXCLUSIVE);
    digest = extend(&digest, 16, &b2);

    // GetSessionAuditDigest reads before it (an unaudited command) ends
    // the exclusivity.
    assert_eq!(session_audit_digest(&mut t, s.handle), (1, digest.clone()));
    assert_eq!(session_audit_digest(&mut t, s.handle), (0, digest.clone()));

    // No longer exclusive: auditExclusive is refused, the digest unchanged.
    let (r, _, _) = get_random(&mut t, &mut s, 4, CONTINUE | AUDIT | AUDIT_EXCLUSIVE);
    assert_eq!(r, rc::EXCLUSIVE);
    // Audit without auditExclusive goes on, not exclusive.
    let (r, b3, a) = get_random(&mut t, &mut s, 4, CONTINUE | AUDIT);
    assert_eq!(r, 0);
    assert_eq!(a, CONTINUE | AUDIT);
    digest = extend(&digest, 4, &b3);
    assert_eq!(session_audit_digest(&mut t, s.handle), (0, digest));

    // auditReset: the digest starts over and the session is exclusive again.
    let (r, b4, a) = get_random(
        &mut t,
        &mut s,
        2,
        CONTINUE | AUDIT | AUDIT_RESET | AUDIT_EXCLUSIVE,
    );
    assert_eq!(r, 0);
    assert_eq!(a, CONTINUE | AUDIT | AUDIT_EXCLUSIVE);
    assert_eq!(
        session_audit_digest(&mut t, s.handle),
        (1, extend(&[], 2, &b4))
    );
}

#[test]
fn audit_attribute_rules() {
    let mut t = started();
    let mut s = start_session(&mut t);
    // auditReset or auditExclusive without audit.
    for attrs in [CONTINUE | AUDIT_RESET, CONTINUE | AUDIT_EXCLUSIVE] {
        let (r, _, _) = get_random(&mut t, &mut s, 4, attrs);
        assert_eq!(r, rc::ATTRIBUTES | rc::S | 0x100);
    }
    // A password session cannot audit.
    let area = auth(RS_PW, &[], CONTINUE | AUDIT, &[]);
    let mut body = RH_ENDORSEMENT.to_be_bytes().to_vec();
    body.extend(RH_NULL.to_be_bytes());
    body.extend(s.handle.to_be_bytes());
    body.extend((area.len() as u32).to_be_bytes());
    body.extend(area);
    body.extend(0u16.to_be_bytes());
    body.extend(0x0010u16.to_be_bytes());
    let r = t.execute(0, &frame(SESSIONS, cc::GET_SESSION_AUDIT_DIGEST, &body));
    assert_eq!(rc_of(&r), rc::ATTRIBUTES | rc::S | 0x100);
    // sessionHandle must be an HMAC session: a password handle is a
    // TPM_RC_VALUE on handle 3.
    let mut body = RH_ENDORSEMENT.to_be_bytes().to_vec();
    body.extend(RH_NULL.to_be_bytes());
    body.extend(RS_PW.to_be_bytes());
    let r = t.execute(0, &frame(SESSIONS, cc::GET_SESSION_AUDIT_DIGEST, &body));
    assert_eq!(rc_of(&r), 0x084 | 0x300);
}

/// An authorization area (with its size) of `n` password sessions, each
/// with an empty password.
fn pw_area(n: usize) -> Vec<u8> {
    let area = vec![password(&[]); n].concat();
    let mut v = (area.len() as u32).to_be_bytes().to_vec();
    v.extend(area);
    v
}

/// TPM2_SetCommandCodeAuditStatus with the owner's (empty) password; the
/// response code and the parameters as sent (for cpHash).
fn set_audit_status(t: &mut Tpm, alg: u16, set: &[u32], clear: &[u32]) -> (u32, Vec<u8>) {
    let mut params = alg.to_be_bytes().to_vec();
    for list in [set, clear] {
        params.extend((list.len() as u32).to_be_bytes());
        for cc in list {
            params.extend(cc.to_be_bytes());
        }
    }
    let mut body = RH_OWNER.to_be_bytes().to_vec();
    body.extend(pw_area(1));
    body.extend(&params);
    let r = t.execute(
        0,
        &frame(SESSIONS, cc::SET_COMMAND_CODE_AUDIT_STATUS, &body),
    );
    (rc_of(&r), params)
}

/// TPM2_GetRandom without sessions; the random bytes.
fn plain_get_random(t: &mut Tpm, n: u16) -> Vec<u8> {
    let r = t.execute(0, &frame(NO_SESSIONS, cc::GET_RANDOM, &n.to_be_bytes()));
    assert_eq!(rc_of(&r), 0);
    let len = u16::from_be_bytes([r[10], r[11]]) as usize;
    r[12..12 + len].to_vec()
}

/// TPM2_GetCommandAuditDigest with a NULL signer: (auditCounter,
/// digestAlg, auditDigest, commandDigest).
fn command_audit_digest(t: &mut Tpm) -> (u64, u16, Vec<u8>, Vec<u8>) {
    let mut body = RH_ENDORSEMENT.to_be_bytes().to_vec();
    body.extend(RH_NULL.to_be_bytes());
    body.extend(pw_area(2));
    body.extend(tpm2b(&[0x01, 0x02, 0x03]));
    body.extend(0x0010u16.to_be_bytes());
    let r = t.execute(0, &frame(SESSIONS, cc::GET_COMMAND_AUDIT_DIGEST, &body));
    assert_eq!(rc_of(&r), 0, "rc 0x{:x}", rc_of(&r));
    let out = params(&r, 0);
    let (ty, _, extra, body) = attest_fields(Cursor(&out).b());
    assert_eq!(ty, 0x8015, "TPM_ST_ATTEST_COMMAND_AUDIT");
    assert_eq!(extra, [0x01, 0x02, 0x03], "extraData");
    let mut c = Cursor(&body);
    let counter = c.u64();
    let alg = c.u16();
    let audit_digest = c.b().to_vec();
    let command_digest = c.b().to_vec();
    assert!(c.0.is_empty());
    (counter, alg, audit_digest, command_digest)
}

/// Command audit (Part 1 §33, Part 3 §21.2, §18.4): the digest is
/// recomputed with sha2 as H(auditDigest || cpHash || rpHash) from an
/// empty digest, cpHash = H(commandCode || Names || parameters), rpHash =
/// H(responseCode || commandCode || parameters).
#[test]
fn command_audit_digest_follows_the_audited_commands() {
    let mut t = started();
    let (r, set_params) = set_audit_status(&mut t, 0x0010, &[cc::GET_RANDOM], &[]);
    assert_eq!(r, 0);
    // TPM2_SetCommandCodeAuditStatus is always audited: the first
    // extend after a reset counts.
    let cc = cc::SET_COMMAND_CODE_AUDIT_STATUS.to_be_bytes();
    let cp = sha256(&[&cc, &RH_OWNER.to_be_bytes(), &set_params]);
    let rp = sha256(&[&0u32.to_be_bytes(), &cc]);
    let mut expected = sha256(&[&cp, &rp]);
    for n in [8u16, 20] {
        let bytes = plain_get_random(&mut t, n);
        let cc = cc::GET_RANDOM.to_be_bytes();
        let cp = sha256(&[&cc, &n.to_be_bytes()]);
        let rp = sha256(&[&0u32.to_be_bytes(), &cc, &tpm2b(&bytes)]);
        expected = sha256(&[&expected, &cp, &rp]);
    }
    let mut codes = cc::GET_RANDOM.to_be_bytes().to_vec();
    codes.splice(0..0, cc::SET_COMMAND_CODE_AUDIT_STATUS.to_be_bytes());
    let command_digest = sha256(&[&codes]);
    let (counter, alg, digest, cmds) = command_audit_digest(&mut t);
    assert_eq!((counter, alg), (1, 0x000B));
    assert_eq!(digest, expected);
    assert_eq!(cmds, command_digest);
    // Reported digests are reset; TPM2_GetCommandAuditDigest itself is
    // not audited here.
    let (counter, _, digest, _) = command_audit_digest(&mut t);
    assert_eq!((counter, digest.len()), (1, 0));
    // The next audited command starts a new digest and counts.
    let bytes = plain_get_random(&mut t, 4);
    let cc = cc::GET_RANDOM.to_be_bytes();
    let cp = sha256(&[&cc, &4u16.to_be_bytes()]);
    let rp = sha256(&[&0u32.to_be_bytes(), &cc, &tpm2b(&bytes)]);
    let (counter, _, digest, _) = command_audit_digest(&mut t);
    assert_eq!(counter, 2);
    assert_eq!(digest, sha256(&[&[], &cp, &rp]));
    // Clearing GetRandom (and trying to clear SetCommandCodeAuditStatus)
    // leaves only SetCommandCodeAuditStatus.
    let (r, _) = set_audit_status(
        &mut t,
        0x0010,
        &[],
        &[cc::GET_RANDOM, cc::SET_COMMAND_CODE_AUDIT_STATUS],
    );
    assert_eq!(r, 0);
    plain_get_random(&mut t, 4);
    let (_, _, _, cmds) = command_audit_digest(&mut t);
    assert_eq!(
        cmds,
        sha256(&[&cc::SET_COMMAND_CODE_AUDIT_STATUS.to_be_bytes()])
    );
    // A new hash with a list is TPM_RC_VALUE on auditAlg; alone it
    // changes the hash and leaves the digest empty.
    let (r, _) = set_audit_status(&mut t, 0x000C, &[cc::GET_RANDOM], &[]);
    assert_eq!(r, 0x084 | 0x040 | 0x100);
    let (r, _) = set_audit_status(&mut t, 0x000C, &[], &[]);
    assert_eq!(r, 0);
    let (_, alg, digest, cmds) = command_audit_digest(&mut t);
    assert_eq!((alg, digest.len(), cmds.len()), (0x000C, 0, 48));
}
