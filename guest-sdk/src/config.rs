//! A module's key/value settings from the pipeline config.

use std::str::FromStr;

use crate::Error;

/// The settings the pipeline config gives this module, as passed to `init`.
///
/// Keys are matched exactly; when a key is given twice, the last value wins.
///
/// ```
/// use weir_guest::Config;
///
/// let config = Config::from_pairs([("fields", "text, title"), ("max_len", "280")]);
/// assert_eq!(config.get("fields"), Some("text, title"));
/// assert_eq!(config.get_or("suffix", "_original"), "_original");
/// assert_eq!(config.list("fields"), Some(vec!["text", "title"]));
/// assert_eq!(config.parse::<usize>("max_len").unwrap(), Some(280));
/// assert_eq!(
///     config.require("index").unwrap_err().to_string(),
///     r#"missing required config key "index""#
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pairs: Vec<(String, String)>,
}

impl Config {
    /// A config holding the given pairs (handy in unit tests).
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or `default` when it is not set.
    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// The value of `key`; an error naming the key when it is not set.
    pub fn require(&self, key: &str) -> Result<&str, Error> {
        self.get(key)
            .ok_or_else(|| Error::new(format!("missing required config key {key:?}")))
    }

    /// The value of `key` parsed as `T`: `Ok(None)` when not set, an error
    /// naming the key and the value when it does not parse.
    ///
    /// ```
    /// let config = weir_guest::Config::from_pairs([("max_len", "lots")]);
    /// assert_eq!(
    ///     config.parse::<u32>("max_len").unwrap_err().to_string(),
    ///     r#"config key "max_len": cannot parse "lots": invalid digit found in string"#
    /// );
    /// ```
    pub fn parse<T>(&self, key: &str) -> Result<Option<T>, Error>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.get(key)
            .map(|raw| {
                raw.trim().parse::<T>().map_err(|e| {
                    Error::new(format!("config key {key:?}: cannot parse {raw:?}: {e}"))
                })
            })
            .transpose()
    }

    /// Like [`parse`](Self::parse), with `default` when the key is not set.
    pub fn parse_or<T>(&self, key: &str, default: T) -> Result<T, Error>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        Ok(self.parse(key)?.unwrap_or(default))
    }

    /// The value of `key` split on commas, each item trimmed, empty items
    /// dropped; `None` when the key is not set.
    pub fn list(&self, key: &str) -> Option<Vec<&str>> {
        self.get(key).map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .collect()
        })
    }

    /// All pairs, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no settings were given.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

impl From<Vec<(String, String)>> for Config {
    fn from(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Config {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::from_pairs(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_value_wins() {
        let c = Config::from_pairs([("a", "1"), ("a", "2")]);
        assert_eq!(c.get("a"), Some("2"));
    }

    #[test]
    fn list_trims_and_drops_empty_items() {
        let c = Config::from_pairs([("f", " a ,, b,")]);
        assert_eq!(c.list("f"), Some(vec!["a", "b"]));
        assert_eq!(c.list("missing"), None);
    }

    #[test]
    fn parse_reports_key_and_value() {
        let c = Config::from_pairs([("n", "x1")]);
        let err = c.parse::<i32>("n").unwrap_err().to_string();
        assert!(err.contains("\"n\"") && err.contains("\"x1\""), "{err}");
        assert_eq!(c.parse::<i32>("other").unwrap(), None);
        assert_eq!(c.parse_or::<i32>("other", 7).unwrap(), 7);
    }

    #[test]
    fn parse_trims_whitespace() {
        let c = Config::from_pairs([("n", " 42 ")]);
        assert_eq!(c.parse::<u8>("n").unwrap(), Some(42));
    }
}
