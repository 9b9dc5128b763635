//! Attestation (Part 3 chapter 18: TPM2_Quote, TPM2_Certify,
//! TPM2_CertifyCreation, TPM2_GetTime) and the clock commands (chapter 29:
//! TPM2_ClockSet, TPM2_ClockRateAdjust), driven by tpm2-tools. The judges
//! are independent of vtpm: `tpm2_checkquote` verifies quotes in software,
//! OpenSSL verifies every signature over the TPMS_ATTEST bytes with the
//! key's PEM, and the TPMS_ATTEST fields are parsed here and compared with
//! what tpm2-tools reads back (PCR values, Names) and with the Part 1
//! formulas (Qualified Names).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Command;
use vtpm_tests::ok_flush as ok;
use vtpm_tests::path_str as p;
use vtpm_tests::{
    Cursor, Hash, Protocol, Server, TempDir, create_restricted_signer, flush, hex, load,
    openssl_verify, parse_attest, readclock, started, unhex, verified_attest,
};

use vtpm_tests::both;

both!(
    quote_rsa_and_ecc,
    certify_and_certify_creation,
    get_time_and_privacy,
    clock_set,
);

const TPM_RH_OWNER: u32 = 0x4000_0001;
const TPM_RH_ENDORSEMENT: u32 = 0x4000_000B;

/// `tpm2_readpublic -n`: the Name in a file.
fn name_of(server: &Server, dir: &TempDir, ctx: &Path, tag: &str) -> Vec<u8> {
    let name = dir.join(&format!("{tag}.name"));
    ok(server, "tpm2_readpublic", ["-c", p(ctx), "-n", p(&name)]);
    dir.read(&format!("{tag}.name"))
}

/// Qualified Name (Part 1 §16): nameAlg || H(QN(parent) || Name), the QN
/// of a hierarchy being its handle. SHA-256 objects only.
fn qualified_name(parent_qn: &[u8], name: &[u8]) -> Vec<u8> {
    assert_eq!(&name[..2], &[0, 0x0b], "a SHA-256 Name");
    let mut qn = vec![0, 0x0b];
    qn.extend(Hash::Sha256.digest(&[parent_qn, name]));
    qn
}

/// The owner-hierarchy primary used as parent, with its Qualified Name.
fn primary(server: &Server, dir: &TempDir) -> (std::path::PathBuf, Vec<u8>) {
    let ctx = dir.join("primary.ctx");
    ok(server, "tpm2_createprimary", ["-C", "o", "-c", p(&ctx)]);
    let name = name_of(server, dir, &ctx, "primary");
    let qn = qualified_name(&TPM_RH_OWNER.to_be_bytes(), &name);
    (ctx, qn)
}

/// The owner primary (context, Qualified Name) and an RSASSA AK under it
/// (context, public PEM, Qualified Name), tagged "ak".
#[allow(clippy::type_complexity)]
fn rsa_ak(server: &Server, dir: &TempDir) -> ((PathBuf, Vec<u8>), (PathBuf, PathBuf, Vec<u8>)) {
    let (parent, parent_qn) = primary(server, dir);
    let ak = create_ak(
        server,
        dir,
        &parent,
        &parent_qn,
        "rsa2048:rsassa-sha256:null",
        "ak",
    );
    ((parent, parent_qn), ak)
}

/// A restricted signing key (an AK) under `parent`; returns its context,
/// public PEM and Qualified Name.
fn create_ak(
    server: &Server,
    dir: &TempDir,
    parent: &Path,
    parent_qn: &[u8],
    alg: &str,
    tag: &str,
) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let (pubf, privf) = (
        dir.join(&format!("{tag}.pub")),
        dir.join(&format!("{tag}.priv")),
    );
    let (ctx, pem) = (
        dir.join(&format!("{tag}.ctx")),
        dir.join(&format!("{tag}.pem")),
    );
    create_restricted_signer(server, parent, alg, [&pubf, &privf, &ctx, &pem]);
    let name = name_of(server, dir, &ctx, tag);
    let qn = qualified_name(parent_qn, &name);
    (ctx, pem, qn)
}

fn quote_rsa_and_ecc(protocol: Protocol) {
    let server = started(protocol);
    let dir = TempDir::new("attest-quote");
    // PCR 16 gets a value so the quote covers something that is not zero.
    ok(
        &server,
        "tpm2_pcrextend",
        [&format!("16:sha256={}", "ab".repeat(32))],
    );
    let (parent, parent_qn) = primary(&server, &dir);
    for (alg, tag) in [
        ("rsa2048:rsassa-sha256:null", "ak_rsa"),
        ("ecc256:ecdsa-sha256:null", "ak_ecc"),
    ] {
        let (ak, pem, qn) = create_ak(&server, &dir, &parent, &parent_qn, alg, tag);
        let nonce = "0123456789abcdef0011223344556677";
        let (msg, sig, pcrs, plain) = (
            dir.join(&format!("{tag}.quote.msg")),
            dir.join(&format!("{tag}.quote.sig")),
            dir.join(&format!("{tag}.pcrs.out")),
            dir.join(&format!("{tag}.quote.plain")),
        );
        let quote = |sig: &Path, format: &[&str]| {
            let mut args = vec!["-c", p(&ak), "-l", "sha256:0,1,16", "-q", nonce];
            args.extend(["-m", p(&msg), "-s", p(sig)]);
            args.extend(format);
            args.extend(["-g", "sha256"]);
            ok(&server, "tpm2_quote", args);
        };
        // tpm2-tools' software verifier: signature, nonce and PCR digest.
        let checkquote = |nonce: &str| {
            Command::new("tpm2_checkquote")
                .args(["-u", p(&pem), "-m", p(&msg), "-s", p(&sig)])
                .args(["-f", p(&pcrs), "-g", "sha256", "-q", nonce])
                .output()
                .unwrap()
        };
        quote(&sig, &["-o", p(&pcrs)]);
        let out = checkquote(nonce);
        assert!(
            out.status.success(),
            "tpm2_checkquote ({tag}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A second quote, signature in plain form, for OpenSSL.
        quote(&plain, &["-f", "plain"]);
        openssl_verify(&pem, &plain, &msg);
        // A wrong nonce does not pass tpm2_checkquote.
        let bad = checkquote("00");
        assert!(!bad.status.success(), "checkquote with a wrong nonce");

        // The structure itself.
        let a = parse_attest(&std::fs::read(&msg).unwrap());
        assert_eq!(a.ty, 0x8018, "TPM_ST_ATTEST_QUOTE");
        assert_eq!(a.extra_data, unhex(nonce));
        assert_eq!(a.qualified_signer, qn, "qualifiedSigner = QN(AK)");
        assert_eq!(a.safe, 1);
        let mut c = Cursor(&a.attested);
        // TPML_PCR_SELECTION: one sha256 selection of PCRs 0, 1, 16.
        assert_eq!(c.u32(), 1);
        assert_eq!(c.u16(), 0x000b);
        assert_eq!(c.tpm2b_u8(), vec![0x03, 0x00, 0x01]);
        let pcr_digest = c.tpm2b();
        assert!(c.0.is_empty(), "trailing bytes in TPMS_QUOTE_INFO");
        let values = dir.join("pcrvalues.bin");
        ok(&server, "tpm2_pcrread", ["sha256:0,1,16", "-o", p(&values)]);
        let values = std::fs::read(&values).unwrap();
        assert_eq!(values.len(), 3 * 32);
        assert_ne!(values[64..], [0u8; 32], "PCR 16 was extended");
        assert_eq!(
            hex(&pcr_digest),
            hex(&Hash::Sha256.digest(&[&values])),
            "pcrDigest = SHA-256(PCR0 || PCR1 || PCR16)"
        );
        flush(&server);
        // The parent context is reloaded from its file by each tool.
    }
}

fn certify_and_certify_creation(protocol: Protocol) {
    let server = started(protocol);
    let dir = TempDir::new("attest-certify");
    let ((parent, parent_qn), (ak, pem, ak_qn)) = rsa_ak(&server, &dir);
    // The object to certify, with its creation data and ticket.
    let (pubf, privf, cd, ch, tk) = (
        dir.join("key.pub"),
        dir.join("key.priv"),
        dir.join("key.cdata"),
        dir.join("key.chash"),
        dir.join("key.ticket"),
    );
    ok(
        &server,
        "tpm2_create",
        [
            "-C",
            p(&parent),
            "-G",
            "ecc256",
            "-u",
            p(&pubf),
            "-r",
            p(&privf),
            "--creation-data",
            p(&cd),
            "--creation-hash",
            p(&ch),
            "--creation-ticket",
            p(&tk),
        ],
    );
    let key = dir.join("key.ctx");
    load(&server, &parent, &pubf, &privf, &key);
    flush(&server);
    let key_name = name_of(&server, &dir, &key, "key");
    let key_qn = qualified_name(&parent_qn, &key_name);

    // TPM2_Certify.
    let (att, sig) = (dir.join("certify.attest"), dir.join("certify.sig"));
    ok(
        &server,
        "tpm2_certify",
        [
            "-c",
            p(&key),
            "-C",
            p(&ak),
            "-g",
            "sha256",
            "-o",
            p(&att),
            "-s",
            p(&sig),
            "-f",
            "plain",
        ],
    );
    let a = verified_attest(&pem, &sig, &att);
    assert_eq!(a.ty, 0x8017, "TPM_ST_ATTEST_CERTIFY");
    assert_eq!(a.qualified_signer, ak_qn);
    // tpm2_certify always sends the qualifyingData 00ff55aa.
    assert_eq!(hex(&a.extra_data), "00ff55aa", "extraData");
    let mut c = Cursor(&a.attested);
    assert_eq!(c.tpm2b(), key_name, "certified Name = tpm2_readpublic's");
    assert_eq!(c.tpm2b(), key_qn, "certified Qualified Name");
    assert!(c.0.is_empty());

    // TPM2_CertifyCreation.
    let creation_hash = std::fs::read(&ch).unwrap();
    // The creation hash is SHA-256 of the TPMS_CREATION_DATA (after its
    // TPM2B size) tpm2_create saved.
    let cdata = std::fs::read(&cd).unwrap();
    assert_eq!(
        hex(&creation_hash[2..]),
        hex(&Hash::Sha256.digest(&[&cdata[2..]])),
        "creationHash file"
    );
    let (att, sig) = (dir.join("creation.attest"), dir.join("creation.sig"));
    // tpm2_certifycreation of `key` with creation hash `chash` and the
    // creation ticket, signed by the AK (SHA-256) into `sig` / `att`.
    let certify_creation = |chash: &Path, more: &[&str], (sig, att): (&Path, &Path)| {
        let mut args = vec!["-C", p(&ak), "-c", p(&key), "-d", p(chash), "-t", p(&tk)];
        args.extend(["-g", "sha256"]);
        args.extend(more);
        args.extend(["-o", p(sig), "--attestation", p(att)]);
        server.run("tpm2_certifycreation", args)
    };
    let r = certify_creation(&ch, &["-q", "cafe", "-f", "plain"], (&sig, &att));
    flush(&server);
    assert!(r.success(), "expected success: {r}");
    let a = verified_attest(&pem, &sig, &att);
    assert_eq!(a.ty, 0x801A, "TPM_ST_ATTEST_CREATION");
    assert_eq!(a.qualified_signer, ak_qn);
    assert_eq!(a.extra_data, vec![0xca, 0xfe]);
    let mut c = Cursor(&a.attested);
    assert_eq!(c.tpm2b(), key_name, "objectName");
    assert_eq!(c.tpm2b(), creation_hash[2..].to_vec(), "creationHash");
    assert!(c.0.is_empty());

    // A ticket for another creation hash: TPM_RC_TICKET.
    let mut wrong = creation_hash.clone();
    let last = wrong.len() - 1;
    wrong[last] ^= 1;
    let wrong_ch = dir.write("wrong.chash", &wrong);
    let (xsig, xatt) = (dir.join("x.sig"), dir.join("x.attest"));
    let r = certify_creation(&wrong_ch, &[], (&xsig, &xatt));
    assert!(!r.success(), "expected failure: {r}");
    // TPM_RC_TICKET (0x0a0) + P (0x040) + parameter 4 (0x400).
    assert!(
        r.stderr.to_lowercase().contains("(0x4e0)"),
        "expected TPM_RC_TICKET on parameter 4: {r}"
    );
    flush(&server);
}

fn get_time_and_privacy(protocol: Protocol) {
    let server = started(protocol);
    let dir = TempDir::new("attest-time");
    // An AK in the endorsement hierarchy (a primary): not obfuscated.
    let ek_ak = dir.join("eak.ctx");
    ok(
        &server,
        "tpm2_createprimary",
        [
            "-C",
            "e",
            "-G",
            "ecc256:ecdsa-sha256:null",
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign",
            "-c",
            p(&ek_ak),
        ],
    );
    let pem = dir.join("eak.pem");
    ok(
        &server,
        "tpm2_readpublic",
        ["-c", p(&ek_ak), "-f", "pem", "-o", p(&pem)],
    );
    let eak_name = name_of(&server, &dir, &ek_ak, "eak");
    let c = readclock(&server);
    let (clock_before, reset, restart) = (c.clock, c.reset_count, c.restart_count);
    let (att, sig) = (dir.join("time.attest"), dir.join("time.sig"));
    ok(
        &server,
        "tpm2_gettime",
        [
            "-c",
            p(&ek_ak),
            "-q",
            "1234",
            "-o",
            p(&sig),
            "-f",
            "plain",
            "--attestation",
            p(&att),
        ],
    );
    let clock_after = readclock(&server).clock;
    let a = verified_attest(&pem, &sig, &att);
    assert_eq!(a.ty, 0x8019, "TPM_ST_ATTEST_TIME");
    assert_eq!(
        a.qualified_signer,
        qualified_name(&TPM_RH_ENDORSEMENT.to_be_bytes(), &eak_name)
    );
    assert_eq!(a.extra_data, vec![0x12, 0x34]);
    // Endorsement hierarchy: the counts are plain.
    assert_eq!((a.reset_count, a.restart_count), (reset, restart));
    assert!(clock_before <= a.clock && a.clock <= clock_after);
    let mut c = Cursor(&a.attested);
    let _time = c.u64();
    let t_clock = c.u64();
    assert_eq!((c.u32(), c.u32(), c.u8()), (reset, restart, 1));
    assert!(clock_before <= t_clock && t_clock <= clock_after);
    assert_eq!(c.u64(), a.firmware_version, "plain firmwareVersion");
    assert!(c.0.is_empty());

    // An owner-hierarchy AK: resetCount, restartCount and firmwareVersion
    // of the common fields are obfuscated, the TPMS_TIME_INFO is not.
    let (_, (ak, ak_pem, ak_qn)) = rsa_ak(&server, &dir);
    let (att2, sig2) = (dir.join("time2.attest"), dir.join("time2.sig"));
    ok(
        &server,
        "tpm2_gettime",
        [
            "-c",
            p(&ak),
            "-o",
            p(&sig2),
            "-f",
            "plain",
            "--attestation",
            p(&att2),
        ],
    );
    let b = verified_attest(&ak_pem, &sig2, &att2);
    assert_eq!(b.qualified_signer, ak_qn);
    let mut c = Cursor(&b.attested);
    let _time = c.u64();
    let _clock = c.u64();
    assert_eq!((c.u32(), c.u32()), (reset, restart), "plain TPMS_TIME_INFO");
    let _safe = c.u8();
    let fw = c.u64();
    assert_ne!(
        (b.reset_count, b.restart_count, b.firmware_version),
        (reset, restart, fw),
        "obfuscated common fields"
    );
    // The obfuscation is a constant of the key: the same in a second one.
    ok(
        &server,
        "tpm2_gettime",
        ["-c", p(&ak), "-o", p(&sig2), "--attestation", p(&att2)],
    );
    let b2 = parse_attest(&std::fs::read(&att2).unwrap());
    assert_eq!(
        (b2.reset_count, b2.restart_count, b2.firmware_version),
        (b.reset_count, b.restart_count, b.firmware_version)
    );
    flush(&server);
}

fn clock_set(protocol: Protocol) {
    let server = started(protocol);
    let clock = readclock(&server).clock;
    let target = clock + 10_000_000;
    ok(&server, "tpm2_setclock", [target.to_string()]);
    let now = readclock(&server).clock;
    assert!(
        now >= target && now < target + 60_000,
        "clock {now} after setclock {target}"
    );
    // Clock never goes back: TPM_RC_VALUE + parameter 1 (0x1c4: P bit, parameter 1).
    let r = server.fails("tpm2_setclock", [(target - 1).to_string()]);
    assert!(
        r.stderr.to_lowercase().contains("(0x1c4)"),
        "TPM_RC_VALUE: {r}"
    );
    // Nor to the reserved top of the range.
    let r = server.fails("tpm2_setclock", [0xFFFF_0000_0000_0000u64.to_string()]);
    assert!(
        r.stderr.to_lowercase().contains("(0x1c4)"),
        "TPM_RC_VALUE: {r}"
    );
    // ClockRateAdjust is accepted (and is a no-op on a host clock).
    ok(&server, "tpm2_clockrateadjust", ["s"]);
    ok(&server, "tpm2_clockrateadjust", ["fff"]);
    let later = readclock(&server).clock;
    assert!(later >= now);
    // Clock survives a restart of the TPM (it is in NV).
    ok(&server, "tpm2_shutdown", Vec::<&str>::new());
    server.reset();
    server.startup_clear();
    let after_reset = readclock(&server).clock;
    assert!(after_reset >= target, "{after_reset} after reset");
}
