//! The TPM's NV state (what survives power loss) and its versioned, explicit
//! serialization: every field is written by hand in a fixed order after a
//! magic and a version, never by serde of in-memory structures.

use crate::keys::KeyObject;
use crate::nv::NvIndex;
use crate::pcr::{PcrValues, STATE_SAVE_PCRS};
use std::collections::BTreeMap;
use vtpm_wire::codec::{Marshal, Reader, Unmarshal, WireError, Writer};
use vtpm_wire::profile;
use vtpm_wire::types::{PcrSelection, PcrSelectionList};
use zeroize::{Zeroize, Zeroizing};

/// Magic at the start of an NV image.
pub const NV_MAGIC: [u8; 4] = *b"VTNV";
/// Current NV image version. Versions 1 (no primary seeds, hierarchy
/// policies or persistent objects; its seeds are made at the next start)
/// and 2 (no lockoutAuth state or DA-used flag) and 3 (no NV counter
/// maximum) are still read.
pub const NV_VERSION: u16 = 5;

/// The default command audit hash algorithm (TPM_ALG_SHA256).
pub const AUDIT_ALG_DEFAULT: u16 = 0x000B;
/// TPM_CC_SetCommandCodeAuditStatus, always audited.
pub const CC_SET_COMMAND_CODE_AUDIT_STATUS: u32 = 0x0000_0140;
/// Size of the primary seeds (EPS, SPS, PPS and the null seed).
pub const SEED_SIZE: usize = 64;
/// Size of the hierarchy proofs.
pub const PROOF_SIZE: usize = 32;

/// Why an NV image could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    /// The image does not start with the magic.
    #[error("the NV image has no vtpm magic")]
    Magic,
    /// The image was written by a newer version.
    #[error("the NV image has version {0}, this vtpm reads up to version {NV_VERSION}")]
    Version(u16),
    /// The image is truncated or malformed.
    #[error("the NV image is malformed: {0}")]
    Malformed(#[from] WireError),
}

/// Shutdown state recorded in NV (TPM_SU or none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Orderly {
    /// The last power cycle ended without TPM2_Shutdown.
    None,
    /// TPM2_Shutdown(CLEAR).
    Clear,
    /// TPM2_Shutdown(STATE).
    State,
}

/// Dictionary-attack parameters and counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaState {
    /// maxTries.
    pub max_tries: u32,
    /// recoveryTime (seconds).
    pub recovery_time: u32,
    /// lockoutRecovery (seconds).
    pub lockout_recovery: u32,
    /// failedTries.
    pub failed_tries: u32,
}

impl DaState {
    /// The manufacturer defaults, restored by TPM2_Clear: 3 tries, one
    /// forgiven every 1000 s, lockoutAuth usable again 1000 s after a
    /// failure.
    pub fn manufacturer_default() -> DaState {
        DaState {
            max_tries: 3,
            recovery_time: 1000,
            lockout_recovery: 1000,
            failed_tries: 0,
        }
    }

    /// failedTries has reached maxTries: DA-protected entities are locked
    /// out.
    pub fn in_lockout(&self) -> bool {
        self.failed_tries >= self.max_tries
    }
}

/// A hierarchy's authPolicy (TPM2_SetPrimaryPolicy).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HierarchyPolicy {
    /// hashAlg (TPM_ALG_NULL with an empty digest: no policy).
    pub alg: u16,
    /// authPolicy.
    pub digest: Vec<u8>,
}

/// Volatile state saved by TPM2_Shutdown(STATE) for TPM2_Startup(STATE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedState {
    /// PCR allocation in effect at shutdown.
    pub allocation: PcrSelectionList,
    /// PCR values of the state-saved PCRs.
    pub pcrs: PcrValues,
    /// pcrUpdateCounter.
    pub pcr_counter: u32,
    /// shEnable.
    pub sh_enable: bool,
    /// ehEnable.
    pub eh_enable: bool,
    /// Null hierarchy proof (kept over TPM Restart and Resume).
    pub null_proof: [u8; PROOF_SIZE],
}

/// Everything the TPM keeps in NV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvState {
    /// Endorsement hierarchy proof.
    pub eh_proof: [u8; PROOF_SIZE],
    /// Storage hierarchy proof.
    pub sh_proof: [u8; PROOF_SIZE],
    /// Platform hierarchy proof.
    pub ph_proof: [u8; PROOF_SIZE],
    /// ownerAuth.
    pub owner_auth: Vec<u8>,
    /// endorsementAuth.
    pub endorsement_auth: Vec<u8>,
    /// lockoutAuth.
    pub lockout_auth: Vec<u8>,
    /// PCR allocation, applied at the next TPM Reset.
    pub pcr_allocation: PcrSelectionList,
    /// Clock (ms) as of the last commit.
    pub clock: u64,
    /// resetCount.
    pub reset_count: u32,
    /// restartCount.
    pub restart_count: u32,
    /// How the last power cycle ended.
    pub orderly: Orderly,
    /// Dictionary-attack state.
    pub da: DaState,
    /// The TPM_ACCESS tpmEstablishment flag.
    pub tpm_established: bool,
    /// Saved volatile state of TPM2_Shutdown(STATE).
    pub saved: Option<SavedState>,
    /// NV indices by handle.
    pub nv_indices: BTreeMap<u32, NvIndex>,
    /// A volatile state kept by STORE_VOLATILE, used once at the next
    /// power-on.
    pub stored_volatile: Option<Zeroizing<Vec<u8>>>,
    /// Endorsement primary seed.
    pub eps: [u8; SEED_SIZE],
    /// Storage primary seed.
    pub sps: [u8; SEED_SIZE],
    /// Platform primary seed.
    pub pps: [u8; SEED_SIZE],
    /// ownerPolicy.
    pub owner_policy: HierarchyPolicy,
    /// endorsementPolicy.
    pub endorsement_policy: HierarchyPolicy,
    /// lockoutPolicy.
    pub lockout_policy: HierarchyPolicy,
    /// disableClear (TPM2_ClearControl).
    pub disable_clear: bool,
    /// Persistent objects by handle (TPM2_EvictControl).
    pub persistent: BTreeMap<u32, KeyObject>,
    /// Use of lockoutAuth is enabled (cleared by a failed lockoutAuth
    /// authorization until lockoutRecovery has passed).
    pub lockout_auth_enabled: bool,
    /// A DA-protected entity was authorized since the last Startup: if
    /// this cycle ends without TPM2_Shutdown, the next Startup counts a
    /// failure.
    pub da_used: bool,
    /// The largest value any NV counter index has had (a counter's first
    /// TPM2_NV_Increment starts above it). Version 4.
    pub max_counter: u64,
    /// Command audit (Part 1 §33): the audit digest's hash algorithm.
    pub audit_alg: u16,
    /// The audited command codes, ascending.
    pub audit_commands: Vec<u32>,
    /// The command audit digest (empty: reset).
    pub command_audit_digest: Vec<u8>,
    /// The audit counter.
    pub audit_counter: u64,
    /// Read from a version-1 image, which had no seeds: they are made at
    /// the next start (not written).
    pub seeds_missing: bool,
}

impl PartialEq for KeyObject {
    fn eq(&self, other: &Self) -> bool {
        self.public == other.public
            && self.sensitive == other.sensitive
            && self.qualified_name == other.qualified_name
            && self.hierarchy == other.hierarchy
    }
}

impl Eq for KeyObject {}

impl Drop for NvState {
    fn drop(&mut self) {
        self.eh_proof.zeroize();
        self.sh_proof.zeroize();
        self.ph_proof.zeroize();
        self.owner_auth.zeroize();
        self.endorsement_auth.zeroize();
        self.lockout_auth.zeroize();
        self.eps.zeroize();
        self.sps.zeroize();
        self.pps.zeroize();
    }
}

/// The default PCR allocation: SHA-1 and SHA-256, all PCRs.
pub fn default_allocation() -> PcrSelectionList {
    let all = 0..profile::IMPLEMENTATION_PCR;
    PcrSelectionList(
        profile::HASH_ALGS
            .iter()
            .map(|&alg| {
                let on = alg == vtpm_wire::constants::AlgId::SHA1
                    || alg == vtpm_wire::constants::AlgId::SHA256;
                PcrSelection::new(alg, all.clone().filter(|_| on))
            })
            .collect(),
    )
}

impl NvState {
    /// A freshly manufactured TPM: proofs from `entropy`, defaults elsewhere.
    pub fn manufacture(entropy: &mut dyn FnMut(&mut [u8])) -> NvState {
        let mut p = [[0u8; PROOF_SIZE]; 3];
        for proof in p.iter_mut() {
            entropy(proof);
        }
        let mut seeds = [[0u8; SEED_SIZE]; 3];
        for seed in seeds.iter_mut() {
            entropy(seed);
        }
        NvState {
            eh_proof: p[0],
            sh_proof: p[1],
            ph_proof: p[2],
            owner_auth: Vec::new(),
            endorsement_auth: Vec::new(),
            lockout_auth: Vec::new(),
            pcr_allocation: default_allocation(),
            clock: 0,
            reset_count: 0,
            restart_count: 0,
            orderly: Orderly::Clear,
            da: DaState::manufacturer_default(),
            tpm_established: false,
            saved: None,
            nv_indices: BTreeMap::new(),
            stored_volatile: None,
            eps: seeds[0],
            sps: seeds[1],
            pps: seeds[2],
            owner_policy: HierarchyPolicy::default(),
            endorsement_policy: HierarchyPolicy::default(),
            lockout_policy: HierarchyPolicy::default(),
            disable_clear: false,
            persistent: BTreeMap::new(),
            lockout_auth_enabled: true,
            da_used: false,
            max_counter: 0,
            audit_alg: AUDIT_ALG_DEFAULT,
            audit_commands: vec![CC_SET_COMMAND_CODE_AUDIT_STATUS],
            command_audit_digest: Vec::new(),
            audit_counter: 0,
            seeds_missing: false,
        }
    }

    /// The NV image.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(1024);
        w.bytes(&NV_MAGIC);
        w.u16(NV_VERSION);
        w.bytes(&self.eh_proof);
        w.bytes(&self.sh_proof);
        w.bytes(&self.ph_proof);
        for a in [&self.owner_auth, &self.endorsement_auth, &self.lockout_auth] {
            w.sized_u16(|w| w.bytes(a));
        }
        self.pcr_allocation.marshal(&mut w);
        w.u64(self.clock);
        w.u32(self.reset_count);
        w.u32(self.restart_count);
        w.u8(match self.orderly {
            Orderly::None => 0,
            Orderly::Clear => 1,
            Orderly::State => 2,
        });
        w.u32(self.da.max_tries);
        w.u32(self.da.recovery_time);
        w.u32(self.da.lockout_recovery);
        w.u32(self.da.failed_tries);
        w.u8(u8::from(self.tpm_established));
        match &self.saved {
            None => w.u8(0),
            Some(s) => {
                w.u8(1);
                s.allocation.marshal(&mut w);
                s.pcrs.marshal(&mut w);
                w.u32(s.pcr_counter);
                w.u8(u8::from(s.sh_enable));
                w.u8(u8::from(s.eh_enable));
                w.bytes(&s.null_proof);
            }
        }
        w.u32(u32::try_from(self.nv_indices.len()).unwrap_or(u32::MAX));
        for index in self.nv_indices.values() {
            index.marshal(&mut w);
        }
        match &self.stored_volatile {
            None => w.u8(0),
            Some(v) => {
                w.u8(1);
                w.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
                w.bytes(v);
            }
        }
        // Version 2.
        w.bytes(&self.eps);
        w.bytes(&self.sps);
        w.bytes(&self.pps);
        for p in [
            &self.owner_policy,
            &self.endorsement_policy,
            &self.lockout_policy,
        ] {
            w.u16(p.alg);
            w.sized_u16(|w| w.bytes(&p.digest));
        }
        w.u8(u8::from(self.disable_clear));
        w.u32(u32::try_from(self.persistent.len()).unwrap_or(u32::MAX));
        for (h, o) in &self.persistent {
            w.u32(*h);
            o.write(&mut w);
        }
        // Version 3.
        w.u8(u8::from(self.lockout_auth_enabled));
        w.u8(u8::from(self.da_used));
        // Version 4.
        w.u64(self.max_counter);
        // Version 5.
        w.u16(self.audit_alg);
        w.u32(u32::try_from(self.audit_commands.len()).unwrap_or(u32::MAX));
        for cc in &self.audit_commands {
            w.u32(*cc);
        }
        w.sized_u16(|w| w.bytes(&self.command_audit_digest));
        w.u64(self.audit_counter);
        w.into_vec()
    }

    /// Parses an NV image.
    pub fn from_bytes(image: &[u8]) -> Result<NvState, StateError> {
        let mut r = Reader::new(image);
        if r.take(4).map_err(|_| StateError::Magic)? != NV_MAGIC {
            return Err(StateError::Magic);
        }
        let version = r.u16()?;
        if !(1..=NV_VERSION).contains(&version) {
            return Err(StateError::Version(version));
        }
        let eh_proof = r.array()?;
        let sh_proof = r.array()?;
        let ph_proof = r.array()?;
        let mut auths = Vec::with_capacity(3);
        for _ in 0..3 {
            let n = usize::from(r.u16()?);
            if n > profile::MAX_DIGEST_SIZE {
                return Err(WireError::Size.into());
            }
            auths.push(r.take(n)?.to_vec());
        }
        let pcr_allocation = PcrSelectionList::unmarshal(&mut r)?;
        let clock = r.u64()?;
        let reset_count = r.u32()?;
        let restart_count = r.u32()?;
        let orderly = match r.u8()? {
            0 => Orderly::None,
            1 => Orderly::Clear,
            2 => Orderly::State,
            _ => return Err(WireError::Value.into()),
        };
        let da = DaState {
            max_tries: r.u32()?,
            recovery_time: r.u32()?,
            lockout_recovery: r.u32()?,
            failed_tries: r.u32()?,
        };
        let tpm_established = read_bool(&mut r)?;
        let saved = match r.u8()? {
            0 => None,
            1 => Some(SavedState {
                allocation: PcrSelectionList::unmarshal(&mut r)?,
                pcrs: PcrValues::unmarshal(&mut r)?,
                pcr_counter: r.u32()?,
                sh_enable: read_bool(&mut r)?,
                eh_enable: read_bool(&mut r)?,
                null_proof: r.array()?,
            }),
            _ => return Err(WireError::Value.into()),
        };
        let count = r.u32()?;
        let mut nv_indices = BTreeMap::new();
        for _ in 0..count {
            // Each index takes bytes, so a count larger than the image ends
            // in Insufficient before much is allocated.
            let index = NvIndex::unmarshal(&mut r)?;
            if nv_indices.insert(index.public.nv_index, index).is_some() {
                return Err(WireError::Value.into());
            }
        }
        let stored_volatile = match r.u8()? {
            0 => None,
            1 => {
                let n = usize::try_from(r.u32()?).map_err(|_| WireError::Size)?;
                Some(Zeroizing::new(r.take(n)?.to_vec()))
            }
            _ => return Err(WireError::Value.into()),
        };
        let mut seeds = [[0u8; SEED_SIZE]; 3];
        let mut policies = [
            HierarchyPolicy::default(),
            HierarchyPolicy::default(),
            HierarchyPolicy::default(),
        ];
        let mut disable_clear = false;
        let mut persistent = BTreeMap::new();
        if version >= 2 {
            for seed in seeds.iter_mut() {
                *seed = r.array()?;
            }
            for p in policies.iter_mut() {
                p.alg = r.u16()?;
                let n = usize::from(r.u16()?);
                if n > profile::MAX_DIGEST_SIZE {
                    return Err(WireError::Size.into());
                }
                p.digest = r.take(n)?.to_vec();
            }
            disable_clear = read_bool(&mut r)?;
            for _ in 0..r.u32()? {
                let h = r.u32()?;
                let o = KeyObject::read(&mut r)?;
                if persistent.insert(h, o).is_some() {
                    return Err(WireError::Value.into());
                }
            }
        }
        let (lockout_auth_enabled, da_used) = if version >= 3 {
            (read_bool(&mut r)?, read_bool(&mut r)?)
        } else {
            (true, false)
        };
        // A version-3 image has no counter maximum: the largest counter it
        // holds stands in for it.
        let max_counter = if version >= 4 {
            r.u64()?
        } else {
            nv_indices
                .values()
                .filter(|i| {
                    i.nt() == vtpm_wire::types::nv_attr::NT_COUNTER
                        && i.has(vtpm_wire::types::nv_attr::WRITTEN)
                })
                .map(NvIndex::u64_data)
                .max()
                .unwrap_or(0)
        };
        let (audit_alg, audit_commands, command_audit_digest, audit_counter) = if version >= 5 {
            let alg = r.u16()?;
            let n = r.u32()?;
            let mut list = Vec::new();
            for _ in 0..n {
                list.push(r.u32()?);
            }
            let len = usize::from(r.u16()?);
            let digest = r.take(len)?.to_vec();
            (alg, list, digest, r.u64()?)
        } else {
            (
                AUDIT_ALG_DEFAULT,
                vec![CC_SET_COMMAND_CODE_AUDIT_STATUS],
                Vec::new(),
                0,
            )
        };
        r.finish()?;
        let mut auths = auths.into_iter();
        let [owner_policy, endorsement_policy, lockout_policy] = policies;
        Ok(NvState {
            eh_proof,
            sh_proof,
            ph_proof,
            owner_auth: auths.next().unwrap_or_default(),
            endorsement_auth: auths.next().unwrap_or_default(),
            lockout_auth: auths.next().unwrap_or_default(),
            pcr_allocation,
            clock,
            reset_count,
            restart_count,
            orderly,
            da,
            tpm_established,
            saved,
            nv_indices,
            stored_volatile,
            eps: seeds[0],
            sps: seeds[1],
            pps: seeds[2],
            owner_policy,
            endorsement_policy,
            lockout_policy,
            disable_clear,
            persistent,
            lockout_auth_enabled,
            da_used,
            max_counter,
            audit_alg,
            audit_commands,
            command_audit_digest,
            audit_counter,
            seeds_missing: version < 2,
        })
    }
}

fn read_bool(r: &mut Reader<'_>) -> Result<bool, WireError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(WireError::Value),
    }
}

/// Which state-saved PCRs a saved state may carry.
pub fn is_state_saved(pcr: usize) -> bool {
    STATE_SAVE_PCRS.contains(&pcr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NvState {
        let mut n = 0u8;
        let mut st = NvState::manufacture(&mut |b: &mut [u8]| {
            for x in b.iter_mut() {
                n = n.wrapping_add(1);
                *x = n;
            }
        });
        st.owner_auth = b"owner".to_vec();
        st.clock = 123_456;
        st.reset_count = 7;
        st.orderly = Orderly::State;
        st.da.failed_tries = 2;
        st.lockout_auth_enabled = false;
        st.da_used = true;
        st.max_counter = 0x0102_0304_0506_0708;
        let mut pcrs = PcrValues::default();
        pcrs.set(crate::crypto::hash::HashAlg::Sha256, 3, &[0xab; 32]);
        st.saved = Some(SavedState {
            allocation: default_allocation(),
            pcrs,
            pcr_counter: 9,
            sh_enable: true,
            eh_enable: false,
            null_proof: [5; PROOF_SIZE],
        });
        st
    }

    #[test]
    fn nv_image_round_trips() {
        let st = sample();
        let bytes = st.to_bytes();
        assert_eq!(&bytes[..4], b"VTNV");
        assert_eq!(NvState::from_bytes(&bytes), Ok(st));
    }

    #[test]
    fn every_truncation_and_bad_header_is_refused() {
        let bytes = sample().to_bytes();
        for n in 0..bytes.len() {
            assert!(
                NvState::from_bytes(&bytes[..n]).is_err(),
                "prefix {n} accepted"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(NvState::from_bytes(&longer).is_err());
        let mut bad_magic = bytes.clone();
        bad_magic[0] ^= 1;
        assert_eq!(NvState::from_bytes(&bad_magic), Err(StateError::Magic));
        let mut newer = bytes;
        newer[5] = 99;
        newer[4] = 0;
        assert_eq!(NvState::from_bytes(&newer), Err(StateError::Version(99)));
    }

    #[test]
    fn version_4_images_are_read_with_default_command_audit() {
        let mut st = sample();
        st.audit_alg = 0x000C;
        st.audit_commands = vec![0x140, 0x17B];
        st.command_audit_digest = vec![7; 48];
        st.audit_counter = 9;
        let full = st.to_bytes();
        assert_eq!(NvState::from_bytes(&full), Ok(st.clone()));
        let mut bytes = full;
        // alg 2 + count 4 + 2 codes 8 + sized digest 2+48 + counter 8.
        bytes.truncate(bytes.len() - (2 + 4 + 8 + 2 + 48 + 8));
        bytes[4..6].copy_from_slice(&4u16.to_be_bytes());
        st.audit_alg = AUDIT_ALG_DEFAULT;
        st.audit_commands = vec![CC_SET_COMMAND_CODE_AUDIT_STATUS];
        st.command_audit_digest.clear();
        st.audit_counter = 0;
        assert_eq!(NvState::from_bytes(&bytes), Ok(st));
    }

    #[test]
    fn version_3_images_are_read_without_counter_maximum() {
        let mut st = sample();
        let mut bytes = st.to_bytes();
        bytes.truncate(bytes.len() - (2 + 4 + 4 + 2 + 8));
        bytes[4..6].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(NvState::from_bytes(&bytes), Ok(st.clone()));
        let mut bytes = st.to_bytes();
        bytes.truncate(bytes.len() - (2 + 4 + 4 + 2 + 8));
        bytes.truncate(bytes.len() - 8);
        bytes[4..6].copy_from_slice(&3u16.to_be_bytes());
        st.max_counter = 0;
        assert_eq!(NvState::from_bytes(&bytes), Ok(st));
    }

    #[test]
    fn version_2_images_are_read_with_lockout_auth_enabled() {
        let mut st = sample();
        st.max_counter = 0;
        let mut bytes = st.to_bytes();
        bytes.truncate(bytes.len() - (2 + 4 + 4 + 2 + 8));
        bytes.truncate(bytes.len() - 8);
        // A version-2 image is a version-3 image without its last two
        // bytes (lockoutAuth enabled, DA used).
        bytes.truncate(bytes.len() - 2);
        bytes[4..6].copy_from_slice(&2u16.to_be_bytes());
        st.lockout_auth_enabled = true;
        st.da_used = false;
        assert_eq!(NvState::from_bytes(&bytes), Ok(st));
        // ... and a version-3 reader wants them in a version-3 image.
        bytes[4..6].copy_from_slice(&3u16.to_be_bytes());
        assert!(NvState::from_bytes(&bytes).is_err());
        bytes[4..6].copy_from_slice(&4u16.to_be_bytes());
        assert!(NvState::from_bytes(&bytes).is_err());
    }
}
