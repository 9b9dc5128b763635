//! Duplication, import and credentials (Part 1 §22-24, Part 3 §12.5-12.6,
//! §13) and the policy commands their real flows need
//! (TPM2_PolicyCommandCode, TPM2_PolicySecret, TPM2_PolicyGetDigest),
//! driven by tpm2-tools. The judges are independent of vtpm: tpm2-tools
//! builds import blobs and credentials in software (OpenSSL keys,
//! `tpm2_duplicate -T none`, `tpm2_makecredential -T none`), OpenSSL gives
//! the expected public keys, policy digests and Names are recomputed here
//! from the spec's formulas, and a second vtpm instance must accept what
//! the first one exports.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::path::Path;
use vtpm_tests::path_str as p;
use vtpm_tests::{
    Hash, Protocol, Server, TempDir, assert_rc, flush, hex, load, offline, openssl_p256_key,
    openssl_verify, run_ok, started, unhex,
};

use vtpm_tests::both;

both!(
    policy_trial_digests,
    import_openssl_keys,
    import_software_duplicate_and_corruption,
    duplicate_between_two_tpms,
    credential_with_rsa_ek,
    credential_with_ecc_ek,
);

const TPM_CC_POLICY_COMMAND_CODE: u32 = 0x16C;
const TPM_CC_POLICY_SECRET: u32 = 0x151;
const TPM_CC_DUPLICATE: u32 = 0x14B;
const TPM_RH_ENDORSEMENT: u32 = 0x4000_000B;

/// The EK policy of the TCG EK Credential Profile's default templates:
/// PolicySecret(TPM_RH_ENDORSEMENT) with SHA-256.
const EK_POLICY_SHA256: &str = "837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa";

/// The Name of the public area in a TPM2B_PUBLIC file with nameAlg
/// SHA-256: 0x000B || SHA-256(TPMT_PUBLIC).
fn name_of_public_file(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let size = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    assert_eq!(
        size + 2,
        bytes.len(),
        "{} is one TPM2B_PUBLIC",
        path.display()
    );
    let public = &bytes[2..];
    assert_eq!(&public[2..4], &[0x00, 0x0B], "nameAlg SHA-256");
    let mut name = vec![0x00, 0x0B];
    name.extend(Hash::Sha256.digest(&[public]));
    name
}

/// `name: <hex>` from a tool's output.
fn printed_name(out: &str) -> Vec<u8> {
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("name:"))
        .unwrap_or_else(|| panic!("no name in:\n{out}"));
    unhex(line.trim())
}

/// A value `key: <hex>` from tpm2_readpublic's output.
fn readpublic_hex(out: &str, key: &str) -> Vec<u8> {
    let v = out
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in:\n{out}"));
    unhex(v.trim())
}

/// policyDigest after PolicyCommandCode(Duplicate) from a fresh session:
/// SHA-256(0^32 || TPM_CC_PolicyCommandCode || TPM_CC_Duplicate).
fn duplicate_policy() -> Vec<u8> {
    Hash::Sha256.digest(&[
        &[0u8; 32],
        &TPM_CC_POLICY_COMMAND_CODE.to_be_bytes(),
        &TPM_CC_DUPLICATE.to_be_bytes(),
    ])
}

fn policy_trial_digests(protocol: Protocol) {
    let server = started(protocol);
    let dir = TempDir::new("dup-policy");
    let s = dir.join("trial.ctx");
    let file = dir.join("policy.dat");

    // PolicyCommandCode (and PolicyGetDigest, which writes the file).
    server.ok("tpm2_startauthsession", ["-S", p(&s)]);
    server.ok(
        "tpm2_policycommandcode",
        ["-S", p(&s), "-L", p(&file), "TPM2_CC_Duplicate"],
    );
    server.ok("tpm2_flushcontext", [p(&s)]);
    assert_eq!(
        hex(&std::fs::read(&file).unwrap()),
        hex(&duplicate_policy())
    );

    // PolicySecret(TPM_RH_ENDORSEMENT): H(H(0^32 || cc || authName) ||
    // policyRef), the EK Credential Profile's EK policy.
    server.ok("tpm2_startauthsession", ["-S", p(&s)]);
    server.ok(
        "tpm2_policysecret",
        ["-S", p(&s), "-c", "e", "-L", p(&file)],
    );
    server.ok("tpm2_flushcontext", [p(&s)]);
    let inner = Hash::Sha256.digest(&[
        &[0u8; 32],
        &TPM_CC_POLICY_SECRET.to_be_bytes(),
        &TPM_RH_ENDORSEMENT.to_be_bytes(),
    ]);
    let expected = Hash::Sha256.digest(&[&inner, b""]);
    assert_eq!(hex(&expected), EK_POLICY_SHA256);
    assert_eq!(hex(&std::fs::read(&file).unwrap()), EK_POLICY_SHA256);

    // Both in one policy: PolicySecret then PolicyCommandCode.
    server.ok("tpm2_startauthsession", ["-S", p(&s)]);
    server.ok("tpm2_policysecret", ["-S", p(&s), "-c", "o"]);
    server.ok(
        "tpm2_policycommandcode",
        ["-S", p(&s), "-L", p(&file), "TPM2_CC_Duplicate"],
    );
    server.ok("tpm2_flushcontext", [p(&s)]);
    let owner = Hash::Sha256.digest(&[
        &Hash::Sha256.digest(&[
            &[0u8; 32],
            &TPM_CC_POLICY_SECRET.to_be_bytes(),
            &0x4000_0001u32.to_be_bytes(),
        ]),
        b"",
    ]);
    let both = Hash::Sha256.digest(&[
        &owner,
        &TPM_CC_POLICY_COMMAND_CODE.to_be_bytes(),
        &TPM_CC_DUPLICATE.to_be_bytes(),
    ]);
    assert_eq!(hex(&std::fs::read(&file).unwrap()), hex(&both));

    // A second, different command code in the same session: TPM_RC_VALUE
    // (parameter 1).
    server.ok("tpm2_startauthsession", ["-S", p(&s)]);
    server.ok("tpm2_policycommandcode", ["-S", p(&s), "TPM2_CC_Duplicate"]);
    let r = server.run("tpm2_policycommandcode", ["-S", p(&s), "TPM2_CC_Import"]);
    assert_rc(&r, 0x1C4);
    server.ok("tpm2_flushcontext", [p(&s)]);
}

/// A primary storage key in the owner hierarchy.
fn primary(server: &Server, dir: &TempDir, name: &str, alg: &str) -> std::path::PathBuf {
    let ctx = dir.join(name);
    server.ok("tpm2_createprimary", ["-C", "o", "-G", alg, "-c", p(&ctx)]);
    flush(server);
    ctx
}

/// `tpm2_import` arguments: `input` (a PEM, a key or a duplication blob
/// with its `seed`) imported under `parent` into `public` / `private`.
fn import_args<'a>(
    parent: &'a Path,
    alg: &'a str,
    input: &'a Path,
    seed: Option<&'a Path>,
    public: &'a Path,
    private: &'a Path,
) -> Vec<&'a str> {
    let mut args = vec!["-C", p(parent), "-G", alg, "-i", p(input)];
    if let Some(seed) = seed {
        args.extend(["-s", p(seed)]);
    }
    args.extend(["-u", p(public), "-r", p(private)]);
    args
}

/// `tpm2_duplicate -T none`: a duplication blob of the OpenSSL RSA key
/// `pem` for the parent whose public area is `parent_pub`, made in
/// software.
fn soft_duplicate(parent_pub: &Path, pem: &Path, public: &Path, dpriv: &Path, seed: &Path) {
    offline(
        "tpm2_duplicate",
        &[
            "-U",
            p(parent_pub),
            "-G",
            "rsa",
            "-k",
            p(pem),
            "-u",
            p(public),
            "-r",
            p(dpriv),
            "-s",
            p(seed),
        ],
    );
}

/// `tpm2_import` (see [`import_args`]) and `tpm2_load` of the result into
/// `ctx`, flushing after each; returns tpm2_load's output.
fn import_and_load(
    server: &Server,
    parent: &Path,
    (alg, input, seed): (&str, &Path, Option<&Path>),
    (public, private, ctx): (&Path, &Path, &Path),
) -> String {
    server.ok(
        "tpm2_import",
        import_args(parent, alg, input, seed, public, private),
    );
    flush(server);
    let out = load(server, parent, public, private, ctx);
    flush(server);
    out
}

/// Signs a message with an imported key on the TPM and verifies the
/// signature with OpenSSL against the key OpenSSL generated: the imported
/// private part is the right one.
fn sign_with_imported_key(server: &Server, dir: &TempDir, ctx: &Path, pem: &Path, scheme: &str) {
    let msg = dir.write(&format!("{scheme}.msg"), b"signed by an imported key");
    let sig = dir.join(&format!("{scheme}.sig"));
    server.ok(
        "tpm2_sign",
        [
            "-c",
            p(ctx),
            "-g",
            "sha256",
            "-s",
            scheme,
            "-f",
            "plain",
            "-o",
            p(&sig),
            p(&msg),
        ],
    );
    flush(server);
    let pubpem = dir.join(&format!("{scheme}.pub.pem"));
    run_ok(
        "openssl",
        &["pkey", "-in", p(pem), "-pubout", "-out", p(&pubpem)],
    );
    openssl_verify(&pubpem, &sig, &msg);
}

fn import_openssl_keys(protocol: Protocol) {
    let server = started(protocol);
    let dir = TempDir::new("dup-import");
    let parent = primary(&server, &dir, "parent.ctx", "rsa");

    // RSA-2048: tpm2_import builds the duplication blob for the parent in
    // software; TPM2_Import rewraps it, TPM2_Load checks the prime against
    // the modulus.
    let pem = dir.join("k.pem");
    run_ok("openssl", &["genrsa", "-out", p(&pem), "2048"]);
    let (pubf, privf, ctx) = (dir.join("k.pub"), dir.join("k.priv"), dir.join("k.ctx"));
    let out = import_and_load(&server, &parent, ("rsa", &pem, None), (&pubf, &privf, &ctx));
    assert_eq!(printed_name(&out), name_of_public_file(&pubf));
    let rp = server.ok("tpm2_readpublic", ["-c", p(&ctx)]);
    let modulus = run_ok("openssl", &["rsa", "-in", p(&pem), "-noout", "-modulus"]);
    let modulus = unhex(modulus.trim().strip_prefix("Modulus=").unwrap());
    assert_eq!(hex(&readpublic_hex(&rp, "rsa")), hex(&modulus));
    flush(&server);
    sign_with_imported_key(&server, &dir, &ctx, &pem, "rsassa");

    // ECC P-256.
    let pem = dir.join("e.pem");
    openssl_p256_key(&pem);
    let der = dir.join("e.der");
    run_ok(
        "openssl",
        &[
            "ec",
            "-in",
            p(&pem),
            "-pubout",
            "-outform",
            "DER",
            "-out",
            p(&der),
        ],
    );
    let spki = std::fs::read(&der).unwrap();
    let point = &spki[spki.len() - 65..];
    assert_eq!(point[0], 0x04, "uncompressed point at the end of the SPKI");
    let (pubf, privf, ctx) = (dir.join("e.pub"), dir.join("e.priv"), dir.join("e.ctx"));
    import_and_load(&server, &parent, ("ecc", &pem, None), (&pubf, &privf, &ctx));
    let rp = server.ok("tpm2_readpublic", ["-c", p(&ctx)]);
    assert_eq!(hex(&readpublic_hex(&rp, "x")), hex(&point[1..33]));
    assert_eq!(hex(&readpublic_hex(&rp, "y")), hex(&point[33..]));
    flush(&server);
    sign_with_imported_key(&server, &dir, &ctx, &pem, "ecdsa");

    // An HMAC key: TPM2_Load checks unique = H(seedValue || key).
    let key = dir.write("hmac.key", &[0x5Au8; 32]);
    let (pubf, privf, ctx) = (dir.join("h.pub"), dir.join("h.priv"), dir.join("h.ctx"));
    let out = import_and_load(
        &server,
        &parent,
        ("hmac", &key, None),
        (&pubf, &privf, &ctx),
    );
    assert_eq!(printed_name(&out), name_of_public_file(&pubf));
}

fn import_software_duplicate_and_corruption(protocol: Protocol) {
    let server = started(protocol);
    let dir = TempDir::new("dup-soft");
    for alg in ["rsa", "ecc"] {
        // The parent's public area, and a duplication blob for it made
        // entirely by tpm2-tools (OpenSSL): seed encrypted to the parent
        // (OAEP or ECDH + KDFe, label "DUPLICATE"), outer wrap.
        let parent = primary(&server, &dir, &format!("{alg}-parent.ctx"), alg);
        let parent_pub = dir.join(&format!("{alg}-parent.pub"));
        server.ok("tpm2_readpublic", ["-c", p(&parent), "-o", p(&parent_pub)]);
        flush(&server);
        let pem = dir.join("k.pem");
        run_ok("openssl", &["genrsa", "-out", p(&pem), "2048"]);
        let (pubf, dpriv, seed) = (
            dir.join("kd.pub"),
            dir.join("kd.dpriv"),
            dir.join("kd.seed"),
        );
        soft_duplicate(&parent_pub, &pem, &pubf, &dpriv, &seed);
        let (privf, ctx) = (dir.join("kd.priv"), dir.join("kd.ctx"));
        let out = import_and_load(
            &server,
            &parent,
            ("rsa", &dpriv, Some(&seed)),
            (&pubf, &privf, &ctx),
        );
        assert_eq!(printed_name(&out), name_of_public_file(&pubf), "[{alg}]");
        let rp = server.ok("tpm2_readpublic", ["-c", p(&ctx)]);
        let modulus = run_ok("openssl", &["rsa", "-in", p(&pem), "-noout", "-modulus"]);
        let modulus = unhex(modulus.trim().strip_prefix("Modulus=").unwrap());
        assert_eq!(hex(&readpublic_hex(&rp, "rsa")), hex(&modulus), "[{alg}]");

        // One flipped bit anywhere in the blob (integrity HMAC, encrypted
        // sensitive area): TPM_RC_INTEGRITY on parameter 3 (duplicate).
        let blob = std::fs::read(&dpriv).unwrap();
        for at in [3, 40, blob.len() - 1] {
            let mut bad = blob.clone();
            bad[at] ^= 0x01;
            let bad_path = dir.write("bad.dpriv", &bad);
            let r = server.run(
                "tpm2_import",
                import_args(
                    &parent,
                    "rsa",
                    &bad_path,
                    Some(&seed),
                    &pubf,
                    &dir.join("bad.priv"),
                ),
            );
            flush(&server);
            assert_rc(&r, 0x3DF);
        }
        // A seed for another key: the HMAC key differs, TPM_RC_INTEGRITY.
        let other_seed = dir.join("other.seed");
        soft_duplicate(
            &parent_pub,
            &pem,
            &dir.join("other.pub"),
            &dir.join("other.dpriv"),
            &other_seed,
        );
        let r = server.run(
            "tpm2_import",
            import_args(
                &parent,
                "rsa",
                &dpriv,
                Some(&other_seed),
                &pubf,
                &dir.join("bad.priv"),
            ),
        );
        flush(&server);
        assert_rc(&r, 0x3DF);
    }
}

fn duplicate_between_two_tpms(protocol: Protocol) {
    let a = started(protocol);
    let b = started(protocol);
    let dir = TempDir::new("dup-two");
    let f = |n: &str| dir.join(n);

    // B: a storage parent under its SRK; its public area goes to A.
    let srk_b = primary(&b, &dir, "srk-b.ctx", "rsa");
    b.ok(
        "tpm2_create",
        [
            "-C",
            p(&srk_b),
            "-G",
            "ecc",
            "-r",
            p(&f("np.prv")),
            "-u",
            p(&f("np.pub")),
            "-a",
            "restricted|sensitivedataorigin|decrypt|userwithauth|fixedtpm|fixedparent",
        ],
    );
    flush(&b);

    // A: a duplicable key whose policy allows only TPM2_Duplicate.
    let s = f("session.ctx");
    a.ok("tpm2_startauthsession", ["-S", p(&s)]);
    a.ok(
        "tpm2_policycommandcode",
        ["-S", p(&s), "-L", p(&f("dpolicy.dat")), "TPM2_CC_Duplicate"],
    );
    a.ok("tpm2_flushcontext", [p(&s)]);
    assert_eq!(std::fs::read(f("dpolicy.dat")).unwrap(), duplicate_policy());
    let srk_a = primary(&a, &dir, "srk-a.ctx", "rsa");
    a.ok(
        "tpm2_create",
        [
            "-C",
            p(&srk_a),
            "-G",
            "rsa",
            "-p",
            "foo",
            "-r",
            p(&f("key.prv")),
            "-u",
            p(&f("key.pub")),
            "-L",
            p(&f("dpolicy.dat")),
            "-a",
            "sensitivedataorigin|userwithauth|decrypt|sign",
        ],
    );
    flush(&a);
    let out = load(&a, &srk_a, &f("key.pub"), &f("key.prv"), &f("key.ctx"));
    flush(&a);
    let key_name = printed_name(&out);
    assert_eq!(key_name, name_of_public_file(&f("key.pub")));
    a.ok(
        "tpm2_loadexternal",
        ["-C", "o", "-u", p(&f("np.pub")), "-c", p(&f("np-a.ctx"))],
    );
    flush(&a);
    load(&b, &srk_b, &f("np.pub"), &f("np.prv"), &f("np-b.ctx"));
    flush(&b);

    // DUP role: a password / HMAC authorization is refused
    // (TPM_RC_AUTH_UNAVAILABLE).
    let r = a.run(
        "tpm2_duplicate",
        [
            "-C",
            p(&f("np-a.ctx")),
            "-c",
            p(&f("key.ctx")),
            "-G",
            "null",
            "-p",
            "foo",
            "-r",
            p(&f("x.dpriv")),
            "-s",
            p(&f("x.seed")),
        ],
    );
    flush(&a);
    assert_rc(&r, 0x12F);

    // Duplicate on A with a policy session, import and load on B:
    // without an inner wrap, with one under a key A makes (-o), and under
    // a key the caller gives (-i).
    let given = dir.write("given.key", &[0xC3u8; 16]);
    for (i, (wrap, key_opt)) in [("null", None), ("aes", Some("-o")), ("aes", Some("-i"))]
        .into_iter()
        .enumerate()
    {
        let (dpriv, seed, inner) = (
            f(&format!("dup{i}.dpriv")),
            f(&format!("dup{i}.seed")),
            f(&format!("inner{i}.key")),
        );
        a.ok("tpm2_startauthsession", ["--policy-session", "-S", p(&s)]);
        a.ok("tpm2_policycommandcode", ["-S", p(&s), "TPM2_CC_Duplicate"]);
        let mut args = vec![
            "-C".to_string(),
            p(&f("np-a.ctx")).into(),
            "-c".into(),
            p(&f("key.ctx")).into(),
            "-G".into(),
            wrap.into(),
            "-p".into(),
            format!("session:{}", p(&s)),
            "-r".into(),
            p(&dpriv).into(),
            "-s".into(),
            p(&seed).into(),
        ];
        let inner_key = match key_opt {
            Some("-o") => Some(inner.clone()),
            Some(_) => Some(given.clone()),
            None => None,
        };
        if let (Some(opt), Some(k)) = (key_opt, &inner_key) {
            args.push(opt.into());
            args.push(p(k).into());
        }
        a.ok("tpm2_duplicate", &args);
        a.ok("tpm2_flushcontext", [p(&s)]);
        flush(&a);
        if key_opt == Some("-o") {
            assert_eq!(
                std::fs::read(&inner).unwrap().len(),
                16,
                "a new AES-128 key"
            );
        }

        let privf = f(&format!("key-b{i}.priv"));
        let mut args = vec![
            "-C".to_string(),
            p(&f("np-b.ctx")).into(),
            "-u".into(),
            p(&f("key.pub")).into(),
            "-i".into(),
            p(&dpriv).into(),
            "-r".into(),
            p(&privf).into(),
            "-s".into(),
            p(&seed).into(),
        ];
        if let Some(k) = &inner_key {
            args.push("-k".into());
            args.push(p(k).into());
        }
        b.ok("tpm2_import", &args);
        flush(&b);
        let out = load(&b, &f("np-b.ctx"), &f("key.pub"), &privf, &f("key-b.ctx"));
        flush(&b);
        assert_eq!(printed_name(&out), key_name, "[{wrap} {key_opt:?}]");

        // The wrong inner key: the inner integrity fails
        // (TPM_RC_INTEGRITY, parameter 3).
        if inner_key.is_some() {
            let wrong = dir.write("wrong.key", &[0x11u8; 16]);
            let mut args = args.clone();
            let last = args.len() - 1;
            args[last] = p(&wrong).into();
            let r = b.run("tpm2_import", &args);
            flush(&b);
            assert_rc(&r, 0x3DF);
        }
    }
}

/// Makes a credential for an AK under an EK with tpm2-tools' software
/// implementation and with the TPM's, and activates both on the TPM with a
/// PolicySecret(TPM_RH_ENDORSEMENT) session for the EK.
fn credential_flow(protocol: Protocol, alg: &str, ak_scheme: &str) {
    let server = started(protocol);
    let dir = TempDir::new("dup-cred");
    let f = |n: &str| dir.join(n);
    server.ok(
        "tpm2_createek",
        ["-c", p(&f("ek.ctx")), "-G", alg, "-u", p(&f("ek.pub"))],
    );
    flush(&server);
    // The EK's authPolicy is PolicySecret(TPM_RH_ENDORSEMENT); creating the
    // AK under it already needs policy sessions with TPM2_PolicySecret.
    server.ok(
        "tpm2_createak",
        [
            "-C",
            p(&f("ek.ctx")),
            "-c",
            p(&f("ak.ctx")),
            "-G",
            alg,
            "-g",
            "sha256",
            "-s",
            ak_scheme,
            "-u",
            p(&f("ak.pub")),
            "-n",
            p(&f("ak.name")),
        ],
    );
    flush(&server);
    let ak_name = name_of_public_file(&f("ak.pub"));
    assert_eq!(std::fs::read(f("ak.name")).unwrap(), ak_name);
    let secret = dir.write("secret.bin", b"vtpm credential 0123456789abcdef");

    // TPM2_ActivateCredential of `cred` into `out`, the EK authorized by
    // `ek_auth`; flushes.
    let activate_with = |cred: &Path, out: &Path, ek_auth: &[&str]| -> vtpm_tests::Run {
        let (ak, ek) = (f("ak.ctx"), f("ek.ctx"));
        let mut args = vec!["-c", p(&ak), "-C", p(&ek), "-i", p(cred), "-o", p(out)];
        args.extend(ek_auth);
        let r = server.run("tpm2_activatecredential", args);
        flush(&server);
        r
    };
    let activate = |cred: &Path, out: &Path| -> vtpm_tests::Run {
        let s = f("session.ctx");
        server.ok("tpm2_startauthsession", ["--policy-session", "-S", p(&s)]);
        server.ok("tpm2_policysecret", ["-S", p(&s), "-c", "e"]);
        let r = activate_with(cred, out, &["-P", &format!("session:{}", p(&s))]);
        server.ok("tpm2_flushcontext", [p(&s)]);
        r
    };

    // The credential made in software (the TPM absent).
    let cred = f("cred.out");
    offline(
        "tpm2_makecredential",
        &makecredential_args(&f("ek.pub"), &secret, &hex(&ak_name), &cred),
    );
    let out = f("act.out");
    let r = activate(&cred, &out);
    assert!(r.success(), "[{protocol}] {r}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&secret).unwrap()
    );

    // The credential made by the TPM (TPM2_LoadExternal of the EK's
    // public area, TPM2_MakeCredential).
    let cred2 = f("cred2.out");
    server.ok(
        "tpm2_makecredential",
        makecredential_args(&f("ek.pub"), &secret, &hex(&ak_name), &cred2),
    );
    flush(&server);
    let out2 = f("act2.out");
    let r = activate(&cred2, &out2);
    assert!(r.success(), "[{protocol}] {r}");
    assert_eq!(
        std::fs::read(&out2).unwrap(),
        std::fs::read(&secret).unwrap()
    );

    // A credential for another Name does not activate for this AK: the
    // outer HMAC covers the Name (TPM_RC_INTEGRITY, parameter 1).
    let mut other = ak_name.clone();
    let last = other.len() - 1;
    other[last] ^= 1;
    let cred3 = f("cred3.out");
    offline(
        "tpm2_makecredential",
        &makecredential_args(&f("ek.pub"), &secret, &hex(&other), &cred3),
    );
    let r = activate(&cred3, &f("act3.out"));
    assert_rc(&r, 0x1DF);

    // Without the EK's policy (a password for its USER role): refused.
    let r = activate_with(&cred, &f("act4.out"), &[]);
    assert_rc(&r, 0x12F);
}

/// `tpm2_makecredential` arguments: `secret` for the key Named `name`
/// (hex) under the EK whose public area is `ek_pub`, into `out`.
fn makecredential_args<'a>(
    ek_pub: &'a Path,
    secret: &'a Path,
    name: &'a str,
    out: &'a Path,
) -> [&'a str; 8] {
    ["-e", p(ek_pub), "-s", p(secret), "-n", name, "-o", p(out)]
}

fn credential_with_rsa_ek(protocol: Protocol) {
    credential_flow(protocol, "rsa", "rsassa");
}

fn credential_with_ecc_ek(protocol: Protocol) {
    credential_flow(protocol, "ecc", "ecdsa");
}
