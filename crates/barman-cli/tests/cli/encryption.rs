//! Encryption at rest with GnuPG (`encryption = gpg`), on a real PostgreSQL 15 and a
//! real GnuPG keyring: WAL files and the tars of a compressed backup are stored
//! encrypted, and get-wal, verify-backup and recover read them back. Barman 3.19 reads
//! what barman-rs encrypted, and barman-rs reads what Barman encrypted.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use barman_testkit::tools::{is_root, oracle_python, which};

use crate::recover::{Copy, DIGEST, Site, ok};
use crate::support::barman_as_server_cmd;

const KEY: &str = "barman-rs test <test@example.invalid>";
const PASSPHRASE: &str = "correct horse battery staple";

/// A GnuPG home of the database server's OS user (who runs every barman command here)
/// with one RSA key protected by [`PASSPHRASE`]. Its gpg-agent is stopped on drop.
struct Keyring {
    dir: tempfile::TempDir,
    /// A file holding the passphrase, for `encryption_passphrase_command`.
    pass_file: PathBuf,
}

impl Keyring {
    fn new() -> Keyring {
        // A short path: gpg-agent's socket lives in it.
        let dir = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir_in("/tmp")
            .unwrap();
        let pass_file = dir.path().join("pass");
        std::fs::write(&pass_file, format!("{PASSPHRASE}\n")).unwrap();
        if is_root() {
            barman_testkit::tools::run(
                Command::new("chown")
                    .args(["-R", "postgres"])
                    .arg(dir.path()),
            );
        }
        let keyring = Keyring { dir, pass_file };
        let mut keygen = keyring.gpg();
        keygen
            .args([
                "--batch",
                "--pinentry-mode",
                "loopback",
                "--passphrase-fd",
                "0",
                "--quick-gen-key",
                KEY,
                "rsa2048",
                "cert,sign,encr",
                "never",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = keygen.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSPHRASE}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        keyring
    }

    fn home(&self) -> &Path {
        self.dir.path()
    }

    /// A gpg program run as the server's user with this home.
    fn tool(&self, program: &str) -> Command {
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            Command::new(program)
        };
        c.env("GNUPGHOME", self.home());
        c
    }

    fn gpg(&self) -> Command {
        self.tool("gpg")
    }

    /// Stops the agent, forgetting the passphrases it cached.
    fn forget(&self) {
        let _ = self.tool("gpgconf").args(["--kill", "gpg-agent"]).status();
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        self.forget();
    }
}

fn run(keys: &Keyring, conf: &Path, args: &[&str]) -> (i32, String, String) {
    let out = barman_as_server_cmd(conf, args)
        .env("GNUPGHOME", keys.home())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_bytes(keys: &Keyring, conf: &Path, args: &[&str]) -> Vec<u8> {
    let out = barman_as_server_cmd(conf, args)
        .env("GNUPGHOME", keys.home())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn starts_encrypted(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap();
    barman_core::encryption::is_encrypted(bytes.get(..8).unwrap_or(&bytes))
}

/// A copy of `conf` with `line` replaced.
fn variant(conf: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(conf).unwrap();
    assert!(text.contains(from), "{text}");
    let out = conf.with_file_name(name);
    std::fs::write(&out, text.replace(from, to)).unwrap();
    out
}

#[test]
fn encrypted_wal_and_backups_are_read_back_by_barman_rs_and_barman() {
    if which("gpg").is_none() {
        assert!(
            std::env::var("BARMAN_REQUIRE_ORACLE").as_deref() != Ok("1"),
            "gpg is not installed"
        );
        eprintln!("skipped: gpg is not installed");
        return;
    }
    let Some(site) = Site::start_with(&[], "postgres") else {
        return;
    };
    let keys = Keyring::new();
    let base_conf = std::fs::read_to_string(&site.conf).unwrap();
    std::fs::write(
        &site.conf,
        format!(
            "{base_conf}backup_compression = gzip\nbackup_compression_format = tar\nencryption = gpg\nencryption_key_id = {KEY}\nencryption_passphrase_command = cat '{}'\n",
            keys.pass_file.display()
        ),
    )
    .unwrap();
    site.pg
        .sql(&format!(
            "ALTER SYSTEM SET archive_command TO 'GNUPGHOME={} {} -q -c {} put-wal pg %p'",
            keys.home().display(),
            crate::support::BARMAN,
            site.conf.display()
        ))
        .unwrap();
    site.pg.sql("SELECT pg_reload_conf()").unwrap();
    site.insert(1, 500);
    site.switch_and_wait();

    // check runs Barman's encryption check.
    let (_, out, err) = run(&keys, &site.conf, &["check", "pg"]);
    assert!(
        out.contains("encryption: OK (encryption test succeeded)"),
        "{out}{err}"
    );

    // A backup: its tars encrypted, backup.info says so.
    let out = ok(run(
        &keys,
        &site.conf,
        &["backup", "pg", "--wait", "--wait-timeout", "60"],
    ));
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("Backup ").and_then(|r| r.split(' ').next()))
        .filter(|id| id.len() == 15)
        .unwrap_or_else(|| panic!("no backup id in {out}"))
        .to_owned();
    let data = site.home.join("pg/base").join(&id).join("data");
    assert!(starts_encrypted(&data.join("base.tar.gz.gpg")));
    assert!(!data.join("base.tar.gz").exists());
    let info = std::fs::read_to_string(site.home.join("pg/meta").join(format!("{id}-backup.info")))
        .unwrap();
    assert!(
        info.contains("encryption=gpg\n") && info.contains("status=DONE"),
        "{info}"
    );
    let out = ok(run(&keys, &site.conf, &["verify-backup", "pg", &id]));
    assert!(
        !out.contains("missing") && !out.contains("mismatch"),
        "{out}"
    );

    site.insert(501, 1000);
    site.switch_and_wait();
    let expected = site.digest();

    // The WAL archive: every file encrypted, xlog.db says gpg.
    let xlogdb = std::fs::read_to_string(site.home.join("pg/wals/pg-xlog.db")).unwrap();
    for line in xlogdb.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.get(3..), Some(&["gzip", "gpg"][..]), "{line}");
    }
    // The last segment archived (after the backup, so kept by its WAL cleanup).
    let name = xlogdb
        .lines()
        .filter_map(|l| l.split('\t').next())
        .rfind(|n| n.len() == 24)
        .unwrap()
        .to_owned();
    let stored = site.home.join("pg/wals").join(&name[..16]).join(&name);
    assert!(starts_encrypted(&stored));
    let plain = run_bytes(&keys, &site.conf, &["get-wal", "pg", &name]);
    assert_eq!(plain.len(), 1 << 20, "a whole 1 MiB segment");
    assert!(!barman_core::encryption::is_encrypted(&plain[..8]));

    // Without the passphrase command: a one-line refusal, nothing written.
    let no_pass = variant(
        &site.conf,
        "nopass.conf",
        &format!(
            "encryption_passphrase_command = cat '{}'\n",
            keys.pass_file.display()
        ),
        "",
    );
    let out_dir = site.dest("got");
    std::fs::create_dir(&out_dir).unwrap();
    site.pg.give_to_server_user(&out_dir).unwrap();
    let (code, _, err) = run(
        &keys,
        &no_pass,
        &["get-wal", "pg", &name, "-o", &out_dir.display().to_string()],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("is encrypted, but server 'pg' has no encryption_passphrase_command"),
        "{err}"
    );
    let dest = site.dest("nopass");
    let (code, _, err) = run(
        &keys,
        &no_pass,
        &["recover", "pg", &id, &dest.display().to_string()],
    );
    assert_ne!(code, 0);
    assert!(err.contains("no encryption_passphrase_command"), "{err}");

    // A wrong passphrase (the agent's cache forgotten first): gpg's error, nothing
    // written.
    keys.forget();
    let wrong = variant(
        &site.conf,
        "wrong.conf",
        &format!("cat '{}'", keys.pass_file.display()),
        "echo wrong",
    );
    let (code, _, err) = run(
        &keys,
        &wrong,
        &["get-wal", "pg", &name, "-o", &out_dir.display().to_string()],
    );
    assert_ne!(code, 0);
    assert!(err.contains("gpg failed"), "{err}");
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0);

    // Recovery decrypts the tars and the WAL.
    let dest = site.dest("copy");
    ok(run(
        &keys,
        &site.conf,
        &["recover", "pg", &id, &dest.display().to_string()],
    ));
    assert!(dest.join("PG_VERSION").is_file());
    let copy = Copy::start(&site, &dest, true);
    copy.wait_replayed();
    assert_eq!(copy.sql(DIGEST), expected);
    drop(copy);

    if let Some(python) = oracle_python() {
        with_barman(&site, &keys, &python, &id, &name, &plain, &expected);
    }

    // rebuild-xlogdb tells encrypted files by their first bytes, as Barman does:
    // their compression is unknown until decrypted.
    ok(run(&keys, &site.conf, &["rebuild-xlogdb", "pg"]));
    let rebuilt = std::fs::read_to_string(site.home.join("pg/wals/pg-xlog.db")).unwrap();
    assert!(rebuilt.lines().count() >= 2, "{rebuilt}");
    for line in rebuilt.lines() {
        assert!(line.ends_with("\tNone\tgpg"), "{line}");
    }

    // A damaged encrypted file (one byte changed near its end, where only the
    // integrity check can notice): an error, and nothing written.
    let mut bytes = std::fs::read(&stored).unwrap();
    let at = bytes.len() - 30;
    bytes[at] ^= 0x55;
    std::fs::write(&stored, &bytes).unwrap();
    let (code, _, err) = run(
        &keys,
        &site.conf,
        &["get-wal", "pg", &name, "-o", &out_dir.display().to_string()],
    );
    assert_ne!(code, 0, "a damaged file was delivered");
    assert!(err.contains(&name), "{err}");
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0);
}

/// Barman 3.19 on the same repository and keyring: it decrypts our WAL file and
/// recovers our encrypted backup, and we read a WAL file it encrypted.
fn with_barman(
    site: &Site,
    keys: &Keyring,
    python: &Path,
    id: &str,
    name: &str,
    plain: &[u8],
    expected: &str,
) {
    let barman_py = python.with_file_name("barman");
    let user = if is_root() {
        "postgres".to_owned()
    } else {
        barman_testkit::tools::run(Command::new("id").arg("-un"))
            .trim()
            .to_owned()
    };
    let py_conf = site.conf.with_file_name("py.conf");
    let text = std::fs::read_to_string(&site.conf).unwrap();
    // A second server, `theirs`, is archived by Barman itself.
    let theirs = site.home.join("theirs");
    std::fs::write(
        &py_conf,
        format!(
            "{}[theirs]\nconninfo = host=/nonexistent\nbackup_method = postgres\narchiver = on\ncompression = gzip\nbackup_compression = gzip\nencryption = gpg\nencryption_key_id = {KEY}\nencryption_passphrase_command = cat '{}'\n",
            text.replace("[barman]\n", &format!("[barman]\nbarman_user = {user}\n")),
            keys.pass_file.display()
        ),
    )
    .unwrap();
    let ours_conf = site.conf.with_file_name("ours.conf");
    std::fs::write(
        &ours_conf,
        std::fs::read_to_string(&py_conf)
            .unwrap()
            .replace(&format!("barman_user = {user}\n"), ""),
    )
    .unwrap();
    site.pg.give_to_server_user(site.pg.dir()).unwrap();
    let py = |args: &[&str]| -> std::process::Output {
        let mut c = keys.tool(barman_py.to_str().unwrap());
        c.arg("-c").arg(&py_conf).args(args);
        c.output().unwrap()
    };
    // Barman decrypts our WAL file.
    let got = py(&["get-wal", "pg", name]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(got.stdout, plain, "Barman's get-wal of our encrypted file");
    // Barman encrypts a WAL file that we then read back.
    std::fs::create_dir_all(theirs.join("incoming")).unwrap();
    std::fs::write(theirs.join("incoming").join(name), plain).unwrap();
    site.pg.give_to_server_user(site.pg.dir()).unwrap();
    let archived = py(&["archive-wal", "theirs"]);
    assert!(
        archived.status.success(),
        "{}",
        String::from_utf8_lossy(&archived.stderr)
    );
    let theirs_wal = theirs.join("wals").join(&name[..16]).join(name);
    assert!(starts_encrypted(&theirs_wal), "Barman stored it encrypted");
    let db = std::fs::read_to_string(theirs.join("wals/theirs-xlog.db")).unwrap();
    assert!(db.trim_end().ends_with("\tgzip\tgpg"), "{db}");
    assert_eq!(
        run_bytes(keys, &ours_conf, &["get-wal", "theirs", name]),
        plain,
        "our get-wal of Barman's encrypted file"
    );
    // Barman recovers our encrypted backup.
    let dest = site.dest("by-barman");
    let rec = py(&["recover", "pg", id, &dest.display().to_string()]);
    assert!(
        rec.status.success(),
        "{}{}",
        String::from_utf8_lossy(&rec.stdout),
        String::from_utf8_lossy(&rec.stderr)
    );
    let copy = Copy::start(site, &dest, true);
    copy.wait_replayed();
    assert_eq!(
        copy.sql(DIGEST),
        expected,
        "Barman's recovery of our backup"
    );
}
