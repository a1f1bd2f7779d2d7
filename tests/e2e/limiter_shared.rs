//! One lemlist budget per key, shared through DynamoDB Local by separate processes and
//! invocations, measured at the simulator.

use std::sync::Arc;
use std::time::Duration;

use lemdash_shared::dynamo::local_client;
use lemdash_shared::limiter::dynamo::DynamoStore;
use lemdash_shared::limiter::{PermitSource, SharedLimiter, SharedSettings, SystemClock};
use lemdash_shared::secret::ApiKey;
use lemdash_tests::dynamo_local::{DynamoLocal, create_limiter_table};
use lemdash_tests::load::{self, Jittered, LoadReport};
use lemlist_sim::{LimitMode, Profile, Settings, Sim};

const TWO_SECONDS: Duration = Duration::from_secs(2);
const TABLE: &str = "lemdash-limiter";

fn limiter(
    dynamo: &str,
    key: &str,
    offset_ms: i64,
    settings: SharedSettings,
) -> Arc<SharedLimiter<DynamoStore>> {
    let store = DynamoStore::new(local_client(dynamo), TABLE);
    Arc::new(SharedLimiter::new(
        store,
        ApiKey::new(key).fingerprint(),
        Arc::new(SystemClock { offset_ms }),
        settings,
    ))
}

async fn four_processes(mode: LimitMode, seed: u64, dynamo: String) -> Sim {
    let sim = crate::support::sim(Profile::S, seed, Settings { limit: mode, ..Settings::default() }).await;
    let offsets = [-20, -7, 7, 20];
    let children: Vec<_> = offsets
        .iter()
        .map(|offset| {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_lemdash-load"))
                .args([
                    "--base-url",
                    &sim.base_url(),
                    "--key",
                    sim.key(),
                    "--dynamo",
                    &dynamo,
                    "--table",
                    TABLE,
                ])
                .args([
                    "--tasks",
                    "8",
                    "--requests",
                    "5",
                    "--jitter-ms",
                    "100",
                    "--offset-ms",
                    &offset.to_string(),
                ])
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("the load process starts")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().await.unwrap();
        let line = String::from_utf8_lossy(&out.stdout);
        println!("{mode:?} process: {}", line.trim());
        assert!(out.status.success(), "{mode:?}: a process had failures: {line}");
        // The budget was shared through the table, not kept by each process on its own.
        let report: serde_json::Value = serde_json::from_str(line.trim()).expect("the process reports JSON");
        assert_eq!(
            report["granted_degraded"], 0,
            "{mode:?}: no process fell back to degraded pacing: {line}"
        );
        let (granted, writes) = (report["granted"].as_u64().unwrap(), report["writes"].as_u64().unwrap());
        assert!(granted > 0 && writes >= granted, "{mode:?}: each grant is a write to the table: {line}");
    }
    sim
}

#[tokio::test]
async fn four_processes_with_skewed_clocks_share_one_budget() {
    let dynamo = DynamoLocal::start().expect("DynamoDB Local starts");
    create_limiter_table(&dynamo.endpoint, TABLE).await.unwrap();
    // The two server modes run at once, on two keys: two budgets in one table.
    let (sliding, anchored) = tokio::join!(
        four_processes(LimitMode::Sliding, 41, dynamo.endpoint.clone()),
        four_processes(LimitMode::Anchored, 42, dynamo.endpoint.clone()),
    );
    for (mode, sim) in [("sliding", sliding), ("anchored", anchored)] {
        let log = sim.log();
        println!(
            "4 processes × 8 tasks, {mode} server: {} requests, max {} arrivals in any 2 s, {} answered 429, {:.2} requests/s",
            log.total(),
            log.max_arrivals_in(TWO_SECONDS),
            log.rate_limited(),
            log.achieved_rate()
        );
        assert_eq!(log.total(), 4 * 8 * 5, "{mode}: every request made once");
        assert_eq!(log.rate_limited(), 0, "{mode}: no 429");
        assert!(log.max_arrivals_in(TWO_SECONDS) <= 20, "{mode}: {}", log.max_arrivals_in(TWO_SECONDS));
    }
}

#[tokio::test]
async fn foreign_traffic_costs_one_shared_pause_per_episode() {
    let dynamo = DynamoLocal::start().expect("DynamoDB Local starts");
    create_limiter_table(&dynamo.endpoint, TABLE).await.unwrap();
    let sim =
        crate::support::sim(Profile::S, 43, Settings { limit: LimitMode::Anchored, ..Settings::default() })
            .await;
    // Another tool takes 6 of the key's 10 requests per second: lemdash meets spent windows early.
    sim.start_foreign_traffic(0, 6.0);

    // Two invocations of lemdash at once, each with eight concurrent calls.
    let limiters: Vec<_> =
        (0..2).map(|_| limiter(&dynamo.endpoint, sim.key(), 0, SharedSettings::default())).collect();
    let permits: Vec<Arc<dyn PermitSource>> =
        limiters.iter().map(|l| l.clone() as Arc<dyn PermitSource>).collect();
    let reports = run_invocations(&sim, &permits, 8, 8).await;
    sim.stop_foreign_traffic();

    let log = sim.log();
    let episodes = log.exhaustion_episodes();
    let store = DynamoStore::new(local_client(&dynamo.endpoint), TABLE);
    let pauses = store.state(ApiKey::new(sim.key()).fingerprint().as_str()).await.unwrap().pauses as usize;
    println!(
        "foreign traffic 6/s: {} requests, {} answered 429, {episodes} windows exhausted, {pauses} shared pauses",
        log.total(),
        log.rate_limited()
    );
    for r in &reports {
        assert_eq!((r.ok, r.failed), (64, 0), "every response obtained");
    }
    assert!(episodes >= 1, "the foreign traffic did push the key over its limit");
    assert!(
        pauses >= 1 && pauses <= episodes,
        "one shared pause per episode at most: {pauses} for {episodes}"
    );
    check_inside(&log);
    // What a correct limiter can still meet: the calls in flight when another tool takes the
    // window's last slots, at most one per concurrent task of each process, per episode.
    assert!(log.rate_limited() <= 2 * 8 * episodes, "{} 429s in {episodes} episodes", log.rate_limited());
}

fn check_inside(log: &lemlist_sim::log::RequestLog) {
    // Once a window is known to be spent (a 429, or `Remaining: 0`, answered to either
    // process), nobody sends into it again: the pause is shared through the table. Only calls
    // already on their way may still arrive: slots reserved before the answer was read (at most
    // the reservation horizon ahead of it), plus loopback's margin.
    let grace = SharedSettings::default().horizon + Duration::from_millis(20);
    let own: Vec<_> = log.own().collect();
    let mut inside = Vec::new();
    for spent in own.iter().filter(|e| e.status == 429 || e.remaining == Some(0)) {
        let later = own.iter().filter(|e| e.window == spent.window && e.at > spent.answered + grace);
        inside.extend(later.map(|e| (e.at, e.status)));
    }
    inside.sort();
    inside.dedup();
    println!("arrivals inside a known-spent window after {grace:?}: {inside:?}");
    assert!(inside.is_empty(), "every process honours the pause: {inside:?}");
}

#[tokio::test]
async fn a_dynamodb_outage_degrades_without_exceeding_the_limit() {
    let mut dynamo = DynamoLocal::start().expect("DynamoDB Local starts");
    create_limiter_table(&dynamo.endpoint, TABLE).await.unwrap();
    let sim =
        crate::support::sim(Profile::S, 44, Settings { limit: LimitMode::Sliding, ..Settings::default() })
            .await;
    let settings =
        SharedSettings { max_processes: 2, horizon: Duration::from_secs(2), ..SharedSettings::default() };
    let limiters: Vec<_> = (0..2).map(|_| limiter(&dynamo.endpoint, sim.key(), 0, settings)).collect();
    let jittered: Vec<Arc<dyn PermitSource>> = limiters
        .iter()
        .map(|l| Arc::new(Jittered::new(l.clone(), Duration::from_millis(100))) as Arc<dyn PermitSource>)
        .collect();
    let load = run_invocations(&sim, &jittered, 8, 6);
    let outage = async {
        let forty = async {
            while sim.log().total() < 40 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        // Fail, not hang, if the load never gets there.
        tokio::time::timeout(Duration::from_secs(60), forty).await.expect("40 requests within 60 s");
        dynamo.stop();
    };
    let (reports, ()) = tokio::join!(load, outage);

    let log = sim.log();
    println!(
        "DynamoDB stopped after 40 requests: {} requests, max {} arrivals in any 2 s, {} answered 429, metrics {:?}",
        log.total(),
        log.max_arrivals_in(TWO_SECONDS),
        log.rate_limited(),
        limiters.iter().map(|l| l.metrics()).collect::<Vec<_>>()
    );
    for r in &reports {
        assert_eq!((r.ok, r.failed), (48, 0), "the run completes");
    }
    for l in &limiters {
        assert!(l.is_degraded(), "each invocation noticed the outage");
        assert!(l.metrics().granted_degraded > 0, "and went on in degraded mode");
    }
    assert_eq!(log.rate_limited(), 0);
    assert!(log.max_arrivals_in(TWO_SECONDS) <= 20, "{}", log.max_arrivals_in(TWO_SECONDS));
}

/// Runs `tasks` concurrent calls on each of `permits` (one lemdash invocation each), `requests`
/// calls per task, and returns each invocation's report.
async fn run_invocations(
    sim: &Sim,
    permits: &[Arc<dyn PermitSource>],
    tasks: usize,
    requests: usize,
) -> Vec<LoadReport> {
    let handles: Vec<_> = permits
        .iter()
        .map(|p| {
            let client = load::client(&sim.base_url(), sim.key(), p.clone());
            tokio::spawn(async move { load::run(&client, tasks, requests).await })
        })
        .collect();
    let mut reports = Vec::new();
    for h in handles {
        reports.push(h.await.expect("an invocation does not panic"));
    }
    reports
}

#[tokio::test]
async fn after_an_outage_the_store_is_shared_again() {
    let mut dynamo = DynamoLocal::start().expect("DynamoDB Local starts");
    create_limiter_table(&dynamo.endpoint, TABLE).await.unwrap();
    let sim =
        crate::support::sim(Profile::S, 45, Settings { limit: LimitMode::Sliding, ..Settings::default() })
            .await;
    // Try the store again 3 s after degrading (15 s in production).
    let settings =
        SharedSettings { max_processes: 2, probe_after: Duration::from_secs(3), ..SharedSettings::default() };
    let limiters: Vec<_> = (0..2).map(|_| limiter(&dynamo.endpoint, sim.key(), 0, settings)).collect();
    let permits: Vec<Arc<dyn PermitSource>> =
        limiters.iter().map(|l| l.clone() as Arc<dyn PermitSource>).collect();
    let load = run_invocations(&sim, &permits, 8, 12);
    let outage = async {
        let wait_for = |n: usize| {
            let sim = &sim;
            async move {
                let reached = async {
                    while sim.log().total() < n {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                };
                tokio::time::timeout(Duration::from_secs(90), reached).await.expect("the load goes on");
            }
        };
        wait_for(30).await;
        dynamo.stop();
        wait_for(60).await;
        let degraded: Vec<u64> = limiters.iter().map(|l| l.metrics().granted_degraded).collect();
        dynamo.restart().expect("DynamoDB Local starts again");
        create_limiter_table(&dynamo.endpoint, TABLE).await.unwrap();
        let granted: Vec<u64> = limiters.iter().map(|l| l.metrics().granted).collect();
        (degraded, granted)
    };
    let (reports, (degraded_during, granted_before)) = tokio::join!(load, outage);
    let log = sim.log();
    println!(
        "outage and recovery: {} requests, max {} arrivals in any 2 s, {} answered 429, metrics {:?}",
        log.total(),
        log.max_arrivals_in(TWO_SECONDS),
        log.rate_limited(),
        limiters.iter().map(|l| l.metrics()).collect::<Vec<_>>()
    );
    for r in &reports {
        assert_eq!((r.ok, r.failed), (96, 0), "the run completes");
    }
    for (i, l) in limiters.iter().enumerate() {
        assert!(degraded_during[i] > 0, "invocation {i} paced itself during the outage");
        assert!(!l.is_degraded(), "invocation {i} left degraded mode");
        assert!(l.metrics().granted > granted_before[i], "invocation {i} shares the store again");
    }
    assert_eq!(log.rate_limited(), 0);
    assert!(log.max_arrivals_in(TWO_SECONDS) <= 20, "{}", log.max_arrivals_in(TWO_SECONDS));
}

/// DynamoDB's answer to a throttled write, as the service sends it.
const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."}"#;

/// A DynamoDB endpoint that throttles every request; returns its URL and a request count.
async fn throttling_endpoint() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let seen = seen.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |_request: http::Request<hyper::body::Incoming>| {
                        seen.fetch_add(1, Ordering::SeqCst);
                        async move {
                            http::Response::builder()
                                .status(400)
                                .header("content-type", "application/x-amz-json-1.0")
                                .header(
                                    "x-amzn-requestid",
                                    "THROTTLE0000000000000000000000000000000000000000000000",
                                )
                                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                                    THROTTLED.as_bytes(),
                                )))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, count)
}

#[tokio::test]
async fn a_throttled_store_degrades_like_an_outage_and_says_so() {
    let (endpoint, requests) = throttling_endpoint().await;
    let store = DynamoStore::new(local_client(&endpoint), TABLE);
    let key = ApiKey::new("k").fingerprint();
    use lemdash_shared::limiter::{LaneStore, Reserve};
    let reservation = lemdash_shared::limiter::lanes::LaneState::default().plan(0, 0, false);
    let err = match store.reserve(key.as_str(), reservation).await {
        Err(e) => e,
        Ok(Reserve::Taken(_) | Reserve::Lost(_)) => panic!("a throttled write is an error"),
    };
    assert!(err.to_string().contains("ProvisionedThroughputExceeded"), "{err}");
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 2, "the SDK retried the throttle once");

    // The limiter treats it as an outage: it paces itself alone, and keeps the budget.
    let settings =
        SharedSettings { max_processes: 4, horizon: Duration::from_millis(100), ..SharedSettings::default() };
    let limiter = SharedLimiter::new(store, key, Arc::new(SystemClock::default()), settings);
    let started = std::time::Instant::now();
    limiter.acquire(None, lemdash_shared::limiter::Priority::default()).await.unwrap();
    limiter.acquire(None, lemdash_shared::limiter::Priority::default()).await.unwrap();
    assert!(limiter.is_degraded());
    assert_eq!(limiter.metrics().granted_degraded, 2);
    // The settle (horizon + one lane period) and one degraded period (440 ms) come first.
    assert!(started.elapsed() >= Duration::from_millis(2300 + 400), "{:?}", started.elapsed());
}

#[test]
fn a_java_that_dies_at_start_fails_at_once_with_its_own_message() {
    let dir = std::env::temp_dir().join(format!("lemdash-old-java-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let java = dir.join("java");
    std::fs::write(
        &java,
        "#!/bin/sh\necho 'Error: LinkageError occurred while loading main class com.amazonaws.services.dynamodbv2.local.main.ServerRunner' >&2\necho '\tjava.lang.UnsupportedClassVersionError: class file version 61.0, this Java only recognizes up to 52.0' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&java, std::fs::Permissions::from_mode(0o755)).unwrap();
    let started = std::time::Instant::now();
    let err = match DynamoLocal::start_with(&java) {
        Err(e) => e,
        Ok(_) => panic!("a JVM that exits cannot serve"),
    };
    assert!(err.contains("UnsupportedClassVersionError"), "{err}");
    // Not the 60 s wait for a port that never opens.
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
}
