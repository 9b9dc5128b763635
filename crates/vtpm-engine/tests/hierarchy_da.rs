//! Hierarchy commands (Part 3 chapter 24: Clear, ClearControl,
//! SetPrimaryPolicy, ChangePPS, ChangeEPS, HierarchyControl's flush) and
//! dictionary-attack protection (Part 1 §19.8, Part 3 chapter 25) through
//! the engine's entry point, with commands built by hand from Part 3's
//! tables and response codes from Part 2. Time is moved with
//! `MemoryPlatform::advance_ms`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use vtpm_engine::{MemoryPlatform, Tpm};

mod common;
use common::nv_attr::*;
use common::*;

/// Response codes (Part 2 §6.6), with the positions these tests see (in
/// this file, in place of `common::rc`).
mod rc {
    /// TPM_RC_AUTH_FAIL, session 1.
    pub const AUTH_FAIL_S1: u32 = 0x98E;
    /// TPM_RC_BAD_AUTH, session 1.
    pub const BAD_AUTH_S1: u32 = 0x9A2;
    /// TPM_RC_AUTH_FAIL without a position.
    pub const AUTH_FAIL: u32 = 0x08E;
    /// TPM_RC_LOCKOUT (a warning).
    pub const LOCKOUT: u32 = 0x921;
    /// TPM_RC_DISABLED.
    pub const DISABLED: u32 = 0x120;
    /// TPM_RC_SIZE, parameter 1.
    pub const SIZE_P1: u32 = 0x1D5;
    /// TPM_RC_HASH, parameter 2.
    pub const HASH_P2: u32 = 0x2C3;
    /// TPM_RC_VALUE, handle 1.
    pub const VALUE_H1: u32 = 0x184;
    /// TPM_RC_POLICY_FAIL, session 1.
    pub const POLICY_FAIL_S1: u32 = 0x99D;
    /// TPM_RC_REFERENCE_H0.
    pub const REFERENCE_H0: u32 = 0x910;
    /// TPM_RC_HANDLE, handle 1.
    pub const HANDLE_H1: u32 = 0x18B;
}

/// TPM_PT values.
const PT_PERMANENT: u32 = 0x200;
const PT_LOCKOUT_COUNTER: u32 = 0x20E;
const PT_MAX_AUTH_FAIL: u32 = 0x20F;
const PT_LOCKOUT_INTERVAL: u32 = 0x210;
const PT_LOCKOUT_RECOVERY: u32 = 0x211;

/// The authorization of a policy session `h`: nonceCaller 16 × 0x5A, an
/// empty HMAC.
fn policy_auth(h: u32) -> Vec<u8> {
    auth(h, &[0x5A; 16], 0x01, &[])
}

/// A TPM on `platform` (shared: its clock and NV), powered and started.
fn started_on(platform: &MemoryPlatform) -> Tpm {
    let mut t = Tpm::new(Box::new(platform.clone())).unwrap();
    t.power_on();
    startup(&mut t, 0);
    t
}

fn startup(t: &mut Tpm, su: u16) {
    assert_eq!(
        rc_of(&t.execute(
            0,
            &command_passwords(cc::STARTUP, &[], &[], &su.to_be_bytes())
        )),
        0
    );
}

fn exec(t: &mut Tpm, cmd: &[u8]) -> u32 {
    rc_of(&t.execute(0, cmd))
}

/// TPM properties from TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES).
fn property(t: &mut Tpm, pt: u32) -> u32 {
    let mut p = 6u32.to_be_bytes().to_vec();
    p.extend(pt.to_be_bytes());
    p.extend(1u32.to_be_bytes());
    let out = params(
        &t.execute(0, &command_passwords(cc::GET_CAPABILITY, &[], &[], &p)),
        0,
    );
    // moreData(1) capability(4) count(4) property(4) value(4)
    assert_eq!(&out[9..13], &pt.to_be_bytes(), "property {pt:#x} reported");
    u32::from_be_bytes(out[13..17].try_into().unwrap())
}

fn in_lockout(t: &mut Tpm) -> bool {
    property(t, PT_PERMANENT) & (1 << 9) != 0
}

fn da_parameters(t: &mut Tpm, lockout_pw: &[u8], max: u32, recovery: u32, lockout: u32) -> u32 {
    let p = [
        max.to_be_bytes(),
        recovery.to_be_bytes(),
        lockout.to_be_bytes(),
    ]
    .concat();
    exec(
        t,
        &command_passwords(cc::DA_PARAMETERS, &[RH_LOCKOUT], &[lockout_pw], &p),
    )
}

fn da_lock_reset(t: &mut Tpm, lockout_pw: &[u8]) -> u32 {
    exec(
        t,
        &command_passwords(cc::DA_LOCK_RESET, &[RH_LOCKOUT], &[lockout_pw], &[]),
    )
}

/// Defines an 8-byte index with authValue `auth` (owner or platform
/// authorizes) and writes it through its own authValue.
fn define_index(t: &mut Tpm, by: u32, index: u32, attrs: u32, auth: &[u8]) {
    let mut p = (auth.len() as u16).to_be_bytes().to_vec();
    p.extend(auth);
    p.extend(nv_public(index, attrs, 8));
    assert_eq!(
        exec(
            t,
            &command_passwords(cc::NV_DEFINE_SPACE, &[by], &[b""], &p)
        ),
        0
    );
}

/// TPM2_NV_Read of the whole 8-byte index with its own authValue.
fn nv_read(t: &mut Tpm, index: u32, password: &[u8]) -> u32 {
    let p = [8u16.to_be_bytes(), 0u16.to_be_bytes()].concat();
    exec(
        t,
        &command_passwords(cc::NV_READ, &[index, index], &[password], &p),
    )
}

fn nv_write(t: &mut Tpm, index: u32, password: &[u8]) -> u32 {
    let mut p = 8u16.to_be_bytes().to_vec();
    p.extend(*b"vtpm-da!");
    p.extend(0u16.to_be_bytes());
    exec(
        t,
        &command_passwords(cc::NV_WRITE, &[index, index], &[password], &p),
    )
}

/// A DA-protected index 0x01500020 with authValue "pw", written once.
const DA_INDEX: u32 = 0x0150_0020;

fn da_index(t: &mut Tpm) {
    define_index(t, RH_OWNER, DA_INDEX, AUTHWRITE | AUTHREAD, b"pw");
    assert_eq!(nv_write(t, DA_INDEX, b"pw"), 0);
}

/// An ECC P-256 signing key template (TPMT_PUBLIC), with or without
/// noDA.
fn signing_template(no_da: bool) -> Vec<u8> {
    let mut attrs = attr::BASE | attr::SIGN;
    if no_da {
        attrs |= attr::NO_DA;
    }
    ecc_template(attrs, &scheme(alg::NULL, 0))
}

/// TPM2_CreatePrimary of the ECC template in `hierarchy` with userAuth
/// `auth`: (handle, TPM2B_PUBLIC bytes).
fn create_primary(t: &mut Tpm, hierarchy: u32, auth: &[u8], no_da: bool) -> (u32, Vec<u8>) {
    let c = create_primary_in(t, hierarchy, b"", auth, &[], &signing_template(no_da));
    (c.handle, tpm2b(&c.public))
}

fn hierarchy_change_auth(t: &mut Tpm, h: u32, old: &[u8], new: &[u8]) -> u32 {
    let mut p = (new.len() as u16).to_be_bytes().to_vec();
    p.extend(new);
    exec(
        t,
        &command_passwords(cc::HIERARCHY_CHANGE_AUTH, &[h], &[old], &p),
    )
}

/// Starts an unbound, unsalted policy session (SHA-256): its
/// policyDigest is 32 zero bytes (Part 1 §19.7).
fn start_policy_session(t: &mut Tpm) -> u32 {
    start_auth_session(t, 0x01).0
}

/// TPM2_NV_DefineSpace of an 8-byte index authorized by `by` (owner or
/// platform) with a fresh policy session, flushed afterwards.
fn define_with_policy(t: &mut Tpm, by: u32, index: u32) -> u32 {
    let s = start_policy_session(t);
    let attrs = if by == RH_OWNER {
        OWNERWRITE | OWNERREAD
    } else {
        PLATFORMCREATE | PPWRITE | PPREAD
    };
    let mut p = 0u16.to_be_bytes().to_vec();
    p.extend(nv_public(index, attrs, 8));
    let r = exec(
        t,
        &command_auths(cc::NV_DEFINE_SPACE, &[by], &[policy_auth(s)], &p),
    );
    flush(t, s);
    r
}

fn set_primary_policy(t: &mut Tpm, h: u32, auth: &[u8], policy: &[u8], alg: u16) -> u32 {
    let mut p = (policy.len() as u16).to_be_bytes().to_vec();
    p.extend(policy);
    p.extend(alg.to_be_bytes());
    exec(
        t,
        &command_passwords(cc::SET_PRIMARY_POLICY, &[h], &[auth], &p),
    )
}

// -- dictionary-attack protection -------------------------------------------

#[test]
fn failures_count_until_lockout_and_lock_reset_ends_it() {
    let platform = MemoryPlatform::new();
    let mut t = started_on(&platform);
    assert_eq!(da_parameters(&mut t, b"", 3, 10, 20), 0);
    assert_eq!(property(&mut t, PT_MAX_AUTH_FAIL), 3);
    assert_eq!(property(&mut t, PT_LOCKOUT_INTERVAL), 10);
    assert_eq!(property(&mut t, PT_LOCKOUT_RECOVERY), 20);
    da_index(&mut t);
    for n in 1..=3 {
        assert_eq!(nv_read(&mut t, DA_INDEX, b"wrong"), rc::AUTH_FAIL_S1);
        assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), n);
    }
    assert!(in_lockout(&mut t));
    // Locked out: even the right password is refused before it is looked
    // at, and a wrong one is not counted.
    assert_eq!(nv_read(&mut t, DA_INDEX, b"pw"), rc::LOCKOUT);
    assert_eq!(nv_read(&mut t, DA_INDEX, b"wrong"), rc::LOCKOUT);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 3);
    // The counter is in NV: a TPM restarted from it is still locked out.
    drop(t);
    let mut t = Tpm::new(Box::new(platform.clone())).unwrap();
    t.power_on();
    startup(&mut t, 0);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 3);
    assert_eq!(nv_read(&mut t, DA_INDEX, b"pw"), rc::LOCKOUT);
    // Exempt entities are not locked out: the owner's password still works.
    define_index(&mut t, RH_OWNER, 0x0150_0021, OWNERWRITE | OWNERREAD, b"");
    // lockoutAuth is not subject to the counter.
    assert_eq!(da_lock_reset(&mut t, b""), 0);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 0);
    assert!(!in_lockout(&mut t));
    assert_eq!(nv_read(&mut t, DA_INDEX, b"pw"), 0);
    // A successful authorization does not reset the counter.
    assert_eq!(nv_read(&mut t, DA_INDEX, b"wrong"), rc::AUTH_FAIL_S1);
    assert_eq!(nv_read(&mut t, DA_INDEX, b"pw"), 0);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 1);
}

#[test]
fn exempt_entities_answer_bad_auth_and_are_never_locked_out() {
    let mut t = started_on(&MemoryPlatform::new());
    assert_eq!(da_parameters(&mut t, b"", 1, 10, 20), 0);
    define_index(
        &mut t,
        RH_OWNER,
        0x0150_0030,
        AUTHWRITE | AUTHREAD | NO_DA,
        b"pw",
    );
    assert_eq!(nv_write(&mut t, 0x0150_0030, b"pw"), 0);
    for _ in 0..3 {
        assert_eq!(nv_read(&mut t, 0x0150_0030, b"wrong"), rc::BAD_AUTH_S1);
    }
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 0);
    // The owner hierarchy is exempt too.
    assert_eq!(
        hierarchy_change_auth(&mut t, RH_OWNER, b"wrong", b""),
        rc::BAD_AUTH_S1
    );
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 0);
    // In lockout, exempt entities still work.
    da_index(&mut t);
    assert_eq!(nv_read(&mut t, DA_INDEX, b"wrong"), rc::AUTH_FAIL_S1);
    assert!(in_lockout(&mut t));
    assert_eq!(nv_read(&mut t, 0x0150_0030, b"pw"), 0);
    // An object with noDA: BAD_AUTH; without: counted.
    assert_eq!(da_lock_reset(&mut t, b""), 0);
    let (exempt, _) = create_primary(&mut t, RH_OWNER, b"key", true);
    let (protected, _) = create_primary(&mut t, RH_OWNER, b"key", false);
    // TPM2_Create under each key needs the key's USER authorization.
    let create_under = |t: &mut Tpm, h: u32, pw: &[u8]| {
        let mut p = 4u16.to_be_bytes().to_vec();
        p.extend(0u16.to_be_bytes());
        p.extend(0u16.to_be_bytes());
        p.extend(tpm2b(&signing_template(true)));
        p.extend(0u16.to_be_bytes());
        p.extend(0u32.to_be_bytes());
        exec(t, &command_passwords(cc::CREATE, &[h], &[pw], &p))
    };
    assert_eq!(create_under(&mut t, exempt, b"wrong"), rc::BAD_AUTH_S1);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 0);
    assert_eq!(create_under(&mut t, protected, b"wrong"), rc::AUTH_FAIL_S1);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 1);
    assert_eq!(create_under(&mut t, protected, b"key"), rc::LOCKOUT);
}

#[test]
fn self_healing_forgets_one_failure_per_recovery_time() {
    let platform = MemoryPlatform::new();
    let mut t = started_on(&platform);
    assert_eq!(da_parameters(&mut t, b"", 5, 2, 20), 0);
    da_index(&mut t);
    for _ in 0..3 {
        assert_eq!(nv_read(&mut t, DA_INDEX, b"wrong"), rc::AUTH_FAIL_S1);
    }
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 3);
    // Counted from the last failure: 1.5 s is not enough, 2 s is.
    platform.advance_ms(1500);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 3);
    platform.advance_ms(500);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 2);
    // Two more intervals, with time to spare: two more forgotten, the
    // remainder carried.
    platform.advance_ms(4500);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 0);
    // A lockout ends by itself too.
    assert_eq!(da_parameters(&mut t, b"", 2, 2, 20), 0);
    for _ in 0..2 {
        assert_eq!(nv_read(&mut t, DA_INDEX, b"wrong"), rc::AUTH_FAIL_S1);
    }
    assert_eq!(nv_read(&mut t, DA_INDEX, b"pw"), rc::LOCKOUT);
    platform.advance_ms(2000);
    assert_eq!(nv_read(&mut t, DA_INDEX, b"pw"), 0);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 1);
}

#[test]
fn recovery_time_zero_disables_counting() {
    let mut t = started_on(&MemoryPlatform::new());
    da_index(&mut t);
    assert_eq!(nv_read(&mut t, DA_INDEX, b"wrong"), rc::AUTH_FAIL_S1);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 1);
    assert_eq!(da_parameters(&mut t, b"", 1, 0, 20), 0);
    // The failure counted before is forgotten at once, and new ones are
    // not counted (they still answer TPM_RC_AUTH_FAIL).
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 0);
    for _ in 0..3 {
        assert_eq!(nv_read(&mut t, DA_INDEX, b"wrong"), rc::AUTH_FAIL_S1);
    }
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 0);
    assert_eq!(nv_read(&mut t, DA_INDEX, b"pw"), 0);
}

#[test]
fn max_tries_below_the_counter_locks_out_at_once() {
    let mut t = started_on(&MemoryPlatform::new());
    da_index(&mut t);
    assert_eq!(nv_read(&mut t, DA_INDEX, b"wrong"), rc::AUTH_FAIL_S1);
    // TPM2_DictionaryAttackParameters keeps failedTries.
    assert_eq!(da_parameters(&mut t, b"", 1, 1000, 1000), 0);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 1);
    assert_eq!(nv_read(&mut t, DA_INDEX, b"pw"), rc::LOCKOUT);
    assert_eq!(da_parameters(&mut t, b"", 0, 1000, 1000), 0);
    assert_eq!(da_lock_reset(&mut t, b""), 0);
    // maxTries 0: always in lockout.
    assert!(in_lockout(&mut t));
    assert_eq!(nv_read(&mut t, DA_INDEX, b"pw"), rc::LOCKOUT);
}

#[test]
fn lockout_auth_failure_locks_lockout_auth_for_lockout_recovery() {
    let platform = MemoryPlatform::new();
    let mut t = started_on(&platform);
    assert_eq!(hierarchy_change_auth(&mut t, RH_LOCKOUT, b"", b"lockpw"), 0);
    assert_eq!(da_parameters(&mut t, b"lockpw", 3, 10, 5), 0);
    assert_eq!(da_lock_reset(&mut t, b"nope"), rc::AUTH_FAIL_S1);
    // lockoutAuth failures are not counted in failedTries ...
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 0);
    // ... but lock lockoutAuth itself, the right password included.
    assert_eq!(da_lock_reset(&mut t, b"lockpw"), rc::LOCKOUT);
    assert_eq!(da_lock_reset(&mut t, b"nope"), rc::LOCKOUT);
    // Other DA-protected entities are unaffected.
    da_index(&mut t);
    assert_eq!(nv_read(&mut t, DA_INDEX, b"pw"), 0);
    // A power cycle does not help: the time must run while powered.
    t.power_off();
    platform.advance_ms(60_000);
    t.power_on();
    startup(&mut t, 0);
    assert_eq!(da_lock_reset(&mut t, b"lockpw"), rc::LOCKOUT);
    platform.advance_ms(4_500);
    assert_eq!(da_lock_reset(&mut t, b"lockpw"), rc::LOCKOUT);
    platform.advance_ms(500);
    assert_eq!(da_lock_reset(&mut t, b"lockpw"), 0);
    // A success does not lock anything.
    assert_eq!(da_lock_reset(&mut t, b"lockpw"), 0);
}

#[test]
fn lockout_recovery_zero_needs_a_startup() {
    let platform = MemoryPlatform::new();
    let mut t = started_on(&platform);
    assert_eq!(da_parameters(&mut t, b"", 3, 10, 0), 0);
    assert_eq!(da_lock_reset(&mut t, b"nope"), rc::AUTH_FAIL_S1);
    platform.advance_ms(3_600_000);
    assert_eq!(da_lock_reset(&mut t, b""), rc::LOCKOUT);
    t.tpm_init();
    startup(&mut t, 0);
    assert_eq!(da_lock_reset(&mut t, b""), 0);
}

#[test]
fn disorderly_shutdown_after_da_use_counts_a_failure() {
    let platform = MemoryPlatform::new();
    let mut t = started_on(&platform);
    assert_eq!(da_parameters(&mut t, b"", 5, 1000, 1000), 0);
    da_index(&mut t);
    // A DA-protected entity was used; power is lost without Shutdown.
    t.tpm_init();
    startup(&mut t, 0);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 1);
    // No DA-protected use this cycle: nothing counted.
    t.tpm_init();
    startup(&mut t, 0);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 1);
    // Used, then an orderly shutdown: nothing counted.
    assert_eq!(nv_read(&mut t, DA_INDEX, b"pw"), 0);
    assert_eq!(
        exec(&mut t, &command_passwords(cc::SHUTDOWN, &[], &[], &[0, 0])),
        0
    );
    t.tpm_init();
    startup(&mut t, 0);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 1);
    // Used and power lost: counted, also across a new engine on the NV.
    assert_eq!(nv_read(&mut t, DA_INDEX, b"pw"), 0);
    drop(t);
    let mut t = started_on(&platform);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 2);
}

#[test]
fn hmac_session_failures_are_counted() {
    let mut t = started_on(&MemoryPlatform::new());
    da_index(&mut t);
    // An unbound HMAC session with a garbage HMAC.
    let mut p = 16u16.to_be_bytes().to_vec();
    p.extend([7u8; 16]);
    p.extend(0u16.to_be_bytes());
    p.push(0x00); // TPM_SE_HMAC
    p.extend(0x0010u16.to_be_bytes());
    p.extend(0x000Bu16.to_be_bytes());
    let r = t.execute(
        0,
        &command_passwords(cc::START_AUTH_SESSION, &[RH_NULL, RH_NULL], &[], &p),
    );
    let session = u32::from_be_bytes(r[10..14].try_into().unwrap());
    let mut cmd = Vec::new();
    for h in [DA_INDEX, DA_INDEX] {
        cmd.extend(h.to_be_bytes());
    }
    let mut area = session.to_be_bytes().to_vec();
    area.extend(16u16.to_be_bytes());
    area.extend([9u8; 16]);
    area.push(0x01);
    area.extend(32u16.to_be_bytes());
    area.extend([0xEE; 32]);
    cmd.extend((area.len() as u32).to_be_bytes());
    cmd.extend(area);
    cmd.extend([0, 8, 0, 0]);
    let mut full = SESSIONS.to_be_bytes().to_vec();
    full.extend(((10 + cmd.len()) as u32).to_be_bytes());
    full.extend(cc::NV_READ.to_be_bytes());
    full.extend(cmd);
    assert_eq!(exec(&mut t, &full), rc::AUTH_FAIL_S1);
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 1);
}

// -- TPM2_Clear, TPM2_ClearControl ------------------------------------------

#[test]
fn clear_resets_the_owner_but_keeps_the_endorsement_seed() {
    let platform = MemoryPlatform::new();
    let mut t = started_on(&platform);
    let (_, owner_before) = create_primary(&mut t, RH_OWNER, b"", true);
    let (_, endorsement_before) = create_primary(&mut t, RH_ENDORSEMENT, b"", true);
    let (_, platform_before) = create_primary(&mut t, RH_PLATFORM, b"", true);
    let (key, _) = create_primary(&mut t, RH_OWNER, b"", true);
    let evict = [0x8100_0001u32.to_be_bytes()].concat();
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::EVICT_CONTROL, &[RH_OWNER, key], &[b""], &evict)
        ),
        0
    );
    // Owner state: auths, a policy, DA parameters, a persistent object,
    // owner and platform NV indices.
    assert_eq!(hierarchy_change_auth(&mut t, RH_OWNER, b"", b"own"), 0);
    assert_eq!(
        hierarchy_change_auth(&mut t, RH_ENDORSEMENT, b"", b"end"),
        0
    );
    // ownerPolicy: the digest of a fresh policy session.
    assert_eq!(
        set_primary_policy(&mut t, RH_OWNER, b"own", &[0; 32], 0x000B),
        0
    );
    assert_eq!(define_with_policy(&mut t, RH_OWNER, 0x0150_0041), 0);
    assert_eq!(hierarchy_change_auth(&mut t, RH_LOCKOUT, b"", b"lk"), 0);
    assert_eq!(da_parameters(&mut t, b"lk", 7, 8, 9), 0);
    let mut p = 0u16.to_be_bytes().to_vec();
    p.extend(nv_public(0x0150_0040, OWNERWRITE | OWNERREAD, 8));
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::NV_DEFINE_SPACE, &[RH_OWNER], &[b"own"], &p)
        ),
        0
    );
    define_index(
        &mut t,
        RH_PLATFORM,
        0x0140_0040,
        PLATFORMCREATE | PPWRITE | PPREAD,
        b"",
    );
    da_index_with_owner(&mut t, b"own");
    assert_eq!(nv_read(&mut t, DA_INDEX, b"wrong"), rc::AUTH_FAIL_S1);
    let pcr_counter_before = pcr_update_counter(&mut t);
    // ownerAuthSet, endorsementAuthSet, lockoutAuthSet.
    assert_eq!(property(&mut t, PT_PERMANENT) & 0x307, 0x007);

    platform.advance_ms(5000);
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::CLEAR, &[RH_LOCKOUT], &[b"lk"], &[])
        ),
        0
    );

    let (_, owner_after) = create_primary(&mut t, RH_OWNER, b"", true);
    let (_, endorsement_after) = create_primary(&mut t, RH_ENDORSEMENT, b"", true);
    let (_, platform_after) = create_primary(&mut t, RH_PLATFORM, b"", true);
    assert_ne!(owner_before, owner_after, "SPS changed");
    assert_eq!(endorsement_before, endorsement_after, "EPS kept");
    assert_eq!(platform_before, platform_after, "PPS kept");
    // Auths are empty (the owner accepts "" and refuses the old one).
    assert_eq!(
        hierarchy_change_auth(&mut t, RH_OWNER, b"own", b""),
        rc::BAD_AUTH_S1
    );
    assert_eq!(hierarchy_change_auth(&mut t, RH_OWNER, b"", b""), 0);
    assert_eq!(hierarchy_change_auth(&mut t, RH_ENDORSEMENT, b"", b""), 0);
    // ownerPolicy is gone.
    assert_eq!(
        define_with_policy(&mut t, RH_OWNER, 0x0150_0042),
        rc::POLICY_FAIL_S1
    );
    // The persistent owner object and the owner index are gone; the
    // platform index stays.
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::READ_PUBLIC, &[0x8100_0001], &[], &[])
        ),
        rc::HANDLE_H1
    );
    assert_eq!(nv_read(&mut t, DA_INDEX, b"pw"), rc::HANDLE_H1);
    assert!(nv_read_public_ok(&mut t, 0x0140_0040));
    assert!(!nv_read_public_ok(&mut t, 0x0150_0040));
    // DA is back to the defaults: 3 tries, 1000 s, 1000 s, no failures.
    assert_eq!(property(&mut t, PT_LOCKOUT_COUNTER), 0);
    assert_eq!(property(&mut t, PT_MAX_AUTH_FAIL), 3);
    assert_eq!(property(&mut t, PT_LOCKOUT_INTERVAL), 1000);
    assert_eq!(property(&mut t, PT_LOCKOUT_RECOVERY), 1000);
    // Clock, resetCount and restartCount are zero; the PCR counter moved.
    let clock = read_clock(&mut t);
    assert!(clock.0 < 5000, "Clock restarted: {clock:?}");
    assert_eq!((clock.1, clock.2, clock.3), (0, 0, 1), "{clock:?}");
    assert_ne!(pcr_update_counter(&mut t), pcr_counter_before);
    // The permanent flags: no auth set, not disabled, not in lockout.
    assert_eq!(property(&mut t, PT_PERMANENT) & 0x307, 0);
    // lockoutAuth is empty.
    assert_eq!(da_lock_reset(&mut t, b""), 0);
}

/// The DA index defined with a non-empty ownerAuth.
fn da_index_with_owner(t: &mut Tpm, owner: &[u8]) {
    let mut p = 2u16.to_be_bytes().to_vec();
    p.extend(b"pw");
    p.extend(nv_public(DA_INDEX, AUTHWRITE | AUTHREAD, 8));
    assert_eq!(
        exec(
            t,
            &command_passwords(cc::NV_DEFINE_SPACE, &[RH_OWNER], &[owner], &p)
        ),
        0
    );
    assert_eq!(nv_write(t, DA_INDEX, b"pw"), 0);
}

fn nv_read_public_ok(t: &mut Tpm, index: u32) -> bool {
    rc_of(&t.execute(0, &command_passwords(0x169, &[index], &[], &[]))) == 0
}

/// TPMS_TIME_INFO of TPM2_ReadClock: (clock, resetCount, restartCount,
/// safe).
fn read_clock(t: &mut Tpm) -> (u64, u32, u32, u8) {
    let out = params(
        &t.execute(0, &command_passwords(cc::READ_CLOCK, &[], &[], &[])),
        0,
    );
    // time(8) clock(8) resetCount(4) restartCount(4) safe(1)
    (
        u64::from_be_bytes(out[8..16].try_into().unwrap()),
        u32::from_be_bytes(out[16..20].try_into().unwrap()),
        u32::from_be_bytes(out[20..24].try_into().unwrap()),
        out[24],
    )
}

fn pcr_update_counter(t: &mut Tpm) -> u32 {
    // TPM2_PCR_Read of nothing: pcrUpdateCounter first.
    let p = 0u32.to_be_bytes();
    let out = params(&t.execute(0, &command_passwords(0x17E, &[], &[], &p)), 0);
    u32::from_be_bytes(out[..4].try_into().unwrap())
}

#[test]
fn clear_control_and_disabled_clear() {
    let mut t = started_on(&MemoryPlatform::new());
    // lockoutAuth may set disableClear but not clear it.
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::CLEAR_CONTROL, &[RH_LOCKOUT], &[b""], &[1])
        ),
        0
    );
    assert_eq!(property(&mut t, PT_PERMANENT) & (1 << 8), 1 << 8);
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::CLEAR, &[RH_LOCKOUT], &[b""], &[])
        ),
        rc::DISABLED
    );
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::CLEAR, &[RH_PLATFORM], &[b""], &[])
        ),
        rc::DISABLED
    );
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::CLEAR_CONTROL, &[RH_LOCKOUT], &[b""], &[0])
        ),
        rc::AUTH_FAIL
    );
    // Only lockout and platform are TPMI_RH_CLEAR.
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::CLEAR_CONTROL, &[RH_OWNER], &[b""], &[0])
        ),
        rc::VALUE_H1
    );
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::CLEAR_CONTROL, &[RH_PLATFORM], &[b""], &[2])
        ),
        0x1C4 // TPM_RC_VALUE, parameter 1
    );
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::CLEAR_CONTROL, &[RH_PLATFORM], &[b""], &[0])
        ),
        0
    );
    assert_eq!(property(&mut t, PT_PERMANENT) & (1 << 8), 0);
    // Clear by the platform; disableClear is not changed by Clear itself.
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::CLEAR, &[RH_PLATFORM], &[b""], &[])
        ),
        0
    );
}

#[test]
fn clear_flushes_loaded_owner_and_endorsement_objects_only() {
    let mut t = started_on(&MemoryPlatform::new());
    let (owner, _) = create_primary(&mut t, RH_OWNER, b"", true);
    let (endorsement, _) = create_primary(&mut t, RH_ENDORSEMENT, b"", true);
    let (platform, _) = create_primary(&mut t, RH_PLATFORM, b"", true);
    let (null, _) = create_primary(&mut t, RH_NULL, b"", true);
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::CLEAR, &[RH_PLATFORM], &[b""], &[])
        ),
        0
    );
    for (h, want) in [
        (owner, rc::REFERENCE_H0),
        (endorsement, rc::REFERENCE_H0),
        (platform, 0),
        (null, 0),
    ] {
        assert_eq!(
            exec(&mut t, &command_passwords(cc::READ_PUBLIC, &[h], &[], &[])),
            want,
            "object {h:#x}"
        );
    }
}

// -- TPM2_ChangeEPS, TPM2_ChangePPS ------------------------------------------

#[test]
fn change_eps_and_pps_change_only_their_seed() {
    let mut t = started_on(&MemoryPlatform::new());
    let primaries = |t: &mut Tpm| {
        [RH_OWNER, RH_ENDORSEMENT, RH_PLATFORM].map(|h| create_primary(t, h, b"", true).1)
    };
    let before = primaries(&mut t);
    let (ek, _) = create_primary(&mut t, RH_ENDORSEMENT, b"", true);
    let evict = 0x8101_0001u32.to_be_bytes();
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::EVICT_CONTROL, &[RH_OWNER, ek], &[b""], &evict)
        ),
        0
    );
    assert_eq!(
        hierarchy_change_auth(&mut t, RH_ENDORSEMENT, b"", b"end"),
        0
    );
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::CHANGE_EPS, &[RH_PLATFORM], &[b""], &[])
        ),
        0
    );
    // endorsementAuth is empty again, the EK (loaded and persistent) gone.
    assert_eq!(hierarchy_change_auth(&mut t, RH_ENDORSEMENT, b"", b""), 0);
    assert_eq!(
        exec(&mut t, &command_passwords(cc::READ_PUBLIC, &[ek], &[], &[])),
        rc::REFERENCE_H0
    );
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::READ_PUBLIC, &[0x8101_0001], &[], &[])
        ),
        rc::HANDLE_H1
    );
    let after_eps = primaries(&mut t);
    assert_eq!(before[0], after_eps[0]);
    assert_ne!(before[1], after_eps[1]);
    assert_eq!(before[2], after_eps[2]);

    let (pk, _) = create_primary(&mut t, RH_PLATFORM, b"", true);
    let evict = 0x8180_0001u32.to_be_bytes();
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::EVICT_CONTROL, &[RH_PLATFORM, pk], &[b""], &evict)
        ),
        0
    );
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::CHANGE_PPS, &[RH_PLATFORM], &[b""], &[])
        ),
        0
    );
    assert_eq!(
        exec(&mut t, &command_passwords(cc::READ_PUBLIC, &[pk], &[], &[])),
        rc::REFERENCE_H0
    );
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::READ_PUBLIC, &[0x8180_0001], &[], &[])
        ),
        rc::HANDLE_H1
    );
    let after_pps = primaries(&mut t);
    assert_eq!(after_eps[0], after_pps[0]);
    assert_eq!(after_eps[1], after_pps[1]);
    assert_ne!(after_eps[2], after_pps[2]);
    // Only the platform may change seeds.
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::CHANGE_EPS, &[RH_OWNER], &[b""], &[])
        ),
        rc::VALUE_H1
    );
}

// -- TPM2_SetPrimaryPolicy ----------------------------------------------------

#[test]
fn set_primary_policy_checks_the_size_and_authorizes_policy_sessions() {
    let mut t = started_on(&MemoryPlatform::new());
    // The digest must have hashAlg's size (TPM_ALG_NULL: empty).
    assert_eq!(
        set_primary_policy(&mut t, RH_OWNER, b"", &[0; 20], 0x000B),
        rc::SIZE_P1
    );
    assert_eq!(
        set_primary_policy(&mut t, RH_OWNER, b"", &[0; 32], 0x0004),
        rc::SIZE_P1
    );
    assert_eq!(
        set_primary_policy(&mut t, RH_OWNER, b"", &[0; 32], 0x0010),
        rc::SIZE_P1
    );
    assert_eq!(
        set_primary_policy(&mut t, RH_OWNER, b"", &[0; 32], 0x0006),
        rc::HASH_P2
    );
    assert_eq!(
        set_primary_policy(&mut t, RH_NULL, b"", &[], 0x0010),
        rc::VALUE_H1
    );
    // No policy yet: a policy session cannot authorize the owner.
    assert_eq!(
        define_with_policy(&mut t, RH_OWNER, 0x0150_0050),
        rc::POLICY_FAIL_S1
    );
    // ownerPolicy ≔ the digest a fresh SHA-256 policy session has (32
    // zero bytes): such a session now authorizes the owner.
    assert_eq!(
        set_primary_policy(&mut t, RH_OWNER, b"", &[0; 32], 0x000B),
        0
    );
    assert_eq!(define_with_policy(&mut t, RH_OWNER, 0x0150_0050), 0);
    // A different digest does not.
    assert_eq!(
        set_primary_policy(&mut t, RH_OWNER, b"", &[1; 32], 0x000B),
        0
    );
    assert_eq!(
        define_with_policy(&mut t, RH_OWNER, 0x0150_0051),
        rc::POLICY_FAIL_S1
    );
    // TPM_ALG_NULL with an empty digest removes the policy.
    assert_eq!(set_primary_policy(&mut t, RH_OWNER, b"", &[], 0x0010), 0);
    assert_eq!(
        define_with_policy(&mut t, RH_OWNER, 0x0150_0051),
        rc::POLICY_FAIL_S1
    );
    // platformPolicy: volatile, gone after a TPM Reset.
    assert_eq!(
        set_primary_policy(&mut t, RH_PLATFORM, b"", &[0; 32], 0x000B),
        0
    );
    assert_eq!(define_with_policy(&mut t, RH_PLATFORM, 0x0140_0050), 0);
    assert_eq!(
        exec(&mut t, &command_passwords(cc::SHUTDOWN, &[], &[], &[0, 0])),
        0
    );
    t.tpm_init();
    startup(&mut t, 0);
    assert_eq!(
        define_with_policy(&mut t, RH_PLATFORM, 0x0140_0051),
        rc::POLICY_FAIL_S1
    );
    // ownerPolicy is in NV: it survives a TPM Reset.
    assert_eq!(
        set_primary_policy(&mut t, RH_OWNER, b"", &[0; 32], 0x000B),
        0
    );
    t.tpm_init();
    startup(&mut t, 0);
    assert_eq!(define_with_policy(&mut t, RH_OWNER, 0x0150_0052), 0);
}

#[test]
fn platform_policy_survives_a_volatile_state_restore() {
    let mut t = started_on(&MemoryPlatform::new());
    assert_eq!(
        set_primary_policy(&mut t, RH_PLATFORM, b"", &[0; 32], 0x000B),
        0
    );
    let nv = t.permanent_state();
    let volatile = t.volatile_state();
    drop(t);
    let mut t = Tpm::new(Box::new(MemoryPlatform::new())).unwrap();
    t.set_permanent_state(&nv).unwrap();
    t.set_volatile_state(&volatile).unwrap();
    assert_eq!(define_with_policy(&mut t, RH_PLATFORM, 0x0140_0060), 0);
}

// -- TPM2_HierarchyControl -----------------------------------------------------

#[test]
fn disabling_a_hierarchy_flushes_its_loaded_objects() {
    let mut t = started_on(&MemoryPlatform::new());
    let (owner, _) = create_primary(&mut t, RH_OWNER, b"", true);
    let (endorsement, _) = create_primary(&mut t, RH_ENDORSEMENT, b"", true);
    let (persist, _) = create_primary(&mut t, RH_OWNER, b"", true);
    let evict = 0x8100_0002u32.to_be_bytes();
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::EVICT_CONTROL, &[RH_OWNER, persist], &[b""], &evict)
        ),
        0
    );
    let ctl = [&RH_OWNER.to_be_bytes()[..], &[0]].concat();
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::HIERARCHY_CONTROL, &[RH_PLATFORM], &[b""], &ctl)
        ),
        0
    );
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::READ_PUBLIC, &[owner], &[], &[])
        ),
        rc::REFERENCE_H0
    );
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::READ_PUBLIC, &[persist], &[], &[])
        ),
        rc::REFERENCE_H0
    );
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::READ_PUBLIC, &[endorsement], &[], &[])
        ),
        0
    );
    // The persistent object stays in NV but cannot be reached ...
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::READ_PUBLIC, &[0x8100_0002], &[], &[])
        ),
        rc::HANDLE_H1
    );
    // ... until the hierarchy is enabled again.
    let ctl = [&RH_OWNER.to_be_bytes()[..], &[1]].concat();
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::HIERARCHY_CONTROL, &[RH_PLATFORM], &[b""], &ctl)
        ),
        0
    );
    assert_eq!(
        exec(
            &mut t,
            &command_passwords(cc::READ_PUBLIC, &[0x8100_0002], &[], &[])
        ),
        0
    );
}

// -- fuzz seeds ------------------------------------------------------------------

#[test]
fn fuzz_seeds_of_these_commands_succeed() {
    // Layout of fuzz/fuzz_targets/engine_execute.rs: a control byte (0x40:
    // Startup first, locality 0), then commands separated by 0xFD.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus-seed");
    for name in [
        "da_parameters_lock_reset",
        "clear_control_clear",
        "set_primary_policy_change_seeds",
    ] {
        let seed = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(seed[0], 0x40, "{name}");
        let mut t = started_on(&MemoryPlatform::new());
        for (i, c) in seed[1..].split(|&b| b == 0xFD).enumerate() {
            assert_eq!(exec(&mut t, c), 0, "{name}: command {i}");
        }
    }
}
