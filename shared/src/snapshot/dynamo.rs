//! Snapshots and the refresh lease in DynamoDB (`SNAPSHOT_TABLE`).
//!
//! Items, all under `pk` = the key's fingerprint (`lemlist#…`, never the key):
//! - `sk` = `campaigns` / `mailboxes` / `sync` / `health`: the head of a snapshot, of the sync
//!   state (`crate::sync`) or of the history and alerts (`crate::health`): `version` (N,
//!   compared by every write),
//!   `doc` (B, the first part of the compressed snapshot), `parts` (N) and `part_token` (S);
//! - `sk` = `<board>#<part_token>#<i>` for parts 1…n−1 when the compressed snapshot is larger
//!   than one part ([`PART_BYTES`], under DynamoDB's 400 KB item limit). Parts are written
//!   before the head that names them, and the previous head's parts are deleted after;
//! - `sk` = `lease`: `holder` (S) and `until_ms` (N) of the running refresh;
//! - `sk` = `request`: `requested_at_ms` (N), written to ask for a refresh (the table's stream
//!   starts the refresh function in AWS).
//!
//! Every item but the dashboards' heads carries `expires_at` (epoch s), the table's TTL
//! attribute: a week after its last write (90 days for the history and alerts).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConsumedCapacity, KeysAndAttributes, ReturnConsumedCapacity, ReturnValue,
};

use super::parts::{self, Base, Document, Layered, Manifest, Plan};
use super::store::{Meter, SnapshotStore, Stored, Units};
use super::{Item, SnapshotError};

/// The snapshot table's partition key (a string). The infra template declares the same.
pub const PARTITION_KEY: &str = "pk";
/// The snapshot table's sort key (a string).
pub const SORT_KEY: &str = "sk";
/// The snapshot table's TTL attribute (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// The sort key of the item that asks for a refresh; the deployment's stream filter names it.
pub const REQUEST_SORT_KEY: &str = "request";
/// The sort key of the refresh lease.
const LEASE_SORT_KEY: &str = "lease";
/// Every DynamoDB action this store calls (its IAM policy grants exactly these).
pub const ACTIONS: [&str; 5] = [
    "dynamodb:BatchGetItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
];
/// The most bytes of a compressed snapshot kept in one item.
pub const PART_BYTES: usize = 350_000;
/// How long extra parts, leases and requests are kept at most.
const KEEP_SECS: u64 = 7 * 24 * 3600;

/// Creates the snapshot table if it is missing. Only ever called against a local emulator.
pub async fn create_table_if_missing(client: &Client, table: &str) -> Result<(), SnapshotError> {
    crate::dynamo::create_table_if_missing(client, table, PARTITION_KEY, Some(SORT_KEY), TTL_ATTRIBUTE)
        .await
        .map_err(SnapshotError::Store)
}

/// Snapshots in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoSnapshots {
    client: Client,
    table: String,
    /// The capacity DynamoDB reports each call consumed.
    meter: std::sync::Arc<Meter>,
}

fn consumed(c: Option<&ConsumedCapacity>) -> f64 {
    c.and_then(|c| c.capacity_units()).unwrap_or_default()
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn expires_at() -> AttributeValue {
    expires_after(KEEP_SECS)
}

fn expires_after(secs: u64) -> AttributeValue {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    n(now + secs)
}

/// How long a board's items outlive their last write: the history and alerts
/// [`HEALTH_KEEP_DAYS`] (at least as long as the history keeps its points), everything else
/// [`KEEP_SECS`].
fn keep_secs(board: Item) -> u64 {
    match board {
        Item::Health => HEALTH_KEEP_DAYS * 24 * 3600,
        _ => KEEP_SECS,
    }
}

/// Days a whole history document outlives its last write (`health::history::KEPT_DAYS` must
/// not exceed it: a test there says so).
pub const HEALTH_KEEP_DAYS: u64 = 90;

pub(crate) fn store_error<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> SnapshotError {
    SnapshotError::Store(DisplayErrorContext(&e).to_string())
}

fn condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// The kind of item a sort key names, for the meter.
fn kind(sort_key: &str) -> &'static str {
    let board = sort_key.split('#').next().unwrap_or_default();
    [Item::Campaigns, Item::Mailboxes, Item::Sync, Item::Health, Item::Budget]
        .into_iter()
        .map(Item::as_str)
        .chain([LEASE_SORT_KEY, REQUEST_SORT_KEY])
        .find(|k| *k == board)
        .unwrap_or("other")
}

fn kind_of(item: &HashMap<String, AttributeValue>) -> &'static str {
    kind(text(item, SORT_KEY).unwrap_or_default())
}

fn part_key(board: Item, token: &str, i: usize) -> String {
    format!("{}#{token}#{i}", board.as_str())
}

impl DynamoSnapshots {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), meter: Default::default() }
    }

    fn key(&self, pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([(PARTITION_KEY.to_owned(), s(pk)), (SORT_KEY.to_owned(), s(sk))])
    }

    /// Writes an item that the TTL removes after [`KEEP_SECS`] unless rewritten.
    async fn put_expiring(&self, item: HashMap<String, AttributeValue>) -> Result<(), SnapshotError> {
        self.put_expiring_after(item, KEEP_SECS).await
    }

    async fn put_expiring_after(
        &self,
        mut item: HashMap<String, AttributeValue>,
        secs: u64,
    ) -> Result<(), SnapshotError> {
        item.insert(TTL_ATTRIBUTE.into(), expires_after(secs));
        let kind = kind_of(&item);
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(store_error)?;
        self.meter.wrote(kind, 1, consumed(out.consumed_capacity()));
        Ok(())
    }

    /// The put of a head, conditional on the stored version still being `expected` (`None`:
    /// nothing stored yet), reporting the capacity it consumed.
    fn head_put(&self, item: HashMap<String, AttributeValue>, expected: Option<u64>) -> PutItemFluentBuilder {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        match expected {
            None => put
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PARTITION_KEY),
            Some(v) => put.condition_expression("version = :v").expression_attribute_values(":v", n(v)),
        }
    }

    /// Reads items by key, in batches of at most 100 (what BatchGetItem answers), asking again
    /// for what DynamoDB leaves unprocessed. An eventually consistent read costs half a strong
    /// one, and may miss an item written less than a second ago.
    async fn get_all(
        &self,
        kind: &'static str,
        mut keys: Vec<HashMap<String, AttributeValue>>,
        consistent: bool,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, SnapshotError> {
        let mut found = Vec::new();
        while !keys.is_empty() {
            let batch: Vec<_> = keys.drain(..keys.len().min(100)).collect();
            let request = KeysAndAttributes::builder()
                .set_keys(Some(batch))
                .consistent_read(consistent)
                .build()
                .map_err(|e| SnapshotError::Store(e.to_string()))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(store_error)?;
            let items = out.responses.unwrap_or_default().remove(&self.table).unwrap_or_default();
            let units = out.consumed_capacity.unwrap_or_default().iter().map(|c| consumed(Some(c))).sum();
            self.meter.read(kind, items.len() as u64, units);
            found.extend(items);
            if let Some(left) = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                keys.extend(left.keys);
            }
        }
        Ok(found)
    }

    /// The head of `board`, read consistently.
    async fn head(
        &self,
        pk: &str,
        board: Item,
    ) -> Result<Option<HashMap<String, AttributeValue>>, SnapshotError> {
        let head = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key(pk, board.as_str())))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(store_error)?;
        self.meter.read(board.as_str(), 1, consumed(head.consumed_capacity()));
        Ok(head.item)
    }

    /// A document in parts: `None` inside when a part went missing (the TTL took a part a
    /// newer head no longer names, between the two reads).
    async fn load_layered_once(
        &self,
        pk: &str,
        board: Item,
        item: HashMap<String, AttributeValue>,
    ) -> Result<Option<Layered>, SnapshotError> {
        let corrupt = || SnapshotError::Corrupt(format!("{} head is incomplete", board.as_str()));
        let blob = |name: &str| item.get(name).and_then(|d| d.as_b().ok()).map(|b| b.as_ref().to_vec());
        let version = number(&item, "version").ok_or_else(corrupt)? as u64;
        let head = blob("doc").ok_or_else(corrupt)?;
        let manifest: Manifest = super::unpack(&blob("manifest").ok_or_else(corrupt)?)?;
        // Each part's items by sort key: its name and which chunk.
        let by_key: HashMap<String, (String, usize)> = manifest
            .iter()
            .flat_map(|(name, r)| {
                r.sort_keys(board, name).into_iter().enumerate().map(|(k, sk)| (sk, (name.clone(), k)))
            })
            .collect();
        // A part never changes once written (its key names its content): an eventually
        // consistent read either finds it whole or misses it, and only a part written a moment
        // ago can be missed. Those are read again, consistently.
        let mut found: HashMap<(String, usize), Vec<u8>> = HashMap::new();
        for consistent in [false, true] {
            let keys = by_key
                .iter()
                .filter(|(_, chunk)| !found.contains_key(*chunk))
                .map(|(sk, _)| self.key(pk, sk))
                .collect::<Vec<_>>();
            if keys.is_empty() {
                break;
            }
            for item in self.get_all(board.as_str(), keys, consistent).await? {
                if let (Some(chunk), Some(doc)) = (
                    text(&item, SORT_KEY).and_then(|sk| by_key.get(sk)),
                    item.get("doc").and_then(|d| d.as_b().ok()),
                ) {
                    found.insert(chunk.clone(), doc.as_ref().to_vec());
                }
            }
        }
        if found.len() < by_key.len() {
            return Ok(None);
        }
        let mut parts = std::collections::BTreeMap::new();
        for (name, r) in &manifest {
            let bytes = (0..r.chunks.max(1))
                .flat_map(|k| found.remove(&(name.clone(), k)).unwrap_or_default())
                .collect();
            parts.insert(name.clone(), bytes);
        }
        Ok(Some(Layered { version, head, manifest, parts }))
    }

    async fn delete_parts(&self, pk: &str, board: Item, token: &str, parts: usize) {
        for i in 1..parts {
            let deleted = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(self.key(pk, &part_key(board, token, i))))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            if let Ok(out) = &deleted {
                self.meter.wrote(board.as_str(), 1, consumed(out.consumed_capacity()));
            }
            if let Err(e) = deleted {
                // Left to the TTL.
                tracing::warn!(error = %DisplayErrorContext(&e), "could not delete an old snapshot part");
            }
        }
    }

    /// Reads a head and its parts; `None` inside when a part went missing (a newer save
    /// deleted it between the two reads).
    async fn load_once(&self, pk: &str, board: Item) -> Result<Option<Option<Stored>>, SnapshotError> {
        let Some(item) = self.head(pk, board).await? else { return Ok(Some(None)) };
        let corrupt = || SnapshotError::Corrupt(format!("{} snapshot head is incomplete", board.as_str()));
        let version = number(&item, "version").ok_or_else(corrupt)? as u64;
        let parts = number(&item, "parts").unwrap_or(1).max(1) as usize;
        let mut bytes = item.get("doc").and_then(|d| d.as_b().ok()).ok_or_else(corrupt)?.as_ref().to_vec();
        if parts > 1 {
            let token = text(&item, "part_token").ok_or_else(corrupt)?;
            let keys = (1..parts).map(|i| self.key(pk, &part_key(board, token, i))).collect();
            let mut found: HashMap<String, Vec<u8>> = HashMap::new();
            for item in self.get_all(board.as_str(), keys, true).await? {
                if let (Some(sk), Some(doc)) =
                    (text(&item, SORT_KEY), item.get("doc").and_then(|d| d.as_b().ok()))
                {
                    found.insert(sk.to_owned(), doc.as_ref().to_vec());
                }
            }
            for i in 1..parts {
                match found.remove(&part_key(board, token, i)) {
                    Some(part) => bytes.extend(part),
                    None => return Ok(None),
                }
            }
        }
        Ok(Some(Some(Stored { version, bytes })))
    }
}

#[async_trait::async_trait]
impl SnapshotStore for DynamoSnapshots {
    async fn load_parts(&self, key: &str, board: Item) -> Result<Option<Document>, SnapshotError> {
        for _ in 0..3 {
            let Some(item) = self.head(key, board).await? else { return Ok(None) };
            if !item.contains_key("manifest") {
                // The previous layout: one document, perhaps in parts of its own.
                return Ok(self.load(key, board).await?.map(Document::Whole));
            }
            if let Some(layered) = self.load_layered_once(key, board, item).await? {
                return Ok(Some(Document::Layered(layered)));
            }
        }
        Err(SnapshotError::Corrupt(format!("{} parts keep changing or are gone", board.as_str())))
    }

    async fn save_parts(
        &self,
        key: &str,
        board: Item,
        head: Vec<u8>,
        plan: &Plan,
        base: &Base,
    ) -> Result<bool, SnapshotError> {
        for put in &plan.puts {
            let mut item = self.key(key, &put.sort_key);
            item.insert("doc".into(), AttributeValue::B(Blob::new(put.bytes.clone())));
            self.put_expiring_after(item, parts::part_keep_secs(board)).await?;
        }
        let mut item = self.key(key, board.as_str());
        item.insert("version".into(), n(base.version.map_or(1, |v| v + 1)));
        item.insert("doc".into(), AttributeValue::B(Blob::new(head)));
        item.insert("manifest".into(), AttributeValue::B(Blob::new(super::pack(&plan.manifest))));
        // Rewritten by every refresh; a key left idle loses its sync state after a week (it
        // syncs from scratch when it comes back) and its history after 90 days. Their parts
        // follow by their own TTL.
        item.insert(TTL_ATTRIBUTE.into(), expires_after(keep_secs(board)));
        match self.head_put(item, base.version).send().await {
            Ok(out) => {
                self.meter.wrote(board.as_str(), 1, consumed(out.consumed_capacity()));
                Ok(true)
            }
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    fn units(&self) -> Units {
        self.meter.units()
    }

    async fn load(&self, key: &str, board: Item) -> Result<Option<Stored>, SnapshotError> {
        for _ in 0..3 {
            if let Some(found) = self.load_once(key, board).await? {
                return Ok(found);
            }
        }
        Err(SnapshotError::Corrupt(format!("{} snapshot parts keep changing or are gone", board.as_str())))
    }

    async fn save(
        &self,
        key: &str,
        board: Item,
        bytes: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<bool, SnapshotError> {
        let chunks: Vec<&[u8]> = bytes.chunks(PART_BYTES).collect();
        let token = format!("{:016x}", rand::random::<u64>());
        for (i, chunk) in chunks.iter().enumerate().skip(1) {
            let mut item = self.key(key, &part_key(board, &token, i));
            item.insert("doc".into(), AttributeValue::B(Blob::new(chunk.to_vec())));
            self.put_expiring_after(item, keep_secs(board)).await?;
        }
        let version = expected.map_or(1, |v| v + 1);
        let mut head = self.key(key, board.as_str());
        head.insert("version".into(), n(version));
        head.insert("parts".into(), n(chunks.len().max(1)));
        head.insert("part_token".into(), s(&token));
        if matches!(board, Item::Sync | Item::Health) {
            // Rewritten by every refresh; a key left idle loses its sync state (after a week: it
            // syncs from scratch when it comes back) or its history (after 90 days), head and
            // parts alike.
            head.insert(TTL_ATTRIBUTE.into(), expires_after(keep_secs(board)));
        }
        head.insert(
            "doc".into(),
            AttributeValue::B(Blob::new(chunks.first().copied().unwrap_or_default().to_vec())),
        );
        match self.head_put(head, expected).return_values(ReturnValue::AllOld).send().await {
            Ok(out) => {
                self.meter.wrote(board.as_str(), 1, consumed(out.consumed_capacity()));
                if let Some(old) = out.attributes {
                    let parts = number(&old, "parts").unwrap_or(1) as usize;
                    if let Some(old_token) = text(&old, "part_token") {
                        self.delete_parts(key, board, old_token, parts).await;
                    }
                }
                Ok(true)
            }
            Err(e) if condition_failed(&e) => {
                self.delete_parts(key, board, &token, chunks.len()).await;
                Ok(false)
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn acquire_lease(
        &self,
        key: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, SnapshotError> {
        let taken = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(key, LEASE_SORT_KEY)))
            .update_expression("SET holder = :h, until_ms = :u, #ttl = :e")
            .condition_expression("attribute_not_exists(#pk) OR until_ms < :now OR holder = :h")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":h", s(holder))
            .expression_attribute_values(":u", n(until_ms))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":e", expires_at())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match taken {
            Ok(out) => {
                self.meter.wrote("lease", 1, consumed(out.consumed_capacity()));
                Ok(true)
            }
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<(), SnapshotError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self.key(key, LEASE_SORT_KEY)))
            .condition_expression("holder = :h")
            .expression_attribute_values(":h", s(holder))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match deleted {
            Ok(out) => {
                self.meter.wrote("lease", 1, consumed(out.consumed_capacity()));
                Ok(())
            }
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn request_refresh(&self, key: &str, at_ms: i64) -> Result<(), SnapshotError> {
        let mut item = self.key(key, REQUEST_SORT_KEY);
        item.insert("requested_at_ms".into(), n(at_ms));
        self.put_expiring(item).await
    }
}
