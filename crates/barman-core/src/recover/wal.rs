//! Step 3, the WAL of the plan delivered (decompressed) into the restored cluster.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Delivers `files` decompressed into `dir` with `jobs` threads; a `.partial` segment
/// goes under its segment name. With `done`, an `archive_status/<name>.done` is written
/// for each.
pub(super) async fn deliver_wal(
    archive: WalArchive,
    files: Vec<WalFileName>,
    dir: PathBuf,
    jobs: usize,
    done: bool,
) -> Result<()> {
    crate::blocking("delivering WAL into", dir.clone(), move || {
        if done {
            create_dir(&dir.join("archive_status"))?;
        }
        let queue = Arc::new(Mutex::new(files));
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..jobs)
                .map(|_| {
                    let queue = queue.clone();
                    let (archive, dir) = (&archive, &dir);
                    s.spawn(move || -> Result<()> {
                        loop {
                            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                            let Some(file) = next else { return Ok(()) };
                            let (name, partial) = match file {
                                WalFileName::Partial(seg) => (seg.to_string(), true),
                                other => (other.to_string(), false),
                            };
                            let opts = GetWalOptions {
                                partial,
                                sync: true,
                                ..GetWalOptions::default()
                            };
                            archive.get_wal_to_dir(&name, &opts, dir)?;
                            if done {
                                write_persist(
                                    &dir.join("archive_status").join(format!("{name}.done")),
                                    b"",
                                )?;
                            }
                        }
                    })
                })
                .collect();
            let mut result = Ok(());
            for w in workers {
                let r = w.join().unwrap_or_else(|_| {
                    Err(Error::io(
                        "delivering WAL into",
                        dir.clone(),
                        io::Error::other("a worker panicked"),
                    ))
                });
                if result.is_ok() {
                    result = r;
                }
            }
            result
        })
    })
    .await?
}
