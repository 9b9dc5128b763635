//! Known-answer self tests (Part 1, "Self-Test"): run at power-on, by
//! TPM2_SelfTest and TPM2_IncrementalSelfTest. A failure puts the TPM in
//! failure mode.

use super::hash::HashAlg;
use vtpm_wire::constants::AlgId;

/// FIPS 180-4 example "abc" digests.
fn hash_kat(alg: HashAlg) -> bool {
    let expected: &str = match alg {
        HashAlg::Sha1 => "a9993e364706816aba3e25717850c26c9cd0d89d",
        HashAlg::Sha256 => "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        HashAlg::Sha384 => {
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        }
        HashAlg::Sha512 => {
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        }
    };
    hex(&alg.digest(&[b"abc"])) == expected
}

/// RFC 4231 test case 1 (HMAC-SHA-256 and -512) and RFC 2202 test case 1
/// (HMAC-SHA-1).
fn hmac_kat() -> bool {
    let key = [0x0bu8; 20];
    hex(&HashAlg::Sha256.hmac(&key, &[b"Hi There"]))
        == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        && hex(&HashAlg::Sha1.hmac(&key, &[b"Hi There"]))
            == "b617318655057264e28bc0b6fb378c8ef146be00"
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Tests one algorithm; algorithms without a test of their own (modes,
/// schemes, object types) pass when the primitives they use pass.
pub fn test_algorithm(alg: AlgId) -> bool {
    match HashAlg::from_alg(alg) {
        Some(h) => hash_kat(h),
        None if alg == AlgId::HMAC => hmac_kat(),
        None => true,
    }
}

/// Tests every algorithm; returns the first that failed.
pub fn test_all() -> Result<(), AlgId> {
    for h in HashAlg::ALL {
        if !hash_kat(h) {
            return Err(h.alg());
        }
    }
    if !hmac_kat() {
        return Err(AlgId::HMAC);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_known_answers_pass() {
        assert_eq!(test_all(), Ok(()));
    }

    /// NIST CAVS SHA-256 ShortMsg and the FIPS two-block message.
    #[test]
    fn nist_vectors() {
        assert_eq!(
            hex(&HashAlg::Sha256
                .digest(&[b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"])),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            hex(&HashAlg::Sha1
                .digest(&[b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"])),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(&HashAlg::Sha256.digest(&[b""])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&HashAlg::Sha512.digest(&[b""])),
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        );
        assert_eq!(
            hex(&HashAlg::Sha384.digest(&[b""])),
            "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b"
        );
        // Streaming equals one-shot.
        let mut h = HashAlg::Sha256.hasher();
        h.update(b"ab");
        h.update(b"c");
        assert_eq!(h.finish(), HashAlg::Sha256.digest(&[b"abc"]));
    }
}
