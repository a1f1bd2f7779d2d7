//! Each campaign's last 30 days, per UTC day: messages sent, first opens and replies, from the
//! daily counts the sync keeps (the same counts as the mailboxes' performance). The console
//! draws them as the campaigns table's small charts.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use crate::activity::ledger::Ledger;

/// Days in a trend, today included.
pub const TREND_DAYS: i64 = 30;

/// `GET /api/trends`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Trends {
    /// Every activity up to this instant is counted (`None`: nothing counted yet).
    pub as_of: Option<DateTime<Utc>>,
    /// The days, oldest first; each series has one figure per day.
    pub days: Vec<NaiveDate>,
    /// Campaign id → its series. A campaign with no activity in the 30 days is not listed.
    pub campaigns: BTreeMap<String, Series>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Series {
    pub sent: Vec<u32>,
    pub opened: Vec<u32>,
    pub replied: Vec<u32>,
}

/// The 30 days ending with `today`, per campaign (every source of a campaign added up: the
/// mailbox an activity names does not matter here).
pub fn of(ledger: &Ledger, today: NaiveDate, as_of: Option<DateTime<Utc>>) -> Trends {
    let first = today - Duration::days(TREND_DAYS - 1);
    let days: Vec<NaiveDate> = first.iter_days().take(TREND_DAYS as usize).collect();
    let mut campaigns: BTreeMap<String, Series> = BTreeMap::new();
    for (source, by_day) in &ledger.days {
        let campaign = source.split('|').next().unwrap_or_default();
        if campaign.is_empty() {
            continue;
        }
        for (day, counts) in by_day.range(first..=today) {
            let i = (*day - first).num_days() as usize;
            let s = campaigns.entry(campaign.to_owned()).or_insert_with(|| Series {
                sent: vec![0; days.len()],
                opened: vec![0; days.len()],
                replied: vec![0; days.len()],
            });
            let [sent, opened, replied, _bounced] = *counts;
            s.sent[i] += sent;
            s.opened[i] += opened;
            s.replied[i] += replied;
        }
    }
    Trends { as_of, days, campaigns }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: &str) -> NaiveDate {
        d.parse().unwrap()
    }

    #[test]
    fn sources_add_up_per_campaign_and_day_within_the_30_days() {
        let mut ledger = Ledger::default();
        let mut put = |source: &str, d: &str, counts: [u32; 4]| {
            ledger.days.entry(source.into()).or_default().insert(day(d), counts);
        };
        put("cam_a|m:usm_1", "2026-03-30", [5, 2, 1, 0]);
        put("cam_a|e:x@y.z", "2026-03-30", [1, 1, 0, 1]);
        put("cam_a|", "2026-03-01", [7, 0, 0, 0]);
        put("cam_a|", "2026-02-28", [9, 9, 9, 9]); // 31 days before: out
        put("cam_b|", "2026-03-02", [0, 3, 0, 0]);
        put("|", "2026-03-30", [4, 4, 4, 4]); // no campaign
        let t = of(&ledger, day("2026-03-30"), None);
        assert_eq!((t.days.len(), t.days[0], t.days[29]), (30, day("2026-03-01"), day("2026-03-30")));
        let a = &t.campaigns["cam_a"];
        assert_eq!((a.sent[29], a.opened[29], a.replied[29]), (6, 3, 1));
        assert_eq!((a.sent[0], a.sent.iter().sum::<u32>()), (7, 13));
        assert_eq!(t.campaigns["cam_b"].opened[1], 3);
        assert_eq!(t.campaigns.len(), 2);
    }
}
