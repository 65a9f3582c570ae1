#![no_main]
use barman_wal::{PageHeader, SegmentCheck, SegmentName, TimelineId, WalSegSize};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(h) = PageHeader::parse(data) {
        assert_eq!(&h.to_bytes()[..4], &data[..4]);
    }
    let size = WalSegSize::new(1 << 20).unwrap();
    let name = SegmentName::containing(TimelineId::new(2), barman_wal::Lsn::new(0), size);
    let check = SegmentCheck::new(name, size).partial(true);
    let _ = check.check_header(data, data.len() as u64);
    // Feed in two uneven pieces: never panics, whatever the bytes.
    let mut v = check.validator();
    let (a, b) = data.split_at(data.len() / 3);
    if v.feed(a).is_ok() && v.feed(b).is_ok() {
        let _ = v.finish();
    }
});
