//! TPM2_ContextLoad (Part 3 §28.3).

use super::context_blob::Saved;
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::handle;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Context;

/// TPM2_ContextLoad.
pub struct ContextLoad;

impl Command for ContextLoad {
    /// context.
    type In = Context;

    fn read(p: &mut Params<'_>) -> Result<Context, TpmRc> {
        p.read()
    }

    fn action(
        tpm: &mut Tpm,
        _call: &Call,
        context: Context,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        if !tpm.hierarchy_enabled(context.hierarchy) {
            return Err(TpmRc::HIERARCHY.with_parameter(1));
        }
        let saved = tpm.open_context(
            context.hierarchy,
            context.sequence,
            context.saved_handle,
            &context.blob,
        )?;
        let is_session = matches!(
            handle::handle_type(context.saved_handle),
            handle::HT_HMAC_SESSION | handle::HT_POLICY_SESSION
        );
        match saved {
            Saved::Session if is_session => {
                tpm.v
                    .sessions
                    .load(context.saved_handle, context.sequence)
                    .map_err(|rc| {
                        if rc == TpmRc::HANDLE {
                            rc.with_parameter(1)
                        } else {
                            rc
                        }
                    })?;
                out.handle = Some(context.saved_handle);
            }
            Saved::Object(object) if !is_session => {
                out.handle = Some(tpm.v.objects.insert(object).ok_or(TpmRc::OBJECT_MEMORY)?);
            }
            // A blob whose kind disagrees with its savedHandle.
            _ => return Err(TpmRc::INTEGRITY.with_parameter(1)),
        }
        Ok(())
    }
}
