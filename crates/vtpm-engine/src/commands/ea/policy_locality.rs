//! TPM2_PolicyLocality (Part 3 §23.8): the authorized command must come
//! from one of the given localities. policyDigest ≔ H(policyDigest ||
//! TPM_CC_PolicyLocality || locality).
//!
//! TPMA_LOCALITY values below 32 are a set of localities 0-4 (successive
//! calls intersect them); values from 32 name one extended locality. Zero,
//! an empty intersection, or mixing the two kinds is TPM_RC_RANGE.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;

/// TPM2_PolicyLocality.
pub struct PolicyLocality;

impl Command for PolicyLocality {
    /// locality (TPMA_LOCALITY).
    type In = u8;

    fn read(p: &mut Params<'_>) -> Result<u8, TpmRc> {
        p.with(|r| r.u8())
    }

    fn action(tpm: &mut Tpm, call: &Call, locality: u8, _out: &mut Output) -> Result<(), TpmRc> {
        let range = TpmRc::RANGE.with_parameter(1);
        let session = tpm.policy_session_mut(call.handles[0], 1)?;
        let new = combine(session.locality, locality).ok_or(range)?;
        session.policy_update(CommandCode::PolicyLocality.0, &[locality], None);
        session.locality = new;
        Ok(())
    }
}

/// The session's locality setting after adding `locality` to `previous`
/// (0: none yet), or `None` when the combination is not allowed.
fn combine(previous: u8, locality: u8) -> Option<u8> {
    if locality == 0 || (previous != 0 && (previous < 32) != (locality < 32)) {
        return None;
    }
    if locality < 32 {
        let start = if previous == 0 { 0x1F } else { previous };
        Some(start & locality).filter(|&l| l != 0)
    } else {
        (previous == 0 || previous == locality).then_some(locality)
    }
}

/// Does a session locality setting (0: none) allow a command at
/// `locality`?
pub(crate) fn locality_allows(setting: u8, locality: u8) -> bool {
    match setting {
        0 => true,
        s if s < 32 => locality < 5 && s & (1 << locality) != 0,
        s => s == locality,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localities_intersect() {
        assert_eq!(combine(0, 0x03), Some(0x03));
        assert_eq!(combine(0x03, 0x06), Some(0x02));
        assert_eq!(combine(0x01, 0x02), None);
        assert_eq!(combine(0, 0), None);
        assert_eq!(combine(0, 40), Some(40));
        assert_eq!(combine(40, 40), Some(40));
        assert_eq!(combine(40, 41), None);
        assert_eq!(combine(0x01, 40), None);
        assert_eq!(combine(40, 0x01), None);
        assert!(locality_allows(0, 3));
        assert!(locality_allows(0x09, 3));
        assert!(!locality_allows(0x09, 1));
        assert!(locality_allows(40, 40));
        assert!(!locality_allows(40, 0));
    }
}
