//! Both dashboards, served by the real handlers over HTTP and computed from the simulator's
//! API, equal the simulator's own ground truth, row for row and field for field; the actions
//! reach lemlist.

use std::time::Duration;

use lemdash_shared::api::PARTIAL_HEADER;
use lemdash_shared::dashboard;
use lemdash_shared::lemlist::LemlistClient;
use lemdash_shared::snapshot::Board;
use lemdash_tests::truth;
use lemlist_sim::{Faults, LeadShape, LimitMode, Profile, Settings, Sim};
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
async fn serve(sim: &Sim, client: &LemlistClient, budget: Duration) -> String {
    support::serve(support::api(sim, client, budget)).await
}

async fn get_rows(url: &str) -> (Vec<Value>, Option<String>) {
    let response = reqwest::get(url).await.expect("lemdash answers");
    assert_eq!(response.status(), 200, "{url}");
    let partial = response.headers().get(PARTIAL_HEADER).map(|v| v.to_str().unwrap().to_owned());
    (response.json().await.expect("a JSON array"), partial)
}

async fn check(sim: &Sim, client: &LemlistClient, label: &str) {
    let api = support::api(sim, client, Duration::from_secs(120));
    let refresher = api.refresher().clone();
    let base = support::serve(api).await;
    let team = sim.team();
    let (campaigns, partial) = get_rows(&format!("{base}/api/campaigns/dashboard")).await;
    assert_eq!(partial, None, "{label}: complete");
    assert_rows_equal(&format!("{label} campaigns"), campaigns, json(&truth::campaigns_dashboard(&team)));
    // The first sync published both dashboards before its daily counts, the mailboxes' rows
    // saying so (one part missing: the performance); then come the counts.
    let (mailboxes, partial) = get_rows(&format!("{base}/api/mailboxes")).await;
    let body = Value::Array(mailboxes.clone());
    let want = truth::expected_for_body(sim, &refresher, Board::Mailboxes, &body).await;
    let early = want == truth::counts_pending(&team);
    assert_eq!(partial.as_deref(), early.then_some("1"), "{label}: complete but for the counts");
    assert_rows_equal(&format!("{label} mailboxes"), mailboxes, want.as_array().unwrap().clone());
    support::first_sync_done(&refresher).await;
    let (mailboxes, partial) = get_rows(&format!("{base}/api/mailboxes")).await;
    assert_eq!(partial, None, "{label}: complete");
    // Served from a snapshot: the rows carry their performance as of the snapshot.
    let want = truth::expected_for_stored(sim, &refresher, Board::Mailboxes).await;
    assert_rows_equal(&format!("{label} mailboxes, counted"), mailboxes, want.as_array().unwrap().clone());
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
    let base = serve(&sim, &client, Duration::from_secs(300)).await;
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..16 {
        let url = format!("{base}/api/{}", if i % 2 == 0 { "campaigns/dashboard" } else { "mailboxes" });
        requests.spawn(async move { get_rows(&url).await });
    }
    while let Some(done) = requests.join_next().await {
        let (rows, partial) = done.unwrap();
        // Complete, but for the mailboxes' performance while the first sync reads the counts.
        let pending = rows.iter().any(|r| r["missing"].as_array().is_some_and(|m| !m.is_empty()));
        assert_eq!(partial.as_deref(), pending.then_some("1"));
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
    let base = serve(&sim, &unpaced_client(&sim), Duration::from_secs(30)).await;
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
    assert!(
        log.max_arrivals_in(std::time::Duration::from_secs(2)) <= 20,
        "lemlist's limit, measured at the server"
    );
}

#[tokio::test]
async fn a_lead_export_in_the_documented_shape_is_reported_missing_not_ended() {
    let settings =
        Settings { limit: LimitMode::Off, lead_shape: LeadShape::Documented, ..Settings::default() };
    let sim = sim(Profile::S, 4, settings).await;
    let base = serve(&sim, &unpaced_client(&sim), Duration::from_secs(60)).await;
    let (campaigns, partial) = get_rows(&format!("{base}/api/campaigns/dashboard")).await;
    let truth = json(&truth::campaigns_dashboard(&sim.team()));
    assert_eq!(campaigns.len(), truth.len(), "no row is dropped");
    let team = sim.team();
    let with_leads = |id: &str| team.campaigns.iter().any(|c| c.id == id && !c.leads.is_empty());
    let unreadable = truth.iter().filter(|r| with_leads(r["campaign_id"].as_str().unwrap())).count();
    assert!(unreadable > 0);
    assert_eq!(partial, Some(unreadable.to_string()), "every export with rows is unreadable");
    for row in &campaigns {
        if !with_leads(row["campaign_id"].as_str().unwrap()) {
            assert!(row.get("missing").is_none(), "an empty export is complete: {row}");
            continue;
        }
        let missing: Vec<&str> =
            row["missing"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
        assert_eq!(missing, ["people_count", "companies_count", "campaign_status"], "{row}");
        assert_eq!(row["campaign_status"], "active", "never \"ended\" for lack of states: {row}");
    }
    // The activity-based figures do not depend on lead states and stay exact.
    for (row, want) in campaigns.iter().zip(&truth) {
        for field in ["campaign_id", "people_engaged", "open_rate", "reply_rate"] {
            assert_eq!(row[field], want[field], "{field}");
        }
    }
    // The mailboxes that only those campaigns could make busy say so.
    let (_, partial) = get_rows(&format!("{base}/api/mailboxes")).await;
    assert!(partial.is_some());
}

#[tokio::test]
async fn a_permanently_failing_export_serves_its_row_marked_missing() {
    let sim = sim(Profile::S, 6, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let truth = json(&truth::campaigns_dashboard(&sim.team()));
    let broken = truth[0]["campaign_id"].as_str().unwrap().to_owned();
    sim.configure(|s| s.broken_exports = vec![broken.clone()]);
    let base = serve(&sim, &unpaced_client(&sim), Duration::from_secs(60)).await;
    let (campaigns, partial) = get_rows(&format!("{base}/api/campaigns/dashboard")).await;
    assert_eq!(partial.as_deref(), Some("1"), "one part is missing");
    assert_eq!(campaigns.len(), truth.len(), "the row is kept");
    assert_eq!(campaigns[0]["campaign_id"], broken.as_str());
    assert_eq!(campaigns[0]["missing"], serde_json::json!(["leads"]));
    assert_eq!(campaigns[0]["people_engaged"], truth[0]["people_engaged"], "what could be read is exact");
    assert_rows_equal("the other rows", campaigns[1..].to_vec(), truth[1..].to_vec());
    let retried =
        sim.log().own().filter(|e| e.target.contains(&broken) && e.target.contains("export")).count();
    assert!(retried > 1, "a 500 is retried before the part is reported missing ({retried} attempts)");
}
