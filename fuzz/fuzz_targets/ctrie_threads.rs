#![no_main]
//! See `verify::ctrie_threads`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| verify::ctrie_threads(data));
