//! Command lines compatible with swtpm's: `vtpm socket` takes `swtpm
//! socket`'s options, `vtpm setup` takes `swtpm_setup`'s, and a link to
//! the `vtpm` binary named `swtpm`, `swtpm_setup` or `vtpm-setup` runs the
//! matching command (so that libvirt, which finds `swtpm` and
//! `swtpm_setup` on its PATH, can run vtpm).
//!
//! Options are parsed the way getopt_long does (`--opt value`,
//! `--opt=value`, the short forms swtpm has), and option values are
//! swtpm's comma-separated `key=value` lists. Every option is either
//! honoured or refused with a one-line message naming it (exit code 1):
//! nothing is silently ignored. `docs/swtpm-compat.md` lists them.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use vtpm_store::MasterKey;
use zeroize::Zeroizing;

/// The file a state directory holds (`--tpmstate dir=DIR`).
pub const STATE_FILE_NAME: &str = "vtpm.state";

/// A refused or malformed command line: one line, naming the option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Shorthand for a [`CliError`].
pub fn err<T>(msg: impl Into<String>) -> Result<T, CliError> {
    Err(CliError(msg.into()))
}

/// Runs `vtpm socket` / `vtpm setup` when the command line asks for one
/// of them, by program name (`swtpm`, `swtpm_setup`, `vtpm-setup`) or by
/// first argument; `None` leaves the command line to the main parser.
pub fn dispatch() -> Option<ExitCode> {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let rest: Vec<OsString> = args.collect();
    let program = Path::new(&argv0)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("vtpm")
        .to_owned();
    if program == "swtpm_setup" || program == "vtpm-setup" {
        return Some(crate::setup::main(&rest));
    }
    let first = rest.first().and_then(|a| a.to_str());
    match first {
        Some("socket") => Some(crate::socket::main(rest.get(1..).unwrap_or_default())),
        Some("setup") => Some(crate::setup::main(rest.get(1..).unwrap_or_default())),
        Some(other @ ("chardev" | "cuse")) if program == "swtpm" => {
            eprintln!(
                "swtpm {other}: not supported: vtpm provides the socket interface only \
                 (`swtpm socket`); for a virtio TPM use `vtpm vhost-user`"
            );
            Some(ExitCode::FAILURE)
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// getopt_long-style option lexing
// ---------------------------------------------------------------------------

/// One option of a command: its long name, short letter, and whether it
/// takes a value.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    pub long: &'static str,
    pub short: Option<char>,
    pub takes_value: bool,
}

/// An option as found on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its long name.
    pub name: &'static str,
    /// Its value, if it takes one.
    pub value: Option<String>,
}

/// Splits `args` into options per `specs`. Unknown options and stray
/// arguments are errors.
pub fn lex(args: &[OsString], specs: &[OptSpec]) -> Result<Vec<Found>, CliError> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some(arg) = arg.to_str() else {
            return err(format!("{}: not valid UTF-8", arg.to_string_lossy()));
        };
        let (spec, inline) = if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let Some(spec) = specs.iter().find(|s| s.long == name) else {
                return err(format!("--{name}: unknown option (see --help)"));
            };
            (spec, inline)
        } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut chars = short.chars();
            let c = chars.next().unwrap_or('-');
            let attached: String = chars.collect();
            let Some(spec) = specs.iter().find(|s| s.short == Some(c)) else {
                return err(format!("-{c}: unknown option (see --help)"));
            };
            let inline = if attached.is_empty() {
                None
            } else if spec.takes_value {
                Some(attached)
            } else {
                return err(format!("{arg}: unknown option (see --help)"));
            };
            (spec, inline)
        } else {
            return err(format!("{arg}: unexpected argument (see --help)"));
        };
        let value = if spec.takes_value {
            match inline {
                Some(v) => Some(v),
                None => match it.next().and_then(|v| v.to_str()) {
                    Some(v) => Some(v.to_owned()),
                    None => return err(format!("--{}: needs a value", spec.long)),
                },
            }
        } else {
            if inline.is_some() {
                return err(format!("--{}: takes no value", spec.long));
            }
            None
        };
        out.push(Found {
            name: spec.long,
            value,
        });
    }
    Ok(out)
}

/// The parameters of an option value: `a=1,b,c=2` → `[(a, Some(1)), (b,
/// None), (c, Some(2))]`.
pub fn params(value: &str) -> Vec<(String, Option<String>)> {
    value
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (p.to_owned(), None),
        })
        .collect()
}

fn need(opt: &str, key: &str, v: Option<String>) -> Result<String, CliError> {
    match v {
        Some(v) if !v.is_empty() => Ok(v),
        _ => err(format!("--{opt}: {key}= needs a value")),
    }
}

fn flag_value(opt: &str, key: &str, v: Option<&str>) -> Result<bool, CliError> {
    match v {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => err(format!("--{opt}: {key}={other}: expected true or false")),
    }
}

fn parse_octal_mode(opt: &str, v: &str) -> Result<u32, CliError> {
    u32::from_str_radix(v, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .map_or_else(|| err(format!("--{opt}: mode={v}: not an octal mode")), Ok)
}

fn parse_num<T: std::str::FromStr>(opt: &str, key: &str, v: &str) -> Result<T, CliError> {
    v.parse()
        .map_or_else(|_| err(format!("--{opt}: {key}={v}: not a number")), Ok)
}

// ---------------------------------------------------------------------------
// Shared option values
// ---------------------------------------------------------------------------

/// Where the state key (or the migration key) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `file=PATH`.
    File(PathBuf),
    /// `fd=N`.
    Fd(i32),
}

/// How the key is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// 64 hex digits, optionally `0x` first and a newline after (swtpm's
    /// default).
    Hex,
    /// 32 raw bytes.
    Binary,
}

/// `--key` / `--migration-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    pub source: KeySource,
    pub format: KeyFormat,
    /// Remove the key file once read.
    pub remove: bool,
}

const PASSPHRASE_REFUSED: &str = "passphrases are not supported: vtpm's state key is a \
     256-bit key; give it with file=PATH or fd=N (format=hex|binary)";

/// Parses a `--key` / `--migration-key` value.
pub fn parse_key(opt: &str, value: &str) -> Result<KeySpec, CliError> {
    let mut source = None;
    let mut format = KeyFormat::Hex;
    let mut remove = false;
    for (k, v) in params(value) {
        match k.as_str() {
            "file" => source = Some(KeySource::File(need(opt, "file", v)?.into())),
            "fd" => source = Some(KeySource::Fd(parse_num(opt, "fd", &need(opt, "fd", v)?)?)),
            "pwdfile" | "pwdfd" | "kdf" | "pdf" => {
                return err(format!("--{opt}: {k}=: {PASSPHRASE_REFUSED}"));
            }
            "format" => {
                format = match need(opt, "format", v)?.as_str() {
                    "hex" => KeyFormat::Hex,
                    "binary" => KeyFormat::Binary,
                    other => {
                        return err(format!("--{opt}: format={other}: expected hex or binary"));
                    }
                }
            }
            "mode" => match need(opt, "mode", v)?.as_str() {
                // vtpm encrypts with AES-256-XTS (+ HMAC-SHA-256) whatever
                // the mode: what matters is a 256-bit key.
                "aes-256-cbc" => {}
                other @ ("aes-cbc" | "aes-128-cbc") => {
                    return err(format!(
                        "--{opt}: mode={other}: 128-bit keys are not supported; vtpm needs a \
                         256-bit key (mode=aes-256-cbc)"
                    ));
                }
                other => {
                    return err(format!(
                        "--{opt}: mode={other}: not supported (aes-256-cbc)"
                    ));
                }
            },
            "remove" => remove = flag_value(opt, "remove", v.as_deref())?,
            other => return err(format!("--{opt}: unknown parameter {other:?}")),
        }
    }
    let Some(source) = source else {
        return err(format!("--{opt}: needs file=PATH or fd=N"));
    };
    if remove && matches!(source, KeySource::Fd(_)) {
        return err(format!("--{opt}: remove applies to file= only"));
    }
    Ok(KeySpec {
        source,
        format,
        remove,
    })
}

/// The most bytes read from a key source.
const KEY_SOURCE_MAX: u64 = 256;

/// Reads and checks a key. A key file must not be accessible to group or
/// others (as for `vtpm serve --key-file`).
pub fn read_key(spec: &KeySpec, what: &str) -> Result<MasterKey, CliError> {
    let (name, data) = match &spec.source {
        KeySource::File(path) => {
            let name = format!("{what} file {}", path.display());
            let file = File::open(path).map_err(|e| CliError(format!("{name}: {e}")))?;
            let meta = file
                .metadata()
                .map_err(|e| CliError(format!("{name}: {e}")))?;
            if !meta.is_file() {
                return err(format!("{name}: not a regular file"));
            }
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return err(format!(
                    "{name} is accessible to group or others (mode {mode:04o}); restrict it \
                     with `chmod 600`"
                ));
            }
            let data = read_bounded(file).map_err(|e| CliError(format!("{name}: {e}")))?;
            if spec.remove
                && let Err(e) = std::fs::remove_file(path)
            {
                return err(format!("{name}: could not remove it (remove=true): {e}"));
            }
            (name, data)
        }
        KeySource::Fd(fd) => {
            let name = format!("{what} file descriptor {fd}");
            if *fd < 0 {
                return err(format!("{name}: not a valid descriptor"));
            }
            let file = File::open(format!("/proc/self/fd/{fd}"))
                .map_err(|e| CliError(format!("{name}: {e}")))?;
            let data = read_bounded(file).map_err(|e| CliError(format!("{name}: {e}")))?;
            (name, data)
        }
    };
    let raw: Zeroizing<Vec<u8>> = match spec.format {
        KeyFormat::Binary => match data.len() {
            32 => data,
            16 => {
                return err(format!(
                    "{name}: a 128-bit key; vtpm needs 32 bytes (256 bits)"
                ));
            }
            n => return err(format!("{name}: format=binary needs 32 bytes, found {n}")),
        },
        KeyFormat::Hex => {
            let text = std::str::from_utf8(&data)
                .map_err(|_| CliError(format!("{name}: format=hex but not text")))?
                .trim_end();
            let text = text
                .strip_prefix("0x")
                .or_else(|| text.strip_prefix("0X"))
                .unwrap_or(text);
            match text.len() {
                64 => Zeroizing::new(text.as_bytes().to_vec()),
                32 => {
                    return err(format!(
                        "{name}: a 128-bit key; vtpm needs 64 hex digits (256 bits)"
                    ));
                }
                n => {
                    return err(format!(
                        "{name}: format=hex needs 64 hex digits, found {n} characters"
                    ));
                }
            }
        }
    };
    MasterKey::parse(&raw, &name).map_err(|e| CliError(e.to_string()))
}

fn read_bounded(file: File) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(KEY_SOURCE_MAX as usize + 1));
    file.take(KEY_SOURCE_MAX + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > KEY_SOURCE_MAX {
        return Err(std::io::Error::other("longer than any key"));
    }
    Ok(buf)
}

/// Parses a state location: `dir://DIR` or `file://PATH` (swtpm's
/// backend URIs).
pub fn parse_backend_uri(opt: &str, uri: &str) -> Result<PathBuf, CliError> {
    if let Some(dir) = uri.strip_prefix("dir://") {
        if dir.is_empty() {
            return err(format!("--{opt}: {uri}: no directory"));
        }
        Ok(Path::new(dir).join(STATE_FILE_NAME))
    } else if let Some(file) = uri.strip_prefix("file://") {
        if file.is_empty() {
            return err(format!("--{opt}: {uri}: no file"));
        }
        Ok(PathBuf::from(file))
    } else {
        err(format!(
            "--{opt}: backend-uri={uri}: not supported (dir://DIR or file://PATH)"
        ))
    }
}

// ---------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard error (no `--log`).
    Stderr,
    /// A file, appended to (or truncated first).
    File { path: PathBuf, truncate: bool },
    /// An inherited descriptor.
    Fd(i32),
    /// `file=-`: no logging.
    Off,
}

/// `--log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSpec {
    pub target: LogTarget,
    pub level: Option<u32>,
    pub prefix: String,
}

impl Default for LogSpec {
    fn default() -> Self {
        LogSpec {
            target: LogTarget::Stderr,
            level: None,
            prefix: String::new(),
        }
    }
}

/// Parses a `--log` value.
pub fn parse_log(value: &str) -> Result<LogSpec, CliError> {
    let mut spec = LogSpec::default();
    let mut truncate = false;
    let mut file = None;
    for (k, v) in params(value) {
        match k.as_str() {
            "file" => file = Some(need("log", "file", v)?),
            "fd" => spec.target = LogTarget::Fd(parse_num("log", "fd", &need("log", "fd", v)?)?),
            "level" => spec.level = Some(parse_num("log", "level", &need("log", "level", v)?)?),
            "prefix" => spec.prefix = v.unwrap_or_default(),
            "truncate" => truncate = flag_value("log", "truncate", v.as_deref())?,
            other => return err(format!("--log: unknown parameter {other:?}")),
        }
    }
    if let Some(f) = file {
        spec.target = if f == "-" {
            LogTarget::Off
        } else {
            LogTarget::File {
                path: f.into(),
                truncate,
            }
        };
    }
    Ok(spec)
}

/// swtpm's log levels as `log` filters: none given or 1–2 → info, 3–4 →
/// debug, 5 and up → trace, 0 → warnings and errors only. (Without
/// `--log`, only warnings and errors go to stderr.)
pub fn level_filter(level: Option<u32>) -> log::LevelFilter {
    match level {
        None | Some(1..=2) => log::LevelFilter::Info,
        Some(0) => log::LevelFilter::Warn,
        Some(3..=4) => log::LevelFilter::Debug,
        Some(_) => log::LevelFilter::Trace,
    }
}

/// Sends log lines where `spec` says: `PREFIX<unix time> LEVEL message`.
pub fn init_logging(spec: &LogSpec) -> Result<(), CliError> {
    let sink: Box<dyn Write + Send> = match &spec.target {
        LogTarget::Off => {
            log::set_max_level(log::LevelFilter::Off);
            return Ok(());
        }
        LogTarget::Stderr => Box::new(std::io::stderr()),
        LogTarget::File { path, truncate } => {
            let mut o = OpenOptions::new();
            o.create(true).mode(0o640).custom_flags(libc::O_NOFOLLOW);
            if *truncate {
                o.write(true).truncate(true);
            } else {
                o.append(true);
            }
            Box::new(
                o.open(path)
                    .map_err(|e| CliError(format!("--log: file={}: {e}", path.display())))?,
            )
        }
        LogTarget::Fd(fd) => Box::new(
            OpenOptions::new()
                .append(true)
                .open(format!("/proc/self/fd/{fd}"))
                .map_err(|e| CliError(format!("--log: fd={fd}: {e}")))?,
        ),
    };
    let sink = Mutex::new(sink);
    let prefix = spec.prefix.clone();
    let level = match (&spec.target, spec.level) {
        (LogTarget::Stderr, None) => log::LevelFilter::Warn,
        (_, level) => level_filter(level),
    };
    let logger = env_logger::Builder::new()
        .filter_level(level)
        .format(move |_buf, record| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let line = format!(
                "{prefix}{}.{:03} {:5} {}\n",
                now.as_secs(),
                now.subsec_millis(),
                record.level(),
                record.args()
            );
            let mut s = sink
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = s.write_all(line.as_bytes());
            s.flush()
        })
        .build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// `vtpm socket`
// ---------------------------------------------------------------------------

/// A listening socket given by `--ctrl` / `--server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `type=unixio,path=…`.
    Unix {
        path: PathBuf,
        mode: u32,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    /// `type=tcp,port=…`.
    Tcp(SocketAddr),
}

/// `--pid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidSpec {
    File(PathBuf),
    Fd(i32),
}

/// `--flags` startup choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    Clear,
    State,
    None,
}

/// A checked `vtpm socket` command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketConfig {
    /// The state file.
    pub state: PathBuf,
    pub ctrl: Endpoint,
    /// `--ctrl …,terminate`.
    pub ctrl_terminate: bool,
    /// `--server` / `--port`.
    pub server: Option<Endpoint>,
    /// `--server …,disconnect`.
    pub server_disconnect: bool,
    /// `--terminate`.
    pub terminate: bool,
    pub log: LogSpec,
    pub pid: Option<PidSpec>,
    pub not_need_init: bool,
    pub startup: Option<Startup>,
    pub incoming: bool,
    pub release_lock_outgoing: bool,
    pub key: KeySpec,
    pub migration_key: Option<KeySpec>,
    pub reject_locality_4: bool,
}

/// What `vtpm socket` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketCommand {
    Run(Box<SocketConfig>),
    PrintCapabilities,
    Version,
    Help,
}

const fn opt(long: &'static str, short: Option<char>, takes_value: bool) -> OptSpec {
    OptSpec {
        long,
        short,
        takes_value,
    }
}

/// Every option `swtpm socket` has (the refused ones too, so that they
/// are refused by name rather than as unknown).
const SOCKET_OPTS: &[OptSpec] = &[
    opt("tpm2", None, false),
    opt("tpmstate", None, true),
    opt("ctrl", None, true),
    opt("server", None, true),
    opt("port", Some('p'), true),
    opt("terminate", Some('t'), false),
    opt("log", None, true),
    opt("pid", None, true),
    opt("flags", None, true),
    opt("migration", None, true),
    opt("key", None, true),
    opt("migration-key", None, true),
    opt("locality", None, true),
    opt("print-capabilities", None, false),
    opt("version", Some('v'), false),
    opt("help", Some('h'), false),
    // Refused.
    opt("fd", Some('f'), true),
    opt("daemon", Some('d'), false),
    opt("runas", Some('r'), true),
    opt("chroot", Some('R'), true),
    opt("seccomp", None, true),
    opt("print-states", None, false),
    opt("print-profiles", None, false),
    opt("print-info", None, true),
    opt("profile", None, true),
    opt("pcap", None, true),
    opt("vtpm-proxy", None, false),
    opt("chardev", Some('c'), true),
];

fn refused_socket_option(name: &str) -> Option<&'static str> {
    Some(match name {
        "fd" => {
            "passing the data channel as an inherited descriptor is not supported; use \
                 --server or CMD_SET_DATAFD"
        }
        "daemon" => {
            "vtpm stays in the foreground; let the caller (libvirt, systemd) run it \
                     in the background"
        }
        "runas" => "vtpm does not change user; start it as the user it should run as",
        "chroot" => "vtpm does not chroot; confine it with the service manager",
        "seccomp" => {
            "vtpm has no seccomp profile of its own; confine it with the service \
                      manager"
        }
        "print-states" | "print-profiles" | "print-info" | "profile" => {
            "TPM profiles and state listings are swtpm/libtpms features vtpm does not have"
        }
        "pcap" => "packet capture is not implemented",
        "vtpm-proxy" | "chardev" => "vtpm provides the socket interface only",
        _ => return None,
    })
}

fn parse_endpoint(opt_name: &str, value: &str, server: bool) -> Result<(Endpoint, bool), CliError> {
    let mut kind = if server { Some("tcp") } else { None };
    let (mut path, mut mode, mut uid, mut gid, mut port, mut bind) =
        (None, None, None, None, None, None);
    let mut extra = false;
    for (k, v) in params(value) {
        match k.as_str() {
            "type" => {
                kind = Some(match need(opt_name, "type", v)?.as_str() {
                    "unixio" => "unixio",
                    "tcp" => "tcp",
                    other => {
                        return err(format!(
                            "--{opt_name}: type={other}: expected unixio or tcp"
                        ));
                    }
                })
            }
            "path" => path = Some(need(opt_name, "path", v)?),
            "mode" => mode = Some(parse_octal_mode(opt_name, &need(opt_name, "mode", v)?)?),
            "uid" => uid = Some(parse_num(opt_name, "uid", &need(opt_name, "uid", v)?)?),
            "gid" => gid = Some(parse_num(opt_name, "gid", &need(opt_name, "gid", v)?)?),
            "port" => {
                port = Some(parse_num::<u16>(
                    opt_name,
                    "port",
                    &need(opt_name, "port", v)?,
                )?)
            }
            "bindaddr" => {
                let a = need(opt_name, "bindaddr", v)?;
                bind = Some(
                    a.trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                        .map_or_else(
                            |_| err(format!("--{opt_name}: bindaddr={a}: not an IP address")),
                            Ok,
                        )?,
                );
            }
            "terminate" if !server => extra = flag_value(opt_name, "terminate", v.as_deref())?,
            "disconnect" if server => extra = flag_value(opt_name, "disconnect", v.as_deref())?,
            "fd" | "clientfd" => {
                return err(format!(
                    "--{opt_name}: {k}=: inherited socket descriptors are not supported; give \
                     path= or port="
                ));
            }
            "ifname" => return err(format!("--{opt_name}: ifname=: not supported")),
            other => return err(format!("--{opt_name}: unknown parameter {other:?}")),
        }
    }
    let endpoint = match kind {
        Some("unixio") => {
            if port.is_some() || bind.is_some() {
                return err(format!("--{opt_name}: port=/bindaddr= are for type=tcp"));
            }
            let Some(path) = path else {
                return err(format!("--{opt_name}: type=unixio needs path="));
            };
            Endpoint::Unix {
                path: path.into(),
                mode: mode.unwrap_or(0o770),
                uid,
                gid,
            }
        }
        Some(_) => {
            if path.is_some() || mode.is_some() || uid.is_some() || gid.is_some() {
                return err(format!(
                    "--{opt_name}: path=/mode=/uid=/gid= are for type=unixio"
                ));
            }
            let Some(port) = port else {
                return err(format!("--{opt_name}: type=tcp needs port="));
            };
            Endpoint::Tcp(SocketAddr::new(
                bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                port,
            ))
        }
        None => return err(format!("--{opt_name}: needs type=unixio or type=tcp")),
    };
    Ok((endpoint, extra))
}

fn parse_tpmstate(value: &str) -> Result<PathBuf, CliError> {
    let mut state = None;
    for (k, v) in params(value) {
        match k.as_str() {
            "dir" => state = Some(Path::new(&need("tpmstate", "dir", v)?).join(STATE_FILE_NAME)),
            "backend-uri" => {
                state = Some(parse_backend_uri(
                    "tpmstate",
                    &need("tpmstate", "backend-uri", v)?,
                )?)
            }
            "mode" => {
                let m = parse_octal_mode("tpmstate", &need("tpmstate", "mode", v)?)?;
                if m != 0o600 {
                    return err(format!(
                        "--tpmstate: mode={m:04o}: not supported; vtpm always writes the state \
                         file with mode 0600"
                    ));
                }
            }
            "lock" => {
                if !flag_value("tpmstate", "lock", v.as_deref())? {
                    return err(
                        "--tpmstate: lock=false: not supported; vtpm always locks the \
                                state file",
                    );
                }
            }
            // Every write is fsynced (file and directory).
            "fsync" => {
                if !flag_value("tpmstate", "fsync", v.as_deref())? {
                    return err("--tpmstate: fsync=false: not supported; vtpm always fsyncs");
                }
            }
            "backup" => {
                return err(
                    "--tpmstate: backup: not supported; vtpm replaces the state file \
                            atomically instead",
                );
            }
            other => return err(format!("--tpmstate: unknown parameter {other:?}")),
        }
    }
    state.map_or_else(|| err("--tpmstate: needs dir=DIR or backend-uri=URI"), Ok)
}

/// Parses a `vtpm socket` / `swtpm socket` command line.
pub fn parse_socket(args: &[OsString]) -> Result<SocketCommand, CliError> {
    let found = lex(args, SOCKET_OPTS)?;
    let mut tpm2 = false;
    let mut state = None;
    let mut ctrl = None;
    let mut ctrl_terminate = false;
    let mut server = None;
    let mut server_disconnect = false;
    let mut terminate = false;
    let mut log = LogSpec::default();
    let mut pid = None;
    let mut not_need_init = false;
    let mut startup = None;
    let mut incoming = false;
    let mut release_lock_outgoing = false;
    let mut key = None;
    let mut migration_key = None;
    let mut reject_locality_4 = false;
    let mut print_caps = false;
    for Found { name, value } in found {
        let v = value.unwrap_or_default();
        if let Some(why) = refused_socket_option(name) {
            return err(format!("--{name}: not supported: {why}"));
        }
        match name {
            "help" => return Ok(SocketCommand::Help),
            "version" => return Ok(SocketCommand::Version),
            "print-capabilities" => print_caps = true,
            "tpm2" => tpm2 = true,
            "tpmstate" => state = Some(parse_tpmstate(&v)?),
            "ctrl" => {
                let (e, t) = parse_endpoint("ctrl", &v, false)?;
                ctrl = Some(e);
                ctrl_terminate = t;
            }
            "server" => {
                let (e, d) = parse_endpoint("server", &v, true)?;
                server = Some(e);
                server_disconnect = d;
            }
            "port" => {
                let port = parse_num::<u16>("port", "port", &v)?;
                server = Some(Endpoint::Tcp(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    port,
                )));
            }
            "terminate" => terminate = true,
            "log" => log = parse_log(&v)?,
            "pid" => {
                let mut p = None;
                for (k, val) in params(&v) {
                    match k.as_str() {
                        "file" => p = Some(PidSpec::File(need("pid", "file", val)?.into())),
                        "fd" => {
                            p = Some(PidSpec::Fd(parse_num(
                                "pid",
                                "fd",
                                &need("pid", "fd", val)?,
                            )?))
                        }
                        other => return err(format!("--pid: unknown parameter {other:?}")),
                    }
                }
                pid = Some(p.map_or_else(|| err("--pid: needs file=PATH or fd=N"), Ok)?);
            }
            "flags" => {
                for (k, val) in params(&v) {
                    if val.is_some() {
                        return err(format!("--flags: {k} takes no value"));
                    }
                    match k.as_str() {
                        "not-need-init" => not_need_init = true,
                        "startup-clear" => startup = Some(Startup::Clear),
                        "startup-state" => startup = Some(Startup::State),
                        "startup-none" => startup = Some(Startup::None),
                        "startup-deactivated" => {
                            return err(
                                "--flags: startup-deactivated: not supported (TPM 1.2 only)",
                            );
                        }
                        // vtpm never sends TPM2_Shutdown on its own.
                        "disable-auto-shutdown" => {}
                        other => return err(format!("--flags: unknown flag {other:?}")),
                    }
                }
            }
            "migration" => {
                for (k, val) in params(&v) {
                    if val.is_some() {
                        return err(format!("--migration: {k} takes no value"));
                    }
                    match k.as_str() {
                        "incoming" => incoming = true,
                        "release-lock-outgoing" => release_lock_outgoing = true,
                        other => return err(format!("--migration: unknown parameter {other:?}")),
                    }
                }
            }
            "key" => key = Some(parse_key("key", &v)?),
            "migration-key" => migration_key = Some(parse_key("migration-key", &v)?),
            "locality" => {
                for (k, val) in params(&v) {
                    match (k.as_str(), val) {
                        ("reject-locality-4", None) => reject_locality_4 = true,
                        ("allow-set-locality", None) => {
                            return err("--locality: allow-set-locality: not supported (there is \
                                        no TPM2_SetLocality command in vtpm)");
                        }
                        (other, _) => {
                            return err(format!("--locality: unknown parameter {other:?}"));
                        }
                    }
                }
            }
            other => return err(format!("--{other}: not supported")),
        }
    }
    if print_caps {
        return Ok(SocketCommand::PrintCapabilities);
    }
    if !tpm2 {
        return err("--tpm2 is required: vtpm is a TPM 2.0 (swtpm without --tpm2 is a TPM 1.2)");
    }
    let Some(state) = state else {
        return err("--tpmstate is required (dir=DIR or backend-uri=file://PATH)");
    };
    let Some(ctrl) = ctrl else {
        return err("--ctrl is required (type=unixio,path=PATH or type=tcp,port=N)");
    };
    let Some(key) = key else {
        return err(
            "--key is required: vtpm's state file is always encrypted; give a 256-bit key with \
             --key file=PATH[,format=hex|binary] or --key fd=N",
        );
    };
    if startup.is_some_and(|s| s != Startup::None) {
        // The startup-* flags imply not-need-init (not startup-none).
        not_need_init = true;
    }
    Ok(SocketCommand::Run(Box::new(SocketConfig {
        state,
        ctrl,
        ctrl_terminate,
        server,
        server_disconnect,
        terminate,
        log,
        pid,
        not_need_init,
        startup,
        incoming,
        release_lock_outgoing,
        key,
        migration_key,
        reject_locality_4,
    })))
}

/// `--print-capabilities` of `vtpm socket`: what libvirt looks for, listing
/// only what is honoured.
pub fn socket_capabilities() -> String {
    let features = [
        "tpm-2.0",
        "tpm-send-command-header",
        "flags-opt-startup",
        "flags-opt-disable-auto-shutdown",
        "ctrl-opt-terminate",
        "cmdarg-key-fd",
        "cmdarg-migration",
        "nvram-backend-dir",
        "nvram-backend-file",
        "tpmstate-opt-lock",
        "tpmstate-dir-backend-opt-fsync",
    ];
    capabilities_json("swtpm", &features)
}

/// `--print-capabilities` of `vtpm setup`.
pub fn setup_capabilities() -> String {
    capabilities_json("swtpm_setup", &["tpm-2.0", "cmdarg-keyfile-fd"])
}

fn capabilities_json(kind: &str, features: &[&str]) -> String {
    let list: Vec<String> = features.iter().map(|f| format!("\"{f}\"")).collect();
    format!(
        "{{ \"type\": \"{kind}\", \"features\": [ {} ], \"version\": \"{}\" }}",
        list.join(", "),
        env!("CARGO_PKG_VERSION")
    )
}

/// Writes the process id to a pid file or descriptor; returns the file to
/// remove at exit.
pub fn write_pid(spec: &PidSpec) -> Result<Option<PathBuf>, CliError> {
    let pid = format!("{}\n", std::process::id());
    match spec {
        PidSpec::File(path) => {
            let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
            std::fs::write(&tmp, &pid)
                .and_then(|()| {
                    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
                })
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    CliError(format!("--pid: file={}: {e}", path.display()))
                })?;
            Ok(Some(path.clone()))
        }
        PidSpec::Fd(fd) => {
            let mut f = OpenOptions::new()
                .write(true)
                .open(format!("/proc/self/fd/{fd}"))
                .map_err(|e| CliError(format!("--pid: fd={fd}: {e}")))?;
            f.write_all(pid.as_bytes())
                .map_err(|e| CliError(format!("--pid: fd={fd}: {e}")))?;
            Ok(None)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<OsString> {
        s.iter().map(OsString::from).collect()
    }

    fn socket(s: &[&str]) -> Result<SocketConfig, CliError> {
        match parse_socket(&args(s))? {
            SocketCommand::Run(c) => Ok(*c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn libvirt_command_line() {
        let c = socket(&[
            "--ctrl",
            "type=unixio,path=/run/libvirt/qemu/swtpm/1-vm-swtpm.sock,mode=0600",
            "--tpmstate",
            "dir=/var/lib/libvirt/swtpm/u/tpm2,mode=0600",
            "--log",
            "file=/var/log/swtpm/libvirt/qemu/vm-swtpm.log",
            "--terminate",
            "--tpm2",
            "--key",
            "file=/k,format=hex,mode=aes-256-cbc",
            "--migration",
            "release-lock-outgoing,incoming",
        ])
        .unwrap();
        assert_eq!(
            c.state,
            PathBuf::from("/var/lib/libvirt/swtpm/u/tpm2/vtpm.state")
        );
        assert_eq!(
            c.ctrl,
            Endpoint::Unix {
                path: "/run/libvirt/qemu/swtpm/1-vm-swtpm.sock".into(),
                mode: 0o600,
                uid: None,
                gid: None
            }
        );
        assert!(c.terminate && c.incoming && c.release_lock_outgoing);
        assert!(!c.not_need_init);
    }

    #[test]
    fn equals_forms_short_options_and_flags() {
        let c = socket(&[
            "--tpm2",
            "--tpmstate=backend-uri=file:///s/x.state",
            "--ctrl=type=tcp,port=2322,bindaddr=0.0.0.0,terminate",
            "-p",
            "2321",
            "-t",
            "--flags",
            "startup-clear,disable-auto-shutdown",
            "--key",
            "fd=3,format=binary",
            "--pid",
            "file=/run/p.pid",
            "--locality",
            "reject-locality-4",
        ])
        .unwrap();
        assert_eq!(c.state, PathBuf::from("/s/x.state"));
        assert_eq!(c.ctrl, Endpoint::Tcp("0.0.0.0:2322".parse().unwrap()));
        assert!(c.ctrl_terminate && c.terminate && c.not_need_init && c.reject_locality_4);
        assert_eq!(
            c.server,
            Some(Endpoint::Tcp("127.0.0.1:2321".parse().unwrap()))
        );
        assert_eq!(c.startup, Some(Startup::Clear));
        assert_eq!(c.key.source, KeySource::Fd(3));
        assert_eq!(c.pid, Some(PidSpec::File("/run/p.pid".into())));
        // startup-none does not imply not-need-init.
        let c = socket(&[
            "--tpm2",
            "--tpmstate",
            "dir=/d",
            "--ctrl",
            "type=unixio,path=/c",
            "--key",
            "file=/k",
            "--flags",
            "startup-none",
        ])
        .unwrap();
        assert!(!c.not_need_init);
    }

    #[test]
    fn refusals_name_the_option() {
        let base = [
            "--tpm2",
            "--tpmstate",
            "dir=/d",
            "--ctrl",
            "type=unixio,path=/c",
        ];
        let with = |extra: &[&str]| {
            let mut v: Vec<&str> = base.to_vec();
            v.extend_from_slice(extra);
            parse_socket(&args(&v)).unwrap_err().0
        };
        assert!(with(&[]).starts_with("--key is required"));
        for (extra, needle) in [
            (&["--key", "pwdfile=/p"][..], "--key: pwdfile="),
            (&["--key", "pwdfd=3,mode=aes-256-cbc"][..], "--key: pwdfd="),
            (&["--key", "file=/k,mode=aes-cbc"][..], "128-bit"),
            (&["--daemon"][..], "--daemon: not supported"),
            (&["-d"][..], "--daemon: not supported"),
            (&["--runas", "tss"][..], "--runas: not supported"),
            (
                &["--seccomp", "action=none"][..],
                "--seccomp: not supported",
            ),
            (&["--bogus"][..], "--bogus: unknown option"),
            (&["--tpmstate", "dir=/d,backup"][..], "--tpmstate: backup"),
            (&["--tpmstate", "dir=/d,mode=0640"][..], "mode=0640"),
            (
                &["--flags", "startup-deactivated"][..],
                "startup-deactivated",
            ),
            (&["--ctrl", "type=unixio,fd=3"][..], "--ctrl: fd="),
            (&["--migration", "outgoing"][..], "--migration: unknown"),
        ] {
            let msg = with(extra);
            assert!(msg.contains(needle), "{extra:?}: {msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
        assert!(
            parse_socket(&args(&[
                "--tpmstate",
                "dir=/d",
                "--ctrl",
                "type=unixio,path=/c",
                "--key",
                "file=/k"
            ]))
            .unwrap_err()
            .0
            .contains("--tpm2")
        );
    }

    #[test]
    fn print_capabilities_needs_nothing_else() {
        assert_eq!(
            parse_socket(&args(&["--print-capabilities"])).unwrap(),
            SocketCommand::PrintCapabilities
        );
        let caps = socket_capabilities();
        assert!(caps.contains("\"type\": \"swtpm\""));
        assert!(caps.contains("\"tpm-2.0\""));
        assert!(!caps.contains("cmdarg-pwd-fd"));
    }

    #[test]
    fn keys() {
        let dir = std::env::temp_dir().join(format!("vtpm-cli-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, data: &[u8], mode: u32| {
            let p = dir.join(name);
            std::fs::write(&p, data).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        let hex = "ab".repeat(32);
        let spec = |p: &Path, format: KeyFormat| KeySpec {
            source: KeySource::File(p.to_path_buf()),
            format,
            remove: false,
        };
        let a = read_key(
            &spec(
                &write("h", format!("0x{hex}\n").as_bytes(), 0o600),
                KeyFormat::Hex,
            ),
            "key",
        )
        .unwrap();
        let b = read_key(
            &spec(&write("b", &[0xab; 32], 0o600), KeyFormat::Binary),
            "key",
        )
        .unwrap();
        assert_eq!(a.key_id(), b.key_id());
        assert!(
            read_key(
                &spec(&write("s", &[0xab; 16], 0o600), KeyFormat::Binary),
                "key"
            )
            .unwrap_err()
            .0
            .contains("128-bit")
        );
        assert!(
            read_key(
                &spec(&write("w", hex.as_bytes(), 0o644), KeyFormat::Hex),
                "key"
            )
            .unwrap_err()
            .0
            .contains("chmod 600")
        );
        assert!(
            read_key(
                &spec(&write("x", &[0xab; 32], 0o600), KeyFormat::Hex),
                "key"
            )
            .is_err()
        );
        let r = write("r", hex.as_bytes(), 0o600);
        let mut s = spec(&r, KeyFormat::Hex);
        s.remove = true;
        read_key(&s, "key").unwrap();
        assert!(!r.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
