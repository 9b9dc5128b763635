//! TPM2_GetCapability (Part 3 §30.2).
//!
//! Each capability is a list sorted by its key (algorithm ID, handle,
//! command code, property tag, curve). `property` names the first key
//! wanted, `propertyCount` how many at most; `moreData` says whether more
//! entries follow the ones returned.

use crate::Tpm;
use crate::dispatch::{Call, Command, Output, Params};
use crate::objects::Objects;
use crate::pcr::{self, NO_INCREMENT_PCRS};
use crate::state::Orderly;
use vtpm_wire::constants::{
    Capability, PcrPropertyTag, PropertyTag as Pt, SPEC_FAMILY, YES, handle,
};
use vtpm_wire::profile::{self, IMPLEMENTATION_PCR, PCR_SELECT_MAX};
use vtpm_wire::rc::TpmRc;
use vtpm_wire::types::{AlgProperty, CapabilityData, TaggedPcrSelect, TaggedProperty};

/// TPM2_GetCapability.
pub struct GetCapability;

/// Parameters: capability, property, propertyCount.
pub struct GetCapabilityIn {
    capability: Capability,
    property: u32,
    count: u32,
}

/// TPM_PT_MANUFACTURER: "VTPM". Not a TCG-registered vendor ID.
pub const MANUFACTURER: [u8; 4] = *b"VTPM";
/// TPM_PT_VENDOR_STRING_1..4.
pub const VENDOR_STRINGS: [[u8; 4]; 4] = [*b"vtpm", *b" vir", *b"tual", [0; 4]];
/// TCG TPM Library spec revision this TPM follows (×100).
pub const SPEC_REVISION: u32 = 159;
/// Day of year and year of that revision.
pub const SPEC_DAY_OF_YEAR: u32 = 312;
/// Year of the spec revision.
pub const SPEC_YEAR: u32 = 2019;

/// Most entries of each list type that fit MAX_CAP_BUFFER (Part 2
/// MAX_CAP_*): the data minus the capability selector and count.
const MAX_CAP_DATA: usize = profile::MAX_CAP_BUFFER - 4 - 4;

fn max_entries(entry_size: usize) -> usize {
    MAX_CAP_DATA / entry_size
}

/// Entries of `all` (sorted by key) from `first` on, at most `count`
/// (and at most `max`), and whether more remain.
fn page<T: Clone>(all: &[(u32, T)], first: u32, count: u32, max: usize) -> (Vec<T>, bool) {
    let start = all.partition_point(|(k, _)| *k < first);
    let rest = all.get(start..).unwrap_or(&[]);
    let n = usize::try_from(count).unwrap_or(usize::MAX).min(max);
    let taken: Vec<T> = rest.iter().take(n).map(|(_, v)| v.clone()).collect();
    (taken, rest.len() > n)
}

pub(crate) fn firmware_version() -> (u32, u32) {
    let mut parts = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    ((major << 16) | (minor & 0xFFFF), patch << 16)
}

fn be(b: [u8; 4]) -> u32 {
    u32::from_be_bytes(b)
}

impl Tpm {
    /// Every TPM property (fixed and variable), sorted by tag.
    fn tpm_properties(&self) -> Vec<(u32, TaggedProperty)> {
        let (fw1, fw2) = firmware_version();
        let commands = u32::try_from(super::super::TABLE.len()).unwrap_or(0);
        let permanent = u32::from(!self.nv.owner_auth.is_empty())
            | u32::from(!self.nv.endorsement_auth.is_empty()) << 1
            | u32::from(!self.nv.lockout_auth.is_empty()) << 2
            | u32::from(self.nv.disable_clear) << 8
            | u32::from(self.nv.da.in_lockout()) << 9
            | 1 << 10; // tpmGeneratedEPS
        let startup_clear = u32::from(self.v.ph_enable)
            | u32::from(self.v.sh_enable) << 1
            | u32::from(self.v.eh_enable) << 2
            | u32::from(self.v.ph_enable_nv) << 3
            | u32::from(self.prev_orderly != Orderly::None) << 31;
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        let list: Vec<(Pt, u32)> = vec![
            (Pt::FAMILY_INDICATOR, SPEC_FAMILY),
            (Pt::LEVEL, 0),
            (Pt::REVISION, SPEC_REVISION),
            (Pt::DAY_OF_YEAR, SPEC_DAY_OF_YEAR),
            (Pt::YEAR, SPEC_YEAR),
            (Pt::MANUFACTURER, be(MANUFACTURER)),
            (Pt::VENDOR_STRING_1, be(VENDOR_STRINGS[0])),
            (Pt::VENDOR_STRING_2, be(VENDOR_STRINGS[1])),
            (Pt::VENDOR_STRING_3, be(VENDOR_STRINGS[2])),
            (Pt::VENDOR_STRING_4, be(VENDOR_STRINGS[3])),
            (Pt::VENDOR_TPM_TYPE, 1),
            (Pt::FIRMWARE_VERSION_1, fw1),
            (Pt::FIRMWARE_VERSION_2, fw2),
            (Pt::INPUT_BUFFER, n(profile::MAX_DIGEST_BUFFER)),
            (Pt::HR_TRANSIENT_MIN, n(profile::MAX_LOADED_OBJECTS)),
            (Pt::HR_PERSISTENT_MIN, 7),
            (Pt::HR_LOADED_MIN, n(profile::MAX_LOADED_SESSIONS)),
            (Pt::ACTIVE_SESSIONS_MAX, n(profile::MAX_ACTIVE_SESSIONS)),
            (Pt::PCR_COUNT, n(IMPLEMENTATION_PCR)),
            (Pt::PCR_SELECT_MIN, n(profile::PCR_SELECT_MIN)),
            (Pt::CONTEXT_GAP_MAX, 0xFFFF),
            (Pt::NV_COUNTERS_MAX, 0),
            (Pt::NV_INDEX_MAX, n(crate::nv::MAX_NV_INDEX_SIZE)),
            // sharedNV | objectCopiedToRam.
            (Pt::MEMORY, 0x6),
            (
                Pt::CLOCK_UPDATE,
                u32::try_from(crate::CLOCK_UPDATE_MS).unwrap_or(u32::MAX),
            ),
            (
                Pt::CONTEXT_HASH,
                u32::from(crate::tickets::CONTEXT_INTEGRITY_HASH.alg().0),
            ),
            (
                Pt::CONTEXT_SYM,
                u32::from(vtpm_wire::constants::AlgId::AES.0),
            ),
            (Pt::CONTEXT_SYM_SIZE, 256),
            (Pt::ORDERLY_COUNT, 255),
            (Pt::MAX_COMMAND_SIZE, n(profile::MAX_COMMAND_SIZE)),
            (Pt::MAX_RESPONSE_SIZE, n(profile::MAX_RESPONSE_SIZE)),
            (Pt::MAX_DIGEST, n(profile::MAX_DIGEST_SIZE)),
            (Pt::MAX_OBJECT_CONTEXT, 2048),
            (Pt::MAX_SESSION_CONTEXT, 512),
            // PC Client platform, level 0, revision 1.05.
            (Pt::PS_FAMILY_INDICATOR, 1),
            (Pt::PS_LEVEL, 0),
            (Pt::PS_REVISION, 0x105),
            (Pt::PS_DAY_OF_YEAR, 0),
            (Pt::PS_YEAR, 0),
            (Pt::SPLIT_MAX, 0),
            (Pt::TOTAL_COMMANDS, commands),
            (Pt::LIBRARY_COMMANDS, commands),
            (Pt::VENDOR_COMMANDS, 0),
            (Pt::NV_BUFFER_MAX, n(profile::MAX_NV_BUFFER_SIZE)),
            (Pt::MODES, 0),
            (Pt::MAX_CAP_BUFFER, n(profile::MAX_CAP_BUFFER)),
            (Pt::PERMANENT, permanent),
            (Pt::STARTUP_CLEAR, startup_clear),
            (Pt::HR_NV_INDEX, n(self.nv.nv_indices.len())),
            (Pt::HR_LOADED, n(self.v.sessions.count())),
            (
                Pt::HR_LOADED_AVAIL,
                n(profile::MAX_LOADED_SESSIONS - self.v.sessions.count()),
            ),
            (Pt::HR_ACTIVE, n(self.v.sessions.active())),
            (
                Pt::HR_ACTIVE_AVAIL,
                n(profile::MAX_ACTIVE_SESSIONS - self.v.sessions.count()),
            ),
            (Pt::HR_TRANSIENT_AVAIL, n(self.v.objects.available())),
            (Pt::HR_PERSISTENT, n(self.nv.persistent.len())),
            (
                Pt::HR_PERSISTENT_AVAIL,
                n(crate::commands::context::evict_control::MAX_PERSISTENT
                    .saturating_sub(self.nv.persistent.len())),
            ),
            (Pt::NV_COUNTERS, n(self.nv_counters())),
            (Pt::NV_COUNTERS_AVAIL, n(self.nv_counters_avail())),
            (Pt::ALGORITHM_SET, 0),
            (Pt::LOADED_CURVES, n(profile::ECC_CURVES.len())),
            (Pt::LOCKOUT_COUNTER, self.nv.da.failed_tries),
            (Pt::MAX_AUTH_FAIL, self.nv.da.max_tries),
            (Pt::LOCKOUT_INTERVAL, self.nv.da.recovery_time),
            (Pt::LOCKOUT_RECOVERY, self.nv.da.lockout_recovery),
            (Pt::NV_WRITE_RECOVERY, 0),
            (
                Pt::AUDIT_COUNTER_0,
                u32::try_from(self.nv.audit_counter >> 32).unwrap_or(u32::MAX),
            ),
            (
                Pt::AUDIT_COUNTER_1,
                u32::try_from(self.nv.audit_counter & 0xFFFF_FFFF).unwrap_or(u32::MAX),
            ),
        ];
        list.into_iter()
            .map(|(t, value)| {
                (
                    t.0,
                    TaggedProperty {
                        property: t.0,
                        value,
                    },
                )
            })
            .collect()
    }

    /// TPM_CAP_PCR_PROPERTIES, sorted by tag.
    fn pcr_properties(&self) -> Vec<(u32, TaggedPcrSelect)> {
        let bitmap = |f: &dyn Fn(usize) -> bool| -> Vec<u8> {
            let mut b = vec![0u8; PCR_SELECT_MAX];
            for n in (0..IMPLEMENTATION_PCR).filter(|&n| f(n)) {
                if let Some(byte) = b.get_mut(n / 8) {
                    *byte |= 1 << (n % 8);
                }
            }
            b
        };
        let attr = |n: usize| pcr::attributes(n);
        let mut out: Vec<(PcrPropertyTag, Vec<u8>)> = vec![(
            PcrPropertyTag::SAVE,
            bitmap(&|n| attr(n).is_some_and(|a| a.state_save)),
        )];
        for loc in 0..=4u8 {
            let extend = PcrPropertyTag(1 + 2 * u32::from(loc));
            let reset = PcrPropertyTag(2 + 2 * u32::from(loc));
            out.push((
                extend,
                bitmap(&|n| attr(n).is_some_and(|a| a.extend_localities & (1 << loc) != 0)),
            ));
            out.push((
                reset,
                bitmap(&|n| attr(n).is_some_and(|a| a.reset_localities & (1 << loc) != 0)),
            ));
        }
        out.push((
            PcrPropertyTag::NO_INCREMENT,
            bitmap(&|n| NO_INCREMENT_PCRS.contains(&n)),
        ));
        out.push((
            PcrPropertyTag::DRTM_RESET,
            bitmap(&pcr::initial_value_is_ones),
        ));
        // No PCR can be given a policy or an authValue here.
        out.push((PcrPropertyTag::POLICY, bitmap(&|_| false)));
        out.push((PcrPropertyTag::AUTH, bitmap(&|_| false)));
        out.into_iter()
            .map(|(t, select)| (t.0, TaggedPcrSelect { tag: t.0, select }))
            .collect()
    }

    /// TPM_CAP_HANDLES for the handle type of `first`.
    fn handles(&self, first: u32) -> Result<Vec<(u32, u32)>, TpmRc> {
        let list: Vec<u32> = match handle::handle_type(first) {
            handle::HT_PCR => (0..IMPLEMENTATION_PCR)
                .filter_map(|n| u32::try_from(n).ok())
                .collect(),
            handle::HT_PERMANENT => vec![
                handle::RH_OWNER,
                handle::RH_NULL,
                handle::RS_PW,
                handle::RH_LOCKOUT,
                handle::RH_ENDORSEMENT,
                handle::RH_PLATFORM,
                handle::RH_PLATFORM_NV,
            ],
            handle::HT_TRANSIENT => Objects::handles(&self.v.objects).collect(),
            handle::HT_NV_INDEX => self.nv.nv_indices.keys().copied().collect(),
            // TPM_HT_LOADED_SESSION: every loaded session, HMAC and policy,
            // listed by its handle and paged by its slot.
            handle::HT_HMAC_SESSION => {
                let mut v = self.v.sessions.handles(handle::HT_HMAC_SESSION);
                v.extend(self.v.sessions.handles(handle::HT_POLICY_SESSION));
                v.sort_unstable_by_key(|h| h & 0x00FF_FFFF);
                return Ok(v
                    .into_iter()
                    .map(|h| ((h & 0x00FF_FFFF) | 0x0200_0000, h))
                    .collect());
            }
            // TPM_HT_SAVED_SESSION: sessions saved by TPM2_ContextSave.
            handle::HT_POLICY_SESSION => {
                let mut v = self.v.sessions.saved_handles(handle::HT_HMAC_SESSION);
                v.extend(self.v.sessions.saved_handles(handle::HT_POLICY_SESSION));
                v.sort_unstable_by_key(|h| h & 0x00FF_FFFF);
                return Ok(v
                    .into_iter()
                    .map(|h| ((h & 0x00FF_FFFF) | 0x0300_0000, h))
                    .collect());
            }
            handle::HT_PERSISTENT => self.nv.persistent.keys().copied().collect(),
            _ => return Err(TpmRc::HANDLE.with_parameter(2)),
        };
        // The list stays within the requested handle type.
        let ty = handle::handle_type(first);
        Ok(list
            .into_iter()
            .filter(|h| handle::handle_type(*h) == ty)
            .map(|h| (h, h))
            .collect())
    }
}

impl Command for GetCapability {
    type In = GetCapabilityIn;

    fn read(p: &mut Params<'_>) -> Result<GetCapabilityIn, TpmRc> {
        let capability = p.read()?;
        let property = p.read()?;
        let count = p.read()?;
        Ok(GetCapabilityIn {
            capability,
            property,
            count,
        })
    }

    fn action(
        tpm: &mut Tpm,
        _call: &Call,
        input: GetCapabilityIn,
        out: &mut Output,
    ) -> Result<(), TpmRc> {
        let GetCapabilityIn {
            capability,
            property: first,
            count,
        } = input;
        let (data, more) = match capability {
            Capability::ALGS => {
                let all: Vec<(u32, AlgProperty)> = profile::ALGORITHMS
                    .iter()
                    .map(|&(alg, attributes)| (u32::from(alg.0), AlgProperty { alg, attributes }))
                    .collect();
                let (v, more) = page(&all, first, count, max_entries(6));
                (CapabilityData::Algs(v), more)
            }
            Capability::HANDLES => {
                let all = tpm.handles(first)?;
                let (v, more) = page(&all, first, count, max_entries(4));
                (CapabilityData::Handles(v), more)
            }
            Capability::COMMANDS => {
                let all: Vec<(u32, u32)> = super::super::TABLE
                    .iter()
                    .map(|d| (d.cc.0, d.tpma_cc()))
                    .collect();
                let (v, more) = page(&all, first, count, max_entries(4));
                (CapabilityData::Commands(v), more)
            }
            // No command requires physical presence.
            Capability::PP_COMMANDS => (CapabilityData::PpCommands(Vec::new()), false),
            Capability::AUDIT_COMMANDS => {
                let all: Vec<(u32, u32)> =
                    tpm.nv.audit_commands.iter().map(|&cc| (cc, cc)).collect();
                let (v, more) = page(&all, first, count, max_entries(4));
                (CapabilityData::AuditCommands(v), more)
            }
            Capability::PCRS => (CapabilityData::Pcrs(tpm.v.allocation.clone()), false),
            Capability::TPM_PROPERTIES => {
                let (v, more) = page(&tpm.tpm_properties(), first, count, max_entries(8));
                (CapabilityData::TpmProperties(v), more)
            }
            Capability::PCR_PROPERTIES => {
                let (v, more) = page(
                    &tpm.pcr_properties(),
                    first,
                    count,
                    max_entries(4 + 1 + PCR_SELECT_MAX),
                );
                (CapabilityData::PcrProperties(v), more)
            }
            Capability::ECC_CURVES => {
                let all: Vec<(u32, _)> = profile::ECC_CURVES
                    .iter()
                    .map(|&c| (u32::from(c.0), c))
                    .collect();
                let (v, more) = page(&all, first, count, max_entries(2));
                (CapabilityData::EccCurves(v), more)
            }
            // No hierarchy has a policy in this TPM yet.
            Capability::AUTH_POLICIES => (CapabilityData::AuthPolicies(Vec::new()), false),
            // This TPM has no Authenticated Countdown Timers.
            Capability::ACT => (CapabilityData::Act, false),
            _ => return Err(TpmRc::VALUE.with_parameter(1)),
        };
        out.params.u8(if more { YES } else { 0 });
        out.params.write(&data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_follows_keys() {
        let all: Vec<(u32, u32)> = (1..=10).map(|k| (k * 10, k)).collect();
        assert_eq!(page(&all, 0, 3, 100), (vec![1, 2, 3], true));
        assert_eq!(page(&all, 25, 3, 100), (vec![3, 4, 5], true));
        assert_eq!(page(&all, 80, 5, 100), (vec![8, 9, 10], false));
        assert_eq!(page(&all, 101, 5, 100), (vec![], false));
        assert_eq!(page(&all, 0, 0, 100), (vec![], true));
        assert_eq!(page(&all, 0, u32::MAX, 4), (vec![1, 2, 3, 4], true));
    }
}
