//! PostgreSQL's `backup_manifest` (version 1 and 2): the list of a backup's files with
//! sizes, modification times and checksums, plus the WAL range needed to make it
//! consistent. `pg_verifybackup` reads the files this module writes.

use std::fmt::Write as _;

use barman_wal::{Lsn, TimelineId};
use jiff::Timestamp;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// A checksum of a manifest entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestChecksum {
    /// No checksum (`"Checksum-Algorithm"` absent or `NONE`).
    None,
    /// CRC-32C, as PostgreSQL computes it.
    Crc32c(u32),
    /// SHA-224/256/384/512: the algorithm name and the digest bytes.
    Sha(String, Vec<u8>),
}

impl ManifestChecksum {
    /// The algorithm name in the manifest.
    pub fn algorithm(&self) -> &str {
        match self {
            ManifestChecksum::None => "NONE",
            ManifestChecksum::Crc32c(_) => "CRC32C",
            ManifestChecksum::Sha(name, _) => name,
        }
    }

    /// The checksum as the manifest writes it: lowercase hex of the bytes (a CRC-32C in
    /// little-endian byte order, as PostgreSQL stores it on x86 and ARM).
    pub fn hex(&self) -> String {
        match self {
            ManifestChecksum::None => String::new(),
            ManifestChecksum::Crc32c(v) => hex_of(&v.to_le_bytes()),
            ManifestChecksum::Sha(_, d) => hex_of(d),
        }
    }
}

fn hex_of(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    // Only hex digits: `from_str_radix` would also take a sign (`+f`).
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// One file of a backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestFile {
    /// The path relative to the data directory (tablespace files under `pg_tblspc/<oid>/`).
    pub path: String,
    /// The size in bytes.
    pub size: u64,
    /// The modification time (whole seconds).
    pub last_modified: Timestamp,
    /// The checksum of the content.
    pub checksum: ManifestChecksum,
}

/// A WAL range the backup needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalRange {
    /// The timeline.
    pub timeline: TimelineId,
    /// From this LSN.
    pub start: Lsn,
    /// To this LSN.
    pub end: Lsn,
}

/// A `backup_manifest`.
///
/// ```
/// use barman_catalog::{BackupManifest, ManifestChecksum, ManifestFile, WalRange};
///
/// let manifest = BackupManifest {
///     system_identifier: None,
///     files: vec![ManifestFile {
///         path: "PG_VERSION".into(),
///         size: 3,
///         last_modified: "2026-11-25T10:57:07Z".parse()?,
///         checksum: ManifestChecksum::Crc32c(0x2247748a),
///     }],
///     wal_ranges: vec![WalRange { timeline: barman_wal::TimelineId::new(1), start: "0/2000028".parse()?, end: "0/2000100".parse()? }],
/// };
/// let text = manifest.to_text();
/// assert!(text.contains(r#"{ "Path": "PG_VERSION", "Size": 3, "Last-Modified": "2026-11-25 10:57:07 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "8a744722" }"#));
/// assert_eq!(BackupManifest::parse("backup_manifest", &text)?, manifest);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupManifest {
    /// The cluster's system identifier (version 2 manifests, PostgreSQL 17+).
    pub system_identifier: Option<u64>,
    /// The files, in the order written.
    pub files: Vec<ManifestFile>,
    /// The WAL ranges.
    pub wal_ranges: Vec<WalRange>,
}

impl BackupManifest {
    /// The manifest text, byte for byte as PostgreSQL writes it, ending with its
    /// `Manifest-Checksum` (SHA-256 of everything before that line).
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        match self.system_identifier {
            Some(id) => {
                let _ = write!(
                    s,
                    "{{ \"PostgreSQL-Backup-Manifest-Version\": 2,\n\"System-Identifier\": {id},\n\"Files\": ["
                );
            }
            None => s.push_str("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": ["),
        }
        for (i, f) in self.files.iter().enumerate() {
            s.push_str(if i == 0 { "\n" } else { ",\n" });
            if f.path.chars().any(|c| c.is_control()) {
                let _ = write!(
                    s,
                    "{{ \"Encoded-Path\": \"{}\", ",
                    hex_of(f.path.as_bytes())
                );
            } else {
                let _ = write!(s, "{{ \"Path\": {}, ", Value::String(f.path.clone()));
            }
            let _ = write!(
                s,
                "\"Size\": {}, \"Last-Modified\": \"{}\"",
                f.size,
                f.last_modified.strftime("%Y-%m-%d %H:%M:%S GMT")
            );
            if f.checksum != ManifestChecksum::None {
                let _ = write!(
                    s,
                    ", \"Checksum-Algorithm\": \"{}\", \"Checksum\": \"{}\"",
                    f.checksum.algorithm(),
                    f.checksum.hex()
                );
            }
            s.push_str(" }");
        }
        s.push_str("\n],\n\"WAL-Ranges\": [\n");
        for (i, r) in self.wal_ranges.iter().enumerate() {
            if i > 0 {
                s.push_str(",\n");
            }
            let _ = write!(
                s,
                "{{ \"Timeline\": {}, \"Start-LSN\": \"{}\", \"End-LSN\": \"{}\" }}",
                r.timeline.as_u32(),
                r.start,
                r.end
            );
        }
        s.push_str("\n],\n");
        let digest = Sha256::digest(s.as_bytes());
        let _ = writeln!(s, "\"Manifest-Checksum\": \"{}\"}}", hex_of(&digest));
        s
    }

    /// Parses a manifest and checks its `Manifest-Checksum`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidManifest`] naming `file` and what is wrong: bad JSON, a missing
    /// field, a bad LSN, a checksum mismatch.
    pub fn parse(file: &str, text: &str) -> Result<BackupManifest> {
        let bad = |reason: String| Error::InvalidManifest {
            file: file.to_owned(),
            reason,
        };
        let v: Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let version = v["PostgreSQL-Backup-Manifest-Version"].as_u64();
        if !matches!(version, Some(1 | 2)) {
            return Err(bad(format!(
                "unsupported PostgreSQL-Backup-Manifest-Version {}",
                v["PostgreSQL-Backup-Manifest-Version"]
            )));
        }
        // The checksum covers everything before the "Manifest-Checksum" key.
        let expected = v["Manifest-Checksum"]
            .as_str()
            .ok_or_else(|| bad("no Manifest-Checksum".into()))?;
        let at = text
            .rfind("\"Manifest-Checksum\"")
            .ok_or_else(|| bad("no Manifest-Checksum".into()))?;
        let actual = hex_of(&Sha256::digest(&text.as_bytes()[..at]));
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(bad(format!(
                "manifest checksum mismatch: the file says {expected}, its content gives {actual}"
            )));
        }
        let mut files = Vec::new();
        for (i, f) in v["Files"]
            .as_array()
            .ok_or_else(|| bad("no Files list".into()))?
            .iter()
            .enumerate()
        {
            let path = match (f["Path"].as_str(), f["Encoded-Path"].as_str()) {
                (Some(p), _) => p.to_owned(),
                (None, Some(h)) => unhex(h)
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| bad(format!("file {i}: bad Encoded-Path {h:?}")))?,
                _ => return Err(bad(format!("file {i}: no Path"))),
            };
            let size = f["Size"]
                .as_u64()
                .ok_or_else(|| bad(format!("{path}: no Size")))?;
            let modified = f["Last-Modified"]
                .as_str()
                .ok_or_else(|| bad(format!("{path}: no Last-Modified")))?;
            let last_modified = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S GMT", modified)
                .and_then(|dt| jiff::tz::TimeZone::UTC.to_timestamp(dt))
                .map_err(|e| bad(format!("{path}: bad Last-Modified {modified:?}: {e}")))?;
            let algorithm = f["Checksum-Algorithm"].as_str().unwrap_or("NONE");
            let digest = f["Checksum"].as_str().unwrap_or("");
            let bytes = unhex(digest);
            let checksum = match (algorithm, bytes) {
                ("NONE", _) => ManifestChecksum::None,
                ("CRC32C", Some(b)) if b.len() == 4 => {
                    ManifestChecksum::Crc32c(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                }
                ("SHA224" | "SHA256" | "SHA384" | "SHA512", Some(b)) => {
                    ManifestChecksum::Sha(algorithm.to_owned(), b)
                }
                _ => {
                    return Err(bad(format!("{path}: bad checksum {algorithm} {digest:?}")));
                }
            };
            files.push(ManifestFile {
                path,
                size,
                last_modified,
                checksum,
            });
        }
        let mut wal_ranges = Vec::new();
        for r in v["WAL-Ranges"]
            .as_array()
            .ok_or_else(|| bad("no WAL-Ranges list".into()))?
        {
            let tli = r["Timeline"]
                .as_u64()
                .and_then(|t| u32::try_from(t).ok())
                .map(TimelineId::new)
                .filter(|t| t.is_valid())
                .ok_or_else(|| bad(format!("bad WAL range timeline {}", r["Timeline"])))?;
            let lsn = |key: &str| -> Result<Lsn> {
                r[key]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad(format!("bad WAL range {key} {}", r[key])))
            };
            wal_ranges.push(WalRange {
                timeline: tli,
                start: lsn("Start-LSN")?,
                end: lsn("End-LSN")?,
            });
        }
        Ok(BackupManifest {
            system_identifier: v["System-Identifier"].as_u64(),
            files,
            wal_ranges,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barman_testkit::mutate::{self, near_valid};
    use proptest::prelude::*;

    /// The head and tail of a manifest written by pg_basebackup 15 (from a real
    /// backup): the same values give the same bytes and the same checksum.
    #[test]
    fn writes_what_pg_basebackup_writes() {
        let m = BackupManifest {
            system_identifier: None,
            files: vec![ManifestFile {
                path: "PG_VERSION".into(),
                size: 3,
                last_modified: "2026-11-25T10:57:07Z".parse().unwrap(),
                checksum: ManifestChecksum::Crc32c(crc32c_of(b"15\n")),
            }],
            wal_ranges: vec![WalRange {
                timeline: TimelineId::new(1),
                start: "0/2000028".parse().unwrap(),
                end: "0/2000100".parse().unwrap(),
            }],
        };
        let text = m.to_text();
        assert!(text.starts_with(
            "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n{ \"Path\": \"PG_VERSION\", \"Size\": 3, \"Last-Modified\": \"2026-11-25 10:57:07 GMT\", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"8a744722\" }\n],\n\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n],\n\"Manifest-Checksum\": \""
        ));
        assert!(text.ends_with("\"}\n"));
        assert_eq!(BackupManifest::parse("m", &text).unwrap(), m);
        let tampered = text.replace("\"Size\": 3", "\"Size\": 4");
        let err = BackupManifest::parse("m", &tampered)
            .unwrap_err()
            .to_string();
        assert!(err.contains("manifest checksum mismatch"), "{err}");
    }

    /// `text` up to its `Manifest-Checksum` line (all of it if there is none), closed
    /// with the right checksum.
    fn with_manifest_checksum(text: &str) -> String {
        let body = text
            .rfind("\"Manifest-Checksum\"")
            .map_or(text, |at| &text[..at]);
        let digest = hex_of(&Sha256::digest(body.as_bytes()));
        format!("{body}\"Manifest-Checksum\": \"{digest}\"}}\n")
    }

    /// Issue "Trust", point 11: hex digests and encoded paths took a sign for a digit
    /// (`u8::from_str_radix` accepts `+f`), so `"Checksum": "+8+a+4+2"` was read as
    /// the CRC-32C 0x0242_0a08 instead of being refused, as pg_verifybackup refuses it.
    #[test]
    fn hex_with_a_sign_instead_of_a_digit_is_an_error() {
        let m = BackupManifest {
            system_identifier: None,
            files: vec![ManifestFile {
                path: "PG_VERSION".into(),
                size: 3,
                last_modified: "2026-11-25T10:57:07Z".parse().unwrap(),
                checksum: ManifestChecksum::Crc32c(crc32c_of(b"15\n")),
            }],
            wal_ranges: vec![],
        };
        let text = m.to_text();
        assert_eq!(
            BackupManifest::parse("m", &with_manifest_checksum(&text)).unwrap(),
            m
        );
        let signed = with_manifest_checksum(&text.replace("8a744722", "+8+a+4+2"));
        let err = BackupManifest::parse("m", &signed).unwrap_err().to_string();
        assert!(err.contains("bad checksum CRC32C \"+8+a+4+2\""), "{err}");
        let path = with_manifest_checksum(
            &text.replace("\"Path\": \"PG_VERSION\"", "\"Encoded-Path\": \"+4+5\""),
        );
        let err = BackupManifest::parse("m", &path).unwrap_err().to_string();
        assert!(err.contains("bad Encoded-Path"), "{err}");
    }

    fn crc32c_of(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for b in data {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    fn manifest() -> impl Strategy<Value = BackupManifest> {
        let checksum = prop_oneof![
            Just(ManifestChecksum::None),
            any::<u32>().prop_map(ManifestChecksum::Crc32c),
            (
                proptest::sample::select(vec![
                    ("SHA224", 28),
                    ("SHA256", 32),
                    ("SHA384", 48),
                    ("SHA512", 64)
                ]),
                proptest::collection::vec(any::<u8>(), 64),
            )
                .prop_map(|((name, len), bytes)| ManifestChecksum::Sha(
                    name.to_owned(),
                    bytes[..len].to_vec()
                )),
        ];
        let file = (
            prop_oneof!["[a-z_/0-9.]{1,20}", "\\PC{1,12}", "[a-z]{1,4}\n[a-z]{1,4}"],
            any::<u64>(),
            0i64..4_000_000_000,
            checksum,
        )
            .prop_map(|(path, size, secs, checksum)| ManifestFile {
                path,
                size,
                last_modified: Timestamp::from_second(secs).unwrap(),
                checksum,
            });
        let range = (1u32.., any::<u64>(), any::<u64>()).prop_map(|(t, a, b)| WalRange {
            timeline: TimelineId::new(t),
            start: Lsn::new(a.min(b)),
            end: Lsn::new(a.max(b)),
        });
        (
            proptest::option::of(any::<u64>()),
            proptest::collection::vec(file, 0..4),
            proptest::collection::vec(range, 0..3),
        )
            .prop_map(|(system_identifier, files, wal_ranges)| BackupManifest {
                system_identifier,
                files,
                wal_ranges,
            })
    }

    proptest! {
        #[test]
        fn written_text_reads_back(m in manifest()) {
            prop_assert_eq!(BackupManifest::parse("m", &m.to_text()).unwrap(), m);
        }
    }

    proptest! {
        #![proptest_config(mutate::config())]

        /// A manifest as PostgreSQL writes it with one mutation, half the time closed
        /// again with the right checksum so the mutation reaches the fields: an error,
        /// or a manifest that writes and reads back.
        #[test]
        fn near_valid_manifests_parse_or_fail_cleanly(
            s in near_valid(manifest().prop_map(|m| m.to_text())),
            reclose in any::<bool>(),
        ) {
            let s = if reclose { with_manifest_checksum(&s) } else { s };
            if let Ok(m) = BackupManifest::parse("m", &s) {
                prop_assert_eq!(BackupManifest::parse("m", &m.to_text()).unwrap(), m);
            }
        }
    }
}
