//! The fuzz targets of barman-core, as plain functions: the parsers of what an
//! administrator writes (Barman's INI files and the configuration built from them,
//! libpq connection strings, password files).
//!
//! Each target takes any bytes, panics on a bug (a broken invariant, an overflow, an
//! out-of-bounds slice) and returns whether the input was accepted, which lets the
//! stable runner (`tests/seeds.rs`, `barman-fuzz-runner`) keep accepted mutants to
//! mutate further. The libFuzzer binaries under `fuzz_targets/` call the same functions.
#![deny(missing_docs)]

use barman_core::config::{Config, Ini, MemorySource};
use barman_core::postgres::{ConnInfo, pgpass_lookup};

/// A target: its name and its body, which panics on a bug and returns whether it
/// accepted the input (the runner's `barman_fuzz_runner::Target`).
pub type Target = (&'static str, fn(&[u8]) -> bool);

/// Every target, by name (the names of `fuzz_targets/*.rs` and `seeds/*/`).
pub const TARGETS: &[Target] = &[
    ("ini", ini),
    ("configuration", configuration),
    ("conninfo", conninfo),
    ("pgpass", pgpass),
    ("encryption_magic", encryption_magic),
    ("custom_compression_magic", custom_compression_magic),
];

/// The INI reader: a file read, or one error naming its line; a file that reads also
/// reads into a configuration that already holds it (sections merge, as Barman's).
pub fn ini(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let mut ini = Ini::default();
    match ini.read("barman.conf", text) {
        Ok(()) => {
            assert!(ini.clone().read("again.conf", text).is_ok());
            true
        }
        Err(e) => {
            assert_eq!(e.to_string().lines().count(), 1, "{e}");
            false
        }
    }
}

/// The whole configuration (interpolation, servers, models, every option's parser and
/// Barman's consistency rules, what barman-rs refuses): loaded, or one error line.
pub fn configuration(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    match Config::load("/etc/barman.conf", text, &MemorySource::default()) {
        Ok(config) => {
            for server in config.servers() {
                // Every accessor the operations use, on whatever was accepted.
                let _ = (
                    server.archiver(),
                    server.backup_method(),
                    server.compression(),
                    server.compression_level(),
                    server.retention_policy(),
                    server.minimum_redundancy(),
                );
                for (spec, value) in server.iter() {
                    let _ = (spec.name, value.map(ToString::to_string));
                }
            }
            true
        }
        Err(e) => {
            assert_eq!(e.to_string().lines().count(), 1, "{e}");
            false
        }
    }
}

/// Connection strings, keyword/value or URI: what parses encodes to a text that parses
/// back to the same thing, and shows its password masked.
pub fn conninfo(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(ci) = ConnInfo::parse(text) else {
        return false;
    };
    let encoded = ci.encode();
    assert_eq!(
        ConnInfo::parse(&encoded).ok().as_ref(),
        Some(&ci),
        "{encoded:?}"
    );
    if ci.get("password").is_some() {
        assert!(
            ci.to_string().contains("password=********"),
            "the password shows: {ci}"
        );
    }
    true
}

/// Password files: a look-up never panics, whatever the file and the connection.
pub fn pgpass(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let (file, host) = text.split_once('\u{0}').unwrap_or((text, "pg"));
    pgpass_lookup(file, host, "5432", "postgres", "barman").is_some()
}

/// The first bytes of a stored file, as told apart when it is read back: an OpenPGP
/// message encrypted to a public key is never also taken for a compressed file.
/// Accepted: the bytes start an encrypted message.
pub fn encryption_magic(data: &[u8]) -> bool {
    let encrypted = barman_core::encryption::is_encrypted(data);
    if encrypted {
        let codec = barman_wal::Codec::detect(data);
        assert_eq!(codec, barman_wal::Codec::None, "{data:?} is also {codec}");
    }
    encrypted
}

/// `custom_compression_magic`: what parses is `0x` and the hex of its bytes again.
pub fn custom_compression_magic(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    match barman_core::compression::parse_magic(text) {
        Some(bytes) => {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(format!("0x{hex}"), text.to_ascii_lowercase());
            true
        }
        None => false,
    }
}
