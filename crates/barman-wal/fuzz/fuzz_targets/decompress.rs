#![no_main]
use std::io::Read;

use barman_wal::Codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Any bytes: an error or some output, never a panic; output is bounded.
    if let Ok(d) = Codec::decoder_detect(data) {
        let mut out = Vec::new();
        let _ = d.take(64 << 20).read_to_end(&mut out);
    }
});
