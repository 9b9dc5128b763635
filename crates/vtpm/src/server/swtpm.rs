//! swtpm's socket protocol (swtpm `ctrlchannel.c`, `tpm_ioctl.h`), as
//! tpm2-tss's `tcti-swtpm` speaks it.
//!
//! * The data channel carries raw TPM commands and responses, or, with
//!   swtpm's optional command header, `u32 8 | u8 locality | u32 size |
//!   command` answered by `u32 size | response | u32 0`.
//! * The control channel carries `u32 command | body` requests answered by
//!   a big-endian result code and the command's output.
//!
//! `tcti-swtpm` opens a new connection on either channel for every
//! request; QEMU keeps its connections open. Both work: each connection
//! may carry any number of requests.
//!
//! Unlike swtpm, which exits on CMD_SHUTDOWN, `vtpm serve` powers the TPM
//! off and keeps serving: a later CMD_INIT powers it on again.

use super::{
    After, Conn, Handler, Listener, MAX_COMMAND, ReadError, SharedTpm, StopReason, lock,
    log_read_end, put_u32,
};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::Duration;

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
    pub const RESET_TPMESTABLISHED: u32 = 0x0B;
    pub const STOP: u32 = 0x0E;
    pub const GET_CONFIG: u32 = 0x0F;
    pub const SET_BUFFERSIZE: u32 = 0x11;
}

/// Capability bits (`PTM_CAP_*`) of what this server implements.
pub mod cap {
    pub const INIT: u64 = 1 << 0;
    pub const SHUTDOWN: u64 = 1 << 1;
    pub const GET_TPMESTABLISHED: u64 = 1 << 2;
    pub const SET_LOCALITY: u64 = 1 << 3;
    pub const HASHING: u64 = 1 << 4;
    pub const CANCEL_TPM_CMD: u64 = 1 << 5;
    pub const RESET_TPMESTABLISHED: u64 = 1 << 7;
    pub const STOP: u64 = 1 << 10;
    pub const GET_CONFIG: u64 = 1 << 11;
    pub const SET_BUFFERSIZE: u64 = 1 << 13;
    pub const SEND_COMMAND_HEADER: u64 = 1 << 15;
}

/// The capabilities answered to CMD_GET_CAPABILITY.
pub const CAPABILITIES: u64 = cap::INIT
    | cap::SHUTDOWN
    | cap::GET_TPMESTABLISHED
    | cap::SET_LOCALITY
    | cap::HASHING
    | cap::CANCEL_TPM_CMD
    | cap::RESET_TPMESTABLISHED
    | cap::STOP
    | cap::GET_CONFIG
    | cap::SET_BUFFERSIZE
    | cap::SEND_COMMAND_HEADER;

/// Control channel result codes (TPM 1.2 `TPM_RESULT`s, as swtpm uses them).
pub mod res {
    pub const SUCCESS: u32 = 0x00;
    pub const BAD_PARAMETER: u32 = 0x03;
    pub const BAD_ORDINAL: u32 = 0x0A;
    pub const BAD_LOCALITY: u32 = 0x3D;
}

/// TPM_SEND_COMMAND: first word of a data channel command with a header.
const SEND_COMMAND: [u8; 4] = [0, 0, 0, 8];
/// The response to a TPM command while the TPM is not running:
/// TPM_ST_NO_SESSIONS, size 10, TPM_RC_FAILURE.
pub const NOT_RUNNING: [u8; 10] = [0x80, 0x01, 0, 0, 0, 0x0A, 0, 0, 0x01, 0x01];
/// The only buffer size supported (CMD_SET_BUFFERSIZE).
const BUFFER_SIZE: u32 = MAX_COMMAND as u32;
/// Largest CMD_HASH_DATA payload (`ptm_hdata`).
const MAX_HASH_DATA: usize = 4096;
/// Time the rest of a control request has once its first byte arrived
/// (swtpm allows 500 ms).
const CONTROL_TIMEOUT: Duration = Duration::from_millis(500);
/// Time the rest of a TPM command has once its first byte arrived.
const DATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the server listens.
pub enum Endpoints {
    /// TCP, data and control channel.
    Tcp(std::net::SocketAddr, std::net::SocketAddr),
    /// Unix stream sockets, data and control channel.
    Unix(std::path::PathBuf, std::path::PathBuf),
}

/// State shared by both channels.
struct Shared {
    tpm: SharedTpm,
    /// Locality of the next TPM command (CMD_SET_LOCALITY, or the
    /// command header).
    locality: AtomicU8,
}

/// An swtpm-protocol server: its two channels, bound, not yet serving.
pub struct SwtpmServer {
    data: Listener,
    control: Listener,
    shared: Arc<Shared>,
}

impl SwtpmServer {
    /// Binds both channels. TCP port 0 picks a free port.
    pub fn bind(tpm: SharedTpm, endpoints: &Endpoints) -> io::Result<SwtpmServer> {
        let (data, control) = match endpoints {
            Endpoints::Tcp(d, c) => (Listener::bind_tcp(*d)?, Listener::bind_tcp(*c)?),
            Endpoints::Unix(d, c) => (Listener::bind_unix(d)?, Listener::bind_unix(c)?),
        };
        Ok(SwtpmServer {
            data,
            control,
            shared: Arc::new(Shared {
                tpm,
                locality: AtomicU8::new(0),
            }),
        })
    }

    /// The bound TCP (data, control) addresses; `None` for Unix sockets.
    pub fn local_addrs(&self) -> (Option<std::net::SocketAddr>, Option<std::net::SocketAddr>) {
        (self.data.local_addr(), self.control.local_addr())
    }

    /// Starts serving both channels. Nothing here stops the server (the
    /// swtpm protocol's STOP only stops the TPM), so `stop` is unused
    /// but kept for symmetry with the mssim server.
    pub fn spawn(self, stop: Sender<StopReason>) -> io::Result<Vec<JoinHandle<()>>> {
        let reason = StopReason::StopCommand("swtpm");
        let d = super::spawn_listener(
            "swtpm data channel",
            self.data,
            DATA_TIMEOUT,
            DataChannel {
                shared: self.shared.clone(),
            },
            stop.clone(),
            reason.clone(),
        )?;
        let c = super::spawn_listener(
            "swtpm control channel",
            self.control,
            CONTROL_TIMEOUT,
            ControlChannel {
                shared: self.shared,
            },
            stop,
            reason,
        )?;
        Ok(vec![d, c])
    }
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

/// The data channel.
struct DataChannel {
    shared: Arc<Shared>,
}

const DATA: &str = "swtpm data channel";

impl Handler for DataChannel {
    fn serve(&mut self, conn: &mut Conn) -> After {
        loop {
            match self.request(conn) {
                Ok(true) => {}
                Ok(false) => return After::Next,
                Err(e) => {
                    log_read_end(DATA, conn, &e);
                    return After::Next;
                }
            }
        }
    }
}

impl DataChannel {
    /// Serves one TPM command. `Ok(false)`: drop the connection.
    fn request(&mut self, conn: &mut Conn) -> Result<bool, ReadError> {
        conn.begin_request()?;
        // Ten bytes: a TPM command header, or the 9-byte command header
        // and the command's first byte.
        let mut head = [0u8; 10];
        conn.read_exact(&mut head)?;
        let tag = head.get(..2).unwrap_or_default();
        let with_header =
            head.starts_with(&SEND_COMMAND) && tag != [0x80, 0x01] && tag != [0x80, 0x02];
        let (size, locality) = if with_header {
            let locality = normalize_locality(head[4]);
            self.shared.locality.store(locality, Ordering::Relaxed);
            (be_u32(head.get(5..).unwrap_or_default()), locality)
        } else {
            (
                be_u32(head.get(2..).unwrap_or_default()),
                self.shared.locality.load(Ordering::Relaxed),
            )
        };
        let len = match usize::try_from(size) {
            Ok(n) if (10..=MAX_COMMAND).contains(&n) => n,
            _ => {
                log::warn!(
                    "{DATA}: {}: command size {size} is outside 10..={MAX_COMMAND}; closing the connection",
                    conn.peer()
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
            let mut tpm = lock(&self.shared.tpm);
            if tpm.is_powered() {
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
}

/// The control channel.
struct ControlChannel {
    shared: Arc<Shared>,
}

const CTRL: &str = "swtpm control channel";

/// A control request's outcome: the reply, and whether the connection
/// can carry another request.
struct Reply {
    bytes: Vec<u8>,
    keep: bool,
}

impl Reply {
    fn result(code: u32) -> Reply {
        Reply {
            bytes: code.to_be_bytes().to_vec(),
            keep: true,
        }
    }

    fn bytes(bytes: Vec<u8>) -> Reply {
        Reply { bytes, keep: true }
    }

    /// The request's body was truncated or late: answer
    /// TPM_BAD_PARAMETER, then drop the connection (what follows cannot
    /// be framed).
    fn bad_body() -> Reply {
        Reply {
            bytes: res::BAD_PARAMETER.to_be_bytes().to_vec(),
            keep: false,
        }
    }
}

impl Handler for ControlChannel {
    fn serve(&mut self, conn: &mut Conn) -> After {
        loop {
            let code = match conn.begin_request().and_then(|()| conn.read_u32()) {
                Ok(c) => c,
                Err(e) => {
                    log_read_end(CTRL, conn, &e);
                    return After::Next;
                }
            };
            let reply = match self.request(conn, code) {
                Ok(r) => r,
                Err(e @ (ReadError::Truncated | ReadError::TimedOut)) => {
                    log::warn!("{CTRL}: {}: command {code:#x}: {e}", conn.peer());
                    Reply::bad_body()
                }
                Err(e) => {
                    log_read_end(CTRL, conn, &e);
                    return After::Next;
                }
            };
            if let Err(e) = conn.send(&reply.bytes) {
                log::warn!(
                    "{CTRL}: {}: write failed: {e}; closing the connection",
                    conn.peer()
                );
                return After::Next;
            }
            if !reply.keep {
                return After::Next;
            }
        }
    }
}

impl ControlChannel {
    fn request(&mut self, conn: &mut Conn, code: u32) -> Result<Reply, ReadError> {
        let tpm = &self.shared.tpm;
        let running = || lock(tpm).is_powered();
        Ok(match code {
            cmd::GET_CAPABILITY => Reply::bytes(CAPABILITIES.to_be_bytes().to_vec()),
            cmd::INIT => {
                // Bit 0, PTM_INIT_FLAG_DELETE_VOLATILE: there is no
                // volatile state kept outside the engine to delete.
                let flags = conn.read_u32()?;
                log::debug!("{CTRL}: INIT (flags {flags:#x})");
                let mut tpm = lock(tpm);
                if tpm.is_powered() {
                    tpm.tpm_init();
                } else {
                    tpm.power_on();
                }
                Reply::result(res::SUCCESS)
            }
            cmd::SHUTDOWN | cmd::STOP => {
                log::info!(
                    "{CTRL}: {}: powering the TPM off",
                    if code == cmd::STOP {
                        "STOP"
                    } else {
                        "SHUTDOWN"
                    }
                );
                lock(tpm).power_off();
                Reply::result(res::SUCCESS)
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
                let locality = Self::read_locality(conn)?;
                if locality > 4 {
                    Reply::result(res::BAD_LOCALITY)
                } else {
                    self.shared.locality.store(locality, Ordering::Relaxed);
                    Reply::result(res::SUCCESS)
                }
            }
            cmd::RESET_TPMESTABLISHED => {
                let locality = Self::read_locality(conn)?;
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
                Reply::result(if running() {
                    res::SUCCESS
                } else {
                    res::BAD_ORDINAL
                })
            }
            cmd::GET_CONFIG => {
                let mut out = Vec::with_capacity(8);
                put_u32(&mut out, res::SUCCESS);
                put_u32(&mut out, 0);
                Reply::bytes(out)
            }
            cmd::SET_BUFFERSIZE => {
                let requested = conn.read_u32()?;
                log::debug!("{CTRL}: SET_BUFFERSIZE {requested}: the buffer size is {BUFFER_SIZE}");
                let mut out = Vec::with_capacity(16);
                for v in [res::SUCCESS, BUFFER_SIZE, BUFFER_SIZE, BUFFER_SIZE] {
                    put_u32(&mut out, v);
                }
                Reply::bytes(out)
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

    /// Reads a `ptm_loc` / `ptm_reset_est` request: one locality byte,
    /// which QEMU pads to four bytes (sizeof the union). Padding that
    /// arrived with the byte is dropped.
    fn read_locality(conn: &mut Conn) -> Result<u8, ReadError> {
        let locality = conn.read_u8()?;
        conn.discard_buffered(3);
        Ok(locality)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
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
        assert_eq!(caps, CAPABILITIES.to_be_bytes());
        assert_eq!(CAPABILITIES, 0xACBF);
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
        assert_eq!(
            roundtrip(&mut c, &be(&[cmd::SET_BUFFERSIZE, 65536]), 16),
            be(&[0, 4096, 4096, 4096])
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
        // Unknown commands (GET_STATEBLOB here) answer TPM_BAD_ORDINAL and
        // the connection stays usable.
        assert_eq!(
            roundtrip(&mut c, &be(&[0x0C, 1, 0, 0]), 4),
            be(&[res::BAD_ORDINAL])
        );
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
