//! `barman cron`.

use std::process::ExitCode;

use barman_core::Error;

use crate::{Context, fail};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the standard output and error of the processes cron starts (receive-wal)
    /// attached to cron's, instead of discarding them (they log to the log file).
    #[arg(long = "keep-descriptors")]
    pub keep_descriptors: bool,
}

/// `barman cron`: the periodic maintenance of every active server: archive what waits
/// in incoming/ and streaming/, mark FAILED the backups whose process is gone, check
/// WAITING_FOR_WALS backups again, enforce the retention policy.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    // The configuration changes queued by config-update, first (Barman's order); the
    // servers then run with the configuration read at the start.
    if let Err(c) = crate::commands::config_change::apply(ctx) {
        code = c;
    }
    ctx.info("Starting WAL archiving for all servers");
    let now = jiff::Timestamp::now();
    let local = jiff::tz::TimeZone::system();
    // BARMAN_RS_CRON_JOBS: servers handled at a time (1: one after another, as Barman;
    // for comparisons).
    let jobs = std::env::var("BARMAN_RS_CRON_JOBS")
        .ok()
        .and_then(|j| j.parse::<usize>().ok())
        .filter(|j| *j > 0)
        .unwrap_or(barman_core::cron::DEFAULT_JOBS);
    // Each server's outcome as soon as it is known (a hung server does not delay the
    // others' receive-wal or sync).
    let failed = std::sync::atomic::AtomicBool::new(false);
    barman_core::cron::run_each(&ctx.config, now, &local, jobs, &|_, server, outcome| {
        if handle(ctx, args, server, outcome) != ExitCode::SUCCESS {
            failed.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    if failed.into_inner() {
        code = ExitCode::from(1);
    }
    // The scheduled restore test (sandbox_schedule): the most overdue server's latest
    // backup, one at a time across servers, in the background.
    if let Some(server) = barman_core::sandbox::due(&ctx.config, now) {
        ctx.info(format!(
            "Starting restore test (sandbox) of server {server}"
        ));
        if let Err(e) = spawn_barman(
            ctx,
            &["sandbox", "--scheduled", &server, "latest"],
            args.keep_descriptors,
        ) {
            code = fail(format!(
                "server {server}: cannot start the restore test: {e}"
            ));
        }
    }
    // Barman's lock_files_cleanup, after every server.
    if ctx.config.global().lock_directory_cleanup
        && let Err(e) = crate::commands::processes::clean_lock_directory(ctx)
    {
        code = fail(e);
    }
    code
}

/// What cron prints and starts for one server's outcome; its exit code.
fn handle(
    ctx: &Context,
    args: &Args,
    server: &str,
    outcome: barman_core::cron::CronOutcome,
) -> ExitCode {
    use barman_core::cron::CronOutcome;
    let server = server.to_owned();
    let mut code = ExitCode::SUCCESS;
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
            match &r.receiver {
                Ok(barman_core::cron::Receiver::ToStart) => {
                    ctx.info(format!("Starting streaming archiver for server {server}"));
                    if let Err(e) = start_receive_wal(ctx, &server, args.keep_descriptors) {
                        code = fail(format!("server {server}: cannot start receive-wal: {e}"));
                    }
                }
                Ok(barman_core::cron::Receiver::Stopped(pid)) => ctx.info(format!(
                    "Stopped process receive-wal({pid}) of server {server}: streaming_archiver is off"
                )),
                Ok(_) => {}
                Err(e) => code = fail(format!("server {server}: {e}")),
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
        CronOutcome::Skipped("passive node") => {
            if let Err(e) = crate::commands::sync::cron(ctx, &server, args.keep_descriptors) {
                code = fail(format!("server {server}: {e}"));
            }
        }
        CronOutcome::Skipped(why) => ctx.info(format!("{server}: skipped ({why})")),
        _ => {}
    }
    code
}

/// Starts `barman -c CONFIG -q receive-wal SERVER` in the background: see
/// [`spawn_barman`].
pub(crate) fn start_receive_wal(
    ctx: &Context,
    server: &str,
    keep_descriptors: bool,
) -> std::io::Result<u32> {
    spawn_barman(ctx, &["receive-wal", server], keep_descriptors)
}

/// Starts `barman -c CONFIG -q ARGS...` in the background, in its own process group
/// (it outlives this cron and the terminal's signals), its output to the log file as
/// every barman command's (and to cron's own with `keep_descriptors`).
pub(crate) fn spawn_barman(
    ctx: &Context,
    args: &[&str],
    keep_descriptors: bool,
) -> std::io::Result<u32> {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let out = || {
        if keep_descriptors {
            Stdio::inherit()
        } else {
            Stdio::null()
        }
    };
    let exe = std::env::current_exe()?;
    let child = std::process::Command::new(exe)
        .arg("-c")
        .arg(&ctx.config.global().config_file)
        .arg("-q")
        .args(args)
        .stdin(Stdio::null())
        .stdout(out())
        .stderr(out())
        .process_group(0)
        .spawn()?;
    Ok(child.id())
}
