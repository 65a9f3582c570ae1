//! The command-line surface against Barman 3.19's own: every subcommand, alias and
//! option its argparse parser defines (read from the installed package) must be in
//! our `--help`, or be listed in [`PENDING`] with the reason it is not there yet.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use barman_testkit::tools::oracle_python;

use super::support::BARMAN;

/// What Barman has and barman-rs does not, yet: (command, option or `""` for the
/// whole command, why). The test fails when an entry here is no longer missing, so
/// the list shrinks as the surface grows.
const PENDING: &[(&str, &str, &str)] = &[
    (
        "cloud-wal-archive",
        "",
        "cloud WAL archive: the object-storage issue",
    ),
    (
        "cloud-wal-restore",
        "",
        "cloud WAL archive: the object-storage issue",
    ),
];

/// Prints Barman's parser as JSON: the global options, then each command with its
/// aliases and the option strings of each of its options (positionals left out: their
/// names are help text, not syntax).
const DUMP: &str = r#"
import argparse, json
import barman.cli as cli
def options(parser):
    return [sorted(a.option_strings) for a in parser._actions
            if a.option_strings and not isinstance(a, argparse._HelpAction)]
commands, seen = {}, {}
for name, sub in cli.subparsers.choices.items():
    if id(sub) in seen:
        if name != seen[id(sub)]:
            commands[seen[id(sub)]]["aliases"].append(name)
        continue
    seen[id(sub)] = name
    commands[name] = {"aliases": [], "options": options(sub)}
print(json.dumps({"global": options(cli.p), "commands": commands}))
"#;

fn help(args: &[&str]) -> Option<String> {
    let out = Command::new(BARMAN).args(args).output().unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The subcommands `barman --help` lists.
fn our_commands(text: &str) -> BTreeSet<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The option strings (`-j`, `--jobs`, and visible aliases) a `--help` text lists.
fn our_options(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text
        .lines()
        .skip_while(|l| !l.starts_with("Options:"))
        .skip(1)
    {
        // Visible aliases, on the option's line or a line of its description:
        // `[alias: -x]`, `[aliases: --colour, --couleur]`.
        for marker in ["[alias: ", "[aliases: "] {
            if let Some(start) = line.find(marker) {
                let rest = &line[start + marker.len()..];
                for alias in rest.split(']').next().unwrap_or("").split(", ") {
                    if alias.starts_with('-') {
                        found.insert(alias.to_owned());
                    } else {
                        found.insert(format!("--{alias}"));
                    }
                }
            }
        }
        let trimmed = line.trim_start();
        if !trimmed.starts_with('-') {
            continue;
        }
        // `-j, --jobs <JOBS>` then, when the help is short, the description.
        let head = trimmed.split("  ").next().unwrap_or("");
        for word in head.split([',', ' ']) {
            if word.starts_with('-') {
                found.insert(word.to_owned());
            }
        }
    }
    found
}

#[test]
fn every_barman_command_and_option_is_here() {
    let Some(python) = oracle_python() else {
        return;
    };
    let out = Command::new(python).arg("-c").arg(DUMP).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let barman: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let top = help(&["--help"]).expect("barman --help");
    let commands = our_commands(&top);
    let mut missing: BTreeMap<(String, String), ()> = BTreeMap::new();
    let global = our_options(&top);
    for strings in barman["global"].as_array().unwrap() {
        for s in strings.as_array().unwrap() {
            let s = s.as_str().unwrap();
            if !global.contains(s) {
                missing.insert((String::new(), s.to_owned()), ());
            }
        }
    }
    for (name, spec) in barman["commands"].as_object().unwrap() {
        if name == "help" {
            continue;
        }
        let aliases: Vec<&str> = spec["aliases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        // Barman's name or one of its aliases may be our canonical name.
        let Some(ours) = std::iter::once(name.as_str())
            .chain(aliases.iter().copied())
            .find(|n| commands.contains(*n))
        else {
            missing.insert((name.clone(), String::new()), ());
            continue;
        };
        for alias in std::iter::once(name.as_str()).chain(aliases.iter().copied()) {
            if help(&[alias, "--help"]).is_none() {
                missing.insert((alias.to_owned(), String::new()), ());
            }
        }
        let options = our_options(&help(&[ours, "--help"]).unwrap());
        for strings in spec["options"].as_array().unwrap() {
            for s in strings.as_array().unwrap() {
                let s = s.as_str().unwrap();
                if !options.contains(s) {
                    missing.insert((name.clone(), s.to_owned()), ());
                }
            }
        }
    }

    let pending: BTreeMap<(String, String), &str> = PENDING
        .iter()
        .map(|(c, o, why)| (((*c).to_owned(), (*o).to_owned()), *why))
        .collect();
    let unexpected: Vec<String> = missing
        .keys()
        .filter(|k| !pending.contains_key(*k))
        .map(|(c, o)| format!("(\"{c}\", \"{o}\", \"\"),"))
        .collect();
    let stale: Vec<String> = pending
        .keys()
        .filter(|k| !missing.contains_key(*k))
        .map(|(c, o)| format!("{c} {o}"))
        .collect();
    eprintln!("still missing from Barman 3.19's surface:");
    for ((c, o), why) in &pending {
        eprintln!("  {c} {o}: {why}");
    }
    assert!(
        unexpected.is_empty(),
        "missing from our surface and not in PENDING:\n{}",
        unexpected.join("\n")
    );
    assert!(
        stale.is_empty(),
        "in PENDING but now present (remove them):\n{}",
        stale.join("\n")
    );
}

#[test]
fn help_parsing_reads_clap_output() {
    let text = "Options:\n  -j, --jobs <JOBS>\n          Jobs\n          \n          [alias: -x]\n      --target-tli <T>  The timeline [aliases: --tli, --timeline]\n  -h, --help  Print help\n";
    let found = our_options(text);
    for s in [
        "-j",
        "--jobs",
        "-x",
        "--target-tli",
        "--tli",
        "--timeline",
        "-h",
        "--help",
    ] {
        assert!(found.contains(s), "{s} in {found:?}");
    }
    let commands = our_commands(
        "Commands:\n  check   Check\n          more text\n  cron    Cron\n\nOptions:\n",
    );
    assert_eq!(commands, BTreeSet::from(["check".into(), "cron".into()]));
}

/// `-v` prints Barman's version first, as scripts read it; `-V` is kept.
#[test]
fn version_names_the_barman_release_followed() {
    for flag in ["-v", "--version", "-V"] {
        let out = Command::new(BARMAN).arg(flag).output().unwrap();
        assert!(out.status.success(), "{flag}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.split_whitespace().next(),
            Some(barman_core::BARMAN_VERSION),
            "{flag}: {text}"
        );
        assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    }
}

/// A configuration with one server whose PostgreSQL accepts connections and never
/// answers; `check_timeout` an hour.
fn silent_server(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let conf = dir.join("barman.conf");
    std::fs::write(
        &conf,
        format!(
            "[barman]\nbarman_home = {}\ncheck_timeout = 3600\n\n[pg]\nconninfo = host=127.0.0.1 port={port} user=postgres connect_timeout=3600\nbackup_method = postgres\narchiver = on\n",
            dir.join("home").display()
        ),
    )
    .unwrap();
    conf
}

/// `check --check-timeout` overrides check_timeout: a server that never answers is
/// reported within it, `check timeout` FAILED; `--color always` colours the statuses
/// and the `--colour` spelling is the same option.
#[test]
fn check_timeout_and_colours_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let conf = silent_server(dir.path(), listener.local_addr().unwrap().port());
    let mut child = Command::new(BARMAN)
        .arg("-c")
        .arg(&conf)
        .args(["--colour", "always", "check", "--check-timeout", "1", "pg"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Held open and never answered until the check is over.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("check ignored --check-timeout 1 (check_timeout = 3600 in the file)");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(listener);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("\tcheck timeout: \x1b[31mFAILED\x1b[0m"),
        "{stdout}"
    );
    assert!(stdout.contains("\x1b[32mOK\x1b[0m"), "{stdout}");

    // Never (and auto into a pipe): plain text.
    for color in [&["--color", "never"][..], &[]] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let conf = silent_server(dir.path(), listener.local_addr().unwrap().port());
        let out = Command::new(BARMAN)
            .arg("-c")
            .arg(&conf)
            .args(color)
            .args(["check", "--check-timeout", "1", "pg"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("\tcheck timeout: FAILED"), "{stdout}");
        assert!(!stdout.contains('\x1b'), "{stdout}");
    }
}

/// `check` asks every server at once: one that never answers (check_timeout an hour)
/// does not keep the next from being checked (its directories, which check creates,
/// appear while the first still waits).
#[test]
fn check_does_not_wait_for_one_server_before_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let conf = silent_server(dir.path(), listener.local_addr().unwrap().port());
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\n[pg2]\nconninfo = host=127.0.0.1 port=1 user=postgres\nbackup_method = postgres\narchiver = on\n");
    std::fs::write(&conf, text).unwrap();
    let mut child = Command::new(BARMAN)
        .arg("-c")
        .arg(&conf)
        .args(["check", "pg", "pg2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let second = dir.path().join("home/pg2/wals");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !second.is_dir() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("pg2 was not checked while pg did not answer");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "check ended before pg answered"
    );
    // pg's connection fails once the listener goes: the check ends.
    drop(listener);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
}

/// Barman's snapshot recovery and cloud backup options are refused with a clear
/// error, not as unknown arguments.
#[test]
fn snapshot_and_cloud_options_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let conf = silent_server(dir.path(), 1);
    let dest = dir.path().join("dest").display().to_string();
    for flag in [
        "--snapshot-recovery-instance",
        "--snapshot-recovery-zone",
        "--gcp-zone",
        "--azure-resource-group",
        "--aws-region",
    ] {
        let out = Command::new(BARMAN)
            .arg("-c")
            .arg(&conf)
            .args(["recover", flag, "x", "pg", "latest", &dest])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flag}: {err}");
        assert!(
            err.contains("snapshot recovery is not supported"),
            "{flag}: {err}"
        );
    }
    assert!(!dir.path().join("dest").exists());
    for flag in ["--cloud-staging-directory", "--cloud-staging-max-size"] {
        let out = Command::new(BARMAN)
            .arg("-c")
            .arg(&conf)
            .args(["backup", flag, "x", "pg"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flag}: {err}");
        assert!(err.contains("backups to cloud storage"), "{flag}: {err}");
    }
}
