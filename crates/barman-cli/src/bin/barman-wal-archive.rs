//! `barman-wal-archive`: the `archive_command` that runs on the PostgreSQL host and sends
//! each WAL file to `barman put-wal` on the Barman host over SSH (barman-rs).
//!
//! `archive_command = 'barman-wal-archive [options] BARMAN_HOST SERVER_NAME %p'`
//!
//! Exit codes as Barman's: 0 archived, 2 local error, 3 SSH connection problem, else the
//! remote `barman put-wal` exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use barman_client::Error;
use barman_client::{WalArchiveClient, compression_choice};
use clap::Parser;

mod shared;
use shared::BarmanHostArgs;

/// Send a WAL file to Barman's put-wal over SSH.
#[derive(Debug, Parser)]
#[command(name = "barman-wal-archive", version)]
struct Args {
    /// Only test the connection and the server's readiness (WAL_PATH is ignored).
    #[arg(short = 't', long = "test")]
    test: bool,
    /// Use MD5SUMS instead of SHA256SUMS (for old Barman servers).
    #[arg(long)]
    md5: bool,
    /// Compress with gzip before sending.
    #[arg(short = 'z', long = "gzip", group = "codec")]
    gzip: bool,
    /// Compress with bzip2 before sending.
    #[arg(short = 'j', long = "bzip2", group = "codec")]
    bzip2: bool,
    /// Compress with xz before sending.
    #[arg(long, group = "codec")]
    xz: bool,
    /// Compress with snappy before sending.
    #[arg(long, group = "codec")]
    snappy: bool,
    /// Compress with zstd before sending.
    #[arg(long, group = "codec")]
    zstd: bool,
    /// Compress with lz4 before sending.
    #[arg(long, group = "codec")]
    lz4: bool,
    /// Compression level (low, medium, high or a number).
    #[arg(long = "compression-level", default_value = "medium")]
    compression_level: String,
    #[command(flatten)]
    remote: BarmanHostArgs,
    /// The WAL file (`%p`).
    wal_path: Option<PathBuf>,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let codec = [
        (a.gzip, "gzip"),
        (a.bzip2, "bzip2"),
        (a.xz, "xz"),
        (a.snappy, "snappy"),
        (a.zstd, "zstd"),
        (a.lz4, "lz4"),
    ]
    .into_iter()
    .find(|(on, _)| *on)
    .map(|(_, name)| name);
    let compression = match compression_choice(codec, &a.compression_level) {
        Ok(c) => c,
        Err(e) => return report(e),
    };
    let mut client = WalArchiveClient::new(&a.remote.barman_host, &a.remote.server_name);
    client.remote = a.remote.into_host();
    client.md5 = a.md5;
    client.compression = compression;
    let result = if a.test {
        client.test()
    } else {
        match &a.wal_path {
            Some(p) => client.archive(p),
            None => {
                eprintln!("ERROR: WAL_PATH is required (or --test)");
                return ExitCode::from(2);
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(e),
    }
}

fn report(e: Error) -> ExitCode {
    eprintln!("ERROR: {e}");
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}
