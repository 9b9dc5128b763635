//! The H-CRTM / D-RTM event sequence signalled by the platform:
//! `_TPM_Hash_Start`, `_TPM_Hash_Data`, `_TPM_Hash_End` (Part 3 §6.2–6.4).
//! Before TPM2_Startup the digest goes into PCR[0] (H-CRTM); after it, the
//! dynamic PCRs 17–22 are reset and the digest goes into PCR[17] (D-RTM).

use crate::Tpm;
use crate::crypto::hash::HashAlg;
use crate::objects::Object;
use vtpm_wire::profile::MAX_DIGEST_SIZE;

/// PCR that receives an H-CRTM measurement.
const HCRTM_PCR: usize = 0;
/// PCR that receives a D-RTM measurement.
const DRTM_PCR: usize = 17;

impl Tpm {
    /// `_TPM_Hash_Start`: starts an event sequence (evicting a transient
    /// object if every slot is in use) and sets tpmEstablishment.
    pub fn hash_start(&mut self) {
        if !self.is_powered() {
            return;
        }
        if let Some(h) = self.v.drtm_handle.take() {
            self.v.objects.flush(h);
        }
        let make = || Object::EventSequence {
            hashers: HashAlg::ALL.iter().map(|a| a.hasher()).collect(),
            auth: Default::default(),
        };
        let handle = match self.v.objects.insert(make()) {
            Some(h) => Some(h),
            None => {
                let victim = self.v.objects.handles().next();
                if let Some(victim) = victim {
                    self.v.objects.flush(victim);
                }
                self.v.objects.insert(make())
            }
        };
        self.v.drtm_handle = handle;
        if !self.nv.tpm_established {
            self.nv.tpm_established = true;
            self.mark_nv_dirty();
            if let Err(e) = self.commit_nv_now() {
                log::error!("{e}");
            }
        }
    }

    /// `_TPM_Hash_Data`: adds data to the running sequence (ignored
    /// without one).
    pub fn hash_data(&mut self, data: &[u8]) {
        let Some(h) = self.v.drtm_handle else { return };
        if let Some(Object::EventSequence { hashers, .. }) = self.v.objects.get_mut(h) {
            for hasher in hashers.iter_mut() {
                hasher.update(data);
            }
        }
    }

    /// `_TPM_Hash_End`: extends the digest into PCR[0] (before Startup) or,
    /// after resetting PCRs 17–22, into PCR[17].
    pub fn hash_end(&mut self) {
        let Some(h) = self.v.drtm_handle.take() else {
            return;
        };
        let Some(Object::EventSequence { hashers, .. }) = self.v.objects.flush(h) else {
            return;
        };
        let target = if self.started {
            for n in 17..=22 {
                self.pcr_reset_to_zero(n);
            }
            DRTM_PCR
        } else {
            // H-CRTM: PCR[0] starts at locality 4.
            self.v.drtm_pre_startup = true;
            for alg in HashAlg::ALL {
                let mut v = [0u8; MAX_DIGEST_SIZE];
                if let Some(last) = v.get_mut(alg.size() - 1) {
                    *last = 4;
                }
                self.v.pcrs.set(alg, HCRTM_PCR, &v);
            }
            HCRTM_PCR
        };
        for (alg, hasher) in HashAlg::ALL.into_iter().zip(hashers) {
            let digest = hasher.finish();
            self.pcr_extend(target, alg, &digest);
        }
        self.pcr_changed(target);
    }
}
