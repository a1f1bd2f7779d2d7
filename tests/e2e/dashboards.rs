//! Both dashboards, computed by lemdash from the simulator's API, equal the simulator's own
//! ground truth, row for row and field for field.

use lemdash_shared::dashboard::{self, Need};
use lemlist_sim::truth;
use lemlist_sim::{Faults, LimitMode, Profile, Settings, Sim};
use serde_json::Value;

use crate::support::{paced_client, sim, unpaced_client};

fn json<T: serde::Serialize>(rows: &[T]) -> Vec<Value> {
    rows.iter().map(|r| serde_json::to_value(r).unwrap()).collect()
}

fn assert_rows_equal(label: &str, got: Vec<Value>, want: Vec<Value>) {
    assert_eq!(got.len(), want.len(), "{label}: row count");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "{label}: row {i}");
    }
}

async fn check(sim: &Sim, client: &lemdash_shared::lemlist::LemlistClient, label: &str) {
    let data = dashboard::fetch(client, Need::Both).await.expect("the roots of the plan are fetched");
    let team = sim.team();
    let campaigns = dashboard::campaigns_dashboard(&data);
    let mailboxes = dashboard::mailboxes_dashboard(&data);
    assert!(
        campaigns.missing.is_empty() && mailboxes.missing.is_empty(),
        "{label}: {:?} {:?}",
        campaigns.missing,
        mailboxes.missing
    );
    assert_rows_equal(
        &format!("{label} campaigns"),
        json(&campaigns.rows),
        json(&truth::campaigns_dashboard(&team)),
    );
    assert_rows_equal(
        &format!("{label} mailboxes"),
        json(&mailboxes.rows),
        json(&truth::mailboxes_dashboard(&team)),
    );
}

#[tokio::test]
async fn both_dashboards_equal_the_ground_truth_for_every_profile_and_seed() {
    for profile in [Profile::S, Profile::M, Profile::L] {
        for seed in [1, 2, 3] {
            let sim = sim(profile, seed, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
            let client = unpaced_client(&sim);
            check(&sim, &client, &format!("{profile:?} seed {seed}")).await;
            let log = sim.log();
            assert_eq!(log.duplicate_gets(), 0, "{profile:?} seed {seed}: no GET repeated");
            assert!(!log.calls_by_endpoint().keys().any(|e| e.contains("emailsClicked")));
        }
    }
}

#[tokio::test]
async fn with_injected_faults_the_dashboards_are_still_exact() {
    let settings =
        Settings { limit: LimitMode::Anchored, faults: Faults::transient(0.05), ..Settings::default() };
    let sim = sim(Profile::L, 7, settings).await;
    let client = paced_client(&sim);
    check(&sim, &client, "L seed 7, 5 % faults").await;
    let log = sim.log();
    println!(
        "dashboards with 5 % faults: {} requests, {} faults met, {} answered 429, max {} arrivals in any 2 s",
        log.total(),
        client.stats().faults,
        log.rate_limited(),
        log.max_arrivals_in(std::time::Duration::from_secs(2))
    );
    assert!(client.stats().faults > 0);
    assert_eq!(log.rate_limited(), 0);
}
