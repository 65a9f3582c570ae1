//! Differential tests: the same generated inputs answered by barman-catalog and by
//! Barman's own Python code (`oracle.py`), compared.
//!
//! The oracle needs a Python that can `import barman` (`pip install barman`): set
//! `BARMAN_ORACLE_PYTHON` to it (CI does). Without one the tests say they are skipped,
//! unless `BARMAN_REQUIRE_ORACLE=1`, which makes that a failure.

use std::io::Write;
use std::process::{Command, Stdio};

use barman_catalog::{BackupInfo, PyDateTime, PyValue, RetentionPolicy, Tablespace, WalCleanup};
use barman_wal::{SegmentName, TimelineId, WalFileName, WalSegSize};
use serde_json::{Value, json};

use crate::model::{self, Rng};

fn python() -> Option<String> {
    let candidates = std::env::var("BARMAN_ORACLE_PYTHON")
        .into_iter()
        .chain(["python3".to_owned()]);
    for py in candidates {
        let ok = Command::new(&py)
            .args(["-c", "import barman.output, barman.retention_policies"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(py);
        }
    }
    assert!(
        std::env::var("BARMAN_REQUIRE_ORACLE").as_deref() != Ok("1"),
        "no Python with barman importable and BARMAN_REQUIRE_ORACLE=1 (set BARMAN_ORACLE_PYTHON)"
    );
    eprintln!("skipped: no Python with barman importable (set BARMAN_ORACLE_PYTHON)");
    None
}

fn ask(py: &str, cases: &[Value]) -> Vec<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/catalog/oracle.py");
    let mut child = Command::new(py)
        .arg(script)
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = serde_json::to_vec(cases).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn backups_json(g: &model::Generated) -> Value {
    let list: Vec<Value> = g
        .catalogue
        .iter()
        .map(|b| {
            let end = g.ends.iter().find(|(id, _)| *id == b.id).and_then(|(_, e)| *e);
            json!({
                "id": b.id.to_string(),
                "status": b.status.name(),
                "end": end,
                "parent": b.parent_backup_id.map(|p| p.to_string()),
                "children": b.children_backup_ids.as_ref().map(|c| c.iter().map(|i| i.to_string()).collect::<Vec<_>>()),
                "timeline": b.timeline.map(u32::from),
                "begin_wal": b.begin_wal.map(|s| s.to_string()),
                "end_wal": b.end_wal.map(|s| s.to_string()),
            })
        })
        .collect();
    Value::Array(list)
}

fn keeps_json(g: &model::Generated) -> Value {
    let mut m = serde_json::Map::new();
    for b in g.catalogue.iter() {
        if let Some(k) = g.catalogue.keep(b.id) {
            m.insert(b.id.to_string(), json!(k.name()));
        }
    }
    Value::Object(m)
}

#[test]
fn retention_matches_barman() {
    let Some(py) = python() else { return };
    let mut rng = Rng::new(7);
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for _ in 0..600 {
        let g = model::catalogue(&mut rng);
        let policy_text = match rng.below(2) {
            0 => format!(
                "{} {}",
                rng.pick(&["REDUNDANCY", "redundancy", "Redundancy "]),
                rng.below(6)
            ),
            _ => format!(
                "recovery window of {} {}",
                rng.below(20),
                rng.pick(&["day", "days", "WEEK", "weeks", "month", "MONTHS"])
            ),
        };
        let policy: RetentionPolicy = policy_text.parse().unwrap();
        let min_red = rng.below(4) as u32;
        let now = g.last_end + rng.below(40 * 86400) as i64;
        let report = policy.evaluate(
            &g.catalogue,
            min_red,
            jiff::Timestamp::from_second(now).unwrap(),
            &jiff::tz::TimeZone::UTC,
        );
        let statuses: serde_json::Map<String, Value> = report
            .statuses
            .iter()
            .map(|(id, s)| (id.to_string(), json!(s.name())))
            .collect();
        ours.push(json!({"normalised": policy.to_string(), "report": statuses}));
        cases.push(json!({
            "kind": "retention", "policy": policy_text, "min_red": min_red, "now": now,
            "backups": backups_json(&g), "keeps": keeps_json(&g),
        }));
    }
    let theirs = ask(&py, &cases);
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "case {i}: {}", cases[i]);
    }
}

#[test]
fn wal_cleanup_matches_barman() {
    let Some(py) = python() else { return };
    let mut rng = Rng::new(11);
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for _ in 0..600 {
        let g = model::catalogue(&mut rng);
        let Some(deleted) = g
            .catalogue
            .iter()
            .nth(rng.below(g.catalogue.len() as u64) as usize)
            .map(|b| b.id)
        else {
            continue;
        };
        let from_retention = rng.chance(50);
        let concurrent = rng.chance(70);
        // An archive: segments from before the first backup to after the last one on
        // every timeline used (across log boundaries, at the catalogue's segment size),
        // history files, backup labels and a partial file.
        let size = g.size;
        let (first_no, last_no) = g.archive_span(3, 3).unwrap();
        let max_tli = g
            .catalogue
            .iter()
            .filter_map(|b| b.timeline)
            .max()
            .unwrap_or(TimelineId::FIRST);
        let mut names: Vec<WalFileName> = Vec::new();
        for t in 1..=u32::from(max_tli) {
            if t > 1 {
                names.push(WalFileName::History(TimelineId::new(t)));
            }
            for no in first_no..=last_no {
                let seg = SegmentName::from_segment_no(TimelineId::new(t), no, size).unwrap();
                names.push(WalFileName::Segment(seg));
                if no % 5 == 0 {
                    names.push(WalFileName::BackupLabel {
                        segment: seg,
                        offset: 0x28,
                    });
                }
            }
        }
        if let Some(partial) = SegmentName::from_segment_no(max_tli, last_no + 1, size) {
            names.push(WalFileName::Partial(partial));
        }
        let removed: Vec<String> =
            match WalCleanup::plan(&g.catalogue, deleted, from_retention, concurrent) {
                None => vec![],
                Some(plan) => names
                    .iter()
                    .filter(|n| !plan.keeps(n))
                    .map(|n| n.to_string())
                    .collect(),
            };
        ours.push(json!({"removed": removed}));
        cases.push(json!({
            "kind": "cleanup", "backups": backups_json(&g), "keeps": keeps_json(&g),
            "deleted": deleted.to_string(), "from_retention": from_retention, "concurrent": concurrent,
            "names": names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        }));
    }
    let theirs = ask(&py, &cases);
    let mut removing = 0;
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "case {i}: {}", cases[i]);
        removing += usize::from(a["removed"].as_array().is_some_and(|r| !r.is_empty()));
    }
    assert!(
        removing > 50,
        "too few cases remove anything ({removing}): the generator is too tame"
    );
}

fn random_info(rng: &mut Rng, id: &str) -> BackupInfo {
    let mut b = BackupInfo::new(id.parse().unwrap());
    let texts = [
        "/var/lib/postgresql/15/main",
        "it's \"quoted\"",
        "tab\there",
        "ünïcødé",
        "x=y",
    ];
    let t = |rng: &mut Rng| -> Option<String> {
        rng.chance(80).then(|| (*rng.pick(&texts)).to_owned())
    };
    let int = |rng: &mut Rng| -> Option<i64> { rng.chance(80).then(|| rng.below(1 << 40) as i64) };
    let time = |rng: &mut Rng| -> Option<PyDateTime> {
        rng.chance(80).then(|| {
            let micros = if rng.chance(50) {
                0
            } else {
                rng.below(1_000_000) as i64
            };
            let ts = jiff::Timestamp::from_microsecond(
                1_700_000_000_000_000 + rng.below(1 << 45) as i64 * 1000 + micros,
            )
            .unwrap();
            PyDateTime::from_timestamp(
                ts,
                (*rng.pick(&[0i32, 3600, -18000, 19800, -12600])).to_owned(),
            )
        })
    };
    let seg = |rng: &mut Rng| -> Option<SegmentName> {
        rng.chance(80).then(|| {
            // Any log id, up to FFFFFFFF, and any position a 1 MiB segment can have.
            let log = if rng.chance(30) {
                rng.next() as u32
            } else {
                rng.below(3) as u32
            };
            SegmentName::new(
                TimelineId::new(1 + rng.below(3) as u32),
                log,
                rng.below(4096) as u32,
            )
            .unwrap()
        })
    };
    b.backup_label = rng.chance(70).then(|| {
        PyValue::Str(
            "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nLABEL: it's \"x\"\n"
                .into(),
        )
    });
    b.backup_name = rng.chance(30).then(|| "before upgrade".to_owned());
    b.begin_offset = int(rng);
    b.begin_time = time(rng);
    b.begin_wal = seg(rng);
    b.begin_xlog = rng
        .chance(80)
        .then(|| barman_wal::Lsn::new(rng.next() >> 20));
    b.children_backup_ids = rng.chance(30).then(|| {
        vec![
            "20261125T010000".parse().unwrap(),
            "20261126T010000".parse().unwrap(),
        ]
    });
    b.cluster_size = int(rng);
    b.compression = rng.chance(30).then(|| "gzip".to_owned());
    b.config_file = t(rng);
    b.copy_stats = rng.chance(70).then(|| {
        PyValue::Dict(vec![
            (
                PyValue::Str("copy_time".into()),
                PyValue::Float(rng.below(100_000) as f64 / 1000.0),
            ),
            (
                PyValue::Str("total_time".into()),
                PyValue::Float((rng.below(1000) as f64) * 1e-6),
            ),
            (
                PyValue::Str("number_of_workers".into()),
                PyValue::Int(rng.below(8) as i64),
            ),
        ])
    });
    b.data_checksums = rng
        .chance(50)
        .then(|| (*rng.pick(&["on", "off"])).to_owned());
    b.deduplicated_size = int(rng);
    b.end_offset = int(rng);
    b.end_time = time(rng);
    b.end_wal = seg(rng);
    b.end_xlog = rng
        .chance(80)
        .then(|| barman_wal::Lsn::new(rng.next() >> 20));
    b.error = rng
        .chance(20)
        .then(|| "failure copying files (rsync error: 23)".to_owned());
    b.hba_file = t(rng);
    b.ident_file = t(rng);
    b.included_files = rng.chance(40).then(|| {
        PyValue::List(vec![PyValue::Str(
            "/etc/postgresql/15/main/conf.d/a.conf".into(),
        )])
    });
    b.mode = Some((*rng.pick(&["postgres", "rsync-concurrent", "rsync-exclusive"])).to_owned());
    b.parent_backup_id = rng.chance(20).then(|| "20261124T010000".parse().unwrap());
    b.pgdata = t(rng);
    b.server_name = Some("pg-main".to_owned());
    b.size = int(rng);
    b.status = *rng.pick(&barman_catalog::BackupStatus::ALL);
    b.summarize_wal = rng.chance(30).then(|| "off".to_owned());
    b.systemid = rng.chance(80).then(|| rng.next().to_string());
    b.tablespaces = rng.chance(50).then(|| {
        vec![
            Tablespace {
                name: "tbs1".into(),
                oid: 16387,
                location: "/srv/tbs one".into(),
            },
            Tablespace {
                name: "it's".into(),
                oid: 16390,
                location: "/srv/o'brien".into(),
            },
        ]
    });
    b.timeline = rng
        .chance(80)
        .then(|| TimelineId::new(1 + rng.below(5) as u32));
    b.version = rng
        .chance(80)
        .then(|| *rng.pick(&[100023i64, 150004, 170002]));
    b.xlog_segment_size = WalSegSize::new(1 << (20 + rng.below(11))).unwrap();
    b
}

#[test]
fn backup_info_text_matches_barman() {
    let Some(py) = python() else { return };
    let mut rng = Rng::new(3);
    let mut cases = Vec::new();
    let mut texts = Vec::new();
    for i in 0..300 {
        let id = format!("202611{:02}T{:06}", 1 + i % 28, i);
        let info = random_info(&mut rng, &id);
        let text = info.to_string();
        // Our own round trip first.
        let back = BackupInfo::parse(&format!("{id}-backup.info"), &text).unwrap();
        assert_eq!(back, info, "{text}");
        cases.push(json!({"kind": "backup_info", "id": id, "text": text}));
        texts.push(text);
    }
    let theirs = ask(&py, &cases);
    for (i, (ours, theirs)) in texts.iter().zip(&theirs).enumerate() {
        assert_eq!(
            Some(ours.as_str()),
            theirs["text"].as_str(),
            "case {i}: Barman rewrote our backup.info differently: {theirs}"
        );
    }
}
