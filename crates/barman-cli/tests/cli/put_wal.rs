//! `barman put-wal` as PostgreSQL's `archive_command`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use barman_catalog::{Identity, WalIndex};
use barman_testkit::{self as pg, PgCluster};
use barman_wal::{Codec, WalFileName};

use crate::support::{BARMAN, barman};

struct Setup {
    pg: PgCluster,
    home: PathBuf,
    conf: PathBuf,
}

fn setup(compression: &str) -> Option<Setup> {
    let bin = pg::require()?;
    // The cluster's directory belongs to the server's user: barman_home goes inside it
    // so that archive_command, run by that user, can write it.
    let pg = PgCluster::start(&bin, &["--wal-segsize=1"], &[]).unwrap();
    let home = pg.dir().join("barman");
    let plain = pg.dir().join("plain");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&plain).unwrap();
    let conf = pg.dir().join("barman.conf");
    std::fs::write(
        &conf,
        format!(
            "[barman]\nbarman_home = {}\n\n[pg]\ndescription = \"test server\"\nconninfo = host={} port=5432 user=postgres dbname=postgres\narchiver = on\ncompression = {compression}\nbackup_method = postgres\n",
            home.display(),
            pg.dir().display()
        ),
    )
    .unwrap();
    pg.give_to_server_user(pg.dir()).unwrap();
    // Archive through barman, keeping a plain copy of each file to compare with.
    let cmd = format!(
        "archive_command = 'cp %p {}/%f && {BARMAN} -q -c {} put-wal pg %p'",
        plain.display(),
        conf.display()
    );
    pg.sql(&format!(
        "ALTER SYSTEM SET {}",
        cmd.replacen(" = ", " TO ", 1)
    ))
    .unwrap();
    pg.sql("SELECT pg_reload_conf()").unwrap();
    Some(Setup { pg, home, conf })
}

fn decompressed(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    Codec::decoder_detect(std::fs::File::open(path).unwrap())
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn archive_command_archives_every_segment_durably_and_refuses_bad_input() {
    let Some(s) = setup("zstd") else { return };
    let pg = &s.pg;
    pg.sql("CREATE TABLE t (id int, c text)").unwrap();
    for i in 0..4 {
        pg.sql(&format!(
            "INSERT INTO t SELECT g, md5(g::text) FROM generate_series({}, {}) g",
            i * 5000,
            i * 5000 + 4999
        ))
        .unwrap();
        pg.sql("SELECT pg_switch_wal()").unwrap();
    }
    let last = pg.sql("SELECT pg_walfile_name(pg_switch_wal())").unwrap();
    let wals = s.home.join("pg/wals");
    // Archived means listed in xlog.db (put-wal installs the file, then appends its line).
    let listed = || {
        std::fs::read_to_string(wals.join("pg-xlog.db")).is_ok_and(|t| t.contains(last.as_str()))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !listed() {
        assert!(
            std::time::Instant::now() < deadline,
            "{last} not archived; server log:\n{}",
            pg.server_log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // Every file PostgreSQL handed over is archived, zstd-compressed, and decompresses to
    // the very bytes PostgreSQL wrote; xlog.db lists each once.
    let index = WalIndex::parse(
        "xlog.db",
        &std::fs::read_to_string(wals.join("pg-xlog.db")).unwrap(),
    )
    .unwrap();
    let plain = pg.dir().join("plain");
    let mut count = 0;
    for entry in std::fs::read_dir(&plain).unwrap() {
        let path = entry.unwrap().path();
        // Only what PostgreSQL had archived up to `last` (later ones may be in flight).
        if path.file_name().unwrap().to_str().unwrap() > last.as_str() {
            continue;
        }
        let name: WalFileName = path.file_name().unwrap().to_str().unwrap().parse().unwrap();
        let stored = if name.is_history() {
            wals.join(name.to_string())
        } else {
            wals.join(name.hash_dir()).join(name.to_string())
        };
        let raw = std::fs::read(&stored).unwrap();
        assert_eq!(Codec::detect(&raw), Codec::Zstd, "{name}");
        assert_eq!(
            decompressed(&stored),
            std::fs::read(&path).unwrap(),
            "{name}"
        );
        let e = index
            .get(&name)
            .unwrap_or_else(|| panic!("{name} not in xlog.db"));
        assert_eq!(
            (e.size, e.compression.as_deref()),
            (raw.len() as u64, Some("zstd"))
        );
        count += 1;
    }
    assert!(count >= 4, "{count}");
    assert!(index.len() >= count);
    let id = Identity::parse(
        "identity.json",
        &std::fs::read_to_string(s.home.join("pg/identity.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        id.system_id().unwrap().to_string(),
        pg.sql("SELECT system_identifier FROM pg_control_system()")
            .unwrap()
    );
    assert_eq!(id.version, "15");

    operations(&s, &plain, &last);
    bad_input(&s, &plain, &last);
}

/// The other commands on the same live server and archive.
fn operations(s: &Setup, plain: &Path, last: &str) {
    let conf = &s.conf;
    // check: everything that applies passes (the archive has WAL, the cluster is right).
    let (code, out, err) = barman(conf, &["check", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("Server pg:\n"), "{out}");
    for line in [
        "\tPostgreSQL: OK",
        "\twal_level: OK",
        "\tarchive_mode: OK",
        "\tarchive_command: OK",
        "\tcontinuous archiving: OK",
        "\tsystemid coherence: OK",
    ] {
        assert!(out.contains(line), "{line} missing in\n{out}");
    }
    let (code, out, _) = barman(conf, &["check", "--nagios", "pg"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("BARMAN OK - Ready to serve the Espresso backup for pg"),
        "{out}"
    );
    let (code, json, _) = barman(conf, &["-f", "json", "status", "pg"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        v["pg"]["pg_version"]
            .as_str()
            .unwrap_or("")
            .starts_with("15."),
        "{json}"
    );

    // get-wal: the decompressed bytes, to stdout and into a directory; peek.
    let out = Command::new(BARMAN)
        .arg("-c")
        .arg(conf)
        .args(["get-wal", "pg", last])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, std::fs::read(plain.join(last)).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = barman(
        conf,
        &["get-wal", "-o", dir.path().to_str().unwrap(), "pg", last],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(dir.path().join(last)).unwrap(),
        std::fs::read(plain.join(last)).unwrap()
    );
    let first = std::fs::read_dir(plain)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.len() == 24)
        .min()
        .unwrap();
    let (code, out, _) = barman(conf, &["get-wal", "--peek", "2", "pg", &first]);
    assert_eq!((code, out.lines().count()), (0, 2), "{out}");
    assert_eq!(
        barman(conf, &["get-wal", "pg", "00000001000000000000FFFF"]).0,
        1
    );
    assert_eq!(barman(conf, &["get-wal", "pg", "not-a-wal"]).0, 3);

    // rebuild-xlogdb gives back the same lines.
    let xlogdb = s.home.join("pg/wals/pg-xlog.db");
    let mut before: Vec<String> = std::fs::read_to_string(&xlogdb)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let (code, out, err) = barman(conf, &["rebuild-xlogdb", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    let mut after: Vec<String> = std::fs::read_to_string(&xlogdb)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    before.sort();
    after.sort();
    let names = |v: &[String]| {
        v.iter()
            .map(|l| l.split('\t').take(2).collect::<Vec<_>>().join("\t"))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&before), names(&after));

    // switch-wal --force closes a segment, which PostgreSQL then archives through us.
    let (code, out, err) = barman(conf, &["switch-wal", "--force", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("has been closed on server 'pg'"), "{out}");
    // check-wal-archive: this archive is in use by timeline 1.
    let (code, _, err) = barman(conf, &["check-wal-archive", "pg"]);
    assert_eq!(code, 1, "{err}");
    // archive-wal with nothing in incoming/: nothing to do, success.
    assert_eq!(barman(conf, &["archive-wal", "pg"]).0, 0);
    // cron archives what arrives in incoming/ (an identical copy is simply dropped).
    let incoming = s.home.join("pg/incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    std::fs::copy(plain.join(last), incoming.join(last)).unwrap();
    let (code, out, err) = barman(conf, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!incoming.join(last).exists(), "{out}");
}

fn bad_input(s: &Setup, plain: &Path, last: &str) {
    let scratch = tempfile::tempdir().unwrap();
    let segment = plain.join(last);
    let bytes = std::fs::read(&segment).unwrap();
    let before = std::fs::read_to_string(s.home.join("pg/wals/pg-xlog.db")).unwrap();
    let put = |path: &Path| barman(&s.conf, &["put-wal", "pg", path.to_str().unwrap()]);

    // The same segment again: success, nothing changes.
    let (code, _, err) = put(&segment);
    assert_eq!(code, 0, "{err}");

    // Truncated.
    let truncated = scratch.path().join(last);
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let (code, _, err) = put(&truncated);
    assert_eq!(code, 1);
    assert!(
        err.contains("truncated") && err.lines().count() == 1,
        "{err}"
    );

    // Renamed (the next segment's name on this segment's content).
    let size = barman_wal::WalSegSize::new(1 << 20).unwrap();
    let next = last
        .parse::<barman_wal::SegmentName>()
        .unwrap()
        .next(size)
        .unwrap();
    let renamed = scratch.path().join(next.to_string());
    std::fs::write(&renamed, &bytes).unwrap();
    let (code, _, err) = put(&renamed);
    assert_eq!(code, 1);
    assert!(err.contains("page address"), "{err}");

    // From another cluster: the committed fixture segment (another system id).
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../barman-wal/tests/data/pg15/000000010000000000000002.gz");
    let foreign = scratch.path().join("000000010000000000000002");
    std::fs::write(&foreign, decompressed(&fixture)).unwrap();
    let (code, _, err) = put(&foreign);
    assert_eq!(code, 1);
    assert!(
        err.contains("WAL from system") && err.contains("identity.json"),
        "{err}"
    );

    // Not a WAL name, and a compressed suffix.
    let odd = scratch.path().join("000000010000000000000002.gz");
    std::fs::write(&odd, b"x").unwrap();
    let (code, _, err) = put(&odd);
    assert_eq!(code, 1);
    assert!(err.contains("invalid WAL file name"), "{err}");

    // A duplicate with different content: the archived copy stays, the new one goes to
    // errors/.
    let history = scratch.path().join("00000002.history");
    std::fs::write(&history, "1\t0/3000000\tno recovery target specified\n").unwrap();
    assert_eq!(put(&history).0, 0);
    std::fs::write(&history, "1\t0/3000100\tat restore point \"other\"\n").unwrap();
    let (code, _, err) = put(&history);
    assert_eq!(code, 1);
    assert!(
        err.contains("different content") && err.contains("errors/00000002.history."),
        "{err}"
    );
    assert_eq!(
        String::from_utf8(decompressed(&s.home.join("pg/wals/00000002.history"))).unwrap(),
        "1\t0/3000000\tno recovery target specified\n"
    );
    // The source is PostgreSQL's file in pg_wal/: it stays where it is, untouched, and
    // errors/ holds a copy (it used to be moved there, emptying pg_wal/).
    assert_eq!(
        std::fs::read_to_string(&history).unwrap(),
        "1\t0/3000100\tat restore point \"other\"\n"
    );
    let kept = err
        .split_whitespace()
        .find(|w| w.contains("errors/00000002.history."))
        .unwrap()
        .trim_matches(|c: char| c == '\'' || c == '"' || c == ')' || c == '(' || c == ',');
    assert_eq!(
        std::fs::read(kept).unwrap(),
        std::fs::read(&history).unwrap()
    );
    // PostgreSQL offers it again and again: errors/ keeps one copy, not one per call.
    let (code, _, err2) = put(&history);
    assert_eq!(code, 1);
    assert!(err2.contains(kept), "{err2}");
    let copies = std::fs::read_dir(s.home.join("pg/errors"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("00000002.history.")
        })
        .count();
    assert_eq!(copies, 1);

    // Nothing was added to xlog.db but the one history file.
    let after = std::fs::read_to_string(s.home.join("pg/wals/pg-xlog.db")).unwrap();
    assert_eq!(after.lines().count(), before.lines().count() + 1);
    assert!(after.starts_with(&before));

    // An unknown server and a broken configuration: one line, exit 1.
    let (code, _, err) = barman(&s.conf, &["put-wal", "nope", segment.to_str().unwrap()]);
    assert_eq!((code, err.trim()), (1, "ERROR: unknown server 'nope'"));
    let broken = scratch.path().join("broken.conf");
    std::fs::write(
        &broken,
        "[barman]\nbarman_home = /tmp\n[pg]\nconninfo = x\nminimum_redundancy = two\n",
    )
    .unwrap();
    let (code, _, err) = barman(&broken, &["put-wal", "pg", segment.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("line 5, [pg] minimum_redundancy: invalid value \"two\""),
        "{err}"
    );
    // Repository permissions.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.home.join("pg/wals")), 0o700);
    assert_eq!(mode(&s.home.join("pg/wals/pg-xlog.db")), 0o600);
    assert_eq!(
        mode(&s.home.join("pg/wals").join(&last[..16]).join(last)),
        0o600
    );
}
