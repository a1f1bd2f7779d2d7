//! The history and alerts as stored: a small head and parts ([`crate::snapshot::parts`]):
//! `alerts` (every alert of the last 30 days), and `h#<day>` (one UTC day's points of every
//! campaign and mailbox). A refresh writes today's points and, when an alert was raised,
//! cleared or delivered, the alerts: the 90 days are never rewritten whole.
//!
//! A log saved by the previous layout (one document) is read as it is; the first save after
//! writes every part.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::HealthLog;
use super::alerts::Alerts;
use super::history::{CampaignPoint, MailboxPoint};
use crate::snapshot::parts::{self, Base, Document, Part, content};
use crate::snapshot::{Item, SnapshotError, SnapshotStore, pack, unpack};

#[derive(Debug, Default, Serialize, Deserialize)]
struct Head {
    updated_at: Option<DateTime<Utc>>,
}

/// One day's points.
#[derive(Debug, Serialize, Deserialize)]
struct Day<C, M> {
    campaigns: BTreeMap<String, C>,
    mailboxes: BTreeMap<String, M>,
}

impl<C, M> Default for Day<C, M> {
    fn default() -> Self {
        Self { campaigns: BTreeMap::new(), mailboxes: BTreeMap::new() }
    }
}

/// Reads a stored log back.
pub fn decode(document: Document) -> Result<(Base, HealthLog), SnapshotError> {
    let base = Base::of(&document);
    let layered = match document {
        Document::Whole(stored) => return Ok((base, unpack(&stored.bytes)?)),
        Document::Layered(l) => l,
    };
    let head: Head = unpack(&layered.head)?;
    let mut log = HealthLog { updated_at: head.updated_at, ..HealthLog::default() };
    // Parts come in name order: the days oldest first, as the history keeps its points.
    for (name, bytes) in &layered.parts {
        if name == "alerts" {
            log.alerts = unpack::<Alerts>(bytes)?;
        } else if name.starts_with("h#") {
            let day: Day<CampaignPoint, MailboxPoint> = unpack(bytes)?;
            for (id, point) in day.campaigns {
                log.history.campaigns.entry(id).or_default().push(point);
            }
            for (id, point) in day.mailboxes {
                log.history.mailboxes.entry(id).or_default().push(point);
            }
        }
    }
    Ok((base, log))
}

/// The parts of `log`; every one given, so that only those whose content changed are written.
fn encode(log: &HealthLog) -> BTreeMap<String, Part> {
    let mut days: BTreeMap<NaiveDate, Day<&CampaignPoint, &MailboxPoint>> = BTreeMap::new();
    for (id, points) in &log.history.campaigns {
        for p in points {
            days.entry(p.date).or_default().campaigns.insert(id.clone(), p);
        }
    }
    for (id, points) in &log.history.mailboxes {
        for p in points {
            days.entry(p.date).or_default().mailboxes.insert(id.clone(), p);
        }
    }
    let mut parts: BTreeMap<String, Part> =
        days.iter().map(|(d, day)| (format!("h#{d}"), content(day))).collect();
    parts.insert("alerts".into(), content(&log.alerts));
    parts
}

/// The key's stored log; `None` when there is none.
pub async fn load(store: &dyn SnapshotStore, key: &str) -> Result<Option<(Base, HealthLog)>, SnapshotError> {
    store.load_parts(key, Item::Health).await?.map(decode).transpose()
}

/// Saves `log` over `base`; false when another writer came first.
pub async fn save(
    store: &dyn SnapshotStore,
    key: &str,
    log: &HealthLog,
    base: &Base,
) -> Result<bool, SnapshotError> {
    let now = parts::wall_secs();
    let plan = parts::plan(Item::Health, base, encode(log), now)?;
    store.save_parts(key, Item::Health, pack(&Head { updated_at: log.updated_at }), &plan, base).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::Window;
    use crate::dashboard::{CampaignStatus, MailboxStatus};
    use crate::snapshot::MemorySnapshots;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn log(days: u32) -> HealthLog {
        let mut log = HealthLog::default();
        for d in 1..=days {
            let campaign = CampaignPoint {
                date: day(d),
                people_count: 10 + u64::from(d),
                companies_count: 3,
                people_engaged: 4,
                open_rate: 33.33,
                reply_rate: 2.5,
                campaign_status: CampaignStatus::Active,
                missing: vec![],
            };
            let mailbox = MailboxPoint {
                date: day(d),
                status: MailboxStatus::InUse,
                day: Some(Window { sent: u64::from(d), ..Window::default() }),
            };
            log.history.record(day(d), [("cam_1".to_owned(), campaign)], [("usm_1".to_owned(), mailbox)]);
        }
        log.updated_at = Some(day(days).and_hms_opt(12, 0, 0).unwrap().and_utc());
        log
    }

    #[tokio::test]
    async fn a_log_round_trips_and_a_refresh_writes_only_todays_points() {
        let store = MemorySnapshots::default();
        let mut l = log(20);
        assert!(save(&store, "k", &l, &Base::default()).await.unwrap());
        let (base, back) = load(&store, "k").await.unwrap().unwrap();
        assert_eq!(back, l);
        assert_eq!(base.manifest.as_ref().unwrap().len(), 21, "20 days and the alerts");
        // Today's point changes (later in the day): one part and the head.
        let today = l.history.mailboxes.get_mut("usm_1").unwrap().last_mut().unwrap();
        today.day = Some(Window { sent: 99, ..Window::default() });
        let plan = parts::plan(Item::Health, &base, encode(&l), parts::wall_secs()).unwrap();
        assert_eq!(plan.puts.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["h#2026-11-20"]);
        assert!(save(&store, "k", &l, &base).await.unwrap());
        assert!(!save(&store, "k", &l, &base).await.unwrap(), "stale");
        assert_eq!(load(&store, "k").await.unwrap().unwrap().1, l);
    }

    #[tokio::test]
    async fn a_log_of_the_previous_layout_is_read_then_rewritten_in_parts() {
        let store = MemorySnapshots::default();
        let l = log(3);
        assert!(store.save("k", Item::Health, pack(&l), None).await.unwrap());
        let (base, back) = load(&store, "k").await.unwrap().unwrap();
        assert_eq!((back.clone(), base.version, base.manifest.is_none()), (l.clone(), Some(1), true));
        assert!(save(&store, "k", &back, &base).await.unwrap());
        let (base, again) = load(&store, "k").await.unwrap().unwrap();
        assert_eq!((again, base.version, base.manifest.map(|m| m.len())), (l, Some(2), Some(4)));
    }
}
