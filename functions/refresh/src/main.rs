//! `lemdash-refresh`: computes both dashboards in one pass and stores them as snapshots.
//! Invoked by the EventBridge schedule, and by the snapshot table's stream when a request found
//! no snapshot (or asked for `?refresh=true`). The app is assembled once per cold start; a
//! failed refresh fails the invocation, so that it is retried and counted by the alarms.

use lambda_runtime::{LambdaEvent, service_fn};
use lemdash_shared::refresh::{Invocation, Report};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let refresher = lemdash_shared::app::refresh_function().await?;
    let refresher = &refresher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let report: Report = refresher.handle(Invocation::of(&event.payload)).await?;
        Ok::<_, lambda_runtime::Error>(report)
    }))
    .await
}
