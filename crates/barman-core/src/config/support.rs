//! What barman-rs does with the options it does not act on as Barman does. Every
//! option works, is refused, or is warned about: an option accepted and then ignored
//! would be a lie to the administrator.
//!
//! [`UNSUPPORTED`] lists each option barman-rs does not read, with what happens when a
//! server sets it: [`Support::Refused`] where ignoring it would lose data or security
//! (the configuration is refused with a one-line error), [`Support::Warned`] where it
//! would not (a warning, once per command), [`Support::Moot`] where the option only
//! matters to something that is itself refused or not needed. A test walks the whole
//! option table: every option is either read by the code or listed here.

use super::{ServerConfig, Value};

/// How barman-rs treats an option it does not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Set, the configuration is refused with this message.
    Refused(&'static str),
    /// Set, this warning is shown.
    Warned(&'static str),
    /// Never acted on, for this reason (it only serves something refused, or nothing
    /// barman-rs needs).
    Moot(&'static str),
}

/// An option barman-rs does not read, what it does when a server sets it, and when it
/// counts as set (its value would change what Barman does).
#[derive(Clone, Copy, Debug)]
pub struct Unsupported {
    /// The option.
    pub option: &'static str,
    /// What barman-rs does.
    pub support: Support,
    /// Whether `server`'s value makes it count.
    pub in_effect: fn(&ServerConfig) -> bool,
}

/// Whether the configuration sets `option` itself (not Barman's default) to something
/// that asks for it (not `off`, not empty).
fn set(option: &'static str) -> impl Fn(&ServerConfig) -> bool {
    move |s| {
        let Some(setting) = s.setting(option) else {
            return false;
        };
        setting.source.is_some()
            && match &setting.value {
                Value::Bool(false) => false,
                Value::Text(t) => !t.trim().is_empty(),
                _ => true,
            }
    }
}

macro_rules! unsupported {
    ($option:literal, $support:expr) => {
        Unsupported {
            option: $option,
            support: $support,
            in_effect: |s| set($option)(s),
        }
    };
    ($option:literal, $support:expr, $when:expr) => {
        Unsupported {
            option: $option,
            support: $support,
            in_effect: $when,
        }
    };
}

const SNAPSHOT: Support = Support::Moot("only for backup_method = snapshot, which is refused");
const CLOUD: Support =
    Support::Moot("only for the barman-cloud commands and local-to-cloud, not available yet");

/// The server options barman-rs does not read, and what it does about each.
pub const UNSUPPORTED: &[Unsupported] = &[
    unsupported!(
        "wals_directory",
        Support::Refused(
            "a repository in cloud storage is not supported yet: wals_directory must be a path"
        ),
        |s| s
            .options()
            .wals_directory
            .as_ref()
            .is_some_and(|d| d.contains("://"))
    ),
    unsupported!(
        "basebackups_directory",
        Support::Refused(
            "a repository in cloud storage is not supported yet: basebackups_directory must be a path"
        ),
        |s| s
            .options()
            .basebackups_directory
            .as_ref()
            .is_some_and(|d| d.contains("://"))
    ),
    unsupported!(
        "backup_options",
        Support::Warned(
            "backup_options = exclusive_backup is not supported (PostgreSQL 15 removed exclusive backups): backups are concurrent"
        ),
        |s| s.backup_method() != "postgres"
            && s.options()
                .backup_options
                .iter()
                .any(|o| o == "exclusive_backup")
    ),
    unsupported!(
        "network_compression",
        Support::Warned(
            "network_compression has no effect on a local-rsync backup (nothing crosses a network)"
        ),
        |s| s.backup_method() == "local-rsync" && s.options().network_compression
    ),
    unsupported!(
        "autogenerate_manifest",
        Support::Moot("barman-rs writes a backup_manifest for every backup")
    ),
    unsupported!(
        "combine_mode",
        Support::Warned(
            "combine_mode is not used: block-level incremental backups are not supported yet"
        )
    ),
    unsupported!(
        "recovery_staging_path",
        Support::Warned(
            "recovery_staging_path is not used: compressed backups are unpacked on the Barman host (local_staging_path) and sent as files"
        )
    ),
    unsupported!(
        "staging_location",
        Support::Warned(
            "staging_location = remote is not supported: barman-rs stages on the Barman host (staging_path is used there)"
        ),
        |s| s.options().staging_location.as_deref() == Some("remote")
    ),
    unsupported!(
        "warehousepg_dbid",
        Support::Warned("warehousepg_dbid is not used: WarehousePG is not supported")
    ),
    unsupported!(
        "wal_retention_policy",
        Support::Moot("only 'main' is valid, and that is what barman-rs does")
    ),
    unsupported!("aws_check_object_lock", SNAPSHOT),
    unsupported!("aws_encryption", CLOUD),
    unsupported!("aws_read_timeout", CLOUD),
    unsupported!("aws_await_snapshots_timeout", SNAPSHOT),
    unsupported!("aws_profile", CLOUD),
    unsupported!("aws_region", CLOUD),
    unsupported!("aws_sse_kms_key_id", CLOUD),
    unsupported!("aws_snapshot_lock_mode", SNAPSHOT),
    unsupported!("aws_snapshot_lock_duration", SNAPSHOT),
    unsupported!("aws_snapshot_lock_cool_off_period", SNAPSHOT),
    unsupported!("aws_snapshot_lock_expiration_date", SNAPSHOT),
    unsupported!("azure_credential", CLOUD),
    unsupported!("azure_resource_group", SNAPSHOT),
    unsupported!("azure_subscription_id", SNAPSHOT),
    unsupported!("gcp_project", SNAPSHOT),
    unsupported!("gcp_zone", SNAPSHOT),
    unsupported!("snapshot_disks", SNAPSHOT),
    unsupported!("snapshot_instance", SNAPSHOT),
    unsupported!("snapshot_provider", SNAPSHOT),
    unsupported!("snapshot_gcp_project", SNAPSHOT),
    unsupported!("snapshot_zone", SNAPSHOT),
    unsupported!("cloud_delete_batch_size", CLOUD),
    unsupported!("cloud_staging_directory", CLOUD),
    unsupported!("cloud_staging_max_size", CLOUD),
    unsupported!("cloud_upload_max_archive_size", CLOUD),
    unsupported!("cloud_upload_min_chunk_size", CLOUD),
    unsupported!("cloud_wal_archive_parallel", CLOUD),
    unsupported!("cloud_wal_restore_parallel", CLOUD),
];

/// The global options barman-rs does not read, with what it does when they are set
/// (`true` when the value asks for what barman-rs does not do).
pub const UNSUPPORTED_GLOBAL: &[(&str, Support)] = &[];

/// Refusals and warnings for `server`: the first refusal, if any, and every warning.
pub(crate) fn review(server: &ServerConfig) -> (Option<&'static str>, Vec<&'static str>) {
    let mut refused = None;
    let mut warned = Vec::new();
    for u in UNSUPPORTED {
        if !(u.in_effect)(server) {
            continue;
        }
        match u.support {
            Support::Refused(m) => {
                refused.get_or_insert(m);
            }
            Support::Warned(m) => warned.push(m),
            Support::Moot(_) => {}
        }
    }
    (refused, warned)
}
