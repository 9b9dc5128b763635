//! Part 3 chapter 24: Hierarchy Commands.

pub mod change_eps;
pub mod change_pps;
pub mod clear;
pub mod clear_control;
pub mod create_primary;
pub mod hierarchy_change_auth;
pub mod hierarchy_control;
pub mod set_primary_policy;

use crate::Tpm;
use vtpm_wire::constants::handle;
use vtpm_wire::types::nv_attr;
use zeroize::Zeroize;

impl Tpm {
    /// Overwrites a seed or proof (`slot` picks it) with fresh random
    /// bytes, leaving no copy behind (Clear, ChangeEPS, ChangePPS).
    pub(crate) fn renew_secret<const N: usize>(&mut self, slot: fn(&mut Tpm) -> &mut [u8; N]) {
        let mut fresh = [0u8; N];
        self.random(&mut fresh);
        *slot(self) = fresh;
        fresh.zeroize();
    }

    /// Flushes the loaded objects of `hierarchy` (the reference
    /// implementation's ObjectFlushHierarchy). Sequence objects belong to
    /// no hierarchy and stay.
    pub(crate) fn flush_hierarchy_objects(&mut self, hierarchy: u32) {
        let doomed: Vec<u32> = self
            .v
            .objects
            .handles()
            .filter(|&h| {
                self.v
                    .objects
                    .get(h)
                    .and_then(|o| o.key())
                    .is_some_and(|k| k.hierarchy == hierarchy)
            })
            .collect();
        for h in doomed {
            self.v.objects.flush(h);
        }
    }

    /// Deletes the persistent objects of `hierarchy` and, for the storage
    /// hierarchy, every NV index defined with ownerAuth (TPMA_NV_PLATFORMCREATE
    /// clear) (NvFlushHierarchy).
    pub(crate) fn nv_flush_hierarchy(&mut self, hierarchy: u32) {
        self.nv.persistent.retain(|_, o| o.hierarchy != hierarchy);
        if hierarchy == handle::RH_OWNER {
            self.nv
                .nv_indices
                .retain(|_, i| i.has(nv_attr::PLATFORMCREATE));
        }
        self.mark_nv_dirty();
    }
}
