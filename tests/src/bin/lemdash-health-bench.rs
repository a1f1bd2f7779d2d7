//! `lemdash-health-bench`: what mailbox health costs. Prints figures; asserts nothing.
//!
//! ```text
//! cargo run --release -p lemdash-tests --bin lemdash-health-bench [PROFILE] [--days N] [--events N] [--after N]
//! ```
//!
//! A simulator of the profile (default L) without a rate limit, its clock and lemdash's moved a
//! day at a time (no sleeping): a first sync two hours after the generated history ends (or N
//! days after it, `--after N`: fewer of its activities fall in the 30 days read), then
//! N days (default 30) of (a burst of live events, a refresh). It prints:
//! - the calls of each steady-state refresh, and of them the team-wide reads of `emailsBounced`
//!   (the one feed mailbox health adds; every other read is the dashboards' own);
//! - the sync state's size with and without its daily counts, per mailbox and per day;
//! - the stored history and alerts' size, per day;
//! - whether both dashboards (performance included) equal the ground truth after every refresh.

use std::sync::Arc;
use std::time::Duration;

use lemdash_shared::config::SyncConfig;
use lemdash_shared::limiter::Unlimited;
use lemdash_shared::refresh::{Outcome, Refresher};
use lemdash_shared::secret::ApiKey;
use lemdash_shared::snapshot::{MemorySnapshots, pack};
use lemdash_tests::clock::MovedClock;
use lemdash_tests::truth;
use lemlist_sim::data::epoch;
use lemlist_sim::{LimitMode, Profile, Settings, Sim, SimConfig};

async fn exact(sim: &Sim, r: &Refresher) -> bool {
    truth::served_exactly(sim, r).await.is_ok()
}

#[tokio::main]
async fn main() {
    let (mut profile, mut days, mut events, mut after) = (Profile::L, 30i64, 200usize, 0i64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--days" => days = args.next().and_then(|n| n.parse().ok()).expect("--days N"),
            "--events" => events = args.next().and_then(|n| n.parse().ok()).expect("--events N"),
            "--after" => after = args.next().and_then(|n| n.parse().ok()).expect("--after N"),
            other => profile = other.parse().expect("a profile: S, M, L, XL or REAL"),
        }
    }
    let mut config = SimConfig::new(profile, 21);
    config.settings = Settings { limit: LimitMode::Off, ..Settings::default() };
    let sim = Sim::start(config).await.expect("the simulator starts");
    let client = lemdash_tests::load::client(&sim.base_url(), sim.key(), Arc::new(Unlimited));
    let clock = MovedClock::of(&sim);
    let start = epoch() + chrono::Duration::days(after) + chrono::Duration::hours(2);
    clock.set(start);
    // No re-sync from scratch inside the simulated month: each day is a steady-state refresh.
    let sync = SyncConfig { full_resync_every: Duration::from_secs(90 * 86_400), ..SyncConfig::default() };
    let r = Refresher::new(
        client,
        Arc::new(MemorySnapshots::default()),
        ApiKey::new("bench").fingerprint(),
        Duration::from_secs(60),
    )
    .with_sync(sync)
    .with_clock(clock.clone());

    let run = |r: &Refresher| {
        let r = r.clone();
        async move {
            match r.run().await.expect("the refresh runs") {
                Outcome::Refreshed(f) => f,
                other => panic!("no other refresh: {other:?}"),
            }
        }
    };
    let first = run(&r).await;
    let mut exact_all = exact(&sim, &r).await;
    let bounced_reads =
        |sim: &Sim| sim.log().own().filter(|e| e.target.contains("type=emailsBounced")).count();
    println!(
        "{profile:?}: first sync {} calls, of which {} read emailsBounced",
        first.calls,
        bounced_reads(&sim)
    );

    let (mut calls, mut extra) = (Vec::new(), Vec::new());
    for day in 1..=days {
        clock.set(start + chrono::Duration::days(day));
        sim.burst(events);
        sim.clear_log();
        let f = run(&r).await;
        exact_all &= exact(&sim, &r).await;
        calls.push(f.calls);
        extra.push(bounced_reads(&sim));
    }
    calls.sort_unstable();
    extra.sort_unstable();

    let (_, state) = r.sync_state().await.unwrap().expect("a sync state");
    let with = pack(&state).len();
    let mut without = state.clone();
    without.ledger = Default::default();
    let without = pack(&without).len();
    let cells: usize = state.ledger.days.values().map(|d| d.len()).sum();
    let team = sim.team();
    let mailboxes = truth::mailboxes_dashboard(&team).len();
    let kept_days =
        state.ledger.days.values().flat_map(|d| d.keys()).collect::<std::collections::BTreeSet<_>>().len();
    let (_, log) = r.health().await.unwrap().expect("a history");
    let health = pack(&log).len();
    let history_days = log.history.mailboxes.values().map(Vec::len).max().unwrap_or(0);
    println!(
        "{days} simulated days, {events} live events a day: steady refresh calls median {} (min {}, max {}); emailsBounced reads per refresh median {} (max {})",
        calls[calls.len() / 2],
        calls[0],
        calls[calls.len() - 1],
        extra[extra.len() / 2],
        extra[extra.len() - 1]
    );
    println!(
        "sync state {:.1} KB compressed, of which daily counts {:.1} KB ({cells} source-days over {kept_days} days; {:.0} bytes per mailbox per day for {mailboxes} mailboxes); {} ids kept for the overlap",
        with as f64 / 1024.0,
        (with - without) as f64 / 1024.0,
        (with - without) as f64 / (mailboxes as f64 * kept_days.max(1) as f64),
        state.ledger.recent.len()
    );
    println!(
        "history and alerts {:.1} KB compressed for {history_days} days ({:.0} bytes a day); {} alerts listed",
        health as f64 / 1024.0,
        health as f64 / history_days.max(1) as f64,
        log.alerts.list.len()
    );
    println!("dashboards exact after every refresh: {}", if exact_all { "yes" } else { "NO" });
}
