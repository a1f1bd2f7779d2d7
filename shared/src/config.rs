//! Configuration, read once from the environment at start-up. A missing or malformed variable
//! fails with a message that names it.

use std::time::Duration;

use reqwest::Url;

use crate::lemlist::{ClientConfig, DEFAULT_BASE_URL};
use crate::limiter::{LEMLIST_LIMIT, SharedSettings};
use crate::secret::ApiKey;

/// Every environment variable lemdash reads (the deployment test checks the template sets no
/// other).
pub const ENV_VARS: [&str; 16] = [
    "LEMLIST_API_KEY",
    "LEMLIST_API_KEY_SECRET",
    "LEMLIST_BASE_URL",
    "LEMLIST_TIMEOUT_SECS",
    "LIMITER_TABLE",
    "LIMITER_MAX_PROCESSES",
    "LIMITER_HORIZON_MS",
    "SNAPSHOT_TABLE",
    "REFRESH_LEASE_SECS",
    "REFRESH_TRIGGER",
    "ALLOWED_ORIGINS",
    "REQUEST_BUDGET_SECS",
    "AUTH_REQUIRED",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_LAMBDA_FUNCTION_NAME",
    "RUST_LOG",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Why a function could not start. Named in the cold-start log, and fatal.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Limiter(#[from] crate::limiter::StoreError),
    #[error(transparent)]
    Client(#[from] crate::lemlist::LemlistError),
    #[error(transparent)]
    Snapshots(#[from] crate::snapshot::SnapshotError),
    /// `LEMLIST_API_KEY_SECRET` could not be read.
    #[error("LEMLIST_API_KEY_SECRET: {0}")]
    Secret(String),
}

/// `LEMLIST_API_KEY` (required), `LEMLIST_BASE_URL` (default lemlist's) and
/// `LEMLIST_TIMEOUT_SECS` (per attempt, default 20).
pub fn lemlist_from_env() -> Result<ClientConfig, ConfigError> {
    lemlist_from(|name| std::env::var(name).ok())
}

/// As [`lemlist_from_env`], but the key comes from AWS Secrets Manager when
/// `LEMLIST_API_KEY_SECRET` names a secret: how the functions run in AWS, where the key is never
/// in an environment variable. Read once per cold start.
pub async fn lemlist_resolved() -> Result<ClientConfig, StartupError> {
    match secret_name(|name| std::env::var(name).ok()) {
        None => Ok(lemlist_from_env()?),
        Some(id) => {
            let key = crate::secret::from_secrets_manager(&id).await.map_err(StartupError::Secret)?;
            Ok(lemlist_with_key(key, |name| std::env::var(name).ok())?)
        }
    }
}

/// `LEMLIST_API_KEY_SECRET`, when set and not blank.
fn secret_name(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    var("LEMLIST_API_KEY_SECRET").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The same, from any lookup (tests pass a map instead of touching the process environment).
pub fn lemlist_from(var: impl Fn(&str) -> Option<String>) -> Result<ClientConfig, ConfigError> {
    let key = var("LEMLIST_API_KEY")
        .filter(|k| !k.trim().is_empty())
        .ok_or(ConfigError::Missing("LEMLIST_API_KEY"))?;
    lemlist_with_key(ApiKey::new(key.trim()), var)
}

/// The rest of the lemlist configuration, for a key obtained one way or another.
fn lemlist_with_key(key: ApiKey, var: impl Fn(&str) -> Option<String>) -> Result<ClientConfig, ConfigError> {
    let base = var("LEMLIST_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
    let base_url =
        Url::parse(&base).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(|| {
            ConfigError::Invalid {
                name: "LEMLIST_BASE_URL",
                reason: format!("{base:?} is not an http(s) URL"),
            }
        })?;
    let mut config = ClientConfig::new(base_url, key);
    if let Some(raw) = var("LEMLIST_TIMEOUT_SECS") {
        let secs: f64 = raw.parse().ok().filter(|s: &f64| s.is_finite() && *s > 0.0).ok_or_else(|| {
            ConfigError::Invalid {
                name: "LEMLIST_TIMEOUT_SECS",
                reason: format!("{raw:?} is not a positive number"),
            }
        })?;
        config.request_timeout = Duration::from_secs_f64(secs);
    }
    Ok(config)
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
}

pub fn http_from_env() -> Result<HttpConfig, ConfigError> {
    http_from(|name| std::env::var(name).ok())
}

pub fn http_from(var: impl Fn(&str) -> Option<String>) -> Result<HttpConfig, ConfigError> {
    let allowed_origins = var("ALLOWED_ORIGINS")
        .map(|v| {
            v.split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let budget = match var("REQUEST_BUDGET_SECS") {
        None => Duration::from_secs(25),
        Some(raw) => raw
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0 && *s <= 900.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| ConfigError::Invalid {
                name: "REQUEST_BUDGET_SECS",
                reason: format!("{raw:?} is not a number of seconds from 0 to 900"),
            })?,
    };
    let auth_required = match var("AUTH_REQUIRED").as_deref().map(str::trim) {
        None | Some("") => var("AWS_LAMBDA_FUNCTION_NAME").is_some(),
        Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: "AUTH_REQUIRED",
                reason: format!("{other:?} is not `true` or `false`"),
            });
        }
    };
    Ok(HttpConfig { allowed_origins, budget, auth_required })
}

/// Where the lemlist budget is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimiterConfig {
    /// `LIMITER_TABLE`: the DynamoDB table shared by every invocation. Unset: the in-process
    /// strict pacer (one process per key, e.g. a local run).
    pub table: Option<String>,
    /// `AWS_ENDPOINT_URL_DYNAMODB`, when it points at a local emulator: lemdash then creates a
    /// missing table itself. Against AWS it never creates tables.
    pub local_endpoint: Option<String>,
    /// `LIMITER_MAX_PROCESSES` (1–20, default 4) and `LIMITER_HORIZON_MS` (default 1000).
    pub settings: SharedSettings,
}

pub fn limiter_from_env() -> Result<LimiterConfig, ConfigError> {
    limiter_from(|name| std::env::var(name).ok())
}

pub fn limiter_from(var: impl Fn(&str) -> Option<String>) -> Result<LimiterConfig, ConfigError> {
    let mut settings = SharedSettings::default();
    if let Some(raw) = var("LIMITER_MAX_PROCESSES") {
        settings.max_processes =
            raw.trim().parse().ok().filter(|n| (1..=LEMLIST_LIMIT).contains(n)).ok_or_else(|| {
                ConfigError::Invalid {
                    name: "LIMITER_MAX_PROCESSES",
                    reason: format!("{raw:?} is not a whole number from 1 to {LEMLIST_LIMIT}"),
                }
            })?;
    }
    if let Some(raw) = var("LIMITER_HORIZON_MS") {
        let ms: u64 = raw.trim().parse().ok().filter(|ms| (100..=60_000).contains(ms)).ok_or_else(|| {
            ConfigError::Invalid {
                name: "LIMITER_HORIZON_MS",
                reason: format!("{raw:?} is not 100 to 60000"),
            }
        })?;
        settings.horizon = Duration::from_millis(ms);
    }
    let local_endpoint =
        var("AWS_ENDPOINT_URL_DYNAMODB").filter(|e| crate::limiter::dynamo::is_local_endpoint(e));
    let table = var("LIMITER_TABLE").map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    Ok(LimiterConfig { table, local_endpoint, settings })
}

/// How a request that needs a refresh gets one started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// This process runs it (the local runner, or a process that outlives its requests).
    InProcess,
    /// A `request` item is written to the snapshot table; in AWS its stream starts the refresh
    /// function, which may run longer than API Gateway allows a request.
    Table,
}

/// Stored snapshots and the refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotConfig {
    /// `SNAPSHOT_TABLE`: the DynamoDB table. Unset: snapshots are kept in this process.
    pub table: Option<String>,
    /// As in [`LimiterConfig`]: set only for a local emulator, where a missing table is created.
    pub local_endpoint: Option<String>,
    /// `REFRESH_LEASE_SECS` (5–900, default 30): how long a refresh's lease lasts unless renewed
    /// (it is renewed every third of that): how soon a crashed refresh stops blocking the next.
    pub lease: Duration,
    /// `REFRESH_TRIGGER` (`in-process` or `table`). Default: `table` in Lambda with a
    /// `SNAPSHOT_TABLE`, otherwise `in-process`.
    pub trigger: Trigger,
}

pub fn snapshots_from_env() -> Result<SnapshotConfig, ConfigError> {
    snapshots_from(|name| std::env::var(name).ok())
}

pub fn snapshots_from(var: impl Fn(&str) -> Option<String>) -> Result<SnapshotConfig, ConfigError> {
    let table = var("SNAPSHOT_TABLE").map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    let local_endpoint =
        var("AWS_ENDPOINT_URL_DYNAMODB").filter(|e| crate::limiter::dynamo::is_local_endpoint(e));
    let mut lease = Duration::from_secs(30);
    if let Some(raw) = var("REFRESH_LEASE_SECS") {
        let secs: u64 = raw.trim().parse().ok().filter(|s| (5..=900).contains(s)).ok_or_else(|| {
            ConfigError::Invalid { name: "REFRESH_LEASE_SECS", reason: format!("{raw:?} is not 5 to 900") }
        })?;
        lease = Duration::from_secs(secs);
    }
    let in_lambda = var("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let trigger = match var("REFRESH_TRIGGER").as_deref().map(str::trim) {
        None | Some("") if in_lambda && table.is_some() => Trigger::Table,
        None | Some("") | Some("in-process") => Trigger::InProcess,
        Some("table") if table.is_some() => Trigger::Table,
        Some("table") => {
            return Err(ConfigError::Invalid {
                name: "REFRESH_TRIGGER",
                reason: "`table` needs SNAPSHOT_TABLE".into(),
            });
        }
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: "REFRESH_TRIGGER",
                reason: format!("{other:?} is not `in-process` or `table`"),
            });
        }
    };
    Ok(SnapshotConfig { table, local_endpoint, lease, trigger })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn a_configured_secret_takes_the_place_of_the_key() {
        assert_eq!(secret_name(env(&[("LEMLIST_API_KEY", "k")])), None);
        assert_eq!(secret_name(env(&[("LEMLIST_API_KEY_SECRET", "  ")])), None);
        let named = secret_name(env(&[("LEMLIST_API_KEY_SECRET", " lemdash/lemlist-api-key ")]));
        assert_eq!(named.as_deref(), Some("lemdash/lemlist-api-key"));
    }

    #[test]
    fn missing_key_is_named() {
        assert_eq!(lemlist_from(env(&[])).unwrap_err().to_string(), "LEMLIST_API_KEY is not set");
        assert_eq!(
            lemlist_from(env(&[("LEMLIST_API_KEY", "  ")])).unwrap_err(),
            ConfigError::Missing("LEMLIST_API_KEY")
        );
    }

    #[test]
    fn defaults_and_overrides() {
        let c = lemlist_from(env(&[("LEMLIST_API_KEY", "k")])).unwrap();
        assert_eq!(c.base_url.as_str(), "https://api.lemlist.com/api");
        assert_eq!(c.request_timeout, Duration::from_secs(20));
        let c = lemlist_from(env(&[
            ("LEMLIST_API_KEY", "k"),
            ("LEMLIST_BASE_URL", "http://127.0.0.1:9000/api"),
            ("LEMLIST_TIMEOUT_SECS", "2.5"),
        ]))
        .unwrap();
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:9000/api");
        assert_eq!(c.request_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn limiter_defaults_to_in_process_and_validates_its_numbers() {
        let c = limiter_from(env(&[])).unwrap();
        assert_eq!((c.table, c.local_endpoint, c.settings), (None, None, SharedSettings::default()));
        let c = limiter_from(env(&[
            ("LIMITER_TABLE", "lemdash-limiter"),
            ("LIMITER_MAX_PROCESSES", "8"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
        ]))
        .unwrap();
        assert_eq!(c.table.as_deref(), Some("lemdash-limiter"));
        assert_eq!(c.settings.max_processes, 8);
        assert_eq!(c.local_endpoint.as_deref(), Some("http://127.0.0.1:8000"));
        let remote =
            limiter_from(env(&[("AWS_ENDPOINT_URL_DYNAMODB", "https://dynamodb.eu-west-1.amazonaws.com")]));
        assert_eq!(remote.unwrap().local_endpoint, None, "never treated as an emulator");
        for bad in ["0", "21", "four"] {
            let err = limiter_from(env(&[("LIMITER_MAX_PROCESSES", bad)])).unwrap_err();
            assert!(err.to_string().starts_with("LIMITER_MAX_PROCESSES is invalid"), "{err}");
        }
    }

    #[test]
    fn origins_and_budget() {
        let c = http_from(env(&[("ALLOWED_ORIGINS", "https://a.example/, https://b.example,,")])).unwrap();
        assert_eq!(c.allowed_origins, vec!["https://a.example", "https://b.example"]);
        assert_eq!(c.budget, Duration::from_secs(25));
        assert!(http_from(env(&[])).unwrap().allowed_origins.is_empty());
        let err = http_from(env(&[("REQUEST_BUDGET_SECS", "-1")])).unwrap_err();
        assert!(err.to_string().starts_with("REQUEST_BUDGET_SECS is invalid"));
        assert!(!http_from(env(&[])).unwrap().auth_required, "no authorizer in front of a local run");
        assert!(http_from(env(&[("AWS_LAMBDA_FUNCTION_NAME", "f")])).unwrap().auth_required, "on by default");
        let open = http_from(env(&[("AWS_LAMBDA_FUNCTION_NAME", "f"), ("AUTH_REQUIRED", "false")])).unwrap();
        assert!(!open.auth_required);
        assert!(http_from(env(&[("AUTH_REQUIRED", "yes")])).is_err());
    }

    #[test]
    fn snapshots_default_to_this_process_and_to_the_table_trigger_in_lambda() {
        let c = snapshots_from(env(&[])).unwrap();
        assert_eq!((c.table, c.lease, c.trigger), (None, Duration::from_secs(30), Trigger::InProcess));
        let c =
            snapshots_from(env(&[("SNAPSHOT_TABLE", "snaps"), ("AWS_LAMBDA_FUNCTION_NAME", "f")])).unwrap();
        assert_eq!(c.trigger, Trigger::Table);
        let c = snapshots_from(env(&[
            ("SNAPSHOT_TABLE", "snaps"),
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
            ("REFRESH_TRIGGER", "in-process"),
            ("REFRESH_LEASE_SECS", "5"),
        ]))
        .unwrap();
        assert_eq!((c.trigger, c.lease), (Trigger::InProcess, Duration::from_secs(5)));
        for (name, value) in
            [("REFRESH_TRIGGER", "table"), ("REFRESH_TRIGGER", "cron"), ("REFRESH_LEASE_SECS", "1")]
        {
            let err = snapshots_from(env(&[(name, value)])).unwrap_err();
            assert!(err.to_string().starts_with(&format!("{name} is invalid")), "{err}");
        }
    }

    #[test]
    fn bad_values_are_named_and_do_not_echo_the_key() {
        let err =
            lemlist_from(env(&[("LEMLIST_API_KEY", "secret"), ("LEMLIST_BASE_URL", "ftp://x")])).unwrap_err();
        assert!(err.to_string().starts_with("LEMLIST_BASE_URL is invalid"));
        assert!(!err.to_string().contains("secret"));
        let err = lemlist_from(env(&[("LEMLIST_API_KEY", "k"), ("LEMLIST_TIMEOUT_SECS", "0")])).unwrap_err();
        assert!(err.to_string().starts_with("LEMLIST_TIMEOUT_SECS is invalid"));
    }
}
