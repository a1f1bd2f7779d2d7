//! The simulated team: users, mailboxes, campaigns, leads and activities, generated from a seed
//! so that every run of a profile is the same team.
//!
//! The data is deliberately awkward in the ways real lemlist data is: every campaign status,
//! several senders per campaign (some using an address other than the mailbox's own, some with
//! no address at all), leads in every state including paused ones and paused-but-in-progress
//! mixes, company names duplicated, blank or padded, opens repeated over weeks, mailboxes with
//! and without lemwarm or an address, and campaigns with no leads.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Map, Value};

/// Team sizes, small to large.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// 1 user, 8 campaigns (the legacy team's own measurement).
    S,
    /// 3 users, 40 campaigns, 12 running.
    M,
    /// 6 users, 120 campaigns, 36 running.
    L,
    /// 10 users, 400 campaigns, 100 running.
    XL,
    /// Realistic volume: 8 users, 80 campaigns, 50 running with about 1,500 leads each over 3
    /// to 5 steps and 120 days of history; reading it all is thousands of pages.
    Real,
}

impl Profile {
    /// (users, campaigns, running campaigns)
    pub fn size(self) -> (usize, usize, usize) {
        match self {
            Self::S => (1, 8, 6),
            Self::M => (3, 40, 12),
            Self::L => (6, 120, 36),
            Self::XL => (10, 400, 100),
            Self::Real => (8, 80, 50),
        }
    }

    /// Leads of a running campaign, and the most steps a lead goes through.
    fn volume(self) -> (std::ops::RangeInclusive<usize>, u32) {
        match self {
            Self::Real => (1_200..=1_800, 5),
            _ => (20..=140, 3),
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "S" => Ok(Self::S),
            "M" => Ok(Self::M),
            "L" => Ok(Self::L),
            "XL" => Ok(Self::XL),
            "REAL" => Ok(Self::Real),
            other => Err(format!("unknown profile {other:?}: expected S, M, L, XL or REAL")),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub users: Vec<User>,
    /// In creation order: the order `GET /campaigns` lists them.
    pub campaigns: Vec<Campaign>,
    /// Newest first: the order `GET /activities` returns them.
    pub activities: Vec<Activity>,
    /// Activities recorded since the hooks' deliveries last took them ([`crate::hooks`]).
    pub outbox: Vec<Activity>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub mailboxes: Vec<Mailbox>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mailbox {
    pub id: String,
    pub email: Option<String>,
    pub provider: Option<String>,
    pub status: String,
    pub lemwarm_active: bool,
    pub email_limit: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub id: String,
    pub name: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub senders: Vec<Sender>,
    pub leads: Vec<Lead>,
    /// Which sender fields its activities carry.
    pub fields: SenderFields,
}

/// The sender fields a campaign's activities carry. lemlist documents both, yet no real
/// activity sample shows them: some campaigns here carry both, some only the address, some
/// neither, so that every fallback of per-mailbox attribution is exercised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderFields {
    Both,
    EmailOnly,
    Neither,
}

impl SenderFields {
    /// The mix: one campaign in seven carries only the address, one in seven neither.
    pub fn of_index(i: usize) -> Self {
        match i % 7 {
            2 => Self::EmailOnly,
            5 => Self::Neither,
            _ => Self::Both,
        }
    }

    /// The (email, mailbox id) an activity sent by `sender` shows.
    pub fn shown(self, sender: &Sender) -> (Option<String>, Option<String>) {
        match self {
            Self::Both => (sender.email.clone(), sender.mailbox_id.clone()),
            Self::EmailOnly => (sender.email.clone(), None),
            Self::Neither => (None, None),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sender {
    pub user_id: String,
    pub email: Option<String>,
    pub mailbox_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lead {
    pub id: String,
    pub email: String,
    pub company_name: Option<String>,
    pub company: Option<String>,
    pub state: String,
    pub state_system: Option<String>,
    pub custom: Map<String, Value>,
}

impl Lead {
    pub fn is_paused(&self) -> bool {
        self.state == "paused" || self.state_system.as_deref() == Some("paused")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(serialize_with = "iso")]
    pub created_at: DateTime<Utc>,
    pub campaign_id: String,
    pub campaign_name: Option<String>,
    pub lead_id: String,
    pub lead_email: String,
    pub is_first: bool,
    pub send_user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_user_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_user_mailbox_id: Option<String>,
    pub sequence_step: u32,
}

pub(crate) fn iso<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// The moment the generated history ends. Fixed, so data does not depend on the day tests run.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).single().expect("valid date")
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const FIRST_NAMES: &[&str] =
    &["ana", "ben", "chloe", "david", "emma", "farid", "gina", "hugo", "ines", "jules"];
const COMPANIES: &[&str] = &[
    "Acme",
    " Acme ",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Wonka",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Initech  ",
    "",
    "   ",
];
const STATUSES: &[&str] = &["draft", "paused", "ended", "archived", "errors"];
const PROVIDERS: &[&str] = &["google", "microsoft", "custom"];

pub fn lemlist_id(rng: &mut impl Rng, prefix: &str) -> String {
    let body: String = (0..17).map(|_| *ALNUM.choose(rng).expect("non-empty") as char).collect();
    format!("{prefix}{body}")
}

/// Generates the team of `profile` for `seed`, its history ending at the fixed [`epoch`].
pub fn generate(profile: Profile, seed: u64) -> Team {
    generate_until(profile, seed, epoch())
}

/// The same team with its history ending at `end` instead: the demo's ends when it starts.
/// Everything but the dates is the same for the same profile and seed.
pub fn generate_until(profile: Profile, seed: u64, end: DateTime<Utc>) -> Team {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x1e3d_a5b0);
    let (n_users, n_campaigns, n_running) = profile.size();
    let domain = format!("team{}.example", seed % 1000);

    let mut users: Vec<User> = (0..n_users)
        .map(|u| {
            let first = FIRST_NAMES[u % FIRST_NAMES.len()];
            let n_mailboxes = rng.random_range(1..=3);
            let mailboxes = (0..n_mailboxes)
                .map(|m| Mailbox {
                    id: lemlist_id(&mut rng, "usm_"),
                    email: Some(format!("{first}{m}@{domain}")),
                    provider: (rng.random_bool(0.8))
                        .then(|| PROVIDERS.choose(&mut rng).expect("non-empty").to_string()),
                    status: if rng.random_bool(0.9) { "CONNECTED" } else { "ERROR" }.to_owned(),
                    lemwarm_active: rng.random_bool(0.45),
                    email_limit: rng.random_range(30..=100),
                })
                .collect();
            User {
                id: lemlist_id(&mut rng, "usr_"),
                name: format!("{} {}", capitalise(first), (b'A' + u as u8) as char),
                email: format!("{first}@{domain}"),
                mailboxes,
            }
        })
        .collect();
    // One mailbox without an address (it must be left out of the mailboxes dashboard), and one
    // extra idle mailbox that no campaign uses, on the last user.
    let last = users.last_mut().expect("at least one user");
    last.mailboxes.push(Mailbox {
        id: lemlist_id(&mut rng, "usm_"),
        email: None,
        provider: None,
        status: "DISCONNECTED".into(),
        lemwarm_active: false,
        email_limit: 0,
    });
    last.mailboxes.push(Mailbox {
        id: lemlist_id(&mut rng, "usm_"),
        email: Some(format!("spare@{domain}")),
        provider: Some("custom".into()),
        status: "CONNECTED".into(),
        lemwarm_active: false,
        email_limit: 50,
    });

    // Mailboxes a campaign may send from: every one with an address except the spare.
    let senders_pool: Vec<(usize, usize)> = users
        .iter()
        .enumerate()
        .flat_map(|(u, user)| {
            user.mailboxes
                .iter()
                .enumerate()
                .filter(|(_, m)| m.email.as_deref().is_some_and(|e| !e.starts_with("spare@")))
                .map(move |(m, _)| (u, m))
        })
        .collect();

    // The realistic profile spreads its campaigns over 120 days; the others start theirs 45
    // days before the end, so that most of their activity falls in the last 30 days (the
    // mailboxes' performance windows).
    let start = end - Duration::days(if profile == Profile::Real { 120 } else { 45 });
    let mut campaigns = Vec::with_capacity(n_campaigns);
    for c in 0..n_campaigns {
        // Running campaigns are spread through the list, not bunched at one end.
        let running = c * n_running / n_campaigns != (c + 1) * n_running / n_campaigns;
        let status = if running { "running" } else { STATUSES[c % STATUSES.len()] };
        // Realistic volume spreads its campaigns over the 120 days.
        let every = if profile == Profile::Real { 24 * 100 / n_campaigns as i64 } else { 2 };
        let created_at = start + Duration::hours(c as i64 * every);
        let n_senders = rng.random_range(1..=3usize).min(senders_pool.len());
        let chosen: Vec<(usize, usize)> =
            senders_pool.choose_multiple(&mut rng, n_senders).copied().collect();
        let senders = chosen
            .iter()
            .map(|&(u, m)| {
                let user = &users[u];
                let mailbox = &user.mailboxes[m];
                let own = mailbox.email.clone().expect("pool has addresses");
                let email = match rng.random_range(0..20) {
                    // An alias: the campaign sends as another address of the same mailbox.
                    0 | 1 => Some(own.replace('@', "+outreach@")),
                    2 => None,
                    _ => Some(own),
                };
                Sender { user_id: user.id.clone(), email, mailbox_id: Some(mailbox.id.clone()) }
            })
            .collect::<Vec<_>>();
        let created_by = senders.first().map_or_else(|| users[0].id.clone(), |s| s.user_id.clone());
        let name = (c % 17 != 5).then(|| format!("Campaign {c:03} {}", COMPANIES[c % 12].trim()));
        let leads = generate_leads(&mut rng, c, running, profile.volume().0);
        campaigns.push(Campaign {
            id: lemlist_id(&mut rng, "cam_"),
            name,
            status: status.to_owned(),
            created_at,
            created_by,
            senders,
            leads,
            fields: SenderFields::of_index(c),
        });
    }

    let activities = generate_activities(&mut rng, &campaigns, profile.volume().1, end);
    Team {
        id: lemlist_id(&mut rng, "tea_"),
        name: format!("Team {seed}"),
        users,
        campaigns,
        activities,
        outbox: Vec::new(),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// Which mix of lead states a campaign gets.
fn generate_leads(
    rng: &mut StdRng,
    index: usize,
    running: bool,
    per_running: std::ops::RangeInclusive<usize>,
) -> Vec<Lead> {
    let kind = index % 11;
    let count = match kind {
        3 => 0, // a campaign with no leads
        _ if running => rng.random_range(per_running),
        _ => rng.random_range(0..=60),
    };
    (0..count)
        .map(|i| {
            let (state, state_system) = lead_state(rng, kind, running);
            let company = *COMPANIES.choose(rng).expect("non-empty");
            // Most leads carry `companyName`; some older imports only `company`.
            let (company_name, company) = if rng.random_bool(0.85) {
                (Some(company.to_owned()), None)
            } else {
                (None, Some(company.to_owned()))
            };
            let mut custom = Map::new();
            if rng.random_bool(0.5) {
                custom.insert("Persona".into(), Value::String(["IT", "Sales", "Ops"][i % 3].into()));
            }
            Lead {
                id: lemlist_id(rng, "lea_"),
                email: format!("lead{index}x{i}@prospect{}.example", i % 37),
                company_name,
                company,
                state: state.to_owned(),
                state_system: state_system.map(str::to_owned),
                custom,
            }
        })
        .collect()
}

fn lead_state(rng: &mut StdRng, kind: usize, running: bool) -> (&'static str, Option<&'static str>) {
    const DONE: &[&str] =
        &["emailsSent", "emailsOpened", "emailsReplied", "interested", "emailsBounced", "done"];
    match kind {
        // Every lead paused.
        7 => ("paused", Some("paused")),
        // Finished: nobody left to send to.
        5 | 9 => (*DONE.choose(rng).expect("non-empty"), Some("done")),
        _ => match rng.random_range(0..20) {
            0 | 1 => ("paused", None),
            // Paused in `state` but still in progress in `stateSystem`: paused wins.
            2 => ("paused", Some("inProgress")),
            3 => ("emailsOpened", Some("paused")),
            4 | 5 if running => ("readyToSend", Some("readyToSend")),
            6 if running => ("emailsSent", Some("inProgress")),
            7 if running => ("emailsOpened", Some("readyToSend")),
            8 => ("skipped", None),
            _ => (*DONE.choose(rng).expect("non-empty"), Some("done")),
        },
    }
}

fn generate_activities(
    rng: &mut StdRng,
    campaigns: &[Campaign],
    max_steps: u32,
    end: DateTime<Utc>,
) -> Vec<Activity> {
    let mut out = Vec::new();
    for campaign in campaigns {
        if campaign.status == "draft" || campaign.senders.is_empty() {
            continue;
        }
        for lead in &campaign.leads {
            if lead.state == "readyToSend" || lead.state == "skipped" {
                continue; // never contacted
            }
            let sender = campaign.senders.choose(rng).expect("non-empty");
            let first_sent = campaign.created_at + Duration::minutes(rng.random_range(60..60 * 24 * 30));
            let (shown_email, shown_mailbox) = campaign.fields.shown(sender);
            let push = |out: &mut Vec<Activity>, kind: &str, at: DateTime<Utc>, step: u32| {
                out.push(Activity {
                    id: String::new(), // assigned once the history is sorted
                    kind: kind.to_owned(),
                    created_at: at.min(end),
                    campaign_id: campaign.id.clone(),
                    campaign_name: campaign.name.clone(),
                    lead_id: lead.id.clone(),
                    lead_email: lead.email.clone(),
                    is_first: false, // set once the history is sorted
                    send_user_id: sender.user_id.clone(),
                    send_user_email: shown_email.clone(),
                    send_user_mailbox_id: shown_mailbox.clone(),
                    sequence_step: step,
                });
            };
            let steps = rng.random_range(1..=max_steps);
            for step in 0..steps {
                let sent_at = first_sent + Duration::days(step as i64 * 3);
                push(&mut out, "emailsSent", sent_at, step);
                // A few messages bounce, and a bounced message is never opened.
                if rng.random_bool(0.03) {
                    push(&mut out, "emailsBounced", sent_at + Duration::minutes(2), step);
                    continue;
                }
                // Opens repeat, sometimes weeks after the send.
                let opens = match rng.random_range(0..10) {
                    0..=4 => 0,
                    5..=7 => 1,
                    _ => rng.random_range(2..=6),
                };
                for _ in 0..opens {
                    let at = sent_at + Duration::hours(rng.random_range(1..24 * 21));
                    push(&mut out, "emailsOpened", at, step);
                }
                if opens > 0 && rng.random_bool(0.15) {
                    push(&mut out, "emailsClicked", sent_at + Duration::hours(30), step);
                }
            }
            if rng.random_bool(0.12) {
                push(&mut out, "emailsReplied", first_sent + Duration::days(5), 0);
            }
        }
    }
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.lead_id.cmp(&b.lead_id)));
    // `isFirst`: the earliest activity of its type for its lead and step.
    let mut seen = std::collections::HashSet::new();
    for a in out.iter_mut().rev() {
        a.is_first = seen.insert((a.campaign_id.clone(), a.lead_id.clone(), a.sequence_step, a.kind.clone()));
    }
    for a in &mut out {
        a.id = lemlist_id(rng, "act_");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_team_other_seed_other_team() {
        assert_eq!(generate(Profile::S, 7), generate(Profile::S, 7));
        assert_ne!(generate(Profile::S, 7).campaigns[0].id, generate(Profile::S, 8).campaigns[0].id);
    }

    #[test]
    fn profiles_have_their_sizes_and_the_awkward_cases() {
        let team = generate(Profile::M, 1);
        assert_eq!(team.users.len(), 3);
        assert_eq!(team.campaigns.len(), 40);
        assert_eq!(team.campaigns.iter().filter(|c| c.status == "running").count(), 12);
        for status in ["running", "draft", "paused", "ended", "archived", "errors"] {
            assert!(team.campaigns.iter().any(|c| c.status == status), "{status}");
        }
        assert!(team.campaigns.iter().any(|c| c.leads.is_empty()));
        assert!(team.campaigns.iter().any(|c| c.name.is_none()));
        assert!(team.campaigns.iter().flat_map(|c| &c.senders).any(|s| s.email.is_none()));
        assert!(
            team.campaigns
                .iter()
                .flat_map(|c| &c.senders)
                .any(|s| s.email.as_deref().is_some_and(|e| e.contains("+outreach@")))
        );
        let leads: Vec<&Lead> = team.campaigns.iter().flat_map(|c| &c.leads).collect();
        assert!(leads.iter().any(|l| l.state == "paused" && l.state_system.as_deref() == Some("inProgress")));
        assert!(leads.iter().any(|l| l.state_system.as_deref() == Some("readyToSend")));
        assert!(leads.iter().any(|l| l.company_name.is_none() && l.company.is_some()));
        let mailboxes: Vec<&Mailbox> = team.users.iter().flat_map(|u| &u.mailboxes).collect();
        assert!(mailboxes.iter().any(|m| m.email.is_none()));
        assert!(mailboxes.iter().any(|m| m.lemwarm_active) && mailboxes.iter().any(|m| !m.lemwarm_active));
        assert!(team.activities.windows(2).all(|w| w[0].created_at >= w[1].created_at));
        let repeat_opens = team.activities.iter().filter(|a| a.kind == "emailsOpened" && !a.is_first).count();
        assert!(repeat_opens > 0);
    }
}
