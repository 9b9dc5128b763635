//! TPM2_StartAuthSession (Part 3 §11.1): HMAC, policy and trial sessions,
//! optionally salted (a salt encrypted to a loaded RSA or ECC decryption
//! key) and / or bound to an entity (its authValue).

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use crate::keys::secret::{SECRET, secret_decrypt};
use crate::session::{Session, SessionKind};
use vtpm_wire::WireError;
use vtpm_wire::constants::{AlgId, handle};
use vtpm_wire::object::object_attr;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{EncryptedSecret, Nonce, PublicParms, SymDef, read_hash_alg};
use zeroize::Zeroizing;

/// TPM2_StartAuthSession.
pub struct StartAuthSession;

/// Parameters.
pub struct StartAuthSessionIn {
    nonce_caller: Nonce,
    encrypted_salt: EncryptedSecret,
    session_type: SessionKind,
    symmetric: SymDef,
    auth_hash: HashAlg,
}

/// Smallest nonceCaller.
const MIN_NONCE: usize = 16;

impl Command for StartAuthSession {
    type In = StartAuthSessionIn;

    fn read(p: &mut Params<'_>) -> Result<StartAuthSessionIn, TpmRc> {
        let nonce_caller = p.read()?;
        let encrypted_salt = p.read()?;
        let session_type = p.with(|r| match r.u8()? {
            0x00 => Ok(SessionKind::Hmac),
            0x01 => Ok(SessionKind::Policy),
            0x03 => Ok(SessionKind::Trial),
            _ => Err(WireError::Value),
        })?;
        let symmetric = p.read()?;
        let alg = p.with(|r| read_hash_alg(r, false))?;
        let auth_hash = HashAlg::from_alg(alg).ok_or(TpmRc::HASH.with_parameter(5))?;
        Ok(StartAuthSessionIn {
            nonce_caller,
            encrypted_salt,
            session_type,
            symmetric,
            auth_hash,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: StartAuthSessionIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let [tpm_key, bind, _] = call.handles;
        let n = input.nonce_caller.len();
        if n < MIN_NONCE || n > input.auth_hash.size() {
            return Err(TpmRc::SIZE.with_parameter(1));
        }
        let salt = if tpm_key == handle::RH_NULL {
            if !input.encrypted_salt.is_empty() {
                return Err(TpmRc::VALUE.with_parameter(2));
            }
            Zeroizing::new(Vec::new())
        } else {
            decrypt_salt(tpm, tpm_key, input.encrypted_salt.as_bytes())?
        };
        if let SymDef::Aes { mode, .. } = input.symmetric
            && mode != AlgId::CFB
        {
            return Err(TpmRc::MODE.with_parameter(4));
        }
        let bind_auth = if bind == handle::RH_NULL {
            None
        } else {
            Some((
                tpm.entity_name(bind),
                Zeroizing::new(
                    tpm.entity_auth_value(bind)
                        .ok_or(TpmRc::HANDLE.with_handle(2))?,
                ),
            ))
        };
        let mut nonce_tpm = vec![0u8; input.auth_hash.size()];
        tpm.random(&mut nonce_tpm);
        let mut session = Session::new(
            input.session_type,
            input.auth_hash,
            bind_auth
                .as_ref()
                .map(|(name, auth)| (bind, name.as_slice(), auth.as_slice())),
            &salt,
            input.nonce_caller.as_bytes(),
            nonce_tpm.clone(),
            input.symmetric,
        );
        // Policy time limits count from here (TPM2_PolicySecret).
        session.start_time = tpm.time_ms();
        let h = tpm.v.sessions.insert(session)?;
        out.handle = Some(h);
        out.params
            .write(&Nonce::new(&nonce_tpm).unwrap_or_default());
        Ok(())
    }
}

/// The salt of a salted session: `encrypted_salt` decrypted with the loaded
/// key `tpm_key` (Part 1 §19.6.9, Part 3 §11.1). The key must be an RSA or
/// ECC key (TPM_RC_KEY) with its private part loaded (TPM_RC_HANDLE) and
/// the decrypt attribute (TPM_RC_ATTRIBUTES); it need not be restricted.
/// An empty salt or one that does not decrypt is TPM_RC_VALUE, an
/// ephemeral point off the key's curve TPM_RC_ECC_POINT (both parameter 2).
fn decrypt_salt(
    tpm: &Tpm,
    tpm_key: u32,
    encrypted_salt: &[u8],
) -> Result<Zeroizing<Vec<u8>>, TpmRc> {
    let key = tpm.object(tpm_key).ok_or(TpmRc::KEY.with_handle(1))?;
    if !matches!(
        key.public.parms,
        PublicParms::Rsa { .. } | PublicParms::Ecc { .. }
    ) {
        return Err(TpmRc::KEY.with_handle(1));
    }
    if encrypted_salt.is_empty() {
        return Err(TpmRc::VALUE.with_parameter(2));
    }
    if key.sensitive.is_none() {
        return Err(TpmRc::HANDLE.with_handle(1));
    }
    if !key.has(object_attr::DECRYPT) {
        return Err(TpmRc::ATTRIBUTES.with_handle(1));
    }
    secret_decrypt(key, SECRET, encrypted_salt).map_err(|rc| {
        if rc == TpmRc::ECC_POINT {
            TpmRc::ECC_POINT.with_parameter(2)
        } else {
            TpmRc::VALUE.with_parameter(2)
        }
    })
}
