//! lemlist's webhooks against the simulator over HTTP: lemdash registers its hooks, the
//! simulator delivers every new activity (late, out of order, sometimes twice, sometimes never),
//! and the activity figures of both dashboards follow without a lemlist call; the next
//! scheduled refresh repairs what was dropped and counts it as missed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lemdash_shared::api::Function;
use lemdash_shared::app::App;
use lemdash_shared::refresh::{Outcome, Refresher};
use lemdash_shared::snapshot::{Board, MemorySnapshots};
use lemdash_tests::truth;
use lemlist_sim::live::Event;
use lemlist_sim::{Delivery, LimitMode, Profile, Settings, Sim};
use serde_json::{Value, json};

use crate::support::{sim, unpaced_client};

/// lemdash with webhooks, served over HTTP on a free port (its URL is the public one).
async fn lemdash(sim: &Sim) -> (App, String) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("a free port");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut config = lemdash_tests::app::config(Duration::from_secs(20));
    config.hooks.public_url = Some(url.clone());
    config.hooks.off_because = None;
    let app =
        lemdash_tests::app::with(&config, sim, &unpaced_client(sim), Arc::new(MemorySnapshots::default()));
    let router = app.api().router(Function::All);
    tokio::spawn(async move {
        axum::serve(listener, axum::ServiceExt::<axum::extract::Request>::into_make_service(router)).await
    });
    (app, url)
}

async fn refresh(r: &Refresher) {
    match r.run().await.expect("the refresh runs") {
        Outcome::Refreshed(_) => {}
        other => panic!("no other refresh runs: {other:?}"),
    }
}

/// The activity figures of both dashboards, by row: what events can move.
fn activity_figures(campaigns: &Value, mailboxes: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for row in campaigns.as_array().into_iter().flatten() {
        let figures = json!([row["people_engaged"], row["open_rate"], row["reply_rate"]]);
        out.insert(format!("campaign {}", row["campaign_id"]), figures);
    }
    for row in mailboxes.as_array().into_iter().flatten() {
        out.insert(format!("mailbox {}", row["email"]), row["performance"].clone());
    }
    out
}

async fn served(r: &Refresher, board: Board) -> Value {
    let served = r.latest(board).await.unwrap().expect("a snapshot is stored");
    serde_json::from_str(&served.body).unwrap()
}

/// Whether the served activity figures equal the truth now; the differences otherwise.
async fn figures_exact(sim: &Sim, r: &Refresher) -> Result<(), String> {
    let team = sim.team();
    let want = activity_figures(
        &truth::expected(&team, Board::Campaigns, sim.now()),
        &truth::expected(&team, Board::Mailboxes, sim.now()),
    );
    let got = activity_figures(&served(r, Board::Campaigns).await, &served(r, Board::Mailboxes).await);
    let differ: Vec<String> = want
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: served {:?}, truth {v}", got.get(k)))
        .collect();
    if differ.is_empty() && got.len() == want.len() { Ok(()) } else { Err(differ.join("; ")) }
}

/// Applies `n` activity events (sends, opens, replies, bounces) now.
fn activity_burst(sim: &Sim, n: usize) -> usize {
    let kinds = [Event::Sent, Event::Sent, Event::Opened, Event::Opened, Event::Replied, Event::Bounced];
    (0..n).filter(|i| sim.apply(kinds[i % kinds.len()])).count()
}

async fn until_exact(sim: &Sim, r: &Refresher, within: Duration) -> Result<Duration, String> {
    let started = std::time::Instant::now();
    loop {
        match figures_exact(sim, r).await {
            Ok(()) => return Ok(started.elapsed()),
            Err(e) if started.elapsed() > within => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test]
async fn delivered_activities_reach_both_dashboards_without_a_lemlist_call() {
    let sim = sim(Profile::M, 61, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let (app, url) = lemdash(&sim).await;
    let r = app.refresher();
    refresh(r).await;
    let hooks = sim.hooks();
    assert_eq!(hooks.len(), lemdash_shared::hooks::TYPES.len(), "one hook per type");
    for h in &hooks {
        assert!(h.target_url.starts_with(&format!("{url}/hooks/lemlist/")), "{}", h.target_url);
        assert!(h.secret.as_ref().is_some_and(|s| s.len() >= 64), "each hook has its own long secret");
    }
    let urls: std::collections::BTreeSet<&str> = hooks.iter().map(|h| h.target_url.as_str()).collect();
    assert_eq!(urls.len(), hooks.len(), "each on its own URL");
    figures_exact(&sim, r).await.expect("exact after the first sync");

    sim.clear_log();
    let applied = activity_burst(&sim, 120);
    assert!(applied > 60, "the burst applied {applied} activities");
    assert!(
        figures_exact(&sim, r).await.is_err(),
        "the burst changed figures the dashboards do not show yet"
    );
    let took = until_exact(&sim, r, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("after the burst: {e}"));
    assert_eq!(sim.log().total(), 0, "no lemlist call on the events' path");
    let status = r.sync_status().await.unwrap();
    let receiver = status.hooks.receiver.clone().unwrap();
    assert!(status.hooks.enabled && receiver.deliveries >= applied as u64, "{:?}", status.hooks);
    println!("{applied} activities delivered: both dashboards exact {} ms after the burst", took.as_millis());

    // The scheduled refresh finds nothing that the hooks did not deliver.
    refresh(r).await;
    figures_exact(&sim, r).await.expect("exact after the refresh");
    let hooks = r.sync_status().await.unwrap().hooks;
    assert_eq!(hooks.misses.values().sum::<u64>(), 0, "{:?}", hooks.misses);
    assert_eq!(hooks.recreated, 0);
}

#[tokio::test]
async fn duplicated_and_dropped_deliveries_never_count_twice_and_the_refresh_repairs_the_drops() {
    let delivery = Delivery { duplicates: 0.05, drops: 0.02, ..Delivery::default() };
    let settings = Settings { limit: LimitMode::Off, delivery, ..Settings::default() };
    let sim = sim(Profile::M, 62, settings).await;
    let (app, _) = lemdash(&sim).await;
    let r = app.refresher();
    refresh(r).await;
    let mut applied = 0;
    for _ in 0..4 {
        applied += activity_burst(&sim, 100);
    }
    // Every delivery has landed (the longest delay is 1.2 s): what is still wrong was dropped.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let delivered = sim.delivered();
    assert!(delivered.duplicated > 0 && delivered.dropped > 0, "{delivered:?} of {applied}");
    let before = figures_exact(&sim, r).await;
    // Past the grace of a delivery's delay: the next refresh may call what it finds a miss.
    sim.clock().set(sim.now() + chrono::Duration::minutes(4));
    refresh(r).await;
    figures_exact(&sim, r).await.unwrap_or_else(|e| panic!("after the refresh repaired the drops: {e}"));
    let hooks = r.sync_status().await.unwrap().hooks;
    let misses: u64 = hooks.misses.values().sum();
    assert!(misses > 0 && misses <= delivered.dropped, "{misses} misses of {} drops", delivered.dropped);
    let receiver = hooks.receiver.unwrap();
    assert!(receiver.duplicates > 0, "{receiver:?}");
    println!(
        "{applied} activities, {} duplicated, {} dropped: before the refresh {}, {misses} misses counted",
        delivered.duplicated,
        delivered.dropped,
        if before.is_ok() { "exact" } else { "short of the drops" }
    );
}

#[tokio::test]
async fn bad_deliveries_change_nothing_and_are_counted_by_reason() {
    let sim = sim(Profile::S, 63, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let (app, url) = lemdash(&sim).await;
    let r = app.refresher();
    refresh(r).await;
    let sent = sim.hooks().into_iter().find(|h| h.kind.as_deref() == Some("emailsSent")).unwrap();
    let secret = sent.secret.clone().unwrap();
    let team = sim.team();
    // An old send, counted by the first sync: replayed, it changes nothing.
    let old = team.activities.iter().find(|a| a.kind == "emailsSent").unwrap();
    let mut good = serde_json::to_value(old).unwrap();
    good["teamId"] = json!(team.id);
    good["secret"] = json!(secret);
    let campaigns = served(r, Board::Campaigns).await;
    let mailboxes = served(r, Board::Mailboxes).await;

    let http = reqwest::Client::new();
    let post = |target: String, body: Vec<u8>| {
        let http = http.clone();
        async move { http.post(target).body(body).send().await.unwrap().status().as_u16() }
    };
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v.to_string().into_bytes()
    };
    let wrong_token = sent.target_url.replace("/hooks/lemlist/", "/hooks/lemlist/00");
    let other_type = sent.target_url.replace("/emailsSent", "/emailsOpened");
    let cases: Vec<(String, Vec<u8>, u16)> = vec![
        (wrong_token, with(&|_| {}), 404),
        (sent.target_url.clone(), with(&|v| v["secret"] = json!("wrong")), 404),
        (sent.target_url.clone(), with(&|v| drop(v.as_object_mut().unwrap().remove("secret"))), 404),
        (sent.target_url.clone(), with(&|v| v["teamId"] = json!("tea_someoneelse")), 200),
        (sent.target_url.clone(), vec![b'x'; 300 * 1024], 413),
        (sent.target_url.clone(), b"{\"secret\": ".to_vec(), 404),
        // The hook of another type: its token is right, but the path names another type.
        (other_type, with(&|_| {}), 200),
        (format!("{url}/hooks/lemlist/abc/bogusType"), with(&|_| {}), 404),
        // An old event replayed, twice: the activity is counted already.
        (sent.target_url.clone(), with(&|_| {}), 200),
        (sent.target_url.clone(), with(&|_| {}), 200),
    ];
    for (i, (target, body, status)) in cases.into_iter().enumerate() {
        assert_eq!(post(target, body).await, status, "case {i}");
    }
    // A flood.
    let flood: Vec<_> =
        (0..1000).map(|_| post(sent.target_url.clone(), with(&|v| v["secret"] = json!("x")))).collect();
    for status in futures_join(flood).await {
        assert_eq!(status, 404);
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(served(r, Board::Campaigns).await, campaigns, "no figure changed");
    let now = served(r, Board::Mailboxes).await;
    let changed: Vec<(&Value, &Value)> =
        now.as_array().unwrap().iter().zip(mailboxes.as_array().unwrap()).filter(|(a, b)| a != b).collect();
    assert!(changed.is_empty(), "no figure changed: {changed:?}");
    let receiver = r.sync_status().await.unwrap().hooks.receiver.unwrap();
    let reasons = |k: &str| receiver.rejected.get(k).copied().unwrap_or_default();
    assert_eq!(reasons("bad_secret"), 1002);
    assert_eq!(reasons("unknown_token"), 2);
    let others = ["other_team", "too_large", "malformed", "wrong_type"].map(reasons);
    assert_eq!(others, [1, 1, 1, 1]);
    assert_eq!((receiver.deliveries, receiver.duplicates), (1, 1), "kept once, then a duplicate");
}

/// Runs every future to its end, all at once.
async fn futures_join<F: std::future::Future<Output = u16> + Send + 'static>(all: Vec<F>) -> Vec<u16> {
    let handles: Vec<_> = all.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_hook_deleted_behind_lemdashs_back_is_recreated_and_another_integrations_is_untouched() {
    let sim = sim(Profile::S, 64, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let (app, _) = lemdash(&sim).await;
    let r = app.refresher();
    refresh(r).await;
    let zapier = sim.add_hook("https://hooks.zapier.com/hooks/catch/1/abc", Some("emailsSent"));
    let sent = sim.hooks().into_iter().find(|h| h.kind.as_deref() == Some("emailsSent") && h.id != zapier.id);
    assert!(sim.delete_hook(&sent.as_ref().unwrap().id), "deleted in lemlist's UI");
    refresh(r).await;
    let hooks = sim.hooks();
    assert!(hooks.contains(&zapier), "another integration's hook is untouched");
    assert_eq!(hooks.len(), lemdash_shared::hooks::TYPES.len() + 1);
    let again = hooks.iter().find(|h| h.kind.as_deref() == Some("emailsSent") && h.id != zapier.id).unwrap();
    assert_ne!(again.target_url, sent.unwrap().target_url, "a new token");
    assert_eq!(r.sync_status().await.unwrap().hooks.recreated, 1);
    // The recreated hook delivers.
    let applied = activity_burst(&sim, 30);
    until_exact(&sim, r, Duration::from_secs(20)).await.unwrap_or_else(|e| panic!("after {applied}: {e}"));
}
