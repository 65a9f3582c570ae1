//! `identity.json`: which cluster a server's repository belongs to.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The content of `<backup_directory>/identity.json`, written once when the server is
/// first seen and checked afterwards: the archive must never mix clusters.
///
/// ```
/// use barman_catalog::Identity;
///
/// let id = Identity::parse("identity.json", r#"{"systemid": "7712020257735954489", "version": "15"}"#)?;
/// assert_eq!(id.system_id()?, 7712020257735954489);
/// assert_eq!(id.to_json(), "{\n    \"systemid\": \"7712020257735954489\",\n    \"version\": \"15\"\n}\n");
/// # Ok::<(), barman_catalog::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The cluster's system identifier, as text (as PostgreSQL shows it).
    pub systemid: String,
    /// The PostgreSQL major version (`15`, or `9.6` for old servers).
    pub version: String,
}

impl Identity {
    /// Parses the JSON text of `file`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] naming the file when it is not the expected JSON object.
    ///
    /// ```
    /// assert!(barman_catalog::Identity::parse("identity.json", "{}").is_err());
    /// ```
    pub fn parse(file: &str, text: &str) -> Result<Identity> {
        serde_json::from_str(text).map_err(|e| Error::InvalidValue {
            file: file.to_owned(),
            line: e.line(),
            key: "identity".to_owned(),
            value: text.chars().take(80).collect(),
            reason: e.to_string(),
        })
    }

    /// The system identifier as a number (what WAL page headers carry).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] when `systemid` is not a number.
    ///
    /// ```
    /// let id = barman_catalog::Identity { systemid: "x".into(), version: "15".into() };
    /// assert!(id.system_id().is_err());
    /// ```
    pub fn system_id(&self) -> Result<u64> {
        self.systemid.parse().map_err(|_| Error::InvalidValue {
            file: "identity.json".to_owned(),
            line: 0,
            key: "systemid".to_owned(),
            value: self.systemid.clone(),
            reason: "expected a number".to_owned(),
        })
    }

    /// The JSON Barman writes: keys sorted, 4-space indent, final line feed.
    ///
    /// ```
    /// let id = barman_catalog::Identity { systemid: "1".into(), version: "17".into() };
    /// assert!(id.to_json().ends_with("}\n"));
    /// ```
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        // Serialising two strings into memory cannot fail.
        let _ = self.serialize(&mut ser);
        let mut s = String::from_utf8(out).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use barman_testkit::mutate::{self, near_valid};
    use proptest::prelude::*;

    fn identity() -> impl Strategy<Value = Identity> {
        (
            prop_oneof![any::<u64>().prop_map(|v| v.to_string()), "\\PC{0,12}"],
            prop_oneof![Just("15".to_owned()), Just("9.6".to_owned()), "\\PC{0,6}"],
        )
            .prop_map(|(systemid, version)| Identity { systemid, version })
    }

    proptest! {
        #[test]
        fn written_json_reads_back(id in identity()) {
            prop_assert_eq!(Identity::parse("identity.json", &id.to_json()).unwrap(), id);
        }
    }

    proptest! {
        #![proptest_config(mutate::config())]

        /// identity.json as Barman writes it, with one mutation: an error, or an identity
        /// that writes and reads back.
        #[test]
        fn near_valid_json_parses_or_fails_cleanly(s in near_valid(identity().prop_map(|i| i.to_json()))) {
            if let Ok(id) = Identity::parse("identity.json", &s) {
                prop_assert_eq!(Identity::parse("identity.json", &id.to_json()).unwrap(), id.clone());
                let _ = id.system_id();
            }
        }
    }
}
