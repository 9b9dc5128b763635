//! TPM2_SequenceComplete (Part 3 §17.5).

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
            Some(Object::HashSequence { .. })
        ) {
            return Err(TpmRc::MODE.with_handle(1));
        }
        if !tpm.hierarchy_enabled(input.hierarchy) {
            return Err(TpmRc::HIERARCHY.with_parameter(2));
        }
        let Some(Object::HashSequence {
            mut hasher,
            alg,
            first_block,
            mut ticket_safe,
            ..
        }) = tpm.v.objects.flush(sequence)
        else {
            return Err(TpmRc::MODE.with_handle(1));
        };
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
        out.params.write(&Digest::new(&digest).unwrap_or_default());
        out.params.write(&ticket);
        Ok(())
    }
}
