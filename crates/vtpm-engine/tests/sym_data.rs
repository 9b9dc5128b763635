//! Symmetric encryption, HMAC, sealed data and external objects through the
//! engine's entry point: TPM2_EncryptDecrypt(2) against the SP 800-38A
//! vectors, TPM2_HMAC and HMAC sequences against RFC 4231 / RFC 2202 and
//! the RFC 2104 formula computed here with sha2, TPM2_Unseal,
//! TPM2_ObjectChangeAuth and TPM2_LoadExternal, and the response codes
//! (with their handle/parameter numbers) that Part 3 assigns to misuse.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha384};
use vtpm_engine::Tpm;

mod common;
use common::*;

/// Reads a TPM2B at the start of `b`: (contents, rest).
fn take2b(b: &[u8]) -> (&[u8], &[u8]) {
    let n = u16::from_be_bytes([b[0], b[1]]) as usize;
    (&b[2..2 + n], &b[2 + n..])
}

/// TPMT_PUBLIC of a symmetric cipher key.
fn sym_public(attrs: u32, key_bits: u16, mode: u16, unique: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(alg::SYMCIPHER.to_be_bytes());
    v.extend(alg::SHA256.to_be_bytes());
    v.extend(attrs.to_be_bytes());
    v.extend(tpm2b(&[]));
    v.extend(alg::AES.to_be_bytes());
    v.extend(key_bits.to_be_bytes());
    v.extend(mode.to_be_bytes());
    v.extend(tpm2b(unique));
    v
}

/// TPMT_PUBLIC of a keyed-hash object (`scheme_hash`: an HMAC scheme).
fn keyedhash_public(attrs: u32, scheme_hash: Option<u16>, unique: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(alg::KEYEDHASH.to_be_bytes());
    v.extend(alg::SHA256.to_be_bytes());
    v.extend(attrs.to_be_bytes());
    v.extend(tpm2b(&[]));
    match scheme_hash {
        Some(h) => {
            v.extend(alg::HMAC.to_be_bytes());
            v.extend(h.to_be_bytes());
        }
        None => v.extend(alg::NULL.to_be_bytes()),
    }
    v.extend(tpm2b(unique));
    v
}

/// TPMT_PUBLIC of an ECC P-256 storage key (AES-128-CFB for its children).
fn ecc_storage_public() -> Vec<u8> {
    ecc_public(
        attr::BASE | attr::NO_DA | attr::RESTRICTED | attr::DECRYPT,
        &[],
    )
}

/// TPM2B_SENSITIVE_CREATE.
fn sensitive_create(auth: &[u8], data: &[u8]) -> Vec<u8> {
    tpm2b(&[tpm2b(auth), tpm2b(data)].concat())
}

/// TPM2_CreatePrimary in the owner hierarchy; the new handle.
fn create_primary(t: &mut Tpm, auth: &[u8], data: &[u8], public: &[u8]) -> u32 {
    create_primary_in(t, RH_OWNER, b"", auth, data, public).handle
}

/// TPM2_Create under `parent`: (outPrivate, outPublic).
fn create(t: &mut Tpm, parent: u32, auth: &[u8], data: &[u8], public: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut p = sensitive_create(auth, data);
    p.extend(tpm2b(public));
    p.extend(tpm2b(&[]));
    p.extend(0u32.to_be_bytes());
    let r = t.execute(0, &command_pw(cc::CREATE, &[parent], Some(&[b""]), &p));
    let out = params(&r, 0);
    let (private, rest) = take2b(&out);
    let (public, _) = take2b(rest);
    (private.to_vec(), public.to_vec())
}

/// TPM2_Load: (handle, name).
fn load(t: &mut Tpm, parent: u32, private: &[u8], public: &[u8]) -> (u32, Vec<u8>) {
    let mut p = tpm2b(private);
    p.extend(tpm2b(public));
    let r = t.execute(0, &command_pw(cc::LOAD, &[parent], Some(&[b""]), &p));
    let h = u32::from_be_bytes(r[10..14].try_into().unwrap());
    (h, take2b(&params(&r, 1)).0.to_vec())
}

// SP 800-38A, Appendix F: AES-128 with the same key, IV and plaintext in
// every mode (CTR with its own initial counter block).
const KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";
const IV: &str = "000102030405060708090a0b0c0d0e0f";
const CTR_IV: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
const PLAIN: &str = "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
                     30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";
const VECTORS: [(u16, &str); 5] = [
    (
        alg::ECB,
        "3ad77bb40d7a3660a89ecaf32466ef97 f5d3d58503b9699de785895a96fdbaaf
         43b1cd7f598ece23881b00e3ed030688 7b0c785e27e8ad3f8223207104725dd4",
    ),
    (
        alg::CBC,
        "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2
         73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7",
    ),
    (
        alg::CFB,
        "3b3fd92eb72dad20333449f8e83cfb4a c8a64537a0b3a93fcde3cdad9f1ce58b
         26751f67a3cbb140b1808cf187a4f4df c04b05357c5d1c0eeac4c66f9ff7f2e6",
    ),
    (
        alg::OFB,
        "3b3fd92eb72dad20333449f8e83cfb4a 7789508d16918f03f53c52dac54ed825
         9740051e9c5fecf64344f7a82260edcc 304c6528f659c77866a510d9c1d6ae5e",
    ),
    (
        alg::CTR,
        "874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff
         5ae4df3edbd5d35e5b4f09020db03eab 1e031dda2fbe03d1792170a0f3009cee",
    ),
];

/// An unrestricted AES-128 primary key with the SP 800-38A key, mode NULL
/// unless given, allowed to encrypt (`sign`) and decrypt.
fn aes_key(t: &mut Tpm, mode: u16, attrs: u32) -> u32 {
    create_primary(t, b"", &unhex(KEY), &sym_public(attrs, 128, mode, &[]))
}

const AES_ATTRS: u32 = attr::USER_WITH_AUTH | attr::NO_DA | attr::SIGN | attr::DECRYPT;

/// TPM2_EncryptDecrypt (or, `two`, TPM2_EncryptDecrypt2) parameters.
fn ed_params(two: bool, decrypt: bool, mode: u16, iv: &[u8], data: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    if two {
        p.extend(tpm2b(data));
    }
    p.push(u8::from(decrypt));
    p.extend(mode.to_be_bytes());
    p.extend(tpm2b(iv));
    if !two {
        p.extend(tpm2b(data));
    }
    p
}

/// Runs EncryptDecrypt(2); the response.
fn ed(
    t: &mut Tpm,
    key: u32,
    two: bool,
    decrypt: bool,
    mode: u16,
    iv: &[u8],
    data: &[u8],
) -> Vec<u8> {
    let code = if two {
        cc::ENCRYPT_DECRYPT2
    } else {
        cc::ENCRYPT_DECRYPT
    };
    t.execute(
        0,
        &command_pw(
            code,
            &[key],
            Some(&[b""]),
            &ed_params(two, decrypt, mode, iv, data),
        ),
    )
}

/// (outData, ivOut) of a successful EncryptDecrypt(2).
fn ed_ok(
    t: &mut Tpm,
    key: u32,
    two: bool,
    decrypt: bool,
    mode: u16,
    iv: &[u8],
    data: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let r = ed(t, key, two, decrypt, mode, iv, data);
    let rsp_params = params(&r, 0);
    let (out, rest) = take2b(&rsp_params);
    let (iv_out, rest) = take2b(rest);
    assert!(rest.is_empty());
    (out.to_vec(), iv_out.to_vec())
}

#[test]
fn encrypt_decrypt_matches_sp800_38a_in_every_mode() {
    let mut t = started();
    let key = aes_key(&mut t, alg::NULL, AES_ATTRS);
    let plain = unhex(PLAIN);
    for (mode, expected) in VECTORS {
        let expected = unhex(expected);
        let iv = match mode {
            alg::ECB => Vec::new(),
            alg::CTR => unhex(CTR_IV),
            _ => unhex(IV),
        };
        for two in [false, true] {
            let (ct, iv_out) = ed_ok(&mut t, key, two, false, mode, &iv, &plain);
            assert_eq!(
                ct, expected,
                "mode 0x{mode:x} encrypt (EncryptDecrypt2: {two})"
            );
            let (pt, iv_out_d) = ed_ok(&mut t, key, two, true, mode, &iv, &expected);
            assert_eq!(
                pt, plain,
                "mode 0x{mode:x} decrypt (EncryptDecrypt2: {two})"
            );
            match mode {
                // The chaining value is the last ciphertext block in both
                // directions.
                alg::CBC | alg::CFB => {
                    assert_eq!(iv_out, expected[48..], "mode 0x{mode:x} ivOut");
                    assert_eq!(iv_out_d, expected[48..], "mode 0x{mode:x} ivOut");
                }
                alg::ECB => assert!(iv_out.is_empty()),
                _ => assert_eq!(iv_out.len(), 16),
            }
            // Chaining: two calls, the second with the first's ivOut,
            // give the one-call result.
            if mode != alg::ECB {
                let (a, iv_mid) = ed_ok(&mut t, key, two, false, mode, &iv, &plain[..32]);
                let (b, _) = ed_ok(&mut t, key, two, false, mode, &iv_mid, &plain[32..]);
                assert_eq!([a, b].concat(), expected, "mode 0x{mode:x} chained");
            }
        }
    }
    // Stream modes take any length: a prefix of the vector.
    for mode in [alg::CFB, alg::OFB, alg::CTR] {
        let (_, expected) = VECTORS.iter().find(|(m, _)| *m == mode).unwrap();
        let iv = if mode == alg::CTR {
            unhex(CTR_IV)
        } else {
            unhex(IV)
        };
        let (ct, _) = ed_ok(&mut t, key, true, false, mode, &iv, &plain[..21]);
        assert_eq!(ct, unhex(expected)[..21], "mode 0x{mode:x} partial block");
    }
    // A key with a mode uses it when the command says NULL, and accepts
    // the same mode named explicitly.
    let cbc = aes_key(&mut t, alg::CBC, AES_ATTRS);
    let cbc_expected = unhex(VECTORS[1].1);
    for mode in [alg::NULL, alg::CBC] {
        let (ct, _) = ed_ok(&mut t, cbc, false, false, mode, &unhex(IV), &plain);
        assert_eq!(ct, cbc_expected);
    }
}

#[test]
fn encrypt_decrypt_errors() {
    let mut t = started();
    let null_mode = aes_key(&mut t, alg::NULL, AES_ATTRS);
    let cbc = aes_key(&mut t, alg::CBC, AES_ATTRS);
    let iv = unhex(IV);
    let block = [0u8; 16];
    for two in [false, true] {
        // Parameter numbers: EncryptDecrypt (decrypt, mode, ivIn, inData),
        // EncryptDecrypt2 (inData, decrypt, mode, ivIn).
        let (p_decrypt, p_mode, p_iv, p_data) = if two { (2, 3, 4, 1) } else { (1, 2, 3, 4) };
        let check = |t: &mut Tpm, key, decrypt, mode, iv: &[u8], data: &[u8], want, what| {
            let r = ed(t, key, two, decrypt, mode, iv, data);
            assert_eq!(
                rc_of(&r),
                want,
                "{what} (EncryptDecrypt2: {two}): 0x{:x}",
                rc_of(&r)
            );
        };
        // The key has a mode: another one is TPM_RC_MODE.
        check(
            &mut t,
            cbc,
            false,
            alg::CFB,
            &iv,
            &block,
            rc::p(rc::MODE, p_mode),
            "mode mismatch",
        );
        // Neither the key nor the command names a mode.
        check(
            &mut t,
            null_mode,
            false,
            alg::NULL,
            &iv,
            &block,
            rc::p(rc::MODE, p_mode),
            "no mode",
        );
        // IV sizes: one block except for ECB, which takes none.
        check(
            &mut t,
            null_mode,
            false,
            alg::CFB,
            &iv[..8],
            &block,
            rc::p(rc::SIZE, p_iv),
            "short IV",
        );
        check(
            &mut t,
            null_mode,
            true,
            alg::CTR,
            &[],
            &block,
            rc::p(rc::SIZE, p_iv),
            "no IV",
        );
        check(
            &mut t,
            null_mode,
            false,
            alg::ECB,
            &iv,
            &block,
            rc::p(rc::SIZE, p_iv),
            "ECB with IV",
        );
        // CBC and ECB data is whole blocks.
        check(
            &mut t,
            cbc,
            false,
            alg::NULL,
            &iv,
            &[0; 17],
            rc::p(rc::SIZE, p_data),
            "CBC length",
        );
        check(
            &mut t,
            null_mode,
            true,
            alg::ECB,
            &[],
            &[0; 10],
            rc::p(rc::SIZE, p_data),
            "ECB length",
        );
        // Unmarshalling: TPMI_YES_NO, TPMI_ALG_CIPHER_MODE+, TPM2B_IV.
        let mut p = ed_params(two, false, alg::CFB, &iv, &block);
        let at = if two { 18 } else { 0 };
        p[at] = 2;
        let code = if two {
            cc::ENCRYPT_DECRYPT2
        } else {
            cc::ENCRYPT_DECRYPT
        };
        let r = t.execute(0, &command_pw(code, &[null_mode], Some(&[b""]), &p));
        assert_eq!(rc_of(&r), rc::p(rc::VALUE, p_decrypt), "decrypt = 2");
        for bad_mode in [alg::AES, alg::SHA256, 0x0045] {
            let r = ed(&mut t, null_mode, two, false, bad_mode, &iv, &block);
            assert_eq!(rc_of(&r), rc::p(rc::MODE, p_mode), "mode 0x{bad_mode:x}");
        }
        let r = ed(&mut t, null_mode, two, false, alg::CFB, &[0; 17], &block);
        assert_eq!(
            rc_of(&r),
            rc::p(rc::SIZE, p_iv),
            "ivIn larger than TPM2B_IV"
        );
    }
    // A restricted key (a storage parent) is refused.
    let restricted = create_primary(
        &mut t,
        b"",
        &[],
        &sym_public(
            attr::FIXED_TPM
                | attr::FIXED_PARENT
                | attr::SENSITIVE_DATA_ORIGIN
                | attr::USER_WITH_AUTH
                | attr::RESTRICTED
                | attr::DECRYPT,
            128,
            alg::CFB,
            &[],
        ),
    );
    for decrypt in [false, true] {
        let r = ed(&mut t, restricted, true, decrypt, alg::CFB, &iv, &block);
        assert_eq!(rc_of(&r), rc::h(rc::ATTRIBUTES, 1), "restricted key");
    }
    // Encryption needs `sign`, decryption `decrypt`.
    flush(&mut t, restricted);
    flush(&mut t, cbc);
    let decrypt_only = aes_key(&mut t, alg::NULL, attr::USER_WITH_AUTH | attr::DECRYPT);
    let r = ed(&mut t, decrypt_only, true, false, alg::CFB, &iv, &block);
    assert_eq!(rc_of(&r), rc::h(rc::ATTRIBUTES, 1), "encrypt without sign");
    ed_ok(&mut t, decrypt_only, true, true, alg::CFB, &iv, &block);
    let encrypt_only = aes_key(&mut t, alg::NULL, attr::USER_WITH_AUTH | attr::SIGN);
    let r = ed(&mut t, encrypt_only, true, true, alg::CFB, &iv, &block);
    assert_eq!(
        rc_of(&r),
        rc::h(rc::ATTRIBUTES, 1),
        "decrypt without decrypt"
    );
    ed_ok(&mut t, encrypt_only, true, false, alg::CFB, &iv, &block);
    // Not a symmetric key.
    let hmac = create_primary(
        &mut t,
        b"",
        b"key",
        &keyedhash_public(attr::USER_WITH_AUTH | attr::SIGN, None, &[]),
    );
    let r = ed(&mut t, hmac, false, false, alg::CFB, &iv, &block);
    assert_eq!(rc_of(&r), rc::h(rc::KEY, 1), "keyed-hash key");
}

/// HMAC per RFC 2104, from sha2/sha1 (an independent computation).
fn hmac_ref(alg: u16, key: &[u8], data: &[u8]) -> Vec<u8> {
    fn run<D: sha2::Digest>(block: usize, key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut k0 = if key.len() > block {
            D::digest(key).to_vec()
        } else {
            key.to_vec()
        };
        k0.resize(block, 0);
        let mut inner = D::new();
        inner.update(k0.iter().map(|b| b ^ 0x36).collect::<Vec<_>>());
        inner.update(data);
        let mut outer = D::new();
        outer.update(k0.iter().map(|b| b ^ 0x5c).collect::<Vec<_>>());
        outer.update(inner.finalize());
        outer.finalize().to_vec()
    }
    match alg {
        alg::SHA1 => run::<Sha1>(64, key, data),
        alg::SHA256 => run::<Sha256>(64, key, data),
        alg::SHA384 => run::<Sha384>(128, key, data),
        _ => panic!("hash 0x{alg:x}"),
    }
}

fn hmac_key(t: &mut Tpm, key: &[u8], scheme: Option<u16>) -> u32 {
    create_primary(
        t,
        b"",
        key,
        &keyedhash_public(attr::USER_WITH_AUTH | attr::NO_DA | attr::SIGN, scheme, &[]),
    )
}

fn hmac_cmd(t: &mut Tpm, key: u32, data: &[u8], hash: u16) -> Vec<u8> {
    let mut p = tpm2b(data);
    p.extend(hash.to_be_bytes());
    t.execute(0, &command_pw(cc::HMAC, &[key], Some(&[b""]), &p))
}

#[test]
fn hmac_matches_rfc_vectors_and_checks_the_key() {
    let mut t = started();
    // RFC 4231 test case 1 (and RFC 2202 case 1 for SHA-1).
    let k1 = hmac_key(&mut t, &[0x0b; 20], None);
    for (hash, expected) in [
        (alg::SHA1, "b617318655057264e28bc0b6fb378c8ef146be00"),
        (
            alg::SHA256,
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            alg::SHA384,
            "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c\
             faea9ea9076ede7f4af152e8b2fa9cb6",
        ),
    ] {
        let r = hmac_cmd(&mut t, k1, b"Hi There", hash);
        assert_eq!(take2b(&params(&r, 0)).0, unhex(expected), "hash 0x{hash:x}");
    }
    // RFC 4231 test case 2, with the hash from the key's scheme.
    let k2 = hmac_key(&mut t, b"Jefe", Some(alg::SHA256));
    let expected = unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    for hash in [alg::NULL, alg::SHA256] {
        let r = hmac_cmd(&mut t, k2, b"what do ya want for nothing?", hash);
        assert_eq!(take2b(&params(&r, 0)).0, expected);
    }
    // The key's scheme hash and another: TPM_RC_VALUE on hashAlg.
    let r = hmac_cmd(&mut t, k2, b"x", alg::SHA1);
    assert_eq!(rc_of(&r), rc::p(rc::VALUE, 2));
    // No hash anywhere.
    let r = hmac_cmd(&mut t, k1, b"x", alg::NULL);
    assert_eq!(rc_of(&r), rc::p(rc::VALUE, 2));
    // Not a hash algorithm: TPMI_ALG_HASH unmarshalling.
    let r = hmac_cmd(&mut t, k1, b"x", alg::AES);
    assert_eq!(rc_of(&r), rc::p(rc::HASH, 2));
    // A sealed data object is not a signing key; a symmetric key is not an
    // HMAC key.
    let sealed = create_primary(
        &mut t,
        b"",
        b"data",
        &keyedhash_public(attr::USER_WITH_AUTH, None, &[]),
    );
    let r = hmac_cmd(&mut t, sealed, b"x", alg::SHA256);
    assert_eq!(rc_of(&r), rc::h(rc::KEY, 1));
    let aes = aes_key(&mut t, alg::CFB, AES_ATTRS);
    let r = hmac_cmd(&mut t, aes, b"x", alg::SHA256);
    assert_eq!(rc_of(&r), rc::h(rc::TYPE, 1));
    let mut p = tpm2b(b"");
    p.extend(alg::SHA256.to_be_bytes());
    let r = t.execute(0, &command_pw(cc::HMAC_START, &[sealed], Some(&[b""]), &p));
    assert_eq!(
        rc_of(&r),
        rc::h(rc::KEY, 1),
        "HMAC_Start with a data object"
    );
}

#[test]
fn hmac_sequences_survive_context_save_and_give_null_tickets() {
    let mut t = started();
    // A key longer than the SHA-256 block is hashed first.
    let key: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(37)).collect();
    let k = hmac_key(&mut t, &key, None);
    let data: Vec<u8> = (0..2500u32).map(|i| (i * 7 + 3) as u8).collect();

    let mut p = tpm2b(b"seqpw");
    p.extend(alg::SHA256.to_be_bytes());
    let r = t.execute(0, &command_pw(cc::HMAC_START, &[k], Some(&[b""]), &p));
    assert_eq!(rc_of(&r), 0);
    let seq = u32::from_be_bytes(r[10..14].try_into().unwrap());
    assert_eq!(seq >> 24, 0x80);
    let update = |t: &mut Tpm, seq: u32, chunk: &[u8]| {
        let r = t.execute(
            0,
            &command_pw(
                cc::SEQUENCE_UPDATE,
                &[seq],
                Some(&[b"seqpw"]),
                &tpm2b(chunk),
            ),
        );
        assert_eq!(rc_of(&r), 0);
    };
    update(&mut t, seq, &data[..1000]);
    // The sequence's authValue is its own.
    let r = t.execute(
        0,
        &command_pw(cc::SEQUENCE_UPDATE, &[seq], Some(&[b"wrong"]), &tpm2b(b"x")),
    );
    assert_eq!(rc_of(&r), rc::s(rc::BAD_AUTH, 1));
    // Saved, flushed and loaded back, it goes on where it was.
    let r = t.execute(0, &command_pw(cc::CONTEXT_SAVE, &[seq], None, &[]));
    let context = params(&r, 0).to_vec();
    flush(&mut t, seq);
    let r = t.execute(0, &command_pw(cc::CONTEXT_LOAD, &[], None, &context));
    assert_eq!(rc_of(&r), 0);
    let seq = u32::from_be_bytes(r[10..14].try_into().unwrap());
    update(&mut t, seq, &data[1000..2000]);
    let mut p = tpm2b(&data[2000..]);
    p.extend(RH_OWNER.to_be_bytes());
    let r = t.execute(
        0,
        &command_pw(cc::SEQUENCE_COMPLETE, &[seq], Some(&[b"seqpw"]), &p),
    );
    let out = params(&r, 0);
    let (result, ticket) = take2b(&out);
    assert_eq!(result, hmac_ref(alg::SHA256, &key, &data));
    // TPMT_TK_HASHCHECK: TPM_ST_HASHCHECK, TPM_RH_NULL, empty digest.
    assert_eq!(
        ticket,
        [&[0x80, 0x24][..], &RH_NULL.to_be_bytes(), &[0, 0]].concat()
    );
    // Completed, the sequence is gone.
    let r = t.execute(
        0,
        &command_pw(cc::FLUSH_CONTEXT, &[], None, &seq.to_be_bytes()),
    );
    assert_ne!(rc_of(&r), 0);

    // SHA-384 through the key's scheme, the sequence empty but for the
    // last buffer.
    let k384 = hmac_key(&mut t, b"Jefe", Some(alg::SHA384));
    let mut p = tpm2b(b"");
    p.extend(alg::NULL.to_be_bytes());
    let r = t.execute(0, &command_pw(cc::HMAC_START, &[k384], Some(&[b""]), &p));
    let seq = u32::from_be_bytes(r[10..14].try_into().unwrap());
    let mut p = tpm2b(b"what do ya want for nothing?");
    p.extend(RH_NULL.to_be_bytes());
    let r = t.execute(
        0,
        &command_pw(cc::SEQUENCE_COMPLETE, &[seq], Some(&[b""]), &p),
    );
    assert_eq!(
        take2b(&params(&r, 0)).0,
        unhex(
            "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
             8e2240ca5e69e2c78b3239ecfab21649"
        )
    );
    // Hash alg conflicting with the key's scheme.
    let mut p = tpm2b(b"");
    p.extend(alg::SHA256.to_be_bytes());
    let r = t.execute(0, &command_pw(cc::HMAC_START, &[k384], Some(&[b""]), &p));
    assert_eq!(rc_of(&r), rc::p(rc::VALUE, 2));
    // An HMAC sequence is not an event sequence... and a hash sequence
    // still completes as before.
    let mut p = tpm2b(b"");
    p.extend(alg::SHA256.to_be_bytes());
    let r = t.execute(0, &command_pw(cc::HASH_SEQUENCE_START, &[], None, &p));
    let hs = u32::from_be_bytes(r[10..14].try_into().unwrap());
    let mut p = tpm2b(b"abc");
    p.extend(RH_NULL.to_be_bytes());
    let r = t.execute(
        0,
        &command_pw(cc::SEQUENCE_COMPLETE, &[hs], Some(&[b""]), &p),
    );
    assert_eq!(take2b(&params(&r, 0)).0, Sha256::digest(b"abc").as_slice());
}

fn unseal(t: &mut Tpm, h: u32, pw: &[u8]) -> Result<Vec<u8>, u32> {
    let r = t.execute(0, &command_pw(cc::UNSEAL, &[h], Some(&[pw]), &[]));
    match rc_of(&r) {
        0 => Ok(take2b(&params(&r, 0)).0.to_vec()),
        e => Err(e),
    }
}

#[test]
fn unseal_returns_the_data_of_data_objects_only() {
    let mut t = started();
    let sealed = create_primary(
        &mut t,
        b"pw",
        b"the secret",
        &keyedhash_public(attr::USER_WITH_AUTH | attr::NO_DA, None, &[]),
    );
    assert_eq!(unseal(&mut t, sealed, b"pw").unwrap(), b"the secret");
    assert_eq!(unseal(&mut t, sealed, b"pw\0\0").unwrap(), b"the secret");
    assert_eq!(unseal(&mut t, sealed, b"pW"), Err(rc::s(rc::BAD_AUTH, 1)));
    let hmac = hmac_key(&mut t, b"k", None);
    assert_eq!(unseal(&mut t, hmac, b""), Err(rc::h(rc::ATTRIBUTES, 1)));
    let aes = aes_key(&mut t, alg::CFB, AES_ATTRS);
    assert_eq!(unseal(&mut t, aes, b""), Err(rc::h(rc::TYPE, 1)));
}

#[test]
fn object_change_auth_makes_a_new_private_with_the_same_name() {
    let mut t = started();
    let parent = create_primary(&mut t, b"", &[], &ecc_storage_public());
    let template = keyedhash_public(
        attr::USER_WITH_AUTH | attr::FIXED_TPM | attr::FIXED_PARENT,
        None,
        &[],
    );
    let (private, public) = create(&mut t, parent, b"old", b"sealed data", &template);
    let (obj, name) = load(&mut t, parent, &private, &public);
    // The Name is nameAlg || SHA-256(TPMT_PUBLIC).
    assert_eq!(name, [&[0, 0x0B][..], &Sha256::digest(&public)].concat());

    let change = |t: &mut Tpm, obj: u32, parent: u32, pw: &[u8], new: &[u8]| {
        t.execute(
            0,
            &command_pw(
                cc::OBJECT_CHANGE_AUTH,
                &[obj, parent],
                Some(&[pw]),
                &tpm2b(new),
            ),
        )
    };
    let r = change(&mut t, obj, parent, b"old", b"new");
    let rsp_params = params(&r, 0);
    let (new_private, rest) = take2b(&rsp_params);
    assert!(rest.is_empty());
    assert_ne!(new_private, &private[..]);
    // The loaded object keeps its authValue.
    assert_eq!(unseal(&mut t, obj, b"old").unwrap(), b"sealed data");
    // The new private loads with the same public area and Name, and answers
    // to the new authValue only.
    let (obj2, name2) = load(&mut t, parent, new_private, &public);
    assert_eq!(name2, name);
    assert_eq!(unseal(&mut t, obj2, b"new").unwrap(), b"sealed data");
    assert_eq!(unseal(&mut t, obj2, b"old"), Err(rc::s(rc::AUTH_FAIL, 1)));
    // The authorization is the object's (ADMIN role with userWithAuth... the
    // authValue).
    let r = change(&mut t, obj2, parent, b"old", b"x");
    assert_eq!(rc_of(&r), rc::s(rc::AUTH_FAIL, 1));
    // newAuth longer than a SHA-256 digest (trailing zeros do not count).
    let r = change(&mut t, obj2, parent, b"new", &[7; 33]);
    assert_eq!(rc_of(&r), rc::p(rc::SIZE, 1));
    let mut padded = vec![7; 32];
    padded.extend([0; 8]);
    let r = change(&mut t, obj2, parent, b"new", &padded);
    assert_eq!(rc_of(&r), 0);
    // parentHandle must be the object's parent.
    flush(&mut t, obj);
    let other = create_primary(&mut t, b"", b"other", &ecc_storage_public());
    let r = change(&mut t, obj2, other, b"new", b"x");
    assert_eq!(rc_of(&r), rc::h(rc::TYPE, 2), "another storage key");
    let r = change(&mut t, obj2, obj2, b"new", b"x");
    assert_eq!(rc_of(&r), rc::h(rc::TYPE, 2), "the object itself");
    // A primary object has no parent object.
    let r = change(&mut t, parent, parent, b"", b"x");
    assert_eq!(rc_of(&r), rc::h(rc::TYPE, 2), "primary object");
}

/// unique of a symmetric or keyed-hash object: SHA-256(seedValue || key).
fn obfuscated_unique(seed: &[u8], key: &[u8]) -> Vec<u8> {
    Sha256::digest([seed, key].concat()).to_vec()
}

/// TPM2B_SENSITIVE of a symmetric key.
fn sym_sensitive(auth: &[u8], seed: &[u8], key: &[u8]) -> Vec<u8> {
    let mut s = alg::SYMCIPHER.to_be_bytes().to_vec();
    s.extend(tpm2b(auth));
    s.extend(tpm2b(seed));
    s.extend(tpm2b(key));
    tpm2b(&s)
}

fn load_external(t: &mut Tpm, sensitive: &[u8], public: &[u8], hierarchy: u32) -> Vec<u8> {
    let mut p = sensitive.to_vec();
    p.extend(tpm2b(public));
    p.extend(hierarchy.to_be_bytes());
    t.execute(0, &command_pw(cc::LOAD_EXTERNAL, &[], None, &p))
}

#[test]
fn load_external_symmetric_key_and_public_areas() {
    let mut t = started();
    let key = unhex(KEY);
    let seed = [0x5a; 32];
    let attrs = attr::USER_WITH_AUTH | attr::SIGN | attr::DECRYPT;
    let public = sym_public(attrs, 128, alg::NULL, &obfuscated_unique(&seed, &key));
    let sensitive = sym_sensitive(b"extpw", &seed, &key);
    let r = load_external(&mut t, &sensitive, &public, RH_NULL);
    assert_eq!(rc_of(&r), 0);
    let h = u32::from_be_bytes(r[10..14].try_into().unwrap());
    let rsp_params = params(&r, 1);
    let (name, _) = take2b(&rsp_params);
    assert_eq!(name, [&[0, 0x0B][..], &Sha256::digest(&public)].concat());
    // It encrypts as the SP 800-38A vector says, with its authValue.
    let mut p = ed_params(true, false, alg::CBC, &unhex(IV), &unhex(PLAIN));
    let r = t.execute(
        0,
        &command_pw(cc::ENCRYPT_DECRYPT2, &[h], Some(&[b"extpw"]), &p),
    );
    assert_eq!(take2b(&params(&r, 0)).0, unhex(VECTORS[1].1));
    p = ed_params(true, false, alg::CBC, &unhex(IV), &unhex(PLAIN));
    let r = t.execute(
        0,
        &command_pw(cc::ENCRYPT_DECRYPT2, &[h], Some(&[b"nope"]), &p),
    );
    assert_eq!(rc_of(&r), rc::s(rc::AUTH_FAIL, 1), "wrong authValue");
    // Its Qualified Name is its Name (TPM2_ReadPublic).
    let r = t.execute(0, &command_pw(0x173, &[h], None, &[]));
    let rsp_params = params(&r, 0);
    let (_, rest) = take2b(&rsp_params);
    let (n, rest) = take2b(rest);
    let (qn, _) = take2b(rest);
    assert_eq!(n, name);
    assert_eq!(qn, name);
    flush(&mut t, h);

    // With a sensitive area: the null hierarchy only...
    for hierarchy in [RH_OWNER, 0x4000_000B, 0x4000_000C] {
        let r = load_external(&mut t, &sensitive, &public, hierarchy);
        assert_eq!(
            rc_of(&r),
            rc::p(rc::HIERARCHY, 3),
            "hierarchy 0x{hierarchy:x}"
        );
    }
    // ...and nothing that looks like this TPM's own object.
    for extra in [
        attr::FIXED_TPM | attr::FIXED_PARENT,
        attr::FIXED_PARENT,
        attr::RESTRICTED,
    ] {
        let public = sym_public(
            attrs | extra,
            128,
            alg::CFB,
            &obfuscated_unique(&seed, &key),
        );
        let r = load_external(&mut t, &sensitive, &public, RH_NULL);
        assert_eq!(
            rc_of(&r),
            rc::p(rc::ATTRIBUTES, 2),
            "attributes 0x{extra:x}"
        );
    }
    // The unique field must be H(seedValue || key).
    let wrong = sym_public(attrs, 128, alg::NULL, &obfuscated_unique(&[0x5b; 32], &key));
    let r = load_external(&mut t, &sensitive, &wrong, RH_NULL);
    assert_eq!(rc_of(&r) & 0xBF, rc::BINDING, "binding: 0x{:x}", rc_of(&r));
    // The key size is the public area's.
    let public256 = sym_public(attrs, 256, alg::NULL, &obfuscated_unique(&seed, &key));
    let r = load_external(&mut t, &sensitive, &public256, RH_NULL);
    assert_eq!(rc_of(&r), rc::p(rc::KEY_SIZE, 1));
    // Sensitive and public of different types.
    let hmac_public = keyedhash_public(
        attr::USER_WITH_AUTH | attr::SIGN,
        None,
        &obfuscated_unique(&seed, &key),
    );
    let r = load_external(&mut t, &sensitive, &hmac_public, RH_NULL);
    assert_eq!(rc_of(&r), rc::p(rc::TYPE, 1));

    // A public area alone may go to any enabled hierarchy; its unique field
    // must have the size of a nameAlg digest.
    for hierarchy in [RH_NULL, RH_OWNER] {
        let r = load_external(&mut t, &[0, 0], &public, hierarchy);
        assert_eq!(rc_of(&r), 0);
        let h = u32::from_be_bytes(r[10..14].try_into().unwrap());
        // It has no key to encrypt with.
        let p = ed_params(true, false, alg::CBC, &unhex(IV), &unhex(PLAIN));
        let r = t.execute(0, &command_pw(cc::ENCRYPT_DECRYPT2, &[h], Some(&[b""]), &p));
        assert_eq!(rc_of(&r), rc::h(rc::KEY, 1));
        flush(&mut t, h);
    }
    let short = sym_public(attrs, 128, alg::NULL, &[1; 20]);
    let r = load_external(&mut t, &[0, 0], &short, RH_NULL);
    assert_eq!(rc_of(&r), rc::p(rc::KEY, 2));
    // An unknown hierarchy value: TPMI_RH_HIERARCHY+.
    let r = load_external(&mut t, &[0, 0], &public, 0x4000_000A);
    assert_eq!(rc_of(&r), rc::p(rc::VALUE, 3));
}

#[test]
fn load_external_keyed_hash_without_name_alg() {
    let mut t = started();
    // A public area with nameAlg TPM_ALG_NULL has an empty Name; with its
    // sensitive area it still HMACs (no unique field to check).
    let mut public = keyedhash_public(attr::USER_WITH_AUTH | attr::SIGN, Some(alg::SHA256), &[]);
    public[2..4].copy_from_slice(&alg::NULL.to_be_bytes());
    let mut s = alg::KEYEDHASH.to_be_bytes().to_vec();
    s.extend(tpm2b(b""));
    s.extend(tpm2b(b""));
    s.extend(tpm2b(b"Jefe"));
    let r = load_external(&mut t, &tpm2b(&s), &public, RH_NULL);
    assert_eq!(rc_of(&r), 0, "rc 0x{:x}", rc_of(&r));
    let h = u32::from_be_bytes(r[10..14].try_into().unwrap());
    assert_eq!(take2b(&params(&r, 1)).0, b"");
    let r = hmac_cmd(&mut t, h, b"what do ya want for nothing?", alg::NULL);
    assert_eq!(
        take2b(&params(&r, 0)).0,
        unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    );
    // A key longer than the hash block is refused.
    let mut s = alg::KEYEDHASH.to_be_bytes().to_vec();
    s.extend(tpm2b(b""));
    s.extend(tpm2b(b""));
    s.extend(tpm2b(&[1; 65]));
    let r = load_external(&mut t, &tpm2b(&s), &public, RH_NULL);
    assert_eq!(rc_of(&r), rc::p(rc::KEY_SIZE, 1));
    // Without nameAlg a public-only keyed-hash object has an empty unique.
    let r = load_external(&mut t, &[0, 0], &public, RH_NULL);
    assert_eq!(rc_of(&r), 0);
    let mut with_unique = public.clone();
    let n = with_unique.len();
    with_unique.truncate(n - 2);
    with_unique.extend(tpm2b(&[0; 32]));
    let r = load_external(&mut t, &[0, 0], &with_unique, RH_NULL);
    assert_eq!(rc_of(&r), rc::p(rc::KEY, 2));
}

/// The fuzz seeds for these commands (`fuzz/corpus-seed`) are valid
/// command sequences: run as the fuzz target runs them (byte 0 the control
/// byte, commands split at 0xFD), on a fresh TPM after Startup, every
/// command succeeds.
#[test]
fn fuzz_seeds_run_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus-seed");
    for name in [
        "sym_encrypt_decrypt",
        "hmac_sequence",
        "load_external_unseal",
    ] {
        let data = std::fs::read(dir.join(name)).unwrap();
        let (&ctl, rest) = data.split_first().unwrap();
        assert_eq!(ctl & 0xC0, 0xC0, "{name}: a fresh TPM with Startup");
        let mut t = started();
        for (i, c) in rest.split(|&b| b == 0xFD).enumerate() {
            let r = t.execute(ctl % 6, c);
            assert_eq!(rc_of(&r), 0, "{name}: command {i}: rc 0x{:x}", rc_of(&r));
        }
    }
}
