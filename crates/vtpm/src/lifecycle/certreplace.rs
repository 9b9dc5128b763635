//! `vtpm cert replace`: stores an EK certificate issued by the operator's
//! CA in the EK certificate NV index, and `vtpm cert export --pubkey`:
//! the EK public key for that CA.
//!
//! Atomicity: every TPM command commits NV to its state file, so the
//! commands (Startup, CreatePrimary, NV_UndefineSpace, NV_DefineSpace,
//! NV_Write, Shutdown) run on a private copy of the state next to it,
//! while the real state's lock is held; only when all succeeded is the copy
//! renamed over the state (then the directory fsynced). A failure at any
//! step leaves the state file as it was, so the index is never left
//! deleted or half written.

use super::create::EK_CERT_ATTRS;
use super::ek::{self, EkKind};
use super::inspect;
use super::tpmcmd::{self, RH_ENDORSEMENT, RH_PLATFORM, nv_attr};
use anyhow::{Context, Result, bail};
use der::{Decode, Encode};
use std::path::Path;
use vtpm_engine::Tpm;
use vtpm_store::{MasterKey, Store};

const CC_NV_UNDEFINE_SPACE: u32 = 0x0000_0122;

/// The EK's SubjectPublicKeyInfo (DER), recomputed with CreatePrimary.
fn ek_spki_der(tpm: &mut Tpm, kind: EkKind) -> Result<Vec<u8>> {
    let (handle, public) = tpmcmd::create_primary(tpm, RH_ENDORSEMENT, &kind.template())
        .with_context(|| format!("recomputing the {} EK", kind.name()))?;
    tpmcmd::flush(tpm, handle)?;
    Ok(ek::ek_spki(kind, &tpmcmd::key_bytes(&public)?)?.to_der()?)
}

/// `cert export --pubkey`: the EK public key as a PEM "PUBLIC KEY".
pub fn export_pubkey(path: &Path, key: MasterKey, kind: EkKind) -> Result<Vec<u8>> {
    let mut c = inspect::open_copy(path, key)?;
    let der = ek_spki_der(&mut c.tpm, kind)?;
    drop(c);
    Ok(der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, &der)?.into_bytes())
}

/// Reads a certificate, PEM or DER; returns its DER.
fn read_cert(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let der = if bytes.starts_with(b"-----BEGIN") {
        let (label, der) = der::pem::decode_vec(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate: {e}", path.display()))?;
        if label != "CERTIFICATE" {
            bail!("{}: a PEM {label}, not a CERTIFICATE", path.display());
        }
        der
    } else {
        bytes
    };
    x509_cert::Certificate::from_der(&der)
        .map_err(|e| anyhow::anyhow!("{}: not an X.509 certificate: {e}", path.display()))?;
    Ok(der)
}

fn undefine_platform(tpm: &mut Tpm, index: u32) -> Result<()> {
    tpmcmd::run(
        tpm,
        "TPM2_NV_UndefineSpace",
        CC_NV_UNDEFINE_SPACE,
        &[RH_PLATFORM, index],
        1,
        &[],
        false,
    )
    .map(drop)
}

/// Replaces the certificate of `kind` in the state at `path` with the one
/// in `cert_path`, after checking its public key is the EK's.
pub fn replace(path: &Path, key: MasterKey, kind: EkKind, cert_path: &Path) -> Result<String> {
    if std::fs::symlink_metadata(path).is_err() {
        bail!("{}: no such TPM state", path.display());
    }
    let der = read_cert(cert_path)?;
    let cert = ek::parse_cert(&der)?;
    let cert_spki = cert.tbs_certificate().subject_public_key_info().to_der()?;
    // The state's lock, held until the copy is renamed over it.
    let (store, image) = Store::open(path, key.clone())?;
    if image.is_none() {
        bail!("{}: no such TPM state", path.display());
    }
    drop(image);
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: not a file path", path.display()))?;
    let tmp = path.with_file_name(format!(".{name}.certreplace.{}", std::process::id()));
    let tmp_lock = path.with_file_name(format!(".{name}.certreplace.{}.lock", std::process::id()));
    let index = kind.cert_index();
    let result = (|| -> Result<String> {
        std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
        let platform = vtpm_store::FilePlatform::open(&tmp, key)?;
        let mut tpm = Tpm::new(Box::new(platform)).context("loading the TPM state")?;
        tpmcmd::startup_clear(&mut tpm)?;
        let ek_spki = ek_spki_der(&mut tpm, kind)?;
        if ek_spki != cert_spki {
            bail!(
                "{}: the certificate's public key is not the {} EK of {} (export it with \
                 `vtpm cert export --pubkey`)",
                cert_path.display(),
                kind.name(),
                path.display()
            );
        }
        let exists = tpmcmd::handles(&mut tpm, 0x0100_0000)?.contains(&index);
        let (attrs, size) = if exists {
            let (a, s, _) = tpmcmd::nv_read_public(&mut tpm, index)?;
            (a, Some(s))
        } else {
            (EK_CERT_ATTRS, None)
        };
        if attrs & nv_attr::PLATFORMCREATE == 0 || attrs & nv_attr::PPWRITE == 0 {
            bail!(
                "NV index {index:#010x} was not defined by the platform with ppwrite: \
                 not replacing it"
            );
        }
        let define_attrs = attrs & !(nv_attr::WRITTEN | nv_attr::WRITELOCKED | nv_attr::READLOCKED);
        if size != Some(u16::try_from(der.len()).unwrap_or(u16::MAX)) {
            if size.is_some() {
                undefine_platform(&mut tpm, index)
                    .with_context(|| format!("undefining NV index {index:#010x}"))?;
            }
            tpmcmd::nv_define_platform(&mut tpm, index, define_attrs, der.len())
                .with_context(|| format!("defining NV index {index:#010x}"))?;
        }
        tpmcmd::nv_write(&mut tpm, RH_PLATFORM, index, &der)
            .with_context(|| format!("writing the certificate to {index:#010x}"))?;
        tpmcmd::shutdown_clear(&mut tpm)?;
        tpm.power_off();
        drop(tpm);
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
        super::sync_parent_dir(path)?;
        Ok(format!(
            "stored the {} EK certificate from {} ({} bytes) at NV {index:#010x} of {}",
            kind.name(),
            cert_path.display(),
            der.len(),
            path.display()
        ))
    })();
    let _ = std::fs::remove_file(&tmp_lock);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    drop(store);
    result
}
