//! Part 3 chapter 22: Integrity Collection (PCR).

pub mod pcr_allocate;
pub mod pcr_event;
pub mod pcr_extend;
pub mod pcr_read;
pub mod pcr_reset;

use crate::pcr;
use vtpm_wire::constants::handle;
use vtpm_wire::rc::TpmRc;

/// The PCR index of a TPMI_DH_PCR+ handle (`None` for TPM_RH_NULL), after
/// checking that `locality` may extend it.
pub(crate) fn extendable_pcr(pcr_handle: u32, locality: u8) -> Result<Option<usize>, TpmRc> {
    if pcr_handle == handle::RH_NULL {
        return Ok(None);
    }
    let n = usize::try_from(pcr_handle).map_err(|_| TpmRc::VALUE.with_handle(1))?;
    let attrs = pcr::attributes(n).ok_or(TpmRc::VALUE.with_handle(1))?;
    if !pcr::locality_allowed(attrs.extend_localities, locality) {
        return Err(TpmRc::LOCALITY);
    }
    Ok(Some(n))
}
