//! The administration commands of Barman 3.19 beyond backup and recovery:
//! `lock-directory-cleanup` (and cron's), `generate-manifest`, `config-switch` and
//! `config-update`.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::support::barman;

/// A barman.conf in `dir` with `extra` in its `[barman]` section and no server.
fn conf(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("barman.conf");
    std::fs::write(
        &path,
        format!(
            "[barman]\nbarman_home = {}\n{extra}",
            dir.join("home").display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("home")).unwrap();
    path
}

/// A process holding a lock, killed when dropped.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        // Its group: flock and the sleep it runs.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// Holds `path`'s flock in another process (util-linux's `flock`) until dropped.
fn hold(path: &Path) -> Holder {
    let child = Holder(
        Command::new("flock")
            .arg(path)
            .args(["sleep", "600"])
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Held once a non-blocking attempt fails.
    while Command::new("flock")
        .args(["-n"])
        .arg(path)
        .arg("true")
        .status()
        .unwrap()
        .success()
    {
        assert!(std::time::Instant::now() < deadline, "flock never held");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

#[test]
fn lock_directory_cleanup_removes_only_what_nobody_holds() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf(dir.path(), "");
    let home = dir.path().join("home");
    let held = home.join(".pg-receive-wal.lock");
    let free = home.join(".pg-cron.lock");
    std::fs::write(&free, "4242").unwrap();
    let holder = hold(&held);
    std::fs::write(home.join("other.lock.txt"), "").unwrap();

    let (code, out, err) = barman(&conf, &["lock-directory-cleanup"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!free.exists());
    assert!(held.exists());
    assert!(home.join("other.lock.txt").exists());

    // cron cleans up too, unless lock_directory_cleanup is off.
    drop(holder);
    let conf_off = self::conf(dir.path(), "lock_directory_cleanup = off\n");
    let (code, out, err) = barman(&conf_off, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(held.exists(), "lock_directory_cleanup = off");
    let conf_on = self::conf(dir.path(), "");
    let (code, out, err) = barman(&conf_on, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(!held.exists());
    // The option is no longer reported unsupported.
    assert!(!err.contains("lock_directory_cleanup"), "{err}");
}

/// `cron --keep-descriptors`: the receive-wal it starts writes to cron's standard
/// error; without it, nowhere (its log file only).
#[test]
fn cron_keep_descriptors_keeps_receive_wal_output() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: receive-wal warns and tries again every second.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = conf(
        dir.path(),
        &format!(
            "\n[pg]\nconninfo = host=127.0.0.1 port={port} user=postgres\nstreaming_conninfo = host=127.0.0.1 port={port} user=postgres\nbackup_method = postgres\nstreaming_archiver = on\narchiver = off\nslot_name = barman\n"
        ),
    );
    /// Stops the receive-wal cron started, however the test ends.
    struct Stop<'a>(&'a Path);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            barman(self.0, &["receive-wal", "--stop", "pg"]);
        }
    }
    let _stop = Stop(&conf);
    let mut cron = Command::new(crate::support::BARMAN)
        .arg("-c")
        .arg(&conf)
        .args(["cron", "--keep-descriptors"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // cron exits; its stderr stays open in the receive-wal it started.
    assert!(cron.wait().unwrap().success());
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = cron.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("receive-wal's warning on cron's stderr");
    assert!(
        line.contains("receive-wal of server pg") && line.contains(&port.to_string()),
        "{line}"
    );
    barman(&conf, &["receive-wal", "--stop", "pg"]);

    let (_, out, err) = barman(&conf, &["cron"]);
    assert!(
        out.contains("Starting streaming archiver for server pg"),
        "{out}{err}"
    );
    assert!(!err.contains(&port.to_string()), "{err}");
}

/// Barman's manifest of a directory, made by Barman 3.19's own `BackupManifest`:
/// path → (size, checksum).
fn barman_manifest(
    python: &Path,
    data: &Path,
) -> std::collections::BTreeMap<String, (u64, String)> {
    let script = "import sys\nfrom barman.backup_manifest import BackupManifest\nfrom barman.storage.local_file_manager import LocalFileManager\nfrom barman.utils import SHA256\nBackupManifest(sys.argv[1], LocalFileManager(), SHA256()).create_backup_manifest()\n";
    let out = Command::new(python)
        .args(["-c", script])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    files_of(&data.join("backup_manifest"))
}

/// A manifest's files: path → (size, checksum).
fn files_of(manifest: &Path) -> std::collections::BTreeMap<String, (u64, String)> {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    doc["Files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["Checksum-Algorithm"], "SHA256", "{f}");
            (
                f["Path"].as_str().unwrap().to_owned(),
                (
                    f["Size"].as_u64().unwrap(),
                    f["Checksum"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

/// `generate-manifest` on a backup without a manifest (as Barman's rsync backups are):
/// the manifest lists what Barman's lists, with the same SHA256, plus the tablespace's
/// files; verify-backup passes on it and finds a damaged file; a second run is refused.
#[test]
fn generate_manifest_lists_every_file_as_barman_and_verify_backup_uses_it() {
    use crate::support::barman_as_server;
    let Some(site) = crate::recover::Site::start_with(&[], "local-rsync") else {
        return;
    };
    site.tablespace("tbs");
    site.pg
        .sql("CREATE TABLE u TABLESPACE tbs AS SELECT g AS a FROM generate_series(1, 1000) g")
        .unwrap();
    site.insert(1, 1000);
    let (code, out, err) = barman_as_server(&site.conf, &["backup", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    let base = site.home.join("pg/base");
    let id = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .next()
        .unwrap();
    let data = base.join(&id).join("data");
    let manifest = data.join("backup_manifest");
    std::fs::remove_file(&manifest).unwrap();

    let (code, out, err) = barman_as_server(&site.conf, &["generate-manifest", "pg", "latest"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Backup manifest for backup 'latest' successfully generated for server pg"),
        "{out}"
    );
    let ours = files_of(&manifest);
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("\"WAL-Ranges\""), "{text}");
    let oid = site
        .pg
        .sql("SELECT oid FROM pg_tablespace WHERE spcname = 'tbs'")
        .unwrap();
    let spaced: Vec<&String> = ours
        .keys()
        .filter(|p| p.starts_with(&format!("pg_tblspc/{oid}/")))
        .collect();
    assert!(!spaced.is_empty(), "{ours:?}");
    let (code, out, err) = barman_as_server(&site.conf, &["verify-backup", "pg", &id]);
    assert_eq!(code, 0, "{out}{err}");

    // Barman's own manifest of the same data directory: the same files and checksums.
    if let Some(python) = barman_testkit::tools::oracle_python() {
        let copy = site.pg.dir().join("oracle-data");
        let status = Command::new("cp")
            .arg("-a")
            .arg(&data)
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::remove_file(copy.join("backup_manifest")).unwrap();
        let theirs = barman_manifest(&python, &copy);
        let data_only: std::collections::BTreeMap<_, _> = ours
            .iter()
            .filter(|(p, _)| !p.starts_with("pg_tblspc/"))
            .map(|(p, v)| (p.clone(), v.clone()))
            .collect();
        assert_eq!(data_only, theirs);
    }

    // Never overwritten.
    let before = std::fs::read(&manifest).unwrap();
    let (code, _, err) = barman_as_server(&site.conf, &["generate-manifest", "pg", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&manifest).unwrap(), before);

    // A damaged tablespace file is found through the generated manifest.
    let victim = spaced[0]
        .strip_prefix(&format!("pg_tblspc/{oid}/"))
        .unwrap();
    let path = base.join(&id).join(&oid).join(victim);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.push(0);
    std::fs::write(&path, bytes).unwrap();
    let (code, out, err) = barman_as_server(&site.conf, &["verify-backup", "pg", &id]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        format!("{out}{err}").contains(spaced[0].as_str()),
        "{out}{err}"
    );
}

/// A configuration with server `pg` in `barman.d/pg.conf` and model `pg-dr`.
fn config_site(dir: &Path) -> PathBuf {
    let d = dir.join("barman.d");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("pg.conf"),
        "[pg]\nconninfo = host=127.0.0.1 port=1 user=postgres\nbackup_method = postgres\narchiver = on\ncompression = gzip\n\n[pg-dr]\nmodel = true\ncluster = pg\ncompression = bzip2\n",
    )
    .unwrap();
    let user = barman_testkit::tools::run(Command::new("id").arg("-un"))
        .trim()
        .to_owned();
    conf(
        dir,
        &format!(
            "barman_user = {user}\nconfiguration_files_directory = {}\n",
            d.display()
        ),
    )
}

/// `show-servers pg`'s value of `option`.
fn shown(conf: &Path, option: &str) -> String {
    let (code, out, err) = barman(conf, &["show-servers", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    let prefix = format!("\t{option}: ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{option} in {out}"))
        .to_owned()
}

/// The active model of `pg`, as `diagnose` reports it.
fn active_model(conf: &Path) -> serde_json::Value {
    let (code, out, err) = barman(conf, &["diagnose"]);
    assert_eq!(code, 0, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    doc["servers"]["pg"]["active_model"].clone()
}

/// `config-update` writes each option where it is set, else into .barman.auto.conf,
/// refuses what would break the configuration without writing anything, and creates
/// models; `config-switch` applies a model and resets it; Barman 3.19 reads the result
/// the same way.
#[test]
fn config_update_and_config_switch_change_the_files_safely() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config_site(dir.path());
    let pg_conf = dir.path().join("barman.d/pg.conf");
    let auto = dir.path().join("home/.barman.auto.conf");
    let update = |json: &str| barman(&conf, &["config-update", json]);

    let (code, out, err) = update(
        r#"[{"scope": "server", "server_name": "pg", "compression": "bzip2", "minimum_redundancy": "2"}]"#,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Changing value of option 'compression' for section 'pg' from 'gzip' to 'bzip2' through config-update."),
        "{out}"
    );
    let text = std::fs::read_to_string(&pg_conf).unwrap();
    assert!(text.contains("[pg]\nconninfo = host=127.0.0.1 port=1 user=postgres\nbackup_method = postgres\narchiver = on\ncompression = bzip2\n\n[pg-dr]"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&auto).unwrap(),
        "[pg]\nminimum_redundancy = 2\n"
    );
    assert_eq!(shown(&conf, "compression"), "bzip2");
    assert_eq!(shown(&conf, "minimum_redundancy"), "2");
    let queue = std::fs::read_to_string(dir.path().join("home/cfg_changes.queue")).unwrap();
    assert_eq!(queue.trim(), "[]");

    // Refused, nothing written: an unknown option, a bad value, a line break, a server
    // named as a model, a new model without its cluster.
    let before = (
        std::fs::read(&pg_conf).unwrap(),
        std::fs::read(&auto).unwrap(),
    );
    for (json, why) in [
        (
            r#"[{"scope": "server", "server_name": "pg", "no_such_option": "1"}]"#,
            "Invalid option 'no_such_option' for server 'pg'",
        ),
        (
            r#"[{"scope": "server", "server_name": "pg", "minimum_redundancy": "many"}]"#,
            "minimum_redundancy",
        ),
        (
            r#"[{"scope": "server", "server_name": "pg", "description": "x\nssh_command = rm -rf /"}]"#,
            "line break",
        ),
        (
            r#"[{"scope": "model", "model_name": "pg", "compression": "gzip"}]"#,
            "'pg' is a server, not a model.",
        ),
        (
            r#"[{"scope": "model", "model_name": "new", "compression": "gzip"}]"#,
            "new model but 'cluster' is missing.",
        ),
        (
            r#"[{"scope": "cluster", "server_name": "pg"}]"#,
            "'scope' is invalid",
        ),
        ("not json", "not JSON"),
    ] {
        let (code, out, err) = update(json);
        assert_eq!(code, 1, "{json}: {out}{err}");
        assert!(err.contains(why), "{json}: {err}");
        assert_eq!(
            (
                std::fs::read(&pg_conf).unwrap(),
                std::fs::read(&auto).unwrap()
            ),
            before,
            "{json}"
        );
    }

    // A new model, then switched to and reset.
    let (code, out, err) = update(
        r#"[{"scope": "model", "model_name": "pg-new", "cluster": "pg", "compression": "zstd"}]"#,
    );
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(&auto).unwrap();
    assert!(
        text.contains("[pg-new]\n") && text.contains("model = on\n"),
        "{text}"
    );
    let (code, out, err) = barman(&conf, &["config-switch", "pg", "pg-new"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Applying model 'pg-new' to server 'pg'"),
        "{out}"
    );
    assert!(
        out.contains("Changing value of option 'compression' for server 'pg' from 'bzip2' to 'zstd' through the model 'pg-new'"),
        "{out}"
    );
    assert_eq!(shown(&conf, "compression"), "zstd");
    assert_eq!(active_model(&conf), "pg-new");
    let (code, out, _) = barman(&conf, &["config-switch", "pg", "pg-new"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("is already active for server 'pg', skipping..."),
        "{out}"
    );

    // Barman reads the same.
    if let Some(python) = barman_testkit::tools::oracle_python() {
        let out = Command::new(python.with_file_name("barman"))
            .arg("-c")
            .arg(&conf)
            .args(["show-servers", "pg"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("\tcompression: zstd\n"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("\tminimum_redundancy: 2\n"), "{text}");
    }

    for (args, why) in [
        (&["config-switch", "pg", "nope"][..], "Unknown model 'nope'"),
        (
            &["config-switch", "pg"][..],
            "Either a model name or '--reset' flag need to be given",
        ),
    ] {
        let (code, _, err) = barman(&conf, args);
        assert_eq!(code, 1, "{args:?}");
        assert!(err.contains(why), "{err}");
    }
    let (code, out, err) = barman(&conf, &["config-switch", "pg", "--reset"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Resetting the active model for the server pg"),
        "{out}"
    );
    assert_eq!(shown(&conf, "compression"), "bzip2");
    // A model of another cluster is refused.
    std::fs::write(
        dir.path().join("barman.d/other.conf"),
        "[other-dr]\nmodel = true\ncluster = other\n",
    )
    .unwrap();
    let (code, _, err) = barman(&conf, &["config-switch", "pg", "other-dr"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("which is not compatible with 'cluster=pg'"),
        "{err}"
    );
    assert_eq!(active_model(&conf), serde_json::Value::Null);

    // A change left queued (as Barman's config-update writes its queue) is applied by
    // cron, first.
    std::fs::write(
        dir.path().join("home/cfg_changes.queue"),
        format!(
            r#"[{{"section": "pg", "changes_set": [{{"key": "compression", "value": "gzip", "config_file": "{}"}}]}}]"#,
            pg_conf.display()
        ),
    )
    .unwrap();
    let (code, out, err) = barman(&conf, &["cron"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("from 'bzip2' to 'gzip' through config-update."),
        "{out}"
    );
    assert_eq!(shown(&conf, "compression"), "gzip");
    let queue = std::fs::read_to_string(dir.path().join("home/cfg_changes.queue")).unwrap();
    assert_eq!(queue.trim(), "[]");
}

/// cron and archive-wal handle servers in parallel: a server whose archive hook hangs
/// does not hold back another server's WAL archiving (Barman's cron runs them one after
/// another, its archive-wal takes one server).
#[test]
fn a_hung_server_does_not_hold_back_the_others_archiving() {
    let Some(site) = crate::recover::Site::start_with(&[], "postgres") else {
        return;
    };
    site.insert(1, 10);
    let name = site
        .pg
        .sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
        .unwrap();
    site.switch_and_wait();
    let segment = site.pg.data().join("pg_wal").join(&name);
    for (tag, args) in [("cron", &["cron"][..]), ("aw", &["archive-wal", "all"][..])] {
        let marks = site.pg.dir().join(format!("marks-{tag}"));
        std::fs::create_dir(&marks).unwrap();
        let hook = site.pg.dir().join(format!("slow-hook-{tag}.sh"));
        std::fs::write(
            &hook,
            format!(
                "#!/bin/sh\ntouch {m}/started\nsleep 10\ntouch {m}/finished\n",
                m = marks.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let (hung, fast) = (format!("a-hung-{tag}"), format!("b-fast-{tag}"));
        let mut text = std::fs::read_to_string(&site.conf).unwrap();
        for (server, extra) in [
            (&hung, format!("pre_archive_script = {}\n", hook.display())),
            (&fast, String::new()),
        ] {
            text.push_str(&format!(
                "\n[{server}]\nconninfo = host=127.0.0.1 port=1 user=postgres\nbackup_method = postgres\narchiver = on\n{extra}"
            ));
            let incoming = site.home.join(server).join("incoming");
            std::fs::create_dir_all(&incoming).unwrap();
            std::fs::copy(&segment, incoming.join(&name)).unwrap();
        }
        std::fs::write(&site.conf, text).unwrap();
        let run = Command::new(crate::support::BARMAN)
            .arg("-c")
            .arg(&site.conf)
            .args(args)
            .env_remove("BARMAN_RS_CRON_JOBS")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut run = Holder(run);
        let xlogdb = site.home.join(&fast).join(format!("wals/{fast}-xlog.db"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let archived = std::fs::read_to_string(&xlogdb).is_ok_and(|db| db.contains(&name));
            if archived {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{tag}: {fast} never archived"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(
            !marks.join("finished").exists(),
            "{tag}: {fast} was archived only after {hung}'s hook ended"
        );
        assert!(run.0.wait().unwrap().success(), "{tag}");
        assert!(marks.join("finished").exists());
        let db =
            std::fs::read_to_string(site.home.join(&hung).join(format!("wals/{hung}-xlog.db")))
                .unwrap();
        assert!(db.contains(&name), "{tag}: {db}");
    }
}

/// Barman's backup-method checks: `pg_basebackup` and its compatibility with the
/// server (postgres method), `ssh` (rsync method).
#[test]
fn check_runs_the_backup_method_checks() {
    let Some(site) = crate::recover::Site::start_with(&[], "postgres") else {
        return;
    };
    let line = |conf: &Path, server: &str, name: &str| {
        let (_, out, err) = barman(conf, &["check", server]);
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in {out}{err}"))
            .trim()
            .to_owned()
    };
    assert_eq!(line(&site.conf, "pg", "pg_basebackup"), "pg_basebackup: OK");
    assert_eq!(
        line(&site.conf, "pg", "pg_basebackup compatible"),
        "pg_basebackup compatible: OK"
    );
    assert_eq!(
        line(
            &site.conf,
            "pg",
            "pg_basebackup supports tablespaces mapping"
        ),
        "pg_basebackup supports tablespaces mapping: OK"
    );
    // An older pg_basebackup first in path_prefix (a fake, as the fault).
    let old = site.pg.dir().join("old-bin");
    std::fs::create_dir(&old).unwrap();
    std::fs::write(
        old.join("pg_basebackup"),
        "#!/bin/sh\necho 'pg_basebackup (PostgreSQL) 12.22'\n",
    )
    .unwrap();
    std::fs::set_permissions(
        old.join("pg_basebackup"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let text = std::fs::read_to_string(&site.conf).unwrap();
    let conninfo = format!(
        "host={} port=5432 user=postgres dbname=postgres",
        site.pg.dir().display()
    );
    let Some(sshd) = barman_testkit::Sshd::start() else {
        return;
    };
    std::fs::write(
        &site.conf,
        format!(
            "{text}\n[old]\nconninfo = {conninfo}\nbackup_method = postgres\narchiver = on\npath_prefix = {}\n\n[viassh]\nconninfo = {conninfo}\nbackup_method = rsync\narchiver = on\nssh_command = {}\n\n[nossh]\nconninfo = {conninfo}\nbackup_method = rsync\narchiver = on\nssh_command = ssh -p 1 -o ConnectTimeout=5 postgres@127.0.0.1\n",
            old.display(),
            sshd.ssh_command()
        ),
    )
    .unwrap();
    let compat = line(&site.conf, "old", "pg_basebackup compatible");
    assert!(
        compat.starts_with("pg_basebackup compatible: FAILED (PostgreSQL version: 15")
            && compat.ends_with("pg_basebackup version: 12.22)"),
        "{compat}"
    );
    assert_eq!(
        line(&site.conf, "viassh", "ssh"),
        "ssh: OK (PostgreSQL server)"
    );
    let failed = line(&site.conf, "nossh", "ssh");
    assert!(failed.starts_with("ssh: FAILED ("), "{failed}");
}
