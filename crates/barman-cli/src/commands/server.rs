//! Commands that talk to PostgreSQL: `check`, `status`, `switch-wal`.

use std::process::ExitCode;
use std::time::Duration;

use barman_core::archive::WalArchive;
use barman_core::check::{self, CheckResult, NagiosServer, RepoState};
use barman_core::config::ServerConfig;
use barman_core::postgres::{ConnInfo, PgServer, SwitchWal};
use serde_json::{Map, Value, json};

use crate::{Context, fail};

/// The server named `name`, refused when unknown or disabled by its configuration.
pub(crate) fn usable_server<'a>(
    ctx: &'a Context,
    name: &str,
) -> Result<&'a ServerConfig, ExitCode> {
    let sc = ctx
        .config
        .server(name)
        .ok_or_else(|| fail(format!("unknown server '{name}'")))?;
    match sc.disabled() {
        Some(reason) => Err(fail(reason)),
        None => Ok(sc),
    }
}

/// The servers a command names: `all` means every configured one, in name order. A
/// server its configuration disables is refused when named (`all` keeps it: the
/// operations refuse it themselves, and `check` reports it).
pub(crate) fn selected<'a>(
    ctx: &'a Context,
    names: &[String],
) -> Result<Vec<&'a ServerConfig>, String> {
    let servers = selected_for_report(ctx, names)?;
    if !names.iter().any(|n| n == "all")
        && let Some(reason) = servers.iter().find_map(|s| s.disabled())
    {
        return Err(reason.to_owned());
    }
    Ok(servers)
}

/// [`selected`], disabled servers included: for `check` and `status`, which report them.
pub(crate) fn selected_for_report<'a>(
    ctx: &'a Context,
    names: &[String],
) -> Result<Vec<&'a ServerConfig>, String> {
    if names.iter().any(|n| n == "all") {
        let mut all: Vec<&ServerConfig> = ctx.config.servers().iter().collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        return Ok(all);
    }
    names
        .iter()
        .map(|n| {
            ctx.config
                .server(n)
                .ok_or_else(|| format!("unknown server '{n}'"))
        })
        .collect()
}

/// The server's conninfo completed as libpq would: `PG*` variables, then `~/.pgpass`
/// (or `passfile`/`PGPASSFILE`), from this process's environment.
pub(crate) fn conninfo(config: &ServerConfig) -> Result<ConnInfo, String> {
    let text = config.options().conninfo.as_deref().unwrap_or("");
    Ok(ConnInfo::parse(text)
        .map_err(|e| format!("server {}: conninfo: {e}", config.name()))?
        .complete_from_process())
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::error(format!("cannot start the async runtime: {e}"));
            std::process::exit(1)
        }
    }
}

async fn connect(config: &ServerConfig) -> Result<PgServer, String> {
    let ci = conninfo(config)?;
    PgServer::connect(&ci, "barman")
        .await
        .map_err(|e| format!("server {}: {e}", config.name()))
}

/// `barman check [--nagios] SERVER...`: every check, `FAILED` lines make the exit code 1.
pub fn check(ctx: &Context, names: &[String], nagios: bool) -> ExitCode {
    let servers = match selected_for_report(ctx, names) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let rt = runtime();
    let mut all: Vec<(&ServerConfig, Vec<CheckResult>)> = Vec::new();
    for s in servers {
        let results = rt.block_on(async {
            let server = connect(s).await.ok();
            check::check(
                ctx.config.global(),
                s,
                server.as_ref(),
                jiff::Timestamp::now(),
            )
            .await
        });
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
            ctx.out(r.console_line());
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

/// `barman status SERVER...`.
pub fn status(ctx: &Context, names: &[String]) -> ExitCode {
    let servers = match selected_for_report(ctx, names) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let rt = runtime();
    let mut doc = Map::new();
    for s in servers {
        let repo = RepoState::inspect(
            ctx.config.global(),
            s,
            jiff::Timestamp::now(),
            &jiff::tz::TimeZone::system(),
        );
        let remote = rt.block_on(async {
            match connect(s).await {
                Ok(server) => Some(server.remote_status(s.options().slot_name.as_deref()).await),
                Err(_) => None,
            }
        });
        ctx.out(format!("Server {}:", s.name()));
        let mut obj = Map::new();
        for item in check::status(s, remote.as_ref(), &repo) {
            ctx.out(format!("\t{}: {}", item.label, item.value));
            obj.insert(item.key.to_owned(), Value::String(item.value));
        }
        doc.insert(s.name().to_owned(), Value::Object(obj));
    }
    ctx.json(&Value::Object(doc));
    ExitCode::SUCCESS
}

/// `barman switch-wal [--force] [--archive [--archive-timeout S]] SERVER...` (Barman's
/// `switch-xlog` too). With `archive` (the timeout in seconds, 0 for none), waits until
/// the closed WAL file is archived, or any new one when no switch was performed;
/// a closed file not archived in time is an error (exit code 1), as in Barman.
pub fn switch_wal(ctx: &Context, names: &[String], force: bool, archive: Option<u64>) -> ExitCode {
    let servers = match selected(ctx, names) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let rt = runtime();
    let mut code = ExitCode::SUCCESS;
    for s in servers {
        if force {
            crate::log::info("Force a CHECKPOINT before pg_switch_wal()");
        }
        let outcome = rt.block_on(async {
            let server = connect(s).await?;
            server
                .switch_wal(force)
                .await
                .map_err(|e| format!("server {}: {e}", s.name()))
        });
        let closed = match outcome {
            Ok(SwitchWal::Switched(name)) => {
                ctx.info(format!(
                    "The WAL file {name} has been closed on server '{}'",
                    s.name()
                ));
                ctx.json(&json!({ s.name(): { "switch_wal": name } }));
                Some(name)
            }
            Ok(SwitchWal::NotNeeded) => {
                ctx.info(format!(
                    "No switch required for server '{}' (no activity since the last one: use --force to switch anyway)",
                    s.name()
                ));
                None
            }
            Ok(SwitchWal::InRecovery) => {
                ctx.info(format!(
                    "No switch performed because server '{}' is a standby.",
                    s.name()
                ));
                None
            }
            Err(e) => {
                code = fail(e);
                continue;
            }
        };
        if let Some(timeout) = archive
            && !wait_archived(ctx, s, closed.as_deref(), timeout)
        {
            code = ExitCode::from(1);
        }
    }
    code
}

/// Barman's `wait_for_wal`: false when the closed WAL file `closed` was not archived in
/// time (or the archive could not be read).
fn wait_archived(ctx: &Context, s: &ServerConfig, closed: Option<&str>, timeout: u64) -> bool {
    let max = if timeout > 0 {
        format!(" (max: {timeout} seconds)")
    } else {
        String::new()
    };
    let wal = match closed.map(str::parse::<barman_wal::WalFileName>) {
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => {
            crate::error(format!(
                "server {}: '{}' is not a WAL file name: {e}",
                s.name(),
                closed.unwrap_or_default()
            ));
            return false;
        }
        None => None,
    };
    match &wal {
        Some(n) => ctx.info(format!(
            "Waiting for the WAL file {n} from server '{}'{max}",
            s.name()
        )),
        None => ctx.info(format!(
            "Waiting for a WAL file from server '{}' to be archived{max}",
            s.name()
        )),
    }
    let archive = WalArchive::for_server(ctx.config.global(), s);
    let limit = (timeout > 0).then(|| Duration::from_secs(timeout));
    match archive.wait_for_wal(wal.as_ref(), limit, Duration::from_millis(100)) {
        Ok(Some(n)) => {
            crate::log::info(&format!(
                "The WAL file {n} has been archived for server '{}'",
                s.name()
            ));
            true
        }
        Ok(None) => match &wal {
            Some(n) => {
                crate::error(format!(
                    "The WAL file {n} has not been received in {timeout} seconds"
                ));
                false
            }
            None => {
                ctx.info(format!(
                    "A WAL file has not been received in {timeout} seconds"
                ));
                true
            }
        },
        Err(e) => {
            crate::error(format!("server {}: {e}", s.name()));
            false
        }
    }
}
