//! `vtpm ca init`: a local certificate authority for EK certificates — a
//! signing key (PKCS#8 PEM, mode 0600) and a self-signed root certificate.

use anyhow::{Context, Result, bail};
use der::asn1::OctetString;
use der::{Decode, DecodePem, Encode, EncodePem, pem::LineEnding};
use sha1::Digest as _;
use signature::{Keypair, Signer};
use spki::{DynSignatureAlgorithmIdentifier, EncodePublicKey, SubjectPublicKeyInfoOwned};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;
use x509_cert::{Certificate, spki::SubjectPublicKeyInfoRef};

/// The CA key's file in the CA directory.
pub const KEY_FILE: &str = "ca-key.pem";
/// The CA key's file when it is encrypted under a state key (`ca init
/// --key-file`): the PKCS#8 PEM sealed in the state-file format
/// (docs/state-file.md: AES-256-XTS + HMAC-SHA-256, keys by HKDF-SHA-256
/// of the master key and a random salt).
pub const SEALED_KEY_FILE: &str = "ca-key.sealed";
/// The CA certificate's file in the CA directory.
pub const CERT_FILE: &str = "ca.pem";

/// The CA's key algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CaAlg {
    /// ECDSA on NIST P-384 with SHA-384.
    EcdsaP384,
    /// RSA 3072 PKCS#1 v1.5 with SHA-256.
    Rsa3072,
}

/// A CA signing key.
pub enum CaKey {
    P384(p384::ecdsa::SigningKey),
    Rsa(Box<rsa::pkcs1v15::SigningKey<sha2::Sha256>>),
}

/// A loaded CA: its key and certificate.
pub struct Ca {
    pub key: CaKey,
    pub cert: Certificate,
}

/// A certificate profile with fixed issuer, subject and extensions.
pub struct FixedProfile {
    pub issuer: Option<Name>,
    pub subject: Name,
    pub extensions: Vec<Extension>,
}

impl Profile for FixedProfile {
    fn get_issuer(&self, subject: &Name) -> Name {
        self.issuer.clone().unwrap_or_else(|| subject.clone())
    }
    fn get_subject(&self) -> Name {
        self.subject.clone()
    }
    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

/// An extension from a DER-encodable value.
pub fn extension<T: Encode>(
    oid: spki::ObjectIdentifier,
    critical: bool,
    value: &T,
) -> Result<Extension> {
    Ok((oid, critical, value).to_extension(&Name::default(), &[])?)
}

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    sha1::Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}

/// A random positive 16-byte serial number.
pub fn random_serial() -> Result<SerialNumber> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("the OS RNG failed: {e}"))?;
    if let Some(first) = b.first_mut() {
        *first = (*first & 0x7F) | 0x01;
    }
    Ok(SerialNumber::new(&b)?)
}

fn build<S, Sig>(builder: CertificateBuilder<FixedProfile>, signer: &S) -> Result<Certificate>
where
    S: Signer<Sig> + Keypair + DynSignatureAlgorithmIdentifier,
    S::VerifyingKey: EncodePublicKey,
    Sig: spki::SignatureBitStringEncoding,
{
    builder
        .build::<S, Sig>(signer)
        .context("signing the certificate")
}

impl CaKey {
    fn generate(alg: CaAlg) -> Result<CaKey> {
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        Ok(match alg {
            CaAlg::EcdsaP384 => loop {
                let mut d = zeroize::Zeroizing::new([0u8; 48]);
                getrandom::fill(d.as_mut_slice())
                    .map_err(|e| anyhow::anyhow!("the OS RNG failed: {e}"))?;
                if let Ok(k) = p384::ecdsa::SigningKey::from_slice(d.as_slice()) {
                    break CaKey::P384(k);
                }
            },
            CaAlg::Rsa3072 => {
                let k = rsa::RsaPrivateKey::new(&mut rng, 3072).context("generating RSA-3072")?;
                CaKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(k)))
            }
        })
    }

    /// The key as PKCS#8 PEM.
    fn to_pem(&self) -> Result<zeroize::Zeroizing<String>> {
        use p384::pkcs8::EncodePrivateKey;
        Ok(match self {
            CaKey::P384(k) => k.to_pkcs8_pem(LineEnding::LF)?,
            CaKey::Rsa(k) => k.as_ref().as_ref().to_pkcs8_pem(LineEnding::LF)?,
        })
    }

    fn from_pem(pem: &str) -> Result<CaKey> {
        use p384::pkcs8::DecodePrivateKey;
        if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(CaKey::P384(k));
        }
        let k = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
            .context("not a PKCS#8 P-384 or RSA private key")?;
        Ok(CaKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(k))))
    }

    /// The public key as a SubjectPublicKeyInfo.
    pub fn spki(&self) -> Result<SubjectPublicKeyInfoOwned> {
        Ok(match self {
            CaKey::P384(k) => SubjectPublicKeyInfoOwned::from_key(k.verifying_key())?,
            CaKey::Rsa(k) => SubjectPublicKeyInfoOwned::from_key(&k.verifying_key())?,
        })
    }

    /// Signs the certificate `builder` describes.
    pub fn sign(&self, builder: CertificateBuilder<FixedProfile>) -> Result<Certificate> {
        match self {
            CaKey::P384(k) => build::<_, p384::ecdsa::DerSignature>(builder, k),
            CaKey::Rsa(k) => build::<_, rsa::pkcs1v15::Signature>(builder, k.as_ref()),
        }
    }
}

/// Writes `data` to a new file `path` with `mode` (refusing an existing one).
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// `vtpm ca init`.
pub fn init(
    dir: &Path,
    alg: CaAlg,
    subject: &str,
    days: u32,
    seal_key: Option<vtpm_store::MasterKey>,
) -> Result<String> {
    let subject_name =
        Name::from_str(subject).with_context(|| format!("--subject {subject}: not a DN"))?;
    let key_path = dir.join(if seal_key.is_some() {
        SEALED_KEY_FILE
    } else {
        KEY_FILE
    });
    let cert_path = dir.join(CERT_FILE);
    for p in [&dir.join(KEY_FILE), &dir.join(SEALED_KEY_FILE), &cert_path] {
        if std::fs::symlink_metadata(p).is_ok() {
            bail!("{} already exists: not replacing a CA", p.display());
        }
    }
    let key = CaKey::generate(alg)?;
    let spki = key.spki()?;
    let ski = key_identifier(&spki);
    let extensions = vec![
        extension(
            const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: true,
                path_len_constraint: None,
            },
        )?,
        extension(
            const_oid::db::rfc5280::ID_CE_KEY_USAGE,
            true,
            &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
        )?,
        extension(
            const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
            false,
            &SubjectKeyIdentifier(OctetString::new(ski)?),
        )?,
    ];
    let profile = FixedProfile {
        issuer: None,
        subject: subject_name,
        extensions,
    };
    let validity = Validity::from_now(Duration::from_secs(u64::from(days) * 86_400))?;
    let builder = CertificateBuilder::new(profile, random_serial()?, validity, spki)?;
    let cert = key.sign(builder)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_pem = zeroize::Zeroizing::new(key.to_pem()?);
    let how = match &seal_key {
        None => {
            write_new(&key_path, key_pem.as_bytes(), 0o600)?;
            "not encrypted".to_string()
        }
        Some(k) => {
            let mut salt = [0u8; vtpm_store::format::SALT_LEN];
            getrandom::fill(&mut salt)
                .map_err(|e| anyhow::anyhow!("the OS refused entropy: {e}"))?;
            let sealed = vtpm_store::seal(key_pem.as_bytes(), k, &salt)?;
            write_new(&key_path, &sealed, 0o600)?;
            format!("encrypted with key id {}", k.key_id())
        }
    };
    let cert_pem = cert.to_pem(LineEnding::LF)?;
    if let Err(e) = write_new(&cert_path, cert_pem.as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&key_path);
        return Err(e);
    }
    Ok(format!(
        "created a CA in {}: {} (key, mode 0600, {how}) and {} ({subject})",
        dir.display(),
        key_path.display(),
        cert_path.display()
    ))
}

/// Loads the CA of `dir`; `seal_key` opens an encrypted CA key
/// (ca-key.sealed). An unencrypted ca-key.pem needs no key.
pub fn load(dir: &Path, seal_key: Option<&vtpm_store::MasterKey>) -> Result<Ca> {
    if !dir.is_dir() {
        bail!(
            "CA directory {} does not exist (create it with `vtpm ca init --dir {}`)",
            dir.display(),
            dir.display()
        );
    }
    let sealed_path: PathBuf = dir.join(SEALED_KEY_FILE);
    let (key_path, pem) = if sealed_path.exists() {
        let Some(k) = seal_key else {
            bail!(
                "the CA key {} is encrypted: give its key with --ca-key-file or --ca-key-fd",
                sealed_path.display()
            );
        };
        let bytes = std::fs::read(&sealed_path)
            .with_context(|| format!("reading the CA key {}", sealed_path.display()))?;
        let image = vtpm_store::unseal(&bytes, k).map_err(|e| {
            anyhow::anyhow!("the CA key {} cannot be opened: {e}", sealed_path.display())
        })?;
        let pem = String::from_utf8(image.to_vec())
            .map(zeroize::Zeroizing::new)
            .map_err(|_| anyhow::anyhow!("{}: not a PEM key", sealed_path.display()))?;
        (sealed_path, pem)
    } else {
        let key_path = dir.join(KEY_FILE);
        let pem = zeroize::Zeroizing::new(
            std::fs::read_to_string(&key_path)
                .with_context(|| format!("reading the CA key {}", key_path.display()))?,
        );
        (key_path, pem)
    };
    let cert_path: PathBuf = dir.join(CERT_FILE);
    let key = CaKey::from_pem(&pem).with_context(|| format!("{}", key_path.display()))?;
    let cert_pem = std::fs::read(&cert_path)
        .with_context(|| format!("reading the CA certificate {}", cert_path.display()))?;
    let cert = Certificate::from_pem(&cert_pem)
        .or_else(|_| Certificate::from_der(&cert_pem))
        .with_context(|| format!("{}: not a certificate", cert_path.display()))?;
    if cert.tbs_certificate().subject_public_key_info().to_der()? != key.spki()?.to_der()? {
        bail!(
            "{} does not belong to the key {}",
            cert_path.display(),
            key_path.display()
        );
    }
    Ok(Ca { key, cert })
}
