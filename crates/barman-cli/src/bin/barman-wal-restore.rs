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

use barman_client::{DEFAULT_SPOOL_DIR, RestoreError, WalRestoreClient, segment_size_of};
use barman_wal::{Codec, WalFileName, WalSegSize};
use clap::Parser;

mod shared;
use shared::BarmanHostArgs;

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
    /// (barman-rs) How a barman-rs Barman host compresses the stream of prefetched
    /// files (none, lz4, zstd, ...; default none): lz4 pays on links slower than the
    /// replay, not on fast ones.
    #[arg(long = "prefetch-compression", value_name = "CODEC")]
    prefetch_compression: Option<String>,
    /// (internal) Run the background prefetch that follows WAL_NAME.
    #[arg(
        long = "prefetch-after",
        hide = true,
        value_name = "WAL_NAME",
        group = "background"
    )]
    prefetch_after: Option<String>,
    /// (internal) Run the background prefetch of WAL_NAME (claimed by the caller) and
    /// the files that follow it.
    #[arg(
        long = "prefetch-claimed",
        hide = true,
        value_name = "WAL_NAME",
        group = "background"
    )]
    prefetch_claimed: Option<String>,
    /// (internal) With a background prefetch: the WAL segment size, read from the
    /// spooled file, to name the following segments without asking the Barman host.
    #[arg(
        long = "segment-size",
        hide = true,
        value_name = "BYTES",
        requires = "background"
    )]
    segment_size: Option<u64>,
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
    #[arg(required_unless_present_any = ["test", "background"])]
    wal_name: Option<String>,
    /// Where to write it (`%p`).
    #[arg(required_unless_present_any = ["test", "background"])]
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
    if let Some(name) = &a.prefetch_compression {
        match name.parse::<Codec>() {
            Ok(c) if c.is_available() => client.prefetch_compression = c,
            _ => {
                return exit(
                    &format!("--prefetch-compression {name}: unknown or unavailable codec"),
                    2,
                    0,
                );
            }
        }
    }
    if a.gzip || a.bzip2 {
        client.compression = Some(if a.gzip { Codec::Gzip } else { Codec::Bzip2 });
    }
    // Detached from PostgreSQL: nobody reads the result; a later request for a file
    // that could not be prefetched says why.
    let size = a.segment_size.and_then(|b| WalSegSize::new(b).ok());
    let background = match (&a.prefetch_after, &a.prefetch_claimed) {
        (Some(after), _) => Some(client.prefetch_after(after, size)),
        (_, Some(first)) => Some(client.prefetch_claimed(first, size)),
        _ => None,
    };
    if let Some(done) = background {
        return if done.is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
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
    }
    let (Some(wal_name), Some(wal_dest)) = (a.wal_name, a.wal_dest) else {
        return exit("WAL_NAME and WAL_DEST are required (or --test)", 2, 0);
    };
    // PostgreSQL runs restore_command in its data directory: its control file names the
    // cluster, whose segments alone may come out of the spool (only a restore takes
    // from the spool: the prefetch and --test need not read it).
    client.system_id = std::fs::read("global/pg_control")
        .ok()
        .and_then(|b| b.first_chunk::<8>().copied())
        .map(u64::from_ne_bytes);
    let is_segment = matches!(wal_name.parse(), Ok(WalFileName::Segment(_)));
    if client.parallel > 0 && client.background && is_segment {
        // Started first, so the next files come while this one is moved or fetched.
        let spooled = client.spool_dir.join(&wal_name);
        if spooled.is_file() {
            // A hit: the spooled file tells the segment size.
            let size = segment_size_of(&spooled);
            spawn_prefetch("--prefetch-after", &wal_name, &wal_dest, size);
        } else if !client.claimed(&wal_name)
            && let Some(claim) = client.claim(&wal_name)
        {
            // A miss: this file and the next ones come in one batch, this one first,
            // into the spool; restore() waits for the claim handed over here.
            if !spawn_prefetch("--prefetch-claimed", &wal_name, &wal_dest, None) {
                let _ = std::fs::remove_file(claim);
            }
        }
    }
    match client.restore(&wal_name, &wal_dest) {
        Ok(barman_client::Restored::Unspooled { reason }) => {
            eprintln!("WARNING: {reason}; fetched without prefetching");
            ExitCode::SUCCESS
        }
        Ok(_) => ExitCode::SUCCESS,
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

/// Starts this program again, detached (own process group, no standard streams), with
/// `mode` (`--prefetch-after` or `--prefetch-claimed`) for `wal_name`, to prefetch while
/// PostgreSQL replays. `false` when it could not be started.
fn spawn_prefetch(
    mode: &str,
    wal_name: &str,
    wal_dest: &std::path::Path,
    size: Option<WalSegSize>,
) -> bool {
    use std::os::unix::process::CommandExt;
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    // The same arguments without WAL_NAME and WAL_DEST (the last of each), and the
    // internal options first, where no `--` can make them positional.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    for value in [wal_dest.as_os_str(), std::ffi::OsStr::new(wal_name)] {
        if let Some(i) = args.iter().rposition(|a| a == value) {
            args.remove(i);
        }
    }
    let mut cmd = std::process::Command::new(exe);
    cmd.arg(format!("{mode}={wal_name}"));
    if let Some(size) = size {
        cmd.arg(format!("--segment-size={}", size.bytes()));
    }
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .is_ok()
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
