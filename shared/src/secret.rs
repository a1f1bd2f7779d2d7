//! The lemlist API key. It is only ever read by the HTTP layer that puts it in the
//! `Authorization` header; everything else sees `***`.

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

    /// A stable, non-reversible name for the key (the first 16 hex digits of its SHA-256), for
    /// store keys and logs: `lemlist#3f2a…`.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("lemlist#{hex}")
    }
}

/// Reads the key from AWS Secrets Manager: the secret `id` (a name or an ARN) holds the key as
/// its plain string value. Called once per cold start; the key is never logged, and errors
/// name the secret, not its value.
pub async fn from_secrets_manager(id: &str) -> Result<ApiKey, String> {
    let client = aws_sdk_secretsmanager::Client::new(crate::dynamo::sdk_config().await);
    let out = client.get_secret_value().secret_id(id).send().await.map_err(|e| {
        format!("cannot read secret {id}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(&e))
    })?;
    match out.secret_string().map(str::trim) {
        Some(key) if !key.is_empty() => Ok(ApiKey::new(key)),
        _ => Err(format!("secret {id} has no string value")),
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
        assert!(f.starts_with("lemlist#") && f.len() == "lemlist#".len() + 16);
        assert!(!f.contains("secret"));
    }
}
