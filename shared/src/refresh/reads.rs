//! What the API reads through the refresher: the latest snapshots, the history and alerts, the
//! sync state and its status. Nothing here calls lemlist but [`Refresher::verify`].

use super::lease::now_ms;
use super::{RefreshError, Refresher};
use crate::dashboard::Reads;
use crate::dashboard::fetch::{self, HistoryRead};
use crate::health::{self, HealthLog};
use crate::lemlist::CallStats;
use crate::limiter::Class;
use crate::limiter::usage::{self, Usage};
use crate::snapshot::parts::Base;
use crate::snapshot::{Board, Item, Served, SnapshotError};
use crate::sync::SyncState;
use crate::sync::stored::{self, Stamp};

impl Refresher {
    /// The key's history and alerts, as stored.
    pub async fn health(&self) -> Result<Option<(Base, HealthLog)>, SnapshotError> {
        health::stored::load(self.store.as_ref(), self.key.as_str()).await
    }

    /// The key's stored sync state and what it was read from; `None` when there is none, or
    /// when it cannot be read back (a part gone, an older format): the next refresh then reads
    /// from scratch, and its save replaces what is stored (`stamp_of_unreadable`).
    pub async fn sync_state(&self) -> Result<Option<(Stamp, SyncState)>, SnapshotError> {
        match stored::load(self.store.as_ref(), self.key.as_str()).await {
            Ok(found) => Ok(found),
            Err(SnapshotError::Corrupt(e)) => {
                tracing::warn!(error = %e, "the sync state cannot be read; the next refresh reads from scratch");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The version of a stored state that cannot be read, for a save to replace it.
    pub(super) async fn stamp_of_unreadable(&self) -> Result<Stamp, SnapshotError> {
        let head = self.store.load(self.key.as_str(), Item::Sync).await;
        let version = match head {
            Ok(found) => found.map(|s| s.version),
            Err(_) => None,
        };
        Ok(Stamp::replacing(version))
    }

    /// Each campaign's last 30 days of activity (`GET /api/trends`), from the stored counts.
    pub async fn trends(&self) -> Result<health::trends::Trends, SnapshotError> {
        let today = self.now().date_naive();
        Ok(match self.sync_state().await? {
            Some((_, state)) => health::trends::of(&state.ledger, today, state.complete_until()),
            None => health::trends::of(&Default::default(), today, None),
        })
    }

    /// The key's use of its budget over the last hour (`GET /api/budget`), as every process
    /// recorded it.
    pub async fn budget(&self) -> Result<usage::BudgetView, SnapshotError> {
        Ok(self.stored_usage().await?.1.view(chrono::Utc::now()))
    }

    /// The stored budget and its version (`None`: none yet). An unreadable one starts again
    /// empty: its figures are for people to look at.
    async fn stored_usage(&self) -> Result<(Option<u64>, Usage), SnapshotError> {
        let stored = self.store.load(self.key.as_str(), Item::Budget).await?;
        let usage = stored.as_ref().and_then(|s| crate::snapshot::unpack::<Usage>(&s.bytes).ok());
        Ok((stored.map(|s| s.version), usage.unwrap_or_default()))
    }

    /// Adds what this process's client sent since the last time to the stored budget (one read
    /// and one conditional write; nothing when it sent nothing). A failure is logged: the
    /// figures are for people to look at, never a reason to fail a refresh.
    pub async fn record_usage(&self) {
        let stats = self.client.stats();
        let sent = {
            let last = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
            stats.since(&last)
        };
        if sent.sent == 0 && sent.rate_limited == 0 {
            return;
        }
        let others = self.client.others_per_window();
        for _ in 0..3 {
            let (version, mut usage) = match self.stored_usage().await {
                Ok(found) => found,
                Err(e) => return tracing::warn!(error = %e, "the budget's figures could not be read"),
            };
            // Wall-clock minutes: the budget is lemlist's, in real time.
            usage.add(chrono::Utc::now(), sent.sent_by_class, sent.rate_limited, others);
            let bytes = crate::snapshot::pack(&usage);
            match self.store.save(self.key.as_str(), Item::Budget, bytes, version).await {
                Ok(true) => {
                    let mut last = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
                    *last = CallStats { waiting: 0, longest_interactive_wait_ms: 0, ..stats };
                    return;
                }
                Ok(false) => continue,
                Err(e) => return tracing::warn!(error = %e, "the budget's figures could not be stored"),
            }
        }
        tracing::warn!("the budget's figures kept changing under this process; added next time");
    }

    /// The key's sync state as `GET /api/sync` answers it.
    pub async fn sync_status(&self) -> Result<crate::sync::SyncStatus, SnapshotError> {
        let found = self.sync_state().await?;
        let bytes = found.as_ref().map_or(0, |(stamp, _)| stamp.stored_bytes());
        let mut status = SyncState::status(found.as_ref().map(|(_, s)| s), &self.sync, bytes);
        match &self.hooks {
            Some(setup) => {
                status.hooks.enabled = true;
                status.hooks.receiver = Some(setup.events.counters().await?);
            }
            None => status.hooks.off_because = Some(self.hooks_off.to_owned()),
        }
        Ok(status)
    }

    /// Reads the history of every tracked campaign from scratch, up to the instant the stored
    /// state is complete to, and lists every difference with the state's sets: nothing means
    /// parity. It costs what a first sync's histories cost, at the lowest priority.
    pub async fn verify(&self) -> Result<Vec<String>, RefreshError> {
        let Some((_, state)) = self.sync_state().await? else {
            return Ok(vec!["no sync state is stored for this key: nothing to verify yet".into()]);
        };
        let Some(until) = state.complete_until() else {
            return Ok(vec!["the sync state has no watermark yet: nothing to verify".into()]);
        };
        let histories = state.campaigns.keys().flat_map(|id| HistoryRead::whole(id, until)).collect();
        let reads = Reads { until, histories, ..Reads::default() };
        let client = self.client.with_class(Class::Background);
        let mut fresh = fetch::read(&client, vec![], &reads).await.into_team_data();
        Ok(state.differences(&mut fresh))
    }

    /// Replaces the stored sync state, every set written whole (tests corrupt it through here
    /// to check `verify`).
    pub async fn store_sync_state(&self, state: &SyncState, stamp: &Stamp) -> Result<bool, SnapshotError> {
        let mut state = state.clone();
        Ok(stored::save(self.store.as_ref(), self.key.as_str(), &mut state, stamp, true).await?.is_some())
    }

    /// Asks for a refresh of the key through the store (in AWS, the snapshot table's stream
    /// starts the refresh function).
    pub async fn request(&self) -> Result<(), SnapshotError> {
        self.store.request_refresh(self.key.as_str(), now_ms()).await
    }

    /// The latest snapshot of `board`, as served.
    pub async fn latest(&self, board: Board) -> Result<Option<Served>, SnapshotError> {
        match self.store.load(self.key.as_str(), board.into()).await? {
            Some(stored) => Served::decode(board, &stored.bytes),
            None => Ok(None),
        }
    }

    /// Whether both snapshots were fetched at or after `at_ms`.
    pub(super) async fn fetched_after(&self, at_ms: i64) -> Result<bool, SnapshotError> {
        for board in Board::ALL {
            match self.latest(board).await? {
                Some(s) if s.computed_at.timestamp_millis() >= at_ms => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }
}
