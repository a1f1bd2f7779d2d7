//! `lemdash-refresh`: computes both dashboards in one pass and stores them as snapshots.
//! Invoked by the EventBridge schedule, and by the snapshot table's stream when a request found
//! no snapshot (or asked for `?refresh=true`, or a long sync asked for its continuation). The app is assembled once per cold start; a
//! failed refresh fails the invocation, so that it is retried and counted by the alarms.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{LambdaEvent, service_fn};
use lemdash_shared::refresh::{Invocation, Report, stop_at};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let refresher = lemdash_shared::app::refresh_function().await?;
    let refresher = &refresher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        // A long sync stops taking new work before the invocation's deadline and carries on in
        // the next one.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let remaining = Duration::from_millis(event.context.deadline).saturating_sub(now);
        let report: Report =
            refresher.handle(Invocation::of(&event.payload), Some(stop_at(remaining))).await?;
        Ok::<_, lambda_runtime::Error>(report)
    }))
    .await
}
