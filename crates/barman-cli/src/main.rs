//! `barman`: Backup and Recovery Manager for PostgreSQL (barman-rs).

use std::path::PathBuf;
use std::process::ExitCode;

use barman_cli::{Context, Format, commands, fail, load_config, log};
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
        /// The server.
        server: String,
        /// The WAL file name.
        wal_name: String,
    },
    /// Periodic maintenance, to run every minute (so far: WAL archiving).
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
        Command::Recover(_) => "barman.recovery_executor",
        Command::ArchiveWal { .. } => "barman.wal_archiver",
        Command::RebuildXlogdb { .. } => "barman.backup",
        Command::Diagnose { .. } => "barman.diagnose",
    }
}

/// The exit code as a number, for the log.
fn code_number(code: ExitCode) -> u8 {
    (0..=u8::MAX)
        .find(|n| ExitCode::from(*n) == code)
        .unwrap_or(1)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
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
            server,
            wal_name,
        } => {
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
        Command::Recover(args) => commands::recover::exec(ctx, args),
        Command::CheckWalArchive { timeline, server } => {
            commands::wal::check_wal_archive(ctx, server, *timeline)
        }
    }
}
