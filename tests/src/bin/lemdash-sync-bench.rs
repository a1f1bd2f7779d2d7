//! `lemdash-sync-bench`: what the incremental sync costs. Prints a table; asserts nothing.
//!
//! ```text
//! cargo run --release -p lemdash-tests --bin lemdash-sync-bench [PROFILE…] [--rounds N] [--share S] [--invocation-secs N]
//! ```
//!
//! For each profile (default M, L and REAL): a simulator with lemlist's anchored limit and
//! lemlist-like latency, lemdash's client paced at the budget share (default 0.75, and kept to
//! what other users of the key leave, as in production), then
//! 1. the first sync (which reads what a full refresh reads): calls, time, and the time the
//!    budget share needs for those calls at least; with `--invocation-secs N`, as a Lambda
//!    would run it, in invocations that must stop after N seconds and carry on;
//! 2. rounds of (a burst of 100 live events, a refresh): the median steady-state refresh's
//!    calls and time, its store reads and writes, and the stored sync state's size;
//!
//! Peak memory is not measured here (the simulator shares the process); the README shows how
//! to measure the `lemdash` binary's with the simulator in its own process.
//!
//! Every refresh must leave both dashboards equal to the simulator's ground truth; the table
//! says whether they were.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lemdash_shared::config::SyncConfig;
use lemdash_shared::limiter::Class;
use lemdash_shared::refresh::{Outcome, Refresher};
use lemdash_shared::secret::ApiKey;
use lemdash_shared::snapshot::{Board, MemorySnapshots, SnapshotError, SnapshotStore, Stored};
use lemdash_tests::truth;
use lemlist_sim::{Latency, LimitMode, Profile, Settings, Sim, SimConfig};

/// The memory store, counting what a DynamoDB store would be asked.
#[derive(Debug, Default)]
struct Counting {
    inner: MemorySnapshots,
    loads: AtomicU64,
    saves: AtomicU64,
    written: AtomicU64,
}

#[async_trait::async_trait]
impl SnapshotStore for Counting {
    async fn load(&self, key: &str, board: Board) -> Result<Option<Stored>, SnapshotError> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        self.inner.load(key, board).await
    }

    async fn save(
        &self,
        key: &str,
        board: Board,
        bytes: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<bool, SnapshotError> {
        self.saves.fetch_add(1, Ordering::Relaxed);
        self.written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.inner.save(key, board, bytes, expected).await
    }

    async fn acquire_lease(
        &self,
        key: &str,
        holder: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, SnapshotError> {
        self.inner.acquire_lease(key, holder, now_ms, until_ms).await
    }

    async fn release_lease(&self, key: &str, holder: &str) -> Result<(), SnapshotError> {
        self.inner.release_lease(key, holder).await
    }

    async fn request_refresh(&self, key: &str, at_ms: i64) -> Result<(), SnapshotError> {
        self.inner.request_refresh(key, at_ms).await
    }
}

async fn refresh(r: &Refresher) -> (lemdash_shared::snapshot::RefreshFigures, Duration) {
    let started = Instant::now();
    let Outcome::Refreshed(f) = r.run().await.expect("the refresh runs") else { panic!("no other refresh") };
    (f, started.elapsed())
}

async fn exact(sim: &Sim, r: &Refresher) -> bool {
    truth::served_exactly(sim, r).await.is_ok()
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
        "| profile | running | first sync: calls | time | continuations | 429s | ÷ share's bound | steady: median calls | its bound | its time | store reads / writes | state KB | exact |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
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
        let store = Arc::new(Counting::default());
        let r = Refresher::new(
            client,
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

        let (first, first_time, continuations) = match invocation {
            None => {
                let (f, t) = refresh(&r).await;
                (f, t, 0)
            }
            Some(every) => {
                let (started, mut continuations) = (Instant::now(), 0);
                loop {
                    match r
                        .run_until(Class::Scheduled, Some(Instant::now() + every))
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
        let mut exact_all = exact(&sim, &r).await;
        let bound = first.calls as f64 / (20.0 * share / 2.0);

        let mut steady = Vec::new();
        for _ in 0..rounds {
            sim.burst(100);
            let (loads, saves) = (store.loads.load(Ordering::Relaxed), store.saves.load(Ordering::Relaxed));
            let (f, time) = refresh(&r).await;
            exact_all &= exact(&sim, &r).await;
            let ops =
                (store.loads.load(Ordering::Relaxed) - loads, store.saves.load(Ordering::Relaxed) - saves);
            // The issue's bound, plus the three streams of each campaign whose history was read
            // this time (new, or running again).
            let histories = r.sync_status().await.expect("the store answers").last_refresh.histories;
            let team = sim.team();
            let now_running = team.campaigns.iter().filter(|c| c.status == "running").count();
            let bound = 2 * now_running + users + 15 + 3 * histories;
            steady.push((f.calls, bound, time, ops));
        }
        steady.sort_by_key(|s| s.0);
        let (calls, bound_then, time, (loads, saves)) = steady[steady.len() / 2];
        let state = r.sync_status().await.expect("the store answers").state_bytes;
        println!(
            "| {profile:?} ({share}) | {running} | {} | {:.1} s | {continuations} | {} | {:.2} | {calls} | {bound_then} | {:.1} s | {loads} / {saves} | {:.0} | {} |",
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
