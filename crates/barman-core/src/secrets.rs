//! Secrets in what barman-rs shows (`diagnose`, `show-servers`, `Debug`, error
//! messages): passwords inside connection strings and the values of secret options are
//! replaced by [`MASK`].

/// What replaces a secret.
pub const MASK: &str = "********";

/// Masks the password of a libpq connection string, in keyword/value form
/// (`password=secret`, `password = 'a b'`) or URI form (`postgresql://u:secret@h`,
/// `?password=secret`).
///
/// # Examples
///
/// ```
/// use barman_core::secrets::mask_conninfo;
///
/// assert_eq!(mask_conninfo("host=pg password='s e' user=b"), "host=pg password=******** user=b");
/// assert_eq!(mask_conninfo("postgresql://b:s@pg/db?password=t"), "postgresql://b:********@pg/db?password=********");
/// assert_eq!(mask_conninfo("host=pg sslpassword=k sslkey=/k"), "host=pg sslpassword=******** sslkey=/k");
/// ```
pub fn mask_conninfo(conninfo: &str) -> String {
    let t = conninfo.trim_start();
    if t.starts_with("postgresql://") || t.starts_with("postgres://") {
        return mask_uri(conninfo);
    }
    SECRET_KEYWORDS
        .iter()
        .fold(conninfo.to_owned(), |text, key| mask_keyword(&text, key))
}

/// The keywords of a connection string whose values are secrets: the password, and the
/// passphrase of the client's TLS key.
const SECRET_KEYWORDS: [&str; 2] = ["password", "sslpassword"];

/// Masks every value of keyword `key` in a keyword/value connection string.
fn mask_keyword(conninfo: &str, key: &str) -> String {
    let mut out = String::with_capacity(conninfo.len());
    let mut rest = conninfo;
    loop {
        let Some(pos) = find_keyword(rest, key) else {
            out.push_str(rest);
            return out;
        };
        let after_key = &rest[pos + key.len()..];
        let after_eq = after_key.trim_start();
        let Some(value) = after_eq.strip_prefix('=') else {
            out.push_str(&rest[..pos + key.len()]);
            rest = after_key;
            continue;
        };
        let value_start = value.trim_start();
        let eq_part = &rest[pos..rest.len() - value_start.len()];
        out.push_str(&rest[..pos]);
        out.push_str(eq_part.trim_end());
        out.push_str(MASK);
        rest = skip_value(value_start);
    }
}

/// The position of `key` as a whole keyword (at the start or after whitespace).
fn find_keyword(text: &str, key: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(key) {
        let pos = from + i;
        let before_ok = pos == 0 || text[..pos].ends_with(char::is_whitespace);
        let after = &text[pos + key.len()..];
        if before_ok && after.trim_start().starts_with('=') {
            return Some(pos);
        }
        from = pos + key.len();
    }
    None
}

/// What follows a keyword's value (quoted with `\` escapes, or up to whitespace).
fn skip_value(value: &str) -> &str {
    if let Some(q) = value.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in q.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '\'' if !escaped => return &q[i + 1..],
                _ => escaped = false,
            }
        }
        ""
    } else {
        let end = value.find(char::is_whitespace).unwrap_or(value.len());
        &value[end..]
    }
}

fn mask_uri(uri: &str) -> String {
    let mut out = uri.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let start = scheme_end + 3;
        let auth_end = out[start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..auth_end].rfind('@') {
            let userinfo = &out[start..start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(start + colon + 1..start + at, MASK);
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let masked: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if SECRET_KEYWORDS.contains(&k) => format!("{k}={MASK}"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{head}{}", masked.join("&"));
    }
    out
}

/// `text`, the value of `option`, as it may be shown: a connection string with its
/// passwords masked, a secret option's value masked whole.
pub(crate) fn shown_value(option: &str, text: &str) -> String {
    if option.ends_with("conninfo") {
        mask_conninfo(text)
    } else if is_secret(option) {
        MASK.to_owned()
    } else {
        text.to_owned()
    }
}

/// Whether the value of `option` may hold a secret (a connection string, a password or
/// passphrase option).
pub(crate) fn is_sensitive(option: &str) -> bool {
    option.ends_with("conninfo") || is_secret(option)
}

/// Whether the option's whole value is a secret.
pub(crate) fn is_secret(option: &str) -> bool {
    ["password", "passphrase", "secret"]
        .iter()
        .any(|w| option.contains(w))
}
