//! The WAL archive operations (`barman_core::archive`) on real WAL from a PostgreSQL 15
//! cluster: put-wal's tar stream, archive-wal from `incoming/` and `streaming/`,
//! get-wal, rebuild-xlogdb and check-wal-archive.
//!
//! The cluster (barman-testkit) is started once; its archived segments are kept in
//! memory and each test builds its own barman home from them. Without PostgreSQL the
//! tests are skipped (or fail with `BARMAN_REQUIRE_PG=1`).

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use barman_core::Error;
use barman_core::archive::{
    Archiver, ErrorKind, GetWalOptions, PutOutcome, TarWalOptions, WalArchive,
};
use barman_core::config::{Config, MemorySource};
use barman_testkit::{self as pg, PgCluster};
use barman_wal::{Codec, CompressionLevel, TimelineId, WalFileName};
use md5::Md5;
use sha2::{Digest, Sha256};

/// Real WAL: consecutive segments of timeline 1 (1 MiB each) and a backup label file.
pub(crate) struct Wal {
    pub(crate) segments: Vec<(String, Vec<u8>)>,
    pub(crate) label: (String, Vec<u8>),
}

pub(crate) fn wal() -> Option<&'static Wal> {
    static WAL: OnceLock<Option<Wal>> = OnceLock::new();
    WAL.get_or_init(|| {
        let bin = pg::require()?;
        let pg = PgCluster::start(&bin, &["--wal-segsize=1"], &[]).unwrap();
        pg.sql("CREATE TABLE t (id int, c text)").unwrap();
        for i in 0..5 {
            pg.sql(&format!(
                "INSERT INTO t SELECT g, md5(g::text) FROM generate_series({}, {}) g",
                i * 3000,
                i * 3000 + 2999
            ))
            .unwrap();
            pg.sql("SELECT pg_switch_wal()").unwrap();
        }
        pg.sql("SELECT pg_backup_start('t', true); SELECT lsn FROM pg_backup_stop(false)")
            .unwrap();
        let last = pg.sql("SELECT pg_walfile_name(pg_switch_wal())").unwrap();
        pg.wait_archived(&last).unwrap();
        let mut segments = Vec::new();
        let mut label = None;
        let mut names: Vec<_> = fs::read_dir(pg.archive())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        // A `.tmp` of the archive_command may be renamed meanwhile.
        for name in names.into_iter().filter(|n| !n.ends_with(".tmp")) {
            let bytes = fs::read(pg.archive().join(&name)).unwrap();
            match name.parse::<WalFileName>() {
                Ok(WalFileName::Segment(_)) => segments.push((name, bytes)),
                Ok(WalFileName::BackupLabel { .. }) => label = Some((name, bytes)),
                _ => {}
            }
        }
        // Keep a run of consecutive segments.
        let first: WalFileName = segments[0].0.parse().unwrap();
        let mut expected = first.segment().unwrap();
        segments.retain(|(n, _)| {
            let ok = *n == expected.to_string();
            if ok {
                expected = expected
                    .next(barman_wal::WalSegSize::new(1 << 20).unwrap())
                    .unwrap();
            }
            ok
        });
        assert!(segments.len() >= 5, "too few segments: {}", segments.len());
        Some(Wal {
            segments,
            label: label.expect("a .backup file"),
        })
    })
    .as_ref()
}

const HISTORY: (&str, &str) = (
    "00000002.history",
    "1\t0/3000000\tno recovery target specified\n",
);

struct Env {
    home: tempfile::TempDir,
    archive: WalArchive,
}

impl Env {
    fn new(options: &str) -> Env {
        let home = tempfile::Builder::new()
            .prefix("barman-rs-archive.")
            .tempdir()
            .unwrap();
        let text = format!(
            "[barman]\nbarman_home = {}\n[pg]\nconninfo = host=/nonexistent\nstreaming_conninfo = host=/nonexistent\nslot_name = barman\nbackup_method = postgres\n{options}\n",
            home.path().display()
        );
        let config = Config::load("/etc/barman.conf", &text, &MemorySource::default()).unwrap();
        let archive = WalArchive::for_server(config.global(), config.server("pg").unwrap());
        Env { home, archive }
    }

    fn server_dir(&self) -> PathBuf {
        self.home.path().join("pg")
    }

    fn dir(&self, sub: &str) -> PathBuf {
        let d = self.server_dir().join(sub);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn stored(&self, name: &str) -> PathBuf {
        self.archive.path_of(&name.parse().unwrap())
    }

    fn xlogdb_names(&self) -> Vec<String> {
        fs::read_to_string(self.archive.xlogdb_path())
            .unwrap_or_default()
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_owned())
            .collect()
    }

    fn listing(&self, sub: &str) -> BTreeSet<String> {
        match fs::read_dir(self.server_dir().join(sub)) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect(),
            Err(_) => BTreeSet::new(),
        }
    }
}

fn decompressed(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    Codec::decoder_detect(fs::File::open(path).unwrap())
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn write_file(path: &Path, bytes: &[u8], mtime: Option<SystemTime>) {
    fs::write(path, bytes).unwrap();
    if let Some(t) = mtime {
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn md5_hex(b: &[u8]) -> String {
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// A tar member written header by header, so that names the `tar` crate refuses to
/// write (`../x`) can be sent too.
fn member(out: &mut Vec<u8>, name: &str, kind: tar::EntryType, data: &[u8], mtime: u64) {
    let mut h = tar::Header::new_ustar();
    {
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o600);
    h.set_mtime(mtime);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// A put-wal stream: the files and a checksum file of `algo` (`SHA256SUMS`/`MD5SUMS`)
/// listing `sums` (name, digest).
fn stream(files: &[(&str, &[u8])], sums_file: &str, sums: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in files {
        member(&mut out, name, tar::EntryType::Regular, data, 1_700_000_000);
    }
    let text: String = sums.iter().map(|(n, d)| format!("{d} *{n}\n")).collect();
    member(
        &mut out,
        sums_file,
        tar::EntryType::Regular,
        text.as_bytes(),
        1_700_000_000,
    );
    finish(out)
}

fn assert_nothing_installed(env: &Env) {
    let wals = env.listing("wals");
    assert!(
        wals.iter().all(|n| n.ends_with("xlog.db")),
        "files were installed: {wals:?}"
    );
    assert!(env.xlogdb_names().is_empty());
    assert!(
        env.listing("incoming").is_empty(),
        "{:?}",
        env.listing("incoming")
    );
}

#[test]
fn put_wal_tar_archives_with_sha256sums_and_md5sums() {
    let Some(w) = wal() else { return };
    let env = Env::new("archiver = on\ncompression = gzip");
    let (n1, b1) = &w.segments[0];
    let (n2, b2) = &w.segments[1];
    // `./` prefixes and both checksum modes, as sha256sum writes them.
    let mut out = Vec::new();
    member(
        &mut out,
        &format!("./{n1}"),
        tar::EntryType::Regular,
        b1,
        1_700_000_001,
    );
    member(&mut out, n2, tar::EntryType::Regular, b2, 1_700_000_002);
    let sums = format!("{}  ./{n1}\n{} *{n2}\n", sha256_hex(b1), sha256_hex(b2));
    member(
        &mut out,
        "SHA256SUMS",
        tar::EntryType::Regular,
        sums.as_bytes(),
        0,
    );
    let outcomes = env.archive.put_wal_tar(&finish(out)[..]).unwrap();
    assert_eq!(outcomes.len(), 2);
    for ((name, bytes), (outcome, mtime)) in w.segments[..2]
        .iter()
        .zip(outcomes.iter().zip([1_700_000_001.0, 1_700_000_002.0]))
    {
        let PutOutcome::Archived(entry) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(entry.name.to_string(), *name);
        assert_eq!(entry.compression.as_deref(), Some("gzip"));
        assert_eq!(entry.time, mtime, "the tar member's mtime is kept");
        let stored = env.stored(name);
        assert_eq!(Codec::detect(&fs::read(&stored).unwrap()[..4]), Codec::Gzip);
        assert_eq!(decompressed(&stored), *bytes);
    }
    assert_eq!(env.xlogdb_names(), vec![n1.clone(), n2.clone()]);
    assert!(
        env.listing("incoming").is_empty(),
        "no temporary file is left"
    );

    // MD5SUMS (barman-wal-archive --md5), and a gzip member (--compression gzip).
    let (n3, b3) = &w.segments[2];
    let mut gz = Codec::Gzip
        .encoder(Vec::new(), CompressionLevel::Medium)
        .unwrap();
    gz.write_all(b3).unwrap();
    let gz = gz.finish().unwrap();
    let out = stream(&[(n3, &gz)], "MD5SUMS", &[(n3.clone(), md5_hex(&gz))]);
    let outcomes = env.archive.put_wal_tar(&out[..]).unwrap();
    assert!(matches!(outcomes[..], [PutOutcome::Archived(_)]));
    assert_eq!(decompressed(&env.stored(n3)), *b3);

    // The same stream again: already archived, nothing changes.
    let outcomes = env.archive.put_wal_tar(&out[..]).unwrap();
    assert!(matches!(outcomes[..], [PutOutcome::AlreadyArchived(_)]));
    assert_eq!(env.xlogdb_names().len(), 3);

    // Another segment's content under this name fails validation: nothing changes.
    let (_, other) = &w.segments[3];
    let out = stream(
        &[(n3, other)],
        "SHA256SUMS",
        &[(n3.clone(), sha256_hex(other))],
    );
    let err = env.archive.put_wal_tar(&out[..]).unwrap_err();
    assert!(err.to_string().contains("page address"), "{err}");
    assert_eq!(decompressed(&env.stored(n3)), *b3);

    // The same name with other valid content: the stored copy is kept, the new one set
    // aside.
    let (h, first) = (HISTORY.0, HISTORY.1.as_bytes());
    let out = stream(
        &[(h, first)],
        "SHA256SUMS",
        &[(h.to_owned(), sha256_hex(first))],
    );
    env.archive.put_wal_tar(&out[..]).unwrap();
    let other = b"1\t0/3000100\tat restore point \"other\"\n";
    let out = stream(
        &[(h, other)],
        "SHA256SUMS",
        &[(h.to_owned(), sha256_hex(other))],
    );
    let err = env.archive.put_wal_tar(&out[..]).unwrap_err();
    let Error::DuplicateDifferent { kept_as, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        kept_as
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with(".duplicate")
    );
    assert_eq!(fs::read(kept_as).unwrap(), other);
    assert_eq!(decompressed(&env.stored(h)), first);
    assert!(env.listing("incoming").is_empty());
}

#[test]
fn put_wal_tar_refuses_bad_streams_and_installs_nothing() {
    let Some(w) = wal() else { return };
    let (n1, b1) = &w.segments[0];
    let (n2, b2) = &w.segments[1];
    let good = || vec![(n1.clone(), sha256_hex(b1)), (n2.clone(), sha256_hex(b2))];
    let files: &[(&str, &[u8])] = &[(n1, b1), (n2, b2)];

    type Expect<'a> = Box<dyn Fn(&barman_core::Error) -> bool + 'a>;
    let cases: Vec<(&str, Vec<u8>, Expect<'_>)> = vec![
        (
            "bad checksum",
            stream(
                files,
                "SHA256SUMS",
                &[good()[0].clone(), (n2.clone(), sha256_hex(b1))],
            ),
            Box::new(|e| matches!(e, Error::BadChecksum { .. })),
        ),
        (
            "bad md5",
            stream(
                files,
                "MD5SUMS",
                &[(n1.clone(), md5_hex(b1)), (n2.clone(), md5_hex(b1))],
            ),
            Box::new(|e| matches!(e, Error::BadChecksum { .. })),
        ),
        (
            "missing checksum",
            stream(files, "SHA256SUMS", &good()[..1]),
            Box::new(|e| matches!(e, Error::MissingChecksum { name, .. } if name == n2)),
        ),
        (
            "no checksum file",
            finish({
                let mut out = Vec::new();
                member(&mut out, n1, tar::EntryType::Regular, b1, 0);
                out
            }),
            Box::new(|e| matches!(e, Error::MissingChecksum { .. })),
        ),
        (
            "checksum without file",
            stream(
                &files[..1],
                "SHA256SUMS",
                &[good()[0].clone(), good()[1].clone()],
            ),
            Box::new(|e| matches!(e, Error::ChecksumWithoutFile { .. })),
        ),
        (
            "path traversal",
            {
                let mut out = Vec::new();
                member(&mut out, n1, tar::EntryType::Regular, b1, 0);
                member(
                    &mut out,
                    &format!("../{n2}"),
                    tar::EntryType::Regular,
                    b2,
                    0,
                );
                finish(out)
            },
            Box::new(|e| matches!(e, Error::UnsupportedFilename { .. })),
        ),
        (
            "absolute path",
            {
                let mut out = Vec::new();
                member(&mut out, "/tmp/x", tar::EntryType::Regular, b"x", 0);
                finish(out)
            },
            Box::new(|e| matches!(e, Error::UnsupportedFilename { .. })),
        ),
        (
            "not a WAL name",
            {
                let mut out = Vec::new();
                member(&mut out, "..", tar::EntryType::Regular, b"x", 0);
                finish(out)
            },
            Box::new(|e| matches!(e, Error::UnsupportedFilename { .. })),
        ),
        (
            "directory member",
            {
                let mut out = Vec::new();
                member(&mut out, n1, tar::EntryType::Regular, b1, 0);
                member(&mut out, "pg_wal/", tar::EntryType::Directory, b"", 0);
                finish(out)
            },
            Box::new(|e| matches!(e, Error::UnsupportedFileType { kind: '5', .. })),
        ),
        (
            "symlink member",
            {
                let mut out = Vec::new();
                member(&mut out, n1, tar::EntryType::Symlink, b"", 0);
                finish(out)
            },
            Box::new(|e| matches!(e, Error::UnsupportedFileType { kind: '2', .. })),
        ),
        (
            "truncated stream",
            stream(files, "SHA256SUMS", &good())[..700_000].to_vec(),
            Box::new(|e| matches!(e, Error::Tar { .. })),
        ),
    ];
    for (what, bytes, expected) in cases {
        let env = Env::new("archiver = on\ncompression = gzip");
        let err = env.archive.put_wal_tar(&bytes[..]).unwrap_err();
        assert!(expected(&err), "{what}: unexpected error {err:?}");
        assert!(!err.to_string().is_empty());
        assert_nothing_installed(&env);
    }
    // Barman's messages, word for word.
    let env = Env::new("archiver = on");
    let err = env
        .archive
        .put_wal_tar(&stream(files, "SHA256SUMS", &good()[..1])[..])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Missing checksum for file '{n2}' in put-wal for server 'pg'")
    );
}

/// The stream Barman's own `barman-wal-archive` writes (`ChecksumTarFile`, PAX format),
/// when Barman is installed.
#[test]
fn put_wal_tar_reads_barman_wal_archive_streams() {
    let Some(w) = wal() else { return };
    // Trust, point 15: this looked only for a hard-coded venv, so it never ran in CI.
    let Some(python) = pg::tools::oracle_python() else {
        return;
    };
    for md5 in [false, true] {
        let env = Env::new("archiver = on\ncompression = zstd");
        let (name, bytes) = &w.segments[1];
        let src = env.home.path().join(name);
        write_file(
            &src,
            bytes,
            Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_650_000_000_250)),
        );
        let script = "import os, sys\nfrom contextlib import closing\nfrom barman.clients.walarchive import ChecksumTarFile\n\
            md5 = sys.argv[1] == 'md5'\n\
            with closing(ChecksumTarFile.open(mode='w|', fileobj=sys.stdout.buffer)) as tar:\n\
            \x20   tar.hash_algorithm = 'md5' if md5 else 'sha256'\n\
            \x20   tar.HASHSUMS_FILE = 'MD5SUMS' if md5 else 'SHA256SUMS'\n\
            \x20   tar.add(sys.argv[2], os.path.basename(sys.argv[2]))\n";
        let out = std::process::Command::new(&python)
            .args(["-c", script, if md5 { "md5" } else { "sha256" }])
            .arg(&src)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let outcomes = env.archive.put_wal_tar(&out.stdout[..]).unwrap();
        let [PutOutcome::Archived(entry)] = &outcomes[..] else {
            panic!("{outcomes:?}")
        };
        assert_eq!(entry.compression.as_deref(), Some("zstd"));
        assert!(
            (entry.time - 1_650_000_000.25).abs() < 1e-3,
            "{}",
            entry.time
        );
        assert_eq!(decompressed(&env.stored(name)), *bytes);
    }
}

#[test]
fn archive_wal_from_incoming() {
    let Some(w) = wal() else { return };
    let env = Env::new("archiver = on\ncompression = gzip\narchiver_batch_size = 3");
    let incoming = env.dir("incoming");
    for (name, bytes) in &w.segments[..4] {
        write_file(&incoming.join(name), bytes, None);
    }
    write_file(&incoming.join("garbage.txt"), b"junk", None);
    write_file(
        &incoming.join(format!("{}.tmp", w.segments[4].0)),
        b"partial copy",
        None,
    );
    write_file(&incoming.join(".hidden"), b"", None);
    // A segment still being copied by `cp`: refused, left in place, archived later.
    let (n5, b5) = &w.segments[4];
    write_file(&incoming.join(n5), &b5[..b5.len() / 2], None);

    // The batch: the first three names only (sorted; garbage.txt sorts last).
    let report = env.archive.archive_wal().unwrap();
    let archived: Vec<_> = report
        .archived
        .iter()
        .map(|a| a.entry.name.to_string())
        .collect();
    assert_eq!(
        archived,
        [w.segments[0].0.as_str(), &w.segments[1].0, &w.segments[2].0]
    );
    assert!(report.archived.iter().all(|a| a.archiver == Archiver::File));
    assert_eq!(report.deferred, 4);
    assert!(report.errors.is_empty() && report.failed.is_empty());

    let report = env.archive.archive_wal().unwrap();
    let archived: Vec<_> = report
        .archived
        .iter()
        .map(|a| a.entry.name.to_string())
        .collect();
    assert_eq!(archived, [w.segments[3].0.as_str()]);
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].path.ends_with(n5));
    assert!(report.errors.is_empty(), "garbage.txt is beyond the batch");
    assert_eq!(report.deferred, 1);

    // The copy completes: the next run archives it; garbage.txt goes to errors/.
    write_file(&incoming.join(n5), b5, None);
    let report = env.archive.archive_wal().unwrap();
    assert_eq!(report.archived.len(), 1, "{report:?}");
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].kind, ErrorKind::Unknown);
    let kept = report.errors[0]
        .kept_as
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        kept.starts_with("garbage.txt.") && kept.ends_with("Z.unknown"),
        "{kept}"
    );
    assert_eq!(fs::read(&report.errors[0].kept_as).unwrap(), b"junk");
    let mut expected: Vec<_> = w.segments[..5].iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(env.xlogdb_names(), expected);
    assert_eq!(
        env.listing("incoming"),
        BTreeSet::from([".hidden".to_owned(), format!("{n5}.tmp")])
    );
    for (name, bytes) in &w.segments[..5] {
        assert_eq!(decompressed(&env.stored(name)), *bytes);
    }

    // Duplicates: identical (deleted silently), different (moved to errors/); another
    // segment's content under an archived name fails validation and stays.
    let (n1, b1) = &w.segments[0];
    let (n2, _) = &w.segments[1];
    let (h, first) = (HISTORY.0, HISTORY.1.as_bytes());
    let other = b"1\t0/3000100\tat restore point \"other\"\n";
    fs::remove_file(incoming.join(format!("{n5}.tmp"))).unwrap();
    write_file(&incoming.join(h), first, None);
    assert_eq!(env.archive.archive_wal().unwrap().archived.len(), 1);
    expected.push(h.to_owned());
    write_file(&incoming.join(n1), b1, None);
    write_file(&incoming.join(n2), b1, None);
    write_file(&incoming.join(h), other, None);
    let report = env.archive.archive_wal().unwrap();
    assert_eq!(report.duplicates, [(Archiver::File, n1.parse().unwrap())]);
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].path.ends_with(n2));
    assert!(report.failed[0].error.to_string().contains("page address"));
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].kind, ErrorKind::Duplicate);
    assert!(
        report.errors[0]
            .kept_as
            .to_str()
            .unwrap()
            .ends_with(".duplicate")
    );
    assert_eq!(fs::read(&report.errors[0].kept_as).unwrap(), other);
    assert!(report.archived.is_empty());
    // A backup label file, too.
    fs::remove_file(incoming.join(n2)).unwrap();
    write_file(&incoming.join(&w.label.0), &w.label.1, None);
    let report = env.archive.archive_wal().unwrap();
    assert_eq!(report.archived.len(), 1);
    expected.push(w.label.0.clone());
    assert_eq!(env.xlogdb_names(), expected);
    assert_eq!(
        env.listing("incoming"),
        BTreeSet::from([".hidden".to_owned()])
    );
    assert_eq!(
        env.listing("errors").len(),
        2,
        "garbage.txt and the duplicate"
    );
}

#[test]
fn archive_wal_from_streaming_keeps_the_segment_pg_receivewal_needs() {
    let Some(w) = wal() else { return };
    let env = Env::new("streaming_archiver = on\narchiver = on\ncompression = lz4");
    let streaming = env.dir("streaming");
    let seg = |i: usize| &w.segments[i];
    for i in 0..3 {
        write_file(&streaming.join(&seg(i).0), &seg(i).1, None);
    }

    // No .partial: the newest complete segment stays.
    let report = env.archive.archive_wal().unwrap();
    let names: Vec<_> = report
        .archived
        .iter()
        .map(|a| a.entry.name.to_string())
        .collect();
    assert_eq!(names, [seg(0).0.as_str(), &seg(1).0]);
    assert!(
        report
            .archived
            .iter()
            .all(|a| a.archiver == Archiver::Streaming)
    );
    assert_eq!(report.kept, [streaming.join(&seg(2).0)]);

    // One .partial: it stays, every complete segment goes.
    write_file(
        &streaming.join(format!("{}.partial", seg(3).0)),
        &seg(3).1,
        None,
    );
    let report = env.archive.archive_wal().unwrap();
    assert_eq!(report.archived.len(), 1);
    assert_eq!(report.archived[0].entry.name.to_string(), seg(2).0);
    assert_eq!(
        report.kept,
        [streaming.join(format!("{}.partial", seg(3).0))]
    );

    // Two .partial files (after a timeline switch): all but the newest are archived.
    write_file(
        &streaming.join(format!("{}.partial", seg(4).0)),
        &seg(4).1,
        None,
    );
    let report = env.archive.archive_wal().unwrap();
    assert_eq!(report.archived.len(), 1, "{report:?}");
    let partial = format!("{}.partial", seg(3).0);
    assert_eq!(report.archived[0].entry.name.to_string(), partial);
    assert_eq!(decompressed(&env.stored(&partial)), seg(3).1);
    assert_eq!(
        env.listing("streaming"),
        BTreeSet::from([format!("{}.partial", seg(4).0)])
    );

    // Batch size applies to streaming/ too.
    let env = Env::new("streaming_archiver = on\narchiver = on\nstreaming_archiver_batch_size = 1");
    let streaming = env.dir("streaming");
    for i in 0..3 {
        write_file(&streaming.join(&seg(i).0), &seg(i).1, None);
    }
    write_file(&env.dir("incoming").join(&seg(4).0), &seg(4).1, None);
    let report = env.archive.archive_wal().unwrap();
    // The batch holds one file, and it is the newest of the batch: kept.
    assert!(report.archived.iter().all(|a| a.archiver == Archiver::File));
    assert_eq!(report.archived.len(), 1);
    assert_eq!(report.deferred, 2);
}

#[test]
fn archive_wal_refuses_to_run_twice_at_once() {
    let Some(w) = wal() else { return };
    let env = Env::new("archiver = on");
    write_file(
        &env.dir("incoming").join(&w.segments[0].0),
        &w.segments[0].1,
        None,
    );
    let lock = fs::File::create(env.home.path().join(".pg-archive-wal.lock")).unwrap();
    lock.lock().unwrap();
    let err = env.archive.archive_wal().unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "another archive-wal is already running for server pg"
    );
    assert_eq!(env.listing("incoming").len(), 1, "nothing was touched");
    drop(lock);

    // Two threads at once: one archives, the other is told it is busy (or finds
    // nothing left); never an error nor a file archived twice.
    for (name, bytes) in &w.segments[1..4] {
        write_file(&env.dir("incoming").join(name), bytes, None);
    }
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| s.spawn(|| env.archive.archive_wal()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut archived = 0;
    for r in results {
        match r {
            Ok(report) => archived += report.archived.len(),
            Err(Error::Busy { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(archived, 4);
    assert_eq!(env.xlogdb_names().len(), 4);
}

#[test]
fn get_wal_finds_decompresses_and_peeks() {
    let Some(w) = wal() else { return };
    let env = Env::new("archiver = on\ncompression = gzip");
    let src = env.home.path().join("src");
    fs::create_dir(&src).unwrap();
    for (name, bytes) in &w.segments[..3] {
        write_file(&src.join(name), bytes, None);
        env.archive.put_wal(&src.join(name)).unwrap();
    }
    let (n1, b1) = &w.segments[0];
    let opts = GetWalOptions::default();

    // Decompressed by default.
    let mut out = Vec::new();
    let found = env.archive.get_wal(n1, &opts, &mut out).unwrap();
    assert_eq!(out, *b1);
    assert_eq!(found.stored_codec, Codec::Gzip);
    assert_eq!(found.source, env.stored(n1));

    // As stored with keep_compression.
    let mut out = Vec::new();
    let keep = GetWalOptions {
        keep_compression: true,
        ..opts
    };
    env.archive.get_wal(n1, &keep, &mut out).unwrap();
    assert_eq!(out, fs::read(env.stored(n1)).unwrap());

    // Recompressed for the transfer.
    let mut out = Vec::new();
    let bz = GetWalOptions {
        compression: Some(Codec::Bzip2),
        ..opts
    };
    env.archive.get_wal(n1, &bz, &mut out).unwrap();
    assert_eq!(Codec::detect(&out[..3]), Codec::Bzip2);
    let mut plain = Vec::new();
    Codec::decoder_detect(&out[..])
        .unwrap()
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, *b1);

    // Into a directory, atomically.
    let dest = env.home.path().join("restore");
    fs::create_dir(&dest).unwrap();
    let (path, _) = env.archive.get_wal_to_dir(n1, &opts, &dest).unwrap();
    assert_eq!(path, dest.join(n1));
    assert_eq!(fs::read(&path).unwrap(), *b1);
    assert_eq!(
        fs::read_dir(&dest).unwrap().count(),
        1,
        "no temporary file left"
    );
    let err = env
        .archive
        .get_wal_to_dir(n1, &opts, &dest.join("missing"))
        .unwrap_err();
    assert!(matches!(err, Error::OutputFile { .. }), "{err:?}");

    // incoming/ and streaming/ are searched too; .partial only when asked.
    let (n4, b4) = &w.segments[3];
    let (n5, b5) = &w.segments[4];
    write_file(&env.dir("incoming").join(n4), b4, None);
    write_file(
        &env.dir("streaming").join(format!("{n5}.partial")),
        b5,
        None,
    );
    let mut out = Vec::new();
    env.archive.get_wal(n4, &opts, &mut out).unwrap();
    assert_eq!(out, *b4);
    let err = env.archive.get_wal(n5, &opts, &mut Vec::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("WAL file '{n5}' not found in server 'pg'")
    );
    let mut out = Vec::new();
    let partial = GetWalOptions {
        partial: true,
        ..opts
    };
    let found = env.archive.get_wal(n5, &partial, &mut out).unwrap();
    assert_eq!(out, *b5);
    assert!(found.source.ends_with(format!("streaming/{n5}.partial")));

    // Bad names (exit code 3 in the CLI).
    for bad in [
        "00000001000000000000000G",
        "../../etc/passwd",
        "000000010000000000000001.gz",
    ] {
        let err = env
            .archive
            .get_wal(bad, &opts, &mut Vec::new())
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidWalName { .. }),
            "{bad}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("'{bad}' is not a valid wal file name")
        );
    }

    // Peek: consecutive existing names (archived, incoming, streaming without .partial).
    let names = |v: Vec<WalFileName>| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let all: Vec<_> = w.segments[..4].iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names(env.archive.peek_wal(n1, 10).unwrap()), all);
    assert_eq!(names(env.archive.peek_wal(n1, 2).unwrap()), all[..2]);
    assert!(env.archive.peek_wal(n5, 10).unwrap().is_empty());
    assert_eq!(
        names(env.archive.peek_wal(&w.label.0, 3).unwrap()),
        Vec::<String>::new()
    );

    // Past a possible end of log (a power-of-two segment number is missing), the next
    // log is tried.
    let incoming = env.dir("incoming");
    for n in [
        "0000000100000005000000FE",
        "0000000100000005000000FF",
        "000000010000000600000000",
        "000000010000000600000001",
        "000000010000000600000003",
    ] {
        write_file(&incoming.join(n), b"", None);
    }
    assert_eq!(
        names(
            env.archive
                .peek_wal("0000000100000005000000FE", 10)
                .unwrap()
        ),
        [
            "0000000100000005000000FE",
            "0000000100000005000000FF",
            "000000010000000600000000",
            "000000010000000600000001"
        ]
    );
}

/// `get-wal --tar`: the segments asked for that exist, in the order asked, decompressed
/// (or as stored with keep_compression); missing ones left out; a bad name, or one that
/// is not a segment, refused before anything is written.
#[test]
fn get_wals_tar_sends_what_exists() {
    let Some(w) = wal() else { return };
    let env = Env::new("archiver = on\ncompression = gzip");
    let src = env.home.path().join("src");
    fs::create_dir(&src).unwrap();
    for (name, bytes) in &w.segments[..2] {
        write_file(&src.join(name), bytes, None);
        env.archive.put_wal(&src.join(name)).unwrap();
    }
    // Not archived yet, plain, in incoming/.
    let (n3, b3) = &w.segments[2];
    write_file(&env.dir("incoming").join(n3), b3, None);
    let (n1, b1) = &w.segments[0];
    let (n2, b2) = &w.segments[1];
    let missing = &w.segments[4].0;
    let asked = [n3.as_str(), missing.as_str(), n1.as_str(), n2.as_str()];
    let members = |tar_bytes: &[u8]| -> Vec<(String, Vec<u8>, u32)> {
        tar::Archive::new(tar_bytes)
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let mode = e.header().mode().unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (name, data, mode)
            })
            .collect()
    };

    // Decompressed, as get-wal does.
    let mut out = Vec::new();
    let sent = env
        .archive
        .get_wals_tar(&asked, &TarWalOptions::default(), &mut out)
        .unwrap();
    let sent: Vec<String> = sent.iter().map(ToString::to_string).collect();
    assert_eq!(sent, [n3.clone(), n1.clone(), n2.clone()]);
    let got = members(&out);
    let names: Vec<&str> = got.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(names, [n3.as_str(), n1, n2]);
    assert!(got[0].1 == *b3 && got[1].1 == *b1 && got[2].1 == *b2);
    assert!(got.iter().all(|m| m.2 == 0o600));

    // As stored with keep_compression.
    let keep = TarWalOptions {
        keep_compression: true,
        ..TarWalOptions::default()
    };
    let mut stored = Vec::new();
    env.archive
        .get_wals_tar(&asked, &keep, &mut stored)
        .unwrap();
    let got = members(&stored);
    assert!(got[0].1 == *b3, "a plain file as is");
    assert!(got[1].1 == fs::read(env.stored(n1)).unwrap());
    assert_eq!(Codec::detect(&got[1].1), Codec::Gzip);

    // The same through an lz4 stream: smaller, and the same bytes once decoded.
    let lz4 = TarWalOptions {
        stream: Codec::Lz4,
        ..TarWalOptions::default()
    };
    let mut packed = Vec::new();
    env.archive.get_wals_tar(&asked, &lz4, &mut packed).unwrap();
    assert_eq!(Codec::detect(&packed), Codec::Lz4);
    assert!(
        packed.len() < out.len(),
        "{} >= {}",
        packed.len(),
        out.len()
    );
    let mut unpacked = Vec::new();
    Codec::decoder_detect(&packed[..])
        .unwrap()
        .read_to_end(&mut unpacked)
        .unwrap();
    assert!(unpacked == out);

    // Nothing at all: an empty (but valid) stream.
    let mut out = Vec::new();
    assert!(
        env.archive
            .get_wals_tar(&[missing], &TarWalOptions::default(), &mut out)
            .unwrap()
            .is_empty()
    );
    assert!(members(&out).is_empty());

    // A bad name, or a history file, anywhere: refused, nothing written.
    for bad in ["../../etc/passwd", "00000002.history"] {
        let mut out = Vec::new();
        let err = env
            .archive
            .get_wals_tar(&[n1.as_str(), bad], &lz4, &mut out)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidWalName { .. }), "{err:?}");
        assert!(out.is_empty());
    }
}

/// A stored file whose content does not match its segment size never makes a member
/// that looks complete: the stream stops inside it.
#[test]
fn get_wals_tar_stops_inside_a_damaged_member() {
    let Some(w) = wal() else { return };
    let env = Env::new("archiver = on\ncompression = gzip");
    let src = env.home.path().join("src");
    fs::create_dir(&src).unwrap();
    let (n1, b1) = &w.segments[0];
    let (n2, b2) = &w.segments[1];
    for (name, bytes) in [(n1, b1), (n2, b2)] {
        write_file(&src.join(name), bytes, None);
        env.archive.put_wal(&src.join(name)).unwrap();
    }
    // The second one, recompressed without its last page.
    let short = &b2[..b2.len() - 8192];
    let mut gz = Codec::Gzip
        .encoder(Vec::new(), barman_wal::CompressionLevel::Low)
        .unwrap();
    gz.write_all(short).unwrap();
    fs::write(env.stored(n2), gz.finish().unwrap()).unwrap();
    let mut out = Vec::new();
    let err = env
        .archive
        .get_wals_tar(
            &[n1.as_str(), n2.as_str()],
            &TarWalOptions::default(),
            &mut out,
        )
        .unwrap_err();
    assert!(err.to_string().contains(n2.as_str()), "{err}");
    // The first member is whole; the stream ends inside the second (which the
    // receiver's length check then rejects), with nothing after it.
    let mut archive = tar::Archive::new(&out[..]);
    let mut entries = archive.entries().unwrap();
    let mut first = entries.next().unwrap().unwrap();
    let mut data = Vec::new();
    first.read_to_end(&mut data).unwrap();
    assert!(data == *b1);
    drop(first);
    let mut second = entries.next().unwrap().unwrap();
    let promised = second.header().size().unwrap();
    assert_eq!(promised, b2.len() as u64);
    let mut data = Vec::new();
    let _ = second.read_to_end(&mut data);
    assert!((data.len() as u64) < promised, "{} bytes", data.len());
    assert!(b2.starts_with(&data));
}

#[test]
fn rebuild_xlogdb_reproduces_what_put_wal_wrote() {
    let Some(w) = wal() else { return };
    let env = Env::new("archiver = on\ncompression = zstd");
    let src = env.home.path().join("src");
    fs::create_dir(&src).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = w.segments[..4].to_vec();
    files.push(w.label.clone());
    files.push((HISTORY.0.to_owned(), HISTORY.1.as_bytes().to_vec()));
    files.push((
        format!("{}.partial", w.segments[4].0),
        w.segments[4].1.clone(),
    ));
    for (i, (name, bytes)) in files.iter().enumerate() {
        let t = SystemTime::UNIX_EPOCH
            + Duration::from_nanos(1_700_000_000_123_456_789 + i as u64 * 1_000_000_007);
        write_file(&src.join(name), bytes, Some(t));
        env.archive.put_wal(&src.join(name)).unwrap();
    }
    let before = fs::read_to_string(env.archive.xlogdb_path()).unwrap();
    assert_eq!(before.lines().count(), files.len());

    // Leftovers a rebuild must skip.
    let hash = env.stored(&w.segments[0].0).parent().unwrap().to_owned();
    write_file(&hash.join(format!("{}.tmp", w.segments[0].0)), b"", None);
    write_file(&hash.join("README"), b"", None);
    fs::create_dir(hash.join("sub")).unwrap();
    write_file(&env.archive.wals_dir().join("notes.txt"), b"", None);

    fs::write(env.archive.xlogdb_path(), "garbage\n").unwrap();
    let report = env.archive.rebuild_xlogdb().unwrap();
    assert_eq!(
        (
            report.history,
            report.backup_labels,
            report.wal_files,
            report.partial
        ),
        (1, 1, 4, 1)
    );
    let reasons: BTreeSet<_> = report
        .skipped
        .iter()
        .map(|s| {
            (
                s.path.file_name().unwrap().to_str().unwrap().to_owned(),
                format!("{:?}", s.reason),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from([
            (format!("{}.tmp", w.segments[0].0), "Temporary".to_owned()),
            ("README".to_owned(), "Unexpected".to_owned()),
            ("sub".to_owned(), "Directory".to_owned()),
            ("notes.txt".to_owned(), "Unexpected".to_owned()),
        ])
    );
    let after = fs::read_to_string(env.archive.xlogdb_path()).unwrap();
    let sorted = |s: &str| s.lines().map(str::to_owned).collect::<BTreeSet<_>>();
    assert_eq!(
        sorted(&after),
        sorted(&before),
        "before:\n{before}\nafter:\n{after}"
    );
    // History files first, then the hash directories in order.
    assert!(after.starts_with(HISTORY.0));
    // Rebuilding with no xlog.db at all works too.
    fs::remove_file(env.archive.xlogdb_path()).unwrap();
    env.archive.rebuild_xlogdb().unwrap();
    assert_eq!(
        fs::read_to_string(env.archive.xlogdb_path()).unwrap(),
        after
    );
}

#[test]
fn check_wal_archive_as_barman() {
    let Some(w) = wal() else { return };
    let env = Env::new("archiver = on");
    // Empty (and no xlog.db yet): usable.
    env.archive.check_wal_archive(None).unwrap();
    env.archive
        .check_wal_archive(Some(TimelineId::new(1)))
        .unwrap();

    let src = env.home.path().join("src");
    fs::create_dir(&src).unwrap();
    for (name, bytes) in &w.segments[..2] {
        write_file(&src.join(name), bytes, None);
        env.archive.put_wal(&src.join(name)).unwrap();
    }
    let msg = |r: barman_core::Result<()>| r.unwrap_err().to_string();
    assert_eq!(
        msg(env.archive.check_wal_archive(None)),
        "WAL archive check failed for server pg: Expected empty archive"
    );
    assert_eq!(
        msg(env.archive.check_wal_archive(Some(TimelineId::new(1)))),
        "WAL archive check failed for server pg: Found 2 files in WAL archive equal to or newer than timeline 1"
    );
    env.archive
        .check_wal_archive(Some(TimelineId::new(2)))
        .unwrap();

    write_file(&src.join(HISTORY.0), HISTORY.1.as_bytes(), None);
    env.archive.put_wal(&src.join(HISTORY.0)).unwrap();
    assert_eq!(
        msg(env.archive.check_wal_archive(Some(TimelineId::new(2)))),
        "WAL archive check failed for server pg: Found 1 file in WAL archive equal to or newer than timeline 2"
    );
    env.archive
        .check_wal_archive(Some(TimelineId::new(3)))
        .unwrap();
    assert!(
        msg(env.archive.check_wal_archive(Some(TimelineId::new(0))))
            .contains("malformed timeline 0")
    );

    // A name that is not a WAL file in the catalogue.
    let mut db = fs::read_to_string(env.archive.xlogdb_path()).unwrap();
    db.push_str("somefile\t1\t1.0\tNone\tNone\n");
    fs::write(env.archive.xlogdb_path(), db).unwrap();
    assert_eq!(
        msg(env.archive.check_wal_archive(Some(TimelineId::new(3)))),
        "WAL archive check failed for server pg: Unexpected file somefile found in WAL archive"
    );
}

#[test]
fn put_wal_relists_a_file_installed_before_a_crash() {
    let Some(w) = wal() else { return };
    let env = Env::new("archiver = on\ncompression = gzip");
    let src = env.home.path().join("src");
    fs::create_dir(&src).unwrap();
    let (name, bytes) = &w.segments[0];
    write_file(&src.join(name), bytes, None);
    env.archive.put_wal(&src.join(name)).unwrap();
    // The crash window: file installed, xlog.db line lost.
    fs::write(env.archive.xlogdb_path(), "").unwrap();
    let outcome = env.archive.put_wal(&src.join(name)).unwrap();
    assert!(matches!(outcome, PutOutcome::AlreadyArchived(_)));
    assert_eq!(env.xlogdb_names(), [name.as_str()]);
    let line = fs::read_to_string(env.archive.xlogdb_path()).unwrap();
    assert!(line.contains("\tgzip\tNone"), "{line}");
    // And it is not listed twice.
    env.archive.put_wal(&src.join(name)).unwrap();
    assert_eq!(env.xlogdb_names().len(), 1);
}

/// Trust, point 9: an xlog.db line went out in several writes, so a reader could see
/// half of one, and a line torn by a crash was never repaired: the next append was
/// glued to it.
#[test]
fn a_torn_xlogdb_line_is_never_read_and_is_repaired_by_the_next_append() {
    let Some(wal) = wal() else { return };
    let env = Env::new("archiver = on");
    let src = env.dir("src");
    let put = |i: usize| {
        let (name, bytes) = &wal.segments[i];
        fs::write(src.join(name), bytes).unwrap();
        env.archive.put_wal(&src.join(name)).unwrap();
        name.clone()
    };
    let (n0, n1) = (put(0), put(1));
    let db = env.archive.xlogdb_path().to_owned();
    let text = fs::read_to_string(&db).unwrap();
    // A crash in the middle of the last line.
    fs::write(&db, &text[..text.len() - 7]).unwrap();
    let torn = fs::read_to_string(&db).unwrap();
    let index = barman_catalog::WalIndex::parse("xlog.db", &torn).unwrap();
    let listed: Vec<String> = index.names().map(|n| n.to_string()).collect();
    assert_eq!(
        listed,
        std::slice::from_ref(&n0),
        "half a line read as an entry"
    );

    // The next append cuts the torn line off and lists its (archived) file again.
    let n2 = put(2);
    let text = fs::read_to_string(&db).unwrap();
    assert!(text.ends_with('\n'), "{text}");
    for line in text.lines() {
        barman_catalog::XlogDbEntry::parse_line(line).unwrap();
    }
    let mut names = env.xlogdb_names();
    names.sort();
    assert_eq!(names, [n0.clone(), n1.clone(), n2.clone()]);

    // A fragment naming nothing archived just goes.
    let mut f = fs::OpenOptions::new().append(true).open(&db).unwrap();
    f.write_all(b"0000000100000000000000FE\t16").unwrap();
    drop(f);
    let n3 = put(3);
    let mut names = env.xlogdb_names();
    names.sort();
    assert_eq!(names, [n0, n1, n2, n3]);
}

/// Trust, point 9: a full disk under xlog.db. The append fails without leaving half a
/// line, and once there is room the same WAL file archives and is listed.
#[test]
fn a_full_disk_under_xlogdb_leaves_no_half_line() {
    let Some(wal) = wal() else { return };
    let Some(small) = pg::tools::SmallFs::mount("8k") else {
        return;
    };
    let env = Env::new(&format!(
        "archiver = on\nxlogdb_directory = {}",
        small.path().display()
    ));
    let db = env.archive.xlogdb_path().to_owned();
    // xlog.db one page short of full, the other page taken.
    let mut lines = String::new();
    let mut n = 0u32;
    while lines.len() < 4096 - 40 {
        lines.push_str(&format!("{:08X}.history\t42\t1795000000.0\tNone\n", n + 2));
        n += 1;
    }
    fs::write(&db, &lines).unwrap();
    let filler = small.path().join("filler");
    let room = fs::write(&filler, vec![0u8; 4096]);
    assert!(room.is_ok(), "{room:?}");
    let before = fs::read(&db).unwrap();

    let src = env.dir("src");
    let (name, bytes) = &wal.segments[0];
    fs::write(src.join(name), bytes).unwrap();
    let err = env
        .archive
        .put_wal(&src.join(name))
        .unwrap_err()
        .to_string();
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(
        fs::read(&db).unwrap(),
        before,
        "half a line left in xlog.db"
    );

    // Room again: the same file archives (already in wals/, now listed).
    fs::remove_file(&filler).unwrap();
    env.archive.put_wal(&src.join(name)).unwrap();
    let text = fs::read_to_string(&db).unwrap();
    assert!(text.starts_with(&lines) && text.ends_with('\n'));
    assert_eq!(
        text.lines().last().unwrap().split('\t').next(),
        Some(name.as_str())
    );
}

/// Trust, point 14: the archive hooks were accepted and never run. They run around
/// each file stored, whichever way it came (put-wal here), with Barman's variables; a
/// pre retry script's exit 63 stops the archiving of that file.
#[test]
fn archive_hooks_run_around_each_file_stored() {
    let Some(wal) = wal() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hooks.log");
    let script = |tag: &str| {
        format!(
            "echo \"{tag} $BARMAN_HOOK $BARMAN_PHASE $BARMAN_SEGMENT $BARMAN_FILE $BARMAN_SIZE $BARMAN_COMPRESSION|$BARMAN_ERROR\" >> {}",
            log.display()
        )
    };
    let env = Env::new(&format!(
        "archiver = on\ncompression = gzip\npre_archive_script = {}\npost_archive_retry_script = {}\npost_archive_script = {}\n",
        script("A"),
        script("B"),
        script("C")
    ));
    let src = env.dir("src");
    let (name, bytes) = &wal.segments[0];
    fs::write(src.join(name), bytes).unwrap();
    env.archive.put_wal(&src.join(name)).unwrap();
    let stored = env.stored(name);
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "A archive_script pre {name} {} {} |",
            src.join(name).display(),
            bytes.len()
        )
    );
    let size = fs::metadata(&stored).unwrap().len();
    assert_eq!(
        lines[1],
        format!(
            "B archive_retry_script post {name} {} {size} gzip|",
            stored.display()
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "C archive_script post {name} {} {size} gzip|",
            stored.display()
        )
    );
    assert!(env.archive.take_hook_warnings().is_empty());

    // Exit 63 before: not archived, and the post hooks are told why.
    let env = Env::new(&format!(
        "archiver = on\npre_archive_retry_script = exit 63\npost_archive_script = {}\n",
        script("D")
    ));
    let (name, bytes) = &wal.segments[1];
    fs::write(src.join(name), bytes).unwrap();
    let e = env.archive.put_wal(&src.join(name)).unwrap_err();
    assert!(e.to_string().contains("requested to stop"), "{e}");
    assert!(!env.stored(name).exists());
    let text = fs::read_to_string(&log).unwrap();
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("D archive_script post {name} ")),
        "{last}"
    );
    assert!(last.contains("requested to stop"), "{last}");
}

#[test]
fn put_wal_from_a_reader_keeps_put_wals_promises() {
    let Some(w) = wal() else { return };
    let env = Env::new("archiver = on\ncompression = zstd");
    let (n1, b1) = &w.segments[0];
    // A reader that hands the bytes over in small pieces, as a network would.
    struct Trickle<'a>(&'a [u8]);
    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(4096);
            let (head, tail) = self.0.split_at(n);
            buf[..n].copy_from_slice(head);
            self.0 = tail;
            Ok(n)
        }
    }
    let outcome = env.archive.put_wal_from(n1, Trickle(b1)).unwrap();
    assert!(matches!(outcome, PutOutcome::Archived(_)), "{outcome:?}");
    assert_eq!(decompressed(&env.stored(n1)), *b1);
    assert_eq!(env.xlogdb_names(), std::slice::from_ref(n1));
    // The same bytes again: success, nothing changes.
    let again = env.archive.put_wal_from(n1, &b1[..]).unwrap();
    assert!(matches!(again, PutOutcome::AlreadyArchived(_)), "{again:?}");
    assert_eq!(env.xlogdb_names(), std::slice::from_ref(n1));
    // Another segment's bytes under this name fail validation; the stored copy stays.
    let (_, b2) = &w.segments[1];
    let err = env.archive.put_wal_from(n1, &b2[..]).unwrap_err();
    assert!(err.to_string().contains("page address"), "{err}");
    // A different valid history file under a stored name is set aside.
    let (h, first) = (HISTORY.0, HISTORY.1.as_bytes());
    env.archive.put_wal_from(h, first).unwrap();
    let other = b"1\t0/3000100\tat restore point \"other\"\n";
    let err = env.archive.put_wal_from(h, &other[..]).unwrap_err();
    let Error::DuplicateDifferent { kept_as, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(fs::read(kept_as).unwrap(), other);
    assert_eq!(decompressed(&env.stored(h)), first);
    // Not a WAL name; a reader that fails: nothing is installed or left behind.
    let err = env
        .archive
        .put_wal_from("pg_wal/../x", &b1[..])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidWalName { .. }), "{err}");
    struct Broken;
    impl std::io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("connection reset"))
        }
    }
    let (n3, _) = &w.segments[2];
    let err = env.archive.put_wal_from(n3, Broken).unwrap_err();
    assert!(err.to_string().contains("connection reset"), "{err}");
    assert!(!env.stored(n3).exists());
    assert!(
        env.listing("incoming").is_empty(),
        "{:?}",
        env.listing("incoming")
    );
}
