//! `compression = custom`: WAL files compressed and decompressed by the
//! administrator's own shell filters, as Barman does it.
//!
//! - `custom_compression_filter` reads the WAL file on its standard input and writes
//!   the compressed file on its standard output; `custom_decompression_filter` does
//!   the reverse. Both run under `/bin/sh` with `path_prefix` in front of `PATH`, as
//!   Barman runs them; xlog.db says `custom`.
//! - `custom_compression_magic` (`0x` and hex digits) tells a custom-compressed file by
//!   its first bytes. Without it, a stored file that no known codec, encryption or
//!   plain WAL explains is taken for custom-compressed (Barman's rule; Barman also takes
//!   a plain stored file for one, barman-rs does not). A file handed to the archive is
//!   taken for custom-compressed only by the magic, as Barman does.
//! - The filters stream (see `filter.rs`); a filter that exits non-zero fails
//!   the whole operation, even after its last byte.

use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::process::Command;

use barman_wal::Codec;

use crate::config::ServerConfig;
use crate::{Error, Result, filter};

/// The name Barman records for custom compression (xlog.db).
pub const CUSTOM: &str = "custom";

/// A server's custom compression filters.
#[derive(Clone, Debug)]
pub struct CustomCompression {
    compress: String,
    decompress: String,
    magic: Option<Vec<u8>>,
    path_prefix: Option<String>,
}

/// Parses `custom_compression_magic`: `0x` then an even, non-zero number of hex digits.
///
/// ```
/// use barman_core::compression::parse_magic;
/// assert_eq!(parse_magic("0x5d0000"), Some(vec![0x5d, 0, 0]));
/// assert_eq!(parse_magic("5d0000"), None);
/// assert_eq!(parse_magic("0x5d0"), None);
/// ```
pub fn parse_magic(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("0x")?;
    if hex.is_empty() || hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

impl CustomCompression {
    /// The filters of `server` when it sets `compression = custom` (the configuration
    /// refuses it without both filters or with an invalid magic), else `None`.
    pub fn for_server(server: &ServerConfig) -> Option<CustomCompression> {
        let compression = server.compression()?;
        if compression.name() != CUSTOM {
            return None;
        }
        let o = server.options();
        Some(CustomCompression {
            compress: o.custom_compression_filter.clone()?,
            decompress: o.custom_decompression_filter.clone()?,
            magic: o.custom_compression_magic.as_deref().and_then(parse_magic),
            path_prefix: o.path_prefix.clone(),
        })
    }

    /// How many first bytes [`CustomCompression::identifies`] needs.
    pub fn magic_len(&self) -> usize {
        self.magic.as_ref().map_or(0, Vec::len)
    }

    /// Whether a file starting with `prefix` is custom-compressed: by the magic when
    /// one is configured; else, for a `stored` file only, when nothing else explains
    /// it (no codec's magic, no encryption, not a WAL page, not text).
    pub fn identifies(&self, prefix: &[u8], stored: bool) -> bool {
        match &self.magic {
            Some(m) => prefix.starts_with(m),
            None => {
                stored
                    && Codec::detect(prefix) == Codec::None
                    && !crate::encryption::is_encrypted(prefix)
                    && !looks_plain(prefix)
            }
        }
    }

    fn command(&self, filter: &str) -> Command {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(filter);
        if let Some(prefix) = self.path_prefix.as_deref().filter(|p| !p.is_empty()) {
            #[allow(clippy::disallowed_methods)] // PATH is what the filter runs with
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{prefix}:{path}"));
        }
        cmd
    }

    /// Runs `body` with a writer whose bytes go through `custom_compression_filter`
    /// into `out`.
    ///
    /// # Errors
    ///
    /// The filter failing (its last line of error output), `body`'s error, errors
    /// writing `out`.
    pub(crate) fn compress<W: Write + Send, T>(
        &self,
        out: W,
        label: &Path,
        body: impl FnOnce(&mut (dyn Write + Send)) -> Result<T>,
    ) -> Result<T> {
        filter::write_through(
            self.command(&self.compress),
            "custom_compression_filter",
            "compressing",
            label,
            out,
            body,
        )
    }

    /// Runs `body` with `input` through `custom_decompression_filter`.
    ///
    /// # Errors
    ///
    /// The filter failing, even after its last byte; errors reading `input`; `body`'s.
    pub(crate) fn decompress<R: Read + Send, T>(
        &self,
        input: R,
        label: &Path,
        body: impl FnOnce(&mut (dyn Read + Send)) -> Result<T>,
    ) -> Result<T> {
        filter::read_through(
            self.command(&self.decompress),
            "custom_decompression_filter",
            "decompressing",
            label,
            b"",
            input,
            body,
        )
    }
}

/// Whether `prefix` starts a plain WAL file: a WAL page (its magic `0xD0xx`/`0xD1xx`
/// little-endian, then page flags below 8), zeros (a segment `receive-wal` made whole
/// before writing into it), or text (a history file, a backup label), or nothing.
fn looks_plain(prefix: &[u8]) -> bool {
    let page = matches!(prefix, [_, 0xD0 | 0xD1, 0..=7, 0, ..]) || prefix.iter().all(|b| *b == 0);
    let text = prefix
        .iter()
        .all(|b| b.is_ascii_graphic() || matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    page || text
}

/// How a file is compressed, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    /// A codec barman-rs reads itself ([`Codec::None`] for plain).
    Codec(Codec),
    /// The server's custom filters.
    Custom,
}

impl Coding {
    /// The name xlog.db records (`None` for plain).
    pub(crate) fn name(self) -> Option<&'static str> {
        match self {
            Coding::Codec(Codec::None) => None,
            Coding::Codec(c) => Some(c.name()),
            Coding::Custom => Some(CUSTOM),
        }
    }
}

/// How many first bytes to read to tell a file's coding.
pub(crate) fn prefix_len(custom: Option<&CustomCompression>) -> usize {
    barman_wal::MAGIC_MAX_LEN.max(custom.map_or(0, CustomCompression::magic_len))
}

/// The coding of a file starting with `prefix` (`stored`: already in the archive).
pub(crate) fn identify(custom: Option<&CustomCompression>, prefix: &[u8], stored: bool) -> Coding {
    match custom {
        Some(c) if c.identifies(prefix, stored) => Coding::Custom,
        _ => Coding::Codec(Codec::detect(prefix)),
    }
}

/// Runs `body` with `input` decompressed, whatever its coding: a codec barman-rs
/// knows, or the server's custom filter. `label` names `input` in messages; `stored`
/// says whether it comes from the archive (see [`CustomCompression::identifies`]).
/// `body` also learns the coding found.
///
/// # Errors
///
/// A stream that cannot be decompressed, a failing filter, `body`'s error.
pub(crate) fn with_decoded<R: Read + Send, T>(
    custom: Option<&CustomCompression>,
    mut input: R,
    label: &Path,
    stored: bool,
    body: impl FnOnce(Coding, &mut (dyn Read + Send)) -> Result<T>,
) -> Result<T> {
    let mut prefix = Vec::with_capacity(prefix_len(custom));
    (&mut input)
        .take(prefix_len(custom) as u64)
        .read_to_end(&mut prefix)
        .map_err(|e| Error::io("reading", label, e))?;
    let coding = identify(custom, &prefix, stored);
    let whole = Cursor::new(prefix).chain(input);
    match (coding, custom) {
        (Coding::Custom, Some(c)) => c.decompress(whole, label, |r| body(coding, r)),
        (Coding::Codec(codec), _) => {
            let buffered = std::io::BufReader::with_capacity(1 << 16, whole);
            let mut decoder = codec.decoder(buffered).map_err(|e| Error::Wal {
                path: label.to_owned(),
                source: e,
            })?;
            body(coding, &mut decoder)
        }
        // `identify` says Custom only with filters.
        (Coding::Custom, None) => body(Coding::Codec(Codec::None), &mut { whole }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn filters(magic: Option<&str>) -> CustomCompression {
        CustomCompression {
            compress: "xz --format=lzma -c".into(),
            decompress: "xz --format=lzma -dc".into(),
            magic: magic.and_then(parse_magic),
            path_prefix: None,
        }
    }

    #[test]
    fn a_stored_file_is_custom_by_its_magic_or_when_nothing_else_explains_it() {
        let with = filters(Some("0x5d0000"));
        assert!(with.identifies(&[0x5d, 0, 0, 0x80], false));
        assert!(!with.identifies(&[0x5d, 0, 1], true));
        let without = filters(None);
        let lzma = [0x5d, 0, 0, 0x80, 0, 0xff, 0xff, 0xff];
        assert!(without.identifies(&lzma, true));
        // A file handed to the archive: only a magic says it is compressed already.
        assert!(!without.identifies(&lzma, false));
        // Plain WAL (PostgreSQL 15's page magic), a history file, gzip, nothing.
        assert!(!without.identifies(&[0x13, 0xd1, 0x02, 0x00, 1, 0, 0, 0], true));
        assert!(!without.identifies(b"1\t0/3000000\tno recovery target", true));
        assert!(!without.identifies(&[0x1f, 0x8b, 8], true));
        assert!(!without.identifies(&[0; 10], true));
        assert!(!without.identifies(&[], true));
    }

    #[test]
    fn magic_is_hex_after_0x() {
        assert_eq!(parse_magic("0xFD377A"), Some(vec![0xfd, 0x37, 0x7a]));
        for bad in ["", "0x", "0x1", "0xzz", "fd37", "0X5d"] {
            assert_eq!(parse_magic(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn parse_magic_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 1..16), text in ".{0,20}") {
            let _ = parse_magic(&text);
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            prop_assert_eq!(parse_magic(&format!("0x{hex}")), Some(bytes));
        }
    }
}
