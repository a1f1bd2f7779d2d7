//! `lemdash-snapshot-bench`: what the page costs once dashboards are stored, and what a refresh
//! costs. Prints tables; asserts nothing.
//!
//! ```text
//! cargo run --release -p lemdash-tests --bin lemdash-snapshot-bench [GETS]   # default 500
//! ```
//!
//! 1. The refresh of profiles M and L (anchored simulator, lemlist-like latency, the production
//!    limiter in DynamoDB Local), next to the lower bound for its calls.
//! 2. GETs of both dashboards of profile L served from its snapshots in DynamoDB Local: the
//!    handler's time (`Api::handle`, snapshot read included) and end to end over HTTP on
//!    127.0.0.1, full answers and `If-None-Match` answers (304).

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Request;
use lemdash_shared::api::{Api, Function};
use lemdash_shared::app::{App, Parts};
use lemdash_shared::dynamo::local_client;
use lemdash_shared::limiter::dynamo::DynamoStore;
use lemdash_shared::limiter::{SharedLimiter, SharedSettings, SystemClock};
use lemdash_shared::refresh::Outcome;
use lemdash_shared::secret::ApiKey;
use lemdash_tests::dynamo_local::{DynamoLocal, create_limiter_table, snapshot_store};
use lemdash_tests::load::{self, lower_bound, window_floor};
use lemlist_sim::{Latency, LimitMode, Profile, Settings, Sim, SimConfig};
use tower::ServiceExt;

const LIMITER: &str = "lemdash-bench-limiter";
const SNAPSHOTS: &str = "lemdash-bench-snapshots";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn api_for(profile: Profile, endpoint: &str) -> (Sim, Api) {
    let mut config = SimConfig::new(profile, 1);
    config.settings =
        Settings { limit: LimitMode::Anchored, latency: Latency::LEMLIST, ..Settings::default() };
    let sim = Sim::start(config).await.expect("the simulator starts");
    let key = ApiKey::new(sim.key()).fingerprint();
    let limiter = SharedLimiter::new(
        DynamoStore::new(local_client(endpoint), LIMITER),
        key.clone(),
        Arc::new(SystemClock::default()),
        SharedSettings::default(),
    );
    let client = load::client(&sim.base_url(), sim.key(), Arc::new(limiter));
    let store = snapshot_store(endpoint, SNAPSHOTS).await.expect("the snapshot table is created");
    let config = lemdash_tests::app::config(Duration::from_secs(25));
    let clock = lemdash_tests::clock::MovedClock::of(&sim);
    let parts = Parts { client, store: Arc::new(store), events: None, key, clock };
    let api = App::from_parts(&config, parts).api().clone();
    (sim, api)
}

fn get(path: &str, etag: Option<&str>) -> Request<axum::body::Body> {
    let mut b = Request::get(path);
    if let Some(etag) = etag {
        b = b.header("if-none-match", etag);
    }
    b.body(axum::body::Body::empty()).expect("a valid request")
}

fn row(label: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "| {label} | {} | {} | {} | {} |",
        times.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().expect("some requests"))
    );
}

#[tokio::main]
async fn main() {
    let gets: usize = std::env::args().nth(1).map_or(500, |n| n.parse().expect("GETS is a number"));
    let dynamo = DynamoLocal::start().expect("DynamoDB Local starts (needs Java and npm)");
    create_limiter_table(&dynamo.endpoint, LIMITER).await.expect("the limiter table is created");

    println!(
        "refresh of both dashboards (anchored simulator, lemlist-like latency, limiter in DynamoDB Local)"
    );
    println!("| profile | calls | refresh time | lower bound | ÷ bound | window floor | ÷ floor | 429s |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut served = None;
    for profile in [Profile::M, Profile::L] {
        let (sim, api) = api_for(profile, &dynamo.endpoint).await;
        let Outcome::Refreshed(f) = api.refresher().run().await.expect("the refresh succeeds") else {
            panic!("nobody else refreshes this key");
        };
        let took = Duration::from_millis(f.duration_ms);
        let (bound, floor) = (lower_bound(f.calls as usize), window_floor(f.calls as usize));
        println!(
            "| {profile:?} | {} | {:.1} s | {:.1} s | {:.2} | {:.1} s | {:.2} | {} |",
            f.calls,
            took.as_secs_f64(),
            bound.as_secs_f64(),
            took.as_secs_f64() / bound.as_secs_f64(),
            floor.as_secs_f64(),
            took.as_secs_f64() / floor.as_secs_f64(),
            sim.log().rate_limited()
        );
        served = Some((sim, api));
    }
    let (_sim, api) = served.expect("profile L ran");

    println!();
    println!("GET served from the snapshot, profile L, DynamoDB Local on 127.0.0.1");
    println!("| what | requests | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (function, path) in
        [(Function::Campaigns, "/api/campaigns/dashboard"), (Function::Mailboxes, "/api/mailboxes")]
    {
        let (mut full, mut unchanged) = (Vec::new(), Vec::new());
        let router = api.router(function);
        for _ in 0..gets {
            let started = Instant::now();
            let r = router.clone().oneshot(get(path, None)).await.expect("the router answers");
            full.push(started.elapsed());
            assert_eq!(r.status(), 200);
            let etag = r.headers().get("etag").map(|e| e.to_str().expect("ASCII").to_owned());
            let started = Instant::now();
            let r = router.clone().oneshot(get(path, etag.as_deref())).await.expect("the router answers");
            unchanged.push(started.elapsed());
            assert_eq!(r.status(), 304);
        }
        row(&format!("router, `{path}`, 200"), full);
        row(&format!("router, `{path}`, 304"), unchanged);
    }

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service(api.router(Function::All));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();
    for path in ["/api/campaigns/dashboard", "/api/mailboxes"] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..gets {
            let started = Instant::now();
            let r = http.get(format!("{base}{path}")).send().await.expect("lemdash answers");
            bytes = r.bytes().await.expect("a body").len();
            times.push(started.elapsed());
        }
        row(&format!("end to end over HTTP, `{path}` ({bytes} bytes)"), times);
    }
}
