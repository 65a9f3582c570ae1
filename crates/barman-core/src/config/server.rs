//! Server and model configurations: resolving each option from its sources.

use barman_catalog::RetentionPolicy;
use barman_wal::CompressionLevel;

use super::error::ConfigError;
use super::ini::{Ini, IniValue, OptionRef};
use super::options::{
    EXTENSION_OPTIONS, OptionSpec, Parsed, SERVER_OPTIONS, ServerOptions, Value, WalCompression,
    parse,
};

/// Barman's `Config.get`: the interpolated value of `option` in `section`, `None` when the
/// section or option is missing; the literal `None` becomes `none_value`; a value wrapped
/// in matching quotes is unquoted (Barman's `_QUOTE_RE`, which does not cross lines).
pub(crate) fn config_get<'a>(
    ini: &'a Ini,
    section: &str,
    option: &str,
    vars: &[(String, String)],
    none_value: Option<&str>,
) -> Result<Option<(String, Option<&'a IniValue>)>, ConfigError> {
    let Some(value) = ini.get(section, option, vars)? else {
        return Ok(None);
    };
    let origin = ini.get_raw(section, option);
    let value = if value == "None" {
        match none_value {
            Some(v) => v.to_owned(),
            None => return Ok(None),
        }
    } else {
        value
    };
    Ok(Some((unquote(&value).to_owned(), origin)))
}

/// Strips one pair of matching `'` or `"` around a single-line value.
///
/// ```
/// use barman_core::config::unquote;
/// assert_eq!(unquote("\" a b \""), " a b ");
/// assert_eq!(unquote("'x\""), "'x\"");
/// assert_eq!(unquote("''"), "");
/// ```
pub fn unquote(value: &str) -> &str {
    let bytes = value.as_bytes();
    if bytes.len() >= 2
        && matches!(bytes[0], b'"' | b'\'')
        && bytes[bytes.len() - 1] == bytes[0]
        && !value[1..value.len() - 1].contains('\n')
    {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

fn option_ref(
    origin: Option<&IniValue>,
    section: &str,
    option: &str,
    value: &str,
) -> Box<OptionRef> {
    Box::new(OptionRef {
        file: origin.map_or_else(|| "built-in default".to_owned(), |v| v.file.clone()),
        line: origin.map_or(0, |v| v.line),
        section: section.to_owned(),
        option: option.to_owned(),
        value: value.to_owned(),
    })
}

/// Runs the parser of `spec` on a text read from `section`.
///
/// Barman warns and ignores a value its parser rejects; we fail, except for an empty
/// value (written empty or `None`), which only means "not set here".
fn invoke(
    spec: &OptionSpec,
    text: &str,
    origin: Option<&IniValue>,
    section: &str,
) -> Result<Parsed, ConfigError> {
    match parse(spec.kind, text) {
        Ok(p) => Ok(p),
        Err(_) if text.is_empty() => Ok(Parsed::Unset),
        Err(reason) => Err(ConfigError::InvalidValue {
            at: option_ref(origin, section, spec.name, text),
            reason,
        }),
    }
}

/// Python's `%`-formatting of a default against the attributes computed so far (an unset
/// attribute formats as `None`).
fn format_default(default: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = default;
    while let Some(p) = rest.find('%') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        if let Some(r) = rest.strip_prefix("%%") {
            out.push('%');
            rest = r;
        } else if let Some((name, r)) = rest.strip_prefix("%(").and_then(|r| r.split_once(")s")) {
            match vars.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str("None"),
            }
            rest = r;
        } else {
            out.push('%');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The typed options of resolved `settings` (in [`SERVER_OPTIONS`]' order).
fn typed(settings: &[Option<Setting>]) -> ServerOptions {
    let values: Vec<Option<&Value>> = settings
        .iter()
        .map(|s| s.as_ref().map(|s| &s.value))
        .collect();
    ServerOptions::from_values(&values)
}

/// A resolved option: its value and, when it was written in a file, where.
#[derive(Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value.
    pub value: Value,
    /// Where it was written (`None` for a built-in default); for a model's value, the
    /// model's section.
    pub source: Option<Box<OptionRef>>,
}

/// Never shows a secret written in a file (its source names the option).
impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = match &self.source {
            Some(src) => crate::secrets::shown_value(&src.option, &self.value.to_string()),
            None => self.value.to_string(),
        };
        f.debug_struct("Setting")
            .field("value", &value)
            .field("source", &self.source)
            .finish()
    }
}

/// The context a server is resolved in: the global options Barman copies into every
/// server.
#[derive(Clone, Debug)]
pub(crate) struct ServerContext<'a> {
    pub(crate) barman_home: &'a str,
    pub(crate) barman_lock_directory: &'a str,
    pub(crate) lock_directory_cleanup: bool,
    pub(crate) config_changes_queue: &'a str,
}

/// The configuration of one server: every option of [`SERVER_OPTIONS`], resolved from the
/// server's section, then `[barman]` (for inherited options), then the built-in default.
///
/// # Examples
///
/// ```
/// use barman_core::config::{Config, MemorySource, Value};
///
/// let text = "[barman]\nbarman_home = /srv/barman\ncompression = gzip\n\n[pg]\nconninfo = host=pg\nssh_command = ssh postgres@pg\narchiver = on\n";
/// let config = Config::load("/etc/barman.conf", text, &MemorySource::default())?;
/// let pg = config.server("pg").unwrap();
/// assert_eq!(pg.options().wals_directory.as_deref(), Some("/srv/barman/pg/wals"));
/// assert_eq!(pg.compression().map(|c| c.name()), Some("gzip"));
/// assert_eq!(pg.get("minimum_redundancy"), Some(&Value::Int(0)));
/// # Ok::<(), barman_core::config::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    name: String,
    settings: Vec<Option<Setting>>,
    options: ServerOptions,
    /// barman-rs's own options ([`EXTENSION_OPTIONS`]' order).
    extensions: Vec<Option<Value>>,
    active_model: Option<String>,
    disabled: Option<String>,
}

impl ServerConfig {
    /// Resolves server `name` as Barman's `ServerConfig.__init__` does.
    pub(crate) fn resolve(
        ini: &Ini,
        name: &str,
        ctx: &ServerContext<'_>,
    ) -> Result<ServerConfig, ConfigError> {
        // Python's `str()` of the attributes computed so far: `%(name)s` sees them.
        let mut vars: Vec<(String, String)> = vec![
            ("msg_list".into(), "[]".into()),
            ("name".into(), name.into()),
            ("barman_home".into(), ctx.barman_home.into()),
            (
                "barman_lock_directory".into(),
                ctx.barman_lock_directory.into(),
            ),
            (
                "lock_directory_cleanup".into(),
                if ctx.lock_directory_cleanup {
                    "True"
                } else {
                    "False"
                }
                .into(),
            ),
            (
                "config_changes_queue".into(),
                ctx.config_changes_queue.into(),
            ),
        ];
        let mut settings = Vec::with_capacity(SERVER_OPTIONS.len());
        for spec in SERVER_OPTIONS {
            let mut result = Parsed::Unset;
            let mut source = None;
            if !spec.fixed() {
                if let Some((text, origin)) = config_get(ini, name, spec.name, &vars, Some(""))? {
                    result = invoke(spec, &text, origin, name)?;
                    source = origin.map(|o| option_ref(Some(o), name, spec.name, &text));
                }
                if matches!(result, Parsed::Unset)
                    && spec.inherited
                    && let Some((text, origin)) =
                        config_get(ini, "barman", spec.name, &vars, Some(""))?
                {
                    result = invoke(spec, &text, origin, "barman")?;
                    source = origin.map(|o| option_ref(Some(o), "barman", spec.name, &text));
                }
            }
            if matches!(result, Parsed::Unset) {
                source = None;
                if let Some(default) = spec.default {
                    let text = format_default(default, &vars);
                    result = invoke(spec, &text, None, name)?;
                }
            }
            match result {
                Parsed::Value(value, py) => {
                    vars.push((spec.name.to_owned(), py));
                    settings.push(Some(Setting { value, source }));
                }
                Parsed::Unset | Parsed::Blank => settings.push(None),
            }
        }
        let mut extensions = Vec::with_capacity(EXTENSION_OPTIONS.len());
        for spec in EXTENSION_OPTIONS {
            let mut result = Parsed::Unset;
            if let Some((text, origin)) = config_get(ini, name, spec.name, &vars, Some(""))? {
                result = invoke(spec, &text, origin, name)?;
            }
            if matches!(result, Parsed::Unset)
                && let Some((text, origin)) = config_get(ini, "barman", spec.name, &vars, Some(""))?
            {
                result = invoke(spec, &text, origin, "barman")?;
            }
            extensions.push(match result {
                Parsed::Value(value, _) => Some(value),
                Parsed::Unset | Parsed::Blank => None,
            });
        }
        Ok(ServerConfig {
            name: name.to_owned(),
            options: typed(&settings),
            extensions,
            settings,
            active_model: None,
            disabled: None,
        })
    }

    /// The server's name (its section).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn extension(&self, name: &str) -> Option<&Value> {
        EXTENSION_OPTIONS
            .iter()
            .position(|s| s.name == name)
            .and_then(|i| self.extensions.get(i))
            .and_then(Option::as_ref)
    }

    /// `sandbox_schedule` (barman-rs): how often `cron` runs a restore test.
    pub fn sandbox_schedule(&self) -> Option<std::time::Duration> {
        match self.extension("sandbox_schedule") {
            Some(Value::Interval(d)) => Some(*d),
            _ => None,
        }
    }

    /// `sandbox_maximum_age` (barman-rs): the age past which `check` fails the last
    /// restore test.
    pub fn sandbox_maximum_age(&self) -> Option<std::time::Duration> {
        match self.extension("sandbox_maximum_age") {
            Some(Value::Interval(d)) => Some(*d),
            _ => None,
        }
    }

    /// `sandbox_path` (barman-rs): where sandboxes go.
    pub fn sandbox_path(&self) -> Option<&str> {
        match self.extension("sandbox_path") {
            Some(Value::Text(p)) => Some(p),
            _ => None,
        }
    }

    /// Every option's resolved value, typed, defaults applied.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    fn index(option: &str) -> Option<usize> {
        SERVER_OPTIONS.iter().position(|s| s.name == option)
    }

    /// The resolved value of `option`, `None` when unset (or not a server option).
    pub fn get(&self, option: &str) -> Option<&Value> {
        self.setting(option).map(|s| &s.value)
    }

    /// The resolved value of `option` with its source.
    pub fn setting(&self, option: &str) -> Option<&Setting> {
        Self::index(option).and_then(|i| self.settings[i].as_ref())
    }

    /// Every option in Barman's order with its value (`None` when unset).
    pub fn iter(&self) -> impl Iterator<Item = (&'static OptionSpec, Option<&Value>)> {
        SERVER_OPTIONS
            .iter()
            .zip(&self.settings)
            .map(|(spec, s)| (spec, s.as_ref().map(|s| &s.value)))
    }

    /// How parallel copy jobs start: at most `size` at once, a batch every `period`
    /// seconds (`--jobs-start-batch-size`/`--jobs-start-batch-period`, else
    /// `parallel_jobs_start_batch_size` (10) and `parallel_jobs_start_batch_period` (1)).
    pub fn jobs_start_batch(
        &self,
        size: Option<usize>,
        period: Option<u64>,
    ) -> (usize, std::time::Duration) {
        let o = &self.options;
        let size = size
            .or_else(|| usize::try_from(o.parallel_jobs_start_batch_size).ok())
            .unwrap_or(10)
            .max(1);
        let period = period
            .or_else(|| u64::try_from(o.parallel_jobs_start_batch_period).ok())
            .unwrap_or(1);
        (size, std::time::Duration::from_secs(period))
    }

    /// `active` (default true).
    pub fn active(&self) -> bool {
        self.options.active
    }

    /// Whether the file-based archiver is on.
    pub fn archiver(&self) -> bool {
        self.options.archiver
    }

    /// Whether the streaming archiver is on.
    pub fn streaming_archiver(&self) -> bool {
        self.options.streaming_archiver
    }

    /// `backup_method` (`rsync`, `postgres`, `local-rsync`, `snapshot`, `local-to-cloud`).
    pub fn backup_method(&self) -> &str {
        &self.options.backup_method
    }

    /// The WAL compression, `None` for none.
    pub fn compression(&self) -> Option<WalCompression> {
        self.options.compression
    }

    /// The WAL compression level (default medium).
    pub fn compression_level(&self) -> CompressionLevel {
        self.options.compression_level
    }

    /// The retention policy, `None` for no automatic deletion.
    pub fn retention_policy(&self) -> Option<RetentionPolicy> {
        self.options.retention_policy
    }

    /// `minimum_redundancy` (0 when unset).
    pub fn minimum_redundancy(&self) -> u32 {
        u32::try_from(self.options.minimum_redundancy).unwrap_or(0)
    }

    /// The bandwidth limit of copying tablespace `name`, in KiB/s: its own
    /// `tablespace_bandwidth_limit` rule when it has one (0: no limit), else `default`.
    pub fn tablespace_bwlimit(&self, name: &str, default: Option<u64>) -> Option<u64> {
        self.options
            .tablespace_bandwidth_limit
            .iter()
            .find(|(n, _)| n == name)
            .map_or(default, |(_, kib)| {
                u64::try_from(*kib).ok().filter(|k| *k > 0)
            })
    }

    /// Why this server is disabled, as Barman disables a server its configuration
    /// rules refuse (or barman-rs's: `support`): the one-line error, naming the file.
    /// The other servers are not affected; operations that write refuse this one.
    pub fn disabled(&self) -> Option<&str> {
        self.disabled.as_deref()
    }

    /// `Ok` unless the server is [`disabled`](Self::disabled).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Disabled`] with the reason.
    pub fn usable(&self) -> Result<(), ConfigError> {
        match &self.disabled {
            None => Ok(()),
            Some(reason) => Err(ConfigError::Disabled {
                reason: reason.clone(),
            }),
        }
    }

    pub(crate) fn disable(&mut self, reason: String) {
        self.disabled = Some(reason);
    }

    /// Whether this is a passive node (`primary_ssh_command` set).
    pub fn is_passive(&self) -> bool {
        self.options.primary_ssh_command.is_some()
    }

    /// The model applied to this server, if any.
    pub fn active_model(&self) -> Option<&str> {
        self.active_model.as_deref()
    }

    fn set(&mut self, option: &str, setting: Option<Setting>) {
        if let Some(i) = Self::index(option) {
            self.settings[i] = setting;
            self.options = typed(&self.settings);
        }
    }

    /// Sets `option` to `value` for this run, as a command-line option overrides the
    /// configuration (`check --check-timeout`). The value has no source: it was
    /// written nowhere.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Inconsistent`] when `option` is not a server option.
    pub fn override_option(&mut self, option: &str, value: Value) -> Result<(), ConfigError> {
        let i = Self::index(option).ok_or_else(|| ConfigError::Inconsistent {
            file: "the command line".to_owned(),
            server: self.name.clone(),
            message: format!("'{option}' is not a server option"),
        })?;
        self.settings[i] = Some(Setting {
            value,
            source: None,
        });
        self.options = typed(&self.settings);
        Ok(())
    }

    /// Applies `model` as Barman's `apply_model`: the model's set options replace the
    /// server's.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Inconsistent`] when the model's `cluster` differs from the server's.
    pub fn apply_model(&mut self, model: &ModelConfig) -> Result<(), ConfigError> {
        let cluster = self.options.cluster.as_deref().unwrap_or_default();
        if model.cluster() != cluster {
            return Err(ConfigError::Inconsistent {
                file: model.file.clone(),
                server: self.name.clone(),
                message: format!(
                    "Model '{}' has 'cluster={}', which is not compatible with 'cluster={}' from server '{}'",
                    model.name,
                    model.cluster(),
                    cluster,
                    self.name
                ),
            });
        }
        // Every option first, then the typed fields once (not once per option).
        for (spec, setting) in &model.settings {
            if spec.name != "cluster"
                && let Some(i) = Self::index(spec.name)
            {
                self.settings[i] = Some(setting.clone());
            }
        }
        self.options = typed(&self.settings);
        self.active_model = Some(model.name.clone());
        Ok(())
    }

    /// Barman's consistency rules for a server, the checks `server.py` and the backup
    /// executors make from the configuration alone (no connection): missing connection
    /// strings, archivers, and the options each backup method forbids or needs. Applies
    /// Barman's corrections (archiver forced on, `concurrent_backup` as default strategy)
    /// with a warning. Inactive servers are not checked, as in Barman.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Inconsistent`] with Barman's message for the first rule broken.
    pub(crate) fn check(
        &mut self,
        file: &str,
        warnings: &mut Vec<String>,
        unsupported: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        if !self.active() {
            return Ok(());
        }
        let name = self.name.clone();
        let fail = |message: String| ConfigError::Inconsistent {
            file: file.to_owned(),
            server: name.clone(),
            message,
        };
        // What barman-rs does not do: refused where ignoring it would lose data or
        // security, else warned about (see `support`); after Barman's own rules, so
        // that a configuration Barman refuses gets Barman's message.
        let review = |s: &Self, unsupported: &mut Vec<String>| {
            let (refused, warned) = super::support::review(s);
            if let Some(message) = refused {
                return Err(fail(message.to_owned()));
            }
            unsupported.extend(warned.into_iter().map(|w| format!("server {name}: {w}")));
            Ok(())
        };
        if self
            .compression()
            .is_some_and(|c| c.name() == crate::compression::CUSTOM)
        {
            let o = &self.options;
            for (option, value) in [
                ("custom_compression_filter", &o.custom_compression_filter),
                (
                    "custom_decompression_filter",
                    &o.custom_decompression_filter,
                ),
            ] {
                if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                    return Err(fail(format!("compression = custom needs {option}")));
                }
            }
            if let Some(magic) = &o.custom_compression_magic
                && crate::compression::parse_magic(magic).is_none()
            {
                return Err(fail(format!(
                    "custom_compression_magic must be 0x followed by an even number of hex digits, not '{magic}'"
                )));
            }
        }
        if self.is_passive() {
            return review(self, unsupported);
        }
        let o = &self.options;
        if o.conninfo.is_none() {
            return Err(fail(format!(
                "PostgreSQL connection: Missing 'conninfo' parameter for server '{name}'"
            )));
        }
        let method = self.backup_method().to_owned();
        if (method == "postgres" || self.streaming_archiver()) && o.streaming_conninfo.is_none() {
            return Err(fail(format!(
                "Streaming connection: Missing 'streaming_conninfo' parameter for server '{name}'"
            )));
        }
        let nonzero = |v: Option<i64>| v.is_some_and(|v| v != 0);
        let reuse = matches!(o.reuse_backup.as_deref(), Some("copy" | "link"));
        let mut options: Vec<String> = o.backup_options.clone();
        let ssh = o
            .ssh_command
            .as_ref()
            .is_some_and(|s| s.split_whitespace().next().is_some());
        match method.as_str() {
            "postgres" => {
                if options.iter().any(|o| o == "exclusive_backup") {
                    options.retain(|o| o != "exclusive_backup");
                    warnings.push(format!("[{name}] 'exclusive_backup' is not a valid backup_option using postgres backup_method. Overriding with 'concurrent_backup'."));
                }
                if !o.tablespace_bandwidth_limit.is_empty() {
                    return Err(fail("tablespace_bandwidth_limit option is not supported by postgres backup_method".into()));
                }
                if reuse {
                    return Err(fail(
                        "reuse_backup option is not supported by postgres backup_method".into(),
                    ));
                }
                if o.network_compression {
                    return Err(fail(
                        "network_compression option is not supported by postgres backup_method"
                            .into(),
                    ));
                }
                if !options.iter().any(|o| o == "concurrent_backup") {
                    options.push("concurrent_backup".into());
                }
            }
            "rsync" | "local-rsync" | "snapshot" => {
                let local = method == "local-rsync";
                if !local && !ssh {
                    return Err(fail(format!(
                        "Missing or invalid ssh_command in barman configuration for server {name}"
                    )));
                }
                if local && ssh {
                    return Err(fail(format!(
                        "Local copy requires ssh_command in barman configuration to be empty for server {name}"
                    )));
                }
                if !options
                    .iter()
                    .any(|o| o == "concurrent_backup" || o == "exclusive_backup")
                {
                    options.push("concurrent_backup".into());
                    warnings.push(format!(
                        "No backup strategy set for server '{name}' (using default 'concurrent_backup')."
                    ));
                }
                if method == "snapshot" {
                    for (option, set) in [
                        ("backup_compression", o.backup_compression.is_some()),
                        ("bandwidth_limit", nonzero(o.bandwidth_limit)),
                        ("network_compression", o.network_compression),
                        (
                            "tablespace_bandwidth_limit",
                            !o.tablespace_bandwidth_limit.is_empty(),
                        ),
                    ] {
                        if set {
                            return Err(fail(format!(
                                "{option} option is not supported by snapshot backup_method"
                            )));
                        }
                    }
                    if reuse {
                        return Err(fail(
                            "reuse_backup option is not supported by snapshot backup_method".into(),
                        ));
                    }
                    for (option, set) in [
                        ("snapshot_disks", !o.snapshot_disks.is_empty()),
                        ("snapshot_instance", o.snapshot_instance.is_some()),
                        ("snapshot_provider", o.snapshot_provider.is_some()),
                    ] {
                        if !set {
                            return Err(fail(format!(
                                "{option} option is required by snapshot backup_method"
                            )));
                        }
                    }
                    if o.aws_snapshot_lock_mode.is_some()
                        && o.snapshot_provider.as_deref() == Some("aws")
                    {
                        let duration = nonzero(o.aws_snapshot_lock_duration);
                        let date = o.aws_snapshot_lock_expiration_date.is_some();
                        if !duration && !date {
                            return Err(fail("'aws_snapshot_lock_mode' is set, you must specify 'aws_snapshot_lock_duration' or 'aws_snapshot_lock_expiration_date'.".into()));
                        }
                        if duration && date {
                            return Err(fail("You must specify either 'aws_snapshot_lock_duration' or 'aws_snapshot_lock_expiration_date' in the configuration, but not both.".into()));
                        }
                        if o.aws_snapshot_lock_mode.as_deref() == Some("governance")
                            && nonzero(o.aws_snapshot_lock_cool_off_period)
                        {
                            return Err(fail("'aws_snapshot_lock_cool_off_period' cannot be used with 'aws_snapshot_lock_mode' = 'governance'.".into()));
                        }
                    }
                } else if o.backup_compression.is_some() {
                    return Err(fail(
                        "backup_compression option is not supported by rsync backup_method".into(),
                    ));
                }
            }
            _ => {}
        }
        options.sort();
        let source = self
            .setting("backup_options")
            .and_then(|s| s.source.clone());
        self.set(
            "backup_options",
            Some(Setting {
                value: Value::List(options),
                source,
            }),
        );
        if !self.archiver() && self.streaming_archiver() && self.options.slot_name.is_none() {
            return Err(fail("Streaming-only archiver requires 'streaming_conninfo' and 'slot_name' options to be properly configured".into()));
        }
        if !self.archiver() && !self.streaming_archiver() {
            warnings.push(format!(
                "No archiver enabled for server '{name}'. Please turn on 'archiver', 'streaming_archiver' or both"
            ));
            warnings.push("Forcing 'archiver = on'".to_owned());
            self.set(
                "archiver",
                Some(Setting {
                    value: Value::Bool(true),
                    source: None,
                }),
            );
        }
        review(self, unsupported)
    }
}

/// A model: a named set of server options (`model = true` in its section) that
/// `barman config-switch` applies to the servers of the same `cluster`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelConfig {
    name: String,
    file: String,
    settings: Vec<(&'static OptionSpec, Setting)>,
}

impl ModelConfig {
    /// Reads model `name` as Barman's `ModelConfig.__init__`: only the options written in
    /// its section, no inheritance, no defaults.
    pub(crate) fn resolve(ini: &Ini, name: &str) -> Result<ModelConfig, ConfigError> {
        let vars = vec![("name".to_owned(), name.to_owned())];
        let mut settings = Vec::new();
        for spec in SERVER_OPTIONS.iter().filter(|s| s.in_models()) {
            if let Some((text, origin)) = config_get(ini, name, spec.name, &vars, Some(""))?
                && let Parsed::Value(value, _) = invoke(spec, &text, origin, name)?
            {
                let source = Some(option_ref(origin, name, spec.name, &text));
                settings.push((spec, Setting { value, source }));
            }
        }
        let file = ini
            .options(name)
            .first()
            .and_then(|o| ini.get_raw(name, o))
            .map(|v| v.file.clone())
            .unwrap_or_default();
        for required in ["cluster", "model"] {
            if ini.get_raw(name, required).is_none() {
                return Err(ConfigError::MissingModelOption {
                    file,
                    section: name.to_owned(),
                    option: required,
                });
            }
        }
        Ok(ModelConfig {
            name: name.to_owned(),
            file,
            settings,
        })
    }

    /// The model's name (its section).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cluster the model belongs to.
    pub fn cluster(&self) -> &str {
        self.get("cluster")
            .and_then(|v| match v {
                Value::Text(s) => Some(s.as_str()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The value the model sets for `option`, if any.
    pub fn get(&self, option: &str) -> Option<&Value> {
        self.settings
            .iter()
            .find(|(s, _)| s.name == option)
            .map(|(_, v)| &v.value)
    }

    /// The options the model sets, in Barman's order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static OptionSpec, &Value)> {
        self.settings.iter().map(|(s, v)| (*s, &v.value))
    }
}
