//! Feeds arbitrary bytes to the engine's one entry point.
//!
//! Input layout: byte 0 picks the locality (mod 6) and whether to run a
//! TPM2_Startup first; the rest is split at 0xFF 0xFE 0xFD markers into up
//! to 16 commands executed in order, so sequences of commands that build
//! state (sequence objects, PCR allocation, shutdown/startup) are reached.
//! Every response must be well formed: at least a header, and a size field
//! equal to its length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Mutex;
use vtpm_engine::{MemoryPlatform, Tpm};

static TPM: Mutex<Option<Tpm>> = Mutex::new(None);

const STARTUP_CLEAR: [u8; 12] = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0];

fn check(rsp: &[u8]) {
    assert!(rsp.len() >= 10, "short response");
    let size = u32::from_be_bytes([rsp[2], rsp[3], rsp[4], rsp[5]]) as usize;
    assert_eq!(size, rsp.len(), "size field");
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let mut guard = TPM.lock().unwrap_or_else(|e| e.into_inner());
    // A fresh TPM every so often keeps runs independent enough while still
    // reaching state built by earlier inputs.
    if guard.is_none() || ctl & 0x80 != 0 {
        let mut t = Tpm::new(Box::new(MemoryPlatform::new())).expect("engine");
        t.power_on();
        *guard = Some(t);
    }
    let Some(tpm) = guard.as_mut() else { return };
    if ctl & 0x40 != 0 {
        check(&tpm.execute(0, &STARTUP_CLEAR));
    }
    let locality = ctl % 6;
    for cmd in rest.split(|&b| b == 0xFD).take(16) {
        check(&tpm.execute(locality, cmd));
    }
});
