//! Platform Configuration Registers: banks, per-PCR attributes of the PC
//! Client platform (which localities may extend or reset each PCR), startup
//! values and the update counter.

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use vtpm_wire::codec::{Marshal, Reader, Unmarshal, WireError, Writer};
use vtpm_wire::profile::{IMPLEMENTATION_PCR, MAX_DIGEST_SIZE};
use vtpm_wire::types::PcrSelectionList;

/// PCRs whose values TPM2_Shutdown(STATE) saves (PC Client: 0–15).
pub const STATE_SAVE_PCRS: std::ops::Range<usize> = 0..16;

/// PCRs whose changes do not increment pcrUpdateCounter (the reference
/// implementation's TCB group).
pub const NO_INCREMENT_PCRS: [usize; 3] = [20, 21, 22];

/// Per-PCR attributes: which localities (bit n = locality n) may reset and
/// extend it (PC Client Platform TPM Profile, as in the reference
/// implementation's PCR attribute table).
#[derive(Clone, Copy, Debug)]
pub struct PcrAttributes {
    /// Saved by Shutdown(STATE).
    pub state_save: bool,
    /// Localities allowed to PCR_Reset.
    pub reset_localities: u8,
    /// Localities allowed to extend.
    pub extend_localities: u8,
}

/// Attributes of PCR `n` (`None` beyond IMPLEMENTATION_PCR).
pub fn attributes(n: usize) -> Option<PcrAttributes> {
    let (reset, extend) = match n {
        0..=15 => (0x00, 0x1F),
        16 => (0x0F, 0x1F),
        17 | 18 => (0x10, 0x1C),
        19 => (0x10, 0x0C),
        20 => (0x14, 0x0E),
        21 | 22 => (0x14, 0x04),
        23 => (0x0F, 0x1F),
        _ => return None,
    };
    Some(PcrAttributes {
        state_save: STATE_SAVE_PCRS.contains(&n),
        reset_localities: reset,
        extend_localities: extend,
    })
}

/// True if `locality` is in the mask. Extended localities (above 4) are
/// allowed only where every locality 0–4 is.
pub fn locality_allowed(mask: u8, locality: u8) -> bool {
    if locality <= 4 {
        mask & (1 << locality) != 0
    } else {
        mask == 0x1F
    }
}

/// D-RTM PCRs (resettable by locality 4) start as all ones.
pub fn initial_value_is_ones(n: usize) -> bool {
    attributes(n).is_some_and(|a| a.reset_localities & 0x10 != 0)
}

/// The values of every PCR in every implemented bank.
#[derive(Clone, PartialEq, Eq)]
pub struct PcrValues {
    values: Box<[[[u8; MAX_DIGEST_SIZE]; IMPLEMENTATION_PCR]; 4]>,
}

impl Default for PcrValues {
    fn default() -> Self {
        PcrValues {
            values: Box::new([[[0; MAX_DIGEST_SIZE]; IMPLEMENTATION_PCR]; 4]),
        }
    }
}

impl std::fmt::Debug for PcrValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PcrValues")
    }
}

impl PcrValues {
    /// The value of PCR `n` in bank `alg` (empty beyond the PCR count).
    pub fn get(&self, alg: HashAlg, n: usize) -> &[u8] {
        self.values
            .get(alg.index())
            .and_then(|bank| bank.get(n))
            .and_then(|v| v.get(..alg.size()))
            .unwrap_or(&[])
    }

    /// Sets PCR `n` in bank `alg` (ignored beyond the PCR count).
    pub fn set(&mut self, alg: HashAlg, n: usize, value: &[u8]) {
        if let Some(slot) = self
            .values
            .get_mut(alg.index())
            .and_then(|bank| bank.get_mut(n))
        {
            let len = alg.size().min(value.len());
            if let (Some(dst), Some(src)) = (slot.get_mut(..len), value.get(..len)) {
                dst.copy_from_slice(src);
            }
        }
    }

    /// Sets PCR `n` in every bank to all `byte`.
    pub fn fill(&mut self, n: usize, byte: u8) {
        for alg in HashAlg::ALL {
            self.set(alg, n, &[byte; MAX_DIGEST_SIZE]);
        }
    }
}

impl Marshal for PcrValues {
    fn marshal(&self, w: &mut Writer) {
        for alg in HashAlg::ALL {
            for n in 0..IMPLEMENTATION_PCR {
                w.bytes(self.get(alg, n));
            }
        }
    }
}

impl Unmarshal for PcrValues {
    fn unmarshal(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let mut v = PcrValues::default();
        for alg in HashAlg::ALL {
            for n in 0..IMPLEMENTATION_PCR {
                v.set(alg, n, r.take(alg.size())?);
            }
        }
        Ok(v)
    }
}

/// Is PCR `n` of bank `alg` allocated in `allocation`?
pub fn is_allocated(allocation: &PcrSelectionList, alg: HashAlg, n: usize) -> bool {
    allocation
        .0
        .iter()
        .any(|s| s.hash == alg.alg() && s.is_selected(n))
}

impl Tpm {
    /// Is PCR `n` of bank `alg` in the allocation in effect?
    pub(crate) fn pcr_allocated(&self, alg: HashAlg, n: usize) -> bool {
        is_allocated(&self.v.allocation, alg, n)
    }

    /// Records a change of PCR `n` in pcrUpdateCounter.
    pub(crate) fn pcr_changed(&mut self, n: usize) {
        if !NO_INCREMENT_PCRS.contains(&n) {
            self.v.pcr_counter = self.v.pcr_counter.wrapping_add(1);
        }
    }

    /// PCR[n] := H(PCR[n] || digest) in bank `alg`, if allocated.
    pub(crate) fn pcr_extend(&mut self, n: usize, alg: HashAlg, digest: &[u8]) {
        if self.pcr_allocated(alg, n) {
            let new = alg.digest(&[self.v.pcrs.get(alg, n), digest]);
            self.v.pcrs.set(alg, n, &new);
        }
    }

    /// Sets every bank of PCR `n` to its reset value (zero).
    pub(crate) fn pcr_reset_to_zero(&mut self, n: usize) {
        self.v.pcrs.fill(n, 0);
    }

    /// Initializes PCRs at TPM2_Startup: every PCR, or with `resume` only
    /// those not state-saved (the saved ones were restored).
    pub(crate) fn pcr_startup(&mut self, resume: bool, startup_locality: u8) {
        for n in 0..IMPLEMENTATION_PCR {
            if resume && STATE_SAVE_PCRS.contains(&n) {
                continue;
            }
            if n == 0 && self.v.drtm_pre_startup {
                // An H-CRTM sequence before Startup already set PCR[0].
                continue;
            }
            self.v
                .pcrs
                .fill(n, if initial_value_is_ones(n) { 0xFF } else { 0 });
            if n == 0 {
                // PCR[0] records the locality of Startup (PC Client: 0 or 3).
                for alg in HashAlg::ALL {
                    let mut v = [0u8; MAX_DIGEST_SIZE];
                    if let Some(last) = v.get_mut(alg.size() - 1) {
                        *last = startup_locality;
                    }
                    self.v.pcrs.set(alg, 0, &v);
                }
            }
        }
    }
}

impl Tpm {
    /// The digest of the selected, allocated PCRs in selection order
    /// (Part 1 "PCR digest": H(PCR[i] || PCR[j] || …)) for creation data,
    /// quotes and PolicyPCR.
    pub(crate) fn pcr_digest(
        &self,
        alg: HashAlg,
        selection: &vtpm_wire::types::PcrSelectionList,
    ) -> Vec<u8> {
        let mut h = alg.hasher();
        for sel in &selection.0 {
            let Some(bank) = HashAlg::from_alg(sel.hash) else {
                continue;
            };
            for n in sel.pcrs() {
                if self.pcr_allocated(bank, n) {
                    h.update(self.v.pcrs.get(bank, n));
                }
            }
        }
        h.finish()
    }
}
