//! Codecs: round trips, truncation and corruption, magic detection, and interoperability
//! with the C command-line tools on the same bytes.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use barman_wal::{Codec, CompressionLevel};

fn available() -> Vec<Codec> {
    Codec::ALL
        .into_iter()
        .filter(|c| c.is_available())
        .collect()
}

/// Semi-compressible test data: WAL-like runs of zeros with varied records.
fn sample(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(4) {
            v.extend(std::iter::repeat_n(0u8, (x % 300) as usize));
        } else {
            v.extend_from_slice(&x.to_le_bytes()[..(x % 8) as usize]);
            v.extend_from_slice(b"INSERT INTO t VALUES");
        }
    }
    v.truncate(len);
    v
}

fn encode(codec: Codec, data: &[u8], level: CompressionLevel) -> Vec<u8> {
    let mut e = codec.encoder(Vec::new(), level).unwrap();
    // Several writes, to exercise streaming.
    for chunk in data.chunks(7777) {
        e.write_all(chunk).unwrap();
    }
    e.finish().unwrap()
}

fn decode(codec: Codec, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    codec.decoder(data).unwrap().read_to_end(&mut out)?;
    Ok(out)
}

#[test]
fn every_codec_round_trips_and_is_detected() {
    let data = sample(300_000);
    for codec in available() {
        for level in [
            CompressionLevel::Low,
            CompressionLevel::Medium,
            CompressionLevel::High,
            CompressionLevel::Exact(-3),
        ] {
            let packed = encode(codec, &data, level);
            if codec != Codec::None {
                assert!(packed.len() < data.len(), "{codec} {level}");
            }
            assert_eq!(Codec::detect(&packed), codec, "{codec}");
            assert_eq!(decode(codec, &packed).unwrap(), data, "{codec} {level}");
            let mut d = Codec::decoder_detect(&packed[..]).unwrap();
            let mut out = Vec::new();
            d.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
            assert_eq!(d.codec(), codec);
        }
        // Empty content is valid content.
        let packed = encode(codec, b"", CompressionLevel::Medium);
        assert_eq!(decode(codec, &packed).unwrap(), b"");
    }
}

fn assert_truncations_fail(codec: Codec, data: &[u8], cuts: impl Iterator<Item = usize>) {
    let packed = encode(codec, data, CompressionLevel::Medium);
    for cut in cuts.filter(|c| *c < packed.len()) {
        match decode(codec, &packed[..cut]) {
            Err(_) => {}
            // The snappy framing format has no end marker: a cut between chunks is a
            // shorter valid stream (documented on Codec::decoder).
            Ok(out) if codec == Codec::Snappy => assert!(data.starts_with(&out)),
            Ok(out) => panic!(
                "{codec}: cut at {cut}/{} gave {} bytes without error",
                packed.len(),
                out.len()
            ),
        }
    }
}

#[test]
fn truncated_input_is_an_error_never_short_output() {
    for codec in available().into_iter().filter(|c| *c != Codec::None) {
        // Every possible cut of a small stream.
        assert_truncations_fail(codec, &sample(3_000), 0..100_000);
        // A multi-block stream (several 64 KiB lz4 blocks, several zstd blocks...): a
        // sample of cuts, and every cut in its last bytes (end marks, checksums).
        let big = sample(400_000);
        let len = encode(codec, &big, CompressionLevel::Medium).len();
        let step = (len / 400).max(1);
        assert_truncations_fail(
            codec,
            &big,
            (0..len).step_by(step).chain(len.saturating_sub(24)..len),
        );
    }
}

#[test]
fn corrupt_input_is_an_error_never_wrong_output() {
    let data = sample(20_000);
    for codec in available().into_iter().filter(|c| *c != Codec::None) {
        let packed = encode(codec, &data, CompressionLevel::Medium);
        let mut errors = 0;
        for i in (0..packed.len()).step_by(((packed.len() / 300) | 1).max(1)) {
            let mut bad = packed.clone();
            bad[i] ^= 0x55;
            match decode(codec, &bad) {
                Err(_) => errors += 1,
                // A flip in header metadata (a gzip timestamp...) leaves the content as is.
                Ok(out) => assert_eq!(
                    out, data,
                    "{codec}: flip at {i} changed the output silently"
                ),
            }
        }
        assert!(errors > 0, "{codec}");
    }
}

#[test]
fn garbage_and_empty_input() {
    for codec in available().into_iter().filter(|c| *c != Codec::None) {
        let mut junk = codec.magic().to_vec();
        junk.extend_from_slice(&sample(1000));
        assert!(
            decode(codec, &junk).is_err(),
            "{codec} accepted garbage after its magic"
        );
        assert!(
            decode(codec, &[]).map(|v| v.is_empty()).unwrap_or(true),
            "{codec}"
        );
    }
    // Trailing garbage after a complete gzip stream.
    let mut packed = encode(Codec::Gzip, b"hello", CompressionLevel::Low);
    packed.extend_from_slice(b"garbage!");
    assert!(decode(Codec::Gzip, &packed).is_err());
}

#[test]
fn concatenated_gzip_members_decode_whole() {
    // What pigz and `cat a.gz b.gz` produce.
    let mut both = encode(Codec::Gzip, b"first part ", CompressionLevel::Low);
    both.extend(encode(Codec::Gzip, b"second part", CompressionLevel::High));
    assert_eq!(
        decode(Codec::Gzip, &both).unwrap(),
        b"first part second part"
    );
}

#[test]
fn names_and_levels_follow_barman() {
    for (name, codec) in [
        ("gzip", Codec::Gzip),
        ("pigz", Codec::Gzip),
        ("pygzip", Codec::Gzip),
        ("bzip2", Codec::Bzip2),
        ("pybzip2", Codec::Bzip2),
        ("zstd", Codec::Zstd),
        ("lz4", Codec::Lz4),
        ("xz", Codec::Xz),
        ("snappy", Codec::Snappy),
        ("None", Codec::None),
    ] {
        assert_eq!(name.parse::<Codec>().unwrap(), codec);
    }
    for bad in ["custom", "GZIP", "gz", "zlib"] {
        assert!(bad.parse::<Codec>().is_err(), "{bad}");
    }
    let l = |s: &str, c: Codec| s.parse::<CompressionLevel>().unwrap().for_codec(c);
    assert_eq!(l("LOW", Codec::Xz), Some(1));
    assert_eq!(l("medium", Codec::Xz), Some(3));
    assert_eq!(l("High", Codec::Xz), Some(5));
    assert_eq!(l("100", Codec::Lz4), Some(16));
    assert_eq!(l("-100", Codec::Zstd), Some(-22));
    assert_eq!(l("-1", Codec::Gzip), Some(1));
    assert_eq!(l("7", Codec::Snappy), None);
    for bad in ["", "fast", "1.5", "--1", "9999999999999999999999"] {
        let r = bad.parse::<CompressionLevel>();
        if bad.starts_with('9') {
            // Huge integers are clamped like any other out-of-range value.
            assert_eq!(r.unwrap().for_codec(Codec::Gzip), Some(9));
        } else {
            assert!(r.is_err(), "{bad:?}");
        }
    }
}

fn tool(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn pipe(cmd: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn interoperates_with_the_c_tools() {
    let data = sample(500_000);
    let tools: [(Codec, &str, &[&str], &[&str]); 5] = [
        (
            Codec::Gzip,
            "gzip",
            &["gzip", "-c", "-6"],
            &["gzip", "-d", "-c"],
        ),
        (
            Codec::Bzip2,
            "bzip2",
            &["bzip2", "-c", "-9"],
            &["bzip2", "-d", "-c"],
        ),
        (
            Codec::Zstd,
            "zstd",
            &["zstd", "-q", "-c", "-3"],
            &["zstd", "-q", "-d", "-c"],
        ),
        (
            Codec::Lz4,
            "lz4",
            &["lz4", "-q", "-c", "-1"],
            &["lz4", "-q", "-d", "-c"],
        ),
        (Codec::Xz, "xz", &["xz", "-c", "-3"], &["xz", "-d", "-c"]),
    ];
    let require = std::env::var("BARMAN_REQUIRE_TOOLS").as_deref() == Ok("1");
    for (codec, name, compress, decompress) in tools {
        if !codec.is_available() {
            continue;
        }
        if !tool(name) {
            assert!(
                !require,
                "{name} is not installed and BARMAN_REQUIRE_TOOLS=1"
            );
            eprintln!("skipped {name}: not installed");
            continue;
        }
        // Theirs → ours, detected by magic.
        let theirs = pipe(compress, &data);
        let mut out = Vec::new();
        let mut d = Codec::decoder_detect(&theirs[..]).unwrap();
        d.read_to_end(&mut out).unwrap();
        assert_eq!(d.codec(), codec);
        assert_eq!(out, data, "{name} output decoded by us");
        // Ours → theirs.
        let ours = encode(codec, &data, CompressionLevel::Medium);
        assert_eq!(
            pipe(decompress, &ours),
            data,
            "our {codec} decoded by {name}"
        );
    }
}
