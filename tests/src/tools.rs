//! Helpers the tpm2-tools test files share: a started server, tool runs
//! followed by `tpm2_flushcontext -t` (there is no resource manager between
//! tpm2-tools and `vtpm serve`, so every object a tool loads stays),
//! OpenSSL and `-T none` runs that must succeed, response-code and stderr
//! assertions, `tpm2_readclock` and a TPMS_ATTEST parser.

use crate::{Run, Server, TOOL_TIMEOUT, run_command, yaml_value};
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// Starts a server and runs `tpm2_startup -c`.
pub fn started(protocol: crate::Protocol) -> Server {
    let server = Server::start(protocol);
    server.startup_clear();
    server
}

/// Flushes every loaded transient object (`tpm2_flushcontext -t`).
pub fn flush(server: &Server) {
    server.ok("tpm2_flushcontext", ["-t"]);
}

/// Runs a tool that must succeed, then flushes the transient objects it
/// left loaded; returns its stdout.
pub fn ok_flush<I, S>(server: &Server, tool: &str, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = server.ok(tool, args);
    flush(server);
    out
}

/// Runs a tool that must fail, then flushes.
pub fn fails_flush<I, S>(server: &Server, tool: &str, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let run = server.fails(tool, args);
    flush(server);
    run
}

/// Runs a program (openssl, python3) that must succeed; returns its stdout.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let r = run_command(cmd, TOOL_TIMEOUT);
    assert!(r.success(), "expected success: {r}");
    r.stdout
}

/// Runs a tpm2-tools program that computes in software (`-T none`) and
/// must succeed; returns its stdout.
pub fn offline(tool: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(tool);
    cmd.arg("-T")
        .arg("none")
        .args(args)
        .env_remove("TPM2TOOLS_TCTI")
        .env_remove("TCTI");
    let r = run_command(cmd, TOOL_TIMEOUT);
    assert!(r.success(), "expected success: {r}");
    r.stdout
}

/// `tpm2_load` arguments: `-C parent -u public -r private -c ctx`.
pub fn load_args<'a>(
    parent: &'a Path,
    public: &'a Path,
    private: &'a Path,
    ctx: &'a Path,
) -> [&'a OsStr; 8] {
    [
        "-C".as_ref(),
        parent.as_os_str(),
        "-u".as_ref(),
        public.as_os_str(),
        "-r".as_ref(),
        private.as_os_str(),
        "-c".as_ref(),
        ctx.as_os_str(),
    ]
}

/// `tpm2_load` (see [`load_args`]) that must succeed; returns its stdout.
pub fn load(server: &Server, parent: &Path, public: &Path, private: &Path, ctx: &Path) -> String {
    server.ok("tpm2_load", load_args(parent, public, private, ctx))
}

/// A restricted signing key (an AK) of type `alg` created under `parent`
/// (`tpm2_create` into `public` / `private`), loaded into `ctx`, its public
/// key written as PEM to `pem`; every tool run is flushed after.
pub fn create_restricted_signer(
    server: &Server,
    parent: &Path,
    alg: &str,
    [public, private, ctx, pem]: [&Path; 4],
) {
    ok_flush(
        server,
        "tpm2_create",
        [
            "-C",
            path_str(parent),
            "-G",
            alg,
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign",
            "-u",
            path_str(public),
            "-r",
            path_str(private),
        ],
    );
    load(server, parent, public, private, ctx);
    flush(server);
    ok_flush(
        server,
        "tpm2_readpublic",
        ["-c", path_str(ctx), "-f", "pem", "-o", path_str(pem)],
    );
}

/// OpenSSL verifies a plain-format signature (RSA: raw; ECDSA: DER) over
/// `msg` with SHA-256 (`openssl dgst -sha256 -verify`).
pub fn openssl_verify(pem: &Path, sig: &Path, msg: &Path) {
    let (pem, sig, msg) = (path_str(pem), path_str(sig), path_str(msg));
    let out = run_ok(
        "openssl",
        &["dgst", "-sha256", "-verify", pem, "-signature", sig, msg],
    );
    assert!(out.contains("Verified OK"), "openssl: {out}");
}

/// OpenSSL verifies the signature `sig` over the TPMS_ATTEST in `att`
/// (see [`openssl_verify`]); returns the parsed TPMS_ATTEST.
pub fn verified_attest(pem: &Path, sig: &Path, att: &Path) -> Attest {
    openssl_verify(pem, sig, att);
    parse_attest(&std::fs::read(att).unwrap())
}

/// `openssl ecparam -genkey`: a new NIST P-256 private key (PEM) in `pem`.
pub fn openssl_p256_key(pem: &Path) {
    run_ok(
        "openssl",
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            path_str(pem),
        ],
    );
}

/// Marsaglia's xorshift32 from `state`: the states after each step, for
/// deterministic test data.
pub fn xorshift32(mut state: u32) -> impl Iterator<Item = u32> {
    std::iter::repeat_with(move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    })
}

/// A path as UTF-8 text.
pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Asserts that a run failed and reported TPM response code `rc`
/// (tpm2-tools print it as `ErrorCode (0x00000rrr)`).
pub fn assert_rc(run: &Run, rc: u32) {
    assert!(!run.success(), "expected failure: {run}");
    let needle = format!("errorcode (0x{rc:08x})");
    assert!(
        run.stderr.to_ascii_lowercase().contains(&needle),
        "expected TPM_RC {rc:#x} ({needle}):\n{run}"
    );
}

/// Asserts that a run's stderr mentions one of `needles` (ignoring case).
pub fn assert_stderr_mentions(run: &Run, needles: &[&str]) {
    let err = run.stderr.to_ascii_lowercase();
    assert!(
        needles
            .iter()
            .any(|n| err.contains(&n.to_ascii_lowercase())),
        "expected stderr to mention one of {needles:?}: {run}"
    );
}

/// PCRs 0 to 23.
pub fn all_pcrs() -> Vec<u32> {
    (0..24).collect()
}

/// What `tpm2_readclock` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockInfo {
    pub time: u64,
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub safe: bool,
}

/// `tpm2_readclock`, parsed.
pub fn readclock(server: &Server) -> ClockInfo {
    let out = server.ok("tpm2_readclock", std::iter::empty::<&str>());
    let num = |key: &str| -> u64 {
        let v = yaml_value(&out, key)
            .unwrap_or_else(|| panic!("tpm2_readclock printed no {key}:\n{out}"));
        v.parse()
            .unwrap_or_else(|e| panic!("tpm2_readclock: {key}: {v:?}: {e}\n{out}"))
    };
    let safe = match yaml_value(&out, "safe") {
        Some("yes" | "1") => true,
        Some("no" | "0") => false,
        other => panic!("tpm2_readclock: safe is {other:?}:\n{out}"),
    };
    assert!(
        out.contains("clock_info:"),
        "tpm2_readclock output lacks clock_info:\n{out}"
    );
    ClockInfo {
        time: num("time"),
        clock: num("clock"),
        reset_count: u32::try_from(num("reset_count")).unwrap(),
        restart_count: u32::try_from(num("restart_count")).unwrap(),
        safe,
    }
}

/// A big-endian reader over TPM structures.
pub struct Cursor<'a>(pub &'a [u8]);

impl<'a> Cursor<'a> {
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(self.0.len() >= n, "structure too short");
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    pub fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take(2).try_into().unwrap())
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    pub fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take(8).try_into().unwrap())
    }
    /// A TPMS_PCR_SELECTION's sizeofSelect-prefixed bitmap.
    pub fn tpm2b_u8(&mut self) -> Vec<u8> {
        let n = usize::from(self.u8());
        self.take(n).to_vec()
    }
    /// A TPM2B: a u16 size and that many bytes.
    pub fn tpm2b(&mut self) -> Vec<u8> {
        let n = usize::from(self.u16());
        self.take(n).to_vec()
    }
}

/// A parsed TPMS_ATTEST (Part 2 §10.12.12).
#[derive(Debug)]
pub struct Attest {
    pub ty: u16,
    pub qualified_signer: Vec<u8>,
    pub extra_data: Vec<u8>,
    pub clock: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub safe: u8,
    pub firmware_version: u64,
    /// The TPMU_ATTEST bytes.
    pub attested: Vec<u8>,
}

/// Parses a TPMS_ATTEST, checking the magic TPM_GENERATED_VALUE.
pub fn parse_attest(b: &[u8]) -> Attest {
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
