//! swtpm's socket protocol (swtpm `ctrlchannel.c`, `tpm_ioctl.h`), as
//! tpm2-tss's `tcti-swtpm`, QEMU's `tpm-emulator` backend and
//! cloud-hypervisor's `--tpm socket=` speak it.
//!
//! * The data channel carries raw TPM commands and responses, or, with
//!   swtpm's optional command header, `u32 8 | u8 locality | u32 size |
//!   command` answered by `u32 size | response | u32 0`. It is a listening
//!   socket (`vtpm serve`, `vtpm socket --server`) or a socket the VMM
//!   passes over the control channel with CMD_SET_DATAFD.
//! * The control channel carries `u32 command | body` requests answered by
//!   a big-endian result code and the command's output (all of it in one
//!   write). Failures are answered by the 4-byte result code alone, except
//!   CMD_GET_STATEBLOB, whose failures after its request was read carry
//!   the 16-byte reply header as swtpm sends it (QEMU reads that much).
//!
//! `tcti-swtpm` opens a new connection on either channel for every
//! request; QEMU keeps its connections open. Both work: each connection
//! may carry any number of requests.
//!
//! With [`Options::default`] (`vtpm serve`), CMD_SHUTDOWN powers the TPM
//! off and the server keeps serving; `vtpm socket` sets
//! [`Options::exit_on_shutdown`] and the process ends, as swtpm's does.

mod ctrl_conn;

use super::{Conn, Listener, ReadError, SharedTpm, Stream, lock, log_read_end, put_u32};
use crate::storage::{Locked, Storage};
use ctrl_conn::{CtrlConn, CtrlSocket};
use std::io;
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use vtpm_engine::Tpm;
use vtpm_store::MasterKey;
use zeroize::Zeroizing;

/// Control channel commands (`tpm_ioctl.h`).
pub mod cmd {
    pub const GET_CAPABILITY: u32 = 0x01;
    pub const INIT: u32 = 0x02;
    pub const SHUTDOWN: u32 = 0x03;
    pub const GET_TPMESTABLISHED: u32 = 0x04;
    pub const SET_LOCALITY: u32 = 0x05;
    pub const HASH_START: u32 = 0x06;
    pub const HASH_DATA: u32 = 0x07;
    pub const HASH_END: u32 = 0x08;
    pub const CANCEL_TPM_CMD: u32 = 0x09;
    pub const STORE_VOLATILE: u32 = 0x0A;
    pub const RESET_TPMESTABLISHED: u32 = 0x0B;
    pub const GET_STATEBLOB: u32 = 0x0C;
    pub const SET_STATEBLOB: u32 = 0x0D;
    pub const STOP: u32 = 0x0E;
    pub const GET_CONFIG: u32 = 0x0F;
    pub const SET_DATAFD: u32 = 0x10;
    pub const SET_BUFFERSIZE: u32 = 0x11;
    pub const GET_INFO: u32 = 0x12;
    pub const LOCK_STORAGE: u32 = 0x13;
}

/// Capability bits (`PTM_CAP_*`).
pub mod cap {
    pub const INIT: u64 = 1 << 0;
    pub const SHUTDOWN: u64 = 1 << 1;
    pub const GET_TPMESTABLISHED: u64 = 1 << 2;
    pub const SET_LOCALITY: u64 = 1 << 3;
    pub const HASHING: u64 = 1 << 4;
    pub const CANCEL_TPM_CMD: u64 = 1 << 5;
    pub const STORE_VOLATILE: u64 = 1 << 6;
    pub const RESET_TPMESTABLISHED: u64 = 1 << 7;
    pub const GET_STATEBLOB: u64 = 1 << 8;
    pub const SET_STATEBLOB: u64 = 1 << 9;
    pub const STOP: u64 = 1 << 10;
    pub const GET_CONFIG: u64 = 1 << 11;
    pub const SET_DATAFD: u64 = 1 << 12;
    pub const SET_BUFFERSIZE: u64 = 1 << 13;
    pub const GET_INFO: u64 = 1 << 14;
    pub const SEND_COMMAND_HEADER: u64 = 1 << 15;
    pub const LOCK_STORAGE: u64 = 1 << 16;
}

/// The capabilities of every server; [`STATE_BLOB_CAPABILITIES`] are
/// added when the server can seal state blobs.
pub const BASE_CAPABILITIES: u64 = cap::INIT
    | cap::SHUTDOWN
    | cap::GET_TPMESTABLISHED
    | cap::SET_LOCALITY
    | cap::HASHING
    | cap::CANCEL_TPM_CMD
    | cap::STORE_VOLATILE
    | cap::RESET_TPMESTABLISHED
    | cap::STOP
    | cap::GET_CONFIG
    | cap::SET_DATAFD
    | cap::SET_BUFFERSIZE
    | cap::GET_INFO
    | cap::SEND_COMMAND_HEADER
    | cap::LOCK_STORAGE;

/// CMD_GET_STATEBLOB and CMD_SET_STATEBLOB.
pub const STATE_BLOB_CAPABILITIES: u64 = cap::GET_STATEBLOB | cap::SET_STATEBLOB;

/// Control channel result codes (TPM 1.2 `TPM_RESULT`s, as swtpm uses them).
pub mod res {
    pub const SUCCESS: u32 = 0x00;
    pub const BAD_PARAMETER: u32 = 0x03;
    pub const FAIL: u32 = 0x09;
    pub const BAD_ORDINAL: u32 = 0x0A;
    pub const IOERROR: u32 = 0x1F;
    pub const BAD_LOCALITY: u32 = 0x3D;
}

/// State blob types (`PTM_BLOB_TYPE_*`).
pub mod blob {
    pub const PERMANENT: u32 = 1;
    pub const VOLATILE: u32 = 2;
    pub const SAVESTATE: u32 = 3;
}

/// `PTM_STATE_FLAG_*`.
pub mod state_flag {
    /// Request: the client asks for a decrypted blob (QEMU always does;
    /// vtpm's blobs are always sealed).
    pub const DECRYPTED: u32 = 1;
    /// Reply: the blob is sealed. (SET requests may omit it: sealed
    /// blobs are recognized by their header.)
    pub const ENCRYPTED: u32 = 2;
}

/// `PTM_INIT_FLAG_DELETE_VOLATILE`.
pub const INIT_FLAG_DELETE_VOLATILE: u32 = 1;

/// `PTM_CONFIG_FLAG_*`.
pub mod config_flag {
    pub const FILE_KEY: u32 = 1;
    pub const MIGRATION_KEY: u32 = 2;
}

/// `SWTPM_INFO_*` flags of CMD_GET_INFO.
pub mod info_flag {
    pub const TPM_SPECIFICATION: u64 = 1;
    pub const TPM_ATTRIBUTES: u64 = 2;
}

/// TPM_SEND_COMMAND: first word of a data channel command with a header.
const SEND_COMMAND: [u8; 4] = [0, 0, 0, 8];
/// The response to a TPM command while the TPM is not running:
/// TPM_ST_NO_SESSIONS, size 10, TPM_RC_FAILURE.
pub const NOT_RUNNING: [u8; 10] = [0x80, 0x01, 0, 0, 0, 0x0A, 0, 0, 0x01, 0x01];
/// The only buffer size supported (CMD_SET_BUFFERSIZE).
const BUFFER_SIZE: u32 = super::MAX_COMMAND as u32;
/// Largest CMD_HASH_DATA payload (`ptm_hdata`).
const MAX_HASH_DATA: usize = 4096;
/// Largest CMD_SET_STATEBLOB blob: a sealed state file of the largest
/// image there can be.
const MAX_SET_BLOB: u64 = vtpm_store::format::MAX_FILE_LEN;
/// Largest CMD_GET_INFO chunk (`PTM_GETINFO_SIZE`).
const GET_INFO_CHUNK: usize = 3 * 1024;
/// Time the rest of a control request has once its first byte arrived
/// (swtpm allows 500 ms).
const CONTROL_TIMEOUT: Duration = Duration::from_millis(500);
/// Extra time for the body of CMD_SET_STATEBLOB.
const SET_BLOB_TIMEOUT: Duration = Duration::from_secs(10);
/// Time the rest of a TPM command has once its first byte arrived.
const DATA_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reply may wait for a client that does not read it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at the storage lock for INIT and for a command after the
/// lock was released (swtpm: 300 × 10 ms).
const LOCK_RETRIES: u32 = 300;
/// Attempts at the storage lock at the first TPM command of an incoming
/// migration that received no state (swtpm: one second).
const FIRST_LOCK_RETRIES: u32 = 100;

/// Where `vtpm serve` listens.
pub enum Endpoints {
    /// TCP, data and control channel.
    Tcp(std::net::SocketAddr, std::net::SocketAddr),
    /// Unix stream sockets, data and control channel.
    Unix(std::path::PathBuf, std::path::PathBuf),
}

/// The key state blobs are sealed with (vtpm-store format, AES-256-XTS +
/// HMAC-SHA-256).
#[derive(Debug, Clone)]
pub struct BlobKey {
    /// The key.
    pub key: MasterKey,
    /// It is a migration key (`--migration-key`), not the state key.
    pub migration: bool,
}

/// TPM2_Startup sent by the server itself (`--flags startup-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupType {
    /// TPM_SU_CLEAR.
    Clear,
    /// TPM_SU_STATE.
    State,
}

/// What the server does beyond the base protocol.
#[derive(Debug, Default)]
pub struct Options {
    /// Seal GET_STATEBLOB blobs / open SET_STATEBLOB blobs with this key;
    /// without one the two commands are not offered.
    pub blob_key: Option<BlobKey>,
    /// The state file is encrypted (GET_CONFIG's FILE_KEY flag).
    pub file_key: bool,
    /// The state file's lock (LOCK_STORAGE, migration handoff).
    pub storage: Option<Storage>,
    /// Release the storage lock once the savestate blob was sent.
    pub release_lock_outgoing: bool,
    /// CMD_SHUTDOWN ends the process.
    pub exit_on_shutdown: bool,
    /// The end of a data connection ends the process (`--terminate`).
    pub terminate_on_data_close: bool,
    /// The end of a control connection ends the process (`--ctrl
    /// …,terminate`).
    pub terminate_on_control_close: bool,
    /// SET_LOCALITY 4 is refused (`--locality reject-locality-4`).
    pub reject_locality_4: bool,
    /// Close a listening data channel's connection after each response
    /// (`--server …,disconnect`).
    pub data_disconnect: bool,
    /// Storage deferred (`--migration incoming`) and the TPM was asked to
    /// run without INIT: power it on (and send this Startup) when the
    /// lock is first taken.
    pub deferred_start: Option<Option<StartupType>>,
}

/// Why a server asks the process to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// CMD_SHUTDOWN.
    Shutdown,
    /// The data connection ended (`--terminate`).
    DataClosed,
    /// The control connection ended (`--ctrl …,terminate`).
    ControlClosed,
    /// The process received a termination signal.
    Signal(&'static str),
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Exit::Shutdown => "the control channel client sent CMD_SHUTDOWN",
            Exit::DataClosed => "the data channel client disconnected (--terminate)",
            Exit::ControlClosed => "the control channel client disconnected (terminate)",
            Exit::Signal(name) => return write!(f, "received {name}"),
        })
    }
}

/// Powers the TPM on and, if asked, sends TPM2_Startup.
pub fn auto_start(tpm: &mut Tpm, startup: Option<StartupType>) {
    tpm.power_on();
    if let Some(su) = startup {
        let su_byte = match su {
            StartupType::Clear => 0,
            StartupType::State => 1,
        };
        let command = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, su_byte];
        let response = tpm.execute(0, &command);
        let rc = be_u32(response.get(6..).unwrap_or_default());
        if rc == 0 {
            log::info!("sent TPM2_Startup({su:?})");
        } else {
            log::warn!("TPM2_Startup({su:?}) answered TPM_RC {rc:#x}");
        }
    }
}

/// Control channel state beyond the engine.
#[derive(Default)]
struct CtrlState {
    /// SET_STATEBLOB blobs (opened) waiting for INIT: permanent, volatile.
    stashed_permanent: Option<Zeroizing<Vec<u8>>>,
    stashed_volatile: Option<Zeroizing<Vec<u8>>>,
    /// The sealed blobs last produced by GET_STATEBLOB (offset > 0 reads
    /// continue the same blob).
    outgoing_permanent: Option<Vec<u8>>,
    outgoing_volatile: Option<Vec<u8>>,
    /// See [`Options::deferred_start`].
    pending_start: Option<Option<StartupType>>,
}

/// State shared by both channels.
struct Shared {
    tpm: SharedTpm,
    /// Locality of the next TPM command (CMD_SET_LOCALITY, or the
    /// command header).
    locality: AtomicU8,
    opts: Options,
    /// Locked after `tpm` when both are needed.
    state: Mutex<CtrlState>,
    /// A data channel passed by CMD_SET_DATAFD is being served.
    data_fd_active: AtomicBool,
    exit: OnceLock<Sender<Exit>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, CtrlState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn request_exit(&self, why: Exit) {
        if let Some(tx) = self.exit.get() {
            let _ = tx.send(why);
        }
    }

    fn capabilities(&self) -> u64 {
        if self.opts.blob_key.is_some() {
            BASE_CAPABILITIES | STATE_BLOB_CAPABILITIES
        } else {
            BASE_CAPABILITIES
        }
    }

    /// Makes sure the storage lock is held, taking it (`1 + retries`
    /// attempts) if needed. The first time, the engine is loaded from the
    /// state file (replacing the placeholder of a deferred start).
    fn ensure_storage(&self, tpm: &mut Tpm, retries: u32) -> Result<(), String> {
        let Some(storage) = &self.opts.storage else {
            return Ok(());
        };
        match storage.lock(retries) {
            Ok(Locked::Already | Locked::Again) => Ok(()),
            Ok(Locked::First(image)) => {
                let path = storage.path();
                match Tpm::new(Box::new(storage.platform(image))) {
                    Ok(new) => {
                        log::info!("loaded the TPM state from {}", path.display());
                        *tpm = new;
                        if let Some(startup) = self.state().pending_start.take() {
                            auto_start(tpm, startup);
                        }
                        Ok(())
                    }
                    Err(e) => {
                        storage.unload();
                        Err(format!(
                            "loading the TPM state from {} failed: {e}",
                            path.display()
                        ))
                    }
                }
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Before a TPM command: the storage lock must be held when the TPM
    /// is (or is about to be) running. Returns whether the command may
    /// run.
    fn data_ready(&self, tpm: &mut Tpm) -> bool {
        if let Some(storage) = &self.opts.storage
            && !storage.is_locked()
        {
            let pending = self.state().pending_start.is_some();
            if tpm.is_powered() || pending {
                let retries = if storage.is_loaded() {
                    LOCK_RETRIES
                } else {
                    FIRST_LOCK_RETRIES
                };
                if let Err(e) = self.ensure_storage(tpm, retries) {
                    log::error!(
                        "{DATA}: cannot take the storage lock: {e}; answering TPM_RC_FAILURE"
                    );
                    return false;
                }
            }
        }
        tpm.is_powered()
    }
}

/// An swtpm-protocol server: its channels, bound, not yet serving.
pub struct SwtpmServer {
    data: Option<Listener>,
    control: Listener,
    shared: Arc<Shared>,
}

impl SwtpmServer {
    /// `vtpm serve`: binds both channels. TCP port 0 picks a free port.
    pub fn bind(tpm: SharedTpm, endpoints: &Endpoints) -> io::Result<SwtpmServer> {
        let (data, control) = match endpoints {
            Endpoints::Tcp(d, c) => (Listener::bind_tcp(*d)?, Listener::bind_tcp(*c)?),
            Endpoints::Unix(d, c) => (Listener::bind_unix(d)?, Listener::bind_unix(c)?),
        };
        Ok(SwtpmServer::new(
            tpm,
            control,
            Some(data),
            Options::default(),
        ))
    }

    /// A server on bound sockets: the control channel, and a listening
    /// data channel unless the client passes one with CMD_SET_DATAFD.
    pub fn new(
        tpm: SharedTpm,
        control: Listener,
        data: Option<Listener>,
        mut opts: Options,
    ) -> SwtpmServer {
        let pending_start = opts.deferred_start.take();
        SwtpmServer {
            data,
            control,
            shared: Arc::new(Shared {
                tpm,
                locality: AtomicU8::new(0),
                opts,
                state: Mutex::new(CtrlState {
                    pending_start,
                    ..CtrlState::default()
                }),
                data_fd_active: AtomicBool::new(false),
                exit: OnceLock::new(),
            }),
        }
    }

    /// The bound TCP (data, control) addresses; `None` for Unix sockets
    /// (or no data listener).
    pub fn local_addrs(&self) -> (Option<std::net::SocketAddr>, Option<std::net::SocketAddr>) {
        (
            self.data.as_ref().and_then(Listener::local_addr),
            self.control.local_addr(),
        )
    }

    /// `vtpm serve`: starts serving. Nothing here stops the server (the
    /// options of `vtpm serve` never end the process), so `stop` is unused
    /// but kept for symmetry with the mssim server.
    pub fn spawn(self, _stop: Sender<super::StopReason>) -> io::Result<Vec<JoinHandle<()>>> {
        self.start(None)
    }

    /// Starts serving; the reasons to end the process (see [`Options`])
    /// are sent on `exit`.
    pub fn start(self, exit: Option<Sender<Exit>>) -> io::Result<Vec<JoinHandle<()>>> {
        if let Some(tx) = exit {
            let _ = self.shared.exit.set(tx);
        }
        let mut threads = Vec::new();
        if let Some(data) = self.data {
            let shared = self.shared.clone();
            threads.push(spawn_accept("swtpm data channel", data, move |accepted| {
                let stream = match accepted {
                    Accepted::Tcp(s, peer) => {
                        if let Err(e) = s
                            .set_nodelay(true)
                            .and_then(|()| s.set_write_timeout(Some(WRITE_TIMEOUT)))
                        {
                            log::debug!("setting socket options for {peer} failed: {e}");
                        }
                        Stream::Tcp(s, peer)
                    }
                    Accepted::Unix(s, peer) => {
                        if let Err(e) = s.set_write_timeout(Some(WRITE_TIMEOUT)) {
                            log::debug!("setting the write timeout failed: {e}");
                        }
                        Stream::Unix(s, peer)
                    }
                };
                let mut conn = Conn::new(stream, DATA_TIMEOUT);
                serve_data(&shared, &mut conn);
                if shared.opts.terminate_on_data_close {
                    shared.request_exit(Exit::DataClosed);
                    return false;
                }
                true
            })?);
        }
        let shared = self.shared;
        threads.push(spawn_accept(
            "swtpm control channel",
            self.control,
            move |accepted| {
                let conn = match accepted {
                    Accepted::Tcp(s, peer) => {
                        if let Err(e) = s.set_nodelay(true) {
                            log::debug!("setting TCP_NODELAY for {peer} failed: {e}");
                        }
                        CtrlConn::new(CtrlSocket::Tcp(s), peer, CONTROL_TIMEOUT, WRITE_TIMEOUT)
                    }
                    Accepted::Unix(s, peer) => {
                        CtrlConn::new(CtrlSocket::Unix(s), peer, CONTROL_TIMEOUT, WRITE_TIMEOUT)
                    }
                };
                match serve_control(&shared, conn) {
                    ControlEnd::Exit => false,
                    ControlEnd::Closed if shared.opts.terminate_on_control_close => {
                        shared.request_exit(Exit::ControlClosed);
                        false
                    }
                    ControlEnd::Closed => true,
                }
            },
        )?);
        Ok(threads)
    }
}

/// An accepted connection.
enum Accepted {
    Tcp(TcpStream, String),
    Unix(UnixStream, String),
}

/// Starts a thread that accepts connections on `listener` one at a time
/// and hands each to `serve`, until `serve` answers false. The listener
/// (and a Unix socket's path) goes away with the thread.
fn spawn_accept<F>(
    name: &'static str,
    listener: Listener,
    mut serve: F,
) -> io::Result<JoinHandle<()>>
where
    F: FnMut(Accepted) -> bool + Send + 'static,
{
    log::debug!("{name}: listening on {listener}");
    thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            loop {
                let accepted = match &listener {
                    Listener::Tcp(l) => l
                        .accept()
                        .map(|(s, peer)| Accepted::Tcp(s, peer.to_string())),
                    Listener::Unix(l, path) => l
                        .accept()
                        .map(|(s, _)| Accepted::Unix(s, path.display().to_string())),
                };
                match accepted {
                    Ok(a) => {
                        if !serve(a) {
                            return;
                        }
                    }
                    Err(e) => {
                        log::warn!("{name}: accept failed: {e}");
                        // Out of descriptors and the like: do not spin.
                        thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        })
}

/// Localities 5–31 do not exist; commands claiming them run at 0.
fn normalize_locality(locality: u8) -> u8 {
    if (5..32).contains(&locality) {
        0
    } else {
        locality
    }
}

fn be_u32(b: &[u8]) -> u32 {
    b.get(..4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_be_bytes)
}

const DATA: &str = "swtpm data channel";

/// Serves TPM commands on one data connection until it ends.
fn serve_data(shared: &Shared, conn: &mut Conn) {
    loop {
        match data_request(shared, conn) {
            Ok(true) if !shared.opts.data_disconnect => {}
            Ok(_) => return,
            Err(e) => {
                log_read_end(DATA, conn, &e);
                return;
            }
        }
    }
}

/// Serves one TPM command. `Ok(false)`: drop the connection.
fn data_request(shared: &Shared, conn: &mut Conn) -> Result<bool, ReadError> {
    conn.begin_request()?;
    // Ten bytes: a TPM command header, or the 9-byte command header and
    // the command's first byte.
    let mut head = [0u8; 10];
    conn.read_exact(&mut head)?;
    let tag = head.get(..2).unwrap_or_default();
    let with_header = head.starts_with(&SEND_COMMAND) && tag != [0x80, 0x01] && tag != [0x80, 0x02];
    let (size, locality) = if with_header {
        let locality = normalize_locality(head[4]);
        shared.locality.store(locality, Ordering::Relaxed);
        (be_u32(head.get(5..).unwrap_or_default()), locality)
    } else {
        (
            be_u32(head.get(2..).unwrap_or_default()),
            shared.locality.load(Ordering::Relaxed),
        )
    };
    let len = match usize::try_from(size) {
        Ok(n) if (10..=super::MAX_COMMAND).contains(&n) => n,
        _ => {
            log::warn!(
                "{DATA}: {}: command size {size} is outside 10..={}; closing the connection",
                conn.peer(),
                super::MAX_COMMAND
            );
            return Ok(false);
        }
    };
    let mut command = Vec::with_capacity(len);
    command.extend_from_slice(if with_header {
        head.get(9..).unwrap_or_default()
    } else {
        &head
    });
    let have = command.len();
    command.resize(len, 0);
    conn.read_exact(command.get_mut(have..).unwrap_or_default())?;

    let response = {
        let mut tpm = lock(&shared.tpm);
        if shared.data_ready(&mut tpm) {
            tpm.execute(locality, &command)
        } else {
            NOT_RUNNING.to_vec()
        }
    };
    let sent = if with_header {
        let mut out = Vec::with_capacity(response.len() + 8);
        put_u32(&mut out, u32::try_from(response.len()).unwrap_or(0));
        out.extend_from_slice(&response);
        put_u32(&mut out, 0);
        conn.send(&out)
    } else {
        conn.send(&response)
    };
    match sent {
        Ok(()) => Ok(true),
        Err(e) => {
            log::warn!(
                "{DATA}: {}: write failed: {e}; closing the connection",
                conn.peer()
            );
            Ok(false)
        }
    }
}

const CTRL: &str = "swtpm control channel";

/// What to do around sending a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Nothing,
    /// Release the storage lock (`release-lock-outgoing`); done just
    /// before the reply is sent.
    ReleaseLock,
    /// End the process.
    Exit(Exit),
}

/// A control request's outcome.
struct Reply {
    bytes: Vec<u8>,
    /// The connection can carry another request.
    keep: bool,
    then: Then,
}

impl Reply {
    fn result(code: u32) -> Reply {
        Reply::bytes(code.to_be_bytes().to_vec())
    }

    fn bytes(bytes: Vec<u8>) -> Reply {
        Reply {
            bytes,
            keep: true,
            then: Then::Nothing,
        }
    }

    /// The request's body was truncated, late or too long: answer
    /// TPM_BAD_PARAMETER, then drop the connection (what follows cannot
    /// be framed).
    fn bad_body() -> Reply {
        Reply {
            bytes: res::BAD_PARAMETER.to_be_bytes().to_vec(),
            keep: false,
            then: Then::Nothing,
        }
    }

    /// A CMD_GET_STATEBLOB reply header: result, state flags, total
    /// length and length.
    fn blob_header(code: u32) -> Reply {
        let mut out = Vec::with_capacity(16);
        for v in [code, 0, 0, 0] {
            put_u32(&mut out, v);
        }
        Reply::bytes(out)
    }
}

/// How a control connection ended.
enum ControlEnd {
    /// The client left or the connection had to be dropped.
    Closed,
    /// The process is ending.
    Exit,
}

/// Serves one control connection until it ends.
fn serve_control(shared: &Arc<Shared>, mut conn: CtrlConn) -> ControlEnd {
    loop {
        let code = match conn.begin_request().and_then(|()| conn.read_u32()) {
            Ok(c) => c,
            Err(e) => {
                log_ctrl_end(&conn, &e);
                return ControlEnd::Closed;
            }
        };
        let reply = match control_request(shared, &mut conn, code) {
            Ok(r) => r,
            Err(e @ (ReadError::Truncated | ReadError::TimedOut)) => {
                log::warn!("{CTRL}: {}: command {code:#x}: {e}", conn.peer());
                Reply::bad_body()
            }
            Err(e) => {
                log_ctrl_end(&conn, &e);
                return ControlEnd::Closed;
            }
        };
        let unclaimed = conn.drop_fds();
        if unclaimed > 0 {
            log::warn!(
                "{CTRL}: {}: closed {unclaimed} file descriptor(s) sent with command {code:#x}",
                conn.peer()
            );
        }
        // Released before the reply leaves: a destination that is told the
        // blobs were taken finds the lock free.
        if reply.then == Then::ReleaseLock
            && let Some(storage) = &shared.opts.storage
        {
            storage.release();
        }
        if let Err(e) = conn.send(&reply.bytes) {
            log::warn!(
                "{CTRL}: {}: write failed: {e}; closing the connection",
                conn.peer()
            );
            return ControlEnd::Closed;
        }
        if let Then::Exit(why) = reply.then {
            shared.request_exit(why);
            return ControlEnd::Exit;
        }
        if !reply.keep {
            return ControlEnd::Closed;
        }
    }
}

fn log_ctrl_end(conn: &CtrlConn, e: &ReadError) {
    match e {
        ReadError::Closed => log::debug!("{CTRL}: {}: {e}", conn.peer()),
        _ => log::warn!("{CTRL}: {}: {e}; closing the connection", conn.peer()),
    }
}

/// Reads a `ptm_loc` / `ptm_reset_est` request: one locality byte, which
/// QEMU pads to four bytes (sizeof the union). Padding that arrived with
/// the byte is dropped.
fn read_locality(conn: &mut CtrlConn) -> Result<u8, ReadError> {
    let locality = conn.read_u8()?;
    conn.discard_buffered(3);
    Ok(locality)
}

fn control_request(
    shared: &Arc<Shared>,
    conn: &mut CtrlConn,
    code: u32,
) -> Result<Reply, ReadError> {
    let tpm = &shared.tpm;
    Ok(match code {
        cmd::GET_CAPABILITY => {
            // A u64; its high half is 0, which newer QEMU reads as the
            // result code of `ptm_cap_n`.
            Reply::bytes(shared.capabilities().to_be_bytes().to_vec())
        }
        cmd::INIT => {
            let flags = conn.read_u32()?;
            log::debug!("{CTRL}: INIT (flags {flags:#x})");
            Reply::result(init(shared, flags & INIT_FLAG_DELETE_VOLATILE != 0))
        }
        cmd::SHUTDOWN | cmd::STOP => {
            let name = if code == cmd::STOP {
                "STOP"
            } else {
                "SHUTDOWN"
            };
            let mut tpm = lock(tpm);
            let released = shared
                .opts
                .storage
                .as_ref()
                .is_some_and(|s| s.is_loaded() && !s.is_locked());
            if released && code == cmd::SHUTDOWN {
                // The state file belongs to a migration destination now.
                log::info!("{CTRL}: SHUTDOWN: the storage lock was released; not writing state");
            } else {
                log::info!("{CTRL}: {name}: powering the TPM off");
                tpm.power_off();
            }
            let mut reply = Reply::result(res::SUCCESS);
            if code == cmd::SHUTDOWN && shared.opts.exit_on_shutdown {
                reply.then = Then::Exit(Exit::Shutdown);
            }
            reply
        }
        cmd::GET_TPMESTABLISHED => {
            let tpm = lock(tpm);
            if !tpm.is_powered() {
                return Ok(Reply::result(res::BAD_ORDINAL));
            }
            let mut out = Vec::with_capacity(8);
            put_u32(&mut out, res::SUCCESS);
            out.extend_from_slice(&[u8::from(tpm.tpm_established()), 0, 0, 0]);
            Reply::bytes(out)
        }
        cmd::SET_LOCALITY => {
            let locality = read_locality(conn)?;
            if locality > 4 || (locality == 4 && shared.opts.reject_locality_4) {
                Reply::result(res::BAD_LOCALITY)
            } else {
                shared.locality.store(locality, Ordering::Relaxed);
                Reply::result(res::SUCCESS)
            }
        }
        cmd::RESET_TPMESTABLISHED => {
            let locality = read_locality(conn)?;
            let mut tpm = lock(tpm);
            if !tpm.is_powered() {
                Reply::result(res::BAD_ORDINAL)
            } else if locality > 4 || tpm.reset_tpm_established(locality).is_err() {
                Reply::result(res::BAD_LOCALITY)
            } else {
                Reply::result(res::SUCCESS)
            }
        }
        cmd::HASH_START | cmd::HASH_END => {
            let mut tpm = lock(tpm);
            if !tpm.is_powered() {
                return Ok(Reply::result(res::BAD_ORDINAL));
            }
            if code == cmd::HASH_START {
                tpm.hash_start();
            } else {
                tpm.hash_end();
            }
            Reply::result(res::SUCCESS)
        }
        cmd::HASH_DATA => {
            let size = conn.read_u32()?;
            let len = match usize::try_from(size) {
                Ok(n) if n <= MAX_HASH_DATA => n,
                _ => {
                    log::warn!(
                        "{CTRL}: {}: HASH_DATA of {size} bytes is over {MAX_HASH_DATA}",
                        conn.peer()
                    );
                    return Ok(Reply::bad_body());
                }
            };
            let data = conn.read_vec(len)?;
            let mut tpm = lock(tpm);
            if !tpm.is_powered() {
                return Ok(Reply::result(res::BAD_ORDINAL));
            }
            tpm.hash_data(&data);
            Reply::result(res::SUCCESS)
        }
        cmd::CANCEL_TPM_CMD => {
            // Commands run to completion under the engine's lock, so
            // there is never one in flight to cancel.
            Reply::result(if lock(tpm).is_powered() {
                res::SUCCESS
            } else {
                res::BAD_ORDINAL
            })
        }
        cmd::STORE_VOLATILE => {
            let mut tpm = lock(tpm);
            if !tpm.is_powered() {
                return Ok(Reply::result(res::BAD_ORDINAL));
            }
            match tpm.store_volatile() {
                Ok(()) => Reply::result(res::SUCCESS),
                Err(e) => {
                    log::error!("{CTRL}: STORE_VOLATILE failed: {e}");
                    Reply::result(res::FAIL)
                }
            }
        }
        cmd::GET_STATEBLOB => {
            let flags = conn.read_u32()?;
            let kind = conn.read_u32()?;
            let offset = conn.read_u32()?;
            get_state_blob(shared, flags, kind, offset)
        }
        cmd::SET_STATEBLOB => {
            let flags = conn.read_u32()?;
            let kind = conn.read_u32()?;
            let length = conn.read_u32()?;
            if u64::from(length) > MAX_SET_BLOB {
                log::warn!(
                    "{CTRL}: {}: SET_STATEBLOB of {length} bytes is over {MAX_SET_BLOB}",
                    conn.peer()
                );
                return Ok(Reply::bad_body());
            }
            conn.extend_deadline(SET_BLOB_TIMEOUT);
            let body = conn.read_vec(usize::try_from(length).unwrap_or(usize::MAX))?;
            set_state_blob(shared, flags, kind, &body)
        }
        cmd::GET_CONFIG => {
            let mut flags = 0;
            if shared.opts.file_key {
                flags |= config_flag::FILE_KEY;
            }
            if shared.opts.blob_key.as_ref().is_some_and(|k| k.migration) {
                flags |= config_flag::MIGRATION_KEY;
            }
            let mut out = Vec::with_capacity(8);
            put_u32(&mut out, res::SUCCESS);
            put_u32(&mut out, flags);
            Reply::bytes(out)
        }
        cmd::SET_DATAFD => set_data_fd(shared, conn),
        cmd::SET_BUFFERSIZE => {
            let requested = conn.read_u32()?;
            if requested > 0 && lock(tpm).is_powered() {
                return Ok(Reply::result(res::BAD_ORDINAL));
            }
            log::debug!("{CTRL}: SET_BUFFERSIZE {requested}: the buffer size is {BUFFER_SIZE}");
            let mut out = Vec::with_capacity(16);
            for v in [res::SUCCESS, BUFFER_SIZE, BUFFER_SIZE, BUFFER_SIZE] {
                put_u32(&mut out, v);
            }
            Reply::bytes(out)
        }
        cmd::GET_INFO => {
            let flags = conn.read_u64()?;
            let offset = conn.read_u32()?;
            let _pad = conn.read_u32()?;
            get_info(flags, offset)
        }
        cmd::LOCK_STORAGE => {
            let retries = conn.read_u32()?;
            let mut tpm = lock(tpm);
            match shared.ensure_storage(&mut tpm, retries) {
                Ok(()) => Reply::result(res::SUCCESS),
                Err(e) => {
                    log::error!("{CTRL}: LOCK_STORAGE: {e}");
                    Reply::result(res::FAIL)
                }
            }
        }
        _ => {
            log::warn!("{CTRL}: {}: unsupported command {code:#x}", conn.peer());
            // Its body, if any, arrived with it: drop it so the next
            // request is framed right.
            conn.discard_buffered(usize::MAX);
            Reply::result(res::BAD_ORDINAL)
        }
    })
}

/// CMD_INIT: power on (or reset) the TPM with the state blobs set since
/// the last INIT, or the state it has.
fn init(shared: &Shared, delete_volatile: bool) -> u32 {
    let mut tpm = lock(&shared.tpm);
    // INIT supersedes a start deferred until the lock.
    shared.state().pending_start = None;
    if let Err(e) = shared.ensure_storage(&mut tpm, LOCK_RETRIES) {
        log::error!("{CTRL}: INIT: cannot take the storage lock: {e}");
        return res::FAIL;
    }
    let (permanent, volatile) = {
        let mut st = shared.state();
        (st.stashed_permanent.take(), st.stashed_volatile.take())
    };
    if let Some(image) = permanent {
        if tpm.is_powered() {
            tpm.power_off();
        }
        if let Err(e) = tpm.set_permanent_state(&image) {
            log::error!("{CTRL}: INIT: the permanent state blob cannot be used: {e}");
            return res::FAIL;
        }
        log::info!("{CTRL}: INIT: permanent state set from a state blob");
    }
    if tpm.is_powered() {
        tpm.tpm_init();
    } else {
        tpm.power_on();
    }
    if let Some(blob) = volatile {
        if delete_volatile && let Err(e) = tpm.restore_stored_volatile(true) {
            log::error!("{CTRL}: INIT: deleting the stored volatile state failed: {e}");
        }
        if let Err(e) = tpm.set_volatile_state(&blob) {
            log::error!("{CTRL}: INIT: the volatile state blob cannot be used: {e}");
            tpm.power_off();
            return res::FAIL;
        }
        log::info!("{CTRL}: INIT: volatile state restored from a state blob");
        return res::SUCCESS;
    }
    match tpm.restore_stored_volatile(delete_volatile) {
        Ok(true) => {
            log::info!("{CTRL}: INIT: resumed from the stored volatile state");
            res::SUCCESS
        }
        Ok(false) => res::SUCCESS,
        Err(e) => {
            log::error!("{CTRL}: INIT: the stored volatile state cannot be used: {e}");
            tpm.power_off();
            res::FAIL
        }
    }
}

/// Seals `data` with the blob key under a fresh salt.
fn seal(key: &MasterKey, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut salt = [0u8; vtpm_store::format::SALT_LEN];
    getrandom::fill(&mut salt).map_err(|e| format!("no entropy for the salt: {e}"))?;
    vtpm_store::seal(data, key, &salt).map_err(|e| e.to_string())
}

/// CMD_GET_STATEBLOB.
fn get_state_blob(shared: &Shared, flags: u32, kind: u32, offset: u32) -> Reply {
    let mut tpm = lock(&shared.tpm);
    if !tpm.is_powered() {
        return Reply::result(res::BAD_ORDINAL);
    }
    let Some(key) = &shared.opts.blob_key else {
        log::warn!("{CTRL}: GET_STATEBLOB: this server has no key to seal state blobs with");
        return Reply::result(res::BAD_ORDINAL);
    };
    if flags & state_flag::DECRYPTED != 0 {
        log::debug!("{CTRL}: GET_STATEBLOB: a decrypted blob was asked for; vtpm's are sealed");
    }
    let mut st = shared.state();
    let sealed: Vec<u8> = match kind {
        blob::PERMANENT | blob::VOLATILE => {
            let cached = if kind == blob::PERMANENT {
                &mut st.outgoing_permanent
            } else {
                &mut st.outgoing_volatile
            };
            if offset == 0 || cached.is_none() {
                let plain = Zeroizing::new(if kind == blob::PERMANENT {
                    tpm.permanent_state()
                } else {
                    tpm.volatile_state()
                });
                match seal(&key.key, &plain) {
                    Ok(s) => *cached = Some(s),
                    Err(e) => {
                        log::error!("{CTRL}: GET_STATEBLOB: sealing failed: {e}");
                        return Reply::blob_header(res::FAIL);
                    }
                }
            }
            cached.clone().unwrap_or_default()
        }
        blob::SAVESTATE => Vec::new(),
        _ => {
            log::warn!("{CTRL}: GET_STATEBLOB: unknown blob type {kind}");
            return Reply::blob_header(res::BAD_PARAMETER);
        }
    };
    drop(st);
    drop(tpm);
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(sealed.len());
    let data = sealed.get(start..).unwrap_or_default();
    let length = u32::try_from(data.len()).unwrap_or(0);
    let state_flags = if kind == blob::SAVESTATE {
        0
    } else {
        state_flag::ENCRYPTED
    };
    let mut out = Vec::with_capacity(16 + data.len());
    for v in [res::SUCCESS, state_flags, length, length] {
        put_u32(&mut out, v);
    }
    out.extend_from_slice(data);
    log::info!(
        "{CTRL}: GET_STATEBLOB: type {kind}, {} bytes from offset {offset}",
        data.len()
    );
    let mut reply = Reply::bytes(out);
    if kind == blob::SAVESTATE && shared.opts.release_lock_outgoing {
        reply.then = Then::ReleaseLock;
    }
    reply
}

/// CMD_SET_STATEBLOB: the blob is kept until the next INIT.
fn set_state_blob(shared: &Shared, flags: u32, kind: u32, body: &[u8]) -> Reply {
    let tpm = lock(&shared.tpm);
    if tpm.is_powered() {
        log::warn!("{CTRL}: SET_STATEBLOB while the TPM is running (send CMD_STOP first)");
        return Reply::result(res::BAD_ORDINAL);
    }
    let Some(key) = &shared.opts.blob_key else {
        log::warn!("{CTRL}: SET_STATEBLOB: this server has no key to open state blobs with");
        return Reply::result(res::BAD_ORDINAL);
    };
    if kind == blob::SAVESTATE {
        if body.is_empty() {
            return Reply::result(res::SUCCESS);
        }
        log::error!(
            "{CTRL}: SET_STATEBLOB: a non-empty savestate blob ({} bytes) cannot come from \
             vtpm (its savestate is always empty); refused",
            body.len()
        );
        return Reply::result(res::BAD_PARAMETER);
    }
    if kind != blob::PERMANENT && kind != blob::VOLATILE {
        log::warn!("{CTRL}: SET_STATEBLOB: unknown blob type {kind}");
        return Reply::result(res::BAD_PARAMETER);
    }
    let mut st = shared.state();
    let slot = if kind == blob::PERMANENT {
        &mut st.stashed_permanent
    } else {
        &mut st.stashed_volatile
    };
    if body.is_empty() {
        *slot = None;
        return Reply::result(res::SUCCESS);
    }
    // Sealed blobs say so in their header (as swtpm's do: `swtpm_ioctl
    // --load` sends them with state_flags 0), so the flag is not needed;
    // anything that is not one is refused, whatever the flag says.
    if let Err(e) = vtpm_store::read_header(body) {
        log::error!(
            "{CTRL}: SET_STATEBLOB: type {kind} blob (state flags {flags:#x}) is not a sealed \
             vtpm state blob ({e}); vtpm only accepts the sealed blobs it produces"
        );
        return Reply::result(res::BAD_PARAMETER);
    }
    match vtpm_store::unseal(body, &key.key) {
        Ok(plain) => {
            log::info!("{CTRL}: SET_STATEBLOB: type {kind}, {} bytes", body.len());
            *slot = Some(plain);
            Reply::result(res::SUCCESS)
        }
        Err(e) => {
            log::error!(
                "{CTRL}: SET_STATEBLOB: type {kind} blob cannot be opened with the {} key: {e}",
                if key.migration { "migration" } else { "state" }
            );
            Reply::result(res::FAIL)
        }
    }
}

/// CMD_SET_DATAFD: serve the data channel on the socket passed with the
/// request.
fn set_data_fd(shared: &Arc<Shared>, conn: &mut CtrlConn) -> Reply {
    if shared.data_fd_active.load(Ordering::SeqCst) {
        log::warn!("{CTRL}: SET_DATAFD: a data channel is already being served");
        return Reply::result(res::IOERROR);
    }
    let Some(fd) = conn.take_fd() else {
        log::warn!(
            "{CTRL}: {}: SET_DATAFD without a file descriptor (SCM_RIGHTS)",
            conn.peer()
        );
        return Reply::result(res::BAD_PARAMETER);
    };
    if let Err(e) = rustix::net::sockopt::socket_type(&fd) {
        log::warn!("{CTRL}: SET_DATAFD: the descriptor is not a socket: {e}");
        return Reply::result(res::BAD_PARAMETER);
    }
    match spawn_data_fd(shared, fd) {
        Ok(()) => Reply::result(res::SUCCESS),
        Err(e) => {
            log::error!("{CTRL}: SET_DATAFD: cannot start serving it: {e}");
            Reply::result(res::FAIL)
        }
    }
}

fn spawn_data_fd(shared: &Arc<Shared>, fd: OwnedFd) -> io::Result<()> {
    let stream = UnixStream::from(fd);
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    shared.data_fd_active.store(true, Ordering::SeqCst);
    let shared2 = shared.clone();
    let spawned = thread::Builder::new()
        .name("swtpm data fd".into())
        .spawn(move || {
            log::info!("{DATA}: serving the socket passed by SET_DATAFD");
            let mut conn = Conn::new(Stream::Unix(stream, "data fd".into()), DATA_TIMEOUT);
            serve_data(&shared2, &mut conn);
            drop(conn);
            shared2.data_fd_active.store(false, Ordering::SeqCst);
            if shared2.opts.terminate_on_data_close {
                shared2.request_exit(Exit::DataClosed);
            }
        });
    if let Err(e) = spawned {
        shared.data_fd_active.store(false, Ordering::SeqCst);
        return Err(e);
    }
    Ok(())
}

/// The JSON text of CMD_GET_INFO, as libtpms' `TPMLIB_GetInfo` writes it.
pub fn info_text(flags: u64) -> String {
    let mut parts = Vec::new();
    if flags & info_flag::TPM_SPECIFICATION != 0 {
        parts.push(format!(
            "\"TPMSpecification\":{{\"family\":\"2.0\",\"level\":0,\"revision\":{}}}",
            vtpm_engine::commands::capability::get_capability::SPEC_REVISION
        ));
    }
    if flags & info_flag::TPM_ATTRIBUTES != 0 {
        let manufacturer =
            u32::from_be_bytes(vtpm_engine::commands::capability::get_capability::MANUFACTURER);
        parts.push(format!(
            "\"TPMAttributes\":{{\"manufacturer\":\"id:{manufacturer:08X}\",\
             \"version\":\"id:{:08X}\",\"model\":\"vtpm\"}}",
            firmware_version_1()
        ));
    }
    format!("{{{}}}", parts.join(","))
}

/// TPM_PT_FIRMWARE_VERSION_1 as the engine reports it: major << 16 |
/// minor of the package version.
fn firmware_version_1() -> u32 {
    let mut parts = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major << 16) | (minor & 0xFFFF)
}

/// CMD_GET_INFO: the NUL-terminated text from `offset`, at most
/// [`GET_INFO_CHUNK`] bytes per reply.
fn get_info(flags: u64, offset: u32) -> Reply {
    let mut text = info_text(flags).into_bytes();
    let strlen = text.len();
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    if offset >= strlen {
        return Reply::result(res::BAD_PARAMETER);
    }
    text.push(0);
    let chunk = text
        .get(offset..)
        .unwrap_or_default()
        .get(..GET_INFO_CHUNK.min(strlen + 1 - offset))
        .unwrap_or_default();
    let mut out = Vec::with_capacity(12 + chunk.len());
    put_u32(&mut out, res::SUCCESS);
    put_u32(&mut out, u32::try_from(text.len()).unwrap_or(0));
    put_u32(&mut out, u32::try_from(chunk.len()).unwrap_or(0));
    out.extend_from_slice(chunk);
    Reply::bytes(out)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::server::StopReason;
    use crate::server::test_util::{be, connect, roundtrip, send_and_close};
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, SocketAddr, TcpStream};
    use std::sync::{Mutex, mpsc};
    use vtpm_engine::{MemoryPlatform, Tpm};

    const GET_RANDOM_8: [u8; 12] = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7B, 0, 8];

    struct Fixture {
        data: SocketAddr,
        ctrl: SocketAddr,
        tpm: SharedTpm,
        _stop: mpsc::Receiver<StopReason>,
    }

    fn start() -> Fixture {
        let mut tpm = Tpm::new(Box::new(MemoryPlatform::new())).expect("engine");
        tpm.power_on();
        let tpm: SharedTpm = Arc::new(Mutex::new(tpm));
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let server = SwtpmServer::bind(tpm.clone(), &Endpoints::Tcp(any, any)).expect("bind");
        let (data, ctrl) = server.local_addrs();
        let (tx, rx) = mpsc::channel();
        server.spawn(tx).expect("spawn");
        Fixture {
            data: data.expect("data"),
            ctrl: ctrl.expect("ctrl"),
            tpm,
            _stop: rx,
        }
    }

    /// Sends a raw TPM command and reads the response by its size.
    fn transact(s: &mut TcpStream, command: &[u8]) -> Vec<u8> {
        s.write_all(command).expect("write");
        let mut head = [0u8; 10];
        s.read_exact(&mut head).expect("header");
        let size = be_u32(&head[2..]) as usize;
        let mut rest = vec![0u8; size - 10];
        s.read_exact(&mut rest).expect("body");
        let mut out = head.to_vec();
        out.extend(rest);
        out
    }

    #[test]
    fn raw_commands_many_per_connection() {
        let f = start();
        let mut s = connect(f.data);
        for _ in 0..3 {
            let rsp = transact(&mut s, &GET_RANDOM_8);
            assert_eq!(&rsp[..2], &[0x80, 0x01]);
            assert_eq!(be_u32(&rsp[2..]) as usize, rsp.len());
        }
    }

    #[test]
    fn command_header_is_unwrapped_and_locality_kept() {
        let f = start();
        let mut s = connect(f.data);
        let mut req = be(&[8]);
        req.push(3);
        req.extend(be(&[GET_RANDOM_8.len() as u32]));
        req.extend_from_slice(&GET_RANDOM_8);
        s.write_all(&req).expect("write");
        let mut size = [0u8; 4];
        s.read_exact(&mut size).expect("size");
        let size = u32::from_be_bytes(size) as usize;
        let mut rest = vec![0u8; size + 4];
        s.read_exact(&mut rest).expect("rest");
        assert_eq!(&rest[..2], &[0x80, 0x01]);
        assert_eq!(be_u32(&rest[2..]) as usize, size);
        assert_eq!(&rest[size..], &[0, 0, 0, 0]);
    }

    #[test]
    fn data_framing_errors_close_and_keep_serving() {
        let f = start();
        for bad in [
            // size below a header
            vec![0x80, 0x01, 0, 0, 0, 9, 0, 0, 1, 0x7B],
            // size above 4096
            vec![0x80, 0x01, 0, 0, 0x10, 1, 0, 0, 1, 0x7B],
            // size 0xFFFFFFFF
            vec![0x80, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 1, 0x7B],
            // truncated header
            vec![0x80, 0x01, 0, 0],
            // truncated body
            GET_RANDOM_8[..11].to_vec(),
            // command header with an oversize size
            [be(&[8]), vec![0], be(&[0x1_0000]), vec![0x80]].concat(),
        ] {
            let mut s = connect(f.data);
            assert_eq!(send_and_close(&mut s, &bad), Vec::<u8>::new(), "{bad:02x?}");
        }
        let mut s = connect(f.data);
        assert_eq!(
            be_u32(&transact(&mut s, &GET_RANDOM_8)[2..]),
            be_u32(&transact(&mut s, &GET_RANDOM_8)[2..])
        );
    }

    #[test]
    fn control_commands() {
        let f = start();
        let mut c = connect(f.ctrl);
        let caps = roundtrip(&mut c, &be(&[cmd::GET_CAPABILITY]), 8);
        assert_eq!(caps, BASE_CAPABILITIES.to_be_bytes());
        assert_eq!(BASE_CAPABILITIES, 0x1_FCFF);
        assert_eq!(BASE_CAPABILITIES | STATE_BLOB_CAPABILITIES, 0x1_FFFF);
        // tcti-swtpm's SET_LOCALITY: one byte.
        assert_eq!(
            roundtrip(&mut c, &[be(&[cmd::SET_LOCALITY]), vec![0]].concat(), 4),
            be(&[0])
        );
        // QEMU's: four bytes.
        assert_eq!(
            roundtrip(
                &mut c,
                &[be(&[cmd::SET_LOCALITY]), vec![2, 0, 0, 0]].concat(),
                4
            ),
            be(&[0])
        );
        assert_eq!(
            roundtrip(&mut c, &[be(&[cmd::SET_LOCALITY]), vec![5]].concat(), 4),
            be(&[res::BAD_LOCALITY])
        );
        let est = roundtrip(&mut c, &be(&[cmd::GET_TPMESTABLISHED]), 8);
        assert_eq!(&est[..4], &[0, 0, 0, 0]);
        assert_eq!(&est[5..], &[0, 0, 0]);
        assert_eq!(
            roundtrip(
                &mut c,
                &[be(&[cmd::RESET_TPMESTABLISHED]), vec![0, 0, 0, 0]].concat(),
                4
            ),
            be(&[res::BAD_LOCALITY])
        );
        assert_eq!(
            roundtrip(
                &mut c,
                &[be(&[cmd::RESET_TPMESTABLISHED]), vec![3, 0, 0, 0]].concat(),
                4
            ),
            be(&[0])
        );
        assert_eq!(roundtrip(&mut c, &be(&[cmd::GET_CONFIG]), 8), be(&[0, 0]));
        assert_eq!(
            roundtrip(&mut c, &be(&[cmd::SET_BUFFERSIZE, 0]), 16),
            be(&[0, 4096, 4096, 4096])
        );
        // A size can only be set while the TPM is stopped.
        assert_eq!(
            roundtrip(&mut c, &be(&[cmd::SET_BUFFERSIZE, 65536]), 4),
            be(&[res::BAD_ORDINAL])
        );
        assert_eq!(roundtrip(&mut c, &be(&[cmd::HASH_START]), 4), be(&[0]));
        assert_eq!(
            roundtrip(
                &mut c,
                &[be(&[cmd::HASH_DATA, 3]), b"abc".to_vec()].concat(),
                4
            ),
            be(&[0])
        );
        assert_eq!(roundtrip(&mut c, &be(&[cmd::HASH_END]), 4), be(&[0]));
        assert_eq!(roundtrip(&mut c, &be(&[cmd::CANCEL_TPM_CMD]), 4), be(&[0]));
        // Without a key to seal them, state blobs are not offered.
        assert_eq!(
            roundtrip(&mut c, &be(&[cmd::GET_STATEBLOB, 0, 1, 0]), 4),
            be(&[res::BAD_ORDINAL])
        );
        // Unknown commands answer TPM_BAD_ORDINAL and the connection stays
        // usable.
        assert_eq!(
            roundtrip(&mut c, &be(&[0x1234]), 4),
            be(&[res::BAD_ORDINAL])
        );
        assert_eq!(roundtrip(&mut c, &be(&[cmd::GET_CONFIG]), 8), be(&[0, 0]));
    }

    #[test]
    fn stop_and_init_cycle() {
        let f = start();
        let mut c = connect(f.ctrl);
        assert_eq!(roundtrip(&mut c, &be(&[cmd::STOP]), 4), be(&[0]));
        assert!(!lock(&f.tpm).is_powered());
        // Not running: data commands get TPM_RC_FAILURE, some control
        // commands TPM_BAD_ORDINAL.
        let mut s = connect(f.data);
        assert_eq!(transact(&mut s, &GET_RANDOM_8), NOT_RUNNING);
        assert_eq!(
            roundtrip(&mut c, &be(&[cmd::GET_TPMESTABLISHED]), 4),
            be(&[res::BAD_ORDINAL])
        );
        assert_eq!(
            roundtrip(&mut c, &be(&[cmd::HASH_START]), 4),
            be(&[res::BAD_ORDINAL])
        );
        assert_eq!(
            roundtrip(&mut c, &[be(&[cmd::HASH_DATA, 2]), vec![1, 2]].concat(), 4),
            be(&[res::BAD_ORDINAL])
        );
        // With the header, the not-running reply is wrapped too.
        let req = [be(&[8]), vec![0], be(&[12]), GET_RANDOM_8.to_vec()].concat();
        assert_eq!(
            roundtrip(&mut s, &req, 18),
            [be(&[10]), NOT_RUNNING.to_vec(), be(&[0])].concat()
        );
        // INIT powers on again.
        assert_eq!(roundtrip(&mut c, &be(&[cmd::INIT, 0]), 4), be(&[0]));
        assert!(lock(&f.tpm).is_powered());
        assert_ne!(transact(&mut s, &GET_RANDOM_8), NOT_RUNNING);
        // SHUTDOWN powers off and the server keeps serving.
        assert_eq!(roundtrip(&mut c, &be(&[cmd::SHUTDOWN]), 4), be(&[0]));
        assert!(!lock(&f.tpm).is_powered());
        assert_eq!(roundtrip(&mut c, &be(&[cmd::INIT, 1]), 4), be(&[0]));
        assert!(lock(&f.tpm).is_powered());
    }

    #[test]
    fn control_bad_bodies() {
        let f = start();
        // Truncated INIT body: TPM_BAD_PARAMETER, then closed.
        let mut c = connect(f.ctrl);
        assert_eq!(
            send_and_close(&mut c, &[be(&[cmd::INIT]), vec![0, 0]].concat()),
            be(&[res::BAD_PARAMETER])
        );
        // A body that never comes: TPM_BAD_PARAMETER after the deadline.
        let mut c = connect(f.ctrl);
        assert_eq!(
            roundtrip(&mut c, &be(&[cmd::SET_BUFFERSIZE]), 4),
            be(&[res::BAD_PARAMETER])
        );
        // Oversize HASH_DATA.
        let mut c = connect(f.ctrl);
        assert_eq!(
            send_and_close(&mut c, &be(&[cmd::HASH_DATA, 4097])),
            be(&[res::BAD_PARAMETER])
        );
        // Truncated command code: closed without a reply.
        let mut c = connect(f.ctrl);
        assert_eq!(send_and_close(&mut c, &[0, 0]), Vec::<u8>::new());
        // The channel keeps serving.
        let mut c = connect(f.ctrl);
        assert_eq!(roundtrip(&mut c, &be(&[cmd::GET_CONFIG]), 8), be(&[0, 0]));
    }

    #[test]
    fn unix_sockets() {
        use std::os::unix::net::UnixStream;
        let dir = std::env::temp_dir().join(format!("vtpm-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (data, ctrl) = (dir.join("data.sock"), dir.join("ctrl.sock"));
        let mut tpm = Tpm::new(Box::new(MemoryPlatform::new())).expect("engine");
        tpm.power_on();
        let server = SwtpmServer::bind(
            Arc::new(Mutex::new(tpm)),
            &Endpoints::Unix(data.clone(), ctrl.clone()),
        )
        .expect("bind");
        assert_eq!(server.local_addrs(), (None, None));
        let (tx, _rx) = mpsc::channel();
        server.spawn(tx).expect("spawn");
        let mut c = UnixStream::connect(&ctrl).expect("connect ctrl");
        c.write_all(&be(&[cmd::GET_CONFIG])).expect("write");
        let mut reply = [0u8; 8];
        c.read_exact(&mut reply).expect("reply");
        assert_eq!(reply.to_vec(), be(&[0, 0]));
        let mut d = UnixStream::connect(&data).expect("connect data");
        d.write_all(&GET_RANDOM_8).expect("write");
        let mut head = [0u8; 10];
        d.read_exact(&mut head).expect("response");
        assert_eq!(&head[..2], &[0x80, 0x01]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tcti_swtpm_connection_pattern() {
        // tcti-swtpm: connect and close the data channel, SET_LOCALITY on a
        // fresh control connection, then a new data connection per command.
        let f = start();
        drop(connect(f.data));
        let mut c = connect(f.ctrl);
        assert_eq!(
            send_and_close(&mut c, &[be(&[cmd::SET_LOCALITY]), vec![0]].concat()),
            be(&[0])
        );
        for _ in 0..3 {
            let mut s = connect(f.data);
            let rsp = transact(&mut s, &GET_RANDOM_8);
            assert_eq!(&rsp[..2], &[0x80, 0x01]);
        }
    }
}
