//! `vtpm socket`: swtpm's control channel, byte by byte, as QEMU
//! (`-tpmdev emulator`), cloud-hypervisor (`--tpm socket=`) and libvirt
//! use it, over a Unix socket to a real `vtpm socket` process.
//!
//! * Every control command with well-formed, malformed and truncated
//!   requests, and the exact reply bytes (errors are the 4-byte result,
//!   GET_STATEBLOB's the 16-byte header); the process keeps serving after
//!   garbage.
//! * CMD_SET_DATAFD with one end of a socketpair passed by SCM_RIGHTS,
//!   then TPM commands on it (QEMU's TPM 2 probe before INIT included).
//! * Migration: GET_STATEBLOB on the source after a Startup, a PCR
//!   extend, an NV index and an HMAC session; SET_STATEBLOB + INIT on a
//!   destination with another state key: PCR, NV data and session are
//!   there and the TPM is started. A wrong migration key, an unsealed or
//!   damaged blob are refused.
//! * Shared storage: `--migration release-lock-outgoing` releases the
//!   state file lock after the savestate blob, `--migration incoming`
//!   takes it at INIT, LOCK_STORAGE and the next command take it back
//!   after a failed migration, and a source that let go never writes.
//! * STORE_VOLATILE + a new process + INIT resumes; INIT with
//!   DELETE_VOLATILE does not.
//! * Command lines: `--print-capabilities` is JSON, libvirt's command
//!   lines are accepted, unsupported options refused with one line and
//!   exit code 1, links named swtpm / swtpm_setup dispatch, `vtpm setup`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::ffi::OsString;
use std::io::{IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use vtpm_tests::{
    Hash, StateDir, TPMA_NV_OWNER_RW, TempDir, command_with_password, nv_define_space_command,
    nv_read_command, nv_read_response_data, nv_write_command, split_response,
    startup_clear_command, vtpm_bin,
};

// Control commands, results, flags (tpm_ioctl.h).
const GET_CAPABILITY: u32 = 0x01;
const INIT: u32 = 0x02;
const SHUTDOWN: u32 = 0x03;
const GET_TPMESTABLISHED: u32 = 0x04;
const SET_LOCALITY: u32 = 0x05;
const HASH_START: u32 = 0x06;
const HASH_DATA: u32 = 0x07;
const HASH_END: u32 = 0x08;
const CANCEL_TPM_CMD: u32 = 0x09;
const STORE_VOLATILE: u32 = 0x0A;
const RESET_TPMESTABLISHED: u32 = 0x0B;
const GET_STATEBLOB: u32 = 0x0C;
const SET_STATEBLOB: u32 = 0x0D;
const STOP: u32 = 0x0E;
const GET_CONFIG: u32 = 0x0F;
const SET_DATAFD: u32 = 0x10;
const SET_BUFFERSIZE: u32 = 0x11;
const GET_INFO: u32 = 0x12;
const LOCK_STORAGE: u32 = 0x13;

const SUCCESS: u32 = 0;
const BAD_PARAMETER: u32 = 0x03;
const FAIL: u32 = 0x09;
const BAD_ORDINAL: u32 = 0x0A;
const IOERROR: u32 = 0x1F;
const BAD_LOCALITY: u32 = 0x3D;

const PERMANENT: u32 = 1;
const VOLATILE: u32 = 2;
const SAVESTATE: u32 = 3;
const ENCRYPTED: u32 = 2;
const DECRYPTED: u32 = 1;
const DELETE_VOLATILE: u32 = 1;

/// Every capability bit (0..=16).
const ALL_CAPS: u64 = 0x1_FFFF;

/// TPM_RC_FAILURE with TPM_ST_NO_SESSIONS: the answer while not running.
const NOT_RUNNING: [u8; 10] = [0x80, 0x01, 0, 0, 0, 0x0A, 0, 0, 0x01, 0x01];
/// TPM_RC_INITIALIZE: the TPM is started already / not yet.
const RC_INITIALIZE: u32 = 0x100;

const TIMEOUT: Duration = Duration::from_secs(10);

const SPEC_INFO: &str = r#"{"TPMSpecification":{"family":"2.0","level":0,"revision":159}}"#;
const ATTR_INFO: &str =
    r#"{"TPMAttributes":{"manufacturer":"id:5654504D","version":"id:00000001","model":"vtpm"}}"#;

fn be(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---------------------------------------------------------------------------
// A `vtpm socket` process
// ---------------------------------------------------------------------------

/// A running `vtpm socket`, killed on drop. Its log and stderr live in
/// its own directory.
struct Vtpm {
    child: Option<Child>,
    dir: TempDir,
    ctrl: PathBuf,
}

impl Vtpm {
    /// `vtpm socket --tpm2 --tpmstate dir=<state> --ctrl unixio
    /// --key file=<state key>,format=binary --log …` and `extra`.
    fn start(state: &StateDir, extra: &[&str]) -> Vtpm {
        Vtpm::start_key(state, &state.key(), extra)
    }

    fn start_key(state: &StateDir, key: &Path, extra: &[&str]) -> Vtpm {
        let dir = TempDir::new("swtpm-ctl");
        let ctrl = dir.join("ctrl.sock");
        let mut args: Vec<OsString> = vec![
            "socket".into(),
            "--tpm2".into(),
            "--tpmstate".into(),
            format!("dir={},mode=0600", state.path().display()).into(),
            "--ctrl".into(),
            format!("type=unixio,path={},mode=0600", ctrl.display()).into(),
            "--key".into(),
            format!("file={},format=binary,mode=aes-256-cbc", key.display()).into(),
            "--log".into(),
            format!("file={},level=4", dir.join("log").display()).into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        Vtpm::spawn(dir, ctrl, &args)
    }

    fn spawn(dir: TempDir, ctrl: PathBuf, args: &[OsString]) -> Vtpm {
        let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
        let child = Command::new(vtpm_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start vtpm socket");
        let mut v = Vtpm {
            child: Some(child),
            dir,
            ctrl,
        };
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if UnixStream::connect(&v.ctrl).is_ok() {
                return v;
            }
            if let Some(status) = v.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "vtpm socket exited at start ({status}):\n{}",
                    v.diagnostics()
                );
            }
            assert!(
                Instant::now() < deadline,
                "control socket never appeared:\n{}",
                v.diagnostics()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn diagnostics(&self) -> String {
        format!(
            "--- stderr ---\n{}\n--- log ---\n{}",
            std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default(),
            self.log()
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// A new control connection.
    fn ctrl(&self) -> UnixStream {
        let s = UnixStream::connect(&self.ctrl)
            .unwrap_or_else(|e| panic!("connect: {e}\n{}", self.diagnostics()));
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.set_write_timeout(Some(TIMEOUT)).unwrap();
        s
    }

    /// Waits for the process to exit.
    fn wait_exit(&mut self) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "vtpm socket did not exit");
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// SIGKILL and reap.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Vtpm {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------
// Control channel helpers
// ---------------------------------------------------------------------------

/// Sends `req` and reads exactly `n` reply bytes, then checks that
/// nothing more follows.
fn rt(c: &mut UnixStream, req: &[u8], n: usize) -> Vec<u8> {
    c.write_all(req).unwrap();
    let mut buf = vec![0u8; n];
    c.read_exact(&mut buf)
        .unwrap_or_else(|e| panic!("reply to {req:02x?}: {e}"));
    assert_quiet(c);
    buf
}

/// Nothing more arrives on `c` for a moment.
fn assert_quiet(c: &mut UnixStream) {
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut b = [0u8; 1];
    loop {
        match c.read(&mut b) {
            // Nothing, or the end of the connection (after SHUTDOWN).
            Ok(0) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            other => panic!("unexpected bytes after the reply: {other:?} {b:02x?}"),
        }
    }
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
}

/// Sends `req`, half-closes, and returns everything until the server
/// closes.
fn send_close(c: &mut UnixStream, req: &[u8]) -> Vec<u8> {
    c.write_all(req).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    out
}

/// Reads whatever the server sends until it closes the connection.
fn read_to_close(c: &mut UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    c.read_to_end(&mut out).unwrap();
    out
}

/// Sends `bytes` with `fd` attached (SCM_RIGHTS), as QEMU sends
/// CMD_SET_DATAFD.
fn send_with_fd(c: &UnixStream, bytes: &[u8], fd: impl AsFd) {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = rustix::net::SendAncillaryBuffer::new(&mut space);
    let fds = [fd.as_fd()];
    assert!(anc.push(rustix::net::SendAncillaryMessage::ScmRights(&fds)));
    let n = rustix::net::sendmsg(
        c,
        &[IoSlice::new(bytes)],
        &mut anc,
        rustix::net::SendFlags::empty(),
    )
    .unwrap();
    assert_eq!(n, bytes.len());
}

fn socketpair() -> (OwnedFd, OwnedFd) {
    rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .unwrap()
}

/// CMD_SET_DATAFD with a new socketpair; returns the result and our end.
fn set_datafd(c: &mut UnixStream) -> (u32, UnixStream) {
    let (ours, theirs) = socketpair();
    send_with_fd(c, &be(&[SET_DATAFD]), &theirs);
    drop(theirs);
    let mut r = [0u8; 4];
    c.read_exact(&mut r).unwrap();
    assert_quiet(c);
    let data = UnixStream::from(ours);
    data.set_read_timeout(Some(TIMEOUT)).unwrap();
    (u32::from_be_bytes(r), data)
}

/// A TPM command and its whole response on a data channel.
fn transact(s: &mut UnixStream, command: &[u8]) -> Vec<u8> {
    s.write_all(command).unwrap();
    let mut head = [0u8; 10];
    s.read_exact(&mut head).unwrap();
    let size = u32::from_be_bytes([head[2], head[3], head[4], head[5]]) as usize;
    let mut rest = vec![0u8; size - 10];
    s.read_exact(&mut rest).unwrap();
    cat(&[&head, &rest])
}

fn rc(resp: &[u8]) -> u32 {
    split_response(resp).1
}

/// A TPM command that must succeed.
fn ok(s: &mut UnixStream, command: &[u8], what: &str) -> Vec<u8> {
    let resp = transact(s, command);
    assert_eq!(rc(&resp), 0, "{what}: {resp:02x?}");
    resp
}

fn get_random(n: u16) -> Vec<u8> {
    cat(&[
        &[0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7B],
        &n.to_be_bytes(),
    ])
}

/// TPM2_PCR_Extend of PCR `pcr` in the SHA-256 bank with `digest`.
fn pcr_extend_sha256(pcr: u32, digest: &[u8]) -> Vec<u8> {
    let params = cat(&[&be(&[1]), &0x000Bu16.to_be_bytes(), digest]);
    command_with_password(0x182, pcr, &params)
}

/// TPM2_PCR_Read of PCR 16 in bank `alg`; returns (digests returned,
/// the first digest).
fn pcr16_read(s: &mut UnixStream, alg: u16) -> (u32, Vec<u8>) {
    let cmd = cat(&[
        &[0x80, 0x01, 0, 0, 0, 20, 0, 0, 0x01, 0x7E],
        &be(&[1]),
        &alg.to_be_bytes(),
        &[3, 0, 0, 1],
    ]);
    let resp = ok(s, &cmd, "PCR_Read");
    // pcrUpdateCounter, pcrSelectionOut (TPML_PCR_SELECTION), pcrValues
    // (TPML_DIGEST).
    let u32_at = |i: usize| u32::from_be_bytes(resp[i..i + 4].try_into().unwrap());
    let mut i = 14;
    let selections = u32_at(i);
    i += 4;
    for _ in 0..selections {
        i += 2;
        let n = resp[i] as usize;
        i += 1 + n;
    }
    let count = u32_at(i);
    i += 4;
    if count == 0 {
        return (0, Vec::new());
    }
    let size = u16::from_be_bytes([resp[i], resp[i + 1]]) as usize;
    (count, resp[i + 2..i + 2 + size].to_vec())
}

/// TPM2_StartAuthSession: an unbound, unsalted HMAC session with SHA-256.
fn start_hmac_session(s: &mut UnixStream) -> u32 {
    let body = cat(&[
        &be(&[0x176, 0x4000_0007, 0x4000_0007]),
        &16u16.to_be_bytes(),
        &[0x5A; 16],
        &0u16.to_be_bytes(),
        &[0x00],
        &0x0010u16.to_be_bytes(),
        &0x000Bu16.to_be_bytes(),
    ]);
    let size = u32::try_from(body.len() + 6).unwrap();
    let cmd = cat(&[&[0x80, 0x01], &size.to_be_bytes(), &body]);
    let resp = ok(s, &cmd, "StartAuthSession");
    u32::from_be_bytes(resp[10..14].try_into().unwrap())
}

fn flush_context(handle: u32) -> Vec<u8> {
    cat(&[&[0x80, 0x01, 0, 0, 0, 14, 0, 0, 0x01, 0x65], &be(&[handle])])
}

/// GET_STATEBLOB → (state flags, blob).
fn get_blob(c: &mut UnixStream, kind: u32, offset: u32) -> (u32, Vec<u8>) {
    c.write_all(&be(&[GET_STATEBLOB, DECRYPTED, kind, offset]))
        .unwrap();
    let mut head = [0u8; 16];
    c.read_exact(&mut head).unwrap();
    let w = |i: usize| u32::from_be_bytes(head[i..i + 4].try_into().unwrap());
    assert_eq!(w(0), SUCCESS, "GET_STATEBLOB {kind}: {head:02x?}");
    assert_eq!(w(8), w(12), "totlength == length");
    let mut blob = vec![0u8; w(12) as usize];
    c.read_exact(&mut blob).unwrap();
    assert_quiet(c);
    (w(4), blob)
}

/// SET_STATEBLOB as QEMU sends it: the header, then the blob in a second
/// write; returns the result.
fn set_blob(c: &mut UnixStream, flags: u32, kind: u32, blob: &[u8]) -> u32 {
    c.write_all(&be(&[
        SET_STATEBLOB,
        flags,
        kind,
        u32::try_from(blob.len()).unwrap(),
    ]))
    .unwrap();
    c.write_all(blob).unwrap();
    let mut r = [0u8; 4];
    c.read_exact(&mut r).unwrap();
    assert_quiet(c);
    u32::from_be_bytes(r)
}

fn result(c: &mut UnixStream, req: &[u8]) -> u32 {
    u32::from_be_bytes(rt(c, req, 4).try_into().unwrap())
}

/// QEMU's start sequence on a data fd: SET_DATAFD, STOP,
/// SET_BUFFERSIZE, INIT.
fn qemu_start(v: &Vtpm, init_flags: u32) -> (UnixStream, UnixStream) {
    let mut c = v.ctrl();
    let (r, data) = set_datafd(&mut c);
    assert_eq!(r, SUCCESS, "{}", v.diagnostics());
    assert_eq!(
        rt(&mut c, &be(&[GET_CAPABILITY]), 8),
        ALL_CAPS.to_be_bytes()
    );
    assert_eq!(result(&mut c, &be(&[STOP])), SUCCESS);
    assert_eq!(
        rt(&mut c, &be(&[SET_BUFFERSIZE, 4096]), 16),
        be(&[0, 4096, 4096, 4096])
    );
    assert_eq!(
        result(&mut c, &be(&[INIT, init_flags])),
        SUCCESS,
        "{}",
        v.diagnostics()
    );
    (c, data)
}

// ---------------------------------------------------------------------------
// Control channel conformance
// ---------------------------------------------------------------------------

#[test]
fn control_commands_before_and_after_init() {
    let state = StateDir::new("ctl-basic");
    let v = Vtpm::start(&state, &[]);
    let mut c = v.ctrl();
    // The capabilities: a big-endian u64 whose high half (0) newer QEMU
    // reads as a result code.
    assert_eq!(
        rt(&mut c, &be(&[GET_CAPABILITY]), 8),
        ALL_CAPS.to_be_bytes()
    );
    assert_eq!(rt(&mut c, &be(&[GET_CONFIG]), 8), be(&[SUCCESS, 1]));
    // Not running yet (no INIT, no --flags): TPM_BAD_ORDINAL, 4 bytes.
    for req in [
        be(&[GET_TPMESTABLISHED]),
        be(&[HASH_START]),
        be(&[HASH_END]),
        cat(&[&be(&[HASH_DATA, 2]), &[0xAB, 0xCD]]),
        be(&[CANCEL_TPM_CMD]),
        be(&[STORE_VOLATILE]),
        be(&[RESET_TPMESTABLISHED, 0x0300_0000]),
        be(&[GET_STATEBLOB, 0, PERMANENT, 0]),
    ] {
        assert_eq!(rt(&mut c, &req, 4), be(&[BAD_ORDINAL]), "{req:02x?}");
    }
    // Buffer size: only 4096, and settable while stopped.
    assert_eq!(
        rt(&mut c, &be(&[SET_BUFFERSIZE, 4096]), 16),
        be(&[0, 4096, 4096, 4096])
    );
    assert_eq!(
        rt(&mut c, &be(&[SET_BUFFERSIZE, 0]), 16),
        be(&[0, 4096, 4096, 4096])
    );
    // LOCK_STORAGE: the lock is held already.
    assert_eq!(result(&mut c, &be(&[LOCK_STORAGE, 0])), SUCCESS);
    // SET_DATAFD without a descriptor.
    assert_eq!(result(&mut c, &be(&[SET_DATAFD])), BAD_PARAMETER);

    assert_eq!(result(&mut c, &be(&[INIT, 0])), SUCCESS);
    assert_eq!(
        rt(&mut c, &be(&[GET_TPMESTABLISHED]), 8),
        cat(&[&be(&[SUCCESS]), &[0, 0, 0, 0]])
    );
    // SET_LOCALITY: tcti-swtpm sends one byte, QEMU four.
    assert_eq!(result(&mut c, &cat(&[&be(&[SET_LOCALITY]), &[0]])), SUCCESS);
    assert_eq!(
        result(&mut c, &cat(&[&be(&[SET_LOCALITY]), &[3, 0, 0, 0]])),
        SUCCESS
    );
    assert_eq!(
        result(&mut c, &cat(&[&be(&[SET_LOCALITY]), &[4, 0, 0, 0]])),
        SUCCESS
    );
    assert_eq!(
        result(&mut c, &cat(&[&be(&[SET_LOCALITY]), &[5, 0, 0, 0]])),
        BAD_LOCALITY
    );
    assert_eq!(
        result(&mut c, &cat(&[&be(&[RESET_TPMESTABLISHED]), &[0, 0, 0, 0]])),
        BAD_LOCALITY
    );
    assert_eq!(
        result(&mut c, &cat(&[&be(&[RESET_TPMESTABLISHED]), &[3, 0, 0, 0]])),
        SUCCESS
    );
    assert_eq!(result(&mut c, &be(&[HASH_START])), SUCCESS);
    assert_eq!(
        result(&mut c, &cat(&[&be(&[HASH_DATA, 3]), b"abc"])),
        SUCCESS
    );
    assert_eq!(result(&mut c, &be(&[HASH_END])), SUCCESS);
    assert_eq!(result(&mut c, &be(&[CANCEL_TPM_CMD])), SUCCESS);
    assert_eq!(result(&mut c, &be(&[STORE_VOLATILE])), SUCCESS);
    // While running, SET_BUFFERSIZE may only ask.
    assert_eq!(result(&mut c, &be(&[SET_BUFFERSIZE, 4096])), BAD_ORDINAL);
    assert_eq!(
        rt(&mut c, &be(&[SET_BUFFERSIZE, 0]), 16),
        be(&[0, 4096, 4096, 4096])
    );
    // SET_STATEBLOB while running: its body is read (framing kept) and
    // refused.
    assert_eq!(
        set_blob(&mut c, ENCRYPTED, PERMANENT, &[7; 100]),
        BAD_ORDINAL
    );
    // GET_STATEBLOB: an unknown type gets the 16-byte header with the
    // error; savestate is empty and not encrypted.
    assert_eq!(
        rt(&mut c, &be(&[GET_STATEBLOB, 0, 9, 0]), 16),
        be(&[BAD_PARAMETER, 0, 0, 0])
    );
    assert_eq!(
        rt(&mut c, &be(&[GET_STATEBLOB, DECRYPTED, SAVESTATE, 0]), 16),
        be(&[SUCCESS, 0, 0, 0])
    );
    // A permanent blob is a sealed state file; reading on from an offset
    // continues the same blob.
    let (flags, blob) = get_blob(&mut c, PERMANENT, 0);
    assert_eq!(flags, ENCRYPTED);
    assert!(blob.starts_with(b"VTPMSTAT"), "{:02x?}", &blob[..16]);
    let (_, tail) = get_blob(&mut c, PERMANENT, 100);
    assert_eq!(tail, blob[100..]);
    let (_, none) = get_blob(&mut c, PERMANENT, u32::try_from(blob.len()).unwrap() + 5);
    assert!(none.is_empty());
    // Unknown commands: TPM_BAD_ORDINAL, and the connection goes on.
    assert_eq!(result(&mut c, &be(&[0x1234])), BAD_ORDINAL);
    assert_eq!(result(&mut c, &be(&[0])), BAD_ORDINAL);
    assert_eq!(rt(&mut c, &be(&[GET_CONFIG]), 8), be(&[SUCCESS, 1]));
    // STOP: not running again.
    assert_eq!(result(&mut c, &be(&[STOP])), SUCCESS);
    assert_eq!(result(&mut c, &be(&[GET_TPMESTABLISHED])), BAD_ORDINAL);
    // GET_STATEBLOB needs a running TPM (as swtpm: QEMU takes the blobs
    // before it stops the source).
    assert_eq!(
        result(&mut c, &be(&[GET_STATEBLOB, 0, VOLATILE, 0])),
        BAD_ORDINAL
    );
}

#[test]
fn get_info() {
    let state = StateDir::new("ctl-info");
    let v = Vtpm::start(&state, &[]);
    let mut c = v.ctrl();
    let info = |c: &mut UnixStream, flags: u64, offset: u32, text: &str| {
        let tail = &text.as_bytes()[offset as usize..];
        let mut req = be(&[GET_INFO]);
        req.extend(flags.to_be_bytes());
        req.extend(be(&[offset, 0]));
        let expected = cat(&[
            &be(&[
                SUCCESS,
                u32::try_from(text.len() + 1).unwrap(),
                u32::try_from(tail.len() + 1).unwrap(),
            ]),
            tail,
            &[0],
        ]);
        assert_eq!(rt(c, &req, expected.len()), expected, "flags {flags}");
    };
    info(&mut c, 1, 0, SPEC_INFO);
    info(&mut c, 2, 0, ATTR_INFO);
    let both = format!("{},{}", &SPEC_INFO[..SPEC_INFO.len() - 1], &ATTR_INFO[1..]);
    info(&mut c, 3, 0, &both);
    info(&mut c, 3, 40, &both);
    info(&mut c, 0, 0, "{}");
    // Unknown flag bits add nothing.
    info(&mut c, 1 | 0x100, 0, SPEC_INFO);
    // An offset at or past the end of the text.
    let mut req = be(&[GET_INFO]);
    req.extend(1u64.to_be_bytes());
    req.extend(be(&[u32::try_from(SPEC_INFO.len()).unwrap(), 0]));
    assert_eq!(rt(&mut c, &req, 4), be(&[BAD_PARAMETER]));
    for text in [SPEC_INFO, ATTR_INFO, &both] {
        assert!(json::parse(text).is_ok(), "{text}");
    }
}

#[test]
fn malformed_requests_keep_the_server_serving() {
    let state = StateDir::new("ctl-bad");
    let v = Vtpm::start(&state, &["--flags", "not-need-init"]);
    // A truncated INIT body: TPM_BAD_PARAMETER, then the connection ends.
    let mut c = v.ctrl();
    assert_eq!(
        send_close(&mut c, &cat(&[&be(&[INIT]), &[0, 0]])),
        be(&[BAD_PARAMETER])
    );
    // A body that never comes: TPM_BAD_PARAMETER after the deadline, then
    // closed.
    let mut c = v.ctrl();
    c.write_all(&be(&[SET_LOCALITY])).unwrap();
    assert_eq!(read_to_close(&mut c), be(&[BAD_PARAMETER]));
    let mut c = v.ctrl();
    c.write_all(&be(&[GET_STATEBLOB, 0, 1])).unwrap();
    assert_eq!(read_to_close(&mut c), be(&[BAD_PARAMETER]));
    // Oversize bodies are refused before they are read.
    let mut c = v.ctrl();
    assert_eq!(
        send_close(&mut c, &be(&[HASH_DATA, 4097])),
        be(&[BAD_PARAMETER])
    );
    let mut c = v.ctrl();
    assert_eq!(
        send_close(
            &mut c,
            &be(&[SET_STATEBLOB, ENCRYPTED, PERMANENT, 0xFFFF_FFFF])
        ),
        be(&[BAD_PARAMETER])
    );
    // A SET_STATEBLOB whose blob stops short.
    let mut c = v.ctrl();
    assert_eq!(
        send_close(
            &mut c,
            &cat(&[&be(&[SET_STATEBLOB, ENCRYPTED, PERMANENT, 1000]), &[1; 10]])
        ),
        be(&[BAD_PARAMETER])
    );
    // A truncated command code: closed without a reply.
    let mut c = v.ctrl();
    assert_eq!(send_close(&mut c, &[0, 0]), Vec::<u8>::new());
    // Garbage: some replies, no crash.
    let mut c = v.ctrl();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = send_close(&mut c, &garbage);
    // Descriptors sent with another command are closed, the command
    // answered.
    let mut c = v.ctrl();
    let (_ours, theirs) = socketpair();
    send_with_fd(&c, &be(&[GET_CONFIG]), &theirs);
    let mut r = [0u8; 8];
    c.read_exact(&mut r).unwrap();
    assert_eq!(r.to_vec(), be(&[SUCCESS, 1]));
    // (One control connection at a time, as swtpm.)
    drop(c);
    // Still serving, TPM still running.
    let mut c = v.ctrl();
    assert_eq!(
        rt(&mut c, &be(&[GET_CAPABILITY]), 8),
        ALL_CAPS.to_be_bytes()
    );
    assert_eq!(
        rt(&mut c, &be(&[GET_TPMESTABLISHED]), 8),
        cat(&[&be(&[SUCCESS]), &[0, 0, 0, 0]])
    );
}

#[test]
fn shutdown_ends_the_process() {
    let state = StateDir::new("ctl-shutdown");
    let pid_dir = TempDir::new("pid");
    let pid_file = pid_dir.join("vtpm.pid");
    let pid_arg = format!("file={}", pid_file.display());
    let mut v = Vtpm::start(&state, &["--pid", &pid_arg]);
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, v.child.as_ref().unwrap().id());
    let mode = std::fs::metadata(&v.ctrl).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "control socket mode");
    let mut c = v.ctrl();
    assert_eq!(result(&mut c, &be(&[SHUTDOWN])), SUCCESS);
    assert!(v.wait_exit().success(), "{}", v.diagnostics());
    assert!(!v.ctrl.exists(), "the control socket is removed");
    assert!(!pid_file.exists(), "the pid file is removed");
    assert!(state.state().exists());
}

// ---------------------------------------------------------------------------
// SET_DATAFD
// ---------------------------------------------------------------------------

#[test]
fn set_datafd_then_tpm_commands() {
    let state = StateDir::new("datafd");
    let v = Vtpm::start(&state, &[]);
    let mut c = v.ctrl();
    let (r, mut data) = set_datafd(&mut c);
    assert_eq!(r, SUCCESS);
    // QEMU's probe before INIT (TPM2_ReadClock): TPM_RC_FAILURE with a
    // TPM 2 tag tells it this is a TPM 2.
    assert_eq!(
        transact(&mut data, &[0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x81]),
        NOT_RUNNING
    );
    // Only one data channel at a time.
    let (r, _second) = set_datafd(&mut c);
    assert_eq!(r, IOERROR);
    // A descriptor that is not a socket.
    let file = std::fs::File::open("/dev/null").unwrap();
    send_with_fd(&c, &be(&[SET_DATAFD]), &file);
    let mut r = [0u8; 4];
    c.read_exact(&mut r).unwrap();
    assert_eq!(
        r.to_vec(),
        be(&[IOERROR]),
        "the active channel is checked first"
    );

    assert_eq!(result(&mut c, &be(&[INIT, 0])), SUCCESS);
    ok(&mut data, &startup_clear_command(), "Startup");
    let resp = ok(&mut data, &get_random(16), "GetRandom");
    assert_eq!(resp.len(), 10 + 2 + 16);
    // The command header (tcti-swtpm's) works on the passed socket too.
    let cmd = get_random(8);
    let mut framed = be(&[8]);
    framed.push(0);
    framed.extend(be(&[u32::try_from(cmd.len()).unwrap()]));
    framed.extend(&cmd);
    data.write_all(&framed).unwrap();
    let mut size = [0u8; 4];
    data.read_exact(&mut size).unwrap();
    let mut rest = vec![0u8; u32::from_be_bytes(size) as usize + 4];
    data.read_exact(&mut rest).unwrap();
    assert_eq!(&rest[6..10], &[0, 0, 0, 0]);
    assert_eq!(&rest[rest.len() - 4..], &[0, 0, 0, 0]);

    // When the data channel closes, another one may be passed.
    drop(data);
    let deadline = Instant::now() + TIMEOUT;
    let mut data = loop {
        let (r, d) = set_datafd(&mut c);
        if r == SUCCESS {
            break d;
        }
        assert_eq!(r, IOERROR);
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(10));
    };
    ok(
        &mut data,
        &get_random(4),
        "GetRandom on the second data channel",
    );
}

#[test]
fn set_datafd_refuses_a_non_socket() {
    let state = StateDir::new("datafd-file");
    let v = Vtpm::start(&state, &[]);
    let mut c = v.ctrl();
    let file = std::fs::File::open("/dev/null").unwrap();
    send_with_fd(&c, &be(&[SET_DATAFD]), &file);
    let mut r = [0u8; 4];
    c.read_exact(&mut r).unwrap();
    assert_eq!(r.to_vec(), be(&[BAD_PARAMETER]));
    assert_quiet(&mut c);
    let (r, _) = set_datafd(&mut c);
    assert_eq!(r, SUCCESS);
}

#[test]
fn terminate_when_the_data_channel_closes() {
    let state = StateDir::new("terminate");
    let mut v = Vtpm::start(&state, &["--terminate", "--flags", "startup-clear"]);
    let mut c = v.ctrl();
    let (r, mut data) = set_datafd(&mut c);
    assert_eq!(r, SUCCESS);
    // startup-clear: started already.
    assert_eq!(
        rc(&transact(&mut data, &startup_clear_command())),
        RC_INITIALIZE
    );
    ok(&mut data, &get_random(8), "GetRandom");
    assert!(v.is_running());
    drop(data);
    assert!(v.wait_exit().success(), "{}", v.diagnostics());
}

#[test]
fn ctrl_terminate_and_listening_data_server() {
    let state = StateDir::new("server");
    let dir = TempDir::new("server-sock");
    let data_path = dir.join("data.sock");
    let server = format!("type=unixio,path={},mode=0600", data_path.display());
    let mut v = Vtpm::start(&state, &["--server", &server, "--flags", "not-need-init"]);
    let mut d = UnixStream::connect(&data_path).unwrap();
    d.set_read_timeout(Some(TIMEOUT)).unwrap();
    ok(&mut d, &startup_clear_command(), "Startup");
    drop(d);
    // Without --terminate the process stays after the data client left.
    let mut d = UnixStream::connect(&data_path).unwrap();
    d.set_read_timeout(Some(TIMEOUT)).unwrap();
    ok(&mut d, &get_random(8), "GetRandom");
    assert!(v.is_running());
    drop(v.ctrl());
    thread::sleep(Duration::from_millis(100));
    assert!(v.is_running());
    v.kill();

    // --ctrl …,terminate: the end of the control connection ends it.
    let state = StateDir::new("ctrl-terminate");
    let dir = TempDir::new("ctl-term");
    let ctrl = dir.join("ctrl.sock");
    let args: Vec<OsString> = [
        "socket".to_string(),
        "--tpm2".into(),
        "--tpmstate".into(),
        format!("backend-uri=file://{}", state.state().display()),
        "--ctrl".into(),
        format!("type=unixio,path={},terminate", ctrl.display()),
        "--key".into(),
        "fd=0,format=binary".to_string(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
    let mut child = Command::new(vtpm_bin())
        .args(&args)
        .stdin(std::fs::File::open(state.key()).unwrap())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let c = loop {
        if let Ok(c) = UnixStream::connect(&ctrl) {
            break c;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "{}",
            std::fs::read_to_string(dir.join("stderr")).unwrap()
        );
        assert!(Instant::now() < deadline);
        thread::sleep(Duration::from_millis(10));
    };
    drop(c);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            assert!(s.success());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "did not exit with the control connection"
        );
        thread::sleep(Duration::from_millis(10));
    }
    // Default socket mode 0770, state file where backend-uri said.
    assert!(state.state().exists());
}

// ---------------------------------------------------------------------------
// Migration: state blobs
// ---------------------------------------------------------------------------

const NV_INDEX: u32 = 0x0150_0020;

/// Source state for the migration tests: Startup, PCR 16 extended, an NV
/// index written, an HMAC session started. Returns (PCR 16, session).
fn prepare_source(data: &mut UnixStream) -> (Vec<u8>, u32) {
    ok(data, &startup_clear_command(), "Startup");
    let digest = Hash::Sha256.digest(&[b"vtpm migration"]);
    ok(data, &pcr_extend_sha256(16, &digest), "PCR_Extend");
    let pcr = Hash::Sha256.extend(&[0; 32], &digest);
    assert_eq!(pcr16_read(data, 0x000B), (1, pcr.clone()));
    ok(
        data,
        &nv_define_space_command(NV_INDEX, TPMA_NV_OWNER_RW, 32),
        "NV_DefineSpace",
    );
    ok(
        data,
        &nv_write_command(NV_INDEX, 0, b"travels with the VM"),
        "NV_Write",
    );
    let session = start_hmac_session(data);
    assert_eq!(session >> 24, 0x02, "HMAC session handle {session:#x}");
    (pcr, session)
}

/// The three blobs, as QEMU's pre_save takes them (TPM running).
fn take_blobs(c: &mut UnixStream) -> Vec<(u32, u32, Vec<u8>)> {
    [PERMANENT, VOLATILE, SAVESTATE]
        .into_iter()
        .map(|kind| {
            let (flags, blob) = get_blob(c, kind, 0);
            (kind, flags, blob)
        })
        .collect()
}

/// QEMU's post_load on the destination: STOP, SET_STATEBLOB for every
/// non-empty blob, INIT with DELETE_VOLATILE.
fn restore_blobs(c: &mut UnixStream, blobs: &[(u32, u32, Vec<u8>)]) -> u32 {
    assert_eq!(result(c, &be(&[STOP])), SUCCESS);
    for (kind, flags, blob) in blobs {
        if blob.is_empty() {
            continue;
        }
        let r = set_blob(c, *flags, *kind, blob);
        if r != SUCCESS {
            return r;
        }
    }
    result(c, &be(&[INIT, DELETE_VOLATILE]))
}

fn check_migrated(data: &mut UnixStream, pcr: &[u8], session: u32) {
    // Started: no Startup needed (and a second one is refused).
    ok(data, &get_random(8), "GetRandom");
    assert_eq!(rc(&transact(data, &startup_clear_command())), RC_INITIALIZE);
    assert_eq!(pcr16_read(data, 0x000B), (1, pcr.to_vec()));
    let resp = ok(data, &nv_read_command(NV_INDEX, 0, 19), "NV_Read");
    assert_eq!(nv_read_response_data(&resp), b"travels with the VM");
    ok(
        data,
        &flush_context(session),
        "FlushContext of the HMAC session",
    );
    assert_ne!(rc(&transact(data, &flush_context(session))), 0);
}

/// Restores `blobs` on the destination `dst` (its control and data
/// channels) and checks the migrated TPM.
fn restore_and_check(
    dst: &Vtpm,
    (c, data): (&mut UnixStream, &mut UnixStream),
    blobs: &[(u32, u32, Vec<u8>)],
    (pcr, session): (&[u8], u32),
) {
    assert_eq!(restore_blobs(c, blobs), SUCCESS, "{}", dst.diagnostics());
    check_migrated(data, pcr, session);
}

/// A new `vtpm` on `state` (the last one has exited): after
/// Startup(CLEAR), NV_INDEX holds `want`.
fn assert_nv_after_restart(state: &StateDir, want: &[u8]) {
    let again = Vtpm::start(state, &[]);
    let (_c, mut d) = qemu_start(&again, 0);
    ok(&mut d, &startup_clear_command(), "Startup");
    let resp = ok(&mut d, &nv_read_command(NV_INDEX, 0, 19), "NV_Read");
    assert_eq!(nv_read_response_data(&resp), want);
}

#[test]
fn state_blobs_round_trip_with_a_migration_key() {
    let src_state = StateDir::new("mig-src");
    let dst_state = StateDir::new("mig-dst");
    let mig_key = [0x42u8; 32];
    let src_mig = src_state.write_key("mig.key", &mig_key, 0o600);
    let dst_mig = dst_state.write_key("mig.key", &mig_key, 0o600);
    let src_arg = format!("file={},format=binary", src_mig.display());
    let dst_arg = format!("file={},format=binary", dst_mig.display());
    let mut src = Vtpm::start(&src_state, &["--migration-key", &src_arg]);
    let (mut sc, mut sd) = qemu_start(&src, 0);
    assert_eq!(rt(&mut sc, &be(&[GET_CONFIG]), 8), be(&[SUCCESS, 3]));
    let (pcr, session) = prepare_source(&mut sd);
    let blobs = take_blobs(&mut sc);
    assert_eq!(blobs[0].1, ENCRYPTED);
    assert_eq!(blobs[1].1, ENCRYPTED);
    assert_eq!((blobs[2].1, blobs[2].2.len()), (0, 0), "savestate is empty");
    assert!(
        !blobs[1].2.windows(4).any(|w| w == b"VTVS"),
        "volatile blob is sealed"
    );
    // The source stops; the VM runs on the destination.
    assert_eq!(result(&mut sc, &be(&[STOP])), SUCCESS);
    assert_eq!(result(&mut sc, &be(&[SHUTDOWN])), SUCCESS);
    assert!(src.wait_exit().success());

    // A destination with its own state key (and state).
    let dst = Vtpm::start(&dst_state, &["--migration-key", &dst_arg]);
    let (mut dc, mut dd) = qemu_start(&dst, 0);
    ok(&mut dd, &startup_clear_command(), "Startup");
    restore_and_check(&dst, (&mut dc, &mut dd), &blobs, (&pcr, session));
    // An empty savestate blob is accepted too.
    assert_eq!(result(&mut dc, &be(&[STOP])), SUCCESS);
    assert_eq!(set_blob(&mut dc, 0, SAVESTATE, &[]), SUCCESS);
    assert_eq!(result(&mut dc, &be(&[SHUTDOWN])), SUCCESS);
    drop(dc);
    drop(dd);
    // The destination wrote the migrated state to its own state file.
    let mut dst = dst;
    assert!(dst.wait_exit().success());
    assert_nv_after_restart(&dst_state, b"travels with the VM");
}

#[test]
fn state_blobs_round_trip_with_the_state_key() {
    // No migration key: the blobs are sealed with the state key, which
    // the destination then needs (same key, another state file).
    let src_state = StateDir::new("mig-sk-src");
    let dst_state = StateDir::new("mig-sk-dst");
    let key = std::fs::read(src_state.key()).unwrap();
    dst_state.write_key("state.key", &key, 0o600);
    let src = Vtpm::start(&src_state, &[]);
    let (mut sc, mut sd) = qemu_start(&src, 0);
    let (pcr, session) = prepare_source(&mut sd);
    let blobs = take_blobs(&mut sc);
    let dst = Vtpm::start(&dst_state, &[]);
    let (mut dc, mut dd) = qemu_start(&dst, 0);
    restore_and_check(&dst, (&mut dc, &mut dd), &blobs, (&pcr, session));
}

#[test]
fn wrong_keys_and_bad_blobs_are_refused() {
    let src_state = StateDir::new("mig-bad-src");
    let src_mig = src_state.write_key("mig.key", &[0x11; 32], 0o600);
    let src_arg = format!("file={},format=binary", src_mig.display());
    let src = Vtpm::start(&src_state, &["--migration-key", &src_arg]);
    let (mut sc, mut sd) = qemu_start(&src, 0);
    prepare_source(&mut sd);
    let blobs = take_blobs(&mut sc);

    // Another migration key.
    let dst_state = StateDir::new("mig-bad-dst");
    let dst_mig = dst_state.write_key("mig.key", &[0x22; 32], 0o600);
    let dst_arg = format!("file={},format=binary", dst_mig.display());
    let dst = Vtpm::start(&dst_state, &["--migration-key", &dst_arg]);
    let mut dc = dst.ctrl();
    assert_eq!(result(&mut dc, &be(&[STOP])), SUCCESS);
    assert_eq!(set_blob(&mut dc, ENCRYPTED, PERMANENT, &blobs[0].2), FAIL);
    assert!(dst.log().contains("wrong state key"), "{}", dst.log());
    // No migration key on the destination: its state key does not fit.
    let other_state = StateDir::new("mig-bad-other");
    let other = Vtpm::start(&other_state, &[]);
    let mut oc = other.ctrl();
    assert_eq!(set_blob(&mut oc, ENCRYPTED, VOLATILE, &blobs[1].2), FAIL);

    // The right key, but a damaged blob, an unsealed one, a non-empty
    // savestate, an unknown type.
    let ok_state = StateDir::new("mig-bad-ok");
    let ok_mig = ok_state.write_key("mig.key", &[0x11; 32], 0o600);
    let ok_arg = format!("file={},format=binary", ok_mig.display());
    let good = Vtpm::start(&ok_state, &["--migration-key", &ok_arg]);
    let mut gc = good.ctrl();
    let mut damaged = blobs[0].2.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 1;
    assert_eq!(set_blob(&mut gc, ENCRYPTED, PERMANENT, &damaged), FAIL);
    // Whatever the flag says, only sealed blobs are taken (they say so in
    // their header, which is why `swtpm_ioctl --load`, sending flags 0,
    // works).
    let mut plain = b"VTPMSTAT".to_vec();
    plain.extend([0; 200]);
    assert_eq!(
        set_blob(&mut gc, ENCRYPTED, PERMANENT, &plain),
        BAD_PARAMETER
    );
    assert_eq!(
        set_blob(&mut gc, ENCRYPTED, VOLATILE, b"VTVS plain volatile"),
        BAD_PARAMETER
    );
    assert_eq!(set_blob(&mut gc, 0, PERMANENT, &blobs[0].2), SUCCESS);
    assert_eq!(set_blob(&mut gc, 0, SAVESTATE, &[1, 2, 3]), BAD_PARAMETER);
    assert_eq!(set_blob(&mut gc, ENCRYPTED, 7, &blobs[0].2), BAD_PARAMETER);
    // A volatile blob given as the permanent one opens (same key) but is
    // refused at INIT; the TPM stays stopped, then INIT without blobs
    // works.
    assert_eq!(
        set_blob(&mut gc, ENCRYPTED, PERMANENT, &blobs[1].2),
        SUCCESS
    );
    assert_eq!(result(&mut gc, &be(&[INIT, 0])), FAIL);
    assert_eq!(result(&mut gc, &be(&[GET_TPMESTABLISHED])), BAD_ORDINAL);
    assert_eq!(result(&mut gc, &be(&[INIT, 0])), SUCCESS);
    // The right blobs still work after all that.
    let (r, mut gd) = set_datafd(&mut gc);
    assert_eq!(r, SUCCESS);
    assert_eq!(restore_blobs(&mut gc, &blobs), SUCCESS, "{}", good.log());
    let resp = ok(&mut gd, &nv_read_command(NV_INDEX, 0, 19), "NV_Read");
    assert_eq!(nv_read_response_data(&resp), b"travels with the VM");
}

// ---------------------------------------------------------------------------
// Shared storage: the lock handoff
// ---------------------------------------------------------------------------

#[test]
fn shared_storage_lock_handoff() {
    let shared = StateDir::new("handoff");
    let src = Vtpm::start(&shared, &["--migration", "release-lock-outgoing"]);
    let (mut sc, mut sd) = qemu_start(&src, 0);
    let (pcr, session) = prepare_source(&mut sd);
    // A second process on the same state cannot start while it is held...
    let dir = TempDir::new("handoff-refused");
    let out = Command::new(vtpm_bin())
        .args([
            "socket".into(),
            "--tpm2".into(),
            "--tpmstate".into(),
            format!("dir={}", shared.path().display()),
            "--ctrl".into(),
            format!("type=unixio,path={}", dir.join("c").display()),
            "--key".into(),
            format!("file={},format=binary", shared.key().display()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // ... but with --migration incoming it starts and waits.
    let dst = Vtpm::start(&shared, &["--migration", "release-lock-outgoing,incoming"]);
    let mut dc = dst.ctrl();
    let (r, mut dd) = set_datafd(&mut dc);
    assert_eq!(r, SUCCESS);
    // QEMU's TPM 2 probe needs no lock.
    assert_eq!(
        transact(&mut dd, &[0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x81]),
        NOT_RUNNING
    );
    // The source hands over: the lock goes with the savestate blob.
    let blobs = take_blobs(&mut sc);
    assert!(src.log().contains("released the lock"), "{}", src.log());
    restore_and_check(&dst, (&mut dc, &mut dd), &blobs, (&pcr, session));
    ok(
        &mut dd,
        &nv_write_command(NV_INDEX, 0, b"written by the dest"),
        "NV_Write",
    );
    // The source cannot take the lock back now...
    assert_eq!(result(&mut sc, &be(&[LOCK_STORAGE, 5])), FAIL);
    // ... and does not write the state file when it goes.
    let before = shared.state_bytes();
    assert_eq!(result(&mut sc, &be(&[SHUTDOWN])), SUCCESS);
    let mut src = src;
    assert!(src.wait_exit().success(), "{}", src.diagnostics());
    assert_eq!(
        shared.state_bytes(),
        before,
        "the source wrote the state file"
    );
    let resp = ok(&mut dd, &nv_read_command(NV_INDEX, 0, 19), "NV_Read");
    assert_eq!(nv_read_response_data(&resp), b"written by the dest");
}

#[test]
fn failed_migration_falls_back_to_the_source() {
    let shared = StateDir::new("fallback");
    let mut src = Vtpm::start(&shared, &["--migration", "release-lock-outgoing"]);
    let (mut sc, mut sd) = qemu_start(&src, 0);
    let (pcr, _) = prepare_source(&mut sd);
    take_blobs(&mut sc);
    // No destination took it: QEMU resumes the VM and asks for the lock
    // (LOCK_STORAGE, 300 retries).
    assert_eq!(result(&mut sc, &be(&[LOCK_STORAGE, 300])), SUCCESS);
    assert_eq!(pcr16_read(&mut sd, 0x000B), (1, pcr.clone()));
    // A second attempt; this time the next TPM command takes the lock.
    take_blobs(&mut sc);
    ok(
        &mut sd,
        &nv_write_command(NV_INDEX, 0, b"after the fallback!"),
        "NV_Write",
    );
    assert_eq!(result(&mut sc, &be(&[SHUTDOWN])), SUCCESS);
    assert!(src.wait_exit().success());
    // What was written after the fallback is in the state file.
    assert_nv_after_restart(&shared, b"after the fallback!");
}

#[test]
fn incoming_with_not_need_init_takes_the_lock_at_the_first_command() {
    let shared = StateDir::new("incoming-first");
    // Make a state with an NV index.
    {
        let v = Vtpm::start(&shared, &["--flags", "startup-clear"]);
        let mut c = v.ctrl();
        let (_, mut d) = set_datafd(&mut c);
        ok(
            &mut d,
            &nv_define_space_command(NV_INDEX, TPMA_NV_OWNER_RW, 32),
            "NV_DefineSpace",
        );
        ok(
            &mut d,
            &nv_write_command(NV_INDEX, 0, b"was there before!!!"),
            "NV_Write",
        );
        assert_eq!(result(&mut c, &be(&[SHUTDOWN])), SUCCESS);
    }
    let v = Vtpm::start(
        &shared,
        &["--migration", "incoming", "--flags", "startup-clear"],
    );
    let mut c = v.ctrl();
    let (_, mut d) = set_datafd(&mut c);
    let resp = ok(&mut d, &nv_read_command(NV_INDEX, 0, 19), "NV_Read");
    assert_eq!(nv_read_response_data(&resp), b"was there before!!!");
    assert!(v.log().contains("took the lock"), "{}", v.log());
}

// ---------------------------------------------------------------------------
// STORE_VOLATILE
// ---------------------------------------------------------------------------

#[test]
fn store_volatile_resumes_unless_deleted() {
    let state = StateDir::new("volatile");
    let digest = Hash::Sha256.digest(&[b"store volatile"]);
    let pcr = Hash::Sha256.extend(&[0; 32], &digest);
    // 1: extend, STORE_VOLATILE, then the process dies.
    {
        let mut v = Vtpm::start(&state, &[]);
        let (mut c, mut d) = qemu_start(&v, 0);
        ok(&mut d, &startup_clear_command(), "Startup");
        ok(&mut d, &pcr_extend_sha256(16, &digest), "PCR_Extend");
        assert_eq!(result(&mut c, &be(&[STORE_VOLATILE])), SUCCESS);
        v.kill();
    }
    // 2: INIT resumes: started, PCR 16 kept. Store it again, die again.
    {
        let mut v = Vtpm::start(&state, &[]);
        let (mut c, mut d) = qemu_start(&v, 0);
        assert_eq!(
            rc(&transact(&mut d, &startup_clear_command())),
            RC_INITIALIZE
        );
        assert_eq!(pcr16_read(&mut d, 0x000B), (1, pcr.clone()));
        assert!(
            v.log().contains("resumed from the stored volatile state"),
            "{}",
            v.log()
        );
        assert_eq!(result(&mut c, &be(&[STORE_VOLATILE])), SUCCESS);
        v.kill();
    }
    // 3: INIT with DELETE_VOLATILE: a plain power-on.
    {
        let v = Vtpm::start(&state, &[]);
        let (mut c, mut d) = qemu_start(&v, DELETE_VOLATILE);
        assert_eq!(rc(&transact(&mut d, &get_random(8))), RC_INITIALIZE);
        ok(&mut d, &startup_clear_command(), "Startup");
        assert_eq!(pcr16_read(&mut d, 0x000B), (1, vec![0; 32]));
        // And it is gone for good.
        assert_eq!(result(&mut c, &be(&[INIT, 0])), SUCCESS);
        assert_eq!(rc(&transact(&mut d, &get_random(8))), RC_INITIALIZE);
    }
}

// ---------------------------------------------------------------------------
// Command lines
// ---------------------------------------------------------------------------

fn vtpm(args: &[&str]) -> std::process::Output {
    Command::new(vtpm_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn check_capabilities(out: &std::process::Output, kind: &str) -> Vec<String> {
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let j = json::parse(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(j.get("type"), Some(&json::Json::Str(kind.into())), "{text}");
    assert!(
        matches!(j.get("version"), Some(json::Json::Str(_))),
        "{text}"
    );
    match j.get("features") {
        Some(json::Json::Arr(a)) => a
            .iter()
            .map(|f| match f {
                json::Json::Str(s) => s.clone(),
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("features: {other:?}"),
    }
}

#[test]
fn print_capabilities_is_json() {
    let features = check_capabilities(&vtpm(&["socket", "--print-capabilities"]), "swtpm");
    for f in [
        "tpm-2.0",
        "cmdarg-migration",
        "cmdarg-key-fd",
        "nvram-backend-dir",
        "nvram-backend-file",
        "flags-opt-startup",
        "ctrl-opt-terminate",
    ] {
        assert!(features.iter().any(|x| x == f), "{f} in {features:?}");
    }
    // Not honoured, so not listed: libvirt then refuses an encrypted TPM
    // (passphrase) with a clear message instead of vtpm failing later.
    for f in ["tpm-1.2", "cmdarg-pwd-fd", "cmdarg-seccomp"] {
        assert!(!features.iter().any(|x| x == f), "{f} in {features:?}");
    }
    let features = check_capabilities(&vtpm(&["setup", "--print-capabilities"]), "swtpm_setup");
    assert!(features.iter().any(|x| x == "tpm-2.0"));
    assert!(!features.iter().any(|x| x == "cmdarg-pwdfile-fd"));
}

#[test]
fn links_named_swtpm_and_swtpm_setup() {
    let dir = TempDir::new("links");
    for name in ["swtpm", "swtpm_setup", "vtpm-setup"] {
        std::os::unix::fs::symlink(vtpm_bin(), dir.join(name)).unwrap();
    }
    let run = |name: &str, args: &[&str]| {
        Command::new(dir.join(name))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    check_capabilities(&run("swtpm", &["socket", "--print-capabilities"]), "swtpm");
    check_capabilities(
        &run("swtpm_setup", &["--print-capabilities"]),
        "swtpm_setup",
    );
    check_capabilities(&run("vtpm-setup", &["--print-capabilities"]), "swtpm_setup");
    let out = run("swtpm", &["chardev", "--tpm2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("socket interface only"));
    // libvirt's swtpm_setup command line for a new TPM asks for EK
    // certificates: refused, naming the option.
    let state = StateDir::new("links-setup");
    let out = run(
        "swtpm_setup",
        &[
            "--tpm2",
            "--tpm-state",
            &state.path().display().to_string(),
            "--vmid",
            "vm:1234",
            "--logfile",
            &state.path().join("setup.log").display().to_string(),
            "--createek",
            "--create-ek-cert",
            "--create-platform-cert",
            "--lock-nvram",
            "--not-overwrite",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--createek: not supported"), "{stderr}");
    assert!(!state.state().exists());
}

#[test]
fn unsupported_options_are_refused_with_one_line() {
    let state = StateDir::new("refuse");
    let key = format!("file={},format=binary", state.key().display());
    let dir = format!("dir={}", state.path().display());
    let ctrl = format!("type=unixio,path={}", state.path().join("c.sock").display());
    let base = ["socket", "--tpm2", "--tpmstate", &dir, "--ctrl", &ctrl];
    for (extra, needle) in [
        (&["--key", key.as_str(), "--daemon"][..], "--daemon"),
        (&["--key", key.as_str(), "--runas", "tss"][..], "--runas"),
        (
            &["--key", key.as_str(), "--seccomp", "action=kill"][..],
            "--seccomp",
        ),
        (&["--key", key.as_str(), "--chroot", "/"][..], "--chroot"),
        (&["--key", "pwdfd=3,mode=aes-256-cbc"][..], "--key: pwdfd="),
        (&["--key", "pwdfile=/x"][..], "--key: pwdfile="),
        (
            &[
                "--key",
                key.as_str(),
                "--migration-key",
                "pwdfd=4,mode=aes-256-cbc",
            ][..],
            "--migration-key: pwdfd=",
        ),
        (&["--key", key.as_str(), "--nonsense"][..], "--nonsense"),
        (
            &["--key", key.as_str(), "--flags", "startup-deactivated"][..],
            "startup-deactivated",
        ),
        (
            &["--key", key.as_str(), "--tpmstate", "dir=/x,backup"][..],
            "backup",
        ),
        (
            &["--key", key.as_str(), "--ctrl", "type=unixio,fd=5"][..],
            "--ctrl: fd=",
        ),
        (&[][..], "--key is required"),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        let out = vtpm(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let out = vtpm(&["socket", "--tpmstate", &dir, "--ctrl", &ctrl, "--key", &key]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tpm2"));
    // A 128-bit key and a key file others can read.
    let short = state.write_key("short.key", &[1; 16], 0o600);
    let open = state.write_key("open.key", &[1; 32], 0o644);
    for (k, needle) in [(&short, "128-bit"), (&open, "chmod 600")] {
        let arg = format!("file={},format=binary", k.display());
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(&["--key", &arg]);
        let out = vtpm(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
    assert!(!state.state().exists(), "nothing was created");
}

#[test]
fn libvirt_style_command_line_and_key_formats() {
    // libvirt: --ctrl …,mode=0600 --tpmstate dir=…,mode=0600 --log
    // file=… --terminate --tpm2 (the key given the swtpm way, hex).
    let state = StateDir::new("libvirt");
    let hex_key = state.write_key(
        "hex.key",
        format!("0x{}\n", "3c".repeat(32)).as_bytes(),
        0o600,
    );
    let dir = TempDir::new("libvirt-run");
    let ctrl = dir.join("1-vm-swtpm.sock");
    let args: Vec<OsString> = [
        "socket".to_string(),
        "--ctrl".into(),
        format!("type=unixio,path={},mode=0600", ctrl.display()),
        "--tpmstate".into(),
        format!("dir={},mode=0600", state.path().display()),
        "--log".into(),
        format!("file={}", dir.join("log").display()),
        "--terminate".into(),
        "--tpm2".into(),
        "--key".into(),
        format!("file={},format=hex,mode=aes-256-cbc", hex_key.display()),
        "--migration".into(),
        "release-lock-outgoing".into(),
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    let mut v = Vtpm::spawn(dir, ctrl, &args);
    let (c, mut d) = qemu_start(&v, 0);
    ok(&mut d, &startup_clear_command(), "Startup");
    drop(d);
    // --terminate: QEMU went away.
    assert!(v.wait_exit().success(), "{}", v.diagnostics());
    drop(c);
    // The same state opens with the same key given raw: 0x3c × 32.
    let raw = state.write_key("raw.key", &[0x3c; 32], 0o600);
    let v = Vtpm::start_key(&state, &raw, &[]);
    let (_c, mut d) = qemu_start(&v, 0);
    ok(&mut d, &startup_clear_command(), "Startup");
}

#[test]
fn setup_creates_overwrites_and_allocates_banks() {
    let state = StateDir::new("setup");
    let dir = state.path().display().to_string();
    let key = state.key().display().to_string();
    let key_arg = format!("file={key},format=binary");
    let setup = |extra: &[&str]| {
        let mut args = vec!["setup", "--tpm2", "--tpmstate", &dir, "--key", &key_arg];
        args.extend_from_slice(extra);
        vtpm(&args)
    };
    let out = setup(&["--pcr-banks", "sha256", "--lock-nvram", "--vmid", "vm:1"]);
    assert!(out.status.success(), "{out:?}");
    let first = state.state_bytes();
    // Exists: fails, unless --not-overwrite (unchanged) or --overwrite.
    let out = setup(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert!(setup(&["--not-overwrite"]).status.success());
    assert_eq!(state.state_bytes(), first);
    // The new banks: SHA-256 only.
    {
        let v = Vtpm::start(&state, &["--flags", "startup-clear"]);
        let mut c = v.ctrl();
        let (_, mut d) = set_datafd(&mut c);
        assert_eq!(pcr16_read(&mut d, 0x000B), (1, vec![0; 32]));
        assert_eq!(pcr16_read(&mut d, 0x0004).0, 0, "no SHA-1 bank");
        ok(
            &mut d,
            &nv_define_space_command(NV_INDEX, TPMA_NV_OWNER_RW, 8),
            "NV_DefineSpace",
        );
        assert_eq!(result(&mut c, &be(&[SHUTDOWN])), SUCCESS);
    }
    // --overwrite: a new TPM (the NV index is gone, both default banks).
    let out = setup(&["--overwrite"]);
    assert!(out.status.success(), "{out:?}");
    let v = Vtpm::start(&state, &["--flags", "startup-clear"]);
    let mut c = v.ctrl();
    let (_, mut d) = set_datafd(&mut c);
    assert_eq!(pcr16_read(&mut d, 0x0004).0, 1, "SHA-1 bank back");
    assert_ne!(rc(&transact(&mut d, &nv_read_command(NV_INDEX, 0, 8))), 0);
    drop(v);
    // swtpm_setup's key options: --keyfile (hex) and --cipher.
    let hex_state = StateDir::new("setup-hex");
    let hex = hex_state.write_key("hex.key", "ab".repeat(32).as_bytes(), 0o600);
    let out = vtpm(&[
        "setup",
        "--tpm2",
        "--tpm-state",
        &hex_state.path().display().to_string(),
        "--keyfile",
        &hex.display().to_string(),
        "--cipher",
        "aes-256-cbc",
        "--logfile",
        &hex_state.path().join("setup.log").display().to_string(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(hex_state.state().exists());
    for (args, needle) in [
        (&["--cipher", "aes-128-cbc"][..], "128-bit"),
        (&["--pwdfile", "/p"][..], "--pwdfile: not supported"),
        (&["--create-ek-cert"][..], "--create-ek-cert: not supported"),
        (&["--runas", "tss"][..], "--runas: not supported"),
        (&["--pcr-banks", "sm3-256"][..], "sm3-256"),
    ] {
        let out = setup(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

// ---------------------------------------------------------------------------
// A small JSON parser, to check that the JSON vtpm prints parses.
// ---------------------------------------------------------------------------

mod json {
    #[derive(Debug, Clone, PartialEq)]
    pub enum Json {
        Null,
        Bool(bool),
        Num(f64),
        Str(String),
        Arr(Vec<Json>),
        Obj(Vec<(String, Json)>),
    }

    impl Json {
        pub fn get(&self, key: &str) -> Option<&Json> {
            match self {
                Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }
    }

    pub fn parse(s: &str) -> Result<Json, String> {
        let b = s.as_bytes();
        let mut i = 0;
        let v = value(b, &mut i)?;
        ws(b, &mut i);
        if i != b.len() {
            return Err(format!("trailing data at {i}"));
        }
        Ok(v)
    }

    fn ws(b: &[u8], i: &mut usize) {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    }

    fn expect(b: &[u8], i: &mut usize, c: u8) -> Result<(), String> {
        ws(b, i);
        if b.get(*i) == Some(&c) {
            *i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {i}", c as char))
        }
    }

    fn value(b: &[u8], i: &mut usize) -> Result<Json, String> {
        ws(b, i);
        match b.get(*i) {
            Some(b'{') => {
                *i += 1;
                let mut m = Vec::new();
                ws(b, i);
                if b.get(*i) == Some(&b'}') {
                    *i += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    ws(b, i);
                    let Json::Str(k) = string(b, i)? else {
                        unreachable!()
                    };
                    expect(b, i, b':')?;
                    m.push((k, value(b, i)?));
                    ws(b, i);
                    match b.get(*i) {
                        Some(b',') => *i += 1,
                        Some(b'}') => {
                            *i += 1;
                            return Ok(Json::Obj(m));
                        }
                        _ => return Err(format!("bad object at {i}")),
                    }
                }
            }
            Some(b'[') => {
                *i += 1;
                let mut a = Vec::new();
                ws(b, i);
                if b.get(*i) == Some(&b']') {
                    *i += 1;
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(value(b, i)?);
                    ws(b, i);
                    match b.get(*i) {
                        Some(b',') => *i += 1,
                        Some(b']') => {
                            *i += 1;
                            return Ok(Json::Arr(a));
                        }
                        _ => return Err(format!("bad array at {i}")),
                    }
                }
            }
            Some(b'"') => string(b, i),
            Some(b't') if b[*i..].starts_with(b"true") => {
                *i += 4;
                Ok(Json::Bool(true))
            }
            Some(b'f') if b[*i..].starts_with(b"false") => {
                *i += 5;
                Ok(Json::Bool(false))
            }
            Some(b'n') if b[*i..].starts_with(b"null") => {
                *i += 4;
                Ok(Json::Null)
            }
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let start = *i;
                *i += 1;
                while *i < b.len()
                    && matches!(b[*i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    *i += 1;
                }
                let text = std::str::from_utf8(&b[start..*i]).unwrap();
                // JSON forbids leading zeros ("00").
                let digits = text.trim_start_matches('-');
                if digits.len() > 1 && digits.starts_with('0') && !digits[1..].starts_with('.') {
                    return Err(format!("leading zero in {text}"));
                }
                text.parse()
                    .map(Json::Num)
                    .map_err(|e| format!("{text}: {e}"))
            }
            _ => Err(format!("unexpected input at {i}")),
        }
    }

    fn string(b: &[u8], i: &mut usize) -> Result<Json, String> {
        if b.get(*i) != Some(&b'"') {
            return Err(format!("expected a string at {i}"));
        }
        *i += 1;
        let mut s = String::new();
        while let Some(&c) = b.get(*i) {
            *i += 1;
            match c {
                b'"' => return Ok(Json::Str(s)),
                b'\\' => {
                    let e = *b.get(*i).ok_or("bad escape")?;
                    *i += 1;
                    s.push(match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        _ => return Err(format!("unsupported escape at {i}")),
                    });
                }
                c if c < 0x20 => return Err(format!("control character at {i}")),
                c => s.push(c as char),
            }
        }
        Err("unterminated string".into())
    }
}
