//! Dictionary-attack protection (Part 1 §19.8).
//!
//! Every failed authorization of an entity that is not exempt (objects
//! without noDA, NV indices without TPMA_NV_NO_DA, lockoutAuth) is counted:
//! failedTries goes up by one (kept in NV, committed before the response
//! leaves) unless recoveryTime is zero, and the TPM answers
//! TPM_RC_AUTH_FAIL. Once failedTries reaches maxTries the TPM is in
//! lockout: authorizations that use the authValue of a DA-protected entity
//! answer TPM_RC_LOCKOUT before the value is looked at. Every recoveryTime
//! seconds the TPM runs, one failure is forgotten (self-healing);
//! TPM2_DictionaryAttackLockReset forgets them all.
//!
//! lockoutAuth has its own rule: one failure makes it unusable for
//! lockoutRecovery seconds (zero: until the next TPM2_Startup).
//!
//! Time is TPMS_TIME_INFO.time, the time the TPM has run since `_TPM_Init`
//! (the reference implementation's `g_time`): it only runs while the TPM
//! is powered, is not changed by TPM2_Clear (which sets Clock to zero) or by
//! anything a caller can send, and restarts at every `_TPM_Init`, so that
//! the recovery intervals count continuous operation. The two time bases
//! are volatile (`Volatile::self_heal_timer`, `Volatile::lockout_timer`),
//! as in the reference implementation; what must survive a power loss
//! (failedTries, whether lockoutAuth is usable, whether a DA-protected
//! entity was used this cycle) is in NV.

use crate::Tpm;
use crate::state::Orderly;
use vtpm_wire::constants::handle;
use vtpm_wire::rc::TpmRc;

impl Tpm {
    /// Is the entity at `h` exempt from dictionary-attack protection? Every
    /// permanent handle but TPM_RH_LOCKOUT, PCRs, sequence objects, objects
    /// with noDA and NV indices with TPMA_NV_NO_DA are.
    pub(crate) fn is_da_exempt(&self, h: u32) -> bool {
        match handle::handle_type(h) {
            handle::HT_TRANSIENT | handle::HT_PERSISTENT => self
                .object(h)
                .is_none_or(|o| o.has(vtpm_wire::object::object_attr::NO_DA)),
            handle::HT_NV_INDEX => self
                .nv_index(h)
                .is_none_or(|i| i.has(vtpm_wire::types::nv_attr::NO_DA)),
            handle::HT_PERMANENT => h != handle::RH_LOCKOUT,
            _ => true,
        }
    }

    /// Self-healing, at the start of every command after Startup: forgets
    /// one failure per recoveryTime seconds since the last failure (or the
    /// last decrement), and makes lockoutAuth usable again lockoutRecovery
    /// seconds after its last failure.
    pub(crate) fn da_self_heal(&mut self) {
        let now = self.time_ms();
        let da = &mut self.nv.da;
        let mut changed = false;
        if da.failed_tries != 0 {
            if da.recovery_time == 0 {
                // DA protection is off: nothing is counted.
                da.failed_tries = 0;
                changed = true;
            } else {
                let interval = u64::from(da.recovery_time) * 1000;
                let decrease = now.saturating_sub(self.v.self_heal_timer) / interval;
                if decrease != 0 {
                    let d = u32::try_from(decrease).unwrap_or(u32::MAX);
                    da.failed_tries = da.failed_tries.saturating_sub(d);
                    self.v.self_heal_timer = self
                        .v
                        .self_heal_timer
                        .saturating_add(decrease.saturating_mul(interval));
                    changed = true;
                }
            }
        }
        if !self.nv.lockout_auth_enabled && self.nv.da.lockout_recovery != 0 {
            let elapsed_s = now.saturating_sub(self.v.lockout_timer) / 1000;
            if elapsed_s >= u64::from(self.nv.da.lockout_recovery) {
                self.nv.lockout_auth_enabled = true;
                changed = true;
            }
        }
        if changed {
            self.mark_nv_dirty();
        }
    }

    /// Before an authorization uses the authValue of a DA-protected entity:
    /// TPM_RC_LOCKOUT when lockoutAuth (`lockout_auth`) or the other
    /// DA-protected entities are locked out. Records that a DA-protected
    /// entity was used this cycle.
    pub(crate) fn da_check_locked_out(&mut self, lockout_auth: bool) -> Result<(), TpmRc> {
        if lockout_auth {
            if !self.nv.lockout_auth_enabled {
                return Err(TpmRc::LOCKOUT);
            }
        } else {
            if self.nv.da.in_lockout() {
                return Err(TpmRc::LOCKOUT);
            }
            if !self.nv.da_used {
                self.nv.da_used = true;
                self.mark_nv_dirty();
            }
        }
        Ok(())
    }

    /// A failed authorization of `entity` through `session_handle`
    /// (TPM_RS_PW or an HMAC session): counted when the entity, or the
    /// entity the session is bound to, is DA-protected (TPM_RC_AUTH_FAIL);
    /// TPM_RC_BAD_AUTH otherwise. A session bound to lockoutAuth makes the
    /// failure one of lockoutAuth.
    pub(crate) fn da_auth_failure(&mut self, entity: u32, session_handle: u32) -> TpmRc {
        let mut counted = entity;
        if session_handle == handle::RS_PW {
            if self.is_da_exempt(entity) {
                return TpmRc::BAD_AUTH;
            }
        } else {
            let bind = self
                .v
                .sessions
                .get(session_handle)
                .and_then(|s| s.bind.as_ref())
                .map(|b| b.handle);
            if bind == Some(handle::RH_LOCKOUT) {
                counted = handle::RH_LOCKOUT;
            }
            let da_bound = bind.is_some_and(|b| !self.is_da_exempt(b));
            if !da_bound && self.is_da_exempt(counted) {
                return TpmRc::BAD_AUTH;
            }
        }
        let now = self.time_ms();
        if counted == handle::RH_LOCKOUT {
            self.nv.lockout_auth_enabled = false;
            self.v.lockout_timer = now;
        } else {
            if self.nv.da.recovery_time != 0 {
                self.nv.da.failed_tries = self.nv.da.failed_tries.saturating_add(1);
            }
            self.v.self_heal_timer = now;
        }
        self.mark_nv_dirty();
        TpmRc::AUTH_FAIL
    }

    /// TPM2_Startup's part (any startup type): the recovery intervals
    /// restart; with lockoutRecovery zero lockoutAuth is usable again; and
    /// a cycle that used a DA-protected entity and ended without
    /// TPM2_Shutdown counts as one failure (an attacker cannot escape the
    /// count by cutting power).
    pub(crate) fn da_startup(&mut self, prev_orderly: Orderly) {
        self.v.self_heal_timer = 0;
        self.v.lockout_timer = 0;
        if self.nv.da.lockout_recovery == 0 {
            self.nv.lockout_auth_enabled = true;
        }
        let da = &mut self.nv.da;
        if prev_orderly == Orderly::None
            && self.nv.da_used
            && da.recovery_time != 0
            && da.failed_tries < da.max_tries
        {
            da.failed_tries += 1;
        }
        self.nv.da_used = false;
        self.mark_nv_dirty();
        self.da_self_heal();
    }
}
