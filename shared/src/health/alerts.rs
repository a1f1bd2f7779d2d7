//! Alerts: conditions a person should act on, raised once per episode (when first seen) and
//! cleared when the condition ends. What is checked after each refresh:
//! - a mailbox in `conflict` (warming while an active campaign sends from it) or `stuck`;
//! - a mailbox whose 7-day bounce rate reaches the threshold, over enough messages;
//! - a campaign whose 7-day open rate fell by more than half against the 7 days before, both
//!   over enough messages (a sign that its messages land in spam).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::activity::ledger::Counts;
use crate::activity::{Window, percent};
use crate::dashboard::{MailboxFacts, MailboxStatus};

/// How long alerts are listed.
pub const KEPT_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    MailboxConflict,
    MailboxStuck,
    BounceRate,
    OpenRateDrop,
}

impl AlertKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::MailboxConflict => "mailbox_conflict",
            Self::MailboxStuck => "mailbox_stuck",
            Self::BounceRate => "bounce_rate",
            Self::OpenRateDrop => "open_rate_drop",
        }
    }
}

/// A condition that holds now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub kind: AlertKind,
    /// The mailbox or campaign id.
    pub subject: String,
    /// Its address or name.
    pub name: String,
    /// The figure that crossed the threshold (a rate in percent), if the alert has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub figure: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// What happened, with the figures, and what to do.
    pub message: String,
}

impl Condition {
    /// The episode's key: one alert per kind and subject while it lasts.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.subject)
    }
}

/// An alert as listed at `GET /api/alerts` and published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    #[serde(flatten)]
    pub condition: Condition,
    pub raised_at: DateTime<Utc>,
    /// When the condition ended; `None` while it lasts.
    pub cleared_at: Option<DateTime<Utc>>,
    /// Whether the alert reached the notification topic (retried after each refresh until then).
    pub delivered: bool,
    /// What Slack was told of it.
    #[serde(default)]
    pub chat: Chat,
}

/// What Slack was told of one alert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    /// Its "raised" message was posted (or will never be: see [`Chat::error`]).
    #[serde(default)]
    pub raised: bool,
    #[serde(default)]
    pub resolved: bool,
    /// Why Slack refused it (a 4xx other than 429): shown in the console, not retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The thresholds (`ALERT_BOUNCE_RATE`, `ALERT_MIN_SENT`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Percent.
    pub bounce_rate: f64,
    /// The fewest messages a rate is judged on.
    pub min_sent: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { bounce_rate: 5.0, min_sent: 50 }
    }
}

/// The mailbox conditions of a refresh's facts; rows that lack data are left undecided.
pub fn mailbox_conditions(
    facts: &[MailboxFacts],
    out: &mut Vec<Condition>,
    undecided: &mut BTreeSet<String>,
) {
    for f in facts {
        if !f.missing.is_empty() {
            // Its status may be wrong: whatever was open for it stays open, nothing is raised.
            for kind in [AlertKind::MailboxConflict, AlertKind::MailboxStuck] {
                undecided.insert(format!("{}:{}", kind.as_str(), f.mailbox_id));
            }
            continue;
        }
        let row = f.row();
        let campaigns = row.campaigns.clone().unwrap_or_default().join(", ");
        let condition = match row.status {
            MailboxStatus::Conflict => Condition {
                kind: AlertKind::MailboxConflict,
                subject: f.mailbox_id.clone(),
                name: f.email.clone(),
                figure: None,
                threshold: None,
                message: format!(
                    "{} is warming up in lemwarm while an active campaign sends from it (its campaigns: {campaigns}): pause lemwarm on {} or take it out of the active ones.",
                    f.email, f.email
                ),
            },
            MailboxStatus::Stuck => Condition {
                kind: AlertKind::MailboxStuck,
                subject: f.mailbox_id.clone(),
                name: f.email.clone(),
                figure: None,
                threshold: None,
                message: format!(
                    "{} is neither warming up nor sending for an active campaign: start lemwarm on {} or add it to a running campaign.",
                    f.email, f.email
                ),
            },
            _ => continue,
        };
        out.push(condition);
    }
}

/// A mailbox whose 7-day bounce rate reaches the threshold over at least the minimum of sends.
pub fn bounce_condition(mailbox: &str, email: &str, week: &Window, t: Thresholds) -> Option<Condition> {
    (week.sent >= t.min_sent && week.sent > 0 && week.bounce_rate >= t.bounce_rate).then(|| Condition {
        kind: AlertKind::BounceRate,
        subject: mailbox.to_owned(),
        name: email.to_owned(),
        figure: Some(week.bounce_rate),
        threshold: Some(t.bounce_rate),
        message: format!(
            "{email} bounced {} of {} messages in the last 7 days ({} %, threshold {} %): check the domain of {email} (SPF, DKIM, DMARC, blacklists) and the quality of the leads before it sends more.",
            week.bounced, week.sent, week.bounce_rate, t.bounce_rate
        ),
    })
}

/// A campaign whose open rate over the last 7 days is less than half that of the 7 days
/// before, both over at least the minimum of sends.
pub fn open_drop_condition(
    campaign: &str,
    name: &str,
    week: &Counts,
    before: &Counts,
    t: Thresholds,
) -> Option<Condition> {
    if week.sent < t.min_sent.max(1) || before.sent < t.min_sent.max(1) {
        return None;
    }
    let (now, then) = (
        percent(week.opened as usize, week.sent as usize),
        percent(before.opened as usize, before.sent as usize),
    );
    let half = then / 2.0;
    (now < half).then(|| Condition {
        kind: AlertKind::OpenRateDrop,
        subject: campaign.to_owned(),
        name: name.to_owned(),
        figure: Some(now),
        threshold: Some(half),
        message: format!(
            "Campaign {name}: open rate {now} % over the last 7 days ({} of {}) against {then} % the 7 days before (threshold: half, {half} %): its messages may be landing in spam; check the domain and the mailboxes that send it.",
            week.opened, week.sent
        ),
    })
}

/// What an evaluation changed.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub raised: Vec<Alert>,
    pub cleared: Vec<Alert>,
}

/// Every alert of the last [`KEPT_DAYS`] days, newest first, and the open ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Alerts {
    pub list: Vec<Alert>,
}

impl Alerts {
    /// Compares `now` with the open alerts at `at`: a condition without an open alert raises
    /// one; an open alert whose condition is gone is cleared, unless its key is `undecided`
    /// (the data it depends on could not be read this time).
    pub fn evaluate(
        &mut self,
        now: Vec<Condition>,
        undecided: &BTreeSet<String>,
        at: DateTime<Utc>,
    ) -> Changes {
        let mut changes = Changes::default();
        let holding: BTreeMap<String, Condition> = now.into_iter().map(|c| (c.key(), c)).collect();
        for alert in self.list.iter_mut().filter(|a| a.cleared_at.is_none()) {
            let key = alert.condition.key();
            if !holding.contains_key(&key) && !undecided.contains(&key) {
                alert.cleared_at = Some(at);
                changes.cleared.push(alert.clone());
            }
        }
        let open: BTreeSet<String> =
            self.list.iter().filter(|a| a.cleared_at.is_none()).map(|a| a.condition.key()).collect();
        for (key, condition) in holding {
            if open.contains(&key) {
                continue;
            }
            let alert = Alert {
                id: format!("{key}@{}", at.timestamp()),
                condition,
                raised_at: at,
                cleared_at: None,
                delivered: false,
                chat: Default::default(),
            };
            changes.raised.push(alert.clone());
            self.list.insert(0, alert);
        }
        let oldest = at - Duration::days(KEPT_DAYS);
        self.list.retain(|a| a.cleared_at.is_none() || a.raised_at >= oldest);
        changes
    }

    /// Open alerts not delivered yet (a failed publish is retried).
    pub fn undelivered(&self) -> Vec<Alert> {
        self.list.iter().filter(|a| !a.delivered && a.cleared_at.is_none()).cloned().collect()
    }

    pub fn mark_delivered(&mut self, id: &str) {
        self.list.iter_mut().filter(|a| a.id == id).for_each(|a| a.delivered = true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn facts(id: &str, warming: bool, busy: bool, missing: bool) -> MailboxFacts {
        MailboxFacts {
            email: format!("{id}@acme.io"),
            mailbox_id: id.into(),
            warming,
            busy_with: if busy { vec!["cam_1".into()] } else { vec![] },
            sender_of: vec!["Launch".into()],
            missing: if missing { vec!["leads of cam_2".into()] } else { vec![] },
            performance: None,
        }
    }

    #[test]
    fn an_episode_raises_once_and_clears_when_it_ends() {
        let mut alerts = Alerts::default();
        let conditions = |rows: &[MailboxFacts]| {
            let (mut out, mut undecided) = (vec![], BTreeSet::new());
            mailbox_conditions(rows, &mut out, &mut undecided);
            (out, undecided)
        };
        let (now, undecided) =
            conditions(&[facts("usm_a", true, true, false), facts("usm_b", true, false, false)]);
        let changes = alerts.evaluate(now, &undecided, at(0));
        assert_eq!(changes.raised.len(), 1);
        let raised = &changes.raised[0];
        assert_eq!(raised.condition.kind, AlertKind::MailboxConflict);
        assert!(
            raised.condition.message.contains("pause lemwarm on usm_a@acme.io"),
            "{}",
            raised.condition.message
        );

        let (now, undecided) = conditions(&[facts("usm_a", true, true, false)]);
        assert_eq!(alerts.evaluate(now, &undecided, at(60)), Changes::default(), "still the same episode");

        // Data missing for the row: neither raised nor cleared.
        let (now, undecided) = conditions(&[facts("usm_a", false, false, true)]);
        assert_eq!(alerts.evaluate(now, &undecided, at(120)), Changes::default());

        let (now, undecided) = conditions(&[facts("usm_a", false, true, false)]);
        let changes = alerts.evaluate(now, &undecided, at(180));
        assert_eq!((changes.raised.len(), changes.cleared.len()), (0, 1));
        assert_eq!(alerts.list[0].cleared_at, Some(at(180)));

        let (now, undecided) = conditions(&[facts("usm_a", true, true, false)]);
        assert_eq!(alerts.evaluate(now, &undecided, at(240)).raised.len(), 1, "a new episode");
        assert_eq!(alerts.list.len(), 2);
        assert!(alerts.list[0].raised_at > alerts.list[1].raised_at, "newest first");
        alerts.evaluate(vec![], &BTreeSet::new(), at(240 + 31 * 86_400));
        assert_eq!(alerts.list.len(), 0, "cleared alerts are listed 30 days");
    }

    #[test]
    fn thresholds_need_enough_messages() {
        let t = Thresholds::default();
        let week = |sent: u64, bounced: u64| Window::from(Counts { sent, bounced, ..Counts::default() });
        assert!(bounce_condition("usm_a", "a@x.io", &week(49, 10), t).is_none(), "too few messages");
        assert!(bounce_condition("usm_a", "a@x.io", &week(100, 4), t).is_none());
        let c = bounce_condition("usm_a", "a@x.io", &week(100, 5), t).expect("5 % reaches 5 %");
        assert_eq!((c.figure, c.threshold), (Some(5.0), Some(5.0)));
        assert!(c.message.contains("check the domain of a@x.io"));

        let opens = |sent: u64, opened: u64| Counts { sent, opened, ..Counts::default() };
        assert!(
            open_drop_condition("cam_1", "Launch", &opens(60, 10), &opens(40, 30), t).is_none(),
            "too few before"
        );
        assert!(
            open_drop_condition("cam_1", "Launch", &opens(60, 16), &opens(60, 30), t).is_none(),
            "26.67 % ≥ 25 %"
        );
        let c =
            open_drop_condition("cam_1", "Launch", &opens(60, 14), &opens(60, 30), t).expect("a collapse");
        assert_eq!((c.figure, c.threshold), (Some(23.33), Some(25.0)));
    }
}
