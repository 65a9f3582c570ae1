//! The log file: `log_file`, `log_level` and `log_format` of the `[barman]` section, as
//! Barman writes it (Python's `logging` with a `WatchedFileHandler`).
//!
//! - Every line is appended with one `write` on a file opened in append mode, so lines
//!   of concurrent `barman` processes (cron, `archive_command`) never interleave. The
//!   file is reopened by path on every run, which is what log rotation needs.
//! - A missing file is created with mode 0600 (its directory too, as Barman's `mkpath`).
//! - A log file that cannot be opened is a one-line warning on standard error; the
//!   command runs on without a log.
//! - Without `log_file` nothing is logged (Barman would log to standard error, which
//!   would change the console output).
//! - `log_format` is Python's `%`-style: `%(asctime)s`, `%(process)d`, `%(name)s`,
//!   `%(levelname)-8s`, `%(message)s`… with flags, width and precision.
//! - `-d/--debug` prints the DEBUG messages of the run on standard error as
//!   `DEBUG: message`, as Barman's console writer does; it does not change the level of
//!   the log file (`--log-level` does).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Python's `logging.DEBUG`.
pub const DEBUG: i64 = 10;
/// Python's `logging.INFO`.
pub const INFO: i64 = 20;
/// Python's `logging.WARNING`.
pub const WARNING: i64 = 30;
/// Python's `logging.ERROR`.
pub const ERROR: i64 = 40;
/// Python's `logging.CRITICAL`.
pub const CRITICAL: i64 = 50;

/// The level names `--log-level` accepts, as Barman lists them.
pub const LEVEL_NAMES: [&str; 6] = ["NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];

/// Barman's `parse_log_level`: a number, or a level name in any case (`WARN` and
/// `FATAL` included, as Python's `getLevelName` knows them).
pub fn parse_level(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Some(n);
    }
    match t.to_ascii_uppercase().as_str() {
        "NOTSET" => Some(0),
        "DEBUG" => Some(DEBUG),
        "INFO" => Some(INFO),
        "WARNING" | "WARN" => Some(WARNING),
        "ERROR" => Some(ERROR),
        "CRITICAL" | "FATAL" => Some(CRITICAL),
        _ => None,
    }
}

/// Python's `getLevelName(level)`.
pub fn level_name(level: i64) -> String {
    match level {
        0 => "NOTSET".to_owned(),
        DEBUG => "DEBUG".to_owned(),
        INFO => "INFO".to_owned(),
        WARNING => "WARNING".to_owned(),
        ERROR => "ERROR".to_owned(),
        CRITICAL => "CRITICAL".to_owned(),
        n => format!("Level {n}"),
    }
}

/// One log record, with the attributes a `log_format` may name.
#[derive(Clone, Debug)]
pub struct Record<'a> {
    /// `%(asctime)s`: local time as `YYYY-MM-DD HH:MM:SS,mmm`.
    pub asctime: String,
    /// `%(created)f`: seconds since the epoch.
    pub created: f64,
    /// `%(process)d`.
    pub process: u32,
    /// `%(name)s`: the logger (`barman.cli`, `barman.wal_archiver`…).
    pub name: &'a str,
    /// `%(levelno)s`.
    pub level: i64,
    /// `%(message)s`.
    pub message: &'a str,
}

enum Arg {
    Str(String),
    Int(i64),
    Float(f64),
}

impl Record<'_> {
    fn arg(&self, key: &str) -> Option<Arg> {
        #[allow(clippy::cast_possible_truncation)]
        let msecs = ((self.created * 1000.0).round() as i64).rem_euclid(1000) as f64;
        Some(match key {
            "asctime" => Arg::Str(self.asctime.clone()),
            "created" => Arg::Float(self.created),
            "msecs" => Arg::Float(msecs),
            "relativeCreated" => Arg::Float(0.0),
            "process" => Arg::Int(i64::from(self.process)),
            "processName" => Arg::Str("MainProcess".to_owned()),
            "thread" => Arg::Int(0),
            "threadName" => Arg::Str("MainThread".to_owned()),
            "name" => Arg::Str(self.name.to_owned()),
            "module" => Arg::Str(self.name.rsplit('.').next().unwrap_or(self.name).to_owned()),
            "levelname" => Arg::Str(level_name(self.level)),
            "levelno" => Arg::Int(self.level),
            "message" => Arg::Str(self.message.to_owned()),
            _ => return None,
        })
    }
}

/// Formats `record` with a Python `%`-style `format` (`%(key)[flags][width][.prec]conv`,
/// `%%`). An unknown key or conversion is copied as written.
pub fn format_record(format: &str, record: &Record<'_>) -> String {
    let mut out = String::with_capacity(format.len() + record.message.len());
    let mut rest = format;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        if let Some(r) = rest.strip_prefix("%%") {
            out.push('%');
            rest = r;
            continue;
        }
        match format_spec(rest, record) {
            Some((text, used)) => {
                out.push_str(&text);
                rest = &rest[used..];
            }
            None => {
                out.push('%');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `spec` starts with `%`: the formatted value and the bytes of `spec` it used.
fn format_spec(spec: &str, record: &Record<'_>) -> Option<(String, usize)> {
    let after = spec.strip_prefix("%(")?;
    let close = after.find(')')?;
    let key = &after[..close];
    let tail = &after[close + 1..];
    let bytes = tail.as_bytes();
    let mut i = 0;
    let (mut left, mut zero, mut plus, mut space) = (false, false, false, false);
    while i < bytes.len() {
        match bytes[i] {
            b'-' => left = true,
            b'0' => zero = true,
            b'+' => plus = true,
            b' ' => space = true,
            b'#' => {}
            _ => break,
        }
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        tail[start..*i].parse::<usize>().ok()
    };
    let width = digits(&mut i);
    let precision = if bytes.get(i) == Some(&b'.') {
        i += 1;
        Some(digits(&mut i).unwrap_or(0))
    } else {
        None
    };
    while matches!(bytes.get(i), Some(b'h' | b'l' | b'L')) {
        i += 1;
    }
    let conv = *bytes.get(i)?;
    i += 1;
    let arg = record.arg(key)?;
    let sign = |neg: bool| {
        if neg {
            "-"
        } else if plus {
            "+"
        } else if space {
            " "
        } else {
            ""
        }
    };
    let (body, numeric) = match (conv, arg) {
        (b's', a) => {
            let s = match a {
                Arg::Str(s) => s,
                Arg::Int(n) => n.to_string(),
                Arg::Float(f) => python_float_str(f),
            };
            let s = match precision {
                Some(p) => s.chars().take(p).collect(),
                None => s,
            };
            (s, false)
        }
        (b'r' | b'a', a) => {
            let s = match a {
                Arg::Str(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
                Arg::Int(n) => n.to_string(),
                Arg::Float(f) => python_float_str(f),
            };
            (s, false)
        }
        (b'd' | b'i' | b'u', a) => {
            let n = match a {
                Arg::Int(n) => n,
                #[allow(clippy::cast_possible_truncation)]
                Arg::Float(f) => f.trunc() as i64,
                Arg::Str(_) => return None,
            };
            (format!("{}{}", sign(n < 0), n.unsigned_abs()), true)
        }
        (b'f' | b'F' | b'e' | b'E' | b'g' | b'G', a) => {
            let f = match a {
                #[allow(clippy::cast_precision_loss)]
                Arg::Int(n) => n as f64,
                Arg::Float(f) => f,
                Arg::Str(_) => return None,
            };
            let p = precision.unwrap_or(6);
            let s = match conv {
                b'e' | b'E' => format!("{:.*e}", p, f.abs()),
                _ => format!("{:.*}", p, f.abs()),
            };
            (format!("{}{s}", sign(f < 0.0)), true)
        }
        (b'x' | b'X' | b'o', Arg::Int(n)) => {
            let s = match conv {
                b'x' => format!("{:x}", n.unsigned_abs()),
                b'X' => format!("{:X}", n.unsigned_abs()),
                _ => format!("{:o}", n.unsigned_abs()),
            };
            (format!("{}{s}", sign(n < 0)), true)
        }
        _ => return None,
    };
    let width = width.unwrap_or(0);
    let len = body.chars().count();
    let text = if len >= width {
        body
    } else if left {
        format!("{body}{}", " ".repeat(width - len))
    } else if zero && numeric {
        let (s, digits) = body.split_at(
            body.find(|c: char| c.is_ascii_digit())
                .unwrap_or(body.len()),
        );
        format!("{s}{}{digits}", "0".repeat(width - len))
    } else {
        format!("{}{body}", " ".repeat(width - len))
    };
    Some((text, 2 + close + 1 + i))
}

/// Python's `str(float)` for the values a record holds.
fn python_float_str(f: f64) -> String {
    let s = f.to_string();
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

/// What the log needs to know, read from the configuration and the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `log_file`; `None`: no log file.
    pub file: Option<PathBuf>,
    /// The level: `--log-level`, else `log_level`.
    pub level: i64,
    /// `log_format`.
    pub format: String,
    /// `-d/--debug`: DEBUG messages also on standard error.
    pub debug_console: bool,
}

#[derive(Debug)]
struct Logger {
    file: Option<Mutex<File>>,
    level: i64,
    format: String,
    debug_console: bool,
    source: Mutex<&'static str>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Opens the log file for appending, creating it (mode 0600) and its directory if
/// missing.
///
/// # Errors
///
/// The I/O error of the directory creation or the open.
pub fn open_log_file(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.is_dir()
    {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

/// Sets up the log of this process (the first call wins). A log file that cannot be
/// opened is reported on standard error, once, and the run goes on without it.
pub fn init(settings: Settings) {
    let file = settings
        .file
        .as_deref()
        .and_then(|p| match open_log_file(p) {
            Ok(f) => Some(Mutex::new(f)),
            Err(e) => {
                eprintln!(
                    "WARNING: cannot open the log file {}: {e} (continuing without a log)",
                    p.display()
                );
                None
            }
        });
    let _ = LOGGER.set(Logger {
        file,
        level: settings.level,
        format: settings.format,
        debug_console: settings.debug_console,
        source: Mutex::new("barman.cli"),
    });
}

/// Names the logger of the messages that follow (Barman names it after the module that
/// prints: `barman.server`, `barman.wal_archiver`…).
pub fn set_source(name: &'static str) {
    if let Some(l) = LOGGER.get()
        && let Ok(mut s) = l.source.lock()
    {
        *s = name;
    }
}

fn source() -> &'static str {
    LOGGER
        .get()
        .and_then(|l| l.source.lock().ok().map(|s| *s))
        .unwrap_or("barman.cli")
}

/// The local time as Python's `asctime` and the seconds since the epoch.
fn now() -> (String, f64) {
    let now = jiff::ZonedDateTime::now();
    let ts = now.timestamp();
    let millis = ts.subsec_millisecond();
    let created = ts.as_millisecond() as f64 / 1000.0;
    (
        format!("{},{millis:03}", now.strftime("%Y-%m-%d %H:%M:%S")),
        created,
    )
}

/// Logs `message` at `level` under the logger `name`.
pub fn log_as(level: i64, name: &str, message: &str) {
    let Some(l) = LOGGER.get() else { return };
    let Some(file) = &l.file else { return };
    if level < l.level {
        return;
    }
    let (asctime, created) = now();
    let record = Record {
        asctime,
        created,
        process: std::process::id(),
        name,
        level,
        message,
    };
    let mut line = format_record(&l.format, &record);
    line.push('\n');
    if let Ok(mut f) = file.lock() {
        // A log that cannot be written is not a reason to fail the command.
        let _ = f.write_all(line.as_bytes());
    }
}

/// Barman's `output.debug`: prints `DEBUG: message` on standard error with `-d`, and
/// logs at DEBUG.
pub fn debug(message: &str) {
    debug_as(source(), message);
}

/// [`debug`] under the logger `name`.
pub fn debug_as(name: &str, message: &str) {
    if LOGGER.get().is_some_and(|l| l.debug_console) {
        eprintln!("DEBUG: {message}");
    }
    log_as(DEBUG, name, message);
}

/// Logs at INFO.
pub fn info(message: &str) {
    log_as(INFO, source(), message);
}

/// Logs at WARNING.
pub fn warning(message: &str) {
    log_as(WARNING, source(), message);
}

/// Logs at ERROR.
pub fn error(message: &str) {
    log_as(ERROR, source(), message);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec<'a>(name: &'a str, level: i64, message: &'a str) -> Record<'a> {
        Record {
            asctime: "2024-05-01 10:11:12,034".to_owned(),
            created: 1_714_558_272.034,
            process: 4242,
            name,
            level,
            message,
        }
    }

    #[test]
    fn barman_default_format() {
        let f = "%(asctime)s [%(process)s] %(name)s %(levelname)s: %(message)s";
        assert_eq!(
            format_record(f, &rec("barman.cli", INFO, "hello")),
            "2024-05-01 10:11:12,034 [4242] barman.cli INFO: hello"
        );
    }

    #[test]
    fn flags_width_precision_and_escapes() {
        let r = rec("barman.server", WARNING, "m");
        assert_eq!(format_record("%(levelname)-8s|", &r), "WARNING |");
        assert_eq!(format_record("%(levelname)8s|", &r), " WARNING|");
        assert_eq!(format_record("%(levelname).4s", &r), "WARN");
        assert_eq!(format_record("%(process)08d", &r), "00004242");
        assert_eq!(format_record("%(levelno)d 100%%", &r), "30 100%");
        assert_eq!(format_record("%(msecs)03d", &r), "034");
        assert_eq!(format_record("%(module)s", &r), "server");
        assert_eq!(format_record("%(bogus)s %", &r), "%(bogus)s %");
        assert_eq!(format_record("%(name)r", &r), "'barman.server'");
    }

    #[test]
    fn levels() {
        assert_eq!(parse_level("debug"), Some(DEBUG));
        assert_eq!(parse_level("WARN"), Some(WARNING));
        assert_eq!(parse_level("25"), Some(25));
        assert_eq!(parse_level("loud"), None);
        assert_eq!(level_name(25), "Level 25");
        assert_eq!(level_name(CRITICAL), "CRITICAL");
    }
}
