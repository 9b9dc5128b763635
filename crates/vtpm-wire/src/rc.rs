//! TPM_RC response codes (Part 2, §6.6).
//!
//! Format-zero codes (`TPM_RC_VER1 + n`, warnings `TPM_RC_WARN + n`) carry no
//! position. Format-one codes (`TPM_RC_FMT1 + n`) may name the handle,
//! parameter or session that caused them: bit 6 (`TPM_RC_P`) marks a
//! parameter, bit 11 (`TPM_RC_S`) a session, and bits 8..=11 hold the number.

use std::fmt;

/// A TPM 2.0 response code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TpmRc(pub u32);

macro_rules! rc_codes {
    ($( $(#[$m:meta])* $name:ident = $value:expr ),* $(,)?) => {
        impl TpmRc {
            $( $(#[$m])* pub const $name: TpmRc = TpmRc($value); )*

            /// The spec's name of a code without its position, if it is one
            /// this crate knows.
            pub fn name(self) -> Option<&'static str> {
                const NAMES: &[(u32, &str)] = &[$( ($value, concat!("TPM_RC_", stringify!($name))) ),*];
                let base = self.base().0;
                NAMES.iter().find(|(v, _)| *v == base).map(|(_, n)| *n)
            }
        }
    };
}

const RC_VER1: u32 = 0x100;
const RC_FMT1: u32 = 0x080;
const RC_WARN: u32 = 0x900;
const RC_P: u32 = 0x040;
const RC_S: u32 = 0x800;

rc_codes! {
    SUCCESS = 0x000,
    BAD_TAG = 0x01E,
    INITIALIZE = RC_VER1,
    FAILURE = RC_VER1 + 0x001,
    SEQUENCE = RC_VER1 + 0x003,
    PRIVATE = RC_VER1 + 0x00B,
    HMAC = RC_VER1 + 0x019,
    DISABLED = RC_VER1 + 0x020,
    EXCLUSIVE = RC_VER1 + 0x021,
    AUTH_TYPE = RC_VER1 + 0x024,
    AUTH_MISSING = RC_VER1 + 0x025,
    POLICY = RC_VER1 + 0x026,
    PCR = RC_VER1 + 0x027,
    PCR_CHANGED = RC_VER1 + 0x028,
    UPGRADE = RC_VER1 + 0x02D,
    TOO_MANY_CONTEXTS = RC_VER1 + 0x02E,
    AUTH_UNAVAILABLE = RC_VER1 + 0x02F,
    REBOOT = RC_VER1 + 0x030,
    UNBALANCED = RC_VER1 + 0x031,
    COMMAND_SIZE = RC_VER1 + 0x042,
    COMMAND_CODE = RC_VER1 + 0x043,
    AUTHSIZE = RC_VER1 + 0x044,
    AUTH_CONTEXT = RC_VER1 + 0x045,
    NV_RANGE = RC_VER1 + 0x046,
    NV_SIZE = RC_VER1 + 0x047,
    NV_LOCKED = RC_VER1 + 0x048,
    NV_AUTHORIZATION = RC_VER1 + 0x049,
    NV_UNINITIALIZED = RC_VER1 + 0x04A,
    NV_SPACE = RC_VER1 + 0x04B,
    NV_DEFINED = RC_VER1 + 0x04C,
    BAD_CONTEXT = RC_VER1 + 0x050,
    CPHASH = RC_VER1 + 0x051,
    PARENT = RC_VER1 + 0x052,
    NEEDS_TEST = RC_VER1 + 0x053,
    NO_RESULT = RC_VER1 + 0x054,
    SENSITIVE = RC_VER1 + 0x055,
    ASYMMETRIC = RC_FMT1 + 0x001,
    ATTRIBUTES = RC_FMT1 + 0x002,
    HASH = RC_FMT1 + 0x003,
    VALUE = RC_FMT1 + 0x004,
    HIERARCHY = RC_FMT1 + 0x005,
    KEY_SIZE = RC_FMT1 + 0x007,
    MGF = RC_FMT1 + 0x008,
    MODE = RC_FMT1 + 0x009,
    TYPE = RC_FMT1 + 0x00A,
    HANDLE = RC_FMT1 + 0x00B,
    KDF = RC_FMT1 + 0x00C,
    RANGE = RC_FMT1 + 0x00D,
    AUTH_FAIL = RC_FMT1 + 0x00E,
    NONCE = RC_FMT1 + 0x00F,
    PP = RC_FMT1 + 0x010,
    SCHEME = RC_FMT1 + 0x012,
    SIZE = RC_FMT1 + 0x015,
    SYMMETRIC = RC_FMT1 + 0x016,
    TAG = RC_FMT1 + 0x017,
    SELECTOR = RC_FMT1 + 0x018,
    INSUFFICIENT = RC_FMT1 + 0x01A,
    SIGNATURE = RC_FMT1 + 0x01B,
    KEY = RC_FMT1 + 0x01C,
    POLICY_FAIL = RC_FMT1 + 0x01D,
    INTEGRITY = RC_FMT1 + 0x01F,
    TICKET = RC_FMT1 + 0x020,
    RESERVED_BITS = RC_FMT1 + 0x021,
    BAD_AUTH = RC_FMT1 + 0x022,
    EXPIRED = RC_FMT1 + 0x023,
    POLICY_CC = RC_FMT1 + 0x024,
    BINDING = RC_FMT1 + 0x025,
    CURVE = RC_FMT1 + 0x026,
    ECC_POINT = RC_FMT1 + 0x027,
    CONTEXT_GAP = RC_WARN + 0x001,
    OBJECT_MEMORY = RC_WARN + 0x002,
    SESSION_MEMORY = RC_WARN + 0x003,
    MEMORY = RC_WARN + 0x004,
    SESSION_HANDLES = RC_WARN + 0x005,
    OBJECT_HANDLES = RC_WARN + 0x006,
    LOCALITY = RC_WARN + 0x007,
    YIELDED = RC_WARN + 0x008,
    CANCELED = RC_WARN + 0x009,
    TESTING = RC_WARN + 0x00A,
    REFERENCE_H0 = RC_WARN + 0x010,
    REFERENCE_H1 = RC_WARN + 0x011,
    REFERENCE_H2 = RC_WARN + 0x012,
    REFERENCE_S0 = RC_WARN + 0x018,
    REFERENCE_S1 = RC_WARN + 0x019,
    REFERENCE_S2 = RC_WARN + 0x01A,
    NV_RATE = RC_WARN + 0x020,
    LOCKOUT = RC_WARN + 0x021,
    RETRY = RC_WARN + 0x022,
    NV_UNAVAILABLE = RC_WARN + 0x023,
}

impl TpmRc {
    /// True for format-one codes (bit 7 set), the only ones that carry a
    /// position.
    pub fn is_format_one(self) -> bool {
        self.0 & RC_FMT1 != 0
    }

    /// The code without its handle/parameter/session position.
    pub fn base(self) -> TpmRc {
        if self.is_format_one() {
            TpmRc(self.0 & 0x0BF)
        } else {
            self
        }
    }

    fn with_position(self, bits: u32, n: u32) -> TpmRc {
        // Only a format-one code without a position yet can take one.
        if self.is_format_one() && self.0 & 0xF40 == 0 && (1..=15).contains(&n) {
            TpmRc(self.0 | bits | (n << 8))
        } else {
            self
        }
    }

    /// `rc + TPM_RC_P + TPM_RC_n`: the error was caused by parameter `n`
    /// (1-based, at most 15).
    pub fn with_parameter(self, n: usize) -> TpmRc {
        self.with_position(RC_P, u32::try_from(n).unwrap_or(0))
    }

    /// `rc + TPM_RC_H + TPM_RC_n`: the error was caused by handle `n`
    /// (1-based, at most 7).
    pub fn with_handle(self, n: usize) -> TpmRc {
        match u32::try_from(n) {
            Ok(n @ 1..=7) => self.with_position(0, n),
            _ => self,
        }
    }

    /// `rc + TPM_RC_S + TPM_RC_n`: the error was caused by session `n`
    /// (1-based, at most 7).
    pub fn with_session(self, n: usize) -> TpmRc {
        match u32::try_from(n) {
            Ok(n @ 1..=7) => self.with_position(RC_S, n),
            _ => self,
        }
    }

    /// For warnings that name a handle or session slot (`TPM_RC_REFERENCE_H0 + n`),
    /// the code for slot `n` (0-based).
    pub fn plus(self, n: usize) -> TpmRc {
        TpmRc(self.0.wrapping_add(u32::try_from(n).unwrap_or(0) & 0x7))
    }

    /// Position carried by a format-one code, if any.
    pub fn position(self) -> Option<Position> {
        if !self.is_format_one() {
            return None;
        }
        let n = ((self.0 >> 8) & 0xF) as u8;
        if self.0 & RC_P != 0 {
            Some(Position::Parameter(n))
        } else if n == 0 {
            None
        } else if n & 0x8 != 0 {
            Some(Position::Session(n & 0x7))
        } else {
            Some(Position::Handle(n))
        }
    }
}

/// Which part of a command a format-one response code points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// Handle number (1-based).
    Handle(u8),
    /// Parameter number (1-based).
    Parameter(u8),
    /// Session number (1-based).
    Session(u8),
}

impl fmt::Debug for TpmRc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TpmRc({self})")
    }
}

impl fmt::Display for TpmRc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}")?,
            None => write!(f, "TPM_RC 0x{:03x}", self.base().0)?,
        }
        match self.position() {
            Some(Position::Handle(n)) => write!(f, " (handle {n})")?,
            Some(Position::Parameter(n)) => write!(f, " (parameter {n})")?,
            Some(Position::Session(n)) => write!(f, " (session {n})")?,
            None => {}
        }
        write!(f, " [0x{:03x}]", self.0)
    }
}

impl std::error::Error for TpmRc {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_part2_encoding() {
        // Values a real TPM returns, as decoded by tpm2_rc_decode.
        assert_eq!(TpmRc::VALUE.with_parameter(1).0, 0x1C4);
        assert_eq!(TpmRc::HASH.with_parameter(2).0, 0x2C3);
        assert_eq!(TpmRc::VALUE.with_handle(1).0, 0x184);
        assert_eq!(TpmRc::AUTH_FAIL.with_session(1).0, 0x98E);
        assert_eq!(TpmRc::BAD_AUTH.with_session(1).0, 0x9A2);
        assert_eq!(TpmRc::REFERENCE_H0.plus(1), TpmRc::REFERENCE_H1);
        // Format-zero codes never take a position.
        assert_eq!(TpmRc::INITIALIZE.with_parameter(1), TpmRc::INITIALIZE);
        // A code keeps the first position it was given.
        assert_eq!(TpmRc::SIZE.with_parameter(1).with_parameter(2).0, 0x1D5);
        assert_eq!(TpmRc(0x1C4).base(), TpmRc::VALUE);
        assert_eq!(TpmRc(0x9A2).position(), Some(Position::Session(1)));
        assert_eq!(TpmRc(0x184).position(), Some(Position::Handle(1)));
        assert_eq!(TpmRc(0x2C3).position(), Some(Position::Parameter(2)));
    }

    #[test]
    fn display_names_the_code() {
        assert_eq!(
            TpmRc(0x1C4).to_string(),
            "TPM_RC_VALUE (parameter 1) [0x1c4]"
        );
        assert_eq!(TpmRc::INITIALIZE.to_string(), "TPM_RC_INITIALIZE [0x100]");
    }
}
