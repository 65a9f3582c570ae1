//! `barman-wal-archive` on the "database host" sending WAL over a real sshd on 127.0.0.1
//! to `barman put-wal` on the "Barman host" (the same machine, another user when root).

use std::io::Read;
use std::path::Path;
use std::process::Command;

use barman_testkit::{Sshd, shared_tempdir};
use barman_wal::Codec;

const BARMAN: &str = env!("CARGO_BIN_EXE_barman");
const WAL_ARCHIVE: &str = env!("CARGO_BIN_EXE_barman-wal-archive");

fn fixture_segment(dir: &Path) -> std::path::PathBuf {
    let gz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../barman-wal/tests/data/pg15/000000010000000000000002.gz");
    let mut bytes = Vec::new();
    Codec::decoder_detect(std::fs::File::open(gz).unwrap())
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    let p = dir.join("000000010000000000000002");
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn wal_archive_over_ssh() {
    let Some(sshd) = Sshd::start() else { return };
    let remote = shared_tempdir();
    let home = remote.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let conf = remote.path().join("barman.conf");
    std::fs::write(
        &conf,
        format!("[barman]\nbarman_home = {}\n[pg]\nconninfo = host=pg\nbackup_method = postgres\narchiver = on\ncompression = lz4\n", home.display()),
    )
    .unwrap();
    sshd.give(remote.path());
    let local = tempfile::tempdir().unwrap();
    let segment = fixture_segment(local.path());

    let client = |extra: &[&str], server: &str, port: u16| {
        let out = Command::new(WAL_ARCHIVE)
            .args([
                "--ssh-command",
                &sshd.ssh_base(),
                "--port",
                &port.to_string(),
                "-U",
                &sshd.user,
                "--barman-command",
                BARMAN,
            ])
            .arg(format!("--config={}", conf.display()))
            .args(extra)
            .args(["127.0.0.1", server])
            .arg(&segment)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, err) = client(&["--test"], "pg", sshd.port);
    assert_eq!(code, 0, "{err}\n{}", sshd.log());
    let (code, err) = client(&[], "pg", sshd.port);
    assert_eq!(code, 0, "{err}\n{}", sshd.log());
    let stored = home.join("pg/wals/0000000100000000/000000010000000000000002");
    let raw = std::fs::read(&stored).unwrap();
    assert_eq!(Codec::detect(&raw), Codec::Lz4);
    let mut back = Vec::new();
    Codec::decoder_detect(&raw[..])
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, std::fs::read(&segment).unwrap());
    // Again, compressed on the client with gzip and MD5SUMS: identical content, success.
    let (code, err) = client(&["-z", "--md5"], "pg", sshd.port);
    assert_eq!(code, 0, "{err}");
    let xlogdb = std::fs::read_to_string(home.join("pg/wals/pg-xlog.db")).unwrap();
    assert_eq!(xlogdb.lines().count(), 1, "{xlogdb}");

    // Unknown server: the remote command fails (exit 1), one line each side.
    let (code, err) = client(&[], "nope", sshd.port);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unknown server 'nope'"), "{err}");
    // Nobody listening: exit 3.
    let closed = barman_testkit::tools::free_port();
    let (code, err) = client(&[], "pg", closed);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("connection problem with ssh"), "{err}");
}
