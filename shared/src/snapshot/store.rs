//! Where snapshots live, and the refresh lease. DynamoDB in production ([`super::dynamo`]);
//! [`MemorySnapshots`] is the embedded store of the local runner and of unit tests, with the
//! same conditions.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;

use super::parts::{Base, Document, Layered, Manifest, Plan};
use super::{Item, SnapshotError};

/// A stored snapshot: its compressed bytes and the version that conditional writes compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub version: u64,
    pub bytes: Vec<u8>,
}

/// Who is refreshing a key, and until when (epoch ms) unless they renew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: String,
    pub until_ms: i64,
}

/// What a store was asked, per kind of item, in DynamoDB's billing units.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub reads: u64,
    /// Read request units (strongly consistent: one per 4 KB of each item read).
    pub read_units: f64,
    pub writes: u64,
    /// Write request units (one per 1 KB of each item written; a delete counts its item's size).
    pub write_units: f64,
}

/// Tallies by kind of item: a board's name, `lease`, `request`.
pub type Units = BTreeMap<&'static str, Tally>;

/// Counts what a store is asked. The DynamoDB store records the capacity DynamoDB reports it
/// consumed; the store in memory what DynamoDB would bill for the same items.
#[derive(Debug, Default)]
pub struct Meter(Mutex<Units>);

impl Meter {
    pub fn read(&self, kind: &'static str, items: u64, units: f64) {
        let mut all = locked(&self.0);
        let t = all.entry(kind).or_default();
        (t.reads, t.read_units) = (t.reads + items, t.read_units + units);
    }

    pub fn wrote(&self, kind: &'static str, items: u64, units: f64) {
        let mut all = locked(&self.0);
        let t = all.entry(kind).or_default();
        (t.writes, t.write_units) = (t.writes + items, t.write_units + units);
    }

    pub fn units(&self) -> Units {
        locked(&self.0).clone()
    }
}

/// DynamoDB's size of an item of these attributes (names and values, in bytes).
pub fn item_size(attributes: &[(&str, usize)]) -> usize {
    attributes.iter().map(|(name, value)| name.len() + value).sum()
}

/// The largest item DynamoDB holds, attribute names and values included.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The write units of an item of `size` bytes.
pub fn write_units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// The strongly consistent read units of an item of `size` bytes.
pub fn read_units(size: usize) -> f64 {
    size.div_ceil(4096).max(1) as f64
}

/// Snapshots by key (the API key's fingerprint) and board, and one refresh lease per key.
#[async_trait::async_trait]
pub trait SnapshotStore: Send + Sync + fmt::Debug {
    /// The latest snapshot of `board`, read consistently.
    async fn load(&self, key: &str, board: Item) -> Result<Option<Stored>, SnapshotError>;

    /// Writes `bytes` as the next version if the stored version is still `expected` (`None`:
    /// nothing stored yet). False when another writer came first: reload and try again.
    async fn save(
        &self,
        key: &str,
        board: Item,
        bytes: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<bool, SnapshotError>;

    /// A document kept in parts ([`super::parts`]), or the whole document of the previous
    /// layout, read consistently: the head first, then the parts it names.
    async fn load_parts(&self, key: &str, board: Item) -> Result<Option<Document>, SnapshotError>;

    /// Writes `plan`'s parts, then a head of `head` (compressed) naming them, if the stored
    /// version is still `base`'s. False when another writer came first (its parts stay unnamed
    /// and the TTL takes them).
    async fn save_parts(
        &self,
        key: &str,
        board: Item,
        head: Vec<u8>,
        plan: &Plan,
        base: &Base,
    ) -> Result<bool, SnapshotError>;

    /// What this store was asked so far.
    fn units(&self) -> Units {
        Units::default()
    }

    /// Takes the key's refresh lease until `until_ms` if it is free, expired at `now_ms`, or
    /// already `holder`'s (renewal). True when `holder` holds it now.
    async fn acquire_lease(
        &self,
        key: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, SnapshotError>;

    /// Gives the lease up if `holder` still holds it.
    async fn release_lease(&self, key: &str, holder: &str) -> Result<(), SnapshotError>;

    /// Asks for a refresh of the key (in AWS, the table's stream starts the refresh function).
    async fn request_refresh(&self, key: &str, at_ms: i64) -> Result<(), SnapshotError>;
}

/// The store in memory, for one process.
#[derive(Debug, Default)]
pub struct MemorySnapshots {
    snapshots: Mutex<HashMap<(String, Item), Stored>>,
    layered: Mutex<HashMap<(String, Item), Layered>>,
    leases: Mutex<HashMap<String, Lease>>,
    meter: Meter,
}

/// The size of a snapshot table item: `pk`, `sk`, `doc` and the rest (`version`, `expires_at`
/// and a manifest when given).
fn table_item(key: &str, sort_key: &str, doc: usize, manifest: usize) -> usize {
    let rest = [("version", 8), ("expires_at", 8), ("manifest", manifest)];
    item_size(&[("pk", key.len()), ("sk", sort_key.len()), ("doc", doc)]) + item_size(&rest)
}

/// The stored size of a manifest (compressed JSON, as the DynamoDB store keeps it).
pub fn manifest_size(manifest: &Manifest) -> usize {
    super::pack(manifest).len()
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait::async_trait]
impl SnapshotStore for MemorySnapshots {
    async fn load(&self, key: &str, board: Item) -> Result<Option<Stored>, SnapshotError> {
        let found = locked(&self.snapshots).get(&(key.to_owned(), board)).cloned();
        let size = found.as_ref().map_or(0, |s| table_item(key, board.as_str(), s.bytes.len(), 0));
        self.meter.read(board.as_str(), 1, read_units(size));
        Ok(found)
    }

    async fn load_parts(&self, key: &str, board: Item) -> Result<Option<Document>, SnapshotError> {
        let id = (key.to_owned(), board);
        if let Some(l) = locked(&self.layered).get(&id).cloned() {
            let manifest = manifest_size(&l.manifest);
            let head = table_item(key, board.as_str(), l.head.len(), manifest);
            let parts: f64 = l.parts.iter().map(|(n, b)| read_units(table_item(key, n, b.len(), 0))).sum();
            self.meter.read(board.as_str(), 1 + l.parts.len() as u64, read_units(head) + parts);
            return Ok(Some(Document::Layered(l)));
        }
        Ok(self.load(key, board).await?.map(Document::Whole))
    }

    async fn save_parts(
        &self,
        key: &str,
        board: Item,
        head: Vec<u8>,
        plan: &Plan,
        base: &Base,
    ) -> Result<bool, SnapshotError> {
        let id = (key.to_owned(), board);
        // DynamoDB's own limit, so that what works here works there.
        let head_size = table_item(key, board.as_str(), head.len(), manifest_size(&plan.manifest));
        let sizes = plan.puts.iter().map(|p| table_item(key, &p.sort_key, p.bytes.len(), 0));
        if let Some(size) = sizes.chain([head_size]).find(|s| *s > MAX_ITEM_BYTES) {
            return Err(SnapshotError::Store(format!(
                "an item of {size} bytes: DynamoDB holds at most {MAX_ITEM_BYTES}"
            )));
        }
        for put in &plan.puts {
            self.meter.wrote(
                board.as_str(),
                1,
                write_units(table_item(key, &put.sort_key, put.bytes.len(), 0)),
            );
        }
        let mut layered = locked(&self.layered);
        let mut whole = locked(&self.snapshots);
        let current = layered.get(&id).map(|l| l.version).or_else(|| whole.get(&id).map(|s| s.version));
        if current != base.version {
            return Ok(false);
        }
        let size = table_item(key, board.as_str(), head.len(), manifest_size(&plan.manifest));
        self.meter.wrote(board.as_str(), 1, write_units(size));
        let mut parts = layered.remove(&id).map(|l| l.parts).unwrap_or_default();
        for put in &plan.puts {
            if put.chunk == 0 {
                parts.insert(put.name.clone(), put.bytes.clone());
            } else if let Some(part) = parts.get_mut(&put.name) {
                part.extend_from_slice(&put.bytes);
            }
        }
        // Unnamed parts would wait for the TTL in DynamoDB; in memory they go now.
        parts.retain(|name, _| plan.manifest.contains_key(name));
        let version = base.version.map_or(1, |v| v + 1);
        whole.remove(&id);
        layered.insert(id, Layered { version, head, manifest: plan.manifest.clone(), parts });
        Ok(true)
    }

    fn units(&self) -> Units {
        self.meter.units()
    }

    async fn save(
        &self,
        key: &str,
        board: Item,
        bytes: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<bool, SnapshotError> {
        let mut all = locked(&self.snapshots);
        let slot = all.entry((key.to_owned(), board));
        let current = match &slot {
            std::collections::hash_map::Entry::Occupied(e) => Some(e.get().version),
            std::collections::hash_map::Entry::Vacant(_) => None,
        };
        if current != expected {
            return Ok(false);
        }
        self.meter.wrote(board.as_str(), 1, write_units(table_item(key, board.as_str(), bytes.len(), 0)));
        let stored = Stored { version: expected.map_or(1, |v| v + 1), bytes };
        slot.insert_entry(stored);
        Ok(true)
    }

    async fn acquire_lease(
        &self,
        key: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, SnapshotError> {
        self.meter.wrote("lease", 1, 1.0);
        let mut leases = locked(&self.leases);
        match leases.get(key) {
            Some(l) if l.holder != holder && l.until_ms >= now_ms => Ok(false),
            _ => {
                leases.insert(key.to_owned(), Lease { holder: holder.to_owned(), until_ms });
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<(), SnapshotError> {
        self.meter.wrote("lease", 1, 1.0);
        let mut leases = locked(&self.leases);
        if leases.get(key).is_some_and(|l| l.holder == holder) {
            leases.remove(key);
        }
        Ok(())
    }

    /// Nothing listens to a store in memory: a process that keeps its snapshots there runs its
    /// refreshes itself (`REFRESH_TRIGGER=table` needs `SNAPSHOT_TABLE`).
    async fn request_refresh(&self, _key: &str, _at_ms: i64) -> Result<(), SnapshotError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn saves_are_conditional_on_the_version_read() {
        let s = MemorySnapshots::default();
        assert!(s.save("k", Item::Campaigns, vec![1], None).await.unwrap());
        assert!(!s.save("k", Item::Campaigns, vec![2], None).await.unwrap(), "already created");
        assert!(s.save("k", Item::Campaigns, vec![2], Some(1)).await.unwrap());
        assert!(!s.save("k", Item::Campaigns, vec![3], Some(1)).await.unwrap(), "stale version");
        assert_eq!(s.load("k", Item::Campaigns).await.unwrap(), Some(Stored { version: 2, bytes: vec![2] }));
        assert_eq!(s.load("k", Item::Mailboxes).await.unwrap(), None);
    }

    #[tokio::test]
    async fn one_lease_holder_at_a_time_until_it_expires() {
        let s = MemorySnapshots::default();
        assert!(s.acquire_lease("k", "a", 0, 1000).await.unwrap());
        assert!(!s.acquire_lease("k", "b", 500, 1500).await.unwrap());
        assert!(s.acquire_lease("k", "a", 900, 1900).await.unwrap(), "the holder renews");
        assert!(s.acquire_lease("k", "b", 2000, 3000).await.unwrap(), "expired: b takes over");
        s.release_lease("k", "a").await.unwrap();
        assert!(!s.acquire_lease("k", "c", 2100, 3100).await.unwrap(), "a no longer held it: b still does");
        s.release_lease("k", "b").await.unwrap();
        assert!(s.acquire_lease("k", "c", 2200, 3200).await.unwrap(), "released");
    }
}
