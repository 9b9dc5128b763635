//! TPM2_PCR_Read (Part 3 §22.4).

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::profile::MAX_DIGEST_LIST;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Digest, DigestList, PcrSelectionList};

/// TPM2_PCR_Read.
pub struct PcrRead;

impl Command for PcrRead {
    /// pcrSelectionIn.
    type In = PcrSelectionList;

    fn read(p: &mut Params<'_>) -> Result<PcrSelectionList, TpmRc> {
        p.read()
    }

    fn action(
        tpm: &mut Tpm,
        _call: &Call,
        selection_in: PcrSelectionList,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        // The output selection names exactly the PCRs returned: allocated,
        // selected, and within the first eight digests.
        let mut selection_out = selection_in.clone();
        let mut values = DigestList::default();
        for (sel_in, sel_out) in selection_in.0.iter().zip(selection_out.0.iter_mut()) {
            sel_out.select = [0; vtpm_wire::profile::PCR_SELECT_MAX];
            let Some(alg) = HashAlg::from_alg(sel_in.hash) else {
                continue;
            };
            for n in sel_in.pcrs() {
                if !tpm.pcr_allocated(alg, n) {
                    continue;
                }
                if values.0.len() == MAX_DIGEST_LIST {
                    break;
                }
                values
                    .0
                    .push(Digest::new(tpm.v.pcrs.get(alg, n)).unwrap_or_default());
                sel_out.set(n, true);
            }
        }
        out.params.u32(tpm.v.pcr_counter);
        out.params.write(&selection_out);
        out.params.write(&values);
        Ok(())
    }
}
