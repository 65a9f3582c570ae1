//! The table of Barman's server options and their parsers.

use std::fmt;
use std::time::Duration;

use barman_catalog::RetentionPolicy;
use barman_wal::{Codec, CompressionLevel};

/// How an option's text is parsed: one variant per parser of Barman's `config.py`
/// (plus the checks `server.py` makes later for a few options read as plain text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Text, not parsed (`conninfo`, hook scripts, ...).
    Text,
    /// `parse_boolean`: true/t/yes/1/on, false/f/no/0/off, any case.
    Bool,
    /// Python's `int()`.
    Int,
    /// Lower-cased, then one of the listed words.
    OneOf(&'static [&'static str]),
    /// One of the listed words, case-sensitive.
    OneOfExact(&'static [&'static str]),
    /// `parse_encryption`: `none` (unset) or `gpg`, any case.
    Encryption,
    /// `parse_compression`: a WAL compression name.
    Compression,
    /// `parse_compression_level`: low, medium, high or an integer.
    CompressionLevel,
    /// `parse_staging_path`: an absolute path.
    AbsolutePath,
    /// `parse_directory_or_cloud_provider`: a path, or an `s3://`, `gs://` or Azure URL.
    DirectoryOrUrl,
    /// `parse_slot_name`: lower-cased, `[0-9a-z_]+`.
    SlotName,
    /// `parse_snapshot_disks`: comma-separated non-empty names.
    NameList,
    /// `parse_time_interval`: `N day|week|month|hour[s]` (a month is 31 days).
    Interval,
    /// `parse_si_suffix`: `N[ ]k|Ki|M|Mi|G|Gi|T|Ti`.
    Size,
    /// `BackupOptions` / `RecoveryOptions`: comma-separated words from a list; the two
    /// words of a conflicting pair cannot both appear.
    Csv(
        &'static [&'static str],
        Option<(&'static str, &'static str)>,
    ),
    /// A non-negative integer (`minimum_redundancy`, checked by `server.py`).
    NonNegativeInt,
    /// An integer (`bandwidth_limit`, checked by `server.py`).
    Bandwidth,
    /// Whitespace-separated `tablespace:kbps` rules (checked by `server.py`).
    TablespaceBandwidth,
    /// A retention policy (checked by `server.py`).
    Retention,
    /// Exactly the given word (`wal_retention_policy = main`, `retention_policy_mode =
    /// auto`; checked by `server.py`).
    Exactly(&'static str),
}

impl Kind {
    /// A short description of the accepted values, as used in error messages and the
    /// crate docs.
    ///
    /// ```
    /// use barman_core::config::Kind;
    /// assert_eq!(Kind::Bool.expected(), "a boolean (true/t/yes/1/on, false/f/no/0/off)");
    /// ```
    pub fn expected(self) -> String {
        match self {
            Kind::Text => "any text".to_owned(),
            Kind::Bool => "a boolean (true/t/yes/1/on, false/f/no/0/off)".to_owned(),
            Kind::Int => "an integer".to_owned(),
            Kind::OneOf(words) => format!("one of {} (any case)", words.join(", ")),
            Kind::OneOfExact(words) => format!("one of {}", words.join(", ")),
            Kind::Encryption => "one of none, gpg (any case)".to_owned(),
            Kind::Compression => format!("one of {}", COMPRESSIONS.join(", ")),
            Kind::CompressionLevel => "one of low, medium, high or an integer".to_owned(),
            Kind::AbsolutePath => "an absolute path".to_owned(),
            Kind::DirectoryOrUrl => {
                "a path or a URL of a supported cloud provider (s3://, gs://, Azure)".to_owned()
            }
            Kind::SlotName => {
                "a replication slot name (lower case letters, digits and '_')".to_owned()
            }
            Kind::NameList => "a comma-separated list of non-empty names".to_owned(),
            Kind::Interval => "N day|week|month|hour[s]".to_owned(),
            Kind::Size => "an integer with an optional k|Ki|M|Mi|G|Gi|T|Ti suffix".to_owned(),
            Kind::Csv(words, conflict) => {
                let mut s = format!("a comma-separated list of {}", words.join(", "));
                if let Some((a, b)) = conflict {
                    s.push_str(&format!(", not both {a} and {b}"));
                }
                s
            }
            Kind::NonNegativeInt => "a non-negative integer".to_owned(),
            Kind::Bandwidth => "an integer (kilobytes per second)".to_owned(),
            Kind::TablespaceBandwidth => {
                "whitespace-separated NAME:KBPS rules (KBPS an integer)".to_owned()
            }
            Kind::Retention => "REDUNDANCY N or RECOVERY WINDOW OF N DAYS|WEEKS|MONTHS".to_owned(),
            Kind::Exactly(word) => format!("{word:?} (the only supported value)"),
        }
    }
}

/// Barman's WAL compression names (`barman.compression.compression_registry`).
pub(crate) const COMPRESSIONS: [&str; 10] = [
    "gzip", "bzip2", "pygzip", "pybzip2", "pigz", "xz", "zstd", "lz4", "snappy", "custom",
];

/// One server option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionSpec {
    /// Its name.
    pub name: &'static str,
    /// Its parser.
    pub kind: Kind,
    /// Barman's built-in default, `%(name)s` references included.
    pub default: Option<&'static str>,
    /// Whether a value in `[barman]` applies to servers that do not set it.
    pub inherited: bool,
}

impl OptionSpec {
    /// Whether a model may set this option (not paths, not hook scripts).
    ///
    /// ```
    /// let spec = barman_core::config::option_spec("wals_directory").unwrap();
    /// assert!(!spec.in_models());
    /// ```
    pub fn in_models(&self) -> bool {
        !(MODEL_EXCLUDED_DIRS.contains(&self.name) || self.name.ends_with("_script"))
    }

    /// Whether users cannot set it (`disabled`, computed by Barman).
    ///
    /// ```
    /// assert!(barman_core::config::option_spec("disabled").unwrap().fixed());
    /// ```
    pub fn fixed(&self) -> bool {
        self.name == "disabled"
    }
}

const MODEL_EXCLUDED_DIRS: [&str; 7] = [
    "backup_directory",
    "basebackups_directory",
    "errors_directory",
    "incoming_wals_directory",
    "streaming_wals_directory",
    "wals_directory",
    "xlogdb_directory",
];

/// The global options of the `[barman]` section that are not server options.
pub const GLOBAL_OPTIONS: [&str; 9] = [
    "barman_home",
    "barman_lock_directory",
    "barman_user",
    "lock_directory_cleanup",
    "config_changes_queue",
    "log_file",
    "log_level",
    "log_format",
    "configuration_files_directory",
];

const BACKUP_METHODS: &[&str] = &[
    "rsync",
    "postgres",
    "local-rsync",
    "snapshot",
    "local-to-cloud",
];

macro_rules! opt {
    ($name:expr, $kind:expr) => {
        OptionSpec {
            name: $name,
            kind: $kind,
            default: None,
            inherited: false,
        }
    };
    ($name:expr, $kind:expr, inherit) => {
        OptionSpec {
            name: $name,
            kind: $kind,
            default: None,
            inherited: true,
        }
    };
    ($name:expr, $kind:expr, $default:literal) => {
        OptionSpec {
            name: $name,
            kind: $kind,
            default: Some($default),
            inherited: false,
        }
    };
    ($name:expr, $kind:expr, $default:literal, inherit) => {
        OptionSpec {
            name: $name,
            kind: $kind,
            default: Some($default),
            inherited: true,
        }
    };
}

/// Generates [`SERVER_OPTIONS`] (the table the configuration reader walks) and
/// [`ServerOptions`] (the typed values core reads) from one list of
/// `name: FieldType => (Kind, "default", inherit);` lines.
macro_rules! server_options {
    ($( $name:ident : $ty:ty => ($($spec:tt)*); )*) => {
        /// Every server option of Barman 3.19, in Barman's order (`ServerConfig.KEYS`):
        /// options are resolved in this order, so a default may refer to an option
        /// listed before it.
        pub const SERVER_OPTIONS: &[OptionSpec] = &[ $( opt!(stringify!($name), $($spec)*) ),* ];

        /// The resolved options of one server, one typed field per option of
        /// [`SERVER_OPTIONS`] (same names), defaults applied: what barman-core reads.
        ///
        /// An option without a default is an `Option`; a list is empty when unset; a
        /// choice is its lower-cased word. `disabled` is Barman's computed flag, which
        /// no file sets: it is always false here, and a server's configuration
        /// refusal is [`ServerConfig::disabled`](super::ServerConfig::disabled). [`ServerConfig::setting`](super::ServerConfig::setting)
        /// still gives where a value was written.
        #[derive(Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct ServerOptions {
            $(
                #[doc = concat!("`", stringify!($name), "`.")]
                pub $name: $ty,
            )*
        }

        /// Never shows a value that may hold a secret (connection strings, passphrase
        /// commands): only whether it is set.
        impl fmt::Debug for ServerOptions {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut d = f.debug_struct("ServerOptions");
                $( d.field(stringify!($name), &Masked(stringify!($name), &self.$name)); )*
                d.finish()
            }
        }

        impl ServerOptions {
            /// Builds the fields from the resolved values, in [`SERVER_OPTIONS`]' order.
            pub(crate) fn from_values(values: &[Option<&Value>]) -> ServerOptions {
                let mut values = values.iter().copied();
                ServerOptions {
                    $( $name: FromValue::from_value(values.next().flatten()), )*
                }
            }

            /// For each option, whether its field's type can hold what its parser makes,
            /// and whether a field that is not an `Option` has a default to fall back on
            /// (or is a list, empty when unset).
            #[cfg(test)]
            pub(crate) fn field_checks() -> Vec<(&'static str, bool, bool)> {
                let mut specs = SERVER_OPTIONS.iter();
                vec![ $( {
                    let spec = specs.next().expect("one spec per field");
                    (
                        spec.name,
                        spec.name == stringify!($name) && <$ty as FromValue>::holds(spec.kind),
                        <$ty as FromValue>::OPTIONAL
                            || spec.default.is_some()
                            || matches!(spec.kind, Kind::NameList | Kind::TablespaceBandwidth),
                    )
                } ),* ]
            }
        }
    };
}

use Kind::*;

// The server options: one line per option, in Barman's order, giving its name, the type
// of its field in `ServerOptions`, its parser, its default and whether `[barman]` sets it
// for every server. Both `SERVER_OPTIONS` and `ServerOptions` are generated from this one
// list.
//
// `keepalive_interval` is not inherited from `[barman]`: Barman's list of inheritable
// options misspells it `keepalive_internval`.
server_options! {
    active: bool => (Bool, "true");
    archiver: bool => (Bool, "off", inherit);
    archiver_batch_size: i64 => (Int, "0", inherit);
    autogenerate_manifest: bool => (Bool, "false", inherit);
    aws_check_object_lock: bool => (Bool, "off", inherit);
    aws_encryption: Option<String> => (OneOfExact(&["AES256", "aws:kms"]), inherit);
    aws_read_timeout: Option<i64> => (Int, inherit);
    aws_await_snapshots_timeout: i64 => (Int, "3600", inherit);
    aws_snapshot_lock_mode: Option<String> => (Text, inherit);
    aws_snapshot_lock_duration: Option<i64> => (Int, inherit);
    aws_snapshot_lock_cool_off_period: Option<i64> => (Int, inherit);
    aws_snapshot_lock_expiration_date: Option<String> => (Text, inherit);
    aws_profile: Option<String> => (Text, inherit);
    aws_region: Option<String> => (Text, inherit);
    aws_sse_kms_key_id: Option<String> => (Text, inherit);
    azure_credential: Option<String> => (Text, inherit);
    azure_resource_group: Option<String> => (Text, inherit);
    azure_subscription_id: Option<String> => (Text, inherit);
    backup_compression: Option<String> => (OneOf(&["gzip", "lz4", "zstd", "none"]), inherit);
    backup_compression_format: Option<String> => (OneOf(&["plain", "tar"]), inherit);
    backup_compression_level: Option<i64> => (Int, inherit);
    backup_compression_location: Option<String> => (OneOf(&["client", "server"]), inherit);
    backup_compression_workers: Option<i64> => (Int, inherit);
    backup_directory: Option<String> => (Text, "%(barman_home)s/%(name)s");
    backup_method: String => (OneOf(BACKUP_METHODS), "rsync", inherit);
    backup_options: Vec<String> => (Csv(&["exclusive_backup", "concurrent_backup", "external_configuration"], Some(("exclusive_backup", "concurrent_backup"))), "", inherit);
    bandwidth_limit: Option<i64> => (Bandwidth, inherit);
    basebackup_retry_sleep: i64 => (Int, "30", inherit);
    basebackup_retry_times: i64 => (Int, "0", inherit);
    basebackups_directory: Option<String> => (DirectoryOrUrl, "%(backup_directory)s/base");
    check_timeout: i64 => (Int, "30", inherit);
    cloud_delete_batch_size: Option<i64> => (Int, inherit);
    cloud_staging_directory: Option<String> => (AbsolutePath, "/tmp/barman/cloud-staging", inherit);
    cloud_staging_max_size: u64 => (Size, "30Gi", inherit);
    cloud_upload_max_archive_size: u64 => (Size, "100Gi");
    cloud_upload_min_chunk_size: Option<u64> => (Size);
    cloud_wal_archive_parallel: i64 => (Int, "0", inherit);
    cloud_wal_restore_parallel: i64 => (Int, "0", inherit);
    cluster: Option<String> => (Text, "%(name)s");
    compression: Option<WalCompression> => (Compression, inherit);
    compression_level: CompressionLevel => (CompressionLevel, "medium", inherit);
    conninfo: Option<String> => (Text);
    custom_compression_filter: Option<String> => (Text, inherit);
    custom_decompression_filter: Option<String> => (Text, inherit);
    custom_compression_magic: Option<String> => (Text, inherit);
    description: Option<String> => (Text);
    disabled: bool => (Bool, "false");
    encryption: Option<String> => (Encryption, "none", inherit);
    encryption_key_id: Option<String> => (Text, inherit);
    encryption_passphrase_command: Option<String> => (Text, inherit);
    errors_directory: Option<String> => (Text, "%(backup_directory)s/errors");
    forward_config_path: bool => (Bool, "false", inherit);
    gcp_project: Option<String> => (Text, inherit);
    gcp_zone: Option<String> => (Text);
    immediate_checkpoint: bool => (Bool, "false", inherit);
    incoming_wals_directory: Option<String> => (Text, "%(backup_directory)s/incoming");
    keepalive_interval: i64 => (Int, "60");
    last_backup_maximum_age: Option<Duration> => (Interval, inherit);
    last_backup_minimum_size: Option<u64> => (Size, inherit);
    last_wal_maximum_age: Option<Duration> => (Interval, inherit);
    combine_mode: String => (OneOf(&["copy", "link", "clone", "copy-file-range"]), "copy", inherit);
    local_staging_path: Option<String> => (AbsolutePath, inherit);
    max_incoming_wals_queue: Option<i64> => (Int, inherit);
    minimum_redundancy: i64 => (NonNegativeInt, "0", inherit);
    network_compression: bool => (Bool, "false", inherit);
    parallel_jobs: i64 => (Int, "1", inherit);
    parallel_jobs_start_batch_period: i64 => (Int, "1", inherit);
    parallel_jobs_start_batch_size: i64 => (Int, "10", inherit);
    path_prefix: Option<String> => (Text, inherit);
    post_archive_retry_script: Option<String> => (Text, inherit);
    post_archive_script: Option<String> => (Text, inherit);
    post_backup_retry_script: Option<String> => (Text, inherit);
    post_backup_script: Option<String> => (Text, inherit);
    post_delete_script: Option<String> => (Text, inherit);
    post_delete_retry_script: Option<String> => (Text, inherit);
    post_recovery_retry_script: Option<String> => (Text, inherit);
    post_recovery_script: Option<String> => (Text, inherit);
    post_wal_delete_script: Option<String> => (Text, inherit);
    post_wal_delete_retry_script: Option<String> => (Text, inherit);
    pre_archive_retry_script: Option<String> => (Text, inherit);
    pre_archive_script: Option<String> => (Text, inherit);
    pre_backup_retry_script: Option<String> => (Text, inherit);
    pre_backup_script: Option<String> => (Text, inherit);
    pre_delete_script: Option<String> => (Text, inherit);
    pre_delete_retry_script: Option<String> => (Text, inherit);
    pre_recovery_retry_script: Option<String> => (Text, inherit);
    pre_recovery_script: Option<String> => (Text, inherit);
    pre_wal_delete_script: Option<String> => (Text, inherit);
    pre_wal_delete_retry_script: Option<String> => (Text, inherit);
    primary_checkpoint_timeout: i64 => (Int, "0");
    primary_conninfo: Option<String> => (Text);
    primary_ssh_command: Option<String> => (Text, inherit);
    recovery_options: Vec<String> => (Csv(&["get-wal", "delta-restore"], None), "", inherit);
    recovery_staging_path: Option<String> => (AbsolutePath, inherit);
    create_slot: String => (OneOf(&["manual", "auto"]), "manual", inherit);
    retention_policy: Option<RetentionPolicy> => (Retention, inherit);
    retention_policy_mode: Option<String> => (Exactly("auto"), "auto", inherit);
    reuse_backup: Option<String> => (OneOf(&["copy", "link", "off"]), inherit);
    slot_name: Option<String> => (SlotName, inherit);
    snapshot_disks: Vec<String> => (NameList);
    snapshot_gcp_project: Option<String> => (Text, inherit);
    snapshot_instance: Option<String> => (Text);
    snapshot_provider: Option<String> => (Text, inherit);
    snapshot_zone: Option<String> => (Text);
    ssh_command: Option<String> => (Text);
    staging_path: Option<String> => (AbsolutePath, inherit);
    staging_location: Option<String> => (OneOfExact(&["local", "remote"]), "local", inherit);
    streaming_archiver: bool => (Bool, "off", inherit);
    streaming_archiver_batch_size: i64 => (Int, "0", inherit);
    streaming_archiver_name: Option<String> => (Text, "barman_receive_wal", inherit);
    streaming_backup_name: Option<String> => (Text, "barman_streaming_backup", inherit);
    streaming_conninfo: Option<String> => (Text, "%(conninfo)s");
    streaming_wals_directory: Option<String> => (Text, "%(backup_directory)s/streaming");
    tablespace_bandwidth_limit: Vec<(String, i64)> => (TablespaceBandwidth, inherit);
    wal_conninfo: Option<String> => (Text);
    wal_retention_policy: Option<String> => (Exactly("main"), "main", inherit);
    wal_streaming_conninfo: Option<String> => (Text);
    wals_directory: Option<String> => (DirectoryOrUrl, "%(backup_directory)s/wals");
    warehousepg_dbid: Option<i64> => (Int, inherit);
    worm_mode: bool => (Bool, "off", inherit);
    xlogdb_directory: Option<String> => (Text, "%(wals_directory)s", inherit);
}

/// barman-rs's own server options, which Barman does not have (its option table,
/// [`SERVER_OPTIONS`], stays exactly Barman's): the restore tests of
/// [`crate::sandbox`]. Valid in a server's section, a model, or `[barman]` for every
/// server.
pub const EXTENSION_OPTIONS: &[OptionSpec] = &[
    // `check` fails `restore test` when the last sandbox is older than this.
    OptionSpec {
        name: "sandbox_maximum_age",
        kind: Kind::Interval,
        default: None,
        inherited: true,
    },
    // Where sandboxes go (default: the system's temporary directory).
    OptionSpec {
        name: "sandbox_path",
        kind: Kind::AbsolutePath,
        default: None,
        inherited: true,
    },
    // `cron` starts a sandbox of the latest backup when the last one is older.
    OptionSpec {
        name: "sandbox_schedule",
        kind: Kind::Interval,
        default: None,
        inherited: true,
    },
];

/// The specification of server option `name`.
///
/// ```
/// let spec = barman_core::config::option_spec("keepalive_interval").unwrap();
/// assert_eq!(spec.default, Some("60"));
/// assert!(!spec.inherited); // Barman's typo: "keepalive_internval"
/// ```
pub fn option_spec(name: &str) -> Option<&'static OptionSpec> {
    SERVER_OPTIONS.iter().find(|s| s.name == name)
}

/// A WAL compression as named by Barman's `compression` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WalCompression {
    name: &'static str,
}

impl WalCompression {
    /// The name as Barman spells it (`gzip`, `pygzip`, `pigz`, `custom`, ...).
    ///
    /// ```
    /// use barman_core::config::WalCompression;
    /// let c = WalCompression::from_barman_name("PyGzip").unwrap();
    /// assert_eq!(c.name(), "pygzip");
    /// assert_eq!(c.codec(), Some(barman_wal::Codec::Gzip));
    /// assert_eq!(WalCompression::from_barman_name("custom").unwrap().codec(), None);
    /// ```
    pub fn name(self) -> &'static str {
        self.name
    }

    /// Parses a name, any case; `None` if Barman does not know it.
    pub fn from_barman_name(name: &str) -> Option<WalCompression> {
        let lower = name.to_lowercase();
        COMPRESSIONS
            .iter()
            .find(|c| **c == lower)
            .map(|c| WalCompression { name: c })
    }

    /// The codec: `pygzip` and `pigz` write gzip, `pybzip2` bzip2; `None` for `custom`
    /// (external filters, `custom_compression_filter`).
    pub fn codec(self) -> Option<Codec> {
        Codec::from_barman_name(self.name).ok()
    }
}

impl fmt::Display for WalCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A resolved option value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    /// [`Kind::Text`], [`Kind::OneOf`] (lower-cased), [`Kind::OneOfExact`],
    /// [`Kind::Encryption`], [`Kind::AbsolutePath`], [`Kind::DirectoryOrUrl`],
    /// [`Kind::SlotName`], [`Kind::Exactly`].
    Text(String),
    /// [`Kind::Bool`].
    Bool(bool),
    /// [`Kind::Int`], [`Kind::NonNegativeInt`], [`Kind::Bandwidth`].
    Int(i64),
    /// [`Kind::Interval`].
    Interval(Duration),
    /// [`Kind::Size`], in bytes.
    Size(u64),
    /// [`Kind::Compression`].
    Compression(WalCompression),
    /// [`Kind::CompressionLevel`].
    CompressionLevel(CompressionLevel),
    /// [`Kind::Retention`].
    Retention(RetentionPolicy),
    /// [`Kind::NameList`] (in order) and [`Kind::Csv`] (a set: sorted, no duplicates).
    List(Vec<String>),
    /// [`Kind::TablespaceBandwidth`]: (tablespace, kbps), in order.
    Rules(Vec<(String, i64)>),
}

/// A field of [`ServerOptions`] as `Debug` shows it: masked when it may hold a secret.
struct Masked<'a>(&'static str, &'a dyn fmt::Debug);

impl fmt::Debug for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !crate::secrets::is_sensitive(self.0) {
            return self.1.fmt(f);
        }
        match format!("{:?}", self.1).as_str() {
            "None" => f.write_str("None"),
            _ => f.write_str(crate::secrets::MASK),
        }
    }
}

/// How a [`ServerOptions`] field is read from a resolved [`Value`]: the variant its kinds
/// produce, or the fallback when the option is unset (`None`, an empty list, `false`,
/// `0`, an empty text, the medium compression level).
pub(crate) trait FromValue: Sized {
    /// Whether unset is told apart (`Option<_>`).
    #[cfg(test)]
    const OPTIONAL: bool;
    /// Whether a value of `kind` becomes this type.
    #[cfg(test)]
    fn holds(kind: Kind) -> bool;
    /// The field for `value`; a value of another variant (never produced, see
    /// `holds`) reads as unset.
    fn from_value(value: Option<&Value>) -> Self;
}

macro_rules! from_value {
    ($ty:ty, $kinds:pat, $variant:ident($v:ident) => $get:expr) => {
        impl FromValue for Option<$ty> {
            #[cfg(test)]
            const OPTIONAL: bool = true;
            #[cfg(test)]
            fn holds(kind: Kind) -> bool {
                matches!(kind, $kinds)
            }
            fn from_value(value: Option<&Value>) -> Self {
                match value {
                    Some(Value::$variant($v)) => Some($get),
                    _ => None,
                }
            }
        }
    };
    ($ty:ty, $kinds:pat, $variant:ident($v:ident) => $get:expr, or $default:expr) => {
        from_value!($ty, $kinds, $variant($v) => $get);
        impl FromValue for $ty {
            #[cfg(test)]
            const OPTIONAL: bool = false;
            #[cfg(test)]
            fn holds(kind: Kind) -> bool {
                matches!(kind, $kinds)
            }
            fn from_value(value: Option<&Value>) -> Self {
                Option::<$ty>::from_value(value).unwrap_or($default)
            }
        }
    };
}

from_value!(bool, Kind::Bool, Bool(v) => *v, or false);
from_value!(i64, Kind::Int | Kind::NonNegativeInt | Kind::Bandwidth, Int(v) => *v, or 0);
from_value!(u64, Kind::Size, Size(v) => *v, or 0);
from_value!(
    String,
    Kind::Text
        | Kind::OneOf(_)
        | Kind::OneOfExact(_)
        | Kind::Encryption
        | Kind::AbsolutePath
        | Kind::DirectoryOrUrl
        | Kind::SlotName
        | Kind::Exactly(_),
    Text(v) => v.clone(),
    or String::new()
);
from_value!(Duration, Kind::Interval, Interval(v) => *v);
from_value!(WalCompression, Kind::Compression, Compression(v) => *v);
from_value!(
    CompressionLevel,
    Kind::CompressionLevel,
    CompressionLevel(v) => *v,
    or CompressionLevel::Medium
);
from_value!(RetentionPolicy, Kind::Retention, Retention(v) => *v);
from_value!(Vec<String>, Kind::NameList | Kind::Csv(..), List(v) => v.clone(), or Vec::new());
from_value!(
    Vec<(String, i64)>,
    Kind::TablespaceBandwidth,
    Rules(v) => v.clone(),
    or Vec::new()
);

/// What a parser makes of a text.
pub(crate) enum Parsed {
    /// Unset; the next source (`[barman]`, the default) is tried.
    Unset,
    /// Unset, and the next sources are not tried (Barman's empty string).
    Blank,
    /// A value, and the text Python's `str()` gives for it (used by `%(name)s`).
    Value(Value, String),
}

/// Python's `str.isspace()` whitespace.
pub(crate) fn is_py_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{1c}'..='\u{1f}')
}

/// Python's `int()` on a string, for the values that fit an `i64`.
pub(crate) fn python_int(s: &str) -> Option<i64> {
    let t = s.trim_matches(is_py_space);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let v: i64 = clean.parse().ok()?;
    Some(if neg { -v } else { v })
}

fn python_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "1" | "on" => Some(true),
        "false" | "f" | "no" | "0" | "off" => Some(false),
        _ => None,
    }
}

/// Python's `str(datetime.timedelta)` for a whole number of seconds.
fn timedelta_str(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    let hms = format!("{}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    match days {
        0 => hms,
        1 => format!("1 day, {hms}"),
        d => format!("{d} days, {hms}"),
    }
}

fn python_repr_list(items: &[String]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|s| {
            if s.contains('\'') && !s.contains('"') {
                format!("\"{s}\"")
            } else {
                format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Whether `url` is one Barman's `recognize_cloud_provider` accepts.
fn is_cloud_url(url: &str) -> bool {
    const GOOGLE: &str = "https://console.cloud.google.com/storage/browser/";
    // urlparse: scheme (lower-cased) before ':', netloc after '//' up to '/', '?' or '#'.
    let split = |u: &str| -> (String, String, String) {
        let (scheme, rest) = match u.find(':') {
            Some(i)
                if i > 0
                    && u[..i].starts_with(|c: char| c.is_ascii_alphabetic())
                    && u[..i]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                (u[..i].to_ascii_lowercase(), &u[i + 1..])
            }
            _ => (String::new(), u),
        };
        let (netloc, path) = match rest.strip_prefix("//") {
            Some(r) => {
                let end = r.find(['/', '?', '#']).unwrap_or(r.len());
                let path_end = r[end..].find(['?', '#']).map_or(r.len(), |p| end + p);
                (r[..end].to_owned(), r[end..path_end].to_owned())
            }
            None => (String::new(), rest.to_owned()),
        };
        (scheme, netloc, path)
    };
    let (scheme, netloc, path) = split(url);
    if scheme == "s3" && !netloc.is_empty() {
        return true;
    }
    if url.starts_with(GOOGLE) || url.starts_with("gs://") {
        let gs = url.replace(GOOGLE, "gs://");
        if !split(&gs).1.is_empty() {
            return true;
        }
    }
    netloc.ends_with("blob.core.windows.net") && path.contains('/')
}

/// Runs the parser of `kind` on `text` (already interpolated and unquoted); `Err` holds
/// the reason it was rejected.
pub(crate) fn parse(kind: Kind, text: &str) -> Result<Parsed, String> {
    let expected = || format!("expected {}", kind.expected());
    let text_value = |s: String| Parsed::Value(Value::Text(s.clone()), s);
    Ok(match kind {
        Kind::Text => {
            if text.is_empty() || text == "None" {
                Parsed::Blank
            } else {
                text_value(text.to_owned())
            }
        }
        Kind::Bool => {
            let b = python_bool(text).ok_or_else(expected)?;
            Parsed::Value(Value::Bool(b), if b { "True" } else { "False" }.to_owned())
        }
        Kind::Int => {
            let v = python_int(text).ok_or_else(expected)?;
            Parsed::Value(Value::Int(v), v.to_string())
        }
        Kind::OneOf(words) => {
            let lower = text.to_lowercase();
            if !words.contains(&lower.as_str()) {
                return Err(expected());
            }
            text_value(lower)
        }
        Kind::OneOfExact(words) => {
            if !words.contains(&text) {
                return Err(expected());
            }
            text_value(text.to_owned())
        }
        Kind::Encryption => match text.to_lowercase().as_str() {
            "none" => Parsed::Unset,
            "gpg" => text_value("gpg".to_owned()),
            _ => return Err(expected()),
        },
        Kind::Compression => {
            if text.is_empty() {
                return Ok(Parsed::Blank);
            }
            let c = WalCompression::from_barman_name(text).ok_or_else(expected)?;
            Parsed::Value(Value::Compression(c), c.name.to_owned())
        }
        Kind::CompressionLevel => {
            if text.is_empty() {
                return Ok(Parsed::Blank);
            }
            let lower = text.to_lowercase();
            let unsigned = lower.trim_start_matches('-');
            if !unsigned.is_empty() && unsigned.chars().all(|c| c.is_ascii_digit()) {
                let v = python_int(&lower)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(expected)?;
                Parsed::Value(
                    Value::CompressionLevel(CompressionLevel::Exact(v)),
                    v.to_string(),
                )
            } else {
                let level = match lower.as_str() {
                    "low" => CompressionLevel::Low,
                    "medium" => CompressionLevel::Medium,
                    "high" => CompressionLevel::High,
                    _ => return Err(expected()),
                };
                Parsed::Value(Value::CompressionLevel(level), lower)
            }
        }
        Kind::AbsolutePath => {
            if !text.starts_with('/') {
                return Err(expected());
            }
            text_value(text.to_owned())
        }
        Kind::DirectoryOrUrl => {
            if text.contains("://") && !is_cloud_url(text) {
                return Err(
                    "the URL is not compatible with any of the supported cloud providers"
                        .to_owned(),
                );
            }
            if text.is_empty() || text == "None" {
                Parsed::Blank
            } else {
                text_value(text.to_owned())
            }
        }
        Kind::SlotName => {
            let lower = text.to_lowercase();
            if lower.is_empty()
                || !lower
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(expected());
            }
            text_value(lower)
        }
        Kind::NameList => {
            let names: Vec<String> = text.split(',').map(str::to_owned).collect();
            if names.iter().any(String::is_empty) {
                return Err(expected());
            }
            let py = python_repr_list(&names);
            Parsed::Value(Value::List(names), py)
        }
        Kind::Interval => {
            if text.is_empty() {
                return Ok(Parsed::Unset);
            }
            let words: Vec<&str> = text.split(is_py_space).filter(|w| !w.is_empty()).collect();
            let [n, unit] = words.as_slice() else {
                return Err(expected());
            };
            if !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(expected());
            }
            let unit = unit.to_ascii_lowercase();
            let unit = unit.strip_suffix('s').unwrap_or(&unit);
            let n: u64 = n.parse().map_err(|_| expected())?;
            let secs_per = match unit {
                "day" => 86_400,
                "week" => 7 * 86_400,
                "month" => 31 * 86_400,
                "hour" => 3600,
                _ => return Err(expected()),
            };
            // datetime.timedelta holds at most 999999999 days.
            let secs = n
                .checked_mul(secs_per)
                .filter(|s| s / 86_400 <= 999_999_999)
                .ok_or_else(|| "the interval is too long".to_owned())?;
            Parsed::Value(
                Value::Interval(Duration::from_secs(secs)),
                timedelta_str(secs),
            )
        }
        Kind::Size => {
            if text.is_empty() {
                return Ok(Parsed::Unset);
            }
            let digits_end = text.bytes().take_while(u8::is_ascii_digit).count();
            if digits_end == 0 {
                return Err(expected());
            }
            let rest = text[digits_end..].trim_matches(is_py_space);
            let mult: u64 = match rest {
                "" => 1,
                "k" => 1000,
                "Ki" => 1 << 10,
                "M" => 1_000_000,
                "Mi" => 1 << 20,
                "G" => 1_000_000_000,
                "Gi" => 1 << 30,
                "T" => 1_000_000_000_000,
                "Ti" => 1 << 40,
                _ => return Err(expected()),
            };
            // `\s*` between the number and the unit, but no space inside the unit.
            let n: u64 = text[..digits_end].parse().map_err(|_| expected())?;
            let v = n
                .checked_mul(mult)
                .ok_or_else(|| "the size is too large".to_owned())?;
            Parsed::Value(Value::Size(v), v.to_string())
        }
        Kind::Csv(words, conflict) => {
            let mut parts: Vec<&str> = text.split(',').collect();
            if text.is_empty() {
                parts.clear();
            }
            parts.sort_unstable();
            let mut set: Vec<String> = Vec::new();
            for p in parts {
                let w = p.trim_matches(is_py_space).to_lowercase();
                if !words.contains(&w.as_str()) {
                    return Err(format!("unknown option {w:?}; {}", expected()));
                }
                if let Some((a, b)) = conflict
                    && ((w == a && set.iter().any(|s| s == b))
                        || (w == b && set.iter().any(|s| s == a)))
                {
                    return Err(format!("cannot contain both '{a}' and '{b}'"));
                }
                if !set.contains(&w) {
                    set.push(w);
                }
            }
            set.sort();
            let name = if words.contains(&"get-wal") {
                "RecoveryOptions"
            } else {
                "BackupOptions"
            };
            let py = if set.is_empty() {
                format!("{name}()")
            } else {
                let inner: Vec<String> = set.iter().map(|s| format!("'{s}'")).collect();
                format!("{name}({{{}}})", inner.join(", "))
            };
            Parsed::Value(Value::List(set), py)
        }
        // The next ones are plain text in Barman's ServerConfig (so an empty value blocks
        // inheritance) and are checked by server.py.
        _ if text.is_empty() || text == "None" => Parsed::Blank,
        Kind::NonNegativeInt => {
            let v = python_int(text).filter(|v| *v >= 0).ok_or_else(expected)?;
            Parsed::Value(Value::Int(v), text.to_owned())
        }
        Kind::Bandwidth => {
            let v = python_int(text).ok_or_else(expected)?;
            Parsed::Value(Value::Int(v), text.to_owned())
        }
        Kind::TablespaceBandwidth => {
            let mut rules = Vec::new();
            for rule in text.split(is_py_space).filter(|r| !r.is_empty()) {
                let parsed = rule
                    .split_once(':')
                    .and_then(|(name, v)| Some((name.to_owned(), python_int(v)?)));
                match parsed {
                    Some(r) => rules.push(r),
                    None => return Err(format!("invalid rule {rule:?}; {}", expected())),
                }
            }
            Parsed::Value(Value::Rules(rules), text.to_owned())
        }
        Kind::Retention => {
            let p: RetentionPolicy = text.parse().map_err(|_| expected())?;
            Parsed::Value(Value::Retention(p), text.to_owned())
        }
        Kind::Exactly(word) => {
            if text != word {
                return Err(expected());
            }
            text_value(text.to_owned())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(kind: Kind, text: &str) -> Option<Value> {
        match parse(kind, text) {
            Ok(Parsed::Value(v, _)) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn table_matches_barman_order_and_size() {
        assert_eq!(SERVER_OPTIONS.len(), 121);
        assert_eq!(SERVER_OPTIONS[0].name, "active");
        assert_eq!(SERVER_OPTIONS.last().unwrap().name, "xlogdb_directory");
        let mut names: Vec<_> = SERVER_OPTIONS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SERVER_OPTIONS.len());
    }

    #[test]
    fn every_field_holds_what_its_parser_makes() {
        let checks = ServerOptions::field_checks();
        assert_eq!(checks.len(), SERVER_OPTIONS.len());
        for (name, holds, falls_back) in checks {
            assert!(
                holds,
                "{name}: its field's type cannot hold its kind's values"
            );
            assert!(
                falls_back,
                "{name}: a field that is not an Option needs a default"
            );
        }
    }

    #[test]
    fn fields_read_values_and_fall_back_when_unset() {
        let mut values: Vec<Option<&Value>> = vec![None; SERVER_OPTIONS.len()];
        let at = |name: &str| SERVER_OPTIONS.iter().position(|s| s.name == name).unwrap();
        let unset = ServerOptions::from_values(&values);
        assert!(!unset.active && unset.compression_level == CompressionLevel::Medium);
        assert_eq!((unset.slot_name, unset.parallel_jobs), (None, 0));
        let jobs = Value::Int(4);
        let slot = Value::Text("barman".into());
        let options = Value::List(vec!["get-wal".into()]);
        values[at("parallel_jobs")] = Some(&jobs);
        values[at("slot_name")] = Some(&slot);
        values[at("recovery_options")] = Some(&options);
        let set = ServerOptions::from_values(&values);
        assert_eq!(set.parallel_jobs, 4);
        assert_eq!(set.slot_name.as_deref(), Some("barman"));
        assert_eq!(set.recovery_options, ["get-wal"]);
    }

    #[test]
    fn python_int_like_python() {
        assert_eq!(python_int(" 12 "), Some(12));
        assert_eq!(python_int("-1_000"), Some(-1000));
        assert_eq!(python_int("+5"), Some(5));
        assert_eq!(python_int("1__0"), None);
        assert_eq!(python_int("_1"), None);
        assert_eq!(python_int("0x10"), None);
        assert_eq!(python_int(""), None);
    }

    #[test]
    fn parsers() {
        assert_eq!(value(Kind::Bool, "ON"), Some(Value::Bool(true)));
        assert_eq!(value(Kind::Bool, "nope"), None);
        assert_eq!(value(Kind::Size, "10 Ki"), Some(Value::Size(10240)));
        assert_eq!(value(Kind::Size, "10 K"), None);
        assert_eq!(value(Kind::Size, " 10"), None);
        assert_eq!(
            value(Kind::Interval, " 2 Weeks "),
            Some(Value::Interval(Duration::from_secs(14 * 86_400)))
        );
        assert_eq!(value(Kind::Interval, "1 year"), None);
        assert_eq!(
            value(Kind::CompressionLevel, "-3"),
            Some(Value::CompressionLevel(CompressionLevel::Exact(-3)))
        );
        assert_eq!(value(Kind::CompressionLevel, "--3"), None);
        assert!(matches!(parse(Kind::Compression, ""), Ok(Parsed::Blank)));
        assert!(matches!(parse(Kind::Encryption, "NONE"), Ok(Parsed::Unset)));
        assert!(parse(Kind::Int, "").is_err());
        assert_eq!(
            value(Kind::SlotName, "Barman_1"),
            Some(Value::Text("barman_1".into()))
        );
        assert_eq!(
            value(Kind::DirectoryOrUrl, "s3://bucket/x"),
            Some(Value::Text("s3://bucket/x".into()))
        );
        assert_eq!(value(Kind::DirectoryOrUrl, "ftp://bucket/x"), None);
        assert_eq!(
            value(Kind::DirectoryOrUrl, "https://acct.blob.core.windows.net/c"),
            Some(Value::Text("https://acct.blob.core.windows.net/c".into()))
        );
        let backup = option_spec("backup_options").unwrap().kind;
        assert_eq!(
            value(backup, "external_configuration, CONCURRENT_BACKUP"),
            Some(Value::List(vec![
                "concurrent_backup".into(),
                "external_configuration".into()
            ]))
        );
        assert!(parse(backup, "exclusive_backup,concurrent_backup").is_err());
        assert!(parse(backup, ",").is_err());
    }

    #[test]
    fn python_str_of_values() {
        assert_eq!(timedelta_str(86_400 * 7), "7 days, 0:00:00");
        assert_eq!(timedelta_str(3600 * 25), "1 day, 1:00:00");
        assert_eq!(timedelta_str(3600 * 5), "5:00:00");
        assert_eq!(python_repr_list(&["a".into(), "b".into()]), "['a', 'b']");
    }
}

#[cfg(test)]
mod table {
    use super::*;

    fn markdown_table() -> String {
        let mut s =
            String::from("| option | accepts | default | inh. |\n| --- | --- | --- | --- |\n");
        for spec in SERVER_OPTIONS {
            let default = spec.default.map_or_else(String::new, |d| {
                if d.is_empty() {
                    "(empty)".to_owned()
                } else {
                    format!("`{d}`")
                }
            });
            let mut kind = spec.kind.expected();
            if spec.fixed() {
                kind.push_str("; computed by Barman, cannot be set");
            }
            if !spec.in_models() {
                kind.push_str("; not in models");
            }
            s.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                spec.name,
                kind.replace('|', "\\|")
                    .replace('[', "\\[")
                    .replace(']', "\\]"),
                default,
                if spec.inherited { "yes" } else { "" }
            ));
        }
        s
    }

    /// The crate docs include `options_table.md`; regenerate it with
    /// `BARMAN_BLESS=1 cargo test -p barman-core options_table`.
    #[test]
    fn options_table_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/config/options_table.md");
        let want = markdown_table();
        #[allow(clippy::disallowed_methods)]
        let bless = std::env::var_os("BARMAN_BLESS").is_some();
        if bless {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap();
        assert_eq!(have, want, "run with BARMAN_BLESS=1 to regenerate {path}");
    }
}

impl std::fmt::Display for Value {
    /// The value as `show-servers` prints it (Python's `str()` of Barman's value where
    /// the two agree: `True`/`False`, plain numbers, the policy text).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Text(s) => f.write_str(s),
            Value::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Interval(d) => {
                let secs = d.as_secs();
                let (days, rest) = (secs / 86_400, secs % 86_400);
                let hms = format!("{}:{:02}:{:02}", rest / 3600, (rest % 3600) / 60, rest % 60);
                match days {
                    0 => f.write_str(&hms),
                    1 => write!(f, "1 day, {hms}"),
                    n => write!(f, "{n} days, {hms}"),
                }
            }
            Value::Size(s) => write!(f, "{s}"),
            Value::Compression(c) => f.write_str(c.name()),
            Value::CompressionLevel(l) => write!(f, "{l}"),
            Value::Retention(r) => write!(f, "{r}"),
            Value::List(items) => f.write_str(&items.join(",")),
            Value::Rules(rules) => {
                let parts: Vec<String> = rules.iter().map(|(t, k)| format!("{t}:{k}")).collect();
                f.write_str(&parts.join(" "))
            }
        }
    }
}
