//! Changing the configuration from a command, as Barman 3.19 does: `config-update`
//! (a JSON list of changes queued in `config_changes_queue`, then written into the
//! files) and `config-switch` (the model applied to a server, named in its
//! `<backup_directory>/.active-model.auto`).
//!
//! Before anything is written, the whole configuration is loaded again as it would be
//! afterwards: a change that makes it unreadable, or disables a server that was not
//! disabled, is refused and nothing is written. Every file is replaced atomically
//! (temporary file, fsync, rename, fsync of the directory) with its permissions kept.
//!
//! Unlike Barman, which writes an option that is only inherited from `[barman]` into
//! the file that sets it in `[barman]`, barman-rs writes it, as a default, into
//! `<barman_home>/.barman.auto.conf`, read last: the effect is the same, and the main
//! file gets no new section. Values holding a line break are refused (Barman writes
//! them as they come, and a value could then add options of its own).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value as Json};

use super::load::{Config, ConfigSource};
use super::options::SERVER_OPTIONS;
use super::{ConfigError, FsSource};
use crate::{Error, Refusal, Result};

/// One option to write: Barman's `ConfigChange`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigChange {
    /// The option.
    pub key: String,
    /// Its new value, as written in the file.
    pub value: String,
    /// The file it goes into.
    pub config_file: String,
}

/// The changes of one section: Barman's `ConfigChangeSet`, the unit of the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigChangeSet {
    /// The server or model.
    pub section: String,
    /// Its changes, in order.
    pub changes: Vec<ConfigChange>,
}

impl ConfigChangeSet {
    /// The JSON Barman's queue holds.
    fn to_json(&self) -> Json {
        let changes: Vec<Json> = self
            .changes
            .iter()
            .map(|c| {
                serde_json::json!({
                    "key": c.key,
                    "value": c.value,
                    "config_file": c.config_file,
                })
            })
            .collect();
        serde_json::json!({ "section": self.section, "changes_set": changes })
    }

    fn from_json(v: &Json) -> Option<ConfigChangeSet> {
        let o = v.as_object()?;
        if o.len() != 2 {
            return None;
        }
        let changes = o
            .get("changes_set")?
            .as_array()?
            .iter()
            .map(|c| {
                let c = c.as_object()?;
                (c.len() == 3).then_some(())?;
                Some(ConfigChange {
                    key: c.get("key")?.as_str()?.to_owned(),
                    value: c.get("value")?.as_str()?.to_owned(),
                    config_file: c.get("config_file")?.as_str()?.to_owned(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(ConfigChangeSet {
            section: o.get("section")?.as_str()?.to_owned(),
            changes,
        })
    }
}

/// One option changed by [`apply_queue`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedChange {
    /// The server or model.
    pub section: String,
    /// The option.
    pub key: String,
    /// Its value before (`None`: unset).
    pub old: Option<String>,
    /// Its value now.
    pub new: String,
}

/// A [`ConfigSource`] that sees some files as they will be after a change.
struct Overlay<'a> {
    base: &'a dyn ConfigSource,
    files: &'a BTreeMap<String, String>,
}

impl ConfigSource for Overlay<'_> {
    fn read(&self, path: &str) -> Option<String> {
        match self.files.get(path) {
            Some(text) => Some(text.clone()),
            None => self.base.read(path),
        }
    }

    fn list_dir(&self, dir: &str) -> Option<Vec<String>> {
        let mut names = self.base.list_dir(dir).unwrap_or_default();
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        for path in self.files.keys() {
            if let Some(name) = path.strip_prefix(&prefix)
                && !name.contains('/')
                && !names.iter().any(|n| n == name)
            {
                names.push(name.to_owned());
            }
        }
        Some(names)
    }

    fn real_path(&self, path: &str) -> String {
        self.base.real_path(path)
    }
}

fn invalid(message: String) -> Error {
    Error::refused(Refusal::InvalidRequest, message)
}

/// A value as a message may show it: connection strings with their passwords masked.
pub fn shown_value(key: &str, value: &str) -> String {
    if key.ends_with("conninfo") {
        crate::secrets::mask_conninfo(value)
    } else {
        value.to_owned()
    }
}

/// A section of `config-update`'s JSON as an error names it, passwords masked.
fn shown(section: &Json) -> String {
    let mut v = section.clone();
    if let Some(o) = v.as_object_mut() {
        for (k, val) in o.iter_mut() {
            if let Json::String(text) = val {
                *text = shown_value(k, text);
            }
        }
    }
    v.to_string()
}

/// The value of `key` written in `section` itself (not inherited), with its file.
fn own_value<'a>(config: &'a Config, section: &str, key: &str) -> Option<&'a super::IniValue> {
    let ini = config.ini();
    let raw = ini.get_raw(section, key)?;
    match ini.get_raw("DEFAULT", key) {
        Some(d) if d.file == raw.file && d.line == raw.line => None,
        _ => Some(raw),
    }
}

/// Validates `config-update`'s JSON as Barman's `_validate_section` does and turns it
/// into change sets: a list of objects, each with `scope` (`server` or `model`), the
/// `server_name` or `model_name`, and options with string values. A new model needs
/// `cluster` (`model = on` is implied). Each option goes into the file that sets it in
/// that section now, else into `<barman_home>/.barman.auto.conf`.
///
/// # Errors
///
/// A refusal naming the section and what is wrong with it.
pub fn parse_changes(config: &Config, json: &str) -> Result<Vec<ConfigChangeSet>> {
    let doc: Json = serde_json::from_str(json)
        .map_err(|e| invalid(format!("config-update: the changes are not JSON: {e}")))?;
    let Some(list) = doc.as_array() else {
        return Err(invalid(
            "config-update: the changes must be a JSON list of sections".to_owned(),
        ));
    };
    let auto = format!("{}/.barman.auto.conf", config.global().barman_home);
    let mut sets = Vec::new();
    for section in list {
        let Some(obj) = section.as_object() else {
            return Err(invalid(format!(
                "Invalid section {}: not an object",
                shown(section)
            )));
        };
        let mut obj: Map<String, Json> = obj.clone();
        let scope = obj.remove("scope");
        let scope = match scope.as_ref().and_then(Json::as_str) {
            Some(s @ ("server" | "model")) => s,
            _ => {
                return Err(invalid(format!(
                    "Invalid section {}: 'scope' is invalid: '{}'. It should be either 'server' or 'model'.",
                    shown(section),
                    scope
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "None".into())
                )));
            }
        };
        let name_key = if scope == "server" {
            "server_name"
        } else {
            "model_name"
        };
        let Some(name) = obj.remove(name_key) else {
            return Err(invalid(format!(
                "Invalid section {}: '{name_key}' is missing.",
                shown(section)
            )));
        };
        let Some(name) = name.as_str().map(str::to_owned) else {
            return Err(invalid(format!(
                "Invalid section {}: '{name_key}' is not a string.",
                shown(section)
            )));
        };
        if name.is_empty()
            || name == "barman"
            || name == "all"
            || name.eq_ignore_ascii_case("DEFAULT")
            || name.contains(['[', ']', '\n', '\r', '%'])
        {
            return Err(invalid(format!(
                "Invalid section {}: '{name}' cannot be a {scope} name.",
                shown(section)
            )));
        }
        let is_server = config.server(&name).is_some();
        let is_model = config.model(&name).is_some();
        if scope == "server" && is_model {
            return Err(invalid(format!(
                "Invalid section {}: '{name}' is a model, not a server.",
                shown(section)
            )));
        }
        if scope == "model" {
            if is_server {
                return Err(invalid(format!(
                    "Invalid section {}: '{name}' is a server, not a model.",
                    shown(section)
                )));
            }
            if !is_model {
                obj.entry("model")
                    .or_insert_with(|| Json::String("on".into()));
                if !obj.contains_key("cluster") {
                    return Err(invalid(format!(
                        "Invalid section {}: new model but 'cluster' is missing.",
                        shown(section)
                    )));
                }
            }
        }
        let mut changes = Vec::new();
        for (key, value) in obj {
            let known = SERVER_OPTIONS.iter().find(|s| s.name == key);
            let allowed = match known {
                Some(_) if scope == "server" => true,
                Some(spec) => spec.in_models(),
                None => scope == "model" && key == "model",
            };
            if !allowed {
                return Err(invalid(format!(
                    "Invalid option '{key}' for {scope} '{name}'"
                )));
            }
            let Some(value) = value.as_str() else {
                return Err(invalid(format!(
                    "Validation failed for {scope} '{name}': key '{key}' -> the value must be a string"
                )));
            };
            if value.contains(['\n', '\r', '\0']) {
                return Err(invalid(format!(
                    "Validation failed for {scope} '{name}': key '{key}' -> a value cannot hold a line break"
                )));
            }
            let config_file = own_value(config, &name, &key)
                .map(|v| v.file.clone())
                .unwrap_or_else(|| auto.clone());
            changes.push(ConfigChange {
                key,
                value: value.to_owned(),
                config_file,
            });
        }
        if !changes.is_empty() {
            sets.push(ConfigChangeSet {
                section: name,
                changes,
            });
        }
    }
    // Each set must leave a readable configuration (checked again when applied).
    let base = FsSource::from_env();
    let mut files = BTreeMap::new();
    for set in &sets {
        edit_files(&base, &mut files, set)?;
    }
    validate(config, &base, &files)?;
    Ok(sets)
}

/// The text of `set`'s files once it is written, added to `files`.
fn edit_files(
    base: &dyn ConfigSource,
    files: &mut BTreeMap<String, String>,
    set: &ConfigChangeSet,
) -> Result<()> {
    for c in &set.changes {
        let text = match files.get(&c.config_file) {
            Some(t) => t.clone(),
            None => base.read(&c.config_file).unwrap_or_default(),
        };
        files.insert(
            c.config_file.clone(),
            edit_ini(&text, &set.section, &c.key, &c.value),
        );
    }
    Ok(())
}

/// Loads the configuration as it would be with `files`: refused when it no longer
/// loads, or when a server it leaves disabled was not.
fn validate(
    config: &Config,
    base: &dyn ConfigSource,
    files: &BTreeMap<String, String>,
) -> Result<Config> {
    let main = &config.global().config_file;
    let text = match files.get(main) {
        Some(t) => t.clone(),
        None => std::fs::read_to_string(main).map_err(|e| Error::io("reading", main, e))?,
    };
    let after = Config::load(main, &text, &Overlay { base, files }).map_err(|e| {
        invalid(format!(
            "the change is refused, the configuration would not load: {e}"
        ))
    })?;
    for s in after.servers() {
        let was_usable = config
            .server(s.name())
            .is_none_or(|b| b.disabled().is_none());
        if let Some(reason) = s.disabled()
            && was_usable
        {
            return Err(invalid(format!(
                "the change is refused, it would disable server {}: {reason}",
                s.name()
            )));
        }
    }
    Ok(after)
}

/// `text` with `key = value` in `[section]`: the option's line (and its continuation
/// lines) replaced where it is, else added after the section's last option, else a
/// new section at the end. Option names match without regard to case, as the reader.
pub fn edit_ini(text: &str, section: &str, key: &str, value: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let line = format!("{key} = {value}");
    let header = |l: &str| {
        let t = l.trim();
        t.starts_with('[') && t.ends_with(']')
    };
    let Some(start) = lines
        .iter()
        .position(|l| l.trim() == format!("[{section}]"))
    else {
        if lines.last().is_some_and(|l| !l.trim().is_empty()) {
            lines.push(String::new());
        }
        lines.push(format!("[{section}]"));
        lines.push(line);
        return lines.join("\n") + "\n";
    };
    let end = lines
        .iter()
        .skip(start + 1)
        .position(|l| header(l))
        .map_or(lines.len(), |p| start + 1 + p);
    let is_key = |l: &str| {
        let t = l.trim_start();
        l.len() == t.len()
            && t.split(['=', ':'])
                .next()
                .is_some_and(|k| k.trim().eq_ignore_ascii_case(key))
            && t.contains(['=', ':'])
    };
    if let Some(at) = (start + 1..end).find(|&i| is_key(&lines[i])) {
        // Continuation lines: indented, non-empty, after the option.
        let mut stop = at + 1;
        while stop < end && lines[stop].starts_with([' ', '\t']) && !lines[stop].trim().is_empty() {
            stop += 1;
        }
        lines.splice(at..stop, [line]);
    } else {
        let mut at = end;
        while at > start + 1 && lines[at - 1].trim().is_empty() {
            at -= 1;
        }
        lines.insert(at, line);
    }
    lines.join("\n") + "\n"
}

/// Writes `text` into `path` atomically, keeping the file's permissions (0600 for a
/// new file).
fn write_file(path: &str, text: &str) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // A file managed through a link (configuration management) stays a link: the file
    // it points to is the one replaced, with its mode, owner and group.
    let p = std::fs::canonicalize(path).unwrap_or_else(|_| Path::new(path).to_owned());
    let before = std::fs::metadata(&p).ok();
    crate::fsutil::write_persist(&p, text.as_bytes())?;
    let mode = before
        .as_ref()
        .map_or(0o600, |m| m.permissions().mode() & 0o7777);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("setting the permissions of", &p, e))?;
    if let Some(m) = &before {
        // Only root can give a file away; anyone else keeps it theirs.
        let _ = std::os::unix::fs::chown(&p, Some(m.uid()), Some(m.gid()));
    }
    let dir = p.parent().unwrap_or(Path::new("."));
    crate::fsutil::sync_dir(dir)?;
    Ok(())
}

fn read_queue(path: &str) -> Result<Vec<ConfigChangeSet>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("reading", path, e)),
    };
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let doc: Json = serde_json::from_str(&text).map_err(|e| {
        Error::refused(
            Refusal::Damaged,
            format!("{path}: the configuration changes queue is not JSON: {e}"),
        )
    })?;
    doc.as_array()
        .and_then(|a| a.iter().map(ConfigChangeSet::from_json).collect())
        .ok_or_else(|| {
            Error::refused(
                Refusal::Damaged,
                format!("{path}: malformed configuration changes queue"),
            )
        })
}

fn write_queue(path: &str, queue: &[ConfigChangeSet]) -> Result<()> {
    let doc = Json::Array(queue.iter().map(ConfigChangeSet::to_json).collect());
    let text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "[]".into());
    write_file(path, &text)
}

/// The lock of every configuration change (Barman's `.config-update.lock`).
fn lock(config: &Config) -> Result<crate::fsutil::Lock> {
    let path = Path::new(&config.global().barman_lock_directory).join(".config-update.lock");
    crate::fsutil::Lock::try_acquire(&path)?.ok_or_else(|| {
        Error::refused(
            Refusal::Busy,
            "another process is updating barman configuration files".to_owned(),
        )
    })
}

/// Appends `sets` to the queue (`config_changes_queue`), as `config-update` does before
/// applying it.
///
/// # Errors
///
/// Another process changes the configuration; the queue cannot be read or written.
pub fn enqueue(config: &Config, sets: &[ConfigChangeSet]) -> Result<()> {
    if sets.is_empty() {
        return Ok(());
    }
    let _lock = lock(config)?;
    let path = &config.global().config_changes_queue;
    let mut queue = read_queue(path)?;
    queue.extend(sets.iter().cloned());
    write_queue(path, &queue)
}

/// Applies the queued changes in order (`config-update`, and `cron` first of all): each
/// set is checked against the configuration as it is now, written, and taken off the
/// queue. A set that cannot be applied stops the processing and stays queued.
/// Returns what changed, and the sections changed.
///
/// # Errors
///
/// Another process changes the configuration ([`Refusal::Busy`]); a set refused (the
/// sets before it are applied); I/O errors.
pub fn apply_queue(config: &Config) -> Result<Vec<AppliedChange>> {
    let _lock = lock(config)?;
    let path = config.global().config_changes_queue.clone();
    let mut queue = read_queue(&path)?;
    let base = FsSource::from_env();
    let mut applied = Vec::new();
    let mut current = reload(config, &base)?;
    while let Some(set) = queue.first().cloned() {
        // The queue may come from elsewhere (Barman's config-update): checked again.
        for c in &set.changes {
            if c.value.contains(['\n', '\r', '\0'])
                || c.key.contains(['\n', '\r', '=', '[', ']'])
                || set.section.contains(['\n', '\r', '[', ']'])
            {
                return Err(invalid(format!(
                    "{path}: a queued change of [{}] holds a line break or a bracket: refused, left in the queue",
                    set.section
                )));
            }
        }
        let mut files = BTreeMap::new();
        edit_files(&base, &mut files, &set)?;
        let after = validate(&current, &base, &files)?;
        for c in &set.changes {
            applied.push(AppliedChange {
                section: set.section.clone(),
                key: c.key.clone(),
                old: current
                    .ini()
                    .get_raw(&set.section, &c.key)
                    .map(|v| v.raw.clone()),
                new: c.value.clone(),
            });
        }
        for (file, text) in &files {
            write_file(file, text)?;
        }
        queue.remove(0);
        write_queue(&path, &queue)?;
        current = after;
    }
    Ok(applied)
}

/// The configuration as the files hold it now.
fn reload(config: &Config, base: &dyn ConfigSource) -> Result<Config> {
    let main = &config.global().config_file;
    Ok(Config::load_file(Path::new(main), base)?)
}

/// What [`switch_model`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelSwitch {
    /// The model is applied: the options it changed, with their values before and after.
    Applied(Vec<(String, String, String)>),
    /// The model was already the active one.
    AlreadyActive,
    /// No model is active any more (`--reset`).
    Reset,
}

/// `config-switch`: makes `model` the active model of `server` (`None`: none, as
/// `--reset`), written in `<backup_directory>/.active-model.auto` where every command
/// reads it. The model must exist and have the server's `cluster`.
///
/// # Errors
///
/// An unknown server or model, another cluster's model, a configuration the switch
/// would break, I/O errors.
pub fn switch_model(config: &Config, server: &str, model: Option<&str>) -> Result<ModelSwitch> {
    let _lock = lock(config)?;
    let sc = config
        .server(server)
        .ok_or_else(|| invalid(format!("Unknown server '{server}'")))?;
    let dir = sc
        .options()
        .backup_directory
        .clone()
        .ok_or_else(|| invalid(format!("server '{server}' has no backup_directory")))?;
    let file = format!("{dir}/.active-model.auto");
    let Some(name) = model else {
        match std::fs::remove_file(&file) {
            Ok(()) => crate::fsutil::sync_dir(Path::new(&dir))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("removing", &file, e)),
        }
        return Ok(ModelSwitch::Reset);
    };
    let m = config
        .model(name)
        .ok_or_else(|| invalid(format!("Unknown model '{name}'")))?;
    if sc.active_model() == Some(name) {
        return Ok(ModelSwitch::AlreadyActive);
    }
    // Checked as the next command will load it.
    let mut check = sc.clone();
    check
        .apply_model(m)
        .map_err(|e: ConfigError| invalid(e.to_string()))?;
    let base = FsSource::from_env();
    let files = BTreeMap::from([(file.clone(), name.to_owned())]);
    let after = validate(config, &base, &files)?;
    let Some(new) = after.server(server) else {
        return Err(invalid(format!("Unknown server '{server}'")));
    };
    let mut changed = Vec::new();
    for ((spec, old), (_, now)) in sc.iter().zip(new.iter()) {
        if old != now {
            let show = |v: Option<&super::Value>| {
                v.map(|v| v.to_string()).unwrap_or_else(|| "None".into())
            };
            changed.push((spec.name.to_owned(), show(old), show(now)));
        }
    }
    crate::fsutil::create_private_dir(Path::new(&dir))?;
    write_file(&file, name)?;
    Ok(ModelSwitch::Applied(changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_replaced_added_or_given_a_section() {
        let text = "[barman]\nbarman_home = /b\n\n[pg]\nconninfo = host=pg\nretention_policy = RECOVERY WINDOW\n  OF 2 WEEKS\n\n[other]\nx = 1\n";
        let replaced = edit_ini(text, "pg", "Retention_Policy", "REDUNDANCY 3");
        assert_eq!(
            replaced,
            "[barman]\nbarman_home = /b\n\n[pg]\nconninfo = host=pg\nRetention_Policy = REDUNDANCY 3\n\n[other]\nx = 1\n"
        );
        let added = edit_ini(text, "pg", "minimum_redundancy", "2");
        assert!(
            added.contains("OF 2 WEEKS\nminimum_redundancy = 2\n\n[other]"),
            "{added}"
        );
        let new = edit_ini(text, "m", "cluster", "pg");
        assert!(new.ends_with("x = 1\n\n[m]\ncluster = pg\n"), "{new}");
        assert_eq!(edit_ini("", "m", "model", "on"), "[m]\nmodel = on\n");
        // An option of another section with the same name is left alone.
        let other = edit_ini(text, "other", "conninfo", "host=o");
        assert!(other.contains("[pg]\nconninfo = host=pg\n"), "{other}");
        assert!(other.ends_with("x = 1\nconninfo = host=o\n"), "{other}");
    }

    #[test]
    fn the_queue_reads_back_as_barman_writes_it() {
        let set = ConfigChangeSet {
            section: "pg".into(),
            changes: vec![ConfigChange {
                key: "compression".into(),
                value: "gzip".into(),
                config_file: "/etc/barman.d/pg.conf".into(),
            }],
        };
        let json = Json::Array(vec![set.to_json()]);
        let parsed: Vec<ConfigChangeSet> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|v| ConfigChangeSet::from_json(v).unwrap())
            .collect();
        assert_eq!(parsed, [set]);
        // Barman's own serialisation (ConfigChangeSetEncoder).
        let barman = r#"[{"section": "pg", "changes_set": [{"key": "compression", "value": "gzip", "config_file": "/etc/barman.d/pg.conf"}]}]"#;
        let doc: Json = serde_json::from_str(barman).unwrap();
        assert_eq!(ConfigChangeSet::from_json(&doc[0]), Some(parsed[0].clone()));
        assert_eq!(
            ConfigChangeSet::from_json(&serde_json::json!({"section": "pg"})),
            None
        );
    }
}
