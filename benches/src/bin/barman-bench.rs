//! `barman-bench`: barman-rs against the C compression tools, `cp`, pg_basebackup,
//! pgBackRest and Barman 3.19, on one throwaway PostgreSQL cluster and one WAL corpus,
//! alternating the tools over several repetitions; writes `report.md` (a table per
//! measurement, every figure also as a ratio to the best peer, the machine and every
//! version) and an SVG bar chart per table into `--out`.
//!
//! ```text
//! cargo build --release -p barman-cli -p barman-benches
//! target/release/barman-bench --out /tmp/report            # pgbench -s 100, 3 repetitions
//! target/release/barman-bench --out /tmp/report --quick    # scale 1, 1 repetition (CI)
//! ```
//!
//! As root it installs what is missing (Debian's pgbackrest, time and the C tools,
//! Barman from PyPI) and runs the rest as `postgres`. A peer that is missing is named at
//! the top of the report and in every table it is absent from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use barman_benches::catalog_data::{catalogue, xlogdb_text};
use barman_benches::harness::{
    self, Cluster, Peers, Row, Run, Table, du_bytes, fmt, is_root, mib, must, pg_bin,
    start_and_query, stats, timed, version_of,
};
use barman_benches::{COMPARED, compress, decompress};
use clap::Parser;

/// Variants of a measurement: label, whether ours, group, and one run (given the
/// repetition's number).
type Variants<'a> = Vec<(
    String,
    bool,
    String,
    Box<dyn FnMut(usize) -> Result<Run, String> + 'a>,
)>;

/// The measurements, by the names `--only` takes.
const ALL: &[&str] = &[
    "codecs",
    "archive",
    "streaming",
    "backup",
    "incremental",
    "restore",
    "catalog",
];

#[derive(Debug, Parser)]
#[command(about = "barman-rs against its peers, with a markdown report and SVG charts")]
struct Args {
    /// Where report.md and the charts go (created).
    #[arg(long)]
    out: PathBuf,
    /// Small and fast: pgbench scale 1, one repetition, 3 segments (what CI runs).
    #[arg(long)]
    quick: bool,
    /// pgbench scale of the cluster (default 100; 1 with --quick).
    #[arg(long)]
    scale: Option<u32>,
    /// Repetitions of every measurement (default 3; 1 with --quick).
    #[arg(long)]
    reps: Option<usize>,
    /// WAL segments in the corpus (default 16; 3 with --quick).
    #[arg(long)]
    segments: Option<usize>,
    /// Only these measurements (comma-separated): codecs, archive, streaming, backup,
    /// incremental, restore, catalog.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Never install anything (missing peers are reported).
    #[arg(long)]
    no_install: bool,
    /// Where the cluster and the repositories go (default: a new directory in /var/tmp).
    #[arg(long)]
    work: Option<PathBuf>,
}

/// Everything the measurements share.
struct Bench {
    reps: usize,
    quick: bool,
    barman: PathBuf,
    peers: Peers,
    work: PathBuf,
    cluster: Cluster,
    /// Where archive_command copies every WAL file (besides barman-rs's repository).
    wal_copy: PathBuf,
    /// The WAL corpus: complete 16 MiB segments of the cluster.
    corpus: Vec<PathBuf>,
    /// The database size, bytes.
    db_bytes: u64,
}

fn main() {
    let args = Args::parse();
    for m in &args.only {
        if !ALL.contains(&m.as_str()) {
            eprintln!(
                "barman-bench: unknown measurement {m:?} (one of {})",
                ALL.join(", ")
            );
            std::process::exit(2);
        }
    }
    let peers = Peers::find(!args.no_install);
    if is_root() {
        reexec_as_postgres(&args);
    }
    let exe = std::env::current_exe().expect("the bench's own path");
    let barman = exe.with_file_name("barman");
    if !barman.is_file() {
        eprintln!(
            "barman-bench: no barman next to {} (cargo build --release -p barman-cli -p barman-benches)",
            exe.display()
        );
        std::process::exit(2);
    }
    let Some(pgbin) = pg_bin() else {
        eprintln!(
            "barman-bench: no PostgreSQL 15 binaries (apt-get install postgresql-15, or set PGBIN)"
        );
        std::process::exit(2);
    };
    let quick = args.quick;
    let scale = args.scale.unwrap_or(if quick { 1 } else { 100 });
    let reps = args.reps.unwrap_or(if quick { 1 } else { 3 }).max(1);
    let segments = args.segments.unwrap_or(if quick { 3 } else { 16 }).max(1);
    let only = |m: &str| args.only.is_empty() || args.only.iter().any(|o| o == m);
    std::fs::create_dir_all(&args.out).expect("the output directory");
    let work_dir;
    let work = match &args.work {
        Some(w) => {
            std::fs::create_dir_all(w).expect("the work directory");
            w.clone()
        }
        None => {
            work_dir = tempfile::Builder::new()
                .prefix("barman-bench.")
                .tempdir_in("/var/tmp")
                .expect("a work directory in /var/tmp");
            work_dir.path().to_owned()
        }
    };

    let started = Instant::now();
    eprintln!("cluster: pgbench -i -s {scale} in {}", work.display());
    let wal_copy = work.join("wal");
    std::fs::create_dir_all(&wal_copy).expect("wal directory");
    let rs_conf = work.join("rs.conf");
    let cluster = Cluster::start(&pgbin, &work.join("pg"));
    write_rs_conf(&rs_conf, &work, &cluster.conninfo());
    cluster.set(
        "archive_command",
        &format!(
            "cp %p {}/%f && {} -q -c {} put-wal rs %p",
            wal_copy.display(),
            barman.display(),
            rs_conf.display()
        ),
    );
    cluster.pgbench(&["-i", "-q", "-s", &scale.to_string()]);
    cluster.sql("CHECKPOINT");
    let corpus = make_corpus(&cluster, &wal_copy, segments);
    let db_bytes = cluster.size();
    let bench = Bench {
        reps,
        quick,
        barman,
        peers,
        work,
        cluster,
        wal_copy,
        corpus,
        db_bytes,
    };
    let mut tables = Vec::new();
    if only("codecs") {
        tables.extend(codecs(&bench));
    }
    if only("archive") {
        tables.push(archive(&bench));
        tables.push(get_wal(&bench));
    }
    if only("streaming") {
        tables.extend(streaming(&bench));
    }
    if only("backup") || only("incremental") || only("restore") {
        tables.extend(backups(
            &bench,
            only("backup"),
            only("incremental"),
            only("restore"),
        ));
    }
    if only("catalog") {
        tables.push(catalog(&bench));
        tables.push(list_backups(&bench));
    }
    let settings = format!(
        "pgbench scale {scale} ({} database), {} WAL segments of 16 MiB in the corpus, {reps} repetition(s){}; {:.0} s in all",
        mib(bench.db_bytes),
        bench.corpus.len(),
        if quick { ", --quick" } else { "" },
        started.elapsed().as_secs_f64()
    );
    write_report(&args.out, &bench, &settings, &tables);
    eprintln!("report: {}", args.out.join("report.md").display());
}

/// As root: hand the output and work directories to `postgres` and run the rest as it,
/// as a deployment runs Barman (PostgreSQL refuses to run as root).
fn reexec_as_postgres(args: &Args) -> ! {
    std::fs::create_dir_all(&args.out).expect("the output directory");
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"])
        .arg(std::env::current_exe().expect("the bench's own path"))
        .arg("--out")
        .arg(&args.out)
        .arg("--no-install");
    must(
        Command::new("chown")
            .args(["-R", "postgres"])
            .arg(&args.out),
    );
    if let Some(w) = &args.work {
        std::fs::create_dir_all(w).expect("the work directory");
        must(Command::new("chown").args(["-R", "postgres"]).arg(w));
        cmd.arg("--work").arg(w);
    }
    if args.quick {
        cmd.arg("--quick");
    }
    for (flag, v) in [
        ("--scale", args.scale.map(|v| v.to_string())),
        ("--reps", args.reps.map(|v| v.to_string())),
        ("--segments", args.segments.map(|v| v.to_string())),
    ] {
        if let Some(v) = v {
            cmd.arg(flag).arg(v);
        }
    }
    if !args.only.is_empty() {
        cmd.arg("--only").arg(args.only.join(","));
    }
    let status = cmd.status().expect("runuser");
    std::process::exit(status.code().unwrap_or(1));
}

fn write_rs_conf(path: &Path, work: &Path, conninfo: &str) {
    let mut text = format!(
        "[barman]\nbarman_home = {}\nlog_file = {}/barman-rs.log\n",
        work.join("rs").display(),
        work.display()
    );
    for (name, method, extra) in [
        ("rs", "local-rsync", ""),
        ("rspg", "postgres", ""),
        ("rslz4", "postgres", "backup_compression = lz4\n"),
        (
            "rszstd",
            "postgres",
            "backup_compression = zstd\nbackup_compression_workers = 2\n",
        ),
    ] {
        text.push_str(&format!(
            "[{name}]\nconninfo = {conninfo}\nstreaming_conninfo = {conninfo}\nbackup_method = {method}\narchiver = on\nimmediate_checkpoint = true\n{extra}"
        ));
    }
    std::fs::write(path, text).expect("rs.conf");
}

/// Complete segments of the cluster, archived by its archive_command into `wal`: at
/// least `n` besides the first two (often nearly empty), more WAL made with pgbench
/// when loading did not make enough.
fn make_corpus(cluster: &Cluster, wal: &Path, n: usize) -> Vec<PathBuf> {
    let segments = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(wal)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name().and_then(|f| f.to_str()).is_some_and(|f| {
                            f.len() == 24 && f.bytes().all(|b| b.is_ascii_hexdigit())
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let deadline = Instant::now() + std::time::Duration::from_secs(600);
    while segments().len() < n + 2 {
        assert!(
            Instant::now() < deadline,
            "the corpus did not fill in 10 minutes"
        );
        cluster.pgbench(&["-c", "2", "-t", "2000"]);
        cluster.sql("SELECT pg_switch_wal()");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    segments().into_iter().skip(2).take(n).collect()
}

/// Runs `make` for each variant, `reps` times, alternating the variants; collects the
/// seconds and the peak memory of each. A failure is noted in the table's `skipped`.
fn alternate<F>(table: &mut Table, reps: usize, variants: Vec<(String, bool, String, F)>)
where
    F: FnMut(usize) -> Result<Run, String>,
{
    let mut variants = variants;
    let mut rows: Vec<Row> = variants
        .iter()
        .map(|(label, ours, group, _)| Row {
            label: label.clone(),
            ours: *ours,
            group: group.clone(),
            samples: Vec::new(),
            max_rss_kib: None,
            extra: Vec::new(),
        })
        .collect();
    let mut failed = vec![false; variants.len()];
    for rep in 0..reps {
        for (i, (label, _, _, f)) in variants.iter_mut().enumerate() {
            if failed[i] {
                continue;
            }
            eprintln!("  {label} (run {}/{reps})", rep + 1);
            match f(rep) {
                Ok(run) => {
                    rows[i].samples.push(run.secs);
                    rows[i].max_rss_kib = rows[i].max_rss_kib.max(run.max_rss_kib);
                }
                Err(e) => {
                    eprintln!("    failed: {e}");
                    table.skipped.push(format!("{label}: failed: {e}"));
                    failed[i] = true;
                }
            }
        }
    }
    table
        .rows
        .extend(rows.into_iter().filter(|r| !r.samples.is_empty()));
}

/// 1. WAL compression per codec and level, ours (in-process, as the archive runs it)
///    against the C tool on the same segments: MB/s both ways and the ratio.
fn codecs(b: &Bench) -> Vec<Table> {
    eprintln!("codecs");
    // --quick: one segment (CI runs a debug build, where codecs crawl).
    let files: Vec<Vec<u8>> = b
        .corpus
        .iter()
        .take(if b.quick { 1 } else { usize::MAX })
        .map(|p| std::fs::read(p).expect("a corpus segment"))
        .collect();
    let total: usize = files.iter().map(Vec::len).sum();
    let corpus_file = b.work.join("corpus.bin");
    std::fs::write(&corpus_file, files.concat()).expect("corpus file");
    let how = format!(
        "{} real 16 MiB segments of the bench cluster ({}), single thread, MB/s of uncompressed WAL; barman-rs in-process (the archive's own encoder), the C tool as a process reading a file and writing one. Ratio: compressed/uncompressed.",
        files.len(),
        mib(total as u64)
    );
    let mut comp = Table::new("WAL compression", "MB/s", false, &how);
    let mut decomp = Table::new("WAL decompression", "MB/s", false, &how);
    comp.extra_columns.push("ratio".into());
    for &(codec, level) in COMPARED {
        let group = format!("{codec} {level}");
        let mut ours_c = Vec::new();
        let mut ours_d = Vec::new();
        let mut packed_len = 0;
        let mut tool_c = Vec::new();
        let mut tool_d = Vec::new();
        let mut tool_ratio = None;
        let tool = c_tool(codec.name());
        let tool_path = tool.and_then(|t| {
            b.peers
                .c_tools
                .iter()
                .find(|(n, _)| n == t)
                .map(|(_, p)| p.clone())
        });
        for _ in 0..b.reps {
            let t = Instant::now();
            let packed: Vec<Vec<u8>> = files.iter().map(|f| compress(codec, level, f)).collect();
            ours_c.push(total as f64 / 1e6 / t.elapsed().as_secs_f64());
            packed_len = packed.iter().map(Vec::len).sum::<usize>();
            let mut out = Vec::with_capacity(16 << 20);
            let t = Instant::now();
            packed.iter().for_each(|p| decompress(p, &mut out));
            ours_d.push(total as f64 / 1e6 / t.elapsed().as_secs_f64());
            if let Some(p) = &tool_path {
                let packed_file = b.work.join("corpus.packed");
                let lvl = format!("-{level}");
                let sh = format!(
                    "{} {lvl} -c < {} > {}",
                    p.display(),
                    corpus_file.display(),
                    packed_file.display()
                );
                if let Ok(run) = timed(Command::new("/bin/sh").arg("-c").arg(&sh), None) {
                    tool_c.push(total as f64 / 1e6 / run.secs);
                    tool_ratio = Some(std::fs::metadata(&packed_file).map_or(0, |m| m.len()));
                }
                let sh = format!(
                    "{} -d -c < {} > /dev/null",
                    p.display(),
                    packed_file.display()
                );
                if let Ok(run) = timed(Command::new("/bin/sh").arg("-c").arg(&sh), None) {
                    tool_d.push(total as f64 / 1e6 / run.secs);
                }
            }
        }
        let ratio = |n: u64| format!("{:.3}", n as f64 / total as f64);
        comp.rows.push(Row {
            label: format!("barman-rs {codec} {level}"),
            ours: true,
            group: group.clone(),
            samples: ours_c,
            max_rss_kib: None,
            extra: vec![ratio(packed_len as u64)],
        });
        decomp.rows.push(Row {
            label: format!("barman-rs {codec} {level}"),
            ours: true,
            group: group.clone(),
            samples: ours_d,
            max_rss_kib: None,
            extra: vec![],
        });
        match (tool, &tool_path) {
            (Some(t), Some(_)) if !tool_c.is_empty() => {
                comp.rows.push(Row {
                    label: format!("{t} -{level}"),
                    ours: false,
                    group: group.clone(),
                    samples: tool_c,
                    max_rss_kib: None,
                    extra: vec![tool_ratio.map_or("–".into(), ratio)],
                });
                decomp.rows.push(Row {
                    label: format!("{t} -d"),
                    ours: false,
                    group,
                    samples: tool_d,
                    max_rss_kib: None,
                    extra: vec![],
                });
            }
            (Some(t), _) => {
                let why = format!("{t} -{level}: the tool is not installed");
                comp.skipped.push(why.clone());
                decomp.skipped.push(why);
            }
            (None, _) => {}
        }
    }
    let _ = std::fs::remove_file(b.work.join("corpus.packed"));
    vec![comp, decomp]
}

/// The C tool of a codec, `None` when there is no command-line one (snappy).
fn c_tool(codec: &str) -> Option<&'static str> {
    match codec {
        "gzip" => Some("gzip"),
        "bzip2" => Some("bzip2"),
        "zstd" => Some("zstd"),
        "lz4" => Some("lz4"),
        "xz" => Some("xz"),
        _ => None,
    }
}

/// 2. `archive_command`: each corpus segment archived by one call, into a fresh
///    repository per run: barman-rs put-wal, cp + sync, pgBackRest archive-push and
///    Barman's put-wal (the tar stream barman-wal-archive sends), per compression.
fn archive(b: &Bench) -> Table {
    eprintln!("archive");
    let n = b.corpus.len();
    let mut t = Table::new(
        "archive_command, per segment",
        "ms",
        true,
        &format!(
            "Each of {n} real 16 MiB segments archived by one call, one after the other, into a fresh repository per run (files fsynced by every tool). The figure is the mean time per call; segments/s is the sustained rate over the run; stored: the repository's size after the run (and over the input). Barman's put-wal only lands the file in `incoming/` (its cron compresses it later), so its stored size is the input's whatever its compression."
        ),
    );
    t.extra_columns.push("segments/s".into());
    t.extra_columns.push("stored".into());
    let stored: std::cell::RefCell<BTreeMap<String, u64>> = std::cell::RefCell::default();
    let mut variants: Variants<'_> = Vec::new();
    // `dest` (emptied first when `wipe`) is what `stored` measures after the run.
    let per_seg = |label: &str,
                   dest: &Path,
                   wipe: bool,
                   call: &mut dyn FnMut(&Path) -> Command|
     -> Result<Run, String> {
        if wipe {
            let _ = std::fs::remove_dir_all(dest);
            std::fs::create_dir_all(dest).map_err(|e| e.to_string())?;
        }
        let mut secs = 0.0;
        let mut rss = None;
        for seg in &b.corpus {
            let run = timed(&mut call(seg), b.peers.gnu_time.as_deref())?;
            secs += run.secs;
            rss = rss.max(run.max_rss_kib);
        }
        stored.borrow_mut().insert(label.to_owned(), du_bytes(dest));
        Ok(Run {
            secs: secs / n as f64 * 1e3,
            max_rss_kib: rss,
        })
    };
    let cp_dest = b.work.join("arch-cp");
    variants.push((
        "cp + sync".into(),
        false,
        "none".into(),
        Box::new(move |_| {
            per_seg("cp + sync", &cp_dest, true, &mut |seg| {
                let mut c = Command::new("/bin/sh");
                c.arg("-c")
                    .arg(r#"cp "$1" "$2/" && sync "$2/$(basename "$1")""#)
                    .arg("sh")
                    .arg(seg)
                    .arg(&cp_dest);
                c
            })
        }),
    ));
    for c in ["none", "lz4", "zstd", "gzip"] {
        let home = b.work.join(format!("arch-rs-{c}"));
        let conf = b.work.join(format!("arch-rs-{c}.conf"));
        let comp = if c == "none" {
            String::new()
        } else {
            format!("compression = {c}\n")
        };
        std::fs::write(
            &conf,
            format!(
                "[barman]\nbarman_home = {}\n[pg]\nconninfo = {}\nbackup_method = local-rsync\narchiver = on\n{comp}",
                home.display(),
                b.cluster.conninfo()
            ),
        )
        .expect("config");
        let label = format!("barman-rs put-wal {c}");
        let barman = b.barman.clone();
        variants.push((
            label.clone(),
            true,
            c.replace("zstd", "zst").replace("gzip", "gz"),
            Box::new(move |_| {
                per_seg(&label, &home, true, &mut |seg| {
                    let mut cmd = Command::new(&barman);
                    cmd.args(["-q", "-c"])
                        .arg(&conf)
                        .args(["put-wal", "pg"])
                        .arg(seg);
                    cmd
                })
            }),
        ));
    }
    match &b.peers.pgbackrest {
        Some(pgbr) => {
            let pristine = b.work.join("pgbr-arch-pristine");
            let conf = pgbackrest_conf(b, "arch", &pristine, 1, "none");
            must(
                Command::new(pgbr)
                    .arg(format!("--config={}", conf.display()))
                    .args(["--stanza=bench", "stanza-create"]),
            );
            for c in ["none", "lz4", "zst", "gz"] {
                let label = format!("pgBackRest archive-push {c}");
                let repo = b.work.join(format!("pgbr-arch-{c}"));
                let (pgbr, conf, pristine) = (pgbr.clone(), conf.clone(), pristine.clone());
                variants.push((
                    label.clone(),
                    false,
                    c.into(),
                    Box::new(move |_| {
                        // The stanza, as created once: a fresh copy per run.
                        let _ = std::fs::remove_dir_all(&repo);
                        must(Command::new("cp").arg("-a").arg(&pristine).arg(&repo));
                        per_seg(&label, &repo.join("archive"), false, &mut |seg| {
                            let mut cmd = Command::new(&pgbr);
                            cmd.arg(format!("--config={}", conf.display()))
                                .arg(format!("--repo1-path={}", repo.display()))
                                .arg(format!("--compress-type={c}"))
                                .args(["--stanza=bench", "archive-push"])
                                .arg(seg);
                            cmd
                        })
                    }),
                ));
            }
        }
        None => t
            .skipped
            .push("pgBackRest archive-push: pgbackrest is not installed".into()),
    }
    match &b.peers.barman_py {
        Some(py_barman) => {
            let python = py_barman.with_file_name("python");
            let tarrer = b.work.join("walarchive_tar.py");
            std::fs::write(&tarrer, TAR_STREAM_PY).expect("tar script");
            for c in ["none", "gzip"] {
                let home = b.work.join(format!("arch-py-{c}"));
                let conf = b.work.join(format!("arch-py-{c}.conf"));
                let comp = if c == "none" {
                    String::new()
                } else {
                    format!("compression = {c}\n")
                };
                std::fs::write(
                    &conf,
                    format!(
                        "[barman]\nbarman_home = {}\nbarman_user = {}\nlog_file = {}/barman-py.log\n[pg]\nconninfo = {}\nbackup_method = postgres\narchiver = on\n{comp}",
                        home.display(),
                        user(),
                        b.work.display(),
                        b.cluster.conninfo()
                    ),
                )
                .expect("config");
                let label = format!("Barman 3.19 put-wal {c}");
                let (python, tarrer, py_barman) =
                    (python.clone(), tarrer.clone(), py_barman.clone());
                variants.push((
                    label.clone(),
                    false,
                    c.replace("gzip", "gz"),
                    Box::new(move |_| {
                        per_seg(&label, &home, true, &mut |seg| {
                            let mut cmd = Command::new("/bin/sh");
                            cmd.arg("-c")
                                .arg(r#""$1" "$2" "$3" | "$4" -q -c "$5" put-wal pg"#)
                                .arg("sh")
                                .arg(&python)
                                .arg(&tarrer)
                                .arg(seg)
                                .arg(&py_barman)
                                .arg(&conf);
                            cmd
                        })
                    }),
                ));
            }
        }
        None => t
            .skipped
            .push("Barman put-wal: Barman 3.19 is not installed".into()),
    }
    alternate(&mut t, b.reps, variants);
    let stored = stored.into_inner();
    let input = (n as u64) * (16 << 20);
    for r in &mut t.rows {
        let (med, _, _) = stats(&r.samples);
        r.extra.push(fmt(1e3 / med));
        r.extra.push(stored.get(&r.label).map_or("–".into(), |s| {
            format!("{} ({:.2})", mib(*s), *s as f64 / input as f64)
        }));
    }
    t
}

/// 2c. `restore_command`'s side: one `get-wal` call per corpus segment out of a
///     gzip-compressed barman-rs repository (Barman reads the same repository: the
///     layout is Barman's), written decompressed to a file, as PostgreSQL asks.
fn get_wal(b: &Bench) -> Table {
    eprintln!("get-wal");
    let n = b.corpus.len();
    let mut t = Table::new(
        "get-wal (restore_command), per segment",
        "ms",
        true,
        &format!(
            "Each of {n} segments archived gzip-compressed by barman-rs, then fetched by one `get-wal` call each into a file (decompressed, as PostgreSQL's restore_command asks); Barman 3.19 reads the same repository. The mean time per call."
        ),
    );
    let home = b.work.join("getwal");
    let conf = b.work.join("getwal.conf");
    let _ = std::fs::remove_dir_all(&home);
    let body = format!(
        "[pg]\nconninfo = {}\nbackup_method = local-rsync\narchiver = on\ncompression = gzip\n",
        b.cluster.conninfo()
    );
    std::fs::write(
        &conf,
        format!("[barman]\nbarman_home = {}\n{body}", home.display()),
    )
    .expect("config");
    for seg in &b.corpus {
        must(
            Command::new(&b.barman)
                .args(["-q", "-c"])
                .arg(&conf)
                .args(["put-wal", "pg"])
                .arg(seg),
        );
    }
    let names: Vec<String> = b
        .corpus
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    let out_dir = b.work.join("getwal-out");
    let per_call = |tool: &Path, conf: &Path| -> Result<Run, String> {
        let _ = std::fs::remove_dir_all(&out_dir);
        std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
        let mut secs = 0.0;
        let mut rss = None;
        for name in &names {
            let run = timed(
                Command::new("/bin/sh")
                    .arg("-c")
                    .arg(r#""$1" -q -c "$2" get-wal pg "$3" > "$4/$3""#)
                    .arg("sh")
                    .arg(tool)
                    .arg(conf)
                    .arg(name)
                    .arg(&out_dir),
                b.peers.gnu_time.as_deref(),
            )?;
            secs += run.secs;
            rss = rss.max(run.max_rss_kib);
        }
        Ok(Run {
            secs: secs / n as f64 * 1e3,
            max_rss_kib: rss,
        })
    };
    let mut variants: Variants<'_> = Vec::new();
    {
        let (per_call, conf) = (&per_call, conf.clone());
        variants.push((
            "barman-rs get-wal".into(),
            true,
            String::new(),
            Box::new(move |_| per_call(&b.barman, &conf)),
        ));
    }
    match &b.peers.barman_py {
        Some(py) => {
            let py_conf = b.work.join("getwal-py.conf");
            std::fs::write(
                &py_conf,
                format!(
                    "[barman]\nbarman_home = {}\nbarman_user = {}\nlog_file = {}/barman-py.log\n{body}",
                    home.display(),
                    user(),
                    b.work.display()
                ),
            )
            .expect("config");
            let (per_call, py) = (&per_call, py.clone());
            variants.push((
                "Barman 3.19 get-wal".into(),
                false,
                String::new(),
                Box::new(move |_| per_call(&py, &py_conf)),
            ));
        }
        None => t
            .skipped
            .push("Barman get-wal: Barman 3.19 is not installed".into()),
    }
    alternate(&mut t, b.reps, variants);
    let _ = std::fs::remove_dir_all(&out_dir);
    t
}

/// What barman-wal-archive sends: the segment and its SHA256SUMS in a tar stream.
const TAR_STREAM_PY: &str = r#"import hashlib, io, os, sys, tarfile
path = sys.argv[1]
name = os.path.basename(path)
data = open(path, "rb").read()
sums = ("%s *%s\n" % (hashlib.sha256(data).hexdigest(), name)).encode()
out = tarfile.open(fileobj=sys.stdout.buffer, mode="w|")
for n, d in ((name, data), ("SHA256SUMS", sums)):
    ti = tarfile.TarInfo(n); ti.size = len(d); out.addfile(ti, io.BytesIO(d))
out.close()
"#;

fn user() -> String {
    String::from_utf8_lossy(
        &Command::new("id")
            .arg("-un")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default(),
    )
    .trim()
    .to_owned()
}

/// A pgBackRest configuration for the bench cluster, repository `repo`.
fn pgbackrest_conf(
    b: &Bench,
    name: &str,
    repo: &Path,
    process_max: u32,
    compress: &str,
) -> PathBuf {
    let conf = b.work.join(format!("pgbackrest-{name}.conf"));
    std::fs::write(
        &conf,
        format!(
            "[global]\nrepo1-path={}\nlog-path={w}\nlock-path={w}\nlog-level-console=warn\nlog-level-file=off\nstart-fast=y\narchive-async=n\narchive-check=n\ncompress-type={compress}\nprocess-max={process_max}\n[bench]\npg1-path={}\npg1-socket-path={}\npg1-port=5432\n",
            repo.display(),
            b.cluster.data.display(),
            b.cluster.dir.display(),
            w = b.work.display()
        ),
    )
    .expect("pgbackrest.conf");
    conf
}

/// 3-5. Full backups, an incremental one after a fixed workload, restores, the WAL
///     replay and the RTO of a point-in-time recovery.
fn backups(b: &Bench, full: bool, incr: bool, restore: bool) -> Vec<Table> {
    let mut out = Vec::new();
    let db = b.db_bytes;
    let reps = b.reps;
    let time = b.peers.gnu_time.clone();
    let rs_conf = b.work.join("rs.conf");
    let barman = b.barman.clone();
    let pgbin = b.cluster.bin.clone();
    let rs_home = b.work.join("rs");
    let fresh = |server: &str| {
        for d in ["base", "meta"] {
            let _ = std::fs::remove_dir_all(rs_home.join(server).join(d));
        }
    };
    let ours = |args: &[&str]| {
        let mut c = Command::new(&barman);
        c.args(["-q", "-c"]).arg(&rs_conf).args(args);
        c
    };
    // Barman 3.19: its own home, the WAL so far copied into its incoming/.
    let py = b.peers.barman_py.clone().map(|py| {
        let home = b.work.join("py");
        let conf = b.work.join("py.conf");
        std::fs::write(
            &conf,
            format!(
                "[barman]\nbarman_home = {}\nbarman_user = {}\nlog_file = {}/barman-py.log\n[py]\nconninfo = {c}\nstreaming_conninfo = {c}\nbackup_method = postgres\narchiver = on\nstreaming_archiver = off\n",
                home.display(),
                user(),
                b.work.display(),
                c = b.cluster.conninfo()
            ),
        )
        .expect("py.conf");
        (py, conf, home)
    });
    let feed_barman = |b: &Bench| {
        if let Some((py, conf, home)) = &py {
            let incoming = home.join("py/incoming");
            let _ = std::fs::create_dir_all(&incoming);
            let archived =
                std::fs::read_to_string(home.join("py/wals/py-xlog.db")).unwrap_or_default();
            for e in std::fs::read_dir(&b.wal_copy)
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = e.file_name().to_string_lossy().into_owned();
                if !archived.contains(&name) {
                    let _ = std::fs::copy(e.path(), incoming.join(&name));
                }
            }
            let _ = Command::new(py)
                .arg("-c")
                .arg(conf)
                .args(["archive-wal", "py"])
                .output();
        }
    };
    let pgbr = b.peers.pgbackrest.clone();
    let pgbr_repo = |p: u32, c: &str| b.work.join(format!("pgbr-{c}-{p}"));
    let pgbr_cmd = |conf: &Path, args: &[&str]| {
        let mut c = Command::new(pgbr.as_ref().expect("pgbackrest"));
        c.arg(format!("--config={}", conf.display()))
            .arg("--stanza=bench")
            .args(args);
        c
    };

    if full {
        eprintln!("full backups");
        let mut t = Table::new(
            "Full backup",
            "seconds",
            true,
            &format!(
                "A full backup of the {} cluster into a fresh repository per run (an immediate checkpoint first). MB/s: database size over the time.",
                mib(db)
            ),
        );
        t.extra_columns.push("MB/s".into());
        t.extra_columns.push("stored".into());
        let stored: std::cell::RefCell<BTreeMap<String, u64>> = std::cell::RefCell::default();
        let mut variants: Variants<'_> = Vec::new();
        for (label, server, jobs, group) in [
            ("barman-rs local-rsync -j 1", "rs", "1", "plain 1"),
            ("barman-rs local-rsync -j 2", "rs", "2", "plain 2"),
            ("barman-rs postgres", "rspg", "1", "plain 1"),
            ("barman-rs postgres lz4", "rslz4", "1", "lz4"),
            ("barman-rs postgres zstd", "rszstd", "1", "zst"),
        ] {
            let (stored, time) = (&stored, time.clone());
            let (fresh, ours, rs_home) = (&fresh, &ours, rs_home.clone());
            variants.push((
                label.into(),
                true,
                group.into(),
                Box::new(move |_| {
                    fresh(server);
                    let r = timed(&mut ours(&["backup", server, "-j", jobs]), time.as_deref());
                    stored
                        .borrow_mut()
                        .insert(label.into(), du_bytes(&rs_home.join(server).join("base")));
                    // Measured: its disk space back for the next one.
                    fresh(server);
                    r
                }),
            ));
        }
        let pgbb = b.work.join("pgbb");
        {
            let (stored, time, pgbin, conninfo_dir) =
                (&stored, time.clone(), pgbin.clone(), b.cluster.dir.clone());
            variants.push((
                "pg_basebackup -Fp".into(),
                false,
                "plain 1".into(),
                Box::new(move |_| {
                    let _ = std::fs::remove_dir_all(&pgbb);
                    let r = timed(
                        Command::new(pgbin.join("pg_basebackup"))
                            .arg("-h")
                            .arg(&conninfo_dir)
                            .args(["-U", "postgres", "-Fp", "-X", "none", "-c", "fast", "-D"])
                            .arg(&pgbb),
                        time.as_deref(),
                    );
                    stored
                        .borrow_mut()
                        .insert("pg_basebackup -Fp".into(), du_bytes(&pgbb));
                    let _ = std::fs::remove_dir_all(&pgbb);
                    r
                }),
            ));
        }
        if pgbr.is_some() {
            for (p, c, group) in [
                (1, "none", "plain 1"),
                (2, "none", "plain 2"),
                (2, "lz4", "lz4"),
                (2, "zst", "zst"),
            ] {
                let label = format!("pgBackRest full {c} process-max {p}");
                let repo = pgbr_repo(p, c);
                let conf = pgbackrest_conf(b, &format!("{c}-{p}"), &repo, p, c);
                let (stored, time, pgbr_cmd) = (&stored, time.clone(), &pgbr_cmd);
                variants.push((
                    label.clone(),
                    false,
                    group.into(),
                    Box::new(move |_| {
                        let _ = std::fs::remove_dir_all(&repo);
                        let _ = pgbr_cmd(&conf, &["--no-online", "stanza-create"]).output();
                        let r = timed(
                            &mut pgbr_cmd(&conf, &["--type=full", "backup"]),
                            time.as_deref(),
                        );
                        stored
                            .borrow_mut()
                            .insert(label.clone(), du_bytes(&repo.join("backup")));
                        let _ = std::fs::remove_dir_all(&repo);
                        r
                    }),
                ));
            }
        } else {
            t.skipped
                .push("pgBackRest: pgbackrest is not installed".into());
        }
        if let Some((py_barman, conf, home)) = py.clone() {
            let (stored, time, feed) = (&stored, time.clone(), &feed_barman);
            let bench: &Bench = b;
            variants.push((
                "Barman 3.19 postgres".into(),
                false,
                "plain 1".into(),
                Box::new(move |_| {
                    for d in ["base", "meta"] {
                        let _ = std::fs::remove_dir_all(home.join("py").join(d));
                    }
                    feed(bench);
                    let r = timed(
                        Command::new(&py_barman)
                            .arg("-c")
                            .arg(&conf)
                            .args(["backup", "py"]),
                        time.as_deref(),
                    );
                    stored.borrow_mut().insert(
                        "Barman 3.19 postgres".into(),
                        du_bytes(&home.join("py/base")),
                    );
                    r
                }),
            ));
        } else {
            t.skipped
                .push("Barman: Barman 3.19 is not installed".into());
        }
        alternate(&mut t, reps, variants);
        let stored = stored.into_inner();
        for r in &mut t.rows {
            let (med, _, _) = stats(&r.samples);
            r.extra.push(fmt(db as f64 / 1e6 / med));
            r.extra
                .push(stored.get(&r.label).map_or("–".into(), |s| mib(*s)));
        }
        out.push(t);
    }

    // The last full backups of barman-rs (local-rsync, -j 2), pgBackRest (process-max 2,
    // uncompressed) and Barman are what the incremental and the restores start from.
    fresh("rs");
    must(&mut ours(&[
        "backup",
        "rs",
        "-j",
        "2",
        "--wait",
        "--wait-timeout",
        "120",
    ]));
    let pgbr_base = pgbr.as_ref().map(|_| {
        let repo = pgbr_repo(2, "base");
        let conf = pgbackrest_conf(b, "base", &repo, 2, "none");
        let _ = std::fs::remove_dir_all(&repo);
        let _ = pgbr_cmd(&conf, &["--no-online", "stanza-create"]).output();
        must(&mut pgbr_cmd(&conf, &["--type=full", "backup"]));
        (repo, conf)
    });
    if let Some((py_barman, conf, home)) = &py {
        for d in ["base", "meta"] {
            let _ = std::fs::remove_dir_all(home.join("py").join(d));
        }
        feed_barman(b);
        must(
            Command::new(py_barman)
                .arg("-c")
                .arg(conf)
                .args(["backup", "py"]),
        );
    }

    if incr {
        eprintln!("incremental backups");
        let tx = if b.quick { "500" } else { "20000" };
        b.cluster.pgbench(&["-c", "2", "-t", tx]);
        b.cluster.sql("CHECKPOINT");
        let mut t = Table::new(
            "Incremental backup",
            "seconds",
            true,
            &format!(
                "After `pgbench -c 2 -t {tx}` on the full backup: barman-rs local-rsync with `--reuse-backup=link` (file-level: unchanged files hard-linked) against pgBackRest `--type=incr` (file-level too). One run each: the second run would start from the first. Stored: the new bytes."
            ),
        );
        t.extra_columns.push("stored".into());
        let before = du_bytes(&rs_home.join("rs/base"));
        match timed(
            &mut ours(&["backup", "rs", "-j", "2", "--reuse-backup=link"]),
            time.as_deref(),
        ) {
            Ok(run) => t.rows.push(Row {
                label: "barman-rs local-rsync --reuse-backup=link -j 2".into(),
                ours: true,
                group: String::new(),
                samples: vec![run.secs],
                max_rss_kib: run.max_rss_kib,
                extra: vec![mib(
                    du_bytes(&rs_home.join("rs/base")).saturating_sub(before)
                )],
            }),
            Err(e) => t
                .skipped
                .push(format!("barman-rs incremental: failed: {e}")),
        }
        if let Some((repo, conf)) = &pgbr_base {
            let before = du_bytes(repo);
            match timed(
                &mut pgbr_cmd(conf, &["--type=incr", "backup"]),
                time.as_deref(),
            ) {
                Ok(run) => t.rows.push(Row {
                    label: "pgBackRest incr process-max 2".into(),
                    ours: false,
                    group: String::new(),
                    samples: vec![run.secs],
                    max_rss_kib: run.max_rss_kib,
                    extra: vec![mib(du_bytes(repo).saturating_sub(before))],
                }),
                Err(e) => t.skipped.push(format!("pgBackRest incr: failed: {e}")),
            }
        }
        t.skipped.push("bytes read by each tool: not measured (both read every file's metadata; pgBackRest also checksums changed files)".into());
        out.push(t);
    }

    if restore {
        eprintln!("restores");
        let dest = b.work.join("restore");
        let mut t = Table::new(
            "Restore",
            "seconds",
            true,
            "The latest backup of each tool restored into an empty directory (the command alone, not the WAL replay).",
        );
        let mut variants: Variants<'_> = Vec::new();
        for j in ["1", "2"] {
            let (dest, time, ours) = (dest.clone(), time.clone(), &ours);
            variants.push((
                format!("barman-rs recover -j {j}"),
                true,
                j.into(),
                Box::new(move |_| {
                    let _ = std::fs::remove_dir_all(&dest);
                    let d = dest.display().to_string();
                    timed(
                        &mut ours(&["recover", "rs", "latest", &d, "-j", j]),
                        time.as_deref(),
                    )
                }),
            ));
        }
        if let Some((_, conf)) = &pgbr_base {
            for p in ["1", "2"] {
                let (dest, time, pgbr_cmd, conf) =
                    (dest.clone(), time.clone(), &pgbr_cmd, conf.clone());
                variants.push((
                    format!("pgBackRest restore process-max {p}"),
                    false,
                    p.into(),
                    Box::new(move |_| {
                        let _ = std::fs::remove_dir_all(&dest);
                        timed(
                            &mut pgbr_cmd(
                                &conf,
                                &[
                                    &format!("--pg1-path={}", dest.display()),
                                    &format!("--process-max={p}"),
                                    "restore",
                                ],
                            ),
                            time.as_deref(),
                        )
                    }),
                ));
            }
        } else {
            t.skipped
                .push("pgBackRest restore: pgbackrest is not installed".into());
        }
        if let Some((py_barman, conf, _)) = py.clone() {
            let (dest, time) = (dest.clone(), time.clone());
            variants.push((
                "Barman 3.19 recover".into(),
                false,
                "1".into(),
                Box::new(move |_| {
                    let _ = std::fs::remove_dir_all(&dest);
                    timed(
                        Command::new(&py_barman)
                            .arg("-c")
                            .arg(&conf)
                            .args(["recover", "py", "latest"])
                            .arg(&dest),
                        time.as_deref(),
                    )
                }),
            ));
        } else {
            t.skipped
                .push("Barman recover: Barman 3.19 is not installed".into());
        }
        alternate(&mut t, reps, variants);
        let _ = std::fs::remove_dir_all(&dest);
        out.push(t);
        let feed = || feed_barman(b);
        out.extend(rto(
            b,
            &ours,
            pgbr_base
                .as_ref()
                .map(|(_, conf)| (conf.as_path(), &pgbr_cmd as PgbrCmd<'_>)),
            py.as_ref()
                .map(|(p, conf, _)| (p.as_path(), conf.as_path(), &feed as &dyn Fn())),
        ));
    }
    out
}

/// How a pgBackRest command line is made: its configuration, then its arguments.
type PgbrCmd<'a> = &'a dyn Fn(&Path, &[&str]) -> Command;

/// The RTO of a point-in-time recovery: from the restore command to the first query on
/// the promoted copy; barman-rs with the WAL delivered by recover (local copy) or fetched
/// by `restore_command` (get-wal), pgBackRest (`archive-get`), Barman (local copy).
fn rto(
    b: &Bench,
    ours: &dyn Fn(&[&str]) -> Command,
    pgbr: Option<(&Path, PgbrCmd<'_>)>,
    py: Option<(&Path, &Path, &dyn Fn())>,
) -> Vec<Table> {
    eprintln!("point-in-time recovery");
    let tx = if b.quick { "300" } else { "10000" };
    b.cluster.pgbench(&["-c", "2", "-t", tx]);
    let target = b.cluster.sql("SELECT now()");
    b.cluster.sql("SELECT pg_sleep(1)");
    b.cluster.pgbench(&["-c", "1", "-t", "50"]);
    let name = b.cluster.sql("SELECT pg_walfile_name(pg_switch_wal())");
    let xlogdb = b.work.join("rs/rs/wals/rs-xlog.db");
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    while !std::fs::read_to_string(&xlogdb)
        .unwrap_or_default()
        .contains(&name)
    {
        assert!(Instant::now() < deadline, "{name} was not archived");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut t = Table::new(
        "Point-in-time recovery (RTO)",
        "seconds",
        true,
        &format!(
            "`pgbench -c 2 -t {tx}` after the last backup, then a recovery to a time just after it: the seconds from the start of the restore command (`barman recover --target-time`, `pgbackrest restore --type=time`) to the first successful query on the promoted copy (restore, WAL replay, promotion). barman-rs delivers the WAL three ways: copied by recover, fetched by `barman get-wal` as restore_command, and by `barman-wal-restore -p 4` over a real sshd on 127.0.0.1 (both ends on this machine). Replay: from the start of PostgreSQL to that query."
        ),
    );
    t.extra_columns.push("replay s".into());
    let dest = b.work.join("pitr");
    let replays: std::cell::RefCell<BTreeMap<String, Vec<f64>>> = std::cell::RefCell::default();
    let d = dest.display().to_string();
    // Each tool's restore command to the target, run into an empty `dest`, and a
    // setting then appended to the copy's postgresql.auto.conf (the last one wins).
    let mut restores: Vec<(String, bool, Command, Option<String>)> = Vec::new();
    for (label, extra) in [
        ("barman-rs, WAL copied by recover", None),
        ("barman-rs, get-wal restore_command", Some("--get-wal")),
    ] {
        let mut args = vec![
            "recover",
            "rs",
            "latest",
            &d,
            "--target-time",
            &target,
            "--target-action",
            "promote",
        ];
        args.extend(extra);
        restores.push((label.into(), true, ours(&args), None));
    }
    // barman-wal-restore over a real sshd on 127.0.0.1 (both ends on this machine), as
    // a PostgreSQL host fetches WAL from its Barman host.
    let sshd = harness::Sshd::start();
    match &sshd {
        Some(sshd) => {
            let ssh = format!("ssh {}", sshd.ssh_args().join(" "));
            let restore_cmd = format!(
                "restore_command = '{} -p 4 --spool-dir {} --ssh-command \"{ssh}\" -U {} -c {} --barman-command {} 127.0.0.1 rs %f %p'",
                b.barman.with_file_name("barman-wal-restore").display(),
                dest.with_extension("spool").display(),
                sshd.user,
                b.work.join("rs.conf").display(),
                b.barman.display()
            );
            let args = [
                "recover",
                "rs",
                "latest",
                &d,
                "--target-time",
                &target,
                "--target-action",
                "promote",
                "--get-wal",
            ];
            restores.push((
                "barman-rs, barman-wal-restore -p 4 over ssh".into(),
                true,
                ours(&args),
                Some(restore_cmd),
            ));
        }
        None => t
            .skipped
            .push("barman-wal-restore over ssh: no sshd or ssh-keygen on this machine".into()),
    }
    match pgbr {
        Some((conf, pgbr_cmd)) => {
            // Its repository gets the WAL archived since its backup (untimed).
            let mut wal: Vec<PathBuf> = std::fs::read_dir(&b.wal_copy)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .collect();
            wal.sort();
            for f in &wal {
                let _ = pgbr_cmd(conf, &["archive-push", &f.display().to_string()]).output();
            }
            restores.push((
                "pgBackRest restore --type=time".into(),
                false,
                pgbr_cmd(
                    conf,
                    &[
                        &format!("--pg1-path={d}"),
                        "--type=time",
                        &format!("--target={target}"),
                        "--target-action=promote",
                        "restore",
                    ],
                ),
                None,
            ));
        }
        None => t
            .skipped
            .push("pgBackRest point-in-time recovery: pgbackrest is not installed".into()),
    }
    match py {
        Some((py_barman, conf, feed)) => {
            feed();
            let mut c = Command::new(py_barman);
            c.arg("-c").arg(conf).args([
                "recover",
                "py",
                "latest",
                &d,
                "--target-time",
                &target,
                "--target-action",
                "promote",
            ]);
            restores.push(("Barman 3.19 recover --target-time".into(), false, c, None));
        }
        None => t
            .skipped
            .push("Barman point-in-time recovery: Barman 3.19 is not installed".into()),
    }
    let mut variants: Variants<'_> = Vec::new();
    for (label, ours, mut restore, setting) in restores {
        let (dest, replays) = (dest.clone(), &replays);
        let time = b.peers.gnu_time.clone();
        let key = label.clone();
        variants.push((
            label,
            ours,
            String::new(),
            Box::new(move |_| {
                let _ = std::fs::remove_dir_all(&dest);
                let start = Instant::now();
                let rec = timed(&mut restore, time.as_deref())?;
                if let Some(line) = &setting {
                    let auto = dest.join("postgresql.auto.conf");
                    let mut text = std::fs::read_to_string(&auto).map_err(|e| e.to_string())?;
                    text.push_str(&format!("\n{line}\n"));
                    std::fs::write(&auto, text).map_err(|e| e.to_string())?;
                    // barman-wal-restore's spool: a private directory of its own.
                    let spool = dest.with_extension("spool");
                    let _ = std::fs::remove_dir_all(&spool);
                    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
                        .create(&spool)
                        .map_err(|e| e.to_string())?;
                }
                let up = start_and_query(&b.cluster.bin, &dest, 600)?;
                replays
                    .borrow_mut()
                    .entry(key.clone())
                    .or_default()
                    .push(up);
                Ok(Run {
                    secs: start.elapsed().as_secs_f64(),
                    max_rss_kib: rec.max_rss_kib,
                })
            }),
        ));
    }
    alternate(&mut t, b.reps, variants);
    let replays = replays.into_inner();
    for r in &mut t.rows {
        let replay = replays.get(&r.label).map_or(f64::NAN, |v| stats(v).0);
        r.extra.push(fmt(replay));
    }
    let _ = std::fs::remove_dir_all(&dest);
    vec![t, sandbox(b, ours, &target)]
}

/// 5b. The restore test: `barman sandbox` to the same target, with and without its
///     checks (no peer has one): the whole command's seconds, and the RTO and the
///     checks' time it reports.
fn sandbox(b: &Bench, ours: &dyn Fn(&[&str]) -> Command, target: &str) -> Table {
    eprintln!("sandbox");
    let mut t = Table::new(
        "Restore test (sandbox)",
        "seconds",
        true,
        "`barman sandbox --target-time` to the point-in-time recovery's target: the copy recovered into a throwaway directory, started without a TCP listener, promoted, checked, stopped and removed; the seconds of the whole command. RTO: from the command's start to the first query the copy answered (as reported by the sandbox). Checks: `pg_amcheck --all` (heap and btree) and a sequential read of every relation of every database (page checksums verified). pgBackRest, Barman and WAL-G have no such command.",
    );
    t.extra_columns.push("RTO s".into());
    t.extra_columns.push("checks s".into());
    let dir = b.work.join("sandbox");
    let d = dir.display().to_string();
    // Per variant: the RTO and the checks' seconds of each run.
    type Figures = BTreeMap<String, (Vec<f64>, Vec<f64>)>;
    let figures: std::cell::RefCell<Figures> = std::cell::RefCell::default();
    let mut variants: Variants<'_> = Vec::new();
    for (label, checks) in [
        ("barman-rs sandbox, no checks", false),
        (
            "barman-rs sandbox, pg_amcheck + read of every relation",
            true,
        ),
    ] {
        let mut args = vec![
            "-f",
            "json",
            "sandbox",
            "--directory",
            &d,
            "--target-time",
            target,
        ];
        if !checks {
            args.extend(["--no-amcheck", "--no-read"]);
        }
        args.extend(["rs", "latest"]);
        let mut cmd = ours(&args);
        let figures = &figures;
        let key = label.to_owned();
        variants.push((
            label.into(),
            true,
            String::new(),
            Box::new(move |_| {
                let start = Instant::now();
                let out = cmd.output().map_err(|e| e.to_string())?;
                let secs = start.elapsed().as_secs_f64();
                let report: serde_json::Value = serde_json::from_slice(&out.stdout)
                    .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stderr)))?;
                if report["passed"] != true {
                    return Err(format!("the sandbox failed: {report}"));
                }
                let checks: f64 = report["steps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|s| s["name"] == "amcheck" || s["name"] == "read")
                    .filter_map(|s| s["seconds"].as_f64())
                    .fold(0.0, |a, b| a + b);
                let mut f = figures.borrow_mut();
                let e = f.entry(key.clone()).or_default();
                e.0.push(report["rto_seconds"].as_f64().unwrap_or(f64::NAN));
                e.1.push(checks);
                Ok(Run {
                    secs,
                    max_rss_kib: None,
                })
            }),
        ));
    }
    alternate(&mut t, b.reps, variants);
    let figures = figures.into_inner();
    for r in &mut t.rows {
        let (rto, checks) = figures
            .get(&r.label)
            .map_or((f64::NAN, f64::NAN), |(a, c)| (stats(a).0, stats(c).0));
        r.extra.push(fmt(rto));
        r.extra.push(fmt(checks));
    }
    let _ = std::fs::remove_dir_all(&dir);
    t
}

/// 2b. WAL streaming: barman-rs `receive-wal` against `pg_receivewal --synchronous`
///     (what Barman's receive-wal runs), each as the synchronous standby of the
///     cluster: the commit latency it adds to `pgbench`, and how fast it catches up on
///     WAL held by its slot.
fn streaming(b: &Bench) -> Vec<Table> {
    eprintln!("streaming");
    let secs = if b.quick { "3" } else { "20" };
    let wal_mb: u64 = if b.quick { 32 } else { 512 };
    let conninfo = b.cluster.conninfo();
    let conf = b.work.join("stream.conf");
    let home = b.work.join("stream");
    std::fs::write(
        &conf,
        format!(
            "[barman]\nbarman_home = {}\nlog_file = {}/barman-rs-stream.log\n[pg]\nconninfo = {conninfo}\nstreaming_conninfo = {conninfo}\nbackup_method = postgres\narchiver = off\nstreaming_archiver = on\nstreaming_archiver_name = benchrecv\nslot_name = bench\ncreate_slot = manual\n",
            home.display(),
            b.work.display()
        ),
    )
    .expect("stream.conf");
    let pgrw = b.work.join("pgrw");
    let start = |tool: &str| -> std::process::Child {
        let mut c = if tool == "barman-rs" {
            let _ = std::fs::remove_dir_all(home.join("pg/streaming"));
            let mut c = Command::new(&b.barman);
            c.args(["-q", "-c"]).arg(&conf).args(["receive-wal", "pg"]);
            c
        } else {
            let _ = std::fs::remove_dir_all(&pgrw);
            std::fs::create_dir_all(&pgrw).expect("pg_receivewal directory");
            let mut c = Command::new(b.cluster.bin.join("pg_receivewal"));
            c.arg("-D")
                .arg(&pgrw)
                .args(["-S", "bench", "--synchronous", "-n", "-d"])
                .arg(format!("{conninfo} application_name=benchrecv"));
            c
        };
        c.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the receiver")
    };
    let stop = |mut child: std::process::Child| {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    };
    let sql = |q: &str| b.cluster.sql(q);
    let fresh_slot = || {
        for _ in 0..100 {
            if sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'bench' AND active")
                == "0"
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        sql(
            "SELECT count(pg_drop_replication_slot('bench')) FROM pg_replication_slots WHERE slot_name = 'bench'",
        );
        sql("SELECT pg_create_physical_replication_slot('bench', true)");
    };
    let wait_for = |q: &str, what: &str| -> Result<(), String> {
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        while sql(q) != "t" {
            if Instant::now() > deadline {
                return Err(format!("{what} within 60 s"));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(())
    };
    let pgbench = || -> Result<f64, String> {
        let out = Command::new(b.cluster.bin.join("pgbench"))
            .arg("-h")
            .arg(&b.cluster.dir)
            .args([
                "-U", "postgres", "-n", "-c", "4", "-j", "2", "-T", secs, "postgres",
            ])
            .output()
            .map_err(|e| e.to_string())?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("latency average = "))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| format!("pgbench: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let set_sync = |names: &str| b.cluster.set("synchronous_standby_names", names);
    let mut latency = Table::new(
        "Synchronous streaming: commit latency",
        "ms",
        true,
        &format!(
            "`pgbench -c 4 -j 2 -T {secs}` with the receiver as the cluster's synchronous standby (`synchronous_standby_names`), each receiver on its own fresh slot; the first row has no synchronous standby (what synchronous replication costs). Barman's own receive-wal runs pg_receivewal."
        ),
    );
    let mut catchup = Table::new(
        "Streaming: catch-up",
        "MiB/s",
        false,
        &format!(
            "About {wal_mb} MiB of WAL written while no receiver runs, held by the slot; then the receiver starts: MiB over the seconds until its flush position reaches the end."
        ),
    );
    let mut lat: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut speed: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut failures = Vec::new();
    let tools = ["barman-rs", "pg_receivewal"];
    for rep in 0..b.reps {
        set_sync("");
        match pgbench() {
            Ok(ms) => lat.entry("none").or_default().push(ms),
            Err(e) => failures.push(format!("pgbench: {e}")),
        }
        for tool in tools {
            eprintln!("  {tool} (run {}/{})", rep + 1, b.reps);
            fresh_slot();
            let child = start(tool);
            let measured = wait_for(
                "SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = 'benchrecv'",
                "the receiver did not connect",
            )
            .and_then(|()| {
                set_sync("benchrecv");
                wait_for(
                    "SELECT coalesce(bool_or(sync_state = 'sync'), false) FROM pg_stat_replication WHERE application_name = 'benchrecv'",
                    "the receiver did not become the synchronous standby",
                )
            })
            .and_then(|()| pgbench());
            set_sync("");
            stop(child);
            match measured {
                Ok(ms) => lat.entry(tool).or_default().push(ms),
                Err(e) => failures.push(format!("{tool}: {e}")),
            }
            // Catch-up on WAL held by the slot.
            fresh_slot();
            let begin =
                sql("SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'bench'");
            sql("DROP TABLE IF EXISTS filler");
            sql("CREATE TABLE filler (id int, pad text)");
            let rows = wal_mb * 1024 * 1024 / 600;
            sql(&format!(
                "INSERT INTO filler SELECT g, repeat('x', 500) FROM generate_series(1, {rows}) g"
            ));
            sql("SELECT pg_switch_wal()");
            let end = sql("SELECT pg_current_wal_flush_lsn()");
            let bytes: f64 = sql(&format!("SELECT '{end}'::pg_lsn - '{begin}'::pg_lsn"))
                .parse()
                .unwrap_or(0.0);
            let t0 = Instant::now();
            let child = start(tool);
            let caught = wait_for(
                &format!(
                    "SELECT coalesce(bool_or(flush_lsn >= '{end}'), false) FROM pg_stat_replication WHERE application_name = 'benchrecv'"
                ),
                "the receiver did not catch up",
            );
            let secs = t0.elapsed().as_secs_f64();
            stop(child);
            match caught {
                Ok(()) => speed
                    .entry(tool)
                    .or_default()
                    .push(bytes / 1048576.0 / secs),
                Err(e) => failures.push(format!("{tool}: {e}")),
            }
            sql("DROP TABLE filler");
            sql("CHECKPOINT");
        }
    }
    sql(
        "SELECT count(pg_drop_replication_slot('bench')) FROM pg_replication_slots WHERE slot_name = 'bench'",
    );
    let _ = std::fs::remove_dir_all(&pgrw);
    let _ = std::fs::remove_dir_all(&home);
    for (key, label, ours, group) in [
        ("none", "no synchronous standby", false, "none"),
        ("barman-rs", "barman-rs receive-wal", true, "sync"),
        (
            "pg_receivewal",
            "pg_receivewal --synchronous",
            false,
            "sync",
        ),
    ] {
        if let Some(v) = lat.remove(key) {
            latency.rows.push(Row {
                label: label.into(),
                ours,
                group: group.into(),
                samples: v,
                max_rss_kib: None,
                extra: Vec::new(),
            });
        }
        if let Some(v) = speed.remove(key) {
            catchup.rows.push(Row {
                label: label.into(),
                ours,
                group: group.into(),
                samples: v,
                max_rss_kib: None,
                extra: Vec::new(),
            });
        }
    }
    latency.skipped.extend(failures.iter().cloned());
    catchup.skipped.extend(failures);
    vec![latency, catchup]
}

/// 6. The catalogue at scale, in-process: a one-million-entry xlog.db loaded into the
///    WAL index, look-ups in it, retention over 10 000 backups.
fn catalog(b: &Bench) -> Table {
    eprintln!("catalogue");
    let entries: u64 = if b.quick { 100_000 } else { 1_000_000 };
    let text = xlogdb_text(entries);
    let mut t = Table::new(
        "Catalogue at scale",
        "ms",
        true,
        &format!(
            "barman-rs in-process: {entries} archived WAL files in xlog.db, 10 000 backups. No peer keeps such an index in memory (Barman reads xlog.db line by line for each command), so there is no ratio."
        ),
    );
    let mut load = Vec::new();
    let mut lookups = Vec::new();
    let mut retention = Vec::new();
    for _ in 0..b.reps {
        let s = Instant::now();
        let index = barman_catalog::WalIndex::parse("xlog.db", &text).expect("valid xlog.db");
        load.push(s.elapsed().as_secs_f64() * 1e3);
        let names: Vec<_> = (0..100_000u64)
            .map(|i| {
                barman_wal::SegmentName::from_segment_no(
                    barman_wal::TimelineId::FIRST,
                    1 + (i * 7919) % entries,
                    barman_wal::WalSegSize::DEFAULT,
                )
                .expect("in range")
            })
            .collect();
        let s = Instant::now();
        let found = names
            .iter()
            .filter(|n| index.get(&barman_wal::WalFileName::Segment(**n)).is_some())
            .count();
        lookups.push(s.elapsed().as_secs_f64() * 1e3);
        assert_eq!(found, names.len());
        let cat = catalogue(10_000);
        let now = jiff::Timestamp::from_second(1_600_000_000 + 10_000 * 21_600).expect("in range");
        let policy: barman_catalog::RetentionPolicy = "REDUNDANCY 100".parse().expect("policy");
        let s = Instant::now();
        std::hint::black_box(policy.evaluate(&cat, 3, now, &jiff::tz::TimeZone::UTC));
        retention.push(s.elapsed().as_secs_f64() * 1e3);
    }
    for (label, samples) in [
        (
            format!("load {entries} xlog.db lines into the WAL index"),
            load,
        ),
        ("100 000 look-ups by WAL file name".to_owned(), lookups),
        (
            "retention REDUNDANCY 100 over 10 000 backups".to_owned(),
            retention,
        ),
    ] {
        t.rows.push(Row {
            label,
            ours: true,
            group: String::new(),
            samples,
            max_rss_kib: None,
            extra: Vec::new(),
        });
    }
    t
}

/// 6b. `list-backups` on a repository whose xlog.db lists a million WAL files (the WAL
///     size of each backup comes from it), barman-rs against Barman 3.19 on the same
///     repository.
fn list_backups(b: &Bench) -> Table {
    eprintln!("list-backups");
    let entries: u64 = if b.quick { 100_000 } else { 1_000_000 };
    let backups: u64 = if b.quick { 10 } else { 100 };
    let home = b.work.join("cat");
    let _ = std::fs::remove_dir_all(&home);
    let server = home.join("pg");
    std::fs::create_dir_all(server.join("wals")).expect("wals");
    std::fs::create_dir_all(server.join("meta")).expect("meta");
    std::fs::write(server.join("wals/pg-xlog.db"), xlogdb_text(entries)).expect("xlog.db");
    let seg = |n: u64| {
        barman_wal::SegmentName::from_segment_no(
            barman_wal::TimelineId::FIRST,
            n,
            barman_wal::WalSegSize::DEFAULT,
        )
        .expect("in range")
    };
    for i in 0..backups {
        // One backup every entries/backups segments, each a minute after the WAL it ends.
        let first = 1 + i * (entries / backups);
        let end_ts = jiff::Timestamp::from_second(1_700_000_000 + (first as i64 + 2) * 60)
            .expect("in range");
        let begin_ts =
            jiff::Timestamp::from_second(1_700_000_000 + first as i64 * 60).expect("in range");
        let id =
            barman_catalog::BackupId::from_datetime(jiff::tz::Offset::UTC.to_datetime(begin_ts));
        let mut info = barman_catalog::BackupInfo::new(id);
        info.status = barman_catalog::BackupStatus::Done;
        info.begin_time = Some(barman_catalog::PyDateTime::from_timestamp(begin_ts, 0));
        info.end_time = Some(barman_catalog::PyDateTime::from_timestamp(end_ts, 0));
        info.begin_wal = Some(seg(first));
        info.end_wal = Some(seg(first + 1));
        info.timeline = Some(barman_wal::TimelineId::FIRST);
        info.size = Some(1_500_000_000);
        info.deduplicated_size = Some(1_500_000_000);
        info.version = Some(150_000);
        info.mode = Some("postgres".into());
        info.server_name = Some("pg".into());
        info.systemid = Some("7000000000000000001".into());
        std::fs::create_dir_all(server.join("base").join(id.as_str())).expect("base");
        std::fs::write(
            server
                .join("meta")
                .join(format!("{}-backup.info", id.as_str())),
            info.to_string(),
        )
        .expect("backup.info");
    }
    let body = format!(
        "[pg]\nconninfo = {}\nbackup_method = local-rsync\narchiver = on\n",
        b.cluster.conninfo()
    );
    let conf = b.work.join("cat.conf");
    std::fs::write(
        &conf,
        format!("[barman]\nbarman_home = {}\n{body}", home.display()),
    )
    .expect("config");
    let mut t = Table::new(
        "list-backups at scale",
        "seconds",
        true,
        &format!(
            "`list-backups pg` on a repository of {backups} backups whose xlog.db lists {entries} WAL files (each backup's WAL size comes from it); Barman 3.19 reads the same repository."
        ),
    );
    // Both must list every backup: a tool that found none would look fast.
    let lists_all = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| e.to_string())?;
        let listed = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("pg ") && l.contains("WAL Size"))
            .count() as u64;
        if listed == backups {
            Ok(())
        } else {
            Err(format!(
                "listed {listed} backups of {backups}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    let time = b.peers.gnu_time.clone();
    let mut variants: Variants<'_> = Vec::new();
    if let Err(e) = lists_all(
        Command::new(&b.barman)
            .arg("-c")
            .arg(&conf)
            .args(["list-backups", "pg"]),
    ) {
        t.skipped.push(format!("barman-rs list-backups: {e}"));
    } else {
        let (conf, time) = (conf.clone(), time.clone());
        variants.push((
            "barman-rs list-backups".into(),
            true,
            String::new(),
            Box::new(move |_| {
                timed(
                    Command::new(&b.barman)
                        .args(["-q", "-c"])
                        .arg(&conf)
                        .args(["list-backups", "pg"]),
                    time.as_deref(),
                )
            }),
        ));
    }
    match &b.peers.barman_py {
        Some(py) => {
            let py_conf = b.work.join("cat-py.conf");
            std::fs::write(
                &py_conf,
                format!(
                    "[barman]\nbarman_home = {}\nbarman_user = {}\nlog_file = {}/barman-py.log\n{body}",
                    home.display(),
                    user(),
                    b.work.display()
                ),
            )
            .expect("config");
            let py = py.clone();
            if let Err(e) = lists_all(
                Command::new(&py)
                    .arg("-c")
                    .arg(&py_conf)
                    .args(["list-backups", "pg"]),
            ) {
                t.skipped.push(format!("Barman list-backups: {e}"));
                alternate(&mut t, b.reps, variants);
                let _ = std::fs::remove_dir_all(&home);
                return t;
            }
            variants.push((
                "Barman 3.19 list-backups".into(),
                false,
                String::new(),
                Box::new(move |_| {
                    timed(
                        Command::new(&py)
                            .arg("-c")
                            .arg(&py_conf)
                            .args(["list-backups", "pg"]),
                        time.as_deref(),
                    )
                }),
            ));
        }
        None => t
            .skipped
            .push("Barman list-backups: Barman 3.19 is not installed".into()),
    }
    alternate(&mut t, b.reps, variants);
    let _ = std::fs::remove_dir_all(&home);
    t
}

fn write_report(out: &Path, b: &Bench, settings: &str, tables: &[Table]) {
    let mut md = String::from("# barman-rs benchmark report\n\n");
    md.push_str(&format!(
        "Made by `barman-bench` on {} ({settings}).\n\n",
        jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC")
    ));
    if !b.peers.missing.is_empty() {
        md.push_str("**Comparisons that could not be made on this machine:**\n\n");
        for m in &b.peers.missing {
            md.push_str(&format!("- **{m}**\n"));
        }
        md.push('\n');
    }
    md.push_str("## Machine\n\n| | |\n|---|---|\n");
    for (k, v) in machine(b) {
        md.push_str(&format!("| {k} | {v} |\n"));
    }
    md.push_str("\nIn every table: the median, min and max over the repetitions (the tools alternating), and *vs best peer*: the best peer's median over this row's (above 1: this row is better), against the peers of the same variant (codec and level, compression, jobs). Peak RSS: the command and its children (GNU time).\n\n");
    for t in tables {
        let slug: String = t
            .title
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let svg = format!("{slug}.svg");
        let chart = t.svg(&out.join(&svg)).ok().map(|()| svg);
        md.push_str(&t.markdown(chart.as_deref()));
    }
    std::fs::write(out.join("report.md"), md).expect("report.md");
}

fn machine(b: &Bench) -> Vec<(String, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or("?".into(), |kib| {
            format!("{:.1} GiB", kib as f64 / 1048576.0)
        });
    let disk = Command::new("df")
        .args(["-h", "--output=source,fstype,size,avail"])
        .arg(&b.work)
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut v = vec![
        ("CPU".to_owned(), format!("{cpu}, {cores} cores")),
        ("memory".into(), mem),
        ("disk (work directory)".into(), disk),
        ("kernel".into(), kernel.trim().to_owned()),
        (
            "barman-rs".into(),
            version_of(&b.barman, &["--version"]).unwrap_or_default(),
        ),
        (
            "PostgreSQL".into(),
            version_of(&b.cluster.bin.join("postgres"), &["--version"]).unwrap_or_default(),
        ),
    ];
    if let Some(p) = &b.peers.pgbackrest {
        v.push((
            "pgBackRest".into(),
            version_of(p, &["version"]).unwrap_or_default(),
        ));
    }
    if let Some(p) = &b.peers.barman_py {
        v.push((
            "Barman".into(),
            version_of(p, &["--version"]).unwrap_or_default(),
        ));
    }
    for (name, p) in &b.peers.c_tools {
        v.push((
            name.clone(),
            version_of(p, &["--version"]).unwrap_or_default(),
        ));
    }
    v
}
