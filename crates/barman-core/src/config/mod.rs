//! Barman's configuration: the INI format, the global options, the servers and the
//! models, resolved exactly as Barman 3.19 resolves them — except that what Barman only
//! warns about is an error here.
//!
//! The module is sans-IO: [`Config::load`] takes the main file's text and a
//! [`ConfigSource`] through which it reads the other files
//! (`configuration_files_directory/*.conf`, `<barman_home>/.barman.auto.conf`,
//! `<backup_directory>/.active-model.auto`). Finding the main file (`-c`,
//! `BARMAN_CONFIG_FILE`, `~/.barman.conf`, `/etc/barman.conf`,
//! `/etc/barman/barman.conf`) is the caller's job.
//!
//! # Example
//!
//! ```
//! use barman_core::config::{Config, MemorySource};
//!
//! let main = r#"
//! [barman]
//! barman_home = /var/lib/barman
//! compression = gzip
//! retention_policy = REDUNDANCY 3
//!
//! [pg]
//! description = "Main cluster"
//! conninfo = host=pg user=barman dbname=postgres
//! backup_method = postgres
//! archiver = on
//! slot_name = barman
//! "#;
//! let config = Config::load("/etc/barman.conf", main, &MemorySource::default())?;
//! let pg = config.server("pg").unwrap();
//! assert_eq!(pg.options().description.as_deref(), Some("Main cluster"));
//! assert_eq!(pg.options().backup_directory.as_deref(), Some("/var/lib/barman/pg"));
//! assert_eq!(pg.retention_policy().unwrap().to_string(), "REDUNDANCY 3");
//! assert_eq!(pg.compression().unwrap().codec(), Some(barman_wal::Codec::Gzip));
//! # Ok::<(), barman_core::config::ConfigError>(())
//! ```
//!
//! Code reads a server's options as the typed fields of [`ServerOptions`]
//! ([`ServerConfig::options`]), never by name: a misspelt option does not compile. The
//! fields and [`SERVER_OPTIONS`] (names, parsers, defaults, Barman's order) are generated
//! from one list in `options.rs`. [`ServerConfig::setting`] and [`ServerConfig::iter`]
//! give an option's source, for display.
//!
//! # How a server option is resolved
//!
//! 1. Files are merged as Barman's `ConfigMapping` does: each file is parsed on its own
//!    ([`Ini`]), every option of each of its sections (its own `[DEFAULT]` options
//!    included) is interpolated *within that file*, and the result is stored in the
//!    merged configuration. A `[DEFAULT]` section therefore only reaches the sections of
//!    its own file, and `%(name)s` must name an option of the same section or of the
//!    file's `[DEFAULT]`.
//! 2. For every option of [`SERVER_OPTIONS`], in that order: the server's section; then,
//!    if still unset and the option is inherited, `[barman]`; then the built-in default,
//!    whose `%(barman_home)s`, `%(name)s`, `%(backup_directory)s`, `%(conninfo)s`,
//!    `%(wals_directory)s` are the values resolved so far.
//! 3. A value in matching quotes is unquoted; the literal `None` and the empty value mean
//!    unset. For options Barman reads as plain text (and `compression`,
//!    `compression_level`, `backup_options`, `recovery_options`, directories), an empty
//!    value also stops the search: a server can unset what `[barman]` sets.
//!
//! # Differences from Barman, on purpose
//!
//! - A value the option's parser rejects is an error ([`ConfigError::InvalidValue`],
//!   naming file, line, section, option and value); Barman warns "Ignoring invalid
//!   configuration value" and falls back. The same holds for the options `server.py`
//!   checks later (`minimum_redundancy`, `bandwidth_limit`,
//!   `tablespace_bandwidth_limit`, `retention_policy`, `wal_retention_policy`,
//!   `retention_policy_mode`, `log_level`).
//! - An unknown option is an error unless [`UnknownOptions::Warn`] is chosen.
//!   `log_format` is a known global option (Barman 3.19 warns about it).
//! - The consistency rules that make Barman disable a server (see
//!   [`ServerConfig`]'s checks: missing `conninfo`, `ssh_command` and the backup
//!   method, options a backup method forbids, streaming without `slot_name`, a model
//!   of another cluster) and path conflicts are errors.
//! - An empty or `None` value for an option whose parser rejects the empty string means
//!   unset, silently (Barman resolves it the same way, after a warning).
//! - Integers are 64-bit; Python's are unbounded.
//! - Paths are compared through [`ConfigSource::real_path`] (by default lexically).
//!
//! # Server options
//!
//! Every option of Barman 3.19, in resolution order (generated from
//! [`SERVER_OPTIONS`]; "inh." = inherited from `[barman]`):
//!
#![doc = include_str!("options_table.md")]

mod discover;
mod error;
mod ini;
mod load;
mod options;
mod server;
pub mod support;
pub mod update;

pub use discover::{CONFIG_LOCATIONS, FsSource, config_file};
pub use error::ConfigError;
pub use ini::{Ini, IniError, IniValue, OptionRef};
pub use load::{
    Config, ConfigSource, GlobalConfig, LoadOptions, MemorySource, UnknownOptions, normalise_path,
};
pub use options::{
    EXTENSION_OPTIONS, GLOBAL_OPTIONS, Kind, OptionSpec, SERVER_OPTIONS, ServerOptions, Value,
    WalCompression, option_spec,
};
pub use server::{ModelConfig, ServerConfig, Setting, unquote};
