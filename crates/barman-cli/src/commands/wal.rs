//! WAL archive commands: `put-wal`, `archive-wal`, `get-wal`, `rebuild-xlogdb`,
//! `check-wal-archive`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use barman_core::Error;
use barman_core::archive::{GetWalOptions, PutOutcome, TarWalOptions, WalArchive};
use barman_core::config::ServerConfig;
use barman_wal::{Codec, TimelineId};
use serde_json::{Map, Value, json};

use crate::commands::server::{selected, usable_server};
use crate::{Context, fail};

fn archive_of<'a>(
    ctx: &'a Context,
    server: &str,
) -> Result<(&'a ServerConfig, WalArchive), ExitCode> {
    let sc = usable_server(ctx, server)?;
    Ok((sc, WalArchive::for_server(ctx.config.global(), sc)))
}

fn report_put(ctx: &Context, server: &str, outcome: &PutOutcome) {
    match outcome {
        PutOutcome::Archived(e) => {
            ctx.info(format!("{server}: archived {} ({} bytes)", e.name, e.size))
        }
        PutOutcome::AlreadyArchived(name) => ctx.info(format!(
            "{server}: {name} already archived with the same content"
        )),
        _ => {}
    }
}

/// `barman put-wal [--test] SERVER [WAL_PATH]`: archive one WAL file given by path (the
/// form for `archive_command` on the Barman host), or the tar stream
/// `barman-wal-archive` sends on standard input.
pub fn put(ctx: &Context, server: &str, wal_path: Option<&Path>, test: bool) -> ExitCode {
    let (_, archive) = match archive_of(ctx, server) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if test {
        ctx.info(format!("Ready to accept WAL files for the server {server}"));
        return ExitCode::SUCCESS;
    }
    let outcomes = match wal_path {
        Some(p) => archive
            .put_wal(p)
            .map(|o| vec![o])
            .map_err(|e| e.to_string()),
        None => archive
            .put_wal_tar(std::io::stdin().lock())
            .map_err(|e| e.to_string()),
    };
    for w in archive.take_hook_warnings() {
        crate::warning(w);
    }
    match outcomes {
        Ok(list) => {
            let mut names = Vec::new();
            for o in &list {
                report_put(ctx, server, o);
                match o {
                    PutOutcome::Archived(e) => names.push(
                        json!({ "name": e.name.to_string(), "size": e.size, "archived": true }),
                    ),
                    PutOutcome::AlreadyArchived(n) => {
                        names.push(json!({ "name": n.to_string(), "archived": false }))
                    }
                    _ => {}
                }
            }
            ctx.json(&json!({ server: names }));
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("server {server}: {e}")),
    }
}

/// `barman archive-wal SERVER...`: archive what `incoming/` and `streaming/` hold.
pub fn archive_wal(ctx: &Context, names: &[String]) -> ExitCode {
    let servers = match selected(ctx, names) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let mut code = ExitCode::SUCCESS;
    let mut doc = Map::new();
    for sc in servers {
        let archive = WalArchive::for_server(ctx.config.global(), sc);
        ctx.info(format!(
            "Processing xlog segments from file archival for {}",
            sc.name()
        ));
        let result = archive.archive_wal();
        for w in archive.take_hook_warnings() {
            crate::warning(w);
        }
        match result {
            Ok(report) => {
                for a in &report.archived {
                    ctx.info(format!("\t{}", a.entry.name));
                }
                for e in &report.errors {
                    ctx.info(format!(
                        "\t{} moved to {} ({:?})",
                        e.name,
                        e.kept_as.display(),
                        e.kind
                    ));
                }
                for f in &report.failed {
                    crate::error(format!(
                        "server {}: {}: {}",
                        sc.name(),
                        f.path.display(),
                        f.error
                    ));
                    code = ExitCode::from(1);
                }
                doc.insert(
                    sc.name().to_owned(),
                    json!({
                        "archived": report.archived.iter().map(|a| a.entry.name.to_string()).collect::<Vec<_>>(),
                        "errors": report.errors.iter().map(|e| e.kept_as.display().to_string()).collect::<Vec<_>>(),
                        "failed": report.failed.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>(),
                    }),
                );
            }
            // Another archive-wal is at work: not a failure (as Barman).
            Err(e @ Error::Busy { .. }) => ctx.info(format!("{e}")),
            Err(e) => code = fail(format!("server {}: {e}", sc.name())),
        }
    }
    ctx.json(&Value::Object(doc));
    code
}

/// Options of `get-wal`.
#[derive(Debug, Default)]
pub struct GetWalArgs<'a> {
    /// `-o DIR`.
    pub output_directory: Option<&'a Path>,
    /// `-P`.
    pub partial: bool,
    /// `-z` / `-j`.
    pub compression: Option<Codec>,
    /// `--keep-compression`.
    pub keep_compression: bool,
    /// `-p N`.
    pub peek: Option<usize>,
    /// `-t`.
    pub test: bool,
}

/// `barman get-wal SERVER WAL_NAME`: send a WAL file to standard output (or a
/// directory), decompressed unless `--keep-compression`. Exit code 3 for a bad name or
/// output, 1 when not found.
pub fn get_wal(ctx: &Context, server: &str, name: &str, args: &GetWalArgs<'_>) -> ExitCode {
    let (_, archive) = match archive_of(ctx, server) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if args.test {
        ctx.info(format!(
            "Ready to retrieve WAL files from the server {server}"
        ));
        return ExitCode::SUCCESS;
    }
    let exit = |e: Error| -> ExitCode {
        let code = matches!(e, Error::InvalidWalName { .. } | Error::OutputFile { .. });
        crate::error(&e);
        ExitCode::from(if code { 3 } else { 1 })
    };
    if let Some(n) = args.peek {
        return match archive.peek_wal(name, n) {
            Ok(list) => {
                for w in list {
                    println!("{w}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => exit(e),
        };
    }
    let opts = GetWalOptions {
        partial: args.partial,
        keep_compression: args.keep_compression,
        compression: args.compression,
        ..GetWalOptions::default()
    };
    let result = match args.output_directory {
        Some(dir) => archive.get_wal_to_dir(name, &opts, dir).map(|_| ()),
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            archive
                .get_wal(name, &opts, &mut out)
                .map(|_| ())
                .and_then(|()| {
                    out.flush().map_err(|e| Error::Io {
                        op: "writing",
                        path: "stdout".into(),
                        source: e,
                    })
                })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit(e),
    }
}

/// barman-rs `barman get-wal --tar[=CODEC] SERVER WAL_NAME...`: the named WAL segments
/// the archive holds as one tar stream on standard output (compressed with CODEC), each
/// decompressed (as stored with `--keep-compression`); missing ones are left out. Exit code 2 for a codec this build lacks, 3 for
/// a bad name (nothing sent either way), 1 when the stream fails.
pub fn get_wals_tar(
    ctx: &Context,
    server: &str,
    names: &[&str],
    codec: &str,
    keep_compression: bool,
) -> ExitCode {
    let stream = match codec.parse::<Codec>() {
        Ok(c) if c.is_available() => c,
        _ => {
            crate::error(format!(
                "get-wal --tar={codec}: unknown or unavailable stream compression"
            ));
            return ExitCode::from(2);
        }
    };
    let (_, archive) = match archive_of(ctx, server) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let options = TarWalOptions {
        keep_compression,
        stream,
    };
    match archive.get_wals_tar(names, &options, std::io::stdout().lock()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            let code = if matches!(e, Error::InvalidWalName { .. }) {
                3
            } else {
                1
            };
            crate::error(&e);
            ExitCode::from(code)
        }
    }
}

/// `barman rebuild-xlogdb SERVER...`: rebuild xlog.db from the files in `wals/`.
pub fn rebuild_xlogdb(ctx: &Context, names: &[String]) -> ExitCode {
    let servers = match selected(ctx, names) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let mut code = ExitCode::SUCCESS;
    for sc in servers {
        let archive = WalArchive::for_server(ctx.config.global(), sc);
        ctx.info(format!("Rebuilding xlogdb for server {}", sc.name()));
        match archive.rebuild_xlogdb() {
            Ok(r) => {
                for s in &r.skipped {
                    crate::warning(format!("skipped {}: {:?}", s.path.display(), s.reason));
                }
                ctx.info(format!(
                    "Done rebuilding xlogdb for server {} (history: {}, backup_labels: {}, wal_file: {})",
                    sc.name(),
                    r.history,
                    r.backup_labels,
                    r.wal_files
                ));
            }
            Err(e) => code = fail(format!("server {}: {e}", sc.name())),
        }
    }
    code
}

/// `barman check-wal-archive [--timeline N] SERVER`: is the archive safe for a new
/// cluster?
pub fn check_wal_archive(ctx: &Context, server: &str, timeline: Option<u32>) -> ExitCode {
    let (_, archive) = match archive_of(ctx, server) {
        Ok(a) => a,
        Err(code) => return code,
    };
    ctx.info(format!("Server {server}:"));
    match archive.check_wal_archive(timeline.map(TimelineId::from)) {
        Ok(()) => {
            ctx.info(format!(" - WAL archive check for server {server} passed"));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `barman cron`: the periodic maintenance of every active server: archive what waits
/// in incoming/ and streaming/, mark FAILED the backups whose process is gone, check
/// WAITING_FOR_WALS backups again, enforce the retention policy.
pub fn cron(ctx: &Context) -> ExitCode {
    use barman_core::cron::CronOutcome;
    let mut code = ExitCode::SUCCESS;
    ctx.info("Starting WAL archiving for all servers");
    let now = jiff::Timestamp::now();
    let local = jiff::tz::TimeZone::system();
    for (server, outcome) in barman_core::cron::run(&ctx.config, now, &local) {
        match outcome {
            CronOutcome::Ran(r) => {
                match &r.archive {
                    Ok(r) => {
                        for a in &r.archived {
                            ctx.info(format!("{server}: archived {}", a.entry.name));
                        }
                        for f in &r.failed {
                            crate::error(format!(
                                "server {server}: {}: {}",
                                f.path.display(),
                                f.error
                            ));
                            code = ExitCode::from(1);
                        }
                    }
                    Err(Error::Busy { .. }) => ctx.info(format!(
                        "{server}: another archive-wal is running, archiving skipped"
                    )),
                    Err(e) => code = fail(format!("server {server}: {e}")),
                }
                match &r.failed_stale {
                    Ok(ids) => {
                        for id in ids {
                            crate::warning(format!(
                                "server {server}: backup {id} marked FAILED: its backup process is gone"
                            ));
                        }
                    }
                    Err(e) => code = fail(format!("server {server}: {e}")),
                }
                match &r.checked {
                    Ok(checks) => {
                        for c in checks.iter().filter(|c| c.status != c.before) {
                            ctx.info(format!("{server}: backup {} is now {}", c.id, c.status));
                            if let Some(e) = c.outcome.error() {
                                crate::warning(format!("server {server}: backup {}: {e}", c.id));
                            }
                        }
                    }
                    Err(e) => code = fail(format!("server {server}: {e}")),
                }
                match &r.retention {
                    Ok(run) => {
                        for id in &run.orphans {
                            crate::warning(format!(
                                "Backup '{id}' of server {server} is an orphan backup (backup.info without its backup directory), possibly the result of an incomplete delete operation"
                            ));
                        }
                        for d in &run.deleted {
                            ctx.info(format!(
                                "Enforcing retention policy: removing backup {} for server {server}",
                                d.id
                            ));
                            if !d.wals.is_empty() {
                                ctx.info("Delete associated WAL segments:");
                                for w in &d.wals {
                                    ctx.info(format!("\t{w}"));
                                }
                            }
                        }
                        for (_, why) in &run.skipped {
                            crate::warning(why);
                        }
                    }
                    Err(e) => code = fail(format!("server {server}: {e}")),
                }
                for w in &r.hook_warnings {
                    crate::warning(w);
                }
                match &r.leftovers {
                    Ok(removed) => {
                        for l in removed {
                            crate::warning(format!(
                                "server {server}: removed {}, a temporary file left by a crash {} minutes ago",
                                l.path.display(),
                                l.age.as_secs() / 60
                            ));
                        }
                    }
                    Err(e) => code = fail(format!("server {server}: {e}")),
                }
            }
            CronOutcome::Busy => ctx.info(format!("{server}: another cron is running, skipped")),
            CronOutcome::Disabled(reason) => code = fail(format!("server {server}: {reason}")),
            CronOutcome::Skipped(why) => ctx.info(format!("{server}: skipped ({why})")),
            _ => {}
        }
    }
    code
}
