//! What the end-to-end tests share: the guest's side of a split ring in
//! shared memory, and the VMM's side of the vhost-user protocol.
#![allow(dead_code)]

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::Ordering;
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

pub const QSIZE: u16 = 16;
pub const MEM_SIZE: usize = 0x10_0000;
pub const DESC: u64 = 0x0;
pub const AVAIL: u64 = 0x1000;
pub const USED: u64 = 0x2000;
pub const CMD: u64 = 0x10000;
pub const RSP: u64 = 0x11000;

pub const STARTUP: [u8; 12] = [0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0];
pub const GET_RANDOM_8: [u8; 12] = [0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 0x08];
pub const SUCCESS_10: [u8; 10] = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0];
pub const RC_INITIALIZE: [u8; 10] = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x00];
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// The guest's side: memory shared with the backend, a split ring in it,
/// and the kick and call eventfds.
pub struct Guest {
    pub mem: GuestMemoryMmap,
    pub region: VhostUserMemoryRegionInfo,
    pub kick: EventFd,
    pub call: EventFd,
    /// The driver's avail index (the next entry it fills).
    pub avail_idx: u16,
    /// Used entries the driver has consumed.
    pub used_seen: u16,
}

impl Guest {
    pub fn new() -> Self {
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
    pub fn reset_ring(&mut self) {
        self.mem
            .write_slice(&[0u8; 0x3000], GuestAddress(DESC))
            .unwrap();
        self.avail_idx = 0;
        self.used_seen = 0;
    }

    pub fn hva(&self, gpa: u64) -> u64 {
        self.region.userspace_addr + gpa
    }

    /// Sends one command (split over two readable descriptors) with a
    /// response buffer split over two writable ones; returns the response.
    pub fn transact(&mut self, cmd: &[u8]) -> Vec<u8> {
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

pub fn assert_random_8(rsp: &[u8]) {
    assert_eq!(rsp.len(), 20, "{rsp:02x?}");
    assert_eq!(&rsp[..12], &[0x80, 1, 0, 0, 0, 20, 0, 0, 0, 0, 0, 8]);
}

pub fn wanted_features() -> u64 {
    (1 << VIRTIO_F_VERSION_1)
        | (1 << VIRTIO_RING_F_INDIRECT_DESC)
        | (1 << VIRTIO_RING_F_EVENT_IDX)
        | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
}

pub fn connect(path: &Path) -> Frontend {
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
pub fn negotiate(fe: &mut Frontend, guest: &Guest, add_mem_reg: bool) {
    fe.set_owner().unwrap();
    let features = fe.get_features().unwrap();
    assert_eq!(features, wanted_features());
    fe.set_features(wanted_features()).unwrap();
    let pf = fe.get_protocol_features().unwrap();
    assert_eq!(
        pf,
        VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS
            | VhostUserProtocolFeatures::REPLY_ACK
            | VhostUserProtocolFeatures::DEVICE_STATE
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
pub fn start_vring(fe: &mut Frontend, guest: &Guest, base: u16) {
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
