//! `vtpm rekey`: re-encrypts a state file under a new key, atomically.

use anyhow::{Context, Result, bail};
use std::path::Path;
use vtpm_store::{MasterKey, Store};

/// Re-encrypts the state at `path` from `old` to `new`: the new file is
/// written (and fsynced) next to it under a temporary name, then renamed
/// over it while the state's lock is held, and the directory is fsynced.
/// At every moment the path holds either the old file or the new one.
pub fn rekey(path: &Path, old: MasterKey, new: MasterKey) -> Result<String> {
    if std::fs::symlink_metadata(path).is_err() {
        bail!("{}: no such TPM state", path.display());
    }
    let old_id = old.key_id();
    let new_id = new.key_id();
    if old_id == new_id {
        bail!("the new key is the current key");
    }
    // Takes the lock; fails on a wrong key or a damaged file.
    let (store, image) = Store::open(path, old)?;
    let Some(image) = image else {
        bail!("{}: no such TPM state", path.display());
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: not a file path", path.display()))?;
    let tmp = path.with_file_name(format!(".{name}.rekey.{}", std::process::id()));
    let tmp_lock = path.with_file_name(format!(".{name}.rekey.{}.lock", std::process::id()));
    let result = (|| -> Result<()> {
        let (mut new_store, _) = Store::open(&tmp, new)?;
        new_store.write(&image)?;
        drop(new_store);
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
        super::sync_parent_dir(path)?;
        Ok(())
    })();
    let _ = std::fs::remove_file(&tmp_lock);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    drop(store);
    result?;
    Ok(format!(
        "re-encrypted {}: key id {old_id} -> {new_id}",
        path.display()
    ))
}
