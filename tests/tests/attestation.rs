//! Attestation (Part 3 chapter 18: TPM2_Quote, TPM2_Certify,
//! TPM2_CertifyCreation, TPM2_GetTime) and the clock commands (chapter 29:
//! TPM2_ClockSet, TPM2_ClockRateAdjust), driven by tpm2-tools. The judges
//! are independent of vtpm: `tpm2_checkquote` verifies quotes in software,
//! OpenSSL verifies every signature over the TPMS_ATTEST bytes with the
//! key's PEM, and the TPMS_ATTEST fields are parsed here and compared with
//! what tpm2-tools reads back (PCR values, Names) and with the Part 1
//! formulas (Qualified Names).
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::expect_used
)]

use std::path::Path;
use std::process::Command;
use vtpm_tests::{Hash, Protocol, Server, TOOL_TIMEOUT, TempDir, hex, run_command, unhex};

use vtpm_tests::both;

both!(
    quote_rsa_and_ecc,
    certify_and_certify_creation,
    get_time_and_privacy,
    clock_set,
);

const TPM_RH_OWNER: u32 = 0x4000_0001;
const TPM_RH_ENDORSEMENT: u32 = 0x4000_000B;

/// Starts a server and runs `tpm2_startup -c`.
fn started(protocol: Protocol) -> Server {
    let server = Server::start(protocol);
    server.startup_clear();
    server
}

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

/// Runs a tpm2-tools program that must succeed, then flushes what it
/// left loaded (no resource manager here: each tool's ContextLoad stays).
fn ok<I, S>(server: &Server, tool: &str, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = server.ok(tool, args);
    flush(server);
    out
}

/// Flushes every loaded transient object.
fn flush(server: &Server) {
    server.ok("tpm2_flushcontext", ["-t"]);
}

/// A parsed TPMS_ATTEST (Part 2 §10.12.12).
#[derive(Debug)]
struct Attest {
    ty: u16,
    qualified_signer: Vec<u8>,
    extra_data: Vec<u8>,
    clock: u64,
    reset_count: u32,
    restart_count: u32,
    safe: u8,
    firmware_version: u64,
    /// The TPMU_ATTEST bytes.
    attested: Vec<u8>,
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(self.0.len() >= n, "TPMS_ATTEST too short");
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take(2).try_into().unwrap())
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take(8).try_into().unwrap())
    }
    fn tpm2b(&mut self) -> Vec<u8> {
        let n = usize::from(self.u16());
        self.take(n).to_vec()
    }
}

fn parse_attest(b: &[u8]) -> Attest {
    let mut c = Cursor(b);
    assert_eq!(c.u32(), 0xff54_4347, "magic TPM_GENERATED_VALUE");
    let ty = c.u16();
    let qualified_signer = c.tpm2b();
    let extra_data = c.tpm2b();
    let clock = c.u64();
    let reset_count = c.u32();
    let restart_count = c.u32();
    let safe = c.u8();
    let firmware_version = c.u64();
    Attest {
        ty,
        qualified_signer,
        extra_data,
        clock,
        reset_count,
        restart_count,
        safe,
        firmware_version,
        attested: c.0.to_vec(),
    }
}

/// `tpm2_readpublic -n`: the Name in a file.
fn name_of(server: &Server, dir: &TempDir, ctx: &Path, tag: &str) -> Vec<u8> {
    let name = dir.join(&format!("{tag}.name"));
    ok(server, "tpm2_readpublic", ["-c", p(ctx), "-n", p(&name)]);
    dir.read(&format!("{tag}.name"))
}

/// Qualified Name (Part 1 §16): nameAlg || H(QN(parent) || Name), the QN
/// of a hierarchy being its handle. SHA-256 objects only.
fn qualified_name(parent_qn: &[u8], name: &[u8]) -> Vec<u8> {
    assert_eq!(&name[..2], &[0, 0x0b], "a SHA-256 Name");
    let mut qn = vec![0, 0x0b];
    qn.extend(Hash::Sha256.digest(&[parent_qn, name]));
    qn
}

/// The owner-hierarchy primary used as parent, with its Qualified Name.
fn primary(server: &Server, dir: &TempDir) -> (std::path::PathBuf, Vec<u8>) {
    let ctx = dir.join("primary.ctx");
    ok(server, "tpm2_createprimary", ["-C", "o", "-c", p(&ctx)]);
    let name = name_of(server, dir, &ctx, "primary");
    let qn = qualified_name(&TPM_RH_OWNER.to_be_bytes(), &name);
    (ctx, qn)
}

/// A restricted signing key (an AK) under `parent`; returns its context,
/// public PEM and Qualified Name.
fn create_ak(
    server: &Server,
    dir: &TempDir,
    parent: &Path,
    parent_qn: &[u8],
    alg: &str,
    tag: &str,
) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let (pubf, privf) = (
        dir.join(&format!("{tag}.pub")),
        dir.join(&format!("{tag}.priv")),
    );
    ok(
        server,
        "tpm2_create",
        [
            "-C",
            p(parent),
            "-G",
            alg,
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign",
            "-u",
            p(&pubf),
            "-r",
            p(&privf),
        ],
    );
    let ctx = dir.join(&format!("{tag}.ctx"));
    ok(
        server,
        "tpm2_load",
        [
            "-C",
            p(parent),
            "-u",
            p(&pubf),
            "-r",
            p(&privf),
            "-c",
            p(&ctx),
        ],
    );
    let pem = dir.join(&format!("{tag}.pem"));
    ok(
        server,
        "tpm2_readpublic",
        ["-c", p(&ctx), "-f", "pem", "-o", p(&pem)],
    );
    let name = name_of(server, dir, &ctx, tag);
    let qn = qualified_name(parent_qn, &name);
    (ctx, pem, qn)
}

/// OpenSSL verifies a plain-format signature (RSA: raw; ECDSA: DER) over
/// `msg` with SHA-256.
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

/// `tpm2_readclock`'s YAML: (clock, resetCount, restartCount).
fn read_clock(server: &Server) -> (u64, u32, u32) {
    let y = ok(server, "tpm2_readclock", Vec::<&str>::new());
    let field = |k: &str| -> u64 {
        y.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{k}: ")))
            .unwrap_or_else(|| panic!("{k} in {y}"))
            .trim()
            .parse()
            .unwrap()
    };
    (
        field("clock"),
        u32::try_from(field("reset_count")).unwrap(),
        u32::try_from(field("restart_count")).unwrap(),
    )
}

fn quote_rsa_and_ecc(protocol: Protocol) {
    let server = started(protocol);
    let dir = TempDir::new("attest-quote");
    // PCR 16 gets a value so the quote covers something that is not zero.
    ok(
        &server,
        "tpm2_pcrextend",
        [&format!("16:sha256={}", "ab".repeat(32))],
    );
    let (parent, parent_qn) = primary(&server, &dir);
    for (alg, tag) in [
        ("rsa2048:rsassa-sha256:null", "ak_rsa"),
        ("ecc256:ecdsa-sha256:null", "ak_ecc"),
    ] {
        let (ak, pem, qn) = create_ak(&server, &dir, &parent, &parent_qn, alg, tag);
        let nonce = "0123456789abcdef0011223344556677";
        let (msg, sig, pcrs, plain) = (
            dir.join(&format!("{tag}.quote.msg")),
            dir.join(&format!("{tag}.quote.sig")),
            dir.join(&format!("{tag}.pcrs.out")),
            dir.join(&format!("{tag}.quote.plain")),
        );
        ok(
            &server,
            "tpm2_quote",
            [
                "-c",
                p(&ak),
                "-l",
                "sha256:0,1,16",
                "-q",
                nonce,
                "-m",
                p(&msg),
                "-s",
                p(&sig),
                "-o",
                p(&pcrs),
                "-g",
                "sha256",
            ],
        );
        // tpm2-tools' software verifier: signature, nonce and PCR digest.
        let out = Command::new("tpm2_checkquote")
            .args([
                "-u",
                p(&pem),
                "-m",
                p(&msg),
                "-s",
                p(&sig),
                "-f",
                p(&pcrs),
                "-g",
                "sha256",
                "-q",
                nonce,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tpm2_checkquote ({tag}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A second quote, signature in plain form, for OpenSSL.
        ok(
            &server,
            "tpm2_quote",
            [
                "-c",
                p(&ak),
                "-l",
                "sha256:0,1,16",
                "-q",
                nonce,
                "-m",
                p(&msg),
                "-s",
                p(&plain),
                "-f",
                "plain",
                "-g",
                "sha256",
            ],
        );
        openssl_verify(&pem, &plain, &msg);
        // A wrong nonce does not pass tpm2_checkquote.
        let bad = Command::new("tpm2_checkquote")
            .args([
                "-u",
                p(&pem),
                "-m",
                p(&msg),
                "-s",
                p(&sig),
                "-f",
                p(&pcrs),
                "-g",
                "sha256",
                "-q",
                "00",
            ])
            .output()
            .unwrap();
        assert!(!bad.status.success(), "checkquote with a wrong nonce");

        // The structure itself.
        let a = parse_attest(&std::fs::read(&msg).unwrap());
        assert_eq!(a.ty, 0x8018, "TPM_ST_ATTEST_QUOTE");
        assert_eq!(a.extra_data, unhex(nonce));
        assert_eq!(a.qualified_signer, qn, "qualifiedSigner = QN(AK)");
        assert_eq!(a.safe, 1);
        let mut c = Cursor(&a.attested);
        // TPML_PCR_SELECTION: one sha256 selection of PCRs 0, 1, 16.
        assert_eq!(c.u32(), 1);
        assert_eq!(c.u16(), 0x000b);
        assert_eq!(c.tpm2b_u8(), vec![0x03, 0x00, 0x01]);
        let pcr_digest = c.tpm2b();
        assert!(c.0.is_empty(), "trailing bytes in TPMS_QUOTE_INFO");
        let values = dir.join("pcrvalues.bin");
        ok(&server, "tpm2_pcrread", ["sha256:0,1,16", "-o", p(&values)]);
        let values = std::fs::read(&values).unwrap();
        assert_eq!(values.len(), 3 * 32);
        assert_ne!(values[64..], [0u8; 32], "PCR 16 was extended");
        assert_eq!(
            hex(&pcr_digest),
            hex(&Hash::Sha256.digest(&[&values])),
            "pcrDigest = SHA-256(PCR0 || PCR1 || PCR16)"
        );
        flush(&server);
        // The parent context is reloaded from its file by each tool.
    }
}

impl Cursor<'_> {
    /// A TPMS_PCR_SELECTION's sizeofSelect-prefixed bitmap.
    fn tpm2b_u8(&mut self) -> Vec<u8> {
        let n = usize::from(self.u8());
        self.take(n).to_vec()
    }
}

fn certify_and_certify_creation(protocol: Protocol) {
    let server = started(protocol);
    let dir = TempDir::new("attest-certify");
    let (parent, parent_qn) = primary(&server, &dir);
    let (ak, pem, ak_qn) = create_ak(
        &server,
        &dir,
        &parent,
        &parent_qn,
        "rsa2048:rsassa-sha256:null",
        "ak",
    );
    // The object to certify, with its creation data and ticket.
    let (pubf, privf, cd, ch, tk) = (
        dir.join("key.pub"),
        dir.join("key.priv"),
        dir.join("key.cdata"),
        dir.join("key.chash"),
        dir.join("key.ticket"),
    );
    ok(
        &server,
        "tpm2_create",
        [
            "-C",
            p(&parent),
            "-G",
            "ecc256",
            "-u",
            p(&pubf),
            "-r",
            p(&privf),
            "--creation-data",
            p(&cd),
            "--creation-hash",
            p(&ch),
            "--creation-ticket",
            p(&tk),
        ],
    );
    let key = dir.join("key.ctx");
    ok(
        &server,
        "tpm2_load",
        [
            "-C",
            p(&parent),
            "-u",
            p(&pubf),
            "-r",
            p(&privf),
            "-c",
            p(&key),
        ],
    );
    let key_name = name_of(&server, &dir, &key, "key");
    let key_qn = qualified_name(&parent_qn, &key_name);

    // TPM2_Certify.
    let (att, sig) = (dir.join("certify.attest"), dir.join("certify.sig"));
    ok(
        &server,
        "tpm2_certify",
        [
            "-c",
            p(&key),
            "-C",
            p(&ak),
            "-g",
            "sha256",
            "-o",
            p(&att),
            "-s",
            p(&sig),
            "-f",
            "plain",
        ],
    );
    openssl_verify(&pem, &sig, &att);
    let a = parse_attest(&std::fs::read(&att).unwrap());
    assert_eq!(a.ty, 0x8017, "TPM_ST_ATTEST_CERTIFY");
    assert_eq!(a.qualified_signer, ak_qn);
    // tpm2_certify always sends the qualifyingData 00ff55aa.
    assert_eq!(hex(&a.extra_data), "00ff55aa", "extraData");
    let mut c = Cursor(&a.attested);
    assert_eq!(c.tpm2b(), key_name, "certified Name = tpm2_readpublic's");
    assert_eq!(c.tpm2b(), key_qn, "certified Qualified Name");
    assert!(c.0.is_empty());

    // TPM2_CertifyCreation.
    let creation_hash = std::fs::read(&ch).unwrap();
    // The creation hash is SHA-256 of the TPMS_CREATION_DATA (after its
    // TPM2B size) tpm2_create saved.
    let cdata = std::fs::read(&cd).unwrap();
    assert_eq!(
        hex(&creation_hash[2..]),
        hex(&Hash::Sha256.digest(&[&cdata[2..]])),
        "creationHash file"
    );
    let (att, sig) = (dir.join("creation.attest"), dir.join("creation.sig"));
    ok(
        &server,
        "tpm2_certifycreation",
        [
            "-C",
            p(&ak),
            "-c",
            p(&key),
            "-d",
            p(&ch),
            "-t",
            p(&tk),
            "-g",
            "sha256",
            "-q",
            "cafe",
            "-o",
            p(&sig),
            "-f",
            "plain",
            "--attestation",
            p(&att),
        ],
    );
    openssl_verify(&pem, &sig, &att);
    let a = parse_attest(&std::fs::read(&att).unwrap());
    assert_eq!(a.ty, 0x801A, "TPM_ST_ATTEST_CREATION");
    assert_eq!(a.qualified_signer, ak_qn);
    assert_eq!(a.extra_data, vec![0xca, 0xfe]);
    let mut c = Cursor(&a.attested);
    assert_eq!(c.tpm2b(), key_name, "objectName");
    assert_eq!(c.tpm2b(), creation_hash[2..].to_vec(), "creationHash");
    assert!(c.0.is_empty());

    // A ticket for another creation hash: TPM_RC_TICKET.
    let mut wrong = creation_hash.clone();
    let last = wrong.len() - 1;
    wrong[last] ^= 1;
    let wrong_ch = dir.write("wrong.chash", &wrong);
    let r = server.fails(
        "tpm2_certifycreation",
        [
            "-C",
            p(&ak),
            "-c",
            p(&key),
            "-d",
            p(&wrong_ch),
            "-t",
            p(&tk),
            "-g",
            "sha256",
            "-o",
            p(&dir.join("x.sig")),
            "--attestation",
            p(&dir.join("x.attest")),
        ],
    );
    // TPM_RC_TICKET (0x0a0) + P (0x040) + parameter 4 (0x400).
    assert!(
        r.stderr.to_lowercase().contains("(0x4e0)"),
        "expected TPM_RC_TICKET on parameter 4: {r}"
    );
    flush(&server);
}

fn get_time_and_privacy(protocol: Protocol) {
    let server = started(protocol);
    let dir = TempDir::new("attest-time");
    // An AK in the endorsement hierarchy (a primary): not obfuscated.
    let ek_ak = dir.join("eak.ctx");
    ok(
        &server,
        "tpm2_createprimary",
        [
            "-C",
            "e",
            "-G",
            "ecc256:ecdsa-sha256:null",
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign",
            "-c",
            p(&ek_ak),
        ],
    );
    let pem = dir.join("eak.pem");
    ok(
        &server,
        "tpm2_readpublic",
        ["-c", p(&ek_ak), "-f", "pem", "-o", p(&pem)],
    );
    let eak_name = name_of(&server, &dir, &ek_ak, "eak");
    let (clock_before, reset, restart) = read_clock(&server);
    let (att, sig) = (dir.join("time.attest"), dir.join("time.sig"));
    ok(
        &server,
        "tpm2_gettime",
        [
            "-c",
            p(&ek_ak),
            "-q",
            "1234",
            "-o",
            p(&sig),
            "-f",
            "plain",
            "--attestation",
            p(&att),
        ],
    );
    let (clock_after, _, _) = read_clock(&server);
    openssl_verify(&pem, &sig, &att);
    let a = parse_attest(&std::fs::read(&att).unwrap());
    assert_eq!(a.ty, 0x8019, "TPM_ST_ATTEST_TIME");
    assert_eq!(
        a.qualified_signer,
        qualified_name(&TPM_RH_ENDORSEMENT.to_be_bytes(), &eak_name)
    );
    assert_eq!(a.extra_data, vec![0x12, 0x34]);
    // Endorsement hierarchy: the counts are plain.
    assert_eq!((a.reset_count, a.restart_count), (reset, restart));
    assert!(clock_before <= a.clock && a.clock <= clock_after);
    let mut c = Cursor(&a.attested);
    let _time = c.u64();
    let t_clock = c.u64();
    assert_eq!((c.u32(), c.u32(), c.u8()), (reset, restart, 1));
    assert!(clock_before <= t_clock && t_clock <= clock_after);
    assert_eq!(c.u64(), a.firmware_version, "plain firmwareVersion");
    assert!(c.0.is_empty());

    // An owner-hierarchy AK: resetCount, restartCount and firmwareVersion
    // of the common fields are obfuscated, the TPMS_TIME_INFO is not.
    let (parent, parent_qn) = primary(&server, &dir);
    let (ak, ak_pem, ak_qn) = create_ak(
        &server,
        &dir,
        &parent,
        &parent_qn,
        "rsa2048:rsassa-sha256:null",
        "ak",
    );
    let (att2, sig2) = (dir.join("time2.attest"), dir.join("time2.sig"));
    ok(
        &server,
        "tpm2_gettime",
        [
            "-c",
            p(&ak),
            "-o",
            p(&sig2),
            "-f",
            "plain",
            "--attestation",
            p(&att2),
        ],
    );
    openssl_verify(&ak_pem, &sig2, &att2);
    let b = parse_attest(&std::fs::read(&att2).unwrap());
    assert_eq!(b.qualified_signer, ak_qn);
    let mut c = Cursor(&b.attested);
    let _time = c.u64();
    let _clock = c.u64();
    assert_eq!((c.u32(), c.u32()), (reset, restart), "plain TPMS_TIME_INFO");
    let _safe = c.u8();
    let fw = c.u64();
    assert_ne!(
        (b.reset_count, b.restart_count, b.firmware_version),
        (reset, restart, fw),
        "obfuscated common fields"
    );
    // The obfuscation is a constant of the key: the same in a second one.
    ok(
        &server,
        "tpm2_gettime",
        ["-c", p(&ak), "-o", p(&sig2), "--attestation", p(&att2)],
    );
    let b2 = parse_attest(&std::fs::read(&att2).unwrap());
    assert_eq!(
        (b2.reset_count, b2.restart_count, b2.firmware_version),
        (b.reset_count, b.restart_count, b.firmware_version)
    );
    flush(&server);
}

fn clock_set(protocol: Protocol) {
    let server = started(protocol);
    let (clock, _, _) = read_clock(&server);
    let target = clock + 10_000_000;
    ok(&server, "tpm2_setclock", [target.to_string()]);
    let (now, _, _) = read_clock(&server);
    assert!(
        now >= target && now < target + 60_000,
        "clock {now} after setclock {target}"
    );
    // Clock never goes back: TPM_RC_VALUE + parameter 1 (0x1c4: P bit, parameter 1).
    let r = server.fails("tpm2_setclock", [(target - 1).to_string()]);
    assert!(
        r.stderr.to_lowercase().contains("(0x1c4)"),
        "TPM_RC_VALUE: {r}"
    );
    // Nor to the reserved top of the range.
    let r = server.fails("tpm2_setclock", [0xFFFF_0000_0000_0000u64.to_string()]);
    assert!(
        r.stderr.to_lowercase().contains("(0x1c4)"),
        "TPM_RC_VALUE: {r}"
    );
    // ClockRateAdjust is accepted (and is a no-op on a host clock).
    ok(&server, "tpm2_clockrateadjust", ["s"]);
    ok(&server, "tpm2_clockrateadjust", ["fff"]);
    let (later, _, _) = read_clock(&server);
    assert!(later >= now);
    // Clock survives a restart of the TPM (it is in NV).
    ok(&server, "tpm2_shutdown", Vec::<&str>::new());
    server.reset();
    server.startup_clear();
    let (after_reset, _, _) = read_clock(&server);
    assert!(after_reset >= target, "{after_reset} after reset");
}
