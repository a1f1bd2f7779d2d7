//! `lemdash-sync-bench`: what the incremental sync costs. Prints a table; asserts nothing.
//!
//! ```text
//! cargo run --release -p lemdash-tests --bin lemdash-sync-bench [PROFILE…] [--rounds N] [--share S] [--invocation-secs N]
//! ```
//!
//! For each profile (default M, L and REAL): a simulator with lemlist's anchored limit and
//! lemlist-like latency, lemdash's client paced at the budget share (default 0.75, and kept to
//! what other users of the key leave, as in production), then
//! 1. the first page: when both dashboards are first stored (a first sync publishes them before
//!    it reads the daily counts), in time and calls from the start of a first sync that a
//!    person's cold page started (the interactive class, within the share);
//! 2. the first sync (which reads what a full refresh reads): calls, time, and the time the
//!    budget share needs for those calls at least; with `--invocation-secs N`, as a Lambda
//!    would run it, in invocations that must stop after N seconds and carry on;
//! 3. rounds of (a burst of 100 live events, a refresh): the median steady-state refresh's
//!    calls and time, the DynamoDB write units it would consume (counted from item sizes at
//!    the store in memory) for the sync state, the history and alerts and the dashboards, and
//!    the stored sync state's size;
//!
//! Peak memory is not measured here (the simulator shares the process); the README shows how
//! to measure the `lemdash` binary's with the simulator in its own process.
//!
//! Every refresh must leave both dashboards equal to the simulator's ground truth; the table
//! says whether they were.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lemdash_shared::config::SyncConfig;
use lemdash_shared::lemlist::LemlistClient;
use lemdash_shared::limiter::Class;
use lemdash_shared::refresh::{Outcome, Refresher};
use lemdash_shared::secret::ApiKey;
use lemdash_shared::snapshot::store::Units;
use lemdash_shared::snapshot::{Board, MemorySnapshots, SnapshotStore};
use lemdash_tests::truth;
use lemlist_sim::{Latency, LimitMode, Profile, Settings, Sim, SimConfig};

/// Write units per kind of item since `before`: the sync state, the history and alerts, the
/// two dashboards.
fn written_since(before: &Units, now: &Units) -> [f64; 3] {
    let units = |kind: &str| {
        now.get(kind).map_or(0.0, |t| t.write_units) - before.get(kind).map_or(0.0, |t| t.write_units)
    };
    [units("sync"), units("health"), units("campaigns") + units("mailboxes")]
}

async fn refresh(r: &Refresher, class: Class) -> (lemdash_shared::snapshot::RefreshFigures, Duration) {
    let started = Instant::now();
    let Outcome::Refreshed(f) = r.run_as(class).await.expect("the refresh runs") else {
        panic!("no other refresh")
    };
    (f, started.elapsed())
}

async fn exact(sim: &Sim, r: &Refresher) -> bool {
    truth::served_exactly(sim, r).await.is_ok()
}

/// Watches the store from now for the first mailboxes dashboard (stored after the campaigns'):
/// when a person waiting on a cold page would see both, and the calls sent until then.
fn first_page(r: &Refresher, client: &LemlistClient) -> tokio::task::JoinHandle<(Duration, u64)> {
    let (r, client, started) = (r.clone(), client.clone(), Instant::now());
    tokio::spawn(async move {
        loop {
            if r.latest(Board::Mailboxes).await.expect("the store answers").is_some() {
                return (started.elapsed(), client.stats().sent);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

#[tokio::main]
async fn main() {
    let mut profiles = Vec::new();
    let mut rounds = 5;
    let mut share = 0.75;
    let mut invocation = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--rounds" {
            rounds = args.next().and_then(|n| n.parse().ok()).expect("--rounds N");
        } else if arg == "--invocation-secs" {
            invocation = Some(Duration::from_secs(
                args.next().and_then(|n| n.parse().ok()).expect("--invocation-secs N"),
            ));
        } else if arg == "--share" {
            share = args.next().and_then(|n| n.parse().ok()).expect("--share S");
        } else {
            profiles.push(arg.parse::<Profile>().expect("a profile: S, M, L, XL or REAL"));
        }
    }
    if profiles.is_empty() {
        profiles = vec![Profile::M, Profile::L, Profile::Real];
    }
    println!(
        "| profile | running | first page: calls | time | first sync: calls | time | continuations | 429s | ÷ share's bound | steady: median calls | its bound | its time | write units: sync / health / dashboards | state KB | exact |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for profile in profiles {
        let mut config = SimConfig::new(profile, 11);
        config.settings =
            Settings { limit: LimitMode::Anchored, latency: Latency::LEMLIST, ..Settings::default() };
        let sim = Sim::start(config).await.expect("the simulator starts");
        let client = lemdash_tests::load::client(
            &sim.base_url(),
            sim.key(),
            lemdash_shared::app::in_process_permits(share),
        );
        let store = Arc::new(MemorySnapshots::default());
        let r = Refresher::new(
            client.clone(),
            store.clone(),
            ApiKey::new("bench").fingerprint(),
            Duration::from_secs(60),
        )
        .with_sync(SyncConfig::default())
        .with_clock(lemdash_tests::clock::MovedClock::of(&sim));
        let team = sim.team();
        let running = team.campaigns.iter().filter(|c| c.status == "running").count();
        let users = team.users.len();
        drop(team);

        let page = first_page(&r, &client);
        let (first, first_time, continuations) = match invocation {
            None => {
                // As a person's cold page starts it.
                let (f, t) = refresh(&r, Class::Interactive).await;
                (f, t, 0)
            }
            Some(every) => {
                let (started, mut continuations) = (Instant::now(), 0);
                loop {
                    match r
                        .run_until(Class::Interactive, Some(Instant::now() + every))
                        .await
                        .expect("the sync runs")
                    {
                        Outcome::Refreshed(f) => break (f, started.elapsed(), continuations),
                        Outcome::Continuing(_) => continuations += 1,
                        Outcome::AlreadyRunning => panic!("no other refresh"),
                    }
                }
            }
        };
        let (page_time, page_calls) = page.await.expect("the watcher ends");
        let mut exact_all = exact(&sim, &r).await;
        let bound = first.calls as f64 / (20.0 * share / 2.0);

        let mut steady = Vec::new();
        for _ in 0..rounds {
            sim.burst(100);
            let before = store.units();
            let (f, time) = refresh(&r, Class::Scheduled).await;
            let units = written_since(&before, &store.units());
            exact_all &= exact(&sim, &r).await;
            // The issue's bound, plus the three streams of each campaign whose history was read
            // this time (new, or running again).
            let histories = r.sync_status().await.expect("the store answers").last_refresh.histories;
            let team = sim.team();
            let now_running = team.campaigns.iter().filter(|c| c.status == "running").count();
            let bound = 2 * now_running + users + 15 + 3 * histories;
            steady.push((f.calls, bound, time, units));
        }
        steady.sort_by_key(|s| s.0);
        let (calls, bound_then, time, _) = steady[steady.len() / 2];
        let mut units: Vec<[f64; 3]> = steady.iter().map(|s| s.3).collect();
        units.sort_by(|a, b| a[0].total_cmp(&b[0]));
        let [sync_units, health_units, board_units] = units[units.len() / 2];
        let state = r.sync_status().await.expect("the store answers").state_bytes;
        println!(
            "| {profile:?} ({share}) | {running} | {page_calls} | {:.1} s | {} | {:.1} s | {continuations} | {} | {:.2} | {calls} | {bound_then} | {:.1} s | {sync_units:.0} / {health_units:.0} / {board_units:.0} | {:.0} | {} |",
            page_time.as_secs_f64(),
            first.calls,
            first_time.as_secs_f64(),
            first.rate_limited,
            first_time.as_secs_f64() / bound,
            time.as_secs_f64(),
            state as f64 / 1024.0,
            if exact_all { "yes" } else { "NO" }
        );
    }
}
