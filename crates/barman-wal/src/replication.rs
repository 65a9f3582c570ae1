//! The messages of PostgreSQL's physical streaming replication inside `CopyData`
//! (sans-IO): what the server sends once `START_REPLICATION` switched the connection
//! to copy-both mode (WAL data `w`, primary keepalive `k`), and what the client sends
//! back (standby status update `r`). Decoded with `nom`; every field is big-endian, as
//! PostgreSQL's protocol documentation ("Streaming Replication Protocol") lays them out.
//!
//! Times are PostgreSQL's: microseconds since 2000-01-01 00:00:00 UTC ([`PgTime`]).
//!
//! # Examples
//!
//! ```
//! use barman_wal::Lsn;
//! use barman_wal::replication::{PgTime, ServerMessage, StandbyStatus};
//!
//! // A keepalive asking for an answer now.
//! let mut msg = vec![b'k'];
//! msg.extend_from_slice(&0x0300_0000u64.to_be_bytes());
//! msg.extend_from_slice(&0i64.to_be_bytes());
//! msg.push(1);
//! let ServerMessage::Keepalive(k) = ServerMessage::parse(&msg)? else { unreachable!() };
//! assert_eq!((k.wal_end, k.reply_requested), (Lsn::new(0x0300_0000), true));
//!
//! // The answer: written and flushed up to there.
//! let status = StandbyStatus::new(k.wal_end, k.wal_end, Lsn::INVALID, PgTime::from_micros(0));
//! assert_eq!(StandbyStatus::parse(&status.encode())?, status);
//! # Ok::<(), barman_wal::Error>(())
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nom::Parser;
use nom::bytes::complete::tag;
use nom::combinator::{all_consuming, rest};
use nom::number::complete::{be_i64, be_u8, be_u64};

use crate::{Error, Lsn, Result};

/// A time as PostgreSQL sends it: microseconds since 2000-01-01 00:00:00 UTC
/// (`TimestampTz`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PgTime(i64);

/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_UNIX_SECS: u64 = 946_684_800;

impl PgTime {
    /// The time `micros` microseconds after 2000-01-01 00:00:00 UTC.
    pub const fn from_micros(micros: i64) -> PgTime {
        PgTime(micros)
    }

    /// Microseconds since 2000-01-01 00:00:00 UTC.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The PostgreSQL time of a system time (saturating outside `i64` microseconds).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use barman_wal::replication::PgTime;
    ///
    /// let t = UNIX_EPOCH + Duration::from_secs(946_684_800 + 1);
    /// assert_eq!(PgTime::from_system(t).as_micros(), 1_000_000);
    /// assert_eq!(PgTime::from_system(t).to_system(), t);
    /// ```
    pub fn from_system(t: SystemTime) -> PgTime {
        let epoch = UNIX_EPOCH + Duration::from_secs(PG_EPOCH_UNIX_SECS);
        match t.duration_since(epoch) {
            Ok(d) => PgTime(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            Err(e) => PgTime(
                i64::try_from(e.duration().as_micros())
                    .map(|m| -m)
                    .unwrap_or(i64::MIN),
            ),
        }
    }

    /// Now, as PostgreSQL counts it.
    pub fn now() -> PgTime {
        PgTime::from_system(SystemTime::now())
    }

    /// The system time (saturating at the limits of `SystemTime`).
    pub fn to_system(self) -> SystemTime {
        let epoch = UNIX_EPOCH + Duration::from_secs(PG_EPOCH_UNIX_SECS);
        let d = Duration::from_micros(self.0.unsigned_abs());
        if self.0 >= 0 {
            epoch.checked_add(d).unwrap_or(epoch)
        } else {
            epoch.checked_sub(d).unwrap_or(UNIX_EPOCH)
        }
    }
}

/// WAL data (`w`): `data` is the WAL from `wal_start` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XLogData<'a> {
    /// Where `data` starts in the WAL.
    pub wal_start: Lsn,
    /// The end of WAL on the server when it sent this.
    pub wal_end: Lsn,
    /// When the server sent it.
    pub send_time: PgTime,
    /// The WAL bytes.
    pub data: &'a [u8],
}

impl XLogData<'_> {
    /// Where `data` ends (`wal_start` + its length), `None` past the end of the LSN space.
    pub fn data_end(&self) -> Option<Lsn> {
        u64::from(self.wal_start)
            .checked_add(self.data.len() as u64)
            .map(Lsn::new)
    }
}

/// Primary keepalive (`k`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// The end of WAL on the server.
    pub wal_end: Lsn,
    /// When the server sent it.
    pub send_time: PgTime,
    /// Whether the server asks for a status update right away (it disconnects a
    /// client that stays silent past `wal_sender_timeout`).
    pub reply_requested: bool,
}

/// A message of the server inside `CopyData` during physical replication.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerMessage<'a> {
    /// WAL data.
    XLogData(XLogData<'a>),
    /// A keepalive.
    Keepalive(Keepalive),
}

fn invalid(input: &[u8], reason: &'static str) -> Error {
    Error::InvalidReplicationMessage {
        kind: input.first().copied().unwrap_or(0),
        len: input.len(),
        reason,
    }
}

type NomError<'a> = nom::error::Error<&'a [u8]>;

impl<'a> ServerMessage<'a> {
    /// Decodes the payload of one `CopyData` message from the server.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReplicationMessage`] for an unknown kind or a wrong length.
    pub fn parse(input: &'a [u8]) -> Result<ServerMessage<'a>> {
        match input.first() {
            Some(b'w') => {
                let (_, (_, wal_start, wal_end, send_time, data)) = (
                    tag::<_, _, NomError<'a>>(&b"w"[..]),
                    be_u64,
                    be_u64,
                    be_i64,
                    rest,
                )
                    .parse(input)
                    .map_err(|_| invalid(input, "WAL data shorter than its 25-byte header"))?;
                Ok(ServerMessage::XLogData(XLogData {
                    wal_start: Lsn::new(wal_start),
                    wal_end: Lsn::new(wal_end),
                    send_time: PgTime(send_time),
                    data,
                }))
            }
            Some(b'k') => {
                let (_, (_, wal_end, send_time, reply)) =
                    all_consuming((tag::<_, _, NomError<'a>>(&b"k"[..]), be_u64, be_i64, be_u8))
                        .parse(input)
                        .map_err(|_| invalid(input, "a keepalive is 18 bytes"))?;
                Ok(ServerMessage::Keepalive(Keepalive {
                    wal_end: Lsn::new(wal_end),
                    send_time: PgTime(send_time),
                    reply_requested: reply != 0,
                }))
            }
            Some(_) => Err(invalid(input, "not WAL data ('w') nor a keepalive ('k')")),
            None => Err(invalid(input, "empty message")),
        }
    }
}

/// Standby status update (`r`): how far the client has written, flushed (made
/// durable) and applied the WAL. The flush position is what a synchronous commit
/// waits for, and what a replication slot keeps WAL from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StandbyStatus {
    /// Received and written.
    pub write: Lsn,
    /// Durable (fsynced).
    pub flush: Lsn,
    /// Applied (`0/0` for an archiver, which applies nothing).
    pub apply: Lsn,
    /// When the client sent it.
    pub send_time: PgTime,
    /// Whether the client asks the server to answer with a keepalive right away.
    pub reply_requested: bool,
}

impl StandbyStatus {
    /// A status update asking for no reply.
    pub fn new(write: Lsn, flush: Lsn, apply: Lsn, send_time: PgTime) -> StandbyStatus {
        StandbyStatus {
            write,
            flush,
            apply,
            send_time,
            reply_requested: false,
        }
    }

    /// The 34 bytes of the `CopyData` payload.
    pub fn encode(&self) -> [u8; 34] {
        let mut out = [0u8; 34];
        let fields = [
            u64::from(self.write).to_be_bytes(),
            u64::from(self.flush).to_be_bytes(),
            u64::from(self.apply).to_be_bytes(),
            self.send_time.0.to_be_bytes(),
        ];
        out[0] = b'r';
        for (chunk, field) in out[1..33].chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&field);
        }
        out[33] = u8::from(self.reply_requested);
        out
    }

    /// Decodes a status update (what the server reads; for tests and tools).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReplicationMessage`] unless `input` is 34 bytes starting with `r`.
    pub fn parse(input: &[u8]) -> Result<StandbyStatus> {
        let (_, (_, write, flush, apply, send_time, reply)) = all_consuming((
            tag::<_, _, NomError<'_>>(&b"r"[..]),
            be_u64,
            be_u64,
            be_u64,
            be_i64,
            be_u8,
        ))
        .parse(input)
        .map_err(|_| {
            invalid(
                input,
                "a standby status update is 34 bytes starting with 'r'",
            )
        })?;
        Ok(StandbyStatus {
            write: Lsn::new(write),
            flush: Lsn::new(flush),
            apply: Lsn::new(apply),
            send_time: PgTime(send_time),
            reply_requested: reply != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn xlogdata(start: u64, end: u64, t: i64, data: &[u8]) -> Vec<u8> {
        let mut v = vec![b'w'];
        v.extend_from_slice(&start.to_be_bytes());
        v.extend_from_slice(&end.to_be_bytes());
        v.extend_from_slice(&t.to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    proptest! {
        #[test]
        fn wal_data_decodes_its_fields(start in any::<u64>(), end in any::<u64>(), t in any::<i64>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let msg = xlogdata(start, end, t, &data);
            let ServerMessage::XLogData(x) = ServerMessage::parse(&msg).unwrap() else { panic!() };
            prop_assert_eq!(x.wal_start, Lsn::new(start));
            prop_assert_eq!(x.wal_end, Lsn::new(end));
            prop_assert_eq!(x.send_time, PgTime(t));
            prop_assert_eq!(x.data, &data[..]);
            prop_assert_eq!(x.data_end(), start.checked_add(data.len() as u64).map(Lsn::new));
        }

        #[test]
        fn status_updates_round_trip(w in any::<u64>(), f in any::<u64>(), a in any::<u64>(), t in any::<i64>(), r in any::<bool>()) {
            let s = StandbyStatus { write: Lsn::new(w), flush: Lsn::new(f), apply: Lsn::new(a), send_time: PgTime(t), reply_requested: r };
            let bytes = s.encode();
            prop_assert_eq!(StandbyStatus::parse(&bytes).unwrap(), s);
            // Any other length is refused.
            prop_assert!(StandbyStatus::parse(&bytes[..33]).is_err());
            let mut longer = bytes.to_vec();
            longer.push(0);
            prop_assert!(StandbyStatus::parse(&longer).is_err());
        }

        #[test]
        fn no_input_panics(input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = ServerMessage::parse(&input);
            let _ = StandbyStatus::parse(&input);
        }

        #[test]
        fn pg_time_round_trips_through_system_time(micros in -1_000_000_000_000_000i64..1_000_000_000_000_000) {
            let t = PgTime(micros);
            prop_assert_eq!(PgTime::from_system(t.to_system()), t);
        }
    }

    #[test]
    fn short_and_unknown_messages_are_refused_with_their_kind() {
        let err = ServerMessage::parse(&xlogdata(1, 2, 3, b"")[..24]).unwrap_err();
        assert!(err.to_string().contains("'w'"), "{err}");
        let mut keepalive = vec![b'k'];
        keepalive.extend_from_slice(&[0; 17]);
        assert!(ServerMessage::parse(&keepalive).is_ok());
        keepalive.push(0);
        assert!(ServerMessage::parse(&keepalive).is_err());
        assert!(ServerMessage::parse(b"").is_err());
        let err = ServerMessage::parse(b"x123").unwrap_err();
        assert!(err.to_string().contains("'x'"), "{err}");
    }

    #[test]
    fn the_epochs_are_2000_and_1970() {
        assert_eq!(
            PgTime::from_system(UNIX_EPOCH).as_micros(),
            -946_684_800_000_000
        );
    }
}
