//! Salted and bound HMAC sessions through tpm2-tools over `vtpm serve`.
//! tpm2-tss (ESAPI) encrypts the salt itself (RSA-OAEP or ECDH + KDFe with
//! OpenSSL), derives the session key, checks every response HMAC and
//! decrypts encrypted responses, so each passing tool run is an independent
//! check of the session key, the HMACs and the parameter encryption.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::path::Path;
use vtpm_tests::{Protocol, Server, both, ok_flush, started};

both!(
    salted_sessions_with_rsa_and_ecc_keys,
    salted_session_authorizes_nv_with_encryption,
    salted_sessions_for_create_and_unseal,
    salted_session_needs_a_decryption_key,
);

fn p(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

/// An RSA and an ECC storage primary under the owner.
fn primaries(server: &Server) -> (String, String) {
    let rsa = p(&server.dir().join("rsa.ctx"));
    let ecc = p(&server.dir().join("ecc.ctx"));
    ok_flush(server, "tpm2_createprimary", ["-C", "o", "-c", &rsa, "-Q"]);
    ok_flush(
        server,
        "tpm2_createprimary",
        ["-C", "o", "-G", "ecc", "-c", &ecc, "-Q"],
    );
    (rsa, ecc)
}

/// `tpm2_startauthsession --hmac-session` salted with `salt_key` (and
/// `more` options) into the session file `s`; flushes.
fn start_salted(server: &Server, salt_key: &str, more: &[&str], s: &str) {
    let mut args = vec!["--hmac-session", "--tpmkey-context", salt_key];
    args.extend(more);
    args.extend(["-S", s]);
    ok_flush(server, "tpm2_startauthsession", args);
}

fn is_hex(s: &str, bytes: usize) -> bool {
    s.len() == 2 * bytes && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn salted_sessions_with_rsa_and_ecc_keys(protocol: Protocol) {
    let server = started(protocol);
    let (rsa, ecc) = primaries(&server);
    let s = p(&server.dir().join("s.ctx"));
    for key in [&rsa, &ecc] {
        // Salted and bound to the key (-c): encrypt and decrypt on.
        ok_flush(
            &server,
            "tpm2_startauthsession",
            ["--hmac-session", "-c", key, "-S", &s],
        );
        let config = server.ok("tpm2_sessionconfig", [&s]);
        assert!(config.contains("encrypt"), "{config}");
        for _ in 0..3 {
            let out = server.ok("tpm2_getrandom", ["-S", &s, "16", "--hex"]);
            assert!(is_hex(out.trim(), 16), "{out}");
        }
        server.ok("tpm2_flushcontext", [&s]);

        // Salted only, with AES-128-CFB response encryption.
        start_salted(&server, key, &["-G", "aes"], &s);
        server.ok(
            "tpm2_sessionconfig",
            ["--enable-encrypt", "--enable-continuesession", &s],
        );
        let a = server.ok("tpm2_getrandom", ["-S", &s, "32", "--hex"]);
        let b = server.ok("tpm2_getrandom", ["-S", &s, "32", "--hex"]);
        assert!(is_hex(a.trim(), 32) && is_hex(b.trim(), 32));
        assert_ne!(a, b);
        server.ok("tpm2_flushcontext", [&s]);
    }
}

fn salted_session_authorizes_nv_with_encryption(protocol: Protocol) {
    let server = started(protocol);
    let (rsa, ecc) = primaries(&server);
    server.ok("tpm2_changeauth", ["-c", "o", "ownerpw"]);
    let s = p(&server.dir().join("s.ctx"));
    let data = server
        .dir()
        .write("data.bin", b"salted session NV data 0123456789");
    for (i, key) in [&rsa, &ecc].into_iter().enumerate() {
        let index = format!("0x{:x}", 0x0150_0010 + i);
        // Salted and bound to the owner (with its authValue).
        start_salted(
            &server,
            key,
            &["--bind-context", "o", "--bind-auth", "ownerpw"],
            &s,
        );
        server.ok(
            "tpm2_sessionconfig",
            ["--enable-encrypt", "--enable-decrypt", &s],
        );
        // The parameter-encryption key holds the owner's authValue even
        // though the session is bound to the owner (its HMAC key does not).
        let auth = format!("session:{s}+ownerpw");
        server.ok(
            "tpm2_nvdefine",
            [
                &index,
                "-C",
                "o",
                "-s",
                "33",
                "-a",
                "ownerread|ownerwrite",
                "-P",
                &auth,
            ],
        );
        server.ok(
            "tpm2_nvwrite",
            [&index, "-C", "o", "-i", &p(&data), "-P", &auth],
        );
        let out = p(&server.dir().join("out.bin"));
        server.ok(
            "tpm2_nvread",
            [&index, "-C", "o", "-s", "33", "-o", &out, "-P", &auth],
        );
        assert_eq!(
            server.dir().read("out.bin"),
            b"salted session NV data 0123456789"
        );
        // A wrong bind authValue gives a different session key: the owner
        // authorization then fails (TPM_RC_BAD_AUTH: the owner is exempt
        // from dictionary-attack protection).
        server.ok("tpm2_flushcontext", [&s]);
        start_salted(
            &server,
            key,
            &["--bind-context", "o", "--bind-auth", "wrong"],
            &s,
        );
        let r = server.fails("tpm2_nvread", [&index, "-C", "o", "-s", "33", "-P", &auth]);
        assert!(r.stderr.contains("0x9A2"), "{r}");
        server.ok("tpm2_flushcontext", [&s]);
        server.ok("tpm2_nvundefine", [&index, "-C", "o", "-P", "ownerpw"]);
    }
}

fn salted_sessions_for_create_and_unseal(protocol: Protocol) {
    let server = started(protocol);
    let (rsa, ecc) = primaries(&server);
    let secret = server.dir().write("secret.bin", b"top secret sealed data");
    let (pubf, privf) = (
        p(&server.dir().join("seal.pub")),
        p(&server.dir().join("seal.priv")),
    );
    let s = p(&server.dir().join("s.ctx"));
    // TPM2_Create authorized by a salted session bound to the parent, the
    // sensitive data (the first parameter) encrypted.
    ok_flush(
        &server,
        "tpm2_startauthsession",
        ["--hmac-session", "-c", &rsa, "-S", &s],
    );
    ok_flush(
        &server,
        "tpm2_create",
        [
            "-C",
            &rsa,
            "-i",
            &p(&secret),
            "-u",
            &pubf,
            "-r",
            &privf,
            "-p",
            "sealpw",
            "-P",
            &format!("session:{s}"),
            "-Q",
        ],
    );
    server.ok("tpm2_flushcontext", [&s]);
    let seal = p(&server.dir().join("seal.ctx"));
    ok_flush(
        &server,
        "tpm2_load",
        ["-C", &rsa, "-u", &pubf, "-r", &privf, "-c", &seal, "-Q"],
    );
    let out = p(&server.dir().join("out.bin"));
    // Unseals with the session in `s` and the object's password: the
    // secret comes back.
    let unseal_in_session = || {
        let auth = format!("session:{s}+sealpw");
        ok_flush(
            &server,
            "tpm2_unseal",
            ["-c", &seal, "-p", &auth, "-o", &out],
        );
        assert_eq!(server.dir().read("out.bin"), b"top secret sealed data");
    };

    // Salted (ECC) and bound to the sealed object, which is loaded at
    // another handle by each tool: the binding follows the Name.
    start_salted(
        &server,
        &ecc,
        &["--bind-context", &seal, "--bind-auth", "sealpw"],
        &s,
    );
    server.ok("tpm2_sessionconfig", ["--enable-encrypt", &s]);
    for _ in 0..2 {
        unseal_in_session();
    }
    server.ok("tpm2_flushcontext", [&s]);

    // Salted (RSA), unbound: the HMAC key is sessionKey || authValue.
    start_salted(&server, &rsa, &[], &s);
    server.ok("tpm2_sessionconfig", ["--enable-encrypt", &s]);
    unseal_in_session();
    let r = server.fails(
        "tpm2_unseal",
        ["-c", &seal, "-p", &format!("session:{s}+wrong")],
    );
    assert!(r.stderr.contains("0x98E"), "{r}");
}

fn salted_session_needs_a_decryption_key(protocol: Protocol) {
    let server = started(protocol);
    let sign = p(&server.dir().join("sign.ctx"));
    ok_flush(
        &server,
        "tpm2_createprimary",
        [
            "-C",
            "o",
            "-G",
            "ecc256:ecdsa",
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign",
            "-c",
            &sign,
            "-Q",
        ],
    );
    let s = p(&server.dir().join("s.ctx"));
    let r = server.fails(
        "tpm2_startauthsession",
        ["--hmac-session", "--tpmkey-context", &sign, "-S", &s],
    );
    // TPM_RC_ATTRIBUTES for handle 1.
    assert!(r.stderr.contains("0x182"), "{r}");
}
