//! Constants of Part 2 as open enums: newtypes over the wire integer that
//! keep any value, with named constants for the ones the spec defines.

use crate::codec::{Marshal, Reader, Unmarshal, WireError, Writer};
use std::fmt;

macro_rules! open_enum {
    (
        $(#[$m:meta])*
        pub struct $name:ident($int:ident) prefix $prefix:literal {
            $( $(#[$vm:meta])* $variant:ident = $value:expr ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $int);

        #[allow(non_upper_case_globals)]
        impl $name {
            $( $(#[$vm])* pub const $variant: $name = $name($value); )*

            /// Every named value, in declaration order.
            pub const ALL: &'static [$name] = &[$( $name::$variant ),*];

            /// The spec's name of this value, if it is a named one.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(concat!($prefix, stringify!($variant))), )*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}(0x{:x})", stringify!($name), self.0),
                }
            }
        }

        impl Marshal for $name {
            fn marshal(&self, w: &mut Writer) { w.$int(self.0) }
        }

        impl Unmarshal for $name {
            fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> { Ok($name(r.$int()?)) }
        }
    };
}

open_enum! {
    /// TPM_ST: structure tags.
    pub struct StructureTag(u16) prefix "TPM_ST_" {
        RSP_COMMAND = 0x00C4,
        NULL = 0x8000,
        NO_SESSIONS = 0x8001,
        SESSIONS = 0x8002,
        ATTEST_NV = 0x8014,
        ATTEST_COMMAND_AUDIT = 0x8015,
        ATTEST_SESSION_AUDIT = 0x8016,
        ATTEST_CERTIFY = 0x8017,
        ATTEST_QUOTE = 0x8018,
        ATTEST_TIME = 0x8019,
        ATTEST_CREATION = 0x801A,
        ATTEST_NV_DIGEST = 0x801C,
        CREATION = 0x8021,
        VERIFIED = 0x8022,
        AUTH_SECRET = 0x8023,
        HASHCHECK = 0x8024,
        AUTH_SIGNED = 0x8025,
        FU_MANIFEST = 0x8029,
    }
}

open_enum! {
    /// TPM_SU: startup and shutdown types.
    pub struct StartupType(u16) prefix "TPM_SU_" {
        CLEAR = 0x0000,
        STATE = 0x0001,
    }
}

open_enum! {
    /// TPM_ALG_ID: algorithm identifiers.
    pub struct AlgId(u16) prefix "TPM_ALG_" {
        ERROR = 0x0000,
        RSA = 0x0001,
        TDES = 0x0003,
        SHA1 = 0x0004,
        HMAC = 0x0005,
        AES = 0x0006,
        MGF1 = 0x0007,
        KEYEDHASH = 0x0008,
        XOR = 0x000A,
        SHA256 = 0x000B,
        SHA384 = 0x000C,
        SHA512 = 0x000D,
        NULL = 0x0010,
        SM3_256 = 0x0012,
        SM4 = 0x0013,
        RSASSA = 0x0014,
        RSAES = 0x0015,
        RSAPSS = 0x0016,
        OAEP = 0x0017,
        ECDSA = 0x0018,
        ECDH = 0x0019,
        ECDAA = 0x001A,
        SM2 = 0x001B,
        ECSCHNORR = 0x001C,
        ECMQV = 0x001D,
        KDF1_SP800_56A = 0x0020,
        KDF2 = 0x0021,
        KDF1_SP800_108 = 0x0022,
        ECC = 0x0023,
        SYMCIPHER = 0x0025,
        CAMELLIA = 0x0026,
        SHA3_256 = 0x0027,
        SHA3_384 = 0x0028,
        SHA3_512 = 0x0029,
        CMAC = 0x003F,
        CTR = 0x0040,
        OFB = 0x0041,
        CBC = 0x0042,
        CFB = 0x0043,
        ECB = 0x0044,
    }
}

open_enum! {
    /// TPM_ECC_CURVE: elliptic curve identifiers.
    pub struct EccCurve(u16) prefix "TPM_ECC_" {
        NONE = 0x0000,
        NIST_P192 = 0x0001,
        NIST_P224 = 0x0002,
        NIST_P256 = 0x0003,
        NIST_P384 = 0x0004,
        NIST_P521 = 0x0005,
        BN_P256 = 0x0010,
        BN_P638 = 0x0011,
        SM2_P256 = 0x0020,
    }
}

open_enum! {
    /// TPM_CC: command codes.
    pub struct CommandCode(u32) prefix "TPM_CC_" {
        NV_UndefineSpaceSpecial = 0x0000_011F,
        EvictControl = 0x0000_0120,
        HierarchyControl = 0x0000_0121,
        NV_UndefineSpace = 0x0000_0122,
        ChangeEPS = 0x0000_0124,
        ChangePPS = 0x0000_0125,
        Clear = 0x0000_0126,
        ClearControl = 0x0000_0127,
        ClockSet = 0x0000_0128,
        HierarchyChangeAuth = 0x0000_0129,
        NV_DefineSpace = 0x0000_012A,
        PCR_Allocate = 0x0000_012B,
        PCR_SetAuthPolicy = 0x0000_012C,
        PP_Commands = 0x0000_012D,
        SetPrimaryPolicy = 0x0000_012E,
        FieldUpgradeStart = 0x0000_012F,
        ClockRateAdjust = 0x0000_0130,
        CreatePrimary = 0x0000_0131,
        NV_GlobalWriteLock = 0x0000_0132,
        GetCommandAuditDigest = 0x0000_0133,
        NV_Increment = 0x0000_0134,
        NV_SetBits = 0x0000_0135,
        NV_Extend = 0x0000_0136,
        NV_Write = 0x0000_0137,
        NV_WriteLock = 0x0000_0138,
        DictionaryAttackLockReset = 0x0000_0139,
        DictionaryAttackParameters = 0x0000_013A,
        NV_ChangeAuth = 0x0000_013B,
        PCR_Event = 0x0000_013C,
        PCR_Reset = 0x0000_013D,
        SequenceComplete = 0x0000_013E,
        SetAlgorithmSet = 0x0000_013F,
        SetCommandCodeAuditStatus = 0x0000_0140,
        FieldUpgradeData = 0x0000_0141,
        IncrementalSelfTest = 0x0000_0142,
        SelfTest = 0x0000_0143,
        Startup = 0x0000_0144,
        Shutdown = 0x0000_0145,
        StirRandom = 0x0000_0146,
        ActivateCredential = 0x0000_0147,
        Certify = 0x0000_0148,
        PolicyNV = 0x0000_0149,
        CertifyCreation = 0x0000_014A,
        Duplicate = 0x0000_014B,
        GetTime = 0x0000_014C,
        GetSessionAuditDigest = 0x0000_014D,
        NV_Read = 0x0000_014E,
        NV_ReadLock = 0x0000_014F,
        ObjectChangeAuth = 0x0000_0150,
        PolicySecret = 0x0000_0151,
        Rewrap = 0x0000_0152,
        Create = 0x0000_0153,
        ECDH_ZGen = 0x0000_0154,
        HMAC = 0x0000_0155,
        Import = 0x0000_0156,
        Load = 0x0000_0157,
        Quote = 0x0000_0158,
        RSA_Decrypt = 0x0000_0159,
        HMAC_Start = 0x0000_015B,
        SequenceUpdate = 0x0000_015C,
        Sign = 0x0000_015D,
        Unseal = 0x0000_015E,
        PolicySigned = 0x0000_0160,
        ContextLoad = 0x0000_0161,
        ContextSave = 0x0000_0162,
        ECDH_KeyGen = 0x0000_0163,
        EncryptDecrypt = 0x0000_0164,
        FlushContext = 0x0000_0165,
        LoadExternal = 0x0000_0167,
        MakeCredential = 0x0000_0168,
        NV_ReadPublic = 0x0000_0169,
        PolicyAuthorize = 0x0000_016A,
        PolicyAuthValue = 0x0000_016B,
        PolicyCommandCode = 0x0000_016C,
        PolicyCounterTimer = 0x0000_016D,
        PolicyCpHash = 0x0000_016E,
        PolicyLocality = 0x0000_016F,
        PolicyNameHash = 0x0000_0170,
        PolicyOR = 0x0000_0171,
        PolicyTicket = 0x0000_0172,
        ReadPublic = 0x0000_0173,
        RSA_Encrypt = 0x0000_0174,
        StartAuthSession = 0x0000_0176,
        VerifySignature = 0x0000_0177,
        ECC_Parameters = 0x0000_0178,
        FirmwareRead = 0x0000_0179,
        GetCapability = 0x0000_017A,
        GetRandom = 0x0000_017B,
        GetTestResult = 0x0000_017C,
        Hash = 0x0000_017D,
        PCR_Read = 0x0000_017E,
        PolicyPCR = 0x0000_017F,
        PolicyRestart = 0x0000_0180,
        ReadClock = 0x0000_0181,
        PCR_Extend = 0x0000_0182,
        PCR_SetAuthValue = 0x0000_0183,
        NV_Certify = 0x0000_0184,
        EventSequenceComplete = 0x0000_0185,
        HashSequenceStart = 0x0000_0186,
        PolicyPhysicalPresence = 0x0000_0187,
        PolicyDuplicationSelect = 0x0000_0188,
        PolicyGetDigest = 0x0000_0189,
        TestParms = 0x0000_018A,
        Commit = 0x0000_018B,
        PolicyPassword = 0x0000_018C,
        ZGen_2Phase = 0x0000_018D,
        EC_Ephemeral = 0x0000_018E,
        PolicyNvWritten = 0x0000_018F,
        PolicyTemplate = 0x0000_0190,
        CreateLoaded = 0x0000_0191,
        PolicyAuthorizeNV = 0x0000_0192,
        EncryptDecrypt2 = 0x0000_0193,
        AC_GetCapability = 0x0000_0194,
        AC_Send = 0x0000_0195,
        Policy_AC_SendSelect = 0x0000_0196,
        CertifyX509 = 0x0000_0197,
        ACT_SetTimeout = 0x0000_0198,
        ECC_Encrypt = 0x0000_0199,
        ECC_Decrypt = 0x0000_019A,
        PolicyCapability = 0x0000_019B,
        PolicyParameters = 0x0000_019C,
        NV_DefineSpace2 = 0x0000_019D,
        NV_ReadPublic2 = 0x0000_019E,
        SetCapability = 0x0000_019F,
    }
}

open_enum! {
    /// TPM_CAP: capability selectors.
    pub struct Capability(u32) prefix "TPM_CAP_" {
        ALGS = 0x0000_0000,
        HANDLES = 0x0000_0001,
        COMMANDS = 0x0000_0002,
        PP_COMMANDS = 0x0000_0003,
        AUDIT_COMMANDS = 0x0000_0004,
        PCRS = 0x0000_0005,
        TPM_PROPERTIES = 0x0000_0006,
        PCR_PROPERTIES = 0x0000_0007,
        ECC_CURVES = 0x0000_0008,
        AUTH_POLICIES = 0x0000_0009,
        ACT = 0x0000_000A,
        VENDOR_PROPERTY = 0x0000_0100,
    }
}

open_enum! {
    /// TPM_PT: TPM property tags.
    pub struct PropertyTag(u32) prefix "TPM_PT_" {
        FAMILY_INDICATOR = 0x100,
        LEVEL = 0x101,
        REVISION = 0x102,
        DAY_OF_YEAR = 0x103,
        YEAR = 0x104,
        MANUFACTURER = 0x105,
        VENDOR_STRING_1 = 0x106,
        VENDOR_STRING_2 = 0x107,
        VENDOR_STRING_3 = 0x108,
        VENDOR_STRING_4 = 0x109,
        VENDOR_TPM_TYPE = 0x10A,
        FIRMWARE_VERSION_1 = 0x10B,
        FIRMWARE_VERSION_2 = 0x10C,
        INPUT_BUFFER = 0x10D,
        HR_TRANSIENT_MIN = 0x10E,
        HR_PERSISTENT_MIN = 0x10F,
        HR_LOADED_MIN = 0x110,
        ACTIVE_SESSIONS_MAX = 0x111,
        PCR_COUNT = 0x112,
        PCR_SELECT_MIN = 0x113,
        CONTEXT_GAP_MAX = 0x114,
        NV_COUNTERS_MAX = 0x116,
        NV_INDEX_MAX = 0x117,
        MEMORY = 0x118,
        CLOCK_UPDATE = 0x119,
        CONTEXT_HASH = 0x11A,
        CONTEXT_SYM = 0x11B,
        CONTEXT_SYM_SIZE = 0x11C,
        ORDERLY_COUNT = 0x11D,
        MAX_COMMAND_SIZE = 0x11E,
        MAX_RESPONSE_SIZE = 0x11F,
        MAX_DIGEST = 0x120,
        MAX_OBJECT_CONTEXT = 0x121,
        MAX_SESSION_CONTEXT = 0x122,
        PS_FAMILY_INDICATOR = 0x123,
        PS_LEVEL = 0x124,
        PS_REVISION = 0x125,
        PS_DAY_OF_YEAR = 0x126,
        PS_YEAR = 0x127,
        SPLIT_MAX = 0x128,
        TOTAL_COMMANDS = 0x129,
        LIBRARY_COMMANDS = 0x12A,
        VENDOR_COMMANDS = 0x12B,
        NV_BUFFER_MAX = 0x12C,
        MODES = 0x12D,
        MAX_CAP_BUFFER = 0x12E,
        PERMANENT = 0x200,
        STARTUP_CLEAR = 0x201,
        HR_NV_INDEX = 0x202,
        HR_LOADED = 0x203,
        HR_LOADED_AVAIL = 0x204,
        HR_ACTIVE = 0x205,
        HR_ACTIVE_AVAIL = 0x206,
        HR_TRANSIENT_AVAIL = 0x207,
        HR_PERSISTENT = 0x208,
        HR_PERSISTENT_AVAIL = 0x209,
        NV_COUNTERS = 0x20A,
        NV_COUNTERS_AVAIL = 0x20B,
        ALGORITHM_SET = 0x20C,
        LOADED_CURVES = 0x20D,
        LOCKOUT_COUNTER = 0x20E,
        MAX_AUTH_FAIL = 0x20F,
        LOCKOUT_INTERVAL = 0x210,
        LOCKOUT_RECOVERY = 0x211,
        NV_WRITE_RECOVERY = 0x212,
        AUDIT_COUNTER_0 = 0x213,
        AUDIT_COUNTER_1 = 0x214,
    }
}

open_enum! {
    /// TPM_PT_PCR: PCR property tags.
    pub struct PcrPropertyTag(u32) prefix "TPM_PT_PCR_" {
        SAVE = 0x00,
        EXTEND_L0 = 0x01,
        RESET_L0 = 0x02,
        EXTEND_L1 = 0x03,
        RESET_L1 = 0x04,
        EXTEND_L2 = 0x05,
        RESET_L2 = 0x06,
        EXTEND_L3 = 0x07,
        RESET_L3 = 0x08,
        EXTEND_L4 = 0x09,
        RESET_L4 = 0x0A,
        NO_INCREMENT = 0x11,
        DRTM_RESET = 0x12,
        POLICY = 0x13,
        AUTH = 0x14,
    }
}

/// TPM_HANDLE values and handle-type helpers (Part 2, §7).
pub mod handle {
    /// TPM_HT_PCR.
    pub const HT_PCR: u8 = 0x00;
    /// TPM_HT_NV_INDEX.
    pub const HT_NV_INDEX: u8 = 0x01;
    /// TPM_HT_HMAC_SESSION (also TPM_HT_LOADED_SESSION).
    pub const HT_HMAC_SESSION: u8 = 0x02;
    /// TPM_HT_POLICY_SESSION (also TPM_HT_SAVED_SESSION).
    pub const HT_POLICY_SESSION: u8 = 0x03;
    /// TPM_HT_PERMANENT.
    pub const HT_PERMANENT: u8 = 0x40;
    /// TPM_HT_TRANSIENT.
    pub const HT_TRANSIENT: u8 = 0x80;
    /// TPM_HT_PERSISTENT.
    pub const HT_PERSISTENT: u8 = 0x81;

    /// TPM_RH_OWNER.
    pub const RH_OWNER: u32 = 0x4000_0001;
    /// TPM_RH_NULL.
    pub const RH_NULL: u32 = 0x4000_0007;
    /// TPM_RH_UNASSIGNED.
    pub const RH_UNASSIGNED: u32 = 0x4000_0008;
    /// TPM_RS_PW: the password session.
    pub const RS_PW: u32 = 0x4000_0009;
    /// TPM_RH_LOCKOUT.
    pub const RH_LOCKOUT: u32 = 0x4000_000A;
    /// TPM_RH_ENDORSEMENT.
    pub const RH_ENDORSEMENT: u32 = 0x4000_000B;
    /// TPM_RH_PLATFORM.
    pub const RH_PLATFORM: u32 = 0x4000_000C;
    /// TPM_RH_PLATFORM_NV.
    pub const RH_PLATFORM_NV: u32 = 0x4000_000D;

    /// First transient handle this TPM hands out.
    pub const TRANSIENT_FIRST: u32 = 0x8000_0000;

    /// The handle type (most significant octet).
    pub fn handle_type(h: u32) -> u8 {
        h.to_be_bytes()[0]
    }
}

/// TPM_GENERATED_VALUE: the magic that starts every TPM-generated structure
/// ("\xffTCG").
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;

/// TPMI_YES_NO values.
pub const YES: u8 = 1;
/// TPMI_YES_NO values.
pub const NO: u8 = 0;

/// TPM_SPEC_FAMILY: "2.0".
pub const SPEC_FAMILY: u32 = 0x322E_3000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_enums_keep_unknown_values() {
        let cc = CommandCode::from_bytes(&[0, 0, 0x01, 0x7B]).unwrap();
        assert_eq!(cc, CommandCode::GetRandom);
        assert_eq!(cc.name(), Some("TPM_CC_GetRandom"));
        let unknown = CommandCode::from_bytes(&[0x20, 0, 0, 1]).unwrap();
        assert_eq!(unknown.0, 0x2000_0001);
        assert_eq!(unknown.name(), None);
        assert_eq!(unknown.to_bytes(), vec![0x20, 0, 0, 1]);
        assert_eq!(format!("{:?}", AlgId(0x7777)), "AlgId(0x7777)");
        assert_eq!(format!("{:?}", AlgId::SHA256), "TPM_ALG_SHA256");
    }

    #[test]
    fn named_values_are_unique() {
        {
            let list: Vec<u32> = CommandCode::ALL.iter().map(|c| c.0).collect();
            let mut sorted = list.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), list.len());
        }
        let mut algs: Vec<u16> = AlgId::ALL.iter().map(|a| a.0).collect();
        algs.dedup();
        assert_eq!(algs.len(), AlgId::ALL.len());
    }

    #[test]
    fn handle_types() {
        assert_eq!(handle::handle_type(handle::RH_OWNER), handle::HT_PERMANENT);
        assert_eq!(handle::handle_type(0x8000_0001), handle::HT_TRANSIENT);
        assert_eq!(handle::handle_type(0x0100_0000), handle::HT_NV_INDEX);
    }
}
