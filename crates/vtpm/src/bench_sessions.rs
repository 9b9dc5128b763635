//! `vtpm bench --sessions`: what authorization sessions cost, measured from
//! the client's side with hand-built commands. The client does a TSS's
//! work: it computes every command HMAC (cpHash, nonces, attributes),
//! verifies every response HMAC and decrypts encrypted responses
//! (AES-128-CFB, KDFa "CFB"), and the times include that work. A wrong
//! response HMAC stops the benchmark, so a run is also a check of the
//! server's session arithmetic (Part 1 §19.6, §21).
//!
//! Rows: TPM2_GetRandom(32) without a session and with an unsalted,
//! unbound HMAC session that encrypts the response; TPM2_NV_Read(32 B)
//! with a password, with an HMAC session and with an HMAC session that
//! encrypts the response; TPM2_StartAuthSession + TPM2_FlushContext.

use crate::bench::{BenchConfig, Transport, be_u32, command, rc, stats};
use anyhow::{Context, Result, bail, ensure};
use std::time::Instant;
use vtpm_engine::crypto::hash::HashAlg;
use vtpm_engine::crypto::kdf::kdfa;
use vtpm_engine::crypto::sym::aes_cfb;

const ST_NO_SESSIONS: u16 = 0x8001;
const ST_SESSIONS: u16 = 0x8002;
const RH_OWNER: u32 = 0x4000_0001;
const RH_NULL: u32 = 0x4000_0007;
const RS_PW: u32 = 0x4000_0009;

const CC_NV_DEFINE_SPACE: u32 = 0x12A;
const CC_NV_WRITE: u32 = 0x137;
const CC_NV_READ: u32 = 0x14E;
const CC_FLUSH_CONTEXT: u32 = 0x165;
const CC_NV_READ_PUBLIC: u32 = 0x169;
const CC_START_AUTH_SESSION: u32 = 0x176;
const CC_GET_RANDOM: u32 = 0x17B;

/// TPM_RC_NV_DEFINED.
const RC_NV_DEFINED: u32 = 0x14C;
/// The index read here (empty authValue; authRead | authWrite).
const NV_INDEX: u32 = 0x0150_0F01;
const NV_SIZE: u16 = 32;
const NV_AUTHREAD_AUTHWRITE: u32 = (1 << 18) | (1 << 2);

/// Session attributes.
const CONTINUE_SESSION: u8 = 0x01;
const ENCRYPT: u8 = 0x40;

const AES128_CFB: [u8; 6] = [0x00, 0x06, 0x00, 0x80, 0x00, 0x43];
const SYM_NULL: [u8; 2] = [0x00, 0x10];

fn sized(b: &[u8]) -> Vec<u8> {
    let mut v = u16::try_from(b.len()).unwrap_or(0).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

/// The big-endian u16 at `at`.
fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(usize::from(u16::from_be_bytes(s)))
}

/// Reads a TPM2B at `*at`, advancing.
fn take_sized<'a>(b: &'a [u8], at: &mut usize) -> Result<&'a [u8]> {
    let n = u16_at(b, *at).context("truncated response")?;
    let v = b.get(*at + 2..*at + 2 + n).context("truncated response")?;
    *at += 2 + n;
    Ok(v)
}

/// A command with an empty-password session for each handle.
fn with_password(cc: u32, handles: &[u32], params: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for h in handles {
        body.extend_from_slice(&h.to_be_bytes());
    }
    let mut area = RS_PW.to_be_bytes().to_vec();
    area.extend_from_slice(&[0, 0, CONTINUE_SESSION, 0, 0]);
    body.extend_from_slice(&u32::try_from(area.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(&area);
    body.extend_from_slice(params);
    command(ST_SESSIONS, cc, &body)
}

/// An unsalted, unbound HMAC session (SHA-256) as the client keeps it.
struct Session {
    handle: u32,
    nonce_tpm: Vec<u8>,
    counter: u64,
}

fn start_session_command(nonce_caller: &[u8], symmetric: &[u8]) -> Vec<u8> {
    let mut body = RH_NULL.to_be_bytes().to_vec(); // tpmKey
    body.extend_from_slice(&RH_NULL.to_be_bytes()); // bind
    body.extend_from_slice(&sized(nonce_caller));
    body.extend_from_slice(&sized(&[])); // encryptedSalt
    body.push(0x00); // TPM_SE_HMAC
    body.extend_from_slice(symmetric);
    body.extend_from_slice(&0x000Bu16.to_be_bytes()); // SHA-256
    command(ST_NO_SESSIONS, CC_START_AUTH_SESSION, &body)
}

fn flush(h: u32) -> Vec<u8> {
    command(ST_NO_SESSIONS, CC_FLUSH_CONTEXT, &h.to_be_bytes())
}

impl Session {
    fn start(t: &mut dyn Transport, symmetric: &[u8]) -> Result<Session> {
        let rsp = t.transact(&start_session_command(&[0x5A; 16], symmetric))?;
        ensure!(rc(&rsp) == 0, "StartAuthSession answered {:#x}", rc(&rsp));
        let handle = be_u32(&rsp, 10);
        let mut at = 14;
        let nonce_tpm = take_sized(&rsp, &mut at)?.to_vec();
        // sessionKey is empty (no bind, no salt): the HMAC and the
        // encryption key are the authValue, empty here.
        Ok(Session {
            handle,
            nonce_tpm,
            counter: 0,
        })
    }

    /// A fresh nonceCaller (16 bytes).
    fn next_nonce(&mut self) -> Vec<u8> {
        self.counter += 1;
        let mut n = self.counter.to_be_bytes().to_vec();
        n.extend_from_slice(&self.handle.to_be_bytes());
        n.extend_from_slice(&[0xA5; 4]);
        n
    }

    /// The command with this session, its HMAC over cpHash (the handles'
    /// Names given in `names`); the nonceCaller used.
    fn command(
        &mut self,
        cc: u32,
        handles: &[u32],
        names: &[&[u8]],
        params: &[u8],
        attrs: u8,
    ) -> (Vec<u8>, Vec<u8>) {
        let nonce_caller = self.next_nonce();
        let mut parts: Vec<&[u8]> = Vec::with_capacity(2 + names.len());
        let cc_b = cc.to_be_bytes();
        parts.push(&cc_b);
        parts.extend_from_slice(names);
        parts.push(params);
        let cp_hash = HashAlg::Sha256.digest(&parts);
        let hmac = HashAlg::Sha256.hmac(&[], &[&cp_hash, &nonce_caller, &self.nonce_tpm, &[attrs]]);
        let mut body = Vec::new();
        for h in handles {
            body.extend_from_slice(&h.to_be_bytes());
        }
        let mut area = self.handle.to_be_bytes().to_vec();
        area.extend_from_slice(&sized(&nonce_caller));
        area.push(attrs);
        area.extend_from_slice(&sized(&hmac));
        body.extend_from_slice(&u32::try_from(area.len()).unwrap_or(0).to_be_bytes());
        body.extend_from_slice(&area);
        body.extend_from_slice(params);
        (command(ST_SESSIONS, cc, &body), nonce_caller)
    }

    /// Verifies the response HMAC, takes the new nonceTPM and, with
    /// `encrypt`, decrypts the first response parameter in place; the
    /// response parameters.
    fn response(
        &mut self,
        cc: u32,
        rsp: &[u8],
        nonce_caller: &[u8],
        encrypt: bool,
    ) -> Result<Vec<u8>> {
        ensure!(rc(rsp) == 0, "command {cc:#x} answered {:#x}", rc(rsp));
        let size = usize::try_from(be_u32(rsp, 10)).unwrap_or(usize::MAX);
        let mut params = rsp.get(14..14 + size).context("parameterSize")?.to_vec();
        let mut at = 14 + size;
        let nonce_tpm = take_sized(rsp, &mut at)?.to_vec();
        let attrs = *rsp.get(at).context("truncated response")?;
        at += 1;
        let hmac = take_sized(rsp, &mut at)?;
        let rp_hash = HashAlg::Sha256.digest(&[&0u32.to_be_bytes(), &cc.to_be_bytes(), &params]);
        let expected = HashAlg::Sha256.hmac(&[], &[&rp_hash, &nonce_tpm, nonce_caller, &[attrs]]);
        if hmac != expected.as_slice() {
            bail!("command {cc:#x}: the response HMAC does not verify");
        }
        if encrypt {
            let stream = kdfa(HashAlg::Sha256, &[], b"CFB", &nonce_tpm, nonce_caller, 256);
            let (key, iv) = stream.split_at(16);
            let n = u16_at(&params, 0).context("no first parameter")?;
            let data = params.get_mut(2..2 + n).context("first parameter")?;
            ensure!(aes_cfb(key, iv, data, false), "AES-CFB");
        }
        self.nonce_tpm = nonce_tpm;
        Ok(params)
    }
}

/// Measures `op` (after `warmup` unmeasured runs) and prints a row.
fn measure(config: &BenchConfig, name: &str, mut op: impl FnMut() -> Result<()>) -> Result<()> {
    let mut samples = Vec::with_capacity(config.iterations);
    for i in 0..config.warmup + config.iterations {
        let start = Instant::now();
        op().with_context(|| name.to_string())?;
        let elapsed = start.elapsed();
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
    Ok(())
}

fn nv_read_params() -> Vec<u8> {
    let mut p = NV_SIZE.to_be_bytes().to_vec();
    p.extend_from_slice(&0u16.to_be_bytes());
    p
}

/// TPM_RC_RETRY.
const RC_RETRY: u32 = 0x922;

/// Sends `cmd` again while the TPM answers TPM_RC_RETRY (libtpms does,
/// e.g. for a first NV write while it is busy).
fn transact_retry(t: &mut dyn Transport, cmd: &[u8]) -> Result<Vec<u8>> {
    for _ in 0..100 {
        let rsp = t.transact(cmd)?;
        if rc(&rsp) != RC_RETRY {
            return Ok(rsp);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    bail!("the TPM kept answering TPM_RC_RETRY")
}

/// Defines and writes the index read here; its Name.
fn prepare_nv(t: &mut dyn Transport) -> Result<Vec<u8>> {
    let mut public = NV_INDEX.to_be_bytes().to_vec();
    public.extend_from_slice(&0x000Bu16.to_be_bytes());
    public.extend_from_slice(&NV_AUTHREAD_AUTHWRITE.to_be_bytes());
    public.extend_from_slice(&sized(&[]));
    public.extend_from_slice(&NV_SIZE.to_be_bytes());
    let mut params = sized(&[]);
    params.extend_from_slice(&sized(&public));
    let rsp = transact_retry(t, &with_password(CC_NV_DEFINE_SPACE, &[RH_OWNER], &params))?;
    match rc(&rsp) {
        0 | RC_NV_DEFINED => {}
        other => bail!("NV_DefineSpace({NV_INDEX:#x}) answered {other:#x}"),
    }
    let mut params = sized(&[0x3C; NV_SIZE as usize]);
    params.extend_from_slice(&0u16.to_be_bytes());
    let rsp = transact_retry(
        t,
        &with_password(CC_NV_WRITE, &[NV_INDEX, NV_INDEX], &params),
    )?;
    ensure!(rc(&rsp) == 0, "NV_Write answered {:#x}", rc(&rsp));
    let rsp = t.transact(&command(
        ST_NO_SESSIONS,
        CC_NV_READ_PUBLIC,
        &NV_INDEX.to_be_bytes(),
    ))?;
    ensure!(rc(&rsp) == 0, "NV_ReadPublic answered {:#x}", rc(&rsp));
    let mut at = 10;
    take_sized(&rsp, &mut at)?;
    Ok(take_sized(&rsp, &mut at)?.to_vec())
}

/// Runs the session benchmark on a started TPM.
pub fn run(config: &BenchConfig, t: &mut dyn Transport) -> Result<()> {
    let name = prepare_nv(t).context("preparing the NV index")?;
    let expected_data = [0x3Cu8; NV_SIZE as usize];

    println!(
        "{} {}:{}, {} iterations after {} warm-up; microseconds, client-side HMACs and decryption included",
        config.tcti.kind, config.tcti.host, config.tcti.port, config.iterations, config.warmup
    );
    println!("| command | p50 | p90 | p99 | mean |");
    println!("|---|---:|---:|---:|---:|");

    let get_random = command(ST_NO_SESSIONS, CC_GET_RANDOM, &32u16.to_be_bytes());
    measure(config, "GetRandom(32), no session", || {
        let rsp = t.transact(&get_random)?;
        ensure!(rc(&rsp) == 0, "answered {:#x}", rc(&rsp));
        Ok(())
    })?;

    let mut s = Session::start(t, &AES128_CFB)?;
    measure(
        config,
        "GetRandom(32), HMAC session, response encrypted (AES-128-CFB)",
        || {
            let attrs = CONTINUE_SESSION | ENCRYPT;
            let params = 32u16.to_be_bytes();
            let (cmd, nc) = s.command(CC_GET_RANDOM, &[], &[], &params, attrs);
            let rsp = t.transact(&cmd)?;
            let out = s.response(CC_GET_RANDOM, &rsp, &nc, true)?;
            ensure!(out.len() == 34, "GetRandom returned {} bytes", out.len());
            Ok(())
        },
    )?;

    let nv_read = with_password(CC_NV_READ, &[NV_INDEX, NV_INDEX], &nv_read_params());
    measure(config, "NV_Read(32 B), password session", || {
        let rsp = t.transact(&nv_read)?;
        ensure!(rc(&rsp) == 0, "answered {:#x}", rc(&rsp));
        Ok(())
    })?;
    for (label, encrypt) in [
        ("NV_Read(32 B), HMAC session", false),
        (
            "NV_Read(32 B), HMAC session, response encrypted (AES-128-CFB)",
            true,
        ),
    ] {
        measure(config, label, || {
            let attrs = CONTINUE_SESSION | if encrypt { ENCRYPT } else { 0 };
            let (cmd, nc) = s.command(
                CC_NV_READ,
                &[NV_INDEX, NV_INDEX],
                &[&name, &name],
                &nv_read_params(),
                attrs,
            );
            let rsp = t.transact(&cmd)?;
            let out = s.response(CC_NV_READ, &rsp, &nc, encrypt)?;
            ensure!(
                out.get(2..) == Some(&expected_data[..]),
                "NV_Read returned other data"
            );
            Ok(())
        })?;
    }
    let rsp = t.transact(&flush(s.handle))?;
    ensure!(rc(&rsp) == 0, "FlushContext answered {:#x}", rc(&rsp));

    measure(config, "StartAuthSession(HMAC) + FlushContext", || {
        let s = Session::start(t, &SYM_NULL)?;
        let rsp = t.transact(&flush(s.handle))?;
        ensure!(rc(&rsp) == 0, "FlushContext answered {:#x}", rc(&rsp));
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::bench::TestEngine;

    #[test]
    fn runs_against_the_engine() {
        let config = TestEngine::config(true, false);
        let mut engine = TestEngine::started();
        run(&config, &mut engine).unwrap();
        // A second run finds the index defined.
        run(&config, &mut engine).unwrap();
    }
}
