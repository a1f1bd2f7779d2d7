//! One refresh of a key's dashboards: both computed in one pass (each lemlist resource fetched
//! once) and stored as snapshots, under a lease so that at most one refresh per key runs at a
//! time across every invocation. The lease expires unless renewed, so a refresh that crashed
//! does not block the next one for longer than the lease.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{SyncConfig, SyncMode};
use crate::dashboard::{self, Reads, fetch};
use crate::lemlist::{LemlistClient, LemlistError};
use crate::limiter::Class;
use crate::secret::KeyFingerprint;
use crate::snapshot::{
    Action, Board, Patch, Patchable, RefreshFigures, Served, Snapshot, SnapshotError, SnapshotStore, decode,
    encode, pack, unpack,
};
use crate::sync::{LastRefresh, Mode, SyncState};

/// What invoked the refresh function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invocation {
    /// The EventBridge schedule (or a manual invocation): always refresh.
    Scheduled,
    /// Requests written to the snapshot table (its stream's records): the latest was made at
    /// `at_ms`. Already satisfied when both snapshots were fetched after it.
    Requested { at_ms: i64 },
    /// Stream records that are not requests (a snapshot or lease written, an item expired):
    /// nothing to do, and above all no refresh, whose own writes would start another.
    Ignored,
}

impl Invocation {
    /// Reads the event: a batch of stream records is a request when one of them carries
    /// `requested_at_ms`, and otherwise ignored; anything else (an EventBridge event, `{}`) is a
    /// scheduled refresh.
    pub fn of(event: &serde_json::Value) -> Self {
        let Some(records) = event["Records"].as_array() else { return Self::Scheduled };
        let requested = records
            .iter()
            .filter(|r| r["eventSource"] == "aws:dynamodb")
            .filter_map(|r| r["dynamodb"]["NewImage"]["requested_at_ms"]["N"].as_str()?.parse::<i64>().ok())
            .max();
        match requested {
            Some(at_ms) => Self::Requested { at_ms },
            None => Self::Ignored,
        }
    }
}

/// What the refresh function did, as it answers its invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Report {
    Refreshed(RefreshFigures),
    AlreadyRunning,
    /// Every request was made before the stored snapshots were fetched.
    UpToDate,
    /// The event asked for nothing.
    Ignored,
}

/// A background task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How many times a conditional snapshot write is retried after losing to another writer.
const SAVE_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// A root of the fetch failed (the campaign list or the team): nothing was stored.
    #[error(transparent)]
    Lemlist(#[from] LemlistError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// What a call of [`Refresher::run`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Refreshed(RefreshFigures),
    /// Another refresh of the key holds the lease.
    AlreadyRunning,
}

/// Refreshes one key's snapshots.
#[derive(Debug, Clone)]
pub struct Refresher {
    client: LemlistClient,
    store: Arc<dyn SnapshotStore>,
    /// The snapshots' partition key.
    key: KeyFingerprint,
    lease: Duration,
    sync: SyncConfig,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

impl Refresher {
    pub fn new(
        client: LemlistClient,
        store: Arc<dyn SnapshotStore>,
        key: KeyFingerprint,
        lease: Duration,
    ) -> Self {
        Self { client, store, key, lease, sync: SyncConfig::default() }
    }

    /// How refreshes read lemlist (incremental by default).
    pub fn with_sync(mut self, sync: SyncConfig) -> Self {
        self.sync = sync;
        self
    }

    /// The key's stored sync state and its version; `None` when there is none, or when it
    /// cannot be read back (an older format): the next refresh then reads from scratch.
    pub async fn sync_state(&self) -> Result<Option<(u64, SyncState)>, SnapshotError> {
        let Some(stored) = self.store.load(self.key.as_str(), Board::Sync).await? else { return Ok(None) };
        match unpack::<SyncState>(&stored.bytes) {
            Ok(state) => Ok(Some((stored.version, state))),
            Err(e) => {
                tracing::warn!(error = %e, "the sync state cannot be read; the next refresh reads from scratch");
                Ok(None)
            }
        }
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
        let reads = Reads {
            until,
            histories: state.campaigns.keys().cloned().collect(),
            leads: vec![],
            details: vec![],
            streams: vec![],
        };
        let client = self.client.with_class(Class::Background);
        let (mut fresh, _) = fetch::read(&client, fetch::Roots::default(), &reads).await;
        Ok(state.differences(&mut fresh))
    }

    /// Replaces the stored sync state (tests corrupt it through here to check `verify`).
    pub async fn store_sync_state(
        &self,
        state: &SyncState,
        expected: Option<u64>,
    ) -> Result<bool, SnapshotError> {
        self.store.save(self.key.as_str(), Board::Sync, pack(state), expected).await
    }

    /// Asks for a refresh of the key through the store (in AWS, the snapshot table's stream
    /// starts the refresh function).
    pub async fn request(&self) -> Result<(), SnapshotError> {
        self.store.request_refresh(self.key.as_str(), now_ms()).await
    }

    /// The latest snapshot of `board`, as served.
    pub async fn latest(&self, board: Board) -> Result<Option<Served>, SnapshotError> {
        match self.store.load(self.key.as_str(), board).await? {
            Some(stored) => Served::decode(board, &stored.bytes),
            None => Ok(None),
        }
    }

    /// Answers one invocation of the refresh function.
    pub async fn handle(&self, invocation: Invocation) -> Result<Report, RefreshError> {
        match invocation {
            Invocation::Ignored => return Ok(Report::Ignored),
            Invocation::Requested { at_ms } if self.fetched_after(at_ms).await? => {
                return Ok(Report::UpToDate);
            }
            Invocation::Requested { .. } | Invocation::Scheduled => {}
        }
        // A request comes from a person waiting on a page; the schedule is nobody's wait.
        let class = match invocation {
            Invocation::Requested { .. } => Class::Interactive,
            _ => Class::Scheduled,
        };
        Ok(match self.run_as(class).await? {
            Outcome::Refreshed(f) => Report::Refreshed(f),
            Outcome::AlreadyRunning => Report::AlreadyRunning,
        })
    }

    /// Whether both snapshots were fetched at or after `at_ms`.
    async fn fetched_after(&self, at_ms: i64) -> Result<bool, SnapshotError> {
        for board in Board::ALL {
            match self.latest(board).await? {
                Some(s) if s.computed_at.timestamp_millis() >= at_ms => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Refreshes both snapshots as scheduled work, unless another refresh of the key is running.
    pub async fn run(&self) -> Result<Outcome, RefreshError> {
        self.run_as(Class::Scheduled).await
    }

    /// The same, its calls taking their place in the budget as `class` (interactive when a
    /// person waits for it).
    pub async fn run_as(&self, class: Class) -> Result<Outcome, RefreshError> {
        let holder = format!("{:016x}", rand::random::<u64>());
        let lease_ms = self.lease.as_millis() as i64;
        if !self.store.acquire_lease(self.key.as_str(), &holder, now_ms(), now_ms() + lease_ms).await? {
            tracing::info!("a refresh of this key is already running");
            return Ok(Outcome::AlreadyRunning);
        }
        // Renewed while this refresh runs; stops when it ends or is cancelled (dropped).
        let renewal = {
            let (store, key, holder) = (self.store.clone(), self.key.as_str().to_owned(), holder.clone());
            let every = self.lease / 3;
            AbortOnDrop(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match store.acquire_lease(&key, &holder, now_ms(), now_ms() + lease_ms).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!("refresh lease lost to another refresh; finishing anyway")
                        }
                        Err(e) => tracing::warn!(error = %e, "could not renew the refresh lease"),
                    }
                }
            }))
        };
        let result = self.refresh_holding_lease(class).await;
        drop(renewal);
        if let Err(e) = self.store.release_lease(self.key.as_str(), &holder).await {
            tracing::warn!(error = %e, "could not release the refresh lease; it will expire");
        }
        let process = self.client.stats();
        match &result {
            Ok(f) => tracing::info!(
                class = class.as_str(),
                calls = f.calls,
                rate_limited = f.rate_limited,
                faults = f.faults,
                duration_ms = f.duration_ms,
                missing = f.missing,
                // Since this process started: what people and machines each spent, and how long
                // a person's request waited at most for the budget.
                calls_interactive = process.sent_by_class[0],
                calls_scheduled = process.sent_by_class[1],
                calls_background = process.sent_by_class[2],
                longest_interactive_wait_ms = process.longest_interactive_wait_ms,
                "refresh stored"
            ),
            Err(e) => tracing::error!(error = %e, "refresh failed"),
        }
        result.map(Outcome::Refreshed)
    }

    async fn refresh_holding_lease(&self, class: Class) -> Result<RefreshFigures, RefreshError> {
        let (started, before) = (Instant::now(), self.client.stats());
        // The bound of every activity read, and the snapshots' time: whole milliseconds, as
        // lemlist's dates are.
        let until = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_else(Utc::now);
        let incremental = self.sync.mode == SyncMode::Incremental;
        let stored = if incremental { self.sync_state().await? } else { None };
        let mode = SyncState::mode(stored.as_ref().map(|(_, s)| s), &self.sync, until);
        // A periodic re-sync is nobody's wait: it takes the lowest class.
        let class = if mode == Mode::Full && stored.is_some() { Class::Background } else { class };
        let client = self.client.with_class(class);
        let roots = fetch::roots(&client).await?;
        let (version, mut state) = match stored {
            Some((version, state)) if mode == Mode::Incremental => (Some(version), state),
            stored => (stored.map(|(version, _)| version), SyncState::default()),
        };
        let reads = match mode {
            Mode::Full => Reads::full(&roots.campaigns, until),
            Mode::Incremental => state.plan(&roots.campaigns, until, &self.sync),
        };
        let (mut data, streams) = fetch::read(&client, roots, &reads).await;
        if incremental {
            state.absorb(mode, &reads, &mut data, streams);
        }
        let campaigns = dashboard::campaigns_dashboard(&data);
        let mailboxes = dashboard::mailboxes_facts(&data);
        drop(data);
        if !campaigns.missing.is_empty() || !mailboxes.missing.is_empty() {
            tracing::warn!(
                campaigns = ?campaigns.missing,
                mailboxes = ?mailboxes.missing,
                "refresh: parts of the dashboards are missing"
            );
        }
        let after = self.client.stats();
        let figures = RefreshFigures {
            // This refresh's own calls: the client is shared with people's requests, which take
            // another class.
            calls: after.sent_by_class[class as usize] - before.sent_by_class[class as usize],
            rate_limited: after.rate_limited - before.rate_limited,
            faults: after.faults - before.faults,
            duration_ms: started.elapsed().as_millis() as u64,
            missing: campaigns.missing.len() + mailboxes.missing.len(),
        };
        tracing::info!(
            mode = ?mode,
            histories = reads.histories.len(),
            details = reads.details.len(),
            streams = reads.streams.len(),
            tracked = state.campaigns.len(),
            "refresh read"
        );
        self.save(Board::Campaigns, Snapshot::fresh(until, &figures, campaigns)).await?;
        self.save(Board::Mailboxes, Snapshot::fresh(until, &figures, mailboxes)).await?;
        if incremental {
            state.last = LastRefresh {
                mode: Some(mode),
                at: Some(until),
                calls: figures.calls,
                duration_ms: figures.duration_ms,
                histories: reads.histories.len(),
                details: reads.details.len(),
            };
            // Only the lease holder writes the state; losing the condition means the lease was
            // lost meanwhile, and the other refresh's state is as good as this one.
            if !self.store_sync_state(&state, version).await? {
                tracing::warn!("the sync state changed under this refresh; keeping the other writer's");
            }
        }
        Ok(figures)
    }

    /// Stores a fresh snapshot, carrying over the actions the previous one recorded since the
    /// fresh data was fetched.
    async fn save<T>(&self, board: Board, fresh: Snapshot<T>) -> Result<(), SnapshotError>
    where
        T: Patchable + Serialize + DeserializeOwned + Clone,
    {
        for _ in 0..SAVE_ATTEMPTS {
            let current = self.store.load(self.key.as_str(), board).await?;
            let mut snapshot = fresh.clone();
            if let Some(previous) = &current {
                match decode::<T>(&previous.bytes) {
                    Ok(previous) => snapshot.carry_patches_from(&previous.patches),
                    Err(e) => tracing::warn!(error = %e, "replacing an unreadable snapshot"),
                }
            }
            let expected = current.map(|c| c.version);
            if self.store.save(self.key.as_str(), board, encode(&snapshot), expected).await? {
                return Ok(());
            }
        }
        Err(SnapshotError::Store(format!("{} snapshot: kept losing to other writers", board.as_str())))
    }

    /// Applies an action that succeeded at lemlist to the stored snapshots at once.
    pub async fn apply(&self, action: Action) -> Result<(), SnapshotError> {
        let patch = Patch { at: Utc::now(), action };
        for board in patch.action.boards() {
            match board {
                Board::Campaigns => self.patch::<dashboard::CampaignRow>(*board, &patch).await?,
                Board::Mailboxes => self.patch::<dashboard::MailboxFacts>(*board, &patch).await?,
                Board::Sync => {}
            }
        }
        Ok(())
    }

    async fn patch<T>(&self, board: Board, patch: &Patch) -> Result<(), SnapshotError>
    where
        T: Patchable + Serialize + DeserializeOwned,
    {
        for _ in 0..SAVE_ATTEMPTS {
            let stored = self.store.load(self.key.as_str(), board).await?;
            let mut snapshot = match &stored {
                Some(stored) => decode::<T>(&stored.bytes)?,
                // Nothing stored yet: the first refresh may have read lemlist before this action;
                // keep it for that refresh to apply.
                None => Snapshot {
                    computed_at: DateTime::<Utc>::UNIX_EPOCH,
                    figures: RefreshFigures::default(),
                    missing: vec![],
                    rows: vec![],
                    patches: vec![],
                    placeholder: true,
                },
            };
            snapshot.patch(patch.clone());
            let expected = stored.map(|s| s.version);
            if self.store.save(self.key.as_str(), board, encode(&snapshot), expected).await? {
                return Ok(());
            }
        }
        Err(SnapshotError::Store(format!("{} snapshot: kept losing to other writers", board.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_records_are_requests_and_anything_else_is_the_schedule() {
        let scheduled = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        assert_eq!(Invocation::of(&scheduled), Invocation::Scheduled);
        assert_eq!(Invocation::of(&json!({})), Invocation::Scheduled);
        let record = |at: &str| {
            json!({"eventSource": "aws:dynamodb", "eventName": "MODIFY",
                   "dynamodb": {"NewImage": {"pk": {"S": "lemlist#0123"}, "sk": {"S": "request"},
                                             "requested_at_ms": {"N": at}}}})
        };
        let stream = json!({"Records": [record("1700000000100"), record("1700000000900"), {"eventSource": "aws:sqs"}]});
        assert_eq!(Invocation::of(&stream), Invocation::Requested { at_ms: 1_700_000_000_900 });
        let snapshot_written = json!({"Records": [{"eventSource": "aws:dynamodb", "eventName": "MODIFY",
            "dynamodb": {"NewImage": {"pk": {"S": "lemlist#0123"}, "sk": {"S": "campaigns"}}}}]});
        assert_eq!(
            Invocation::of(&snapshot_written),
            Invocation::Ignored,
            "a refresh's own writes start nothing"
        );
    }

    #[test]
    fn reports_say_what_happened() {
        let r = serde_json::to_value(Report::Refreshed(RefreshFigures { calls: 42, ..Default::default() }))
            .unwrap();
        assert_eq!((r["outcome"].as_str(), r["calls"].as_u64()), (Some("refreshed"), Some(42)));
        assert_eq!(serde_json::to_value(Report::UpToDate).unwrap(), json!({"outcome": "up_to_date"}));
    }
}
