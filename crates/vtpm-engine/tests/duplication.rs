//! Duplication, import, rewrap, credentials and the policy commands they
//! need, through the engine's entry point with commands built by hand from
//! Part 3's tables: the error codes and positions Part 3 assigns, the
//! policy-session conditions of Part 1 §19.7, and the paths tpm2-tools has
//! no tool for (TPM2_Rewrap, duplication to TPM_RH_NULL). Policy digests are
//! recomputed here with sha2.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use vtpm_engine::{MemoryPlatform, Tpm};

mod common;
use common::attr::*;
use common::*;

/// The authorization of a password session with an empty password.
fn pw() -> Vec<u8> {
    password(&[])
}

/// The authorization of policy session `handle`: nonceCaller 16 × 0x33,
/// an empty HMAC.
fn policy(handle: u32) -> Vec<u8> {
    auth(handle, &[0x33; 16], 0x01, &[])
}

/// Runs a command that must succeed; its response handle (if `handle`)
/// and parameters.
fn ok(t: &mut Tpm, cmd: &[u8], handle: bool) -> (u32, Vec<u8>) {
    let r = t.execute(0, cmd);
    parse(&r, handle)
}

/// A successful response's handle (if `handle`) and parameters.
fn parse(r: &[u8], handle: bool) -> (u32, Vec<u8>) {
    let p = params(r, usize::from(handle));
    (if handle { handle_of(r) } else { 0 }, p)
}

fn err(t: &mut Tpm, cmd: &[u8]) -> u32 {
    rc_of(&t.execute(0, cmd))
}

/// Splits TPM2Bs off the front of `p`.
fn take2b(p: &mut &[u8]) -> Vec<u8> {
    let n = usize::from(u16::from_be_bytes([p[0], p[1]]));
    let v = p[2..2 + n].to_vec();
    *p = &p[2 + n..];
    v
}

const STORAGE: u32 =
    FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | RESTRICTED | DECRYPT;

/// An empty TPM2B_SENSITIVE_CREATE.
fn no_sensitive() -> Vec<u8> {
    tpm2b(&[0, 0, 0, 0])
}

fn create_primary(t: &mut Tpm, public: &[u8]) -> (u32, Vec<u8>) {
    primary(t, public, &[])
}

/// TPM2_Create then TPM2_Load under `parent`: (handle, public, Name).
fn create_loaded(t: &mut Tpm, parent: u32, public: &[u8]) -> (u32, Vec<u8>, Vec<u8>) {
    let mut p = no_sensitive();
    p.extend(tpm2b(public));
    p.extend(tpm2b(&[]));
    p.extend(0u32.to_be_bytes());
    let (_, out) = ok(t, &command_auths(cc::CREATE, &[parent], &[pw()], &p), false);
    let mut rest = &out[..];
    let private = take2b(&mut rest);
    let public = take2b(&mut rest);
    let mut p = tpm2b(&private);
    p.extend(tpm2b(&public));
    let (h, out) = ok(t, &command_auths(cc::LOAD, &[parent], &[pw()], &p), true);
    let mut rest = &out[..];
    let name = take2b(&mut rest);
    (h, public, name)
}

fn policy_command_code(t: &mut Tpm, session: u32, code: u32) -> u32 {
    err(
        t,
        &command_auths(
            cc::POLICY_COMMAND_CODE,
            &[session],
            &[],
            &code.to_be_bytes(),
        ),
    )
}

fn policy_get_digest(t: &mut Tpm, session: u32) -> Vec<u8> {
    let (_, out) = ok(
        t,
        &command_auths(cc::POLICY_GET_DIGEST, &[session], &[], &[]),
        false,
    );
    let mut rest = &out[..];
    take2b(&mut rest)
}

fn duplicate_policy() -> Vec<u8> {
    sha256(&[&[0; 32], &0x16Cu32.to_be_bytes(), &0x14Bu32.to_be_bytes()])
}

/// TPM2_Duplicate parameters.
fn duplicate_params(key: &[u8], aes: bool) -> Vec<u8> {
    let mut p = tpm2b(key);
    if aes {
        p.extend(0x0006u16.to_be_bytes());
        p.extend(128u16.to_be_bytes());
        p.extend(0x0043u16.to_be_bytes());
    } else {
        p.extend(0x0010u16.to_be_bytes());
    }
    p
}

/// Duplicates `key` for `new_parent` with a fresh
/// PolicyCommandCode(Duplicate) session: (encryptionKeyOut, duplicate,
/// outSymSeed).
fn duplicate(t: &mut Tpm, key: u32, new_parent: u32, params: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (s, _) = start_auth_session(t, 1);
    assert_eq!(policy_command_code(t, s, cc::DUPLICATE), 0);
    let (_, out) = ok(
        t,
        &command_auths(cc::DUPLICATE, &[key, new_parent], &[policy(s)], params),
        false,
    );
    flush(t, s);
    let mut rest = &out[..];
    (take2b(&mut rest), take2b(&mut rest), take2b(&mut rest))
}

fn import_params(key: &[u8], public: &[u8], dup: &[u8], seed: &[u8], aes: bool) -> Vec<u8> {
    let mut p = tpm2b(key);
    p.extend(tpm2b(public));
    p.extend(tpm2b(dup));
    p.extend(tpm2b(seed));
    if aes {
        p.extend(0x0006u16.to_be_bytes());
        p.extend(128u16.to_be_bytes());
        p.extend(0x0043u16.to_be_bytes());
    } else {
        p.extend(0x0010u16.to_be_bytes());
    }
    p
}

/// Imports and loads under `parent`; the loaded object's Name.
fn import_and_load(
    t: &mut Tpm,
    parent: u32,
    public: &[u8],
    dup: &[u8],
    seed: &[u8],
    key: Option<&[u8]>,
) -> Vec<u8> {
    let p = import_params(key.unwrap_or(&[]), public, dup, seed, key.is_some());
    let (_, out) = ok(t, &command_auths(cc::IMPORT, &[parent], &[pw()], &p), false);
    let mut rest = &out[..];
    let private = take2b(&mut rest);
    let mut p = tpm2b(&private);
    p.extend(tpm2b(public));
    let (h, out) = ok(t, &command_auths(cc::LOAD, &[parent], &[pw()], &p), true);
    flush(t, h);
    let mut rest = &out[..];
    take2b(&mut rest)
}

/// A TPM with an owner storage primary, a second storage key (the new
/// parent) and a duplicable signing key whose policy is
/// PolicyCommandCode(Duplicate).
struct Setup {
    t: Tpm,
    srk: u32,
    new_parent: u32,
    key: u32,
    key_public: Vec<u8>,
    key_name: Vec<u8>,
}

fn setup(extra_attrs: u32) -> Setup {
    let mut t = started();
    let (srk, _) = create_primary(&mut t, &ecc_public(STORAGE, &[]));
    let (new_parent, _, _) = create_loaded(&mut t, srk, &ecc_public(STORAGE, &[]));
    let (key, key_public, key_name) = create_loaded(
        &mut t,
        srk,
        &ecc_public(
            SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | SIGN | extra_attrs,
            &duplicate_policy(),
        ),
    );
    Setup {
        t,
        srk,
        new_parent,
        key,
        key_public,
        key_name,
    }
}

#[test]
fn duplicate_import_round_trips() {
    let Setup {
        mut t,
        new_parent,
        key,
        key_public,
        key_name,
        ..
    } = setup(0);
    assert_eq!(key_name[..2], [0x00, 0x0B]);
    assert_eq!(key_name[2..], sha256(&[&key_public]));
    // No inner wrap, to a new parent.
    let (k, dup, seed) = duplicate(&mut t, key, new_parent, &duplicate_params(&[], false));
    assert!(k.is_empty());
    assert_eq!(seed.len(), 68, "a TPMS_ECC_POINT on P-256");
    assert_eq!(
        import_and_load(&mut t, new_parent, &key_public, &dup, &seed, None),
        key_name
    );
    // Inner wrap with a TPM-made key.
    let (k, dup, seed) = duplicate(&mut t, key, new_parent, &duplicate_params(&[], true));
    assert_eq!(k.len(), 16);
    assert_eq!(
        import_and_load(&mut t, new_parent, &key_public, &dup, &seed, Some(&k)),
        key_name
    );
    // Inner wrap with the caller's key: not returned.
    let (k, dup, seed) = duplicate(&mut t, key, new_parent, &duplicate_params(&[9; 16], true));
    assert!(k.is_empty());
    assert_eq!(
        import_and_load(&mut t, new_parent, &key_public, &dup, &seed, Some(&[9; 16])),
        key_name
    );
    // To TPM_RH_NULL: no outer wrap, no seed; the plain TPM2B_SENSITIVE.
    let (_, dup, seed) = duplicate(&mut t, key, RH_NULL, &duplicate_params(&[], false));
    assert!(seed.is_empty());
    assert_eq!(
        u16::from_be_bytes([dup[0], dup[1]]) as usize + 2,
        dup.len(),
        "a TPM2B_SENSITIVE"
    );
    assert_eq!(&dup[2..4], &[0x00, 0x23], "sensitiveType ECC");
    assert_eq!(
        import_and_load(&mut t, new_parent, &key_public, &dup, &[], None),
        key_name
    );
    // A flipped bit: TPM_RC_INTEGRITY on duplicate (parameter 3).
    let (_, mut dup, seed) = duplicate(&mut t, key, new_parent, &duplicate_params(&[], false));
    let n = dup.len();
    dup[n - 5] ^= 0x80;
    let p = import_params(&[], &key_public, &dup, &seed, false);
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::IMPORT, &[new_parent], &[pw()], &p)
        ),
        rc::p(rc::INTEGRITY, 3)
    );
}

#[test]
fn rewrap_moves_the_outer_wrap() {
    let Setup {
        mut t,
        srk,
        new_parent,
        key,
        key_public,
        key_name,
    } = setup(0);
    let (third_h, _, _) = create_loaded(&mut t, srk, &ecc_public(STORAGE, &[]));
    let (k, dup, seed) = duplicate(&mut t, key, new_parent, &duplicate_params(&[], true));
    // new_parent → third.
    let mut p = tpm2b(&dup);
    p.extend(tpm2b(&key_name));
    p.extend(tpm2b(&seed));
    let (_, out) = ok(
        &mut t,
        &command_auths(cc::REWRAP, &[new_parent, third_h], &[pw()], &p),
        false,
    );
    let mut rest = &out[..];
    let (dup2, seed2) = (take2b(&mut rest), take2b(&mut rest));
    assert_eq!(
        import_and_load(&mut t, third_h, &key_public, &dup2, &seed2, Some(&k)),
        key_name
    );
    // The old parent no longer opens it: its seed was for the new one.
    let p = import_params(&k, &key_public, &dup2, &seed2, true);
    assert_ne!(
        err(
            &mut t,
            &command_auths(cc::IMPORT, &[new_parent], &[pw()], &p)
        ),
        0
    );
    // new_parent → TPM_RH_NULL: just the inner-wrapped sensitive area.
    let mut p = tpm2b(&dup);
    p.extend(tpm2b(&key_name));
    p.extend(tpm2b(&seed));
    let (_, out) = ok(
        &mut t,
        &command_auths(cc::REWRAP, &[new_parent, RH_NULL], &[pw()], &p),
        false,
    );
    let mut rest = &out[..];
    let (dup3, seed3) = (take2b(&mut rest), take2b(&mut rest));
    assert!(seed3.is_empty());
    assert_eq!(
        import_and_load(&mut t, third_h, &key_public, &dup3, &[], Some(&k)),
        key_name
    );
    // A seed without an old parent, or an old parent without a seed.
    let mut p = tpm2b(&dup);
    p.extend(tpm2b(&key_name));
    p.extend(tpm2b(&seed));
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::REWRAP, &[RH_NULL, third_h], &[pw()], &p)
        ),
        rc::h(rc::HANDLE, 1)
    );
    let mut p = tpm2b(&dup);
    p.extend(tpm2b(&key_name));
    p.extend(tpm2b(&[]));
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::REWRAP, &[new_parent, third_h], &[pw()], &p)
        ),
        rc::h(rc::HANDLE, 1)
    );
    // Another Name: the outer integrity fails (parameter 1).
    let mut other = key_name.clone();
    other[5] ^= 1;
    let mut p = tpm2b(&dup);
    p.extend(tpm2b(&other));
    p.extend(tpm2b(&seed));
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::REWRAP, &[new_parent, third_h], &[pw()], &p)
        ),
        rc::p(rc::INTEGRITY, 1)
    );
}

#[test]
fn duplicate_rules() {
    // fixedParent: TPM_RC_ATTRIBUTES on the object (handle 1). Its policy
    // still has to be satisfied first.
    let mut t = started();
    let (srk, _) = create_primary(&mut t, &ecc_public(STORAGE, &[]));
    let (fixed, _, _) = create_loaded(
        &mut t,
        srk,
        &ecc_public(
            FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | SIGN,
            &duplicate_policy(),
        ),
    );
    let (s, _) = start_auth_session(&mut t, 1);
    assert_eq!(policy_command_code(&mut t, s, cc::DUPLICATE), 0);
    assert_eq!(
        err(
            &mut t,
            &command_auths(
                cc::DUPLICATE,
                &[fixed, RH_NULL],
                &[policy(s)],
                &duplicate_params(&[], false)
            )
        ),
        rc::h(rc::ATTRIBUTES, 1)
    );
    flush(&mut t, s);

    let Setup {
        mut t,
        key,
        new_parent,
        srk,
        ..
    } = setup(0);
    let run = |t: &mut Tpm, handles: &[u32], params: &[u8]| -> u32 {
        let (s, _) = start_auth_session(t, 1);
        assert_eq!(policy_command_code(t, s, cc::DUPLICATE), 0);
        let r = err(
            t,
            &command_auths(cc::DUPLICATE, handles, &[policy(s)], params),
        );
        flush(t, s);
        r
    };
    // An inner key of the wrong size, or one without an algorithm.
    assert_eq!(
        run(
            &mut t,
            &[key, new_parent],
            &duplicate_params(&[1; 15], true)
        ),
        rc::p(rc::SIZE, 1)
    );
    assert_eq!(
        run(
            &mut t,
            &[key, new_parent],
            &duplicate_params(&[1; 16], false)
        ),
        rc::p(rc::SIZE, 1)
    );
    // The new parent must be a storage key.
    assert_eq!(
        run(&mut t, &[key, key], &duplicate_params(&[], false)),
        rc::h(rc::TYPE, 2)
    );
    // A password (or HMAC) cannot give the DUP role.
    assert_eq!(
        err(
            &mut t,
            &command_auths(
                cc::DUPLICATE,
                &[key, new_parent],
                &[pw()],
                &duplicate_params(&[], false)
            )
        ),
        rc::AUTH_UNAVAILABLE
    );
    // A policy session without the command code: its digest does not
    // match; one with the wrong command code set, digest made to match by
    // an object whose policy is PolicyCommandCode(Import), is refused with
    // TPM_RC_POLICY_CC.
    let (s, _) = start_auth_session(&mut t, 1);
    assert_eq!(
        err(
            &mut t,
            &command_auths(
                cc::DUPLICATE,
                &[key, new_parent],
                &[policy(s)],
                &duplicate_params(&[], false)
            )
        ),
        rc::s(rc::POLICY_FAIL, 1)
    );
    flush(&mut t, s);
    let import_policy = sha256(&[&[0; 32], &0x16Cu32.to_be_bytes(), &0x156u32.to_be_bytes()]);
    let (other, _, _) = create_loaded(
        &mut t,
        srk,
        &ecc_public(
            SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | SIGN,
            &import_policy,
        ),
    );
    let (s, _) = start_auth_session(&mut t, 1);
    assert_eq!(policy_command_code(&mut t, s, cc::IMPORT), 0);
    assert_eq!(
        err(
            &mut t,
            &command_auths(
                cc::DUPLICATE,
                &[other, new_parent],
                &[policy(s)],
                &duplicate_params(&[], false)
            )
        ),
        rc::s(rc::POLICY_CC, 1)
    );
    flush(&mut t, s);

    // encryptedDuplication: an inner wrap and a new parent are required.
    let Setup {
        mut t,
        key,
        new_parent,
        key_public,
        key_name,
        ..
    } = setup(ENCRYPTED_DUPLICATION);
    let run = |t: &mut Tpm, handles: &[u32], params: &[u8]| -> u32 {
        let (s, _) = start_auth_session(t, 1);
        assert_eq!(policy_command_code(t, s, cc::DUPLICATE), 0);
        let r = err(
            t,
            &command_auths(cc::DUPLICATE, handles, &[policy(s)], params),
        );
        flush(t, s);
        r
    };
    assert_eq!(
        run(&mut t, &[key, new_parent], &duplicate_params(&[], false)),
        rc::p(rc::SYMMETRIC, 2)
    );
    assert_eq!(
        run(&mut t, &[key, RH_NULL], &duplicate_params(&[], true)),
        rc::h(rc::HIERARCHY, 2)
    );
    let (k, dup, seed) = duplicate(&mut t, key, new_parent, &duplicate_params(&[], true));
    assert_eq!(
        import_and_load(&mut t, new_parent, &key_public, &dup, &seed, Some(&k)),
        key_name
    );
    // Import refuses an encryptedDuplication object without its inner
    // (parameter 1) or outer (parameter 4) wrap.
    let p = import_params(&[], &key_public, &dup, &seed, false);
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::IMPORT, &[new_parent], &[pw()], &p)
        ),
        rc::p(rc::ATTRIBUTES, 1)
    );
    let p = import_params(&k, &key_public, &dup, &[], true);
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::IMPORT, &[new_parent], &[pw()], &p)
        ),
        rc::p(rc::ATTRIBUTES, 4)
    );
}

#[test]
fn import_rules() {
    let Setup {
        mut t,
        new_parent,
        key,
        key_public,
        ..
    } = setup(0);
    let (_, dup, seed) = duplicate(&mut t, key, new_parent, &duplicate_params(&[], false));
    // fixedTPM / fixedParent objects: TPM_RC_ATTRIBUTES on objectPublic.
    let mut fixed = key_public.clone();
    let attrs = u32::from_be_bytes(fixed[4..8].try_into().unwrap()) | FIXED_PARENT;
    fixed[4..8].copy_from_slice(&attrs.to_be_bytes());
    let p = import_params(&[], &fixed, &dup, &seed, false);
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::IMPORT, &[new_parent], &[pw()], &p)
        ),
        rc::p(rc::ATTRIBUTES, 2)
    );
    // A key given without an algorithm.
    let p = import_params(&[1; 16], &key_public, &dup, &seed, false);
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::IMPORT, &[new_parent], &[pw()], &p)
        ),
        rc::p(rc::SIZE, 1)
    );
    // Another public area (a changed authPolicy): the Name in the HMAC
    // differs, TPM_RC_INTEGRITY.
    let mut other = key_public.clone();
    other[11] ^= 1;
    let p = import_params(&[], &other, &dup, &seed, false);
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::IMPORT, &[new_parent], &[pw()], &p)
        ),
        rc::p(rc::INTEGRITY, 3)
    );
    // A garbage seed: not a point on the parent's curve.
    let mut bad_seed = seed.clone();
    bad_seed[10] ^= 1;
    let p = import_params(&[], &key_public, &dup, &bad_seed, false);
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::IMPORT, &[new_parent], &[pw()], &p)
        ),
        rc::p(0x0A7, 4),
        "TPM_RC_ECC_POINT on inSymSeed"
    );
    // The parent must be a storage key.
    let p = import_params(&[], &key_public, &dup, &seed, false);
    assert_eq!(
        err(&mut t, &command_auths(cc::IMPORT, &[key], &[pw()], &p)),
        rc::h(rc::TYPE, 1)
    );
}

#[test]
fn credentials_round_trip_and_rules() {
    let mut t = started();
    let (srk, _) = create_primary(&mut t, &ecc_public(STORAGE, &[]));
    let (ak, _, ak_name) = create_loaded(
        &mut t,
        srk,
        &ecc_public(
            FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | SIGN,
            &[],
        ),
    );
    let make = |t: &mut Tpm, key: u32, credential: &[u8], name: &[u8]| -> (u32, Vec<u8>, Vec<u8>) {
        let mut p = tpm2b(credential);
        p.extend(tpm2b(name));
        let r = t.execute(0, &command_auths(cc::MAKE_CREDENTIAL, &[key], &[], &p));
        if rc_of(&r) != 0 {
            return (rc_of(&r), Vec::new(), Vec::new());
        }
        let mut rest = &r[10..];
        (0, take2b(&mut rest), take2b(&mut rest))
    };
    let (r, blob, secret) = make(&mut t, srk, b"0123456789abcdef", &ak_name);
    assert_eq!(r, 0);
    // activateHandle (ADMIN) and keyHandle (USER) by password.
    let mut p = tpm2b(&blob);
    p.extend(tpm2b(&secret));
    let (_, out) = ok(
        &mut t,
        &command_auths(cc::ACTIVATE_CREDENTIAL, &[ak, srk], &[pw(), pw()], &p),
        false,
    );
    assert_eq!(out, tpm2b(b"0123456789abcdef"));
    // Bound to the Name of activateHandle: another object fails.
    let mut p = tpm2b(&blob);
    p.extend(tpm2b(&secret));
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::ACTIVATE_CREDENTIAL, &[srk, srk], &[pw(), pw()], &p)
        ),
        rc::p(rc::INTEGRITY, 1)
    );
    // MakeCredential: only asymmetric storage keys; at most a digest.
    assert_eq!(make(&mut t, ak, b"x", &ak_name).0, rc::h(rc::TYPE, 1));
    assert_eq!(make(&mut t, srk, &[1; 33], &ak_name).0, rc::p(rc::SIZE, 1));
    // An external public-only copy of the storage key also makes them.
    let (_, rp) = ok(
        &mut t,
        &command_auths(cc::READ_PUBLIC, &[srk], &[], &[]),
        false,
    );
    let mut rest = &rp[..];
    let srk_public = take2b(&mut rest);
    let mut p = tpm2b(&[]);
    p.extend(tpm2b(&srk_public));
    p.extend(RH_OWNER.to_be_bytes());
    let (ext, out) = ok(
        &mut t,
        &command_auths(cc::LOAD_EXTERNAL, &[], &[], &p),
        true,
    );
    let mut rest = &out[..];
    assert_eq!(take2b(&mut rest)[2..], sha256(&[&srk_public]));
    let (r, blob, secret) = make(&mut t, ext, b"via external", &ak_name);
    assert_eq!(r, 0);
    let mut p = tpm2b(&blob);
    p.extend(tpm2b(&secret));
    let (_, out) = ok(
        &mut t,
        &command_auths(cc::ACTIVATE_CREDENTIAL, &[ak, srk], &[pw(), pw()], &p),
        false,
    );
    assert_eq!(out, tpm2b(b"via external"));
    // A public-only key cannot activate.
    let mut p = tpm2b(&blob);
    p.extend(tpm2b(&secret));
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::ACTIVATE_CREDENTIAL, &[ak, ext], &[pw(), pw()], &p)
        ),
        rc::h(0x09C, 2),
        "TPM_RC_KEY"
    );
    // LoadExternal of a public and private area: only in the null
    // hierarchy, never restricted / fixed.
    let mut p = tpm2b(&[0, 0x23, 0, 0, 0, 0, 0, 1, 1]);
    p.extend(tpm2b(&srk_public));
    p.extend(RH_NULL.to_be_bytes());
    assert_eq!(
        err(&mut t, &command_auths(cc::LOAD_EXTERNAL, &[], &[], &p)),
        rc::p(rc::ATTRIBUTES, 2)
    );
}

#[test]
fn admin_role_needs_a_policy_with_a_command_code() {
    // An AK whose ADMIN role needs a policy (adminWithPolicy), with the
    // policy PolicyCommandCode(ActivateCredential); the credential key is
    // the owner SRK.
    let policy_ac = sha256(&[&[0; 32], &0x16Cu32.to_be_bytes(), &0x147u32.to_be_bytes()]);
    let mut t = started();
    let (srk, _) = create_primary(&mut t, &ecc_public(STORAGE, &[]));
    let (ak, _, ak_name) = create_loaded(
        &mut t,
        srk,
        &ecc_public(
            FIXED_TPM
                | FIXED_PARENT
                | SENSITIVE_DATA_ORIGIN
                | USER_WITH_AUTH
                | ADMIN_WITH_POLICY
                | SIGN,
            &policy_ac,
        ),
    );
    let mut p = tpm2b(b"cred");
    p.extend(tpm2b(&ak_name));
    let r = t.execute(0, &command_auths(cc::MAKE_CREDENTIAL, &[srk], &[], &p));
    let mut rest = &r[10..];
    let (blob, secret) = (take2b(&mut rest), take2b(&mut rest));
    let mut params = tpm2b(&blob);
    params.extend(tpm2b(&secret));
    // A password for ADMIN with adminWithPolicy: refused.
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::ACTIVATE_CREDENTIAL, &[ak, srk], &[pw(), pw()], &params)
        ),
        rc::AUTH_UNAVAILABLE
    );
    let (s, _) = start_auth_session(&mut t, 1);
    assert_eq!(policy_command_code(&mut t, s, cc::ACTIVATE_CREDENTIAL), 0);
    assert_eq!(policy_get_digest(&mut t, s), policy_ac);
    let (_, out) = ok(
        &mut t,
        &command_auths(
            cc::ACTIVATE_CREDENTIAL,
            &[ak, srk],
            &[policy(s), pw()],
            &params,
        ),
        false,
    );
    assert_eq!(out, tpm2b(b"cred"));
    // The session continues with a new, empty policy (Part 1 §19.7).
    assert_eq!(policy_get_digest(&mut t, s), vec![0; 32]);
    assert_eq!(
        err(
            &mut t,
            &command_auths(
                cc::ACTIVATE_CREDENTIAL,
                &[ak, srk],
                &[policy(s), pw()],
                &params
            )
        ),
        rc::s(rc::POLICY_FAIL, 1)
    );
    // A second, different command code: TPM_RC_VALUE (parameter 1); a
    // command this TPM does not implement: TPM_RC_POLICY_CC.
    assert_eq!(policy_command_code(&mut t, s, cc::ACTIVATE_CREDENTIAL), 0);
    assert_eq!(
        policy_command_code(&mut t, s, cc::DUPLICATE),
        rc::p(rc::VALUE, 1)
    );
    assert_eq!(policy_command_code(&mut t, s, cc::ACTIVATE_CREDENTIAL), 0);
    let (s2, _) = start_auth_session(&mut t, 3);
    assert_eq!(
        policy_command_code(&mut t, s2, 0x0000_0300),
        rc::p(rc::POLICY_CC, 1)
    );
}

#[test]
fn policy_secret() {
    let mut t = started();
    let (s, nonce_tpm) = start_auth_session(&mut t, 1);
    let ps = |t: &mut Tpm, s: u32, nonce: &[u8], cp: &[u8], r: &[u8], exp: i32| -> Vec<u8> {
        let mut p = tpm2b(nonce);
        p.extend(tpm2b(cp));
        p.extend(tpm2b(r));
        p.extend(exp.to_be_bytes());
        t.execute(
            0,
            &command_auths(cc::POLICY_SECRET, &[RH_OWNER, s], &[pw()], &p),
        )
    };
    // policyDigest' = H(H(policyDigest || cc || Name(owner)) || policyRef).
    let r = ps(&mut t, s, &nonce_tpm, &[], b"ref", 0);
    assert_eq!(rc_of(&r), 0);
    let expected = sha256(&[
        &sha256(&[&[0; 32], &0x151u32.to_be_bytes(), &RH_OWNER.to_be_bytes()]),
        b"ref",
    ]);
    assert_eq!(policy_get_digest(&mut t, s), expected);
    // Without a ticket: an empty timeout and a NULL TPM_ST_AUTH_SECRET
    // ticket.
    let (_, out) = parse(&r, false);
    assert_eq!(
        out,
        [&[0, 0][..], &[0x80, 0x23], &RH_NULL.to_be_bytes(), &[0, 0]].concat()
    );
    // A wrong nonceTPM: TPM_RC_NONCE (parameter 1).
    assert_eq!(
        rc_of(&ps(&mut t, s, &[1; 32], &[], &[], 0)),
        rc::p(rc::NONCE, 1)
    );
    // A negative expiration asks for a ticket: a timeout and an HMAC.
    let (_, out) = parse(&ps(&mut t, s, &nonce_tpm, &[], &[], -60), false);
    assert_eq!(&out[..2], &[0, 8]);
    let ticket = &out[10..];
    assert_eq!(&ticket[..2], &[0x80, 0x23]);
    assert_eq!(&ticket[2..6], &RH_OWNER.to_be_bytes());
    assert_eq!(
        &ticket[6..8],
        &[0, 64],
        "an HMAC-SHA-512 under the owner proof"
    );
    // cpHashA: the wrong size (parameter 2); once set, another value is
    // TPM_RC_CPHASH.
    assert_eq!(
        rc_of(&ps(&mut t, s, &[], &[1; 20], &[], 0)),
        rc::p(rc::SIZE, 2)
    );
    assert_eq!(rc_of(&ps(&mut t, s, &[], &[1; 32], &[], 0)), 0);
    assert_eq!(rc_of(&ps(&mut t, s, &[], &[2; 32], &[], 0)), rc::CPHASH);
    // A trial session only computes the digest (no nonce check, NULL
    // ticket even with a negative expiration).
    let (trial, _) = start_auth_session(&mut t, 3);
    let (_, out) = parse(&ps(&mut t, trial, &[5; 32], &[], &[], -5), false);
    assert_eq!(&out[..2], &[0, 0]);
    assert_eq!(&out[4..8], &RH_NULL.to_be_bytes());
    let expected = sha256(&[
        &sha256(&[&[0; 32], &0x151u32.to_be_bytes(), &RH_OWNER.to_be_bytes()]),
        b"",
    ]);
    assert_eq!(policy_get_digest(&mut t, trial), expected);
    flush(&mut t, s);
    flush(&mut t, trial);
    // A policy session cannot authorize PolicySecret's own authHandle
    // when its policy does not ask for the authValue (none here can):
    // TPM_RC_MODE, even with a matching policy.
    let (srk, _) = create_primary(&mut t, &ecc_public(STORAGE, &[]));
    let cc_policy_secret = sha256(&[&[0; 32], &0x16Cu32.to_be_bytes(), &0x151u32.to_be_bytes()]);
    let (obj, _, _) = create_loaded(
        &mut t,
        srk,
        &ecc_public(SENSITIVE_DATA_ORIGIN | SIGN, &cc_policy_secret),
    );
    let (s3, n3) = start_auth_session(&mut t, 1);
    let mut p = tpm2b(&n3);
    p.extend(tpm2b(&[]));
    p.extend(tpm2b(&[]));
    p.extend(0i32.to_be_bytes());
    let (other, _) = start_auth_session(&mut t, 1);
    assert_eq!(policy_command_code(&mut t, other, cc::POLICY_SECRET), 0);
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::POLICY_SECRET, &[obj, s3], &[policy(other)], &p)
        ),
        rc::s(rc::MODE, 1)
    );
    // Without userWithAuth, a password is refused.
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::POLICY_SECRET, &[obj, s3], &[pw()], &p)
        ),
        rc::AUTH_UNAVAILABLE
    );
    // TPMI_SH_POLICY: an HMAC-session handle or NULL is TPM_RC_VALUE.
    assert_eq!(
        err(
            &mut t,
            &command_auths(cc::POLICY_GET_DIGEST, &[0x0200_0000], &[], &[])
        ),
        rc::h(rc::VALUE, 1)
    );
}

#[test]
fn policy_cp_hash_binds_the_command() {
    // PolicySecret with cpHashA: the policy only authorizes the command
    // with that cpHash. The key's policy is PolicySecret(owner) followed by
    // PolicyCommandCode(Duplicate).
    let owner_secret = sha256(&[
        &sha256(&[&[0; 32], &0x151u32.to_be_bytes(), &RH_OWNER.to_be_bytes()]),
        b"",
    ]);
    let key_policy = sha256(&[
        &owner_secret,
        &0x16Cu32.to_be_bytes(),
        &0x14Bu32.to_be_bytes(),
    ]);
    let mut t = started();
    let (srk, _) = create_primary(&mut t, &ecc_public(STORAGE, &[]));
    let (key, _, key_name) = create_loaded(
        &mut t,
        srk,
        &ecc_public(SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | SIGN, &key_policy),
    );
    let params = duplicate_params(&[], false);
    // cpHash = H(TPM_CC_Duplicate || Name(key) || Name(TPM_RH_NULL) || params).
    let cp_hash = sha256(&[
        &0x14Bu32.to_be_bytes(),
        &key_name,
        &RH_NULL.to_be_bytes(),
        &params,
    ]);
    for (cp, want) in [
        (cp_hash.clone(), 0),
        (vec![0xAA; 32], rc::s(rc::POLICY_FAIL, 1)),
    ] {
        let (s, _) = start_auth_session(&mut t, 1);
        let mut p = tpm2b(&[]);
        p.extend(tpm2b(&cp));
        p.extend(tpm2b(&[]));
        p.extend(0i32.to_be_bytes());
        ok(
            &mut t,
            &command_auths(cc::POLICY_SECRET, &[RH_OWNER, s], &[pw()], &p),
            false,
        );
        assert_eq!(policy_command_code(&mut t, s, cc::DUPLICATE), 0);
        assert_eq!(policy_get_digest(&mut t, s), key_policy);
        assert_eq!(
            err(
                &mut t,
                &command_auths(cc::DUPLICATE, &[key, RH_NULL], &[policy(s)], &params)
            ),
            want
        );
        flush(&mut t, s);
    }
}

#[test]
fn policy_sessions_survive_volatile_state_migration() {
    let mut a = started();
    let (s, _) = start_auth_session(&mut a, 1);
    assert_eq!(policy_command_code(&mut a, s, cc::DUPLICATE), 0);
    let permanent = a.permanent_state();
    let volatile = a.volatile_state();
    let mut b = Tpm::new(Box::new(MemoryPlatform::new())).unwrap();
    b.set_permanent_state(&permanent).unwrap();
    b.set_volatile_state(&volatile).unwrap();
    assert_eq!(policy_get_digest(&mut b, s), duplicate_policy());
    // The command code came along: another one is TPM_RC_VALUE.
    assert_eq!(
        policy_command_code(&mut b, s, cc::IMPORT),
        rc::p(rc::VALUE, 1)
    );
}

/// The fuzz seeds of this area run as the fuzz target runs them (byte 0:
/// 0x80 a fresh TPM, 0x40 TPM2_Startup first; commands split at 0xFD), and
/// every command in them succeeds.
#[test]
fn fuzz_seeds_are_valid_command_sequences() {
    let seeds: [(&str, &[u8]); 3] = [
        (
            "policy_trial_digest",
            include_bytes!("../../../fuzz/corpus-seed/policy_trial_digest"),
        ),
        (
            "duplicate_policy",
            include_bytes!("../../../fuzz/corpus-seed/duplicate_policy"),
        ),
        (
            "make_credential",
            include_bytes!("../../../fuzz/corpus-seed/make_credential"),
        ),
    ];
    for (name, seed) in seeds {
        assert_eq!(seed[0] & 0xC0, 0xC0, "{name}: fresh TPM, startup");
        let mut t = started();
        for (i, cmd) in seed[1..].split(|&b| b == 0xFD).enumerate() {
            let r = t.execute(0, cmd);
            assert_eq!(
                rc_of(&r),
                0,
                "{name}: command {i} answers 0x{:x}",
                rc_of(&r)
            );
        }
    }
}
