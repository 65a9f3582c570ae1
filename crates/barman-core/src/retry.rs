//! Copies tried again: `--retry-times`/`--retry-sleep` over `basebackup_retry_times` and
//! `basebackup_retry_sleep`, for backups and restores.

use std::time::Duration;

use crate::config::ServerConfig;

/// How many times a failed copy is tried again, and how long to wait first.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retry {
    pub(crate) times: u32,
    pub(crate) sleep: Duration,
}

impl Retry {
    /// `--retry-times`/`--retry-sleep` over `basebackup_retry_times` (default 0) and
    /// `basebackup_retry_sleep` (default 30).
    pub(crate) fn of(server: &ServerConfig, times: Option<u32>, sleep: Option<u64>) -> Retry {
        let o = server.options();
        Retry {
            times: times
                .or_else(|| u32::try_from(o.basebackup_retry_times).ok())
                .unwrap_or(0),
            sleep: Duration::from_secs(
                sleep
                    .or_else(|| u64::try_from(o.basebackup_retry_sleep).ok())
                    .unwrap_or(30),
            ),
        }
    }
}
