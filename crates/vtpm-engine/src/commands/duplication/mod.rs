//! Part 3 §13 "Duplication Commands".

pub mod duplicate;
pub mod import;
pub mod rewrap;

use crate::keys::KeyObject;
use crate::keys::protect::OuterWrap;
use vtpm_wire::rc::TpmRc;

/// The outer wrap a storage key gives a blob with `seed`: its nameAlg and
/// its symmetric key size (TPM_RC_TYPE when it has no symmetric algorithm).
pub(crate) fn outer_of<'a>(key: &KeyObject, seed: &'a [u8]) -> Result<OuterWrap<'a>, TpmRc> {
    let (key_bits, _) = key.parent_symmetric().ok_or(TpmRc::TYPE)?;
    Ok(OuterWrap {
        hash: key.name_alg(),
        seed,
        key_bits,
    })
}
