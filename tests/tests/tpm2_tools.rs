//! `vtpm serve` driven by Debian's tpm2-tools over the tss `mssim` and
//! `swtpm` TCTIs. Every test body is one function taking the protocol; the
//! `both!` macro makes a `#[test]` per protocol (`mssim::name`,
//! `swtpm::name`), each with its own server.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use vtpm_tests::readclock as readclock_info;
use vtpm_tests::{
    Hash, Protocol, Server, TempDir, all_pcrs, assert_stderr_mentions, hex, parse_pcr_selection,
    parse_pcrread, started, unhex, yaml_blocks, yaml_value,
};

use vtpm_tests::both;
use vtpm_tests::xorshift32;

both!(
    getrandom,
    getcap,
    pcr_read_extend_reset,
    pcr_event,
    pcr_event_raw,
    pcr_allocate,
    pcr_allocate_raw,
    hash,
    selftest,
    readclock,
    startup_shutdown_cycles,
    testparms,
);

// tpm2-tools 5.4 turns every `-P`/`-p` password (the empty default
// included) into an unbound, unsalted HMAC session, so tpm2_pcrevent and
// tpm2_pcrallocate exercise TPM2_StartAuthSession, HMAC authorization and
// the response HMAC that ESAPI verifies; the `*_raw` variants send the same
// commands with a password session (TPM_RS_PW).

/// Reads PCRs with `tpm2_pcrread <selection>`: (bank, index) → value.
fn pcrread(server: &Server, selection: &str) -> BTreeMap<(String, u32), Vec<u8>> {
    let out = server.ok("tpm2_pcrread", [selection]);
    let mut map = BTreeMap::new();
    for (bank, idx, value) in parse_pcrread(&out) {
        assert!(
            map.insert((bank.clone(), idx), value).is_none(),
            "{bank}:{idx} printed twice by tpm2_pcrread {selection}:\n{out}"
        );
    }
    map
}

/// One PCR's value.
fn pcr(server: &Server, hash: Hash, index: u32) -> Vec<u8> {
    let sel = format!("{}:{index}", hash.name());
    let map = pcrread(server, &sel);
    let v = map
        .get(&(hash.name().to_string(), index))
        .unwrap_or_else(|| panic!("tpm2_pcrread {sel} printed no value: {map:?}"));
    assert_eq!(v.len(), hash.size(), "{sel}: digest size");
    v.clone()
}

/// The top-level blocks of a tool's YAML-ish output, by name.
fn blocks(out: &str) -> BTreeMap<String, String> {
    yaml_blocks(out).into_iter().collect()
}

/// `tpm2_getcap <cap>`, whose output is a list of `- 0x…` handles.
fn handle_list(server: &Server, cap: &str) -> Vec<u32> {
    let out = server.ok("tpm2_getcap", [cap]);
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let h = l
                .strip_prefix("- 0x")
                .unwrap_or_else(|| panic!("tpm2_getcap {cap}: unexpected line {l:?} in:\n{out}"));
            u32::from_str_radix(h, 16)
                .unwrap_or_else(|e| panic!("tpm2_getcap {cap}: bad handle {l:?}: {e}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 1. tpm2_getrandom
// ---------------------------------------------------------------------------

fn getrandom(protocol: Protocol) {
    let server = started(protocol);
    let is_hex32 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let a = server.ok("tpm2_getrandom", ["16", "--hex"]);
    let a = a.trim();
    assert!(
        is_hex32(a),
        "tpm2_getrandom 16 --hex printed {a:?}, expected 32 hex digits"
    );
    let b = server.ok("tpm2_getrandom", ["16", "--hex"]);
    let b = b.trim();
    assert!(
        is_hex32(b),
        "tpm2_getrandom 16 --hex printed {b:?}, expected 32 hex digits"
    );
    assert_ne!(a, b, "two GetRandom(16) calls returned the same bytes");

    let dir = TempDir::new("getrandom");
    let file = dir.join("random.bin");
    server.ok(
        "tpm2_getrandom",
        ["-o".as_ref(), file.as_os_str(), "64".as_ref()],
    );
    let bytes = dir.read("random.bin");
    assert_eq!(
        bytes.len(),
        64,
        "tpm2_getrandom -o file 64 wrote {} bytes",
        bytes.len()
    );
    assert!(
        bytes.iter().any(|&b| b != 0),
        "64 random bytes are all zero"
    );
}

// ---------------------------------------------------------------------------
// 2. tpm2_getcap
// ---------------------------------------------------------------------------

fn getcap(protocol: Protocol) {
    let server = started(protocol);

    // The tool's list of capabilities: every one must work.
    let list = server.ok("tpm2_getcap", ["-l"]);
    let caps: Vec<&str> = list
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .collect();
    for expected in [
        "algorithms",
        "commands",
        "pcrs",
        "properties-fixed",
        "properties-variable",
        "ecc-curves",
        "handles-transient",
        "handles-persistent",
        "handles-permanent",
        "handles-pcr",
        "handles-nv-index",
        "handles-loaded-session",
        "handles-saved-session",
    ] {
        assert!(
            caps.contains(&expected),
            "tpm2_getcap -l does not list {expected}:\n{list}"
        );
    }
    for cap in &caps {
        server.ok("tpm2_getcap", [*cap]);
    }

    // algorithms
    let out = server.ok("tpm2_getcap", ["algorithms"]);
    let algs = blocks(&out);
    let check_alg = |name: &str, value: &str, bits: &[(&str, &str)]| {
        let block = algs
            .get(name)
            .unwrap_or_else(|| panic!("tpm2_getcap algorithms does not list {name}:\n{out}"));
        assert_eq!(
            yaml_value(block, "value"),
            Some(value),
            "{name}: algorithm ID in:\n{block}"
        );
        for (bit, want) in bits {
            assert_eq!(
                yaml_value(block, bit),
                Some(*want),
                "{name}: {bit} in:\n{block}"
            );
        }
    };
    for (name, id) in [
        ("sha1", "0x4"),
        ("sha256", "0xB"),
        ("sha384", "0xC"),
        ("sha512", "0xD"),
    ] {
        check_alg(
            name,
            id,
            &[("hash", "1"), ("asymmetric", "0"), ("symmetric", "0")],
        );
    }
    check_alg("rsa", "0x1", &[("asymmetric", "1"), ("object", "1")]);
    check_alg("ecc", "0x23", &[("asymmetric", "1"), ("object", "1")]);
    check_alg("aes", "0x6", &[("symmetric", "1")]);
    check_alg("hmac", "0x5", &[("hash", "1"), ("signing", "1")]);

    // commands
    let out = server.ok("tpm2_getcap", ["commands"]);
    let cmds = blocks(&out);
    for (name, index) in [
        ("TPM2_CC_Startup", "0x144"),
        ("TPM2_CC_Shutdown", "0x145"),
        ("TPM2_CC_SelfTest", "0x143"),
        ("TPM2_CC_GetRandom", "0x17b"),
        ("TPM2_CC_GetCapability", "0x17a"),
        ("TPM2_CC_GetTestResult", "0x17c"),
        ("TPM2_CC_PCR_Extend", "0x182"),
        ("TPM2_CC_PCR_Read", "0x17e"),
        ("TPM2_CC_PCR_Event", "0x13c"),
        ("TPM2_CC_PCR_Reset", "0x13d"),
        ("TPM2_CC_PCR_Allocate", "0x12b"),
        ("TPM2_CC_Hash", "0x17d"),
        ("TPM2_CC_HashSequenceStart", "0x186"),
        ("TPM2_CC_SequenceUpdate", "0x15c"),
        ("TPM2_CC_SequenceComplete", "0x13e"),
        ("TPM2_CC_ReadClock", "0x181"),
        ("TPM2_CC_TestParms", "0x18a"),
        ("TPM2_CC_CreatePrimary", "0x131"),
        ("TPM2_CC_Create", "0x153"),
        ("TPM2_CC_Load", "0x157"),
    ] {
        let block = cmds
            .get(name)
            .unwrap_or_else(|| panic!("tpm2_getcap commands does not list {name}:\n{out}"));
        assert_eq!(
            yaml_value(block, "commandIndex"),
            Some(index),
            "{name}: commandIndex in:\n{block}"
        );
    }
    assert!(
        !cmds.contains_key("TPM2_CC_FieldUpgradeStart"),
        "tpm2_getcap commands lists TPM2_CC_FieldUpgradeStart, which vtpm does not implement:\n{out}"
    );
    assert_eq!(
        yaml_value(&cmds["TPM2_CC_CreatePrimary"], "rHandle"),
        Some("1"),
        "CreatePrimary returns a handle"
    );
    assert_eq!(
        yaml_value(&cmds["TPM2_CC_PCR_Extend"], "cHandles"),
        Some("0x1"),
        "PCR_Extend has one handle"
    );
    assert_eq!(
        yaml_value(&cmds["TPM2_CC_PCR_Allocate"], "nv"),
        Some("1"),
        "PCR_Allocate writes NV"
    );

    // pcrs
    let out = server.ok("tpm2_getcap", ["pcrs"]);
    let banks: BTreeMap<String, Vec<u32>> = parse_pcr_selection(&out).into_iter().collect();
    for bank in ["sha1", "sha256"] {
        assert_eq!(
            banks.get(bank),
            Some(&all_pcrs()),
            "tpm2_getcap pcrs: bank {bank}:\n{out}"
        );
    }

    // properties-fixed
    let out = server.ok("tpm2_getcap", ["properties-fixed"]);
    let props = blocks(&out);
    let prop = |name: &str| {
        props
            .get(name)
            .unwrap_or_else(|| panic!("tpm2_getcap properties-fixed lacks {name}:\n{out}"))
    };
    let fam = prop("TPM2_PT_FAMILY_INDICATOR");
    assert_eq!(
        yaml_value(fam, "raw"),
        Some("0x322E3000"),
        "TPM2_PT_FAMILY_INDICATOR:\n{fam}"
    );
    assert_eq!(
        yaml_value(fam, "value"),
        Some("\"2.0\""),
        "TPM2_PT_FAMILY_INDICATOR:\n{fam}"
    );
    let manu = prop("TPM2_PT_MANUFACTURER");
    assert_eq!(
        yaml_value(manu, "raw"),
        Some("0x5654504D"),
        "TPM2_PT_MANUFACTURER:\n{manu}"
    );
    assert_eq!(
        yaml_value(manu, "value"),
        Some("\"VTPM\""),
        "TPM2_PT_MANUFACTURER:\n{manu}"
    );
    for (name, raw) in [
        ("TPM2_PT_PCR_COUNT", "0x18"),
        ("TPM2_PT_MAX_COMMAND_SIZE", "0x1000"),
        ("TPM2_PT_INPUT_BUFFER", "0x400"),
        ("TPM2_PT_MAX_DIGEST", "0x40"),
    ] {
        assert_eq!(
            yaml_value(prop(name), "raw"),
            Some(raw),
            "{name}:\n{}",
            prop(name)
        );
    }
    // TPM_PT_TOTAL_COMMANDS counts what TPM_CAP_COMMANDS lists.
    if let Some(total) = props
        .get("TPM2_PT_TOTAL_COMMANDS")
        .and_then(|b| yaml_value(b, "raw"))
    {
        let total = u32::from_str_radix(total.trim_start_matches("0x"), 16).unwrap();
        assert_eq!(
            total as usize,
            cmds.len(),
            "TPM2_PT_TOTAL_COMMANDS vs the commands tpm2_getcap commands lists"
        );
    }

    // properties-variable
    let out = server.ok("tpm2_getcap", ["properties-variable"]);
    let vars = blocks(&out);
    let sc = vars
        .get("TPM2_PT_STARTUP_CLEAR")
        .unwrap_or_else(|| panic!("no TPM2_PT_STARTUP_CLEAR in:\n{out}"));
    for flag in ["phEnable", "shEnable", "ehEnable", "phEnableNV"] {
        assert_eq!(
            yaml_value(sc, flag),
            Some("1"),
            "TPM2_PT_STARTUP_CLEAR.{flag}:\n{sc}"
        );
    }
    let perm = vars
        .get("TPM2_PT_PERMANENT")
        .unwrap_or_else(|| panic!("no TPM2_PT_PERMANENT in:\n{out}"));
    for flag in [
        "ownerAuthSet",
        "endorsementAuthSet",
        "lockoutAuthSet",
        "inLockout",
    ] {
        assert_eq!(
            yaml_value(perm, flag),
            Some("0"),
            "TPM2_PT_PERMANENT.{flag}:\n{perm}"
        );
    }

    // ecc-curves
    let out = server.ok("tpm2_getcap", ["ecc-curves"]);
    let curves = blocks(&out);
    assert_eq!(
        curves.get("TPM2_ECC_NIST_P256").map(|v| v.trim()),
        Some("0x3"),
        "tpm2_getcap ecc-curves:\n{out}"
    );
    assert_eq!(
        curves.get("TPM2_ECC_NIST_P384").map(|v| v.trim()),
        Some("0x4"),
        "tpm2_getcap ecc-curves:\n{out}"
    );

    // handles
    assert_eq!(
        handle_list(&server, "handles-pcr"),
        all_pcrs(),
        "tpm2_getcap handles-pcr"
    );
    let permanent = handle_list(&server, "handles-permanent");
    for h in [
        0x4000_0001,
        0x4000_0007,
        0x4000_0009,
        0x4000_000A,
        0x4000_000B,
        0x4000_000C,
    ] {
        assert!(
            permanent.contains(&h),
            "tpm2_getcap handles-permanent lacks {h:#x}: {permanent:x?}"
        );
    }
    assert!(
        permanent.windows(2).all(|w| w[0] < w[1]),
        "handles-permanent not in ascending order: {permanent:x?}"
    );
    for cap in [
        "handles-transient",
        "handles-persistent",
        "handles-nv-index",
        "handles-loaded-session",
        "handles-saved-session",
    ] {
        assert_eq!(
            handle_list(&server, cap),
            Vec::<u32>::new(),
            "tpm2_getcap {cap} on a fresh TPM"
        );
    }
}

// ---------------------------------------------------------------------------
// 3. PCRs
// ---------------------------------------------------------------------------

fn zeros(h: Hash) -> Vec<u8> {
    vec![0u8; h.size()]
}

fn ones(h: Hash) -> Vec<u8> {
    vec![0xFFu8; h.size()]
}

fn pcr_read_extend_reset(protocol: Protocol) {
    let server = started(protocol);

    // Initial values after Startup(CLEAR) at locality 0.
    for h in [Hash::Sha1, Hash::Sha256] {
        let sel = format!("{}:0,16,17,23", h.name());
        let m = pcrread(&server, &sel);
        let name = h.name().to_string();
        assert_eq!(m.len(), 4, "tpm2_pcrread {sel}: {m:?}");
        assert_eq!(
            m[&(name.clone(), 0)],
            zeros(h),
            "{}: PCR 0 after Startup(CLEAR)",
            h.name()
        );
        assert_eq!(m[&(name.clone(), 16)], zeros(h), "{}: PCR 16", h.name());
        assert_eq!(
            m[&(name.clone(), 17)],
            ones(h),
            "{}: PCR 17 (DRTM, all ones until reset)",
            h.name()
        );
        assert_eq!(m[&(name, 23)], zeros(h), "{}: PCR 23", h.name());
    }

    // PCR_Extend with one digest per bank.
    let d256 = Hash::Sha256.digest(&[b"vtpm"]);
    let d1 = Hash::Sha1.digest(&[b"vtpm"]);
    server.ok(
        "tpm2_pcrextend",
        [format!("16:sha256={},sha1={}", hex(&d256), hex(&d1))],
    );
    let m = pcrread(&server, "sha1:16+sha256:16");
    let want256 = Hash::Sha256.extend(&zeros(Hash::Sha256), &d256);
    let want1 = Hash::Sha1.extend(&zeros(Hash::Sha1), &d1);
    assert_eq!(
        hex(&m[&("sha256".into(), 16)]),
        hex(&want256),
        "sha256 PCR 16 after extend"
    );
    assert_eq!(
        hex(&m[&("sha1".into(), 16)]),
        hex(&want1),
        "sha1 PCR 16 after extend"
    );

    // A second extend chains on the first.
    server.ok("tpm2_pcrextend", [format!("16:sha256={}", hex(&d256))]);
    let twice = Hash::Sha256.extend(&want256, &d256);
    assert_eq!(
        hex(&pcr(&server, Hash::Sha256, 16)),
        hex(&twice),
        "sha256 PCR 16 after a second extend"
    );
    assert_eq!(
        hex(&pcr(&server, Hash::Sha1, 16)),
        hex(&want1),
        "sha1 PCR 16: not extended the second time"
    );

    // PCR_Reset: 16 and 23 are resettable at locality 0, 0 and 17 are not.
    server.ok("tpm2_pcrreset", ["16"]);
    assert_eq!(
        pcr(&server, Hash::Sha256, 16),
        zeros(Hash::Sha256),
        "sha256 PCR 16 after reset"
    );
    assert_eq!(
        pcr(&server, Hash::Sha1, 16),
        zeros(Hash::Sha1),
        "sha1 PCR 16 after reset"
    );

    let r = server.fails("tpm2_pcrreset", ["0"]);
    assert_stderr_mentions(&r, &["0x907", "locality"]);
    let r = server.fails("tpm2_pcrreset", ["17"]);
    assert_stderr_mentions(&r, &["0x907", "locality"]);
    assert_eq!(
        pcr(&server, Hash::Sha256, 17),
        ones(Hash::Sha256),
        "PCR 17 after a refused reset"
    );

    server.ok("tpm2_pcrextend", [format!("23:sha256={}", hex(&d256))]);
    assert_eq!(
        hex(&pcr(&server, Hash::Sha256, 23)),
        hex(&want256),
        "sha256 PCR 23 after extend"
    );
    assert_eq!(
        pcr(&server, Hash::Sha1, 23),
        zeros(Hash::Sha1),
        "sha1 PCR 23: only the sha256 bank was extended"
    );
    server.ok("tpm2_pcrreset", ["23"]);
    assert_eq!(
        pcr(&server, Hash::Sha256, 23),
        zeros(Hash::Sha256),
        "sha256 PCR 23 after reset"
    );
}

/// Checks the digests PCR_Event returned (alg name → digest) against the
/// test's own, and PCR `index` against the extend of `before` by them.
fn check_event(
    server: &Server,
    index: u32,
    content: &[u8],
    printed: &BTreeMap<String, Vec<u8>>,
    before: &BTreeMap<&str, Vec<u8>>,
) {
    for h in Hash::ALL {
        if let Some(d) = printed.get(h.name()) {
            assert_eq!(
                hex(d),
                hex(&h.digest(&[content])),
                "PCR_Event: {} digest of the {} bytes of data",
                h.name(),
                content.len()
            );
        }
    }
    for h in [Hash::Sha1, Hash::Sha256] {
        assert!(
            printed.contains_key(h.name()),
            "PCR_Event returned no {} digest: {printed:x?}",
            h.name()
        );
        let want = h.extend(&before[h.name()], &h.digest(&[content]));
        assert_eq!(
            hex(&pcr(server, h, index)),
            hex(&want),
            "{} PCR {index} after PCR_Event",
            h.name()
        );
    }
}

fn pcr_event(protocol: Protocol) {
    let server = started(protocol);
    let dir = TempDir::new("pcrevent");
    // Small data: PCR_Event. Over 1024 bytes: tpm2_pcrevent uses an event
    // sequence (HashSequenceStart(TPM_ALG_NULL), SequenceUpdate,
    // EventSequenceComplete).
    let mut before: BTreeMap<&str, Vec<u8>> =
        [("sha1", zeros(Hash::Sha1)), ("sha256", zeros(Hash::Sha256))].into();
    for (name, content) in [
        ("small", b"vtpm integration test: PCR_Event data\n".to_vec()),
        ("big", pattern(3000, 11)),
    ] {
        let file = dir.write(&format!("{name}.bin"), &content);
        let out = server.ok("tpm2_pcrevent", ["16".as_ref(), file.as_os_str()]);
        let printed: BTreeMap<String, Vec<u8>> = out
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(alg, d)| (alg.trim().to_string(), unhex(d)))
            .collect();
        check_event(&server, 16, &content, &printed, &before);
        for h in [Hash::Sha1, Hash::Sha256] {
            before.insert(h.name(), pcr(&server, h, 16));
        }
    }
}

const TPM_CC_PCR_EVENT: u32 = 0x13C;
const TPM_CC_PCR_ALLOCATE: u32 = 0x12B;
const TPM_RH_PLATFORM: u32 = 0x4000_000C;

fn alg_name(alg: u16) -> Option<Hash> {
    match alg {
        0x0004 => Some(Hash::Sha1),
        0x000B => Some(Hash::Sha256),
        0x000C => Some(Hash::Sha384),
        0x000D => Some(Hash::Sha512),
        _ => None,
    }
}

/// PCR_Event sent raw with a password session; PCRs read with tpm2_pcrread.
fn pcr_event_raw(protocol: Protocol) {
    let server = started(protocol);
    let content = b"vtpm integration test: PCR_Event data\n";
    let params = [
        &u16::try_from(content.len()).unwrap().to_be_bytes()[..],
        content,
    ]
    .concat();
    let resp = server.raw_command(
        &vtpm_tests::command_with_password(TPM_CC_PCR_EVENT, 16, &params),
        None,
    );
    let (tag, rc, body) = vtpm_tests::split_response(&resp);
    assert_eq!((tag, rc), (0x8002, 0), "PCR_Event(16): {resp:02x?}");
    // parameterSize | TPML_DIGEST_VALUES | response auth (nonce, attrs, hmac).
    let param_size = u32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
    let params = &body[4..4 + param_size];
    assert_eq!(
        &body[4 + param_size..],
        &[0, 0, 1, 0, 0],
        "PCR_Event: password session response"
    );
    let count = u32::from_be_bytes(params[..4].try_into().unwrap());
    let mut rest = &params[4..];
    let mut printed = BTreeMap::new();
    for _ in 0..count {
        let alg = u16::from_be_bytes([rest[0], rest[1]]);
        let h = alg_name(alg)
            .unwrap_or_else(|| panic!("PCR_Event returned a digest of unknown algorithm {alg:#x}"));
        printed.insert(h.name().to_string(), rest[2..2 + h.size()].to_vec());
        rest = &rest[2 + h.size()..];
    }
    assert!(
        rest.is_empty(),
        "PCR_Event: {} bytes after the digests",
        rest.len()
    );
    let before: BTreeMap<&str, Vec<u8>> =
        [("sha1", zeros(Hash::Sha1)), ("sha256", zeros(Hash::Sha256))].into();
    check_event(&server, 16, content, &printed, &before);
}

// ---------------------------------------------------------------------------
// 4. tpm2_pcrallocate
// ---------------------------------------------------------------------------

fn pcr_allocate(protocol: Protocol) {
    let server = started(protocol);
    let out = server.ok("tpm2_pcrallocate", ["sha1:none+sha256:all+sha384:all"]);
    let printed: BTreeMap<String, Vec<u32>> = parse_pcr_selection(&out).into_iter().collect();
    assert_eq!(
        printed.get("sha1"),
        Some(&vec![]),
        "tpm2_pcrallocate output:\n{out}"
    );
    assert_eq!(
        printed.get("sha256"),
        Some(&all_pcrs()),
        "tpm2_pcrallocate output:\n{out}"
    );
    assert_eq!(
        printed.get("sha384"),
        Some(&all_pcrs()),
        "tpm2_pcrallocate output:\n{out}"
    );
    check_new_allocation(&server);
}

/// PCR_Allocate sent raw with a password session, then the same checks.
fn pcr_allocate_raw(protocol: Protocol) {
    let server = started(protocol);
    // TPML_PCR_SELECTION: sha1 none, sha256 all, sha384 all.
    let mut params = 3u32.to_be_bytes().to_vec();
    for (alg, bits) in [(0x0004u16, 0x00u8), (0x000B, 0xFF), (0x000C, 0xFF)] {
        params.extend_from_slice(&alg.to_be_bytes());
        params.extend_from_slice(&[3, bits, bits, bits]);
    }
    let resp = server.raw_command(
        &vtpm_tests::command_with_password(TPM_CC_PCR_ALLOCATE, TPM_RH_PLATFORM, &params),
        None,
    );
    let (tag, rc, body) = vtpm_tests::split_response(&resp);
    assert_eq!((tag, rc), (0x8002, 0), "PCR_Allocate: {resp:02x?}");
    // parameterSize | allocationSuccess | maxPCR | sizeNeeded | sizeAvailable | auth.
    assert_eq!(
        u32::from_be_bytes(body[..4].try_into().unwrap()),
        13,
        "PCR_Allocate: parameterSize: {resp:02x?}"
    );
    assert_eq!(body[4], 1, "PCR_Allocate: allocationSuccess: {resp:02x?}");
    assert_eq!(
        u32::from_be_bytes(body[5..9].try_into().unwrap()),
        24,
        "PCR_Allocate: maxPCR: {resp:02x?}"
    );
    let needed = u32::from_be_bytes(body[9..13].try_into().unwrap());
    let available = u32::from_be_bytes(body[13..17].try_into().unwrap());
    assert!(
        needed <= available,
        "PCR_Allocate: sizeNeeded {needed} > sizeAvailable {available}"
    );
    assert_eq!(
        &body[17..],
        &[0, 0, 1, 0, 0],
        "PCR_Allocate: password session response"
    );
    check_new_allocation(&server);
}

/// After PCR_Allocate(sha1 none, sha256 all, sha384 all): the old
/// allocation stays until _TPM_Init; after it and Startup(CLEAR) the new
/// one is in force.
fn check_new_allocation(server: &Server) {
    let out = server.ok("tpm2_getcap", ["pcrs"]);
    let banks: BTreeMap<String, Vec<u32>> = parse_pcr_selection(&out).into_iter().collect();
    assert_eq!(
        banks.get("sha1"),
        Some(&all_pcrs()),
        "before _TPM_Init the old allocation stays:\n{out}"
    );
    assert_eq!(
        pcr(server, Hash::Sha1, 0),
        zeros(Hash::Sha1),
        "sha1 PCR 0 before _TPM_Init"
    );

    server.reset();
    server.startup_clear();
    let out = server.ok("tpm2_getcap", ["pcrs"]);
    let banks: BTreeMap<String, Vec<u32>> = parse_pcr_selection(&out).into_iter().collect();
    assert_eq!(
        banks.get("sha256"),
        Some(&all_pcrs()),
        "tpm2_getcap pcrs after the reset:\n{out}"
    );
    assert_eq!(
        banks.get("sha384"),
        Some(&all_pcrs()),
        "tpm2_getcap pcrs after the reset:\n{out}"
    );
    assert!(
        banks.get("sha1").is_none_or(Vec::is_empty),
        "sha1 bank still allocated after the reset:\n{out}"
    );

    assert_eq!(
        pcr(server, Hash::Sha384, 0),
        zeros(Hash::Sha384),
        "sha384 PCR 0"
    );
    assert_eq!(
        pcr(server, Hash::Sha384, 17),
        ones(Hash::Sha384),
        "sha384 PCR 17"
    );
    // The new bank is extended like the others.
    let d = Hash::Sha384.digest(&[b"vtpm"]);
    server.ok("tpm2_pcrextend", [format!("16:sha384={}", hex(&d))]);
    assert_eq!(
        hex(&pcr(server, Hash::Sha384, 16)),
        hex(&Hash::Sha384.extend(&zeros(Hash::Sha384), &d)),
        "sha384 PCR 16 after extend"
    );
    // The sha1 bank is gone: reading it returns no value.
    let m = pcrread(server, "sha1:0+sha256:0");
    assert!(
        !m.contains_key(&("sha1".to_string(), 0)),
        "sha1 PCR 0 still readable after deallocation: {m:?}"
    );
    assert_eq!(
        m.get(&("sha256".to_string(), 0)),
        Some(&zeros(Hash::Sha256)),
        "sha256 PCR 0: {m:?}"
    );
}

// ---------------------------------------------------------------------------
// 5. tpm2_hash
// ---------------------------------------------------------------------------

/// Parses a TPMT_TK_HASHCHECK file: (tag, hierarchy, digest).
fn parse_ticket(bytes: &[u8]) -> (u16, u32, Vec<u8>) {
    assert!(
        bytes.len() >= 8,
        "ticket of {} bytes: {bytes:02x?}",
        bytes.len()
    );
    let tag = u16::from_be_bytes([bytes[0], bytes[1]]);
    let hierarchy = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
    let size = usize::from(u16::from_be_bytes([bytes[6], bytes[7]]));
    assert_eq!(
        bytes.len(),
        8 + size,
        "ticket length vs its digest size: {bytes:02x?}"
    );
    (tag, hierarchy, bytes[8..].to_vec())
}

const TPM_ST_HASHCHECK: u16 = 0x8024;
const TPM_RH_OWNER: u32 = 0x4000_0001;
const TPM_RH_NULL: u32 = 0x4000_0007;

/// Deterministic filler bytes.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    xorshift32(seed.wrapping_mul(2_654_435_761).wrapping_add(1))
        .take(len)
        .map(|x| x.to_le_bytes()[0])
        .collect()
}

fn hash(protocol: Protocol) {
    let server = started(protocol);
    let dir = TempDir::new("hash");
    let small = b"The quick brown fox jumps over the lazy dog".to_vec();
    let big = pattern(5000, 7);
    let files = [
        ("small", dir.write("small.bin", &small), small),
        ("big", dir.write("big.bin", &big), big),
    ];

    for (what, file, data) in &files {
        for h in Hash::ALL {
            let want = hex(&h.digest(&[data]));
            // Default hierarchy (owner) with the ticket written out.
            let ticket = dir.join(&format!("{what}-{}.tk", h.name()));
            let digest_file = dir.join(&format!("{what}-{}.bin", h.name()));
            let out = server.ok(
                "tpm2_hash",
                [
                    "-C".as_ref(),
                    "o".as_ref(),
                    "-g".as_ref(),
                    h.name().as_ref(),
                    "--hex".as_ref(),
                    "-t".as_ref(),
                    ticket.as_os_str(),
                    file.as_os_str(),
                ],
            );
            assert_eq!(
                out.trim(),
                want,
                "tpm2_hash -g {} of the {what} file ({} bytes)",
                h.name(),
                data.len()
            );
            // -o writes the raw digest (and prints nothing).
            server.ok(
                "tpm2_hash",
                [
                    "-g".as_ref(),
                    h.name().as_ref(),
                    "-o".as_ref(),
                    digest_file.as_os_str(),
                    file.as_os_str(),
                ],
            );
            assert_eq!(
                hex(&std::fs::read(&digest_file).unwrap()),
                want,
                "tpm2_hash -o: {} digest of the {what} file",
                h.name()
            );
            let (tag, hierarchy, hmac) = parse_ticket(&std::fs::read(&ticket).unwrap());
            assert_eq!(tag, TPM_ST_HASHCHECK, "{what}/{}: ticket tag", h.name());
            assert_eq!(
                hierarchy,
                TPM_RH_OWNER,
                "{what}/{}: ticket hierarchy",
                h.name()
            );
            assert!(
                !hmac.is_empty() && hmac.iter().any(|&b| b != 0),
                "{what}/{}: empty ticket HMAC {hmac:02x?}",
                h.name()
            );

            // Null hierarchy: no ticket.
            let null_ticket = dir.join(&format!("{what}-{}-null.tk", h.name()));
            let out = server.ok(
                "tpm2_hash",
                [
                    "-C".as_ref(),
                    "n".as_ref(),
                    "-g".as_ref(),
                    h.name().as_ref(),
                    "--hex".as_ref(),
                    "-t".as_ref(),
                    null_ticket.as_os_str(),
                    file.as_os_str(),
                ],
            );
            assert_eq!(
                out.trim(),
                want,
                "tpm2_hash -C n -g {} of the {what} file",
                h.name()
            );
            assert_eq!(
                parse_ticket(&std::fs::read(&null_ticket).unwrap()),
                (TPM_ST_HASHCHECK, TPM_RH_NULL, vec![]),
                "{what}/{}: -C n ticket",
                h.name()
            );
        }
    }

    // The same data and hierarchy give the same ticket (its HMAC is over
    // the digest with a key that lasts until the next TPM Reset).
    let t = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let again = dir.join("again.tk");
    server.ok(
        "tpm2_hash",
        [
            "-g".as_ref(),
            "sha256".as_ref(),
            "-t".as_ref(),
            again.as_os_str(),
            files[0].1.as_os_str(),
        ],
    );
    assert_eq!(
        t("again.tk"),
        t("small-sha256.tk"),
        "tickets for the same data differ"
    );

    // Data that starts with TPM_GENERATED_VALUE gets a NULL ticket, by
    // Hash (small) and by a hash sequence (big) alike.
    for (what, len) in [("generated-small", 16), ("generated-big", 3000)] {
        let mut data = 0xFF54_4347u32.to_be_bytes().to_vec();
        data.extend(pattern(len - 4, 3));
        let file = dir.write(&format!("{what}.bin"), &data);
        let tk = dir.join(&format!("{what}.tk"));
        let out = server.ok(
            "tpm2_hash",
            [
                "-C".as_ref(),
                "o".as_ref(),
                "-g".as_ref(),
                "sha256".as_ref(),
                "--hex".as_ref(),
                "-t".as_ref(),
                tk.as_os_str(),
                file.as_os_str(),
            ],
        );
        assert_eq!(
            out.trim(),
            hex(&Hash::Sha256.digest(&[&data])),
            "{what}: digest"
        );
        assert_eq!(
            parse_ticket(&std::fs::read(&tk).unwrap()),
            (TPM_ST_HASHCHECK, TPM_RH_NULL, vec![]),
            "{what}: data starting with TPM_GENERATED_VALUE must get a NULL ticket"
        );
    }

    // An empty file.
    let empty = dir.write("empty.bin", b"");
    let out = server.ok(
        "tpm2_hash",
        [
            "-g".as_ref(),
            "sha256".as_ref(),
            "--hex".as_ref(),
            empty.as_os_str(),
        ],
    );
    assert_eq!(
        out.trim(),
        hex(&Hash::Sha256.digest(&[])),
        "digest of an empty file"
    );
}

// ---------------------------------------------------------------------------
// 6. Self tests
// ---------------------------------------------------------------------------

fn selftest(protocol: Protocol) {
    let server = started(protocol);
    server.ok("tpm2_selftest", std::iter::empty::<&str>());
    server.ok("tpm2_selftest", ["--fulltest"]);
    let out = server.ok("tpm2_gettestresult", std::iter::empty::<&str>());
    assert_eq!(
        yaml_value(&out, "status"),
        Some("success"),
        "tpm2_gettestresult:\n{out}"
    );
    // The TPM works after the tests.
    server.ok("tpm2_getrandom", ["8", "--hex"]);
}

// ---------------------------------------------------------------------------
// 7. tpm2_readclock
// ---------------------------------------------------------------------------

fn readclock(protocol: Protocol) {
    let server = started(protocol);
    let a = readclock_info(&server);
    assert!(a.safe, "Clock is not safe on a fresh TPM: {a:?}");
    assert_eq!(
        a.restart_count, 0,
        "restartCount after Startup(CLEAR): {a:?}"
    );
    let started_at = Instant::now();
    std::thread::sleep(Duration::from_millis(100));
    let b = readclock_info(&server);
    let elapsed = u64::try_from(started_at.elapsed().as_millis()).unwrap();
    assert!(
        b.clock >= a.clock + 100,
        "Clock advanced by {} ms over a 100 ms sleep: {a:?} → {b:?}",
        b.clock.wrapping_sub(a.clock)
    );
    assert!(
        b.time >= a.time + 100,
        "Time advanced by {} ms over a 100 ms sleep: {a:?} → {b:?}",
        b.time.wrapping_sub(a.time)
    );
    // Generous upper bound: the two readings are not minutes apart.
    assert!(
        b.clock - a.clock <= elapsed + 10_000,
        "Clock advanced by {} ms in {elapsed} ms: {a:?} → {b:?}",
        b.clock - a.clock
    );
    assert_eq!(
        (b.reset_count, b.restart_count, b.safe),
        (a.reset_count, a.restart_count, a.safe),
        "counters changed"
    );
}

// ---------------------------------------------------------------------------
// Startup / Shutdown / _TPM_Init cycles (clock counters, Startup errors)
// ---------------------------------------------------------------------------

fn startup_shutdown_cycles(protocol: Protocol) {
    let server = started(protocol);
    let c0 = readclock_info(&server);

    // Orderly Shutdown(CLEAR), _TPM_Init: Startup(STATE) is refused with
    // TPM_RC_VALUE on its parameter; commands before Startup get
    // TPM_RC_INITIALIZE; Startup(CLEAR) is a TPM Reset.
    server.ok("tpm2_shutdown", ["-c"]);
    server.reset();
    let r = server.fails("tpm2_startup", std::iter::empty::<&str>());
    assert_stderr_mentions(&r, &["0x1C4"]);
    let r = server.fails("tpm2_getrandom", ["8", "--hex"]);
    assert_stderr_mentions(&r, &["0x100"]);
    server.startup_clear();
    let c1 = readclock_info(&server);
    assert_eq!(
        c1.reset_count,
        c0.reset_count + 1,
        "resetCount after a TPM Reset: {c0:?} → {c1:?}"
    );
    assert_eq!(
        c1.restart_count, 0,
        "restartCount after a TPM Reset: {c1:?}"
    );
    assert!(c1.safe, "Clock not safe after an orderly shutdown: {c1:?}");
    assert!(
        c1.clock >= c0.clock,
        "Clock went backwards over an orderly shutdown: {c0:?} → {c1:?}"
    );

    // Shutdown(STATE), _TPM_Init, Startup(STATE): a TPM Restart.
    server.ok("tpm2_shutdown", std::iter::empty::<&str>());
    server.reset();
    server.ok("tpm2_startup", std::iter::empty::<&str>());
    let c2 = readclock_info(&server);
    assert_eq!(
        c2.reset_count, c1.reset_count,
        "resetCount after a TPM Restart: {c1:?} → {c2:?}"
    );
    assert_eq!(
        c2.restart_count,
        c1.restart_count + 1,
        "restartCount after a TPM Restart: {c1:?} → {c2:?}"
    );
    assert!(c2.safe, "Clock not safe after an orderly shutdown: {c2:?}");
    assert!(
        c2.clock >= c1.clock,
        "Clock went backwards over an orderly shutdown: {c1:?} → {c2:?}"
    );
    // PCRs survive Restart; the TPM works.
    server.ok("tpm2_getrandom", ["8", "--hex"]);

    // No Shutdown before _TPM_Init: Startup(CLEAR) is a TPM Reset after a
    // disorderly shutdown; Clock may have lost time, so it is not safe (until
    // the next NV update of Clock, every TPM_PT_CLOCK_UPDATE ms).
    let before = readclock_info(&server);
    server.reset();
    server.startup_clear();
    let c3 = readclock_info(&server);
    assert_eq!(
        c3.reset_count,
        c2.reset_count + 1,
        "resetCount after a disorderly TPM Reset: {c2:?} → {c3:?}"
    );
    assert_eq!(
        c3.restart_count, 0,
        "restartCount after a TPM Reset: {c3:?}"
    );
    let crossed_update = c3.clock / 4096 > before.clock / 4096;
    assert!(
        !c3.safe || crossed_update,
        "Clock is safe right after a disorderly shutdown: {before:?} → {c3:?}"
    );
}

// ---------------------------------------------------------------------------
// 8. tpm2_testparms
// ---------------------------------------------------------------------------

fn testparms(protocol: Protocol) {
    let server = started(protocol);
    for ok in ["rsa2048", "ecc256", "ecc384", "aes128cfb", "hmac:sha256"] {
        server.ok("tpm2_testparms", [ok]);
    }
    // tpm2_testparms turns the TPM's response code into a message:
    // TPM_RC_VALUE (TPMI_RSA_KEY_BITS rejects 1024) → "Unsupported algorithm
    // specification"; TPM_RC_CURVE (TPMI_ECC_CURVE rejects P-521) →
    // "Specified elliptic curve is unsupported".
    let r = server.fails("tpm2_testparms", ["rsa1024"]);
    assert_stderr_mentions(&r, &["Unsupported algorithm specification"]);
    let r = server.fails("tpm2_testparms", ["ecc521"]);
    assert_stderr_mentions(&r, &["Specified elliptic curve is unsupported"]);

    // The same two, raw, for the exact response codes: an unmarshaling
    // error of parameter 1 (TPM_RC_P | TPM_RC_1).
    let rsa1024 = [0x00, 0x01, 0x00, 0x10, 0x00, 0x10, 0x04, 0x00, 0, 0, 0, 0];
    let ecc521 = [0x00, 0x23, 0x00, 0x10, 0x00, 0x10, 0x00, 0x05, 0x00, 0x10];
    for (what, params, want) in [
        ("RSA 1024", &rsa1024[..], 0x084 + 0x140),
        ("ECC NIST P-521", &ecc521[..], 0x0A6 + 0x140),
    ] {
        let cmd = [
            &[0x80, 0x01][..],
            &(10 + params.len() as u32).to_be_bytes(),
            &0x18Au32.to_be_bytes(),
            params,
        ]
        .concat();
        let resp = server.raw_command(&cmd, None);
        let (tag, rc, _) = vtpm_tests::split_response(&resp);
        assert_eq!((tag, rc), (0x8001, want), "TestParms({what}): {resp:02x?}");
    }
}
