//! `lemdash-freshness-bench`: how fresh webhooks keep the dashboards, and what a day of refreshes
//! costs with them against polling only. Prints tables; asserts nothing.
//!
//! ```text
//! cargo run --release -p lemdash-tests --bin lemdash-freshness-bench [PROFILE…] [--rounds N] [--day PROFILE | --no-day]
//!     [--no-freshness] [--no-polling] [--leads-max-age SECS]
//! ```
//!
//! **Freshness**, for each profile (default M and L): the simulator delivers to lemdash's hooks
//! as lemlist is reported to (1 to 3 s after the activity, 5 % twice); lemdash runs in this
//! process with its in-process fold. After the first sync, each round applies one activity (a
//! send, an open, a reply or a bounce, in turn) and measures the seconds until both dashboards,
//! as served, equal the truth computed from the simulated team; then a few rounds pause a lead
//! and measure until `people_count` does. No refresh runs meanwhile.
//!
//! **A day** (default REAL): 288 refreshes 5 minutes apart on the simulator's clock, sending
//! hours 08:00 to 18:00 (100 live events between two refreshes), a quiet night; once with
//! webhooks, once polling only, the same schedule, the daily re-sync left out of both. Calls
//! are counted at the simulator.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use lemdash_shared::limiter::Unlimited;
use lemdash_shared::refresh::{Outcome, Refresher};
use lemdash_shared::snapshot::{Board, MemorySnapshots};
use lemdash_tests::truth;
use lemlist_sim::live::Event;
use lemlist_sim::{Delivery, LimitMode, Profile, Settings, Sim, SimConfig};

async fn sim(profile: Profile, delivery: Delivery) -> Sim {
    let mut config = SimConfig::new(profile, 7);
    config.settings = Settings { limit: LimitMode::Off, delivery, ..Settings::default() };
    Sim::start(config).await.expect("the simulator starts")
}

async fn served(r: &Refresher, board: Board) -> serde_json::Value {
    let served = r.latest(board).await.expect("the store answers").expect("a snapshot");
    serde_json::from_str(&served.body).expect("JSON")
}

async fn activity_exact(sim: &Sim, r: &Refresher) -> bool {
    let team = sim.team();
    let want = truth::activity_figures(
        &truth::expected(&team, Board::Campaigns, sim.now()),
        &truth::expected(&team, Board::Mailboxes, sim.now()),
    );
    let got = truth::activity_figures(&served(r, Board::Campaigns).await, &served(r, Board::Mailboxes).await);
    truth::compare(&want, &got).is_ok()
}

/// Each campaign's `people_count` as served equals the truth (the campaigns' statuses, which a
/// send at a last step moves, follow at the next refresh by design).
async fn people_exact(sim: &Sim, r: &Refresher) -> bool {
    let people = |rows: &serde_json::Value| -> Vec<(String, u64)> {
        let rows = rows.as_array().into_iter().flatten();
        rows.map(|r| (r["campaign_id"].to_string(), r["people_count"].as_u64().unwrap_or(u64::MAX))).collect()
    };
    people(&truth::expected(&sim.team(), Board::Campaigns, sim.now()))
        == people(&served(r, Board::Campaigns).await)
}

/// A scheduled refresh, after the in-process fold if it holds the key's lease for a moment.
async fn refresh(r: &Refresher) {
    loop {
        match r.run().await.expect("the refresh runs") {
            Outcome::Refreshed(_) => return,
            Outcome::AlreadyRunning => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("no sync from scratch continues here: {other:?}"),
        }
    }
}

/// Seconds from `change` (applied when it returns true) until `exact`; `None` past 60 s.
async fn until<F, Fut>(change: impl Fn() -> bool, exact: F) -> Option<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    while !change() {}
    let started = Instant::now();
    while !exact().await {
        if started.elapsed() > Duration::from_secs(60) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Some(started.elapsed().as_secs_f64())
}

fn quantiles(mut s: Vec<f64>) -> String {
    if s.is_empty() {
        return "none".into();
    }
    s.sort_by(f64::total_cmp);
    let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    format!("p50 {:.2} s, p95 {:.2} s, max {:.2} s", at(0.5), at(0.95), at(1.0))
}

async fn freshness(profile: Profile, rounds: usize) {
    let delivery = Delivery {
        delay: Duration::from_secs(1),
        jitter: Duration::from_secs(2),
        duplicates: 0.05,
        ..Delivery::default()
    };
    let sim = sim(profile, delivery).await;
    let client = lemdash_tests::load::client(&sim.base_url(), sim.key(), Arc::new(Unlimited));
    let config = lemdash_tests::app::config(Duration::from_secs(20));
    let (app, _) =
        lemdash_tests::app::serving_hooks(&sim, &client, Arc::new(MemorySnapshots::default()), config).await;
    let r = app.refresher();
    refresh(r).await;
    sim.clear_log();
    let kinds = [Event::Sent, Event::Opened, Event::Replied, Event::Bounced];
    let mut seconds = Vec::new();
    let mut late = 0;
    for i in 0..rounds {
        match until(|| sim.apply(kinds[i % kinds.len()]), || activity_exact(&sim, r)).await {
            Some(s) => seconds.push(s),
            None => {
                eprintln!("{profile:?}, round {i}: not exact after 60 s");
                late += 1;
            }
        }
    }
    let activity_calls = sim.log().total();
    let mut paused = Vec::new();
    for _ in 0..5 {
        if let Some(s) = until(|| sim.apply(Event::LeadPaused), || people_exact(&sim, r)).await {
            paused.push(s);
        }
    }
    let exports = sim.log().calls_by_endpoint().get("GET /campaigns/{id}/export/leads").copied().unwrap_or(0);
    println!(
        "{profile:?}: an activity on both dashboards: {} over {} rounds ({late} past 60 s), {activity_calls} lemlist calls",
        quantiles(seconds),
        rounds
    );
    println!(
        "{profile:?}: a lead paused, people_count follows: {} over {} pauses, {exports} lead exports read",
        quantiles(paused),
        5
    );
}

/// Calls per refresh over a simulated day, with webhooks or polling only.
async fn day(profile: Profile, webhooks: bool, leads_max_age: Option<Duration>) -> Vec<(bool, usize)> {
    let delivery = Delivery {
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(30),
        ..Delivery::default()
    };
    let sim = sim(profile, delivery).await;
    let client = lemdash_tests::load::client(&sim.base_url(), sim.key(), Arc::new(Unlimited));
    let mut config = lemdash_tests::app::config(Duration::from_secs(20));
    config.sync.full_resync_every = Duration::from_secs(30 * 86_400);
    if let Some(age) = leads_max_age {
        config.sync.leads_max_age = age;
    }
    let store = Arc::new(MemorySnapshots::default());
    let app = if webhooks {
        lemdash_tests::app::serving_hooks(&sim, &client, store, config).await.0
    } else {
        lemdash_tests::app::with(&config, &sim, &client, store)
    };
    let r = app.refresher();
    // The day starts at midnight of the simulator's clock.
    let now = sim.now();
    let midnight =
        now.date_naive().succ_opt().expect("a next day").and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    sim.clock().set(midnight - chrono::Duration::minutes(5));
    refresh(r).await;
    let mut cycles = Vec::new();
    for i in 0..288 {
        let at = midnight + chrono::Duration::minutes(5 * i);
        let sending = (8..18).contains(&at.hour());
        if sending {
            sim.burst_at(100, at - chrono::Duration::minutes(2), 0.25);
            // The deliveries land (tens of milliseconds) before the refresh.
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        sim.clock().set(at);
        sim.clear_log();
        refresh(r).await;
        cycles.push((sending, sim.log().total()));
    }
    cycles
}

fn summary(cycles: &[(bool, usize)]) -> (usize, f64, f64) {
    let total = cycles.iter().map(|(_, c)| c).sum();
    let mean = |sending: bool| {
        let of: Vec<usize> = cycles.iter().filter(|(s, _)| *s == sending).map(|(_, c)| *c).collect();
        of.iter().sum::<usize>() as f64 / of.len().max(1) as f64
    };
    (total, mean(true), mean(false))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut profiles = Vec::new();
    let (mut rounds, mut day_profile, mut leads_max_age, mut polling) = (40, Some(Profile::Real), None, true);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => rounds = it.next().and_then(|n| n.parse().ok()).expect("--rounds N"),
            "--day" => day_profile = it.next().map(|p| p.parse().expect("a profile")),
            "--no-day" => day_profile = None,
            "--leads-max-age" => {
                let secs = it.next().and_then(|n| n.parse().ok()).expect("--leads-max-age SECS");
                leads_max_age = Some(Duration::from_secs(secs));
            }
            "--no-polling" => polling = false,
            "--no-freshness" => {}
            p => profiles.push(p.parse::<Profile>().expect("a profile: S, M, L, XL or REAL")),
        }
    }
    if profiles.is_empty() && args.iter().all(|a| a != "--no-freshness") {
        profiles = vec![Profile::M, Profile::L];
    }
    let started = Utc::now();
    for profile in profiles {
        freshness(profile, rounds).await;
    }
    if let Some(profile) = day_profile {
        let with = day(profile, true, leads_max_age).await;
        let (w, ws, wq) = summary(&with);
        println!("{profile:?}, a day of 288 refreshes (sending 08:00–18:00, 100 events per 5 minutes):");
        println!("  webhooks:     {w:>6} calls; a sending refresh {ws:.1} calls, a quiet one {wq:.1}");
        if polling {
            let (p, ps, pq) = summary(&day(profile, false, leads_max_age).await);
            println!("  polling only: {p:>6} calls; a sending refresh {ps:.1} calls, a quiet one {pq:.1}");
            println!("  webhooks use {:.0} % of polling's calls", 100.0 * w as f64 / p.max(1) as f64);
        }
    }
    println!("(bench took {} s)", (Utc::now() - started).num_seconds());
}
