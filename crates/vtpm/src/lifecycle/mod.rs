//! Lifecycle commands, modelled on VMware's vTPM: a local CA for EK
//! certificates (`vtpm ca init`), manufacturing a TPM with endorsement
//! keys and certificates (`vtpm create`) and describing a state
//! (`vtpm inspect`). Every TPM operation runs in-process through
//! `Tpm::execute`, as the platform (empty platform authorization) would.

pub mod backup;
pub mod ca;
pub mod certreplace;
pub mod clone;
pub mod create;
pub mod ek;
pub mod inspect;
pub mod rekey;
pub mod tpmcmd;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use vtpm_store::{KeyProvider, MasterKey};

/// fsyncs the directory holding `path`, so that a rename or link into it
/// is durable (the last step of write-temp → fsync → rename → fsync(dir)).
pub(crate) fn sync_parent_dir(path: &std::path::Path) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// `vtpm ca …`.
#[derive(Debug, Args)]
pub struct CaArgs {
    #[command(subcommand)]
    pub command: CaCommand,
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a local CA that `vtpm create --ca DIR` issues EK
    /// certificates with.
    ///
    /// Writes DIR/ca-key.pem, the CA's private key (PKCS#8 PEM, mode
    /// 0600, not encrypted: protect DIR) — or, with --ca-key-file /
    /// --ca-key-fd, DIR/ca-key.sealed, the same PEM encrypted under that
    /// key (the state-file format) — and DIR/ca.pem, its self-signed
    /// root certificate (X.509 v3: basicConstraints CA:TRUE critical,
    /// keyUsage keyCertSign and cRLSign critical, subjectKeyIdentifier).
    /// DIR is created if missing; an existing CA in it is never replaced.
    Init(CaInitArgs),
}

#[derive(Debug, Args)]
pub struct CaInitArgs {
    /// The CA directory.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,

    /// The CA key's algorithm: ECDSA P-384 with SHA-384, or RSA-3072
    /// PKCS#1 v1.5 with SHA-256.
    #[arg(long, value_enum, default_value = "ecdsa-p384")]
    pub alg: ca::CaAlg,

    /// The CA's subject (and issuer) distinguished name, RFC 4514.
    #[arg(long, value_name = "DN", default_value = "CN=vtpm local EK CA")]
    pub subject: String,

    /// Days the root certificate is valid.
    #[arg(long, value_name = "N", default_value_t = 7300)]
    pub days: u32,

    /// Encrypt the CA key under the 32-byte key in this file (raw or 64
    /// hex digits, mode 0600): DIR/ca-key.sealed instead of ca-key.pem.
    #[command(flatten)]
    pub key: CaKeyArgs,
}

/// The key that opens an encrypted CA key.
#[derive(Debug, Args)]
pub struct CaKeyArgs {
    /// The CA key's encryption key from this file (raw or 64 hex digits;
    /// mode 0600 or stricter).
    #[arg(
        long = "ca-key-file",
        value_name = "PATH",
        conflicts_with = "ca_key_fd"
    )]
    pub ca_key_file: Option<PathBuf>,

    /// The CA key's encryption key from this inherited file descriptor.
    #[arg(long = "ca-key-fd", value_name = "N")]
    pub ca_key_fd: Option<i32>,
}

impl CaKeyArgs {
    fn key(&self) -> Result<Option<MasterKey>> {
        let provider: Box<dyn KeyProvider> = match (&self.ca_key_file, self.ca_key_fd) {
            (Some(f), None) => Box::new(vtpm_store::KeyFile::new(f.clone())),
            (None, Some(fd)) => Box::new(vtpm_store::KeyFd::new(fd)),
            (None, None) => return Ok(None),
            _ => bail!("give one of --ca-key-file and --ca-key-fd"),
        };
        provider
            .master_key()
            .map(Some)
            .with_context(|| format!("reading the CA key's key from {}", provider.describe()))
    }
}

/// The state file and its key, both required.
#[derive(Debug, Args)]
pub struct KeyedState {
    /// The TPM's state file.
    #[arg(long, value_name = "PATH")]
    pub state: PathBuf,

    /// Read the 32-byte state key from this file (raw, or 64 hex digits;
    /// mode 0600 or stricter).
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "key_fd",
        required_unless_present = "key_fd"
    )]
    pub key_file: Option<PathBuf>,

    /// Read the state key from this inherited file descriptor.
    #[arg(long, value_name = "N")]
    pub key_fd: Option<i32>,
}

impl KeyedState {
    fn key(&self) -> Result<MasterKey> {
        let provider: Box<dyn KeyProvider> = match (&self.key_file, self.key_fd) {
            (Some(f), None) => Box::new(vtpm_store::KeyFile::new(f.clone())),
            (None, Some(fd)) => Box::new(vtpm_store::KeyFd::new(fd)),
            _ => bail!("the state key is needed: --key-file PATH or --key-fd N"),
        };
        provider
            .master_key()
            .with_context(|| format!("reading the state key from {}", provider.describe()))
    }
}

/// `vtpm create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub state: KeyedState,

    /// Endorsement keys to create, comma-separated (TCG EK Credential
    /// Profile templates: rsa2048 = L-1, ecc-p256 = L-2, ecc-p384 = H-3).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "rsa2048,ecc-p256"
    )]
    pub ek: Vec<ek::EkKind>,

    /// PCR banks to allocate, comma-separated (sha1, sha256, sha384,
    /// sha512); default: vtpm's (sha1 and sha256).
    #[arg(long, value_name = "BANKS", value_delimiter = ',')]
    pub pcr_banks: Option<Vec<String>>,

    /// Issue EK certificates with the CA in this directory (`vtpm ca
    /// init`) and store them in the NV indices of the EK Credential
    /// Profile (RSA 0x01C00002, P-256 0x01C0000A, P-384 0x01C00016),
    /// readable with owner authorization or the index's empty auth.
    #[arg(long, value_name = "DIR")]
    pub ca: Option<PathBuf>,

    #[command(flatten)]
    pub ca_key: CaKeyArgs,

    /// Days the EK certificates are valid.
    #[arg(long, value_name = "N", default_value_t = 7300)]
    pub cert_days: u32,

    /// The VM's id, for messages.
    #[arg(long, value_name = "UUID")]
    pub vm_id: Option<String>,

    /// Make the EKs persistent: RSA-2048 at 0x81010001, P-256 at
    /// 0x81010002 (TCG provisioning guidance), P-384 at 0x81010016 (where
    /// swtpm_setup puts its P-384 EK).
    #[arg(long)]
    pub persist_ek: bool,

    /// Create the SRK (RSA-2048 storage key, TCG provisioning guidance
    /// template) and make it persistent at 0x81000001.
    #[arg(long)]
    pub persist_srk: bool,
}

/// `vtpm cert …`.
#[derive(Debug, Args)]
pub struct CertArgs {
    #[command(subcommand)]
    pub command: CertCommand,
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Write an EK certificate stored in a TPM state (its NV index) to a
    /// file or standard output. The state is read from a private copy and
    /// never changed.
    Export(CertExportArgs),

    /// Store an EK certificate issued by another CA (PEM or DER) in the
    /// EK certificate NV index. Refused unless its public key is the EK's
    /// (recomputed with CreatePrimary). All TPM commands run on a private
    /// copy of the state, renamed over it only when all succeeded, while
    /// the state's lock is held (it fails if a server uses the state).
    Replace(CertReplaceArgs),
}

#[derive(Debug, Args)]
pub struct CertReplaceArgs {
    #[command(flatten)]
    pub state: KeyedState,

    /// Which EK's certificate.
    #[arg(long, value_enum)]
    pub ek: ek::EkKind,

    /// The certificate, PEM or DER.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CertFormat {
    /// PEM ("-----BEGIN CERTIFICATE-----").
    Pem,
    /// DER, as stored in NV.
    Der,
}

#[derive(Debug, Args)]
pub struct CertExportArgs {
    #[command(flatten)]
    pub state: KeyedState,

    /// Which EK's certificate.
    #[arg(long, value_enum, default_value = "rsa2048")]
    pub ek: ek::EkKind,

    /// Output encoding.
    #[arg(long, value_enum, default_value = "pem")]
    pub format: CertFormat,

    /// Write to this new file (mode 0644) instead of standard output.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,

    /// Export the EK's public key (PEM SubjectPublicKeyInfo, recomputed
    /// with CreatePrimary) instead of its certificate, for an external CA.
    #[arg(long, conflicts_with = "format")]
    pub pubkey: bool,
}

/// `vtpm clone`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["copy", "replace"])))]
pub struct CloneArgs {
    /// The existing TPM state.
    #[arg(long, value_name = "PATH")]
    pub from: PathBuf,

    /// The new state file (never replaced if it exists).
    #[arg(long, value_name = "PATH")]
    pub to: PathBuf,

    /// The key of --from (raw or 64 hex digits; mode 0600 or stricter).
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "key_fd",
        required_unless_present = "key_fd"
    )]
    pub key_file: Option<PathBuf>,

    /// The key of --from, from an inherited file descriptor.
    #[arg(long, value_name = "N")]
    pub key_fd: Option<i32>,

    /// The key for --to (default: the key of --from).
    #[arg(long, value_name = "PATH")]
    pub to_key_file: Option<PathBuf>,

    /// The same TPM: seeds, EKs, certificates and NV copied (as VMware's
    /// "copy"); the two must never run at once.
    #[arg(long)]
    pub copy: bool,

    /// A new TPM (new seeds, so new EKs) with the EK kinds, PCR banks and
    /// persistent EK/SRK of --from, and new EK certificates from --ca (as
    /// VMware's "replace").
    #[arg(long)]
    pub replace: bool,

    /// With --replace: the CA that issues the new EK certificates.
    #[arg(long, value_name = "DIR", requires = "replace")]
    pub ca: Option<PathBuf>,

    #[command(flatten)]
    pub ca_key: CaKeyArgs,
}

/// `vtpm rekey`.
#[derive(Debug, Args)]
pub struct RekeyArgs {
    #[command(flatten)]
    pub state: KeyedState,

    /// Read the new 32-byte key from this file (raw or 64 hex digits; mode
    /// 0600 or stricter).
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "new_key_fd",
        required_unless_present = "new_key_fd"
    )]
    pub new_key_file: Option<PathBuf>,

    /// Read the new key from this inherited file descriptor.
    #[arg(long, value_name = "N")]
    pub new_key_fd: Option<i32>,
}

/// `vtpm backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub state: KeyedState,

    /// The new archive file (never replaced if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `vtpm restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive written by `vtpm backup`.
    #[arg(long, value_name = "FILE")]
    pub archive: PathBuf,

    /// The new state file (never replaced if it exists) and the key the
    /// archived state was encrypted with.
    #[command(flatten)]
    pub state: KeyedState,
}

/// `vtpm inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub state: KeyedState,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn ca(args: &CaArgs) -> Result<()> {
    match &args.command {
        CaCommand::Init(a) => {
            println!(
                "{}",
                ca::init(&a.dir, a.alg, &a.subject, a.days, a.key.key()?)?
            );
            Ok(())
        }
    }
}

pub fn create(args: &CreateArgs) -> Result<()> {
    let pcr_banks = match &args.pcr_banks {
        None => None,
        Some(names) => {
            let mut v = Vec::new();
            for n in names {
                let alg = create::parse_bank(n)?;
                if !v.contains(&alg) {
                    v.push(alg);
                }
            }
            if v.is_empty() {
                bail!("--pcr-banks: no bank given");
            }
            Some(v)
        }
    };
    let mut eks = Vec::new();
    for k in &args.ek {
        if !eks.contains(k) {
            eks.push(*k);
        }
    }
    let config = create::CreateConfig {
        state: args.state.state.clone(),
        eks,
        pcr_banks,
        ca_dir: args.ca.clone(),
        ca_key: args.ca_key.key()?,
        vm_id: args.vm_id.clone(),
        persist_ek: args.persist_ek,
        persist_srk: args.persist_srk,
        cert_days: args.cert_days,
    };
    if std::fs::symlink_metadata(&config.state).is_ok() {
        bail!(
            "{} already exists: `vtpm create` never replaces a TPM state",
            config.state.display()
        );
    }
    let key = args.state.key()?;
    println!("{}", create::run(&config, key)?);
    Ok(())
}

pub fn inspect(args: &InspectArgs) -> Result<()> {
    let key = args.state.key()?;
    let report = inspect::inspect(&args.state.state, key)?;
    if args.json {
        print!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

pub fn cert(args: &CertArgs) -> Result<()> {
    use der::EncodePem;
    use std::io::Write;
    match &args.command {
        CertCommand::Replace(a) => {
            let key = a.state.key()?;
            println!(
                "{}",
                certreplace::replace(&a.state.state, key, a.ek, &a.cert)?
            );
            Ok(())
        }
        CertCommand::Export(a) if a.pubkey => {
            let key = a.state.key()?;
            let bytes = certreplace::export_pubkey(&a.state.state, key, a.ek)?;
            match &a.out {
                Some(p) => ca::write_new(p, &bytes, 0o644)?,
                None => std::io::stdout()
                    .write_all(&bytes)
                    .context("writing to standard output")?,
            }
            Ok(())
        }
        CertCommand::Export(a) => {
            let key = a.state.key()?;
            let mut c = inspect::open_copy(&a.state.state, key)?;
            let der = inspect::ek_cert_der(&mut c.tpm, a.ek)?.with_context(|| {
                format!(
                    "{}: no {} EK certificate (NV {:#010x} is not defined)",
                    a.state.state.display(),
                    a.ek.name(),
                    a.ek.cert_index()
                )
            })?;
            drop(c);
            let bytes = match a.format {
                CertFormat::Der => der,
                CertFormat::Pem => {
                    let cert = ek::parse_cert(&der).context("the stored certificate")?;
                    cert.to_pem(der::pem::LineEnding::LF)?.into_bytes()
                }
            };
            match &a.out {
                Some(p) => ca::write_new(p, &bytes, 0o644)?,
                None => std::io::stdout()
                    .write_all(&bytes)
                    .context("writing to standard output")?,
            }
            Ok(())
        }
    }
}

pub fn rekey(args: &RekeyArgs) -> Result<()> {
    let old = args.state.key()?;
    let provider: Box<dyn KeyProvider> = match (&args.new_key_file, args.new_key_fd) {
        (Some(f), None) => Box::new(vtpm_store::KeyFile::new(f.clone())),
        (None, Some(fd)) => Box::new(vtpm_store::KeyFd::new(fd)),
        _ => bail!("the new key is needed: --new-key-file PATH or --new-key-fd N"),
    };
    let new = provider
        .master_key()
        .with_context(|| format!("reading the new key from {}", provider.describe()))?;
    println!("{}", rekey::rekey(&args.state.state, old, new)?);
    Ok(())
}

pub fn clone(args: &CloneArgs) -> Result<()> {
    let from = KeyedState {
        state: args.from.clone(),
        key_file: args.key_file.clone(),
        key_fd: args.key_fd,
    };
    let key = from.key()?;
    let to_key = match &args.to_key_file {
        Some(p) => vtpm_store::KeyFile::new(p.clone())
            .master_key()
            .with_context(|| format!("reading the key of --to from {}", p.display()))?,
        None => from.key()?,
    };
    let msg = if args.copy {
        clone::copy(&args.from, key, &args.to, to_key)?
    } else {
        if std::fs::symlink_metadata(&args.to).is_ok() {
            bail!(
                "{} already exists: `vtpm clone` never replaces a TPM state",
                args.to.display()
            );
        }
        clone::replace(
            &args.from,
            key,
            &args.to,
            to_key,
            args.ca.as_deref(),
            args.ca_key.key()?,
        )?
    };
    println!("{msg}");
    Ok(())
}

pub fn backup(args: &BackupArgs) -> Result<()> {
    let key = args.state.key()?;
    println!("{}", backup::backup(&args.state.state, key, &args.out)?);
    Ok(())
}

pub fn restore(args: &RestoreArgs) -> Result<()> {
    let key = args.state.key()?;
    println!(
        "{}",
        backup::restore(&args.archive, &args.state.state, key)?
    );
    Ok(())
}
