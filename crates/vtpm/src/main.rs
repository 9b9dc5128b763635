//! `vtpm`: a virtual TPM 2.0 for virtual machines and TPM software stacks.
//!
//! * `vtpm serve` runs the engine behind the Microsoft simulator protocol
//!   (what `tcti-mssim` speaks) or swtpm's socket protocol (what
//!   `tcti-swtpm` and QEMU speak).
//! * `vtpm bench` measures command latency of any server speaking either.

mod bench;
mod bench_keys;
mod bench_nv_attest;
mod bench_sessions;
mod lifecycle;
mod server;
mod setup;
mod signals;
mod socket;
mod storage;
mod swtpm_cli;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use server::StopReason;
use server::mssim::MssimServer;
use server::swtpm::{Endpoints, SwtpmServer};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use vtpm_engine::{MemoryPlatform, Tpm};

/// A virtual TPM 2.0.
#[derive(Debug, Parser)]
#[command(
    name = "vtpm",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Examples:\n  \
        vtpm serve --protocol mssim --port 2321      # tpm2-tools: -T mssim:host=127.0.0.1,port=2321\n  \
        vtpm serve --protocol swtpm --port 2321      # tpm2-tools: -T swtpm:host=127.0.0.1,port=2321\n  \
        vtpm serve --protocol swtpm --unix-data /run/vtpm/data.sock --unix-ctrl /run/vtpm/ctrl.sock\n  \
        vtpm bench --tcti swtpm:host=127.0.0.1,port=2321 --iterations 2000"
)]
struct Cli {
    /// Pre-generate this many RSA-2048 keys in a background thread, so that
    /// TPM2_Create of an RSA-2048 key answers at once (each key is used
    /// once, then replaced; a full pool uses no CPU). 0 disables the pool.
    #[arg(long, value_name = "N", default_value_t = 2, global = true)]
    rsa_pool: usize,

    /// How much to log (to stderr).
    #[arg(long, value_enum, default_value_t = LogLevel::Info, global = true)]
    log_level: LogLevel,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a TPM over sockets until SIGTERM / SIGINT (or an mssim STOP).
    ///
    /// mssim: TPM commands on port P, platform signals on P+1; the TPM
    /// starts powered off and the client powers it on (tcti-mssim does).
    /// swtpm: TPM commands on the data port P, control channel on P+1 (or
    /// on the two Unix sockets given); the TPM starts powered on and
    /// waiting for TPM2_Startup, as swtpm with `--flags not-need-init`.
    /// swtpm's SHUTDOWN powers the TPM off but, unlike swtpm, the server
    /// keeps running; INIT powers it on again.
    ///
    /// With --state the TPM's NV state lives in an encrypted state file;
    /// without it, in memory (it survives power cycles requested by
    /// clients, not the process).
    Serve(ServeArgs),

    /// Serve a virtio TPM device to a VMM as a vhost-user backend.
    ///
    /// The device is virtio device id 62 with one virtqueue; VMMs attach it
    /// as a generic vhost-user device (cloud-hypervisor
    /// `--generic-vhost-user socket=PATH,device_type=62,queue_sizes=[2]`,
    /// QEMU `-device vhost-user-test-device-pci,chardev=…`). Guest memory
    /// must be shared. One VMM connection at a time; the TPM lives on
    /// across reconnects, and a guest reboot (the VMM restarting the queue
    /// from index 0) is a platform reset for the TPM. Runs until SIGTERM /
    /// SIGINT.
    VhostUser(VhostUserArgs),

    /// Serve a TPM as `swtpm socket` does, for QEMU, cloud-hypervisor and
    /// libvirt (swtpm's command line: see `vtpm socket --help`).
    Socket(PassThrough),

    /// Create a TPM state file as `swtpm_setup` does (swtpm_setup's
    /// command line: see `vtpm setup --help`).
    Setup(PassThrough),

    /// Measure command latency of a running server.
    ///
    /// Sends TPM2_Startup(CLEAR) once (TPM_RC_INITIALIZE is fine), then
    /// for each of GetRandom(32), PCR_Extend(16), PCR_Read(16), Hash of
    /// 1 KiB and NV_Write of 64 bytes (to index 0x01500F00, which it first
    /// defines with NV_DefineSpace; TPM_RC_NV_DEFINED is fine): warm-up
    /// iterations, then measured ones. Prints a markdown table of p50 / p90
    /// / p99 / mean in microseconds. Any other response code is an error.
    Bench(BenchArgs),

    /// Manage a local certificate authority for EK certificates.
    Ca(lifecycle::CaArgs),

    /// Create a new TPM state: a freshly manufactured TPM (new seeds from
    /// the OS RNG) with PCR banks, endorsement keys, EK certificates
    /// issued by a local CA, and persistent EK / SRK.
    ///
    /// Refuses an existing state file. The state appears only once
    /// complete (built under a temporary name, then linked into place); on
    /// any error nothing is left behind. The TPM is shut down orderly
    /// (TPM2_Shutdown(CLEAR)), so the state is ready for `vtpm serve`.
    Create(lifecycle::CreateArgs),

    /// Describe a TPM state without changing it: format version, key id
    /// (a fingerprint of the state key, not the key), PCR banks, EK public
    /// keys and certificates, NV indices, persistent handles and
    /// dictionary-attack lockout state.
    Inspect(lifecycle::InspectArgs),

    /// Export EK certificates from a TPM state.
    Cert(lifecycle::CertArgs),

    /// Re-encrypt a TPM state under a new key, atomically: the state file
    /// holds the old encryption or the new one at every moment, never a
    /// mixture; the state's lock is held throughout (it fails if a server
    /// is using the state).
    Rekey(lifecycle::RekeyArgs),

    /// Make a second TPM state from an existing one: the same TPM
    /// (--copy) or a new TPM configured like it (--replace).
    Clone(lifecycle::CloneArgs),

    /// Write a TPM state into a new, self-describing backup archive: the
    /// state file's bytes exactly as on disk (still encrypted), its key
    /// id, the vtpm version, the time, and a SHA-256 checksum. The state's
    /// lock is held while it is read (it fails if a server is using it).
    Backup(lifecycle::BackupArgs),

    /// Restore a TPM state from a `vtpm backup` archive into a new state
    /// file. Refuses an existing target, a corrupt archive, and a key that
    /// is not the one the archived state was encrypted with (naming the
    /// key id it needs); on any error nothing is written.
    Restore(lifecycle::RestoreArgs),
}

/// The arguments of `vtpm socket` / `vtpm setup`, parsed by them.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
struct PassThrough {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Protocol to serve.
    #[arg(long, value_enum)]
    protocol: Protocol,

    /// TCP port P: TPM commands on P, platform / control channel on P+1.
    #[arg(long, default_value_t = 2321)]
    port: u16,

    /// Address to listen on. The default accepts local clients only.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    listen: IpAddr,

    /// swtpm only: serve the data channel on this Unix socket instead of
    /// TCP (needs --unix-ctrl).
    #[arg(long, value_name = "PATH", requires = "unix_ctrl")]
    unix_data: Option<PathBuf>,

    /// swtpm only: serve the control channel on this Unix socket instead
    /// of TCP (needs --unix-data).
    #[arg(long, value_name = "PATH", requires = "unix_data")]
    unix_ctrl: Option<PathBuf>,

    #[command(flatten)]
    state: StateArgs,
}

/// Where the TPM keeps its state.
#[derive(Debug, Args)]
struct StateArgs {
    /// The TPM's state file (one per VM), encrypted with AES-256-XTS and
    /// authenticated with HMAC-SHA-256 (docs/state-file.md). Created on
    /// first use; written on every command that changes NV state, before
    /// its response, and at shutdown. Needs --key-file or --key-fd.
    /// Without it the state lives in memory and is lost at exit.
    #[arg(long, value_name = "PATH")]
    state: Option<PathBuf>,

    /// Read the 32-byte state key from this file (raw, or 64 hex digits).
    /// The file must not be readable by group or others.
    #[arg(
        long,
        value_name = "PATH",
        requires = "state",
        conflicts_with = "key_fd"
    )]
    key_file: Option<PathBuf>,

    /// Read the state key from this inherited file descriptor, so that
    /// orchestrators need not write keys to disk.
    #[arg(long, value_name = "N", requires = "state")]
    key_fd: Option<i32>,
}

impl StateArgs {
    /// The TPM, on its state file or in memory.
    fn tpm(&self) -> Result<Tpm> {
        use vtpm_store::KeyProvider;
        let Some(path) = &self.state else {
            return Tpm::new(Box::new(MemoryPlatform::new())).context("creating the TPM");
        };
        let provider: Box<dyn KeyProvider> = match (&self.key_file, self.key_fd) {
            (Some(f), None) => Box::new(vtpm_store::KeyFile::new(f.clone())),
            (None, Some(fd)) => Box::new(vtpm_store::KeyFd::new(fd)),
            _ => bail!("--state needs the state key: --key-file PATH or --key-fd N"),
        };
        let key = provider
            .master_key()
            .with_context(|| format!("reading the state key from {}", provider.describe()))?;
        let platform = vtpm_store::FilePlatform::open(path, key)?;
        Tpm::new(Box::new(platform))
            .with_context(|| format!("loading the TPM state from {}", path.display()))
    }
}

#[derive(Debug, Args)]
struct VhostUserArgs {
    /// The vhost-user Unix socket the VMM connects to (a stale file there
    /// is replaced).
    #[arg(long, value_name = "PATH")]
    socket_path: PathBuf,

    /// Seal the TPM state carried by vhost-user device-state migration
    /// (VHOST_USER_PROTOCOL_F_DEVICE_STATE) with the 32-byte key in this
    /// file (raw or hex, mode 0600); source and destination need the same
    /// key. Without it the state travels in the clear (a warning is
    /// logged) and sealed states are refused.
    #[arg(long, value_name = "PATH")]
    migration_key: Option<PathBuf>,

    #[command(flatten)]
    state: StateArgs,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Server to measure: `swtpm:host=H,port=P` (data port) or
    /// `mssim:host=H,port=P` (command port). host defaults to 127.0.0.1,
    /// port to 2321.
    #[arg(long, value_name = "TCTI")]
    tcti: bench::Tcti,

    /// Measured iterations per command.
    #[arg(long, default_value_t = 2000)]
    iterations: usize,

    /// Unmeasured iterations per command before the measured ones.
    #[arg(long, default_value_t = 100)]
    warmup: usize,

    /// swtpm: open a new data connection for every command, as tcti-swtpm
    /// does (default: one connection for all).
    #[arg(long)]
    reconnect: bool,

    /// Measure the key commands instead: CreatePrimary, Create, Load, Sign
    /// and RSA_Decrypt (milliseconds; --iterations caps the slow ones at 20).
    #[arg(long)]
    keys: bool,

    /// Measure what authorization sessions cost instead: GetRandom and
    /// NV_Read without a session, with a password, with an HMAC session
    /// and with response encryption (the client computes and verifies the
    /// HMACs and decrypts), and StartAuthSession + FlushContext.
    #[arg(long, conflicts_with = "keys")]
    sessions: bool,

    /// Measure NV storage and attestation instead: NV_Write and NV_Read of
    /// 64 bytes, NV_Increment of a counter, and Quote over sha256:0-7 with
    /// an RSA-2048 and an ECC P-256 restricted signing key.
    #[arg(long, conflicts_with_all = ["keys", "sessions"])]
    nv_attest: bool,

    /// Instead of benchmarking, wait until the server answers a
    /// GetRandom (whatever the response code) and print how long that
    /// took.
    #[arg(long)]
    wait_ready: bool,

    /// With --wait-ready: count from this time (nanoseconds since the Unix
    /// epoch, e.g. `date +%s%N` taken just before starting the server).
    #[arg(long, value_name = "NS", requires = "wait_ready")]
    since_unix_ns: Option<u128>,

    /// With --wait-ready: give up after this many seconds.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 10,
        requires = "wait_ready"
    )]
    wait_timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Protocol {
    /// Microsoft TPM 2.0 simulator protocol (tcti-mssim).
    Mssim,
    /// swtpm socket protocol (tcti-swtpm, QEMU).
    Swtpm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl From<LogLevel> for log::LevelFilter {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Off => log::LevelFilter::Off,
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

/// Where and how `vtpm serve` listens, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ServeConfig {
    /// mssim: command and platform port.
    Mssim {
        command: SocketAddr,
        platform: SocketAddr,
    },
    /// swtpm over TCP: data and control channel.
    SwtpmTcp {
        data: SocketAddr,
        control: SocketAddr,
    },
    /// swtpm over Unix sockets: data and control channel.
    SwtpmUnix { data: PathBuf, control: PathBuf },
}

impl TryFrom<ServeArgs> for ServeConfig {
    type Error = anyhow::Error;

    fn try_from(a: ServeArgs) -> Result<Self> {
        // Port 0 asks the system for free ports (not adjacent ones).
        let next = if a.port == 0 {
            0
        } else {
            a.port
                .checked_add(1)
                .context("--port must leave room for the next port (P+1)")?
        };
        let first = SocketAddr::new(a.listen, a.port);
        let second = SocketAddr::new(a.listen, next);
        Ok(match (a.protocol, a.unix_data, a.unix_ctrl) {
            (Protocol::Mssim, None, None) => ServeConfig::Mssim {
                command: first,
                platform: second,
            },
            (Protocol::Mssim, _, _) => {
                bail!("--unix-data / --unix-ctrl are for --protocol swtpm only")
            }
            (Protocol::Swtpm, Some(data), Some(control)) => {
                if data == control {
                    bail!("--unix-data and --unix-ctrl must be different paths");
                }
                ServeConfig::SwtpmUnix { data, control }
            }
            (Protocol::Swtpm, None, None) => ServeConfig::SwtpmTcp {
                data: first,
                control: second,
            },
            (Protocol::Swtpm, _, _) => bail!("--unix-data and --unix-ctrl go together"),
        })
    }
}

fn main() -> std::process::ExitCode {
    // `vtpm socket|setup …`, or a link named swtpm / swtpm_setup.
    if let Some(code) = swtpm_cli::dispatch() {
        return code;
    }
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve(_) | Command::VhostUser(_)) {
        // Threads inherit the signal mask: block SIGTERM/SIGINT before the
        // pool's thread starts, so that only the signal thread takes them.
        if let Err(e) = signals::block_termination_signals() {
            eprintln!("vtpm: blocking SIGTERM / SIGINT: {e}");
            return std::process::ExitCode::FAILURE;
        }
        vtpm_engine::set_process_rsa_pool(cli.rsa_pool);
    }
    // Reached only with a global option first (`vtpm --log-level … socket`);
    // these commands set up their own logging (`--log`).
    match &cli.command {
        Command::Socket(a) => return socket::main(&a.args),
        Command::Setup(a) => return setup::main(&a.args),
        _ => {}
    }
    env_logger::Builder::new()
        .filter_level(cli.log_level.into())
        .init();
    let result = match cli.command {
        Command::Socket(_) | Command::Setup(_) => Ok(()),
        Command::Ca(a) => lifecycle::ca(&a),
        Command::Create(a) => lifecycle::create(&a),
        Command::Inspect(a) => lifecycle::inspect(&a),
        Command::Cert(a) => lifecycle::cert(&a),
        Command::Rekey(a) => lifecycle::rekey(&a),
        Command::Clone(a) => lifecycle::clone(&a),
        Command::Backup(a) => lifecycle::backup(&a),
        Command::Restore(a) => lifecycle::restore(&a),
        Command::Serve(args) => args
            .state
            .tpm()
            .and_then(|tpm| ServeConfig::try_from(args).and_then(|c| serve(c, tpm))),
        Command::VhostUser(args) => args.state.tpm().and_then(|tpm| vhost_user(&args, tpm)),
        Command::Bench(a) => {
            if a.wait_ready {
                bench::wait_ready(
                    &a.tcti,
                    a.since_unix_ns,
                    Duration::from_secs(a.wait_timeout),
                )
            } else {
                bench::run(&bench::BenchConfig {
                    tcti: a.tcti,
                    iterations: a.iterations,
                    warmup: a.warmup,
                    reconnect: a.reconnect,
                    keys: a.keys,
                    sessions: a.sessions,
                    nv_attest: a.nv_attest,
                })
            }
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vtpm: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the server until a termination signal or a client's STOP, then
/// powers the TPM off (which commits its NV state) and returns.
fn serve(config: ServeConfig, mut tpm: Tpm) -> Result<()> {
    // Before any thread exists, so that all inherit the blocked mask.
    let blocked = signals::block_termination_signals().context("blocking SIGTERM / SIGINT")?;

    if !matches!(config, ServeConfig::Mssim { .. }) {
        // swtpm `--flags not-need-init`: ready for TPM2_Startup.
        tpm.power_on();
    }
    let tpm = Arc::new(Mutex::new(tpm));

    let (stop_tx, stop_rx) = mpsc::channel::<StopReason>();
    let show = |a: Option<SocketAddr>| a.map_or_else(|| "?".to_string(), |a| a.to_string());
    let _threads = match &config {
        ServeConfig::Mssim { command, platform } => {
            let server = MssimServer::bind(tpm.clone(), *command, *platform)
                .with_context(|| format!("binding the mssim ports {command} and {platform}"))?;
            let (c, p) = server.local_addrs();
            log::info!(
                "mssim: TPM commands on tcp {}, platform signals on tcp {}",
                show(c),
                show(p)
            );
            server.spawn(stop_tx.clone())?
        }
        ServeConfig::SwtpmTcp { data, control } => {
            let server = SwtpmServer::bind(tpm.clone(), &Endpoints::Tcp(*data, *control))
                .with_context(|| format!("binding the swtpm ports {data} and {control}"))?;
            let (d, c) = server.local_addrs();
            log::info!(
                "swtpm: data channel on tcp {}, control channel on tcp {}",
                show(d),
                show(c)
            );
            server.spawn(stop_tx.clone())?
        }
        ServeConfig::SwtpmUnix { data, control } => {
            let server =
                SwtpmServer::bind(tpm.clone(), &Endpoints::Unix(data.clone(), control.clone()))
                    .with_context(|| {
                        format!(
                            "binding the swtpm sockets {} and {}",
                            data.display(),
                            control.display()
                        )
                    })?;
            log::info!(
                "swtpm: data channel on unix {}, control channel on unix {}",
                data.display(),
                control.display()
            );
            server.spawn(stop_tx.clone())?
        }
    };

    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || match signals::wait(&blocked) {
            Ok(name) => {
                let _ = stop_tx.send(StopReason::Signal(name));
            }
            Err(e) => log::error!("waiting for signals failed: {e}"),
        })?;

    let reason = stop_rx.recv().context("every server thread ended")?;
    log::info!("{reason}: powering the TPM off and exiting");
    server::lock(&tpm).power_off();
    if let ServeConfig::SwtpmUnix { data, control } = &config {
        for p in [data, control] {
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(())
}

/// Serves the TPM as a vhost-user virtio device until SIGTERM / SIGINT,
/// then powers it off (committing its state).
fn vhost_user(args: &VhostUserArgs, tpm: Tpm) -> Result<()> {
    use vtpm_store::KeyProvider;
    let socket_path = args.socket_path.as_path();
    let migration_key = match &args.migration_key {
        Some(p) => Some(
            vtpm_store::KeyFile::new(p.clone())
                .master_key()
                .with_context(|| format!("reading the migration key {}", p.display()))?,
        ),
        None => None,
    };
    let blocked = signals::block_termination_signals().context("blocking SIGTERM / SIGINT")?;
    let tpm = Arc::new(Mutex::new(tpm));
    let exit = vtpm_vhost::ExitHandle::new().context("creating the exit event")?;
    let signal_exit = exit.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || match signals::wait(&blocked) {
            Ok(name) => {
                log::info!("{name}: stopping the vhost-user backend");
                signal_exit.request_exit();
            }
            Err(e) => log::error!("waiting for signals failed: {e}"),
        })?;
    log::info!("vhost-user: virtio TPM device on {}", socket_path.display());
    let mut config = vtpm_vhost::VhostUserTpmConfig::new(socket_path);
    config.migration_key = migration_key;
    let result = vtpm_vhost::serve(&config, tpm.clone(), &exit);
    server::lock(&tpm).power_off();
    result.map_err(|e| anyhow::anyhow!("serving vhost-user on {}: {e}", socket_path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<ServeConfig> {
        let cli = Cli::try_parse_from(args)?;
        match cli.command {
            Command::Serve(a) => ServeConfig::try_from(a),
            _ => bail!("not serve"),
        }
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_configs() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(
            config(&["vtpm", "serve", "--protocol", "mssim"]).ok(),
            Some(ServeConfig::Mssim {
                command: SocketAddr::new(lo, 2321),
                platform: SocketAddr::new(lo, 2322)
            })
        );
        assert_eq!(
            config(&[
                "vtpm",
                "serve",
                "--protocol",
                "swtpm",
                "--port",
                "2351",
                "--listen",
                "0.0.0.0"
            ])
            .ok(),
            Some(ServeConfig::SwtpmTcp {
                data: "0.0.0.0:2351".parse().expect("addr"),
                control: "0.0.0.0:2352".parse().expect("addr")
            })
        );
        assert_eq!(
            config(&[
                "vtpm",
                "serve",
                "--protocol",
                "swtpm",
                "--unix-data",
                "/tmp/d",
                "--unix-ctrl",
                "/tmp/c"
            ])
            .ok(),
            Some(ServeConfig::SwtpmUnix {
                data: "/tmp/d".into(),
                control: "/tmp/c".into()
            })
        );
        assert!(
            config(&[
                "vtpm",
                "serve",
                "--protocol",
                "mssim",
                "--unix-data",
                "/d",
                "--unix-ctrl",
                "/c"
            ])
            .is_err()
        );
        assert!(config(&["vtpm", "serve", "--protocol", "swtpm", "--unix-data", "/d"]).is_err());
        assert!(config(&["vtpm", "serve", "--protocol", "swtpm", "--port", "65535"]).is_err());
        assert!(config(&["vtpm", "serve"]).is_err());
    }
}
