//! vtpm's TPM 2.0 engine.
//!
//! One entry point, [`Tpm::execute`]: a command's bytes in, a response's
//! bytes out, always well formed, never a panic. The engine knows nothing of
//! sockets, virtio or files; entropy, time and NV storage come through
//! [`Platform`]. Platform signals (power, `_TPM_Init`, `_TPM_Hash_*`,
//! locality, cancel) are methods beside `execute`, as on a physical TPM's
//! pins.
//!
//! Command processing follows Part 3 §5: header and size → dispatch table
//! ([`dispatch`]) → handle validation → authorization area → the command's
//! parameters and action ([`commands`], one file per command grouped by
//! Part 3 chapter) → response with its authorization area.
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

pub mod commands;
pub mod crypto;
mod da;
pub mod dispatch;
mod drtm;
mod execute;
pub mod keys;
pub mod nv;
pub mod objects;
pub mod pcr;
pub mod platform;
pub mod session;
pub mod state;
mod tickets;
mod volatile;

use crate::crypto::drbg::HmacDrbg;
use crate::objects::Objects;
use crate::pcr::PcrValues;
use crate::state::{NvState, Orderly, PROOF_SIZE};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::PcrSelectionList;
use zeroize::Zeroize;

pub use platform::{MemoryPlatform, NvError, Platform};

/// The process's RSA key pool, given to every TPM created after it is set.
static PROCESS_RSA_POOL: std::sync::Mutex<Option<std::sync::Arc<crypto::rsa::RsaKeyPool>>> =
    std::sync::Mutex::new(None);

/// Sets up one pool of `size` pre-generated RSA-2048 keys for this process
/// (0: none). Every [`Tpm`] created afterwards takes ordinary RSA-2048 keys
/// from it; a background thread refills it after use and sleeps while it is
/// full.
pub fn set_process_rsa_pool(size: usize) {
    let pool = (size > 0).then(|| crypto::rsa::RsaKeyPool::new(2048, size));
    if let Ok(mut p) = PROCESS_RSA_POOL.lock() {
        *p = pool;
    }
}

fn process_rsa_pool() -> Option<std::sync::Arc<crypto::rsa::RsaKeyPool>> {
    PROCESS_RSA_POOL.lock().ok().and_then(|p| p.clone())
}

/// Interval (ms) at which Clock is written to NV (TPM_PT_CLOCK_UPDATE).
pub const CLOCK_UPDATE_MS: u64 = 1 << 12;

/// Why an engine could not be created.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The platform could not read the NV image.
    #[error("the TPM's NV state could not be read: {0}")]
    Nv(#[from] NvError),
    /// The NV image is corrupt or from an unknown version.
    #[error("the TPM's NV state is not usable: {0}")]
    State(#[from] state::StateError),
}

/// State cleared by `_TPM_Init` and set up by TPM2_Startup.
pub(crate) struct Volatile {
    pub pcrs: PcrValues,
    pub allocation: PcrSelectionList,
    pub pcr_counter: u32,
    pub ph_enable: bool,
    pub sh_enable: bool,
    pub eh_enable: bool,
    pub ph_enable_nv: bool,
    pub platform_auth: Vec<u8>,
    pub null_proof: [u8; PROOF_SIZE],
    pub objects: Objects,
    pub sessions: session::Sessions,
    /// Sequence number of the next saved context.
    pub context_counter: u64,
    /// PCR_Allocate ran this cycle: Shutdown(STATE) is refused.
    pub pcr_reconfig: bool,
    /// An H-CRTM sequence ran before Startup.
    pub drtm_pre_startup: bool,
    /// Handle of the running `_TPM_Hash` event sequence.
    pub drtm_handle: Option<u32>,
    /// Clock.safe.
    pub clock_safe: bool,
    /// After a disorderly shutdown: the Clock value NV must reach before
    /// Clock is safe again (the next CLOCK_UPDATE boundary).
    pub clock_safe_at: u64,
    /// All self tests passed since power-on.
    pub self_tested: bool,
    /// platformPolicy (volatile: cleared by every TPM Reset).
    pub platform_policy: state::HierarchyPolicy,
    /// TPMS_TIME_INFO.time (ms) from which the next self-healing decrement
    /// of failedTries is counted (the reference implementation's
    /// s_selfHealTimer).
    pub self_heal_timer: u64,
    /// TPMS_TIME_INFO.time (ms) of the last lockoutAuth failure
    /// (s_lockoutTimer).
    pub lockout_timer: u64,
    /// The exclusive audit session (Part 1 §19.6.11;
    /// TPM_RH_UNASSIGNED: none).
    pub exclusive_audit_session: u32,
}

impl Volatile {
    fn new(allocation: PcrSelectionList) -> Self {
        Volatile {
            pcrs: PcrValues::default(),
            allocation,
            pcr_counter: 0,
            ph_enable: true,
            sh_enable: true,
            eh_enable: true,
            ph_enable_nv: true,
            platform_auth: Vec::new(),
            null_proof: [0; PROOF_SIZE],
            objects: Objects::default(),
            sessions: session::Sessions::default(),
            context_counter: 0,
            pcr_reconfig: false,
            drtm_pre_startup: false,
            drtm_handle: None,
            clock_safe: true,
            clock_safe_at: 0,
            self_tested: false,
            platform_policy: state::HierarchyPolicy::default(),
            self_heal_timer: 0,
            lockout_timer: 0,
            exclusive_audit_session: vtpm_wire::constants::handle::RH_UNASSIGNED,
        }
    }
}

impl Drop for Volatile {
    fn drop(&mut self) {
        self.platform_auth.zeroize();
        self.null_proof.zeroize();
    }
}

/// A TPM 2.0.
pub struct Tpm {
    platform: Box<dyn Platform>,
    pub(crate) nv: NvState,
    nv_dirty: bool,
    powered: bool,
    pub(crate) started: bool,
    nv_available: bool,
    cancel: bool,
    /// Failure mode: why the TPM failed.
    pub(crate) failure: Option<String>,
    pub(crate) v: Volatile,
    drbg: HmacDrbg,
    /// Orderly state seen at the last `_TPM_Init`.
    pub(crate) prev_orderly: Orderly,
    /// Platform time of the last `_TPM_Init`.
    init_ms: u64,
    /// Platform time at which `nv.clock` was last brought up to date.
    clock_base_ms: u64,
    /// Derived primary objects.
    pub(crate) primary_cache: keys::primary::PrimaryCache,
    /// Pre-generated RSA keys for ordinary objects.
    pub(crate) rsa_pool: Option<std::sync::Arc<crypto::rsa::RsaKeyPool>>,
}

impl std::fmt::Debug for Tpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tpm")
            .field("powered", &self.powered)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl Tpm {
    /// A TPM on `platform`, with the platform's NV image or, if it has none,
    /// freshly manufactured (and committed). Powered off: call
    /// [`Tpm::power_on`].
    pub fn new(mut platform: Box<dyn Platform>) -> Result<Tpm, EngineError> {
        let mut seed = [0u8; 48];
        platform.fill_entropy(&mut seed);
        let drbg = HmacDrbg::new(&seed);
        seed.zeroize();
        let (nv, fresh) = match platform.load_nv()? {
            Some(image) => (NvState::from_bytes(&image)?, false),
            None => (
                NvState::manufacture(&mut |b: &mut [u8]| platform.fill_entropy(b)),
                true,
            ),
        };
        let now = platform.now_ms();
        let mut tpm = Tpm {
            v: Volatile::new(nv.pcr_allocation.clone()),
            platform,
            nv,
            nv_dirty: fresh,
            powered: false,
            started: false,
            nv_available: true,
            cancel: false,
            failure: None,
            drbg,
            prev_orderly: Orderly::Clear,
            init_ms: now,
            clock_base_ms: now,
            primary_cache: keys::primary::PrimaryCache::default(),
            rsa_pool: process_rsa_pool(),
        };
        if tpm.nv.seeds_missing {
            // A version-1 image: this TPM gets its primary seeds now.
            let mut seeds = [[0u8; state::SEED_SIZE]; 3];
            for seed in seeds.iter_mut() {
                tpm.platform.fill_entropy(seed);
            }
            [tpm.nv.eps, tpm.nv.sps, tpm.nv.pps] = seeds;
            seeds.zeroize();
            tpm.nv.seeds_missing = false;
            tpm.nv_dirty = true;
        }
        if tpm.nv_dirty {
            tpm.commit_nv()?;
        }
        Ok(tpm)
    }

    /// Power on: the platform powers the TPM and signals `_TPM_Init`.
    /// Runs the power-on self tests.
    pub fn power_on(&mut self) {
        if self.powered {
            return;
        }
        self.powered = true;
        self.nv_available = true;
        self.failure = None;
        self.tpm_init();
    }

    /// Power off. What was not committed to NV is lost, as on a real TPM.
    pub fn power_off(&mut self) {
        if self.powered {
            // Keep the clock: a powered-off TPM's Clock does not advance, and
            // the time it ran is recorded now.
            self.sync_clock();
            self.nv_dirty = true;
            if let Err(e) = self.commit_nv() {
                log::error!("committing NV at power-off failed: {e}");
            }
        }
        self.powered = false;
        self.started = false;
    }

    /// Is the TPM powered?
    pub fn is_powered(&self) -> bool {
        self.powered
    }

    /// Has TPM2_Startup completed since the last `_TPM_Init`?
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// `_TPM_Init`: the platform reset the TPM (power cycle or reset line).
    /// Volatile state is gone; TPM2_Startup is needed next.
    pub fn tpm_init(&mut self) {
        if !self.powered {
            return;
        }
        self.sync_clock();
        self.started = false;
        self.cancel = false;
        self.prev_orderly = self.nv.orderly;
        // NV keeps the orderly state until Startup consumes it, so a backend
        // restarted between _TPM_Init and Startup still resumes.
        let mut v = Volatile::new(self.v.allocation.clone());
        if self.prev_orderly == Orderly::None {
            // Values of Clock after the last NV update may have been
            // reported: not safe until Clock passes the next update.
            v.clock_safe = false;
            v.clock_safe_at = (self.nv.clock | (CLOCK_UPDATE_MS - 1)).saturating_add(1);
        } else {
            v.clock_safe = self.v.clock_safe;
        }
        self.v = v;
        self.init_ms = self.platform.now_ms();
        self.run_self_tests();
        if let Err(e) = self.commit_nv() {
            log::error!("committing NV at _TPM_Init failed: {e}");
        }
    }

    /// NV availability (the simulator's NV_ON / NV_OFF signals). While NV
    /// is unavailable, commands that write NV answer TPM_RC_NV_UNAVAILABLE.
    pub fn set_nv_available(&mut self, on: bool) {
        self.nv_available = on;
    }

    /// The platform's cancel signal. This engine runs every command to
    /// completion quickly, so a cancel only has to be remembered until the
    /// next command.
    pub fn set_cancel(&mut self, on: bool) {
        self.cancel = on;
    }

    /// The TPM_ACCESS.tpmEstablishment flag.
    pub fn tpm_established(&self) -> bool {
        self.nv.tpm_established
    }

    /// TPM_ACCESS.resetEstablishmentBit: allowed from locality 3 or 4.
    pub fn reset_tpm_established(&mut self, locality: u8) -> Result<(), TpmRc> {
        if locality != 3 && locality != 4 {
            return Err(TpmRc::LOCALITY);
        }
        if self.nv.tpm_established {
            self.nv.tpm_established = false;
            self.nv_dirty = true;
            self.commit_nv().map_err(|_| TpmRc::NV_UNAVAILABLE)?;
        }
        Ok(())
    }

    /// The NV image as it would be committed now (for state export).
    pub fn nv_image(&mut self) -> Vec<u8> {
        self.sync_clock();
        self.nv.to_bytes()
    }

    /// Random bytes from the TPM's DRBG.
    pub(crate) fn random(&mut self, out: &mut [u8]) {
        if self.drbg.needs_reseed() {
            let mut e = [0u8; 32];
            self.platform.fill_entropy(&mut e);
            self.drbg.reseed(&e, b"");
            e.zeroize();
        }
        self.drbg.generate(out, b"");
    }

    /// Mixes caller data into the DRBG (TPM2_StirRandom), with fresh
    /// platform entropy.
    pub(crate) fn stir_random(&mut self, data: &[u8]) {
        let mut e = [0u8; 32];
        self.platform.fill_entropy(&mut e);
        self.drbg.reseed(&e, data);
        e.zeroize();
    }

    /// Runs every known-answer test; a failure enters failure mode.
    pub(crate) fn run_self_tests(&mut self) {
        match crypto::self_test::test_all() {
            Ok(()) => self.v.self_tested = true,
            Err(alg) => {
                log::error!("self test of {alg:?} failed: entering failure mode");
                self.failure = Some(format!("self test of {alg:?} failed"));
            }
        }
    }

    /// Sets TPMS_TIME_INFO.time (restoring a volatile state).
    pub(crate) fn set_time_ms(&mut self, time: u64) {
        self.init_ms = self.platform.now_ms().saturating_sub(time);
    }

    /// Milliseconds since the last `_TPM_Init` (TPMS_TIME_INFO.time).
    pub(crate) fn time_ms(&self) -> u64 {
        self.platform.now_ms().saturating_sub(self.init_ms)
    }

    /// TPMS_CLOCK_INFO.clock now.
    pub(crate) fn clock_ms(&self) -> u64 {
        self.nv
            .clock
            .saturating_add(self.platform.now_ms().saturating_sub(self.clock_base_ms))
    }

    /// Sets Clock to zero (TPM2_Clear); Clock is safe again.
    pub(crate) fn reset_clock(&mut self) {
        self.nv.clock = 0;
        self.clock_base_ms = self.platform.now_ms();
        self.v.clock_safe = true;
        self.v.clock_safe_at = 0;
        self.nv_dirty = true;
    }

    /// Sets Clock (TPM2_ClockSet); written to NV with the response.
    pub(crate) fn set_clock(&mut self, clock: u64) {
        self.nv.clock = clock;
        self.clock_base_ms = self.platform.now_ms();
        self.nv_dirty = true;
    }

    fn sync_clock(&mut self) {
        let now = self.platform.now_ms();
        self.nv.clock = self
            .nv
            .clock
            .saturating_add(now.saturating_sub(self.clock_base_ms));
        self.clock_base_ms = now;
    }

    /// Schedules an NV write of Clock when it crossed a CLOCK_UPDATE
    /// boundary since the last write.
    pub(crate) fn note_clock_interval(&mut self) {
        if self.powered && self.clock_ms() / CLOCK_UPDATE_MS != self.nv.clock / CLOCK_UPDATE_MS {
            self.nv_dirty = true;
        }
    }

    /// Marks NV as changed; it is committed before the response leaves.
    pub(crate) fn mark_nv_dirty(&mut self) {
        self.nv_dirty = true;
    }

    /// Commits NV now if it changed (outside command processing).
    pub(crate) fn commit_nv_now(&mut self) -> Result<(), NvError> {
        self.commit_nv()
    }

    /// Commits NV if it changed.
    fn commit_nv(&mut self) -> Result<(), NvError> {
        if !self.nv_dirty {
            return Ok(());
        }
        self.sync_clock();
        let mut image = self.nv.to_bytes();
        let r = self.platform.commit_nv(&image);
        image.zeroize();
        r?;
        self.nv_dirty = false;
        if self.nv.clock >= self.v.clock_safe_at {
            self.v.clock_safe = true;
        }
        Ok(())
    }

    /// Proof of a hierarchy (for tickets).
    pub(crate) fn hierarchy_proof(&self, hierarchy: u32) -> Option<&[u8; PROOF_SIZE]> {
        use vtpm_wire::constants::handle::*;
        match hierarchy {
            RH_OWNER => Some(&self.nv.sh_proof),
            RH_ENDORSEMENT => Some(&self.nv.eh_proof),
            RH_PLATFORM => Some(&self.nv.ph_proof),
            RH_NULL => Some(&self.v.null_proof),
            _ => None,
        }
    }

    /// Uses `pool` for the RSA keys of ordinary objects (TPM2_Create of an
    /// RSA key of the pool's size takes a pre-generated key).
    pub fn set_rsa_pool(&mut self, pool: Option<std::sync::Arc<crypto::rsa::RsaKeyPool>>) {
        self.rsa_pool = pool;
    }

    /// The primary seed of a hierarchy. The null hierarchy's seed is
    /// KDFa(SHA-512, nullProof, "NULL SEED", ∅, ∅, 512): both change at
    /// every TPM Reset and nothing else.
    pub(crate) fn primary_seed(&self, hierarchy: u32) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        use vtpm_wire::constants::handle::*;
        let z = |s: &[u8]| zeroize::Zeroizing::new(s.to_vec());
        match hierarchy {
            RH_OWNER => Some(z(&self.nv.sps)),
            RH_ENDORSEMENT => Some(z(&self.nv.eps)),
            RH_PLATFORM => Some(z(&self.nv.pps)),
            RH_NULL => Some(crypto::kdf::kdfa(
                crypto::hash::HashAlg::Sha512,
                &self.v.null_proof,
                b"NULL SEED",
                &[],
                &[],
                512,
            )),
            _ => None,
        }
    }

    /// The key object at a transient or persistent handle.
    pub(crate) fn object(&self, h: u32) -> Option<&keys::KeyObject> {
        use vtpm_wire::constants::handle::*;
        match handle_type(h) {
            HT_TRANSIENT => self.v.objects.get(h).and_then(|o| o.key()),
            HT_PERSISTENT => self.nv.persistent.get(&h),
            _ => None,
        }
    }

    /// Is `hierarchy` enabled (TPMI_RH_HIERARCHY+ checks)?
    pub(crate) fn hierarchy_enabled(&self, hierarchy: u32) -> bool {
        use vtpm_wire::constants::handle::*;
        match hierarchy {
            RH_OWNER => self.v.sh_enable,
            RH_ENDORSEMENT => self.v.eh_enable,
            RH_PLATFORM => self.v.ph_enable,
            RH_NULL => true,
            _ => false,
        }
    }
}
