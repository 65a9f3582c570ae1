//! Trust, point 11: bad input gets a clear error and changes nothing. Forty-odd
//! malformed inputs (recovery targets, backup ids and names, server names, WAL names
//! and files, paths, a damaged backup.info and xlog.db, broken configurations) against
//! one repository: each exits non-zero, never panics, says what is wrong in at most
//! three lines on standard error, and leaves the repository as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::BARMAN;

const ID: &str = "20261125T100000";

/// A repository with one DONE backup and three archived segments; no PostgreSQL.
fn repository(dir: &Path) -> PathBuf {
    let home = dir.join("home");
    let server = home.join("pg");
    let data = server.join(format!("base/{ID}/data"));
    std::fs::create_dir_all(data.join("pg_wal")).unwrap();
    std::fs::create_dir_all(data.join("global")).unwrap();
    std::fs::write(data.join("PG_VERSION"), "15\n").unwrap();
    std::fs::write(data.join("postgresql.conf"), "port = 5432\n").unwrap();
    std::fs::create_dir_all(server.join("meta")).unwrap();
    std::fs::write(
        server.join(format!("meta/{ID}-backup.info")),
        "backup_label=None\nbegin_offset=40\nbegin_time=2026-11-25 10:00:00+00:00\n\
         begin_wal=000000010000000000000002\nbegin_xlog=0/2000028\nend_offset=256\n\
         end_time=2026-11-25 10:00:05+00:00\nend_wal=000000010000000000000002\n\
         end_xlog=0/2000100\nmode=postgres\npgdata=/var/lib/pg\nserver_name=pg\n\
         status=DONE\nsystemid=7000000000000000001\ntimeline=1\nversion=150004\n",
    )
    .unwrap();
    let wals = server.join("wals/0000000100000000");
    std::fs::create_dir_all(&wals).unwrap();
    let mut db = String::new();
    for n in 2..=4 {
        let name = format!("00000001000000000000000{n}");
        std::fs::write(wals.join(&name), vec![0u8; 8192]).unwrap();
        db.push_str(&format!("{name}\t8192\t1764064800.0\tNone\tNone\n"));
    }
    std::fs::write(server.join("wals/pg-xlog.db"), db).unwrap();
    for d in ["incoming", "streaming", "errors"] {
        std::fs::create_dir_all(server.join(d)).unwrap();
    }
    home
}

fn config(dir: &Path, home: &Path, extra: &str) -> PathBuf {
    let path = dir.join(format!("barman{}.conf", extra.len()));
    std::fs::write(
        &path,
        format!(
            "[barman]\nbarman_home = {}\n[pg]\nconninfo = host=/nonexistent\nbackup_method = postgres\nstreaming_conninfo = host=/nonexistent\narchiver = on\n{extra}",
            home.display()
        ),
    )
    .unwrap();
    path
}

/// Every file and directory under `root` with its content (lock files aside: taking
/// a lock is not a change of the repository).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "lock") {
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().to_owned();
            if p.is_dir() {
                out.insert(rel, Vec::new());
                todo.push(p);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn forty_malformed_inputs_get_one_clear_error_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = repository(dir.path());
    let conf = config(dir.path(), &home, "");
    let dest = dir.path().join("dest");
    let d = dest.to_str().unwrap().to_owned();
    // Files handed to put-wal.
    let inputs = dir.path().join("inputs");
    std::fs::create_dir(&inputs).unwrap();
    let garbage_seg = inputs.join("000000010000000000000009");
    std::fs::write(&garbage_seg, b"not WAL at all").unwrap();
    let garbage_hist = inputs.join("00000002.history");
    std::fs::write(&garbage_hist, b"this\tis not\ta history\n").unwrap();
    let bad_name = inputs.join("000000010000000000000009.gz");
    std::fs::write(&bad_name, b"x").unwrap();
    let empty_seg = inputs.join("00000001000000000000000A");
    std::fs::write(&empty_seg, b"").unwrap();
    // Broken configurations.
    let bad_value = config(dir.path(), &home, "minimum_redundancy = two\n");
    let refused = config(dir.path(), &home, "wals_directory = s3://bucket/wals\n");
    let unparsable = dir.path().join("unparsable.conf");
    std::fs::write(&unparsable, "[barman\nbarman_home = /x\n").unwrap();
    let no_home = dir.path().join("nohome.conf");
    std::fs::write(&no_home, "[barman]\nlog_level = INFO\n[pg]\nconninfo = x\n").unwrap();
    let bad_retention = config(dir.path(), &home, "retention_policy = REDUNDANCY -1 DAYS\n");

    let c = conf.to_str().unwrap().to_owned();
    let s = |v: &str| v.to_owned();
    // (configuration, arguments, what the error must mention)
    let mut cases: Vec<(String, Vec<String>, &str)> = Vec::new();
    let mut add = |conf: &Path, args: &[&str], mention: &'static str| {
        cases.push((
            conf.to_str().unwrap().to_owned(),
            args.iter().map(|a| s(a)).collect(),
            mention,
        ));
    };
    let cp = Path::new(&c);
    // Recovery targets.
    add(
        cp,
        &[
            "recover",
            "--target-time",
            "2026-11-20 +01:00",
            "pg",
            ID,
            &d,
        ],
        "target time",
    );
    add(
        cp,
        &["recover", "--target-time", "2026-11-25-01:00", "pg", ID, &d],
        "target time",
    );
    add(
        cp,
        &["recover", "--target-time", "yesterday", "pg", ID, &d],
        "target time",
    );
    add(
        cp,
        &[
            "recover",
            "--target-time",
            "2026-13-45 25:61:61",
            "pg",
            ID,
            &d,
        ],
        "target time",
    );
    add(
        cp,
        &[
            "recover",
            "--target-time",
            "２０２６-11-25 10:00",
            "pg",
            ID,
            &d,
        ],
        "target time",
    );
    add(
        cp,
        &[
            "recover",
            "--target-time",
            "2026-11-24 10:00:00+00:00",
            "pg",
            ID,
            &d,
        ],
        "before",
    );
    add(cp, &["recover", "--target-xid", "abc", "pg", ID, &d], "xid");
    add(cp, &["recover", "--target-xid", "-1", "pg", ID, &d], "xid");
    add(
        cp,
        &["recover", "--target-lsn", "0/XYZ", "pg", ID, &d],
        "LSN",
    );
    add(
        cp,
        &["recover", "--target-lsn", "1/2/3", "pg", ID, &d],
        "LSN",
    );
    add(
        cp,
        &["recover", "--target-tli", "x", "pg", ID, &d],
        "timeline",
    );
    add(
        cp,
        &["recover", "--target-tli", "0", "pg", ID, &d],
        "timeline",
    );
    add(
        cp,
        &[
            "recover",
            "--target-xid",
            "5",
            "--target-name",
            "a",
            "pg",
            ID,
            &d,
        ],
        "multiple targets",
    );
    add(
        cp,
        &["recover", "--target-action", "explode", "pg", ID, &d],
        "explode",
    );
    add(
        cp,
        &["recover", "--target-action", "promote", "pg", ID, &d],
        "target action",
    );
    add(
        cp,
        &["recover", "--tablespace", "noname", "pg", ID, &d],
        "noname",
    );
    add(
        cp,
        &["recover", "--tablespace", "tbs:/x", "pg", ID, &d],
        "tbs",
    );
    add(
        cp,
        &["recover", "pg", ID, "host:/somewhere"],
        "host:/somewhere",
    );
    add(
        cp,
        &[
            "recover",
            "--staging-wal-directory",
            "relative",
            "--target-xid",
            "5",
            "pg",
            ID,
            &d,
        ],
        "staging",
    );
    // Backup ids, names and shortcuts.
    add(
        cp,
        &["recover", "pg", "20261325T999999", &d],
        "20261325T999999",
    );
    add(cp, &["recover", "pg", "no-such-name", &d], "no-such-name");
    add(cp, &["show-backup", "pg", "../../etc"], "../../etc");
    add(cp, &["delete", "pg", "latest-full-x"], "latest-full-x");
    add(
        cp,
        &["keep", "pg", "20261125T10000", "--release"],
        "20261125T10000",
    );
    add(cp, &["list-files", "pg", "🙂"], "🙂");
    add(cp, &["check-backup", "pg", "a\nb"], "a");
    add(
        cp,
        &["keep", "pg", ID, "--target", "sometimes"],
        "sometimes",
    );
    // Server names.
    add(cp, &["show-backup", "no server", ID], "no server");
    add(cp, &["list-backups", "../pg"], "../pg");
    add(cp, &["recover", "nope", ID, &d], "nope");
    // WAL names and files.
    add(
        cp,
        &["get-wal", "pg", "../../etc/passwd"],
        "../../etc/passwd",
    );
    add(
        cp,
        &["get-wal", "pg", "00000001000000000000000G"],
        "00000001000000000000000G",
    );
    add(
        cp,
        &["get-wal", "pg", "000000010000000000000099"],
        "000000010000000000000099",
    );
    add(
        cp,
        &["put-wal", "pg", "/nonexistent/000000010000000000000005"],
        "/nonexistent",
    );
    add(cp, &["put-wal", "pg", inputs.to_str().unwrap()], "inputs");
    add(
        cp,
        &["put-wal", "pg", garbage_seg.to_str().unwrap()],
        "000000010000000000000009",
    );
    add(
        cp,
        &["put-wal", "pg", garbage_hist.to_str().unwrap()],
        "00000002.history",
    );
    add(
        cp,
        &["put-wal", "pg", bad_name.to_str().unwrap()],
        "invalid WAL file name",
    );
    add(
        cp,
        &["put-wal", "pg", empty_seg.to_str().unwrap()],
        "00000001000000000000000A",
    );
    // Broken configurations.
    add(&bad_value, &["list-backups", "pg"], "minimum_redundancy");
    add(&refused, &["list-backups", "pg"], "wals_directory");
    add(&unparsable, &["list-backups", "pg"], "unparsable.conf");
    add(&no_home, &["list-backups", "pg"], "barman_home");
    add(&bad_retention, &["list-backups", "pg"], "retention_policy");
    add(
        Path::new("/nonexistent/barman.conf"),
        &["list-backups", "pg"],
        "/nonexistent/barman.conf",
    );

    // A damaged backup.info and a damaged xlog.db come last, on their own copy.
    let run = |conf: &str, args: &[String]| {
        let out = Command::new(BARMAN)
            .arg("-c")
            .arg(conf)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let check = |conf: &str, args: &[String], mention: &str| {
        let before = snapshot(&home);
        let (code, out, err) = run(conf, args);
        let what = format!("barman {}", args.join(" "));
        assert!(
            code.is_some_and(|c| c != 0),
            "{what}: exit {code:?}\n{out}{err}"
        );
        assert!(!err.contains("panicked"), "{what} panicked: {err}");
        assert!(!err.trim().is_empty(), "{what}: nothing on stderr");
        assert!(err.trim().lines().count() <= 3, "{what}: {err}");
        assert!(
            err.contains(mention),
            "{what}: does not name {mention:?}: {err}"
        );
        assert_eq!(snapshot(&home), before, "{what} changed the repository");
        assert!(!dest.exists(), "{what} wrote the destination");
    };
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for (conf, args, mention) in &cases {
        check(conf, args, mention);
    }

    // A damaged xlog.db: named, line and all, and nothing acts on it.
    let db = home.join("pg/wals/pg-xlog.db");
    let good_db = std::fs::read(&db).unwrap();
    std::fs::write(
        &db,
        "000000010000000000000002\t8192\t1764064800.0\tNone\tNone\nnot a line at all\n",
    )
    .unwrap();
    for args in [
        vec!["list-backups", "pg"],
        vec!["recover", "--target-xid", "5", "pg", ID, &d],
        vec!["show-backup", "pg", ID],
    ] {
        let args: Vec<String> = args.into_iter().map(s).collect();
        check(&c, &args, "pg-xlog.db");
    }
    std::fs::write(&db, good_db).unwrap();

    // A damaged backup.info: named, and never acted on.
    let info = home.join(format!("pg/meta/{ID}-backup.info"));
    std::fs::write(
        &info,
        "status=DONE\nbegin_time=2026-11-20 +01:00\nversion=fifteen\n",
    )
    .unwrap();
    for args in [
        vec!["show-backup", "pg", ID],
        vec!["delete", "pg", ID],
        vec!["recover", "pg", ID, &d],
    ] {
        let args: Vec<String> = args.into_iter().map(s).collect();
        check(&c, &args, &format!("{ID}-backup.info"));
    }
    // list-backups shows it, with its error.
    let (_, out, _) = run(&c, &[s("list-backups"), s("pg")]);
    assert!(out.contains(&format!("pg {ID} - UNREADABLE")), "{out}");
}

/// Trust, point 14: an option barman-rs refuses disables its server only (as Barman
/// disables a server its rules refuse): another server's archiving goes on.
#[test]
fn a_refused_option_disables_its_server_only() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let conf = dir.path().join("barman.conf");
    std::fs::write(
        &conf,
        format!(
            "[barman]\nbarman_home = {}\n[pg]\nconninfo = host=/nonexistent\nbackup_method = postgres\nstreaming_conninfo = host=/nonexistent\narchiver = on\n\
             [secret]\nconninfo = host=/nonexistent\nbackup_method = postgres\nstreaming_conninfo = host=/nonexistent\narchiver = on\nwals_directory = s3://bucket/wals\n",
            home.display()
        ),
    )
    .unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../barman-wal/tests/data/pg15/000000010000000000000002.gz");
    let segment = dir.path().join("000000010000000000000002");
    let mut bytes = Vec::new();
    use std::io::Read;
    barman_wal::Codec::decoder_detect(std::fs::File::open(fixture).unwrap())
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    std::fs::write(&segment, bytes).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(BARMAN)
            .arg("-c")
            .arg(&conf)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["put-wal", "pg", segment.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, _, err) = run(&["put-wal", "secret", segment.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("[secret]: a repository in cloud storage is not supported yet"),
        "{err}"
    );
    assert!(!home.join("secret/wals").exists());
    let (code, out, _) = run(&["check", "secret"]);
    assert_ne!(code, Some(0));
    assert!(out.contains("configuration: FAILED"), "{out}");
    let (code, out, err) = run(&["list-servers"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("pg") && out.contains("secret"), "{out}");
}
