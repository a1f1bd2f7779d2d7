//! One refresh, in named stages:
//! 1. [`Refresher::start`]: the stored state, the mode, the class, the roots;
//! 2. [`Refresher::read_activity`]: the activity (feeds and histories), in steps that each end
//!    with a checkpoint, with the rest read together in the steady state;
//! 3. [`Refresher::phase_two`]: a sync from scratch's rest (details, leads, users);
//! 4. [`Refresher::publish`]: the fold into the dashboards and health, then the stores.
//!
//! The plan and the fold themselves are pure ([`crate::sync`], [`crate::dashboard`],
//! [`crate::health`]); this module reads and writes.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{RefreshError, Refresher, Step};
use crate::config::SyncMode;
use crate::dashboard::fetch::{Roots, TeamData};
use crate::dashboard::{self, Dashboard, MailboxFacts, Reads, display_name, fetch};
use crate::health::performance::Senders;
use crate::health::{self, HealthLog};
use crate::lemlist::{CallStats, LemlistClient};
use crate::limiter::Class;
use crate::snapshot::parts::Base;
use crate::snapshot::{Board, Item, RefreshFigures, Snapshot, SnapshotError};
use crate::sync::stored::{self, Stamp};
use crate::sync::{Failures, LastRefresh, Mode, Progress, SyncState};

/// The calls of a first sync that a person's cold page started which take the interactive class
/// (the whole budget, ahead of machines): about 12 s of the key's budget at most, enough for
/// a team like M's first page; the rest takes the background class.
pub const FIRST_PAGE_INTERACTIVE_CALLS: u64 = 120;

/// The calls `client`'s process sent at `classes`.
fn sent_at(client: &LemlistClient, classes: &[Class]) -> u64 {
    let sent = client.stats().sent_by_class;
    classes.iter().map(|c| sent[*c as usize]).sum()
}

/// What a mailbox row and the mailboxes dashboard say while a first sync reads the daily counts.
pub const COUNTS_PENDING: &str =
    "performance: being computed (the first sync is reading the last 30 days' activity)";

/// One refresh between its stages.
struct Run {
    /// The classes the run's calls take (a first page's: interactive, then background).
    classes: Vec<Class>,
    /// The refresher's client at those classes.
    client: LemlistClient,
    incremental: bool,
    mode: Mode,
    stamp: Stamp,
    state: SyncState,
    roots: Roots,
    started: Instant,
    before: CallStats,
    /// This class's calls already added to the progress.
    counted: u64,
    /// The bound of the reads.
    until: DateTime<Utc>,
    /// Campaigns whose history a step read (at most).
    histories: usize,
    /// The webhook misses the state had counted before this refresh's reads.
    misses_before: u64,
    /// Phase 2 reads every running campaign's leads and details, and every user: there are no
    /// webhooks to mark what changed, or a person asked.
    read_all: bool,
}

impl Run {
    /// Carries on at `class`, the calls so far counted.
    fn reclass(&mut self, refresher: &Refresher, class: Class) {
        self.count_calls();
        self.classes = vec![class];
        self.client = refresher.client.with_class(class);
        self.counted = self.calls();
    }

    fn calls(&self) -> u64 {
        sent_at(&self.client, &self.classes)
    }

    /// Adds the calls since the last count to a sync from scratch's progress, and what is left
    /// of a first page's interactive calls.
    fn count_calls(&mut self) {
        let now = self.calls();
        if let Some(p) = &mut self.state.progress {
            p.calls += now - self.counted;
            self.counted = now;
            if let Some(left) = self.client.calls_left_at_class() {
                p.first_page_calls_left = Some(left);
            }
        }
    }
}

/// What both dashboards and health are computed from, once the rest is folded into the state.
struct Boards {
    campaigns: Dashboard<dashboard::CampaignRow>,
    mailboxes: Dashboard<MailboxFacts>,
    senders: Senders,
    /// Every campaign's name, by id.
    names: HashMap<String, String>,
}

impl Boards {
    /// Phase 2 into the state, then both dashboards from the data; the feeds that could not
    /// be read are the mailboxes' missing activity counts.
    fn fold(run: &mut Run, failures: &Failures, rest: &Reads, mut data: TeamData) -> Self {
        run.state.absorb_rest(rest, &mut data, failures, &run.roots.user_ids);
        let campaigns = dashboard::campaigns_dashboard(&data);
        let mut mailboxes = dashboard::mailboxes_facts(&data);
        mailboxes.missing.extend(failures.feeds().iter().map(|f| format!("activity counts: {f}")));
        let senders = Senders::of_team(&data, &mailboxes.rows);
        let names = data.campaigns.iter().map(|c| (c.id.clone(), display_name(c.name.as_deref()))).collect();
        Self { campaigns, mailboxes, senders, names }
    }
}

/// What the activity steps leave: what could not be read, and the rest when it was read with
/// them (the steady state).
struct Activity {
    failures: Failures,
    together: Option<(Reads, TeamData)>,
}

/// A stage's outcome: the next stage's input, or a sync from scratch saved at its deadline.
enum Stage<T> {
    Next(T),
    Continue(Progress),
}

/// What one activity step read.
struct StepRead {
    failures: Failures,
    /// A deadline cut it.
    stopped: bool,
    /// A feed read ended before the bound (far behind): another step follows.
    behind: bool,
    together: Option<(Reads, TeamData)>,
}

impl Refresher {
    pub(super) async fn refresh_holding_lease(
        &self,
        class: Class,
        stop: Option<Instant>,
    ) -> Result<Step, RefreshError> {
        let mut run = self.start(class).await?;
        loop {
            let Activity { failures, together } = match self.read_activity(&mut run, stop).await? {
                Stage::Next(activity) => activity,
                Stage::Continue(progress) => return Ok(Step::Continue(progress)),
            };
            let (rest, data) = match together {
                Some(both) => both,
                None => match self.phase_two(&mut run, stop).await? {
                    Stage::Next(both) => both,
                    Stage::Continue(progress) => return Ok(Step::Continue(progress)),
                },
            };
            if !run.state.dashboards_pending() {
                return Ok(Step::Done(self.publish(run, failures, rest, data).await?));
            }
            self.publish_first(&mut run, failures, rest, data).await?;
            // The daily counts follow, at the lowest class: nobody waits for them. Their reads
            // keep the run's bound, which the roots were read at: the dashboards published at
            // the end are as of then, and an action since is applied on top of them.
            run.reclass(self, Class::Background);
        }
    }

    /// The stored state, how this refresh reads (from scratch or not) and at which class, and
    /// the roots.
    async fn start(&self, class: Class) -> Result<Run, RefreshError> {
        let (started, before) = (Instant::now(), self.client.stats());
        let incremental = self.sync.mode == SyncMode::Incremental;
        let stored = if incremental { self.sync_state().await? } else { None };
        let until = self.now();
        let mode = SyncState::mode(stored.as_ref().map(|(_, s)| s), &self.sync, until);
        let (stamp, mut state) = match stored {
            Some((stamp, state)) if mode == Mode::Incremental => (stamp, state),
            Some((stamp, previous)) => (stamp, SyncState::begin(until, Some(&previous))),
            None if incremental => (self.stamp_of_unreadable().await?, SyncState::begin(until, None)),
            None => (Stamp::default(), SyncState::begin(until, None)),
        };
        // A sync from scratch (the first, a re-sync, each continuation) takes the lowest class
        // whoever asked: it is the costliest read there is, and must not take the key from the
        // team's other tools nor from people's requests. `SYNC_MODE=full` keeps the asker's
        // class. The exception: a first sync's reads before its dashboards are published are
        // what a cold page waits for. When a person asked, the first
        // FIRST_PAGE_INTERACTIVE_CALLS of them (over every invocation) take the interactive
        // class, the whole budget, and the rest the background class, so that the team's other
        // tools get their reserve back after a bounded time.
        let carried_on = stamp.version().is_some() && state.progress.is_some() && mode == Mode::Incremental;
        let from_scratch = incremental && (mode == Mode::Full || carried_on);
        let for_a_page = class == Class::Interactive && state.dashboards_pending();
        let page_calls = state.progress.as_ref().and_then(|p| p.first_page_calls_left);
        let (client, classes) = match (from_scratch, for_a_page) {
            (true, true) => (
                self.client.with_class_for(
                    Class::Interactive,
                    page_calls.unwrap_or(FIRST_PAGE_INTERACTIVE_CALLS),
                    Class::Background,
                ),
                vec![Class::Interactive, Class::Background],
            ),
            (true, false) => (self.client.with_class(Class::Background), vec![Class::Background]),
            (false, _) => (self.client.with_class(class), vec![class]),
        };
        if carried_on && let Some(p) = &mut state.progress {
            p.continuations += 1;
        }
        let counted = sent_at(&client, &classes);
        let roots = fetch::roots(&client).await?;
        if incremental && let Err(e) = self.reconcile_hooks(&client, &roots.team_id, &mut state).await {
            tracing::warn!(error = %e, "could not reconcile the webhooks; polling as before");
        }
        let misses_before = state.hooks.misses.values().sum();
        let read_all = self.hooks.is_none() || state.hooks.kept.is_empty() || class == Class::Interactive;
        Ok(Run {
            misses_before,
            read_all,
            classes,
            client,
            incremental,
            mode,
            stamp,
            state,
            roots,
            started,
            before,
            counted,
            until,
            histories: 0,
        })
    }

    /// Phase 1, in steps that each end with a checkpoint. In the steady state (no sync from
    /// scratch in progress) phase 2's reads go with it, all at once: only a sync from scratch,
    /// which may take several invocations, keeps them for the end.
    async fn read_activity(
        &self,
        run: &mut Run,
        stop: Option<Instant>,
    ) -> Result<Stage<Activity>, RefreshError> {
        let steady = run.state.progress.is_none();
        let mut together = None;
        loop {
            let with_rest = steady && together.is_none();
            let step = self.activity_step(run, stop, with_rest).await;
            together = together.or(step.together);
            run.count_calls();
            if let Some(p) = &mut run.state.progress {
                p.steps += 1;
            }
            if !step.stopped && !step.behind {
                return Ok(Stage::Next(Activity { failures: step.failures, together }));
            }
            if !step.stopped {
                // The same bound: the data already read (phase 2 with the first step) is of then.
                continue;
            }
            let remaining =
                run.state.estimated_remaining_calls(&run.roots.campaigns, run.roots.user_ids.len());
            if let Some(p) = &mut run.state.progress {
                p.estimated_remaining_calls = remaining;
            }
            run.stamp = self.checkpoint(&mut run.state, &run.stamp).await?;
            if stop.is_some_and(|stop| Instant::now() >= stop) {
                return Ok(Stage::Continue(run.state.progress.clone().unwrap_or_default()));
            }
            run.until = self.now();
        }
    }

    /// One step of phase 1 (with the rest when `with_rest`), folded into the state.
    async fn activity_step(&self, run: &mut Run, stop: Option<Instant>, with_rest: bool) -> StepRead {
        let (incremental, until) = (run.incremental, run.until);
        let step_stop = match stop {
            Some(stop) if incremental => Some(stop.min(Instant::now() + self.checkpoint_every)),
            _ if incremental && run.state.progress.is_some() => Some(Instant::now() + self.checkpoint_every),
            _ => None,
        };
        let mut reads = run.state.plan_activity(&run.roots.campaigns, until, &self.sync);
        if !incremental {
            // Every history is read whole, and no counts are kept: no feed to read.
            reads.streams.clear();
            reads.counts.clear();
        }
        run.histories = run.histories.max(reads.histories.len().div_ceil(3));
        let rest = with_rest.then(|| run.state.plan_rest(&run.roots, until, &self.sync, run.read_all));
        if let Some(rest) = &rest {
            (reads.leads, reads.details, reads.users) =
                (rest.leads.clone(), rest.details.clone(), rest.users.clone());
        }
        let stepping = step_stop.map_or(run.client.clone(), |at| run.client.with_deadline(at));
        let read = fetch::read(&stepping, run.roots.campaigns.clone(), &reads).await;
        let stopped = read.stopped_by_deadline();
        let fetch::Read { data, histories: parts, counts, streams } = read;
        let behind = streams.iter().any(|o| o.result.is_ok() && o.read.until < reads.until);
        let failures = run.state.absorb_activity(&run.roots.campaigns, parts, counts, streams);
        // A feed whose per-campaign reads ended reads on from the sync's start, team-wide.
        let behind = behind || failures.caught_up;
        run.state.settle(&self.sync, until);
        // Phase 2 cut by a deadline is read again with the next step.
        let together = rest.filter(|_| !stopped).map(|rest| (rest, data));
        StepRead { failures, stopped, behind, together }
    }

    /// Phase 2 of a sync from scratch: details first, then leads and users, each kept in the
    /// state as it comes, so that a continuation reads only the others. Saved and continued when `stop` comes first.
    async fn phase_two(
        &self,
        run: &mut Run,
        stop: Option<Instant>,
    ) -> Result<Stage<(Reads, TeamData)>, RefreshError> {
        let until = run.until;
        let stop = stop.filter(|_| run.incremental);
        let rest = run.state.plan_rest(&run.roots, until, &self.sync, run.read_all);
        let bounded = stop.map_or(run.client.clone(), |stop| run.client.with_deadline(stop));
        let details = Reads { until, details: rest.details.clone(), ..Reads::default() };
        let first = fetch::read(&bounded, run.roots.campaigns.clone(), &details).await;
        run.state.cache_details(until, &first.data);
        let mut second = None;
        if !first.stopped_by_deadline() {
            let others =
                Reads { until, leads: rest.leads.clone(), users: rest.users.clone(), ..Reads::default() };
            let read = fetch::read(&bounded, run.roots.campaigns.clone(), &others).await;
            run.state.cache_leads_and_users(until, &read.data);
            second = Some(read).filter(|second| !second.stopped_by_deadline());
        }
        let Some(mut second) = second else {
            run.count_calls();
            self.checkpoint(&mut run.state, &run.stamp).await?;
            return Ok(Stage::Continue(run.state.progress.clone().unwrap_or_default()));
        };
        second.data.details = first.data.details;
        Ok(Stage::Next((rest, second.data)))
    }

    /// A first sync's dashboards, ahead of its daily counts: both dashboards as of the sync's
    /// start (the oldest bound of its histories), the mailboxes' performance marked as being
    /// computed, never as zeros. No history point and no alert: they wait for the counts.
    async fn publish_first(
        &self,
        run: &mut Run,
        failures: Failures,
        rest: Reads,
        data: TeamData,
    ) -> Result<(), RefreshError> {
        let as_of = run.state.progress.as_ref().and_then(|p| p.started).unwrap_or(run.until).min(run.until);
        let Boards { campaigns, mut mailboxes, senders, .. } = Boards::fold(run, &failures, &rest, data);
        run.state.senders = Some(senders);
        for row in &mut mailboxes.rows {
            row.missing.push(COUNTS_PENDING.to_owned());
        }
        mailboxes.missing.push(COUNTS_PENDING.to_owned());
        let figures = self.figures(run, run.state.progress.as_ref(), &campaigns, &mailboxes);
        self.save(Board::Campaigns, Snapshot::fresh(as_of, &figures, campaigns)).await?;
        self.save(Board::Mailboxes, Snapshot::fresh(as_of, &figures, mailboxes)).await?;
        tracing::info!(
            calls = figures.calls,
            duration_ms = figures.duration_ms,
            "first dashboards stored; the daily counts follow"
        );
        run.state.dashboards_published(as_of, &run.roots.campaigns);
        run.count_calls();
        run.stamp = self.checkpoint(&mut run.state, &run.stamp).await?;
        Ok(())
    }

    /// The fold: both dashboards and health from what was read; then the stores: the
    /// dashboards, the history and alerts (with their delivery), the sync state.
    async fn publish(
        &self,
        mut run: Run,
        failures: Failures,
        rest: Reads,
        data: TeamData,
    ) -> Result<RefreshFigures, RefreshError> {
        let until = run.until;
        let mut boards = Boards::fold(&mut run, &failures, &rest, data);
        let (health_base, mut log) = self.health_or_new().await?;
        let assessment = self.assess(&run, &failures, &mut boards, &mut log);
        let Boards { campaigns, mailboxes, senders, .. } = boards;
        run.state.senders = Some(senders);
        let progress = run.state.progress.take();
        let figures = self.figures(&run, progress.as_ref(), &campaigns, &mailboxes);
        tracing::info!(
            mode = ?run.mode,
            histories = run.histories,
            details = rest.details.len(),
            tracked = run.state.campaigns.len(),
            steps = progress.as_ref().map_or(1, |p| p.steps),
            continuations = progress.as_ref().map_or(0, |p| p.continuations),
            "refresh read"
        );
        let misses = run.state.hooks.misses.values().sum::<u64>().saturating_sub(run.misses_before);
        if misses > 0 {
            // The alarm's metric filter matches this line and sums `misses`.
            tracing::warn!(misses, "activities no webhook delivered");
        }
        self.save(Board::Campaigns, Snapshot::fresh(until, &figures, campaigns)).await?;
        let mut snapshot = Snapshot::fresh(until, &figures, mailboxes);
        snapshot.unattributed = assessment.unattributed;
        self.save(Board::Mailboxes, snapshot).await?;
        self.deliver(&assessment.changes, &mut log).await;
        if !health::stored::save(self.store.as_ref(), self.key.as_str(), &log, &health_base).await? {
            tracing::warn!("the history and alerts changed under this refresh; keeping the other writer's");
        }
        if run.incremental {
            let mode = if progress.is_some() { Mode::Full } else { run.mode };
            run.state.last = LastRefresh {
                mode: Some(mode),
                at: Some(until),
                calls: figures.calls,
                duration_ms: figures.duration_ms,
                histories: run.histories,
                details: rest.details.len(),
            };
            self.checkpoint(&mut run.state, &run.stamp).await?;
        }
        Ok(figures)
    }

    /// Today's health: the mailboxes' performance, the history's points and the alerts.
    fn assess(
        &self,
        run: &Run,
        failures: &Failures,
        boards: &mut Boards,
        log: &mut HealthLog,
    ) -> health::Assessment {
        health::assess(
            log,
            &mut boards.mailboxes.rows,
            health::Inputs {
                at: run.until,
                ledger: run.incremental.then_some(&run.state.ledger),
                feeds_complete: failures.feeds().is_empty(),
                senders: &boards.senders,
                campaigns: &boards.campaigns.rows,
                names: &boards.names,
                thresholds: self.thresholds,
            },
        )
    }

    /// This refresh's own figures (over every step of a sync from scratch: the client is shared
    /// with people's requests, which take another class), and the missing parts logged.
    fn figures(
        &self,
        run: &Run,
        progress: Option<&Progress>,
        campaigns: &Dashboard<dashboard::CampaignRow>,
        mailboxes: &Dashboard<MailboxFacts>,
    ) -> RefreshFigures {
        if !campaigns.missing.is_empty() || !mailboxes.missing.is_empty() {
            tracing::warn!(
                campaigns = ?campaigns.missing,
                mailboxes = ?mailboxes.missing,
                "refresh: parts of the dashboards are missing"
            );
        }
        let after = self.client.stats();
        RefreshFigures {
            calls: progress.map_or(0, |p| p.calls) + run.calls() - run.counted,
            rate_limited: after.rate_limited - run.before.rate_limited,
            faults: after.faults - run.before.faults,
            duration_ms: run.started.elapsed().as_millis() as u64,
            missing: campaigns.missing.len() + mailboxes.missing.len(),
        }
    }

    /// The stored history and alerts, or a new log when there are none (or they cannot be read).
    pub(super) async fn health_or_new(&self) -> Result<(Base, HealthLog), SnapshotError> {
        match self.health().await {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Ok((Base::default(), HealthLog::default())),
            Err(SnapshotError::Corrupt(e)) => {
                tracing::warn!(error = %e, "the stored history cannot be read; starting it again");
                let version = self.store.load(self.key.as_str(), Item::Health).await?.map(|s| s.version);
                Ok((Base { version, manifest: None }, HealthLog::default()))
            }
            Err(e) => Err(e),
        }
    }

    /// Logs what the alerts did, and publishes every open alert not delivered yet (a failed
    /// publish is tried again after the next refresh).
    pub(super) async fn deliver(&self, changes: &health::alerts::Changes, log: &mut HealthLog) {
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
        if let Some(slack) = &self.slack {
            slack.deliver(&mut log.alerts).await;
        }
    }

    /// Saves the sync state; returns what it was saved as. Only the lease holder writes it;
    /// losing the condition means the lease was lost meanwhile, and the other writer's state
    /// stands.
    pub(super) async fn checkpoint(
        &self,
        state: &mut SyncState,
        stamp: &Stamp,
    ) -> Result<Stamp, SnapshotError> {
        match stored::save(self.store.as_ref(), self.key.as_str(), state, stamp, false).await? {
            Some(stamp) => Ok(stamp),
            None => {
                tracing::warn!("the sync state changed under this refresh; keeping the other writer's");
                Ok(self.sync_state().await?.map(|(stamp, _)| stamp).unwrap_or_default())
            }
        }
    }
}
