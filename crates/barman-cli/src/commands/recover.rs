//! `barman recover` (`restore`): restore a backup into a directory, locally or on a
//! remote host, ready to replay to a target.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use barman_core::recover::{RecoverOptions, RecoverReport, TargetAction, recover};
use serde_json::json;

use crate::commands::runtime;
use crate::{Context, fail};

/// The arguments of `barman recover`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `--target-time/xid/lsn/name/immediate`, `--target-tli`, `--exclusive`.
    #[command(flatten)]
    pub target: super::TargetArgs,
    /// What to do when the target is reached.
    #[arg(long = "target-action", value_parser = ["pause", "shutdown", "promote"])]
    pub target_action: Option<String>,
    /// Restore a tablespace elsewhere: NAME:LOCATION (repeatable).
    #[arg(long = "tablespace", value_name = "NAME:LOCATION")]
    pub tablespace: Vec<String>,
    /// Restore onto the host this ssh command reaches (e.g. "ssh postgres@pg").
    #[arg(long = "remote-ssh-command")]
    pub remote_ssh_command: Option<String>,
    /// Files copied at once.
    #[arg(short = 'j', long = "jobs")]
    pub jobs: Option<usize>,
    /// Start at most this many rsync jobs at once over ssh
    /// (parallel_jobs_start_batch_size).
    #[arg(long = "jobs-start-batch-size", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs_start_batch_size: Option<u64>,
    /// Seconds between two batches of rsync jobs (parallel_jobs_start_batch_period).
    #[arg(long = "jobs-start-batch-period", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs_start_batch_period: Option<u64>,
    /// Bandwidth limit of remote copies, in KiB/s.
    #[arg(long = "bwlimit")]
    pub bwlimit: Option<u64>,
    /// Let restore_command fetch the WAL from Barman instead of copying it.
    #[arg(long = "get-wal", overrides_with = "no_get_wal")]
    pub get_wal: bool,
    /// Copy the WAL (overrides `recovery_options = get-wal`).
    #[arg(long = "no-get-wal")]
    pub no_get_wal: bool,
    /// Start the restored server as a standby (standby.signal).
    #[arg(long = "standby-mode")]
    pub standby_mode: bool,
    /// The file the recovery settings go to (default postgresql.auto.conf).
    #[arg(long = "recovery-conf-filename")]
    pub recovery_conf_filename: Option<String>,
    /// Restore over an existing directory, copying only what differs.
    #[arg(long = "delta-restore", overrides_with = "no_delta_restore")]
    pub delta_restore: bool,
    /// Refuse a non-empty destination (overrides `recovery_options = delta-restore`).
    #[arg(long = "no-delta-restore")]
    pub no_delta_restore: bool,
    /// Where a point-in-time recovery gets its WAL files (default DEST/barman_wal).
    #[arg(long = "staging-wal-directory")]
    pub staging_wal_directory: Option<PathBuf>,
    /// `--retry-times`, `--retry-sleep`, `--no-retry`.
    #[command(flatten)]
    pub retry: super::RetryArgs,
    /// Compress what a remote restore sends (overrides network_compression).
    #[arg(
        long = "network-compression",
        overrides_with = "no_network_compression"
    )]
    pub network_compression: bool,
    /// Do not compress what a remote restore sends.
    #[arg(long = "no-network-compression")]
    pub no_network_compression: bool,
    /// The restore_command to write in get-wal mode instead of Barman's.
    #[arg(long = "restore-command")]
    pub restore_command: Option<String>,
    /// The SSH port barman-wal-restore uses to reach this host (get-wal mode of a
    /// remote restore).
    #[arg(long = "recovery-option-port")]
    pub recovery_option_port: Option<u16>,
    /// Copy the .partial WAL files too (barman-rs always does without get-wal).
    #[arg(long = "partial-wal")]
    pub partial_wal: bool,
    /// Where compressed backups are unpacked on this host (overrides
    /// local_staging_path).
    #[arg(long = "local-staging-path")]
    pub local_staging_path: Option<PathBuf>,
    /// Where intermediate files are staged (with --staging-location local, the
    /// default: as --local-staging-path).
    #[arg(long = "staging-path")]
    pub staging_path: Option<PathBuf>,
    /// Where --staging-path is: only `local` (this host) is supported.
    #[arg(long = "staging-location", value_parser = ["local", "remote"])]
    pub staging_location: Option<String>,
    /// Not needed by barman-rs (compressed backups are unpacked on this host and sent
    /// as files): accepted with a warning.
    #[arg(long = "recovery-staging-path")]
    pub recovery_staging_path: Option<PathBuf>,
    /// Refused: snapshot recovery (cloud VM disks) needs a cloud provider's API.
    #[arg(long = "snapshot-recovery-instance")]
    pub snapshot_recovery_instance: Option<String>,
    /// Refused: snapshot recovery.
    #[arg(long = "snapshot-recovery-zone")]
    pub snapshot_recovery_zone: Option<String>,
    /// Refused: snapshot recovery.
    #[arg(long = "gcp-zone")]
    pub gcp_zone: Option<String>,
    /// Refused: snapshot recovery.
    #[arg(long = "azure-resource-group")]
    pub azure_resource_group: Option<String>,
    /// Refused: snapshot recovery.
    #[arg(long = "aws-region")]
    pub aws_region: Option<String>,
    /// pg_combinebackup's copy mode for block-level incremental backups, which
    /// barman-rs does not take yet: accepted with a warning.
    #[arg(long = "combine-mode", value_parser = ["copy", "link", "clone", "copy-file-range"])]
    pub combine_mode: Option<String>,
    /// The server.
    pub server: String,
    /// The backup: an id, latest, oldest, last-failed, latest-full, a name, or auto.
    pub backup_id: String,
    /// The destination directory.
    pub destination_directory: PathBuf,
}

fn flag(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

fn options(ctx: &Context, a: &Args) -> Result<RecoverOptions, String> {
    let dest = if a.remote_ssh_command.is_some() {
        a.destination_directory.clone()
    } else {
        std::path::absolute(&a.destination_directory).map_err(|e| {
            format!(
                "destination directory {}: {e}",
                a.destination_directory.display()
            )
        })?
    };
    let mut o = RecoverOptions::new(&a.backup_id, dest);
    (o.target, o.target_tli) = a.target.parse()?;
    o.exclusive = a.target.exclusive;
    o.target_action = a
        .target_action
        .as_deref()
        .map(str::parse::<TargetAction>)
        .transpose()
        .map_err(|e| e.to_string())?;
    for t in &a.tablespace {
        let Some((name, location)) = t.split_once(':') else {
            return Err(format!(
                "invalid --tablespace {t:?}: expected NAME:LOCATION"
            ));
        };
        o.tablespaces
            .push((name.to_owned(), PathBuf::from(location)));
    }
    o.remote_ssh_command = a.remote_ssh_command.clone();
    o.jobs = a.jobs;
    o.jobs_start_batch_size = a
        .jobs_start_batch_size
        .and_then(|n| usize::try_from(n).ok());
    o.jobs_start_batch_period = a.jobs_start_batch_period;
    o.bwlimit_kib = a.bwlimit;
    o.get_wal = flag(a.get_wal, a.no_get_wal);
    o.standby_mode = a.standby_mode;
    o.recovery_conf_filename = a.recovery_conf_filename.clone();
    o.delta_restore = flag(a.delta_restore, a.no_delta_restore);
    o.staging_wal_directory = a.staging_wal_directory.clone();
    o.retry_times = a.retry.times();
    o.retry_sleep = a.retry.retry_sleep;
    o.network_compression = flag(a.network_compression, a.no_network_compression);
    o.restore_command = a.restore_command.clone();
    o.recovery_option_port = a.recovery_option_port;
    o.partial_wal = a.partial_wal;
    if a.staging_location.as_deref() == Some("remote") {
        return Err(
            "--staging-location remote is not supported: barman-rs stages on the Barman host (--staging-location local)"
                .to_owned(),
        );
    }
    o.local_staging_path = a
        .local_staging_path
        .clone()
        .or_else(|| a.staging_path.clone());
    if let Some(p) = &o.local_staging_path
        && !p.is_absolute()
    {
        return Err(format!("the staging path {} is not absolute", p.display()));
    }
    // get-wal mode runs this very barman with this configuration file.
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "barman".to_owned());
    o.barman_command = vec![
        exe,
        "-c".to_owned(),
        ctx.config.global().config_file.clone(),
    ];
    o.barman_host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    o.local_tz = jiff::tz::TimeZone::system();
    Ok(o)
}

/// `barman recover SERVER BACKUP_ID DESTINATION_DIRECTORY`.
pub fn run(ctx: &Context, a: &Args) -> ExitCode {
    let Some(server) = ctx.config.server(&a.server) else {
        return fail(format!("unknown server '{}'", a.server));
    };
    if [
        &a.snapshot_recovery_instance,
        &a.snapshot_recovery_zone,
        &a.gcp_zone,
        &a.azure_resource_group,
        &a.aws_region,
    ]
    .iter()
    .any(|o| o.is_some())
    {
        return fail(
            "snapshot recovery is not supported: cloud VM disk snapshots need a cloud provider's API (backup_method = snapshot is refused too)",
        );
    }
    let opts = match options(ctx, a) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    if a.recovery_staging_path.is_some() {
        crate::warning(
            "--recovery-staging-path is not needed: barman-rs unpacks compressed backups on the Barman host and sends files",
        );
    }
    if a.combine_mode.is_some() {
        crate::warning(
            "--combine-mode is not used: block-level incremental backups are not supported yet",
        );
    }
    let started = Instant::now();
    let start_time = jiff::ZonedDateTime::now();
    let report = match runtime().block_on(recover(ctx.config.global(), server, &opts)) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    print_report(ctx, &report);
    for w in report
        .hook_warnings
        .iter()
        .chain(&report.catalogue_warnings)
        .chain(&report.copy_warnings)
        .chain(&report.option_warnings)
    {
        crate::warning(w);
    }
    ctx.out(format!(
        "Restore operation completed (start time: {}, elapsed time: {:.1?})",
        start_time.strftime("%Y-%m-%d %H:%M:%S%.6f%:z"),
        started.elapsed()
    ));
    ctx.out("Your PostgreSQL server has been successfully prepared for recovery!");
    ExitCode::SUCCESS
}

fn print_report(ctx: &Context, r: &RecoverReport) {
    let kind = if r.remote_host.is_some() {
        "remote"
    } else {
        "local"
    };
    ctx.info(format!(
        "Starting {kind} restore for server {} using backup {}",
        r.server, r.backup_id
    ));
    ctx.info(format!(
        "Destination directory: {}",
        r.destination.display()
    ));
    if r.target_time_assumed_local {
        crate::warning(
            "No time zone has been specified through '--target-time' command-line option. Barman assumed the same time zone from the Barman host.",
        );
    }
    if let Some(t) = &r.target_description {
        ctx.info(format!("Doing PITR. Recovery target {t}"));
    }
    for t in &r.tablespaces {
        ctx.info(format!(
            "\t{}, {}, {}{}",
            t.oid,
            t.name,
            t.location.display(),
            if t.relocated { " (relocated)" } else { "" }
        ));
    }
    if r.get_wal {
        ctx.info("restore_command fetches the WAL files from Barman (get-wal)");
    } else if let Some(dir) = &r.wal_destination {
        ctx.info(format!(
            "Copied {} required WAL files into {} (timeline {})",
            r.wal_files.len(),
            dir.display(),
            r.target_timeline
        ));
    }
    if let Some(f) = &r.recovery_configuration_file
        && (r.pitr || r.get_wal || r.signal_file.is_some())
    {
        ctx.info(format!("Recovery settings written to {f}"));
    }
    if !r.changes.is_empty() {
        ctx.out("");
        ctx.out("IMPORTANT");
        ctx.out("These settings have been modified to prevent data losses");
        ctx.out("");
        for c in &r.changes {
            match &c.value {
                Some(v) => ctx.out(format!("{} line {}: {} = {v}", c.file, c.line, c.key)),
                None => ctx.out(format!(
                    "{} line {}: {} (commented out)",
                    c.file, c.line, c.key
                )),
            }
        }
    }
    if !r.warnings.is_empty() {
        ctx.out("");
        ctx.out("WARNING");
        ctx.out("You are required to review the following options as potentially dangerous");
        ctx.out("");
        for w in &r.warnings {
            ctx.out(format!(
                "{} line {}: {} = {}",
                w.file,
                w.line,
                w.key,
                w.value.as_deref().unwrap_or("")
            ));
        }
    }
    if !r.missing_files.is_empty() {
        ctx.out("");
        ctx.out("WARNING");
        ctx.out("The following configuration files have not been saved during backup, hence they have not been restored.");
        ctx.out("You need to manually restore them in order to start the recovered PostgreSQL instance:");
        ctx.out("");
        for f in &r.missing_files {
            ctx.out(format!("    {f}"));
        }
    }
    ctx.out("");
    ctx.json(&json!({
        "server": r.server,
        "backup_id": r.backup_id.to_string(),
        "destination": r.destination.display().to_string(),
        "remote_host": r.remote_host,
        "pitr": r.pitr,
        "target": r.target_description,
        "target_timeline": u32::from(r.target_timeline),
        "get_wal": r.get_wal,
        "wal_destination": r.wal_destination.as_ref().map(|d| d.display().to_string()),
        "wal_files": r.wal_files.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
        "recovery_configuration_file": r.recovery_configuration_file,
        "signal_file": r.signal_file,
        "tablespaces": r.tablespaces.iter().map(|t| json!({
            "name": t.name, "oid": t.oid, "location": t.location.display().to_string(), "relocated": t.relocated,
        })).collect::<Vec<_>>(),
        "changes": r.changes.iter().map(|c| json!({"file": c.file, "line": c.line, "key": c.key, "value": c.value})).collect::<Vec<_>>(),
        "warnings": r.warnings.iter().map(|c| json!({"file": c.file, "line": c.line, "key": c.key, "value": c.value})).collect::<Vec<_>>(),
        "missing_files": r.missing_files,
        "bytes_copied": r.bytes_copied,
    }));
}
