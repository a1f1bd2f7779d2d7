//! The API key never shows: a full local run (start-up, dashboards, refreshes, actions,
//! lemlist's errors, faults and 429s) logged at debug level, searched for the key.

use std::sync::Arc;

use base64::Engine;
use lemdash_shared::app::App;
use lemdash_shared::config::Config;
use lemlist_sim::{Faults, LimitMode, Profile, Settings, Sim, SimConfig};

const KEY: &str = "lemlist-live-KEY-9f8e7d6c5b4a";

// One thread, so that the subscriber set for this test sees every task it spawns.
#[tokio::test(flavor = "current_thread")]
async fn the_key_never_appears_in_the_logs_of_a_full_run() {
    let (captured, _guard) = crate::support::capture_logs();

    let mut config = SimConfig::new(Profile::S, 12);
    config.keys = vec![KEY.to_owned()];
    config.settings =
        Settings { limit: LimitMode::Anchored, faults: Faults::transient(0.1), ..Settings::default() };
    let sim = Sim::start(config).await.unwrap();
    let base_url = sim.base_url();
    let env = |name: &str| match name {
        "LEMLIST_API_KEY" => Some(KEY.to_owned()),
        "LEMLIST_BASE_URL" => Some(base_url.clone()),
        "REQUEST_BUDGET_SECS" => Some("60".to_owned()),
        _ => None,
    };
    let app = App::build(Config::from_lookup(env).unwrap()).await.unwrap();
    tracing::info!(app = ?app, "built");
    let base = crate::support::serve(app.api().clone()).await;

    let client = reqwest::Client::new();
    let team = sim.team();
    let mailbox = &team.users[0].mailboxes[0].id;
    let campaign = &team.campaigns[0].id;
    let mut statuses = Vec::new();
    for (method, path) in [
        ("GET", "/api/campaigns/dashboard".to_owned()),
        ("GET", "/api/mailboxes?refresh=true".to_owned()),
        ("POST", format!("/api/mailboxes/{mailbox}/start-lemwarm")),
        ("POST", format!("/api/campaigns/{campaign}/set-inactive")),
        ("POST", "/api/campaigns/cam_AAAAAAAAAAAAAAAAA/set-inactive".to_owned()),
        ("POST", "/api/mailboxes/not-an-id/stop-lemwarm".to_owned()),
        ("GET", "/api/nothing".to_owned()),
    ] {
        let request = if method == "GET" {
            client.get(format!("{base}{path}"))
        } else {
            client.post(format!("{base}{path}"))
        };
        statuses.push(request.send().await.unwrap().status().as_u16());
    }
    // A client with no pacing meets lemlist's 429s, which are logged too.
    let unpaced = crate::support::client_with(&sim, Arc::new(lemdash_shared::limiter::Unlimited));
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let c = unpaced.clone();
        burst.spawn(async move { c.team().await.map(drop) });
    }
    while burst.join_next().await.is_some() {}
    // The cold page was answered before the first sync's daily counts; it ends meanwhile.
    crate::support::first_sync_done(app.refresher()).await;

    let logs = captured.text();
    assert_eq!(statuses, [200, 200, 200, 200, 404, 400, 404]);
    assert!(logs.contains("lemlist answered 429"), "the run met 429s");
    assert!(logs.contains("refresh stored"));
    assert!(logs.lines().count() > 50, "debug logs were captured: {}", logs.lines().count());
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(":{KEY}"));
    for secret in [KEY, basic.as_str()] {
        let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "{} log lines contain the key, e.g. {}", leaks.len(), leaks[0]);
    }
    println!("{} log lines at debug level, none with the key", logs.lines().count());
}
