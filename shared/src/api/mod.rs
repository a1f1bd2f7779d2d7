//! The HTTP boundary of both functions: one axum router, served by `lambda_http::run` in each
//! Lambda function and by `axum::serve` in `lemdash serve`.
//!
//! - [`routes`]: the one route table (method, path, function, handler);
//! - [`handlers`]: what each route reads of its request and answers, thinly;
//! - [`fresh`]: a dashboard as fresh as the request asks and its budget allows;
//! - [`front`]: what every request goes through: its id, its span and log line, the error body;
//! - [`error`]: the one error type, its status and what the caller is told;
//! - [`response`]: JSON, stored dashboards with ETag, CORS;
//! - [`lambda`]: what only Lambda does (API Gateway's request id, the authorizer's identity);
//! - here: the application the handlers call, and the router.

mod console;
pub mod error;
pub mod fresh;
pub mod front;
mod handlers;
pub mod hooks;
pub mod lambda;
pub mod response;
pub mod routes;

use std::time::Duration;

use axum::Router;
use axum::middleware;
use tower_http::normalize_path::NormalizePath;

use crate::config::{HttpConfig, SnapshotConfig};
use crate::health::HealthLog;
use crate::lemlist::LemlistClient;
use crate::limiter::Class;
use crate::refresh::Refresher;
use crate::snapshot::{Action, Board, Served};

pub use error::ApiError;
pub use fresh::{Answered, Forced};
pub use front::RequestId;
pub use response::{
    ACTIVITY_AS_OF_HEADER, AGE_HEADER, ALLOWED_HEADERS, EXPOSED_HEADERS, PARTIAL_HEADER, REFRESH_HEADER,
    REQUEST_ID_HEADER,
};
pub use routes::{Function, ROUTES, RouteSpec};

/// What both functions need, assembled once per cold start by [`crate::app`].
#[derive(Debug, Clone)]
pub struct Api {
    /// The dashboards, refreshed on demand; its client is this API's (a person waits for
    /// every call it makes).
    fresh: fresh::OnDemand,
    allowed_origins: Vec<String>,
    /// Whether Lambda requests must carry the authorizer's identity ([`lambda`]).
    auth_required: bool,
    /// lemlist's deliveries, when webhooks are on.
    receiver: Option<hooks::Receiver>,
    /// How the console signs in (`None`: it does not).
    sign_in: Option<crate::config::SignIn>,
}

/// The router of one function, with its layers: what `lambda_http::run` and `axum::serve` are
/// given. A trailing slash is trimmed before routing.
pub type App = NormalizePath<Router>;

impl Api {
    pub fn new(
        client: LemlistClient,
        refresher: Refresher,
        http: &HttpConfig,
        snapshots: &SnapshotConfig,
    ) -> Self {
        let fresh = fresh::OnDemand {
            refresher,
            client: client.with_class(Class::Interactive),
            trigger: snapshots.trigger,
            budget: http.budget,
            forced_refresh_min: snapshots.forced_refresh_min,
        };
        Self {
            fresh,
            allowed_origins: http.allowed_origins.clone(),
            auth_required: http.auth_required,
            receiver: None,
            sign_in: http.sign_in.clone(),
        }
    }

    /// With lemlist's deliveries received (and folded in this process).
    pub fn with_receiver(mut self, receiver: hooks::Receiver) -> Self {
        self.receiver = Some(receiver);
        self
    }

    /// The lemlist client (one connection pool and one permit source per process).
    pub fn client(&self) -> &LemlistClient {
        &self.fresh.client
    }

    /// The client for one request's calls: they must be sent within its budget.
    fn within_budget(&self) -> LemlistClient {
        self.fresh.client.with_deadline(std::time::Instant::now() + self.budget())
    }

    pub fn refresher(&self) -> &Refresher {
        &self.fresh.refresher
    }

    fn budget(&self) -> Duration {
        self.fresh.budget
    }

    /// Now for the data: what a served snapshot's age is measured against.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.fresh.refresher.now()
    }

    /// `board` from its latest snapshot, refreshed first when `forced` or when there is none.
    pub async fn dashboard(&self, board: Board, forced: bool) -> Result<Answered, ApiError> {
        self.fresh.answer(board, forced).await
    }

    /// A view of the key's history and alerts, as a snapshot with the same validators as the
    /// dashboards (an empty array before the first refresh).
    pub async fn health_view(&self, view: impl FnOnce(&HealthLog) -> String) -> Result<Served, ApiError> {
        let log = self.refresher().health().await?.map(|(_, log)| log).unwrap_or_default();
        let at = log.updated_at.unwrap_or(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH);
        Ok(Served::of_body(view(&log), at))
    }

    /// Records an action that succeeded at lemlist in the stored dashboards. If that fails, the
    /// snapshots would show the old state: a refresh is started instead.
    pub async fn applied(&self, action: Action) {
        self.refresher().record_usage().await;
        if let Err(e) = self.refresher().apply(action).await {
            tracing::error!(error = %e, "could not apply the action to the stored dashboards; refreshing");
            if let Err(e) = self.fresh.start().await {
                tracing::error!(error = %e, "could not start a refresh either");
            }
        }
    }

    /// The router of `function`'s routes (every route, and the receiver's when webhooks are on,
    /// for [`Function::All`]), built from the one route table, behind [`front_door`].
    pub fn router(&self, function: Function) -> App {
        let mut router = Router::new();
        for spec in ROUTES.iter().filter(|s| function.serves(s)) {
            router = router.route(spec.path, spec.method_router());
        }
        let mut router: Router = router.with_state(self.clone());
        if function == Function::All
            && let Some(receiver) = &self.receiver
        {
            router = router.merge(receiver.routes());
        }
        NormalizePath::trim_trailing_slash(front_door(router, self.auth_required, &self.allowed_origins))
    }
}

/// `routes` behind the front door: unknown paths are a 404, known paths with another method a
/// 405 with `Allow`, both with the contract's body; CORS on every answer; in Lambda, the
/// authorizer's identity checked before routing (preflights and lemlist's deliveries excepted).
fn front_door(routes: Router, auth_required: bool, allowed_origins: &[String]) -> Router {
    routes
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(auth_required, lambda::require_identity))
        .layer(response::cors(allowed_origins))
        .layer(response::vary_origin())
        // Outermost: preflights, which the CORS layer answers, are named and logged too.
        .layer(middleware::from_fn(front::front))
}

/// The `lemdash-hooks` function's router: the receiver's route alone, behind the same front
/// door (no authorizer: lemlist cannot present a JWT; no CORS origin: no browser calls it).
pub fn hooks_router(receiver: &hooks::Receiver) -> App {
    NormalizePath::trim_trailing_slash(front_door(receiver.routes(), false, &[]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Arc;

    use axum::response::Response;
    use http::header;
    use http::{Method, Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::config::Trigger;
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
        let http = HttpConfig {
            allowed_origins: vec!["https://app.example".into()],
            budget,
            auth_required,
            sign_in: None,
        };
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

    pub(crate) fn request(method: Method, path: &str, origin: Option<&str>) -> Request<axum::body::Body> {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    /// `request` answered by `api`'s router for `function`.
    pub(crate) async fn handle<B>(api: &Api, function: Function, request: Request<B>) -> Response
    where
        B: axum::body::HttpBody<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        api.router(function).oneshot(request).await.expect("the router never fails")
    }

    /// A response's body, and its `detail` when it is the contract's error body.
    pub(crate) async fn body(r: Response) -> (http::response::Parts, String) {
        let (parts, body) = r.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts, String::from_utf8(bytes.to_vec()).unwrap())
    }

    pub(crate) fn detail(body: &str) -> String {
        serde_json::from_str::<serde_json::Value>(body).unwrap()["detail"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn invalid_ids_are_refused_before_any_call() {
        for (function, method, path) in [
            (Function::Campaigns, Method::POST, "/api/campaigns/cam_short/set-inactive"),
            (Function::Mailboxes, Method::POST, "/api/mailboxes/..%2Fteam/start-lemwarm"),
            (Function::Mailboxes, Method::POST, "/api/mailboxes/cam_4HrZbi8xsez4QlrnL/stop-lemwarm"),
            (Function::Mailboxes, Method::GET, "/api/mailboxes/cam_4HrZbi8xsez4QlrnL/history"),
        ] {
            let (parts, text) = body(handle(&api(), function, request(method, path, None)).await).await;
            assert_eq!(parts.status, StatusCode::BAD_REQUEST, "{path}");
            assert!(detail(&text).starts_with("invalid"), "{text}");
        }
    }

    #[tokio::test]
    async fn a_trailing_slash_names_the_same_route() {
        let (parts, text) = body(
            handle(
                &api(),
                Function::Mailboxes,
                request(Method::POST, "/api/mailboxes/cam_4HrZbi8xsez4QlrnL/stop-lemwarm/", None),
            )
            .await,
        )
        .await;
        assert_eq!(parts.status, StatusCode::BAD_REQUEST);
        assert!(detail(&text).starts_with("invalid mailbox id"), "{text}");
    }

    #[tokio::test]
    async fn unknown_routes_wrong_methods_and_the_other_functions_routes() {
        let (parts, text) =
            body(handle(&api(), Function::Campaigns, request(Method::GET, "/api/nope", None)).await).await;
        assert_eq!((parts.status, detail(&text).as_str()), (StatusCode::NOT_FOUND, "Not Found"));
        let r = handle(&api(), Function::All, request(Method::GET, "/nope", None)).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let (parts, text) = body(
            handle(&api(), Function::All, request(Method::POST, "/api/campaigns//set-inactive", None)).await,
        )
        .await;
        assert_eq!(parts.status, StatusCode::BAD_REQUEST, "an empty id is no id");
        assert!(detail(&text).starts_with("invalid campaign id"), "{text}");
        let (parts, text) = body(
            handle(&api(), Function::Campaigns, request(Method::DELETE, "/api/campaigns/dashboard", None))
                .await,
        )
        .await;
        assert_eq!(
            (parts.status, detail(&text).as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        );
        assert_eq!(parts.headers[header::ALLOW], "GET,HEAD");
        let set_inactive = "/api/campaigns/cam_4HrZbi8xsez4QlrnL/set-inactive";
        let r = handle(&api(), Function::Campaigns, request(Method::GET, set_inactive, None)).await;
        assert_eq!(
            (r.status(), &r.headers()[header::ALLOW]),
            (StatusCode::METHOD_NOT_ALLOWED, &"POST".parse().unwrap())
        );
        let r = handle(&api(), Function::Campaigns, request(Method::GET, "/api/mailboxes", None)).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "the campaigns function does not serve mailboxes");
        let (parts, text) =
            body(handle(&api(), Function::Mailboxes, request(Method::GET, "/health", None)).await).await;
        assert_eq!((parts.status, text.as_str()), (StatusCode::OK, r#"{"status":"healthy"}"#));
    }

    #[tokio::test]
    async fn head_answers_like_get_without_a_body() {
        let (get, get_body) =
            body(handle(&api(), Function::All, request(Method::GET, "/health", None)).await).await;
        let (head, head_body) =
            body(handle(&api(), Function::All, request(Method::HEAD, "/health", None)).await).await;
        assert_eq!((head.status, get.status), (StatusCode::OK, StatusCode::OK));
        assert_eq!(head.headers[header::CONTENT_TYPE], get.headers[header::CONTENT_TYPE]);
        assert!(!get_body.is_empty() && head_body.is_empty(), "{get_body:?} {head_body:?}");
        let (missing, text) =
            body(handle(&api(), Function::All, request(Method::HEAD, "/api/nope", None)).await).await;
        assert_eq!((missing.status, text.as_str()), (StatusCode::NOT_FOUND, ""));
    }

    #[tokio::test]
    async fn every_response_carries_a_request_id_and_keeps_the_one_it_was_given() {
        let r = handle(&api(), Function::All, request(Method::GET, "/health", None)).await;
        let generated = r.headers()[REQUEST_ID_HEADER].to_str().unwrap().to_owned();
        assert_eq!(generated.len(), 16);
        let mut given = request(Method::GET, "/api/nope", None);
        given.extensions_mut().insert(RequestId("apigw-123".into()));
        let (parts, text) = body(handle(&api(), Function::All, given).await).await;
        assert_eq!(parts.headers[REQUEST_ID_HEADER], "apigw-123");
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["request_id"], "apigw-123");
    }

    /// A browser's preflight: `OPTIONS` with the method it wants.
    fn preflight(path: &str, origin: &str) -> Request<axum::body::Body> {
        let mut r = request(Method::OPTIONS, path, Some(origin));
        r.headers_mut().insert(header::ACCESS_CONTROL_REQUEST_METHOD, "GET".parse().unwrap());
        r
    }

    #[tokio::test]
    async fn preflights_answer_with_the_allowed_methods_and_headers_for_allowed_origins() {
        let r = handle(&api(), Function::Mailboxes, preflight("/api/mailboxes", "https://app.example")).await;
        assert!(r.status().is_success(), "{}", r.status());
        let methods = r.headers()[header::ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap();
        assert!(methods.contains("GET") && methods.contains("POST"), "{methods}");
        assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert_eq!(r.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS], ALLOWED_HEADERS.join(","));
        assert_eq!(r.headers()[header::ACCESS_CONTROL_MAX_AGE], "600");
        assert_eq!(r.headers()[REQUEST_ID_HEADER].len(), 16, "named like every answer");
        let r =
            handle(&api(), Function::Mailboxes, preflight("/api/mailboxes", "https://evil.example")).await;
        assert!(r.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }

    #[tokio::test]
    async fn a_stored_dashboard_is_served_with_validators_and_304_when_unchanged() {
        use crate::snapshot::{RefreshFigures, Snapshot, encode};
        let store: Arc<dyn SnapshotStore> = Arc::new(MemorySnapshots::default());
        let api = api_with(store.clone(), Duration::from_secs(1), false);
        // In whole milliseconds, as the refresh stamps its snapshots.
        let at =
            chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis() - 90_000).unwrap();
        let s: crate::snapshot::CampaignsSnapshot = Snapshot {
            computed_at: at,
            figures: RefreshFigures::default(),
            missing: vec![],
            rows: vec![],
            patches: vec![],
            placeholder: false,
            unattributed: None,
            activity_as_of: None,
        };
        let key = ApiKey::new("k").fingerprint();
        store.save(key.as_str(), Board::Campaigns.into(), encode(&s), None).await.unwrap();
        let (parts, text) = body(
            handle(&api, Function::Campaigns, request(Method::GET, "/api/campaigns/dashboard", None)).await,
        )
        .await;
        assert_eq!((parts.status, text.as_str()), (StatusCode::OK, "[]"));
        let age: i64 = parts.headers[AGE_HEADER].to_str().unwrap().parse().unwrap();
        assert!((90..100).contains(&age), "{age}");
        assert!(parts.headers[header::LAST_MODIFIED].to_str().unwrap().ends_with(" GMT"));
        assert_eq!(parts.headers[header::CACHE_CONTROL], "private, no-cache");
        let etag = parts.headers[header::ETAG].clone();
        let mut again = request(Method::GET, "/api/campaigns/dashboard", None);
        again.headers_mut().insert(header::IF_NONE_MATCH, etag.clone());
        let (parts, text) = body(handle(&api, Function::Campaigns, again).await).await;
        assert_eq!((parts.status, text.as_str()), (StatusCode::NOT_MODIFIED, ""));
        assert_eq!(parts.headers[header::ETAG], etag);
    }

    #[tokio::test]
    async fn with_no_snapshot_and_no_time_left_the_answer_is_a_503_to_retry() {
        // lemlist is unreachable: the refresh keeps retrying past the request's 1 s budget.
        let r =
            handle(&api(), Function::Campaigns, request(Method::GET, "/api/campaigns/dashboard", None)).await;
        let (parts, text) = body(r).await;
        assert_eq!(parts.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(parts.headers[header::RETRY_AFTER].to_str().unwrap().parse::<u64>().unwrap() > 0);
        assert!(detail(&text).contains("computed for the first time"), "{text}");
    }

    #[tokio::test]
    async fn a_failed_action_says_lemlist_is_unavailable_without_its_error_text() {
        // Nothing listens at lemlist's address: every attempt fails to connect, which the
        // client retries within the budget and then reports as a transport failure.
        let api = api_with(Arc::new(MemorySnapshots::default()), Duration::from_secs(60), false);
        let r = handle(
            &api,
            Function::Mailboxes,
            request(Method::POST, "/api/mailboxes/usm_AAAAAAAAAAAAAAAAA/stop-lemwarm", None),
        )
        .await;
        let (parts, text) = body(r).await;
        assert_eq!(parts.status, StatusCode::BAD_GATEWAY, "{text}");
        assert_eq!(detail(&text), "lemlist is unavailable or answering with errors; try again shortly");
        assert!(!text.contains("127.0.0.1") && !text.contains("POST /lemwarm"), "{text}");
    }
}
