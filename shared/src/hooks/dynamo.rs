//! The receiver's store in DynamoDB (`EVENTS_TABLE`), its own table so that IAM can say who
//! writes what: each role's policy names the partition-key prefixes it may touch.
//!
//! Items, by `pk` alone:
//! - `hook#<sha256 of the path token>`: one registered hook (`kind`, `secret_hash`, `team_id`),
//!   written and deleted by the refresh function, read by the receiver;
//! - `event#<activity _id>`: one accepted event, put only if absent (a duplicate delivery
//!   changes nothing), in one transaction with the `deliveries` of a counters' shard:
//!   `activity` (S, the JSON of the fields the fold uses; a reply's text is not kept) and
//!   `expires_at`. Written by the receiver only; its insertion reaches the refresh function
//!   through the table's stream, which folds it;
//! - `counters#<0…15>`: the receiver's tallies (`deliveries`, `duplicates`,
//!   `rejected_<reason>`, `last_delivery`), each delivery adding atomically to one shard picked
//!   at random (a burst of hundreds of deliveries does not queue on one item), summed when
//!   `GET /api/sync` reads them.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::Registered;
use super::events::{Counters, EventStore};
use crate::lemlist::Activity;
use crate::snapshot::SnapshotError;
use crate::snapshot::dynamo::store_error;

/// The events table's partition key (a string); the template declares the same.
pub const PARTITION_KEY: &str = "pk";
/// Its TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// The prefix of the registered hooks' keys (the refresh function's policy is limited to it).
pub const HOOK_PREFIX: &str = "hook#";
/// The prefix of the events' keys (only the receiver may write them; the stream's filter
/// passes only their insertions to the fold).
pub const EVENT_PREFIX: &str = "event#";
/// The prefix of the counters' shards.
pub const COUNTERS_PREFIX: &str = "counters#";
/// How many shards the counters are spread over.
const COUNTER_SHARDS: usize = 16;
/// The attribute holding an event's activity.
pub const ACTIVITY_ATTRIBUTE: &str = "activity";
/// Every DynamoDB action this store calls (a `TransactWriteItems` is authorized as the
/// `PutItem` and `UpdateItem` it holds).
pub const ACTIONS: [&str; 5] = [
    "dynamodb:BatchGetItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
];
/// How long an event's `_id` is remembered: lemlist retries a failed delivery for hours, and
/// the polling overlap is minutes; a week covers both with room, for pennies of storage.
const EVENT_KEEP_SECS: u64 = 7 * 24 * 3600;
/// The longest `_id` kept (a key's limit is 2 KB; lemlist's ids are about 20 characters).
pub const MAX_ID_LEN: usize = 200;

/// Creates the events table if it is missing. Only ever called against a local emulator.
pub async fn create_table_if_missing(client: &Client, table: &str) -> Result<(), SnapshotError> {
    crate::dynamo::create_table_if_missing(client, table, PARTITION_KEY, None, TTL_ATTRIBUTE)
        .await
        .map_err(SnapshotError::Store)
}

/// The receiver's store in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoEvents {
    client: Client,
    table: String,
}

impl DynamoEvents {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn key(&self, pk: String) -> HashMap<String, AttributeValue> {
        HashMap::from([(PARTITION_KEY.to_owned(), AttributeValue::S(pk))])
    }

    /// One counters' shard, picked at random.
    fn shard(&self) -> HashMap<String, AttributeValue> {
        self.key(format!("{COUNTERS_PREFIX}{}", rand::random_range(0..COUNTER_SHARDS)))
    }
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or_default()
}

/// Whether a keeping transaction was cancelled because the event was kept already (its put's
/// condition, the first item's, failed).
fn already_kept<R>(e: &SdkError<TransactWriteItemsError, R>) -> bool {
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled
            .cancellation_reasons()
            .first()
            .is_some_and(|r| r.code() == Some("ConditionalCheckFailed")),
        _ => false,
    }
}

fn epoch_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// What of an activity is kept: the fields the fold reads, not a reply's text or html (an item
/// stays one write unit, a stream batch far under Lambda's payload limit).
pub fn kept(activity: &Activity) -> String {
    let trimmed = Activity { extra: BTreeMap::new(), ..activity.clone() };
    serde_json::to_string(&trimmed).expect("an activity serializes")
}

/// The activity of an event item's stream image (`NewImage`, in the stream's JSON shape);
/// `None` for any other item.
pub fn activity_of_image(image: &serde_json::Value) -> Option<Activity> {
    let pk = image[PARTITION_KEY]["S"].as_str()?;
    if !pk.starts_with(EVENT_PREFIX) {
        return None;
    }
    serde_json::from_str(image[ACTIVITY_ATTRIBUTE]["S"].as_str()?).ok()
}

#[async_trait]
impl EventStore for DynamoEvents {
    async fn registered(&self, token_hash: &str) -> Result<Option<Registered>, SnapshotError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key(format!("{HOOK_PREFIX}{token_hash}"))))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let Some(item) = out.item else { return Ok(None) };
        let field = |name: &str| {
            text(&item, name).ok_or_else(|| SnapshotError::Corrupt(format!("a hook item without {name}")))
        };
        Ok(Some(Registered {
            kind: field("kind")?,
            token_hash: token_hash.to_owned(),
            secret_hash: field("secret_hash")?,
            team_id: field("team_id")?,
        }))
    }

    async fn register(&self, hook: &Registered) -> Result<(), SnapshotError> {
        let mut item = self.key(format!("{HOOK_PREFIX}{}", hook.token_hash));
        item.insert("kind".into(), AttributeValue::S(hook.kind.clone()));
        item.insert("secret_hash".into(), AttributeValue::S(hook.secret_hash.clone()));
        item.insert("team_id".into(), AttributeValue::S(hook.team_id.clone()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn unregister(&self, token_hash: &str) -> Result<(), SnapshotError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.key(format!("{HOOK_PREFIX}{token_hash}"))))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn keep_new(&self, activity: &Activity, at: DateTime<Utc>) -> Result<bool, SnapshotError> {
        let mut item = self.key(format!("{EVENT_PREFIX}{}", activity.id));
        item.insert(ACTIVITY_ATTRIBUTE.into(), AttributeValue::S(kept(activity)));
        item.insert("received_at".into(), AttributeValue::S(at.to_rfc3339()));
        item.insert(TTL_ATTRIBUTE.into(), AttributeValue::N((epoch_secs() + EVENT_KEEP_SECS).to_string()));
        let event = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .build()
            .map_err(|e| SnapshotError::Store(e.to_string()))?;
        let counted = Update::builder()
            .table_name(&self.table)
            .set_key(Some(self.shard()))
            .update_expression("ADD deliveries :one SET last_delivery = :at")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":at", AttributeValue::S(at.to_rfc3339()))
            .build()
            .map_err(|e| SnapshotError::Store(e.to_string()))?;
        // One transaction: the event and its count land together or not at all (a timed-out
        // attempt answers 503, lemlist's retry then finds the event kept and counted).
        let written = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(event).build())
            .transact_items(TransactWriteItem::builder().update(counted).build())
            .send()
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(e) if already_kept(&e) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn count(&self, what: &str, _at: DateTime<Utc>) -> Result<(), SnapshotError> {
        let attribute = match what {
            "duplicate" => "duplicates".to_owned(),
            reason => format!("rejected_{reason}"),
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.shard()))
            .update_expression("ADD #n :one")
            .expression_attribute_names("#n", attribute)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn counters(&self) -> Result<Counters, SnapshotError> {
        let keys = (0..COUNTER_SHARDS).map(|i| self.key(format!("{COUNTERS_PREFIX}{i}"))).collect();
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .build()
            .map_err(|e| SnapshotError::Store(e.to_string()))?;
        let mut total = Counters::default();
        // Sixteen small items fit one call; what DynamoDB leaves unprocessed is asked again.
        for _ in 0..5 {
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(store_error)?;
            for item in out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
                total.deliveries += number(&item, "deliveries");
                total.duplicates += number(&item, "duplicates");
                for k in item.keys() {
                    if let Some(reason) = k.strip_prefix("rejected_") {
                        *total.rejected.entry(reason.to_owned()).or_default() += number(&item, k);
                    }
                }
                let last = text(&item, "last_delivery")
                    .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                    .map(|t| t.with_timezone(&Utc));
                total.last_delivery = total.last_delivery.max(last);
            }
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => request = rest,
                _ => return Ok(total),
            }
        }
        Err(SnapshotError::Store("the counters could not all be read".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_image_gives_back_the_activity_without_its_text() {
        let mut a = Activity::sample("act_1", "emailsReplied", Some("lea_1"), Some("cam_1"));
        a.extra.insert("text".into(), json!("a long reply"));
        let stored = kept(&a);
        assert!(!stored.contains("a long reply"));
        let image = json!({"pk": {"S": "event#act_1"}, "activity": {"S": stored}});
        let back = activity_of_image(&image).expect("an event");
        assert_eq!((back.id.as_str(), back.lead_id.as_deref()), ("act_1", Some("lea_1")));
        assert!(back.extra.is_empty());
        let hook = json!({"pk": {"S": "hook#abc"}, "activity": {"S": stored}});
        assert_eq!(activity_of_image(&hook), None, "only events are folded");
        assert_eq!(activity_of_image(&json!({"pk": {"S": "event#x"}})), None);
    }
}
