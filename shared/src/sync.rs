//! The incremental sync: what a refresh reads when it already knows the past.
//!
//! A key's [`SyncState`] holds, for every campaign whose history has been read (a *tracked*
//! campaign), the distinct leads each activity stream has shown, complete up to that stream's
//! watermark; and the campaign details last read, with when. A refresh then reads:
//! - each stream once for the whole team, from its watermark less an overlap up to the
//!   refresh's start (`maxDate`, so that paging sees a fixed set), folded into the sets; the
//!   overlap catches activities that lemlist shows after their timestamp, and counting by
//!   distinct lead makes a re-read activity harmless;
//! - the whole history, per campaign, of a running campaign that is not tracked yet (new, or
//!   running for the first time), which then joins the streams;
//! - every running campaign's leads and details (lead states and senders change without any
//!   activity), and the details of the other campaigns on a rolling schedule, at once when a
//!   campaign is new or changed status;
//! - the team and its users.
//!
//! A refresh with no usable state, or whose last full read is older than the re-sync period,
//! reads everything from scratch ([`Mode::Full`]), which also corrects any drift.
//!
//! Everything here is pure: the refresh ([`crate::refresh`]) does the reading and the storing.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::SyncConfig;
use crate::dashboard::fetch::{Reads, StreamReads, TeamData};
use crate::dashboard::{Seen, Stream};
use crate::lemlist::{CampaignDetail, CampaignSummary, LemlistError};

/// How a refresh reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Everything from scratch.
    Full,
    /// What can have changed since the last refresh.
    Incremental,
}

/// The distinct leads of a tracked campaign, per stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    pub sent: Seen,
    pub opened: Seen,
    pub replied: Seen,
}

impl Tracked {
    pub fn get(&self, stream: Stream) -> &Seen {
        match stream {
            Stream::Sent => &self.sent,
            Stream::Opened => &self.opened,
            Stream::Replied => &self.replied,
        }
    }

    pub fn get_mut(&mut self, stream: Stream) -> &mut Seen {
        match stream {
            Stream::Sent => &mut self.sent,
            Stream::Opened => &mut self.opened,
            Stream::Replied => &mut self.replied,
        }
    }
}

/// Campaign details as last read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedDetail {
    pub detail: CampaignDetail,
    pub read_at: DateTime<Utc>,
    /// The campaign's status in the list when they were read: a change means read them again.
    pub status: Option<String>,
}

/// What the last refresh did, for `GET /api/sync` and the logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRefresh {
    pub mode: Option<Mode>,
    pub at: Option<DateTime<Utc>>,
    /// Requests sent to lemlist, retries included.
    pub calls: u64,
    pub duration_ms: u64,
    /// Campaigns whose history was read per campaign.
    pub histories: usize,
    /// Campaign details read.
    pub details: usize,
}

/// One key's sync state. Stored compressed in the snapshot table; the key itself never is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    /// Per stream: every activity up to this instant is in the sets of every tracked campaign.
    pub watermarks: BTreeMap<Stream, DateTime<Utc>>,
    /// Tracked campaigns, by id.
    pub campaigns: BTreeMap<String, Tracked>,
    pub details: BTreeMap<String, CachedDetail>,
    /// When the last read from scratch was bounded (its `maxDate`).
    pub full_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last: LastRefresh,
}

fn running(c: &CampaignSummary) -> bool {
    c.status.as_deref() == Some("running")
}

impl SyncState {
    /// How the next refresh at `now` reads.
    pub fn mode(state: Option<&Self>, config: &SyncConfig, now: DateTime<Utc>) -> Mode {
        let Some(state) = state else { return Mode::Full };
        let due = state.full_at.is_none_or(|at| {
            now.signed_duration_since(at).to_std().unwrap_or_default() >= config.full_resync_every
        });
        let complete = Stream::ALL.iter().all(|s| state.watermarks.contains_key(s));
        if config.mode == crate::config::SyncMode::Full || due || !complete {
            Mode::Full
        } else {
            Mode::Incremental
        }
    }

    /// What an incremental refresh bounded by `until` reads, given the campaign list.
    pub fn plan(&self, campaigns: &[CampaignSummary], until: DateTime<Utc>, config: &SyncConfig) -> Reads {
        let run: Vec<String> = campaigns.iter().filter(|c| running(c)).map(|c| c.id.clone()).collect();
        let histories = run.iter().filter(|id| !self.campaigns.contains_key(*id)).cloned().collect();
        let overlap = chrono::Duration::from_std(config.overlap).unwrap_or_default();
        let streams = Stream::ALL
            .iter()
            .filter_map(|s| {
                let since = self.watermarks.get(s).copied().unwrap_or(until).min(until) - overlap;
                // lemlist wants maxDate strictly after minDate.
                (since < until).then_some((*s, since))
            })
            .collect();
        Reads {
            until,
            histories,
            leads: run.clone(),
            details: self.details_to_read(campaigns, until, config),
            streams,
        }
    }

    /// Running campaigns' details, those never read or whose status changed, those older than
    /// the maximum age, and the oldest of the rest in proportion to the time since the last
    /// refresh, so that the reads spread evenly instead of all expiring together.
    fn details_to_read(
        &self,
        campaigns: &[CampaignSummary],
        until: DateTime<Utc>,
        config: &SyncConfig,
    ) -> Vec<String> {
        let max_age = chrono::Duration::from_std(config.details_max_age).unwrap_or(chrono::Duration::MAX);
        let mut read = Vec::new();
        let mut rest: Vec<(DateTime<Utc>, &str)> = Vec::new();
        for c in campaigns {
            match self.details.get(&c.id) {
                Some(cached)
                    if !running(c) && cached.status == c.status && until - cached.read_at < max_age =>
                {
                    rest.push((cached.read_at, &c.id));
                }
                _ => read.push(c.id.clone()),
            }
        }
        let since_last = self.last.at.map_or(max_age, |at| (until - at).max(chrono::Duration::zero()));
        // ⌈idle × since_last / max_age⌉, in whole numbers.
        let (since, max) = (since_last.num_milliseconds() as u128, max_age.num_milliseconds().max(1) as u128);
        let extra = ((rest.len() as u128 * since).div_ceil(max)).min(rest.len() as u128) as usize;
        rest.sort();
        read.extend(rest.into_iter().take(extra).map(|(_, id)| id.to_owned()));
        read
    }

    /// Folds what a refresh read into the state, then fills `data` with what the dashboards
    /// need from the state: every running campaign's sets, and cached details. A stream that
    /// could not be read keeps its watermark (the next refresh reads from there again) and its
    /// part of every tracked running campaign is reported missing.
    pub fn absorb(&mut self, mode: Mode, reads: &Reads, data: &mut TeamData, streams: StreamReads) {
        let listed: HashSet<&str> = data.campaigns.iter().map(|c| c.id.as_str()).collect();
        self.campaigns.retain(|id, _| listed.contains(id.as_str()));
        self.details.retain(|id, _| listed.contains(id.as_str()));

        // Histories read in full join the tracked campaigns.
        for id in &reads.histories {
            let complete = Stream::ALL.iter().all(|s| matches!(data.seen_mut(*s).get(id), Some(Ok(_))));
            if !complete {
                continue;
            }
            let mut tracked = Tracked::default();
            for s in Stream::ALL {
                if let Some(Ok(seen)) = data.seen_mut(s).remove(id) {
                    *tracked.get_mut(s) = seen;
                }
            }
            self.campaigns.insert(id.clone(), tracked);
        }

        let mut failed: HashMap<Stream, LemlistError> = HashMap::new();
        for (stream, read) in streams {
            match read {
                Ok(by_campaign) => {
                    for (id, seen) in by_campaign {
                        if let Some(tracked) = self.campaigns.get_mut(&id) {
                            tracked.get_mut(stream).merge(seen);
                        }
                    }
                    self.watermarks.insert(stream, reads.until);
                }
                Err(e) => drop(failed.insert(stream, e)),
            }
        }
        if mode == Mode::Full {
            // Every history was read up to `until`: the streams start from there.
            for s in Stream::ALL {
                self.watermarks.insert(s, reads.until);
            }
            self.full_at = Some(reads.until);
        }

        let status: HashMap<&str, Option<String>> =
            data.campaigns.iter().map(|c| (c.id.as_str(), c.status.clone())).collect();
        for (id, detail) in &data.details {
            if let Ok(detail) = detail {
                let status = status.get(id.as_str()).cloned().flatten();
                self.details.insert(
                    id.clone(),
                    CachedDetail { detail: detail.clone(), read_at: reads.until, status },
                );
            }
        }
        for c in &data.campaigns {
            if !data.details.contains_key(&c.id)
                && let Some(cached) = self.details.get(&c.id)
            {
                data.details.insert(c.id.clone(), Ok(cached.detail.clone()));
            }
        }

        let run: Vec<String> = data.running().map(|c| c.id.clone()).collect();
        for id in run {
            let Some(tracked) = self.campaigns.get(&id) else { continue };
            for s in Stream::ALL {
                let part = match failed.get(&s) {
                    Some(e) => Err(e.clone()),
                    None => Ok(tracked.get(s).clone()),
                };
                data.seen_mut(s).insert(id.clone(), part);
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

    /// The oldest watermark: every stream is complete up to it.
    pub fn complete_until(&self) -> Option<DateTime<Utc>> {
        Stream::ALL
            .iter()
            .map(|s| self.watermarks.get(s).copied())
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        Activity {
            id: id.into(),
            kind: "emailsSent".into(),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            campaign_id: Some(cid(campaign)),
            lead_id: Some(lead.into()),
            is_first: None,
            send_user_id: None,
            send_user_email: None,
            send_user_mailbox_id: None,
            extra: Default::default(),
        }
    }

    fn config() -> SyncConfig {
        SyncConfig { details_max_age: Duration::from_secs(3600), ..SyncConfig::default() }
    }

    /// A state after a full read at `at(0)` of campaigns 1 (running) and 2 (paused).
    fn synced() -> SyncState {
        let campaigns = vec![summary(1, "running"), summary(2, "paused")];
        let reads = Reads::full(&campaigns, at(0));
        let mut data = TeamData { campaigns, ..TeamData::default() };
        for s in Stream::ALL {
            data.seen_mut(s).insert(cid(1), Ok(Seen::of(&[activity("a", 1, "lea_a")])));
        }
        data.details.insert(cid(1), Ok(detail(1)));
        data.details.insert(cid(2), Ok(detail(2)));
        let mut state = SyncState::default();
        state.absorb(Mode::Full, &reads, &mut data, vec![]);
        state.last.at = Some(at(0));
        state
    }

    #[test]
    fn no_state_or_a_due_resync_reads_from_scratch() {
        let c = config();
        assert_eq!(SyncState::mode(None, &c, at(0)), Mode::Full);
        let state = synced();
        assert_eq!(state.full_at, Some(at(0)));
        assert_eq!(SyncState::mode(Some(&state), &c, at(60)), Mode::Incremental);
        assert_eq!(SyncState::mode(Some(&state), &c, at(86_400)), Mode::Full, "a day later");
        let full = SyncConfig { mode: crate::config::SyncMode::Full, ..c };
        assert_eq!(SyncState::mode(Some(&state), &full, at(60)), Mode::Full);
    }

    #[test]
    fn an_incremental_plan_reads_streams_from_the_watermark_less_the_overlap() {
        let state = synced();
        let campaigns = vec![summary(1, "running"), summary(2, "paused"), summary(3, "running")];
        let plan = state.plan(&campaigns, at(60), &config());
        assert_eq!(plan.until, at(60));
        assert_eq!(plan.histories, vec![cid(3)], "only the campaign not tracked yet");
        assert_eq!(plan.leads, vec![cid(1), cid(3)]);
        assert_eq!(plan.streams, Stream::ALL.iter().map(|s| (*s, at(-300))).collect::<Vec<_>>());
        // Running ones, the new one, and one share of the rest (1 paused × 60 s / 1 h → 1).
        assert_eq!(plan.details, vec![cid(1), cid(3), cid(2)]);
        let no_overlap = SyncConfig { overlap: Duration::ZERO, ..config() };
        assert!(state.plan(&campaigns, at(0), &no_overlap).streams.is_empty(), "maxDate must pass minDate");
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
        // 12 idle campaigns, 5 minutes since the last refresh, 1 h max age: one in twelve.
        let plan = state.plan(&many, at(300), &config());
        assert_eq!(plan.details, vec![cid(2)], "the oldest");
        let mut changed = many.clone();
        changed[5].status = Some("ended".into());
        let plan = state.plan(&changed, at(300), &config());
        assert_eq!(plan.details, vec![cid(7), cid(2)], "a status change is read at once");
        let plan = state.plan(&many, at(3602), &config());
        assert!(plan.details.len() >= 2, "older than the max age: {:?}", plan.details);
    }

    #[test]
    fn streams_fold_into_tracked_campaigns_and_advance_the_watermark() {
        let mut state = synced();
        let campaigns = vec![summary(1, "running"), summary(2, "paused"), summary(3, "running")];
        let reads = state.plan(&campaigns, at(60), &config());
        let mut data = TeamData { campaigns, ..TeamData::default() };
        for s in Stream::ALL {
            data.seen_mut(s).insert(cid(3), Ok(Seen::of(&[activity("c", 3, "lea_c")])));
        }
        let stream = |leads: &[(u32, &str)]| {
            let mut by: HashMap<String, Seen> = HashMap::new();
            for (i, (c, l)) in leads.iter().enumerate() {
                by.entry(cid(*c)).or_default().add(&activity(&format!("s{i}"), *c, l));
            }
            by
        };
        let failure = LemlistError::Status { endpoint: "GET /activities", status: 503, body: "down".into() };
        let streams = vec![
            // Campaign 2 is not tracked: ignored. A re-read of lea_a counts once.
            (Stream::Sent, Ok(stream(&[(1, "lea_a"), (1, "lea_b"), (2, "lea_x"), (3, "lea_d")]))),
            (Stream::Opened, Ok(stream(&[]))),
            (Stream::Replied, Err(failure)),
        ];
        state.absorb(Mode::Incremental, &reads, &mut data, streams);
        assert_eq!(state.campaigns[&cid(1)].sent.leads(), 2);
        assert_eq!(state.campaigns[&cid(3)].sent.leads(), 2, "history and stream together");
        assert!(!state.campaigns.contains_key(&cid(2)));
        assert_eq!(state.watermarks[&Stream::Sent], at(60));
        assert_eq!(state.watermarks[&Stream::Replied], at(0), "a failed stream keeps its watermark");
        assert!(matches!(data.sent.get(&cid(1)), Some(Ok(s)) if s.leads() == 2));
        assert!(matches!(data.replied.get(&cid(1)), Some(Err(_))), "reported missing, not zero");
        assert!(matches!(data.details.get(&cid(2)), Some(Ok(_))), "cached details fill in");
        assert_eq!(state.complete_until(), Some(at(0)));
    }

    #[test]
    fn a_history_read_in_part_is_not_tracked_and_vanished_campaigns_are_dropped() {
        let mut state = synced();
        let campaigns = vec![summary(3, "running")];
        let reads = state.plan(&campaigns, at(60), &config());
        let mut data = TeamData { campaigns, ..TeamData::default() };
        data.sent.insert(cid(3), Ok(Seen::default()));
        data.opened.insert(cid(3), Ok(Seen::default()));
        data.replied
            .insert(cid(3), Err(LemlistError::RateLimited { endpoint: "GET /activities", attempts: 5 }));
        state.absorb(Mode::Incremental, &reads, &mut data, vec![]);
        assert!(state.campaigns.is_empty(), "campaign 1 vanished, campaign 3 is read again next time");
        assert!(matches!(data.replied.get(&cid(3)), Some(Err(_))));
        assert!(state.details.is_empty());
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
    fn the_state_round_trips() {
        let state = synced();
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<SyncState>(&json).unwrap(), state);
    }
}
