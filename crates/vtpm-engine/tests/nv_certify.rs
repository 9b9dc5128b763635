//! TPM2_NV_Certify (Part 3 §31.16) through the engine's entry point, with
//! commands built by hand from Part 3's tables: the two TPMU_ATTEST
//! members it answers (TPM_ST_ATTEST_NV, and TPM_ST_ATTEST_NV_DIGEST for
//! size 0 and offset 0) and the response codes of its read checks.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use vtpm_engine::Tpm;

mod common;
use common::*;

// TPMA_NV: OWNERWRITE, AUTHWRITE, OWNERREAD, AUTHREAD.
const NV_ATTRS: u32 = (1 << 1) | (1 << 2) | (1 << 17) | (1 << 18);

fn define(t: &mut Tpm, index: u32, size: u16) {
    let mut p = tpm2b(&[]);
    p.extend(nv_public(index, NV_ATTRS, size));
    let r = t.execute(0, &command_n(cc::NV_DEFINE_SPACE, &[RH_OWNER], 1, &p));
    assert_eq!(rc_of(&r), 0);
}

/// NV_Certify with a NULL signing key and a NULL scheme.
fn certify(t: &mut Tpm, auth: u32, index: u32, size: u16, offset: u16) -> Vec<u8> {
    let mut p = tpm2b(b"qd");
    p.extend(0x0010u16.to_be_bytes());
    p.extend(size.to_be_bytes());
    p.extend(offset.to_be_bytes());
    t.execute(
        0,
        &command_n(cc::NV_CERTIFY, &[RH_NULL, auth, index], 2, &p),
    )
}

/// (type, extraData, TPMU_ATTEST bytes) of the response's TPM2B_ATTEST;
/// checks that the signature is TPM_ALG_NULL.
fn attest(rsp: &[u8]) -> (u16, Vec<u8>, Vec<u8>) {
    let out = params(rsp, 0);
    let mut c = Cursor(&out);
    let a = c.b();
    assert_eq!(c.0, &[0x00, 0x10], "a NULL signature");
    let (ty, signer, extra, body) = attest_fields(a);
    assert_eq!(
        signer,
        RH_NULL.to_be_bytes(),
        "qualifiedSigner of TPM_RH_NULL"
    );
    (ty, extra, body)
}

#[test]
fn nv_certify_contents_digest_and_checks() {
    let mut t = started();
    let (index, other) = (0x0150_0020u32, 0x0150_0021u32);
    define(&mut t, index, 32);
    define(&mut t, other, 8);

    // Not written yet.
    assert_eq!(
        rc_of(&certify(&mut t, RH_OWNER, index, 4, 0)),
        rc::NV_UNINITIALIZED
    );

    let data: Vec<u8> = (0u8..32).collect();
    let mut p = tpm2b(&data);
    p.extend(0u16.to_be_bytes());
    let r = t.execute(0, &command_n(cc::NV_WRITE, &[RH_OWNER, index], 1, &p));
    assert_eq!(rc_of(&r), 0);

    // A slice: TPMS_NV_CERTIFY_INFO {indexName, offset, nvContents}.
    let (ty, extra, body) = attest(&certify(&mut t, index, index, 4, 2));
    assert_eq!((ty, extra), (0x8014, b"qd".to_vec()));
    let mut c = Cursor(&body);
    let name = c.b().to_vec();
    assert_eq!(&name[..2], &[0, 0x0b]);
    assert_eq!(name.len(), 34);
    assert_eq!(c.u16(), 2);
    assert_eq!(c.b(), &data[2..6]);
    assert!(c.0.is_empty());

    // size 0 and offset 0: TPMS_NV_DIGEST_CERTIFY_INFO; with no signing
    // key the scheme is TPM_ALG_NULL, so nvDigest is empty.
    let (ty, _, body) = attest(&certify(&mut t, RH_OWNER, index, 0, 0));
    assert_eq!(ty, 0x801C);
    let mut c = Cursor(&body);
    assert_eq!(c.b(), &name[..]);
    assert_eq!(c.b(), &[] as &[u8]);
    assert!(c.0.is_empty());

    // The last byte is in range, one more is not.
    assert_eq!(rc_of(&certify(&mut t, RH_OWNER, index, 2, 30)), 0);
    assert_eq!(
        rc_of(&certify(&mut t, RH_OWNER, index, 3, 30)),
        rc::NV_RANGE
    );
    assert_eq!(
        rc_of(&certify(&mut t, RH_OWNER, index, 0, 33)),
        rc::NV_RANGE
    );
    // Another index cannot authorize reading this one.
    assert_eq!(
        rc_of(&certify(&mut t, other, index, 4, 0)),
        rc::NV_AUTHORIZATION
    );
}

/// An NV index authorizes access to itself only: NV_Write and NV_Read
/// naming one index as authHandle and another as nvIndex answer
/// TPM_RC_NV_AUTHORIZATION (the reference implementation's
/// NvWriteAccessChecks / NvReadAccessChecks).
#[test]
fn another_index_authorizes_nothing() {
    let mut t = started();
    let (a, b) = (0x0150_0020, 0x0150_0021);
    define(&mut t, a, 8);
    define(&mut t, b, 8);
    let mut w = tpm2b(&[7; 8]);
    w.extend(0u16.to_be_bytes());
    assert_eq!(
        rc_of(&t.execute(0, &command_n(cc::NV_WRITE, &[b, b], 1, &w))),
        0
    );
    assert_eq!(
        rc_of(&t.execute(0, &command_n(cc::NV_WRITE, &[a, b], 1, &w))),
        rc::NV_AUTHORIZATION
    );
    let mut r = 8u16.to_be_bytes().to_vec();
    r.extend(0u16.to_be_bytes());
    const NV_READ: u32 = 0x14E;
    assert_eq!(rc_of(&t.execute(0, &command_n(NV_READ, &[b, b], 1, &r))), 0);
    assert_eq!(
        rc_of(&t.execute(0, &command_n(NV_READ, &[a, b], 1, &r))),
        rc::NV_AUTHORIZATION
    );
}
