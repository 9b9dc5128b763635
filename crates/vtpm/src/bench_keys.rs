//! `vtpm bench --keys`: latency of the key commands, measured from the
//! client's side with hand-built commands: CreatePrimary (RSA-2048 with a
//! new template each time — a cold derivation — and with the same template
//! again; ECC P-256), Create (RSA-2048 after 1 s idle, so a TPM with a
//! key pool has a key ready, and back to back; ECC P-256), Load, Sign
//! (RSASSA-2048, ECDSA-P256) and RSA_Decrypt (OAEP-SHA256).

use crate::bench::{BenchConfig, Transport, command, empty_password_session, rc, stats};
use anyhow::{Context, Result, bail, ensure};
use std::time::{Duration, Instant};

const ST_NO_SESSIONS: u16 = 0x8001;
const ST_SESSIONS: u16 = 0x8002;
const RH_OWNER: u32 = 0x4000_0001;
const RH_NULL: u32 = 0x4000_0007;

const CC_CREATE_PRIMARY: u32 = 0x131;
const CC_CREATE: u32 = 0x153;
const CC_LOAD: u32 = 0x157;
const CC_SIGN: u32 = 0x15D;
const CC_RSA_DECRYPT: u32 = 0x159;
const CC_RSA_ENCRYPT: u32 = 0x174;
const CC_FLUSH_CONTEXT: u32 = 0x165;
/// TPM_RC_RETRY.
const RC_RETRY: u32 = 0x922;

/// TPMA_OBJECT: fixedTPM | fixedParent | sensitiveDataOrigin |
/// userWithAuth.
pub(crate) const ATTR_BASE: u32 = 0x0000_0072;
pub(crate) const ATTR_RESTRICTED: u32 = 1 << 16;
pub(crate) const ATTR_DECRYPT: u32 = 1 << 17;
pub(crate) const ATTR_SIGN: u32 = 1 << 18;

pub(crate) fn u16b(v: u16) -> [u8; 2] {
    v.to_be_bytes()
}

/// A TPMT_PUBLIC (inside its TPM2B) for an RSA-2048 key.
pub(crate) fn rsa_template(
    attributes: u32,
    storage: bool,
    scheme: &[u8],
    unique: &[u8],
) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&u16b(0x0001)); // TPM_ALG_RSA
    t.extend_from_slice(&u16b(0x000B)); // nameAlg SHA-256
    t.extend_from_slice(&attributes.to_be_bytes());
    t.extend_from_slice(&u16b(0)); // authPolicy
    if storage {
        t.extend_from_slice(&[0x00, 0x06, 0x00, 0x80, 0x00, 0x43]); // AES-128-CFB
    } else {
        t.extend_from_slice(&u16b(0x0010));
    }
    t.extend_from_slice(scheme);
    t.extend_from_slice(&u16b(2048));
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&u16b(u16::try_from(unique.len()).unwrap_or(0)));
    t.extend_from_slice(unique);
    sized(&t)
}

/// A TPMT_PUBLIC (inside its TPM2B) for a P-256 ECDSA-SHA256 signing key.
pub(crate) fn ecc_template(attributes: u32, storage: bool) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&u16b(0x0023)); // TPM_ALG_ECC
    t.extend_from_slice(&u16b(0x000B));
    t.extend_from_slice(&attributes.to_be_bytes());
    t.extend_from_slice(&u16b(0));
    if storage {
        t.extend_from_slice(&[0x00, 0x06, 0x00, 0x80, 0x00, 0x43]);
        t.extend_from_slice(&u16b(0x0010)); // scheme NULL
    } else {
        t.extend_from_slice(&u16b(0x0010));
        t.extend_from_slice(&[0x00, 0x18, 0x00, 0x0B]); // ECDSA SHA-256
    }
    t.extend_from_slice(&u16b(0x0003)); // NIST P-256
    t.extend_from_slice(&u16b(0x0010)); // kdf NULL
    t.extend_from_slice(&[0, 0, 0, 0]); // unique: empty x, y
    sized(&t)
}

fn sized(b: &[u8]) -> Vec<u8> {
    let mut v = u16b(u16::try_from(b.len()).unwrap_or(0)).to_vec();
    v.extend_from_slice(b);
    v
}

/// CreatePrimary / Create: handle, password session, then inSensitive
/// (empty), inPublic, outsideInfo (empty), creationPCR (none).
pub(crate) fn create_command(cc: u32, parent: u32, public: &[u8]) -> Vec<u8> {
    let mut body = parent.to_be_bytes().to_vec();
    empty_password_session(&mut body);
    body.extend_from_slice(&[0x00, 0x04, 0, 0, 0, 0]); // TPM2B_SENSITIVE_CREATE
    body.extend_from_slice(public);
    body.extend_from_slice(&[0, 0]); // outsideInfo
    body.extend_from_slice(&[0, 0, 0, 0]); // creationPCR
    command(ST_SESSIONS, cc, &body)
}

pub(crate) fn flush(h: u32) -> Vec<u8> {
    command(ST_NO_SESSIONS, CC_FLUSH_CONTEXT, &h.to_be_bytes())
}

/// The response handle and parameters of a successful response with
/// sessions.
pub(crate) fn split(rsp: &[u8], has_handle: bool) -> Result<(u32, &[u8])> {
    let code = rc(rsp);
    ensure!(code == 0, "TPM_RC {code:#x}");
    let mut at = 10;
    let mut handle = 0;
    if has_handle {
        handle = crate::bench::be_u32(rsp, at);
        at += 4;
    }
    let size = usize::try_from(crate::bench::be_u32(rsp, at)).unwrap_or(usize::MAX);
    at += 4;
    let params = rsp
        .get(at..at.saturating_add(size))
        .context("short response")?;
    Ok((handle, params))
}

/// The first `n` TPM2B fields of `params`, with their size prefixes.
pub(crate) fn tpm2bs(params: &[u8], n: usize) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut at = 0;
    for _ in 0..n {
        let len = params
            .get(at..at + 2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(|b| usize::from(u16::from_be_bytes(b)))
            .context("short TPM2B")?;
        out.push(
            params
                .get(at..at + 2 + len)
                .context("short TPM2B")?
                .to_vec(),
        );
        at += 2 + len;
    }
    Ok(out)
}

struct Session<'a> {
    t: &'a mut dyn Transport,
}

impl Session<'_> {
    fn ok(&mut self, cmd: &[u8], what: &str) -> Result<Vec<u8>> {
        let rsp = self.t.transact(cmd).with_context(|| what.to_string())?;
        let code = rc(&rsp);
        ensure!(code == 0, "{what} answered TPM_RC {code:#x}");
        Ok(rsp)
    }

    /// Runs `measured` `iterations` times after `warmup` unmeasured runs;
    /// `before` and `after` run around each, unmeasured.
    #[allow(clippy::too_many_arguments)]
    fn measure(
        &mut self,
        config: &BenchConfig,
        iterations: usize,
        name: &str,
        pause: Duration,
        make: &dyn Fn(usize) -> Vec<u8>,
        after: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<()> {
        let warmup = config.warmup.min(iterations);
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..warmup + iterations {
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
            let cmd = make(i);
            let start = Instant::now();
            let mut rsp = self.t.transact(&cmd).with_context(|| name.to_string())?;
            // TPM_RC_RETRY (libtpms when a prime search runs long): send the
            // command again, as tpm2-tss does; the time counts.
            for _ in 0..100 {
                if rc(&rsp) != RC_RETRY {
                    break;
                }
                rsp = self.t.transact(&cmd).with_context(|| name.to_string())?;
            }
            let elapsed = start.elapsed();
            let code = rc(&rsp);
            ensure!(code == 0, "{name} answered TPM_RC {code:#x}");
            if let Some(cleanup) = after(&rsp) {
                self.ok(&cleanup, "FlushContext")?;
            }
            if i >= warmup {
                samples.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
            }
        }
        if let Some(s) = stats(&mut samples) {
            println!(
                "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
                s.p50 / 1000.0,
                s.p90 / 1000.0,
                s.p99 / 1000.0,
                s.mean / 1000.0
            );
        }
        Ok(())
    }
}

/// Flushes the object a response's handle names.
fn flush_response_handle(rsp: &[u8]) -> Option<Vec<u8>> {
    Some(flush(crate::bench::be_u32(rsp, 10)))
}

/// The key benchmark (`--keys`): one markdown table, milliseconds.
pub fn run(config: &BenchConfig, t: &mut dyn Transport) -> Result<()> {
    let n = config.iterations;
    let mut s = Session { t };
    // The parent of the ordinary keys: an RSA-2048 storage key.
    let srk = rsa_template(
        ATTR_BASE | ATTR_RESTRICTED | ATTR_DECRYPT,
        true,
        &u16b(0x0010),
        &[],
    );
    let rsp = s.ok(
        &create_command(CC_CREATE_PRIMARY, RH_OWNER, &srk),
        "CreatePrimary(SRK)",
    )?;
    let (parent, _) = split(&rsp, true)?;

    println!(
        "{} {}:{}, {n} iterations (fewer where noted) after up to {} warm-up; milliseconds",
        config.tcti.kind, config.tcti.host, config.tcti.port, config.warmup
    );
    println!("| command | p50 | p90 | p99 | mean |");
    println!("|---|---:|---:|---:|---:|");

    let cold = n.min(20);
    s.measure(
        config,
        cold,
        &format!("CreatePrimary RSA-2048, new template each time ({cold}×)"),
        Duration::ZERO,
        &|i| {
            // A different unique field makes a different key: a cold
            // derivation with its prime search.
            let unique = (i as u64 ^ 0x5EED_0000_0000).to_be_bytes();
            let t = rsa_template(
                ATTR_BASE | ATTR_RESTRICTED | ATTR_DECRYPT,
                true,
                &u16b(0x0010),
                &unique,
            );
            create_command(CC_CREATE_PRIMARY, RH_OWNER, &t)
        },
        &flush_response_handle,
    )?;
    s.measure(
        config,
        n,
        "CreatePrimary RSA-2048, same template",
        Duration::ZERO,
        &|_| create_command(CC_CREATE_PRIMARY, RH_OWNER, &srk),
        &flush_response_handle,
    )?;
    let ecc_srk = ecc_template(ATTR_BASE | ATTR_RESTRICTED | ATTR_DECRYPT, true);
    s.measure(
        config,
        n,
        "CreatePrimary ECC P-256, same template",
        Duration::ZERO,
        &|_| create_command(CC_CREATE_PRIMARY, RH_OWNER, &ecc_srk),
        &flush_response_handle,
    )?;

    let rsa_sign = rsa_template(ATTR_BASE | ATTR_SIGN, false, &[0x00, 0x14, 0x00, 0x0B], &[]);
    let few = n.min(20);
    s.measure(
        config,
        few,
        &format!("Create RSA-2048 after 1 s idle ({few}×)"),
        Duration::from_secs(1),
        &|_| create_command(CC_CREATE, parent, &rsa_sign),
        &|_| None,
    )?;
    s.measure(
        config,
        few,
        &format!("Create RSA-2048 back to back ({few}×)"),
        Duration::ZERO,
        &|_| create_command(CC_CREATE, parent, &rsa_sign),
        &|_| None,
    )?;
    let ecc_sign = ecc_template(ATTR_BASE | ATTR_SIGN, false);
    s.measure(
        config,
        n,
        "Create ECC P-256",
        Duration::ZERO,
        &|_| create_command(CC_CREATE, parent, &ecc_sign),
        &|_| None,
    )?;

    // Keys to use: created once, loaded for each measurement.
    let mut made = Vec::new();
    for template in [&rsa_sign, &ecc_sign] {
        let rsp = s.ok(&create_command(CC_CREATE, parent, template), "Create")?;
        let (_, params) = split(&rsp, false)?;
        let parts = tpm2bs(params, 2)?;
        let (private, public) = match parts.as_slice() {
            [a, b] => (a.clone(), b.clone()),
            _ => bail!("Create: short response"),
        };
        let mut body = parent.to_be_bytes().to_vec();
        empty_password_session(&mut body);
        body.extend_from_slice(&private);
        body.extend_from_slice(&public);
        made.push(command(ST_SESSIONS, CC_LOAD, &body));
    }
    let load_rsa = made.first().cloned().context("no key")?;
    let load_ecc = made.get(1).cloned().context("no key")?;
    s.measure(
        config,
        n,
        "Load (RSA-2048 signing key)",
        Duration::ZERO,
        &|_| load_rsa.clone(),
        &flush_response_handle,
    )?;

    let sign = |key: u32| {
        let mut body = key.to_be_bytes().to_vec();
        empty_password_session(&mut body);
        body.extend_from_slice(&u16b(32));
        body.extend_from_slice(&[0x42; 32]);
        body.extend_from_slice(&u16b(0x0010)); // inScheme NULL: the key's
        body.extend_from_slice(&[0x80, 0x24]); // TPMT_TK_HASHCHECK
        body.extend_from_slice(&RH_NULL.to_be_bytes());
        body.extend_from_slice(&[0, 0]);
        command(ST_SESSIONS, CC_SIGN, &body)
    };
    let (rsa_key, _) = split(&s.ok(&load_rsa, "Load")?, true)?;
    s.measure(
        config,
        n,
        "Sign RSASSA-2048 (SHA-256)",
        Duration::ZERO,
        &|_| sign(rsa_key),
        &|_| None,
    )?;
    s.ok(&flush(rsa_key), "FlushContext")?;
    let (ecc_key, _) = split(&s.ok(&load_ecc, "Load")?, true)?;
    s.measure(
        config,
        n,
        "Sign ECDSA-P256 (SHA-256)",
        Duration::ZERO,
        &|_| sign(ecc_key),
        &|_| None,
    )?;
    s.ok(&flush(ecc_key), "FlushContext")?;

    // RSA_Decrypt (OAEP-SHA256) of a ciphertext the TPM made.
    let rsa_dec = rsa_template(
        ATTR_BASE | ATTR_DECRYPT,
        false,
        &[0x00, 0x17, 0x00, 0x0B],
        &[],
    );
    let rsp = s.ok(&create_command(CC_CREATE, parent, &rsa_dec), "Create")?;
    let (_, params) = split(&rsp, false)?;
    let parts = tpm2bs(params, 2)?;
    let mut body = parent.to_be_bytes().to_vec();
    empty_password_session(&mut body);
    for p in &parts {
        body.extend_from_slice(p);
    }
    let (dec_key, _) = split(&s.ok(&command(ST_SESSIONS, CC_LOAD, &body), "Load")?, true)?;
    let mut enc = dec_key.to_be_bytes().to_vec();
    enc.extend_from_slice(&u16b(32));
    enc.extend_from_slice(&[0x24; 32]);
    enc.extend_from_slice(&u16b(0x0010)); // the key's scheme
    enc.extend_from_slice(&[0, 0]); // label
    let rsp = s.ok(
        &command(ST_NO_SESSIONS, CC_RSA_ENCRYPT, &enc),
        "RSA_Encrypt",
    )?;
    let ciphertext = tpm2bs(rsp.get(10..).context("short")?, 1)?
        .pop()
        .context("no ciphertext")?;
    s.measure(
        config,
        n,
        "RSA_Decrypt OAEP-SHA256 (2048)",
        Duration::ZERO,
        &|_| {
            let mut body = dec_key.to_be_bytes().to_vec();
            empty_password_session(&mut body);
            body.extend_from_slice(&ciphertext);
            body.extend_from_slice(&u16b(0x0010));
            body.extend_from_slice(&[0, 0]);
            command(ST_SESSIONS, CC_RSA_DECRYPT, &body)
        },
        &|_| None,
    )?;
    s.ok(&flush(dec_key), "FlushContext")?;
    s.ok(&flush(parent), "FlushContext")?;
    Ok(())
}
