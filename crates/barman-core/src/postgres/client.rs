//! A small SQL client on tokio-postgres with the queries Barman runs.

use barman_wal::{Lsn, SegmentName, WalSegSize};
use jiff::Timestamp;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::FromSqlOwned;
use tokio_postgres::{Client, NoTls, Row};

use super::conninfo::ConnInfo;
use super::error::{PgError, one_line};
use crate::Result;

/// The oldest PostgreSQL Barman supports (9.6).
pub const MINIMAL_VERSION: u32 = 90600;

/// A connection to a PostgreSQL server, in autocommit mode, with `search_path` empty
/// (Barman's secure schema-usage pattern) unless the conninfo sets `options`.
///
/// The connection is driven by a task spawned on the current tokio runtime; it ends
/// when the `PgServer` is dropped.
///
/// # Examples
///
/// ```no_run
/// # async fn example() -> barman_core::Result<()> {
/// use barman_core::postgres::{ConnInfo, PgServer};
///
/// let ci = ConnInfo::parse("host=/var/run/postgresql user=barman dbname=postgres")?;
/// let pg = PgServer::connect(&ci, "barman").await?;
/// println!("{} in recovery: {}", pg.server_version_num(), pg.is_in_recovery().await?);
/// # Ok(())
/// # }
/// # let _ = example;
/// ```
#[derive(Debug)]
pub struct PgServer {
    client: Client,
    target: String,
    user: String,
    version: u32,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What [`PgServer::backup_start`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupStart {
    /// The backup's start LSN (its REDO point).
    pub lsn: Lsn,
    /// The server's clock when the backup started.
    pub time: Timestamp,
}

/// What [`PgServer::backup_stop`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupStop {
    /// The LSN the copy is consistent at.
    pub lsn: Lsn,
    /// The `backup_label` file to write into the copy.
    pub label: String,
    /// The `tablespace_map` file to write into the copy, when there are tablespaces.
    pub tablespace_map: Option<String>,
    /// The server's clock when the backup stopped.
    pub time: Timestamp,
}

/// Where the server writes WAL now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentWal {
    /// The current write LSN (the replay LSN on a standby).
    pub lsn: Lsn,
    /// The segment holding it (Barman's `current_xlog`); `None` on a standby.
    pub file_name: Option<String>,
}

/// A row of `pg_stat_archiver`, with Barman's derived values.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchiverStats {
    /// WAL files archived successfully.
    pub archived_count: i64,
    /// The last one.
    pub last_archived_wal: Option<String>,
    /// When.
    pub last_archived_time: Option<Timestamp>,
    /// Failed attempts.
    pub failed_count: i64,
    /// The last failed WAL.
    pub last_failed_wal: Option<String>,
    /// When.
    pub last_failed_time: Option<Timestamp>,
    /// Barman's `is_archiving`: archive_mode on/always and no failure since the last
    /// success.
    pub is_archiving: bool,
    /// Archived WAL files per second since the statistics were reset.
    pub archived_per_second: Option<f64>,
}

/// A physical replication slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationSlot {
    /// Its name.
    pub name: String,
    /// Whether a client streams from it now.
    pub active: bool,
    /// The oldest WAL it keeps (`None` until it is first used).
    pub restart_lsn: Option<Lsn>,
}

/// Which clients `replication-status` lists (`--target`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplicationTarget {
    /// Every physical streaming client.
    #[default]
    All,
    /// Standbys replaying what they receive (`replay_lsn` set).
    HotStandby,
    /// Clients that only receive WAL (`replay_lsn` not set: `pg_receivewal`,
    /// `barman receive-wal`).
    WalStreamer,
}

/// One physical client of `pg_stat_replication`, with its slot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicationClient {
    /// The WAL sender's PID.
    pub pid: i32,
    /// `usename`.
    pub user_name: Option<String>,
    /// `application_name`.
    pub application_name: String,
    /// `client_addr` (`None` over a unix socket).
    pub client_addr: Option<String>,
    /// `client_hostname`.
    pub client_hostname: Option<String>,
    /// `client_port`.
    pub client_port: Option<i32>,
    /// `backend_start`, as Python prints a datetime (`2026-12-06 22:30:55.914321+00:00`).
    pub backend_start: Option<String>,
    /// `backend_xmin`.
    pub backend_xmin: Option<String>,
    /// `state` (`streaming`, `catchup`, …).
    pub state: Option<String>,
    /// Positions reported by the client.
    pub sent_lsn: Option<Lsn>,
    /// Written by the client.
    pub write_lsn: Option<Lsn>,
    /// Flushed by the client.
    pub flush_lsn: Option<Lsn>,
    /// Replayed by the client (`None` for a WAL streamer).
    pub replay_lsn: Option<Lsn>,
    /// `sync_priority`.
    pub sync_priority: i32,
    /// `sync_state` (`async`, `potential`, `sync`, `quorum`).
    pub sync_state: String,
    /// The slot it streams from.
    pub slot_name: Option<String>,
    /// The server's position the lags are measured against (its current LSN, or on a
    /// standby the last one it received).
    pub current_lsn: Option<Lsn>,
}

impl ReplicationClient {
    /// A WAL streamer (it replays nothing), or a standby.
    pub fn is_wal_streamer(&self) -> bool {
        self.replay_lsn.is_none()
    }

    /// `lsn - current_lsn` in bytes (0 or negative when behind), `None` when either is
    /// unknown: Barman's `diff_lsn`.
    pub fn lag(&self, lsn: Option<Lsn>) -> Option<i128> {
        Some(i128::from(u64::from(lsn?)) - i128::from(u64::from(self.current_lsn?)))
    }

    /// Barman's synchronisation stage: `5/5 Hot standby (max)`, `4/5 2-safe`,
    /// `3/N Remote write`, `2/N WAL Sent (min)` or `1/N 1-safe` (N is 3 for a WAL
    /// streamer, 5 for a standby).
    pub fn sync_stage(&self) -> String {
        if !self.is_wal_streamer() {
            if self.lag(self.replay_lsn) == Some(0) {
                return "5/5 Hot standby (max)".to_owned();
            }
            if self.lag(self.flush_lsn) == Some(0) {
                return "4/5 2-safe".to_owned();
            }
        }
        let max = if self.is_wal_streamer() { 3 } else { 5 };
        if self.lag(self.write_lsn) == Some(0) {
            format!("3/{max} Remote write")
        } else if self.lag(self.sent_lsn) == Some(0) {
            format!("2/{max} WAL Sent (min)")
        } else {
            format!("1/{max} 1-safe")
        }
    }
}

/// What `replication-status` reads from a server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicationStatus {
    /// The server is a standby.
    pub is_in_recovery: bool,
    /// Its position: `pg_current_wal_lsn()`, on a standby `pg_last_wal_replay_lsn()`.
    pub server_lsn: Option<Lsn>,
    /// Its physical streaming clients, synchronous first, by priority.
    pub clients: Vec<ReplicationClient>,
}

/// What `pg_switch_wal()` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwitchWal {
    /// The segment was closed (it is its name).
    Switched(String),
    /// Nothing was written since the last switch: nothing to close.
    NotNeeded,
    /// The server is a standby: no switch performed.
    InRecovery,
}

/// The server settings Barman reads (`SHOW`); `None` when unknown or not readable by
/// the user (`data_directory` needs superuser or `pg_read_all_settings`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// `archive_mode`.
    pub archive_mode: Option<String>,
    /// `archive_command`.
    pub archive_command: Option<String>,
    /// `wal_level`.
    pub wal_level: Option<String>,
    /// `max_wal_senders`.
    pub max_wal_senders: Option<String>,
    /// `max_replication_slots`.
    pub max_replication_slots: Option<String>,
    /// `data_directory`.
    pub data_directory: Option<String>,
}

/// Everything `barman check` and `barman status` need from the server, gathered in one
/// pass as Barman's `fetch_remote_status` does: a query that fails leaves its field
/// `None` and adds its error to `errors`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RemoteStatus {
    /// `server_version_num`.
    pub server_version: Option<u32>,
    /// The version as Barman prints it (`15.4`).
    pub server_txt_version: Option<String>,
    /// Superuser?
    pub is_superuser: Option<bool>,
    /// Superuser or a user with the backup privileges.
    pub has_backup_privileges: Option<bool>,
    /// Superuser or a member of `pg_monitor` (or of both `pg_read_all_settings` and
    /// `pg_read_all_stats`).
    pub has_monitoring_privileges: Option<bool>,
    /// Standby?
    pub is_in_recovery: Option<bool>,
    /// The current WAL position.
    pub current_wal: Option<CurrentWal>,
    /// The total size of the tablespaces (when the user has backup privileges).
    pub current_size: Option<u64>,
    /// `wal_segment_size` in bytes.
    pub wal_segment_size: Option<u64>,
    /// The system identifier.
    pub systemid: Option<u64>,
    /// The settings.
    pub settings: Settings,
    /// `pg_stat_archiver`.
    pub archiver: Option<ArchiverStats>,
    /// The configured replication slot, when a slot name was given and it exists.
    pub replication_slot: Option<ReplicationSlot>,
    /// The errors met on the way.
    pub errors: Vec<String>,
}

impl RemoteStatus {
    /// Whether the server is recent enough for Barman (≥ 9.6).
    pub fn version_supported(&self) -> Option<bool> {
        self.server_version.map(|v| v >= MINIMAL_VERSION)
    }
}

fn first_line_of_version(version: &str) -> Option<String> {
    let mut words = version.split_whitespace();
    let platform = words.next()?;
    let v = words.next()?;
    if platform == "EnterpriseDB" {
        let parts: Vec<&str> = v.split('.').collect();
        Some(parts[..parts.len().saturating_sub(1)].join("."))
    } else {
        Some(v.to_owned())
    }
}

impl PgServer {
    /// Connects, spawning the connection task on the current runtime, and reads the
    /// server version. `application_name` is used unless the conninfo sets one.
    ///
    /// # Errors
    ///
    /// [`PgError`] for a conninfo that cannot be used, or a connection that fails (the
    /// message names the host, port, user and database).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn connect(conninfo: &ConnInfo, application_name: &str) -> Result<PgServer> {
        let mut ci = conninfo.clone();
        if ci.get("application_name").is_none() && !application_name.is_empty() {
            ci.set("application_name", application_name)?;
        }
        if ci.get("options").is_none() {
            ci.set("options", "-csearch_path=")?;
        }
        let cfg = ci.to_tokio_config()?;
        let target = conninfo.target();
        let connect_error = |e: tokio_postgres::Error| PgError::Connect {
            target: target.clone(),
            message: one_line(&e),
            source: Box::new(e),
        };
        let tls = match cfg.get_ssl_mode() {
            SslMode::Disable => None,
            _ => super::tls::connector(&ci)?,
        };
        // The connection's error, if any, surfaces on the next query.
        let (client, task) = match tls {
            None => {
                let (client, connection) = cfg.connect(NoTls).await.map_err(connect_error)?;
                (client, tokio::spawn(async move { drop(connection.await) }))
            }
            Some(tls) => {
                let (client, connection) = cfg.connect(tls).await.map_err(connect_error)?;
                (client, tokio::spawn(async move { drop(connection.await) }))
            }
        };
        let mut server = PgServer {
            client,
            target,
            user: cfg.get_user().unwrap_or_default().to_owned(),
            version: 0,
            task,
        };
        let v: String = server
            .one(
                "server_version_num",
                "SELECT current_setting('server_version_num')",
                &[],
            )
            .await?;
        server.version = v.trim().parse().map_err(|_| PgError::Unexpected {
            target: server.target.clone(),
            what: "server_version_num",
            value: v.clone(),
        })?;
        Ok(server)
    }

    /// Where this connects (`host=… port=… user=… dbname=…`), for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The user connected as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// `server_version_num` (150004 for 15.4).
    pub fn server_version_num(&self) -> u32 {
        self.version
    }

    fn query_error(&self, what: &'static str, e: tokio_postgres::Error) -> PgError {
        PgError::Query {
            target: self.target.clone(),
            what,
            message: one_line(&e),
            source: Box::new(e),
        }
    }

    async fn row(
        &self,
        what: &'static str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<Row>> {
        Ok(self
            .client
            .query_opt(sql, params)
            .await
            .map_err(|e| self.query_error(what, e))?)
    }

    async fn one<T: FromSqlOwned>(
        &self,
        what: &'static str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<T> {
        let row = self
            .client
            .query_one(sql, params)
            .await
            .map_err(|e| self.query_error(what, e))?;
        Ok(row.try_get(0).map_err(|e| self.query_error(what, e))?)
    }

    fn unexpected(&self, what: &'static str, value: impl Into<String>) -> PgError {
        PgError::Unexpected {
            target: self.target.clone(),
            what,
            value: value.into(),
        }
    }

    fn lsn(&self, what: &'static str, text: &str) -> Result<Lsn> {
        Ok(text.parse().map_err(|_| self.unexpected(what, text))?)
    }

    /// The version as Barman prints it, from `version()` (`15.4`).
    ///
    /// # Errors
    ///
    /// The query fails.
    pub async fn server_txt_version(&self) -> Result<String> {
        let v: String = self.one("version()", "SELECT version()", &[]).await?;
        Ok(first_line_of_version(&v).ok_or_else(|| self.unexpected("version()", v))?)
    }

    /// `pg_is_in_recovery()`.
    ///
    /// # Errors
    ///
    /// The query fails.
    pub async fn is_in_recovery(&self) -> Result<bool> {
        self.one("pg_is_in_recovery()", "SELECT pg_is_in_recovery()", &[])
            .await
    }

    /// The system identifier (`pg_control_system()`).
    ///
    /// # Errors
    ///
    /// The query fails.
    pub async fn system_identifier(&self) -> Result<u64> {
        let s: String = self
            .one(
                "pg_control_system()",
                "SELECT system_identifier::text FROM pg_control_system()",
                &[],
            )
            .await?;
        Ok(s.parse()
            .map_err(|_| self.unexpected("pg_control_system()", s))?)
    }

    /// `wal_segment_size` in bytes.
    ///
    /// # Errors
    ///
    /// The query fails.
    pub async fn wal_segment_size(&self) -> Result<u64> {
        let mut size: i64 = self
            .one(
                "wal_segment_size",
                "SELECT setting::int8 FROM pg_settings WHERE name = 'wal_segment_size'",
                &[],
            )
            .await?;
        if self.version < 110000 {
            let block: i64 = self
                .one(
                    "wal_block_size",
                    "SELECT setting::int8 FROM pg_settings WHERE name = 'wal_block_size'",
                    &[],
                )
                .await?;
            size = size.saturating_mul(block);
        }
        Ok(u64::try_from(size)
            .map_err(|_| self.unexpected("wal_segment_size", size.to_string()))?)
    }

    /// The current WAL position and segment (on a standby, the replay position and no
    /// segment). On PostgreSQL 17 and later, an LSN at a segment boundary is reported in
    /// the previous segment, as older versions (and Barman) do.
    ///
    /// # Errors
    ///
    /// A query fails.
    pub async fn current_wal(&self) -> Result<CurrentWal> {
        if self.is_in_recovery().await? {
            let lsn: Option<String> = self
                .one(
                    "pg_last_wal_replay_lsn()",
                    "SELECT pg_last_wal_replay_lsn()::text",
                    &[],
                )
                .await?;
            let lsn = match lsn {
                Some(l) => self.lsn("pg_last_wal_replay_lsn()", &l)?,
                None => Lsn::INVALID,
            };
            return Ok(CurrentWal {
                lsn,
                file_name: None,
            });
        }
        let row = self
            .row(
                "pg_current_wal_lsn()",
                "SELECT location::text, (pg_walfile_name_offset(location)).file_name, \
                 (pg_walfile_name_offset(location)).file_offset::int8 \
                 FROM pg_current_wal_lsn() AS location",
                &[],
            )
            .await?
            .ok_or_else(|| self.unexpected("pg_current_wal_lsn()", "no row"))?;
        let get = |e| self.query_error("pg_current_wal_lsn()", e);
        let lsn: String = row.try_get(0).map_err(get)?;
        let mut name: String = row.try_get(1).map_err(get)?;
        let offset: i64 = row.try_get(2).map_err(get)?;
        if self.version >= 170000 && offset == 0 {
            name = self.previous_segment(&name).await?;
        }
        Ok(CurrentWal {
            lsn: self.lsn("pg_current_wal_lsn()", &lsn)?,
            file_name: Some(name),
        })
    }

    async fn previous_segment(&self, name: &str) -> Result<String> {
        let size = WalSegSize::new(self.wal_segment_size().await?)
            .map_err(|_| self.unexpected("wal_segment_size", "not a valid size"))?;
        let seg: SegmentName = name
            .parse()
            .map_err(|_| self.unexpected("pg_walfile_name()", name))?;
        Ok(seg
            .prev(size)
            .map_or_else(|| name.to_owned(), |p| p.to_string()))
    }

    /// A setting as `SHOW` prints it; `None` when the user may not read it.
    ///
    /// # Errors
    ///
    /// The query fails for another reason (an unknown setting, a lost connection).
    pub async fn setting(&self, name: &str) -> Result<Option<String>> {
        match self
            .client
            .query_one("SELECT current_setting($1)", &[&name])
            .await
        {
            Ok(row) => Ok(row.try_get(0).map_err(|e| self.query_error("SHOW", e))?),
            Err(e)
                if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.query_error("SHOW", e).into()),
        }
    }

    /// The settings Barman checks.
    ///
    /// # Errors
    ///
    /// A query fails.
    pub async fn settings(&self) -> Result<Settings> {
        Ok(Settings {
            archive_mode: self.setting("archive_mode").await?,
            archive_command: self.setting("archive_command").await?,
            wal_level: self.setting("wal_level").await?,
            max_wal_senders: self.setting("max_wal_senders").await?,
            max_replication_slots: self.setting("max_replication_slots").await?,
            data_directory: self.setting("data_directory").await?,
        })
    }

    /// Whether the user is a superuser.
    ///
    /// # Errors
    ///
    /// The query fails.
    pub async fn is_superuser(&self) -> Result<bool> {
        self.one(
            "superuser check",
            "SELECT usesuper FROM pg_user WHERE usename = CURRENT_USER",
            &[],
        )
        .await
    }

    /// Barman's `has_backup_privileges`: a superuser, or (PostgreSQL 10 and later) a
    /// member of `pg_monitor` (or of `pg_read_all_settings` and `pg_read_all_stats`)
    /// allowed to execute the backup start and stop functions, `pg_switch_wal()` and
    /// `pg_create_restore_point(text)`.
    ///
    /// # Errors
    ///
    /// The query fails.
    pub async fn has_backup_privileges(&self) -> Result<bool> {
        if self.version < 100000 {
            return self.is_superuser().await;
        }
        let (start, stop) = if self.version < 150000 {
            (
                "has_function_privilege(CURRENT_USER, 'pg_start_backup(text,bool,bool)', 'EXECUTE')",
                "has_function_privilege(CURRENT_USER, 'pg_stop_backup()', 'EXECUTE') OR \
                 has_function_privilege(CURRENT_USER, 'pg_stop_backup(bool,bool)', 'EXECUTE')",
            )
        } else {
            (
                "has_function_privilege(CURRENT_USER, 'pg_backup_start(text,bool)', 'EXECUTE')",
                "has_function_privilege(CURRENT_USER, 'pg_backup_stop(bool)', 'EXECUTE')",
            )
        };
        let sql = format!(
            "SELECT usesuper OR (\
               (pg_has_role(CURRENT_USER, 'pg_monitor', 'USAGE') OR \
                (pg_has_role(CURRENT_USER, 'pg_read_all_settings', 'USAGE') \
                 AND pg_has_role(CURRENT_USER, 'pg_read_all_stats', 'USAGE'))) \
               AND ({start}) AND ({stop}) \
               AND has_function_privilege(CURRENT_USER, 'pg_switch_wal()', 'EXECUTE') \
               AND has_function_privilege(CURRENT_USER, 'pg_create_restore_point(text)', 'EXECUTE')) \
             FROM pg_user WHERE usename = CURRENT_USER"
        );
        self.one("backup privileges check", &sql, &[]).await
    }

    /// Barman's `has_checkpoint_privileges`: a superuser or (PostgreSQL 14 and later) a
    /// member of `pg_checkpoint`.
    ///
    /// # Errors
    ///
    /// The query fails.
    pub async fn has_checkpoint_privileges(&self) -> Result<bool> {
        if self.is_superuser().await? {
            return Ok(true);
        }
        if self.version < 140000 {
            return Ok(false);
        }
        self.one(
            "checkpoint privileges check",
            "SELECT pg_has_role(CURRENT_USER, 'pg_checkpoint', 'USAGE')",
            &[],
        )
        .await
    }

    /// Barman's `has_monitoring_privileges`.
    ///
    /// # Errors
    ///
    /// The query fails.
    pub async fn has_monitoring_privileges(&self) -> Result<bool> {
        if self.is_superuser().await? {
            return Ok(true);
        }
        self.one(
            "monitoring privileges check",
            "SELECT pg_has_role(CURRENT_USER, 'pg_monitor', 'USAGE') OR \
             (pg_has_role(CURRENT_USER, 'pg_read_all_settings', 'USAGE') \
              AND pg_has_role(CURRENT_USER, 'pg_read_all_stats', 'USAGE'))",
            &[],
        )
        .await
    }

    /// The total size of the tablespaces, in bytes.
    ///
    /// # Errors
    ///
    /// The query fails.
    pub async fn current_size(&self) -> Result<u64> {
        let size: Option<i64> = self
            .one(
                "database size",
                "SELECT sum(pg_tablespace_size(oid))::int8 FROM pg_tablespace",
                &[],
            )
            .await?;
        Ok(size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
    }

    /// `pg_stat_archiver`, with Barman's `is_archiving` and archiving rate.
    ///
    /// # Errors
    ///
    /// The query fails.
    pub async fn archiver_stats(&self) -> Result<ArchiverStats> {
        const WHAT: &str = "pg_stat_archiver";
        let row = self
            .row(
                WHAT,
                "SELECT archived_count, last_archived_wal, \
                 (extract(epoch FROM last_archived_time) * 1000000)::int8, \
                 failed_count, last_failed_wal, \
                 (extract(epoch FROM last_failed_time) * 1000000)::int8, \
                 current_setting('archive_mode') IN ('on', 'always') \
                 AND (last_failed_wal IS NULL \
                 OR last_failed_wal LIKE '%.history' \
                 AND substring(last_failed_wal from 1 for 8) \
                 <= substring(last_archived_wal from 1 for 8) \
                 OR last_failed_time <= last_archived_time), \
                 (CAST(archived_count AS NUMERIC) \
                 / NULLIF(EXTRACT(EPOCH FROM age(now(), stats_reset)), 0))::float8 \
                 FROM pg_stat_archiver",
                &[],
            )
            .await?
            .ok_or_else(|| self.unexpected(WHAT, "no row"))?;
        let e = |e| self.query_error(WHAT, e);
        let ts = |us: Option<i64>| us.and_then(|us| Timestamp::from_microsecond(us).ok());
        Ok(ArchiverStats {
            archived_count: row.try_get(0).map_err(e)?,
            last_archived_wal: row.try_get(1).map_err(e)?,
            last_archived_time: ts(row.try_get(2).map_err(e)?),
            failed_count: row.try_get(3).map_err(e)?,
            last_failed_wal: row.try_get(4).map_err(e)?,
            last_failed_time: ts(row.try_get(5).map_err(e)?),
            is_archiving: row
                .try_get::<_, Option<bool>>(6)
                .map_err(e)?
                .unwrap_or(false),
            archived_per_second: row.try_get(7).map_err(e)?,
        })
    }

    /// The physical streaming clients of the server (`pg_stat_replication` with their
    /// slots), as Barman's `replication-status` reads them.
    ///
    /// # Errors
    ///
    /// [`PgError::Privileges`] without the monitoring privileges (superuser or
    /// `pg_monitor`); a query fails.
    pub async fn replication_status(&self, target: ReplicationTarget) -> Result<ReplicationStatus> {
        const WHAT: &str = "pg_stat_replication";
        if !self.has_monitoring_privileges().await? {
            return Err(PgError::Privileges {
                target: self.target.clone(),
                user: self.user.clone(),
                what: "is missing required privileges (see \"Pre-requisites\" section in the Barman documentation)",
            }
            .into());
        }
        let filter = match target {
            ReplicationTarget::All => "",
            ReplicationTarget::HotStandby => " AND r.replay_lsn IS NOT NULL",
            ReplicationTarget::WalStreamer => " AND r.replay_lsn IS NULL",
        };
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT r.pid, r.usename::text, coalesce(r.application_name, ''), \
                     host(r.client_addr), r.client_hostname, r.client_port, \
                     to_char(r.backend_start, 'YYYY-MM-DD HH24:MI:SS') \
                     || CASE WHEN date_part('microseconds', r.backend_start)::int8 % 1000000 <> 0 \
                     THEN to_char(r.backend_start, '.US') ELSE '' END \
                     || to_char(r.backend_start, 'TZH:TZM'), \
                     r.backend_xmin::text, r.state, r.sent_lsn::text, r.write_lsn::text, \
                     r.flush_lsn::text, r.replay_lsn::text, coalesce(r.sync_priority, 0), \
                     coalesce(r.sync_state, ''), rs.slot_name::text, \
                     (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() \
                      ELSE pg_current_wal_lsn() END)::text \
                     FROM pg_stat_replication r \
                     LEFT JOIN pg_replication_slots rs ON (r.pid = rs.active_pid) \
                     WHERE (rs.slot_type IS NULL OR rs.slot_type = 'physical'){filter} \
                     ORDER BY r.sync_state DESC, r.sync_priority"
                ),
                &[],
            )
            .await
            .map_err(|e| self.query_error(WHAT, e))?;
        let e = |e| self.query_error(WHAT, e);
        let lsn = |text: Option<String>| text.map(|t| self.lsn(WHAT, &t)).transpose();
        let mut clients = Vec::with_capacity(rows.len());
        for row in rows {
            clients.push(ReplicationClient {
                pid: row.try_get(0).map_err(e)?,
                user_name: row.try_get(1).map_err(e)?,
                application_name: row.try_get(2).map_err(e)?,
                client_addr: row.try_get(3).map_err(e)?,
                client_hostname: row.try_get(4).map_err(e)?,
                client_port: row.try_get(5).map_err(e)?,
                backend_start: row.try_get(6).map_err(e)?,
                backend_xmin: row.try_get(7).map_err(e)?,
                state: row.try_get(8).map_err(e)?,
                sent_lsn: lsn(row.try_get(9).map_err(e)?)?,
                write_lsn: lsn(row.try_get(10).map_err(e)?)?,
                flush_lsn: lsn(row.try_get(11).map_err(e)?)?,
                replay_lsn: lsn(row.try_get(12).map_err(e)?)?,
                sync_priority: row.try_get(13).map_err(e)?,
                sync_state: row.try_get(14).map_err(e)?,
                slot_name: row.try_get(15).map_err(e)?,
                current_lsn: lsn(row.try_get(16).map_err(e)?)?,
            });
        }
        let is_in_recovery = self.is_in_recovery().await?;
        let server_lsn: Option<String> = self
            .one(
                "current WAL location",
                "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                 ELSE pg_current_wal_lsn() END)::text",
                &[],
            )
            .await?;
        Ok(ReplicationStatus {
            is_in_recovery,
            server_lsn: lsn(server_lsn)?,
            clients,
        })
    }

    /// The physical replication slot `name`, if it exists.
    ///
    /// # Errors
    ///
    /// The query fails.
    pub async fn replication_slot(&self, name: &str) -> Result<Option<ReplicationSlot>> {
        const WHAT: &str = "pg_replication_slots";
        let Some(row) = self
            .row(
                WHAT,
                "SELECT slot_name::text, active, restart_lsn::text FROM pg_replication_slots \
                 WHERE slot_type = 'physical' AND slot_name = $1",
                &[&name],
            )
            .await?
        else {
            return Ok(None);
        };
        let e = |e| self.query_error(WHAT, e);
        let restart: Option<String> = row.try_get(2).map_err(e)?;
        Ok(Some(ReplicationSlot {
            name: row.try_get(0).map_err(e)?,
            active: row.try_get(1).map_err(e)?,
            restart_lsn: restart.map(|l| self.lsn(WHAT, &l)).transpose()?,
        }))
    }

    /// Barman's `switch-wal`: with `force`, a `CHECKPOINT` first (so there is WAL to
    /// close); then `pg_switch_wal()`, which closes the current segment only if
    /// something was written to it. The segment names before and after tell whether a
    /// switch happened.
    ///
    /// # Errors
    ///
    /// [`PgError::Privileges`] without the backup privileges (or, with `force`, the
    /// checkpoint privileges); a query fails.
    pub async fn switch_wal(&self, force: bool) -> Result<SwitchWal> {
        if !self.has_backup_privileges().await? {
            return Err(PgError::Privileges {
                target: self.target.clone(),
                user: self.user.clone(),
                what: "is missing required privileges (see \"Pre-requisites\" section in the Barman documentation)",
            }
            .into());
        }
        if self.is_in_recovery().await? {
            return Ok(SwitchWal::InRecovery);
        }
        if force {
            self.checkpoint().await?;
        }
        const WHAT: &str = "pg_switch_wal()";
        let row = self
            .row(
                WHAT,
                "SELECT (pg_walfile_name_offset(location)).file_name, \
                 (pg_walfile_name_offset(location)).file_offset::int8 \
                 FROM pg_current_wal_insert_lsn() AS location",
                &[],
            )
            .await?
            .ok_or_else(|| self.unexpected(WHAT, "no row"))?;
        let pre: String = row.try_get(0).map_err(|e| self.query_error(WHAT, e))?;
        let pre_offset: i64 = row.try_get(1).map_err(|e| self.query_error(WHAT, e))?;
        self.client
            .execute("SELECT pg_switch_wal()", &[])
            .await
            .map_err(|e| self.query_error(WHAT, e))?;
        let post: String = self
            .one(
                WHAT,
                "SELECT pg_walfile_name(pg_current_wal_insert_lsn())",
                &[],
            )
            .await?;
        if pre < post {
            if self.version >= 170000 && pre_offset == 0 {
                return Ok(SwitchWal::Switched(self.previous_segment(&pre).await?));
            }
            Ok(SwitchWal::Switched(pre))
        } else {
            Ok(SwitchWal::NotNeeded)
        }
    }

    /// `CHECKPOINT`.
    ///
    /// # Errors
    ///
    /// [`PgError::Privileges`] when the user is neither superuser nor in
    /// `pg_checkpoint`; the command fails.
    pub async fn checkpoint(&self) -> Result<()> {
        if !self.has_checkpoint_privileges().await? {
            return Err(PgError::Privileges {
                target: self.target.clone(),
                user: self.user.clone(),
                what: "needs superuser rights or the 'pg_checkpoint' role for switch-wal --force",
            }
            .into());
        }
        self.client
            .batch_execute("CHECKPOINT")
            .await
            .map_err(|e| self.query_error("CHECKPOINT", e))?;
        Ok(())
    }

    /// Runs `sql` (one or more statements, simple protocol) and returns the rows of
    /// every statement as text; an error is the server's `SEVERITY: message` (or the
    /// driver's, on one line). For a sandbox's checks, whose SQL is its own.
    pub(crate) async fn simple_rows(
        &self,
        sql: &str,
    ) -> std::result::Result<Vec<Vec<Option<String>>>, String> {
        let messages = self
            .client
            .simple_query(sql)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) => format!("{}: {}", db.severity(), db.message()),
                None => one_line(&e),
            })?;
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect())
    }

    /// `SELECT 1`: keeps an idle session alive, and tells whether it still is.
    ///
    /// # Errors
    ///
    /// The query fails (the connection is lost).
    pub async fn ping(&self) -> Result<()> {
        self.client
            .batch_execute("SELECT 1")
            .await
            .map_err(|e| self.query_error("SELECT 1", e))?;
        Ok(())
    }

    /// `pg_create_restore_point(name)`; `None` on a standby, where it cannot run.
    ///
    /// # Errors
    ///
    /// A query fails.
    pub async fn create_restore_point(&self, name: &str) -> Result<Option<Lsn>> {
        if self.is_in_recovery().await? {
            return Ok(None);
        }
        let lsn: String = self
            .one(
                "pg_create_restore_point()",
                "SELECT pg_create_restore_point($1)::text",
                &[&name],
            )
            .await?;
        Ok(Some(self.lsn("pg_create_restore_point()", &lsn)?))
    }

    /// Starts a non-exclusive base backup on this session (`pg_backup_start`, or
    /// `pg_start_backup(label, fast, false)` before PostgreSQL 15): the session must stay
    /// open until [`backup_stop`](Self::backup_stop), and PostgreSQL ends the backup
    /// mode by itself if the session dies. Returns the start LSN and the server's clock.
    ///
    /// # Errors
    ///
    /// The query fails (no privileges, a backup already running on this session...).
    pub async fn backup_start(&self, label: &str, fast: bool) -> Result<BackupStart> {
        let sql = if self.version >= 150000 {
            "SELECT pg_backup_start($1, $2)::text, now()"
        } else {
            "SELECT pg_start_backup($1, $2, false)::text, now()"
        };
        let row = self
            .client
            .query_one(sql, &[&label, &fast])
            .await
            .map_err(|e| self.query_error("pg_backup_start()", e))?;
        let lsn: String = row
            .try_get(0)
            .map_err(|e| self.query_error("pg_backup_start()", e))?;
        let time: std::time::SystemTime = row
            .try_get(1)
            .map_err(|e| self.query_error("pg_backup_start()", e))?;
        Ok(BackupStart {
            lsn: self.lsn("pg_backup_start()", &lsn)?,
            time: Timestamp::try_from(time)
                .map_err(|_| self.unexpected("now()", "out of range"))?,
        })
    }

    /// Ends the non-exclusive backup started on this session (`pg_backup_stop(false)`,
    /// or `pg_stop_backup(false, false)` before 15), without waiting for the WAL to be
    /// archived: returns the stop LSN, the `backup_label` and `tablespace_map` texts
    /// to store with the copy, and the server's clock.
    ///
    /// # Errors
    ///
    /// The query fails.
    pub async fn backup_stop(&self) -> Result<BackupStop> {
        let sql = if self.version >= 150000 {
            "SELECT lsn::text, labelfile, spcmapfile, now() FROM pg_backup_stop(false)"
        } else {
            "SELECT lsn::text, labelfile, spcmapfile, now() FROM pg_stop_backup(false, false)"
        };
        let row = self
            .client
            .query_one(sql, &[])
            .await
            .map_err(|e| self.query_error("pg_backup_stop()", e))?;
        let get = |i: usize| -> Result<Option<String>> {
            Ok(row
                .try_get(i)
                .map_err(|e| self.query_error("pg_backup_stop()", e))?)
        };
        let lsn = get(0)?.unwrap_or_default();
        let time: std::time::SystemTime = row
            .try_get(3)
            .map_err(|e| self.query_error("pg_backup_stop()", e))?;
        Ok(BackupStop {
            lsn: self.lsn("pg_backup_stop()", &lsn)?,
            label: get(1)?.unwrap_or_default(),
            tablespace_map: get(2)?.filter(|t| !t.is_empty()),
            time: Timestamp::try_from(time)
                .map_err(|_| self.unexpected("now()", "out of range"))?,
        })
    }

    /// The timeline of the last checkpoint (`pg_control_checkpoint()`), the one WAL is
    /// written on after a backup start's checkpoint.
    ///
    /// # Errors
    ///
    /// The query fails.
    pub async fn timeline(&self) -> Result<u32> {
        let t: i32 = self
            .one(
                "pg_control_checkpoint()",
                "SELECT timeline_id FROM pg_control_checkpoint()",
                &[],
            )
            .await?;
        Ok(u32::try_from(t).map_err(|_| self.unexpected("timeline_id", t.to_string()))?)
    }

    /// The user tablespaces: `(name, oid, location)`.
    ///
    /// # Errors
    ///
    /// The query fails.
    pub async fn tablespaces(&self) -> Result<Vec<(String, u32, String)>> {
        let rows = self
            .client
            .query(
                "SELECT spcname::text, oid::int8, pg_tablespace_location(oid) \
                 FROM pg_tablespace WHERE pg_tablespace_location(oid) <> '' ORDER BY oid",
                &[],
            )
            .await
            .map_err(|e| self.query_error("pg_tablespace", e))?;
        rows.iter()
            .map(|r| {
                let name: String = r
                    .try_get(0)
                    .map_err(|e| self.query_error("pg_tablespace", e))?;
                let oid: i64 = r
                    .try_get(1)
                    .map_err(|e| self.query_error("pg_tablespace", e))?;
                let loc: String = r
                    .try_get(2)
                    .map_err(|e| self.query_error("pg_tablespace", e))?;
                let oid = u32::try_from(oid)
                    .map_err(|_| self.unexpected("pg_tablespace.oid", oid.to_string()))?;
                Ok((name, oid, loc))
            })
            .collect()
    }

    /// Everything `check` and `status` need, in one pass; a failing query leaves its
    /// field `None` and records its error (Barman's `fetch_remote_status`).
    pub async fn remote_status(&self, slot_name: Option<&str>) -> RemoteStatus {
        let mut st = RemoteStatus {
            server_version: Some(self.version),
            ..RemoteStatus::default()
        };
        fn keep<T>(errors: &mut Vec<String>, r: Result<T>) -> Option<T> {
            r.map_err(|e| errors.push(e.to_string())).ok()
        }
        let e = &mut st.errors;
        st.server_txt_version = keep(e, self.server_txt_version().await);
        st.is_superuser = keep(e, self.is_superuser().await);
        st.has_backup_privileges = keep(e, self.has_backup_privileges().await);
        st.has_monitoring_privileges = keep(e, self.has_monitoring_privileges().await);
        st.is_in_recovery = keep(e, self.is_in_recovery().await);
        st.current_wal = keep(e, self.current_wal().await);
        if st.has_backup_privileges == Some(true) {
            st.current_size = keep(e, self.current_size().await);
        }
        st.wal_segment_size = keep(e, self.wal_segment_size().await);
        st.systemid = keep(e, self.system_identifier().await);
        st.settings = keep(e, self.settings().await).unwrap_or_default();
        if st.has_backup_privileges != Some(true) {
            // Barman reads data_directory only with backup privileges.
            st.settings.data_directory = None;
        }
        st.archiver = keep(e, self.archiver_stats().await);
        if let Some(slot) = slot_name {
            st.replication_slot = keep(e, self.replication_slot(slot).await).flatten();
        }
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_stages_as_barman() {
        let at = |n: u64| Some(Lsn::new(n));
        let mut c = ReplicationClient {
            current_lsn: at(100),
            sent_lsn: at(100),
            write_lsn: at(100),
            flush_lsn: at(100),
            replay_lsn: at(100),
            ..ReplicationClient::default()
        };
        assert_eq!(c.sync_stage(), "5/5 Hot standby (max)");
        c.replay_lsn = at(90);
        assert_eq!(c.sync_stage(), "4/5 2-safe");
        assert_eq!(c.lag(c.replay_lsn), Some(-10));
        c.flush_lsn = at(95);
        assert_eq!(c.sync_stage(), "3/5 Remote write");
        c.replay_lsn = None;
        assert!(c.is_wal_streamer());
        assert_eq!(c.sync_stage(), "3/3 Remote write");
        c.write_lsn = at(99);
        assert_eq!(c.sync_stage(), "2/3 WAL Sent (min)");
        c.sent_lsn = at(99);
        assert_eq!(c.sync_stage(), "1/3 1-safe");
        c.current_lsn = None;
        assert_eq!(c.lag(c.sent_lsn), None);
        assert_eq!(c.sync_stage(), "1/3 1-safe");
    }

    #[test]
    fn version_text() {
        assert_eq!(
            first_line_of_version("PostgreSQL 15.4 (Debian 15.4-1) on x86_64").as_deref(),
            Some("15.4")
        );
        assert_eq!(
            first_line_of_version("EnterpriseDB 10.5.12 on x86_64").as_deref(),
            Some("10.5")
        );
        assert_eq!(first_line_of_version("x"), None);
    }
}
