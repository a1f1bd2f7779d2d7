//! The incremental sync against a team that changes while lemdash watches it (the simulator's
//! live mode): both dashboards equal the ground truth after every refresh, late activities are
//! counted, activities that arrive while a refresh pages are counted once by the next one, and
//! `verify` finds a corrupted set.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lemdash_shared::config::SyncConfig;
use lemdash_shared::lemlist::LemlistClient;
use lemdash_shared::limiter::{Class, StrictPacer};
use lemdash_shared::refresh::{COUNTS_PENDING, Outcome, Refresher};
use lemdash_shared::snapshot::{Board, MemorySnapshots, RefreshFigures};
use lemdash_shared::sync::{DashboardsFirst, Mode, SyncState};
use lemdash_tests::app::key;
use lemdash_tests::clock::MovedClock;
use lemdash_tests::truth;
use lemlist_sim::log::RequestLog;
use lemlist_sim::{Faults, Latency, LimitMode, Profile, Settings, Sim};
use serde_json::Value;

use crate::support::{client_with, sim, unpaced_client};

fn refresher(sim: &Sim, client: &LemlistClient, sync: SyncConfig) -> Refresher {
    Refresher::new(client.clone(), Arc::new(MemorySnapshots::default()), key(), Duration::from_secs(30))
        .with_sync(sync)
        .with_clock(MovedClock::of(sim))
}

pub(crate) async fn refresh(r: &Refresher) -> RefreshFigures {
    match r.run().await.expect("the refresh runs") {
        Outcome::Refreshed(figures) => figures,
        other => panic!("no other refresh runs, no deadline: {other:?}"),
    }
}

async fn state(r: &Refresher) -> SyncState {
    r.sync_state().await.unwrap().expect("a sync state is stored").1
}

/// Whether both served dashboards equal the ground truth now; the first difference otherwise.
pub(crate) async fn exact(sim: &Sim, r: &Refresher) -> Result<(), String> {
    truth::served_exactly(sim, r).await
}

/// The steady-state bound of the issue: 2 × running campaigns + users + 15 calls, plus the
/// three streams of each campaign read from its history this time (new, or running again).
fn bound(sim: &Sim, histories: usize) -> u64 {
    let team = sim.team();
    let running = team.campaigns.iter().filter(|c| c.status == "running").count();
    (2 * running + team.users.len() + 15 + 3 * histories) as u64
}

/// A first sync, then rounds of (a burst of live events, a refresh), exact after each.
async fn live_rounds(sim: &Sim, r: &Refresher, rounds: usize, events: usize, label: &str) -> Vec<u64> {
    let first = refresh(r).await;
    exact(sim, r).await.unwrap_or_else(|e| panic!("{label}, first sync: {e}"));
    assert_eq!(state(r).await.last.mode, Some(Mode::Full));
    let mut steady = Vec::new();
    for round in 1..=rounds {
        let applied = sim.burst(events);
        let figures = refresh(r).await;
        exact(sim, r).await.unwrap_or_else(|e| panic!("{label}, round {round} after {applied:?}: {e}"));
        let last = state(r).await.last;
        assert_eq!(last.mode, Some(Mode::Incremental), "{label}, round {round}");
        let retries = figures.rate_limited + figures.faults;
        assert!(
            figures.calls <= bound(sim, last.histories) + retries,
            "{label}, round {round}: {} calls, {retries} retries, bound {}",
            figures.calls,
            bound(sim, last.histories)
        );
        if last.histories == 0 {
            steady.push(figures.calls);
        }
    }
    steady.sort_unstable();
    println!(
        "{label}: first sync {} calls; steady-state refreshes after bursts of {events} events: median {} calls (of {:?})",
        first.calls,
        steady.get(steady.len() / 2).copied().unwrap_or_default(),
        steady
    );
    steady
}

#[tokio::test]
async fn live_parity_on_every_profile_after_every_refresh() {
    for (profile, seed) in [(Profile::S, 41), (Profile::M, 42), (Profile::L, 43)] {
        let sim = sim(profile, seed, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
        let r = refresher(&sim, &unpaced_client(&sim), SyncConfig::default());
        live_rounds(&sim, &r, 8, 40, &format!("{profile:?}")).await;
    }
}

#[tokio::test]
async fn live_parity_with_faults() {
    let settings = Settings { limit: LimitMode::Off, faults: Faults::transient(0.05), ..Settings::default() };
    let sim = sim(Profile::M, 44, settings).await;
    let r = refresher(&sim, &unpaced_client(&sim), SyncConfig::default());
    live_rounds(&sim, &r, 8, 40, "M with 5 % faults").await;
}

#[tokio::test]
async fn live_parity_with_foreign_traffic_and_faults_within_the_limit() {
    let settings = Settings { faults: Faults::transient(0.05), ..Settings::default() };
    let sim = sim(Profile::S, 45, settings).await;
    sim.start_foreign_traffic(0, 3.0);
    let r = refresher(&sim, &client_with(&sim, Arc::new(StrictPacer::lemlist())), SyncConfig::default());
    live_rounds(&sim, &r, 8, 30, "S with 5 % faults and another tool at 3/s").await;
    sim.stop_foreign_traffic();
    let log = sim.log();
    assert!(log.max_arrivals_in(Duration::from_secs(2)) <= 20, "the key's limit held at the server");
    println!("  {} of {} calls answered 429", log.rate_limited(), log.total());
}

#[tokio::test]
async fn late_activities_within_the_overlap_are_counted_and_without_it_they_are_lost() {
    for overlap in [Duration::from_secs(300), Duration::ZERO] {
        let sim = sim(Profile::S, 46, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
        let r = refresher(&sim, &unpaced_client(&sim), SyncConfig { overlap, ..SyncConfig::default() });
        refresh(&r).await;
        exact(&sim, &r).await.unwrap();
        // Activities that lemlist shows only now, timestamped a minute before the last refresh.
        let watermark = state(&r).await.complete_until().unwrap();
        let applied = sim.burst_at(60, watermark - chrono::Duration::seconds(60), 0.0);
        refresh(&r).await;
        let outcome = exact(&sim, &r).await;
        if overlap.is_zero() {
            assert!(outcome.is_err(), "without an overlap the late activities are missed: {applied:?}");
            assert!(!r.verify().await.unwrap().is_empty(), "and verify says so");
        } else {
            outcome.unwrap_or_else(|e| panic!("late activities within the overlap: {e}"));
            assert!(r.verify().await.unwrap().is_empty());
        }
    }
}

#[tokio::test]
async fn activities_arriving_while_a_refresh_pages_are_counted_once_by_the_next() {
    let settings = Settings { limit: LimitMode::Off, latency: Latency::LEMLIST, ..Settings::default() };
    let sim = Arc::new(sim(Profile::M, 47, settings).await);
    let r = refresher(&sim, &unpaced_client(&sim), SyncConfig::default());
    for phase in ["first sync", "incremental refresh"] {
        let feeder = {
            let sim = sim.clone();
            tokio::spawn(async move {
                loop {
                    sim.burst(5);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        refresh(&r).await;
        feeder.abort();
        // The account is quiet again: one more refresh catches up with everything.
        refresh(&r).await;
        exact(&sim, &r).await.unwrap_or_else(|e| panic!("after the {phase} with arrivals: {e}"));
    }
    assert!(r.verify().await.unwrap().is_empty());
}

#[tokio::test]
async fn verify_prints_nothing_on_an_exact_state_and_names_a_corrupted_set() {
    let sim = sim(Profile::M, 48, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let r = refresher(&sim, &unpaced_client(&sim), SyncConfig::default());
    refresh(&r).await;
    sim.burst(30);
    refresh(&r).await;
    assert_eq!(r.verify().await.unwrap(), Vec::<String>::new());

    let (stamp, mut state) = r.sync_state().await.unwrap().unwrap();
    let (id, tracked) =
        state.campaigns.iter_mut().find(|(_, t)| t.opened.leads() > 0).expect("a campaign with opens");
    let (id, had) = (id.clone(), tracked.opened.leads());
    tracked.opened = Default::default();
    assert!(r.store_sync_state(&state, &stamp).await.unwrap());
    let differences = r.verify().await.unwrap();
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert!(
        differences[0].starts_with(&format!("{id} emailsOpened: the state has 0 leads, lemlist {had}")),
        "{differences:?}"
    );
}

/// History pages (campaign-scoped activity reads) answered more than once.
fn repeated_history_pages(log: &RequestLog) -> usize {
    let mut seen = HashSet::new();
    log.own()
        .filter(|e| e.status == 200 && e.endpoint == "GET /activities" && e.target.contains("campaignId="))
        .filter(|e| !seen.insert(e.target.clone()))
        .count()
}

/// A paced client, a lemlist-like simulator of M: the first sync takes about 15 s.
async fn paced_m(seed: u64) -> (Sim, LemlistClient) {
    let sim = sim(Profile::M, seed, Settings { latency: Latency::LEMLIST, ..Settings::default() }).await;
    let client = client_with(&sim, Arc::new(StrictPacer::lemlist()));
    (sim, client)
}

#[tokio::test]
async fn a_first_sync_stopped_by_deadlines_carries_on_through_continuations_and_ends_exact() {
    // The same team read in one go, for the comparison.
    let (whole, client) = paced_m(50).await;
    let uninterrupted = refresh(&refresher(&whole, &client, SyncConfig::default())).await.calls;
    let one_go = whole.log();
    drop(whole);

    let (sim, client) = paced_m(50).await;
    let r = refresher(&sim, &client, SyncConfig::default());
    let (mut continuations, mut before_counts, mut with_counts_pending) = (0u32, 0, 0);
    let figures = loop {
        match r.run_until(Class::Scheduled, Some(Instant::now() + Duration::from_secs(3))).await.unwrap() {
            Outcome::Refreshed(figures) => break figures,
            Outcome::Continuing(progress) => {
                continuations += 1;
                assert!(continuations <= 30, "a first sync of M never ends: {progress:?}");
                assert_eq!(progress.continuations + 1, continuations, "each invocation carried on");
                let mailboxes = r.latest(Board::Mailboxes).await.unwrap();
                match progress.dashboards_first {
                    // Nothing published before the histories and the rest are read.
                    Some(DashboardsFirst::Pending) => {
                        assert!(r.latest(Board::Campaigns).await.unwrap().is_none() && mailboxes.is_none());
                        before_counts += 1;
                    }
                    // Then both dashboards, the performance being computed, never zeros.
                    Some(DashboardsFirst::Published { at }) => {
                        let campaigns = r.latest(Board::Campaigns).await.unwrap().expect("published");
                        let mailboxes = mailboxes.expect("published");
                        assert_eq!((campaigns.computed_at, mailboxes.computed_at), (at, at));
                        assert!(
                            mailboxes.missing.iter().any(|m| m == COUNTS_PENDING),
                            "{:?}",
                            mailboxes.missing
                        );
                        let rows: Vec<serde_json::Value> = serde_json::from_str(&mailboxes.body).unwrap();
                        assert!(!rows.is_empty());
                        assert!(rows.iter().all(|r| r.get("performance").is_none()
                            && r["missing"].as_array().unwrap().iter().any(|m| m == COUNTS_PENDING)));
                        with_counts_pending += 1;
                    }
                    None => panic!("a first sync publishes its dashboards first"),
                }
            }
            Outcome::AlreadyRunning => panic!("the lease is given up before each continuation"),
        }
    };
    exact(&sim, &r).await.unwrap();
    assert!(continuations >= 3, "{continuations} continuations");
    assert!(before_counts >= 1 && with_counts_pending >= 1, "{before_counts} then {with_counts_pending}");
    let served = r.latest(Board::Mailboxes).await.unwrap().unwrap();
    assert!(served.missing.is_empty() && served.body.contains("\"performance\""), "then the counts");
    let log = sim.log();
    assert_eq!(repeated_history_pages(&log), 0, "no history page read twice across continuations");
    assert_eq!(figures.calls as usize, log.total(), "the figures count every step's calls");
    // Each step also reads the roots and each stream again (from its watermark).
    let steps = continuations as usize + 1;
    println!(
        "first sync of M: {uninterrupted} calls in one go; {} calls over {steps} invocations of 3 s ({} more)",
        log.total(),
        log.total() - uninterrupted as usize
    );
    // A feed read cut by a deadline keeps its pages and resumes at the next one: what a feed
    // reads beyond one go is, at each step, its page from the watermark (four feeds) and the
    // resumed read's page read again (rows shift as others arrive). Everything else is read
    // once, but for the roots at each step and what a deadline cut.
    let (feeds, rest) = (feed_pages(&log), log.total() - feed_pages(&log));
    let (feeds_one_go, rest_one_go) = (feed_pages(&one_go), one_go.total() - feed_pages(&one_go));
    println!(
        "  feed pages: {feeds} against {feeds_one_go} in one go; other calls: {rest} against {rest_one_go}"
    );
    // Read by read: the roots once per step. Leads and users (read together, and again in full
    // when a deadline cuts them) at most once per step. Any other read at most once more than in
    // one go: a deadline cut it, and the next step read it again from where it stood.
    let (reads, reads_one_go) = (reads_besides_the_feeds(&log), reads_besides_the_feeds(&one_go));
    let in_one_go = |target: &str| reads_one_go.get(target).copied().unwrap_or(0);
    let (mut roots, mut leads_and_users, mut read_again) = (0, 0, 0);
    for (target, &n) in &reads {
        if target.starts_with("/api/team?") || target.starts_with("/api/campaigns?") {
            assert_eq!(n, steps, "{target} once per step");
            roots += n;
        } else if leads_or_users(target) {
            assert!(n >= in_one_go(target) && n <= steps, "{target}: {n} reads over {steps} steps");
            leads_and_users += n;
        } else {
            assert!(n <= in_one_go(target) + 1, "{target}: {n} reads, {} in one go", in_one_go(target));
            read_again += n.saturating_sub(in_one_go(target));
        }
    }
    println!(
        "  roots: {roots}; leads and users: {leads_and_users} reads ({} in one go); other reads again after a cut: {read_again}",
        reads_one_go.iter().filter(|(t, _)| leads_or_users(t)).map(|(_, n)| n).sum::<usize>()
    );
    assert!(feeds <= feeds_one_go + 5 * steps, "{feeds} feed pages");
}

/// How often each read other than the team-wide feeds' pages was made, by its path and query
/// (a history page's `maxDate`, the sync's start, left out).
fn reads_besides_the_feeds(log: &RequestLog) -> std::collections::BTreeMap<String, usize> {
    let mut reads = std::collections::BTreeMap::new();
    for e in log.own().filter(|e| !feed_page(e)) {
        let target = e.target.split('&').filter(|p| !p.starts_with("maxDate=")).collect::<Vec<_>>().join("&");
        *reads.entry(target).or_default() += 1;
    }
    reads
}

/// Whether a read is phase 2's, read together and again in full when a deadline cuts it.
fn leads_or_users(target: &str) -> bool {
    target.contains("/export/leads") || target.starts_with("/api/users/")
}

/// Whether a call is a page of a team-wide feed (an activity read that names no campaign).
fn feed_page(e: &lemlist_sim::log::Entry) -> bool {
    e.endpoint == "GET /activities" && !e.target.contains("campaignId=")
}

/// Pages of the team-wide feeds.
fn feed_pages(log: &RequestLog) -> usize {
    log.own().filter(|e| feed_page(e)).count()
}

#[tokio::test]
async fn a_sync_killed_mid_way_resumes_from_its_last_checkpoint() {
    let (whole, client) = paced_m(51).await;
    let uninterrupted = refresh(&refresher(&whole, &client, SyncConfig::default())).await.calls as usize;
    let one_go = whole.log();
    drop(whole);

    let (sim, client) = paced_m(51).await;
    let r =
        Refresher::new(client.clone(), Arc::new(MemorySnapshots::default()), key(), Duration::from_secs(5))
            .with_checkpoints(Duration::from_secs(2))
            .with_clock(MovedClock::of(&sim));
    let killed = {
        let r = r.clone();
        tokio::spawn(async move { r.run().await })
    };
    tokio::time::sleep(Duration::from_secs(7)).await;
    killed.abort();
    let _ = killed.await;
    let sent_before_kill = sim.log().total();
    let feeds_before_kill = feed_pages(&sim.log());
    let saved = state(&r).await;
    let progress = saved.progress.clone().expect("a sync from scratch in progress");
    assert!(progress.steps >= 2 && !saved.campaigns.is_empty(), "checkpoints were saved: {progress:?}");

    // The killed refresh's lease expires; the next one carries on from the checkpoint.
    let figures = loop {
        match r.run().await.unwrap() {
            Outcome::Refreshed(figures) => break figures,
            Outcome::AlreadyRunning => tokio::time::sleep(Duration::from_millis(250)).await,
            Outcome::Continuing(_) => panic!("no deadline"),
        }
    };
    exact(&sim, &r).await.unwrap();
    let total = sim.log().total();
    let after = total - sent_before_kill;
    println!(
        "first sync of M killed after {sent_before_kill} calls ({} history pages checkpointed): {after} more calls to finish, {total} in all against {uninterrupted} in one go",
        progress.pages
    );
    // What was checkpointed is not read again: the rest of the work is what a sync in one go
    // does less the checkpointed pages, plus the roots read again.
    let log = sim.log();
    let feeds_after = feed_pages(&log) - feeds_before_kill;
    let rest_after = after - feeds_after;
    let rest_one_go = uninterrupted - feed_pages(&one_go);
    println!(
        "  after the kill: {feeds_after} feed pages (one go: {}), {rest_after} other calls; steps before it: {}",
        feed_pages(&one_go),
        progress.steps
    );
    assert!(rest_after + progress.pages as usize <= rest_one_go + 4, "{rest_after} calls after the kill");
    // The feeds resume at their checkpointed pages: only the pages in flight at the kill are
    // read again, and each step's page from the watermarks (before this change, feeds were
    // counted only whole: 49 to 64 pages after the kill against 30 in one go).
    let feeds_total = feed_pages(&log);
    let steps = progress.steps as usize + 2;
    assert!(feeds_total <= feed_pages(&one_go) + 4 * steps, "{feeds_total} feed pages in all");
    assert!(figures.calls as usize >= after);
}

#[tokio::test]
async fn the_sync_endpoint_shows_a_first_sync_in_progress_then_the_steady_state() {
    let sim = sim(Profile::S, 52, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let api = crate::support::api(&sim, &unpaced_client(&sim), Duration::from_secs(30));
    let r = api.refresher().clone();
    let base = crate::support::serve(api).await;
    let http = reqwest::Client::new();
    let status = || async {
        let response = http.get(format!("{base}/api/sync")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    };
    let before = status().await;
    assert_eq!((before["mode"].as_str(), before["phase"].as_str()), (Some("incremental"), Some("none")));

    // A first sync whose deadline has already come: it saves where it stands and carries on.
    let Outcome::Continuing(_) = r.run_until(Class::Scheduled, Some(Instant::now())).await.unwrap() else {
        panic!("no time to read anything")
    };
    let started = status().await;
    assert_eq!(started["phase"], "first_sync", "{started}");
    assert!(started["first_sync"]["estimated_remaining_calls"].as_u64().unwrap() > 0, "{started}");

    refresh(&r).await;
    let steady = status().await;
    let running = sim.team().campaigns.iter().filter(|c| c.status == "running").count();
    assert_eq!(steady["phase"], "steady", "{steady}");
    assert_eq!(steady["tracked_campaigns"].as_u64(), Some(running as u64));
    assert_eq!(steady["watermarks"].as_object().unwrap().len(), 4, "three streams and the bounces");
    assert_eq!(steady["last_refresh"]["mode"], "full");
    assert!(
        steady["last_refresh"]["calls"].as_u64().unwrap() > 0 && steady["state_bytes"].as_u64().unwrap() > 0
    );
    assert!(steady["first_sync"].is_null());
    let counts = &steady["counts"];
    assert!(counts["sources"].as_u64().unwrap() > 0 && counts["last_day"].is_string(), "{counts}");
}

/// A first sync a person's cold page started: its first calls take the interactive class, up to
/// the cap, the rest the background class; one the schedule started takes only the background
/// class. Both end exact. Counted at the client, by class.
#[tokio::test]
async fn a_cold_pages_first_sync_is_interactive_up_to_its_cap_then_background() {
    let cap = lemdash_shared::refresh::FIRST_PAGE_INTERACTIVE_CALLS;
    for (asked, label) in [(Class::Interactive, "a cold page"), (Class::Scheduled, "the schedule")] {
        let sim = sim(Profile::L, 13, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
        let client = unpaced_client(&sim);
        let r = refresher(&sim, &client, SyncConfig::default());
        let Outcome::Refreshed(figures) = r.run_as(asked).await.unwrap() else { panic!("no other refresh") };
        exact(&sim, &r).await.unwrap();
        let [interactive, scheduled, background] = client.stats().sent_by_class;
        println!("{label}: {interactive} interactive, {background} background calls of {}", figures.calls);
        assert_eq!(figures.calls as usize, sim.log().total(), "{label}: every call counted");
        assert_eq!(interactive + scheduled + background, figures.calls);
        assert_eq!(scheduled, 0, "{label}: a sync from scratch never takes the scheduled class");
        if asked == Class::Interactive {
            // L's first page needs more calls than the cap: the cap binds.
            assert_eq!(interactive, cap, "{label}");
        } else {
            assert_eq!(interactive, 0, "{label}");
        }
        assert!(background > 0, "{label}");
    }
}

/// The `minDate` a logged `GET /activities` asked for.
fn min_date(target: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let value = target.split(['?', '&']).find_map(|p| p.strip_prefix("minDate="))?;
    chrono::DateTime::parse_from_rfc3339(&value.replace("%3A", ":")).ok().map(|d| d.to_utc())
}

/// On a team whose running campaigns hold most of the month (S: 6 of its 8 campaigns), a first
/// sync counts the month from the histories it reads anyway, reads the month of the two others
/// per campaign, and reads the team-wide stream feeds only from its own start: exact, and still
/// exact after live events. (M reads them team-wide: the other tests.)
#[tokio::test]
async fn a_first_sync_counts_the_month_from_its_histories_and_reads_the_rest_per_campaign() {
    let sim = sim(Profile::S, 14, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let client = unpaced_client(&sim);
    let r = refresher(&sim, &client, SyncConfig::default());
    let started = MovedClock::of(&sim).now();
    let first = refresh(&r).await;
    exact(&sim, &r).await.unwrap();
    let log = sim.log();
    let activities: Vec<_> = log.own().filter(|e| e.endpoint == "GET /activities").collect();
    let team = sim.team();
    let idle = team.campaigns.iter().filter(|c| c.status != "running").count();
    let kind =
        |target: &str| target.split(['?', '&']).find_map(|p| p.strip_prefix("type=")).map(str::to_owned);
    // The feeds read per campaign, and the team-wide pages that reached back over the month.
    let per_campaign: Vec<_> = activities
        .iter()
        .filter(|e| e.target.contains("campaignId=") && min_date(&e.target).is_some())
        .collect();
    let by_campaign: HashSet<String> = per_campaign.iter().filter_map(|e| kind(&e.target)).collect();
    let month_wide: Vec<String> = activities
        .iter()
        .filter(|e| !e.target.contains("campaignId="))
        .filter(|e| min_date(&e.target).is_some_and(|m| m < started - chrono::Duration::hours(1)))
        .filter_map(|e| kind(&e.target))
        .collect();
    println!(
        "first sync of S: {} calls; {} per-campaign reads of the month ({by_campaign:?}) for {idle} campaigns; team-wide over the month: {month_wide:?}",
        first.calls,
        per_campaign.len()
    );
    assert!(!by_campaign.is_empty(), "the histories hold most of the month");
    assert_eq!(
        per_campaign.len(),
        idle * by_campaign.len(),
        "one read per campaign not read in full, per feed"
    );
    assert!(month_wide.iter().all(|k| !by_campaign.contains(k)), "no feed read both ways");
    assert!(month_wide.iter().any(|k| k == "emailsBounced"), "bounces have no history: team-wide");
    sim.burst(60);
    refresh(&r).await;
    exact(&sim, &r).await.unwrap();
}

/// The interactive calls of a first page are counted across the invocations that carry the
/// first sync on (each continuation is a request too): the cap binds the whole first page.
#[tokio::test]
async fn a_first_pages_interactive_calls_are_capped_across_continuations() {
    let sim = sim(Profile::L, 15, Settings { latency: Latency::LEMLIST, ..Settings::default() }).await;
    let client = client_with(&sim, Arc::new(StrictPacer::lemlist()));
    let r = refresher(&sim, &client, SyncConfig::default());
    let mut invocations = 0;
    loop {
        invocations += 1;
        match r.run_until(Class::Interactive, Some(Instant::now() + Duration::from_secs(8))).await.unwrap() {
            Outcome::Refreshed(_) => break,
            Outcome::Continuing(_) => {}
            Outcome::AlreadyRunning => panic!("the lease is given up before each continuation"),
        }
        assert!(invocations < 30, "the sync makes progress");
    }
    exact(&sim, &r).await.unwrap();
    let [interactive, _, background] = client.stats().sent_by_class;
    println!(
        "first sync of L in {invocations} invocations of 8 s: {interactive} interactive, {background} background"
    );
    assert!(invocations >= 3, "{invocations} invocations");
    assert_eq!(interactive, lemdash_shared::refresh::FIRST_PAGE_INTERACTIVE_CALLS, "the cap, once");
}
