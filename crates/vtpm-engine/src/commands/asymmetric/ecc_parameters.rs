//! TPM2_ECC_Parameters (Part 3 §14.7).

use crate::Tpm;
use crate::crypto::ecc::Curve;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::constants::EccCurve;
use vtpm_wire::object::{AlgorithmDetailEcc, EccParameter};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Scheme;

/// TPM2_ECC_Parameters.
pub struct EccParameters;

impl Command for EccParameters {
    type In = Curve;

    fn read(p: &mut Params<'_>) -> Result<Curve, TpmRc> {
        // TPMI_ECC_CURVE: an implemented curve, else TPM_RC_CURVE.
        let id = p.with(|r| r.u16())?;
        Curve::from_tpm(id).ok_or(TpmRc::CURVE.with_parameter(1))
    }

    fn action(_tpm: &mut Tpm, _call: &Call, curve: Curve, out: &mut Output) -> Result<(), TpmRc> {
        let c = curve.parameters();
        let param = |v: &[u8]| EccParameter::new(v).map_err(|_| TpmRc::FAILURE);
        let detail = AlgorithmDetailEcc {
            curve_id: EccCurve(curve.tpm_id()),
            key_size: u16::try_from(curve.size() * 8).map_err(|_| TpmRc::FAILURE)?,
            kdf: Scheme::NULL,
            sign: Scheme::NULL,
            p: param(&c.p)?,
            a: param(&c.a)?,
            b: param(&c.b)?,
            g_x: param(&c.gx)?,
            g_y: param(&c.gy)?,
            n: param(&c.n)?,
            h: param(&c.h)?,
        };
        out.params.write(&detail);
        Ok(())
    }
}
