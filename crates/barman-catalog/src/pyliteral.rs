//! Python literals, as `ast.literal_eval` reads them and `repr` writes them: the format of
//! the structured values in Barman's `backup.info` (`tablespaces`, `copy_stats`,
//! `backup_label`, `included_files`, `snapshots_info`).

use std::fmt::{self, Write as _};

/// A Python literal value.
///
/// `Display` writes what Python's `repr` would (quotes chosen like Python, shortest float
/// representation, `(x,)` for one-element tuples), so values read from a `backup.info`
/// are written back byte for byte.
///
/// # Examples
///
/// ```
/// use barman_catalog::PyValue;
///
/// let v = PyValue::parse("[('tbs', 16387, '/srv/tbs')]")?;
/// assert_eq!(v.to_string(), "[('tbs', 16387, '/srv/tbs')]");
/// let s = PyValue::parse("'START WAL LOCATION: 0/2000028\\n'")?;
/// assert_eq!(s.as_str(), Some("START WAL LOCATION: 0/2000028\n"));
/// assert_eq!(PyValue::parse("{'copy_time': 1e-05}")?.to_string(), "{'copy_time': 1e-05}");
/// # Ok::<(), barman_catalog::LiteralError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum PyValue {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An integer (within 64 bits).
    Int(i64),
    /// A float.
    Float(f64),
    /// A text string.
    Str(String),
    /// A bytes string.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<PyValue>),
    /// A tuple.
    Tuple(Vec<PyValue>),
    /// A dict, in its written order.
    Dict(Vec<(PyValue, PyValue)>),
}

impl PyValue {
    /// Parses one literal (surrounding blanks allowed).
    ///
    /// # Errors
    ///
    /// [`LiteralError`](crate::LiteralError): what is wrong and at which byte.
    ///
    /// ```
    /// let err = barman_catalog::PyValue::parse("[1, 2").unwrap_err();
    /// assert_eq!(err.to_string(), "expected ',' or ']' at byte 5");
    /// ```
    pub fn parse(text: &str) -> Result<PyValue, crate::LiteralError> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
            depth: 0,
        };
        let reason = match p.value() {
            Ok(v) => {
                p.ws();
                if p.i == p.s.len() {
                    return Ok(v);
                }
                format!("unexpected {:?} at byte {}", p.rest(), p.i)
            }
            Err(reason) => reason,
        };
        Err(crate::LiteralError { reason })
    }

    /// The string, if this is a `Str`.
    ///
    /// ```
    /// assert_eq!(barman_catalog::PyValue::Str("x".into()).as_str(), Some("x"));
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an `Int`.
    ///
    /// ```
    /// assert_eq!(barman_catalog::PyValue::Int(3).as_int(), Some(3));
    /// ```
    pub fn as_int(&self) -> Option<i64> {
        match self {
            PyValue::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The number as a float, if this is an `Int` or a `Float`.
    ///
    /// ```
    /// assert_eq!(barman_catalog::PyValue::Int(3).as_f64(), Some(3.0));
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PyValue::Int(v) => Some(*v as f64),
            PyValue::Float(v) => Some(*v),
            _ => None,
        }
    }

    /// The items, if this is a `List` or a `Tuple`.
    ///
    /// ```
    /// assert_eq!(barman_catalog::PyValue::parse("(1,)").unwrap().as_seq().map(|s| s.len()), Some(1));
    /// ```
    pub fn as_seq(&self) -> Option<&[PyValue]> {
        match self {
            PyValue::List(v) | PyValue::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// Whether this holds no NaN or infinite float. Only then does its `repr` (this
    /// type's `Display`) read back: `repr` writes them as `nan` and `inf`, words that
    /// Python's `ast.literal_eval`, and [`PyValue::parse`], refuse.
    ///
    /// ```
    /// use barman_catalog::PyValue;
    /// assert!(PyValue::parse("[1.5, {'a': (2,)}]").unwrap().is_finite());
    /// assert!(!PyValue::List(vec![PyValue::Float(f64::NAN)]).is_finite());
    /// ```
    pub fn is_finite(&self) -> bool {
        match self {
            PyValue::Float(f) => f.is_finite(),
            PyValue::List(items) | PyValue::Tuple(items) => items.iter().all(PyValue::is_finite),
            PyValue::Dict(items) => items.iter().all(|(k, v)| k.is_finite() && v.is_finite()),
            _ => true,
        }
    }

    /// The value of `key` in a `Dict` with string keys.
    ///
    /// ```
    /// let d = barman_catalog::PyValue::parse("{'a': 1}").unwrap();
    /// assert_eq!(d.get("a"), Some(&barman_catalog::PyValue::Int(1)));
    /// ```
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(items) => items
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Python truthiness (what Barman's `null_repr` tests: empty values are written `None`).
    pub(crate) fn is_truthy(&self) -> bool {
        match self {
            PyValue::None => false,
            PyValue::Bool(b) => *b,
            PyValue::Int(v) => *v != 0,
            PyValue::Float(v) => *v != 0.0,
            PyValue::Str(s) => !s.is_empty(),
            PyValue::Bytes(b) => !b.is_empty(),
            PyValue::List(v) | PyValue::Tuple(v) => !v.is_empty(),
            PyValue::Dict(v) => !v.is_empty(),
        }
    }
}

const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn rest(&self) -> String {
        String::from_utf8_lossy(&self.s[self.i..self.s.len().min(self.i + 20)]).into_owned()
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            let end = self.i + word.len();
            // A keyword must not run into an identifier character.
            if self
                .s
                .get(end)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            {
                return false;
            }
            self.i = end;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<PyValue, String> {
        self.ws();
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("nesting too deep".to_owned());
        }
        let v = match self.peek() {
            None => Err("unexpected end of input".to_owned()),
            Some(b'[') => self.seq(b']').map(PyValue::List),
            Some(b'(') => {
                self.i += 1;
                let (items, trailing_comma) = self.items(b')')?;
                // `(x)` is just x; `(x,)` and `()` are tuples.
                if items.len() == 1 && !trailing_comma {
                    Ok(items.into_iter().next().unwrap_or(PyValue::None))
                } else {
                    Ok(PyValue::Tuple(items))
                }
            }
            Some(b'{') => self.dict(),
            Some(b'\'' | b'"') => self.string(false).map(PyValue::Str),
            Some(c) if c.is_ascii_alphabetic() => {
                if self.eat("None") {
                    Ok(PyValue::None)
                } else if self.eat("True") {
                    Ok(PyValue::Bool(true))
                } else if self.eat("False") {
                    Ok(PyValue::Bool(false))
                } else {
                    self.prefixed_string()
                }
            }
            Some(_) => self.number(),
        };
        self.depth -= 1;
        v
    }

    fn seq(&mut self, close: u8) -> Result<Vec<PyValue>, String> {
        self.i += 1;
        Ok(self.items(close)?.0)
    }

    /// Items up to `close`; also says whether the last item had a trailing comma.
    fn items(&mut self, close: u8) -> Result<(Vec<PyValue>, bool), String> {
        let mut items = Vec::new();
        let mut trailing = false;
        loop {
            self.ws();
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok((items, trailing));
            }
            if !items.is_empty() && !trailing {
                return Err(format!(
                    "expected ',' or '{}' at byte {}",
                    close as char, self.i
                ));
            }
            items.push(self.value()?);
            self.ws();
            trailing = self.peek() == Some(b',');
            if trailing {
                self.i += 1;
            }
        }
    }

    fn dict(&mut self) -> Result<PyValue, String> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(PyValue::Dict(items));
            }
            let k = self.value()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(format!("expected ':' at byte {}", self.i));
            }
            self.i += 1;
            let v = self.value()?;
            items.push((k, v));
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected ',' or '}}' at byte {}", self.i)),
            }
        }
    }

    fn prefixed_string(&mut self) -> Result<PyValue, String> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) && self.i - start < 2 {
            self.i += 1;
        }
        let prefix = String::from_utf8_lossy(&self.s[start..self.i]).to_ascii_lowercase();
        if !matches!(self.peek(), Some(b'\'' | b'"')) {
            self.i = start;
            return Err(format!("unexpected {:?} at byte {start}", self.rest()));
        }
        let raw = prefix.contains('r');
        match prefix.as_str() {
            "u" | "r" => self.string(raw).map(PyValue::Str),
            "b" | "br" | "rb" => {
                let s = self.string(raw)?;
                if !s.chars().all(|c| (c as u32) < 256) {
                    return Err(format!(
                        "non-latin-1 character in bytes literal before byte {}",
                        self.i
                    ));
                }
                Ok(PyValue::Bytes(s.chars().map(|c| c as u32 as u8).collect()))
            }
            _ => {
                self.i = start;
                Err(format!("unknown string prefix {prefix:?} at byte {start}"))
            }
        }
    }

    fn string(&mut self, raw: bool) -> Result<String, String> {
        let quote = self.s[self.i];
        let triple = self.s[self.i..].starts_with(&[quote, quote, quote]);
        self.i += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err("unterminated string".to_owned());
            };
            if c == quote && (!triple || self.s[self.i..].starts_with(&[quote, quote, quote])) {
                self.i += if triple { 3 } else { 1 };
                return Ok(out);
            }
            if c == b'\n' && !triple {
                return Err(format!("line break in string at byte {}", self.i));
            }
            if c == b'\\' {
                self.i += 1;
                let Some(e) = self.peek() else {
                    return Err("unterminated string".to_owned());
                };
                if raw {
                    out.push('\\');
                    self.push_utf8(&mut out)?;
                    continue;
                }
                self.i += 1;
                match e {
                    b'\n' => {}
                    b'\\' => out.push('\\'),
                    b'\'' => out.push('\''),
                    b'"' => out.push('"'),
                    b'a' => out.push('\x07'),
                    b'b' => out.push('\x08'),
                    b'f' => out.push('\x0c'),
                    b'n' => out.push('\n'),
                    b'r' => out.push('\r'),
                    b't' => out.push('\t'),
                    b'v' => out.push('\x0b'),
                    b'x' => out.push(self.hex_escape(2)?),
                    b'u' => out.push(self.hex_escape(4)?),
                    b'U' => out.push(self.hex_escape(8)?),
                    b'0'..=b'7' => {
                        let mut v = u32::from(e - b'0');
                        for _ in 0..2 {
                            match self.peek() {
                                Some(d @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(d - b'0');
                                    self.i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push(char::from_u32(v).ok_or("bad octal escape")?);
                    }
                    _ => {
                        // Python keeps unknown escapes as written.
                        out.push('\\');
                        self.i -= 1;
                        self.push_utf8(&mut out)?;
                    }
                }
                continue;
            }
            self.push_utf8(&mut out)?;
        }
    }

    /// Pushes the UTF-8 character at the cursor.
    fn push_utf8(&mut self, out: &mut String) -> Result<(), String> {
        let len = match self.s[self.i] {
            b if b < 0x80 => 1,
            b if b >> 5 == 0b110 => 2,
            b if b >> 4 == 0b1110 => 3,
            _ => 4,
        };
        let end = (self.i + len).min(self.s.len());
        let ch = std::str::from_utf8(&self.s[self.i..end])
            .map_err(|_| format!("invalid UTF-8 at byte {}", self.i))?;
        out.push_str(ch);
        self.i = end;
        Ok(())
    }

    fn hex_escape(&mut self, n: usize) -> Result<char, String> {
        let digits = self.s.get(self.i..self.i + n).ok_or("truncated escape")?;
        // Only hex digits: `from_str_radix` would also take a sign (`\x+1`), which Python
        // refuses.
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(format!(
                "bad escape \\{} at byte {}",
                String::from_utf8_lossy(digits),
                self.i
            ));
        }
        let text = std::str::from_utf8(digits).map_err(|_| "bad escape")?;
        let v = u32::from_str_radix(text, 16).map_err(|_| format!("bad escape \\{text}"))?;
        self.i += n;
        char::from_u32(v).ok_or_else(|| format!("bad code point {v:#x}"))
    }

    fn number(&mut self) -> Result<PyValue, String> {
        let start = self.i;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.i += 1;
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'_'))
            || (matches!(self.peek(), Some(b'-' | b'+'))
                && matches!(self.s[self.i - 1], b'e' | b'E'))
        {
            self.i += 1;
        }
        let text: String = String::from_utf8_lossy(&self.s[start..self.i]).replace('_', "");
        if text.is_empty() || text == "-" || text == "+" {
            return Err(format!("unexpected {:?} at byte {start}", self.rest()));
        }
        if text.contains(['.', 'e', 'E']) {
            text.parse::<f64>()
                .map(PyValue::Float)
                .map_err(|_| format!("bad number {text:?} at byte {start}"))
        } else {
            text.parse::<i64>()
                .map(PyValue::Int)
                .map_err(|_| format!("bad integer {text:?} at byte {start}"))
        }
    }
}

/// Python's `repr` of a float (`float_repr_style = 'short'`).
pub(crate) fn float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // Shortest round-trip digits and decimal exponent from Rust's `{:e}`.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let frac = if digits.len() > 1 {
            format!(".{}", &digits[1..])
        } else {
            String::new()
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{}{frac}e{esign}{:02}", &digits[..1], exp.abs())
    }
}

fn write_str_repr(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    f.write_char(quote)?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c == quote => write!(f, "\\{c}")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f || (0x80..0xa0).contains(&(c as u32)) => {
                write!(f, "\\x{:02x}", c as u32)?
            }
            c => f.write_char(c)?,
        }
    }
    f.write_char(quote)
}

fn write_bytes_repr(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    write!(f, "b{}", quote as char)?;
    for &c in b {
        match c {
            b'\\' => f.write_str("\\\\")?,
            b'\n' => f.write_str("\\n")?,
            b'\r' => f.write_str("\\r")?,
            b'\t' => f.write_str("\\t")?,
            c if c == quote => write!(f, "\\{}", c as char)?,
            0x20..=0x7e => f.write_char(c as char)?,
            c => write!(f, "\\x{c:02x}")?,
        }
    }
    f.write_char(quote as char)
}

impl fmt::Display for PyValue {
    /// Python's `repr`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, items: &[PyValue]| -> fmt::Result {
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            Ok(())
        };
        match self {
            PyValue::None => f.write_str("None"),
            PyValue::Bool(true) => f.write_str("True"),
            PyValue::Bool(false) => f.write_str("False"),
            PyValue::Int(v) => write!(f, "{v}"),
            PyValue::Float(v) => f.write_str(&float_repr(*v)),
            PyValue::Str(s) => write_str_repr(f, s),
            PyValue::Bytes(b) => write_bytes_repr(f, b),
            PyValue::List(items) => {
                f.write_char('[')?;
                join(f, items)?;
                f.write_char(']')
            }
            PyValue::Tuple(items) => {
                f.write_char('(')?;
                join(f, items)?;
                if items.len() == 1 {
                    f.write_char(',')?;
                }
                f.write_char(')')
            }
            PyValue::Dict(items) => {
                f.write_char('{')?;
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_char('}')
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barman_testkit::mutate::{self, near_valid};
    use proptest::prelude::*;

    #[test]
    fn floats_like_python() {
        for (v, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123456.789, "123456.789"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (-2.5, "-2.5"),
            (0.0, "0.0"),
            (12.345678901234567, "12.345678901234567"),
        ] {
            assert_eq!(float_repr(v), s);
        }
    }

    #[test]
    fn strings_like_python() {
        assert_eq!(PyValue::Str("it's".into()).to_string(), "\"it's\"");
        assert_eq!(PyValue::Str("a'b\"c".into()).to_string(), "'a\\'b\"c'");
        assert_eq!(
            PyValue::Str("tab\there\x01é".into()).to_string(),
            "'tab\\there\\x01é'"
        );
        assert_eq!(
            PyValue::parse("'\\x41\\u00e9\\101\\q'").unwrap(),
            PyValue::Str("AéA\\q".to_owned())
        );
        assert_eq!(
            PyValue::parse("b'\\x00ab'").unwrap(),
            PyValue::Bytes(vec![0, b'a', b'b'])
        );
        assert_eq!(PyValue::parse("u'x'").unwrap(), PyValue::Str("x".into()));
        assert_eq!(
            PyValue::parse("r'a\\n'").unwrap(),
            PyValue::Str("a\\n".into())
        );
    }

    #[test]
    fn containers() {
        assert_eq!(PyValue::parse("(1)").unwrap(), PyValue::Int(1));
        assert_eq!(PyValue::parse("(1,)").unwrap().to_string(), "(1,)");
        assert_eq!(PyValue::parse("()").unwrap().to_string(), "()");
        assert_eq!(PyValue::parse("[1,2,]").unwrap().to_string(), "[1, 2]");
        assert_eq!(
            PyValue::parse(" {'a' : [True, None], 'b': -3} ")
                .unwrap()
                .to_string(),
            "{'a': [True, None], 'b': -3}"
        );
        for bad in [
            "",
            "[",
            "[1 2]",
            "{'a' 1}",
            "Nonesuch",
            "'abc",
            "1.2.3",
            "foo()",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        ] {
            assert!(PyValue::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// Issue "Trust", point 11: `\x`, `\u` and `\U` escapes took a sign for a digit
    /// (`u32::from_str_radix` accepts `+1`), so `'\x+1'`, which Python refuses, was read
    /// as `'\x01'`.
    #[test]
    fn escape_with_a_sign_instead_of_a_digit_is_an_error() {
        for bad in ["'\\x+1'", "'\\u+0041'", "'\\U+0000041'", "b'\\x+f'"] {
            assert!(PyValue::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            PyValue::parse("'\\x41\\u0041\\U00000041'").unwrap(),
            PyValue::Str("AAA".into())
        );
    }

    fn value() -> impl Strategy<Value = PyValue> {
        let leaf = prop_oneof![
            Just(PyValue::None),
            any::<bool>().prop_map(PyValue::Bool),
            any::<i64>().prop_map(PyValue::Int),
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(PyValue::Float),
            "\\PC{0,12}".prop_map(PyValue::Str),
            "[\\x00-\\x1f'\"\\\\a-z]{0,12}".prop_map(PyValue::Str),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(PyValue::Bytes),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(PyValue::List),
                proptest::collection::vec(inner.clone(), 0..4).prop_map(PyValue::Tuple),
                proptest::collection::vec(("[a-z_]{1,8}".prop_map(PyValue::Str), inner), 0..4)
                    .prop_map(PyValue::Dict),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trip(v in value()) {
            let text = v.to_string();
            let back = PyValue::parse(&text).unwrap();
            prop_assert_eq!(back.to_string(), text);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = PyValue::parse(&s);
        }
    }

    proptest! {
        #![proptest_config(mutate::config())]

        /// A literal as `repr` writes it, with one mutation: an error, or a value that
        /// writes and reads back (unless it holds an infinite float: `1e400` reads as
        /// `inf`, which Python's `repr` writes and `ast.literal_eval` refuses as well).
        #[test]
        fn near_valid_literals_parse_or_fail_cleanly(s in near_valid(value().prop_map(|v| v.to_string()))) {
            if let Ok(v) = PyValue::parse(&s) {
                let text = v.to_string();
                match PyValue::parse(&text) {
                    Ok(back) => prop_assert_eq!(back.to_string(), text),
                    Err(e) => prop_assert!(!v.is_finite(), "{e}: {text}"),
                }
            }
        }
    }
}
