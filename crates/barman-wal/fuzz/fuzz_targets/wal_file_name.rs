#![no_main]
use barman_wal::WalFileName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(name) = s.parse::<WalFileName>() {
            let canonical = name.to_string();
            assert_eq!(canonical.parse::<WalFileName>().unwrap(), name);
            assert_eq!(canonical.to_lowercase(), s.to_lowercase());
            assert!(canonical.starts_with(&name.hash_dir()));
        }
    }
});
