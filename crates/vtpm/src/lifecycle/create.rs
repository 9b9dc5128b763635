//! `vtpm create`: manufactures a new TPM in a new state file, with
//! endorsement keys, EK certificates and persistent keys.

use super::ca;
use super::ek::{self, EkKind, TpmIdentity};
use super::tpmcmd::{self, RH_ENDORSEMENT, RH_OWNER, RH_PLATFORM, nv_attr};
use anyhow::{Context, Result, bail};
use der::Encode;
use std::path::{Path, PathBuf};
use vtpm_engine::Tpm;
use vtpm_store::MasterKey;

/// The attributes of the EK certificate indices: as swtpm_setup defines
/// them (platform-created, written by the platform, readable by the
/// platform, the owner and with the index's empty auth, no DA).
pub const EK_CERT_ATTRS: u32 = nv_attr::PLATFORMCREATE
    | nv_attr::PPWRITE
    | nv_attr::PPREAD
    | nv_attr::OWNERREAD
    | nv_attr::AUTHREAD
    | nv_attr::NO_DA;

/// The persistent handle of the SRK.
pub const SRK_HANDLE: u32 = 0x8100_0001;

/// The SRK template: RSA-2048 restricted decryption key, AES-128-CFB,
/// fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|noDA|restricted|
/// decrypt, no policy (TCG TPM v2.0 Provisioning Guidance §7.5.1).
fn srk_template() -> Vec<u8> {
    let mut t = vec![0x00, 0x01, 0x00, 0x0B];
    t.extend_from_slice(&0x0003_0472u32.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&[0x00, 0x06, 0x00, 0x80, 0x00, 0x43, 0x00, 0x10]);
    t.extend_from_slice(&[0x08, 0x00, 0, 0, 0, 0]);
    t.extend_from_slice(&[0, 0]);
    t
}

/// What `vtpm create` makes.
#[derive(Debug)]
pub struct CreateConfig {
    pub state: PathBuf,
    pub eks: Vec<EkKind>,
    pub pcr_banks: Option<Vec<u16>>,
    pub ca_dir: Option<PathBuf>,
    /// The key of an encrypted CA key (ca-key.sealed).
    pub ca_key: Option<vtpm_store::MasterKey>,
    pub vm_id: Option<String>,
    pub persist_ek: bool,
    pub persist_srk: bool,
    pub cert_days: u32,
}

/// The PCR bank names `create` takes.
pub fn parse_bank(name: &str) -> Result<u16> {
    Ok(match name {
        "sha1" => 0x0004,
        "sha256" => 0x000B,
        "sha384" => 0x000C,
        "sha512" => 0x000D,
        other => bail!("--pcr-banks: {other}: not supported (sha1, sha256, sha384, sha512)"),
    })
}

/// A temporary sibling of `state` (same directory, so that it can be
/// linked into place).
fn temp_path(state: &Path) -> Result<PathBuf> {
    let name = state
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: not a file path", state.display()))?;
    Ok(state.with_file_name(format!(".{name}.creating.{}", std::process::id())))
}

fn remove_with_lock(p: &Path) {
    let _ = std::fs::remove_file(p);
    if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
        let _ = std::fs::remove_file(p.with_file_name(format!("{name}.lock")));
    }
}

fn identity(tpm: &mut Tpm) -> Result<TpmIdentity> {
    let manufacturer = tpmcmd::property(tpm, 0x105)?;
    let mut model = Vec::new();
    for pt in 0x106..=0x109 {
        model.extend_from_slice(&tpmcmd::property(tpm, pt)?.to_be_bytes());
    }
    let end = model.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    model.truncate(end);
    let version = tpmcmd::property(tpm, 0x10B)?;
    Ok(TpmIdentity {
        manufacturer,
        model: String::from_utf8_lossy(&model).into_owned(),
        version,
    })
}

/// `vtpm create`: returns the summary printed on success.
pub fn run(config: &CreateConfig, key: MasterKey) -> Result<String> {
    let state = &config.state;
    if std::fs::symlink_metadata(state).is_ok() {
        bail!(
            "{} already exists: `vtpm create` never replaces a TPM state",
            state.display()
        );
    }
    let ca = match &config.ca_dir {
        Some(dir) => Some(ca::load(dir, config.ca_key.as_ref())?),
        None => None,
    };
    let tmp = temp_path(state)?;
    let result = manufacture(config, key, &tmp, ca.as_ref());
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            remove_with_lock(&tmp);
            return Err(e);
        }
    };
    // Into place, refusing to replace a state created meanwhile.
    let linked = std::fs::hard_link(&tmp, state);
    remove_with_lock(&tmp);
    linked.with_context(|| format!("creating {}", state.display()))?;
    Ok(summary)
}

fn manufacture(
    config: &CreateConfig,
    key: MasterKey,
    tmp: &Path,
    ca: Option<&ca::Ca>,
) -> Result<String> {
    let platform = vtpm_store::FilePlatform::open(tmp, key)?;
    let mut tpm = Tpm::new(Box::new(platform)).context("manufacturing the TPM")?;
    tpmcmd::startup_clear(&mut tpm)?;
    if let Some(banks) = &config.pcr_banks {
        tpmcmd::pcr_allocate(&mut tpm, banks)?;
        tpmcmd::shutdown_clear(&mut tpm)?;
        tpm.power_off();
        tpmcmd::startup_clear(&mut tpm)?;
    }
    let id = identity(&mut tpm)?;
    let mut lines = Vec::new();
    if let Some(vm) = &config.vm_id {
        lines.push(format!("VM {vm}"));
    }
    for &kind in &config.eks {
        let (handle, public) = tpmcmd::create_primary(&mut tpm, RH_ENDORSEMENT, &kind.template())
            .with_context(|| format!("creating the {} EK", kind.name()))?;
        let spki = ek::ek_spki(kind, &tpmcmd::key_bytes(&public)?)?;
        let mut line = format!("EK {}", kind.name());
        if let Some(ca) = ca {
            let cert = ek::issue(ca, kind, spki, &id, config.cert_days)?;
            let der = cert.to_der()?;
            let index = kind.cert_index();
            tpmcmd::nv_define_platform(&mut tpm, index, EK_CERT_ATTRS, der.len())
                .with_context(|| format!("defining NV index {index:#010x}"))?;
            tpmcmd::nv_write(&mut tpm, RH_PLATFORM, index, &der)
                .with_context(|| format!("writing the EK certificate to {index:#010x}"))?;
            line.push_str(&format!(
                ", certificate ({} bytes) at NV {index:#010x}",
                der.len()
            ));
        }
        if config.persist_ek {
            let persistent = kind.persistent_handle();
            tpmcmd::evict_control(&mut tpm, handle, persistent)?;
            line.push_str(&format!(", persistent at {persistent:#010x}"));
        }
        tpmcmd::flush(&mut tpm, handle)?;
        lines.push(line);
    }
    if config.persist_srk {
        let (handle, _) = tpmcmd::create_primary(&mut tpm, RH_OWNER, &srk_template())
            .context("creating the SRK")?;
        tpmcmd::evict_control(&mut tpm, handle, SRK_HANDLE)?;
        tpmcmd::flush(&mut tpm, handle)?;
        lines.push(format!("SRK rsa2048, persistent at {SRK_HANDLE:#010x}"));
    }
    tpmcmd::shutdown_clear(&mut tpm)?;
    tpm.power_off();
    drop(tpm);
    Ok(format!(
        "created a new TPM 2.0 state in {}\n{}",
        config.state.display(),
        lines
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    ))
}
