//! `vtpm bench --nv-attest`: latency of NV storage and attestation,
//! measured from the client's side with hand-built commands: NV_Write and
//! NV_Read of 64 bytes, NV_Increment of a counter index (vtpm commits its NV
//! image before it answers, so this is a durable write), and Quote over
//! sha256:0-7 with an RSA-2048 restricted signing key (RSASSA-SHA256) and
//! an ECC P-256 one (ECDSA-SHA256), both created under an RSA-2048 SRK.

use crate::bench::{
    BENCH_NV_INDEX, BENCH_NV_SIZE, BenchConfig, NV_OWNER_READ_WRITE, RC_NV_DEFINED, Transport,
    command, empty_password_session, nv_define_space, nv_write_64, rc, stats,
};
use crate::bench_keys::{
    ATTR_BASE, ATTR_DECRYPT, ATTR_RESTRICTED, ATTR_SIGN, create_command, ecc_template, flush,
    rsa_template, split, tpm2bs, u16b,
};
use anyhow::{Context, Result, bail, ensure};
use std::time::Instant;

const ST_SESSIONS: u16 = 0x8002;
const RH_OWNER: u32 = 0x4000_0001;

const CC_CREATE_PRIMARY: u32 = 0x131;
const CC_CREATE: u32 = 0x153;
const CC_LOAD: u32 = 0x157;
const CC_NV_READ: u32 = 0x14E;
const CC_NV_INCREMENT: u32 = 0x134;
const CC_QUOTE: u32 = 0x158;
/// TPM_RC_RETRY.
const RC_RETRY: u32 = 0x922;

/// The counter index (next to the NV_Write benchmark's index); one left by
/// an earlier run is fine.
const COUNTER_INDEX: u32 = 0x0150_0F01;
/// TPMA_NV: ownerWrite | ownerRead | TPM_NT_COUNTER.
const NV_OWNER_COUNTER: u32 = 0x0002_0012;

/// NV_Read(owner, index, size, offset 0) with the owner's empty password.
pub(crate) fn nv_read(index: u32, size: u16) -> Vec<u8> {
    let mut body = RH_OWNER.to_be_bytes().to_vec();
    body.extend_from_slice(&index.to_be_bytes());
    empty_password_session(&mut body);
    body.extend_from_slice(&size.to_be_bytes());
    body.extend_from_slice(&[0, 0]); // offset
    command(ST_SESSIONS, CC_NV_READ, &body)
}

/// NV_Increment(owner, index) with the owner's empty password.
pub(crate) fn nv_increment(index: u32) -> Vec<u8> {
    let mut body = RH_OWNER.to_be_bytes().to_vec();
    body.extend_from_slice(&index.to_be_bytes());
    empty_password_session(&mut body);
    command(ST_SESSIONS, CC_NV_INCREMENT, &body)
}

/// Quote(key) over sha256:0-7, the key's own scheme (inScheme NULL), a
/// 16-byte qualifyingData that changes with `i`.
pub(crate) fn quote(key: u32, i: usize) -> Vec<u8> {
    let mut body = key.to_be_bytes().to_vec();
    empty_password_session(&mut body);
    body.extend_from_slice(&u16b(16));
    body.extend_from_slice(&(i as u64).to_be_bytes());
    body.extend_from_slice(&[0x51; 8]);
    body.extend_from_slice(&u16b(0x0010)); // inScheme TPM_ALG_NULL
    body.extend_from_slice(&1u32.to_be_bytes()); // TPML_PCR_SELECTION.count
    body.extend_from_slice(&u16b(0x000B)); // SHA-256
    body.extend_from_slice(&[3, 0xFF, 0x00, 0x00]); // PCRs 0-7
    command(ST_SESSIONS, CC_QUOTE, &body)
}

/// Sends `make(i)` warm-up + iterations times and prints one row
/// (microseconds).
fn measure(
    config: &BenchConfig,
    t: &mut dyn Transport,
    name: &str,
    make: &dyn Fn(usize) -> Vec<u8>,
) -> Result<()> {
    let n = config.iterations;
    let mut samples = Vec::with_capacity(n);
    for i in 0..config.warmup + n {
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
    Ok(())
}

/// Sends an unmeasured command; TPM_RC_RETRY (libtpms when a prime search
/// runs long) sends it again, as tpm2-tss does.
fn ok(t: &mut dyn Transport, cmd: &[u8], what: &str) -> Result<Vec<u8>> {
    let mut rsp = t.transact(cmd).with_context(|| what.to_string())?;
    for _ in 0..100 {
        if rc(&rsp) != RC_RETRY {
            break;
        }
        rsp = t.transact(cmd).with_context(|| what.to_string())?;
    }
    let code = rc(&rsp);
    ensure!(code == 0, "{what} answered TPM_RC {code:#x}");
    Ok(rsp)
}

/// Defines an index unless an earlier run left it.
fn define(t: &mut dyn Transport, index: u32, attributes: u32, size: u16) -> Result<()> {
    let rsp = t
        .transact(&nv_define_space(index, attributes, size))
        .context("TPM2_NV_DefineSpace")?;
    match rc(&rsp) {
        0 | RC_NV_DEFINED => Ok(()),
        other => bail!("TPM2_NV_DefineSpace({index:#x}) answered TPM_RC {other:#x}"),
    }
}

/// Creates a key under `parent` and loads it; returns its handle.
fn create_and_load(t: &mut dyn Transport, parent: u32, template: &[u8]) -> Result<u32> {
    let rsp = ok(t, &create_command(CC_CREATE, parent, template), "Create")?;
    let (_, params) = split(&rsp, false)?;
    let parts = tpm2bs(params, 2)?;
    let mut body = parent.to_be_bytes().to_vec();
    empty_password_session(&mut body);
    for p in &parts {
        body.extend_from_slice(p);
    }
    let rsp = ok(t, &command(ST_SESSIONS, CC_LOAD, &body), "Load")?;
    Ok(split(&rsp, true)?.0)
}

/// The NV and attestation benchmark (`--nv-attest`): one markdown table,
/// microseconds.
pub fn run(config: &BenchConfig, t: &mut dyn Transport) -> Result<()> {
    define(t, BENCH_NV_INDEX, NV_OWNER_READ_WRITE, BENCH_NV_SIZE)?;
    define(t, COUNTER_INDEX, NV_OWNER_COUNTER, 8)?;
    // NV_Read needs the index written.
    ok(t, &nv_write_64(0), "NV_Write")?;

    let srk = rsa_template(
        ATTR_BASE | ATTR_RESTRICTED | ATTR_DECRYPT,
        true,
        &u16b(0x0010),
        &[],
    );
    let rsp = ok(
        t,
        &create_command(CC_CREATE_PRIMARY, RH_OWNER, &srk),
        "CreatePrimary(SRK)",
    )?;
    let (parent, _) = split(&rsp, true)?;
    // Restricted signing keys: RSASSA-SHA256 and ECDSA-SHA256 schemes.
    let rsa_aik = rsa_template(
        ATTR_BASE | ATTR_RESTRICTED | ATTR_SIGN,
        false,
        &[0x00, 0x14, 0x00, 0x0B],
        &[],
    );
    let ecc_aik = ecc_template(ATTR_BASE | ATTR_RESTRICTED | ATTR_SIGN, false);
    let rsa_key = create_and_load(t, parent, &rsa_aik)?;
    let ecc_key = create_and_load(t, parent, &ecc_aik)?;

    println!(
        "{} {}:{}, {} iterations after {} warm-up, one connection; microseconds",
        config.tcti.kind, config.tcti.host, config.tcti.port, config.iterations, config.warmup
    );
    println!("| command | p50 | p90 | p99 | mean |");
    println!("|---|---:|---:|---:|---:|");
    measure(config, t, "NV_Write(64 B, owner pw session)", &nv_write_64)?;
    measure(config, t, "NV_Read(64 B, owner pw session)", &|_| {
        nv_read(BENCH_NV_INDEX, BENCH_NV_SIZE)
    })?;
    measure(
        config,
        t,
        "NV_Increment(counter, owner pw session)",
        &|_| nv_increment(COUNTER_INDEX),
    )?;
    measure(
        config,
        t,
        "Quote(sha256:0-7, RSA-2048 RSASSA-SHA256)",
        &|i| quote(rsa_key, i),
    )?;
    measure(
        config,
        t,
        "Quote(sha256:0-7, ECC P-256 ECDSA-SHA256)",
        &|i| quote(ecc_key, i),
    )?;

    for h in [rsa_key, ecc_key, parent] {
        ok(t, &flush(h), "FlushContext")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::bench::{TestEngine, be_u32};

    #[test]
    fn runs_against_the_engine() {
        let config = TestEngine::config(false, true);
        let mut engine = TestEngine::started();
        run(&config, &mut engine).unwrap();
        // A second run finds the indices defined.
        run(&config, &mut engine).unwrap();
    }

    #[test]
    fn commands_are_well_formed() {
        // header 10, 2 handles 8, auth area 4 + 9, size 2, offset 2.
        let r = nv_read(BENCH_NV_INDEX, 64);
        assert_eq!(r.len(), 35);
        assert_eq!(be_u32(&r, 2) as usize, r.len());
        assert_eq!(r.get(31..35), Some(&[0, 64, 0, 0][..]));
        // header 10, 2 handles 8, auth area 4 + 9.
        let c = nv_increment(COUNTER_INDEX);
        assert_eq!(c.len(), 31);
        assert_eq!(be_u32(&c, 2) as usize, c.len());
        // header 10, handle 4, auth area 4 + 9, data 2 + 16, scheme 2,
        // selection 4 + 2 + 1 + 3.
        let q = quote(0x8000_0001, 5);
        assert_eq!(q.len(), 57);
        assert_eq!(be_u32(&q, 2) as usize, q.len());
        assert_eq!(q.get(53..57), Some(&[3, 0xFF, 0, 0][..]));
        assert_ne!(q, quote(0x8000_0001, 6));
    }
}
