//! `export-backup` and `import-backup`, both ways with Barman 3.19: a backup exported
//! from one repository is imported into another of the same cluster and recovered
//! from; damaged tarballs and other clusters' are refused with nothing written.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::recover::{Copy, DIGEST, Site};
use crate::support::{barman, barman_as_server};

/// A second repository for the site's cluster: its own barman_home, the same
/// identity.json. Returns its configuration.
fn other_repo(site: &Site, name: &str) -> PathBuf {
    let home = site.pg.dir().join(name);
    std::fs::create_dir_all(home.join("pg")).unwrap();
    std::fs::copy(
        site.home.join("pg/identity.json"),
        home.join("pg/identity.json"),
    )
    .unwrap();
    let conf = site.pg.dir().join(format!("{name}.conf"));
    let text = std::fs::read_to_string(&site.conf).unwrap();
    let text = text.replace(
        &format!("barman_home = {}", site.home.display()),
        &format!("barman_home = {}", home.display()),
    );
    std::fs::write(&conf, text).unwrap();
    site.pg.give_to_server_user(site.pg.dir()).unwrap();
    conf
}

fn the_tarball(dir: &Path) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("backup-export-"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

fn barman_py(python: &Path, conf: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(python.with_file_name("barman"))
        .arg("-c")
        .arg(conf)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Barman's copy of a configuration: barman_user set to whoever runs the test.
fn for_barman(conf: &Path) -> PathBuf {
    let user = barman_testkit::tools::run(Command::new("id").arg("-un"))
        .trim()
        .to_owned();
    let out = conf.with_extension("py.conf");
    let text = std::fs::read_to_string(conf).unwrap();
    std::fs::write(
        &out,
        text.replace("[barman]\n", &format!("[barman]\nbarman_user = {user}\n")),
    )
    .unwrap();
    out
}

#[test]
fn a_backup_moves_between_repositories_as_a_tarball() {
    let Some(site) = Site::start_with(&[], "postgres") else {
        return;
    };
    site.insert(1, 500);
    let (code, out, err) = barman_as_server(&site.conf, &["backup", "--wait", "pg"]);
    assert_eq!(code, 0, "{out}{err}");
    let expected = site.digest();
    let (_, out, _) = barman(&site.conf, &["-f", "json", "list-backups", "pg"]);
    let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["pg"][0]["backup_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let exports = site.pg.dir().join("exports");
    std::fs::create_dir(&exports).unwrap();
    site.pg.give_to_server_user(&exports).unwrap();

    // Refused: a bad level, a missing directory.
    let (code, _, err) = barman(
        &site.conf,
        &[
            "export-backup",
            "--compression-level",
            "5",
            "pg",
            &id,
            "/tmp",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("--compression-level requires --compression"),
        "{err}"
    );
    let (code, _, err) = barman(
        &site.conf,
        &["export-backup", "pg", &id, "/nonexistent-dir"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");

    let (code, out, err) = barman_as_server(
        &site.conf,
        &[
            "export-backup",
            "--compression",
            "gzip",
            "pg",
            &id,
            &exports.display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let tarball = the_tarball(&exports);
    let file = tarball.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        file.starts_with(&format!("backup-export-pg-{id}-")) && file.ends_with(".tar.gz"),
        "{file}"
    );
    assert!(out.contains("Export completed successfully"), "{out}");

    // Imported into another repository, kept, verified, recovered from.
    let conf2 = other_repo(&site, "second");
    let (code, out, err) = barman_as_server(
        &conf2,
        &["import-backup", "pg", &tarball.display().to_string()],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "Successfully imported backup '{id}' into server 'pg'"
        )),
        "{out}"
    );
    assert!(!err.contains("WARNING"), "{err}");
    let (code, out, _) = barman(&conf2, &["keep", "--status", "pg", &id]);
    assert_eq!(code, 0);
    assert!(out.contains("standalone"), "{out}");
    let (code, out, err) = barman(&conf2, &["verify-backup", "pg", &id]);
    assert_eq!(code, 0, "{out}{err}");
    let dest = site.dest("imported");
    let (code, out, err) = barman(&conf2, &["recover", "pg", &id, &dest.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    let copy = Copy::start(&site, &dest, true);
    copy.wait_replayed();
    assert_eq!(copy.sql(DIGEST), expected);
    drop(copy);
    // Twice: refused.
    let (code, _, err) = barman_as_server(
        &conf2,
        &["import-backup", "pg", &tarball.display().to_string()],
    );
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");

    // A damaged tarball (one byte changed): refused before anything is written.
    let damaged_dir = site.pg.dir().join("damaged");
    std::fs::create_dir(&damaged_dir).unwrap();
    let damaged = damaged_dir.join(&file);
    let mut bytes = std::fs::read(&tarball).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&damaged, bytes).unwrap();
    site.pg.give_to_server_user(&damaged_dir).unwrap();
    let conf3 = other_repo(&site, "third");
    let (code, _, err) = barman_as_server(
        &conf3,
        &["import-backup", "pg", &damaged.display().to_string()],
    );
    assert_eq!(code, 1);
    assert!(err.contains("checksum mismatch"), "{err}");
    // Another cluster: refused, nothing in the catalogue.
    std::fs::write(
        site.pg.dir().join("third/pg/identity.json"),
        "{\"systemid\": \"1\", \"version\": \"15\"}",
    )
    .unwrap();
    let (code, _, err) = barman(
        &conf3,
        &["import-backup", "pg", &tarball.display().to_string()],
    );
    assert_eq!(code, 1);
    assert!(err.contains("Server identity mismatch"), "{err}");
    assert!(!site.pg.dir().join(format!("third/pg/base/{id}")).exists());
    let (_, out, _) = barman(&conf3, &["list-backups", "pg"]);
    assert!(!out.contains(&id), "{out}");

    // Both ways with Barman 3.19.
    let Some(python) = barman_testkit::tools::oracle_python() else {
        return;
    };
    // Barman imports our tarball.
    let conf4 = other_repo(&site, "fourth");
    let (code, out, err) = barman_py(
        &python,
        &for_barman(&conf4),
        &["import-backup", "pg", &tarball.display().to_string()],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = barman(&conf4, &["verify-backup", "pg", &id]);
    assert_eq!(code, 0, "barman-rs reads what Barman imported: {out}{err}");
    // We import Barman's export.
    let theirs = site.pg.dir().join("barman-exports");
    std::fs::create_dir(&theirs).unwrap();
    let (code, out, err) = barman_py(
        &python,
        &for_barman(&site.conf),
        &[
            "export-backup",
            "--compression",
            "bzip2",
            "pg",
            &id,
            &theirs.display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let their_tarball = the_tarball(&theirs);
    let conf5 = other_repo(&site, "fifth");
    let (code, out, err) = barman(
        &conf5,
        &["import-backup", "pg", &their_tarball.display().to_string()],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = barman(&conf5, &["verify-backup", "pg", &id]);
    assert_eq!(code, 0, "{out}{err}");
    let dest = site.dest("from-barman-export");
    let (code, out, err) = barman(&conf5, &["recover", "pg", &id, &dest.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    let copy = Copy::start(&site, &dest, true);
    copy.wait_replayed();
    assert_eq!(copy.sql(DIGEST), expected);
}
