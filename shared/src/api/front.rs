//! The front door every request goes through, whichever function and host answers it: it
//! names the request (API Gateway's own id in Lambda, a generated one elsewhere), runs it in
//! that request's span, writes the contract's `{"detail", "request_id"}` body of a failure,
//! and logs one line per request.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;
use http::header::{CONTENT_TYPE, HeaderValue};
use serde_json::json;
use tracing::Instrument;

use super::REQUEST_ID_HEADER;
use super::error::Failure;

/// The id a request is known by in the logs: API Gateway's request id in Lambda, generated
/// elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    fn generate() -> Self {
        Self(format!("{:016x}", rand::random::<u64>()))
    }

    /// API Gateway's id when the request came through it (or a caller set one), else a new one.
    fn of(request: &Request) -> Self {
        request
            .extensions()
            .get::<Self>()
            .cloned()
            .or_else(|| super::lambda::gateway_request_id(request))
            .unwrap_or_else(Self::generate)
    }
}

pub async fn front(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = RequestId::of(&request);
    request.extensions_mut().insert(id.clone());
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    // A hook's path holds its token: only the route template is logged.
    let path = match request.uri().path() {
        p if p.starts_with(crate::hooks::PATH) => {
            route.clone().unwrap_or_else(|| crate::hooks::PATH.to_owned())
        }
        p => p.to_owned(),
    };
    let head = request.method() == Method::HEAD;
    let span = tracing::info_span!("request", method = %request.method(), route, request_id = %id.0);
    let mut response = next.run(request).instrument(span.clone()).await;
    if let Some(failure) = response.extensions_mut().remove::<Failure>()
        && !head
    {
        *response.body_mut() =
            Body::from(json!({ "detail": failure.detail, "request_id": id.0 }).to_string());
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    span.in_scope(|| {
        tracing::info!(
            path,
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        );
    });
    response
}
