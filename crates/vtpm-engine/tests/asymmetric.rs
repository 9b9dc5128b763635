//! TPM2_Sign, TPM2_VerifySignature, TPM2_RSA_Encrypt / RSA_Decrypt,
//! TPM2_ECDH_KeyGen / ECDH_ZGen and TPM2_ECC_Parameters through the
//! engine's entry point: command bytes built by hand from Part 3's tables,
//! response codes from Part 2 (format-one codes with their handle or
//! parameter number), signatures checked with the p256 and hmac crates.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use hmac::{KeyInit, Mac};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest as _, Sha256, Sha384};
use vtpm_engine::Tpm;

mod common;
use common::*;

/// The unique point (x, y) of an ECC P-256 TPMT_PUBLIC with a NULL
/// symmetric and kdf.
fn ecc_unique(public: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut c = Cursor(public);
    c.take(8);
    c.b(); // authPolicy
    assert_eq!(c.u16(), alg::NULL);
    if c.u16() != alg::NULL {
        c.u16();
    }
    c.take(4); // curve, kdf
    (c.b().to_vec(), c.b().to_vec())
}

const NULL_TICKET: [u8; 8] = [0x80, 0x24, 0x40, 0, 0, 7, 0, 0];

fn sign_params(digest: &[u8], sch: &[u8], ticket: &[u8]) -> Vec<u8> {
    let mut p = tpm2b(digest);
    p.extend(sch);
    p.extend(ticket);
    p
}

fn sign(t: &mut Tpm, key: u32, digest: &[u8], sch: &[u8], ticket: &[u8]) -> Vec<u8> {
    t.execute(
        0,
        &command(cc::SIGN, &[key], true, &sign_params(digest, sch, ticket)),
    )
}

fn verify(t: &mut Tpm, key: u32, digest: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut p = tpm2b(digest);
    p.extend(signature);
    t.execute(0, &command(cc::VERIFY_SIGNATURE, &[key], false, &p))
}

/// TPM2_Hash of `data` with SHA-256 under `hierarchy`: (digest, ticket).
fn tpm_hash(t: &mut Tpm, data: &[u8], hierarchy: u32) -> (Vec<u8>, Vec<u8>) {
    let mut p = tpm2b(data);
    p.extend(alg::SHA256.to_be_bytes());
    p.extend(hierarchy.to_be_bytes());
    let out = params(&t.execute(0, &command(cc::HASH, &[], false, &p)), 0);
    let mut c = Cursor(&out);
    let digest = c.b().to_vec();
    (digest, c.0.to_vec())
}

#[test]
fn sign_scheme_selection() {
    let mut t = started();
    let ecdsa256 = scheme(alg::ECDSA, alg::SHA256);
    let ecdsa384 = scheme(alg::ECDSA, alg::SHA384);
    let null = scheme(alg::NULL, 0);
    let (with_scheme, public) = primary(
        &mut t,
        &ecc_template(attr::BASE | attr::SIGN, &ecdsa256),
        &[],
    );
    let (without, _) = primary(&mut t, &ecc_template(attr::BASE | attr::SIGN, &null), &[]);
    let d256 = Sha256::digest(b"message").to_vec();
    let d384 = Sha384::digest(b"message").to_vec();

    // The key's scheme with inScheme NULL or equal: signs.
    for s in [&null, &ecdsa256] {
        let out = params(&sign(&mut t, with_scheme, &d256, s, &NULL_TICKET), 0);
        assert_eq!(&out[..4], &[0, 0x18, 0, 0x0B], "ECDSA with SHA-256");
    }
    // inScheme differing from the key's (other hash, other scheme).
    for s in [&ecdsa384, &scheme(alg::RSASSA, alg::SHA256)] {
        assert_eq!(
            rc_of(&sign(&mut t, with_scheme, &d256, s, &NULL_TICKET)),
            rc::p(rc::SCHEME, 2)
        );
    }
    // No scheme on either side.
    assert_eq!(
        rc_of(&sign(&mut t, without, &d256, &null, &NULL_TICKET)),
        rc::p(rc::SCHEME, 2)
    );
    // The key has none: inScheme decides, and must suit the key's type.
    let out = params(&sign(&mut t, without, &d384, &ecdsa384, &NULL_TICKET), 0);
    assert_eq!(&out[..4], &[0, 0x18, 0, 0x0C]);
    assert_eq!(
        rc_of(&sign(
            &mut t,
            without,
            &d256,
            &scheme(alg::RSASSA, alg::SHA256),
            &NULL_TICKET
        )),
        rc::p(rc::SCHEME, 2)
    );
    assert_eq!(
        rc_of(&sign(
            &mut t,
            without,
            &d256,
            &scheme(alg::HMAC, alg::SHA256),
            &NULL_TICKET
        )),
        rc::p(rc::SCHEME, 2)
    );
    // The digest is the scheme hash's size.
    assert_eq!(
        rc_of(&sign(&mut t, with_scheme, &d384, &null, &NULL_TICKET)),
        rc::p(rc::SIZE, 1)
    );
    assert_eq!(
        rc_of(&sign(&mut t, without, &d256, &ecdsa384, &NULL_TICKET)),
        rc::p(rc::SIZE, 1)
    );

    // The signature verifies with the p256 crate on the key's public point.
    let out = params(&sign(&mut t, with_scheme, &d256, &null, &NULL_TICKET), 0);
    let mut c = Cursor(&out);
    c.take(4);
    let (r, s) = (c.b().to_vec(), c.b().to_vec());
    let (x, y) = ecc_unique(&public);
    let mut sec1 = vec![4u8];
    sec1.extend(&x);
    sec1.extend(&y);
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    let mut rs = r.clone();
    rs.extend(&s);
    let sig = p256::ecdsa::Signature::from_slice(&rs).unwrap();
    vk.verify_prehash(&d256, &sig).unwrap();

    // VerifySignature accepts it, refuses it for another digest.
    let v = params(&verify(&mut t, with_scheme, &d256, &out), 0);
    let mut c = Cursor(&v);
    assert_eq!(c.u16(), 0x8022, "TPM_ST_VERIFIED");
    assert_eq!(c.u32(), RH_OWNER);
    assert_eq!(c.b().len(), 64);
    assert_eq!(
        rc_of(&verify(
            &mut t,
            with_scheme,
            &Sha256::digest(b"other"),
            &out
        )),
        rc::p(rc::SIGNATURE, 2)
    );
}

#[test]
fn sign_needs_a_signing_key_and_restricted_keys_a_ticket() {
    let mut t = started();
    let ecdsa = scheme(alg::ECDSA, alg::SHA256);
    let null = scheme(alg::NULL, 0);
    let d = Sha256::digest(b"data").to_vec();
    // A decryption key does not sign: TPM_RC_KEY on the handle.
    let (dec, _) = primary(
        &mut t,
        &ecc_template(attr::BASE | attr::DECRYPT, &null),
        &[],
    );
    assert_eq!(
        rc_of(&sign(&mut t, dec, &d, &ecdsa, &NULL_TICKET)),
        rc::h(rc::KEY, 1)
    );
    // VerifySignature with it: TPM_RC_ATTRIBUTES on the handle.
    let mut sig = ecdsa.clone();
    sig.extend(tpm2b(&[1]));
    sig.extend(tpm2b(&[1]));
    assert_eq!(
        rc_of(&verify(&mut t, dec, &d, &sig)),
        rc::h(rc::ATTRIBUTES, 1)
    );

    let (restricted, _) = primary(
        &mut t,
        &ecc_template(attr::BASE | attr::SIGN | attr::RESTRICTED, &ecdsa),
        &[],
    );
    // No ticket, a NULL-hierarchy ticket, a ticket for other data.
    assert_eq!(
        rc_of(&sign(&mut t, restricted, &d, &null, &NULL_TICKET)),
        rc::p(rc::TICKET, 3)
    );
    let (digest, ticket) = tpm_hash(&mut t, b"data", RH_NULL);
    assert_eq!(ticket, NULL_TICKET);
    assert_eq!(
        rc_of(&sign(&mut t, restricted, &digest, &null, &ticket)),
        rc::p(rc::TICKET, 3)
    );
    let (_, other_ticket) = tpm_hash(&mut t, b"other data", RH_OWNER);
    assert_eq!(
        rc_of(&sign(&mut t, restricted, &digest, &null, &other_ticket)),
        rc::p(rc::TICKET, 3)
    );
    // A forged HMAC.
    let (digest, mut ticket) = tpm_hash(&mut t, b"data", RH_OWNER);
    let last = ticket.len() - 1;
    ticket[last] ^= 1;
    assert_eq!(
        rc_of(&sign(&mut t, restricted, &digest, &null, &ticket)),
        rc::p(rc::TICKET, 3)
    );
    ticket[last] ^= 1;
    // Data that starts with TPM_GENERATED_VALUE gets no ticket to sign with.
    let (gen_digest, gen_ticket) = tpm_hash(&mut t, b"\xFFTCG quote", RH_OWNER);
    assert_eq!(
        rc_of(&sign(&mut t, restricted, &gen_digest, &null, &gen_ticket)),
        rc::p(rc::TICKET, 3)
    );
    // The genuine ticket signs; it also works for an unrestricted key.
    assert_eq!(rc_of(&sign(&mut t, restricted, &digest, &null, &ticket)), 0);
    let (plain, _) = primary(&mut t, &ecc_template(attr::BASE | attr::SIGN, &ecdsa), &[]);
    assert_eq!(rc_of(&sign(&mut t, plain, &digest, &null, &ticket)), 0);
    // A wrong ticket given to an unrestricted key is checked too.
    assert_eq!(
        rc_of(&sign(&mut t, plain, &digest, &null, &other_ticket)),
        rc::p(rc::TICKET, 3)
    );
    // A ticket with another tag is malformed: TPM_RC_TAG on parameter 3.
    let mut bad_tag = ticket.clone();
    bad_tag[1] = 0x22;
    assert_eq!(
        rc_of(&sign(&mut t, plain, &digest, &null, &bad_tag)),
        rc::p(0x097, 3)
    );
}

#[test]
fn hmac_sign_and_verify() {
    let mut t = started();
    let key = b"0123456789abcdef0123456789abcdef";
    let hmac256 = scheme(alg::HMAC, alg::SHA256);
    // sensitiveDataOrigin clear: the HMAC key is the data given.
    let attrs = attr::FIXED_TPM | attr::FIXED_PARENT | attr::USER_WITH_AUTH | attr::SIGN;
    let (h, _) = primary(&mut t, &hmac_template(attrs, &hmac256), key);
    let d = Sha256::digest(b"message").to_vec();
    let out = params(&sign(&mut t, h, &d, &scheme(alg::NULL, 0), &NULL_TICKET), 0);
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(&d);
    let expected = mac.finalize().into_bytes().to_vec();
    assert_eq!(&out[..4], &[0, 0x05, 0, 0x0B]);
    assert_eq!(&out[4..], &expected[..], "HMAC(key, digest)");
    assert_eq!(rc_of(&verify(&mut t, h, &d, &out)), 0);
    let mut bad = out.clone();
    bad[10] ^= 0x80;
    assert_eq!(rc_of(&verify(&mut t, h, &d, &bad)), rc::p(rc::SIGNATURE, 2));
    // The key's scheme binds verification to its hash.
    let mut sha384_sig = vec![0, 0x05, 0, 0x0C];
    sha384_sig.extend([0u8; 48]);
    assert_eq!(
        rc_of(&verify(&mut t, h, &d, &sha384_sig)),
        rc::p(rc::SIGNATURE, 2)
    );
    // An ECDSA signature for an HMAC key: TPM_RC_SCHEME; a NULL one too.
    let mut ecdsa_sig = scheme(alg::ECDSA, alg::SHA256);
    ecdsa_sig.extend(tpm2b(&[1]));
    ecdsa_sig.extend(tpm2b(&[1]));
    assert_eq!(
        rc_of(&verify(&mut t, h, &d, &ecdsa_sig)),
        rc::p(rc::SCHEME, 2)
    );
    assert_eq!(
        rc_of(&verify(&mut t, h, &d, &alg::NULL.to_be_bytes())),
        rc::p(rc::SCHEME, 2)
    );
}

#[test]
fn rsa_encrypt_decrypt_rules() {
    let mut t = started();
    let null = scheme(alg::NULL, 0);
    let oaep = scheme(alg::OAEP, alg::SHA256);
    let rsaes = scheme(alg::RSAES, 0);
    let (k, public) = primary(
        &mut t,
        &rsa_template(attr::BASE | attr::DECRYPT, &oaep),
        &[],
    );
    let modulus_len = {
        let mut c = Cursor(&public);
        c.take(8);
        c.b();
        c.take(2 + 4 + 2 + 4);
        c.b().len()
    };
    assert_eq!(modulus_len, 256);
    let enc = |t: &mut Tpm, key: u32, msg: &[u8], s: &[u8], label: &[u8]| {
        let mut p = tpm2b(msg);
        p.extend(s);
        p.extend(tpm2b(label));
        t.execute(0, &command(cc::RSA_ENCRYPT, &[key], false, &p))
    };
    let dec = |t: &mut Tpm, key: u32, c: &[u8], s: &[u8], label: &[u8]| {
        let mut p = tpm2b(c);
        p.extend(s);
        p.extend(tpm2b(label));
        t.execute(0, &command(cc::RSA_DECRYPT, &[key], true, &p))
    };
    // A label must end with its zero octet.
    assert_eq!(
        rc_of(&enc(&mut t, k, b"hi", &null, b"label")),
        rc::p(rc::VALUE, 3)
    );
    assert_eq!(
        rc_of(&dec(&mut t, k, &[1; 256], &null, b"label")),
        rc::p(rc::VALUE, 3)
    );
    // The key's OAEP scheme: inScheme NULL or the same, not RSAES.
    let c = params(&enc(&mut t, k, b"hi", &null, b"label\0"), 0);
    assert_eq!(c.len(), 2 + 256);
    assert_eq!(
        rc_of(&enc(&mut t, k, b"hi", &rsaes, b"")),
        rc::p(rc::SCHEME, 2)
    );
    assert_eq!(
        rc_of(&enc(&mut t, k, b"hi", &scheme(alg::OAEP, alg::SHA384), b"")),
        rc::p(rc::SCHEME, 2)
    );
    let m = params(&dec(&mut t, k, &c[2..], &oaep, b"label\0"), 0);
    assert_eq!(m, tpm2b(b"hi"));
    // Another label: the OAEP check fails.
    assert_eq!(
        rc_of(&dec(&mut t, k, &c[2..], &null, b"other\0")),
        rc::p(rc::VALUE, 1)
    );
    // The ciphertext is exactly the modulus size.
    assert_eq!(
        rc_of(&dec(&mut t, k, &c[3..], &null, b"label\0")),
        rc::p(rc::SIZE, 1)
    );
    // Too long for OAEP-SHA256 with a 2048-bit key (max 190 octets).
    assert_eq!(
        rc_of(&enc(&mut t, k, &[7; 191], &null, b"")),
        rc::p(rc::VALUE, 1)
    );
    assert_eq!(rc_of(&enc(&mut t, k, &[7; 190], &null, b"")), 0);

    // A signing key decrypts nothing; an ECC key is no RSA key.
    let (signer, _) = primary(
        &mut t,
        &rsa_template(attr::BASE | attr::SIGN, &scheme(alg::RSASSA, alg::SHA256)),
        &[],
    );
    assert_eq!(
        rc_of(&enc(&mut t, signer, b"hi", &rsaes, b"")),
        rc::h(rc::ATTRIBUTES, 1)
    );
    assert_eq!(
        rc_of(&dec(&mut t, signer, &[1; 256], &rsaes, b"")),
        rc::h(rc::ATTRIBUTES, 1)
    );
    let (ecc, _) = primary(
        &mut t,
        &ecc_template(attr::BASE | attr::DECRYPT, &null),
        &[],
    );
    assert_eq!(
        rc_of(&enc(&mut t, ecc, b"hi", &rsaes, b"")),
        rc::h(rc::KEY, 1)
    );
    // Raw RSA on the key without a scheme: m^e mod n back to m; leading
    // zeros of the message do not count; m ≥ n is refused.
    let (raw, public) = primary(
        &mut t,
        &rsa_template(attr::BASE | attr::DECRYPT, &null),
        &[],
    );
    let n = {
        let mut c = Cursor(&public);
        c.take(8);
        c.b();
        c.take(2 + 2 + 2 + 4);
        c.b().to_vec()
    };
    let mut long = vec![0u8; 300];
    long.extend(b"raw");
    let c = params(&enc(&mut t, raw, &long, &null, b""), 0);
    let m = params(&dec(&mut t, raw, &c[2..], &null, b""), 0);
    let mut expected = vec![0u8; 253];
    expected.extend(b"raw");
    assert_eq!(m, tpm2b(&expected));
    assert_eq!(
        rc_of(&enc(&mut t, raw, &n, &null, b"")),
        rc::p(rc::VALUE, 1)
    );
    assert_eq!(
        rc_of(&dec(&mut t, raw, &n, &null, b"")),
        rc::p(rc::VALUE, 1)
    );
    // inScheme decides for the key without a scheme: an RSAES round trip.
    let c = params(&enc(&mut t, raw, b"pkcs1", &rsaes, b""), 0);
    let m = params(&dec(&mut t, raw, &c[2..], &rsaes, b""), 0);
    assert_eq!(m, tpm2b(b"pkcs1"));
}

#[test]
fn ecdh_and_curve_parameters() {
    let mut t = started();
    let null = scheme(alg::NULL, 0);
    let (k, public) = primary(
        &mut t,
        &ecc_template(attr::BASE | attr::DECRYPT, &scheme(alg::ECDH, alg::SHA256)),
        &[],
    );
    let (qx, qy) = ecc_unique(&public);
    // KeyGen's Z = de·Q equals ZGen(Qe) = d·Qe.
    let out = params(
        &t.execute(0, &command(cc::ECDH_KEYGEN, &[k], false, &[])),
        0,
    );
    let mut c = Cursor(&out);
    let z = c.b().to_vec();
    let qe = c.b().to_vec();
    assert!(c.0.is_empty());
    let zgen = |t: &mut Tpm, key: u32, point: &[u8]| {
        t.execute(0, &command(cc::ECDH_ZGEN, &[key], true, &tpm2b(point)))
    };
    let z2 = params(&zgen(&mut t, k, &qe), 0);
    assert_eq!(z2, tpm2b(&z));
    // With the p256 crate: d·Qe's x is the Diffie-Hellman secret of Qe's
    // owner, which we cannot know; instead multiply a known scalar by Q.
    let secret = p256::SecretKey::from_slice(&[0x42; 32]).unwrap();
    let mut q_sec1 = vec![4u8];
    q_sec1.extend(&qx);
    q_sec1.extend(&qy);
    let q = p256::PublicKey::from_sec1_bytes(&q_sec1).unwrap();
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), q.as_affine());
    let mine = p256::elliptic_curve::sec1::ToSec1Point::to_sec1_point(&secret.public_key(), false);
    let mut point = tpm2b(mine.x().unwrap());
    point.extend(tpm2b(mine.y().unwrap()));
    let out = params(&zgen(&mut t, k, &point), 0);
    let mut c = Cursor(&out);
    let mut c2 = Cursor(c.b());
    assert_eq!(c2.b(), shared.raw_secret_bytes().as_slice());

    // A point off the curve, an empty point.
    let mut off = tpm2b(mine.x().unwrap());
    off.extend(tpm2b(&[1; 32]));
    assert_eq!(rc_of(&zgen(&mut t, k, &off)), rc::p(rc::ECC_POINT, 1));
    assert_eq!(
        rc_of(&zgen(&mut t, k, &[0, 0, 0, 0])),
        rc::p(rc::ECC_POINT, 1)
    );
    // ZGen needs an unrestricted decryption key with ECDH or no scheme.
    let (signer, _) = primary(&mut t, &ecc_template(attr::BASE | attr::SIGN, &null), &[]);
    assert_eq!(
        rc_of(&zgen(&mut t, signer, &point)),
        rc::h(rc::ATTRIBUTES, 1)
    );
    // KeyGen works with any ECC key's public part; not with an RSA key.
    assert_eq!(
        rc_of(&t.execute(0, &command(cc::ECDH_KEYGEN, &[signer], false, &[]))),
        0
    );
    let (hmac_key, _) = primary(
        &mut t,
        &hmac_template(attr::BASE | attr::SIGN, &scheme(alg::HMAC, alg::SHA256)),
        &[],
    );
    assert_eq!(
        rc_of(&t.execute(0, &command(cc::ECDH_KEYGEN, &[hmac_key], false, &[]))),
        rc::h(rc::KEY, 1)
    );
    assert_eq!(rc_of(&zgen(&mut t, hmac_key, &point)), rc::h(rc::KEY, 1));

    // ECC_Parameters(P-256): the SP 800-186 values.
    let out = params(
        &t.execute(0, &command(cc::ECC_PARAMETERS, &[], false, &[0, 3])),
        0,
    );
    let mut c = Cursor(&out);
    assert_eq!(c.u16(), 3);
    assert_eq!(c.u16(), 256);
    assert_eq!(c.u16(), alg::NULL, "kdf");
    assert_eq!(c.u16(), alg::NULL, "sign");
    let hx = |s: &str| {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
    };
    assert_eq!(
        c.b(),
        hx("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff")
    );
    assert_eq!(
        c.b(),
        hx("ffffffff00000001000000000000000000000000fffffffffffffffffffffffc")
    );
    assert_eq!(
        c.b(),
        hx("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b")
    );
    assert_eq!(
        c.b(),
        hx("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296")
    );
    assert_eq!(
        c.b(),
        hx("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")
    );
    assert_eq!(
        c.b(),
        hx("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")
    );
    assert_eq!(c.b(), [1]);
    assert!(c.0.is_empty());
    // Unimplemented curves: TPM_RC_CURVE on parameter 1.
    for curve in [0u16, 1, 5, 0x10] {
        assert_eq!(
            rc_of(&t.execute(
                0,
                &command(cc::ECC_PARAMETERS, &[], false, &curve.to_be_bytes())
            )),
            rc::p(rc::CURVE, 1)
        );
    }
}
