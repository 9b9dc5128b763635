//! The Microsoft TPM 2.0 simulator protocol (ms-tpm-20-ref `TcpServer.c`),
//! as tpm2-tss's `tcti-mssim` speaks it.
//!
//! Two TCP ports: the command port P carries TPM commands and the
//! `_TPM_Hash_*` signals, the platform port P+1 the platform's signals
//! (power, NV, cancel, …). Every integer is a big-endian u32. Each port
//! serves one client at a time; EOF ends a session (tpm2-tss 3.2 never
//! sends SESSION_END).
//!
//! The TPM starts powered off, as the simulator does: the client sends
//! POWER_ON and NV_ON on the platform port first.

use super::{
    After, Conn, Handler, Listener, MAX_COMMAND, ReadError, SharedTpm, StopReason, lock,
    log_read_end, put_u32,
};
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Codes of the simulator's TCP protocol (`TpmTcpProtocol.h`).
pub mod code {
    pub const SIGNAL_POWER_ON: u32 = 1;
    pub const SIGNAL_POWER_OFF: u32 = 2;
    pub const SIGNAL_PHYS_PRES_ON: u32 = 3;
    pub const SIGNAL_PHYS_PRES_OFF: u32 = 4;
    pub const SIGNAL_HASH_START: u32 = 5;
    pub const SIGNAL_HASH_DATA: u32 = 6;
    pub const SIGNAL_HASH_END: u32 = 7;
    pub const SEND_COMMAND: u32 = 8;
    pub const SIGNAL_CANCEL_ON: u32 = 9;
    pub const SIGNAL_CANCEL_OFF: u32 = 10;
    pub const SIGNAL_NV_ON: u32 = 11;
    pub const SIGNAL_NV_OFF: u32 = 12;
    pub const SIGNAL_KEY_CACHE_ON: u32 = 13;
    pub const SIGNAL_KEY_CACHE_OFF: u32 = 14;
    pub const REMOTE_HANDSHAKE: u32 = 15;
    pub const SET_ALTERNATIVE_RESULT: u32 = 16;
    pub const SIGNAL_RESET: u32 = 17;
    pub const SIGNAL_RESTART: u32 = 18;
    pub const SESSION_END: u32 = 20;
    pub const STOP: u32 = 21;
    pub const GET_COMMAND_RESPONSE_SIZES: u32 = 25;
    pub const ACT_GET_SIGNALED: u32 = 26;
    pub const TEST_FAILURE_MODE: u32 = 30;
}

/// The simulator's protocol version, answered to REMOTE_HANDSHAKE.
const SERVER_VERSION: u32 = 1;
/// TPM properties answered to REMOTE_HANDSHAKE: tpmInRawMode (1) |
/// tpmSupportsPP (4) | tpmSupportsPlatformPort (8).
const HANDSHAKE_FLAGS: u32 = 0x0000_000D;
/// Largest HASH_DATA chunk accepted.
const MAX_HASH_CHUNK: usize = MAX_COMMAND;
/// Time allowed for the rest of a request once its first byte arrived.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Sizes of the largest command and response seen
/// (GET_COMMAND_RESPONSE_SIZES).
#[derive(Debug, Default, Clone, Copy)]
struct SizeStats {
    largest_command_size: u32,
    largest_command: u32,
    largest_response_size: u32,
    largest_response: u32,
}

/// State shared by the two ports.
struct Shared {
    tpm: SharedTpm,
    stats: Mutex<SizeStats>,
}

/// An mssim server: its two listening ports, bound, not yet serving.
pub struct MssimServer {
    command: Listener,
    platform: Listener,
    shared: Arc<Shared>,
}

impl MssimServer {
    /// Binds the command port at `command` and the platform port at
    /// `platform` (normally the next port). Port 0 picks a free port.
    pub fn bind(
        tpm: SharedTpm,
        command: SocketAddr,
        platform: SocketAddr,
    ) -> io::Result<MssimServer> {
        let command = Listener::bind_tcp(command)?;
        let platform = Listener::bind_tcp(platform)?;
        Ok(MssimServer {
            command,
            platform,
            shared: Arc::new(Shared {
                tpm,
                stats: Mutex::new(SizeStats::default()),
            }),
        })
    }

    /// The bound (command, platform) addresses.
    pub fn local_addrs(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        (self.command.local_addr(), self.platform.local_addr())
    }

    /// Starts serving both ports; a STOP from a client is reported on
    /// `stop`.
    pub fn spawn(self, stop: Sender<StopReason>) -> io::Result<Vec<JoinHandle<()>>> {
        let reason = StopReason::StopCommand("mssim");
        let c = super::spawn_listener(
            "mssim command port",
            self.command,
            REQUEST_TIMEOUT,
            CommandPort {
                shared: self.shared.clone(),
            },
            stop.clone(),
            reason.clone(),
        )?;
        let p = super::spawn_listener(
            "mssim platform port",
            self.platform,
            REQUEST_TIMEOUT,
            PlatformPort {
                shared: self.shared,
            },
            stop,
            reason,
        )?;
        Ok(vec![c, p])
    }
}

/// The localities a TPM command may arrive at: 0–4 and the extended
/// localities 32–255; the simulator maps 5–31 to 0.
fn normalize_locality(locality: u8) -> u8 {
    if (5..32).contains(&locality) {
        0
    } else {
        locality
    }
}

/// The first four bytes of `b` as a big-endian u32 (0 if shorter).
fn be_u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_be_bytes)
}

/// What one request on a port leads to.
enum Next {
    /// Read the next request.
    Continue,
    /// Drop this connection.
    Close,
    /// Stop the server.
    Stop,
}

/// Reads requests from `conn` and answers them with `handle` until the
/// connection ends.
fn serve_requests(
    name: &str,
    conn: &mut Conn,
    mut handle: impl FnMut(&mut Conn, u32) -> Result<Next, ReadError>,
) -> After {
    loop {
        let result = conn
            .begin_request()
            .and_then(|()| conn.read_u32())
            .and_then(|code| handle(conn, code));
        match result {
            Ok(Next::Continue) => {}
            Ok(Next::Close) => return After::Next,
            Ok(Next::Stop) => return After::Stop,
            Err(e) => {
                log_read_end(name, conn, &e);
                return After::Next;
            }
        }
    }
}

/// Sends `reply`; a failed write ends the connection.
fn reply(name: &str, conn: &mut Conn, reply: &[u8]) -> Result<Next, ReadError> {
    match conn.send(reply) {
        Ok(()) => Ok(Next::Continue),
        Err(e) => {
            log::warn!(
                "{name}: {}: write failed: {e}; closing the connection",
                conn.peer()
            );
            Ok(Next::Close)
        }
    }
}

const ACK: [u8; 4] = [0; 4];

/// The command port.
struct CommandPort {
    shared: Arc<Shared>,
}

const CMD: &str = "mssim command port";

impl Handler for CommandPort {
    fn serve(&mut self, conn: &mut Conn) -> After {
        serve_requests(CMD, conn, |conn, code| self.request(conn, code))
    }
}

impl CommandPort {
    fn request(&mut self, conn: &mut Conn, code: u32) -> Result<Next, ReadError> {
        match code {
            code::SEND_COMMAND => {
                let locality = normalize_locality(conn.read_u8()?);
                let size = conn.read_u32()?;
                let len = match usize::try_from(size) {
                    Ok(n) if n <= MAX_COMMAND => n,
                    _ => {
                        log::warn!(
                            "{CMD}: {}: command of {size} bytes is over {MAX_COMMAND}; closing the connection",
                            conn.peer()
                        );
                        return Ok(Next::Close);
                    }
                };
                let command = conn.read_vec(len)?;
                let response = {
                    let mut tpm = lock(&self.shared.tpm);
                    if tpm.is_powered() {
                        tpm.execute(locality, &command)
                    } else {
                        Vec::new()
                    }
                };
                self.record(&command, &response);
                let mut out = Vec::with_capacity(response.len() + 8);
                put_u32(&mut out, u32::try_from(response.len()).unwrap_or(0));
                out.extend_from_slice(&response);
                put_u32(&mut out, 0);
                reply(CMD, conn, &out)
            }
            code::SIGNAL_HASH_START => {
                lock(&self.shared.tpm).hash_start();
                reply(CMD, conn, &ACK)
            }
            code::SIGNAL_HASH_DATA => {
                let size = conn.read_u32()?;
                let len = match usize::try_from(size) {
                    Ok(n) if n <= MAX_HASH_CHUNK => n,
                    _ => {
                        log::warn!(
                            "{CMD}: {}: HASH_DATA of {size} bytes is over {MAX_HASH_CHUNK}; closing the connection",
                            conn.peer()
                        );
                        return Ok(Next::Close);
                    }
                };
                let data = conn.read_vec(len)?;
                lock(&self.shared.tpm).hash_data(&data);
                reply(CMD, conn, &ACK)
            }
            code::SIGNAL_HASH_END => {
                lock(&self.shared.tpm).hash_end();
                reply(CMD, conn, &ACK)
            }
            code::REMOTE_HANDSHAKE => {
                let client_version = conn.read_u32()?;
                if client_version == 0 {
                    log::warn!(
                        "{CMD}: {}: unsupported client version 0; closing the connection",
                        conn.peer()
                    );
                    return Ok(Next::Close);
                }
                let mut out = Vec::with_capacity(12);
                put_u32(&mut out, SERVER_VERSION);
                put_u32(&mut out, HANDSHAKE_FLAGS);
                put_u32(&mut out, 0);
                reply(CMD, conn, &out)
            }
            code::SET_ALTERNATIVE_RESULT => {
                let _ = conn.read_u32()?;
                reply(CMD, conn, &ACK)
            }
            code::SESSION_END => Ok(Next::Close),
            code::STOP => Ok(Next::Stop),
            _ => {
                log::warn!(
                    "{CMD}: {}: unknown request code {code}; closing the connection",
                    conn.peer()
                );
                Ok(Next::Close)
            }
        }
    }

    /// Keeps the largest command and response for
    /// GET_COMMAND_RESPONSE_SIZES.
    fn record(&self, command: &[u8], response: &[u8]) {
        let mut s = self
            .shared
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (csize, rsize) = (
            u32::try_from(command.len()).unwrap_or(u32::MAX),
            u32::try_from(response.len()).unwrap_or(u32::MAX),
        );
        if csize > s.largest_command_size {
            s.largest_command_size = csize;
            s.largest_command = be_u32_at(command, 6);
        }
        if rsize > s.largest_response_size {
            s.largest_response_size = rsize;
            // As in the simulator: the code of the command whose response
            // was the largest.
            s.largest_response = be_u32_at(command, 6);
        }
    }
}

/// The platform port.
struct PlatformPort {
    shared: Arc<Shared>,
}

const PLAT: &str = "mssim platform port";

impl Handler for PlatformPort {
    fn serve(&mut self, conn: &mut Conn) -> After {
        serve_requests(PLAT, conn, |conn, code| self.request(conn, code))
    }
}

impl PlatformPort {
    fn request(&mut self, conn: &mut Conn, code: u32) -> Result<Next, ReadError> {
        let tpm = &self.shared.tpm;
        match code {
            code::SIGNAL_POWER_ON => {
                let mut tpm = lock(tpm);
                if !tpm.is_powered() {
                    log::info!("{PLAT}: power on");
                }
                tpm.power_on();
            }
            code::SIGNAL_POWER_OFF => {
                log::info!("{PLAT}: power off");
                lock(tpm).power_off();
            }
            code::SIGNAL_RESET => {
                let mut tpm = lock(tpm);
                if tpm.is_powered() {
                    log::debug!("{PLAT}: reset (_TPM_Init)");
                    tpm.tpm_init();
                }
            }
            code::SIGNAL_RESTART => log::debug!("{PLAT}: restart (no effect)"),
            code::SIGNAL_NV_ON => lock(tpm).set_nv_available(true),
            code::SIGNAL_NV_OFF => lock(tpm).set_nv_available(false),
            code::SIGNAL_CANCEL_ON => lock(tpm).set_cancel(true),
            code::SIGNAL_CANCEL_OFF => lock(tpm).set_cancel(false),
            code::SIGNAL_PHYS_PRES_ON
            | code::SIGNAL_PHYS_PRES_OFF
            | code::SIGNAL_KEY_CACHE_ON
            | code::SIGNAL_KEY_CACHE_OFF => {}
            code::TEST_FAILURE_MODE => {
                log::debug!("{PLAT}: TEST_FAILURE_MODE is not supported; acknowledged")
            }
            code::GET_COMMAND_RESPONSE_SIZES => {
                let s = *self
                    .shared
                    .stats
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let mut out = Vec::with_capacity(24);
                put_u32(&mut out, 16);
                for v in [
                    s.largest_command_size,
                    s.largest_command,
                    s.largest_response_size,
                    s.largest_response,
                ] {
                    put_u32(&mut out, v);
                }
                put_u32(&mut out, 0);
                return reply(PLAT, conn, &out);
            }
            code::ACT_GET_SIGNALED => {
                let _act_handle = conn.read_u32()?;
                // No authenticated countdown timer is ever signaled.
                let mut out = Vec::with_capacity(8);
                put_u32(&mut out, 0);
                put_u32(&mut out, 0);
                return reply(PLAT, conn, &out);
            }
            code::SESSION_END => return Ok(Next::Close),
            code::STOP => return Ok(Next::Stop),
            _ => {
                log::warn!(
                    "{PLAT}: {}: unknown request code {code}; closing the connection",
                    conn.peer()
                );
                let _ = conn.send(&1u32.to_be_bytes());
                return Ok(Next::Close);
            }
        }
        reply(PLAT, conn, &ACK)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::server::test_util::{be, connect, read_to_close, roundtrip, send_and_close};
    use std::net::{Ipv4Addr, TcpStream};
    use std::sync::mpsc;
    use vtpm_engine::{MemoryPlatform, Tpm};

    const GET_RANDOM_8: [u8; 12] = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7B, 0, 8];

    struct Fixture {
        cmd: SocketAddr,
        plat: SocketAddr,
        stop: mpsc::Receiver<StopReason>,
        tpm: SharedTpm,
    }

    fn start() -> Fixture {
        let tpm: SharedTpm = Arc::new(Mutex::new(
            Tpm::new(Box::new(MemoryPlatform::new())).expect("engine"),
        ));
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let server = MssimServer::bind(tpm.clone(), any, any).expect("bind");
        let (cmd, plat) = server.local_addrs();
        let (tx, stop) = mpsc::channel();
        server.spawn(tx).expect("spawn");
        Fixture {
            cmd: cmd.expect("cmd addr"),
            plat: plat.expect("plat addr"),
            stop,
            tpm,
        }
    }

    fn send_command(s: &mut TcpStream, locality: u8, command: &[u8]) -> Vec<u8> {
        let mut req = be(&[code::SEND_COMMAND]);
        req.push(locality);
        req.extend(be(&[command.len() as u32]));
        req.extend_from_slice(command);
        let mut head = roundtrip(s, &req, 4);
        let size = u32::from_be_bytes(head.clone().try_into().expect("4")) as usize;
        let mut rest = vec![0u8; size + 4];
        std::io::Read::read_exact(s, &mut rest).expect("rest");
        head.extend(rest);
        head
    }

    #[test]
    fn powered_off_send_command_answers_empty() {
        let f = start();
        let mut c = connect(f.cmd);
        assert_eq!(send_command(&mut c, 0, &GET_RANDOM_8), vec![0u8; 8]);
    }

    #[test]
    fn power_on_then_command_and_sizes() {
        let f = start();
        let mut p = connect(f.plat);
        assert_eq!(roundtrip(&mut p, &be(&[code::SIGNAL_POWER_ON]), 4), ACK);
        assert_eq!(roundtrip(&mut p, &be(&[code::SIGNAL_NV_ON]), 4), ACK);
        assert!(lock(&f.tpm).is_powered());
        let mut c = connect(f.cmd);
        let rsp = send_command(&mut c, 0, &GET_RANDOM_8);
        // u32 size | TPM response (at least a header) | u32 0.
        let size = be_u32_at(&rsp, 0) as usize;
        assert!(size >= 10);
        assert_eq!(rsp.len(), size + 8);
        assert_eq!(&rsp[4..6], &[0x80, 0x01]);
        assert_eq!(&rsp[rsp.len() - 4..], &ACK);
        // Locality 7 is mapped to 0 and served on the same connection.
        let rsp2 = send_command(&mut c, 7, &GET_RANDOM_8);
        assert_eq!(&rsp2[rsp2.len() - 4..], &ACK);

        let sizes = roundtrip(&mut p, &be(&[code::GET_COMMAND_RESPONSE_SIZES]), 24);
        assert_eq!(be_u32_at(&sizes, 0), 16);
        assert_eq!(be_u32_at(&sizes, 4), 12);
        assert_eq!(be_u32_at(&sizes, 8), 0x17B);
        assert_eq!(be_u32_at(&sizes, 12) as usize, size);
        assert_eq!(be_u32_at(&sizes, 20), 0);
    }

    #[test]
    fn platform_signals_are_acked() {
        let f = start();
        let mut p = connect(f.plat);
        for c in [1, 3, 4, 9, 10, 11, 12, 13, 14, 17, 18, 30, 2] {
            assert_eq!(roundtrip(&mut p, &be(&[c]), 4), ACK, "code {c}");
        }
        assert!(!lock(&f.tpm).is_powered());
        assert_eq!(
            roundtrip(&mut p, &be(&[code::ACT_GET_SIGNALED, 0x4000_0110]), 8),
            vec![0u8; 8]
        );
        // SESSION_END: no ack, closed.
        assert_eq!(
            send_and_close(&mut p, &be(&[code::SESSION_END])),
            Vec::<u8>::new()
        );
        // The port keeps serving.
        let mut p = connect(f.plat);
        assert_eq!(roundtrip(&mut p, &be(&[code::SIGNAL_POWER_ON]), 4), ACK);
    }

    #[test]
    fn unknown_platform_code_answers_one_and_closes() {
        let f = start();
        let mut p = connect(f.plat);
        assert_eq!(send_and_close(&mut p, &be(&[99])), be(&[1]));
        let mut p = connect(f.plat);
        assert_eq!(roundtrip(&mut p, &be(&[code::SIGNAL_POWER_ON]), 4), ACK);
    }

    #[test]
    fn command_port_framing_errors_close_and_keep_serving() {
        let f = start();
        // Oversize command: closed without a reply.
        let mut c = connect(f.cmd);
        let mut req = be(&[code::SEND_COMMAND]);
        req.push(0);
        req.extend(be(&[4097]));
        assert_eq!(send_and_close(&mut c, &req), Vec::<u8>::new());
        // Truncated command body.
        let mut c = connect(f.cmd);
        let mut req = be(&[code::SEND_COMMAND]);
        req.push(0);
        req.extend(be(&[12]));
        req.extend_from_slice(&GET_RANDOM_8[..5]);
        assert_eq!(send_and_close(&mut c, &req), Vec::<u8>::new());
        // Truncated code.
        let mut c = connect(f.cmd);
        assert_eq!(send_and_close(&mut c, &[0, 0]), Vec::<u8>::new());
        // Unknown code (a platform code on the command port).
        let mut c = connect(f.cmd);
        assert_eq!(
            send_and_close(&mut c, &be(&[code::SIGNAL_POWER_ON])),
            Vec::<u8>::new()
        );
        // Oversize HASH_DATA.
        let mut c = connect(f.cmd);
        assert_eq!(
            send_and_close(&mut c, &be(&[code::SIGNAL_HASH_DATA, 0xFFFF_FFFF])),
            Vec::<u8>::new()
        );
        // Handshake with version 0: closed without a reply.
        let mut c = connect(f.cmd);
        assert_eq!(
            send_and_close(&mut c, &be(&[code::REMOTE_HANDSHAKE, 0])),
            Vec::<u8>::new()
        );
        // A good connection is still served.
        let mut c = connect(f.cmd);
        assert_eq!(
            roundtrip(&mut c, &be(&[code::REMOTE_HANDSHAKE, 1]), 12),
            be(&[1, 0xD, 0])
        );
        assert_eq!(
            roundtrip(&mut c, &be(&[code::SET_ALTERNATIVE_RESULT, 5]), 4),
            ACK
        );
        assert_eq!(roundtrip(&mut c, &be(&[code::SIGNAL_HASH_START]), 4), ACK);
        let mut req = be(&[code::SIGNAL_HASH_DATA, 3]);
        req.extend_from_slice(b"abc");
        assert_eq!(roundtrip(&mut c, &req, 4), ACK);
        assert_eq!(roundtrip(&mut c, &be(&[code::SIGNAL_HASH_END]), 4), ACK);
        assert_eq!(
            send_and_close(&mut c, &be(&[code::SESSION_END])),
            Vec::<u8>::new()
        );
    }

    #[test]
    fn stop_is_reported_without_ack() {
        let f = start();
        let mut c = connect(f.cmd);
        assert_eq!(send_and_close(&mut c, &be(&[code::STOP])), Vec::<u8>::new());
        assert_eq!(
            f.stop.recv_timeout(Duration::from_secs(10)),
            Ok(StopReason::StopCommand("mssim"))
        );
    }

    #[test]
    fn clean_close_between_requests() {
        let f = start();
        let mut c = connect(f.cmd);
        assert_eq!(roundtrip(&mut c, &be(&[code::SIGNAL_HASH_START]), 4), ACK);
        drop(c);
        let mut c = connect(f.cmd);
        assert_eq!(roundtrip(&mut c, &be(&[code::SIGNAL_HASH_END]), 4), ACK);
        c.shutdown(std::net::Shutdown::Write).expect("shutdown");
        assert!(read_to_close(&mut c).is_empty());
    }
}
