//! The one error type of the HTTP boundary: its status, and what the caller is told. A 5xx
//! tells the caller what happened in words a person understands; how it happened (a store's
//! or lemlist's own error text) goes to the log under the request's id.

use http::StatusCode;

use crate::ids::InvalidId;
use crate::lemlist::LemlistError;
use crate::refresh::RefreshError;
use crate::snapshot::SnapshotError;

/// Errors as the caller sees them. `Display` is the full story, for the log only;
/// [`ApiError::detail`] is what the response says.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("Not Found")]
    NotFound,
    /// The path exists with other methods (the router adds the `Allow` header).
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    /// Auth is required and API Gateway's authorizer established no identity.
    #[error("Unauthorized")]
    Unauthorized,
    /// lemlist refused the action with a 4xx: its status and message are passed on, as the
    /// legacy backend did (the message is what the person needs, e.g. a plan limit).
    #[error("lemlist refused the request: {0}")]
    Refused(LemlistError),
    /// lemlist could not be reached or kept failing.
    #[error("lemlist is unavailable: {0}")]
    Upstream(LemlistError),
    /// The request could not be sent before its deadline.
    #[error("lemlist's rate limit leaves no room before this request's deadline: {0}")]
    Busy(LemlistError),
    /// No snapshot yet, and computing one takes longer than a request may wait.
    #[error("this dashboard is being computed for the first time; retry in {retry_after} s")]
    NotReady { retry_after: u64 },
    #[error("snapshot store: {0}")]
    Snapshots(#[from] SnapshotError),
    /// A bug: a task that should not fail did.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<InvalidId> for ApiError {
    fn from(e: InvalidId) -> Self {
        Self::BadRequest(e.to_string())
    }
}

impl From<RefreshError> for ApiError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::Lemlist(e) => e.into(),
            RefreshError::Snapshot(e) => e.into(),
            e @ RefreshError::Busy => Self::Internal(e.to_string()),
        }
    }
}

impl From<LemlistError> for ApiError {
    fn from(e: LemlistError) -> Self {
        match e {
            LemlistError::Status { status, .. } if (400..500).contains(&status) => Self::Refused(e),
            LemlistError::Deadline { .. } => Self::Busy(e),
            other => Self::Upstream(other),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Refused(e) => {
                e.status().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            Self::Upstream(LemlistError::RateLimited { .. }) | Self::Busy(_) | Self::NotReady { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Snapshots(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response's `detail`: never a store's or lemlist's error text, except lemlist's own
    /// message when it refused an action.
    pub fn detail(&self) -> String {
        match self {
            Self::BadRequest(m) => m.clone(),
            Self::NotFound | Self::MethodNotAllowed | Self::Unauthorized | Self::NotReady { .. } => {
                self.to_string()
            }
            Self::Refused(LemlistError::Status { body, .. }) if !body.is_empty() => {
                format!("lemlist refused the request: {body}")
            }
            Self::Refused(_) => "lemlist refused the request".into(),
            Self::Upstream(LemlistError::RateLimited { .. }) => {
                "lemlist's rate limit is used up by other traffic on this key; try again shortly".into()
            }
            Self::Upstream(_) => "lemlist is unavailable or answering with errors; try again shortly".into(),
            Self::Busy(_) => {
                "lemlist's rate limit leaves no room before this request's deadline; try again shortly".into()
            }
            Self::Snapshots(_) => "the snapshot store is unavailable; try again shortly".into(),
            Self::Internal(_) => "lemdash failed unexpectedly; try again shortly".into(),
        }
    }

    /// Seconds to suggest in `Retry-After`, for the statuses that are worth a retry.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::NotReady { retry_after } => Some(*retry_after),
            _ if self.status() == StatusCode::SERVICE_UNAVAILABLE => Some(5),
            _ => None,
        }
    }
}

/// What a failed request's body says, carried from the handler to the front door, which adds
/// the request's id (the `{"detail", "request_id"}` body).
#[derive(Debug, Clone)]
pub struct Failure {
    pub detail: String,
}

/// The status, its headers and the [`Failure`]; logged with the full story, inside the
/// request's span.
impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        use http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, status = status.as_u16(), "request failed");
        } else {
            tracing::info!(error = %self, status = status.as_u16(), "request refused");
        }
        let mut r = status.into_response();
        if let Self::Unauthorized = self {
            r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after() {
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        r.extensions_mut().insert(Failure { detail: self.detail() });
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, body: &str) -> LemlistError {
        LemlistError::Status { endpoint: "POST /lemwarm/{id}/pause", status: code, body: body.into() }
    }

    #[test]
    fn a_refusal_keeps_lemlists_status_and_message() {
        let e = ApiError::from(status(402, "Upgrade your plan to use lemwarm"));
        assert_eq!(e.status(), StatusCode::PAYMENT_REQUIRED);
        assert_eq!(e.detail(), "lemlist refused the request: Upgrade your plan to use lemwarm");
    }

    #[test]
    fn server_errors_say_what_happened_without_the_upstream_text() {
        let cases = [
            ApiError::from(status(500, "stack trace at db.js:42")),
            ApiError::from(LemlistError::Transport {
                endpoint: "GET /team",
                message: "connection refused (os 111)".into(),
            }),
            ApiError::from(LemlistError::Decode {
                endpoint: "GET /team",
                message: "expected `,` at line 1".into(),
            }),
            ApiError::Snapshots(SnapshotError::Store("ResourceNotFoundException: table lemdash-snap".into())),
            ApiError::Internal("task panicked".into()),
        ];
        for e in cases {
            assert!(e.status().is_server_error(), "{e}");
            let detail = e.detail();
            for leak in ["stack trace", "os 111", "line 1", "ResourceNotFound", "panicked", "GET /team"] {
                assert!(!detail.contains(leak), "{detail}");
            }
            assert!(detail.ends_with("try again shortly"), "{detail}");
        }
    }

    #[test]
    fn busy_and_rate_limited_are_503_with_a_retry() {
        let busy =
            ApiError::from(LemlistError::Deadline { endpoint: "x", wait: std::time::Duration::from_secs(3) });
        assert_eq!((busy.status(), busy.retry_after()), (StatusCode::SERVICE_UNAVAILABLE, Some(5)));
        let limited = ApiError::from(LemlistError::RateLimited { endpoint: "x", attempts: 5 });
        assert_eq!(limited.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ApiError::NotReady { retry_after: 12 }.retry_after(), Some(12));
        assert_eq!(ApiError::NotFound.retry_after(), None);
    }
}
