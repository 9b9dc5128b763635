//! NV index types and the NV commands (Part 1 "NV Memory", Part 3 chapter
//! 31) through tpm2-tools over `vtpm serve --state …`:
//!
//! * counter, bits, extend, PIN Fail and PIN Pass indices defined with
//!   `tpm2_nvdefine -a "nt=…"`, and the define-time attribute checks;
//! * `tpm2_nvincrement` (a new counter starts above every value any counter
//!   had), `tpm2_nvsetbits` (OR), `tpm2_nvextend` (the value is judged with
//!   `openssl dgst`: H(old || data)), `tpm2_nvwrite`/`tpm2_nvread` with
//!   offsets on ordinary indices and TPM_RC_ATTRIBUTES on typed ones;
//! * `tpm2_nvwritelock` (WRITE_STCLEAR, WRITEDEFINE, `--global`) and
//!   `tpm2_nvreadlock`: TPM_RC_NV_LOCKED until the next TPM Reset, except a
//!   WRITEDEFINE lock; CLEAR_STCLEAR data goes at TPM Reset;
//! * PIN Pass / PIN Fail indices authorizing `tpm2_nvread` with their PIN
//!   until pinCount reaches pinLimit (PIN Pass counts successes, PIN Fail
//!   failures, reset by a success);
//! * TPM_RC_NV_SPACE when the NV memory is full, and the NV counters
//!   reported by `tpm2_getcap`;
//! * a counter incremented 1000 times across backend restarts (SIGTERM,
//!   SIGKILL between commands and SIGKILL mid-stream) holds every answered
//!   increment.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use vtpm_tests::{
    Protocol, Run, ServeOptions, Server, StateDir, TPM_RH_OWNER, TPM_RH_PLATFORM, TPMA_NV_OWNER_RW,
    assert_rc, command_with_password_handles, hex, nv_define_space_command, nv_read_command,
    nv_write_command, split_response, startup_clear_command,
};

use vtpm_tests::both;

both!(
    typed_indices,
    define_time_attribute_checks,
    locks_and_startup,
    pin_indices,
    change_auth_and_policy_delete,
);

/// How long a server has to exit after SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

const TPM_RC_ATTRIBUTES: u32 = 0x082;
const TPM_RC_NV_RANGE: u32 = 0x146;
const TPM_RC_NV_LOCKED: u32 = 0x148;
const TPM_RC_NV_UNINITIALIZED: u32 = 0x14A;
const TPM_RC_NV_SPACE: u32 = 0x14B;
const TPM_RC_AUTH_UNAVAILABLE: u32 = 0x12F;
/// TPM_RC_ATTRIBUTES, parameter 2 (publicInfo).
const TPM_RC_ATTRIBUTES_P2: u32 = 0x2C2;
/// TPM_RC_SIZE, parameter 2 (publicInfo).
const TPM_RC_SIZE_P2: u32 = 0x2D5;
/// TPM_RC_ATTRIBUTES, handle 2 (nvIndex).
const TPM_RC_ATTRIBUTES_H2: u32 = 0x282;
/// TPM_RC_BAD_AUTH, session 1.
const TPM_RC_BAD_AUTH_S1: u32 = 0x9A2;
/// TPM_RC_AUTH_FAIL, session 1.
const TPM_RC_AUTH_FAIL_S1: u32 = 0x98E;
/// TPMA_NV_NO_DA.
const TPMA_NV_NO_DA: u32 = 1 << 25;
/// TPM_CC_NV_Increment.
const TPM_CC_NV_INCREMENT: u32 = 0x134;
/// TPM_CC_NV_Read.
const TPM_CC_NV_READ: u32 = 0x14E;

fn serve(protocol: Protocol, state: &StateDir) -> Server {
    ServeOptions::new(protocol).args(state.args()).start()
}

/// A server on a new state file (`tag`), started with `tpm2_startup -c`;
/// the state directory lives as long as the returned `StateDir`.
fn started_on_state(protocol: Protocol, tag: &str) -> (StateDir, Server) {
    let state = StateDir::new(tag);
    let server = serve(protocol, &state);
    server.startup_clear();
    (state, server)
}

fn terminate(mut server: Server) {
    let status = server.terminate(EXIT_TIMEOUT);
    assert!(
        status.success(),
        "vtpm serve exited with {status} after SIGTERM\n{}",
        server.log_text()
    );
}

/// The response code of one raw command sent on its own connection.
fn raw_rc(server: &Server, command: &[u8]) -> u32 {
    let mut conn = server.raw_connection();
    let resp = conn.transact(command).expect("raw command");
    split_response(&resp).1
}

fn fails_with(server: &Server, tool: &str, args: &[&str], rc: u32) {
    let run = server.fails(tool, args);
    assert_rc(&run, rc);
}

fn define(server: &Server, index: &str, size: usize, attrs: &str, extra: &[&str]) {
    let size = size.to_string();
    let mut args = vec![index, "-C", "o", "-s", &size, "-a", attrs];
    args.extend_from_slice(extra);
    server.ok("tpm2_nvdefine", args);
}

/// `tpm2_nvdefine` of an owner index, which may fail.
fn try_define(server: &Server, index: &str, size: usize, attrs: &str) -> Run {
    let size = size.to_string();
    server.run(
        "tpm2_nvdefine",
        [index, "-C", "o", "-s", &size, "-a", attrs],
    )
}

/// `tpm2_nvread` of `size` bytes at `offset` with `auth` (`-C` value) and
/// optional `-P` password.
fn nvread_with(
    server: &Server,
    index: &str,
    auth: &str,
    password: Option<&str>,
    size: usize,
    offset: usize,
) -> Result<Vec<u8>, Run> {
    let out = server.dir().join(&format!("read-{index}-{offset}-{size}"));
    let _ = std::fs::remove_file(&out);
    let (size, offset) = (size.to_string(), offset.to_string());
    let mut args = vec![
        index,
        "-C",
        auth,
        "-s",
        &size,
        "--offset",
        &offset,
        "-o",
        out.to_str().unwrap(),
    ];
    if let Some(p) = password {
        args.extend(["-P", p]);
    }
    let run = server.run("tpm2_nvread", &args);
    if run.success() {
        Ok(std::fs::read(&out).unwrap())
    } else {
        Err(run)
    }
}

fn nvread(server: &Server, index: &str, size: usize, offset: usize) -> Vec<u8> {
    nvread_with(server, index, "o", None, size, offset)
        .unwrap_or_else(|run| panic!("[{}] tpm2_nvread failed: {run}", server.protocol()))
}

fn read_u64(server: &Server, index: &str) -> u64 {
    u64::from_be_bytes(nvread(server, index, 8, 0).try_into().unwrap())
}

fn nvwrite(server: &Server, index: &str, data: &[u8], offset: usize, auth: &str) -> Run {
    let file = server.dir().write(&format!("write-{index}"), data);
    let offset = offset.to_string();
    server.run(
        "tpm2_nvwrite",
        [
            index,
            "-C",
            auth,
            "-i",
            file.to_str().unwrap(),
            "--offset",
            &offset,
        ],
    )
}

/// SHA-256 of a file's content, computed by OpenSSL.
fn openssl_sha256(path: &Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-binary"])
        .arg(path)
        .output()
        .expect("running openssl");
    assert!(out.status.success(), "openssl dgst failed");
    out.stdout
}

/// A TPM Reset: _TPM_Init without TPM2_Shutdown, then TPM2_Startup(CLEAR).
fn tpm_reset(server: &Server) {
    server.reset();
    server.startup_clear();
}

/// The value of a TPM_PT property in `tpm2_getcap properties-variable`.
fn variable_property(server: &Server, name: &str) -> u64 {
    let out = server.ok("tpm2_getcap", ["properties-variable"]);
    let mut lines = out.lines();
    while let Some(l) = lines.next() {
        if l.trim() == format!("{name}:") || l.trim_start().starts_with(&format!("{name}:")) {
            let rest = l.split_once(':').unwrap().1.trim();
            let v = if rest.is_empty() {
                lines.next().unwrap().trim().to_string()
            } else {
                rest.to_string()
            };
            let v = v.trim_start_matches("raw:").trim();
            let v = v.trim_start_matches("0x");
            return u64::from_str_radix(v, 16).unwrap();
        }
    }
    panic!("no {name} in\n{out}")
}

// ---------------------------------------------------------------------------
// Counter, bits, extend and ordinary indices
// ---------------------------------------------------------------------------

fn typed_indices(protocol: Protocol) {
    let (state, server) = started_on_state(protocol, "nv-typed");
    assert_eq!(variable_property(&server, "TPM2_PT_NV_COUNTERS"), 0);

    // Counter: unreadable until the first increment, then counts by one.
    let c1 = "0x1500010";
    define(&server, c1, 8, "nt=counter|ownerread|ownerwrite", &[]);
    assert_eq!(variable_property(&server, "TPM2_PT_NV_COUNTERS"), 1);
    let run = nvread_with(&server, c1, "o", None, 8, 0).unwrap_err();
    assert_rc(&run, TPM_RC_NV_UNINITIALIZED);
    for _ in 0..3 {
        server.ok("tpm2_nvincrement", [c1, "-C", "o"]);
    }
    let v1 = read_u64(&server, c1);
    assert!(v1 >= 3, "counter after 3 increments: {v1}");
    server.ok("tpm2_nvincrement", [c1, "-C", "o"]);
    assert_eq!(read_u64(&server, c1), v1 + 1);
    // TPM2_NV_Write is not for counters.
    assert_rc(&nvwrite(&server, c1, &[0; 8], 0, "o"), TPM_RC_ATTRIBUTES);
    // A new counter starts above the largest value any counter has had,
    // also one that was deleted.
    server.ok("tpm2_nvundefine", [c1, "-C", "o"]);
    let c2 = "0x1500011";
    define(&server, c2, 8, "nt=counter|ownerread|ownerwrite", &[]);
    server.ok("tpm2_nvincrement", [c2, "-C", "o"]);
    let v2 = read_u64(&server, c2);
    assert!(v2 > v1 + 1, "new counter {v2} not above the old {}", v1 + 1);
    // tpm2_nvincrement on a non-counter: TPM_RC_ATTRIBUTES (nvIndex).

    // Bits: OR of everything set, starting from zero.
    let b = "0x1500012";
    define(&server, b, 8, "nt=bits|ownerread|ownerwrite", &[]);
    server.ok("tpm2_nvsetbits", [b, "-C", "o", "-i", "0x5"]);
    assert_eq!(read_u64(&server, b), 0x5);
    server.ok("tpm2_nvsetbits", [b, "-C", "o", "-i", "0x8000000000000030"]);
    server.ok("tpm2_nvsetbits", [b, "-C", "o", "-i", "0x4"]);
    assert_eq!(read_u64(&server, b), 0x8000_0000_0000_0035);
    fails_with(
        &server,
        "tpm2_nvincrement",
        &[b, "-C", "o"],
        TPM_RC_ATTRIBUTES_H2,
    );

    // Extend: H(old || data), old all zeros at first; judged by OpenSSL.
    let e = "0x1500013";
    define(
        &server,
        e,
        32,
        "nt=extend|ownerread|ownerwrite",
        &["-g", "sha256"],
    );
    let d1 = server.dir().write("extend-1", b"first extend data");
    let d2 = server.dir().write("extend-2", &[0xA5; 100]);
    for d in [&d1, &d2] {
        server.ok("tpm2_nvextend", [e, "-C", "o", "-i", d.to_str().unwrap()]);
    }
    let mut expected = vec![0u8; 32];
    for d in [&d1, &d2] {
        let cat = [expected.as_slice(), &std::fs::read(d).unwrap()].concat();
        let f = server.dir().write("extend-cat", &cat);
        expected = openssl_sha256(&f);
    }
    assert_eq!(hex(&nvread(&server, e, 32, 0)), hex(&expected));
    assert_rc(&nvwrite(&server, e, &[0; 32], 0, "o"), TPM_RC_ATTRIBUTES);
    fails_with(
        &server,
        "tpm2_nvsetbits",
        &[e, "-C", "o", "-i", "1"],
        TPM_RC_ATTRIBUTES_H2,
    );

    // Ordinary: writes at offsets, reads of ranges, NV_RANGE past the end.
    let o = "0x1500014";
    define(&server, o, 32, "ownerread|ownerwrite", &[]);
    assert!(nvwrite(&server, o, &[0x11; 32], 0, "o").success());
    assert!(nvwrite(&server, o, b"abcdefgh", 4, "o").success());
    assert!(nvwrite(&server, o, b"XY", 30, "o").success());
    let mut model = vec![0x11u8; 32];
    model[4..12].copy_from_slice(b"abcdefgh");
    model[30..32].copy_from_slice(b"XY");
    assert_eq!(hex(&nvread(&server, o, 32, 0)), hex(&model));
    assert_eq!(nvread(&server, o, 10, 3), model[3..13].to_vec());
    // Past the end (tpm2-tools check this themselves: raw commands).
    assert_eq!(
        raw_rc(&server, &nv_write_command(0x0150_0014, 30, b"abc")),
        TPM_RC_NV_RANGE
    );
    assert_eq!(
        raw_rc(&server, &nv_read_command(0x0150_0014, 28, 8)),
        TPM_RC_NV_RANGE
    );

    // Everything is still there after a restart of the backend.
    terminate(server);
    let server = serve(protocol, &state);
    server.startup_clear();
    assert_eq!(read_u64(&server, c2), v2);
    assert_eq!(read_u64(&server, b), 0x8000_0000_0000_0035);
    assert_eq!(hex(&nvread(&server, e, 32, 0)), hex(&expected));
    assert_eq!(hex(&nvread(&server, o, 32, 0)), hex(&model));
    for h in [c2, b, e, o] {
        server.ok("tpm2_nvundefine", [h, "-C", "o"]);
    }
    assert_eq!(variable_property(&server, "TPM2_PT_NV_COUNTERS"), 0);
    terminate(server);
}

// ---------------------------------------------------------------------------
// NV_DefineSpace attribute and size rules
// ---------------------------------------------------------------------------

fn define_time_attribute_checks(protocol: Protocol) {
    let (_state, server) = started_on_state(protocol, "nv-define");
    let h = "0x1500020";
    let refused = |size: &str, attrs: &str, extra: &[&str], rc: u32| {
        let mut args = vec![h, "-C", "o", "-s", size, "-a", attrs];
        args.extend_from_slice(extra);
        let run = server.fails("tpm2_nvdefine", &args);
        assert_rc(&run, rc);
    };
    // Sizes by type (tpm2-tools check these themselves: raw commands,
    // nameAlg SHA-256).
    let handle = 0x0150_0020;
    for (nt, size) in [(1u32, 4u16), (2, 16), (4, 20), (4, 48), (8, 7), (9, 16)] {
        let attrs = (nt << 4) | TPMA_NV_OWNER_RW | if nt == 8 { TPMA_NV_NO_DA } else { 0 };
        let rc = raw_rc(&server, &nv_define_space_command(handle, attrs, size));
        assert_eq!(rc, TPM_RC_SIZE_P2, "type {nt} size {size}");
    }
    // ... and the right sizes are accepted.
    for (nt, size) in [(1u32, 8u16), (2, 8), (4, 32), (8, 8), (9, 8)] {
        let attrs = (nt << 4) | TPMA_NV_OWNER_RW | if nt == 8 { TPMA_NV_NO_DA } else { 0 };
        let rc = raw_rc(&server, &nv_define_space_command(handle, attrs, size));
        assert_eq!(rc, 0, "type {nt} size {size}");
        server.ok("tpm2_nvundefine", [h, "-C", "o"]);
    }
    // Counters are never cleared.
    refused(
        "8",
        "nt=counter|ownerread|ownerwrite|clear_stclear",
        &[],
        TPM_RC_ATTRIBUTES_P2,
    );
    // PIN Fail needs NO_DA; no PIN index may be written with its authValue,
    // locked for good or globally.
    refused(
        "8",
        "nt=pinfail|ownerread|ownerwrite",
        &[],
        TPM_RC_ATTRIBUTES_P2,
    );
    for extra in ["authwrite", "writedefine", "globallock"] {
        refused(
            "8",
            &format!("nt=pinpass|ownerread|ownerwrite|{extra}"),
            &[],
            TPM_RC_ATTRIBUTES_P2,
        );
        refused(
            "8",
            &format!("nt=pinfail|ownerread|ownerwrite|no_da|{extra}"),
            &[],
            TPM_RC_ATTRIBUTES_P2,
        );
    }
    // CLEAR_STCLEAR data cannot be locked for good.
    refused(
        "8",
        "ownerread|ownerwrite|clear_stclear|writedefine",
        &[],
        TPM_RC_ATTRIBUTES_P2,
    );
    // No way to read, no way to write, TPM-set bits.
    refused("8", "ownerwrite", &[], TPM_RC_ATTRIBUTES_P2);
    refused("8", "ownerread", &[], TPM_RC_ATTRIBUTES_P2);
    refused(
        "8",
        "ownerread|ownerwrite|written",
        &[],
        TPM_RC_ATTRIBUTES_P2,
    );
    // The owner cannot create platform indices (blamed on authHandle), nor
    // POLICY_DELETE ones (platform only).
    refused(
        "8",
        "ownerread|ownerwrite|platformcreate",
        &[],
        TPM_RC_ATTRIBUTES | 0x100,
    );
    let policy = server.dir().write("policy", &[7; 32]);
    refused(
        "8",
        "0x20402",
        &["-L", policy.to_str().unwrap()],
        TPM_RC_ATTRIBUTES_P2,
    );
    // WRITEALL larger than one NV_Write.
    refused("2048", "ownerread|ownerwrite|writeall", &[], TPM_RC_SIZE_P2);
    // Every type with valid attributes is defined.
    for (size, attrs, extra) in [
        ("8", "nt=counter|ownerread|ownerwrite|orderly", &[][..]),
        ("8", "nt=bits|ownerread|ownerwrite|clear_stclear", &[]),
        ("48", "nt=extend|ownerread|ownerwrite", &["-g", "sha384"]),
        ("8", "nt=pinfail|ownerread|ownerwrite|no_da|authread", &[]),
        ("8", "nt=pinpass|ownerread|ownerwrite|authread", &[]),
        ("1024", "ownerread|ownerwrite|writeall", &[]),
    ] {
        define(&server, h, size.parse().unwrap(), attrs, extra);
        let public = server.ok("tpm2_nvreadpublic", [h]);
        assert!(public.contains(&format!("size: {size}")), "{public}");
        server.ok("tpm2_nvundefine", [h, "-C", "o"]);
    }

    // NV_SPACE: define 2 KiB indices until the NV memory is full; every
    // one defined is there, and removing one makes room again.
    let mut defined = Vec::new();
    let last_run = loop {
        let handle = format!("{:#x}", 0x0150_1000 + defined.len());
        let run = try_define(&server, &handle, 2048, "ownerread|ownerwrite");
        if !run.success() {
            break run;
        }
        defined.push(handle);
        assert!(defined.len() < 1000, "NV memory never runs out");
    };
    assert_rc(&last_run, TPM_RC_NV_SPACE);
    assert!(defined.len() >= 8, "only {} indices fit", defined.len());
    // Smaller indices still fit: counters (8 bytes, no authValue, no
    // policy) until the NV memory is full; TPM_PT_NV_COUNTERS_AVAIL said
    // how many.
    let avail = variable_property(&server, "TPM2_PT_NV_COUNTERS_AVAIL");
    let mut counters = 0u64;
    let last_run = loop {
        let handle = format!("{:#x}", 0x0150_2000 + counters);
        let run = try_define(&server, &handle, 8, "nt=counter|ownerread|ownerwrite");
        if !run.success() {
            break run;
        }
        counters += 1;
        assert!(counters < 1000, "NV memory never runs out");
    };
    assert_rc(&last_run, TPM_RC_NV_SPACE);
    assert_eq!(
        counters, avail,
        "counters defined vs TPM_PT_NV_COUNTERS_AVAIL"
    );
    assert_eq!(variable_property(&server, "TPM2_PT_NV_COUNTERS"), counters);
    assert_eq!(variable_property(&server, "TPM2_PT_NV_COUNTERS_AVAIL"), 0);
    let listed = server.ok("tpm2_getcap", ["handles-nv-index"]);
    assert_eq!(
        listed.lines().count(),
        defined.len() + usize::try_from(counters).unwrap(),
        "{listed}"
    );
    server.ok(
        "tpm2_nvundefine",
        [defined.pop().unwrap().as_str(), "-C", "o"],
    );
    assert!(variable_property(&server, "TPM2_PT_NV_COUNTERS_AVAIL") > 0);
    define(&server, h, 8, "nt=counter|ownerread|ownerwrite", &[]);
    terminate(server);
}

// ---------------------------------------------------------------------------
// Write and read locks, and what TPM Reset clears
// ---------------------------------------------------------------------------

fn locks_and_startup(protocol: Protocol) {
    let (state, server) = started_on_state(protocol, "nv-locks");
    let stclear = "0x1500030";
    let define_once = "0x1500031";
    let global = "0x1500032";
    let plain = "0x1500033";
    let cleared = "0x1500034";
    define(
        &server,
        stclear,
        16,
        "ownerread|ownerwrite|write_stclear|read_stclear",
        &[],
    );
    define(
        &server,
        define_once,
        16,
        "ownerread|ownerwrite|writedefine",
        &[],
    );
    define(&server, global, 16, "ownerread|ownerwrite|globallock", &[]);
    define(&server, plain, 16, "ownerread|ownerwrite", &[]);
    define(
        &server,
        cleared,
        16,
        "ownerread|ownerwrite|clear_stclear",
        &[],
    );
    for h in [stclear, define_once, global, plain, cleared] {
        assert!(nvwrite(&server, h, &[0x42; 16], 0, "o").success());
    }

    // Locks: writes then fail with NV_LOCKED; locking twice is no error.
    for h in [stclear, define_once] {
        server.ok("tpm2_nvwritelock", [h, "-C", "o"]);
        server.ok("tpm2_nvwritelock", [h, "-C", "o"]);
        assert_rc(&nvwrite(&server, h, &[1; 16], 0, "o"), TPM_RC_NV_LOCKED);
        assert_eq!(nvread(&server, h, 16, 0), vec![0x42; 16]);
    }
    // An index with neither WRITE_STCLEAR nor WRITEDEFINE cannot be locked.
    fails_with(
        &server,
        "tpm2_nvwritelock",
        &[plain, "-C", "o"],
        TPM_RC_ATTRIBUTES_H2,
    );
    // Global lock: GLOBALLOCK indices only.
    server.ok("tpm2_nvwritelock", ["--global", "-C", "o"]);
    assert_rc(
        &nvwrite(&server, global, &[1; 16], 0, "o"),
        TPM_RC_NV_LOCKED,
    );
    assert!(nvwrite(&server, plain, &[0x43; 16], 0, "o").success());
    let public = server.ok("tpm2_nvreadpublic", [global]);
    assert!(public.contains("writelocked"), "{public}");
    // Read lock.
    server.ok("tpm2_nvreadlock", [stclear, "-C", "o"]);
    let run = nvread_with(&server, stclear, "o", None, 16, 0).unwrap_err();
    assert_rc(&run, TPM_RC_NV_LOCKED);
    fails_with(
        &server,
        "tpm2_nvreadlock",
        &[plain, "-C", "o"],
        TPM_RC_ATTRIBUTES_H2,
    );

    // The locks hold across Shutdown(STATE), a backend restart and
    // Startup(STATE) (TPM Resume)...
    server.ok("tpm2_shutdown", Vec::<&str>::new());
    terminate(server);
    let server = serve(protocol, &state);
    server.ok("tpm2_startup", Vec::<&str>::new());
    assert_rc(
        &nvwrite(&server, stclear, &[2; 16], 0, "o"),
        TPM_RC_NV_LOCKED,
    );
    assert_rc(
        &nvwrite(&server, global, &[2; 16], 0, "o"),
        TPM_RC_NV_LOCKED,
    );
    let run = nvread_with(&server, stclear, "o", None, 16, 0).unwrap_err();
    assert_rc(&run, TPM_RC_NV_LOCKED);
    assert_eq!(nvread(&server, cleared, 16, 0), vec![0x42; 16]);
    tpm_reset(&server);
    // ... and a TPM Reset clears them, except the WRITEDEFINE lock of a
    // written index; CLEAR_STCLEAR data is gone.
    assert_eq!(nvread(&server, stclear, 16, 0), vec![0x42; 16]);
    assert!(nvwrite(&server, stclear, &[2; 16], 0, "o").success());
    assert!(nvwrite(&server, global, &[2; 16], 0, "o").success());
    assert_rc(
        &nvwrite(&server, define_once, &[2; 16], 0, "o"),
        TPM_RC_NV_LOCKED,
    );
    let run = nvread_with(&server, cleared, "o", None, 16, 0).unwrap_err();
    assert_rc(&run, TPM_RC_NV_UNINITIALIZED);
    assert_eq!(nvread(&server, plain, 16, 0), vec![0x43; 16]);
    // Locked again, then reset: SIGKILL does not keep a lock past the next
    // TPM Reset either.
    server.ok("tpm2_nvwritelock", [stclear, "-C", "o"]);
    let mut server = server;
    server.sigkill();
    let server = serve(protocol, &state);
    server.startup_clear();
    assert!(nvwrite(&server, stclear, &[3; 16], 0, "o").success());
    terminate(server);
}

// ---------------------------------------------------------------------------
// PIN Pass and PIN Fail indices
// ---------------------------------------------------------------------------

/// TPMS_NV_PIN_COUNTER_PARAMETERS: pinCount || pinLimit, big-endian.
fn pin_data(count: u32, limit: u32) -> Vec<u8> {
    [count.to_be_bytes(), limit.to_be_bytes()].concat()
}

fn pin_indices(protocol: Protocol) {
    let (state, server) = started_on_state(protocol, "nv-pin");
    let fail = "0x1500040";
    let pass = "0x1500041";
    define(
        &server,
        fail,
        8,
        "nt=pinfail|ownerread|ownerwrite|no_da|authread",
        &["-p", "1234"],
    );
    define(
        &server,
        pass,
        8,
        "nt=pinpass|ownerread|ownerwrite|authread",
        &["-p", "5678"],
    );
    // The PIN is not usable before the owner writes pinCount/pinLimit.
    let run = nvread_with(&server, fail, fail, Some("1234"), 8, 0).unwrap_err();
    assert_rc(&run, TPM_RC_AUTH_UNAVAILABLE);

    // PIN Fail: failures count up to pinLimit; a success sets pinCount
    // back to zero.
    assert!(nvwrite(&server, fail, &pin_data(0, 2), 0, "o").success());
    for _ in 0..3 {
        let got = nvread_with(&server, fail, fail, Some("1234"), 8, 0).unwrap();
        assert_eq!(got, pin_data(0, 2));
    }
    let run = nvread_with(&server, fail, fail, Some("0000"), 8, 0).unwrap_err();
    assert_rc(&run, TPM_RC_BAD_AUTH_S1);
    assert_eq!(nvread(&server, fail, 8, 0), pin_data(1, 2));
    let got = nvread_with(&server, fail, fail, Some("1234"), 8, 0).unwrap();
    assert_eq!(got, pin_data(0, 2));
    for _ in 0..2 {
        let run = nvread_with(&server, fail, fail, Some("9999"), 8, 0).unwrap_err();
        assert_rc(&run, TPM_RC_BAD_AUTH_S1);
    }
    // pinCount == pinLimit: even the right PIN is refused.
    let run = nvread_with(&server, fail, fail, Some("1234"), 8, 0).unwrap_err();
    assert_rc(&run, TPM_RC_AUTH_UNAVAILABLE);
    assert_eq!(nvread(&server, fail, 8, 0), pin_data(2, 2));
    // The owner resets pinCount.
    assert!(nvwrite(&server, fail, &pin_data(0, 2), 0, "o").success());
    assert!(nvread_with(&server, fail, fail, Some("1234"), 8, 0).is_ok());

    // PIN Pass: successes count; a wrong PIN does not.
    assert!(nvwrite(&server, pass, &pin_data(0, 2), 0, "o").success());
    let run = nvread_with(&server, pass, pass, Some("0000"), 8, 0).unwrap_err();
    assert_rc(&run, TPM_RC_AUTH_FAIL_S1);
    // DA: the wrong PIN of a DA-protected index counts a failure; forget
    // it so the rest of the test is not locked out.
    server.ok("tpm2_dictionarylockout", ["-c"]);
    let got = nvread_with(&server, pass, pass, Some("5678"), 8, 0).unwrap();
    // The read happens after the authorization counted it.
    assert_eq!(got, pin_data(1, 2));
    let got = nvread_with(&server, pass, pass, Some("5678"), 8, 0).unwrap();
    assert_eq!(got, pin_data(2, 2));
    let run = nvread_with(&server, pass, pass, Some("5678"), 8, 0).unwrap_err();
    assert_rc(&run, TPM_RC_AUTH_UNAVAILABLE);
    // The count is in NV.
    terminate(server);
    let server = serve(protocol, &state);
    server.startup_clear();
    assert_eq!(nvread(&server, pass, 8, 0), pin_data(2, 2));
    assert_eq!(nvread(&server, fail, 8, 0), pin_data(0, 2));
    terminate(server);
}

// ---------------------------------------------------------------------------
// NV_ChangeAuth and NV_UndefineSpaceSpecial: ADMIN role, policy only
// ---------------------------------------------------------------------------

/// A policy digest of TPM2_PolicyCommandCode(`cc`) from a trial session.
fn command_code_policy(server: &Server, cc: &str, name: &str) -> std::path::PathBuf {
    let session = server.dir().join(&format!("{name}.trial"));
    let policy = server.dir().join(&format!("{name}.policy"));
    let session = session.to_str().unwrap();
    server.ok("tpm2_startauthsession", ["-S", session]);
    server.ok(
        "tpm2_policycommandcode",
        ["-S", session, "-L", policy.to_str().unwrap(), cc],
    );
    server.ok("tpm2_flushcontext", [session]);
    policy
}

/// A policy session that has run TPM2_PolicyCommandCode(`cc`).
fn command_code_session(server: &Server, cc: &str, name: &str) -> String {
    let session = server.dir().join(&format!("{name}.session"));
    let session = session.to_str().unwrap().to_string();
    server.ok(
        "tpm2_startauthsession",
        ["--policy-session", "-S", session.as_str()],
    );
    server.ok("tpm2_policycommandcode", ["-S", session.as_str(), cc]);
    session
}

fn change_auth_and_policy_delete(protocol: Protocol) {
    let (_state, server) = started_on_state(protocol, "nv-admin");

    // NV_ChangeAuth: a password is refused (ADMIN role of an NV index is a
    // policy); a policy session with the command code changes the auth.
    let idx = "0x1500060";
    let policy = command_code_policy(&server, "TPM2_CC_NV_ChangeAuth", "change");
    define(
        &server,
        idx,
        8,
        "authread|authwrite",
        &["-p", "old", "-L", policy.to_str().unwrap()],
    );
    let file = server.dir().write("pin-data", b"12345678");
    server.ok(
        "tpm2_nvwrite",
        [idx, "-C", idx, "-P", "old", "-i", file.to_str().unwrap()],
    );
    let run = server.fails("tpm2_changeauth", ["-c", idx, "-p", "old", "new"]);
    assert_rc(&run, TPM_RC_AUTH_UNAVAILABLE);
    let session = command_code_session(&server, "TPM2_CC_NV_ChangeAuth", "change");
    server.ok(
        "tpm2_changeauth",
        ["-c", idx, "-p", &format!("session:{session}"), "new"],
    );
    server.ok("tpm2_flushcontext", [session.as_str()]);
    assert_eq!(
        nvread_with(&server, idx, idx, Some("new"), 8, 0).unwrap(),
        b"12345678".to_vec()
    );
    let run = nvread_with(&server, idx, idx, Some("old"), 8, 0).unwrap_err();
    assert_rc(&run, TPM_RC_AUTH_FAIL_S1);
    server.ok("tpm2_dictionarylockout", ["-c"]);

    // NV_UndefineSpaceSpecial: a platform index with POLICY_DELETE is not
    // deleted by NV_UndefineSpace, but by its policy and platformAuth.
    let special = "0x1500061";
    let policy = command_code_policy(&server, "TPM2_CC_NV_UndefineSpaceSpecial", "delete");
    // PPWRITE | POLICY_DELETE | PPREAD | PLATFORMCREATE.
    server.ok(
        "tpm2_nvdefine",
        [
            special,
            "-C",
            "p",
            "-s",
            "8",
            "-a",
            "0x40010401",
            "-L",
            policy.to_str().unwrap(),
        ],
    );
    // (tpm2_nvundefine will not send it: a raw TPM2_NV_UndefineSpace.)
    let undefine = command_with_password_handles(0x122, &[TPM_RH_PLATFORM, 0x0150_0061], b"", &[]);
    assert_eq!(raw_rc(&server, &undefine), TPM_RC_ATTRIBUTES_H2);
    let session = command_code_session(&server, "TPM2_CC_NV_UndefineSpaceSpecial", "delete");
    server.ok(
        "tpm2_nvundefine",
        [special, "-C", "p", "-S", session.as_str()],
    );
    server.fails("tpm2_nvreadpublic", [special]);
    terminate(server);
}

// ---------------------------------------------------------------------------
// 1000 increments across backend restarts and SIGKILL
// ---------------------------------------------------------------------------

const COUNTER: u32 = 0x0150_0050;

fn increment_command() -> Vec<u8> {
    command_with_password_handles(TPM_CC_NV_INCREMENT, &[TPM_RH_OWNER, COUNTER], b"", &[])
}

fn read_counter(conn: &mut vtpm_tests::RawConnection) -> u64 {
    let mut params = 8u16.to_be_bytes().to_vec();
    params.extend(0u16.to_be_bytes());
    let cmd = command_with_password_handles(TPM_CC_NV_READ, &[TPM_RH_OWNER, COUNTER], b"", &params);
    let resp = conn.ok(&cmd, "NV_Read");
    let (_, rc, body) = split_response(&resp);
    assert_eq!(rc, 0);
    // parameterSize (4) || TPM2B size (2) || 8 bytes.
    u64::from_be_bytes(body[6..14].try_into().unwrap())
}

#[test]
fn counter_survives_restarts_and_sigkill() {
    let protocol = Protocol::Swtpm;
    let (state, server) = started_on_state(protocol, "nv-counter-1000");
    define(
        &server,
        &format!("{COUNTER:#x}"),
        8,
        "nt=counter|ownerread|ownerwrite|orderly",
        &[],
    );
    terminate(server);

    let mut answered = 0u64;
    let mut phase = 0;
    // Phases of 250 increments: SIGTERM, SIGKILL between commands, SIGKILL
    // while increments stream, then the rest.
    while answered < 1000 {
        let mut server = serve(protocol, &state);
        let mut conn = server.raw_connection();
        conn.ok(&startup_clear_command(), "Startup(CLEAR)");
        if answered > 0 {
            assert_eq!(read_counter(&mut conn), answered, "phase {phase}");
        }
        match phase {
            0 | 1 | 3 => {
                let n = 250.min(1000 - answered);
                for _ in 0..n {
                    conn.ok(&increment_command(), "NV_Increment");
                }
                answered += n;
                if phase == 0 {
                    drop(conn);
                    terminate(server);
                } else {
                    server.sigkill();
                }
            }
            _ => {
                // Stream increments until the server dies under them.
                let writer = std::thread::spawn(move || {
                    let mut n = 0u64;
                    while n < 1000 {
                        match conn.transact(&increment_command()) {
                            Ok(resp) => {
                                let (_, rc, _) = split_response(&resp);
                                assert_eq!(rc, 0, "NV_Increment");
                                n += 1;
                            }
                            Err(_) => return (n, true),
                        }
                    }
                    (n, false)
                });
                std::thread::sleep(Duration::from_millis(150));
                server.sigkill();
                let (n, broken) = writer.join().unwrap();
                assert!(n < 750, "{n} increments before the kill");
                // The increment in flight when the server died may have
                // been committed without an answer: count it if it was.
                let server = serve(protocol, &state);
                let mut conn = server.raw_connection();
                conn.ok(&startup_clear_command(), "Startup(CLEAR)");
                let value = read_counter(&mut conn);
                assert!(
                    value == answered + n || (broken && value == answered + n + 1),
                    "after SIGKILL mid-stream: {value}, answered {}",
                    answered + n
                );
                answered = value;
                drop(conn);
                terminate(server);
            }
        }
        phase += 1;
    }
    let server = serve(protocol, &state);
    let mut conn = server.raw_connection();
    conn.ok(&startup_clear_command(), "Startup(CLEAR)");
    let value = read_counter(&mut conn);
    drop(conn);
    terminate(server);
    assert_eq!(value, answered);
    assert!(answered >= 1000);
}
