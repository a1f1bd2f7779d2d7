//! The HTTP boundary of both functions, independent of how a request arrives (API Gateway
//! through [`lambda`], or the local runner through [`crate::local`]).
//!
//! - [`routes`]: the one route table, and resolving a request to a typed [`routes::Route`];
//! - [`error`]: the one error type, its status and what the caller is told;
//! - [`response`]: JSON, stored dashboards with ETag, CORS;
//! - [`lambda`]: the Lambda adapter (auth check, event conversion);
//! - here: what each route does.

pub mod error;
pub mod lambda;
pub mod response;
pub mod routes;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::json;
use tracing::Instrument;

use crate::config::{HttpConfig, SnapshotConfig, Trigger};
use crate::health::HealthLog;
use crate::lemlist::LemlistClient;
use crate::limiter::Class;
use crate::refresh::{Outcome, RefreshError, Refresher};
use crate::snapshot::{Action, Board, Served};

pub use error::ApiError;
pub use response::{
    AGE_HEADER, ALLOWED_HEADERS, Cors, EXPOSED_HEADERS, PARTIAL_HEADER, REFRESH_HEADER, REQUEST_ID_HEADER,
};
pub use routes::{Function, ROUTES, Route, RouteSpec};

/// A refresh spawned in this process.
type RunningRefresh = tokio::task::JoinHandle<Result<Outcome, RefreshError>>;

/// How often a request waiting for a refresh looks at the store.
const POLL: Duration = Duration::from_millis(250);

/// The id a request is known by in the logs, carried as a request extension by the adapter
/// that knows it (API Gateway's own id in Lambda); generated when absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    fn generate() -> Self {
        Self(format!("{:016x}", rand::random::<u64>()))
    }
}

/// What both functions need, assembled once per cold start by [`crate::app`].
#[derive(Debug, Clone)]
pub struct Api {
    client: LemlistClient,
    /// The key's snapshots and their refresh.
    refresher: Refresher,
    cors: Cors,
    /// How long one request may take in all (API Gateway gives about 29 s).
    budget: Duration,
    /// How a request that needs a refresh gets one started.
    trigger: Trigger,
    /// Whether Lambda requests must carry the authorizer's identity ([`lambda`]).
    auth_required: bool,
    /// How old the newest snapshot must be for `?refresh=true` to compute a new one.
    forced_refresh_min: Duration,
}

/// How a `?refresh=true` was answered (the [`REFRESH_HEADER`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forced {
    /// This request's refresh computed the snapshot served.
    Computed,
    /// A refresh was already running; the request waited for it.
    Joined,
    /// The refresh function was asked; its snapshot is served.
    Requested,
    /// The newest snapshot is younger than `FORCED_REFRESH_MIN_SECS`: served as it is.
    Recent,
    /// The refresh outlived the request's budget and goes on; the previous snapshot is served.
    Pending,
}

impl Forced {
    fn as_str(self) -> &'static str {
        match self {
            Self::Computed => "computed",
            Self::Joined => "joined",
            Self::Requested => "requested",
            Self::Recent => "recent",
            Self::Pending => "pending",
        }
    }
}

impl Api {
    pub fn new(
        client: LemlistClient,
        refresher: Refresher,
        http: &HttpConfig,
        snapshots: &SnapshotConfig,
    ) -> Self {
        Self {
            // A person waits for every call this API makes.
            client: client.with_class(Class::Interactive),
            refresher,
            cors: Cors::new(http.allowed_origins.clone()),
            budget: http.budget,
            trigger: snapshots.trigger,
            auth_required: http.auth_required,
            forced_refresh_min: snapshots.forced_refresh_min,
        }
    }

    /// The lemlist client (one connection pool and one permit source per process).
    pub fn client(&self) -> &LemlistClient {
        &self.client
    }

    pub fn refresher(&self) -> &Refresher {
        &self.refresher
    }

    /// Answers one request. Never panics on input: every refusal is a 4xx with a message.
    pub async fn handle(&self, function: Function, request: Request<Bytes>) -> Response<String> {
        let request_id = request.extensions().get::<RequestId>().cloned().unwrap_or_else(RequestId::generate);
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            route = tracing::field::Empty,
            request_id = %request_id.0,
        );
        self.handle_in_span(function, request, request_id.0).instrument(span).await
    }

    async fn handle_in_span(
        &self,
        function: Function,
        request: Request<Bytes>,
        id: String,
    ) -> Response<String> {
        let started = Instant::now();
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        let origin = request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_owned);
        let mut response = if method == Method::OPTIONS {
            match routes::allowed_methods(function, &path) {
                Some(methods) => response::preflight(&methods),
                None => response::error(&ApiError::NotFound, &id),
            }
        } else {
            match routes::resolve(function, &method, &path) {
                Ok((spec, route)) => {
                    tracing::Span::current().record("route", spec.path);
                    self.dispatch(route, &request).await.unwrap_or_else(|e| response::error(&e, &id))
                }
                Err(e) => response::error(&e, &id),
            }
        };
        self.finish(&mut response, origin.as_deref(), &id);
        tracing::info!(
            path,
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        );
        response
    }

    /// What every response carries, whichever adapter answers it: CORS for the caller's origin
    /// and the request's id.
    fn finish(&self, response: &mut Response<String>, origin: Option<&str>, request_id: &str) {
        self.cors.apply(response.headers_mut(), origin);
        if let Ok(value) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
    }

    async fn dispatch(&self, route: Route, request: &Request<Bytes>) -> Result<Response<String>, ApiError> {
        let deadline = Instant::now() + self.budget;
        let client = self.client.with_deadline(deadline);
        match route {
            Route::Health => Ok(response::json(StatusCode::OK, json!({"status": "healthy"}).to_string())),
            Route::CampaignsDashboard => self.dashboard(Board::Campaigns, request, deadline).await,
            Route::Sync => {
                let status = self.refresher.sync_status().await?;
                Ok(response::json(
                    StatusCode::OK,
                    serde_json::to_string(&status).expect("the status serialises"),
                ))
            }
            Route::MailboxesDashboard => self.dashboard(Board::Mailboxes, request, deadline).await,
            Route::CampaignHistory(id) => {
                self.health_view(request, |log| body(log.history.campaigns.get(id.as_str()))).await
            }
            Route::MailboxHistory(id) => {
                self.health_view(request, |log| body(log.history.mailboxes.get(id.as_str()))).await
            }
            Route::Alerts => self.health_view(request, |log| body(Some(&log.alerts.list))).await,
            Route::SetInactive(id) => {
                client.pause_campaign(&id).await?;
                self.applied(Action::CampaignPaused(id)).await;
                Ok(response::done("Campaign set to inactive successfully"))
            }
            Route::StartLemwarm(id) => {
                client.start_lemwarm(&id).await?;
                self.applied(Action::LemwarmStarted(id)).await;
                Ok(response::done("Lemwarm started successfully"))
            }
            Route::StopLemwarm(id) => {
                client.pause_lemwarm(&id).await?;
                self.applied(Action::LemwarmStopped(id)).await;
                Ok(response::done("Lemwarm stopped successfully"))
            }
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
        let mut how = None;
        let age = |s: &Served| (chrono::Utc::now() - s.computed_at).to_std().unwrap_or_default();
        if forced && served.as_ref().is_some_and(|s| age(s) < self.forced_refresh_min) {
            // A forced refresh is not free: at most one per FORCED_REFRESH_MIN_SECS per key.
            how = Some(Forced::Recent);
        } else if forced || served.is_none() {
            let seen = served.as_ref().map(|s| s.computed_at);
            let (newer, started) = self.refresh_and_wait(board, seen, deadline).await?;
            how = Some(if newer.is_some() { started } else { Forced::Pending });
            served = newer.or(served);
        }
        match served {
            Some(served) => {
                let mut r = response::snapshot(served, request.headers());
                if let Some(how) = how.filter(|_| forced) {
                    r.headers_mut().insert(REFRESH_HEADER, HeaderValue::from_static(how.as_str()));
                }
                Ok(r)
            }
            None => {
                let waiting = self.client.stats().waiting;
                Err(ApiError::NotReady { retry_after: if waiting > 0 { waiting / 10 + 2 } else { 15 } })
            }
        }
    }

    /// A view of the key's history and alerts, with the same validators as the dashboards (an
    /// empty array before the first refresh).
    async fn health_view(
        &self,
        request: &Request<Bytes>,
        view: impl FnOnce(&HealthLog) -> String,
    ) -> Result<Response<String>, ApiError> {
        let log = self.refresher.health().await?.map(|(_, log)| log).unwrap_or_default();
        let at = log.updated_at.unwrap_or(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH);
        Ok(response::snapshot(Served::of_body(view(&log), at), request.headers()))
    }

    /// Starts a refresh (or joins the one running) and waits until `deadline` for a snapshot of
    /// `board` newer than `seen`; says how the refresh came about.
    async fn refresh_and_wait(
        &self,
        board: Board,
        seen: Option<chrono::DateTime<chrono::Utc>>,
        deadline: Instant,
    ) -> Result<(Option<Served>, Forced), ApiError> {
        let how = match self.start_refresh().await? {
            None => Forced::Requested,
            Some(running) => match tokio::time::timeout_at(deadline.into(), running).await {
                Err(_) => return Ok((None, Forced::Pending)),
                Ok(Err(e)) => return Err(ApiError::Internal(format!("the refresh task failed: {e}"))),
                Ok(Ok(Err(e))) => return Err(e.into()),
                Ok(Ok(Ok(Outcome::Refreshed(_)))) => {
                    return Ok((self.refresher.latest(board).await?, Forced::Computed));
                }
                // Wait for the one running, below.
                Ok(Ok(Ok(Outcome::AlreadyRunning))) => Forced::Joined,
                // A sync from scratch carries on in the background.
                Ok(Ok(Ok(Outcome::Continuing(_)))) => return Ok((None, Forced::Pending)),
            },
        };
        loop {
            if let Some(s) = self.refresher.latest(board).await?
                && seen.is_none_or(|t| s.computed_at > t)
            {
                return Ok((Some(s), how));
            }
            if Instant::now() + POLL > deadline {
                return Ok((None, how));
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
                // Started by a request: a person waits for it.
                Ok(Some(tokio::spawn(async move { refresher.run_as(Class::Interactive).await })))
            }
            Trigger::Table => {
                self.refresher.request().await?;
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

/// A list as a JSON array: `[]` when there is none.
fn body<T: serde::Serialize>(items: Option<&Vec<T>>) -> String {
    serde_json::to_string(items.map_or(&[][..], |v| v.as_slice())).expect("history and alerts serialize")
}

/// `?refresh=true` (or `1`); `false`, `0` or absent is no refresh; anything else is a 400.
fn wants_refresh(query: Option<&str>) -> Result<bool, ApiError> {
    let mut wanted = false;
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if name == "refresh" {
            wanted = match value.as_ref() {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::lemlist::ClientConfig;
    use crate::limiter::Unlimited;
    use crate::secret::ApiKey;
    use crate::snapshot::{MemorySnapshots, SnapshotStore};

    /// An API whose lemlist is unreachable (enough for everything decided before any call), with
    /// its snapshots in `store`.
    pub(crate) fn api_with(store: Arc<dyn SnapshotStore>, budget: Duration, auth_required: bool) -> Api {
        let key = ApiKey::new("k");
        let config = ClientConfig::new("http://127.0.0.1:9/api".parse().unwrap(), key.clone());
        let client = LemlistClient::new(config, Arc::new(Unlimited)).unwrap();
        let refresher = Refresher::new(client.clone(), store, key.fingerprint(), Duration::from_secs(5));
        let http = HttpConfig { allowed_origins: vec!["https://app.example".into()], budget, auth_required };
        let snapshots = SnapshotConfig {
            table: None,
            lease: Duration::from_secs(5),
            trigger: Trigger::InProcess,
            forced_refresh_min: Duration::from_secs(15),
        };
        Api::new(client, refresher, &http, &snapshots)
    }

    pub(crate) fn api() -> Api {
        api_with(Arc::new(MemorySnapshots::default()), Duration::from_secs(1), false)
    }

    pub(crate) fn request(method: Method, path: &str, origin: Option<&str>) -> Request<Bytes> {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        b.body(Bytes::new()).unwrap()
    }

    pub(crate) fn detail(r: &Response<String>) -> String {
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
    async fn every_response_carries_a_request_id_and_keeps_the_one_it_was_given() {
        let r = api().handle(Function::All, request(Method::GET, "/health", None)).await;
        let generated = r.headers()[REQUEST_ID_HEADER].to_str().unwrap().to_owned();
        assert_eq!(generated.len(), 16);
        let mut given = request(Method::GET, "/api/nope", None);
        given.extensions_mut().insert(RequestId("apigw-123".into()));
        let r = api().handle(Function::All, given).await;
        assert_eq!(r.headers()[REQUEST_ID_HEADER], "apigw-123");
        let body: serde_json::Value = serde_json::from_str(r.body()).unwrap();
        assert_eq!(body["request_id"], "apigw-123");
    }

    #[tokio::test]
    async fn preflights_answer_the_paths_methods_for_allowed_origins() {
        let r = api()
            .handle(
                Function::Mailboxes,
                request(Method::OPTIONS, "/api/mailboxes", Some("https://app.example")),
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_METHODS], "GET, OPTIONS");
        assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert!(r.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().contains("content-type"));
        let r = api()
            .handle(
                Function::Mailboxes,
                request(Method::OPTIONS, "/api/mailboxes", Some("https://evil.example")),
            )
            .await;
        assert!(r.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        let r = api()
            .handle(Function::Mailboxes, request(Method::OPTIONS, "/api/campaigns/dashboard", None))
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn refresh_parameter() {
        assert!(!wants_refresh(None).unwrap());
        assert!(wants_refresh(Some("a=1&refresh=true")).unwrap());
        assert!(!wants_refresh(Some("refresh=0")).unwrap());
        assert!(matches!(wants_refresh(Some("refresh=yes")), Err(ApiError::BadRequest(_))));
    }

    #[tokio::test]
    async fn a_stored_dashboard_is_served_with_validators_and_304_when_unchanged() {
        use crate::snapshot::{RefreshFigures, Snapshot, encode};
        let store: Arc<dyn SnapshotStore> = Arc::new(MemorySnapshots::default());
        let api = api_with(store.clone(), Duration::from_secs(1), false);
        let at = chrono::Utc::now() - chrono::Duration::seconds(90);
        let s: crate::snapshot::CampaignsSnapshot = Snapshot {
            computed_at: at,
            figures: RefreshFigures::default(),
            missing: vec![],
            rows: vec![],
            patches: vec![],
            placeholder: false,
            unattributed: None,
        };
        let key = ApiKey::new("k").fingerprint();
        store.save(key.as_str(), Board::Campaigns, encode(&s), None).await.unwrap();
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
    async fn a_failed_action_says_lemlist_is_unavailable_without_its_error_text() {
        let api = api_with(Arc::new(MemorySnapshots::default()), Duration::from_secs(60), false);
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
        assert!(!detail(&r).contains("127.0.0.1") && !detail(&r).contains("POST /lemwarm"), "{}", detail(&r));
    }
}
