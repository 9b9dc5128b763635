//! Hierarchy commands and dictionary-attack protection through Debian's
//! tpm2-tools over both TCTIs: tpm2_dictionarylockout, tpm2_clear,
//! tpm2_clearcontrol, tpm2_changeeps, tpm2_changepps, tpm2_setprimarypolicy
//! and tpm2_hierarchycontrol, judged by what the tools report (response
//! codes, TPM2_GetCapability properties as tpm2_getcap decodes them) and
//! by public areas the tools write.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::time::Duration;
use vtpm_tests::{Protocol, Run, Server, assert_rc, both, started, yaml_value};

both!(
    dictionary_attack_lockout_and_reset,
    lockout_auth_failure_locks_lockout_auth,
    no_da_entities_are_never_locked_out,
    clear_changes_the_owner_not_the_ek,
    clear_control_disables_clear,
    change_eps_and_pps,
    set_primary_policy,
    hierarchy_control_flushes_objects,
);

fn path(server: &Server, name: &str) -> String {
    server.dir().join(name).to_string_lossy().into_owned()
}

/// `tpm2_getcap properties-variable`.
fn variable_properties(server: &Server) -> String {
    server.ok("tpm2_getcap", ["properties-variable"])
}

fn property(server: &Server, name: &str) -> u32 {
    let out = variable_properties(server);
    let v = yaml_value(&out, name).unwrap_or_else(|| panic!("{name} not printed:\n{out}"));
    let v = v.trim_start_matches("0x");
    u32::from_str_radix(v, 16).unwrap_or_else(|_| v.parse().unwrap())
}

fn lockout_counter(server: &Server) -> u32 {
    property(server, "TPM2_PT_LOCKOUT_COUNTER")
}

fn in_lockout(server: &Server) -> bool {
    property(server, "inLockout") == 1
}

/// Flushes transient objects and sessions the tools left loaded (each
/// tool run loads its context files again).
fn flush_all(server: &Server) {
    server.ok("tpm2_flushcontext", ["-t"]);
    server.ok("tpm2_flushcontext", ["-l"]);
}

/// An ECC primary in `hierarchy` (template of tpm2_createprimary -G ecc),
/// context at `ctx`; returns the TPM2B_PUBLIC tpm2_readpublic writes.
fn primary_public(server: &Server, hierarchy: &str, auth: &str, ctx: &str) -> Vec<u8> {
    let ctx = path(server, ctx);
    let public = format!("{ctx}.pub");
    server.ok(
        "tpm2_createprimary",
        ["-C", hierarchy, "-P", auth, "-G", "ecc", "-c", &ctx],
    );
    server.ok("tpm2_readpublic", ["-c", &ctx, "-o", &public]);
    let bytes = std::fs::read(&public).unwrap();
    flush_all(server);
    bytes
}

/// tpm2_create of an ECC key under `parent` with the parent's password.
fn create_child(server: &Server, parent: &str, password: &str) -> Run {
    let r = server.run(
        "tpm2_create",
        [
            "-C",
            &path(server, parent),
            "-P",
            password,
            "-G",
            "ecc",
            "-u",
            &path(server, "child.pub"),
            "-r",
            &path(server, "child.priv"),
        ],
    );
    flush_all(server);
    r
}

const AUTH_FAIL_S1: u32 = 0x98E;
const BAD_AUTH_S1: u32 = 0x9A2;
const LOCKOUT: u32 = 0x921;
const DISABLED: u32 = 0x120;

fn dictionary_attack_lockout_and_reset(protocol: Protocol) {
    let server = started(protocol);
    server.ok(
        "tpm2_dictionarylockout",
        ["-s", "-n", "3", "-t", "10", "-l", "20"],
    );
    assert_eq!(property(&server, "TPM2_PT_MAX_AUTH_FAIL"), 3);
    assert_eq!(property(&server, "TPM2_PT_LOCKOUT_INTERVAL"), 10);
    assert_eq!(property(&server, "TPM2_PT_LOCKOUT_RECOVERY"), 20);
    // A storage key with a password and tpm2_createprimary's default
    // attributes (no noda): DA-protected.
    server.ok(
        "tpm2_createprimary",
        [
            "-C",
            "o",
            "-G",
            "ecc",
            "-p",
            "keypw",
            "-c",
            &path(&server, "key.ctx"),
        ],
    );
    flush_all(&server);
    for n in 1..=3 {
        let r = create_child(&server, "key.ctx", "wrong");
        assert!(!r.success(), "{r}");
        assert_rc(&r, AUTH_FAIL_S1);
        assert_eq!(lockout_counter(&server), n);
    }
    assert!(in_lockout(&server));
    // In lockout even the right password is refused.
    let r = create_child(&server, "key.ctx", "keypw");
    assert!(!r.success(), "{r}");
    assert_rc(&r, LOCKOUT);
    assert!(r.stderr.contains("lockout"), "{r}");
    assert_eq!(lockout_counter(&server), 3);
    // tpm2_dictionarylockout -c (TPM2_DictionaryAttackLockReset).
    server.ok("tpm2_dictionarylockout", ["-c"]);
    assert_eq!(lockout_counter(&server), 0);
    assert!(!in_lockout(&server));
    let r = create_child(&server, "key.ctx", "keypw");
    assert!(r.success(), "{r}");
    // A success does not reset the counter.
    assert!(!create_child(&server, "key.ctx", "wrong").success());
    assert!(create_child(&server, "key.ctx", "keypw").success());
    assert_eq!(lockout_counter(&server), 1);
}

fn lockout_auth_failure_locks_lockout_auth(protocol: Protocol) {
    let server = started(protocol);
    server.ok("tpm2_changeauth", ["-c", "l", "lockpw"]);
    server.ok(
        "tpm2_dictionarylockout",
        ["-s", "-n", "3", "-t", "10", "-l", "2", "-p", "lockpw"],
    );
    let r = server.fails("tpm2_dictionarylockout", ["-c", "-p", "wrong"]);
    assert_rc(&r, AUTH_FAIL_S1);
    flush_all(&server);
    // lockoutAuth is now locked, the right password included ...
    let r = server.fails("tpm2_dictionarylockout", ["-c", "-p", "lockpw"]);
    assert_rc(&r, LOCKOUT);
    flush_all(&server);
    // ... while failedTries is untouched ...
    assert_eq!(lockout_counter(&server), 0);
    // ... until lockoutRecovery (2 s) has passed.
    std::thread::sleep(Duration::from_millis(2300));
    server.ok("tpm2_dictionarylockout", ["-c", "-p", "lockpw"]);
}

fn no_da_entities_are_never_locked_out(protocol: Protocol) {
    let server = started(protocol);
    server.ok(
        "tpm2_dictionarylockout",
        ["-s", "-n", "1", "-t", "100", "-l", "100"],
    );
    // An index with no_da, and one without.
    for (index, attrs) in [
        ("0x1500016", "authread|authwrite|no_da"),
        ("0x1500017", "authread|authwrite"),
    ] {
        server.ok(
            "tpm2_nvdefine",
            [index, "-C", "o", "-s", "8", "-a", attrs, "-p", "nvpw"],
        );
        let data = path(&server, "data");
        std::fs::write(&data, b"12345678").unwrap();
        server.ok(
            "tpm2_nvwrite",
            [index, "-C", index, "-P", "nvpw", "-i", &data],
        );
    }
    let r = server.fails(
        "tpm2_nvread",
        ["0x1500016", "-C", "0x1500016", "-P", "wrong"],
    );
    assert_rc(&r, BAD_AUTH_S1);
    flush_all(&server);
    assert_eq!(lockout_counter(&server), 0);
    let r = server.fails(
        "tpm2_nvread",
        ["0x1500017", "-C", "0x1500017", "-P", "wrong"],
    );
    assert_rc(&r, AUTH_FAIL_S1);
    flush_all(&server);
    assert!(in_lockout(&server));
    let r = server.fails(
        "tpm2_nvread",
        ["0x1500017", "-C", "0x1500017", "-P", "nvpw"],
    );
    assert_rc(&r, LOCKOUT);
    flush_all(&server);
    // The no_da index still answers.
    let out = server.ok(
        "tpm2_nvread",
        ["0x1500016", "-C", "0x1500016", "-P", "nvpw", "-s", "8"],
    );
    assert_eq!(out.as_bytes(), b"12345678");
}

fn clear_changes_the_owner_not_the_ek(protocol: Protocol) {
    let server = started(protocol);
    let owner_before = primary_public(&server, "o", "", "o1.ctx");
    let endorsement_before = primary_public(&server, "e", "", "e1.ctx");
    // An owner persistent object, an owner index, owner and lockout
    // passwords, DA parameters.
    let key = path(&server, "key.ctx");
    server.ok("tpm2_createprimary", ["-C", "o", "-G", "ecc", "-c", &key]);
    server.ok("tpm2_evictcontrol", ["-C", "o", "-c", &key, "0x81000001"]);
    flush_all(&server);
    server.ok(
        "tpm2_nvdefine",
        [
            "0x1500018",
            "-C",
            "o",
            "-s",
            "8",
            "-a",
            "ownerread|ownerwrite",
        ],
    );
    server.ok("tpm2_changeauth", ["-c", "o", "ownerpw"]);
    server.ok("tpm2_changeauth", ["-c", "l", "lockpw"]);
    server.ok(
        "tpm2_dictionarylockout",
        ["-s", "-n", "7", "-t", "8", "-l", "9", "-p", "lockpw"],
    );
    let perm = variable_properties(&server);
    assert_eq!(yaml_value(&perm, "ownerAuthSet"), Some("1"), "{perm}");
    assert_eq!(yaml_value(&perm, "lockoutAuthSet"), Some("1"), "{perm}");

    server.ok("tpm2_clear", ["-c", "l", "lockpw"]);

    // The owner's and lockout's passwords are empty again, the DA
    // parameters back to their defaults.
    let perm = variable_properties(&server);
    assert_eq!(yaml_value(&perm, "ownerAuthSet"), Some("0"), "{perm}");
    assert_eq!(yaml_value(&perm, "lockoutAuthSet"), Some("0"), "{perm}");
    assert_eq!(property(&server, "TPM2_PT_MAX_AUTH_FAIL"), 3);
    assert_eq!(property(&server, "TPM2_PT_LOCKOUT_INTERVAL"), 1000);
    // New storage primary seed, same endorsement primary seed.
    let owner_after = primary_public(&server, "o", "", "o2.ctx");
    let endorsement_after = primary_public(&server, "e", "", "e2.ctx");
    assert_ne!(owner_before, owner_after, "the owner's primary key is new");
    assert_eq!(
        endorsement_before, endorsement_after,
        "the endorsement primary key is unchanged"
    );
    // Owner persistent objects and owner NV indices are gone.
    let persistent = server.ok("tpm2_getcap", ["handles-persistent"]);
    assert!(!persistent.contains("0x81000001"), "{persistent}");
    let nv = server.ok("tpm2_getcap", ["handles-nv-index"]);
    assert!(!nv.contains("0x1500018"), "{nv}");
    // Clock restarts at zero with resetCount 0.
    let clock = server.ok("tpm2_readclock", Vec::<&str>::new());
    assert_eq!(yaml_value(&clock, "reset_count"), Some("0"), "{clock}");
}

fn clear_control_disables_clear(protocol: Protocol) {
    let server = started(protocol);
    server.ok("tpm2_clearcontrol", ["-C", "l", "s"]);
    assert_eq!(property(&server, "disableClear"), 1);
    let r = server.fails("tpm2_clear", ["-c", "l"]);
    assert_rc(&r, DISABLED);
    let r = server.fails("tpm2_clear", ["-c", "p"]);
    assert_rc(&r, DISABLED);
    // (tpm2_clearcontrol refuses `-C l c` itself; the TPM's
    // TPM_RC_AUTH_FAIL for it is checked in the engine's tests.)
    server.ok("tpm2_clearcontrol", ["-C", "p", "c"]);
    assert_eq!(property(&server, "disableClear"), 0);
    server.ok("tpm2_clear", ["-c", "p"]);
}

fn change_eps_and_pps(protocol: Protocol) {
    let server = started(protocol);
    let ek = |name: &str| {
        let public = path(&server, name);
        server.ok(
            "tpm2_createek",
            ["-G", "ecc", "-c", &path(&server, "ek.ctx"), "-u", &public],
        );
        flush_all(&server);
        std::fs::read(public).unwrap()
    };
    let ek1 = ek("ek1.pub");
    assert_eq!(ek1, ek("ek1b.pub"), "the EK is derived, the same each time");
    let owner1 = primary_public(&server, "o", "", "o1.ctx");
    let platform1 = primary_public(&server, "p", "", "p1.ctx");
    server.ok("tpm2_changeauth", ["-c", "e", "endorsepw"]);

    server.ok("tpm2_changeeps", Vec::<&str>::new());
    // endorsementAuth is empty again, and the EK is new.
    let perm = variable_properties(&server);
    assert_eq!(yaml_value(&perm, "endorsementAuthSet"), Some("0"), "{perm}");
    let ek2 = ek("ek2.pub");
    assert_ne!(ek1, ek2, "tpm2_changeeps gives a new EK");
    assert_eq!(owner1, primary_public(&server, "o", "", "o2.ctx"));
    assert_eq!(platform1, primary_public(&server, "p", "", "p2.ctx"));

    server.ok("tpm2_changepps", Vec::<&str>::new());
    assert_ne!(platform1, primary_public(&server, "p", "", "p3.ctx"));
    assert_eq!(owner1, primary_public(&server, "o", "", "o3.ctx"));
    assert_eq!(ek2, ek("ek3.pub"));
}

fn set_primary_policy(protocol: Protocol) {
    let server = started(protocol);
    // A policy session starts with a policyDigest of zeros (Part 1
    // §19.7.1): as ownerPolicy, it authorizes the owner through a fresh
    // policy session.
    let zero = path(&server, "zero.policy");
    std::fs::write(&zero, [0u8; 32]).unwrap();
    let session = path(&server, "session.ctx");
    let define_with_policy = |index: &str| {
        server.ok(
            "tpm2_startauthsession",
            ["--policy-session", "-S", &session],
        );
        let r = server.run(
            "tpm2_nvdefine",
            [
                index,
                "-C",
                "o",
                "-P",
                &format!("session:{session}"),
                "-s",
                "8",
                "-a",
                "ownerread|ownerwrite",
            ],
        );
        server.ok("tpm2_flushcontext", [&session]);
        r
    };
    let r = define_with_policy("0x1500030");
    assert!(!r.success(), "no ownerPolicy yet: {r}");
    assert_rc(&r, 0x99D); // TPM_RC_POLICY_FAIL, session 1
    server.ok(
        "tpm2_setprimarypolicy",
        ["-C", "o", "-L", &zero, "-g", "sha256"],
    );
    let r = define_with_policy("0x1500030");
    assert!(r.success(), "{r}");
    // A digest of the wrong size for its algorithm: TPM_RC_SIZE, parameter 1.
    let short = path(&server, "short.policy");
    std::fs::write(&short, [0u8; 20]).unwrap();
    let r = server.fails(
        "tpm2_setprimarypolicy",
        ["-C", "o", "-L", &short, "-g", "sha256"],
    );
    assert_rc(&r, 0x1D5);
}

fn hierarchy_control_flushes_objects(protocol: Protocol) {
    let server = started(protocol);
    let key = path(&server, "key.ctx");
    server.ok("tpm2_createprimary", ["-C", "o", "-G", "ecc", "-c", &key]);
    server.ok("tpm2_evictcontrol", ["-C", "o", "-c", &key, "0x81000005"]);
    let ek = path(&server, "ek.ctx");
    server.ok("tpm2_createprimary", ["-C", "e", "-G", "ecc", "-c", &ek]);
    let transient = server.ok("tpm2_getcap", ["handles-transient"]);
    assert_eq!(transient.lines().count(), 3, "{transient}");

    server.ok("tpm2_hierarchycontrol", ["-C", "p", "shEnable", "clear"]);
    // The owner's loaded objects are gone; the endorsement key stays.
    let transient = server.ok("tpm2_getcap", ["handles-transient"]);
    assert_eq!(transient.trim(), "- 0x80000002", "{transient}");
    // The owner's persistent object cannot be reached ...
    let r = server.fails("tpm2_readpublic", ["-c", "0x81000005"]);
    assert_rc(&r, 0x18B);
    // ... and its saved context cannot be loaded.
    let r = server.fails("tpm2_readpublic", ["-c", &key]);
    assert!(r.stderr.contains("ContextLoad"), "{r}");
    // Enabled again, the persistent object is back.
    server.ok("tpm2_hierarchycontrol", ["-C", "p", "shEnable", "set"]);
    server.ok("tpm2_readpublic", ["-c", "0x81000005"]);
}
