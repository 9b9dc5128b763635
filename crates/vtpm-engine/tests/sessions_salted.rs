//! Salted (and bound + salted) authorization sessions through the engine's
//! one entry point, judged by computations made here: the salt is
//! encrypted by the `openssl` command line (RSA-OAEP with label "SECRET\0",
//! or an OpenSSL ephemeral P-256 key and ECDH with KDFe computed here with
//! sha2), the session key is KDFa(authHash, bind.authValue || salt, "ATH",
//! nonceTPM, nonceCaller, bits) computed here (HMAC-SHA256 written out from
//! FIPS 198), and the TPM's response HMACs are checked with that key
//! (Part 1 §19.6, §21; Part 3 §11.1).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use sha2::{Digest as _, Sha256};
use std::path::PathBuf;
use std::process::Command;
use vtpm_engine::{MemoryPlatform, Tpm};

const NO_SESSIONS: u16 = 0x8001;
const SESSIONS: u16 = 0x8002;
const RS_PW: u32 = 0x4000_0009;
const RH_NULL: u32 = 0x4000_0007;
const RH_OWNER: u32 = 0x4000_0001;

mod cc {
    pub const NV_DEFINE_SPACE: u32 = 0x12A;
    pub const CREATE_PRIMARY: u32 = 0x131;
    pub const HIERARCHY_CHANGE_AUTH: u32 = 0x129;
    pub const NV_WRITE: u32 = 0x137;
    pub const STARTUP: u32 = 0x144;
    pub const START_AUTH_SESSION: u32 = 0x176;
    pub const GET_RANDOM: u32 = 0x17B;
}

mod rc {
    pub const ATTRIBUTES: u32 = 0x082;
    pub const VALUE: u32 = 0x084;
    pub const KEY: u32 = 0x09C;
    pub const ECC_POINT: u32 = 0x0A7;
    pub const AUTH_FAIL: u32 = 0x08E;

    /// The code with parameter number `n` (Part 2 §6.6.3).
    pub fn p(code: u32, n: u32) -> u32 {
        code | 0x040 | (n << 8)
    }

    /// The code with handle number `n`.
    pub fn h(code: u32, n: u32) -> u32 {
        code | (n << 8)
    }

    /// The code with session number `n`.
    pub fn s(code: u32, n: u32) -> u32 {
        code | 0x800 | (n << 8)
    }
}

mod alg {
    pub const RSA: u16 = 0x0001;
    pub const KEYEDHASH: u16 = 0x0008;
    pub const SHA256: u16 = 0x000B;
    pub const NULL: u16 = 0x0010;
    pub const ECDSA: u16 = 0x0018;
    pub const HMAC: u16 = 0x0005;
    pub const ECC: u16 = 0x0023;
}

/// fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | decrypt.
const DECRYPT_KEY: u32 = 0x2 | 0x10 | 0x20 | 0x40 | 0x20000;
/// The same with sign instead of decrypt.
const SIGN_KEY: u32 = 0x2 | 0x10 | 0x20 | 0x40 | 0x40000;

// ---------------------------------------------------------------------------
// Hand-written primitives (FIPS 198 HMAC, Part 1 §11.4.10 KDFa / KDFe).

fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().to_vec()
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
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

/// KDFa(SHA-256, key, label, contextU, contextV, bits): HMAC(key, i ||
/// label || 0x00 || contextU || contextV || bits) for i = 1, 2, ….
fn kdfa(key: &[u8], label: &str, u: &[u8], v: &[u8], bits: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 1u32;
    while out.len() * 8 < bits as usize {
        out.extend(hmac_sha256(
            key,
            &[
                &i.to_be_bytes(),
                label.as_bytes(),
                &[0],
                u,
                v,
                &bits.to_be_bytes(),
            ],
        ));
        i += 1;
    }
    out.truncate(bits as usize / 8);
    out
}

/// KDFe(SHA-256, Z, label, partyU, partyV, 256): H(1 || Z || label ||
/// 0x00 || partyU || partyV).
fn kdfe(z: &[u8], label: &str, u: &[u8], v: &[u8]) -> Vec<u8> {
    sha256(&[&1u32.to_be_bytes(), z, label.as_bytes(), &[0], u, v])
}

// ---------------------------------------------------------------------------
// Commands.

fn tpm2b(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u16).to_be_bytes().to_vec();
    v.extend(b);
    v
}

/// An authorization area entry.
fn auth(handle: u32, nonce: &[u8], attrs: u8, hmac: &[u8]) -> Vec<u8> {
    let mut a = handle.to_be_bytes().to_vec();
    a.extend(tpm2b(nonce));
    a.push(attrs);
    a.extend(tpm2b(hmac));
    a
}

fn command(code: u32, handles: &[u32], area: Option<&[u8]>, params: &[u8]) -> Vec<u8> {
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
    let mut cmd = tag.to_be_bytes().to_vec();
    cmd.extend(((10 + body.len()) as u32).to_be_bytes());
    cmd.extend(code.to_be_bytes());
    cmd.extend(body);
    cmd
}

fn password(pw: &[u8]) -> Vec<u8> {
    auth(RS_PW, &[], 0x01, pw)
}

fn rc_of(rsp: &[u8]) -> u32 {
    assert!(rsp.len() >= 10, "short response {rsp:02x?}");
    u32::from_be_bytes(rsp[6..10].try_into().unwrap())
}

/// A successful SESSIONS response: (parameters, authorization area).
fn split(rsp: &[u8], handles: usize) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(rc_of(rsp), 0, "rc 0x{:x}", rc_of(rsp));
    assert_eq!(u16::from_be_bytes([rsp[0], rsp[1]]), SESSIONS);
    let p = &rsp[10 + 4 * handles..];
    let n = u32::from_be_bytes(p[..4].try_into().unwrap()) as usize;
    (p[4..4 + n].to_vec(), p[4 + n..].to_vec())
}

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
    fn b(&mut self) -> &'a [u8] {
        let n = self.u16() as usize;
        self.take(n)
    }
}

fn started() -> Tpm {
    let mut t = Tpm::new(Box::new(MemoryPlatform::new())).unwrap();
    t.power_on();
    let r = t.execute(0, &command(cc::STARTUP, &[], None, &[0, 0]));
    assert_eq!(rc_of(&r), 0);
    t
}

/// CreatePrimary under the owner (password `owner_pw`): (handle, public).
fn primary(t: &mut Tpm, owner_pw: &[u8], template: &[u8]) -> (u32, Vec<u8>) {
    let mut p = tpm2b(&[0, 0, 0, 0]); // empty userAuth and data
    p.extend(tpm2b(template));
    p.extend([0, 0]); // outsideInfo
    p.extend(0u32.to_be_bytes()); // creationPCR
    let r = t.execute(
        0,
        &command(
            cc::CREATE_PRIMARY,
            &[RH_OWNER],
            Some(&password(owner_pw)),
            &p,
        ),
    );
    let h = u32::from_be_bytes(r[10..14].try_into().unwrap());
    let (out, _) = split(&r, 1);
    (h, Cursor(&out).b().to_vec())
}

fn ecc_template(attrs: u32, scheme: &[u8]) -> Vec<u8> {
    let mut t = alg::ECC.to_be_bytes().to_vec();
    t.extend(alg::SHA256.to_be_bytes());
    t.extend(attrs.to_be_bytes());
    t.extend([0, 0]); // authPolicy
    t.extend(alg::NULL.to_be_bytes()); // symmetric
    t.extend(scheme);
    t.extend(0x0003u16.to_be_bytes()); // TPM_ECC_NIST_P256
    t.extend(alg::NULL.to_be_bytes()); // kdf
    t.extend([0, 0, 0, 0]);
    t
}

fn rsa_template(attrs: u32) -> Vec<u8> {
    let mut t = alg::RSA.to_be_bytes().to_vec();
    t.extend(alg::SHA256.to_be_bytes());
    t.extend(attrs.to_be_bytes());
    t.extend([0, 0]);
    t.extend(alg::NULL.to_be_bytes()); // symmetric
    t.extend(alg::NULL.to_be_bytes()); // scheme: OAEP with nameAlg
    t.extend(2048u16.to_be_bytes());
    t.extend(0u32.to_be_bytes());
    t.extend([0, 0]);
    t
}

/// The unique point of a P-256 TPMT_PUBLIC made by `ecc_template`.
fn ecc_unique(public: &[u8], signing: bool) -> (Vec<u8>, Vec<u8>) {
    let mut c = Cursor(public);
    c.take(8);
    c.b(); // authPolicy
    c.take(if signing { 6 } else { 4 }); // symmetric, scheme (+ hash)
    c.take(4); // curve, kdf
    (c.b().to_vec(), c.b().to_vec())
}

/// The modulus of an RSA TPMT_PUBLIC made by `rsa_template`.
fn rsa_modulus(public: &[u8]) -> Vec<u8> {
    let mut c = Cursor(public);
    c.take(8);
    c.b();
    c.take(4 + 2 + 4); // symmetric, scheme, keyBits, exponent
    c.b().to_vec()
}

const AES128_CFB: [u8; 6] = [0x00, 0x06, 0x00, 0x80, 0x00, 0x43];

/// TPM2_StartAuthSession (HMAC, SHA-256): the response.
fn start_session(
    t: &mut Tpm,
    tpm_key: u32,
    bind: u32,
    nonce_caller: &[u8],
    salt: &[u8],
    symmetric: &[u8],
) -> Vec<u8> {
    let mut p = tpm2b(nonce_caller);
    p.extend(tpm2b(salt));
    p.push(0x00); // TPM_SE_HMAC
    p.extend(symmetric);
    p.extend(alg::SHA256.to_be_bytes());
    t.execute(
        0,
        &command(cc::START_AUTH_SESSION, &[tpm_key, bind], None, &p),
    )
}

/// (session handle, nonceTPM) of a successful StartAuthSession.
fn session_of(rsp: &[u8]) -> (u32, Vec<u8>) {
    assert_eq!(rc_of(rsp), 0, "rc 0x{:x}", rc_of(rsp));
    let h = u32::from_be_bytes(rsp[10..14].try_into().unwrap());
    (h, Cursor(&rsp[14..]).b().to_vec())
}

/// Checks a one-session response authorization area against
/// HMAC(key, rpHash || nonceTPM || nonceCaller || attrs); the new nonceTPM.
fn check_response(
    code: u32,
    params: &[u8],
    area: &[u8],
    key: &[u8],
    nonce_caller: &[u8],
) -> Vec<u8> {
    let mut c = Cursor(area);
    let nonce_tpm = c.b().to_vec();
    let attrs = c.take(1)[0];
    let hmac = c.b().to_vec();
    let rp_hash = sha256(&[&0u32.to_be_bytes(), &code.to_be_bytes(), params]);
    let expected = hmac_sha256(key, &[&rp_hash, &nonce_tpm, nonce_caller, &[attrs]]);
    assert_eq!(hex(&hmac), hex(&expected), "response HMAC");
    nonce_tpm
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---------------------------------------------------------------------------
// OpenSSL (the command line).

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "vtpm-salted-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
    fn write(&self, name: &str, data: &[u8]) -> String {
        std::fs::write(self.0.join(name), data).unwrap();
        self.path(name)
    }
    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.0.join(name)).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("the openssl command line is required: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn der(tag: u8, body: &[u8]) -> Vec<u8> {
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

fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let mut v = bytes[start..].to_vec();
    if v.first().is_none_or(|&b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    der(0x02, &v)
}

/// SubjectPublicKeyInfo of an RSA public key (e = 65537).
fn rsa_spki(n: &[u8]) -> Vec<u8> {
    let key = der(0x30, &[der_uint(n), der_uint(&[1, 0, 1])].concat());
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

/// SubjectPublicKeyInfo of a P-256 point.
fn p256_spki(x: &[u8], y: &[u8]) -> Vec<u8> {
    let alg = der(
        0x30,
        &[
            der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
            der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
        ]
        .concat(),
    );
    der(
        0x30,
        &[alg, der(0x03, &[&[0u8, 4][..], x, y].concat())].concat(),
    )
}

/// RSAES-OAEP(SHA-256, label) of `msg` by OpenSSL.
fn openssl_oaep(dir: &Scratch, n: &[u8], label: &[u8], msg: &[u8]) -> Vec<u8> {
    let key = dir.write("rsa.der", &rsa_spki(n));
    let input = dir.write("salt.bin", msg);
    let out = dir.path("salt.enc");
    let label = format!("rsa_oaep_label:{}", hex(label));
    openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        &key,
        "-in",
        &input,
        "-out",
        &out,
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
        "-pkeyopt",
        &label,
    ]);
    dir.read("salt.enc")
}

/// An OpenSSL ephemeral P-256 key and its ECDH with the point (x, y):
/// (Qe.x, Qe.y, Z.x).
fn openssl_ecdh(dir: &Scratch, x: &[u8], y: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let eph = dir.path("eph.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &eph,
    ]);
    let eph_pub = dir.path("eph.der");
    openssl(&[
        "pkey", "-in", &eph, "-pubout", "-outform", "DER", "-out", &eph_pub,
    ]);
    let der = dir.read("eph.der");
    let xy = &der[der.len() - 64..];
    let peer = dir.write("peer.der", &p256_spki(x, y));
    let z = dir.path("z.bin");
    openssl(&[
        "pkeyutl",
        "-derive",
        "-inkey",
        &eph,
        "-peerkey",
        &peer,
        "-peerform",
        "DER",
        "-out",
        &z,
    ]);
    (xy[..32].to_vec(), xy[32..].to_vec(), dir.read("z.bin"))
}

/// AES-128-CFB (full-block feedback) encryption by OpenSSL.
fn openssl_aes128_cfb(dir: &Scratch, key: &[u8], iv: &[u8], data: &[u8]) -> Vec<u8> {
    let input = dir.write("plain.bin", data);
    let out = dir.path("cipher.bin");
    openssl(&[
        "enc",
        "-aes-128-cfb",
        "-e",
        "-K",
        &hex(key),
        "-iv",
        &hex(iv),
        "-in",
        &input,
        "-out",
        &out,
    ]);
    dir.read("cipher.bin")
}

fn ecc_point(x: &[u8], y: &[u8]) -> Vec<u8> {
    [tpm2b(x), tpm2b(y)].concat()
}

// ---------------------------------------------------------------------------

#[test]
fn ecc_salted_session_key_matches_the_spec_formula() {
    let dir = Scratch::new("ecc");
    let mut t = started();
    let (key, public) = primary(&mut t, b"", &ecc_template(DECRYPT_KEY, &[0x00, 0x10]));
    let (qx, qy) = ecc_unique(&public, false);
    let (ex, ey, z) = openssl_ecdh(&dir, &qx, &qy);
    let salt = kdfe(&z, "SECRET", &ex, &qx);
    let nonce_caller = [0x5Au8; 32];
    let (session, nonce_tpm) = session_of(&start_session(
        &mut t,
        key,
        RH_NULL,
        &nonce_caller,
        &ecc_point(&ex, &ey),
        &AES128_CFB,
    ));
    assert_eq!(session >> 24, 0x02, "an HMAC session handle");
    assert_eq!(nonce_tpm.len(), 32);
    let session_key = kdfa(&salt, "ATH", &nonce_tpm, &nonce_caller, 256);

    // GetRandom with the session encrypting the response: the command HMAC
    // and the response HMAC are both keyed with sessionKey alone.
    let mut nonce_tpm = nonce_tpm;
    for round in 0..3u8 {
        let nc = [round; 16];
        let params = 16u16.to_be_bytes();
        let attrs = 0x41; // continueSession | encrypt
        let cp_hash = sha256(&[&cc::GET_RANDOM.to_be_bytes(), &params]);
        let hmac = hmac_sha256(&session_key, &[&cp_hash, &nc, &nonce_tpm, &[attrs]]);
        let r = t.execute(
            0,
            &command(
                cc::GET_RANDOM,
                &[],
                Some(&auth(session, &nc, attrs, &hmac)),
                &params,
            ),
        );
        let (out, area) = split(&r, 0);
        assert_eq!(&out[..2], &[0, 16]);
        nonce_tpm = check_response(cc::GET_RANDOM, &out, &area, &session_key, &nc);
    }

    // A command HMAC keyed as if the session were unsalted fails.
    let nc = [9u8; 16];
    let params = 16u16.to_be_bytes();
    let cp_hash = sha256(&[&cc::GET_RANDOM.to_be_bytes(), &params]);
    let bad = hmac_sha256(&[], &[&cp_hash, &nc, &nonce_tpm, &[0x41]]);
    let r = t.execute(
        0,
        &command(
            cc::GET_RANDOM,
            &[],
            Some(&auth(session, &nc, 0x41, &bad)),
            &params,
        ),
    );
    // GetRandom authorizes nothing: the TPM checks no command HMAC there,
    // but the response HMAC it returns is still keyed with the salt.
    if rc_of(&r) == 0 {
        let (out, area) = split(&r, 0);
        check_response(cc::GET_RANDOM, &out, &area, &session_key, &nc);
    } else {
        assert_eq!(rc_of(&r), rc::s(rc::AUTH_FAIL, 1));
    }
}

#[test]
fn salted_session_errors() {
    let dir = Scratch::new("errors");
    let mut t = started();
    let (key, public) = primary(&mut t, b"", &ecc_template(DECRYPT_KEY, &[0x00, 0x10]));
    let (qx, qy) = ecc_unique(&public, false);
    let (ex, ey, _) = openssl_ecdh(&dir, &qx, &qy);
    let nc = [1u8; 16];
    let ok = ecc_point(&ex, &ey);

    // TPM_RH_NULL with a salt.
    let r = start_session(&mut t, RH_NULL, RH_NULL, &nc, &ok, &AES128_CFB);
    assert_eq!(rc_of(&r), rc::p(rc::VALUE, 2));
    // A key and no salt.
    let r = start_session(&mut t, key, RH_NULL, &nc, &[], &AES128_CFB);
    assert_eq!(rc_of(&r), rc::p(rc::VALUE, 2));
    // A point off the curve.
    let mut bad_y = ey.clone();
    bad_y[31] ^= 1;
    let r = start_session(
        &mut t,
        key,
        RH_NULL,
        &nc,
        &ecc_point(&ex, &bad_y),
        &[0, 0x10],
    );
    assert_eq!(rc_of(&r), rc::p(rc::ECC_POINT, 2));
    // A malformed point.
    let r = start_session(&mut t, key, RH_NULL, &nc, &[0, 1, 2], &[0, 0x10]);
    assert_eq!(rc_of(&r), rc::p(rc::VALUE, 2));

    // A signing key is not a decryption key.
    let mut ecdsa = alg::ECDSA.to_be_bytes().to_vec();
    ecdsa.extend(alg::SHA256.to_be_bytes());
    let (sign, _) = primary(&mut t, b"", &ecc_template(SIGN_KEY, &ecdsa));
    let r = start_session(&mut t, sign, RH_NULL, &nc, &ok, &[0, 0x10]);
    assert_eq!(rc_of(&r), rc::h(rc::ATTRIBUTES, 1));

    // An HMAC key is not asymmetric.
    let mut hmac_t = alg::KEYEDHASH.to_be_bytes().to_vec();
    hmac_t.extend(alg::SHA256.to_be_bytes());
    hmac_t.extend(SIGN_KEY.to_be_bytes());
    hmac_t.extend([0, 0]);
    hmac_t.extend(alg::HMAC.to_be_bytes());
    hmac_t.extend(alg::SHA256.to_be_bytes());
    hmac_t.extend([0, 0]);
    let (hk, _) = primary(&mut t, b"", &hmac_t);
    let r = start_session(&mut t, hk, RH_NULL, &nc, &ok, &[0, 0x10]);
    assert_eq!(rc_of(&r), rc::h(rc::KEY, 1));

    // The same key with a good salt works (and an unsalted session too).
    session_of(&start_session(&mut t, key, RH_NULL, &nc, &ok, &[0, 0x10]));
    session_of(&start_session(
        &mut t,
        RH_NULL,
        RH_NULL,
        &nc,
        &[],
        &[0, 0x10],
    ));
}

#[test]
fn rsa_salted_and_bound_session_authorizes_and_decrypts() {
    let dir = Scratch::new("rsa");
    let mut t = started();
    let owner_pw = b"ownerpw";
    let r = t.execute(
        0,
        &command(
            cc::HIERARCHY_CHANGE_AUTH,
            &[RH_OWNER],
            Some(&password(b"")),
            &tpm2b(owner_pw),
        ),
    );
    assert_eq!(rc_of(&r), 0);
    let (key, public) = primary(&mut t, owner_pw, &rsa_template(DECRYPT_KEY));
    let n = rsa_modulus(&public);
    assert_eq!(n.len(), 256);

    // A salt OAEP-encrypted without the label's zero octet does not decrypt.
    let salt: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0xA5).collect();
    let nonce_caller = [0xC3u8; 16];
    let wrong = openssl_oaep(&dir, &n, b"SECRET", &salt);
    let r = start_session(&mut t, key, RH_OWNER, &nonce_caller, &wrong, &AES128_CFB);
    assert_eq!(rc_of(&r), rc::p(rc::VALUE, 2));

    let encrypted = openssl_oaep(&dir, &n, b"SECRET\0", &salt);
    let (session, nonce_tpm) = session_of(&start_session(
        &mut t,
        key,
        RH_OWNER,
        &nonce_caller,
        &encrypted,
        &AES128_CFB,
    ));
    // Bound and salted: bind.authValue || salt.
    let session_key = kdfa(
        &[&owner_pw[..], &salt].concat(),
        "ATH",
        &nonce_tpm,
        &nonce_caller,
        256,
    );

    // NV_DefineSpace authorized by the session: bound to the owner, so the
    // HMAC key is sessionKey alone, but the parameter-encryption key is
    // sessionKey || authValue all the same (Part 1 §21.1; the reference
    // implementation's ParseSessionBuffer and tpm2-tss agree): the auth
    // parameter is encrypted with AES-128-CFB under
    // KDFa(sessionKey || ownerAuth, "CFB", nonceCaller, nonceTPM).
    let nc = [0x11u8; 16];
    let nv_auth = b"nv-secret";
    let stream = kdfa(
        &[&session_key[..], owner_pw].concat(),
        "CFB",
        &nc,
        &nonce_tpm,
        256,
    );
    let enc_auth = openssl_aes128_cfb(&dir, &stream[..16], &stream[16..], nv_auth);
    assert_ne!(&enc_auth[..], &nv_auth[..]);
    let index = 0x0150_0020u32;
    let mut nv_public = index.to_be_bytes().to_vec();
    nv_public.extend(alg::SHA256.to_be_bytes());
    nv_public.extend(((1u32 << 2) | (1 << 18)).to_be_bytes()); // AUTHWRITE | AUTHREAD
    nv_public.extend([0, 0]);
    nv_public.extend(8u16.to_be_bytes());
    let mut params = tpm2b(&enc_auth);
    params.extend(tpm2b(&nv_public));
    let attrs = 0x21; // continueSession | decrypt
    let cp_hash = sha256(&[
        &cc::NV_DEFINE_SPACE.to_be_bytes(),
        &RH_OWNER.to_be_bytes(),
        &params,
    ]);
    let hmac = hmac_sha256(&session_key, &[&cp_hash, &nc, &nonce_tpm, &[attrs]]);
    let r = t.execute(
        0,
        &command(
            cc::NV_DEFINE_SPACE,
            &[RH_OWNER],
            Some(&auth(session, &nc, attrs, &hmac)),
            &params,
        ),
    );
    let (out, area) = split(&r, 0);
    assert!(out.is_empty());
    check_response(cc::NV_DEFINE_SPACE, &out, &area, &session_key, &nc);

    // The index got the decrypted authValue.
    let mut w = tpm2b(b"12345678");
    w.extend(0u16.to_be_bytes());
    let r = t.execute(
        0,
        &command(cc::NV_WRITE, &[index, index], Some(&password(nv_auth)), &w),
    );
    assert_eq!(rc_of(&r), 0, "NV_Write with the decrypted password");
}

/// NV_Write (command decrypt) and NV_Read (response encrypt) through a
/// salted session whose symmetric algorithm is XOR (mask ≔ KDFa(sessionKey
/// || authValue, "XOR", nonceNewer, nonceOlder, bits), Part 1 §21.3) or
/// AES-256-CFB (OpenSSL's `enc -aes-256-cfb`), the data checked through a
/// password read.
#[test]
fn xor_and_aes256_parameter_encryption() {
    const CC_NV_READ: u32 = 0x14E;
    const CC_NV_READ_PUBLIC: u32 = 0x169;
    let dir = Scratch::new("xor");
    let mut t = started();
    let (key, public) = primary(&mut t, b"", &ecc_template(DECRYPT_KEY, &[0x00, 0x10]));
    let (qx, qy) = ecc_unique(&public, false);

    let xor: [u8; 4] = [0x00, 0x0A, 0x00, 0x0B]; // XOR with SHA-256
    let aes256: [u8; 6] = [0x00, 0x06, 0x01, 0x00, 0x00, 0x43];
    for (i, symmetric) in [&xor[..], &aes256[..]].into_iter().enumerate() {
        let index = 0x0150_0030 + i as u32;
        let mut nv_public = index.to_be_bytes().to_vec();
        nv_public.extend(alg::SHA256.to_be_bytes());
        nv_public.extend(((1u32 << 2) | (1 << 18)).to_be_bytes()); // AUTHWRITE | AUTHREAD
        nv_public.extend([0, 0]);
        nv_public.extend(16u16.to_be_bytes());
        let mut p = tpm2b(&[]);
        p.extend(tpm2b(&nv_public));
        let r = t.execute(
            0,
            &command(cc::NV_DEFINE_SPACE, &[RH_OWNER], Some(&password(b"")), &p),
        );
        assert_eq!(rc_of(&r), 0);

        let (ex, ey, z) = openssl_ecdh(&dir, &qx, &qy);
        let salt = kdfe(&z, "SECRET", &ex, &qx);
        let nonce_caller = [0x77u8; 16];
        let (session, mut nonce_tpm) = session_of(&start_session(
            &mut t,
            key,
            RH_NULL,
            &nonce_caller,
            &ecc_point(&ex, &ey),
            symmetric,
        ));
        let session_key = kdfa(&salt, "ATH", &nonce_tpm, &nonce_caller, 256);
        // The index's authValue is empty: HMAC and encryption key are the
        // sessionKey.
        let crypt = |data: &[u8], newer: &[u8], older: &[u8], encrypt: bool| -> Vec<u8> {
            if i == 0 {
                let mask = kdfa(&session_key, "XOR", newer, older, 8 * data.len() as u32);
                data.iter().zip(mask).map(|(a, b)| a ^ b).collect()
            } else {
                let s = kdfa(&session_key, "CFB", newer, older, 256 + 128);
                let input = dir.write("in.bin", data);
                let out = dir.path("out.bin");
                openssl(&[
                    "enc",
                    "-aes-256-cfb",
                    if encrypt { "-e" } else { "-d" },
                    "-K",
                    &hex(&s[..32]),
                    "-iv",
                    &hex(&s[32..]),
                    "-in",
                    &input,
                    "-out",
                    &out,
                ]);
                dir.read("out.bin")
            }
        };

        // NV_Write of 16 bytes, the data parameter encrypted (decrypt).
        let data = b"sixteen byte msg";
        let nc = [0x21u8; 16];
        let enc = crypt(data, &nc, &nonce_tpm, true);
        assert_ne!(&enc[..], &data[..]);
        let mut params = tpm2b(&enc);
        params.extend(0u16.to_be_bytes());
        let r = t.execute(0, &command(CC_NV_READ_PUBLIC, &[index], None, &[]));
        assert_eq!(rc_of(&r), 0);
        let mut c = Cursor(&r[10..]);
        c.b();
        let name_before = c.b().to_vec();
        let cp = sha256(&[
            &cc::NV_WRITE.to_be_bytes(),
            &name_before,
            &name_before,
            &params,
        ]);
        let attrs = 0x21; // continueSession | decrypt
        let hmac = hmac_sha256(&session_key, &[&cp, &nc, &nonce_tpm, &[attrs]]);
        let r = t.execute(
            0,
            &command(
                cc::NV_WRITE,
                &[index, index],
                Some(&auth(session, &nc, attrs, &hmac)),
                &params,
            ),
        );
        let (out, area) = split(&r, 0);
        nonce_tpm = check_response(cc::NV_WRITE, &out, &area, &session_key, &nc);

        // The password read sees the plaintext.
        let mut rp = 16u16.to_be_bytes().to_vec();
        rp.extend(0u16.to_be_bytes());
        let r = t.execute(
            0,
            &command(CC_NV_READ, &[index, index], Some(&password(b"")), &rp),
        );
        let (out, _) = split(&r, 0);
        assert_eq!(Cursor(&out).b(), data, "decrypted by the TPM");

        // NV_Read with the response encrypted (the index is written now:
        // its Name changed).
        let r = t.execute(0, &command(CC_NV_READ_PUBLIC, &[index], None, &[]));
        let mut c = Cursor(&r[10..]);
        c.b();
        let name = c.b().to_vec();
        assert_ne!(name, name_before);
        let nc = [0x42u8; 16];
        let attrs = 0x41; // continueSession | encrypt
        let cp = sha256(&[&CC_NV_READ.to_be_bytes(), &name, &name, &rp]);
        let hmac = hmac_sha256(&session_key, &[&cp, &nc, &nonce_tpm, &[attrs]]);
        let r = t.execute(
            0,
            &command(
                CC_NV_READ,
                &[index, index],
                Some(&auth(session, &nc, attrs, &hmac)),
                &rp,
            ),
        );
        let (out, area) = split(&r, 0);
        let new_nonce = check_response(CC_NV_READ, &out, &area, &session_key, &nc);
        let enc = Cursor(&out).b().to_vec();
        assert_ne!(&enc[..], &data[..]);
        assert_eq!(crypt(&enc, &new_nonce, &nc, false), data);
    }
}
