//! Harness for vtpm's integration tests: starts `vtpm serve` on free
//! loopback ports and drives it with independent clients (Debian's
//! tpm2-tools over the tss `mssim` and `swtpm` TCTIs, and raw sockets).
//!
//! * [`vtpm_bin`]: the `vtpm` binary (`VTPM_BIN`, or built once with cargo
//!   into the current target directory).
//! * [`Server`]: one `vtpm serve` child process per test, killed on drop;
//!   its log goes to a file that is printed when the test fails.
//! * [`Server::run`] / [`Server::ok`] / [`Server::fails`]: run a tpm2-tools
//!   program against the server, with a timeout.
//! * [`Server::reset`], [`Server::power_off`], [`Server::power_on`]: platform
//!   signals over the mssim platform port or the swtpm control channel.
//! * [`TempDir`]: a scratch directory for the tools' input and output files.
//! * [`ServeOptions`]: `vtpm serve` with extra arguments (`--state PATH
//!   --key-file PATH`, `--key-fd 0` with a file on stdin); [`StateDir`]: a
//!   state file's directory with a mode-0600 key; [`Server::terminate`]
//!   (SIGTERM, wait) and [`Server::sigkill`] to stop a server so that a
//!   new one can start on the same state file.
//! * [`RawConnection`]: many raw TPM commands over one connection, with
//!   hand-built NV commands ([`nv_define_space_command`],
//!   [`nv_write_command`], [`nv_read_command`]) authorized by password
//!   sessions.
//! * [`tools`]: helpers the test files share ([`started`], [`ok_flush`],
//!   [`run_ok`], [`offline`], [`assert_rc`], [`readclock`],
//!   [`parse_attest`], ...).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub mod tools;
pub use tools::*;

/// How long one tpm2-tools program may run.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a started server has to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of the raw platform-signal exchanges.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(10);

/// The host protocol `vtpm serve` speaks, and the matching tss TCTI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Microsoft simulator protocol: command port N, platform port N+1.
    Mssim,
    /// swtpm socket protocol: data channel N, control channel N+1.
    Swtpm,
}

impl Protocol {
    /// The value of `vtpm serve --protocol` and the TCTI's name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Mssim => "mssim",
            Protocol::Swtpm => "swtpm",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------
// Locating (and building) the vtpm binary
// ---------------------------------------------------------------------------

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    dir.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.to_path_buf())
}

/// The cargo target directory: `CARGO_TARGET_DIR` if set (relative to the
/// workspace root when relative), else `<root>/target`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// The `vtpm` binary under test.
///
/// `VTPM_BIN` names a prebuilt binary. Otherwise the binary is
/// `<target>/debug/vtpm`, and `cargo build -p vtpm --bin vtpm` runs once
/// per test process first (a no-op when it is up to date), so the tests
/// never run a stale binary.
pub fn vtpm_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("VTPM_BIN").filter(|b| !b.is_empty()) {
            let bin = PathBuf::from(bin);
            assert!(bin.is_file(), "VTPM_BIN={} is not a file", bin.display());
            return bin;
        }
        let target = target_dir();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let out = Command::new(&cargo)
            .args(["build", "-p", "vtpm", "--bin", "vtpm"])
            .current_dir(workspace_root())
            .env("CARGO_TARGET_DIR", &target)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} to build vtpm: {e}",
                    Path::new(&cargo).display()
                )
            });
        assert!(
            out.status.success(),
            "`cargo build -p vtpm --bin vtpm` (CARGO_TARGET_DIR={}) failed ({}):\n{}",
            target.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = target.join("debug").join("vtpm");
        assert!(
            bin.is_file(),
            "cargo built vtpm but {} does not exist",
            bin.display()
        );
        bin
    })
}

/// Whether `vtpm serve` takes `--log-level` (asked once from its help).
/// The server's log goes to a file that failing tests print.
fn supports_log_level_flag(bin: &Path) -> bool {
    static FLAG: OnceLock<bool> = OnceLock::new();
    *FLAG.get_or_init(|| {
        Command::new(bin)
            .args(["serve", "--help"])
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--log-level"))
    })
}

// ---------------------------------------------------------------------------
// tpm2-tools
// ---------------------------------------------------------------------------

/// Finds `name` on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Fails the test (never skips it) when tpm2-tools is not installed.
pub fn require_tpm2_tools() {
    static FOUND: OnceLock<bool> = OnceLock::new();
    let found = *FOUND.get_or_init(|| find_on_path("tpm2_startup").is_some());
    assert!(
        found,
        "tpm2-tools is not installed: `tpm2_startup` is not on PATH. These tests drive vtpm with \
         tpm2-tools (>= 5.4, tss >= 3.2) over the mssim and swtpm TCTIs; scripts/test installs them \
         (Debian: apt-get install tpm2-tools libtss2-tcti-mssim0 libtss2-tcti-swtpm0)."
    );
}

/// The result of one program run.
#[derive(Debug)]
pub struct Run {
    /// The command line, for messages.
    pub cmdline: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline, self.status, self.stdout, self.stderr
        )
    }
}

fn quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=:,./+@%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` with a timeout, collecting its output.
pub fn run_command(cmd: Command, timeout: Duration) -> Run {
    run_command_with_stdin(cmd, Stdio::null(), timeout)
}

/// Runs `cmd` with `stdin` as its standard input and a timeout,
/// collecting its output.
pub fn run_command_with_stdin(mut cmd: Command, stdin: Stdio, timeout: Duration) -> Run {
    let cmdline = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{cmdline}`: {e}"));
    let out = child.stdout.take().map(|mut s| {
        thread::spawn(move || {
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
            v
        })
    });
    let err = child.stderr.take().map(|mut s| {
        thread::spawn(move || {
            let mut v = Vec::new();
            let _ = s.read_to_end(&mut v);
            v
        })
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err.and_then(|t| t.join().ok()).unwrap_or_default();
                panic!(
                    "`{cmdline}` did not finish within {timeout:?} (killed)\n--- stderr ---\n{}",
                    String::from_utf8_lossy(&stderr)
                );
            }
            Ok(None) => thread::sleep(Duration::from_millis(2)),
            Err(e) => panic!("waiting for `{cmdline}`: {e}"),
        }
    };
    let stdout = out.and_then(|t| t.join().ok()).unwrap_or_default();
    let stderr = err.and_then(|t| t.join().ok()).unwrap_or_default();
    Run {
        cmdline,
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

/// Ports handed out by this process, so parallel tests never pick the
/// same pair.
static USED_PORTS: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// Two consecutive loopback ports that are free now (N, N+1).
fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let Ok(first) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let Ok(addr) = first.local_addr() else {
            continue;
        };
        let port = addr.port();
        let Some(next) = port.checked_add(1) else {
            continue;
        };
        // Hold the first while probing the second.
        if TcpListener::bind((Ipv4Addr::LOCALHOST, next)).is_err() {
            continue;
        }
        let mut used = USED_PORTS.lock().unwrap_or_else(|e| e.into_inner());
        if used.contains(&port) || used.contains(&next) {
            continue;
        }
        used.extend([port, next]);
        return port;
    }
    panic!("no two consecutive free loopback ports found");
}

// ---------------------------------------------------------------------------
// Scratch directories
// ---------------------------------------------------------------------------

/// A directory under the system temp directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a new, empty directory.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "vtpm-tests-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `content` to `name` inside the directory; returns its path.
    pub fn write(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.join(name);
        std::fs::write(&p, content).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
        p
    }

    /// Reads `name` inside the directory.
    pub fn read(&self, name: &str) -> Vec<u8> {
        let p = self.join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// A running `vtpm serve`, killed (and reaped) on drop.
#[derive(Debug)]
pub struct Server {
    protocol: Protocol,
    port: u16,
    child: Option<Child>,
    /// Holds the server's log file.
    dir: TempDir,
    log: PathBuf,
}

/// How to start `vtpm serve`: the protocol, extra arguments (e.g.
/// `--state PATH --key-file PATH`) and what its standard input is.
///
/// ```no_run
/// # use vtpm_tests::{Protocol, ServeOptions, StateDir};
/// let state = StateDir::new("doc");
/// let server = ServeOptions::new(Protocol::Swtpm).args(state.args()).start();
/// ```
#[derive(Debug, Clone)]
pub struct ServeOptions {
    protocol: Protocol,
    args: Vec<OsString>,
    stdin: Option<PathBuf>,
}

impl ServeOptions {
    /// `vtpm serve --protocol <protocol>` with nothing else.
    pub fn new(protocol: Protocol) -> ServeOptions {
        ServeOptions {
            protocol,
            args: Vec::new(),
            stdin: None,
        }
    }

    /// Appends one argument after the protocol and port.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> ServeOptions {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments after the protocol and port.
    pub fn args<I, S>(mut self, args: I) -> ServeOptions
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// The server's standard input is this file, opened read-only for each
    /// start (for `--key-fd 0`). Default: `/dev/null`.
    pub fn stdin_file(mut self, path: impl AsRef<Path>) -> ServeOptions {
        self.stdin = Some(path.as_ref().to_owned());
        self
    }

    /// The protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn stdin(&self) -> Stdio {
        match &self.stdin {
            Some(p) => Stdio::from(
                std::fs::File::open(p)
                    .unwrap_or_else(|e| panic!("cannot open {} for stdin: {e}", p.display())),
            ),
            None => Stdio::null(),
        }
    }

    /// The `vtpm serve` command line on `port`, without redirections.
    fn command(&self, bin: &Path, port: u16) -> Command {
        let mut cmd = Command::new(bin);
        cmd.args([
            "serve",
            "--protocol",
            self.protocol.name(),
            "--port",
            &port.to_string(),
        ])
        .args(&self.args);
        cmd
    }

    /// Runs `vtpm serve` with these options expecting it to exit by itself
    /// (a refusal) within `timeout`; fails the test if it is still running
    /// then (it started serving).
    pub fn run_to_exit(&self, timeout: Duration) -> Run {
        let bin = vtpm_bin();
        let port = free_port_pair();
        run_command_with_stdin(self.command(bin, port), self.stdin(), timeout)
    }

    /// Starts the server on two free consecutive loopback ports and waits
    /// until both accept connections.
    pub fn start(&self) -> Server {
        require_tpm2_tools();
        let protocol = self.protocol;
        let bin = vtpm_bin();
        let dir = TempDir::new(protocol.name());
        let log = dir.join("server.log");
        let mut last_failure = String::new();
        // Another process may take a port between the probe and the
        // server's bind: try a few pairs.
        for _ in 0..5 {
            let port = free_port_pair();
            let log_file = std::fs::File::create(&log)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
            let mut cmd = self.command(bin, port);
            cmd.current_dir(dir.path())
                .stdin(self.stdin())
                .stdout(log_file.try_clone().expect("dup log file"))
                .stderr(log_file);
            if std::env::var_os("RUST_LOG").is_none() {
                cmd.env("RUST_LOG", "debug");
            }
            if supports_log_level_flag(bin) {
                let level = std::env::var("VTPM_TEST_LOG_LEVEL").unwrap_or_else(|_| "debug".into());
                cmd.args(["--log-level", &level]);
            }
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            match wait_ready(&mut child, port) {
                Ok(()) => {
                    return Server {
                        protocol,
                        port,
                        child: Some(child),
                        dir,
                        log,
                    };
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let text = std::fs::read(&log)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    last_failure = format!("{why}\n--- server log ---\n{text}");
                }
            }
        }
        panic!(
            "`vtpm serve --protocol {protocol} {}` did not start: {last_failure}",
            self.args
                .iter()
                .map(|a| quote(a))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

impl Server {
    /// Starts `vtpm serve --protocol <protocol>` on two free consecutive
    /// loopback ports and waits until both accept connections.
    pub fn start(protocol: Protocol) -> Server {
        ServeOptions::new(protocol).start()
    }

    /// Starts `vtpm serve --protocol <protocol> <args>` (e.g. `--state
    /// PATH --key-file PATH`).
    pub fn start_with<I, S>(protocol: Protocol, args: I) -> Server
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        ServeOptions::new(protocol).args(args).start()
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL (no shutdown, no final commit) and
    /// reaps it.
    pub fn sigkill(&mut self) {
        self.kill();
    }

    /// Sends SIGTERM (the server powers the TPM off, commits its state and
    /// exits) and waits up to `timeout` for it to exit; returns its exit
    /// status. Fails the test if it does not exit in time.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let Some(mut child) = self.child.take() else {
            panic!("[{}] terminate: the server is not running", self.protocol);
        };
        let pid = child.id().to_string();
        let r = run_command(
            {
                let mut c = Command::new("kill");
                c.args(["-TERM", &pid]);
                c
            },
            SIGNAL_TIMEOUT,
        );
        assert!(r.success(), "sending SIGTERM to the server: {r}");
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "[{}] the server did not exit within {timeout:?} of SIGTERM\n--- server log ---\n{}",
                        self.protocol,
                        self.log_text()
                    );
                }
                Err(e) => panic!("waiting for the server: {e}"),
            }
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The protocol served.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The command port (mssim) or data channel port (swtpm).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The platform port (mssim) or control channel port (swtpm).
    pub fn control_port(&self) -> u16 {
        self.port + 1
    }

    /// The address of the command / data port.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The address of the platform / control port.
    pub fn control_addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.control_port()))
    }

    /// The tss TCTI configuration string for `-T`.
    pub fn tcti(&self) -> String {
        format!("{}:host=127.0.0.1,port={}", self.protocol.name(), self.port)
    }

    /// A scratch directory that lives as long as the server (it holds the
    /// server's log, `server.log`).
    pub fn dir(&self) -> &TempDir {
        &self.dir
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Runs tpm2-tools program `tool` with `-T <tcti>` and `args`.
    pub fn run<I, S>(&self, tool: &str, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(tool);
        cmd.arg("-T")
            .arg(self.tcti())
            .args(args)
            .env_remove("TPM2TOOLS_TCTI")
            .env_remove("TCTI");
        run_command(cmd, TOOL_TIMEOUT)
    }

    /// Runs `tool` and asserts that it succeeds; returns its stdout.
    pub fn ok<I, S>(&self, tool: &str, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let r = self.run(tool, args);
        assert!(r.success(), "[{}] expected success: {r}", self.protocol);
        r.stdout
    }

    /// Runs `tool` and asserts that it fails; returns the run.
    pub fn fails<I, S>(&self, tool: &str, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let r = self.run(tool, args);
        assert!(!r.success(), "[{}] expected failure: {r}", self.protocol);
        r
    }

    /// `tpm2_startup -c`: TPM2_Startup(CLEAR).
    pub fn startup_clear(&self) {
        self.ok("tpm2_startup", ["-c"]);
    }

    // -- platform signals ---------------------------------------------------

    /// `_TPM_Init`: mssim platform RESET, or swtpm CMD_INIT. The TPM then
    /// needs TPM2_Startup.
    pub fn reset(&self) {
        match self.protocol {
            Protocol::Mssim => self.mssim_signal(MSSIM_SIGNAL_RESET),
            Protocol::Swtpm => self.swtpm_init(),
        }
    }

    /// Powers the TPM off: mssim POWER_OFF, or swtpm CMD_SHUTDOWN.
    pub fn power_off(&self) {
        match self.protocol {
            Protocol::Mssim => self.mssim_signal(MSSIM_SIGNAL_POWER_OFF),
            Protocol::Swtpm => {
                let reply = self.control_request(&SWTPM_CMD_SHUTDOWN.to_be_bytes(), 4);
                assert_eq!(reply, [0; 4], "swtpm CMD_SHUTDOWN result");
            }
        }
    }

    /// Powers the TPM on: mssim POWER_ON + NV_ON, or swtpm CMD_INIT.
    pub fn power_on(&self) {
        match self.protocol {
            Protocol::Mssim => {
                self.mssim_signal(MSSIM_SIGNAL_POWER_ON);
                self.mssim_signal(MSSIM_SIGNAL_NV_ON);
            }
            Protocol::Swtpm => self.swtpm_init(),
        }
    }

    /// Sends one mssim platform signal and checks its zero acknowledgement.
    pub fn mssim_signal(&self, signal: u32) {
        assert_eq!(
            self.protocol,
            Protocol::Mssim,
            "mssim_signal on a {} server",
            self.protocol
        );
        let reply = self.control_request(&signal.to_be_bytes(), 4);
        assert_eq!(
            reply, [0; 4],
            "mssim platform signal {signal}: acknowledgement"
        );
    }

    /// swtpm CMD_INIT with no flags; checks the zero result.
    pub fn swtpm_init(&self) {
        assert_eq!(
            self.protocol,
            Protocol::Swtpm,
            "swtpm_init on a {} server",
            self.protocol
        );
        let mut req = SWTPM_CMD_INIT.to_be_bytes().to_vec();
        req.extend_from_slice(&0u32.to_be_bytes());
        let reply = self.control_request(&req, 4);
        assert_eq!(reply, [0; 4], "swtpm CMD_INIT result");
    }

    /// Sends `req` on the platform / control port and reads `reply_len`
    /// bytes of reply on a fresh connection.
    pub fn control_request(&self, req: &[u8], reply_len: usize) -> Vec<u8> {
        let mut s = connect(self.control_addr());
        s.write_all(req)
            .unwrap_or_else(|e| panic!("[{}] sending on the control port: {e}", self.protocol));
        let mut reply = vec![0u8; reply_len];
        s.read_exact(&mut reply).unwrap_or_else(|e| {
            panic!(
                "[{}] reading the control port's reply to {req:02x?}: {e}\n--- server log ---\n{}",
                self.protocol,
                self.log_text()
            )
        });
        reply
    }
}

/// Polls ports `port` and `port + 1` until both accept connections.
fn wait_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    for port in [port, port + 1] {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "the server exited with {status} before accepting connections"
                ));
            }
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(_) => break,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    return Err(format!(
                        "port {port} does not accept connections after {START_TIMEOUT:?}: {e}"
                    ));
                }
            }
        }
    }
    Ok(())
}

impl Server {
    /// Sends one TPM command on a fresh connection to the command / data
    /// port, framed for the protocol (mssim: SEND_COMMAND at locality 0
    /// with `framing_size` or the command's length as the size), and
    /// returns the TPM's response.
    pub fn raw_command(&self, command: &[u8], framing_size: Option<u32>) -> Vec<u8> {
        let mut s = connect(self.addr());
        let fail = |what: &str, e: io::Error| -> ! {
            panic!(
                "[{}] raw command {command:02x?}: {what}: {e}\n--- server log ---\n{}",
                self.protocol,
                self.log_text()
            )
        };
        match self.protocol {
            Protocol::Mssim => {
                let size = framing_size.unwrap_or_else(|| u32::try_from(command.len()).unwrap());
                let req = mssim_send_command(command, size);
                s.write_all(&req).unwrap_or_else(|e| fail("write", e));
                let mut len = [0u8; 4];
                s.read_exact(&mut len)
                    .unwrap_or_else(|e| fail("reading the response size", e));
                let mut resp = vec![0u8; u32::from_be_bytes(len) as usize];
                s.read_exact(&mut resp)
                    .unwrap_or_else(|e| fail("reading the response", e));
                let mut trailer = [0u8; 4];
                s.read_exact(&mut trailer)
                    .unwrap_or_else(|e| fail("reading the trailer", e));
                assert_eq!(trailer, [0; 4], "mssim trailer after the response");
                resp
            }
            Protocol::Swtpm => {
                assert!(
                    framing_size.is_none(),
                    "swtpm frames commands by their own size field"
                );
                s.write_all(command).unwrap_or_else(|e| fail("write", e));
                let mut head = [0u8; 10];
                s.read_exact(&mut head)
                    .unwrap_or_else(|e| fail("reading the response header", e));
                let size = u32::from_be_bytes([head[2], head[3], head[4], head[5]]) as usize;
                assert!(size >= 10, "response size {size}: {head:02x?}");
                let mut rest = vec![0u8; size - 10];
                s.read_exact(&mut rest)
                    .unwrap_or_else(|e| fail("reading the response", e));
                [&head[..], &rest].concat()
            }
        }
    }
}

/// A TPM command with one handle authorized by a password session
/// (TPM_RS_PW, empty password): `tag | size | cc | handle | authSize |
/// session | parameters`.
pub fn command_with_password(cc: u32, handle: u32, params: &[u8]) -> Vec<u8> {
    // sessionHandle TPM_RS_PW, nonceCaller empty, continueSession, hmac
    // empty.
    let auth = [&0x4000_0009u32.to_be_bytes()[..], &[0, 0], &[0x01], &[0, 0]].concat();
    let mut body = Vec::new();
    body.extend_from_slice(&cc.to_be_bytes());
    body.extend_from_slice(&handle.to_be_bytes());
    body.extend_from_slice(&u32::try_from(auth.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&auth);
    body.extend_from_slice(params);
    let size = u32::try_from(body.len() + 6).unwrap();
    [&0x8002u16.to_be_bytes()[..], &size.to_be_bytes(), &body].concat()
}

/// A TPM command authorized by a password session (TPM_RS_PW) with
/// `password` for its first handle: `tag | size | cc | handles | authSize
/// | session | parameters`.
pub fn command_with_password_handles(
    cc: u32,
    handles: &[u32],
    password: &[u8],
    params: &[u8],
) -> Vec<u8> {
    let mut auth = 0x4000_0009u32.to_be_bytes().to_vec();
    auth.extend_from_slice(&[0, 0, 0x01]); // nonceCaller empty, continueSession
    auth.extend_from_slice(&u16::try_from(password.len()).unwrap().to_be_bytes());
    auth.extend_from_slice(password);
    let mut body = Vec::new();
    body.extend_from_slice(&cc.to_be_bytes());
    for h in handles {
        body.extend_from_slice(&h.to_be_bytes());
    }
    body.extend_from_slice(&u32::try_from(auth.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&auth);
    body.extend_from_slice(params);
    let size = u32::try_from(body.len() + 6).unwrap();
    [&0x8002u16.to_be_bytes()[..], &size.to_be_bytes(), &body].concat()
}

/// TPM_RH_OWNER.
pub const TPM_RH_OWNER: u32 = 0x4000_0001;
/// TPM_RH_PLATFORM.
pub const TPM_RH_PLATFORM: u32 = 0x4000_000C;
/// TPMA_NV_OWNERWRITE | TPMA_NV_OWNERREAD (an ordinary index).
pub const TPMA_NV_OWNER_RW: u32 = 0x0002_0002;

/// TPM2_Startup(TPM_SU_CLEAR).
pub fn startup_clear_command() -> Vec<u8> {
    vec![0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0]
}

/// TPM2_NV_DefineSpace by the owner (empty owner password) of an ordinary
/// index with SHA-256 name, no auth value and no policy.
pub fn nv_define_space_command(index: u32, attributes: u32, size: u16) -> Vec<u8> {
    let mut public = Vec::new();
    public.extend_from_slice(&index.to_be_bytes());
    public.extend_from_slice(&0x000Bu16.to_be_bytes()); // nameAlg SHA-256
    public.extend_from_slice(&attributes.to_be_bytes());
    public.extend_from_slice(&[0, 0]); // authPolicy empty
    public.extend_from_slice(&size.to_be_bytes());
    let mut params = vec![0, 0]; // auth empty
    params.extend_from_slice(&u16::try_from(public.len()).unwrap().to_be_bytes());
    params.extend_from_slice(&public);
    command_with_password_handles(0x12A, &[TPM_RH_OWNER], &[], &params)
}

/// TPM2_NV_Write of `data` at `offset`, authorized by the owner (empty
/// owner password).
pub fn nv_write_command(index: u32, offset: u16, data: &[u8]) -> Vec<u8> {
    let mut params = u16::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    params.extend_from_slice(data);
    params.extend_from_slice(&offset.to_be_bytes());
    command_with_password_handles(0x137, &[TPM_RH_OWNER, index], &[], &params)
}

/// TPM2_NV_Read of `size` bytes at `offset`, authorized by the owner
/// (empty owner password).
pub fn nv_read_command(index: u32, offset: u16, size: u16) -> Vec<u8> {
    let mut params = size.to_be_bytes().to_vec();
    params.extend_from_slice(&offset.to_be_bytes());
    command_with_password_handles(0x14E, &[TPM_RH_OWNER, index], &[], &params)
}

/// The data of a successful TPM2_NV_Read response (parameterSize, then
/// the TPM2B_MAX_NV_BUFFER); fails the test on any other response.
pub fn nv_read_response_data(resp: &[u8]) -> Vec<u8> {
    let (tag, rc, body) = split_response(resp);
    assert_eq!((tag, rc), (0x8002, 0), "NV_Read: {resp:02x?}");
    let size = usize::from(u16::from_be_bytes([body[4], body[5]]));
    body[6..6 + size].to_vec()
}

/// One connection to the command / data port that carries any number of
/// TPM commands, returning I/O errors (e.g. when the server dies) instead
/// of failing the test.
#[derive(Debug)]
pub struct RawConnection {
    protocol: Protocol,
    stream: TcpStream,
}

impl RawConnection {
    /// Sends one command and reads its whole response.
    pub fn transact(&mut self, command: &[u8]) -> io::Result<Vec<u8>> {
        let s = &mut self.stream;
        match self.protocol {
            Protocol::Mssim => {
                let size = u32::try_from(command.len()).unwrap();
                let req = mssim_send_command(command, size);
                s.write_all(&req)?;
                let mut len = [0u8; 4];
                s.read_exact(&mut len)?;
                let mut resp = vec![0u8; u32::from_be_bytes(len) as usize];
                s.read_exact(&mut resp)?;
                let mut trailer = [0u8; 4];
                s.read_exact(&mut trailer)?;
                Ok(resp)
            }
            Protocol::Swtpm => {
                s.write_all(command)?;
                let mut head = [0u8; 10];
                s.read_exact(&mut head)?;
                let size = u32::from_be_bytes([head[2], head[3], head[4], head[5]]) as usize;
                if !(10..=65536).contains(&size) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("response size {size}: {head:02x?}"),
                    ));
                }
                let mut rest = vec![0u8; size - 10];
                s.read_exact(&mut rest)?;
                Ok([&head[..], &rest].concat())
            }
        }
    }

    /// Sends one command and returns its response, failing the test on an
    /// I/O error or a response code other than success.
    pub fn ok(&mut self, command: &[u8], what: &str) -> Vec<u8> {
        let resp = self
            .transact(command)
            .unwrap_or_else(|e| panic!("[{}] {what}: {e}", self.protocol));
        let (_, rc, _) = split_response(&resp);
        assert_eq!(
            rc, 0,
            "[{}] {what}: TPM_RC {rc:#x}: {resp:02x?}",
            self.protocol
        );
        resp
    }
}

impl Server {
    /// Opens a [`RawConnection`] to the command / data port.
    pub fn raw_connection(&self) -> RawConnection {
        RawConnection {
            protocol: self.protocol,
            stream: connect(self.addr()),
        }
    }
}

// ---------------------------------------------------------------------------
// State files
// ---------------------------------------------------------------------------

/// A directory holding a TPM state file (`vtpm.state`, not created here)
/// and its key (`state.key`, 32 random bytes, mode 0600); removed on drop.
#[derive(Debug)]
pub struct StateDir {
    dir: TempDir,
}

impl StateDir {
    /// A new directory with a fresh random key.
    pub fn new(tag: &str) -> StateDir {
        let dir = TempDir::new(tag);
        let mut key = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .expect("reading /dev/urandom");
        let state = StateDir { dir };
        state.write_key("state.key", &key, 0o600);
        state
    }

    /// Writes a key file `name` in the directory with `mode`; returns its
    /// path.
    pub fn write_key(&self, name: &str, key: &[u8], mode: u32) -> PathBuf {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let p = self.dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&p)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()));
        f.write_all(key)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("cannot chmod {}: {e}", p.display()));
        p
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The state file.
    pub fn state(&self) -> PathBuf {
        self.dir.join("vtpm.state")
    }

    /// The key file.
    pub fn key(&self) -> PathBuf {
        self.dir.join("state.key")
    }

    /// `--state <state> --key-file <key>`.
    pub fn args(&self) -> Vec<OsString> {
        vec![
            "--state".into(),
            self.state().into(),
            "--key-file".into(),
            self.key().into(),
        ]
    }

    /// The state file's bytes.
    pub fn state_bytes(&self) -> Vec<u8> {
        let p = self.state();
        std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
    }

    /// The names in the directory other than the state file, its lock
    /// file and key files (`*.key`): e.g. temporary files left behind.
    pub fn stray_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path())
            .expect("read_dir")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|n| n != "vtpm.state" && n != "vtpm.state.lock" && !n.ends_with(".key"))
            .collect();
        names.sort();
        names
    }
}

/// Splits a response into (tag, response code, body after the header),
/// checking its size field.
pub fn split_response(resp: &[u8]) -> (u16, u32, &[u8]) {
    assert!(
        resp.len() >= 10,
        "response of {} bytes: {resp:02x?}",
        resp.len()
    );
    let tag = u16::from_be_bytes([resp[0], resp[1]]);
    let size = u32::from_be_bytes([resp[2], resp[3], resp[4], resp[5]]);
    let rc = u32::from_be_bytes([resp[6], resp[7], resp[8], resp[9]]);
    assert_eq!(
        size as usize,
        resp.len(),
        "response size field vs its length: {resp:02x?}"
    );
    (tag, rc, &resp[10..])
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!(
                "--- vtpm serve --protocol {} --port {} log ---\n{}--- end of server log ---",
                self.protocol,
                self.port,
                self.log_text()
            );
        }
    }
}

/// mssim platform signal: power on.
pub const MSSIM_SIGNAL_POWER_ON: u32 = 1;
/// mssim platform signal: power off.
pub const MSSIM_SIGNAL_POWER_OFF: u32 = 2;
/// mssim platform signal: NV available.
pub const MSSIM_SIGNAL_NV_ON: u32 = 11;
/// mssim platform signal: `_TPM_Init`.
pub const MSSIM_SIGNAL_RESET: u32 = 17;
/// mssim command port: TPM command.
pub const MSSIM_SEND_COMMAND: u32 = 8;
/// swtpm control channel: CMD_INIT.
pub const SWTPM_CMD_INIT: u32 = 2;
/// swtpm control channel: CMD_SHUTDOWN.
pub const SWTPM_CMD_SHUTDOWN: u32 = 3;

/// An mssim TPM_SEND_COMMAND request: the command code, locality 0, the
/// command's `size` (as framed) and the command.
fn mssim_send_command(command: &[u8], size: u32) -> Vec<u8> {
    [
        &MSSIM_SEND_COMMAND.to_be_bytes()[..],
        &[0],
        &size.to_be_bytes(),
        command,
    ]
    .concat()
}

/// Connects to `addr` with read and write timeouts, so a server that stops
/// answering fails the test instead of hanging it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, SIGNAL_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(SIGNAL_TIMEOUT))
        .expect("set_read_timeout");
    s.set_write_timeout(Some(SIGNAL_TIMEOUT))
        .expect("set_write_timeout");
    s.set_nodelay(true).expect("set_nodelay");
    s
}

/// Reads from `s` until EOF or an error; returns what came.
pub fn read_until_close(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    s.read_to_end(&mut out).map(|_| out)
}

// ---------------------------------------------------------------------------
// Digests and parsing helpers
// ---------------------------------------------------------------------------

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes hex (either case, optional `0x`).
pub fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    assert!(s.len().is_multiple_of(2), "odd-length hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
        })
        .collect()
}

/// Hash algorithms the tests compute themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// Every hash the tests know.
    pub const ALL: [Hash; 4] = [Hash::Sha1, Hash::Sha256, Hash::Sha384, Hash::Sha512];

    /// tpm2-tools' name.
    pub fn name(self) -> &'static str {
        match self {
            Hash::Sha1 => "sha1",
            Hash::Sha256 => "sha256",
            Hash::Sha384 => "sha384",
            Hash::Sha512 => "sha512",
        }
    }

    /// Digest size in bytes.
    pub fn size(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    /// The digest of the concatenation of `parts`.
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        use sha2::Digest;
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            Hash::Sha1 => run::<sha1::Sha1>(parts),
            Hash::Sha256 => run::<sha2::Sha256>(parts),
            Hash::Sha384 => run::<sha2::Sha384>(parts),
            Hash::Sha512 => run::<sha2::Sha512>(parts),
        }
    }

    /// PCR extend: H(old || data).
    pub fn extend(self, old: &[u8], data: &[u8]) -> Vec<u8> {
        self.digest(&[old, data])
    }
}

/// Parses `tpm2_pcrread` output into (bank, index, value) triples.
///
/// ```text
///   sha256:
///     0 : 0x0000…
///     16: 0x0000…
/// ```
pub fn parse_pcrread(out: &str) -> Vec<(String, u32, Vec<u8>)> {
    let mut bank = None::<String>;
    let mut values = Vec::new();
    for line in out.lines() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if let Some(name) = t.strip_suffix(':') {
            bank = Some(name.to_string());
            continue;
        }
        let (idx, value) = t
            .split_once(':')
            .unwrap_or_else(|| panic!("unexpected tpm2_pcrread line {line:?} in:\n{out}"));
        let idx: u32 = idx
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("bad PCR index in {line:?}: {e}"));
        let bank = bank
            .clone()
            .unwrap_or_else(|| panic!("PCR value before a bank name in:\n{out}"));
        values.push((bank, idx, unhex(value)));
    }
    values
}

/// Parses the `selected-pcrs:` list printed by `tpm2_getcap pcrs` and
/// `tpm2_pcrallocate`: (bank, indices) per line `  - sha256: [ 0, 1, … ]`.
pub fn parse_pcr_selection(out: &str) -> Vec<(String, Vec<u32>)> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter_map(|l| {
            let (bank, list) = l.split_once(':')?;
            let list = list.trim().strip_prefix('[')?.strip_suffix(']')?;
            let idx = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            Some((bank.trim().to_string(), idx))
        })
        .collect()
}

/// Finds `key: value` at any indentation; returns the value of the first.
pub fn yaml_value<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| {
        let (k, v) = l.trim().split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// Splits YAML-ish tool output into top-level blocks: a line without
/// indentation ending in `:` starts a block named by it.
pub fn yaml_blocks(out: &str) -> Vec<(String, String)> {
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        if !line.starts_with(' ') && !line.starts_with('-') && !line.trim().is_empty() {
            let (name, rest) = line.split_once(':').unwrap_or((line, ""));
            blocks.push((name.trim().to_string(), format!("{}\n", rest.trim())));
        } else if let Some(last) = blocks.last_mut() {
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    blocks
}

/// Declares one `#[test]` per protocol for each named test body taking a
/// [`Protocol`]: `mssim::name` and `swtpm::name` (attributes such as
/// `#[ignore]` carry over).
#[macro_export]
macro_rules! both {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        mod mssim {
            $( $(#[$attr])* #[test] fn $name() { super::$name($crate::Protocol::Mssim) } )*
        }
        mod swtpm {
            $( $(#[$attr])* #[test] fn $name() { super::$name($crate::Protocol::Swtpm) } )*
        }
    };
}
