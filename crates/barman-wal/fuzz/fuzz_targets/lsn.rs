#![no_main]
use barman_wal::Lsn;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(lsn) = s.parse::<Lsn>() {
            // Canonical text parses back to the same LSN, and numerically equals the input.
            assert_eq!(lsn.to_string().parse::<Lsn>().unwrap(), lsn);
            let (hi, lo) = s.split_once('/').unwrap();
            let v = (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap();
            assert_eq!(u64::from(lsn), v);
        }
    }
});
