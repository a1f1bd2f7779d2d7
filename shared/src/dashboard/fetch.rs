//! The fetch plan for both dashboards: every call that does not depend on another is issued at
//! once, so that the per-key budget, not latency, sets the pace. Pages of one activity stream
//! follow each other; everything else overlaps. Computing both dashboards together fetches each
//! resource once.
//!
//! Calls, for C campaigns of which R run, and U users:
//! - the campaign list, all statuses at once (1 call per 100 campaigns; the running ones are
//!   filtered here, keeping lemlist's order);
//! - campaigns dashboard: per running campaign, the lead export and three activity streams
//!   (`emailsSent`, `emailsOpened` with `isFirst` since only distinct leads count, and
//!   `emailsReplied`), each `⌈rows / 100⌉` pages and at least one; `emailsClicked` is not read;
//! - mailboxes dashboard: `GET /team?version=v2` (every user), each user's mailboxes, every
//!   campaign's senders (`GET /campaigns/{id}`), and the running campaigns' lead exports (shared
//!   with the campaigns dashboard).

use std::collections::HashMap;

use tokio::task::JoinSet;

use crate::ids::{CampaignId, UserId};
use crate::lemlist::{
    Activity, ActivityQuery, CampaignDetail, CampaignSummary, Lead, LemlistClient, LemlistError, User,
};

type Fetched<T> = Result<T, LemlistError>;

/// Everything the dashboards are computed from. A part that could not be fetched is kept as its
/// error, so the dashboards can say what is missing.
#[derive(Debug, Default)]
pub struct TeamData {
    /// Every campaign, in lemlist's order.
    pub campaigns: Vec<CampaignSummary>,
    /// Campaign details (senders), by campaign id.
    pub details: HashMap<String, Fetched<CampaignDetail>>,
    /// Lead exports of the running campaigns, by campaign id.
    pub leads: HashMap<String, Fetched<Vec<Lead>>>,
    pub sent: HashMap<String, Fetched<Vec<Activity>>>,
    pub opened: HashMap<String, Fetched<Vec<Activity>>>,
    pub replied: HashMap<String, Fetched<Vec<Activity>>>,
    /// Every team member with their mailboxes, in the team's order.
    pub users: Vec<(String, Fetched<User>)>,
}

impl TeamData {
    /// The running campaigns, in lemlist's order.
    pub fn running(&self) -> impl Iterator<Item = &CampaignSummary> {
        self.campaigns.iter().filter(|c| c.status.as_deref() == Some("running"))
    }
}

enum Part {
    Detail(String, Fetched<CampaignDetail>),
    Leads(String, Fetched<Vec<Lead>>),
    Sent(String, Fetched<Vec<Activity>>),
    Opened(String, Fetched<Vec<Activity>>),
    Replied(String, Fetched<Vec<Activity>>),
    User(usize, Fetched<User>),
}

fn invalid_id(id: &str) -> LemlistError {
    LemlistError::Decode {
        endpoint: "GET /campaigns",
        message: format!("lemlist listed an invalid id {id:?}"),
    }
}

/// Fetches what both dashboards need. Fails only when a root of the plan fails (the campaign
/// list or the team); any other failure is kept in the data.
pub async fn fetch(client: &LemlistClient) -> Result<TeamData, LemlistError> {
    let (campaigns, team) = tokio::join!(client.campaigns(None), client.team());
    let mut data = TeamData { campaigns: campaigns?, ..TeamData::default() };
    let team = team?;

    let mut jobs = JoinSet::new();
    let running: Vec<String> = data.running().map(|c| c.id.clone()).collect();
    // Longest chains first: activity streams have several pages each.
    for id in &running {
        let Ok(cid) = id.parse::<CampaignId>() else { continue };
        let (c, key) = (client.clone(), id.clone());
        let q = ActivityQuery::of_type("emailsSent").campaign(&cid);
        jobs.spawn(async move { Part::Sent(key, c.activities(&q).await) });
        let (c, key) = (client.clone(), id.clone());
        let q = ActivityQuery::of_type("emailsOpened").campaign(&cid).first_only();
        jobs.spawn(async move { Part::Opened(key, c.activities(&q).await) });
        let (c, key) = (client.clone(), id.clone());
        let q = ActivityQuery::of_type("emailsReplied").campaign(&cid);
        jobs.spawn(async move { Part::Replied(key, c.activities(&q).await) });
    }
    for id in &running {
        let Ok(cid) = id.parse::<CampaignId>() else {
            data.leads.insert(id.clone(), Err(invalid_id(id)));
            continue;
        };
        let (c, key) = (client.clone(), id.clone());
        jobs.spawn(async move { Part::Leads(key, c.export_leads(&cid).await) });
    }
    for campaign in &data.campaigns {
        let Ok(cid) = campaign.id.parse::<CampaignId>() else {
            data.details.insert(campaign.id.clone(), Err(invalid_id(&campaign.id)));
            continue;
        };
        let (c, key) = (client.clone(), campaign.id.clone());
        jobs.spawn(async move { Part::Detail(key, c.campaign(&cid).await) });
    }
    let mut user_ids: Vec<String> = team.users.iter().map(|u| u.user_id.clone()).collect();
    if user_ids.is_empty() {
        user_ids = team.user_ids.clone();
    }
    for (i, id) in user_ids.iter().enumerate() {
        let result = match id.parse::<UserId>() {
            Ok(uid) => {
                let c = client.clone();
                jobs.spawn(async move { Part::User(i, c.user(&uid).await) });
                Err(LemlistError::Transport { endpoint: "GET /users/{id}", message: "not fetched".into() })
            }
            Err(e) => Err(LemlistError::Decode { endpoint: "GET /team", message: e.to_string() }),
        };
        data.users.push((id.clone(), result));
    }

    while let Some(done) = jobs.join_next().await {
        match done.expect("fetch tasks do not panic") {
            Part::Detail(id, r) => drop(data.details.insert(id, r)),
            Part::Leads(id, r) => drop(data.leads.insert(id, r)),
            Part::Sent(id, r) => drop(data.sent.insert(id, r)),
            Part::Opened(id, r) => drop(data.opened.insert(id, r)),
            Part::Replied(id, r) => drop(data.replied.insert(id, r)),
            Part::User(i, r) => data.users[i].1 = r,
        }
    }
    Ok(data)
}
