//! The HTTP boundary of both functions, independent of how a request arrives (API Gateway
//! through `lambda_http`, or the local runner): routing, validation of path ids, CORS, and the
//! one error type that decides every error's status and `{"detail": …}` body.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::config::{SnapshotConfig, Trigger};
use crate::ids::{CampaignId, InvalidId, MailboxId};
use crate::lemlist::{LemlistClient, LemlistError};
use crate::refresh::{Outcome, RefreshError, Refresher};
use crate::snapshot::{Action, Board, Served, SnapshotError};

pub use crate::config::StartupError;

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

impl Function {
    /// The Lambda binary that serves this function's routes.
    pub fn binary(self) -> &'static str {
        match self {
            Self::Campaigns => "lemdash-campaigns",
            Self::Mailboxes => "lemdash-mailboxes",
            Self::All => "lemdash",
        }
    }
}

/// Every route, as API Gateway declares it (`METHOD /path/{param}`), and the function that
/// serves it. `/health` is served by both; the deployment routes it to the campaigns function.
pub const ROUTES: [(Function, &str); 6] = [
    (Function::Campaigns, "GET /health"),
    (Function::Campaigns, "GET /api/campaigns/dashboard"),
    (Function::Campaigns, "POST /api/campaigns/{campaign_id}/set-inactive"),
    (Function::Mailboxes, "GET /api/mailboxes"),
    (Function::Mailboxes, "POST /api/mailboxes/{mailbox_id}/start-lemwarm"),
    (Function::Mailboxes, "POST /api/mailboxes/{mailbox_id}/stop-lemwarm"),
];

/// Header set on a dashboard whose rows could not all be fetched completely.
pub const PARTIAL_HEADER: &str = "x-lemdash-partial";
/// Header giving a served dashboard's age in whole seconds (since its data was fetched).
pub const AGE_HEADER: &str = "x-lemdash-age";
/// A refresh spawned in this process.
type RunningRefresh = tokio::task::JoinHandle<Result<Outcome, RefreshError>>;

/// How often a request waiting for a refresh looks at the store.
const POLL: Duration = Duration::from_millis(250);

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
    /// Auth is required and API Gateway's authorizer established no identity.
    #[error("Unauthorized")]
    Unauthorized,
    /// No snapshot yet, and computing one takes longer than a request may wait.
    #[error("this dashboard is being computed for the first time; retry in {retry_after} s")]
    NotReady { retry_after: u64 },
    #[error("{0}")]
    Snapshots(#[from] SnapshotError),
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
        }
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
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Refused(e) => {
                e.status().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            Self::Upstream(LemlistError::RateLimited { .. }) | Self::Busy | Self::NotReady { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Snapshots(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
    pub cors: Cors,
    /// How long one request may take in all (API Gateway gives about 29 s).
    pub budget: Duration,
    /// The key's snapshots and their refresh.
    pub refresher: Refresher,
    /// How a request that needs a refresh gets one started.
    pub trigger: Trigger,
    /// Whether Lambda requests must carry the authorizer's identity ([`handle_event`]).
    pub auth_required: bool,
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
    if let ApiError::Unauthorized = e {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let retry_after = match e {
            ApiError::NotReady { retry_after } => *retry_after,
            _ => 5,
        };
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    }
    r
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn matches_etag(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == etag))
}

/// A stored dashboard as the response: the contract's array, or 304 when the caller has it.
fn snapshot_response(served: Served, headers: &HeaderMap) -> Response<String> {
    let fresh = matches_etag(headers, &served.etag);
    let mut r = if fresh {
        let mut r = Response::new(String::new());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        json_response(StatusCode::OK, served.body)
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
    if !served.missing.is_empty() {
        tracing::warn!(missing = ?served.missing, "dashboard is partial");
        h.insert(PARTIAL_HEADER, HeaderValue::from(served.missing.len()));
    }
    r
}

/// `?refresh=true` (or `1`); `false`, `0` or absent is no refresh; anything else is a 400.
fn wants_refresh(query: Option<&str>) -> Result<bool, ApiError> {
    let mut wanted = false;
    for (name, value) in query.unwrap_or("").split('&').filter_map(|p| p.split_once('=').or(Some((p, "")))) {
        if name == "refresh" {
            wanted = match value {
                "true" | "1" => true,
                "false" | "0" => false,
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "refresh must be true or false, not {other:?}"
                    )));
                }
            };
        }
    }
    Ok(wanted)
}

fn done(message: &str) -> Response<String> {
    json_response(StatusCode::OK, json!({ "success": true, "message": message }).to_string())
}

impl Api {
    /// The lemlist client (the refresher's: one connection pool and one permit source).
    pub fn client(&self) -> &LemlistClient {
        self.refresher.client()
    }

    /// Reads the configuration (`LEMLIST_*`, `LIMITER_*`, `SNAPSHOT_TABLE`, `REFRESH_*`,
    /// `ALLOWED_ORIGINS`, `REQUEST_BUDGET_SECS`, `AUTH_REQUIRED`) and builds the clients: once
    /// per cold start.
    pub async fn from_env() -> Result<Self, StartupError> {
        let lemlist = crate::config::lemlist_resolved().await?;
        let limiter = crate::config::limiter_from_env()?;
        let snapshots = crate::config::snapshots_from_env()?;
        Self::build(lemlist, &limiter, &snapshots, crate::config::http_from_env()?).await
    }

    /// Builds the clients from configuration already read.
    pub async fn build(
        lemlist: crate::lemlist::ClientConfig,
        limiter: &crate::config::LimiterConfig,
        snapshots: &SnapshotConfig,
        http: crate::config::HttpConfig,
    ) -> Result<Self, StartupError> {
        let refresher = Refresher::build(lemlist, limiter, snapshots).await?;
        Ok(Self {
            refresher,
            cors: Cors { allowed_origins: http.allowed_origins },
            budget: http.budget,
            trigger: snapshots.trigger,
            auth_required: http.auth_required,
        })
    }

    /// Answers one request. Never panics on input: every refusal is a 4xx with a message.
    pub async fn handle(&self, function: Function, request: Request<Bytes>) -> Response<String> {
        let started = Instant::now();
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        let origin = request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_owned);
        let mut response = if method == Method::OPTIONS {
            self.preflight(function, &path)
        } else {
            match self.route(function, &request).await {
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
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("x-lemdash-partial, x-lemdash-age, etag"),
            );
        }
    }

    async fn route(
        &self,
        function: Function,
        request: &Request<Bytes>,
    ) -> Result<Response<String>, ApiError> {
        let (method, path) = (request.method(), request.uri().path());
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let campaigns = matches!(function, Function::Campaigns | Function::All);
        let mailboxes = matches!(function, Function::Mailboxes | Function::All);
        let deadline = Instant::now() + self.budget;
        let client = self.client().with_deadline(deadline);
        let get = method == Method::GET;
        let post = method == Method::POST;
        match segments.as_slice() {
            ["health"] if get => Ok(json_response(StatusCode::OK, json!({"status": "healthy"}).to_string())),
            ["api", "campaigns", "dashboard"] if campaigns && get => {
                self.dashboard(Board::Campaigns, request, deadline).await
            }
            ["api", "campaigns", id, "set-inactive"] if campaigns && post => {
                let id: CampaignId = id.parse()?;
                client.pause_campaign(&id).await?;
                self.applied(Action::CampaignPaused(id.to_string())).await;
                Ok(done("Campaign set to inactive successfully"))
            }
            ["api", "mailboxes"] if mailboxes && get => {
                self.dashboard(Board::Mailboxes, request, deadline).await
            }
            ["api", "mailboxes", id, action @ ("start-lemwarm" | "stop-lemwarm")] if mailboxes && post => {
                let id: MailboxId = id.parse()?;
                if *action == "start-lemwarm" {
                    client.start_lemwarm(&id).await?;
                    self.applied(Action::LemwarmStarted(id.to_string())).await;
                    Ok(done("Lemwarm started successfully"))
                } else {
                    client.pause_lemwarm(&id).await?;
                    self.applied(Action::LemwarmStopped(id.to_string())).await;
                    Ok(done("Lemwarm stopped successfully"))
                }
            }
            _ => match allowed_methods(function, path) {
                Some(allow) => Err(ApiError::MethodNotAllowed(allow)),
                None => Err(ApiError::NotFound),
            },
        }
    }

    /// A dashboard from its latest snapshot; refreshed first when asked (`?refresh=true`) or
    /// when there is none yet, as far as this request's budget allows.
    async fn dashboard(
        &self,
        board: Board,
        request: &Request<Bytes>,
        deadline: Instant,
    ) -> Result<Response<String>, ApiError> {
        let forced = wants_refresh(request.uri().query())?;
        let mut served = self.refresher.latest(board).await?;
        if forced || served.is_none() {
            let seen = served.as_ref().map(|s| s.computed_at);
            if let Some(newer) = self.refresh_and_wait(board, seen, deadline).await? {
                served = Some(newer);
            }
        }
        match served {
            Some(served) => Ok(snapshot_response(served, request.headers())),
            None => {
                let waiting = self.client().stats().waiting;
                Err(ApiError::NotReady { retry_after: if waiting > 0 { waiting / 10 + 2 } else { 15 } })
            }
        }
    }

    /// Starts a refresh (or joins the one running) and waits until `deadline` for a snapshot of
    /// `board` newer than `seen`.
    async fn refresh_and_wait(
        &self,
        board: Board,
        seen: Option<chrono::DateTime<chrono::Utc>>,
        deadline: Instant,
    ) -> Result<Option<Served>, ApiError> {
        if let Some(running) = self.start_refresh().await? {
            match tokio::time::timeout_at(deadline.into(), running).await {
                Err(_) => return Ok(None),
                Ok(Err(e)) => return Err(ApiError::Snapshots(SnapshotError::Store(e.to_string()))),
                Ok(Ok(Err(e))) => return Err(e.into()),
                Ok(Ok(Ok(Outcome::Refreshed(_)))) => return Ok(self.refresher.latest(board).await?),
                // Wait for the one running, below.
                Ok(Ok(Ok(Outcome::AlreadyRunning))) => {}
            }
        }
        loop {
            if let Some(s) = self.refresher.latest(board).await?
                && seen.is_none_or(|t| s.computed_at > t)
            {
                return Ok(Some(s));
            }
            if Instant::now() + POLL > deadline {
                return Ok(None);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Starts a refresh as configured: spawned in this process (where it carries on if the
    /// request stops waiting; the handle says how it ended), or asked of the refresh function.
    async fn start_refresh(&self) -> Result<Option<RunningRefresh>, ApiError> {
        match self.trigger {
            Trigger::InProcess => {
                let refresher = self.refresher.clone();
                Ok(Some(tokio::spawn(async move { refresher.run().await })))
            }
            Trigger::Table => {
                let now = chrono::Utc::now().timestamp_millis();
                self.refresher.store().request_refresh(self.refresher.key(), now).await?;
                Ok(None)
            }
        }
    }

    /// Records an action that succeeded at lemlist in the stored dashboards. If that fails, the
    /// snapshots would show the old state: a refresh is started instead.
    async fn applied(&self, action: Action) {
        if let Err(e) = self.refresher.apply(action).await {
            tracing::error!(error = %e, "could not apply the action to the stored dashboards; refreshing");
            if let Err(e) = self.start_refresh().await {
                tracing::error!(error = %e, "could not start a refresh either");
            }
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
        Ok::<_, std::convert::Infallible>(handle_event(api, function, event).await)
    }))
    .await
}

/// Whether API Gateway's authorizer established who is calling: a JWT's claims or an IAM
/// identity in the request context.
pub fn authenticated(context: Option<&lambda_http::request::RequestContext>) -> bool {
    use lambda_http::request::RequestContext;
    // Only the HTTP API's event shape is compiled in (`apigw_http`).
    let authorizer = match context {
        Some(RequestContext::ApiGatewayV2(c)) => c.authorizer.as_ref(),
        _ => None,
    };
    authorizer.is_some_and(|a| a.jwt.as_ref().is_some_and(|j| !j.claims.is_empty()) || a.iam.is_some())
}

/// One API Gateway event: refused with a 401 when auth is required and the authorizer
/// established no identity (`/health` excepted, and CORS preflights, which carry no
/// credentials); otherwise [`Api::handle`].
pub async fn handle_event(api: &Api, function: Function, event: lambda_http::Request) -> Response<String> {
    use lambda_http::RequestExt;
    let open = event.uri().path() == "/health" || event.method() == Method::OPTIONS;
    if api.auth_required && !open && !authenticated(event.request_context_ref()) {
        tracing::info!(path = event.uri().path(), "refused: no identity from the authorizer");
        return error_response(&ApiError::Unauthorized);
    }
    let (parts, body) = event.into_parts();
    api.handle(function, Request::from_parts(parts, Bytes::copy_from_slice(&body))).await
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
        let store = Arc::new(crate::snapshot::MemorySnapshots::default());
        Api {
            refresher: Refresher::new(client, store, "k".into(), Duration::from_secs(5)),
            cors: Cors { allowed_origins: vec!["https://app.example".into()] },
            budget: Duration::from_secs(1),
            trigger: Trigger::InProcess,
            auth_required: false,
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

    #[test]
    fn the_route_table_is_what_each_function_serves() {
        for (function, route) in ROUTES {
            let (method, path) = route.split_once(' ').unwrap();
            let allowed = allowed_methods(function, path).unwrap_or_else(|| panic!("{route} not served"));
            assert!(allowed.starts_with(method), "{route}: {allowed}");
            let other =
                if function == Function::Campaigns { Function::Mailboxes } else { Function::Campaigns };
            assert_eq!(allowed_methods(other, path).is_some(), path == "/health", "{route}");
        }
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

    /// An API Gateway (HTTP API) event for `path`, with the claims a JWT authorizer found.
    fn event(path: &str, claims: Option<&[(&str, &str)]>) -> lambda_http::Request {
        use lambda_http::aws_lambda_events::apigw::{
            ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
            ApiGatewayV2httpRequestContext,
        };
        use lambda_http::request::RequestContext;
        let mut context = ApiGatewayV2httpRequestContext::default();
        if let Some(claims) = claims {
            let mut authorizer = ApiGatewayRequestAuthorizer::default();
            let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
            jwt.claims = claims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            authorizer.jwt = Some(jwt);
            context.authorizer = Some(authorizer);
        }
        let mut request = lambda_http::Request::new(lambda_http::Body::Empty);
        *request.uri_mut() = path.parse().unwrap();
        request.extensions_mut().insert(RequestContext::ApiGatewayV2(context));
        request
    }

    #[tokio::test]
    async fn with_auth_on_a_request_without_an_identity_is_refused_before_anything_else() {
        let mut api = api();
        api.auth_required = true;
        let r = handle_event(&api, Function::Mailboxes, event("/api/mailboxes", None)).await;
        assert_eq!((r.status(), detail(&r).as_str()), (StatusCode::UNAUTHORIZED, "Unauthorized"));
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let r = handle_event(&api, Function::Mailboxes, event("/api/mailboxes", Some(&[]))).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a JWT with no claims is no identity");
        let r = handle_event(
            &api,
            Function::Campaigns,
            event("/api/campaigns/x/set-inactive", Some(&[("sub", "u1")])),
        )
        .await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "identified: on to the routes");
        let r = handle_event(&api, Function::Campaigns, event("/health", None)).await;
        assert_eq!(r.status(), StatusCode::OK, "health stays open");
        api.auth_required = false;
        let r = handle_event(&api, Function::Campaigns, event("/health", None)).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    #[test]
    fn refresh_parameter_and_etag_matching() {
        assert!(!wants_refresh(None).unwrap());
        assert!(wants_refresh(Some("a=1&refresh=true")).unwrap());
        assert!(!wants_refresh(Some("refresh=0")).unwrap());
        assert!(matches!(wants_refresh(Some("refresh=yes")), Err(ApiError::BadRequest(_))));
        let mut h = HeaderMap::new();
        assert!(!matches_etag(&h, "\"abc\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\", W/\"abc\""));
        assert!(matches_etag(&h, "\"abc\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches_etag(&h, "\"abc\""));
    }

    #[tokio::test]
    async fn a_stored_dashboard_is_served_with_validators_and_304_when_unchanged() {
        use crate::snapshot::{RefreshFigures, Snapshot, encode};
        let api = api();
        let at = chrono::Utc::now() - chrono::Duration::seconds(90);
        let s: crate::snapshot::CampaignsSnapshot = Snapshot {
            computed_at: at,
            figures: RefreshFigures::default(),
            missing: vec![],
            rows: vec![],
            patches: vec![],
        };
        api.refresher.store().save("k", Board::Campaigns, encode(&s), None).await.unwrap();
        let r = api.handle(Function::Campaigns, request(Method::GET, "/api/campaigns/dashboard", None)).await;
        assert_eq!((r.status(), r.body().as_str()), (StatusCode::OK, "[]"));
        let age: i64 = r.headers()[AGE_HEADER].to_str().unwrap().parse().unwrap();
        assert!((90..100).contains(&age), "{age}");
        assert!(r.headers()[header::LAST_MODIFIED].to_str().unwrap().ends_with(" GMT"));
        assert_eq!(r.headers()[header::CACHE_CONTROL], "private, no-cache");
        let etag = r.headers()[header::ETAG].clone();
        let mut again = request(Method::GET, "/api/campaigns/dashboard", None);
        again.headers_mut().insert(header::IF_NONE_MATCH, etag.clone());
        let r = api.handle(Function::Campaigns, again).await;
        assert_eq!((r.status(), r.body().as_str()), (StatusCode::NOT_MODIFIED, ""));
        assert_eq!(r.headers()[header::ETAG], etag);
    }

    #[tokio::test]
    async fn with_no_snapshot_and_no_time_left_the_answer_is_a_503_to_retry() {
        // lemlist is unreachable: the refresh keeps retrying past the request's 1 s budget.
        let r =
            api().handle(Function::Campaigns, request(Method::GET, "/api/campaigns/dashboard", None)).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers()[header::RETRY_AFTER].to_str().unwrap().parse::<u64>().unwrap() > 0);
        assert!(detail(&r).contains("computed for the first time"), "{}", detail(&r));
    }

    #[tokio::test]
    async fn a_failed_action_is_the_contracts_error_shape() {
        let mut api = api();
        api.budget = Duration::from_secs(60);
        let r = api
            .handle(
                Function::Mailboxes,
                request(Method::POST, "/api/mailboxes/usm_AAAAAAAAAAAAAAAAA/stop-lemwarm", None),
            )
            .await;
        assert!(
            matches!(r.status(), StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE),
            "{}",
            r.status()
        );
        assert!(detail(&r).starts_with("lemlist"), "{}", detail(&r));
    }
}
