#![no_main]
use barman_wal::{TimelineHistory, TimelineId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(h) = TimelineHistory::parse(TimelineId::new(1000), s) {
            assert_eq!(TimelineHistory::parse(TimelineId::new(1000), &h.to_string()).unwrap(), h);
        }
    }
});
