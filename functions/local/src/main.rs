//! `lemdash`: the functions on this machine. `lemdash --help` documents every option.
//!
//! `serve` answers both Lambda functions' routes on 127.0.0.1 at the paths API Gateway uses and
//! refreshes the snapshots in-process on a schedule, as EventBridge does in AWS. `refresh` runs
//! one refresh with a progress bar and prints its figures. `verify` reads the key's history
//! from scratch and prints every difference with the incremental sync's state.
//!
//! Without `LEMLIST_API_KEY` both start the built-in lemlist simulator (demo mode: the profile
//! and seed choose its team) and say so; without `LIMITER_TABLE` the in-process pacer keeps the
//! budget; without `SNAPSHOT_TABLE` snapshots are kept in memory.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use lemdash_shared::api::Function;
use lemdash_shared::app::App;
use lemdash_shared::config::{Config, KeySource};
use lemdash_shared::lemlist::LemlistClient;
use lemdash_shared::refresh::Outcome;
use lemdash_shared::secret::ApiKey;
use lemlist_sim::{Latency, Profile, Sim, SimConfig};

const ENVIRONMENT: &str = "\
Environment (read once at start; the README's configuration table has every variable):
  Without a key lemdash runs in demo mode, against a built-in simulated lemlist team. To leave
  it, give it a key; the tables are optional:
  LEMLIST_API_KEY          the lemlist API key
  LEMLIST_API_KEY_SECRET   or: the AWS Secrets Manager secret (name or ARN) holding it
  LEMLIST_BASE_URL         lemlist's API [default: https://api.lemlist.com/api]
  LEMLIST_BUDGET_SHARE     the key's budget scheduled work may use, 0 to 1 [default: 0.75]
  SNAPSHOT_TABLE           DynamoDB table of the snapshots and the sync; unset: kept in memory
  LIMITER_TABLE            DynamoDB table sharing the key's budget between processes; unset: an
                           in-process pacer
  AWS_ENDPOINT_URL_DYNAMODB  a local DynamoDB (e.g. http://127.0.0.1:8000): tables are created
  ALLOWED_ORIGINS          origins a browser may call from, comma-separated
  ALERT_TOPIC_ARN          SNS topic for mailbox-health alerts; unset: printed here
  SLACK_WEBHOOK_URL        a Slack incoming webhook alerts are posted to, raised and resolved
  RUST_LOG                 log level [default: info]";

/// lemlist dashboards (campaigns and mailboxes) served from stored snapshots, on this machine.
#[derive(Debug, Parser)]
#[command(name = "lemdash", version, after_help = ENVIRONMENT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve both functions' routes on 127.0.0.1 and refresh the snapshots on a schedule.
    #[command(after_help = ENVIRONMENT)]
    Serve(ServeArgs),
    /// Refresh both dashboards once, with a progress bar, and print the refresh's figures.
    Refresh(DemoArgs),
    /// Read every tracked campaign's history from scratch and print each difference with the
    /// stored sync state; nothing printed (exit 0) means parity, differences exit 1. Without a
    /// stored state (snapshots in memory), a refresh runs first. Costs about a first sync.
    Verify(DemoArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Port to listen on, on 127.0.0.1.
    #[arg(long, env = "LEMDASH_PORT", default_value_t = 8080)]
    port: u16,
    /// Seconds between scheduled refreshes (at least 10); the first runs at start.
    #[arg(long, env = "LEMDASH_REFRESH_EVERY", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(10..))]
    refresh_every: u64,
    /// Demo mode: events per minute the simulated team keeps making (sends, opens, replies,
    /// bounces; now and then a new lead, a paused lead, a lemwarm change); 0 freezes it.
    #[arg(long, env = "LEMDASH_DEMO_LIVE_RATE", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(0..=6000))]
    live_rate: u32,
    /// The base URL lemlist can reach this process at: lemdash registers its webhooks below it
    /// and the dashboards follow activity within seconds (also `LEMDASH_PUBLIC_URL`). Demo
    /// mode uses its own address; without it, lemdash polls only.
    #[arg(long)]
    public_url: Option<String>,
    #[command(flatten)]
    demo: DemoArgs,
}

/// The simulated team, in demo mode only (no `LEMLIST_API_KEY`).
#[derive(Debug, Args)]
struct DemoArgs {
    /// Demo mode: the simulated team's size (S, M, L or XL).
    #[arg(long, env = "LEMDASH_DEMO_PROFILE", default_value = "M")]
    profile: Profile,
    /// Demo mode: the seed the simulated team is generated from.
    #[arg(long, env = "LEMDASH_DEMO_SEED", default_value_t = 1)]
    seed: u64,
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("lemdash: {message}");
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    lemdash_shared::telemetry::init();
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let demo = match &cli.command {
        Command::Serve(args) => &args.demo,
        Command::Refresh(demo) | Command::Verify(demo) => demo,
    };
    // Kept alive for as long as the app uses it.
    let simulator = if config.lemlist.key.is_none() {
        match demo_mode(&mut config, demo).await {
            Ok(sim) => Some(std::sync::Arc::new(sim)),
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    if let Command::Serve(args) = &cli.command {
        let own = simulator.is_some().then(|| format!("http://127.0.0.1:{}", args.port));
        if let Some(url) = args.public_url.clone().or(config.hooks.public_url.clone()).or(own) {
            config.hooks.public_url = Some(url.trim_end_matches('/').to_owned());
            config.hooks.off_because = None;
        }
        // Slack's buttons open this process's console unless told otherwise.
        if config.alerts.console_url.is_none() {
            config.alerts.console_url = Some(format!("http://127.0.0.1:{}", args.port));
        }
    }
    let app = match App::build_local(config).await {
        Ok(app) => app,
        Err(e) => return fail(e),
    };
    match cli.command {
        Command::Serve(args) => serve(app, &args, simulator).await,
        Command::Refresh(_) => refresh_once(&app).await,
        Command::Verify(_) => verify(&app).await,
    }
}

async fn verify(app: &App) -> ExitCode {
    let refresher = app.refresher();
    match refresher.sync_state().await {
        Ok(Some(_)) => {}
        Ok(None) => {
            eprintln!("no sync state stored for this key: refreshing first");
            if let Err(e) = refresher.run().await {
                return fail(format!("refresh failed: {e}"));
            }
        }
        Err(e) => return fail(format!("cannot read the sync state: {e}")),
    }
    match refresher.verify().await {
        Ok(differences) if differences.is_empty() => ExitCode::SUCCESS,
        Ok(differences) => {
            for line in differences {
                println!("{line}");
            }
            ExitCode::from(1)
        }
        Err(e) => fail(format!("verify failed: {e}")),
    }
}

/// Starts the simulator, its team's history ending now on the wall clock, and points the
/// configuration at it.
async fn demo_mode(config: &mut Config, demo: &DemoArgs) -> Result<Sim, String> {
    let mut sim_config = SimConfig::live(demo.profile, demo.seed);
    sim_config.settings.latency = Latency::LEMLIST;
    let sim = Sim::start(sim_config).await.map_err(|e| format!("cannot start the lemlist simulator: {e}"))?;
    eprintln!(
        "demo mode (no LEMLIST_API_KEY): a simulated lemlist team, profile {:?} seed {}, at {}; see --help to use a real key",
        demo.profile,
        demo.seed,
        sim.base_url()
    );
    config.lemlist.base_url = sim.base_url().parse().map_err(|e| format!("the simulator's URL: {e}"))?;
    config.lemlist.key = Some(KeySource::Value(ApiKey::new(sim.key())));
    Ok(sim)
}

async fn serve(app: App, args: &ServeArgs, simulator: Option<std::sync::Arc<Sim>>) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)),
    };
    let base = format!("http://127.0.0.1:{}", args.port);
    if simulator.is_some() {
        let (profile, seed) = (args.demo.profile, args.demo.seed);
        match args.live_rate {
            0 => {
                println!("DEMO: a simulated team (profile {profile:?}, seed {seed}), frozen (--live-rate 0)")
            }
            rate => println!(
                "DEMO: a simulated team (profile {profile:?}, seed {seed}) whose history ends now and that keeps working: about {rate} events a minute"
            ),
        }
    }
    println!("lemdash is serving:");
    println!("  {base}/   the console: open it in a browser");
    println!("  {base}/api/campaigns/dashboard");
    println!("  {base}/api/mailboxes");
    println!("  {base}/api/alerts");
    println!("  {base}/api/sync");
    println!("  {base}/health");
    println!("mailbox-health alerts are printed here (standard error) as they are raised");
    println!("snapshots are refreshed now and every {} s", args.refresh_every);
    let refresher = app.refresher().clone();
    let every = Duration::from_secs(args.refresh_every);
    let schedule = async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // Failures are logged by the refresh; the next tick tries again.
            let _: Result<_, _> = refresher.run().await;
        }
    };
    let live = live_team(simulator, args.live_rate);
    let router =
        axum::ServiceExt::<axum::extract::Request>::into_make_service(app.api().router(Function::All));
    tokio::select! {
        served = axum::serve(listener, router) => if let Err(e) = served {
            return fail(format!("serving stopped: {e}"));
        },
        () = schedule => {}
        () = live => {}
        _ = tokio::signal::ctrl_c() => tracing::info!("stopping"),
    }
    ExitCode::SUCCESS
}

/// The demo team at work: one simulated event every `60 / rate` seconds, forever (never, for a
/// real key or a rate of 0).
async fn live_team(simulator: Option<std::sync::Arc<Sim>>, rate: u32) {
    let Some(sim) = simulator.filter(|_| rate > 0) else { return std::future::pending().await };
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(60.0 / f64::from(rate)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        sim.burst(1);
    }
}

/// One refresh, with a progress bar on standard error while it runs (hidden when standard
/// error is not a terminal), then one summary line.
async fn refresh_once(app: &App) -> ExitCode {
    let refresher = app.refresher().clone();
    let mut running = tokio::spawn(async move { refresher.run().await });
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("[{bar:24}] {pos:>4}/{len:<4} calls  {per_sec:>10}  ~{eta} left")
            .expect("the template is valid")
            .progress_chars("#>-"),
    );
    let mut ticks = tokio::time::interval(Duration::from_millis(200));
    let outcome = loop {
        tokio::select! {
            done = &mut running => break done,
            _ = ticks.tick() => progress(&bar, app.client()),
        }
    };
    bar.finish_and_clear();
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
        Ok(Ok(Outcome::Continuing(p))) => {
            println!(
                "the sync from scratch saved its progress ({} calls so far); run again to carry on",
                p.calls
            );
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => fail(format!("refresh failed: {e}")),
        Err(e) => fail(format!("refresh crashed: {e}")),
    }
}

/// Calls done of the calls known so far: requests sent plus those waiting for a permit (later
/// pages appear as earlier ones arrive).
fn progress(bar: &ProgressBar, client: &LemlistClient) {
    let stats = client.stats();
    bar.set_length(stats.sent + stats.waiting);
    bar.set_position(stats.sent);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_option_shows_its_default_and_its_variable() {
        let mut serve = Cli::command().find_subcommand("serve").unwrap().clone();
        let help = serve.render_long_help().to_string();
        for (option, variable, default) in [
            ("--port", "LEMDASH_PORT", "8080"),
            ("--refresh-every", "LEMDASH_REFRESH_EVERY", "300"),
            ("--profile", "LEMDASH_DEMO_PROFILE", "M"),
            ("--seed", "LEMDASH_DEMO_SEED", "1"),
            ("--live-rate", "LEMDASH_DEMO_LIVE_RATE", "20"),
        ] {
            assert!(help.contains(option), "{help}");
            assert!(help.contains(&format!("[env: {variable}=")), "{variable}: {help}");
            assert!(help.contains(&format!("[default: {default}]")), "{default}: {help}");
        }
    }

    #[test]
    fn both_helps_say_how_to_leave_demo_mode() {
        let top = Cli::command().render_long_help().to_string();
        let mut serve = Cli::command().find_subcommand("serve").unwrap().clone();
        let serve = serve.render_long_help().to_string();
        for help in [&top, &serve] {
            assert!(help.contains("Environment"), "{help}");
            assert!(help.contains("demo mode"), "{help}");
            for variable in [
                "LEMLIST_API_KEY ",
                "LEMLIST_API_KEY_SECRET",
                "SNAPSHOT_TABLE",
                "LIMITER_TABLE",
                "ALLOWED_ORIGINS",
            ] {
                assert!(help.contains(variable), "{variable}: {help}");
            }
        }
        // Every variable it names is one lemdash reads.
        for line in ENVIRONMENT.lines().skip(3) {
            if let Some(name) = line
                .split_whitespace()
                .next()
                .filter(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            {
                assert!(lemdash_shared::config::ENV_VARS.contains(&name), "{name}");
            }
        }
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(Cli::try_parse_from(["lemdash", "serve", "--port", "x"]).is_err());
        assert!(Cli::try_parse_from(["lemdash", "serve", "--refresh-every", "5"]).is_err());
        assert!(Cli::try_parse_from(["lemdash", "refresh", "--port", "1"]).is_err());
        assert!(Cli::try_parse_from(["lemdash", "serve", "--profile", "XXL"]).is_err());
        let ok = Cli::try_parse_from(["lemdash", "serve", "--port", "9000", "--profile", "S"]).unwrap();
        assert!(matches!(ok.command, Command::Serve(ServeArgs { port: 9000, .. })));
    }
}
