//! Raw-command helpers shared by the engine's integration tests: constants
//! from Part 2, command bytes built by hand from Part 3's tables, response
//! readers, and the independent computations (sha2, HMAC written out from
//! RFC 2104, DER) the tests judge the engine with. Each test file says
//! `mod common;` and uses what it needs.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use sha2::{Digest as _, Sha256};
use std::path::PathBuf;
use std::process::Command;
use vtpm_engine::{MemoryPlatform, Tpm};

/// TPM_ST_NO_SESSIONS (Part 2 §6.9).
pub const NO_SESSIONS: u16 = 0x8001;
/// TPM_ST_SESSIONS (Part 2 §6.9).
pub const SESSIONS: u16 = 0x8002;
/// TPM_RS_PW, the password session (Part 2 §7.4).
pub const RS_PW: u32 = 0x4000_0009;
/// Permanent handles (Part 2 §7.4).
pub const RH_OWNER: u32 = 0x4000_0001;
pub const RH_NULL: u32 = 0x4000_0007;
pub const RH_LOCKOUT: u32 = 0x4000_000A;
pub const RH_ENDORSEMENT: u32 = 0x4000_000B;
pub const RH_PLATFORM: u32 = 0x4000_000C;
pub const RH_PLATFORM_NV: u32 = 0x4000_000D;

/// TPM_CC command codes (Part 2 §6.5.2).
pub mod cc {
    pub const EVICT_CONTROL: u32 = 0x120;
    pub const HIERARCHY_CONTROL: u32 = 0x121;
    pub const NV_UNDEFINE_SPACE: u32 = 0x122;
    pub const CHANGE_EPS: u32 = 0x124;
    pub const CHANGE_PPS: u32 = 0x125;
    pub const CLEAR: u32 = 0x126;
    pub const CLEAR_CONTROL: u32 = 0x127;
    pub const CLOCK_SET: u32 = 0x128;
    pub const HIERARCHY_CHANGE_AUTH: u32 = 0x129;
    pub const NV_DEFINE_SPACE: u32 = 0x12A;
    pub const PCR_ALLOCATE: u32 = 0x12B;
    pub const SET_PRIMARY_POLICY: u32 = 0x12E;
    pub const CLOCK_RATE_ADJUST: u32 = 0x130;
    pub const CREATE_PRIMARY: u32 = 0x131;
    pub const GET_COMMAND_AUDIT_DIGEST: u32 = 0x133;
    pub const NV_WRITE: u32 = 0x137;
    pub const DA_LOCK_RESET: u32 = 0x139;
    pub const DA_PARAMETERS: u32 = 0x13A;
    pub const PCR_EVENT: u32 = 0x13C;
    pub const PCR_RESET: u32 = 0x13D;
    pub const SEQUENCE_COMPLETE: u32 = 0x13E;
    pub const SET_COMMAND_CODE_AUDIT_STATUS: u32 = 0x140;
    pub const INCREMENTAL_SELF_TEST: u32 = 0x142;
    pub const SELF_TEST: u32 = 0x143;
    pub const STARTUP: u32 = 0x144;
    pub const SHUTDOWN: u32 = 0x145;
    pub const STIR_RANDOM: u32 = 0x146;
    pub const ACTIVATE_CREDENTIAL: u32 = 0x147;
    pub const CERTIFY: u32 = 0x148;
    pub const CERTIFY_CREATION: u32 = 0x14A;
    pub const DUPLICATE: u32 = 0x14B;
    pub const GET_TIME: u32 = 0x14C;
    pub const GET_SESSION_AUDIT_DIGEST: u32 = 0x14D;
    pub const NV_READ: u32 = 0x14E;
    pub const OBJECT_CHANGE_AUTH: u32 = 0x150;
    pub const POLICY_SECRET: u32 = 0x151;
    pub const REWRAP: u32 = 0x152;
    pub const CREATE: u32 = 0x153;
    pub const ECDH_ZGEN: u32 = 0x154;
    pub const HMAC: u32 = 0x155;
    pub const IMPORT: u32 = 0x156;
    pub const LOAD: u32 = 0x157;
    pub const QUOTE: u32 = 0x158;
    pub const RSA_DECRYPT: u32 = 0x159;
    pub const HMAC_START: u32 = 0x15B;
    pub const SEQUENCE_UPDATE: u32 = 0x15C;
    pub const SIGN: u32 = 0x15D;
    pub const UNSEAL: u32 = 0x15E;
    pub const CONTEXT_LOAD: u32 = 0x161;
    pub const CONTEXT_SAVE: u32 = 0x162;
    pub const ECDH_KEYGEN: u32 = 0x163;
    pub const ENCRYPT_DECRYPT: u32 = 0x164;
    pub const FLUSH_CONTEXT: u32 = 0x165;
    pub const LOAD_EXTERNAL: u32 = 0x167;
    pub const MAKE_CREDENTIAL: u32 = 0x168;
    pub const NV_READ_PUBLIC: u32 = 0x169;
    pub const POLICY_COMMAND_CODE: u32 = 0x16C;
    pub const READ_PUBLIC: u32 = 0x173;
    pub const RSA_ENCRYPT: u32 = 0x174;
    pub const START_AUTH_SESSION: u32 = 0x176;
    pub const VERIFY_SIGNATURE: u32 = 0x177;
    pub const ECC_PARAMETERS: u32 = 0x178;
    pub const GET_CAPABILITY: u32 = 0x17A;
    pub const GET_RANDOM: u32 = 0x17B;
    pub const GET_TEST_RESULT: u32 = 0x17C;
    pub const HASH: u32 = 0x17D;
    pub const PCR_READ: u32 = 0x17E;
    pub const READ_CLOCK: u32 = 0x181;
    pub const PCR_EXTEND: u32 = 0x182;
    pub const NV_CERTIFY: u32 = 0x184;
    pub const EVENT_SEQUENCE_COMPLETE: u32 = 0x185;
    pub const HASH_SEQUENCE_START: u32 = 0x186;
    pub const POLICY_PHYSICAL_PRESENCE: u32 = 0x187;
    pub const POLICY_GET_DIGEST: u32 = 0x189;
    pub const TEST_PARMS: u32 = 0x18A;
    pub const ENCRYPT_DECRYPT2: u32 = 0x193;
}

/// TPM_ALG_ID values (Part 2 §6.3).
pub mod alg {
    pub const RSA: u16 = 0x0001;
    pub const SHA1: u16 = 0x0004;
    pub const HMAC: u16 = 0x0005;
    pub const AES: u16 = 0x0006;
    pub const KEYEDHASH: u16 = 0x0008;
    pub const SHA256: u16 = 0x000B;
    pub const SHA384: u16 = 0x000C;
    pub const NULL: u16 = 0x0010;
    pub const RSASSA: u16 = 0x0014;
    pub const RSAES: u16 = 0x0015;
    pub const OAEP: u16 = 0x0017;
    pub const ECDSA: u16 = 0x0018;
    pub const ECDH: u16 = 0x0019;
    pub const ECC: u16 = 0x0023;
    pub const SYMCIPHER: u16 = 0x0025;
    pub const CTR: u16 = 0x0040;
    pub const OFB: u16 = 0x0041;
    pub const CBC: u16 = 0x0042;
    pub const CFB: u16 = 0x0043;
    pub const ECB: u16 = 0x0044;
}

/// TPMA_OBJECT bits (Part 2 §8.3).
pub mod attr {
    pub const FIXED_TPM: u32 = 1 << 1;
    pub const FIXED_PARENT: u32 = 1 << 4;
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    pub const USER_WITH_AUTH: u32 = 1 << 6;
    pub const ADMIN_WITH_POLICY: u32 = 1 << 7;
    pub const NO_DA: u32 = 1 << 10;
    pub const ENCRYPTED_DUPLICATION: u32 = 1 << 11;
    pub const RESTRICTED: u32 = 1 << 16;
    pub const DECRYPT: u32 = 1 << 17;
    pub const SIGN: u32 = 1 << 18;
    /// fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth.
    pub const BASE: u32 = FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH;
}

/// TPMA_NV bits (Part 2 §13.4).
pub mod nv_attr {
    pub const PPWRITE: u32 = 1 << 0;
    pub const OWNERWRITE: u32 = 1 << 1;
    pub const AUTHWRITE: u32 = 1 << 2;
    pub const PPREAD: u32 = 1 << 16;
    pub const OWNERREAD: u32 = 1 << 17;
    pub const AUTHREAD: u32 = 1 << 18;
    pub const NO_DA: u32 = 1 << 25;
    pub const PLATFORMCREATE: u32 = 1 << 30;
}

/// Response codes (Part 2 §6.6): format-one codes take the parameter
/// number as `0x40 | n << 8`, the handle number as `n << 8` and the
/// session number as `0x800 | n << 8`.
pub mod rc {
    pub const ATTRIBUTES: u32 = 0x082;
    pub const HASH: u32 = 0x083;
    pub const VALUE: u32 = 0x084;
    pub const HIERARCHY: u32 = 0x085;
    pub const KEY_SIZE: u32 = 0x087;
    pub const MODE: u32 = 0x089;
    pub const TYPE: u32 = 0x08A;
    pub const HANDLE: u32 = 0x08B;
    pub const AUTH_FAIL: u32 = 0x08E;
    pub const NONCE: u32 = 0x08F;
    pub const SCHEME: u32 = 0x092;
    pub const SIZE: u32 = 0x095;
    pub const SYMMETRIC: u32 = 0x096;
    pub const SIGNATURE: u32 = 0x09B;
    pub const KEY: u32 = 0x09C;
    pub const POLICY_FAIL: u32 = 0x09D;
    pub const INTEGRITY: u32 = 0x09F;
    pub const TICKET: u32 = 0x0A0;
    pub const BAD_AUTH: u32 = 0x0A2;
    pub const POLICY_CC: u32 = 0x0A4;
    pub const BINDING: u32 = 0x0A5;
    pub const CURVE: u32 = 0x0A6;
    pub const ECC_POINT: u32 = 0x0A7;
    pub const EXCLUSIVE: u32 = 0x121;
    pub const AUTH_UNAVAILABLE: u32 = 0x12F;
    pub const NV_RANGE: u32 = 0x146;
    pub const NV_AUTHORIZATION: u32 = 0x149;
    pub const NV_UNINITIALIZED: u32 = 0x14A;
    pub const CPHASH: u32 = 0x151;
    /// The parameter bit of a format-one code.
    pub const P: u32 = 0x040;
    /// The session bit of a format-one code.
    pub const S: u32 = 0x800;

    /// `code` on parameter `n`.
    pub const fn p(code: u32, n: u32) -> u32 {
        code | P | (n << 8)
    }

    /// `code` on handle `n`.
    pub const fn h(code: u32, n: u32) -> u32 {
        code | (n << 8)
    }

    /// `code` on session `n`.
    pub const fn s(code: u32, n: u32) -> u32 {
        code | S | (n << 8)
    }
}

// ---------------------------------------------------------------------------
// Commands.

/// A TPM2B: a u16 size, then the bytes.
pub fn tpm2b(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u16).to_be_bytes().to_vec();
    v.extend(b);
    v
}

/// TPMS_AUTH_COMMAND (Part 2 §10.13.2): sessionHandle, nonce,
/// sessionAttributes, hmac.
pub fn auth(handle: u32, nonce: &[u8], attrs: u8, hmac: &[u8]) -> Vec<u8> {
    let mut a = handle.to_be_bytes().to_vec();
    a.extend(tpm2b(nonce));
    a.push(attrs);
    a.extend(tpm2b(hmac));
    a
}

/// The TPMS_AUTH_COMMAND of a password session (TPM_RS_PW, empty nonce,
/// continueSession) carrying `pw`.
pub fn password(pw: &[u8]) -> Vec<u8> {
    auth(RS_PW, &[], 0x01, pw)
}

/// A command: header (tag, commandSize, commandCode, Part 1 §18) then
/// `body` (handles, authorization area, parameters).
pub fn frame(tag: u16, code: u32, body: &[u8]) -> Vec<u8> {
    let mut cmd = tag.to_be_bytes().to_vec();
    cmd.extend(((10 + body.len()) as u32).to_be_bytes());
    cmd.extend(code.to_be_bytes());
    cmd.extend(body);
    cmd
}

/// A command with the authorization area `area` (TPMS_AUTH_COMMAND
/// entries, sent after its authorizationSize with TPM_ST_SESSIONS), or
/// none (TPM_ST_NO_SESSIONS).
pub fn command_area(code: u32, handles: &[u32], area: Option<&[u8]>, params: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for h in handles {
        body.extend(h.to_be_bytes());
    }
    if let Some(area) = area {
        body.extend((area.len() as u32).to_be_bytes());
        body.extend(area);
    }
    body.extend(params);
    let tag = if area.is_some() {
        SESSIONS
    } else {
        NO_SESSIONS
    };
    frame(tag, code, &body)
}

/// A command with the TPMS_AUTH_COMMAND entries `auths`; none: no
/// authorization area (TPM_ST_NO_SESSIONS).
pub fn command_auths(code: u32, handles: &[u32], auths: &[Vec<u8>], params: &[u8]) -> Vec<u8> {
    let area = auths.concat();
    command_area(
        code,
        handles,
        (!auths.is_empty()).then_some(&area[..]),
        params,
    )
}

/// A command with `n` empty password sessions (none: TPM_ST_NO_SESSIONS).
pub fn command_n(code: u32, handles: &[u32], n: usize, params: &[u8]) -> Vec<u8> {
    command_auths(code, handles, &vec![password(&[]); n], params)
}

/// A command with one empty password session, or none.
pub fn command(code: u32, handles: &[u32], password: bool, params: &[u8]) -> Vec<u8> {
    command_n(code, handles, usize::from(password), params)
}

/// A command with one password session per entry of `passwords`, or with
/// no authorization area for `None` (`Some(&[])` sends TPM_ST_SESSIONS
/// with an empty area).
pub fn command_pw(
    code: u32,
    handles: &[u32],
    passwords: Option<&[&[u8]]>,
    params: &[u8],
) -> Vec<u8> {
    let area = passwords.map(|pws| {
        pws.iter()
            .map(|pw| password(pw))
            .collect::<Vec<_>>()
            .concat()
    });
    command_area(code, handles, area.as_deref(), params)
}

/// A command with one password session per entry of `passwords`; an empty
/// list sends no authorization area (TPM_ST_NO_SESSIONS).
pub fn command_passwords(
    code: u32,
    handles: &[u32],
    passwords: &[&[u8]],
    params: &[u8],
) -> Vec<u8> {
    let auths: Vec<Vec<u8>> = passwords.iter().map(|pw| password(pw)).collect();
    command_auths(code, handles, &auths, params)
}

// ---------------------------------------------------------------------------
// Responses.

/// The responseCode of a response, after checking that its header is
/// whole and its responseSize is its length.
pub fn rc_of(rsp: &[u8]) -> u32 {
    assert!(rsp.len() >= 10, "short response {rsp:02x?}");
    assert_eq!(
        u32::from_be_bytes(rsp[2..6].try_into().unwrap()) as usize,
        rsp.len(),
        "size field"
    );
    u32::from_be_bytes(rsp[6..10].try_into().unwrap())
}

/// The parameters of a successful response (without the parameterSize of
/// a TPM_ST_SESSIONS response and the authorization area after them),
/// `handles` response handles skipped.
pub fn params(rsp: &[u8], handles: usize) -> Vec<u8> {
    assert_eq!(rc_of(rsp), 0, "rc 0x{:x}", rc_of(rsp));
    let mut p = &rsp[10 + 4 * handles..];
    if u16::from_be_bytes([rsp[0], rsp[1]]) == SESSIONS {
        let n = u32::from_be_bytes(p[..4].try_into().unwrap()) as usize;
        p = &p[4..4 + n];
    }
    p.to_vec()
}

/// The first response handle.
pub fn handle_of(rsp: &[u8]) -> u32 {
    u32::from_be_bytes(rsp[10..14].try_into().unwrap())
}

/// Reads TPM2Bs and integers off a response.
pub struct Cursor<'a>(pub &'a [u8]);

impl<'a> Cursor<'a> {
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take(2).try_into().unwrap())
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    pub fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take(8).try_into().unwrap())
    }
    /// A TPM2B's contents.
    pub fn b(&mut self) -> &'a [u8] {
        let n = self.u16() as usize;
        self.take(n)
    }
}

/// The common fields of a TPMS_ATTEST (Part 2 §10.12.12), after checking
/// its magic (TPM_GENERATED_VALUE): (type, qualifiedSigner, extraData, the
/// TPMU_ATTEST bytes after clockInfo and firmwareVersion).
pub fn attest_fields(attest: &[u8]) -> (u16, Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut c = Cursor(attest);
    assert_eq!(c.u32(), 0xff54_4347, "TPM_GENERATED_VALUE");
    let ty = c.u16();
    let signer = c.b().to_vec();
    let extra = c.b().to_vec();
    c.take(17 + 8); // clockInfo, firmwareVersion
    (ty, signer, extra, c.0.to_vec())
}

// ---------------------------------------------------------------------------
// A TPM and the objects and sessions the tests make.

/// A TPM on a fresh `MemoryPlatform`, powered on, not started.
pub fn tpm() -> Tpm {
    let mut t = Tpm::new(Box::new(MemoryPlatform::new())).unwrap();
    t.power_on();
    t
}

/// A TPM after TPM2_Startup(TPM_SU_CLEAR).
pub fn started() -> Tpm {
    let mut t = tpm();
    let r = t.execute(0, &command(cc::STARTUP, &[], false, &[0, 0]));
    assert_eq!(rc_of(&r), 0);
    t
}

/// TPMT_SIG_SCHEME / TPMT_RSA_SCHEME / TPMT_KEYEDHASH_SCHEME: the selector
/// and, unless it is TPM_ALG_NULL or RSAES, a hash.
pub fn scheme(s: u16, hash: u16) -> Vec<u8> {
    let mut v = s.to_be_bytes().to_vec();
    if s != alg::NULL && s != alg::RSAES {
        v.extend(hash.to_be_bytes());
    }
    v
}

/// TPMT_PUBLIC of an ECC NIST P-256 key, nameAlg SHA-256, no authPolicy,
/// NULL symmetric and kdf, scheme `sch`, empty unique.
pub fn ecc_template(attrs: u32, sch: &[u8]) -> Vec<u8> {
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

/// TPMT_PUBLIC of an ECC NIST P-256 key, nameAlg SHA-256, authPolicy
/// `auth_policy`, NULL kdf, empty unique: a storage key (restricted
/// decrypt) gets AES-128-CFB, an unrestricted signing key ECDSA-SHA256.
pub fn ecc_public(attrs: u32, auth_policy: &[u8]) -> Vec<u8> {
    let mut v = alg::ECC.to_be_bytes().to_vec();
    v.extend(alg::SHA256.to_be_bytes());
    v.extend(attrs.to_be_bytes());
    v.extend(tpm2b(auth_policy));
    if attrs & attr::RESTRICTED != 0 && attrs & attr::DECRYPT != 0 {
        v.extend(alg::AES.to_be_bytes());
        v.extend(128u16.to_be_bytes());
        v.extend(alg::CFB.to_be_bytes());
    } else {
        v.extend(alg::NULL.to_be_bytes());
    }
    if attrs & attr::SIGN != 0 && attrs & attr::RESTRICTED == 0 {
        v.extend(scheme(alg::ECDSA, alg::SHA256));
    } else {
        v.extend(alg::NULL.to_be_bytes());
    }
    v.extend(0x0003u16.to_be_bytes()); // TPM_ECC_NIST_P256
    v.extend(alg::NULL.to_be_bytes()); // kdf
    v.extend(tpm2b(&[])); // unique.x
    v.extend(tpm2b(&[])); // unique.y
    v
}

/// TPMT_PUBLIC of an RSA-2048 key, nameAlg SHA-256, no authPolicy, NULL
/// symmetric, scheme `sch`, the default exponent, empty unique.
pub fn rsa_template(attrs: u32, sch: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(alg::RSA.to_be_bytes());
    t.extend(alg::SHA256.to_be_bytes());
    t.extend(attrs.to_be_bytes());
    t.extend([0, 0]); // authPolicy
    t.extend(alg::NULL.to_be_bytes()); // symmetric
    t.extend(sch);
    t.extend(2048u16.to_be_bytes()); // keyBits
    t.extend(0u32.to_be_bytes()); // exponent
    t.extend([0, 0]); // unique
    t
}

/// TPMT_PUBLIC of a keyed-hash object, nameAlg SHA-256, no authPolicy,
/// scheme `sch`, empty unique.
pub fn hmac_template(attrs: u32, sch: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(alg::KEYEDHASH.to_be_bytes());
    t.extend(alg::SHA256.to_be_bytes());
    t.extend(attrs.to_be_bytes());
    t.extend([0, 0]); // authPolicy
    t.extend(sch);
    t.extend([0, 0]); // unique
    t
}

/// The response of TPM2_CreatePrimary (Part 3 §24.1).
pub struct Created {
    pub handle: u32,
    /// TPMT_PUBLIC (the contents of outPublic).
    pub public: Vec<u8>,
    pub creation_hash: Vec<u8>,
    /// The TPMT_TK_CREATION bytes.
    pub creation_ticket: Vec<u8>,
    pub name: Vec<u8>,
}

/// TPM2_CreatePrimary under `hierarchy` (password `hierarchy_auth`) with
/// inSensitive {userAuth, data}, inPublic `template`, empty outsideInfo
/// and creationPCR.
pub fn create_primary_in(
    t: &mut Tpm,
    hierarchy: u32,
    hierarchy_auth: &[u8],
    user_auth: &[u8],
    data: &[u8],
    template: &[u8],
) -> Created {
    let mut p = tpm2b(&[tpm2b(user_auth), tpm2b(data)].concat());
    p.extend(tpm2b(template));
    p.extend([0, 0]); // outsideInfo
    p.extend(0u32.to_be_bytes()); // creationPCR
    let r = t.execute(
        0,
        &command_auths(
            cc::CREATE_PRIMARY,
            &[hierarchy],
            &[password(hierarchy_auth)],
            &p,
        ),
    );
    let out = params(&r, 1);
    assert_eq!(u16::from_be_bytes([r[0], r[1]]), SESSIONS);
    let mut c = Cursor(&out);
    let public = c.b().to_vec(); // outPublic
    c.b(); // creationData
    let creation_hash = c.b().to_vec();
    let before = c.0;
    c.take(6); // tag, hierarchy
    c.b(); // digest
    let creation_ticket = before[..before.len() - c.0.len()].to_vec();
    let name = c.b().to_vec();
    Created {
        handle: handle_of(&r),
        public,
        creation_hash,
        creation_ticket,
        name,
    }
}

/// CreatePrimary under the owner (empty password) with sensitive `data`:
/// (handle, TPMT_PUBLIC bytes).
pub fn primary(t: &mut Tpm, template: &[u8], data: &[u8]) -> (u32, Vec<u8>) {
    let c = create_primary_in(t, RH_OWNER, &[], &[], data, template);
    (c.handle, c.public)
}

/// CreatePrimary under `hierarchy` (empty password): (handle,
/// creationHash, creationTicket bytes, Name).
pub fn primary_in(
    t: &mut Tpm,
    hierarchy: u32,
    template: &[u8],
) -> (u32, Vec<u8>, Vec<u8>, Vec<u8>) {
    let c = create_primary_in(t, hierarchy, &[], &[], &[], template);
    (c.handle, c.creation_hash, c.creation_ticket, c.name)
}

/// TPM2_FlushContext of `h`, which must succeed.
pub fn flush(t: &mut Tpm, h: u32) {
    let r = t.execute(0, &command(cc::FLUSH_CONTEXT, &[], false, &h.to_be_bytes()));
    assert_eq!(rc_of(&r), 0);
}

/// TPM2_StartAuthSession, unbound and unsalted, SHA-256, NULL symmetric,
/// nonceCaller 16 × 0x07, of type `se` (0 HMAC, 1 policy, 3 trial):
/// (session handle, nonceTPM).
pub fn start_auth_session(t: &mut Tpm, se: u8) -> (u32, Vec<u8>) {
    let mut p = tpm2b(&[7u8; 16]);
    p.extend(tpm2b(&[])); // encryptedSalt
    p.push(se);
    p.extend(alg::NULL.to_be_bytes()); // symmetric
    p.extend(alg::SHA256.to_be_bytes()); // authHash
    let r = t.execute(
        0,
        &command(cc::START_AUTH_SESSION, &[RH_NULL, RH_NULL], false, &p),
    );
    let out = params(&r, 1);
    (handle_of(&r), Cursor(&out).b().to_vec())
}

/// TPM2B_NV_PUBLIC of a SHA-256 index with no authPolicy.
pub fn nv_public(index: u32, attrs: u32, size: u16) -> Vec<u8> {
    let mut p = index.to_be_bytes().to_vec();
    p.extend(alg::SHA256.to_be_bytes());
    p.extend(attrs.to_be_bytes());
    p.extend(0u16.to_be_bytes()); // authPolicy
    p.extend(size.to_be_bytes());
    tpm2b(&p)
}

// ---------------------------------------------------------------------------
// Independent computations.

/// SHA-256 of the concatenation of `parts` (the sha2 crate).
pub fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
}

/// HMAC-SHA-256 (RFC 2104 / FIPS 198) written out over sha2.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut k = if key.len() > 64 {
        sha256(&[key])
    } else {
        key.to_vec()
    };
    k.resize(64, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let mut inner = vec![&ipad[..]];
    inner.extend_from_slice(parts);
    let inner = sha256(&inner);
    sha256(&[&opad, &inner])
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The bytes of a hex string (whitespace ignored).
pub fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A DER TLV (definite length, up to 64 KiB).
pub fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = body.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend(body);
    out
}

/// A DER INTEGER of the unsigned big-endian `bytes`.
pub fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let mut v = bytes[start..].to_vec();
    if v.first().is_none_or(|&b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    der(0x02, &v)
}

/// SubjectPublicKeyInfo (RFC 5280) of the RSA public key (`n`, `e`):
/// rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters.
pub fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let key = der(0x30, &[der_uint(n), der_uint(e)].concat());
    let alg = der(
        0x30,
        &[
            der(
                0x06,
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
            ),
            vec![0x05, 0x00],
        ]
        .concat(),
    );
    der(
        0x30,
        &[alg, der(0x03, &[&[0u8][..], &key].concat())].concat(),
    )
}

// ---------------------------------------------------------------------------
// The `openssl` command line.

/// A scratch directory, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory `vtpm-{name}-{pid}-{thread}-{nanos}` in the
    /// temporary directory.
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "vtpm-{name}-{}-{:?}-{}",
            std::process::id(),
            std::thread::current().id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    /// The path of file `name` in the directory.
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
    /// Writes file `name`; its path.
    pub fn write(&self, name: &str, data: &[u8]) -> String {
        std::fs::write(self.0.join(name), data).unwrap();
        self.path(name)
    }
    /// Reads file `name`.
    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.0.join(name)).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs openssl: (success, stdout and stderr). Fails the test (never
/// skips it) when the command line is missing.
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("the openssl command line is required for these tests: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs openssl, which must succeed; its output.
pub fn openssl_ok(args: &[&str]) -> String {
    let (ok, out) = openssl(args);
    assert!(ok, "openssl {args:?} failed: {out}");
    out
}
