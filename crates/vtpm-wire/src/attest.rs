//! Part 2 §10.12: TPMS_ATTEST, the structure every attestation command
//! signs, and the members of its TPMU_ATTEST union.

use crate::codec::{Marshal, Reader, Unmarshal, WireError, Writer};
use crate::constants::{AlgId, StructureTag, TPM_GENERATED_VALUE};
use crate::tpm_struct;
use crate::types::{ClockInfo, Data, Digest, MaxNvBuffer, Name, PcrSelectionList, TimeInfo};

tpm_struct! {
    /// TPMS_CERTIFY_INFO.
    pub struct CertifyInfo {
        /// name: Name of the certified object.
        pub name: Name,
        /// qualifiedName: Qualified Name of the certified object.
        pub qualified_name: Name,
    }
}

tpm_struct! {
    /// TPMS_QUOTE_INFO.
    pub struct QuoteInfo {
        /// pcrSelect: the PCRs quoted.
        pub pcr_select: PcrSelectionList,
        /// pcrDigest: digest of the selected PCRs (the signing hash).
        pub pcr_digest: Digest,
    }
}

tpm_struct! {
    /// TPMS_COMMAND_AUDIT_INFO.
    pub struct CommandAuditInfo {
        /// auditCounter.
        pub audit_counter: u64,
        /// digestAlg.
        pub digest_alg: AlgId,
        /// auditDigest.
        pub audit_digest: Digest,
        /// commandDigest: digest of the audited command codes.
        pub command_digest: Digest,
    }
}

tpm_struct! {
    /// TPMS_SESSION_AUDIT_INFO.
    pub struct SessionAuditInfo {
        /// exclusiveSession (TPMI_YES_NO).
        pub exclusive_session: u8,
        /// sessionDigest.
        pub session_digest: Digest,
    }
}

tpm_struct! {
    /// TPMS_CREATION_INFO.
    pub struct CreationInfo {
        /// objectName.
        pub object_name: Name,
        /// creationHash.
        pub creation_hash: Digest,
    }
}

tpm_struct! {
    /// TPMS_NV_CERTIFY_INFO.
    pub struct NvCertifyInfo {
        /// indexName.
        pub index_name: Name,
        /// offset.
        pub offset: u16,
        /// nvContents.
        pub nv_contents: MaxNvBuffer,
    }
}

tpm_struct! {
    /// TPMS_NV_DIGEST_CERTIFY_INFO.
    pub struct NvDigestCertifyInfo {
        /// indexName.
        pub index_name: Name,
        /// nvDigest.
        pub nv_digest: Digest,
    }
}

tpm_struct! {
    /// TPMS_TIME_ATTEST_INFO.
    pub struct TimeAttestInfo {
        /// time.
        pub time: TimeInfo,
        /// firmwareVersion (not obfuscated).
        pub firmware_version: u64,
    }
}

/// TPMU_ATTEST, selected by TPMS_ATTEST.type (TPMI_ST_ATTEST).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attested {
    /// TPM_ST_ATTEST_CERTIFY.
    Certify(CertifyInfo),
    /// TPM_ST_ATTEST_CREATION.
    Creation(CreationInfo),
    /// TPM_ST_ATTEST_QUOTE.
    Quote(QuoteInfo),
    /// TPM_ST_ATTEST_COMMAND_AUDIT.
    CommandAudit(CommandAuditInfo),
    /// TPM_ST_ATTEST_SESSION_AUDIT.
    SessionAudit(SessionAuditInfo),
    /// TPM_ST_ATTEST_TIME.
    Time(TimeAttestInfo),
    /// TPM_ST_ATTEST_NV.
    Nv(NvCertifyInfo),
    /// TPM_ST_ATTEST_NV_DIGEST.
    NvDigest(NvDigestCertifyInfo),
}

impl Attested {
    /// The TPMI_ST_ATTEST tag that selects this member.
    pub fn tag(&self) -> StructureTag {
        match self {
            Attested::Certify(_) => StructureTag::ATTEST_CERTIFY,
            Attested::Creation(_) => StructureTag::ATTEST_CREATION,
            Attested::Quote(_) => StructureTag::ATTEST_QUOTE,
            Attested::CommandAudit(_) => StructureTag::ATTEST_COMMAND_AUDIT,
            Attested::SessionAudit(_) => StructureTag::ATTEST_SESSION_AUDIT,
            Attested::Time(_) => StructureTag::ATTEST_TIME,
            Attested::Nv(_) => StructureTag::ATTEST_NV,
            Attested::NvDigest(_) => StructureTag::ATTEST_NV_DIGEST,
        }
    }

    fn marshal_body(&self, w: &mut Writer) {
        match self {
            Attested::Certify(v) => v.marshal(w),
            Attested::Creation(v) => v.marshal(w),
            Attested::Quote(v) => v.marshal(w),
            Attested::CommandAudit(v) => v.marshal(w),
            Attested::SessionAudit(v) => v.marshal(w),
            Attested::Time(v) => v.marshal(w),
            Attested::Nv(v) => v.marshal(w),
            Attested::NvDigest(v) => v.marshal(w),
        }
    }

    fn read_body(tag: StructureTag, r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(match tag {
            StructureTag::ATTEST_CERTIFY => Attested::Certify(r.read()?),
            StructureTag::ATTEST_CREATION => Attested::Creation(r.read()?),
            StructureTag::ATTEST_QUOTE => Attested::Quote(r.read()?),
            StructureTag::ATTEST_COMMAND_AUDIT => Attested::CommandAudit(r.read()?),
            StructureTag::ATTEST_SESSION_AUDIT => Attested::SessionAudit(r.read()?),
            StructureTag::ATTEST_TIME => Attested::Time(r.read()?),
            StructureTag::ATTEST_NV => Attested::Nv(r.read()?),
            StructureTag::ATTEST_NV_DIGEST => Attested::NvDigest(r.read()?),
            _ => return Err(WireError::Selector),
        })
    }
}

/// TPMS_ATTEST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attest {
    /// qualifiedSigner: Qualified Name of the signing key.
    pub qualified_signer: Name,
    /// extraData: the caller's qualifyingData.
    pub extra_data: Data,
    /// clockInfo (resetCount and restartCount possibly obfuscated).
    pub clock_info: ClockInfo,
    /// firmwareVersion (possibly obfuscated).
    pub firmware_version: u64,
    /// attested; its tag is TPMS_ATTEST.type.
    pub attested: Attested,
}

impl Marshal for Attest {
    fn marshal(&self, w: &mut Writer) {
        w.u32(TPM_GENERATED_VALUE);
        w.write(&self.attested.tag());
        w.write(&self.qualified_signer);
        w.write(&self.extra_data);
        w.write(&self.clock_info);
        w.u64(self.firmware_version);
        self.attested.marshal_body(w);
    }
}

impl Unmarshal for Attest {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        if r.u32()? != TPM_GENERATED_VALUE {
            return Err(WireError::Value);
        }
        let tag = StructureTag(r.u16()?);
        let qualified_signer = r.read()?;
        let extra_data = r.read()?;
        let clock_info = r.read()?;
        let firmware_version = r.u64()?;
        let attested = Attested::read_body(tag, r)?;
        Ok(Attest {
            qualified_signer,
            extra_data,
            clock_info,
            firmware_version,
            attested,
        })
    }
}

/// TPM2B_ATTEST: a TPMS_ATTEST in a TPM2B.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tpm2bAttest(pub Attest);

impl Marshal for Tpm2bAttest {
    fn marshal(&self, w: &mut Writer) {
        w.sized_u16(|w| w.write(&self.0));
    }
}

impl Unmarshal for Tpm2bAttest {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let len = usize::from(r.u16()?);
        let mut sub = r.sub(len)?;
        let a = Attest::unmarshal(&mut sub)?;
        sub.finish()?;
        Ok(Tpm2bAttest(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PcrSelection;

    #[test]
    fn quote_layout_follows_part2() {
        let a = Attest {
            qualified_signer: Name::new(&[0, 0x0b, 1, 2]).unwrap(),
            extra_data: Data::new(b"nonce").unwrap(),
            clock_info: ClockInfo {
                clock: 0x0102,
                reset_count: 3,
                restart_count: 4,
                safe: 1,
            },
            firmware_version: 0x0506,
            attested: Attested::Quote(QuoteInfo {
                pcr_select: PcrSelectionList(vec![PcrSelection::new(AlgId::SHA256, [0, 16])]),
                pcr_digest: Digest::new(&[0xaa; 2]).unwrap(),
            }),
        };
        let b = a.to_bytes();
        let expected: Vec<u8> = [
            &[0xff, 0x54, 0x43, 0x47, 0x80, 0x18][..],
            &[0, 4, 0, 0x0b, 1, 2],
            &[0, 5, b'n', b'o', b'n', b'c', b'e'],
            &[0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 3, 0, 0, 0, 4, 1],
            &[0, 0, 0, 0, 0, 0, 5, 6],
            &[0, 0, 0, 1, 0, 0x0b, 3, 1, 0, 1],
            &[0, 2, 0xaa, 0xaa],
        ]
        .concat();
        assert_eq!(b, expected);
        assert_eq!(Attest::from_bytes(&b).unwrap(), a);
        let t = Tpm2bAttest(a).to_bytes();
        assert_eq!(&t[..2], &(expected.len() as u16).to_be_bytes());
        let mut bad = expected.clone();
        bad[0] = 0;
        assert_eq!(Attest::from_bytes(&bad), Err(WireError::Value));
        let mut bad = expected;
        bad[5] = 0x13;
        assert_eq!(Attest::from_bytes(&bad), Err(WireError::Selector));
    }
}
