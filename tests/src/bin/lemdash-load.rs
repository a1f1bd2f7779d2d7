//! `lemdash-load`: one process of a multi-process rate-limit test. It shares a lemlist key's
//! budget with its siblings through DynamoDB, with its own clock offset, and prints one JSON
//! line with what it did.
//!
//! ```text
//! lemdash-load --base-url URL --key KEY --dynamo URL --table NAME
//!              [--tasks 8] [--requests 5] [--offset-ms 0] [--jitter-ms 100] [--max-processes 4]
//!              [--share-lanes 20]
//!
//! Its calls are scheduled work: with `--share-lanes N` they keep to N of the 20 lanes.
//! ```

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use lemdash_shared::dynamo::local_client;
use lemdash_shared::limiter::dynamo::DynamoStore;
use lemdash_shared::limiter::{SharedLimiter, SharedSettings, SystemClock};
use lemdash_shared::secret::ApiKey;
use lemdash_tests::load::{self, Jittered};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts: HashMap<&str, &str> =
        args.chunks(2).filter_map(|p| Some((p[0].strip_prefix("--")?, p.get(1)?.as_str()))).collect();
    let get = |name: &str| opts.get(name).copied();
    let num = |name: &str, default: i64| {
        get(name).map_or(Ok(default), |v| v.parse::<i64>().map_err(|e| format!("--{name}: {e}")))
    };
    let (Some(base_url), Some(key), Some(dynamo), Some(table)) =
        (get("base-url"), get("key"), get("dynamo"), get("table"))
    else {
        eprintln!(
            "usage: lemdash-load --base-url URL --key KEY --dynamo URL --table NAME [--tasks N] [--requests N] [--offset-ms N] [--jitter-ms N] [--max-processes N] [--share-lanes N]"
        );
        return ExitCode::from(2);
    };
    let numbers = (|| -> Result<_, String> {
        Ok((
            num("tasks", 8)?,
            num("requests", 5)?,
            num("offset-ms", 0)?,
            num("jitter-ms", 100)?,
            num("max-processes", 4)?,
            num("share-lanes", 20)?,
        ))
    })();
    let (tasks, requests, offset_ms, jitter_ms, max_processes, share_lanes) = match numbers {
        Ok(n) => n,
        Err(e) => {
            eprintln!("lemdash-load: {e}");
            return ExitCode::from(2);
        }
    };
    if std::env::var("TEST_LOG").is_ok() {
        tracing_subscriber::fmt()
            .with_env_filter(std::env::var("TEST_LOG").unwrap_or_default())
            .with_writer(std::io::stderr)
            .init();
    }

    let settings = SharedSettings {
        max_processes: max_processes as u32,
        share_lanes: share_lanes as usize,
        ..SharedSettings::default()
    };
    let store = DynamoStore::new(local_client(dynamo), table);
    let limiter = Arc::new(SharedLimiter::new(
        store,
        ApiKey::new(key).fingerprint(),
        Arc::new(SystemClock { offset_ms }),
        settings,
    ));
    let permits = Arc::new(Jittered::new(limiter.clone(), Duration::from_millis(jitter_ms as u64)));
    let client = load::client(base_url, key, permits);
    let report = load::run(&client, tasks as usize, requests as usize).await;
    let m = limiter.metrics();
    println!(
        "{{\"ok\":{},\"failed\":{},\"granted\":{},\"granted_degraded\":{},\"writes\":{},\"conflicts\":{},\"pauses\":{}}}",
        report.ok, report.failed, m.granted, m.granted_degraded, m.writes, m.conflicts, m.pauses
    );
    if report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
