//! Both dashboards, served by the real handlers over HTTP and computed from the simulator's
//! API, equal the simulator's own ground truth, row for row and field for field; the actions
//! reach lemlist.

use std::time::Duration;

use lemdash_shared::api::PARTIAL_HEADER;
use lemdash_shared::dashboard;
use lemdash_shared::lemlist::LemlistClient;
use lemdash_tests::truth;
use lemlist_sim::{Faults, LimitMode, Profile, Settings, Sim};
use serde_json::Value;

use crate::support::{self, paced_client, sim, unpaced_client};

fn json<T: serde::Serialize>(rows: &[T]) -> Vec<Value> {
    rows.iter().map(|r| serde_json::to_value(r).unwrap()).collect()
}

fn assert_rows_equal(label: &str, got: Vec<Value>, want: Vec<Value>) {
    assert_eq!(got.len(), want.len(), "{label}: row count");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "{label}: row {i}");
    }
}

/// Serves both functions' routes over HTTP for `client`, like `lemdash serve`.
async fn serve(client: &LemlistClient, budget: Duration) -> String {
    support::serve(support::api(client, budget)).await
}

async fn get_rows(url: &str) -> (Vec<Value>, Option<String>) {
    let response = reqwest::get(url).await.expect("lemdash answers");
    assert_eq!(response.status(), 200, "{url}");
    let partial = response.headers().get(PARTIAL_HEADER).map(|v| v.to_str().unwrap().to_owned());
    (response.json().await.expect("a JSON array"), partial)
}

async fn check(sim: &Sim, client: &LemlistClient, label: &str) {
    let base = serve(client, Duration::from_secs(120)).await;
    let team = sim.team();
    let (campaigns, partial) = get_rows(&format!("{base}/api/campaigns/dashboard")).await;
    assert_eq!(partial, None, "{label}: complete");
    assert_rows_equal(&format!("{label} campaigns"), campaigns, json(&truth::campaigns_dashboard(&team)));
    let (mailboxes, partial) = get_rows(&format!("{base}/api/mailboxes")).await;
    assert_eq!(partial, None, "{label}: complete");
    assert_rows_equal(&format!("{label} mailboxes"), mailboxes, json(&truth::mailboxes_dashboard(&team)));
}

#[tokio::test]
async fn computing_both_dashboards_together_fetches_each_resource_once() {
    let sim = sim(Profile::M, 5, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let client = unpaced_client(&sim);
    let data = dashboard::fetch(&client).await.unwrap();
    let team = sim.team();
    let campaigns = dashboard::campaigns_dashboard(&data);
    let mailboxes = dashboard::mailboxes_dashboard(&data);
    assert!(campaigns.missing.is_empty() && mailboxes.missing.is_empty());
    assert_rows_equal("M together", json(&campaigns.rows), json(&truth::campaigns_dashboard(&team)));
    assert_rows_equal("M together", json(&mailboxes.rows), json(&truth::mailboxes_dashboard(&team)));
    let log = sim.log();
    assert_eq!(log.duplicate_gets(), 0, "no GET repeated");
    let calls = log.calls_by_endpoint();
    assert_eq!(calls["GET /campaigns"], 1);
    assert_eq!(calls["GET /campaigns/{id}"], 40, "every campaign's senders, once");
    assert_eq!(calls["GET /campaigns/{id}/export/leads"], 12, "running campaigns' leads, once for both");
    assert!(!log.entries.iter().any(|e| e.target.contains("emailsClicked")), "clicks are never read");
    println!("both dashboards of M: {} calls {:?}", log.total(), calls);
}

#[tokio::test]
async fn sixteen_concurrent_requests_stay_within_the_limit() {
    let sim = sim(Profile::S, 8, Settings { limit: LimitMode::Anchored, ..Settings::default() }).await;
    let client = paced_client(&sim);
    let base = serve(&client, Duration::from_secs(300)).await;
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..16 {
        let url = format!("{base}/api/{}", if i % 2 == 0 { "campaigns/dashboard" } else { "mailboxes" });
        requests.spawn(async move { get_rows(&url).await });
    }
    while let Some(done) = requests.join_next().await {
        let (_, partial) = done.unwrap();
        assert_eq!(partial, None);
    }
    let log = sim.log();
    println!(
        "16 concurrent dashboard requests: {} calls, max {} arrivals in any 2 s, {} answered 429",
        log.total(),
        log.max_arrivals_in(Duration::from_secs(2)),
        log.rate_limited()
    );
    assert_eq!(log.rate_limited(), 0);
    assert!(log.max_arrivals_in(Duration::from_secs(2)) <= 20);
}

#[tokio::test]
async fn actions_reach_lemlist_and_map_its_errors() {
    let sim = sim(Profile::S, 9, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let base = serve(&unpaced_client(&sim), Duration::from_secs(30)).await;
    let team = sim.team();
    let http = reqwest::Client::new();
    let post = |path: String| http.post(format!("{base}{path}")).send();

    let mailbox = team.users[0].mailboxes.iter().find(|m| !m.lemwarm_active).unwrap().id.clone();
    let r = post(format!("/api/mailboxes/{mailbox}/start-lemwarm")).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"success": true, "message": "Lemwarm started successfully"}));
    let warming = |sim: &Sim| {
        sim.team()
            .users
            .iter()
            .flat_map(|u| u.mailboxes.clone())
            .find(|m| m.id == mailbox)
            .unwrap()
            .lemwarm_active
    };
    assert!(warming(&sim));
    let r = post(format!("/api/mailboxes/{mailbox}/stop-lemwarm")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(!warming(&sim));

    let running = team.campaigns.iter().find(|c| c.status == "running").unwrap().id.clone();
    let r = post(format!("/api/campaigns/{running}/set-inactive")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sim.team().campaigns.iter().find(|c| c.id == running).unwrap().status, "paused");

    // lemlist's 404 comes back as a 404 with its message in `detail`.
    let r = post("/api/campaigns/cam_AAAAAAAAAAAAAAAAA/set-inactive".into()).await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("Campaign not found"), "{body}");

    // Invalid ids never reach lemlist.
    let before = sim.log().total();
    for path in ["/api/campaigns/123/set-inactive", "/api/mailboxes/usm_short/stop-lemwarm"] {
        let r = post(path.into()).await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
    }
    assert_eq!(sim.log().total(), before);
}

#[tokio::test]
async fn both_dashboards_equal_the_ground_truth_for_every_profile_and_seed() {
    for profile in [Profile::S, Profile::M, Profile::L] {
        for seed in [1, 2, 3] {
            let sim = sim(profile, seed, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
            let client = unpaced_client(&sim);
            check(&sim, &client, &format!("{profile:?} seed {seed}")).await;
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
