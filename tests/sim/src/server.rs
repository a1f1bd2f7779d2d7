//! The simulator's HTTP side: lemlist's API on 127.0.0.1, with its rate limit, its headers, its
//! latency and injectable faults.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, FixedOffset, Utc};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::data::{self, Campaign, Profile, Team};
use crate::hooks::{self, Delivered, Delivery, Hook, Hooks, Refused};
use crate::limit::{KeyWindow, LIMIT, LimitMode};
use crate::live::{self, Applied, Event};
use crate::log::{Entry, RequestLog};

/// How `X-RateLimit-Reset` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetFormat {
    /// JavaScript `Date.toString()` in Paris time, what lemlist documents.
    JsDate,
    /// An HTTP date.
    HttpDate,
    /// Unix seconds, what current express-rate-limit sends.
    UnixSeconds,
}

/// Which shape `GET /campaigns` answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListShape {
    /// `{campaigns, pagination}`, paged by `page`.
    Wrapped,
    /// A bare array, paged by `offset`.
    Bare,
}

/// Per-endpoint response times: lognormal around a median, scaled (0 = instant).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub scale: f64,
    pub sigma: f64,
}

impl Latency {
    pub const NONE: Self = Self { scale: 0.0, sigma: 0.0 };
    /// Response times like lemlist's (medians of 100–400 ms).
    pub const LEMLIST: Self = Self { scale: 1.0, sigma: 0.35 };

    fn sample(&self, median_ms: f64) -> Duration {
        if self.scale <= 0.0 {
            return Duration::ZERO;
        }
        let mut rng = rand::rng();
        // Box-Muller: one standard normal draw.
        let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        Duration::from_secs_f64(self.scale * median_ms * (self.sigma * z).exp() / 1000.0)
    }
}

/// Injected faults: each accepted request gets one with probability `rate`, its kind drawn
/// from `kinds`.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    pub rate: f64,
    pub kinds: Vec<FaultKind>,
    /// How late a [`FaultKind::Slow`] answer comes.
    pub slow_by: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// 503 Service Unavailable.
    Unavailable,
    /// The connection is closed without an answer.
    Drop,
    /// A correct answer, late.
    Slow,
    /// A 200 whose JSON body is cut in half.
    Malformed,
    /// A 200 with lemlist's web-app HTML instead of JSON.
    Html,
}

impl Faults {
    pub fn none() -> Self {
        Self { rate: 0.0, kinds: Vec::new(), slow_by: Duration::ZERO }
    }

    /// Faults a well-behaved client recovers from by retrying.
    pub fn transient(rate: f64) -> Self {
        use FaultKind::*;
        Self { rate, kinds: vec![Unavailable, Drop, Slow, Malformed], slow_by: Duration::from_millis(300) }
    }

    /// Every answer has this fault.
    pub fn always(kind: FaultKind) -> Self {
        Self { rate: 1.0, kinds: vec![kind], slow_by: Duration::from_millis(300) }
    }

    fn roll(&self) -> Option<FaultKind> {
        let mut rng = rand::rng();
        if self.kinds.is_empty() || !rng.random_bool(self.rate.clamp(0.0, 1.0)) {
            return None;
        }
        Some(self.kinds[rng.random_range(0..self.kinds.len())])
    }
}

/// Everything about the simulator that can change while it runs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub limit: LimitMode,
    pub reset_format: ResetFormat,
    pub list_shape: ListShape,
    /// Play the v2 quirk some clients reported: `offset` and `page` ignored, the first page again.
    pub ignore_paging: bool,
    pub latency: Latency,
    pub faults: Faults,
    /// Which shape the lead export takes.
    pub lead_shape: LeadShape,
    /// Campaigns whose lead export always fails (HTTP 500): a permanent upstream failure.
    pub broken_exports: Vec<String>,
    /// How hooks are delivered to.
    pub delivery: Delivery,
    /// Mailboxes whose lemwarm start and pause lemlist refuses, as on a plan without lemwarm
    /// (HTTP 402 with lemlist's message).
    pub lemwarm_refused: Vec<String>,
}

/// What lemlist answers a lemwarm action it refuses ([`Settings::lemwarm_refused`]).
pub const LEMWARM_REFUSAL: &str = "Your plan does not include lemwarm for this mailbox";

/// The two shapes of `GET /campaigns/{id}/export/leads` in lemlist's material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeadShape {
    /// What real JSON exports carry: `state` and `stateSystem` (and here also `lastState` and
    /// `status`).
    #[default]
    Real,
    /// lemlist's documented schema: `lastState` and `status`, no `state` nor `stateSystem`.
    Documented,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            limit: LimitMode::Anchored,
            reset_format: ResetFormat::JsDate,
            list_shape: ListShape::Wrapped,
            ignore_paging: false,
            latency: Latency::NONE,
            faults: Faults::none(),
            lead_shape: LeadShape::Real,
            broken_exports: Vec::new(),
            delivery: Delivery::default(),
            lemwarm_refused: Vec::new(),
        }
    }
}

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub profile: Profile,
    pub seed: u64,
    /// Valid API keys; each has its own rate-limit window. All see the same team.
    pub keys: Vec<String>,
    pub settings: Settings,
    /// When the generated history ends.
    pub history_end: DateTime<Utc>,
    /// Where the simulated clock starts (it runs on from there); `None`: the wall clock.
    pub clock_start: Option<DateTime<Utc>>,
}

/// How long after the generated history the tests' simulated clock starts: the history's last
/// 30 days are inside every performance window.
pub const CLOCK_AFTER_HISTORY: chrono::Duration = chrono::Duration::hours(2);

impl SimConfig {
    /// A team whose history ends at the fixed [`data::epoch`], on a clock that starts
    /// [`CLOCK_AFTER_HISTORY`] later: what tests and benchmarks use, the same whatever the date.
    pub fn new(profile: Profile, seed: u64) -> Self {
        Self {
            profile,
            seed,
            keys: vec![format!("sim-key-{seed}")],
            settings: Settings::default(),
            history_end: data::epoch(),
            clock_start: Some(data::epoch() + CLOCK_AFTER_HISTORY),
        }
    }

    /// A team whose history ends now, on the wall clock: the demo's, which keeps working from
    /// there.
    pub fn live(profile: Profile, seed: u64) -> Self {
        Self { history_end: Utc::now(), clock_start: None, ..Self::new(profile, seed) }
    }
}

/// The simulated clock: real time moved by an offset that [`SimClock::set`] changes. Every
/// handle of one simulator reads the same clock, so a test that moves it moves lemdash's too
/// (lemdash reads it through its own `Clock` trait, in the tests' support crate).
#[derive(Debug, Clone, Default)]
pub struct SimClock(Arc<Mutex<chrono::Duration>>);

impl SimClock {
    fn starting_at(start: Option<DateTime<Utc>>) -> Self {
        Self(Arc::new(Mutex::new(start.map_or_else(chrono::Duration::zero, |at| at - Utc::now()))))
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + *lock(&self.0)
    }

    /// Sets the clock to `at`; it runs on from there.
    pub fn set(&self, at: DateTime<Utc>) {
        *lock(&self.0) = at - Utc::now();
    }
}

struct State {
    started: Instant,
    keys: Vec<String>,
    settings: Mutex<Settings>,
    team: Mutex<Team>,
    /// Live mode's randomness: seeded, so a run's bursts are the same every time.
    live: Mutex<StdRng>,
    windows: Mutex<Vec<KeyWindow>>,
    log: Mutex<Vec<Entry>>,
    /// The simulated clock: live events are timestamped with it. Rate limits always run on
    /// real time.
    clock: SimClock,
    hooks: Arc<Mutex<Hooks>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    fn record(&self, mut entry: Entry) {
        entry.answered = self.started.elapsed();
        lock(&self.log).push(entry);
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// A running simulator. Dropping it stops the server.
pub struct Sim {
    state: Arc<State>,
    addr: SocketAddr,
    server: JoinHandle<()>,
    deliveries: JoinHandle<()>,
    foreign: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.server.abort();
        self.deliveries.abort();
        if let Some(task) = lock(&self.foreign).take() {
            task.abort();
        }
    }
}

impl Sim {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        Ok(Self::serve(listener, config))
    }

    /// Serves on an already-bound listener.
    pub fn serve(listener: TcpListener, config: SimConfig) -> Self {
        let addr = listener.local_addr().expect("a bound listener has an address");
        let state = Arc::new(State {
            started: Instant::now(),
            windows: Mutex::new(config.keys.iter().map(|_| KeyWindow::default()).collect()),
            keys: config.keys,
            settings: Mutex::new(config.settings),
            team: Mutex::new(data::generate_until(config.profile, config.seed, config.history_end)),
            live: Mutex::new(StdRng::seed_from_u64(config.seed ^ 0x11fe)),
            log: Mutex::new(Vec::new()),
            clock: SimClock::starting_at(config.clock_start),
            hooks: Arc::default(),
        });
        let server = tokio::spawn(accept_loop(listener, state.clone()));
        let deliveries = tokio::spawn(deliver_loop(state.clone()));
        Self { state, addr, server, deliveries, foreign: Mutex::new(None) }
    }

    /// The API's base URL, as `LEMLIST_BASE_URL` takes it.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// The first configured API key.
    pub fn key(&self) -> &str {
        &self.state.keys[0]
    }

    /// Time since the simulator started: the base of its log's arrival times.
    pub fn elapsed(&self) -> Duration {
        self.state.started.elapsed()
    }

    pub fn log(&self) -> RequestLog {
        RequestLog { entries: lock(&self.state.log).clone() }
    }

    pub fn clear_log(&self) {
        lock(&self.state.log).clear();
    }

    /// The team as it is now (actions change it).
    pub fn team(&self) -> Team {
        lock(&self.state.team).clone()
    }

    /// Live mode: applies `n` random events now, about a quarter of the new activities
    /// timestamped up to 90 s in the past ([`live`](crate::live)).
    pub fn burst(&self, n: usize) -> Applied {
        self.burst_at(n, self.now(), 0.25)
    }

    /// The simulated clock's time.
    pub fn now(&self) -> DateTime<Utc> {
        self.state.now()
    }

    /// The simulated clock: the tests of daily history move it a day at a time instead of
    /// sleeping, and lemdash under test reads the same one.
    pub fn clock(&self) -> SimClock {
        self.state.clock.clone()
    }

    /// Records `n` activities of `kind` now in `campaign`, from its sender `sender`
    /// ([`live::script`]); returns how many.
    pub fn script(&self, campaign: &str, sender: usize, kind: &str, n: usize) -> usize {
        let mut rng = lock(&self.state.live);
        live::script(&mut lock(&self.state.team), &mut rng, campaign, sender, kind, n, self.now())
    }

    /// The same at `at`, with `late_share` of the activities timestamped before it.
    pub fn burst_at(&self, n: usize, at: DateTime<Utc>, late_share: f64) -> Applied {
        let mut rng = lock(&self.state.live);
        live::burst(&mut lock(&self.state.team), &mut rng, n, at, late_share)
    }

    /// Applies one event of `kind` now; false when there was nothing to apply it to.
    pub fn apply(&self, kind: Event) -> bool {
        let mut rng = lock(&self.state.live);
        live::apply(&mut lock(&self.state.team), &mut rng, kind, self.now())
    }

    pub fn configure(&self, change: impl FnOnce(&mut Settings)) {
        change(&mut lock(&self.state.settings));
    }

    /// Another tool using key `key` at `per_second` requests per second, counted by the rate
    /// limit like lemdash's own requests. Replaces any foreign traffic already running.
    pub fn start_foreign_traffic(&self, key: usize, per_second: f64) {
        let state = self.state.clone();
        let period = Duration::from_secs_f64(1.0 / per_second);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let at = state.started.elapsed();
                let mode = lock(&state.settings).limit;
                let decision = lock(&state.windows)[key].hit(mode, at);
                state.record(Entry {
                    at,
                    answered: at,
                    key: Some(key),
                    foreign: true,
                    method: "GET".into(),
                    endpoint: "foreign".into(),
                    target: "foreign".into(),
                    status: if decision.allowed { 200 } else { 429 },
                    window: decision.window,
                    remaining: Some(decision.remaining),
                });
            }
        });
        if let Some(old) = lock(&self.foreign).replace(task) {
            old.abort();
        }
    }

    /// The team's hooks as they are now (secrets included: the test's view, not the API's).
    pub fn hooks(&self) -> Vec<Hook> {
        lock(&self.state.hooks).hooks.clone()
    }

    /// What the deliveries did so far.
    pub fn delivered(&self) -> Delivered {
        lock(&self.state.hooks).delivered.clone()
    }

    /// Deletes a hook as a person in lemlist's UI would: no API call, nothing counted.
    pub fn delete_hook(&self, id: &str) -> bool {
        lock(&self.state.hooks).delete(id).is_some()
    }

    /// Registers a hook as another integration would (Zapier's, n8n's).
    pub fn add_hook(&self, target_url: &str, kind: Option<&str>) -> Hook {
        let body = json!({"targetUrl": target_url, "type": kind}).to_string();
        let now = self.now();
        match lock(&self.state.hooks).create(body.as_bytes(), &mut rand::rng(), now) {
            Ok(hook) => hook,
            Err(_) => panic!("the simulator refused a test's hook for {target_url}"),
        }
    }

    pub fn stop_foreign_traffic(&self) {
        if let Some(task) = lock(&self.foreign).take() {
            task.abort();
        }
    }
}

/// Hands every new activity to the hooks, every 50 ms.
async fn deliver_loop(state: Arc<State>) {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let (team_id, new) = {
            let mut team = lock(&state.team);
            (team.id.clone(), std::mem::take(&mut team.outbox))
        };
        if new.is_empty() {
            continue;
        }
        let delivery = lock(&state.settings).delivery.clone();
        hooks::schedule(&state.hooks, &delivery, &team_id, new, &client);
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(state.clone(), req));
            // An error here is a dropped connection, on purpose or by the client: nothing to do.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Returned by the service to make hyper close the connection without answering.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

type Reply = Response<Full<Bytes>>;

/// An answer before headers and faults are applied.
struct Answer {
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
    /// Median response time at latency scale 1.
    median_ms: f64,
}

impl Answer {
    fn json(value: Value, median_ms: f64) -> Self {
        Self {
            status: StatusCode::OK,
            content_type: "application/json; charset=utf-8",
            body: Bytes::from(value.to_string()),
            median_ms,
        }
    }

    fn text(status: StatusCode, text: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: Bytes::from(text.to_owned()),
            median_ms: 60.0,
        }
    }

    fn html() -> Self {
        Self {
            status: StatusCode::OK,
            content_type: "text/html; charset=utf-8",
            body: Bytes::from_static(
                b"<!DOCTYPE html><html><head><title>lemlist</title></head><body></body></html>",
            ),
            median_ms: 80.0,
        }
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Reply, DropConnection> {
    let at = state.started.elapsed();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let target = uri.path_and_query().map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let query: BTreeMap<String, String> =
        uri.query().map(|q| url_decode_pairs(q).into_iter().collect()).unwrap_or_default();
    let key = authenticated_key(&state.keys, req.headers());
    let settings = lock(&state.settings).clone();
    let segments: Vec<String> = uri
        .path()
        .trim_start_matches("/api")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    // Not lemlist's: live mode's control, for a simulator in another process. Neither
    // authenticated, counted by the rate limit, nor logged.
    if segs == ["_sim", "burst"] && method == Method::POST {
        let n = param_usize(&query, "n", 10).min(100_000);
        let applied = live::burst(&mut lock(&state.team), &mut lock(&state.live), n, state.now(), 0.25);
        let counts: Map<String, Value> =
            applied.into_iter().map(|(event, n)| (format!("{event:?}"), Value::from(n))).collect();
        return Ok(finish(Answer::json(Value::Object(counts), 0.0), None));
    }
    let endpoint = endpoint_label(&method, &segs);
    let mut entry = Entry {
        at,
        answered: at,
        key,
        foreign: false,
        method: method.to_string(),
        endpoint,
        target,
        status: 0,
        window: None,
        remaining: None,
    };

    let Some(key_index) = key else {
        entry.status = 401;
        state.record(entry);
        return Ok(finish(
            Answer::text(StatusCode::UNAUTHORIZED, "The authentication you supplied is incorrect"),
            None,
        ));
    };
    let decision = lock(&state.windows)[key_index].hit(settings.limit, at);
    entry.window = decision.window;
    entry.remaining = Some(decision.remaining);
    let headers = rate_limit_headers(decision, settings.reset_format);
    if !decision.allowed {
        entry.status = 429;
        state.record(entry);
        let answer =
            Answer::text(StatusCode::TOO_MANY_REQUESTS, "Too many requests, please try again later.");
        return Ok(finish(answer, Some(headers)));
    }

    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let fault = settings.faults.roll();
    let answer = route(&state, &settings, &method, &segs, &query, &body);
    let mut delay = settings.latency.sample(answer.median_ms);
    if fault == Some(FaultKind::Slow) {
        delay += settings.faults.slow_by;
    }
    tokio::time::sleep(delay).await;

    let answer = match fault {
        Some(FaultKind::Drop) => {
            state.record(entry);
            return Err(DropConnection);
        }
        Some(FaultKind::Unavailable) => Answer::text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        Some(FaultKind::Html) => Answer::html(),
        Some(FaultKind::Malformed) if answer.status.is_success() => {
            let cut = answer.body.len() / 2;
            Answer { body: answer.body.slice(..cut), ..answer }
        }
        _ => answer,
    };
    entry.status = answer.status.as_u16();
    state.record(entry);
    Ok(finish(answer, Some(headers)))
}

fn finish(answer: Answer, rate_headers: Option<HeaderMap>) -> Reply {
    let mut response = Response::new(Full::new(answer.body));
    *response.status_mut() = answer.status;
    let h = response.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    h.insert(http::header::DATE, header_value(&http_date(Utc::now())));
    if let Some(rate) = rate_headers {
        h.extend(rate);
    }
    response
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("generated header values are ASCII")
}

fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// The four headers lemlist documents, on every answer of an authenticated request.
fn rate_limit_headers(decision: crate::limit::Decision, format: ResetFormat) -> HeaderMap {
    let reset_at: DateTime<Utc> = (SystemTime::now() + decision.reset_in).into();
    let reset = match format {
        ResetFormat::JsDate => {
            let paris = reset_at.with_timezone(&FixedOffset::east_opt(3600).expect("valid offset"));
            paris.format("%a %b %d %Y %H:%M:%S GMT%z (Central European Standard Time)").to_string()
        }
        ResetFormat::HttpDate => http_date(reset_at),
        ResetFormat::UnixSeconds => reset_at.timestamp().to_string(),
    };
    let mut h = HeaderMap::new();
    h.insert("retry-after", header_value(&decision.reset_in.as_secs_f64().ceil().to_string()));
    h.insert("x-ratelimit-limit", header_value(&LIMIT.to_string()));
    h.insert("x-ratelimit-remaining", header_value(&decision.remaining.to_string()));
    h.insert("x-ratelimit-reset", header_value(&reset));
    h
}

/// The key in `Authorization: Basic base64(":" + key)`, as an index into the configured keys.
fn authenticated_key(keys: &[String], headers: &HeaderMap) -> Option<usize> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64_decode(encoded.trim())?;
    let key = decoded.strip_prefix(':')?;
    keys.iter().position(|k| k == key)
}

fn base64_decode(input: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(input).ok()?;
    String::from_utf8(bytes).ok()
}

fn url_decode_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// The route with ids replaced, for the request log.
fn endpoint_label(method: &Method, segs: &[&str]) -> String {
    let shape: Vec<&str> = segs
        .iter()
        .map(|s| if s.len() == 21 && s.as_bytes().get(3) == Some(&b'_') { "{id}" } else { s })
        .collect();
    format!("{method} /{}", shape.join("/"))
}

fn route(
    state: &State,
    settings: &Settings,
    method: &Method,
    segs: &[&str],
    query: &BTreeMap<String, String>,
    body: &[u8],
) -> Answer {
    let get = method == Method::GET;
    let post = method == Method::POST;
    let mut team = lock(&state.team);
    match segs {
        ["campaigns"] if get => list_campaigns(&team, settings, query),
        ["campaigns", id] if get => match find_campaign(&team, id) {
            Some(c) => Answer::json(campaign_detail(c), 120.0),
            None => Answer::text(StatusCode::NOT_FOUND, "Campaign not found"),
        },
        ["campaigns", id, "export", "leads"] if get => {
            if query.get("format").map(String::as_str) != Some("json") {
                return Answer::text(StatusCode::BAD_REQUEST, "the simulator only exports format=json");
            }
            if settings.broken_exports.iter().any(|b| b == id) {
                return Answer::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
            }
            match find_campaign(&team, id) {
                Some(c) => {
                    let rows: Vec<Value> =
                        c.leads.iter().map(|l| lead_json(l, settings.lead_shape)).collect();
                    Answer::json(Value::Array(rows), 150.0 + 1.5 * c.leads.len() as f64)
                }
                None => Answer::text(StatusCode::NOT_FOUND, "Campaign not found"),
            }
        }
        ["campaigns", id, "pause"] if post => {
            let Some(c) = team.campaigns.iter_mut().find(|c| c.id == *id) else {
                return Answer::text(StatusCode::NOT_FOUND, "Campaign not found");
            };
            c.status = "paused".into();
            Answer::json(campaign_summary(c), 200.0)
        }
        ["activities"] if get => list_activities(&team, query),
        ["hooks"] if get => {
            let hooks = lock(&state.hooks);
            Answer::json(Value::Array(hooks.hooks.iter().map(Hook::json).collect()), 120.0)
        }
        ["hooks"] if post => {
            let now = state.now();
            match lock(&state.hooks).create(body, &mut rand::rng(), now) {
                Ok(hook) => Answer::json(hook.json(), 180.0),
                Err(Refused::Conflict) => Answer::text(StatusCode::CONFLICT, "Conflict"),
                Err(Refused::BadRequest(why)) => Answer::text(StatusCode::BAD_REQUEST, &why),
            }
        }
        ["hooks", id] if method == Method::DELETE => match lock(&state.hooks).delete(id) {
            Some(hook) => Answer::json(hook.json(), 150.0),
            None => Answer::text(StatusCode::NOT_FOUND, "Hook not found"),
        },

        ["team", "senders"] if get => team_senders(&team, query),
        ["team"] if get => {
            let users: Vec<Value> = team
                .users
                .iter()
                .map(|u| json!({"userId": u.id, "name": u.name, "email": u.email, "role": "admin"}))
                .collect();
            let ids: Vec<&str> = team.users.iter().map(|u| u.id.as_str()).collect();
            let mut t = json!({"_id": team.id, "name": team.name, "userIds": ids, "createdBy": ids[0],
                "customDomain": null, "invitedUsers": [], "hooks": [], "beta": []});
            if query.get("version").map(String::as_str) == Some("v2") {
                t["users"] = Value::Array(users);
            }
            Answer::json(t, 100.0)
        }
        ["users", id] if get => match team.users.iter().find(|u| u.id == *id) {
            Some(u) => Answer::json(user_json(u), 100.0),
            None => Answer::text(StatusCode::NOT_FOUND, "No user found"),
        },
        ["v2", "campaigns", "stats", "batch"] if post => stats_batch(&team, body),
        ["v2", "campaigns", id, "stats"] if get => {
            let (Some(start), Some(end)) = (query.get("startDate"), query.get("endDate")) else {
                return Answer::text(
                    StatusCode::BAD_REQUEST,
                    "Bad params: startDate and endDate are required",
                );
            };
            let (Some(start), Some(end)) = (parse_date(start), parse_date(end)) else {
                return Answer::text(StatusCode::BAD_REQUEST, "Bad params: invalid date");
            };
            match find_campaign(&team, id) {
                Some(c) => Answer::json(Value::Object(stats(&team, c, start, end)), 250.0),
                None => Answer::text(StatusCode::NOT_FOUND, "Campaign not found"),
            }
        }
        ["lemwarm", id, "start" | "pause"] if post && settings.lemwarm_refused.iter().any(|m| m == id) => {
            Answer::text(StatusCode::PAYMENT_REQUIRED, LEMWARM_REFUSAL)
        }
        ["lemwarm", id, action @ ("start" | "pause")] if post => {
            let Some(mailbox) =
                team.users.iter_mut().flat_map(|u| u.mailboxes.iter_mut()).find(|m| m.id == *id)
            else {
                return Answer::text(StatusCode::NOT_FOUND, "Mailbox not found");
            };
            mailbox.lemwarm_active = *action == "start";
            Answer::json(json!({"_id": mailbox.id, "lemwarm": {"active": mailbox.lemwarm_active}}), 200.0)
        }
        ["campaigns"]
        | ["campaigns", _]
        | ["campaigns", _, "export", "leads"]
        | ["campaigns", _, "pause"]
        | ["activities"]
        | ["hooks"]
        | ["hooks", _]
        | ["team"]
        | ["team", "senders"]
        | ["users", _]
        | ["v2", "campaigns", "stats", "batch"]
        | ["v2", "campaigns", _, "stats"]
        | ["lemwarm", _, "start" | "pause"] => Answer::text(StatusCode::METHOD_NOT_ALLOWED, "Bad method"),
        // lemlist's catch-all: any other path is the web app's HTML, with a 200.
        _ => Answer::html(),
    }
}

fn find_campaign<'a>(team: &'a Team, id: &str) -> Option<&'a Campaign> {
    team.campaigns.iter().find(|c| c.id == id)
}

fn param_usize(query: &BTreeMap<String, String>, name: &str, default: usize) -> usize {
    query.get(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn list_campaigns(team: &Team, settings: &Settings, query: &BTreeMap<String, String>) -> Answer {
    let status = query.get("status");
    if status
        .is_some_and(|s| !["running", "draft", "archived", "ended", "paused", "errors"].contains(&s.as_str()))
    {
        return Answer::text(StatusCode::BAD_REQUEST, "Bad params (invalid status parameter)");
    }
    let matching: Vec<&Campaign> =
        team.campaigns.iter().filter(|c| status.is_none_or(|s| &c.status == s)).collect();
    let limit = param_usize(query, "limit", 100).clamp(1, 100);
    let total = matching.len();
    let total_pages = total.div_ceil(limit).max(1);
    let (page, offset) = match settings.list_shape {
        _ if settings.ignore_paging => (1, 0),
        ListShape::Wrapped => {
            let page = param_usize(query, "page", 1).max(1);
            (page, (page - 1) * limit)
        }
        ListShape::Bare => {
            let offset = param_usize(query, "offset", 0);
            (offset / limit + 1, offset)
        }
    };
    let rows: Vec<Value> = matching.iter().skip(offset).take(limit).map(|c| campaign_summary(c)).collect();
    let value = match settings.list_shape {
        ListShape::Bare => Value::Array(rows),
        ListShape::Wrapped => json!({
            "campaigns": rows,
            "pagination": {
                "totalRecords": total,
                "currentPage": page,
                "nextPage": if page < total_pages { Some(page + 1) } else { None },
                "totalPage": total_pages,
                "limit": limit,
            }
        }),
    };
    Answer::json(value, 180.0)
}

fn campaign_summary(c: &Campaign) -> Value {
    let mut v = json!({
        "_id": c.id,
        "status": c.status,
        "createdAt": c.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "createdBy": c.created_by,
        "labels": [],
        "timezone": "Europe/Paris",
        "hasError": c.status == "errors",
    });
    if let Some(name) = &c.name {
        v["name"] = json!(name);
    }
    v
}

fn campaign_detail(c: &Campaign) -> Value {
    let mut v = campaign_summary(c);
    v["senders"] = c
        .senders
        .iter()
        .map(|s| {
            let mut o = json!({"id": s.user_id, "sendUserMailboxId": s.mailbox_id});
            if let Some(email) = &s.email {
                o["email"] = json!(email);
            }
            o
        })
        .collect();
    v["creator"] = json!({"userId": c.created_by});
    v
}

fn lead_json(l: &data::Lead, shape: LeadShape) -> Value {
    let mut o = Map::new();
    o.insert("_id".into(), json!(l.id));
    o.insert("email".into(), json!(l.email));
    o.insert("emailStatus".into(), json!("deliverable"));
    if let Some(c) = &l.company_name {
        o.insert("companyName".into(), json!(c));
    }
    if let Some(c) = &l.company {
        o.insert("company".into(), json!(c));
    }
    if shape == LeadShape::Real {
        o.insert("state".into(), json!(l.state));
        if let Some(s) = &l.state_system {
            o.insert("stateSystem".into(), json!(s));
        }
    }
    o.insert("lastState".into(), json!(l.state));
    o.insert("status".into(), json!(if l.state == "interested" { "interested" } else { "done" }));
    o.extend(l.custom.clone());
    Value::Object(o)
}

fn user_json(u: &data::User) -> Value {
    let mailboxes: Vec<Value> = u
        .mailboxes
        .iter()
        .map(|m| {
            let mut o = json!({
                "_id": m.id, "status": m.status,
                "lemlist": {"emailLimit": m.email_limit},
                "lemwarm": {"active": m.lemwarm_active},
            });
            if let Some(e) = &m.email {
                o["email"] = json!(e);
            }
            if let Some(p) = &m.provider {
                o["provider"] = json!(p);
            }
            o
        })
        .collect();
    json!({"_id": u.id, "email": u.email, "role": "admin", "mailboxes": mailboxes,
           "linkedIn": {"status": false}})
}

fn team_senders(team: &Team, query: &BTreeMap<String, String>) -> Answer {
    let state = query.get("state");
    if state
        .is_some_and(|s| !["running", "draft", "archived", "ended", "paused", "errors"].contains(&s.as_str()))
    {
        return Answer::text(StatusCode::BAD_REQUEST, "Bad params (invalid state parameter)");
    }
    let rows: Vec<Value> = team
        .users
        .iter()
        .filter_map(|u| {
            let campaigns: Vec<Value> = team
                .campaigns
                .iter()
                .filter(|c| c.senders.iter().any(|s| s.user_id == u.id))
                .filter(|c| state.is_none_or(|s| &c.status == s))
                .map(|c| json!({"_id": c.id, "name": c.name, "status": c.status, "sendingChannels": ["email"]}))
                .collect();
            (!campaigns.is_empty() || state.is_none()).then(|| json!({"userId": u.id, "campaigns": campaigns}))
        })
        .collect();
    Answer::json(Value::Array(rows), 150.0)
}

/// ISO-8601 or Unix seconds, as lemlist's date filters take them.
fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(secs) = s.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0);
    }
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc))
}

fn list_activities(team: &Team, query: &BTreeMap<String, String>) -> Answer {
    let min = match query.get("minDate").map(|s| parse_date(s)) {
        Some(None) => return Answer::text(StatusCode::BAD_REQUEST, "Bad params: invalid minDate"),
        Some(Some(d)) => Some(d),
        None => None,
    };
    let max = match query.get("maxDate").map(|s| parse_date(s)) {
        Some(None) => return Answer::text(StatusCode::BAD_REQUEST, "Bad params: invalid maxDate"),
        Some(Some(d)) => Some(d),
        None => None,
    };
    if let (Some(min), Some(max)) = (min, max)
        && max <= min
    {
        return Answer::text(StatusCode::BAD_REQUEST, "Bad params: maxDate must be after minDate");
    }
    let kind = query.get("type");
    let campaign = query.get("campaignId");
    let first_only = query.get("isFirst").map(String::as_str) == Some("true");
    let offset = param_usize(query, "offset", 0);
    let limit = param_usize(query, "limit", 100).clamp(1, 100);
    let rows: Vec<Value> = team
        .activities
        .iter()
        .filter(|a| kind.is_none_or(|k| &a.kind == k))
        .filter(|a| campaign.is_none_or(|c| &a.campaign_id == c))
        .filter(|a| !first_only || a.is_first)
        .filter(|a| min.is_none_or(|m| a.created_at >= m) && max.is_none_or(|m| a.created_at <= m))
        .skip(offset)
        .take(limit)
        .map(|a| serde_json::to_value(a).expect("activities serialise"))
        .collect();
    Answer::json(Value::Array(rows), 200.0)
}

/// Counters over the campaign's activities in `[start, end]`. Zero counters are left out, as
/// lemlist does.
fn stats(team: &Team, c: &Campaign, start: DateTime<Utc>, end: DateTime<Utc>) -> Map<String, Value> {
    let rows: Vec<&data::Activity> = team
        .activities
        .iter()
        .filter(|a| a.campaign_id == c.id && a.created_at >= start && a.created_at <= end)
        .collect();
    let count = |kind: &str| rows.iter().filter(|a| a.kind == kind).count();
    let leads =
        |kind: &str| rows.iter().filter(|a| a.kind == kind).map(|a| &a.lead_id).collect::<HashSet<_>>().len();
    let mut out = Map::new();
    for (name, value) in [
        ("nbLeads", c.leads.len()),
        ("nbLeadsLaunched", leads("emailsSent")),
        ("nbLeadsReached", leads("emailsSent")),
        ("nbLeadsOpened", leads("emailsOpened")),
        ("nbLeadsAnswered", leads("emailsReplied")),
        ("messagesSent", count("emailsSent")),
        ("delivered", count("emailsSent")),
        ("opened", count("emailsOpened")),
        ("clicked", count("emailsClicked")),
        ("replied", count("emailsReplied")),
    ] {
        if value > 0 {
            out.insert(name.into(), json!(value));
        }
    }
    out
}

fn stats_batch(team: &Team, body: &[u8]) -> Answer {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return Answer::text(StatusCode::BAD_REQUEST, "Bad params: invalid JSON body");
    };
    let ids: Vec<&str> = request["campaignIds"]
        .as_array()
        .map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).collect());
    if ids.is_empty() || ids.len() > 100 {
        return Answer::text(StatusCode::BAD_REQUEST, "Bad params: campaignIds must contain 1 to 100 items");
    }
    let (Some(start), Some(end)) = (
        request["startDate"].as_str().and_then(parse_date),
        request["endDate"].as_str().and_then(parse_date),
    ) else {
        return Answer::text(StatusCode::BAD_REQUEST, "Bad params: startDate and endDate are required");
    };
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for id in ids {
        match find_campaign(team, id) {
            Some(c) => {
                let mut s = stats(team, c, start, end);
                s.insert("campaignId".into(), json!(id));
                results.push(Value::Object(s));
            }
            None => errors.push(json!({"campaignId": id, "error": "Campaign not found"})),
        }
    }
    Answer::json(json!({"results": results, "errors": errors}), 400.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_with_empty_user() {
        let keys = vec!["k1".to_owned(), "other".to_owned()];
        let mut h = HeaderMap::new();
        // base64(":other")
        h.insert(http::header::AUTHORIZATION, HeaderValue::from_static("Basic Om90aGVy"));
        assert_eq!(authenticated_key(&keys, &h), Some(1));
        h.insert(http::header::AUTHORIZATION, HeaderValue::from_static("Bearer other"));
        assert_eq!(authenticated_key(&keys, &h), None);
    }

    #[test]
    fn query_decoding() {
        let pairs = url_decode_pairs("minDate=2026-01-01T00%3A00%3A00.000Z&type=emailsSent&x");
        assert_eq!(pairs[0], ("minDate".into(), "2026-01-01T00:00:00.000Z".into()));
        assert_eq!(pairs[2], ("x".into(), String::new()));
    }

    #[test]
    fn endpoint_labels_hide_ids() {
        assert_eq!(
            endpoint_label(&Method::GET, &["campaigns", "cam_4HrZbi8xsez4QlrnL", "export", "leads"]),
            "GET /campaigns/{id}/export/leads"
        );
    }
}
