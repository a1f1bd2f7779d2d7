//! Where snapshots live, and the refresh lease. DynamoDB in production ([`super::dynamo`]);
//! [`MemorySnapshots`] is the embedded store of the local runner and of unit tests, with the
//! same conditions.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use super::{Board, SnapshotError};

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

/// Snapshots by key (the API key's fingerprint) and board, and one refresh lease per key.
#[async_trait::async_trait]
pub trait SnapshotStore: Send + Sync + fmt::Debug {
    /// The latest snapshot of `board`, read consistently.
    async fn load(&self, key: &str, board: Board) -> Result<Option<Stored>, SnapshotError>;

    /// Writes `bytes` as the next version if the stored version is still `expected` (`None`:
    /// nothing stored yet). False when another writer came first: reload and try again.
    async fn save(
        &self,
        key: &str,
        board: Board,
        bytes: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<bool, SnapshotError>;

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
    snapshots: Mutex<HashMap<(String, Board), Stored>>,
    leases: Mutex<HashMap<String, Lease>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait::async_trait]
impl SnapshotStore for MemorySnapshots {
    async fn load(&self, key: &str, board: Board) -> Result<Option<Stored>, SnapshotError> {
        Ok(locked(&self.snapshots).get(&(key.to_owned(), board)).cloned())
    }

    async fn save(
        &self,
        key: &str,
        board: Board,
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
        assert!(s.save("k", Board::Campaigns, vec![1], None).await.unwrap());
        assert!(!s.save("k", Board::Campaigns, vec![2], None).await.unwrap(), "already created");
        assert!(s.save("k", Board::Campaigns, vec![2], Some(1)).await.unwrap());
        assert!(!s.save("k", Board::Campaigns, vec![3], Some(1)).await.unwrap(), "stale version");
        assert_eq!(s.load("k", Board::Campaigns).await.unwrap(), Some(Stored { version: 2, bytes: vec![2] }));
        assert_eq!(s.load("k", Board::Mailboxes).await.unwrap(), None);
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
