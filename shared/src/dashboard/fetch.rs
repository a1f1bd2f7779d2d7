//! The reads behind both dashboards: every call that does not depend on another is issued at
//! once, so that the per-key budget, not latency, sets the pace. Pages of one activity stream
//! follow each other; everything else overlaps. Computing both dashboards together fetches each
//! resource once. What is read is a [`Reads`]: [`Reads::full`] reads everything (the first sync, and
//! `SYNC_MODE=full`); the incremental sync (`crate::sync`) reads only what can have changed.
//!
//! Calls of a full read, for C campaigns of which R run, and U users:
//! - the campaign list, all statuses at once (1 call per 100 campaigns; the running ones are
//!   filtered here, keeping lemlist's order);
//! - campaigns dashboard: per running campaign, the lead export and three activity streams
//!   (`emailsSent`, `emailsOpened` with `isFirst` since only distinct leads count, and
//!   `emailsReplied`), each `⌈rows / 100⌉` pages and at least one; `emailsClicked` is not read;
//! - mailboxes dashboard: `GET /team?version=v2` (every user), each user's mailboxes, every
//!   campaign's senders (`GET /campaigns/{id}`), and the running campaigns' lead exports (shared
//!   with the campaigns dashboard).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use super::leads::LeadFigures;
use crate::activity::ledger::Tick;
use crate::activity::{Feed, Seen, Stream};
use crate::ids::{CampaignId, UserId};
use crate::lemlist::{ActivityQuery, CampaignDetail, CampaignSummary, LemlistClient, LemlistError, User};

pub type Fetched<T> = Result<T, Missing>;

/// Why a part of the data is missing: lemlist's own failure, or a reason of lemdash's.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Missing {
    /// lemlist could not be read (after the retries the budget allowed).
    #[error(transparent)]
    Lemlist(#[from] LemlistError),
    /// The campaign's history is not read to the end yet: a sync from scratch carries on.
    #[error("the campaign's history is not read to the end yet")]
    HistoryInProgress,
    /// lemlist listed an id that is not one of its ids.
    #[error("lemlist listed an invalid id {0:?}")]
    InvalidId(String),
    /// Not read by this refresh (its read was not started or did not end).
    #[error("not fetched")]
    NotFetched,
}

/// Everything the dashboards are computed from. A part that could not be fetched is kept as its
/// error, so the dashboards can say what is missing.
#[derive(Debug, Default)]
pub struct TeamData {
    /// Every campaign, in lemlist's order.
    pub campaigns: Vec<CampaignSummary>,
    /// Campaign details (senders), by campaign id.
    pub details: HashMap<String, Fetched<CampaignDetail>>,
    /// What the running campaigns' lead exports say, by campaign id.
    pub leads: HashMap<String, Fetched<LeadFigures>>,
    pub sent: HashMap<String, Fetched<Seen>>,
    pub opened: HashMap<String, Fetched<Seen>>,
    pub replied: HashMap<String, Fetched<Seen>>,
    /// Every team member with their mailboxes, in the team's order.
    pub users: Vec<(String, Fetched<User>)>,
}

impl TeamData {
    /// The running campaigns, in lemlist's order.
    pub fn running(&self) -> impl Iterator<Item = &CampaignSummary> {
        self.campaigns.iter().filter(|c| c.status.as_deref() == Some("running"))
    }

    /// The distinct leads of `stream`, by campaign id.
    pub fn seen_mut(&mut self, stream: Stream) -> &mut HashMap<String, Fetched<Seen>> {
        match stream {
            Stream::Sent => &mut self.sent,
            Stream::Opened => &mut self.opened,
            Stream::Replied => &mut self.replied,
        }
    }
}

/// The two reads everything else depends on: every campaign, and who is in the team.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    pub campaigns: Vec<CampaignSummary>,
    pub user_ids: Vec<String>,
    /// The team's id: a hook delivery must name it.
    pub team_id: String,
}

/// One activity stream of one campaign, from `from_page` (0: the start) to the end, bounded by
/// `until`. A history interrupted by a deadline resumes from the page after the last one read,
/// with the same bound, so that what it read is not read again. An activity that lemlist shows
/// meanwhile inside the bound can only push older rows to later pages: a row may come twice
/// (counting distinct leads makes that harmless), none is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRead {
    pub campaign: String,
    pub stream: Stream,
    pub until: DateTime<Utc>,
    pub from_page: usize,
    /// The rows at or after this instant are kept for the daily counts too (a first sync's
    /// histories count the last 30 days, so that its feeds need not read them again).
    pub counts_since: Option<DateTime<Utc>>,
}

impl HistoryRead {
    /// The three streams of `campaign`'s whole history, up to `until`.
    pub fn whole(campaign: &str, until: DateTime<Utc>) -> [Self; 3] {
        Stream::ALL.map(|stream| Self {
            campaign: campaign.to_owned(),
            stream,
            until,
            from_page: 0,
            counts_since: None,
        })
    }
}

/// What a history read got: the pages read in full, the leads they showed, and whether it
/// reached the end (`Ok`) or why not.
#[derive(Debug)]
pub struct HistoryPart {
    pub read: HistoryRead,
    pub pages: usize,
    pub seen: Seen,
    /// The rows since `read.counts_since`, as the daily counts take them.
    pub ticks: Vec<Tick>,
    pub result: Result<(), LemlistError>,
}

/// What a refresh reads beyond the roots.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reads {
    /// Team-wide stream reads end here (`maxDate`): lemlist pages newest first by offset, and a
    /// fixed end keeps the set still while new activities arrive.
    pub until: DateTime<Utc>,
    /// Campaign histories, per campaign and stream.
    pub histories: Vec<HistoryRead>,
    /// One campaign's stream since its `counts_since` (`minDate`), for the daily counts only:
    /// a first sync reads these for the campaigns whose history it does not read, when that
    /// costs fewer calls than the team-wide feed over 30 days.
    pub counts: Vec<HistoryRead>,
    /// Campaigns whose leads are exported.
    pub leads: Vec<String>,
    /// Campaigns whose details (senders) are read.
    pub details: Vec<String>,
    /// Team-wide reads of a feed between two dates.
    pub streams: Vec<FeedRead>,
    /// Users whose mailboxes are read, in the team's order.
    pub users: Vec<String>,
}

/// One team-wide read of a feed: `minDate` = `since`, `maxDate` = `until` (lemlist pages newest
/// first by offset, and a fixed end keeps the set still while new activities arrive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedRead {
    pub feed: Feed,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// The first page to read (0: the start): a read cut before its end resumes there, with the
    /// same bounds.
    pub from_page: usize,
}

/// What a feed read showed: the distinct leads per campaign (for the dashboards' streams), and
/// every row as the daily counts take it.
#[derive(Debug, Default)]
pub struct FeedPart {
    pub by_campaign: HashMap<String, Seen>,
    pub ticks: Vec<Tick>,
    /// Pages read in full.
    pub pages: usize,
    /// The oldest `createdAt` those pages showed (pages come newest first).
    pub oldest: Option<DateTime<Utc>>,
}

/// One team-wide feed read: what its pages showed, even when it stopped before its end, and
/// whether it reached the end.
#[derive(Debug)]
pub struct FeedOutcome {
    pub read: FeedRead,
    pub part: FeedPart,
    pub result: Result<(), LemlistError>,
}

/// Each team-wide feed read.
pub type StreamReads = Vec<FeedOutcome>;

/// Everything a [`read`] got.
#[derive(Debug, Default)]
pub struct Read {
    /// Leads, details and users; the activity sets are left to the caller, from `histories`
    /// and `streams`.
    pub data: TeamData,
    pub histories: Vec<HistoryPart>,
    pub counts: Vec<HistoryPart>,
    pub streams: StreamReads,
}

impl Read {
    /// Whether a read stopped because its deadline came.
    pub fn stopped_by_deadline(&self) -> bool {
        let deadline = |e: &LemlistError| matches!(e, LemlistError::Deadline { .. });
        let missed = |m: &Missing| matches!(m, Missing::Lemlist(e) if deadline(e));
        self.histories.iter().chain(&self.counts).any(|h| h.result.as_ref().is_err_and(deadline))
            || self.streams.iter().any(|o| o.result.as_ref().is_err_and(deadline))
            || self.data.leads.values().any(|r| r.as_ref().is_err_and(missed))
            || self.data.details.values().any(|r| r.as_ref().is_err_and(missed))
            || self.data.users.iter().any(|(_, r)| r.as_ref().is_err_and(missed))
    }
}

impl Read {
    /// The data, with each history's leads (or why it could not be read to the end) as the
    /// dashboards take them: what a read without a sync state gives.
    pub fn into_team_data(self) -> TeamData {
        let mut data = self.data;
        for HistoryPart { read, seen, result, .. } in self.histories {
            data.seen_mut(read.stream).insert(read.campaign, result.map(|()| seen).map_err(Missing::from));
        }
        data
    }
}

impl Reads {
    /// Everything, from scratch: every running campaign's history and leads, every campaign's
    /// details, every user.
    pub fn full(roots: &Roots, until: DateTime<Utc>) -> Self {
        let running: Vec<String> = roots
            .campaigns
            .iter()
            .filter(|c| c.status.as_deref() == Some("running"))
            .map(|c| c.id.clone())
            .collect();
        Self {
            until,
            histories: running.iter().flat_map(|c| HistoryRead::whole(c, until)).collect(),
            counts: vec![],
            leads: running,
            details: roots.campaigns.iter().map(|c| c.id.clone()).collect(),
            streams: vec![],
            users: roots.user_ids.clone(),
        }
    }
}

enum Part {
    Detail(String, Fetched<CampaignDetail>),
    Leads(String, Fetched<LeadFigures>),
    History(HistoryPart),
    Counts(HistoryPart),
    Stream(FeedOutcome),
    User(usize, Fetched<User>),
}

fn invalid_id(id: &str) -> Missing {
    Missing::InvalidId(id.to_owned())
}

fn query(feed: Feed) -> ActivityQuery {
    let q = ActivityQuery::of_type(feed.kind());
    if feed.first_only() { q.first_only() } else { q }
}

/// Reads the roots. Fails when either fails: nothing can be computed without them.
pub async fn roots(client: &LemlistClient) -> Result<Roots, LemlistError> {
    let (campaigns, team) = tokio::join!(client.campaigns(None), client.team());
    let team = team?;
    let mut user_ids: Vec<String> = team.users.iter().map(|u| u.user_id.clone()).collect();
    if user_ids.is_empty() {
        user_ids = team.user_ids.clone();
    }
    Ok(Roots { campaigns: campaigns?, user_ids, team_id: team.id })
}

/// Reads `reads`. Failures are kept in what is returned, never raised.
pub async fn read(client: &LemlistClient, campaigns: Vec<CampaignSummary>, reads: &Reads) -> Read {
    let mut out = Read { data: TeamData { campaigns, ..TeamData::default() }, ..Read::default() };
    let data = &mut out.data;
    let mut jobs = JoinSet::new();
    // Longest chains first: activity streams have several pages each.
    for &feed_read in &reads.streams {
        jobs.spawn(read_feed(client.clone(), feed_read));
    }
    for history in &reads.histories {
        jobs.spawn(read_history(client.clone(), history.clone(), false));
    }
    for counts in &reads.counts {
        jobs.spawn(read_history(client.clone(), counts.clone(), true));
    }
    for id in &reads.leads {
        let Ok(cid) = id.parse::<CampaignId>() else {
            data.leads.insert(id.clone(), Err(invalid_id(id)));
            continue;
        };
        let (c, key) = (client.clone(), id.clone());
        jobs.spawn(async move {
            Part::Leads(key, c.export_leads(&cid).await.map(|l| LeadFigures::of(&l)).map_err(Missing::from))
        });
    }
    for id in &reads.details {
        let Ok(cid) = id.parse::<CampaignId>() else {
            data.details.insert(id.clone(), Err(invalid_id(id)));
            continue;
        };
        let (c, key) = (client.clone(), id.clone());
        jobs.spawn(async move { Part::Detail(key, c.campaign(&cid).await.map_err(Missing::from)) });
    }
    for (i, id) in reads.users.iter().enumerate() {
        let result = match id.parse::<UserId>() {
            Ok(uid) => {
                let c = client.clone();
                jobs.spawn(async move { Part::User(i, c.user(&uid).await.map_err(Missing::from)) });
                Err(Missing::NotFetched)
            }
            Err(_) => Err(invalid_id(id)),
        };
        data.users.push((id.clone(), result));
    }

    while let Some(done) = jobs.join_next().await {
        match done.expect("fetch tasks do not panic") {
            Part::Detail(id, r) => drop(out.data.details.insert(id, r)),
            Part::Leads(id, r) => drop(out.data.leads.insert(id, r)),
            Part::History(part) => out.histories.push(part),
            Part::Counts(part) => out.counts.push(part),
            Part::Stream(outcome) => out.streams.push(outcome),
            Part::User(i, r) => out.data.users[i].1 = r,
        }
    }
    out.streams.sort_by_key(|o| (o.read.feed, o.read.since));
    out
}

/// One team-wide feed read, page by page: each page's rows into the campaigns' sets (for a
/// stream's feed) and the daily counts, kept even when the read stops short.
async fn read_feed(client: LemlistClient, feed_read: FeedRead) -> Part {
    let FeedRead { feed, since, until, from_page } = feed_read;
    let q = query(feed).between(Some(since), Some(until));
    let mut part = FeedPart::default();
    let read = client
        .activities_each(&q, from_page, |rows| {
            part.pages += 1;
            for a in &rows {
                if feed.stream().is_some()
                    && let Some(campaign) = &a.campaign_id
                {
                    part.by_campaign.entry(campaign.clone()).or_default().add(a);
                }
                let tick = Tick::of(feed, a);
                if let Some(at) = tick.at {
                    part.oldest = Some(part.oldest.map_or(at, |o| o.min(at)));
                }
                part.ticks.push(tick);
            }
        })
        .await;
    Part::Stream(FeedOutcome { read: feed_read, part, result: read.map(drop) })
}

/// One campaign's history of one stream, from its page, up to its bound; `counts_only`: from
/// its `counts_since` on, for the daily counts.
async fn read_history(client: LemlistClient, read: HistoryRead, counts_only: bool) -> Part {
    let (mut seen, mut ticks, mut pages) = (Seen::default(), Vec::new(), 0);
    let feed = Feed::from(read.stream);
    let result = match read.campaign.parse::<CampaignId>() {
        Ok(cid) => {
            let since = read.counts_since.filter(|_| counts_only);
            let q = query(feed).campaign(&cid).between(since, Some(read.until));
            client
                .activities_each(&q, read.from_page, |rows| {
                    pages += 1;
                    for a in &rows {
                        if !counts_only {
                            seen.add(a);
                        }
                        let tick = Tick::of(feed, a);
                        if read.counts_since.is_some_and(|t| tick.at.is_some_and(|at| at >= t)) {
                            ticks.push(tick);
                        }
                    }
                })
                .await
                .map(drop)
        }
        Err(_) => Err(LemlistError::Decode {
            endpoint: "GET /campaigns",
            message: format!("lemlist listed an invalid id {:?}", read.campaign),
        }),
    };
    let part = HistoryPart { read, pages, seen, ticks, result };
    if counts_only { Part::Counts(part) } else { Part::History(part) }
}

/// Fetches what both dashboards need from scratch, keeping no state. Fails only when a root
/// fails (the campaign list or the team); any other failure is kept in the data.
pub async fn fetch(client: &LemlistClient) -> Result<TeamData, LemlistError> {
    let until = Utc::now();
    let roots = roots(client).await?;
    let reads = Reads::full(&roots, until);
    Ok(read(client, roots.campaigns, &reads).await.into_team_data())
}
