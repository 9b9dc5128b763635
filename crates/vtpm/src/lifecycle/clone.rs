//! `vtpm clone`: a second TPM state from an existing one — the same TPM
//! (`--copy`: same seeds, EKs and NV) or a new TPM configured like it
//! (`--replace`: new seeds, the same EK kinds and PCR banks, new EK
//! certificates).

use super::create::{self, CreateConfig};
use super::ek::EkKind;
use super::inspect;
use anyhow::{Context, Result, bail};
use std::path::Path;
use vtpm_store::{MasterKey, Store};

/// `--copy`: the NV image of `from` (locked while it is read) sealed with
/// `to_key` into the new file `to` (written under a temporary name, then
/// linked into place: an existing `to` is never replaced).
pub fn copy(from: &Path, key: MasterKey, to: &Path, to_key: MasterKey) -> Result<String> {
    if std::fs::symlink_metadata(from).is_err() {
        bail!("{}: no such TPM state", from.display());
    }
    if std::fs::symlink_metadata(to).is_ok() {
        bail!(
            "{} already exists: `vtpm clone` never replaces a TPM state",
            to.display()
        );
    }
    let (source, image) = Store::open(from, key)?;
    let Some(image) = image else {
        bail!("{}: no such TPM state", from.display());
    };
    let name = to
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: not a file path", to.display()))?;
    let tmp = to.with_file_name(format!(".{name}.clone.{}", std::process::id()));
    let tmp_lock = to.with_file_name(format!(".{name}.clone.{}.lock", std::process::id()));
    let result = (|| -> Result<()> {
        let (mut dest, _) = Store::open(&tmp, to_key)?;
        dest.write(&image)?;
        drop(dest);
        std::fs::hard_link(&tmp, to).with_context(|| format!("creating {}", to.display()))
    })();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(&tmp_lock);
    drop(source);
    result?;
    Ok(format!(
        "copied the TPM of {} to {} (the same TPM: same seeds, keys and NV; never run both)",
        from.display(),
        to.display()
    ))
}

/// `--replace`: a new TPM at `to` with the EK kinds and PCR banks of
/// `from`, EK certificates from the CA in `ca` (if `from` has any, `ca` is
/// required).
pub fn replace(
    from: &Path,
    key: MasterKey,
    to: &Path,
    to_key: MasterKey,
    ca: Option<&Path>,
    ca_key: Option<MasterKey>,
) -> Result<String> {
    let report = inspect::inspect(from, key)?;
    let has_certs = report.eks.iter().any(|e| e.cert.is_some());
    if has_certs && ca.is_none() {
        bail!(
            "{} has EK certificates: --replace needs --ca DIR to issue new ones",
            from.display()
        );
    }
    // EKs: those with a certificate; without any, RSA-2048 and P-256.
    let mut eks: Vec<EkKind> = EkKind::ALL
        .into_iter()
        .filter(|k| {
            report
                .eks
                .iter()
                .any(|e| e.kind == k.name() && e.cert.is_some())
        })
        .collect();
    if eks.is_empty() {
        eks = vec![EkKind::Rsa2048, EkKind::EccP256];
    }
    let mut banks = Vec::new();
    for b in &report.pcr_banks {
        banks.push(create::parse_bank(b)?);
    }
    let config = CreateConfig {
        state: to.to_path_buf(),
        eks,
        pcr_banks: Some(banks),
        ca_dir: if has_certs {
            ca.map(Path::to_path_buf)
        } else {
            None
        },
        ca_key,
        vm_id: None,
        persist_ek: EkKind::ALL
            .iter()
            .any(|k| report.persistent.contains(&k.persistent_handle())),
        persist_srk: report.persistent.contains(&create::SRK_HANDLE),
        cert_days: 7300,
    };
    create::run(&config, to_key)
}
