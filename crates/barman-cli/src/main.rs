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
    /// Archive a WAL file (the form for `archive_command` on the Barman host).
    PutWal {
        /// Only check that the server accepts WAL files.
        #[arg(short = 't', long = "test")]
        test: bool,
        /// The server.
        server: String,
        /// The WAL file (`%p`).
        wal_path: PathBuf,
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
        Command::PutWal {
            test,
            server,
            wal_path,
        } => commands::wal::put(&ctx, server, wal_path, *test),
    }
}
