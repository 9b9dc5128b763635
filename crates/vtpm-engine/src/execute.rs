//! Command processing (Part 3 §5, Part 1 "Command Processing"): header →
//! dispatch → handles → authorization area → parameters and action →
//! response.

use crate::Tpm;
use crate::dispatch::{self, AuthRole, Call, CommandDef, HandleKind, HandleSpec, Output, attr};
use subtle::ConstantTimeEq;
use vtpm_wire::codec::{Reader, Unmarshal, Writer};
use vtpm_wire::constants::{CommandCode, StructureTag, handle};
use vtpm_wire::profile::{IMPLEMENTATION_PCR, MAX_COMMAND_SIZE, MAX_SESSION_NUM};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Auth, AuthCommand, AuthResponse, Nonce, session_attr};

/// Size of a command/response header.
pub const HEADER_SIZE: usize = 10;
/// Smallest authorization area: one session with empty nonce and hmac.
const MIN_AUTH_SIZE: usize = 9;

/// A response with no parameters.
pub fn error_response(rc: TpmRc) -> Vec<u8> {
    let mut w = Writer::with_capacity(HEADER_SIZE);
    w.write(&StructureTag::NO_SESSIONS);
    w.u32(HEADER_SIZE as u32);
    w.u32(rc.0);
    w.into_vec()
}

impl Tpm {
    /// Executes one command received at `locality` and returns the
    /// response. Any input gives a well-formed response.
    pub fn execute(&mut self, locality: u8, command: &[u8]) -> Vec<u8> {
        let response = match self.process(locality, command) {
            Ok(rsp) => rsp,
            Err(rc) => {
                log::debug!("command failed: {rc}");
                error_response(rc)
            }
        };
        // Clock is written to NV each CLOCK_UPDATE interval it crosses.
        self.note_clock_interval();
        // NV changed by this command is committed before the response goes.
        if let Err(e) = self.commit_nv() {
            log::error!("{e}");
            return error_response(TpmRc::NV_UNAVAILABLE);
        }
        response
    }

    fn process(&mut self, locality: u8, command: &[u8]) -> Result<Vec<u8>, TpmRc> {
        if !self.is_powered() {
            return Err(TpmRc::FAILURE);
        }
        // An ordinary command ends a _TPM_Hash sequence that was not ended.
        if let Some(h) = self.v.drtm_handle.take() {
            self.v.objects.flush(h);
        }
        self.set_cancel(false);

        let mut r = Reader::new(command);
        let tag = StructureTag(r.u16().map_err(|_| TpmRc::INSUFFICIENT)?);
        if tag != StructureTag::NO_SESSIONS && tag != StructureTag::SESSIONS {
            return Err(TpmRc::BAD_TAG);
        }
        let size = r.u32().map_err(|_| TpmRc::INSUFFICIENT)?;
        if usize::try_from(size).ok() != Some(command.len()) || command.len() > MAX_COMMAND_SIZE {
            return Err(TpmRc::COMMAND_SIZE);
        }
        let cc = CommandCode(r.u32().map_err(|_| TpmRc::INSUFFICIENT)?);
        if self.failure.is_some()
            && !matches!(cc, CommandCode::GetTestResult | CommandCode::GetCapability)
        {
            return Err(TpmRc::FAILURE);
        }
        let def = dispatch::lookup(cc).ok_or(TpmRc::COMMAND_CODE)?;
        if self.started == (cc == CommandCode::Startup) {
            return Err(TpmRc::INITIALIZE);
        }

        // Handle area.
        let mut handles = [0u32; 3];
        for (i, (spec, slot)) in def.handles.iter().zip(handles.iter_mut()).enumerate() {
            let h = r.u32().map_err(|_| TpmRc::INSUFFICIENT)?;
            self.check_handle(spec, h)
                .map_err(|rc| position_handle(rc, i))?;
            *slot = h;
        }

        // Authorization area.
        let mut sessions: Vec<AuthCommand> = Vec::new();
        if tag == StructureTag::SESSIONS {
            let auth_size =
                usize::try_from(r.u32().map_err(|_| TpmRc::INSUFFICIENT)?).unwrap_or(usize::MAX);
            if auth_size < MIN_AUTH_SIZE || auth_size > r.remaining() {
                return Err(TpmRc::SIZE);
            }
            if def.attrs & attr::NO_SESSIONS != 0 {
                return Err(TpmRc::AUTH_CONTEXT);
            }
            let mut area = r.sub(auth_size).map_err(|_| TpmRc::SIZE)?;
            while !area.is_empty() {
                if sessions.len() == MAX_SESSION_NUM {
                    return Err(TpmRc::AUTHSIZE);
                }
                let n = sessions.len() + 1;
                sessions
                    .push(AuthCommand::unmarshal(&mut area).map_err(|e| e.rc().with_session(n))?);
            }
        }
        self.check_sessions(def, &handles, &sessions)?;

        if def.attrs & attr::NV != 0 && !self.nv_available {
            return Err(TpmRc::NV_UNAVAILABLE);
        }

        // Parameters and action.
        let call = Call {
            cc,
            locality,
            handles,
        };
        let mut out = Output::default();
        (def.handler)(self, &call, r, &mut out)?;

        // Response.
        let params = out.params.into_vec();
        let mut w = Writer::with_capacity(HEADER_SIZE + 8 + params.len() + sessions.len() * 5);
        w.write(&tag);
        let size_at = w.reserve_u32();
        w.u32(TpmRc::SUCCESS.0);
        if let Some(h) = out.handle {
            w.u32(h);
        }
        if tag == StructureTag::SESSIONS {
            w.u32(u32::try_from(params.len()).unwrap_or(u32::MAX));
        }
        w.bytes(&params);
        for s in &sessions {
            // Password sessions: empty nonce and HMAC, continueSession set.
            w.write(&AuthResponse {
                nonce: Nonce::empty(),
                attributes: s.attributes | session_attr::CONTINUE_SESSION,
                hmac: Auth::empty(),
            });
        }
        let len = u32::try_from(w.len()).unwrap_or(u32::MAX);
        w.patch_u32(size_at, len);
        Ok(w.into_vec())
    }

    /// Validates one handle of the handle area (its TPMI_ type, then that
    /// the entity exists and its hierarchy is enabled).
    fn check_handle(&self, spec: &HandleSpec, h: u32) -> Result<(), TpmRc> {
        match spec.kind {
            HandleKind::Pcr { null_ok } => {
                let is_pcr = usize::try_from(h).is_ok_and(|n| n < IMPLEMENTATION_PCR);
                if is_pcr || (null_ok && h == handle::RH_NULL) {
                    Ok(())
                } else {
                    Err(TpmRc::VALUE)
                }
            }
            HandleKind::Platform => {
                if h != handle::RH_PLATFORM {
                    Err(TpmRc::VALUE)
                } else {
                    self.check_hierarchy_handle(h)
                }
            }
            HandleKind::Provision => match h {
                handle::RH_OWNER | handle::RH_PLATFORM => self.check_hierarchy_handle(h),
                _ => Err(TpmRc::VALUE),
            },
            HandleKind::HierarchyAuth => match h {
                handle::RH_OWNER
                | handle::RH_PLATFORM
                | handle::RH_ENDORSEMENT
                | handle::RH_LOCKOUT => self.check_hierarchy_handle(h),
                _ => Err(TpmRc::VALUE),
            },
            HandleKind::NvAuth => match h {
                handle::RH_OWNER | handle::RH_PLATFORM => self.check_hierarchy_handle(h),
                _ if handle::handle_type(h) == handle::HT_NV_INDEX => self.check_nv_handle(h),
                _ => Err(TpmRc::VALUE),
            },
            HandleKind::NvIndex => {
                if handle::handle_type(h) == handle::HT_NV_INDEX {
                    self.check_nv_handle(h)
                } else {
                    Err(TpmRc::VALUE)
                }
            }
            HandleKind::Object => match handle::handle_type(h) {
                handle::HT_TRANSIENT => {
                    if self.v.objects.get(h).is_some() {
                        Ok(())
                    } else {
                        Err(TpmRc::REFERENCE_H0)
                    }
                }
                // No persistent objects exist in this TPM yet.
                handle::HT_PERSISTENT => Err(TpmRc::HANDLE),
                _ => Err(TpmRc::VALUE),
            },
        }
    }

    /// A permanent hierarchy handle whose hierarchy must be enabled.
    fn check_hierarchy_handle(&self, h: u32) -> Result<(), TpmRc> {
        let enabled = match h {
            handle::RH_OWNER => self.v.sh_enable,
            handle::RH_ENDORSEMENT => self.v.eh_enable,
            handle::RH_PLATFORM => self.v.ph_enable,
            _ => true,
        };
        if enabled {
            Ok(())
        } else {
            Err(TpmRc::HIERARCHY)
        }
    }

    /// An NV index handle: defined, and its hierarchy enabled.
    fn check_nv_handle(&self, h: u32) -> Result<(), TpmRc> {
        match self.nv_index(h) {
            Some(index) if self.nv_accessible(index) => Ok(()),
            _ => Err(TpmRc::HANDLE),
        }
    }

    /// Checks the sessions against the handles that need authorization and
    /// authorizes each (password sessions; HMAC and policy sessions do not
    /// exist in this TPM yet, so their handles are never loaded).
    fn check_sessions(
        &mut self,
        def: &CommandDef,
        handles: &[u32; 3],
        sessions: &[AuthCommand],
    ) -> Result<(), TpmRc> {
        let auth_handles: Vec<u32> = def
            .handles
            .iter()
            .zip(handles.iter())
            .filter(|(spec, _)| spec.auth != AuthRole::None)
            .map(|(_, &h)| h)
            .collect();
        for (i, s) in sessions.iter().enumerate() {
            let n = i + 1;
            match handle::handle_type(s.session_handle) {
                _ if s.session_handle == handle::RS_PW => {
                    let not_allowed = session_attr::ENCRYPT
                        | session_attr::DECRYPT
                        | session_attr::AUDIT
                        | session_attr::AUDIT_EXCLUSIVE
                        | session_attr::AUDIT_RESET;
                    if s.attributes & not_allowed != 0 {
                        return Err(TpmRc::ATTRIBUTES.with_session(n));
                    }
                    if !s.nonce.is_empty() {
                        return Err(TpmRc::NONCE.with_session(n));
                    }
                    if i >= auth_handles.len() {
                        return Err(TpmRc::HANDLE.with_session(n));
                    }
                }
                handle::HT_HMAC_SESSION | handle::HT_POLICY_SESSION => {
                    return Err(TpmRc::REFERENCE_S0.plus(i));
                }
                _ => return Err(TpmRc::HANDLE.with_session(n)),
            }
        }
        if sessions.len() < auth_handles.len() {
            return Err(TpmRc::AUTH_MISSING);
        }
        for (i, (&h, s)) in auth_handles.iter().zip(sessions).enumerate() {
            let (auth, da_exempt) = self
                .entity_auth(h)
                .ok_or(TpmRc::HANDLE.with_session(i + 1))?;
            if !password_matches(&auth, s.hmac.as_bytes()) {
                let rc = if da_exempt {
                    TpmRc::BAD_AUTH
                } else {
                    TpmRc::AUTH_FAIL
                };
                return Err(rc.with_session(i + 1));
            }
        }
        Ok(())
    }

    /// The authValue of an entity and whether it is exempt from
    /// dictionary-attack protection.
    fn entity_auth(&self, h: u32) -> Option<(Vec<u8>, bool)> {
        match handle::handle_type(h) {
            handle::HT_PCR => Some((Vec::new(), true)),
            handle::HT_TRANSIENT => self.v.objects.get(h).map(|o| (o.auth().to_vec(), true)),
            handle::HT_NV_INDEX => self
                .nv_index(h)
                .map(|i| (i.auth.to_vec(), i.has(vtpm_wire::types::nv_attr::NO_DA))),
            _ => match h {
                handle::RH_PLATFORM => Some((self.v.platform_auth.clone(), true)),
                handle::RH_OWNER => Some((self.nv.owner_auth.clone(), true)),
                handle::RH_ENDORSEMENT => Some((self.nv.endorsement_auth.clone(), true)),
                handle::RH_LOCKOUT => Some((self.nv.lockout_auth.clone(), false)),
                handle::RH_NULL => Some((Vec::new(), true)),
                _ => None,
            },
        }
    }
}

/// A handle-validation error with its handle number (warnings that name a
/// slot take `REFERENCE_H0 + i`).
fn position_handle(rc: TpmRc, i: usize) -> TpmRc {
    if rc == TpmRc::REFERENCE_H0 {
        rc.plus(i)
    } else {
        rc.with_handle(i + 1)
    }
}

fn strip_trailing_zeros(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&x| x != 0).map_or(0, |p| p + 1);
    b.get(..end).unwrap_or(&[])
}

/// Password comparison: trailing zeros removed from both (Part 1), then a
/// constant-time comparison.
fn password_matches(auth_value: &[u8], password: &[u8]) -> bool {
    let a = strip_trailing_zeros(auth_value);
    let b = strip_trailing_zeros(password);
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_ignore_trailing_zeros_only() {
        assert!(password_matches(b"abc", b"abc\0\0"));
        assert!(password_matches(b"", b"\0"));
        assert!(!password_matches(b"abc", b"ab"));
        assert!(!password_matches(b"\0abc", b"abc"));
    }
}
