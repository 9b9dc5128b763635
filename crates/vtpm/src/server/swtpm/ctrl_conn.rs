//! One control channel connection.
//!
//! Like [`crate::server::Conn`] (the wait for a request's first byte has no
//! limit, the rest of it has a deadline, replies leave in one write), but
//! Unix sockets are read with `recvmsg(2)`, so that a descriptor passed
//! with `SCM_RIGHTS` (CMD_SET_DATAFD: QEMU and cloud-hypervisor send the
//! data channel's socket with the command's bytes) is received instead of
//! being dropped by the kernel.

use crate::server::ReadError;
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
use std::collections::VecDeque;
use std::io::{self, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Bytes read ahead (a control request is at most a few KiB, but
/// SET_STATEBLOB bodies are longer and are read through this too).
const BUFFER: usize = 16 * 1024;

/// Descriptors kept per `recvmsg` (more are closed by the kernel).
const MAX_FDS: usize = 4;

/// The socket under a control connection.
#[derive(Debug)]
pub enum CtrlSocket {
    /// TCP: no descriptor passing.
    Tcp(TcpStream),
    /// Unix stream socket.
    Unix(UnixStream),
}

impl CtrlSocket {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            CtrlSocket::Tcp(s) => s.set_read_timeout(t),
            CtrlSocket::Unix(s) => s.set_read_timeout(t),
        }
    }

    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            CtrlSocket::Tcp(s) => s.set_write_timeout(t),
            CtrlSocket::Unix(s) => s.set_write_timeout(t),
        }
    }
}

/// A control connection: buffered reads with a per-request deadline,
/// received descriptors queued, replies written whole.
#[derive(Debug)]
pub struct CtrlConn {
    sock: CtrlSocket,
    peer: String,
    buf: Vec<u8>,
    /// `buf[pos..len]` is received and not yet consumed.
    pos: usize,
    len: usize,
    fds: VecDeque<OwnedFd>,
    request_timeout: Duration,
    deadline: Option<Instant>,
    timeout_set: bool,
}

impl CtrlConn {
    /// Wraps an accepted socket. Writes time out after `write_timeout`.
    pub fn new(
        sock: CtrlSocket,
        peer: String,
        request_timeout: Duration,
        write_timeout: Duration,
    ) -> CtrlConn {
        if let Err(e) = sock.set_write_timeout(Some(write_timeout)) {
            log::debug!("setting the write timeout failed: {e}");
        }
        CtrlConn {
            sock,
            peer,
            buf: vec![0; BUFFER],
            pos: 0,
            len: 0,
            fds: VecDeque::new(),
            request_timeout,
            deadline: None,
            timeout_set: false,
        }
    }

    /// The peer, for log lines.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Starts reading a new request: the wait for its first byte has no
    /// deadline.
    pub fn begin_request(&mut self) -> Result<(), ReadError> {
        self.deadline = None;
        if self.timeout_set {
            self.sock.set_read_timeout(None).map_err(ReadError::Io)?;
            self.timeout_set = false;
        }
        Ok(())
    }

    /// Gives the request being read `extra` more time (long bodies).
    pub fn extend_deadline(&mut self, extra: Duration) {
        if let Some(d) = self.deadline.as_mut() {
            *d += extra;
        }
    }

    /// Drops up to `max` bytes that were already received, without waiting
    /// for more. Returns how many were dropped.
    pub fn discard_buffered(&mut self, max: usize) -> usize {
        let n = (self.len - self.pos).min(max);
        self.pos += n;
        n
    }

    /// The oldest descriptor received and not yet taken.
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        self.fds.pop_front()
    }

    /// Closes descriptors nobody took (sent with another command).
    pub fn drop_fds(&mut self) -> usize {
        let n = self.fds.len();
        self.fds.clear();
        n
    }

    /// Receives more bytes into the buffer (which must be empty).
    fn fill(&mut self) -> io::Result<usize> {
        self.pos = 0;
        self.len = 0;
        let n = match &mut self.sock {
            CtrlSocket::Tcp(s) => s.read(&mut self.buf)?,
            CtrlSocket::Unix(s) => {
                let mut space =
                    [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
                let mut control = RecvAncillaryBuffer::new(&mut space);
                let mut iov = [IoSliceMut::new(&mut self.buf)];
                let msg = recvmsg(&*s, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
                    .map_err(io::Error::from)?;
                for m in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(fds) = m {
                        self.fds.extend(fds);
                    }
                }
                msg.bytes
            }
        };
        self.len = n;
        Ok(n)
    }

    /// Fills `out`.
    pub fn read_exact(&mut self, out: &mut [u8]) -> Result<(), ReadError> {
        let mut filled = 0;
        while filled < out.len() {
            if self.pos == self.len {
                if let Some(deadline) = self.deadline {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ReadError::TimedOut);
                    }
                    self.sock
                        .set_read_timeout(Some(left))
                        .map_err(ReadError::Io)?;
                    self.timeout_set = true;
                }
                match self.fill() {
                    Ok(0) => {
                        return Err(if self.deadline.is_none() && filled == 0 {
                            ReadError::Closed
                        } else {
                            ReadError::Truncated
                        });
                    }
                    Ok(_) => {
                        if self.deadline.is_none() {
                            self.deadline = Some(Instant::now() + self.request_timeout);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
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
            let n = (self.len - self.pos).min(out.len() - filled);
            let src = self.buf.get(self.pos..self.pos + n).unwrap_or_default();
            if let Some(dst) = out.get_mut(filled..filled + n) {
                dst.copy_from_slice(src);
            }
            self.pos += n;
            filled += n;
        }
        Ok(())
    }

    /// Reads a big-endian u32.
    pub fn read_u32(&mut self) -> Result<u32, ReadError> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }

    /// Reads a big-endian u64.
    pub fn read_u64(&mut self) -> Result<u64, ReadError> {
        let mut b = [0u8; 8];
        self.read_exact(&mut b)?;
        Ok(u64::from_be_bytes(b))
    }

    /// Reads one byte.
    pub fn read_u8(&mut self) -> Result<u8, ReadError> {
        let mut b = [0u8; 1];
        self.read_exact(&mut b)?;
        Ok(b[0])
    }

    /// Reads `len` bytes (checked by the caller against its limit). The
    /// vector grows as the bytes arrive, so a length that is a lie costs
    /// no memory up front.
    pub fn read_vec(&mut self, len: usize) -> Result<Vec<u8>, ReadError> {
        let mut v = Vec::with_capacity(len.min(BUFFER));
        while v.len() < len {
            let have = v.len();
            let n = (len - have).min(BUFFER);
            v.resize(have + n, 0);
            self.read_exact(v.get_mut(have..).unwrap_or_default())?;
        }
        Ok(v)
    }

    /// Writes a whole reply (one `write` for replies up to the socket
    /// buffer: cloud-hypervisor reads each reply with one `read`).
    pub fn send(&mut self, reply: &[u8]) -> io::Result<()> {
        match &mut self.sock {
            CtrlSocket::Tcp(s) => s.write_all(reply),
            CtrlSocket::Unix(s) => s.write_all(reply),
        }
    }
}
