//! Transport throughput: local tree copy (ours with 1 and 2 workers against `cp -a` and
//! `rsync -a`), upload to a local S3-compatible server (moto_server on 127.0.0.1), and
//! the bandwidth limiter's accuracy.
//!
//! `cargo run --release -p barman-benches --bin transport-bench -- [copy|s3|limiter|all] [TREE_MIB]`
//! (default: all, 1024 MiB). The tree goes under `$TMPDIR` (default `/var/tmp`).
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use barman_benches::best_of;
use barman_transport::{
    CloudOptions, Limited, LocalCopier, Location, ObjectStoreStorage, RateLimiter, StorageExt,
};
use tokio::io::AsyncReadExt;

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// A tree like a small PGDATA: 4 directories of files of 1 to 64 MiB, incompressible.
fn make_tree(root: &Path, total: u64) -> u64 {
    let mut x: u64 = 0x1234_5678_9ABC_DEF1;
    let mut written = 0u64;
    let mut i = 0u64;
    while written < total {
        let dir = root.join(format!("base/{}", 16384 + i % 4));
        std::fs::create_dir_all(&dir).unwrap();
        let size = ((1 + i % 64) << 20).min(total - written);
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(dir.join(format!("{}", 20000 + i))).unwrap(),
        );
        let mut left = size;
        let mut buf = vec![0u8; 1 << 16];
        while left > 0 {
            for c in buf.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
            }
            let n = left.min(buf.len() as u64) as usize;
            f.write_all(&buf[..n]).unwrap();
            left -= n as u64;
        }
        written += size;
        i += 1;
    }
    written
}

fn copy_bench(total_mib: u64) {
    let base = std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/var/tmp"), PathBuf::from);
    let tmp = tempfile::Builder::new()
        .prefix("barman-copy-bench.")
        .tempdir_in(base)
        .unwrap();
    let src = tmp.path().join("src");
    let bytes = make_tree(&src, total_mib << 20);
    // Warm the page cache.
    let _ = Command::new("cat")
        .arg("--")
        .args(
            std::fs::read_dir(src.join("base/16384"))
                .unwrap()
                .map(|e| e.unwrap().path()),
        )
        .stdout(Stdio::null())
        .status();
    let dst = tmp.path().join("dst");
    let fresh = || {
        let _ = std::fs::remove_dir_all(&dst);
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!(
        "## local copy of a {} MiB tree (best of 3)\n\n| copier | MB/s |\n|---|---|",
        bytes >> 20
    );
    for workers in [1, 2] {
        let d = best_of(3, || {
            fresh();
            rt.block_on(LocalCopier::new().workers(workers).copy_tree(&src, &dst))
                .unwrap();
        });
        println!(
            "| barman-transport LocalCopier, {workers} worker(s) | {:.0} |",
            mbps(bytes, d)
        );
    }
    for (name, args) in [
        ("cp -a", vec!["cp", "-a"]),
        ("rsync -a", vec!["rsync", "-a"]),
    ] {
        let d = best_of(3, || {
            fresh();
            let s = if name.starts_with("rsync") {
                format!("{}/", src.display())
            } else {
                src.display().to_string()
            };
            let ok = Command::new(args[0])
                .args(&args[1..])
                .arg(s)
                .arg(&dst)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "{name} failed");
        });
        println!("| {name} | {:.0} |", mbps(bytes, d));
    }
    println!();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn s3_bench() {
    let port = free_port();
    let Ok(mut child) = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        println!(
            "## S3 upload: skipped (moto_server is not installed: pip install 'moto[server]')\n"
        );
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "PUT /bench HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
    }
    let opts = CloudOptions::new()
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .option("aws_access_key_id", "bench")
        .option("aws_secret_access_key", "bench")
        .option("aws_region", "us-east-1");
    let store = Arc::new(ObjectStoreStorage::from_url("s3://bench", &opts).unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let object = vec![0xA5u8; 16 << 20];
    let n = 16u64;
    let d = best_of(3, || {
        rt.block_on(async {
            for i in 0..n {
                store
                    .put(
                        &Location::new(format!("wals/{i:024X}")).unwrap(),
                        object.clone(),
                    )
                    .await
                    .unwrap();
            }
        })
    });
    println!(
        "## S3 upload to moto_server on 127.0.0.1 (16 x 16 MiB, sequential, best of 3)\n\n{:.0} MB/s\n",
        mbps(n * (16 << 20), d)
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn limiter_bench() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    println!(
        "## bandwidth limiter accuracy (real clock, 3 s transfers)\n\n| target | achieved | error |\n|---|---|---|"
    );
    for rate in [1u64 << 20, 8 << 20, 32 << 20] {
        let data = vec![0u8; (rate * 3) as usize];
        let start = Instant::now();
        rt.block_on(async {
            let mut r = Limited::new(&data[..], vec![RateLimiter::new(rate)]);
            let mut sink = vec![0u8; 64 << 10];
            while r.read(&mut sink).await.unwrap() > 0 {}
        });
        let achieved = data.len() as f64 / start.elapsed().as_secs_f64();
        println!(
            "| {} MiB/s | {:.2} MiB/s | {:+.1}% |",
            rate >> 20,
            achieved / (1 << 20) as f64,
            (achieved / rate as f64 - 1.0) * 100.0
        );
    }
    println!();
}

fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".to_owned());
    let mib: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    if what == "copy" || what == "all" {
        copy_bench(mib);
    }
    if what == "s3" || what == "all" {
        s3_bench();
    }
    if what == "limiter" || what == "all" {
        limiter_bench();
    }
}
