//! Migration of the TPM's state between two daemons, each with its own TPM,
//! driven by two `Frontend`s as a VMM drives the source and the destination
//! of a migration: SET_DEVICE_STATE_FD (SAVE) on the stopped source, its
//! pipe read to EOF, CHECK_DEVICE_STATE; SET_DEVICE_STATE_FD (LOAD) on the
//! destination, the blob written and the pipe closed, CHECK_DEVICE_STATE;
//! then the destination's vring starts where the source's stopped.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use common::*;
use vhost::VhostBackend;
use vhost::vhost_user::message::{VhostTransferStateDirection, VhostTransferStatePhase};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vm_memory::{Bytes, GuestAddress};
use vtpm_engine::{MemoryPlatform, Tpm};
use vtpm_store::MasterKey;
use vtpm_vhost::migration::{STATE_MAGIC, is_sealed};
use vtpm_vhost::{Error, ExitHandle, VhostUserTpmConfig, serve};

/// TPM_RS_PW with an empty password: handle, nonce (empty), attributes
/// (continueSession), hmac (empty).
const PW_SESSION: [u8; 9] = [0x40, 0, 0, 0x09, 0, 0, 0x01, 0, 0];

/// A command with tag TPM_ST_SESSIONS, one password session, after the
/// handles.
fn with_pw_session(cc: u32, handles: &[u32], params: &[u8]) -> Vec<u8> {
    let mut c = vec![0x80, 0x02, 0, 0, 0, 0];
    c.extend_from_slice(&cc.to_be_bytes());
    for h in handles {
        c.extend_from_slice(&h.to_be_bytes());
    }
    c.extend_from_slice(&(PW_SESSION.len() as u32).to_be_bytes());
    c.extend_from_slice(&PW_SESSION);
    c.extend_from_slice(params);
    let len = (c.len() as u32).to_be_bytes();
    c[2..6].copy_from_slice(&len);
    c
}

/// TPM2_PCR_Extend(PCR 16, SHA-256 digest 0x01..=0x20).
fn pcr_extend_16() -> Vec<u8> {
    let mut params = vec![0, 0, 0, 1, 0x00, 0x0b];
    params.extend(1u8..=32);
    with_pw_session(0x182, &[16], &params)
}

/// TPM2_PCR_Read(SHA-256 PCR 16).
const PCR_READ_16: [u8; 20] = [
    0x80, 0x01, 0, 0, 0, 20, 0, 0, 0x01, 0x7e, 0, 0, 0, 1, 0x00, 0x0b, 3, 0, 0, 1,
];
/// TPM2_HashSequenceStart(auth empty, SHA-256).
const HASH_SEQUENCE_START: [u8; 14] = [0x80, 0x01, 0, 0, 0, 14, 0, 0, 0x01, 0x86, 0, 0, 0x00, 0x0b];
/// TPM2_GetCapability(TPM_CAP_HANDLES, TRANSIENT_FIRST, 16).
const GET_TRANSIENT_HANDLES: [u8; 22] = [
    0x80, 0x01, 0, 0, 0, 22, 0, 0, 0x01, 0x7a, 0, 0, 0, 1, 0x80, 0, 0, 0, 0, 0, 0, 16,
];
/// SHA-256("abc").
const SHA256_ABC: [u8; 32] = [
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
];

fn rc(rsp: &[u8]) -> u32 {
    u32::from_be_bytes(rsp[6..10].try_into().unwrap())
}

/// The SHA-256 PCR 16 value in a PCR_Read response.
fn pcr16(rsp: &[u8]) -> [u8; 32] {
    assert_eq!(rc(rsp), 0, "{rsp:02x?}");
    // header, update counter, selection (10), digest count, digest size
    assert_eq!(rsp.len(), 10 + 4 + 10 + 4 + 2 + 32);
    rsp[30..62].try_into().unwrap()
}

/// One daemon: its own TPM, serving on its own socket.
struct Daemon {
    tpm: Arc<Mutex<Tpm>>,
    socket: PathBuf,
    exit: ExitHandle,
    server: JoinHandle<Result<(), Error>>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start(key: Option<MasterKey>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("vtpm.sock");
        let tpm = Arc::new(Mutex::new(
            Tpm::new(Box::new(MemoryPlatform::new())).unwrap(),
        ));
        let exit = ExitHandle::new().unwrap();
        let mut config = VhostUserTpmConfig::new(&socket);
        if let Some(key) = key {
            config = config.with_migration_key(key);
        }
        let server = {
            let tpm = Arc::clone(&tpm);
            let exit = exit.clone();
            std::thread::spawn(move || serve(&config, tpm, &exit))
        };
        Daemon {
            tpm,
            socket,
            exit,
            server,
            _dir: dir,
        }
    }

    /// Connects and negotiates, vring not started.
    fn connect(&self, guest: &Guest) -> Frontend {
        let mut fe = connect(&self.socket);
        negotiate(&mut fe, guest, false);
        fe
    }

    fn stop(self, fe: Frontend) {
        drop(fe);
        self.exit.request_exit();
        self.server.join().unwrap().unwrap();
    }
}

/// A source with a started TPM, PCR 16 extended and a hash sequence that
/// has hashed "abc"; its vring stopped. Returns the frontend, the avail
/// index where the ring stopped, PCR 16, the transient handles response
/// and the sequence handle.
fn prepared_source(src: &Daemon) -> (Frontend, Guest, u16, [u8; 32], Vec<u8>, u32) {
    let mut guest = Guest::new();
    let mut fe = src.connect(&guest);
    start_vring(&mut fe, &guest, 0);
    assert_eq!(guest.transact(&STARTUP), SUCCESS_10);
    let rsp = guest.transact(&pcr_extend_16());
    assert_eq!(rc(&rsp), 0, "PCR_Extend: {rsp:02x?}");
    let rsp = guest.transact(&HASH_SEQUENCE_START);
    assert_eq!(rc(&rsp), 0, "HashSequenceStart: {rsp:02x?}");
    let seq = u32::from_be_bytes(rsp[10..14].try_into().unwrap());
    let rsp = guest.transact(&with_pw_session(0x15c, &[seq], &[0, 3, b'a', b'b', b'c']));
    assert_eq!(rc(&rsp), 0, "SequenceUpdate: {rsp:02x?}");
    let pcr = pcr16(&guest.transact(&PCR_READ_16));
    assert_ne!(pcr, [0; 32]);
    let handles = guest.transact(&GET_TRANSIENT_HANDLES);
    assert_eq!(rc(&handles), 0, "GetCapability: {handles:02x?}");
    assert!(
        handles.windows(4).any(|w| w == seq.to_be_bytes()),
        "{handles:02x?}"
    );
    // The VMM stops the device before transferring its state.
    let base = fe.get_vring_base(0).unwrap() as u16;
    assert_eq!(base, 6);
    (fe, guest, base, pcr, handles, seq)
}

/// SAVE: the blob read from the pipe to EOF, then CHECK_DEVICE_STATE.
fn save(fe: &Frontend) -> Vec<u8> {
    let (r, w) = std::io::pipe().unwrap();
    let returned = fe
        .set_device_state_fd(
            VhostTransferStateDirection::SAVE,
            VhostTransferStatePhase::STOPPED,
            OwnedFd::from(w),
        )
        .unwrap();
    assert!(returned.is_none(), "the back-end uses the VMM's fd");
    let mut blob = Vec::new();
    File::from(OwnedFd::from(r)).read_to_end(&mut blob).unwrap();
    fe.check_device_state().unwrap();
    blob
}

/// LOAD: the blob written to the pipe, the pipe closed, then
/// CHECK_DEVICE_STATE's answer.
fn load(fe: &Frontend, blob: &[u8]) -> bool {
    let (r, w) = std::io::pipe().unwrap();
    let returned = fe
        .set_device_state_fd(
            VhostTransferStateDirection::LOAD,
            VhostTransferStatePhase::STOPPED,
            OwnedFd::from(r),
        )
        .unwrap();
    assert!(returned.is_none());
    let mut w = File::from(OwnedFd::from(w));
    // The back-end may stop reading early (a blob over the limit): EPIPE.
    let _ = w.write_all(blob);
    drop(w);
    fe.check_device_state().is_ok()
}

/// The destination's guest (whose memory `fe` registered): the migrated
/// ring resumes at `base`.
fn resume_on(fe: &mut Frontend, guest: &mut Guest, base: u16) {
    guest.avail_idx = base;
    guest.used_seen = base;
    guest.mem.write_obj(base, GuestAddress(USED + 2)).unwrap();
    start_vring(fe, guest, base);
}

#[test]
fn sealed_migration_carries_pcrs_sessions_and_started_state() {
    let key = MasterKey::from_bytes([0x5a; 32]);
    let src = Daemon::start(Some(key.clone()));
    let dst = Daemon::start(Some(key));
    let (src_fe, _src_guest, base, pcr, handles, seq) = prepared_source(&src);

    let blob = save(&src_fe);
    assert!(blob.starts_with(&STATE_MAGIC));
    assert_eq!(is_sealed(&blob), Some(true));
    // Checked twice: the same answer.
    src_fe.check_device_state().unwrap();

    let mut dst_guest = Guest::new();
    let mut dst_fe = dst.connect(&dst_guest);
    // Nothing transferred yet on this connection.
    assert!(dst_fe.check_device_state().is_err());
    assert!(!dst.tpm.lock().unwrap().is_started());
    assert!(load(&dst_fe, &blob));
    assert!(dst.tpm.lock().unwrap().is_started());

    resume_on(&mut dst_fe, &mut dst_guest, base);
    // Started: a second Startup is refused.
    assert_eq!(dst_guest.transact(&STARTUP), RC_INITIALIZE);
    assert_eq!(pcr16(&dst_guest.transact(&PCR_READ_16)), pcr);
    assert_eq!(dst_guest.transact(&GET_TRANSIENT_HANDLES), handles);
    // The hash sequence goes on where the source left it.
    let mut complete = vec![0, 0];
    complete.extend_from_slice(&0x4000_0007u32.to_be_bytes());
    let rsp = dst_guest.transact(&with_pw_session(0x13e, &[seq], &complete));
    assert_eq!(rc(&rsp), 0, "SequenceComplete: {rsp:02x?}");
    assert_eq!(&rsp[14..16], &[0, 32]);
    assert_eq!(&rsp[16..48], &SHA256_ABC);
    // And the TPM keeps working: extend again, on both sides the same.
    let rsp = dst_guest.transact(&pcr_extend_16());
    assert_eq!(rc(&rsp), 0);
    assert_ne!(pcr16(&dst_guest.transact(&PCR_READ_16)), pcr);

    src.stop(src_fe);
    dst.stop(dst_fe);
}

#[test]
fn wrong_key_leaves_the_destination_alone() {
    let src = Daemon::start(Some(MasterKey::from_bytes([1; 32])));
    let dst = Daemon::start(Some(MasterKey::from_bytes([2; 32])));
    let (src_fe, _g, base, _pcr, _h, _seq) = prepared_source(&src);
    let blob = save(&src_fe);

    let mut dst_guest = Guest::new();
    let mut dst_fe = dst.connect(&dst_guest);
    assert!(!load(&dst_fe, &blob));
    assert!(!dst.tpm.lock().unwrap().is_started());
    // A destination without a key refuses it as well (it cannot open it).
    let plain_dst = Daemon::start(None);
    let plain_fe = plain_dst.connect(&Guest::new());
    assert!(!load(&plain_fe, &blob));
    assert!(!plain_dst.tpm.lock().unwrap().is_started());
    plain_dst.stop(plain_fe);

    // The destination is as it was: not started, PCR 16 zero.
    resume_on(&mut dst_fe, &mut dst_guest, base);
    assert_eq!(dst_guest.transact(&STARTUP), SUCCESS_10);
    assert_eq!(pcr16(&dst_guest.transact(&PCR_READ_16)), [0; 32]);

    src.stop(src_fe);
    dst.stop(dst_fe);
}

#[test]
fn damaged_or_unsealed_blobs_are_refused() {
    // Without keys: the state travels in the clear.
    let src = Daemon::start(None);
    let dst = Daemon::start(None);
    let (src_fe, _g, base, pcr, _h, _seq) = prepared_source(&src);
    let blob = save(&src_fe);
    assert_eq!(is_sealed(&blob), Some(false));

    let mut dst_guest = Guest::new();
    let mut dst_fe = dst.connect(&dst_guest);
    // Truncated, one byte changed, garbage, empty, too large: refused,
    // and the TPM untouched.
    assert!(!load(&dst_fe, &blob[..blob.len() - 1]));
    assert!(!load(&dst_fe, &blob[..blob.len() / 2]));
    let mut flipped = blob.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    assert!(!load(&dst_fe, &flipped));
    assert!(!load(&dst_fe, b"not a TPM state at all"));
    assert!(!load(&dst_fe, b""));
    assert!(!load(&dst_fe, &vec![0u8; 17 * 1024 * 1024]));
    assert!(!dst.tpm.lock().unwrap().is_started());

    // A keyed destination refuses the plain blob.
    let keyed = Daemon::start(Some(MasterKey::from_bytes([3; 32])));
    let keyed_fe = keyed.connect(&Guest::new());
    assert!(!load(&keyed_fe, &blob));
    assert!(!keyed.tpm.lock().unwrap().is_started());
    keyed.stop(keyed_fe);

    // The intact blob still loads after all that.
    assert!(load(&dst_fe, &blob));
    resume_on(&mut dst_fe, &mut dst_guest, base);
    assert_eq!(dst_guest.transact(&STARTUP), RC_INITIALIZE);
    assert_eq!(pcr16(&dst_guest.transact(&PCR_READ_16)), pcr);

    src.stop(src_fe);
    dst.stop(dst_fe);
}
