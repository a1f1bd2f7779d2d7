//! A local endpoint that answers as a Slack incoming webhook does (200 `ok`, 429 with
//! `Retry-After`, 404 `no_service`, 400 `invalid_payload`) and records every post.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// How the endpoint answers one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Ok,
    /// 429 with `Retry-After` of this many seconds.
    RateLimited(u64),
    /// 404 `no_service`: the webhook was revoked.
    NoService,
}

/// One post received.
#[derive(Debug, Clone)]
pub struct Post {
    pub at: Instant,
    pub body: Value,
    pub status: u16,
}

#[derive(Debug, Default)]
struct Inner {
    posts: Vec<Post>,
    /// Answers to give first, in order; then `otherwise`.
    script: VecDeque<Reply>,
    otherwise: Option<Reply>,
}

/// The endpoint, on a free port of 127.0.0.1.
#[derive(Debug, Clone)]
pub struct SlackHook {
    /// The webhook's URL (as secret as a real one would be).
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

async fn receive(State(inner): State<Arc<Mutex<Inner>>>, body: String) -> Response {
    let parsed: Option<Value> = serde_json::from_str(&body).ok();
    let mut inner = inner.lock().unwrap();
    let reply = inner.script.pop_front().or(inner.otherwise).unwrap_or(Reply::Ok);
    let valid = parsed.as_ref().is_some_and(|v| v["text"].is_string() || v["blocks"].is_array());
    let (status, text, retry) = match reply {
        _ if !valid => (StatusCode::BAD_REQUEST, "invalid_payload", None),
        Reply::Ok => (StatusCode::OK, "ok", None),
        Reply::RateLimited(secs) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", Some(secs)),
        Reply::NoService => (StatusCode::NOT_FOUND, "no_service", None),
    };
    inner.posts.push(Post {
        at: Instant::now(),
        body: parsed.unwrap_or(Value::Null),
        status: status.as_u16(),
    });
    let mut response = (status, text).into_response();
    if let Some(secs) = retry {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

impl SlackHook {
    pub async fn start() -> SlackHook {
        const PATH: &str = "/services/T000/B000/XXXXXXXX";
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new().route(PATH, axum::routing::post(receive)).with_state(inner.clone());
        let url = format!("{}{PATH}", crate::listen(app).await);
        SlackHook { url, inner }
    }

    /// Answers `replies` to the next posts, in order.
    pub fn script(&self, replies: &[Reply]) {
        self.inner.lock().unwrap().script.extend(replies.iter().copied());
    }

    /// Answers `reply` once the script is used up.
    pub fn otherwise(&self, reply: Reply) {
        self.inner.lock().unwrap().otherwise = Some(reply);
    }

    pub fn posts(&self) -> Vec<Post> {
        self.inner.lock().unwrap().posts.clone()
    }
}
