//! The composition root: the one place that turns a [`Config`] into a running lemdash. It loads
//! the AWS settings once (only when a table or a secret needs them) and hands them to every AWS
//! client, picks the memory or DynamoDB adapters, resolves the key, and owns the start-up error.
//! The three Lambda binaries and the local runner each build the app with one call here.

use std::sync::Arc;

use crate::api::hooks::Receiver;
use crate::api::{Api, Function};
use crate::config::{Config, ConfigError, KeySource, SlackSource, Trigger};
use crate::dynamo::Deadlines;
use crate::health::alerts::Thresholds;
use crate::health::notify::{LogOnly, Notifier, Print, Sns};
use crate::health::slack::Slack;
use crate::hooks::events::{EventStore, MemoryEvents};
use crate::lemlist::{ClientConfig, LemlistClient, LemlistError};
use crate::limiter::{
    Adaptive, Clock, PermitSource, SharedLimiter, SharedSettings, StoreError, StrictPacer, SystemClock,
};
use crate::refresh::{HookSetup, Refresher};
use crate::secret::{ApiKey, KeyFingerprint, SlackUrl};
use crate::snapshot::{MemorySnapshots, SnapshotError, SnapshotStore};

/// Why lemdash could not start. Named in the cold-start log, and fatal.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("limiter table: {0}")]
    Limiter(#[from] StoreError),
    #[error("lemlist client: {0}")]
    Client(#[from] LemlistError),
    #[error("snapshot table: {0}")]
    Snapshots(#[from] SnapshotError),
    #[error("events table: {0}")]
    Events(SnapshotError),
    /// `LEMLIST_API_KEY_SECRET` could not be read.
    #[error("LEMLIST_API_KEY_SECRET: {0}")]
    Secret(String),
}

/// What the app is assembled around: made by [`App::build`] from the configuration, or by a
/// test (a fault-injecting store, an unpaced client, the simulator's clock).
#[derive(Debug)]
pub struct Parts {
    pub client: LemlistClient,
    pub store: Arc<dyn SnapshotStore>,
    /// Where deliveries are kept; `None`: this process's memory.
    pub events: Option<Arc<dyn EventStore>>,
    pub key: KeyFingerprint,
    pub clock: Arc<dyn Clock>,
}

/// lemdash, assembled: the HTTP API and the refresh, sharing one lemlist client (one
/// connection pool, one permit source) and one snapshot store.
#[derive(Debug, Clone)]
pub struct App {
    api: Api,
}

impl App {
    /// Reads the environment and assembles everything.
    pub async fn from_env() -> Result<Self, StartupError> {
        Self::build(Config::from_env()?).await
    }

    /// Assembles everything from configuration already read: the Lambda functions. Alerts go
    /// to `ALERT_TOPIC_ARN` when set, and to the logs always.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with(config, Arc::new(LogOnly)).await
    }

    /// The same for `lemdash serve`: without a topic, alerts are printed on standard error.
    pub async fn build_local(config: Config) -> Result<Self, StartupError> {
        Self::build_with(config, Arc::new(Print)).await
    }

    async fn build_with(config: Config, no_topic: Arc<dyn Notifier>) -> Result<Self, StartupError> {
        let needs_aws = config.limiter.table.is_some()
            || config.snapshots.table.is_some()
            || config.alerts.topic_arn.is_some()
            || matches!(config.alerts.slack, Some(SlackSource::Secret(_)))
            || config.hooks.events_table.is_some()
            || matches!(config.lemlist.key, Some(KeySource::Secret(_)));
        let aws = if needs_aws {
            Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
        } else {
            None
        };
        let key = match &config.lemlist.key {
            None => return Err(ConfigError::Missing("LEMLIST_API_KEY").into()),
            Some(KeySource::Value(key)) => key.clone(),
            Some(KeySource::Secret(id)) => secret_key(aws.as_ref().expect("loaded for a secret"), id)
                .await
                .map_err(StartupError::Secret)?,
        };
        let fingerprint = key.fingerprint();
        let permits = permits(&config, aws.as_ref(), &fingerprint).await?;
        let client = LemlistClient::new(client_config(&config, key), permits)?;
        let store = snapshots(&config, aws.as_ref()).await?;
        let notifier = match (&config.alerts.topic_arn, aws.as_ref()) {
            (Some(topic), Some(aws)) => Arc::new(Sns::new(aws_sdk_sns::Client::new(aws), topic.clone())),
            _ => no_topic,
        };
        let events = match aws.as_ref() {
            Some(aws) => events(&config, aws, Deadlines::FailFast).await?,
            None => None,
        };
        let slack = match &config.alerts.slack {
            Some(SlackSource::Secret(id)) => {
                let aws = aws.as_ref().expect("loaded for a secret");
                let url = secret_string(aws, id).await.map_err(StartupError::Secret)?;
                Some(
                    crate::config::slack_url(&url)
                        .map_err(|why| StartupError::Secret(format!("secret {id}: {why}")))?,
                )
            }
            Some(SlackSource::Url(url)) => Some(url.clone()),
            None => None,
        };
        let parts =
            Parts { client, store, events, key: fingerprint, clock: Arc::new(SystemClock::default()) };
        Ok(Self::assemble(&config, parts, notifier, slack))
    }

    /// Assembles the app around a client, a store and a clock made elsewhere: what
    /// [`App::build`] does once it has its adapters, and what tests do with theirs (a
    /// fault-injecting store, an unpaced client, the simulator's clock). Slack only from
    /// `SLACK_WEBHOOK_URL`: no secret is read here.
    pub fn from_parts(config: &Config, parts: Parts) -> Self {
        let slack = match &config.alerts.slack {
            Some(SlackSource::Url(url)) => Some(url.clone()),
            _ => None,
        };
        Self::assemble(config, parts, Arc::new(LogOnly), slack)
    }

    fn assemble(config: &Config, parts: Parts, notifier: Arc<dyn Notifier>, slack: Option<SlackUrl>) -> Self {
        let Parts { client, store, events, key, clock } = parts;
        let thresholds =
            Thresholds { bounce_rate: config.alerts.bounce_rate, min_sent: config.alerts.min_sent };
        let mut refresher = Refresher::new(client.clone(), store, key, config.snapshots.lease)
            .with_sync(config.sync)
            .with_alerts(thresholds, notifier)
            .with_clock(clock);
        if let Some(url) = slack {
            refresher = refresher.with_slack(Slack::new(url, config.alerts.console_url.clone()));
        }
        let receiver = match (&config.hooks.public_url, config.hooks.off_because) {
            (Some(url), _) => {
                let events = events.unwrap_or_else(|| Arc::new(MemoryEvents::default()));
                refresher =
                    refresher.with_hooks(HookSetup { public_url: url.clone(), events: events.clone() });
                // Only a process that outlives its responses folds deliveries itself; in AWS
                // `lemdash-hooks` receives them and the events' stream starts the fold.
                (config.snapshots.trigger == Trigger::InProcess)
                    .then(|| Receiver::in_process(events, refresher.clone()))
            }
            (None, reason) => {
                refresher = refresher.without_hooks(reason.unwrap_or(crate::config::HOOKS_OFF_NO_URL));
                None
            }
        };
        let api = Api::new(client, refresher, &config.http, &config.snapshots);
        Self {
            api: match receiver {
                Some(r) => api.with_receiver(r),
                None => api,
            },
        }
    }

    pub fn api(&self) -> &Api {
        &self.api
    }

    pub fn refresher(&self) -> &Refresher {
        self.api.refresher()
    }

    pub fn client(&self) -> &LemlistClient {
        self.api.client()
    }
}

/// The lemlist client's settings for `key`.
fn client_config(config: &Config, key: ApiKey) -> ClientConfig {
    let mut c = ClientConfig::new(config.lemlist.base_url.clone(), key);
    c.request_timeout = config.lemlist.timeout;
    c
}

/// The permit source for the key: shared through DynamoDB when a limiter table is configured,
/// otherwise the in-process strict pacer.
async fn permits(
    config: &Config,
    aws: Option<&aws_config::SdkConfig>,
    key: &KeyFingerprint,
) -> Result<Arc<dyn PermitSource>, StoreError> {
    let share = config.limiter.budget_share;
    let (Some(table), Some(aws)) = (&config.limiter.table, aws) else {
        tracing::info!(share, "lemlist limiter: in-process pacer (no LIMITER_TABLE)");
        return Ok(in_process_permits(share));
    };
    let client = crate::dynamo::client(aws);
    if config.local_dynamodb.is_some() {
        crate::limiter::dynamo::create_table_if_missing(&client, table).await?;
    }
    tracing::info!(table, key = %key, share, "lemlist limiter: shared through DynamoDB");
    let store = crate::limiter::dynamo::DynamoStore::new(client, table.clone());
    let settings = SharedSettings {
        horizon: config.limiter.horizon,
        max_processes: config.limiter.max_processes,
        share_lanes: share_lanes(share),
        ..SharedSettings::default()
    };
    let shared = SharedLimiter::new(store, key.clone(), Arc::new(SystemClock::default()), settings);
    Ok(Arc::new(Adaptive::new(shared, share_lanes(share) as u32)))
}

/// The permit source of one process alone on a key: the strict pacer, its scheduled and
/// background callers kept to `share` and to what the key's other users leave.
pub fn in_process_permits(share: f64) -> Arc<dyn PermitSource> {
    Arc::new(Adaptive::new(StrictPacer::lemlist_with_share(share), share_lanes(share) as u32))
}

/// The lanes that scheduled and background work may use for a budget `share`: at least one.
fn share_lanes(share: f64) -> usize {
    let lanes = crate::limiter::lanes::LANES;
    ((lanes as f64 * share).floor() as usize).clamp(1, lanes)
}

/// The snapshot store: DynamoDB when `SNAPSHOT_TABLE` is set, else this process's memory.
async fn snapshots(
    config: &Config,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<Arc<dyn SnapshotStore>, SnapshotError> {
    let (Some(table), Some(aws)) = (&config.snapshots.table, aws) else {
        tracing::info!("snapshots kept in this process (no SNAPSHOT_TABLE)");
        return Ok(Arc::new(MemorySnapshots::default()));
    };
    let client = crate::dynamo::client(aws);
    if config.local_dynamodb.is_some() {
        crate::snapshot::dynamo::create_table_if_missing(&client, table).await?;
    }
    tracing::info!(table, "snapshots stored in DynamoDB");
    Ok(Arc::new(crate::snapshot::dynamo::DynamoSnapshots::new(client, table.clone())))
}

/// The receiver's store: DynamoDB when `EVENTS_TABLE` is set (`None`: this process's memory),
/// its calls within `deadlines` (the receiver's are longer: it has no fallback).
async fn events(
    config: &Config,
    aws: &aws_config::SdkConfig,
    deadlines: Deadlines,
) -> Result<Option<Arc<dyn EventStore>>, StartupError> {
    let Some(table) = &config.hooks.events_table else { return Ok(None) };
    let client = crate::dynamo::client_with(aws, deadlines);
    if config.local_dynamodb.is_some() {
        crate::hooks::dynamo::create_table_if_missing(&client, table).await.map_err(StartupError::Events)?;
    }
    tracing::info!(table, "webhook deliveries kept in DynamoDB");
    Ok(Some(Arc::new(crate::hooks::dynamo::DynamoEvents::new(client, table.clone()))))
}

/// Reads the key from AWS Secrets Manager: the secret `id` (a name or an ARN) holds the key as
/// its plain string value. Errors name the secret, never its value.
async fn secret_key(aws: &aws_config::SdkConfig, id: &str) -> Result<ApiKey, String> {
    secret_string(aws, id).await.map(ApiKey::new)
}

/// A secret's string value (never logged: errors name the secret, not its value).
async fn secret_string(aws: &aws_config::SdkConfig, id: &str) -> Result<String, String> {
    let client = aws_sdk_secretsmanager::Client::new(aws);
    let out = client.get_secret_value().secret_id(id).send().await.map_err(|e| {
        format!("cannot read secret {id}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(&e))
    })?;
    match out.secret_string().map(str::trim) {
        Some(value) if !value.is_empty() => Ok(value.to_owned()),
        _ => Err(format!("secret {id} has no string value")),
    }
}

/// A Lambda function serving `function`'s routes: logs, the app, then one event at a time.
pub async fn run_http_function(function: Function) -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let app = App::from_env().await.inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    crate::api::lambda::run(app.api, function).await
}

/// The `lemdash-hooks` function: lemlist's deliveries checked and kept in `EVENTS_TABLE`, and
/// nothing else. It holds no lemlist key and calls nothing but its table; the table's stream
/// hands each new event to the refresh function, which folds it.
pub async fn run_hooks_function() -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    if config.hooks.events_table.is_none() {
        let e = StartupError::Config(ConfigError::Missing("EVENTS_TABLE"));
        tracing::error!(error = %e, "cannot start");
        return Err(e.into());
    }
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let events = events(&config, &aws, Deadlines::Receiver).await?.expect("EVENTS_TABLE is set");
    let receiver = Receiver::durable(events, Arc::new(SystemClock::default()));
    lambda_http::run(crate::api::hooks_router(&receiver)).await
}

/// The refresh function's app: as [`App::from_env`], and it needs a snapshot table (a refresh
/// kept in the memory of a function that ends would be lost).
pub async fn refresh_function() -> Result<Refresher, StartupError> {
    crate::telemetry::init();
    let config = Config::from_env()?;
    if config.snapshots.table.is_none() {
        return Err(ConfigError::Missing("SNAPSHOT_TABLE").into());
    }
    let app = App::build(config).await.inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    Ok(app.refresher().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let map: std::collections::HashMap<&str, &str> = pairs.iter().copied().collect();
        Config::from_lookup(|k| map.get(k).map(|v| v.to_string())).unwrap()
    }

    #[test]
    fn the_configured_limiter_defaults_are_the_limiters_own() {
        let c = config(&[]);
        let d = SharedSettings::default();
        assert_eq!((c.limiter.horizon, c.limiter.max_processes), (d.horizon, d.max_processes));
    }

    #[test]
    fn the_budget_share_is_a_whole_number_of_lanes() {
        assert_eq!(share_lanes(0.75), 15);
        assert_eq!(share_lanes(0.5), 10);
        assert_eq!(share_lanes(1.0), 20);
        assert_eq!(share_lanes(0.01), 1, "never none");
    }

    #[tokio::test]
    async fn without_a_key_the_start_up_error_names_the_variable() {
        let e = App::build(config(&[])).await.unwrap_err();
        assert_eq!(e.to_string(), "LEMLIST_API_KEY is not set");
    }

    #[tokio::test]
    async fn with_a_key_and_no_tables_everything_stays_in_this_process() {
        let app =
            App::build(config(&[("LEMLIST_API_KEY", "k"), ("LEMLIST_TIMEOUT_SECS", "3")])).await.unwrap();
        assert_eq!(app.client().stats().sent, 0);
        assert!(format!("{:?}", app.refresher()).contains("MemorySnapshots"));
        assert!(!format!("{app:?}").contains("\"k\""), "the key is not in Debug output");
    }
}
