//! Ground truth: both dashboards computed straight from the simulator's team by the rules of the
//! legacy contract (over every user, with the legacy defects fixed). lemdash's answers are
//! compared with these, so correctness tests check against an answer lemdash did not produce.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use lemdash_shared::refresh::{COUNTS_PENDING, Refresher};
use lemdash_shared::snapshot::Board;
use lemlist_sim::Sim;
use lemlist_sim::data::{Activity, Campaign, Lead, Team};

/// One row of `GET /api/campaigns/dashboard`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignRow {
    pub campaign_id: String,
    pub campaign_name: String,
    pub people_count: u64,
    pub companies_count: u64,
    pub people_engaged: u64,
    pub open_rate: f64,
    pub reply_rate: f64,
    pub campaign_status: String,
}

/// One row of `GET /api/mailboxes`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MailboxRow {
    pub email: String,
    pub mailbox_id: Option<String>,
    pub status: String,
    pub campaigns: Option<Vec<String>>,
    /// What lemdash says it lacks for the row: nothing, but while a first sync reads the counts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performance: Option<Performance>,
}

/// One window of a mailbox's performance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Window {
    pub sent: u64,
    pub bounced: u64,
    pub opened: u64,
    pub replied: u64,
    pub bounce_rate: f64,
    pub open_rate: f64,
    pub reply_rate: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Performance {
    #[serde(rename = "7d")]
    pub week: Window,
    #[serde(rename = "30d")]
    pub month: Window,
}

fn is_sendable(lead: &Lead) -> bool {
    lead.state == "readyToSend"
        || matches!(lead.state_system.as_deref(), Some("readyToSend") | Some("inProgress"))
}

fn live_leads(c: &Campaign) -> impl Iterator<Item = &Lead> {
    c.leads.iter().filter(|l| !l.is_paused())
}

/// The legacy's `round(part / whole * 100, 2)`. Rust formats a double with a fixed number of
/// decimals from its exact binary value, ties to even, as Python rounds; parsing gives the
/// nearest double. (lemdash itself rounds with integer arithmetic: two ways to one answer.)
fn rate(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    format!("{:.2}", part as f64 / whole as f64 * 100.0).parse().expect("a formatted number parses")
}

fn name_of(c: &Campaign) -> String {
    c.name.clone().unwrap_or_else(|| "Unnamed Campaign".to_owned())
}

/// The campaigns dashboard: running campaigns in list order.
pub fn campaigns_dashboard(team: &Team) -> Vec<CampaignRow> {
    team.campaigns
        .iter()
        .filter(|c| c.status == "running")
        .map(|c| {
            let live: Vec<&Lead> = live_leads(c).collect();
            let companies: HashSet<&str> = live
                .iter()
                .filter_map(|l| l.company_name.as_deref().or(l.company.as_deref()))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            let leads_with = |kind: &str| {
                team.activities
                    .iter()
                    .filter(|a| a.campaign_id == c.id && a.kind == kind)
                    .map(|a| a.lead_id.as_str())
                    .collect::<HashSet<_>>()
                    .len()
            };
            let engaged = leads_with("emailsSent");
            let ended = !live.is_empty() && !live.iter().any(|l| is_sendable(l));
            CampaignRow {
                campaign_id: c.id.clone(),
                campaign_name: name_of(c),
                people_count: live.len() as u64,
                companies_count: companies.len() as u64,
                people_engaged: engaged as u64,
                open_rate: rate(leads_with("emailsOpened"), engaged),
                reply_rate: rate(leads_with("emailsReplied"), engaged),
                campaign_status: if ended { "ended" } else { "active" }.to_owned(),
            }
        })
        .collect()
}

/// The mailboxes dashboard: every mailbox with an address, of every user.
pub fn mailboxes_dashboard(team: &Team) -> Vec<MailboxRow> {
    // Sender addresses of running campaigns that still have leads to send to.
    let busy: HashSet<&str> = team
        .campaigns
        .iter()
        .filter(|c| c.status == "running" && live_leads(c).any(is_sendable))
        .flat_map(|c| c.senders.iter().filter_map(|s| s.email.as_deref()))
        .collect();
    let mut rows: Vec<MailboxRow> = team
        .users
        .iter()
        .flat_map(|u| &u.mailboxes)
        .filter_map(|m| {
            // Every address campaigns use for this mailbox, in campaign order.
            let used: Vec<&str> = team
                .campaigns
                .iter()
                .flat_map(|c| &c.senders)
                .filter(|s| s.mailbox_id.as_deref() == Some(m.id.as_str()))
                .filter_map(|s| s.email.as_deref())
                .collect();
            let email = used.first().copied().or(m.email.as_deref())?.to_owned();
            let mut addresses: BTreeSet<&str> = used.iter().copied().collect();
            addresses.insert(&email);
            if let Some(own) = m.email.as_deref() {
                addresses.insert(own);
            }
            let in_use = addresses.iter().any(|a| busy.contains(a));
            let status = match (in_use, m.lemwarm_active) {
                (true, true) => "conflict",
                (true, false) => "in use",
                (false, true) => "warming up",
                (false, false) => "stuck",
            };
            let campaigns = matches!(status, "stuck" | "conflict").then(|| {
                team.campaigns
                    .iter()
                    .filter(|c| {
                        c.senders
                            .iter()
                            .filter_map(|s| s.email.as_deref())
                            .any(|e| e == email || Some(e) == m.email.as_deref())
                    })
                    .map(name_of)
                    .collect()
            });
            Some(MailboxRow {
                email,
                mailbox_id: Some(m.id.clone()),
                status: status.to_owned(),
                campaigns,
                missing: vec![],
                performance: None,
            })
        })
        .collect();
    let rank =
        |s: &str| ["stuck", "conflict", "in use", "warming up"].iter().position(|x| *x == s).unwrap_or(4);
    rows.sort_by(|a, b| rank(&a.status).cmp(&rank(&b.status)).then_with(|| a.email.cmp(&b.email)));
    rows
}

/// The crediting rule, written from its statement (docs/mailbox-health.md) rather than from
/// lemdash's code, and applied to one activity at a time: an activity that names its mailbox
/// goes to that mailbox if it is on the dashboard, and to nobody otherwise (it was sent by that
/// mailbox, whatever else it says); one that names none goes to the one mailbox its address
/// belongs to (a mailbox's own address, or one a campaign's sender declares for it, without
/// case; an address two mailboxes claim belongs to none); else, when its campaign has exactly
/// one sending mailbox, to that one; else to nobody.
pub struct Attribution<'t> {
    team: &'t Team,
    /// The mailboxes with a row on the dashboard: the only ones credited.
    rows: BTreeSet<String>,
    /// Every (address, mailbox) claim, as listed: own addresses, then senders' declarations.
    claims: Vec<(String, String)>,
}

impl<'t> Attribution<'t> {
    pub fn new(team: &'t Team) -> Self {
        let rows: BTreeSet<String> =
            mailboxes_dashboard(team).into_iter().filter_map(|r| r.mailbox_id).collect();
        let own = team
            .users
            .iter()
            .flat_map(|u| &u.mailboxes)
            .filter_map(|m| Some((m.email.as_deref()?.to_lowercase(), m.id.clone())));
        let declared = team
            .campaigns
            .iter()
            .flat_map(|c| &c.senders)
            .filter_map(|s| Some((s.email.as_deref()?.to_lowercase(), s.mailbox_id.clone()?)));
        let claims = own.chain(declared).filter(|(_, m)| rows.contains(m)).collect();
        Self { team, rows, claims }
    }

    /// The one dashboard mailbox that claims `address`, if exactly one does.
    fn owner(&self, address: &str) -> Option<String> {
        let address = address.to_lowercase();
        let owners: BTreeSet<&str> =
            self.claims.iter().filter(|(a, _)| *a == address).map(|(_, m)| m.as_str()).collect();
        (owners.len() == 1).then(|| owners.into_iter().next().unwrap_or_default().to_owned())
    }

    /// The campaign's sending mailbox, when it has exactly one: its senders as mailboxes on the
    /// dashboard, by the id they name or else the address they declare.
    fn only_sender(&self, campaign_id: &str) -> Option<String> {
        let campaign = self.team.campaigns.iter().find(|c| c.id == campaign_id)?;
        let sending: BTreeSet<String> = campaign
            .senders
            .iter()
            .filter_map(|s| match &s.mailbox_id {
                Some(m) if self.rows.contains(m) => Some(m.clone()),
                _ => self.owner(s.email.as_deref()?),
            })
            .collect();
        (sending.len() == 1).then(|| sending.into_iter().next().unwrap_or_default())
    }

    /// The mailbox credited with `a`, or `None`: unattributed.
    pub fn of(&self, a: &Activity) -> Option<String> {
        if let Some(named) = &a.send_user_mailbox_id {
            return self.rows.contains(named).then(|| named.clone());
        }
        a.send_user_email.as_deref().and_then(|e| self.owner(e)).or_else(|| self.only_sender(&a.campaign_id))
    }

    /// The dashboard's mailboxes.
    pub fn mailboxes(&self) -> &BTreeSet<String> {
        &self.rows
    }
}

/// Whether the ledger counts `a`, and in which column (0 sent, 1 bounced, 2 first opens,
/// 3 replies).
fn column(a: &Activity) -> Option<usize> {
    match a.kind.as_str() {
        "emailsSent" => Some(0),
        "emailsBounced" => Some(1),
        "emailsOpened" if a.is_first => Some(2),
        "emailsReplied" => Some(3),
        _ => None,
    }
}

fn window(c: [u64; 4]) -> Window {
    let r = |n: u64| rate(n as usize, c[0] as usize);
    Window {
        sent: c[0],
        bounced: c[1],
        opened: c[2],
        replied: c[3],
        bounce_rate: r(c[1]),
        open_rate: r(c[2]),
        reply_rate: r(c[3]),
    }
}

/// Counts per mailbox (and `None`: unattributed) of the activities up to `at` on the UTC days
/// from `from` to `to`.
pub fn counts(
    team: &Team,
    at: DateTime<Utc>,
    from: NaiveDate,
    to: NaiveDate,
) -> BTreeMap<Option<String>, [u64; 4]> {
    let who = Attribution::new(team);
    let mut out: BTreeMap<Option<String>, [u64; 4]> = BTreeMap::new();
    for a in team.activities.iter().filter(|a| a.created_at <= at) {
        let day = a.created_at.date_naive();
        if let Some(col) = column(a)
            && day >= from
            && day <= to
        {
            out.entry(who.of(a)).or_default()[col] += 1;
        }
    }
    out
}

/// The activity credited to `mailbox` on `at`'s UTC day, up to `at`: its history point.
pub fn day_window(team: &Team, at: DateTime<Utc>, mailbox: &str) -> Window {
    let today = at.date_naive();
    window(counts(team, at, today, today).get(&Some(mailbox.to_owned())).copied().unwrap_or_default())
}

/// Every dashboard mailbox's performance over 7 and 30 UTC days ending with `at`'s day, and the
/// unattributed activity.
pub fn performance(team: &Team, at: DateTime<Utc>) -> (BTreeMap<String, Performance>, Performance) {
    let today = at.date_naive();
    let week = counts(team, at, today - Duration::days(6), today);
    let month = counts(team, at, today - Duration::days(29), today);
    let get = |m: &BTreeMap<Option<String>, [u64; 4]>, k: Option<String>| {
        window(m.get(&k).copied().unwrap_or_default())
    };
    let rows = Attribution::new(team).mailboxes().clone();
    let by = rows
        .into_iter()
        .map(|id| {
            (id.clone(), Performance { week: get(&week, Some(id.clone())), month: get(&month, Some(id)) })
        })
        .collect();
    (by, Performance { week: get(&week, None), month: get(&month, None) })
}

/// The mailboxes dashboard as lemdash serves it after a refresh that read up to `at`: the
/// legacy rows with their performance.
pub fn mailboxes_at(team: &Team, at: DateTime<Utc>) -> Vec<MailboxRow> {
    let (by, _) = performance(team, at);
    let mut rows = mailboxes_dashboard(team);
    for r in &mut rows {
        r.performance = r.mailbox_id.as_ref().and_then(|id| by.get(id)).copied();
    }
    rows
}

/// Whether both dashboards `r` serves equal the ground truth of `sim`'s team now, each computed
/// at its snapshot's own `computed_at`; the first difference otherwise.
pub async fn served_exactly(sim: &Sim, r: &Refresher) -> Result<(), String> {
    let team = sim.team();
    for board in Board::ALL {
        let served = r.latest(board).await.map_err(|e| e.to_string())?.ok_or("no snapshot stored")?;
        let got: serde_json::Value = serde_json::from_str(&served.body).map_err(|e| e.to_string())?;
        let want = if served.missing.iter().any(|m| m == COUNTS_PENDING) {
            counts_pending(&team)
        } else {
            expected(&team, board, served.computed_at)
        };
        if got != want {
            let rows = |v: &serde_json::Value| v.as_array().cloned().unwrap_or_default();
            let (got, want) = (rows(&got), rows(&want));
            let first = got.iter().zip(&want).find(|(g, w)| g != w);
            return Err(format!(
                "{board:?}: {} rows served, {} expected; first difference: {first:?}",
                got.len(),
                want.len()
            ));
        }
    }
    Ok(())
}

/// The dashboard `board` as lemdash should serve the snapshot `r` holds now: the truth of
/// `sim`'s team at that snapshot's own `computed_at`, or, for the mailboxes a first sync
/// published before its daily counts, the legacy rows with their performance being computed.
pub async fn expected_for_stored(sim: &Sim, r: &Refresher, board: Board) -> serde_json::Value {
    let served = r.latest(board).await.expect("the store answers").expect("a snapshot is stored");
    if board == Board::Mailboxes && served.missing.iter().any(|m| m == COUNTS_PENDING) {
        return counts_pending(&sim.team());
    }
    expected(&sim.team(), board, served.computed_at)
}

/// What a served `body` of `board` should be (what a test compares it with): the early rows
/// when it is a first sync's mailboxes published before the counts (they say so on each row),
/// else as [`expected_for_stored`]. Decided by the body, so that a later snapshot stored
/// meanwhile does not change the answer.
pub async fn expected_for_body(
    sim: &Sim,
    r: &Refresher,
    board: Board,
    body: &serde_json::Value,
) -> serde_json::Value {
    let pending = |row: &serde_json::Value| {
        row["missing"].as_array().is_some_and(|m| m.iter().any(|m| m == COUNTS_PENDING))
    };
    match body.as_array() {
        Some(rows) if board == Board::Mailboxes && !rows.is_empty() && rows.iter().all(pending) => {
            counts_pending(&sim.team())
        }
        _ => expected_for_stored(sim, r, board).await,
    }
}

/// The mailboxes a first sync publishes before its daily counts: the legacy rows, each saying
/// that its performance is being computed.
pub fn counts_pending(team: &Team) -> serde_json::Value {
    let mut rows = mailboxes_dashboard(team);
    for r in &mut rows {
        r.missing = vec![COUNTS_PENDING.to_owned()];
    }
    serde_json::to_value(rows).expect("rows serialise")
}

/// The dashboard `board` as lemdash should serve it after a refresh that read up to `at`, as
/// JSON.
///
/// # Panics
/// When `board` is the mailboxes and no mailbox sent anything in the 30 days to `at`: a parity
/// check over empty windows compares zeros with zeros and proves nothing (a clock that is not the
/// simulator's does that).
pub fn expected(team: &Team, board: Board, at: DateTime<Utc>) -> serde_json::Value {
    match board {
        Board::Campaigns => serde_json::to_value(campaigns_dashboard(team)).expect("rows serialise"),
        Board::Mailboxes => {
            let rows = mailboxes_at(team, at);
            let sent: u64 = rows.iter().filter_map(|r| r.performance).map(|p| p.month.sent).sum();
            assert!(
                sent > 0,
                "the parity check at {at} compares empty windows: no mailbox sent anything in the 30 \
                 days to it (is lemdash on the simulator's clock?)"
            );
            serde_json::to_value(rows).expect("rows serialise")
        }
    }
}

/// The figures delivered events move, by row: each campaign's engaged, open and reply figures,
/// each mailbox's performance.
pub fn activity_figures(
    campaigns: &serde_json::Value,
    mailboxes: &serde_json::Value,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let mut out = std::collections::BTreeMap::new();
    for row in campaigns.as_array().into_iter().flatten() {
        let figures = serde_json::json!([row["people_engaged"], row["open_rate"], row["reply_rate"]]);
        out.insert(format!("campaign {}", row["campaign_id"]), figures);
    }
    for row in mailboxes.as_array().into_iter().flatten() {
        out.insert(format!("mailbox {}", row["email"]), row["performance"].clone());
    }
    out
}

/// The figures only a campaign's lead export gives, by campaign.
pub fn lead_figures(campaigns: &serde_json::Value) -> std::collections::BTreeMap<String, serde_json::Value> {
    let rows = campaigns.as_array().into_iter().flatten();
    rows.map(|r| {
        let figures = serde_json::json!([r["people_count"], r["companies_count"], r["campaign_status"]]);
        (r["campaign_id"].to_string(), figures)
    })
    .collect()
}

/// `Ok` when `got` has exactly `want`'s rows and values; else each difference, in words.
pub fn compare(
    want: &std::collections::BTreeMap<String, serde_json::Value>,
    got: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<(), String> {
    let differ: Vec<String> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: served {:?}, truth {v}", got.get(k)))
        .collect();
    if differ.is_empty() && got.len() == want.len() { Ok(()) } else { Err(differ.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lemlist_sim::data::{Profile, generate};

    #[test]
    fn campaigns_dashboard_covers_running_campaigns_with_both_statuses() {
        let team = generate(Profile::M, 3);
        let rows = campaigns_dashboard(&team);
        assert_eq!(rows.len(), 12);
        assert!(rows.iter().any(|r| r.campaign_status == "ended"));
        assert!(rows.iter().any(|r| r.campaign_status == "active"));
        assert!(rows.iter().all(|r| (0.0..=100.0).contains(&r.open_rate)));
    }

    #[test]
    fn mailboxes_dashboard_orders_and_leaves_out_addressless_mailboxes() {
        let team = generate(Profile::M, 3);
        let rows = mailboxes_dashboard(&team);
        let with_address = team.users.iter().flat_map(|u| &u.mailboxes).filter(|m| m.email.is_some()).count();
        assert_eq!(rows.len(), with_address);
        let order = ["stuck", "conflict", "in use", "warming up"];
        let ranks: Vec<usize> =
            rows.iter().map(|r| order.iter().position(|s| *s == r.status).unwrap()).collect();
        assert!(ranks.windows(2).all(|w| w[0] <= w[1]));
        assert!(
            rows.iter().all(|r| r.campaigns.is_some() == matches!(r.status.as_str(), "stuck" | "conflict"))
        );
        assert!(rows.iter().any(|r| r.email.starts_with("spare@") && r.status == "stuck"));
    }
}
