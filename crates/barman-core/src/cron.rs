//! `barman cron`, the part that exists so far: archiving. Run every minute, it archives
//! what waits in `incoming/` and `streaming/` for every active server.

use crate::archive::{ArchiveError, ArchiveReport, WalArchive};
use crate::config::Config;
use crate::fsutil::Lock;

/// What cron did for one server.
#[derive(Debug)]
#[non_exhaustive]
pub enum CronOutcome {
    /// Skipped: inactive, or a passive node (which syncs from its primary instead).
    Skipped(&'static str),
    /// Another cron holds this server's lock.
    Busy,
    /// archive-wal ran.
    Archived(ArchiveReport),
    /// archive-wal failed.
    Failed(ArchiveError),
}

/// Runs the archiving part of `cron` for every server, in name order, each under its
/// `.<server>-cron.lock` (a busy lock skips the server, as Barman does). Servers are
/// handled one after another for now.
pub fn run(config: &Config) -> Vec<(String, CronOutcome)> {
    let mut names: Vec<&str> = config.server_names().collect();
    names.sort_unstable();
    let mut out = Vec::new();
    for name in names {
        let Some(server) = config.server(name) else {
            continue;
        };
        let outcome = if !server.active() {
            CronOutcome::Skipped("inactive")
        } else if server.is_passive() {
            CronOutcome::Skipped("passive node")
        } else {
            let lock_path = std::path::Path::new(&config.global().barman_lock_directory)
                .join(format!(".{name}-cron.lock"));
            match Lock::try_acquire(&lock_path) {
                Ok(Some(_lock)) => {
                    match WalArchive::for_server(config.global(), server).archive_wal() {
                        Ok(r) => CronOutcome::Archived(r),
                        Err(ArchiveError::Busy { .. }) => CronOutcome::Busy,
                        Err(e) => CronOutcome::Failed(e),
                    }
                }
                Ok(None) => CronOutcome::Busy,
                Err(e) => CronOutcome::Failed(ArchiveError::Core(e)),
            }
        };
        out.push((name.to_owned(), outcome));
    }
    out
}
