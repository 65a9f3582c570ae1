//! `barman`: Backup and Recovery Manager for PostgreSQL (barman-rs).

use std::path::PathBuf;
use std::process::ExitCode;

use barman_cli::{Context, Format, commands, fail, load_config, log, warning};
use clap::{Parser, Subcommand};

/// Backup and Recovery Manager for PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "barman", version)]
struct Cli {
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

#[derive(Debug, Subcommand)]
enum Command {
    /// List the configured servers.
    ListServers {
        /// Print only the names.
        #[arg(long)]
        minimal: bool,
    },
    /// Show the configuration of servers (`all` for every one).
    ShowServers {
        /// Server names.
        #[arg(required = true)]
        servers: Vec<String>,
    },
    /// Check that servers are ready to be backed up (`all` for every one).
    Check {
        /// Nagios plugin output.
        #[arg(long)]
        nagios: bool,
        /// Server names.
        #[arg(required = true)]
        servers: Vec<String>,
    },
    /// Show the status of servers (`all` for every one).
    Status {
        /// Server names.
        #[arg(required = true)]
        servers: Vec<String>,
    },
    /// Close the current WAL segment so that it gets archived.
    #[command(alias = "switch-xlog")]
    SwitchWal {
        /// Switch even without WAL activity (runs a CHECKPOINT first).
        #[arg(long)]
        force: bool,
        /// Wait for one WAL file to be archived.
        #[arg(long)]
        archive: bool,
        /// The time, in seconds, to wait for a new WAL file to be archived before timing
        /// out (0: no limit).
        #[arg(long = "archive-timeout", value_name = "TIMEOUT", default_value_t = 30)]
        archive_timeout: u64,
        /// Server names (`all` for every one).
        #[arg(required = true)]
        servers: Vec<String>,
    },
    /// Archive a WAL file given by path, or the tar stream of barman-wal-archive on stdin.
    PutWal {
        /// Only check that the server accepts WAL files.
        #[arg(short = 't', long = "test")]
        test: bool,
        /// The server.
        server: String,
        /// The WAL file (`%p`); without it, a tar stream is read from standard input.
        wal_path: Option<PathBuf>,
    },
    /// Archive the WAL files waiting in incoming/ and streaming/.
    ArchiveWal {
        /// Server names (`all` for every one).
        #[arg(required = true)]
        servers: Vec<String>,
    },
    /// Send an archived WAL file to standard output (or a directory).
    GetWal {
        /// Write the file into this directory instead of standard output.
        #[arg(short = 'o', long = "output-directory")]
        output_directory: Option<PathBuf>,
        /// Also look for .partial files.
        #[arg(short = 'P', long)]
        partial: bool,
        /// Compress the output with gzip.
        #[arg(short = 'z', short_alias = 'x', long = "gzip", group = "out_codec")]
        gzip: bool,
        /// Compress the output with bzip2.
        #[arg(short = 'j', long = "bzip2", group = "out_codec")]
        bzip2: bool,
        /// Send the file as stored.
        #[arg(long = "keep-compression")]
        keep_compression: bool,
        /// List up to N consecutive existing WAL names from WAL_NAME on.
        #[arg(short = 'p', long = "peek")]
        peek: Option<usize>,
        /// Only check that the server can serve WAL files.
        #[arg(short = 't', long = "test")]
        test: bool,
        /// (barman-rs) Send the named WAL segments the archive holds as one tar stream
        /// (decompressed, or as stored with --keep-compression), the stream compressed
        /// with CODEC (lz4, zstd, ...; default none); missing ones are left out
        /// (barman-wal-restore's prefetch).
        #[arg(
            long = "tar",
            value_name = "CODEC",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "none",
            conflicts_with_all = ["output_directory", "peek", "test", "gzip", "bzip2", "partial"]
        )]
        tar: Option<String>,
        /// The server.
        server: String,
        /// The WAL file name.
        wal_name: String,
        /// With --tar: more WAL file names.
        #[arg(requires = "tar", value_name = "WAL_NAME")]
        more_names: Vec<String>,
    },
    /// Periodic maintenance, to run every minute: WAL archiving, backup checks,
    /// retention.
    Cron,
    /// Rebuild the WAL catalogue (xlog.db) from the archive.
    RebuildXlogdb {
        /// Server names (`all` for every one).
        #[arg(required = true)]
        servers: Vec<String>,
    },
    /// Print diagnostic information (configuration, system, servers) as JSON.
    Diagnose {
        /// Show the file that sets each configuration option.
        #[arg(long = "show-config-source")]
        show_config_source: bool,
    },
    /// List the backups of servers (`all` for every one), newest first.
    #[command(alias = "list-backup")]
    ListBackups {
        /// Print only the backup ids.
        #[arg(long)]
        minimal: bool,
        /// Server names (`all` for every one).
        #[arg(required = true)]
        servers: Vec<String>,
    },
    /// Show the details of a backup.
    #[command(alias = "show-backups")]
    ShowBackup {
        /// The server.
        server: String,
        /// The backup id, name or shortcut (latest, oldest, last-failed, latest-full).
        backup_id: String,
    },
    /// List the files of a backup.
    ListFiles {
        /// What to list.
        #[arg(long, value_enum, default_value = "standalone")]
        target: FilesTargetArg,
        /// Also list empty directories.
        #[arg(long = "list-empty-directories")]
        list_empty_directories: bool,
        /// The server.
        server: String,
        /// The backup id, name or shortcut.
        backup_id: String,
    },
    /// Delete a backup (and its incremental descendants).
    Delete {
        /// The server.
        server: String,
        /// The backup id, name or shortcut.
        backup_id: String,
    },
    /// Keep a backup forever (or release it, or show its keep status).
    #[command(group(clap::ArgGroup::new("keep_action").required(true).multiple(true).args(["status", "release", "target"])))]
    Keep {
        /// Show the keep status (full, standalone or nokeep).
        #[arg(short = 's', long)]
        status: bool,
        /// Remove the keep annotation.
        #[arg(short = 'r', long)]
        release: bool,
        /// What to keep: the backup and all later WAL (full), or only the WAL it needs
        /// (standalone).
        #[arg(long, value_enum)]
        target: Option<KeepTargetArg>,
        /// The server.
        server: String,
        /// The backup id, name or shortcut.
        backup_id: String,
    },
    /// Decide whether a WAITING_FOR_WALS backup is DONE or FAILED.
    CheckBackup {
        /// The server.
        server: String,
        /// The backup id, name or shortcut.
        backup_id: String,
    },
    /// Take a base backup of servers (`all` for every active one).
    Backup {
        /// Ask PostgreSQL for an immediate checkpoint.
        #[arg(
            long = "immediate-checkpoint",
            overrides_with = "no_immediate_checkpoint"
        )]
        immediate_checkpoint: bool,
        /// Let PostgreSQL spread the checkpoint.
        #[arg(long = "no-immediate-checkpoint")]
        no_immediate_checkpoint: bool,
        /// Reuse unchanged files of the previous backup: off, copy or link (no value: link).
        #[arg(long = "reuse-backup", num_args = 0..=1, default_missing_value = "link", value_parser = ["off", "copy", "link"])]
        reuse_backup: Option<String>,
        /// How many files to copy at once.
        #[arg(short = 'j', long = "jobs")]
        jobs: Option<usize>,
        /// Bandwidth limit in KiB/s (0: none).
        #[arg(long)]
        bwlimit: Option<u64>,
        /// Wait for every WAL file the backup needs to be archived.
        #[arg(short = 'w', long)]
        wait: bool,
        /// With --wait, give up after this many seconds (0: never).
        #[arg(long = "wait-timeout", default_value_t = 0)]
        wait_timeout: u64,
        /// A name for the backup, usable instead of its id.
        #[arg(long)]
        name: Option<String>,
        /// Take a PostgreSQL 17 block-level incremental on top of this backup.
        #[arg(long)]
        incremental: Option<String>,
        #[command(flatten)]
        retry: commands::RetryArgs,
        /// Write a backup_manifest (always done).
        #[arg(long = "manifest")]
        manifest: bool,
        /// Refused: barman-rs always writes a backup_manifest (recover and
        /// verify-backup rely on it).
        #[arg(long = "no-manifest")]
        no_manifest: bool,
        /// Seconds between the queries that keep the backup's session alive during the
        /// copy (keepalive_interval; 0: none).
        #[arg(long = "keepalive-interval")]
        keepalive_interval: Option<u64>,
        /// Refused: barman-rs runs no checks before a backup, so no check can time out.
        #[arg(long = "check-timeout")]
        check_timeout: Option<u64>,
        /// Server names.
        #[arg(required = true)]
        servers: Vec<String>,
    },
    /// Check every file of a backup against its backup_manifest.
    #[command(alias = "verify")]
    VerifyBackup {
        /// The server.
        server: String,
        /// The backup id, name or shortcut.
        backup_id: String,
    },
    /// Restore a backup into a directory, locally or on a remote host.
    #[command(alias = "restore")]
    Recover(Box<commands::recover::RecoverArgs>),
    /// Check that the WAL archive can be used by a new cluster.
    CheckWalArchive {
        /// Fail if WAL files of this timeline or newer exist.
        #[arg(long)]
        timeline: Option<u32>,
        /// The server.
        server: String,
    },
}

/// `list-files --target`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum FilesTargetArg {
    /// The backup's files and the WAL it needs.
    Standalone,
    /// The backup's files.
    Data,
    /// The WAL files from the backup until the next one.
    Wal,
    /// Data and WAL.
    Full,
}

/// `keep --target`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum KeepTargetArg {
    /// The backup and every later WAL file.
    Full,
    /// The backup and the WAL it needs.
    Standalone,
}

/// The logger Barman's messages of this command come from.
fn log_source(command: &Command) -> &'static str {
    match command {
        Command::ListServers { .. } | Command::ShowServers { .. } | Command::Cron => "barman.cli",
        Command::Check { .. }
        | Command::Status { .. }
        | Command::SwitchWal { .. }
        | Command::PutWal { .. }
        | Command::GetWal { .. }
        | Command::CheckWalArchive { .. } => "barman.server",
        Command::ArchiveWal { .. } => "barman.wal_archiver",
        Command::RebuildXlogdb { .. } => "barman.backup",
        Command::Diagnose { .. } => "barman.diagnose",
        Command::Recover(_) => "barman.recovery_executor",
        Command::Backup { .. } | Command::VerifyBackup { .. } => "barman.backup",
        Command::ListBackups { .. }
        | Command::ShowBackup { .. }
        | Command::ListFiles { .. }
        | Command::Delete { .. }
        | Command::CheckBackup { .. } => "barman.server",
        Command::Keep { .. } => "barman.backup",
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
        Command::PutWal { .. } | Command::GetWal { .. } | Command::Cron
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
    match command {
        Command::ListServers { minimal } => commands::servers::list(ctx, *minimal),
        Command::ShowServers { servers } => commands::servers::show(ctx, servers),
        Command::Check { nagios, servers } => commands::server::check(ctx, servers, *nagios),
        Command::Status { servers } => commands::server::status(ctx, servers),
        Command::SwitchWal {
            force,
            archive,
            archive_timeout,
            servers,
        } => {
            commands::server::switch_wal(ctx, servers, *force, archive.then_some(*archive_timeout))
        }
        Command::Diagnose { show_config_source } => {
            commands::diagnose::exec(ctx, *show_config_source)
        }
        Command::PutWal {
            test,
            server,
            wal_path,
        } => commands::wal::put(ctx, server, wal_path.as_deref(), *test),
        Command::ArchiveWal { servers } => commands::wal::archive_wal(ctx, servers),
        Command::Cron => commands::wal::cron(ctx),
        Command::GetWal {
            output_directory,
            partial,
            gzip,
            bzip2,
            keep_compression,
            peek,
            test,
            tar,
            server,
            wal_name,
            more_names,
        } => {
            if let Some(codec) = tar {
                let names: Vec<&str> = std::iter::once(wal_name.as_str())
                    .chain(more_names.iter().map(String::as_str))
                    .collect();
                return commands::wal::get_wals_tar(ctx, server, &names, codec, *keep_compression);
            }
            let compression = if *gzip {
                Some(barman_wal::Codec::Gzip)
            } else if *bzip2 {
                Some(barman_wal::Codec::Bzip2)
            } else {
                None
            };
            let args = commands::wal::GetWalArgs {
                output_directory: output_directory.as_deref(),
                partial: *partial,
                compression,
                keep_compression: *keep_compression,
                peek: *peek,
                test: *test,
            };
            commands::wal::get_wal(ctx, server, wal_name, &args)
        }
        Command::RebuildXlogdb { servers } => commands::wal::rebuild_xlogdb(ctx, servers),
        Command::Backup {
            immediate_checkpoint,
            no_immediate_checkpoint,
            reuse_backup,
            jobs,
            bwlimit,
            wait,
            wait_timeout,
            name,
            incremental,
            servers,
            retry,
            no_manifest,
            keepalive_interval,
            check_timeout,
            ..
        } => {
            if *no_manifest {
                return fail(
                    "--no-manifest is not supported: barman-rs always writes a backup_manifest",
                );
            }
            if check_timeout.is_some() {
                return fail(
                    "--check-timeout is not supported: barman-rs runs no checks before a backup",
                );
            }
            let args = commands::backup::BackupArgs {
                immediate_checkpoint: if *immediate_checkpoint {
                    Some(true)
                } else if *no_immediate_checkpoint {
                    Some(false)
                } else {
                    None
                },
                reuse: reuse_backup.clone(),
                jobs: *jobs,
                bwlimit: *bwlimit,
                wait: *wait,
                wait_timeout: *wait_timeout,
                name: name.clone(),
                incremental: incremental.clone(),
                retry_times: retry.times(),
                retry_sleep: retry.retry_sleep,
                keepalive_interval: *keepalive_interval,
            };
            commands::backup::exec(ctx, servers, &args)
        }
        Command::VerifyBackup { server, backup_id } => {
            commands::backup::verify(ctx, server, backup_id)
        }
        Command::Recover(args) => commands::recover::exec(ctx, args),
        Command::CheckWalArchive { timeline, server } => {
            commands::wal::check_wal_archive(ctx, server, *timeline)
        }
        Command::ListBackups { minimal, servers } => {
            commands::backups::list(ctx, servers, *minimal)
        }
        Command::ShowBackup { server, backup_id } => {
            commands::backups::show(ctx, server, backup_id)
        }
        Command::ListFiles {
            target,
            list_empty_directories,
            server,
            backup_id,
        } => {
            use barman_core::backups::FilesTarget;
            let target = match target {
                FilesTargetArg::Standalone => FilesTarget::Standalone,
                FilesTargetArg::Data => FilesTarget::Data,
                FilesTargetArg::Wal => FilesTarget::Wal,
                FilesTargetArg::Full => FilesTarget::Full,
            };
            commands::backups::list_files(ctx, server, backup_id, target, *list_empty_directories)
        }
        Command::Delete { server, backup_id } => commands::backups::delete(ctx, server, backup_id),
        Command::Keep {
            status,
            release,
            target,
            server,
            backup_id,
        } => {
            let target = target.map(|t| match t {
                KeepTargetArg::Full => barman_catalog::KeepTarget::Full,
                KeepTargetArg::Standalone => barman_catalog::KeepTarget::Standalone,
            });
            commands::backups::keep(ctx, server, backup_id, *status, *release, target)
        }
        Command::CheckBackup { server, backup_id } => {
            commands::backups::check_backup(ctx, server, backup_id)
        }
    }
}

/// A command line clap refuses: its error in one line and the usage line (exit 2, as
/// argparse); `--help` and `--version` print in full.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
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
