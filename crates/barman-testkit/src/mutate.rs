//! Near-valid text for the parsers' property tests: a valid input with one mutation.
//!
//! Random characters rarely get a structured parser past its first field: a random
//! string is not `YYYY-MM-DD`, so the code after the date check never runs. These
//! strategies start from a valid input (from the type's own generator or `Display`, or
//! a template of the format) and change one thing: a field replaced by a boundary value,
//! a character replaced, a span deleted or duplicated, a multibyte character, a sign, a
//! blank or an offset inserted, a line duplicated or dropped, the text truncated. The
//! result is still mostly valid, so the parser walks deep into it before it meets the
//! change.
//!
//! ```
//! use barman_testkit::mutate::near_valid;
//! use proptest::prelude::*;
//!
//! proptest! {
//!     // In a test module this function would carry #[test].
//!     fn u32_parse_never_panics(s in near_valid(any::<u32>().prop_map(|v| v.to_string()))) {
//!         if let Ok(v) = s.parse::<u32>() {
//!             prop_assert_eq!(v.to_string().parse::<u32>(), Ok(v));
//!         }
//!     }
//! }
//! u32_parse_never_panics();
//! ```

use proptest::prelude::*;

/// One change to a text. Positions are any numbers, taken modulo the number of fields,
/// characters or lines of the text they apply to (so they shrink towards the start),
/// and always fall on character boundaries: the result is valid UTF-8.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Replaces the n-th field (a run of ASCII letters, digits or `_`) with a value.
    ReplaceField {
        /// Which field.
        field: usize,
        /// Its new text.
        with: String,
    },
    /// Deletes `count` consecutive fields and what lies between them (a time, a
    /// `key=value` pair), leaving what is around them.
    DeleteFields {
        /// The first field deleted.
        field: usize,
        /// How many.
        count: usize,
    },
    /// Replaces one character with a value.
    ReplaceChar {
        /// Which character.
        at: usize,
        /// Its new text.
        with: String,
    },
    /// Deletes up to `len` characters.
    Delete {
        /// From this character.
        at: usize,
        /// How many.
        len: usize,
    },
    /// Copies up to `len` characters and inserts the copy elsewhere.
    Duplicate {
        /// Copied from this character.
        from: usize,
        /// How many.
        len: usize,
        /// Inserted before this character (or at the end).
        to: usize,
    },
    /// Inserts a value.
    Insert {
        /// Before this character (or at the end).
        at: usize,
        /// What.
        what: String,
    },
    /// Copies a whole line (with its line feed) before another one.
    DuplicateLine {
        /// Which line.
        line: usize,
        /// Before which line (or at the end).
        to: usize,
    },
    /// Removes a whole line.
    DeleteLine {
        /// Which line.
        line: usize,
    },
    /// Keeps only the start of the text.
    Truncate {
        /// Number of characters kept.
        at: usize,
    },
}

/// Values that break parsers (numeric limits and one past them, signs, blanks, line
/// ends, separators, quotes, offsets, Python words, multibyte and invisible
/// characters): the fuzz runner's, so both search the same boundaries.
pub use barman_fuzz_runner::BOUNDARY_VALUES;

/// A value to put into a text: a [`BOUNDARY_VALUES`] entry, a random number (decimal
/// or hexadecimal, possibly longer than any integer type), or random characters.
pub fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(BOUNDARY_VALUES).prop_map(str::to_owned),
        1 => "[0-9]{1,25}",
        1 => "[0-9A-Fa-f]{1,18}",
        1 => "\\PC{1,6}",
    ]
}

/// How many cases a near-valid property runs: more than proptest's default 256, as
/// one mutation in a few hundred lands on the spot that matters, and each case is cheap.
pub const CASES: u32 = 4096;

/// The proptest configuration of near-valid properties: [`CASES`] cases.
///
/// ```
/// assert_eq!(barman_testkit::mutate::config().cases, barman_testkit::mutate::CASES);
/// ```
pub fn config() -> ProptestConfig {
    ProptestConfig::with_cases(CASES)
}

/// One random [`Mutation`].
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), value()).prop_map(|(field, with)| Mutation::ReplaceField { field, with }),
        1 => (any::<usize>(), 1usize..5).prop_map(|(field, count)| Mutation::DeleteFields { field, count }),
        2 => (any::<usize>(), value()).prop_map(|(at, with)| Mutation::ReplaceChar { at, with }),
        2 => (any::<usize>(), 1usize..16).prop_map(|(at, len)| Mutation::Delete { at, len }),
        1 => (any::<usize>(), 1usize..24, any::<usize>())
            .prop_map(|(from, len, to)| Mutation::Duplicate { from, len, to }),
        3 => (any::<usize>(), value()).prop_map(|(at, what)| Mutation::Insert { at, what }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(line, to)| Mutation::DuplicateLine { line, to }),
        1 => any::<usize>().prop_map(|line| Mutation::DeleteLine { line }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

/// `valid` with one [`mutation`] applied.
pub fn near_valid(valid: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (valid, mutation()).prop_map(|(text, m)| apply(&text, &m))
}

/// `valid` as bytes with one [`mutation`] applied, or, one time in four, one byte
/// replaced by any byte value (for parsers of binary data or of `&[u8]`).
pub fn near_valid_bytes(valid: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (valid, mutation(), any::<usize>(), any::<u8>(), 0u8..4).prop_map(
        |(bytes, m, at, byte, pick)| {
            if pick == 0 && !bytes.is_empty() {
                let mut b = bytes;
                let i = at % b.len();
                b[i] = byte;
                b
            } else {
                apply_bytes(&bytes, &m)
            }
        },
    )
}

/// Applies `m` to bytes: as text when they are UTF-8, else to the bytes read as one
/// Latin-1 character each, so any byte sequence can be mutated and the bytes the
/// mutation does not touch stay as they were.
pub fn apply_bytes(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    match std::str::from_utf8(bytes) {
        Ok(text) => apply(text, m).into_bytes(),
        Err(_) => {
            // Not text: work on one character per byte and write each back as that byte
            // (inserted values keep their UTF-8 bytes).
            let latin: String = bytes.iter().map(|&b| char::from(b)).collect();
            let out = apply(&latin, m);
            let mut v = Vec::with_capacity(out.len());
            for c in out.chars() {
                match u8::try_from(u32::from(c)) {
                    Ok(b) => v.push(b),
                    Err(_) => v.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
            v
        }
    }
}

/// Byte offsets of the character boundaries of `text`, end included.
fn boundaries(text: &str) -> Vec<usize> {
    text.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect()
}

/// The byte range of the characters `[at, at + len)`, clamped to the text.
fn char_span(b: &[usize], at: usize, len: usize) -> std::ops::Range<usize> {
    let chars = b.len() - 1;
    let start = at.min(chars);
    let end = start.saturating_add(len).min(chars);
    b[start]..b[end]
}

/// The byte ranges of the fields of `text`: runs of ASCII letters, digits or `_`.
fn fields(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        let in_field = c.is_ascii_alphanumeric() || c == '_';
        match (in_field, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..text.len());
    }
    out
}

/// The byte ranges of the lines of `text`, each with its line feed.
fn lines(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == '\n' {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < text.len() {
        out.push(start..text.len());
    }
    out
}

/// Applies `m` to `text`.
///
/// ```
/// use barman_testkit::mutate::{Mutation, apply};
///
/// assert_eq!(apply("0/1", &Mutation::Insert { at: 0, what: "+".into() }), "+0/1");
/// assert_eq!(apply("0/1", &Mutation::ReplaceField { field: 1, with: "FFFFFFFFF".into() }), "0/FFFFFFFFF");
/// ```
pub fn apply(text: &str, m: &Mutation) -> String {
    let b = boundaries(text);
    let chars = b.len() - 1;
    let mut out = String::with_capacity(text.len() + 16);
    let splice = |out: &mut String, range: std::ops::Range<usize>, with: &str| {
        out.push_str(&text[..range.start]);
        out.push_str(with);
        out.push_str(&text[range.end..]);
    };
    match m {
        Mutation::ReplaceField { field, with } => {
            let f = fields(text);
            if f.is_empty() {
                splice(&mut out, text.len()..text.len(), with);
            } else {
                splice(&mut out, f[*field % f.len()].clone(), with);
            }
        }
        Mutation::DeleteFields { field, count } => {
            let f = fields(text);
            if !f.is_empty() {
                let first = *field % f.len();
                let last = first
                    .saturating_add(count.saturating_sub(1))
                    .min(f.len() - 1);
                splice(&mut out, f[first].start..f[last].end, "");
            }
        }
        Mutation::ReplaceChar { at, with } => {
            if chars == 0 {
                out.push_str(with);
            } else {
                splice(&mut out, char_span(&b, *at % chars, 1), with);
            }
        }
        Mutation::Delete { at, len } => {
            if chars > 0 {
                splice(&mut out, char_span(&b, *at % chars, *len), "");
            }
        }
        Mutation::Duplicate { from, len, to } => {
            if chars == 0 {
                return String::new();
            }
            let copy = &text[char_span(&b, *from % chars, *len)];
            let at = b[*to % (chars + 1)];
            splice(&mut out, at..at, copy);
        }
        Mutation::Insert { at, what } => {
            let at = b[*at % (chars + 1)];
            splice(&mut out, at..at, what);
        }
        Mutation::DuplicateLine { line, to } => {
            let l = lines(text);
            if l.is_empty() {
                return String::new();
            }
            let mut copy = text[l[*line % l.len()].clone()].to_owned();
            if !copy.ends_with('\n') {
                copy.push('\n');
            }
            let to = l.get(*to % (l.len() + 1)).map_or(text.len(), |r| r.start);
            if to == text.len() && !text.ends_with('\n') {
                // After a last line without its line feed: start a new line.
                copy.insert(0, '\n');
                copy.pop();
            }
            splice(&mut out, to..to, &copy);
        }
        Mutation::DeleteLine { line } => {
            let l = lines(text);
            if !l.is_empty() {
                splice(&mut out, l[*line % l.len()].clone(), "");
            }
        }
        Mutation::Truncate { at } => {
            out.push_str(&text[..b[*at % (chars + 1)]]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_do_what_they_say() {
        let t = "ab 12/é\nline2\n";
        assert_eq!(
            apply(
                t,
                &Mutation::ReplaceField {
                    field: 1,
                    with: "X".into()
                }
            ),
            "ab X/é\nline2\n"
        );
        assert_eq!(
            apply(
                t,
                &Mutation::ReplaceChar {
                    at: 6,
                    with: "€".into()
                }
            ),
            "ab 12/€\nline2\n"
        );
        assert_eq!(
            apply(t, &Mutation::Delete { at: 0, len: 3 }),
            "12/é\nline2\n"
        );
        assert_eq!(apply(t, &Mutation::Truncate { at: 7 }), "ab 12/é");
        assert_eq!(
            apply(
                "2026-11-20 09:25:22+01:00",
                &Mutation::DeleteFields { field: 3, count: 3 }
            ),
            "2026-11-20 +01:00"
        );
        assert_eq!(apply(t, &Mutation::DeleteLine { line: 0 }), "line2\n");
        assert_eq!(
            apply(t, &Mutation::DuplicateLine { line: 1, to: 0 }),
            "line2\nab 12/é\nline2\n"
        );
        assert_eq!(
            apply("a\nb", &Mutation::DuplicateLine { line: 0, to: 2 }),
            "a\nb\na"
        );
    }

    proptest! {
        #[test]
        fn any_mutation_of_any_text_is_text(t in "\\PC{0,30}", m in mutation()) {
            let _ = apply(&t, &m);
        }

        #[test]
        fn bytes_mutations_keep_untouched_bytes(b in proptest::collection::vec(any::<u8>(), 0..40), m in mutation()) {
            let out = apply_bytes(&b, &m);
            if let Mutation::Truncate { .. } = m {
                prop_assert!(b.starts_with(&out));
            }
        }
    }
}
