#![no_main]
use barman_wal::{BackupLabel, TablespaceMap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(l) = BackupLabel::parse(s) {
            assert_eq!(BackupLabel::parse(&l.to_string()).unwrap(), l);
        }
        if let Ok(m) = TablespaceMap::parse(s) {
            assert_eq!(TablespaceMap::parse(&m.to_string()).unwrap(), m);
        }
    }
});
