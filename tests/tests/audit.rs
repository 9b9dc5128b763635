//! TPM2_NV_Certify (Part 3 §31.16), driven by tpm2-tools. The judges are
//! independent of vtpm: OpenSSL verifies the signature over the
//! TPMS_ATTEST bytes with the key's PEM; the TPMS_NV_CERTIFY_INFO fields
//! are parsed here and compared with the bytes written and the Name
//! `tpm2_nvreadpublic` reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::path::Path;
use vtpm_tests::ok_flush as ok;
use vtpm_tests::path_str as p;
use vtpm_tests::{
    Cursor, Hash, Protocol, Server, TempDir, create_restricted_signer, flush, hex, openssl_verify,
    parse_attest, started, unhex, verified_attest,
};

use vtpm_tests::both;

both!(nv_certify, session_audit, command_audit,);

/// A restricted ECDSA signing key under an owner primary: (context, PEM).
fn signing_key(server: &Server, dir: &TempDir) -> (std::path::PathBuf, std::path::PathBuf) {
    let primary = dir.join("primary.ctx");
    ok(server, "tpm2_createprimary", ["-C", "o", "-c", p(&primary)]);
    let (pubf, privf, ctx, pem) = (
        dir.join("ak.pub"),
        dir.join("ak.priv"),
        dir.join("ak.ctx"),
        dir.join("ak.pem"),
    );
    create_restricted_signer(
        server,
        &primary,
        "ecc256:ecdsa-sha256:null",
        [&pubf, &privf, &ctx, &pem],
    );
    (ctx, pem)
}

const TPM_CC_GET_RANDOM: u32 = 0x0000_017B;

/// The audit digest after one audited TPM2_GetRandom(`n`) that printed
/// `out` (hex): SHA-256(auditDigest || cpHash || rpHash), with cpHash =
/// SHA-256(TPM_CC_GetRandom || bytesRequested) and rpHash =
/// SHA-256(TPM_RC_SUCCESS || TPM_CC_GetRandom || TPM2B randomBytes).
fn audit_get_random(audit_digest: &[u8], n: u16, out: &str) -> Vec<u8> {
    let cc_get_random = TPM_CC_GET_RANDOM.to_be_bytes();
    let bytes = unhex(out);
    assert_eq!(bytes.len(), usize::from(n), "random bytes: {out}");
    let cp_hash = Hash::Sha256.digest(&[&cc_get_random, &n.to_be_bytes()]);
    let rp_hash = Hash::Sha256.digest(&[
        &0u32.to_be_bytes(),
        &cc_get_random,
        &n.to_be_bytes(),
        &bytes,
    ]);
    Hash::Sha256.digest(&[audit_digest, &cp_hash, &rp_hash])
}

/// `tool` (tpm2_getsessionauditdigest / tpm2_getcommandauditdigest)
/// signs with `ak` over qualifying data 0102 (SHA-256, plain signature):
/// the TPMS_ATTEST goes to `att`, the signature to `sig`.
fn signed_audit_digest(
    server: &Server,
    tool: &str,
    (ak, att, sig): (&Path, &Path, &Path),
    more: &[&str],
) {
    let mut args = vec!["-c", p(ak), "-g", "sha256", "-f", "plain", "-q", "0102"];
    args.extend(["-m", p(att), "-s", p(sig)]);
    args.extend(more);
    server.ok(tool, args);
}

fn nv_certify(protocol: Protocol) {
    let server = started(protocol);
    let dir = TempDir::new("audit-nvcertify");
    let (ak, pem) = signing_key(&server, &dir);
    let data: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(7).wrapping_add(3))
        .collect();
    let dataf = dir.write("nv.data", &data);
    ok(
        &server,
        "tpm2_nvdefine",
        [
            "0x1500016",
            "-C",
            "o",
            "-s",
            "32",
            "-a",
            "ownerread|ownerwrite|authread|authwrite",
            "-p",
            "nvpass",
        ],
    );
    ok(
        &server,
        "tpm2_nvwrite",
        ["0x1500016", "-C", "o", "-i", p(&dataf)],
    );
    let public = ok(&server, "tpm2_nvreadpublic", ["0x1500016"]);
    let name = public
        .lines()
        .find_map(|l| l.trim().strip_prefix("name: "))
        .unwrap_or_else(|| panic!("name in {public}"))
        .trim()
        .to_string();

    // A slice of the data, authorized by the index's own authValue.
    let (att, sig) = (dir.join("nv.att"), dir.join("nv.sig"));
    // TPM2_NV_Certify of index 0x1500016 signed by the AK, authorized by
    // `auth`, with `more` arguments.
    let certify = |auth: &[&str], more: &[&str]| {
        let mut args = vec!["-C", p(&ak)];
        args.extend(auth);
        args.extend(["-g", "sha256", "-f", "plain", "-o", p(&sig)]);
        args.extend(["--attestation", p(&att)]);
        args.extend(more);
        args.push("0x1500016");
        ok(&server, "tpm2_nvcertify", args);
    };
    certify(
        &["-p", "nvpass"],
        &["-q", "a1b2c3", "--size", "16", "--offset", "4"],
    );
    let a = verified_attest(&pem, &sig, &att);
    let (ty, extra, body) = (a.ty, a.extra_data, a.attested);
    assert_eq!(ty, 0x8014, "TPM_ST_ATTEST_NV");
    assert_eq!(extra, vec![0xa1, 0xb2, 0xc3]);
    let mut c = Cursor(&body);
    assert_eq!(hex(&c.tpm2b()), name, "indexName");
    assert_eq!(c.u16(), 4, "offset");
    assert_eq!(c.tpm2b(), data[4..20].to_vec(), "nvContents");
    assert!(c.0.is_empty());

    // No size: authorized by the owner.
    certify(&["-c", "o"], &[]);
    openssl_verify(&pem, &sig, &att);
    // tpm2-tools 5.4 sends size 0 and offset 0 when --size is not given:
    // that asks for TPMS_NV_DIGEST_CERTIFY_INFO, whose nvDigest is the
    // digest of the whole data with the signing scheme's hash.
    let a = parse_attest(&dir.read("nv.att"));
    let (ty, _, body) = (a.ty, a.extra_data, a.attested);
    assert_eq!(ty, 0x801c, "TPM_ST_ATTEST_NV_DIGEST");
    let mut c = Cursor(&body);
    assert_eq!(hex(&c.tpm2b()), name);
    assert_eq!(c.tpm2b(), Hash::Sha256.digest(&[&data]), "nvDigest");
    assert!(c.0.is_empty());

    flush(&server);
}

/// Session audit (Part 1 §19.6.11) and TPM2_GetSessionAuditDigest
/// (Part 3 §18.5): an audit session audits two TPM2_GetRandom commands;
/// OpenSSL verifies the signature over the TPMS_ATTEST, and the
/// sessionDigest is recomputed here from the spec's formula,
/// auditDigest := SHA-256(auditDigest || cpHash || rpHash) starting from
/// an empty digest, with cpHash = SHA-256(TPM_CC_GetRandom ||
/// bytesRequested) and rpHash = SHA-256(TPM_RC_SUCCESS || TPM_CC_GetRandom
/// || TPM2B randomBytes), from the bytes tpm2_getrandom printed.
fn session_audit(protocol: Protocol) {
    let server = started(protocol);
    let dir = TempDir::new("audit-session");
    let (ak, pem) = signing_key(&server, &dir);
    let session = dir.join("session.ctx");
    server.ok(
        "tpm2_startauthsession",
        ["-S", p(&session), "--audit-session"],
    );
    let mut expected: Vec<u8> = Vec::new();
    for n in [8u16, 16] {
        let out = server.ok(
            "tpm2_getrandom",
            [&n.to_string(), "-S", p(&session), "--hex"],
        );
        expected = audit_get_random(&expected, n, &out);
    }

    let (att, sig) = (dir.join("session.att"), dir.join("session.sig"));
    signed_audit_digest(
        &server,
        "tpm2_getsessionauditdigest",
        (&ak, &att, &sig),
        &["-S", p(&session)],
    );
    let a = verified_attest(&pem, &sig, &att);
    let (ty, extra, body) = (a.ty, a.extra_data, a.attested);
    assert_eq!(ty, 0x8016, "TPM_ST_ATTEST_SESSION_AUDIT");
    assert_eq!(extra, vec![1, 2]);
    let mut c = Cursor(&body);
    let exclusive = c.take(1)[0];
    assert!(exclusive <= 1, "exclusiveSession is a TPMI_YES_NO");
    assert_eq!(hex(&c.tpm2b()), hex(&expected), "sessionDigest");
    assert!(c.0.is_empty());

    server.ok("tpm2_flushcontext", [p(&session)]);
    flush(&server);
}

/// Command audit (Part 1 §33): tpm2-tools sets TPM2_GetRandom audited;
/// the signed TPMS_COMMAND_AUDIT_INFO's auditDigest is recomputed here
/// from the spec's formula and its signature checked with OpenSSL.
fn command_audit(protocol: Protocol) {
    let server = started(protocol);
    let dir = TempDir::new("audit-command");
    let (ak, pem) = signing_key(&server, &dir);
    server.ok("tpm2_setcommandauditstatus", ["0x17B"]);
    let (att, sig) = (dir.join("command.att"), dir.join("command.sig"));
    let get_digest = || {
        signed_audit_digest(
            &server,
            "tpm2_getcommandauditdigest",
            (&ak, &att, &sig),
            &[],
        );
    };
    // Reported digests are reset: start from an empty one.
    get_digest();
    let mut expected: Vec<u8> = Vec::new();
    for n in [8u16, 16] {
        let out = server.ok("tpm2_getrandom", [&n.to_string(), "--hex"]);
        expected = audit_get_random(&expected, n, &out);
    }
    get_digest();
    let a = verified_attest(&pem, &sig, &att);
    let (ty, extra, body) = (a.ty, a.extra_data, a.attested);
    assert_eq!(ty, 0x8015, "TPM_ST_ATTEST_COMMAND_AUDIT");
    assert_eq!(extra, vec![1, 2]);
    let mut c = Cursor(&body);
    let counter = c.take(8);
    // SetCommandCodeAuditStatus (always audited) counted once, the first
    // GetRandom after the reset once more.
    assert_eq!(counter, 2u64.to_be_bytes());
    assert_eq!(c.take(2), 0x000Bu16.to_be_bytes(), "digestAlg");
    assert_eq!(hex(&c.tpm2b()), hex(&expected), "auditDigest");
    let codes = [
        0x0000_0140u32.to_be_bytes(),
        TPM_CC_GET_RANDOM.to_be_bytes(),
    ]
    .concat();
    assert_eq!(
        hex(&c.tpm2b()),
        hex(&Hash::Sha256.digest(&[&codes])),
        "commandDigest"
    );
    assert!(c.0.is_empty());
}
