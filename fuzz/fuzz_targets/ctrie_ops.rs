#![no_main]
//! See `verify::ctrie_ops`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| verify::ctrie_ops(data));
