//! Embedding barman-rs in an orchestrator: two servers backed up, archived and restored
//! at once on a multi-threaded tokio runtime, while a heartbeat task measures how late
//! the runtime lets it run (its worst stall).
//!
//! ```text
//! cargo run -p barman-examples --example embed            # as the crate docs say
//! cargo run -p barman-examples --example embed -- --inline-put-wal   # the mistake
//! cargo run -p barman-examples --example embed -- --hooks   # with 2 s hook scripts
//! ```
//!
//! barman-core's rule (its crate docs): an `async fn` operation never blocks the
//! runtime, a plain `fn` one (the WAL archive, the catalogue) blocks and belongs on a
//! thread or in `spawn_blocking`. `--inline-put-wal` calls `put_wal` straight inside
//! the async task, to show what breaking the rule costs the other tasks. `--hooks`
//! configures a `pre_backup_script` and a `post_recovery_script` that sleep 2 s each:
//! core runs them off the runtime, so they add time but no stall.
//!
//! Needs PostgreSQL's server programs (`BARMAN_TEST_PG_BIN`, else
//! `/usr/lib/postgresql/<major>/bin`). A throwaway cluster is started on a unix socket
//! in a temporary directory (as the `postgres` user when run as root) and removed at
//! the end, with the barman home.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use barman_core::archive::WalArchive;
use barman_core::backup::{BackupOptions, backup};
use barman_core::config::{Config, MemorySource};
use barman_core::postgres::{ConnInfo, PgServer};
use barman_core::recover::{RecoverOptions, recover};
use barman_testkit::PgCluster;

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const SERVERS: [&str; 2] = ["pg_a", "pg_b"];
const TICK: Duration = Duration::from_millis(5);

fn main() -> Res<()> {
    let inline = std::env::args().any(|a| a == "--inline-put-wal");
    let hooks = std::env::args().any(|a| a == "--hooks");
    let bin = barman_testkit::bin_dir()
        .ok_or("PostgreSQL's programs not found (set BARMAN_TEST_PG_BIN)")?;
    let cluster = PgCluster::start(&bin, &[], &[])?;
    // Some WAL to archive.
    cluster
        .sql("CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 300000) g")?;
    let home = tempfile::Builder::new().prefix("barman-embed.").tempdir()?;
    let config = config(home.path(), cluster.dir(), hooks)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let worst = Arc::new(AtomicU64::new(0));
        let heartbeat = tokio::spawn(heartbeat(stop.clone(), worst.clone()));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for name in SERVERS {
            let config = config.clone();
            let cluster_dir = cluster.dir().to_owned();
            tasks.push(tokio::spawn(async move {
                run_server(&config, name, &cluster_dir, home_of(&config), inline).await
            }));
        }
        for t in tasks {
            let line = t.await??;
            println!("{line}");
        }
        stop.store(true, Ordering::Relaxed);
        heartbeat.await?;
        let worst = Duration::from_micros(worst.load(Ordering::Relaxed));
        println!(
            "{} servers in {:.1} s{}, put-wal {}: worst heartbeat stall {:.1} ms (tick {} ms)",
            SERVERS.len(),
            started.elapsed().as_secs_f64(),
            if hooks { " with 2 s hooks" } else { "" },
            if inline {
                "inline in async tasks (breaking the rule)"
            } else {
                "in spawn_blocking"
            },
            worst.as_secs_f64() * 1000.0,
            TICK.as_millis()
        );
        Ok::<(), Box<dyn Error + Send + Sync>>(())
    })?;
    Ok(())
}

/// The configuration: one server section per entry of [`SERVERS`], all backing up the
/// throwaway cluster with pg_basebackup, each into its own directory.
fn config(home: &Path, socket_dir: &Path, hooks: bool) -> Res<Arc<Config>> {
    let mut text = format!("[barman]\nbarman_home = {}\n", home.display());
    if hooks {
        text.push_str("pre_backup_script = sleep 2\npost_recovery_script = sleep 2\n");
    }
    for name in SERVERS {
        text.push_str(&format!(
            "[{name}]\nconninfo = host={} user=postgres dbname=postgres\nbackup_method = postgres\narchiver = on\ncompression = gzip\n",
            socket_dir.display()
        ));
    }
    Ok(Arc::new(Config::load(
        &home.join("barman.conf").to_string_lossy(),
        &text,
        &MemorySource::default(),
    )?))
}

fn home_of(config: &Config) -> PathBuf {
    PathBuf::from(&config.global().barman_home)
}

/// One server's life: a backup, its WAL archived with put-wal as PostgreSQL hands it
/// over, then a restore of that backup.
async fn run_server(
    config: &Config,
    name: &str,
    cluster_dir: &Path,
    home: PathBuf,
    inline: bool,
) -> Res<String> {
    let global = config.global();
    let server = config.server(name).ok_or("no such server")?;
    let mut options = BackupOptions::new();
    options.immediate_checkpoint = Some(true);
    let report = backup(global, server, &options).await?;
    let id = report.info.id;

    // put-wal of every file the cluster archived so far (its own copies: put-wal never
    // changes its input). The segment the backup ended in may still be open: close it
    // (as `barman switch-wal --force` does) and wait for PostgreSQL to archive it.
    let conninfo = ConnInfo::parse(server.options().conninfo.as_deref().unwrap_or(""))?;
    PgServer::connect(&conninfo, "barman_embed")
        .await?
        .switch_wal(true)
        .await?;
    let end = report
        .info
        .end_wal
        .ok_or("the backup has no end WAL")?
        .to_string();
    let archived_dir = cluster_dir.join("archive");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !archived_dir.join(&end).is_file() {
        if Instant::now() > deadline {
            return Err(format!("{end} was not archived by PostgreSQL").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&archived_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !p.to_string_lossy().ends_with(".tmp"))
        .collect();
    files.sort();
    let archive = WalArchive::for_server(global, server);
    let mut stored = 0;
    for file in files {
        let outcome = if inline {
            archive.put_wal(&file)
        } else {
            let archive = archive.clone();
            tokio::task::spawn_blocking(move || archive.put_wal(&file)).await?
        };
        outcome?;
        stored += 1;
    }

    let dest = home.join(format!("restore-{name}"));
    let restored = recover(global, server, &RecoverOptions::new(id.to_string(), &dest)).await?;
    Ok(format!(
        "{name}: backup {id} ({} files, {:.1} s), {stored} WAL files put, restored into {} with {} WAL files",
        report.copy.files_copied,
        report.total_seconds,
        dest.display(),
        restored.wal_files.len()
    ))
}

/// Sleeps one tick at a time until `stop`, recording in `worst` (microseconds) how much
/// later than asked it woke up.
async fn heartbeat(stop: Arc<AtomicBool>, worst: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        let asked = Instant::now();
        tokio::time::sleep(TICK).await;
        let late = asked.elapsed().saturating_sub(TICK);
        let late = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        worst.fetch_max(late, Ordering::Relaxed);
    }
}
