//! TPM2_PCR_Allocate (Part 3 §22.5).

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::YES;
use vtpm_wire::profile::IMPLEMENTATION_PCR;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::PcrSelectionList;

/// TPM2_PCR_Allocate.
pub struct PcrAllocate;

/// PCR memory available to banks: every PCR in every implemented bank, so
/// any allocation fits.
fn size_available() -> u32 {
    let per_pcr: usize = HashAlg::ALL.iter().map(|a| a.size()).sum();
    u32::try_from(per_pcr * IMPLEMENTATION_PCR).unwrap_or(u32::MAX)
}

impl Command for PcrAllocate {
    /// pcrAllocation.
    type In = PcrSelectionList;

    fn read(p: &mut Params<'_>) -> Result<PcrSelectionList, TpmRc> {
        p.read()
    }

    fn action(
        tpm: &mut Tpm,
        _call: &Call,
        request: PcrSelectionList,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        // Banks not named keep their allocation; a bank named twice takes the
        // last selection.
        let mut new = tpm.nv.pcr_allocation.clone();
        for sel in &request.0 {
            if let Some(slot) = new.0.iter_mut().find(|s| s.hash == sel.hash) {
                slot.select = sel.select;
                slot.size_of_select = vtpm_wire::profile::PCR_SELECT_MAX as u8;
            }
        }
        let size_needed: usize = new
            .0
            .iter()
            .filter_map(|s| HashAlg::from_alg(s.hash).map(|a| a.size() * s.pcrs().count()))
            .sum();
        let size_needed = u32::try_from(size_needed).unwrap_or(u32::MAX);
        let available = size_available();
        let success = size_needed <= available;
        if success {
            // Takes effect at the next TPM Reset; until then Shutdown(STATE)
            // is refused.
            tpm.nv.pcr_allocation = new;
            tpm.v.pcr_reconfig = true;
            tpm.mark_nv_dirty();
        }
        out.params.u8(if success { YES } else { 0 });
        out.params.u32(IMPLEMENTATION_PCR as u32);
        out.params.u32(size_needed);
        out.params.u32(available);
        Ok(())
    }
}
