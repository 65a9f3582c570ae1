//! A WAL archive in any storage, without the CLI and without a configuration file:
//! the repository seam of barman-core over a local directory, memory, or an object
//! store.
//!
//! ```text
//! cargo run -p barman-examples --example archive-to-store -- STORE [--compression CODEC] WAL_FILE...
//! ```
//!
//! `STORE` is a directory, `memory://`, or an object-store URL (`s3://bucket/prefix`,
//! `gs://...`, `az://...`) with its credentials in the environment (`AWS_*`, and
//! `AWS_ENDPOINT_URL` for an S3-compatible server). Each WAL file is validated,
//! compressed and stored without ever replacing an archived file (a second run reports
//! them as already archived); then the archive is listed and every file read back and
//! compared with its source. The source files are only read.

use std::path::PathBuf;
use std::sync::Arc;

use barman_core::repository::{Repository, Stored};
use barman_transport::{CloudOptions, DynStorage, LocalStorage, ObjectStoreStorage};
use barman_wal::{Codec, CompressionLevel, WalFileName};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("archive-to-store: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let store = args
        .next()
        .ok_or("usage: archive-to-store STORE [--compression CODEC] WAL_FILE...")?;
    let mut codec = Codec::None;
    let mut files = Vec::new();
    while let Some(a) = args.next() {
        if a == "--compression" {
            let name = args.next().ok_or("--compression needs a codec")?;
            codec = name
                .parse()
                .map_err(|e| format!("--compression {name}: {e}"))?;
        } else {
            files.push(PathBuf::from(a));
        }
    }
    let storage: Arc<DynStorage> = if store.contains("://") {
        let options = CloudOptions::new().env(std::env::vars());
        Arc::new(ObjectStoreStorage::from_url(&store, &options)?)
    } else {
        Arc::new(LocalStorage::new(&store)?)
    };
    let repo =
        Repository::new("example", storage).with_compression(codec, CompressionLevel::default());

    for path in &files {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let name: WalFileName = file_name.parse()?;
        match repo.store_wal(path, name).await {
            Ok(Stored::Archived { size }) => println!("{name}: archived ({size} bytes stored)"),
            Ok(Stored::Identical) => println!("{name}: already archived, same content"),
            Ok(Stored::Different) => println!("{name}: REFUSED, archived with other content"),
            Ok(other) => println!("{name}: {other:?}"),
            Err(e) => println!("{name}: REFUSED, {e}"),
        }
    }
    if let Some(id) = repo.identity().await? {
        println!(
            "cluster: system identifier {}, PostgreSQL {}",
            id.systemid, id.version
        );
    }
    let index = repo.wal_index().await?;
    println!("{} files archived", index.len());
    for e in index.iter() {
        let Some((bytes, _)) = repo.copy_wal_to(&e.name, Vec::new(), true).await? else {
            continue;
        };
        let source = files
            .iter()
            .find(|p| p.file_name().and_then(|n| n.to_str()) == Some(&e.name.to_string()));
        let verdict = match source.map(std::fs::read).transpose()? {
            Some(original) if original == bytes => "read back, identical to its source",
            Some(_) => "read back, DIFFERENT from the file given now",
            None => "read back",
        };
        println!(
            "  {} {} bytes stored ({}), {verdict}",
            e.name,
            e.size,
            e.compression.as_deref().unwrap_or("uncompressed")
        );
    }
    Ok(())
}
