//! `lemdash serve`: both Lambda functions' routes on 127.0.0.1, at the paths API Gateway uses.
//!
//! ```text
//! lemdash serve [--port 8080] [--profile S|M|L|XL] [--seed 1]
//! ```
//!
//! Without `LEMLIST_API_KEY` it starts the built-in lemlist simulator (the profile and seed
//! choose its team) and says so; without `LIMITER_TABLE` the in-process pacer keeps the budget.

use std::process::ExitCode;
use std::sync::Arc;

use lemdash_shared::api::Api;
use lemdash_shared::config;
use lemdash_shared::lemlist::ClientConfig;
use lemdash_shared::secret::ApiKey;
use lemlist_sim::{Latency, Profile, Sim, SimConfig};

const USAGE: &str = "usage: lemdash serve [--port 8080] [--profile S|M|L|XL] [--seed 1]";

fn fail(message: &str) -> ExitCode {
    eprintln!("lemdash: {message}");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("serve") {
        return fail(USAGE);
    }
    let (mut port, mut profile, mut seed) = (8080u16, Profile::M, 1u64);
    for pair in args[1..].chunks(2) {
        let [flag, value] = pair else { return fail(USAGE) };
        let parsed = match flag.as_str() {
            "--port" => value.parse().map(|p| port = p).map_err(|e| e.to_string()),
            "--profile" => value.parse().map(|p| profile = p),
            "--seed" => value.parse().map(|s| seed = s).map_err(|e| e.to_string()),
            _ => Err(USAGE.to_owned()),
        };
        if let Err(e) = parsed {
            return fail(&format!("{flag}: {e}"));
        }
    }
    lemdash_shared::telemetry::init();

    // lemlist itself, or the simulator when no key is configured.
    let mut _simulator = None;
    let lemlist = match config::lemlist_from_env() {
        Ok(c) => c,
        Err(config::ConfigError::Missing("LEMLIST_API_KEY")) => {
            let mut sim_config = SimConfig::new(profile, seed);
            sim_config.settings.latency = Latency::LEMLIST;
            let sim = match Sim::start(sim_config).await {
                Ok(sim) => sim,
                Err(e) => return fail(&format!("cannot start the lemlist simulator: {e}")),
            };
            println!(
                "LEMLIST_API_KEY is not set: using the built-in lemlist simulator (profile {profile:?}, seed {seed}) at {}",
                sim.base_url()
            );
            let c = ClientConfig::new(
                sim.base_url().parse().expect("the simulator's URL parses"),
                ApiKey::new(sim.key()),
            );
            _simulator = Some(sim);
            c
        }
        Err(e) => return fail(&e.to_string()),
    };
    let limiter = match config::limiter_from_env() {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let http = match config::http_from_env() {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let api = match Api::build(lemlist, &limiter, http).await {
        Ok(api) => Arc::new(api),
        Err(e) => return fail(&e.to_string()),
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => return fail(&format!("cannot listen on 127.0.0.1:{port}: {e}")),
    };
    let base = format!("http://127.0.0.1:{port}");
    println!("lemdash is serving:");
    println!("  {base}/api/campaigns/dashboard");
    println!("  {base}/api/mailboxes");
    println!("  {base}/health");
    tokio::select! {
        () = lemdash_shared::local::serve(listener, api) => {}
        _ = tokio::signal::ctrl_c() => tracing::info!("stopping"),
    }
    ExitCode::SUCCESS
}
