//! RSA against an independent implementation (OpenSSL): fixed vectors made
//! with `openssl pkeyutl` (no tool needed at test time), and live round
//! trips through the `openssl` command line in both directions.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use sha2::{Digest as _, Sha256};
use vtpm_engine::crypto::hash::HashAlg;
use vtpm_engine::crypto::rsa::{RsaDecryptScheme, RsaError, RsaKey, RsaPublic, RsaSignScheme};
use vtpm_engine::crypto::stream::KdfStream;

mod common;
use common::{Scratch, openssl_ok, rsa_spki, unhex};

fn os_fill(buf: &mut [u8]) {
    getrandom::fill(buf).unwrap();
}

// ---------------------------------------------------------------------------
// Fixed vectors: a 2048-bit key from `openssl genpkey` (n and prime1 from
// `openssl pkey -text`), ciphertexts and signatures from `openssl pkeyutl`.
// Message "fixed vector message"; digest SHA-256("abc").

const N: &str = concat!(
    "9fde03e8982b82ef52feb1b6fd8e2d776b50fb0adf3375572c7b70d1e32e3c4c",
    "8d9b50d2baba93c38202cb014b072d5b18a5343786de25752db6264a26cce392",
    "67210269fae25642296c4d6eb7bf015ed20756d5fe9370e75c05cf88db220256",
    "7588117b54a12268f93b7db4116f633e40a3f4be57362ac38695d3a414fe68d6",
    "a09c1644a35fd86a7a64ece59440469b6208cdd47905b38c417223c2f9c647c1",
    "a1e34adcf43f3887049fcbfbcc59de6f01e58afe2ad82f288dcba87c3f3f088d",
    "eaa125b6d89ee85ffc5c94bd189b59d326c66859417a6bc6e047301abe4e7a3b",
    "0506ef10a2e8deb68154fee99cea35a855ece57792eee65bd0284456cb22d459",
);
const P: &str = concat!(
    "e19ae3447d5c41fa03540e1ee23b377e543551009378395d27c7fbe7a4b1d97f",
    "a1d34d895678b82efe5f2b663cec986116c3ef8ff346c4493e765999a6478c8d",
    "9b91f2b0fcaa8324bd22f1d56228a0760a0e85273c10f56b5695949c96baf72c",
    "c2b554114e1c0710e22b7195da7da3fd69cb83a75eff7bfe52b5d5f75bafa535",
);
const OAEP_SHA256_LABEL: &str = concat!(
    "6869f64b316538da9e3516313efed7559f9fb8eb9c4d2303e59d7e91db369c5c",
    "fbdd6b6e0938859a786c1c7ed7fd5ad43073c9673edb77c2a73b7ba88fed2113",
    "efb6b1c4a579ac618e2f6dfa78e4fc2494960e2640b7504741e4150addd7bd36",
    "ca34ae88f53638f95b85c6766f457f1b31482e44d7cf301e2df238e27110bd53",
    "d9d91e9a80114c2ce176f574374e83beb1bd382afb32f53e5e5e5e1c95ffe9c8",
    "a9d6f1701f884e1aaf10427b6f857017aeee3c57ffb288586de8dda3bdcbd993",
    "f96190765439c1dab892200b89ec652b3b2ceddb9636e2a657b0221f3bfaa540",
    "d3a1870d7c8ed6788b2692c1e90415898318cf29e5b6c36d20b5ef525e2c2438",
);
const OAEP_SHA1: &str = concat!(
    "1a60bec9b907aba41649c16596cc22ef779963b6dbfe335e1859ac799665c5bb",
    "453182afde8ae459c9edcd616b3c130331d114c53eccf79f8259495dbc4b5de9",
    "0df91c7871986dcf771da77f92e7f8acceb2c12f49fcab9f173f7aee0821cb11",
    "1ea2915de577c26e4aa806e468b9f5b3f295a78d43eeb7ff43bbf92d34722329",
    "9d6e9e03e98ad5d63481740f25284354381223ae01b7894f164784381307221f",
    "5307979fce1a9eb8f558a2c922a90c066395ddc97dbbe3781ac46e19286496db",
    "8d8eafa18e5b4ed4f28e2de697c9514efaf4e5314e440b79085dd3a24261ba4c",
    "4a1faa3a1e21f9b6936e1d771c8d22098caa41e9b47b6986be36e739b09556e3",
);
const RSAES: &str = concat!(
    "6866a33a9fd16d05dced5fd442afb049df35c16c438727202f317591e0962209",
    "2ba84dd07357b6b1f8569296978e286534ae3d9a55f2c734e946e6820fcbd8b7",
    "01330713321993a0ad043e226fe3197fd3f4f8f7be59f82d0c194f33edc966ee",
    "96794aaeee25b1d7d31030a4413c1cc859506e0e9345ddb83a9fa31c67c00d43",
    "05b974ded438220eeb0de3c0f493326b981cec8fd6460a040f2a1954fdea5694",
    "c68163aaa8052c8baa1c4bd0b50a93a3708403e4ce44430553a1c320baaec9c9",
    "97c3cd97598a140260de7f96de62d49fde02e86719d8fcf9c7dc3f065dc5a45d",
    "a3db74129f8151de4b357db840ee750f2b71087d47e05447b6c07451548ec9e7",
);
const RSASSA_SHA256: &str = concat!(
    "2c44cb39fe6de1dc8c0da11059f118e32a806e5db408871797ab9aa8466649d4",
    "8f63c6460db8293da6ff6a4530d168b181561cf24e39540af80ee05db7f7f844",
    "a9311b760459bdbac137b006ffe2b3985a22d546a84314985c661c77459ddcca",
    "c2ed9a955999958e2746a1195f13bef462bbc6c2e3913c2ff80c2ca34bf12d27",
    "ea89e1dcddd6a7e5a65656684036e673df9336619a952857cb63fbedf73d9054",
    "ad93919317ce4d0d22bf02e71be12897e6163f8fd57389c113a8f851d734dc7c",
    "559b02dbeff137b14f7f9e4c4ef6873ec4fb03782fb6f616ef65e517d6d48726",
    "71ac33bf16972938548a7b9c9dc7dd93b002db112744a88f3f7cc20369491e8a",
);
const PSS_SHA256_SALT32: &str = concat!(
    "44ea3e3a3e2723a3b669d3db07c0cb733b4b1ea4c6d559a41ddf72443da96e09",
    "e6fe176cc8ce27f2570f25fa2901fab7cfc3319d8e35830f3d611a8f75d64f3e",
    "068c1d6c7d6c058b5772f08d64ccf32d778a518ee954455f1a1376c538c1f88a",
    "617e6bc42352640b426618646a22f6011804b03da508c44d711b83f8428ed727",
    "36acd4531cbaa3e819ba8c63fa029c0e3b626e7c66a787cc783bfa3711d61c2b",
    "f89fde464f354c84bf97d3d055a5d1d9b8d9873724920fbdc5a1a082fdfc73cf",
    "4bd2a28d614ac528e945e94c2396384a97ad0ebf84082509740d320b4560cff0",
    "27732409691ea26185989acb6c81c33f1ffa1960e080d63d55d79fbbeeda8d03",
);
const PSS_SHA256_SALT0: &str = concat!(
    "11f91df4a65e736ced48b92695ac65cb51f724c66c5ba2eeb7f06adef55f71b3",
    "d9518036dd47cc99440bf613b90976f195b4a0656bbf431ec5ac4b12cb6274ba",
    "ee68566580d7d40e69a24f5537c2f83daf3a004d88b2783c964066f1c8f86a36",
    "1a45444affa90483010e870c53de1e9d3e7338de8b1fade386920d19ffe7e2ef",
    "a8bf7360a64fcd9f1f81406dc7f07827fa2517f530d1e32829c898c39cd0fe33",
    "d994c7d2b5b3eae85db2eb36b59fc4ae8416e7e822f77c14f93e8921cd9f7fd1",
    "4e0aa5e2a5636a8db8a1bae32caec70db001e68b41ce0a0ecba2a001899153d8",
    "89a21ca3a29ca1322f4d4d86cd4ea45d091a7475b7ceb9768b9df77cd8c28034",
);
const PSS_SHA256_SALTMAX: &str = concat!(
    "3d41e5af84aaff851ab6f3aa299d24114a392350aa1e93e3aa5e306ffeb14e17",
    "6c24461306b71496ae2750a4e07e6fa3e96dd66283b49bda5a369bc93db3208b",
    "fe6c996a29687f6e6ee4b25cab1b5ef8ce26aaf88d6bb1f6c17ea8cc0de49d57",
    "a8fab006d625726ea0b0c54c4c939c3ad190496f2457f25999ee85898dade0e7",
    "c7712e304dbfa89a1b5706f25ebe3ed34424df6ceea45734c3a4beea59d0828b",
    "e38327b158cd06dfbbe61a295527c5700dedd041b042f585142a1a13b1be7c23",
    "971f8b4280b151b472a8b31f676d4b664c9156ed50f48f037300407eefaf63eb",
    "eb799605f89e9ce2da06074b57784413589e58da2ed4211cae4e40cc3fa1ba0e",
);

const MESSAGE: &[u8] = b"fixed vector message";

fn fixed_key() -> RsaKey {
    RsaKey::from_prime(&unhex(N), 0, &unhex(P)).unwrap()
}

fn abc_digest() -> Vec<u8> {
    Sha256::digest(b"abc").to_vec()
}

#[test]
fn fixed_vectors_decrypt() {
    let key = fixed_key();
    assert_eq!(key.bits(), 2048);
    assert_eq!(key.modulus(), unhex(N));
    let oaep = RsaDecryptScheme::Oaep {
        hash: HashAlg::Sha256,
        label: b"vtpm\0".to_vec(),
    };
    assert_eq!(
        &*key.decrypt(&oaep, &unhex(OAEP_SHA256_LABEL)).unwrap(),
        MESSAGE
    );
    let oaep1 = RsaDecryptScheme::Oaep {
        hash: HashAlg::Sha1,
        label: Vec::new(),
    };
    assert_eq!(&*key.decrypt(&oaep1, &unhex(OAEP_SHA1)).unwrap(), MESSAGE);
    assert_eq!(
        &*key
            .decrypt(&RsaDecryptScheme::Rsaes, &unhex(RSAES))
            .unwrap(),
        MESSAGE
    );
    // The wrong label or hash does not decrypt.
    let wrong = RsaDecryptScheme::Oaep {
        hash: HashAlg::Sha256,
        label: b"vtpm".to_vec(),
    };
    assert_eq!(
        key.decrypt(&wrong, &unhex(OAEP_SHA256_LABEL)).err(),
        Some(RsaError::Decryption)
    );
    let wrong = RsaDecryptScheme::Oaep {
        hash: HashAlg::Sha256,
        label: Vec::new(),
    };
    assert_eq!(
        key.decrypt(&wrong, &unhex(OAEP_SHA1)).err(),
        Some(RsaError::Decryption)
    );
}

#[test]
fn fixed_vectors_verify() {
    let public = RsaPublic::new(&unhex(N), 65537).unwrap();
    let digest = abc_digest();
    let pkcs = RsaSignScheme::Pkcs1v15(HashAlg::Sha256);
    let pss = RsaSignScheme::Pss(HashAlg::Sha256);
    public
        .verify(&pkcs, &digest, &unhex(RSASSA_SHA256))
        .unwrap();
    // PSS verification finds the salt length itself.
    for sig in [PSS_SHA256_SALT32, PSS_SHA256_SALT0, PSS_SHA256_SALTMAX] {
        public.verify(&pss, &digest, &unhex(sig)).unwrap();
        assert_eq!(
            public.verify(&pkcs, &digest, &unhex(sig)),
            Err(RsaError::Verification)
        );
    }
    assert_eq!(
        public.verify(&pss, &digest, &unhex(RSASSA_SHA256)),
        Err(RsaError::Verification)
    );
    let other = Sha256::digest(b"abd").to_vec();
    assert_eq!(
        public.verify(&pkcs, &other, &unhex(RSASSA_SHA256)),
        Err(RsaError::Verification)
    );
    assert_eq!(
        public.verify(&pss, &other, &unhex(PSS_SHA256_SALT32)),
        Err(RsaError::Verification)
    );
    // PKCS#1 v1.5 signatures are deterministic: ours equals OpenSSL's.
    assert_eq!(
        fixed_key().sign(&pkcs, &digest).unwrap(),
        unhex(RSASSA_SHA256)
    );
}

// ---------------------------------------------------------------------------
// Live interoperability through the openssl command line.

fn md(hash: HashAlg) -> &'static str {
    match hash {
        HashAlg::Sha1 => "sha1",
        HashAlg::Sha256 => "sha256",
        HashAlg::Sha384 => "sha384",
        HashAlg::Sha512 => "sha512",
    }
}

/// The SubjectPublicKeyInfo of `public`.
fn spki_der(public: &RsaPublic) -> Vec<u8> {
    rsa_spki(&public.modulus(), &public.exponent().to_be_bytes())
}

/// The hex fields of `openssl pkey -text -noout`.
fn key_fields(text: &str) -> std::collections::HashMap<String, Vec<u8>> {
    let mut fields = std::collections::HashMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.starts_with(' ') {
            let hex: String = line.trim().split(':').collect();
            fields
                .entry(current.clone())
                .or_insert_with(Vec::new)
                .extend(unhex(&hex));
        } else {
            current = line.split(':').next().unwrap_or("").to_string();
        }
    }
    fields
}

/// Signatures by a derived key verify in OpenSSL, for every hash and both
/// schemes, with OpenSSL's own salt-length detection.
#[test]
fn openssl_verifies_our_signatures() {
    let dir = Scratch::new("rsa-verify");
    let mut stream = KdfStream::new(HashAlg::Sha256, &[7; 32], b"vtpm-primary-v1", b"n", b"");
    let key = RsaKey::derive(&mut |b| stream.fill(b), 2048, 0).unwrap();
    let public = dir.write("pub.der", &spki_der(&key.public()));
    for hash in HashAlg::ALL {
        let digest = hash.digest(&[b"openssl interop"]);
        let dgst = dir.write("digest.bin", &digest);
        for (scheme, padding) in [
            (
                RsaSignScheme::Pkcs1v15(hash),
                vec!["-pkeyopt", "rsa_padding_mode:pkcs1"],
            ),
            (
                RsaSignScheme::Pss(hash),
                vec![
                    "-pkeyopt",
                    "rsa_padding_mode:pss",
                    "-pkeyopt",
                    "rsa_pss_saltlen:auto",
                ],
            ),
        ] {
            let sig = dir.write("sig.bin", &key.sign(&scheme, &digest).unwrap());
            let digest_opt = format!("digest:{}", md(hash));
            let mut args = vec![
                "pkeyutl",
                "-verify",
                "-pubin",
                "-keyform",
                "DER",
                "-inkey",
                &public,
                "-in",
                &dgst,
                "-sigfile",
                &sig,
                "-pkeyopt",
                &digest_opt,
            ];
            args.extend(&padding);
            let out = openssl_ok(&args);
            assert!(out.contains("Signature Verified Successfully"), "{out}");
        }
        // PSS uses a salt of the digest size: OpenSSL accepts it when told so.
        let sig = dir.write(
            "sig.bin",
            &key.sign(&RsaSignScheme::Pss(hash), &digest).unwrap(),
        );
        let digest_opt = format!("digest:{}", md(hash));
        let salt_opt = format!("rsa_pss_saltlen:{}", hash.size());
        openssl_ok(&[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-keyform",
            "DER",
            "-inkey",
            &public,
            "-in",
            &dgst,
            "-sigfile",
            &sig,
            "-pkeyopt",
            &digest_opt,
            "-pkeyopt",
            "rsa_padding_mode:pss",
            "-pkeyopt",
            &salt_opt,
        ]);
    }
}

/// An OpenSSL-generated key, loaded from its modulus and first prime:
/// OpenSSL's ciphertexts decrypt here, ours decrypt in OpenSSL, OpenSSL's
/// signatures (any PSS salt length) verify here and ours in OpenSSL.
#[test]
fn openssl_key_round_trips() {
    let dir = Scratch::new("rsa-roundtrip");
    let pem = dir.path("key.pem");
    openssl_ok(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:3072",
        "-out",
        &pem,
    ]);
    let fields = key_fields(&openssl_ok(&["pkey", "-in", &pem, "-text", "-noout"]));
    let n = &fields["modulus"];
    let key = RsaKey::from_prime(n, 0, &fields["prime2"]).unwrap();
    assert_eq!(key.bits(), 3072);
    assert_eq!(key.modulus(), n[n.len() - 384..]);
    assert_eq!(key.exponent(), 65537);
    // The stored prime is the larger factor, either way round.
    let other = RsaKey::from_prime(n, 65537, &fields["prime1"]).unwrap();
    assert_eq!(*other.prime(), *key.prime());
    let public = key.public();
    let msg = dir.write("msg.bin", b"interop message");

    let label = b"DUPLICATE\0";
    let label_hex: String = label.iter().map(|b| format!("{b:02x}")).collect();
    for hash in HashAlg::ALL {
        let oaep = RsaDecryptScheme::Oaep {
            hash,
            label: label.to_vec(),
        };
        let oaep_opts = [
            "-pkeyopt".to_string(),
            "rsa_padding_mode:oaep".to_string(),
            "-pkeyopt".to_string(),
            format!("rsa_oaep_md:{}", md(hash)),
            "-pkeyopt".to_string(),
            format!("rsa_mgf1_md:{}", md(hash)),
            "-pkeyopt".to_string(),
            format!("rsa_oaep_label:{label_hex}"),
        ];
        let oaep_opts: Vec<&str> = oaep_opts.iter().map(String::as_str).collect();
        // OpenSSL encrypts, we decrypt.
        let ct = dir.path("ct.bin");
        let mut args = vec![
            "pkeyutl", "-encrypt", "-inkey", &pem, "-in", &msg, "-out", &ct,
        ];
        args.extend(&oaep_opts);
        openssl_ok(&args);
        let ciphertext = std::fs::read(&ct).unwrap();
        assert_eq!(
            &*key.decrypt(&oaep, &ciphertext).unwrap(),
            b"interop message"
        );
        // We encrypt, OpenSSL decrypts.
        let ours = dir.write(
            "ours.bin",
            &public.encrypt(&mut os_fill, &oaep, b"from vtpm").unwrap(),
        );
        let pt = dir.path("pt.bin");
        let mut args = vec![
            "pkeyutl", "-decrypt", "-inkey", &pem, "-in", &ours, "-out", &pt,
        ];
        args.extend(&oaep_opts);
        openssl_ok(&args);
        assert_eq!(std::fs::read(&pt).unwrap(), b"from vtpm");

        // OpenSSL signs with several PSS salt lengths; we verify. We sign;
        // OpenSSL verifies.
        let digest = hash.digest(&[b"signed"]);
        let dgst = dir.write("digest.bin", &digest);
        let digest_opt = format!("digest:{}", md(hash));
        for salt in ["0", "20", "digest", "max"] {
            let sig = dir.path("sig.bin");
            let salt_opt = format!("rsa_pss_saltlen:{salt}");
            openssl_ok(&[
                "pkeyutl",
                "-sign",
                "-inkey",
                &pem,
                "-in",
                &dgst,
                "-out",
                &sig,
                "-pkeyopt",
                &digest_opt,
                "-pkeyopt",
                "rsa_padding_mode:pss",
                "-pkeyopt",
                &salt_opt,
            ]);
            public
                .verify(
                    &RsaSignScheme::Pss(hash),
                    &digest,
                    &std::fs::read(&sig).unwrap(),
                )
                .unwrap();
        }
        let sig = dir.path("sig.bin");
        openssl_ok(&[
            "pkeyutl",
            "-sign",
            "-inkey",
            &pem,
            "-in",
            &dgst,
            "-out",
            &sig,
            "-pkeyopt",
            &digest_opt,
            "-pkeyopt",
            "rsa_padding_mode:pkcs1",
        ]);
        let theirs = std::fs::read(&sig).unwrap();
        public
            .verify(&RsaSignScheme::Pkcs1v15(hash), &digest, &theirs)
            .unwrap();
        assert_eq!(
            key.sign(&RsaSignScheme::Pkcs1v15(hash), &digest).unwrap(),
            theirs
        );
        let ours = dir.write(
            "ours.bin",
            &key.sign(&RsaSignScheme::Pss(hash), &digest).unwrap(),
        );
        openssl_ok(&[
            "pkeyutl",
            "-verify",
            "-inkey",
            &pem,
            "-in",
            &dgst,
            "-sigfile",
            &ours,
            "-pkeyopt",
            &digest_opt,
            "-pkeyopt",
            "rsa_padding_mode:pss",
            "-pkeyopt",
            "rsa_pss_saltlen:auto",
        ]);
    }

    // RSAES both ways.
    let ct = dir.path("ct.bin");
    openssl_ok(&[
        "pkeyutl",
        "-encrypt",
        "-inkey",
        &pem,
        "-in",
        &msg,
        "-out",
        &ct,
        "-pkeyopt",
        "rsa_padding_mode:pkcs1",
    ]);
    assert_eq!(
        &*key
            .decrypt(&RsaDecryptScheme::Rsaes, &std::fs::read(&ct).unwrap())
            .unwrap(),
        b"interop message"
    );
    let ours = dir.write(
        "ours.bin",
        &public
            .encrypt(&mut os_fill, &RsaDecryptScheme::Rsaes, b"from vtpm")
            .unwrap(),
    );
    let pt = dir.path("pt.bin");
    openssl_ok(&[
        "pkeyutl",
        "-decrypt",
        "-inkey",
        &pem,
        "-in",
        &ours,
        "-out",
        &pt,
        "-pkeyopt",
        "rsa_padding_mode:pkcs1",
    ]);
    assert_eq!(std::fs::read(&pt).unwrap(), b"from vtpm");

    // Raw: both directions are plain modular exponentiation.
    let mut block = vec![0u8; 384];
    block[1..].fill(0x5a);
    let raw_in = dir.write("raw.bin", &block);
    openssl_ok(&[
        "pkeyutl",
        "-encrypt",
        "-inkey",
        &pem,
        "-in",
        &raw_in,
        "-out",
        &ct,
        "-pkeyopt",
        "rsa_padding_mode:none",
    ]);
    let theirs = std::fs::read(&ct).unwrap();
    assert_eq!(
        public
            .encrypt(&mut os_fill, &RsaDecryptScheme::Raw, &block[1..])
            .unwrap(),
        theirs
    );
    assert_eq!(
        *key.decrypt(&RsaDecryptScheme::Raw, &theirs).unwrap(),
        block
    );
}

/// Key sizes off the beaten path (1024 bits, whose PSS salt for SHA-512 is
/// shortened, and 1025 bits, whose PSS encoding is one octet shorter than
/// the modulus): everything agrees with OpenSSL, and random inputs give
/// errors, never panics.
#[test]
fn odd_key_sizes_and_garbage() {
    let dir = Scratch::new("rsa-sizes");
    for bits in ["1024", "1025"] {
        let pem = dir.path("key.pem");
        let keygen_bits = format!("rsa_keygen_bits:{bits}");
        openssl_ok(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            &keygen_bits,
            "-out",
            &pem,
        ]);
        let fields = key_fields(&openssl_ok(&["pkey", "-in", &pem, "-text", "-noout"]));
        let key = RsaKey::from_prime(&fields["modulus"], 0, &fields["prime1"]).unwrap();
        let public = key.public();
        let k = key.modulus().len();
        assert_eq!(key.bits().to_string(), bits);
        for hash in HashAlg::ALL {
            let digest = hash.digest(&[b"odd sizes"]);
            let dgst = dir.write("digest.bin", &digest);
            let digest_opt = format!("digest:{}", md(hash));
            for (scheme, padding) in [
                (RsaSignScheme::Pkcs1v15(hash), "rsa_padding_mode:pkcs1"),
                (RsaSignScheme::Pss(hash), "rsa_padding_mode:pss"),
            ] {
                let sig = key.sign(&scheme, &digest).unwrap();
                assert_eq!(sig.len(), k);
                public.verify(&scheme, &digest, &sig).unwrap();
                let sig = dir.write("sig.bin", &sig);
                openssl_ok(&[
                    "pkeyutl",
                    "-verify",
                    "-inkey",
                    &pem,
                    "-in",
                    &dgst,
                    "-sigfile",
                    &sig,
                    "-pkeyopt",
                    &digest_opt,
                    "-pkeyopt",
                    padding,
                ]);
            }
            let oaep = RsaDecryptScheme::Oaep {
                hash,
                label: Vec::new(),
            };
            if 2 * hash.size() + 3 <= k {
                let ct = public.encrypt(&mut os_fill, &oaep, b"m").unwrap();
                assert_eq!(&*key.decrypt(&oaep, &ct).unwrap(), b"m");
            } else {
                // SHA-512 OAEP needs a modulus of more than 130 octets.
                assert_eq!(
                    public.encrypt(&mut os_fill, &oaep, b"m"),
                    Err(RsaError::MessageTooLong)
                );
            }
        }
        // Random signatures and ciphertexts.
        let mut buf = vec![0u8; k];
        for _ in 0..20 {
            os_fill(&mut buf);
            for hash in HashAlg::ALL {
                let digest = vec![0x42; hash.size()];
                for scheme in [RsaSignScheme::Pkcs1v15(hash), RsaSignScheme::Pss(hash)] {
                    assert_eq!(
                        public.verify(&scheme, &digest, &buf),
                        Err(RsaError::Verification)
                    );
                }
                let oaep = RsaDecryptScheme::Oaep {
                    hash,
                    label: Vec::new(),
                };
                assert!(key.decrypt(&oaep, &buf).is_err());
            }
            let _ = key.decrypt(&RsaDecryptScheme::Rsaes, &buf);
            let _ = key.decrypt(&RsaDecryptScheme::Raw, &buf);
        }
    }
}
