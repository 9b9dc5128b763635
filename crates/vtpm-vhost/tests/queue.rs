//! The backend against descriptor chains built the way rust-vmm tests do:
//! `GuestMemoryMmap` + `virtio_queue::mock::MockSplitQueue`, driven through
//! the backend's real `handle_event` on a real `VringRwLock`. Each case
//! checks the bytes in guest memory and the used ring's entries.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::{Arc, Mutex};

use vhost_user_backend::{VhostUserBackendMut, VringRwLock, VringT};
use virtio_bindings::bindings::virtio_ring::{
    VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};
use virtio_queue::desc::RawDescriptor;
use virtio_queue::desc::split::Descriptor as SplitDescriptor;
use virtio_queue::mock::MockSplitQueue;
use vm_memory::{Bytes, GuestAddress, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vtpm_engine::{MemoryPlatform, Tpm};
use vtpm_vhost::VhostUserTpmBackend;

const QSIZE: u16 = 16;
const MEM_SIZE: u64 = 0x10_0000;
const STARTUP: [u8; 12] = [0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0];
const GET_RANDOM_8: [u8; 12] = [0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 0x08];
const SUCCESS_10: [u8; 10] = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0];
const RC_SIZE: [u8; 10] = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0x95];
const RC_FAILURE: [u8; 10] = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x01];
const RC_INITIALIZE: [u8; 10] = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x00];
const FILL: u8 = 0xa5;

/// A device-readable (`R`) or device-writable (`W`) buffer.
#[derive(Clone, Copy)]
enum B {
    R(u64, u32),
    W(u64, u32),
}

struct Harness {
    mem: &'static GuestMemoryMmap,
    q: MockSplitQueue<'static, GuestMemoryMmap>,
    vring: VringRwLock,
    backend: VhostUserTpmBackend,
    tpm: Arc<Mutex<Tpm>>,
    next_desc: u16,
}

impl Harness {
    fn new() -> Self {
        let mem: &'static GuestMemoryMmap = Box::leak(Box::new(
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_SIZE as usize)]).unwrap(),
        ));
        let q = MockSplitQueue::create(mem, GuestAddress(0), QSIZE);
        let atomic = GuestMemoryAtomic::new(mem.clone());
        let vring = VringRwLock::new(atomic.clone(), QSIZE).unwrap();
        vring.set_queue_size(QSIZE);
        vring
            .set_queue_info(q.desc_table_addr().0, q.avail_addr().0, q.used_addr().0)
            .unwrap();
        vring.set_queue_ready(true);
        vring.set_enabled(true);
        let mut tpm = Tpm::new(Box::new(MemoryPlatform::new())).unwrap();
        tpm.power_on();
        let tpm = Arc::new(Mutex::new(tpm));
        let mut backend = VhostUserTpmBackend::new(Arc::clone(&tpm), atomic).unwrap();
        backend.set_event_idx(false);
        Harness {
            mem,
            q,
            vring,
            backend,
            tpm,
            next_desc: 0,
        }
    }

    fn store_desc(&self, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        self.q
            .desc_table()
            .store(
                index,
                RawDescriptor::from(SplitDescriptor::new(addr, len, flags, next)),
            )
            .unwrap();
    }

    fn alloc_desc(&mut self) -> u16 {
        let i = self.next_desc;
        self.next_desc = (self.next_desc + 1) % QSIZE;
        i
    }

    /// Puts `head` on the available ring.
    fn offer(&self, head: u16) {
        let idx = self.q.avail().idx().load();
        self.q
            .avail()
            .ring()
            .ref_at(usize::from(idx % QSIZE))
            .unwrap()
            .store(head);
        self.q.avail().idx().store(idx.wrapping_add(1));
    }

    /// Writes a chain of `bufs` into the descriptor table and offers it.
    fn chain(&mut self, bufs: &[B]) -> u16 {
        let indices: Vec<u16> = bufs.iter().map(|_| self.alloc_desc()).collect();
        for (i, b) in bufs.iter().enumerate() {
            let (addr, len, mut flags) = match *b {
                B::R(a, l) => (a, l, 0),
                B::W(a, l) => (a, l, VRING_DESC_F_WRITE as u16),
            };
            let next = if i + 1 < bufs.len() {
                flags |= VRING_DESC_F_NEXT as u16;
                indices[i + 1]
            } else {
                0
            };
            self.store_desc(indices[i], addr, len, flags, next);
        }
        self.offer(indices[0]);
        indices[0]
    }

    fn write(&self, addr: u64, bytes: &[u8]) {
        self.mem.write_slice(bytes, GuestAddress(addr)).unwrap();
    }

    fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        self.mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
        v
    }

    fn fill(&self, addr: u64, len: usize) {
        self.write(addr, &vec![FILL; len]);
    }

    /// Kicks the device: runs the backend's event handler.
    fn kick(&mut self) {
        self.backend
            .handle_event(0, EventSet::IN, std::slice::from_ref(&self.vring), 0)
            .unwrap();
    }

    fn used_idx(&self) -> u16 {
        self.q.used().idx().load()
    }

    /// (id, len) of used ring entry `i`.
    fn used(&self, i: u16) -> (u32, u32) {
        let e = self
            .q
            .used()
            .ring()
            .ref_at(usize::from(i % QSIZE))
            .unwrap()
            .load();
        (e.id(), e.len())
    }

    /// Sends `cmd` with a 4096-byte response buffer; returns the response.
    fn transact(&mut self, cmd: &[u8]) -> Vec<u8> {
        self.write(0x4000, cmd);
        let head = self.chain(&[B::R(0x4000, cmd.len() as u32), B::W(0x6000, 4096)]);
        let before = self.used_idx();
        self.kick();
        assert_eq!(self.used_idx(), before.wrapping_add(1));
        let (id, len) = self.used(before);
        assert_eq!(id, u32::from(head));
        self.read(0x6000, len as usize)
    }

    fn startup(&mut self) {
        assert_eq!(self.transact(&STARTUP), SUCCESS_10);
    }
}

fn assert_random_8(rsp: &[u8]) {
    assert_eq!(rsp.len(), 20, "{rsp:02x?}");
    assert_eq!(&rsp[..12], &[0x80, 1, 0, 0, 0, 20, 0, 0, 0, 0, 0, 8]);
}

#[test]
fn startup_then_get_random() {
    let mut h = Harness::new();
    h.write(0x1000, &STARTUP);
    h.write(0x1100, &GET_RANDOM_8);
    h.fill(0x2000, 64);
    h.fill(0x3000, 64);
    let a = h.chain(&[B::R(0x1000, 12), B::W(0x2000, 64)]);
    let b = h.chain(&[B::R(0x1100, 12), B::W(0x3000, 64)]);
    h.kick();
    assert_eq!(h.used_idx(), 2);
    assert_eq!(h.used(0), (u32::from(a), 10));
    assert_eq!(h.used(1), (u32::from(b), 20));
    assert_eq!(h.read(0x2000, 10), SUCCESS_10);
    assert_eq!(h.read(0x200a, 1), [FILL]);
    assert_random_8(&h.read(0x3000, 20));
    assert_eq!(h.read(0x3014, 1), [FILL]);
}

#[test]
fn command_split_over_readable_descriptors() {
    let mut h = Harness::new();
    h.startup();
    h.write(0x1000, &GET_RANDOM_8[..1]);
    h.write(0x1200, &GET_RANDOM_8[1..7]);
    h.write(0x1400, &GET_RANDOM_8[7..]);
    let head = h.chain(&[
        B::R(0x1000, 1),
        B::R(0x1200, 6),
        B::R(0x1400, 5),
        B::W(0x2000, 32),
    ]);
    h.kick();
    assert_eq!(h.used(1), (u32::from(head), 20));
    assert_random_8(&h.read(0x2000, 20));
}

#[test]
fn response_split_over_writable_descriptors() {
    let mut h = Harness::new();
    h.startup();
    h.write(0x1000, &GET_RANDOM_8);
    for a in [0x2000, 0x2100, 0x2200] {
        h.fill(a, 16);
    }
    let head = h.chain(&[
        B::R(0x1000, 12),
        B::W(0x2000, 3),
        B::W(0x2100, 7),
        B::W(0x2200, 16),
    ]);
    h.kick();
    assert_eq!(h.used(1), (u32::from(head), 20));
    let mut rsp = h.read(0x2000, 3);
    rsp.extend(h.read(0x2100, 7));
    rsp.extend(h.read(0x2200, 10));
    assert_random_8(&rsp);
    assert_eq!(h.read(0x2003, 1), [FILL]);
    assert_eq!(h.read(0x220a, 6), [FILL; 6]);
}

#[test]
fn command_over_4096_bytes_gets_rc_size() {
    let mut h = Harness::new();
    // A 4097-byte command whose header claims that size: the device rejects
    // it by length before the engine sees it.
    let mut cmd = vec![0u8; 4097];
    cmd[..10].copy_from_slice(&[0x80, 1, 0, 0, 0x10, 0x01, 0, 0, 1, 0x7b]);
    h.write(0x1000, &cmd[..4000]);
    h.write(0x8000, &cmd[4000..]);
    h.fill(0x3000, 64);
    let head = h.chain(&[B::R(0x1000, 4000), B::R(0x8000, 97), B::W(0x3000, 64)]);
    h.kick();
    assert_eq!(h.used(0), (u32::from(head), 10));
    assert_eq!(h.read(0x3000, 10), RC_SIZE);
    assert_eq!(h.read(0x300a, 1), [FILL]);
    // Exactly 4096 bytes is let through (the engine answers it).
    let head = h.chain(&[B::R(0x1000, 4000), B::R(0x8000, 96), B::W(0x3000, 64)]);
    h.kick();
    let (id, len) = h.used(1);
    assert_eq!(id, u32::from(head));
    assert_eq!(len, 10);
    assert_ne!(h.read(0x3000, 10), RC_SIZE);
}

#[test]
fn huge_descriptor_lengths_are_not_trusted() {
    let mut h = Harness::new();
    // 2 GiB "command" (more than guest memory): rejected by length, nothing
    // allocated or read.
    h.fill(0x3000, 16);
    let head = h.chain(&[B::R(0x1000, 0x8000_0000), B::W(0x3000, 16)]);
    h.kick();
    assert_eq!(h.used(0), (u32::from(head), 10));
    assert_eq!(h.read(0x3000, 10), RC_SIZE);
    // Over 2^32 bytes in all: virtio-queue ends the chain early (virtio
    // forbids such chains), so it is malformed: used length 0.
    h.fill(0x3000, 16);
    let head = h.chain(&[
        B::R(0x1000, u32::MAX),
        B::R(0x1000, u32::MAX),
        B::W(0x3000, 16),
    ]);
    h.kick();
    assert_eq!(h.used(1), (u32::from(head), 0));
    assert_eq!(h.read(0x3000, 16), [FILL; 16]);
}

#[test]
fn short_command_gets_rc_size() {
    let mut h = Harness::new();
    h.write(0x1000, &STARTUP[..9]);
    let head = h.chain(&[B::R(0x1000, 9), B::W(0x3000, 64)]);
    h.kick();
    assert_eq!(h.used(0), (u32::from(head), 10));
    assert_eq!(h.read(0x3000, 10), RC_SIZE);
}

#[test]
fn no_readable_part_gets_rc_size() {
    let mut h = Harness::new();
    let head = h.chain(&[B::W(0x3000, 64)]);
    h.kick();
    assert_eq!(h.used(0), (u32::from(head), 10));
    assert_eq!(h.read(0x3000, 10), RC_SIZE);
}

#[test]
fn no_writable_part_gets_used_len_0_and_is_not_run() {
    let mut h = Harness::new();
    h.write(0x1000, &STARTUP);
    let head = h.chain(&[B::R(0x1000, 12)]);
    h.kick();
    assert_eq!(h.used_idx(), 1);
    assert_eq!(h.used(0), (u32::from(head), 0));
    // The Startup was not executed: a second one succeeds.
    h.startup();
}

#[test]
fn writable_part_too_small() {
    let mut h = Harness::new();
    h.startup();
    // 12 writable bytes: the 20-byte response does not fit, an error header does.
    h.write(0x1000, &GET_RANDOM_8);
    h.fill(0x3000, 16);
    let head = h.chain(&[B::R(0x1000, 12), B::W(0x3000, 5), B::W(0x3008, 7)]);
    h.kick();
    assert_eq!(h.used(1), (u32::from(head), 10));
    let mut rsp = h.read(0x3000, 5);
    rsp.extend(h.read(0x3008, 5));
    assert_eq!(rsp, RC_FAILURE);
    assert_eq!(h.read(0x3005, 3), [FILL; 3]);
    assert_eq!(h.read(0x300d, 2), [FILL; 2]);
    // 9 writable bytes: nothing fits, nothing is written.
    h.fill(0x3000, 16);
    let head = h.chain(&[B::R(0x1000, 12), B::W(0x3000, 9)]);
    h.kick();
    assert_eq!(h.used(2), (u32::from(head), 0));
    assert_eq!(h.read(0x3000, 16), [FILL; 16]);
}

#[test]
fn readable_descriptor_outside_guest_memory() {
    let mut h = Harness::new();
    // Straddling the end of guest memory, and wholly beyond it.
    for (i, addr) in [(0u16, MEM_SIZE - 4), (1, 0xffff_ffff_0000)] {
        h.fill(0x3000, 16);
        let head = h.chain(&[B::R(addr, 12), B::W(0x3000, 16)]);
        h.kick();
        assert_eq!(h.used(i), (u32::from(head), 10));
        assert_eq!(h.read(0x3000, 10), RC_FAILURE);
        assert_eq!(h.read(0x300a, 6), [FILL; 6]);
    }
    // The TPM was not touched: it still takes Startup.
    h.startup();
}

#[test]
fn writable_descriptor_outside_guest_memory() {
    let mut h = Harness::new();
    h.write(0x1000, &STARTUP);
    h.fill(0x3000, 16);
    let head = h.chain(&[B::R(0x1000, 12), B::W(0x3000, 16), B::W(MEM_SIZE - 2, 16)]);
    h.kick();
    assert_eq!(h.used(0), (u32::from(head), 0));
    assert_eq!(h.read(0x3000, 16), [FILL; 16]);
    h.startup();
}

#[test]
fn writable_before_readable_gets_used_len_0() {
    let mut h = Harness::new();
    h.write(0x1000, &STARTUP);
    h.fill(0x3000, 16);
    let head = h.chain(&[B::W(0x3000, 16), B::R(0x1000, 12)]);
    h.kick();
    assert_eq!(h.used_idx(), 1);
    assert_eq!(h.used(0), (u32::from(head), 0));
    assert_eq!(h.read(0x3000, 16), [FILL; 16]);
    h.startup();
}

#[test]
fn indirect_descriptors() {
    let mut h = Harness::new();
    h.startup();
    h.write(0x1000, &GET_RANDOM_8[..4]);
    h.write(0x1100, &GET_RANDOM_8[4..]);
    let table = 0x9000u64;
    let descs = [
        SplitDescriptor::new(0x1000, 4, VRING_DESC_F_NEXT as u16, 1),
        SplitDescriptor::new(0x1100, 8, VRING_DESC_F_NEXT as u16, 2),
        SplitDescriptor::new(
            0x2000,
            8,
            (VRING_DESC_F_WRITE | VRING_DESC_F_NEXT) as u16,
            3,
        ),
        SplitDescriptor::new(0x2100, 64, VRING_DESC_F_WRITE as u16, 0),
    ];
    for (i, d) in descs.iter().enumerate() {
        h.mem
            .write_obj(RawDescriptor::from(*d), GuestAddress(table + 16 * i as u64))
            .unwrap();
    }
    let head = h.alloc_desc();
    h.store_desc(head, table, 16 * 4, VRING_DESC_F_INDIRECT as u16, 0);
    h.offer(head);
    h.kick();
    assert_eq!(h.used(1), (u32::from(head), 20));
    let mut rsp = h.read(0x2000, 8);
    rsp.extend(h.read(0x2100, 12));
    assert_random_8(&rsp);

    // An indirect table that names another indirect table is refused.
    h.mem
        .write_obj(
            RawDescriptor::from(SplitDescriptor::new(
                table,
                16,
                VRING_DESC_F_INDIRECT as u16,
                0,
            )),
            GuestAddress(0xa000),
        )
        .unwrap();
    let head = h.alloc_desc();
    h.store_desc(head, 0xa000, 16, VRING_DESC_F_INDIRECT as u16, 0);
    h.offer(head);
    h.kick();
    assert_eq!(h.used(2), (u32::from(head), 0));
}

#[test]
fn looping_and_broken_chains_are_returned_and_the_queue_goes_on() {
    let mut h = Harness::new();
    h.write(0x1000, &STARTUP);
    // 0 → 1 → 0 → …
    let a = h.alloc_desc();
    let b = h.alloc_desc();
    h.store_desc(a, 0x1000, 12, VRING_DESC_F_NEXT as u16, b);
    h.store_desc(b, 0x1000, 12, VRING_DESC_F_NEXT as u16, a);
    h.offer(a);
    // A next index beyond the queue.
    let c = h.alloc_desc();
    h.store_desc(c, 0x1000, 12, VRING_DESC_F_NEXT as u16, QSIZE + 5);
    h.offer(c);
    // A head index beyond the queue: it cannot be returned (the used ring
    // refuses an id that is not a descriptor), but the queue goes on.
    h.offer(QSIZE + 1);
    // A well-formed chain after them.
    let d = h.chain(&[B::R(0x1000, 12), B::W(0x2000, 64)]);
    h.fill(0x3000, 64);
    h.kick();
    assert_eq!(h.used_idx(), 3);
    assert_eq!(h.used(0), (u32::from(a), 0));
    assert_eq!(h.used(1), (u32::from(c), 0));
    assert_eq!(h.used(2), (u32::from(d), 10));
    assert_eq!(h.read(0x2000, 10), SUCCESS_10);
    assert_eq!(h.read(0x3000, 64), [FILL; 64]);
}

#[test]
fn chain_as_long_as_the_queue_is_accepted() {
    let mut h = Harness::new();
    let mut bufs: Vec<B> = (0..12u64).map(|i| B::R(0x1000 + i, 1)).collect();
    bufs.extend((0..4u64).map(|i| B::W(0x2000 + 16 * i, 16)));
    assert_eq!(bufs.len(), usize::from(QSIZE));
    h.write(0x1000, &STARTUP);
    let head = h.chain(&bufs);
    h.kick();
    assert_eq!(h.used(0), (u32::from(head), 10));
    assert_eq!(h.read(0x2000, 10), SUCCESS_10);
}

#[test]
fn event_idx_processing() {
    let mut h = Harness::new();
    h.backend.set_event_idx(true);
    h.vring.set_queue_event_idx(true);
    h.startup();
    assert_random_8(&h.transact(&GET_RANDOM_8));
    // With EVENT_IDX the device publishes avail_event (used ring's last
    // field) = the next avail index it expects.
    let avail_event_addr = h.q.used_addr().0 + 4 + 8 * u64::from(QSIZE);
    let avail_event: u16 = h.mem.read_obj(GuestAddress(avail_event_addr)).unwrap();
    assert_eq!(avail_event, 2);
}

#[test]
fn restart_on_fresh_ring_is_a_platform_reset() {
    let mut h = Harness::new();
    h.startup();
    assert_random_8(&h.transact(&GET_RANDOM_8));

    // Pause/resume: the ring resumes where it stopped: the TPM keeps its state.
    h.backend.stop_vring(0).unwrap();
    assert_random_8(&h.transact(&GET_RANDOM_8));

    // Guest reboot: the driver sets the ring up anew (avail and used index
    // 0); the TPM sees _TPM_Init.
    h.backend.stop_vring(0).unwrap();
    h.q.avail().idx().store(0);
    h.q.used().idx().store(0);
    h.vring.set_queue_next_avail(0);
    h.vring.set_queue_next_used(0);
    assert_eq!(h.transact(&GET_RANDOM_8), RC_INITIALIZE);
    assert!(!h.tpm.lock().unwrap().is_started());
    h.startup();
    assert_random_8(&h.transact(&GET_RANDOM_8));
}
