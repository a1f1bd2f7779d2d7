//! `lemdash-dashboard-bench`: both dashboards computed cold, as the front end asks for them
//! (campaigns, then mailboxes 500 ms later), by lemdash and by the legacy backend's call
//! pattern, side by side on the same simulator and latency. Prints a table; asserts nothing.
//!
//! ```text
//! cargo run --release -p lemdash-tests --bin lemdash-dashboard-bench [PROFILE...]   # default: M L
//! ```
//!
//! The legacy pattern (legacy-rate-limit-analysis.md): campaigns two at a time, each with its
//! lead export then four activity types in parallel, each paged one page after another; the
//! mailboxes path sequential, first user only, campaign details fetched in three loops.
//! lemdash runs with its production limiter (lanes in DynamoDB Local).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lemdash_shared::dashboard;
use lemdash_shared::dynamo::local_client;
use lemdash_shared::ids::{CampaignId, UserId};
use lemdash_shared::lemlist::{ActivityQuery, CampaignStatus, LemlistClient, LemlistError};
use lemdash_shared::limiter::dynamo::DynamoStore;
use lemdash_shared::limiter::{SharedLimiter, SharedSettings, SystemClock, Unlimited};
use lemdash_shared::secret::ApiKey;
use lemdash_tests::dynamo_local::{DynamoLocal, create_limiter_table};
use lemdash_tests::load::{self, lower_bound, window_floor};
use lemlist_sim::{Latency, LimitMode, Profile, Settings, Sim, SimConfig};

const TABLE: &str = "lemdash-dashboard-bench";

async fn legacy_campaigns(client: &LemlistClient) -> Result<(), LemlistError> {
    let running = client.campaigns(Some(CampaignStatus::Running)).await?;
    for pair in running.chunks(2) {
        let mut tasks = tokio::task::JoinSet::new();
        for c in pair {
            let (client, id) = (client.clone(), c.id.parse::<CampaignId>().expect("valid id"));
            tasks.spawn(async move {
                client.export_leads(&id).await?;
                let kinds = ["emailsSent", "emailsOpened", "emailsReplied", "emailsClicked"];
                let mut streams = tokio::task::JoinSet::new();
                for kind in kinds {
                    let (client, q) = (client.clone(), ActivityQuery::of_type(kind).campaign(&id));
                    streams.spawn(async move { client.activities(&q).await.map(drop) });
                }
                while let Some(r) = streams.join_next().await {
                    r.expect("no panic")?;
                }
                Ok::<_, LemlistError>(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("no panic")?;
        }
    }
    Ok(())
}

async fn legacy_mailboxes(client: &LemlistClient) -> Result<(), LemlistError> {
    // The legacy reads `GET /team/senders` here; `GET /team` costs the same one call and names
    // the same first user.
    let team = client.team().await?;
    if let Some(first) = team.users.first() {
        client.user(&first.user_id.parse::<UserId>().expect("valid id")).await?;
    }
    for c in client.campaigns(Some(CampaignStatus::Running)).await? {
        let id: CampaignId = c.id.parse().expect("valid id");
        client.export_leads(&id).await?;
        client.campaign(&id).await?;
    }
    let all = client.campaigns(None).await?;
    for _loop in 0..2 {
        for c in &all {
            client.campaign(&c.id.parse().expect("valid id")).await?;
        }
    }
    Ok(())
}

struct Row {
    wall: Duration,
    calls: usize,
    duplicates: usize,
    rate_limited: usize,
}

async fn run(profile: Profile, lemdash: bool, dynamo: &str) -> Row {
    let mut config = SimConfig::new(profile, 1);
    config.settings =
        Settings { limit: LimitMode::Anchored, latency: Latency::LEMLIST, ..Settings::default() };
    let sim = Sim::start(config).await.expect("the simulator starts");
    let started = Instant::now();
    if lemdash {
        let store = DynamoStore::new(local_client(dynamo), TABLE);
        let key = ApiKey::new(sim.key()).fingerprint();
        let limiter = Arc::new(SharedLimiter::new(
            store,
            key,
            Arc::new(SystemClock::default()),
            SharedSettings::default(),
        ));
        let client = load::client(&sim.base_url(), sim.key(), limiter);
        let data = dashboard::fetch(&client).await.expect("lemdash fetches");
        let (c, m) = (dashboard::campaigns_dashboard(&data), dashboard::mailboxes_dashboard(&data));
        assert!(c.missing.is_empty() && m.missing.is_empty());
    } else {
        let client = load::client(&sim.base_url(), sim.key(), Arc::new(Unlimited));
        let mailboxes = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            legacy_mailboxes(&client).await
        };
        let (c, m) = tokio::join!(legacy_campaigns(&client), mailboxes);
        c.expect("legacy campaigns");
        m.expect("legacy mailboxes");
    }
    let wall = started.elapsed();
    let log = sim.log();
    Row { wall, calls: log.total(), duplicates: log.duplicate_gets(), rate_limited: log.rate_limited() }
}

#[tokio::main]
async fn main() {
    let profiles: Vec<Profile> = std::env::args()
        .skip(1)
        .map(|p| p.parse().unwrap_or_else(|e| panic!("{p:?} is not a profile: {e}")))
        .collect();
    let profiles = if profiles.is_empty() { vec![Profile::M, Profile::L] } else { profiles };
    let dynamo = DynamoLocal::start().expect("DynamoDB Local starts (needs Java and npm)");
    create_limiter_table(&dynamo.endpoint, TABLE).await.expect("the limiter table is created");
    println!("both dashboards, cold, requested together; anchored simulator with lemlist-like latency");
    println!(
        "| profile | backend | wall time | calls | duplicate GETs | 429s | wall ÷ bound | wall ÷ window floor |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for profile in profiles {
        let legacy = run(profile, false, &dynamo.endpoint).await;
        let ours = run(profile, true, &dynamo.endpoint).await;
        for (name, r) in [("legacy pattern", &legacy), ("lemdash", &ours)] {
            let bound = lower_bound(r.calls);
            println!(
                "| {profile:?} | {name} | {:.1} s | {} | {} | {} | {:.2} | {:.2} |",
                r.wall.as_secs_f64(),
                r.calls,
                r.duplicates,
                r.rate_limited,
                r.wall.as_secs_f64() / bound.as_secs_f64().max(0.001),
                r.wall.as_secs_f64() / window_floor(r.calls).as_secs_f64().max(0.001)
            );
        }
        println!(
            "| {profile:?} | lemdash vs legacy | {:.2}× faster | {:.0} % fewer calls | | | | |",
            legacy.wall.as_secs_f64() / ours.wall.as_secs_f64(),
            100.0 * (1.0 - ours.calls as f64 / legacy.calls as f64)
        );
    }
}
