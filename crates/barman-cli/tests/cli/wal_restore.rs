//! `barman-wal-restore` on the "database host" fetching WAL over a real sshd on
//! 127.0.0.1 from `barman get-wal` on the "Barman host" (the same machine, another user
//! when root).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use barman_testkit::{self as testkit, PgCluster, Sshd, shared_tempdir};
use barman_wal::Codec;

const BARMAN: &str = env!("CARGO_BIN_EXE_barman");
const WAL_RESTORE: &str = env!("CARGO_BIN_EXE_barman-wal-restore");

const SEGMENT: &str = "000000010000000000000002";
const HISTORY: &str = "00000002.history";
const PARTIAL: &str = "000000010000000000000003";

fn fixture_segment() -> Vec<u8> {
    let gz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../barman-wal/tests/data/pg15/000000010000000000000002.gz");
    decompress(&std::fs::read(gz).unwrap())
}

fn decompress(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Codec::decoder_detect(bytes)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The "Barman host": a configuration with servers `pg` (gzip-compressed archive) and
/// `pg1m`, a home, and a wrapper around `barman` that logs each remote command line.
struct Remote {
    dir: tempfile::TempDir,
    home: PathBuf,
    conf: PathBuf,
    wrapper: PathBuf,
    calls: PathBuf,
}

impl Remote {
    fn new() -> Remote {
        let dir = shared_tempdir();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let conf = dir.path().join("barman.conf");
        let server = |name: &str, compression: Option<&str>| {
            let compression = compression
                .map(|c| format!("compression = {c}\n"))
                .unwrap_or_default();
            format!(
                "[{name}]\nconninfo = host=pg\nbackup_method = postgres\narchiver = on\n{compression}"
            )
        };
        std::fs::write(
            &conf,
            format!(
                "[barman]\nbarman_home = {}\n{}{}",
                home.display(),
                server("pg", Some("gzip")),
                server("pg1m", None)
            ),
        )
        .unwrap();
        let calls = dir.path().join("calls.log");
        std::fs::write(&calls, "").unwrap();
        let wrapper = dir.path().join("barman-wrapper");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\nexec {BARMAN} \"$@\"\n",
                calls.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        Remote {
            dir,
            home,
            conf,
            wrapper,
            calls,
        }
    }

    /// `barman put-wal SERVER PATH`, run locally before the home is given away.
    fn put_wal(&self, server: &str, path: &Path) {
        testkit::tools::run(
            Command::new(BARMAN)
                .arg(format!("--config={}", self.conf.display()))
                .args(["put-wal", server])
                .arg(path),
        );
    }

    fn archived(&self, server: &str, name: &str) -> PathBuf {
        self.home
            .join(server)
            .join("wals")
            .join(&name[..16])
            .join(name)
    }

    /// The last remote command line, from `get-wal` on.
    fn last_call(&self) -> String {
        let calls = std::fs::read_to_string(&self.calls).unwrap();
        let last = calls.lines().last().unwrap_or_default();
        last[last.find("get-wal").unwrap_or(0)..].to_owned()
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn restore(sshd: &Sshd, remote: &Remote, port: u16, args: &[&str]) -> Run {
    let out = Command::new(WAL_RESTORE)
        .args([
            "--ssh-command",
            &sshd.ssh_base(),
            "--port",
            &port.to_string(),
        ])
        .args(["-U", &sshd.user])
        .arg("--barman-command")
        .arg(&remote.wrapper)
        .arg(format!("--config={}", remote.conf.display()))
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The names in `dir` (temporary files included; not the shared SSH connection's
/// socket and the prefetch lock).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".ssh-") && n != ".prefetch.lock")
        .collect();
    names.sort();
    names
}

#[test]
fn wal_restore_over_ssh() {
    let Some(sshd) = Sshd::start() else { return };
    let remote = Remote::new();
    let segment = fixture_segment();
    let history = b"1\t0/3000000\tno recovery target specified\n";
    {
        let staging = tempfile::tempdir().unwrap();
        let seg = staging.path().join(SEGMENT);
        std::fs::write(&seg, &segment).unwrap();
        remote.put_wal("pg", &seg);
        let hist = staging.path().join(HISTORY);
        std::fs::write(&hist, history).unwrap();
        remote.put_wal("pg", &hist);
    }
    // A .partial file as pg_receivewal leaves it (get-wal does not validate).
    let streaming = remote.home.join("pg/streaming");
    std::fs::create_dir_all(&streaming).unwrap();
    let partial = b"partial WAL content".repeat(1000);
    std::fs::write(streaming.join(format!("{PARTIAL}.partial")), &partial).unwrap();
    let stored = std::fs::read(remote.archived("pg", SEGMENT)).unwrap();
    assert_eq!(Codec::detect(&stored), Codec::Gzip);
    sshd.give(remote.dir.path());

    let local = tempfile::tempdir().unwrap();
    let pg_wal = local.path().join("pg_wal");
    std::fs::create_dir(&pg_wal).unwrap();
    let dest = pg_wal.join("RECOVERYXLOG");
    let dest_s = dest.to_str().unwrap();
    let spool = local.path().join("spool");
    let spool_s = spool.to_str().unwrap();
    let port = sshd.port;

    // --test: the remote get-wal --test answers; WAL_NAME and WAL_DEST are optional.
    let r = restore(&sshd, &remote, port, &["--test", "127.0.0.1", "pg"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, sshd.log());
    assert!(
        r.stdout
            .contains("Ready to retrieve WAL files from the server pg"),
        "{}",
        r.stdout
    );
    assert!(remote.last_call().contains("get-wal --test pg"));
    let r = restore(&sshd, &remote, port, &["-t", "127.0.0.1", "nope", "x", "y"]);
    assert_eq!(r.code, 1, "{}", r.stderr);

    // A plain restore: the segment, decompressed by get-wal, byte for byte.
    let r = restore(
        &sshd,
        &remote,
        port,
        &["--spool-dir", spool_s, "127.0.0.1", "pg", SEGMENT, dest_s],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, sshd.log());
    assert!(std::fs::read(&dest).unwrap() == segment);
    assert_eq!(remote.last_call(), format!("get-wal pg {SEGMENT}"));
    assert_eq!(listing(&pg_wal), ["RECOVERYXLOG"]);
    assert!(!spool.exists(), "no spool without --parallel");
    std::fs::remove_file(&dest).unwrap();

    // Transfer compression: the remote sends gzip, bzip2 or the stored (gzip) bytes;
    // PostgreSQL always gets the plain segment.
    for (opt, remote_opt) in [
        ("-z", "--gzip"),
        ("-j", "--bzip2"),
        ("--keep-compression", "--keep-compression"),
    ] {
        let r = restore(
            &sshd,
            &remote,
            port,
            &[
                opt,
                "--spool-dir",
                spool_s,
                "127.0.0.1",
                "pg",
                SEGMENT,
                dest_s,
            ],
        );
        assert_eq!(r.code, 0, "{opt}: {}", r.stderr);
        assert!(std::fs::read(&dest).unwrap() == segment, "{opt}");
        assert_eq!(
            remote.last_call(),
            format!("get-wal {remote_opt} pg {SEGMENT}")
        );
        assert_eq!(r.stderr.contains("deprecated"), opt != "--keep-compression");
        std::fs::remove_file(&dest).unwrap();
    }
    // What --keep-compression transfers is the stored file itself.
    let out = Command::new(BARMAN)
        .arg(format!("--config={}", remote.conf.display()))
        .args(["get-wal", "--keep-compression", "pg", SEGMENT])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout == stored);

    // A history file.
    let r = restore(&sshd, &remote, port, &["127.0.0.1", "pg", HISTORY, dest_s]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read(&dest).unwrap(), history);
    std::fs::remove_file(&dest).unwrap();

    // A .partial file only with -P.
    let r = restore(&sshd, &remote, port, &["127.0.0.1", "pg", PARTIAL, dest_s]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!dest.exists());
    let r = restore(
        &sshd,
        &remote,
        port,
        &["-P", "127.0.0.1", "pg", PARTIAL, dest_s],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read(&dest).unwrap(), partial);
    assert_eq!(
        remote.last_call(),
        format!("get-wal --partial pg {PARTIAL}")
    );
    std::fs::remove_file(&dest).unwrap();

    // Not in the archive: get-wal's exit code 1, nothing at %p (not even a temporary
    // file), also with --parallel (the peek finds nothing, the fetch says why).
    for extra in [&[][..], &["-p", "3", "--spool-dir", spool_s][..]] {
        let mut args = extra.to_vec();
        args.extend(["127.0.0.1", "pg", "000000010000000000000009", dest_s]);
        let r = restore(&sshd, &remote, port, &args);
        assert_eq!(r.code, 1, "{extra:?}: {}", r.stderr);
        assert!(r.stderr.contains("not found"), "{}", r.stderr);
        assert!(
            r.stderr
                .contains("Remote 'barman get-wal' command has failed")
        );
        assert!(listing(&pg_wal).is_empty(), "{:?}", listing(&pg_wal));
    }
    // An existing %p is left alone when the fetch fails.
    std::fs::write(&dest, b"old").unwrap();
    let r = restore(
        &sshd,
        &remote,
        port,
        &["127.0.0.1", "pg", "000000010000000000000009", dest_s],
    );
    assert_eq!(r.code, 1);
    assert_eq!(std::fs::read(&dest).unwrap(), b"old");
    std::fs::remove_file(&dest).unwrap();

    // A bad name (get-wal's code 3, refused before any connection), an unknown server.
    let r = restore(&sshd, &remote, port, &["127.0.0.1", "pg", "../etc", dest_s]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let r = restore(
        &sshd,
        &remote,
        port,
        &["127.0.0.1", "nope", SEGMENT, dest_s],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!dest.exists());

    // %p a directory: 3.
    let r = restore(
        &sshd,
        &remote,
        port,
        &["127.0.0.1", "pg", SEGMENT, pg_wal.to_str().unwrap()],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("WAL_DEST cannot be a directory"),
        "{}",
        r.stderr
    );

    // Nobody listening: ssh's 255 becomes 2, after the --sleep.
    let closed = testkit::tools::free_port();
    let started = Instant::now();
    let r = restore(
        &sshd,
        &remote,
        closed,
        &["-s", "1", "127.0.0.1", "pg", SEGMENT, dest_s],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("Connection problem with ssh"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Sleeping for 1 seconds."), "{}", r.stderr);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(listing(&pg_wal).is_empty());
    let r = restore(&sshd, &remote, closed, &["--test", "127.0.0.1", "pg"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// sshd, a fake remote Barman holding real consecutive 1 MiB segments of a throwaway
/// cluster, and three consecutive segment names.
struct Prefetch {
    sshd: Sshd,
    remote: Remote,
    pg: PgCluster,
    names: [String; 3],
}

fn prefetch_setup() -> Option<Prefetch> {
    let sshd = Sshd::start()?;
    let bin = testkit::require()?;

    let remote = Remote::new();
    // Real consecutive 1 MiB segments.
    let pg = PgCluster::start(&bin, &["--wal-segsize=1"], &[]).unwrap();
    let mut names = Vec::new();
    for i in 0..4 {
        pg.sql(&format!(
            "CREATE TABLE IF NOT EXISTS t(i int); INSERT INTO t VALUES ({i})"
        ))
        .unwrap();
        let name = pg
            .sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
            .unwrap();
        pg.sql("SELECT pg_switch_wal()").unwrap();
        pg.wait_archived(&name).unwrap();
        names.push(name);
    }
    let mut segments: Vec<String> = listing(&pg.archive())
        .into_iter()
        .filter(|n| n.len() == 24)
        .collect();
    segments.sort();
    for n in &segments {
        remote.put_wal("pg1m", &pg.archive().join(n));
    }
    sshd.give(remote.dir.path());
    // Three consecutive ones: the first is asked for, the next two get prefetched.
    let start = segments
        .windows(3)
        .position(|w| {
            let no = |s: &str| u64::from_str_radix(&s[16..], 16).unwrap();
            no(&w[1]) == no(&w[0]) + 1 && no(&w[2]) == no(&w[1]) + 1
        })
        .expect("three consecutive segments");
    let names = [
        segments[start].clone(),
        segments[start + 1].clone(),
        segments[start + 2].clone(),
    ];
    Some(Prefetch {
        sshd,
        remote,
        pg,
        names,
    })
}

#[test]
fn wal_restore_prefetches_into_the_spool() {
    let Some(Prefetch {
        sshd,
        remote,
        pg,
        names: [first, second, third],
    }) = prefetch_setup()
    else {
        return;
    };
    let (first, second, third) = (&first, &second, &third);
    let original = |n: &str| std::fs::read(pg.archive().join(n)).unwrap();

    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("RECOVERYXLOG");
    let dest_s = dest.to_str().unwrap();
    let spool = local.path().join("spool");
    let spool_s = spool.to_str().unwrap();
    let r = restore(
        &sshd,
        &remote,
        sshd.port,
        &[
            "-p",
            "3",
            "--sync-prefetch",
            "--spool-dir",
            spool_s,
            "127.0.0.1",
            "pg1m",
            first,
            dest_s,
        ],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, sshd.log());
    assert!(std::fs::read(&dest).unwrap() == original(first));
    let calls = std::fs::read_to_string(&remote.calls).unwrap();
    assert!(
        calls.contains(&format!("get-wal --peek 3 pg1m {first}")),
        "{calls}"
    );
    let mut expected = vec![second.clone(), third.clone()];
    expected.sort();
    assert_eq!(
        listing(&spool),
        expected,
        "only complete files in the spool"
    );
    assert!(std::fs::read(spool.join(second)).unwrap() == original(second));
    assert!(std::fs::read(spool.join(third)).unwrap() == original(third));

    // The next call is served from the spool: the remote copy is gone, no connection.
    std::fs::remove_file(remote.archived("pg1m", second)).unwrap();
    let before = std::fs::read_to_string(&remote.calls).unwrap();
    let r = restore(
        &sshd,
        &remote,
        sshd.port,
        &[
            "-p",
            "3",
            "--sync-prefetch",
            "--spool-dir",
            spool_s,
            "127.0.0.1",
            "pg1m",
            second,
            dest_s,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read(&dest).unwrap() == original(second));
    assert_eq!(std::fs::read_to_string(&remote.calls).unwrap(), before);
    assert_eq!(listing(&spool), std::slice::from_ref(third));
    // Asked again, it is neither in the spool nor in the archive any more.
    let r = restore(
        &sshd,
        &remote,
        sshd.port,
        &["--spool-dir", spool_s, "127.0.0.1", "pg1m", second, dest_s],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    // The spool is used even without --parallel (as Barman).
    let r = restore(
        &sshd,
        &remote,
        sshd.port,
        &["--spool-dir", spool_s, "127.0.0.1", "pg1m", third, dest_s],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read(&dest).unwrap() == original(third));
    assert!(listing(&spool).is_empty());
}

/// By default `-p` prefetches in a background process: the call returns once its own
/// file is in place, the next ones arrive in the spool soon after, complete, and are
/// then served from there.
#[test]
fn wal_restore_prefetches_in_the_background() {
    let Some(Prefetch {
        sshd,
        remote,
        pg,
        names: [first, second, third],
    }) = prefetch_setup()
    else {
        return;
    };
    let original = |n: &str| std::fs::read(pg.archive().join(n)).unwrap();
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("RECOVERYXLOG");
    let dest_s = dest.to_str().unwrap();
    let spool = local.path().join("spool");
    let spool_s = spool.to_str().unwrap();
    let args = |wal: &str| {
        vec![
            "-p".to_owned(),
            "2".into(),
            "--spool-dir".into(),
            spool_s.into(),
            "127.0.0.1".into(),
            "pg1m".into(),
            wal.into(),
            dest_s.into(),
        ]
    };
    let run = |wal: &str| {
        let a = args(wal);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        restore(&sshd, &remote, sshd.port, &a)
    };
    // A miss: the file asked for and the next one come in one batch, that file first.
    let r = run(&first);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, sshd.log());
    assert!(std::fs::read(&dest).unwrap() == original(&first));
    wait_for_spool(&spool, std::slice::from_ref(&second));
    let calls = std::fs::read_to_string(&remote.calls).unwrap();
    assert!(
        calls.contains(&format!("get-wal --tar=none pg1m {first} {second}")),
        "{calls}"
    );
    assert!(!calls.contains(&format!("get-wal pg1m {first}")), "{calls}");
    assert!(!calls.contains("--peek"), "{calls}");
    assert!(!spool.join(".no-get-wal-tar").exists());
    assert!(std::fs::read(spool.join(&second)).unwrap() == original(&second));

    // A hit: served from the spool, and the following ones, named from the spooled
    // segment's header (no --peek), come over one channel.
    let r = run(&second);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read(&dest).unwrap() == original(&second));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !spool.join(&third).exists() {
        assert!(Instant::now() < deadline, "spool: {:?}", listing(&spool));
        std::thread::sleep(Duration::from_millis(20));
    }
    let calls = std::fs::read_to_string(&remote.calls).unwrap();
    assert!(
        calls.contains(&format!("get-wal --tar=none pg1m {third}")),
        "{calls}"
    );
    assert!(!calls.contains("--peek"), "{calls}");
    let r = run(&third);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read(&dest).unwrap() == original(&third));

    // A damaged spooled file is not handed over: fetched again instead.
    std::fs::write(spool.join(&second), &original(&second)[..4096]).unwrap();
    let r = run(&second);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read(&dest).unwrap() == original(&second));

    // The shared connection prefers AES-GCM where the CPU has AES instructions and
    // the ssh configuration keeps OpenSSH's default list (as here)...
    let negotiated = |cipher: &str| {
        sshd.log()
            .matches(&format!("client->server cipher: {cipher} "))
            .count()
    };
    let expected = if cpu_has_aes() {
        "aes128-gcm@openssh.com"
    } else {
        "chacha20-poly1305@openssh.com"
    };
    assert!(negotiated(expected) > 0, "{}", sshd.log());
    // ... and leaves an explicit choice alone.
    assert_eq!(negotiated("aes256-ctr"), 0);
    let other_spool = local.path().join("spool2");
    let out = Command::new(WAL_RESTORE)
        .arg("--ssh-command")
        .arg(format!("{} -c aes256-ctr", sshd.ssh_base()))
        .args(["--port", &sshd.port.to_string(), "-U", &sshd.user])
        .arg("--barman-command")
        .arg(&remote.wrapper)
        .arg(format!("--config={}", remote.conf.display()))
        .args(["-p", "2", "--spool-dir"])
        .arg(&other_spool)
        .args(["127.0.0.1", "pg1m", &third])
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(negotiated("aes256-ctr") > 0, "{}", sshd.log());

    // A missing file is still reported as missing (exit 1), prefetch or not.
    std::fs::remove_file(remote.archived("pg1m", &first)).unwrap();
    let r = run(&first);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("not found"), "{}", r.stderr);
}

/// Whether this CPU encrypts AES-GCM in hardware (what barman-wal-restore checks).
fn cpu_has_aes() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// The complete files in the spool (no temporary files, claims, sockets, markers).
fn spooled(spool: &Path) -> Vec<String> {
    listing(spool)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect()
}

/// Waits (30 s at most) until the spool holds exactly `expected`.
fn wait_for_spool(spool: &Path, expected: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while spooled(spool) != expected {
        assert!(Instant::now() < deadline, "spool: {:?}", listing(spool));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Barman host without barman-rs's `get-wal --tar` (Barman's own refuses the option,
/// as argparse does): the background prefetch notes it in the spool and fetches the
/// files one `get-wal` each; later prefetches go straight to that.
#[test]
fn wal_restore_prefetch_falls_back_without_get_wal_tar() {
    let Some(Prefetch {
        sshd,
        remote,
        pg,
        names: [first, second, _],
    }) = prefetch_setup()
    else {
        return;
    };
    // Barman 3's answer to an option it does not know.
    std::fs::write(
        &remote.wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {calls}\ncase \" $* \" in *' --tar'*) \
             echo 'usage: barman get-wal [-h] ...' >&2; \
             echo \"barman get-wal: error: unrecognized arguments: --tar=none\" >&2; exit 2;; esac\n\
             exec {BARMAN} \"$@\"\n",
            calls = remote.calls.display()
        ),
    )
    .unwrap();
    let original = |n: &str| std::fs::read(pg.archive().join(n)).unwrap();
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("RECOVERYXLOG");
    let spool = local.path().join("spool");
    let run = |wal: &str| {
        restore(
            &sshd,
            &remote,
            sshd.port,
            &[
                "-p",
                "2",
                "--spool-dir",
                spool.to_str().unwrap(),
                "127.0.0.1",
                "pg1m",
                wal,
                dest.to_str().unwrap(),
            ],
        )
    };
    let r = run(&first);
    assert_eq!(r.code, 0, "{}\n{}", r.stderr, sshd.log());
    assert!(std::fs::read(&dest).unwrap() == original(&first));
    wait_for_spool(&spool, std::slice::from_ref(&second));
    assert!(
        spool.join(".no-get-wal-tar").exists(),
        "{:?}",
        listing(&spool)
    );
    let calls = std::fs::read_to_string(&remote.calls).unwrap();
    assert!(
        calls.contains(&format!("get-wal --tar=none pg1m {first} {second}")),
        "{calls}"
    );
    for wal in [&first, &second] {
        assert!(calls.contains(&format!("get-wal pg1m {wal}")), "{calls}");
    }
    assert!(std::fs::read(spool.join(&second)).unwrap() == original(&second));
    // Served from the spool; the next prefetch does not try --tar again.
    std::fs::write(&remote.calls, "").unwrap();
    let r = run(&second);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(std::fs::read(&dest).unwrap() == original(&second));
    // The prefetch after it asks for the following segments, one by one.
    let deadline = Instant::now() + Duration::from_secs(30);
    let calls = loop {
        let calls = std::fs::read_to_string(&remote.calls).unwrap();
        if calls.contains("get-wal pg1m") || Instant::now() > deadline {
            break calls;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(calls.contains("get-wal pg1m"), "{calls}");
    assert!(!calls.contains("--tar"), "{calls}");
}

/// Trust, point 5: the spool is handed to PostgreSQL, so it must be this user's own
/// private directory, never a link, and a spooled segment is checked as the archive
/// checks one (every page and record, the cluster's system identifier from the
/// data directory's `global/pg_control`). It used to be made with the umask, followed
/// links, and took any file whose first page looked right.
#[test]
fn wal_restore_spool_is_private_and_checked_in_full() {
    let Some(Prefetch {
        sshd,
        remote,
        pg,
        names: [first, second, _],
    }) = prefetch_setup()
    else {
        return;
    };
    use std::os::unix::fs::MetadataExt;
    let original = |n: &str| std::fs::read(pg.archive().join(n)).unwrap();
    let local = tempfile::tempdir().unwrap();
    // The data directory PostgreSQL runs restore_command in: its control file.
    let pgdata = local.path().join("pgdata");
    std::fs::create_dir_all(pgdata.join("global")).unwrap();
    std::fs::copy(
        pg.data().join("global/pg_control"),
        pgdata.join("global/pg_control"),
    )
    .unwrap();
    let dest = pgdata.join("RECOVERYXLOG");
    let run_with = |spool: &Path, wal: &str, extra: &[&str]| {
        let out = Command::new(WAL_RESTORE)
            .current_dir(&pgdata)
            .args(extra)
            .args([
                "--ssh-command",
                &sshd.ssh_base(),
                "--port",
                &sshd.port.to_string(),
            ])
            .args(["-U", &sshd.user])
            .arg("--barman-command")
            .arg(&remote.wrapper)
            .arg(format!("--config={}", remote.conf.display()))
            .arg("--spool-dir")
            .arg(spool)
            .args(["127.0.0.1", "pg1m", wal])
            .arg(&dest)
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let run = |spool: &Path, wal: &str| run_with(spool, wal, &[]);

    // A spool of ours that others could write into is made private.
    let spool = local.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o777)).unwrap();
    // Planted: a segment whose first page is right and whose records are not...
    // A byte of the first record that starts in this segment (after the long page
    // header, and after the end of a record continued from the previous segment,
    // which cannot be checked here): its CRC no longer matches.
    let mut damaged = original(&first);
    let continued = u32::from_le_bytes(damaged[16..20].try_into().unwrap()) as usize;
    let first_record = 40
        + if damaged[2] & 1 == 1 {
            continued.div_ceil(8) * 8
        } else {
            0
        };
    damaged[first_record + 30] ^= 0xFF;
    std::fs::write(spool.join(&first), &damaged).unwrap();
    let r = run(&spool, &first);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        std::fs::read(&dest).unwrap() == original(&first),
        "a damaged record was handed over"
    );
    assert_eq!(std::fs::metadata(&spool).unwrap().mode() & 0o777, 0o700);
    // ... and one of another cluster (its long header's system identifier).
    let mut foreign = original(&second);
    foreign[8] ^= 0x5A;
    std::fs::write(spool.join(&second), &foreign).unwrap();
    let r = run(&spool, &second);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        std::fs::read(&dest).unwrap() == original(&second),
        "another cluster's segment was handed over"
    );

    // A spooled file that is a link is not followed.
    let elsewhere = local.path().join("elsewhere");
    std::fs::write(&elsewhere, original(&first)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, spool.join(&first)).unwrap();
    std::fs::remove_file(&dest).unwrap();
    let r = run(&spool, &first);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        !std::fs::symlink_metadata(&dest)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(elsewhere.exists());

    // A spool that is a link: refused, nothing written where it points.
    let target = local.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let linked = local.path().join("linked-spool");
    std::os::unix::fs::symlink(&target, &linked).unwrap();
    std::fs::remove_file(&dest).unwrap();
    // Recovery goes on (a failed restore_command would end it early), without the
    // spool, saying why.
    let r = run_with(&linked, &first, &["-p", "2", "--sync-prefetch"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("spool directory") && r.stderr.contains("link"),
        "{}",
        r.stderr
    );
    assert!(std::fs::read(&dest).unwrap() == original(&first));
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);

    // Another user's spool: not used, nothing written into it.
    if testkit::tools::require_root("a spool owned by another user") {
        let theirs = local.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        testkit::tools::run(Command::new("chown").arg("nobody").arg(&theirs));
        std::fs::remove_file(&dest).unwrap();
        let r = run_with(&theirs, &first, &["-p", "2", "--sync-prefetch"]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("belongs to uid"), "{}", r.stderr);
        assert!(std::fs::read(&dest).unwrap() == original(&first));
        assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0);
    }
}
