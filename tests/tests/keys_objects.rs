//! Key objects through tpm2-tools over `vtpm serve`: primary keys are a
//! function of the seed and template (the same public key after a backend
//! restart), ordinary objects of every type create and load, Names are
//! what Part 1 defines (checked by hashing the public area the tool
//! wrote), persistent objects survive the backend (SIGKILL included), and
//! saved contexts load back until they are tampered with.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::path::Path;
use std::time::Duration;
use vtpm_tests::{
    Hash, Protocol, ServeOptions, Server, StateDir, hex, load_args, ok_flush, yaml_value,
};

use vtpm_tests::both;

both!(
    primary_keys_survive_restart,
    ordinary_objects_create_and_load,
    persistent_objects_survive_sigkill,
    contexts_save_and_load,
);

const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

fn serve(protocol: Protocol, state: &StateDir) -> Server {
    let server = ServeOptions::new(protocol).args(state.args()).start();
    server.startup_clear();
    server
}

fn p(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

/// The public key of a loaded object as PEM (`tpm2_readpublic -f pem`).
fn public_pem(server: &Server, ctx: &str, out: &Path) -> String {
    ok_flush(
        server,
        "tpm2_readpublic",
        ["-c", ctx, "-f", "pem", "-o", &p(out)],
    );
    std::fs::read_to_string(out).unwrap()
}

/// `tpm2_createprimary` in `hierarchy` with key algorithm `alg`; the
/// context is left in `ctx`. Returns the public key as PEM.
fn primary(server: &Server, dir: &Path, hierarchy: &str, alg: &str, tag: &str) -> String {
    let ctx = p(&dir.join(format!("{tag}.ctx")));
    ok_flush(
        server,
        "tpm2_createprimary",
        ["-C", hierarchy, "-G", alg, "-c", &ctx],
    );
    public_pem(server, &ctx, &dir.join(format!("{tag}.pem")))
}

/// OpenSSL's view of a PEM public key: `openssl pkey -pubin -text`.
fn openssl_text(pem_path: &Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-pubin", "-noout", "-text", "-in"])
        .arg(pem_path)
        .output()
        .expect("running openssl");
    assert!(out.status.success(), "openssl pkey: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn primary_keys_survive_restart(protocol: Protocol) {
    let state = StateDir::new("primary");
    let dir = state.path().to_path_buf();
    let mut server = serve(protocol, &state);
    let mut first = Vec::new();
    for (h, alg) in [
        ("o", "rsa2048"),
        ("o", "ecc256"),
        ("e", "rsa2048"),
        ("e", "ecc384"),
        ("p", "rsa3072"),
        ("n", "ecc256"),
    ] {
        let pem = primary(&server, &dir, h, alg, &format!("a-{h}-{alg}"));
        // Each key is a well-formed public key to OpenSSL.
        let text = openssl_text(&dir.join(format!("a-{h}-{alg}.pem")));
        let bits = alg.trim_start_matches(char::is_alphabetic);
        let expected = format!("Public-Key: ({bits} bit)");
        assert!(text.contains(&expected), "{alg}: {text}");
        // The same template again gives the same key (from the cache).
        assert_eq!(
            primary(&server, &dir, h, alg, &format!("b-{h}-{alg}")),
            pem,
            "{h} {alg}: CreatePrimary twice"
        );
        first.push((h, alg, pem));
    }
    // Different hierarchies have different seeds.
    assert_ne!(first[0].2, first[2].2, "owner and endorsement RSA keys");
    // A unique field in the template changes the key (tpm2-tools reads a
    // TPMU_PUBLIC_ID with little-endian sizes: x, then y).
    let u = dir.join("unique.dat");
    std::fs::write(&u, [&[4u8, 0][..], b"abcd", &[4, 0], b"efgh"].concat()).unwrap();
    let ctx = p(&dir.join("u.ctx"));
    ok_flush(
        &server,
        "tpm2_createprimary",
        ["-C", "o", "-G", "ecc256", "-u", &p(&u), "-c", &ctx],
    );
    let with_unique = public_pem(&server, &ctx, &dir.join("u.pem"));
    assert_ne!(with_unique, first[1].2, "unique data must change the key");

    let status = server.terminate(EXIT_TIMEOUT);
    assert!(status.success());
    // A new backend process on the same state: the same keys, except the
    // null hierarchy's (its seed is new at every TPM Reset).
    let server = serve(protocol, &state);
    for (h, alg, pem) in &first {
        let again = primary(&server, &dir, h, alg, &format!("c-{h}-{alg}"));
        if *h == "n" {
            assert_ne!(&again, pem, "null hierarchy key after a TPM Reset");
        } else {
            assert_eq!(&again, pem, "{h} {alg} after a restart");
        }
    }
}

/// Checks that `name` (hex, as tpm2-tools prints it) is SHA-256 over the
/// TPMT_PUBLIC inside the TPM2B_PUBLIC file `public`, prefixed with
/// TPM_ALG_SHA256 (Part 1 §16).
fn assert_name(public: &Path, name_hex: &str) {
    let bytes = std::fs::read(public).unwrap();
    let size = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    assert_eq!(size + 2, bytes.len(), "TPM2B_PUBLIC size");
    let expected = format!("000b{}", hex(&Hash::Sha256.digest(&[&bytes[2..]])));
    assert_eq!(name_hex, expected, "Name of {}", public.display());
}

fn ordinary_objects_create_and_load(protocol: Protocol) {
    let state = StateDir::new("objects");
    let dir = state.path().to_path_buf();
    let server = serve(protocol, &state);
    let prim = p(&dir.join("prim.ctx"));
    ok_flush(&server, "tpm2_createprimary", ["-C", "o", "-c", &prim]);
    let secret = dir.join("secret.bin");
    std::fs::write(&secret, b"a sealed secret").unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("rsa2048", &["-G", "rsa2048"]),
        ("rsa3072", &["-G", "rsa3072"]),
        ("rsa4096", &["-G", "rsa4096"]),
        ("ecc256", &["-G", "ecc256"]),
        ("ecc384", &["-G", "ecc384"]),
        ("aes128", &["-G", "aes128cfb"]),
        ("aes256", &["-G", "aes256cfb"]),
        ("hmac", &["-G", "hmac"]),
        ("sealed", &["-i", "SECRET"]),
        (
            "storage",
            &[
                "-G",
                "rsa2048",
                "-a",
                "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt",
            ],
        ),
    ];
    for (tag, args) in cases {
        let pubf = dir.join(format!("{tag}.pub"));
        let privf = dir.join(format!("{tag}.priv"));
        let mut a: Vec<String> = vec!["-C".into(), prim.clone()];
        for x in *args {
            a.push(if *x == "SECRET" {
                p(&secret)
            } else {
                x.to_string()
            });
        }
        a.extend(["-u".into(), p(&pubf), "-r".into(), p(&privf)]);
        ok_flush(&server, "tpm2_create", &a);
        let ctx = p(&dir.join(format!("{tag}.ctx")));
        let out = ok_flush(
            &server,
            "tpm2_load",
            ["-C", &prim, "-u", &p(&pubf), "-r", &p(&privf), "-c", &ctx],
        );
        let name = yaml_value(&out, "name").unwrap_or_else(|| panic!("{tag}: {out}"));
        assert_name(&pubf, name.trim());
        // ReadPublic reports the same Name.
        let rp = ok_flush(&server, "tpm2_readpublic", ["-c", &ctx]);
        assert_eq!(
            yaml_value(&rp, "name").map(str::trim),
            Some(name.trim()),
            "{tag}"
        );
    }
    // A private area loaded under another parent fails its integrity check.
    let other = p(&dir.join("other.ctx"));
    ok_flush(&server, "tpm2_createprimary", ["-C", "e", "-c", &other]);
    let r = server.fails(
        "tpm2_load",
        load_args(
            Path::new(&other),
            &dir.join("rsa2048.pub"),
            &dir.join("rsa2048.priv"),
            &dir.join("x.ctx"),
        ),
    );
    assert!(
        r.stderr.contains("0x19f") || r.stderr.to_lowercase().contains("integrity"),
        "{r}"
    );
    // A modified private area is refused too.
    let mut priv_bytes = std::fs::read(dir.join("ecc256.priv")).unwrap();
    let last = priv_bytes.len() - 1;
    priv_bytes[last] ^= 1;
    std::fs::write(dir.join("bad.priv"), &priv_bytes).unwrap();
    server.fails(
        "tpm2_load",
        load_args(
            Path::new(&prim),
            &dir.join("ecc256.pub"),
            &dir.join("bad.priv"),
            &dir.join("y.ctx"),
        ),
    );
}

fn persistent_objects_survive_sigkill(protocol: Protocol) {
    let state = StateDir::new("persistent");
    let dir = state.path().to_path_buf();
    let mut server = serve(protocol, &state);
    let prim = p(&dir.join("prim.ctx"));
    ok_flush(
        &server,
        "tpm2_createprimary",
        ["-C", "o", "-G", "ecc256", "-c", &prim],
    );
    ok_flush(
        &server,
        "tpm2_evictcontrol",
        ["-C", "o", "-c", &prim, "0x81000001"],
    );
    let before = public_pem(&server, "0x81000001", &dir.join("before.pem"));
    // A child under the persistent parent.
    let (pubf, privf) = (p(&dir.join("k.pub")), p(&dir.join("k.priv")));
    ok_flush(
        &server,
        "tpm2_create",
        [
            "-C",
            "0x81000001",
            "-G",
            "rsa2048",
            "-u",
            &pubf,
            "-r",
            &privf,
        ],
    );
    // The platform range is the platform's; the handle is taken.
    server.fails("tpm2_evictcontrol", ["-C", "o", "-c", &prim, "0x81800001"]);
    server.fails("tpm2_evictcontrol", ["-C", "o", "-c", &prim, "0x81000001"]);
    server.sigkill();

    let mut server = serve(protocol, &state);
    let handles = server.ok("tpm2_getcap", ["handles-persistent"]);
    assert!(handles.contains("0x81000001"), "{handles}");
    assert_eq!(
        public_pem(&server, "0x81000001", &dir.join("after.pem")),
        before
    );
    let ctx = p(&dir.join("k.ctx"));
    ok_flush(
        &server,
        "tpm2_load",
        ["-C", "0x81000001", "-u", &pubf, "-r", &privf, "-c", &ctx],
    );
    // Evicting removes it, durably.
    server.ok("tpm2_evictcontrol", ["-C", "o", "-c", "0x81000001"]);
    server.sigkill();
    let server = serve(protocol, &state);
    let handles = server.ok("tpm2_getcap", ["handles-persistent"]);
    assert!(!handles.contains("0x81000001"), "{handles}");
}

fn contexts_save_and_load(protocol: Protocol) {
    let state = StateDir::new("contexts");
    let dir = state.path().to_path_buf();
    let server = serve(protocol, &state);
    // tpm2-tools keeps every object as a saved context file (ContextSave)
    // and loads it again for each use (ContextLoad).
    let prim = p(&dir.join("prim.ctx"));
    ok_flush(&server, "tpm2_createprimary", ["-C", "o", "-c", &prim]);
    let transient = server.ok("tpm2_getcap", ["handles-transient"]);
    assert!(!transient.contains("0x80"), "flushed: {transient}");
    let a = public_pem(&server, &prim, &dir.join("a.pem"));
    let b = public_pem(&server, &prim, &dir.join("b.pem"));
    assert_eq!(a, b);
    // A modified context blob is refused (tpm2-tools' file: magic,
    // version, hierarchy, savedHandle, sequence, then the TPM2B blob).
    let mut blob = std::fs::read(&prim).unwrap();
    blob[40] ^= 0x40;
    let bad = dir.join("bad.ctx");
    std::fs::write(&bad, &blob).unwrap();
    server.fails("tpm2_readpublic", ["-c", &p(&bad)]);
    // A context saved before a TPM Reset does not load after it.
    server.reset();
    server.startup_clear();
    server.fails("tpm2_readpublic", ["-c", &prim]);
}
