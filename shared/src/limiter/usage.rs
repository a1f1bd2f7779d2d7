//! What the key's budget went to over the last hour, minute by minute: lemdash's requests by
//! class, its 429s, and what the team's other tools used as the answers' headers showed it
//! ([`super::others`]). Each process adds what its client sent since it last added; the sum is
//! stored beside the snapshots, because in AWS the API functions that show it share no memory
//! with the refresh that spends most of it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Minutes kept and shown.
pub const KEPT_MINUTES: i64 = 60;

/// lemlist's budget per minute: 20 requests per 2-second window.
pub const LIMIT_PER_MINUTE: u64 = 600;

/// One minute of the key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Minute {
    pub interactive: u64,
    pub scheduled: u64,
    pub background: u64,
    pub rate_limited: u64,
    /// The other tools' requests in this minute, estimated from `X-RateLimit-Remaining` while
    /// lemdash was calling; `None` when no answer of that minute said.
    pub others: Option<u64>,
}

/// The last hour of the key, by the minute (Unix minutes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub minutes: BTreeMap<i64, Minute>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Usage {
    /// Adds what a client sent since it last added (per class, in [`crate::limiter::Class::ALL`]'s
    /// order, and its 429s) to the minute of `at`, with its estimate of the others' requests
    /// per 2-second window.
    pub fn add(
        &mut self,
        at: DateTime<Utc>,
        by_class: [u64; 3],
        rate_limited: u64,
        others_per_window: Option<f64>,
    ) {
        let minute = self.minutes.entry(at.timestamp().div_euclid(60)).or_default();
        let [interactive, scheduled, background] = by_class;
        minute.interactive += interactive;
        minute.scheduled += scheduled;
        minute.background += background;
        minute.rate_limited += rate_limited;
        if let Some(per_window) = others_per_window {
            // 30 windows a minute; the largest estimate of the minute stands.
            let estimate = (per_window * 30.0).round().max(0.0) as u64;
            minute.others = Some(minute.others.map_or(estimate, |o| o.max(estimate)));
        }
        self.updated_at = Some(self.updated_at.map_or(at, |u| u.max(at)));
        let oldest = at.timestamp().div_euclid(60) - KEPT_MINUTES;
        self.minutes.retain(|m, _| *m > oldest);
    }

    /// The last hour before `now`, every minute listed (zeros where nothing was sent), with
    /// its totals.
    pub fn view(&self, now: DateTime<Utc>) -> BudgetView {
        let last = now.timestamp().div_euclid(60);
        let minutes: Vec<MinuteView> = (last - KEPT_MINUTES + 1..=last)
            .map(|m| MinuteView {
                minute: DateTime::from_timestamp(m * 60, 0).unwrap_or_default(),
                figures: self.minutes.get(&m).copied().unwrap_or_default(),
            })
            .collect();
        let mut totals = Minute::default();
        for m in &minutes {
            let f = &m.figures;
            totals.interactive += f.interactive;
            totals.scheduled += f.scheduled;
            totals.background += f.background;
            totals.rate_limited += f.rate_limited;
            if let Some(o) = f.others {
                totals.others = Some(totals.others.unwrap_or_default() + o);
            }
        }
        BudgetView { as_of: self.updated_at, limit_per_minute: LIMIT_PER_MINUTE, minutes, totals }
    }
}

/// `GET /api/budget`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetView {
    /// When a process last added its figures (`None`: never).
    pub as_of: Option<DateTime<Utc>>,
    pub limit_per_minute: u64,
    /// The last [`KEPT_MINUTES`], oldest first.
    pub minutes: Vec<MinuteView>,
    pub totals: Minute,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinuteView {
    pub minute: DateTime<Utc>,
    #[serde(flatten)]
    pub figures: Minute,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn minutes_add_up_and_the_hour_rolls() {
        let mut u = Usage::default();
        u.add(at(0), [1, 10, 0], 0, None);
        u.add(at(5), [2, 0, 3], 1, Some(2.0));
        u.add(at(10), [0, 1, 0], 0, Some(1.0));
        let v = u.view(at(20));
        assert_eq!(v.minutes.len(), 60);
        let last = v.minutes.last().unwrap().figures;
        assert_eq!(
            last,
            Minute { interactive: 3, scheduled: 11, background: 3, rate_limited: 1, others: Some(60) }
        );
        assert_eq!((v.totals.scheduled, v.totals.others), (11, Some(60)));
        assert_eq!(v.as_of, Some(at(10)));
        // An hour later that minute is gone from the view, and from the store at the next add.
        assert_eq!(u.view(at(3700)).totals, Minute::default());
        u.add(at(3700), [0, 2, 0], 0, None);
        assert_eq!(u.minutes.len(), 1);
        assert_eq!(u.view(at(3700)).totals.scheduled, 2);
    }
}
