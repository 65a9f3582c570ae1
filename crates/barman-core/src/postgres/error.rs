//! Errors of the PostgreSQL layer.

/// The source of a driver error, kept opaque so no driver type leaks into the API.
pub type BoxedSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong reading a connection string or talking to PostgreSQL. Messages are
/// one line, name the conninfo key, the host or the query, and never show a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The connection string does not parse (libpq's wording).
    #[error("invalid connection string: {reason}")]
    Syntax {
        /// What is wrong.
        reason: String,
    },
    /// A key libpq does not know.
    #[error("invalid connection option {key:?}")]
    UnknownOption {
        /// The key.
        key: String,
    },
    /// A key with a value that libpq would reject, or that cannot be used here.
    #[error("invalid connection option {key}={value:?}: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value (`********` for a password).
        value: String,
        /// Why.
        reason: String,
    },
    /// A libpq feature barman-rs does not implement.
    #[error("connection option {key}={value:?} is not supported: {reason}")]
    Unsupported {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// What is missing.
        reason: String,
    },
    /// Connecting (or authenticating) failed.
    #[error("cannot connect to PostgreSQL at {target}: {message}")]
    Connect {
        /// Where: `host=… port=… user=… dbname=…`.
        target: String,
        /// The driver's message, on one line.
        message: String,
        /// The driver's error.
        #[source]
        source: BoxedSource,
    },
    /// A query failed.
    #[error("PostgreSQL at {target}: {what} failed: {message}")]
    Query {
        /// Where.
        target: String,
        /// What was being asked.
        what: &'static str,
        /// The driver's message, on one line.
        message: String,
        /// The driver's error.
        #[source]
        source: BoxedSource,
    },
    /// A query returned something we cannot read.
    #[error("PostgreSQL at {target}: {what} returned {value:?}")]
    Unexpected {
        /// Where.
        target: String,
        /// What was being asked.
        what: &'static str,
        /// What came back.
        value: String,
    },
    /// The user lacks the privileges an operation needs.
    #[error("PostgreSQL at {target}: user {user:?} {what}")]
    Privileges {
        /// Where.
        target: String,
        /// The user.
        user: String,
        /// What is missing (Barman's wording).
        what: &'static str,
    },
}

/// An error PostgreSQL reported (`ErrorResponse`) on a connection of our own (the
/// replication client): severity, SQLSTATE and message, with the detail and hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// `ERROR`, `FATAL`, `PANIC`.
    pub severity: String,
    /// The SQLSTATE code.
    pub code: String,
    /// The primary message.
    pub message: String,
    /// The detail, if any.
    pub detail: Option<String>,
    /// The hint, if any.
    pub hint: Option<String>,
}

impl ServerError {
    /// Reads the fields of an `ErrorResponse`.
    #[cfg(feature = "postgres")]
    pub(crate) fn from_fields(
        mut fields: postgres_protocol::message::backend::ErrorFields<'_>,
    ) -> ServerError {
        use fallible_iterator::FallibleIterator;
        let mut e = ServerError::protocol("");
        while let Ok(Some(f)) = fields.next() {
            let v = String::from_utf8_lossy(f.value_bytes()).into_owned();
            match f.type_() {
                b'V' => e.severity = v,
                b'S' if e.severity.is_empty() => e.severity = v,
                b'C' => e.code = v,
                b'M' => e.message = v,
                b'D' => e.detail = Some(v),
                b'H' => e.hint = Some(v),
                _ => {}
            }
        }
        e
    }

    /// An error of the conversation itself (no SQLSTATE from the server).
    #[cfg(feature = "postgres")]
    pub(crate) fn protocol(message: &str) -> ServerError {
        ServerError {
            severity: String::new(),
            code: String::new(),
            message: message.to_owned(),
            detail: None,
            hint: None,
        }
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.severity.is_empty() {
            write!(f, "{}: ", self.severity)?;
        }
        f.write_str(&self.message)?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        if !self.code.is_empty() {
            write!(f, " [SQLSTATE {}]", self.code)?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

/// Whether a SQLSTATE says the same request may succeed later: connection exceptions
/// (08), operator intervention (57P: shutdown, crash), too many connections (53300),
/// serialization failure and deadlock (40001, 40P01).
fn transient_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P") || matches!(code, "53300" | "40001" | "40P01")
}

impl PgError {
    /// The SQLSTATE the server answered with, for an error the server reported.
    ///
    /// ```
    /// use barman_core::postgres::PgError;
    /// let e = PgError::Unexpected { target: "host=pg".into(), what: "x", value: "y".into() };
    /// assert_eq!(e.sqlstate(), None);
    /// ```
    pub fn sqlstate(&self) -> Option<&str> {
        let (PgError::Connect { source, .. } | PgError::Query { source, .. }) = self else {
            return None;
        };
        if let Some(e) = source.downcast_ref::<ServerError>() {
            return Some(e.code.as_str()).filter(|c| !c.is_empty());
        }
        #[cfg(feature = "postgres")]
        if let Some(db) = source
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(|e| e.as_db_error())
        {
            return Some(db.code().code());
        }
        None
    }

    /// Whether trying again later may succeed: the server could not be reached or the
    /// session was lost (a network error, a closed connection, or SQLSTATE class 08
    /// connection exception, 57P operator intervention, 53300 too many connections,
    /// 40001/40P01 serialization failure and deadlock). An authentication failure, a
    /// TLS certificate refused, a missing privilege, a bad query or an answer that
    /// cannot be read is not.
    pub fn is_retryable(&self) -> bool {
        let (PgError::Connect { source, .. } | PgError::Query { source, .. }) = self else {
            return false;
        };
        #[cfg(feature = "postgres")]
        if let Some(e) = source.downcast_ref::<tokio_postgres::Error>() {
            if let Some(db) = e.as_db_error() {
                return transient_sqlstate(db.code().code());
            }
            if e.is_closed() {
                return true;
            }
        }
        if let Some(e) = source.downcast_ref::<ServerError>() {
            return transient_sqlstate(&e.code);
        }
        // A network failure somewhere in the chain: refused, reset, timed out.
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
        while let Some(c) = cause {
            if let Some(io) = c.downcast_ref::<std::io::Error>() {
                return !matches!(
                    io.kind(),
                    std::io::ErrorKind::InvalidData
                        | std::io::ErrorKind::InvalidInput
                        | std::io::ErrorKind::PermissionDenied
                );
            }
            cause = c.source();
        }
        false
    }
}

/// One line of a driver error: its `Display` with the lines joined (a server error
/// carries `DETAIL` and `HINT` lines).
#[cfg(feature = "postgres")]
pub(crate) fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    // tokio-postgres says only "db error" or "error performing TLS handshake": the
    // server's message and the TLS reason are in the sources.
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(source: BoxedSource) -> PgError {
        PgError::Connect {
            target: "host=pg".into(),
            message: source.to_string(),
            source,
        }
    }

    #[test]
    fn only_network_failures_are_retryable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(connect(Box::new(refused)).is_retryable());
        let no_socket = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(connect(Box::new(no_socket)).is_retryable());
        let tls = std::io::Error::new(std::io::ErrorKind::InvalidData, "bad certificate");
        assert!(!connect(Box::new(tls)).is_retryable());
        assert!(!connect("password authentication failed".into()).is_retryable());
        let privileges = PgError::Privileges {
            target: "host=pg".into(),
            user: "barman".into(),
            what: "is not a superuser",
        };
        assert!(!privileges.is_retryable());
    }
}
