//! Where the lanes live. The real store is DynamoDB ([`super::dynamo`]); [`MemoryStore`] keeps
//! the same condition semantics in memory for unit tests and single-process runs.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use super::lanes::{LaneState, Reservation};

/// The store could not answer (throttled, unreachable, timed out, misconfigured).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limiter store unavailable: {0}")]
pub struct StoreError(pub String);

/// The outcome of a conditional reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserve {
    /// Taken; the item as it is now.
    Taken(LaneState),
    /// The condition failed; the item as it is now (so no extra read is needed).
    Lost(LaneState),
}

/// One item per key, updated only through conditional writes.
#[async_trait::async_trait]
pub trait LaneStore: Send + Sync + fmt::Debug {
    /// Takes `r` if the item still allows it ([`LaneState::try_reserve`]).
    async fn reserve(&self, key: &str, r: Reservation) -> Result<Reserve, StoreError>;

    /// Moves the key's pause to `resume_ms` ([`LaneState::try_pause`]); true when it took effect.
    async fn pause(&self, key: &str, resume_ms: i64) -> Result<bool, StoreError>;
}

/// The store in memory: same semantics, one process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<String, LaneState>>,
}

impl MemoryStore {
    pub fn state(&self, key: &str) -> LaneState {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned().unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl LaneStore for MemoryStore {
    async fn reserve(&self, key: &str, r: Reservation) -> Result<Reserve, StoreError> {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let item = items.entry(key.to_owned()).or_default();
        Ok(if item.try_reserve(r) { Reserve::Taken(item.clone()) } else { Reserve::Lost(item.clone()) })
    }

    async fn pause(&self, key: &str, resume_ms: i64) -> Result<bool, StoreError> {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        Ok(items.entry(key.to_owned()).or_default().try_pause(resume_ms))
    }
}
