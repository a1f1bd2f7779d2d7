//! `lemdash`: the functions on this machine.
//!
//! ```text
//! lemdash serve   [--port 8080] [--refresh-every 300] [--profile S|M|L|XL] [--seed 1]
//! lemdash refresh [--profile S|M|L|XL] [--seed 1]
//! ```
//!
//! `serve` answers both Lambda functions' routes on 127.0.0.1 at the paths API Gateway uses and
//! refreshes the snapshots in-process on a schedule, as EventBridge does in AWS. `refresh` runs
//! one refresh with a live progress bar and prints its figures.
//!
//! Without `LEMLIST_API_KEY` both start the built-in lemlist simulator (the profile and seed
//! choose its team) and say so; without `LIMITER_TABLE` the in-process pacer keeps the budget;
//! without `SNAPSHOT_TABLE` snapshots are kept in memory.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lemdash_shared::api::Api;
use lemdash_shared::config;
use lemdash_shared::lemlist::{ClientConfig, LemlistClient};
use lemdash_shared::refresh::Outcome;
use lemdash_shared::secret::ApiKey;
use lemlist_sim::{Latency, Profile, Sim, SimConfig};

const USAGE: &str = "usage: lemdash serve [--port 8080] [--refresh-every 300] [--profile S|M|L|XL] [--seed 1]
       lemdash refresh [--profile S|M|L|XL] [--seed 1]";

fn fail(message: &str) -> ExitCode {
    eprintln!("lemdash: {message}");
    ExitCode::from(2)
}

struct Options {
    serve: bool,
    port: u16,
    refresh_every: Duration,
    profile: Profile,
    seed: u64,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let serve = match args.first().map(String::as_str) {
        Some("serve") => true,
        Some("refresh") => false,
        _ => return Err(USAGE.to_owned()),
    };
    let mut o =
        Options { serve, port: 8080, refresh_every: Duration::from_secs(300), profile: Profile::M, seed: 1 };
    for pair in args[1..].chunks(2) {
        let [flag, value] = pair else { return Err(USAGE.to_owned()) };
        let parsed = match flag.as_str() {
            "--port" if serve => value.parse().map(|p| o.port = p).map_err(|e| e.to_string()),
            "--refresh-every" if serve => match value.parse::<u64>() {
                Ok(secs) if secs >= 10 => {
                    o.refresh_every = Duration::from_secs(secs);
                    Ok(())
                }
                _ => Err("a whole number of seconds, at least 10".to_owned()),
            },
            "--profile" => value.parse().map(|p| o.profile = p),
            "--seed" => value.parse().map(|s| o.seed = s).map_err(|e| e.to_string()),
            _ => Err(USAGE.to_owned()),
        };
        parsed.map_err(|e| format!("{flag}: {e}"))?;
    }
    Ok(o)
}

/// lemlist itself, or the simulator (kept running by the returned handle) when no key is set.
async fn lemlist(o: &Options) -> Result<(ClientConfig, Option<Sim>), String> {
    match config::lemlist_from_env() {
        Ok(c) => Ok((c, None)),
        Err(config::ConfigError::Missing("LEMLIST_API_KEY")) => {
            let mut sim_config = SimConfig::new(o.profile, o.seed);
            sim_config.settings.latency = Latency::LEMLIST;
            let sim = Sim::start(sim_config)
                .await
                .map_err(|e| format!("cannot start the lemlist simulator: {e}"))?;
            println!(
                "LEMLIST_API_KEY is not set: using the built-in lemlist simulator (profile {:?}, seed {}) at {}",
                o.profile,
                o.seed,
                sim.base_url()
            );
            let c = ClientConfig::new(
                sim.base_url().parse().expect("the simulator's URL parses"),
                ApiKey::new(sim.key()),
            );
            Ok((c, Some(sim)))
        }
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    lemdash_shared::telemetry::init();
    let (lemlist, _simulator) = match lemlist(&options).await {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    let built = async {
        let limiter = config::limiter_from_env().map_err(|e| e.to_string())?;
        let snapshots = config::snapshots_from_env().map_err(|e| e.to_string())?;
        let http = config::http_from_env().map_err(|e| e.to_string())?;
        Api::build(lemlist, &limiter, &snapshots, http).await.map_err(|e| e.to_string())
    };
    let api = match built.await {
        Ok(api) => Arc::new(api),
        Err(e) => return fail(&e),
    };
    if options.serve { serve(api, &options).await } else { refresh_once(&api).await }
}

async fn serve(api: Arc<Api>, o: &Options) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", o.port)).await {
        Ok(l) => l,
        Err(e) => return fail(&format!("cannot listen on 127.0.0.1:{}: {e}", o.port)),
    };
    let base = format!("http://127.0.0.1:{}", o.port);
    println!("lemdash is serving:");
    println!("  {base}/api/campaigns/dashboard");
    println!("  {base}/api/mailboxes");
    println!("  {base}/health");
    println!("snapshots are refreshed now and every {} s", o.refresh_every.as_secs());
    let refresher = api.refresher.clone();
    let every = o.refresh_every;
    let schedule = async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // Failures are logged by the refresh; the next tick tries again.
            let _: Result<_, _> = refresher.run().await;
        }
    };
    tokio::select! {
        () = lemdash_shared::local::serve(listener, api) => {}
        () = schedule => {}
        _ = tokio::signal::ctrl_c() => tracing::info!("stopping"),
    }
    ExitCode::SUCCESS
}

/// One refresh, with a progress line on the terminal (standard error) while it runs.
async fn refresh_once(api: &Api) -> ExitCode {
    let started = Instant::now();
    let refresher = api.refresher.clone();
    let mut running = tokio::spawn(async move { refresher.run().await });
    let mut ticks = tokio::time::interval(Duration::from_millis(200));
    let outcome = loop {
        tokio::select! {
            done = &mut running => break done,
            _ = ticks.tick() => progress(api.client(), started.elapsed()),
        }
    };
    eprintln!();
    match outcome {
        Ok(Ok(Outcome::Refreshed(f))) => {
            let bound = f.calls.saturating_sub(20) as f64 / 10.0;
            println!(
                "refreshed both dashboards: {} calls in {:.1} s (lower bound {bound:.1} s), {} answered 429, {} faults retried, {} parts missing",
                f.calls,
                f.duration_ms as f64 / 1000.0,
                f.rate_limited,
                f.faults,
                f.missing
            );
            ExitCode::SUCCESS
        }
        Ok(Ok(Outcome::AlreadyRunning)) => {
            println!("another refresh of this key is running; nothing done");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => fail(&format!("refresh failed: {e}")),
        Err(e) => fail(&format!("refresh crashed: {e}")),
    }
}

/// `[#########-----------]  57/108 calls   9.8 req/s   ~5 s left`. The total is what is known
/// so far: requests sent plus those waiting for a permit (later pages appear as earlier ones
/// arrive).
fn progress(client: &LemlistClient, elapsed: Duration) {
    let stats = client.stats();
    let (done, planned) = (stats.sent, stats.sent + stats.waiting);
    let width = 24;
    let filled = (done * width).checked_div(planned).unwrap_or(0) as usize;
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    let left = stats.waiting as f64 / rate.max(1.0);
    eprint!(
        "\r[{}{}] {done:>4}/{planned:<4} calls  {rate:>5.1} req/s  ~{left:.0} s left   ",
        "#".repeat(filled),
        "-".repeat(width as usize - filled)
    );
    let _ = std::io::stderr().flush();
}
