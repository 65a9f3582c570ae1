//! `barman`: Backup and Recovery Manager for PostgreSQL (barman-rs).

use std::path::PathBuf;
use std::process::ExitCode;

use barman_cli::{fail, load_config};
use barman_core::archive::{PutOutcome, WalArchive};
use clap::{Parser, Subcommand};

/// Backup and Recovery Manager for PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "barman", version)]
struct Cli {
    /// Configuration file.
    #[arg(short = 'c', long = "config", global = true)]
    config: Option<PathBuf>,
    /// Be quiet.
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
    match cli.command {
        Command::ListServers { minimal } => {
            for s in config.servers() {
                if minimal {
                    println!("{}", s.name());
                } else {
                    println!("{} - {}", s.name(), s.get_str("description").unwrap_or(""));
                }
            }
            ExitCode::SUCCESS
        }
        Command::PutWal {
            test,
            server,
            wal_path,
        } => {
            let Some(sc) = config.server(&server) else {
                return fail(format!("unknown server '{server}'"));
            };
            if test {
                println!("Ready to accept WAL files for the server {server}");
                return ExitCode::SUCCESS;
            }
            let archive = WalArchive::for_server(config.global(), sc);
            match archive.put_wal(&wal_path) {
                Ok(PutOutcome::Archived(e)) => {
                    if !cli.quiet {
                        println!("{}: archived {} ({} bytes)", server, e.name, e.size);
                    }
                    ExitCode::SUCCESS
                }
                Ok(PutOutcome::AlreadyArchived(name)) => {
                    if !cli.quiet {
                        println!("{server}: {name} already archived with the same content");
                    }
                    ExitCode::SUCCESS
                }
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => fail(format!("server {server}: {e}")),
            }
        }
    }
}
