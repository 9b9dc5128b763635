//! TPM2_SequenceComplete (Part 3 §17.5): the digest of a hash sequence
//! (with a ticket when the data is safe to sign) or the HMAC of an HMAC
//! sequence (with a NULL ticket).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::objects::Object;
use crate::tickets::null_hashcheck;
use vtpm_wire::constants::TPM_GENERATED_VALUE;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Digest, MaxBuffer, read_hierarchy};

/// TPM2_SequenceComplete.
pub struct SequenceComplete;

/// Parameters: the last buffer and the ticket's hierarchy.
pub struct SequenceCompleteIn {
    buffer: MaxBuffer,
    hierarchy: u32,
}

impl Command for SequenceComplete {
    type In = SequenceCompleteIn;

    fn read(p: &mut Params<'_>) -> Result<SequenceCompleteIn, TpmRc> {
        let buffer = p.read()?;
        let hierarchy = p.with(|r| read_hierarchy(r, true))?;
        Ok(SequenceCompleteIn { buffer, hierarchy })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: SequenceCompleteIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let [sequence, ..] = call.handles;
        if !matches!(
            tpm.v.objects.get(sequence),
            Some(Object::HashSequence { .. } | Object::HmacSequence { .. })
        ) {
            return Err(TpmRc::MODE.with_handle(1));
        }
        if !tpm.hierarchy_enabled(input.hierarchy) {
            return Err(TpmRc::HIERARCHY.with_parameter(2));
        }
        let (digest, ticket) = match tpm.v.objects.flush(sequence) {
            Some(Object::HashSequence {
                mut hasher,
                alg,
                first_block,
                mut ticket_safe,
                ..
            }) => {
                if first_block
                    && input
                        .buffer
                        .as_bytes()
                        .starts_with(&TPM_GENERATED_VALUE.to_be_bytes())
                {
                    ticket_safe = false;
                }
                hasher.update(input.buffer.as_bytes());
                let digest = hasher.finish();
                let ticket = if ticket_safe {
                    tpm.hashcheck_ticket(input.hierarchy, alg.alg(), &digest)
                } else {
                    null_hashcheck()
                };
                (digest, ticket)
            }
            // An HMAC sequence gives its HMAC and a NULL ticket.
            Some(Object::HmacSequence { mut state, .. }) => {
                state.update(input.buffer.as_bytes());
                (state.finish(), null_hashcheck())
            }
            _ => return Err(TpmRc::MODE.with_handle(1)),
        };
        out.params.write(&Digest::new(&digest).unwrap_or_default());
        out.params.write(&ticket);
        Ok(())
    }
}
