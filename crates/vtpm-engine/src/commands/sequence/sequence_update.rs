//! TPM2_SequenceUpdate (Part 3 §17.4).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::objects::Object;
use vtpm_wire::constants::TPM_GENERATED_VALUE;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::MaxBuffer;

/// TPM2_SequenceUpdate.
pub struct SequenceUpdate;

impl Command for SequenceUpdate {
    /// buffer.
    type In = MaxBuffer;

    fn read(p: &mut Params<'_>) -> Result<MaxBuffer, TpmRc> {
        p.read()
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        buffer: MaxBuffer,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let [sequence, ..] = call.handles;
        match tpm.v.objects.get_mut(sequence) {
            Some(Object::HashSequence {
                hasher,
                first_block,
                ticket_safe,
                ..
            }) => {
                // A sequence whose data starts like a TPM-generated structure
                // gets no ticket.
                if *first_block
                    && buffer
                        .as_bytes()
                        .starts_with(&TPM_GENERATED_VALUE.to_be_bytes())
                {
                    *ticket_safe = false;
                }
                if !buffer.is_empty() {
                    *first_block = false;
                }
                hasher.update(buffer.as_bytes());
                Ok(())
            }
            Some(Object::EventSequence { hashers, .. }) => {
                for h in hashers.iter_mut() {
                    h.update(buffer.as_bytes());
                }
                Ok(())
            }
            Some(Object::HmacSequence { state, .. }) => {
                state.update(buffer.as_bytes());
                Ok(())
            }
            Some(Object::Key(_)) | None => Err(TpmRc::MODE.with_handle(1)),
        }
    }
}
