//! TPM2_Certify (Part 3 §18.2).

use super::{sign_attest, signer};
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::attest::{Attested, CertifyInfo};
use vtpm_wire::object::SigScheme;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Data, Name};

/// TPM2_Certify.
pub struct Certify;

/// TPM2_Certify parameters.
pub struct CertifyIn {
    qualifying_data: Data,
    in_scheme: SigScheme,
}

impl Command for Certify {
    type In = CertifyIn;

    fn read(p: &mut Params<'_>) -> Result<CertifyIn, TpmRc> {
        Ok(CertifyIn {
            qualifying_data: p.read()?,
            in_scheme: p.read()?,
        })
    }

    fn action(tpm: &mut Tpm, call: &Call, input: CertifyIn, out: &mut Output) -> Result<(), TpmRc> {
        let (key, scheme) = signer(tpm, call.handles[1], input.in_scheme, 2, 2)?;
        let certified = tpm
            .object(call.handles[0])
            .ok_or(TpmRc::HANDLE.with_handle(1))?;
        let info = CertifyInfo {
            name: Name::new(&certified.name).map_err(|_| TpmRc::FAILURE)?,
            qualified_name: Name::new(&certified.qualified_name).map_err(|_| TpmRc::FAILURE)?,
        };
        let attest = tpm.fill_attest(
            key.as_ref(),
            &input.qualifying_data,
            Attested::Certify(info),
        )?;
        sign_attest(key.as_ref(), scheme, attest, 2, 2, out)
    }
}
