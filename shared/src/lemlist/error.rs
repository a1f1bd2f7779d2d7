//! The one error type of the lemlist boundary. Messages name the endpoint and what went wrong;
//! they never contain the API key (it only travels in the `Authorization` header).

use std::time::Duration;

use crate::limiter::PermitError;

/// How many bytes of a lemlist error body are kept: enough to read `Campaign not found`, never a
/// whole HTML page.
pub const BODY_SNIPPET: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LemlistError {
    /// lemlist refused the request with a 4xx other than 429 (not retried), or still answered
    /// 5xx after every retry.
    #[error("lemlist answered {status} on {endpoint}: {body}")]
    Status { endpoint: &'static str, status: u16, body: String },
    /// Still rate limited after every retry.
    #[error("lemlist kept answering 429 on {endpoint} after {attempts} attempts")]
    RateLimited { endpoint: &'static str, attempts: u32 },
    /// A 200 whose body is a web page: lemlist's catch-all for unknown routes.
    #[error("lemlist answered {endpoint} with an HTML page instead of JSON")]
    Html { endpoint: &'static str },
    /// A body that is not the JSON the endpoint promises.
    #[error("lemlist's answer to {endpoint} could not be decoded: {message}")]
    Decode { endpoint: &'static str, message: String },
    /// No answer: timeout, refused or dropped connection, after every retry.
    #[error("lemlist could not be reached on {endpoint}: {message}")]
    Transport { endpoint: &'static str, message: String },
    /// The request could not be made before the caller's deadline.
    #[error("no time left to call {endpoint} before the deadline (would wait {wait:?})")]
    Deadline { endpoint: &'static str, wait: Duration },
}

impl LemlistError {
    pub(crate) fn from_permit(endpoint: &'static str, err: PermitError) -> Self {
        match err {
            PermitError::Deadline { wait } => Self::Deadline { endpoint, wait },
        }
    }

    /// The HTTP status lemlist answered, when it answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }
}

/// Cuts a body to [`BODY_SNIPPET`] bytes on a character boundary.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut end = text.len().min(BODY_SNIPPET);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_keeps_two_hundred_bytes_on_a_char_boundary() {
        assert_eq!(snippet(b"  Campaign not found\n"), "Campaign not found");
        let long = "é".repeat(300);
        let s = snippet(long.as_bytes());
        assert!(s.len() <= BODY_SNIPPET && s.chars().all(|c| c == 'é'));
    }
}
