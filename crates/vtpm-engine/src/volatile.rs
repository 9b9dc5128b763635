//! The TPM's state as blobs for migration and suspend (swtpm's permanent /
//! volatile / savestate blobs, vhost-user device state): the permanent
//! state is the NV image; the volatile state is everything `_TPM_Init`
//! would lose, serialized field by field after a magic and a version.

use crate::objects::Objects;
use crate::pcr::PcrValues;
use crate::session::Sessions;
use crate::state::{NvState, Orderly, PROOF_SIZE, StateError};
use crate::{EngineError, NvError, Tpm, Volatile};
use vtpm_wire::codec::{Reader, Writer};
use vtpm_wire::types::PcrSelectionList;
use vtpm_wire::{Marshal, Unmarshal, WireError};
use zeroize::Zeroizing;

/// Magic of a volatile-state blob.
pub const VOLATILE_MAGIC: [u8; 4] = *b"VTVS";
/// Its version. Version 1 (without platformPolicy and the
/// dictionary-attack time bases) and version 2 (without the policy
/// conditions of sessions) and version 3 (without the conditions of the
/// later policy commands: PolicyPCR … PolicyTemplate) and version 4
/// (without the audit state of sessions and the exclusive audit session)
/// are still read.
pub const VOLATILE_VERSION: u16 = 5;

fn orderly_byte(o: Orderly) -> u8 {
    match o {
        Orderly::None => 0,
        Orderly::Clear => 1,
        Orderly::State => 2,
    }
}

fn read_flag(r: &mut Reader<'_>) -> Result<bool, WireError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(WireError::Value),
    }
}

impl Tpm {
    /// The permanent state: the NV image, Clock brought up to date.
    pub fn permanent_state(&mut self) -> Vec<u8> {
        self.nv_image()
    }

    /// Replaces the permanent state with `image` and commits it.
    pub fn set_permanent_state(&mut self, image: &[u8]) -> Result<(), EngineError> {
        let nv = NvState::from_bytes(image)?;
        self.nv = nv;
        self.mark_nv_dirty();
        self.commit_nv_now()?;
        Ok(())
    }

    /// Everything `_TPM_Init` would lose. Holds secrets (session keys, the
    /// null proof, platformAuth): protect it like the state file.
    pub fn volatile_state(&mut self) -> Vec<u8> {
        let v = &self.v;
        let mut w = Writer::with_capacity(8192);
        w.bytes(&VOLATILE_MAGIC);
        w.u16(VOLATILE_VERSION);
        w.u8(u8::from(self.powered));
        w.u8(u8::from(self.started));
        w.u8(orderly_byte(self.prev_orderly));
        v.allocation.marshal(&mut w);
        v.pcrs.marshal(&mut w);
        w.u32(v.pcr_counter);
        for f in [
            v.ph_enable,
            v.sh_enable,
            v.eh_enable,
            v.ph_enable_nv,
            v.pcr_reconfig,
            v.drtm_pre_startup,
            v.clock_safe,
            v.self_tested,
        ] {
            w.u8(u8::from(f));
        }
        w.sized_u16(|w| w.bytes(&v.platform_auth));
        w.bytes(&v.null_proof);
        w.u64(v.clock_safe_at);
        w.u64(v.context_counter);
        w.u64(self.time_ms());
        v.objects.write(&mut w);
        v.sessions.write(&mut w);
        // Version 2.
        w.u16(v.platform_policy.alg);
        w.sized_u16(|w| w.bytes(&v.platform_policy.digest));
        w.u64(v.self_heal_timer);
        w.u64(v.lockout_timer);
        // Version 5.
        w.u32(v.exclusive_audit_session);
        w.into_vec()
    }

    /// Restores a volatile state: the TPM is powered and exactly as it was
    /// (started or not, PCRs, loaded objects, sessions).
    pub fn set_volatile_state(&mut self, blob: &[u8]) -> Result<(), EngineError> {
        let malformed = |e: WireError| EngineError::State(StateError::Malformed(e));
        let mut r = Reader::new(blob);
        if r.take(4)
            .map_err(|_| EngineError::State(StateError::Magic))?
            != VOLATILE_MAGIC
        {
            return Err(EngineError::State(StateError::Magic));
        }
        let version = r.u16().map_err(malformed)?;
        if !(1..=VOLATILE_VERSION).contains(&version) {
            return Err(EngineError::State(StateError::Version(version)));
        }
        let parse =
            move |r: &mut Reader<'_>| -> Result<(bool, bool, Orderly, Volatile, u64), WireError> {
                let powered = read_flag(r)?;
                let started = read_flag(r)?;
                let prev_orderly = match r.u8()? {
                    0 => Orderly::None,
                    1 => Orderly::Clear,
                    2 => Orderly::State,
                    _ => return Err(WireError::Value),
                };
                let allocation = PcrSelectionList::unmarshal(r)?;
                let mut v = Volatile::new(allocation);
                v.pcrs = PcrValues::unmarshal(r)?;
                v.pcr_counter = r.u32()?;
                v.ph_enable = read_flag(r)?;
                v.sh_enable = read_flag(r)?;
                v.eh_enable = read_flag(r)?;
                v.ph_enable_nv = read_flag(r)?;
                v.pcr_reconfig = read_flag(r)?;
                v.drtm_pre_startup = read_flag(r)?;
                v.clock_safe = read_flag(r)?;
                v.self_tested = read_flag(r)?;
                let n = usize::from(r.u16()?);
                if n > vtpm_wire::profile::MAX_DIGEST_SIZE {
                    return Err(WireError::Size);
                }
                v.platform_auth = r.take(n)?.to_vec();
                v.null_proof = r.array::<PROOF_SIZE>()?;
                v.clock_safe_at = r.u64()?;
                v.context_counter = r.u64()?;
                let time = r.u64()?;
                v.objects = Objects::read(r).ok_or(WireError::Value)?;
                v.sessions = Sessions::read(r, version).ok_or(WireError::Value)?;
                if version >= 2 {
                    v.platform_policy.alg = r.u16()?;
                    let n = usize::from(r.u16()?);
                    if n > vtpm_wire::profile::MAX_DIGEST_SIZE {
                        return Err(WireError::Size);
                    }
                    v.platform_policy.digest = r.take(n)?.to_vec();
                    v.self_heal_timer = r.u64()?;
                    v.lockout_timer = r.u64()?;
                }
                if version >= 5 {
                    v.exclusive_audit_session = r.u32()?;
                }
                Ok((powered, started, prev_orderly, v, time))
            };
        let (powered, started, prev_orderly, v, time) = parse(&mut r).map_err(malformed)?;
        r.finish().map_err(malformed)?;
        self.v = v;
        self.powered = powered;
        self.started = started;
        self.prev_orderly = prev_orderly;
        self.set_time_ms(time);
        Ok(())
    }

    /// Keeps the volatile state in NV (committed), so that a restarted
    /// backend can resume (swtpm's STORE_VOLATILE).
    pub fn store_volatile(&mut self) -> Result<(), NvError> {
        let blob = self.volatile_state();
        self.nv.stored_volatile = Some(Zeroizing::new(blob));
        self.mark_nv_dirty();
        self.commit_nv_now()
    }

    /// After power-on: restores the volatile state kept by
    /// [`Tpm::store_volatile`] (true), or with `delete` discards it. The
    /// stored state is used once.
    pub fn restore_stored_volatile(&mut self, delete: bool) -> Result<bool, EngineError> {
        let Some(blob) = self.nv.stored_volatile.take() else {
            return Ok(false);
        };
        self.mark_nv_dirty();
        self.commit_nv_now()?;
        if delete {
            return Ok(false);
        }
        self.set_volatile_state(&blob)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use crate::state::HierarchyPolicy;
    use crate::{MemoryPlatform, Tpm};

    fn tpm() -> Tpm {
        let mut t = Tpm::new(Box::new(MemoryPlatform::new())).unwrap();
        t.power_on();
        t
    }

    #[test]
    fn platform_policy_and_da_time_bases_round_trip() {
        let mut a = tpm();
        a.v.platform_policy = HierarchyPolicy {
            alg: 0x000B,
            digest: vec![0x42; 32],
        };
        a.v.self_heal_timer = 1234;
        a.v.lockout_timer = 5678;
        let blob = a.volatile_state();
        let mut b = tpm();
        b.set_volatile_state(&blob).unwrap();
        assert_eq!(b.v.platform_policy, a.v.platform_policy);
        assert_eq!(b.v.self_heal_timer, 1234);
        assert_eq!(b.v.lockout_timer, 5678);
        // Every truncation is refused.
        for n in 0..blob.len() {
            assert!(b.set_volatile_state(&blob[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn version_1_blobs_are_read_without_the_new_fields() {
        let mut a = tpm();
        a.v.platform_policy = HierarchyPolicy {
            alg: 0x000B,
            digest: vec![0x42; 32],
        };
        a.v.self_heal_timer = 1234;
        let mut blob = a.volatile_state();
        // Version 2 appended alg(2), digest(2 + 32) and two u64 timers,
        // version 5 the exclusive audit session (4).
        blob.truncate(blob.len() - (2 + 2 + 32 + 8 + 8 + 4));
        blob[4..6].copy_from_slice(&1u16.to_be_bytes());
        let mut b = tpm();
        b.set_volatile_state(&blob).unwrap();
        assert_eq!(b.v.platform_policy, HierarchyPolicy::default());
        assert_eq!(b.v.self_heal_timer, 0);
        blob[4..6].copy_from_slice(&2u16.to_be_bytes());
        assert!(tpm().set_volatile_state(&blob).is_err());
    }

    #[test]
    fn version_5_keeps_the_exclusive_audit_session_and_version_4_is_read() {
        let mut a = tpm();
        a.v.exclusive_audit_session = 0x0200_0001;
        let mut blob = a.volatile_state();
        let mut b = tpm();
        b.set_volatile_state(&blob).unwrap();
        assert_eq!(b.v.exclusive_audit_session, 0x0200_0001);
        // Version 4: without it (no sessions, so the session records are
        // the same).
        blob.truncate(blob.len() - 4);
        blob[4..6].copy_from_slice(&4u16.to_be_bytes());
        let mut c = tpm();
        c.set_volatile_state(&blob).unwrap();
        assert_eq!(
            c.v.exclusive_audit_session,
            vtpm_wire::constants::handle::RH_UNASSIGNED
        );
        blob[4..6].copy_from_slice(&5u16.to_be_bytes());
        assert!(tpm().set_volatile_state(&blob).is_err());
    }
}
