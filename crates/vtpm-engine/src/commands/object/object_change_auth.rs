//! TPM2_ObjectChangeAuth (Part 3 §12.8): a new TPM2B_PRIVATE for a loaded
//! object, under its parent, with a new authValue. The loaded object keeps
//! its old authValue; the Name does not change (the authValue is not in the
//! public area).

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::dispatch::{Call, Command, Output, Params};
use crate::keys::protect::sensitive_to_private;
use crate::keys::qualified_name;
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::Auth;

/// TPM2_ObjectChangeAuth.
pub struct ObjectChangeAuth;

fn strip_trailing_zeros(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&x| x != 0).map_or(0, |p| p + 1);
    b.get(..end).unwrap_or(&[])
}

impl Command for ObjectChangeAuth {
    /// newAuth.
    type In = Auth;

    fn read(p: &mut Params<'_>) -> Result<Auth, TpmRc> {
        p.read()
    }

    fn action(tpm: &mut Tpm, call: &Call, new_auth: Auth, out: &mut Output) -> Result<(), TpmRc> {
        let [object_handle, parent_handle, ..] = call.handles;
        // A sequence object has no private area to change.
        let object = tpm
            .object(object_handle)
            .ok_or(TpmRc::TYPE.with_handle(1))?;
        // The authValue may be no longer than the nameAlg digest (trailing
        // zeros do not count: they are not part of an authValue).
        let new_auth = strip_trailing_zeros(new_auth.as_bytes());
        let max = HashAlg::from_alg(object.public.name_alg).map_or(Auth::CAPACITY, HashAlg::size);
        if new_auth.len() > max {
            return Err(TpmRc::SIZE.with_parameter(1));
        }
        // parentHandle must be the object's parent: the Qualified Name the
        // object would have under it is the one it has. (Primary and
        // external objects have no parent object, so never match.)
        let parent = tpm
            .object(parent_handle)
            .ok_or(TpmRc::TYPE.with_handle(2))?;
        let expected = qualified_name(&object.public, &parent.qualified_name, &object.name);
        if object.primary || object.external || expected != object.qualified_name {
            return Err(TpmRc::TYPE.with_handle(2));
        }
        let mut sensitive = object.sensitive.clone().ok_or(TpmRc::TYPE.with_handle(1))?;
        sensitive.auth_value = Auth::new(new_auth).map_err(|_| TpmRc::SIZE.with_parameter(1))?;
        let name = object.name.clone();
        let parent = parent.clone();
        let mut iv = [0u8; 16];
        tpm.random(&mut iv);
        let private =
            sensitive_to_private(&parent, &name, &sensitive, iv).map_err(|rc| rc.with_handle(2))?;
        out.params.sized_u16(|w| w.bytes(&private));
        Ok(())
    }
}
