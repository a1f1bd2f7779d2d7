//! Mailbox health beyond the legacy dashboards, built on the activity feeds the incremental
//! sync reads anyway: per-mailbox performance ([`performance`]) from daily counts kept in the
//! sync state ([`ledger`]), a daily history of campaigns and mailboxes ([`history`]), and
//! alerts raised once per episode ([`alerts`]) and delivered ([`notify`]).
//!
//! Days are UTC days. The 7- and 30-day windows are whole days ending with the day of the
//! refresh (today included, so today counts only so far).
//!
//! [`assess`] is the pure step a refresh runs once its dashboards are computed.

pub mod alerts;
pub mod history;
pub mod notify;
pub mod performance;
pub mod slack;
pub mod stored;
pub mod trends;

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::activity::ledger::{self, Ledger};
use crate::activity::{Performance, Window, first_day};
use crate::dashboard::{CampaignRow, MailboxFacts};
use alerts::{Alerts, Changes, Condition, Thresholds};
use history::{CampaignPoint, History, MailboxPoint};
use performance::{Senders, totals};

/// A key's history and alerts: one stored document (`health`), rewritten by each refresh.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthLog {
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub history: History,
    #[serde(default)]
    pub alerts: Alerts,
}

/// What a refresh knows when it assesses health.
pub struct Inputs<'a> {
    pub at: DateTime<Utc>,
    /// The sync state's counts; `None` without a sync state (`SYNC_MODE=full`), and then no
    /// performance is shown and no rate is judged.
    pub ledger: Option<&'a Ledger>,
    /// Whether this refresh read every feed: when not, rates are shown but not judged.
    pub feeds_complete: bool,
    pub senders: &'a Senders,
    pub campaigns: &'a [CampaignRow],
    /// Every campaign's name, by id (for the alerts of campaigns that are not running).
    pub names: &'a HashMap<String, String>,
    pub thresholds: Thresholds,
}

/// What [`assess`] gives the refresh.
#[derive(Debug, Default)]
pub struct Assessment {
    /// Activity no mailbox could be credited with; `None` without counts.
    pub unattributed: Option<Performance>,
    pub changes: Changes,
}

/// Fills each mailbox's performance, records today's history points and evaluates the alerts.
pub fn assess(log: &mut HealthLog, facts: &mut [MailboxFacts], inputs: Inputs<'_>) -> Assessment {
    let today: NaiveDate = inputs.at.date_naive();
    facts.iter_mut().for_each(|f| f.performance = None);
    let counted = inputs.ledger.map(|ledger| fill_performance(facts, ledger, inputs.senders, today));
    record_points(log, facts, &inputs, today, counted.as_ref().map(|c| &c.today));
    let (mut now, mut undecided): (Vec<Condition>, BTreeSet<String>) = (vec![], BTreeSet::new());
    alerts::mailbox_conditions(facts, &mut now, &mut undecided);
    match (inputs.ledger, &counted) {
        (Some(ledger), Some(counted)) if inputs.feeds_complete => {
            now.extend(rate_conditions(facts, ledger, counted, &inputs, today));
        }
        _ => {
            // Rates could not be judged this time: their episodes stay as they are.
            let rates = [alerts::AlertKind::BounceRate, alerts::AlertKind::OpenRateDrop];
            let open = log.alerts.list.iter().filter(|a| rates.contains(&a.condition.kind));
            undecided.extend(open.map(|a| a.condition.key()));
        }
    }
    let changes = log.alerts.evaluate(now, &undecided, inputs.at);
    log.updated_at = Some(inputs.at);
    Assessment { unattributed: counted.map(|c| c.unattributed), changes }
}

/// At a fold of delivered events: the rates judged on the counts the events moved, `facts`
/// carrying the performance just refilled. Only raises: deliveries may have been dropped (the
/// next refresh finds them), so an open alert is cleared by a refresh, on complete counts, never
/// here; neither is any other kind of alert judged (their data was not read).
pub fn raise_rates(log: &mut HealthLog, facts: &[MailboxFacts], inputs: Inputs<'_>) -> Changes {
    let at = inputs.at;
    raise(log, rates_holding(facts, inputs), at)
}

/// The rate conditions that hold on the counts (none without counts): what a fold may raise.
/// Empty means nothing to raise, and the stored alerts need not be read.
pub fn rates_holding(facts: &[MailboxFacts], inputs: Inputs<'_>) -> Vec<Condition> {
    let Some(ledger) = inputs.ledger else { return vec![] };
    let today = inputs.at.date_naive();
    let mut rows = facts.to_vec();
    let counted = fill_performance(&mut rows, ledger, inputs.senders, today);
    rate_conditions(&rows, ledger, &counted, &inputs, today)
}

/// Raises the alerts of `holding` that are not open, clearing none.
pub fn raise(log: &mut HealthLog, holding: Vec<Condition>, at: DateTime<Utc>) -> Changes {
    let open = log.alerts.list.iter().filter(|a| a.cleared_at.is_none()).map(|a| a.condition.key()).collect();
    log.alerts.evaluate(holding, &open, at)
}

/// Each mailbox's performance from the counts again (a delivered event's change), credited
/// by `senders`: what no mailbox could be credited with.
pub fn refill(
    facts: &mut [MailboxFacts],
    ledger: &Ledger,
    senders: &Senders,
    today: NaiveDate,
) -> Performance {
    fill_performance(facts, ledger, senders, today).unattributed
}

/// What the counts gave: today's by mailbox, the week's by campaign, the unattributed.
struct Counted {
    today: HashMap<String, ledger::Counts>,
    week_by_campaign: HashMap<String, ledger::Counts>,
    unattributed: Performance,
}

/// Each mailbox's 7- and 30-day performance from the counts.
fn fill_performance(
    facts: &mut [MailboxFacts],
    ledger: &Ledger,
    senders: &Senders,
    today: NaiveDate,
) -> Counted {
    let week = totals(ledger, senders, first_day(today, 7), today);
    let month = totals(ledger, senders, first_day(today, 30), today);
    let (by_mailbox, unattributed) = performance::performance(senders, &week, &month);
    for f in facts.iter_mut() {
        f.performance = by_mailbox.get(&f.mailbox_id).copied();
    }
    Counted {
        today: totals(ledger, senders, today, today).mailboxes,
        week_by_campaign: week.campaigns,
        unattributed,
    }
}

/// Today's points: every campaign's row, every mailbox's status and (with counts) its day.
fn record_points(
    log: &mut HealthLog,
    facts: &[MailboxFacts],
    inputs: &Inputs<'_>,
    today: NaiveDate,
    day: Option<&HashMap<String, ledger::Counts>>,
) {
    let campaign_points =
        inputs.campaigns.iter().map(|r| (r.campaign_id.clone(), CampaignPoint::of(today, r)));
    let mailbox_points: Vec<(String, MailboxPoint)> = facts
        .iter()
        .map(|f| {
            let counts = day.map(|d| Window::from(d.get(&f.mailbox_id).copied().unwrap_or_default()));
            (f.mailbox_id.clone(), MailboxPoint { date: today, status: f.row().status, day: counts })
        })
        .collect();
    log.history.record(today, campaign_points, mailbox_points);
}

/// The rates judged on complete counts: each mailbox's 7-day bounce rate, each campaign's open
/// rate against the week before.
fn rate_conditions(
    facts: &[MailboxFacts],
    ledger: &Ledger,
    counted: &Counted,
    inputs: &Inputs<'_>,
    today: NaiveDate,
) -> Vec<Condition> {
    let t = inputs.thresholds;
    let mut now = Vec::new();
    for f in facts {
        if let Some(p) = &f.performance {
            now.extend(alerts::bounce_condition(&f.mailbox_id, &f.email, &p.week, t));
        }
    }
    let before_end = first_day(today, 7) - chrono::Duration::days(1);
    let before = totals(ledger, inputs.senders, first_day(before_end, 7), before_end).campaigns;
    for (id, counts) in &counted.week_by_campaign {
        let Some(previous) = before.get(id) else { continue };
        let name = inputs.names.get(id).cloned().unwrap_or_else(|| id.clone());
        now.extend(alerts::open_drop_condition(id, &name, counts, previous, t));
    }
    now
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::Feed;
    use crate::activity::ledger::Tick;

    fn facts(id: &str, busy: bool) -> MailboxFacts {
        MailboxFacts {
            email: format!("{id}@acme.io"),
            mailbox_id: id.into(),
            warming: false,
            busy_with: if busy { vec!["cam_1".into()] } else { vec![] },
            sender_of: vec![],
            missing: vec![],
            performance: None,
        }
    }

    #[test]
    fn a_refresh_fills_the_rows_records_the_day_and_raises_what_holds() {
        let at: DateTime<Utc> = "2026-11-30T12:00:00Z".parse().unwrap();
        let mut ledger = Ledger::default();
        for i in 0..60 {
            let source = "cam_1|m:usm_a".to_owned();
            ledger.add(Tick { id: format!("s{i}"), at: Some(at), feed: Feed::Sent, source: source.clone() });
            if i < 6 {
                ledger.add(Tick { id: format!("b{i}"), at: Some(at), feed: Feed::Bounced, source });
            }
        }
        let senders = Senders::new([("usm_a", Some("usm_a@acme.io")), ("usm_b", None)], []);
        let mut rows = vec![facts("usm_a", true), facts("usm_b", false)];
        let names = HashMap::new();
        let inputs = |ledger| Inputs {
            at,
            ledger,
            feeds_complete: true,
            senders: &senders,
            campaigns: &[],
            names: &names,
            thresholds: Thresholds::default(),
        };
        let mut log = HealthLog::default();
        let out = assess(&mut log, &mut rows, inputs(Some(&ledger)));
        assert_eq!(rows[0].performance.unwrap().week.bounce_rate, 10.0);
        assert_eq!(rows[1].performance.unwrap().month.sent, 0);
        assert_eq!(out.unattributed.unwrap(), Performance::default());
        let kinds: Vec<alerts::AlertKind> = out.changes.raised.iter().map(|a| a.condition.kind).collect();
        assert_eq!(kinds, vec![alerts::AlertKind::BounceRate, alerts::AlertKind::MailboxStuck]);
        assert_eq!(log.history.mailboxes["usm_a"][0].day.unwrap().sent, 60);

        // Without counts: no performance, no day's activity, and the bounce episode stays open.
        let out = assess(&mut log, &mut rows, inputs(None));
        assert!(rows.iter().all(|r| r.performance.is_none()) && out.unattributed.is_none());
        assert_eq!(log.history.mailboxes["usm_a"][0].day, None, "today's point replaced");
        assert_eq!(out.changes, alerts::Changes::default());

        // At a fold: a bounce rate over the threshold raises its alert; a rate back under it
        // clears nothing (a delivery may be missing); other kinds are not judged.
        let mut log = HealthLog::default();
        let raised = raise_rates(&mut log, &rows, inputs(Some(&ledger)));
        let kinds: Vec<alerts::AlertKind> = raised.raised.iter().map(|a| a.condition.kind).collect();
        assert_eq!(kinds, vec![alerts::AlertKind::BounceRate]);
        let mut more = ledger.clone();
        for i in 60..600 {
            let source = "cam_1|m:usm_a".to_owned();
            more.add(Tick { id: format!("s{i}"), at: Some(at), feed: Feed::Sent, source });
        }
        let later = raise_rates(&mut log, &rows, inputs(Some(&more)));
        assert_eq!(later, alerts::Changes::default(), "1 % now, but the fold does not clear");
        assert_eq!(log.alerts.list.iter().filter(|a| a.cleared_at.is_none()).count(), 1);
    }
}
