//! The lemlist API key. It is only ever read by the HTTP layer that puts it in the
//! `Authorization` header; everything else sees `***`, and stores see its fingerprint.

use std::fmt;

use sha2::{Digest, Sha256};

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

    /// A stable, non-reversible name for the key, for store keys and logs.
    pub fn fingerprint(&self) -> KeyFingerprint {
        let digest = Sha256::digest(self.0.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        KeyFingerprint(format!("lemlist#{hex}"))
    }
}

/// What lemdash stores and logs in place of a key: `lemlist#` and the first 16 hex digits of
/// the key's SHA-256. Only [`ApiKey::fingerprint`] makes one, so a raw key cannot be passed
/// where a fingerprint is expected.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyFingerprint(String);

impl KeyFingerprint {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Slack incoming-webhook URL: whoever has it can post to the channel, so it is shown as
/// `***` like the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SlackUrl(String);

impl SlackUrl {
    /// The URL as given (checked by [`crate::config::slack_url`]).
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, for the one request that posts to it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SlackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SlackUrl(***)")
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

    #[test]
    fn fingerprint_is_stable_and_does_not_contain_the_key() {
        let key = ApiKey::new("sk_live_very_secret");
        let f = key.fingerprint();
        assert_eq!(f, ApiKey::new("sk_live_very_secret").fingerprint());
        assert_ne!(f, ApiKey::new("sk_live_other").fingerprint());
        let f = f.as_str();
        assert!(f.starts_with("lemlist#") && f.len() == "lemlist#".len() + 16);
        assert!(!f.contains("secret"));
    }
}
