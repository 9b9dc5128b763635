//! Lifecycle commands: `vtpm ca init`, `vtpm create`, `vtpm inspect`.
//!
//! Judges are independent of vtpm: OpenSSL verifies the EK certificates
//! against the CA and prints their extensions; tpm2-tools (`tpm2_createek`
//! with the same default templates, `tpm2_nvread`, `tpm2_nvreadpublic`,
//! `tpm2_getcap`, `tpm2_readpublic`) read the created state through
//! `vtpm serve`; Python's hmac module recomputes the state key id
//! (HKDF-Expand, docs/state-file.md) and parses `inspect --json`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use vtpm_tests::path_str as p;
use vtpm_tests::{
    Protocol, Run, ServeOptions, Server, TempDir, require_tpm2_tools, run_command, unhex, vtpm_bin,
};

const TIMEOUT: Duration = Duration::from_secs(120);

fn vtpm<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(args: I) -> Run {
    let mut cmd = Command::new(vtpm_bin());
    cmd.args(args);
    run_command(cmd, TIMEOUT)
}

fn vtpm_ok<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(args: I) -> String {
    let r = vtpm(args);
    assert!(r.success(), "expected success: {r}");
    r.stdout
}

fn tool<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(prog: &str, args: I) -> Run {
    let mut cmd = Command::new(prog);
    cmd.args(args);
    run_command(cmd, TIMEOUT)
}

fn tool_ok<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(prog: &str, args: I) -> String {
    let r = tool(prog, args);
    assert!(r.success(), "expected success: {r}");
    r.stdout
}

/// `cmd… --state <state> --key-file <key> rest…` (clap takes the options
/// in any order).
fn on_state(cmd: &[&str], state: &str, key: &str, rest: &[&str]) -> Vec<String> {
    let mut args: Vec<&str> = cmd.to_vec();
    args.extend(["--state", state, "--key-file", key]);
    args.extend(rest);
    args.into_iter().map(str::to_string).collect()
}

/// `clone --from <from> --key-file <key> rest…`.
fn clone_args(from: &str, key: &str, rest: &[&str]) -> Vec<String> {
    let mut args = vec!["clone", "--from", from, "--key-file", key];
    args.extend(rest);
    args.into_iter().map(str::to_string).collect()
}

/// `tpm2_createek -G rsa` arguments: the EK's public key as PEM in `pem`,
/// its context in `ctx`.
fn createek_rsa_args<'a>(pem: &'a str, ctx: &'a str) -> [&'a str; 8] {
    ["-G", "rsa", "-u", pem, "-f", "pem", "-c", ctx]
}

/// One-line error on stderr, failure status, nothing on stdout.
fn assert_one_line_error(r: &Run, needle: &str) {
    assert!(!r.success(), "expected failure: {r}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one error line: {r}");
    assert!(
        lines[0].to_lowercase().contains(&needle.to_lowercase()),
        "expected the error to mention {needle:?}: {r}"
    );
}

/// A working directory with a state key and a CA.
struct Setup {
    dir: TempDir,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        let dir = TempDir::new(tag);
        let mut key = [0u8; 32];
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut key)
            .unwrap();
        let p = dir.write("state.key", &key);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        Setup { dir }
    }
    fn key(&self) -> PathBuf {
        self.dir.join("state.key")
    }
    fn ca(&self) -> PathBuf {
        self.dir.join("ca")
    }
    fn state(&self) -> PathBuf {
        self.dir.join("tpm/vtpm.state")
    }
    fn p(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
    /// `openssl verify` of the certificate `pem` against the CA.
    fn verify_cert(&self, pem: &str) {
        let ca_pem = self.ca().join("ca.pem");
        tool_ok("openssl", ["verify", "-CAfile", p(&ca_pem), pem]);
    }
    fn ca_init(&self) {
        vtpm_ok(["ca", "init", "--dir", &self.ca().display().to_string()]);
    }
    fn create(&self, extra: &[&str]) -> String {
        let (state, key) = (self.state(), self.key());
        vtpm_ok(on_state(&["create"], p(&state), p(&key), extra))
    }
    fn serve(&self) -> Server {
        let server = ServeOptions::new(Protocol::Swtpm)
            .args([
                "--state".to_string(),
                self.state().display().to_string(),
                "--key-file".into(),
                self.key().display().to_string(),
            ])
            .start();
        server.startup_clear();
        server
    }
}

/// The public key of persistent object `handle` as PEM
/// (`tpm2_readpublic -f pem` into `out`).
fn persistent_pem(server: &Server, handle: &str, out: &str) -> String {
    server.ok("tpm2_readpublic", ["-c", handle, "-f", "pem", "-o", out]);
    std::fs::read_to_string(out).unwrap()
}

/// `openssl x509 -text` of a PEM file.
fn x509_text(pem: &str) -> String {
    tool_ok("openssl", ["x509", "-in", pem, "-noout", "-text"])
}

/// The public key (PEM) in a certificate.
fn cert_pubkey(pem: &str) -> String {
    tool_ok("openssl", ["x509", "-in", pem, "-noout", "-pubkey"])
}

/// Reads an NV index with tpm2_nvread and writes it as PEM to `pem`.
fn read_cert(server: &Server, index: &str, auth: &str, der: &str, pem: &str) {
    server.ok("tpm2_nvread", [index, "-C", auth, "-o", der]);
    tool_ok(
        "openssl",
        ["x509", "-inform", "der", "-in", der, "-out", pem],
    );
}

/// The text after `label` on the next line of openssl's output.
fn line_after(text: &str, label: &str) -> String {
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.contains(label) {
            return lines.next().unwrap_or("").trim().to_string();
        }
    }
    panic!("{label} not found in:\n{text}");
}

#[test]
fn ca_init_writes_a_root_ca() {
    let s = Setup::new("life-ca");
    s.ca_init();
    let key = s.ca().join("ca-key.pem");
    let cert = s.ca().join("ca.pem");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "CA key mode");
    let key_s = key.display().to_string();
    let cert_s = cert.display().to_string();
    // PKCS#8 and a P-384 key, as OpenSSL reads it.
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    let k = tool_ok("openssl", ["pkey", "-in", &key_s, "-noout", "-text"]);
    assert!(
        k.contains("NIST CURVE: P-384") || k.contains("secp384r1"),
        "{k}"
    );
    // Self-signed: verifies against itself.
    tool_ok("openssl", ["verify", "-CAfile", &cert_s, &cert_s]);
    let text = x509_text(&cert_s);
    assert!(text.contains("Version: 3 (0x2)"), "{text}");
    assert!(
        text.contains("X509v3 Basic Constraints: critical"),
        "{text}"
    );
    assert_eq!(line_after(&text, "X509v3 Basic Constraints"), "CA:TRUE");
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert_eq!(
        line_after(&text, "X509v3 Key Usage"),
        "Certificate Sign, CRL Sign"
    );
    assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
    assert!(text.contains("Issuer: CN = vtpm local EK CA"), "{text}");
    assert!(text.contains("Subject: CN = vtpm local EK CA"), "{text}");
    // The certificate's key is the key file's.
    let from_key = tool_ok("openssl", ["pkey", "-in", &key_s, "-pubout"]);
    assert_eq!(cert_pubkey(&cert_s), from_key);

    // A second init changes nothing.
    let before = (std::fs::read(&key).unwrap(), std::fs::read(&cert).unwrap());
    let r = vtpm(["ca", "init", "--dir", &s.ca().display().to_string()]);
    assert_one_line_error(&r, "already exists");
    assert_eq!(
        before,
        (std::fs::read(&key).unwrap(), std::fs::read(&cert).unwrap())
    );
}

#[test]
fn ca_init_rsa3072_with_subject() {
    let s = Setup::new("life-ca-rsa");
    vtpm_ok([
        "ca",
        "init",
        "--dir",
        &s.ca().display().to_string(),
        "--alg",
        "rsa3072",
        "--subject",
        "CN=Test EK CA,O=Example",
    ]);
    let cert_s = s.ca().join("ca.pem").display().to_string();
    tool_ok("openssl", ["verify", "-CAfile", &cert_s, &cert_s]);
    let text = x509_text(&cert_s);
    assert!(text.contains("Public-Key: (3072 bit)"), "{text}");
    assert!(text.contains("sha256WithRSAEncryption"), "{text}");
    // RFC 4514 order: the last RDN of the string is the first in DER.
    assert!(
        text.contains("Subject: O = Example, CN = Test EK CA"),
        "{text}"
    );
}

#[test]
fn create_issues_ek_certificates_openssl_and_tpm2_tools_agree() {
    require_tpm2_tools();
    let s = Setup::new("life-create");
    s.ca_init();
    let out = s.create(&[
        "--ca",
        &s.ca().display().to_string(),
        "--persist-ek",
        "--persist-srk",
    ]);
    assert!(
        out.contains("0x01c00002") && out.contains("0x01c0000a"),
        "{out}"
    );
    let server = s.serve();
    let ca_pem = s.ca().join("ca.pem").display().to_string();
    let ca_text = x509_text(&ca_pem);
    let ca_ski = line_after(&ca_text, "X509v3 Subject Key Identifier");

    for (index, auth, alg, usage) in [
        ("0x1c00002", "o", "rsa", "Key Encipherment"),
        ("0x1c0000a", "0x1c0000a", "ecc", "Key Agreement"),
    ] {
        let der = s.p(&format!("ek-{alg}.der"));
        let pem = s.p(&format!("ek-{alg}.pem"));
        read_cert(&server, index, auth, &der, &pem);
        tool_ok("openssl", ["verify", "-CAfile", &ca_pem, &pem]);
        let text = x509_text(&pem);
        assert!(text.contains("Version: 3 (0x2)"), "{text}");
        assert!(text.contains("Issuer: CN = vtpm local EK CA"), "{text}");
        // Empty subject, so a critical subjectAltName.
        assert!(
            text.contains("Subject: \n") || text.contains("Subject:\n"),
            "{text}"
        );
        assert!(
            text.contains("X509v3 Subject Alternative Name: critical"),
            "{text}"
        );
        let san = line_after(&text, "X509v3 Subject Alternative Name");
        assert_eq!(
            san,
            "DirName:/2.23.133.2.1=id:5654504D/2.23.133.2.2=vtpm virtual/2.23.133.2.3=id:00000001"
        );
        assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
        assert_eq!(line_after(&text, "X509v3 Key Usage"), usage);
        assert!(
            text.contains("X509v3 Basic Constraints: critical"),
            "{text}"
        );
        assert_eq!(line_after(&text, "X509v3 Basic Constraints"), "CA:FALSE");
        assert_eq!(
            line_after(&text, "X509v3 Extended Key Usage"),
            "2.23.133.8.1"
        );
        assert!(
            text.contains("X509v3 Subject Directory Attributes"),
            "{text}"
        );
        assert_eq!(
            line_after(&text, "X509v3 Authority Key Identifier").trim_start_matches("keyid:"),
            ca_ski
        );
        // The key tpm2_createek derives from the same seed and default
        // template is the certificate's.
        let ekpub = s.p(&format!("createek-{alg}.pem"));
        let ctx = s.p(&format!("createek-{alg}.ctx"));
        server.ok(
            "tpm2_createek",
            ["-G", alg, "-u", &ekpub, "-f", "pem", "-c", &ctx],
        );
        assert_eq!(
            cert_pubkey(&pem),
            std::fs::read_to_string(&ekpub).unwrap(),
            "{alg}: the certificate's key is not tpm2_createek's"
        );
        server.ok("tpm2_flushcontext", ["-t"]);
    }
    // The persistent EK is the same key.
    assert_eq!(
        persistent_pem(&server, "0x81010001", &s.p("persistent-ek.pem")),
        cert_pubkey(&s.p("ek-rsa.pem"))
    );
    let handles = server.ok("tpm2_getcap", ["handles-persistent"]);
    for h in ["0x81000001", "0x81010001", "0x81010002"] {
        assert!(handles.contains(h), "{h} missing: {handles}");
    }
    // NV attributes as chosen (swtpm_setup's, without writedefine).
    let nvpub = server.ok("tpm2_nvreadpublic", ["0x1c00002"]);
    assert!(
        nvpub.contains("ppwrite|ppread|ownerread|authread|no_da|written|platformcreate"),
        "{nvpub}"
    );
}

/// PolicyB with SHA-384 (EK Credential Profile B.4): PolicyOR of PolicyA =
/// PolicySecret(TPM_RH_ENDORSEMENT), computed here from the Part 3
/// formulas, and PolicyC = PolicyAuthorizeNV(0x01C07F02) as the profile
/// publishes it.
fn policy_b_sha384() -> Vec<u8> {
    use sha2::{Digest, Sha384};
    let mut a = Sha384::new();
    a.update([0u8; 48]);
    a.update(0x151u32.to_be_bytes());
    a.update(0x4000_000Bu32.to_be_bytes());
    let a = Sha384::digest(a.finalize());
    let c = unhex(
        "d6032ce61f2fb3c240eb3cf6a33237ef2b6a16f4293c22b455e261cffd217ad5\
         b4947c2d73e63005eed2dc2b3593d165",
    );
    let mut b = Sha384::new();
    b.update([0u8; 48]);
    b.update(0x171u32.to_be_bytes());
    b.update(a);
    b.update(&c);
    b.finalize().to_vec()
}

#[test]
fn create_ecc_p384_high_range_ek() {
    require_tpm2_tools();
    let s = Setup::new("life-p384");
    s.ca_init();
    let out = s.create(&[
        "--ek",
        "ecc-p384",
        "--ca",
        &s.ca().display().to_string(),
        "--persist-ek",
    ]);
    assert!(
        out.contains("EK ecc-p384, certificate") && out.contains("at NV 0x01c00016"),
        "{out}"
    );
    assert!(out.contains("persistent at 0x81010016"), "{out}");
    assert!(!out.contains("rsa2048"), "{out}");

    let server = s.serve();
    let ca_pem = s.ca().join("ca.pem").display().to_string();
    let (der, pem) = (s.p("ek-p384.der"), s.p("ek-p384.pem"));
    read_cert(&server, "0x1c00016", "o", &der, &pem);
    tool_ok("openssl", ["verify", "-CAfile", &ca_pem, &pem]);
    let text = x509_text(&pem);
    assert!(text.contains("ASN1 OID: secp384r1"), "{text}");
    assert_eq!(line_after(&text, "X509v3 Key Usage"), "Key Agreement");
    assert_eq!(line_after(&text, "X509v3 Basic Constraints"), "CA:FALSE");
    assert_eq!(
        line_after(&text, "X509v3 Extended Key Usage"),
        "2.23.133.8.1"
    );
    // Template H-3 spelled out through tpm2-tools' own options: the key
    // the tool gets from the endorsement seed is the certificate's.
    let policy = s.dir.write("policy-b-sha384", &policy_b_sha384());
    let ekpub = s.p("createprimary-p384.pem");
    let ctx = s.p("createprimary-p384.ctx");
    let yaml = server.ok(
        "tpm2_createprimary",
        [
            "-C",
            "e",
            "-g",
            "sha384",
            "-G",
            "ecc384:null:aes256cfb",
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|adminwithpolicy|restricted|decrypt",
            "-L",
            &policy.display().to_string(),
            "-c",
            &ctx,
            "-f",
            "pem",
            "-o",
            &ekpub,
        ],
    );
    assert!(yaml.contains("raw: 0x300f2"), "{yaml}");
    assert_eq!(
        cert_pubkey(&pem),
        std::fs::read_to_string(&ekpub).unwrap(),
        "the certificate's key is not the H-3 EK"
    );
    server.ok("tpm2_flushcontext", ["-t"]);
    assert_eq!(
        persistent_pem(&server, "0x81010016", &s.p("persistent-p384.pem")),
        cert_pubkey(&pem)
    );
    drop(server);
    // inspect: the P-384 EK with its certificate; export gives its key.
    let report = vtpm_ok(on_state(
        &["inspect"],
        &s.state().display().to_string(),
        &s.key().display().to_string(),
        &[],
    ));
    let section = report.split("ek ecc-p384:").nth(1).unwrap();
    assert!(section.contains("certificate: NV 0x01c00016"), "{report}");
    assert!(section.contains("key-matches-ek: true"), "{report}");
    let exported = s.p("exported-p384.pem");
    vtpm_ok(on_state(
        &["cert", "export"],
        &s.state().display().to_string(),
        &s.key().display().to_string(),
        &["--ek", "ecc-p384", "--pubkey", "--out", &exported],
    ));
    assert_eq!(
        std::fs::read_to_string(&exported).unwrap(),
        cert_pubkey(&pem)
    );
}

/// Python: HKDF-Expand(PRK = key, info = "vtpm state key id v1")[:16].
fn key_id_python(key: &Path) -> String {
    tool_ok(
        "python3",
        [
            "-c",
            "import hmac,hashlib,sys;k=open(sys.argv[1],'rb').read();\
             print(hmac.new(k,b'vtpm state key id v1\\x01',hashlib.sha256).hexdigest()[:32])",
            &key.display().to_string(),
        ],
    )
    .trim()
    .to_string()
}

/// A field of `inspect --json`, extracted by Python.
fn json_field(json_path: &str, expr: &str) -> String {
    tool_ok(
        "python3",
        [
            "-c",
            &format!("import json,sys;d=json.load(open(sys.argv[1]));print({expr})"),
            json_path,
        ],
    )
    .trim()
    .to_string()
}

#[test]
fn inspect_reports_what_tpm2_tools_and_openssl_see() {
    require_tpm2_tools();
    let s = Setup::new("life-inspect");
    s.ca_init();
    s.create(&[
        "--ca",
        &s.ca().display().to_string(),
        "--pcr-banks",
        "sha256,sha384",
        "--persist-srk",
    ]);
    let state_s = s.state().display().to_string();
    let key_s = s.key().display().to_string();
    let before = std::fs::read(s.state()).unwrap();
    let text = vtpm_ok(["inspect", "--state", &state_s, "--key-file", &key_s]);
    let json = vtpm_ok(on_state(&["inspect"], &state_s, &key_s, &["--json"]));
    assert_eq!(
        before,
        std::fs::read(s.state()).unwrap(),
        "inspect changed the state"
    );
    let json_path = s
        .dir
        .write("inspect.json", json.as_bytes())
        .display()
        .to_string();
    let field = |name: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
            .to_string()
    };
    // Header: version at offset 8, key id at 16..32 (docs/state-file.md).
    assert_eq!(
        field("format-version"),
        u16::from_be_bytes([before[8], before[9]]).to_string()
    );
    let header_id: String = before[16..32].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(field("key-id"), header_id);
    assert_eq!(field("key-id"), key_id_python(&s.key()));
    assert_eq!(json_field(&json_path, "d['key_id']"), header_id);
    assert_eq!(json_field(&json_path, "d['format_version']"), "1");
    assert_eq!(field("pcr-banks"), "sha256,sha384");
    assert_eq!(
        json_field(&json_path, "','.join(d['pcr_banks'])"),
        "sha256,sha384"
    );

    let server = s.serve();
    // PCR banks as tpm2_getcap reports them.
    let pcrs = server.ok("tpm2_getcap", ["pcrs"]);
    assert!(pcrs.contains("sha256: [ 0, 1, 2"), "{pcrs}");
    assert!(pcrs.contains("sha384: [ 0, 1, 2"), "{pcrs}");
    assert!(!pcrs.contains("sha1: [ 0"), "{pcrs}");

    // EK certificates: serial, issuer, expiry and key digest per OpenSSL.
    for (i, index, auth, alg) in [(0, "0x1c00002", "o", "rsa"), (1, "0x1c0000a", "o", "ecc")] {
        let der = s.p(&format!("ek-{alg}.der"));
        let pem = s.p(&format!("ek-{alg}.pem"));
        read_cert(&server, index, auth, &der, &pem);
        let serial = tool_ok("openssl", ["x509", "-in", &pem, "-noout", "-serial"]);
        let serial = serial.trim().trim_start_matches("serial=").to_lowercase();
        assert_eq!(
            json_field(
                &json_path,
                &format!("d['eks'][{i}]['certificate']['serial']")
            ),
            serial
        );
        assert_eq!(
            json_field(
                &json_path,
                &format!("d['eks'][{i}]['certificate']['issuer']")
            ),
            "CN=vtpm local EK CA"
        );
        assert_eq!(
            json_field(
                &json_path,
                &format!("d['eks'][{i}]['certificate']['key_matches_ek']")
            ),
            "True"
        );
        // notAfter: OpenSSL's date, reformatted by Python.
        let end = tool_ok("openssl", ["x509", "-in", &pem, "-noout", "-enddate"]);
        let end = end.trim().trim_start_matches("notAfter=").to_string();
        let iso = tool_ok(
            "python3",
            [
                "-c",
                "import datetime,sys;print(datetime.datetime.strptime(sys.argv[1],'%b %d %H:%M:%S %Y GMT').strftime('%Y-%m-%dT%H:%M:%SZ'))",
                &end,
            ],
        );
        assert_eq!(
            json_field(
                &json_path,
                &format!("d['eks'][{i}]['certificate']['not_after']")
            ),
            iso.trim()
        );
        // SHA-256 of the EK's SubjectPublicKeyInfo, from tpm2_createek's PEM.
        let ekpub = s.p(&format!("createek-{alg}.pem"));
        let ctx = s.p(&format!("createek-{alg}.ctx"));
        server.ok(
            "tpm2_createek",
            ["-G", alg, "-u", &ekpub, "-f", "pem", "-c", &ctx],
        );
        server.ok("tpm2_flushcontext", ["-t"]);
        let spki_der = s.p(&format!("createek-{alg}.der"));
        tool_ok(
            "openssl",
            [
                "pkey", "-pubin", "-in", &ekpub, "-outform", "der", "-out", &spki_der,
            ],
        );
        let digest = tool_ok("sha256sum", [&spki_der]);
        let digest = digest.split_whitespace().next().unwrap().to_string();
        assert_eq!(
            json_field(&json_path, &format!("d['eks'][{i}]['public_key_sha256']")),
            digest
        );
    }
    // NV indices and sizes as tpm2_nvreadpublic reports them.
    let nvpub = server.ok("tpm2_nvreadpublic", Vec::<String>::new());
    let n = json_field(&json_path, "len(d['nv_indices'])");
    assert_eq!(n, "2", "{nvpub}");
    for i in 0..2 {
        let index: u32 = json_field(&json_path, &format!("d['nv_indices'][{i}]['index']"))
            .parse()
            .unwrap();
        let size = json_field(&json_path, &format!("d['nv_indices'][{i}]['size']"));
        let block: Vec<&str> = nvpub
            .split(&format!("{index:#x}:"))
            .nth(1)
            .unwrap_or_else(|| panic!("{index:#x} missing: {nvpub}"))
            .lines()
            .take(12)
            .collect();
        assert!(
            block.iter().any(|l| l.trim() == format!("size: {size}")),
            "{index:#x}: size {size}: {block:?}"
        );
        let names = json_field(
            &json_path,
            &format!("d['nv_indices'][{i}]['attribute_names']"),
        );
        assert!(
            block
                .iter()
                .any(|l| l.trim() == format!("friendly: {names}")),
            "{index:#x}: attributes {names}: {block:?}"
        );
    }
    // Persistent handles and lockout state as tpm2_getcap reports them.
    let handles = server.ok("tpm2_getcap", ["handles-persistent"]);
    assert_eq!(
        json_field(
            &json_path,
            "' '.join('- 0x%x' % h for h in d['persistent_handles'])"
        ),
        handles.lines().map(str::trim).collect::<Vec<_>>().join(" ")
    );
    assert_eq!(field("persistent"), "0x81000001");
    let vars = server.ok("tpm2_getcap", ["properties-variable"]);
    let prop = |name: &str| -> String {
        vars.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("{name} missing: {vars}"))
            .trim()
            .to_string()
    };
    let hexnum = |v: &str| u32::from_str_radix(v.trim_start_matches("0x"), 16).unwrap();
    for (field, property) in [
        ("counter", "TPM2_PT_LOCKOUT_COUNTER"),
        ("max_auth_fail", "TPM2_PT_MAX_AUTH_FAIL"),
        ("recovery", "TPM2_PT_LOCKOUT_RECOVERY"),
    ] {
        assert_eq!(
            json_field(&json_path, &format!("d['lockout']['{field}']")),
            hexnum(&prop(property)).to_string()
        );
    }
    assert_eq!(field("in-lockout"), "false");
}

#[test]
fn create_without_ca_has_no_certificates() {
    require_tpm2_tools();
    let s = Setup::new("life-noca");
    s.create(&["--ek", "ecc-p256", "--pcr-banks", "sha1"]);
    let server = s.serve();
    let nv = server.run("tpm2_nvreadpublic", Vec::<String>::new());
    assert!(nv.stdout.trim().is_empty(), "{nv}");
    let pcrs = server.ok("tpm2_getcap", ["pcrs"]);
    assert!(pcrs.contains("sha1: [ 0, 1, 2"), "{pcrs}");
    assert!(!pcrs.contains("sha256: [ 0"), "{pcrs}");
}

/// The files in `dir` (names), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn bad_inputs_give_one_error_line_and_change_nothing() {
    let s = Setup::new("life-bad");
    let state_s = s.state().display().to_string();
    let key_s = s.key().display().to_string();
    let tpm_dir = s.dir.join("tpm");

    // Missing CA directory: no state appears.
    let r = vtpm(on_state(
        &["create"],
        &state_s,
        &key_s,
        &["--ca", &s.p("no-such-ca")],
    ));
    assert_one_line_error(&r, "does not exist");
    assert!(listing(&tpm_dir).is_empty(), "{:?}", listing(&tpm_dir));

    // A key others can read: refused, no state.
    let loose = s.dir.write("loose.key", &[7u8; 32]);
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = vtpm(on_state(
        &["create"],
        &state_s,
        &loose.display().to_string(),
        &[],
    ));
    assert!(!r.success(), "{r}");
    assert_eq!(r.stderr.lines().count(), 1, "{r}");
    assert!(listing(&tpm_dir).is_empty(), "{:?}", listing(&tpm_dir));

    // An existing state is never replaced.
    s.create(&[]);
    let files = listing(&tpm_dir);
    let before = std::fs::read(s.state()).unwrap();
    let r = vtpm(["create", "--state", &state_s, "--key-file", &key_s]);
    assert_one_line_error(&r, "already exists");
    assert_eq!(before, std::fs::read(s.state()).unwrap());
    assert_eq!(files, listing(&tpm_dir));

    // The wrong key: inspect refuses, the state is unchanged.
    let other = s.dir.write("other.key", &[9u8; 32]);
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = vtpm(on_state(
        &["inspect"],
        &state_s,
        &other.display().to_string(),
        &[],
    ));
    assert_one_line_error(&r, "another key");
    assert_eq!(before, std::fs::read(s.state()).unwrap());

    // No such state.
    let r = vtpm(["inspect", "--state", &s.p("nothing"), "--key-file", &key_s]);
    assert_one_line_error(&r, "no such TPM state");
    assert!(!s.dir.join("nothing").exists());

    // A damaged state: inspect refuses and leaves it as it was.
    let mut damaged = before.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    let dpath = s.dir.write("damaged.state", &damaged);
    let r = vtpm(on_state(
        &["inspect"],
        &dpath.display().to_string(),
        &key_s,
        &[],
    ));
    assert!(!r.success(), "{r}");
    assert_eq!(r.stderr.lines().count(), 1, "{r}");
    assert_eq!(damaged, std::fs::read(&dpath).unwrap());
}

#[test]
fn cert_export_matches_nv_and_verifies() {
    require_tpm2_tools();
    let s = Setup::new("life-export");
    s.ca_init();
    s.create(&["--ca", &s.ca().display().to_string()]);
    let state_s = s.state().display().to_string();
    let key_s = s.key().display().to_string();
    let before = std::fs::read(s.state()).unwrap();
    let pem = s.p("exported.pem");
    vtpm_ok(on_state(
        &["cert", "export"],
        &state_s,
        &key_s,
        &["--ek", "ecc-p256", "--out", &pem],
    ));
    let der_out = vtpm_ok(on_state(
        &["cert", "export"],
        &state_s,
        &key_s,
        &["--format", "der", "--out", &s.p("exported-rsa.der")],
    ));
    assert!(der_out.is_empty());
    assert_eq!(
        before,
        std::fs::read(s.state()).unwrap(),
        "export changed the state"
    );
    let ca_pem = s.ca().join("ca.pem").display().to_string();
    tool_ok("openssl", ["verify", "-CAfile", &ca_pem, &pem]);
    // Byte for byte what tpm2_nvread reads.
    let server = s.serve();
    server.ok(
        "tpm2_nvread",
        ["0x1c0000a", "-C", "o", "-o", &s.p("nv-ecc.der")],
    );
    server.ok(
        "tpm2_nvread",
        ["0x1c00002", "-C", "o", "-o", &s.p("nv-rsa.der")],
    );
    let pem_der = tool_ok(
        "openssl",
        [
            "x509",
            "-in",
            &pem,
            "-outform",
            "der",
            "-out",
            &s.p("exported-ecc.der"),
        ],
    );
    drop(pem_der);
    assert_eq!(s.dir.read("exported-ecc.der"), s.dir.read("nv-ecc.der"));
    assert_eq!(s.dir.read("exported-rsa.der"), s.dir.read("nv-rsa.der"));
    drop(server);
    // No certificate: one error line.
    let s2 = Setup::new("life-export-none");
    s2.create(&["--ek", "rsa2048"]);
    let r = vtpm(on_state(
        &["cert", "export"],
        &s2.state().display().to_string(),
        &s2.key().display().to_string(),
        &[],
    ));
    assert_one_line_error(&r, "no rsa2048 EK certificate");
}

#[test]
fn rekey_re_encrypts_and_keeps_the_tpm() {
    require_tpm2_tools();
    let s = Setup::new("life-rekey");
    s.create(&["--persist-srk"]);
    let state_s = s.state().display().to_string();
    let key_s = s.key().display().to_string();
    let new_key = s.dir.write("new.key", &[0x5Au8; 32]);
    std::fs::set_permissions(&new_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let new_s = new_key.display().to_string();
    let srk_before = {
        let server = s.serve();
        server.ok(
            "tpm2_readpublic",
            ["-c", "0x81000001", "-f", "pem", "-o", &s.p("srk1.pem")],
        );
        s.dir.read("srk1.pem")
    };
    vtpm_ok(on_state(
        &["rekey"],
        &state_s,
        &key_s,
        &["--new-key-file", &new_s],
    ));
    // The header names the new key (Python's HKDF), the old key is refused.
    let bytes = std::fs::read(s.state()).unwrap();
    let id: String = bytes[16..32].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(id, key_id_python(&new_key));
    let r = vtpm(["inspect", "--state", &state_s, "--key-file", &key_s]);
    assert_one_line_error(&r, "another key");
    // The same TPM under the new key: the SRK is the same key.
    let server = ServeOptions::new(Protocol::Swtpm)
        .args(["--state", &state_s, "--key-file", &new_s])
        .start();
    server.startup_clear();
    server.ok(
        "tpm2_readpublic",
        ["-c", "0x81000001", "-f", "pem", "-o", &s.p("srk2.pem")],
    );
    assert_eq!(srk_before, s.dir.read("srk2.pem"));
    // While a server holds the state, rekey is refused and changes nothing.
    let r = vtpm(on_state(
        &["rekey"],
        &state_s,
        &new_s,
        &["--new-key-file", &key_s],
    ));
    assert!(!r.success(), "{r}");
    assert_eq!(r.stderr.lines().count(), 1, "{r}");
    drop(server);
    // A wrong old key changes nothing; nothing is left next to the state.
    let before = std::fs::read(s.state()).unwrap();
    let r = vtpm(on_state(
        &["rekey"],
        &state_s,
        &key_s,
        &["--new-key-file", &new_s],
    ));
    assert!(!r.success(), "{r}");
    assert_eq!(r.stderr.lines().count(), 1, "{r}");
    assert_eq!(before, std::fs::read(s.state()).unwrap());
    assert_eq!(
        listing(&s.dir.join("tpm")),
        vec!["vtpm.state".to_string(), "vtpm.state.lock".to_string()]
    );
}

/// `inspect --json` of a state, saved to `name` in the setup directory.
fn inspect_json(s: &Setup, state: &Path, key: &Path, name: &str) -> String {
    let json = vtpm_ok(on_state(
        &["inspect"],
        &state.display().to_string(),
        &key.display().to_string(),
        &["--json"],
    ));
    s.dir.write(name, json.as_bytes()).display().to_string()
}

#[test]
fn clone_copy_is_the_same_tpm_and_replace_a_new_one() {
    require_tpm2_tools();
    let s = Setup::new("life-clone");
    s.ca_init();
    let ca = s.ca().display().to_string();
    s.create(&["--ca", &ca, "--pcr-banks", "sha256", "--persist-ek"]);
    let state_s = s.state().display().to_string();
    let key_s = s.key().display().to_string();
    let new_key = s.dir.write("copy.key", &[0x33u8; 32]);
    std::fs::set_permissions(&new_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let copy = s.dir.join("copy/vtpm.state");
    let replaced = s.dir.join("replaced/vtpm.state");
    let before = std::fs::read(s.state()).unwrap();

    vtpm_ok(clone_args(
        &state_s,
        &key_s,
        &[
            "--to",
            &copy.display().to_string(),
            "--to-key-file",
            &new_key.display().to_string(),
            "--copy",
        ],
    ));
    vtpm_ok(clone_args(
        &state_s,
        &key_s,
        &[
            "--to",
            &replaced.display().to_string(),
            "--replace",
            "--ca",
            &ca,
        ],
    ));
    assert_eq!(
        before,
        std::fs::read(s.state()).unwrap(),
        "clone changed the source"
    );

    let a = inspect_json(&s, &s.state(), &s.key(), "a.json");
    let b = inspect_json(&s, &copy, &new_key, "b.json");
    let c = inspect_json(&s, &replaced, &s.key(), "c.json");
    // The copy is under the new key (Python's HKDF of it).
    assert_eq!(json_field(&b, "d['key_id']"), key_id_python(&new_key));
    for i in 0..2 {
        let pk = format!("d['eks'][{i}]['public_key_sha256']");
        let serial = format!("d['eks'][{i}]['certificate']['serial']");
        // Copy: same EKs, same certificates.
        assert_eq!(json_field(&a, &pk), json_field(&b, &pk));
        assert_eq!(json_field(&a, &serial), json_field(&b, &serial));
        // Replace: new EKs, new certificates for them.
        assert_ne!(json_field(&a, &pk), json_field(&c, &pk));
        assert_ne!(json_field(&a, &serial), json_field(&c, &serial));
        assert_eq!(
            json_field(
                &c,
                &format!("d['eks'][{i}]['certificate']['key_matches_ek']")
            ),
            "True"
        );
    }
    for d in [&b, &c] {
        assert_eq!(json_field(d, "','.join(d['pcr_banks'])"), "sha256");
        assert_eq!(
            json_field(d, "d['persistent_handles']"),
            json_field(&a, "d['persistent_handles']")
        );
    }
    // The replacement's certificate verifies with the CA, per OpenSSL.
    let server = ServeOptions::new(Protocol::Swtpm)
        .args([
            "--state",
            &replaced.display().to_string(),
            "--key-file",
            &key_s,
        ])
        .start();
    server.startup_clear();
    read_cert(&server, "0x1c00002", "o", &s.p("r.der"), &s.p("r.pem"));
    s.verify_cert(&s.p("r.pem"));
    drop(server);
    // An existing target is never replaced.
    let copy_bytes = std::fs::read(&copy).unwrap();
    let r = vtpm(clone_args(
        &state_s,
        &key_s,
        &["--to", &copy.display().to_string(), "--copy"],
    ));
    assert_one_line_error(&r, "already exists");
    assert_eq!(copy_bytes, std::fs::read(&copy).unwrap());
    // --replace of a state with certificates needs a CA.
    let r = vtpm(clone_args(
        &state_s,
        &key_s,
        &["--to", &s.p("x/vtpm.state"), "--replace"],
    ));
    assert_one_line_error(&r, "needs --ca");
    assert!(!s.dir.join("x/vtpm.state").exists());
}

#[test]
fn backup_restore_keeps_the_tpm_and_refuses_bad_inputs() {
    require_tpm2_tools();
    let s = Setup::new("life-backup");
    s.ca_init();
    let ca = s.ca().display().to_string();
    s.create(&["--ca", &ca, "--persist-srk"]);
    let state_s = s.state().display().to_string();
    let key_s = s.key().display().to_string();
    let secret = s.dir.write("secret.dat", b"backup secret 0123456789");
    // Before: the EK (tpm2_createek), its certificate, and a sealed
    // object under the persistent SRK whose blobs stay on the host.
    {
        let server = s.serve();
        server.ok(
            "tpm2_createek",
            createek_rsa_args(&s.p("ek1.pem"), &s.p("ek1.ctx")),
        );
        server.ok("tpm2_flushcontext", ["-t"]);
        read_cert(&server, "0x1c00002", "o", &s.p("c1.der"), &s.p("c1.pem"));
        server.ok(
            "tpm2_create",
            [
                "-C",
                "0x81000001",
                "-i",
                &secret.display().to_string(),
                "-u",
                &s.p("seal.pub"),
                "-r",
                &s.p("seal.priv"),
            ],
        );
    }
    let on_disk = std::fs::read(s.state()).unwrap();
    let archive = s.p("vm.bak");
    vtpm_ok(on_state(
        &["backup"],
        &state_s,
        &key_s,
        &["--out", &archive],
    ));
    // The archive holds the state file's bytes as on disk (still
    // encrypted), and names the key id (Python's HKDF of the key).
    let arch = std::fs::read(&archive).unwrap();
    assert_eq!(&arch[..8], b"VTPMBKUP");
    assert!(
        arch.windows(on_disk.len()).any(|w| w == on_disk.as_slice()),
        "the archive does not hold the state bytes unchanged"
    );
    let id: String = arch[20..36].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(id, key_id_python(&s.key()));
    // An existing archive is never replaced.
    let r = vtpm(on_state(
        &["backup"],
        &state_s,
        &key_s,
        &["--out", &archive],
    ));
    assert_one_line_error(&r, "already exists");

    // Wrong key: one line naming the key id needed, nothing written.
    let other = s.dir.write("other.key", &[0x42u8; 32]);
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
    let target = s.dir.join("r1/vtpm.state");
    let r = vtpm(on_state(
        &["restore"],
        &target.display().to_string(),
        &other.display().to_string(),
        &["--archive", &archive],
    ));
    assert_one_line_error(&r, &key_id_python(&s.key()));
    assert!(!target.exists());
    // A corrupt archive (one byte of the encrypted state flipped, and a
    // truncated one): refused, nothing written.
    let mut bad = arch.clone();
    let mid = arch.len() / 2;
    bad[mid] ^= 0x80;
    let bad_p = s.dir.write("bad.bak", &bad);
    let short_p = s.dir.write("short.bak", &arch[..arch.len() - 10]);
    for p in [&bad_p, &short_p] {
        let r = vtpm(on_state(
            &["restore"],
            &target.display().to_string(),
            &key_s,
            &["--archive", &p.display().to_string()],
        ));
        assert!(!r.success(), "{r}");
        assert_eq!(r.stderr.lines().count(), 1, "{r}");
        assert!(!target.exists());
    }
    // An existing target is refused.
    let r = vtpm(on_state(
        &["restore"],
        &state_s,
        &key_s,
        &["--archive", &archive],
    ));
    assert_one_line_error(&r, "already exists");

    // Delete the state, restore it, and serve the restored state.
    std::fs::remove_file(s.state()).unwrap();
    vtpm_ok(on_state(
        &["restore"],
        &state_s,
        &key_s,
        &["--archive", &archive],
    ));
    assert_eq!(on_disk, std::fs::read(s.state()).unwrap());
    let server = s.serve();
    server.ok(
        "tpm2_createek",
        createek_rsa_args(&s.p("ek2.pem"), &s.p("ek2.ctx")),
    );
    server.ok("tpm2_flushcontext", ["-t"]);
    assert_eq!(s.dir.read("ek1.pem"), s.dir.read("ek2.pem"));
    read_cert(&server, "0x1c00002", "o", &s.p("c2.der"), &s.p("c2.pem"));
    assert_eq!(s.dir.read("c1.pem"), s.dir.read("c2.pem"));
    assert_eq!(
        cert_pubkey(&s.p("c2.pem")).into_bytes(),
        s.dir.read("ek2.pem")
    );
    server.ok(
        "tpm2_load",
        [
            "-C",
            "0x81000001",
            "-u",
            &s.p("seal.pub"),
            "-r",
            &s.p("seal.priv"),
            "-c",
            &s.p("seal.ctx"),
        ],
    );
    server.ok(
        "tpm2_unseal",
        ["-c", &s.p("seal.ctx"), "-o", &s.p("unsealed.dat")],
    );
    assert_eq!(
        std::fs::read(s.p("unsealed.dat")).unwrap(),
        b"backup secret 0123456789"
    );
    // While the server holds the state, backup is refused.
    let r = vtpm(on_state(
        &["backup"],
        &state_s,
        &key_s,
        &["--out", &s.p("busy.bak")],
    ));
    assert!(!r.success(), "{r}");
    assert_eq!(r.stderr.lines().count(), 1, "{r}");
    assert!(!s.dir.join("busy.bak").exists());
}

#[test]
fn cert_replace_stores_an_operator_ca_certificate_for_the_ek_only() {
    require_tpm2_tools();
    let s = Setup::new("life-certreplace");
    s.ca_init();
    let ca = s.ca().display().to_string();
    s.create(&["--ca", &ca]);
    let state_s = s.state().display().to_string();
    let key_s = s.key().display().to_string();
    // The EK public key for the operator's CA.
    vtpm_ok(on_state(
        &["cert", "export"],
        &state_s,
        &key_s,
        &["--ek", "rsa2048", "--pubkey", "--out", &s.p("ek.pem")],
    ));
    // The operator's CA and a throwaway key for the CSR, made by OpenSSL.
    // `openssl req` with a new P-256 key in `key`: `mode` (-x509 or
    // -new) into `out`.
    let req_p256 = |mode: &str, key: &str, out: &str, more: &[&str]| {
        let mut args = vec!["req", mode, "-newkey", "ec"];
        args.extend(["-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]);
        args.extend(["-keyout", key, "-out", out]);
        args.extend(more);
        tool_ok("openssl", args);
    };
    req_p256(
        "-x509",
        &s.p("op.key"),
        &s.p("op.pem"),
        &["-subj", "/CN=operator EK CA", "-days", "30"],
    );
    req_p256(
        "-new",
        &s.p("dummy.key"),
        &s.p("ek.csr"),
        &["-subj", "/CN=ek"],
    );
    let issue = |out: &str, force: Option<&str>| {
        let mut args = vec![
            "x509".to_string(),
            "-req".into(),
            "-in".into(),
            s.p("ek.csr"),
            "-CA".into(),
            s.p("op.pem"),
            "-CAkey".into(),
            s.p("op.key"),
            "-set_serial".into(),
            "4660".into(),
            "-days".into(),
            "30".into(),
            "-out".into(),
            s.p(out),
        ];
        if let Some(f) = force {
            args.extend(["-force_pubkey".to_string(), s.p(f)]);
        }
        tool_ok("openssl", args);
    };
    issue("good.pem", Some("ek.pem"));
    issue("other.pem", None);
    // A certificate for another key: refused, the state unchanged.
    let before = std::fs::read(s.state()).unwrap();
    let r = vtpm(on_state(
        &["cert", "replace"],
        &state_s,
        &key_s,
        &["--ek", "rsa2048", "--cert", &s.p("other.pem")],
    ));
    assert_one_line_error(&r, "not the rsa2048 EK");
    assert_eq!(before, std::fs::read(s.state()).unwrap());
    {
        let server = s.serve();
        read_cert(&server, "0x1c00002", "o", &s.p("old.der"), &s.p("old.pem"));
        s.verify_cert(&s.p("old.pem"));
    }
    // The right certificate is stored (its size differs from the old one).
    vtpm_ok(on_state(
        &["cert", "replace"],
        &state_s,
        &key_s,
        &["--ek", "rsa2048", "--cert", &s.p("good.pem")],
    ));
    assert_eq!(
        listing(&s.dir.join("tpm")),
        vec!["vtpm.state".to_string(), "vtpm.state.lock".to_string()]
    );
    let server = s.serve();
    read_cert(&server, "0x1c00002", "o", &s.p("new.der"), &s.p("new.pem"));
    tool_ok(
        "openssl",
        ["verify", "-CAfile", &s.p("op.pem"), &s.p("new.pem")],
    );
    let good_der = tool_ok(
        "openssl",
        [
            "x509",
            "-in",
            &s.p("good.pem"),
            "-outform",
            "der",
            "-out",
            &s.p("good.der"),
        ],
    );
    drop(good_der);
    assert_eq!(s.dir.read("good.der"), s.dir.read("new.der"));
    // The size changed, so the index was undefined and defined again.
    assert_ne!(s.dir.read("old.der").len(), s.dir.read("new.der").len());
    // The exported public key is tpm2_createek's.
    server.ok(
        "tpm2_createek",
        createek_rsa_args(&s.p("createek.pem"), &s.p("ek.ctx")),
    );
    assert_eq!(s.dir.read("createek.pem"), s.dir.read("ek.pem"));
    // The index keeps the EK profile's attributes.
    let nvpub = server.ok("tpm2_nvreadpublic", ["0x1c00002"]);
    assert!(nvpub.contains("platformcreate"), "{nvpub}");
    assert!(nvpub.contains("ppwrite"), "{nvpub}");
    assert!(nvpub.contains("ownerread"), "{nvpub}");
}

#[test]
fn ca_key_encrypted_under_a_key_file() {
    require_tpm2_tools();
    let s = Setup::new("life-cakey");
    let ca = s.ca().display().to_string();
    let cakey = s.dir.write("ca.key", &[0x17u8; 32]);
    std::fs::set_permissions(&cakey, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cakey_s = cakey.display().to_string();
    vtpm_ok(["ca", "init", "--dir", &ca, "--ca-key-file", &cakey_s]);
    // No plaintext key on disk: ca-key.sealed names the key's id (Python's
    // HKDF) in the state-file header and holds no PEM.
    assert_eq!(
        listing(&s.ca()),
        vec!["ca-key.sealed".to_string(), "ca.pem".to_string()]
    );
    let sealed = std::fs::read(s.ca().join("ca-key.sealed")).unwrap();
    assert_eq!(&sealed[..8], b"VTPMSTAT");
    let id: String = sealed[16..32].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(id, key_id_python(&cakey));
    assert!(!sealed.windows(11).any(|w| w == b"PRIVATE KEY"));
    assert_eq!(
        std::fs::metadata(s.ca().join("ca-key.sealed"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let state_s = s.state().display().to_string();
    let key_s = s.key().display().to_string();
    // Without the key, or with another one: one error line, no state.
    let r = vtpm(on_state(&["create"], &state_s, &key_s, &["--ca", &ca]));
    assert_one_line_error(&r, "--ca-key-file");
    assert!(!s.state().exists());
    let r = vtpm(on_state(
        &["create"],
        &state_s,
        &key_s,
        &["--ca", &ca, "--ca-key-file", &key_s],
    ));
    assert_one_line_error(&r, "cannot be opened");
    assert!(!s.state().exists());
    // With it: the EK certificate verifies with the CA, per OpenSSL.
    vtpm_ok(on_state(
        &["create"],
        &state_s,
        &key_s,
        &["--ca", &ca, "--ca-key-file", &cakey_s],
    ));
    let server = s.serve();
    read_cert(&server, "0x1c00002", "o", &s.p("c.der"), &s.p("c.pem"));
    s.verify_cert(&s.p("c.pem"));
}
