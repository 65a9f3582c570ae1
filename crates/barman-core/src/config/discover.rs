//! Finding and reading the configuration on the real file system, as the `barman`
//! command does: for an application that wants Barman's configuration without the CLI.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::load::{Config, ConfigSource, normalise_path};

/// Where Barman looks for its main configuration file, in order, when none is given.
pub const CONFIG_LOCATIONS: [&str; 3] = [
    "~/.barman.conf",
    "/etc/barman.conf",
    "/etc/barman/barman.conf",
];

/// A [`ConfigSource`] reading the real file system; `~/` is the given home directory.
#[derive(Clone, Debug, Default)]
pub struct FsSource {
    home: Option<PathBuf>,
}

impl FsSource {
    /// A source where `~/` means `home` (none: `~/` is taken literally).
    pub fn new(home: Option<PathBuf>) -> FsSource {
        FsSource { home }
    }

    /// A source where `~/` means the process's `HOME`.
    pub fn from_env() -> FsSource {
        FsSource::new(std::env::var_os("HOME").map(PathBuf::from))
    }

    fn expand(&self, path: &str) -> PathBuf {
        expand_home(path, self.home.as_deref())
    }
}

fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

impl ConfigSource for FsSource {
    fn read(&self, path: &str) -> Option<String> {
        let p = self.expand(path);
        if !p.is_file() {
            return None;
        }
        std::fs::read_to_string(p).ok()
    }

    fn list_dir(&self, dir: &str) -> Option<Vec<String>> {
        let rd = std::fs::read_dir(self.expand(dir)).ok()?;
        Some(
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect(),
        )
    }

    fn real_path(&self, path: &str) -> String {
        std::fs::canonicalize(self.expand(path))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| normalise_path(path))
    }
}

/// The main configuration file: `explicit` (the command line's `-c`), else
/// `env_file` (`BARMAN_CONFIG_FILE`), else the first of [`CONFIG_LOCATIONS`] that
/// exists, `~/` being `home`.
///
/// # Errors
///
/// [`ConfigError::NoConfigFile`] when none is found.
///
/// ```
/// use barman_core::config::config_file;
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join(".barman.conf"), "[barman]\n")?;
/// let found = config_file(None, None, Some(dir.path()))?;
/// assert_eq!(found, dir.path().join(".barman.conf"));
/// let given = config_file(None, Some("/etc/other.conf".as_ref()), Some(dir.path()))?;
/// assert_eq!(given, std::path::Path::new("/etc/other.conf"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn config_file(
    explicit: Option<&Path>,
    env_file: Option<&OsStr>,
    home: Option<&Path>,
) -> Result<PathBuf, ConfigError> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    if let Some(p) = env_file {
        return Ok(PathBuf::from(p));
    }
    CONFIG_LOCATIONS
        .into_iter()
        .map(|l| expand_home(l, home))
        .find(|p| p.is_file())
        .ok_or(ConfigError::NoConfigFile)
}

impl Config {
    /// Finds the main configuration file as `barman` does ([`config_file`] with the
    /// process's `BARMAN_CONFIG_FILE` and `HOME`) and loads it with the files it
    /// includes, from the real file system.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoConfigFile`], [`ConfigError::Unreadable`], and those of
    /// [`Config::load`].
    pub fn discover(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let source = FsSource::from_env();
        let path = config_file(
            explicit,
            std::env::var_os("BARMAN_CONFIG_FILE").as_deref(),
            source.home.as_deref(),
        )?;
        Config::load_file(&path, &source)
    }

    /// Reads and loads the main configuration file at `path`, the other files through
    /// `source`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Unreadable`], and those of [`Config::load`].
    pub fn load_file(path: &Path, source: &dyn ConfigSource) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        Config::load(&file, &text, source)
    }
}
