//! One module per `barman` subcommand, named after it (`list-backups` is
//! `list_backups.rs`): each declares its clap `Args` and its `run`. What several
//! commands share (choosing servers, connecting, the catalogue of a server) is here.

use std::process::ExitCode;

use barman_catalog::PyDateTime;
use barman_core::archive::WalArchive;
use barman_core::catalogue::ServerBackups;
use barman_core::config::ServerConfig;
use barman_core::postgres::{ConnInfo, PgServer};
use jiff::tz::TimeZone;

use crate::{Context, fail};

pub mod archive_wal;
pub mod backup;
pub mod check;
pub mod check_backup;
pub mod check_wal_archive;
pub mod config_change;
pub mod cron;
pub mod delete;
pub mod diagnose;
pub mod export;
pub mod generate_manifest;
pub mod get_wal;
pub mod keep;
pub mod list_backups;
pub mod list_files;
pub mod list_servers;
pub mod processes;
pub mod put_wal;
pub mod rebuild_xlogdb;
pub mod receive_wal;
pub mod recover;
pub mod replication_status;
pub mod sandbox;
pub mod show_backup;
pub mod show_servers;
pub mod status;
pub mod switch_wal;
pub mod sync;
pub mod verify_backup;

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
    completed(config, "conninfo", config.options().conninfo.as_deref())
}

/// The server's `streaming_conninfo` (else `conninfo`), completed as [`conninfo`] is.
pub(crate) fn streaming_conninfo(config: &ServerConfig) -> Result<ConnInfo, String> {
    let o = config.options();
    let text = o.streaming_conninfo.as_deref().or(o.conninfo.as_deref());
    completed(config, "streaming_conninfo", text)
}

/// Where WAL streams from, as Barman's `get_wal_conninfo` says: the replication
/// connection `wal_streaming_conninfo` (else `streaming_conninfo`, else `conninfo`) and
/// the normal one `wal_conninfo` (else `wal_streaming_conninfo`, else `conninfo`),
/// completed as [`conninfo`] is, and the overrides applied (`None` when neither
/// `wal_*` option is set), with their passwords masked.
pub(crate) fn wal_conninfos(
    config: &ServerConfig,
) -> Result<(ConnInfo, ConnInfo, Option<String>), String> {
    let o = config.options();
    let streaming_text = o
        .wal_streaming_conninfo
        .as_deref()
        .or(o.streaming_conninfo.as_deref())
        .or(o.conninfo.as_deref());
    let pg_text = o
        .wal_conninfo
        .as_deref()
        .or(o.wal_streaming_conninfo.as_deref())
        .or(o.conninfo.as_deref());
    let mut overrides = Vec::new();
    if let Some(t) = &o.wal_streaming_conninfo {
        overrides.push(format!(
            "'streaming_conninfo' overridden with '{}'",
            barman_core::secrets::mask_conninfo(t)
        ));
    }
    if let Some(t) = o
        .wal_conninfo
        .as_ref()
        .or(o.wal_streaming_conninfo.as_ref())
    {
        overrides.push(format!(
            "'conninfo' overridden with '{}'",
            barman_core::secrets::mask_conninfo(t)
        ));
    }
    Ok((
        completed(config, "wal_streaming_conninfo", streaming_text)?,
        completed(config, "wal_conninfo", pg_text)?,
        (!overrides.is_empty()).then(|| overrides.join(" and ")),
    ))
}

fn completed(config: &ServerConfig, key: &str, text: Option<&str>) -> Result<ConnInfo, String> {
    Ok(ConnInfo::parse(text.unwrap_or(""))
        .map_err(|e| format!("server {}: {key}: {e}", config.name()))?
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

pub(crate) fn archive_of<'a>(
    ctx: &'a Context,
    server: &str,
) -> Result<(&'a ServerConfig, WalArchive), ExitCode> {
    let sc = usable_server(ctx, server)?;
    Ok((sc, WalArchive::for_server(ctx.config.global(), sc)))
}

/// The server of a single-server command (`all` is refused, as Barman does).
pub(crate) fn single<'a>(ctx: &'a Context, server: &str) -> Result<&'a ServerConfig, ExitCode> {
    if server == "all" {
        return Err(fail("You cannot use 'all' in a single server context"));
    }
    usable_server(ctx, server)
}

pub(crate) fn backups_of(ctx: &Context, sc: &ServerConfig) -> ServerBackups {
    ServerBackups::for_server(ctx.config.global(), sc)
}

pub(crate) fn epoch(t: &PyDateTime, local: &TimeZone) -> String {
    t.to_timestamp(local)
        .map(|ts| ts.as_second().to_string())
        .unwrap_or_default()
}

pub(crate) fn description(ctx: &Context, name: &str) -> String {
    let Some(s) = ctx.config.server(name) else {
        return String::new();
    };
    let mut d = s.options().description.clone().unwrap_or_default();
    if !s.active() {
        d.push_str(" (inactive)");
    }
    if s.is_passive() {
        d.push_str(" (Passive)");
    }
    d.trim().to_owned()
}

/// `--retry-times`, `--retry-sleep` and `--no-retry`, of `backup` and `recover`.
#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// How many times a failed copy is tried again (basebackup_retry_times).
    #[arg(long = "retry-times", overrides_with = "no_retry")]
    pub retry_times: Option<u32>,
    /// Seconds before trying a failed copy again (basebackup_retry_sleep).
    #[arg(long = "retry-sleep")]
    pub retry_sleep: Option<u64>,
    /// Never try a failed copy again (--retry-times 0).
    #[arg(long = "no-retry", overrides_with = "retry_times")]
    pub no_retry: bool,
}

impl RetryArgs {
    /// The retries asked for (`--no-retry` is `--retry-times 0`); `None` leaves them
    /// to the configuration.
    pub fn times(&self) -> Option<u32> {
        if self.no_retry {
            Some(0)
        } else {
            self.retry_times
        }
    }
}

/// The recovery target options `recover` and `sandbox` share.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// Recover to this time (`YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]`; without an offset,
    /// the time zone of this host).
    #[arg(long = "target-time")]
    pub target_time: Option<String>,
    /// Recover to this transaction id.
    #[arg(long = "target-xid", allow_hyphen_values = true)]
    pub target_xid: Option<String>,
    /// Recover to this LSN.
    #[arg(long = "target-lsn", allow_hyphen_values = true)]
    pub target_lsn: Option<String>,
    /// Recover to this restore point (`pg_create_restore_point`).
    #[arg(long = "target-name")]
    pub target_name: Option<String>,
    /// End recovery as soon as the backup is consistent.
    #[arg(long = "target-immediate")]
    pub target_immediate: bool,
    /// The timeline to follow: a number, `current` or `latest`.
    #[arg(long = "target-tli")]
    pub target_tli: Option<String>,
    /// Stop just before the target (time, xid or LSN).
    #[arg(long)]
    pub exclusive: bool,
}

impl TargetArgs {
    /// The target and timeline asked for, checked.
    pub fn parse(
        &self,
    ) -> Result<
        (
            Option<barman_core::recover::RecoveryTarget>,
            Option<barman_core::recover::TargetTimeline>,
        ),
        String,
    > {
        let target = barman_core::recover::Targets {
            time: self.target_time.clone(),
            xid: self.target_xid.clone(),
            lsn: self.target_lsn.clone(),
            name: self.target_name.clone(),
            immediate: self.target_immediate,
        }
        .into_target()
        .map_err(|e| e.to_string())?;
        let tli = self
            .target_tli
            .as_deref()
            .map(barman_core::recover::parse_target_tli)
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok((target, tli))
    }
}
