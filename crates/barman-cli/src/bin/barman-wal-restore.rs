//! `barman-wal-restore`: the `restore_command` that runs on the PostgreSQL host and
//! fetches WAL files from `barman get-wal` on the Barman host over SSH (barman-rs).
//!
//! `restore_command = 'barman-wal-restore [options] BARMAN_HOST SERVER_NAME %f %p'`
//!
//! Exit codes as Barman's: 0 restored, 2 local error or SSH connection problem, 3 when
//! `%p` cannot be written, else the remote `barman get-wal` exit code (1 when the WAL
//! file is not in the archive). PostgreSQL takes any of them as "not available".

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use barman_cli::BarmanHostArgs;
use barman_core::client::{DEFAULT_SPOOL_DIR, RestoreError, WalRestoreClient};
use barman_wal::Codec;
use clap::Parser;

/// Fetch a WAL file from Barman's get-wal over SSH (a `restore_command`).
#[derive(Debug, Parser)]
#[command(name = "barman-wal-restore", version)]
struct Args {
    /// Sleep for SECONDS after a failure of the get-wal request (0: no wait).
    #[arg(
        short = 's',
        long = "sleep",
        value_name = "SECONDS",
        default_value_t = 0
    )]
    sleep: u64,
    /// Number of files to peek and transfer in parallel (0: disabled).
    #[arg(
        short = 'p',
        long = "parallel",
        value_name = "JOBS",
        default_value_t = 0
    )]
    parallel: usize,
    /// The spool directory for prefetched WAL files.
    #[arg(long = "spool-dir", value_name = "SPOOL_DIR", default_value = DEFAULT_SPOOL_DIR)]
    spool_dir: PathBuf,
    /// (barman-rs) With --parallel: prefetch within the call, as Barman does, instead
    /// of in a background process while PostgreSQL replays.
    #[arg(long = "sync-prefetch")]
    sync_prefetch: bool,
    /// (internal) Run the background prefetch that follows WAL_NAME.
    #[arg(long = "prefetch-after", hide = true, value_name = "WAL_NAME")]
    prefetch_after: Option<String>,
    /// Also retrieve partial WAL files (.partial).
    #[arg(short = 'P', long = "partial")]
    partial: bool,
    /// Transfer the WAL files compressed with gzip (deprecated).
    #[arg(short = 'z', long = "gzip", group = "transfer")]
    gzip: bool,
    /// Transfer the WAL files compressed with bzip2 (deprecated).
    #[arg(short = 'j', long = "bzip2", group = "transfer")]
    bzip2: bool,
    /// Transfer the WAL files as stored (compressed), decompress once received.
    #[arg(long = "keep-compression", group = "transfer")]
    keep_compression: bool,
    /// Only test the connection and the server's configuration on the Barman host
    /// (WAL_NAME and WAL_DEST are ignored).
    #[arg(short = 't', long = "test")]
    test: bool,
    #[command(flatten)]
    remote: BarmanHostArgs,
    /// The WAL file name (`%f`).
    #[arg(required_unless_present_any = ["test", "prefetch_after"])]
    wal_name: Option<String>,
    /// Where to write it (`%p`).
    #[arg(required_unless_present_any = ["test", "prefetch_after"])]
    wal_dest: Option<PathBuf>,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let mut client = WalRestoreClient::new(&a.remote.barman_host, &a.remote.server_name);
    client.remote = a.remote.into_host();
    client.partial = a.partial;
    client.keep_compression = a.keep_compression;
    client.parallel = a.parallel;
    client.spool_dir = a.spool_dir;
    client.background = !a.sync_prefetch;
    if let Some(after) = &a.prefetch_after {
        // Detached from PostgreSQL: nobody reads the result; a later request for a
        // file that could not be prefetched says why.
        return match client.prefetch_after(after) {
            Ok(_) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    if a.test {
        return match client.test() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => exit(&e.to_string(), e.exit_code(), 0),
        };
    }
    if a.gzip || a.bzip2 {
        let option = if a.gzip { "--gzip" } else { "--bzip2" };
        eprintln!(
            "WARNING: `{option}` option is deprecated and will be removed in future versions. \
             For WAL compression, please make sure to enable it directly on the Barman \
             server via the `compression` configuration option"
        );
        client.compression = Some(if a.gzip { Codec::Gzip } else { Codec::Bzip2 });
    }
    let (Some(wal_name), Some(wal_dest)) = (a.wal_name, a.wal_dest) else {
        return exit("WAL_NAME and WAL_DEST are required (or --test)", 2, 0);
    };
    match client.restore(&wal_name, &wal_dest) {
        Ok(_) => {
            if client.parallel > 0 && client.background {
                spawn_prefetch(&wal_name, &wal_dest);
            }
            ExitCode::SUCCESS
        }
        Err(RestoreError {
            error,
            fetch_failed,
        }) => exit(
            &error.to_string(),
            error.exit_code(),
            if fetch_failed { a.sleep } else { 0 },
        ),
    }
}

/// Starts this program again, detached (own process group, no standard streams), to
/// prefetch the files after `wal_name` while PostgreSQL replays this one.
fn spawn_prefetch(wal_name: &str, wal_dest: &std::path::Path) {
    use std::os::unix::process::CommandExt;
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    // The same arguments without WAL_NAME and WAL_DEST (the last of each), and the
    // internal option first, where no `--` can make it positional.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    for value in [wal_dest.as_os_str(), std::ffi::OsStr::new(wal_name)] {
        if let Some(i) = args.iter().rposition(|a| a == value) {
            args.remove(i);
        }
    }
    let _ = std::process::Command::new(exe)
        .arg(format!("--prefetch-after={wal_name}"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn();
}

/// Barman's `exit_with_error`: the message, an optional sleep, the exit code.
fn exit(message: &str, code: i32, sleep: u64) -> ExitCode {
    eprintln!("ERROR: {message}");
    if sleep > 0 {
        eprintln!("Sleeping for {sleep} seconds.");
        std::thread::sleep(Duration::from_secs(sleep));
    }
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}
