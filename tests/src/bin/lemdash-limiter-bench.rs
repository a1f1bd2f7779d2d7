//! `lemdash-limiter-bench`: what the shared limiter delivers, measured at the lemlist simulator
//! through DynamoDB Local. For 1, 4 and 16 concurrent workers (each a separate limiter, as
//! separate Lambda invocations would be, with 8 callers each) it prints: accepted requests per
//! second against lemlist's ceiling of 10, DynamoDB writes per lemlist request, the p50 and p99
//! wait for a permit, how long the first 20 requests of the burst took, and the 429s.
//!
//! ```text
//! cargo run --release -p lemdash-tests --bin lemdash-limiter-bench [-- SECONDS]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use lemdash_shared::dynamo::local_client;
use lemdash_shared::limiter::dynamo::DynamoStore;
use lemdash_shared::limiter::{PermitSource, SharedLimiter, SharedSettings, SystemClock};
use lemdash_shared::secret::ApiKey;
use lemdash_tests::dynamo_local::{DynamoLocal, create_limiter_table};
use lemdash_tests::load::{self, Jittered};
use lemlist_sim::{Latency, LimitMode, Profile, Settings, Sim, SimConfig};

const TABLE: &str = "lemdash-limiter-bench";
const CALLERS: usize = 8;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn scenario(dynamo: &str, workers: usize, seconds: u64) {
    let mut config = SimConfig::new(Profile::S, 100 + workers as u64);
    config.settings =
        Settings { limit: LimitMode::Anchored, latency: Latency::LEMLIST, ..Settings::default() };
    let sim = Sim::start(config).await.expect("the simulator starts");
    let settings = SharedSettings { max_processes: workers.min(20) as u32, ..SharedSettings::default() };
    let limiters: Vec<_> = (0..workers)
        .map(|_| {
            let store = DynamoStore::new(local_client(dynamo), TABLE);
            let key = ApiKey::new(sim.key()).fingerprint();
            Arc::new(SharedLimiter::new(store, key, Arc::new(SystemClock::default()), settings))
        })
        .collect();
    let measured: Vec<_> =
        limiters.iter().map(|l| Arc::new(Jittered::new(l.clone(), Duration::ZERO))).collect();

    let started = Instant::now();
    let stop_at = started + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for permits in &measured {
        let client = load::client(&sim.base_url(), sim.key(), permits.clone() as Arc<dyn PermitSource>);
        for _ in 0..CALLERS {
            let client = client.clone();
            tasks.spawn(async move {
                while Instant::now() < stop_at {
                    if client.team().await.is_err() {
                        return 1usize;
                    }
                }
                0
            });
        }
    }
    let mut failed = 0;
    while let Some(done) = tasks.join_next().await {
        failed += done.expect("callers do not panic");
    }

    let log = sim.log();
    let mut arrivals: Vec<Duration> = log.own().map(|e| e.at).collect();
    arrivals.sort_unstable();
    let first = arrivals.first().copied().unwrap_or_default();
    let span = arrivals.last().copied().unwrap_or_default().saturating_sub(first).as_secs_f64().max(1e-9);
    let overall = (arrivals.len().saturating_sub(1)) as f64 / span;
    let sustained = if arrivals.len() > 21 {
        (arrivals.len() - 21) as f64 / (arrivals[arrivals.len() - 1] - arrivals[20]).as_secs_f64()
    } else {
        0.0
    };
    let first_20 = arrivals.get(19).map_or(Duration::ZERO, |t| *t - first);
    let writes: u64 = limiters.iter().map(|l| l.metrics().writes).sum();
    let granted: u64 = limiters.iter().map(|l| l.metrics().granted).sum();
    let discarded: u64 = limiters.iter().map(|l| l.metrics().discarded).sum();
    let conflicts: u64 = limiters.iter().map(|l| l.metrics().conflicts).sum();
    let mut waits: Vec<Duration> = measured.iter().flat_map(|m| m.waits()).collect();
    waits.sort_unstable();
    println!(
        "| {workers:>2} × {CALLERS} | {:>5} | {overall:>5.2} | {sustained:>5.2} | {:>4.2} | {:>6.0} | {:>6.0} | {:>6.0} | {:>3} | {:>4} | {conflicts} | {discarded} | {failed} |",
        log.total(),
        writes as f64 / granted.max(1) as f64,
        percentile(&waits, 0.5).as_secs_f64() * 1000.0,
        percentile(&waits, 0.99).as_secs_f64() * 1000.0,
        first_20.as_secs_f64() * 1000.0,
        log.rate_limited(),
        log.max_arrivals_in(Duration::from_secs(2)),
    );
}

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    let dynamo = DynamoLocal::start().expect("DynamoDB Local starts (needs Java and npm)");
    create_limiter_table(&dynamo.endpoint, TABLE).await.expect("the limiter table is created");
    println!(
        "shared limiter through DynamoDB Local, anchored lemlist simulator with lemlist-like latency, {seconds} s per row"
    );
    println!(
        "| workers × callers | requests | req/s overall | req/s after the first 20 | writes/request | p50 wait ms | p99 wait ms | first 20 ms | 429s | max in 2 s | lost races | late slots | failed |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for workers in [1, 4, 16] {
        scenario(&dynamo.endpoint, workers, seconds).await;
    }
}
