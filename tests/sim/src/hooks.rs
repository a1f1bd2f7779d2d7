//! lemlist's webhooks, as the simulator plays them: `GET/POST/DELETE /hooks` with lemlist's
//! rules (one hook per target URL, a 409 for a second; the secret never returned, echoed in each
//! delivery's body), and the delivery of every new activity to the hooks of its type, the way a
//! best-effort sender does it: late by a delay with jitter (so out of order), sometimes twice,
//! sometimes never, retried with backoff after a failure, and a hook disabled after too many
//! failed deliveries in a row.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{Value, json};

use crate::data::{Activity, lemlist_id};

/// The event types a hook may name (the email activities, the lead-level events, the mailbox
/// signals and the lead-state groups of lemlist's catalogue that the simulator knows).
pub const TYPES: &[&str] = &[
    "emailsSent",
    "emailsOpened",
    "emailsClicked",
    "emailsReplied",
    "emailsBounced",
    "emailsFailed",
    "emailsInterested",
    "emailsNotInterested",
    "emailsUnsubscribed",
    "paused",
    "resumed",
    "stopped",
    "campaignComplete",
    "lemwarmPaused",
    "connectionIssue",
    "sendLimitReached",
    "customDomainErrors",
    "deliverabilityAlertTriggered",
    "contacted",
    "hooked",
    "attracted",
    "warmed",
    "interested",
    "notInterested",
];

/// How deliveries behave.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Every delivery waits this long, plus up to `jitter`, after the activity.
    pub delay: Duration,
    pub jitter: Duration,
    /// Share of activities delivered twice (each copy with its own delay).
    pub duplicates: f64,
    /// Share of activities never delivered.
    pub drops: f64,
    /// Attempts of one delivery (the first and its retries, backing off from 1 s).
    pub attempts: u32,
    /// A hook whose deliveries failed this many times in a row is disabled.
    pub disable_after: u32,
}

impl Default for Delivery {
    /// Like lemlist's "real-time": a second or so, never lost, never twice.
    fn default() -> Self {
        Self {
            delay: Duration::from_millis(300),
            jitter: Duration::from_millis(900),
            duplicates: 0.0,
            drops: 0.0,
            attempts: 4,
            disable_after: 20,
        }
    }
}

/// One registered hook.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    pub id: String,
    pub target_url: String,
    pub kind: Option<String>,
    pub secret: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Failed deliveries in a row.
    pub failures: u32,
    pub disabled: bool,
}

impl Hook {
    /// What `GET /hooks` and `POST /hooks` show: never the secret.
    pub fn json(&self) -> Value {
        json!({"_id": self.id, "targetUrl": self.target_url, "type": self.kind,
            "createdAt": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)})
    }

    fn wants(&self, kind: &str) -> bool {
        !self.disabled && self.kind.as_deref().is_none_or(|k| k == kind)
    }
}

/// What the deliveries did, for assertions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// POSTs sent (retries and duplicates included).
    pub posts: u64,
    /// Deliveries answered 2xx.
    pub accepted: u64,
    /// Activities dropped on purpose.
    pub dropped: u64,
    /// Activities sent twice on purpose.
    pub duplicated: u64,
    /// Deliveries that failed every attempt.
    pub failed: u64,
}

/// The team's hooks and what was delivered.
#[derive(Debug, Default)]
pub struct Hooks {
    pub hooks: Vec<Hook>,
    pub delivered: Delivered,
}

/// Why a `POST /hooks` was refused.
pub enum Refused {
    BadRequest(String),
    Conflict,
}

impl Hooks {
    /// `POST /hooks`.
    pub fn create(&mut self, body: &[u8], rng: &mut impl Rng, now: DateTime<Utc>) -> Result<Hook, Refused> {
        let body: Value = serde_json::from_slice(body)
            .map_err(|_| Refused::BadRequest("Bad params: the body is not JSON".into()))?;
        let Some(target) = body.get("targetUrl").and_then(Value::as_str).filter(|t| !t.is_empty()) else {
            return Err(Refused::BadRequest("Bad params: targetUrl is required".into()));
        };
        let kind = body.get("type").and_then(Value::as_str).map(str::to_owned);
        if let Some(kind) = &kind
            && !TYPES.contains(&kind.as_str())
        {
            return Err(Refused::BadRequest(format!("Bad params: unknown type {kind}")));
        }
        if self.hooks.iter().any(|h| h.target_url == target) {
            return Err(Refused::Conflict);
        }
        let hook = Hook {
            id: lemlist_id(rng, "hoo_"),
            target_url: target.to_owned(),
            kind,
            secret: body.get("secret").and_then(Value::as_str).map(str::to_owned),
            created_at: now,
            failures: 0,
            disabled: false,
        };
        self.hooks.push(hook.clone());
        Ok(hook)
    }

    /// `DELETE /hooks/{id}`: the hook deleted, or `None`.
    pub fn delete(&mut self, id: &str) -> Option<Hook> {
        let at = self.hooks.iter().position(|h| h.id == id)?;
        Some(self.hooks.remove(at))
    }
}

/// One POST to send: to which hook, what body, after how long.
struct Post {
    hook: String,
    url: String,
    body: Value,
    after: Duration,
}

/// The deliveries of new activities: each to every enabled hook of its type, by the rules of
/// `delivery`. `team_id` goes into each body, as lemlist's do.
pub fn schedule(
    hooks: &Arc<Mutex<Hooks>>,
    delivery: &Delivery,
    team_id: &str,
    activities: Vec<Activity>,
    client: &reqwest::Client,
) {
    let mut rng = rand::rng();
    let mut posts = Vec::new();
    {
        let mut all = hooks.lock().unwrap_or_else(|e| e.into_inner());
        for activity in activities {
            let targets: Vec<(String, String, Option<String>)> = all
                .hooks
                .iter()
                .filter(|h| h.wants(&activity.kind))
                .map(|h| (h.id.clone(), h.target_url.clone(), h.secret.clone()))
                .collect();
            if targets.is_empty() {
                continue;
            }
            if rng.random_bool(delivery.drops.clamp(0.0, 1.0)) {
                all.delivered.dropped += 1;
                continue;
            }
            let copies = if rng.random_bool(delivery.duplicates.clamp(0.0, 1.0)) {
                all.delivered.duplicated += 1;
                2
            } else {
                1
            };
            for (hook, url, secret) in targets {
                let mut body = serde_json::to_value(&activity).expect("activities serialise");
                body["teamId"] = Value::from(team_id);
                if let Some(secret) = secret {
                    body["secret"] = Value::from(secret);
                }
                for _ in 0..copies {
                    let jitter = rng.random_range(0..=delivery.jitter.as_millis() as u64);
                    let after = delivery.delay + Duration::from_millis(jitter);
                    posts.push(Post { hook: hook.clone(), url: url.clone(), body: body.clone(), after });
                }
            }
        }
    }
    for post in posts {
        tokio::spawn(send(hooks.clone(), delivery.clone(), client.clone(), post));
    }
}

/// Sends one delivery, retrying with backoff; counts the outcome on its hook.
async fn send(hooks: Arc<Mutex<Hooks>>, delivery: Delivery, client: reqwest::Client, post: Post) {
    tokio::time::sleep(post.after).await;
    let mut backoff = Duration::from_secs(1);
    for attempt in 1..=delivery.attempts.max(1) {
        hooks.lock().unwrap_or_else(|e| e.into_inner()).delivered.posts += 1;
        let ok = client
            .post(&post.url)
            .json(&post.body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let last = attempt == delivery.attempts.max(1);
        if !record(&hooks, &post.hook, ok, last, delivery.disable_after) {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
}

/// Counts one attempt's outcome on its hook; whether to try again.
fn record(hooks: &Mutex<Hooks>, id: &str, ok: bool, last: bool, disable_after: u32) -> bool {
    let mut all = hooks.lock().unwrap_or_else(|e| e.into_inner());
    let Some(hook) = all.hooks.iter_mut().find(|h| h.id == id) else { return false };
    if ok {
        hook.failures = 0;
        all.delivered.accepted += 1;
        return false;
    }
    hook.failures += 1;
    if hook.failures >= disable_after {
        hook.disabled = true;
    }
    if last || hook.disabled {
        all.delivered.failed += 1;
        return false;
    }
    true
}
