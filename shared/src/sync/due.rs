//! Phase 2's reads that no feed makes unnecessary: every running campaign's lead figures and
//! details, the other campaigns' details, every team member's mailboxes. Which of them a
//! refresh reads:
//! - without webhooks, or when a person asked (a forced refresh, a cold page): every running
//!   campaign's leads and details, and every user, as polling always did;
//! - with webhooks: what was never read, what changed status, what an event marked (a lead
//!   paused, resumed or stopped, or a reply: in the fold, at once; a send once the export is
//!   [`MARKED_MIN_AGE_SECS`] old; a mailbox signal at the next refresh), and of the rest the
//!   oldest, in proportion to the time since the last refresh, so that none is older than
//!   `LEADS_MAX_AGE_SECS` and the reads spread evenly instead of expiring together;
//! - within a sync from scratch, what it already read stands (a continuation reads the rest).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::SyncState;
use crate::config::SyncConfig;
use crate::dashboard::fetch::{Reads, Roots};
use crate::dashboard::leads::LeadFigures;
use crate::lemlist::{CampaignSummary, User};

/// A campaign that sends is read again at most this often for its sends: a send at a sequence's
/// last step ends a lead's sequence, which no event reports.
pub const MARKED_MIN_AGE_SECS: i64 = 900;

/// A campaign's lead figures as last read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLeads {
    pub figures: LeadFigures,
    pub read_at: DateTime<Utc>,
    /// The campaign's status in the list then: a change means read them again.
    pub status: Option<String>,
}

/// A team member's mailboxes as last read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedUser {
    pub user: User,
    pub read_at: DateTime<Utc>,
}

/// What delivered events said may have changed that no event carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marks {
    /// Campaigns whose lead export to read again, with what marked them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub campaigns: BTreeMap<String, Mark>,
    /// Users whose mailboxes to read again, since when.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, DateTime<Utc>>,
}

/// One campaign's mark: the first event's arrival since the last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub at: DateTime<Utc>,
    /// A lead was paused, resumed or stopped, or replied: read at once (debounced), not at the
    /// next refresh.
    pub urgent: bool,
}

impl Marks {
    /// Marks `campaign` at `at`; an urgent mark stays urgent.
    pub fn campaign(&mut self, campaign: &str, at: DateTime<Utc>, urgent: bool) {
        let mark = self.campaigns.entry(campaign.to_owned()).or_insert(Mark { at, urgent });
        mark.urgent |= urgent;
    }

    pub fn user(&mut self, user: &str, at: DateTime<Utc>) {
        self.users.entry(user.to_owned()).or_insert(at);
    }

    /// What `GET /api/sync` shows of them.
    pub fn view(&self) -> crate::hooks::Marked {
        let urgent = self.campaigns.values().filter(|m| m.urgent).count();
        crate::hooks::Marked { urgent, campaigns: self.campaigns.len() - urgent, users: self.users.len() }
    }
}

fn running(c: &CampaignSummary) -> bool {
    c.status.as_deref() == Some("running")
}

/// Of `rest` (each with when it was last read), the ones older than `max_age`, then the oldest
/// of the others in proportion to `since_last` (the time since the last refresh) over `max_age`:
/// ⌈n × since_last / max_age⌉, so that each is read about once per `max_age`.
fn oldest_share(
    mut rest: Vec<(DateTime<Utc>, &str)>,
    until: DateTime<Utc>,
    since_last: chrono::Duration,
    max_age: chrono::Duration,
) -> Vec<&str> {
    rest.sort();
    let stale = rest.iter().filter(|(at, _)| until - *at >= max_age).count();
    let (since, max) =
        (since_last.num_milliseconds().max(0) as u128, max_age.num_milliseconds().max(1) as u128);
    let share = ((rest.len() as u128 * since).div_ceil(max)).min(rest.len() as u128) as usize;
    rest.into_iter().take(stale.max(share)).map(|(_, id)| id).collect()
}

fn age(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl SyncState {
    /// Phase 2's reads at `until`; `all`: every running campaign's leads and details and every
    /// user (no webhooks, or a person asked).
    pub fn plan_rest(&self, roots: &Roots, until: DateTime<Utc>, config: &SyncConfig, all: bool) -> Reads {
        Reads {
            until,
            leads: self.leads_to_read(&roots.campaigns, until, config, all),
            details: self.details_to_read(&roots.campaigns, until, config, all),
            users: self.users_to_read(&roots.user_ids, until, config, all),
            ..Reads::default()
        }
    }

    /// The instant from which a sync from scratch's reads stand, while one is in progress.
    fn this_sync(&self) -> Option<DateTime<Utc>> {
        self.progress.as_ref().and_then(|p| p.started)
    }

    fn since_last(&self, until: DateTime<Utc>, max_age: chrono::Duration) -> chrono::Duration {
        self.last.at.map_or(max_age, |at| (until - at).max(chrono::Duration::zero()))
    }

    fn leads_to_read(
        &self,
        campaigns: &[CampaignSummary],
        until: DateTime<Utc>,
        config: &SyncConfig,
        all: bool,
    ) -> Vec<String> {
        let max_age = age(config.leads_max_age);
        let this_sync = self.this_sync();
        let (mut read, mut rest) = (Vec::new(), Vec::new());
        for c in campaigns.iter().filter(|c| running(c)) {
            let Some(cached) = self.leads.get(&c.id).filter(|l| l.status == c.status) else {
                read.push(c.id.clone());
                continue;
            };
            if this_sync.is_some_and(|t| cached.read_at >= t) {
                continue;
            }
            let marked = self.marks.campaigns.get(&c.id).is_some_and(|m| {
                m.urgent || until - cached.read_at >= chrono::Duration::seconds(MARKED_MIN_AGE_SECS)
            });
            if all || marked || this_sync.is_some() {
                read.push(c.id.clone());
            } else {
                rest.push((cached.read_at, c.id.as_str()));
            }
        }
        let shared = oldest_share(rest, until, self.since_last(until, max_age), max_age);
        let mut shared: Vec<String> = shared.into_iter().map(str::to_owned).collect();
        read.append(&mut shared);
        read
    }

    /// Details never read or whose status changed; running campaigns' on every refresh when
    /// `all`, else as leads are; the others so that each is at most `DETAILS_MAX_AGE_SECS` old.
    fn details_to_read(
        &self,
        campaigns: &[CampaignSummary],
        until: DateTime<Utc>,
        config: &SyncConfig,
        all: bool,
    ) -> Vec<String> {
        let (idle_age, running_age) = (age(config.details_max_age), age(config.leads_max_age));
        let this_sync = self.this_sync();
        let (mut read, mut idle, mut busy) = (Vec::new(), Vec::new(), Vec::new());
        for c in campaigns {
            match self.details.get(&c.id).filter(|d| d.status == c.status) {
                Some(cached) if this_sync.is_some_and(|t| cached.read_at >= t) => {}
                Some(cached) if !running(c) && until - cached.read_at < idle_age => {
                    idle.push((cached.read_at, c.id.as_str()));
                }
                Some(cached) if running(c) && !all && this_sync.is_none() => {
                    busy.push((cached.read_at, c.id.as_str()));
                }
                _ => read.push(c.id.clone()),
            }
        }
        let idle = oldest_share(idle, until, self.since_last(until, idle_age), idle_age);
        let busy = oldest_share(busy, until, self.since_last(until, running_age), running_age);
        read.extend(idle.into_iter().chain(busy).map(str::to_owned));
        read
    }

    fn users_to_read(
        &self,
        users: &[String],
        until: DateTime<Utc>,
        config: &SyncConfig,
        all: bool,
    ) -> Vec<String> {
        let max_age = age(config.leads_max_age);
        let this_sync = self.this_sync();
        let (mut read, mut rest) = (Vec::new(), Vec::new());
        for id in users {
            match self.users.get(id) {
                Some(cached) if this_sync.is_some_and(|t| cached.read_at >= t) => {}
                Some(cached) if !all && this_sync.is_none() && !self.marks.users.contains_key(id) => {
                    rest.push((cached.read_at, id.as_str()));
                }
                _ => read.push(id.clone()),
            }
        }
        let shared = oldest_share(rest, until, self.since_last(until, max_age), max_age);
        read.extend(shared.into_iter().map(str::to_owned));
        // In the team's order, as the dashboards list the mailboxes.
        read.sort_by_key(|id| users.iter().position(|u| u == id));
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::fetch::Roots;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn the_oldest_share_reads_the_stale_then_the_oldest_in_proportion_to_the_time_since_the_last() {
        let rest: Vec<(DateTime<Utc>, &str)> = (0..12)
            .map(|i| (at(i * 10), ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"][i as usize]))
            .collect();
        let hour = chrono::Duration::hours(1);
        let five = chrono::Duration::minutes(5);
        assert_eq!(oldest_share(rest.clone(), at(200), five, hour), ["a"], "12 × 5 min / 1 h = 1");
        assert_eq!(oldest_share(rest.clone(), at(200), hour, hour).len(), 12);
        let stale = oldest_share(rest.clone(), at(3_640), five, hour);
        assert_eq!(stale, ["a", "b", "c", "d", "e"], "read at 0..=40 s are an hour old at 3,640 s");
        assert!(oldest_share(vec![], at(0), five, hour).is_empty());
    }

    fn running(n: u32) -> CampaignSummary {
        serde_json::from_value(serde_json::json!({"_id": format!("cam_{n}"), "status": "running"})).unwrap()
    }

    /// A state whose last refresh was at 0, with the lead figures of campaigns 1..=12 read at
    /// `n` s each (campaign `n`), and users 1..=3 read at 0.
    fn cached() -> (SyncState, Roots) {
        let mut state = SyncState::default();
        state.last.at = Some(at(0));
        for n in 1..=12 {
            let cached = CachedLeads {
                figures: LeadFigures::default(),
                read_at: at(n),
                status: Some("running".into()),
            };
            state.leads.insert(format!("cam_{n}"), cached);
        }
        for n in 1..=3 {
            let user = User { id: format!("usr_{n}"), email: None, mailboxes: vec![] };
            state.users.insert(format!("usr_{n}"), CachedUser { user, read_at: at(0) });
        }
        let roots = Roots {
            campaigns: (1..=13).map(running).collect(),
            user_ids: (1..=3).map(|n| format!("usr_{n}")).collect(),
            team_id: String::new(),
        };
        (state, roots)
    }

    fn config() -> SyncConfig {
        SyncConfig { leads_max_age: std::time::Duration::from_secs(3600), ..SyncConfig::default() }
    }

    #[test]
    fn with_webhooks_leads_are_read_when_new_marked_changed_or_due_and_all_of_them_when_asked() {
        let (mut state, mut roots) = cached();
        let ids = |v: Vec<String>| v.join(" ");
        // Five minutes on: campaign 13 was never read; one in twelve of the rest, the oldest.
        let plan = state.plan_rest(&roots, at(300), &config(), false);
        assert_eq!(ids(plan.leads), "cam_13 cam_1");
        assert_eq!(ids(plan.users), "usr_1", "⌈3 × 5 min / 1 h⌉ = 1");
        assert_eq!(state.plan_rest(&roots, at(300), &config(), true).leads.len(), 13, "a person asked");
        // A lead paused in 5: at once; a send in 6: not before its export is 15 minutes old.
        state.marks.campaign("cam_5", at(200), true);
        state.marks.campaign("cam_6", at(200), false);
        state.marks.user("usr_3", at(200));
        let plan = state.plan_rest(&roots, at(300), &config(), false);
        assert_eq!(ids(plan.leads), "cam_5 cam_13 cam_1");
        assert_eq!(ids(plan.users), "usr_1 usr_3", "in the team's order");
        let later = state.plan_rest(&roots, at(906), &config(), false);
        assert!(later.leads.contains(&"cam_6".to_owned()), "{:?}", later.leads);
        // A campaign that stopped and started again is read at once.
        roots.campaigns[7].status = Some("running".into());
        state.leads.get_mut("cam_8").unwrap().status = Some("paused".into());
        assert!(state.plan_rest(&roots, at(300), &config(), false).leads.contains(&"cam_8".to_owned()));
        // An hour on, every one is due.
        assert_eq!(state.plan_rest(&roots, at(3_700), &config(), false).leads.len(), 13);
    }

    #[test]
    fn within_a_sync_from_scratch_what_it_read_stands_and_the_rest_is_read() {
        let (mut state, roots) = cached();
        state.progress = Some(super::super::Progress { started: Some(at(6)), ..Default::default() });
        let plan = state.plan_rest(&roots, at(300), &config(), false);
        let want: Vec<String> = [1, 2, 3, 4, 5, 13].iter().map(|n| format!("cam_{n}")).collect();
        assert_eq!(plan.leads, want, "read before the sync began at 6 s, or never");
        assert_eq!(plan.users.len(), 3);
        assert_eq!(state.plan_rest(&roots, at(300), &config(), true).leads, want, "even when asked");
    }

    #[test]
    fn marks_keep_the_first_instant_and_stay_urgent() {
        let mut marks = Marks::default();
        marks.campaign("cam_1", at(5), true);
        marks.campaign("cam_1", at(9), false);
        marks.campaign("cam_2", at(7), false);
        assert_eq!(marks.campaigns["cam_1"], Mark { at: at(5), urgent: true });
        assert_eq!(marks.campaigns["cam_2"], Mark { at: at(7), urgent: false });
        marks.user("usr_1", at(3));
        marks.user("usr_1", at(4));
        assert_eq!(marks.users["usr_1"], at(3));
    }
}
