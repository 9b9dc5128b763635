//! The asymmetric commands (TPM2_Sign, TPM2_VerifySignature,
//! TPM2_RSA_Encrypt / RSA_Decrypt, TPM2_ECDH_KeyGen / ECDH_ZGen,
//! TPM2_ECC_Parameters) of `vtpm serve`, driven by tpm2-tools and judged by
//! OpenSSL: signatures are verified with `openssl dgst` / `openssl pkeyutl`
//! on the public key tpm2_readpublic exports, ciphertexts made by OpenSSL
//! are decrypted by the TPM, raw RSA is compared with OpenSSL's, ECDH
//! secrets with `openssl pkeyutl -derive`, curve parameters with
//! `openssl ecparam`.
//!
//! tpm2-tools without a resource manager leaves every object it loads from
//! a context file in the TPM, so every tool run here is followed by
//! `tpm2_flushcontext -t`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Command;
use vtpm_tests::{Protocol, Run, Server, TOOL_TIMEOUT, hex, run_command};

use vtpm_tests::both;

both!(
    sign_rsa,
    sign_ecc,
    sign_restricted_needs_ticket,
    sign_hmac,
    rsa_encrypt_decrypt,
    ecdh,
    ecc_parameters,
);

/// Attributes of an unrestricted signing key.
const SIGN_ATTRS: &str = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign";
/// Attributes of an unrestricted decryption key.
const DECRYPT_ATTRS: &str = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|decrypt";

/// A started server with an ECC storage primary key in `primary.ctx`.
struct Tpm {
    server: Server,
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

impl Tpm {
    fn new(protocol: Protocol) -> Tpm {
        let server = Server::start(protocol);
        server.startup_clear();
        let tpm = Tpm { server };
        let primary = tpm.path("primary.ctx");
        tpm.ok(
            "tpm2_createprimary",
            &["-C", "o", "-G", "ecc", "-c", &s(&primary)],
        );
        tpm
    }

    fn path(&self, name: &str) -> PathBuf {
        self.server.dir().join(name)
    }

    fn p(&self, name: &str) -> String {
        s(&self.path(name))
    }

    fn read(&self, name: &str) -> Vec<u8> {
        self.server.dir().read(name)
    }

    fn write(&self, name: &str, content: &[u8]) -> String {
        s(&self.server.dir().write(name, content))
    }

    fn flush(&self) {
        self.server.ok("tpm2_flushcontext", ["-t"]);
    }

    /// Runs a tool, asserts success, flushes the transient objects.
    fn ok(&self, tool: &str, args: &[&str]) -> String {
        let r = self.server.run(tool, args);
        self.flush();
        assert!(
            r.success(),
            "[{}] expected success: {r}",
            self.server.protocol()
        );
        r.stdout
    }

    /// Runs a tool, asserts failure with `code` in its message (the TPM's
    /// response code as tss prints it, e.g. "0x2D2"), flushes.
    fn fails(&self, tool: &str, args: &[&str], code: &str) -> Run {
        let r = self.server.run(tool, args);
        self.flush();
        // A tool that fails leaves its HMAC session loaded.
        self.server.ok("tpm2_flushcontext", ["-l"]);
        assert!(
            !r.success(),
            "[{}] expected failure: {r}",
            self.server.protocol()
        );
        assert!(
            r.stderr
                .to_ascii_uppercase()
                .contains(&code.to_ascii_uppercase()),
            "[{}] expected TPM error {code}: {r}",
            self.server.protocol()
        );
        r
    }

    /// Creates and loads a child of the primary: `<name>.ctx`, and for
    /// RSA and ECC keys the public key as PEM in `<name>.pem`.
    fn key(&self, name: &str, alg: &str, attrs: Option<&str>) -> String {
        let (public, private, ctx) = (
            self.p(&format!("{name}.pub")),
            self.p(&format!("{name}.priv")),
            self.p(&format!("{name}.ctx")),
        );
        let primary = self.p("primary.ctx");
        let mut args = vec!["-C", &primary, "-G", alg, "-u", &public, "-r", &private];
        if let Some(a) = attrs {
            args.extend(["-a", a]);
        }
        self.ok("tpm2_create", &args);
        self.ok(
            "tpm2_load",
            &["-C", &primary, "-u", &public, "-r", &private, "-c", &ctx],
        );
        if alg.starts_with("rsa") || alg.starts_with("ecc") {
            let pem = self.p(&format!("{name}.pem"));
            self.ok("tpm2_readpublic", &["-c", &ctx, "-f", "pem", "-o", &pem]);
        }
        ctx
    }
}

/// Runs openssl with `args`.
fn openssl(args: &[&str]) -> Run {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    run_command(cmd, TOOL_TIMEOUT)
}

fn openssl_ok(args: &[&str]) -> String {
    let r = openssl(args);
    assert!(r.success(), "expected success: {r}");
    r.stdout
}

/// `openssl dgst -<hash> -verify pem -signature sig [sigopts] msg`.
fn dgst_verify(hash: &str, pem: &str, sig: &str, msg: &str, sigopts: &[&str]) -> Run {
    let hash = format!("-{hash}");
    let mut args = vec!["dgst", &hash, "-verify", pem, "-signature", sig];
    for o in sigopts {
        args.extend(["-sigopt", o]);
    }
    args.push(msg);
    openssl(&args)
}

/// A TPMT_TK_VERIFIED file: (tag, hierarchy, digest length).
fn parse_verified_ticket(bytes: &[u8]) -> (u16, u32, usize) {
    let tag = u16::from_be_bytes([bytes[0], bytes[1]]);
    let hierarchy = u32::from_be_bytes(bytes[2..6].try_into().unwrap());
    let n = usize::from(u16::from_be_bytes([bytes[6], bytes[7]]));
    assert_eq!(bytes.len(), 8 + n, "ticket file {bytes:02x?}");
    (tag, hierarchy, n)
}

/// Signs `msg` with tpm2_sign (`-f plain`, the format OpenSSL reads) and
/// as a TPMT_SIGNATURE; checks the plain signature with OpenSSL and the
/// TPMT_SIGNATURE with tpm2_verifysignature, then that both refuse a
/// tampered message.
fn sign_and_check(tpm: &Tpm, key: &str, hash: &str, scheme: Option<&str>, sigopts: &[&str]) {
    let tag = key
        .trim_end_matches(".ctx")
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let pem = key.replace(".ctx", ".pem");
    let msg = tpm.write(&format!("{tag}-msg"), b"the message to be signed\n");
    let tampered = tpm.write(&format!("{tag}-tampered"), b"the message to be signed!\n");
    let plain = tpm.p(&format!("{tag}-{hash}.sig"));
    let tss = tpm.p(&format!("{tag}-{hash}.tss"));
    let mut args = vec!["-c", key, "-g", hash];
    if let Some(s) = scheme {
        args.extend(["-s", s]);
    }
    let mut plain_args = args.clone();
    plain_args.extend(["-f", "plain", "-o", &plain, &msg]);
    tpm.ok("tpm2_sign", &plain_args);
    let r = dgst_verify(hash, &pem, &plain, &msg, sigopts);
    assert!(r.success(), "OpenSSL refuses the TPM's signature: {r}");
    let r = dgst_verify(hash, &pem, &plain, &tampered, sigopts);
    assert!(!r.success(), "OpenSSL accepts a tampered message: {r}");

    let mut tss_args = args.clone();
    tss_args.extend(["-o", &tss, &msg]);
    tpm.ok("tpm2_sign", &tss_args);
    let ticket = tpm.p(&format!("{tag}-{hash}.tk"));
    tpm.ok(
        "tpm2_verifysignature",
        &["-c", key, "-g", hash, "-m", &msg, "-s", &tss, "-t", &ticket],
    );
    // TPMT_TK_VERIFIED: TPM_ST_VERIFIED, the key's hierarchy (owner), an
    // HMAC of the context integrity hash (SHA-512).
    let (t, h, n) = parse_verified_ticket(&std::fs::read(&ticket).unwrap());
    assert_eq!((t, h, n), (0x8022, 0x4000_0001, 64));
    tpm.fails(
        "tpm2_verifysignature",
        &["-c", key, "-g", hash, "-m", &tampered, "-s", &tss],
        "0x2DB",
    );
}

fn sign_rsa(protocol: Protocol) {
    let tpm = Tpm::new(protocol);
    // tpm2-tools needs ":null" (no symmetric algorithm) spelled out for
    // PSS and restricted keys.
    let ssa = tpm.key("rsassa", "rsa2048:rsassa-sha256:null", None);
    sign_and_check(&tpm, &ssa, "sha256", None, &[]);
    let pss = tpm.key("rsapss", "rsa2048:rsapss-sha256:null", None);
    sign_and_check(
        &tpm,
        &pss,
        "sha256",
        Some("rsapss"),
        &["rsa_padding_mode:pss", "rsa_pss_saltlen:-2"],
    );
    // PSS salt: the digest size (what the reference implementation uses),
    // checked with an explicit salt length.
    let plain = tpm.p("rsapss-sha256.sig");
    let digest = tpm.write("rsapss-digest", &sha256(&tpm.read("rsapss-msg")));
    openssl_ok(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        &pss.replace(".ctx", ".pem"),
        "-in",
        &digest,
        "-sigfile",
        &plain,
        "-pkeyopt",
        "digest:sha256",
        "-pkeyopt",
        "rsa_padding_mode:pss",
        "-pkeyopt",
        "rsa_pss_saltlen:32",
    ]);
    // A key without a scheme: the caller's scheme and hash decide.
    let any = tpm.key("rsaany", "rsa2048:null:null", Some(SIGN_ATTRS));
    sign_and_check(&tpm, &any, "sha384", Some("rsassa"), &[]);
    sign_and_check(
        &tpm,
        &any,
        "sha512",
        Some("rsapss"),
        &["rsa_padding_mode:pss", "rsa_pss_saltlen:-2"],
    );
    // (tpm2-tools refuses schemes and hashes other than a key's own before
    // sending TPM2_Sign; the engine's unit tests send those.)
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

fn sign_ecc(protocol: Protocol) {
    let tpm = Tpm::new(protocol);
    let p256 = tpm.key("p256", "ecc256:ecdsa-sha256", None);
    sign_and_check(&tpm, &p256, "sha256", None, &[]);
    let p384 = tpm.key("p384", "ecc384:ecdsa-sha384", None);
    sign_and_check(&tpm, &p384, "sha384", None, &[]);
    // A P-384 key without a scheme signs SHA-256 and SHA-512 digests.
    let any = tpm.key("p384any", "ecc384:null:null", Some(SIGN_ATTRS));
    sign_and_check(&tpm, &any, "sha256", Some("ecdsa"), &[]);
    sign_and_check(&tpm, &any, "sha512", Some("ecdsa"), &[]);
    // An ECDSA key asked for RSASSA: TPM_RC_SCHEME.
    let msg = tpm.p("p256-msg");
    tpm.fails(
        "tpm2_sign",
        &[
            "-c",
            &any,
            "-g",
            "sha256",
            "-s",
            "rsassa",
            "-o",
            &tpm.p("x.sig"),
            &msg,
        ],
        "0x2D2",
    );
    // A decryption key does not sign: TPM_RC_KEY (handle 1).
    let dec = tpm.key("p256dec", "ecc256:null:null", Some(DECRYPT_ATTRS));
    tpm.fails(
        "tpm2_sign",
        &[
            "-c",
            &dec,
            "-g",
            "sha256",
            "-s",
            "ecdsa",
            "-o",
            &tpm.p("x.sig"),
            &msg,
        ],
        "0x19C",
    );
}

fn sign_restricted_needs_ticket(protocol: Protocol) {
    let tpm = Tpm::new(protocol);
    let key = tpm.key(
        "restricted",
        "rsa2048:rsassa-sha256:null",
        Some("fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign"),
    );
    let pem = key.replace(".ctx", ".pem");
    let msg = tpm.write("msg", b"data for a restricted key\n");
    let digest = tpm.write("digest", &sha256(&tpm.read("msg")));
    // A digest without a ticket: TPM_RC_TICKET (parameter 3).
    // tpm2_sign of a digest with `ticket` args: TPM_RC_TICKET (parameter 3).
    let sign_digest_fails = |ticket: &[&str], digest: &str| {
        let x = tpm.p("x.sig");
        let mut a = vec!["-c", key.as_str(), "-g", "sha256", "-d"];
        a.extend(ticket);
        a.extend(["-o", &x, digest]);
        tpm.fails("tpm2_sign", &a, "0x3E0");
    };
    sign_digest_fails(&[], &digest);
    // TPM2_Hash makes the ticket; with it the digest is signed.
    let (hashed, ticket) = (tpm.p("hashed"), tpm.p("ticket"));
    tpm.ok(
        "tpm2_hash",
        &[
            "-C", "o", "-g", "sha256", "-o", &hashed, "-t", &ticket, &msg,
        ],
    );
    assert_eq!(tpm.read("hashed"), tpm.read("digest"));
    let sig = tpm.p("ticket.sig");
    tpm.ok(
        "tpm2_sign",
        &[
            "-c", &key, "-g", "sha256", "-d", "-t", &ticket, "-f", "plain", "-o", &sig, &hashed,
        ],
    );
    assert!(dgst_verify("sha256", &pem, &sig, &msg, &[]).success());
    // A ticket for other data does not do.
    let other = tpm.write("other", b"other data\n");
    let other_ticket = tpm.p("other-ticket");
    tpm.ok(
        "tpm2_hash",
        &[
            "-C",
            "o",
            "-g",
            "sha256",
            "-o",
            &tpm.p("other-hashed"),
            "-t",
            &other_ticket,
            &other,
        ],
    );
    sign_digest_fails(&["-t", &other_ticket], &hashed);
    // tpm2_sign on a message hashes it with the TPM and uses the ticket.
    let sig2 = tpm.p("message.sig");
    tpm.ok(
        "tpm2_sign",
        &["-c", &key, "-g", "sha256", "-f", "plain", "-o", &sig2, &msg],
    );
    assert!(dgst_verify("sha256", &pem, &sig2, &msg, &[]).success());
    // Data that starts with TPM_GENERATED_VALUE gets no ticket: a
    // restricted key never signs what could pass for a TPM attestation.
    let forged = tpm.write("forged", b"\xffTCG\x80\x18 a forged quote");
    tpm.fails(
        "tpm2_sign",
        &["-c", &key, "-g", "sha256", "-o", &tpm.p("x.sig"), &forged],
        "0x3E0",
    );
}

fn sign_hmac(protocol: Protocol) {
    // tpm2_create cannot give a keyed-hash signing key chosen bits (-i is
    // for sealed data only), so the HMAC itself is checked by the engine's
    // unit tests; here: the TPMT_SIGNATURE layout, determinism and
    // verification.
    let tpm = Tpm::new(protocol);
    let key = tpm.key("hmac", "hmac", None);
    let msg = tpm.write("msg", b"a message for HMAC\n");
    let (a, b) = (tpm.p("a.sig"), tpm.p("b.sig"));
    tpm.ok("tpm2_sign", &["-c", &key, "-g", "sha256", "-o", &a, &msg]);
    tpm.ok("tpm2_sign", &["-c", &key, "-g", "sha256", "-o", &b, &msg]);
    let sig = tpm.read("a.sig");
    assert_eq!(
        &sig[..4],
        &[0x00, 0x05, 0x00, 0x0B],
        "TPM_ALG_HMAC, SHA-256"
    );
    assert_eq!(sig.len(), 4 + 32);
    assert_eq!(sig, tpm.read("b.sig"), "an HMAC is deterministic");
    let ticket = tpm.p("hmac.tk");
    tpm.ok(
        "tpm2_verifysignature",
        &[
            "-c", &key, "-g", "sha256", "-m", &msg, "-s", &a, "-t", &ticket,
        ],
    );
    let (t, h, n) = parse_verified_ticket(&tpm.read("hmac.tk"));
    assert_eq!((t, h, n), (0x8022, 0x4000_0001, 64));
    let tampered = tpm.write("tampered", b"a message for HMAC!\n");
    tpm.fails(
        "tpm2_verifysignature",
        &["-c", &key, "-g", "sha256", "-m", &tampered, "-s", &a],
        "0x2DB",
    );
    let mut bad = sig.clone();
    bad[20] ^= 1;
    let bad = tpm.write("bad.sig", &bad);
    tpm.fails(
        "tpm2_verifysignature",
        &["-c", &key, "-g", "sha256", "-m", &msg, "-s", &bad],
        "0x2DB",
    );
}

fn rsa_encrypt_decrypt(protocol: Protocol) {
    let tpm = Tpm::new(protocol);
    let key = tpm.key("rsa", "rsa2048:null:null", Some(DECRYPT_ATTRS));
    let pem = key.replace(".ctx", ".pem");
    let plain = tpm.write("plain", b"a secret for the TPM\n");
    let decrypt = |cipher: &str, args: &[&str]| -> Vec<u8> {
        let out = tpm.p("decrypted");
        let mut a = vec!["-c", key.as_str(), "-o", &out];
        a.extend(args);
        a.push(cipher);
        tpm.ok("tpm2_rsadecrypt", &a);
        tpm.read("decrypted")
    };
    let secret = tpm.read("plain");
    // `openssl pkeyutl -encrypt` with the key's public PEM and `-pkeyopt`s.
    let encrypt_with_openssl = |input: &str, out: &str, pkeyopts: &[&str]| {
        let mut a = vec!["pkeyutl", "-encrypt", "-pubin", "-inkey", &pem];
        a.extend(["-in", input, "-out", out]);
        for o in pkeyopts {
            a.extend(["-pkeyopt", o]);
        }
        openssl_ok(&a);
    };
    // tpm2_rsadecrypt with `args` must fail with TPM_RC_VALUE (parameter 1).
    let decrypt_fails = |cipher: &str, args: &[&str]| {
        let x = tpm.p("x");
        let mut a = vec!["-c", key.as_str()];
        a.extend(args);
        a.extend(["-o", &x, cipher]);
        tpm.fails("tpm2_rsadecrypt", &a, "0x1C4");
    };

    // (a) OpenSSL encrypts, the TPM decrypts: OAEP-SHA256 without and with
    // a label (the TPM's labels end with a zero octet, which tpm2-tools
    // appends), and PKCS#1 v1.5.
    let c1 = tpm.p("c1");
    encrypt_with_openssl(
        &plain,
        &c1,
        &["rsa_padding_mode:oaep", "rsa_oaep_md:sha256"],
    );
    assert_eq!(decrypt(&c1, &["-s", "oaep"]), secret);
    let label = format!("rsa_oaep_label:{}", hex(b"my label\0"));
    let c2 = tpm.p("c2");
    encrypt_with_openssl(
        &plain,
        &c2,
        &["rsa_padding_mode:oaep", "rsa_oaep_md:sha256", &label],
    );
    assert_eq!(decrypt(&c2, &["-s", "oaep", "-l", "my label"]), secret);
    decrypt_fails(&c2, &["-s", "oaep"]);
    decrypt_fails(&c2, &["-s", "oaep", "-l", "another"]);
    // A label without its terminating zero is another label.
    let c2b = tpm.p("c2b");
    let label = format!("rsa_oaep_label:{}", hex(b"my label"));
    encrypt_with_openssl(
        &plain,
        &c2b,
        &["rsa_padding_mode:oaep", "rsa_oaep_md:sha256", &label],
    );
    decrypt_fails(&c2b, &["-s", "oaep", "-l", "my label"]);
    let c3 = tpm.p("c3");
    encrypt_with_openssl(&plain, &c3, &["rsa_padding_mode:pkcs1"]);
    assert_eq!(decrypt(&c3, &["-s", "rsaes"]), secret);

    // (b) TPM round trips.
    let c4 = tpm.p("c4");
    tpm.ok(
        "tpm2_rsaencrypt",
        &["-c", &key, "-s", "oaep", "-l", "lbl", "-o", &c4, &plain],
    );
    assert_eq!(tpm.read("c4").len(), 256);
    assert_eq!(decrypt(&c4, &["-s", "oaep", "-l", "lbl"]), secret);
    let c5 = tpm.p("c5");
    tpm.ok(
        "tpm2_rsaencrypt",
        &["-c", &key, "-s", "rsaes", "-o", &c5, &plain],
    );
    assert_eq!(decrypt(&c5, &["-s", "rsaes"]), secret);
    let first = tpm.read("c5");
    tpm.ok(
        "tpm2_rsaencrypt",
        &["-c", &key, "-s", "rsaes", "-o", &c5, &plain],
    );
    assert_ne!(first, tpm.read("c5"), "PKCS#1 v1.5 padding is random");

    // (c) Raw RSA (no scheme on either side): the same as OpenSSL's
    // m^e mod n of the message left-padded to the modulus size.
    let c6 = tpm.p("c6");
    tpm.ok(
        "tpm2_rsaencrypt",
        &["-c", &key, "-s", "null", "-o", &c6, &plain],
    );
    let mut padded = vec![0u8; 256 - secret.len()];
    padded.extend(&secret);
    let padded_file = tpm.write("padded", &padded);
    let c7 = tpm.p("c7");
    encrypt_with_openssl(&padded_file, &c7, &["rsa_padding_mode:none"]);
    assert_eq!(tpm.read("c6"), tpm.read("c7"));
    assert_eq!(decrypt(&c6, &["-s", "null"]), padded);

    // A key with an OAEP scheme uses it when the caller names none, and
    // refuses another scheme (TPM_RC_SCHEME, parameter 2).
    let oaep = tpm.key("oaep", "rsa2048:oaep-sha256:null", Some(DECRYPT_ATTRS));
    let c8 = tpm.p("c8");
    openssl_ok(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        &oaep.replace(".ctx", ".pem"),
        "-in",
        &plain,
        "-out",
        &c8,
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
    ]);
    let out = tpm.p("decrypted8");
    tpm.ok(
        "tpm2_rsadecrypt",
        &["-c", &oaep, "-s", "null", "-o", &out, &c8],
    );
    assert_eq!(tpm.read("decrypted8"), secret);
    tpm.fails(
        "tpm2_rsadecrypt",
        &["-c", &oaep, "-s", "rsaes", "-o", &out, &c8],
        "0x2D2",
    );
    // A signing key does not decrypt: TPM_RC_ATTRIBUTES (handle 1).
    let signer = tpm.key("signer", "rsa2048:rsassa-sha256:null", None);
    tpm.fails(
        "tpm2_rsadecrypt",
        &["-c", &signer, "-s", "rsaes", "-o", &out, &c5],
        "0x182",
    );
}

/// A TPM2B_ECC_POINT file: (x, y).
fn parse_point(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let size = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    assert_eq!(bytes.len(), 2 + size);
    let nx = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    let x = bytes[4..4 + nx].to_vec();
    let ny = usize::from(u16::from_be_bytes([bytes[4 + nx], bytes[5 + nx]]));
    let y = bytes[6 + nx..6 + nx + ny].to_vec();
    assert_eq!(6 + nx + ny, bytes.len());
    (x, y)
}

fn point_file(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut inner = (x.len() as u16).to_be_bytes().to_vec();
    inner.extend(x);
    inner.extend((y.len() as u16).to_be_bytes());
    inner.extend(y);
    let mut v = (inner.len() as u16).to_be_bytes().to_vec();
    v.extend(inner);
    v
}

fn ecdh(protocol: Protocol) {
    let tpm = Tpm::new(protocol);
    for (name, alg, openssl_curve, size) in [
        ("p256", "ecc256:ecdh-sha256", "P-256", 32),
        ("p384", "ecc384:null:null", "P-384", 48),
    ] {
        let key = tpm.key(name, alg, Some(DECRYPT_ATTRS));
        // KeyGen: Z = de·Q and Qe = de·G; ZGen(Qe) = d·Qe = Z.
        let (q, z) = (tpm.p(&format!("{name}.Qe")), tpm.p(&format!("{name}.Z")));
        tpm.ok("tpm2_ecdhkeygen", &["-c", &key, "-u", &q, "-o", &z]);
        let z2 = tpm.p(&format!("{name}.Z2"));
        tpm.ok("tpm2_ecdhzgen", &["-c", &key, "-u", &q, "-o", &z2]);
        let zpoint = tpm.read(&format!("{name}.Z"));
        assert_eq!(zpoint, tpm.read(&format!("{name}.Z2")));
        let (zx, zy) = parse_point(&zpoint);
        assert_eq!((zx.len(), zy.len()), (size, size));
        // ZGen against an OpenSSL key: its x is the secret
        // `openssl pkeyutl -derive` computes from the OpenSSL private key
        // and the TPM key's public key.
        let peer = tpm.p(&format!("{name}-peer.pem"));
        openssl_ok(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &format!("ec_paramgen_curve:{openssl_curve}"),
            "-out",
            &peer,
        ]);
        let der = tpm.p(&format!("{name}-peer.der"));
        openssl_ok(&[
            "pkey", "-in", &peer, "-pubout", "-outform", "DER", "-out", &der,
        ]);
        let der = tpm.read(&format!("{name}-peer.der"));
        let sec1 = &der[der.len() - (1 + 2 * size)..];
        assert_eq!(sec1[0], 4, "uncompressed point");
        let peer_point = tpm.write(
            &format!("{name}-peer.point"),
            &point_file(&sec1[1..1 + size], &sec1[1 + size..]),
        );
        let z3 = tpm.p(&format!("{name}.Z3"));
        tpm.ok("tpm2_ecdhzgen", &["-c", &key, "-u", &peer_point, "-o", &z3]);
        let (x3, _) = parse_point(&tpm.read(&format!("{name}.Z3")));
        let shared = tpm.p(&format!("{name}.shared"));
        openssl_ok(&[
            "pkeyutl",
            "-derive",
            "-inkey",
            &peer,
            "-peerkey",
            &key.replace(".ctx", ".pem"),
            "-out",
            &shared,
        ]);
        assert_eq!(hex(&x3), hex(&tpm.read(&format!("{name}.shared"))));
        // A point off the curve: TPM_RC_ECC_POINT (parameter 1).
        let mut y = sec1[1 + size..].to_vec();
        y[size - 1] ^= 1;
        let off = tpm.write("off.point", &point_file(&sec1[1..1 + size], &y));
        tpm.fails(
            "tpm2_ecdhzgen",
            &["-c", &key, "-u", &off, "-o", &tpm.p("x")],
            "0x1E7",
        );
    }
    // ZGen needs a decryption key: a signing key is TPM_RC_ATTRIBUTES.
    let signer = tpm.key("signer", "ecc256:ecdsa-sha256", None);
    tpm.fails(
        "tpm2_ecdhzgen",
        &["-c", &signer, "-u", &tpm.p("p256.Qe"), "-o", &tpm.p("x")],
        "0x182",
    );
}

/// `openssl ecparam -param_enc explicit -text` fields as bytes, without
/// the leading zero octet OpenSSL prints for positive numbers.
fn openssl_curve(name: &str, size: usize) -> Vec<(String, Vec<u8>)> {
    let text = openssl_ok(&[
        "ecparam",
        "-name",
        name,
        "-param_enc",
        "explicit",
        "-text",
        "-noout",
    ]);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with("    ") {
            if let Some(last) = fields.last_mut() {
                last.1.push_str(&line.trim().replace(':', ""));
            }
        } else if let Some((k, v)) = line.split_once(':') {
            fields.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    fields
        .into_iter()
        .filter_map(|(k, v)| {
            let key = k.split_whitespace().next().unwrap().to_owned();
            match key.as_str() {
                "Prime" | "A" | "B" | "Order" => {
                    let bytes = vtpm_tests::unhex(&v);
                    Some((key, bytes[bytes.len() - size..].to_vec()))
                }
                "Generator" => Some((key, vtpm_tests::unhex(&v))),
                _ => None,
            }
        })
        .collect()
}

fn ecc_parameters(protocol: Protocol) {
    let tpm = Tpm::new(protocol);
    for (tool_name, openssl_name, id, size) in [
        ("ecc256", "prime256v1", 3u16, 32usize),
        ("ecc384", "secp384r1", 4, 48),
    ] {
        let out = tpm.p(tool_name);
        tpm.ok("tpm2_geteccparameters", &[tool_name, "-o", &out]);
        let detail = tpm.read(tool_name);
        // TPMS_ALGORITHM_DETAIL_ECC: curveID, keySize, kdf, sign, then
        // p, a, b, gX, gY, n, h as TPM2Bs.
        assert_eq!(u16::from_be_bytes([detail[0], detail[1]]), id);
        assert_eq!(
            usize::from(u16::from_be_bytes([detail[2], detail[3]])),
            size * 8
        );
        assert_eq!(&detail[4..8], &[0, 0x10, 0, 0x10], "kdf and sign NULL");
        let mut rest = &detail[8..];
        let mut values = Vec::new();
        for _ in 0..7 {
            let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            values.push(rest[2..2 + n].to_vec());
            rest = &rest[2 + n..];
        }
        assert!(rest.is_empty());
        let expected = openssl_curve(openssl_name, size);
        let get = |k: &str| expected.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(values[0], get("Prime"), "{tool_name} p");
        assert_eq!(values[1], get("A"), "{tool_name} a");
        assert_eq!(values[2], get("B"), "{tool_name} b");
        let mut g = vec![4u8];
        g.extend(&values[3]);
        g.extend(&values[4]);
        assert_eq!(g, get("Generator"), "{tool_name} G");
        assert_eq!(values[5], get("Order"), "{tool_name} n");
        assert_eq!(values[6], [1], "{tool_name} h");
    }
    // An unimplemented curve: TPM_RC_CURVE (parameter 1).
    tpm.fails(
        "tpm2_geteccparameters",
        &["ecc521", "-o", &tpm.p("x")],
        "0x1E6",
    );
}
