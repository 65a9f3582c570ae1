//! barman-core's INI reader against CPython's configparser, on generated files.

use std::io::Write;
use std::process::{Command, Stdio};

use barman_core::config::{Ini, IniError};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

/// Lines that exercise every rule: headers (odd ones too), options with `=` and `:`,
/// blanks around them, continuation lines, blank lines inside values, comments, `%`
/// interpolation (valid, escaped, broken, missing, looping), case folding, DEFAULT.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["[barman]", "[pg]", "[DEFAULT]", "[ pg ]", "[a]b]", "[]", "[x] trailing", "  [pg]"]).prop_map(str::to_owned),
        8 => (
            prop::sample::select(vec!["barman_home", "Path", "name", "dir", "x", "loop", "other", " sp ", "ÉTÉ", ""]),
            prop::sample::select(vec![" = ", "=", ": ", " :", " =  "]),
            prop::sample::select(vec![
                "/var/lib/barman", "%(barman_home)s/x", "%(name)s", "100%%", "5%", "%(missing)s", "%(loop)s",
                "%(dir)s/%(path)s", "'quoted'", "\"dq\"", "a = b", "x:y", "None", "", "%(PATH)s", "%(x)", "%()s",
            ]),
        ).prop_map(|(k, d, v)| format!("{k}{d}{v}")),
        2 => prop::sample::select(vec!["    continued", "\tmore", "  %(x)s", " deeper: still value"]).prop_map(str::to_owned),
        2 => prop::sample::select(vec!["", "   ", "# comment", "; comment", "  # indented comment", "no delimiter"]).prop_map(str::to_owned),
    ]
}

fn file() -> impl Strategy<Value = String> {
    prop::collection::vec(line(), 0..14).prop_map(|lines| {
        let mut s = String::from("[barman]\n");
        for l in lines {
            s.push_str(&l);
            s.push('\n');
        }
        s
    })
}

fn ours(files: &[(String, String)], vars: &[(String, String)]) -> Value {
    let mut ini = Ini::default();
    for (name, text) in files {
        if let Err(e) = ini.read(name, text) {
            let kind = match e {
                IniError::MissingSectionHeader { .. } => "MissingSectionHeaderError",
                _ => "ParsingError",
            };
            return json!({"error": kind});
        }
    }
    let sections: Vec<&str> = ini.sections().collect();
    let mut values = serde_json::Map::new();
    for section in std::iter::once("DEFAULT").chain(sections.iter().copied()) {
        let mut m = serde_json::Map::new();
        let names = if section == "DEFAULT" {
            ini.options("\u{0}no-such-section")
        } else {
            ini.options(section)
        };
        for option in names {
            let v = match ini.get(section, &option, vars) {
                Ok(Some(v)) => json!(v),
                Ok(None) => json!(null),
                Err(IniError::InterpolationSyntax { .. }) => {
                    json!({"error": "InterpolationSyntaxError"})
                }
                Err(IniError::InterpolationMissing { .. }) => {
                    json!({"error": "InterpolationMissingOptionError"})
                }
                Err(IniError::InterpolationDepth { .. }) => {
                    json!({"error": "InterpolationDepthError"})
                }
                Err(e) => json!({"error": e.to_string()}),
            };
            m.insert(option, v);
        }
        values.insert(section.to_owned(), Value::Object(m));
    }
    json!({"sections": sections, "values": values})
}

#[test]
fn reads_like_python_configparser() {
    let mut runner = TestRunner::new(Config {
        cases: 1,
        ..Config::default()
    });
    let strategy = prop::collection::vec((prop::collection::vec(file(), 1..3), any::<bool>()), 700);
    let cases = strategy.new_tree(&mut runner).unwrap().current();
    let mut inputs = Vec::new();
    let mut expected = Vec::new();
    for (texts, with_vars) in &cases {
        let files: Vec<(String, String)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("f{i}.conf"), t.clone()))
            .collect();
        let vars: Vec<(String, String)> = if *with_vars {
            vec![
                ("name".to_owned(), "pg".to_owned()),
                ("barman_home".to_owned(), "/srv/b".to_owned()),
            ]
        } else {
            vec![]
        };
        let vars_json: serde_json::Map<String, Value> =
            vars.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        inputs.push(json!({"files": files, "vars": vars_json}));
        expected.push(ours(&files, &vars));
    }
    let mut child = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/core/ini_oracle.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (CPython is part of the machine image)");
    let data = serde_json::to_vec(&inputs).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let w = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    w.join().unwrap().unwrap();
    assert!(out.status.success());
    let theirs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut parsed_ok = 0;
    for (i, (a, b)) in expected.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "case {i}: {}", inputs[i]);
        parsed_ok += usize::from(a.get("sections").is_some());
    }
    assert!(
        parsed_ok > 200,
        "only {parsed_ok} generated files parsed: the generator needs tuning"
    );
}
