//! `compression = custom` on a real PostgreSQL 15: WAL files go through the
//! administrator's filters (here `xz --format=lzma`, a format no codec of barman-rs or
//! Barman reads), are read back by get-wal and recover, and Barman 3.19 reads what
//! barman-rs stored and the other way round.

use std::path::Path;
use std::process::Command;

use barman_testkit::tools::{is_root, oracle_python, which};

use crate::recover::{Copy, DIGEST, Site, ok};
use crate::support::{barman, barman_as_server};

const FILTERS: &str = "compression = custom\ncustom_compression_filter = xz --format=lzma -c\ncustom_decompression_filter = xz --format=lzma -dc\n";

/// The first bytes of an lzma-alone stream from `xz --format=lzma` (properties 0x5d,
/// dictionary size little-endian).
const MAGIC: &[u8] = &[0x5d, 0x00, 0x00];

#[test]
fn custom_filters_compress_the_archive_and_every_reader_decompresses_it() {
    if which("xz").is_none() {
        eprintln!("skipped: xz is not installed");
        return;
    }
    let Some(site) = Site::start_with(&[], "postgres") else {
        return;
    };
    let base = std::fs::read_to_string(&site.conf).unwrap();
    let conf_text = base.replace("compression = gzip\n", "")
        + FILTERS
        + "custom_compression_magic = 0x5d0000\n";
    std::fs::write(&site.conf, &conf_text).unwrap();
    site.insert(1, 500);
    site.switch_and_wait();
    let out = ok(barman_as_server(
        &site.conf,
        &["backup", "pg", "--wait", "--wait-timeout", "60"],
    ));
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("Backup ").and_then(|r| r.split(' ').next()))
        .filter(|id| id.len() == 15)
        .unwrap_or_else(|| panic!("no backup id in {out}"))
        .to_owned();
    site.insert(501, 1000);
    site.switch_and_wait();
    let expected = site.digest();

    // Stored through the filter, xlog.db says custom.
    let xlogdb = std::fs::read_to_string(site.home.join("pg/wals/pg-xlog.db")).unwrap();
    for line in xlogdb.lines() {
        assert_eq!(line.split('\t').nth(3), Some("custom"), "{line}");
    }
    let name = xlogdb
        .lines()
        .filter_map(|l| l.split('\t').next())
        .rfind(|n| n.len() == 24)
        .unwrap()
        .to_owned();
    let stored = site.home.join("pg/wals").join(&name[..16]).join(&name);
    let bytes = std::fs::read(&stored).unwrap();
    assert!(bytes.starts_with(MAGIC), "{:?}", &bytes[..8]);
    assert!(bytes.len() < 1 << 19, "compressed: {} bytes", bytes.len());

    // get-wal decompresses through the filter; -z recompresses with gzip.
    let plain = get_wal(&site.conf, &["get-wal", "pg", &name]);
    assert_eq!(plain.len(), 1 << 20);
    assert_eq!(&plain[1..2], &[0xd1], "a WAL page: {:?}", &plain[..4]);
    let gz = get_wal(&site.conf, &["get-wal", "-z", "pg", &name]);
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut barman_wal::Codec::Gzip.decoder(&gz[..]).unwrap(),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, plain);
    // The same segment again is an identical re-archive (compared decompressed).
    let again = site.dest("again");
    std::fs::create_dir(&again).unwrap();
    std::fs::write(again.join(&name), &plain).unwrap();
    site.pg.give_to_server_user(&again).unwrap();
    let out = ok(barman_as_server(
        &site.conf,
        &["put-wal", "pg", &again.join(&name).display().to_string()],
    ));
    assert!(
        out.contains("already archived with the same content"),
        "{out}"
    );

    // Recovery delivers the WAL through the filter.
    let dest = site.dest("copy");
    ok(barman_as_server(
        &site.conf,
        &["recover", "pg", &id, &dest.display().to_string()],
    ));
    let copy = Copy::start(&site, &dest, true);
    copy.wait_replayed();
    assert_eq!(copy.sql(DIGEST), expected);
    drop(copy);

    // Without the magic, a stored file nothing else explains is custom (Barman's rule):
    // rebuild-xlogdb says so, get-wal still reads it.
    let no_magic = site.conf.with_file_name("nomagic.conf");
    std::fs::write(
        &no_magic,
        base.replace("compression = gzip\n", "") + FILTERS,
    )
    .unwrap();
    ok(barman_as_server(&no_magic, &["rebuild-xlogdb", "pg"]));
    let rebuilt = std::fs::read_to_string(site.home.join("pg/wals/pg-xlog.db")).unwrap();
    assert!(
        rebuilt
            .lines()
            .all(|l| l.split('\t').nth(3) == Some("custom")),
        "{rebuilt}"
    );
    assert_eq!(get_wal(&no_magic, &["get-wal", "pg", &name]), plain);

    // A decompression filter that fails: its error, and nothing written.
    let failing = site.conf.with_file_name("failing.conf");
    std::fs::write(
        &failing,
        conf_text.replace(
            "custom_decompression_filter = xz --format=lzma -dc",
            "custom_decompression_filter = cat >/dev/null; echo 'filter broke' >&2; exit 3",
        ),
    )
    .unwrap();
    let out_dir = site.dest("got");
    std::fs::create_dir(&out_dir).unwrap();
    site.pg.give_to_server_user(&out_dir).unwrap();
    let (code, _, err) = barman_as_server(
        &failing,
        &["get-wal", "pg", &name, "-o", &out_dir.display().to_string()],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("custom_decompression_filter failed") && err.contains("filter broke"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0);

    // A configuration without the decompression filter disables its server only.
    let refused = site.conf.with_file_name("refused.conf");
    std::fs::write(
        &refused,
        conf_text.replace("custom_decompression_filter = xz --format=lzma -dc\n", ""),
    )
    .unwrap();
    let (code, _, err) = barman(&refused, &["get-wal", "pg", &name]);
    assert_ne!(code, 0);
    assert!(
        err.contains("compression = custom needs custom_decompression_filter"),
        "{err}"
    );

    if let Some(python) = oracle_python() {
        with_barman(&site, &python, &conf_text, &name, &plain);
    }
}

fn get_wal(conf: &Path, args: &[&str]) -> Vec<u8> {
    let out = crate::support::barman_as_server_cmd(conf, args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Barman 3.19 with the same filters: it reads our custom-compressed WAL file, and we
/// read one it compressed.
fn with_barman(site: &Site, python: &Path, conf_text: &str, name: &str, plain: &[u8]) {
    let user = if is_root() {
        "postgres".to_owned()
    } else {
        barman_testkit::tools::run(Command::new("id").arg("-un"))
            .trim()
            .to_owned()
    };
    let theirs = site.home.join("theirs");
    let section = format!(
        "[theirs]\nconninfo = host=/nonexistent\nbackup_method = postgres\narchiver = on\n{FILTERS}custom_compression_magic = 0x5d0000\n"
    );
    let ours = site.conf.with_file_name("ours.conf");
    std::fs::write(&ours, format!("{conf_text}{section}")).unwrap();
    let py_conf = site.conf.with_file_name("py.conf");
    std::fs::write(
        &py_conf,
        format!(
            "{}{section}",
            conf_text.replace("[barman]\n", &format!("[barman]\nbarman_user = {user}\n"))
        ),
    )
    .unwrap();
    std::fs::create_dir_all(theirs.join("incoming")).unwrap();
    std::fs::write(theirs.join("incoming").join(name), plain).unwrap();
    site.pg.give_to_server_user(site.pg.dir()).unwrap();
    let py = |args: &[&str]| -> std::process::Output {
        let barman = python.with_file_name("barman");
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(barman);
            c
        } else {
            Command::new(barman)
        };
        c.arg("-c").arg(&py_conf).args(args).output().unwrap()
    };
    let got = py(&["get-wal", "pg", name]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(
        got.stdout, plain,
        "Barman's get-wal of our custom-compressed file"
    );
    let archived = py(&["archive-wal", "theirs"]);
    assert!(
        archived.status.success(),
        "{}",
        String::from_utf8_lossy(&archived.stderr)
    );
    let stored = std::fs::read(theirs.join("wals").join(&name[..16]).join(name)).unwrap();
    assert!(
        stored.starts_with(MAGIC),
        "Barman stored it through the filter"
    );
    let db = std::fs::read_to_string(theirs.join("wals/theirs-xlog.db")).unwrap();
    assert!(db.contains("\tcustom\t"), "{db}");
    assert_eq!(
        get_wal(&ours, &["get-wal", "theirs", name]),
        plain,
        "our get-wal of Barman's custom-compressed file"
    );
}
