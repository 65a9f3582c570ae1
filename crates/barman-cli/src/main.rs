//! `barman`: Backup and Recovery Manager for PostgreSQL (barman-rs).

use std::path::PathBuf;
use std::process::ExitCode;

use barman_cli::{Context, Format, commands, fail, load_config, log, warning};
use clap::{Parser, Subcommand};

/// Backup and Recovery Manager for PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "barman", version, disable_version_flag = true)]
struct Cli {
    /// Print the version (of Barman's surface, then of barman-rs).
    #[arg(short = 'v', short_alias = 'V', long = "version", action = clap::ArgAction::Version)]
    version: (),
    /// Configuration file.
    #[arg(short = 'c', long = "config", global = true)]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(
        short = 'f',
        long = "format",
        global = true,
        value_enum,
        default_value = "console"
    )]
    format: Format,
    /// Whether to colour the output: `auto` when standard output and error are both
    /// terminals.
    #[arg(
        long = "color",
        visible_alias = "colour",
        global = true,
        value_enum,
        default_value = "auto"
    )]
    color: barman_cli::Color,
    /// Print only errors.
    #[arg(short = 'q', long = "quiet", global = true)]
    quiet: bool,
    /// Debug output (DEBUG messages on standard error).
    #[arg(short = 'd', long = "debug", global = true)]
    debug: bool,
    /// Override the log level of the configuration (`log_level`).
    #[arg(long = "log-level", global = true, value_parser = clap::builder::PossibleValuesParser::new(log::LEVEL_NAMES))]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Every subcommand: its arguments and its code are in `commands::<name>`.
#[derive(Debug, Subcommand)]
enum Command {
    /// List the configured servers.
    #[command(alias = "list-server")]
    ListServers(commands::list_servers::Args),
    /// Show the configuration of servers (`all` for every one).
    #[command(alias = "show-server")]
    ShowServers(commands::show_servers::Args),
    /// Check that servers are ready to be backed up (`all` for every one).
    Check(commands::check::Args),
    /// Show the status of servers (`all` for every one).
    Status(commands::status::Args),
    /// Close the current WAL segment so that it gets archived.
    #[command(alias = "switch-xlog")]
    SwitchWal(commands::switch_wal::Args),
    /// Archive a WAL file given by path, or the tar stream of barman-wal-archive on stdin.
    PutWal(commands::put_wal::Args),
    /// Archive the WAL files waiting in incoming/ and streaming/.
    ArchiveWal(commands::archive_wal::Args),
    /// Stream WAL from the server into streaming/ (replication protocol), or manage its
    /// replication slot.
    ReceiveWal(commands::receive_wal::Args),
    /// Show the streaming clients of servers (`all` for every one): standbys and WAL
    /// streamers, with their positions and lag.
    ReplicationStatus(commands::replication_status::Args),
    /// List the processes working for a server (receive-wal, backup, cron, ...).
    #[command(alias = "list-process")]
    ListProcesses(commands::processes::ListArgs),
    /// Stop a process working for a server (a task named by list-processes).
    TerminateProcess(commands::processes::TerminateArgs),
    /// Send an archived WAL file to standard output (or a directory).
    GetWal(commands::get_wal::Args),
    /// Periodic maintenance, to run every minute: WAL archiving, backup checks,
    /// retention.
    Cron(commands::cron::Args),
    /// Remove the lock files of the lock directory that no process holds.
    LockDirectoryCleanup,
    /// Rebuild the WAL catalogue (xlog.db) from the archive.
    RebuildXlogdb(commands::rebuild_xlogdb::Args),
    /// Print diagnostic information (configuration, system, servers) as JSON.
    Diagnose(commands::diagnose::Args),
    /// List the backups of servers (`all` for every one), newest first.
    #[command(alias = "list-backup")]
    ListBackups(commands::list_backups::Args),
    /// Show the details of a backup.
    #[command(alias = "show-backups")]
    ShowBackup(commands::show_backup::Args),
    /// List the files of a backup.
    ListFiles(commands::list_files::Args),
    /// Delete a backup (and its incremental descendants).
    Delete(commands::delete::Args),
    /// Keep a backup forever (or release it, or show its keep status).
    Keep(commands::keep::Args),
    /// Decide whether a WAITING_FOR_WALS backup is DONE or FAILED.
    CheckBackup(commands::check_backup::Args),
    /// Take a base backup of servers (`all` for every active one).
    Backup(Box<commands::backup::Args>),
    /// Write the backup_manifest of a backup that has none (SHA256 of every file).
    GenerateManifest(commands::generate_manifest::Args),
    /// Write a backup and the WAL files it needs into a portable tarball.
    ExportBackup(commands::export::ExportArgs),
    /// Take a tarball written by export-backup into the catalogue.
    ImportBackup(commands::export::ImportArgs),
    /// Check every file of a backup against its backup_manifest.
    #[command(alias = "verify")]
    VerifyBackup(commands::verify_backup::Args),
    /// Restore a backup into a directory, locally or on a remote host.
    #[command(alias = "restore")]
    Recover(Box<commands::recover::Args>),
    /// Test a backup: recover it into a throwaway directory, start it, check every
    /// relation, run commands and dump it, then stop and remove it (barman-rs).
    Sandbox(Box<commands::sandbox::Args>),
    /// Check that the WAL archive can be used by a new cluster.
    CheckWalArchive(commands::check_wal_archive::Args),
    /// Print the state a passive node synchronises from (backups, WAL, configuration),
    /// as JSON.
    SyncInfo(commands::sync::InfoArgs),
    /// Copy a backup from the primary Barman host (passive node).
    SyncBackup(commands::sync::BackupArgs),
    /// Copy the WAL files from the primary Barman host (passive node).
    SyncWals(commands::sync::WalsArgs),
    /// Apply a model's options to a server (or remove them with --reset).
    ConfigSwitch(commands::config_change::SwitchArgs),
    /// Change options of servers and models, given as JSON.
    ConfigUpdate(commands::config_change::UpdateArgs),
}

/// The logger Barman's messages of this command come from.
fn log_source(command: &Command) -> &'static str {
    match command {
        Command::ListServers(_)
        | Command::ShowServers(_)
        | Command::Cron(_)
        | Command::LockDirectoryCleanup
        | Command::ConfigSwitch(_)
        | Command::ConfigUpdate(_) => "barman.cli",
        Command::Check(_)
        | Command::Status(_)
        | Command::ReplicationStatus(_)
        | Command::ListProcesses(_)
        | Command::TerminateProcess(_)
        | Command::SwitchWal(_)
        | Command::PutWal(_)
        | Command::GetWal(_)
        | Command::CheckWalArchive(_)
        | Command::SyncInfo(_)
        | Command::SyncBackup(_)
        | Command::SyncWals(_) => "barman.server",
        Command::ArchiveWal(_) | Command::ReceiveWal(_) => "barman.wal_archiver",
        Command::RebuildXlogdb(_) => "barman.backup",
        Command::Diagnose(_) => "barman.diagnose",
        Command::Recover(_) | Command::Sandbox(_) => "barman.recovery_executor",
        Command::Backup(_)
        | Command::VerifyBackup(_)
        | Command::GenerateManifest(_)
        | Command::ExportBackup(_)
        | Command::ImportBackup(_) => "barman.backup",
        Command::ListBackups(_)
        | Command::ShowBackup(_)
        | Command::ListFiles(_)
        | Command::Delete(_)
        | Command::CheckBackup(_) => "barman.server",
        Command::Keep(_) => "barman.backup",
    }
}

/// The exit code as a number, for the log.
fn code_number(code: ExitCode) -> u8 {
    (0..=u8::MAX)
        .find(|n| ExitCode::from(*n) == code)
        .unwrap_or(1)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    barman_cli::set_color(cli.color);
    let config = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if let Err(e) = barman_cli::run_as_barman_user(&config) {
        return fail(e);
    }
    let global = config.global();
    let level = cli
        .log_level
        .as_deref()
        .unwrap_or(&global.log_level)
        .to_owned();
    log::init(log::Settings {
        file: global.log_file.as_deref().map(std::path::PathBuf::from),
        level: log::parse_level(&level).unwrap_or(log::INFO),
        format: global.log_format.clone(),
        debug_console: cli.debug,
    });
    for w in config.warnings() {
        log::log_as(log::WARNING, "barman.config", w);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    log::debug_as(
        "barman.cli",
        &format!(
            "Initialised barman-rs version {} (config: {}, args: {:?})",
            env!("CARGO_PKG_VERSION"),
            global.config_file,
            args
        ),
    );
    let name = std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "barman".to_owned());
    let line = format!("{name} {}", args.join(" "));
    log::log_as(log::INFO, "barman.cli", &format!("Starting: {line}"));
    log::set_source(log_source(&cli.command));
    // Options set that barman-rs only warns about: shown once per command, except on
    // the per-WAL-file path (put-wal, get-wal), where PostgreSQL's log would get them
    // for every segment: logged there.
    // cron (every minute, its output mailed) logs them too.
    let per_wal = matches!(
        cli.command,
        Command::PutWal(_) | Command::GetWal(_) | Command::Cron(_)
    );
    for w in config.unsupported() {
        if per_wal || cli.quiet {
            log::log_as(log::WARNING, "barman.config", w);
        } else {
            warning(w);
        }
    }
    let ctx = Context {
        config,
        format: cli.format,
        quiet: cli.quiet,
    };
    let code = run(&ctx, &cli.command);
    let n = code_number(code);
    log::log_as(
        log::INFO,
        "barman.cli",
        &if n == 0 {
            format!("Finished: {line} (exit code 0)")
        } else {
            format!("Failed: {line} (exit code {n})")
        },
    );
    code
}

fn run(ctx: &Context, command: &Command) -> ExitCode {
    use commands::*;
    match command {
        Command::ListServers(a) => list_servers::run(ctx, a),
        Command::ShowServers(a) => show_servers::run(ctx, a),
        Command::Check(a) => check::run(ctx, a),
        Command::Status(a) => status::run(ctx, a),
        Command::SwitchWal(a) => switch_wal::run(ctx, a),
        Command::PutWal(a) => put_wal::run(ctx, a),
        Command::ArchiveWal(a) => archive_wal::run(ctx, a),
        Command::ReceiveWal(a) => receive_wal::run(ctx, a),
        Command::ReplicationStatus(a) => replication_status::run(ctx, a),
        Command::ListProcesses(a) => processes::list(ctx, a),
        Command::TerminateProcess(a) => processes::terminate(ctx, a),
        Command::GetWal(a) => get_wal::run(ctx, a),
        Command::Cron(a) => cron::run(ctx, a),
        Command::LockDirectoryCleanup => processes::cleanup(ctx),
        Command::RebuildXlogdb(a) => rebuild_xlogdb::run(ctx, a),
        Command::Diagnose(a) => diagnose::run(ctx, a),
        Command::ListBackups(a) => list_backups::run(ctx, a),
        Command::ShowBackup(a) => show_backup::run(ctx, a),
        Command::ListFiles(a) => list_files::run(ctx, a),
        Command::Delete(a) => delete::run(ctx, a),
        Command::Keep(a) => keep::run(ctx, a),
        Command::CheckBackup(a) => check_backup::run(ctx, a),
        Command::Backup(a) => backup::run(ctx, a),
        Command::VerifyBackup(a) => verify_backup::run(ctx, a),
        Command::GenerateManifest(a) => generate_manifest::run(ctx, a),
        Command::ExportBackup(a) => export::export(ctx, a),
        Command::ImportBackup(a) => export::import(ctx, a),
        Command::Recover(a) => recover::run(ctx, a),
        Command::Sandbox(a) => sandbox::run(ctx, a),
        Command::CheckWalArchive(a) => check_wal_archive::run(ctx, a),
        Command::SyncInfo(a) => sync::info(ctx, a),
        Command::SyncBackup(a) => sync::backup(ctx, a),
        Command::SyncWals(a) => sync::wals(ctx, a),
        Command::ConfigSwitch(a) => config_change::switch(ctx, a),
        Command::ConfigUpdate(a) => config_change::update(ctx, a),
    }
}

/// A command line clap refuses: its error in one line and the usage line (exit 2, as
/// argparse); `--help` and `--version` print in full.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if e.kind() == ErrorKind::DisplayVersion {
        // Barman's `-v`: scripts read its first word as the Barman version whose
        // commands, options and files this one has.
        println!(
            "{} Barman-compatible (barman-rs {})",
            barman_core::BARMAN_VERSION,
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let text = e.render().to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("error: invalid arguments");
    eprintln!("{first}");
    if let Some(usage) = text.lines().find(|l| l.starts_with("Usage:")) {
        eprintln!("{usage}");
    }
    ExitCode::from(2)
}
