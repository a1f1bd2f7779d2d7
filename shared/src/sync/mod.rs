//! The incremental sync: what a refresh reads when it already knows the past.
//!
//! A key's [`SyncState`] holds, for every campaign whose history has been read (a *tracked*
//! campaign), the distinct leads each activity stream has shown, complete up to that stream's
//! watermark; and the campaign details last read, with when. A refresh reads in two phases:
//! 1. Activity: each feed once for the whole team (the three streams, and `emailsBounced` for
//!    the mailboxes' performance), from its watermark less an overlap up to the refresh's start
//!    (`maxDate`, so that paging sees a fixed set), folded into the sets and the daily counts
//!    ([`crate::activity::ledger`]; the overlap catches activities lemlist shows after their
//!    timestamp; counting distinct leads, and activity ids already counted, makes a re-read
//!    harmless); and the history, per campaign, of every running campaign
//!    that is not tracked yet. A history may stop at a deadline: it is kept as a [`Partial`]
//!    (pages read, leads seen, its own bound) and resumes at the next page later, the streams
//!    folding into it meanwhile.
//! 2. The rest: every running campaign's leads and details (lead states and senders change
//!    without any activity), the details of the other campaigns on a rolling schedule (at once
//!    when a campaign is new or changed status), and the users. In the steady state it is read
//!    together with phase 1; a sync from scratch reads it once every history is complete (or
//!    failed for a reason other than time).
//!
//! A sync from scratch ([`Mode::Full`]: the first of a key, and a periodic re-sync against
//! drift) starts from [`SyncState::begin`]: nothing tracked, so phase 1 reads every running
//! campaign's history, over as many steps and invocations as it takes.
//!
//! Everything here is pure: the refresh ([`crate::refresh`]) reads and stores.

mod due;
pub mod stored;

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::activity::ledger::{self, Ledger};
use crate::activity::{Feed, Seen, Stream};
use crate::config::{SyncConfig, SyncMode};
use crate::dashboard::fetch::{
    FeedOutcome, FeedRead, Fetched, HistoryPart, HistoryRead, Missing, Reads, StreamReads, TeamData,
};
use crate::lemlist::{CampaignDetail, CampaignSummary, LemlistError, User};

pub use due::{CachedLeads, CachedUser, MARKED_MIN_AGE_SECS, Mark, Marks};

/// How a refresh reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Everything from scratch.
    Full,
    /// What can have changed since the last refresh.
    Incremental,
}

/// Something kept per stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerStream<T> {
    pub sent: T,
    pub opened: T,
    pub replied: T,
}

impl<T> PerStream<T> {
    pub fn get(&self, stream: Stream) -> &T {
        match stream {
            Stream::Sent => &self.sent,
            Stream::Opened => &self.opened,
            Stream::Replied => &self.replied,
        }
    }

    pub fn get_mut(&mut self, stream: Stream) -> &mut T {
        match stream {
            Stream::Sent => &mut self.sent,
            Stream::Opened => &mut self.opened,
            Stream::Replied => &mut self.replied,
        }
    }
}

/// The distinct leads of a tracked campaign, per stream.
pub type Tracked = PerStream<Seen>;

/// A team-wide feed read that stopped before its end (a deadline, a failure): what it read is
/// counted, and the next read carries on at `next_page` with the same bounds. lemlist pages
/// newest first by offset under a fixed `maxDate`: a row arriving meanwhile inside the bounds can
/// only push older rows to later pages, so a row may be read twice (and counted once), never
/// skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedResume {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub next_page: usize,
    /// The oldest row read so far: how far back from `until` the pages have come.
    pub oldest: Option<DateTime<Utc>>,
}

impl FeedResume {
    /// About how many pages are left: as many as it took per unit of time so far, over what is
    /// left back to `since`; one when nothing is known.
    pub fn pages_left(&self) -> u64 {
        let Some(oldest) = self.oldest.filter(|o| *o < self.until && self.next_page > 0) else { return 1 };
        let (done, left) =
            ((self.until - oldest).num_seconds().max(1), (oldest - self.since).num_seconds().max(0));
        ((self.next_page as i64 * left).div_euclid(done) + 1) as u64
    }
}

/// One stream of a history being read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialStream {
    /// The first page not read yet.
    pub next_page: usize,
    pub seen: Seen,
    pub complete: bool,
}

/// A history read in part: it resumes with the same bound, at the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    pub until: DateTime<Utc>,
    pub streams: PerStream<PartialStream>,
}

/// Campaign details as last read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedDetail {
    pub detail: CampaignDetail,
    pub read_at: DateTime<Utc>,
    /// The campaign's status in the list when they were read: a change means read them again.
    pub status: Option<String>,
}

/// What the last published refresh did, for `GET /api/sync` and the logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRefresh {
    pub mode: Option<Mode>,
    pub at: Option<DateTime<Utc>>,
    /// Requests sent to lemlist, retries included (over every step of a sync from scratch).
    pub calls: u64,
    pub duration_ms: u64,
    /// Campaigns whose history was read (in part or whole) by the last step.
    pub histories: usize,
    /// Campaign details read.
    pub details: usize,
}

/// A sync from scratch in progress: it may take several steps and invocations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub started: Option<DateTime<Utc>>,
    /// Requests sent so far, over every step.
    pub calls: u64,
    /// Steps so far (each ends with a checkpoint).
    pub steps: u32,
    /// Invocations that carried on where the previous one stopped.
    pub continuations: u32,
    /// History pages read, and history streams read to the end: for the estimate.
    pub pages: u64,
    pub streams_done: u64,
    /// At the last checkpoint: about how many calls are left.
    #[serde(default)]
    pub estimated_remaining_calls: u64,
    /// A first sync (no daily counts to carry on from) publishes the dashboards as soon as the
    /// histories and the rest are read, and reads the last 30 days' feeds after: `None` for a
    /// re-sync, which reads its feeds with the histories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboards_first: Option<DashboardsFirst>,
    /// A first sync's daily counts start here (the first of the 30 days): its histories count
    /// their rows since. `None` for a re-sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts_since: Option<DateTime<Utc>>,
    /// The feeds whose 30 days a first sync reads per campaign, for the campaigns whose history
    /// it does not read (fewer calls than the team-wide feed when the histories hold most of
    /// the month), with the campaigns read so far.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts_by_campaign: BTreeMap<Feed, std::collections::BTreeSet<String>>,
    /// What is left of the interactive calls of a first page a person waits for, across the
    /// invocations that carry it on (`None`: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_page_calls_left: Option<u64>,
}

/// Where a first sync is with the dashboards it publishes before the daily counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DashboardsFirst {
    /// Histories and the rest first; no feed is read yet.
    Pending,
    /// Published, as of `at`; the feeds (the daily counts) follow.
    Published { at: DateTime<Utc> },
}

/// What `GET /api/sync` answers: the key's sync state without its sets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncStatus {
    /// `incremental` or `full` (`SYNC_MODE`).
    pub mode: &'static str,
    /// `none` before the first refresh, `first_sync` while a sync from scratch has not
    /// published, `steady` after.
    pub phase: &'static str,
    /// Per activity type: every activity up to this instant is counted.
    pub watermarks: BTreeMap<&'static str, DateTime<Utc>>,
    pub tracked_campaigns: usize,
    pub histories_in_progress: usize,
    pub cached_details: usize,
    /// The bound of the last sync from scratch.
    pub full_at: Option<DateTime<Utc>>,
    /// The sync from scratch in progress, if any.
    pub first_sync: Option<Progress>,
    pub last_refresh: LastRefresh,
    /// The stored state's compressed size: the parts its head names.
    pub state_bytes: usize,
    /// The daily counts behind the mailboxes' performance.
    pub counts: CountsStatus,
    /// lemlist's webhooks: on or off (and why), what they delivered and missed.
    pub hooks: crate::hooks::HooksView,
}

/// What the daily counts hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CountsStatus {
    /// Campaign and sender pairs with activity in the kept days.
    pub sources: usize,
    /// Days with activity, oldest first.
    pub first_day: Option<chrono::NaiveDate>,
    pub last_day: Option<chrono::NaiveDate>,
    /// Ids kept to count an activity read again only once.
    pub overlap_ids: usize,
    /// Activities without a readable date, counted nowhere.
    pub undated: u64,
}

/// Rows per page of `GET /activities`.
const PAGE_ROWS: u64 = 100;

/// The longest span one feed read covers, in hours: the first sync's 30 days at once.
pub const MAX_FEED_SPAN_HOURS: u32 = 31 * 24;

/// One key's sync state. Stored compressed in the snapshot table; the key itself never is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    /// Per feed: every activity up to this instant is in the sets of every tracked campaign
    /// (for the dashboards' streams) and in the daily counts.
    pub watermarks: BTreeMap<Feed, DateTime<Utc>>,
    /// Daily counts of every feed, by campaign and sender: the mailboxes' performance.
    #[serde(default)]
    pub ledger: Ledger,
    /// Per feed, the span (hours) its next read may cover when far behind: 30 days and more
    /// since reads resume ([`FeedResume`]). States of an earlier version kept halved spans here;
    /// each read to its end doubles the span back.
    #[serde(default)]
    pub feed_spans: BTreeMap<Feed, u32>,
    /// Feed reads that stopped before their end, by feed: the next read carries on there.
    #[serde(default)]
    pub feed_resume: BTreeMap<Feed, FeedResume>,
    /// Tracked campaigns, by id.
    pub campaigns: BTreeMap<String, Tracked>,
    /// Histories read in part, by campaign id.
    #[serde(default)]
    pub partial: BTreeMap<String, Partial>,
    pub details: BTreeMap<String, CachedDetail>,
    /// Running campaigns' lead figures as last read, by campaign id.
    #[serde(default)]
    pub leads: BTreeMap<String, CachedLeads>,
    /// Team members' mailboxes as last read, by user id.
    #[serde(default)]
    pub users: BTreeMap<String, CachedUser>,
    /// What delivered events marked to read again.
    #[serde(default)]
    pub marks: Marks,
    /// The bound of the last sync from scratch.
    pub full_at: Option<DateTime<Utc>>,
    /// Set while a sync from scratch has not published yet.
    #[serde(default)]
    pub progress: Option<Progress>,
    #[serde(default)]
    pub last: LastRefresh,
    /// The webhooks lemdash keeps, and what they delivered or missed.
    #[serde(default)]
    pub hooks: crate::hooks::HooksState,
    /// Which mailbox sent, as the last published refresh knew it: what a delivered event's
    /// counts are credited by, until the next refresh reads the senders again.
    #[serde(default)]
    pub senders: Option<crate::health::performance::Senders>,
    /// What changed in the sets since the state was loaded or saved: what the next save writes.
    #[serde(skip)]
    pub(crate) changes: Changes,
}

/// The sets' changes since the last load or save ([`stored`] writes only these).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Leads new to campaigns that were tracked already, by campaign.
    pub added: BTreeMap<String, Tracked>,
    /// Campaigns whose sets are new as a whole (their history was read to the end).
    pub renewed: std::collections::BTreeSet<String>,
}

/// What folding one activity touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folded {
    /// The campaign whose sets gained a lead or an anonymous activity.
    pub campaign: Option<String>,
    /// The day whose counts gained the activity (`None`: counted already, or undated).
    pub day: Option<chrono::NaiveDate>,
}

/// What phase 1 could not read, for phase 2 to report on the rows.
#[derive(Debug, Default)]
pub struct Failures {
    streams: HashMap<Stream, LemlistError>,
    histories: HashMap<(String, Stream), LemlistError>,
    feeds: BTreeMap<Feed, (DateTime<Utc>, LemlistError)>,
    /// A feed's per-campaign reads ended in this step: its team-wide read from the sync's start
    /// follows.
    pub caught_up: bool,
}

impl Failures {
    /// The feeds that could not be read this time: the daily counts lack what they showed since
    /// the given instant (read again next time).
    pub fn feeds(&self) -> Vec<String> {
        self.feeds
            .iter()
            .map(|(feed, (since, e))| format!("{} since {}: {e}", feed.kind(), since.to_rfc3339()))
            .collect()
    }
}

fn running(c: &CampaignSummary) -> bool {
    c.status.as_deref() == Some("running")
}

impl SyncState {
    /// How the next refresh at `now` reads: from scratch without a state, when the state is
    /// incomplete, or when the last sync from scratch is older than the re-sync period; a sync
    /// from scratch in progress is carried on, not started again.
    pub fn mode(state: Option<&Self>, config: &SyncConfig, now: DateTime<Utc>) -> Mode {
        let Some(state) = state else { return Mode::Full };
        if config.mode == SyncMode::Full {
            return Mode::Full;
        }
        if state.progress.is_some() {
            return Mode::Incremental;
        }
        let due = state.full_at.is_none_or(|at| {
            now.signed_duration_since(at).to_std().unwrap_or_default() >= config.full_resync_every
        });
        let complete = Feed::ALL.iter().all(|f| state.watermarks.contains_key(f));
        if due || !complete { Mode::Full } else { Mode::Incremental }
    }

    /// The state a sync from scratch bounded by `until` starts from: nothing tracked. A re-sync
    /// keeps the daily counts and the feeds' watermarks of `previous` (the feeds carry on from
    /// there, and the histories it reads cover the sets up to `until`); without a complete
    /// previous state, the feeds start [`ledger::KEPT_DAYS`] whole days back, to fill the counts.
    pub fn begin(until: DateTime<Utc>, previous: Option<&SyncState>) -> Self {
        let carried = previous.filter(|p| Feed::ALL.iter().all(|f| p.watermarks.contains_key(f)));
        let (watermarks, ledger, counts_since) = match carried {
            Some(p) => (p.watermarks.clone(), p.ledger.clone(), None),
            None => {
                let first = until.date_naive() - chrono::Duration::days(ledger::KEPT_DAYS - 1);
                let start = first.and_time(chrono::NaiveTime::MIN).and_utc();
                (Feed::ALL.iter().map(|f| (*f, start)).collect(), Ledger::default(), Some(start))
            }
        };
        let progress = Progress {
            started: Some(until),
            dashboards_first: counts_since.map(|_| DashboardsFirst::Pending),
            counts_since,
            ..Progress::default()
        };
        let hooks = previous.map(|p| p.hooks.clone()).unwrap_or_default();
        Self { watermarks, ledger, hooks, full_at: Some(until), progress: Some(progress), ..Self::default() }
    }

    /// A first sync that has not published its dashboards yet: it reads no feed until then.
    pub fn dashboards_pending(&self) -> bool {
        self.progress.as_ref().is_some_and(|p| p.dashboards_first == Some(DashboardsFirst::Pending))
    }

    /// A first sync whose dashboards are published ahead of the daily counts: `Some(as of)`
    /// while the counts are being read.
    pub fn counts_pending_since(&self) -> Option<DateTime<Utc>> {
        match self.progress.as_ref()?.dashboards_first? {
            DashboardsFirst::Published { at } => Some(at),
            DashboardsFirst::Pending => None,
        }
    }

    /// The first sync published its dashboards as of `at`: the feeds follow. Each stream's feed
    /// is read per campaign (for the campaigns of `campaigns` whose history was not read) when
    /// that takes fewer calls, at one page a campaign at least, than the pages the team-wide
    /// feed needs at least for what the histories counted; the team-wide feed otherwise.
    pub fn dashboards_published(&mut self, at: DateTime<Utc>, campaigns: &[CampaignSummary]) {
        let by_campaign: Vec<Feed> = Feed::ALL
            .into_iter()
            .filter(|f| f.stream().is_some())
            .filter(|f| (self.unread_histories(campaigns).count() as u64) * PAGE_ROWS < self.ledger.total(*f))
            .collect();
        if let Some(p) = &mut self.progress {
            p.dashboards_first = Some(DashboardsFirst::Published { at });
            if p.counts_since.is_some() {
                p.counts_by_campaign = by_campaign.into_iter().map(|f| (f, Default::default())).collect();
            }
        }
    }

    /// The campaigns whose 30 days of `feed` a first sync still reads per campaign: the ones
    /// whose history it does not read, not read for it yet. Empty when the feed is read
    /// team-wide.
    fn counts_left<'c>(&self, feed: Feed, campaigns: &'c [CampaignSummary]) -> Vec<&'c CampaignSummary> {
        match self.progress.as_ref().and_then(|p| p.counts_by_campaign.get(&feed)) {
            Some(done) => self.unread_histories(campaigns).filter(|c| !done.contains(&c.id)).collect(),
            None => vec![],
        }
    }

    /// The campaigns whose history a sync does not read: not running, not tracked.
    fn unread_histories<'c>(
        &self,
        campaigns: &'c [CampaignSummary],
    ) -> impl Iterator<Item = &'c CampaignSummary> {
        campaigns.iter().filter(|c| !running(c) && !self.campaigns.contains_key(&c.id))
    }

    fn span(&self, feed: Feed) -> u32 {
        self.feed_spans.get(&feed).copied().unwrap_or(MAX_FEED_SPAN_HOURS).clamp(1, MAX_FEED_SPAN_HOURS)
    }

    /// Forgets what no later read can show again: the ids of activities before the oldest
    /// watermark less the overlap, and the days beyond the longest window.
    pub fn settle(&mut self, config: &SyncConfig, until: DateTime<Utc>) {
        let overlap = chrono::Duration::from_std(config.overlap).unwrap_or_default();
        if let Some(oldest) = self.watermarks.values().min() {
            self.ledger.forget(*oldest - overlap, until.date_naive());
        }
    }

    /// Phase 1 of a refresh bounded by `until`: the streams, and the histories of running
    /// campaigns not tracked yet (resumed where they stopped).
    pub fn plan_activity(
        &self,
        campaigns: &[CampaignSummary],
        until: DateTime<Utc>,
        config: &SyncConfig,
    ) -> Reads {
        // A first sync's histories count their last 30 days too.
        let counts_since = self.progress.as_ref().and_then(|p| p.counts_since);
        let mut histories = Vec::new();
        for c in campaigns.iter().filter(|c| running(c) && !self.campaigns.contains_key(&c.id)) {
            match self.partial.get(&c.id) {
                Some(p) => {
                    histories.extend(Stream::ALL.iter().filter(|s| !p.streams.get(**s).complete).map(|s| {
                        HistoryRead {
                            campaign: c.id.clone(),
                            stream: *s,
                            until: p.until,
                            from_page: p.streams.get(*s).next_page,
                            counts_since,
                        }
                    }))
                }
                None => histories
                    .extend(HistoryRead::whole(&c.id, until).map(|h| HistoryRead { counts_since, ..h })),
            }
        }
        let mut counts = Vec::new();
        for (feed, stream) in Feed::ALL.iter().filter_map(|f| Some((*f, f.stream()?))) {
            counts.extend(self.counts_left(feed, campaigns).into_iter().map(|c| HistoryRead {
                campaign: c.id.clone(),
                stream,
                until,
                from_page: 0,
                counts_since,
            }));
        }
        let overlap = chrono::Duration::from_std(config.overlap).unwrap_or_default();
        // A first sync reads its feeds once its dashboards are published; a feed read per
        // campaign, once those reads are done (from where they left the watermark).
        let feeds: Vec<Feed> = if self.dashboards_pending() {
            vec![]
        } else {
            Feed::ALL.into_iter().filter(|f| self.counts_left(*f, campaigns).is_empty()).collect()
        };
        let streams = feeds
            .iter()
            .filter_map(|f| {
                if let Some(r) = self.feed_resume.get(f) {
                    return Some(FeedRead {
                        feed: *f,
                        since: r.since,
                        until: r.until,
                        from_page: r.next_page,
                    });
                }
                let watermark = self.watermarks.get(f).copied().unwrap_or(until).min(until);
                let span = chrono::Duration::hours(i64::from(self.span(*f)));
                let (since, end) = (watermark - overlap, until.min(watermark + span));
                // lemlist wants maxDate strictly after minDate.
                (since < end).then_some(FeedRead { feed: *f, since, until: end, from_page: 0 })
            })
            .collect();
        Reads { until, histories, counts, streams, ..Reads::default() }
    }

    /// Folds phase 1 into the state. A stream that could not be read keeps its watermark (the
    /// next refresh reads from there again); a history keeps what it read and resumes later.
    pub fn absorb_activity(
        &mut self,
        campaigns: &[CampaignSummary],
        histories: Vec<HistoryPart>,
        counts: Vec<HistoryPart>,
        streams: StreamReads,
    ) -> Failures {
        let listed: HashSet<&str> = campaigns.iter().map(|c| c.id.as_str()).collect();
        let run: HashSet<&str> = campaigns.iter().filter(|c| running(c)).map(|c| c.id.as_str()).collect();
        self.campaigns.retain(|id, _| listed.contains(id.as_str()));
        self.details.retain(|id, _| listed.contains(id.as_str()));
        self.partial.retain(|id, _| run.contains(id.as_str()));

        let mut failures = Failures::default();
        for part in histories {
            self.absorb_history(part, &mut failures);
        }
        self.absorb_counts(campaigns, counts, &mut failures);
        for outcome in streams {
            self.absorb_feed(outcome, &mut failures);
        }
        self.track_complete_histories();
        failures
    }

    /// One history read (some pages of one campaign's stream) into its partial history.
    fn absorb_history(&mut self, part: HistoryPart, failures: &mut Failures) {
        let HistoryPart { read, pages, seen, ticks, result } = part;
        for tick in ticks {
            self.ledger.add(tick);
        }
        let partial = self
            .partial
            .entry(read.campaign.clone())
            .or_insert_with(|| Partial { until: read.until, streams: PerStream::default() });
        let stream = partial.streams.get_mut(read.stream);
        stream.seen.merge(seen);
        stream.next_page += pages;
        if let Some(progress) = &mut self.progress {
            progress.pages += pages as u64;
            progress.streams_done += u64::from(result.is_ok());
        }
        match result {
            Ok(()) => stream.complete = true,
            Err(e) => drop(failures.histories.insert((read.campaign, read.stream), e)),
        }
    }

    /// A first sync's per-campaign reads into the daily counts. Once a feed's are all done, every
    /// activity of it up to the sync's start is counted (the histories count the running
    /// campaigns' up to their bounds, which are later): its watermark moves there, and the
    /// team-wide read from it follows.
    fn absorb_counts(
        &mut self,
        campaigns: &[CampaignSummary],
        counts: Vec<HistoryPart>,
        failures: &mut Failures,
    ) {
        for HistoryPart { read, ticks, result, .. } in counts {
            for tick in ticks {
                self.ledger.add(tick);
            }
            let feed = Feed::from(read.stream);
            match result {
                Ok(()) => {
                    if let Some(done) =
                        self.progress.as_mut().and_then(|p| p.counts_by_campaign.get_mut(&feed))
                    {
                        done.insert(read.campaign);
                    }
                }
                Err(e) => {
                    let since = read.counts_since.unwrap_or(read.until);
                    failures.feeds.insert(feed, (since, e));
                }
            }
        }
        let started = self.progress.as_ref().and_then(|p| p.started);
        let by_campaign: Vec<Feed> =
            self.progress.iter().flat_map(|p| p.counts_by_campaign.keys().copied()).collect();
        for feed in by_campaign {
            let watermark = self.watermarks.get(&feed).copied();
            if let Some(started) = started
                && self.counts_left(feed, campaigns).is_empty()
                && watermark.is_some_and(|w| w < started)
            {
                self.watermarks.insert(feed, started);
                failures.caught_up = true;
            }
        }
    }

    /// One feed read into the sets and the counts. What the pages showed counts even when the
    /// read stopped short (sets and counts take a row once however often it is read); the
    /// watermark moves only when the read reached its end, else the next read resumes.
    fn absorb_feed(&mut self, outcome: FeedOutcome, failures: &mut Failures) {
        let FeedOutcome { read, part, result } = outcome;
        if let Some(stream) = read.feed.stream() {
            for (id, seen) in part.by_campaign {
                self.fold_seen(&id, stream, seen);
            }
        }
        let hooked = self.hooks.since(read.feed);
        for tick in part.ticks {
            let at = tick.at;
            if self.ledger.add(tick)
                && let (Some(since), Some(at)) = (hooked, at)
                && at >= since
                && at <= read.until - crate::hooks::MISS_GRACE
            {
                // New to the ledger, older than any delivery's delay: no hook delivered it.
                *self.hooks.misses.entry(read.feed.kind().to_owned()).or_default() += 1;
            }
        }
        match result {
            Ok(()) => {
                self.feed_resume.remove(&read.feed);
                let watermark = self.watermarks.entry(read.feed).or_insert(read.until);
                *watermark = (*watermark).max(read.until);
                let doubled = self.span(read.feed).saturating_mul(2).min(MAX_FEED_SPAN_HOURS);
                self.feed_spans.insert(read.feed, doubled);
            }
            Err(e) => {
                let before = self.feed_resume.get(&read.feed).and_then(|r| r.oldest);
                let oldest = match (before, part.oldest) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let next_page = read.from_page + part.pages;
                let resume = FeedResume { since: read.since, until: read.until, next_page, oldest };
                self.feed_resume.insert(read.feed, resume);
                if let Some(stream) = read.feed.stream() {
                    failures.streams.insert(stream, e.clone());
                }
                failures.feeds.insert(read.feed, (read.since, e));
            }
        }
    }

    /// Histories read to the end join the tracked campaigns, their sets new as a whole.
    fn track_complete_histories(&mut self) {
        let done: Vec<String> = self
            .partial
            .iter()
            .filter(|(_, p)| Stream::ALL.iter().all(|s| p.streams.get(*s).complete))
            .map(|(id, _)| id.clone())
            .collect();
        for id in done {
            if let Some(p) = self.partial.remove(&id) {
                self.changes.added.remove(&id);
                self.changes.renewed.insert(id.clone());
                let PerStream { sent, opened, replied } = p.streams;
                self.campaigns
                    .insert(id, Tracked { sent: sent.seen, opened: opened.seen, replied: replied.seen });
            }
        }
    }

    /// Adds what a stream showed of campaign `id` to its sets (tracked or being read); what is
    /// new to a tracked campaign is kept for the next save. True when the sets changed.
    fn fold_seen(&mut self, id: &str, stream: Stream, seen: Seen) -> bool {
        if let Some(tracked) = self.campaigns.get_mut(id) {
            let new = tracked.get_mut(stream).merge_new(seen);
            let changed = !new.is_empty();
            if changed && !self.changes.renewed.contains(id) {
                self.changes.added.entry(id.to_owned()).or_default().get_mut(stream).merge(new);
            }
            changed
        } else if let Some(partial) = self.partial.get_mut(id) {
            !partial.streams.get_mut(stream).seen.merge_new(seen).is_empty()
        } else {
            false
        }
    }

    /// Folds one activity record of `feed`, as a feed read or a delivered event shows it: into
    /// its campaign's sets (a stream's, when the campaign is tracked or being read) and into the
    /// day's counts (once, by its id). It touches that campaign's sets and that day only, and
    /// moves no watermark: only a read of the feed says that everything up to an instant is in.
    pub fn fold(&mut self, feed: Feed, activity: &crate::lemlist::Activity) -> Folded {
        let mut folded = Folded::default();
        if let (Some(stream), Some(campaign)) = (feed.stream(), activity.campaign_id.as_deref())
            && self.fold_seen(campaign, stream, Seen::of([activity]))
        {
            folded.campaign = Some(campaign.to_owned());
        }
        let tick = ledger::Tick::of(feed, activity);
        let day = tick.at.map(|at| at.date_naive());
        if self.ledger.add(tick) {
            folded.day = day;
        }
        folded
    }

    /// Running campaigns whose history is not complete yet.
    pub fn pending(&self, campaigns: &[CampaignSummary]) -> usize {
        campaigns.iter().filter(|c| running(c) && !self.campaigns.contains_key(&c.id)).count()
    }

    /// A rough count of the calls a sync from scratch still needs: the history streams not
    /// read to the end, at the average pages of those that were, less what they already read;
    /// what the feeds' resumed reads have left; then phase 2 (leads, details, users) and the roots.
    pub fn estimated_remaining_calls(&self, campaigns: &[CampaignSummary], users: usize) -> u64 {
        let progress = self.progress.clone().unwrap_or_default();
        let average = if progress.streams_done == 0 {
            1
        } else {
            progress.pages.div_ceil(progress.streams_done).max(1)
        };
        let mut pages = 0;
        for c in campaigns.iter().filter(|c| running(c) && !self.campaigns.contains_key(&c.id)) {
            for s in Stream::ALL {
                let read = self.partial.get(&c.id).map(|p| p.streams.get(s)).cloned().unwrap_or_default();
                if !read.complete {
                    pages += average.saturating_sub(read.next_page as u64).max(1);
                }
            }
        }
        // The feeds: what each resumed read has left; one page at least for each one a first
        // sync has not started yet.
        let mut feeds: u64 = self.feed_resume.values().map(FeedResume::pages_left).sum();
        if self.dashboards_pending() {
            feeds += Feed::ALL.len() as u64;
        }
        // And a page at least for each per-campaign read left.
        feeds += Feed::ALL.iter().map(|f| self.counts_left(*f, campaigns).len() as u64).sum::<u64>();
        let running = campaigns.iter().filter(|c| running(c)).count() as u64;
        pages + feeds + running + campaigns.len() as u64 + users as u64 + 2
    }

    /// Phase 2: caches the details, lead figures and users read and fills in the cached ones
    /// (the users in the team's order, `user_ids`), drops what a mark asked for once read, then
    /// gives the dashboards every running campaign's sets; a part that could not be read is
    /// reported, not zero.
    pub fn absorb_rest(
        &mut self,
        reads: &Reads,
        data: &mut TeamData,
        failures: &Failures,
        user_ids: &[String],
    ) {
        self.cache_details(reads.until, data);
        self.cache_leads_and_users(reads.until, data);
        for c in &data.campaigns {
            if !data.details.contains_key(&c.id)
                && let Some(cached) = self.details.get(&c.id)
            {
                data.details.insert(c.id.clone(), Ok(cached.detail.clone()));
            }
        }
        let running: HashSet<String> = data.running().map(|c| c.id.clone()).collect();
        self.leads.retain(|id, _| running.contains(id));
        self.marks.campaigns.retain(|id, _| running.contains(id));
        for id in &running {
            if !data.leads.contains_key(id)
                && let Some(cached) = self.leads.get(id)
            {
                data.leads.insert(id.clone(), Ok(cached.figures.clone()));
            }
        }
        let mut read: HashMap<String, Fetched<User>> = std::mem::take(&mut data.users).into_iter().collect();
        data.users = user_ids
            .iter()
            .map(|id| {
                let user = read.remove(id).or_else(|| self.users.get(id).map(|c| Ok(c.user.clone())));
                (id.clone(), user.unwrap_or(Err(Missing::NotFetched)))
            })
            .collect();
        self.users.retain(|id, _| user_ids.contains(id));
        self.marks.users.retain(|id, _| user_ids.contains(id));

        for id in running {
            for s in Stream::ALL {
                let part = match (self.campaigns.get(&id), failures.streams.get(&s)) {
                    (Some(_), Some(e)) => Err(Missing::from(e.clone())),
                    (Some(tracked), None) => Ok(tracked.get(s).clone()),
                    (None, _) => Err(failures
                        .histories
                        .get(&(id.clone(), s))
                        .cloned()
                        .map_or(Missing::HistoryInProgress, Missing::from)),
                };
                data.seen_mut(s).insert(id.clone(), part);
            }
        }
    }

    /// Keeps the details `data` holds, read at `until`. A sync from scratch stopped by its
    /// deadline in phase 2 keeps them too, so that its continuation reads only the others.
    pub fn cache_details(&mut self, until: DateTime<Utc>, data: &TeamData) {
        let status: HashMap<&str, Option<String>> =
            data.campaigns.iter().map(|c| (c.id.as_str(), c.status.clone())).collect();
        for (id, detail) in &data.details {
            if let Ok(detail) = detail {
                let status = status.get(id.as_str()).cloned().flatten();
                self.details
                    .insert(id.clone(), CachedDetail { detail: detail.clone(), read_at: until, status });
            }
        }
    }

    /// Keeps the lead figures and users `data` holds, read at `until`, and lifts the marks they
    /// answer (a mark that came after `until` stays: the read may predate its change). A sync
    /// from scratch stopped in phase 2 keeps them too, so that its continuation reads only the
    /// others.
    pub fn cache_leads_and_users(&mut self, until: DateTime<Utc>, data: &TeamData) {
        for c in &data.campaigns {
            if let Some(Ok(figures)) = data.leads.get(&c.id) {
                let cached =
                    CachedLeads { figures: figures.clone(), read_at: until, status: c.status.clone() };
                self.leads.insert(c.id.clone(), cached);
                if self.marks.campaigns.get(&c.id).is_some_and(|m| m.at <= until) {
                    self.marks.campaigns.remove(&c.id);
                }
            }
        }
        for (id, user) in &data.users {
            if let Ok(user) = user {
                self.users.insert(id.clone(), CachedUser { user: user.clone(), read_at: until });
                if self.marks.users.get(id).is_some_and(|at| *at <= until) {
                    self.marks.users.remove(id);
                }
            }
        }
    }

    /// Every difference between this state's sets and `fresh`, the same campaigns' histories
    /// read from scratch up to the same instant: one line per campaign and stream that differ.
    /// Empty means parity.
    pub fn differences(&self, fresh: &mut TeamData) -> Vec<String> {
        let mut out = Vec::new();
        for (id, tracked) in &self.campaigns {
            for s in Stream::ALL {
                match fresh.seen_mut(s).get(id) {
                    Some(Ok(seen)) => {
                        let mine: HashSet<&str> = tracked.get(s).lead_ids().collect();
                        let theirs: HashSet<&str> = seen.lead_ids().collect();
                        let lacking = theirs.difference(&mine).count();
                        let extra = mine.difference(&theirs).count();
                        if lacking + extra > 0 {
                            out.push(format!(
                                "{id} {}: the state has {} leads, lemlist {} ({lacking} missing from the state, {extra} not in lemlist)",
                                s.kind(),
                                mine.len(),
                                theirs.len()
                            ));
                        }
                    }
                    Some(Err(e)) => out.push(format!("{id} {}: could not be read to compare: {e}", s.kind())),
                    None => {}
                }
            }
        }
        out
    }

    /// The state as `GET /api/sync` shows it.
    pub fn status(state: Option<&Self>, config: &SyncConfig, stored_bytes: usize) -> SyncStatus {
        let mode = match config.mode {
            SyncMode::Incremental => "incremental",
            SyncMode::Full => "full",
        };
        let Some(state) = state else {
            return SyncStatus {
                mode,
                phase: "none",
                watermarks: BTreeMap::new(),
                tracked_campaigns: 0,
                histories_in_progress: 0,
                cached_details: 0,
                full_at: None,
                first_sync: None,
                last_refresh: LastRefresh::default(),
                state_bytes: 0,
                counts: CountsStatus::default(),
                hooks: crate::hooks::HooksView::default(),
            };
        };
        SyncStatus {
            mode,
            phase: if state.progress.is_some() { "first_sync" } else { "steady" },
            watermarks: state.watermarks.iter().map(|(f, at)| (f.kind(), *at)).collect(),
            tracked_campaigns: state.campaigns.len(),
            histories_in_progress: state.partial.len(),
            cached_details: state.details.len(),
            full_at: state.full_at,
            first_sync: state.progress.clone(),
            last_refresh: state.last.clone(),
            state_bytes: stored_bytes,
            counts: CountsStatus {
                sources: state.ledger.days.len(),
                first_day: state.ledger.days.values().filter_map(|d| d.keys().next()).min().copied(),
                last_day: state.ledger.days.values().filter_map(|d| d.keys().next_back()).max().copied(),
                overlap_ids: state.ledger.recent.len(),
                undated: state.ledger.undated.total(),
            },
            hooks: crate::hooks::HooksView::of(&state.hooks, state.marks.view()),
        }
    }

    /// The oldest watermark: every stream is complete up to it.
    pub fn complete_until(&self) -> Option<DateTime<Utc>> {
        Stream::ALL
            .iter()
            .map(|s| self.watermarks.get(&Feed::from(*s)).copied())
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::ledger::Tick;
    use crate::dashboard::fetch::FeedPart;
    use crate::dashboard::fetch::Roots;
    use crate::lemlist::Activity;
    use std::time::Duration;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn cid(n: u32) -> String {
        format!("cam_{n:0>17}")
    }

    fn summary(n: u32, status: &str) -> CampaignSummary {
        CampaignSummary {
            id: cid(n),
            name: Some(format!("C{n}")),
            status: Some(status.into()),
            created_at: None,
            created_by: None,
            labels: vec![],
        }
    }

    fn detail(n: u32) -> CampaignDetail {
        serde_json::from_value(serde_json::json!({"_id": cid(n), "name": format!("C{n}"), "senders": []}))
            .unwrap()
    }

    fn activity(id: &str, campaign: u32, lead: &str) -> Activity {
        Activity::sample(id, "emailsSent", Some(lead), Some(&cid(campaign)))
    }

    fn config() -> SyncConfig {
        SyncConfig { details_max_age: Duration::from_secs(3600), ..SyncConfig::default() }
    }

    /// Every planned history read in full, each showing `lead`.
    fn read_all(reads: &Reads, lead: &str) -> Vec<HistoryPart> {
        reads
            .histories
            .iter()
            .map(|r| HistoryPart {
                read: r.clone(),
                pages: 1,
                seen: Seen::of(&[activity("h", 0, lead)]),
                ticks: vec![],
                result: Ok(()),
            })
            .collect()
    }

    fn deadline() -> LemlistError {
        LemlistError::Deadline { endpoint: "GET /activities", wait: Duration::from_secs(1) }
    }

    /// A state after a sync from scratch at `at(0)` of campaigns 1 (running) and 2 (paused).
    fn synced() -> SyncState {
        let roots = Roots {
            campaigns: vec![summary(1, "running"), summary(2, "paused")],
            user_ids: vec![],
            team_id: String::new(),
        };
        let mut state = SyncState::begin(at(0), None);
        let reads = state.plan_activity(&roots.campaigns, at(0), &config());
        assert_eq!(reads.histories.len(), 3, "campaign 1's three streams");
        let failures = state.absorb_activity(&roots.campaigns, read_all(&reads, "lea_a"), vec![], vec![]);
        // As if every feed had caught up.
        state.watermarks = Feed::ALL.iter().map(|f| (*f, at(0))).collect();
        let rest = state.plan_rest(&roots, at(0), &config(), true);
        let mut data = TeamData { campaigns: roots.campaigns.clone(), ..TeamData::default() };
        data.details.insert(cid(1), Ok(detail(1)));
        data.details.insert(cid(2), Ok(detail(2)));
        state.absorb_rest(&rest, &mut data, &failures, &[]);
        state.progress = None;
        state.last.at = Some(at(0));
        state
    }

    #[test]
    fn no_state_or_a_due_resync_reads_from_scratch_and_one_in_progress_carries_on() {
        let c = config();
        assert_eq!(SyncState::mode(None, &c, at(0)), Mode::Full);
        let state = synced();
        assert_eq!(state.full_at, Some(at(0)));
        assert_eq!(SyncState::mode(Some(&state), &c, at(60)), Mode::Incremental);
        assert_eq!(SyncState::mode(Some(&state), &c, at(86_400)), Mode::Full, "a day later");
        let full = SyncConfig { mode: SyncMode::Full, ..c };
        assert_eq!(SyncState::mode(Some(&state), &full, at(60)), Mode::Full);
        let in_progress = SyncState::begin(at(0), None);
        assert_eq!(SyncState::mode(Some(&in_progress), &c, at(90_000)), Mode::Incremental, "carried on");
    }

    #[test]
    fn a_first_sync_reads_its_feeds_once_its_dashboards_are_published_and_a_resync_with_them() {
        let campaigns = vec![summary(1, "running"), summary(2, "paused")];
        let mut first = SyncState::begin(at(0), None);
        assert!(first.dashboards_pending());
        let plan = first.plan_activity(&campaigns, at(0), &config());
        assert_eq!((plan.histories.len(), plan.streams.len()), (3, 0), "histories only");
        assert_eq!(first.counts_pending_since(), None);
        first.dashboards_published(at(0), &campaigns);
        assert!(!first.dashboards_pending());
        assert_eq!(first.counts_pending_since(), Some(at(0)));
        let plan = first.plan_activity(&campaigns, at(30), &config());
        assert_eq!(plan.streams.len(), Feed::ALL.len(), "then every feed");
        let days = chrono::Duration::days(ledger::KEPT_DAYS - 1);
        assert!(plan.streams.iter().all(|r| r.since <= at(0) - days), "over the kept days");

        // A re-sync carries the counts on: it reads its feeds with its histories.
        let resync = SyncState::begin(at(86_400), Some(&synced()));
        assert!(!resync.dashboards_pending() && resync.counts_pending_since().is_none());
        let plan = resync.plan_activity(&campaigns, at(86_400), &config());
        assert_eq!((plan.histories.len(), plan.streams.len()), (3, Feed::ALL.len()));
    }

    #[test]
    fn a_first_sync_whose_histories_hold_the_month_reads_the_rest_of_it_per_campaign() {
        let campaigns = vec![summary(1, "running"), summary(2, "paused"), summary(3, "ended")];
        let mut state = SyncState::begin(at(0), None);
        let start = state.watermarks[&Feed::Sent];
        let plan = state.plan_activity(&campaigns, at(0), &config());
        assert!(plan.histories.iter().all(|h| h.counts_since == Some(start)), "histories count");
        assert!(plan.counts.is_empty() && plan.streams.is_empty());
        // Campaign 1's history shows 250 messages sent in the month: 3 pages of the team-wide
        // feed at least, against one read for each of the two other campaigns.
        let mut parts = read_all(&plan, "lea_a");
        let sent = parts.iter_mut().find(|p| p.read.stream == Stream::Sent).unwrap();
        sent.ticks = (0..250)
            .map(|i| Tick { id: format!("s{i}"), at: Some(at(-60)), feed: Feed::Sent, source: "c|".into() })
            .collect();
        state.absorb_activity(&campaigns, parts, vec![], vec![]);
        assert_eq!(state.ledger.total(Feed::Sent), 250);
        state.dashboards_published(at(0), &campaigns);

        let plan = state.plan_activity(&campaigns, at(30), &config());
        let per_campaign: Vec<(String, Stream)> =
            plan.counts.iter().map(|r| (r.campaign.clone(), r.stream)).collect();
        assert_eq!(per_campaign, vec![(cid(2), Stream::Sent), (cid(3), Stream::Sent)]);
        assert!(plan.counts.iter().all(|r| r.counts_since == Some(start) && r.until == at(30)));
        let team_wide: Vec<Feed> = plan.streams.iter().map(|r| r.feed).collect();
        assert_eq!(team_wide, vec![Feed::Opened, Feed::Replied, Feed::Bounced], "the others team-wide");

        // Campaign 2 is read, campaign 3 fails: the feed is not complete yet.
        let counted = |read: &HistoryRead, result| HistoryPart {
            read: read.clone(),
            pages: 1,
            seen: Seen::default(),
            ticks: vec![Tick {
                id: format!("x{}", read.campaign),
                at: Some(at(-90)),
                feed: Feed::Sent,
                source: "c|".into(),
            }],
            result,
        };
        let parts = vec![counted(&plan.counts[0], Ok(())), counted(&plan.counts[1], Err(deadline()))];
        let failures = state.absorb_activity(&campaigns, vec![], parts, vec![]);
        assert!(!failures.caught_up && !failures.feeds().is_empty());
        assert_eq!(state.watermarks[&Feed::Sent], start);
        let plan = state.plan_activity(&campaigns, at(60), &config());
        assert_eq!(plan.counts.len(), 1, "campaign 3 again");
        let failures =
            state.absorb_activity(&campaigns, vec![], vec![counted(&plan.counts[0], Ok(()))], vec![]);
        // Every activity up to the sync's start is counted: the team-wide feed goes on from there.
        assert!(failures.caught_up);
        assert_eq!(state.watermarks[&Feed::Sent], at(0));
        assert_eq!(state.ledger.total(Feed::Sent), 252, "each row once");
        let plan = state.plan_activity(&campaigns, at(90), &config());
        assert!(plan.counts.is_empty());
        let sent = plan.streams.iter().find(|r| r.feed == Feed::Sent).unwrap();
        assert_eq!((sent.since, sent.until), (at(-300), at(90)));
    }

    #[test]
    fn an_incremental_plan_reads_streams_from_the_watermark_less_the_overlap() {
        let state = synced();
        let campaigns = vec![summary(1, "running"), summary(2, "paused"), summary(3, "running")];
        let plan = state.plan_activity(&campaigns, at(60), &config());
        assert_eq!(plan.until, at(60));
        let new: Vec<HistoryRead> = Stream::ALL
            .map(|stream| HistoryRead {
                campaign: cid(3),
                stream,
                until: at(60),
                from_page: 0,
                counts_since: None,
            })
            .into();
        assert_eq!(plan.histories, new, "only the campaign not tracked yet");
        let feeds: Vec<FeedRead> = Feed::ALL
            .iter()
            .map(|f| FeedRead { feed: *f, since: at(-300), until: at(60), from_page: 0 })
            .collect();
        assert_eq!(plan.streams, feeds);
        let roots =
            Roots { campaigns: campaigns.clone(), user_ids: vec!["usr_1".into()], team_id: String::new() };
        let rest = state.plan_rest(&roots, at(60), &config(), true);
        assert_eq!(rest.leads, vec![cid(1), cid(3)]);
        assert_eq!(rest.users, vec!["usr_1".to_owned()]);
        // Running ones, the new one, and one share of the rest (1 paused × 60 s / 1 h → 1).
        assert_eq!(rest.details, vec![cid(1), cid(3), cid(2)]);
        let no_overlap = SyncConfig { overlap: Duration::ZERO, ..config() };
        assert!(
            state.plan_activity(&campaigns, at(0), &no_overlap).streams.is_empty(),
            "maxDate must pass minDate"
        );
    }

    #[test]
    fn details_of_idle_campaigns_are_read_when_stale_or_changed_or_on_the_rolling_share() {
        let mut state = synced();
        let many: Vec<CampaignSummary> = (2..=13).map(|n| summary(n, "paused")).collect();
        for n in 3..=13 {
            state.details.insert(
                cid(n),
                CachedDetail { detail: detail(n), read_at: at(n as i64), status: Some("paused".into()) },
            );
        }
        let roots = |campaigns: &[CampaignSummary]| Roots {
            campaigns: campaigns.to_vec(),
            user_ids: vec![],
            team_id: String::new(),
        };
        // 12 idle campaigns, 5 minutes since the last refresh, 1 h max age: one in twelve.
        assert_eq!(
            state.plan_rest(&roots(&many), at(300), &config(), true).details,
            vec![cid(2)],
            "the oldest"
        );
        let mut changed = many.clone();
        changed[5].status = Some("ended".into());
        let plan = state.plan_rest(&roots(&changed), at(300), &config(), true);
        assert_eq!(plan.details, vec![cid(7), cid(2)], "a status change is read at once");
        // An hour and 2 s after the last refresh: campaign 2 (read at 0) is past the max age and
        // read for that; the rest are due too, since the whole hour of their spread has passed,
        // oldest first.
        let plan = state.plan_rest(&roots(&many), at(3602), &config(), true);
        assert_eq!(plan.details, (2..=13).map(cid).collect::<Vec<_>>());
        // Half an hour after, none is past the max age: the older half of the twelve.
        let plan = state.plan_rest(&roots(&many), at(1800), &config(), true);
        assert_eq!(plan.details, (2..=7).map(cid).collect::<Vec<_>>());
    }

    /// A feed read from the overlap to `until`, showing `leads`.
    fn stream(feed: Feed, until: i64, leads: &[(u32, &str)]) -> FeedOutcome {
        let mut part = FeedPart::default();
        for (i, (c, l)) in leads.iter().enumerate() {
            let a = activity(&format!("s{i}"), *c, l);
            part.by_campaign.entry(cid(*c)).or_default().add(&a);
            part.ticks.push(Tick::of(feed, &a));
        }
        part.pages = 1;
        FeedOutcome {
            read: FeedRead { feed, since: at(-300), until: at(until), from_page: 0 },
            part,
            result: Ok(()),
        }
    }

    #[test]
    fn streams_fold_into_tracked_campaigns_and_advance_the_watermark() {
        let mut state = synced();
        let campaigns = vec![summary(1, "running"), summary(2, "paused"), summary(3, "running")];
        let reads = state.plan_activity(&campaigns, at(60), &config());
        let failure = LemlistError::Status { endpoint: "GET /activities", status: 503, body: "down".into() };
        let streams = vec![
            // Campaign 2 is not tracked: ignored. A re-read of lea_a counts once.
            stream(Feed::Sent, 60, &[(1, "lea_a"), (1, "lea_b"), (2, "lea_x"), (3, "lea_d")]),
            stream(Feed::Opened, 60, &[]),
            FeedOutcome {
                read: FeedRead { feed: Feed::Replied, since: at(-300), until: at(60), from_page: 0 },
                part: FeedPart::default(),
                result: Err(failure),
            },
            stream(Feed::Bounced, 60, &[]),
        ];
        let failures = state.absorb_activity(&campaigns, read_all(&reads, "lea_c"), vec![], streams);
        assert_eq!(state.campaigns[&cid(1)].sent.leads(), 2);
        assert_eq!(state.campaigns[&cid(3)].sent.leads(), 2, "history and stream together");
        assert!(!state.campaigns.contains_key(&cid(2)));
        assert_eq!(state.watermarks[&Feed::Sent], at(60));
        assert_eq!(state.watermarks[&Feed::Replied], at(0), "a failed stream keeps its watermark");
        let sent: u32 = state.ledger.days.values().flat_map(|d| d.values()).map(|d| d[0]).sum();
        assert_eq!(sent, 4, "every sent row counted, whatever its campaign");
        assert_eq!(failures.feeds().len(), 1);
        assert_eq!(state.complete_until(), Some(at(0)));

        let roots = Roots { campaigns: campaigns.clone(), user_ids: vec![], team_id: String::new() };
        let rest = state.plan_rest(&roots, at(60), &config(), true);
        let mut data = TeamData { campaigns, ..TeamData::default() };
        state.absorb_rest(&rest, &mut data, &failures, &[]);
        assert!(matches!(data.sent.get(&cid(1)), Some(Ok(s)) if s.leads() == 2));
        assert!(matches!(data.replied.get(&cid(1)), Some(Err(_))), "reported missing, not zero");
        assert!(matches!(data.details.get(&cid(2)), Some(Ok(_))), "cached details fill in");
    }

    #[test]
    fn a_history_stopped_by_a_deadline_resumes_at_its_next_page_with_its_own_bound() {
        let mut state = synced();
        let campaigns = vec![summary(1, "running"), summary(3, "running")];
        let reads = state.plan_activity(&campaigns, at(60), &config());
        let mut parts = read_all(&reads, "lea_c");
        parts[0].pages = 4;
        parts[0].result = Err(deadline());
        let stopped = parts[0].read.stream;
        state.absorb_activity(&campaigns, parts, vec![], vec![]);
        assert!(!state.campaigns.contains_key(&cid(3)));
        assert_eq!(state.pending(&campaigns), 1);
        let partial = &state.partial[&cid(3)];
        assert_eq!((partial.until, partial.streams.get(stopped).next_page), (at(60), 4));

        // Later: only the unfinished stream, from page 4, still bounded by at(60); the streams
        // fold into the partial history meanwhile.
        let reads = state.plan_activity(&campaigns, at(120), &config());
        assert_eq!(
            reads.histories,
            vec![HistoryRead {
                campaign: cid(3),
                stream: stopped,
                until: at(60),
                from_page: 4,
                counts_since: None
            }]
        );
        let streams = Feed::ALL.iter().map(|f| stream(*f, 120, &[(3, "lea_late")])).collect();
        state.absorb_activity(&campaigns, read_all(&reads, "lea_old"), vec![], streams);
        let tracked = &state.campaigns[&cid(3)];
        assert_eq!(state.pending(&campaigns), 0);
        assert!(state.partial.is_empty());
        assert_eq!(tracked.get(stopped).leads(), 3, "history pages, resumed pages and the stream");
    }

    #[test]
    fn partial_histories_of_campaigns_no_longer_running_are_dropped_and_vanished_campaigns_too() {
        let mut state = synced();
        let campaigns = vec![summary(3, "running")];
        let reads = state.plan_activity(&campaigns, at(60), &config());
        let mut parts = read_all(&reads, "x");
        parts[2].result = Err(LemlistError::RateLimited { endpoint: "GET /activities", attempts: 5 });
        let failures = state.absorb_activity(&campaigns, parts, vec![], vec![]);
        assert!(state.campaigns.is_empty(), "campaign 1 vanished from the list");
        assert_eq!(state.partial.len(), 1);
        let mut data = TeamData { campaigns: campaigns.clone(), ..TeamData::default() };
        state.absorb_rest(&Reads::default(), &mut data, &failures, &[]);
        assert!(matches!(
            data.replied.get(&cid(3)),
            Some(Err(Missing::Lemlist(LemlistError::RateLimited { .. })))
        ));
        assert!(
            matches!(data.sent.get(&cid(3)), Some(Err(Missing::HistoryInProgress))),
            "an incomplete history is missing, not zero"
        );
        let paused = vec![summary(3, "paused")];
        state.absorb_activity(&paused, vec![], vec![], vec![]);
        assert!(state.partial.is_empty());
    }

    #[test]
    fn the_remaining_calls_are_estimated_from_the_pages_read_so_far() {
        let mut state = SyncState::begin(at(0), None);
        let campaigns: Vec<CampaignSummary> = (1..=3).map(|n| summary(n, "running")).collect();
        let reads = state.plan_activity(&campaigns, at(0), &config());
        let mut parts = read_all(&reads, "x");
        for p in &mut parts {
            p.pages = 10;
        }
        // Campaign 1 is read in full (10 pages a stream), the others not at all.
        for p in parts.iter_mut().skip(3) {
            p.pages = 0;
            p.result = Err(deadline());
        }
        state.absorb_activity(&campaigns, parts, vec![], vec![]);
        // 6 streams × 10 pages, a page at least of each feed (not started before the first
        // dashboards), then 3 exports, 3 details, 1 user and the 2 roots.
        assert_eq!(state.estimated_remaining_calls(&campaigns, 1), 60 + 4 + 3 + 3 + 1 + 2);
    }

    #[test]
    fn differences_name_the_campaign_and_stream() {
        let state = synced();
        let mut fresh = TeamData::default();
        for s in Stream::ALL {
            fresh.seen_mut(s).insert(cid(1), Ok(Seen::of(&[activity("a", 1, "lea_a")])));
        }
        assert!(state.differences(&mut fresh).is_empty());
        fresh.opened.insert(cid(1), Ok(Seen::of(&[activity("a", 1, "lea_a"), activity("b", 1, "lea_b")])));
        let diff = state.differences(&mut fresh);
        assert_eq!(diff.len(), 1);
        assert!(diff[0].contains("emailsOpened: the state has 1 leads, lemlist 2 (1 missing"), "{diff:?}");
    }

    #[test]
    fn a_feed_read_cut_short_counts_its_pages_and_resumes_at_the_next_with_its_bounds() {
        let mut state = SyncState::begin(at(0), None);
        state.dashboards_published(at(0), &[]);
        let start = state.watermarks[&Feed::Bounced];
        assert_eq!(start.date_naive(), at(0).date_naive() - chrono::Duration::days(29));
        assert_eq!(start.time(), chrono::NaiveTime::MIN, "whole UTC days");
        let reads = state.plan_activity(&[], at(0), &config());
        assert_eq!(reads.streams.len(), 4);
        assert!(reads.streams.iter().all(|r| r.until == at(0)), "30 days fit in one read each");

        // The sent feed is cut by a deadline after 3 pages, back to 10 days before `until`: what
        // they showed counts, the watermark stays, and the next read goes on at page 3.
        let cut = reads.streams.iter().find(|r| r.feed == Feed::Sent).copied().unwrap();
        let mut row = activity("a1", 1, "lea_a");
        row.created_at = (at(0) - chrono::Duration::days(10)).to_rfc3339();
        let part = FeedPart { ticks: vec![Tick::of(Feed::Sent, &row)], pages: 3, ..FeedPart::default() };
        let part = FeedPart { oldest: part.ticks[0].at, ..part };
        state.absorb_activity(
            &[],
            vec![],
            vec![],
            vec![FeedOutcome { read: cut, part, result: Err(deadline()) }],
        );
        assert_eq!(state.watermarks[&Feed::Sent], start);
        assert_eq!(state.ledger.recent.len(), 1, "the row is counted");
        let next = state.plan_activity(&[], at(60), &config());
        let sent = *next.streams.iter().find(|r| r.feed == Feed::Sent).unwrap();
        assert_eq!(sent, FeedRead { from_page: 3, ..cut }, "the same bounds, the next page");
        // 3 pages covered 10 days; 19 and some hours are left: 5 pages, and one for the last.
        assert_eq!(state.feed_resume[&Feed::Sent].pages_left(), 6);
        assert_eq!(state.estimated_remaining_calls(&[], 0), 6 + 2);

        // The rest of it, the row read again on a shifted page: counted once, and the read is done.
        let part = FeedPart { ticks: vec![Tick::of(Feed::Sent, &row)], pages: 6, ..FeedPart::default() };
        state.absorb_activity(&[], vec![], vec![], vec![FeedOutcome { read: sent, part, result: Ok(()) }]);
        assert_eq!(state.watermarks[&Feed::Sent], at(0));
        assert!(state.feed_resume.is_empty());
        let days: u32 = state.ledger.days.values().flat_map(|d| d.values()).map(|d| d[0]).sum();
        assert_eq!(days, 1);

        let resync = SyncState::begin(at(60), Some(&state));
        assert_eq!(resync.ledger, state.ledger, "the counts are kept");
        assert_eq!(resync.watermarks, state.watermarks, "the feeds carry on");
        assert!(resync.campaigns.is_empty() && resync.progress.is_some());
    }

    #[test]
    fn the_state_round_trips() {
        let mut state = synced();
        state.partial.insert(cid(9), Partial { until: at(5), streams: PerStream::default() });
        // What changed since the last save is not stored: a save writes it, then forgets it.
        assert_eq!(state.changes.renewed.len(), 1, "campaign 1's history was read");
        state.changes = Changes::default();
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<SyncState>(&json).unwrap(), state);
    }
}
