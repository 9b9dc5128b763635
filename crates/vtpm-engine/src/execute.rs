//! Command processing (Part 3 §5, Part 1 "Command Processing"): header →
//! dispatch → handles → authorization area → parameters and action →
//! response.

use crate::Tpm;
use crate::dispatch::{self, AuthRole, Call, CommandDef, HandleKind, HandleSpec, Output, attr};
use crate::session::SessionKind;
use subtle::ConstantTimeEq;
use vtpm_wire::codec::{Reader, Unmarshal, Writer};
use vtpm_wire::constants::{AlgId, CommandCode, StructureTag, handle};
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
        if self.started {
            // Dictionary-attack self-healing, as time has passed.
            self.da_self_heal();
        }

        // Handle area.
        let mut handles = [0u32; 3];
        for (i, (spec, slot)) in def.handles.iter().zip(handles.iter_mut()).enumerate() {
            let h = r.u32().map_err(|_| TpmRc::INSUFFICIENT)?;
            self.check_handle(spec, h)
                .map_err(|rc| position_handle(rc, i))?;
            *slot = h;
        }

        // An NV index authorizes only access to itself (the reference
        // implementation's NvReadAccessChecks / NvWriteAccessChecks): a
        // command naming one index for authorization and another as its
        // target answers TPM_RC_NV_AUTHORIZATION.
        let nv_auth = def
            .handles
            .iter()
            .position(|s| s.kind == HandleKind::NvAuth)
            .and_then(|i| handles.get(i).copied());
        let nv_target = def
            .handles
            .iter()
            .position(|s| s.kind == HandleKind::NvIndex)
            .and_then(|i| handles.get(i).copied());
        if let (Some(a), Some(t)) = (nv_auth, nv_target)
            && handle::handle_type(a) == handle::HT_NV_INDEX
            && a != t
        {
            return Err(TpmRc::NV_AUTHORIZATION);
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
        let mut uses = self.authorize(def, cc, locality, &handles, &sessions, r.peek_rest())?;
        // Command audit (Part 1 §33): cpHash with the audit hash, from the
        // Names before the command runs and the parameters as sent.
        let command_audit_cp_hash = self.command_audit_cp_hash(def, cc, &handles, r.peek_rest());

        if def.attrs & attr::NV != 0 && !self.nv_available {
            return Err(TpmRc::NV_UNAVAILABLE);
        }

        // Parameter decryption (the first parameter, a TPM2B).
        let mut params_in = r.peek_rest().to_vec();
        if let Some(i) = uses
            .iter()
            .position(|u| u.attrs & session_attr::DECRYPT != 0)
        {
            self.crypt_first_param(&uses, i, &mut params_in, false)?;
        }

        // Parameters and action.
        let call = Call {
            cc,
            locality,
            handles,
            policy_auth: policy_flags(&uses, def, &handles),
        };
        let mut out = Output::default();
        (def.handler)(self, &call, Reader::new(&params_in), &mut out)?;

        // Response parameters, encrypted for the session that asks for it.
        let mut params = out.params.into_vec();
        let encrypt_session = uses
            .iter()
            .position(|u| u.attrs & session_attr::ENCRYPT != 0);
        // New nonceTPM for every session that rolls one.
        let now = self.time_ms();
        for u in uses.iter_mut() {
            if let Some(s) = self.v.sessions.get(u.session_handle) {
                let mut n = vec![0u8; s.nonce_tpm.len()];
                self.random(&mut n);
                if let Some(s) = self.v.sessions.get_mut(u.session_handle) {
                    s.nonce_tpm = n;
                    // A policy session that goes on starts a new policy
                    // (Part 1 §19.7; the reference implementation's
                    // UpdateInternalSession).
                    if s.kind == SessionKind::Policy {
                        s.reset_policy(now);
                    }
                }
            }
        }
        if let Some(i) = encrypt_session {
            self.crypt_first_param(&uses, i, &mut params, true)?;
        }

        // Session audit (Part 1 §19.6.11).
        self.audit_session_update(cc, &uses, &params);
        // A TPM2_SetCommandCodeAuditStatus that changed the audit hash is
        // not audited: the digest stays empty (the reference
        // implementation's CommandAudit).
        if let Some((alg, cp_hash)) = command_audit_cp_hash
            && alg == self.nv.audit_alg
        {
            self.command_audit_update(cc, &cp_hash, &params);
        }

        // Response.
        let mut w = Writer::with_capacity(HEADER_SIZE + 8 + params.len() + sessions.len() * 80);
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
        let mut rp_hashes: Vec<(crate::crypto::hash::HashAlg, Vec<u8>)> = Vec::new();
        for u in &uses {
            let Some(s) = self.v.sessions.get(u.session_handle) else {
                // Password session: empty nonce and HMAC, continueSession set.
                w.write(&AuthResponse {
                    nonce: Nonce::empty(),
                    attributes: u.attrs | session_attr::CONTINUE_SESSION,
                    hmac: Auth::empty(),
                });
                continue;
            };
            let rp_hash = match rp_hashes.iter().find(|(a, _)| *a == s.auth_hash) {
                Some((_, h)) => h.clone(),
                None => {
                    let h =
                        s.auth_hash
                            .digest(&[&0u32.to_be_bytes(), &cc.0.to_be_bytes(), &params]);
                    rp_hashes.push((s.auth_hash, h.clone()));
                    h
                }
            };
            // The audit session: auditReset is cleared, auditExclusive
            // says whether it is the exclusive audit session.
            let attributes = if u.attrs & session_attr::AUDIT != 0 {
                let exclusive = if self.v.exclusive_audit_session == u.session_handle {
                    session_attr::AUDIT_EXCLUSIVE
                } else {
                    0
                };
                (u.attrs & !(session_attr::AUDIT_RESET | session_attr::AUDIT_EXCLUSIVE)) | exclusive
            } else {
                u.attrs
            };
            // A policy session proving a password answers no HMAC.
            let hmac = if u.policy_auth == Some(PolicyAuth::Password) {
                Vec::new()
            } else {
                let key = self.session_key_for(u);
                s.response_hmac(&key, &rp_hash, &u.nonce_caller, attributes)
            };
            w.write(&AuthResponse {
                nonce: Nonce::new(&s.nonce_tpm).unwrap_or_default(),
                attributes,
                hmac: Auth::new(&hmac).unwrap_or_default(),
            });
        }
        // Sessions without continueSession end with this command.
        for u in &uses {
            if u.attrs & session_attr::CONTINUE_SESSION == 0 {
                self.v.sessions.flush(u.session_handle);
            }
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
            HandleKind::Hierarchy => match h {
                handle::RH_OWNER | handle::RH_PLATFORM | handle::RH_ENDORSEMENT => {
                    self.check_hierarchy_handle(h)
                }
                _ => Err(TpmRc::VALUE),
            },
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
            HandleKind::Context => match handle::handle_type(h) {
                handle::HT_TRANSIENT => self.check_handle(
                    &HandleSpec {
                        kind: HandleKind::Object,
                        auth: spec.auth,
                    },
                    h,
                ),
                handle::HT_HMAC_SESSION | handle::HT_POLICY_SESSION => {
                    if self.v.sessions.get(h).is_some() {
                        Ok(())
                    } else {
                        Err(TpmRc::REFERENCE_H0)
                    }
                }
                _ => Err(TpmRc::VALUE),
            },
            HandleKind::ObjectPlus => {
                if h == handle::RH_NULL {
                    Ok(())
                } else {
                    self.check_handle(
                        &HandleSpec {
                            kind: HandleKind::Object,
                            auth: spec.auth,
                        },
                        h,
                    )
                }
            }
            HandleKind::EntityPlus => match handle::handle_type(h) {
                _ if h == handle::RH_NULL => Ok(()),
                handle::HT_PCR => self.check_handle(
                    &HandleSpec {
                        kind: HandleKind::Pcr { null_ok: false },
                        auth: spec.auth,
                    },
                    h,
                ),
                handle::HT_NV_INDEX => self.check_nv_handle(h),
                handle::HT_TRANSIENT | handle::HT_PERSISTENT => self.check_handle(
                    &HandleSpec {
                        kind: HandleKind::Object,
                        auth: spec.auth,
                    },
                    h,
                ),
                handle::HT_PERMANENT => match h {
                    handle::RH_OWNER
                    | handle::RH_PLATFORM
                    | handle::RH_ENDORSEMENT
                    | handle::RH_LOCKOUT => self.check_hierarchy_handle(h),
                    _ => Err(TpmRc::VALUE),
                },
                _ => Err(TpmRc::VALUE),
            },
            HandleKind::Entity => {
                if h == handle::RH_NULL {
                    Err(TpmRc::VALUE)
                } else {
                    self.check_handle(
                        &HandleSpec {
                            kind: HandleKind::EntityPlus,
                            auth: spec.auth,
                        },
                        h,
                    )
                }
            }
            HandleKind::PolicySession => {
                if handle::handle_type(h) != handle::HT_POLICY_SESSION {
                    Err(TpmRc::VALUE)
                } else if self.v.sessions.get(h).is_some() {
                    Ok(())
                } else {
                    Err(TpmRc::REFERENCE_H0)
                }
            }
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
                handle::HT_PERSISTENT => match self.nv.persistent.get(&h) {
                    Some(o) if self.hierarchy_enabled(o.hierarchy) => Ok(()),
                    _ => Err(TpmRc::HANDLE),
                },
                _ => Err(TpmRc::VALUE),
            },
            HandleKind::HierarchyPlus => match h {
                handle::RH_OWNER | handle::RH_PLATFORM | handle::RH_ENDORSEMENT => {
                    self.check_hierarchy_handle(h)
                }
                handle::RH_NULL => Ok(()),
                _ => Err(TpmRc::VALUE),
            },
            HandleKind::ParentPlus => match handle::handle_type(h) {
                handle::HT_TRANSIENT | handle::HT_PERSISTENT => self.check_handle(
                    &HandleSpec {
                        kind: HandleKind::Object,
                        auth: spec.auth,
                    },
                    h,
                ),
                _ => self.check_handle(
                    &HandleSpec {
                        kind: HandleKind::HierarchyPlus,
                        auth: spec.auth,
                    },
                    h,
                ),
            },
            HandleKind::Lockout => match h {
                handle::RH_LOCKOUT => Ok(()),
                _ => Err(TpmRc::VALUE),
            },
            HandleKind::Clear => match h {
                handle::RH_LOCKOUT => Ok(()),
                handle::RH_PLATFORM => self.check_hierarchy_handle(h),
                _ => Err(TpmRc::VALUE),
            },
            HandleKind::Endorsement => match h {
                handle::RH_ENDORSEMENT => self.check_hierarchy_handle(h),
                _ => Err(TpmRc::VALUE),
            },
            HandleKind::HmacSession => {
                if handle::handle_type(h) != handle::HT_HMAC_SESSION {
                    Err(TpmRc::VALUE)
                } else if self.v.sessions.get(h).is_some() {
                    Ok(())
                } else {
                    Err(TpmRc::REFERENCE_H0)
                }
            }
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

    /// Checks the authorization area against the handles that need
    /// authorization and authorizes each handle with its session: password
    /// sessions by comparing the password, HMAC sessions by checking the
    /// command HMAC over cpHash, policy sessions by comparing policyDigest
    /// with the entity's authPolicy. Returns how each session was used.
    fn authorize(
        &mut self,
        def: &CommandDef,
        cc: CommandCode,
        locality: u8,
        handles: &[u32; 3],
        sessions: &[AuthCommand],
        params: &[u8],
    ) -> Result<Vec<SessionUse>, TpmRc> {
        let auth_specs: Vec<(u32, AuthRole)> = def
            .handles
            .iter()
            .zip(handles.iter())
            .filter(|(spec, _)| spec.auth != AuthRole::None)
            .map(|(spec, &h)| (h, spec.auth))
            .collect();
        let auth_handles: Vec<u32> = auth_specs.iter().map(|(h, _)| *h).collect();
        let mut uses = Vec::with_capacity(sessions.len());
        for (i, s) in sessions.iter().enumerate() {
            let n = i + 1;
            let auth_entity = auth_handles.get(i).copied();
            if s.session_handle == handle::RS_PW {
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
                if auth_entity.is_none() {
                    return Err(TpmRc::HANDLE.with_session(n));
                }
            } else {
                match handle::handle_type(s.session_handle) {
                    handle::HT_HMAC_SESSION | handle::HT_POLICY_SESSION => {}
                    _ => return Err(TpmRc::HANDLE.with_session(n)),
                }
                let Some(session) = self.v.sessions.get(s.session_handle) else {
                    return Err(TpmRc::REFERENCE_S0.plus(i));
                };
                if sessions
                    .iter()
                    .take(i)
                    .any(|o| o.session_handle == s.session_handle)
                {
                    // The same session twice in one command.
                    return Err(TpmRc::HANDLE.with_session(n));
                }
                // Session audit (Part 1 §19.6.11): auditExclusive and
                // auditReset only with audit; one audit session, an HMAC
                // session; auditExclusive on a session already auditing
                // (and not reset) needs it to be the exclusive one.
                if s.attributes & session_attr::AUDIT == 0 {
                    if s.attributes & (session_attr::AUDIT_EXCLUSIVE | session_attr::AUDIT_RESET)
                        != 0
                    {
                        return Err(TpmRc::ATTRIBUTES.with_session(n));
                    }
                } else {
                    if session.kind != SessionKind::Hmac
                        || sessions
                            .iter()
                            .take(i)
                            .any(|o| o.attributes & session_attr::AUDIT != 0)
                    {
                        return Err(TpmRc::ATTRIBUTES.with_session(n));
                    }
                    if s.attributes & session_attr::AUDIT_RESET == 0
                        && session.is_audit
                        && s.attributes & session_attr::AUDIT_EXCLUSIVE != 0
                        && self.v.exclusive_audit_session != s.session_handle
                    {
                        return Err(TpmRc::EXCLUSIVE);
                    }
                }
                let crypt = s.attributes & (session_attr::DECRYPT | session_attr::ENCRYPT) != 0;
                if crypt && session.symmetric == vtpm_wire::types::SymDef::Null {
                    return Err(TpmRc::SYMMETRIC.with_session(n));
                }
                // A policy session proving a password (TPM2_PolicyPassword)
                // needs no nonceCaller: tss2-esys sends an empty one, and the
                // reference implementation accepts it.
                let min_nonce = if session.kind == SessionKind::Policy && session.password_needed {
                    0
                } else {
                    16
                };
                if s.nonce.len() < min_nonce || s.nonce.len() > session.auth_hash.size() {
                    return Err(TpmRc::SIZE.with_session(n));
                }
                if auth_entity.is_none() && session.kind == SessionKind::Trial {
                    return Err(TpmRc::AUTH_TYPE.with_session(n));
                }
            }
            uses.push(SessionUse {
                session_handle: if s.session_handle == handle::RS_PW {
                    handle::RS_PW
                } else {
                    s.session_handle
                },
                attrs: s.attributes,
                nonce_caller: s.nonce.as_bytes().to_vec(),
                entity: auth_entity,
                policy_auth: None,
                audit_cp_hash: Vec::new(),
            });
        }
        if sessions.len() < auth_handles.len() {
            return Err(TpmRc::AUTH_MISSING);
        }
        // At most one session decrypts and one encrypts, and only for
        // commands and responses that start with a TPM2B.
        for (bit, allowed) in [
            (session_attr::DECRYPT, attr::DECRYPT),
            (session_attr::ENCRYPT, attr::ENCRYPT),
        ] {
            let mut with = uses.iter().enumerate().filter(|(_, u)| u.attrs & bit != 0);
            if let Some((i, _)) = with.next()
                && (def.attrs & allowed == 0 || with.next().is_some())
            {
                return Err(TpmRc::ATTRIBUTES.with_session(i + 1));
            }
        }
        let decrypt_idx = uses
            .iter()
            .position(|u| u.attrs & session_attr::DECRYPT != 0);
        let encrypt_idx = uses
            .iter()
            .position(|u| u.attrs & session_attr::ENCRYPT != 0);

        // cpHash per hash algorithm in use: H(commandCode || Names || parameters).
        // Names are only needed for HMAC and policy sessions (an NV index's
        // Name is a hash of its public area).
        let any_session = uses.iter().any(|u| u.session_handle != handle::RS_PW);
        let names: Vec<Vec<u8>> = if any_session {
            handles
                .iter()
                .take(def.handles.len())
                .map(|&h| self.entity_name(h))
                .collect()
        } else {
            Vec::new()
        };
        for u in uses.iter_mut() {
            if u.entity.is_some()
                && let Some(session) = self.v.sessions.get(u.session_handle)
                && session.kind == SessionKind::Policy
            {
                u.policy_auth = Some(if session.password_needed {
                    PolicyAuth::Password
                } else if session.auth_value_needed {
                    PolicyAuth::AuthValue
                } else {
                    PolicyAuth::None
                });
            }
        }
        let mut audit_cp_hash: Option<(usize, Vec<u8>)> = None;
        for (i, (u, s)) in uses.iter().zip(sessions).enumerate() {
            let n = i + 1;
            let is_policy = handle::handle_type(u.session_handle) == handle::HT_POLICY_SESSION;
            let policy_uses_auth = matches!(
                u.policy_auth,
                Some(PolicyAuth::AuthValue | PolicyAuth::Password)
            );
            // Dictionary-attack protection (Part 1 §19.8): an authorization
            // that uses the authValue of a DA-protected entity (a password,
            // or an HMAC session not bound to the entity) is refused while
            // that entity is locked out, before the value is looked at.
            if let Some(h) = u.entity
                && ((!is_policy && self.uses_auth_value(u, h)) || policy_uses_auth)
                && !self.is_da_exempt(h)
            {
                self.da_check_locked_out(h == handle::RH_LOCKOUT)?;
            }
            // Objects say which roles a password or HMAC may authorize
            // (userWithAuth, adminWithPolicy; DUP always needs a policy).
            if let (Some(&(h, role)), false) = (auth_specs.get(i), is_policy)
                && let Some(o) = self.object(h)
            {
                use vtpm_wire::object::object_attr as oa;
                let allowed = match role {
                    AuthRole::User => o.has(oa::USER_WITH_AUTH),
                    AuthRole::Admin => !o.has(oa::ADMIN_WITH_POLICY),
                    AuthRole::Dup => false,
                    AuthRole::None => true,
                };
                if !allowed {
                    return Err(TpmRc::AUTH_UNAVAILABLE.with_session(n));
                }
            }
            // NV indices: the ADMIN role (TPM2_NV_ChangeAuth,
            // TPM2_NV_UndefineSpaceSpecial) needs a policy session; a PIN
            // index's authValue is usable only once written and while
            // pinCount < pinLimit (Part 1 §37.5).
            if let (Some(&(h, role)), false) = (auth_specs.get(i), is_policy)
                && let Some(index) = self.nv_index(h)
                && (role == AuthRole::Admin || !index.pin_auth_available())
            {
                return Err(TpmRc::AUTH_UNAVAILABLE.with_session(n));
            }
            if u.session_handle == handle::RS_PW {
                let h = u.entity.unwrap_or(handle::RH_NULL);
                let auth = self.entity_auth(h).ok_or(TpmRc::HANDLE.with_session(n))?;
                if !password_matches(&auth, s.hmac.as_bytes()) {
                    self.nv_pin_auth_result(h, false);
                    return Err(self.da_auth_failure(h, handle::RS_PW).with_session(n));
                }
                self.nv_pin_auth_result(h, true);
                continue;
            }
            let Some(session) = self.v.sessions.get(u.session_handle) else {
                continue;
            };
            let cc_bytes = cc.0.to_be_bytes();
            let mut parts: Vec<&[u8]> = vec![&cc_bytes];
            for name in &names {
                parts.push(name);
            }
            parts.push(params);
            let cp_hash = session.auth_hash.digest(&parts);
            if u.attrs & session_attr::AUDIT != 0 {
                audit_cp_hash = Some((i, cp_hash.clone()));
            }
            // The first session also covers the nonces of the decrypt and
            // encrypt sessions when those are other sessions.
            let mut extra: Vec<Vec<u8>> = Vec::new();
            if i == 0 {
                if let Some(d) = decrypt_idx.filter(|&d| d != 0) {
                    extra.push(self.session_nonce(uses.get(d)));
                }
                if let Some(e) = encrypt_idx.filter(|&e| e != 0 && Some(e) != decrypt_idx) {
                    extra.push(self.session_nonce(uses.get(e)));
                }
            }
            let extra_refs: Vec<&[u8]> = extra.iter().map(Vec::as_slice).collect();
            // The entity whose HMAC failed.
            let mut failed = None;
            match (session.kind, u.entity) {
                (SessionKind::Hmac, Some(h)) => {
                    if self.entity_auth(h).is_none() {
                        return Err(TpmRc::HANDLE.with_session(n));
                    }
                    let key = self.session_key_for(u);
                    let expected =
                        session.command_hmac(&key, &cp_hash, &u.nonce_caller, &extra_refs, u.attrs);
                    if !hmac_matches(&expected, s.hmac.as_bytes()) {
                        failed = Some(h);
                    }
                }
                (SessionKind::Policy, Some(h)) => {
                    // TPM2_PolicySecret proves knowledge of authHandle's
                    // authValue: a policy session can authorize it only
                    // with PolicyAuthValue / PolicyPassword.
                    if cc == CommandCode::PolicySecret && !policy_uses_auth {
                        return Err(TpmRc::MODE.with_session(n));
                    }
                    let policy = self.entity_policy(h);
                    let matches = policy.as_ref().is_some_and(|p| {
                        !p.is_empty() && bool::from(p.ct_eq(&session.policy_digest))
                    });
                    if !matches {
                        return Err(TpmRc::POLICY_FAIL.with_session(n));
                    }
                    let role = auth_specs.get(i).map_or(AuthRole::None, |&(_, r)| r);
                    let name_hash = if session.name_hash.is_empty() {
                        Vec::new()
                    } else {
                        let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
                        session.auth_hash.digest(&refs)
                    };
                    let template_hash = if session.template_hash.is_empty() {
                        Vec::new()
                    } else {
                        template_hash(session.auth_hash, cc, params)
                    };
                    let now = PolicyNow {
                        nv_written: (handle::handle_type(h) == handle::HT_NV_INDEX)
                            .then(|| self.nv_index(h))
                            .flatten()
                            .map(|i| i.has(vtpm_wire::types::nv_attr::WRITTEN)),
                        time: self.time_ms(),
                        pcr_counter: self.v.pcr_counter,
                        locality,
                        template_hash,
                    };
                    policy_conditions(session, cc, role, &cp_hash, &name_hash, &now)
                        .map_err(|rc| rc.with_session(n))?;
                    match u.policy_auth {
                        Some(PolicyAuth::Password) => {
                            let auth = self.entity_auth(h).ok_or(TpmRc::HANDLE.with_session(n))?;
                            if !password_matches(&auth, s.hmac.as_bytes()) {
                                failed = Some(h);
                            }
                        }
                        Some(PolicyAuth::AuthValue) => {
                            if self.entity_auth(h).is_none() {
                                return Err(TpmRc::HANDLE.with_session(n));
                            }
                            let key = self.session_key_for(u);
                            let expected = session.command_hmac(
                                &key,
                                &cp_hash,
                                &u.nonce_caller,
                                &extra_refs,
                                u.attrs,
                            );
                            if !hmac_matches(&expected, s.hmac.as_bytes()) {
                                failed = Some(h);
                            }
                        }
                        _ => {}
                    }
                }
                (SessionKind::Trial, Some(_)) => return Err(TpmRc::AUTH_TYPE.with_session(n)),
                // Sessions only for encryption: an HMAC, when sent, is checked
                // with the session key alone.
                (_, None) => {
                    if !s.hmac.is_empty() {
                        let expected = session.command_hmac(
                            &session.session_key,
                            &cp_hash,
                            &u.nonce_caller,
                            &extra_refs,
                            u.attrs,
                        );
                        if !hmac_matches(&expected, s.hmac.as_bytes()) {
                            return Err(TpmRc::AUTH_FAIL.with_session(n));
                        }
                    }
                }
            }
            if let Some(h) = failed {
                self.nv_pin_auth_result(h, false);
                return Err(self.da_auth_failure(h, u.session_handle).with_session(n));
            }
            if session.kind == SessionKind::Hmac
                && let Some(h) = u.entity
            {
                self.nv_pin_auth_result(h, true);
            }
        }
        if let Some((i, h)) = audit_cp_hash
            && let Some(u) = uses.get_mut(i)
        {
            u.audit_cp_hash = h;
        }
        Ok(uses)
    }

    /// cpHash of a command in the command audit list, with the audit hash.
    fn command_audit_cp_hash(
        &self,
        def: &CommandDef,
        cc: CommandCode,
        handles: &[u32; 3],
        params: &[u8],
    ) -> Option<(u16, Vec<u8>)> {
        if self.nv.audit_commands.binary_search(&cc.0).is_err() {
            return None;
        }
        let alg = crate::crypto::hash::HashAlg::from_alg(AlgId(self.nv.audit_alg))?;
        let names: Vec<Vec<u8>> = handles
            .iter()
            .take(def.handles.len())
            .map(|&h| self.entity_name(h))
            .collect();
        let cc_bytes = cc.0.to_be_bytes();
        let mut parts: Vec<&[u8]> = vec![&cc_bytes];
        for name in &names {
            parts.push(name);
        }
        parts.push(params);
        Some((self.nv.audit_alg, alg.digest(&parts)))
    }

    /// After a successful audited command: the audit counter counts on
    /// the first extend after a reset, and the digest is extended with
    /// cpHash and rpHash (Part 1 §33.2).
    fn command_audit_update(&mut self, cc: CommandCode, cp_hash: &[u8], params: &[u8]) {
        let Some(alg) = crate::crypto::hash::HashAlg::from_alg(AlgId(self.nv.audit_alg)) else {
            return;
        };
        if self.nv.command_audit_digest.is_empty() {
            self.nv.audit_counter = self.nv.audit_counter.wrapping_add(1);
        }
        let rp_hash = alg.digest(&[&0u32.to_be_bytes(), &cc.0.to_be_bytes(), params]);
        self.nv.command_audit_digest =
            alg.digest(&[&self.nv.command_audit_digest, cp_hash, &rp_hash]);
        self.nv_dirty = true;
    }

    /// After a successful command: the audit session (if any) becomes the
    /// exclusive one on its first use as an audit session or when reset,
    /// and its digest (emptied by auditReset) is extended with cpHash and
    /// rpHash; a command not audited by the exclusive audit session ends
    /// its exclusivity (the reference implementation's
    /// UpdateAuditSessionStatus and Audit).
    fn audit_session_update(&mut self, cc: CommandCode, uses: &[SessionUse], params: &[u8]) {
        let audit = uses
            .iter()
            .find(|u| u.attrs & session_attr::AUDIT != 0 && u.session_handle != handle::RS_PW);
        let Some(u) = audit else {
            self.v.exclusive_audit_session = handle::RH_UNASSIGNED;
            return;
        };
        let Some(s) = self.v.sessions.get_mut(u.session_handle) else {
            self.v.exclusive_audit_session = handle::RH_UNASSIGNED;
            return;
        };
        if !s.is_audit || u.attrs & session_attr::AUDIT_RESET != 0 {
            s.is_audit = true;
            s.audit_digest.clear();
            self.v.exclusive_audit_session = u.session_handle;
        }
        let rp_hash = s
            .auth_hash
            .digest(&[&0u32.to_be_bytes(), &cc.0.to_be_bytes(), params]);
        s.audit_digest = s
            .auth_hash
            .digest(&[&s.audit_digest, &u.audit_cp_hash, &rp_hash]);
        if self.v.exclusive_audit_session != u.session_handle {
            self.v.exclusive_audit_session = handle::RH_UNASSIGNED;
        }
    }

    /// Does this use of a password or HMAC session use the authValue of
    /// `entity`? A password does; an HMAC session does unless it is bound
    /// to the entity (its key then already holds the authValue).
    fn uses_auth_value(&self, u: &SessionUse, entity: u32) -> bool {
        match self.v.sessions.get(u.session_handle) {
            None => true,
            Some(s) => {
                let auth = self.entity_auth(entity).unwrap_or_default();
                !s.is_bound_to(
                    entity,
                    &self.entity_name(entity),
                    strip_trailing_zeros(&auth),
                )
            }
        }
    }

    /// nonceTPM of a session (empty for none or a password session).
    fn session_nonce(&self, u: Option<&SessionUse>) -> Vec<u8> {
        u.and_then(|u| self.v.sessions.get(u.session_handle))
            .map(|s| s.nonce_tpm.clone())
            .unwrap_or_default()
    }

    /// The HMAC / encryption key of a session use: sessionKey, plus the
    /// authValue of the entity it authorizes unless the session is bound to
    /// that entity (Part 1 §19.6).
    fn session_key_for(&self, u: &SessionUse) -> zeroize::Zeroizing<Vec<u8>> {
        let Some(s) = self.v.sessions.get(u.session_handle) else {
            return Default::default();
        };
        let auth = match u.entity {
            Some(h) if u.policy_auth == Some(PolicyAuth::AuthValue) => {
                self.entity_auth_value(h).unwrap_or_default()
            }
            Some(h) if s.kind == SessionKind::Hmac => {
                let auth = self.entity_auth_value(h).unwrap_or_default();
                if s.is_bound_to(h, &self.entity_name(h), &auth) {
                    Vec::new()
                } else {
                    auth
                }
            }
            _ => Vec::new(),
        };
        s.hmac_key(&auth)
    }

    /// The parameter-encryption key of a session use (Part 1 §21.1):
    /// sessionKey, plus the authValue of the entity an HMAC session
    /// authorizes. Unlike the HMAC key, it keeps the authValue when the
    /// session is bound to that entity (as the reference implementation and
    /// tpm2-tss do).
    fn session_crypt_key_for(&self, u: &SessionUse) -> zeroize::Zeroizing<Vec<u8>> {
        let Some(s) = self.v.sessions.get(u.session_handle) else {
            return Default::default();
        };
        let auth = match u.entity {
            Some(h) if s.kind == SessionKind::Hmac => {
                zeroize::Zeroizing::new(self.entity_auth_value(h).unwrap_or_default())
            }
            _ => Default::default(),
        };
        s.hmac_key(&auth)
    }

    /// Decrypts (command) or encrypts (response) the first parameter, a
    /// TPM2B, with session `i`.
    fn crypt_first_param(
        &self,
        uses: &[SessionUse],
        i: usize,
        params: &mut [u8],
        encrypt: bool,
    ) -> Result<(), TpmRc> {
        let u = uses.get(i).ok_or(TpmRc::FAILURE)?;
        let s = self
            .v
            .sessions
            .get(u.session_handle)
            .ok_or(TpmRc::FAILURE)?;
        let size = params
            .get(..2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(|b| usize::from(u16::from_be_bytes(b)));
        let Some(data) = size.and_then(|n| params.get_mut(2..2 + n)) else {
            // The first parameter does not fit the command.
            return Err(if encrypt {
                TpmRc::FAILURE
            } else {
                TpmRc::SIZE.with_parameter(1)
            });
        };
        let key = self.session_crypt_key_for(u);
        let (newer, older) = if encrypt {
            (s.nonce_tpm.as_slice(), u.nonce_caller.as_slice())
        } else {
            (u.nonce_caller.as_slice(), s.nonce_tpm.as_slice())
        };
        if s.crypt(&key, newer, older, data, encrypt) {
            Ok(())
        } else {
            Err(TpmRc::SYMMETRIC.with_session(i + 1))
        }
    }

    /// The Name of an entity for cpHash: a handle's own value, except NV
    /// indices (nameAlg || H(public)) and sequence objects (empty).
    pub(crate) fn entity_name(&self, h: u32) -> Vec<u8> {
        match handle::handle_type(h) {
            handle::HT_NV_INDEX => self
                .nv_index(h)
                .map_or_else(|| h.to_be_bytes().to_vec(), |i| i.name()),
            handle::HT_TRANSIENT | handle::HT_PERSISTENT => {
                self.object(h).map(|o| o.name.clone()).unwrap_or_default()
            }
            _ => h.to_be_bytes().to_vec(),
        }
    }

    /// authPolicy of an entity (`None` when it cannot have one).
    fn entity_policy(&self, h: u32) -> Option<Vec<u8>> {
        match handle::handle_type(h) {
            handle::HT_NV_INDEX => self
                .nv_index(h)
                .map(|i| i.public.auth_policy.as_bytes().to_vec()),
            handle::HT_TRANSIENT | handle::HT_PERSISTENT => self
                .object(h)
                .map(|o| o.public.auth_policy.as_bytes().to_vec()),
            handle::HT_PERMANENT => Some(match h {
                handle::RH_OWNER => self.nv.owner_policy.digest.clone(),
                handle::RH_ENDORSEMENT => self.nv.endorsement_policy.digest.clone(),
                handle::RH_LOCKOUT => self.nv.lockout_policy.digest.clone(),
                handle::RH_PLATFORM => self.v.platform_policy.digest.clone(),
                _ => Vec::new(),
            }),
            _ => None,
        }
    }

    /// authValue of an entity (for binding and HMAC keys), trailing zeros
    /// removed.
    pub(crate) fn entity_auth_value(&self, h: u32) -> Option<Vec<u8>> {
        self.entity_auth(h)
            .map(|a| strip_trailing_zeros(&a).to_vec())
    }

    /// The authValue of an entity (`is_da_exempt` says whether it is
    /// protected from dictionary attacks).
    fn entity_auth(&self, h: u32) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        let auth = match handle::handle_type(h) {
            handle::HT_PCR => Vec::new(),
            handle::HT_TRANSIENT | handle::HT_PERSISTENT => match self.object(h) {
                Some(o) => o.auth().to_vec(),
                // Sequence objects.
                None => self.v.objects.get(h)?.auth().to_vec(),
            },
            handle::HT_NV_INDEX => self.nv_index(h)?.auth.to_vec(),
            _ => match h {
                handle::RH_PLATFORM => self.v.platform_auth.clone(),
                handle::RH_OWNER => self.nv.owner_auth.clone(),
                handle::RH_ENDORSEMENT => self.nv.endorsement_auth.clone(),
                handle::RH_LOCKOUT => self.nv.lockout_auth.clone(),
                handle::RH_NULL => Vec::new(),
                _ => return None,
            },
        };
        Some(zeroize::Zeroizing::new(auth))
    }
}

/// How one session of the authorization area was used.
#[derive(Debug)]
struct SessionUse {
    /// The session's handle (TPM_RS_PW for a password).
    session_handle: u32,
    /// sessionAttributes as sent.
    attrs: u8,
    /// nonceCaller as sent.
    nonce_caller: Vec<u8>,
    /// The handle it authorizes, if any.
    entity: Option<u32>,
    /// For a policy session that authorizes an entity: how its authValue
    /// is proven (kept for the response after the policy is reset).
    policy_auth: Option<PolicyAuth>,
    /// For the audit session: cpHash with its authHash.
    audit_cp_hash: Vec<u8>,
}

/// How a policy session that authorizes an entity proves its authValue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PolicyAuth {
    /// Not at all: the policy alone authorizes.
    None,
    /// TPM2_PolicyAuthValue: in the HMAC key.
    AuthValue,
    /// TPM2_PolicyPassword: in clear in the hmac field.
    Password,
}

/// Which handles were authorized with a policy session.
fn policy_flags(uses: &[SessionUse], def: &CommandDef, handles: &[u32; 3]) -> [bool; 3] {
    let mut out = [false; 3];
    for (slot, h) in out.iter_mut().zip(handles.iter()).take(def.handles.len()) {
        *slot = uses.iter().any(|u| {
            u.entity == Some(*h)
                && handle::handle_type(u.session_handle) == handle::HT_POLICY_SESSION
        });
    }
    out
}

/// The conditions policy commands put on a policy session besides its
/// policyDigest (Part 1 §19.7, the reference implementation's
/// CheckPolicyAuthSession), for the command `cc` it authorizes in `role`:
/// its time limit (TPM_RC_EXPIRED), the PCRs PolicyPCR checked
/// (TPM_RC_PCR_CHANGED), its locality (TPM_RC_LOCALITY), its nameHash
/// NV written state and templateHash (TPM_RC_POLICY_FAIL), physical
/// presence (TPM_RC_PP), its command code (TPM_RC_POLICY_CC; an
/// ADMIN or DUP role needs one: TPM_RC_POLICY_FAIL) and its cpHash
/// (TPM_RC_POLICY_FAIL).
fn policy_conditions(
    session: &crate::session::Session,
    cc: CommandCode,
    role: AuthRole,
    cp_hash: &[u8],
    name_hash: &[u8],
    now: &PolicyNow,
) -> Result<(), TpmRc> {
    if session.timeout != 0 && session.timeout < now.time {
        return Err(TpmRc::EXPIRED);
    }
    if session.pcr_counter.is_some_and(|c| c != now.pcr_counter) {
        return Err(TpmRc::PCR_CHANGED);
    }
    if !crate::commands::ea::policy_locality::locality_allows(session.locality, now.locality) {
        return Err(TpmRc::LOCALITY);
    }
    if !session.name_hash.is_empty() && !hmac_matches(&session.name_hash, name_hash) {
        return Err(TpmRc::POLICY_FAIL);
    }
    // PolicyTemplate: only the creation of an object from that template.
    if !session.template_hash.is_empty()
        && !hmac_matches(&session.template_hash, &now.template_hash)
    {
        return Err(TpmRc::POLICY_FAIL);
    }
    // PolicyPhysicalPresence: this TPM has no physical-presence signal.
    if session.pp_required {
        return Err(TpmRc::PP);
    }
    // PolicyNvWritten: only an NV index in that state.
    if let Some(want) = session.nv_written
        && now.nv_written != Some(want)
    {
        return Err(TpmRc::POLICY_FAIL);
    }
    match session.command_code {
        Some(code) if code != cc.0 => return Err(TpmRc::POLICY_CC),
        None if matches!(role, AuthRole::Admin | AuthRole::Dup) => {
            return Err(TpmRc::POLICY_FAIL);
        }
        _ => {}
    }
    if !session.cp_hash.is_empty() && !hmac_matches(&session.cp_hash, cp_hash) {
        return Err(TpmRc::POLICY_FAIL);
    }
    Ok(())
}

/// The TPM's state that policy conditions are checked against.
struct PolicyNow {
    /// TPM time (ms).
    time: u64,
    /// pcrUpdateCounter.
    pcr_counter: u32,
    /// The command's locality.
    locality: u8,
    /// TPMA_NV_WRITTEN of the authorized entity, when an NV index.
    nv_written: Option<bool>,
    /// H(inPublic) of a creation command (empty: not one).
    template_hash: Vec<u8>,
}

/// The templateHash of a TPM2_Create, TPM2_CreatePrimary or
/// TPM2_CreateLoaded command: H(inPublic's bytes, without their size),
/// inPublic following inSensitive. Empty for other commands.
fn template_hash(alg: crate::crypto::hash::HashAlg, cc: CommandCode, params: &[u8]) -> Vec<u8> {
    if cc != CommandCode::Create
        && cc != CommandCode::CreatePrimary
        && cc != CommandCode::CreateLoaded
    {
        return Vec::new();
    }
    let mut r = Reader::new(params);
    let template = r
        .u16()
        .and_then(|n| r.take(usize::from(n)))
        .and_then(|_| r.u16())
        .and_then(|n| r.take(usize::from(n)));
    match template {
        Ok(t) => alg.digest(&[t]),
        Err(_) => Vec::new(),
    }
}

/// Constant-time HMAC comparison.
fn hmac_matches(expected: &[u8], got: &[u8]) -> bool {
    expected.len() == got.len() && bool::from(expected.ct_eq(got))
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
