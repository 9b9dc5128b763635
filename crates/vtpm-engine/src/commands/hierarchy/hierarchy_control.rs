//! TPM2_HierarchyControl (Part 3 §24.5).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::WireError;
use vtpm_wire::constants::handle;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::read_yes_no;

/// TPM2_HierarchyControl.
pub struct HierarchyControl;

/// Parameters: enable (TPMI_RH_ENABLES) and state.
pub struct HierarchyControlIn {
    enable: u32,
    state: bool,
}

impl Command for HierarchyControl {
    type In = HierarchyControlIn;

    fn read(p: &mut Params<'_>) -> Result<HierarchyControlIn, TpmRc> {
        let enable = p.with(|r| match r.u32()? {
            h @ (handle::RH_OWNER
            | handle::RH_ENDORSEMENT
            | handle::RH_PLATFORM
            | handle::RH_PLATFORM_NV) => Ok(h),
            _ => Err(WireError::Value),
        })?;
        let state = p.with(read_yes_no)?;
        Ok(HierarchyControlIn { enable, state })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: HierarchyControlIn,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let auth = call.handles[0];
        // Only the platform may touch the platform's own enables or enable
        // a disabled hierarchy; owner and endorsement may disable
        // themselves (they cannot be authorized once disabled).
        let allowed = match input.enable {
            handle::RH_PLATFORM | handle::RH_PLATFORM_NV => auth == handle::RH_PLATFORM,
            handle::RH_OWNER => auth == handle::RH_PLATFORM || auth == handle::RH_OWNER,
            _ => auth == handle::RH_PLATFORM || auth == handle::RH_ENDORSEMENT,
        };
        if !allowed {
            return Err(TpmRc::AUTH_TYPE);
        }
        let slot = match input.enable {
            handle::RH_PLATFORM => &mut tpm.v.ph_enable,
            handle::RH_PLATFORM_NV => &mut tpm.v.ph_enable_nv,
            handle::RH_OWNER => &mut tpm.v.sh_enable,
            _ => &mut tpm.v.eh_enable,
        };
        if *slot == input.state {
            return Ok(());
        }
        // The platform hierarchy cannot be re-enabled once disabled (its
        // authorization is gone until the next TPM2_Startup(CLEAR)).
        *slot = input.state;
        // A disabled hierarchy's loaded objects are flushed (its
        // persistent objects and NV indices stay, inaccessible).
        if !input.state && input.enable != handle::RH_PLATFORM_NV {
            tpm.flush_hierarchy_objects(input.enable);
        }
        Ok(())
    }
}
