//! TPM2_Startup (Part 3 §9.3).

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::state::Orderly;
use vtpm_wire::constants::StartupType;
use vtpm_wire::rc::TpmRc;

/// TPM2_Startup.
pub struct Startup;

impl Command for Startup {
    type In = StartupType;

    fn read(p: &mut Params<'_>) -> Result<StartupType, TpmRc> {
        super::read_su(p)
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        startup_type: StartupType,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        // PC Client: Startup comes from locality 0 or 3 (H-CRTM platforms).
        if call.locality != 0 && call.locality != 3 {
            return Err(TpmRc::LOCALITY);
        }
        let prev = tpm.prev_orderly;
        let saved = tpm.nv.saved.clone();
        if startup_type == StartupType::STATE && (prev != Orderly::State || saved.is_none()) {
            return Err(TpmRc::VALUE.with_parameter(1));
        }
        let locality = if tpm.v.drtm_pre_startup {
            0
        } else {
            call.locality
        };
        match (startup_type, saved.filter(|_| prev == Orderly::State)) {
            // TPM Resume: state-saved PCRs and hierarchy enables come back.
            (StartupType::STATE, Some(s)) => {
                tpm.v.allocation = s.allocation.clone();
                tpm.v.pcrs = s.pcrs.clone();
                tpm.v.pcr_counter = s.pcr_counter;
                tpm.v.sh_enable = s.sh_enable;
                tpm.v.eh_enable = s.eh_enable;
                tpm.v.null_proof = s.null_proof;
                tpm.nv.restart_count = tpm.nv.restart_count.wrapping_add(1);
                tpm.pcr_startup(true, locality);
            }
            // TPM Restart: like a reset, but counted as a restart and the
            // null hierarchy keeps its proof.
            (_, Some(s)) => {
                tpm.v.allocation = tpm.nv.pcr_allocation.clone();
                tpm.v.null_proof = s.null_proof;
                tpm.nv.restart_count = tpm.nv.restart_count.wrapping_add(1);
                tpm.pcr_startup(false, locality);
            }
            // TPM Reset.
            (_, None) => {
                tpm.v.allocation = tpm.nv.pcr_allocation.clone();
                let mut proof = [0u8; crate::state::PROOF_SIZE];
                tpm.random(&mut proof);
                tpm.v.null_proof = proof;
                tpm.nv.reset_count = tpm.nv.reset_count.wrapping_add(1);
                tpm.nv.restart_count = 0;
                tpm.v.pcr_counter = 0;
                tpm.pcr_startup(false, locality);
            }
        }
        // NV index locks of this cycle (READLOCKED, WRITE_STCLEAR and
        // GLOBALLOCK write locks) and CLEAR_STCLEAR data end at TPM Reset
        // and TPM Restart, not at TPM Resume.
        if startup_type != StartupType::STATE {
            tpm.nv_startup_clear();
        }
        // From now until the next Shutdown, losing power is disorderly.
        tpm.nv.orderly = Orderly::None;
        tpm.nv.saved = None;
        tpm.mark_nv_dirty();
        // Dictionary-attack state (Part 1 §19.8).
        tpm.da_startup(prev);
        tpm.started = true;
        Ok(())
    }
}
