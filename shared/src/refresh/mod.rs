//! One refresh of a key's dashboards: both computed in one pass (each lemlist resource fetched
//! once) and stored as snapshots, under a lease ([`lease`]) so that at most one refresh per key
//! runs at a time across every invocation. The stages of a refresh are in [`engine`]; what the
//! API reads through the refresher in [`reads`]; the dashboards' writes in [`documents`]; what
//! invokes the refresh function in [`invocation`].

mod documents;
mod engine;
mod hooks;
mod invocation;
mod lease;
mod reads;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::config::SyncConfig;
use crate::health::alerts::Thresholds;
use crate::health::notify::{LogOnly, Notifier};
use crate::lemlist::{LemlistClient, LemlistError};
use crate::limiter::{Class, Clock, SystemClock};
use crate::secret::KeyFingerprint;
use crate::snapshot::{RefreshFigures, SnapshotError, SnapshotStore};
use crate::sync::Progress;

pub use engine::{COUNTS_PENDING, FIRST_PAGE_INTERACTIVE_CALLS};
pub use hooks::{Folding, HookSetup, fold_into};
pub use invocation::{Invocation, Report};
pub use lease::LeaseGuard;
use lease::now_ms;

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// A root of the fetch failed (the campaign list or the team): nothing was stored.
    #[error(transparent)]
    Lemlist(#[from] LemlistError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Delivered events could not be folded: a refresh held the key's lease throughout.
    #[error("a refresh held the key throughout: the events are folded when they come again")]
    Busy,
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
    /// Webhooks, when lemlist can reach lemdash (`LEMDASH_PUBLIC_URL`).
    hooks: Option<HookSetup>,
    /// Why there are none, when there are none.
    hooks_off: &'static str,
    /// What this process's client had sent when its use was last added to the stored budget
    /// ([`Refresher::record_usage`]); shared by clones.
    recorded: Arc<std::sync::Mutex<crate::lemlist::CallStats>>,
    /// Alerts in Slack, when a webhook is configured.
    slack: Option<Arc<crate::health::slack::Slack>>,
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
            hooks: None,
            hooks_off: crate::config::HOOKS_OFF_NO_URL,
            recorded: Arc::default(),
            slack: None,
        }
    }

    /// Where alerts go, and their thresholds.
    pub fn with_alerts(mut self, thresholds: Thresholds, notifier: Arc<dyn Notifier>) -> Self {
        (self.thresholds, self.notifier) = (thresholds, notifier);
        self
    }

    /// Alerts posted to Slack too.
    pub fn with_slack(mut self, slack: crate::health::slack::Slack) -> Self {
        self.slack = Some(Arc::new(slack));
        self
    }

    /// The clock of the data (tests move it a day at a time; the lease keeps real time).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The clock of the data.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Now for the data, in whole milliseconds as lemlist's dates are: what a served dashboard's
    /// age is measured against.
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.clock.now_ms()).unwrap_or_else(Utc::now)
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

    /// Answers one invocation of the refresh function, which must stop taking new work at
    /// `stop` (see [`stop_at`]).
    pub async fn handle(
        &self,
        invocation: Invocation,
        stop: Option<Instant>,
    ) -> Result<Report, RefreshError> {
        match &invocation {
            Invocation::Ignored => return Ok(Report::Ignored),
            Invocation::Delivered(events) => {
                let folding = self.fold_delivered(events, stop).await?;
                return Ok(Report::Folded { events: events.len(), folding });
            }
            Invocation::Requested { at_ms } if self.fetched_after(*at_ms).await? => {
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
        let Some(lease) = LeaseGuard::acquire(self.store.clone(), self.key.as_str(), self.lease).await?
        else {
            tracing::info!("a refresh of this key is already running");
            return Ok(Outcome::AlreadyRunning);
        };
        let result = self.refresh_holding_lease(class, stop).await;
        lease.release().await;
        self.record_usage().await;
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
}
