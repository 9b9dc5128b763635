//! TPM2_NV_ChangeAuth (Part 3 §31.15).

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Auth;
use zeroize::Zeroizing;

/// TPM2_NV_ChangeAuth.
pub struct NvChangeAuth;

impl Command for NvChangeAuth {
    type In = Auth;

    fn read(p: &mut Params<'_>) -> Result<Auth, TpmRc> {
        p.read()
    }

    fn action(tpm: &mut Tpm, call: &Call, new_auth: Auth, _out: &mut Output) -> Result<(), TpmRc> {
        let nv_index = call.handles[0];
        let index = tpm
            .nv
            .nv_indices
            .get_mut(&nv_index)
            .ok_or(TpmRc::HANDLE.with_handle(1))?;
        let b = new_auth.as_bytes();
        let end = b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
        let auth = b.get(..end).unwrap_or(&[]);
        let digest_size = HashAlg::from_alg(index.public.name_alg).map_or(0, HashAlg::size);
        if auth.len() > digest_size {
            return Err(TpmRc::SIZE.with_parameter(1));
        }
        index.auth = Zeroizing::new(auth.to_vec());
        tpm.mark_nv_dirty();
        Ok(())
    }
}
