//! Responses: JSON bodies, stored dashboards with their validators, errors, and CORS.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use serde_json::json;

use super::error::ApiError;
use crate::snapshot::Served;

/// Header set on a dashboard whose rows could not all be fetched completely.
pub const PARTIAL_HEADER: &str = "x-lemdash-partial";
/// Header giving a served dashboard's age in whole seconds (since its data was fetched).
pub const AGE_HEADER: &str = "x-lemdash-age";
/// Header saying how a `?refresh=true` was answered: `computed`, `joined` (a refresh was
/// running), `requested` (of the refresh function), `recent` (the newest snapshot is younger than
/// `FORCED_REFRESH_MIN_SECS`) or `pending` (the refresh outlived the request; the previous
/// snapshot is served).
pub const REFRESH_HEADER: &str = "x-lemdash-refresh";
/// Header naming the request in the logs: API Gateway's request id in Lambda, a generated one
/// elsewhere.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// What a browser script may read of a response (the deployment's CORS configuration exposes
/// the same).
pub const EXPOSED_HEADERS: [&str; 6] = [
    "etag",
    "x-lemdash-age",
    "x-lemdash-partial",
    "x-lemdash-refresh",
    "x-lemdash-unattributed",
    "x-request-id",
];
/// Header on the mailboxes dashboard: the activity no mailbox could be credited with, over 7
/// and 30 days, as compact JSON (`{"7d":{"sent":…},"30d":{…}}`).
pub const UNATTRIBUTED_HEADER: &str = "x-lemdash-unattributed";
/// What a browser may send (the deployment's CORS configuration allows the same).
pub const ALLOWED_HEADERS: [&str; 3] = ["authorization", "content-type", "if-none-match"];

pub fn json(status: StatusCode, body: String) -> Response<String> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// `{"success": true, "message": …}`: an action that lemlist carried out.
pub fn done(message: &str) -> Response<String> {
    json(StatusCode::OK, json!({ "success": true, "message": message }).to_string())
}

/// The contract's `{"detail": …}`, with the request's id, logged with its full story.
pub fn error(e: &ApiError, request_id: &str) -> Response<String> {
    let status = e.status();
    if status.is_server_error() {
        tracing::error!(error = %e, status = status.as_u16(), "request failed");
    } else {
        tracing::info!(error = %e, status = status.as_u16(), "request refused");
    }
    let mut r = json(status, json!({ "detail": e.detail(), "request_id": request_id }).to_string());
    let h = r.headers_mut();
    if let ApiError::MethodNotAllowed(allow) = e
        && let Ok(allow) = HeaderValue::from_str(allow)
    {
        h.insert(header::ALLOW, allow);
    }
    if let ApiError::Unauthorized = e {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(seconds) = e.retry_after() {
        h.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    r
}

/// Whether `If-None-Match` names `etag` (or is `*`).
pub fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == etag))
}

/// A stored dashboard as the response: the contract's array, or 304 when the caller has it.
pub fn snapshot(served: Served, headers: &HeaderMap) -> Response<String> {
    let mut r = if matches_etag(headers, &served.etag) {
        let mut r = Response::new(String::new());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        json(StatusCode::OK, served.body)
    };
    let age = (chrono::Utc::now() - served.computed_at).num_seconds().max(0);
    let last_modified = served.computed_at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let h = r.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&served.etag) {
        h.insert(header::ETAG, etag);
    }
    if let Ok(date) = HeaderValue::from_str(&last_modified) {
        h.insert(header::LAST_MODIFIED, date);
    }
    h.insert(AGE_HEADER, HeaderValue::from(age));
    // The browser may keep it but must ask again each time: a 304 costs milliseconds.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    if let Some(u) = &served.unattributed
        && let Ok(value) = HeaderValue::from_str(&serde_json::to_string(u).expect("figures serialize"))
    {
        h.insert(UNATTRIBUTED_HEADER, value);
    }
    if !served.missing.is_empty() {
        tracing::warn!(missing = ?served.missing, "dashboard is partial");
        h.insert(PARTIAL_HEADER, HeaderValue::from(served.missing.len()));
    }
    r
}

/// The answer to a CORS preflight of a path that accepts `methods`.
pub fn preflight(methods: &str) -> Response<String> {
    let mut r = Response::new(String::new());
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    if let Ok(methods) = HeaderValue::from_str(methods) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
    }
    if let Ok(allowed) = HeaderValue::from_str(&ALLOWED_HEADERS.join(", ")) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
    }
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    r
}

/// Which origins may call the API from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// Exact origins, or `*` for any.
    allowed_origins: Vec<String>,
    /// [`EXPOSED_HEADERS`] as one header value, made once.
    exposed: HeaderValue,
}

impl Cors {
    pub fn new(allowed_origins: Vec<String>) -> Self {
        let exposed = HeaderValue::from_str(&EXPOSED_HEADERS.join(", ")).expect("header names are ASCII");
        Self { allowed_origins, exposed }
    }

    fn allows(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == "*" || o == origin)
    }

    /// Adds the CORS headers of a response to a request from `origin`, whatever its status.
    pub fn apply(&self, headers: &mut HeaderMap, origin: Option<&str>) {
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = origin.filter(|o| self.allows(o))
            && let Ok(value) = HeaderValue::from_str(origin)
        {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, self.exposed.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_matching() {
        let mut h = HeaderMap::new();
        assert!(!matches_etag(&h, "\"abc\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\", W/\"abc\""));
        assert!(matches_etag(&h, "\"abc\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches_etag(&h, "\"abc\""));
    }

    #[test]
    fn errors_carry_the_request_id_and_their_headers() {
        let r = error(&ApiError::MethodNotAllowed("GET, OPTIONS".into()), "req-1");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::ALLOW], "GET, OPTIONS");
        let body: serde_json::Value = serde_json::from_str(r.body()).unwrap();
        assert_eq!(body, json!({"detail": "Method Not Allowed", "request_id": "req-1"}));
        let r = error(&ApiError::NotReady { retry_after: 7 }, "req-2");
        assert_eq!(r.headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn cors_headers_only_for_allowed_origins_and_vary_always() {
        let cors = Cors::new(vec!["https://app.example".into()]);
        let mut h = HeaderMap::new();
        cors.apply(&mut h, Some("https://app.example"));
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert!(h[header::ACCESS_CONTROL_EXPOSE_HEADERS].to_str().unwrap().contains("x-request-id"));
        let mut h = HeaderMap::new();
        cors.apply(&mut h, Some("https://evil.example"));
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        assert_eq!(h[header::VARY], "Origin");
    }
}
