//! The windows a mailbox's performance is shown over: 7 and 30 whole UTC days, today included,
//! each with its counts and their rates per message sent.

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use super::ledger::Counts;
use super::rate::percent;

/// The figures of one window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub sent: u64,
    pub bounced: u64,
    pub opened: u64,
    pub replied: u64,
    /// Per message sent, in percent, rounded as Python's `round(x, 2)`; 0 with no sends.
    pub bounce_rate: f64,
    pub open_rate: f64,
    pub reply_rate: f64,
}

impl From<Counts> for Window {
    fn from(c: Counts) -> Self {
        let rate = |n: u64| percent(n as usize, c.sent as usize);
        Self {
            sent: c.sent,
            bounced: c.bounced,
            opened: c.opened,
            replied: c.replied,
            bounce_rate: rate(c.bounced),
            open_rate: rate(c.opened),
            reply_rate: rate(c.replied),
        }
    }
}

/// The two windows a mailbox row shows: 7 and 30 whole UTC days, today included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Performance {
    #[serde(rename = "7d")]
    pub week: Window,
    #[serde(rename = "30d")]
    pub month: Window,
}

/// The first day of the window of `days` days ending with `today`.
pub fn first_day(today: NaiveDate, days: i64) -> NaiveDate {
    today - Duration::days(days - 1)
}
