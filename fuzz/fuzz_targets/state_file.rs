//! Feeds arbitrary bytes to the state file parser. It must never panic,
//! and must accept only what was sealed with the key: inputs are opened
//! with a fixed key, and, so that the fuzzer also gets past the key id and
//! MAC checks, each input is additionally sealed as an NV image and opened
//! again (the round trip must give the input back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vtpm_store::{MasterKey, read_header, seal, unseal};

fuzz_target!(|data: &[u8]| {
    let key = MasterKey::from_bytes(std::array::from_fn(|i| i as u8));
    let _ = read_header(data);
    let _ = unseal(data, &key);

    let salt = [0x80u8; 32];
    if let Ok(sealed) = seal(data, &key, &salt) {
        let opened = unseal(&sealed, &key).expect("a sealed image opens");
        assert_eq!(opened.as_slice(), data, "round trip");
    }
});
