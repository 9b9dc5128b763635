//! TPM2_Quote (Part 3 §18.4).

use super::{sign_attest, signer};
use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::attest::{Attested, QuoteInfo};
use vtpm_wire::object::SigScheme;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Data, Digest, PcrSelectionList};

/// TPM2_Quote.
pub struct Quote;

/// TPM2_Quote parameters.
pub struct QuoteIn {
    qualifying_data: Data,
    in_scheme: SigScheme,
    pcr_select: PcrSelectionList,
}

impl Command for Quote {
    type In = QuoteIn;

    fn read(p: &mut Params<'_>) -> Result<QuoteIn, TpmRc> {
        Ok(QuoteIn {
            qualifying_data: p.read()?,
            in_scheme: p.read()?,
            pcr_select: p.read()?,
        })
    }

    fn action(tpm: &mut Tpm, call: &Call, input: QuoteIn, out: &mut Output) -> Result<(), TpmRc> {
        let (key, scheme) = signer(tpm, call.handles[0], input.in_scheme, 1, 2)?;
        // pcrDigest is computed with the scheme's hash: there must be one.
        let hash = HashAlg::from_alg(scheme.hash).ok_or(TpmRc::SCHEME.with_parameter(2))?;
        // The quoted selection names only allocated PCRs (the reference
        // implementation's FilterPcr), and pcrDigest covers exactly those.
        let mut pcr_select = input.pcr_select;
        for sel in &mut pcr_select.0 {
            let bank = HashAlg::from_alg(sel.hash);
            let selected: Vec<usize> = sel.pcrs().collect();
            for n in selected {
                if !bank.is_some_and(|b| tpm.pcr_allocated(b, n)) {
                    sel.set(n, false);
                }
            }
        }
        let pcr_digest = tpm.pcr_digest(hash, &pcr_select);
        let attest = tpm.fill_attest(
            key.as_ref(),
            &input.qualifying_data,
            Attested::Quote(QuoteInfo {
                pcr_select,
                pcr_digest: Digest::new(&pcr_digest).map_err(|_| TpmRc::FAILURE)?,
            }),
        )?;
        sign_attest(key.as_ref(), scheme, attest, 1, 2, out)
    }
}
