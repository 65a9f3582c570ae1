//! The stable-toolchain runner of barman-rs's fuzz targets.
//!
//! A fuzz directory (`crates/<crate>/fuzz/`) keeps each target's body as a plain
//! function `fn(&[u8]) -> bool` in its library (the libFuzzer binaries under
//! `fuzz_targets/` call the same functions). This runner feeds each function:
//!
//! 1. every committed seed of `seeds/<target>/` (real, valid inputs: each must be
//!    accepted, that is the function returns `true`);
//! 2. then deterministic random mutations of the seeds and of the mutants the target
//!    accepted, until the time bound: bytes flipped or set to boundary values, spans
//!    deleted, duplicated or spliced from another input, fields (runs of letters and
//!    digits) replaced by boundary numbers, signs, blanks, offsets or multibyte
//!    characters, lines duplicated or dropped, integers written into binary data,
//!    truncation. One to four mutations are stacked per input.
//!
//! A panic of the target (an assertion of a round-trip invariant, an overflow, an
//! out-of-bounds slice, ...) fails the run: the input is saved under
//! `artifacts/<target>/` (where `cargo fuzz` saves its crashes) and the message says how
//! to replay it. An input that takes more than [`SLOW_SECONDS`] fails the run too.
//!
//! There is no coverage feedback (that needs libFuzzer and nightly flags): the search is
//! guided only by the seeds, the mutations and the inputs the target accepts.
//!
//! # Environment
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `BARMAN_FUZZ_TARGET_SECONDS` | time spent on each target | 2 |
//! | `BARMAN_FUZZ_SEED` | seed of the mutations (same seed, same inputs) | 0 |
//! | `BARMAN_FUZZ_REPLAY` | a file to feed once to the target of its directory's name | unset |
//!
//! # Use
//!
//! In `crates/<crate>/fuzz/tests/seeds.rs`:
//!
//! ```ignore
//! barman_fuzz_runner::fuzz_tests!(barman_wal_fuzz::TARGETS; lsn, wal_file_name);
//! ```
//!
//! which makes one test per target, plus `layout`, which checks that the targets of
//! the library, the macro, `fuzz_targets/*.rs` and `seeds/*/` are the same set, and
//! `debug_assertions_and_overflow_checks_are_on`, which checks that the build keeps
//! them (the fuzz crates turn both on in their release profile).
#![deny(missing_docs)]

use std::collections::BTreeSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A fuzz target: its name (that of its libFuzzer binary and of its seeds directory)
/// and its body, which panics on a bug and returns whether it accepted the input (the
/// parser returned a value), so accepted mutants can be mutated further.
pub type Target = (&'static str, fn(&[u8]) -> bool);

/// An input that takes longer than this many seconds fails the run.
pub const SLOW_SECONDS: f64 = 5.0;

/// Most accepted mutants kept to mutate further.
const POOL: usize = 512;

/// Inputs are kept below twice the longest seed, and at least this long: mutants
/// that keep growing (duplicated spans, splices) slow every later input down and find
/// nothing the short ones do not.
const MIN_MAX_LEN: usize = 1024;

/// The run settings, from the environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// Time spent on one target.
    pub duration: Duration,
    /// Seed of the random mutations.
    pub seed: u64,
    /// A single input to replay instead of fuzzing.
    pub replay: Option<PathBuf>,
}

impl Config {
    /// Reads `BARMAN_FUZZ_TARGET_SECONDS`, `BARMAN_FUZZ_SEED` and `BARMAN_FUZZ_REPLAY`.
    ///
    /// # Panics
    ///
    /// When a variable is set to something unreadable.
    pub fn from_env() -> Config {
        let seconds: f64 = match std::env::var("BARMAN_FUZZ_TARGET_SECONDS") {
            Ok(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("BARMAN_FUZZ_TARGET_SECONDS={v:?}: not a number")),
            Err(_) => 2.0,
        };
        let seed = match std::env::var("BARMAN_FUZZ_SEED") {
            Ok(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("BARMAN_FUZZ_SEED={v:?}: not a number")),
            Err(_) => 0,
        };
        Config {
            duration: Duration::from_secs_f64(seconds.max(0.0)),
            seed,
            replay: std::env::var_os("BARMAN_FUZZ_REPLAY").map(PathBuf::from),
        }
    }
}

/// Makes one `#[test]` per target, running it with [`run`] for the time set in the
/// environment, and a `layout` test running [`check_layout`].
#[macro_export]
macro_rules! fuzz_tests {
    ($targets:expr; $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::run(
                    ::std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
                    $targets,
                    stringify!($name),
                    &$crate::Config::from_env(),
                );
            }
        )+

        /// The fuzz build keeps debug assertions, and overflow checks with them (both
        /// are set in the fuzz crate's release profile): without them an overflow wraps
        /// silently and the run proves less.
        #[test]
        fn debug_assertions_and_overflow_checks_are_on() {
            assert!(
                cfg!(debug_assertions),
                "build the fuzz targets with the fuzz crate's release profile \
                 (debug-assertions and overflow-checks on)"
            );
        }

        #[test]
        fn layout() {
            $crate::check_layout(
                ::std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
                $targets,
                &[$(stringify!($name)),+],
            );
        }
    };
}

/// Checks that the targets of the library (`targets`), those given to the test macro
/// (`tested`), the libFuzzer binaries (`fuzz_targets/*.rs`) and the seed directories
/// (`seeds/*/`, each with at least one file) are the same set.
///
/// # Panics
///
/// When they differ, naming what is missing where.
pub fn check_layout(fuzz_dir: &Path, targets: &[Target], tested: &[&str]) {
    let names = |dir: &str, want_dirs: bool| -> BTreeSet<String> {
        let path = fuzz_dir.join(dir);
        std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let is_dir = entry.file_type().ok()?.is_dir();
                let name = entry.file_name().into_string().ok()?;
                match (want_dirs, is_dir) {
                    (true, true) => Some(name),
                    (false, false) => name.strip_suffix(".rs").map(str::to_owned),
                    _ => None,
                }
            })
            .collect()
    };
    let library: BTreeSet<String> = targets.iter().map(|(n, _)| (*n).to_owned()).collect();
    let sets = [
        ("the library's TARGETS", library),
        (
            "the tests (fuzz_tests!)",
            tested.iter().map(|n| (*n).to_owned()).collect(),
        ),
        ("fuzz_targets/*.rs", names("fuzz_targets", false)),
        ("seeds/*/", names("seeds", true)),
    ];
    let all: BTreeSet<&String> = sets.iter().flat_map(|(_, s)| s).collect();
    let mut problems = Vec::new();
    for name in all {
        for (what, set) in &sets {
            if !set.contains(name) {
                problems.push(format!("target {name} is missing from {what}"));
            }
        }
    }
    for (name, _) in targets {
        let dir = fuzz_dir.join("seeds").join(name);
        if load_seeds(&dir).is_empty() {
            problems.push(format!("{} has no seed file", dir.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "{}: {}",
        fuzz_dir.display(),
        problems.join("; ")
    );
}

fn load_seeds(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Inputs fed, seeds included.
    pub inputs: u64,
    /// Inputs the target accepted.
    pub accepted: u64,
    /// Accepted mutants kept to mutate further.
    pub pool: usize,
    /// Time spent.
    pub elapsed: Duration,
}

/// Runs target `name` of `targets`: its seeds from `<fuzz_dir>/seeds/<name>/`, then
/// mutations of them for `config.duration`; or, with `config.replay` set to a file in
/// a directory named `name`, that file once (other targets then do nothing).
///
/// # Panics
///
/// When the target panics or is slow on an input (after saving it under
/// `<fuzz_dir>/artifacts/<name>/`), when a seed is not accepted, or when there is no
/// seed.
pub fn run(fuzz_dir: &Path, targets: &[Target], name: &str, config: &Config) -> Report {
    let Some(&(_, target)) = targets.iter().find(|(n, _)| *n == name) else {
        panic!("no fuzz target {name}");
    };
    if let Some(path) = &config.replay {
        let dir = path.parent().and_then(Path::file_name);
        if dir.and_then(|d| d.to_str()) == Some(name) {
            let input = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            eprintln!("replaying {} on {name}", path.display());
            target(&input);
        }
        return Report::default();
    }
    let seeds = load_seeds(&fuzz_dir.join("seeds").join(name));
    assert!(!seeds.is_empty(), "fuzz target {name} has no seed");
    let max_len = seeds
        .iter()
        .map(|(_, s)| s.len() * 2)
        .max()
        .unwrap_or(0)
        .max(MIN_MAX_LEN);
    let start = Instant::now();
    let mut report = Report::default();
    let mut runner = Runner {
        fuzz_dir,
        name,
        target,
        seed: config.seed,
        report: &mut report,
    };
    for (path, seed) in &seeds {
        assert!(
            runner.feed(seed),
            "fuzz target {name}: seed {} is not accepted (seeds must be valid inputs)",
            path.display()
        );
    }
    let mut pool: Vec<Vec<u8>> = seeds.into_iter().map(|(_, s)| s).collect();
    let fixed = pool.len();
    let mut rng = Rng::new(config.seed ^ fnv(name.as_bytes()));
    while start.elapsed() < config.duration {
        for _ in 0..64 {
            // A seed a quarter of the time, so the search does not drift away from
            // real inputs; otherwise any input kept.
            let from = if rng.chance(25) { fixed } else { pool.len() };
            let mut input = pool[rng.below(from)].clone();
            for _ in 0..rng.stack() {
                mutate(&mut rng, &mut input, &pool);
            }
            input.truncate(max_len);
            if runner.feed(&input) {
                if pool.len() < fixed + POOL {
                    pool.push(input);
                } else {
                    let i = fixed + rng.below(POOL);
                    pool[i] = input;
                }
            }
        }
    }
    report.pool = pool.len() - fixed;
    report.elapsed = start.elapsed();
    eprintln!(
        "fuzz {name}: {} inputs in {:.1} s ({:.0}/s), {} accepted, {} mutants kept, seed {}",
        report.inputs,
        report.elapsed.as_secs_f64(),
        report.inputs as f64 / report.elapsed.as_secs_f64().max(1e-9),
        report.accepted,
        report.pool,
        config.seed
    );
    report
}

struct Runner<'a> {
    fuzz_dir: &'a Path,
    name: &'a str,
    target: fn(&[u8]) -> bool,
    seed: u64,
    report: &'a mut Report,
}

impl Runner<'_> {
    /// Feeds one input; on a panic or a slow input, saves it and fails.
    fn feed(&mut self, input: &[u8]) -> bool {
        let target = self.target;
        let t = Instant::now();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| target(input)));
        let took = t.elapsed().as_secs_f64();
        self.report.inputs += 1;
        match outcome {
            Ok(accepted) if took <= SLOW_SECONDS => {
                self.report.accepted += u64::from(accepted);
                accepted
            }
            Ok(_) => self.fail(input, "slow", &format!("took {took:.1} s")),
            Err(payload) => {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                self.fail(input, "crash", &format!("panicked: {message}"))
            }
        }
    }

    fn fail(&self, input: &[u8], kind: &str, what: &str) -> ! {
        let dir = self.fuzz_dir.join("artifacts").join(self.name);
        let path = dir.join(format!("{kind}-{:016x}", fnv(input)));
        let saved = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, input))
            .map_or_else(
                |e| format!("could not be saved ({e})"),
                |()| format!("saved to {}", path.display()),
            );
        let shown = &input[..input.len().min(600)];
        panic!(
            "fuzz target {name} {what}\n  on input {n} (seed {seed}), {saved}\n  \
             input ({len} bytes): b\"{escaped}\"{more}\n  replay: BARMAN_FUZZ_REPLAY={path} \
             cargo test --release --no-default-features --manifest-path {manifest} --test seeds -- {name}",
            name = self.name,
            n = self.report.inputs,
            seed = self.seed,
            len = input.len(),
            escaped = shown.escape_ascii(),
            more = if shown.len() < input.len() {
                " ..."
            } else {
                ""
            },
            path = path.display(),
            manifest = self.fuzz_dir.join("Cargo.toml").display(),
        )
    }
}

/// FNV-1a, to name artifacts and mix the target name into the seed.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number below `n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    /// How many mutations to stack: 1 most of the time, up to 4.
    fn stack(&mut self) -> usize {
        1 + (self.next() | 0x8).trailing_zeros() as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Bytes that break parsers when they replace one.
const BYTES: &[u8] = b"\x00\xff\x7f\x80\n\r \t+-:./=,;#'\"\\()[]{}019afAFZTex_%";

/// Values that break parsers: numeric limits and one past them, signs, blanks, line
/// ends, separators, quotes, offsets, Python words, multibyte and invisible characters.
/// Written into fields by the mutations here, and by barman-testkit's near-valid inputs.
pub const BOUNDARY_VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "+1",
    "-0",
    "00",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "FF",
    "FFFFFFFF",
    "ffffffff",
    "100000000",
    "FFFFFFFFFFFFFFFF",
    "00000000",
    "0x10",
    "1e400",
    "-1e400",
    "1e-400",
    "nan",
    "inf",
    "1_0",
    "_",
    "1.5",
    ".",
    " ",
    "  ",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\n\n",
    "\x0b",
    "\x0c",
    "\0",
    "+",
    "-",
    ":",
    ": ",
    "/",
    "=",
    ",",
    ";",
    "#",
    "'",
    "\"",
    "'''",
    "\\",
    "\\x",
    "\\u",
    "\\U0010FFFF",
    "\\777",
    "\\N{DASH}",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "{\"a\": ",
    "null",
    "true",
    "Z",
    "T",
    " UTC",
    "+01:00",
    "-01:00",
    "+0100",
    "-05:30:15",
    "+24:00",
    "None",
    "True",
    "b'",
    "u'",
    "r'",
    "é",
    "€",
    "😀",
    "\u{85}",
    "\u{a0}",
    "\u{2028}",
    "\u{feff}",
    "\u{200b}",
    "１",
    "\u{10FFFF}",
];

/// Integers written into binary data (little-endian, 1 to 8 bytes).
const INTS: &[u64] = &[
    0,
    1,
    2,
    7,
    8,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    8192,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// Whether byte `i` of `data` starts a character (or `data` is not text at all).
fn is_boundary(data: &[u8], i: usize) -> bool {
    data.get(i).is_none_or(|b| (b & 0xC0) != 0x80)
}

/// A random position in `0..=len` (`0..len` when `end` is false), moved back to a
/// character boundary so text stays text.
fn position(rng: &mut Rng, data: &[u8], end: bool) -> usize {
    let n = data.len() + usize::from(end);
    let mut i = rng.below(n);
    while i > 0 && !is_boundary(data, i) {
        i -= 1;
    }
    i
}

/// Moves `i` forward to a character boundary.
fn forward(data: &[u8], mut i: usize) -> usize {
    while i < data.len() && !is_boundary(data, i) {
        i += 1;
    }
    i
}

/// The byte ranges of the fields of `data`: runs of ASCII letters, digits or `_`.
fn fields(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, b) in data.iter().enumerate() {
        let in_field = b.is_ascii_alphanumeric() || *b == b'_';
        match (in_field, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, data.len()));
    }
    out
}

/// The byte ranges of the lines of `data`, each with its line feed.
fn lines(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in data.iter().enumerate() {
        if *b == b'\n' {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < data.len() {
        out.push((start, data.len()));
    }
    out
}

fn splice(data: &mut Vec<u8>, start: usize, end: usize, with: &[u8]) {
    data.splice(start..end, with.iter().copied());
}

/// Applies one random mutation to `data`; `pool` gives other inputs to splice from.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>]) {
    if data.is_empty() {
        let token = rng.pick(BOUNDARY_VALUES).as_bytes().to_vec();
        *data = token;
        return;
    }
    match rng.below(15) {
        // A bit flipped.
        0 => {
            let i = rng.below(data.len());
            data[i] ^= 1 << rng.below(8);
        }
        // A character replaced by a byte that breaks parsers.
        1 => {
            let i = position(rng, data, false);
            let end = forward(data, i + 1);
            let b = *rng.pick(BYTES);
            splice(data, i, end, &[b]);
        }
        // A byte nudged.
        2 => {
            let i = rng.below(data.len());
            let delta = 1 + rng.below(3) as u8;
            data[i] = if rng.chance(50) {
                data[i].wrapping_add(delta)
            } else {
                data[i].wrapping_sub(delta)
            };
        }
        // A span deleted.
        3 => {
            let i = position(rng, data, false);
            let end = forward(data, i + 1 + rng.below(16));
            splice(data, i, end.min(data.len()), &[]);
        }
        // A span duplicated somewhere.
        4 => {
            let i = position(rng, data, false);
            let end = forward(data, i + 1 + rng.below(32)).min(data.len());
            let copy = data[i..end].to_vec();
            let at = position(rng, data, true);
            splice(data, at, at, &copy);
        }
        // A token inserted.
        5 | 6 => {
            let at = position(rng, data, true);
            splice(data, at, at, rng.pick(BOUNDARY_VALUES).as_bytes());
        }
        // A field replaced by a token.
        7 | 8 => {
            let f = fields(data);
            if let Some(&(s, e)) = (!f.is_empty()).then(|| rng.pick(&f)) {
                splice(data, s, e, rng.pick(BOUNDARY_VALUES).as_bytes());
            }
        }
        // One to four fields, and what is between them, deleted.
        9 => {
            let f = fields(data);
            if !f.is_empty() {
                let first = rng.below(f.len());
                let last = (first + rng.below(4)).min(f.len() - 1);
                splice(data, f[first].0, f[last].1, &[]);
            }
        }
        // Random bytes inserted (printable ASCII most of the time).
        10 => {
            let at = position(rng, data, true);
            let bytes: Vec<u8> = (0..1 + rng.below(8))
                .map(|_| {
                    if rng.chance(75) {
                        b' ' + rng.below(95) as u8
                    } else {
                        rng.next() as u8
                    }
                })
                .collect();
            splice(data, at, at, &bytes);
        }
        // Truncated.
        11 => {
            let at = position(rng, data, true);
            data.truncate(at);
        }
        // Spliced with another input: the start of this one, the end of that one.
        12 => {
            let other = rng.pick(pool);
            let a = position(rng, data, true);
            let b = position(rng, other, true);
            data.truncate(a);
            data.extend_from_slice(&other[b..]);
        }
        // A line duplicated, dropped, or swapped with the next.
        13 => {
            let l = lines(data);
            let (s, e) = *rng.pick(&l);
            match rng.below(3) {
                0 => {
                    let mut copy = data[s..e].to_vec();
                    if copy.last() != Some(&b'\n') {
                        copy.insert(0, b'\n');
                    }
                    let (at, _) = *rng.pick(&l);
                    splice(data, at, at, &copy);
                }
                1 => splice(data, s, e, &[]),
                _ => {
                    if let Some(&(ns, ne)) = l.iter().find(|(ls, _)| *ls == e) {
                        let mut swapped = data[ns..ne].to_vec();
                        if swapped.last() != Some(&b'\n') {
                            swapped.push(b'\n');
                        }
                        swapped.extend_from_slice(&data[s..e]);
                        if data[ne - 1] != b'\n' {
                            swapped.pop();
                        }
                        splice(data, s, ne, &swapped);
                    }
                }
            }
        }
        // An integer written over the bytes (binary data: lengths, offsets, magics).
        _ => {
            let width = [1usize, 2, 4, 8][rng.below(4)];
            let v = *rng.pick(INTS);
            let v = if rng.chance(20) { v.wrapping_neg() } else { v };
            let bytes = v.to_le_bytes();
            let i = rng.below(data.len());
            let end = (i + width).min(data.len());
            data[i..end].copy_from_slice(&bytes[..end - i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_keep_text_text_most_of_the_time_and_never_panic() {
        let pool = vec![
            b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n".to_vec(),
            "r\u{e9}sum\u{e9} \u{1F600}\n2\n".as_bytes().to_vec(),
            vec![0xff, 0x00, 0x10, 0xD1],
            Vec::new(),
        ];
        let mut rng = Rng::new(1);
        let (mut from_text, mut text) = (0, 0);
        for i in 0..20_000 {
            let mut input = pool[i % pool.len()].clone();
            let was_text = std::str::from_utf8(&input).is_ok();
            for _ in 0..rng.stack() {
                mutate(&mut rng, &mut input, &pool);
            }
            if was_text {
                from_text += 1;
                text += usize::from(std::str::from_utf8(&input).is_ok());
            }
        }
        assert!(
            text * 4 > from_text * 3,
            "only {text} of {from_text} mutants of text are text"
        );
    }

    #[test]
    fn a_panicking_target_fails_with_the_input_saved() {
        fn target(data: &[u8]) -> bool {
            assert!(!data.contains(&b'!'), "found the bang");
            true
        }
        let dir = std::env::temp_dir().join(format!("barman-fuzz-runner-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("seeds/bang")).unwrap();
        std::fs::write(dir.join("seeds/bang/a"), b"hello world").unwrap();
        let config = Config {
            duration: Duration::from_secs(10),
            seed: 3,
            replay: None,
        };
        let err = panic::catch_unwind(|| run(&dir, &[("bang", target)], "bang", &config))
            .expect_err("the bang is found");
        let message = err.downcast_ref::<String>().unwrap();
        assert!(message.contains("panicked: found the bang"), "{message}");
        let saved: Vec<_> = std::fs::read_dir(dir.join("artifacts/bang"))
            .unwrap()
            .collect();
        assert_eq!(saved.len(), 1);
        let bytes = std::fs::read(saved[0].as_ref().unwrap().path()).unwrap();
        assert!(bytes.contains(&b'!'));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn same_seed_same_inputs() {
        let pool = vec![b"0/3000028".to_vec()];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..100)
                .map(|_| {
                    let mut d = pool[0].clone();
                    mutate(&mut rng, &mut d, &pool);
                    d
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
