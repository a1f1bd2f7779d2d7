//! Daily activity counts, by where each activity came from: what the mailboxes' performance,
//! their daily history and the deliverability alerts are computed from, without reading any
//! history again. The team-wide feeds fold every activity they read in here, once: a feed
//! re-reads an overlap on purpose, and a row can come twice while lemlist's newest-first pages
//! shift, so the ids of the activities a later read can still show are kept, and a row already
//! counted is not counted again.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::seen::Feed;
use crate::lemlist::Activity;

/// How many whole UTC days of counts are kept: the longest window, 30 days ending today.
pub const KEPT_DAYS: i64 = 30;

/// One activity as the ledger counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    pub id: String,
    /// `None` when lemlist's `createdAt` cannot be read: such a row has no day.
    pub at: Option<DateTime<Utc>>,
    pub feed: Feed,
    /// [`source`] of the row.
    pub source: String,
}

impl Tick {
    pub fn of(feed: Feed, activity: &Activity) -> Self {
        Self {
            id: activity.id.clone(),
            at: DateTime::parse_from_rfc3339(&activity.created_at).ok().map(|d| d.with_timezone(&Utc)),
            feed,
            source: source(activity),
        }
    }
}

/// Where an activity came from as far as its own fields say: `campaign|m:mailbox` when it names
/// the mailbox that sent, `campaign|e:address` when it names only the sending address, else
/// `campaign|`. Which mailbox that is gets decided when the figures are computed
/// ([`super::performance::Senders`]), against the mailboxes and senders of that moment.
pub fn source(activity: &Activity) -> String {
    let campaign = activity.campaign_id.as_deref().unwrap_or_default();
    match (activity.send_user_mailbox_id.as_deref(), activity.send_user_email.as_deref()) {
        (Some(mailbox), _) if !mailbox.is_empty() => format!("{campaign}|m:{mailbox}"),
        (_, Some(email)) if !email.is_empty() => format!("{campaign}|e:{}", email.to_lowercase()),
        _ => format!("{campaign}|"),
    }
}

/// Activities per feed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub sent: u64,
    pub bounced: u64,
    pub opened: u64,
    pub replied: u64,
}

impl Counts {
    pub fn add(&mut self, feed: Feed, n: u64) {
        match feed {
            Feed::Sent => self.sent += n,
            Feed::Bounced => self.bounced += n,
            Feed::Opened => self.opened += n,
            Feed::Replied => self.replied += n,
        }
    }

    pub fn merge(&mut self, other: &Counts) {
        self.sent += other.sent;
        self.bounced += other.bounced;
        self.opened += other.opened;
        self.replied += other.replied;
    }

    pub fn total(&self) -> u64 {
        self.sent + self.bounced + self.opened + self.replied
    }
}

/// A day's counts as stored: `[sent, opened, replied, bounced]` (the order of [`Feed::ALL`]).
pub type Day = [u32; 4];

fn slot(feed: Feed) -> usize {
    Feed::ALL.iter().position(|f| *f == feed).unwrap_or_default()
}

/// Daily counts by source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Source → UTC day → counts.
    pub days: BTreeMap<String, BTreeMap<NaiveDate, Day>>,
    /// Rows whose `createdAt` could not be read, per feed: counted nowhere, and reported.
    #[serde(default)]
    pub undated: Counts,
    /// Ids of counted activities that a later read may show again, with their `createdAt`
    /// (Unix seconds).
    #[serde(default)]
    pub recent: BTreeMap<String, i64>,
}

impl Ledger {
    /// Counts `tick` unless it was counted already; true when counted.
    pub fn add(&mut self, tick: Tick) -> bool {
        let Tick { id, at, feed, source } = tick;
        let Some(at) = at else {
            self.undated.add(feed, 1);
            return true;
        };
        if self.recent.contains_key(&id) {
            return false;
        }
        self.recent.insert(id, at.timestamp());
        let day = self.days.entry(source).or_default().entry(at.date_naive()).or_default();
        day[slot(feed)] = day[slot(feed)].saturating_add(1);
        true
    }

    /// Every dated activity of `feed` counted, over the kept days.
    pub fn total(&self, feed: Feed) -> u64 {
        self.days.values().flat_map(|days| days.values()).map(|day| u64::from(day[slot(feed)])).sum()
    }

    /// Forgets the ids of activities before `reread_from` (no read goes back that far again) and
    /// the days before the kept ones, counted back from `today`.
    pub fn forget(&mut self, reread_from: DateTime<Utc>, today: NaiveDate) {
        let horizon = reread_from.timestamp();
        self.recent.retain(|_, at| *at >= horizon);
        let first = today - chrono::Duration::days(KEPT_DAYS);
        for days in self.days.values_mut() {
            days.retain(|day, _| *day >= first);
        }
        self.days.retain(|_, days| !days.is_empty());
    }

    /// Per source, the counts of the days from `from` to `to`, both included.
    pub fn between(&self, from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = (&str, Counts)> + '_ {
        self.days.iter().filter_map(move |(source, days)| {
            let mut counts = Counts::default();
            for (_, day) in days.range(from..=to) {
                for feed in Feed::ALL {
                    counts.add(feed, u64::from(day[slot(feed)]));
                }
            }
            (counts.total() > 0).then_some((source.as_str(), counts))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, at: &str, mailbox: Option<&str>, email: Option<&str>) -> Activity {
        let mut a = Activity::sample(id, "emailsSent", Some("lea_1"), Some("cam_1"));
        a.created_at = at.into();
        a.send_user_mailbox_id = mailbox.map(str::to_owned);
        a.send_user_email = email.map(str::to_owned);
        a
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_source_names_the_mailbox_else_the_address_else_only_the_campaign() {
        assert_eq!(source(&row("a", "", Some("usm_1"), Some("A@x.io"))), "cam_1|m:usm_1");
        assert_eq!(source(&row("a", "", None, Some("A@X.io"))), "cam_1|e:a@x.io");
        assert_eq!(source(&row("a", "", Some(""), None)), "cam_1|");
    }

    #[test]
    fn an_activity_read_twice_counts_once_and_days_are_utc() {
        let mut ledger = Ledger::default();
        let a = row("act_1", "2026-11-30T23:59:59.000Z", Some("usm_1"), None);
        let b = row("act_2", "2026-12-01T00:30:00+01:00", Some("usm_1"), None);
        assert!(ledger.add(Tick::of(Feed::Sent, &a)));
        assert!(!ledger.add(Tick::of(Feed::Sent, &a)), "a repeat");
        assert!(ledger.add(Tick::of(Feed::Bounced, &b)));
        let days = &ledger.days["cam_1|m:usm_1"];
        assert_eq!(days[&day("2026-11-30")], [1, 0, 0, 1], "00:30 at +01:00 is the 30th in UTC");
        let week: Vec<(&str, Counts)> = ledger.between(day("2026-11-24"), day("2026-11-30")).collect();
        assert_eq!(week, vec![("cam_1|m:usm_1", Counts { sent: 1, bounced: 1, opened: 0, replied: 0 })]);
        let unreadable = row("act_3", "yesterday", None, None);
        assert!(ledger.add(Tick::of(Feed::Opened, &unreadable)));
        assert_eq!(ledger.undated.opened, 1);
    }

    #[test]
    fn forgetting_drops_old_ids_and_days_beyond_the_longest_window() {
        let mut ledger = Ledger::default();
        ledger.add(Tick::of(Feed::Sent, &row("old", "2026-10-01T10:00:00Z", None, None)));
        ledger.add(Tick::of(Feed::Sent, &row("new", "2026-11-30T10:00:00Z", None, None)));
        let from = DateTime::parse_from_rfc3339("2026-11-30T09:55:00Z").unwrap().with_timezone(&Utc);
        ledger.forget(from, day("2026-11-30"));
        assert_eq!(ledger.recent.keys().collect::<Vec<_>>(), vec!["new"]);
        assert_eq!(ledger.days["cam_1|"].len(), 1);
        assert!(ledger.add(Tick::of(Feed::Sent, &row("old", "2026-10-01T10:00:00Z", None, None))));
    }
}
