//! End to end: the real daemon ([`vtpm_vhost::serve`]) on a Unix socket,
//! driven by `vhost::vhost_user::Frontend` (the VMM's side of the protocol)
//! with a shared file as guest memory, as a VMM would: feature negotiation,
//! memory table, vring setup, kick and call eventfds; then vring stop and
//! restart (guest reboot vs. VM pause), disconnect and reconnect, exit.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use virtio_bindings::bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::bindings::virtio_ring::{
    VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};
use vtpm_engine::{MemoryPlatform, Tpm};
use vtpm_vhost::{ExitHandle, VhostUserTpmConfig, serve};

const QSIZE: u16 = 16;
const MEM_SIZE: usize = 0x10_0000;
const DESC: u64 = 0x0;
const AVAIL: u64 = 0x1000;
const USED: u64 = 0x2000;
const CMD: u64 = 0x10000;
const RSP: u64 = 0x11000;

const STARTUP: [u8; 12] = [0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0];
const GET_RANDOM_8: [u8; 12] = [0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 0x08];
const SUCCESS_10: [u8; 10] = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0];
const RC_INITIALIZE: [u8; 10] = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x00];
const TIMEOUT: Duration = Duration::from_secs(5);

/// The guest's side: memory shared with the backend, a split ring in it,
/// and the kick and call eventfds.
struct Guest {
    mem: GuestMemoryMmap,
    region: VhostUserMemoryRegionInfo,
    kick: EventFd,
    call: EventFd,
    /// The driver's avail index (the next entry it fills).
    avail_idx: u16,
    /// Used entries the driver has consumed.
    used_seen: u16,
}

impl Guest {
    fn new() -> Self {
        let file = tempfile::tempfile().unwrap();
        file.set_len(MEM_SIZE as u64).unwrap();
        let mem = GuestMemoryMmap::from_ranges_with_files(&[(
            GuestAddress(0),
            MEM_SIZE,
            Some(FileOffset::new(file, 0)),
        )])
        .unwrap();
        let region =
            VhostUserMemoryRegionInfo::from_guest_region(mem.find_region(GuestAddress(0)).unwrap())
                .unwrap();
        Guest {
            mem,
            region,
            kick: EventFd::new(EFD_NONBLOCK).unwrap(),
            call: EventFd::new(EFD_NONBLOCK).unwrap(),
            avail_idx: 0,
            used_seen: 0,
        }
    }

    /// A driver resetting its virtqueue: rings zeroed, indices back to 0.
    fn reset_ring(&mut self) {
        self.mem
            .write_slice(&[0u8; 0x3000], GuestAddress(DESC))
            .unwrap();
        self.avail_idx = 0;
        self.used_seen = 0;
    }

    fn hva(&self, gpa: u64) -> u64 {
        self.region.userspace_addr + gpa
    }

    /// Sends one command (split over two readable descriptors) with a
    /// response buffer split over two writable ones; returns the response.
    fn transact(&mut self, cmd: &[u8]) -> Vec<u8> {
        let head = (self.avail_idx % (QSIZE / 4)) * 4;
        let (c1, c2) = cmd.split_at(5);
        self.mem.write_slice(c1, GuestAddress(CMD)).unwrap();
        self.mem.write_slice(c2, GuestAddress(CMD + 0x800)).unwrap();
        let descs: [(u64, u32, u16); 4] = [
            (CMD, c1.len() as u32, 0),
            (CMD + 0x800, c2.len() as u32, 0),
            (RSP, 6, VRING_DESC_F_WRITE as u16),
            (RSP + 0x800, 4090, VRING_DESC_F_WRITE as u16),
        ];
        for (i, (addr, len, flags)) in descs.iter().enumerate() {
            let index = u64::from(head) + i as u64;
            let (flags, next) = if i + 1 < descs.len() {
                (flags | VRING_DESC_F_NEXT as u16, index as u16 + 1)
            } else {
                (*flags, 0)
            };
            let at = DESC + 16 * index;
            self.mem.write_obj(*addr, GuestAddress(at)).unwrap();
            self.mem.write_obj(*len, GuestAddress(at + 8)).unwrap();
            self.mem.write_obj(flags, GuestAddress(at + 12)).unwrap();
            self.mem.write_obj(next, GuestAddress(at + 14)).unwrap();
        }
        // avail ring entry, used_event (EVENT_IDX: notify once the used index
        // passes the entries seen so far), then publish the avail index.
        let slot = AVAIL + 4 + 2 * u64::from(self.avail_idx % QSIZE);
        self.mem.write_obj(head, GuestAddress(slot)).unwrap();
        self.mem
            .write_obj(
                self.used_seen,
                GuestAddress(AVAIL + 4 + 2 * u64::from(QSIZE)),
            )
            .unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.mem
            .store(self.avail_idx, GuestAddress(AVAIL + 2), Ordering::Release)
            .unwrap();
        self.kick.write(1).unwrap();

        // Wait for the call eventfd, then read the used ring.
        let epoll = Epoll::new().unwrap();
        epoll
            .ctl(
                ControlOperation::Add,
                self.call.as_raw_fd(),
                EpollEvent::new(EventSet::IN, 0),
            )
            .unwrap();
        let mut events = [EpollEvent::default(); 1];
        let n = epoll
            .wait(i32::try_from(TIMEOUT.as_millis()).unwrap(), &mut events)
            .unwrap();
        assert_eq!(n, 1, "no used-buffer notification within {TIMEOUT:?}");
        self.call.read().unwrap();
        let used_idx: u16 = self
            .mem
            .load(GuestAddress(USED + 2), Ordering::Acquire)
            .unwrap();
        assert_eq!(used_idx, self.used_seen.wrapping_add(1));
        let elem = USED + 4 + 8 * u64::from(self.used_seen % QSIZE);
        let id: u32 = self.mem.read_obj(GuestAddress(elem)).unwrap();
        let len: u32 = self.mem.read_obj(GuestAddress(elem + 4)).unwrap();
        self.used_seen = used_idx;
        assert_eq!(id, u32::from(head));
        let len = len as usize;
        let mut rsp = vec![0u8; len];
        let first = len.min(6);
        self.mem
            .read_slice(&mut rsp[..first], GuestAddress(RSP))
            .unwrap();
        self.mem
            .read_slice(&mut rsp[first..], GuestAddress(RSP + 0x800))
            .unwrap();
        rsp
    }
}

fn assert_random_8(rsp: &[u8]) {
    assert_eq!(rsp.len(), 20, "{rsp:02x?}");
    assert_eq!(&rsp[..12], &[0x80, 1, 0, 0, 0, 20, 0, 0, 0, 0, 0, 8]);
}

fn wanted_features() -> u64 {
    (1 << VIRTIO_F_VERSION_1)
        | (1 << VIRTIO_RING_F_INDIRECT_DESC)
        | (1 << VIRTIO_RING_F_EVENT_IDX)
        | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
}

fn connect(path: &Path) -> Frontend {
    let deadline = Instant::now() + TIMEOUT;
    while !path.exists() {
        assert!(Instant::now() < deadline, "the socket never appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    Frontend::connect(path, 1).unwrap()
}

/// What a VMM does before the guest driver runs: features, protocol
/// features, memory (SET_MEM_TABLE, or ADD_MEM_REG with
/// CONFIGURE_MEM_SLOTS).
fn negotiate(fe: &mut Frontend, guest: &Guest, add_mem_reg: bool) {
    fe.set_owner().unwrap();
    let features = fe.get_features().unwrap();
    assert_eq!(features, wanted_features());
    fe.set_features(wanted_features()).unwrap();
    let pf = fe.get_protocol_features().unwrap();
    assert_eq!(
        pf,
        VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS | VhostUserProtocolFeatures::REPLY_ACK
    );
    fe.set_protocol_features(pf).unwrap();
    assert_eq!(fe.get_queue_num().unwrap_or(1), 1);
    if add_mem_reg {
        assert!(fe.get_max_mem_slots().unwrap() >= 1);
        fe.add_mem_region(&guest.region).unwrap();
    } else {
        fe.set_mem_table(&[guest.region]).unwrap();
    }
}

/// Starts vring 0 at avail index `base`.
fn start_vring(fe: &mut Frontend, guest: &Guest, base: u16) {
    fe.set_vring_num(0, QSIZE).unwrap();
    fe.set_vring_addr(
        0,
        &VringConfigData {
            queue_max_size: QSIZE,
            queue_size: QSIZE,
            flags: 0,
            desc_table_addr: guest.hva(DESC),
            used_ring_addr: guest.hva(USED),
            avail_ring_addr: guest.hva(AVAIL),
            log_addr: None,
        },
    )
    .unwrap();
    fe.set_vring_base(0, base).unwrap();
    fe.set_vring_call(0, &guest.call).unwrap();
    fe.set_vring_kick(0, &guest.kick).unwrap();
    fe.set_vring_enable(0, true).unwrap();
}

#[test]
fn serve_reset_reconnect_exit() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("vtpm.sock");
    let mut tpm = Tpm::new(Box::new(MemoryPlatform::new())).unwrap();
    tpm.power_on();
    let tpm = Arc::new(Mutex::new(tpm));
    let exit = ExitHandle::new().unwrap();
    let server = {
        let config = VhostUserTpmConfig::new(&socket);
        let tpm = Arc::clone(&tpm);
        let exit = exit.clone();
        std::thread::spawn(move || serve(&config, tpm, &exit))
    };

    // Connection 1: boot.
    let mut guest = Guest::new();
    let mut fe = connect(&socket);
    negotiate(&mut fe, &guest, false);
    start_vring(&mut fe, &guest, 0);
    assert_eq!(guest.transact(&STARTUP), SUCCESS_10);
    assert_random_8(&guest.transact(&GET_RANDOM_8));

    // VM pause/resume: the VMM stops the vring and restarts it where it
    // stopped. No reset: the TPM is still started.
    let base = fe.get_vring_base(0).unwrap();
    assert_eq!(base, 2);
    start_vring(&mut fe, &guest, base as u16);
    assert_random_8(&guest.transact(&GET_RANDOM_8));

    // Guest reboot: the VMM stops the vring; the rebooted guest's driver
    // sets up a fresh ring and the VMM restarts it at 0. The TPM sees
    // _TPM_Init: commands other than Startup get TPM_RC_INITIALIZE.
    assert_eq!(fe.get_vring_base(0).unwrap(), 3);
    guest.reset_ring();
    start_vring(&mut fe, &guest, 0);
    assert_eq!(guest.transact(&GET_RANDOM_8), RC_INITIALIZE);
    assert_eq!(guest.transact(&GET_RANDOM_8), RC_INITIALIZE);
    assert_eq!(guest.transact(&STARTUP), SUCCESS_10);
    assert_random_8(&guest.transact(&GET_RANDOM_8));
    assert!(tpm.lock().unwrap().is_started());

    // Disconnect (the VMM went away) and reconnect: the same VM goes on, so
    // the VMM restarts the ring where it was. The TPM state survived: it is
    // still started, so a second Startup answers TPM_RC_INITIALIZE (a TPM
    // that had been reset would accept it).
    drop(fe);
    let mut fe = connect(&socket);
    negotiate(&mut fe, &guest, true);
    start_vring(&mut fe, &guest, guest.avail_idx);
    assert_eq!(guest.transact(&STARTUP), RC_INITIALIZE);
    assert_random_8(&guest.transact(&GET_RANDOM_8));

    // A new VM on the same TPM (new connection, fresh ring at 0): reset.
    drop(fe);
    let mut guest = Guest::new();
    let mut fe = connect(&socket);
    negotiate(&mut fe, &guest, false);
    start_vring(&mut fe, &guest, 0);
    assert_eq!(guest.transact(&GET_RANDOM_8), RC_INITIALIZE);
    assert_eq!(guest.transact(&STARTUP), SUCCESS_10);

    // Exit while a VMM is connected: serve closes the connection, ends its
    // threads, removes the socket and returns.
    exit.request_exit();
    let deadline = Instant::now() + TIMEOUT;
    while !server.is_finished() {
        assert!(
            Instant::now() < deadline,
            "serve did not return after the exit request"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    server.join().unwrap().unwrap();
    assert!(!socket.exists());
    assert!(fe.get_features().is_err());
    // The TPM outlives the server; the caller powers it off.
    assert!(tpm.lock().unwrap().is_powered());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn exit_while_idle() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("vtpm.sock");
    let tpm = Arc::new(Mutex::new(
        Tpm::new(Box::new(MemoryPlatform::new())).unwrap(),
    ));
    let exit = ExitHandle::new().unwrap();
    let server = {
        let config = VhostUserTpmConfig::new(&socket);
        let tpm = Arc::clone(&tpm);
        let exit = exit.clone();
        std::thread::spawn(move || serve(&config, tpm, &exit))
    };
    let deadline = Instant::now() + TIMEOUT;
    while !socket.exists() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    // serve powered the TPM on.
    assert!(tpm.lock().unwrap().is_powered());
    exit.request_exit();
    while !server.is_finished() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    server.join().unwrap().unwrap();
    assert!(!socket.exists());
}
