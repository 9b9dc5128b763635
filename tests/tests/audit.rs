//! TPM2_NV_Certify (Part 3 §31.16), driven by tpm2-tools. The judges are
//! independent of vtpm: OpenSSL verifies the signature over the
//! TPMS_ATTEST bytes with the key's PEM; the TPMS_NV_CERTIFY_INFO fields
//! are parsed here and compared with the bytes written and the Name
//! `tpm2_nvreadpublic` reports.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::expect_used
)]

use std::path::Path;
use std::process::Command;
use vtpm_tests::{Hash, Protocol, Server, TOOL_TIMEOUT, TempDir, hex, run_command};

use vtpm_tests::both;

both!(nv_certify, session_audit, command_audit,);

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs a program that must succeed (openssl).
fn sh(program: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let r = run_command(cmd, TOOL_TIMEOUT);
    assert!(r.success(), "expected success: {r}");
    r.stdout
}

/// Runs a tpm2-tools program that must succeed, then flushes the
/// transient objects it left loaded.
fn ok<I, S>(server: &Server, tool: &str, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = server.ok(tool, args);
    server.ok("tpm2_flushcontext", ["-t"]);
    out
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(self.0.len() >= n, "too short");
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
    fn tpm2b(&mut self) -> Vec<u8> {
        let n = usize::from(self.u16());
        self.take(n).to_vec()
    }
}

/// TPMS_ATTEST (Part 2 §10.12.12): its type, extraData and the TPMU_ATTEST
/// bytes.
fn parse_attest(b: &[u8]) -> (u16, Vec<u8>, Vec<u8>) {
    let mut c = Cursor(b);
    assert_eq!(c.u32(), 0xff54_4347, "magic TPM_GENERATED_VALUE");
    let ty = c.u16();
    let _qualified_signer = c.tpm2b();
    let extra = c.tpm2b();
    c.take(8 + 4 + 4 + 1 + 8); // clockInfo, firmwareVersion
    (ty, extra, c.0.to_vec())
}

/// A restricted ECDSA signing key under an owner primary: (context, PEM).
fn signing_key(server: &Server, dir: &TempDir) -> (std::path::PathBuf, std::path::PathBuf) {
    let primary = dir.join("primary.ctx");
    ok(server, "tpm2_createprimary", ["-C", "o", "-c", p(&primary)]);
    let (pubf, privf, ctx, pem) = (
        dir.join("ak.pub"),
        dir.join("ak.priv"),
        dir.join("ak.ctx"),
        dir.join("ak.pem"),
    );
    ok(
        server,
        "tpm2_create",
        [
            "-C",
            p(&primary),
            "-G",
            "ecc256:ecdsa-sha256:null",
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign",
            "-u",
            p(&pubf),
            "-r",
            p(&privf),
        ],
    );
    ok(
        server,
        "tpm2_load",
        [
            "-C",
            p(&primary),
            "-u",
            p(&pubf),
            "-r",
            p(&privf),
            "-c",
            p(&ctx),
        ],
    );
    ok(
        server,
        "tpm2_readpublic",
        ["-c", p(&ctx), "-f", "pem", "-o", p(&pem)],
    );
    (ctx, pem)
}

fn openssl_verify(pem: &Path, sig: &Path, msg: &Path) {
    let out = sh(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            p(pem),
            "-signature",
            p(sig),
            p(msg),
        ],
    );
    assert!(out.contains("Verified OK"), "openssl: {out}");
}

fn nv_certify(protocol: Protocol) {
    let server = Server::start(protocol);
    server.startup_clear();
    let dir = TempDir::new("audit-nvcertify");
    let (ak, pem) = signing_key(&server, &dir);
    let data: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(7).wrapping_add(3))
        .collect();
    let dataf = dir.write("nv.data", &data);
    ok(
        &server,
        "tpm2_nvdefine",
        [
            "0x1500016",
            "-C",
            "o",
            "-s",
            "32",
            "-a",
            "ownerread|ownerwrite|authread|authwrite",
            "-p",
            "nvpass",
        ],
    );
    ok(
        &server,
        "tpm2_nvwrite",
        ["0x1500016", "-C", "o", "-i", p(&dataf)],
    );
    let public = ok(&server, "tpm2_nvreadpublic", ["0x1500016"]);
    let name = public
        .lines()
        .find_map(|l| l.trim().strip_prefix("name: "))
        .unwrap_or_else(|| panic!("name in {public}"))
        .trim()
        .to_string();

    // A slice of the data, authorized by the index's own authValue.
    let (att, sig) = (dir.join("nv.att"), dir.join("nv.sig"));
    ok(
        &server,
        "tpm2_nvcertify",
        [
            "-C",
            p(&ak),
            "-g",
            "sha256",
            "-f",
            "plain",
            "-o",
            p(&sig),
            "--attestation",
            p(&att),
            "-p",
            "nvpass",
            "-q",
            "a1b2c3",
            "--size",
            "16",
            "--offset",
            "4",
            "0x1500016",
        ],
    );
    openssl_verify(&pem, &sig, &att);
    let (ty, extra, body) = parse_attest(&dir.read("nv.att"));
    assert_eq!(ty, 0x8014, "TPM_ST_ATTEST_NV");
    assert_eq!(extra, vec![0xa1, 0xb2, 0xc3]);
    let mut c = Cursor(&body);
    assert_eq!(hex(&c.tpm2b()), name, "indexName");
    assert_eq!(c.u16(), 4, "offset");
    assert_eq!(c.tpm2b(), data[4..20].to_vec(), "nvContents");
    assert!(c.0.is_empty());

    // No size: authorized by the owner.
    ok(
        &server,
        "tpm2_nvcertify",
        [
            "-C",
            p(&ak),
            "-c",
            "o",
            "-g",
            "sha256",
            "-f",
            "plain",
            "-o",
            p(&sig),
            "--attestation",
            p(&att),
            "0x1500016",
        ],
    );
    openssl_verify(&pem, &sig, &att);
    // tpm2-tools 5.4 sends size 0 and offset 0 when --size is not given:
    // that asks for TPMS_NV_DIGEST_CERTIFY_INFO, whose nvDigest is the
    // digest of the whole data with the signing scheme's hash.
    let (ty, _, body) = parse_attest(&dir.read("nv.att"));
    assert_eq!(ty, 0x801c, "TPM_ST_ATTEST_NV_DIGEST");
    let mut c = Cursor(&body);
    assert_eq!(hex(&c.tpm2b()), name);
    assert_eq!(c.tpm2b(), Hash::Sha256.digest(&[&data]), "nvDigest");
    assert!(c.0.is_empty());

    server.ok("tpm2_flushcontext", ["-t"]);
}

/// Session audit (Part 1 §19.6.11) and TPM2_GetSessionAuditDigest
/// (Part 3 §18.5): an audit session audits two TPM2_GetRandom commands;
/// OpenSSL verifies the signature over the TPMS_ATTEST, and the
/// sessionDigest is recomputed here from the spec's formula,
/// auditDigest := SHA-256(auditDigest || cpHash || rpHash) starting from
/// an empty digest, with cpHash = SHA-256(TPM_CC_GetRandom ||
/// bytesRequested) and rpHash = SHA-256(TPM_RC_SUCCESS || TPM_CC_GetRandom
/// || TPM2B randomBytes), from the bytes tpm2_getrandom printed.
fn session_audit(protocol: Protocol) {
    let server = Server::start(protocol);
    server.startup_clear();
    let dir = TempDir::new("audit-session");
    let (ak, pem) = signing_key(&server, &dir);
    let session = dir.join("session.ctx");
    server.ok(
        "tpm2_startauthsession",
        ["-S", p(&session), "--audit-session"],
    );
    let cc_get_random = 0x0000_017Bu32.to_be_bytes();
    let mut expected: Vec<u8> = Vec::new();
    for n in [8u16, 16] {
        let out = server.ok(
            "tpm2_getrandom",
            [&n.to_string(), "-S", p(&session), "--hex"],
        );
        let bytes: Vec<u8> = (0..out.trim().len() / 2)
            .map(|i| u8::from_str_radix(&out.trim()[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert_eq!(bytes.len(), usize::from(n), "random bytes: {out}");
        let cp_hash = Hash::Sha256.digest(&[&cc_get_random, &n.to_be_bytes()]);
        let rp_hash = Hash::Sha256.digest(&[
            &0u32.to_be_bytes(),
            &cc_get_random,
            &n.to_be_bytes(),
            &bytes,
        ]);
        expected = Hash::Sha256.digest(&[&expected, &cp_hash, &rp_hash]);
    }

    let (att, sig) = (dir.join("session.att"), dir.join("session.sig"));
    server.ok(
        "tpm2_getsessionauditdigest",
        [
            "-c",
            p(&ak),
            "-g",
            "sha256",
            "-f",
            "plain",
            "-q",
            "0102",
            "-m",
            p(&att),
            "-s",
            p(&sig),
            "-S",
            p(&session),
        ],
    );
    openssl_verify(&pem, &sig, &att);
    let (ty, extra, body) = parse_attest(&dir.read("session.att"));
    assert_eq!(ty, 0x8016, "TPM_ST_ATTEST_SESSION_AUDIT");
    assert_eq!(extra, vec![1, 2]);
    let mut c = Cursor(&body);
    let exclusive = c.take(1)[0];
    assert!(exclusive <= 1, "exclusiveSession is a TPMI_YES_NO");
    assert_eq!(hex(&c.tpm2b()), hex(&expected), "sessionDigest");
    assert!(c.0.is_empty());

    server.ok("tpm2_flushcontext", [p(&session)]);
    server.ok("tpm2_flushcontext", ["-t"]);
}

/// Command audit (Part 1 §33): tpm2-tools sets TPM2_GetRandom audited;
/// the signed TPMS_COMMAND_AUDIT_INFO's auditDigest is recomputed here
/// from the spec's formula and its signature checked with OpenSSL.
fn command_audit(protocol: Protocol) {
    let server = Server::start(protocol);
    server.startup_clear();
    let dir = TempDir::new("audit-command");
    let (ak, pem) = signing_key(&server, &dir);
    server.ok("tpm2_setcommandauditstatus", ["0x17B"]);
    let (att, sig) = (dir.join("command.att"), dir.join("command.sig"));
    let get_digest = || {
        server.ok(
            "tpm2_getcommandauditdigest",
            [
                "-c",
                p(&ak),
                "-g",
                "sha256",
                "-f",
                "plain",
                "-q",
                "0102",
                "-m",
                p(&att),
                "-s",
                p(&sig),
            ],
        );
    };
    // Reported digests are reset: start from an empty one.
    get_digest();
    let cc_get_random = 0x0000_017Bu32.to_be_bytes();
    let mut expected: Vec<u8> = Vec::new();
    for n in [8u16, 16] {
        let out = server.ok("tpm2_getrandom", [&n.to_string(), "--hex"]);
        let bytes: Vec<u8> = (0..out.trim().len() / 2)
            .map(|i| u8::from_str_radix(&out.trim()[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        assert_eq!(bytes.len(), usize::from(n), "random bytes: {out}");
        let cp_hash = Hash::Sha256.digest(&[&cc_get_random, &n.to_be_bytes()]);
        let rp_hash = Hash::Sha256.digest(&[
            &0u32.to_be_bytes(),
            &cc_get_random,
            &n.to_be_bytes(),
            &bytes,
        ]);
        expected = Hash::Sha256.digest(&[&expected, &cp_hash, &rp_hash]);
    }
    get_digest();
    openssl_verify(&pem, &sig, &att);
    let (ty, extra, body) = parse_attest(&dir.read("command.att"));
    assert_eq!(ty, 0x8015, "TPM_ST_ATTEST_COMMAND_AUDIT");
    assert_eq!(extra, vec![1, 2]);
    let mut c = Cursor(&body);
    let counter = c.take(8);
    // SetCommandCodeAuditStatus (always audited) counted once, the first
    // GetRandom after the reset once more.
    assert_eq!(counter, 2u64.to_be_bytes());
    assert_eq!(c.take(2), 0x000Bu16.to_be_bytes(), "digestAlg");
    assert_eq!(hex(&c.tpm2b()), hex(&expected), "auditDigest");
    let codes = [0x0000_0140u32.to_be_bytes(), cc_get_random].concat();
    assert_eq!(
        hex(&c.tpm2b()),
        hex(&Hash::Sha256.digest(&[&codes])),
        "commandDigest"
    );
    assert!(c.0.is_empty());
}
