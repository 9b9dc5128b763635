//! TPM2_GetTime (Part 3 §18.7).

use super::{sign_attest, signer};
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::attest::{Attested, TimeAttestInfo};
use vtpm_wire::object::SigScheme;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Data;

/// TPM2_GetTime.
pub struct GetTime;

/// TPM2_GetTime parameters.
pub struct GetTimeIn {
    qualifying_data: Data,
    in_scheme: SigScheme,
}

impl Command for GetTime {
    type In = GetTimeIn;

    fn read(p: &mut Params<'_>) -> Result<GetTimeIn, TpmRc> {
        Ok(GetTimeIn {
            qualifying_data: p.read()?,
            in_scheme: p.read()?,
        })
    }

    fn action(tpm: &mut Tpm, call: &Call, input: GetTimeIn, out: &mut Output) -> Result<(), TpmRc> {
        let (key, scheme) = signer(tpm, call.handles[1], input.in_scheme, 2, 2)?;
        // The attested time carries the plain values (the privacy
        // administrator authorized them); the common fields may be
        // obfuscated.
        let (fw1, fw2) = crate::commands::capability::get_capability::firmware_version();
        let info = TimeAttestInfo {
            time: tpm.time_info(),
            firmware_version: (u64::from(fw1) << 32) | u64::from(fw2),
        };
        let attest = tpm.fill_attest(key.as_ref(), &input.qualifying_data, Attested::Time(info))?;
        sign_attest(key.as_ref(), scheme, attest, 2, 2, out)
    }
}
