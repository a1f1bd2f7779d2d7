//! Injected faults are retried within the budget and nothing is lost.

use std::time::Duration;

use lemdash_shared::ids::CampaignId;
use lemdash_shared::lemlist::ActivityQuery;
use lemlist_sim::{Faults, LimitMode, Profile, Settings};

use crate::support::{paced_client, sim};

#[tokio::test]
async fn ten_percent_faults_are_recovered_with_nothing_lost() {
    let settings =
        Settings { limit: LimitMode::Anchored, faults: Faults::transient(0.10), ..Settings::default() };
    let sim = sim(Profile::M, 31, settings).await;
    let client = paced_client(&sim);
    let team = sim.team();

    let campaigns = client.campaigns(None).await.unwrap();
    assert_eq!(campaigns.len(), team.campaigns.len());
    let mut tasks = tokio::task::JoinSet::new();
    for c in &team.campaigns {
        let id: CampaignId = c.id.parse().unwrap();
        let (client, want) = (client.clone(), c.clone());
        tasks.spawn(async move {
            let detail = client.campaign(&id).await.unwrap();
            assert_eq!(detail.senders.len(), want.senders.len());
            let leads = client.export_leads(&id).await.unwrap();
            assert_eq!(leads.len(), want.leads.len(), "every lead of {id}");
            let sent = client.activities(&ActivityQuery::of_type("emailsSent").campaign(&id)).await.unwrap();
            sent.len()
        });
    }
    let mut sent_total = 0;
    while let Some(done) = tasks.join_next().await {
        sent_total += done.expect("every campaign's calls succeed");
    }
    assert_eq!(sent_total, team.activities.iter().filter(|a| a.kind == "emailsSent").count());
    let all = client.activities(&ActivityQuery::default()).await.unwrap();
    assert_eq!(all.len(), team.activities.len(), "every activity, across many pages");

    let log = sim.log();
    let stats = client.stats();
    println!(
        "10 % faults: {} requests, {} faults met, {} retries, {} answered 429, max {} arrivals in any 2 s",
        log.total(),
        stats.faults,
        stats.retries,
        log.rate_limited(),
        log.max_arrivals_in(Duration::from_secs(2))
    );
    assert!(stats.faults > 0, "faults were injected and met");
    assert!(stats.retries >= stats.faults);
    assert_eq!(log.rate_limited(), 0);
    assert!(log.max_arrivals_in(Duration::from_secs(2)) <= 20);
}
