//! Authorization sessions (Part 1 §19): HMAC, policy and trial sessions,
//! their session keys, nonces and the HMAC and parameter-encryption
//! computations made with them.

use crate::crypto::hash::HashAlg;
use crate::crypto::kdf::kdfa;
use crate::crypto::sym;
use vtpm_wire::codec::{Reader, Writer};
use vtpm_wire::constants::handle;
use vtpm_wire::profile::{MAX_ACTIVE_SESSIONS, MAX_LOADED_SESSIONS};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::SymDef;
use vtpm_wire::{Marshal, Unmarshal};
use zeroize::Zeroizing;

/// TPM_SE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionKind {
    /// TPM_SE_HMAC.
    Hmac,
    /// TPM_SE_POLICY.
    Policy,
    /// TPM_SE_TRIAL.
    Trial,
}

/// The entity a session is bound to: its handle and a digest of its Name
/// and the authValue it had when the session started. As in Part 1
/// §19.6.10, the binding follows the Name, not the handle (an object saved
/// and loaded again at another handle is still the bind entity), and a
/// bound session stops being bound when the authValue changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundEntity {
    /// The entity's handle at binding time.
    pub handle: u32,
    /// SHA-256(Name || authValue) at binding time (sessions saved by
    /// earlier versions: SHA-256(authValue), matched with the handle).
    pub auth_digest: Vec<u8>,
}

/// A loaded session.
#[derive(Debug)]
pub struct Session {
    /// Its type.
    pub kind: SessionKind,
    /// authHash.
    pub auth_hash: HashAlg,
    /// sessionKey (empty for an unbound, unsalted session).
    pub session_key: Zeroizing<Vec<u8>>,
    /// The TPM's current nonce.
    pub nonce_tpm: Vec<u8>,
    /// The bind entity, if bound.
    pub bind: Option<BoundEntity>,
    /// Parameter-encryption algorithm.
    pub symmetric: SymDef,
    /// policyDigest (policy and trial sessions).
    pub policy_digest: Vec<u8>,
    /// The command the policy is restricted to (TPM2_PolicyCommandCode).
    pub command_code: Option<u32>,
    /// cpHash the authorized command must have (empty: none), set by
    /// TPM2_PolicySecret's cpHashA.
    pub cp_hash: Vec<u8>,
    /// TPM time (ms since `_TPM_Init`) at which the policy started: when
    /// the session started or its policy was last reset.
    pub start_time: u64,
    /// TPM time (ms) after which the policy no longer authorizes (0: no
    /// timeout).
    pub timeout: u64,
    /// pcrUpdateCounter when TPM2_PolicyPCR checked the PCRs: the policy
    /// no longer authorizes once it moved (TPM_RC_PCR_CHANGED).
    pub pcr_counter: Option<u32>,
    /// isAuthValueNeeded (TPM2_PolicyAuthValue): the authorization's HMAC
    /// key includes the entity's authValue.
    pub auth_value_needed: bool,
    /// isPasswordNeeded (TPM2_PolicyPassword): the authorization's hmac
    /// field is the entity's authValue in clear.
    pub password_needed: bool,
    /// commandLocality (TPM2_PolicyLocality), as its TPMA_LOCALITY octet
    /// (0: any locality).
    pub locality: u8,
    /// nameHash the authorized command's handles must have (empty: none;
    /// TPM2_PolicyNameHash, TPM2_PolicyDuplicationSelect).
    pub name_hash: Vec<u8>,
    /// The TPMA_NV_WRITTEN state the authorized NV index must have
    /// (TPM2_PolicyNvWritten).
    pub nv_written: Option<bool>,
    /// templateHash the authorized creation's inPublic must have (empty:
    /// none; TPM2_PolicyTemplate).
    pub template_hash: Vec<u8>,
    /// isPPRequired (TPM2_PolicyPhysicalPresence).
    pub pp_required: bool,
    /// isAudit: the session has been used as an audit session.
    pub is_audit: bool,
    /// The session's audit digest (Part 1 §19.6.11): empty until the
    /// session audits a command, then H(auditDigest || cpHash || rpHash).
    pub audit_digest: Vec<u8>,
}

impl Session {
    /// Starts a session: sessionKey ≔ KDFa(authHash, bindAuth || salt,
    /// "ATH", nonceTPM, nonceCaller, bits) unless both are empty. `bind`:
    /// the bind entity's handle, Name and authValue.
    pub fn new(
        kind: SessionKind,
        auth_hash: HashAlg,
        bind: Option<(u32, &[u8], &[u8])>,
        salt: &[u8],
        nonce_caller: &[u8],
        nonce_tpm: Vec<u8>,
        symmetric: SymDef,
    ) -> Session {
        let bind_auth = bind.map_or(&[][..], |(_, _, a)| a);
        let mut key_material = Zeroizing::new(bind_auth.to_vec());
        key_material.extend_from_slice(salt);
        let session_key = if key_material.is_empty() {
            Zeroizing::new(Vec::new())
        } else {
            let bits = u32::try_from(auth_hash.size() * 8).unwrap_or(0);
            kdfa(
                auth_hash,
                &key_material,
                b"ATH",
                &nonce_tpm,
                nonce_caller,
                bits,
            )
        };
        Session {
            kind,
            auth_hash,
            session_key,
            nonce_tpm,
            bind: bind.map(|(handle, name, auth)| BoundEntity {
                handle,
                auth_digest: HashAlg::Sha256.digest(&[name, auth]),
            }),
            symmetric,
            policy_digest: vec![0; auth_hash.size()],
            command_code: None,
            cp_hash: Vec::new(),
            start_time: 0,
            timeout: 0,
            pcr_counter: None,
            auth_value_needed: false,
            password_needed: false,
            locality: 0,
            name_hash: Vec::new(),
            nv_written: None,
            template_hash: Vec::new(),
            pp_required: false,
            is_audit: false,
            audit_digest: Vec::new(),
        }
    }

    /// Resets the policy state (policyDigest and the conditions policy
    /// commands added) as a new policy starting at TPM time `now`: after a
    /// policy session authorized a command and continues (Part 1 §19.7).
    pub fn reset_policy(&mut self, now: u64) {
        self.policy_digest = vec![0; self.auth_hash.size()];
        self.command_code = None;
        self.cp_hash.clear();
        self.timeout = 0;
        self.start_time = now;
        self.pcr_counter = None;
        self.auth_value_needed = false;
        self.password_needed = false;
        self.locality = 0;
        self.name_hash.clear();
        self.nv_written = None;
        self.template_hash.clear();
        self.pp_required = false;
    }

    /// PolicyUpdate (Part 3 §23.2.3): policyDigest ≔ H(policyDigest ||
    /// commandCode || arg2), then, with `arg3`, policyDigest ≔
    /// H(policyDigest || arg3).
    pub fn policy_update(&mut self, command_code: u32, arg2: &[u8], arg3: Option<&[u8]>) {
        self.policy_digest =
            self.auth_hash
                .digest(&[&self.policy_digest, &command_code.to_be_bytes(), arg2]);
        if let Some(arg3) = arg3 {
            self.policy_digest = self.auth_hash.digest(&[&self.policy_digest, arg3]);
        }
    }

    /// Is this session bound to `entity`, whose Name is now `name` and
    /// authValue `auth`?
    pub fn is_bound_to(&self, entity: u32, name: &[u8], auth: &[u8]) -> bool {
        self.bind.as_ref().is_some_and(|b| {
            b.auth_digest == HashAlg::Sha256.digest(&[name, auth])
                || (b.handle == entity && b.auth_digest == HashAlg::Sha256.digest(&[auth]))
        })
    }

    /// The HMAC key: sessionKey || authValue.
    pub fn hmac_key(&self, auth_value: &[u8]) -> Zeroizing<Vec<u8>> {
        let mut k = Zeroizing::new(self.session_key.to_vec());
        k.extend_from_slice(auth_value);
        k
    }

    /// Command HMAC: HMAC(key, cpHash || nonceCaller || nonceTPM ||
    /// nonceTPMdecrypt || nonceTPMencrypt || sessionAttributes).
    pub fn command_hmac(
        &self,
        key: &[u8],
        cp_hash: &[u8],
        nonce_caller: &[u8],
        extra: &[&[u8]],
        attrs: u8,
    ) -> Vec<u8> {
        let mut parts: Vec<&[u8]> = vec![cp_hash, nonce_caller, &self.nonce_tpm];
        parts.extend_from_slice(extra);
        let a = [attrs];
        parts.push(&a);
        self.auth_hash.hmac(key, &parts)
    }

    /// Response HMAC: HMAC(key, rpHash || nonceTPM || nonceCaller ||
    /// sessionAttributes), with the new nonceTPM.
    pub fn response_hmac(
        &self,
        key: &[u8],
        rp_hash: &[u8],
        nonce_caller: &[u8],
        attrs: u8,
    ) -> Vec<u8> {
        self.auth_hash
            .hmac(key, &[rp_hash, &self.nonce_tpm, nonce_caller, &[attrs]])
    }

    /// Decrypts (command) or encrypts (response) a parameter in place.
    /// `newer`/`older` are nonceCaller/nonceTPM for a command and
    /// nonceTPM/nonceCaller for a response. False if the session has no
    /// symmetric algorithm.
    pub fn crypt(
        &self,
        key: &[u8],
        newer: &[u8],
        older: &[u8],
        data: &mut [u8],
        encrypt: bool,
    ) -> bool {
        match self.symmetric {
            SymDef::Null => false,
            SymDef::Aes { key_bits, .. } => {
                let key_bytes = usize::from(key_bits / 8);
                let bits = u32::from(key_bits) + 128;
                let stream = kdfa(self.auth_hash, key, b"CFB", newer, older, bits);
                let (k, iv) = stream.split_at(key_bytes.min(stream.len()));
                sym::aes_cfb(k, iv, data, encrypt)
            }
            SymDef::Xor { hash } => match HashAlg::from_alg(hash) {
                Some(h) => {
                    sym::xor_obfuscate(h, key, newer, older, data);
                    true
                }
                None => false,
            },
        }
    }
}

/// One active session: loaded, or saved by TPM2_ContextSave (then only
/// the context blob with `saved`'s sequence number can load it again).
#[derive(Debug)]
struct Entry {
    session: Session,
    saved: Option<u64>,
}

/// The active sessions (loaded and saved), at most MAX_ACTIVE_SESSIONS, of
/// which at most MAX_LOADED_SESSIONS loaded. A session keeps its handle
/// while saved.
#[derive(Debug)]
pub struct Sessions {
    entries: Vec<Option<Entry>>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            entries: (0..MAX_ACTIVE_SESSIONS).map(|_| None).collect(),
        }
    }
}

fn type_of(kind: SessionKind) -> u8 {
    match kind {
        SessionKind::Hmac => handle::HT_HMAC_SESSION,
        SessionKind::Policy | SessionKind::Trial => handle::HT_POLICY_SESSION,
    }
}

impl Sessions {
    fn slot(h: u32) -> Option<usize> {
        usize::try_from(h & 0x00FF_FFFF)
            .ok()
            .filter(|&i| i < MAX_ACTIVE_SESSIONS)
    }

    fn entry(&self, h: u32) -> Option<&Entry> {
        let e = self.entries.get(Self::slot(h)?)?.as_ref()?;
        (type_of(e.session.kind) == handle::handle_type(h)).then_some(e)
    }

    fn entry_mut(&mut self, h: u32) -> Option<&mut Entry> {
        let e = self.entries.get_mut(Self::slot(h)?)?.as_mut()?;
        (type_of(e.session.kind) == handle::handle_type(h)).then_some(e)
    }

    /// Starts tracking a new loaded session; its handle, or
    /// TPM_RC_SESSION_MEMORY (no loaded slot) / TPM_RC_SESSION_HANDLES (no
    /// active slot).
    pub fn insert(&mut self, s: Session) -> Result<u32, TpmRc> {
        if self.count() >= MAX_LOADED_SESSIONS {
            return Err(TpmRc::SESSION_MEMORY);
        }
        let ty = type_of(s.kind);
        let (i, slot) = self
            .entries
            .iter_mut()
            .enumerate()
            .find(|(_, x)| x.is_none())
            .ok_or(TpmRc::SESSION_HANDLES)?;
        *slot = Some(Entry {
            session: s,
            saved: None,
        });
        Ok((u32::from(ty) << 24) | u32::try_from(i).map_err(|_| TpmRc::SESSION_HANDLES)?)
    }

    /// The loaded session at `h`.
    pub fn get(&self, h: u32) -> Option<&Session> {
        self.entry(h)
            .filter(|e| e.saved.is_none())
            .map(|e| &e.session)
    }

    /// The loaded session at `h`, mutable.
    pub fn get_mut(&mut self, h: u32) -> Option<&mut Session> {
        self.entry_mut(h)
            .filter(|e| e.saved.is_none())
            .map(|e| &mut e.session)
    }

    /// Ends the session at `h`, loaded or saved.
    pub fn flush(&mut self, h: u32) -> Option<Session> {
        self.entry(h)?;
        self.entries
            .get_mut(Self::slot(h)?)?
            .take()
            .map(|e| e.session)
    }

    /// TPM2_ContextSave of a loaded session: it is saved under `sequence`.
    pub fn save(&mut self, h: u32, sequence: u64) -> bool {
        match self.entry_mut(h) {
            Some(e) if e.saved.is_none() => {
                e.saved = Some(sequence);
                true
            }
            _ => false,
        }
    }

    /// TPM2_ContextLoad of a saved session: only the context saved last,
    /// once.
    pub fn load(&mut self, h: u32, sequence: u64) -> Result<(), TpmRc> {
        let loaded = self.count();
        let e = self.entry_mut(h).ok_or(TpmRc::HANDLE)?;
        if e.saved != Some(sequence) {
            return Err(TpmRc::HANDLE);
        }
        if loaded >= MAX_LOADED_SESSIONS {
            return Err(TpmRc::SESSION_MEMORY);
        }
        e.saved = None;
        Ok(())
    }

    /// Sequence number of the oldest saved session.
    pub fn oldest_saved(&self) -> Option<u64> {
        self.entries.iter().flatten().filter_map(|e| e.saved).min()
    }

    /// Handles of loaded sessions of handle type `ty`, ascending.
    pub fn handles(&self, ty: u8) -> Vec<u32> {
        self.list(ty, false)
    }

    /// Handles of saved sessions of handle type `ty`, ascending.
    pub fn saved_handles(&self, ty: u8) -> Vec<u32> {
        self.list(ty, true)
    }

    fn list(&self, ty: u8, saved: bool) -> Vec<u32> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let e = e.as_ref()?;
                (type_of(e.session.kind) == ty && e.saved.is_some() == saved)
                    .then(|| (u32::from(ty) << 24) | u32::try_from(i).unwrap_or(0))
            })
            .collect()
    }

    /// Number of loaded sessions.
    pub fn count(&self) -> usize {
        self.entries
            .iter()
            .flatten()
            .filter(|e| e.saved.is_none())
            .count()
    }

    /// Serializes every active session (for the volatile state).
    pub fn write(&self, w: &mut Writer) {
        let active: Vec<(usize, &Entry)> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| Some((i, e.as_ref()?)))
            .collect();
        w.u8(u8::try_from(active.len()).unwrap_or(0));
        for (i, e) in active {
            let s = &e.session;
            w.u8(u8::try_from(i).unwrap_or(0));
            w.u8(match s.kind {
                SessionKind::Hmac => 0,
                SessionKind::Policy => 1,
                SessionKind::Trial => 3,
            });
            w.write(&s.auth_hash.alg());
            w.sized_u16(|w| w.bytes(&s.session_key));
            w.sized_u16(|w| w.bytes(&s.nonce_tpm));
            match &s.bind {
                None => w.u8(0),
                Some(b) => {
                    w.u8(1);
                    w.u32(b.handle);
                    w.sized_u16(|w| w.bytes(&b.auth_digest));
                }
            }
            s.symmetric.marshal(w);
            w.sized_u16(|w| w.bytes(&s.policy_digest));
            // Version 3: the policy conditions.
            match s.command_code {
                None => w.u8(0),
                Some(cc) => {
                    w.u8(1);
                    w.u32(cc);
                }
            }
            w.sized_u16(|w| w.bytes(&s.cp_hash));
            w.u64(s.start_time);
            w.u64(s.timeout);
            // Version 4: the conditions of the other policy commands.
            match s.pcr_counter {
                None => w.u8(0),
                Some(c) => {
                    w.u8(1);
                    w.u32(c);
                }
            }
            w.u8(u8::from(s.auth_value_needed)
                | (u8::from(s.password_needed) << 1)
                | (u8::from(s.pp_required) << 2));
            w.u8(s.locality);
            w.sized_u16(|w| w.bytes(&s.name_hash));
            w.u8(match s.nv_written {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            });
            w.sized_u16(|w| w.bytes(&s.template_hash));
            // Version 5: the audit state.
            w.u8(u8::from(s.is_audit));
            w.sized_u16(|w| w.bytes(&s.audit_digest));
            match e.saved {
                None => w.u8(0),
                Some(seq) => {
                    w.u8(1);
                    w.u64(seq);
                }
            }
        }
    }

    /// Reads what [`Sessions::write`] wrote, in volatile-state format
    /// `version` (before 3: without the policy conditions; before 4:
    /// without those of PolicyPCR, PolicyAuthValue … PolicyTemplate).
    pub fn read(r: &mut Reader<'_>, version: u16) -> Option<Sessions> {
        fn bytes(r: &mut Reader<'_>, max: usize) -> Option<Vec<u8>> {
            let n = usize::from(r.u16().ok()?);
            if n > max {
                return None;
            }
            Some(r.take(n).ok()?.to_vec())
        }
        let mut sessions = Sessions::default();
        for _ in 0..r.u8().ok()? {
            let i = usize::from(r.u8().ok()?);
            let kind = match r.u8().ok()? {
                0 => SessionKind::Hmac,
                1 => SessionKind::Policy,
                3 => SessionKind::Trial,
                _ => return None,
            };
            let auth_hash = HashAlg::from_alg(vtpm_wire::constants::AlgId(r.u16().ok()?))?;
            let session_key = Zeroizing::new(bytes(r, 64)?);
            let nonce_tpm = bytes(r, 64)?;
            let bind = match r.u8().ok()? {
                0 => None,
                1 => Some(BoundEntity {
                    handle: r.u32().ok()?,
                    auth_digest: bytes(r, 64)?,
                }),
                _ => return None,
            };
            let symmetric = SymDef::unmarshal(r).ok()?;
            let policy_digest = bytes(r, 64)?;
            let (mut command_code, mut cp_hash, mut start_time, mut timeout) =
                (None, Vec::new(), 0, 0);
            if version >= 3 {
                command_code = match r.u8().ok()? {
                    0 => None,
                    1 => Some(r.u32().ok()?),
                    _ => return None,
                };
                cp_hash = bytes(r, 64)?;
                start_time = r.u64().ok()?;
                timeout = r.u64().ok()?;
            }
            let mut session = Session {
                kind,
                auth_hash,
                session_key,
                nonce_tpm,
                bind,
                symmetric,
                policy_digest,
                command_code,
                cp_hash,
                start_time,
                timeout,
                pcr_counter: None,
                auth_value_needed: false,
                password_needed: false,
                locality: 0,
                name_hash: Vec::new(),
                nv_written: None,
                template_hash: Vec::new(),
                pp_required: false,
                is_audit: false,
                audit_digest: Vec::new(),
            };
            if version >= 4 {
                session.pcr_counter = match r.u8().ok()? {
                    0 => None,
                    1 => Some(r.u32().ok()?),
                    _ => return None,
                };
                let flags = r.u8().ok()?;
                if flags & !7 != 0 {
                    return None;
                }
                session.pp_required = flags & 4 != 0;
                session.auth_value_needed = flags & 1 != 0;
                session.password_needed = flags & 2 != 0;
                session.locality = r.u8().ok()?;
                session.name_hash = bytes(r, 64)?;
                session.nv_written = match r.u8().ok()? {
                    0 => None,
                    1 => Some(false),
                    2 => Some(true),
                    _ => return None,
                };
                session.template_hash = bytes(r, 64)?;
            }
            if version >= 5 {
                session.is_audit = match r.u8().ok()? {
                    0 => false,
                    1 => true,
                    _ => return None,
                };
                session.audit_digest = bytes(r, 64)?;
            }
            let saved = match r.u8().ok()? {
                0 => None,
                1 => Some(r.u64().ok()?),
                _ => return None,
            };
            let slot = sessions.entries.get_mut(i)?;
            if slot.is_some() {
                return None;
            }
            *slot = Some(Entry { session, saved });
        }
        (sessions.count() <= MAX_LOADED_SESSIONS).then_some(sessions)
    }

    /// Number of active (loaded or saved) sessions.
    pub fn active(&self) -> usize {
        self.entries.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_session() -> Session {
        Session::new(
            SessionKind::Policy,
            HashAlg::Sha256,
            None,
            &[],
            &[1; 16],
            vec![2; 32],
            SymDef::Null,
        )
    }

    #[test]
    fn policy_conditions_are_saved_and_older_versions_are_read() {
        let mut s = policy_session();
        s.policy_update(0x16C, &0x14Bu32.to_be_bytes(), None);
        s.command_code = Some(0x14B);
        s.cp_hash = vec![9; 32];
        s.start_time = 1234;
        s.timeout = 5678;
        let mut sessions = Sessions::default();
        let h = sessions.insert(s).unwrap();
        let mut w = Writer::new();
        sessions.write(&mut w);
        let blob = w.into_vec();
        let back = Sessions::read(&mut Reader::new(&blob), 5).unwrap();
        let b = back.get(h).unwrap();
        assert_eq!(b.command_code, Some(0x14B));
        assert_eq!(b.cp_hash, vec![9; 32]);
        assert_eq!((b.start_time, b.timeout), (1234, 5678));
        assert_eq!(b.policy_digest, sessions.get(h).unwrap().policy_digest);

        // Versions 1 and 2 had no policy conditions after policyDigest.
        let mut w = Writer::new();
        w.u8(1); // one session
        w.u8(0); // slot
        w.u8(1); // TPM_SE_POLICY
        w.u16(0x000B);
        w.u16(0); // sessionKey
        w.u16(32);
        w.bytes(&[2; 32]); // nonceTPM
        w.u8(0); // unbound
        w.u16(0x0010); // symmetric NULL
        w.u16(32);
        w.bytes(&[7; 32]); // policyDigest
        w.u8(0); // loaded
        let v1 = w.into_vec();
        let old = Sessions::read(&mut Reader::new(&v1), 2).unwrap();
        let o = old.get(0x0300_0000).unwrap();
        assert_eq!(o.policy_digest, vec![7; 32]);
        assert_eq!(o.command_code, None);
        assert!(o.cp_hash.is_empty());
        assert!(Sessions::read(&mut Reader::new(&v1), 3).is_none());
    }

    #[test]
    fn version_4_conditions_are_saved_and_version_3_is_read() {
        let mut s = policy_session();
        s.pcr_counter = Some(7);
        s.auth_value_needed = true;
        s.locality = 0x08;
        s.name_hash = vec![3; 32];
        s.nv_written = Some(true);
        s.template_hash = vec![4; 32];
        s.pp_required = true;
        let mut sessions = Sessions::default();
        let h = sessions.insert(s).unwrap();
        let mut w = Writer::new();
        sessions.write(&mut w);
        let blob = w.into_vec();
        let back = Sessions::read(&mut Reader::new(&blob), 5).unwrap();
        let b = back.get(h).unwrap();
        assert_eq!(b.pcr_counter, Some(7));
        assert!(b.auth_value_needed && !b.password_needed);
        assert_eq!(b.locality, 0x08);
        assert_eq!(b.name_hash, vec![3; 32]);
        assert_eq!(b.nv_written, Some(true));
        assert_eq!(b.template_hash, vec![4; 32]);
        assert!(b.pp_required);

        // Version 3: the same without the fields version 4 appended
        // (1 + 4 pcrCounter, 1 flags, 1 locality, 2 + 32 nameHash,
        // 1 nvWritten, 2 + 32 templateHash) and those version 5 appended
        // (1 isAudit, 2 + 0 auditDigest) before the saved flag.
        let cut = 5 + 1 + 1 + 34 + 1 + 34 + 3;
        let saved_at = blob.len() - 1;
        let mut v3 = blob[..saved_at - cut].to_vec();
        v3.push(0);
        let old = Sessions::read(&mut Reader::new(&v3), 3).unwrap();
        let o = old.get(h).unwrap();
        assert_eq!((o.pcr_counter, o.locality), (None, 0));
        assert!(o.name_hash.is_empty() && o.nv_written.is_none());
        assert!(Sessions::read(&mut Reader::new(&v3), 4).is_none());
    }

    #[test]
    fn version_5_audit_state_is_saved_and_version_4_is_read() {
        let mut s = Session::new(
            SessionKind::Hmac,
            HashAlg::Sha256,
            None,
            &[],
            &[1; 16],
            vec![2; 32],
            SymDef::Null,
        );
        s.is_audit = true;
        s.audit_digest = vec![5; 32];
        let mut sessions = Sessions::default();
        let h = sessions.insert(s).unwrap();
        let mut w = Writer::new();
        sessions.write(&mut w);
        let blob = w.into_vec();
        let back = Sessions::read(&mut Reader::new(&blob), 5).unwrap();
        let b = back.get(h).unwrap();
        assert!(b.is_audit);
        assert_eq!(b.audit_digest, vec![5; 32]);

        // Version 4: without isAudit (1) and auditDigest (2 + 32).
        let saved_at = blob.len() - 1;
        let mut v4 = blob[..saved_at - 35].to_vec();
        v4.push(0);
        let old = Sessions::read(&mut Reader::new(&v4), 4).unwrap();
        let o = old.get(h).unwrap();
        assert!(!o.is_audit && o.audit_digest.is_empty());
        assert!(Sessions::read(&mut Reader::new(&v4), 5).is_none());
    }

    #[test]
    fn reset_policy_starts_over() {
        let mut s = policy_session();
        s.policy_update(0x16C, &0x14Bu32.to_be_bytes(), None);
        s.command_code = Some(0x14B);
        s.timeout = 10;
        s.reset_policy(99);
        assert_eq!(s.policy_digest, vec![0; 32]);
        assert_eq!((s.command_code, s.timeout, s.start_time), (None, 0, 99));
    }
}
