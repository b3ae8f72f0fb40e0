//! A project's `.env` file (python-dotenv's rules): `racer_build::dotenv::parse` on arbitrary
//! text. A later binding of a key replaces an earlier one, so no key is returned twice.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = racer_build::dotenv::parse(text);
    let mut keys = HashSet::new();
    for (k, _) in &env.values {
        assert!(keys.insert(k), "key {k:?} returned twice");
    }
});
