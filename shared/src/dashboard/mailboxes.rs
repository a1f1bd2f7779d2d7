//! `GET /api/mailboxes`: one row per mailbox of every team member, stuck first.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::fetch::TeamData;
use super::{Dashboard, display_name};
use crate::activity::Performance;
use crate::lemlist::{CampaignDetail, Mailbox};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailboxRow {
    /// The address campaigns send as for this mailbox, else the mailbox's own.
    pub email: String,
    pub mailbox_id: Option<String>,
    pub status: MailboxStatus,
    /// For `"stuck"` and `"conflict"` only: the campaigns (any status) that send from it.
    pub campaigns: Option<Vec<String>>,
    /// Additive: what could not be fetched that bears on this row; absent when complete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Additive: messages sent, bounces, first opens and replies over 7 and 30 UTC days, with
    /// their rates per message sent ([`crate::activity::window`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance: Option<Performance>,
}

/// What a mailbox is doing, in the legacy's words. The order is the dashboard's: the mailboxes
/// that need a person first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MailboxStatus {
    /// Neither warming nor used by an active campaign: nobody is looking after it.
    #[serde(rename = "stuck")]
    Stuck,
    /// Warming while an active campaign sends from it.
    #[serde(rename = "conflict")]
    Conflict,
    #[serde(rename = "in use")]
    InUse,
    #[serde(rename = "warming up")]
    WarmingUp,
}

/// What a mailbox row is computed from, kept with stored snapshots so that an action (lemwarm
/// started or stopped, a campaign paused) can be applied to the rows without calling lemlist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailboxFacts {
    pub email: String,
    pub mailbox_id: String,
    /// `lemwarm.active`.
    pub warming: bool,
    /// The active running campaigns that send from one of its addresses.
    pub busy_with: Vec<String>,
    /// The names of the campaigns (any status) whose senders include its email or own email.
    pub sender_of: Vec<String>,
    /// What could not be fetched that bears on this row.
    pub missing: Vec<String>,
    /// Filled in by the refresh from the sync state's counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance: Option<Performance>,
}

impl MailboxFacts {
    pub fn row(&self) -> MailboxRow {
        let status = match (!self.busy_with.is_empty(), self.warming) {
            (true, true) => MailboxStatus::Conflict,
            (true, false) => MailboxStatus::InUse,
            (false, true) => MailboxStatus::WarmingUp,
            (false, false) => MailboxStatus::Stuck,
        };
        MailboxRow {
            email: self.email.clone(),
            mailbox_id: Some(self.mailbox_id.clone()),
            status,
            campaigns: matches!(status, MailboxStatus::Stuck | MailboxStatus::Conflict)
                .then(|| self.sender_of.clone()),
            missing: self.missing.clone(),
            performance: self.performance,
        }
    }
}

/// The rows in the dashboard's order: stuck, conflict, in use, warming up, then by email.
pub fn rows(facts: &[MailboxFacts]) -> Vec<MailboxRow> {
    let mut rows: Vec<MailboxRow> = facts.iter().map(MailboxFacts::row).collect();
    rows.sort_by(|a, b| a.status.cmp(&b.status).then_with(|| a.email.cmp(&b.email)));
    rows
}

fn senders_for<'a>(
    details: &'a [(&'a str, &'a CampaignDetail)],
    mailbox: &'a str,
) -> impl Iterator<Item = &'a str> {
    details
        .iter()
        .flat_map(|(_, d)| &d.senders)
        .filter(move |s| s.send_user_mailbox_id.as_deref() == Some(mailbox))
        .filter_map(|s| s.email.as_deref())
}

fn facts(
    mailbox: &Mailbox,
    details: &[(&str, &CampaignDetail)],
    busy: &[(&str, HashSet<&str>)],
    unsure: &[(String, HashSet<&str>)],
) -> Option<MailboxFacts> {
    let own = mailbox.email.as_deref();
    let email = senders_for(details, &mailbox.id).next().or(own)?.to_owned();
    let mut addresses: HashSet<&str> = senders_for(details, &mailbox.id).collect();
    addresses.insert(&email);
    addresses.extend(own);
    let uses = |emails: &HashSet<&str>| addresses.iter().any(|a| emails.contains(a));
    let sender_of = details
        .iter()
        .filter(|(_, d)| {
            d.senders.iter().filter_map(|s| s.email.as_deref()).any(|e| e == email || Some(e) == own)
        })
        .map(|(name, _)| (*name).to_owned())
        .collect();
    Some(MailboxFacts {
        email: email.clone(),
        mailbox_id: mailbox.id.clone(),
        warming: mailbox.lemwarm.active,
        busy_with: busy.iter().filter(|(_, emails)| uses(emails)).map(|(id, _)| (*id).to_owned()).collect(),
        sender_of,
        // A running campaign whose leads could not be read might have made this mailbox busy.
        missing: unsure.iter().filter(|(_, emails)| uses(emails)).map(|(what, _)| what.clone()).collect(),
        performance: None,
    })
}

/// The facts of every mailbox of every team member, and what could not be fetched.
pub fn mailboxes_facts(data: &TeamData) -> Dashboard<MailboxFacts> {
    let mut missing = Vec::new();
    // Campaign details in list order, with the name the dashboard shows.
    let names: Vec<(String, &CampaignDetail)> = data
        .campaigns
        .iter()
        .filter_map(|c| match data.details.get(&c.id) {
            Some(Ok(d)) => Some((display_name(d.name.as_deref().or(c.name.as_deref())), d)),
            Some(Err(e)) => {
                missing.push(format!("senders of {}: {e}", c.id));
                None
            }
            None => {
                missing.push(format!("senders of {}: not fetched", c.id));
                None
            }
        })
        .collect();
    let details: Vec<(&str, &CampaignDetail)> = names.iter().map(|(n, d)| (n.as_str(), *d)).collect();

    let mut busy = Vec::new();
    let mut unsure = Vec::new();
    for c in data.running() {
        let emails: HashSet<&str> = match data.details.get(&c.id) {
            Some(Ok(d)) => d.senders.iter().filter_map(|s| s.email.as_deref()).collect(),
            _ => HashSet::new(),
        };
        let leads = data.leads.get(&c.id).map(|r| {
            r.as_ref().map_err(ToString::to_string).and_then(|leads| match &leads.states_absent {
                Some(reason) => Err(reason.clone()),
                None => Ok(leads),
            })
        });
        match leads {
            Some(Ok(leads)) if leads.sendable => busy.push((c.id.as_str(), emails)),
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                missing.push(format!("leads of {}: {e}", c.id));
                unsure.push((format!("leads of {}", c.id), emails));
            }
            None => {
                missing.push(format!("leads of {}: not fetched", c.id));
                unsure.push((format!("leads of {}", c.id), emails));
            }
        }
    }

    let mut all = Vec::new();
    for (user_id, user) in &data.users {
        match user {
            Ok(user) => all.extend(user.mailboxes.iter().filter_map(|m| facts(m, &details, &busy, &unsure))),
            Err(e) => missing.push(format!("mailboxes of {user_id}: {e}")),
        }
    }
    Dashboard { rows: all, missing }
}

/// Builds the mailboxes dashboard from fetched data.
pub fn mailboxes_dashboard(data: &TeamData) -> Dashboard<MailboxRow> {
    let facts = mailboxes_facts(data);
    Dashboard { rows: rows(&facts.rows), missing: facts.missing }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::leads::{LeadFigures, lead};
    use crate::lemlist::{CampaignSender, CampaignSummary, LemlistError, Lemwarm, MailboxLimits, User};

    fn mailbox(id: &str, email: Option<&str>, warming: bool) -> Mailbox {
        Mailbox {
            id: id.into(),
            email: email.map(str::to_owned),
            provider: None,
            status: None,
            lemwarm: Lemwarm { active: warming },
            lemlist: MailboxLimits::default(),
        }
    }

    fn campaign(d: &mut TeamData, id: &str, status: &str, senders: &[(Option<&str>, &str)]) {
        d.campaigns.push(CampaignSummary {
            id: id.into(),
            name: Some(format!("name {id}")),
            status: Some(status.into()),
            created_at: None,
            created_by: None,
            labels: vec![],
        });
        let senders = senders
            .iter()
            .map(|(email, mb)| CampaignSender {
                id: Some("usr_1".into()),
                email: email.map(str::to_owned),
                send_user_mailbox_id: Some((*mb).into()),
            })
            .collect();
        d.details.insert(id.into(), Ok(CampaignDetail { id: id.into(), name: None, status: None, senders }));
    }

    fn team(mailboxes: Vec<Mailbox>) -> TeamData {
        let user = User { id: "usr_1".into(), email: None, mailboxes };
        TeamData { users: vec![("usr_1".into(), Ok(user))], ..TeamData::default() }
    }

    #[test]
    fn statuses_addresses_and_order() {
        let mut d = team(vec![
            mailbox("usm_busy", Some("busy@x.io"), false),
            mailbox("usm_alias", Some("own@x.io"), true),
            mailbox("usm_idle", Some("idle@x.io"), false),
            mailbox("usm_warm", Some("warm@x.io"), true),
            mailbox("usm_none", None, false),
        ]);
        campaign(
            &mut d,
            "cam_run",
            "running",
            &[(Some("busy@x.io"), "usm_busy"), (Some("alias@x.io"), "usm_alias")],
        );
        campaign(&mut d, "cam_old", "ended", &[(Some("idle@x.io"), "usm_idle"), (None, "usm_warm")]);
        d.leads.insert("cam_run".into(), Ok(LeadFigures::of(&[lead("readyToSend", None, None, None)])));
        let dash = mailboxes_dashboard(&d);
        let got: Vec<(&str, MailboxStatus)> =
            dash.rows.iter().map(|r| (r.email.as_str(), r.status)).collect();
        assert_eq!(
            got,
            [
                ("idle@x.io", MailboxStatus::Stuck),
                ("alias@x.io", MailboxStatus::Conflict),
                ("busy@x.io", MailboxStatus::InUse),
                ("warm@x.io", MailboxStatus::WarmingUp)
            ],
            "the alias a campaign uses names the mailbox; a mailbox with no address is left out"
        );
        assert_eq!(dash.rows[0].campaigns, Some(vec!["name cam_old".to_owned()]));
        assert_eq!(dash.rows[1].campaigns, Some(vec!["name cam_run".to_owned()]));
        assert_eq!(dash.rows[2].campaigns, None);
        assert!(dash.missing.is_empty());
    }

    #[test]
    fn a_running_campaign_with_nothing_left_to_send_does_not_make_its_mailboxes_busy() {
        let mut d = team(vec![mailbox("usm_a", Some("a@x.io"), false)]);
        campaign(&mut d, "cam_run", "running", &[(Some("a@x.io"), "usm_a")]);
        d.leads
            .insert("cam_run".into(), Ok(LeadFigures::of(&[lead("paused", Some("inProgress"), None, None)])));
        assert_eq!(mailboxes_dashboard(&d).rows[0].status, MailboxStatus::Stuck);
    }

    #[test]
    fn unreadable_leads_and_users_are_reported_not_dropped() {
        let mut d =
            team(vec![mailbox("usm_a", Some("a@x.io"), false), mailbox("usm_b", Some("b@x.io"), false)]);
        campaign(&mut d, "cam_run", "running", &[(Some("a@x.io"), "usm_a")]);
        d.leads.insert(
            "cam_run".into(),
            Err(LemlistError::Transport {
                endpoint: "GET /campaigns/{id}/export/leads",
                message: "timed out".into(),
            }
            .into()),
        );
        d.users.push((
            "usr_2".into(),
            Err(LemlistError::Status { endpoint: "GET /users/{id}", status: 500, body: String::new() }.into()),
        ));
        let dash = mailboxes_dashboard(&d);
        let a = dash.rows.iter().find(|r| r.email == "a@x.io").unwrap();
        assert_eq!(a.missing, vec!["leads of cam_run"]);
        let b = dash.rows.iter().find(|r| r.email == "b@x.io").unwrap();
        assert!(b.missing.is_empty());
        assert_eq!(dash.missing.len(), 2);
        assert!(dash.missing.iter().any(|m| m.starts_with("mailboxes of usr_2")));
    }
}
