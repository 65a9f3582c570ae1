//! Streaming compression codecs, with Barman's names, levels and magic-byte detection.

use std::fmt;
use std::io::{self, Chain, Cursor, Read, Write};
use std::str::FromStr;

use crate::{Error, Result};

/// A compression format of WAL files and backups.
///
/// Names, levels and detection follow Barman: [`Codec::from_barman_name`] maps every
/// value of Barman's `compression` option (`pigz` and `pygzip` are gzip, `pybzip2` is
/// bzip2), and [`Codec::detect`] recognises a file by its first bytes in the order
/// Barman tries them, so an archive mixing formats decodes file by file.
///
/// | codec | magic | cargo feature | default |
/// |---|---|---|---|
/// | none | | | yes |
/// | gzip | `1F 8B 08` | `gzip` (flate2, zlib-rs backend) | yes |
/// | bzip2 | `42 5A 68` | `bzip2` (pure-Rust libbz2-rs-sys) | yes |
/// | zstd | `28 B5 2F FD` | `zstd` (bundled libzstd) | yes |
/// | lz4 | `04 22 4D 18` | `lz4` (lz4_flex, frame format) | yes |
/// | xz | `FD 37 7A 58 5A 00` | `xz` (liblzma) | no |
/// | snappy | `FF 06 00 00 73 4E 61 50 70 59` | `snappy` (snap, framing format) | no |
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use barman_wal::{Codec, CompressionLevel};
///
/// let codec = Codec::from_barman_name("pigz")?;
/// assert_eq!(codec, Codec::Gzip);
///
/// let mut enc = codec.encoder(Vec::new(), CompressionLevel::Low)?;
/// enc.write_all(b"some WAL bytes")?;
/// let packed = enc.finish()?;
/// assert_eq!(Codec::detect(&packed), Codec::Gzip);
///
/// let mut out = Vec::new();
/// Codec::decoder_detect(&packed[..])?.read_to_end(&mut out)?;
/// assert_eq!(out, b"some WAL bytes");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[non_exhaustive]
pub enum Codec {
    /// Stored as is.
    None,
    /// gzip (RFC 1952); concatenated members (pigz) decode as one stream.
    Gzip,
    /// bzip2; concatenated streams decode as one.
    Bzip2,
    /// Zstandard frames.
    Zstd,
    /// LZ4 frame format, as the `lz4` tool and Python's `lz4.frame` write it.
    Lz4,
    /// xz.
    Xz,
    /// Snappy framing format, as Python's `snappy.stream_compress` writes it.
    Snappy,
}

/// Longest magic number of any codec, in bytes.
pub const MAGIC_MAX_LEN: usize = 10;

impl Codec {
    /// Every codec, compressed ones in the order Barman tries their magic numbers.
    ///
    /// ```
    /// assert_eq!(barman_wal::Codec::ALL.len(), 7);
    /// ```
    pub const ALL: [Codec; 7] = [
        Codec::None,
        Codec::Bzip2,
        Codec::Gzip,
        Codec::Lz4,
        Codec::Snappy,
        Codec::Xz,
        Codec::Zstd,
    ];

    /// The canonical name (`none`, `gzip`, `bzip2`, `zstd`, `lz4`, `xz`, `snappy`), as
    /// written in xlog.db and `backup.info`.
    ///
    /// ```
    /// assert_eq!(barman_wal::Codec::Zstd.name(), "zstd");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Bzip2 => "bzip2",
            Codec::Zstd => "zstd",
            Codec::Lz4 => "lz4",
            Codec::Xz => "xz",
            Codec::Snappy => "snappy",
        }
    }

    /// The codec of a value of Barman's `compression` option, or of a compression name
    /// in xlog.db (`None` there means [`Codec::None`]).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownCompression`] for anything else, including `custom` (an external
    /// filter command, which barman-core runs itself).
    ///
    /// ```
    /// use barman_wal::Codec;
    /// assert_eq!(Codec::from_barman_name("pybzip2")?, Codec::Bzip2);
    /// assert_eq!(Codec::from_barman_name("None")?, Codec::None);
    /// assert!(Codec::from_barman_name("brotli").is_err());
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn from_barman_name(name: &str) -> Result<Codec> {
        Ok(match name {
            "none" | "None" | "" => Codec::None,
            "gzip" | "pigz" | "pygzip" => Codec::Gzip,
            "bzip2" | "pybzip2" => Codec::Bzip2,
            "zstd" => Codec::Zstd,
            "lz4" => Codec::Lz4,
            "xz" => Codec::Xz,
            "snappy" => Codec::Snappy,
            _ => {
                return Err(Error::UnknownCompression {
                    name: name.to_owned(),
                });
            }
        })
    }

    /// The magic number a stream of this codec starts with (empty for [`Codec::None`]).
    ///
    /// ```
    /// assert_eq!(barman_wal::Codec::Zstd.magic(), [0x28, 0xB5, 0x2F, 0xFD]);
    /// ```
    pub const fn magic(self) -> &'static [u8] {
        match self {
            Codec::None => &[],
            Codec::Gzip => &[0x1F, 0x8B, 0x08],
            Codec::Bzip2 => b"BZh",
            Codec::Zstd => &[0x28, 0xB5, 0x2F, 0xFD],
            Codec::Lz4 => &[0x04, 0x22, 0x4D, 0x18],
            Codec::Xz => &[0xFD, b'7', b'z', b'X', b'Z', 0x00],
            Codec::Snappy => &[0xFF, 0x06, 0x00, 0x00, b's', b'N', b'a', b'P', b'p', b'Y'],
        }
    }

    /// The codec of data starting with `prefix` (give it the first
    /// [`MAGIC_MAX_LEN`] bytes, or all of a shorter file), [`Codec::None`] when no magic
    /// matches. Uncompressed WAL never matches: its first two bytes are a page magic.
    ///
    /// ```
    /// use barman_wal::Codec;
    /// assert_eq!(Codec::detect(&[0x1F, 0x8B, 0x08, 0x00]), Codec::Gzip);
    /// assert_eq!(Codec::detect(&[0x10, 0xD1, 0x06, 0x00]), Codec::None);
    /// ```
    pub fn detect(prefix: &[u8]) -> Codec {
        Self::ALL
            .into_iter()
            .find(|c| *c != Codec::None && prefix.starts_with(c.magic()))
            .unwrap_or(Codec::None)
    }

    /// Whether this build can encode and decode the codec (its cargo feature is on).
    ///
    /// ```
    /// assert!(barman_wal::Codec::None.is_available());
    /// ```
    pub const fn is_available(self) -> bool {
        match self {
            Codec::None => true,
            Codec::Gzip => cfg!(feature = "gzip"),
            Codec::Bzip2 => cfg!(feature = "bzip2"),
            Codec::Zstd => cfg!(feature = "zstd"),
            Codec::Lz4 => cfg!(feature = "lz4"),
            Codec::Xz => cfg!(feature = "xz"),
            Codec::Snappy => cfg!(feature = "snappy"),
        }
    }

    /// Barman's level table for the codec: `(min, max, low, medium, high)`, `None` for
    /// codecs without levels.
    ///
    /// ```
    /// assert_eq!(barman_wal::Codec::Gzip.levels(), Some((1, 9, 1, 6, 9)));
    /// assert_eq!(barman_wal::Codec::Snappy.levels(), None);
    /// ```
    pub const fn levels(self) -> Option<(i32, i32, i32, i32, i32)> {
        match self {
            Codec::None | Codec::Snappy => None,
            Codec::Gzip => Some((1, 9, 1, 6, 9)),
            Codec::Bzip2 => Some((1, 9, 1, 5, 9)),
            Codec::Xz => Some((1, 9, 1, 3, 5)),
            Codec::Zstd => Some((-22, 22, 1, 4, 9)),
            Codec::Lz4 => Some((0, 16, 0, 6, 10)),
        }
    }

    fn unavailable(self) -> Error {
        Error::CodecUnavailable { codec: self }
    }

    /// A streaming encoder writing compressed bytes into `inner`. Call
    /// [`Encoder::finish`] at the end: dropping the encoder loses the stream's tail.
    ///
    /// The LZ4 encoder has a single speed (lz4_flex's, like `lz4 -1`) whatever the level.
    ///
    /// # Errors
    ///
    /// [`Error::CodecUnavailable`] when the codec's feature is off; [`Error::Io`] if the
    /// encoder cannot be set up.
    ///
    /// ```
    /// use std::io::Write;
    /// use barman_wal::{Codec, CompressionLevel};
    /// let mut enc = Codec::Zstd.encoder(Vec::new(), CompressionLevel::Exact(3))?;
    /// enc.write_all(&[0u8; 4096])?;
    /// assert!(enc.finish()?.len() < 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encoder<W: Write>(self, inner: W, level: CompressionLevel) -> Result<Encoder<W>> {
        let lvl = level.for_codec(self);
        #[allow(unused_variables)]
        let lvl_u32 = lvl.map(|l| u32::try_from(l).unwrap_or(0));
        let kind = match self {
            Codec::None => EncoderKind::None(inner),
            #[cfg(feature = "gzip")]
            Codec::Gzip => EncoderKind::Gzip(flate2::write::GzEncoder::new(
                inner,
                flate2::Compression::new(lvl_u32.unwrap_or(6)),
            )),
            #[cfg(feature = "bzip2")]
            Codec::Bzip2 => EncoderKind::Bzip2(bzip2::write::BzEncoder::new(
                inner,
                bzip2::Compression::new(lvl_u32.unwrap_or(9)),
            )),
            #[cfg(feature = "zstd")]
            Codec::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(inner, lvl.unwrap_or(4))
                    .map_err(|e| Error::io("setting up a zstd encoder", e))?;
                // A content checksum, as the zstd tool writes by default.
                e.include_checksum(true)
                    .map_err(|e| Error::io("setting up a zstd encoder", e))?;
                EncoderKind::Zstd(e)
            }
            #[cfg(feature = "lz4")]
            Codec::Lz4 => EncoderKind::Lz4(lz4_flex::frame::FrameEncoder::with_frame_info(
                // A content checksum, as the lz4 tool writes by default.
                lz4_flex::frame::FrameInfo::new().content_checksum(true),
                inner,
            )),
            #[cfg(feature = "xz")]
            Codec::Xz => {
                EncoderKind::Xz(liblzma::write::XzEncoder::new(inner, lvl_u32.unwrap_or(3)))
            }
            #[cfg(feature = "snappy")]
            Codec::Snappy => EncoderKind::Snappy(Box::new(snap::write::FrameEncoder::new(inner))),
            #[allow(unreachable_patterns)]
            other => return Err(other.unavailable()),
        };
        Ok(Encoder { kind, wrote: false })
    }

    /// A streaming decoder reading compressed bytes from `inner`.
    ///
    /// Truncated or corrupt input gives an `io::Error` (of kind `InvalidData` or
    /// `UnexpectedEof`), never a panic and never silently short output. One exception is
    /// inherent to the snappy framing format, which has no end marker: a snappy stream cut
    /// exactly between two chunks reads as a shorter valid stream, so check the size of
    /// what it yields.
    ///
    /// # Errors
    ///
    /// [`Error::CodecUnavailable`] when the codec's feature is off.
    ///
    /// ```
    /// use std::io::Read;
    /// use barman_wal::Codec;
    /// let mut d = Codec::None.decoder(&b"plain"[..])?;
    /// let mut s = String::new();
    /// d.read_to_string(&mut s)?;
    /// assert_eq!(s, "plain");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn decoder<R: Read>(self, inner: R) -> Result<Decoder<R>> {
        #[allow(unused_variables)]
        let counted = Counting { inner, seen: false };
        let kind = match self {
            Codec::None => DecoderKind::None(counted.inner),
            #[cfg(feature = "gzip")]
            Codec::Gzip => DecoderKind::Gzip(flate2::read::MultiGzDecoder::new(counted)),
            #[cfg(feature = "bzip2")]
            Codec::Bzip2 => DecoderKind::Bzip2(bzip2::read::MultiBzDecoder::new(counted)),
            #[cfg(feature = "zstd")]
            Codec::Zstd => DecoderKind::Zstd(
                zstd::stream::read::Decoder::new(counted)
                    .map_err(|e| Error::io("setting up a zstd decoder", e))?,
            ),
            #[cfg(feature = "lz4")]
            Codec::Lz4 => DecoderKind::Lz4(lz4_flex::frame::FrameDecoder::new(Lz4Tracker::new(
                counted.inner,
            ))),
            #[cfg(feature = "xz")]
            Codec::Xz => DecoderKind::Xz(liblzma::read::XzDecoder::new_multi_decoder(counted)),
            #[cfg(feature = "snappy")]
            Codec::Snappy => DecoderKind::Snappy(snap::read::FrameDecoder::new(counted)),
            #[allow(unreachable_patterns)]
            other => return Err(other.unavailable()),
        };
        Ok(Decoder { codec: self, kind })
    }

    /// A decoder for data in any codec: reads the first bytes of `inner`, detects the
    /// codec with [`Codec::detect`] and decodes accordingly ([`Decoder::codec`] tells
    /// which it was).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if reading the first bytes fails; [`Error::CodecUnavailable`] if the
    /// detected codec's feature is off.
    ///
    /// ```
    /// use barman_wal::Codec;
    /// let d = Codec::decoder_detect(&[0x28, 0xB5, 0x2F, 0xFD, 0][..])?;
    /// assert_eq!(d.codec(), Codec::Zstd);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn decoder_detect<R: Read>(mut inner: R) -> Result<Decoder<Prefixed<R>>> {
        let mut prefix = Vec::with_capacity(MAGIC_MAX_LEN);
        (&mut inner)
            .take(MAGIC_MAX_LEN as u64)
            .read_to_end(&mut prefix)
            .map_err(|e| Error::io("reading the first bytes to detect the compression", e))?;
        let codec = Codec::detect(&prefix);
        codec.decoder(Cursor::new(prefix).chain(inner))
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Codec {
    type Err = Error;
    /// Same as [`Codec::from_barman_name`].
    fn from_str(s: &str) -> Result<Self> {
        Codec::from_barman_name(s)
    }
}

/// Wraps the compressed input to know whether it held any byte at all.
#[derive(Debug)]
struct Counting<R> {
    inner: R,
    seen: bool,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen |= n > 0;
        Ok(n)
    }
}

/// Follows the LZ4 frame structure of the bytes read through it, to tell a stream cut
/// short (lz4_flex reads a stream that ends between blocks, or inside the end mark, as a
/// complete one).
#[cfg(feature = "lz4")]
#[derive(Debug)]
struct Lz4Tracker<R> {
    inner: R,
    seen: bool,
    state: Lz4State,
    buf: [u8; 4],
    got: usize,
    block_checksum: bool,
    content_checksum: bool,
}

#[cfg(feature = "lz4")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lz4State {
    /// Expecting a frame magic (the only state where the input may end).
    Magic,
    /// Expecting the FLG and BD bytes.
    Flags,
    /// Expecting a skippable frame's size.
    SkippableSize,
    /// Expecting a block size (or the end mark).
    BlockSize,
    /// Skipping `n` bytes, then going to the state after.
    Skip(u64, Lz4Next),
    /// Not a frame this tracker understands (legacy format, garbage): lz4_flex decides.
    Untracked,
}

#[cfg(feature = "lz4")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lz4Next {
    Magic,
    BlockSize,
}

#[cfg(feature = "lz4")]
impl<R: Read> Lz4Tracker<R> {
    fn new(inner: R) -> Self {
        Lz4Tracker {
            inner,
            seen: false,
            state: Lz4State::Magic,
            buf: [0; 4],
            got: 0,
            block_checksum: false,
            content_checksum: false,
        }
    }

    fn at_boundary(&self) -> bool {
        matches!(self.state, Lz4State::Untracked)
            || (self.state == Lz4State::Magic && self.got == 0)
    }

    fn track(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match self.state {
                Lz4State::Untracked => return,
                Lz4State::Skip(n, next) => {
                    let take = n.min(data.len() as u64);
                    data = &data[take as usize..];
                    self.state = if take == n {
                        match next {
                            Lz4Next::Magic => Lz4State::Magic,
                            Lz4Next::BlockSize => Lz4State::BlockSize,
                        }
                    } else {
                        Lz4State::Skip(n - take, next)
                    };
                }
                Lz4State::Magic
                | Lz4State::Flags
                | Lz4State::SkippableSize
                | Lz4State::BlockSize => {
                    let need = if self.state == Lz4State::Flags { 2 } else { 4 };
                    let take = (need - self.got).min(data.len());
                    self.buf[self.got..self.got + take].copy_from_slice(&data[..take]);
                    self.got += take;
                    data = &data[take..];
                    if self.got < need {
                        return;
                    }
                    self.got = 0;
                    let word = u32::from_le_bytes(self.buf);
                    self.state = match self.state {
                        Lz4State::Magic if word == 0x184D_2204 => Lz4State::Flags,
                        Lz4State::Magic if word & 0xFFFF_FFF0 == 0x184D_2A50 => {
                            Lz4State::SkippableSize
                        }
                        Lz4State::Magic => Lz4State::Untracked,
                        Lz4State::SkippableSize => Lz4State::Skip(u64::from(word), Lz4Next::Magic),
                        Lz4State::Flags => {
                            let flg = self.buf[0];
                            self.block_checksum = flg & 0x10 != 0;
                            self.content_checksum = flg & 0x04 != 0;
                            let rest = 1
                                + if flg & 0x08 != 0 { 8 } else { 0 }
                                + if flg & 0x01 != 0 { 4 } else { 0 };
                            Lz4State::Skip(rest, Lz4Next::BlockSize)
                        }
                        _ if word == 0 => {
                            if self.content_checksum {
                                Lz4State::Skip(4, Lz4Next::Magic)
                            } else {
                                Lz4State::Magic
                            }
                        }
                        _ => {
                            let len = u64::from(word & 0x7FFF_FFFF)
                                + if self.block_checksum { 4 } else { 0 };
                            Lz4State::Skip(len, Lz4Next::BlockSize)
                        }
                    };
                }
            }
        }
    }
}

#[cfg(feature = "lz4")]
impl<R: Read> Read for Lz4Tracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen |= n > 0;
        self.track(&buf[..n]);
        Ok(n)
    }
}

/// A reader that yields already-read `prefix` bytes before the rest of the stream (what
/// [`Codec::decoder_detect`] decodes).
pub type Prefixed<R> = Chain<Cursor<Vec<u8>>, R>;

/// Barman's `compression_level`: `low`, `medium` (the default), `high`, or an integer,
/// clamped to the codec's range (see [`Codec::levels`]).
///
/// ```
/// use barman_wal::{Codec, CompressionLevel};
///
/// let level: CompressionLevel = "high".parse()?;
/// assert_eq!(level.for_codec(Codec::Zstd), Some(9));
/// assert_eq!(CompressionLevel::Exact(42).for_codec(Codec::Gzip), Some(9));
/// assert_eq!(CompressionLevel::default().for_codec(Codec::Bzip2), Some(5));
/// assert_eq!("-5".parse::<CompressionLevel>()?.for_codec(Codec::Zstd), Some(-5));
/// # Ok::<(), barman_wal::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum CompressionLevel {
    /// The codec's fast level.
    Low,
    /// The codec's balanced level (Barman's default).
    #[default]
    Medium,
    /// The codec's strong level.
    High,
    /// A number, clamped into the codec's range.
    Exact(i32),
}

impl CompressionLevel {
    /// The level to give `codec`, `None` for codecs without levels.
    ///
    /// ```
    /// use barman_wal::{Codec, CompressionLevel};
    /// assert_eq!(CompressionLevel::Low.for_codec(Codec::Lz4), Some(0));
    /// assert_eq!(CompressionLevel::Low.for_codec(Codec::None), None);
    /// ```
    pub fn for_codec(self, codec: Codec) -> Option<i32> {
        let (min, max, low, medium, high) = codec.levels()?;
        Some(match self {
            CompressionLevel::Low => low,
            CompressionLevel::Medium => medium,
            CompressionLevel::High => high,
            CompressionLevel::Exact(v) => v.clamp(min, max),
        })
    }
}

impl FromStr for CompressionLevel {
    type Err = Error;

    /// `low`, `medium`, `high` (any case) or a decimal integer with an optional `-`.
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "low" => Ok(CompressionLevel::Low),
            "medium" => Ok(CompressionLevel::Medium),
            "high" => Ok(CompressionLevel::High),
            num => {
                let digits = num.strip_prefix('-').unwrap_or(num);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::InvalidCompressionLevel {
                        input: s.to_owned(),
                    });
                }
                // Out-of-range values are clamped per codec later, as Barman does; any
                // integer, however long, saturates into i32 first.
                let v = num.parse::<i32>().unwrap_or(if num.starts_with('-') {
                    i32::MIN
                } else {
                    i32::MAX
                });
                Ok(CompressionLevel::Exact(v))
            }
        }
    }
}

impl fmt::Display for CompressionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompressionLevel::Low => f.write_str("low"),
            CompressionLevel::Medium => f.write_str("medium"),
            CompressionLevel::High => f.write_str("high"),
            CompressionLevel::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// A streaming compressor, made by [`Codec::encoder`].
pub struct Encoder<W: Write> {
    kind: EncoderKind<W>,
    wrote: bool,
}

enum EncoderKind<W: Write> {
    None(W),
    #[cfg(feature = "gzip")]
    Gzip(flate2::write::GzEncoder<W>),
    #[cfg(feature = "bzip2")]
    Bzip2(bzip2::write::BzEncoder<W>),
    #[cfg(feature = "zstd")]
    Zstd(zstd::stream::write::Encoder<'static, W>),
    #[cfg(feature = "lz4")]
    Lz4(lz4_flex::frame::FrameEncoder<W>),
    #[cfg(feature = "xz")]
    Xz(liblzma::write::XzEncoder<W>),
    #[cfg(feature = "snappy")]
    Snappy(Box<snap::write::FrameEncoder<W>>),
}

impl<W: Write> fmt::Debug for Encoder<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("codec", &self.codec())
            .finish_non_exhaustive()
    }
}

impl<W: Write> Encoder<W> {
    /// The codec this encoder writes.
    ///
    /// ```
    /// use barman_wal::{Codec, CompressionLevel};
    /// let enc = Codec::Gzip.encoder(Vec::new(), CompressionLevel::Medium)?;
    /// assert_eq!(enc.codec(), Codec::Gzip);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn codec(&self) -> Codec {
        match &self.kind {
            EncoderKind::None(_) => Codec::None,
            #[cfg(feature = "gzip")]
            EncoderKind::Gzip(_) => Codec::Gzip,
            #[cfg(feature = "bzip2")]
            EncoderKind::Bzip2(_) => Codec::Bzip2,
            #[cfg(feature = "zstd")]
            EncoderKind::Zstd(_) => Codec::Zstd,
            #[cfg(feature = "lz4")]
            EncoderKind::Lz4(_) => Codec::Lz4,
            #[cfg(feature = "xz")]
            EncoderKind::Xz(_) => Codec::Xz,
            #[cfg(feature = "snappy")]
            EncoderKind::Snappy(_) => Codec::Snappy,
        }
    }

    /// Writes the end of the stream and returns the inner writer (not flushed to stable
    /// storage: that is the caller's business).
    ///
    /// # Errors
    ///
    /// Any error of the inner writer.
    ///
    /// ```
    /// use std::io::Write;
    /// use barman_wal::{Codec, CompressionLevel};
    /// let mut enc = Codec::Bzip2.encoder(Vec::new(), CompressionLevel::Low)?;
    /// enc.write_all(b"x")?;
    /// assert!(enc.finish()?.starts_with(b"BZh1"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn finish(self) -> io::Result<W> {
        match self.kind {
            EncoderKind::None(w) => Ok(w),
            #[cfg(feature = "gzip")]
            EncoderKind::Gzip(e) => e.finish(),
            #[cfg(feature = "bzip2")]
            EncoderKind::Bzip2(e) => e.finish(),
            #[cfg(feature = "zstd")]
            EncoderKind::Zstd(e) => e.finish(),
            #[cfg(feature = "lz4")]
            EncoderKind::Lz4(e) => e.finish().map_err(io::Error::other),
            #[cfg(feature = "xz")]
            EncoderKind::Xz(e) => e.finish(),
            #[cfg(feature = "snappy")]
            EncoderKind::Snappy(e) => {
                let mut w = e
                    .into_inner()
                    .map_err(|e| io::Error::other(e.to_string()))?;
                if !self.wrote {
                    // snap writes its stream identifier with the first data; an empty
                    // stream still needs it to be recognisable.
                    w.write_all(Codec::Snappy.magic())?;
                }
                Ok(w)
            }
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.wrote |= !buf.is_empty();
        match &mut self.kind {
            EncoderKind::None(w) => w.write(buf),
            #[cfg(feature = "gzip")]
            EncoderKind::Gzip(e) => e.write(buf),
            #[cfg(feature = "bzip2")]
            EncoderKind::Bzip2(e) => e.write(buf),
            #[cfg(feature = "zstd")]
            EncoderKind::Zstd(e) => e.write(buf),
            #[cfg(feature = "lz4")]
            EncoderKind::Lz4(e) => e.write(buf),
            #[cfg(feature = "xz")]
            EncoderKind::Xz(e) => e.write(buf),
            #[cfg(feature = "snappy")]
            EncoderKind::Snappy(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.kind {
            EncoderKind::None(w) => w.flush(),
            #[cfg(feature = "gzip")]
            EncoderKind::Gzip(e) => e.flush(),
            #[cfg(feature = "bzip2")]
            EncoderKind::Bzip2(e) => e.flush(),
            #[cfg(feature = "zstd")]
            EncoderKind::Zstd(e) => e.flush(),
            #[cfg(feature = "lz4")]
            EncoderKind::Lz4(e) => e.flush(),
            #[cfg(feature = "xz")]
            EncoderKind::Xz(e) => e.flush(),
            #[cfg(feature = "snappy")]
            EncoderKind::Snappy(e) => e.flush(),
        }
    }
}

/// A streaming decompressor, made by [`Codec::decoder`] or [`Codec::decoder_detect`].
pub struct Decoder<R: Read> {
    codec: Codec,
    kind: DecoderKind<R>,
}

enum DecoderKind<R: Read> {
    None(R),
    #[cfg(feature = "gzip")]
    Gzip(flate2::read::MultiGzDecoder<Counting<R>>),
    #[cfg(feature = "bzip2")]
    Bzip2(bzip2::read::MultiBzDecoder<Counting<R>>),
    #[cfg(feature = "zstd")]
    Zstd(zstd::stream::read::Decoder<'static, io::BufReader<Counting<R>>>),
    #[cfg(feature = "lz4")]
    Lz4(lz4_flex::frame::FrameDecoder<Lz4Tracker<R>>),
    #[cfg(feature = "xz")]
    Xz(liblzma::read::XzDecoder<Counting<R>>),
    #[cfg(feature = "snappy")]
    Snappy(snap::read::FrameDecoder<Counting<R>>),
}

impl<R: Read> fmt::Debug for Decoder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Decoder<R> {
    /// Whether any compressed byte was read (always true for [`Codec::None`]).
    fn input_seen(&self) -> bool {
        match &self.kind {
            DecoderKind::None(_) => true,
            #[cfg(feature = "gzip")]
            DecoderKind::Gzip(d) => d.get_ref().seen,
            #[cfg(feature = "bzip2")]
            DecoderKind::Bzip2(d) => d.get_ref().seen,
            #[cfg(feature = "zstd")]
            DecoderKind::Zstd(d) => d.get_ref().get_ref().seen,
            #[cfg(feature = "lz4")]
            DecoderKind::Lz4(d) => d.get_ref().seen,
            #[cfg(feature = "xz")]
            DecoderKind::Xz(d) => d.get_ref().seen,
            #[cfg(feature = "snappy")]
            DecoderKind::Snappy(d) => d.get_ref().seen,
        }
    }

    /// The codec being decoded.
    ///
    /// ```
    /// let d = barman_wal::Codec::decoder_detect(&b"BZh9"[..])?;
    /// assert_eq!(d.codec(), barman_wal::Codec::Bzip2);
    /// # Ok::<(), barman_wal::Error>(())
    /// ```
    pub fn codec(&self) -> Codec {
        self.codec
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = match &mut self.kind {
            DecoderKind::None(r) => r.read(buf),
            #[cfg(feature = "gzip")]
            DecoderKind::Gzip(d) => d.read(buf),
            #[cfg(feature = "bzip2")]
            DecoderKind::Bzip2(d) => d.read(buf),
            #[cfg(feature = "zstd")]
            DecoderKind::Zstd(d) => d.read(buf),
            #[cfg(feature = "lz4")]
            DecoderKind::Lz4(d) => d.read(buf),
            #[cfg(feature = "xz")]
            DecoderKind::Xz(d) => d.read(buf),
            #[cfg(feature = "snappy")]
            DecoderKind::Snappy(d) => d.read(buf),
        }
        .map_err(|e| {
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidData
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::Interrupted
            ) {
                e
            } else if e.kind() == io::ErrorKind::Other || e.kind() == io::ErrorKind::InvalidInput {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("corrupt {} stream: {e}", self.codec),
                )
            } else {
                e
            }
        })?;
        if n == 0 && !self.input_seen() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("empty input: not a {} stream", self.codec),
            ));
        }
        #[cfg(feature = "lz4")]
        if let DecoderKind::Lz4(d) = &self.kind
            && n == 0
            && !d.get_ref().at_boundary()
        {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated lz4 stream",
            ));
        }
        Ok(n)
    }
}
