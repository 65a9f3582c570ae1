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

impl PgError {
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
                let code = db.code().code();
                return code.starts_with("08")
                    || code.starts_with("57P")
                    || matches!(code, "53300" | "40001" | "40P01");
            }
            if e.is_closed() {
                return true;
            }
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
