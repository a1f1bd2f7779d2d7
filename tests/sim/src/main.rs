//! `lemlist-sim`: the lemlist simulator as a program, for local runs and manual poking.
//!
//! ```text
//! lemlist-sim [--port 8787] [--profile S|M|L|XL|REAL] [--seed 1] [--key KEY]
//!             [--limit anchored|sliding|off] [--reset js|http|unix] [--shape wrapped|bare]
//!             [--latency SCALE] [--faults RATE]
//! ```

use std::process::ExitCode;

use lemlist_sim::{Faults, Latency, LimitMode, ListShape, Profile, ResetFormat, Sim, SimConfig};

fn usage(error: &str) -> ExitCode {
    eprintln!("lemlist-sim: {error}");
    eprintln!(
        "usage: lemlist-sim [--port N] [--profile S|M|L|XL|REAL] [--seed N] [--key KEY] \
         [--limit anchored|sliding|off] [--reset js|http|unix] [--shape wrapped|bare] \
         [--latency SCALE] [--faults RATE]"
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut port: u16 = 8787;
    let mut config = SimConfig::new(Profile::M, 1);
    config.settings.latency = Latency::LEMLIST;
    let mut key = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else { return usage(&format!("{flag} needs a value")) };
        let parsed: Result<(), String> = match flag.as_str() {
            "--port" => value.parse().map(|p| port = p).map_err(|e| format!("--port: {e}")),
            "--profile" => value.parse().map(|p| config.profile = p),
            "--seed" => value.parse().map(|s| config.seed = s).map_err(|e| format!("--seed: {e}")),
            "--key" => {
                key = Some(value);
                Ok(())
            }
            "--limit" => value.parse::<LimitMode>().map(|m| config.settings.limit = m),
            "--reset" => match value.as_str() {
                "js" => Ok(ResetFormat::JsDate),
                "http" => Ok(ResetFormat::HttpDate),
                "unix" => Ok(ResetFormat::UnixSeconds),
                other => Err(format!("--reset: unknown format {other:?}")),
            }
            .map(|f| config.settings.reset_format = f),
            "--shape" => match value.as_str() {
                "wrapped" => Ok(ListShape::Wrapped),
                "bare" => Ok(ListShape::Bare),
                other => Err(format!("--shape: unknown shape {other:?}")),
            }
            .map(|s| config.settings.list_shape = s),
            "--latency" => value
                .parse::<f64>()
                .map(|scale| config.settings.latency = Latency { scale, ..Latency::LEMLIST })
                .map_err(|e| format!("--latency: {e}")),
            "--faults" => value
                .parse::<f64>()
                .map(|rate| config.settings.faults = Faults::transient(rate))
                .map_err(|e| format!("--faults: {e}")),
            other => Err(format!("unknown option {other}")),
        };
        if let Err(e) = parsed {
            return usage(&e);
        }
    }
    if let Some(key) = key {
        config.keys = vec![key];
    }
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => return usage(&format!("cannot listen on 127.0.0.1:{port}: {e}")),
    };
    let (profile, seed) = (config.profile, config.seed);
    let sim = Sim::serve(listener, config);
    println!("lemlist simulator (profile {profile:?}, seed {seed}) listening on {}", sim.base_url());
    println!("  LEMLIST_BASE_URL={} LEMLIST_API_KEY={}", sim.base_url(), sim.key());
    let _ = tokio::signal::ctrl_c().await;
    let log = sim.log();
    println!(
        "served {} requests, {} answered 429, max {} arrivals in any 2 s",
        log.total(),
        log.rate_limited(),
        log.max_arrivals_in(std::time::Duration::from_secs(2))
    );
    ExitCode::SUCCESS
}
