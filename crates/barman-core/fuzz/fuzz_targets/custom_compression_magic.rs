#![no_main]
// The body is barman_core_fuzz::custom_compression_magic, shared with the stable runner (tests/seeds.rs).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    barman_core_fuzz::custom_compression_magic(data);
});
