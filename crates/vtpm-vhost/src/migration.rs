//! The TPM's state over vhost-user for migration
//! (`VHOST_USER_PROTOCOL_F_DEVICE_STATE`, protocol feature bit 19).
//!
//! # The protocol
//!
//! A VMM migrating a vhost-user device's internal state stops the device
//! (every vring) and sends `SET_DEVICE_STATE_FD(direction, phase STOPPED,
//! fd)`. The back-end answers at once; only then does the state flow
//! through the fd (usually a pipe): on SAVE the back-end writes it and
//! closes its end, and the VMM reads to EOF; on LOAD the VMM writes it and
//! closes its end, and the back-end reads to EOF. Last, `CHECK_DEVICE_STATE`
//! asks whether the transfer — and on LOAD, applying the state — succeeded.
//! The VMM touches the pipe only after the reply, so writing or reading it
//! inside the request handler could block forever (a full pipe nobody reads
//! yet): the I/O runs on a thread of its own, and `CHECK_DEVICE_STATE` waits
//! for that thread's result (at most [`CHECK_TIMEOUT`]).
//!
//! SAVE takes the snapshot (`permanent_state` and `volatile_state`, under the
//! TPM's lock) when `SET_DEVICE_STATE_FD` arrives, and seals it there, so an
//! error in either is the reply's error; only the write is left to the
//! thread. LOAD reads at most [`MAX_STATE_LEN`] bytes, checks and opens the
//! blob, checks both states on a scratch TPM, and only then replaces the
//! shared TPM's state; a blob that fails anywhere leaves the TPM as it was,
//! is logged, and makes `CHECK_DEVICE_STATE` fail.
//!
//! # The blob
//!
//! ```text
//! header (16 bytes): magic "VTPMVUDS" | version u16 (1) | flags u16 | payload length u32
//! payload
//! SHA-256(header || payload) (32 bytes)
//! ```
//!
//! Integers are big-endian. Flag bit 0 ([`FLAG_SEALED`]): the payload is
//! sealed with [`vtpm_store::seal`] (the state file format: AES-256-XTS and
//! HMAC-SHA-256 under keys derived from the migration key, with a fresh
//! random salt for every blob). No other flag is defined; a blob with one is
//! refused. The payload, once unsealed:
//!
//! ```text
//! magic "VTPMMIGR" | permanent length u32 | permanent state | volatile length u32 | volatile state
//! ```
//!
//! with nothing after it. The digest only catches a blob damaged or cut
//! short in transit; the seal is what authenticates.
//!
//! # Keys
//!
//! The state holds the TPM's secrets (hierarchy proofs and seeds, auth
//! values, session keys). With a migration key
//! ([`crate::VhostUserTpmConfig::with_migration_key`]) the back-end seals
//! what it sends and accepts only blobs sealed with the same key: accepting
//! a plain blob would let whoever can write the migration stream choose the
//! TPM's PCRs, seeds and auth values. Without a key it sends the state in
//! the clear, with a warning in the log, and refuses sealed blobs (it cannot
//! open them). Both sides of a migration need the same setting. The sealed
//! payload starts with its own magic, so neither a state file nor a
//! migration blob sealed with the same key passes for the other; a key of
//! its own for migration is still the better practice.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use vhost::vhost_user::message::VhostTransferStateDirection;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vtpm_engine::{EngineError, MemoryPlatform, Tpm};
use vtpm_store::MasterKey;
use vtpm_store::format::SALT_LEN;
use zeroize::Zeroizing;

/// Magic of a device-state blob.
pub const STATE_MAGIC: [u8; 8] = *b"VTPMVUDS";
/// Version of the blob format this crate writes and reads.
pub const STATE_VERSION: u16 = 1;
/// Flag: the payload is sealed with the migration key.
pub const FLAG_SEALED: u16 = 1;
/// Length of the blob's header.
pub const HEADER_LEN: usize = 16;
/// Length of the SHA-256 digest at the blob's end.
pub const DIGEST_LEN: usize = 32;
/// The largest blob sent or accepted (16 MiB); reading stops beyond it.
pub const MAX_STATE_LEN: usize = 16 * 1024 * 1024;
/// How long `CHECK_DEVICE_STATE` waits for the transfer thread.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
/// Magic of the (unsealed) payload.
const PAYLOAD_MAGIC: [u8; 8] = *b"VTPMMIGR";

/// Why a device state could not be saved, transferred or loaded.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The blob is larger than [`MAX_STATE_LEN`].
    #[error("the device state is larger than {MAX_STATE_LEN} bytes")]
    TooLarge,
    /// The magic is wrong.
    #[error("not a vtpm device state (wrong magic)")]
    Magic,
    /// A format version this crate does not read.
    #[error("device state version {0} is not supported (this vtpm reads version {STATE_VERSION})")]
    Version(u16),
    /// Flags this crate does not know.
    #[error("the device state has unknown flags {0:#06x}")]
    Flags(u16),
    /// Fewer bytes than the header says there are.
    #[error("the device state is truncated")]
    Truncated,
    /// More bytes than the header says there are.
    #[error("the device state has {0} bytes after its end")]
    TrailingData(usize),
    /// The digest does not match.
    #[error("the device state is damaged (its digest does not match)")]
    Digest,
    /// A sealed blob and no key to open it.
    #[error("the device state is sealed and this back-end has no migration key")]
    NoKey,
    /// A plain blob sent to a back-end that has a key.
    #[error("the device state is not sealed and this back-end has a migration key: refused")]
    NotSealed,
    /// Sealing or unsealing failed (a wrong key, a damaged blob).
    #[error("the device state could not be sealed or unsealed: {0}")]
    Seal(#[from] vtpm_store::FormatError),
    /// No entropy for the salt.
    #[error("the operating system refused entropy for the seal's salt: {0}")]
    Entropy(String),
    /// The payload is not two length-prefixed states.
    #[error("the device state's payload is malformed")]
    Payload,
    /// The scratch TPM that checks a state could not be created.
    #[error("the state could not be checked: {0}")]
    Scratch(EngineError),
    /// The permanent state is not usable.
    #[error("the permanent state is not usable: {0}")]
    Permanent(EngineError),
    /// The volatile state is not usable.
    #[error("the volatile state is not usable: {0}")]
    Volatile(EngineError),
    /// The TPM's lock is poisoned.
    #[error("the TPM's lock is poisoned")]
    Poisoned,
    /// Reading or writing the transfer fd failed.
    #[error("the device state could not be {0} the transfer fd: {1}")]
    Io(&'static str, io::Error),
}

/// The two states a blob carries. Wiped when dropped.
pub struct DeviceState {
    /// [`Tpm::permanent_state`].
    pub permanent: Zeroizing<Vec<u8>>,
    /// [`Tpm::volatile_state`].
    pub volatile: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for DeviceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceState")
            .field("permanent_len", &self.permanent.len())
            .field("volatile_len", &self.volatile.len())
            .finish()
    }
}

fn u32_len(n: usize) -> Result<u32, MigrationError> {
    u32::try_from(n).map_err(|_| MigrationError::TooLarge)
}

/// The blob for `permanent` and `volatile`: sealed with `key` when there is
/// one (with a fresh random salt), plain otherwise.
pub fn encode_state(
    permanent: &[u8],
    volatile: &[u8],
    key: Option<&MasterKey>,
) -> Result<Zeroizing<Vec<u8>>, MigrationError> {
    let payload_len = PAYLOAD_MAGIC.len() + 4 + permanent.len() + 4 + volatile.len();
    if payload_len > MAX_STATE_LEN {
        return Err(MigrationError::TooLarge);
    }
    let mut payload = Zeroizing::new(Vec::with_capacity(payload_len));
    payload.extend_from_slice(&PAYLOAD_MAGIC);
    payload.extend_from_slice(&u32_len(permanent.len())?.to_be_bytes());
    payload.extend_from_slice(permanent);
    payload.extend_from_slice(&u32_len(volatile.len())?.to_be_bytes());
    payload.extend_from_slice(volatile);
    let (flags, payload) = match key {
        Some(key) => {
            let mut salt = [0u8; SALT_LEN];
            getrandom::fill(&mut salt).map_err(|e| MigrationError::Entropy(e.to_string()))?;
            (
                FLAG_SEALED,
                Zeroizing::new(vtpm_store::seal(&payload, key, &salt)?),
            )
        }
        None => (0, payload),
    };
    let total = HEADER_LEN + payload.len() + DIGEST_LEN;
    if total > MAX_STATE_LEN {
        return Err(MigrationError::TooLarge);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(total));
    out.extend_from_slice(&STATE_MAGIC);
    out.extend_from_slice(&STATE_VERSION.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&u32_len(payload.len())?.to_be_bytes());
    out.extend_from_slice(&payload);
    let digest = Sha256::digest(out.as_slice());
    out.extend_from_slice(&digest);
    Ok(out)
}

/// Is the blob sealed? (`None`: not even a header.)
pub fn is_sealed(blob: &[u8]) -> Option<bool> {
    let header = blob.first_chunk::<HEADER_LEN>()?;
    let flags = header.get(10..12)?.first_chunk::<2>()?;
    Some(u16::from_be_bytes(*flags) & FLAG_SEALED != 0)
}

/// Checks a blob and opens it with `key` (see the module documentation
/// for which blobs a back-end with or without a key accepts).
pub fn decode_state(blob: &[u8], key: Option<&MasterKey>) -> Result<DeviceState, MigrationError> {
    if blob.len() > MAX_STATE_LEN {
        return Err(MigrationError::TooLarge);
    }
    let Some(header) = blob.first_chunk::<HEADER_LEN>() else {
        return Err(
            if STATE_MAGIC.starts_with(blob) || blob.starts_with(&STATE_MAGIC) {
                MigrationError::Truncated
            } else {
                MigrationError::Magic
            },
        );
    };
    let (magic, rest) = header.split_at(STATE_MAGIC.len());
    if magic != STATE_MAGIC {
        return Err(MigrationError::Magic);
    }
    let field = |at: usize| -> u16 {
        rest.get(at..at + 2)
            .and_then(|b| b.first_chunk::<2>())
            .map_or(0, |b| u16::from_be_bytes(*b))
    };
    let version = field(0);
    if version != STATE_VERSION {
        return Err(MigrationError::Version(version));
    }
    let flags = field(2);
    let payload_len = rest
        .get(4..8)
        .and_then(|b| b.first_chunk::<4>())
        .map_or(0, |b| u32::from_be_bytes(*b));
    let payload_len = usize::try_from(payload_len).map_err(|_| MigrationError::TooLarge)?;
    let total = HEADER_LEN
        .checked_add(payload_len)
        .and_then(|n| n.checked_add(DIGEST_LEN))
        .ok_or(MigrationError::TooLarge)?;
    if total > MAX_STATE_LEN {
        return Err(MigrationError::TooLarge);
    }
    if blob.len() < total {
        return Err(MigrationError::Truncated);
    }
    if blob.len() > total {
        return Err(MigrationError::TrailingData(blob.len() - total));
    }
    let (covered, digest) = blob
        .split_at_checked(HEADER_LEN + payload_len)
        .ok_or(MigrationError::Truncated)?;
    if Sha256::digest(covered).as_slice() != digest {
        return Err(MigrationError::Digest);
    }
    if flags & !FLAG_SEALED != 0 {
        return Err(MigrationError::Flags(flags));
    }
    let payload = covered.get(HEADER_LEN..).unwrap_or_default();
    let opened;
    let payload = match (flags & FLAG_SEALED != 0, key) {
        (true, Some(key)) => {
            opened = vtpm_store::unseal(payload, key)?;
            opened.as_slice()
        }
        (true, None) => return Err(MigrationError::NoKey),
        (false, Some(_)) => return Err(MigrationError::NotSealed),
        (false, None) => payload,
    };
    parse_payload(payload)
}

fn parse_payload(payload: &[u8]) -> Result<DeviceState, MigrationError> {
    let rest = payload
        .strip_prefix(&PAYLOAD_MAGIC)
        .ok_or(MigrationError::Payload)?;
    let (permanent, rest) = take_sized(rest)?;
    let (volatile, rest) = take_sized(rest)?;
    if !rest.is_empty() {
        return Err(MigrationError::Payload);
    }
    Ok(DeviceState {
        permanent: Zeroizing::new(permanent.to_vec()),
        volatile: Zeroizing::new(volatile.to_vec()),
    })
}

fn take_sized(bytes: &[u8]) -> Result<(&[u8], &[u8]), MigrationError> {
    let (len, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or(MigrationError::Payload)?;
    let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| MigrationError::Payload)?;
    rest.split_at_checked(len).ok_or(MigrationError::Payload)
}

/// Snapshots `tpm` and encodes it.
pub fn save_state(
    tpm: &Mutex<Tpm>,
    key: Option<&MasterKey>,
) -> Result<Zeroizing<Vec<u8>>, MigrationError> {
    let (permanent, volatile) = {
        let mut t = tpm.lock().map_err(|_| MigrationError::Poisoned)?;
        (
            Zeroizing::new(t.permanent_state()),
            Zeroizing::new(t.volatile_state()),
        )
    };
    encode_state(&permanent, &volatile, key)
}

/// Replaces `tpm`'s state with `state`, all or nothing: both states are
/// first loaded into a scratch TPM, so that a state the engine refuses
/// leaves `tpm` untouched; should the real TPM still refuse (its NV commit
/// failing), its previous state is put back.
pub fn apply_state(tpm: &Mutex<Tpm>, state: &DeviceState) -> Result<(), MigrationError> {
    {
        let mut scratch =
            Tpm::new(Box::new(MemoryPlatform::new())).map_err(MigrationError::Scratch)?;
        scratch
            .set_permanent_state(&state.permanent)
            .map_err(MigrationError::Permanent)?;
        scratch
            .set_volatile_state(&state.volatile)
            .map_err(MigrationError::Volatile)?;
    }
    let mut t = tpm.lock().map_err(|_| MigrationError::Poisoned)?;
    let old_permanent = Zeroizing::new(t.permanent_state());
    let old_volatile = Zeroizing::new(t.volatile_state());
    let applied = t
        .set_permanent_state(&state.permanent)
        .map_err(MigrationError::Permanent)
        .and_then(|()| {
            t.set_volatile_state(&state.volatile)
                .map_err(MigrationError::Volatile)
        });
    if let Err(e) = applied {
        if let Err(r) = t.set_permanent_state(&old_permanent) {
            log::error!("virtio-tpm: the previous permanent state could not be restored: {r}");
        }
        if let Err(r) = t.set_volatile_state(&old_volatile) {
            log::error!("virtio-tpm: the previous volatile state could not be restored: {r}");
        }
        return Err(e);
    }
    Ok(())
}

/// Waits until `file` is ready for `events` (after EAGAIN on a
/// non-blocking fd).
fn wait_ready(file: &File, events: EventSet) -> io::Result<()> {
    let epoll = Epoll::new()?;
    epoll.ctl(
        ControlOperation::Add,
        file.as_raw_fd(),
        EpollEvent::new(events, 0),
    )?;
    let mut ready = [EpollEvent::default(); 1];
    loop {
        match epoll.wait(-1, &mut ready) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `blob` to `file`, then closes it (the reader's EOF).
fn write_blob(mut file: File, blob: &[u8]) -> Result<(), MigrationError> {
    let mut rest = blob;
    while !rest.is_empty() {
        match file.write(rest) {
            Ok(0) => {
                return Err(MigrationError::Io(
                    "written to",
                    io::ErrorKind::WriteZero.into(),
                ));
            }
            Ok(n) => rest = rest.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_ready(&file, EventSet::OUT)
                    .map_err(|e| MigrationError::Io("written to", e))?;
            }
            Err(e) => return Err(MigrationError::Io("written to", e)),
        }
    }
    drop(file);
    Ok(())
}

/// Reads `file` to EOF, at most [`MAX_STATE_LEN`] bytes.
fn read_blob(file: &mut File) -> Result<Zeroizing<Vec<u8>>, MigrationError> {
    let mut blob = Zeroizing::new(Vec::with_capacity(256 * 1024));
    let mut chunk = Zeroizing::new(vec![0u8; 64 * 1024]);
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return Ok(blob),
            Ok(n) => {
                if blob.len().saturating_add(n) > MAX_STATE_LEN {
                    return Err(MigrationError::TooLarge);
                }
                blob.extend_from_slice(chunk.get(..n).unwrap_or_default());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_ready(file, EventSet::IN).map_err(|e| MigrationError::Io("read from", e))?;
            }
            Err(e) => return Err(MigrationError::Io("read from", e)),
        }
    }
}

/// The LOAD thread's work: read, open, check, apply.
fn load_from(
    mut file: File,
    tpm: &Mutex<Tpm>,
    key: Option<&MasterKey>,
) -> Result<(), MigrationError> {
    let blob = read_blob(&mut file);
    // Closing at once: a VMM writing more than the limit gets EPIPE rather
    // than blocking on a pipe nobody reads.
    drop(file);
    let blob = blob?;
    let state = decode_state(&blob, key)?;
    if key.is_none() {
        log::warn!("virtio-tpm: loading an unencrypted TPM state (no migration key is configured)");
    }
    apply_state(tpm, &state)?;
    log::info!(
        "virtio-tpm: TPM state loaded ({} bytes, {})",
        blob.len(),
        if key.is_some() { "sealed" } else { "plain" }
    );
    Ok(())
}

/// One direction's transfer, as `CHECK_DEVICE_STATE` sees it.
enum Slot {
    /// No transfer was started on this connection.
    Idle,
    /// The transfer thread has not been heard from yet.
    Running(Receiver<Result<(), MigrationError>>),
    /// The transfer ended; the error as logged.
    Finished(Result<(), String>),
}

/// The state transfer of one vhost-user connection: started by
/// `SET_DEVICE_STATE_FD`, reported by `CHECK_DEVICE_STATE`.
pub(crate) struct StateTransfer {
    slot: Mutex<Slot>,
}

impl StateTransfer {
    pub(crate) fn new() -> Self {
        StateTransfer {
            slot: Mutex::new(Slot::Idle),
        }
    }

    /// Starts a transfer in `direction` over `file`; returns once the
    /// transfer thread runs (SAVE: once the state is snapshotted and
    /// encoded).
    pub(crate) fn start(
        &self,
        direction: VhostTransferStateDirection,
        tpm: &Arc<Mutex<Tpm>>,
        key: Option<&MasterKey>,
        file: File,
    ) -> io::Result<()> {
        let (done, result) = mpsc::sync_channel(1);
        let spawned = match direction {
            VhostTransferStateDirection::SAVE => {
                let blob = save_state(tpm, key).map_err(|e| {
                    log::error!("virtio-tpm: the TPM state could not be saved: {e}");
                    io::Error::other(e)
                })?;
                if key.is_none() {
                    log::warn!(
                        "virtio-tpm: sending the TPM state unencrypted (no migration key is \
                         configured): it holds the TPM's secrets"
                    );
                }
                let sealed = key.is_some();
                spawn("vtpm-state-save", done, move || {
                    let len = blob.len();
                    write_blob(file, &blob)?;
                    log::info!(
                        "virtio-tpm: TPM state saved ({len} bytes, {})",
                        if sealed { "sealed" } else { "plain" }
                    );
                    Ok(())
                })
            }
            VhostTransferStateDirection::LOAD => {
                let tpm = Arc::clone(tpm);
                let key = key.cloned();
                spawn("vtpm-state-load", done, move || {
                    load_from(file, &tpm, key.as_ref())
                })
            }
        };
        spawned.map_err(|e| {
            log::error!("virtio-tpm: the state transfer thread could not be started: {e}");
            e
        })?;
        let mut slot = self
            .slot
            .lock()
            .map_err(|_| io::Error::other("the state transfer's lock is poisoned"))?;
        if matches!(*slot, Slot::Running(_)) {
            log::warn!("virtio-tpm: a new state transfer replaces one that was never checked");
        }
        *slot = Slot::Running(result);
        Ok(())
    }

    /// The result of the last transfer, waiting for its thread at most
    /// [`CHECK_TIMEOUT`].
    pub(crate) fn check(&self) -> io::Result<()> {
        let mut slot = self
            .slot
            .lock()
            .map_err(|_| io::Error::other("the state transfer's lock is poisoned"))?;
        if let Slot::Running(result) = &*slot {
            let outcome = match result.recv_timeout(CHECK_TIMEOUT) {
                Ok(outcome) => outcome.map_err(|e| e.to_string()),
                Err(RecvTimeoutError::Timeout) => {
                    log::error!(
                        "virtio-tpm: the state transfer has not finished after {CHECK_TIMEOUT:?}"
                    );
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the state transfer has not finished",
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    Err("the state transfer thread ended without a result".to_string())
                }
            };
            *slot = Slot::Finished(outcome);
        }
        match &*slot {
            Slot::Finished(Ok(())) => Ok(()),
            Slot::Finished(Err(e)) => Err(io::Error::other(e.clone())),
            Slot::Idle => Err(io::Error::other("no state transfer was started")),
            Slot::Running(_) => Err(io::Error::other("the state transfer is still running")),
        }
    }
}

/// Runs `work` on a named thread that logs its error and reports its
/// result on `done`.
fn spawn<F>(
    name: &str,
    done: SyncSender<Result<(), MigrationError>>,
    work: F,
) -> io::Result<thread::JoinHandle<()>>
where
    F: FnOnce() -> Result<(), MigrationError> + Send + 'static,
{
    thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let outcome = work();
            if let Err(e) = &outcome {
                log::error!("virtio-tpm: TPM state transfer failed: {e}");
            }
            // The receiver is gone if a newer transfer replaced this one.
            let _ = done.send(outcome);
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> MasterKey {
        MasterKey::from_bytes([b; 32])
    }

    #[test]
    fn round_trip_plain_and_sealed() {
        let perm = b"permanent".as_slice();
        let vol = b"volatile state".as_slice();
        let plain = encode_state(perm, vol, None).unwrap();
        assert_eq!(is_sealed(&plain), Some(false));
        let s = decode_state(&plain, None).unwrap();
        assert_eq!((s.permanent.as_slice(), s.volatile.as_slice()), (perm, vol));

        let k = key(7);
        let sealed = encode_state(perm, vol, Some(&k)).unwrap();
        assert_eq!(is_sealed(&sealed), Some(true));
        // The plaintext does not appear in a sealed blob.
        assert!(!sealed.windows(vol.len()).any(|w| w == vol));
        // A fresh salt each time.
        assert_ne!(*sealed, *encode_state(perm, vol, Some(&k)).unwrap());
        let s = decode_state(&sealed, Some(&k)).unwrap();
        assert_eq!((s.permanent.as_slice(), s.volatile.as_slice()), (perm, vol));

        assert!(matches!(
            decode_state(&sealed, Some(&key(8))),
            Err(MigrationError::Seal(
                vtpm_store::FormatError::WrongKey { .. }
            ))
        ));
        assert!(matches!(
            decode_state(&sealed, None),
            Err(MigrationError::NoKey)
        ));
        assert!(matches!(
            decode_state(&plain, Some(&k)),
            Err(MigrationError::NotSealed)
        ));
    }

    #[test]
    fn damaged_blobs_are_refused() {
        let k = key(1);
        for key in [None, Some(&k)] {
            let blob = encode_state(&[1; 40], &[2; 70], key).unwrap();
            for n in 0..blob.len() {
                assert!(decode_state(&blob[..n], key).is_err(), "cut at {n}");
            }
            let mut longer = blob.to_vec();
            longer.push(0);
            assert!(matches!(
                decode_state(&longer, key),
                Err(MigrationError::TrailingData(1))
            ));
            for i in 0..blob.len() {
                let mut bad = blob.to_vec();
                bad[i] ^= 0x40;
                assert!(decode_state(&bad, key).is_err(), "flip at {i}");
            }
        }
        assert!(matches!(
            decode_state(b"", None),
            Err(MigrationError::Truncated)
        ));
        assert!(matches!(
            decode_state(b"garbage garbage garbage", None),
            Err(MigrationError::Magic)
        ));
    }

    #[test]
    fn header_fields_are_checked() {
        let blob = encode_state(b"p", b"v", None).unwrap();
        let redigest = |mut b: Vec<u8>| {
            let n = b.len() - DIGEST_LEN;
            let d = Sha256::digest(&b[..n]);
            b[n..].copy_from_slice(&d);
            b
        };
        let mut v2 = blob.to_vec();
        v2[9] = 2;
        assert!(matches!(
            decode_state(&redigest(v2), None),
            Err(MigrationError::Version(2))
        ));
        let mut flags = blob.to_vec();
        flags[11] = 2;
        assert!(matches!(
            decode_state(&redigest(flags), None),
            Err(MigrationError::Flags(2))
        ));
        // A length beyond the limit is refused before anything else.
        let mut huge = blob.to_vec();
        huge[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decode_state(&huge, None),
            Err(MigrationError::TooLarge)
        ));
        // Payload lengths that do not add up.
        let mut inner = blob.to_vec();
        inner[HEADER_LEN + 8 + 3] = 200;
        assert!(matches!(
            decode_state(&redigest(inner), None),
            Err(MigrationError::Payload)
        ));
    }

    #[test]
    fn garbage_states_leave_the_tpm_alone() {
        const STARTUP: [u8; 12] = [0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0];
        let platform = MemoryPlatform::new();
        let mut t = Tpm::new(Box::new(platform.clone())).unwrap();
        t.power_on();
        assert_eq!(t.execute(0, &STARTUP)[6..10], [0, 0, 0, 0]);
        let tpm = Mutex::new(t);
        let committed = platform.nv_image().unwrap();
        // Another TPM's (valid) permanent state with a volatile state the
        // engine refuses: nothing of it reaches the TPM, not even NV.
        let mut other = Tpm::new(Box::new(MemoryPlatform::new())).unwrap();
        let state = DeviceState {
            permanent: Zeroizing::new(other.permanent_state()),
            volatile: Zeroizing::new(b"VTVS garbage".to_vec()),
        };
        assert!(matches!(
            apply_state(&tpm, &state),
            Err(MigrationError::Volatile(_))
        ));
        let mut good_volatile = other.volatile_state();
        good_volatile.truncate(good_volatile.len() - 1);
        let state = DeviceState {
            permanent: Zeroizing::new(other.permanent_state()),
            volatile: Zeroizing::new(good_volatile),
        };
        assert!(matches!(
            apply_state(&tpm, &state),
            Err(MigrationError::Volatile(_))
        ));
        let state = DeviceState {
            permanent: Zeroizing::new(vec![0; 64]),
            volatile: Zeroizing::new(other.volatile_state()),
        };
        assert!(matches!(
            apply_state(&tpm, &state),
            Err(MigrationError::Permanent(_))
        ));
        assert_eq!(platform.nv_image().unwrap(), committed);
        let t = tpm.lock().unwrap();
        assert!(t.is_powered() && t.is_started());
    }

    #[test]
    fn oversized_input_is_cut_off() {
        let (r, mut w) = std::io::pipe().unwrap();
        let writer = thread::spawn(move || {
            let chunk = vec![0u8; 1 << 20];
            for _ in 0..17 {
                if w.write_all(&chunk).is_err() {
                    return false;
                }
            }
            true
        });
        let mut file = File::from(std::os::fd::OwnedFd::from(r));
        assert!(matches!(
            read_blob(&mut file),
            Err(MigrationError::TooLarge)
        ));
        drop(file);
        // The writer got EPIPE once the reader gave up.
        assert!(!writer.join().unwrap());
    }
}
