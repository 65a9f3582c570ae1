//! `barman`: Backup and Recovery Manager for PostgreSQL (barman-rs).

use std::path::PathBuf;
use std::process::ExitCode;

use barman_cli::{Context, Format, commands, fail, load_config};
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
    /// Check that the WAL archive can be used by a new cluster.
    CheckWalArchive {
        /// Fail if WAL files of this timeline or newer exist.
        #[arg(long)]
        timeline: Option<u32>,
        /// The server.
        server: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let ctx = Context {
        config,
        format: cli.format,
        quiet: cli.quiet,
    };
    match &cli.command {
        Command::ListServers { minimal } => commands::servers::list(&ctx, *minimal),
        Command::ShowServers { servers } => commands::servers::show(&ctx, servers),
        Command::Check { nagios, servers } => commands::server::check(&ctx, servers, *nagios),
        Command::Status { servers } => commands::server::status(&ctx, servers),
        Command::SwitchWal { force, servers } => {
            commands::server::switch_wal(&ctx, servers, *force)
        }
        Command::PutWal {
            test,
            server,
            wal_path,
        } => commands::wal::put(&ctx, server, wal_path.as_deref(), *test),
        Command::ArchiveWal { servers } => commands::wal::archive_wal(&ctx, servers),
        Command::Cron => commands::wal::cron(&ctx),
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
            commands::wal::get_wal(&ctx, server, wal_name, &args)
        }
        Command::RebuildXlogdb { servers } => commands::wal::rebuild_xlogdb(&ctx, servers),
        Command::CheckWalArchive { timeline, server } => {
            commands::wal::check_wal_archive(&ctx, server, *timeline)
        }
    }
}
