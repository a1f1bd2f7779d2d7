//! lemlist's webhooks against the simulator over HTTP: lemdash registers its hooks, the
//! simulator delivers every new activity (late, out of order, sometimes twice, sometimes never),
//! and the activity figures of both dashboards follow without a lemlist call; the next
//! scheduled refresh repairs what was dropped and counts it as missed.

use std::sync::Arc;
use std::time::Duration;

use lemdash_shared::app::App;
use lemdash_shared::refresh::{Invocation, Outcome, Refresher, Report};
use lemdash_shared::snapshot::{Board, MemorySnapshots};
use lemdash_tests::truth;
use lemlist_sim::live::Event;
use lemlist_sim::{Delivery, LimitMode, Profile, Settings, Sim};
use serde_json::{Value, json};

use crate::support::{sim, unpaced_client};

/// lemdash with webhooks, served over HTTP on a free port (its URL is the public one).
async fn lemdash(sim: &Sim) -> (App, String) {
    let config = lemdash_tests::app::config(Duration::from_secs(20));
    let store = Arc::new(MemorySnapshots::default());
    lemdash_tests::app::serving_hooks(sim, &unpaced_client(sim), store, config).await
}

/// A scheduled refresh; the in-process fold may hold the key's lease for a moment (a lead
/// export read again): the refresh then runs after it.
async fn refresh(r: &Refresher) {
    for _ in 0..50 {
        match r.run().await.expect("the refresh runs") {
            Outcome::Refreshed(_) => return,
            Outcome::AlreadyRunning => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("no sync from scratch continues here: {other:?}"),
        }
    }
    panic!("the key's lease stayed taken for 5 s");
}

async fn served(r: &Refresher, board: Board) -> Value {
    let served = r.latest(board).await.unwrap().expect("a snapshot is stored");
    serde_json::from_str(&served.body).unwrap()
}

/// Whether the served activity figures equal the truth now; the differences otherwise.
async fn figures_exact(sim: &Sim, r: &Refresher) -> Result<(), String> {
    let team = sim.team();
    let want = truth::activity_figures(
        &truth::expected(&team, Board::Campaigns, sim.now()),
        &truth::expected(&team, Board::Mailboxes, sim.now()),
    );
    let got = truth::activity_figures(&served(r, Board::Campaigns).await, &served(r, Board::Mailboxes).await);
    truth::compare(&want, &got)
}

const LEAD_EXPORT: &str = "GET /campaigns/{id}/export/leads";

/// The events' path calls lemlist for nothing but the lead exports that replies and pauses ask
/// to read again (debounced: at most once per running campaign while a test's burst lasts).
fn events_path_calls(sim: &Sim) {
    let calls = sim.log().calls_by_endpoint();
    let others: usize = calls.iter().filter(|(e, _)| e.as_str() != LEAD_EXPORT).map(|(_, n)| n).sum();
    assert_eq!(others, 0, "no lemlist call on the events' path but lead exports: {calls:?}");
    let running = sim.team().campaigns.iter().filter(|c| c.status == "running").count();
    assert!(calls.get(LEAD_EXPORT).is_none_or(|n| *n <= running), "{calls:?}");
}

/// Applies `n` activity events (sends, opens, replies, bounces) now.
fn activity_burst(sim: &Sim, n: usize) -> usize {
    let kinds = [Event::Sent, Event::Sent, Event::Opened, Event::Opened, Event::Replied, Event::Bounced];
    (0..n).filter(|i| sim.apply(kinds[i % kinds.len()])).count()
}

/// Four bursts of 100 activities, once every delivery has landed (the longest delay is 1.2 s):
/// how many applied, and what the deliveries did (some duplicated, some dropped).
async fn bursts_delivered(sim: &Sim) -> (usize, lemlist_sim::Delivered) {
    let applied: usize = (0..4).map(|_| activity_burst(sim, 100)).sum();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let delivered = sim.delivered();
    assert!(delivered.duplicated > 0 && delivered.dropped > 0, "{delivered:?} of {applied}");
    (applied, delivered)
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
    events_path_calls(&sim);
    let status = r.sync_status().await.unwrap();
    let receiver = status.hooks.receiver.clone().unwrap();
    assert!(status.hooks.enabled && receiver.deliveries >= applied as u64, "{:?}", status.hooks);
    println!("{applied} activities delivered: both dashboards exact {} ms after the burst", took.as_millis());
    // Each served dashboard says until when its activity figures count the deliveries.
    for path in ["/api/campaigns/dashboard", "/api/mailboxes"] {
        let answer = reqwest::get(format!("{url}{path}")).await.unwrap();
        let header = |name: &str| answer.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let as_of = header("x-lemdash-activity-as-of").unwrap_or_else(|| panic!("{path}: no activity as of"));
        let as_of = chrono::DateTime::parse_from_rfc3339(&as_of).unwrap();
        let computed = chrono::DateTime::parse_from_rfc2822(&header("last-modified").unwrap()).unwrap();
        assert!(as_of > computed, "{path}: activity as of {as_of}, rows as of {computed}");
    }

    // The scheduled refresh finds nothing that the hooks did not deliver.
    refresh(r).await;
    figures_exact(&sim, r).await.expect("exact after the refresh");
    let served = r.latest(Board::Campaigns).await.unwrap().unwrap();
    assert_eq!(served.activity_as_of, None, "a refresh's rows are all as of its start");
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
    let (applied, delivered) = bursts_delivered(&sim).await;
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

/// Lambda's event source mapping, played by the test: the events table's insertions since the
/// last call, as the stream's records (`INSERT`, `NewImage` in the stream's JSON shape), in
/// batches of at most `batch`.
struct Stream {
    client: aws_sdk_dynamodb::Client,
    table: String,
    handed: std::collections::BTreeSet<String>,
}

impl Stream {
    async fn new_records(&mut self, batch: usize) -> Vec<Value> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let mut records = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("the events table scans");
            for item in page.items() {
                let Some(AttributeValue::S(pk)) = item.get("pk") else { continue };
                if !pk.starts_with(lemdash_shared::hooks::dynamo::EVENT_PREFIX)
                    || !self.handed.insert(pk.clone())
                {
                    continue;
                }
                let activity = item["activity"].as_s().unwrap();
                records.push(json!({"eventSource": "aws:dynamodb", "eventName": "INSERT",
                    "dynamodb": {"Keys": {"pk": {"S": pk}},
                                 "NewImage": {"pk": {"S": pk}, "activity": {"S": activity}}}}));
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        records.chunks(batch).map(|c| json!({"Records": c})).collect()
    }
}

/// One stream batch to the refresh handler as Lambda's event source mapping hands it: a batch
/// whose invocation fails (the emulator timing out under a loaded machine) is handed again.
async fn fold_as_the_stream_does(r: &Refresher, batch: &Value) -> Report {
    let mut tries = 0;
    loop {
        tries += 1;
        match r.handle(Invocation::of(batch), None).await {
            Ok(report) => return report,
            Err(e) if tries < 5 => eprintln!("the stream hands the batch again after: {e}"),
            Err(e) => panic!("a batch failed {tries} times: {e}"),
        }
    }
}

/// The deployment's path, on DynamoDB Local: lemlist delivers to the `lemdash-hooks` router (a
/// receiver that only keeps events, in the events table), the stream's records go to the
/// refresh function's handler, which folds them; 5 % duplicated and 2 % dropped deliveries,
/// one stream batch handed over twice. Never a double count; the next refresh repairs the drops,
/// counts them as misses, and logs the line the misses alarm sums.
#[tokio::test(flavor = "current_thread")]
async fn on_dynamodb_the_receiver_keeps_events_and_the_stream_folds_them_exactly() {
    use lemdash_shared::hooks::dynamo::{DynamoEvents, create_table_if_missing};
    use lemdash_tests::dynamo_local::{DynamoLocal, snapshot_store};

    let (captured, _guard) = crate::support::capture_logs();
    let dynamo = DynamoLocal::start().expect("DynamoDB Local starts");
    let snapshots = snapshot_store(&dynamo.endpoint, "snapshots").await.expect("the snapshot table");
    // The receiver's client, as `lemdash-hooks` builds it.
    let db = lemdash_shared::dynamo::local_client_with(
        &dynamo.endpoint,
        lemdash_shared::dynamo::Deadlines::Receiver,
    );
    create_table_if_missing(&db, "events").await.expect("the events table");
    let events: Arc<dyn lemdash_shared::hooks::events::EventStore> =
        Arc::new(DynamoEvents::new(db.clone(), "events"));

    let delivery = Delivery { duplicates: 0.05, drops: 0.02, ..Delivery::default() };
    let sim = sim(Profile::M, 65, Settings { limit: LimitMode::Off, delivery, ..Settings::default() }).await;
    // The hooks function: its router alone, with a receiver that keeps and does not fold.
    let receiver = lemdash_shared::api::hooks::Receiver::durable(
        events.clone(),
        lemdash_tests::clock::MovedClock::of(&sim),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = lemdash_shared::api::hooks_router(&receiver);
    tokio::spawn(async move {
        axum::serve(listener, axum::ServiceExt::<axum::extract::Request>::into_make_service(router)).await
    });
    let mut config = lemdash_tests::app::config(Duration::from_secs(20));
    config.hooks.public_url = Some(url.clone());
    config.hooks.off_because = None;
    let app = lemdash_tests::app::with_events(
        &config,
        &sim,
        &unpaced_client(&sim),
        Arc::new(snapshots),
        Some(events.clone()),
    );
    let r = app.refresher();
    refresh(r).await;
    assert_eq!(sim.hooks().len(), lemdash_shared::hooks::TYPES.len());

    sim.clear_log();
    let (applied, _) = bursts_delivered(&sim).await;
    assert!(figures_exact(&sim, r).await.is_err(), "nothing folded before the stream runs");

    // The stream's batches as they come, until every delivery (retries too) has landed.
    let mut stream = Stream { client: db.clone(), table: "events".into(), handed: Default::default() };
    let (mut kept, mut batches, mut settled) = (0, 0, sim.delivered());
    loop {
        for batch in stream.new_records(100).await {
            kept += batch["Records"].as_array().unwrap().len();
            // The first batch is handed over twice, as a stream may after a failure.
            let times = if batches == 0 { 2 } else { 1 };
            batches += 1;
            for _ in 0..times {
                match fold_as_the_stream_does(r, &batch).await {
                    Report::Folded { .. } => {}
                    other => panic!("a delivery is folded: {other:?}"),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let now = sim.delivered();
        if now == settled {
            break;
        }
        settled = now;
    }
    assert!(batches >= 2, "{batches} batches");
    let delivered = settled;
    events_path_calls(&sim);
    let receiver_counts = r.sync_status().await.unwrap().hooks.receiver.unwrap();
    assert_eq!(receiver_counts.deliveries, kept as u64, "each kept event counted once");
    assert!(receiver_counts.duplicates > 0, "{receiver_counts:?}");

    sim.clock().set(sim.now() + chrono::Duration::minutes(4));
    // Another test's thread, without this one's subscriber, may have cached the misses line's
    // callsite as uninteresting meanwhile: ask again before the refresh that writes it.
    tracing::callsite::rebuild_interest_cache();
    refresh(r).await;
    figures_exact(&sim, r).await.unwrap_or_else(|e| panic!("after the refresh repaired the drops: {e}"));
    let misses: u64 = r.sync_status().await.unwrap().hooks.misses.values().sum();
    // A delivery that failed every attempt (the emulator timing out under load) is a miss too.
    assert!(misses > 0 && misses <= delivered.dropped + delivered.failed, "{misses} misses: {delivered:?}");

    // The misses alarm's metric filter matches the refresh's line and sums its figure.
    let t = crate::deployment::template();
    let filter = &t["Resources"]["HookMissesFilter"]["Properties"];
    let pattern = filter["FilterPattern"].as_str().unwrap();
    let message = pattern.split('"').nth(1).unwrap();
    let field = filter["MetricTransformations"][0]["MetricValue"].as_str().unwrap().trim_start_matches("$.");
    let summed: u64 = captured
        .text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == message)
        .filter_map(|l| l[field].as_u64())
        .sum();
    assert_eq!(summed, misses, "the alarm sees every miss");
    println!(
        "DynamoDB: {applied} activities, {kept} events kept ({} duplicated deliveries, {} dropped, {} failed every attempt), {} stream batches (one twice): exact; the refresh counted {misses} misses",
        delivered.duplicated, delivered.dropped, delivered.failed, batches
    );
}

async fn leads_exact(sim: &Sim, r: &Refresher) -> Result<(), String> {
    let want = truth::lead_figures(&truth::expected(&sim.team(), Board::Campaigns, sim.now()));
    truth::compare(&want, &truth::lead_figures(&served(r, Board::Campaigns).await))
}

#[tokio::test]
async fn a_lead_paused_by_an_event_moves_people_count_within_a_minute_with_one_lead_export_read() {
    let delivery = Delivery { duplicates: 0.0, drops: 0.0, ..Delivery::default() };
    let sim = sim(Profile::M, 64, Settings { limit: LimitMode::Off, delivery, ..Settings::default() }).await;
    let (app, _) = lemdash(&sim).await;
    let r = app.refresher();
    refresh(r).await;
    leads_exact(&sim, r).await.expect("exact after the first sync");
    let running = sim.team().campaigns.iter().filter(|c| c.status == "running").count();

    sim.clear_log();
    // A campaign picked may have no live lead left: another is picked.
    assert!((0..20).any(|_| sim.apply(Event::LeadPaused)), "a live lead of a running campaign is paused");
    assert!(leads_exact(&sim, r).await.is_err(), "the pause moved a people_count");
    let started = std::time::Instant::now();
    while let Err(e) = leads_exact(&sim, r).await {
        assert!(started.elapsed() < Duration::from_secs(60), "a minute after the pause: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    let calls = sim.log().calls_by_endpoint();
    assert_eq!((calls.get(LEAD_EXPORT), sim.log().total()), (Some(&1), 1), "{calls:?}");
    assert_eq!(r.sync_status().await.unwrap().hooks.marked.urgent, 0, "the mark is lifted once read");
    println!("a lead paused: people_count follows in {} ms, with 1 lead export read", took.as_millis());

    // The next scheduled refresh reads a share of the lead exports, not all of them, and the
    // dashboards stay exact.
    sim.clock().set(sim.now() + chrono::Duration::minutes(5));
    sim.clear_log();
    refresh(r).await;
    let exports = sim.log().calls_by_endpoint().get(LEAD_EXPORT).copied().unwrap_or(0);
    assert!(exports < running, "{exports} lead exports of {running} running campaigns");
    leads_exact(&sim, r).await.expect("exact after a steady refresh");
    let steady = sim.log().total();

    // A lead added, which no event reports, shows once its campaign's export is due.
    assert!((0..20).any(|_| sim.apply(Event::NewLead)));
    assert!(leads_exact(&sim, r).await.is_err(), "the new lead moved a people_count");
    sim.clock().set(sim.now() + chrono::Duration::minutes(61));
    refresh(r).await;
    leads_exact(&sim, r).await.expect("exact once LEADS_MAX_AGE_SECS has passed");
    println!("a steady refresh with webhooks: {steady} calls, {exports} of {running} lead exports");
}
