#![no_main]
//! See shoal::fuzz::ascii (src/fuzz/): what this target feeds and checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| shoal::fuzz::ascii(data));
