//! KDFa (Part 1 §11.4.10.2): SP 800-108 counter-mode KDF with HMAC; and
//! KDFe (Part 1 §11.4.10.3): the SP 800-56A concatenation KDF for ECC.

use super::hash::HashAlg;
use zeroize::Zeroizing;

/// KDFa(hashAlg, key, label, contextU, contextV, bits). The label is used
/// with its terminating zero octet, as the spec's label strings are
/// null-terminated.
pub fn kdfa(
    alg: HashAlg,
    key: &[u8],
    label: &[u8],
    context_u: &[u8],
    context_v: &[u8],
    bits: u32,
) -> Zeroizing<Vec<u8>> {
    let bytes = usize::try_from(bits.div_ceil(8)).unwrap_or(0);
    let mut out = Zeroizing::new(Vec::with_capacity(bytes + alg.size()));
    let mut label_z = label.to_vec();
    if label_z.last() != Some(&0) {
        label_z.push(0);
    }
    let mut counter: u32 = 1;
    while out.len() < bytes {
        let block = alg.hmac(
            key,
            &[
                &counter.to_be_bytes(),
                &label_z,
                context_u,
                context_v,
                &bits.to_be_bytes(),
            ],
        );
        out.extend_from_slice(&block);
        counter = counter.wrapping_add(1);
    }
    out.truncate(bytes);
    // Only `bits` bits: clear the unused high bits of the first octet.
    if !bits.is_multiple_of(8)
        && let Some(first) = out.first_mut()
    {
        *first &= (1u8 << (bits % 8)) - 1;
    }
    out
}

/// KDFe(hashAlg, Z, label, partyUInfo, partyVInfo, bits) (Part 1
/// §11.4.10.3, SP 800-56A §5.8.2.1 concatenation KDF): the concatenation of
/// `H([counter]_32 || Z || label || 0x00 || partyUInfo || partyVInfo)` for
/// counter = 1, 2, …, truncated to `bits` bits (the unused high bits of the
/// first octet cleared, as for KDFa). The label gets one terminating zero
/// octet, not doubled if already present. `z` is the x coordinate of the
/// shared point.
pub fn kdfe(
    alg: HashAlg,
    z: &[u8],
    label: &[u8],
    party_u: &[u8],
    party_v: &[u8],
    bits: u32,
) -> Zeroizing<Vec<u8>> {
    let bytes = usize::try_from(bits.div_ceil(8)).unwrap_or(0);
    let mut out = Zeroizing::new(Vec::with_capacity(bytes + alg.size()));
    let mut label_z = label.to_vec();
    if label_z.last() != Some(&0) {
        label_z.push(0);
    }
    let mut counter: u32 = 1;
    while out.len() < bytes {
        let block =
            Zeroizing::new(alg.digest(&[&counter.to_be_bytes(), z, &label_z, party_u, party_v]));
        out.extend_from_slice(&block);
        counter = counter.wrapping_add(1);
    }
    out.truncate(bytes);
    if !bits.is_multiple_of(8)
        && let Some(first) = out.first_mut()
    {
        *first &= (1u8 << (bits % 8)) - 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::self_test::hex;

    /// Expected values from an independent implementation of Part 1's
    /// formula (Python's hmac module, counter || label || 0 || U || V ||
    /// bits, truncated and masked).
    #[test]
    fn kdfa_matches_independent_computation() {
        let k = kdfa(
            HashAlg::Sha256,
            b"key-material",
            b"ATH",
            b"nonce-newer-0123",
            b"nonce-older-4567",
            256,
        );
        assert_eq!(
            hex(&k),
            "2952b72940867a950d393cecaf3671e4e091c600736dc83a801513e921859487"
        );
        let k = kdfa(
            HashAlg::Sha1,
            &[1; 20],
            b"CFB",
            &[b'a'; 20],
            &[b'b'; 20],
            256,
        );
        assert_eq!(
            hex(&k),
            "f8964f1c2f04a535cbf4c1ab3c71c7cd66d1dd73d9c81d55524572d148c6ac51"
        );
        // 60 bits: eight octets, the top four bits of the first cleared.
        let k = kdfa(HashAlg::Sha256, b"k", b"XOR", b"", b"", 60);
        assert_eq!(hex(&k), "0f7dd51b2f4a313c");
        // An explicit terminating zero is not doubled.
        assert_eq!(kdfa(HashAlg::Sha256, b"k", b"XOR\0", b"", b"", 60), k);
    }

    /// Expected values from an independent implementation of Part 1's
    /// formula, Python's hashlib:
    ///
    /// ```python
    /// def kdfe(h, z, label, u, v, bits):
    ///     n = (bits + 7) // 8; out = b""; i = 1
    ///     while len(out) < n:
    ///         out += hashlib.new(h, i.to_bytes(4, "big") + z + label + b"\0" + u + v).digest(); i += 1
    ///     out = bytearray(out[:n])
    ///     if bits % 8: out[0] &= (1 << (bits % 8)) - 1
    ///     return out.hex()
    /// kdfe("sha256", bytes(range(32)), b"SECRET", b"party-u-x", b"party-v-x", 256)
    /// kdfe("sha256", bytes(range(32)), b"IDENTITY", b"u"*32, b"v"*32, 520)
    /// kdfe("sha384", b"\xab"*48, b"DUPLICATE", b"", b"", 384)
    /// kdfe("sha1", b"z", b"STORAGE", b"U", b"V", 60)
    /// ```
    #[test]
    fn kdfe_matches_independent_computation() {
        let z: Vec<u8> = (0u8..32).collect();
        let k = kdfe(
            HashAlg::Sha256,
            &z,
            b"SECRET",
            b"party-u-x",
            b"party-v-x",
            256,
        );
        assert_eq!(
            hex(&k),
            "551398d9c87faa21385e09030bb03ee6721474d590c1afe1dd922622fbed5527"
        );
        // More than one block, not a whole number of blocks.
        let k = kdfe(
            HashAlg::Sha256,
            &z,
            b"IDENTITY",
            &[b'u'; 32],
            &[b'v'; 32],
            520,
        );
        assert_eq!(
            hex(&k),
            "91d3f5c95c59c1108b2bfac47735429e18a9107ec1d31d289f7e261b1a3049605b560479fdd941add692f833729f6d6f640bb4dea8dca366538c4138a211a0cccb"
        );
        let k = kdfe(HashAlg::Sha384, &[0xab; 48], b"DUPLICATE", b"", b"", 384);
        assert_eq!(
            hex(&k),
            "85cfb261edf16f728148be8310b0ee84bbf5414cd0fb0933bb05cd771781a5132faff31d404fdc013485260b823397be"
        );
        // 60 bits: eight octets, the top four bits of the first cleared.
        let k = kdfe(HashAlg::Sha1, b"z", b"STORAGE", b"U", b"V", 60);
        assert_eq!(hex(&k), "0bad408837541f54");
        // An explicit terminating zero is not doubled.
        assert_eq!(kdfe(HashAlg::Sha1, b"z", b"STORAGE\0", b"U", b"V", 60), k);
        assert!(kdfe(HashAlg::Sha256, b"z", b"L", b"", b"", 0).is_empty());
    }
}
