//! `barman get-wal`, and its `--tar` form for barman-wal-restore.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use barman_core::Error;
use barman_core::archive::{GetWalOptions, TarWalOptions};
use barman_wal::Codec;

use crate::Context;
use crate::commands::archive_of;

/// The command's arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the file into this directory instead of standard output.
    #[arg(short = 'o', long = "output-directory")]
    pub output_directory: Option<PathBuf>,
    /// Also look for .partial files.
    #[arg(short = 'P', long)]
    pub partial: bool,
    /// Compress the output with gzip.
    #[arg(
        short = 'z',
        visible_short_alias = 'x',
        long = "gzip",
        group = "out_codec"
    )]
    pub gzip: bool,
    /// Compress the output with bzip2.
    #[arg(short = 'j', long = "bzip2", group = "out_codec")]
    pub bzip2: bool,
    /// Send the file as stored.
    #[arg(long = "keep-compression")]
    pub keep_compression: bool,
    /// List up to N consecutive existing WAL names from WAL_NAME on.
    #[arg(short = 'p', long = "peek")]
    pub peek: Option<usize>,
    /// Only check that the server can serve WAL files.
    #[arg(short = 't', long = "test")]
    pub test: bool,
    /// (barman-rs) Send the named WAL segments the archive holds as one tar stream
    /// (decompressed, or as stored with --keep-compression), the stream compressed
    /// with CODEC (lz4, zstd, ...; default none); missing ones are left out
    /// (barman-wal-restore's prefetch).
    #[arg(
        long = "tar",
        value_name = "CODEC",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "none",
        conflicts_with_all = ["output_directory", "peek", "test", "gzip", "bzip2", "partial"]
    )]
    pub tar: Option<String>,
    /// The server.
    pub server: String,
    /// The WAL file name.
    pub wal_name: String,
    /// With --tar: more WAL file names.
    #[arg(requires = "tar", value_name = "WAL_NAME")]
    pub more_names: Vec<String>,
}

/// Runs the command.
pub fn run(ctx: &Context, args: &Args) -> ExitCode {
    if let Some(codec) = &args.tar {
        let names: Vec<&str> = std::iter::once(args.wal_name.as_str())
            .chain(args.more_names.iter().map(String::as_str))
            .collect();
        return get_wals_tar(ctx, &args.server, &names, codec, args.keep_compression);
    }
    get_wal(ctx, args)
}

/// `barman get-wal SERVER WAL_NAME`: send a WAL file to standard output (or a
/// directory), decompressed unless `--keep-compression`. Exit code 3 for a bad name or
/// output, 1 when not found.
fn get_wal(ctx: &Context, args: &Args) -> ExitCode {
    let (server, name) = (args.server.as_str(), args.wal_name.as_str());
    let compression = if args.gzip {
        Some(Codec::Gzip)
    } else if args.bzip2 {
        Some(Codec::Bzip2)
    } else {
        None
    };
    let (_, archive) = match archive_of(ctx, server) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if args.test {
        ctx.info(format!(
            "Ready to retrieve WAL files from the server {server}"
        ));
        return ExitCode::SUCCESS;
    }
    let exit = |e: Error| -> ExitCode {
        let code = matches!(e, Error::InvalidWalName { .. } | Error::OutputFile { .. });
        crate::error(&e);
        ExitCode::from(if code { 3 } else { 1 })
    };
    if let Some(n) = args.peek {
        return match archive.peek_wal(name, n) {
            Ok(list) => {
                for w in list {
                    println!("{w}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => exit(e),
        };
    }
    let opts = GetWalOptions {
        partial: args.partial,
        keep_compression: args.keep_compression,
        compression,
        ..GetWalOptions::default()
    };
    let result = match args.output_directory.as_deref() {
        Some(dir) => archive.get_wal_to_dir(name, &opts, dir).map(|_| ()),
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            archive
                .get_wal(name, &opts, &mut out)
                .map(|_| ())
                .and_then(|()| {
                    out.flush().map_err(|e| Error::Io {
                        op: "writing",
                        path: "stdout".into(),
                        source: e,
                    })
                })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit(e),
    }
}

/// barman-rs `barman get-wal --tar[=CODEC] SERVER WAL_NAME...`: the named WAL segments
/// the archive holds as one tar stream on standard output (compressed with CODEC), each
/// decompressed (as stored with `--keep-compression`); missing ones are left out. Exit code 2 for a codec this build lacks, 3 for
/// a bad name (nothing sent either way), 1 when the stream fails.
fn get_wals_tar(
    ctx: &Context,
    server: &str,
    names: &[&str],
    codec: &str,
    keep_compression: bool,
) -> ExitCode {
    let stream = match codec.parse::<Codec>() {
        Ok(c) if c.is_available() => c,
        _ => {
            crate::error(format!(
                "get-wal --tar={codec}: unknown or unavailable stream compression"
            ));
            return ExitCode::from(2);
        }
    };
    let (_, archive) = match archive_of(ctx, server) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let options = TarWalOptions {
        keep_compression,
        stream,
    };
    match archive.get_wals_tar(names, &options, std::io::stdout().lock()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            let code = if matches!(e, Error::InvalidWalName { .. }) {
                3
            } else {
                1
            };
            crate::error(&e);
            ExitCode::from(code)
        }
    }
}
