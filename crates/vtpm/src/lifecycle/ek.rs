//! Endorsement keys: the TCG EK Credential Profile default templates and
//! EK certificates (profile §3) issued by a local CA.

use super::ca::{Ca, FixedProfile, extension, key_identifier, random_serial};
use super::tpmcmd::{self, KeyBytes};
use anyhow::{Context, Result, bail};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280;
use der::asn1::{OctetString, Utf8StringRef};
use der::{Decode, Encode};
use spki::SubjectPublicKeyInfoOwned;
use std::time::Duration;
use x509_cert::Certificate;
use x509_cert::builder::CertificateBuilder;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
};
use x509_cert::name::Name;
use x509_cert::time::Validity;

/// tcg-at-tpmManufacturer.
pub const TPM_MANUFACTURER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.2.1");
/// tcg-at-tpmModel.
pub const TPM_MODEL: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.2.2");
/// tcg-at-tpmVersion.
pub const TPM_VERSION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.2.3");
/// tcg-at-tpmSpecification.
pub const TPM_SPECIFICATION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.2.16");
/// tcg-kp-EKCertificate.
pub const KP_EK_CERTIFICATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.8.1");

/// PolicySecret(TPM_RH_ENDORSEMENT) with SHA-256: the low-range EK policy.
const POLICY_A_SHA256: [u8; 32] = [
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
];

/// PolicyB with SHA-384, the high-range EK policy (EK Credential Profile
/// B.4): PolicyOR(PolicyA = PolicySecret(TPM_RH_ENDORSEMENT), PolicyC =
/// PolicyAuthorizeNV(0x01C07F02)), both with SHA-384. tests/lifecycle.rs
/// recomputes it from PolicyA (Part 3 formulas) and the profile's PolicyC
/// and derives the EK with it through tpm2-tools.
const POLICY_B_SHA384: [u8; 48] = [
    0xb2, 0x6e, 0x7d, 0x28, 0xd1, 0x1a, 0x50, 0xbc, 0x53, 0xd8, 0x82, 0xbc, 0xf5, 0xfd, 0x3a, 0x1a,
    0x07, 0x41, 0x48, 0xbb, 0x35, 0xd3, 0xb4, 0xe4, 0xcb, 0x1c, 0x0a, 0xd9, 0xbd, 0xe4, 0x19, 0xca,
    0xcb, 0x47, 0xba, 0x09, 0x69, 0x96, 0x46, 0x15, 0x0f, 0x9f, 0xc0, 0x00, 0xf3, 0xf8, 0x0e, 0x12,
];

/// An EK kind vtpm creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EkKind {
    /// RSA 2048, template L-1, certificate at NV 0x01C00002.
    Rsa2048,
    /// ECC NIST P-256, template L-2, certificate at NV 0x01C0000A.
    EccP256,
    /// ECC NIST P-384, template H-3, certificate at NV 0x01C00016.
    EccP384,
}

impl EkKind {
    /// Every kind, in the order `inspect` reports them.
    pub const ALL: [EkKind; 3] = [EkKind::Rsa2048, EkKind::EccP256, EkKind::EccP384];

    pub fn name(self) -> &'static str {
        match self {
            EkKind::Rsa2048 => "rsa2048",
            EkKind::EccP256 => "ecc-p256",
            EkKind::EccP384 => "ecc-p384",
        }
    }

    /// The NV index of its certificate (EK Credential Profile §2.2.1.4
    /// low range, §2.2.1.5 high range).
    pub fn cert_index(self) -> u32 {
        match self {
            EkKind::Rsa2048 => 0x01C0_0002,
            EkKind::EccP256 => 0x01C0_000A,
            EkKind::EccP384 => 0x01C0_0016,
        }
    }

    /// Its persistent handle with `--persist-ek`: 0x81010001 (RSA) and
    /// 0x81010002 (P-256) as the TCG provisioning guidance reserves them;
    /// 0x81010016 for P-384, where swtpm_setup puts its P-384 EK.
    pub fn persistent_handle(self) -> u32 {
        match self {
            EkKind::Rsa2048 => 0x8101_0001,
            EkKind::EccP256 => 0x8101_0002,
            EkKind::EccP384 => 0x8101_0016,
        }
    }

    /// The marshalled TPMT_PUBLIC template: EK Credential Profile
    /// templates L-1 and L-2 (tpm2_createek uses the same) and H-3.
    pub fn template(self) -> Vec<u8> {
        let mut t = Vec::new();
        match self {
            EkKind::Rsa2048 | EkKind::EccP256 => {
                let alg: u16 = if self == EkKind::Rsa2048 {
                    0x0001
                } else {
                    0x0023
                };
                t.extend_from_slice(&alg.to_be_bytes());
                // nameAlg SHA-256; fixedTPM|fixedParent|sensitiveDataOrigin|
                // adminWithPolicy|restricted|decrypt.
                t.extend_from_slice(&0x000Bu16.to_be_bytes());
                t.extend_from_slice(&0x0003_00B2u32.to_be_bytes());
                t.extend_from_slice(&tpmcmd::tpm2b(&POLICY_A_SHA256));
                // AES-128-CFB, scheme NULL.
                t.extend_from_slice(&[0x00, 0x06, 0x00, 0x80, 0x00, 0x43, 0x00, 0x10]);
            }
            EkKind::EccP384 => {
                // ECC, nameAlg SHA-384; as L-2 plus userWithAuth.
                t.extend_from_slice(&[0x00, 0x23, 0x00, 0x0C]);
                t.extend_from_slice(&0x0003_00F2u32.to_be_bytes());
                t.extend_from_slice(&tpmcmd::tpm2b(&POLICY_B_SHA384));
                // AES-256-CFB, scheme NULL.
                t.extend_from_slice(&[0x00, 0x06, 0x01, 0x00, 0x00, 0x43, 0x00, 0x10]);
            }
        }
        match self {
            EkKind::Rsa2048 => {
                t.extend_from_slice(&[0x08, 0x00, 0, 0, 0, 0]);
                t.extend_from_slice(&tpmcmd::tpm2b(&[0; 256]));
            }
            EkKind::EccP256 => {
                // curve P-256, KDF NULL, unique x and y of 32 zero bytes.
                t.extend_from_slice(&[0x00, 0x03, 0x00, 0x10]);
                t.extend_from_slice(&tpmcmd::tpm2b(&[0; 32]));
                t.extend_from_slice(&tpmcmd::tpm2b(&[0; 32]));
            }
            EkKind::EccP384 => {
                // curve P-384, KDF NULL; the high range has an empty unique.
                t.extend_from_slice(&[0x00, 0x04, 0x00, 0x10, 0, 0, 0, 0]);
            }
        }
        t
    }
}

/// The EK's public key as a SubjectPublicKeyInfo.
pub fn ek_spki(kind: EkKind, key: &KeyBytes) -> Result<SubjectPublicKeyInfoOwned> {
    Ok(match (kind, key) {
        (EkKind::Rsa2048, KeyBytes::Rsa(n)) => {
            let n = rsa::BoxedUint::from_be_slice_vartime(n);
            let e = rsa::BoxedUint::from(65_537u32);
            let pk = rsa::RsaPublicKey::new(n, e).context("the EK's RSA key")?;
            SubjectPublicKeyInfoOwned::from_key(&pk)?
        }
        (EkKind::EccP256, KeyBytes::Ecc(x, y)) => {
            let sec1 = [&[0x04u8][..], x, y].concat();
            let pk = p256::PublicKey::from_sec1_bytes(&sec1)
                .map_err(|_| anyhow::anyhow!("the EK's P-256 point is invalid"))?;
            SubjectPublicKeyInfoOwned::from_key(&pk)?
        }
        (EkKind::EccP384, KeyBytes::Ecc(x, y)) => {
            let sec1 = [&[0x04u8][..], x, y].concat();
            let pk = p384::PublicKey::from_sec1_bytes(&sec1)
                .map_err(|_| anyhow::anyhow!("the EK's P-384 point is invalid"))?;
            SubjectPublicKeyInfoOwned::from_key(&pk)?
        }
        _ => bail!("the EK's key type does not match its template"),
    })
}

/// A DER TLV.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = content.len();
    if n < 0x80 {
        v.push(u8::try_from(n).unwrap_or(0));
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let len = bytes.get(skip..).unwrap_or(&[]);
        v.push(0x80 | u8::try_from(len.len()).unwrap_or(0));
        v.extend_from_slice(len);
    }
    v.extend_from_slice(content);
    v
}

fn utf8(s: &str) -> Result<Vec<u8>> {
    Ok(Utf8StringRef::new(s)?.to_der()?)
}

/// Identity of the TPM for the certificate's subjectAltName.
#[derive(Debug, Clone)]
pub struct TpmIdentity {
    /// TPM_PT_MANUFACTURER.
    pub manufacturer: u32,
    /// TPM_PT_VENDOR_STRING_1..4, without trailing NULs.
    pub model: String,
    /// TPM_PT_FIRMWARE_VERSION_1.
    pub version: u32,
}

/// subjectAltName: directoryName with tpmManufacturer, tpmModel and
/// tpmVersion (EK Credential Profile §3.2.9), one RDN each.
fn san_value(id: &TpmIdentity) -> Result<Vec<u8>> {
    let attrs = [
        (TPM_MANUFACTURER, format!("id:{:08X}", id.manufacturer)),
        (TPM_MODEL, id.model.clone()),
        (TPM_VERSION, format!("id:{:08X}", id.version)),
    ];
    let mut rdns = Vec::new();
    for (oid, value) in attrs {
        let atv = tlv(0x30, &[oid.to_der()?, utf8(&value)?].concat());
        rdns.extend_from_slice(&tlv(0x31, &atv));
    }
    let name = tlv(0x30, &rdns);
    // GeneralNames ::= SEQUENCE OF GeneralName; directoryName [4] EXPLICIT.
    Ok(tlv(0x30, &tlv(0xA4, &name)))
}

/// subjectDirectoryAttributes: tpmSpecification { "2.0", level, revision }.
fn sda_value(level: u32, revision: u32) -> Result<Vec<u8>> {
    let spec = tlv(
        0x30,
        &[utf8("2.0")?, level.to_der()?, revision.to_der()?].concat(),
    );
    let attr = tlv(
        0x30,
        &[TPM_SPECIFICATION.to_der()?, tlv(0x31, &spec)].concat(),
    );
    Ok(tlv(0x30, &attr))
}

fn raw_extension(
    oid: ObjectIdentifier,
    critical: bool,
    value: Vec<u8>,
) -> Result<x509_cert::ext::Extension> {
    Ok(x509_cert::ext::Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value)?,
    })
}

/// Issues the EK certificate for `spki` (EK Credential Profile §3).
pub fn issue(
    ca: &Ca,
    kind: EkKind,
    spki: SubjectPublicKeyInfoOwned,
    id: &TpmIdentity,
    days: u32,
) -> Result<Certificate> {
    let ca_spki = ca.key.spki()?;
    let usage = match kind {
        EkKind::Rsa2048 => KeyUsages::KeyEncipherment,
        EkKind::EccP256 | EkKind::EccP384 => KeyUsages::KeyAgreement,
    };
    let extensions = vec![
        extension(
            rfc5280::ID_CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
        )?,
        extension(rfc5280::ID_CE_KEY_USAGE, true, &KeyUsage(usage.into()))?,
        extension(
            rfc5280::ID_CE_EXT_KEY_USAGE,
            false,
            &ExtendedKeyUsage(vec![KP_EK_CERTIFICATE]),
        )?,
        // The subject is empty, so the subjectAltName is critical.
        raw_extension(rfc5280::ID_CE_SUBJECT_ALT_NAME, true, san_value(id)?)?,
        raw_extension(
            rfc5280::ID_CE_SUBJECT_DIRECTORY_ATTRIBUTES,
            false,
            sda_value(0, 159)?,
        )?,
        extension(
            rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(key_identifier(&ca_spki))?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
    ];
    let profile = FixedProfile {
        issuer: Some(ca.cert.tbs_certificate().subject().clone()),
        subject: Name::default(),
        extensions,
    };
    let validity = Validity::from_now(Duration::from_secs(u64::from(days) * 86_400))?;
    let builder = CertificateBuilder::new(profile, random_serial()?, validity, spki)?;
    ca.key.sign(builder)
}

/// Parses a DER certificate (as read back from NV).
pub fn parse_cert(der: &[u8]) -> Result<Certificate> {
    Ok(Certificate::from_der(der)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    const POLICY: &str = "0020837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa";

    #[test]
    fn templates_are_the_profile_defaults() {
        // The hex of crates/vtpm-engine/tests/primary_golden.rs (L-1, L-2).
        assert_eq!(
            hex(&EkKind::Rsa2048.template()),
            format!(
                "0001000b000300b2{POLICY}00060080004300100800000000000100{}",
                "00".repeat(256)
            )
        );
        assert_eq!(
            hex(&EkKind::EccP256.template()),
            format!(
                "0023000b000300b2{POLICY}0006008000430010000300100020{}0020{}",
                "00".repeat(32),
                "00".repeat(32)
            )
        );
    }

    #[test]
    fn high_range_p384_template() {
        assert_eq!(
            hex(&EkKind::EccP384.template()),
            format!(
                "0023000c000300f20030{}00060100004300100004001000000000",
                hex(&POLICY_B_SHA384)
            )
        );
    }

    #[test]
    fn der_lengths() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        let longer = tlv(0x04, &[0; 300]);
        assert_eq!(&longer[..4], &[0x04, 0x82, 0x01, 0x2C]);
    }

    #[test]
    fn tpm_specification_attribute() {
        // SEQUENCE { SEQUENCE { OID 2.23.133.2.16, SET { SEQUENCE {
        //   UTF8 "2.0", INTEGER 0, INTEGER 159 } } } }
        assert_eq!(
            hex(&sda_value(0, 159).unwrap()),
            "3019301706056781050210310e300c0c03322e300201000202009f"
        );
    }
}
