//! Responses: JSON bodies, stored dashboards with their validators, errors, and CORS.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use super::fresh::Answered;
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
pub const EXPOSED_HEADERS: [&str; 7] = [
    "etag",
    "x-lemdash-activity-as-of",
    "x-lemdash-age",
    "x-lemdash-partial",
    "x-lemdash-refresh",
    "x-lemdash-unattributed",
    "x-request-id",
];
/// Header on a dashboard whose activity figures delivered events moved since its refresh: until
/// when they count every delivery (RFC 3339). The rest of the rows are as of `Last-Modified`.
pub const ACTIVITY_AS_OF_HEADER: &str = "x-lemdash-activity-as-of";
/// Header on the mailboxes dashboard: the activity no mailbox could be credited with, over 7
/// and 30 days, as compact JSON (`{"7d":{"sent":…},"30d":{…}}`).
pub const UNATTRIBUTED_HEADER: &str = "x-lemdash-unattributed";
/// What a browser may send (the deployment's CORS configuration allows the same).
pub const ALLOWED_HEADERS: [&str; 3] = ["authorization", "content-type", "if-none-match"];

pub fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// `{"success": true, "message": …}`: an action that lemlist carried out.
pub fn done(message: &str) -> Response {
    json(StatusCode::OK, json!({ "success": true, "message": message }).to_string())
}

/// A list as a JSON array: `[]` when there is none.
pub fn list<T: serde::Serialize>(items: Option<&Vec<T>>) -> String {
    serde_json::to_string(items.map_or(&[][..], |v| v.as_slice())).expect("history and alerts serialize")
}

/// Whether `If-None-Match` names `etag` (or is `*`).
pub fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == etag))
}

/// A dashboard request's answer: the stored dashboard, and how a forced refresh went.
pub fn dashboard(answered: Answered, headers: &HeaderMap, now: DateTime<Utc>) -> Response {
    let mut r = snapshot(answered.served, headers, now);
    if let Some(how) = answered.forced {
        r.headers_mut().insert(REFRESH_HEADER, HeaderValue::from_static(how.as_str()));
    }
    r
}

/// A stored dashboard as the response: the contract's array, or 304 when the caller has it;
/// its age as of `now`.
pub fn snapshot(served: Served, headers: &HeaderMap, now: DateTime<Utc>) -> Response {
    let mut r = if matches_etag(headers, &served.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        json(StatusCode::OK, served.body)
    };
    let age = (now - served.computed_at).num_seconds().max(0);
    let last_modified = served.computed_at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let h = r.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&served.etag) {
        h.insert(header::ETAG, etag);
    }
    if let Ok(date) = HeaderValue::from_str(&last_modified) {
        h.insert(header::LAST_MODIFIED, date);
    }
    h.insert(AGE_HEADER, HeaderValue::from(age));
    if let Some(at) = served.activity_as_of.filter(|at| *at > served.computed_at)
        && let Ok(value) = HeaderValue::from_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    {
        h.insert(ACTIVITY_AS_OF_HEADER, value);
    }
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

/// CORS for `allowed_origins` (exact origins, or `*` for any) on every answer, whatever its
/// status, and the preflights: the headers a browser may send and read are the deployment's.
pub fn cors(allowed_origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> =
        allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    let allow_origin = if allowed_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins)
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::HEAD, Method::POST])
        .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
        .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
        .max_age(Duration::from_secs(600))
        // Set by [`vary_origin`] instead, as `Origin`, on every answer preflights included.
        .vary(Vec::<HeaderName>::new())
}

/// `Vary: Origin` on every answer: caches keep each origin's answer apart.
pub fn vary_origin() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(header::VARY, HeaderValue::from_static("Origin"))
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
    fn lists_are_arrays_even_when_there_is_none() {
        assert_eq!(list::<u8>(None), "[]");
        assert_eq!(list(Some(&vec![1, 2])), "[1,2]");
    }
}
