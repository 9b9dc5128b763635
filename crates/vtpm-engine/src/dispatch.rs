//! The command dispatch table and the pieces each command plugs into it
//! with: how many handles it takes and with which authorization role, its
//! attributes, and a typed handler that first unmarshals every parameter
//! (errors carry the parameter number) and only then acts.

use crate::Tpm;
use vtpm_wire::codec::{Reader, Unmarshal, WireError, Writer};
use vtpm_wire::constants::CommandCode;
use vtpm_wire::rc::TpmRc;

/// The authorization a handle needs (Part 3 "Auth Role").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthRole {
    /// No authorization.
    None,
    /// USER role.
    User,
    /// ADMIN role.
    Admin,
    /// DUP role (a policy session only).
    Dup,
}

/// What kind of entity a handle must refer to (its TPMI_ type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandleKind {
    /// TPMI_DH_PCR (`null_ok`: TPMI_DH_PCR+).
    Pcr {
        /// TPM_RH_NULL allowed.
        null_ok: bool,
    },
    /// TPMI_RH_PLATFORM.
    Platform,
    /// TPMI_DH_OBJECT: a loaded transient object (sequences included).
    Object,
    /// TPMI_DH_CONTEXT: a loaded transient object or session.
    Context,
    /// TPMI_DH_OBJECT+: an object or TPM_RH_NULL.
    ObjectPlus,
    /// TPMI_DH_ENTITY+: any entity with an authValue, or TPM_RH_NULL.
    EntityPlus,
    /// TPMI_DH_ENTITY: any entity with an authValue.
    Entity,
    /// TPMI_SH_POLICY: a loaded policy (or trial) session.
    PolicySession,
    /// TPMI_RH_HIERARCHY: owner, endorsement or platform.
    Hierarchy,
    /// TPMI_RH_PROVISION: owner or platform.
    Provision,
    /// TPMI_RH_HIERARCHY_AUTH: lockout, endorsement, owner or platform.
    HierarchyAuth,
    /// TPMI_RH_NV_AUTH: owner, platform or a defined NV index.
    NvAuth,
    /// TPMI_RH_NV_INDEX: a defined NV index.
    NvIndex,
    /// TPMI_RH_HIERARCHY+: owner, endorsement, platform or null.
    HierarchyPlus,
    /// TPMI_DH_PARENT+: an object, a hierarchy or TPM_RH_NULL.
    ParentPlus,
    /// TPMI_RH_LOCKOUT.
    Lockout,
    /// TPMI_RH_CLEAR: lockout or platform.
    Clear,
    /// TPMI_RH_ENDORSEMENT: the endorsement hierarchy.
    Endorsement,
    /// TPMI_SH_HMAC: a loaded HMAC session.
    HmacSession,
}

/// One handle of a command.
#[derive(Clone, Copy, Debug)]
pub struct HandleSpec {
    /// Its type.
    pub kind: HandleKind,
    /// Its authorization role.
    pub auth: AuthRole,
}

/// Command attributes (TPMA_CC bits and processing flags).
pub mod attr {
    /// The command may write NV (TPMA_CC.nv); refused while NV is
    /// unavailable.
    pub const NV: u8 = 1 << 0;
    /// The command flushes objects (TPMA_CC.flushed).
    pub const FLUSHED: u8 = 1 << 1;
    /// No sessions at all may be sent (the tag must be NO_SESSIONS).
    pub const NO_SESSIONS: u8 = 1 << 2;
    /// The first command parameter is a TPM2B a session may encrypt.
    pub const DECRYPT: u8 = 1 << 3;
    /// The first response parameter is a TPM2B a session may encrypt.
    pub const ENCRYPT: u8 = 1 << 4;
}

/// Everything a handler sees besides the TPM and its parameters.
#[derive(Debug)]
pub struct Call {
    /// The command code.
    pub cc: CommandCode,
    /// Locality of the command.
    pub locality: u8,
    /// The validated handles.
    pub handles: [u32; 3],
    /// Which handles were authorized with a policy session.
    pub policy_auth: [bool; 3],
}

/// Where a handler writes its response.
#[derive(Debug, Default)]
pub struct Output {
    /// The response handle, for commands that return one.
    pub handle: Option<u32>,
    /// The response parameters.
    pub params: Writer,
}

/// Reads parameters in order, numbering them so an error carries
/// `TPM_RC_P + n`.
#[derive(Debug)]
pub struct Params<'a> {
    r: Reader<'a>,
    n: usize,
}

impl<'a> Params<'a> {
    /// Parameters in `r`.
    pub fn new(r: Reader<'a>) -> Self {
        Params { r, n: 0 }
    }

    /// The next parameter.
    pub fn read<T: Unmarshal>(&mut self) -> Result<T, TpmRc> {
        self.with(T::unmarshal)
    }

    /// The next parameter, read by `f` (for interface types).
    pub fn with<T>(
        &mut self,
        f: impl FnOnce(&mut Reader<'a>) -> Result<T, WireError>,
    ) -> Result<T, TpmRc> {
        self.n += 1;
        f(&mut self.r).map_err(|e| e.rc().with_parameter(self.n))
    }

    /// The next parameter's number (for checks made after reading).
    pub fn last_index(&self) -> usize {
        self.n
    }

    /// All parameters read: trailing bytes are TPM_RC_SIZE.
    pub fn finish(self) -> Result<(), TpmRc> {
        self.r.finish().map_err(|_| TpmRc::SIZE)
    }
}

/// A TPM command: its parameters and its action.
pub trait Command {
    /// The unmarshalled parameters.
    type In;
    /// Reads every parameter (nothing may act here).
    fn read(p: &mut Params<'_>) -> Result<Self::In, TpmRc>;
    /// The command's action.
    fn action(tpm: &mut Tpm, call: &Call, input: Self::In, out: &mut Output) -> Result<(), TpmRc>;
}

/// A table entry's handler: unmarshal all, reject trailing bytes, act.
pub type Handler = fn(&mut Tpm, &Call, Reader<'_>, &mut Output) -> Result<(), TpmRc>;

/// Runs a command through its two phases.
pub fn run<C: Command>(
    tpm: &mut Tpm,
    call: &Call,
    r: Reader<'_>,
    out: &mut Output,
) -> Result<(), TpmRc> {
    let mut p = Params::new(r);
    let input = C::read(&mut p)?;
    p.finish()?;
    C::action(tpm, call, input, out)
}

/// One row of the dispatch table.
pub struct CommandDef {
    /// Command code.
    pub cc: CommandCode,
    /// Handles in the handle area.
    pub handles: &'static [HandleSpec],
    /// The response carries a handle.
    pub response_handle: bool,
    /// [`attr`] flags.
    pub attrs: u8,
    /// The handler.
    pub handler: Handler,
}

impl std::fmt::Debug for CommandDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CommandDef({:?})", self.cc)
    }
}

impl CommandDef {
    /// TPMA_CC for GetCapability(TPM_CAP_COMMANDS).
    pub fn tpma_cc(&self) -> u32 {
        let mut a = self.cc.0 & 0xFFFF;
        if self.attrs & attr::NV != 0 {
            a |= 1 << 22;
        }
        if self.attrs & attr::FLUSHED != 0 {
            a |= 1 << 24;
        }
        a |= (u32::try_from(self.handles.len()).unwrap_or(0) & 0x7) << 25;
        if self.response_handle {
            a |= 1 << 28;
        }
        a
    }

    /// How many handles need authorization.
    pub fn auth_count(&self) -> usize {
        self.handles
            .iter()
            .filter(|h| h.auth != AuthRole::None)
            .count()
    }
}

/// Looks a command up in the table (sorted by code).
pub fn lookup(cc: CommandCode) -> Option<&'static CommandDef> {
    let table = crate::commands::TABLE;
    table
        .binary_search_by_key(&cc.0, |d| d.cc.0)
        .ok()
        .and_then(|i| table.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        let t = crate::commands::TABLE;
        assert!(t.windows(2).all(|w| w[0].cc.0 < w[1].cc.0));
        for d in t {
            assert!(d.cc.name().is_some(), "{:?}", d.cc);
            assert!(std::ptr::eq(lookup(d.cc).unwrap(), d));
        }
    }
}
