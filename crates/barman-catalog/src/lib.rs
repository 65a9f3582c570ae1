//! The backup catalogue of barman-rs, byte-compatible with Barman 3.
//! (Work in progress: modules are being added.)
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod backup;
mod error;
mod pyliteral;
mod timestamp;
mod xlogdb;

pub use backup::{BACKUP_INFO_KEYS, BackupId, BackupInfo, BackupStatus, BackupType, Tablespace};
pub use error::{Error, Result};
pub use pyliteral::PyValue;
pub use timestamp::PyDateTime;
pub use xlogdb::{WalIndex, XlogDbEntry};
