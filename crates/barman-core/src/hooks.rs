//! Hook scripts, as Barman runs them: `pre_<name>` / `post_<name>` (a failure is a
//! warning) and `pre_<name>_retry_script` / `post_<...>` ("retry" scripts, run again
//! until they exit 0, 62 = abort and continue, or 63 = abort and stop).
//!
//! Scripts are the administrator's shell command lines from the configuration, run by
//! `/bin/sh -c`, with Barman's `BARMAN_*` variables added to the environment. The
//! hooks of an operation: `backup_script` (around a backup), `recovery_script` (a
//! restore), `archive_script` (each WAL file archived, by put-wal, archive-wal or
//! cron), `delete_script` (each backup deleted, by `delete` or retention) and
//! `wal_delete_script` (each WAL file removed).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use barman_catalog::BackupInfo;

use crate::config::{GlobalConfig, ServerConfig, ServerOptions};
use crate::repo::BackupRepo;
use crate::{Error, Result};

/// A retry script's exit code asking to go on without it.
pub const EXIT_ABORT_CONTINUE: i32 = 62;
/// A retry script's exit code asking to stop the operation.
pub const EXIT_ABORT_STOP: i32 = 63;

/// The operations that have hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// `backup_script`: around a backup.
    Backup,
    /// `recovery_script`: around a restore.
    Recovery,
    /// `archive_script`: around each WAL file archived.
    Archive,
    /// `delete_script`: around each backup deleted.
    Delete,
    /// `wal_delete_script`: around each WAL file removed.
    WalDelete,
}

impl Hook {
    /// Every hook.
    pub const ALL: [Hook; 5] = [
        Hook::Backup,
        Hook::Recovery,
        Hook::Archive,
        Hook::Delete,
        Hook::WalDelete,
    ];

    /// Barman's name (`BARMAN_HOOK`): `backup_script`, `recovery_script`, ...
    ///
    /// ```
    /// assert_eq!(barman_core::hooks::Hook::WalDelete.name(), "wal_delete_script");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Hook::Backup => "backup_script",
            Hook::Recovery => "recovery_script",
            Hook::Archive => "archive_script",
            Hook::Delete => "delete_script",
            Hook::WalDelete => "wal_delete_script",
        }
    }

    /// The hook's four scripts in `options`: pre, post, pre retry, post retry.
    pub fn scripts(self, o: &ServerOptions) -> [&Option<String>; 4] {
        match self {
            Hook::Backup => [
                &o.pre_backup_script,
                &o.post_backup_script,
                &o.pre_backup_retry_script,
                &o.post_backup_retry_script,
            ],
            Hook::Recovery => [
                &o.pre_recovery_script,
                &o.post_recovery_script,
                &o.pre_recovery_retry_script,
                &o.post_recovery_retry_script,
            ],
            Hook::Archive => [
                &o.pre_archive_script,
                &o.post_archive_script,
                &o.pre_archive_retry_script,
                &o.post_archive_retry_script,
            ],
            Hook::Delete => [
                &o.pre_delete_script,
                &o.post_delete_script,
                &o.pre_delete_retry_script,
                &o.post_delete_retry_script,
            ],
            Hook::WalDelete => [
                &o.pre_wal_delete_script,
                &o.post_wal_delete_script,
                &o.pre_wal_delete_retry_script,
                &o.post_wal_delete_retry_script,
            ],
        }
    }
}

/// The hooks of one operation of one server: `backup_script`, `recovery_script`, ...
/// The scripts are read from the configuration when made; the value owns them.
#[derive(Clone, Debug)]
pub struct Hooks {
    server: String,
    config_file: String,
    name: &'static str,
    /// pre, post, pre retry, post retry.
    scripts: [Option<String>; 4],
    env: Vec<(String, String)>,
    /// Pause between two runs of a failing retry script (Barman: 3 s, and 60 s every
    /// sixth failure).
    pub retry_pause: (Duration, Duration),
    /// Messages for the administrator (failed scripts, aborted retry scripts).
    pub warnings: Vec<String>,
}

impl Hooks {
    /// The scripts of `hook` configured for `server`.
    pub fn new(global: &GlobalConfig, server: &ServerConfig, hook: Hook) -> Self {
        let scripts = hook
            .scripts(server.options())
            .map(|s| s.clone().filter(|s| !s.trim().is_empty()));
        Hooks {
            server: server.name().to_owned(),
            config_file: global.config_file.clone(),
            name: hook.name(),
            scripts,
            env: Vec::new(),
            retry_pause: (Duration::from_secs(3), Duration::from_secs(60)),
            warnings: Vec::new(),
        }
    }

    /// Whether any of the four scripts is configured (nothing else needs doing when
    /// none is).
    pub fn any(&self) -> bool {
        self.scripts.iter().any(Option::is_some)
    }

    /// Sets the variables that describe a backup (`BARMAN_BACKUP_ID`, `..._DIR`,
    /// `..._INFO_PATH`, `BARMAN_PREVIOUS_ID`, `BARMAN_NEXT_ID`, `BARMAN_STATUS`,
    /// `BARMAN_ERROR`).
    pub fn with_backup(
        &mut self,
        repo: &BackupRepo,
        info: &BackupInfo,
        previous: Option<String>,
        next: Option<String>,
    ) {
        self.set(
            "BARMAN_BACKUP_DIR",
            repo.backup_path(info.id).display().to_string(),
        );
        self.set(
            "BARMAN_BACKUP_INFO_PATH",
            repo.info_path(info.id).display().to_string(),
        );
        self.set("BARMAN_BACKUP_ID", info.id.to_string());
        self.set("BARMAN_PREVIOUS_ID", previous.unwrap_or_default());
        self.set("BARMAN_NEXT_ID", next.unwrap_or_default());
        self.set("BARMAN_STATUS", info.status.name());
        self.set("BARMAN_ERROR", info.error.clone().unwrap_or_default());
    }

    /// Sets the variables that describe a WAL file (Barman's `env_from_wal_info`):
    /// `BARMAN_SEGMENT` (its name), `BARMAN_FILE` (its path), `BARMAN_SIZE` (bytes),
    /// `BARMAN_TIMESTAMP` (its mtime, seconds since the epoch), `BARMAN_COMPRESSION`
    /// (empty for none) and `BARMAN_ERROR` (empty without one).
    pub fn with_wal(
        &mut self,
        name: &str,
        file: &Path,
        size: u64,
        time: f64,
        compression: Option<&str>,
        error: Option<&str>,
    ) {
        self.set("BARMAN_SEGMENT", name);
        self.set("BARMAN_FILE", file.display().to_string());
        self.set("BARMAN_SIZE", size.to_string());
        self.set("BARMAN_TIMESTAMP", format!("{time:?}"));
        self.set("BARMAN_COMPRESSION", compression.unwrap_or_default());
        self.set("BARMAN_ERROR", error.unwrap_or_default());
    }

    /// Adds (or replaces) a variable.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.into()));
    }

    fn exec(&mut self, script: &str, option: &str, phase: &str, retry: bool) -> Option<i32> {
        let hook = if retry {
            format!(
                "{}_retry_script",
                self.name.strip_suffix("_script").unwrap_or(self.name)
            )
        } else {
            self.name.to_owned()
        };
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(script);
        cmd.env("BARMAN_VERSION", env!("CARGO_PKG_VERSION"))
            .env("BARMAN_SERVER", &self.server)
            .env("BARMAN_CONFIGURATION", &self.config_file)
            .env("BARMAN_HOOK", hook)
            .env("BARMAN_RETRY", if retry { "1" } else { "0" })
            .env("BARMAN_PHASE", phase);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        match cmd.output() {
            Ok(out) => {
                let code = out.status.code().unwrap_or(-1);
                if code != 0 {
                    let detail = String::from_utf8_lossy(&out.stderr);
                    self.warnings.push(format!(
                        "{option} {script:?} returned {code}{}{}",
                        if detail.trim().is_empty() { "" } else { ": " },
                        detail.trim().lines().last().unwrap_or("")
                    ));
                }
                Some(code)
            }
            Err(e) => {
                self.warnings
                    .push(format!("{option} {script:?} could not run: {e}"));
                None
            }
        }
    }

    fn script(&self, phase: &str, retry: bool) -> Option<(String, String)> {
        let i = match (phase, retry) {
            ("pre", false) => 0,
            ("post", false) => 1,
            ("pre", true) => 2,
            ("post", true) => 3,
            _ => return None,
        };
        let script = self.scripts[i].clone()?;
        let base = self.name.strip_suffix("_script").unwrap_or(self.name);
        let option = if retry {
            format!("{phase}_{base}_retry_script")
        } else {
            format!("{phase}_{}", self.name)
        };
        Some((script, option))
    }

    /// [`run`](Self::run) for async operations: the script runs on tokio's blocking
    /// pool, never on the caller's runtime.
    pub async fn run_async(&mut self, phase: &'static str) -> Option<i32> {
        self.script(phase, false)?;
        self.off_runtime(move |h| h.run(phase)).await.flatten()
    }

    /// [`run_retry`](Self::run_retry) for async operations: the script runs, and the
    /// pauses between its runs are taken, on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// [`Error::HookAborted`] when it exits 63 (abort, stop the operation).
    pub async fn run_retry_async(&mut self, phase: &'static str) -> Result<()> {
        if self.script(phase, true).is_none() {
            return Ok(());
        }
        self.off_runtime(move |h| h.run_retry(phase))
            .await
            .unwrap_or(Ok(()))
    }

    /// Runs `f` on a copy of the hooks on the blocking pool, then keeps the copy (its
    /// warnings); `None`, with a warning, when that task failed.
    async fn off_runtime<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Hooks) -> T + Send + 'static,
    ) -> Option<T> {
        let mut hooks = self.clone();
        let ran = crate::blocking("running the hook scripts of", self.name, move || {
            let out = f(&mut hooks);
            (hooks, out)
        })
        .await;
        match ran {
            Ok((hooks, out)) => {
                *self = hooks;
                Some(out)
            }
            Err(e) => {
                self.warnings.push(e.to_string());
                None
            }
        }
    }

    /// Runs `<phase>_<name>` if configured; its failure is only a warning. Returns its
    /// exit code.
    pub fn run(&mut self, phase: &str) -> Option<i32> {
        let (script, option) = self.script(phase, false)?;
        self.exec(&script, &option, phase, false)
    }

    /// Runs `<phase>_<name without _script>_retry_script` if configured, again and again
    /// until it exits 0 or 62 (abort, go on).
    ///
    /// # Errors
    ///
    /// [`Error::HookAborted`] when it exits 63 (abort, stop the operation).
    pub fn run_retry(&mut self, phase: &str) -> Result<()> {
        let Some((script, option)) = self.script(phase, true) else {
            return Ok(());
        };
        let mut failures = 0u32;
        loop {
            match self.exec(&script, &option, phase, true) {
                Some(0) => return Ok(()),
                Some(EXIT_ABORT_CONTINUE) => {
                    self.warnings.push(format!(
                        "{option} was aborted (got exit status {EXIT_ABORT_CONTINUE}, barman resumes)"
                    ));
                    return Ok(());
                }
                Some(EXIT_ABORT_STOP) => {
                    return Err(Error::HookAborted {
                        server: self.server.clone(),
                        option,
                    });
                }
                _ => {
                    failures += 1;
                    let pause = if failures.is_multiple_of(6) {
                        self.retry_pause.1
                    } else {
                        self.retry_pause.0
                    };
                    std::thread::sleep(pause);
                }
            }
        }
    }

    /// The post phase as Barman runs it after an operation: the retry script (a stop
    /// request is ignored with a warning, the operation being over), then the script.
    pub fn run_post(&mut self) {
        if let Err(e) = self.run_retry("post") {
            self.warnings.push(format!("Ignoring stop request: {e}"));
        }
        self.run("post");
    }
}
