//! The HTTP boundary of both functions, independent of how a request arrives (API Gateway
//! through `lambda_http`, or the local runner): routing, validation of path ids, CORS, and the
//! one error type that decides every error's status and `{"detail": …}` body.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::json;

use crate::dashboard::{self, Dashboard, Need};
use crate::ids::{CampaignId, InvalidId, MailboxId};
use crate::lemlist::{LemlistClient, LemlistError};

/// Why a function could not start. Named in the cold-start log, and fatal.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Limiter(#[from] crate::limiter::StoreError),
    #[error(transparent)]
    Client(#[from] LemlistError),
}

/// Which Lambda function is answering: each serves its own routes (and `/health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `GET /api/campaigns/dashboard`, `POST /api/campaigns/{id}/set-inactive`.
    Campaigns,
    /// `GET /api/mailboxes`, `POST /api/mailboxes/{id}/start-lemwarm|stop-lemwarm`.
    Mailboxes,
    /// Both, for the local runner.
    All,
}

/// Header set on a dashboard whose rows could not all be fetched completely.
pub const PARTIAL_HEADER: &str = "x-lemdash-partial";

/// Errors as the caller sees them.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("Not Found")]
    NotFound,
    #[error("Method Not Allowed")]
    MethodNotAllowed(&'static str),
    /// lemlist refused the action (its status is passed on, as the legacy backend did).
    #[error("lemlist refused the request: {0}")]
    Refused(LemlistError),
    /// lemlist could not be reached or kept failing.
    #[error("lemlist is unavailable: {0}")]
    Upstream(LemlistError),
    #[error("lemlist's rate limit leaves no room before this request's deadline")]
    Busy,
}

impl From<InvalidId> for ApiError {
    fn from(e: InvalidId) -> Self {
        Self::BadRequest(e.to_string())
    }
}

impl From<LemlistError> for ApiError {
    fn from(e: LemlistError) -> Self {
        match e {
            LemlistError::Status { status, .. } if (400..500).contains(&status) => Self::Refused(e),
            LemlistError::Deadline { .. } => Self::Busy,
            other => Self::Upstream(other),
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Refused(e) => {
                e.status().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            Self::Upstream(LemlistError::RateLimited { .. }) | Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

/// Which origins may call the API from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// Exact origins, or `*` for any.
    pub allowed_origins: Vec<String>,
}

impl Cors {
    fn allows(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == "*" || o == origin)
    }
}

/// Everything a function needs, built once at cold start.
#[derive(Debug, Clone)]
pub struct Api {
    pub client: LemlistClient,
    pub cors: Cors,
    /// How long one request may take in all (API Gateway gives about 29 s).
    pub budget: Duration,
}

fn json_response(status: StatusCode, body: String) -> Response<String> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error_response(e: &ApiError) -> Response<String> {
    let status = e.status();
    if status.is_server_error() {
        tracing::error!(error = %e, status = status.as_u16(), "request failed");
    } else {
        tracing::info!(error = %e, status = status.as_u16(), "request refused");
    }
    let mut r = json_response(status, json!({ "detail": e.to_string() }).to_string());
    if let ApiError::MethodNotAllowed(allow) = e {
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    r
}

fn rows_response<R: Serialize>(dashboard: Dashboard<R>) -> Result<Response<String>, ApiError> {
    let body = serde_json::to_string(&dashboard.rows).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut r = json_response(StatusCode::OK, body);
    if !dashboard.missing.is_empty() {
        tracing::warn!(missing = ?dashboard.missing, "dashboard is partial");
        r.headers_mut().insert(PARTIAL_HEADER, HeaderValue::from(dashboard.missing.len()));
    }
    Ok(r)
}

fn done(message: &str) -> Response<String> {
    json_response(StatusCode::OK, json!({ "success": true, "message": message }).to_string())
}

impl Api {
    /// Reads the configuration (`LEMLIST_*`, `LIMITER_*`, `ALLOWED_ORIGINS`,
    /// `REQUEST_BUDGET_SECS`) and builds the clients: once per cold start.
    pub async fn from_env() -> Result<Self, StartupError> {
        let lemlist = crate::config::lemlist_from_env()?;
        Self::build(lemlist, &crate::config::limiter_from_env()?, crate::config::http_from_env()?).await
    }

    /// Builds the clients from configuration already read.
    pub async fn build(
        lemlist: crate::lemlist::ClientConfig,
        limiter: &crate::config::LimiterConfig,
        http: crate::config::HttpConfig,
    ) -> Result<Self, StartupError> {
        let permits = crate::limiter::for_key(limiter, &lemlist.api_key).await?;
        let client = LemlistClient::new(lemlist, permits)?;
        Ok(Self { client, cors: Cors { allowed_origins: http.allowed_origins }, budget: http.budget })
    }

    /// Answers one request. Never panics on input: every refusal is a 4xx with a message.
    pub async fn handle(&self, function: Function, request: Request<Bytes>) -> Response<String> {
        let started = Instant::now();
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        let origin = request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_owned);
        let mut response = if method == Method::OPTIONS {
            self.preflight(function, &path)
        } else {
            match self.route(function, &method, &path).await {
                Ok(r) => r,
                Err(e) => error_response(&e),
            }
        };
        self.add_cors(response.headers_mut(), origin.as_deref());
        tracing::info!(
            method = %method,
            path,
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        );
        response
    }

    fn preflight(&self, function: Function, path: &str) -> Response<String> {
        match allowed_methods(function, path) {
            Some(methods) => {
                let mut r = Response::new(String::new());
                *r.status_mut() = StatusCode::NO_CONTENT;
                let h = r.headers_mut();
                h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("content-type, authorization"),
                );
                h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
                r
            }
            None => error_response(&ApiError::NotFound),
        }
    }

    fn add_cors(&self, headers: &mut HeaderMap, origin: Option<&str>) {
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = origin.filter(|o| self.cors.allows(o))
            && let Ok(value) = HeaderValue::from_str(origin)
        {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(PARTIAL_HEADER));
        }
    }

    async fn route(
        &self,
        function: Function,
        method: &Method,
        path: &str,
    ) -> Result<Response<String>, ApiError> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let campaigns = matches!(function, Function::Campaigns | Function::All);
        let mailboxes = matches!(function, Function::Mailboxes | Function::All);
        let client = self.client.with_deadline(Instant::now() + self.budget);
        let get = method == Method::GET;
        let post = method == Method::POST;
        match segments.as_slice() {
            ["health"] if get => Ok(json_response(StatusCode::OK, json!({"status": "healthy"}).to_string())),
            ["api", "campaigns", "dashboard"] if campaigns && get => {
                let data = dashboard::fetch(&client, Need::Campaigns).await?;
                rows_response(dashboard::campaigns_dashboard(&data))
            }
            ["api", "campaigns", id, "set-inactive"] if campaigns && post => {
                let id: CampaignId = id.parse()?;
                client.pause_campaign(&id).await?;
                Ok(done("Campaign set to inactive successfully"))
            }
            ["api", "mailboxes"] if mailboxes && get => {
                let data = dashboard::fetch(&client, Need::Mailboxes).await?;
                rows_response(dashboard::mailboxes_dashboard(&data))
            }
            ["api", "mailboxes", id, action @ ("start-lemwarm" | "stop-lemwarm")] if mailboxes && post => {
                let id: MailboxId = id.parse()?;
                if *action == "start-lemwarm" {
                    client.start_lemwarm(&id).await?;
                    Ok(done("Lemwarm started successfully"))
                } else {
                    client.pause_lemwarm(&id).await?;
                    Ok(done("Lemwarm stopped successfully"))
                }
            }
            _ => match allowed_methods(function, path) {
                Some(allow) => Err(ApiError::MethodNotAllowed(allow)),
                None => Err(ApiError::NotFound),
            },
        }
    }
}

/// Runs `function` in Lambda: configuration and clients once, then one call of
/// [`Api::handle`] per API Gateway event.
pub async fn run_lambda(function: Function) -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let api = Api::from_env().await.inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    let api = &api;
    lambda_http::run(lambda_http::service_fn(move |event: lambda_http::Request| async move {
        let (parts, body) = event.into_parts();
        let request = Request::from_parts(parts, Bytes::copy_from_slice(&body));
        Ok::<_, std::convert::Infallible>(api.handle(function, request).await)
    }))
    .await
}

/// The methods a path accepts in `function`, or `None` when the path is not one of its routes.
fn allowed_methods(function: Function, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let campaigns = matches!(function, Function::Campaigns | Function::All);
    let mailboxes = matches!(function, Function::Mailboxes | Function::All);
    match segments.as_slice() {
        ["health"] => Some("GET, OPTIONS"),
        ["api", "campaigns", "dashboard"] if campaigns => Some("GET, OPTIONS"),
        ["api", "campaigns", _, "set-inactive"] if campaigns => Some("POST, OPTIONS"),
        ["api", "mailboxes"] if mailboxes => Some("GET, OPTIONS"),
        ["api", "mailboxes", _, "start-lemwarm" | "stop-lemwarm"] if mailboxes => Some("POST, OPTIONS"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::lemlist::ClientConfig;
    use crate::limiter::Unlimited;
    use crate::secret::ApiKey;

    /// An API whose lemlist is unreachable: enough for everything that must be decided before
    /// any call.
    fn api() -> Api {
        let config = ClientConfig::new("http://127.0.0.1:9/api".parse().unwrap(), ApiKey::new("k"));
        let client = LemlistClient::new(config, Arc::new(Unlimited)).unwrap();
        Api {
            client,
            cors: Cors { allowed_origins: vec!["https://app.example".into()] },
            budget: Duration::from_secs(1),
        }
    }

    fn request(method: Method, path: &str, origin: Option<&str>) -> Request<Bytes> {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        b.body(Bytes::new()).unwrap()
    }

    fn detail(r: &Response<String>) -> String {
        serde_json::from_str::<serde_json::Value>(r.body()).unwrap()["detail"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn invalid_ids_are_refused_before_any_call() {
        for (function, path) in [
            (Function::Campaigns, "/api/campaigns/cam_short/set-inactive"),
            (Function::Mailboxes, "/api/mailboxes/..%2Fteam/start-lemwarm"),
            (Function::Mailboxes, "/api/mailboxes/cam_4HrZbi8xsez4QlrnL/stop-lemwarm"),
        ] {
            let r = api().handle(function, request(Method::POST, path, None)).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
            assert!(detail(&r).starts_with("invalid"), "{}", detail(&r));
        }
    }

    #[tokio::test]
    async fn unknown_routes_wrong_methods_and_the_other_functions_routes() {
        let r = api().handle(Function::Campaigns, request(Method::GET, "/api/nope", None)).await;
        assert_eq!((r.status(), detail(&r).as_str()), (StatusCode::NOT_FOUND, "Not Found"));
        let r = api()
            .handle(Function::Campaigns, request(Method::DELETE, "/api/campaigns/dashboard", None))
            .await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::ALLOW], "GET, OPTIONS");
        let r = api().handle(Function::Campaigns, request(Method::GET, "/api/mailboxes", None)).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "the campaigns function does not serve mailboxes");
        let r = api().handle(Function::Mailboxes, request(Method::GET, "/health", None)).await;
        assert_eq!((r.status(), r.body().as_str()), (StatusCode::OK, r#"{"status":"healthy"}"#));
    }

    #[tokio::test]
    async fn cors_only_for_allowed_origins() {
        let r = api()
            .handle(
                Function::Mailboxes,
                request(Method::OPTIONS, "/api/mailboxes", Some("https://app.example")),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert!(r.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().contains("content-type"));
        let r = api()
            .handle(
                Function::Mailboxes,
                request(Method::OPTIONS, "/api/mailboxes", Some("https://evil.example")),
            )
            .await;
        assert!(r.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }

    #[tokio::test]
    async fn an_unreachable_lemlist_is_a_502_with_a_detail() {
        let r =
            api().handle(Function::Campaigns, request(Method::GET, "/api/campaigns/dashboard", None)).await;
        assert!(
            matches!(r.status(), StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE),
            "{}",
            r.status()
        );
        assert!(detail(&r).starts_with("lemlist"));
    }
}
