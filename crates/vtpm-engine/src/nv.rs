//! NV indices (Part 1 "NV Memory"): their public areas, authValues and
//! data, kept in the TPM's NV state, and the access rules shared by the NV
//! commands.

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use vtpm_wire::codec::{Marshal, Reader, Unmarshal, WireError, Writer};
use vtpm_wire::constants::handle;
use vtpm_wire::profile;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{NvPublic, nv_attr};
use zeroize::Zeroizing;

/// Largest index data (TPM_PT_NV_INDEX_MAX).
pub const MAX_NV_INDEX_SIZE: usize = 2048;
/// NV memory available to indices, counted as public area + authValue +
/// data + a fixed overhead per index.
pub const NV_MEMORY_SIZE: usize = 128 * 1024;
/// Accounting overhead per index.
const INDEX_OVERHEAD: usize = 32;

/// One NV index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NvIndex {
    /// Its public area (attributes include WRITTEN and the lock bits).
    pub public: NvPublic,
    /// authValue, trailing zeros removed.
    pub auth: Zeroizing<Vec<u8>>,
    /// The data, `dataSize` bytes.
    pub data: Vec<u8>,
}

impl NvIndex {
    /// NV memory this index takes.
    pub fn footprint(&self) -> usize {
        INDEX_OVERHEAD + self.public.to_bytes().len() + self.auth.len() + self.data.len()
    }

    /// Its TPM_NT type.
    pub fn nt(&self) -> u32 {
        nv_attr::nt(self.public.attributes)
    }

    /// Is it a PIN Pass or PIN Fail index?
    pub fn is_pin(&self) -> bool {
        matches!(self.nt(), nv_attr::NT_PIN_FAIL | nv_attr::NT_PIN_PASS)
    }

    /// The data of an 8-byte index (counter, bits, PIN) as a big-endian
    /// UINT64.
    pub fn u64_data(&self) -> u64 {
        <[u8; 8]>::try_from(self.data.as_slice()).map_or(0, u64::from_be_bytes)
    }

    /// Writes the data of an 8-byte index and sets TPMA_NV_WRITTEN.
    pub fn set_u64_data(&mut self, v: u64) {
        self.data = v.to_be_bytes().to_vec();
        self.public.attributes |= nv_attr::WRITTEN;
    }

    /// TPMS_NV_PIN_COUNTER_PARAMETERS of a written PIN index: (pinCount,
    /// pinLimit).
    pub fn pin(&self) -> (u32, u32) {
        let v = self.u64_data();
        ((v >> 32) as u32, v as u32)
    }

    /// Is the authValue of this index usable for authorization now? Part 1
    /// §37.5 / the reference implementation's IsAuthValueAvailable for
    /// operations that are not writes: a PIN index only once written and
    /// while pinCount < pinLimit.
    pub fn pin_auth_available(&self) -> bool {
        if !self.is_pin() {
            return true;
        }
        let (count, limit) = self.pin();
        self.has(nv_attr::WRITTEN) && count < limit
    }

    /// Has the attribute bit(s) `a`?
    pub fn has(&self, a: u32) -> bool {
        self.public.attributes & a == a
    }

    /// The Name: nameAlg || H_nameAlg(TPMS_NV_PUBLIC).
    pub fn name(&self) -> Vec<u8> {
        let alg = HashAlg::from_alg(self.public.name_alg).unwrap_or(HashAlg::Sha256);
        let mut name = self.public.name_alg.0.to_be_bytes().to_vec();
        name.extend(alg.digest(&[&self.public.to_bytes()]));
        name
    }
}

impl Marshal for NvIndex {
    fn marshal(&self, w: &mut Writer) {
        w.sized_u16(|w| self.public.marshal(w));
        w.sized_u16(|w| w.bytes(&self.auth));
        w.sized_u16(|w| w.bytes(&self.data));
    }
}

impl Unmarshal for NvIndex {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let n = usize::from(r.u16()?);
        let mut sub = r.sub(n)?;
        let public = NvPublic::unmarshal(&mut sub)?;
        sub.finish()?;
        let n = usize::from(r.u16()?);
        if n > profile::MAX_DIGEST_SIZE {
            return Err(WireError::Size);
        }
        let auth = Zeroizing::new(r.take(n)?.to_vec());
        let n = usize::from(r.u16()?);
        if n != usize::from(public.data_size) || n > MAX_NV_INDEX_SIZE {
            return Err(WireError::Size);
        }
        let data = r.take(n)?.to_vec();
        Ok(NvIndex { public, auth, data })
    }
}

/// How an NV command is authorized: through a hierarchy or the index's own
/// authorization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NvAuthBy {
    /// TPM_RH_OWNER.
    Owner,
    /// TPM_RH_PLATFORM.
    Platform,
    /// The index itself, with its authValue.
    Index,
    /// The index itself, with a policy session.
    IndexPolicy,
}

impl NvAuthBy {
    /// From a TPMI_RH_NV_AUTH handle and whether a policy session
    /// authorized it.
    pub fn from_handle(h: u32, policy: bool) -> NvAuthBy {
        match h {
            handle::RH_OWNER => NvAuthBy::Owner,
            handle::RH_PLATFORM => NvAuthBy::Platform,
            _ if policy => NvAuthBy::IndexPolicy,
            _ => NvAuthBy::Index,
        }
    }
}

impl Tpm {
    /// The NV index at `h`, if defined.
    pub(crate) fn nv_index(&self, h: u32) -> Option<&NvIndex> {
        self.nv.nv_indices.get(&h)
    }

    /// NV memory in use.
    pub(crate) fn nv_used(&self) -> usize {
        self.nv.nv_indices.values().map(NvIndex::footprint).sum()
    }

    /// Is the index accessible now (its hierarchy enabled)?
    pub(crate) fn nv_accessible(&self, index: &NvIndex) -> bool {
        if index.has(nv_attr::PLATFORMCREATE) {
            self.v.ph_enable_nv
        } else {
            self.v.sh_enable
        }
    }

    /// NvWriteAccessChecks: TPM_RC_NV_LOCKED if write-locked, else may
    /// `by` write this index?
    pub(crate) fn nv_write_checks(index: &NvIndex, by: NvAuthBy) -> Result<(), TpmRc> {
        if index.has(nv_attr::WRITELOCKED) {
            return Err(TpmRc::NV_LOCKED);
        }
        Tpm::nv_write_allowed(index, by)
    }

    /// NvReadAccessChecks: TPM_RC_NV_LOCKED if read-locked, then the
    /// authorization, then TPM_RC_NV_UNINITIALIZED if never written.
    pub(crate) fn nv_read_checks(index: &NvIndex, by: NvAuthBy) -> Result<(), TpmRc> {
        if index.has(nv_attr::READLOCKED) {
            return Err(TpmRc::NV_LOCKED);
        }
        Tpm::nv_read_allowed(index, by)?;
        if !index.has(nv_attr::WRITTEN) {
            return Err(TpmRc::NV_UNINITIALIZED);
        }
        Ok(())
    }

    /// The target index of an NV write command (handles: authHandle,
    /// nvIndex), once NvWriteAccessChecks passed for the authorization
    /// the command carried.
    pub(crate) fn nv_write_target(
        &mut self,
        call: &crate::dispatch::Call,
    ) -> Result<&mut NvIndex, TpmRc> {
        let [auth_handle, nv_index, _] = call.handles;
        let index = self
            .nv
            .nv_indices
            .get_mut(&nv_index)
            .ok_or(TpmRc::HANDLE.with_handle(2))?;
        Tpm::nv_write_checks(
            index,
            NvAuthBy::from_handle(auth_handle, call.policy_auth[0]),
        )?;
        Ok(index)
    }

    /// May `by` write this index? (Locks are checked by the caller.)
    pub(crate) fn nv_write_allowed(index: &NvIndex, by: NvAuthBy) -> Result<(), TpmRc> {
        let needed = match by {
            NvAuthBy::Owner => nv_attr::OWNERWRITE,
            NvAuthBy::Platform => nv_attr::PPWRITE,
            NvAuthBy::Index => nv_attr::AUTHWRITE,
            NvAuthBy::IndexPolicy => nv_attr::POLICYWRITE,
        };
        if index.has(needed) {
            Ok(())
        } else {
            Err(TpmRc::NV_AUTHORIZATION)
        }
    }

    /// May `by` read this index?
    pub(crate) fn nv_read_allowed(index: &NvIndex, by: NvAuthBy) -> Result<(), TpmRc> {
        let needed = match by {
            NvAuthBy::Owner => nv_attr::OWNERREAD,
            NvAuthBy::Platform => nv_attr::PPREAD,
            // A PIN index's authValue authorizes reads whatever AUTHREAD
            // says, while it is available (checked at authorization).
            NvAuthBy::Index if index.is_pin() => return Ok(()),
            NvAuthBy::Index => nv_attr::AUTHREAD,
            NvAuthBy::IndexPolicy => nv_attr::POLICYREAD,
        };
        if index.has(needed) {
            Ok(())
        } else {
            Err(TpmRc::NV_AUTHORIZATION)
        }
    }
}

impl Tpm {
    /// Sets the value of a counter index after an increment and keeps the
    /// largest value any counter has had (Part 1 §37.2.3: a counter's first
    /// increment starts from it).
    pub(crate) fn nv_note_counter(&mut self, value: u64) {
        self.nv.max_counter = self.nv.max_counter.max(value);
    }

    /// NV index state at TPM Reset and TPM Restart (not TPM Resume): read
    /// locks go; write locks go unless WRITEDEFINE made them permanent (a
    /// written WRITEDEFINE index stays locked); CLEAR_STCLEAR indices
    /// become unwritten.
    pub(crate) fn nv_startup_clear(&mut self) {
        let mut changed = false;
        for index in self.nv.nv_indices.values_mut() {
            let before = index.public.attributes;
            let mut a = before & !nv_attr::READLOCKED;
            if a & nv_attr::WRITEDEFINE == 0 || a & nv_attr::WRITTEN == 0 {
                a &= !nv_attr::WRITELOCKED;
            }
            if a & nv_attr::CLEAR_STCLEAR != 0 {
                a &= !nv_attr::WRITTEN;
            }
            if a != before {
                index.public.attributes = a;
                changed = true;
            }
        }
        if changed {
            self.mark_nv_dirty();
        }
    }

    /// Number of counter indices (TPM_PT_NV_COUNTERS).
    pub(crate) fn nv_counters(&self) -> usize {
        self.nv
            .nv_indices
            .values()
            .filter(|i| i.nt() == nv_attr::NT_COUNTER)
            .count()
    }

    /// How many more counter indices fit (TPM_PT_NV_COUNTERS_AVAIL): the
    /// free NV memory over the footprint of the smallest counter index (an
    /// empty authValue and authPolicy).
    pub(crate) fn nv_counters_avail(&self) -> usize {
        // TPMS_NV_PUBLIC: handle 4, nameAlg 2, attributes 4, policy 2 + 0,
        // dataSize 2; data 8.
        let footprint = INDEX_OVERHEAD + 14 + 8;
        NV_MEMORY_SIZE.saturating_sub(self.nv_used()) / footprint
    }
}

impl Tpm {
    /// Counts an authorization with the authValue of `h` (a password or an
    /// HMAC session) if `h` is a written PIN index (Part 1 §37.5, as the
    /// reference implementation does it): a PIN Pass index counts successes
    /// in pinCount; a PIN Fail index counts failures, and a success sets
    /// its pinCount back to zero. Once pinCount reaches pinLimit the
    /// authValue is no longer usable (`NvIndex::pin_auth_available`) until
    /// the index is written again.
    pub(crate) fn nv_pin_auth_result(&mut self, h: u32, success: bool) {
        let Some(index) = self.nv.nv_indices.get_mut(&h) else {
            return;
        };
        if !index.has(nv_attr::WRITTEN) {
            return;
        }
        let (count, limit) = index.pin();
        let new_count = match (index.nt(), success) {
            (nv_attr::NT_PIN_PASS, true) | (nv_attr::NT_PIN_FAIL, false) => count.saturating_add(1),
            (nv_attr::NT_PIN_FAIL, true) => 0,
            _ => return,
        };
        if new_count != count {
            index.set_u64_data((u64::from(new_count) << 32) | u64::from(limit));
            self.mark_nv_dirty();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vtpm_wire::constants::AlgId;
    use vtpm_wire::types::Digest;

    fn index(attributes: u32, data: &[u8]) -> NvIndex {
        NvIndex {
            public: NvPublic {
                nv_index: 0x0150_0000,
                name_alg: AlgId::SHA256,
                attributes,
                auth_policy: Digest::empty(),
                data_size: u16::try_from(data.len()).unwrap_or(0),
            },
            auth: Zeroizing::new(b"pin".to_vec()),
            data: data.to_vec(),
        }
    }

    #[test]
    fn pin_parameters_are_count_then_limit() {
        let pin_pass = nv_attr::NT_PIN_PASS << nv_attr::TPM_NT_SHIFT;
        let i = index(pin_pass | nv_attr::WRITTEN, &[0, 0, 0, 2, 0, 0, 0, 3]);
        assert_eq!(i.pin(), (2, 3));
        assert!(i.pin_auth_available());
        let i = index(pin_pass | nv_attr::WRITTEN, &[0, 0, 0, 3, 0, 0, 0, 3]);
        assert!(!i.pin_auth_available());
        // Unwritten: not usable whatever the data says.
        let i = index(pin_pass, &[0, 0, 0, 0, 0, 0, 0, 3]);
        assert!(!i.pin_auth_available());
        // Other types are not PIN-limited.
        let i = index(nv_attr::NT_COUNTER << nv_attr::TPM_NT_SHIFT, &[0; 8]);
        assert!(i.pin_auth_available());
    }

    #[test]
    fn u64_data_is_big_endian_and_sets_written() {
        let mut i = index(nv_attr::NT_BITS << nv_attr::TPM_NT_SHIFT, &[0xFF; 8]);
        i.set_u64_data(0x0102_0304_0506_0708);
        assert_eq!(i.data, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(i.u64_data(), 0x0102_0304_0506_0708);
        assert!(i.has(nv_attr::WRITTEN));
    }
}
