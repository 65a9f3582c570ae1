//! The backup catalogue of barman-rs, byte-compatible with Barman 3.
//!
//! Everything barman-rs knows about what a server's repository holds, and the decisions
//! taken from it, without touching storage: the text of `backup.info` files
//! ([`BackupInfo`]) and of `xlog.db` ([`WalIndex`]), backup ids and shortcuts
//! ([`Catalogue::resolve`]), keep annotations, the check-backup decision
//! ([`check_backup`]), retention policies ([`RetentionPolicy`], [`WalCleanup`]), recovery
//! planning ([`plan_recovery`], [`choose_backup`]) and `identity.json` ([`Identity`]).
//!
//! The crate is sans-IO: it parses text it is given and returns values or text to
//! write. It reads no file, no clock (`now` is a parameter) and no time zone database
//! (naive timestamps are read in a [`jiff::tz::TimeZone`] the caller passes).
//!
//! # Example
//!
//! ```
//! use barman_catalog::{BackupInfo, Catalogue, RetentionPolicy};
//!
//! let text = "begin_wal=000000010000000000000002\nend_time=2026-11-20 01:00:00+00:00\n\
//!             end_wal=000000010000000000000002\nstatus=DONE\n";
//! let mut cat = Catalogue::new("pg");
//! cat.insert(BackupInfo::parse("meta/20261120T000000-backup.info", text)?);
//! let policy: RetentionPolicy = "REDUNDANCY 1".parse()?;
//! let report = policy.evaluate(&cat, 1, "2026-11-25T00:00:00Z".parse().unwrap(), &jiff::tz::TimeZone::UTC);
//! assert!(report.obsolete().is_empty());
//! # Ok::<(), barman_catalog::Error>(())
//! ```
//!
//! # Design notes
//!
//! - **Byte compatibility.** Values read from Barman's files are written back as Barman
//!   would write them: the Python literals (`tablespaces`, `copy_stats`, ...) go through
//!   [`PyValue`], which reproduces `repr`; timestamps through [`PyDateTime`], which
//!   reproduces `str(datetime)`.
//! - **Names compare as text** where Barman compares them as strings (WAL cleanup), which
//!   [`barman_wal::WalFileName`]'s ordering guarantees.
//! - **Recovery planning is exact.** Where Barman copies every WAL file of every timeline
//!   up to the target one, [`plan_recovery`] follows the target timeline's history and
//!   lists the copy of each segment PostgreSQL will ask for, and rejects targets it cannot
//!   reach before anything is copied.
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod backup;
mod catalog;
mod check;
mod error;
mod identity;
mod manifest;
mod pyliteral;
mod recovery;
mod retention;
mod timestamp;
mod xlogdb;

pub use backup::{BACKUP_INFO_KEYS, BackupId, BackupInfo, BackupStatus, BackupType, Tablespace};
pub use catalog::{Catalogue, KeepTarget, RESERVED_BACKUP_IDS, check_backup_name};
pub use check::{CheckOutcome, check_backup};
pub use error::{Error, Impossible, LiteralError, Result, TimestampError};
pub use identity::Identity;
pub use manifest::{BackupManifest, ManifestChecksum, ManifestFile, WalRange};
pub use pyliteral::PyValue;
pub use recovery::{
    RecoveryPlan, RecoveryRequest, RecoveryTarget, TargetTimeline, choose_backup, plan_recovery,
};
pub use retention::{RetentionPolicy, RetentionReport, RetentionStatus, WalCleanup, WindowUnit};
pub use timestamp::PyDateTime;
pub use xlogdb::{WalIndex, XlogDbEntry};
