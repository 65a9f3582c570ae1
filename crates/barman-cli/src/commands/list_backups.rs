//! `barman list-backups` (`list-backup`).

use std::process::ExitCode;

use barman_catalog::{BackupStatus, PyDateTime, RetentionStatus};
use barman_core::catalogue::BackupSummary;
use barman_core::check::pretty_size;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value, json};

use crate::commands::{backups_of, epoch, selected};
use crate::{Context, fail};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print only the backup ids.
    #[arg(long)]
    pub minimal: bool,
    /// Server names (`all` for every one).
    #[arg(required = true)]
    pub servers: Vec<String>,
}

/// Runs the command.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    list(ctx, &args.servers, args.minimal)
}

/// `barman list-backups [--minimal] SERVER...`: one line per backup, newest first.
fn list(ctx: &Context, names: &[String], minimal: bool) -> ExitCode {
    let servers = match selected(ctx, names) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let local = TimeZone::system();
    let now = Timestamp::now();
    let mut code = ExitCode::SUCCESS;
    let mut doc = Map::new();
    for sc in servers {
        let server = sc.name();
        let list = match backups_of(ctx, sc).list(now, &local) {
            Ok(l) => l,
            Err(e) => {
                code = fail(format!("server {server}: {e}"));
                continue;
            }
        };
        let mut items = Vec::new();
        for b in &list {
            if minimal {
                ctx.out(b.info.id);
                items.push(json!(b.info.id.to_string()));
            } else {
                ctx.out(list_line(server, b));
                items.push(list_json(b, &local));
            }
        }
        // Entries that cannot be read are shown, never dropped: `check` fails on them
        // and delete and retention refuse to run until they are repaired.
        match backups_of(ctx, sc).unreadable() {
            Ok(unreadable) => {
                for u in unreadable {
                    if !minimal {
                        ctx.out(format!(
                            "{server} {} - UNREADABLE - {}: {}",
                            u.name,
                            u.path.display(),
                            u.reason
                        ));
                    }
                    items.push(json!({
                        "backup_id": u.name,
                        "status": "UNREADABLE",
                        "path": u.path.display().to_string(),
                        "error": u.reason,
                    }));
                }
            }
            Err(e) => code = fail(format!("server {server}: {e}")),
        }
        doc.insert(server.to_owned(), Value::Array(items));
    }
    ctx.json(&Value::Object(doc));
    code
}

/// Python's `datetime.ctime()`: `Wed Nov 25 10:54:44 2026`.
fn ctime(t: &PyDateTime) -> String {
    t.civil().strftime("%a %b %e %H:%M:%S %Y").to_string()
}

/// The retention status `list-backups` shows: only when enforced and not VALID.
fn shown_retention(s: Option<RetentionStatus>) -> Option<RetentionStatus> {
    s.filter(|s| *s != RetentionStatus::Valid)
}

fn list_line(server: &str, b: &BackupSummary) -> String {
    let info = &b.info;
    let mut line = format!("{server} {}", info.id);
    if let Some(name) = &info.backup_name {
        line.push_str(&format!(" '{name}'"));
    }
    line.push_str(&format!(" - {} - ", info.backup_type().letter()));
    if info.status.is_copy_done() {
        line.push_str(&format!(
            "{} - Size: {} - WAL Size: {}",
            info.end_time.as_ref().map(ctime).unwrap_or_default(),
            pretty_size(b.size),
            pretty_size(b.wal_size)
        ));
        if info.status == BackupStatus::WaitingForWals {
            line.push_str(" - WAITING_FOR_WALS");
        }
        if let Some(s) = shown_retention(b.retention).filter(|s| *s != RetentionStatus::None) {
            line.push_str(&format!(" - {s}"));
        }
    } else {
        line.push_str(info.status.name());
    }
    line
}

fn list_json(b: &BackupSummary, local: &TimeZone) -> Value {
    let info = &b.info;
    let mut o = Map::new();
    o.insert("backup_id".into(), json!(info.id.to_string()));
    if let Some(name) = &info.backup_name {
        o.insert("backup_name".into(), json!(name));
    }
    o.insert("backup_type".into(), json!(info.backup_type().name()));
    if info.status.is_copy_done() {
        let end = info.end_time.as_ref();
        o.insert(
            "end_time_timestamp".into(),
            json!(end.map(|t| epoch(t, local)).unwrap_or_default()),
        );
        o.insert("end_time".into(), json!(end.map(ctime).unwrap_or_default()));
        o.insert("size_bytes".into(), json!(b.size));
        o.insert("wal_size_bytes".into(), json!(b.wal_size));
        o.insert("size".into(), json!(pretty_size(b.size)));
        o.insert("wal_size".into(), json!(pretty_size(b.wal_size)));
        o.insert("status".into(), json!(info.status.name()));
        o.insert(
            "retention_status".into(),
            json!(
                shown_retention(b.retention)
                    .unwrap_or(RetentionStatus::None)
                    .name()
            ),
        );
    } else {
        o.insert("status".into(), json!(info.status.name()));
    }
    Value::Object(o)
}
