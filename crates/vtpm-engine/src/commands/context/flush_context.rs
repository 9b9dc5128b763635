//! TPM2_FlushContext (Part 3 §28.4).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::WireError;
use vtpm_wire::constants::handle;
use vtpm_wire::rc::TpmRc;

/// TPM2_FlushContext.
pub struct FlushContext;

impl Command for FlushContext {
    /// flushHandle (TPMI_DH_CONTEXT: a transient object or a session).
    type In = u32;

    fn read(p: &mut Params<'_>) -> Result<u32, TpmRc> {
        p.with(|r| {
            let h = r.u32()?;
            match handle::handle_type(h) {
                handle::HT_TRANSIENT | handle::HT_HMAC_SESSION | handle::HT_POLICY_SESSION => Ok(h),
                _ => Err(WireError::Value),
            }
        })
    }

    fn action(
        tpm: &mut Tpm,
        _call: &Call,
        flush_handle: u32,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let flushed = match handle::handle_type(flush_handle) {
            handle::HT_TRANSIENT => tpm.v.objects.flush(flush_handle).is_some(),
            _ => tpm.v.sessions.flush(flush_handle).is_some(),
        };
        if flushed {
            Ok(())
        } else {
            Err(TpmRc::HANDLE.with_parameter(1))
        }
    }
}
