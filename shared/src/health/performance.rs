//! Per-mailbox performance: messages sent, bounces, first opens and replies over whole UTC
//! days, each activity credited to the mailbox that sent it. An activity names that mailbox
//! (`sendUserMailboxId`), or only its address (`sendUserEmail`, matched to a mailbox), or
//! neither, and then a campaign with exactly one sending mailbox gives it. Anything else is
//! counted as unattributed and reported, never guessed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;

use crate::activity::ledger::{Counts, Ledger};
use crate::activity::{Performance, Window};
use crate::dashboard::{MailboxFacts, TeamData};
use crate::lemlist::CampaignDetail;

/// Which mailbox sent, from what the mailboxes and the campaigns' senders say now.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Senders {
    /// The mailboxes of the dashboard.
    mailboxes: BTreeSet<String>,
    /// Address (lower case) → its mailbox; `None` when two mailboxes claim it.
    by_address: HashMap<String, Option<String>>,
    /// Campaign → its one sending mailbox, for campaigns with exactly one.
    single: HashMap<String, String>,
}

impl Senders {
    /// From the dashboard's mailboxes (each with its own address, when it has one) and every
    /// campaign's senders.
    pub fn new<'a>(
        mailboxes: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
        details: impl IntoIterator<Item = &'a CampaignDetail>,
    ) -> Self {
        fn claim(address: &str, mailbox: &str, by: &mut HashMap<String, Option<String>>) {
            let entry = by.entry(address.to_lowercase()).or_insert_with(|| Some(mailbox.to_owned()));
            if entry.as_deref() != Some(mailbox) {
                *entry = None;
            }
        }
        let mut s = Self::default();
        for (id, own) in mailboxes {
            s.mailboxes.insert(id.to_owned());
            if let Some(own) = own {
                claim(own, id, &mut s.by_address);
            }
        }
        let details: Vec<&CampaignDetail> = details.into_iter().collect();
        for d in &details {
            for sender in &d.senders {
                if let (Some(email), Some(mailbox)) = (&sender.email, &sender.send_user_mailbox_id)
                    && s.mailboxes.contains(mailbox)
                {
                    claim(email, mailbox, &mut s.by_address);
                }
            }
        }
        for d in details {
            let sending: BTreeSet<&str> = d
                .senders
                .iter()
                .filter_map(|sender| match &sender.send_user_mailbox_id {
                    Some(m) if s.mailboxes.contains(m) => Some(m.as_str()),
                    _ => sender.email.as_deref().and_then(|e| s.address(e)),
                })
                .collect();
            if let [only] = sending.into_iter().collect::<Vec<_>>()[..] {
                s.single.insert(d.id.clone(), only.to_owned());
            }
        }
        s
    }

    /// From a refresh's data (the users' mailboxes and their own addresses, the campaigns'
    /// details) and the dashboard's mailboxes.
    pub fn of_team(data: &TeamData, facts: &[MailboxFacts]) -> Self {
        let own: HashMap<&str, &str> = data
            .users
            .iter()
            .filter_map(|(_, u)| u.as_ref().ok())
            .flat_map(|u| &u.mailboxes)
            .filter_map(|m| Some((m.id.as_str(), m.email.as_deref()?)))
            .collect();
        Self::new(
            facts.iter().map(|f| (f.mailbox_id.as_str(), own.get(f.mailbox_id.as_str()).copied())),
            data.details.values().filter_map(|d| d.as_ref().ok()),
        )
    }

    fn address(&self, email: &str) -> Option<&str> {
        self.by_address.get(&email.to_lowercase()).and_then(|m| m.as_deref())
    }

    /// The mailbox a ledger source is credited to, if any.
    pub fn attribute(&self, source: &str) -> Option<&str> {
        let (campaign, sender) = source.split_once('|').unwrap_or((source, ""));
        let named = if let Some(mailbox) = sender.strip_prefix("m:") {
            // Named outright: credited only if it is one of the dashboard's mailboxes.
            return self.mailboxes.get(mailbox).map(String::as_str);
        } else if let Some(email) = sender.strip_prefix("e:") {
            self.address(email)
        } else {
            None
        };
        named.or_else(|| self.single.get(campaign).map(String::as_str))
    }
}

/// Totals over some days: per mailbox, per campaign, and what no mailbox could be credited with.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Totals {
    pub mailboxes: HashMap<String, Counts>,
    pub campaigns: HashMap<String, Counts>,
    pub unattributed: Counts,
}

/// The totals of the days from `from` to `to`, both included.
pub fn totals(ledger: &Ledger, senders: &Senders, from: NaiveDate, to: NaiveDate) -> Totals {
    let mut t = Totals::default();
    for (source, counts) in ledger.between(from, to) {
        match senders.attribute(source) {
            Some(mailbox) => t.mailboxes.entry(mailbox.to_owned()).or_default().merge(&counts),
            None => t.unattributed.merge(&counts),
        }
        let campaign = source.split('|').next().unwrap_or_default();
        t.campaigns.entry(campaign.to_owned()).or_default().merge(&counts);
    }
    t
}

/// Every mailbox's performance from the 7- and 30-day totals (a mailbox without activity gets
/// zeros), and what could not be credited to any mailbox.
pub fn performance(
    senders: &Senders,
    week: &Totals,
    month: &Totals,
) -> (BTreeMap<String, Performance>, Performance) {
    let of = |t: &Totals, id: &str| Window::from(t.mailboxes.get(id).copied().unwrap_or_default());
    let by_mailbox = senders
        .mailboxes
        .iter()
        .map(|id| (id.clone(), Performance { week: of(week, id), month: of(month, id) }))
        .collect();
    let unattributed = Performance { week: week.unattributed.into(), month: month.unattributed.into() };
    (by_mailbox, unattributed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::Feed;
    use crate::activity::first_day;
    use crate::activity::ledger::Tick;
    use chrono::{DateTime, Utc};

    fn detail(id: &str, senders: &[(Option<&str>, Option<&str>)]) -> CampaignDetail {
        let senders: Vec<serde_json::Value> = senders
            .iter()
            .map(|(email, mailbox)| serde_json::json!({"email": email, "sendUserMailboxId": mailbox}))
            .collect();
        serde_json::from_value(serde_json::json!({"_id": id, "senders": senders})).unwrap()
    }

    fn senders() -> Senders {
        let details = [
            // One sender through an alias: the alias names the mailbox too.
            detail("cam_one", &[(Some("sdr+out@acme.io"), Some("usm_a"))]),
            detail("cam_two", &[(Some("sdr@acme.io"), Some("usm_a")), (Some("ops@acme.io"), Some("usm_b"))]),
        ];
        Senders::new(
            [("usm_a", Some("sdr@acme.io")), ("usm_b", Some("ops@acme.io")), ("usm_c", None)],
            &details,
        )
    }

    #[test]
    fn attribution_follows_the_mailbox_then_the_address_then_the_single_sender() {
        let s = senders();
        assert_eq!(s.attribute("cam_two|m:usm_b"), Some("usm_b"));
        assert_eq!(s.attribute("cam_two|m:usm_gone"), None, "a mailbox not on the dashboard");
        assert_eq!(s.attribute("cam_two|e:ops@acme.io"), Some("usm_b"));
        assert_eq!(s.attribute("cam_x|e:sdr+out@acme.io"), Some("usm_a"), "an alias a campaign declares");
        assert_eq!(s.attribute("cam_one|e:unknown@acme.io"), Some("usm_a"), "falls back on the one sender");
        assert_eq!(s.attribute("cam_one|"), Some("usm_a"));
        assert_eq!(s.attribute("cam_two|"), None, "two senders: not guessed");
        assert_eq!(s.attribute("|"), None);
    }

    #[test]
    fn windows_are_whole_utc_days_and_rates_are_per_message_sent() {
        let mut ledger = Ledger::default();
        let at = |d: &str| DateTime::parse_from_rfc3339(d).unwrap().with_timezone(&Utc);
        let mut tick = |id: &str, feed: Feed, when: &str, source: &str| {
            ledger.add(Tick { id: id.into(), at: Some(at(when)), feed, source: source.into() });
        };
        tick("1", Feed::Sent, "2026-11-30T08:00:00Z", "cam_two|m:usm_a");
        tick("2", Feed::Sent, "2026-11-24T00:00:00Z", "cam_two|m:usm_a");
        tick("3", Feed::Sent, "2026-11-23T23:59:59Z", "cam_two|m:usm_a");
        tick("4", Feed::Bounced, "2026-11-29T08:00:00Z", "cam_two|m:usm_a");
        tick("5", Feed::Opened, "2026-11-29T08:00:00Z", "cam_two|m:usm_a");
        tick("6", Feed::Sent, "2026-11-29T08:00:00Z", "cam_two|");
        tick("7", Feed::Sent, "2026-10-31T08:00:00Z", "cam_two|m:usm_a");
        let (senders, today) = (senders(), "2026-11-30".parse().unwrap());
        let week = totals(&ledger, &senders, first_day(today, 7), today);
        let month = totals(&ledger, &senders, first_day(today, 30), today);
        let (by, unattributed) = performance(&senders, &week, &month);
        let a = by["usm_a"];
        assert_eq!((a.week.sent, a.week.bounced, a.week.opened), (2, 1, 1));
        assert_eq!((a.week.bounce_rate, a.week.open_rate, a.week.reply_rate), (50.0, 50.0, 0.0));
        assert_eq!(a.month.sent, 3, "the 31st of October is outside the 30 days");
        assert_eq!(by["usm_c"], Performance::default(), "a mailbox with no sends: zeros");
        assert_eq!(unattributed.week.sent, 1);
        let json = serde_json::to_value(a).unwrap();
        assert_eq!(json["7d"]["bounce_rate"], 50.0);
        assert_eq!(json["30d"]["sent"], 3);
    }
}
