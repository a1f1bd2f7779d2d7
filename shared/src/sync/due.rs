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

    /// Whether an item last read at `cached` (`None`: never, or its status changed) is read:
    /// within a sync from scratch, what it read stands and the rest is read; otherwise `now`
    /// (asked for, or marked) or on the rolling share.
    fn due(&self, cached: Option<DateTime<Utc>>, now: bool) -> Due {
        match (cached, self.this_sync()) {
            (None, _) => Due::Now,
            (Some(at), Some(sync)) if at >= sync => Due::Stands,
            (Some(_), Some(_)) => Due::Now,
            (Some(_), None) if now => Due::Now,
            (Some(at), None) => Due::Rolling(at),
        }
    }

    fn leads_to_read(
        &self,
        campaigns: &[CampaignSummary],
        until: DateTime<Utc>,
        config: &SyncConfig,
        all: bool,
    ) -> Vec<String> {
        let marked_age = chrono::Duration::seconds(MARKED_MIN_AGE_SECS);
        let items = campaigns.iter().filter(|c| running(c)).map(|c| {
            let cached = self.leads.get(&c.id).filter(|l| l.status == c.status).map(|l| l.read_at);
            let marked = self
                .marks
                .campaigns
                .get(&c.id)
                .is_some_and(|m| m.urgent || cached.is_some_and(|at| until - at >= marked_age));
            (c.id.as_str(), self.due(cached, all || marked))
        });
        self.split(items, until, age(config.leads_max_age))
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
        let (mut read, mut idle, mut busy) = (Vec::new(), Vec::new(), Vec::new());
        for c in campaigns {
            let cached = self.details.get(&c.id).filter(|d| d.status == c.status).map(|d| d.read_at);
            let (id, pool) = (c.id.as_str(), if running(c) { &mut busy } else { &mut idle });
            place(id, self.due(cached, running(c) && all), &mut read, pool);
        }
        read.extend(self.share(idle, until, idle_age));
        read.extend(self.share(busy, until, running_age));
        read
    }

    fn users_to_read(
        &self,
        users: &[String],
        until: DateTime<Utc>,
        config: &SyncConfig,
        all: bool,
    ) -> Vec<String> {
        let items = users.iter().map(|id| {
            let cached = self.users.get(id).map(|u| u.read_at);
            (id.as_str(), self.due(cached, all || self.marks.users.contains_key(id)))
        });
        let mut read = self.split(items, until, age(config.leads_max_age));
        // In the team's order, as the dashboards list the mailboxes.
        read.sort_by_key(|id| users.iter().position(|u| u == id));
        read
    }

    /// The ids to read of `items`: those due now, then the rolling ones' share.
    fn split<'a>(
        &self,
        items: impl Iterator<Item = (&'a str, Due)>,
        until: DateTime<Utc>,
        max_age: chrono::Duration,
    ) -> Vec<String> {
        let (mut read, mut rest) = (Vec::new(), Vec::new());
        for (id, due) in items {
            place(id, due, &mut read, &mut rest);
        }
        read.extend(self.share(rest, until, max_age));
        read
    }

    /// The rolling share of `rest` ([`oldest_share`]) at `until`.
    fn share(
        &self,
        rest: Vec<(DateTime<Utc>, &str)>,
        until: DateTime<Utc>,
        max_age: chrono::Duration,
    ) -> Vec<String> {
        let since_last = self.since_last(until, max_age);
        oldest_share(rest, until, since_last, max_age).into_iter().map(str::to_owned).collect()
    }
}

/// Puts `id` where `due` says: into `read` now, or into the rolling `rest`.
fn place<'a>(id: &'a str, due: Due, read: &mut Vec<String>, rest: &mut Vec<(DateTime<Utc>, &'a str)>) {
    match due {
        Due::Now => read.push(id.to_owned()),
        Due::Rolling(at) => rest.push((at, id)),
        Due::Stands => {}
    }
}

/// Whether a cached item is read by a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// A sync from scratch read it already.
    Stands,
    Now,
    /// On the rolling share, as last read at this instant.
    Rolling(DateTime<Utc>),
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
