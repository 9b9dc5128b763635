//! `vtpm serve --state PATH --key-file PATH`: the TPM's NV state lives in
//! an encrypted state file (docs/state-file.md) and survives the backend
//! process.
//!
//! * NV indices, hierarchy auths and the PCR allocation written through
//!   tpm2-tools come back byte for byte after SIGTERM (orderly: the TPM is
//!   powered off and committed) and after SIGKILL (every command that
//!   changed NV was committed before its response).
//! * Shutdown(STATE) → new backend → Startup(STATE) is a TPM Restart.
//! * Crash safety: NV_Write streamed over one connection while the server
//!   is SIGKILLed at random points; every answered write survives.
//! * The command line refuses a wrong key, a modified or truncated file, a
//!   key file others can read, `--state` without a key and a state file in
//!   use, with one error line and the file untouched.
//! * `--key-fd` reads the same state as `--key-file`.
//!
//! Every test body that drives tpm2-tools takes the protocol; the `both!`
//! macro makes a `#[test]` per protocol (`mssim::name`, `swtpm::name`).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};
use vtpm_tests::{
    Hash, Protocol, Run, ServeOptions, Server, StateDir, TPMA_NV_OWNER_RW, all_pcrs,
    assert_stderr_mentions, hex, nv_define_space_command, nv_read_command, nv_read_response_data,
    nv_write_command, parse_pcr_selection, parse_pcrread, readclock, split_response,
    startup_clear_command, yaml_blocks, yaml_value,
};

use vtpm_tests::both;

both!(
    round_trip_through_tpm2_tools,
    restart_after_sigkill,
    shutdown_state_across_restart,
    startup_state_needs_shutdown_state,
);

/// How long a server has to exit after SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a refused `vtpm serve` has to exit.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a server on `state` (`--state … --key-file …`).
fn serve(protocol: Protocol, state: &StateDir) -> Server {
    ServeOptions::new(protocol).args(state.args()).start()
}

/// Stops `server` with SIGTERM and checks that it exited with status 0
/// and left nothing but the state file, its lock and the keys behind.
fn terminate(mut server: Server, state: &StateDir) {
    let status = server.terminate(EXIT_TIMEOUT);
    assert!(
        status.success(),
        "[{}] vtpm serve exited with {status} after SIGTERM\n--- server log ---\n{}",
        server.protocol(),
        server.log_text()
    );
    assert_eq!(
        state.stray_files(),
        Vec::<String>::new(),
        "files left next to the state file after SIGTERM"
    );
}

/// `tpm2_getcap pcrs`: bank → allocated PCRs.
fn pcr_banks(server: &Server) -> BTreeMap<String, Vec<u32>> {
    let out = server.ok("tpm2_getcap", ["pcrs"]);
    parse_pcr_selection(&out).into_iter().collect()
}

/// One PCR's value from `tpm2_pcrread`.
fn pcr(server: &Server, hash: Hash, index: u32) -> Vec<u8> {
    let sel = format!("{}:{index}", hash.name());
    let out = server.ok("tpm2_pcrread", [&sel]);
    let values = parse_pcrread(&out);
    let [(bank, idx, value)] = values.as_slice() else {
        panic!("tpm2_pcrread {sel} printed {values:?}:\n{out}");
    };
    assert_eq!((bank.as_str(), *idx), (hash.name(), index), "{out}");
    assert_eq!(value.len(), hash.size(), "{sel}: digest size");
    value.clone()
}

/// A flag of `TPM2_PT_PERMANENT` from `tpm2_getcap properties-variable`.
fn permanent_flag(server: &Server, flag: &str) -> String {
    let out = server.ok("tpm2_getcap", ["properties-variable"]);
    let blocks: BTreeMap<String, String> = yaml_blocks(&out).into_iter().collect();
    let perm = blocks
        .get("TPM2_PT_PERMANENT")
        .unwrap_or_else(|| panic!("no TPM2_PT_PERMANENT in:\n{out}"));
    yaml_value(perm, flag)
        .unwrap_or_else(|| panic!("TPM2_PT_PERMANENT has no {flag}:\n{perm}"))
        .to_string()
}

/// Deterministic bytes for index contents.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            u8::try_from((i * 31 + usize::from(seed) * 7) % 251)
                .unwrap()
                .wrapping_add(seed)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Round trip through tpm2-tools
// ---------------------------------------------------------------------------

/// An NV index the round trip defines with tpm2-tools.
struct Index {
    handle: &'static str,
    size: usize,
    /// How it is read and written: `-C o -P <owner>` or `-P <index auth>`.
    owner_auth: bool,
    /// `-p` at definition (index auth).
    auth: Option<&'static str>,
    /// `-C` at definition.
    hierarchy: &'static str,
    attributes: &'static str,
    /// (offset, data) writes.
    writes: Vec<(usize, Vec<u8>)>,
}

const OWNER_AUTH: &str = "owner-secret";
const ENDORSEMENT_AUTH: &str = "endorsement-secret";

fn round_trip_indices() -> Vec<Index> {
    vec![
        Index {
            handle: "0x1500010",
            size: 32,
            owner_auth: true,
            auth: None,
            hierarchy: "o",
            attributes: "ownerread|ownerwrite",
            writes: vec![(5, pattern(10, 1)), (0, pattern(4, 2)), (28, pattern(4, 3))],
        },
        Index {
            handle: "0x1500011",
            size: 100,
            owner_auth: false,
            auth: Some("index-secret"),
            hierarchy: "o",
            attributes: "authread|authwrite",
            writes: vec![(0, pattern(100, 4)), (50, pattern(7, 5))],
        },
        Index {
            handle: "0x1500012",
            size: 16,
            owner_auth: true,
            auth: None,
            hierarchy: "p",
            attributes: "ownerread|ownerwrite|platformcreate",
            writes: vec![(0, pattern(16, 6))],
        },
        Index {
            // Two NV_Writes per tpm2_nvwrite (MAX_NV_BUFFER_SIZE is 1024).
            handle: "0x1500013",
            size: 1500,
            owner_auth: true,
            auth: None,
            hierarchy: "o",
            attributes: "ownerread|ownerwrite",
            writes: vec![(0, pattern(1500, 7)), (1200, pattern(100, 8))],
        },
        Index {
            // Defined, never written.
            handle: "0x1500014",
            size: 8,
            owner_auth: true,
            auth: None,
            hierarchy: "o",
            attributes: "ownerread|ownerwrite",
            writes: vec![],
        },
    ]
}

/// The authorization arguments for reading / writing `index` with the
/// owner password `owner`.
fn index_auth_args(index: &Index, owner: &str) -> Vec<String> {
    if index.owner_auth {
        vec!["-C".into(), "o".into(), "-P".into(), owner.into()]
    } else {
        vec!["-P".into(), index.auth.unwrap_or_default().into()]
    }
}

/// `tpm2_nvread` of the whole index.
fn nvread(server: &Server, index: &Index, owner: &str, dir: &Path) -> Vec<u8> {
    let out = dir.join(format!("{}.read", index.handle));
    let mut args: Vec<OsString> = vec![index.handle.into()];
    args.extend(
        index_auth_args(index, owner)
            .into_iter()
            .map(OsString::from),
    );
    args.extend([
        "-s".into(),
        index.size.to_string().into(),
        "-o".into(),
        out.clone().into(),
    ]);
    server.ok("tpm2_nvread", &args);
    std::fs::read(&out).unwrap_or_else(|e| panic!("reading {}: {e}", out.display()))
}

fn round_trip_through_tpm2_tools(protocol: Protocol) {
    let state = StateDir::new("state-round-trip");
    let server = serve(protocol, &state);
    server.startup_clear();
    assert!(
        state.state().is_file(),
        "no state file after the first start"
    );
    let scratch = server.dir();
    let indices = round_trip_indices();

    for index in &indices {
        let mut args = vec![
            index.handle.to_string(),
            "-C".into(),
            index.hierarchy.into(),
            "-s".into(),
            index.size.to_string(),
            "-a".into(),
            index.attributes.into(),
        ];
        if let Some(auth) = index.auth {
            args.extend(["-p".into(), auth.into()]);
        }
        server.ok("tpm2_nvdefine", &args);
        for (n, (offset, data)) in index.writes.iter().enumerate() {
            let file = scratch.write(&format!("{}.{n}", index.handle), data);
            let mut args: Vec<OsString> = vec![index.handle.into()];
            args.extend(index_auth_args(index, "").into_iter().map(OsString::from));
            args.extend([
                "-i".into(),
                file.into(),
                "--offset".into(),
                offset.to_string().into(),
            ]);
            server.ok("tpm2_nvwrite", &args);
        }
    }

    // What the indices hold, as the tools read it before the restart.
    let mut contents = BTreeMap::new();
    for index in indices.iter().filter(|i| !i.writes.is_empty()) {
        let data = nvread(&server, index, "", scratch.path());
        assert_eq!(data.len(), index.size, "{}: size read", index.handle);
        for (offset, written) in &index.writes {
            // Later writes may overlap earlier ones: check the last write
            // of every byte.
            for (i, b) in written.iter().enumerate() {
                let at = offset + i;
                let last = index
                    .writes
                    .iter()
                    .rev()
                    .find(|(o, d)| (*o..*o + d.len()).contains(&at))
                    .map(|(o, d)| d[at - o]);
                assert_eq!(
                    Some(data[at]),
                    last,
                    "{}: byte {at} (written {b:#04x})",
                    index.handle
                );
            }
        }
        contents.insert(index.handle, data);
    }
    let unwritten = indices.iter().find(|i| i.writes.is_empty()).unwrap();
    let r = server.fails("tpm2_nvread", [unwritten.handle, "-C", "o", "-s", "8"]);
    assert_stderr_mentions(&r, &["0x14A"]);

    let public_before = server.ok("tpm2_nvreadpublic", std::iter::empty::<&str>());
    for index in &indices {
        assert!(
            public_before.contains(&format!("{}:", index.handle)),
            "tpm2_nvreadpublic does not list {}:\n{public_before}",
            index.handle
        );
    }

    server.ok("tpm2_changeauth", ["-c", "o", OWNER_AUTH]);
    server.ok("tpm2_changeauth", ["-c", "e", ENDORSEMENT_AUTH]);
    let out = server.ok("tpm2_pcrallocate", ["sha1:none+sha256:all+sha384:all"]);
    let printed: BTreeMap<String, Vec<u32>> = parse_pcr_selection(&out).into_iter().collect();
    assert_eq!(
        printed.get("sha384"),
        Some(&all_pcrs()),
        "tpm2_pcrallocate output:\n{out}"
    );
    // The new allocation waits for the next _TPM_Init.
    assert_eq!(pcr_banks(&server).get("sha1"), Some(&all_pcrs()));

    terminate(server, &state);

    // A new backend on the same file.
    let server = serve(protocol, &state);
    server.startup_clear();
    let scratch = server.dir();

    let public_after = server.ok("tpm2_nvreadpublic", std::iter::empty::<&str>());
    assert_eq!(
        public_after, public_before,
        "tpm2_nvreadpublic after the restart differs from before"
    );
    for index in indices.iter().filter(|i| !i.writes.is_empty()) {
        let data = nvread(&server, index, OWNER_AUTH, scratch.path());
        assert_eq!(
            hex(&data),
            hex(&contents[index.handle]),
            "{}: contents after the restart",
            index.handle
        );
    }
    let r = server.fails(
        "tpm2_nvread",
        [unwritten.handle, "-C", "o", "-P", OWNER_AUTH, "-s", "8"],
    );
    assert_stderr_mentions(&r, &["0x14A"]);

    // Index auth: the right one works (above), a wrong one does not.
    let with_index_auth = &indices[1];
    let r = server.fails(
        "tpm2_nvread",
        [
            with_index_auth.handle,
            "-P",
            "not-the-index-secret",
            "-s",
            "4",
        ],
    );
    assert_stderr_mentions(&r, &["0x98E", "0x9A2", "authorization"]);

    // The new owner and endorsement auths work; the old (empty) ones fail.
    let owner_index = &indices[0];
    let r = server.fails("tpm2_nvread", [owner_index.handle, "-C", "o", "-s", "4"]);
    assert_stderr_mentions(&r, &["0x9A2", "0x98E", "authorization"]);
    assert_eq!(permanent_flag(&server, "ownerAuthSet"), "1");
    assert_eq!(permanent_flag(&server, "endorsementAuthSet"), "1");
    let r = server.fails("tpm2_changeauth", ["-c", "e", "whatever"]);
    assert_stderr_mentions(&r, &["0x9A2", "0x98E", "authorization"]);
    let r = server.fails("tpm2_changeauth", ["-c", "o", "whatever"]);
    assert_stderr_mentions(&r, &["0x9A2", "0x98E", "authorization"]);
    server.ok(
        "tpm2_changeauth",
        ["-c", "e", "-p", ENDORSEMENT_AUTH, ENDORSEMENT_AUTH],
    );
    server.ok("tpm2_changeauth", ["-c", "o", "-p", OWNER_AUTH, OWNER_AUTH]);

    // The allocation made before the restart is in force.
    let banks = pcr_banks(&server);
    assert_eq!(banks.get("sha1"), Some(&vec![]), "{banks:?}");
    assert_eq!(banks.get("sha256"), Some(&all_pcrs()), "{banks:?}");
    assert_eq!(banks.get("sha384"), Some(&all_pcrs()), "{banks:?}");
    assert_eq!(pcr(&server, Hash::Sha384, 0), vec![0; 48]);

    terminate(server, &state);
}

// ---------------------------------------------------------------------------
// SIGKILL: what was answered was committed
// ---------------------------------------------------------------------------

fn restart_after_sigkill(protocol: Protocol) {
    let state = StateDir::new("state-sigkill");
    let mut server = serve(protocol, &state);
    server.startup_clear();
    let data = pattern(64, 9);
    let file = server.dir().write("data", &data);
    server.ok(
        "tpm2_nvdefine",
        [
            "0x1500020",
            "-C",
            "o",
            "-s",
            "64",
            "-a",
            "ownerread|ownerwrite",
        ],
    );
    server.ok(
        "tpm2_nvwrite",
        [
            "0x1500020".as_ref(),
            "-C".as_ref(),
            "o".as_ref(),
            "-i".as_ref(),
            file.as_os_str(),
        ],
    );
    server.ok("tpm2_changeauth", ["-c", "o", OWNER_AUTH]);
    let public_before = server.ok("tpm2_nvreadpublic", ["0x1500020"]);
    server.sigkill();

    let server = serve(protocol, &state);
    server.startup_clear();
    let public_after = server.ok("tpm2_nvreadpublic", ["0x1500020"]);
    assert_eq!(public_after, public_before, "NV public area after SIGKILL");
    let out = server.dir().join("read");
    server.ok(
        "tpm2_nvread",
        [
            "0x1500020".as_ref(),
            "-C".as_ref(),
            "o".as_ref(),
            "-P".as_ref(),
            OWNER_AUTH.as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ],
    );
    assert_eq!(
        hex(&std::fs::read(&out).unwrap()),
        hex(&data),
        "NV data after SIGKILL"
    );
    server.fails("tpm2_nvread", ["0x1500020", "-C", "o", "-s", "4"]);
    terminate(server, &state);
}

// ---------------------------------------------------------------------------
// Shutdown(STATE) across a backend restart
// ---------------------------------------------------------------------------

/// Extends PCR 5 (sha256) with a known digest; returns the new value.
fn extend_pcr5(server: &Server) -> Vec<u8> {
    let digest = Hash::Sha256.digest(&[b"state file"]);
    server.ok("tpm2_pcrextend", [format!("5:sha256={}", hex(&digest))]);
    let value = Hash::Sha256.extend(&[0; 32], &digest);
    assert_eq!(
        pcr(server, Hash::Sha256, 5),
        value,
        "PCR 5 after the extend"
    );
    value
}

fn shutdown_state_across_restart(protocol: Protocol) {
    let state = StateDir::new("state-shutdown");
    let server = serve(protocol, &state);
    server.startup_clear();
    let before = readclock(&server);
    let value = extend_pcr5(&server);
    // No -c: Shutdown(STATE).
    server.ok("tpm2_shutdown", std::iter::empty::<&str>());
    terminate(server, &state);

    // A backend started and stopped without any command keeps the saved
    // state (no Startup consumed it).
    let server = serve(protocol, &state);
    terminate(server, &state);

    let server = serve(protocol, &state);
    // No -c: Startup(STATE), a TPM Restart.
    server.ok("tpm2_startup", std::iter::empty::<&str>());
    assert_eq!(
        pcr(&server, Hash::Sha256, 5),
        value,
        "PCR 5 after Shutdown(STATE), a new backend and Startup(STATE)"
    );
    let after = readclock(&server);
    assert_eq!(
        (after.reset_count, after.restart_count),
        (before.reset_count, before.restart_count + 1),
        "a TPM Restart counts a restart, not a reset"
    );
    server.ok("tpm2_getrandom", ["8", "--hex"]);
    terminate(server, &state);

    // No Shutdown since that Startup: the next Startup(STATE) is refused.
    let server = serve(protocol, &state);
    let r = server.fails("tpm2_startup", std::iter::empty::<&str>());
    assert_stderr_mentions(&r, &["0x1C4"]);
    server.startup_clear();
    terminate(server, &state);
}

fn startup_state_needs_shutdown_state(protocol: Protocol) {
    let state = StateDir::new("state-no-shutdown");
    let server = serve(protocol, &state);
    server.startup_clear();
    let before = readclock(&server);
    extend_pcr5(&server);
    terminate(server, &state);

    let server = serve(protocol, &state);
    let r = server.fails("tpm2_startup", std::iter::empty::<&str>());
    assert_stderr_mentions(&r, &["0x1C4"]);
    server.startup_clear();
    assert_eq!(
        pcr(&server, Hash::Sha256, 5),
        vec![0; 32],
        "PCR 5 after Startup(CLEAR)"
    );
    let after = readclock(&server);
    assert_eq!(
        after.reset_count,
        before.reset_count + 1,
        "Startup(CLEAR) is a TPM Reset: {before:?} → {after:?}"
    );
    terminate(server, &state);
}

// ---------------------------------------------------------------------------
// Crash safety: NV_Write streamed while the server is SIGKILLed
// ---------------------------------------------------------------------------

/// xorshift64*: a tiny seeded PRNG.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0), close enough for a test.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const CRASH_INDICES: [u32; 4] = [0x0150_0100, 0x0150_0101, 0x0150_0102, 0x0150_0103];
const CRASH_INDEX_SIZE: usize = 64;
const CRASH_WRITE_SIZE: usize = 8;
/// At least this many rounds (kill / restart cycles) ...
const CRASH_MIN_ROUNDS: usize = 5;
/// ... and at least this many answered NV_Writes in all.
const CRASH_MIN_WRITES: usize = 1000;
/// Gives up adding rounds after this long (the minimums above failing).
const CRASH_BUDGET: Duration = Duration::from_secs(25);

/// One NV_Write of the crash test.
#[derive(Debug, Clone, Copy)]
struct NvWrite {
    index: usize,
    offset: usize,
    value: [u8; CRASH_WRITE_SIZE],
}

/// What the writer saw in one round.
#[derive(Debug)]
struct Round {
    answered: Vec<NvWrite>,
    in_flight: Option<NvWrite>,
}

/// Streams NV_Writes over one connection until it breaks.
fn stream_writes(mut conn: vtpm_tests::RawConnection, mut rng: Rng, mut seq: u64) -> Round {
    let mut answered = Vec::new();
    loop {
        let index = usize::try_from(rng.below(CRASH_INDICES.len() as u64)).unwrap();
        let offset =
            usize::try_from(rng.below((CRASH_INDEX_SIZE - CRASH_WRITE_SIZE + 1) as u64)).unwrap();
        seq += 1;
        let w = NvWrite {
            index,
            offset,
            value: seq.to_be_bytes(),
        };
        let cmd = nv_write_command(
            CRASH_INDICES[index],
            u16::try_from(offset).unwrap(),
            &w.value,
        );
        match conn.transact(&cmd) {
            Ok(resp) => {
                let (_, rc, _) = split_response(&resp);
                assert_eq!(rc, 0, "NV_Write {w:?}: TPM_RC {rc:#x}");
                answered.push(w);
            }
            Err(_) => {
                return Round {
                    answered,
                    in_flight: Some(w),
                };
            }
        }
    }
}

/// Reads the four crash-test indices over `conn`.
fn read_crash_indices(conn: &mut vtpm_tests::RawConnection) -> Vec<Vec<u8>> {
    CRASH_INDICES
        .iter()
        .map(|&h| {
            let resp = conn.ok(
                &nv_read_command(h, 0, u16::try_from(CRASH_INDEX_SIZE).unwrap()),
                "NV_Read",
            );
            nv_read_response_data(&resp)
        })
        .collect()
}

#[test]
fn crash_safety_nv_writes_under_sigkill() {
    let seed = std::env::var("VTPM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2024_u64);
    eprintln!("crash test seed {seed:#x} (set VTPM_CRASH_SEED to change)");
    let mut rng = Rng::new(seed);
    let protocol = Protocol::Swtpm;
    let state = StateDir::new("state-crash");

    // Setup: define the indices and write all of them once (so they are
    // WRITTEN and readable).
    let mut model: Vec<Vec<u8>> = (0..CRASH_INDICES.len())
        .map(|i| vec![u8::try_from(i).unwrap(); CRASH_INDEX_SIZE])
        .collect();
    {
        let server = serve(protocol, &state);
        let mut conn = server.raw_connection();
        conn.ok(&startup_clear_command(), "Startup(CLEAR)");
        for (i, &h) in CRASH_INDICES.iter().enumerate() {
            conn.ok(
                &nv_define_space_command(
                    h,
                    TPMA_NV_OWNER_RW,
                    u16::try_from(CRASH_INDEX_SIZE).unwrap(),
                ),
                "NV_DefineSpace",
            );
            conn.ok(&nv_write_command(h, 0, &model[i]), "NV_Write (initial)");
        }
        terminate(server, &state);
    }

    let started = Instant::now();
    let mut total_answered = 0usize;
    let mut rounds = 0usize;
    let mut seq = 0u64;
    let mut in_flight_seen = 0usize;
    // Rounds whose kill left a temporary file behind.
    let mut temps_left = 0usize;
    while rounds < CRASH_MIN_ROUNDS
        || (total_answered < CRASH_MIN_WRITES && started.elapsed() < CRASH_BUDGET)
    {
        let mut server = serve(protocol, &state);
        let mut conn = server.raw_connection();
        conn.ok(&startup_clear_command(), "Startup(CLEAR)");
        let got = read_crash_indices(&mut conn);
        for (i, (g, m)) in got.iter().zip(&model).enumerate() {
            assert_eq!(
                hex(g),
                hex(m),
                "round {rounds}: index {:#x} after the restart (seed {seed:#x})",
                CRASH_INDICES[i]
            );
        }

        let delay = Duration::from_millis(rng.below(301));
        let writer_rng = Rng::new(rng.next());
        let first_seq = seq;
        let writer = std::thread::spawn(move || stream_writes(conn, writer_rng, first_seq));
        std::thread::sleep(delay);
        server.sigkill();
        let round = writer.join().expect("writer thread");
        drop(server);
        if state
            .stray_files()
            .iter()
            .any(|n| n.starts_with(".vtpm.state.tmp."))
        {
            temps_left += 1;
        }

        // Apply what was answered to the model, in order.
        for w in &round.answered {
            model[w.index][w.offset..w.offset + CRASH_WRITE_SIZE].copy_from_slice(&w.value);
        }
        total_answered += round.answered.len();
        seq = round
            .in_flight
            .map_or(first_seq + round.answered.len() as u64, |w| {
                u64::from_be_bytes(w.value)
            });

        // Restart and check: answered writes are all there; the one in
        // flight is either fully there or not at all; nothing else changed.
        let server = serve(protocol, &state);
        assert_eq!(
            state.stray_files(),
            Vec::<String>::new(),
            "round {rounds}: files left next to the state file after the restart"
        );
        let mut conn = server.raw_connection();
        conn.ok(&startup_clear_command(), "Startup(CLEAR)");
        let got = read_crash_indices(&mut conn);
        let context = format!(
            "round {rounds} (seed {seed:#x}, kill after {delay:?}, {} writes answered, in flight {:?})",
            round.answered.len(),
            round.in_flight
        );
        if let Some(w) = round.in_flight {
            let region = w.offset..w.offset + CRASH_WRITE_SIZE;
            let old = &model[w.index][region.clone()];
            let now = &got[w.index][region.clone()];
            assert!(
                now == old || now == w.value,
                "{context}: the in-flight write's region holds {} (old {}, new {})",
                hex(now),
                hex(old),
                hex(&w.value)
            );
            if now == w.value && now != old {
                in_flight_seen += 1;
            }
            model[w.index][region]
                .copy_from_slice(&got[w.index][w.offset..w.offset + CRASH_WRITE_SIZE]);
        }
        for (i, (g, m)) in got.iter().zip(&model).enumerate() {
            assert_eq!(
                hex(g),
                hex(m),
                "{context}: index {:#x} does not hold what the answered writes wrote",
                CRASH_INDICES[i]
            );
        }
        drop(conn);
        // A restart after the kill removed any temporary file the killed
        // writer left; the clean SIGTERM leaves none.
        terminate(server, &state);
        rounds += 1;
    }
    eprintln!(
        "crash test: {rounds} rounds, {total_answered} answered NV_Writes, {in_flight_seen} in-flight \
         writes found committed, {temps_left} kills left a temporary file, {:?}",
        started.elapsed()
    );
    assert!(
        total_answered >= CRASH_MIN_WRITES,
        "only {total_answered} NV_Writes answered in {rounds} rounds within {CRASH_BUDGET:?}"
    );
}

// ---------------------------------------------------------------------------
// Command-line refusals
// ---------------------------------------------------------------------------

/// A state directory with a TPM on it: an index 0x1500030 holding
/// `pattern(32, 11)`, written through a raw connection.
fn state_with_index(tag: &str) -> StateDir {
    let state = StateDir::new(tag);
    let server = serve(Protocol::Swtpm, &state);
    let mut conn = server.raw_connection();
    conn.ok(&startup_clear_command(), "Startup(CLEAR)");
    conn.ok(
        &nv_define_space_command(0x0150_0030, TPMA_NV_OWNER_RW, 32),
        "NV_DefineSpace",
    );
    conn.ok(
        &nv_write_command(0x0150_0030, 0, &pattern(32, 11)),
        "NV_Write",
    );
    drop(conn);
    terminate(server, &state);
    state
}

/// Starts a server with `options`, checks that index 0x1500030 holds what
/// [`state_with_index`] wrote, and stops it.
fn check_index(options: &ServeOptions, state: &StateDir) {
    let server = options.start();
    let mut conn = server.raw_connection();
    conn.ok(&startup_clear_command(), "Startup(CLEAR)");
    let data = nv_read_response_data(&conn.ok(&nv_read_command(0x0150_0030, 0, 32), "NV_Read"));
    assert_eq!(hex(&data), hex(&pattern(32, 11)), "index 0x1500030");
    drop(conn);
    terminate(server, state);
}

/// Runs `vtpm serve` with `args` (plus `--state` when `state_path` is
/// given) and checks it refuses: non-zero exit, one error line on stderr
/// mentioning `needle`, nothing on stdout, and the state file unchanged.
fn assert_refused(state_path: &Path, args: &[OsString], needle: &str) -> Run {
    let before = std::fs::read(state_path).ok();
    let run = ServeOptions::new(Protocol::Swtpm)
        .args(args)
        .run_to_exit(REFUSAL_TIMEOUT);
    assert!(!run.success(), "expected vtpm serve to refuse: {run}");
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "expected one error line: {run}");
    assert!(
        lines[0].starts_with("vtpm: ") && lines[0].contains(needle),
        "expected the error line to mention {needle:?}: {run}"
    );
    assert_eq!(run.stdout, "", "{run}");
    assert_eq!(
        std::fs::read(state_path).ok(),
        before,
        "the state file changed: {run}"
    );
    run
}

fn state_args(state: &Path, key: &Path) -> Vec<OsString> {
    vec![
        "--state".into(),
        state.into(),
        "--key-file".into(),
        key.into(),
    ]
}

#[test]
fn refuses_wrong_key() {
    let state = state_with_index("state-wrong-key");
    let other = state.write_key("other.key", &[0x42; 32], 0o600);
    assert_refused(
        &state.state(),
        &state_args(&state.state(), &other),
        "wrong state key",
    );
    check_index(
        &ServeOptions::new(Protocol::Swtpm).args(state.args()),
        &state,
    );
}

#[test]
fn refuses_modified_file() {
    let state = state_with_index("state-flipped");
    let original = state.state_bytes();
    // A byte of the header's salt, of the ciphertext, and of the MAC.
    for at in [40, 100, original.len() - 1] {
        let mut flipped = original.clone();
        flipped[at] ^= 0x01;
        std::fs::write(state.state(), &flipped).unwrap();
        assert_refused(&state.state(), &state.args(), "corrupt or was modified");
    }
    std::fs::write(state.state(), &original).unwrap();
    check_index(
        &ServeOptions::new(Protocol::Swtpm).args(state.args()),
        &state,
    );
}

#[test]
fn refuses_truncated_file() {
    let state = state_with_index("state-truncated");
    let original = state.state_bytes();
    // Short by one byte, inside the header, and empty: never a fresh TPM
    // over an existing file.
    for len in [original.len() - 1, 40, 0] {
        std::fs::write(state.state(), &original[..len]).unwrap();
        assert_refused(&state.state(), &state.args(), "truncated");
    }
    std::fs::write(state.state(), &original).unwrap();
    check_index(
        &ServeOptions::new(Protocol::Swtpm).args(state.args()),
        &state,
    );
}

#[test]
fn refuses_key_file_readable_by_others() {
    let state = state_with_index("state-key-mode");
    let key = std::fs::read(state.key()).unwrap();
    for mode in [0o644, 0o640, 0o604] {
        let open = state.write_key("open.key", &key, mode);
        let run = assert_refused(
            &state.state(),
            &state_args(&state.state(), &open),
            "accessible to group or others",
        );
        assert!(
            run.stderr.contains(&format!("mode 0{mode:o}")),
            "the error names the mode: {run}"
        );
    }
}

#[test]
fn refuses_state_without_key() {
    let state = state_with_index("state-no-key");
    assert_refused(
        &state.state(),
        &["--state".into(), state.state().into()],
        "--key-file",
    );
    // No state file yet: none is created either.
    let fresh = state.path().join("fresh.state");
    assert_refused(
        &fresh,
        &["--state".into(), fresh.clone().into()],
        "--key-file",
    );
    assert!(
        !fresh.exists(),
        "--state without a key created {}",
        fresh.display()
    );
}

#[test]
fn refuses_state_file_in_use() {
    let state = state_with_index("state-in-use");
    let server = serve(Protocol::Swtpm, &state);
    let mut conn = server.raw_connection();
    conn.ok(&startup_clear_command(), "Startup(CLEAR)");
    assert_refused(&state.state(), &state.args(), "in use");
    // The first server still serves.
    let data = nv_read_response_data(&conn.ok(&nv_read_command(0x0150_0030, 0, 32), "NV_Read"));
    assert_eq!(hex(&data), hex(&pattern(32, 11)));
    drop(conn);
    terminate(server, &state);
}

// ---------------------------------------------------------------------------
// --key-fd
// ---------------------------------------------------------------------------

#[test]
fn key_fd_reads_the_same_state() {
    let state = state_with_index("state-key-fd");
    let fd_args: Vec<OsString> = vec![
        "--state".into(),
        state.state().into(),
        "--key-fd".into(),
        "0".into(),
    ];
    // The raw key on stdin.
    check_index(
        &ServeOptions::new(Protocol::Swtpm)
            .args(&fd_args)
            .stdin_file(state.key()),
        &state,
    );
    // The same key as 64 hex digits and a newline.
    let key = std::fs::read(state.key()).unwrap();
    let hex_key = state.write_key("hex.key", format!("{}\n", hex(&key)).as_bytes(), 0o600);
    check_index(
        &ServeOptions::new(Protocol::Swtpm)
            .args(&fd_args)
            .stdin_file(&hex_key),
        &state,
    );
    // A wrong key on the descriptor is refused like a wrong key file.
    let wrong = state.write_key("wrong.key", &[0x24; 32], 0o600);
    let before = state.state_bytes();
    let run = ServeOptions::new(Protocol::Swtpm)
        .args(&fd_args)
        .stdin_file(&wrong)
        .run_to_exit(REFUSAL_TIMEOUT);
    assert!(!run.success(), "{run}");
    assert_stderr_mentions(&run, &["wrong state key"]);
    assert_eq!(state.state_bytes(), before, "the state file changed: {run}");
}
