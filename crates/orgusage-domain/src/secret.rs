//! Secrets (client API keys, the provisioning key) that must never leak into `Debug` output, logs,
//! error messages or serialized responses.

use std::fmt;

use serde::{Serialize, Serializer};

/// A secret string. `Debug`, `Display` and `Serialize` show only a masked hint (`sk-…1234`);
/// [`Secret::expose`] gives the real value to code that must send it somewhere.
///
/// ```
/// use orgusage_domain::Secret;
/// let key = Secret::new("sk-or-v1-abcdef123456");
/// assert_eq!(format!("{key:?}"), "Secret(\"sk-…3456\")");
/// assert_eq!(key.expose(), "sk-or-v1-abcdef123456");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The real value. Use it only to authenticate against the service the secret belongs to.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A masked hint: the first 3 and last 4 characters for long values, `***` otherwise.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() < 12 {
            return "***".to_string();
        }
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Secret").field(&self.masked()).finish()
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.masked())
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}
