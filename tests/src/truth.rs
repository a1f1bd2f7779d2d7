//! Ground truth: both dashboards computed straight from the simulator's team by the rules of the
//! legacy contract (over every user, with the legacy defects fixed). lemdash's answers are
//! compared with these, so correctness tests check against an answer lemdash did not produce.

use std::collections::{BTreeSet, HashSet};

use serde::Serialize;

use lemlist_sim::data::{Campaign, Lead, Team};

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
            Some(MailboxRow { email, mailbox_id: Some(m.id.clone()), status: status.to_owned(), campaigns })
        })
        .collect();
    let rank =
        |s: &str| ["stuck", "conflict", "in use", "warming up"].iter().position(|x| *x == s).unwrap_or(4);
    rows.sort_by(|a, b| rank(&a.status).cmp(&rank(&b.status)).then_with(|| a.email.cmp(&b.email)));
    rows
}

/// The dashboard `board` as lemdash should serve it, as JSON.
pub fn expected(team: &Team, board: lemdash_shared::snapshot::Board) -> serde_json::Value {
    use lemdash_shared::snapshot::Board;
    match board {
        Board::Campaigns => serde_json::to_value(campaigns_dashboard(team)).expect("rows serialise"),
        Board::Mailboxes => serde_json::to_value(mailboxes_dashboard(team)).expect("rows serialise"),
        Board::Sync => panic!("the sync state is not a dashboard"),
    }
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
