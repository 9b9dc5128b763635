//! TPM2_Shutdown (Part 3 §9.4).

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use crate::pcr::PcrValues;
use crate::pcr::STATE_SAVE_PCRS;
use crate::state::{Orderly, SavedState};
use vtpm_wire::constants::StartupType;
use vtpm_wire::rc::TpmRc;

/// TPM2_Shutdown.
pub struct Shutdown;

impl Command for Shutdown {
    type In = StartupType;

    fn read(p: &mut Params<'_>) -> Result<StartupType, TpmRc> {
        super::read_su(p)
    }

    fn action(
        tpm: &mut Tpm,
        _call: &Call,
        shutdown_type: StartupType,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        if shutdown_type == StartupType::STATE {
            // A PCR allocation made this cycle needs a Startup(CLEAR).
            if tpm.v.pcr_reconfig {
                return Err(TpmRc::TYPE.with_parameter(1));
            }
            let mut pcrs = PcrValues::default();
            for alg in HashAlg::ALL {
                for n in STATE_SAVE_PCRS {
                    pcrs.set(alg, n, tpm.v.pcrs.get(alg, n));
                }
            }
            tpm.nv.saved = Some(SavedState {
                allocation: tpm.v.allocation.clone(),
                pcrs,
                pcr_counter: tpm.v.pcr_counter,
                sh_enable: tpm.v.sh_enable,
                eh_enable: tpm.v.eh_enable,
                null_proof: tpm.v.null_proof,
            });
            tpm.nv.orderly = Orderly::State;
        } else {
            tpm.nv.saved = None;
            tpm.nv.orderly = Orderly::Clear;
        }
        tpm.mark_nv_dirty();
        Ok(())
    }
}
