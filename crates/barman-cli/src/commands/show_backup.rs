//! `barman show-backup` (`show-backups`).

use std::process::ExitCode;
use std::time::Duration;

use barman_catalog::{BackupInfo, BackupType, PyDateTime, RetentionStatus};
use barman_core::catalogue::{BackupDetails, WalStats};
use barman_core::check::{human_readable_duration, pretty_size};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value, json};

use crate::commands::{backups_of, epoch, single};
use crate::{Context, fail};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server.
    pub server: String,
    /// The backup id, name or shortcut (latest, oldest, last-failed, latest-full).
    pub backup_id: String,
}

/// Runs the command.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    show(ctx, &args.server, &args.backup_id)
}

/// `barman show-backup SERVER BACKUP_ID`: the detailed report of one backup.
fn show(ctx: &Context, server: &str, backup_id: &str) -> ExitCode {
    let sc = match single(ctx, server) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let local = TimeZone::system();
    match backups_of(ctx, sc).show(backup_id, Timestamp::now(), &local) {
        Ok(d) => {
            for line in show_lines(sc.name(), &d, &local) {
                ctx.out(line);
            }
            ctx.json(&json!({ sc.name(): show_json(&d, &local) }));
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("server {server}: {e}")),
    }
}

/// The rows of `show-backup` on the console, as Barman renders them.
fn show_lines(server: &str, d: &BackupDetails, local: &TimeZone) -> Vec<String> {
    let row = |k: &str, v: String| format!("  {k:<23}: {v}");
    let header = |k: &str| format!("  {k}:");
    let nested = |k: &str, v: String| format!("    {k:<21}: {v}");
    let info = &d.info;
    let mut out = vec![format!("Backup {}:", info.id)];
    if let Some(name) = &info.backup_name {
        out.push(row("Backup Name", name.clone()));
    }
    out.push(row("Server Name", server.to_owned()));
    if let Some(sys) = &info.systemid {
        out.push(row("System Id", sys.clone()));
    }
    out.push(row("Status", info.status.name().to_owned()));
    let copy_done = info.status.is_copy_done();
    if copy_done {
        out.push(row("PostgreSQL Version", opt(info.version)));
        out.push(row("PGDATA directory", opt(info.pgdata.as_ref())));
        if let Some(c) = info.cluster_size.filter(|c| *c != 0) {
            out.push(row("Estimated Cluster Size", pretty_size(to_u64(c))));
        }
    }
    out.push(String::new());
    if info.data_checksums.is_some() || info.summarize_wal.is_some() {
        out.push(header("Server information"));
        if let Some(c) = &info.data_checksums {
            out.push(nested("Checksums", c.clone()));
        }
        if let Some(s) = &info.summarize_wal {
            out.push(nested("WAL summarizer", s.clone()));
        }
        out.push(String::new());
    }
    if !copy_done {
        if let Some(e) = &info.error {
            out.push(row("Error", e.clone()));
        }
        return out;
    }
    if let Some(ts) = info.tablespaces.as_ref().filter(|t| !t.is_empty()) {
        out.push(header("Tablespaces"));
        for t in ts {
            out.push(nested(&t.name, format!("{} (oid: {})", t.location, t.oid)));
        }
        out.push(String::new());
    }
    let wal = d.wal.clone().unwrap_or_default();
    let dedup = info.deduplicated_size.map_or(0, to_u64);
    out.push(header("Base backup information"));
    if let Some(mode) = &info.mode {
        out.push(nested("Backup Method", mode.clone()));
    }
    if let Some(enc) = info.encryption.as_ref().filter(|e| !e.is_empty()) {
        out.push(nested("Encryption", enc.clone()));
    }
    if info.mode.as_deref() == Some("postgres") {
        out.push(nested("Backup Type", info.backup_type().name().to_owned()));
    }
    if dedup != 0 {
        let mut s = pretty_size(dedup);
        if wal.wal_size != 0 {
            s.push_str(&format!(
                " ({} with WALs)",
                pretty_size(dedup + wal.wal_size)
            ));
        }
        out.push(nested("Backup Size", s));
    }
    if let Some(c) = info.compression.as_ref().filter(|c| *c != "none") {
        out.push(nested("Backup Compression", c.clone()));
    }
    if wal.wal_size != 0 {
        out.push(nested("WAL Size", pretty_size(wal.wal_size)));
    }
    if matches!(
        info.backup_type(),
        BackupType::Rsync | BackupType::Incremental
    ) {
        out.push(nested(
            "Resources saved",
            format!(
                "{} ({})",
                pretty_size(est_dedup_size(d)),
                percent(d.deduplication_ratio())
            ),
        ));
    }
    out.push(nested("Timeline", opt(info.timeline.map(u32::from))));
    out.push(nested("Begin WAL", opt(info.begin_wal)));
    out.push(nested("End WAL", opt(info.end_wal)));
    if wal.wal_num != 0 {
        out.push(nested("Number of WALs", wal.wal_num.to_string()));
    }
    if wal.compression_ratio() > 0.0 {
        out.push(nested(
            "WAL compression ratio",
            percent(wal.compression_ratio()),
        ));
    }
    out.push(nested(
        "Begin time",
        opt(info.begin_time.map(|t| localized(&t, local))),
    ));
    out.push(nested(
        "End time",
        opt(info.end_time.map(|t| localized(&t, local))),
    ));
    if let Some((copy, analysis, workers)) = copy_stats(info) {
        let mut s = human_readable_duration(Duration::from_secs_f64(copy));
        if analysis >= 1.0 {
            s.push_str(&format!(
                " + {} startup",
                human_readable_duration(Duration::from_secs_f64(analysis))
            ));
        }
        out.push(nested("Copy time", s));
        if dedup != 0 {
            let mut t = format!("{}/s", pretty_size((dedup as f64 / copy) as u64));
            if workers > 1 {
                t.push_str(&format!(" ({workers} jobs)"));
            }
            out.push(nested("Estimated throughput", t));
        }
    }
    out.push(nested("Begin Offset", opt(info.begin_offset)));
    out.push(nested("End Offset", opt(info.end_offset)));
    out.push(nested("Begin LSN", opt(info.begin_xlog)));
    out.push(nested("End LSN", opt(info.end_xlog)));
    out.push(String::new());
    out.push(header("WAL information"));
    out.push(nested("Number of files", wal.until_next_num.to_string()));
    out.push(nested("Disk usage", pretty_size(wal.until_next_size)));
    if wal.wals_per_second() > 0.0 {
        out.push(nested(
            "WAL rate",
            format!("{:.2}/hour", wal.wals_per_second() * 3600.0),
        ));
    }
    if wal.until_next_compression_ratio() > 0.0 {
        out.push(nested(
            "Compression ratio",
            percent(wal.until_next_compression_ratio()),
        ));
    }
    out.push(nested("Last available", opt(wal.last.map(|(n, _)| n))));
    out.push(String::new());
    out.push(header("Catalog information"));
    out.push(nested("Retention Policy", retention_text(d.retention)));
    out.push(nested(
        "Previous Backup",
        d.previous.map_or_else(
            || "- (this is the oldest base backup)".to_owned(),
            |b| b.to_string(),
        ),
    ));
    out.push(nested(
        "Next Backup",
        d.next.map_or_else(
            || "- (this is the latest base backup)".to_owned(),
            |b| b.to_string(),
        ),
    ));
    if info.backup_type() == BackupType::Incremental {
        out.push(nested("Root Backup", d.root.to_string()));
        out.push(nested("Parent Backup", opt(info.parent_backup_id)));
        out.push(nested("Backup chain size", d.chain_size.to_string()));
    }
    if info.mode.as_deref() == Some("postgres")
        && let Some(children) = &info.children_backup_ids
    {
        out.push(nested("Children Backup(s)", children_text(children)));
    }
    out
}

fn children_text(children: &[barman_catalog::BackupId]) -> String {
    children
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn retention_text(s: Option<RetentionStatus>) -> String {
    s.map_or_else(|| "not enforced".to_owned(), |s| s.name().to_owned())
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Barman's `est_dedup_size`: `(cluster_size or size) * deduplication_ratio`.
fn est_dedup_size(d: &BackupDetails) -> u64 {
    let base = d
        .info
        .cluster_size
        .filter(|c| *c != 0)
        .or(d.info.size)
        .unwrap_or(0);
    (base as f64 * d.deduplication_ratio()) as u64
}

/// `copy_time`, `analysis_time` and `number_of_workers` from `copy_stats`, when a copy
/// time is recorded.
fn copy_stats(info: &BackupInfo) -> Option<(f64, f64, i64)> {
    let stats = info.copy_stats.as_ref()?;
    let copy = stats.get("copy_time").and_then(|v| v.as_f64())?;
    if copy <= 0.0 {
        return None;
    }
    let analysis = stats
        .get("analysis_time")
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    let workers = stats
        .get("number_of_workers")
        .and_then(|v| v.as_int())
        .unwrap_or(1);
    Some((copy, analysis, workers))
}

fn show_json(d: &BackupDetails, local: &TimeZone) -> Value {
    let info = &d.info;
    let mut o = Map::new();
    o.insert("backup_id".into(), json!(info.id.to_string()));
    o.insert("status".into(), json!(info.status.name()));
    if let Some(name) = &info.backup_name {
        o.insert("backup_name".into(), json!(name));
    }
    if let Some(sys) = &info.systemid {
        o.insert("system_id".into(), json!(sys));
    }
    if info.status.is_copy_done() {
        o.insert("backup_type".into(), json!(info.backup_type().name()));
    }
    o.insert(
        "server_information".into(),
        json!({ "data_checksums": info.data_checksums, "summarize_wal": info.summarize_wal }),
    );
    if !info.status.is_copy_done() {
        if let Some(e) = &info.error {
            o.insert("error".into(), json!(e));
        }
        return Value::Object(o);
    }
    if let Some(c) = info.cluster_size.filter(|c| *c != 0) {
        o.insert("cluster_size".into(), json!(pretty_size(to_u64(c))));
        o.insert("cluster_size_bytes".into(), json!(c));
    }
    o.insert("postgresql_version".into(), json!(info.version));
    o.insert("pgdata_directory".into(), json!(info.pgdata));
    let wal = d.wal.clone().unwrap_or_default();
    let dedup = info.deduplicated_size.map_or(0, to_u64);
    let time = |t: &Option<PyDateTime>| {
        (
            json!(t.as_ref().map(|t| epoch(t, local))),
            json!(t.as_ref().map(|t| localized(t, local).to_string())),
        )
    };
    let (begin_ts, begin) = time(&info.begin_time);
    let (end_ts, end) = time(&info.end_time);
    let mut base = json!({
        "backup_method": info.mode,
        "encryption": info.encryption,
        "compression": info.compression,
        "backup_size": pretty_size(dedup),
        "backup_size_bytes": dedup,
        "backup_size_with_wals": pretty_size(dedup + wal.wal_size),
        "backup_size_with_wals_bytes": dedup + wal.wal_size,
        "wal_size": pretty_size(wal.wal_size),
        "wal_size_bytes": wal.wal_size,
        "timeline": info.timeline.map(u32::from),
        "begin_wal": info.begin_wal.map(|w| w.to_string()),
        "end_wal": info.end_wal.map(|w| w.to_string()),
        "wal_num": wal.wal_num,
        "begin_time_timestamp": begin_ts,
        "begin_time": begin,
        "end_time_timestamp": end_ts,
        "end_time": end,
        "begin_offset": info.begin_offset,
        "end_offset": info.end_offset,
        "begin_lsn": info.begin_xlog.map(|l| l.to_string()),
        "end_lsn": info.end_xlog.map(|l| l.to_string()),
    });
    if let Value::Object(b) = &mut base {
        if matches!(
            info.backup_type(),
            BackupType::Rsync | BackupType::Incremental
        ) {
            let saved = est_dedup_size(d);
            b.insert("resources_saved".into(), json!(pretty_size(saved)));
            b.insert("resources_saved_bytes".into(), json!(saved));
            b.insert(
                "resources_saved_percentage".into(),
                json!(percent(d.deduplication_ratio())),
            );
        }
        if wal.compression_ratio() > 0.0 {
            b.insert(
                "wal_compression_ratio".into(),
                json!(percent(wal.compression_ratio())),
            );
        }
        if let Some((copy, analysis, workers)) = copy_stats(info) {
            b.insert(
                "copy_time".into(),
                json!(human_readable_duration(Duration::from_secs_f64(copy))),
            );
            b.insert("copy_time_seconds".into(), json!(copy));
            if analysis >= 1.0 {
                b.insert(
                    "analysis_time".into(),
                    json!(human_readable_duration(Duration::from_secs_f64(analysis))),
                );
                b.insert("analysis_time_seconds".into(), json!(analysis));
            }
            let throughput = dedup as f64 / copy;
            b.insert(
                "throughput".into(),
                json!(format!("{}/s", pretty_size(throughput as u64))),
            );
            b.insert("throughput_bytes".into(), json!(throughput as u64));
            b.insert("number_of_workers".into(), json!(workers));
        }
    }
    o.insert("base_backup_information".into(), base);
    o.insert(
        "tablespaces".into(),
        json!(
            info.tablespaces
                .iter()
                .flatten()
                .map(|t| json!({ "name": t.name, "location": t.location, "oid": t.oid }))
                .collect::<Vec<_>>()
        ),
    );
    let mut catalog = json!({
        "retention_policy": retention_text(d.retention),
        "previous_backup": d.previous.map_or_else(|| "- (this is the oldest base backup)".to_owned(), |b| b.to_string()),
        "next_backup": d.next.map_or_else(|| "- (this is the latest base backup)".to_owned(), |b| b.to_string()),
    });
    if let Value::Object(c) = &mut catalog {
        if info.backup_type() == BackupType::Incremental {
            c.insert("root_backup_id".into(), json!(d.root.to_string()));
            c.insert(
                "parent_backup_id".into(),
                json!(info.parent_backup_id.map(|p| p.to_string())),
            );
            c.insert("chain_size".into(), json!(d.chain_size));
        }
        if info.mode.as_deref() == Some("postgres") {
            c.insert(
                "children_backup_ids".into(),
                json!(
                    info.children_backup_ids
                        .as_ref()
                        .map(|ids| ids.iter().map(ToString::to_string).collect::<Vec<_>>())
                ),
            );
        }
    }
    o.insert("catalog_information".into(), catalog);
    o.insert("wal_information".into(), wal_json(&wal));
    Value::Object(o)
}

fn wal_json(wal: &WalStats) -> Value {
    let rate = wal.wals_per_second();
    let ratio = wal.until_next_compression_ratio();
    json!({
        "no_of_files": wal.until_next_num,
        "disk_usage": pretty_size(wal.until_next_size),
        "disk_usage_bytes": wal.until_next_size,
        "wal_rate": if rate > 0.0 { json!(format!("{:.2}/hour", rate * 3600.0)) } else { json!(0) },
        "wal_rate_per_second": if rate > 0.0 { json!(rate) } else { json!(0) },
        "compression_ratio": if ratio > 0.0 { json!(percent(ratio)) } else { json!(0) },
        "last_available": wal.last.map(|(n, _)| n.to_string()),
        "timelines": [],
    })
}

/// A time as Barman shows it: naive values (written without an offset) are read in the
/// local time zone and shown with its offset.
fn localized(t: &PyDateTime, local: &TimeZone) -> PyDateTime {
    if t.offset_seconds().is_some() {
        return *t;
    }
    match t.to_timestamp(local) {
        Ok(ts) => PyDateTime::from_timestamp(ts, local.to_offset(ts).seconds()),
        Err(_) => *t,
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "None".to_owned(), |v| v.to_string())
}

fn percent(ratio: f64) -> String {
    format!("{:.2}%", ratio * 100.0)
}
