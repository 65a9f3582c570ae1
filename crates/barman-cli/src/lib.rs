//! The `barman` command-line tools: argument parsing, one call into `barman-core` per
//! command, console or JSON output and exit codes (0 success, 1 failure, 2 usage error).
//! No logic of their own: everything a command decides lives in `barman-core`.
#![deny(missing_docs)]

use std::path::Path;
use std::process::ExitCode;

use barman_core::config::Config;

pub mod commands;
pub mod log;

/// Loads the configuration: `-c FILE`, else `BARMAN_CONFIG_FILE`, else the first of
/// `~/.barman.conf`, `/etc/barman.conf`, `/etc/barman/barman.conf` that exists
/// ([`Config::discover`]).
///
/// # Errors
///
/// A one-line message naming the file (and line, section, option for a bad value).
pub fn load_config(explicit: Option<&Path>) -> Result<Config, String> {
    Config::discover(explicit).map_err(|e| e.to_string())
}

/// Barman's `drop_privileges` for `barman_user`, when the configuration sets it: run
/// by that user, nothing to do; by root, the command runs again as that user (its
/// groups, its `HOME`), as Barman switches to it; by anyone else, refused with
/// Barman's message. barman-rs does not enforce Barman's default user `barman` when
/// the configuration names none: files then belong to whoever runs it.
///
/// # Errors
///
/// The user does not exist, this is another user, or the switch cannot be made.
pub fn run_as_barman_user(config: &Config) -> Result<(), String> {
    let global = config.global();
    if !global.barman_user_set {
        return Ok(());
    }
    let want = &global.barman_user;
    let entry = std::process::Command::new("getent")
        .args(["passwd", want])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|l| !l.is_empty())
        .ok_or_else(|| format!("the configured user '{want}' does not exist (barman_user)"))?;
    // name:password:uid:gid:gecos:home:shell
    let fields: Vec<&str> = entry.split(':').collect();
    let (Some(uid), Some(gid), Some(home)) = (
        fields.get(2).and_then(|u| u.parse::<u32>().ok()),
        fields.get(3).and_then(|g| g.parse::<u32>().ok()),
        fields.get(5),
    ) else {
        return Err(format!(
            "the entry of user '{want}' cannot be read: {entry}"
        ));
    };
    let me = barman_client::effective_uid()
        .ok_or("cannot tell which user runs barman (/proc/self/status)")?;
    if me == uid {
        return Ok(());
    }
    if me != 0 || std::env::var_os("BARMAN_RS_SWITCHED_USER").is_some() {
        return Err(format!("please run barman as '{want}' user"));
    }
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find barman itself: {e}"))?;
    let err = std::process::Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--init-groups")
        .arg("--")
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env("HOME", home)
        .env("USER", want)
        .env("LOGNAME", want)
        .env("BARMAN_RS_SWITCHED_USER", want)
        .exec();
    Err(format!(
        "please run barman as '{want}' user (switching to it with setpriv failed: {err})"
    ))
}

/// When to colour the output (`--color`), as Barman: `WARNING` yellow, `ERROR` red,
/// and `check`'s `OK` green and `FAILED` red.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    /// Never.
    Never,
    /// Always, even into a pipe or a file.
    Always,
    /// When standard output and standard error are both terminals.
    Auto,
}

static COLORED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets whether [`colored`] colours, from `--color`.
pub fn set_color(color: Color) {
    use std::io::IsTerminal;
    let on = match color {
        Color::Never => false,
        Color::Always => true,
        Color::Auto => std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
    };
    COLORED.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// `text` in the ANSI colour `code` (31 red, 32 green, 33 yellow) when colours are on.
pub fn colored(text: &str, code: u8) -> String {
    if COLORED.load(std::sync::atomic::Ordering::Relaxed) {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Output format (`-f console|json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable text, as Barman prints it.
    Console,
    /// One JSON document with stable field names.
    Json,
}

/// What every command gets: the configuration and how to print.
#[derive(Debug)]
pub struct Context {
    /// The loaded configuration.
    pub config: Config,
    /// The output format.
    pub format: Format,
    /// `-q`: print only errors.
    pub quiet: bool,
}

impl Context {
    /// Prints a message on the console format (unless quiet) and logs it at INFO, as
    /// Barman's `output.info` does.
    pub fn info(&self, line: impl std::fmt::Display) {
        let line = line.to_string();
        log::info(&line);
        self.out(line);
    }

    /// Prints a line of a command's result on the console format (unless quiet),
    /// without logging it, as Barman's `output.result` does.
    pub fn out(&self, line: impl std::fmt::Display) {
        if self.format == Format::Console && !self.quiet {
            println!("{line}");
        }
    }

    /// Prints a JSON document (on the JSON format).
    pub fn json(&self, value: &serde_json::Value) {
        if self.format == Format::Json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
        }
    }
}

/// Prints `message` as Barman prints errors (`ERROR: ...` on stderr), logs it at ERROR
/// and returns exit code 1.
pub fn fail(message: impl std::fmt::Display) -> ExitCode {
    error(message);
    ExitCode::from(1)
}

/// Prints `ERROR: message` on stderr and logs it at ERROR.
pub fn error(message: impl std::fmt::Display) {
    let message = message.to_string();
    eprintln!("{}", colored(&format!("ERROR: {message}"), 31));
    log::error(&message);
}

/// Prints `WARNING: message` on stderr and logs it at WARNING.
pub fn warning(message: impl std::fmt::Display) {
    let message = message.to_string();
    eprintln!("{}", colored(&format!("WARNING: {message}"), 33));
    log::warning(&message);
}
