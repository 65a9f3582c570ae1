//! Backups from a streaming standby (`primary_conninfo`): the copy comes from the
//! standby, barman switches WAL on the primary so that the backup's last segment is
//! archived, and the backup is DONE and restorable.

use crate::recover::{Copy, DIGEST, Site};
use crate::support::{barman, barman_as_server};

fn standby_backup(method: &str) {
    let Some(site) = Site::start_with(&[], method) else {
        return;
    };
    site.insert(1, 1000);
    let standby = site.pg.start_standby().unwrap();
    // Backed up from the standby; WAL still archived by the primary.
    let text = std::fs::read_to_string(&site.conf).unwrap();
    let primary_ci = format!(
        "host={} port=5432 user=postgres dbname=postgres",
        site.pg.dir().display()
    );
    let standby_ci = format!(
        "host={} port=5432 user=postgres dbname=postgres",
        standby.dir().display()
    );
    std::fs::write(
        &site.conf,
        text.replace(
            &format!("conninfo = {primary_ci}"),
            &format!("conninfo = {standby_ci}\nprimary_conninfo = {primary_ci}"),
        ),
    )
    .unwrap();
    // Without primary_conninfo, a standby is refused with what to do.
    let bare = site.pg.dir().join("bare.conf");
    std::fs::write(
        &bare,
        text.replace(
            &format!("conninfo = {primary_ci}"),
            &format!("conninfo = {standby_ci}"),
        ),
    )
    .unwrap();
    site.pg.give_to_server_user(site.pg.dir()).unwrap();
    let (code, _, err) = barman_as_server(&bare, &["backup", "pg"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("set primary_conninfo"), "{err}");

    // Barman's primary/standby checks.
    let (_, out, _) = barman(&site.conf, &["check", "pg"]);
    for ok in [
        "PostgreSQL server is standby: OK",
        "Primary server is not a standby: OK",
        "Primary and standby have same system ID: OK",
    ] {
        assert!(out.contains(ok), "{ok}: {out}");
    }
    let swapped = site.pg.dir().join("swapped.conf");
    std::fs::write(
        &swapped,
        text.replace(
            &format!("conninfo = {primary_ci}"),
            &format!("conninfo = {primary_ci}\nprimary_conninfo = {standby_ci}"),
        ),
    )
    .unwrap();
    let (code, out, _) = barman(&swapped, &["check", "pg"]);
    assert_eq!(code, 1);
    assert!(out.contains("PostgreSQL server is standby: FAILED (conninfo should point to a standby server if primary_conninfo is set)"), "{out}");
    assert!(out.contains("Primary server is not a standby: FAILED (primary_conninfo should point to a primary server, not a standby)"), "{out}");

    // The standby has replayed everything the primary committed.
    let expected = site.digest();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while standby.sql(DIGEST).unwrap() != expected {
        assert!(
            std::time::Instant::now() < deadline,
            "the standby never caught up"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (code, out, err) = barman_as_server(
        &site.conf,
        &["backup", "--wait", "--wait-timeout", "120", "pg"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (_, out, _) = barman(&site.conf, &["-f", "json", "list-backups", "pg"]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let b = &doc["pg"][0];
    assert_eq!(b["status"], "DONE", "{out}");
    let id = b["backup_id"].as_str().unwrap().to_owned();
    let (code, out, err) = barman(&site.conf, &["verify-backup", "pg", &id]);
    assert_eq!(code, 0, "{out}{err}");
    let dest = site.dest("from-standby");
    let (code, out, err) = barman(
        &site.conf,
        &[
            "recover",
            "--target-immediate",
            "pg",
            &id,
            &dest.display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    // Not a standby once restored.
    let _ = std::fs::remove_file(dest.join("standby.signal"));
    let copy = Copy::start(&site, &dest, true);
    copy.wait_replayed();
    assert_eq!(copy.sql(DIGEST), expected);
}

#[test]
fn postgres_backup_from_a_standby() {
    standby_backup("postgres");
}

#[test]
fn local_rsync_backup_from_a_standby() {
    standby_backup("local-rsync");
}
