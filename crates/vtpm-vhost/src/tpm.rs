//! The device logic: one descriptor chain in, one TPM command executed, one
//! response out.
//!
//! A request is one descriptor chain. Its device-readable descriptors hold
//! one TPM command, its device-writable descriptors receive the response; the
//! used length is the response's length. Everything here treats the chain as
//! hostile: lengths are added up in `u64` and checked before anything is
//! allocated, the number of descriptors is bounded, and every guest-memory
//! access goes through `vm-memory`'s checked accessors.
//!
//! What a chain gets back (every chain goes back to the used ring, and every
//! rejection is logged):
//!
//! | chain | used ring |
//! | --- | --- |
//! | well formed, command 10..=4096 bytes, response fits | the response |
//! | command over 4096 bytes or under 10 (no readable part included) | `TPM_RC_SIZE` error response |
//! | command not readable from guest memory | `TPM_RC_FAILURE` error response |
//! | response larger than the writable part (which holds ≥ 10 bytes) | `TPM_RC_FAILURE` error response |
//! | writable part under 10 bytes, or missing, or outside guest memory | used length 0, command not run |
//! | malformed chain: empty, cut short (loop, bad `next`, bad indirect table), readable after writable, too many descriptors | used length 0, command not run |
//!
//! Nothing here knows about vhost-user; the engine knows nothing about virtio.

use std::ops::Deref;
use std::sync::Mutex;

use virtio_queue::DescriptorChain;
use virtio_queue::desc::split::Descriptor;
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryError, Permissions};
use vtpm_engine::Tpm;

/// The largest command, and the largest response, this device carries.
pub const MAX_BUFFER_SIZE: usize = 4096;
/// Size of a TPM command or response header (tag, size, code).
pub const HEADER_SIZE: usize = 10;
/// The most descriptors one chain may have (indirect tables may list up to
/// 65535; a 4096-byte request needs a handful).
pub const MAX_DESCRIPTORS: usize = 512;
/// The locality every virtio command is executed at.
pub const LOCALITY: u8 = 0;

/// TPM_RC_SIZE: the command is larger than the device takes, or shorter
/// than a header.
pub const TPM_RC_SIZE: u32 = 0x095;
/// TPM_RC_FAILURE: the command could not be read or its response not be
/// delivered.
pub const TPM_RC_FAILURE: u32 = 0x101;
/// TPM_ST_NO_SESSIONS, the tag of an error response.
const TPM_ST_NO_SESSIONS: u16 = 0x8001;

/// A 10-byte TPM response with no parameters: tag `TPM_ST_NO_SESSIONS`,
/// size 10, response code `rc`.
pub fn error_response(rc: u32) -> [u8; HEADER_SIZE] {
    let mut r = [0u8; HEADER_SIZE];
    let (tag, rest) = r.split_at_mut(2);
    let (size, code) = rest.split_at_mut(4);
    tag.copy_from_slice(&TPM_ST_NO_SESSIONS.to_be_bytes());
    size.copy_from_slice(&(HEADER_SIZE as u32).to_be_bytes());
    code.copy_from_slice(&rc.to_be_bytes());
    r
}

/// Why a descriptor chain is not a request this device can answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    /// No descriptor could be read: the head index or its indirect table is invalid.
    #[error("the descriptor chain is empty: its head or its indirect table is invalid")]
    Empty,
    /// The chain ended on a descriptor that has a next one.
    #[error(
        "the descriptor chain is cut short: it loops, names a descriptor out of range or has an invalid indirect table"
    )]
    Truncated,
    /// A device-readable descriptor follows a device-writable one.
    #[error("a device-readable descriptor follows a device-writable one")]
    ReadableAfterWritable,
    /// The chain has more descriptors than [`MAX_DESCRIPTORS`].
    #[error("the descriptor chain has more than {MAX_DESCRIPTORS} descriptors")]
    TooManyDescriptors,
}

/// Why a request gets no response, or an error response.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The chain is malformed.
    #[error("the descriptor chain is malformed: {0}")]
    Chain(#[from] ChainError),
    /// The writable part cannot take even an error response.
    #[error("the device-writable part holds {0} bytes, fewer than a 10-byte response header")]
    WritableTooSmall(u64),
    /// A writable descriptor lies outside guest memory.
    #[error("a device-writable descriptor ({len} bytes at {addr:#x}) lies outside guest memory")]
    WritableOutsideMemory {
        /// Guest physical address of the descriptor.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// The command is larger than [`MAX_BUFFER_SIZE`].
    #[error("the command is {0} bytes long, more than the {MAX_BUFFER_SIZE} this device takes")]
    CommandTooLarge(u64),
    /// The command is shorter than a header.
    #[error("the command is {0} bytes long, shorter than a 10-byte TPM header")]
    CommandTooShort(u64),
    /// The command could not be read from guest memory.
    #[error("the command could not be read from guest memory: {0}")]
    ReadCommand(GuestMemoryError),
    /// The response is larger than the writable part.
    #[error("the response of {response} bytes does not fit the {writable} writable bytes")]
    ResponseTooLarge {
        /// Length of the engine's response.
        response: usize,
        /// Bytes the chain can take.
        writable: u64,
    },
    /// The response could not be written to guest memory.
    #[error("the response could not be written to guest memory: {0}")]
    WriteResponse(GuestMemoryError),
}

/// One descriptor's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Guest physical address.
    pub addr: GuestAddress,
    /// Length in bytes.
    pub len: u32,
}

/// The buffers of one well-formed chain: readable ones first, then writable
/// ones, as the virtio spec requires.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChainLayout {
    /// Device-readable buffers, in chain order: the command.
    pub readable: Vec<Region>,
    /// Device-writable buffers, in chain order: room for the response.
    pub writable: Vec<Region>,
}

impl ChainLayout {
    /// Walks a chain's descriptors (as `DescriptorChain` yields them,
    /// indirect tables already followed) and checks its shape.
    ///
    /// `DescriptorChain` ends iteration silently on a loop, on a `next`
    /// index out of range and on an invalid indirect table; such a chain
    /// ends on a descriptor that still has `VIRTQ_DESC_F_NEXT`, which is how
    /// it is told apart from a complete one here.
    pub fn parse<I: IntoIterator<Item = Descriptor>>(descriptors: I) -> Result<Self, ChainError> {
        let mut layout = ChainLayout::default();
        let mut count = 0usize;
        let mut last_has_next = false;
        for desc in descriptors {
            count += 1;
            if count > MAX_DESCRIPTORS {
                return Err(ChainError::TooManyDescriptors);
            }
            last_has_next = desc.has_next();
            let region = Region {
                addr: desc.addr(),
                len: desc.len(),
            };
            if desc.is_write_only() {
                layout.writable.push(region);
            } else if layout.writable.is_empty() {
                layout.readable.push(region);
            } else {
                return Err(ChainError::ReadableAfterWritable);
            }
        }
        if count == 0 {
            return Err(ChainError::Empty);
        }
        if last_has_next {
            return Err(ChainError::Truncated);
        }
        Ok(layout)
    }

    /// Total bytes in the readable part.
    pub fn readable_len(&self) -> u64 {
        self.readable.iter().map(|r| u64::from(r.len)).sum()
    }

    /// Total bytes in the writable part.
    pub fn writable_len(&self) -> u64 {
        self.writable.iter().map(|r| u64::from(r.len)).sum()
    }
}

/// Reads the command from the readable part: checks its length first, then
/// allocates exactly that much (at most [`MAX_BUFFER_SIZE`]).
pub fn gather<G: GuestMemory + ?Sized>(
    mem: &G,
    readable: &[Region],
) -> Result<Vec<u8>, RequestError> {
    let total: u64 = readable.iter().map(|r| u64::from(r.len)).sum();
    if total > MAX_BUFFER_SIZE as u64 {
        return Err(RequestError::CommandTooLarge(total));
    }
    if total < HEADER_SIZE as u64 {
        return Err(RequestError::CommandTooShort(total));
    }
    // `total` ≤ MAX_BUFFER_SIZE, so these conversions cannot fail.
    let mut command = vec![0u8; usize::try_from(total).unwrap_or(MAX_BUFFER_SIZE)];
    let mut rest = command.as_mut_slice();
    for r in readable {
        let (part, tail) = rest.split_at_mut(usize::try_from(r.len).unwrap_or(0).min(rest.len()));
        mem.read_slice(part, r.addr)
            .map_err(RequestError::ReadCommand)?;
        rest = tail;
    }
    Ok(command)
}

/// Writes `response` over the writable part, in order; returns the bytes
/// written. The caller has checked that the response fits.
pub fn scatter<G: GuestMemory + ?Sized>(
    mem: &G,
    writable: &[Region],
    response: &[u8],
) -> Result<u32, RequestError> {
    let mut rest = response;
    for r in writable {
        if rest.is_empty() {
            break;
        }
        let n = usize::try_from(r.len).unwrap_or(usize::MAX).min(rest.len());
        let (part, tail) = rest.split_at(n);
        mem.write_slice(part, r.addr)
            .map_err(RequestError::WriteResponse)?;
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(RequestError::ResponseTooLarge {
            response: response.len(),
            writable: writable.iter().map(|r| u64::from(r.len)).sum(),
        });
    }
    u32::try_from(response.len()).map_err(|_| RequestError::ResponseTooLarge {
        response: response.len(),
        writable: writable.iter().map(|r| u64::from(r.len)).sum(),
    })
}

/// Runs `command` on the engine at [`LOCALITY`].
fn execute(tpm: &Mutex<Tpm>, command: &[u8]) -> Vec<u8> {
    match tpm.lock() {
        Ok(mut tpm) => tpm.execute(LOCALITY, command),
        Err(_) => {
            log::error!("virtio-tpm: the TPM's lock is poisoned; answering TPM_RC_FAILURE");
            error_response(TPM_RC_FAILURE).to_vec()
        }
    }
}

/// Serves the request a well-formed chain carries and returns the used
/// length (0 where nothing could be written).
pub fn serve_request<G: GuestMemory + ?Sized>(
    tpm: &Mutex<Tpm>,
    mem: &G,
    layout: &ChainLayout,
    head: u16,
) -> u32 {
    // Without room for at least an error response the command is not run:
    // its effects would happen with no way to tell the guest.
    let writable = layout.writable_len();
    if writable < HEADER_SIZE as u64 {
        log::warn!(
            "virtio-tpm: request {head} returned with used length 0: {}",
            RequestError::WritableTooSmall(writable)
        );
        return 0;
    }
    for r in &layout.writable {
        let len = usize::try_from(r.len).unwrap_or(usize::MAX);
        if !GuestMemory::check_range(mem, r.addr, len, Permissions::Write) {
            log::warn!(
                "virtio-tpm: request {head} returned with used length 0: {}",
                RequestError::WritableOutsideMemory {
                    addr: r.addr.0,
                    len: r.len
                }
            );
            return 0;
        }
    }

    let mut response = match gather(mem, &layout.readable) {
        Ok(command) => execute(tpm, &command),
        Err(e) => {
            let rc = match e {
                RequestError::CommandTooLarge(_) | RequestError::CommandTooShort(_) => TPM_RC_SIZE,
                _ => TPM_RC_FAILURE,
            };
            log::warn!("virtio-tpm: request {head} answered with TPM error {rc:#x}: {e}");
            error_response(rc).to_vec()
        }
    };
    if response.len() as u64 > writable || response.len() > MAX_BUFFER_SIZE {
        log::warn!(
            "virtio-tpm: request {head} answered with TPM_RC_FAILURE: {}",
            RequestError::ResponseTooLarge {
                response: response.len(),
                writable,
            }
        );
        response = error_response(TPM_RC_FAILURE).to_vec();
    }
    match scatter(mem, &layout.writable, &response) {
        Ok(n) => n,
        Err(e) => {
            log::error!("virtio-tpm: request {head} returned with used length 0: {e}");
            0
        }
    }
}

/// Handles one descriptor chain and returns the length to put in the used
/// ring with its head index. Never panics; every chain gets an answer.
pub fn process_chain<M>(tpm: &Mutex<Tpm>, chain: DescriptorChain<M>) -> u32
where
    M: Deref + Clone,
    M::Target: GuestMemory,
{
    let head = chain.head_index();
    match ChainLayout::parse(chain.clone()) {
        Ok(layout) => serve_request(tpm, chain.memory(), &layout, head),
        Err(e) => {
            log::warn!(
                "virtio-tpm: request {head} returned with used length 0: {}",
                RequestError::Chain(e)
            );
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtio_bindings::bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
    use vm_memory::GuestMemoryMmap;
    use vtpm_engine::MemoryPlatform;

    const R: u16 = 0;
    const W: u16 = VRING_DESC_F_WRITE as u16;
    const N: u16 = VRING_DESC_F_NEXT as u16;

    fn d(addr: u64, len: u32, flags: u16) -> Descriptor {
        Descriptor::new(addr, len, flags, 0)
    }

    fn tpm() -> Mutex<Tpm> {
        let mut t = Tpm::new(Box::new(MemoryPlatform::new())).unwrap();
        t.power_on();
        Mutex::new(t)
    }

    #[test]
    fn error_response_bytes() {
        assert_eq!(
            error_response(TPM_RC_SIZE),
            [0x80, 1, 0, 0, 0, 10, 0, 0, 0, 0x95]
        );
    }

    #[test]
    fn layout_shapes() {
        let l = ChainLayout::parse([d(0, 4, R | N), d(8, 6, R | N), d(16, 20, W)]).unwrap();
        assert_eq!(l.readable_len(), 10);
        assert_eq!(l.writable_len(), 20);
        assert_eq!(ChainLayout::parse([]), Err(ChainError::Empty));
        assert_eq!(
            ChainLayout::parse([d(0, 4, W | N), d(8, 6, R)]),
            Err(ChainError::ReadableAfterWritable)
        );
        assert_eq!(
            ChainLayout::parse([d(0, 4, R | N)]),
            Err(ChainError::Truncated)
        );
        let many = (0..=MAX_DESCRIPTORS).map(|_| d(0, 1, R | N));
        assert_eq!(
            ChainLayout::parse(many),
            Err(ChainError::TooManyDescriptors)
        );
    }

    #[test]
    fn gather_bounds() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x2000)]).unwrap();
        let big = [Region {
            addr: GuestAddress(0),
            len: 4097,
        }];
        assert!(matches!(
            gather(&mem, &big),
            Err(RequestError::CommandTooLarge(4097))
        ));
        let huge = [
            Region {
                addr: GuestAddress(0),
                len: u32::MAX,
            },
            Region {
                addr: GuestAddress(0),
                len: u32::MAX,
            },
        ];
        assert!(matches!(
            gather(&mem, &huge),
            Err(RequestError::CommandTooLarge(_))
        ));
        let short = [Region {
            addr: GuestAddress(0),
            len: 9,
        }];
        assert!(matches!(
            gather(&mem, &short),
            Err(RequestError::CommandTooShort(9))
        ));
        let outside = [Region {
            addr: GuestAddress(0x1ffc),
            len: 10,
        }];
        assert!(matches!(
            gather(&mem, &outside),
            Err(RequestError::ReadCommand(_))
        ));
    }

    #[test]
    fn serve_startup_split() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x2000)]).unwrap();
        let startup = [0x80, 1, 0, 0, 0, 0x0c, 0, 0, 1, 0x44, 0, 0];
        mem.write_slice(&startup[..3], GuestAddress(0x100)).unwrap();
        mem.write_slice(&startup[3..], GuestAddress(0x200)).unwrap();
        let layout = ChainLayout {
            readable: vec![
                Region {
                    addr: GuestAddress(0x100),
                    len: 3,
                },
                Region {
                    addr: GuestAddress(0x200),
                    len: 9,
                },
            ],
            writable: vec![
                Region {
                    addr: GuestAddress(0x300),
                    len: 4,
                },
                Region {
                    addr: GuestAddress(0x400),
                    len: 100,
                },
            ],
        };
        let t = tpm();
        assert_eq!(serve_request(&t, &mem, &layout, 0), 10);
        let mut out = [0u8; 10];
        mem.read_slice(&mut out[..4], GuestAddress(0x300)).unwrap();
        mem.read_slice(&mut out[4..], GuestAddress(0x400)).unwrap();
        assert_eq!(out, [0x80, 1, 0, 0, 0, 10, 0, 0, 0, 0]);
    }
}
