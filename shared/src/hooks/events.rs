//! Where the receiver keeps what it accepted, durably before it answers 2xx: the registered
//! hooks (by the hash of their path token), each accepted event once (by its activity `_id`:
//! a duplicate changes nothing), and the counters `GET /api/sync` shows.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Registered;
use crate::lemlist::Activity;
use crate::snapshot::SnapshotError;

/// What the receiver counted, deployment-wide.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Deliveries accepted and kept (first copies).
    pub deliveries: u64,
    /// Deliveries of an event already kept.
    pub duplicates: u64,
    /// Deliveries refused or dropped, by reason.
    pub rejected: BTreeMap<String, u64>,
    pub last_delivery: Option<DateTime<Utc>>,
}

/// The receiver's store.
#[async_trait]
pub trait EventStore: Send + Sync + std::fmt::Debug {
    /// The hook whose path token hashes to `token_hash`.
    async fn registered(&self, token_hash: &str) -> Result<Option<Registered>, SnapshotError>;
    async fn register(&self, hook: &Registered) -> Result<(), SnapshotError>;
    async fn unregister(&self, token_hash: &str) -> Result<(), SnapshotError>;
    /// Keeps `activity` unless an event of its `_id` is kept already, and counts it as a
    /// delivery in the same atomic write (an event is never kept uncounted, nor counted
    /// unkept): whether it is new.
    async fn keep_new(&self, activity: &Activity, at: DateTime<Utc>) -> Result<bool, SnapshotError>;
    /// Adds one to a counter: `duplicate`, or a rejection's reason (best effort: a failure is
    /// logged, the delivery's answer does not change).
    async fn count(&self, what: &str, at: DateTime<Utc>) -> Result<(), SnapshotError>;
    async fn counters(&self) -> Result<Counters, SnapshotError>;
}

/// In memory: the local runner's and the unit tests'.
#[derive(Debug, Default)]
pub struct MemoryEvents {
    hooks: Mutex<HashMap<String, Registered>>,
    events: Mutex<HashMap<String, DateTime<Utc>>>,
    counters: Mutex<Counters>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Adds one `what` to `c`.
pub fn add(c: &mut Counters, what: &str, at: DateTime<Utc>) {
    match what {
        "delivery" => {
            c.deliveries += 1;
            c.last_delivery = Some(c.last_delivery.map_or(at, |l| l.max(at)));
        }
        "duplicate" => c.duplicates += 1,
        reason => *c.rejected.entry(reason.to_owned()).or_default() += 1,
    }
}

#[async_trait]
impl EventStore for MemoryEvents {
    async fn registered(&self, token_hash: &str) -> Result<Option<Registered>, SnapshotError> {
        Ok(lock(&self.hooks).get(token_hash).cloned())
    }

    async fn register(&self, hook: &Registered) -> Result<(), SnapshotError> {
        lock(&self.hooks).insert(hook.token_hash.clone(), hook.clone());
        Ok(())
    }

    async fn unregister(&self, token_hash: &str) -> Result<(), SnapshotError> {
        lock(&self.hooks).remove(token_hash);
        Ok(())
    }

    async fn keep_new(&self, activity: &Activity, at: DateTime<Utc>) -> Result<bool, SnapshotError> {
        let mut events = lock(&self.events);
        if events.contains_key(&activity.id) {
            return Ok(false);
        }
        events.insert(activity.id.clone(), at);
        add(&mut lock(&self.counters), "delivery", at);
        Ok(true)
    }

    async fn count(&self, what: &str, at: DateTime<Utc>) -> Result<(), SnapshotError> {
        add(&mut lock(&self.counters), what, at);
        Ok(())
    }

    async fn counters(&self) -> Result<Counters, SnapshotError> {
        Ok(lock(&self.counters).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_event_is_kept_once_and_counters_add_up() {
        let store = MemoryEvents::default();
        let a = Activity::sample("act_1", "emailsSent", Some("lea_1"), Some("cam_1"));
        let at = DateTime::<Utc>::UNIX_EPOCH;
        assert!(store.keep_new(&a, at).await.unwrap());
        assert!(!store.keep_new(&a, at).await.unwrap());
        for what in ["duplicate", "bad_secret", "bad_secret"] {
            store.count(what, at).await.unwrap();
        }
        let c = store.counters().await.unwrap();
        assert_eq!((c.deliveries, c.duplicates, c.rejected["bad_secret"]), (1, 1, 2));
        assert_eq!(c.last_delivery, Some(at));
    }
}
