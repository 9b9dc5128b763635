//! TPM2_ECDH_KeyGen (Part 3 §14.4).

use super::{ecc_key, wire_point};
use crate::Tpm;
use crate::crypto::ecc::ecdh_ephemeral;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;

/// TPM2_ECDH_KeyGen.
pub struct EcdhKeyGen;

impl Command for EcdhKeyGen {
    type In = ();

    fn read(_p: &mut Params<'_>) -> Result<(), TpmRc> {
        Ok(())
    }

    fn action(tpm: &mut Tpm, call: &Call, _in: (), out: &mut Output) -> Result<(), TpmRc> {
        let key = ecc_key(tpm.object(call.handles[0]))?;
        let key_err = TpmRc::KEY.with_handle(1);
        let curve = key.curve().map_err(|_| key_err)?;
        let q = key.ecc_public().map_err(|_| key_err)?;
        // Z = de·Q for an ephemeral de; a public point off the curve is a
        // bad key.
        let mut rng = |b: &mut [u8]| tpm.random(b);
        let (z, qe) = ecdh_ephemeral(curve, &q, &mut rng).map_err(|_| key_err)?;
        out.params.write(&wire_point(&z)?);
        out.params.write(&wire_point(&qe)?);
        Ok(())
    }
}
