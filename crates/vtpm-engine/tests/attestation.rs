//! The attestation and clock commands through the engine's entry point,
//! with commands built by hand from Part 3's tables: the response codes
//! and positions Part 3 assigns, TPMS_ATTEST's layout (Part 2 §10.12),
//! NULL signatures for TPM_RH_NULL, and ClockSet's bounds.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use vtpm_engine::Tpm;

mod common;
use common::*;

const AK: u32 = attr::BASE | attr::RESTRICTED | attr::SIGN;

fn quote_params(data: &[u8], sch: &[u8], pcrs: &[u8]) -> Vec<u8> {
    let mut p = tpm2b(data);
    p.extend(sch);
    p.extend(pcrs);
    p
}

/// TPML_PCR_SELECTION of sha256 PCRs 0..=7.
const PCRS_0_7: [u8; 10] = [0, 0, 0, 1, 0, 0x0b, 3, 0xff, 0, 0];

#[test]
fn quote_rules() {
    let mut t = started();
    let sch = scheme(alg::RSASSA, alg::SHA256);
    let (ak, ..) = primary_in(&mut t, RH_OWNER, &rsa_template(AK, &sch));
    // The key's scheme is used when the caller gives none or the same.
    for s in [scheme(alg::NULL, 0), sch.clone()] {
        let r = t.execute(
            0,
            &command(cc::QUOTE, &[ak], true, &quote_params(b"n", &s, &PCRS_0_7)),
        );
        let out = params(&r, 0);
        let mut c = Cursor(&out);
        let attest = c.b().to_vec();
        let (ty, _, extra, body) = attest_fields(&attest);
        assert_eq!((ty, extra.as_slice()), (0x8018, &b"n"[..]));
        assert_eq!(&body[..10], &PCRS_0_7);
        assert_eq!(Cursor(&body[10..]).b().len(), 32, "SHA-256 pcrDigest");
        assert_eq!((c.u16(), c.u16()), (alg::RSASSA, alg::SHA256));
        assert_eq!(c.b().len(), 256);
        assert!(c.0.is_empty());
    }
    // Another scheme or hash than the key's: TPM_RC_SCHEME on inScheme.
    for s in [
        scheme(alg::RSASSA, alg::SHA384),
        scheme(alg::ECDSA, alg::SHA256),
    ] {
        let r = t.execute(
            0,
            &command(cc::QUOTE, &[ak], true, &quote_params(&[], &s, &PCRS_0_7)),
        );
        assert_eq!(rc_of(&r), rc::p(rc::SCHEME, 2));
    }
    // A key that cannot sign: TPM_RC_KEY on signHandle.
    let (dec, ..) = primary_in(
        &mut t,
        RH_OWNER,
        &rsa_template(attr::BASE | attr::DECRYPT, &scheme(alg::RSAES, 0)),
    );
    let r = t.execute(
        0,
        &command(cc::QUOTE, &[dec], true, &quote_params(&[], &sch, &PCRS_0_7)),
    );
    assert_eq!(rc_of(&r), rc::h(rc::KEY, 1));
    // TPM_RH_NULL: a NULL signature; qualifiedSigner is the NULL handle.
    let r = t.execute(
        0,
        &command(
            cc::QUOTE,
            &[RH_NULL],
            true,
            &quote_params(b"x", &sch, &PCRS_0_7),
        ),
    );
    let out = params(&r, 0);
    let mut c = Cursor(&out);
    let attest = c.b().to_vec();
    let (ty, signer, extra, _) = attest_fields(&attest);
    assert_eq!(
        (ty, signer, extra),
        (0x8018, RH_NULL.to_be_bytes().to_vec(), b"x".to_vec())
    );
    assert_eq!(c.u16(), alg::NULL);
    assert!(c.0.is_empty());
    // Without a key and without a scheme there is no hash for pcrDigest.
    let r = t.execute(
        0,
        &command(
            cc::QUOTE,
            &[RH_NULL],
            true,
            &quote_params(&[], &scheme(alg::NULL, 0), &PCRS_0_7),
        ),
    );
    assert_eq!(rc_of(&r), rc::p(rc::SCHEME, 2));
}

#[test]
fn certify_creation_and_get_time_rules() {
    let mut t = started();
    let sch = scheme(alg::ECDSA, alg::SHA256);
    let (ak, ..) = primary_in(&mut t, RH_ENDORSEMENT, &ecc_template(AK, &sch));
    let (obj, creation_hash, ticket, name) = primary_in(
        &mut t,
        RH_OWNER,
        &ecc_template(attr::BASE | attr::SIGN, &sch),
    );
    let cc_params = |hash: &[u8], ticket: &[u8]| {
        let mut p = tpm2b(b"q");
        p.extend(tpm2b(hash));
        p.extend(scheme(alg::NULL, 0));
        p.extend(ticket);
        p
    };
    let r = t.execute(
        0,
        &command(
            cc::CERTIFY_CREATION,
            &[ak, obj],
            true,
            &cc_params(&creation_hash, &ticket),
        ),
    );
    let out = params(&r, 0);
    let (ty, _, extra, body) = attest_fields(Cursor(&out).b());
    assert_eq!((ty, extra), (0x801A, b"q".to_vec()));
    let mut c = Cursor(&body);
    assert_eq!(c.b(), &name[..]);
    assert_eq!(c.b(), &creation_hash[..]);
    // Another creation hash: TPM_RC_TICKET on creationTicket.
    let mut wrong = creation_hash.clone();
    wrong[0] ^= 1;
    let r = t.execute(
        0,
        &command(
            cc::CERTIFY_CREATION,
            &[ak, obj],
            true,
            &cc_params(&wrong, &ticket),
        ),
    );
    assert_eq!(rc_of(&r), rc::p(rc::TICKET, 4));

    // Certify with TPM_RH_NULL: a NULL signature.
    let mut p = tpm2b(&[]);
    p.extend(scheme(alg::NULL, 0));
    let r = t.execute(0, &command_n(cc::CERTIFY, &[obj, RH_NULL], 2, &p));
    let out = params(&r, 0);
    let mut c = Cursor(&out);
    let (ty, ..) = attest_fields(c.b());
    assert_eq!(ty, 0x8017);
    assert_eq!(c.u16(), alg::NULL);

    // GetTime: the privacy administrator is the endorsement hierarchy.
    let r = t.execute(0, &command_n(cc::GET_TIME, &[RH_OWNER, ak], 2, &p));
    assert_eq!(rc_of(&r), rc::h(rc::VALUE, 1));
    let r = t.execute(0, &command_n(cc::GET_TIME, &[RH_ENDORSEMENT, ak], 2, &p));
    let out = params(&r, 0);
    let (ty, ..) = attest_fields(Cursor(&out).b());
    assert_eq!(ty, 0x8019);
}

fn read_clock(t: &mut Tpm) -> u64 {
    let out = params(&t.execute(0, &command(cc::READ_CLOCK, &[], false, &[])), 0);
    u64::from_be_bytes(out[8..16].try_into().unwrap())
}

#[test]
fn clock_set_and_rate_adjust() {
    let mut t = started();
    let now = read_clock(&mut t);
    let set = |t: &mut Tpm, h: u32, v: u64| {
        rc_of(&t.execute(0, &command(cc::CLOCK_SET, &[h], true, &v.to_be_bytes())))
    };
    assert_eq!(set(&mut t, RH_OWNER, now + 1_000_000), 0);
    let later = read_clock(&mut t);
    assert!(later >= now + 1_000_000 && later < now + 1_100_000);
    // Backwards, or into the reserved top of the range: TPM_RC_VALUE.
    assert_eq!(set(&mut t, RH_OWNER, now), rc::p(rc::VALUE, 1));
    assert_eq!(
        set(&mut t, RH_OWNER, 0xFFFF_0000_0000_0000),
        rc::p(rc::VALUE, 1)
    );
    assert_eq!(set(&mut t, RH_OWNER, 0xFFFF_0000_0000_0000 - 1), 0);
    // TPMI_RH_PROVISION: owner or platform only.
    assert_eq!(
        set(&mut t, RH_ENDORSEMENT, u64::MAX >> 20),
        rc::h(rc::VALUE, 1)
    );
    // ClockRateAdjust: TPM_CLOCK_ADJUST is -3 ..= 3.
    for (v, expected) in [
        (0u8, 0),
        (3, 0),
        (0xFD, 0),
        (4, rc::p(rc::VALUE, 1)),
        (0xFC, rc::p(rc::VALUE, 1)),
    ] {
        let r = t.execute(0, &command(cc::CLOCK_RATE_ADJUST, &[RH_OWNER], true, &[v]));
        assert_eq!(rc_of(&r), expected, "adjust {v:#x}");
    }
}
