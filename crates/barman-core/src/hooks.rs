//! Hook scripts, as Barman runs them: `pre_<name>` / `post_<name>` (a failure is a
//! warning) and `pre_<name>_retry_script` / `post_<...>` ("retry" scripts, run again
//! until they exit 0, 62 = abort and continue, or 63 = abort and stop).
//!
//! Scripts are the administrator's shell command lines from the configuration, run by
//! `/bin/sh -c`, with Barman's `BARMAN_*` variables added to the environment.

use std::process::Command;
use std::time::Duration;

use barman_catalog::BackupInfo;

use crate::config::{GlobalConfig, ServerConfig};
use crate::repo::BackupRepo;
use crate::{Error, Result};

/// A retry script's exit code asking to go on without it.
pub const EXIT_ABORT_CONTINUE: i32 = 62;
/// A retry script's exit code asking to stop the operation.
pub const EXIT_ABORT_STOP: i32 = 63;

/// The hooks of one operation of one server: `backup_script`, `recovery_script`, ...
#[derive(Debug)]
pub struct Hooks<'a> {
    server: &'a ServerConfig,
    config_file: &'a str,
    name: &'static str,
    env: Vec<(String, String)>,
    /// Pause between two runs of a failing retry script (Barman: 3 s, and 60 s every
    /// sixth failure).
    pub retry_pause: (Duration, Duration),
    /// Messages for the administrator (failed scripts, aborted retry scripts).
    pub warnings: Vec<String>,
}

impl<'a> Hooks<'a> {
    /// The `*_<name>` hooks of `server` (`name` is `backup_script`, `recovery_script`,
    /// `delete_script`, `archive_script`...).
    pub fn new(global: &'a GlobalConfig, server: &'a ServerConfig, name: &'static str) -> Self {
        Hooks {
            server,
            config_file: &global.config_file,
            name,
            env: Vec::new(),
            retry_pause: (Duration::from_secs(3), Duration::from_secs(60)),
            warnings: Vec::new(),
        }
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
        self.env.retain(|(k, _)| {
            !matches!(
                k.as_str(),
                "BARMAN_BACKUP_DIR"
                    | "BARMAN_BACKUP_INFO_PATH"
                    | "BARMAN_BACKUP_ID"
                    | "BARMAN_PREVIOUS_ID"
                    | "BARMAN_NEXT_ID"
                    | "BARMAN_STATUS"
                    | "BARMAN_ERROR"
            )
        });
        let vars = [
            (
                "BARMAN_BACKUP_DIR",
                repo.backup_path(info.id).display().to_string(),
            ),
            (
                "BARMAN_BACKUP_INFO_PATH",
                repo.info_path(info.id).display().to_string(),
            ),
            ("BARMAN_BACKUP_ID", info.id.to_string()),
            ("BARMAN_PREVIOUS_ID", previous.unwrap_or_default()),
            ("BARMAN_NEXT_ID", next.unwrap_or_default()),
            ("BARMAN_STATUS", info.status.name().to_owned()),
            ("BARMAN_ERROR", info.error.clone().unwrap_or_default()),
        ];
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.to_owned(), v)));
    }

    /// Adds a variable.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.into()));
    }

    fn exec(&mut self, script: &str, phase: &str, retry: bool) -> Option<i32> {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(script);
        cmd.env("BARMAN_VERSION", env!("CARGO_PKG_VERSION"))
            .env("BARMAN_SERVER", self.server.name())
            .env("BARMAN_CONFIGURATION", self.config_file)
            .env("BARMAN_HOOK", self.name)
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
                        "{phase}_{} {script:?} returned {code}{}{}",
                        self.name,
                        if detail.trim().is_empty() { "" } else { ": " },
                        detail.trim().lines().last().unwrap_or("")
                    ));
                }
                Some(code)
            }
            Err(e) => {
                self.warnings.push(format!(
                    "{phase}_{} {script:?} could not run: {e}",
                    self.name
                ));
                None
            }
        }
    }

    /// Runs `<phase>_<name>` if configured; its failure is only a warning. Returns its
    /// exit code.
    pub fn run(&mut self, phase: &str) -> Option<i32> {
        let option = format!("{phase}_{}", self.name);
        let script = self.server.get_str(&option)?.to_owned();
        if script.trim().is_empty() {
            return None;
        }
        self.exec(&script, phase, false)
    }

    /// Runs `<phase>_<name without _script>_retry_script` if configured, again and again
    /// until it exits 0 or 62 (abort, go on).
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] when it exits 63 (abort, stop the operation).
    pub fn run_retry(&mut self, phase: &str) -> Result<()> {
        let base = self.name.strip_suffix("_script").unwrap_or(self.name);
        let option = format!("{phase}_{base}_retry_script");
        let Some(script) = self.server.get_str(&option).map(str::to_owned) else {
            return Ok(());
        };
        if script.trim().is_empty() {
            return Ok(());
        }
        let mut failures = 0u32;
        loop {
            match self.exec(&script, phase, true) {
                Some(0) => return Ok(()),
                Some(EXIT_ABORT_CONTINUE) => {
                    self.warnings.push(format!(
                        "{option} was aborted (got exit status {EXIT_ABORT_CONTINUE}, barman resumes)"
                    ));
                    return Ok(());
                }
                Some(EXIT_ABORT_STOP) => {
                    return Err(Error::refused(format!(
                        "server {}: {option} was aborted (got exit status {EXIT_ABORT_STOP}, barman requested to stop)",
                        self.server.name()
                    )));
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
}
