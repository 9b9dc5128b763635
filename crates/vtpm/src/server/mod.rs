//! Socket front ends for the engine: the Microsoft simulator protocol
//! ([`mssim`]) and swtpm's data + control channel protocol ([`swtpm`]).
//!
//! Shared here:
//!
//! * the engine behind a mutex ([`SharedTpm`]), locked per request;
//! * listeners and streams over TCP or Unix sockets ([`Listener`],
//!   [`Stream`]);
//! * a connection reader ([`Conn`]) that waits without limit for the first
//!   byte of a request, then gives the rest of it a deadline, and writes
//!   each reply with one call;
//! * [`spawn_listener`]: a thread per listening socket that accepts and
//!   serves one connection at a time, and keeps serving after a client
//!   disconnects or sends a bad frame.

pub mod mssim;
pub mod swtpm;

use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use vtpm_engine::Tpm;

/// The engine, shared by every listener of a server.
pub type SharedTpm = Arc<Mutex<Tpm>>;

/// Largest TPM command accepted from a client (TPM_PT_MAX_COMMAND_SIZE).
pub const MAX_COMMAND: usize = vtpm_wire::profile::MAX_COMMAND_SIZE;

/// Room kept for reading: a whole command with its protocol header.
const READ_BUFFER: usize = MAX_COMMAND + 64;

/// How long a reply may wait for a client that does not read it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Locks the engine. A panic while it was held (there should be none: the
/// engine does not panic) does not make it unusable.
pub fn lock(tpm: &SharedTpm) -> MutexGuard<'_, Tpm> {
    tpm.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a server asks the process to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// A client sent the protocol's stop command.
    StopCommand(&'static str),
    /// The process received a termination signal.
    Signal(&'static str),
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::StopCommand(protocol) => write!(f, "{protocol} client sent STOP"),
            StopReason::Signal(name) => write!(f, "received {name}"),
        }
    }
}

/// What a connection handler tells the accept loop when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Accept the next connection.
    Next,
    /// Stop listening and ask the process to stop.
    Stop,
}

/// A listening socket.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix stream socket, with the path to remove when it is dropped.
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds a TCP socket. Port 0 picks a free port: see
    /// [`Listener::local_addr`].
    pub fn bind_tcp(addr: SocketAddr) -> io::Result<Listener> {
        TcpListener::bind(addr).map(Listener::Tcp)
    }

    /// Binds a Unix stream socket at `path`, replacing a stale socket left
    /// there by an earlier run (but nothing that is not a socket).
    pub fn bind_unix(path: &Path) -> io::Result<Listener> {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(meta) = std::fs::symlink_metadata(path)
            && meta.file_type().is_socket()
        {
            std::fs::remove_file(path)?;
        }
        UnixListener::bind(path).map(|l| Listener::Unix(l, path.to_path_buf()))
    }

    /// The TCP address actually bound, or `None` for a Unix socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    /// Waits for the next client. TCP connections get TCP_NODELAY: every
    /// reply is one write, and Nagle's algorithm would otherwise hold it
    /// back waiting for a delayed ACK. Writes time out, so a client that
    /// stops reading cannot hold the port forever.
    fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept()?;
                if let Err(e) = s
                    .set_nodelay(true)
                    .and_then(|()| s.set_write_timeout(Some(WRITE_TIMEOUT)))
                {
                    log::debug!("setting socket options for {peer} failed: {e}");
                }
                Ok(Stream::Tcp(s, peer.to_string()))
            }
            Listener::Unix(l, path) => {
                let (s, _) = l.accept()?;
                if let Err(e) = s.set_write_timeout(Some(WRITE_TIMEOUT)) {
                    log::debug!("setting the write timeout failed: {e}");
                }
                Ok(Stream::Unix(s, path.display().to_string()))
            }
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => write!(f, "tcp {a}"),
                Err(_) => write!(f, "tcp ?"),
            },
            Listener::Unix(_, path) => write!(f, "unix {}", path.display()),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A connected client, with a name for log lines.
#[derive(Debug)]
pub enum Stream {
    /// TCP, with the peer's address.
    Tcp(TcpStream, String),
    /// Unix stream socket, with the listener's path.
    Unix(UnixStream, String),
}

impl Stream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s, _) => s.set_read_timeout(t),
            Stream::Unix(s, _) => s.set_read_timeout(t),
        }
    }

    fn peer(&self) -> &str {
        match self {
            Stream::Tcp(_, p) | Stream::Unix(_, p) => p,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s, _) => s.read(buf),
            Stream::Unix(s, _) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s, _) => s.write(buf),
            Stream::Unix(s, _) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a request could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed the connection between requests.
    Closed,
    /// The client closed the connection in the middle of a request.
    Truncated,
    /// The rest of a request did not arrive before its deadline.
    TimedOut,
    /// The socket failed.
    Io(io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Closed => f.write_str("connection closed"),
            ReadError::Truncated => f.write_str("connection closed in the middle of a request"),
            ReadError::TimedOut => f.write_str("the rest of the request did not arrive in time"),
            ReadError::Io(e) => write!(f, "read failed: {e}"),
        }
    }
}

/// One client connection: buffered reads with a per-request deadline,
/// replies written whole.
///
/// The wait for a request's first byte has no limit (a client may keep an
/// idle connection open); once it has arrived, the rest of the request
/// must arrive within the connection's request timeout. The socket timeout
/// is only touched when a request does not arrive in one piece, so the
/// common case costs no extra system call.
pub struct Conn {
    reader: BufReader<Stream>,
    request_timeout: Duration,
    /// Deadline of the request being read, once its first byte arrived.
    deadline: Option<Instant>,
    /// A read timeout is set on the socket.
    timeout_set: bool,
}

impl Conn {
    /// Wraps an accepted stream.
    pub fn new(stream: Stream, request_timeout: Duration) -> Conn {
        Conn {
            reader: BufReader::with_capacity(READ_BUFFER, stream),
            request_timeout,
            deadline: None,
            timeout_set: false,
        }
    }

    /// The peer, for log lines.
    pub fn peer(&self) -> &str {
        self.reader.get_ref().peer()
    }

    /// Starts reading a new request: the wait for its first byte has no
    /// deadline.
    pub fn begin_request(&mut self) -> Result<(), ReadError> {
        self.deadline = None;
        if self.timeout_set {
            self.reader
                .get_ref()
                .set_read_timeout(None)
                .map_err(ReadError::Io)?;
            self.timeout_set = false;
        }
        Ok(())
    }

    /// Fills `buf`.
    pub fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), ReadError> {
        let mut filled = 0;
        while filled < buf.len() {
            if self.reader.buffer().is_empty()
                && let Some(deadline) = self.deadline
            {
                // The next read waits on the socket: bound the wait.
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ReadError::TimedOut);
                }
                self.reader
                    .get_ref()
                    .set_read_timeout(Some(left))
                    .map_err(ReadError::Io)?;
                self.timeout_set = true;
            }
            let rest = buf.get_mut(filled..).unwrap_or_default();
            match self.reader.read(rest) {
                Ok(0) => {
                    return Err(if self.deadline.is_none() {
                        ReadError::Closed
                    } else {
                        ReadError::Truncated
                    });
                }
                Ok(n) => {
                    filled += n;
                    if self.deadline.is_none() {
                        self.deadline = Some(Instant::now() + self.request_timeout);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ReadError::TimedOut);
                }
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
        Ok(())
    }

    /// Reads a big-endian u32.
    pub fn read_u32(&mut self) -> Result<u32, ReadError> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    /// Reads one byte.
    pub fn read_u8(&mut self) -> Result<u8, ReadError> {
        let mut b = [0u8; 1];
        self.read_exact(&mut b)?;
        Ok(b[0])
    }

    /// Reads `len` bytes into a new vector. `len` must have been checked
    /// by the caller against the protocol's limit.
    pub fn read_vec(&mut self, len: usize) -> Result<Vec<u8>, ReadError> {
        let mut v = vec![0u8; len];
        self.read_exact(&mut v)?;
        Ok(v)
    }

    /// Writes a whole reply. Callers build the reply first so it leaves in
    /// one `write` (one TCP segment).
    pub fn send(&mut self, reply: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(reply)
    }
}

/// Appends a big-endian u32.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// A protocol's handler for one connection on one of its ports.
pub trait Handler: Send + 'static {
    /// Serves `conn` until the client leaves, the connection has to be
    /// dropped, or the client asks the server to stop.
    fn serve(&mut self, conn: &mut Conn) -> After;
}

/// Starts a thread that accepts connections on `listener` one at a time
/// and serves each with `handler`. When a handler answers [`After::Stop`],
/// the thread sends `reason` on `stop` and ends.
pub fn spawn_listener<H: Handler>(
    name: &'static str,
    listener: Listener,
    request_timeout: Duration,
    mut handler: H,
    stop: Sender<StopReason>,
    reason: StopReason,
) -> io::Result<JoinHandle<()>> {
    log::debug!("{name}: listening on {listener}");
    thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            loop {
                let stream = match listener.accept() {
                    Ok(s) => s,
                    Err(e) => {
                        log::warn!("{name}: accept failed: {e}");
                        // Out of descriptors and the like: do not spin.
                        thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                };
                let mut conn = Conn::new(stream, request_timeout);
                log::debug!("{name}: connection from {}", conn.peer());
                let after = handler.serve(&mut conn);
                drop(conn);
                if after == After::Stop {
                    let _ = stop.send(reason);
                    return;
                }
            }
        })
}

/// Logs why a connection is dropped: a clean close at debug level, the
/// rest as warnings.
pub fn log_read_end(name: &str, conn: &Conn, e: &ReadError) {
    match e {
        ReadError::Closed => log::debug!("{name}: {}: {e}", conn.peer()),
        _ => log::warn!("{name}: {}: {e}; closing the connection", conn.peer()),
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Helpers for the protocol tests: real loopback sockets on ephemeral
    //! ports.
    use std::io::{Read, Write};
    use std::net::{Shutdown, SocketAddr, TcpStream};
    use std::time::Duration;

    /// Connects with a timeout on reads so a broken server fails the test
    /// instead of hanging it.
    pub fn connect(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.set_nodelay(true).expect("nodelay");
        s
    }

    /// Sends `req` and reads exactly `n` reply bytes.
    pub fn roundtrip(s: &mut TcpStream, req: &[u8], n: usize) -> Vec<u8> {
        s.write_all(req).expect("write");
        let mut buf = vec![0u8; n];
        s.read_exact(&mut buf).expect("read reply");
        buf
    }

    /// Reads until the server closes; returns what came before.
    pub fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
        let mut out = Vec::new();
        s.read_to_end(&mut out)
            .expect("server should close the connection");
        out
    }

    /// Sends `req`, half-closes, and returns everything the server sends
    /// until it closes.
    pub fn send_and_close(s: &mut TcpStream, req: &[u8]) -> Vec<u8> {
        s.write_all(req).expect("write");
        s.shutdown(Shutdown::Write).expect("shutdown");
        read_to_close(s)
    }

    /// Concatenates big-endian u32s.
    pub fn be(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }
}
