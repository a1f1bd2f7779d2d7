//! `lemdash-soak [SECS] [OTHERS_PER_SEC] [SHARE] [fixed]`: `lemdash serve` as a team runs it
//! (profile M, in-process pacer, a refresh every 10 s) while another tool uses the same key at
//! OTHERS_PER_SEC requests per second (default 2), for SECS seconds (default 600), with
//! scheduled work kept to SHARE of the budget (default 0.75) and to what the other tool leaves
//! (`fixed`: to the share alone, as before lemdash learned the others' use). Prints the share of
//! lemdash's calls answered 429 and whether both dashboards are exact at the end. Asserts
//! nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lemdash_shared::limiter::{PermitSource, StrictPacer};
use lemdash_shared::snapshot::{Board, MemorySnapshots};
use lemdash_tests::{app, load, truth};
use lemlist_sim::{Latency, LimitMode, Profile, Settings, Sim, SimConfig};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(600);
    let others: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2.0);
    let share: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0.75);
    let mut config = SimConfig::new(Profile::M, 1);
    config.settings =
        Settings { limit: LimitMode::Anchored, latency: Latency::LEMLIST, ..Settings::default() };
    let sim = Sim::start(config).await.expect("the simulator starts");
    sim.start_foreign_traffic(0, others);
    let permits: Arc<dyn PermitSource> = if args.get(3).is_some_and(|a| a == "fixed") {
        Arc::new(StrictPacer::lemlist_with_share(share))
    } else {
        lemdash_shared::app::in_process_permits(share)
    };
    let client = load::client(&sim.base_url(), sim.key(), permits);
    let app =
        app::with(&app::config(Duration::from_secs(25)), &sim, &client, Arc::new(MemorySnapshots::default()));
    let started = Instant::now();
    let mut refreshes = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        let tick = Instant::now();
        app.refresher().run().await.expect("the refresh succeeds");
        refreshes += 1;
        tokio::time::sleep(Duration::from_secs(10).saturating_sub(tick.elapsed())).await;
    }
    sim.stop_foreign_traffic();
    let log = sim.log();
    let team = sim.team();
    let mut exact = true;
    for board in Board::ALL {
        let served = app.refresher().latest(board).await.expect("the store answers").expect("a snapshot");
        let want = truth::expected(&team, board, served.computed_at);
        exact &= serde_json::from_str::<serde_json::Value>(&served.body).unwrap() == want;
    }
    println!(
        "soak {secs} s, another tool at {others}/s, share {share}: {refreshes} refreshes, {} lemdash calls, {} answered 429 ({:.2} %), max {} of lemdash's arrivals in any 2 s, dashboards exact at the end: {exact}",
        log.total(),
        log.rate_limited(),
        100.0 * log.rate_limited() as f64 / log.total().max(1) as f64,
        log.max_arrivals_in(Duration::from_secs(2)),
    );
}
