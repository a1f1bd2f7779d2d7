//! A 5xx says what happened, not how: the caller reads a sentence and a request id, the log
//! holds the store's or lemlist's own error under that id.

use std::sync::Arc;
use std::time::Duration;

use lemdash_shared::api::REQUEST_ID_HEADER;
use lemdash_shared::snapshot::parts::{Base, Document, Plan};
use lemdash_shared::snapshot::{Item, SnapshotError, SnapshotStore, Stored};
use lemlist_sim::{FaultKind, Faults, LimitMode, Profile, Settings};
use serde_json::Value;

use crate::support::{self, capture_logs, sim, unpaced_client};

/// The text DynamoDB might answer with; it must reach the log and never the caller.
const STORE_TEXT: &str = "ResourceNotFoundException: Requested resource not found: Table: lemdash-snap";

/// A snapshot store that is down.
#[derive(Debug)]
pub(crate) struct Down;

#[async_trait::async_trait]
impl SnapshotStore for Down {
    async fn load(&self, _: &str, _: Item) -> Result<Option<Stored>, SnapshotError> {
        Err(SnapshotError::Store(STORE_TEXT.into()))
    }
    async fn save(&self, _: &str, _: Item, _: Vec<u8>, _: Option<u64>) -> Result<bool, SnapshotError> {
        Err(SnapshotError::Store(STORE_TEXT.into()))
    }
    async fn load_parts(&self, _: &str, _: Item) -> Result<Option<Document>, SnapshotError> {
        Err(SnapshotError::Store(STORE_TEXT.into()))
    }
    async fn save_parts(
        &self,
        _: &str,
        _: Item,
        _: Vec<u8>,
        _: &Plan,
        _: &Base,
    ) -> Result<bool, SnapshotError> {
        Err(SnapshotError::Store(STORE_TEXT.into()))
    }
    async fn acquire_lease(&self, _: &str, _: &str, _: i64, _: i64) -> Result<bool, SnapshotError> {
        Err(SnapshotError::Store(STORE_TEXT.into()))
    }
    async fn release_lease(&self, _: &str, _: &str) -> Result<(), SnapshotError> {
        Err(SnapshotError::Store(STORE_TEXT.into()))
    }
    async fn request_refresh(&self, _: &str, _: i64) -> Result<(), SnapshotError> {
        Err(SnapshotError::Store(STORE_TEXT.into()))
    }
}

/// The answer's status, detail and request id.
async fn answer(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let id = response.headers()[REQUEST_ID_HEADER].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], id.as_str(), "the body names the request as the header does");
    (status, body["detail"].as_str().unwrap().to_owned(), id)
}

/// The log lines that carry `request_id` (in a span or as a field).
fn lines_of(logs: &str, request_id: &str) -> Vec<String> {
    logs.lines().filter(|l| l.contains(request_id)).map(str::to_owned).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_store_failure_and_a_lemlist_failure_are_told_plainly_and_logged_in_full() {
    let (captured, _guard) = capture_logs();
    let sim = sim(Profile::S, 21, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let client = unpaced_client(&sim);

    let down = support::serve(support::api_with(&sim, &client, Duration::from_secs(5), Arc::new(Down))).await;
    let (status, detail, id) = answer(reqwest::get(format!("{down}/api/mailboxes")).await.unwrap()).await;
    assert_eq!(status, 500);
    assert_eq!(detail, "the snapshot store is unavailable; try again shortly");
    let logged = lines_of(&captured.text(), &id);
    assert!(logged.iter().any(|l| l.contains(STORE_TEXT) && l.contains("request failed")), "{logged:#?}");

    sim.configure(|s| s.faults = Faults::always(FaultKind::Unavailable));
    let base = support::serve(support::api(&sim, &client, Duration::from_secs(60))).await;
    let mailbox = sim.team().users[0].mailboxes[0].id.clone();
    let response = reqwest::Client::new()
        .post(format!("{base}/api/mailboxes/{mailbox}/start-lemwarm"))
        .send()
        .await
        .unwrap();
    let (status, detail, id) = answer(response).await;
    assert_eq!(status, 502);
    assert_eq!(detail, "lemlist is unavailable or answering with errors; try again shortly");
    assert!(!detail.contains("Service Unavailable") && !detail.contains("/lemwarm"));
    let logged = lines_of(&captured.text(), &id);
    assert!(
        logged.iter().any(|l| l.contains("lemlist answered 503") && l.contains("request failed")),
        "{logged:#?}"
    );
    // Each lemlist attempt is in the request's story: its span names the endpoint and attempt.
    assert!(
        logged.iter().any(|l| l.contains("POST /lemwarm/{id}/start") && l.contains("\"attempt\"")),
        "{logged:#?}"
    );
}
