//! Part 3 chapter 18: Attestation Commands, and what they share: filling
//! in the common TPMS_ATTEST fields (the reference implementation's
//! FillInAttestInfo) and signing the marshalled structure
//! (SignAttestInfo).

pub mod certify;
pub mod certify_creation;
pub mod get_command_audit_digest;
pub mod get_session_audit_digest;
pub mod get_time;
pub mod quote;

use crate::Tpm;
use crate::commands::signature::{SignError, is_signing_key, select_sign_scheme, sign_digest};
use crate::crypto::hash::HashAlg;
use crate::crypto::kdf::kdfa;
use crate::dispatch::Output;
use crate::keys::KeyObject;
use vtpm_wire::attest::{Attest, Attested, Tpm2bAttest};
use vtpm_wire::codec::Marshal;
use vtpm_wire::constants::handle;
use vtpm_wire::object::{SigScheme, Signature};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Data, Name};

/// The signing key of an attestation command (`None` for TPM_RH_NULL)
/// and the scheme it signs with. `sign_handle_pos` and `scheme_pos` are
/// the handle and parameter numbers for errors.
pub(crate) fn signer(
    tpm: &Tpm,
    sign_handle: u32,
    in_scheme: SigScheme,
    sign_handle_pos: usize,
    scheme_pos: usize,
) -> Result<(Option<KeyObject>, SigScheme), TpmRc> {
    if sign_handle == handle::RH_NULL {
        // No key: the caller's scheme is used as given (a quote still
        // needs its hash for pcrDigest).
        return Ok((None, in_scheme));
    }
    let key = tpm
        .object(sign_handle)
        .filter(|k| is_signing_key(k))
        .ok_or(TpmRc::KEY.with_handle(sign_handle_pos))?;
    let scheme =
        select_sign_scheme(key, in_scheme).ok_or(TpmRc::SCHEME.with_parameter(scheme_pos))?;
    if HashAlg::from_alg(scheme.hash).is_none() {
        return Err(TpmRc::SCHEME.with_parameter(scheme_pos));
    }
    Ok((Some(key.clone()), scheme))
}

impl Tpm {
    /// TPMS_ATTEST with its common fields filled in (Part 3 §18.1):
    /// qualifiedSigner, extraData (the qualifyingData), clockInfo and
    /// firmwareVersion. When the signing key is not in the endorsement or
    /// platform hierarchy (or there is none), resetCount, restartCount
    /// and firmwareVersion are obfuscated by adding
    /// KDFa(nameAlg, shProof, "OBFUSCATE", qualifiedSigner, ∅, 128): its
    /// first 64 bits (big-endian) are added to firmwareVersion, the next
    /// 32 to resetCount and the last 32 to restartCount (wrapping).
    pub(crate) fn fill_attest(
        &self,
        key: Option<&KeyObject>,
        qualifying_data: &Data,
        attested: Attested,
    ) -> Result<Attest, TpmRc> {
        let qualified_signer = match key {
            Some(k) => Name::new(&k.qualified_name).map_err(|_| TpmRc::FAILURE)?,
            None => Name::new(&handle::RH_NULL.to_be_bytes()).map_err(|_| TpmRc::FAILURE)?,
        };
        let mut clock_info = self.time_info().clock_info;
        let (fw1, fw2) = crate::commands::capability::get_capability::firmware_version();
        let mut firmware_version = (u64::from(fw1) << 32) | u64::from(fw2);
        let privacy_exempt = key.is_some_and(|k| {
            k.hierarchy == handle::RH_ENDORSEMENT || k.hierarchy == handle::RH_PLATFORM
        });
        if !privacy_exempt {
            let alg = key
                .map(KeyObject::name_alg)
                .unwrap_or(crate::tickets::CONTEXT_INTEGRITY_HASH);
            let ob = kdfa(
                alg,
                &self.nv.sh_proof,
                b"OBFUSCATE",
                qualified_signer.as_bytes(),
                &[],
                128,
            );
            let mut first = [0u8; 8];
            let mut reset = [0u8; 4];
            let mut restart = [0u8; 4];
            if let (Some(a), Some(b), Some(c)) = (ob.get(0..8), ob.get(8..12), ob.get(12..16)) {
                first.copy_from_slice(a);
                reset.copy_from_slice(b);
                restart.copy_from_slice(c);
            }
            firmware_version = firmware_version.wrapping_add(u64::from_be_bytes(first));
            clock_info.reset_count = clock_info
                .reset_count
                .wrapping_add(u32::from_be_bytes(reset));
            clock_info.restart_count = clock_info
                .restart_count
                .wrapping_add(u32::from_be_bytes(restart));
        }
        Ok(Attest {
            qualified_signer,
            extra_data: qualifying_data.clone(),
            clock_info,
            firmware_version,
            attested,
        })
    }
}

/// Signs `attest` and writes TPM2B_ATTEST and TPMT_SIGNATURE to `out`:
/// the signature is over H_scheme(TPMS_ATTEST) (a restricted key may sign
/// it: the structure starts with TPM_GENERATED_VALUE and was made by the
/// TPM); a NULL signature without a key.
pub(crate) fn sign_attest(
    key: Option<&KeyObject>,
    scheme: SigScheme,
    attest: Attest,
    sign_handle_pos: usize,
    scheme_pos: usize,
    out: &mut Output,
) -> Result<(), TpmRc> {
    let signature = match key {
        None => Signature::Null,
        Some(key) => {
            let hash =
                HashAlg::from_alg(scheme.hash).ok_or(TpmRc::SCHEME.with_parameter(scheme_pos))?;
            let digest = hash.digest(&[&attest.to_bytes()]);
            sign_digest(key, scheme, &digest).map_err(|e| match e {
                SignError::Scheme => TpmRc::SCHEME.with_parameter(scheme_pos),
                other => other.rc().with_handle(sign_handle_pos),
            })?
        }
    };
    out.params.write(&Tpm2bAttest(attest));
    out.params.write(&signature);
    Ok(())
}
