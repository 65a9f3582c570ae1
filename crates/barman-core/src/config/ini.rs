//! INI files exactly as Python's `configparser.ConfigParser(strict=False)` reads them,
//! with its basic `%(name)s` interpolation: the format of Barman's configuration.

use std::fmt;

/// Python's `MAX_INTERPOLATION_DEPTH`.
const MAX_DEPTH: usize = 10;

/// An error reading or interpolating an INI file. Messages name the file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IniError {
    /// An option line before any `[section]` header.
    #[error("{file}, line {line}: option outside of any [section]: {text:?}")]
    MissingSectionHeader {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A line that is neither a section header, an option, a comment nor a continuation.
    #[error("{file}, line {line}: expected \"option = value\" or \"[section]\": {text:?}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A `%` that is not `%%` nor `%(name)s`.
    #[error("{at}: bad interpolation in {value:?}: {reason}", value = at.value)]
    InterpolationSyntax {
        /// The option.
        at: Box<OptionRef>,
        /// What is wrong.
        reason: String,
    },
    /// A `%(name)s` naming no option.
    #[error("{at}: {value:?} refers to %({missing})s, which is not set", value = at.value)]
    InterpolationMissing {
        /// The option.
        at: Box<OptionRef>,
        /// The missing name.
        missing: String,
    },
    /// References nested more than 10 deep (a loop).
    #[error("{at}: interpolation of {value:?} is nested too deeply (a reference loop?)", value = at.value)]
    InterpolationDepth {
        /// The option.
        at: Box<OptionRef>,
    },
}

/// Where an option is, for error messages: `file, line N, [section] option`.
#[derive(Clone, PartialEq, Eq)]
pub struct OptionRef {
    /// The file holding the option.
    pub file: String,
    /// Its line.
    pub line: usize,
    /// The section.
    pub section: String,
    /// The option.
    pub option: String,
    /// The raw value.
    pub value: String,
}

/// Never shows a secret: a connection string's passwords and a secret option's value
/// are masked.
impl fmt::Debug for OptionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OptionRef")
            .field("file", &self.file)
            .field("line", &self.line)
            .field("section", &self.section)
            .field("option", &self.option)
            .field(
                "value",
                &crate::secrets::shown_value(&self.option, &self.value),
            )
            .finish()
    }
}

impl fmt::Display for OptionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, line {}, [{}] {}",
            self.file, self.line, self.section, self.option
        )
    }
}

/// A raw option value and where it was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IniValue {
    /// The value, continuation lines joined with `\n`, not interpolated.
    pub raw: String,
    /// The file it comes from.
    pub file: String,
    /// The line of its `option = ` in that file.
    pub line: usize,
}

/// The merged content of one or more INI files.
///
/// Sections and options keep the order they first appeared in; option names are
/// lower-cased; a later file (or a later line) overrides an earlier value. `[DEFAULT]`
/// supplies values to every section.
///
/// # Examples
///
/// ```
/// use barman_core::config::Ini;
///
/// let mut ini = Ini::default();
/// ini.read("/etc/barman.conf", "[barman]\nbarman_home = /var/lib/barman\n\n[pg]\nbackup_directory = %(barman_home)s/pg\n")?;
/// let vars = [("barman_home".to_owned(), "/srv/barman".to_owned())];
/// assert_eq!(ini.get("pg", "backup_directory", &vars)?.as_deref(), Some("/srv/barman/pg"));
/// assert_eq!(ini.sections().collect::<Vec<_>>(), ["barman", "pg"]);
/// # Ok::<(), barman_core::config::IniError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Ini {
    defaults: Vec<(String, IniValue)>,
    sections: Vec<(String, Vec<(String, IniValue)>)>,
}

/// Never shows a secret: values are shown as [`crate::diagnose`] shows them.
impl fmt::Debug for Ini {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |opts: &[(String, IniValue)]| -> Vec<(String, String)> {
            opts.iter()
                .map(|(k, v)| (k.clone(), crate::secrets::shown_value(k, &v.raw)))
                .collect()
        };
        let sections: Vec<(&str, Vec<(String, String)>)> = self
            .sections
            .iter()
            .map(|(name, opts)| (name.as_str(), shown(opts)))
            .collect();
        f.debug_struct("Ini")
            .field("defaults", &shown(&self.defaults))
            .field("sections", &sections)
            .finish()
    }
}

/// Python's `str.strip()` / `isspace()` whitespace.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{1c}'..='\u{1f}')
}

fn set(opts: &mut Vec<(String, IniValue)>, name: String, value: IniValue) {
    match opts.iter_mut().find(|(k, _)| *k == name) {
        Some(slot) => slot.1 = value,
        None => opts.push((name, value)),
    }
}

impl Ini {
    /// Reads one file's text into the configuration, as `ConfigParser.read_file` does with
    /// `strict=False`: `#` and `;` start full-line comments (not inline ones), `=` or `:`
    /// separates an option from its value, deeper-indented lines continue a value (blank
    /// lines inside are kept), and repeated sections or options merge, last one winning.
    ///
    /// # Errors
    ///
    /// [`IniError::MissingSectionHeader`] or [`IniError::Syntax`] naming the first bad
    /// line. Nothing is merged from a file with an error.
    ///
    /// ```
    /// let err = barman_core::config::Ini::default().read("a.conf", "[s]\nno delimiter here\n").unwrap_err();
    /// assert_eq!(err.to_string(), "a.conf, line 2: expected \"option = value\" or \"[section]\": \"no delimiter here\"");
    /// ```
    pub fn read(&mut self, file: &str, text: &str) -> Result<(), IniError> {
        let mut next = self.clone();
        // (section index or None for DEFAULT, option name) of the value being read.
        let mut current: Option<Option<usize>> = None;
        let mut option: Option<String> = None;
        // Lines of the value being read.
        let mut pending: Vec<String> = Vec::new();
        let mut indent_level = 0usize;
        let mut first_error: Option<IniError> = None;

        fn flush(
            next: &mut Ini,
            current: Option<Option<usize>>,
            option: &Option<String>,
            pending: &mut Vec<String>,
        ) {
            let (Some(sect), Some(name)) = (current, option) else {
                pending.clear();
                return;
            };
            let joined = pending.join("\n");
            let value = joined.trim_end_matches(is_py_space).to_owned();
            let opts = match sect {
                None => &mut next.defaults,
                Some(i) => &mut next.sections[i].1,
            };
            if let Some(slot) = opts.iter_mut().find(|(k, _)| k == name) {
                slot.1.raw = value;
            }
            pending.clear();
        }

        // Python iterates lines keeping their line feed; `\r\n` and `\r` also end lines
        // in text mode (universal newlines).
        let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
        for (idx, line) in normalised.split_inclusive('\n').enumerate() {
            let line_no = idx + 1;
            let stripped = line.trim_matches(is_py_space);
            let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
            let value = if is_comment { "" } else { stripped };
            if value.is_empty() {
                if !is_comment && current.is_some() && option.is_some() {
                    pending.push(String::new());
                }
                continue;
            }
            let cur_indent = line.chars().take_while(|c| is_py_space(*c)).count();
            if current.is_some() && option.is_some() && cur_indent > indent_level {
                pending.push(value.to_owned());
                continue;
            }
            indent_level = cur_indent;
            if let Some(header) = value
                .strip_prefix('[')
                .and_then(|v| v.rfind(']').map(|end| &v[..end]))
                .filter(|h| !h.is_empty())
            {
                flush(&mut next, current, &option, &mut pending);
                option = None;
                if header == "DEFAULT" {
                    current = Some(None);
                } else {
                    let i = match next.sections.iter().position(|(n, _)| n == header) {
                        Some(i) => i,
                        None => {
                            next.sections.push((header.to_owned(), Vec::new()));
                            next.sections.len() - 1
                        }
                    };
                    current = Some(Some(i));
                }
                continue;
            }
            let Some(sect) = current else {
                return Err(IniError::MissingSectionHeader {
                    file: file.to_owned(),
                    line: line_no,
                    text: line.trim_end_matches('\n').to_owned(),
                });
            };
            let Some(delim) = value.find(['=', ':']) else {
                first_error.get_or_insert(IniError::Syntax {
                    file: file.to_owned(),
                    line: line_no,
                    text: line.trim_end_matches('\n').to_owned(),
                });
                continue;
            };
            flush(&mut next, current, &option, &mut pending);
            let name = value[..delim].trim_end_matches(is_py_space);
            if name.is_empty() {
                first_error.get_or_insert(IniError::Syntax {
                    file: file.to_owned(),
                    line: line_no,
                    text: line.trim_end_matches('\n').to_owned(),
                });
            }
            let name = name.to_lowercase();
            let raw = value[delim + 1..].trim_matches(is_py_space).to_owned();
            let opts = match sect {
                None => &mut next.defaults,
                Some(i) => &mut next.sections[i].1,
            };
            set(
                opts,
                name.clone(),
                IniValue {
                    raw: raw.clone(),
                    file: file.to_owned(),
                    line: line_no,
                },
            );
            pending.push(raw);
            option = Some(name);
        }
        flush(&mut next, current, &option, &mut pending);
        if let Some(e) = first_error {
            return Err(e);
        }
        *self = next;
        Ok(())
    }

    /// Adds an empty `section` at the end, unless it exists.
    ///
    /// ```
    /// let mut ini = barman_core::config::Ini::default();
    /// ini.add_section("pg");
    /// assert!(ini.has_section("pg"));
    /// ```
    pub fn add_section(&mut self, section: &str) {
        if !self.has_section(section) {
            self.sections.push((section.to_owned(), Vec::new()));
        }
    }

    /// Sets `option` (lower-cased) of `section` (created at the end if missing; `DEFAULT`
    /// for the defaults) to `value`, as `ConfigParser.set` does, without its check of the
    /// `%` syntax.
    ///
    /// ```
    /// use barman_core::config::{Ini, IniValue};
    /// let mut ini = Ini::default();
    /// ini.set("pg", "Conninfo", IniValue { raw: "host=pg".into(), file: "x".into(), line: 3 });
    /// assert_eq!(ini.get("pg", "conninfo", &[])?.as_deref(), Some("host=pg"));
    /// # Ok::<(), barman_core::config::IniError>(())
    /// ```
    pub fn set(&mut self, section: &str, option: &str, value: IniValue) {
        let name = option.to_lowercase();
        if section == "DEFAULT" {
            set(&mut self.defaults, name, value);
            return;
        }
        let i = match self.sections.iter().position(|(n, _)| n == section) {
            Some(i) => i,
            None => {
                self.sections.push((section.to_owned(), Vec::new()));
                self.sections.len() - 1
            }
        };
        set(&mut self.sections[i].1, name, value);
    }

    /// The section names, in order (without `DEFAULT`).
    ///
    /// ```
    /// let mut ini = barman_core::config::Ini::default();
    /// ini.read("x", "[b]\n[a]\n[b]\n")?;
    /// assert_eq!(ini.sections().collect::<Vec<_>>(), ["b", "a"]);
    /// # Ok::<(), barman_core::config::IniError>(())
    /// ```
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|(n, _)| n.as_str())
    }

    /// Whether `section` exists.
    ///
    /// ```
    /// assert!(!barman_core::config::Ini::default().has_section("barman"));
    /// ```
    pub fn has_section(&self, section: &str) -> bool {
        self.sections.iter().any(|(n, _)| n == section)
    }

    /// The option names of `section`, its own first, then those only in `[DEFAULT]`.
    ///
    /// ```
    /// let mut ini = barman_core::config::Ini::default();
    /// ini.read("x", "[DEFAULT]\nd = 1\n[s]\nB = 2\n")?;
    /// assert_eq!(ini.options("s"), ["b", "d"]);
    /// # Ok::<(), barman_core::config::IniError>(())
    /// ```
    pub fn options(&self, section: &str) -> Vec<String> {
        let own: Vec<String> = self
            .section(section)
            .map(|o| o.iter().map(|(k, _)| k.clone()).collect())
            .unwrap_or_default();
        let mut out = own.clone();
        out.extend(
            self.defaults
                .iter()
                .map(|(k, _)| k.clone())
                .filter(|k| !own.contains(k)),
        );
        out
    }

    fn section(&self, section: &str) -> Option<&Vec<(String, IniValue)>> {
        self.sections
            .iter()
            .find(|(n, _)| n == section)
            .map(|(_, o)| o)
    }

    /// The raw (not interpolated) value of `option` in `section`, or from `[DEFAULT]`,
    /// with where it was read.
    ///
    /// ```
    /// let mut ini = barman_core::config::Ini::default();
    /// ini.read("x", "[s]\na = %(b)s\n")?;
    /// assert_eq!(ini.get_raw("s", "a").unwrap().raw, "%(b)s");
    /// # Ok::<(), barman_core::config::IniError>(())
    /// ```
    pub fn get_raw(&self, section: &str, option: &str) -> Option<&IniValue> {
        let option = option.to_lowercase();
        let own = if section == "DEFAULT" {
            None
        } else {
            self.section(section)?.iter().find(|(k, _)| *k == option)
        };
        own.or_else(|| self.defaults.iter().find(|(k, _)| *k == option))
            .map(|(_, v)| v)
    }

    /// The interpolated value of `option` in `section`, as `ConfigParser.get(section,
    /// option, vars=vars)`: `vars` (lower-cased names) take precedence over the section,
    /// which takes precedence over `[DEFAULT]`; `%(name)s` is replaced by the value of
    /// `name` looked up the same way, recursively, and `%%` by `%`. `None` when the
    /// section or the option does not exist.
    ///
    /// # Errors
    ///
    /// The interpolation errors, naming the file, line, section and option.
    ///
    /// ```
    /// let mut ini = barman_core::config::Ini::default();
    /// ini.read("x", "[s]\npct = 100%%\nbad = 5%\n")?;
    /// assert_eq!(ini.get("s", "pct", &[])?.as_deref(), Some("100%"));
    /// assert!(ini.get("s", "bad", &[]).is_err());
    /// # Ok::<(), barman_core::config::IniError>(())
    /// ```
    pub fn get(
        &self,
        section: &str,
        option: &str,
        vars: &[(String, String)],
    ) -> Result<Option<String>, IniError> {
        if section != "DEFAULT" && !self.has_section(section) {
            return Ok(None);
        }
        let option = option.to_lowercase();
        let lookup = |name: &str| -> Option<String> {
            vars.iter()
                .find(|(k, _)| k.to_lowercase() == name)
                .map(|(_, v)| v.clone())
                .or_else(|| self.get_raw(section, name).map(|v| v.raw.clone()))
        };
        let Some(raw) = lookup(&option) else {
            return Ok(None);
        };
        let origin = self.get_raw(section, &option);
        let ctx = OptionRef {
            file: origin.map_or_else(|| "<vars>".to_owned(), |v| v.file.clone()),
            line: origin.map_or(0, |v| v.line),
            section: section.to_owned(),
            option: option.clone(),
            value: raw.clone(),
        };
        let mut out = String::new();
        interpolate(&ctx, &raw, &lookup, &mut out, 1)?;
        Ok(Some(out))
    }
}

fn interpolate(
    ctx: &OptionRef,
    mut rest: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
    depth: usize,
) -> Result<(), IniError> {
    if depth > MAX_DEPTH {
        return Err(IniError::InterpolationDepth {
            at: Box::new(ctx.clone()),
        });
    }
    let syntax = |reason: String| IniError::InterpolationSyntax {
        at: Box::new(ctx.clone()),
        reason,
    };
    while !rest.is_empty() {
        let Some(p) = rest.find('%') else {
            out.push_str(rest);
            return Ok(());
        };
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        match rest[1..].chars().next() {
            Some('%') => {
                out.push('%');
                rest = &rest[2..];
            }
            Some('(') => {
                // %(name)s with a non-empty name without ')'.
                let close = rest
                    .find(')')
                    .filter(|&c| c > 2 && rest[c + 1..].starts_with('s'));
                let Some(close) = close else {
                    return Err(syntax(format!(
                        "bad interpolation variable reference {rest:?}"
                    )));
                };
                let name = rest[2..close].to_lowercase();
                rest = &rest[close + 2..];
                let Some(v) = lookup(&name) else {
                    return Err(IniError::InterpolationMissing {
                        at: Box::new(ctx.clone()),
                        missing: name,
                    });
                };
                if v.contains('%') {
                    interpolate(ctx, &v, lookup, out, depth + 1)?;
                } else {
                    out.push_str(&v);
                }
            }
            _ => {
                return Err(syntax(format!(
                    "'%' must be followed by '%' or '(', found: {rest:?}"
                )));
            }
        }
    }
    Ok(())
}

impl fmt::Display for Ini {
    /// The configuration as an INI text (raw values), `[DEFAULT]` first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let write_opts = |f: &mut fmt::Formatter<'_>, opts: &[(String, IniValue)]| -> fmt::Result {
            for (k, v) in opts {
                writeln!(f, "{k} = {}", v.raw.replace('\n', "\n\t"))?;
            }
            writeln!(f)
        };
        if !self.defaults.is_empty() {
            writeln!(f, "[DEFAULT]")?;
            write_opts(f, &self.defaults)?;
        }
        for (name, opts) in &self.sections {
            writeln!(f, "[{name}]")?;
            write_opts(f, opts)?;
        }
        Ok(())
    }
}
