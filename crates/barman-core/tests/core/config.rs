//! barman-core's configuration model against Barman 3.19 itself (`barman.config.Config`),
//! on generated configurations.
//!
//! The oracle is `config_oracle.py`, run with `BARMAN_ORACLE_PYTHON` if set, else
//! `/tmp/barman-venv/bin/python` if it exists; otherwise the tests are skipped with a
//! message, or fail if `BARMAN_REQUIRE_ORACLE=1`. `BARMAN_CONFIG_SEED` changes the
//! generated cases; `BARMAN_CONFIG_CASES` their number (default 400).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use barman_core::config::{
    Config, ConfigError, ConfigSource, Kind, LoadOptions, SERVER_OPTIONS, ServerConfig,
    UnknownOptions, Value, normalise_path,
};
use barman_wal::CompressionLevel;
use serde_json::{Value as Json, json};

#[allow(clippy::disallowed_methods)]
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn oracle_python() -> Option<PathBuf> {
    if let Some(p) = env("BARMAN_ORACLE_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let default = Path::new("/tmp/barman-venv/bin/python");
    if default.exists() {
        return Some(default.to_owned());
    }
    assert!(
        env("BARMAN_REQUIRE_ORACLE").as_deref() != Some("1"),
        "BARMAN_REQUIRE_ORACLE=1 but no Barman: set BARMAN_ORACLE_PYTHON"
    );
    eprintln!(
        "skipped: Barman is not installed (set BARMAN_ORACLE_PYTHON to a python with barman 3.19)"
    );
    None
}

fn run_oracle(python: &Path, args: &[&str], input: &Json) -> Json {
    let mut child = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/core/config_oracle.py"
        ))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the oracle python starts");
    let data = serde_json::to_vec(input).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let w = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    w.join().unwrap().unwrap();
    assert!(out.status.success(), "oracle failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn option_table_is_barmans() {
    let Some(python) = oracle_python() else {
        return;
    };
    let spec = run_oracle(&python, &["--spec"], &json!(null));
    let keys: Vec<&str> = spec["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let ours: Vec<&str> = SERVER_OPTIONS.iter().map(|s| s.name).collect();
    assert_eq!(ours, keys, "KEYS order");
    let barman_keys = spec["barman_keys"].as_array().unwrap();
    let mut model_keys: Vec<&str> = vec!["model"];
    for s in SERVER_OPTIONS {
        assert_eq!(
            s.default,
            spec["defaults"][s.name].as_str(),
            "default of {}",
            s.name
        );
        assert_eq!(
            s.inherited,
            barman_keys.contains(&json!(s.name)),
            "inheritance of {}",
            s.name
        );
        assert_eq!(
            s.fixed(),
            spec["fixed"].as_array().unwrap().contains(&json!(s.name))
        );
        if s.in_models() {
            model_keys.push(s.name);
        }
    }
    model_keys.sort_unstable();
    assert_eq!(json!(model_keys), spec["model_keys"]);
}

/// A file-system [`ConfigSource`] for the generated cases.
struct Fs;

impl ConfigSource for Fs {
    fn read(&self, path: &str) -> Option<String> {
        let p = Path::new(path);
        p.is_file()
            .then(|| std::fs::read_to_string(p).ok())
            .flatten()
    }
    fn list_dir(&self, dir: &str) -> Option<Vec<String>> {
        let entries = std::fs::read_dir(dir).ok()?;
        Some(
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect(),
        )
    }
    fn real_path(&self, path: &str) -> String {
        normalise_path(path)
    }
}

/// SplitMix64: reproducible cases without a generator framework.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

fn shout(rng: &mut Rng, s: &str) -> String {
    match rng.below(4) {
        0 => s.to_uppercase(),
        _ => s.to_owned(),
    }
}

/// A valid value of `kind` for `option`.
fn valid(rng: &mut Rng, option: &str, kind: Kind, dir: &str) -> String {
    match kind {
        Kind::Bool => rng
            .pick(&[
                "on", "off", "true", "FALSE", "1", "0", "yes", "No", "t", "f",
            ])
            .to_owned(),
        Kind::Int => rng.pick(&["0", "5", "-3", "+7", "1_000", "42"]).to_owned(),
        Kind::Text if option.ends_with("_directory") => {
            format!("{dir}/{}", rng.pick(&["a", "b", "a/wals", "b/base", "c"]))
        }
        Kind::Text => rng
            .pick(&[
                "host=pg user=barman",
                "/usr/local/bin/hook.sh",
                "ssh postgres@pg",
                "a b  c",
                "100%%%%",
                "x:y=z",
            ])
            .to_owned(),
        Kind::OneOf(words) => {
            let w = words[rng.below(words.len())];
            shout(rng, w)
        }
        Kind::OneOfExact(words) => words[rng.below(words.len())].to_owned(),
        Kind::Encryption => rng.pick(&["none", "gpg", "GPG", "None"]).to_owned(),
        Kind::Compression => {
            let w = rng_word(
                rng,
                &[
                    "gzip", "bzip2", "pygzip", "pybzip2", "pigz", "xz", "zstd", "lz4", "snappy",
                    "custom",
                ],
            );
            shout(rng, w)
        }
        Kind::CompressionLevel => rng
            .pick(&["low", "Medium", "HIGH", "5", "-1", "9"])
            .to_owned(),
        Kind::AbsolutePath => rng.pick(&["/tmp/staging", "/var/tmp/x"]).to_owned(),
        Kind::DirectoryOrUrl => match rng.below(4) {
            0 => rng
                .pick(&[
                    "s3://bucket/prefix",
                    "gs://bucket/x",
                    "https://acct.blob.core.windows.net/c/p",
                ])
                .to_owned(),
            _ => format!("{dir}/{}", rng.pick(&["a", "b", "a/wals", "d"])),
        },
        Kind::SlotName => rng.pick(&["barman", "Barman_1", "slot_2"]).to_owned(),
        Kind::NameList => rng.pick(&["disk1", "d1,d2", "x"]).to_owned(),
        Kind::Interval => rng
            .pick(&[
                "1 day", "2 weeks", "3 MONTHS", "4 hours", "5  days", "1 Week",
            ])
            .to_owned(),
        Kind::Size => rng
            .pick(&["10", "10k", "5 Mi", "1Gi", "7 T", "3Ki", "2 M"])
            .to_owned(),
        Kind::Csv(words, _) if words.contains(&"get-wal") => rng
            .pick(&["get-wal", "delta-restore, get-wal", "", "GET-WAL"])
            .to_owned(),
        Kind::Csv(..) => rng
            .pick(&[
                "concurrent_backup",
                "exclusive_backup,external_configuration",
                "",
                "CONCURRENT_BACKUP , external_configuration",
                "concurrent_backup,concurrent_backup",
            ])
            .to_owned(),
        Kind::NonNegativeInt => rng.pick(&["0", "2", "10"]).to_owned(),
        Kind::Bandwidth => rng.pick(&["0", "100", "250"]).to_owned(),
        Kind::TablespaceBandwidth => rng.pick(&["tbs1:100", "a:1 b:2", "a:100  b:7"]).to_owned(),
        Kind::Retention => rng
            .pick(&[
                "REDUNDANCY 2",
                "recovery window of 1 week",
                "RECOVERY WINDOW OF 3 DAYS",
                "redundancy   1",
            ])
            .to_owned(),
        Kind::Exactly(w) => w.to_owned(),
        _ => "x".to_owned(),
    }
}

fn rng_word<'a>(rng: &mut Rng, words: &[&'a str]) -> &'a str {
    words[rng.below(words.len())]
}

/// A value `kind` rejects, if there is one.
fn invalid(rng: &mut Rng, kind: Kind) -> Option<String> {
    Some(match kind {
        Kind::Bool => rng.pick(&["maybe", "2", "enabled"]).to_owned(),
        Kind::Int => rng.pick(&["x1", "1.5", "1__0", "ten"]).to_owned(),
        Kind::OneOf(_) => "bogus".to_owned(),
        Kind::OneOfExact(words) => words[0].to_uppercase().replace("AES256", "aes256"),
        Kind::Encryption => "aes".to_owned(),
        Kind::Compression => rng.pick(&["brotli", "none"]).to_owned(),
        Kind::CompressionLevel => rng.pick(&["max", "--3"]).to_owned(),
        Kind::AbsolutePath => "relative/x".to_owned(),
        Kind::DirectoryOrUrl => "ftp://host/x".to_owned(),
        Kind::SlotName => "bad-name".to_owned(),
        Kind::NameList => "a,,b".to_owned(),
        Kind::Interval => rng.pick(&["2 years", "2weeks", "day"]).to_owned(),
        Kind::Size => rng.pick(&["10 KB", "k10", "1.5G"]).to_owned(),
        Kind::Csv(words, _) if words.contains(&"get-wal") => "get-wal,bogus".to_owned(),
        Kind::Csv(..) => rng
            .pick(&["bogus", "exclusive_backup,concurrent_backup", ","])
            .to_owned(),
        Kind::NonNegativeInt => rng.pick(&["-1", "two"]).to_owned(),
        Kind::Bandwidth => "fast".to_owned(),
        Kind::TablespaceBandwidth => "a:x".to_owned(),
        Kind::Retention => rng
            .pick(&["REDUNDANCY", "RECOVERY WINDOW OF 2 HOURS"])
            .to_owned(),
        _ => return None,
    })
}

/// Options where Barman's behaviour for an empty value is a crash or a warning (we treat
/// it as unset): not generated empty.
const NO_EMPTY: [&str; 3] = [
    "minimum_redundancy",
    "retention_policy_mode",
    "wal_retention_policy",
];

fn decorate(rng: &mut Rng, option: &str, value: String) -> String {
    match rng.below(20) {
        0 if !NO_EMPTY.contains(&option) => String::new(),
        1 if !NO_EMPTY.contains(&option) => "None".to_owned(),
        2 | 3 => format!("\"{value}\""),
        4 => format!("'{value}'"),
        _ => value,
    }
}

struct Case {
    main: String,
    /// What was injected on purpose: (section, option, value) of an invalid value.
    injected: Option<(String, String, String)>,
}

fn generate(rng: &mut Rng, dir: &Path) -> Case {
    let d = dir.to_str().unwrap();
    let home = format!("{d}/home");
    std::fs::create_dir_all(&home).unwrap();
    let confd = format!("{d}/conf.d");
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut main = String::new();
    if rng.chance(15) {
        main.push_str("[DEFAULT]\ndescription = shared\n\n");
    }
    main.push_str(&format!(
        "[barman]\nbarman_home = {}\n",
        if rng.chance(10) {
            format!("\"{home}\"")
        } else {
            home.clone()
        }
    ));
    if rng.chance(40) {
        main.push_str(&format!("configuration_files_directory = {confd}\n"));
    }
    if rng.chance(20) {
        main.push_str(rng.pick(&[
            "barman_user = postgres\n",
            "log_level = DEBUG\n",
            "log_file = /tmp/b.log\n",
            "lock_directory_cleanup = off\n",
        ]));
    }
    let inheritable: Vec<_> = SERVER_OPTIONS.iter().filter(|s| s.inherited).collect();
    for _ in 0..rng.below(6) {
        let spec = inheritable[rng.below(inheritable.len())];
        let v = valid(rng, spec.name, spec.kind, d);
        let v = decorate(rng, spec.name, v);
        main.push_str(&format!("{} = {v}\n", spec.name));
    }
    let mut injected = None;
    let n_servers = 1 + rng.below(3);
    let mut sections: Vec<(String, String, bool)> = Vec::new(); // (file key, text, model)
    for i in 0..n_servers {
        let name = format!("pg{i}");
        let mut text = format!("[{name}]\n");
        if rng.chance(90) {
            text.push_str("conninfo = host=pg dbname=postgres\n");
        }
        for _ in 0..rng.below(10) {
            let spec = &SERVER_OPTIONS[rng.below(SERVER_OPTIONS.len())];
            if spec.fixed() || spec.name == "conninfo" {
                continue;
            }
            let v = valid(rng, spec.name, spec.kind, d);
            let v = decorate(rng, spec.name, v);
            text.push_str(&format!("{} = {v}\n", spec.name));
        }
        if rng.chance(8) {
            text.push_str("streaming_archiver_name = %(description)s-x\n");
        }
        let file = if rng.chance(30) {
            format!("{confd}/{i:02}-{name}.conf")
        } else {
            "main".to_owned()
        };
        sections.push((file, text, false));
    }
    if rng.chance(15) {
        let mut text = format!(
            "[model{}]\nmodel = {}\ncluster = pg0\n",
            rng.below(2),
            rng.pick(&["true", "on", "1"])
        );
        for _ in 0..rng.below(4) {
            let spec = &SERVER_OPTIONS[rng.below(SERVER_OPTIONS.len())];
            if spec.in_models() && spec.name != "cluster" {
                let v = valid(rng, spec.name, spec.kind, d);
                text.push_str(&format!("{} = {v}\n", spec.name));
            }
        }
        sections.push(("main".to_owned(), text, true));
    }
    // One invalid value, in a server or in [barman].
    if rng.chance(30) {
        let spec = &SERVER_OPTIONS[rng.below(SERVER_OPTIONS.len())];
        if let Some(bad) = invalid(rng, spec.kind).filter(|_| !spec.fixed()) {
            if spec.inherited && rng.chance(30) {
                main.push_str(&format!("{} = {bad}\n", spec.name));
                injected = Some(("barman".to_owned(), spec.name.to_owned(), bad));
            } else {
                sections[0].1.push_str(&format!("{} = {bad}\n", spec.name));
                injected = Some(("pg0".to_owned(), spec.name.to_owned(), bad));
            }
        }
    }
    if rng.chance(5) {
        sections[0].1.push_str("no_such_option = 1\n");
    }
    for (file, text, _) in &sections {
        if file == "main" {
            main.push('\n');
            main.push_str(text);
        } else {
            files.insert(file.clone(), text.clone());
        }
    }
    if rng.chance(10) {
        files.insert(
            format!("{home}/.barman.auto.conf"),
            "[pg0]\nactive = off\n".to_owned(),
        );
    }
    if !files.is_empty() || rng.chance(50) {
        std::fs::create_dir_all(&confd).unwrap();
    }
    for (path, text) in files {
        std::fs::write(path, text).unwrap();
    }
    let main_path = format!("{d}/barman.conf");
    std::fs::write(&main_path, &main).unwrap();
    Case {
        main: main_path,
        injected,
    }
}

/// Our value of `option` in the oracle's normalised form.
fn normalised(server: &ServerConfig, option: &str) -> Json {
    let spec = SERVER_OPTIONS.iter().find(|s| s.name == option).unwrap();
    let Some(v) = server.get(option) else {
        return Json::Null;
    };
    match v {
        Value::Text(s)
            if option == "wal_retention_policy" && server.retention_policy().is_some() =>
        {
            json!({"policy": s.to_uppercase()})
        }
        Value::Text(s) => json!(s),
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Interval(d) => json!({"seconds": d.as_secs()}),
        Value::Size(n) => json!(n),
        Value::Compression(c) => json!(c.name()),
        Value::CompressionLevel(CompressionLevel::Low) => json!("low"),
        Value::CompressionLevel(CompressionLevel::Medium) => json!("medium"),
        Value::CompressionLevel(CompressionLevel::High) => json!("high"),
        Value::CompressionLevel(CompressionLevel::Exact(n)) => json!(n),
        Value::Retention(p) => json!({"policy": p.to_string()}),
        Value::List(l) if matches!(spec.kind, Kind::Csv(..)) => json!({"set": l}),
        Value::List(l) => json!(l),
        Value::Rules(rules) => {
            let bw = server.options().bandwidth_limit;
            let map: serde_json::Map<String, Json> = rules
                .iter()
                .filter(|(_, v)| Some(*v) != bw)
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            if map.is_empty() {
                Json::Null
            } else {
                Json::Object(map)
            }
        }
        other => json!(format!("{other:?}")),
    }
}

/// Barman's complaints about values or options (not about files or directories), as
/// (section or "", option, value or "").
fn complaints(messages: &[Json]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for m in messages {
        let text = m[1].as_str().unwrap();
        if let Some(rest) = text.strip_prefix("Ignoring invalid configuration value '") {
            let (value, rest) = rest.split_once("' for key ").unwrap();
            let (key, rest) = rest.split_once(" in ").unwrap();
            if value.is_empty() {
                continue; // an empty value: unset, for us
            }
            let section = rest
                .split_once(" section")
                .map_or("", |(s, _)| s.trim_matches(['[', ']']));
            out.push((section.to_owned(), key.to_owned(), value.to_owned()));
        } else if let Some(rest) = text.strip_prefix("Invalid configuration option \"") {
            let (key, rest) = rest.split_once("\" in [").unwrap();
            out.push((
                rest.split_once(']').unwrap().0.to_owned(),
                key.to_owned(),
                String::new(),
            ));
        } else {
            for (prefix, key) in [
                ("Invalid bandwidth_limit", "bandwidth_limit"),
                (
                    "Invalid tablespace_bandwidth_limit rule",
                    "tablespace_bandwidth_limit",
                ),
                ("Negative value of minimum_redundancy", "minimum_redundancy"),
                ("Invalid minimum_redundancy", "minimum_redundancy"),
                ("Unsupported retention_policy_mode", "retention_policy_mode"),
                ("Unsupported wal_retention_policy", "wal_retention_policy"),
                ("Invalid retention_policy setting", "retention_policy"),
                (
                    "Invalid wal_retention_policy setting",
                    "wal_retention_policy",
                ),
            ] {
                if text.starts_with(prefix) {
                    out.push((String::new(), key.to_owned(), String::new()));
                }
            }
        }
    }
    out
}

#[test]
fn resolves_like_barman() {
    let Some(python) = oracle_python() else {
        return;
    };
    let seed: u64 = env("BARMAN_CONFIG_SEED").map_or(0xBA5E_BA11, |s| s.parse().unwrap());
    let n: usize = env("BARMAN_CONFIG_CASES").map_or(400, |s| s.parse().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng(seed);
    let cases: Vec<Case> = (0..n)
        .map(|i| generate(&mut rng, &tmp.path().join(format!("c{i}"))))
        .collect();
    let paths: Vec<&str> = cases.iter().map(|c| c.main.as_str()).collect();
    let answers = run_oracle(&python, &[], &json!(paths));
    let mut stats = BTreeMap::<&str, usize>::new();
    for (i, (case, theirs)) in cases.iter().zip(answers.as_array().unwrap()).enumerate() {
        let text = std::fs::read_to_string(&case.main).unwrap();
        let ctx = || {
            format!(
                "case {i} (seed {seed}), injected {:?}:\n{text}\nbarman: {theirs:#}",
                case.injected
            )
        };
        let opts = LoadOptions::default().skip_server_checks(true);
        let ours = Config::load_with(&case.main, &text, &Fs, opts);
        let messages = theirs["messages"].as_array().unwrap();
        let problems = complaints(messages);
        if theirs.get("error").is_some() {
            if let Err(e) = &ours {
                eprintln!("both failed: {e}");
            }
            assert!(ours.is_err(), "Barman failed, we did not: {}", ctx());
            *stats.entry("both failed").or_default() += 1;
            continue;
        }
        let conflicts = !theirs["global_msg_list"].as_array().unwrap().is_empty()
            || theirs["servers"]
                .as_object()
                .unwrap()
                .values()
                .any(|s| !s["msg_list"].as_array().unwrap().is_empty());
        if !problems.is_empty() || conflicts {
            let err = ours
                .err()
                .unwrap_or_else(|| panic!("Barman complained, we did not: {}", ctx()));
            match &err {
                ConfigError::InvalidValue { at, .. } | ConfigError::UnknownOption { at, .. } => {
                    assert!(
                        problems
                            .iter()
                            .any(|(s, o, v)| (s.is_empty() || *s == at.section)
                                && *o == at.option
                                && (v.is_empty() || *v == at.value)),
                        "our error {err} is not one of Barman's {problems:?}: {}",
                        ctx()
                    );
                    assert!(err.to_string().starts_with(&format!("{}, line ", at.file)));
                    *stats.entry("both rejected a value").or_default() += 1;
                }
                ConfigError::PathConflict { .. } => {
                    assert!(conflicts, "{err}: {}", ctx());
                    *stats.entry("both found a path conflict").or_default() += 1;
                }
                _ => panic!("unexpected error {err}: {}", ctx()),
            }
            if let Some((section, option, value)) = &case.injected {
                let _ = (section, option, value);
            }
            continue;
        }
        let ours = ours.unwrap_or_else(|e| panic!("we failed: {e}: {}", ctx()));
        let g = &theirs["global"];
        let og = ours.global();
        assert_eq!(json!(og.barman_home), g["barman_home"], "{}", ctx());
        assert_eq!(json!(og.barman_user), g["barman_user"], "{}", ctx());
        assert_eq!(json!(og.barman_lock_directory), g["barman_lock_directory"]);
        assert_eq!(
            json!(og.lock_directory_cleanup),
            g["lock_directory_cleanup"]
        );
        assert_eq!(json!(og.config_changes_queue), g["config_changes_queue"]);
        assert_eq!(json!(og.log_file), g["log_file"]);
        assert_eq!(json!(og.log_level), g["log_level"]);
        assert_eq!(json!(og.log_format), g["log_format"]);
        let servers = theirs["servers"].as_object().unwrap();
        let mut names: Vec<&str> = ours.server_names().collect();
        names.sort_unstable(); // serde_json's map is sorted
        assert_eq!(
            names,
            servers.keys().map(String::as_str).collect::<Vec<_>>(),
            "{}",
            ctx()
        );
        for server in ours.servers() {
            let values = &servers[server.name()]["values"];
            for spec in SERVER_OPTIONS {
                assert_eq!(
                    normalised(server, spec.name),
                    values[spec.name],
                    "[{}] {}: {}",
                    server.name(),
                    spec.name,
                    ctx()
                );
            }
        }
        let models = theirs["models"].as_object().unwrap();
        assert_eq!(ours.models().len(), models.len(), "{}", ctx());
        for model in ours.models() {
            let theirs = &models[model.name()];
            let mut n = 1; // `model`
            for (spec, _) in model.iter() {
                assert!(
                    !theirs[spec.name].is_null(),
                    "model {} {}: {}",
                    model.name(),
                    spec.name,
                    ctx()
                );
                n += 1;
            }
            assert_eq!(
                n,
                theirs.as_object().unwrap().len(),
                "model {}: {}",
                model.name(),
                ctx()
            );
        }
        *stats.entry("same values").or_default() += 1;
    }
    eprintln!("{stats:?}");
    assert!(
        stats.get("same values").copied().unwrap_or(0) > n / 3,
        "too few valid cases: {stats:?}"
    );
    assert!(
        stats.get("both rejected a value").copied().unwrap_or(0) > n / 20,
        "too few invalid cases: {stats:?}"
    );
}

#[test]
fn unknown_options_can_be_warnings() {
    let text = "[barman]\nbarman_home = /b\n[pg]\nconninfo = x\nssh_command = ssh pg\narchiver = on\nbackup_options = concurrent_backup\nbogus = 1\n";
    let err = Config::load("/etc/barman.conf", text, &Fs).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/barman.conf, line 8, [pg] bogus: invalid configuration option (not a Barman server option)"
    );
    let opts = LoadOptions::default().unknown_options(UnknownOptions::Warn);
    let config = Config::load_with("/etc/barman.conf", text, &Fs, opts).unwrap();
    assert_eq!(
        config.warnings(),
        ["/etc/barman.conf, line 8: Invalid configuration option \"bogus\" in [pg] section."]
    );
}

mod rules {
    use barman_core::config::{Config, ConfigError, MemorySource, Value};

    const HEAD: &str = "[barman]\nbarman_home = /b\n";

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::load(
            "/etc/barman.conf",
            &format!("{HEAD}{text}"),
            &MemorySource::default(),
        )
    }

    /// The error loading `text`, or why its server is disabled.
    fn err(text: &str) -> String {
        match load(text) {
            Err(e) => e.to_string(),
            Ok(c) => c
                .servers()
                .iter()
                .find_map(|s| s.disabled().map(str::to_owned))
                .expect("an error, or a disabled server"),
        }
    }

    #[test]
    fn barman_home_is_required() {
        let e = Config::load(
            "/etc/barman.conf",
            "[barman]\nbarman_user = x\n",
            &MemorySource::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/barman.conf: Parameter barman_home is required in [barman] section"
        );
        assert!(matches!(
            Config::load("/c", "", &MemorySource::default()),
            Err(ConfigError::MissingBarmanHome { .. })
        ));
    }

    #[test]
    fn all_is_reserved() {
        assert!(err("[all]\nconninfo = x\n").contains("the reserved word 'all'"));
    }

    #[test]
    fn invalid_values_name_their_place() {
        assert_eq!(
            err("compression = brotli\n[pg]\nconninfo = x\n"),
            "/etc/barman.conf, line 3, [barman] compression: invalid value \"brotli\": expected one of gzip, bzip2, pygzip, pybzip2, pigz, xz, zstd, lz4, snappy, custom"
        );
        assert!(
            err("[pg]\nbackup_options = exclusive_backup, concurrent_backup\n")
                .contains("cannot contain both")
        );
        assert!(
            err("[pg]\nwal_retention_policy = MAIN\n")
                .contains("[pg] wal_retention_policy: invalid value \"MAIN\"")
        );
        assert!(err("log_level = LOUD\n").contains("[barman] log_level"));
    }

    #[test]
    fn empty_and_none_values() {
        let c = load("compression = gzip\npath_prefix = /opt/pg/bin\n[pg]\nconninfo = x\nssh_command = ssh pg\narchiver = None\ncompression =\npath_prefix = None\nstreaming_archiver_name = ''\n").unwrap();
        let pg = c.server("pg").unwrap();
        // An empty value unsets and blocks inheritance; `None` of a boolean falls back.
        assert_eq!(pg.compression(), None);
        assert_eq!(pg.get("path_prefix"), None);
        assert_eq!(pg.get("streaming_archiver_name"), None);
        assert!(pg.archiver(), "forced on, with a warning");
        assert!(c.warnings().iter().any(|w| w == "Forcing 'archiver = on'"));
    }

    #[test]
    fn keepalive_interval_is_not_inherited() {
        let c = load(
            "keepalive_interval = 5\n[pg]\nconninfo = x\nssh_command = ssh pg\narchiver = on\n",
        )
        .unwrap();
        assert_eq!(
            c.server("pg").unwrap().get("keepalive_interval"),
            Some(&Value::Int(60))
        );
    }

    #[test]
    fn consistency_rules() {
        assert!(
            err("[pg]\nconninfo = x\nbackup_method = local-rsync\nssh_command = ssh pg\n")
                .contains("Local copy requires ssh_command")
        );
        assert!(err("[pg]\nconninfo = x\n").contains("Missing or invalid ssh_command"));
        assert!(err("[pg]\nssh_command = ssh pg\n").contains("Missing 'conninfo'"));
        assert!(
            err("[pg]\nconninfo = x\nbackup_method = postgres\nreuse_backup = link\n")
                .contains("reuse_backup option is not supported by postgres")
        );
        assert!(
            err("[pg]\nconninfo = x\nbackup_method = postgres\nstreaming_archiver = on\n")
                .contains("Streaming-only archiver requires")
        );
        assert!(
            err("[pg]\nconninfo = x\nssh_command = ssh pg\nbackup_compression = gzip\n")
                .contains("backup_compression option is not supported by rsync")
        );
        assert!(
            err("[pg]\nconninfo = x\nssh_command = ssh pg\nbackup_method = snapshot\n")
                .contains("snapshot_disks option is required")
        );
        // Inactive servers are not checked, as in Barman; nor are passive nodes' missing
        // connection strings: they follow their primary.
        assert!(load("[pg]\nactive = off\n").is_ok());
        let passive = load("[pg]\nprimary_ssh_command = ssh other-barman\n").unwrap();
        assert!(passive.server("pg").unwrap().disabled().is_none());
    }

    #[test]
    fn postgres_method_defaults_to_concurrent_backup() {
        let c = load("[pg]\nconninfo = x\nbackup_method = postgres\narchiver = on\nbackup_options = exclusive_backup\n").unwrap();
        assert_eq!(
            c.server("pg").unwrap().options().backup_options,
            ["concurrent_backup"]
        );
    }

    #[test]
    fn path_conflicts() {
        let e =
            load("[a]\nactive = off\n[b]\nactive = off\nbackup_directory = /b/a\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Conflicting path: backup_directory=/b/a for server 'b' conflicts with 'backup_directory' for server 'a'"
        );
        let e = load("[a]\nactive = off\nwals_directory = /b/a/base/\n").unwrap_err();
        assert!(e.to_string().contains("wals_directory=/b/a/base/ for server 'a' conflicts with 'basebackups_directory' for server 'a'"), "{e}");
    }

    #[test]
    fn included_files_and_models() {
        let src = MemorySource::default()
            .with(
                "/etc/barman.d/pg.conf",
                "[pg]\nconninfo = x\nssh_command = ssh pg\narchiver = on\ncluster = main\n",
            )
            .with(
                "/etc/barman.d/m.conf",
                "[fast]\nmodel = true\ncluster = main\nparallel_jobs = 8\n",
            )
            .with("/etc/barman.d/notes.txt", "[ignored]\n")
            .with("/b/pg/.active-model.auto", "fast\n")
            .with(
                "/b/.barman.auto.conf",
                "[pg]\ndescription = from config-update\n",
            );
        let main = format!("{HEAD}configuration_files_directory = /etc/barman.d\n");
        let c = Config::load("/etc/barman.conf", &main, &src).unwrap();
        assert_eq!(
            c.files(),
            [
                "/etc/barman.conf",
                "/etc/barman.d/m.conf",
                "/etc/barman.d/pg.conf",
                "/b/.barman.auto.conf"
            ]
        );
        assert_eq!(c.server_names().collect::<Vec<_>>(), ["pg"]);
        let pg = c.server("pg").unwrap();
        assert_eq!(pg.active_model(), Some("fast"));
        assert_eq!(pg.options().parallel_jobs, 8);
        assert_eq!(
            pg.options().description.as_deref(),
            Some("from config-update")
        );
        assert_eq!(c.model("fast").unwrap().cluster(), "main");

        let bad =
            MemorySource::default().with("/etc/barman.d/x.conf", "[barman]\ncompression = gzip\n");
        let e = Config::load("/etc/barman.conf", &main, &bad).unwrap_err();
        assert!(
            matches!(e, ConfigError::GlobalSectionInInclude { .. }),
            "{e}"
        );

        let e = Config::load(
            "/etc/barman.conf",
            &main,
            &MemorySource::default().with("/etc/barman.d/m.conf", "[m]\nmodel = on\n"),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("Parameter \"cluster\" is required in a model"),
            "{e}"
        );
    }

    #[test]
    fn default_section_stays_in_its_file() {
        let src = MemorySource::default().with(
            "/d/pg.conf",
            "[pg]\nconninfo = x\nssh_command = ssh pg\narchiver = on\n",
        );
        let main = format!(
            "[DEFAULT]\ndescription = everyone\n{HEAD}configuration_files_directory = /d\n[a]\nconninfo = y\nssh_command = ssh a\narchiver = on\n"
        );
        let c = Config::load("/etc/barman.conf", &main, &src).unwrap();
        assert_eq!(
            c.server("a").unwrap().options().description.as_deref(),
            Some("everyone")
        );
        assert_eq!(c.server("pg").unwrap().options().description, None);
    }
}

#[test]
fn the_configuration_is_found_where_barman_looks() {
    use barman_core::config::{FsSource, config_file};
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join("conf.d")).unwrap();
    // Nothing anywhere (the system locations are not looked at when a home holds a
    // file; without one, whatever /etc holds decides, so only the error is checked
    // when /etc has none).
    if !std::path::Path::new("/etc/barman.conf").exists()
        && !std::path::Path::new("/etc/barman/barman.conf").exists()
    {
        assert_eq!(
            config_file(None, None, Some(&home)),
            Err(ConfigError::NoConfigFile)
        );
    }
    let main = home.join(".barman.conf");
    std::fs::write(
        &main,
        format!(
            "[barman]\nbarman_home = {}\nconfiguration_files_directory = ~/conf.d\n",
            dir.path().display()
        ),
    )
    .unwrap();
    std::fs::write(
        home.join("conf.d/pg.conf"),
        "[pg]\nconninfo = host=pg\nbackup_method = postgres\narchiver = on\n",
    )
    .unwrap();
    assert_eq!(config_file(None, None, Some(&home)).unwrap(), main);
    let c = Config::load_file(&main, &FsSource::new(Some(home.clone()))).unwrap();
    assert_eq!(c.server_names().collect::<Vec<_>>(), ["pg"]);
    // An explicit file, then BARMAN_CONFIG_FILE, win.
    let other = dir.path().join("other.conf");
    assert_eq!(
        config_file(Some(&other), Some(main.as_os_str()), Some(&home)).unwrap(),
        other
    );
    assert_eq!(
        config_file(None, Some(other.as_os_str()), Some(&home)).unwrap(),
        other
    );
    let err = Config::load_file(&other, &FsSource::new(Some(home))).unwrap_err();
    assert!(matches!(err, ConfigError::Unreadable { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", other.display())),
        "{err}"
    );
}
