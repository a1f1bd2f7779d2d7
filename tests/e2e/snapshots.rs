//! Stored dashboards against DynamoDB Local and the simulator: they round-trip exactly, one
//! refresh serves many cold requests, a crashed refresh's lease expires, the first request is
//! told to retry while the first refresh runs, actions show at once, and unchanged dashboards
//! cost a 304.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lemdash_shared::dashboard::{CampaignRow, MailboxFacts};
use lemdash_shared::refresh::{Outcome, Refresher};
use lemdash_shared::snapshot::dynamo::DynamoSnapshots;
use lemdash_shared::snapshot::{Board, Item, SnapshotStore, decode};
use lemdash_tests::dynamo_local::{DynamoLocal, snapshot_store};
use lemdash_tests::truth;
use lemlist_sim::{Latency, LimitMode, Profile, Settings, Sim};
use serde_json::Value;

use crate::support::{self, paced_client, sim, unpaced_client};

use lemdash_tests::app::key;
use lemdash_tests::clock::MovedClock;

async fn dynamo(table: &str) -> (DynamoLocal, DynamoSnapshots) {
    let local = DynamoLocal::start().expect("DynamoDB Local starts");
    let store = snapshot_store(&local.endpoint, table).await.expect("the snapshot table is created");
    (local, store)
}

/// What lemdash should serve from the snapshot of `board` that `r`'s store holds: the truth at
/// that snapshot's own `computed_at`.
async fn truth_json(sim: &Sim, r: &Refresher, board: Board, body: &Value) -> Value {
    truth::expected_for_body(sim, r, board, body).await
}

fn path(board: Board) -> &'static str {
    match board {
        Board::Campaigns => "/api/campaigns/dashboard",
        Board::Mailboxes => "/api/mailboxes",
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test]
async fn the_xl_profiles_snapshots_round_trip_exactly() {
    let (_local, store) = dynamo("snapshots-xl").await;
    let sim = sim(Profile::XL, 4, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let store = Arc::new(store);
    let refresher = Refresher::new(unpaced_client(&sim), store.clone(), key(), Duration::from_secs(30))
        .with_clock(MovedClock::of(&sim));
    let Outcome::Refreshed(figures) = refresher.run().await.unwrap() else { panic!("the lease was free") };
    assert_eq!(figures.missing, 0);
    for board in Board::ALL {
        let served = refresher.latest(board).await.unwrap().expect("stored");
        let body: Value = serde_json::from_str(&served.body).unwrap();
        assert_eq!(body, truth_json(&sim, &refresher, board, &body).await, "{board:?}");
        let stored = store.load(key().as_str(), board.into()).await.unwrap().unwrap();
        println!(
            "XL {board:?}: {} rows, {} bytes served, {} bytes stored compressed",
            body.as_array().unwrap().len(),
            served.body.len(),
            stored.bytes.len()
        );
    }
    let c = decode::<CampaignRow>(&store.load(key().as_str(), Item::Campaigns).await.unwrap().unwrap().bytes)
        .unwrap();
    let m =
        decode::<MailboxFacts>(&store.load(key().as_str(), Item::Mailboxes).await.unwrap().unwrap().bytes)
            .unwrap();
    assert_eq!(c.figures, figures);
    assert_eq!(c.computed_at, m.computed_at, "one pass for both");
    // Every call the refresh counts reached the simulator, except attempts that failed before
    // arriving (about a thousand unpaced connections at once can be refused) and were retried.
    let (arrived, calls, faults) = (sim.log().total() as u64, figures.calls, figures.faults);
    assert!(
        arrived <= calls && calls <= arrived + faults,
        "{arrived} arrived, {calls} sent, {faults} faults"
    );
}

#[tokio::test]
async fn a_snapshot_larger_than_an_item_is_split_and_read_back_whole() {
    let (_local, store) = dynamo("snapshots-split").await;
    // Random bytes do not compress: 1 MB needs three parts.
    let big: Vec<u8> = (0..1_000_000).map(|_| rand::random::<u8>()).collect();
    assert!(store.save(key().as_str(), Item::Mailboxes, big.clone(), None).await.unwrap());
    let stored = store.load(key().as_str(), Item::Mailboxes).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.bytes == big), (1, true));
    assert!(
        !store.save(key().as_str(), Item::Mailboxes, vec![1], None).await.unwrap(),
        "the version moved on"
    );
    assert!(store.save(key().as_str(), Item::Mailboxes, vec![1, 2, 3], Some(1)).await.unwrap());
    let stored = store.load(key().as_str(), Item::Mailboxes).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.bytes), (2, vec![1, 2, 3]));
}

#[tokio::test]
async fn ten_concurrent_cold_requests_cause_exactly_one_refresh() {
    let (local, _) = dynamo("snapshots-cold").await;
    let sim = sim(
        Profile::M,
        6,
        Settings { limit: LimitMode::Off, latency: Latency::LEMLIST, ..Settings::default() },
    )
    .await;
    // Ten invocations: each its own client and store connection, one table, one key.
    let mut urls = Vec::new();
    let mut refreshers = Vec::new();
    for _ in 0..10 {
        let store = snapshot_store(&local.endpoint, "snapshots-cold").await.unwrap();
        let api = support::api_with(&sim, &unpaced_client(&sim), Duration::from_secs(60), Arc::new(store));
        refreshers.push(api.refresher().clone());
        urls.push(support::serve(api).await);
    }
    let mut requests = tokio::task::JoinSet::new();
    for (i, url) in urls.into_iter().enumerate() {
        let board = if i % 2 == 0 { Board::Campaigns } else { Board::Mailboxes };
        requests.spawn(async move {
            let r = reqwest::get(format!("{url}{}", path(board))).await.unwrap();
            (board, r.status().as_u16(), r.json::<Value>().await.unwrap())
        });
    }
    while let Some(done) = requests.join_next().await {
        let (board, status, body) = done.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, truth_json(&sim, &refreshers[0], board, &body).await, "{board:?}");
    }
    let log = sim.log();
    let store = snapshot_store(&local.endpoint, "snapshots-cold").await.unwrap();
    let stored =
        decode::<CampaignRow>(&store.load(key().as_str(), Item::Campaigns).await.unwrap().unwrap().bytes)
            .unwrap();
    println!(
        "10 concurrent cold requests: {} calls at lemlist, one refresh of {} calls",
        log.total(),
        stored.figures.calls
    );
    assert_eq!(log.calls_by_endpoint()["GET /campaigns"], 1, "the campaign list was read once");
    assert_eq!(log.duplicate_gets(), 0);
    assert_eq!(log.total() as u64, stored.figures.calls, "every call belongs to the one refresh");
}

#[tokio::test]
async fn a_cancelled_refresh_gives_its_lease_up_and_a_crashed_ones_lease_expires() {
    let (_local, store) = dynamo("snapshots-lease").await;
    let sim = sim(Profile::M, 2, Settings { latency: Latency::LEMLIST, ..Settings::default() }).await;
    let store: Arc<dyn SnapshotStore> = Arc::new(store);
    // Long enough that the checks below run well inside it on a loaded machine.
    let lease = Duration::from_secs(6);
    let refresher =
        Refresher::new(paced_client(&sim), store.clone(), key(), lease).with_clock(MovedClock::of(&sim));
    let crashing = refresher.clone();
    let killed = tokio::spawn(async move { crashing.run().await });
    // Cancelled once it is well under way.
    for _ in 0..200 {
        if sim.log().total() >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sim.log().total() >= 10, "it had started calling lemlist");
    killed.abort();
    assert!(killed.await.unwrap_err().is_cancelled());
    assert!(
        store.load(key().as_str(), Item::Campaigns).await.unwrap().is_none(),
        "nothing half-done was stored"
    );
    // Its guard gave the lease up on the way out (in the background).
    let free = async {
        while !store.acquire_lease(key().as_str(), "probe", now_ms(), now_ms() + 1).await.unwrap() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(3), free).await.expect("the cancelled refresh's lease is free");

    // A process that dies holds its lease until it expires: the next refresh waits for that.
    assert!(store.acquire_lease(key().as_str(), "crashed", now_ms(), now_ms() + 6_000).await.unwrap());
    assert_eq!(refresher.run().await.unwrap(), Outcome::AlreadyRunning, "the crashed refresh's lease blocks");

    // Blocked until the lease expires, then it runs.
    let expired = async {
        loop {
            match refresher.run().await.unwrap() {
                Outcome::Refreshed(f) => return f,
                Outcome::AlreadyRunning | Outcome::Continuing(_) => {
                    tokio::time::sleep(Duration::from_millis(250)).await
                }
            }
        }
    };
    let f = tokio::time::timeout(Duration::from_secs(30), expired).await.expect("the lease expired");
    assert_eq!(f.missing, 0);
    for board in Board::ALL {
        let served = refresher.latest(board).await.unwrap().unwrap();
        let body = serde_json::from_str::<Value>(&served.body).unwrap();
        assert_eq!(body, truth_json(&sim, &refresher, board, &body).await);
    }
    assert!(
        store.acquire_lease(key().as_str(), "next", now_ms(), now_ms() + 1000).await.unwrap(),
        "released when done"
    );
}

#[tokio::test]
async fn without_a_snapshot_a_short_budget_gets_a_503_and_the_snapshot_follows() {
    let (_local, store) = dynamo("snapshots-503").await;
    let sim = sim(Profile::M, 3, Settings { latency: Latency::LEMLIST, ..Settings::default() }).await;
    let api = support::api_with(&sim, &paced_client(&sim), Duration::from_secs(2), Arc::new(store));
    let refresher = api.refresher().clone();
    let base = support::serve(api).await;
    let url = format!("{base}/api/campaigns/dashboard");
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 503);
    let retry_after: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    let body: Value = r.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("computed for the first time"), "{body}");
    println!("first request: 503, Retry-After {retry_after} s");

    let started = std::time::Instant::now();
    let body = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let r = reqwest::get(&url).await.unwrap();
        if r.status() == 200 {
            break r.json::<Value>().await.unwrap();
        }
        assert_eq!(r.status(), 503, "only 503 until the snapshot exists");
        assert!(started.elapsed() < Duration::from_secs(120), "the refresh carried on and finished");
    };
    assert_eq!(body, truth_json(&sim, &refresher, Board::Campaigns, &body).await);
    assert_eq!(sim.log().calls_by_endpoint()["GET /campaigns"], 1, "one refresh served them all");
    println!("snapshot served {:.1} s later", started.elapsed().as_secs_f64());
}

#[tokio::test]
async fn actions_show_in_the_next_get_without_calling_lemlist() {
    let (_local, store) = dynamo("snapshots-actions").await;
    let sim = sim(Profile::S, 9, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let api = support::api_with(&sim, &unpaced_client(&sim), Duration::from_secs(30), Arc::new(store));
    let refresher = api.refresher().clone();
    let base = support::serve(api).await;
    let http = reqwest::Client::new();
    let get = |board: Board| {
        let request = http.get(format!("{base}{}", path(board))).send();
        async move { request.await.unwrap().json::<Value>().await.unwrap() }
    };
    let body = get(Board::Campaigns).await;
    assert_eq!(body, truth_json(&sim, &refresher, Board::Campaigns, &body).await);
    // The cold page was answered before the first sync's daily counts: let it end.
    support::first_sync_done(&refresher).await;

    let team = sim.team();
    let idle = team.users.iter().flat_map(|u| &u.mailboxes).find(|m| !m.lemwarm_active).unwrap().id.clone();
    let warm = team.users.iter().flat_map(|u| &u.mailboxes).find(|m| m.lemwarm_active).unwrap().id.clone();
    let running = team.campaigns.iter().find(|c| c.status == "running").unwrap().id.clone();
    for path in [
        format!("/api/mailboxes/{idle}/start-lemwarm"),
        format!("/api/mailboxes/{warm}/stop-lemwarm"),
        format!("/api/campaigns/{running}/set-inactive"),
    ] {
        let r = http.post(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let calls = sim.log().total();
    // Served from the patched snapshots: exactly what a fresh computation would show now.
    let mailboxes = get(Board::Mailboxes).await;
    assert_eq!(mailboxes, truth_json(&sim, &refresher, Board::Mailboxes, &mailboxes).await);
    let campaigns = get(Board::Campaigns).await;
    assert_eq!(campaigns, truth_json(&sim, &refresher, Board::Campaigns, &campaigns).await);
    assert!(!campaigns.as_array().unwrap().iter().any(|c| c["campaign_id"] == running.as_str()));
    assert_eq!(sim.log().total(), calls, "no lemlist call to show them");
}

#[tokio::test]
async fn unchanged_dashboards_cost_a_304_and_refresh_true_recomputes() {
    let sim = sim(Profile::S, 5, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let base = support::serve(support::api(&sim, &unpaced_client(&sim), Duration::from_secs(30))).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/api/mailboxes");
    let first = http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(first.headers()["cache-control"], "private, no-cache");
    let calls = sim.log().total();

    let again = http.get(&url).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    assert_eq!(sim.log().total(), calls, "served from the snapshot");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let age = |r: &reqwest::Response| r.headers()["x-lemdash-age"].to_str().unwrap().parse::<u64>().unwrap();
    let before = age(&http.get(&url).send().await.unwrap());
    assert!(before >= 1, "the first snapshot has aged");
    let asked = std::time::Instant::now();
    let forced = http.get(format!("{url}?refresh=true")).send().await.unwrap();
    assert_eq!(forced.status(), 200);
    // Computed during this request: its age is at most the request's own duration.
    assert!(age(&forced) <= asked.elapsed().as_secs(), "just computed: {}", age(&forced));
    let more = sim.log().total() - calls;
    // One more refresh, incremental: it reads what can have changed, less than the first.
    assert!(more > 0 && more < calls, "one more refresh: {more} calls after {calls}");
    let bad = http.get(format!("{url}?refresh=maybe")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_forced_refresh_that_outlives_the_request_serves_the_previous_snapshot_with_its_age() {
    let sim = sim(Profile::M, 10, Settings { latency: Latency::LEMLIST, ..Settings::default() }).await;
    // A 2 s budget, against a refresh of profile M that takes about 10 s.
    let api = support::api(&sim, &paced_client(&sim), Duration::from_secs(2));
    let refresher = api.refresher().clone();
    let Outcome::Refreshed(_) = refresher.run().await.unwrap() else { panic!("no other refresh") };
    let base = support::serve(api).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/api/mailboxes");
    let first = http.get(&url).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let last_modified = first.headers()["last-modified"].to_str().unwrap().to_owned();

    let calls = sim.log().total();
    let forced = http.get(format!("{url}?refresh=true")).send().await.unwrap();
    assert_eq!(forced.status(), 200, "the previous snapshot, not an error");
    assert_eq!(forced.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(forced.headers()["last-modified"].to_str().unwrap(), last_modified, "its own age");
    let age: u64 = forced.headers()["x-lemdash-age"].to_str().unwrap().parse().unwrap();
    assert!(age >= 2, "the age counts from the previous refresh: {age}");
    let body = forced.json::<Value>().await.unwrap();
    assert_eq!(body, truth_json(&sim, &refresher, Board::Mailboxes, &body).await);
    // The refresh it started goes on in the background.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sim.log().total() > calls, "the forced refresh is under way");
}

#[tokio::test]
async fn an_action_during_a_refresh_is_applied_on_top_of_its_result() {
    let sim = sim(Profile::M, 11, Settings { latency: Latency::LEMLIST, ..Settings::default() }).await;
    let api = support::api(&sim, &paced_client(&sim), Duration::from_secs(60));
    let refresher = api.refresher().clone();
    let base = support::serve(api).await;
    // A refresh reads the campaign list first, then takes about 10 s for the rest.
    let running = tokio::spawn({
        let refresher = refresher.clone();
        async move { refresher.run().await }
    });
    while sim.log().calls_by_endpoint().get("GET /campaigns").copied().unwrap_or(0) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let campaign = sim.team().campaigns.iter().find(|c| c.status == "running").unwrap().id.clone();
    let r = reqwest::Client::new()
        .post(format!("{base}/api/campaigns/{campaign}/set-inactive"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let Outcome::Refreshed(_) = running.await.unwrap().unwrap() else { panic!("the refresh ran") };
    // Measured at lemlist: the refresh went on reading after the action's call arrived.
    let log = sim.log();
    let action = log.own().find(|e| e.method == "POST").expect("the action reached lemlist").at;
    assert!(log.own().any(|e| e.method == "GET" && e.at > action), "the action landed while the refresh ran");
    // The refresh read the campaign as running; the stored result still shows it paused.
    let rows: Value =
        reqwest::get(format!("{base}/api/campaigns/dashboard")).await.unwrap().json().await.unwrap();
    assert!(!rows.as_array().unwrap().iter().any(|r| r["campaign_id"] == campaign.as_str()));
    assert_eq!(rows, truth_json(&sim, &refresher, Board::Campaigns, &rows).await);
    let rows: Value = reqwest::get(format!("{base}/api/mailboxes")).await.unwrap().json().await.unwrap();
    assert_eq!(rows, truth_json(&sim, &refresher, Board::Mailboxes, &rows).await);
}
