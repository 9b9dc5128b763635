//! TPM2_NV_DefineSpace (Part 3 §31.3).

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use crate::nv::{MAX_NV_INDEX_SIZE, NV_MEMORY_SIZE, NvIndex};
use vtpm_wire::constants::handle;
use vtpm_wire::profile::MAX_NV_BUFFER_SIZE;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{Auth, Tpm2bNvPublic, nv_attr};
use zeroize::Zeroizing;

/// TPM2_NV_DefineSpace.
pub struct NvDefineSpace;

/// Parameters: auth, publicInfo.
pub struct NvDefineSpaceIn {
    auth: Auth,
    public_info: Tpm2bNvPublic,
}

/// The index types this TPM implements.
const IMPLEMENTED_TYPES: [u32; 6] = [
    nv_attr::NT_ORDINARY,
    nv_attr::NT_COUNTER,
    nv_attr::NT_BITS,
    nv_attr::NT_EXTEND,
    nv_attr::NT_PIN_FAIL,
    nv_attr::NT_PIN_PASS,
];

impl Command for NvDefineSpace {
    type In = NvDefineSpaceIn;

    fn read(p: &mut Params<'_>) -> Result<NvDefineSpaceIn, TpmRc> {
        Ok(NvDefineSpaceIn {
            auth: p.read()?,
            public_info: p.read()?,
        })
    }

    fn action(
        tpm: &mut Tpm,
        call: &Call,
        input: NvDefineSpaceIn,
        _out: &mut Output,
    ) -> Result<(), TpmRc> {
        let public = input.public_info.0;
        let attrs = public.attributes;
        let p2 = |rc: TpmRc| rc.with_parameter(2);
        let digest_size = HashAlg::from_alg(public.name_alg).map_or(0, HashAlg::size);
        let auth: Vec<u8> = {
            let b = input.auth.as_bytes();
            let end = b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
            b.get(..end).unwrap_or(&[]).to_vec()
        };
        if auth.len() > digest_size {
            return Err(TpmRc::SIZE.with_parameter(1));
        }
        if !public.auth_policy.is_empty() && public.auth_policy.len() != digest_size {
            return Err(p2(TpmRc::SIZE));
        }
        let platform = call.handles[0] == handle::RH_PLATFORM;
        if platform && !tpm.v.ph_enable_nv {
            return Err(TpmRc::HIERARCHY.with_handle(1));
        }
        let nt = nv_attr::nt(attrs);
        if !IMPLEMENTED_TYPES.contains(&nt) {
            return Err(p2(TpmRc::ATTRIBUTES));
        }
        // dataSize by type: ordinary up to MAX_NV_INDEX_SIZE, extend the
        // nameAlg digest size, the others a UINT64.
        let size_ok = match nt {
            nv_attr::NT_ORDINARY => usize::from(public.data_size) <= MAX_NV_INDEX_SIZE,
            nv_attr::NT_EXTEND => usize::from(public.data_size) == digest_size,
            _ => public.data_size == 8,
        };
        if !size_ok {
            return Err(p2(TpmRc::SIZE));
        }
        match nt {
            // Counters are never cleared.
            nv_attr::NT_COUNTER if attrs & nv_attr::CLEAR_STCLEAR != 0 => {
                return Err(p2(TpmRc::ATTRIBUTES));
            }
            // PIN indices: the authValue is not usable until the index is
            // written, so it cannot be the way to write it (AUTHWRITE
            // clear), nor may the index be locked for good; a PIN Fail
            // index counts failures itself and is exempt from DA (NO_DA).
            nv_attr::NT_PIN_FAIL | nv_attr::NT_PIN_PASS
                if (nt == nv_attr::NT_PIN_FAIL && attrs & nv_attr::NO_DA == 0)
                    || attrs
                        & (nv_attr::AUTHWRITE | nv_attr::GLOBALLOCK | nv_attr::WRITEDEFINE)
                        != 0 =>
            {
                return Err(p2(TpmRc::ATTRIBUTES));
            }
            _ => {}
        }
        let read = nv_attr::PPREAD | nv_attr::OWNERREAD | nv_attr::AUTHREAD | nv_attr::POLICYREAD;
        let write =
            nv_attr::PPWRITE | nv_attr::OWNERWRITE | nv_attr::AUTHWRITE | nv_attr::POLICYWRITE;
        let set_by_tpm = nv_attr::WRITELOCKED | nv_attr::READLOCKED | nv_attr::WRITTEN;
        if attrs & set_by_tpm != 0 || attrs & read == 0 || attrs & write == 0 {
            return Err(p2(TpmRc::ATTRIBUTES));
        }
        // CLEAR_STCLEAR data goes at each Startup(CLEAR); a WRITEDEFINE lock
        // is for good.
        if attrs & nv_attr::CLEAR_STCLEAR != 0 && attrs & nv_attr::WRITEDEFINE != 0 {
            return Err(p2(TpmRc::ATTRIBUTES));
        }
        // The platform creates platform indices; the owner creates the rest
        // (so that the creator can delete them).
        if (attrs & nv_attr::PLATFORMCREATE != 0) != platform {
            return Err(TpmRc::ATTRIBUTES.with_handle(1));
        }
        // POLICY_DELETE indices are platform indices deleted with
        // TPM2_NV_UndefineSpaceSpecial, which needs a policy.
        if attrs & nv_attr::POLICY_DELETE != 0 && (!platform || public.auth_policy.is_empty()) {
            return Err(p2(TpmRc::ATTRIBUTES));
        }
        // A WRITEALL index must be writable in one TPM2_NV_Write.
        if attrs & nv_attr::WRITEALL != 0 && usize::from(public.data_size) > MAX_NV_BUFFER_SIZE {
            return Err(p2(TpmRc::SIZE));
        }
        if tpm.nv_index(public.nv_index).is_some() {
            return Err(TpmRc::NV_DEFINED);
        }
        let data_size = usize::from(public.data_size);
        // Ordinary data reads as erased NV until written; the typed indices
        // cannot be read before their first write.
        let index = NvIndex {
            public,
            auth: Zeroizing::new(auth),
            data: vec![0xFF; data_size],
        };
        if tpm.nv_used() + index.footprint() > NV_MEMORY_SIZE {
            return Err(TpmRc::NV_SPACE);
        }
        tpm.nv.nv_indices.insert(index.public.nv_index, index);
        tpm.mark_nv_dirty();
        Ok(())
    }
}
