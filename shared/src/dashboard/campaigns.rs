//! `GET /api/campaigns/dashboard`: one row per running campaign, in lemlist's list order.

use serde::{Deserialize, Serialize};

use super::fetch::TeamData;
use super::leads::LeadFigures;
use super::{Dashboard, display_name};
use crate::activity::{Seen, percent};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignRow {
    pub campaign_id: String,
    pub campaign_name: String,
    pub people_count: u64,
    pub companies_count: u64,
    pub people_engaged: u64,
    pub open_rate: f64,
    pub reply_rate: f64,
    pub campaign_status: CampaignStatus,
    /// Additive: what could not be fetched for this row; absent when the row is complete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// Whether a running campaign still has leads to send to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CampaignStatus {
    /// Some live lead can still be sent to, or there is no live lead at all.
    Active,
    /// Every live lead is done.
    Ended,
}

/// An activity stream whose rows lack `leadId` cannot be counted by distinct lead: the part is
/// reported missing (its count covers only the rows that have one), never shown as complete.
fn without_lead_ids(
    what: &str,
    campaign_id: &str,
    seen: Option<&Seen>,
    row: &mut Vec<String>,
    all: &mut Vec<String>,
) {
    let Some(seen) = seen else { return };
    let lacking = seen.anonymous();
    if lacking > 0 {
        row.push(what.to_owned());
        all.push(format!("{what} of {campaign_id}: activities without a leadId ({lacking})"));
    }
}

/// One part of a row: its value when fetched, or a note in the row's and the dashboard's
/// `missing` lists.
pub(crate) fn part<'a, T>(
    what: &str,
    campaign_id: &str,
    fetched: Option<&'a super::fetch::Fetched<T>>,
    row: &mut Vec<String>,
    all: &mut Vec<String>,
) -> Option<&'a T> {
    match fetched {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            row.push(what.to_owned());
            all.push(format!("{what} of {campaign_id}: {e}"));
            None
        }
        None => {
            row.push(what.to_owned());
            all.push(format!("{what} of {campaign_id}: not fetched"));
            None
        }
    }
}

/// Builds the campaigns dashboard from fetched data.
pub fn campaigns_dashboard(data: &TeamData) -> Dashboard<CampaignRow> {
    let mut all = Vec::new();
    let rows = data
        .running()
        .map(|c| {
            let mut missing = Vec::new();
            let id = c.id.as_str();
            let leads = part("leads", id, data.leads.get(id), &mut missing, &mut all);
            if let Some(reason) = leads.and_then(|l| l.states_absent.as_ref()) {
                all.push(format!("leads of {id}: {reason}"));
            }
            let sent = part("emailsSent", id, data.sent.get(id), &mut missing, &mut all);
            let opened = part("emailsOpened", id, data.opened.get(id), &mut missing, &mut all);
            let replied = part("emailsReplied", id, data.replied.get(id), &mut missing, &mut all);
            without_lead_ids("emailsSent", id, sent, &mut missing, &mut all);
            without_lead_ids("emailsOpened", id, opened, &mut missing, &mut all);
            without_lead_ids("emailsReplied", id, replied, &mut missing, &mut all);

            let engaged = sent.map_or(0, Seen::leads);
            let mut row = CampaignRow {
                campaign_id: c.id.clone(),
                campaign_name: display_name(c.name.as_deref()),
                people_count: 0,
                companies_count: 0,
                people_engaged: engaged as u64,
                open_rate: percent(opened.map_or(0, Seen::leads), engaged),
                reply_rate: percent(replied.map_or(0, Seen::leads), engaged),
                campaign_status: CampaignStatus::Active,
                missing,
            };
            refold_leads(&mut row, leads);
            row
        })
        .collect();
    Dashboard { rows, missing: all }
}

/// A row's activity figures from its campaign's sets, as [`campaigns_dashboard`] computes them:
/// what a delivered event changes, without reading anything.
pub fn refold(row: &mut CampaignRow, sent: &Seen, opened: &Seen, replied: &Seen) {
    let engaged = sent.leads();
    row.people_engaged = engaged as u64;
    row.open_rate = percent(opened.leads(), engaged);
    row.reply_rate = percent(replied.leads(), engaged);
}

/// The row's lead-derived figures from its campaign's lead figures (`None`: not read, already
/// reported missing), as [`campaigns_dashboard`] computes them: what a campaign's lead export
/// read again changes.
pub fn refold_leads(row: &mut CampaignRow, leads: Option<&LeadFigures>) {
    const LEAD_DERIVED: [&str; 3] = ["people_count", "companies_count", "campaign_status"];
    row.missing.retain(|m| m != "leads" && !LEAD_DERIVED.contains(&m.as_str()));
    let figures = match leads {
        Some(f) if f.states_absent.is_some() => {
            row.missing.splice(0..0, LEAD_DERIVED.map(String::from));
            None
        }
        Some(f) => Some(f),
        None => {
            row.missing.insert(0, "leads".to_owned());
            None
        }
    };
    let figures = figures.cloned().unwrap_or_default();
    row.people_count = figures.live;
    row.companies_count = figures.companies;
    let ended = figures.live > 0 && !figures.sendable;
    row.campaign_status = if ended { CampaignStatus::Ended } else { CampaignStatus::Active };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::leads::lead;
    use crate::lemlist::{Activity, CampaignSummary, LemlistError};

    fn summary(id: &str, status: &str, name: Option<&str>) -> CampaignSummary {
        CampaignSummary {
            id: id.into(),
            name: name.map(str::to_owned),
            status: Some(status.into()),
            created_at: None,
            created_by: None,
            labels: vec![],
        }
    }

    fn activity(kind: &str, lead: &str, i: usize) -> Activity {
        Activity::sample(&format!("act_{kind}{lead}{i}"), kind, Some(lead), None)
    }

    fn data_with(
        leads: Vec<crate::lemlist::Lead>,
        sent: &[&str],
        opened: &[&str],
        replied: &[&str],
    ) -> TeamData {
        let mut d = TeamData {
            campaigns: vec![summary("cam_1", "running", None), summary("cam_2", "paused", Some("P"))],
            ..TeamData::default()
        };
        d.leads.insert("cam_1".into(), Ok(LeadFigures::of(&leads)));
        let acts = |kind: &str, ids: &[&str]| {
            let rows: Vec<Activity> = ids.iter().enumerate().map(|(i, l)| activity(kind, l, i)).collect();
            Ok(Seen::of(&rows))
        };
        d.sent.insert("cam_1".into(), acts("emailsSent", sent));
        d.opened.insert("cam_1".into(), acts("emailsOpened", opened));
        d.replied.insert("cam_1".into(), acts("emailsReplied", replied));
        d
    }

    #[test]
    fn counts_rates_and_status_follow_the_contract() {
        let leads = vec![
            lead("emailsSent", Some("done"), Some(" Acme "), None),
            lead("emailsOpened", Some("done"), Some("Acme"), None),
            lead("emailsOpened", Some("done"), None, Some("Globex")),
            lead("paused", Some("inProgress"), Some("Paused Co"), None),
            lead("done", Some("done"), Some("  "), None),
        ];
        // Repeat opens of one lead count once.
        let d = data_with(leads, &["a", "b", "c"], &["a", "a", "b"], &["c"]);
        let rows = campaigns_dashboard(&d).rows;
        assert_eq!(rows.len(), 1, "running campaigns only");
        let r = &rows[0];
        assert_eq!(r.campaign_name, "Unnamed Campaign");
        assert_eq!((r.people_count, r.companies_count, r.people_engaged), (4, 2, 3));
        assert_eq!((r.open_rate, r.reply_rate), (66.67, 33.33));
        assert_eq!(r.campaign_status, CampaignStatus::Ended, "no live lead left to send to");
        assert!(r.missing.is_empty());
    }

    #[test]
    fn no_leads_all_paused_and_zero_sends_are_active_with_zero_rates() {
        let rows = campaigns_dashboard(&data_with(vec![], &[], &[], &[])).rows;
        assert_eq!(
            (rows[0].people_count, rows[0].open_rate, rows[0].campaign_status),
            (0, 0.0, CampaignStatus::Active)
        );
        let paused = vec![lead("paused", None, Some("A"), None), lead("x", Some("paused"), Some("B"), None)];
        let rows = campaigns_dashboard(&data_with(paused, &[], &[], &[])).rows;
        assert_eq!(
            (rows[0].people_count, rows[0].companies_count, rows[0].campaign_status),
            (0, 0, CampaignStatus::Active)
        );
        let busy = vec![lead("emailsSent", Some("inProgress"), None, None)];
        assert_eq!(
            campaigns_dashboard(&data_with(busy, &["a"], &[], &[])).rows[0].campaign_status,
            CampaignStatus::Active
        );
    }

    #[test]
    fn leads_without_states_and_activities_without_lead_ids_are_missing_not_zero_or_ended() {
        let documented = |i: usize| crate::lemlist::Lead {
            state: None,
            last_state: Some("emailsSent".into()),
            id: Some(format!("lea_{i}")),
            ..lead("x", None, Some("Acme"), None)
        };
        let mut d = data_with((0..3).map(documented).collect(), &["a", "b"], &["a"], &[]);
        if let Some(Ok(opened)) = d.opened.get_mut("cam_1") {
            opened.add(&Activity { lead_id: None, ..activity("emailsOpened", "x", 9) });
        }
        let dash = campaigns_dashboard(&d);
        let row = &dash.rows[0];
        assert_eq!(row.missing, ["people_count", "companies_count", "campaign_status", "emailsOpened"]);
        assert_eq!(
            (row.people_count, row.companies_count, row.campaign_status),
            (0, 0, CampaignStatus::Active)
        );
        assert!(
            dash.missing[0].starts_with("leads of cam_1: lead states absent from lemlist's export"),
            "{:?}",
            dash.missing
        );
        assert_eq!(dash.missing[1], "emailsOpened of cam_1: activities without a leadId (1)");
        assert_eq!((row.people_engaged, row.open_rate), (2, 50.0), "the rows with an id still count");
    }

    #[test]
    fn a_failed_part_keeps_the_row_and_says_what_is_missing() {
        let mut d = data_with(vec![lead("readyToSend", None, None, None)], &["a"], &["a"], &[]);
        d.replied.insert(
            "cam_1".into(),
            Err(LemlistError::Status { endpoint: "GET /activities", status: 503, body: String::new() }.into()),
        );
        let dash = campaigns_dashboard(&d);
        assert_eq!(dash.rows.len(), 1);
        assert_eq!(dash.rows[0].missing, vec!["emailsReplied"]);
        assert_eq!(dash.rows[0].open_rate, 100.0);
        assert!(dash.missing[0].starts_with("emailsReplied of cam_1: lemlist answered 503"));
        let json = serde_json::to_value(&dash.rows[0]).unwrap();
        assert_eq!(json["missing"], serde_json::json!(["emailsReplied"]));
    }
}
