//! TPM2_EvictControl (Part 3 §28.5): makes a loaded object persistent, or
//! removes a persistent object. Persistent objects live in the NV state,
//! which is committed before the response is sent.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::handle;
use vtpm_wire::object::object_attr as oa;
use vtpm_wire::rc::TpmRc;

/// TPM2_EvictControl.
pub struct EvictControl;

/// How many persistent objects the TPM holds (TPM_PT_HR_PERSISTENT_MIN is
/// 7; vtpm has room for more).
pub const MAX_PERSISTENT: usize = 64;
/// First owner persistent handle.
pub const OWNER_PERSISTENT_FIRST: u32 = 0x8100_0000;
/// First platform persistent handle.
pub const PLATFORM_PERSISTENT_FIRST: u32 = 0x8180_0000;
/// Last persistent handle.
pub const PERSISTENT_LAST: u32 = 0x81FF_FFFF;

impl Command for EvictControl {
    /// persistentHandle (TPMI_DH_PERSISTENT).
    type In = u32;

    fn read(p: &mut Params<'_>) -> Result<u32, TpmRc> {
        p.with(|r| {
            let h = r.u32()?;
            if (OWNER_PERSISTENT_FIRST..=PERSISTENT_LAST).contains(&h) {
                Ok(h)
            } else {
                Err(vtpm_wire::codec::WireError::Value)
            }
        })
    }

    fn action(tpm: &mut Tpm, call: &Call, persistent: u32, _out: &mut Output) -> Result<(), TpmRc> {
        let auth = call.handles[0];
        let h = call.handles[1];
        let obj = tpm.object(h).ok_or(TpmRc::HANDLE.with_handle(2))?.clone();
        // The owner manages the owner's and endorsement's objects, the
        // platform its own.
        let platform_object = obj.hierarchy == handle::RH_PLATFORM;
        if (auth == handle::RH_OWNER) == platform_object {
            return Err(TpmRc::HIERARCHY.with_handle(2));
        }
        if handle::handle_type(h) == handle::HT_PERSISTENT {
            if persistent != h {
                return Err(TpmRc::HANDLE.with_parameter(1));
            }
            tpm.nv.persistent.remove(&h);
            tpm.mark_nv_dirty();
            return Ok(());
        }
        // Temporary (null hierarchy, external), stClear and public-only
        // objects cannot be made persistent.
        if obj.has(oa::ST_CLEAR)
            || obj.sensitive.is_none()
            || obj.external
            || obj.hierarchy == handle::RH_NULL
        {
            return Err(TpmRc::ATTRIBUTES.with_handle(2));
        }
        let in_range = if auth == handle::RH_OWNER {
            persistent < PLATFORM_PERSISTENT_FIRST
        } else {
            persistent >= PLATFORM_PERSISTENT_FIRST
        };
        if !in_range {
            return Err(TpmRc::RANGE.with_parameter(1));
        }
        if tpm.nv.persistent.contains_key(&persistent) {
            return Err(TpmRc::NV_DEFINED);
        }
        if tpm.nv.persistent.len() >= MAX_PERSISTENT {
            return Err(TpmRc::NV_SPACE);
        }
        tpm.nv.persistent.insert(persistent, obj);
        tpm.mark_nv_dirty();
        Ok(())
    }
}
