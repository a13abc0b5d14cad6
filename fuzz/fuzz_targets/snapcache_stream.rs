#![no_main]
//! See `verify::snapcache_stream`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| verify::snapcache_stream(data));
