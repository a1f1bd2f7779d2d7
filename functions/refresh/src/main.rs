//! `lemdash-refresh`: computes both dashboards in one pass and stores them as snapshots.
//! Invoked by the EventBridge schedule, and by the snapshot table's stream when a request found
//! no snapshot (or asked for `?refresh=true`). Configuration is read once per cold start; a
//! failed refresh fails the invocation, so that it is retried and counted by the alarms.

use lambda_runtime::{LambdaEvent, service_fn};
use lemdash_shared::config;
use lemdash_shared::refresh::{Invocation, Refresher, Report};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lemdash_shared::telemetry::init();
    let refresher = async {
        let snapshots = config::snapshots_from_env()?;
        if snapshots.table.is_none() {
            return Err(config::ConfigError::Missing("SNAPSHOT_TABLE").into());
        }
        let lemlist = config::lemlist_resolved().await?;
        Refresher::build(lemlist, &config::limiter_from_env()?, &snapshots).await
    };
    let refresher: Refresher = refresher
        .await
        .inspect_err(|e: &config::StartupError| tracing::error!(error = %e, "cannot start"))?;
    let refresher = &refresher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let report: Report = refresher.handle(Invocation::of(&event.payload)).await?;
        Ok::<_, lambda_runtime::Error>(report)
    }))
    .await
}
