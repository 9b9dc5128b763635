//! TPM2_ContextSave (Part 3 §28.2).

use super::context_blob::{SAVED_OBJECT, SAVED_SEQUENCE, SAVED_ST_CLEAR, Saved, sensitive};
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::handle;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Context;

/// TPM2_ContextSave.
pub struct ContextSave;

/// Largest distance between the oldest saved session and the newest
/// context (TPM_PT_CONTEXT_GAP_MAX).
pub const CONTEXT_GAP_MAX: u64 = 0xFFFF;

impl Command for ContextSave {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), out: &mut Output) -> Result<(), TpmRc> {
        let h = call.handles[0];
        let sequence = tpm.v.context_counter;
        // Sequence objects and sessions belong to the null hierarchy, keys
        // to their own.
        let mut hierarchy = handle::RH_NULL;
        let (saved_handle, what) = match handle::handle_type(h) {
            handle::HT_TRANSIENT => {
                let copy = tpm.v.objects.get(h).ok_or(TpmRc::REFERENCE_H0)?.clone();
                let saved = match copy.key() {
                    Some(k) => {
                        hierarchy = k.hierarchy;
                        if k.has(vtpm_wire::object::object_attr::ST_CLEAR) {
                            SAVED_ST_CLEAR
                        } else {
                            SAVED_OBJECT
                        }
                    }
                    None => SAVED_SEQUENCE,
                };
                (saved, Saved::Object(copy))
            }
            _ => {
                // Saving a session would leave the oldest saved session too
                // far behind the context counter.
                if tpm
                    .v
                    .sessions
                    .oldest_saved()
                    .is_some_and(|o| sequence.saturating_sub(o) >= CONTEXT_GAP_MAX)
                {
                    return Err(TpmRc::CONTEXT_GAP);
                }
                (h, Saved::Session)
            }
        };
        let blob = tpm.seal_context(
            hierarchy,
            sequence,
            saved_handle,
            &sensitive(sequence, &what),
        )?;
        if let Saved::Session = what
            && !tpm.v.sessions.save(h, sequence)
        {
            return Err(TpmRc::REFERENCE_H0);
        }
        tpm.v.context_counter = sequence.wrapping_add(1);
        out.params.write(&Context {
            sequence,
            saved_handle,
            hierarchy,
            blob,
        });
        Ok(())
    }
}
