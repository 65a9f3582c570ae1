//! `list-servers`, `show-servers`, configuration errors, output formats.

use std::process::Command;

const BARMAN: &str = env!("CARGO_BIN_EXE_barman");

fn run(args: &[&str], conf: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(BARMAN)
        .arg("-c")
        .arg(conf)
        .args(args)
        .env_remove("BARMAN_CONFIG_FILE")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let d = dir.join("barman.d");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("pg2.conf"),
        "[pg2]\ndescription = 'second cluster'\nconninfo = host=pg2\nbackup_method = postgres\narchiver = on\nactive = false\n",
    )
    .unwrap();
    let main = dir.join("barman.conf");
    std::fs::write(
        &main,
        format!(
            "[barman]\nbarman_home = {home}\nconfiguration_files_directory = {d}\ncompression = gzip\n\n[pg1]\ndescription = \"main cluster\"\nconninfo = host=pg1\nbackup_method = postgres\narchiver = on\n",
            home = dir.join("home").display(),
            d = d.display()
        ),
    )
    .unwrap();
    main
}

#[test]
fn lists_and_shows_servers_in_both_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = config(tmp.path());
    let (code, out, err) = run(&["list-servers"], &conf);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "pg1 - main cluster\npg2 - second cluster (inactive)\n");
    assert_eq!(run(&["list-servers", "--minimal"], &conf).1, "pg1\npg2\n");
    let (_, json, _) = run(&["-f", "json", "list-servers"], &conf);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["pg1"]["description"], "main cluster");

    let (code, out, _) = run(&["show-servers", "pg1"], &conf);
    assert_eq!(code, 0);
    assert!(out.starts_with("Server pg1 main cluster:\n"), "{out}");
    assert!(out.contains("\tcompression: gzip\n"), "{out}");
    assert!(
        out.contains(&format!(
            "\twals_directory: {}/home/pg1/wals\n",
            tmp.path().display()
        )),
        "{out}"
    );
    let lines: Vec<&str> = out.lines().skip(1).collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
    let (_, json, _) = run(&["-f", "json", "show-servers", "all"], &conf);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["pg2"]["active"], "False");
    assert_eq!(v["pg1"]["retention_policy"], serde_json::Value::Null);
}

#[test]
fn errors_are_one_line_with_exit_code_1() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = config(tmp.path());
    let (code, _, err) = run(&["show-servers", "nope"], &conf);
    assert_eq!((code, err.as_str()), (1, "ERROR: unknown server 'nope'\n"));
    let bad = tmp.path().join("bad.conf");
    std::fs::write(&bad, "[barman]\nbarman_home = /x\n[pg]\nconninfo = host=x\nbackup_method = postgres\narchiver = maybe\n").unwrap();
    let (code, _, err) = run(&["list-servers"], &bad);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("bad.conf, line 6, [pg] archiver: invalid value \"maybe\""),
        "{err}"
    );
    let (code, _, err) = run(&["list-servers"], &tmp.path().join("missing.conf"));
    assert_eq!(code, 1);
    assert!(err.contains("missing.conf"), "{err}");
    // Usage errors exit with 2.
    let out = Command::new(BARMAN)
        .args(["no-such-command"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
