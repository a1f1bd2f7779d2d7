//! Configuration: plain values read once from the environment at start-up. A missing or
//! malformed variable fails at once with a message that names it.
//!
//! This module is a leaf: it knows nothing of the parts it configures. [`crate::app`] reads a
//! [`Config`] and assembles the parts from it.

use std::time::Duration;

use reqwest::Url;

use crate::secret::{ApiKey, SlackUrl};

/// Every environment variable lemdash reads (the deployment test checks the template sets no
/// other).
pub const ENV_VARS: [&str; 37] = [
    "LEMLIST_API_KEY",
    "LEMLIST_API_KEY_SECRET",
    "LEMLIST_BASE_URL",
    "LEMLIST_TIMEOUT_SECS",
    "LIMITER_TABLE",
    "LIMITER_MAX_PROCESSES",
    "LIMITER_HORIZON_MS",
    "LEMLIST_BUDGET_SHARE",
    "FORCED_REFRESH_MIN_SECS",
    "SYNC_MODE",
    "SYNC_OVERLAP_SECS",
    "DETAILS_MAX_AGE_SECS",
    "LEADS_MAX_AGE_SECS",
    "FULL_RESYNC_EVERY_SECS",
    "ALERT_BOUNCE_RATE",
    "ALERT_MIN_SENT",
    "ALERT_TOPIC_ARN",
    "SLACK_WEBHOOK_SECRET",
    "SLACK_WEBHOOK_URL",
    "CONSOLE_URL",
    "CONSOLE_AUTHORIZE_URL",
    "CONSOLE_TOKEN_URL",
    "CONSOLE_CLIENT_ID",
    "CONSOLE_SCOPE",
    "SNAPSHOT_TABLE",
    "REFRESH_LEASE_SECS",
    "REFRESH_TRIGGER",
    "ALLOWED_ORIGINS",
    "REQUEST_BUDGET_SECS",
    "AUTH_REQUIRED",
    "LEMDASH_PUBLIC_URL",
    "EVENTS_TABLE",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_LAMBDA_FUNCTION_NAME",
    "RUST_LOG",
    "AWS_LAMBDA_LOG_FORMAT",
    "AWS_LAMBDA_LOG_LEVEL",
];

/// lemlist's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.lemlist.com/api";

/// lemlist's limit per key and window: the most processes that can share a key is one per
/// request of the window.
const MAX_SHARING_PROCESSES: u32 = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Everything lemdash is configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub lemlist: LemlistConfig,
    pub limiter: LimiterConfig,
    pub snapshots: SnapshotConfig,
    pub sync: SyncConfig,
    pub alerts: AlertConfig,
    pub http: HttpConfig,
    pub hooks: HooksConfig,
    /// `AWS_ENDPOINT_URL_DYNAMODB`, when it points at a local emulator: lemdash then creates a
    /// missing table itself. Against AWS it never creates tables.
    pub local_dynamodb: Option<String>,
}

/// How to reach lemlist.
#[derive(Debug, Clone, PartialEq)]
pub struct LemlistConfig {
    /// `LEMLIST_BASE_URL` (default lemlist's own).
    pub base_url: Url,
    /// Where the key comes from; `None` when neither variable is set (the local runner then
    /// offers its simulator; everything else refuses to start).
    pub key: Option<KeySource>,
    /// `LEMLIST_TIMEOUT_SECS`: the longest one attempt may take (default 20).
    pub timeout: Duration,
}

/// Where the lemlist API key comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySource {
    /// `LEMLIST_API_KEY` itself.
    Value(ApiKey),
    /// `LEMLIST_API_KEY_SECRET`: a Secrets Manager secret (name or ARN) holding the key, how the
    /// functions run in AWS. It wins over `LEMLIST_API_KEY`.
    Secret(String),
}

/// Where the lemlist budget is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct LimiterConfig {
    /// `LIMITER_TABLE`: the DynamoDB table shared by every invocation. Unset: the in-process
    /// strict pacer (one process per key, e.g. a local run).
    pub table: Option<String>,
    /// `LIMITER_MAX_PROCESSES` (1–20, default 4): the most processes sharing the key at once;
    /// it sets the degraded pace when the table is unreachable.
    pub max_processes: u32,
    /// `LIMITER_HORIZON_MS` (100–60000, default 250): how far ahead a process may reserve. A
    /// slot reserved before a pause was known may still be used up to this long after it.
    pub horizon: Duration,
    /// `LEMLIST_BUDGET_SHARE` (above 0, up to 1; default 0.75): the share of the key's 20
    /// requests per 2 s that scheduled and background work may use. People's requests may use
    /// the whole budget; the rest is headroom for the team's other lemlist tools.
    pub budget_share: f64,
}

/// How a request that needs a refresh gets one started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// This process runs it, and it carries on after the request stops waiting (the local
    /// runner: a process that outlives its requests).
    InProcess,
    /// The request runs it and stops waiting at its deadline, dropping what is left (a Lambda
    /// function without a table: nothing may run after its response, the process is frozen).
    Inline,
    /// A `request` item is written to the snapshot table; in AWS its stream starts the refresh
    /// function, which may run longer than API Gateway allows a request.
    Table,
}

/// Stored snapshots and the refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotConfig {
    /// `SNAPSHOT_TABLE`: the DynamoDB table. Unset: snapshots are kept in this process.
    pub table: Option<String>,
    /// `REFRESH_LEASE_SECS` (5–900, default 30): how long a refresh's lease lasts unless renewed
    /// (it is renewed every third of that): how soon a crashed refresh stops blocking the next.
    pub lease: Duration,
    /// `REFRESH_TRIGGER` (`in-process` or `table`). Default: `table` in Lambda with a
    /// `SNAPSHOT_TABLE`, otherwise `in-process`.
    pub trigger: Trigger,
    /// `FORCED_REFRESH_MIN_SECS` (0–3600, default 15): `?refresh=true` starts a computation only
    /// when the newest snapshot is at least this old; sooner, it is served as it is.
    pub forced_refresh_min: Duration,
}

/// How a refresh reads lemlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Read what can have changed since the last refresh, keeping a sync state per key.
    Incremental,
    /// Read everything on every refresh, keeping no state (lemdash's first behaviour).
    Full,
}

/// The incremental sync's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConfig {
    /// `SYNC_MODE` (`incremental` or `full`, default `incremental`).
    pub mode: SyncMode,
    /// `SYNC_OVERLAP_SECS` (0–3600, default 300): how far before the last refresh each activity
    /// read starts again, for activities lemlist makes visible after their timestamp.
    pub overlap: Duration,
    /// `DETAILS_MAX_AGE_SECS` (60–86400, default 3600): the oldest the senders of a campaign
    /// that is not running may be (running campaigns' are read on every refresh).
    pub details_max_age: Duration,
    /// `LEADS_MAX_AGE_SECS` (60–86400, default 3600): with webhooks, the oldest a running
    /// campaign's lead figures and senders, and a team member's mailboxes, may be when no event
    /// marked them (nothing reports a lead import, a senders edit, lemwarm started or a mailbox
    /// added). Without webhooks they are read on every refresh.
    pub leads_max_age: Duration,
    /// `FULL_RESYNC_EVERY_SECS` (600–2592000, default 86400): how often the whole history is
    /// read again from scratch, at the lowest priority, to correct any drift.
    pub full_resync_every: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            mode: SyncMode::Incremental,
            overlap: Duration::from_secs(300),
            details_max_age: Duration::from_secs(3600),
            leads_max_age: Duration::from_secs(3600),
            full_resync_every: Duration::from_secs(86_400),
        }
    }
}

/// When alerts are raised, and where they go.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    /// `ALERT_BOUNCE_RATE` (percent, above 0 and up to 100; default 5): a mailbox whose 7-day
    /// bounce rate reaches it raises an alert.
    pub bounce_rate: f64,
    /// `ALERT_MIN_SENT` (1–1000000, default 50): the fewest messages over 7 days a rate is
    /// judged on.
    pub min_sent: u64,
    /// `ALERT_TOPIC_ARN`: the SNS topic alerts are published to. Unset: logged only (and
    /// printed by `lemdash serve`).
    pub topic_arn: Option<String>,
    /// Slack, when set ([`SlackSource`]).
    pub slack: Option<SlackSource>,
    /// `CONSOLE_URL`: the console's address, for the links in Slack messages. Default:
    /// `LEMDASH_PUBLIC_URL`.
    pub console_url: Option<String>,
}

/// The HTTP side of the functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// `ALLOWED_ORIGINS`: comma-separated origins a browser may call from (`*` for any). Unset:
    /// none, same-origin only.
    pub allowed_origins: Vec<String>,
    /// `REQUEST_BUDGET_SECS`: how long one request may take (default 25, under API Gateway's 29).
    pub budget: Duration,
    /// `AUTH_REQUIRED` (`true` or `false`): whether a Lambda request must carry the identity
    /// API Gateway's authorizer established (a JWT's claims, or IAM). Default: `true` in
    /// Lambda, `false` elsewhere (the local runner has no authorizer in front of it).
    pub auth_required: bool,
    /// How the console signs people in: `CONSOLE_AUTHORIZE_URL`, `CONSOLE_TOKEN_URL` and
    /// `CONSOLE_CLIENT_ID` (all three, or none: no sign-in), `CONSOLE_SCOPE` (default `openid`).
    pub sign_in: Option<SignIn>,
}

/// The identity provider the console signs in with (authorization code with PKCE: a public
/// client, so nothing here is secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignIn {
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    pub scope: String,
}

/// Where Slack messages go: `SLACK_WEBHOOK_SECRET` (a Secrets Manager secret holding the
/// incoming-webhook URL) or, locally, `SLACK_WEBHOOK_URL`. The URL is a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackSource {
    Secret(String),
    Url(SlackUrl),
}

/// Why webhooks are off without a public URL.
pub const HOOKS_OFF_NO_URL: &str =
    "LEMDASH_PUBLIC_URL is not set: lemlist cannot reach lemdash, which learns of change by polling only";

/// Why webhooks are off in Lambda without an events table.
pub const HOOKS_OFF_IN_LAMBDA: &str =
    "EVENTS_TABLE is not set: in Lambda, deliveries are kept in DynamoDB (lemdash-hooks); lemdash polls only";

/// lemlist's webhooks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HooksConfig {
    /// `LEMDASH_PUBLIC_URL`: the base URL lemlist can reach lemdash at (no trailing slash).
    /// Without it, or in Lambda without an events table, lemdash polls only.
    pub public_url: Option<String>,
    /// `EVENTS_TABLE`: where the receiver keeps deliveries (DynamoDB); without it, in this
    /// process's memory (the local runner).
    pub events_table: Option<String>,
    /// Why webhooks are off, when they are.
    pub off_because: Option<&'static str>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads any lookup (tests pass a map instead of touching the process environment). Blank
    /// values count as unset.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let in_lambda = var("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let local_dynamodb = var("AWS_ENDPOINT_URL_DYNAMODB").filter(|e| is_local_endpoint(e));

        let base = var("LEMLIST_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let base_url = Url::parse(&base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| invalid("LEMLIST_BASE_URL", format!("{base:?} is not an http(s) URL")))?;
        let key = match (var("LEMLIST_API_KEY_SECRET"), var("LEMLIST_API_KEY")) {
            (Some(secret), _) => Some(KeySource::Secret(secret)),
            (None, Some(key)) => Some(KeySource::Value(ApiKey::new(key))),
            (None, None) => None,
        };
        let timeout = seconds(&var, "LEMLIST_TIMEOUT_SECS", 20.0, 0.0, 900.0)?;

        let max_processes =
            whole(&var, "LIMITER_MAX_PROCESSES", 4, 1..=u64::from(MAX_SHARING_PROCESSES))? as u32;
        let horizon = Duration::from_millis(whole(&var, "LIMITER_HORIZON_MS", 250, 100..=60_000)?);
        let budget_share = match var("LEMLIST_BUDGET_SHARE") {
            None => 0.75,
            Some(raw) => raw.parse::<f64>().ok().filter(|s| *s > 0.0 && *s <= 1.0).ok_or_else(|| {
                invalid("LEMLIST_BUDGET_SHARE", format!("{raw:?} is not a fraction above 0 and up to 1"))
            })?,
        };
        let limiter = LimiterConfig { table: var("LIMITER_TABLE"), max_processes, horizon, budget_share };

        let table = var("SNAPSHOT_TABLE");
        let lease = Duration::from_secs(whole(&var, "REFRESH_LEASE_SECS", 30, 5..=900)?);
        let trigger = match var("REFRESH_TRIGGER").as_deref() {
            None if in_lambda && table.is_some() => Trigger::Table,
            None | Some("in-process") if in_lambda => Trigger::Inline,
            None | Some("in-process") => Trigger::InProcess,
            Some("table") if table.is_some() => Trigger::Table,
            Some("table") => return Err(invalid("REFRESH_TRIGGER", "`table` needs SNAPSHOT_TABLE".into())),
            Some(other) => {
                return Err(invalid("REFRESH_TRIGGER", format!("{other:?} is not `in-process` or `table`")));
            }
        };
        let forced_refresh_min = Duration::from_secs(whole(&var, "FORCED_REFRESH_MIN_SECS", 15, 0..=3600)?);
        let snapshots = SnapshotConfig { table, lease, trigger, forced_refresh_min };

        let mode = match var("SYNC_MODE").as_deref() {
            None | Some("incremental") => SyncMode::Incremental,
            Some("full") => SyncMode::Full,
            Some(other) => {
                return Err(invalid("SYNC_MODE", format!("{other:?} is not `incremental` or `full`")));
            }
        };
        let sync = SyncConfig {
            mode,
            overlap: Duration::from_secs(whole(&var, "SYNC_OVERLAP_SECS", 300, 0..=3600)?),
            details_max_age: Duration::from_secs(whole(&var, "DETAILS_MAX_AGE_SECS", 3600, 60..=86_400)?),
            leads_max_age: Duration::from_secs(whole(&var, "LEADS_MAX_AGE_SECS", 3600, 60..=86_400)?),
            full_resync_every: Duration::from_secs(whole(
                &var,
                "FULL_RESYNC_EVERY_SECS",
                86_400,
                600..=2_592_000,
            )?),
        };

        let bounce_rate = match var("ALERT_BOUNCE_RATE") {
            None => 5.0,
            Some(raw) => raw.parse::<f64>().ok().filter(|r| *r > 0.0 && *r <= 100.0).ok_or_else(|| {
                invalid("ALERT_BOUNCE_RATE", format!("{raw:?} is not a percentage above 0 and up to 100"))
            })?,
        };
        let alerts = AlertConfig {
            bounce_rate,
            min_sent: whole(&var, "ALERT_MIN_SENT", 50, 1..=1_000_000)?,
            topic_arn: var("ALERT_TOPIC_ARN"),
            slack: match (var("SLACK_WEBHOOK_SECRET"), var("SLACK_WEBHOOK_URL")) {
                (Some(secret), _) => Some(SlackSource::Secret(secret)),
                (None, Some(url)) => Some(SlackSource::Url(
                    slack_url(&url).map_err(|why| invalid("SLACK_WEBHOOK_URL", why.into()))?,
                )),
                (None, None) => None,
            },
            console_url: var("CONSOLE_URL")
                .or_else(|| var("LEMDASH_PUBLIC_URL"))
                .map(|u| u.trim_end_matches('/').to_owned()),
        };

        let allowed_origins = var("ALLOWED_ORIGINS")
            .map(|v| {
                v.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let budget = seconds(&var, "REQUEST_BUDGET_SECS", 25.0, 0.0, 900.0)?;
        let auth_required = match var("AUTH_REQUIRED").as_deref() {
            None => in_lambda,
            Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(invalid("AUTH_REQUIRED", format!("{other:?} is not `true` or `false`")));
            }
        };
        let sign_in = match (var("CONSOLE_AUTHORIZE_URL"), var("CONSOLE_TOKEN_URL"), var("CONSOLE_CLIENT_ID"))
        {
            (None, None, None) => None,
            (Some(authorize_url), Some(token_url), Some(client_id)) => {
                for (name, url) in
                    [("CONSOLE_AUTHORIZE_URL", &authorize_url), ("CONSOLE_TOKEN_URL", &token_url)]
                {
                    let ok = Url::parse(url).ok().is_some_and(|u| {
                        u.scheme() == "https" || (u.scheme() == "http" && is_local_endpoint(url))
                    });
                    if !ok {
                        return Err(invalid(
                            name,
                            format!("{url:?} is not an https URL (http only on 127.0.0.1)"),
                        ));
                    }
                }
                let scope = var("CONSOLE_SCOPE").unwrap_or_else(|| "openid".to_owned());
                Some(SignIn { authorize_url, token_url, client_id, scope })
            }
            _ => {
                return Err(invalid(
                    "CONSOLE_CLIENT_ID",
                    "sign-in needs CONSOLE_AUTHORIZE_URL, CONSOLE_TOKEN_URL and CONSOLE_CLIENT_ID together"
                        .into(),
                ));
            }
        };
        let http = HttpConfig { allowed_origins, budget, auth_required, sign_in };

        let public_url = match var("LEMDASH_PUBLIC_URL") {
            None => None,
            Some(raw) => Some(
                Url::parse(&raw)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.query().is_none())
                    .map(|u| u.as_str().trim_end_matches('/').to_owned())
                    .ok_or_else(|| invalid("LEMDASH_PUBLIC_URL", format!("{raw:?} is not an http(s) URL")))?,
            ),
        };
        let events_table = var("EVENTS_TABLE");
        let (public_url, off_because) = match public_url {
            None => (None, Some(HOOKS_OFF_NO_URL)),
            Some(_) if in_lambda && events_table.is_none() => (None, Some(HOOKS_OFF_IN_LAMBDA)),
            Some(url) => (Some(url), None),
        };
        let hooks = HooksConfig { public_url, events_table, off_because };

        Ok(Self {
            lemlist: LemlistConfig { base_url, key, timeout },
            limiter,
            snapshots,
            sync,
            alerts,
            http,
            hooks,
            local_dynamodb,
        })
    }
}

fn invalid(name: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { name, reason }
}

/// A whole number in `range`, or `default` when unset.
fn whole(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(raw) = var(name) else { return Ok(default) };
    raw.parse().ok().filter(|n| range.contains(n)).ok_or_else(|| {
        invalid(name, format!("{raw:?} is not a whole number from {} to {}", range.start(), range.end()))
    })
}

/// A number of seconds in `(min, max]`, or `default` when unset.
fn seconds(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: f64,
    min: f64,
    max: f64,
) -> Result<Duration, ConfigError> {
    let Some(raw) = var(name) else { return Ok(Duration::from_secs_f64(default)) };
    raw.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > min && *s <= max)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            invalid(name, format!("{raw:?} is not a number of seconds above {min} and up to {max}"))
        })
}

/// Whether `endpoint` is a local emulator (where lemdash may create its tables).
/// A Slack incoming-webhook URL: https, or http on 127.0.0.1 (the tests' endpoint).
pub fn slack_url(raw: &str) -> Result<SlackUrl, &'static str> {
    let raw = raw.trim();
    if raw.starts_with("https://") || (raw.starts_with("http://") && is_local_endpoint(raw)) {
        Ok(SlackUrl::new(raw))
    } else {
        Err("a Slack webhook URL starts with https:// (http:// only on 127.0.0.1)")
    }
}

pub fn is_local_endpoint(endpoint: &str) -> bool {
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint);
    ["localhost", "127.", "[::1]", "0.0.0.0"].iter().any(|p| host.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(move |k| map.get(k).cloned())
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        read(pairs).unwrap_err().to_string()
    }

    #[test]
    fn the_key_comes_from_the_secret_when_one_is_named() {
        assert_eq!(read(&[]).unwrap().lemlist.key, None);
        assert_eq!(read(&[("LEMLIST_API_KEY", "  ")]).unwrap().lemlist.key, None, "blank is unset");
        assert_eq!(
            read(&[("LEMLIST_API_KEY", " k ")]).unwrap().lemlist.key,
            Some(KeySource::Value(ApiKey::new("k")))
        );
        let named = read(&[("LEMLIST_API_KEY", "k"), ("LEMLIST_API_KEY_SECRET", " lemdash/key ")]).unwrap();
        assert_eq!(named.lemlist.key, Some(KeySource::Secret("lemdash/key".into())));
        let blank_secret = read(&[("LEMLIST_API_KEY", "k"), ("LEMLIST_API_KEY_SECRET", " ")]).unwrap();
        assert_eq!(blank_secret.lemlist.key, Some(KeySource::Value(ApiKey::new("k"))));
    }

    #[test]
    fn defaults() {
        let c = read(&[]).unwrap();
        assert_eq!(c.lemlist.base_url.as_str(), "https://api.lemlist.com/api");
        assert_eq!(c.lemlist.timeout, Duration::from_secs(20));
        assert_eq!(
            c.limiter,
            LimiterConfig {
                table: None,
                max_processes: 4,
                horizon: Duration::from_millis(250),
                budget_share: 0.75
            }
        );
        assert_eq!(
            c.snapshots,
            SnapshotConfig {
                table: None,
                lease: Duration::from_secs(30),
                trigger: Trigger::InProcess,
                forced_refresh_min: Duration::from_secs(15)
            }
        );
        assert_eq!(
            c.http,
            HttpConfig {
                allowed_origins: vec![],
                budget: Duration::from_secs(25),
                auth_required: false,
                sign_in: None
            }
        );
        assert_eq!(c.sync, SyncConfig::default());
        assert_eq!(c.sync.mode, SyncMode::Incremental);
        assert_eq!(c.local_dynamodb, None);
    }

    #[test]
    fn overrides() {
        let c = read(&[
            ("LEMLIST_API_KEY", "k"),
            ("LEMLIST_BASE_URL", "http://127.0.0.1:9000/api"),
            ("LEMLIST_TIMEOUT_SECS", "2.5"),
            ("LIMITER_TABLE", "lemdash-limiter"),
            ("LIMITER_MAX_PROCESSES", "8"),
            ("LIMITER_HORIZON_MS", "500"),
            ("LEMLIST_BUDGET_SHARE", "0.5"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
            ("ALLOWED_ORIGINS", "https://a.example/, https://b.example,,"),
            ("REQUEST_BUDGET_SECS", "10"),
        ])
        .unwrap();
        assert_eq!(c.lemlist.base_url.as_str(), "http://127.0.0.1:9000/api");
        assert_eq!(c.lemlist.timeout, Duration::from_millis(2500));
        assert_eq!(
            c.limiter,
            LimiterConfig {
                table: Some("lemdash-limiter".into()),
                max_processes: 8,
                horizon: Duration::from_millis(500),
                budget_share: 0.5
            }
        );
        assert_eq!(c.local_dynamodb.as_deref(), Some("http://127.0.0.1:8000"));
        assert_eq!(c.http.allowed_origins, vec!["https://a.example", "https://b.example"]);
        assert_eq!(c.http.budget, Duration::from_secs(10));
        let sync = read(&[
            ("SYNC_MODE", "full"),
            ("SYNC_OVERLAP_SECS", "0"),
            ("DETAILS_MAX_AGE_SECS", "600"),
            ("LEADS_MAX_AGE_SECS", "7200"),
            ("FULL_RESYNC_EVERY_SECS", "3600"),
        ])
        .unwrap()
        .sync;
        assert_eq!(
            sync,
            SyncConfig {
                mode: SyncMode::Full,
                overlap: Duration::ZERO,
                details_max_age: Duration::from_secs(600),
                leads_max_age: Duration::from_secs(7200),
                full_resync_every: Duration::from_secs(3600)
            }
        );
        let remote = read(&[("AWS_ENDPOINT_URL_DYNAMODB", "https://dynamodb.eu-west-1.amazonaws.com")]);
        assert_eq!(remote.unwrap().local_dynamodb, None, "never treated as an emulator");
    }

    #[test]
    fn in_lambda_auth_is_on_and_requests_go_through_the_table() {
        let c = read(&[("SNAPSHOT_TABLE", "snaps"), ("AWS_LAMBDA_FUNCTION_NAME", "f")]).unwrap();
        assert_eq!((c.snapshots.trigger, c.http.auth_required), (Trigger::Table, true));
        let c = read(&[
            ("SNAPSHOT_TABLE", "snaps"),
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
            ("REFRESH_TRIGGER", "in-process"),
            ("REFRESH_LEASE_SECS", "5"),
            ("AUTH_REQUIRED", "false"),
        ])
        .unwrap();
        assert_eq!(c.snapshots.trigger, Trigger::Inline, "nothing outlives a Lambda response");
        assert_eq!(c.snapshots.lease, Duration::from_secs(5));
        assert!(!c.http.auth_required);
    }

    #[test]
    fn webhooks_need_a_public_url_and_in_lambda_an_events_table() {
        let url = ("LEMDASH_PUBLIC_URL", "https://api.example/");
        let lambda = ("AWS_LAMBDA_FUNCTION_NAME", "f");
        assert_eq!(read(&[]).unwrap().hooks.off_because, Some(HOOKS_OFF_NO_URL));
        let local = read(&[url]).unwrap().hooks;
        assert_eq!((local.public_url.as_deref(), local.off_because), (Some("https://api.example"), None));
        let bare = read(&[url, lambda]).unwrap().hooks;
        assert_eq!((bare.public_url, bare.off_because), (None, Some(HOOKS_OFF_IN_LAMBDA)));
        let deployed = read(&[url, lambda, ("EVENTS_TABLE", "events")]).unwrap().hooks;
        assert_eq!(deployed.public_url.as_deref(), Some("https://api.example"));
        assert_eq!(deployed.events_table.as_deref(), Some("events"));
        assert_eq!(read(&[("LEMDASH_PUBLIC_URL", "")]).unwrap().hooks.public_url, None, "blank is unset");
        assert!(read(&[("LEMDASH_PUBLIC_URL", "ftp://x")]).is_err());
    }

    #[test]
    fn bad_values_are_named() {
        for (name, value) in [
            ("LEMLIST_BASE_URL", "ftp://x"),
            ("LEMLIST_TIMEOUT_SECS", "0"),
            ("LIMITER_MAX_PROCESSES", "0"),
            ("LIMITER_MAX_PROCESSES", "21"),
            ("LIMITER_MAX_PROCESSES", "four"),
            ("LIMITER_HORIZON_MS", "50"),
            ("REFRESH_TRIGGER", "table"),
            ("REFRESH_TRIGGER", "cron"),
            ("REFRESH_LEASE_SECS", "1"),
            ("REQUEST_BUDGET_SECS", "-1"),
            ("AUTH_REQUIRED", "yes"),
            ("LEMLIST_BUDGET_SHARE", "0"),
            ("LEMLIST_BUDGET_SHARE", "1.5"),
            ("FORCED_REFRESH_MIN_SECS", "-1"),
            ("SYNC_MODE", "partial"),
            ("SYNC_OVERLAP_SECS", "3601"),
            ("DETAILS_MAX_AGE_SECS", "10"),
            ("LEADS_MAX_AGE_SECS", "86401"),
            ("FULL_RESYNC_EVERY_SECS", "60"),
        ] {
            let e = error(&[(name, value)]);
            assert!(e.starts_with(&format!("{name} is invalid")), "{name}={value}: {e}");
        }
    }

    #[test]
    fn local_endpoints_are_recognised() {
        assert!(is_local_endpoint("http://127.0.0.1:8000"));
        assert!(is_local_endpoint("http://localhost:8000"));
        assert!(!is_local_endpoint("https://dynamodb.eu-west-1.amazonaws.com"));
    }

    #[test]
    fn errors_do_not_echo_the_key() {
        let e = error(&[("LEMLIST_API_KEY", "secret"), ("LEMLIST_BASE_URL", "ftp://x")]);
        assert!(!e.contains("secret"), "{e}");
    }
}
