#![no_main]
// The body is barman_wal_fuzz::replication_message, shared with the stable runner (tests/seeds.rs).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    barman_wal_fuzz::replication_message(data);
});
