//! One module per group of subcommands; each exposes `exec` functions taking the
//! [`Context`](crate::Context) and the command's arguments.

pub mod backup;
pub mod backups;
pub mod diagnose;
pub mod recover;
pub mod server;
pub mod servers;
pub mod wal;

/// `--retry-times`, `--retry-sleep` and `--no-retry`, of `backup` and `recover`.
#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// How many times a failed copy is tried again (basebackup_retry_times).
    #[arg(long = "retry-times", overrides_with = "no_retry")]
    pub retry_times: Option<u32>,
    /// Seconds before trying a failed copy again (basebackup_retry_sleep).
    #[arg(long = "retry-sleep")]
    pub retry_sleep: Option<u64>,
    /// Never try a failed copy again (--retry-times 0).
    #[arg(long = "no-retry", overrides_with = "retry_times")]
    pub no_retry: bool,
}

impl RetryArgs {
    /// The retries asked for (`--no-retry` is `--retry-times 0`); `None` leaves them
    /// to the configuration.
    pub fn times(&self) -> Option<u32> {
        if self.no_retry {
            Some(0)
        } else {
            self.retry_times
        }
    }
}
