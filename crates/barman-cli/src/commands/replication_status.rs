//! `barman replication-status`.

use std::process::ExitCode;

use barman_core::check::pretty_size;
use barman_core::config::ServerConfig;
use barman_core::postgres::{
    ConnInfo, PgServer, ReplicationClient, ReplicationStatus, ReplicationTarget,
};
use barman_wal::Lsn;
use serde_json::{Map, Value, json};

use crate::commands::{conninfo, runtime, selected_for_report, wal_conninfos};
use crate::{Context, error, fail};

/// Which clients to list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// Every streaming client.
    #[default]
    All,
    /// Standbys.
    HotStandby,
    /// WAL streamers (pg_receivewal, receive-wal).
    WalStreamer,
}

/// Which host to ask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// The server backups are taken from (`conninfo`).
    #[default]
    BackupHost,
    /// The server WAL is taken from (`wal_conninfo`, else `wal_streaming_conninfo`,
    /// else `conninfo`).
    WalHost,
}

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One line per client.
    #[arg(long)]
    pub minimal: bool,
    /// Which clients to list.
    #[arg(long, value_enum, default_value_t = Target::All)]
    pub target: Target,
    /// Which host to ask.
    #[arg(long, value_enum, default_value_t = Source::BackupHost)]
    pub source: Source,
    /// Server names (`all` for every one).
    #[arg(required = true)]
    pub servers: Vec<String>,
}

/// Runs the command.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    let servers = match selected_for_report(ctx, &args.servers) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let target = match args.target {
        Target::All => ReplicationTarget::All,
        Target::HotStandby => ReplicationTarget::HotStandby,
        Target::WalStreamer => ReplicationTarget::WalStreamer,
    };
    let title = match target {
        ReplicationTarget::HotStandby => "hot standby servers",
        ReplicationTarget::WalStreamer => "WAL streamers",
        _ => "streaming clients",
    };
    let rt = runtime();
    let mut code = ExitCode::SUCCESS;
    let mut doc = Map::new();
    for s in servers {
        if !s.active() {
            ctx.info(format!("Skipping inactive server '{}'", s.name()));
            continue;
        }
        if s.is_passive() {
            ctx.info(format!("Skipping passive server '{}'", s.name()));
            continue;
        }
        if let Some(reason) = s.disabled() {
            code = fail(reason);
            continue;
        }
        let ci = match source_conninfo(ctx, s, args.source) {
            Ok(ci) => ci,
            Err(e) => {
                code = fail(e);
                continue;
            }
        };
        let status = rt.block_on(async {
            let server = PgServer::connect(&ci, "barman").await?;
            server.replication_status(target).await
        });
        let status = match status {
            Ok(st) => st,
            Err(e) => {
                crate::log::error(&format!("server {}: {e}", s.name()));
                error(format!("Unable to connect to server {}", s.name()));
                doc.insert(s.name().to_owned(), json!({}));
                code = ExitCode::from(1);
                continue;
            }
        };
        if args.minimal {
            minimal(ctx, s.name(), title, &status);
        } else {
            full(ctx, s.name(), title, &status);
        }
        doc.insert(s.name().to_owned(), to_json(title, &status, args.minimal));
    }
    ctx.json(&Value::Object(doc));
    code
}

/// The conninfo of `source`; for the WAL host, says which options were overridden, as
/// Barman does.
fn source_conninfo(ctx: &Context, s: &ServerConfig, source: Source) -> Result<ConnInfo, String> {
    if source == Source::WalHost {
        let (_, pg, overrides) = wal_conninfos(s)?;
        if let Some(o) = overrides {
            ctx.info(format!("Configuration overrides applied: {o}"));
        }
        return Ok(pg);
    }
    conninfo(s)
}

/// `pretty_size` of a signed byte count (a lag is 0 or negative).
fn pretty_signed(bytes: i128) -> String {
    let size = pretty_size(u64::try_from(bytes.unsigned_abs()).unwrap_or(u64::MAX));
    if bytes < 0 { format!("-{size}") } else { size }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(f) => f
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

fn kind(c: &ReplicationClient) -> &'static str {
    if c.is_wal_streamer() {
        "WAL streamer"
    } else {
        "standby"
    }
}

fn name_of(c: &ReplicationClient) -> String {
    if c.sync_priority > 0 {
        format!(
            "#{} {} {}",
            c.sync_priority,
            capitalize(&c.sync_state),
            kind(c)
        )
    } else {
        format!("{} {}", capitalize(&c.sync_state), kind(c))
    }
}

fn lsn_text(l: Option<Lsn>) -> String {
    l.map_or_else(|| "None".to_owned(), |l| l.to_string())
}

/// Barman's console output.
fn full(ctx: &Context, name: &str, title: &str, st: &ReplicationStatus) {
    ctx.out(format!("Status of {title} for server '{name}':"));
    if let Some(lsn) = st.server_lsn {
        ctx.out(format!("  Current LSN on master: {lsn}"));
    }
    if st.clients.is_empty() {
        ctx.out(format!("  No {title} attached"));
        return;
    }
    ctx.out(format!("  Number of {title}: {}", st.clients.len()));
    for (i, c) in st.clients.iter().enumerate() {
        ctx.out("");
        ctx.out(format!("  {}. {}", i + 1, name_of(c)));
        ctx.out(format!("     Application name: {}", c.application_name));
        ctx.out(format!("     Sync stage      : {}", c.sync_stage()));
        match &c.client_addr {
            Some(addr) => {
                ctx.out("     Communication   : TCP/IP");
                ctx.out(format!(
                    "     IP Address      : {addr} / Port: {} / Host: {}",
                    c.client_port
                        .map_or_else(|| "None".into(), |p| p.to_string()),
                    c.client_hostname.as_deref().unwrap_or("-")
                ));
            }
            None => ctx.out("     Communication   : Unix domain socket"),
        }
        ctx.out(format!(
            "     User name       : {}",
            c.user_name.as_deref().unwrap_or("None")
        ));
        ctx.out(format!(
            "     Current state   : {} ({})",
            c.state.as_deref().unwrap_or("None"),
            c.sync_state
        ));
        if let Some(slot) = &c.slot_name {
            ctx.out(format!("     Replication slot: {slot}"));
        }
        ctx.out(format!("     WAL sender PID  : {}", c.pid));
        ctx.out(format!(
            "     Started at      : {}",
            c.backend_start.as_deref().unwrap_or("None")
        ));
        if let Some(xmin) = &c.backend_xmin {
            ctx.out(format!("     Standby's xmin  : {xmin}"));
        }
        for (label, lsn) in [
            ("Sent LSN  ", c.sent_lsn),
            ("Write LSN ", c.write_lsn),
            ("Flush LSN ", c.flush_lsn),
            ("Replay LSN", c.replay_lsn),
        ] {
            if let Some(l) = lsn {
                let diff = c.lag(lsn).map_or_else(|| "None".to_owned(), pretty_signed);
                ctx.out(format!("     {label} : {l} (diff: {diff})"));
            }
        }
    }
}

/// Barman's `--minimal` console output.
fn minimal(ctx: &Context, name: &str, title: &str, st: &ReplicationStatus) {
    match st.server_lsn {
        Some(lsn) => ctx.out(format!(
            "{} for master '{name}' (LSN @ {lsn}):",
            capitalize(title)
        )),
        None => ctx.out(format!("{} for slave '{name}':", capitalize(title))),
    }
    if st.clients.is_empty() {
        ctx.out(format!("  No {title} attached"));
        return;
    }
    for (i, c) in st.clients.iter().enumerate() {
        let who = format!(
            "{}@{}",
            c.user_name.as_deref().unwrap_or("None"),
            c.client_addr.as_deref().unwrap_or("socket")
        );
        if c.is_wal_streamer() {
            ctx.out(format!(
                "  {}. W) {who} S:{} W:{} P:{} AN:{}",
                i + 1,
                lsn_text(c.sent_lsn),
                lsn_text(c.write_lsn),
                c.sync_priority,
                c.application_name
            ));
        } else {
            ctx.out(format!(
                "  {}. {}) {who} S:{} F:{} R:{} P:{} AN:{}",
                i + 1,
                c.sync_state
                    .chars()
                    .next()
                    .map(|ch| ch.to_ascii_uppercase())
                    .unwrap_or('?'),
                lsn_text(c.sent_lsn),
                lsn_text(c.flush_lsn),
                lsn_text(c.replay_lsn),
                c.sync_priority,
                c.application_name
            ));
        }
    }
}

/// Barman's JSON output of one server.
fn to_json(title: &str, st: &ReplicationStatus, minimal: bool) -> Value {
    let key = title.to_lowercase().replace(' ', "_");
    let mut obj = Map::new();
    obj.insert(
        "server_lsn".into(),
        st.server_lsn.map_or(Value::Null, |l| json!(l.to_string())),
    );
    if st.clients.is_empty() {
        obj.insert(key, json!([]));
        obj.insert("standby_info".into(), json!(format!("No {title} attached")));
        return Value::Object(obj);
    }
    let lsn = |l: Option<Lsn>| l.map_or(Value::Null, |l| json!(l.to_string()));
    let clients: Vec<Value> = st
        .clients
        .iter()
        .map(|c| {
            let mut e = Map::new();
            if minimal {
                e.insert("user_name".into(), json!(c.user_name));
                e.insert(
                    "client_addr".into(),
                    json!(c.client_addr.as_deref().unwrap_or("socket")),
                );
                e.insert("sent_lsn".into(), lsn(c.sent_lsn));
                if c.is_wal_streamer() {
                    e.insert("write_lsn".into(), lsn(c.write_lsn));
                } else {
                    e.insert(
                        "sync_state".into(),
                        json!(
                            c.sync_state
                                .chars()
                                .next()
                                .map(|ch| ch.to_ascii_uppercase().to_string())
                        ),
                    );
                    e.insert("flush_lsn".into(), lsn(c.flush_lsn));
                    e.insert("replay_lsn".into(), lsn(c.replay_lsn));
                }
                e.insert("sync_priority".into(), json!(c.sync_priority));
                e.insert("application_name".into(), json!(c.application_name));
                return Value::Object(e);
            }
            e.insert("name".into(), json!(name_of(c)));
            e.insert("application_name".into(), json!(c.application_name));
            e.insert("sync_stage".into(), json!(c.sync_stage()));
            match &c.client_addr {
                Some(addr) => {
                    e.insert("communication".into(), json!("TCP/IP"));
                    e.insert("ip_address".into(), json!(addr));
                    e.insert("port".into(), json!(c.client_port));
                    e.insert("host".into(), json!(c.client_hostname));
                }
                None => {
                    e.insert("communication".into(), json!("Unix domain socket"));
                }
            }
            e.insert("user_name".into(), json!(c.user_name));
            e.insert("current_state".into(), json!(c.state));
            e.insert("current_sync_state".into(), json!(c.sync_state));
            if let Some(slot) = &c.slot_name {
                e.insert("replication_slot".into(), json!(slot));
            }
            e.insert("wal_sender_pid".into(), json!(c.pid));
            e.insert("started_at".into(), json!(c.backend_start));
            if let Some(xmin) = &c.backend_xmin {
                e.insert("standbys_xmin".into(), json!(xmin));
            }
            for (what, l) in [
                ("sent", c.sent_lsn),
                ("write", c.write_lsn),
                ("flush", c.flush_lsn),
                ("replay", c.replay_lsn),
            ] {
                if let Some(v) = l {
                    let lag = c.lag(l);
                    e.insert(format!("{what}_lsn"), json!(v.to_string()));
                    e.insert(format!("{what}_lsn_diff"), json!(lag.map(pretty_signed)));
                    e.insert(
                        format!("{what}_lsn_diff_bytes"),
                        json!(lag.and_then(|b| i64::try_from(b).ok())),
                    );
                }
            }
            Value::Object(e)
        })
        .collect();
    obj.insert(key, Value::Array(clients));
    Value::Object(obj)
}
