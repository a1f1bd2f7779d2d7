//! One refresh of a key's dashboards: both computed in one pass (each lemlist resource fetched
//! once) and stored as snapshots, under a lease so that at most one refresh per key runs at a
//! time across every invocation. The lease expires unless renewed, so a refresh that crashed
//! does not block the next one for longer than the lease.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{SyncConfig, SyncMode};
use crate::dashboard::fetch::{HistoryRead, Roots};
use crate::dashboard::{self, Reads, display_name, fetch};
use crate::health::alerts::Thresholds;
use crate::health::notify::{LogOnly, Notifier};
use crate::health::performance::Senders;
use crate::health::{self, HealthLog};
use crate::lemlist::{LemlistClient, LemlistError};
use crate::limiter::{Class, Clock, SystemClock};
use crate::secret::KeyFingerprint;
use crate::snapshot::parts::Base;
use crate::snapshot::{
    Action, Board, Patch, Patchable, RefreshFigures, Served, Snapshot, SnapshotError, SnapshotStore, decode,
    encode,
};
use crate::sync::stored::{self, Stamp};
use crate::sync::{LastRefresh, Mode, Progress, SyncState};

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
    /// A sync from scratch saved its progress before the invocation's deadline and asked for a
    /// continuation.
    Continuing(Progress),
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
    /// The deadline came before the sync from scratch was complete: its progress is saved and a
    /// continuation requested (in AWS, the request starts the next invocation).
    Continuing(Progress),
}

/// How long before an invocation's deadline a refresh stops taking new work: time for the
/// requests in flight (each at most `LEMLIST_TIMEOUT_SECS`) and the checkpoint.
pub const STOP_BEFORE_DEADLINE: Duration = Duration::from_secs(30);

/// Without a deadline, a sync from scratch still checkpoints this often, so that a killed
/// process loses at most this much work.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);

/// When a refresh invoked with `remaining` time must stop taking new work.
pub fn stop_at(remaining: Duration) -> Instant {
    Instant::now() + remaining.saturating_sub(STOP_BEFORE_DEADLINE)
}

/// Where one refresh stands between its steps.
enum Step {
    Done(RefreshFigures),
    Continue(Progress),
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
    checkpoint_every: Duration,
    /// What "now" is for the data: the bound of reads, the day of counts and history.
    clock: Arc<dyn Clock>,
    thresholds: Thresholds,
    notifier: Arc<dyn Notifier>,
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
        Self {
            client,
            store,
            key,
            lease,
            sync: SyncConfig::default(),
            checkpoint_every: CHECKPOINT_EVERY,
            clock: Arc::new(SystemClock::default()),
            thresholds: Thresholds::default(),
            notifier: Arc::new(LogOnly),
        }
    }

    /// Where alerts go, and their thresholds.
    pub fn with_alerts(mut self, thresholds: Thresholds, notifier: Arc<dyn Notifier>) -> Self {
        (self.thresholds, self.notifier) = (thresholds, notifier);
        self
    }

    /// The clock of the data (tests move it a day at a time; the lease keeps real time).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Now for the data, in whole milliseconds as lemlist's dates are: what a served dashboard's
    /// age is measured against.
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.clock.now_ms()).unwrap_or_else(Utc::now)
    }

    /// The key's history and alerts, as stored.
    pub async fn health(&self) -> Result<Option<(Base, HealthLog)>, SnapshotError> {
        health::stored::load(self.store.as_ref(), self.key.as_str()).await
    }

    /// How refreshes read lemlist (incremental by default).
    pub fn with_sync(mut self, sync: SyncConfig) -> Self {
        self.sync = sync;
        self
    }

    /// How often a long sync saves its progress (tests make it short).
    pub fn with_checkpoints(mut self, every: Duration) -> Self {
        self.checkpoint_every = every;
        self
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
    async fn stamp_of_unreadable(&self) -> Result<Stamp, SnapshotError> {
        let head = self.store.load(self.key.as_str(), Board::Sync).await;
        let version = match head {
            Ok(found) => found.map(|s| s.version),
            Err(_) => None,
        };
        Ok(Stamp::replacing(version))
    }

    /// The key's sync state as `GET /api/sync` answers it.
    pub async fn sync_status(&self) -> Result<crate::sync::SyncStatus, SnapshotError> {
        let found = self.sync_state().await?;
        let bytes = found.as_ref().map_or(0, |(stamp, _)| stamp.stored_bytes());
        Ok(SyncState::status(found.as_ref().map(|(_, s)| s), &self.sync, bytes))
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
        match self.store.load(self.key.as_str(), board).await? {
            Some(stored) => Served::decode(board, &stored.bytes),
            None => Ok(None),
        }
    }

    /// Answers one invocation of the refresh function, which must stop taking new work at
    /// `stop` (see [`stop_at`]).
    pub async fn handle(
        &self,
        invocation: Invocation,
        stop: Option<Instant>,
    ) -> Result<Report, RefreshError> {
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
        Ok(match self.run_until(class, stop).await? {
            Outcome::Refreshed(f) => Report::Refreshed(f),
            Outcome::AlreadyRunning => Report::AlreadyRunning,
            Outcome::Continuing(p) => Report::Continuing(p),
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
        self.run_until(class, None).await
    }

    /// The same, stopping at `stop` if a sync from scratch is not complete by then: it saves
    /// its progress, gives the lease up and asks for a continuation.
    pub async fn run_until(&self, class: Class, stop: Option<Instant>) -> Result<Outcome, RefreshError> {
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
        let result = self.refresh_holding_lease(class, stop).await;
        drop(renewal);
        if let Err(e) = self.store.release_lease(self.key.as_str(), &holder).await {
            tracing::warn!(error = %e, "could not release the refresh lease; it will expire");
        }
        let process = self.client.stats();
        match &result {
            Ok(Step::Continue(progress)) => {
                tracing::info!(
                    calls = progress.calls,
                    steps = progress.steps,
                    continuations = progress.continuations,
                    "sync from scratch saved at its deadline; asking for a continuation"
                );
                // Asked once the lease is free, so that the continuation finds it free.
                self.store.request_refresh(self.key.as_str(), now_ms()).await?;
            }
            Ok(Step::Done(f)) => tracing::info!(
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
        result.map(|step| match step {
            Step::Done(f) => Outcome::Refreshed(f),
            Step::Continue(p) => Outcome::Continuing(p),
        })
    }

    async fn refresh_holding_lease(&self, class: Class, stop: Option<Instant>) -> Result<Step, RefreshError> {
        let (started, before) = (Instant::now(), self.client.stats());
        let incremental = self.sync.mode == SyncMode::Incremental;
        let stored = if incremental { self.sync_state().await? } else { None };
        let first_until = self.now();
        let mode = SyncState::mode(stored.as_ref().map(|(_, s)| s), &self.sync, first_until);
        let (mut stamp, mut state) = match stored {
            Some((stamp, state)) if mode == Mode::Incremental => (stamp, state),
            Some((stamp, previous)) => (stamp, SyncState::begin(first_until, Some(&previous))),
            None if incremental => (self.stamp_of_unreadable().await?, SyncState::begin(first_until, None)),
            None => (Stamp::default(), SyncState::begin(first_until, None)),
        };
        // A sync from scratch (the first, a re-sync, each continuation) takes the lowest class
        // whoever asked: it is the costliest read there is, and must not take the key from the
        // team's other tools nor from people's requests. (A person waiting on a cold page gets a
        // 503 with Retry-After while it runs.) `SYNC_MODE=full` keeps the asker's class.
        let carried_on = stamp.version().is_some() && state.progress.is_some() && mode == Mode::Incremental;
        let from_scratch = incremental && (mode == Mode::Full || carried_on);
        let class = if from_scratch { Class::Background } else { class };
        if carried_on && let Some(p) = &mut state.progress {
            p.continuations += 1;
        }
        let client = self.client.with_class(class);
        let calls = |c: &LemlistClient| c.stats().sent_by_class[class as usize];
        let mut counted = calls(&client);
        let roots = fetch::roots(&client).await?;

        // Phase 1, in steps that each end with a checkpoint. In the steady state (no sync from
        // scratch in progress) phase 2's reads go with it, all at once: only a sync from
        // scratch, which may take several invocations, keeps them for the end.
        let steady = state.progress.is_none();
        let (mut until, mut histories) = (first_until, 0);
        let mut together = None;
        let failures = loop {
            let step_stop = match stop {
                Some(stop) if incremental => Some(stop.min(Instant::now() + self.checkpoint_every)),
                _ if incremental && state.progress.is_some() => Some(Instant::now() + self.checkpoint_every),
                _ => None,
            };
            let mut reads = state.plan_activity(&roots.campaigns, until, &self.sync);
            if !incremental {
                // Every history is read whole, and no counts are kept: no feed to read.
                reads.streams.clear();
            }
            histories = histories.max(reads.histories.len().div_ceil(3));
            let rest = (steady && together.is_none()).then(|| state.plan_rest(&roots, until, &self.sync));
            if let Some(rest) = &rest {
                (reads.leads, reads.details, reads.users) =
                    (rest.leads.clone(), rest.details.clone(), rest.users.clone());
            }
            let stepping = step_stop.map_or(client.clone(), |at| client.with_deadline(at));
            let read = fetch::read(&stepping, roots.campaigns.clone(), &reads).await;
            let stopped = read.stopped_by_deadline();
            let fetch::Read { data, histories: parts, streams } = read;
            // A feed read that ended before `until` (a feed far behind, read a span at a time)
            // calls for another step.
            let behind = streams.iter().any(|o| o.result.is_ok() && o.read.until < reads.until);
            let failures = state.absorb_activity(&roots.campaigns, parts, streams);
            state.settle(&self.sync, until);
            // Phase 2 cut by a deadline is read again with the next step.
            if let Some(rest) = rest.filter(|_| !stopped) {
                together = Some((rest, data));
            }
            if let Some(p) = &mut state.progress {
                p.steps += 1;
                p.calls += calls(&client) - counted;
                counted = calls(&client);
            }
            if !stopped && !behind {
                break failures;
            }
            if !stopped {
                // The same bound: the data already read (phase 2 with the first step) is of then.
                continue;
            }
            let remaining = state.estimated_remaining_calls(&roots.campaigns, roots.user_ids.len());
            if let Some(p) = &mut state.progress {
                p.estimated_remaining_calls = remaining;
            }
            stamp = self.checkpoint(&mut state, &stamp).await?;
            if stop.is_some_and(|stop| Instant::now() >= stop) {
                return Ok(Step::Continue(state.progress.clone().unwrap_or_default()));
            }
            until = self.now();
        };

        // Phase 2 (when not read with phase 1), then the dashboards.
        let (rest, mut data) = match together {
            Some(both) => both,
            None => {
                let stop = stop.filter(|_| incremental);
                match self.phase_two(&mut state, &roots, until, stop, &client).await {
                    Some(both) => both,
                    None => {
                        if let Some(p) = &mut state.progress {
                            p.calls += calls(&client) - counted;
                        }
                        self.checkpoint(&mut state, &stamp).await?;
                        return Ok(Step::Continue(state.progress.clone().unwrap_or_default()));
                    }
                }
            }
        };
        state.absorb_rest(&rest, &mut data, &failures);
        let campaigns = dashboard::campaigns_dashboard(&data);
        let mut mailboxes = dashboard::mailboxes_facts(&data);
        let feeds_missing = failures.feeds();
        mailboxes.missing.extend(feeds_missing.iter().map(|f| format!("activity counts: {f}")));
        let senders = Senders::of_team(&data, &mailboxes.rows);
        let names: HashMap<String, String> =
            data.campaigns.iter().map(|c| (c.id.clone(), display_name(c.name.as_deref()))).collect();
        drop(data);
        let (health_base, mut log) = self.health_or_new().await?;
        let assessment = health::assess(
            &mut log,
            &mut mailboxes.rows,
            health::Inputs {
                at: until,
                ledger: incremental.then_some(&state.ledger),
                feeds_complete: feeds_missing.is_empty(),
                senders: &senders,
                campaigns: &campaigns.rows,
                names: &names,
                thresholds: self.thresholds,
            },
        );
        if !campaigns.missing.is_empty() || !mailboxes.missing.is_empty() {
            tracing::warn!(
                campaigns = ?campaigns.missing,
                mailboxes = ?mailboxes.missing,
                "refresh: parts of the dashboards are missing"
            );
        }
        let after = self.client.stats();
        let progress = state.progress.take();
        let figures = RefreshFigures {
            // This refresh's own calls (over every step of a sync from scratch): the client is
            // shared with people's requests, which take another class.
            calls: progress.as_ref().map_or(0, |p| p.calls) + calls(&client) - counted,
            rate_limited: after.rate_limited - before.rate_limited,
            faults: after.faults - before.faults,
            duration_ms: started.elapsed().as_millis() as u64,
            missing: campaigns.missing.len() + mailboxes.missing.len(),
        };
        tracing::info!(
            mode = ?mode,
            histories,
            details = rest.details.len(),
            tracked = state.campaigns.len(),
            steps = progress.as_ref().map_or(1, |p| p.steps),
            continuations = progress.as_ref().map_or(0, |p| p.continuations),
            "refresh read"
        );
        self.save(Board::Campaigns, Snapshot::fresh(until, &figures, campaigns)).await?;
        let mut snapshot = Snapshot::fresh(until, &figures, mailboxes);
        snapshot.unattributed = assessment.unattributed;
        self.save(Board::Mailboxes, snapshot).await?;
        self.deliver(&assessment.changes, &mut log).await;
        if !health::stored::save(self.store.as_ref(), self.key.as_str(), &log, &health_base).await? {
            tracing::warn!("the history and alerts changed under this refresh; keeping the other writer's");
        }
        if incremental {
            state.last = LastRefresh {
                mode: Some(if progress.is_some() { Mode::Full } else { mode }),
                at: Some(until),
                calls: figures.calls,
                duration_ms: figures.duration_ms,
                histories,
                details: rest.details.len(),
            };
            self.checkpoint(&mut state, &stamp).await?;
        }
        Ok(Step::Done(figures))
    }

    /// The stored history and alerts, or a new log when there are none (or they cannot be read).
    async fn health_or_new(&self) -> Result<(Base, HealthLog), SnapshotError> {
        match self.health().await {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Ok((Base::default(), HealthLog::default())),
            Err(SnapshotError::Corrupt(e)) => {
                tracing::warn!(error = %e, "the stored history cannot be read; starting it again");
                let version = self.store.load(self.key.as_str(), Board::Health).await?.map(|s| s.version);
                Ok((Base { version, manifest: None }, HealthLog::default()))
            }
            Err(e) => Err(e),
        }
    }

    /// Logs what the alerts did, and publishes every open alert not delivered yet (a failed
    /// publish is tried again after the next refresh).
    async fn deliver(&self, changes: &health::alerts::Changes, log: &mut HealthLog) {
        for a in &changes.raised {
            let c = &a.condition;
            tracing::warn!(alert = %a.id, kind = ?c.kind, subject = %c.subject, figure = ?c.figure, threshold = ?c.threshold, message = %c.message, "alert raised");
        }
        for a in &changes.cleared {
            tracing::info!(alert = %a.id, subject = %a.condition.subject, "alert cleared");
        }
        for alert in log.alerts.undelivered() {
            match self.notifier.publish(&alert).await {
                Ok(()) => log.alerts.mark_delivered(&alert.id),
                Err(e) => {
                    tracing::warn!(alert = %alert.id, error = %e, "alert not delivered; tried again after the next refresh")
                }
            }
        }
    }

    /// Phase 2 of a sync from scratch: details first (kept in the state as they come, so that a
    /// continuation reads only the others), then leads and users (read again in full if the
    /// deadline cuts them). `None` when `stop` came first.
    async fn phase_two(
        &self,
        state: &mut SyncState,
        roots: &Roots,
        until: DateTime<Utc>,
        stop: Option<Instant>,
        client: &LemlistClient,
    ) -> Option<(Reads, dashboard::TeamData)> {
        let rest = state.plan_rest(roots, until, &self.sync);
        let bounded = stop.map_or(client.clone(), |stop| client.with_deadline(stop));
        let details = Reads { until, details: rest.details.clone(), ..Reads::default() };
        let first = fetch::read(&bounded, roots.campaigns.clone(), &details).await;
        state.cache_details(until, &first.data);
        if first.stopped_by_deadline() {
            return None;
        }
        let others =
            Reads { until, leads: rest.leads.clone(), users: rest.users.clone(), ..Reads::default() };
        let mut second = fetch::read(&bounded, roots.campaigns.clone(), &others).await;
        if second.stopped_by_deadline() {
            return None;
        }
        second.data.details = first.data.details;
        Some((rest, second.data))
    }

    /// Saves the sync state; returns what it was saved as. Only the lease holder writes it;
    /// losing the condition means the lease was lost meanwhile, and the other writer's state
    /// stands.
    async fn checkpoint(&self, state: &mut SyncState, stamp: &Stamp) -> Result<Stamp, SnapshotError> {
        match stored::save(self.store.as_ref(), self.key.as_str(), state, stamp, false).await? {
            Some(stamp) => Ok(stamp),
            None => {
                tracing::warn!("the sync state changed under this refresh; keeping the other writer's");
                Ok(self.sync_state().await?.map(|(stamp, _)| stamp).unwrap_or_default())
            }
        }
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
        let patch = Patch { at: self.now(), action };
        for board in patch.action.boards() {
            match board {
                Board::Campaigns => self.patch::<dashboard::CampaignRow>(*board, &patch).await?,
                Board::Mailboxes => self.patch::<dashboard::MailboxFacts>(*board, &patch).await?,
                Board::Sync | Board::Health => {}
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
                    unattributed: None,
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
