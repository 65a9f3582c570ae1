//! Loading a whole configuration: the main file, the included files, the servers and
//! models, and the checks across them.

use std::collections::BTreeMap;

use super::error::ConfigError;
use super::ini::{Ini, IniError, IniValue, OptionRef};
use super::options::{EXTENSION_OPTIONS, GLOBAL_OPTIONS, SERVER_OPTIONS, python_int};
use super::server::{ModelConfig, ServerConfig, ServerContext, config_get};

/// Where the configuration files come from. The library never touches the filesystem:
/// the caller (the CLI) implements this over the real one; [`MemorySource`] serves tests.
pub trait ConfigSource {
    /// The text of the file at `path`; `None` if it does not exist or is not a regular
    /// file.
    fn read(&self, path: &str) -> Option<String>;

    /// The names of the entries of directory `dir` (as written in
    /// `configuration_files_directory`: the implementation expands a leading `~`);
    /// `None` if it is not a directory.
    fn list_dir(&self, dir: &str) -> Option<Vec<String>>;

    /// The canonical form of `path`, symbolic links resolved (Python's
    /// `os.path.realpath`), used to find directories shared by two options. The default
    /// only normalises the text (`//`, `/./`, trailing `/`).
    fn real_path(&self, path: &str) -> String {
        normalise_path(path)
    }
}

/// Removes empty and `.` components and a trailing `/` (no `..` handling, no symlinks).
///
/// ```
/// assert_eq!(barman_core::config::normalise_path("/srv//barman/./pg/"), "/srv/barman/pg");
/// ```
pub fn normalise_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let joined = parts.join("/");
    if path.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// An in-memory [`ConfigSource`]: a map from path to text.
///
/// ```
/// use barman_core::config::{ConfigSource, MemorySource};
/// let src = MemorySource::default().with("/etc/barman.d/pg.conf", "[pg]\n");
/// assert_eq!(src.list_dir("/etc/barman.d"), Some(vec!["pg.conf".to_owned()]));
/// assert_eq!(src.list_dir("/etc/nothing"), None);
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    files: BTreeMap<String, String>,
}

impl MemorySource {
    /// Adds a file.
    pub fn with(mut self, path: &str, text: &str) -> Self {
        self.files.insert(path.to_owned(), text.to_owned());
        self
    }
}

impl ConfigSource for MemorySource {
    fn read(&self, path: &str) -> Option<String> {
        self.files.get(path).cloned()
    }

    fn list_dir(&self, dir: &str) -> Option<Vec<String>> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        let names: Vec<String> = self
            .files
            .keys()
            .filter_map(|p| p.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_owned)
            .collect();
        (!names.is_empty()).then_some(names)
    }
}

/// What to do with options Barman does not know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnknownOptions {
    /// Fail with [`ConfigError::UnknownOption`] (the default).
    #[default]
    Error,
    /// Add a warning, as Barman does ("Invalid configuration option").
    Warn,
}

/// Options of [`Config::load_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadOptions {
    /// What to do with unknown options.
    pub unknown_options: UnknownOptions,
    /// Skip the per-server consistency rules (Barman checks them when it builds a
    /// `Server`, and disables the server; `barman diagnose` shows the configuration of
    /// such servers anyway). Invalid values and path conflicts are still errors.
    pub skip_server_checks: bool,
}

impl LoadOptions {
    /// Sets [`LoadOptions::unknown_options`].
    ///
    /// ```
    /// use barman_core::config::{LoadOptions, UnknownOptions};
    /// let o = LoadOptions::default().unknown_options(UnknownOptions::Warn);
    /// assert_eq!(o.unknown_options, UnknownOptions::Warn);
    /// ```
    pub fn unknown_options(mut self, v: UnknownOptions) -> Self {
        self.unknown_options = v;
        self
    }

    /// Sets [`LoadOptions::skip_server_checks`].
    ///
    /// ```
    /// let o = barman_core::config::LoadOptions::default().skip_server_checks(true);
    /// assert!(o.skip_server_checks);
    /// ```
    pub fn skip_server_checks(mut self, v: bool) -> Self {
        self.skip_server_checks = v;
        self
    }
}

/// The options of the `[barman]` section that only Barman itself uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalConfig {
    /// The main configuration file.
    pub config_file: String,
    /// `barman_home` (required).
    pub barman_home: String,
    /// `barman_user` (default `barman`).
    pub barman_user: String,
    /// Whether the configuration sets `barman_user` (barman-rs enforces it only then;
    /// Barman enforces its default `barman` too).
    pub barman_user_set: bool,
    /// `barman_lock_directory` (default `barman_home`).
    pub barman_lock_directory: String,
    /// `lock_directory_cleanup` (default true).
    pub lock_directory_cleanup: bool,
    /// `config_changes_queue` (default `<barman_home>/cfg_changes.queue`).
    pub config_changes_queue: String,
    /// `log_file` (no default: no log file).
    pub log_file: Option<String>,
    /// `log_level` as written (default `INFO`): a level name or a number.
    pub log_level: String,
    /// `log_format` (default Barman's `%(asctime)s [%(process)s] %(name)s %(levelname)s: %(message)s`).
    pub log_format: String,
    /// `configuration_files_directory`, if set.
    pub configuration_files_directory: Option<String>,
}

/// A loaded Barman configuration: global options, servers and models.
///
/// # Examples
///
/// ```
/// use barman_core::config::{Config, MemorySource};
///
/// let main = "[barman]\nbarman_home = /var/lib/barman\nconfiguration_files_directory = /etc/barman.d\n";
/// let src = MemorySource::default()
///     .with("/etc/barman.d/pg.conf", "[pg]\nconninfo = host=pg\nbackup_method = postgres\narchiver = on\nslot_name = barman\n");
/// let config = Config::load("/etc/barman.conf", main, &src)?;
/// assert_eq!(config.global().barman_user, "barman");
/// assert_eq!(config.server_names().collect::<Vec<_>>(), ["pg"]);
/// assert_eq!(config.server("pg").unwrap().options().streaming_conninfo.as_deref(), Some("host=pg"));
///
/// let err = Config::load("/etc/barman.conf", "[barman]\nbarman_home = /b\n[pg]\nconninfo = x\nminimum_redundancy = two\n", &src).unwrap_err();
/// assert_eq!(err.to_string(), "/etc/barman.conf, line 5, [pg] minimum_redundancy: invalid value \"two\": expected a non-negative integer");
/// # Ok::<(), barman_core::config::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    global: GlobalConfig,
    ini: Ini,
    files: Vec<String>,
    servers: Vec<ServerConfig>,
    models: Vec<ModelConfig>,
    warnings: Vec<String>,
    unsupported: Vec<String>,
}

const DEFAULT_LOG_FORMAT: &str = "%(asctime)s [%(process)s] %(name)s %(levelname)s: %(message)s";
const LOG_LEVELS: [&str; 8] = [
    "CRITICAL", "FATAL", "ERROR", "WARN", "WARNING", "INFO", "DEBUG", "NOTSET",
];

/// Python's `BasicInterpolation.before_set` check.
fn check_percent(value: &str) -> Result<(), String> {
    let mut tmp = value.replace("%%", "");
    while let Some(start) = tmp.find("%(") {
        match tmp[start + 2..].find(')') {
            Some(rel) if rel > 0 && tmp[start + 2 + rel + 1..].starts_with('s') => {
                tmp.replace_range(start..start + 2 + rel + 2, "");
            }
            _ => break,
        }
    }
    if let Some(pos) = tmp.find('%') {
        return Err(format!(
            "invalid interpolation syntax in {value:?} at position {pos}"
        ));
    }
    Ok(())
}

impl Config {
    /// Loads the configuration from the text of the main file, as Barman does: the main
    /// file, then every `*.conf` of `configuration_files_directory` (sorted by name),
    /// then `<barman_home>/.barman.auto.conf` if it exists; unknown options are errors.
    ///
    /// # Errors
    ///
    /// See [`Config::load_with`].
    pub fn load(
        main_path: &str,
        main_text: &str,
        source: &dyn ConfigSource,
    ) -> Result<Config, ConfigError> {
        Self::load_with(main_path, main_text, source, LoadOptions::default())
    }

    /// [`Config::load`] with options.
    ///
    /// # Errors
    ///
    /// The first problem found, as a [`ConfigError`]: syntax, interpolation, missing
    /// `barman_home`, an included file with a `[barman]` section, a server named `all`,
    /// an invalid value, an unknown option (unless [`UnknownOptions::Warn`]), a model
    /// without `cluster`, a broken consistency rule, a path shared by two directories.
    pub fn load_with(
        main_path: &str,
        main_text: &str,
        source: &dyn ConfigSource,
        options: LoadOptions,
    ) -> Result<Config, ConfigError> {
        let mut ini = Ini::default();
        let mut warnings = Vec::new();
        merge(&mut ini, main_path, main_text)?;
        let missing = || ConfigError::MissingBarmanHome {
            file: main_path.to_owned(),
        };
        if !ini.has_section("barman") {
            return Err(missing());
        }
        let global_items = items(&ini, "barman")?;
        let get = |ini: &Ini, key: &str| -> Result<Option<String>, ConfigError> {
            Ok(config_get(ini, "barman", key, &[], None)?.map(|(v, _)| v))
        };
        let barman_home = get(&ini, "barman_home")?
            .filter(|h| !h.is_empty())
            .ok_or_else(missing)?;
        let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
        let cleanup_text = non_empty(get(&ini, "lock_directory_cleanup")?);
        let lock_directory_cleanup = match cleanup_text.as_deref() {
            None => true,
            Some(t) => match t.to_ascii_lowercase().as_str() {
                "true" | "t" | "yes" | "1" | "on" => true,
                "false" | "f" | "no" | "0" | "off" => false,
                _ => {
                    return Err(invalid(
                        &ini,
                        "lock_directory_cleanup",
                        t,
                        "expected a boolean (true/t/yes/1/on, false/f/no/0/off)",
                    ));
                }
            },
        };
        let log_level = non_empty(get(&ini, "log_level")?).unwrap_or_else(|| "INFO".to_owned());
        if python_int(&log_level).is_none()
            && !LOG_LEVELS.contains(&log_level.to_uppercase().as_str())
        {
            return Err(invalid(
                &ini,
                "log_level",
                &log_level,
                &format!("expected a number or one of {}", LOG_LEVELS.join(", ")),
            ));
        }
        let barman_user = non_empty(get(&ini, "barman_user")?);
        let global = GlobalConfig {
            config_file: main_path.to_owned(),
            barman_user_set: barman_user.is_some(),
            barman_user: barman_user.unwrap_or_else(|| "barman".to_owned()),
            barman_lock_directory: non_empty(get(&ini, "barman_lock_directory")?)
                .unwrap_or_else(|| barman_home.clone()),
            lock_directory_cleanup,
            config_changes_queue: non_empty(get(&ini, "config_changes_queue")?)
                .unwrap_or_else(|| format!("{barman_home}/cfg_changes.queue")),
            log_file: get(&ini, "log_file")?,
            log_level,
            log_format: non_empty(get(&ini, "log_format")?)
                .unwrap_or_else(|| DEFAULT_LOG_FORMAT.to_owned()),
            configuration_files_directory: non_empty(get(&ini, "configuration_files_directory")?),
            barman_home,
        };
        let mut files = vec![main_path.to_owned()];
        let mut include = |ini: &mut Ini, path: &str, warnings: &mut Vec<String>| {
            let Some(text) = source.read(path) else {
                warnings.push(format!("Discarding configuration file: {path} (not found)"));
                return Ok(());
            };
            merge(ini, path, &text)?;
            files.push(path.to_owned());
            if items(ini, "barman")? != global_items {
                return Err(ConfigError::GlobalSectionInInclude {
                    file: path.to_owned(),
                });
            }
            Ok::<(), ConfigError>(())
        };
        if let Some(dir) = &global.configuration_files_directory {
            match source.list_dir(dir) {
                None => warnings.push(format!(
                    "Ignoring the \"configuration_files_directory\" option as \"{dir}\" is not a directory"
                )),
                Some(names) => {
                    let mut paths: Vec<String> = names
                        .iter()
                        .filter(|n| n.ends_with(".conf") && !n.starts_with('.'))
                        .map(|n| {
                            if dir.ends_with('/') {
                                format!("{dir}{n}")
                            } else {
                                format!("{dir}/{n}")
                            }
                        })
                        .collect();
                    paths.sort();
                    for path in paths {
                        include(&mut ini, &path, &mut warnings)?;
                    }
                }
            }
        }
        let autoconf = format!("{}/.barman.auto.conf", global.barman_home);
        if source.read(&autoconf).is_some() {
            include(&mut ini, &autoconf, &mut warnings)?;
        }

        let unsupported = Vec::new();
        let mut config = Config {
            global,
            ini,
            files,
            servers: Vec::new(),
            models: Vec::new(),
            warnings,
            unsupported,
        };
        config.check_unknown("barman", "global", options)?;
        config.populate(options, source)?;
        Ok(config)
    }

    fn check_unknown(
        &mut self,
        section: &str,
        kind: &'static str,
        options: LoadOptions,
    ) -> Result<(), ConfigError> {
        for option in self.ini.options(section) {
            let known = SERVER_OPTIONS
                .iter()
                .chain(EXTENSION_OPTIONS)
                .any(|s| s.name == option && (kind != "model" || s.in_models()))
                || (kind == "global" && GLOBAL_OPTIONS.contains(&option.as_str()))
                || (kind == "model" && option == "model");
            if known {
                continue;
            }
            let raw = self.ini.get_raw(section, &option);
            let at = Box::new(OptionRef {
                file: raw.map(|v| v.file.clone()).unwrap_or_default(),
                line: raw.map_or(0, |v| v.line),
                section: section.to_owned(),
                option: option.clone(),
                value: raw.map(|v| v.raw.clone()).unwrap_or_default(),
            });
            match options.unknown_options {
                UnknownOptions::Error => return Err(ConfigError::UnknownOption { at, kind }),
                UnknownOptions::Warn => self.warnings.push(format!(
                    "{}, line {}: Invalid configuration option \"{option}\" in [{section}] section.",
                    at.file, at.line
                )),
            }
        }
        Ok(())
    }

    fn section_file(&self, section: &str) -> String {
        self.ini
            .options(section)
            .first()
            .and_then(|o| self.ini.get_raw(section, o))
            .map_or_else(|| self.global.config_file.clone(), |v| v.file.clone())
    }

    fn populate(
        &mut self,
        options: LoadOptions,
        source: &dyn ConfigSource,
    ) -> Result<(), ConfigError> {
        let sections: Vec<String> = self
            .ini
            .sections()
            .filter(|s| *s != "barman")
            .map(str::to_owned)
            .collect();
        for section in &sections {
            if section == "all" {
                return Err(ConfigError::ReservedName {
                    file: self.section_file(section),
                    name: section.clone(),
                });
            }
            items(&self.ini, section)?;
            let is_model = match self.ini.get(section, "model", &[])? {
                None => false,
                Some(v) => match v.to_ascii_lowercase().as_str() {
                    "true" | "t" | "yes" | "1" | "on" => true,
                    "false" | "f" | "no" | "0" | "off" => false,
                    _ => {
                        let raw = self.ini.get_raw(section, "model");
                        return Err(ConfigError::InvalidValue {
                            at: Box::new(OptionRef {
                                file: raw.map(|r| r.file.clone()).unwrap_or_default(),
                                line: raw.map_or(0, |r| r.line),
                                section: section.clone(),
                                option: "model".into(),
                                value: v,
                            }),
                            reason: "expected a boolean (true/t/yes/1/on, false/f/no/0/off)".into(),
                        });
                    }
                },
            };
            if is_model {
                self.check_unknown(section, "model", options)?;
                self.models.push(ModelConfig::resolve(&self.ini, section)?);
            } else {
                self.check_unknown(section, "server", options)?;
                if let Some(v) = self.ini.get_raw(section, "disabled") {
                    self.warnings.push(format!(
                        "{}, line {}, [{section}] disabled: Barman computes this option; the value is ignored",
                        v.file, v.line
                    ));
                }
                let ctx = ServerContext {
                    barman_home: &self.global.barman_home,
                    barman_lock_directory: &self.global.barman_lock_directory,
                    lock_directory_cleanup: self.global.lock_directory_cleanup,
                    config_changes_queue: &self.global.config_changes_queue,
                };
                self.servers
                    .push(ServerConfig::resolve(&self.ini, section, &ctx)?);
            }
        }
        self.check_paths(source)?;
        // Models made active by `barman config-switch`.
        for i in 0..self.servers.len() {
            let Some(dir) = &self.servers[i].options().backup_directory else {
                continue;
            };
            let Some(text) = source.read(&format!("{dir}/.active-model.auto")) else {
                continue;
            };
            let active = text.trim();
            if active.is_empty() {
                continue;
            }
            let Some(model) = self.models.iter().find(|m| m.name() == active) else {
                let name = self.servers[i].name().to_owned();
                return Err(ConfigError::Inconsistent {
                    file: self.section_file(&name),
                    server: name.clone(),
                    message: format!(
                        "Model '{active}' is set as the active model for the server '{name}' but the model does not exist."
                    ),
                });
            };
            let model = model.clone();
            self.servers[i].apply_model(&model)?;
        }
        for i in 0..self.servers.len() {
            if options.skip_server_checks {
                break;
            }
            // A server that breaks a rule is disabled, as Barman disables it: the
            // others go on (one server's option must not stop everyone's archiving).
            let file = self.section_file(self.servers[i].name());
            if let Err(e) = self.servers[i].check(&file, &mut self.warnings, &mut self.unsupported)
            {
                self.warnings.push(e.to_string());
                self.servers[i].disable(e.to_string());
            }
        }
        Ok(())
    }

    /// Barman's `_check_conflicting_paths`, servers in name order.
    fn check_paths(&self, source: &dyn ConfigSource) -> Result<(), ConfigError> {
        let mut seen: BTreeMap<String, (&'static str, &str)> = BTreeMap::new();
        let mut servers: Vec<&ServerConfig> = self.servers.iter().collect();
        servers.sort_by(|a, b| a.name().cmp(b.name()));
        for server in servers {
            let o = server.options();
            for (label, path) in [
                ("backup_directory", &o.backup_directory),
                ("basebackups_directory", &o.basebackups_directory),
                ("errors_directory", &o.errors_directory),
                ("incoming_wals_directory", &o.incoming_wals_directory),
                ("streaming_wals_directory", &o.streaming_wals_directory),
                ("wals_directory", &o.wals_directory),
            ] {
                let Some(path) = path else {
                    // Barman crashes on an unset directory (TypeError).
                    return Err(ConfigError::Inconsistent {
                        file: self.section_file(server.name()),
                        server: server.name().to_owned(),
                        message: format!("{label} cannot be empty"),
                    });
                };
                if path.contains("://") {
                    continue;
                }
                let real = source.real_path(path);
                if let Some((other_label, other_server)) = seen.get(&real) {
                    return Err(ConfigError::PathConflict {
                        server: server.name().to_owned(),
                        label,
                        path: path.to_owned(),
                        other_server: (*other_server).to_owned(),
                        other_label,
                    });
                }
                seen.insert(real, (label, server.name()));
            }
        }
        Ok(())
    }

    /// The global options.
    pub fn global(&self) -> &GlobalConfig {
        &self.global
    }

    /// The servers, in the order their sections first appear.
    pub fn servers(&self) -> &[ServerConfig] {
        &self.servers
    }

    /// The server names, in order.
    pub fn server_names(&self) -> impl Iterator<Item = &str> {
        self.servers.iter().map(ServerConfig::name)
    }

    /// Server `name`.
    pub fn server(&self, name: &str) -> Option<&ServerConfig> {
        self.servers.iter().find(|s| s.name() == name)
    }

    /// The models.
    pub fn models(&self) -> &[ModelConfig] {
        &self.models
    }

    /// Model `name`.
    pub fn model(&self, name: &str) -> Option<&ModelConfig> {
        self.models.iter().find(|m| m.name() == name)
    }

    /// Options set that barman-rs does not support and only warns about (see
    /// [`UNSUPPORTED`](super::support::UNSUPPORTED)), one line each, for the
    /// administrator to see.
    pub fn unsupported(&self) -> &[String] {
        &self.unsupported
    }

    /// What Barman would also have warned about, in order (an ignored directory or file,
    /// unknown options under [`UnknownOptions::Warn`], the archiver forced on, ...).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The files read, in order.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// The merged INI (every file, `[DEFAULT]` values copied into their sections).
    pub fn ini(&self) -> &Ini {
        &self.ini
    }
}

fn invalid(ini: &Ini, option: &str, value: &str, reason: &str) -> ConfigError {
    let raw = ini.get_raw("barman", option);
    ConfigError::InvalidValue {
        at: Box::new(OptionRef {
            file: raw.map(|r| r.file.clone()).unwrap_or_default(),
            line: raw.map_or(0, |r| r.line),
            section: "barman".into(),
            option: option.into(),
            value: value.into(),
        }),
        reason: reason.into(),
    }
}

/// `ConfigParser.items(section)`: every option, interpolated (no vars).
fn items(ini: &Ini, section: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for option in ini.options(section) {
        if let Some(v) = ini.get(section, &option, &[])? {
            out.push((option, v));
        }
    }
    out.sort();
    Ok(out)
}

/// Barman's `ConfigMapping.read_config`: the file is read on its own, each of its
/// sections' options (its `[DEFAULT]` ones included) is interpolated within the file and
/// the result set into the merged configuration.
fn merge(ini: &mut Ini, path: &str, text: &str) -> Result<(), ConfigError> {
    let mut file = Ini::default();
    file.read(path, text)?;
    let sections: Vec<String> = file.sections().map(str::to_owned).collect();
    for section in sections {
        ini.add_section(&section);
        for option in file.options(&section) {
            let Some(raw) = file.get_raw(&section, &option).cloned() else {
                continue;
            };
            let Some(value) = file.get(&section, &option, &[])? else {
                continue;
            };
            if let Err(reason) = check_percent(&value) {
                return Err(IniError::InterpolationSyntax {
                    at: Box::new(OptionRef {
                        file: raw.file.clone(),
                        line: raw.line,
                        section: section.clone(),
                        option: option.clone(),
                        value: raw.raw.clone(),
                    }),
                    reason,
                }
                .into());
            }
            ini.set(&section, &option, IniValue { raw: value, ..raw });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_check_like_python() {
        assert!(check_percent("100%").is_err());
        assert!(check_percent("100%%").is_ok());
        assert!(check_percent("%(name)s/x").is_ok());
        assert!(check_percent("%()s").is_err());
        assert!(check_percent("%(x)").is_err());
    }
}
