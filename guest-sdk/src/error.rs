//! The error type modules return; its message becomes the dead-letter reason.

use std::fmt;

/// Why a record (or `init`) failed.
///
/// The message is what operators see: it becomes the reason of the
/// dead-letter entry (for a record) or of the rejected module (for `init`).
/// Keep it short and specific, e.g. `missing required config key "fields"`.
///
/// Like `anyhow::Error`, this type converts from any [`std::error::Error`],
/// so `?` works on `serde_json`, `str::parse` and friends. For the same
/// reason it does not implement `std::error::Error` itself.
///
/// ```
/// use weir_guest::Error;
///
/// fn port(s: &str) -> Result<u16, Error> {
///     Ok(s.parse::<u16>()?)
/// }
/// assert_eq!(port("x").unwrap_err().to_string(), "invalid digit found in string");
/// assert_eq!(Error::new("no luck").to_string(), "no luck");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with the given message.
    pub fn new(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
        }
    }

    /// Prefixes the message with `context: `.
    ///
    /// ```
    /// let e = weir_guest::Error::new("not a number").context("field \"age\"");
    /// assert_eq!(e.to_string(), "field \"age\": not a number");
    /// ```
    #[must_use]
    pub fn context(self, context: impl fmt::Display) -> Self {
        Self {
            message: format!("{context}: {}", self.message),
        }
    }

    /// The message, as it will appear in the dead-letter reason.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Consumes the error, returning its message.
    pub fn into_message(self) -> String {
        self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.message, f)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(err: E) -> Self {
        Self::new(err)
    }
}
