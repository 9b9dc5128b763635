//! The vhost-user backend: a virtio TPM device with one virtqueue.
//!
//! # Resets
//!
//! A VM reset is not a TPM power loss. When the guest reboots, the VMM
//! resets the virtio device: QEMU stops the vring (`GET_VRING_BASE`) and,
//! once the guest's driver set the device up again, starts it with a fresh
//! ring whose avail index begins at 0 (`SET_VRING_BASE 0`). A physical
//! platform reset drives the TPM's reset line, so here the TPM gets
//! `_TPM_Init` ([`Tpm::tpm_init`]): volatile state (PCRs, sessions, loaded
//! objects) is gone, NV is kept, and the guest's TPM2_Startup succeeds as on
//! a physical reboot.
//!
//! The signal is given on the first event after the vring (re)started —
//! before any request of the restarted ring runs — when both
//! * the restarted ring begins at avail index 0 (a ring the guest set up
//!   anew), and
//! * the TPM is started (TPM2_Startup ran since the last `_TPM_Init`; on a
//!   TPM that is not, `_TPM_Init` would change nothing the guest can see).
//!
//! A VMM that only pauses the VM (QEMU `stop`/`cont`, snapshots, the source
//! side of a migration) also stops and restarts the vring, but resumes it at
//! the avail index where it stopped, so the TPM keeps its state, as it must:
//! a guest whose TPM was reset under it gets TPM_RC_INITIALIZE for every
//! command until its next reboot. (The one ambiguous case is a paused ring
//! whose 16-bit avail index has wrapped to exactly 0; then the TPM is
//! reset.) The same rule covers a new connection: a VMM reconnecting to a
//! running VM resumes its ring where it was, a new VM starts at 0.
//!
//! # Migration
//!
//! The backend offers `VHOST_USER_PROTOCOL_F_DEVICE_STATE`: a VMM that
//! migrates vhost-user device state gets the TPM's permanent and volatile
//! state on SAVE and puts it into the destination's TPM on LOAD; see
//! [`crate::migration`] for the transfer, the blob and the migration key.
//!
//! Power: the caller powers the engine on before serving
//! ([`crate::serve`] does); disconnecting keeps the [`Tpm`] as it is, and
//! the caller decides when to power it off (which commits NV).

use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex};

use vhost::vhost_user::message::{
    VhostTransferStateDirection, VhostTransferStatePhase, VhostUserProtocolFeatures,
    VhostUserVirtioFeatures,
};
use vhost_user_backend::{VhostUserBackendMut, VringRwLock, VringT};
use virtio_bindings::bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::bindings::virtio_ring::{
    VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC,
};
use virtio_queue::QueueOwnedT;
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{
    EventConsumer, EventFlag, EventNotifier, new_event_consumer_and_notifier,
};
use vtpm_engine::Tpm;
use vtpm_store::MasterKey;

use crate::migration::StateTransfer;
use crate::tpm::process_chain;

/// The virtio device id of a TPM (the one crosvm uses).
pub const VIRTIO_ID_TPM: u32 = 62;
/// Number of virtqueues: one, for commands and their responses.
pub const NUM_QUEUES: usize = 1;
/// Largest queue size the backend accepts.
pub const MAX_QUEUE_SIZE: usize = 256;

/// Guest memory as the backend sees it.
pub type GuestMemory = GuestMemoryAtomic<GuestMemoryMmap>;

/// Why the backend could not be built or could not handle an event.
#[derive(Debug, thiserror::Error)]
pub enum VhuTpmError {
    /// The exit event could not be created.
    #[error("the backend's exit event could not be created: {0}")]
    ExitEvent(io::Error),
    /// An epoll event other than "readable" arrived.
    #[error("the backend got an unexpected epoll event set {0:#x}")]
    UnexpectedEventSet(u32),
    /// An event for a queue this device does not have.
    #[error("the backend got an event for queue {0}, and it has only queue 0")]
    UnknownQueue(u16),
    /// The available ring cannot be read or is inconsistent.
    #[error("the available ring cannot be used: {0}")]
    AvailRing(virtio_queue::Error),
    /// The used ring's notification state could not be accessed.
    #[error("the virtqueue's notification state could not be accessed: {0}")]
    Notification(virtio_queue::Error),
    /// The guest could not be notified.
    #[error("the guest could not be notified of used buffers: {0}")]
    Signal(io::Error),
}

impl From<VhuTpmError> for io::Error {
    fn from(e: VhuTpmError) -> Self {
        io::Error::other(e)
    }
}

/// The virtio TPM's vhost-user backend, one per connection; the [`Tpm`]
/// it serves outlives it.
pub struct VhostUserTpmBackend {
    tpm: Arc<Mutex<Tpm>>,
    mem: GuestMemory,
    event_idx: bool,
    /// The vring was (re)started and no event was handled since: the next
    /// event decides whether the TPM sees a platform reset.
    ring_restarted: bool,
    exit_consumer: EventConsumer,
    exit_notifier: EventNotifier,
    /// Seals the state sent, opens the state received (see
    /// [`crate::migration`]).
    migration_key: Option<MasterKey>,
    /// The device state transfer of this connection.
    transfer: StateTransfer,
}

impl std::fmt::Debug for VhostUserTpmBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhostUserTpmBackend")
            .field("event_idx", &self.event_idx)
            .field("ring_restarted", &self.ring_restarted)
            .field("migration_key", &self.migration_key)
            .finish_non_exhaustive()
    }
}

impl VhostUserTpmBackend {
    /// A backend serving `tpm` over guest memory `mem` (which the daemon
    /// updates on SET_MEM_TABLE / ADD_MEM_REG).
    pub fn new(tpm: Arc<Mutex<Tpm>>, mem: GuestMemory) -> Result<Self, VhuTpmError> {
        let (exit_consumer, exit_notifier) =
            new_event_consumer_and_notifier(EventFlag::NONBLOCK).map_err(VhuTpmError::ExitEvent)?;
        Ok(VhostUserTpmBackend {
            tpm,
            mem,
            event_idx: false,
            ring_restarted: true,
            exit_consumer,
            exit_notifier,
            migration_key: None,
            transfer: StateTransfer::new(),
        })
    }

    /// Sets the key that seals the TPM state this backend sends on
    /// migration and opens the state it receives; without one (the
    /// default) the state goes in the clear and sealed state is refused.
    /// See [`crate::migration`].
    #[must_use]
    pub fn with_migration_key(mut self, key: Option<MasterKey>) -> Self {
        self.migration_key = key;
        self
    }

    /// Signals `_TPM_Init` if the vring just restarted on a fresh ring; see
    /// the module documentation.
    fn platform_reset_if_restarted(&mut self, vring: &VringRwLock) {
        if !std::mem::take(&mut self.ring_restarted) {
            return;
        }
        let next_avail = vring.queue_next_avail();
        let Ok(mut tpm) = self.tpm.lock() else {
            log::error!("virtio-tpm: the TPM's lock is poisoned; no platform reset signalled");
            return;
        };
        if next_avail == 0 && tpm.is_started() {
            log::info!(
                "virtio-tpm: the virtqueue restarted on a fresh ring: platform reset (_TPM_Init)"
            );
            tpm.tpm_init();
        } else if next_avail != 0 {
            log::info!(
                "virtio-tpm: the virtqueue resumed at avail index {next_avail}: TPM state kept"
            );
        }
    }

    /// Serves every available chain, returning each to the used ring.
    fn process_queue(&mut self, vring: &VringRwLock) -> Result<(), VhuTpmError> {
        loop {
            let mem = self.mem.memory();
            // One chain at a time: nothing is allocated per avail entry, and
            // the iterator checks the guest's avail index each time.
            let chain = match vring.get_mut().get_queue_mut().iter(mem) {
                Ok(mut chains) => chains.next(),
                // Not ready, or an avail index more than a queue ahead: the
                // ring is broken until the driver resets it.
                Err(e) => return Err(VhuTpmError::AvailRing(e)),
            };
            let Some(chain) = chain else {
                return Ok(());
            };
            let head = chain.head_index();
            let len = process_chain(&self.tpm, chain);
            if let Err(e) = vring.add_used(head, len) {
                log::error!(
                    "virtio-tpm: request {head} could not be returned to the used ring: {e}"
                );
            }
            let notify = if self.event_idx {
                vring
                    .needs_notification()
                    .map_err(VhuTpmError::Notification)?
            } else {
                true
            };
            if notify {
                vring.signal_used_queue().map_err(VhuTpmError::Signal)?;
            }
        }
    }
}

impl VhostUserBackendMut for VhostUserTpmBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        NUM_QUEUES
    }

    fn max_queue_size(&self) -> usize {
        MAX_QUEUE_SIZE
    }

    fn features(&self) -> u64 {
        (1 << VIRTIO_F_VERSION_1)
            | (1 << VIRTIO_RING_F_INDIRECT_DESC)
            | (1 << VIRTIO_RING_F_EVENT_IDX)
            | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        // Not STATUS: vhost 0.18 has no handler for it, and QEMU drops the
        // connection when SET_STATUS fails. No CONFIG: the device has no
        // config space. No MQ: one queue. DEVICE_STATE: the TPM's state
        // migrates through SET_DEVICE_STATE_FD / CHECK_DEVICE_STATE.
        VhostUserProtocolFeatures::CONFIGURE_MEM_SLOTS
            | VhostUserProtocolFeatures::REPLY_ACK
            | VhostUserProtocolFeatures::DEVICE_STATE
    }

    fn set_device_state_fd(
        &mut self,
        direction: VhostTransferStateDirection,
        phase: VhostTransferStatePhase,
        file: File,
    ) -> io::Result<Option<File>> {
        if phase != VhostTransferStatePhase::STOPPED {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "state transfer is supported only while the device is stopped",
            ));
        }
        log::info!("virtio-tpm: device state transfer requested: {direction:?}");
        self.transfer
            .start(direction, &self.tpm, self.migration_key.as_ref(), file)?;
        // The transfer goes through the VMM's fd.
        Ok(None)
    }

    fn check_device_state(&self) -> io::Result<()> {
        self.transfer.check()
    }

    fn reset_device(&mut self) {
        self.ring_restarted = true;
    }

    fn set_event_idx(&mut self, enabled: bool) {
        self.event_idx = enabled;
    }

    fn update_memory(&mut self, mem: GuestMemory) -> io::Result<()> {
        self.mem = mem;
        Ok(())
    }

    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        match (
            self.exit_consumer.try_clone(),
            self.exit_notifier.try_clone(),
        ) {
            (Ok(c), Ok(n)) => Some((c, n)),
            (Err(e), _) | (_, Err(e)) => {
                log::error!("virtio-tpm: the exit event could not be cloned: {e}");
                None
            }
        }
    }

    fn stop_vring(&mut self, queue_index: u32) -> io::Result<()> {
        log::debug!("virtio-tpm: virtqueue {queue_index} stopped");
        self.ring_restarted = true;
        Ok(())
    }

    fn handle_event(
        &mut self,
        device_event: u16,
        evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> io::Result<()> {
        if evset != EventSet::IN {
            let e = VhuTpmError::UnexpectedEventSet(evset.bits());
            log::error!("virtio-tpm: {e}");
            return Err(e.into());
        }
        let vring = match vrings.get(usize::from(device_event)) {
            Some(v) if usize::from(device_event) < NUM_QUEUES => v,
            _ => {
                let e = VhuTpmError::UnknownQueue(device_event);
                log::error!("virtio-tpm: {e}");
                return Err(e.into());
            }
        };
        self.platform_reset_if_restarted(vring);
        // A ring the backend cannot signal or whose notification state is
        // out of guest memory is the guest's fault: log it and keep the
        // worker alive (an error here would end it, and with it the device).
        if let Err(e) = self.drain(vring) {
            log::error!("virtio-tpm: {e}");
        }
        Ok(())
    }
}

impl VhostUserTpmBackend {
    /// Serves the queue until it is empty, with EVENT_IDX handling.
    fn drain(&mut self, vring: &VringRwLock) -> Result<(), VhuTpmError> {
        if self.event_idx {
            // Handle everything, then re-enable notifications; if the guest
            // added more meanwhile, go round again (as vhost-device does).
            loop {
                vring
                    .disable_notification()
                    .map_err(VhuTpmError::Notification)?;
                self.process_queue(vring)?;
                if !vring
                    .enable_notification()
                    .map_err(VhuTpmError::Notification)?
                {
                    break;
                }
            }
        } else {
            self.process_queue(vring)?;
        }
        Ok(())
    }
}
