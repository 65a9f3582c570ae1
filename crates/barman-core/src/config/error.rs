//! The error of loading a configuration.

use super::ini::{IniError, OptionRef};

/// Why a configuration could not be loaded.
///
/// Where Barman only warns ("Ignoring invalid configuration value", "Invalid
/// configuration option", a server disabled by a consistency rule) and carries on with a
/// fallback, barman-rs stops with one of these, naming the file, line, section, option and
/// value, so that a typo never silently changes what gets backed up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A syntax or interpolation error in a file.
    #[error(transparent)]
    Ini(#[from] IniError),
    /// No configuration file was given and none of the usual places holds one.
    #[error(
        "no configuration file: use -c FILE, BARMAN_CONFIG_FILE, ~/.barman.conf, /etc/barman.conf or /etc/barman/barman.conf"
    )]
    NoConfigFile,
    /// The main configuration file cannot be read.
    #[error("{file}: {reason}")]
    Unreadable {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// The main file has no `[barman]` section or no `barman_home` in it.
    #[error("{file}: Parameter barman_home is required in [barman] section")]
    MissingBarmanHome {
        /// The main configuration file.
        file: String,
    },
    /// An included file (from `configuration_files_directory`, or `.barman.auto.conf`)
    /// changes the `[barman]` section.
    #[error("{file}: the configuration file contains a not empty [barman] section")]
    GlobalSectionInInclude {
        /// The included file.
        file: String,
    },
    /// A section named after a reserved word (`all`).
    #[error("{file}: the reserved word '{name}' is not allowed as server name")]
    ReservedName {
        /// A file holding the section.
        file: String,
        /// The section name.
        name: String,
    },
    /// A value the option's parser rejects.
    #[error("{at}: invalid value {value:?}: {reason}", value = at.value)]
    InvalidValue {
        /// The option (its `value` is the text the parser saw: interpolated, unquoted).
        at: Box<OptionRef>,
        /// What was expected.
        reason: String,
    },
    /// An option Barman does not know (only with [`UnknownOptions::Error`](super::UnknownOptions::Error)).
    #[error("{at}: invalid configuration option (not a Barman {kind} option)")]
    UnknownOption {
        /// The option.
        at: Box<OptionRef>,
        /// `global`, `server` or `model`.
        kind: &'static str,
    },
    /// A model without a required option (`cluster`, `model`).
    #[error("{file}, [{section}]: Parameter \"{option}\" is required in a model")]
    MissingModelOption {
        /// A file holding the section.
        file: String,
        /// The model.
        section: String,
        /// The missing option.
        option: &'static str,
    },
    /// Options that cannot go together, or a required option missing (Barman disables the
    /// server with the same message).
    #[error("{file}, [{server}]: {message}")]
    Inconsistent {
        /// A file holding the server's section.
        file: String,
        /// The server.
        server: String,
        /// Barman's message.
        message: String,
    },
    /// The server is disabled: its configuration breaks a rule (Barman's, or what
    /// barman-rs refuses); the reason names file, section and what is wrong.
    #[error("{reason}")]
    Disabled {
        /// Why.
        reason: String,
    },
    /// Two directories of one server, or of two servers, are the same path.
    #[error(
        "Conflicting path: {label}={path} for server '{server}' conflicts with '{other_label}' for server '{other_server}'"
    )]
    PathConflict {
        /// The server seen second.
        server: String,
        /// Its option.
        label: &'static str,
        /// The path.
        path: String,
        /// The server seen first (may be `server`).
        other_server: String,
        /// Its option.
        other_label: &'static str,
    },
}
