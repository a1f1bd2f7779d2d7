//! The console: one page, one script and one style sheet, compiled into the binary and served
//! by lemdash itself (`GET /`, `GET /console/{asset}`), each with a strong ETag; and the page's
//! sign-in settings (`GET /console/config`). No build step, no CDN: the page asks lemdash alone
//! (and the identity provider, when it signs in).

use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use super::{Api, ApiError};

/// A file of the console, with its validator.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: OnceLock<String>,
}

impl Asset {
    const fn new(body: &'static str, content_type: &'static str) -> Self {
        Self { body, content_type, etag: OnceLock::new() }
    }

    fn etag(&self) -> &str {
        self.etag.get_or_init(|| {
            let digest = Sha256::digest(self.body.as_bytes());
            let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
            format!("\"{hex}\"")
        })
    }
}

static PAGE: Asset = Asset::new(include_str!("../../console/index.html"), "text/html; charset=utf-8");
static SCRIPT: Asset = Asset::new(include_str!("../../console/console.js"), "text/javascript; charset=utf-8");
static STYLE: Asset = Asset::new(include_str!("../../console/console.css"), "text/css; charset=utf-8");

/// Where the page may connect besides lemdash: the identity provider's token endpoint.
fn policy(api: &Api) -> String {
    let token_origin = api
        .sign_in
        .as_ref()
        .and_then(|s| reqwest::Url::parse(&s.token_url).ok())
        .map(|u| format!(" {}", u.origin().ascii_serialization()))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' blob:{token_origin}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// `asset`, or a 304 when the browser holds this very version.
fn serve(asset: &Asset, headers: &HeaderMap, policy: Option<String>) -> Response {
    let etag = asset.etag();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response =
        if fresh { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::ETAG, HeaderValue::from_str(etag).expect("hex in quotes"));
    // Revalidated on every load: a deployment shows at once, and an unchanged file costs a 304.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Some(p) = policy.and_then(|p| HeaderValue::from_str(&p).ok()) {
        h.insert(header::CONTENT_SECURITY_POLICY, p);
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
    response
}

pub(super) async fn page(State(api): State<Api>, headers: HeaderMap) -> Response {
    serve(&PAGE, &headers, Some(policy(&api)))
}

pub(super) async fn asset(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match name.as_str() {
        "console.js" => Ok(serve(&SCRIPT, &headers, None)),
        "console.css" => Ok(serve(&STYLE, &headers, None)),
        "config" => Ok(config(&api)),
        _ => Err(ApiError::NotFound),
    }
}

/// How the page signs in: `{"auth":{"mode":"none"}}`, or `jwt` with the provider's endpoints.
fn config(api: &Api) -> Response {
    let auth = match &api.sign_in {
        None => serde_json::json!({"mode": "none"}),
        Some(s) => serde_json::json!({
            "mode": "jwt",
            "authorize_url": s.authorize_url,
            "token_url": s.token_url,
            "client_id": s.client_id,
            "scope": s.scope,
        }),
    };
    let mut r = super::response::json(StatusCode::OK, serde_json::json!({ "auth": auth }).to_string());
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use http::{Method, Request};

    use crate::api::Function;
    use crate::api::tests::{api, body, handle, request};

    #[tokio::test]
    async fn the_page_and_its_assets_are_served_with_validators_and_304s() {
        let (parts, text) =
            body(handle(&api(), Function::Campaigns, request(Method::GET, "/", None)).await).await;
        assert_eq!(parts.status, 200);
        assert!(parts.headers["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(text.contains("console/console.js") && text.contains("<table id=\"campaigns-table\""));
        let csp = parts.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        for (path, kind, needle) in [
            ("/console/console.js", "text/javascript", "code_challenge_method"),
            ("/console/console.css", "text/css", "focus-visible"),
        ] {
            let (parts, text) =
                body(handle(&api(), Function::Campaigns, request(Method::GET, path, None)).await).await;
            assert!(parts.headers["content-type"].to_str().unwrap().starts_with(kind), "{path}");
            assert!(text.contains(needle), "{path}");
            let etag = parts.headers["etag"].clone();
            let again =
                Request::builder().uri(path).header("if-none-match", etag).body(axum::body::Body::empty());
            let (parts, text) = body(handle(&api(), Function::Campaigns, again.unwrap()).await).await;
            assert_eq!((parts.status.as_u16(), text.as_str()), (304, ""), "{path}");
        }
        let r = handle(&api(), Function::Campaigns, request(Method::GET, "/console/secrets.txt", None)).await;
        assert_eq!(r.status(), 404);
        let r = handle(&api(), Function::Mailboxes, request(Method::GET, "/", None)).await;
        assert_eq!(r.status(), 404, "the campaigns function serves the console");
    }

    #[tokio::test]
    async fn the_page_says_whether_to_sign_in() {
        let (_, text) =
            body(handle(&api(), Function::Campaigns, request(Method::GET, "/console/config", None)).await)
                .await;
        assert_eq!(text, r#"{"auth":{"mode":"none"}}"#);
        let mut with = api();
        with.sign_in = Some(crate::config::SignIn {
            authorize_url: "https://id.example/authorize".into(),
            token_url: "https://id.example/token".into(),
            client_id: "c1".into(),
            scope: "openid".into(),
        });
        let (_, text) =
            body(handle(&with, Function::Campaigns, request(Method::GET, "/console/config", None)).await)
                .await;
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!((v["auth"]["mode"].as_str(), v["auth"]["client_id"].as_str()), (Some("jwt"), Some("c1")));
        let (parts, _) =
            body(handle(&with, Function::Campaigns, request(Method::GET, "/", None)).await).await;
        let csp = parts.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("connect-src 'self' blob: https://id.example;"), "{csp}");
    }
}
