//! `barman export-backup` and `barman import-backup`.

use std::path::PathBuf;
use std::process::ExitCode;

use barman_core::export::{self, ExportCompression};

use crate::commands::usable_server;
use crate::{Context, fail};

/// The arguments of `export-backup`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The server.
    pub server: String,
    /// The backup to export (a DONE full backup).
    pub backup_id: String,
    /// The directory the tarball is written into.
    pub output_directory: PathBuf,
    /// Compress the tarball (default: none).
    #[arg(long, value_parser = ["gzip", "bzip2", "xz"])]
    pub compression: Option<String>,
    /// The compression level: 1-9 (0-9 for xz).
    #[arg(long = "compression-level")]
    pub compression_level: Option<u32>,
}

/// The arguments of `import-backup`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The server.
    pub server: String,
    /// The tarball export-backup wrote.
    pub input_tarball: PathBuf,
}

/// `barman export-backup SERVER BACKUP_ID OUTPUT_DIRECTORY`.
pub fn export(ctx: &Context, args: &ExportArgs) -> ExitCode {
    let sc = match usable_server(ctx, &args.server) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let compression =
        match ExportCompression::parse(args.compression.as_deref(), args.compression_level) {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
    ctx.info(format!(
        "Exporting backup '{}' from server '{}' to '{}'",
        args.backup_id,
        args.server,
        args.output_directory.display()
    ));
    let now = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S").to_string();
    match export::export_backup(
        ctx.config.global(),
        sc,
        &args.backup_id,
        &args.output_directory,
        compression,
        &now,
    ) {
        Ok(path) => {
            ctx.info(format!("Export completed successfully: {}", path.display()));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// `barman import-backup SERVER TARBALL`.
pub fn import(ctx: &Context, args: &ImportArgs) -> ExitCode {
    let sc = match usable_server(ctx, &args.server) {
        Ok(s) => s,
        Err(code) => return code,
    };
    ctx.info(format!(
        "Importing backup from '{}' to server '{}'",
        args.input_tarball.display(),
        args.server
    ));
    match export::import_backup(ctx.config.global(), sc, &args.input_tarball) {
        Ok(done) => {
            for w in &done.warnings {
                crate::warning(w);
            }
            ctx.info(format!(
                "Successfully imported backup '{}' into server '{}'",
                done.id, args.server
            ));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
