//! Live mode: the team changes while lemdash watches it. A burst applies N events "now", of
//! every kind a real account sees between two refreshes: sends that move leads through their
//! steps, opens (repeats included, `isFirst` right), replies, new and paused leads, campaigns
//! changing status or appearing, senders added and removed, lemwarm toggled, new mailboxes.
//! About one activity in four becomes visible late: its timestamp is up to 90 s in the past, as
//! lemlist's are when it processes them after the fact. The team stays the ground truth: every
//! event changes it the way lemlist would, and the truth is computed from it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde_json::Map;

use crate::data::{Activity, Campaign, Lead, Mailbox, Sender, Team, lemlist_id};

/// The kinds of event a burst applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    Sent,
    Opened,
    Replied,
    Bounced,
    NewLead,
    LeadPaused,
    CampaignStatus,
    NewCampaign,
    SenderAdded,
    SenderRemoved,
    Lemwarm,
    NewMailbox,
}

/// Weights out of 100: mostly activity, a little of everything else.
const MIX: [(Event, u32); 12] = [
    (Event::Sent, 33),
    (Event::Opened, 26),
    (Event::Replied, 8),
    (Event::Bounced, 3),
    (Event::NewLead, 10),
    (Event::LeadPaused, 5),
    (Event::CampaignStatus, 3),
    (Event::NewCampaign, 2),
    (Event::SenderAdded, 3),
    (Event::SenderRemoved, 2),
    (Event::Lemwarm, 4),
    (Event::NewMailbox, 1),
];

/// The most a late activity's timestamp lies in the past.
pub const MAX_LATENESS: Duration = Duration::seconds(90);

const AWKWARD_COMPANIES: &[&str] =
    &["Acme", " Acme ", "Initech  ", "", "   ", "Ünïcode GmbH", "O'Reilly & Co"];

/// What a burst did: how many events of each kind were applied (an event with nothing to act
/// on, such as an open in a team that never sent, is skipped).
pub type Applied = BTreeMap<Event, usize>;

fn pick_event(rng: &mut StdRng) -> Event {
    let mut roll = rng.random_range(0..100);
    for (event, weight) in MIX {
        if roll < weight {
            return event;
        }
        roll -= weight;
    }
    Event::Sent
}

/// Applies `n` random events to `team` at `now`; `late_share` of the new activities are
/// timestamped up to [`MAX_LATENESS`] earlier.
pub fn burst(team: &mut Team, rng: &mut StdRng, n: usize, now: DateTime<Utc>, late_share: f64) -> Applied {
    let mut applied = Applied::new();
    for _ in 0..n {
        let event = pick_event(rng);
        let at = if rng.random_bool(late_share) {
            now - Duration::milliseconds(rng.random_range(1_000..MAX_LATENESS.num_milliseconds()))
        } else {
            now
        };
        if apply(team, rng, event, at) {
            *applied.entry(event).or_default() += 1;
        }
    }
    applied
}

/// Applies `event` at `at`; false when there was nothing to apply it to.
pub fn apply(team: &mut Team, rng: &mut StdRng, event: Event, at: DateTime<Utc>) -> bool {
    match event {
        Event::Sent => send(team, rng, at),
        Event::Opened => follow_up(team, rng, at, "emailsOpened"),
        Event::Replied => follow_up(team, rng, at, "emailsReplied"),
        Event::Bounced => follow_up(team, rng, at, "emailsBounced"),
        Event::NewLead => {
            let Some(c) = running_index(team, rng) else { return false };
            let company = *AWKWARD_COMPANIES.choose(rng).expect("non-empty");
            let campaign = &mut team.campaigns[c];
            let i = campaign.leads.len();
            campaign.leads.push(Lead {
                id: lemlist_id(rng, "lea_"),
                email: format!("live{c}x{i}@prospect.example"),
                company_name: Some(company.to_owned()),
                company: None,
                state: "readyToSend".into(),
                state_system: Some("readyToSend".into()),
                custom: Map::new(),
            });
            true
        }
        Event::LeadPaused => {
            let Some(c) = running_index(team, rng) else { return false };
            let leads = &mut team.campaigns[c].leads;
            let live: Vec<usize> = (0..leads.len()).filter(|&i| !leads[i].is_paused()).collect();
            let Some(&i) = live.choose(rng) else { return false };
            leads[i].state = "paused".into();
            // lemlist's lead-level `paused` event: delivered to hooks, listed by no feed.
            let campaign = &team.campaigns[c];
            if let Some(sender) = campaign.senders.first() {
                let mut event = activity(campaign, &campaign.leads[i], sender, "paused", at, 0);
                // Its own generator: the live one draws the same events as before hooks existed.
                let seed = (at.timestamp_millis() as u64) ^ ((c as u64) << 40) ^ (i as u64);
                event.id = lemlist_id(&mut <StdRng as rand::SeedableRng>::seed_from_u64(seed), "act_");
                team.outbox.push(event);
            }
            true
        }
        Event::CampaignStatus => {
            // Running campaigns pause; paused ones with leads start again (and must then be read
            // from their history, which lemdash has not followed).
            let candidates: Vec<usize> = (0..team.campaigns.len())
                .filter(|&i| {
                    let c = &team.campaigns[i];
                    c.status == "running" || (c.status == "paused" && !c.leads.is_empty())
                })
                .collect();
            let Some(&i) = candidates.choose(rng) else { return false };
            let c = &mut team.campaigns[i];
            c.status = if c.status == "running" { "paused" } else { "running" }.into();
            true
        }
        Event::NewCampaign => {
            let pool = sender_pool(team);
            let Some(&(u, m)) = pool.choose(rng) else { return false };
            let user = &team.users[u];
            let mailbox = &user.mailboxes[m];
            let n = team.campaigns.len();
            let leads = (0..rng.random_range(3..12))
                .map(|i| Lead {
                    id: lemlist_id(rng, "lea_"),
                    email: format!("new{n}x{i}@prospect.example"),
                    company_name: Some((*AWKWARD_COMPANIES.choose(rng).expect("non-empty")).to_owned()),
                    company: None,
                    state: "readyToSend".into(),
                    state_system: Some("readyToSend".into()),
                    custom: Map::new(),
                })
                .collect();
            let campaign = Campaign {
                id: lemlist_id(rng, "cam_"),
                name: Some(format!("Live campaign {n:03}")),
                status: "running".into(),
                created_at: at,
                created_by: user.id.clone(),
                senders: vec![Sender {
                    user_id: user.id.clone(),
                    email: mailbox.email.clone(),
                    mailbox_id: Some(mailbox.id.clone()),
                }],
                leads,
                fields: crate::data::SenderFields::of_index(n),
            };
            team.campaigns.push(campaign);
            true
        }
        Event::SenderAdded => {
            let pool = sender_pool(team);
            let Some(c) = running_index(team, rng) else { return false };
            let Some(&(u, m)) = pool.choose(rng) else { return false };
            let (user, mailbox) = (&team.users[u], &team.users[u].mailboxes[m]);
            let sender = Sender {
                user_id: user.id.clone(),
                email: mailbox.email.clone(),
                mailbox_id: Some(mailbox.id.clone()),
            };
            let senders = &mut team.campaigns[c].senders;
            if senders.iter().any(|s| s.mailbox_id == sender.mailbox_id) {
                return false;
            }
            senders.push(sender);
            true
        }
        Event::SenderRemoved => {
            let Some(c) = running_index(team, rng) else { return false };
            let senders = &mut team.campaigns[c].senders;
            if senders.len() < 2 {
                return false;
            }
            let i = rng.random_range(0..senders.len());
            senders.remove(i);
            true
        }
        Event::Lemwarm => {
            let mailboxes: Vec<(usize, usize)> = team
                .users
                .iter()
                .enumerate()
                .flat_map(|(u, user)| (0..user.mailboxes.len()).map(move |m| (u, m)))
                .collect();
            let Some(&(u, m)) = mailboxes.choose(rng) else { return false };
            let mailbox = &mut team.users[u].mailboxes[m];
            mailbox.lemwarm_active = !mailbox.lemwarm_active;
            true
        }
        Event::NewMailbox => {
            let u = rng.random_range(0..team.users.len());
            let user = &mut team.users[u];
            let n = user.mailboxes.len();
            let local = user.email.split('@').next().unwrap_or("user").to_owned();
            let domain = user.email.split('@').nth(1).unwrap_or("example.com").to_owned();
            user.mailboxes.push(Mailbox {
                id: lemlist_id(rng, "usm_"),
                email: Some(format!("{local}.live{n}@{domain}")),
                provider: Some("google".into()),
                status: "CONNECTED".into(),
                lemwarm_active: rng.random_bool(0.5),
                email_limit: 50,
            });
            true
        }
    }
}

/// Scripted activity for the tests' scenarios (a run of bounces, an open rate that collapses):
/// `n` activities of `kind` at `at` in campaign `campaign`, sent by its sender `sender`, for its
/// leads in turn. A send is the lead's next step; a follow-up answers the lead's last send.
/// Returns how many were recorded (at most one follow-up per lead).
pub fn script(
    team: &mut Team,
    rng: &mut StdRng,
    campaign: &str,
    sender: usize,
    kind: &str,
    n: usize,
    at: DateTime<Utc>,
) -> usize {
    let Some(c) = team.campaigns.iter().position(|c| c.id == campaign) else { return 0 };
    let leads = team.campaigns[c].leads.len();
    let mut recorded = 0;
    for i in 0..leads.max(1) * 4 {
        if recorded == n || leads == 0 {
            break;
        }
        let (lead, campaign) = (team.campaigns[c].leads[i % leads].clone(), team.campaigns[c].clone());
        let Some(from) = campaign.senders.get(sender) else { return recorded };
        let sends = team
            .activities
            .iter()
            .filter(|a| a.kind == "emailsSent" && a.lead_id == lead.id && a.campaign_id == campaign.id)
            .count() as u32;
        let step = if kind == "emailsSent" {
            sends
        } else if sends == 0 || i >= leads {
            continue;
        } else {
            sends - 1
        };
        let mut row = activity(&campaign, &lead, from, kind, at, step);
        row.is_first = !team.activities.iter().any(|a| {
            a.kind == kind && a.lead_id == lead.id && a.campaign_id == campaign.id && a.sequence_step == step
        });
        row.id = lemlist_id(rng, "act_");
        insert(team, row);
        recorded += 1;
    }
    recorded
}

fn running_index(team: &Team, rng: &mut StdRng) -> Option<usize> {
    let running: Vec<usize> =
        (0..team.campaigns.len()).filter(|&i| team.campaigns[i].status == "running").collect();
    running.choose(rng).copied()
}

/// Mailboxes with an address, as (user, mailbox) indices.
fn sender_pool(team: &Team) -> Vec<(usize, usize)> {
    team.users
        .iter()
        .enumerate()
        .flat_map(|(u, user)| {
            user.mailboxes.iter().enumerate().filter(|(_, m)| m.email.is_some()).map(move |(m, _)| (u, m))
        })
        .collect()
}

fn sendable(lead: &Lead) -> bool {
    !lead.is_paused()
        && (lead.state == "readyToSend"
            || matches!(lead.state_system.as_deref(), Some("readyToSend") | Some("inProgress")))
}

/// Inserts an activity where `GET /activities` lists it: newest first.
fn insert(team: &mut Team, activity: Activity) {
    let at = team.activities.partition_point(|a| a.created_at >= activity.created_at);
    team.outbox.push(activity.clone());
    team.activities.insert(at, activity);
}

fn activity(
    campaign: &Campaign,
    lead: &Lead,
    sender: &Sender,
    kind: &str,
    at: DateTime<Utc>,
    step: u32,
) -> Activity {
    Activity {
        id: String::new(),
        kind: kind.into(),
        created_at: at,
        campaign_id: campaign.id.clone(),
        campaign_name: campaign.name.clone(),
        lead_id: lead.id.clone(),
        lead_email: lead.email.clone(),
        is_first: true,
        send_user_id: sender.user_id.clone(),
        send_user_email: campaign.fields.shown(sender).0,
        send_user_mailbox_id: campaign.fields.shown(sender).1,
        sequence_step: step,
    }
}

/// The next step of a sendable lead of a running campaign: `emailsSent`, and the lead moves on
/// (done after its third step).
fn send(team: &mut Team, rng: &mut StdRng, at: DateTime<Utc>) -> bool {
    let candidates: Vec<(usize, usize)> = (0..team.campaigns.len())
        .filter(|&c| team.campaigns[c].status == "running" && !team.campaigns[c].senders.is_empty())
        .flat_map(|c| {
            let leads = &team.campaigns[c].leads;
            (0..leads.len()).filter(move |&l| sendable(&leads[l])).map(move |l| (c, l))
        })
        .collect();
    let Some(&(c, l)) = candidates.choose(rng) else { return false };
    let lead_id = team.campaigns[c].leads[l].id.clone();
    let step =
        team.activities.iter().filter(|a| a.kind == "emailsSent" && a.lead_id == lead_id).count() as u32;
    let campaign = &team.campaigns[c];
    let sender = campaign.senders.choose(rng).expect("non-empty").clone();
    let mut row = activity(campaign, &campaign.leads[l], &sender, "emailsSent", at, step);
    row.id = lemlist_id(rng, "act_");
    insert(team, row);
    let lead = &mut team.campaigns[c].leads[l];
    lead.state = "emailsSent".into();
    lead.state_system = Some(if step >= 2 { "done" } else { "inProgress" }.into());
    true
}

/// An open or a reply to a message already sent by a running campaign.
fn follow_up(team: &mut Team, rng: &mut StdRng, at: DateTime<Utc>, kind: &str) -> bool {
    // A recent send of a running campaign: sample rather than scan every activity.
    let running: std::collections::HashSet<&str> =
        team.campaigns.iter().filter(|c| c.status == "running").map(|c| c.id.as_str()).collect();
    let sends: Vec<usize> = (0..team.activities.len())
        .filter(|&i| {
            team.activities[i].kind == "emailsSent"
                && running.contains(team.activities[i].campaign_id.as_str())
        })
        .take(2_000)
        .collect();
    let Some(&i) = sends.choose(rng) else { return false };
    let sent = team.activities[i].clone();
    let is_first = !team.activities.iter().any(|a| {
        a.kind == kind
            && a.lead_id == sent.lead_id
            && a.campaign_id == sent.campaign_id
            && a.sequence_step == sent.sequence_step
    });
    let row = Activity {
        id: lemlist_id(rng, "act_"),
        kind: kind.into(),
        created_at: at.max(sent.created_at),
        is_first,
        ..sent.clone()
    };
    insert(team, row);
    if kind == "emailsReplied"
        && let Some(lead) = team
            .campaigns
            .iter_mut()
            .find(|c| c.id == sent.campaign_id)
            .and_then(|c| c.leads.iter_mut().find(|l| l.id == sent.lead_id))
    {
        lead.state = "emailsReplied".into();
        lead.state_system = Some("done".into());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Profile, generate};
    use rand::SeedableRng;

    #[test]
    fn a_burst_changes_the_team_and_keeps_activities_newest_first() {
        let mut team = generate(Profile::M, 3);
        let before = team.clone();
        let mut rng = StdRng::seed_from_u64(1);
        // Two hours after the generated history, as the tests' clock starts.
        let now = crate::data::epoch() + crate::server::CLOCK_AFTER_HISTORY;
        let applied = burst(&mut team, &mut rng, 300, now, 0.25);
        assert!(applied.values().sum::<usize>() > 250, "{applied:?}");
        for event in [Event::Sent, Event::Opened, Event::Replied, Event::NewLead, Event::LeadPaused] {
            assert!(applied.get(&event).copied().unwrap_or(0) > 0, "{event:?}: {applied:?}");
        }
        assert!(team.activities.len() > before.activities.len());
        assert!(team.activities.windows(2).all(|w| w[0].created_at >= w[1].created_at));
        let late = team
            .activities
            .iter()
            .filter(|a| a.created_at < now && a.created_at > now - MAX_LATENESS)
            .count();
        assert!(late > 0, "some activities are timestamped in the past");
        // isFirst: exactly one first open per lead and step.
        let mut firsts = std::collections::HashMap::new();
        for a in team.activities.iter().filter(|a| a.kind == "emailsOpened") {
            *firsts.entry((&a.campaign_id, &a.lead_id, a.sequence_step)).or_insert(0) +=
                usize::from(a.is_first);
        }
        assert!(firsts.values().all(|&n| n == 1), "one first open each");
    }
}
