//! Symmetric keys, HMAC keys, sealed data and external objects through
//! tpm2-tools over `vtpm serve`, judged by OpenSSL: TPM2_EncryptDecrypt2 in
//! every mode against `openssl enc`, TPM2_HMAC and HMAC sequences against
//! `openssl mac`, TPM2_Unseal with passwords, TPM2_ObjectChangeAuth, and
//! TPM2_LoadExternal of OpenSSL-generated keys (the public key the TPM
//! reports is OpenSSL's).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Command;
use vtpm_tests::{
    Hash, Protocol, Server, assert_stderr_mentions, fails_flush, hex, ok_flush, openssl_p256_key,
    started, unhex, yaml_value,
};

use vtpm_tests::both;
use vtpm_tests::xorshift32;

both!(
    encryptdecrypt_matches_openssl,
    encryptdecrypt_tpm_generated_keys,
    hmac_matches_openssl,
    seal_unseal_with_password,
    changeauth_new_private,
    loadexternal_openssl_keys,
);

fn p(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

fn file(server: &Server, name: &str) -> PathBuf {
    server.dir().join(name)
}

/// Runs `openssl` with `args`; its stdout.
fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Deterministic test data.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    xorshift32(seed.wrapping_mul(2_654_435_761).wrapping_add(1))
        .take(len)
        .map(|x| (x >> 24) as u8)
        .collect()
}

/// A storage primary key in the owner hierarchy (`prim.ctx`).
fn primary(server: &Server) -> String {
    let ctx = p(&file(server, "prim.ctx"));
    ok_flush(server, "tpm2_createprimary", ["-C", "o", "-c", &ctx]);
    ctx
}

/// `tpm2_create` under `prim` with `args`, then `tpm2_load`, each
/// flushed; the files are `<tag>.pub`, `<tag>.priv` and `<tag>.ctx`.
/// Returns (public, private, context, tpm2_load's output).
fn create_load(
    server: &Server,
    prim: &str,
    tag: &str,
    args: &[&str],
) -> (String, String, String, String) {
    let (pubf, privf, ctx) = (
        p(&file(server, &format!("{tag}.pub"))),
        p(&file(server, &format!("{tag}.priv"))),
        p(&file(server, &format!("{tag}.ctx"))),
    );
    let mut create = vec!["-C", prim];
    create.extend(args);
    create.extend(["-u", &pubf, "-r", &privf]);
    ok_flush(server, "tpm2_create", create);
    let out = ok_flush(
        server,
        "tpm2_load",
        ["-C", prim, "-u", &pubf, "-r", &privf, "-c", &ctx],
    );
    (pubf, privf, ctx, out)
}

/// Loads an AES key given as raw bytes with TPM2_LoadExternal (null
/// hierarchy, with its sensitive area); the context file.
fn external_aes(server: &Server, key: &[u8], tag: &str) -> String {
    let keyfile = server.dir().write(&format!("{tag}.key"), key);
    let ctx = p(&file(server, &format!("{tag}.ctx")));
    ok_flush(
        server,
        "tpm2_loadexternal",
        ["-G", "aes", "-r", &p(&keyfile), "-c", &ctx],
    );
    ctx
}

/// `tpm2_encryptdecrypt` of `input`: the output (and, with `iv`, the ivOut
/// the tool saved).
fn tpm_crypt(
    server: &Server,
    ctx: &str,
    mode: &str,
    decrypt: bool,
    iv: Option<&[u8]>,
    input: &[u8],
) -> (Vec<u8>, Option<Vec<u8>>) {
    let dir = server.dir();
    let inp = dir.write("crypt.in", input);
    let out = dir.join("crypt.out");
    let _ = std::fs::remove_file(&out);
    let iv_out = dir.join("crypt.ivout");
    let _ = std::fs::remove_file(&iv_out);
    let mut args = vec![
        "-c".to_string(),
        ctx.to_string(),
        "-G".into(),
        mode.into(),
        "-o".into(),
        p(&out),
    ];
    if decrypt {
        args.push("-d".into());
    }
    if let Some(iv) = iv {
        let ivf = dir.write("crypt.iv", iv);
        args.push("-t".into());
        args.push(format!("{}:{}", p(&ivf), p(&iv_out)));
    }
    args.push(p(&inp));
    ok_flush(server, "tpm2_encryptdecrypt", &args);
    let iv_saved = iv.map(|_| std::fs::read(&iv_out).unwrap());
    (std::fs::read(&out).unwrap(), iv_saved)
}

/// `openssl enc` without padding.
fn openssl_crypt(
    dir: &Path,
    cipher: &str,
    key: &[u8],
    iv: Option<&[u8]>,
    decrypt: bool,
    input: &[u8],
) -> Vec<u8> {
    let inp = dir.join("ossl.in");
    std::fs::write(&inp, input).unwrap();
    let key_hex = hex(key);
    let mut args = vec![
        "enc",
        if decrypt { "-d" } else { "-e" },
        cipher,
        "-nopad",
        "-K",
        &key_hex,
    ];
    let iv_hex = iv.map(hex);
    if let Some(iv) = &iv_hex {
        args.push("-iv");
        args.push(iv);
    }
    let inp_s = p(&inp);
    args.push("-in");
    args.push(&inp_s);
    openssl(&args)
}

fn encryptdecrypt_matches_openssl(protocol: Protocol) {
    let server = started(protocol);
    let dir = server.dir().path().to_path_buf();
    for (bits, key) in [(128, pattern(16, 1)), (256, pattern(32, 2))] {
        let ctx = external_aes(&server, &key, &format!("aes{bits}"));
        let iv = pattern(16, 3);
        for mode in ["cfb", "cbc", "ctr", "ofb", "ecb"] {
            let cipher = format!("-aes-{bits}-{mode}");
            let block_mode = mode == "cbc" || mode == "ecb";
            // More than one TPM2B_MAX_BUFFER: the tool chains calls with
            // ivOut. Stream modes take a partial last block.
            let len = if block_mode { 2064 } else { 2071 };
            let plain = pattern(len, bits + len as u32);
            let iv_arg = (mode != "ecb").then_some(&iv[..]);
            let expected = openssl_crypt(&dir, &cipher, &key, iv_arg, false, &plain);
            let (ct, iv_out) = tpm_crypt(&server, &ctx, mode, false, iv_arg, &plain);
            assert_eq!(ct, expected, "AES-{bits}-{mode} encryption");
            // After CBC, the chaining value is the last ciphertext block.
            if mode == "cbc" {
                assert_eq!(iv_out.unwrap(), expected[len - 16..], "CBC ivOut");
            }
            let (pt, _) = tpm_crypt(&server, &ctx, mode, true, iv_arg, &expected);
            assert_eq!(pt, plain, "AES-{bits}-{mode} decryption");
            // OpenSSL decrypts what the TPM encrypted (the other direction
            // on fresh data).
            let plain2 = pattern(len, 77 + bits);
            let (ct2, _) = tpm_crypt(&server, &ctx, mode, false, iv_arg, &plain2);
            assert_eq!(
                openssl_crypt(&dir, &cipher, &key, iv_arg, true, &ct2),
                plain2,
                "AES-{bits}-{mode}: OpenSSL decrypts the TPM's ciphertext"
            );
        }
        // CBC data that is not whole blocks: TPM_RC_SIZE on inData.
        let run = tpm_crypt_fails(&server, &ctx, "cbc", (&iv, &pattern(17, 5)), "odd.");
        assert_stderr_mentions(&run, &["0x1d5"]);
    }
}

fn encryptdecrypt_tpm_generated_keys(protocol: Protocol) {
    let server = started(protocol);
    let prim = primary(&server);
    let plain = pattern(1504, 9);
    let iv = pattern(16, 10);
    for (alg, mode, other) in [("aes128cfb", "cfb", "cbc"), ("aes256cbc", "cbc", "ofb")] {
        let (_, _, ctx, _) = create_load(&server, &prim, alg, &["-G", alg]);
        // A key the TPM generated: a round trip gives the data back, and
        // the ciphertext is not the data.
        let (ct, _) = tpm_crypt(&server, &ctx, mode, false, Some(&iv), &plain);
        assert_eq!(ct.len(), plain.len());
        assert_ne!(ct, plain);
        let (pt, _) = tpm_crypt(&server, &ctx, mode, true, Some(&iv), &ct);
        assert_eq!(pt, plain, "{alg} round trip");
        // The key has a mode: another is TPM_RC_MODE (on EncryptDecrypt2's
        // mode, parameter 3).
        let run = tpm_crypt_fails(&server, &ctx, other, (&iv, &plain[..32]), "m.");
        assert_stderr_mentions(&run, &["0x3c9"]);
    }
}

/// `tpm2_encryptdecrypt` in `mode` with `iv` that must fail; files
/// `<tag>.*`.
fn tpm_crypt_fails(
    server: &Server,
    ctx: &str,
    mode: &str,
    (iv, input): (&[u8], &[u8]),
    tag: &str,
) -> vtpm_tests::Run {
    let inp = server.dir().write(&format!("{tag}.in"), input);
    let ivf = server.dir().write(&format!("{tag}.iv"), iv);
    let out = file(server, &format!("{tag}.out"));
    fails_flush(
        server,
        "tpm2_encryptdecrypt",
        [
            "-c",
            ctx,
            "-G",
            mode,
            "-t",
            &p(&ivf),
            "-o",
            &p(&out),
            &p(&inp),
        ],
    )
}

/// The public key of `ctx` (`tpm2_readpublic -f pem` into `pem`) is the
/// one in `want_pem`, compared as DER by OpenSSL.
fn assert_public_key(server: &Server, ctx: &str, pem: &Path, want_pem: &str) {
    ok_flush(
        server,
        "tpm2_readpublic",
        ["-c", ctx, "-f", "pem", "-o", &p(pem)],
    );
    assert_eq!(
        openssl(&["pkey", "-pubin", "-in", &p(pem), "-outform", "DER"]),
        openssl(&["pkey", "-pubin", "-in", want_pem, "-outform", "DER"])
    );
}

/// `openssl mac` HMAC of `data` under `key`.
fn openssl_hmac(dir: &Path, digest: &str, key: &[u8], data: &[u8]) -> Vec<u8> {
    let inp = dir.join("mac.in");
    std::fs::write(&inp, data).unwrap();
    let out = openssl(&[
        "mac",
        "-digest",
        digest,
        "-macopt",
        &format!("hexkey:{}", hex(key)),
        "-in",
        &p(&inp),
        "HMAC",
    ]);
    unhex(String::from_utf8(out).unwrap().trim())
}

/// `tpm2_hmac --hex` of `data`.
fn tpm_hmac(server: &Server, ctx: &str, hash: Option<&str>, data: &[u8]) -> Vec<u8> {
    tpm_hmac_ticket(server, ctx, hash, data, None)
}

/// `tpm2_hmac --hex` of `data`; with `ticket`, `-t ticket` (which makes the
/// tool use an HMAC sequence whatever the size, for the ticket that only
/// TPM2_SequenceComplete returns).
fn tpm_hmac_ticket(
    server: &Server,
    ctx: &str,
    hash: Option<&str>,
    data: &[u8],
    ticket: Option<&Path>,
) -> Vec<u8> {
    let inp = server.dir().write("hmac.in", data);
    let mut args = vec!["-c".to_string(), ctx.to_string(), "--hex".into()];
    if let Some(h) = hash {
        args.extend(["-g".into(), h.to_string()]);
    }
    if let Some(t) = ticket {
        args.extend(["-t".into(), p(t)]);
    }
    args.push(p(&inp));
    unhex(ok_flush(server, "tpm2_hmac", &args).trim())
}

fn hmac_matches_openssl(protocol: Protocol) {
    let server = started(protocol);
    let dir = server.dir().path().to_path_buf();
    let prim = primary(&server);
    // An HMAC key with known key bits: a keyed-hash object whose data the
    // caller gives (sensitiveDataOrigin CLEAR), signing, scheme NULL (the
    // hash is chosen per command).
    let key = pattern(40, 11);
    let keyfile = server.dir().write("hmac.key", &key);
    let (_, _, ctx, _) = create_load(
        &server,
        &prim,
        "hk",
        &[
            "-i",
            &p(&keyfile),
            "-a",
            "sign|userwithauth|fixedtpm|fixedparent|noda",
        ],
    );
    for (tool_hash, ossl_hash) in [("sha1", "SHA1"), ("sha256", "SHA256"), ("sha384", "SHA384")] {
        // Up to 1024 bytes tpm2_hmac sends TPM2_HMAC; more goes through
        // TPM2_HMAC_Start, TPM2_SequenceUpdate and TPM2_SequenceComplete.
        for len in [0, 5, 1024, 3000] {
            let data = pattern(len, len as u32 + 1);
            assert_eq!(
                tpm_hmac(&server, &ctx, Some(tool_hash), &data),
                openssl_hmac(&dir, ossl_hash, &key, &data),
                "HMAC-{ossl_hash} of {len} bytes"
            );
        }
    }
    // A sequence for 5 bytes (forced by asking for the ticket): the same
    // HMAC, and a NULL ticket (TPM_ST_HASHCHECK, TPM_RH_NULL, no digest):
    // an HMAC sequence gives no ticket.
    let ticket = dir.join("hmac.ticket");
    let data = pattern(5, 6);
    assert_eq!(
        tpm_hmac_ticket(&server, &ctx, Some("sha256"), &data, Some(&ticket)),
        openssl_hmac(&dir, "SHA256", &key, &data),
        "HMAC through a sequence"
    );
    let t = std::fs::read(&ticket).unwrap();
    assert!(
        t.ends_with(&[0x80, 0x24, 0x40, 0, 0, 0x07, 0, 0]),
        "ticket {}",
        hex(&t)
    );
    // A key the TPM generates with an HMAC-SHA256 scheme: the same HMAC
    // every time, through either path, and SHA-1 refused (TPM_RC_VALUE on
    // hashAlg).
    let (_, _, gctx, _) = create_load(&server, &prim, "g", &["-G", "hmac"]);
    let data = pattern(2000, 4);
    let a = tpm_hmac(&server, &gctx, None, &data);
    assert_eq!(a.len(), 32);
    assert_eq!(tpm_hmac(&server, &gctx, Some("sha256"), &data), a);
    assert_ne!(tpm_hmac(&server, &gctx, None, &data[..1000]), a);
    let inp = server.dir().write("x.in", b"abc");
    let run = fails_flush(&server, "tpm2_hmac", ["-c", &gctx, "-g", "sha1", &p(&inp)]);
    assert_stderr_mentions(&run, &["0x2c4"]);
}

fn seal_unseal_with_password(protocol: Protocol) {
    let server = started(protocol);
    let prim = primary(&server);
    let secret = b"the quick brown fox\x00\x01\xff jumps";
    let input = server.dir().write("secret.bin", secret);
    let (_, _, ctx, _) = create_load(&server, &prim, "s", &["-i", &p(&input), "-p", "sealpw"]);
    let out = file(&server, "unsealed.bin");
    ok_flush(
        &server,
        "tpm2_unseal",
        ["-c", &ctx, "-p", "sealpw", "-o", &p(&out)],
    );
    assert_eq!(std::fs::read(&out).unwrap(), secret);
    // A wrong password: the HMAC session's check fails.
    let run = fails_flush(&server, "tpm2_unseal", ["-c", &ctx, "-p", "sealpX"]);
    assert_stderr_mentions(&run, &["0x98e"]);
    let run = fails_flush(&server, "tpm2_unseal", ["-c", &ctx]);
    assert_stderr_mentions(&run, &["0x98e"]);
    // Still right with the right one; and a password session works as well
    // as tpm2-tools' HMAC session.
    let out2 = file(&server, "unsealed2.bin");
    ok_flush(
        &server,
        "tpm2_unseal",
        ["-c", &ctx, "-p", "sealpw", "-o", &p(&out2)],
    );
    assert_eq!(std::fs::read(&out2).unwrap(), secret);
    // An HMAC key is not a sealed data object: TPM_RC_ATTRIBUTES.
    let (_, _, hctx, _) = create_load(&server, &prim, "h", &["-G", "hmac"]);
    let run = fails_flush(&server, "tpm2_unseal", ["-c", &hctx]);
    assert_stderr_mentions(&run, &["0x182"]);
}

fn changeauth_new_private(protocol: Protocol) {
    let server = started(protocol);
    let prim = primary(&server);
    let secret = b"sealed under two passwords";
    let input = server.dir().write("secret.bin", secret);
    let (pubf, privf, ctx, load_out) =
        create_load(&server, &prim, "o", &["-i", &p(&input), "-p", "oldpw"]);
    let name = yaml_value(&load_out, "name").unwrap().to_string();
    let newpriv = p(&file(&server, "o2.priv"));
    ok_flush(
        &server,
        "tpm2_changeauth",
        [
            "-c", &ctx, "-C", &prim, "-p", "oldpw", "-r", &newpriv, "newpw",
        ],
    );
    assert_ne!(
        std::fs::read(&newpriv).unwrap(),
        std::fs::read(&privf).unwrap()
    );
    // The new private loads with the old public area: the same Name, which
    // is SHA-256 over the public area (the authValue is not in it).
    let ctx2 = p(&file(&server, "o2.ctx"));
    let load_out = ok_flush(
        &server,
        "tpm2_load",
        ["-C", &prim, "-u", &pubf, "-r", &newpriv, "-c", &ctx2],
    );
    assert_eq!(yaml_value(&load_out, "name").unwrap(), name);
    let public = std::fs::read(&pubf).unwrap();
    assert_eq!(
        name,
        format!("000b{}", hex(&Hash::Sha256.digest(&[&public[2..]])))
    );
    let out = file(&server, "u.bin");
    ok_flush(
        &server,
        "tpm2_unseal",
        ["-c", &ctx2, "-p", "newpw", "-o", &p(&out)],
    );
    assert_eq!(std::fs::read(&out).unwrap(), secret);
    let run = fails_flush(&server, "tpm2_unseal", ["-c", &ctx2, "-p", "oldpw"]);
    assert_stderr_mentions(&run, &["0x98e"]);
    // The old private still answers to the old password.
    ok_flush(&server, "tpm2_unseal", ["-c", &ctx, "-p", "oldpw"]);
    // A parent that is not the object's: TPM_RC_TYPE on parentHandle.
    let other = p(&file(&server, "other.ctx"));
    ok_flush(
        &server,
        "tpm2_createprimary",
        ["-C", "e", "-G", "ecc256", "-c", &other],
    );
    let run = fails_flush(
        &server,
        "tpm2_changeauth",
        [
            "-c",
            &ctx,
            "-C",
            &other,
            "-p",
            "oldpw",
            "-r",
            &p(&file(&server, "bad.priv")),
            "x",
        ],
    );
    assert_stderr_mentions(&run, &["0x28a"]);
}

/// The RSA modulus `tpm2_readpublic` prints for a loaded object.
fn tpm_modulus(server: &Server, ctx: &str) -> String {
    let out = ok_flush(server, "tpm2_readpublic", ["-c", ctx]);
    yaml_value(&out, "rsa")
        .unwrap_or_else(|| panic!("no rsa: in {out}"))
        .to_ascii_lowercase()
}

fn loadexternal_openssl_keys(protocol: Protocol) {
    let server = started(protocol);
    let dir = server.dir().path().to_path_buf();
    let priv_pem = p(&dir.join("rsa.pem"));
    let pub_pem = p(&dir.join("rsa.pub.pem"));
    openssl(&["genrsa", "-out", &priv_pem, "2048"]);
    openssl(&["rsa", "-in", &priv_pem, "-pubout", "-out", &pub_pem]);
    let modulus = String::from_utf8(openssl(&["rsa", "-in", &priv_pem, "-noout", "-modulus"]))
        .unwrap()
        .trim()
        .strip_prefix("Modulus=")
        .unwrap()
        .to_ascii_lowercase();

    // The public key alone, in the owner and the null hierarchies.
    for hierarchy in ["o", "n"] {
        let ctx = p(&dir.join(format!("rsa-pub-{hierarchy}.ctx")));
        let out = ok_flush(
            &server,
            "tpm2_loadexternal",
            ["-C", hierarchy, "-G", "rsa", "-u", &pub_pem, "-c", &ctx],
        );
        assert_eq!(tpm_modulus(&server, &ctx), modulus);
        // The Name is SHA-256 over the public area the TPM reports.
        let pubf = dir.join(format!("rsa-pub-{hierarchy}.tpm"));
        ok_flush(&server, "tpm2_readpublic", ["-c", &ctx, "-o", &p(&pubf)]);
        let public = std::fs::read(&pubf).unwrap();
        assert_eq!(
            yaml_value(&out, "name").unwrap(),
            format!("000b{}", hex(&Hash::Sha256.digest(&[&public[2..]])))
        );
        // The TPM's PEM export is OpenSSL's public key.
        let pem = dir.join(format!("rsa-pub-{hierarchy}.out.pem"));
        assert_public_key(&server, &ctx, &pem, &pub_pem);
    }
    // The private key too: the null hierarchy only.
    let ctx = p(&dir.join("rsa-priv.ctx"));
    ok_flush(
        &server,
        "tpm2_loadexternal",
        ["-C", "n", "-G", "rsa", "-r", &priv_pem, "-c", &ctx],
    );
    assert_eq!(tpm_modulus(&server, &ctx), modulus);
    let run = fails_flush(
        &server,
        "tpm2_loadexternal",
        [
            "-C",
            "o",
            "-G",
            "rsa",
            "-r",
            &priv_pem,
            "-c",
            &p(&dir.join("x.ctx")),
        ],
    );
    assert_stderr_mentions(&run, &["0x3c5"]);
    // ...and never claiming to be the TPM's own (fixedTPM/fixedParent).
    let run = fails_flush(
        &server,
        "tpm2_loadexternal",
        [
            "-C",
            "n",
            "-G",
            "rsa",
            "-r",
            &priv_pem,
            "-a",
            "fixedtpm|fixedparent|sign|decrypt|userwithauth",
            "-c",
            &p(&dir.join("y.ctx")),
        ],
    );
    assert_stderr_mentions(&run, &["0x2c2"]);

    // An ECC P-256 public key: the same point back.
    let ec_pem = p(&dir.join("ec.pem"));
    let ec_pub = p(&dir.join("ec.pub.pem"));
    openssl_p256_key(Path::new(&ec_pem));
    openssl(&["ec", "-in", &ec_pem, "-pubout", "-out", &ec_pub]);
    let ctx = p(&dir.join("ec.ctx"));
    ok_flush(
        &server,
        "tpm2_loadexternal",
        ["-G", "ecc", "-u", &ec_pub, "-c", &ctx],
    );
    let pem = dir.join("ec.out.pem");
    assert_public_key(&server, &ctx, &pem, &ec_pub);
    // An AES key with its sensitive area: it works as `openssl enc` does
    // (encryptdecrypt_matches_openssl covers every mode).
    let key = pattern(16, 21);
    let ctx = external_aes(&server, &key, "aes");
    let plain = pattern(64, 22);
    let iv = pattern(16, 23);
    let (ct, _) = tpm_crypt(&server, &ctx, "ctr", false, Some(&iv), &plain);
    assert_eq!(
        ct,
        openssl_crypt(&dir, "-aes-128-ctr", &key, Some(&iv), false, &plain)
    );
}
