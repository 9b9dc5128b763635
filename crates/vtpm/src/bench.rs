//! `vtpm bench`: command latency of any server speaking the swtpm or the
//! mssim protocol, measured from the client's side with hand-built TPM
//! commands (no TSS in the path), including a durable NV write
//! (TPM2_NV_Write of 64 bytes to an index it defines).

use anyhow::{Context, Result, bail, ensure};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest response accepted from a server.
const MAX_RESPONSE: usize = 4096;
/// TPM_RC_INITIALIZE: TPM2_Startup when the TPM is already started.
const RC_INITIALIZE: u32 = 0x100;

/// Which protocol the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TctiKind {
    /// swtpm: raw commands on the data port.
    Swtpm,
    /// Microsoft simulator: framed commands on port P, platform on P+1.
    Mssim,
}

/// A server to talk to, from a tpm2-tss style TCTI string
/// (`swtpm:host=127.0.0.1,port=2321`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tcti {
    /// The protocol.
    pub kind: TctiKind,
    /// Host name or address.
    pub host: String,
    /// Data (swtpm) or command (mssim) port.
    pub port: u16,
}

impl std::fmt::Display for TctiKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TctiKind::Swtpm => "swtpm",
            TctiKind::Mssim => "mssim",
        })
    }
}

impl std::str::FromStr for Tcti {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, conf) = s.split_once(':').unwrap_or((s, ""));
        let kind = match name {
            "swtpm" => TctiKind::Swtpm,
            "mssim" => TctiKind::Mssim,
            _ => return Err(format!("unknown TCTI {name:?}: expected swtpm or mssim")),
        };
        let mut tcti = Tcti {
            kind,
            host: "127.0.0.1".into(),
            port: 2321,
        };
        for kv in conf.split(',').filter(|kv| !kv.is_empty()) {
            match kv.split_once('=') {
                Some(("host", h)) if !h.is_empty() => tcti.host = h.to_string(),
                Some(("port", p)) => {
                    tcti.port = p.parse().map_err(|_| format!("bad port {p:?}"))?
                }
                _ => {
                    return Err(format!(
                        "unknown TCTI option {kv:?}: expected host=… or port=…"
                    ));
                }
            }
        }
        Ok(tcti)
    }
}

impl Tcti {
    fn addr(&self, port: u16) -> Result<SocketAddr> {
        (self.host.as_str(), port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {}", self.host))?
            .next()
            .with_context(|| format!("{} has no address", self.host))
    }
}

/// What `vtpm bench` does.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The server.
    pub tcti: Tcti,
    /// Measured iterations per command.
    pub iterations: usize,
    /// Unmeasured iterations per command before them.
    pub warmup: usize,
    /// swtpm: a new data connection per command, like tcti-swtpm.
    pub reconnect: bool,
    /// Measure the key commands instead (`--keys`).
    pub keys: bool,
    /// Measure the costs of sessions instead (`--sessions`).
    pub sessions: bool,
    /// Measure NV storage and attestation instead (`--nv-attest`).
    pub nv_attest: bool,
}

/// A connection able to carry TPM commands.
pub(crate) trait Transport {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>>;
}

fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(s)
}

fn read_u32(s: &mut TcpStream) -> Result<u32> {
    let mut b = [0u8; 4];
    s.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

/// Reads a TPM response (header first, then the size it gives).
fn read_response(s: &mut TcpStream) -> Result<Vec<u8>> {
    let mut rsp = vec![0u8; 10];
    s.read_exact(&mut rsp)
        .context("reading the response header")?;
    let size = usize::try_from(be_u32(&rsp, 2)).unwrap_or(usize::MAX);
    ensure!(
        (10..=MAX_RESPONSE).contains(&size),
        "response size {size} out of range"
    );
    rsp.resize(size, 0);
    s.read_exact(rsp.get_mut(10..).unwrap_or_default())
        .context("reading the response")?;
    Ok(rsp)
}

/// swtpm data channel.
struct Swtpm {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    reconnect: bool,
}

impl Transport for Swtpm {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>> {
        let mut s = match self.stream.take() {
            Some(s) => s,
            None => connect(self.addr)?,
        };
        s.write_all(command)?;
        let rsp = read_response(&mut s)?;
        if !self.reconnect {
            self.stream = Some(s);
        }
        Ok(rsp)
    }
}

/// mssim command port (and the platform connection, kept open as
/// tcti-mssim does).
struct Mssim {
    command: TcpStream,
    _platform: TcpStream,
}

const MSSIM_SEND_COMMAND: u32 = 8;
const MSSIM_POWER_ON: u32 = 1;
const MSSIM_NV_ON: u32 = 11;

impl Mssim {
    fn open(tcti: &Tcti) -> Result<Mssim> {
        let platform_port = tcti
            .port
            .checked_add(1)
            .context("the mssim platform port would be above 65535")?;
        let mut platform = connect(tcti.addr(platform_port)?)?;
        for code in [MSSIM_POWER_ON, MSSIM_NV_ON] {
            platform.write_all(&code.to_be_bytes())?;
            let ack = read_u32(&mut platform).context("platform port")?;
            ensure!(ack == 0, "platform command {code} answered {ack}");
        }
        Ok(Mssim {
            command: connect(tcti.addr(tcti.port)?)?,
            _platform: platform,
        })
    }
}

impl Transport for Mssim {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>> {
        let mut req = Vec::with_capacity(command.len() + 9);
        req.extend_from_slice(&MSSIM_SEND_COMMAND.to_be_bytes());
        req.push(0);
        req.extend_from_slice(&u32::try_from(command.len())?.to_be_bytes());
        req.extend_from_slice(command);
        self.command.write_all(&req)?;
        let size = usize::try_from(read_u32(&mut self.command)?).unwrap_or(usize::MAX);
        ensure!(size != 0, "the TPM is powered off (empty response)");
        ensure!(
            (10..=MAX_RESPONSE).contains(&size),
            "response size {size} out of range"
        );
        let mut rsp = vec![0u8; size];
        self.command.read_exact(&mut rsp)?;
        let ack = read_u32(&mut self.command)?;
        ensure!(ack == 0, "SEND_COMMAND answered {ack}");
        Ok(rsp)
    }
}

pub(crate) fn be_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(u32::MAX, u32::from_be_bytes)
}

/// A TPM command: tag, size and code, then `body`.
pub(crate) fn command(tag: u16, cc: u32, body: &[u8]) -> Vec<u8> {
    let size = u32::try_from(10 + body.len()).unwrap_or(u32::MAX);
    let mut c = Vec::with_capacity(10 + body.len());
    c.extend_from_slice(&tag.to_be_bytes());
    c.extend_from_slice(&size.to_be_bytes());
    c.extend_from_slice(&cc.to_be_bytes());
    c.extend_from_slice(body);
    c
}

const ST_NO_SESSIONS: u16 = 0x8001;
const ST_SESSIONS: u16 = 0x8002;
const ALG_SHA256: [u8; 2] = [0x00, 0x0B];

/// TPM2_Startup(TPM_SU_CLEAR).
fn startup_clear() -> Vec<u8> {
    command(ST_NO_SESSIONS, 0x144, &[0x00, 0x00])
}

/// TPM2_GetRandom(bytesRequested).
fn get_random(n: u16) -> Vec<u8> {
    command(ST_NO_SESSIONS, 0x17B, &n.to_be_bytes())
}

/// The authorization area of one password session (TPM_RS_PW) with the
/// empty password, size field first.
pub(crate) fn empty_password_session(body: &mut Vec<u8>) {
    body.extend_from_slice(&9u32.to_be_bytes()); // authorizationSize
    body.extend_from_slice(&0x4000_0009u32.to_be_bytes()); // TPM_RS_PW
    body.extend_from_slice(&[0, 0]); // nonceCaller
    body.push(0x01); // continueSession
    body.extend_from_slice(&[0, 0]); // hmac (empty password)
}

/// TPM2_PCR_Extend of PCR 16 with one SHA-256 digest, authorized by the
/// empty password (TPM_RS_PW).
fn pcr_extend_16() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&16u32.to_be_bytes()); // pcrHandle
    empty_password_session(&mut body);
    body.extend_from_slice(&1u32.to_be_bytes()); // TPML_DIGEST_VALUES.count
    body.extend_from_slice(&ALG_SHA256);
    body.extend_from_slice(&[0xA5; 32]);
    command(ST_SESSIONS, 0x182, &body)
}

/// TPM_RH_OWNER.
const RH_OWNER: u32 = 0x4000_0001;
/// TPM_RC_NV_DEFINED: NV_DefineSpace of an index that exists.
pub(crate) const RC_NV_DEFINED: u32 = 0x14C;
/// The index the NV_Write benchmark writes (ordinary, owner read/write).
pub(crate) const BENCH_NV_INDEX: u32 = 0x0150_0F00;
/// Its size, and the size of each measured write.
pub(crate) const BENCH_NV_SIZE: u16 = 64;
/// TPMA_NV_OWNERWRITE | TPMA_NV_OWNERREAD.
pub(crate) const NV_OWNER_READ_WRITE: u32 = 0x0002_0002;

/// TPM2_NV_DefineSpace by the owner (empty owner password) of an ordinary
/// index with a SHA-256 name, no authValue and no policy.
pub(crate) fn nv_define_space(index: u32, attributes: u32, size: u16) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&RH_OWNER.to_be_bytes()); // authHandle
    empty_password_session(&mut body);
    body.extend_from_slice(&[0, 0]); // auth: empty
    body.extend_from_slice(&14u16.to_be_bytes()); // TPM2B_NV_PUBLIC.size
    body.extend_from_slice(&index.to_be_bytes()); // nvIndex
    body.extend_from_slice(&ALG_SHA256); // nameAlg
    body.extend_from_slice(&attributes.to_be_bytes());
    body.extend_from_slice(&[0, 0]); // authPolicy: empty
    body.extend_from_slice(&size.to_be_bytes()); // dataSize
    command(ST_SESSIONS, 0x12A, &body)
}

/// TPM2_NV_Write of `data` at `offset`, authorized by the owner (empty
/// owner password).
fn nv_write(index: u32, data: &[u8], offset: u16) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&RH_OWNER.to_be_bytes()); // authHandle
    body.extend_from_slice(&index.to_be_bytes()); // nvIndex
    empty_password_session(&mut body);
    body.extend_from_slice(&u16::try_from(data.len()).unwrap_or(u16::MAX).to_be_bytes());
    body.extend_from_slice(data);
    body.extend_from_slice(&offset.to_be_bytes());
    command(ST_SESSIONS, 0x137, &body)
}

/// The NV_Write the benchmark measures at iteration `i`: all 64 bytes of
/// the index, different on every iteration (so no server can skip the
/// write as unchanged).
pub(crate) fn nv_write_64(i: usize) -> Vec<u8> {
    let mut data = [0x3Cu8; BENCH_NV_SIZE as usize];
    if let Some(head) = data.get_mut(..8) {
        head.copy_from_slice(&(i as u64).to_be_bytes());
    }
    nv_write(BENCH_NV_INDEX, &data, 0)
}

/// TPM2_PCR_Read of SHA-256 PCR 16.
fn pcr_read_16() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&1u32.to_be_bytes()); // TPML_PCR_SELECTION.count
    body.extend_from_slice(&ALG_SHA256);
    body.extend_from_slice(&[3, 0x00, 0x00, 0x01]); // sizeofSelect, PCR 16
    command(ST_NO_SESSIONS, 0x17E, &body)
}

/// TPM2_Hash of 1 KiB with SHA-256 in the null hierarchy.
fn hash_1k() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&1024u16.to_be_bytes());
    body.extend_from_slice(&[0x5A; 1024]);
    body.extend_from_slice(&ALG_SHA256);
    body.extend_from_slice(&0x4000_0007u32.to_be_bytes()); // TPM_RH_NULL
    command(ST_NO_SESSIONS, 0x17D, &body)
}

/// The response code of a response.
pub(crate) fn rc(rsp: &[u8]) -> u32 {
    be_u32(rsp, 6)
}

fn open(config: &BenchConfig) -> Result<Box<dyn Transport>> {
    Ok(match config.tcti.kind {
        TctiKind::Swtpm => Box::new(Swtpm {
            addr: config.tcti.addr(config.tcti.port)?,
            stream: None,
            reconnect: config.reconnect,
        }),
        TctiKind::Mssim => Box::new(Mssim::open(&config.tcti)?),
    })
}

/// Latency statistics of one command, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Mean.
    pub mean: f64,
}

/// Nearest-rank percentiles and the mean of `samples` (nanoseconds).
pub fn stats(samples: &mut [u64]) -> Option<Stats> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let n = samples.len();
    let rank = |p: usize| -> f64 {
        let i = (p * n).div_ceil(100).clamp(1, n) - 1;
        samples.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
    Some(Stats {
        p50: rank(50),
        p90: rank(90),
        p99: rank(99),
        mean: sum as f64 / n as f64 / 1000.0,
    })
}

/// Runs the benchmark and prints one markdown table row per command.
pub fn run(config: &BenchConfig) -> Result<()> {
    ensure!(config.iterations > 0, "--iterations must be at least 1");
    ensure!(
        !(config.reconnect && config.tcti.kind == TctiKind::Mssim),
        "--reconnect is for the swtpm protocol only"
    );
    let mut t = open(config)?;

    let rsp = t.transact(&startup_clear()).context("TPM2_Startup")?;
    match rc(&rsp) {
        0 | RC_INITIALIZE => {}
        other => bail!("TPM2_Startup(CLEAR) answered TPM_RC {other:#x}"),
    }

    if config.keys {
        return crate::bench_keys::run(config, t.as_mut());
    }
    if config.sessions {
        return crate::bench_sessions::run(config, t.as_mut());
    }
    if config.nv_attest {
        return crate::bench_nv_attest::run(config, t.as_mut());
    }

    // The NV_Write benchmark's index; one left by an earlier run is fine.
    let rsp = t
        .transact(&nv_define_space(
            BENCH_NV_INDEX,
            NV_OWNER_READ_WRITE,
            BENCH_NV_SIZE,
        ))
        .context("TPM2_NV_DefineSpace")?;
    match rc(&rsp) {
        0 | RC_NV_DEFINED => {}
        other => bail!(
            "TPM2_NV_DefineSpace({BENCH_NV_INDEX:#x}, {BENCH_NV_SIZE} bytes) answered TPM_RC {other:#x}"
        ),
    }

    type Make = Box<dyn Fn(usize) -> Vec<u8>>;
    let same = |c: Vec<u8>| -> Make { Box::new(move |_| c.clone()) };
    let commands: [(&str, Make); 5] = [
        ("GetRandom(32)", same(get_random(32))),
        ("PCR_Extend(16, sha256, pw session)", same(pcr_extend_16())),
        ("PCR_Read(sha256:16)", same(pcr_read_16())),
        ("Hash(1 KiB, sha256)", same(hash_1k())),
        ("NV_Write(64 B, owner pw session)", Box::new(nv_write_64)),
    ];

    let connections = match (config.tcti.kind, config.reconnect) {
        (TctiKind::Swtpm, true) => "a new data connection per command",
        _ => "one connection",
    };
    println!(
        "{} {}:{}, {} iterations after {} warm-up, {connections}; microseconds",
        config.tcti.kind, config.tcti.host, config.tcti.port, config.iterations, config.warmup
    );
    println!("| command | p50 | p90 | p99 | mean |");
    println!("|---|---:|---:|---:|---:|");
    for (name, make) in &commands {
        let mut samples = Vec::with_capacity(config.iterations);
        for i in 0..config.warmup + config.iterations {
            let cmd = make(i);
            let start = Instant::now();
            let rsp = t.transact(&cmd).with_context(|| name.to_string())?;
            let elapsed = start.elapsed();
            let code = rc(&rsp);
            ensure!(code == 0, "{name} answered TPM_RC {code:#x}");
            if i >= config.warmup {
                samples.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
            }
        }
        if let Some(s) = stats(&mut samples) {
            println!(
                "| {name} | {:.1} | {:.1} | {:.1} | {:.1} |",
                s.p50, s.p90, s.p99, s.mean
            );
        }
    }
    Ok(())
}

/// `--wait-ready`: connects repeatedly until a TPM2_GetRandom gets a
/// response (whatever its code), then prints the time it took, counted
/// from `since_unix_ns` (when the server was started) if given, else from
/// the start of the wait.
pub fn wait_ready(tcti: &Tcti, since_unix_ns: Option<u128>, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let cmd = get_random(8);
    let addr = tcti.addr(tcti.port)?;
    loop {
        let attempt = || -> Result<Vec<u8>> {
            let mut s = TcpStream::connect(addr)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            match tcti.kind {
                TctiKind::Swtpm => {
                    s.write_all(&cmd)?;
                    read_response(&mut s)
                }
                TctiKind::Mssim => {
                    let mut req = MSSIM_SEND_COMMAND.to_be_bytes().to_vec();
                    req.push(0);
                    req.extend_from_slice(&u32::try_from(cmd.len())?.to_be_bytes());
                    req.extend_from_slice(&cmd);
                    s.write_all(&req)?;
                    let size = usize::try_from(read_u32(&mut s)?).unwrap_or(usize::MAX);
                    ensure!(size <= MAX_RESPONSE, "response size {size} out of range");
                    let mut rsp = vec![0u8; size + 4];
                    s.read_exact(&mut rsp)?;
                    Ok(rsp)
                }
            }
        };
        if attempt().is_ok() {
            break;
        }
        ensure!(
            start.elapsed() < timeout,
            "no response from {addr} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed_ns = match since_unix_ns {
        Some(t0) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .context("clock before 1970")?
                .as_nanos();
            now.saturating_sub(t0)
        }
        None => start.elapsed().as_nanos(),
    };
    println!("first response after {:.1} ms", elapsed_ns as f64 / 1e6);
    Ok(())
}

/// The engine in-process as a [`Transport`], started (TPM2_Startup(CLEAR)),
/// for the bench modes' own tests.
#[cfg(test)]
pub(crate) struct TestEngine(vtpm_engine::Tpm);

#[cfg(test)]
impl TestEngine {
    #[allow(clippy::unwrap_used)]
    pub(crate) fn started() -> TestEngine {
        let mut tpm = vtpm_engine::Tpm::new(Box::new(vtpm_engine::MemoryPlatform::new())).unwrap();
        tpm.power_on();
        assert_eq!(rc(&tpm.execute(0, &startup_clear())), 0);
        TestEngine(tpm)
    }

    /// A configuration for a short run (3 iterations after 1 warm-up).
    #[allow(clippy::unwrap_used)]
    pub(crate) fn config(sessions: bool, nv_attest: bool) -> BenchConfig {
        BenchConfig {
            tcti: "swtpm:port=1".parse().unwrap(),
            iterations: 3,
            warmup: 1,
            reconnect: false,
            keys: false,
            sessions,
            nv_attest,
        }
    }
}

#[cfg(test)]
impl Transport for TestEngine {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>> {
        Ok(self.0.execute(0, command))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcti_strings() {
        let t: Tcti = "swtpm:host=localhost,port=2351".parse().expect("parse");
        assert_eq!(
            t,
            Tcti {
                kind: TctiKind::Swtpm,
                host: "localhost".into(),
                port: 2351
            }
        );
        let t: Tcti = "mssim".parse().expect("parse");
        assert_eq!(
            t,
            Tcti {
                kind: TctiKind::Mssim,
                host: "127.0.0.1".into(),
                port: 2321
            }
        );
        assert!("device:/dev/tpm0".parse::<Tcti>().is_err());
        assert!("swtpm:port=99999".parse::<Tcti>().is_err());
        assert!("swtpm:speed=1".parse::<Tcti>().is_err());
    }

    #[test]
    fn commands_are_well_formed() {
        for c in [
            startup_clear(),
            get_random(32),
            pcr_extend_16(),
            pcr_read_16(),
            hash_1k(),
            nv_define_space(BENCH_NV_INDEX, NV_OWNER_READ_WRITE, BENCH_NV_SIZE),
            nv_write_64(7),
        ] {
            assert_eq!(be_u32(&c, 2) as usize, c.len());
        }
        assert_eq!(pcr_extend_16().len(), 65);
        assert_eq!(pcr_read_16().len(), 20);
        assert_eq!(hash_1k().len(), 1042);
        // header 10, authHandle 4, auth area 4 + 9, auth 2, public 2 + 14.
        assert_eq!(nv_define_space(1, 2, 3).len(), 45);
        // header 10, 2 handles 8, auth area 4 + 9, data 2 + 64, offset 2.
        let w = nv_write_64(0x0102);
        assert_eq!(w.len(), 99);
        assert_ne!(w, nv_write_64(0x0103));
        assert_eq!(w.get(33..41), Some(&[0, 0, 0, 0, 0, 0, 1, 2][..]));
    }

    #[test]
    fn percentiles() {
        let mut s: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let st = stats(&mut s).expect("stats");
        assert_eq!((st.p50, st.p90, st.p99), (50.0, 90.0, 99.0));
        assert!((st.mean - 50.5).abs() < 1e-9);
        assert_eq!(stats(&mut []), None);
    }
}
