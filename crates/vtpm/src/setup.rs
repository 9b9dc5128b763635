//! `vtpm setup`: the part of `swtpm_setup` vtpm can do — create (or
//! replace) a TPM's state file, manufacturing a new TPM, and optionally
//! choose its PCR banks (TPM2_PCR_Allocate, effective from the next
//! power-on). Endorsement keys and certificates are not created yet:
//! asking for them is refused.

use crate::storage::Storage;
use crate::swtpm_cli::{
    self, CliError, Found, KeyFormat, KeySource, KeySpec, LogSpec, LogTarget, OptSpec, err,
};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vtpm_engine::Tpm;

const USAGE: &str = "\
Usage: vtpm setup --tpm2 --tpmstate DIR|dir://DIR|file://PATH
                  --keyfile PATH | --keyfile-fd N | --key file=PATH|fd=N[,format=hex|binary]
                  [--cipher aes-256-cbc] [--overwrite | --not-overwrite]
                  [--pcr-banks sha1,sha256,sha384,sha512|-] [--lock-nvram]
                  [--logfile PATH] [--vmid ID] [--config FILE]
       vtpm setup --print-capabilities | --version | --help

Creates the TPM state file (DIR/vtpm.state, or the file:// path): a newly
manufactured TPM 2.0, encrypted with the 256-bit key. Run as `swtpm_setup`
or `vtpm-setup` (a link to vtpm) it takes swtpm_setup's command line.
See docs/swtpm-compat.md.
";

/// What to do with an existing state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    /// Fail (swtpm_setup's default).
    Fail,
    /// Replace it (`--overwrite`).
    Overwrite,
    /// Leave it and succeed (`--not-overwrite`).
    Keep,
}

#[derive(Debug)]
struct SetupConfig {
    state: PathBuf,
    key: KeySpec,
    logfile: Option<PathBuf>,
    vmid: Option<String>,
    existing: Existing,
    /// Hash algorithm ids of the banks to allocate; `None` keeps vtpm's
    /// default (SHA-1 and SHA-256).
    pcr_banks: Option<Vec<(&'static str, u16)>>,
}

#[derive(Debug)]
enum SetupCommand {
    Run(Box<SetupConfig>),
    PrintCapabilities,
    Version,
    Help,
}

const fn opt(long: &'static str, takes_value: bool) -> OptSpec {
    OptSpec {
        long,
        short: None,
        takes_value,
    }
}

const SETUP_OPTS: &[OptSpec] = &[
    opt("tpm2", false),
    opt("tpmstate", true),
    opt("tpm-state", true),
    opt("keyfile", true),
    opt("keyfile-fd", true),
    opt("key", true),
    opt("cipher", true),
    opt("logfile", true),
    opt("vmid", true),
    opt("config", true),
    opt("lock-nvram", false),
    opt("overwrite", false),
    opt("not-overwrite", false),
    opt("pcr-banks", true),
    opt("print-capabilities", false),
    opt("version", false),
    OptSpec {
        long: "help",
        short: Some('h'),
        takes_value: false,
    },
    // Refused.
    opt("createek", false),
    opt("create-ek-cert", false),
    opt("create-platform-cert", false),
    opt("allow-signing", false),
    opt("decryption", false),
    opt("ecc", false),
    opt("rsa-keysize", true),
    opt("write-ek-cert-files", true),
    opt("take-ownership", false),
    opt("ownerpass", true),
    opt("owner-well-known", false),
    opt("srkpass", true),
    opt("srk-well-known", false),
    opt("create-spk", false),
    opt("display", false),
    opt("reconfigure", false),
    opt("profile", true),
    opt("profile-name", true),
    opt("profile-file", true),
    opt("profile-file-fd", true),
    opt("profile-remove-disabled", true),
    opt("print-profiles", false),
    opt("create-config-files", true),
    opt("runas", true),
    opt("pwdfile", true),
    opt("pwdfile-fd", true),
    opt("migration-key", true),
    opt("tpm", true),
    opt("swtpm_ioctl", true),
    opt("tcsd-system-ps-file", true),
];

fn refused(name: &str) -> Option<&'static str> {
    Some(match name {
        "createek"
        | "create-ek-cert"
        | "create-platform-cert"
        | "allow-signing"
        | "decryption"
        | "ecc"
        | "rsa-keysize"
        | "write-ek-cert-files"
        | "display" => "endorsement keys and certificates are not supported yet",
        "take-ownership"
        | "ownerpass"
        | "owner-well-known"
        | "srkpass"
        | "srk-well-known"
        | "create-spk"
        | "tcsd-system-ps-file" => "TPM 1.2 only",
        "reconfigure" => "reconfiguring an existing state is not supported yet",
        "profile"
        | "profile-name"
        | "profile-file"
        | "profile-file-fd"
        | "profile-remove-disabled"
        | "print-profiles" => "TPM profiles are a libtpms feature vtpm does not have",
        "create-config-files" => "vtpm setup needs no configuration files",
        "runas" => "vtpm does not change user; run it as the user it should run as",
        "pwdfile" | "pwdfile-fd" => {
            "passphrases are not supported: give a 256-bit key with --keyfile or --keyfile-fd"
        }
        "migration-key" => "a migration key is given to `vtpm socket`, not to setup",
        "tpm" | "swtpm_ioctl" => "vtpm setup creates the state itself, without running swtpm",
        _ => return None,
    })
}

fn parse_pcr_banks(v: &str) -> Result<Option<Vec<(&'static str, u16)>>, CliError> {
    if v == "-" {
        return Ok(None);
    }
    let mut banks = Vec::new();
    for name in v.split(',').filter(|s| !s.is_empty()) {
        let bank = match name {
            "sha1" => ("sha1", 0x0004),
            "sha256" => ("sha256", 0x000B),
            "sha384" => ("sha384", 0x000C),
            "sha512" => ("sha512", 0x000D),
            other => {
                return err(format!(
                    "--pcr-banks: {other}: not supported (sha1, sha256, sha384, sha512)"
                ));
            }
        };
        if !banks.contains(&bank) {
            banks.push(bank);
        }
    }
    if banks.is_empty() {
        return err("--pcr-banks: no bank given");
    }
    Ok(Some(banks))
}

fn parse_state(opt_name: &str, v: &str) -> Result<PathBuf, CliError> {
    if v.contains("://") {
        swtpm_cli::parse_backend_uri(opt_name, v)
    } else if v.is_empty() {
        err(format!("--{opt_name}: needs a directory"))
    } else {
        Ok(Path::new(v).join(swtpm_cli::STATE_FILE_NAME))
    }
}

fn parse(args: &[OsString]) -> Result<SetupCommand, CliError> {
    let found = swtpm_cli::lex(args, SETUP_OPTS)?;
    let mut tpm2 = false;
    let mut state = None;
    let mut key: Option<KeySpec> = None;
    let mut logfile = None;
    let mut vmid = None;
    let (mut overwrite, mut keep) = (false, false);
    let mut pcr_banks = None;
    let mut print_caps = false;
    for Found { name, value } in found {
        let v = value.unwrap_or_default();
        if let Some(why) = refused(name) {
            return err(format!("--{name}: not supported: {why}"));
        }
        match name {
            "help" => return Ok(SetupCommand::Help),
            "version" => return Ok(SetupCommand::Version),
            "print-capabilities" => print_caps = true,
            "tpm2" => tpm2 = true,
            "tpmstate" | "tpm-state" => state = Some(parse_state(name, &v)?),
            "keyfile" => {
                key = Some(KeySpec {
                    source: KeySource::File(v.into()),
                    format: KeyFormat::Hex,
                    remove: false,
                })
            }
            "keyfile-fd" => {
                let fd = v
                    .parse()
                    .map_or_else(|_| err(format!("--keyfile-fd: {v}: not a number")), Ok)?;
                key = Some(KeySpec {
                    source: KeySource::Fd(fd),
                    format: KeyFormat::Hex,
                    remove: false,
                })
            }
            "key" => key = Some(swtpm_cli::parse_key("key", &v)?),
            "cipher" => match v.as_str() {
                "aes-256-cbc" => {}
                "aes-128-cbc" | "aes-cbc" => {
                    return err(format!(
                        "--cipher: {v}: 128-bit keys are not supported; vtpm needs a 256-bit \
                         key (--cipher aes-256-cbc)"
                    ));
                }
                other => return err(format!("--cipher: {other}: not supported (aes-256-cbc)")),
            },
            "logfile" => logfile = Some(PathBuf::from(v)),
            "vmid" => vmid = Some(v),
            // Setup writes no NV index that could be locked.
            "config" | "lock-nvram" => {}
            "overwrite" => overwrite = true,
            "not-overwrite" => keep = true,
            "pcr-banks" => pcr_banks = parse_pcr_banks(&v)?,
            other => return err(format!("--{other}: not supported")),
        }
    }
    if print_caps {
        return Ok(SetupCommand::PrintCapabilities);
    }
    if !tpm2 {
        return err(
            "--tpm2 is required: vtpm is a TPM 2.0 (swtpm_setup without --tpm2 sets up a TPM 1.2)",
        );
    }
    let Some(state) = state else {
        return err("--tpmstate is required (a directory, dir://DIR or file://PATH)");
    };
    let Some(key) = key else {
        return err(
            "a key is required: vtpm's state file is always encrypted; give a 256-bit key with \
             --keyfile PATH, --keyfile-fd N or --key file=PATH|fd=N",
        );
    };
    let existing = match (overwrite, keep) {
        (true, true) => return err("--overwrite and --not-overwrite exclude each other"),
        (true, false) => Existing::Overwrite,
        (false, true) => Existing::Keep,
        (false, false) => Existing::Fail,
    };
    Ok(SetupCommand::Run(Box::new(SetupConfig {
        state,
        key,
        logfile,
        vmid,
        existing,
        pcr_banks,
    })))
}

/// Runs `vtpm setup` with its arguments (after `setup`).
pub fn main(args: &[OsString]) -> ExitCode {
    let command = match parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vtpm setup: {e}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        SetupCommand::Help => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        SetupCommand::Version => {
            println!("vtpm setup {} (TPM 2.0)", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        SetupCommand::PrintCapabilities => {
            println!("{}", swtpm_cli::setup_capabilities());
            ExitCode::SUCCESS
        }
        SetupCommand::Run(config) => match run(&config) {
            Ok(msg) => {
                log::info!("{msg}");
                println!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                if config.logfile.is_some() {
                    log::error!("{e}");
                }
                eprintln!("vtpm setup: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(config: &SetupConfig) -> Result<String, CliError> {
    let log = match &config.logfile {
        Some(path) => LogSpec {
            target: LogTarget::File {
                path: path.clone(),
                truncate: false,
            },
            ..LogSpec::default()
        },
        None => LogSpec {
            level: Some(0),
            ..LogSpec::default()
        },
    };
    swtpm_cli::init_logging(&log)?;
    if let Some(id) = &config.vmid {
        log::info!("setting up the TPM of {id}");
    }
    let path = &config.state;
    let exists = std::fs::symlink_metadata(path).is_ok();
    if exists {
        match config.existing {
            Existing::Keep => {
                return Ok(format!(
                    "TPM state {} exists; not overwriting it (--not-overwrite)",
                    path.display()
                ));
            }
            Existing::Fail => {
                return err(format!(
                    "TPM state {} already exists; use --overwrite or --not-overwrite",
                    path.display()
                ));
            }
            Existing::Overwrite => {}
        }
    }
    let key = swtpm_cli::read_key(&config.key, "key")?;
    let (storage, image) = Storage::open(path, key).map_err(|e| {
        if e.format_error().is_some() {
            CliError(format!(
                "{e}; it cannot be overwritten without the key it was written with (remove the \
                 file to replace it)"
            ))
        } else {
            CliError(e.to_string())
        }
    })?;
    // A new TPM: manufactured, and committed by Tpm::new.
    drop(image);
    let mut tpm = Tpm::new(Box::new(storage.platform_new()))
        .map_err(|e| CliError(format!("creating the TPM: {e}")))?;
    if let Some(banks) = &config.pcr_banks {
        allocate_pcr_banks(&mut tpm, banks)?;
    }
    tpm.power_off();
    Ok(format!(
        "created a new TPM 2.0 state in {}{}",
        path.display(),
        config.pcr_banks.as_ref().map_or_else(String::new, |b| {
            let names: Vec<&str> = b.iter().map(|(n, _)| *n).collect();
            format!(" with PCR banks {}", names.join(","))
        })
    ))
}

fn response_code(resp: &[u8]) -> u32 {
    resp.get(6..10)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(u32::MAX, u32::from_be_bytes)
}

/// TPM2_PCR_Allocate by the platform (empty platformAuth) of exactly
/// `banks`, all 24 PCRs each, between a Startup and a Shutdown; the new
/// banks are active from the next power-on.
fn allocate_pcr_banks(tpm: &mut Tpm, banks: &[(&'static str, u16)]) -> Result<(), CliError> {
    const ALL: [u16; 4] = [0x0004, 0x000B, 0x000C, 0x000D];
    tpm.power_on();
    let startup = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0];
    let rc = response_code(&tpm.execute(0, &startup));
    if rc != 0 {
        return err(format!("TPM2_Startup failed: TPM_RC {rc:#x}"));
    }
    let mut params = u32::try_from(ALL.len()).unwrap_or(0).to_be_bytes().to_vec();
    for alg in ALL {
        params.extend_from_slice(&alg.to_be_bytes());
        params.push(3);
        let on = banks.iter().any(|(_, a)| *a == alg);
        params.extend_from_slice(&if on { [0xFF; 3] } else { [0; 3] });
    }
    // TPM_RS_PW, empty nonce, no attributes, empty password.
    let auth = [0x40, 0, 0, 0x09, 0, 0, 0, 0, 0];
    let mut body = Vec::new();
    body.extend_from_slice(&0x0000_012Bu32.to_be_bytes());
    body.extend_from_slice(&0x4000_000Cu32.to_be_bytes());
    body.extend_from_slice(&u32::try_from(auth.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(&auth);
    body.extend_from_slice(&params);
    let size = u32::try_from(body.len() + 6).unwrap_or(0);
    let command = [&0x8002u16.to_be_bytes()[..], &size.to_be_bytes(), &body].concat();
    let resp = tpm.execute(0, &command);
    let rc = response_code(&resp);
    if rc != 0 {
        return err(format!("TPM2_PCR_Allocate failed: TPM_RC {rc:#x}"));
    }
    // parameterSize, then allocationSuccess.
    if resp.get(14) != Some(&1) {
        return err("TPM2_PCR_Allocate did not allocate the banks asked for");
    }
    let shutdown = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x45, 0, 0];
    let rc = response_code(&tpm.execute(0, &shutdown));
    if rc != 0 {
        return err(format!("TPM2_Shutdown failed: TPM_RC {rc:#x}"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    #[test]
    fn libvirt_command_lines() {
        // First start: refused, naming the option (EK certificates).
        let e = parse(&args(&[
            "--tpm2",
            "--tpm-state",
            "/var/lib/libvirt/swtpm/u/tpm2",
            "--vmid",
            "vm:u",
            "--logfile",
            "/l",
            "--createek",
            "--create-ek-cert",
            "--create-platform-cert",
            "--lock-nvram",
            "--not-overwrite",
        ]))
        .unwrap_err();
        assert!(e.0.starts_with("--createek: not supported"), "{e}");
        // Incoming migration: accepted (with a key).
        match parse(&args(&[
            "--tpm2",
            "--tpm-state",
            "/s",
            "--logfile",
            "/l",
            "--overwrite",
            "--keyfile",
            "/k",
        ]))
        .unwrap()
        {
            SetupCommand::Run(c) => {
                assert_eq!(c.state, PathBuf::from("/s/vtpm.state"));
                assert_eq!(c.existing, Existing::Overwrite);
            }
            other => panic!("{other:?}"),
        }
        let e = parse(&args(&["--tpm2", "--tpm-state", "/s", "--pwdfile-fd", "3"])).unwrap_err();
        assert!(e.0.starts_with("--pwdfile-fd: not supported"), "{e}");
    }

    #[test]
    fn pcr_banks() {
        assert_eq!(parse_pcr_banks("-").unwrap(), None);
        assert_eq!(
            parse_pcr_banks("sha256,sha1,sha256").unwrap(),
            Some(vec![("sha256", 0x000B), ("sha1", 0x0004)])
        );
        assert!(parse_pcr_banks("sm3-256").is_err());
    }
}
