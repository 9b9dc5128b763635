//! `vtpm inspect`: what a TPM state file holds, read from a private copy
//! (the state itself is never written).

use super::ek::{self, EkKind};
use super::tpmcmd::{self, RH_ENDORSEMENT, RH_OWNER, nv_attr};
use anyhow::{Context, Result, bail};
use der::Encode;
use sha2::Digest as _;
use std::fmt::Write as _;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use vtpm_engine::Tpm;
use vtpm_store::MasterKey;

/// One EK certificate's description.
#[derive(Debug)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    /// Whether the certificate's key is the EK's.
    pub key_matches: bool,
}

#[derive(Debug)]
pub struct EkInfo {
    pub kind: &'static str,
    pub cert_index: u32,
    /// SHA-256 of the EK's SubjectPublicKeyInfo (DER), recomputed with
    /// CreatePrimary from the endorsement seed.
    pub public_key_sha256: String,
    pub cert: Option<CertInfo>,
}

#[derive(Debug)]
pub struct NvInfo {
    pub index: u32,
    pub attributes: u32,
    pub size: u16,
}

#[derive(Debug)]
pub struct Report {
    pub state: PathBuf,
    pub format_version: u16,
    pub key_id: String,
    pub pcr_banks: Vec<&'static str>,
    pub eks: Vec<EkInfo>,
    pub nv: Vec<NvInfo>,
    pub persistent: Vec<u32>,
    pub lockout_counter: u32,
    pub max_auth_fail: u32,
    pub lockout_interval: u32,
    pub lockout_recovery: u32,
    pub in_lockout: bool,
}

fn bank_name(alg: u16) -> &'static str {
    match alg {
        0x0004 => "sha1",
        0x000B => "sha256",
        0x000C => "sha384",
        0x000D => "sha512",
        0x0012 => "sm3_256",
        _ => "unknown",
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// A private directory for the copy of the state.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).map_err(|e| anyhow::anyhow!("the OS RNG failed: {e}"))?;
        let p = std::env::temp_dir().join(format!("vtpm-inspect-{}", hex(&r)));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&p)
            .with_context(|| format!("creating {}", p.display()))?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TPM loaded from a private copy of a state file (checked with the
/// key first), started with Startup(CLEAR). The copy goes with it.
pub struct CopiedTpm {
    pub tpm: Tpm,
    pub header: vtpm_store::Header,
    pub key_id: vtpm_store::KeyId,
    _dir: TempDir,
}

impl Drop for CopiedTpm {
    fn drop(&mut self) {
        self.tpm.power_off();
    }
}

/// Opens a copy of the state at `path`: the state itself is never written.
pub fn open_copy(path: &Path, key: MasterKey) -> Result<CopiedTpm> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{}: no such TPM state", path.display())
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let header = vtpm_store::read_header(&bytes)
        .with_context(|| format!("{}: not a vtpm state file", path.display()))?;
    let key_id = key.key_id();
    if key_id != header.key_id {
        bail!(
            "{}: written with another key (key id {}, the key given has {})",
            path.display(),
            header.key_id,
            key_id
        );
    }
    // Fails on a damaged or forged file before any copy is made.
    vtpm_store::unseal(&bytes, &key).with_context(|| format!("{}", path.display()))?;
    let dir = TempDir::new()?;
    let copy = dir.0.join("state");
    std::fs::write(&copy, &bytes).with_context(|| format!("writing {}", copy.display()))?;
    let platform = vtpm_store::FilePlatform::open(&copy, key)?;
    let mut tpm = Tpm::new(Box::new(platform)).context("loading the TPM state")?;
    tpmcmd::startup_clear(&mut tpm)?;
    Ok(CopiedTpm {
        tpm,
        header,
        key_id,
        _dir: dir,
    })
}

/// Reads the state at `path` with `key`.
pub fn inspect(path: &Path, key: MasterKey) -> Result<Report> {
    let mut c = open_copy(path, key)?;
    let (header, key_id) = (c.header.clone(), c.key_id);
    collect(&mut c.tpm, path, &header, key_id)
}

/// The DER EK certificate of `kind` stored in the TPM, if any.
pub fn ek_cert_der(tpm: &mut Tpm, kind: EkKind) -> Result<Option<Vec<u8>>> {
    let index = kind.cert_index();
    if !tpmcmd::handles(tpm, 0x0100_0000)?.contains(&index) {
        return Ok(None);
    }
    let (attributes, size, _) = tpmcmd::nv_read_public(tpm, index)?;
    let auth = if attributes & nv_attr::OWNERREAD != 0 {
        RH_OWNER
    } else {
        index
    };
    Ok(Some(tpmcmd::nv_read(tpm, auth, index, size)?))
}

fn collect(
    tpm: &mut Tpm,
    path: &Path,
    header: &vtpm_store::Header,
    key_id: vtpm_store::KeyId,
) -> Result<Report> {
    let pcr_banks = tpmcmd::pcr_banks(tpm)?.into_iter().map(bank_name).collect();
    let nv_handles = tpmcmd::handles(tpm, 0x0100_0000)?;
    let mut nv = Vec::new();
    for index in &nv_handles {
        let (attributes, size, _) = tpmcmd::nv_read_public(tpm, *index)?;
        nv.push(NvInfo {
            index: *index,
            attributes,
            size,
        });
    }
    let mut eks = Vec::new();
    for kind in EkKind::ALL {
        let index = kind.cert_index();
        let cert_nv = nv.iter().find(|n| n.index == index);
        let (handle, public) = tpmcmd::create_primary(tpm, RH_ENDORSEMENT, &kind.template())?;
        tpmcmd::flush(tpm, handle)?;
        let spki = ek::ek_spki(kind, &tpmcmd::key_bytes(&public)?)?;
        let spki_der = spki.to_der()?;
        let cert = match cert_nv {
            None => None,
            Some(n) => {
                let auth = if n.attributes & nv_attr::OWNERREAD != 0 {
                    RH_OWNER
                } else {
                    index
                };
                let der = tpmcmd::nv_read(tpm, auth, index, n.size)?;
                let cert = ek::parse_cert(&der)
                    .with_context(|| format!("NV {index:#010x}: not a DER certificate"))?;
                let tbs = cert.tbs_certificate();
                let validity = tbs.validity();
                Some(CertInfo {
                    subject: tbs.subject().to_string(),
                    issuer: tbs.issuer().to_string(),
                    serial: hex(tbs.serial_number().as_bytes()),
                    not_before: validity.not_before.to_string(),
                    not_after: validity.not_after.to_string(),
                    key_matches: tbs.subject_public_key_info().to_der()? == spki_der,
                })
            }
        };
        // Only EKs with a certificate or a persistent copy are reported
        // as provisioned; the public key is reported for all.
        eks.push(EkInfo {
            kind: kind.name(),
            cert_index: index,
            public_key_sha256: hex(&sha2::Sha256::digest(&spki_der)),
            cert,
        });
    }
    let persistent = tpmcmd::handles(tpm, 0x8100_0000)?;
    let permanent = tpmcmd::property(tpm, 0x200)?;
    Ok(Report {
        state: path.to_path_buf(),
        format_version: header.version,
        key_id: key_id.to_string(),
        pcr_banks,
        eks,
        nv,
        persistent,
        lockout_counter: tpmcmd::property(tpm, 0x20E)?,
        max_auth_fail: tpmcmd::property(tpm, 0x20F)?,
        lockout_interval: tpmcmd::property(tpm, 0x210)?,
        lockout_recovery: tpmcmd::property(tpm, 0x211)?,
        in_lockout: permanent & (1 << 9) != 0,
    })
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

impl Report {
    /// Text: one `name: value` line per field.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "state: {}", self.state.display());
        let _ = writeln!(s, "format-version: {}", self.format_version);
        let _ = writeln!(s, "key-id: {}", self.key_id);
        let _ = writeln!(s, "pcr-banks: {}", self.pcr_banks.join(","));
        for ek in &self.eks {
            let _ = writeln!(s, "ek {}:", ek.kind);
            let _ = writeln!(s, "  public-key-sha256: {}", ek.public_key_sha256);
            match &ek.cert {
                None => {
                    let _ = writeln!(s, "  certificate: none");
                }
                Some(c) => {
                    let _ = writeln!(s, "  certificate: NV {:#010x}", ek.cert_index);
                    let _ = writeln!(s, "  subject: {}", c.subject);
                    let _ = writeln!(s, "  issuer: {}", c.issuer);
                    let _ = writeln!(s, "  serial: {}", c.serial);
                    let _ = writeln!(s, "  not-before: {}", c.not_before);
                    let _ = writeln!(s, "  not-after: {}", c.not_after);
                    let _ = writeln!(s, "  key-matches-ek: {}", c.key_matches);
                }
            }
        }
        for n in &self.nv {
            let _ = writeln!(
                s,
                "nv {:#010x}: size {} attributes {}",
                n.index,
                n.size,
                nv_attr::describe(n.attributes)
            );
        }
        for h in &self.persistent {
            let _ = writeln!(s, "persistent: {h:#010x}");
        }
        let _ = writeln!(s, "lockout-counter: {}", self.lockout_counter);
        let _ = writeln!(s, "max-auth-fail: {}", self.max_auth_fail);
        let _ = writeln!(s, "lockout-interval: {}", self.lockout_interval);
        let _ = writeln!(s, "lockout-recovery: {}", self.lockout_recovery);
        let _ = writeln!(s, "in-lockout: {}", self.in_lockout);
        s
    }

    /// JSON (one object).
    pub fn json(&self) -> String {
        let eks: Vec<String> = self
            .eks
            .iter()
            .map(|ek| {
                let cert = ek.cert.as_ref().map_or_else(
                    || "null".to_string(),
                    |c| {
                        format!(
                            "{{\"nv_index\":{},\"subject\":{},\"issuer\":{},\"serial\":{},\
                             \"not_before\":{},\"not_after\":{},\"key_matches_ek\":{}}}",
                            ek.cert_index,
                            json_str(&c.subject),
                            json_str(&c.issuer),
                            json_str(&c.serial),
                            json_str(&c.not_before),
                            json_str(&c.not_after),
                            c.key_matches
                        )
                    },
                );
                format!(
                    "{{\"kind\":{},\"public_key_sha256\":{},\"certificate\":{cert}}}",
                    json_str(ek.kind),
                    json_str(&ek.public_key_sha256)
                )
            })
            .collect();
        let nv: Vec<String> = self
            .nv
            .iter()
            .map(|n| {
                format!(
                    "{{\"index\":{},\"size\":{},\"attributes\":{},\"attribute_names\":{}}}",
                    n.index,
                    n.size,
                    n.attributes,
                    json_str(&nv_attr::describe(n.attributes))
                )
            })
            .collect();
        let banks: Vec<String> = self.pcr_banks.iter().map(|b| json_str(b)).collect();
        let persistent: Vec<String> = self.persistent.iter().map(u32::to_string).collect();
        format!(
            "{{\"state\":{},\"format_version\":{},\"key_id\":{},\"pcr_banks\":[{}],\"eks\":[{}],\
             \"nv_indices\":[{}],\"persistent_handles\":[{}],\"lockout\":{{\"counter\":{},\
             \"max_auth_fail\":{},\"interval\":{},\"recovery\":{},\"in_lockout\":{}}}}}\n",
            json_str(&self.state.display().to_string()),
            self.format_version,
            json_str(&self.key_id),
            banks.join(","),
            eks.join(","),
            nv.join(","),
            persistent.join(","),
            self.lockout_counter,
            self.max_auth_fail,
            self.lockout_interval,
            self.lockout_recovery,
            self.in_lockout
        )
    }
}
