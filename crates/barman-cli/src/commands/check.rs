//! `barman check`.

use std::process::ExitCode;

use barman_core::check::{self, CheckResult, NagiosServer};
use barman_core::config::ServerConfig;
use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::commands::{conninfo, runtime, selected_for_report, streaming_conninfo, wal_conninfos};
use crate::{Context, fail};

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Nagios plugin output.
    #[arg(long)]
    pub nagios: bool,
    /// Seconds the checks may take on each server (overrides check_timeout; 0: no
    /// limit).
    #[arg(long = "check-timeout")]
    pub check_timeout: Option<u32>,
    /// Server names.
    #[arg(required = true)]
    pub servers: Vec<String>,
}

/// Runs the command.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    check(ctx, &args.servers, args.nagios, args.check_timeout)
}

/// Servers checked at a time.
const CHECK_JOBS: usize = 8;

/// `barman check [--nagios] SERVER...`: every check, `FAILED` lines make the exit code 1.
fn check(ctx: &Context, names: &[String], nagios: bool, timeout: Option<u32>) -> ExitCode {
    let servers = match selected_for_report(ctx, names) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let rt = runtime();
    let mut all: Vec<(&ServerConfig, Vec<CheckResult>)> = Vec::new();
    // `--check-timeout` overrides each server's check_timeout, as in Barman.
    let mut servers: Vec<ServerConfig> = servers.into_iter().cloned().collect();
    if let Some(t) = timeout {
        for s in &mut servers {
            let value = barman_core::config::Value::Int(i64::from(t));
            if let Err(e) = s.override_option("check_timeout", value) {
                return fail(e);
            }
        }
    }
    // Every server at once (at most CHECK_JOBS), in order: one that does not answer
    // costs its check_timeout, not the others' too.
    let checked: Vec<Vec<CheckResult>> = rt.block_on(
        futures::stream::iter(servers.iter().map(|s| async move {
            let server = conninfo(s).ok();
            let streaming = streaming_conninfo(s).ok();
            // Another source of WAL: Barman's checks suffixed " (WAL streaming)".
            let wal = wal_conninfos(s)
                .ok()
                .filter(|(_, _, overrides)| overrides.is_some());
            check::check(
                ctx.config.global(),
                s,
                server.as_ref(),
                streaming.as_ref(),
                wal.as_ref().map(|(st, pg, _)| (pg, st)),
                jiff::Timestamp::now(),
            )
            .await
        }))
        .buffered(CHECK_JOBS)
        .collect(),
    );
    for (s, results) in servers.iter().zip(checked) {
        for r in &results {
            if r.ok {
                crate::log::log_as(
                    crate::log::DEBUG,
                    "barman.server",
                    &format!("Check '{}' succeeded for server '{}'", r.name, s.name()),
                );
            } else if s.active() {
                crate::log::error(&format!(
                    "Check '{}' failed for server '{}'",
                    r.name,
                    s.name()
                ));
            }
        }
        all.push((s, results));
    }
    if nagios {
        let input: Vec<NagiosServer<'_>> = all
            .iter()
            .map(|(s, r)| NagiosServer {
                name: s.name(),
                active: s.active(),
                results: r,
            })
            .collect();
        let (text, code) = check::nagios(&input);
        print!("{text}");
        return ExitCode::from(u8::try_from(code).unwrap_or(2));
    }
    let mut failed = false;
    let mut doc = Map::new();
    for (s, results) in &all {
        ctx.out(format!("Server {}:", s.name()));
        let mut obj = Map::new();
        for r in results {
            ctx.out(r.console_line_with(|ok| {
                if ok {
                    crate::colored("OK", 32)
                } else {
                    crate::colored("FAILED", 31)
                }
            }));
            failed |= !r.ok && s.active();
            obj.insert(
                r.name.clone(),
                json!({ "status": if r.ok { "OK" } else { "FAILED" }, "hint": r.hint }),
            );
        }
        doc.insert(s.name().to_owned(), Value::Object(obj));
    }
    ctx.json(&Value::Object(doc));
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
