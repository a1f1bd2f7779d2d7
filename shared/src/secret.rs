//! The lemlist API key. It is only ever read by the HTTP layer that puts it in the
//! `Authorization` header; everything else sees `***`.

use std::fmt;

/// A lemlist API key. `Debug` and `Display` print `***`, so the key cannot leak through a log
/// line, an error message or a panic.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself. Only the lemlist client calls this, to build the Basic auth header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_key() {
        let key = ApiKey::new("sk_live_very_secret");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert_eq!(format!("{key}"), "***");
        assert!(!format!("{:?}", Some(&key)).contains("secret"));
        assert_eq!(key.expose(), "sk_live_very_secret");
    }
}
