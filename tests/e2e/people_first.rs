//! People before machines in the shared budget: a person's request takes the next free slot
//! ahead of a running refresh, in one process and across processes, and scheduled work keeps
//! to its share of the key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lemdash_shared::api::REFRESH_HEADER;
use lemdash_shared::lemlist::LemlistClient;
use lemdash_shared::limiter::dynamo::DynamoStore;
use lemdash_shared::limiter::{
    Adaptive, Class, PermitSource, SharedLimiter, SharedSettings, StrictPacer, SystemClock,
};
use lemdash_shared::refresh::Outcome;
use lemdash_shared::secret::ApiKey;
use lemdash_shared::snapshot::Board;
use lemdash_tests::dynamo_local::{DynamoLocal, create_limiter_table};
use lemdash_tests::truth;
use lemlist_sim::{Latency, LimitMode, Profile, Settings, Sim};
use serde_json::Value;

use crate::support::{self, client_with, sim};

const TWO_SECONDS: Duration = Duration::from_secs(2);

fn settings() -> Settings {
    Settings { limit: LimitMode::Anchored, latency: Latency::LEMLIST, ..Settings::default() }
}

fn percentiles(mut waits: Vec<Duration>) -> String {
    waits.sort();
    let at = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize];
    format!("p50 {:?}, p99 {:?}, max {:?}", at(0.5), at(0.99), at(1.0))
}

fn assert_limit_kept(sim: &Sim, label: &str) {
    let log = sim.log();
    println!(
        "{label}: {} requests, max {} arrivals in any 2 s, {} answered 429",
        log.total(),
        log.max_arrivals_in(TWO_SECONDS),
        log.rate_limited()
    );
    assert_eq!(log.rate_limited(), 0, "{label}");
    assert!(log.max_arrivals_in(TWO_SECONDS) <= 20, "{label}");
}

/// One action, as the simulator and lemdash saw it.
struct Asked {
    /// When it was asked, on the simulator's clock of arrivals.
    at: Duration,
    /// lemdash's calls waiting for a permit then: the refresh's queue.
    queued: u64,
    took: Duration,
}

/// Ten lemwarm actions, one every `every`, on the first mailbox, while `client`'s refresh runs.
async fn ten_actions(base: &str, sim: &Sim, client: &LemlistClient, every: Duration) -> Vec<Asked> {
    let mailbox = sim.team().users[0].mailboxes[0].id.clone();
    let http = reqwest::Client::new();
    let mut asked = Vec::new();
    for i in 0..10 {
        tokio::time::sleep(every).await;
        let action = if i % 2 == 0 { "start-lemwarm" } else { "stop-lemwarm" };
        let (at, queued, started) = (sim.elapsed(), client.stats().waiting, Instant::now());
        let r = http.post(format!("{base}/api/mailboxes/{mailbox}/{action}")).send().await.unwrap();
        asked.push(Asked { at, queued, took: started.elapsed() });
        assert_eq!(r.status(), 200, "action {i} succeeded: {}", r.text().await.unwrap_or_default());
    }
    asked
}

/// At most this many refresh calls may reach lemlist between an action's request and its own
/// call: those already granted a permit or on their way (a FIFO line would let every queued
/// call go first).
const OVERTAKEN_AT_MOST: usize = 2;

/// Each action's call reached the simulator ahead of the refresh calls queued before it was
/// asked: at most [`OVERTAKEN_AT_MOST`] of them arrived in between, fewer than were queued;
/// and the refresh was queueing for most actions (so a FIFO line would have failed this).
fn assert_actions_went_first(sim: &Sim, asked: &[Asked], label: &str) {
    let log = sim.log();
    let mut calls: Vec<_> = log.own().collect();
    calls.sort_by_key(|e| e.at);
    let mut behind_a_queue = 0;
    for (i, a) in asked.iter().enumerate() {
        let own = calls
            .iter()
            .find(|e| e.at >= a.at && e.method == "POST" && e.endpoint.starts_with("POST /lemwarm/"))
            .unwrap_or_else(|| panic!("{label}: action {i}'s call reached lemlist"));
        let overtaken = calls.iter().filter(|e| e.at >= a.at && e.at < own.at && e.method == "GET").count();
        assert!(
            overtaken <= OVERTAKEN_AT_MOST && (a.queued == 0 || overtaken < a.queued as usize),
            "{label}: action {i} asked with {} refresh calls queued; {overtaken} of them reached lemlist first",
            a.queued
        );
        behind_a_queue += usize::from(a.queued > OVERTAKEN_AT_MOST as u64 + 1);
    }
    assert!(behind_a_queue >= 8, "{label}: the refresh was queueing behind only {behind_a_queue} actions");
}

#[tokio::test]
async fn in_one_process_actions_go_ahead_of_a_refresh_that_saturates_its_share() {
    let sim = sim(Profile::L, 61, settings()).await;
    let client = client_with(&sim, Arc::new(StrictPacer::lemlist_with_share(0.75)));
    let api = support::api(&sim, &client, Duration::from_secs(25));
    let refresher = api.refresher().clone();
    let base = support::serve(api).await;
    let refresh = tokio::spawn({
        let refresher = refresher.clone();
        async move { refresher.run().await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let asked = ten_actions(&base, &sim, &client, Duration::from_millis(1500)).await;
    let Outcome::Refreshed(f) = refresh.await.unwrap().unwrap() else { panic!("the refresh ran") };
    assert_actions_went_first(&sim, &asked, "one process");
    let took: Vec<Duration> = asked.iter().map(|a| a.took).collect();
    println!(
        "one process, share 0.75, refresh of L ({} calls in {:.1} s): actions took {}; longest interactive wait for a permit {} ms",
        f.calls,
        f.duration_ms as f64 / 1000.0,
        percentiles(took),
        client.stats().longest_interactive_wait_ms
    );
    assert_limit_kept(&sim, "one process");
    let rows: Value = reqwest::get(format!("{base}/api/mailboxes")).await.unwrap().json().await.unwrap();
    assert_eq!(
        rows,
        truth::expected_for_stored(&sim, &refresher, Board::Mailboxes).await,
        "the refresh ends exact"
    );
    let rows: Value =
        reqwest::get(format!("{base}/api/campaigns/dashboard")).await.unwrap().json().await.unwrap();
    assert_eq!(rows, serde_json::to_value(truth::campaigns_dashboard(&sim.team())).unwrap());
}

fn shared_limiter(endpoint: &str, key: &str, share_lanes: usize) -> Arc<SharedLimiter<DynamoStore>> {
    let store = DynamoStore::new(lemdash_shared::dynamo::local_client(endpoint), "lemdash-limiter");
    let settings = SharedSettings { share_lanes, ..SharedSettings::default() };
    Arc::new(SharedLimiter::new(
        store,
        ApiKey::new(key).fingerprint(),
        Arc::new(SystemClock::default()),
        settings,
    ))
}

#[tokio::test]
async fn across_processes_actions_find_a_free_slot_while_another_process_saturates_its_share() {
    let dynamo = DynamoLocal::start().expect("DynamoDB Local starts");
    create_limiter_table(&dynamo.endpoint, "lemdash-limiter").await.unwrap();
    let sim = sim(Profile::S, 62, settings()).await;
    // Another OS process: scheduled work on 15 of the 20 lanes, as much as it can.
    let load = tokio::process::Command::new(env!("CARGO_BIN_EXE_lemdash-load"))
        .args(["--base-url", &sim.base_url(), "--key", sim.key(), "--dynamo", &dynamo.endpoint])
        .args(["--table", "lemdash-limiter", "--tasks", "12", "--requests", "14", "--jitter-ms", "0"])
        .args(["--share-lanes", "15"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the load process starts");
    // This process: a person's actions, each with a 3 s budget (a refusal for lack of budget
    // would fail it).
    let limiter = shared_limiter(&dynamo.endpoint, sim.key(), 15);
    let client = client_with(&sim, limiter.clone() as Arc<dyn PermitSource>).with_class(Class::Interactive);
    let mailbox: lemdash_shared::ids::MailboxId = sim.team().users[0].mailboxes[0].id.parse().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut took = Vec::new();
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let asked = Instant::now();
        let handle = client.with_deadline(asked + Duration::from_secs(3));
        let done = if i % 2 == 0 {
            handle.start_lemwarm(&mailbox).await
        } else {
            handle.pause_lemwarm(&mailbox).await
        };
        took.push(asked.elapsed());
        done.unwrap_or_else(|e| panic!("action {i}: {e}"));
    }
    let out = load.wait_with_output().await.unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the other process finished its work: {line}");
    let report: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(report["granted_degraded"], 0, "{line}");
    println!(
        "across processes: actions took {}; longest interactive wait for a permit {} ms; the other process: {line}",
        percentiles(took),
        client.stats().longest_interactive_wait_ms
    );
    assert_limit_kept(&sim, "across processes");
    assert!(sim.log().total() >= 12 * 14 + 10);
}

#[tokio::test]
async fn with_half_the_budget_a_refresh_alone_keeps_to_ten_in_any_two_seconds() {
    // In one process.
    let sim = sim(Profile::S, 63, settings()).await;
    let client = client_with(&sim, Arc::new(StrictPacer::lemlist_with_share(0.5)));
    let api = support::api(&sim, &client, Duration::from_secs(25));
    assert!(matches!(api.refresher().run().await.unwrap(), Outcome::Refreshed(_)));
    let log = sim.log();
    println!(
        "share 0.5, in-process pacer: {} requests, max {} in any 2 s",
        log.total(),
        log.max_arrivals_in(TWO_SECONDS)
    );
    assert!(log.max_arrivals_in(TWO_SECONDS) <= 10, "{}", log.max_arrivals_in(TWO_SECONDS));
    // While a person's calls may go beyond it, up to the limit.
    let interactive = client.with_class(Class::Interactive);
    sim.clear_log();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let c = interactive.clone();
        calls.spawn(async move { c.team().await.map(drop) });
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap().unwrap();
    }
    let log = sim.log();
    println!("share 0.5, 20 interactive calls: max {} in any 2 s", log.max_arrivals_in(TWO_SECONDS));
    assert!(log.max_arrivals_in(TWO_SECONDS) > 10 && log.max_arrivals_in(TWO_SECONDS) <= 20);

    // Across processes, through the lanes.
    let dynamo = DynamoLocal::start().expect("DynamoDB Local starts");
    create_limiter_table(&dynamo.endpoint, "lemdash-limiter").await.unwrap();
    let sim = support::sim(Profile::S, 64, settings()).await;
    let client = client_with(&sim, shared_limiter(&dynamo.endpoint, sim.key(), 10) as Arc<dyn PermitSource>);
    let api = support::api(&sim, &client, Duration::from_secs(25));
    assert!(matches!(api.refresher().run().await.unwrap(), Outcome::Refreshed(_)));
    let log = sim.log();
    println!(
        "share 0.5, shared lanes: {} requests, max {} in any 2 s",
        log.total(),
        log.max_arrivals_in(TWO_SECONDS)
    );
    assert!(log.max_arrivals_in(TWO_SECONDS) <= 10, "{}", log.max_arrivals_in(TWO_SECONDS));
}

#[tokio::test]
async fn forced_refreshes_in_a_row_compute_at_most_once_per_window_and_say_so() {
    let sim = sim(Profile::S, 65, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let client = support::unpaced_client(&sim);
    let mut config = lemdash_tests::app::config(Duration::from_secs(30));
    config.snapshots.forced_refresh_min = Duration::from_secs(15);
    let app = lemdash_tests::app::with(
        &config,
        &sim,
        &client,
        Arc::new(lemdash_shared::snapshot::MemorySnapshots::default()),
    );
    let base = support::serve(app.api().clone()).await;
    let url = format!("{base}/api/campaigns/dashboard?refresh=true");
    let http = reqwest::Client::new();
    let first = http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()[REFRESH_HEADER], "computed");
    let one = sim.log().total();
    for _ in 0..10 {
        let again = http.get(&url).send().await.unwrap();
        assert_eq!(again.status(), 200);
        assert_eq!(again.headers()[REFRESH_HEADER], "recent", "within FORCED_REFRESH_MIN_SECS");
    }
    assert_eq!(sim.log().total(), one, "ten forced refreshes in a row cost nothing more");
    let plain = http.get(format!("{base}/api/campaigns/dashboard")).send().await.unwrap();
    assert!(plain.headers().get(REFRESH_HEADER).is_none(), "only forced requests say how");
}

#[tokio::test]
async fn with_another_tool_on_the_key_nothing_is_lost_and_every_class_pauses_together() {
    let sim = sim(Profile::M, 66, settings()).await;
    // Another tool takes 4 requests per second: with lemdash's share, more than the key holds.
    sim.start_foreign_traffic(0, 4.0);
    let client = client_with(&sim, Arc::new(StrictPacer::lemlist_with_share(0.75)));
    let api = support::api(&sim, &client, Duration::from_secs(25));
    let refresher = api.refresher().clone();
    let base = support::serve(api).await;
    let refresh = tokio::spawn({
        let refresher = refresher.clone();
        async move { refresher.run().await }
    });
    let asked = ten_actions(&base, &sim, &client, Duration::from_millis(800)).await;
    let Outcome::Refreshed(f) = refresh.await.unwrap().unwrap() else { panic!("the refresh ran") };
    sim.stop_foreign_traffic();
    assert_actions_went_first(&sim, &asked, "another tool at 4/s");
    let took: Vec<Duration> = asked.iter().map(|a| a.took).collect();
    let log = sim.log();
    println!(
        "another tool at 4/s: refresh {} calls in {:.1} s, {} of lemdash's {} calls answered 429 in {} exhausted windows; actions took {}",
        f.calls,
        f.duration_ms as f64 / 1000.0,
        log.rate_limited(),
        log.total(),
        log.exhaustion_episodes(),
        percentiles(took)
    );
    assert_eq!(f.missing, 0, "nothing lost");
    let rows: Value =
        reqwest::get(format!("{base}/api/campaigns/dashboard")).await.unwrap().json().await.unwrap();
    assert_eq!(rows, serde_json::to_value(truth::campaigns_dashboard(&sim.team())).unwrap());
    let rows: Value = reqwest::get(format!("{base}/api/mailboxes")).await.unwrap().json().await.unwrap();
    assert_eq!(rows, truth::expected_for_stored(&sim, &refresher, Board::Mailboxes).await);
    // Once lemlist has said a window is spent, no call of any class is sent into it: none
    // arrives in that window after the answer that said so reached lemdash (calls sent before
    // are on their way; the margin is loopback and the client reading the answer, not latency).
    let own: Vec<_> = log.own().collect();
    let mut inside = Vec::new();
    for spent in own.iter().filter(|e| e.status == 429 || e.remaining == Some(0)) {
        let read = spent.answered + Duration::from_millis(20);
        inside
            .extend(own.iter().filter(|e| e.window == spent.window && e.at > read).map(|e| (e.at, e.status)));
    }
    inside.sort();
    inside.dedup();
    assert!(inside.is_empty(), "every class paused: {inside:?}");
}

/// lemdash reads what another tool spends of the key from `X-RateLimit-Remaining`, keeps its
/// scheduled work to what that tool leaves, and takes its share back when the tool goes quiet.
#[tokio::test]
async fn the_refresh_learns_what_another_tool_uses_and_leaves_it_room() {
    let sim = sim(Profile::S, 70, settings()).await;
    sim.start_foreign_traffic(0, 6.0); // 12 of every 2-second window
    let adaptive = Arc::new(Adaptive::new(StrictPacer::lemlist_with_share(0.75), 15));
    let client = client_with(&sim, adaptive.clone());
    let app = lemdash_tests::app::in_memory(&sim, &client, Duration::from_secs(30));
    for _ in 0..2 {
        assert!(matches!(app.refresher().run().await.unwrap(), Outcome::Refreshed(_)));
    }
    let busy = (adaptive.others_per_window(), adaptive.allowed());
    sim.stop_foreign_traffic();
    let before_quiet = sim.log().total();
    for _ in 0..2 {
        sim.burst(20);
        assert!(matches!(app.refresher().run().await.unwrap(), Outcome::Refreshed(_)));
    }
    let quiet = (adaptive.others_per_window(), adaptive.allowed());
    println!(
        "another tool at 6/s: others estimated at {:.1} per window, lemdash's scheduled work allowed {} per window; after it stopped: {:.1} and {} ({} calls)",
        busy.0,
        busy.1,
        quiet.0,
        quiet.1,
        sim.log().total() - before_quiet
    );
    assert!((8.0..=16.0).contains(&busy.0), "about 12 per window: {busy:?}");
    assert!(busy.1 <= 11, "what the other tool leaves, less a margin: {busy:?}");
    assert!(quiet.0 < 4.0 && quiet.1 >= 14, "the share comes back: {quiet:?}");
    let team = sim.team();
    for board in Board::ALL {
        let served = app.refresher().latest(board).await.unwrap().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&served.body).unwrap(),
            truth::expected(&team, board, served.computed_at)
        );
    }
}
