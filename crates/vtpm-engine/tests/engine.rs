//! The engine through its one entry point: command bytes built by hand
//! from Part 3's tables, responses checked field by field against values
//! computed here (PCR extends recomputed with sha2, hashes against FIPS
//! vectors, response codes from Part 2).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use sha1::Sha1;
use sha2::Digest as _;
use vtpm_engine::{MemoryPlatform, Tpm};

mod common;
use common::*;

fn sel(alg: u16, pcrs: &[usize]) -> Vec<u8> {
    let mut bitmap = [0u8; 3];
    for &p in pcrs {
        bitmap[p / 8] |= 1 << (p % 8);
    }
    let mut v = alg.to_be_bytes().to_vec();
    v.push(3);
    v.extend(bitmap);
    v
}

fn pcr_read(t: &mut Tpm, alg: u16, pcr: usize) -> Vec<u8> {
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend(sel(alg, &[pcr]));
    let r = t.execute(0, &command_pw(cc::PCR_READ, &[], None, &p));
    let out = params(&r, 0);
    // counter(4) count(4) sel(2+1+3) digests: count(4) size(2) value
    let value = &out[4 + 4 + 6 + 4..];
    let size = u16::from_be_bytes([value[0], value[1]]) as usize;
    value[2..2 + size].to_vec()
}

#[test]
fn malformed_headers_get_the_spec_codes() {
    let mut t = tpm();
    assert_eq!(
        rc_of(&t.execute(0, &[])),
        0x09A,
        "empty: TPM_RC_INSUFFICIENT"
    );
    assert_eq!(rc_of(&t.execute(0, &[0x80])), 0x09A);
    assert_eq!(rc_of(&t.execute(0, &[0x80, 0x01, 0, 0, 0])), 0x09A);
    assert_eq!(
        rc_of(&t.execute(0, &[0x80, 0x01, 0, 0, 0, 10, 0, 0])),
        0x142,
        "size field larger than the buffer"
    );
    // TPM 1.2 tag and any other tag: TPM_RC_BAD_TAG, answered with tag 0x8001.
    let r = t.execute(0, &[0x00, 0xC1, 0, 0, 0, 10, 0, 0, 0, 0x65]);
    assert_eq!(rc_of(&r), 0x01E);
    assert_eq!(&r[..2], &[0x80, 0x01]);
    // commandSize disagreeing with the bytes received.
    let mut c = command_pw(cc::GET_RANDOM, &[], None, &[0, 8]);
    c[5] += 1;
    assert_eq!(rc_of(&t.execute(0, &c)), 0x142);
    let mut long = command_pw(cc::GET_RANDOM, &[], None, &[0, 8]);
    long.push(0);
    assert_eq!(rc_of(&t.execute(0, &long)), 0x142);
    // Oversized commands.
    let big = command_pw(cc::GET_RANDOM, &[], None, &vec![0; 5000]);
    assert_eq!(rc_of(&t.execute(0, &big)), 0x142);
    // Before Startup: TPM_RC_INITIALIZE; unknown command: TPM_RC_COMMAND_CODE.
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::GET_RANDOM, &[], None, &[0, 8]))),
        0x100
    );
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(0x2000_0001, &[], None, &[]))),
        0x143
    );
    assert_eq!(
        rc_of(&t.execute(
            0,
            // TPM2_FieldUpgradeStart: not implemented.
            &command_pw(0x0000_012F, &[RH_PLATFORM], Some(&[b""]), &[])
        )),
        0x143
    );
    // Startup with a bad type, then twice.
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 7]))),
        0x1C4
    );
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0]))),
        0x1DA,
        "P1 insufficient"
    );
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0, 0]))),
        0x095,
        "trailing bytes: TPM_RC_SIZE"
    );
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0
    );
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0x100
    );
}

#[test]
fn authorization_area_errors() {
    let mut t = started();
    let digest = [0u8; 32];
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend(0x000Bu16.to_be_bytes());
    p.extend(digest);
    // PCR_Extend needs authorization: no sessions → TPM_RC_AUTH_MISSING.
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::PCR_EXTEND, &[16], None, &p))),
        0x125
    );
    // Wrong password for a DA-exempt entity: TPM_RC_BAD_AUTH + session 1.
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::PCR_EXTEND, &[16], Some(&[b"x"]), &p))),
        0x9A2
    );
    // Trailing zeros are not part of a password.
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::PCR_EXTEND, &[16], Some(&[b"\0\0"]), &p))),
        0
    );
    // Password session with a nonce: TPM_RC_NONCE + S1; with audit: ATTRIBUTES.
    let mut c = command_pw(cc::PCR_EXTEND, &[16], Some(&[b""]), &p);
    let with_nonce = {
        let mut v = c.clone();
        // authSize at 14..18, session at 18: handle(4) nonce size(2)
        v[17] += 2;
        v.splice(22..24, [0, 2, 0xAA, 0xBB]);
        let len = v.len() as u32;
        v[2..6].copy_from_slice(&len.to_be_bytes());
        v
    };
    assert_eq!(rc_of(&t.execute(0, &with_nonce)), 0x98F);
    c[24] = 0x81;
    assert_eq!(rc_of(&t.execute(0, &c)), 0x982);
    c[24] = 0x09;
    assert_eq!(rc_of(&t.execute(0, &c)), 0x9A1, "reserved bits");
    // authorizationSize too small / too big.
    let mut c = command_pw(cc::PCR_EXTEND, &[16], Some(&[b""]), &p);
    c[17] = 8;
    assert_eq!(rc_of(&t.execute(0, &c)), 0x095);
    c[17] = 0xFF;
    assert_eq!(rc_of(&t.execute(0, &c)), 0x095);
    // Four sessions.
    let four = command_pw(cc::PCR_EXTEND, &[16], Some(&[b"", b"", b"", b""]), &p);
    assert_eq!(rc_of(&t.execute(0, &four)), 0x144);
    // A second password session with nothing to authorize.
    let two = command_pw(cc::PCR_EXTEND, &[16], Some(&[b"", b""]), &p);
    assert_eq!(rc_of(&t.execute(0, &two)), 0xA8B);
    // A HMAC session handle that is not loaded.
    let mut c = command_pw(cc::PCR_EXTEND, &[16], Some(&[b""]), &p);
    c[18..22].copy_from_slice(&0x0200_0000u32.to_be_bytes());
    assert_eq!(rc_of(&t.execute(0, &c)), 0x918);
    // Sessions on a command that allows none.
    let c = command_pw(
        cc::FLUSH_CONTEXT,
        &[],
        Some(&[b""]),
        &0x8000_0000u32.to_be_bytes(),
    );
    assert_eq!(rc_of(&t.execute(0, &c)), 0x145);
    // PCR handle out of range.
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::PCR_EXTEND, &[24], Some(&[b""]), &p))),
        0x184
    );
}

#[test]
fn pcr_extend_matches_recomputed_digest() {
    let mut t = started();
    let d256 = sha256(&[b"measurement"]);
    let d1 = Sha1::digest(b"measurement").to_vec();
    let mut p = 2u32.to_be_bytes().to_vec();
    p.extend(0x0004u16.to_be_bytes());
    p.extend(&d1);
    p.extend(0x000Bu16.to_be_bytes());
    p.extend(&d256);
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::PCR_EXTEND, &[7], Some(&[b""]), &p))),
        0
    );
    assert_eq!(pcr_read(&mut t, 0x000B, 7), sha256(&[&[0u8; 32], &d256]));
    let mut h = Sha1::new();
    h.update([0u8; 20]);
    h.update(&d1);
    assert_eq!(pcr_read(&mut t, 0x0004, 7), h.finalize().to_vec());
    // SHA-384 is implemented but not allocated by default: nothing returned.
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend(sel(0x000C, &[7]));
    let r = t.execute(0, &command_pw(cc::PCR_READ, &[], None, &p));
    let out = params(&r, 0);
    assert_eq!(&out[4..14], &[0, 0, 0, 1, 0, 0x0C, 3, 0, 0, 0]);
    assert_eq!(&out[14..], &[0, 0, 0, 0]);
    // Unknown hash in a digest: TPM_RC_HASH + P1.
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend(0x0012u16.to_be_bytes());
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::PCR_EXTEND, &[7], Some(&[b""]), &p))),
        0x1C3
    );
    // PCR_Extend to TPM_RH_NULL succeeds and changes nothing.
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend(0x000Bu16.to_be_bytes());
    p.extend([1u8; 32]);
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::PCR_EXTEND, &[RH_NULL], Some(&[b""]), &p))),
        0
    );
}

#[test]
fn pcr_startup_values_locality_rules_and_reset() {
    let mut t = started();
    assert_eq!(pcr_read(&mut t, 0x000B, 0), vec![0; 32]);
    assert_eq!(pcr_read(&mut t, 0x000B, 17), vec![0xFF; 32]);
    assert_eq!(pcr_read(&mut t, 0x000B, 23), vec![0; 32]);
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend(0x000Bu16.to_be_bytes());
    p.extend([7u8; 32]);
    // PCR 17 cannot be extended from locality 0, PCR 21 only from 2.
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::PCR_EXTEND, &[17], Some(&[b""]), &p))),
        0x907
    );
    assert_eq!(
        rc_of(&t.execute(2, &command_pw(cc::PCR_EXTEND, &[21], Some(&[b""]), &p))),
        0
    );
    assert_eq!(
        rc_of(&t.execute(3, &command_pw(cc::PCR_EXTEND, &[21], Some(&[b""]), &p))),
        0x907
    );
    // PCR 23 is resettable from locality 0, PCR 0 never, PCR 17 from 4.
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::PCR_EXTEND, &[23], Some(&[b""]), &p))),
        0
    );
    assert_ne!(pcr_read(&mut t, 0x000B, 23), vec![0; 32]);
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::PCR_RESET, &[23], Some(&[b""]), &[]))),
        0
    );
    assert_eq!(pcr_read(&mut t, 0x000B, 23), vec![0; 32]);
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::PCR_RESET, &[0], Some(&[b""]), &[]))),
        0x907
    );
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::PCR_RESET, &[17], Some(&[b""]), &[]))),
        0x907
    );
    assert_eq!(
        rc_of(&t.execute(4, &command_pw(cc::PCR_RESET, &[17], Some(&[b""]), &[]))),
        0
    );
    assert_eq!(pcr_read(&mut t, 0x000B, 17), vec![0; 32]);
    // Startup at locality 3 records the locality in PCR 0.
    let mut t = tpm();
    assert_eq!(
        rc_of(&t.execute(3, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0
    );
    let mut expect = vec![0; 32];
    expect[31] = 3;
    assert_eq!(pcr_read(&mut t, 0x000B, 0), expect);
    let mut t = tpm();
    assert_eq!(
        rc_of(&t.execute(1, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0x907
    );
}

#[test]
fn pcr_event_returns_every_bank_and_extends() {
    let mut t = started();
    let mut p = 5u16.to_be_bytes().to_vec();
    p.extend(b"hello");
    let r = t.execute(0, &command_pw(cc::PCR_EVENT, &[16], Some(&[b""]), &p));
    let out = params(&r, 0);
    assert_eq!(&out[..4], &[0, 0, 0, 4]);
    assert_eq!(&out[4..6], &[0, 4]);
    assert_eq!(&out[6..26], Sha1::digest(b"hello").as_slice());
    assert_eq!(&out[26..28], &[0, 0x0B]);
    assert_eq!(&out[28..60], sha256(&[b"hello"]).as_slice());
    assert_eq!(
        pcr_read(&mut t, 0x000B, 16),
        sha256(&[&[0u8; 32], &sha256(&[b"hello"])])
    );
}

#[test]
fn shutdown_state_then_startup_state_restores_pcrs() {
    let platform = MemoryPlatform::new();
    let mut t = Tpm::new(Box::new(platform.clone())).unwrap();
    t.power_on();
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0
    );
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend(0x000Bu16.to_be_bytes());
    p.extend([9u8; 32]);
    for pcr in [5u32, 16] {
        assert_eq!(
            rc_of(&t.execute(0, &command_pw(cc::PCR_EXTEND, &[pcr], Some(&[b""]), &p))),
            0
        );
    }
    let pcr5 = pcr_read(&mut t, 0x000B, 5);
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::SHUTDOWN, &[], None, &[0, 1]))),
        0
    );
    // The backend goes away; a new one on the same NV resumes.
    drop(t);
    let mut t = Tpm::new(Box::new(platform.clone())).unwrap();
    t.power_on();
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 1]))),
        0
    );
    assert_eq!(
        pcr_read(&mut t, 0x000B, 5),
        pcr5,
        "state-saved PCR restored"
    );
    assert_eq!(
        pcr_read(&mut t, 0x000B, 16),
        vec![0; 32],
        "PCR 16 is not state-saved"
    );
    // Without a Shutdown(STATE) first, Startup(STATE) is TPM_RC_VALUE + P1.
    t.tpm_init();
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 1]))),
        0x1C4
    );
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0
    );
    assert_eq!(pcr_read(&mut t, 0x000B, 5), vec![0; 32]);
}

#[test]
fn read_clock_counts_resets_and_restarts() {
    let platform = MemoryPlatform::new();
    let mut t = Tpm::new(Box::new(platform.clone())).unwrap();
    t.power_on();
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0
    );
    let read = |t: &mut Tpm| {
        let r = t.execute(0, &command_pw(cc::READ_CLOCK, &[], None, &[]));
        let p = params(&r, 0).to_vec();
        let time = u64::from_be_bytes(p[0..8].try_into().unwrap());
        let clock = u64::from_be_bytes(p[8..16].try_into().unwrap());
        let reset = u32::from_be_bytes(p[16..20].try_into().unwrap());
        let restart = u32::from_be_bytes(p[20..24].try_into().unwrap());
        (time, clock, reset, restart, p[24])
    };
    let (_, c1, reset1, restart1, _) = read(&mut t);
    platform.advance_ms(5000);
    let (time2, c2, reset2, _, safe) = read(&mut t);
    assert!(c2 >= c1 + 5000 && time2 >= 5000);
    assert_eq!((reset2, safe), (reset1, 1));
    // Shutdown(STATE) + Startup(CLEAR) is a TPM Restart.
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::SHUTDOWN, &[], None, &[0, 1]))),
        0
    );
    t.tpm_init();
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0
    );
    let (time3, c3, reset3, restart3, _) = read(&mut t);
    assert_eq!((reset3, restart3), (reset1, restart1 + 1));
    assert!(time3 < 5000 && c3 >= c2);
    // No shutdown: a TPM Reset, and Clock is no longer known to be safe.
    t.tpm_init();
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0
    );
    let (_, _, reset4, restart4, safe4) = read(&mut t);
    assert_eq!((reset4, restart4, safe4), (reset1 + 1, 0, 0));
    // Safe again once Clock has passed the next NV update of Clock.
    platform.advance_ms(5000);
    let _ = read(&mut t);
    let (_, _, _, _, safe5) = read(&mut t);
    assert_eq!(safe5, 1);
}

#[test]
fn get_random_and_stir_random() {
    let mut t = started();
    let r = t.execute(0, &command_pw(cc::GET_RANDOM, &[], None, &[0, 16]));
    let a = params(&r, 0).to_vec();
    assert_eq!(&a[..2], &[0, 16]);
    let r = t.execute(0, &command_pw(cc::GET_RANDOM, &[], None, &[0xFF, 0xFF]));
    assert_eq!(
        &params(&r, 0)[..2],
        &[0, 64],
        "capped at the largest digest"
    );
    assert_ne!(
        params(
            &t.execute(0, &command_pw(cc::GET_RANDOM, &[], None, &[0, 16])),
            0
        ),
        a.as_slice()
    );
    let mut p = 4u16.to_be_bytes().to_vec();
    p.extend(b"stir");
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STIR_RANDOM, &[], None, &p))),
        0
    );
    let mut p = 129u16.to_be_bytes().to_vec();
    p.extend([0; 129]);
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STIR_RANDOM, &[], None, &p))),
        0x1D5
    );
}

#[test]
fn hash_matches_fips_vectors_and_tickets() {
    let mut t = started();
    let mut p = 3u16.to_be_bytes().to_vec();
    p.extend(b"abc");
    p.extend(0x000Bu16.to_be_bytes());
    p.extend(RH_OWNER.to_be_bytes());
    let r = t.execute(0, &command_pw(cc::HASH, &[], None, &p));
    let out = params(&r, 0);
    assert_eq!(&out[..2], &[0, 32]);
    assert_eq!(
        hex(&out[2..34]),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // Ticket: TPM_ST_HASHCHECK, owner hierarchy, an HMAC of the context
    // integrity hash (SHA-512).
    assert_eq!(&out[34..36], &[0x80, 0x24]);
    assert_eq!(&out[36..40], &RH_OWNER.to_be_bytes());
    assert_eq!(&out[40..42], &[0, 64]);
    // Data that starts with TPM_GENERATED_VALUE gets a NULL ticket.
    let mut p = 4u16.to_be_bytes().to_vec();
    p.extend([0xFF, b'T', b'C', b'G']);
    p.extend(0x000Bu16.to_be_bytes());
    p.extend(RH_OWNER.to_be_bytes());
    let r = t.execute(0, &command_pw(cc::HASH, &[], None, &p));
    assert_eq!(&params(&r, 0)[34..], &[0x80, 0x24, 0x40, 0, 0, 7, 0, 0]);
    // Bad hash: TPM_RC_HASH + P2; bad hierarchy: TPM_RC_VALUE + P3.
    let mut p = 0u16.to_be_bytes().to_vec();
    p.extend(0x0010u16.to_be_bytes());
    p.extend(RH_NULL.to_be_bytes());
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::HASH, &[], None, &p))),
        0x2C3
    );
    let mut p = 0u16.to_be_bytes().to_vec();
    p.extend(0x000Du16.to_be_bytes());
    p.extend(0x4000_000Au32.to_be_bytes());
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::HASH, &[], None, &p))),
        0x3C4
    );
}

#[test]
fn hash_and_event_sequences() {
    let mut t = started();
    let mut p = 2u16.to_be_bytes().to_vec();
    p.extend(b"pw");
    p.extend(0x000Bu16.to_be_bytes());
    let r = t.execute(0, &command_pw(cc::HASH_SEQUENCE_START, &[], None, &p));
    assert_eq!(rc_of(&r), 0);
    let h = u32::from_be_bytes(r[10..14].try_into().unwrap());
    assert_eq!(h >> 24, 0x80);
    let mut upd = 2u16.to_be_bytes().to_vec();
    upd.extend(b"ab");
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::SEQUENCE_UPDATE, &[h], Some(&[b"pw"]), &upd)
        )),
        0
    );
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::SEQUENCE_UPDATE, &[h], Some(&[b"no"]), &upd)
        )),
        0x9A2
    );
    let mut fin = 1u16.to_be_bytes().to_vec();
    fin.extend(b"c");
    fin.extend(RH_NULL.to_be_bytes());
    let r = t.execute(
        0,
        &command_pw(cc::SEQUENCE_COMPLETE, &[h], Some(&[b"pw"]), &fin),
    );
    let out = params(&r, 0);
    assert_eq!(
        hex(&out[2..34]),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // The sequence is gone.
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::SEQUENCE_UPDATE, &[h], Some(&[b"pw"]), &upd)
        )),
        0x910
    );
    // Event sequence into PCR 16: every bank's digest, PCR extended.
    let mut p = 0u16.to_be_bytes().to_vec();
    p.extend(0x0010u16.to_be_bytes());
    let r = t.execute(0, &command_pw(cc::HASH_SEQUENCE_START, &[], None, &p));
    let e = u32::from_be_bytes(r[10..14].try_into().unwrap());
    let mut fin = 5u16.to_be_bytes().to_vec();
    fin.extend(b"event");
    // A hash-sequence command on an event sequence: TPM_RC_MODE.
    let mut sc = fin.clone();
    sc.extend(RH_NULL.to_be_bytes());
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::SEQUENCE_COMPLETE, &[e], Some(&[b""]), &sc)
        )),
        0x189
    );
    let r = t.execute(
        0,
        &command_pw(
            cc::EVENT_SEQUENCE_COMPLETE,
            &[16, e],
            Some(&[b"", b""]),
            &fin,
        ),
    );
    let out = params(&r, 0);
    assert_eq!(&out[..4], &[0, 0, 0, 4]);
    assert_eq!(
        pcr_read(&mut t, 0x000B, 16),
        sha256(&[&[0u8; 32], &sha256(&[b"event"])])
    );
    // Flushing: unknown transient handle is TPM_RC_HANDLE + P1.
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::FLUSH_CONTEXT, &[], None, &e.to_be_bytes())
        )),
        0x1CB
    );
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::FLUSH_CONTEXT, &[], None, &RH_OWNER.to_be_bytes())
        )),
        0x1C4
    );
    // Object slots run out with TPM_RC_OBJECT_MEMORY.
    let mut handles = Vec::new();
    loop {
        let r = t.execute(0, &command_pw(cc::HASH_SEQUENCE_START, &[], None, &p));
        if rc_of(&r) != 0 {
            assert_eq!(rc_of(&r), 0x902);
            break;
        }
        handles.push(u32::from_be_bytes(r[10..14].try_into().unwrap()));
    }
    assert_eq!(handles.len(), 8);
    for h in handles {
        assert_eq!(
            rc_of(&t.execute(
                0,
                &command_pw(cc::FLUSH_CONTEXT, &[], None, &h.to_be_bytes())
            )),
            0
        );
    }
}

fn get_cap(t: &mut Tpm, cap: u32, property: u32, count: u32) -> (bool, Vec<u8>) {
    let mut p = cap.to_be_bytes().to_vec();
    p.extend(property.to_be_bytes());
    p.extend(count.to_be_bytes());
    let r = t.execute(0, &command_pw(cc::GET_CAPABILITY, &[], None, &p));
    let out = params(&r, 0);
    assert_eq!(&out[1..5], &cap.to_be_bytes());
    (out[0] == 1, out[5..].to_vec())
}

#[test]
fn get_capability_pages_with_more_data() {
    let mut t = started();
    // TPM properties two at a time from TPM_PT_FAMILY_INDICATOR.
    let (more, data) = get_cap(&mut t, 6, 0x100, 2);
    assert!(more);
    assert_eq!(
        data,
        [
            &[0, 0, 0, 2][..],
            &[0, 0, 1, 0],
            b"2.0\0",
            &[0, 0, 1, 1],
            &[0, 0, 0, 0]
        ]
        .concat()
    );
    // The last variable property: no more data.
    let (more, data) = get_cap(&mut t, 6, 0x214, 10);
    assert!(!more);
    assert_eq!(&data[..8], &[0, 0, 0, 1, 0, 0, 2, 0x14]);
    // Commands: GetRandom's TPMA_CC has no handles; PCR_Extend has one.
    let (_, data) = get_cap(&mut t, 2, 0x17B, 1);
    assert_eq!(data, vec![0, 0, 0, 1, 0, 0, 1, 0x7B]);
    let (_, data) = get_cap(&mut t, 2, 0x182, 1);
    assert_eq!(data, vec![0, 0, 0, 1, 0x02, 0, 1, 0x82]);
    // PCR handles from 20: 20..23, more none.
    let (more, data) = get_cap(&mut t, 1, 20, 100);
    assert!(!more);
    assert_eq!(
        data,
        [
            &[0, 0, 0, 4][..],
            &[0, 0, 0, 20],
            &[0, 0, 0, 21],
            &[0, 0, 0, 22],
            &[0, 0, 0, 23]
        ]
        .concat()
    );
    // Algorithms: SHA-256 is a hash.
    let (_, data) = get_cap(&mut t, 0, 0x0B, 1);
    assert_eq!(data, vec![0, 0, 0, 1, 0, 0x0B, 0, 0, 0, 4]);
    // PCR allocation: SHA-1 and SHA-256 all; SHA-384/512 none.
    let (_, data) = get_cap(&mut t, 5, 0, 1);
    assert_eq!(
        &data[..14],
        &[0, 0, 0, 4, 0, 4, 3, 0xFF, 0xFF, 0xFF, 0, 0x0B, 3, 0xFF]
    );
    // PCR properties: PCR 17..22 are D-RTM resettable.
    let (_, data) = get_cap(&mut t, 7, 0x12, 1);
    assert_eq!(data, vec![0, 0, 0, 1, 0, 0, 0, 0x12, 3, 0, 0, 0x7E]);
    // ECC curves, empty lists, ACT, bad capability and bad handle type.
    let (_, data) = get_cap(&mut t, 8, 0, 10);
    assert_eq!(data, vec![0, 0, 0, 2, 0, 3, 0, 4]);
    assert_eq!(get_cap(&mut t, 3, 0, 10).1, vec![0, 0, 0, 0]);
    assert_eq!(get_cap(&mut t, 0xA, 0, 10).1, vec![0, 0, 0, 0]);
    let mut p = 0x55u32.to_be_bytes().to_vec();
    p.extend([0; 8]);
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::GET_CAPABILITY, &[], None, &p))),
        0x1C4
    );
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend(0x0500_0000u32.to_be_bytes());
    p.extend(1u32.to_be_bytes());
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::GET_CAPABILITY, &[], None, &p))),
        0x2CB
    );
}

#[test]
fn pcr_allocate_takes_effect_at_reset() {
    let mut t = started();
    // sha256: all PCRs, sha1: none; platform auth is empty.
    let mut p = 2u32.to_be_bytes().to_vec();
    p.extend(sel(0x0004, &[]));
    p.extend(sel(0x000B, &(0..24).collect::<Vec<_>>()));
    let r = t.execute(
        0,
        &command_pw(cc::PCR_ALLOCATE, &[RH_PLATFORM], Some(&[b""]), &p),
    );
    let out = params(&r, 0);
    assert_eq!(out[0], 1, "allocationSuccess");
    assert_eq!(&out[1..5], &24u32.to_be_bytes());
    assert_eq!(&out[5..9], &(24u32 * 32).to_be_bytes());
    // Shutdown(STATE) is refused after a reallocation.
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::SHUTDOWN, &[], None, &[0, 1]))),
        0x1CA
    );
    // Still the old banks until the TPM is reset.
    assert_eq!(pcr_read(&mut t, 0x0004, 0).len(), 20);
    t.tpm_init();
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0
    );
    let (_, data) = get_cap(&mut t, 5, 0, 1);
    assert_eq!(
        &data[..14],
        &[0, 0, 0, 4, 0, 4, 3, 0, 0, 0, 0, 0x0B, 3, 0xFF]
    );
    // Wrong authorization handle.
    let r = t.execute(
        0,
        &command_pw(cc::PCR_ALLOCATE, &[RH_OWNER], Some(&[b""]), &p),
    );
    assert_eq!(rc_of(&r), 0x184);
}

#[test]
fn self_tests_and_test_parms() {
    let mut t = started();
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::SELF_TEST, &[], None, &[1]))),
        0
    );
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::SELF_TEST, &[], None, &[2]))),
        0x1C4
    );
    let r = t.execute(0, &command_pw(cc::GET_TEST_RESULT, &[], None, &[]));
    assert_eq!(params(&r, 0), &[0, 0, 0, 0, 0, 0]);
    let mut p = 2u32.to_be_bytes().to_vec();
    p.extend([0, 0x0B, 0, 0x06]);
    let r = t.execute(0, &command_pw(cc::INCREMENTAL_SELF_TEST, &[], None, &p));
    assert_eq!(params(&r, 0), &[0, 0, 0, 0]);
    // rsa2048 yes, rsa1024 TPM_RC_VALUE+P1, ecc P-521 TPM_RC_CURVE+P1.
    let rsa = |bits: u16| {
        [
            &[0, 1, 0, 0x10, 0, 0x10][..],
            &bits.to_be_bytes(),
            &[0, 0, 0, 0],
        ]
        .concat()
    };
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::TEST_PARMS, &[], None, &rsa(2048)))),
        0
    );
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::TEST_PARMS, &[], None, &rsa(1024)))),
        0x1C4
    );
    let ecc521 = [0, 0x23, 0, 0x10, 0, 0x10, 0, 5, 0, 0x10];
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::TEST_PARMS, &[], None, &ecc521))),
        0x1E6
    );
}

/// Random and mutated commands never panic and always get a well-formed
/// response (a deterministic miniature of the cargo-fuzz target).
#[test]
fn arbitrary_bytes_get_well_formed_responses() {
    let mut t = started();
    let seeds: Vec<Vec<u8>> = vec![
        command_pw(cc::GET_RANDOM, &[], None, &[0, 8]),
        command_pw(
            cc::PCR_EXTEND,
            &[16],
            Some(&[b""]),
            &[0, 0, 0, 1, 0, 0x0B, 1, 2, 3],
        ),
        command_pw(
            cc::GET_CAPABILITY,
            &[],
            None,
            &[0, 0, 0, 6, 0, 0, 1, 0, 0, 0, 0, 8],
        ),
        command_pw(cc::HASH_SEQUENCE_START, &[], None, &[0, 0, 0, 0x10]),
        command_pw(
            cc::PCR_READ,
            &[],
            None,
            &[0, 0, 0, 1, 0, 0x0B, 3, 0xFF, 0xFF, 0xFF],
        ),
        command_pw(
            cc::TEST_PARMS,
            &[],
            None,
            &[0, 0x23, 0, 0x10, 0, 0x10, 0, 3, 0, 0x10],
        ),
    ];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..200_000 {
        let mut c = seeds[i % seeds.len()].clone();
        let flips = (rnd() % 4) as usize;
        for _ in 0..=flips {
            let at = (rnd() as usize) % c.len();
            c[at] = rnd() as u8;
        }
        if rnd() % 3 == 0 {
            c.truncate((rnd() as usize) % (c.len() + 1));
        }
        let r = t.execute((rnd() % 6) as u8, &c);
        assert!(r.len() >= 10);
        assert_eq!(
            u32::from_be_bytes(r[2..6].try_into().unwrap()) as usize,
            r.len()
        );
        if !t.is_started() {
            assert_eq!(
                rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
                0
            );
        }
    }
}

const OWNERWRITE_OWNERREAD_AUTH: u32 = (1 << 1) | (1 << 17) | (1 << 2) | (1 << 18);

#[test]
fn nv_ordinary_index_define_write_read_undefine() {
    let platform = MemoryPlatform::new();
    let mut t = Tpm::new(Box::new(platform.clone())).unwrap();
    t.power_on();
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0
    );
    let idx = 0x0150_0001u32;
    let mut p = 3u16.to_be_bytes().to_vec();
    p.extend(b"idx");
    p.extend(nv_public(idx, OWNERWRITE_OWNERREAD_AUTH, 32));
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::NV_DEFINE_SPACE, &[RH_OWNER], Some(&[b""]), &p)
        )),
        0
    );
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::NV_DEFINE_SPACE, &[RH_OWNER], Some(&[b""]), &p)
        )),
        0x14C
    );
    // Not written yet.
    let rd = |size: u16, off: u16| [size.to_be_bytes(), off.to_be_bytes()].concat();
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::NV_READ, &[idx, idx], Some(&[b"idx"]), &rd(4, 0))
        )),
        0x14A
    );
    let mut w = 5u16.to_be_bytes().to_vec();
    w.extend(b"hello");
    w.extend(3u16.to_be_bytes());
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::NV_WRITE, &[idx, idx], Some(&[b"idx"]), &w)
        )),
        0
    );
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::NV_WRITE, &[idx, idx], Some(&[b"bad"]), &w)
        )),
        0x98E
    );
    let r = t.execute(
        0,
        &command_pw(cc::NV_READ, &[RH_OWNER, idx], Some(&[b""]), &rd(8, 0)),
    );
    assert_eq!(
        params(&r, 0),
        &[0, 8, 0xFF, 0xFF, 0xFF, b'h', b'e', b'l', b'l', b'o']
    );
    // Range and platform authorization.
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::NV_READ, &[idx, idx], Some(&[b"idx"]), &rd(8, 30))
        )),
        0x146
    );
    let r = t.execute(
        0,
        &command_pw(cc::NV_READ, &[RH_PLATFORM, idx], Some(&[b""]), &rd(1, 0)),
    );
    assert_eq!(rc_of(&r), 0x149);
    // Public area and Name = nameAlg || SHA-256(TPMS_NV_PUBLIC).
    let r = t.execute(0, &command_pw(cc::NV_READ_PUBLIC, &[idx], None, &[]));
    let out = params(&r, 0);
    let public = &out[2..2 + u16::from_be_bytes([out[0], out[1]]) as usize];
    let written = OWNERWRITE_OWNERREAD_AUTH | (1 << 29);
    assert_eq!(&public[6..10], &written.to_be_bytes());
    let name = &out[2 + public.len() + 2..];
    assert_eq!(&name[..2], &[0, 0x0B]);
    assert_eq!(&name[2..], sha256(&[public]).as_slice());
    // The index lives in NV: a new engine on the same NV reads it back.
    drop(t);
    let mut t = Tpm::new(Box::new(platform.clone())).unwrap();
    t.power_on();
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0
    );
    let r = t.execute(
        0,
        &command_pw(cc::NV_READ, &[idx, idx], Some(&[b"idx"]), &rd(5, 3)),
    );
    assert_eq!(params(&r, 0), &[0, 5, b'h', b'e', b'l', b'l', b'o']);
    let (_, data) = get_cap(&mut t, 1, 0x0100_0000, 10);
    assert_eq!(data, [&[0, 0, 0, 1][..], &idx.to_be_bytes()].concat());
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::NV_UNDEFINE_SPACE, &[RH_OWNER, idx], Some(&[b""]), &[])
        )),
        0
    );
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::NV_READ_PUBLIC, &[idx], None, &[]))),
        0x18B
    );
    // Bad definitions: no read/write authorization, platformcreate from owner.
    let mut p = 0u16.to_be_bytes().to_vec();
    p.extend(nv_public(idx, 1 << 1, 8));
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::NV_DEFINE_SPACE, &[RH_OWNER], Some(&[b""]), &p)
        )),
        0x2C2
    );
    let mut p = 0u16.to_be_bytes().to_vec();
    p.extend(nv_public(idx, OWNERWRITE_OWNERREAD_AUTH | (1 << 30), 8));
    // TPM_RC_ATTRIBUTES blamed on authHandle (the creator could not delete
    // it).
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::NV_DEFINE_SPACE, &[RH_OWNER], Some(&[b""]), &p)
        )),
        0x182
    );
    let mut p = 0u16.to_be_bytes().to_vec();
    p.extend(nv_public(0x0200_0000, OWNERWRITE_OWNERREAD_AUTH, 8));
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::NV_DEFINE_SPACE, &[RH_OWNER], Some(&[b""]), &p)
        )),
        0x2C4
    );
}

#[test]
fn hierarchy_change_auth_persists() {
    let platform = MemoryPlatform::new();
    let mut t = Tpm::new(Box::new(platform.clone())).unwrap();
    t.power_on();
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0
    );
    let mut p = 5u16.to_be_bytes().to_vec();
    p.extend(b"owner");
    let c = command_pw(cc::HIERARCHY_CHANGE_AUTH, &[RH_OWNER], Some(&[b""]), &p);
    assert_eq!(rc_of(&t.execute(0, &c)), 0);
    assert_eq!(
        rc_of(&t.execute(0, &c)),
        0x9A2,
        "old password no longer works"
    );
    drop(t);
    let mut t = Tpm::new(Box::new(platform)).unwrap();
    t.power_on();
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0
    );
    let p = 0u16.to_be_bytes().to_vec();
    let c = command_pw(
        cc::HIERARCHY_CHANGE_AUTH,
        &[RH_OWNER],
        Some(&[b"owner"]),
        &p,
    );
    assert_eq!(rc_of(&t.execute(0, &c)), 0);
}

/// An unbound, unsalted SHA-256 HMAC session.
fn start_hmac_session(t: &mut Tpm) -> u32 {
    let (h, nonce_tpm) = start_auth_session(t, 0x00);
    assert_eq!(nonce_tpm.len(), 32, "nonceTPM has the digest size");
    h
}

#[test]
fn context_save_and_load_of_sequences_and_sessions() {
    let mut t = started();
    // A hash sequence survives save → flush → load with its state.
    let mut p = 0u16.to_be_bytes().to_vec();
    p.extend(0x000Bu16.to_be_bytes());
    let r = t.execute(0, &command_pw(cc::HASH_SEQUENCE_START, &[], None, &p));
    let h = u32::from_be_bytes(r[10..14].try_into().unwrap());
    let mut upd = 2u16.to_be_bytes().to_vec();
    upd.extend(b"ab");
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::SEQUENCE_UPDATE, &[h], Some(&[b""]), &upd)
        )),
        0
    );
    let r = t.execute(0, &command_pw(cc::CONTEXT_SAVE, &[h], None, &[]));
    let context = params(&r, 0).to_vec();
    assert_eq!(
        &context[8..12],
        &0x8000_0001u32.to_be_bytes(),
        "savedHandle of a sequence"
    );
    assert_eq!(&context[12..16], &RH_NULL.to_be_bytes());
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::FLUSH_CONTEXT, &[], None, &h.to_be_bytes())
        )),
        0
    );
    let r = t.execute(0, &command_pw(cc::CONTEXT_LOAD, &[], None, &context));
    assert_eq!(rc_of(&r), 0);
    let h2 = u32::from_be_bytes(r[10..14].try_into().unwrap());
    let mut fin = 1u16.to_be_bytes().to_vec();
    fin.extend(b"c");
    fin.extend(RH_NULL.to_be_bytes());
    let r = t.execute(
        0,
        &command_pw(cc::SEQUENCE_COMPLETE, &[h2], Some(&[b""]), &fin),
    );
    assert_eq!(
        hex(&params(&r, 0)[2..34]),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // A modified blob is refused: TPM_RC_INTEGRITY + P1.
    let mut bad = context.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::CONTEXT_LOAD, &[], None, &bad))),
        0x1DF
    );
    let mut bad = context.clone();
    bad[7] ^= 1; // another sequence number
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::CONTEXT_LOAD, &[], None, &bad))),
        0x1DF
    );

    // A session: saved, it is not loaded; loaded again, it keeps its handle;
    // the same context cannot be loaded twice.
    let s = start_hmac_session(&mut t);
    assert_eq!(s >> 24, 0x02);
    let r = t.execute(0, &command_pw(cc::CONTEXT_SAVE, &[s], None, &[]));
    let sctx = params(&r, 0).to_vec();
    assert_eq!(&sctx[8..12], &s.to_be_bytes());
    let (_, data) = get_cap(&mut t, 1, 0x0300_0000, 10);
    assert_eq!(
        data,
        [&[0, 0, 0, 1][..], &s.to_be_bytes()].concat(),
        "listed as saved"
    );
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::CONTEXT_SAVE, &[s], None, &[]))),
        0x910
    );
    let r = t.execute(0, &command_pw(cc::CONTEXT_LOAD, &[], None, &sctx));
    assert_eq!(rc_of(&r), 0);
    assert_eq!(&r[10..14], &s.to_be_bytes());
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::CONTEXT_LOAD, &[], None, &sctx))),
        0x1CB
    );
    let (_, data) = get_cap(&mut t, 1, 0x0200_0000, 10);
    assert_eq!(
        data,
        [&[0, 0, 0, 1][..], &s.to_be_bytes()].concat(),
        "listed as loaded"
    );
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::FLUSH_CONTEXT, &[], None, &s.to_be_bytes())
        )),
        0
    );
    // Contexts die with a TPM Reset.
    t.tpm_init();
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0
    );
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::CONTEXT_LOAD, &[], None, &context))),
        0x1DF
    );
}

#[test]
fn loaded_session_limit() {
    let mut t = started();
    let handles: Vec<u32> = (0..3).map(|_| start_hmac_session(&mut t)).collect();
    let mut p = 16u16.to_be_bytes().to_vec();
    p.extend([7u8; 16]);
    p.extend([0, 0, 0x00, 0x00, 0x10, 0x00, 0x0B]);
    let r = t.execute(
        0,
        &command_pw(cc::START_AUTH_SESSION, &[RH_NULL, RH_NULL], None, &p),
    );
    assert_eq!(rc_of(&r), 0x903, "TPM_RC_SESSION_MEMORY");
    // Saving one frees a loaded slot.
    let r = t.execute(0, &command_pw(cc::CONTEXT_SAVE, &[handles[0]], None, &[]));
    assert_eq!(rc_of(&r), 0);
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::START_AUTH_SESSION, &[RH_NULL, RH_NULL], None, &p)
        )),
        0
    );
    // nonceCaller shorter than 16 octets: TPM_RC_SIZE + P1.
    let mut short = 8u16.to_be_bytes().to_vec();
    short.extend([7u8; 8]);
    short.extend([0, 0, 0x00, 0x00, 0x10, 0x00, 0x0B]);
    t.execute(
        0,
        &command_pw(cc::FLUSH_CONTEXT, &[], None, &handles[1].to_be_bytes()),
    );
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::START_AUTH_SESSION, &[RH_NULL, RH_NULL], None, &short)
        )),
        0x1D5
    );
}

#[test]
fn volatile_and_permanent_state_migrate() {
    let mut a = started();
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend(0x000Bu16.to_be_bytes());
    p.extend([3u8; 32]);
    assert_eq!(
        rc_of(&a.execute(0, &command_pw(cc::PCR_EXTEND, &[16], Some(&[b""]), &p))),
        0
    );
    let session = start_hmac_session(&mut a);
    let mut p = 0u16.to_be_bytes().to_vec();
    p.extend(0x000Bu16.to_be_bytes());
    let r = a.execute(0, &command_pw(cc::HASH_SEQUENCE_START, &[], None, &p));
    let seq = u32::from_be_bytes(r[10..14].try_into().unwrap());
    let mut upd = 2u16.to_be_bytes().to_vec();
    upd.extend(b"ab");
    assert_eq!(
        rc_of(&a.execute(
            0,
            &command_pw(cc::SEQUENCE_UPDATE, &[seq], Some(&[b""]), &upd)
        )),
        0
    );
    let pcr16 = pcr_read(&mut a, 0x000B, 16);
    let permanent = a.permanent_state();
    let volatile = a.volatile_state();

    // A second TPM on another platform takes both.
    let mut b = Tpm::new(Box::new(MemoryPlatform::new())).unwrap();
    b.set_permanent_state(&permanent).unwrap();
    b.set_volatile_state(&volatile).unwrap();
    assert!(b.is_started());
    assert_eq!(
        rc_of(&b.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0x100,
        "already started"
    );
    assert_eq!(pcr_read(&mut b, 0x000B, 16), pcr16);
    let (_, data) = get_cap(&mut b, 1, 0x0200_0000, 10);
    assert_eq!(data, [&[0, 0, 0, 1][..], &session.to_be_bytes()].concat());
    let mut fin = 1u16.to_be_bytes().to_vec();
    fin.extend(b"c");
    fin.extend(RH_NULL.to_be_bytes());
    let r = b.execute(
        0,
        &command_pw(cc::SEQUENCE_COMPLETE, &[seq], Some(&[b""]), &fin),
    );
    assert_eq!(
        hex(&params(&r, 0)[2..34]),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // Garbage is refused and changes nothing.
    assert!(
        b.set_volatile_state(&volatile[..volatile.len() - 1])
            .is_err()
    );
    assert!(b.set_volatile_state(b"VTVS\x00\x09").is_err());
    assert!(b.set_permanent_state(b"nope").is_err());
    assert_eq!(pcr_read(&mut b, 0x000B, 16), pcr16);

    // STORE_VOLATILE: kept in NV, restored once after a new power-on.
    let platform = MemoryPlatform::new();
    let mut c = Tpm::new(Box::new(platform.clone())).unwrap();
    c.power_on();
    assert_eq!(
        rc_of(&c.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0
    );
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend(0x000Bu16.to_be_bytes());
    p.extend([4u8; 32]);
    assert_eq!(
        rc_of(&c.execute(0, &command_pw(cc::PCR_EXTEND, &[16], Some(&[b""]), &p))),
        0
    );
    let before = pcr_read(&mut c, 0x000B, 16);
    c.store_volatile().unwrap();
    drop(c);
    let mut c = Tpm::new(Box::new(platform.clone())).unwrap();
    c.power_on();
    assert!(c.restore_stored_volatile(false).unwrap());
    assert_eq!(pcr_read(&mut c, 0x000B, 16), before);
    drop(c);
    let mut c = Tpm::new(Box::new(platform)).unwrap();
    c.power_on();
    assert!(!c.restore_stored_volatile(false).unwrap(), "used once");
}

#[test]
fn hierarchy_control_enables_and_disables() {
    const HIERARCHY_CONTROL: u32 = 0x121;
    let mut t = started();
    let ctl = |enable: u32, state: u8| [&enable.to_be_bytes()[..], &[state]].concat();
    // The owner may disable itself but not enable itself again.
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(
                HIERARCHY_CONTROL,
                &[RH_OWNER],
                Some(&[b""]),
                &ctl(RH_OWNER, 0)
            )
        )),
        0
    );
    let mut p = 0u16.to_be_bytes().to_vec();
    p.extend(nv_public(0x0150_0002, OWNERWRITE_OWNERREAD_AUTH, 8));
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::NV_DEFINE_SPACE, &[RH_OWNER], Some(&[b""]), &p)
        )),
        0x185
    );
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(
                HIERARCHY_CONTROL,
                &[RH_ENDORSEMENT],
                Some(&[b""]),
                &ctl(RH_OWNER, 1)
            )
        )),
        0x124
    );
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(
                HIERARCHY_CONTROL,
                &[RH_PLATFORM],
                Some(&[b""]),
                &ctl(RH_OWNER, 1)
            )
        )),
        0
    );
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::NV_DEFINE_SPACE, &[RH_OWNER], Some(&[b""]), &p)
        )),
        0
    );
    // The platform disables itself: gone until the next Startup(CLEAR).
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(
                HIERARCHY_CONTROL,
                &[RH_PLATFORM],
                Some(&[b""]),
                &ctl(RH_PLATFORM, 0)
            )
        )),
        0
    );
    let alloc = [&1u32.to_be_bytes()[..], &sel(0x000B, &[0])].concat();
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(cc::PCR_ALLOCATE, &[RH_PLATFORM], Some(&[b""]), &alloc)
        )),
        0x185
    );
    t.tpm_init();
    assert_eq!(
        rc_of(&t.execute(0, &command_pw(cc::STARTUP, &[], None, &[0, 0]))),
        0
    );
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(
                HIERARCHY_CONTROL,
                &[RH_OWNER],
                Some(&[b""]),
                &ctl(RH_PLATFORM_NV, 0)
            )
        )),
        0x124
    );
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_pw(
                HIERARCHY_CONTROL,
                &[RH_OWNER],
                Some(&[b""]),
                &ctl(0x4000_0009, 0)
            )
        )),
        0x1C4
    );
}
