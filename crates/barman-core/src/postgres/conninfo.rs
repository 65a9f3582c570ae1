//! libpq-compatible connection strings, PG* environment defaults and the password file.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
#[cfg(feature = "postgres")]
use std::time::Duration;

use super::error::PgError;

/// Where libpq (as packaged by Debian, whose PostgreSQL is what Barman hosts run) puts
/// the server's unix socket when no host is given.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// The default port.
pub const DEFAULT_PORT: u16 = 5432;

/// Every keyword of libpq 17 with the environment variable that supplies its default.
const KEYWORDS: &[(&str, Option<&str>)] = &[
    ("host", Some("PGHOST")),
    ("hostaddr", Some("PGHOSTADDR")),
    ("port", Some("PGPORT")),
    ("dbname", Some("PGDATABASE")),
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("passfile", Some("PGPASSFILE")),
    ("require_auth", Some("PGREQUIREAUTH")),
    ("channel_binding", Some("PGCHANNELBINDING")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("client_encoding", Some("PGCLIENTENCODING")),
    ("options", Some("PGOPTIONS")),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("keepalives", None),
    ("keepalives_idle", None),
    ("keepalives_interval", None),
    ("keepalives_count", None),
    ("tcp_user_timeout", None),
    ("replication", None),
    ("gssencmode", Some("PGGSSENCMODE")),
    ("sslmode", Some("PGSSLMODE")),
    ("sslnegotiation", Some("PGSSLNEGOTIATION")),
    ("sslcompression", Some("PGSSLCOMPRESSION")),
    ("sslcert", Some("PGSSLCERT")),
    ("sslkey", Some("PGSSLKEY")),
    ("sslpassword", None),
    ("sslcertmode", Some("PGSSLCERTMODE")),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslcrl", Some("PGSSLCRL")),
    ("sslcrldir", Some("PGSSLCRLDIR")),
    ("sslsni", Some("PGSSLSNI")),
    ("requirepeer", Some("PGREQUIREPEER")),
    ("ssl_min_protocol_version", Some("PGSSLMINPROTOCOLVERSION")),
    ("ssl_max_protocol_version", Some("PGSSLMAXPROTOCOLVERSION")),
    ("krbsrvname", Some("PGKRBSRVNAME")),
    ("gsslib", Some("PGGSSLIB")),
    ("gssdelegation", Some("PGGSSDELEGATION")),
    ("service", Some("PGSERVICE")),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ("load_balance_hosts", Some("PGLOADBALANCEHOSTS")),
];

fn keyword(key: &str) -> Result<&'static str, PgError> {
    KEYWORDS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(k, _)| *k)
        .ok_or_else(|| PgError::UnknownOption {
            key: key.to_owned(),
        })
}

/// A libpq connection string: the keywords that were written, in order, each once (the
/// last occurrence wins, as in libpq).
///
/// Both of libpq's forms parse: `key=value` pairs (values may be single-quoted, with `\\`
/// and `\'` escapes; blanks around `=` are allowed) and `postgresql://` / `postgres://`
/// URIs (`user:password@host:port,host2:port2/dbname?key=value&…`, percent-decoded; a
/// unix socket directory as `host=%2Fpath` in the host part or `?host=/path`).
///
/// `Display` shows the connection string with the password masked; [`ConnInfo::encode`]
/// gives the full text back.
///
/// # Examples
///
/// ```
/// use barman_core::postgres::ConnInfo;
///
/// let ci = ConnInfo::parse("host=pg port = 5433 user=barman password='s3 cr\\'et'")?;
/// assert_eq!(ci.get("port"), Some("5433"));
/// assert_eq!(ci.get("password"), Some("s3 cr'et"));
/// assert_eq!(ci.to_string(), "host=pg port=5433 user=barman password=********");
///
/// let uri = ConnInfo::parse("postgresql://barman@%2Fvar%2Frun%2Fpostgresql:5432/postgres")?;
/// assert_eq!(uri.get("host"), Some("/var/run/postgresql"));
/// assert_eq!(uri.get("dbname"), Some("postgres"));
/// # Ok::<(), barman_core::postgres::PgError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnInfo {
    params: Vec<(&'static str, String)>,
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnInfo({self})")
    }
}

impl fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(true))
    }
}

impl std::str::FromStr for ConnInfo {
    type Err = PgError;

    fn from_str(s: &str) -> Result<ConnInfo, PgError> {
        ConnInfo::parse(s)
    }
}

fn quote(value: &str) -> String {
    if !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_ascii_whitespace() || c == '\'' || c == '\\')
    {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

fn syntax(reason: impl Into<String>) -> PgError {
    PgError::Syntax {
        reason: reason.into(),
    }
}

impl ConnInfo {
    /// Parses a connection string in either of libpq's forms.
    ///
    /// # Errors
    ///
    /// [`PgError::Syntax`] with libpq's reason, [`PgError::UnknownOption`] for a key libpq
    /// does not know.
    pub fn parse(text: &str) -> Result<ConnInfo, PgError> {
        if text.starts_with("postgresql://") || text.starts_with("postgres://") {
            parse_uri(text)
        } else {
            parse_key_value(text)
        }
    }

    /// The value written for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` (replacing a previous value).
    ///
    /// # Errors
    ///
    /// [`PgError::UnknownOption`] when libpq has no such keyword.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> Result<(), PgError> {
        let key = keyword(key)?;
        let value = value.into();
        match self.params.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.params.push((key, value)),
        }
        Ok(())
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.params.retain(|(k, _)| *k != key);
    }

    /// The keywords and values, in the order they were first written.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.params.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// The `key=value` text of every keyword, password included, which
    /// [`ConnInfo::parse`] reads back unchanged.
    pub fn encode(&self) -> String {
        self.render(false)
    }

    fn render(&self, mask: bool) -> String {
        self.params
            .iter()
            .map(|(k, v)| {
                if mask && matches!(*k, "password" | "sslpassword") {
                    format!("{k}=********")
                } else {
                    format!("{k}={}", quote(v))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// libpq's defaults from the environment: every keyword that was not written takes
    /// the value of its variable (`PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`,
    /// `PGPASSWORD`, `PGPASSFILE`, `PGSSLMODE`, `PGAPPNAME`, `PGCONNECT_TIMEOUT`,
    /// `PGOPTIONS`, `PGTARGETSESSIONATTRS`, …) when that is set. `env` is the process
    /// environment, read by the caller.
    pub fn with_env(&self, env: &HashMap<String, String>) -> ConnInfo {
        let mut out = self.clone();
        for (key, var) in KEYWORDS {
            if let Some(var) = var
                && out.get(key).is_none()
                && let Some(value) = env.get(*var)
            {
                out.params.push((key, value.clone()));
            }
        }
        out
    }

    /// Completed as libpq completes a connection string: [`with_env`](Self::with_env),
    /// then, without a password, [`with_pgpass`](Self::with_pgpass) from the
    /// [`passfile`](Self::passfile) (read here; an unreadable one is skipped, as libpq
    /// does).
    pub fn complete(&self, env: &HashMap<String, String>, home: Option<&Path>) -> ConnInfo {
        let ci = self.with_env(env);
        match ci.passfile(home).map(std::fs::read_to_string) {
            Some(Ok(content)) => ci.with_pgpass(&content),
            _ => ci,
        }
    }

    /// [`complete`](Self::complete) with the process's `PG*` variables and `HOME`, as
    /// the `barman` command does.
    pub fn complete_from_process(&self) -> ConnInfo {
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("PG"))
            .collect();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        self.complete(&env, home.as_deref())
    }

    /// The password file libpq would read: `passfile`, else `<home>/.pgpass`.
    pub fn passfile(&self, home: Option<&Path>) -> Option<PathBuf> {
        match self.get("passfile") {
            Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
            _ => home.map(|h| h.join(".pgpass")),
        }
    }

    /// Sets the password from the content of a password file (`~/.pgpass` format) when
    /// none was given, as libpq does: the first line matching the first host, the port,
    /// the database and the user wins. A host that is empty or the default socket
    /// directory matches `localhost`; a physical replication connection matches the
    /// database `replication`.
    pub fn with_pgpass(&self, pgpass: &str) -> ConnInfo {
        let mut out = self.clone();
        if out.get("password").is_some_and(|p| !p.is_empty()) {
            return out;
        }
        let Some(user) = out.get("user").filter(|u| !u.is_empty()) else {
            return out;
        };
        let hosts = split_list(out.get("host").unwrap_or(""));
        let addrs = split_list(out.get("hostaddr").unwrap_or(""));
        let mut host = hosts.first().copied().unwrap_or("").to_owned();
        if host.is_empty() {
            host = addrs.first().copied().unwrap_or("").to_owned();
        }
        if host.is_empty() || host == DEFAULT_SOCKET_DIR {
            host = "localhost".to_owned();
        }
        let port = split_list(out.get("port").unwrap_or(""))
            .first()
            .copied()
            .filter(|p| !p.is_empty())
            .map_or_else(|| DEFAULT_PORT.to_string(), str::to_owned);
        let dbname = if replication_mode(out.get("replication")) == Some(Replication::Physical) {
            "replication".to_owned()
        } else {
            out.get("dbname")
                .filter(|d| !d.is_empty())
                .unwrap_or(user)
                .to_owned()
        };
        if let Some(pw) = pgpass_lookup(pgpass, &host, &port, &dbname, user) {
            out.params.retain(|(k, _)| *k != "password");
            out.params.push(("password", pw));
        }
        out
    }

    /// A short description of where this connects, for messages: `host=… port=…
    /// user=… dbname=…` (no password).
    pub fn target(&self) -> String {
        let mut parts = Vec::new();
        for key in ["host", "hostaddr", "port", "user", "dbname"] {
            if let Some(v) = self.get(key) {
                parts.push(format!("{key}={}", quote(v)));
            }
        }
        if parts.is_empty() {
            "the default server".to_owned()
        } else {
            parts.join(" ")
        }
    }

    /// The configuration of tokio-postgres for this connection string.
    ///
    /// Built-in defaults: host [`DEFAULT_SOCKET_DIR`], port [`DEFAULT_PORT`], dbname the
    /// user. The user must be known (written, or from `PGUSER` through
    /// [`ConnInfo::with_env`]).
    ///
    /// On unix sockets libpq never uses TLS, so every `sslmode` means no TLS there; over
    /// TCP `prefer`, `require`, `verify-ca` and `verify-full` ask the server for TLS (the
    /// certificate rules are in the `tls` module: `sslrootcert`, `sslcert`, `sslkey`).
    /// Options that only matter for GSS (`krbsrvname`, …), `sslcrl` and `passfile` are
    /// accepted and not used.
    ///
    /// Kept crate-private so no tokio-postgres type shows in the public API.
    #[cfg(feature = "postgres")]
    pub(crate) fn to_tokio_config(&self) -> Result<tokio_postgres::Config, PgError> {
        use tokio_postgres::config::{
            ChannelBinding, LoadBalanceHosts, SslMode, SslNegotiation, TargetSessionAttrs,
        };
        let invalid = |key: &str, value: &str, reason: &str| PgError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let unsupported = |key: &str, value: &str, reason: &str| PgError::Unsupported {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let mut cfg = tokio_postgres::Config::new();

        if let Some(s) = self.get("service") {
            return Err(unsupported(
                "service",
                s,
                "connection service files (pg_service.conf) are not read; write the parameters in the conninfo",
            ));
        }

        // Hosts, addresses and ports.
        let hosts = split_list(self.get("host").unwrap_or(""));
        let addrs = split_list(self.get("hostaddr").unwrap_or(""));
        let ports = split_list(self.get("port").unwrap_or(""));
        let n = hosts.len().max(addrs.len()).max(1);
        if self.get("hostaddr").is_some_and(|a| !a.is_empty())
            && self.get("host").is_some_and(|h| !h.is_empty())
            && hosts.len() != addrs.len()
        {
            return Err(invalid(
                "hostaddr",
                self.get("hostaddr").unwrap_or(""),
                &format!(
                    "could not match {} host names to {} hostaddr values",
                    hosts.len(),
                    addrs.len()
                ),
            ));
        }
        if ports.len() > 1 && ports.len() != n {
            return Err(invalid(
                "port",
                self.get("port").unwrap_or(""),
                &format!("could not match {} port numbers to {n} hosts", ports.len()),
            ));
        }
        let mut all_unix = true;
        for i in 0..n {
            let host = hosts.get(i).copied().unwrap_or("");
            let addr = addrs.get(i).copied().unwrap_or("");
            if !addr.is_empty() {
                let ip: std::net::IpAddr = addr
                    .parse()
                    .map_err(|_| invalid("hostaddr", addr, "not a numeric IP address"))?;
                cfg.hostaddr(ip);
                cfg.host(if host.is_empty() { addr } else { host });
                all_unix = false;
            } else if host.is_empty() {
                cfg.host_path(DEFAULT_SOCKET_DIR);
            } else if host.starts_with('/') {
                cfg.host_path(host);
            } else {
                cfg.host(host);
                all_unix = false;
            }
        }
        for p in &ports {
            let port = if p.is_empty() {
                DEFAULT_PORT
            } else {
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| invalid("port", p, "not a port number"))?
            };
            cfg.port(port);
        }

        // Identity.
        let user = self.get("user").filter(|u| !u.is_empty()).ok_or_else(|| {
            invalid(
                "user",
                "",
                "no user name: write user= in the conninfo or set PGUSER",
            )
        })?;
        cfg.user(user);
        cfg.dbname(self.get("dbname").filter(|d| !d.is_empty()).unwrap_or(user));
        if let Some(pw) = self.get("password").filter(|p| !p.is_empty()) {
            cfg.password(pw);
        }
        if let Some(o) = self.get("options").filter(|o| !o.is_empty()) {
            cfg.options(o);
        }
        if let Some(a) = self
            .get("application_name")
            .or_else(|| self.get("fallback_application_name"))
            .filter(|a| !a.is_empty())
        {
            cfg.application_name(a);
        }

        // Timeouts and keepalives.
        if let Some(t) = self.get("connect_timeout").filter(|t| !t.trim().is_empty()) {
            let secs: i64 = t
                .trim()
                .parse()
                .map_err(|_| invalid("connect_timeout", t, "not an integer"))?;
            if secs > 0 {
                // libpq: a timeout of 1 s would be too short to be useful.
                cfg.connect_timeout(Duration::from_secs(secs.max(2).unsigned_abs()));
            }
        }
        let int = |key: &str| -> Result<Option<u32>, PgError> {
            match self.get(key).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|_| invalid(key, v, "not a non-negative integer")),
            }
        };
        if let Some(k) = int("keepalives")? {
            cfg.keepalives(k != 0);
        }
        if let Some(s) = int("keepalives_idle")? {
            cfg.keepalives_idle(Duration::from_secs(s.into()));
        }
        if let Some(s) = int("keepalives_interval")? {
            cfg.keepalives_interval(Duration::from_secs(s.into()));
        }
        if let Some(c) = int("keepalives_count")? {
            cfg.keepalives_retries(c);
        }
        if let Some(ms) = int("tcp_user_timeout")? {
            cfg.tcp_user_timeout(Duration::from_millis(ms.into()));
        }

        // Modes.
        let sslmode = self.get("sslmode").unwrap_or("prefer");
        let mode = match sslmode {
            "disable" | "allow" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" | "verify-ca" | "verify-full" => SslMode::Require,
            other => {
                return Err(invalid(
                    "sslmode",
                    other,
                    "expected disable, allow, prefer, require, verify-ca or verify-full",
                ));
            }
        };
        // libpq never uses TLS on unix sockets.
        let mode = if all_unix { SslMode::Disable } else { mode };
        cfg.ssl_mode(mode);
        if let Some(v) = self.get("sslnegotiation") {
            cfg.ssl_negotiation(match v {
                "postgres" => SslNegotiation::Postgres,
                "direct" => SslNegotiation::Direct,
                other => {
                    return Err(invalid(
                        "sslnegotiation",
                        other,
                        "expected postgres or direct",
                    ));
                }
            });
        }
        if let Some(v) = self.get("channel_binding") {
            cfg.channel_binding(match v {
                "disable" => ChannelBinding::Disable,
                "prefer" => ChannelBinding::Prefer,
                "require" => ChannelBinding::Require,
                other => {
                    return Err(invalid(
                        "channel_binding",
                        other,
                        "expected disable, prefer or require",
                    ));
                }
            });
        }
        if let Some(v) = self.get("target_session_attrs") {
            cfg.target_session_attrs(match v {
                "any" => TargetSessionAttrs::Any,
                "read-write" => TargetSessionAttrs::ReadWrite,
                "read-only" => TargetSessionAttrs::ReadOnly,
                "primary" | "standby" | "prefer-standby" => {
                    return Err(unsupported(
                        "target_session_attrs",
                        v,
                        "only any, read-write and read-only are implemented",
                    ));
                }
                other => {
                    return Err(invalid(
                        "target_session_attrs",
                        other,
                        "expected any, read-write, read-only, primary, standby or prefer-standby",
                    ));
                }
            });
        }
        if let Some(v) = self.get("load_balance_hosts") {
            cfg.load_balance_hosts(match v {
                "disable" => LoadBalanceHosts::Disable,
                "random" => LoadBalanceHosts::Random,
                other => {
                    return Err(invalid(
                        "load_balance_hosts",
                        other,
                        "expected disable or random",
                    ));
                }
            });
        }
        match replication_mode(self.get("replication")) {
            None | Some(Replication::Off) => {}
            Some(_) => {
                return Err(unsupported(
                    "replication",
                    self.get("replication").unwrap_or(""),
                    "the SQL client does not open replication connections",
                ));
            }
        }
        if let Some(v) = self.get("replication")
            && replication_mode(Some(v)).is_none()
        {
            return Err(invalid(
                "replication",
                v,
                "expected a boolean or \"database\"",
            ));
        }
        if let Some(v) = self.get("gssencmode") {
            match v {
                "disable" | "prefer" => {}
                "require" => {
                    return Err(unsupported(
                        "gssencmode",
                        v,
                        "GSSAPI encryption is not implemented",
                    ));
                }
                other => {
                    return Err(invalid(
                        "gssencmode",
                        other,
                        "expected disable, prefer or require",
                    ));
                }
            }
        }
        for key in ["requirepeer", "require_auth"] {
            if let Some(v) = self.get(key).filter(|v| !v.is_empty()) {
                return Err(unsupported(key, v, "not implemented"));
            }
        }
        if let Some(v) = self.get("client_encoding")
            && !v.eq_ignore_ascii_case("utf8")
            && !v.eq_ignore_ascii_case("utf-8")
            && !v.eq_ignore_ascii_case("auto")
        {
            return Err(unsupported(
                "client_encoding",
                v,
                "the client always speaks UTF8",
            ));
        }
        Ok(cfg)
    }
}

/// libpq's `replication` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replication {
    Off,
    Physical,
    Logical,
}

fn replication_mode(value: Option<&str>) -> Option<Replication> {
    match value?.to_ascii_lowercase().as_str() {
        "database" => Some(Replication::Logical),
        "1" | "true" | "on" | "yes" | "t" | "y" => Some(Replication::Physical),
        "0" | "false" | "off" | "no" | "f" | "n" => Some(Replication::Off),
        _ => None,
    }
}

fn split_list(s: &str) -> Vec<&str> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split(',').map(str::trim).collect()
    }
}

fn parse_key_value(text: &str) -> Result<ConnInfo, PgError> {
    let mut ci = ConnInfo::default();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let n = chars.len();
    let blank = |c: char| c.is_ascii_whitespace();
    loop {
        while i < n && blank(chars[i]) {
            i += 1;
        }
        if i >= n {
            break;
        }
        let start = i;
        while i < n && chars[i] != '=' && !blank(chars[i]) {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        while i < n && blank(chars[i]) {
            i += 1;
        }
        if i >= n || chars[i] != '=' {
            return Err(syntax(format!(
                "missing \"=\" after \"{key}\" in connection info string"
            )));
        }
        i += 1;
        while i < n && blank(chars[i]) {
            i += 1;
        }
        let mut value = String::new();
        if i < n && chars[i] == '\'' {
            i += 1;
            loop {
                if i >= n {
                    return Err(syntax(format!(
                        "unterminated quoted string in connection info string (value of \"{key}\")"
                    )));
                }
                match chars[i] {
                    '\\' => {
                        i += 1;
                        if i < n {
                            value.push(chars[i]);
                            i += 1;
                        }
                    }
                    '\'' => {
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < n && !blank(chars[i]) {
                if chars[i] == '\\' {
                    i += 1;
                    if i < n {
                        value.push(chars[i]);
                        i += 1;
                    }
                } else {
                    value.push(chars[i]);
                    i += 1;
                }
            }
        }
        ci.set(&key, value)?;
    }
    Ok(ci)
}

fn percent_decode(s: &str, what: &str) -> Result<String, PgError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    syntax(format!("invalid percent-encoded token in the URI {what}"))
                })?;
            if hex == 0 {
                return Err(syntax(format!(
                    "forbidden value %00 in percent-encoded value of the URI {what}"
                )));
            }
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| syntax(format!("the URI {what} is not valid UTF-8")))
}

fn parse_uri(text: &str) -> Result<ConnInfo, PgError> {
    let rest = text
        .strip_prefix("postgresql://")
        .or_else(|| text.strip_prefix("postgres://"))
        .unwrap_or(text);
    let mut ci = ConnInfo::default();
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match main.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (main, None),
    };
    let hostspec = match authority.split_once('@') {
        Some((userinfo, hosts)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                ci.set("user", percent_decode(user, "user name")?)?;
            }
            if let Some(p) = password {
                ci.set("password", percent_decode(p, "password")?)?;
            }
            hosts
        }
        None => authority,
    };
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    if !hostspec.is_empty() {
        for part in hostspec.split(',') {
            let (host, port) = if let Some(v6) = part.strip_prefix('[') {
                let (h, after) = v6.split_once(']').ok_or_else(|| {
                    syntax(format!(
                        "end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"{part}\""
                    ))
                })?;
                let port = match after {
                    "" => None,
                    p => Some(p.strip_prefix(':').ok_or_else(|| {
                        syntax(format!(
                            "unexpected character after IPv6 host address in URI: \"{part}\""
                        ))
                    })?),
                };
                (h.to_owned(), port)
            } else {
                match part.split_once(':') {
                    Some((h, p)) => (percent_decode(h, "host")?, Some(p)),
                    None => (percent_decode(part, "host")?, None),
                }
            };
            hosts.push(host);
            ports.push(port.map(|p| percent_decode(p, "port")).transpose()?);
        }
    }
    if hosts.iter().any(|h| !h.is_empty()) {
        ci.set("host", hosts.join(","))?;
    }
    if ports.iter().any(Option::is_some) {
        ci.set(
            "port",
            ports
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect::<Vec<_>>()
                .join(","),
        )?;
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        ci.set("dbname", percent_decode(db, "database name")?)?;
    }
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                syntax(format!(
                    "missing key/value separator \"=\" in URI query parameter: \"{pair}\""
                ))
            })?;
            let k = percent_decode(k, "query parameter")?;
            let v = percent_decode(v, "query parameter")?;
            if k == "ssl" && v == "true" {
                ci.set("sslmode", "require")?;
            } else {
                keyword(&k).map_err(|_| syntax(format!("invalid URI query parameter: \"{k}\"")))?;
                ci.set(&k, v)?;
            }
        }
    }
    Ok(ci)
}

/// Matches one field of a password-file line at the start of `line`: returns the rest
/// after the field's `:` on a match. `*` matches anything; `\` escapes the next character.
fn pgpass_field<'a>(line: &'a str, value: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut want = value.chars();
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if c == ':' && !escaped {
            return if want.next().is_none() {
                Some(&line[i + 1..])
            } else {
                None
            };
        }
        escaped = false;
        if want.next() != Some(c) {
            return None;
        }
    }
    None
}

/// The password libpq would take from the password file `content` for this host, port,
/// database and user: the first matching line, `*` a wildcard field, `\:` and `\\`
/// escapes, lines starting with `#` ignored.
///
/// ```
/// use barman_core::postgres::pgpass_lookup;
///
/// let file = "# comment\npg:5432:*:barman:s\\:cret\n*:*:*:*:fallback\n";
/// assert_eq!(pgpass_lookup(file, "pg", "5432", "postgres", "barman").as_deref(), Some("s:cret"));
/// assert_eq!(pgpass_lookup(file, "other", "5432", "postgres", "x").as_deref(), Some("fallback"));
/// ```
pub fn pgpass_lookup(
    content: &str,
    host: &str,
    port: &str,
    dbname: &str,
    user: &str,
) -> Option<String> {
    for line in content.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(rest) = pgpass_field(line, host)
            .and_then(|r| pgpass_field(r, port))
            .and_then(|r| pgpass_field(r, dbname))
            .and_then(|r| pgpass_field(r, user))
        else {
            continue;
        };
        let mut pw = String::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            if c == ':' {
                break;
            }
            if c == '\\'
                && let Some(next) = chars.next()
            {
                pw.push(next);
                continue;
            }
            pw.push(c);
        }
        return Some(pw);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_forms() {
        let ci = ConnInfo::parse("  host = pg\tport=5432 dbname='my db' user=a\\ b  ").unwrap();
        assert_eq!(ci.get("host"), Some("pg"));
        assert_eq!(ci.get("dbname"), Some("my db"));
        assert_eq!(ci.get("user"), Some("a b"));
        let ci = ConnInfo::parse("password='it\\'s \\\\ ok' host=").unwrap();
        assert_eq!(ci.get("password"), Some("it's \\ ok"));
        assert_eq!(ci.get("host"), Some(""));
        assert_eq!(ConnInfo::parse("").unwrap(), ConnInfo::default());
        assert_eq!(
            ConnInfo::parse("host=a host=b").unwrap().get("host"),
            Some("b")
        );
    }

    #[test]
    fn key_value_errors() {
        let e = ConnInfo::parse("host").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid connection string: missing \"=\" after \"host\" in connection info string"
        );
        let e = ConnInfo::parse("password='abc").unwrap_err().to_string();
        assert!(e.contains("unterminated quoted string"), "{e}");
        assert!(!e.contains("abc"), "{e}");
        let e = ConnInfo::parse("hots=pg").unwrap_err().to_string();
        assert_eq!(e, "invalid connection option \"hots\"");
    }

    #[test]
    fn uris() {
        let ci = ConnInfo::parse(
            "postgresql://u%40x:p%3Aw@h1:5433,[::1]:5434/db%20x?application_name=b&sslmode=disable",
        )
        .unwrap();
        assert_eq!(ci.get("user"), Some("u@x"));
        assert_eq!(ci.get("password"), Some("p:w"));
        assert_eq!(ci.get("host"), Some("h1,::1"));
        assert_eq!(ci.get("port"), Some("5433,5434"));
        assert_eq!(ci.get("dbname"), Some("db x"));
        assert_eq!(ci.get("application_name"), Some("b"));
        let ci = ConnInfo::parse("postgres:///postgres?host=/tmp/x&port=5555").unwrap();
        assert_eq!(ci.get("host"), Some("/tmp/x"));
        assert_eq!(ci.get("port"), Some("5555"));
        let ci = ConnInfo::parse("postgresql://%2Ftmp%2Fsock/db").unwrap();
        assert_eq!(ci.get("host"), Some("/tmp/sock"));
        let ci = ConnInfo::parse("postgresql://").unwrap();
        assert_eq!(ci, ConnInfo::default());
        let ci = ConnInfo::parse("postgresql://h?ssl=true").unwrap();
        assert_eq!(ci.get("sslmode"), Some("require"));
        assert!(ConnInfo::parse("postgresql://h?bogus=1").is_err());
        assert!(ConnInfo::parse("postgresql://h?novalue").is_err());
        assert!(ConnInfo::parse("postgresql://h%zz").is_err());
        assert!(ConnInfo::parse("postgresql://h%00").is_err());
        assert!(ConnInfo::parse("postgresql://[::1").is_err());
    }

    #[test]
    fn display_masks_password_encode_keeps_it() {
        let ci = ConnInfo::parse("user=a password=secret").unwrap();
        assert_eq!(ci.to_string(), "user=a password=********");
        assert!(!format!("{ci:?}").contains("secret"));
        assert_eq!(ci.encode(), "user=a password=secret");
        assert_eq!(ConnInfo::parse(&ci.encode()).unwrap(), ci);
    }

    #[test]
    fn env_defaults() {
        let env: HashMap<String, String> = [
            ("PGHOST", "/sock"),
            ("PGPORT", "6000"),
            ("PGUSER", "envuser"),
            ("PGAPPNAME", "app"),
            ("PGCONNECT_TIMEOUT", "5"),
            ("HOME", "/home/x"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        let ci = ConnInfo::parse("user=me").unwrap().with_env(&env);
        assert_eq!(ci.get("user"), Some("me"));
        assert_eq!(ci.get("host"), Some("/sock"));
        assert_eq!(ci.get("port"), Some("6000"));
        assert_eq!(ci.get("application_name"), Some("app"));
        assert_eq!(ci.get("connect_timeout"), Some("5"));
        assert_eq!(ci.get("dbname"), None);
        assert_eq!(
            ci.passfile(Some(Path::new("/home/x"))),
            Some(PathBuf::from("/home/x/.pgpass"))
        );
        let ci = ConnInfo::parse("passfile=/p").unwrap();
        assert_eq!(ci.passfile(None), Some(PathBuf::from("/p")));
    }

    #[test]
    fn pgpass_semantics() {
        let file = "h:5432:db:u:one\n\
                    localhost:5432:*:u:local\n\
                    /tmp/s:5432:*:u:sock\n\
                    h\\:x:*:*:u:esc\\:aped\\\\\n\
                    *:*:replication:u:repl\n\
                    *:*:*:*:any:trailing\n";
        let ci = |s: &str| ConnInfo::parse(s).unwrap().with_pgpass(file);
        assert_eq!(ci("host=h dbname=db user=u").get("password"), Some("one"));
        assert_eq!(
            ci("host=h dbname=other user=u").get("password"),
            Some("any")
        );
        assert_eq!(ci("user=u").get("password"), Some("local"));
        assert_eq!(
            ci("host=/var/run/postgresql user=u").get("password"),
            Some("local")
        );
        assert_eq!(ci("host=/tmp/s user=u").get("password"), Some("sock"));
        assert_eq!(ci("host=h:x user=u").get("password"), Some("esc:aped\\"));
        assert_eq!(
            ci("host=z user=u replication=true dbname=postgres").get("password"),
            Some("repl")
        );
        assert_eq!(
            ci("host=h user=u password=given").get("password"),
            Some("given")
        );
        assert_eq!(ci("host=h dbname=db").get("password"), None);
        assert_eq!(
            ci("host=h,other port=5432,1 dbname=db user=u").get("password"),
            Some("one")
        );
        assert_eq!(pgpass_lookup("a:b", "a", "b", "c", "d"), None);
        assert_eq!(pgpass_lookup("#*:*:*:*:x", "a", "b", "c", "d"), None);
    }

    #[test]
    fn tokio_config() {
        use tokio_postgres::config::{Host, SslMode};
        let cfg = ConnInfo::parse("host=/tmp/s port=5433 user=u")
            .unwrap()
            .to_tokio_config()
            .unwrap();
        assert_eq!(cfg.get_hosts(), &[Host::Unix(PathBuf::from("/tmp/s"))]);
        assert_eq!(cfg.get_ports(), &[5433]);
        assert_eq!(cfg.get_dbname(), Some("u"));
        let cfg = ConnInfo::parse("user=u sslmode=verify-full connect_timeout=1")
            .unwrap()
            .to_tokio_config()
            .unwrap();
        assert_eq!(
            cfg.get_hosts(),
            &[Host::Unix(PathBuf::from(DEFAULT_SOCKET_DIR))]
        );
        assert_eq!(cfg.get_ssl_mode(), SslMode::Disable);
        assert_eq!(cfg.get_connect_timeout(), Some(&Duration::from_secs(2)));
        let cfg = ConnInfo::parse("host=a,b hostaddr=10.0.0.1,10.0.0.2 user=u")
            .unwrap()
            .to_tokio_config()
            .unwrap();
        assert_eq!(cfg.get_hostaddrs().len(), 2);

        let err = |s: &str| {
            ConnInfo::parse(s)
                .unwrap()
                .to_tokio_config()
                .unwrap_err()
                .to_string()
        };
        let mode = |s: &str| {
            ConnInfo::parse(s)
                .unwrap()
                .to_tokio_config()
                .unwrap()
                .get_ssl_mode()
        };
        assert_eq!(mode("host=pg user=u sslmode=verify-full"), SslMode::Require);
        assert_eq!(mode("host=pg user=u sslmode=require"), SslMode::Require);
        assert_eq!(mode("host=pg user=u"), SslMode::Prefer);
        assert_eq!(mode("host=pg user=u sslmode=allow"), SslMode::Disable);
        assert!(err("host=pg user=u sslmode=bogus").contains("sslmode"));
        assert!(err("host=pg").contains("user"));
        assert!(err("host=pg user=u port=99999").contains("port=\"99999\""));
        assert!(err("host=pg user=u service=x").contains("service"));
        assert!(err("host=pg user=u replication=true").contains("replication"));
        assert!(
            err("host=pg user=u target_session_attrs=standby").contains("target_session_attrs")
        );
        assert!(err("host=pg user=u connect_timeout=x").contains("connect_timeout"));
        assert!(err("host=a,b port=1,2,3 user=u").contains("port"));
        assert!(err("host=a hostaddr=nope user=u").contains("hostaddr"));
        let e = err("host=pg user=u password=hunter2 sslmode=bad");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn complete_applies_the_environment_then_the_password_file() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(".pgpass"), "pg:5433:*:barman:from-file\n").unwrap();
        let env: HashMap<String, String> = [("PGPORT", "5433"), ("PGUSER", "barman")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        let ci = ConnInfo::parse("host=pg dbname=postgres").unwrap();
        let done = ci.complete(&env, Some(home.path()));
        assert_eq!(done.get("port"), Some("5433"));
        assert_eq!(done.get("password"), Some("from-file"));
        // A written password wins; no home, no file: nothing more.
        let given = ConnInfo::parse("host=pg password=given").unwrap();
        assert_eq!(
            given.complete(&env, Some(home.path())).get("password"),
            Some("given")
        );
        assert_eq!(ci.complete(&env, None).get("password"), None);
    }
}
