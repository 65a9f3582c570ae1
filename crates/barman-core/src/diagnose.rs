//! `barman diagnose`: one JSON document with the configuration, the system and the state
//! of every server, for support requests.
//!
//! The document has the top-level structure of Barman's `diagnose.py`:
//!
//! ```text
//! { "global":  { "config": {…, "errors_list": […]}, "system_info": {…} },
//!   "servers": { NAME: { "config": {…}, "msg_list": […], "active_model": …,
//!                        "status": {…}, "backups": {}, "wals": {
//!                        "last_archived_wal_per_timeline": {…} } } },
//!   "models":  { NAME: { "config": {…} } } }
//! ```
//!
//! # Design notes
//!
//! - **Secrets are masked**, unlike Barman: a diagnosis is meant to be sent to someone
//!   else. Passwords inside connection strings (`password=…`, `user:…@` of a URI) and
//!   the whole value of options whose name holds `password`, `passphrase` or `secret`
//!   (`encryption_passphrase_command`) read `********`.
//! - [`document`] is pure: it builds the JSON from what it is given, so it is tested
//!   without a server. [`diagnose`] gathers the inputs (system commands, one connection
//!   per server, the archive) and calls it.
//! - `python_ver` and `python_executable` read `n/a (barman-rs)`; `barman_ver` is the
//!   barman-rs version. `backups` is an empty object until the backup catalogue is
//!   read here (Barman's is an object keyed by backup id).

use std::collections::BTreeMap;
use std::process::Command;

use barman_wal::WalFileName;
use serde_json::{Map, Value, json};

use crate::archive::WalArchive;
use crate::config::{Config, ServerConfig, Value as ConfigValue};
use crate::postgres::{ConnInfo, PgServer, RemoteStatus};
use crate::secrets::is_secret;
pub use crate::secrets::{MASK, mask_conninfo};

/// The host's facts Barman reports (`get_system_info`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SystemInfo {
    /// The distribution (`lsb_release -a`, else `/etc/lsb-release`,
    /// `/etc/debian_version`, `/etc/redhat-release`).
    pub release: String,
    /// `uname -a`.
    pub kernel_ver: String,
    /// First line of `rsync --version`.
    pub rsync_ver: String,
    /// `ssh -V`.
    pub ssh_ver: String,
    /// The barman-rs version.
    pub barman_ver: String,
    /// When the diagnosis was taken (ISO 8601, local time zone).
    pub timestamp: String,
}

fn run(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Some(text.trim_end().to_owned()).filter(|_| out.status.success())
}

impl SystemInfo {
    /// Gathers the facts by running the commands Barman runs. A command that is
    /// missing or fails leaves its field empty.
    pub fn collect() -> SystemInfo {
        let file = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim_end().to_owned())
        };
        let release = run("lsb_release", &["-a"])
            .or_else(|| file("/etc/lsb-release").map(|s| format!("Ubuntu Linux {s}")))
            .or_else(|| file("/etc/debian_version").map(|s| format!("Debian GNU/Linux {s}")))
            .or_else(|| file("/etc/redhat-release").map(|s| format!("RedHat Linux {s}")))
            .unwrap_or_default();
        SystemInfo {
            release,
            kernel_ver: run("uname", &["-a"]).unwrap_or_default(),
            rsync_ver: run("rsync", &["--version"])
                .and_then(|s| s.lines().next().map(str::to_owned))
                .unwrap_or_default(),
            ssh_ver: run("ssh", &["-V"]).unwrap_or_default(),
            barman_ver: env!("CARGO_PKG_VERSION").to_owned(),
            timestamp: jiff::ZonedDateTime::now()
                .strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
                .to_string(),
        }
    }
}

/// What [`document`] reports for one server.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerState<'a> {
    /// Its configuration.
    pub config: &'a ServerConfig,
    /// Its PostgreSQL status, or why it could not be read.
    pub status: Result<RemoteStatus, String>,
    /// The newest archived WAL file of each timeline (hex timeline → file).
    pub last_archived_wal_per_timeline: BTreeMap<String, WalFileName>,
}

impl<'a> ServerState<'a> {
    /// A server's state from its parts.
    pub fn new(
        config: &'a ServerConfig,
        status: Result<RemoteStatus, String>,
        last_archived_wal_per_timeline: BTreeMap<String, WalFileName>,
    ) -> Self {
        ServerState {
            config,
            status,
            last_archived_wal_per_timeline,
        }
    }
}

/// Masks the secret part of `value` for `option`.
fn mask(option: &str, value: Value) -> Value {
    match value {
        Value::String(s) if option.ends_with("conninfo") => Value::String(mask_conninfo(&s)),
        Value::Null => Value::Null,
        _ if is_secret(option) => Value::String(MASK.to_owned()),
        v => v,
    }
}

fn config_value(v: &ConfigValue) -> Value {
    match v {
        ConfigValue::Bool(b) => Value::Bool(*b),
        ConfigValue::Int(n) => json!(n),
        ConfigValue::Size(n) => json!(n),
        ConfigValue::List(l) => Value::String(l.join(",")),
        other => Value::String(other.to_string()),
    }
}

fn with_source(value: Value, source: Option<&str>, show: bool) -> Value {
    if show {
        json!({ "value": value, "source": source })
    } else {
        value
    }
}

/// The configuration of the `[barman]` section, as Barman's
/// `global_config_to_json`: the options written there, plus the lock directory, its
/// cleanup and the changes queue.
fn global_config(config: &Config, show_source: bool) -> Map<String, Value> {
    let mut out = Map::new();
    let ini = config.ini();
    for option in ini.options("barman") {
        if let Some(v) = ini.get_raw("barman", &option) {
            let value = mask(&option, Value::String(v.raw.clone()));
            out.insert(option, with_source(value, Some(&v.file), show_source));
        }
    }
    let g = config.global();
    for (option, value) in [
        (
            "barman_lock_directory",
            Value::String(g.barman_lock_directory.clone()),
        ),
        (
            "lock_directory_cleanup",
            Value::Bool(g.lock_directory_cleanup),
        ),
        (
            "config_changes_queue",
            Value::String(g.config_changes_queue.clone()),
        ),
    ] {
        let source = ini.get_raw("barman", option).map(|v| v.file.clone());
        out.insert(
            option.to_owned(),
            with_source(value, source.as_deref(), show_source),
        );
    }
    out
}

pub(crate) fn server_config(config: &ServerConfig, show_source: bool) -> Map<String, Value> {
    let mut out = Map::new();
    for (spec, value) in config.iter() {
        let v = mask(spec.name, value.map_or(Value::Null, config_value));
        let source = config
            .setting(spec.name)
            .and_then(|s| s.source.as_ref().map(|r| r.file.clone()));
        out.insert(
            spec.name.to_owned(),
            with_source(v, source.as_deref(), show_source),
        );
    }
    out.insert(
        "name".to_owned(),
        with_source(json!(config.name()), None, show_source),
    );
    out
}

/// The server's status with Barman's key names.
fn status(status: &Result<RemoteStatus, String>) -> Value {
    let s = match status {
        Ok(s) => s,
        Err(e) => return json!({ "connection_error": e }),
    };
    let mut out = json!({
        "server_txt_version": s.server_txt_version,
        "version_supported": s.version_supported(),
        "is_superuser": s.is_superuser,
        "has_backup_privileges": s.has_backup_privileges,
        "has_monitoring_privileges": s.has_monitoring_privileges,
        "is_in_recovery": s.is_in_recovery,
        "current_lsn": s.current_wal.as_ref().map(|w| w.lsn.to_string()),
        "current_xlog": s.current_wal.as_ref().and_then(|w| w.file_name.clone()),
        "current_size": s.current_size,
        "xlog_segment_size": s.wal_segment_size,
        "postgres_systemid": s.systemid.map(|id| id.to_string()),
        "data_directory": s.settings.data_directory,
        "archive_mode": s.settings.archive_mode,
        "archive_command": s.settings.archive_command,
        "wal_level": s.settings.wal_level,
        "max_wal_senders": s.settings.max_wal_senders,
        "max_replication_slots": s.settings.max_replication_slots,
        "replication_slot": s.replication_slot.as_ref().map(|r| json!({
            "slot_name": r.name,
            "active": r.active,
            "restart_lsn": r.restart_lsn.map(|l| l.to_string()),
        })),
        "errors": s.errors,
    });
    if let (Some(a), Value::Object(map)) = (&s.archiver, &mut out) {
        for (k, v) in [
            ("archived_count", json!(a.archived_count)),
            ("last_archived_wal", json!(a.last_archived_wal)),
            (
                "last_archived_time",
                json!(a.last_archived_time.map(|t| t.to_string())),
            ),
            ("failed_count", json!(a.failed_count)),
            ("last_failed_wal", json!(a.last_failed_wal)),
            (
                "last_failed_time",
                json!(a.last_failed_time.map(|t| t.to_string())),
            ),
            ("is_archiving", json!(a.is_archiving)),
            (
                "current_archived_wals_per_second",
                json!(a.archived_per_second),
            ),
        ] {
            map.insert(k.to_owned(), v);
        }
    }
    out
}

/// Builds the diagnosis document from its parts (see the [module docs](self)).
/// `show_config_source` turns every configuration value into
/// `{"value": …, "source": FILE or null}`, as Barman's `--show-config-source`.
pub fn document(
    config: &Config,
    system: &SystemInfo,
    servers: &[ServerState<'_>],
    show_config_source: bool,
) -> Value {
    let mut global = global_config(config, show_config_source);
    global.insert("errors_list".to_owned(), json!(config.warnings()));
    let system_info = json!({
        "release": system.release,
        "kernel_ver": system.kernel_ver,
        "python_ver": "n/a (barman-rs)",
        "python_executable": "n/a (barman-rs)",
        "rsync_ver": system.rsync_ver,
        "ssh_ver": system.ssh_ver,
        "barman_ver": system.barman_ver,
        "timestamp": system.timestamp,
    });
    let mut server_docs = Map::new();
    for s in servers {
        let wals: Map<String, Value> = s
            .last_archived_wal_per_timeline
            .iter()
            .map(|(tli, n)| (tli.clone(), json!({ "name": n.to_string() })))
            .collect();
        server_docs.insert(
            s.config.name().to_owned(),
            json!({
                "config": server_config(s.config, show_config_source),
                "msg_list": [],
                "active_model": s.config.active_model(),
                "status": status(&s.status),
                "backups": {},
                "wals": { "last_archived_wal_per_timeline": wals },
            }),
        );
    }
    let mut models = Map::new();
    for m in config.models() {
        let mut c = Map::new();
        for (spec, v) in m.iter() {
            let source = config
                .ini()
                .get_raw(m.name(), spec.name)
                .map(|r| r.file.as_str());
            c.insert(
                spec.name.to_owned(),
                with_source(mask(spec.name, config_value(v)), source, show_config_source),
            );
        }
        models.insert(m.name().to_owned(), json!({ "config": c }));
    }
    json!({
        "global": { "config": global, "system_info": system_info },
        "servers": server_docs,
        "models": models,
    })
}

/// `barman diagnose`: gathers the system facts, connects to every server with the
/// connection string given for it (`Err` when it could not be built: reported as the
/// server's `connection_error`), reads each archive's newest WAL files, and builds the
/// [`document`]. Servers are reported in name order.
pub async fn diagnose(
    config: &Config,
    conninfos: &BTreeMap<String, Result<ConnInfo, String>>,
    show_config_source: bool,
) -> Value {
    let system = crate::blocking(
        "collecting the system information",
        "/",
        SystemInfo::collect,
    )
    .await
    .unwrap_or_default();
    let mut names: Vec<&str> = config.server_names().collect();
    names.sort_unstable();
    let mut states = Vec::new();
    for name in names {
        let Some(sc) = config.server(name) else {
            continue;
        };
        let status = match conninfos.get(name) {
            Some(Ok(ci)) => match PgServer::connect(ci, "barman").await {
                Ok(pg) => Ok(pg.remote_status(sc.options().slot_name.as_deref()).await),
                Err(e) => Err(e.to_string()),
            },
            Some(Err(e)) => Err(e.clone()),
            None => Err("no conninfo".to_owned()),
        };
        let wals = WalArchive::for_server(config.global(), sc)
            .latest_archived_per_timeline()
            .unwrap_or_default();
        states.push(ServerState::new(sc, status, wals));
    }
    document(config, &system, &states, show_config_source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MemorySource;

    #[test]
    fn conninfo_passwords_are_masked() {
        for (input, want) in [
            ("host=pg password=secret", "host=pg password=********"),
            ("password = 'x y' user=x", "password =******** user=x"),
            (
                "host=pg password='a \\' b' user=x",
                "host=pg password=******** user=x",
            ),
            ("host=pg passwordx=1", "host=pg passwordx=1"),
            ("host=pg user=password", "host=pg user=password"),
            (
                "postgres://u:p@h:5432/db?sslmode=disable&password=z",
                "postgres://u:********@h:5432/db?sslmode=disable&password=********",
            ),
            ("postgresql://u@h/db", "postgresql://u@h/db"),
        ] {
            assert_eq!(mask_conninfo(input), want, "{input}");
        }
    }

    #[test]
    fn document_has_barmans_structure_and_no_secrets() {
        let text = "[barman]\nbarman_home = /srv/barman\nlog_level = INFO\n\n[pg]\nconninfo = host=pg user=barman password=hunter2\nstreaming_conninfo = postgresql://b:hunter2@pg/db\nencryption_passphrase_command = echo hunter2\nbackup_method = postgres\narchiver = on\n";
        let config = Config::load("/etc/barman.conf", text, &MemorySource::default()).unwrap();
        let system = SystemInfo {
            barman_ver: "0.1.0".into(),
            ..SystemInfo::default()
        };
        let pg = config.server("pg").unwrap();
        let mut wals = BTreeMap::new();
        wals.insert(
            "00000001".to_owned(),
            "000000010000000000000003".parse().unwrap(),
        );
        let states = [ServerState::new(pg, Err("refused".into()), wals)];
        let doc = document(&config, &system, &states, false);
        let text = serde_json::to_string(&doc).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(doc["global"]["config"]["barman_home"], "/srv/barman");
        assert!(doc["global"]["config"]["errors_list"].is_array());
        assert_eq!(doc["global"]["system_info"]["barman_ver"], "0.1.0");
        let s = &doc["servers"]["pg"];
        assert_eq!(s["config"]["name"], "pg");
        assert_eq!(s["config"]["archiver"], true);
        assert_eq!(s["status"]["connection_error"], "refused");
        assert_eq!(s["backups"], json!({}));
        assert_eq!(
            s["wals"]["last_archived_wal_per_timeline"]["00000001"]["name"],
            "000000010000000000000003"
        );
        assert!(doc["models"].is_object());
        let sourced = document(&config, &system, &states, true);
        assert_eq!(
            sourced["global"]["config"]["barman_home"]["source"],
            "/etc/barman.conf"
        );
        assert_eq!(
            sourced["servers"]["pg"]["config"]["conninfo"]["value"],
            "host=pg user=barman password=********"
        );
    }
}
