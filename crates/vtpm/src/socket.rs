//! `vtpm socket`: a drop-in for `swtpm socket` as VMMs start it (QEMU's
//! `-tpmdev emulator`, cloud-hypervisor's `--tpm socket=`, libvirt).
//!
//! The TPM's state lives in one encrypted state file; the control channel
//! is a Unix (or TCP) socket; the data channel is the socket the VMM
//! passes with CMD_SET_DATAFD, or a listening socket (`--server`). The
//! process ends on CMD_SHUTDOWN, SIGTERM / SIGINT, and with `--terminate`
//! when the data connection ends.

use crate::server::swtpm::{self, BlobKey, Exit, Options, StartupType, SwtpmServer};
use crate::server::{Listener, lock};
use crate::signals;
use crate::storage::Storage;
use crate::swtpm_cli::{self, CliError, Endpoint, SocketCommand, SocketConfig, Startup};
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, mpsc};
use vtpm_engine::{MemoryPlatform, Tpm};

const USAGE: &str = "\
Usage: vtpm socket --tpm2 --tpmstate dir=DIR|backend-uri=file://PATH[,mode=0600]
                   --ctrl type=unixio,path=PATH[,mode=0600][,terminate]|type=tcp,port=N[,bindaddr=A]
                   --key file=PATH|fd=N[,format=hex|binary][,mode=aes-256-cbc][,remove]
                   [--migration-key file=PATH|fd=N[,…]]
                   [--server type=unixio,path=PATH|type=tcp,port=N[,bindaddr=A][,disconnect] | -p N]
                   [--terminate] [--flags not-need-init,startup-clear|startup-state|startup-none]
                   [--migration incoming,release-lock-outgoing] [--locality reject-locality-4]
                   [--log file=PATH|fd=N[,level=N][,prefix=S][,truncate]] [--pid file=PATH|fd=N]
       vtpm socket --print-capabilities | --version | --help

Serves a TPM 2.0 over swtpm's socket protocol, as `swtpm socket` does for
QEMU (-tpmdev emulator,chardev=…), cloud-hypervisor (--tpm socket=…) and
libvirt. The state file is DIR/vtpm.state (dir=) or the file given
(backend-uri=file://), always encrypted with the 256-bit --key.
See docs/swtpm-compat.md for every option.
";

/// Runs `vtpm socket` with its arguments (after `socket`).
pub fn main(args: &[OsString]) -> ExitCode {
    let command = match swtpm_cli::parse_socket(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vtpm socket: {e}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        SocketCommand::Help => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        SocketCommand::Version => {
            println!(
                "vtpm {} (TPM 2.0; swtpm socket interface)",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        SocketCommand::PrintCapabilities => {
            println!("{}", swtpm_cli::socket_capabilities());
            ExitCode::SUCCESS
        }
        SocketCommand::Run(config) => match run(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                // Once on stderr; in the log file too when there is one.
                if !matches!(config.log.target, swtpm_cli::LogTarget::Stderr) {
                    log::error!("{e}");
                }
                eprintln!("vtpm socket: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Binds a `--ctrl` / `--server` endpoint, with the socket file's mode
/// and owner.
fn bind(what: &str, endpoint: &Endpoint) -> Result<Listener, CliError> {
    match endpoint {
        Endpoint::Tcp(addr) => {
            Listener::bind_tcp(*addr).map_err(|e| CliError(format!("{what}: binding {addr}: {e}")))
        }
        Endpoint::Unix {
            path,
            mode,
            uid,
            gid,
        } => {
            let l = Listener::bind_unix(path)
                .map_err(|e| CliError(format!("{what}: binding {}: {e}", path.display())))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))
                .map_err(|e| CliError(format!("{what}: chmod {}: {e}", path.display())))?;
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::chown(path, *uid, *gid)
                    .map_err(|e| CliError(format!("{what}: chown {}: {e}", path.display())))?;
            }
            Ok(l)
        }
    }
}

fn startup_type(s: Option<Startup>) -> Option<StartupType> {
    match s {
        Some(Startup::Clear) => Some(StartupType::Clear),
        Some(Startup::State) => Some(StartupType::State),
        Some(Startup::None) | None => None,
    }
}

fn run(config: &SocketConfig) -> Result<(), CliError> {
    swtpm_cli::init_logging(&config.log)?;
    // Before any thread exists, so that all inherit the blocked mask.
    let blocked = signals::block_termination_signals()
        .map_err(|e| CliError(format!("blocking SIGTERM / SIGINT: {e}")))?;
    // Like `vtpm serve`: two pre-generated RSA-2048 keys.
    vtpm_engine::set_process_rsa_pool(2);

    let key = swtpm_cli::read_key(&config.key, "--key")?;
    let blob_key = match &config.migration_key {
        Some(spec) => BlobKey {
            key: swtpm_cli::read_key(spec, "--migration-key")?,
            migration: true,
        },
        None => BlobKey {
            key: key.clone(),
            migration: false,
        },
    };

    let startup = startup_type(config.startup);
    let (storage, tpm, deferred_start) = if config.incoming {
        // The lock (and the state) is taken when first needed: the source
        // of the migration still holds it.
        let storage = Storage::deferred(&config.state, key);
        let placeholder = Tpm::new(Box::new(MemoryPlatform::new()))
            .map_err(|e| CliError(format!("creating the TPM: {e}")))?;
        log::info!(
            "incoming migration: the lock of {} is taken when the state is needed",
            config.state.display()
        );
        let deferred = config.not_need_init.then_some(startup);
        (storage, placeholder, deferred)
    } else {
        let (storage, image) =
            Storage::open(&config.state, key).map_err(|e| CliError(e.to_string()))?;
        let mut tpm = Tpm::new(Box::new(storage.platform(image))).map_err(|e| {
            CliError(format!(
                "loading the TPM state from {}: {e}",
                config.state.display()
            ))
        })?;
        if config.not_need_init {
            swtpm::auto_start(&mut tpm, startup);
        }
        (storage, tpm, None)
    };
    log::info!("TPM state file {}", config.state.display());

    let control = bind("--ctrl", &config.ctrl)?;
    let data = match &config.server {
        Some(e) => Some(bind("--server", e)?),
        None => None,
    };
    let mut unix_paths: Vec<PathBuf> = Vec::new();
    for e in [Some(&config.ctrl), config.server.as_ref()]
        .into_iter()
        .flatten()
    {
        if let Endpoint::Unix { path, .. } = e {
            unix_paths.push(path.clone());
        }
    }
    let pid_file = match &config.pid {
        Some(spec) => swtpm_cli::write_pid(spec)?,
        None => None,
    };

    let tpm = Arc::new(Mutex::new(tpm));
    let opts = Options {
        blob_key: Some(blob_key),
        file_key: true,
        storage: Some(storage.clone()),
        release_lock_outgoing: config.release_lock_outgoing,
        exit_on_shutdown: true,
        terminate_on_data_close: config.terminate,
        terminate_on_control_close: config.ctrl_terminate,
        reject_locality_4: config.reject_locality_4,
        data_disconnect: config.server_disconnect,
        deferred_start,
    };
    let server = SwtpmServer::new(tpm.clone(), control, data, opts);
    let (addr_data, addr_ctrl) = server.local_addrs();
    log::info!(
        "swtpm control channel on {}{}",
        addr_ctrl.map_or_else(|| unix_label(&config.ctrl), |a| format!("tcp {a}")),
        match (&config.server, addr_data) {
            (_, Some(a)) => format!(", data channel on tcp {a}"),
            (Some(e), None) => format!(", data channel on {}", unix_label(e)),
            (None, None) => ", data channel by CMD_SET_DATAFD".to_string(),
        }
    );
    let (exit_tx, exit_rx) = mpsc::channel::<Exit>();
    let result = (|| -> Result<Exit, CliError> {
        server
            .start(Some(exit_tx.clone()))
            .map_err(|e| CliError(format!("starting the server: {e}")))?;
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || match signals::wait(&blocked) {
                Ok(name) => {
                    let _ = exit_tx.send(Exit::Signal(name));
                }
                Err(e) => log::error!("waiting for signals failed: {e}"),
            })
            .map_err(|e| CliError(format!("starting the signal thread: {e}")))?;
        exit_rx
            .recv()
            .map_err(|_| CliError("every server thread ended".into()))
    })();

    let mut outcome = Ok(());
    match result {
        Ok(why) => log::info!("{why}: exiting"),
        Err(e) => outcome = Err(e),
    }
    {
        let mut tpm = lock(&tpm);
        if storage.is_locked() {
            // Commits the NV state (a no-op after CMD_SHUTDOWN).
            tpm.power_off();
        } else if storage.is_loaded() {
            log::info!("the storage lock was released: not writing the TPM state");
        }
    }
    for p in unix_paths {
        let _ = std::fs::remove_file(p);
    }
    if let Some(p) = pid_file {
        let _ = std::fs::remove_file(p);
    }
    outcome
}

fn unix_label(e: &Endpoint) -> String {
    match e {
        Endpoint::Unix { path, .. } => format!("unix {}", path.display()),
        Endpoint::Tcp(a) => format!("tcp {a}"),
    }
}
