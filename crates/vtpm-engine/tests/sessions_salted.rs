//! Salted (and bound + salted) authorization sessions through the engine's
//! one entry point, judged by computations made here: the salt is
//! encrypted by the `openssl` command line (RSA-OAEP with label "SECRET\0",
//! or an OpenSSL ephemeral P-256 key and ECDH with KDFe computed here with
//! sha2), the session key is KDFa(authHash, bind.authValue || salt, "ATH",
//! nonceTPM, nonceCaller, bits) computed here (HMAC-SHA256 written out from
//! FIPS 198), and the TPM's response HMACs are checked with that key
//! (Part 1 §19.6, §21; Part 3 §11.1).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use vtpm_engine::Tpm;

mod common;
use common::*;

/// fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | decrypt.
const DECRYPT_KEY: u32 = attr::BASE | attr::DECRYPT;
/// The same with sign instead of decrypt.
const SIGN_KEY: u32 = attr::BASE | attr::SIGN;

// ---------------------------------------------------------------------------
// Hand-written primitives (Part 1 §11.4.10 KDFa / KDFe, over the FIPS 198
// HMAC of common::hmac_sha256).

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

/// A successful SESSIONS response: (parameters, authorization area).
fn split(rsp: &[u8], handles: usize) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(rc_of(rsp), 0, "rc 0x{:x}", rc_of(rsp));
    assert_eq!(u16::from_be_bytes([rsp[0], rsp[1]]), SESSIONS);
    let p = &rsp[10 + 4 * handles..];
    let n = u32::from_be_bytes(p[..4].try_into().unwrap()) as usize;
    (p[4..4 + n].to_vec(), p[4 + n..].to_vec())
}

/// CreatePrimary under the owner (password `owner_pw`): (handle, public).
fn owner_primary(t: &mut Tpm, owner_pw: &[u8], template: &[u8]) -> (u32, Vec<u8>) {
    let c = create_primary_in(t, RH_OWNER, owner_pw, &[], &[], template);
    (c.handle, c.public)
}

/// An RSA-2048 decryption key template with a NULL scheme (OAEP with the
/// nameAlg).
fn rsa_oaep_template(attrs: u32) -> Vec<u8> {
    rsa_template(attrs, &scheme(alg::NULL, 0))
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
        &command_area(cc::START_AUTH_SESSION, &[tpm_key, bind], None, &p),
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

// ---------------------------------------------------------------------------
// OpenSSL (the command line).

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
    let key = dir.write("rsa.der", &rsa_spki(n, &[1, 0, 1]));
    let input = dir.write("salt.bin", msg);
    let out = dir.path("salt.enc");
    let label = format!("rsa_oaep_label:{}", hex(label));
    openssl_ok(&[
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
    openssl_ok(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &eph,
    ]);
    let eph_pub = dir.path("eph.der");
    openssl_ok(&[
        "pkey", "-in", &eph, "-pubout", "-outform", "DER", "-out", &eph_pub,
    ]);
    let der = dir.read("eph.der");
    let xy = &der[der.len() - 64..];
    let peer = dir.write("peer.der", &p256_spki(x, y));
    let z = dir.path("z.bin");
    openssl_ok(&[
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
    openssl_ok(&[
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
    let dir = Scratch::new("salted-ecc");
    let mut t = started();
    let (key, public) = owner_primary(&mut t, b"", &ecc_template(DECRYPT_KEY, &[0x00, 0x10]));
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
            &command_area(
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
        &command_area(
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
    let dir = Scratch::new("salted-errors");
    let mut t = started();
    let (key, public) = owner_primary(&mut t, b"", &ecc_template(DECRYPT_KEY, &[0x00, 0x10]));
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
    let ecdsa = scheme(alg::ECDSA, alg::SHA256);
    let (sign, _) = owner_primary(&mut t, b"", &ecc_template(SIGN_KEY, &ecdsa));
    let r = start_session(&mut t, sign, RH_NULL, &nc, &ok, &[0, 0x10]);
    assert_eq!(rc_of(&r), rc::h(rc::ATTRIBUTES, 1));

    // An HMAC key is not asymmetric.
    let hmac_t = hmac_template(SIGN_KEY, &scheme(alg::HMAC, alg::SHA256));
    let (hk, _) = owner_primary(&mut t, b"", &hmac_t);
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
    let dir = Scratch::new("salted-rsa");
    let mut t = started();
    let owner_pw = b"ownerpw";
    let r = t.execute(
        0,
        &command_area(
            cc::HIERARCHY_CHANGE_AUTH,
            &[RH_OWNER],
            Some(&password(b"")),
            &tpm2b(owner_pw),
        ),
    );
    assert_eq!(rc_of(&r), 0);
    let (key, public) = owner_primary(&mut t, owner_pw, &rsa_oaep_template(DECRYPT_KEY));
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
        &command_area(
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
        &command_area(cc::NV_WRITE, &[index, index], Some(&password(nv_auth)), &w),
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
    let dir = Scratch::new("salted-xor");
    let mut t = started();
    let (key, public) = owner_primary(&mut t, b"", &ecc_template(DECRYPT_KEY, &[0x00, 0x10]));
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
            &command_area(cc::NV_DEFINE_SPACE, &[RH_OWNER], Some(&password(b"")), &p),
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
                openssl_ok(&[
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
        let r = t.execute(0, &command_area(cc::NV_READ_PUBLIC, &[index], None, &[]));
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
            &command_area(
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
            &command_area(cc::NV_READ, &[index, index], Some(&password(b"")), &rp),
        );
        let (out, _) = split(&r, 0);
        assert_eq!(Cursor(&out).b(), data, "decrypted by the TPM");

        // NV_Read with the response encrypted (the index is written now:
        // its Name changed).
        let r = t.execute(0, &command_area(cc::NV_READ_PUBLIC, &[index], None, &[]));
        let mut c = Cursor(&r[10..]);
        c.b();
        let name = c.b().to_vec();
        assert_ne!(name, name_before);
        let nc = [0x42u8; 16];
        let attrs = 0x41; // continueSession | encrypt
        let cp = sha256(&[&cc::NV_READ.to_be_bytes(), &name, &name, &rp]);
        let hmac = hmac_sha256(&session_key, &[&cp, &nc, &nonce_tpm, &[attrs]]);
        let r = t.execute(
            0,
            &command_area(
                cc::NV_READ,
                &[index, index],
                Some(&auth(session, &nc, attrs, &hmac)),
                &rp,
            ),
        );
        let (out, area) = split(&r, 0);
        let new_nonce = check_response(cc::NV_READ, &out, &area, &session_key, &nc);
        let enc = Cursor(&out).b().to_vec();
        assert_ne!(&enc[..], &data[..]);
        assert_eq!(crypt(&enc, &new_nonce, &nc, false), data);
    }
}
