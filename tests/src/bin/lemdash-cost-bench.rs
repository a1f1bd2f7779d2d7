//! `lemdash-cost-bench`: what a month of lemdash costs in AWS, per team and schedule, from what
//! a refresh and a page load are measured to consume. Prints tables; asserts nothing.
//!
//! ```text
//! cargo run --release -p lemdash-tests --bin lemdash-cost-bench [PROFILE…] [--page-loads-per-day N]
//! ```
//!
//! For each profile (default M, L and REAL): the simulator with lemlist's anchored limit and
//! latency, the snapshot table in DynamoDB Local, the refresher paced at the default budget
//! share. After the first sync, for each schedule (5, 15 and 60 minutes), refreshes after as many
//! live events as the schedule lets happen (100 per 5 minutes), measuring:
//! - DynamoDB units of the snapshot table, as DynamoDB Local reports them consumed
//!   (`ReturnConsumedCapacity`), by kind of item; the deltas' compaction, which comes every
//!   `MAX_DELTAS` refreshes, is added amortized, at its upper bound (every tracked campaign's sets);
//! - the limiter table's units: one conditional `UpdateItem` of an item under 1 KB per call
//!   (its bench measures 1.03 with lost races; that factor is applied);
//! - the Lambda GB-seconds at the template's memory sizes, from the measured durations;
//! - the bytes of the JSON logs the refresh writes.
//!
//! A page load is one API request: a consistent read of one stored dashboard, measured.
//!
//! With `--webhooks`, each profile also gets a 5-minute row with lemlist's webhooks on: the
//! refreshes read only what events marked or what is due, and every activity is a delivery. The
//! simulator delivers each activity of the burst to lemdash's receiver, folded in this process
//! into the same DynamoDB tables. In AWS a delivery lands apart from the others (about one every
//! 3 s here): each is taken as its own fold, at the units a single delivery's fold is measured
//! to consume, plus the receiver's transaction (4 write units), its Lambda request and its HTTP
//! API request, and the refresh function's invocation by the stream.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lemdash_shared::config::SyncConfig;
use lemdash_shared::refresh::{Outcome, Refresher};
use lemdash_shared::secret::ApiKey;
use lemdash_shared::snapshot::store::Units;
use lemdash_shared::snapshot::{Board, SnapshotStore};
use lemdash_shared::sync::stored::MAX_DELTAS;
use lemdash_tests::dynamo_local::{DynamoLocal, snapshot_store};
use lemdash_tests::truth;
use lemlist_sim::live::Event;
use lemlist_sim::{Delivery, Latency, LimitMode, Profile, Settings, Sim, SimConfig};

/// On-demand prices in us-east-1 (December 2026), without the free tier.
struct Prices;

impl Prices {
    const WRITE_UNIT: f64 = 0.625 / 1e6;
    const READ_UNIT: f64 = 0.125 / 1e6;
    /// arm64, per GB-second, and per request.
    const LAMBDA_GB_S: f64 = 0.000_013_333_4;
    const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
    const LOG_GB: f64 = 0.50;
    /// Three alarms, the one custom metric a metric filter creates (lemlist's 429s; the other
    /// alarms watch Lambda's own metrics, which cost nothing), one secret.
    const FIXED: f64 = 3.0 * 0.10 + 0.30 + 0.40;
    /// The template's memory sizes, GB.
    const REFRESH_GB: f64 = 0.25;
    const API_GB: f64 = 0.25;
    /// An API request's measured duration (warm; see the cold-start bench).
    const API_SECONDS: f64 = 0.02;
    /// Limiter writes per call, lost races included (the limiter bench).
    const LIMITER_WRITES_PER_CALL: f64 = 1.03;
}

/// Bytes written by the JSON log subscriber.
#[derive(Clone, Default)]
struct LogBytes(Arc<AtomicU64>);

impl Write for LogBytes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What one refresh consumed.
#[derive(Debug, Default, Clone, Copy)]
struct Refresh {
    calls: f64,
    seconds: f64,
    write_units: f64,
    read_units: f64,
    sync_units: f64,
    health_units: f64,
    log_bytes: f64,
}

impl Refresh {
    /// The limiter's writes: one conditional write per call.
    fn limiter_writes(&self) -> f64 {
        self.calls * Prices::LIMITER_WRITES_PER_CALL
    }

    /// What one refresh costs: its units, the limiter's writes, the function and its logs.
    fn cost(&self) -> f64 {
        (self.write_units + self.limiter_writes()) * Prices::WRITE_UNIT
            + self.read_units * Prices::READ_UNIT
            + self.seconds * Prices::REFRESH_GB * Prices::LAMBDA_GB_S
            + Prices::LAMBDA_REQUEST
            + self.log_bytes / 1e9 * Prices::LOG_GB
    }

    /// The table's measured columns, from calls to GB-seconds.
    fn columns(&self) -> String {
        format!(
            "{:.0} | {:.1} s | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1}",
            self.calls,
            self.seconds,
            self.sync_units,
            self.health_units,
            self.write_units,
            self.read_units,
            self.limiter_writes(),
            self.log_bytes / 1024.0,
            self.seconds * Prices::REFRESH_GB,
        )
    }
}

/// What one page load costs: its read units, the API function, the HTTP API and its log line.
fn page_cost(page_units: f64) -> f64 {
    page_units * Prices::READ_UNIT
        + Prices::API_GB * Prices::API_SECONDS * Prices::LAMBDA_GB_S
        + Prices::LAMBDA_REQUEST
        + Prices::HTTP_API_REQUEST
        + 400.0 / 1e9 * Prices::LOG_GB
}

fn diff(before: &Units, after: &Units, kind: &str) -> (f64, f64) {
    let t = |u: &Units| u.get(kind).copied().unwrap_or_default();
    (t(after).write_units - t(before).write_units, t(after).read_units - t(before).read_units)
}

async fn measure(r: &Refresher, store: &dyn SnapshotStore, logs: &LogBytes) -> Refresh {
    let (before, log_before, started) = (store.units(), logs.0.load(Ordering::Relaxed), Instant::now());
    let f = loop {
        match r.run().await.expect("the refresh runs") {
            Outcome::Refreshed(f) => break f,
            // The in-process fold of the webhooks row holds the lease for a moment.
            Outcome::AlreadyRunning => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("no sync from scratch continues here: {other:?}"),
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let after = store.units();
    let kinds = ["campaigns", "mailboxes", "sync", "health", "lease", "request"];
    let (mut write_units, mut read_units) = (0.0, 0.0);
    for kind in kinds {
        let (w, r) = diff(&before, &after, kind);
        (write_units, read_units) = (write_units + w, read_units + r);
    }
    Refresh {
        calls: f.calls as f64,
        seconds,
        write_units,
        read_units,
        sync_units: diff(&before, &after, "sync").0,
        health_units: diff(&before, &after, "health").0,
        log_bytes: (logs.0.load(Ordering::Relaxed) - log_before) as f64,
    }
}

fn mean(all: &[Refresh]) -> Refresh {
    let n = all.len().max(1) as f64;
    let sum = |f: fn(&Refresh) -> f64| all.iter().map(f).sum::<f64>() / n;
    Refresh {
        calls: sum(|r| r.calls),
        seconds: sum(|r| r.seconds),
        write_units: sum(|r| r.write_units),
        read_units: sum(|r| r.read_units),
        sync_units: sum(|r| r.sync_units),
        health_units: sum(|r| r.health_units),
        log_bytes: sum(|r| r.log_bytes),
    }
}

#[tokio::main]
async fn main() {
    let mut profiles = Vec::new();
    let mut page_loads_per_day = 600.0;
    let mut webhooks = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--webhooks" {
            webhooks = true;
        } else if arg == "--page-loads-per-day" {
            page_loads_per_day = args.next().and_then(|n| n.parse().ok()).expect("--page-loads-per-day N");
        } else {
            profiles.push(arg.parse::<Profile>().expect("a profile: S, M, L, XL or REAL"));
        }
    }
    if profiles.is_empty() {
        profiles = vec![Profile::M, Profile::L, Profile::Real];
    }
    let logs = LogBytes::default();
    let writer = logs.clone();
    tracing_subscriber::fmt().json().with_writer(move || writer.clone()).init();
    let local = DynamoLocal::start().expect("DynamoDB Local starts");

    println!("Prices (us-east-1, on demand, no free tier): write unit $0.625/M, read unit $0.125/M,");
    println!("Lambda arm64 $0.0000133334/GB-s + $0.20/M requests, HTTP API $1.00/M, logs $0.50/GB,");
    println!(
        "fixed ${:.2} (3 alarms, 1 custom metric, 1 secret). Refresh function {} GB, API {} GB × {} s.",
        Prices::FIXED,
        Prices::REFRESH_GB,
        Prices::API_GB,
        Prices::API_SECONDS
    );
    println!("Page loads: {page_loads_per_day}/day. Per refresh: means over the schedule's rounds.\n");
    println!(
        "| profile | schedule | calls | time | sync WU | health WU | all snapshot WU | RU | limiter WU | log KB | GB-s | per month | exact |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for profile in profiles {
        let (sim, client, store) = bench_parts(profile, Delivery::default(), &local, "cost").await;
        let key = ApiKey::new("bench").fingerprint();
        let r = Refresher::new(client, store.clone(), key.clone(), Duration::from_secs(60))
            .with_sync(SyncConfig::default())
            .with_clock(lemdash_tests::clock::MovedClock::of(&sim));
        let first = measure(&r, store.as_ref(), &logs).await;
        eprintln!("{profile:?}: first sync {} calls in {:.0} s", first.calls, first.seconds);
        // A page load: one consistent read of a stored dashboard.
        let before = store.units();
        r.latest(Board::Mailboxes).await.expect("the store answers");
        let page_units = diff(&before, &store.units(), "mailboxes").1;

        for minutes in [5u32, 15, 60] {
            let mut rounds = Vec::new();
            for _ in 0..2 {
                sim.burst(100 * minutes as usize / 5);
                rounds.push(measure(&r, store.as_ref(), &logs).await);
            }
            let exact = match truth::served_exactly(&sim, &r).await {
                Ok(()) => "yes",
                Err(e) => {
                    eprintln!("{profile:?}, {minutes} min: the dashboards are not exact: {e}");
                    "NO"
                }
            };
            let mut m = mean(&rounds);
            // The compaction of the deltas, amortized at its upper bound.
            let (stamp, _) = r.sync_state().await.unwrap().expect("a sync state");
            let sets: f64 = stamp
                .base
                .manifest
                .iter()
                .flatten()
                .filter(|(n, _)| n.starts_with("s#"))
                .map(|(_, p)| (p.bytes as f64 / 1024.0).ceil())
                .sum();
            m.sync_units += sets / MAX_DELTAS as f64;
            m.write_units += sets / MAX_DELTAS as f64;
            let refreshes = 30.0 * 24.0 * 60.0 / f64::from(minutes);
            let pages = page_loads_per_day * 30.0;
            let month = refreshes * m.cost() + pages * page_cost(page_units) + Prices::FIXED;
            println!("| {profile:?} | {minutes} min | {} | ${month:.2} | {exact} |", m.columns());
        }
        if webhooks {
            with_webhooks(profile, &local, &logs, page_units, page_loads_per_day).await;
        }
    }
}

/// The simulator of `profile` with lemlist's anchored limit and latency (deliveries as
/// `delivery` says), a client at the default budget share, and the snapshot table `{table}-…`.
async fn bench_parts(
    profile: Profile,
    delivery: Delivery,
    local: &DynamoLocal,
    table: &str,
) -> (Sim, lemdash_shared::lemlist::LemlistClient, Arc<lemdash_shared::snapshot::dynamo::DynamoSnapshots>) {
    let mut config = SimConfig::new(profile, 11);
    config.settings =
        Settings { limit: LimitMode::Anchored, latency: Latency::LEMLIST, delivery, ..Settings::default() };
    let sim = Sim::start(config).await.expect("the simulator starts");
    let client = lemdash_tests::load::client(
        &sim.base_url(),
        sim.key(),
        lemdash_shared::app::in_process_permits(0.75),
    );
    let table = format!("{table}-{profile:?}").to_lowercase();
    let store = Arc::new(snapshot_store(&local.endpoint, &table).await.expect("the snapshot table"));
    (sim, client, store)
}

/// The 5-minute row with webhooks on (see the module's note).
async fn with_webhooks(
    profile: Profile,
    local: &DynamoLocal,
    logs: &LogBytes,
    page_units: f64,
    pages_per_day: f64,
) {
    let delivery = Delivery {
        delay: Duration::from_millis(100),
        jitter: Duration::from_millis(200),
        ..Delivery::default()
    };
    let (sim, client, store) = bench_parts(profile, delivery, local, "cost-hooks").await;
    let config = lemdash_tests::app::config(Duration::from_secs(20));
    let (app, _) = lemdash_tests::app::serving_hooks(&sim, &client, store.clone(), config).await;
    let r = app.refresher();
    measure(r, store.as_ref(), logs).await;
    // One delivery's fold, alone: the mean over single activities.
    let kinds = [Event::Sent, Event::Opened, Event::Replied, Event::Bounced];
    let before = store.units();
    let mut applied = 0usize;
    for i in 0..12 {
        applied += usize::from(sim.apply(kinds[i % kinds.len()]));
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    let after = store.units();
    let mut fold = (0.0, 0.0);
    for kind in ["campaigns", "mailboxes", "sync", "health", "lease"] {
        let (w, r) = diff(&before, &after, kind);
        (fold.0, fold.1) = (fold.0 + w / applied.max(1) as f64, fold.1 + r / applied.max(1) as f64);
    }
    // The refreshes: 100 events between two, delivered and folded meanwhile.
    let mut rounds = Vec::new();
    let mut deliveries = 0.0;
    for _ in 0..2 {
        // The calls of the cycle: the folds' lead exports read again, then the refresh.
        sim.clear_log();
        let applied = sim.burst(100);
        deliveries += applied
            .iter()
            .filter(|(e, _)| matches!(e, Event::Sent | Event::Opened | Event::Replied | Event::Bounced))
            .map(|(_, n)| *n as f64)
            .sum::<f64>();
        tokio::time::sleep(Duration::from_secs(3)).await;
        sim.clock().set(sim.now() + chrono::Duration::minutes(5));
        let mut m = measure(r, store.as_ref(), logs).await;
        m.calls = sim.log().total() as f64;
        rounds.push(m);
    }
    let exact = match truth::served_exactly(&sim, r).await {
        Ok(()) => "yes",
        Err(e) => {
            eprintln!("{profile:?}, webhooks: the dashboards are not exact: {e}");
            "NO"
        }
    };
    let m = mean(&rounds);
    let deliveries = deliveries / rounds.len() as f64;
    let refreshes = 30.0 * 24.0 * 60.0 / 5.0;
    // A delivery: the receiver (transaction, Lambda, HTTP API) and its own fold (units, the
    // stream's invocation of the refresh function for about 0.1 s).
    let per_delivery = (4.0 + fold.0) * Prices::WRITE_UNIT
        + fold.1 * Prices::READ_UNIT
        + 2.0 * Prices::LAMBDA_REQUEST
        + Prices::HTTP_API_REQUEST
        + (0.05 + 0.1) * Prices::REFRESH_GB * Prices::LAMBDA_GB_S;
    let month = refreshes * (m.cost() + deliveries * per_delivery)
        + pages_per_day * 30.0 * page_cost(page_units)
        + Prices::FIXED;
    println!(
        "| {profile:?} | 5 min + webhooks ({deliveries:.0} deliveries, a fold {:.1} WU {:.1} RU) | {} | ${month:.2} | {exact} |",
        fold.0,
        fold.1,
        m.columns(),
    );
}
