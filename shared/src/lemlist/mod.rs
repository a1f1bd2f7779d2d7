//! The typed lemlist client.
//!
//! Every request goes through one loop ([`LemlistClient::send`]): ask the permit source, send,
//! read the rate-limit headers, then decide: done, wait and retry (429, 5xx, timeouts, dropped
//! connections, truncated bodies), or fail (other 4xx, an HTML page, the deadline). The endpoint
//! methods only say what to send and how to decode it.

mod error;
mod headers;
mod retry;
mod types;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Method, StatusCode, Url, header};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

pub use error::{BODY_SNIPPET, LemlistError};
pub use headers::{RateLimitInfo, parse_reset, parse_retry_after};
pub use retry::RetryPolicy;
pub use types::*;

use crate::ids::{CampaignId, MailboxId, UserId};
use crate::limiter::{Class, PermitSource, Priority};
use crate::secret::ApiKey;

/// lemlist's largest page.
pub const PAGE_SIZE: usize = 100;
/// A list that has not ended after this many pages is a server that ignores paging.
const MAX_PAGES: usize = 10_000;

/// How to reach lemlist.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: Url,
    pub api_key: ApiKey,
    /// The longest a single attempt may take, body included.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    pub fn new(base_url: Url, api_key: ApiKey) -> Self {
        Self { base_url, api_key, request_timeout: Duration::from_secs(20), retry: RetryPolicy::default() }
    }
}

/// Campaign statuses lemlist filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CampaignStatus {
    Running,
    Draft,
    Archived,
    Ended,
    Paused,
    Errors,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Draft => "draft",
            Self::Archived => "archived",
            Self::Ended => "ended",
            Self::Paused => "paused",
            Self::Errors => "errors",
        }
    }
}

/// Filters of `GET /activities` (paging is the client's business).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ActivityQuery {
    pub kind: Option<String>,
    pub campaign_id: Option<CampaignId>,
    pub is_first: Option<bool>,
    /// `createdAt >= min_date`.
    pub min_date: Option<DateTime<Utc>>,
    /// `createdAt <= max_date`; fixing it freezes the set of rows while paging newest-first.
    pub max_date: Option<DateTime<Utc>>,
}

impl ActivityQuery {
    pub fn of_type(kind: impl Into<String>) -> Self {
        Self { kind: Some(kind.into()), ..Self::default() }
    }

    pub fn campaign(mut self, id: &CampaignId) -> Self {
        self.campaign_id = Some(id.clone());
        self
    }

    pub fn first_only(mut self) -> Self {
        self.is_first = Some(true);
        self
    }

    pub fn between(mut self, min: Option<DateTime<Utc>>, max: Option<DateTime<Utc>>) -> Self {
        self.min_date = min;
        self.max_date = max;
        self
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![("version", "v2".to_owned())];
        if let Some(kind) = &self.kind {
            q.push(("type", kind.clone()));
        }
        if let Some(id) = &self.campaign_id {
            q.push(("campaignId", id.to_string()));
        }
        if let Some(first) = self.is_first {
            q.push(("isFirst", first.to_string()));
        }
        if let Some(min) = self.min_date {
            q.push(("minDate", iso(min)));
        }
        if let Some(max) = self.max_date {
            q.push(("maxDate", iso(max)));
        }
        q
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// What this client has done so far: for benchmarks, refresh summaries and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Requests sent (every attempt).
    pub sent: u64,
    /// Answers of 429.
    pub rate_limited: u64,
    /// 5xx answers, timeouts, dropped connections and undecodable bodies.
    pub faults: u64,
    /// Attempts that were retries.
    pub retries: u64,
    /// Requests waiting for a permit right now: with `sent`, how much work is known so far.
    pub waiting: u64,
    /// Requests sent per class (interactive, scheduled, background).
    pub sent_by_class: [u64; 3],
    /// The longest an interactive request waited for its permit, in ms.
    pub longest_interactive_wait_ms: u64,
}

impl CallStats {
    /// What was sent between `earlier` and these figures (the gauges and maxima are left out).
    pub fn since(&self, earlier: &CallStats) -> CallStats {
        CallStats {
            sent: self.sent.saturating_sub(earlier.sent),
            rate_limited: self.rate_limited.saturating_sub(earlier.rate_limited),
            faults: self.faults.saturating_sub(earlier.faults),
            retries: self.retries.saturating_sub(earlier.retries),
            waiting: 0,
            sent_by_class: std::array::from_fn(|i| {
                self.sent_by_class[i].saturating_sub(earlier.sent_by_class[i])
            }),
            longest_interactive_wait_ms: 0,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    rate_limited: AtomicU64,
    faults: AtomicU64,
    retries: AtomicU64,
    waiting: AtomicU64,
    sent_by_class: [AtomicU64; 3],
    longest_interactive_wait_ms: AtomicU64,
}

/// Counts a request as waiting for its permit until dropped, however the wait ends.
struct Waiting<'a>(&'a AtomicU64);

impl<'a> Waiting<'a> {
    fn start(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(gauge)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The lemlist client. Cheap to clone; clones share the connection pool, the permit source and
/// the counters.
#[derive(Debug, Clone)]
pub struct LemlistClient {
    inner: Arc<Inner>,
    deadline: Option<Instant>,
    /// Who waits for this handle's requests: their place in the budget.
    class: Class,
    /// After this many requests of this handle and its clones, its class becomes another.
    demotion: Option<Arc<Demotion>>,
}

/// A class for a number of requests, then another ([`LemlistClient::with_class_for`]).
#[derive(Debug)]
struct Demotion {
    left: AtomicU64,
    then: Class,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    permits: Arc<dyn PermitSource>,
    counters: Counters,
}

/// One request, described before it is sent.
struct Call<'a> {
    endpoint: &'static str,
    method: Method,
    path: String,
    query: &'a [(&'static str, String)],
    body: Option<&'a Value>,
    /// Whether the call continues work under way (a page after the first).
    follow_up: bool,
    /// Sent at most once: no retry after a fault (a create is not idempotent).
    once: bool,
}

/// What went wrong with one attempt, and whether another one may help.
enum Attempt {
    Retry { after: Duration, error: LemlistError },
    Fail(LemlistError),
}

impl LemlistClient {
    pub fn new(config: ClientConfig, permits: Arc<dyn PermitSource>) -> Result<Self, LemlistError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("lemdash/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LemlistError::Transport { endpoint: "client setup", message: e.to_string() })?;
        Ok(Self {
            inner: Arc::new(Inner { http, config, permits, counters: Counters::default() }),
            deadline: None,
            class: Class::default(),
            demotion: None,
        })
    }

    /// A handle whose requests must all be made before `deadline` (a Lambda's remaining time, an
    /// HTTP request's budget). Waits that would end later fail at once.
    pub fn with_deadline(&self, deadline: Instant) -> Self {
        Self { deadline: Some(deadline), ..self.clone() }
    }

    /// A handle whose requests take their place in the budget as `class` (default: scheduled).
    pub fn with_class(&self, class: Class) -> Self {
        Self { class, demotion: None, ..self.clone() }
    }

    /// A handle whose first `calls` requests (its clones' included) take `class`, and the rest
    /// `then`: a person waits for a first page, but the team's other tools get their reserve
    /// back after a bounded number of calls.
    pub fn with_class_for(&self, class: Class, calls: u64, then: Class) -> Self {
        let demotion = Some(Arc::new(Demotion { left: AtomicU64::new(calls), then }));
        Self { class, demotion, ..self.clone() }
    }

    /// How many more requests take this handle's class before it gives way (`None`: no limit).
    pub fn calls_left_at_class(&self) -> Option<u64> {
        self.demotion.as_ref().map(|d| d.left.load(Ordering::Relaxed))
    }

    /// The class of the next request: this handle's while its demotion has calls left (one is
    /// taken: [`Self::give_back`] returns it when no request is sent), then the demotion's.
    fn next_class(&self) -> (Class, bool) {
        match &self.demotion {
            Some(d) => {
                match d.left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)) {
                    Ok(_) => (self.class, true),
                    Err(_) => (d.then, false),
                }
            }
            None => (self.class, false),
        }
    }

    /// Returns a call [`Self::next_class`] took, for a request that was not sent.
    fn give_back(&self, taken: bool) {
        if let Some(d) = self.demotion.as_ref().filter(|_| taken) {
            d.left.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn class(&self) -> Class {
        self.class
    }

    /// What the team's other tools send per 2-second window, as far as this client's permit
    /// source learned it from lemlist's answers.
    pub fn others_per_window(&self) -> Option<f64> {
        self.inner.permits.others_per_window()
    }

    pub fn stats(&self) -> CallStats {
        let c = &self.inner.counters;
        CallStats {
            sent: c.sent.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            faults: c.faults.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            waiting: c.waiting.load(Ordering::Relaxed),
            sent_by_class: std::array::from_fn(|i| c.sent_by_class[i].load(Ordering::Relaxed)),
            longest_interactive_wait_ms: c.longest_interactive_wait_ms.load(Ordering::Relaxed),
        }
    }

    // ---- endpoints ------------------------------------------------------------------------

    /// `GET /campaigns`, every page, in lemlist's order. Handles both response shapes and stops
    /// on the last page, a short page, or a page that brings nothing new (a server that ignores
    /// the page or offset would otherwise repeat forever).
    pub async fn campaigns(
        &self,
        status: Option<CampaignStatus>,
    ) -> Result<Vec<CampaignSummary>, LemlistError> {
        let mut all = Vec::new();
        let mut seen = HashSet::new();
        for page in 1..=MAX_PAGES {
            let mut query = vec![
                ("version", "v2".to_owned()),
                ("limit", PAGE_SIZE.to_string()),
                ("page", page.to_string()),
                ("offset", ((page - 1) * PAGE_SIZE).to_string()),
            ];
            if let Some(status) = status {
                query.push(("status", status.as_str().to_owned()));
            }
            let call = Call {
                endpoint: "GET /campaigns",
                method: Method::GET,
                path: "campaigns".into(),
                query: &query,
                body: None,
                follow_up: page > 1,
                once: false,
            };
            let (items, more) = match self.send::<CampaignPage>(call).await? {
                CampaignPage::Bare(items) => {
                    let more = items.len() >= PAGE_SIZE;
                    (items, more)
                }
                CampaignPage::Wrapped { campaigns, pagination } => {
                    let more = campaigns.len() >= PAGE_SIZE && pagination.is_none_or(|p| has_next(&p));
                    (campaigns, more)
                }
            };
            let before = all.len();
            all.extend(items.into_iter().filter(|c| seen.insert(c.id.clone())));
            if !more || all.len() == before {
                break;
            }
        }
        Ok(all)
    }

    /// `GET /campaigns/{id}`.
    pub async fn campaign(&self, id: &CampaignId) -> Result<CampaignDetail, LemlistError> {
        self.get("GET /campaigns/{id}", format!("campaigns/{id}"), &[]).await
    }

    /// `GET /campaigns/{id}/export/leads?state=all&format=json`: every lead, one response.
    pub async fn export_leads(&self, id: &CampaignId) -> Result<Vec<Lead>, LemlistError> {
        let query = [("state", "all".to_owned()), ("format", "json".to_owned())];
        self.get("GET /campaigns/{id}/export/leads", format!("campaigns/{id}/export/leads"), &query).await
    }

    /// `GET /activities?version=v2`, paged by offset to the end. Pages follow each other; rows
    /// already seen (by `_id`) are dropped, and a page with nothing new ends the list.
    pub async fn activities(&self, filter: &ActivityQuery) -> Result<Vec<Activity>, LemlistError> {
        let mut all = Vec::new();
        self.activities_each(filter, 0, |rows| all.extend(rows)).await?;
        Ok(all)
    }

    /// The same from page `first` (0-based), handing each page's new rows to `on_page` as it
    /// arrives, so that a caller who folds them keeps only what it folds, and knows how many
    /// pages it has read if an error stops the list. Returns the page after the last one read.
    pub async fn activities_each(
        &self,
        filter: &ActivityQuery,
        first: usize,
        mut on_page: impl FnMut(Vec<Activity>),
    ) -> Result<usize, LemlistError> {
        let base = filter.params();
        let mut seen = HashSet::new();
        for page in first..MAX_PAGES {
            let mut query = base.clone();
            query.push(("limit", PAGE_SIZE.to_string()));
            query.push(("offset", (page * PAGE_SIZE).to_string()));
            let call = Call {
                endpoint: "GET /activities",
                method: Method::GET,
                path: "activities".into(),
                query: &query,
                body: None,
                follow_up: page > first,
                once: false,
            };
            let rows: Vec<Activity> = self.send(call).await?;
            let full = rows.len() >= PAGE_SIZE;
            let fresh: Vec<Activity> = rows.into_iter().filter(|a| seen.insert(a.id.clone())).collect();
            let nothing_new = fresh.is_empty();
            on_page(fresh);
            if !full || nothing_new {
                return Ok(page + 1);
            }
        }
        Ok(MAX_PAGES)
    }

    /// `GET /users/{id}`: a user and their mailboxes.
    pub async fn user(&self, id: &UserId) -> Result<User, LemlistError> {
        self.get("GET /users/{id}", format!("users/{id}"), &[]).await
    }

    /// `GET /team?version=v2`: the team and its members.
    pub async fn team(&self) -> Result<Team, LemlistError> {
        self.get("GET /team", "team".into(), &[("version", "v2".to_owned())]).await
    }

    /// `POST /lemwarm/{mailboxId}/start`.
    pub async fn start_lemwarm(&self, id: &MailboxId) -> Result<(), LemlistError> {
        self.action("POST /lemwarm/{id}/start", format!("lemwarm/{id}/start")).await
    }

    /// `POST /lemwarm/{mailboxId}/pause`.
    pub async fn pause_lemwarm(&self, id: &MailboxId) -> Result<(), LemlistError> {
        self.action("POST /lemwarm/{id}/pause", format!("lemwarm/{id}/pause")).await
    }

    /// `POST /campaigns/{campaignId}/pause`.
    pub async fn pause_campaign(&self, id: &CampaignId) -> Result<(), LemlistError> {
        self.action("POST /campaigns/{id}/pause", format!("campaigns/{id}/pause")).await
    }

    /// `GET /hooks`: every hook of the team, lemdash's and other integrations'.
    pub async fn hooks(&self) -> Result<Vec<Hook>, LemlistError> {
        self.get("GET /hooks", "hooks".into(), &[]).await
    }

    /// `POST /hooks`: a team-wide hook of one event type to `target_url`, with `secret` echoed
    /// in each delivery. Not retried: a create that reached lemlist but whose answer was lost
    /// would meet a 409 the second time; the caller lists instead.
    pub async fn create_hook(
        &self,
        target_url: &str,
        kind: &str,
        secret: &str,
    ) -> Result<Hook, LemlistError> {
        let body = serde_json::json!({"targetUrl": target_url, "type": kind, "secret": secret});
        let call = Call {
            endpoint: "POST /hooks",
            method: Method::POST,
            path: "hooks".into(),
            query: &[],
            body: Some(&body),
            follow_up: false,
            once: true,
        };
        self.send(call).await
    }

    /// `DELETE /hooks/{hookId}` (idempotent: retried like a read; a 404 means it is gone).
    pub async fn delete_hook(&self, id: &str) -> Result<(), LemlistError> {
        let call = Call {
            endpoint: "DELETE /hooks/{id}",
            method: Method::DELETE,
            path: format!("hooks/{id}"),
            query: &[],
            body: None,
            follow_up: false,
            once: false,
        };
        self.send::<serde::de::IgnoredAny>(call).await.map(drop)
    }

    // ---- the request loop -----------------------------------------------------------------

    async fn get<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: String,
        query: &[(&'static str, String)],
    ) -> Result<T, LemlistError> {
        self.send(Call {
            endpoint,
            method: Method::GET,
            path,
            query,
            body: None,
            follow_up: false,
            once: false,
        })
        .await
    }

    /// The three actions are idempotent (start, pause), so they are retried like reads. Their
    /// body is not needed; only the status counts.
    async fn action(&self, endpoint: &'static str, path: String) -> Result<(), LemlistError> {
        let call = Call {
            endpoint,
            method: Method::POST,
            path,
            query: &[],
            body: None,
            follow_up: false,
            once: false,
        };
        self.send::<serde::de::IgnoredAny>(call).await.map(drop)
    }

    async fn send<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, LemlistError> {
        let inner = &*self.inner;
        let policy = inner.config.retry;
        let url = self.url(&call.path)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // One span per attempt: a request's story in the logs shows each call, its wait for
            // a permit and lemlist's answer.
            let span = tracing::info_span!(
                "lemlist_call",
                endpoint = call.endpoint,
                attempt,
                wait_ms = tracing::field::Empty,
                status = tracing::field::Empty,
            );
            let failure = match self.attempt_paced::<T>(&call, &url, attempt).instrument(span.clone()).await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            let _entered = span.enter();
            let (after, error) = match failure {
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry { error, .. }
                    if call.once && !matches!(error, LemlistError::Status { status: 429, .. }) =>
                {
                    return Err(error);
                }
                Attempt::Retry { after, error } => (after, error),
            };
            tracing::warn!(retry_in_ms = after.as_millis() as u64, error = %error, "lemlist call failed");
            if attempt >= policy.max_attempts {
                return Err(match error {
                    LemlistError::Status { status: 429, .. } => {
                        LemlistError::RateLimited { endpoint: call.endpoint, attempts: attempt }
                    }
                    other => other,
                });
            }
            if self.deadline.is_some_and(|d| Instant::now() + after > d) {
                return Err(LemlistError::Deadline { endpoint: call.endpoint, wait: after });
            }
            drop(_entered);
            tokio::time::sleep(after).await;
        }
    }

    /// One attempt, after waiting for its permit.
    async fn attempt_paced<T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        url: &Url,
        attempt: u32,
    ) -> Result<T, Attempt> {
        let inner = &*self.inner;
        // Past its deadline, a handle makes no call, whatever the permits would allow.
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Attempt::Fail(LemlistError::Deadline {
                endpoint: call.endpoint,
                wait: Duration::ZERO,
            }));
        }
        // Pages after the first and retries go ahead of calls that have not started yet.
        let (class, taken) = self.next_class();
        let priority = Priority::of(class);
        let priority = if call.follow_up || attempt > 1 { priority.follow_up() } else { priority };
        let waiting = Waiting::start(&inner.counters.waiting);
        let asked = Instant::now();
        let permit = inner.permits.acquire(self.deadline, priority).await;
        drop(waiting);
        let waited_ms = asked.elapsed().as_millis() as u64;
        tracing::Span::current().record("wait_ms", waited_ms);
        if let Err(e) = permit {
            self.give_back(taken);
            return Err(Attempt::Fail(LemlistError::from_permit(call.endpoint, e)));
        }
        inner.counters.sent.fetch_add(1, Ordering::Relaxed);
        inner.counters.sent_by_class[class as usize].fetch_add(1, Ordering::Relaxed);
        if class == Class::Interactive {
            inner.counters.longest_interactive_wait_ms.fetch_max(waited_ms, Ordering::Relaxed);
        }
        if attempt > 1 {
            inner.counters.retries.fetch_add(1, Ordering::Relaxed);
        }
        self.attempt::<T>(call, url.clone(), attempt).await
    }

    /// One attempt: send, read the headers and the body, classify.
    async fn attempt<T: DeserializeOwned>(
        &self,
        call: &Call<'_>,
        url: Url,
        attempt: u32,
    ) -> Result<T, Attempt> {
        let inner = &*self.inner;
        let policy = inner.config.retry;
        let endpoint = call.endpoint;
        let transient = |message: String| {
            inner.counters.faults.fetch_add(1, Ordering::Relaxed);
            Attempt::Retry {
                after: policy.backoff(attempt),
                error: LemlistError::Transport { endpoint, message },
            }
        };

        let mut request = inner
            .http
            .request(call.method.clone(), url)
            .basic_auth("", Some(inner.config.api_key.expose()))
            .timeout(inner.config.request_timeout)
            .query(call.query);
        if let Some(body) = call.body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| transient(describe(&e)))?;

        let status = response.status();
        let info = RateLimitInfo::from_headers(response.headers());
        if let (Some(remaining), Some(reset)) = (info.remaining, info.reset) {
            inner.permits.observe(remaining, reset);
        }
        let now = Utc::now();
        if let Some(wait) = info.exhausted_until(now).filter(|_| status != StatusCode::TOO_MANY_REQUESTS) {
            // The window is used up: everybody sharing the permit source waits for the reset.
            inner.permits.pause_until(SystemTime::now() + wait).await;
        }
        let is_html = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
        let body = response.bytes().await.map_err(|e| transient(describe(&e)))?;
        tracing::Span::current().record("status", status.as_u16());
        tracing::debug!(remaining = ?info.remaining, "lemlist call");

        if status == StatusCode::TOO_MANY_REQUESTS {
            inner.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            // The deployment's alarm counts this exact message.
            tracing::warn!(endpoint, "lemlist answered 429");
            // Everyone sharing the key pauses until the reset; this request waits a little more,
            // to be sure, with jitter so that refused requests do not all return at once.
            inner.permits.pause_until(SystemTime::now() + info.pause_after_429(now)).await;
            let after = info.retry_after_429(now) + retry::rate_limit_jitter();
            let error = LemlistError::Status { endpoint, status: 429, body: error::snippet(&body) };
            return Err(Attempt::Retry { after, error });
        }
        if status.is_server_error() {
            inner.counters.faults.fetch_add(1, Ordering::Relaxed);
            let error =
                LemlistError::Status { endpoint, status: status.as_u16(), body: error::snippet(&body) };
            return Err(Attempt::Retry { after: policy.backoff(attempt), error });
        }
        if !status.is_success() {
            let error =
                LemlistError::Status { endpoint, status: status.as_u16(), body: error::snippet(&body) };
            return Err(Attempt::Fail(error));
        }
        if is_html || body.trim_ascii_start().starts_with(b"<") {
            return Err(Attempt::Fail(LemlistError::Html { endpoint }));
        }
        // Actions may answer with an empty body.
        let json: &[u8] = if body.trim_ascii().is_empty() { b"null" } else { &body };
        serde_json::from_slice(json).map_err(|e| {
            // A truncated or garbled body is usually a transfer problem: worth one more try.
            inner.counters.faults.fetch_add(1, Ordering::Relaxed);
            let error = LemlistError::Decode { endpoint, message: e.to_string() };
            Attempt::Retry { after: policy.backoff(attempt), error }
        })
    }

    fn url(&self, path: &str) -> Result<Url, LemlistError> {
        let base = self.inner.config.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/{path}")).map_err(|e| LemlistError::Transport {
            endpoint: "url",
            message: format!("bad lemlist base URL: {e}"),
        })
    }
}

fn has_next(p: &Pagination) -> bool {
    match (p.next_page, p.current_page, p.total_page) {
        (Some(_), Some(current), Some(total)) => current < total,
        (Some(_), _, _) => true,
        (None, Some(current), Some(total)) => current < total,
        (None, _, _) => false,
    }
}

/// A transport error in words, without the URL's query (never secret, but noisy).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body interrupted"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() { kind.to_owned() } else { format!("{kind}: {detail}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_for_a_number_of_calls_is_shared_by_clones_then_gives_way() {
        let config = ClientConfig::new("http://127.0.0.1:9/".parse().unwrap(), ApiKey::new("k"));
        let client = LemlistClient::new(config, Arc::new(crate::limiter::Unlimited)).unwrap();
        let page = client.with_class_for(Class::Interactive, 2, Class::Background);
        let (clone, bounded) = (page.clone(), page.with_deadline(Instant::now()));
        let class = |c: &LemlistClient| c.next_class().0;
        assert_eq!(class(&page), Class::Interactive);
        let (_, taken) = clone.next_class();
        clone.give_back(taken);
        assert_eq!(page.calls_left_at_class(), Some(1), "a call not sent is given back");
        let classes = [class(&clone), class(&bounded), class(&page)];
        assert_eq!(classes, [Class::Interactive, Class::Background, Class::Background]);
        assert_eq!(page.calls_left_at_class(), Some(0));
        assert_eq!(class(&page.with_class(Class::Scheduled)), Class::Scheduled, "a new class, no count");
        assert_eq!(class(&client), Class::Scheduled);
    }

    #[test]
    fn pagination_end_detection() {
        let p =
            |current, next, total| Pagination { current_page: current, next_page: next, total_page: total };
        assert!(has_next(&p(Some(1), Some(2), Some(2))));
        assert!(!has_next(&p(Some(2), None, Some(2))));
        assert!(!has_next(&p(Some(2), Some(3), Some(2))), "currentPage >= totalPage ends the list");
        assert!(has_next(&p(None, Some(2), None)));
        assert!(!has_next(&p(None, None, None)));
    }

    #[test]
    fn activity_query_parameters() {
        let id: CampaignId = "cam_4HrZbi8xsez4QlrnL".parse().unwrap();
        let min = "2026-01-01T00:00:00Z".parse().unwrap();
        let q = ActivityQuery::of_type("emailsOpened").campaign(&id).first_only().between(Some(min), None);
        let params = q.params();
        assert!(params.contains(&("version", "v2".into())));
        assert!(params.contains(&("type", "emailsOpened".into())));
        assert!(params.contains(&("campaignId", "cam_4HrZbi8xsez4QlrnL".into())));
        assert!(params.contains(&("isFirst", "true".into())));
        assert!(params.contains(&("minDate", "2026-01-01T00:00:00.000Z".into())));
        assert!(!params.iter().any(|(k, _)| *k == "maxDate"));
    }

    #[test]
    fn debug_output_of_a_client_hides_the_key() {
        let config =
            ClientConfig::new(Url::parse("http://127.0.0.1:1").unwrap(), ApiKey::new("top-secret-key"));
        let client = LemlistClient::new(config, Arc::new(crate::limiter::Unlimited)).unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("top-secret-key"));
        assert!(shown.contains("***"));
    }
}
