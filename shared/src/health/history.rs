//! Daily history: a point per running campaign (its dashboard row) and per mailbox (its status
//! and the day's performance) for each UTC day a refresh ran, the day's point being the last
//! refresh of that day. Kept [`KEPT_DAYS`] days.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::activity::Window;
use crate::dashboard::{CampaignRow, CampaignStatus, MailboxStatus};

/// How long points are kept.
pub const KEPT_DAYS: i64 = 90;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignPoint {
    pub date: NaiveDate,
    pub people_count: u64,
    pub companies_count: u64,
    pub people_engaged: u64,
    pub open_rate: f64,
    pub reply_rate: f64,
    pub campaign_status: CampaignStatus,
    /// What could not be read for this point: its figures may be short.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

impl CampaignPoint {
    pub fn of(date: NaiveDate, row: &CampaignRow) -> Self {
        Self {
            date,
            people_count: row.people_count,
            companies_count: row.companies_count,
            people_engaged: row.people_engaged,
            open_rate: row.open_rate,
            reply_rate: row.reply_rate,
            campaign_status: row.campaign_status,
            missing: row.missing.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailboxPoint {
    pub date: NaiveDate,
    pub status: MailboxStatus,
    /// The day's activity, credited as the performance windows are; absent without a sync
    /// state (`SYNC_MODE=full`).
    #[serde(flatten)]
    pub day: Option<Window>,
}

/// Points by campaign id and by mailbox id, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub campaigns: BTreeMap<String, Vec<CampaignPoint>>,
    pub mailboxes: BTreeMap<String, Vec<MailboxPoint>>,
}

trait Dated {
    fn date(&self) -> NaiveDate;
}

impl Dated for CampaignPoint {
    fn date(&self) -> NaiveDate {
        self.date
    }
}

impl Dated for MailboxPoint {
    fn date(&self) -> NaiveDate {
        self.date
    }
}

/// Adds `point` to `points`, replacing a point of the same day.
fn put<P: Dated>(points: &mut Vec<P>, point: P) {
    match points.last_mut() {
        Some(last) if last.date() == point.date() => *last = point,
        _ => {
            points.push(point);
            points.sort_by_key(Dated::date);
        }
    }
}

impl History {
    /// Records today's points, and forgets the points older than [`KEPT_DAYS`] days.
    pub fn record(
        &mut self,
        today: NaiveDate,
        campaigns: impl IntoIterator<Item = (String, CampaignPoint)>,
        mailboxes: impl IntoIterator<Item = (String, MailboxPoint)>,
    ) {
        for (id, point) in campaigns {
            put(self.campaigns.entry(id).or_default(), point);
        }
        for (id, point) in mailboxes {
            put(self.mailboxes.entry(id).or_default(), point);
        }
        let first = today - Duration::days(KEPT_DAYS - 1);
        self.campaigns.values_mut().for_each(|p| p.retain(|p| p.date >= first));
        self.mailboxes.values_mut().for_each(|p| p.retain(|p| p.date >= first));
        self.campaigns.retain(|_, p| !p.is_empty());
        self.mailboxes.retain(|_, p| !p.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(date: &str, status: MailboxStatus, sent: u64) -> MailboxPoint {
        MailboxPoint { date: date.parse().unwrap(), status, day: Some(Window { sent, ..Window::default() }) }
    }

    #[test]
    fn the_store_keeps_what_the_history_keeps() {
        use crate::snapshot::{Item, dynamo::HEALTH_KEEP_DAYS, parts::part_keep_secs};
        assert!(KEPT_DAYS as u64 <= HEALTH_KEEP_DAYS, "a whole history document");
        assert!(KEPT_DAYS as u64 * 24 * 3600 < part_keep_secs(Item::Health), "its daily parts");
    }

    #[test]
    fn a_day_keeps_its_last_point_and_old_days_go() {
        let mut h = History::default();
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        h.record(day("2026-09-01"), [], [("usm_a".into(), point("2026-09-01", MailboxStatus::InUse, 1))]);
        h.record(day("2026-11-29"), [], [("usm_a".into(), point("2026-11-29", MailboxStatus::InUse, 2))]);
        h.record(day("2026-11-29"), [], [("usm_a".into(), point("2026-11-29", MailboxStatus::Stuck, 3))]);
        h.record(day("2026-11-30"), [], [("usm_a".into(), point("2026-11-30", MailboxStatus::Stuck, 4))]);
        let points = &h.mailboxes["usm_a"];
        assert_eq!(points.len(), 2, "the 1st of September is more than 90 days back");
        assert_eq!(
            (points[0].day.unwrap().sent, points[0].status),
            (3, MailboxStatus::Stuck),
            "the day's last"
        );
        let json = serde_json::to_value(&points[1]).unwrap();
        assert_eq!(json["date"], "2026-11-30");
        assert_eq!(json["status"], "stuck");
        assert_eq!(json["sent"], 4);
    }
}
