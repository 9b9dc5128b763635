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

    /// NvWriteAccessChecks: may `by` write this index? (Locks are checked
    /// by the caller.)
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

    /// NvReadAccessChecks.
    pub(crate) fn nv_read_allowed(index: &NvIndex, by: NvAuthBy) -> Result<(), TpmRc> {
        let needed = match by {
            NvAuthBy::Owner => nv_attr::OWNERREAD,
            NvAuthBy::Platform => nv_attr::PPREAD,
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
