//! A small identity provider for the console's sign-in (authorization code with PKCE), and the
//! gate API Gateway's JWT authorizer is in AWS: `/api/` calls need a token it issued.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "lemdash-console";

#[derive(Debug, Default)]
struct Inner {
    /// Code → (challenge, redirect URI).
    codes: BTreeMap<String, (String, String)>,
    tokens: BTreeSet<String>,
    issued: u32,
    authorizations: u32,
    /// Every `/api/` call the gate saw: its path, and whether it carried a valid token.
    calls: Vec<(String, bool)>,
    /// The sign-in requests' query strings.
    requests: Vec<BTreeMap<String, String>>,
}

/// The provider, on a free port of 127.0.0.1.
#[derive(Debug, Clone)]
pub struct Identity {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

async fn authorize(State(inner): State<Arc<Mutex<Inner>>>, RawQuery(query): RawQuery) -> Response {
    let q: BTreeMap<String, String> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let mut inner = inner.lock().unwrap();
    inner.requests.push(q.clone());
    let ok = q.get("response_type").map(String::as_str) == Some("code")
        && q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && q.get("code_challenge_method").map(String::as_str) == Some("S256");
    let (Some(redirect), Some(challenge), true) = (q.get("redirect_uri"), q.get("code_challenge"), ok) else {
        return (StatusCode::BAD_REQUEST, "invalid_request").into_response();
    };
    inner.authorizations += 1;
    let code = format!("code-{}", inner.authorizations);
    inner.codes.insert(code.clone(), (challenge.clone(), redirect.clone()));
    let state = q.get("state").cloned().unwrap_or_default();
    // The person is already signed in at the provider: straight back, with a code.
    Redirect::to(&format!("{redirect}?code={code}&state={state}")).into_response()
}

async fn token(State(inner): State<Arc<Mutex<Inner>>>, body: String) -> Response {
    let form: BTreeMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let mut inner = inner.lock().unwrap();
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let answer = match inner.codes.remove(&field("code")) {
        Some((challenge, redirect))
            if field("grant_type") == "authorization_code"
                && field("client_id") == CLIENT_ID
                && field("redirect_uri") == redirect
                && base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(field("code_verifier").as_bytes()))
                    == challenge =>
        {
            inner.issued += 1;
            let token = format!("token-{}", inner.issued);
            inner.tokens.insert(token.clone());
            let body = serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600});
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
        }
        _ => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"error":"invalid_grant"}"#,
        )
            .into_response(),
    };
    let mut answer = answer;
    answer.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    answer
}

/// In front of lemdash: a `/api/` call without a token this provider issued (and did not
/// revoke) is a 401, as API Gateway's authorizer answers.
pub async fn gate(State(id): State<Identity>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if !path.starts_with("/api/") {
        return next.run(request).await;
    }
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let valid = {
        let mut inner = id.inner.lock().unwrap();
        let valid = bearer.is_some_and(|t| inner.tokens.contains(&t));
        inner.calls.push((path, valid));
        valid
    };
    if !valid {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"message":"Unauthorized"}"#,
        )
            .into_response();
    }
    next.run(request).await
}

impl Identity {
    pub async fn start() -> Identity {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .route("/authorize", axum::routing::get(authorize))
            .route("/token", axum::routing::post(token))
            .with_state(inner.clone());
        Identity { url: crate::listen(app).await, inner }
    }

    /// Every token issued so far stops being accepted (as when one expires).
    pub fn revoke_all(&self) {
        self.inner.lock().unwrap().tokens.clear();
    }

    /// Sign-ins so far (codes issued) and tokens issued.
    pub fn counts(&self) -> (u32, u32) {
        let inner = self.inner.lock().unwrap();
        (inner.authorizations, inner.issued)
    }

    pub fn calls(&self) -> Vec<(String, bool)> {
        self.inner.lock().unwrap().calls.clone()
    }

    pub fn requests(&self) -> Vec<BTreeMap<String, String>> {
        self.inner.lock().unwrap().requests.clone()
    }
}
