//! The attestation and clock commands through the engine's entry point,
//! with commands built by hand from Part 3's tables: the response codes
//! and positions Part 3 assigns, TPMS_ATTEST's layout (Part 2 §10.12),
//! NULL signatures for TPM_RH_NULL, and ClockSet's bounds.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use vtpm_engine::{MemoryPlatform, Tpm};

const NO_SESSIONS: u16 = 0x8001;
const SESSIONS: u16 = 0x8002;
const RS_PW: u32 = 0x4000_0009;
const RH_NULL: u32 = 0x4000_0007;
const RH_OWNER: u32 = 0x4000_0001;
const RH_ENDORSEMENT: u32 = 0x4000_000B;

mod cc {
    pub const CLOCK_SET: u32 = 0x128;
    pub const CLOCK_RATE_ADJUST: u32 = 0x130;
    pub const CREATE_PRIMARY: u32 = 0x131;
    pub const CERTIFY: u32 = 0x148;
    pub const CERTIFY_CREATION: u32 = 0x14A;
    pub const GET_TIME: u32 = 0x14C;
    pub const STARTUP: u32 = 0x144;
    pub const QUOTE: u32 = 0x158;
    pub const READ_CLOCK: u32 = 0x181;
}

mod alg {
    pub const RSA: u16 = 0x0001;
    pub const SHA256: u16 = 0x000B;
    pub const SHA384: u16 = 0x000C;
    pub const NULL: u16 = 0x0010;
    pub const RSASSA: u16 = 0x0014;
    pub const RSAES: u16 = 0x0015;
    pub const ECDSA: u16 = 0x0018;
    pub const ECC: u16 = 0x0023;
}

mod attr {
    pub const FIXED_TPM: u32 = 1 << 1;
    pub const FIXED_PARENT: u32 = 1 << 4;
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    pub const RESTRICTED: u32 = 1 << 16;
    pub const DECRYPT: u32 = 1 << 17;
    pub const SIGN: u32 = 1 << 18;
    pub const BASE: u32 = FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH;
}

mod rc {
    pub const VALUE: u32 = 0x084;
    pub const SCHEME: u32 = 0x092;
    pub const KEY: u32 = 0x09C;
    pub const TICKET: u32 = 0x0A0;

    /// The code with parameter number `n`.
    pub fn p(code: u32, n: u32) -> u32 {
        code | 0x040 | (n << 8)
    }

    /// The code with handle number `n`.
    pub fn h(code: u32, n: u32) -> u32 {
        code | (n << 8)
    }
}

fn command(code: u32, handles: &[u32], password: bool, params: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for h in handles {
        body.extend(h.to_be_bytes());
    }
    if password {
        let mut area = Vec::new();
        area.extend(RS_PW.to_be_bytes());
        area.extend(0u16.to_be_bytes());
        area.push(0x01);
        area.extend(0u16.to_be_bytes());
        body.extend((area.len() as u32).to_be_bytes());
        body.extend(area);
    }
    body.extend(params);
    let tag = if password { SESSIONS } else { NO_SESSIONS };
    let mut cmd = Vec::new();
    cmd.extend(tag.to_be_bytes());
    cmd.extend(((10 + body.len()) as u32).to_be_bytes());
    cmd.extend(code.to_be_bytes());
    cmd.extend(body);
    cmd
}

fn rc_of(rsp: &[u8]) -> u32 {
    assert!(rsp.len() >= 10, "short response {rsp:02x?}");
    assert_eq!(
        u32::from_be_bytes(rsp[2..6].try_into().unwrap()) as usize,
        rsp.len()
    );
    u32::from_be_bytes(rsp[6..10].try_into().unwrap())
}

fn params(rsp: &[u8], handles: usize) -> Vec<u8> {
    assert_eq!(rc_of(rsp), 0, "rc 0x{:x}", rc_of(rsp));
    let mut p = &rsp[10 + 4 * handles..];
    if u16::from_be_bytes([rsp[0], rsp[1]]) == SESSIONS {
        let n = u32::from_be_bytes(p[..4].try_into().unwrap()) as usize;
        p = &p[4..4 + n];
    }
    p.to_vec()
}

fn tpm2b(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u16).to_be_bytes().to_vec();
    v.extend(b);
    v
}

/// Reads TPM2Bs and integers off a response.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take(2).try_into().unwrap())
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    fn b(&mut self) -> &'a [u8] {
        let n = self.u16() as usize;
        self.take(n)
    }
}

fn started() -> Tpm {
    let mut t = Tpm::new(Box::new(MemoryPlatform::new())).unwrap();
    t.power_on();
    let r = t.execute(0, &command(cc::STARTUP, &[], false, &[0, 0]));
    assert_eq!(rc_of(&r), 0);
    t
}

/// A scheme: the selector and, unless it is TPM_ALG_NULL or RSAES, a hash.
fn scheme(s: u16, hash: u16) -> Vec<u8> {
    let mut v = s.to_be_bytes().to_vec();
    if s != alg::NULL && s != alg::RSAES {
        v.extend(hash.to_be_bytes());
    }
    v
}

fn ecc_template(attrs: u32, sch: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(alg::ECC.to_be_bytes());
    t.extend(alg::SHA256.to_be_bytes());
    t.extend(attrs.to_be_bytes());
    t.extend([0, 0]); // authPolicy
    t.extend(alg::NULL.to_be_bytes()); // symmetric
    t.extend(sch);
    t.extend(0x0003u16.to_be_bytes()); // TPM_ECC_NIST_P256
    t.extend(alg::NULL.to_be_bytes()); // kdf
    t.extend([0, 0, 0, 0]); // unique: empty x and y
    t
}

fn rsa_template(attrs: u32, sch: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(alg::RSA.to_be_bytes());
    t.extend(alg::SHA256.to_be_bytes());
    t.extend(attrs.to_be_bytes());
    t.extend([0, 0]);
    t.extend(alg::NULL.to_be_bytes());
    t.extend(sch);
    t.extend(2048u16.to_be_bytes());
    t.extend(0u32.to_be_bytes());
    t.extend([0, 0]);
    t
}

/// A command with `n` empty password sessions.
fn command_n(code: u32, handles: &[u32], n: usize, params: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for h in handles {
        body.extend(h.to_be_bytes());
    }
    let mut area = Vec::new();
    for _ in 0..n {
        area.extend(RS_PW.to_be_bytes());
        area.extend(0u16.to_be_bytes());
        area.push(0x01);
        area.extend(0u16.to_be_bytes());
    }
    body.extend((area.len() as u32).to_be_bytes());
    body.extend(area);
    body.extend(params);
    let mut cmd = Vec::new();
    cmd.extend(SESSIONS.to_be_bytes());
    cmd.extend(((10 + body.len()) as u32).to_be_bytes());
    cmd.extend(code.to_be_bytes());
    cmd.extend(body);
    cmd
}

/// CreatePrimary under `hierarchy`: (handle, creationHash, creationTicket
/// bytes, Name).
fn primary_in(t: &mut Tpm, hierarchy: u32, template: &[u8]) -> (u32, Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut p = tpm2b(&[0, 0, 0, 0]);
    p.extend(tpm2b(template));
    p.extend([0, 0]);
    p.extend(0u32.to_be_bytes());
    let r = t.execute(0, &command(cc::CREATE_PRIMARY, &[hierarchy], true, &p));
    let h = u32::from_be_bytes(r[10..14].try_into().unwrap());
    let out = params(&r, 1);
    let mut c = Cursor(&out);
    c.b(); // outPublic
    c.b(); // creationData
    let creation_hash = c.b().to_vec();
    let before = c.0;
    c.take(6);
    c.b();
    let ticket = before[..before.len() - c.0.len()].to_vec();
    let name = c.b().to_vec();
    (h, creation_hash, ticket, name)
}

const AK: u32 = attr::BASE | attr::RESTRICTED | attr::SIGN;

/// The common TPMS_ATTEST fields: (type, qualifiedSigner, extraData,
/// the TPMU_ATTEST bytes).
fn attest_fields(attest: &[u8]) -> (u16, Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut c = Cursor(attest);
    assert_eq!(c.u32(), 0xff54_4347);
    let ty = c.u16();
    let signer = c.b().to_vec();
    let extra = c.b().to_vec();
    c.take(17 + 8);
    (ty, signer, extra, c.0.to_vec())
}

fn quote_params(data: &[u8], sch: &[u8], pcrs: &[u8]) -> Vec<u8> {
    let mut p = tpm2b(data);
    p.extend(sch);
    p.extend(pcrs);
    p
}

/// TPML_PCR_SELECTION of sha256 PCRs 0..=7.
const PCRS_0_7: [u8; 10] = [0, 0, 0, 1, 0, 0x0b, 3, 0xff, 0, 0];

#[test]
fn quote_rules() {
    let mut t = started();
    let sch = scheme(alg::RSASSA, alg::SHA256);
    let (ak, ..) = primary_in(&mut t, RH_OWNER, &rsa_template(AK, &sch));
    // The key's scheme is used when the caller gives none or the same.
    for s in [scheme(alg::NULL, 0), sch.clone()] {
        let r = t.execute(
            0,
            &command(cc::QUOTE, &[ak], true, &quote_params(b"n", &s, &PCRS_0_7)),
        );
        let out = params(&r, 0);
        let mut c = Cursor(&out);
        let attest = c.b().to_vec();
        let (ty, _, extra, body) = attest_fields(&attest);
        assert_eq!((ty, extra.as_slice()), (0x8018, &b"n"[..]));
        assert_eq!(&body[..10], &PCRS_0_7);
        assert_eq!(Cursor(&body[10..]).b().len(), 32, "SHA-256 pcrDigest");
        assert_eq!((c.u16(), c.u16()), (alg::RSASSA, alg::SHA256));
        assert_eq!(c.b().len(), 256);
        assert!(c.0.is_empty());
    }
    // Another scheme or hash than the key's: TPM_RC_SCHEME on inScheme.
    for s in [
        scheme(alg::RSASSA, alg::SHA384),
        scheme(alg::ECDSA, alg::SHA256),
    ] {
        let r = t.execute(
            0,
            &command(cc::QUOTE, &[ak], true, &quote_params(&[], &s, &PCRS_0_7)),
        );
        assert_eq!(rc_of(&r), rc::p(rc::SCHEME, 2));
    }
    // A key that cannot sign: TPM_RC_KEY on signHandle.
    let (dec, ..) = primary_in(
        &mut t,
        RH_OWNER,
        &rsa_template(attr::BASE | attr::DECRYPT, &scheme(alg::RSAES, 0)),
    );
    let r = t.execute(
        0,
        &command(cc::QUOTE, &[dec], true, &quote_params(&[], &sch, &PCRS_0_7)),
    );
    assert_eq!(rc_of(&r), rc::h(rc::KEY, 1));
    // TPM_RH_NULL: a NULL signature; qualifiedSigner is the NULL handle.
    let r = t.execute(
        0,
        &command(
            cc::QUOTE,
            &[RH_NULL],
            true,
            &quote_params(b"x", &sch, &PCRS_0_7),
        ),
    );
    let out = params(&r, 0);
    let mut c = Cursor(&out);
    let attest = c.b().to_vec();
    let (ty, signer, extra, _) = attest_fields(&attest);
    assert_eq!(
        (ty, signer, extra),
        (0x8018, RH_NULL.to_be_bytes().to_vec(), b"x".to_vec())
    );
    assert_eq!(c.u16(), alg::NULL);
    assert!(c.0.is_empty());
    // Without a key and without a scheme there is no hash for pcrDigest.
    let r = t.execute(
        0,
        &command(
            cc::QUOTE,
            &[RH_NULL],
            true,
            &quote_params(&[], &scheme(alg::NULL, 0), &PCRS_0_7),
        ),
    );
    assert_eq!(rc_of(&r), rc::p(rc::SCHEME, 2));
}

#[test]
fn certify_creation_and_get_time_rules() {
    let mut t = started();
    let sch = scheme(alg::ECDSA, alg::SHA256);
    let (ak, ..) = primary_in(&mut t, RH_ENDORSEMENT, &ecc_template(AK, &sch));
    let (obj, creation_hash, ticket, name) = primary_in(
        &mut t,
        RH_OWNER,
        &ecc_template(attr::BASE | attr::SIGN, &sch),
    );
    let cc_params = |hash: &[u8], ticket: &[u8]| {
        let mut p = tpm2b(b"q");
        p.extend(tpm2b(hash));
        p.extend(scheme(alg::NULL, 0));
        p.extend(ticket);
        p
    };
    let r = t.execute(
        0,
        &command(
            cc::CERTIFY_CREATION,
            &[ak, obj],
            true,
            &cc_params(&creation_hash, &ticket),
        ),
    );
    let out = params(&r, 0);
    let (ty, _, extra, body) = attest_fields(Cursor(&out).b());
    assert_eq!((ty, extra), (0x801A, b"q".to_vec()));
    let mut c = Cursor(&body);
    assert_eq!(c.b(), &name[..]);
    assert_eq!(c.b(), &creation_hash[..]);
    // Another creation hash: TPM_RC_TICKET on creationTicket.
    let mut wrong = creation_hash.clone();
    wrong[0] ^= 1;
    let r = t.execute(
        0,
        &command(
            cc::CERTIFY_CREATION,
            &[ak, obj],
            true,
            &cc_params(&wrong, &ticket),
        ),
    );
    assert_eq!(rc_of(&r), rc::p(rc::TICKET, 4));

    // Certify with TPM_RH_NULL: a NULL signature.
    let mut p = tpm2b(&[]);
    p.extend(scheme(alg::NULL, 0));
    let r = t.execute(0, &command_n(cc::CERTIFY, &[obj, RH_NULL], 2, &p));
    let out = params(&r, 0);
    let mut c = Cursor(&out);
    let (ty, ..) = attest_fields(c.b());
    assert_eq!(ty, 0x8017);
    assert_eq!(c.u16(), alg::NULL);

    // GetTime: the privacy administrator is the endorsement hierarchy.
    let r = t.execute(0, &command_n(cc::GET_TIME, &[RH_OWNER, ak], 2, &p));
    assert_eq!(rc_of(&r), rc::h(rc::VALUE, 1));
    let r = t.execute(0, &command_n(cc::GET_TIME, &[RH_ENDORSEMENT, ak], 2, &p));
    let out = params(&r, 0);
    let (ty, ..) = attest_fields(Cursor(&out).b());
    assert_eq!(ty, 0x8019);
}

fn read_clock(t: &mut Tpm) -> u64 {
    let out = params(&t.execute(0, &command(cc::READ_CLOCK, &[], false, &[])), 0);
    u64::from_be_bytes(out[8..16].try_into().unwrap())
}

#[test]
fn clock_set_and_rate_adjust() {
    let mut t = started();
    let now = read_clock(&mut t);
    let set = |t: &mut Tpm, h: u32, v: u64| {
        rc_of(&t.execute(0, &command(cc::CLOCK_SET, &[h], true, &v.to_be_bytes())))
    };
    assert_eq!(set(&mut t, RH_OWNER, now + 1_000_000), 0);
    let later = read_clock(&mut t);
    assert!(later >= now + 1_000_000 && later < now + 1_100_000);
    // Backwards, or into the reserved top of the range: TPM_RC_VALUE.
    assert_eq!(set(&mut t, RH_OWNER, now), rc::p(rc::VALUE, 1));
    assert_eq!(
        set(&mut t, RH_OWNER, 0xFFFF_0000_0000_0000),
        rc::p(rc::VALUE, 1)
    );
    assert_eq!(set(&mut t, RH_OWNER, 0xFFFF_0000_0000_0000 - 1), 0);
    // TPMI_RH_PROVISION: owner or platform only.
    assert_eq!(
        set(&mut t, RH_ENDORSEMENT, u64::MAX >> 20),
        rc::h(rc::VALUE, 1)
    );
    // ClockRateAdjust: TPM_CLOCK_ADJUST is -3 ..= 3.
    for (v, expected) in [
        (0u8, 0),
        (3, 0),
        (0xFD, 0),
        (4, rc::p(rc::VALUE, 1)),
        (0xFC, rc::p(rc::VALUE, 1)),
    ] {
        let r = t.execute(0, &command(cc::CLOCK_RATE_ADJUST, &[RH_OWNER], true, &[v]));
        assert_eq!(rc_of(&r), expected, "adjust {v:#x}");
    }
}
