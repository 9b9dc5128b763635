//! TPM2_NV_Certify (Part 3 §31.16).

use crate::Tpm;
use crate::commands::attestation::{sign_attest, signer};
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use crate::nv::NvAuthBy;
use vtpm_wire::attest::{Attested, NvCertifyInfo, NvDigestCertifyInfo};
use vtpm_wire::constants::handle;
use vtpm_wire::object::SigScheme;
use vtpm_wire::profile::MAX_NV_BUFFER_SIZE;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Data, Digest, MaxNvBuffer, Name, nv_attr};

/// TPM2_NV_Certify.
pub struct NvCertify;

/// Parameters: qualifyingData, inScheme, size, offset.
pub struct NvCertifyIn {
    qualifying_data: Data,
    in_scheme: SigScheme,
    size: u16,
    offset: u16,
}

impl Command for NvCertify {
    type In = NvCertifyIn;

    fn read(p: &mut Params<'_>) -> Result<NvCertifyIn, TpmRc> {
        Ok(NvCertifyIn {
            qualifying_data: p.read()?,
            in_scheme: p.read()?,
            size: p.read()?,
            offset: p.read()?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: NvCertifyIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let [sign_handle, auth_handle, nv_index] = call.handles;
        let index = tpm
            .nv_index(nv_index)
            .ok_or(TpmRc::HANDLE.with_handle(3))?
            .clone();
        // An index can only authorize access to itself (checked after
        // the read lock, as NvReadAccessChecks does).
        if handle::handle_type(auth_handle) == handle::HT_NV_INDEX
            && auth_handle != nv_index
            && !index.has(nv_attr::READLOCKED)
        {
            return Err(TpmRc::NV_AUTHORIZATION);
        }
        Tpm::nv_read_checks(
            &index,
            NvAuthBy::from_handle(auth_handle, call.policy_auth[1]),
        )?;
        let (key, scheme) = signer(tpm, sign_handle, input.in_scheme, 1, 2)?;
        let index_name = Name::new(&index.name()).map_err(|_| TpmRc::FAILURE)?;
        let attested = if input.size != 0 || input.offset != 0 {
            // TPMS_NV_CERTIFY_INFO: the selected bytes.
            if usize::from(input.size) > MAX_NV_BUFFER_SIZE {
                return Err(TpmRc::VALUE.with_parameter(3));
            }
            let (offset, size) = (usize::from(input.offset), usize::from(input.size));
            if offset + size > usize::from(index.public.data_size) {
                return Err(TpmRc::NV_RANGE);
            }
            let data = index
                .data
                .get(offset..offset + size)
                .ok_or(TpmRc::NV_RANGE)?;
            Attested::Nv(NvCertifyInfo {
                index_name,
                offset: input.offset,
                nv_contents: MaxNvBuffer::new(data).map_err(|_| TpmRc::FAILURE)?,
            })
        } else {
            // size and offset both 0: TPMS_NV_DIGEST_CERTIFY_INFO, the
            // digest (with the scheme's hash) of all the index data. With
            // no signing key the scheme is TPM_ALG_NULL whatever inScheme
            // says (the reference implementation's CryptSelectSignScheme):
            // an empty digest.
            let hash = key.as_ref().and_then(|_| HashAlg::from_alg(scheme.hash));
            let nv_digest = match hash {
                Some(h) => {
                    let len = usize::from(index.public.data_size).min(index.data.len());
                    let data = index.data.get(..len).unwrap_or_default();
                    Digest::new(&h.digest(&[data])).map_err(|_| TpmRc::FAILURE)?
                }
                None => Digest::default(),
            };
            Attested::NvDigest(NvDigestCertifyInfo {
                index_name,
                nv_digest,
            })
        };
        let attest = tpm.fill_attest(key.as_ref(), &input.qualifying_data, attested)?;
        sign_attest(key.as_ref(), scheme, attest, 1, 2, out)
    }
}
