//! TPM2_ECDH_ZGen (Part 3 §14.5).

use super::{crypto_point, ecc_key, wire_point};
use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::AlgId;
use vtpm_wire::object::{Tpm2bEccPoint, object_attr};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::PublicParms;

/// TPM2_ECDH_ZGen.
pub struct EcdhZGen;

impl Command for EcdhZGen {
    type In = Tpm2bEccPoint;

    fn read(p: &mut Params<'_>) -> Result<Tpm2bEccPoint, TpmRc> {
        p.read()
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        in_point: Tpm2bEccPoint,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let key = ecc_key(tpm.object(call.handles[0]))?;
        if key.has(object_attr::RESTRICTED) || !key.has(object_attr::DECRYPT) {
            return Err(TpmRc::ATTRIBUTES.with_handle(1));
        }
        if let PublicParms::Ecc { scheme, .. } = &key.public.parms
            && scheme.scheme != AlgId::ECDH
            && scheme.scheme != AlgId::NULL
        {
            return Err(TpmRc::SCHEME.with_handle(1));
        }
        let private = key.ecc_key().map_err(|_| TpmRc::KEY.with_handle(1))?;
        let z = private
            .ecdh(&crypto_point(&in_point.0))
            .map_err(|_| TpmRc::ECC_POINT.with_parameter(1))?;
        out.params.write(&wire_point(&z)?);
        Ok(())
    }
}
