//! The request path as it runs in AWS: a cold GET writes a request item to the snapshot table;
//! the table's stream carries it; Lambda's event source mapping keeps the records that pass the
//! template's filter and invokes the refresh function with them; a sync from scratch that meets
//! its deadline writes the next request the same way. Here DynamoDB Local's stream is read as
//! the mapping reads it, the template's own filter pattern is applied, and the refresh handler
//! is invoked with the records that pass.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lemdash_shared::config::Trigger;
use lemdash_shared::limiter::StrictPacer;
use lemdash_shared::refresh::{Invocation, Report};
use lemdash_shared::snapshot::Board;
use lemdash_tests::dynamo_local::{DynamoLocal, snapshot_store};
use lemdash_tests::truth;
use lemlist_sim::{Latency, Profile, Settings};
use serde_json::{Value, json};

use crate::support::{client_with, sim};

const TABLE: &str = "lemdash-stream-path";

/// DynamoDB Local's JSON API, as the SDKs speak it (the emulator checks no signature).
struct Local {
    http: reqwest::Client,
    endpoint: String,
}

impl Local {
    async fn call(&self, target: &str, body: Value) -> Value {
        let response = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", target)
            .header("x-amz-date", "20261130T000000Z")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=local/20261130/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .expect("DynamoDB Local answers");
        let status = response.status();
        let answer: Value = response.json().await.expect("a JSON answer");
        assert!(status.is_success(), "{target}: {answer}");
        answer
    }
}

/// The template's filter on the refresh function's stream events.
fn template_filter() -> Value {
    let template = crate::deployment::template();
    let pattern = template["Resources"]["RefreshFunction"]["Properties"]["Events"]["Requested"]["Properties"]
        ["FilterCriteria"]["Filters"][0]["Pattern"]
        .as_str()
        .expect("the refresh function filters its stream");
    serde_json::from_str(pattern).expect("the pattern is JSON")
}

/// Lambda's event filtering for the patterns the template uses: an object matches when each of
/// its fields matches; a list of values matches any one of them.
fn passes(pattern: &Value, record: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(k, p)| record.get(k).is_some_and(|r| passes(p, r))),
        Value::Array(allowed) => allowed.iter().any(|a| a == record),
        other => other == record,
    }
}

#[tokio::test]
async fn a_cold_get_and_each_continuation_reach_the_refresh_function_through_the_stream_and_filter() {
    let dynamo = DynamoLocal::start().expect("DynamoDB Local starts");
    let store = snapshot_store(&dynamo.endpoint, TABLE).await.expect("the snapshot table is created");
    let local = Local { http: reqwest::Client::new(), endpoint: dynamo.endpoint.clone() };
    let spec = json!({"StreamEnabled": true, "StreamViewType": "NEW_IMAGE"});
    local
        .call("DynamoDB_20120810.UpdateTable", json!({"TableName": TABLE, "StreamSpecification": spec}))
        .await;

    let sim = sim(Profile::S, 60, Settings { latency: Latency::LEMLIST, ..Settings::default() }).await;
    let client = client_with(&sim, Arc::new(StrictPacer::lemlist()));
    let mut config = lemdash_tests::app::config(Duration::from_secs(2));
    config.snapshots.table = Some(TABLE.into());
    config.snapshots.trigger = Trigger::Table;
    let app = lemdash_tests::app::with(&config, &sim, &client, Arc::new(store));
    let refresher = app.refresher().clone();
    let base = crate::support::serve(app.api().clone()).await;
    let url = format!("{base}/api/campaigns/dashboard");
    let http = reqwest::Client::new();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 503, "no snapshot yet: a request is written");

    let streams = local.call("DynamoDBStreams_20120810.ListStreams", json!({"TableName": TABLE})).await;
    let arn = streams["Streams"][0]["StreamArn"].as_str().expect("the table streams").to_owned();
    let described = local.call("DynamoDBStreams_20120810.DescribeStream", json!({"StreamArn": arn})).await;
    let shard = described["StreamDescription"]["Shards"][0]["ShardId"].as_str().unwrap().to_owned();
    let iterator = local
        .call(
            "DynamoDBStreams_20120810.GetShardIterator",
            json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await;
    let mut iterator = iterator["ShardIterator"].as_str().unwrap().to_owned();

    let filter = template_filter();
    let (mut invocations, mut filtered_out, mut continuations) = (0, 0, 0);
    let waited = Instant::now();
    let figures = loop {
        assert!(waited.elapsed() < Duration::from_secs(120), "the refresh never completed");
        let batch =
            local.call("DynamoDBStreams_20120810.GetRecords", json!({"ShardIterator": iterator})).await;
        iterator = batch["NextShardIterator"].as_str().expect("the shard stays open").to_owned();
        let records = batch["Records"].as_array().cloned().unwrap_or_default();
        let (kept, dropped): (Vec<Value>, Vec<Value>) = records.into_iter().partition(|r| passes(&filter, r));
        filtered_out += dropped.len();
        if kept.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        // What Lambda hands the function: the records that passed, in one event.
        let event = json!({"Records": kept});
        assert!(matches!(Invocation::of(&event), Invocation::Requested { .. }));
        invocations += 1;
        // Each invocation has 1.5 s: the first sync of S needs several.
        match refresher
            .handle(Invocation::of(&event), Some(Instant::now() + Duration::from_millis(1500)))
            .await
        {
            Ok(Report::Refreshed(figures)) => break figures,
            Ok(Report::Continuing(_)) => continuations += 1,
            Ok(other) => panic!("invocation {invocations}: {other:?}"),
            Err(e) => panic!("invocation {invocations}: {e}"),
        }
    };
    assert!(continuations >= 2, "{continuations} continuations");
    assert_eq!(invocations, continuations + 1, "each continuation was one request, one invocation");
    assert!(filtered_out > 0, "the refresh's own writes (state, lease, snapshots) are filtered out");
    println!(
        "first sync of S through the stream: {invocations} invocations, {} calls, {filtered_out} records filtered out",
        figures.calls
    );

    let served: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(served, truth::expected_for_stored(&sim, &refresher, Board::Campaigns).await);
}
