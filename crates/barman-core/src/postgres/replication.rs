//! A physical replication connection of our own (tokio-postgres cannot speak the
//! replication protocol): the frontend/backend messages come from `postgres-protocol`,
//! the replication messages inside `CopyData` from [`barman_wal::replication`].
//!
//! The connection follows the same conninfo rules as [`super::PgServer::connect`]
//! (hosts, ports, user, password and `.pgpass`, `application_name`, `connect_timeout`,
//! `sslmode` and the certificate files), adding `replication=true` to the startup
//! packet. It runs the replication commands (`IDENTIFY_SYSTEM`, `TIMELINE_HISTORY`,
//! `CREATE_REPLICATION_SLOT ... PHYSICAL`, `DROP_REPLICATION_SLOT`,
//! `READ_REPLICATION_SLOT` on PostgreSQL 15 and later) and streams WAL
//! ([`ReplicationConnection::start_replication`] gives a [`WalStream`]).
//!
//! Reads are cancel-safe: [`WalStream::next`] can sit in a `tokio::select!` beside a
//! status timer, a partially received message stays in the connection's buffer.
//!
//! # Examples
//!
//! ```no_run
//! use barman_core::postgres::ConnInfo;
//! use barman_core::postgres::replication::{ReplicationConnection, StreamEvent};
//!
//! # #[allow(dead_code)]
//! # async fn run() -> Result<(), barman_core::postgres::PgError> {
//! let ci = ConnInfo::parse("host=/var/run/postgresql user=barman")?;
//! let mut conn = ReplicationConnection::connect(&ci, "barman_receive_wal").await?;
//! let system = conn.identify_system().await?;
//! conn.create_physical_slot("barman", true).await?;
//! let start = system.xlogpos.align_down(16 << 20);
//! let mut stream = conn.start_replication(Some("barman"), start, system.timeline).await?;
//! while let StreamEvent::Data { start, data, .. } = stream.next().await? {
//!     println!("{} bytes at {start}", data.len());
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use barman_wal::replication::{ServerMessage, StandbyStatus};
use barman_wal::{Lsn, TimelineId, WalSegSize};
use bytes::{Buf, Bytes, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{self, ChannelBinding, ScramSha256};
use postgres_protocol::message::backend::{self, Message};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_postgres::config::{Host, SslMode, SslNegotiation};

use super::conninfo::ConnInfo;
use super::error::{PgError, ServerError};

/// `CopyBothResponse`, which `postgres_protocol`'s parser does not know.
const COPY_BOTH_RESPONSE_TAG: u8 = b'W';

/// What `IDENTIFY_SYSTEM` says.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SystemIdentity {
    /// The cluster's system identifier.
    pub system_id: u64,
    /// The current timeline.
    pub timeline: TimelineId,
    /// The current WAL flush position.
    pub xlogpos: Lsn,
}

/// What `READ_REPLICATION_SLOT` says of a physical slot.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlotPosition {
    /// Where the slot keeps WAL from, if it does.
    pub restart_lsn: Option<Lsn>,
    /// The timeline of `restart_lsn`.
    pub restart_tli: Option<TimelineId>,
}

/// One event of a [`WalStream`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// WAL bytes from `start` on.
    Data {
        /// Where they start.
        start: Lsn,
        /// The WAL.
        data: Bytes,
        /// The end of WAL on the server.
        wal_end: Lsn,
    },
    /// A keepalive; answer with [`WalStream::send_status`] when `reply_requested`.
    Keepalive {
        /// The end of WAL on the server.
        wal_end: Lsn,
        /// Whether the server wants a status update now.
        reply_requested: bool,
    },
    /// The server ended the stream: the end of the timeline being streamed (after a
    /// promotion), with the next timeline and where it starts, or a shutdown.
    End {
        /// The next timeline and its start, when the timeline ended.
        next: Option<(TimelineId, Lsn)>,
    },
}

/// A replication connection (`replication=true`), idle between commands.
pub struct ReplicationConnection {
    io: Transport,
    read: BytesMut,
    write: BytesMut,
    target: String,
    parameters: HashMap<String, String>,
}

impl fmt::Debug for ReplicationConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicationConnection")
            .field("target", &self.target)
            .field("server_version", &self.parameters.get("server_version"))
            .finish_non_exhaustive()
    }
}

enum Transport {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_flush(cx),
            Transport::Unix(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A message read off the connection: a parsed backend message, or a
/// `CopyBothResponse`.
enum Incoming {
    Message(Message),
    CopyBoth,
}

/// Rows of a simple query, each column as its text (or `None` for NULL).
type Rows = Vec<Vec<Option<Bytes>>>;

fn unsupported(key: &str, value: &str, reason: &str) -> PgError {
    PgError::Unsupported {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

impl ReplicationConnection {
    /// Opens a physical replication connection to the server of `conninfo`, trying its
    /// hosts in order. `application_name` (what the server shows in
    /// `pg_stat_replication`, and what `synchronous_standby_names` names) is used unless
    /// the conninfo sets one.
    ///
    /// # Errors
    ///
    /// [`PgError`] for a conninfo that cannot be used (or that asks for what this client
    /// does not do: `sslnegotiation=direct`, `channel_binding=require`,
    /// `target_session_attrs` other than `any`), or a connection that fails: the message
    /// names the host, port and user, and the server's own message.
    pub async fn connect(
        conninfo: &ConnInfo,
        application_name: &str,
    ) -> Result<ReplicationConnection, PgError> {
        let mut ci = conninfo.clone();
        if ci.get("application_name").is_none() && !application_name.is_empty() {
            ci.set("application_name", application_name)?;
        }
        let cfg = ci.to_tokio_config()?;
        if cfg.get_ssl_negotiation() == SslNegotiation::Direct {
            return Err(unsupported(
                "sslnegotiation",
                "direct",
                "not for replication connections yet: use postgres",
            ));
        }
        if let Some(v) = ci.get("channel_binding").filter(|v| *v == "require") {
            return Err(unsupported(
                "channel_binding",
                v,
                "SCRAM channel binding is not offered by the replication client",
            ));
        }
        if let Some(v) = ci
            .get("target_session_attrs")
            .filter(|v| !v.is_empty() && *v != "any")
        {
            return Err(unsupported(
                "target_session_attrs",
                v,
                "a replication connection streams from the server it reaches; name that server",
            ));
        }
        let tls = match cfg.get_ssl_mode() {
            SslMode::Disable => None,
            _ => super::tls::client_config(&ci)?.map(Arc::new),
        };
        let target = conninfo.target();
        let hosts = cfg.get_hosts();
        let ports = cfg.get_ports();
        let addrs = cfg.get_hostaddrs();
        let mut last = None;
        for (i, host) in hosts.iter().enumerate() {
            let port = ports
                .get(i)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(5432);
            let addr = (addrs.len() == hosts.len())
                .then(|| addrs.get(i).copied())
                .flatten();
            let attempt = async {
                let io = open(host, addr, port, &cfg, tls.clone()).await?;
                let mut conn = ReplicationConnection {
                    io,
                    read: BytesMut::with_capacity(1 << 16),
                    write: BytesMut::new(),
                    target: target.clone(),
                    parameters: HashMap::new(),
                };
                conn.startup(&cfg).await?;
                Ok::<_, ConnectFailure>(conn)
            };
            let result = match cfg.get_connect_timeout() {
                Some(t) => tokio::time::timeout(*t, attempt).await.unwrap_or_else(|_| {
                    Err(ConnectFailure::Io(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer in {} s (connect_timeout)", t.as_secs()),
                    )))
                }),
                None => attempt.await,
            };
            match result {
                Ok(conn) => return Ok(conn),
                Err(e) => last = Some(e),
            }
        }
        let failure = last.unwrap_or_else(|| {
            ConnectFailure::Io(io::Error::new(io::ErrorKind::InvalidInput, "no host"))
        });
        Err(PgError::Connect {
            target,
            message: failure.to_string(),
            source: failure.into_source(),
        })
    }

    /// The server's `server_version_num` as it reported it at startup (`server_version`
    /// parsed: 150004 for 15.4), 0 when it did not say.
    pub fn server_version_num(&self) -> u32 {
        let Some(v) = self.parameters.get("server_version") else {
            return 0;
        };
        let mut parts = v
            .split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let major = parts.next().unwrap_or(0);
        let minor = parts.next().unwrap_or(0);
        if major >= 10 {
            major * 10000 + minor
        } else {
            major * 10000 + minor * 100 + parts.next().unwrap_or(0)
        }
    }

    /// The server's `server_version` as it reported it at startup (`15.4`, or
    /// `17.2 (Debian 17.2-1)`).
    pub fn server_version(&self) -> Option<&str> {
        self.parameters.get("server_version").map(String::as_str)
    }

    /// The connection's target (host, port, user), for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    async fn startup(&mut self, cfg: &tokio_postgres::Config) -> Result<(), ConnectFailure> {
        let user = cfg.get_user().unwrap_or_default().to_owned();
        let mut params: Vec<(&str, &str)> = vec![
            ("user", &user),
            ("replication", "true"),
            ("client_encoding", "UTF8"),
        ];
        if let Some(a) = cfg.get_application_name() {
            params.push(("application_name", a));
        }
        if let Some(o) = cfg.get_options() {
            params.push(("options", o));
        }
        frontend::startup_message(params.iter().copied(), &mut self.write)
            .map_err(ConnectFailure::Io)?;
        self.flush().await.map_err(ConnectFailure::Io)?;
        let password = cfg.get_password().map(<[u8]>::to_vec);
        let mut scram: Option<ScramSha256> = None;
        let mut scram_verified = false;
        loop {
            let msg = match self.read_incoming().await.map_err(ConnectFailure::Io)? {
                Incoming::Message(m) => m,
                Incoming::CopyBoth => {
                    return Err(ConnectFailure::Protocol("CopyBothResponse during startup"));
                }
            };
            match msg {
                Message::AuthenticationOk => {
                    // After a SASL exchange, only once the server proved it knows the
                    // password (AuthenticationSaslFinal checked).
                    if scram.is_some() && !scram_verified {
                        return Err(ConnectFailure::Protocol(
                            "the server ended SCRAM authentication without proving it knows the password",
                        ));
                    }
                }
                Message::AuthenticationCleartextPassword => {
                    let pw = password.as_deref().ok_or(ConnectFailure::NoPassword)?;
                    frontend::password_message(pw, &mut self.write).map_err(ConnectFailure::Io)?;
                    self.flush().await.map_err(ConnectFailure::Io)?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let pw = password.as_deref().ok_or(ConnectFailure::NoPassword)?;
                    let hash = postgres_protocol::authentication::md5_hash(
                        user.as_bytes(),
                        pw,
                        body.salt(),
                    );
                    frontend::password_message(hash.as_bytes(), &mut self.write)
                        .map_err(ConnectFailure::Io)?;
                    self.flush().await.map_err(ConnectFailure::Io)?;
                }
                Message::AuthenticationSasl(body) => {
                    let pw = password.as_deref().ok_or(ConnectFailure::NoPassword)?;
                    let mut offered = false;
                    let mut mechanisms = body.mechanisms();
                    while let Some(m) = mechanisms.next().map_err(ConnectFailure::Io)? {
                        offered |= m == sasl::SCRAM_SHA_256;
                    }
                    if !offered {
                        return Err(ConnectFailure::Protocol(
                            "the server offers no SASL mechanism this client knows (SCRAM-SHA-256)",
                        ));
                    }
                    let s = ScramSha256::new(pw, ChannelBinding::unrequested());
                    frontend::sasl_initial_response(
                        sasl::SCRAM_SHA_256,
                        s.message(),
                        &mut self.write,
                    )
                    .map_err(ConnectFailure::Io)?;
                    self.flush().await.map_err(ConnectFailure::Io)?;
                    scram = Some(s);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let s = scram.as_mut().ok_or(ConnectFailure::Protocol(
                        "SASL continue without a SASL start",
                    ))?;
                    s.update(body.data()).map_err(ConnectFailure::Io)?;
                    frontend::sasl_response(s.message(), &mut self.write)
                        .map_err(ConnectFailure::Io)?;
                    self.flush().await.map_err(ConnectFailure::Io)?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let s = scram
                        .as_mut()
                        .ok_or(ConnectFailure::Protocol("SASL final without a SASL start"))?;
                    s.finish(body.data()).map_err(ConnectFailure::Io)?;
                    scram_verified = true;
                }
                Message::ParameterStatus(body) => {
                    let (Ok(name), Ok(value)) = (body.name(), body.value()) else {
                        continue;
                    };
                    self.parameters.insert(name.to_owned(), value.to_owned());
                }
                Message::BackendKeyData(_) | Message::NoticeResponse(_) => {}
                Message::ReadyForQuery(_) => return Ok(()),
                Message::ErrorResponse(body) => {
                    return Err(ConnectFailure::Server(ServerError::from_fields(
                        body.fields(),
                    )));
                }
                _ => {
                    return Err(ConnectFailure::Protocol(
                        "unexpected message during authentication",
                    ));
                }
            }
        }
    }

    /// Sends what is queued. Cancel-safe: bytes leave the queue only once written, so a
    /// cancelled flush is finished by the next one.
    async fn flush(&mut self) -> io::Result<()> {
        while !self.write.is_empty() {
            let n = self.io.write(&self.write).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the connection accepts no more data",
                ));
            }
            self.write.advance(n);
        }
        self.io.flush().await
    }

    /// Whether a whole message is already received (the next read needs no I/O).
    fn has_buffered_message(&self) -> bool {
        match backend::Header::parse(&self.read) {
            Ok(Some(h)) => usize::try_from(h.len())
                .ok()
                .and_then(|l| l.checked_add(1))
                .is_some_and(|total| self.read.len() >= total),
            _ => false,
        }
    }

    /// Reads the next whole message (cancel-safe: what was read stays in `self.read`).
    async fn read_incoming(&mut self) -> io::Result<Incoming> {
        loop {
            if let Some(header) = backend::Header::parse(&self.read)? {
                let total = usize::try_from(header.len())
                    .ok()
                    .and_then(|l| l.checked_add(1))
                    .ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "invalid message length")
                    })?;
                if self.read.len() >= total {
                    if header.tag() == COPY_BOTH_RESPONSE_TAG {
                        self.read.advance(total);
                        return Ok(Incoming::CopyBoth);
                    }
                    let mut one = self.read.split_to(total);
                    return match Message::parse(&mut one)? {
                        Some(m) => Ok(Incoming::Message(m)),
                        None => Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "a message shorter than its header says",
                        )),
                    };
                }
                // Grown as the data comes (a length is no reason to allocate it).
                self.read.reserve((total - self.read.len()).min(1 << 20));
            }
            if self.io.read_buf(&mut self.read).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
        }
    }

    fn query_error(&self, what: &'static str, e: impl Into<QueryFailure>) -> PgError {
        let e = e.into();
        PgError::Query {
            target: self.target.clone(),
            what,
            message: e.to_string(),
            source: e.into_source(),
        }
    }

    /// Runs a replication command, returning its rows.
    async fn simple_query(&mut self, what: &'static str, command: &str) -> Result<Rows, PgError> {
        frontend::query(command, &mut self.write).map_err(|e| self.query_error(what, e))?;
        self.flush().await.map_err(|e| self.query_error(what, e))?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let msg = match self
                .read_incoming()
                .await
                .map_err(|e| self.query_error(what, e))?
            {
                Incoming::Message(m) => m,
                Incoming::CopyBoth => {
                    return Err(self.query_error(
                        what,
                        QueryFailure::Protocol("the server started streaming"),
                    ));
                }
            };
            match msg {
                Message::DataRow(body) => {
                    let buf = body.buffer_bytes().clone();
                    let mut ranges = body.ranges();
                    let mut row = Vec::new();
                    while let Some(r) = ranges.next().map_err(|e| self.query_error(what, e))? {
                        row.push(r.map(|r| buf.slice(r)));
                    }
                    rows.push(row);
                }
                Message::ErrorResponse(body) => {
                    error = Some(ServerError::from_fields(body.fields()));
                }
                Message::ReadyForQuery(_) => {
                    return match error {
                        Some(e) => Err(self.query_error(what, QueryFailure::Server(e))),
                        None => Ok(rows),
                    };
                }
                _ => {}
            }
        }
    }

    /// `IDENTIFY_SYSTEM`.
    ///
    /// # Errors
    ///
    /// [`PgError::Query`], [`PgError::Unexpected`] for an answer that cannot be read.
    pub async fn identify_system(&mut self) -> Result<SystemIdentity, PgError> {
        let what = "IDENTIFY_SYSTEM";
        let rows = self.simple_query(what, "IDENTIFY_SYSTEM").await?;
        let row = rows
            .first()
            .ok_or_else(|| self.unexpected(what, "no row"))?;
        let system_id = self.text(what, row, 0)?;
        let timeline = self.text(what, row, 1)?;
        let xlogpos = self.text(what, row, 2)?;
        Ok(SystemIdentity {
            system_id: system_id
                .parse()
                .map_err(|_| self.unexpected(what, &system_id))?,
            timeline: timeline
                .parse()
                .map_err(|_| self.unexpected(what, &timeline))?,
            xlogpos: xlogpos
                .parse()
                .map_err(|_| self.unexpected(what, &xlogpos))?,
        })
    }

    /// `SHOW wal_segment_size` (replication connections accept `SHOW`).
    ///
    /// # Errors
    ///
    /// [`PgError::Query`]; [`PgError::Unexpected`] for a size that is not a power of two
    /// between 1 MiB and 1 GiB.
    pub async fn wal_segment_size(&mut self) -> Result<WalSegSize, PgError> {
        let what = "SHOW wal_segment_size";
        let rows = self.simple_query(what, "SHOW wal_segment_size").await?;
        let row = rows
            .first()
            .ok_or_else(|| self.unexpected(what, "no row"))?;
        let text = self.text(what, row, 0)?;
        parse_size(&text)
            .and_then(|b| WalSegSize::new(b).ok())
            .ok_or_else(|| self.unexpected(what, &text))
    }

    /// `TIMELINE_HISTORY tli`: the history file's name and content.
    ///
    /// # Errors
    ///
    /// [`PgError::Query`] (timeline 1 has no history file).
    pub async fn timeline_history(
        &mut self,
        timeline: TimelineId,
    ) -> Result<(String, Bytes), PgError> {
        let what = "TIMELINE_HISTORY";
        let rows = self
            .simple_query(what, &format!("TIMELINE_HISTORY {}", timeline.as_u32()))
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| self.unexpected(what, "no row"))?;
        let name = self.text(what, row, 0)?;
        let content = row
            .get(1)
            .cloned()
            .flatten()
            .ok_or_else(|| self.unexpected(what, "no content"))?;
        Ok((name, content))
    }

    /// `CREATE_REPLICATION_SLOT name PHYSICAL [RESERVE_WAL]`.
    ///
    /// # Errors
    ///
    /// [`PgError::Query`]; a slot that exists already has SQLSTATE 42710
    /// ([`PgError::sqlstate`]).
    pub async fn create_physical_slot(
        &mut self,
        name: &str,
        reserve_wal: bool,
    ) -> Result<(), PgError> {
        check_slot_name(name)?;
        let command = if reserve_wal {
            format!("CREATE_REPLICATION_SLOT {name} PHYSICAL RESERVE_WAL")
        } else {
            format!("CREATE_REPLICATION_SLOT {name} PHYSICAL")
        };
        self.simple_query("CREATE_REPLICATION_SLOT", &command)
            .await
            .map(drop)
    }

    /// `DROP_REPLICATION_SLOT name [WAIT]`.
    ///
    /// # Errors
    ///
    /// [`PgError::Query`]; a missing slot has SQLSTATE 42704.
    pub async fn drop_slot(&mut self, name: &str, wait: bool) -> Result<(), PgError> {
        check_slot_name(name)?;
        let command = if wait {
            format!("DROP_REPLICATION_SLOT {name} WAIT")
        } else {
            format!("DROP_REPLICATION_SLOT {name}")
        };
        self.simple_query("DROP_REPLICATION_SLOT", &command)
            .await
            .map(drop)
    }

    /// `READ_REPLICATION_SLOT name` (PostgreSQL 15 and later): `None` when there is no
    /// such slot.
    ///
    /// # Errors
    ///
    /// [`PgError::Unsupported`] before PostgreSQL 15; [`PgError::Query`].
    pub async fn read_replication_slot(
        &mut self,
        name: &str,
    ) -> Result<Option<SlotPosition>, PgError> {
        check_slot_name(name)?;
        let what = "READ_REPLICATION_SLOT";
        if self.server_version_num() < 150000 {
            return Err(unsupported(
                "READ_REPLICATION_SLOT",
                name,
                "the server is older than PostgreSQL 15",
            ));
        }
        let rows = self
            .simple_query(what, &format!("READ_REPLICATION_SLOT {name}"))
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        // A missing slot is one row of NULLs.
        if row.first().cloned().flatten().is_none() {
            return Ok(None);
        }
        let opt = |i: usize| -> Option<String> {
            row.get(i)
                .cloned()
                .flatten()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        Ok(Some(SlotPosition {
            restart_lsn: opt(1).and_then(|t| t.parse().ok()),
            restart_tli: opt(2).and_then(|t| t.parse().ok()),
        }))
    }

    /// `START_REPLICATION [SLOT slot] PHYSICAL start TIMELINE tli`: the connection
    /// becomes a [`WalStream`].
    ///
    /// # Errors
    ///
    /// [`PgError::Query`]: a missing slot, WAL already removed, a timeline the server
    /// does not have.
    pub async fn start_replication(
        mut self,
        slot: Option<&str>,
        start: Lsn,
        timeline: TimelineId,
    ) -> Result<WalStream, PgError> {
        let what = "START_REPLICATION";
        let command = match slot {
            Some(s) => {
                check_slot_name(s)?;
                format!(
                    "START_REPLICATION SLOT {s} PHYSICAL {start} TIMELINE {}",
                    timeline.as_u32()
                )
            }
            None => format!(
                "START_REPLICATION PHYSICAL {start} TIMELINE {}",
                timeline.as_u32()
            ),
        };
        frontend::query(&command, &mut self.write).map_err(|e| self.query_error(what, e))?;
        self.flush().await.map_err(|e| self.query_error(what, e))?;
        let mut error = None;
        loop {
            match self
                .read_incoming()
                .await
                .map_err(|e| self.query_error(what, e))?
            {
                Incoming::CopyBoth => {
                    return Ok(WalStream {
                        conn: self,
                        state: StreamState::Streaming,
                        next_timeline: None,
                    });
                }
                Incoming::Message(Message::ErrorResponse(body)) => {
                    error = Some(ServerError::from_fields(body.fields()));
                }
                Incoming::Message(Message::ReadyForQuery(_)) => {
                    let e = error.unwrap_or_else(|| ServerError::protocol("no stream started"));
                    return Err(self.query_error(what, QueryFailure::Server(e)));
                }
                Incoming::Message(_) => {}
            }
        }
    }

    fn unexpected(&self, what: &'static str, value: &str) -> PgError {
        PgError::Unexpected {
            target: self.target.clone(),
            what,
            value: value.to_owned(),
        }
    }

    fn text(&self, what: &'static str, row: &[Option<Bytes>], i: usize) -> Result<String, PgError> {
        row.get(i)
            .cloned()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .ok_or_else(|| self.unexpected(what, &format!("no column {i}")))
    }

    /// Ends the session politely (a `Terminate` message).
    pub async fn close(mut self) {
        frontend::terminate(&mut self.write);
        let _ = self.flush().await;
        let _ = self.io.shutdown().await;
    }
}

/// A size as `SHOW` prints it: `16MB`, `1GB`, `512kB`, or bytes.
fn parse_size(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (n, unit) = text.split_at(digits);
    let n: u64 = n.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A slot name as PostgreSQL accepts it: lower-case letters, digits and underscores,
/// at most 63 bytes (so it can go into a command unquoted).
fn check_slot_name(name: &str) -> Result<(), PgError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(PgError::InvalidValue {
            key: "slot_name".into(),
            value: name.into(),
            reason: "a replication slot name is 1 to 63 lower-case letters, digits and underscores"
                .into(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    Streaming,
    /// The server sent CopyDone: its end-of-timeline result may follow.
    ServerDone,
    Ended,
}

/// The WAL stream of a started replication (copy-both mode).
pub struct WalStream {
    conn: ReplicationConnection,
    state: StreamState,
    /// The next timeline, once the server said it (kept across a cancelled read).
    next_timeline: Option<(TimelineId, Lsn)>,
}

impl fmt::Debug for WalStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalStream")
            .field("target", &self.conn.target)
            .field("state", &self.state)
            .finish()
    }
}

impl WalStream {
    /// The next event. Cancel-safe.
    ///
    /// # Errors
    ///
    /// [`PgError::Query`]: the connection broke, the server reported an error, or sent
    /// something that is not replication data.
    pub async fn next(&mut self) -> Result<StreamEvent, PgError> {
        let what = "streaming";
        loop {
            match self.state {
                StreamState::Ended => return Ok(StreamEvent::End { next: None }),
                // A read cancelled while the timeline ended: go on where it was.
                StreamState::ServerDone => return self.finish_timeline().await,
                StreamState::Streaming => {}
            }
            let msg = match self
                .conn
                .read_incoming()
                .await
                .map_err(|e| self.conn.query_error(what, e))?
            {
                Incoming::Message(m) => m,
                Incoming::CopyBoth => {
                    return Err(self
                        .conn
                        .query_error(what, QueryFailure::Protocol("a second CopyBothResponse")));
                }
            };
            match msg {
                Message::CopyData(body) => {
                    let bytes = body.into_bytes();
                    let event = match ServerMessage::parse(&bytes)
                        .map_err(|e| self.conn.query_error(what, QueryFailure::Wal(e)))?
                    {
                        ServerMessage::XLogData(x) => {
                            let offset = bytes.len() - x.data.len();
                            StreamEvent::Data {
                                start: x.wal_start,
                                wal_end: x.wal_end,
                                data: bytes.slice(offset..),
                            }
                        }
                        ServerMessage::Keepalive(k) => StreamEvent::Keepalive {
                            wal_end: k.wal_end,
                            reply_requested: k.reply_requested,
                        },
                        _ => continue,
                    };
                    return Ok(event);
                }
                Message::CopyDone => {
                    // The end of the timeline: answer CopyDone (queued, then sent by
                    // finish_timeline, so a cancelled read loses nothing), then the
                    // server says where the next timeline starts, and is ready.
                    frontend::copy_done(&mut self.conn.write);
                    self.state = StreamState::ServerDone;
                    return self.finish_timeline().await;
                }
                Message::ErrorResponse(body) => {
                    let e = ServerError::from_fields(body.fields());
                    self.state = StreamState::Ended;
                    return Err(self.conn.query_error(what, QueryFailure::Server(e)));
                }
                // A server shutting down ends the copy with CommandComplete (once its
                // standbys confirmed all it sent) and closes the connection.
                Message::CommandComplete(_) => {
                    self.state = StreamState::Ended;
                    return Ok(StreamEvent::End { next: None });
                }
                Message::NoticeResponse(_) | Message::ParameterStatus(_) => {}
                _ => {
                    return Err(self.conn.query_error(
                        what,
                        QueryFailure::Protocol("an unexpected message in the WAL stream"),
                    ));
                }
            }
        }
    }

    /// After CopyDone: the optional next-timeline row, CommandComplete, ReadyForQuery.
    /// Cancel-safe: what it learnt is kept in `self`.
    async fn finish_timeline(&mut self) -> Result<StreamEvent, PgError> {
        let what = "the end of the timeline";
        self.conn
            .flush()
            .await
            .map_err(|e| self.conn.query_error(what, e))?;
        loop {
            let msg = match self
                .conn
                .read_incoming()
                .await
                .map_err(|e| self.conn.query_error(what, e))?
            {
                Incoming::Message(m) => m,
                Incoming::CopyBoth => continue,
            };
            match msg {
                Message::DataRow(body) => {
                    let buf = body.buffer_bytes().clone();
                    let mut ranges = body.ranges();
                    let mut cols = Vec::new();
                    while let Some(r) = ranges.next().map_err(|e| self.conn.query_error(what, e))? {
                        cols.push(r.map(|r| String::from_utf8_lossy(&buf[r]).into_owned()));
                    }
                    let tli = cols.first().cloned().flatten().and_then(|t| t.parse().ok());
                    let lsn = cols.get(1).cloned().flatten().and_then(|t| t.parse().ok());
                    if let (Some(t), Some(l)) = (tli, lsn) {
                        self.next_timeline = Some((t, l));
                    }
                }
                Message::ErrorResponse(body) => {
                    let e = ServerError::from_fields(body.fields());
                    self.state = StreamState::Ended;
                    return Err(self.conn.query_error(what, QueryFailure::Server(e)));
                }
                Message::ReadyForQuery(_) => {
                    self.state = StreamState::Ended;
                    return Ok(StreamEvent::End {
                        next: self.next_timeline.take(),
                    });
                }
                _ => {}
            }
        }
    }

    /// Sends a standby status update: how far the WAL is written and flushed (made
    /// durable). A synchronous commit on the primary waits for `flush`.
    ///
    /// # Errors
    ///
    /// [`PgError::Query`] when the connection broke.
    pub async fn send_status(&mut self, status: StandbyStatus) -> Result<(), PgError> {
        let what = "sending a status update";
        if self.state != StreamState::Streaming {
            // Once a CopyDone is on its way, no more CopyData may follow it.
            return Ok(());
        }
        let payload = status.encode();
        frontend::CopyData::new(&payload[..])
            .map_err(|e| self.conn.query_error(what, e))?
            .write(&mut self.conn.write);
        self.conn
            .flush()
            .await
            .map_err(|e| self.conn.query_error(what, e))
    }

    /// Whether a whole message is already received: the next [`WalStream::next`] needs
    /// no I/O. A caller decides with it whether to report its position now.
    pub fn has_buffered_message(&self) -> bool {
        self.conn.has_buffered_message()
    }

    /// Stops streaming (CopyDone), reads what the server sends until it is ready, and
    /// gives the connection back for more commands.
    ///
    /// # Errors
    ///
    /// [`PgError::Query`] when the connection broke.
    pub async fn stop(mut self) -> Result<ReplicationConnection, PgError> {
        let what = "stopping the stream";
        if self.state == StreamState::Streaming {
            frontend::copy_done(&mut self.conn.write);
            self.conn
                .flush()
                .await
                .map_err(|e| self.conn.query_error(what, e))?;
            self.state = StreamState::ServerDone;
            // Data in flight, then the server's CopyDone.
            loop {
                match self
                    .conn
                    .read_incoming()
                    .await
                    .map_err(|e| self.conn.query_error(what, e))?
                {
                    Incoming::Message(Message::CopyDone) => break,
                    Incoming::Message(Message::ErrorResponse(body)) => {
                        let e = ServerError::from_fields(body.fields());
                        return Err(self.conn.query_error(what, QueryFailure::Server(e)));
                    }
                    _ => {}
                }
            }
        }
        if self.state == StreamState::ServerDone {
            self.finish_timeline().await?;
        }
        Ok(self.conn)
    }
}

/// Why a connection attempt failed.
#[derive(Debug)]
enum ConnectFailure {
    Io(io::Error),
    Tls(String),
    Server(ServerError),
    Protocol(&'static str),
    NoPassword,
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectFailure::Io(e) => write!(f, "{e}"),
            ConnectFailure::Tls(e) => write!(f, "TLS: {e}"),
            ConnectFailure::Server(e) => write!(f, "{e}"),
            ConnectFailure::Protocol(what) => write!(f, "protocol error: {what}"),
            ConnectFailure::NoPassword => f.write_str(
                "the server asks for a password and none is set (password= or ~/.pgpass)",
            ),
        }
    }
}

impl ConnectFailure {
    fn into_source(self) -> super::error::BoxedSource {
        match self {
            ConnectFailure::Io(e) => Box::new(e),
            ConnectFailure::Server(e) => Box::new(e),
            other => Box::new(io::Error::new(
                io::ErrorKind::InvalidData,
                other.to_string(),
            )),
        }
    }
}

/// Why a command failed.
#[derive(Debug)]
enum QueryFailure {
    Io(io::Error),
    Server(ServerError),
    Protocol(&'static str),
    Wal(barman_wal::Error),
}

impl From<io::Error> for QueryFailure {
    fn from(e: io::Error) -> Self {
        QueryFailure::Io(e)
    }
}

impl fmt::Display for QueryFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryFailure::Io(e) => write!(f, "{e}"),
            QueryFailure::Server(e) => write!(f, "{e}"),
            QueryFailure::Protocol(what) => write!(f, "protocol error: {what}"),
            QueryFailure::Wal(e) => write!(f, "{e}"),
        }
    }
}

impl QueryFailure {
    fn into_source(self) -> super::error::BoxedSource {
        match self {
            QueryFailure::Io(e) => Box::new(e),
            QueryFailure::Server(e) => Box::new(e),
            QueryFailure::Wal(e) => Box::new(e),
            QueryFailure::Protocol(what) => {
                Box::new(io::Error::new(io::ErrorKind::InvalidData, what))
            }
        }
    }
}

/// Opens the transport to one host: a Unix socket, or TCP with TLS as `sslmode` says.
async fn open(
    host: &Host,
    addr: Option<std::net::IpAddr>,
    port: u16,
    cfg: &tokio_postgres::Config,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Transport, ConnectFailure> {
    let mode = cfg.get_ssl_mode();
    let name = match host {
        Host::Unix(dir) => {
            let path = dir.join(format!(".s.PGSQL.{port}"));
            let s = UnixStream::connect(&path).await.map_err(|e| {
                ConnectFailure::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
            })?;
            return Ok(Transport::Unix(s));
        }
        Host::Tcp(name) => name.clone(),
    };
    let mut tcp = match addr {
        Some(ip) => TcpStream::connect((ip, port)).await,
        None => TcpStream::connect((name.as_str(), port)).await,
    }
    .map_err(ConnectFailure::Io)?;
    let _ = tcp.set_nodelay(true);
    tune(&tcp, cfg).map_err(ConnectFailure::Io)?;
    let Some(config) = tls else {
        return Ok(Transport::Tcp(tcp));
    };
    // SSLRequest: 'S' the server goes TLS, 'N' it does not.
    let mut req = BytesMut::new();
    frontend::ssl_request(&mut req);
    tcp.write_all(&req).await.map_err(ConnectFailure::Io)?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer)
        .await
        .map_err(ConnectFailure::Io)?;
    match (answer[0], mode) {
        (b'S', _) => {}
        (b'N', SslMode::Prefer) => return Ok(Transport::Tcp(tcp)),
        (b'N', _) => {
            return Err(ConnectFailure::Tls(
                "the server does not accept TLS connections (sslmode requires one)".into(),
            ));
        }
        _ => {
            return Err(ConnectFailure::Protocol(
                "an unexpected answer to SSLRequest",
            ));
        }
    }
    let server_name = rustls::pki_types::ServerName::try_from(name.clone())
        .map_err(|e| ConnectFailure::Tls(format!("{name}: {e}")))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(|e| {
            // A reset or a timeout stays an I/O error (worth retrying); a refused
            // certificate is InvalidData (not).
            ConnectFailure::Io(io::Error::new(e.kind(), format!("TLS: {e}")))
        })?;
    Ok(Transport::Tls(Box::new(stream)))
}

/// The conninfo's `keepalives`, `keepalives_idle`, `keepalives_interval`,
/// `keepalives_count` and `tcp_user_timeout`, as libpq applies them.
fn tune(tcp: &TcpStream, cfg: &tokio_postgres::Config) -> io::Result<()> {
    let sock = socket2::SockRef::from(tcp);
    if cfg.get_keepalives() {
        let mut ka = socket2::TcpKeepalive::new().with_time(cfg.get_keepalives_idle());
        if let Some(i) = cfg.get_keepalives_interval() {
            ka = ka.with_interval(i);
        }
        if let Some(r) = cfg.get_keepalives_retries() {
            ka = ka.with_retries(r);
        }
        sock.set_tcp_keepalive(&ka)?;
    } else {
        sock.set_keepalive(false)?;
    }
    if let Some(t) = cfg.get_tcp_user_timeout() {
        sock.set_tcp_user_timeout(Some(*t))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_conninfo_keepalives_reach_the_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let ci = ConnInfo::parse(
            "host=127.0.0.1 user=u keepalives_idle=30 keepalives_interval=5 keepalives_count=4 tcp_user_timeout=9000",
        )
        .unwrap();
        tune(&tcp, &ci.to_tokio_config().unwrap()).unwrap();
        let s = socket2::SockRef::from(&tcp);
        assert!(s.keepalive().unwrap());
        assert_eq!(
            s.tcp_keepalive_time().unwrap(),
            std::time::Duration::from_secs(30)
        );
        assert_eq!(
            s.tcp_keepalive_interval().unwrap(),
            std::time::Duration::from_secs(5)
        );
        assert_eq!(s.tcp_keepalive_retries().unwrap(), 4);
        assert_eq!(
            s.tcp_user_timeout().unwrap(),
            Some(std::time::Duration::from_millis(9000))
        );
        let off = ConnInfo::parse("host=127.0.0.1 user=u keepalives=0").unwrap();
        tune(&tcp, &off.to_tokio_config().unwrap()).unwrap();
        assert!(!s.keepalive().unwrap());
    }

    #[test]
    fn sizes_read_as_show_prints_them() {
        assert_eq!(parse_size("16MB"), Some(16 << 20));
        assert_eq!(parse_size("1GB"), Some(1 << 30));
        assert_eq!(parse_size("512kB"), Some(512 << 10));
        assert_eq!(parse_size("8192"), Some(8192));
        for bad in ["", "MB", "16 XB", "99999999999999999999GB"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn slot_names_go_into_commands_only_when_plain() {
        assert!(check_slot_name("barman").is_ok());
        assert!(check_slot_name("barman_2").is_ok());
        for bad in ["", "Barman", "a b", "x;DROP", "a-b", &"x".repeat(64)] {
            assert!(check_slot_name(bad).is_err(), "{bad:?}");
        }
    }
}
