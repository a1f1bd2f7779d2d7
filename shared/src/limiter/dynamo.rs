//! The shared budget in DynamoDB: one item per API key, changed only by conditional
//! `UpdateItem`s that return the item (`ALL_NEW` on success, `ALL_OLD` on a failed condition),
//! so a reservation costs one write and a lost race costs no read.
//!
//! Item: `pk` = `lemlist#<fingerprint of the key>`, `l00`…`l19` (each lane's next free time,
//! epoch ms), `paused_until` (epoch ms), `pauses` (count), `expires_at` (epoch s, the table's
//! TTL attribute: an idle key's item goes away after a day).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::lanes::{LANE_PERIOD_MS, LANES, LaneState, PAUSE_SLACK_MS, Reservation};
use super::store::{LaneStore, Reserve, StoreError};

/// The limiter table's partition key (a string). The infra template declares the same.
pub const PARTITION_KEY: &str = "pk";
/// Every DynamoDB action the limiter calls (its IAM policy grants exactly these; the read in
/// [`DynamoStore::state`] serves tests and diagnostics only).
pub const ACTIONS: [&str; 1] = ["dynamodb:UpdateItem"];
/// The limiter table's TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// How long an idle key's item is kept.
const IDLE_TTL: Duration = Duration::from_secs(24 * 3600);

fn lane_name(lane: usize) -> String {
    format!("l{lane:02}")
}

/// Creates the limiter table if it is missing (on-demand, `pk` string key, TTL on
/// `expires_at`). Only ever called against a local emulator.
pub async fn create_table_if_missing(client: &Client, table: &str) -> Result<(), StoreError> {
    crate::dynamo::create_table_if_missing(client, table, PARTITION_KEY, None, TTL_ATTRIBUTE)
        .await
        .map_err(StoreError)
}

/// The lanes in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Reads a key's item (tests and diagnostics; the limiter itself never reads).
    pub async fn state(&self, key: &str) -> Result<LaneState, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError(DisplayErrorContext(&e).to_string()))?;
        Ok(out.item().map(decode).unwrap_or_default())
    }
}

fn expires_at() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (now + IDLE_TTL).as_secs().to_string()
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok())
}

fn decode(item: &HashMap<String, AttributeValue>) -> LaneState {
    let mut state = LaneState::default();
    for (lane, slot) in state.lanes.iter_mut().enumerate() {
        *slot = number(item, &lane_name(lane));
    }
    state.paused_until = number(item, "paused_until");
    state.pauses = number(item, "pauses").unwrap_or(0).max(0) as u64;
    state
}

#[async_trait::async_trait]
impl LaneStore for DynamoStore {
    async fn reserve(&self, key: &str, r: Reservation) -> Result<Reserve, StoreError> {
        debug_assert!(r.lane < LANES);
        // The same condition as `LaneState::try_reserve`.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, AttributeValue::S(key.to_owned()))
            .update_expression("SET #lane = :next, #ttl = :exp")
            .condition_expression(
                "(attribute_not_exists(#lane) OR #lane <= :slot) AND (attribute_not_exists(#pause) OR #pause <= :slot)",
            )
            .expression_attribute_names("#lane", lane_name(r.lane))
            .expression_attribute_names("#pause", "paused_until")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":slot", AttributeValue::N(r.slot.to_string()))
            .expression_attribute_values(":next", AttributeValue::N((r.slot + LANE_PERIOD_MS).to_string()))
            .expression_attribute_values(":exp", AttributeValue::N(expires_at()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Reserve::Taken(out.attributes().map(decode).unwrap_or_default())),
            Err(SdkError::ServiceError(e)) => match e.err() {
                UpdateItemError::ConditionalCheckFailedException(ccf) => {
                    Ok(Reserve::Lost(ccf.item().map(decode).unwrap_or_default()))
                }
                other => Err(StoreError(DisplayErrorContext(other).to_string())),
            },
            Err(e) => Err(StoreError(DisplayErrorContext(&e).to_string())),
        }
    }

    async fn pause(&self, key: &str, resume_ms: i64) -> Result<bool, StoreError> {
        // The same condition as `LaneState::try_pause`.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, AttributeValue::S(key.to_owned()))
            .update_expression("SET #pause = :resume, #ttl = :exp ADD #count :one")
            .condition_expression("attribute_not_exists(#pause) OR #pause < :earliest")
            .expression_attribute_names("#pause", "paused_until")
            .expression_attribute_names("#count", "pauses")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":resume", AttributeValue::N(resume_ms.to_string()))
            .expression_attribute_values(
                ":earliest",
                AttributeValue::N((resume_ms - PAUSE_SLACK_MS).to_string()),
            )
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":exp", AttributeValue::N(expires_at()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError(DisplayErrorContext(&e).to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_decode_into_lanes() {
        let mut item = HashMap::new();
        item.insert("l03".to_owned(), AttributeValue::N("1234".into()));
        item.insert("paused_until".to_owned(), AttributeValue::N("99".into()));
        item.insert("pauses".to_owned(), AttributeValue::N("2".into()));
        let s = decode(&item);
        assert_eq!(s.lanes[3], Some(1234));
        assert_eq!(s.lanes[0], None);
        assert_eq!((s.paused_until, s.pauses), (Some(99), 2));
    }
}
