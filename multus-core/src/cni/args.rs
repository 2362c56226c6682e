//! `CNI_ARGS`: extra arguments passed to a plugin as `KEY1=VALUE1;KEY2=VALUE2`.

use std::fmt;

/// The parsed `CNI_ARGS` environment variable: ordered `KEY=VALUE` pairs.
///
/// A value may contain `=` (a pair is split at its first `=`) but not `;`. Keys and values
/// are kept exactly as given, nothing is trimmed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CniArgs {
    pairs: Vec<(String, String)>,
}

/// Why a `CNI_ARGS` string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// An item has no `=`.
    #[error("invalid CNI_ARGS pair {0:?}: expected KEY=VALUE")]
    InvalidPair(String),
    /// An item has nothing before its `=`.
    #[error("invalid CNI_ARGS pair {0:?}: empty key")]
    EmptyKey(String),
}

impl CniArgs {
    /// Parse `K1=V1;K2=V2`. The empty string gives no pairs, and so do empty items (as in
    /// `A=1;;B=2` or a trailing `;`); an item without `=` or with an empty key is an error.
    pub fn parse(s: &str) -> Result<Self, ArgsError> {
        let mut pairs = Vec::new();
        for item in s.split(';').filter(|item| !item.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| ArgsError::InvalidPair(item.to_owned()))?;
            if key.is_empty() {
                return Err(ArgsError::EmptyKey(item.to_owned()));
            }
            pairs.push((key.to_owned(), value.to_owned()));
        }
        Ok(CniArgs { pairs })
    }

    /// The value of the first pair with this key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Append a pair (even if the key is already present).
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.pairs.push((key.into(), value.into()));
    }

    /// Add a pair with Multus' merge rule: when the key is present with an empty value,
    /// fill that value in; when it is present with a non-empty value, keep the existing
    /// one; otherwise append the pair.
    pub fn merge(&mut self, key: &str, value: &str) {
        match self.pairs.iter_mut().find(|(k, _)| k == key) {
            Some((_, existing)) if existing.is_empty() => *existing = value.to_owned(),
            Some(_) => {}
            None => self.push(key, value),
        }
    }

    /// Are there no pairs?
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl fmt::Display for CniArgs {
    /// The pairs as `K1=V1;K2=V2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{key}={value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(args: &CniArgs) -> Vec<(&str, &str)> {
        args.pairs()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn parses_kubernetes_args() {
        let s = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;\
                 K8S_POD_INFRA_CONTAINER_ID=0123abcd;K8S_POD_UID=5b9c-11ee";
        let args = CniArgs::parse(s).unwrap();
        assert_eq!(args.get("K8S_POD_NAME"), Some("web-0"));
        assert_eq!(args.get("IgnoreUnknown"), Some("1"));
        assert_eq!(args.get("K8S_POD_UID"), Some("5b9c-11ee"));
        assert_eq!(args.get("missing"), None);
        assert_eq!(args.pairs().len(), 5);
        assert_eq!(args.to_string(), s);
    }

    #[test]
    fn parse_table() {
        let ok: &[(&str, &[(&str, &str)])] = &[
            ("", &[]),
            (";", &[]),
            (";;", &[]),
            ("A=1", &[("A", "1")]),
            ("A=1;", &[("A", "1")]),
            (";A=1;;B=2;", &[("A", "1"), ("B", "2")]),
            ("A=", &[("A", "")]),
            ("A=b=c", &[("A", "b=c")]),
            ("A==", &[("A", "=")]),
            (" A = 1 ", &[(" A ", " 1 ")]),
            ("A=1;A=2", &[("A", "1"), ("A", "2")]),
        ];
        for (input, expected) in ok {
            let args = CniArgs::parse(input).unwrap();
            assert_eq!(pairs(&args), *expected, "{input:?}");
            assert_eq!(args.is_empty(), expected.is_empty());
        }
        assert_eq!(CniArgs::parse("A=1;A=2").unwrap().get("A"), Some("1"));

        assert_eq!(CniArgs::parse("A"), Err(ArgsError::InvalidPair("A".into())));
        assert_eq!(
            CniArgs::parse("A=1;B"),
            Err(ArgsError::InvalidPair("B".into()))
        );
        assert_eq!(CniArgs::parse(" "), Err(ArgsError::InvalidPair(" ".into())));
        assert_eq!(CniArgs::parse("=1"), Err(ArgsError::EmptyKey("=1".into())));
        assert_eq!(
            ArgsError::InvalidPair("B".into()).to_string(),
            "invalid CNI_ARGS pair \"B\": expected KEY=VALUE"
        );
    }

    #[test]
    fn push_and_display() {
        let mut args = CniArgs::default();
        assert!(args.is_empty());
        assert_eq!(args.to_string(), "");
        args.push("A", "1");
        args.push(String::from("B"), "x=y");
        assert_eq!(args.to_string(), "A=1;B=x=y");
    }

    #[test]
    fn merge_rule() {
        let mut args = CniArgs::parse("A=;B=2").unwrap();
        args.merge("A", "filled");
        args.merge("B", "ignored");
        args.merge("C", "3");
        args.merge("C", "ignored");
        assert_eq!(args.to_string(), "A=filled;B=2;C=3");
        let mut args = CniArgs::default();
        args.merge("D", "");
        args.merge("D", "later");
        assert_eq!(args.to_string(), "D=later");
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(
            raw in proptest::collection::vec(("[^=;]{1,8}", "[^;]{0,8}"), 0..6)
        ) {
            let mut args = CniArgs::default();
            for (key, value) in raw {
                args.push(key, value);
            }
            prop_assert_eq!(CniArgs::parse(&args.to_string()), Ok(args));
        }
    }
}
