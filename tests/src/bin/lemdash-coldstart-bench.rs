//! `lemdash-coldstart-bench`: each Lambda binary's cold start and peak memory, run against a
//! local stand-in for the Lambda Runtime API. Prints a table; asserts nothing.
//!
//! ```text
//! cargo build --release -p lemdash-campaigns -p lemdash-mailboxes -p lemdash-refresh
//! cargo run --release -p lemdash-tests --bin lemdash-coldstart-bench [PROFILE…]
//! ```
//!
//! For each profile (default M): a simulator with lemlist's limit and latency, its history up
//! to now, and DynamoDB Local behind it. Each binary is started as Lambda starts a
//! `provided.al2023` bootstrap (`AWS_LAMBDA_RUNTIME_API` and the usual variables) and handed one
//! event: the refresh function twice (the first sync on an empty table, then a steady refresh
//! after a burst of 100 live events), then each API function (a dashboard read from the stored
//! snapshot). *Init* is the time from starting the process to its first request for an event:
//! reading the configuration, building the clients, reaching DynamoDB. *First event* is the
//! time from handing it the event to its answer. *Peak RSS* is the process's high-water mark
//! (`VmHWM` in `/proc/<pid>/status`) once it answered, which is what Lambda's "Max Memory Used"
//! reports. The stand-in gives the first sync an hour (Lambda gives at most 15 minutes and the
//! sync carries on in another invocation), so its peak is that of the whole sync in one process:
//! an upper bound. The binaries are this machine's (x86_64): the arm64 ones run the same code.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lemdash_tests::dynamo_local::{DynamoLocal, create_limiter_table, snapshot_store};
use lemlist_sim::{Latency, LimitMode, Profile, Settings, Sim, SimConfig};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// What the stand-in Runtime API saw, in time.
#[derive(Default)]
struct Seen {
    first_next: Option<Instant>,
    event_sent: Option<Instant>,
    answered: Option<(Instant, String)>,
}

struct RuntimeApi {
    event: String,
    seen: Mutex<Seen>,
    done: Notify,
}

async fn runtime_api(
    api: Arc<RuntimeApi>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    if path.ends_with("/invocation/next") {
        let first = {
            let mut seen = api.seen.lock().unwrap();
            let now = Instant::now();
            seen.first_next.get_or_insert(now);
            if seen.event_sent.is_none() {
                seen.event_sent = Some(now);
                true
            } else {
                false
            }
        };
        if !first {
            // One event per cold start: the function waits here until it is stopped.
            std::future::pending::<()>().await;
        }
        let deadline = (std::time::SystemTime::now() + Duration::from_secs(3600))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let response = Response::builder()
            .header("lambda-runtime-aws-request-id", "bench-1")
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:000000000000:function:bench",
            )
            .header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000")
            .body(Full::new(Bytes::from(api.event.clone())))
            .unwrap();
        return Ok(response);
    }
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    // The gist of the answer: the HTTP status of an API function, the outcome of a refresh.
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let what = match (path.ends_with("/response"), &answer["statusCode"], &answer["outcome"]) {
        (true, serde_json::Value::Number(status), _) => format!("HTTP {status}"),
        (true, _, serde_json::Value::String(outcome)) => format!("{outcome}, {} calls", answer["calls"]),
        _ => format!("error: {}", String::from_utf8_lossy(&body).chars().take(120).collect::<String>()),
    };
    api.seen.lock().unwrap().answered = Some((Instant::now(), what));
    api.done.notify_one();
    Ok(Response::builder().status(202).body(Full::new(Bytes::new())).unwrap())
}

async fn start_runtime_api(event: String) -> (String, Arc<RuntimeApi>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let api = Arc::new(RuntimeApi { event, seen: Mutex::new(Seen::default()), done: Notify::new() });
    let served = api.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let api = served.clone();
            tokio::spawn(async move {
                let service = service_fn(move |r| runtime_api(api.clone(), r));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (address, api)
}

fn http_event(path: &str) -> String {
    serde_json::json!({
        "version": "2.0",
        "routeKey": format!("GET {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "bench.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "accountId": "000000000000", "apiId": "bench", "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench", "requestId": "bench-1", "routeKey": format!("GET {path}"), "stage": "$default",
            "time": "28/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"}
        },
        "isBase64Encoded": false
    })
    .to_string()
}

/// The release binary `name`: in this workspace's `target/release`, or in the folder
/// `BENCH_BINARIES` names (to time another build's binaries with the same bench).
fn binary(name: &str) -> PathBuf {
    let dir = std::env::var_os("BENCH_BINARIES").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release")),
        PathBuf::from,
    );
    let path = dir.join(name);
    assert!(path.is_file(), "{} is missing: cargo build --release -p {name}", path.display());
    path
}

/// What one cold start of one binary showed.
struct Run {
    init: Duration,
    first_event: Duration,
    what: String,
    peak_rss_kb: u64,
}

/// The process's high-water mark of resident memory, in KiB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Starts `name` as Lambda starts a bootstrap, hands it `event`, and waits for its answer.
async fn cold_start(name: &str, event: String, sim: &Sim, dynamo: &str, tables: (&str, &str)) -> Run {
    let (address, api) = start_runtime_api(event).await;
    let path = binary(name);
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&path)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &address)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL_DYNAMODB", dynamo)
        .env("LEMLIST_API_KEY", sim.key())
        .env("LEMLIST_BASE_URL", sim.base_url())
        .env("LIMITER_TABLE", tables.0)
        .env("SNAPSHOT_TABLE", tables.1)
        .env("AUTH_REQUIRED", "false")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the bootstrap starts");
    tokio::time::timeout(Duration::from_secs(3600), api.done.notified())
        .await
        .expect("an answer within the hour");
    let peak_rss_kb = child.id().map_or(0, peak_rss_kb);
    child.kill().await.ok();
    let seen = api.seen.lock().unwrap();
    let (answered, what) = seen.answered.clone().unwrap();
    Run {
        init: seen.first_next.unwrap() - started,
        first_event: answered - seen.event_sent.unwrap(),
        what,
        peak_rss_kb,
    }
}

#[tokio::main]
async fn main() {
    let mut profiles: Vec<Profile> =
        std::env::args().skip(1).map(|a| a.parse().expect("a profile: S, M, L, XL or REAL")).collect();
    if profiles.is_empty() {
        profiles = vec![Profile::M];
    }
    let dynamo = DynamoLocal::start().expect("DynamoDB Local starts (needs Java and npm)");
    println!("cold start and peak memory of each function (x86_64 release build, DynamoDB Local, simulator)");
    println!("| profile | binary | event | size | init | first event | peak RSS | what the event did |");
    println!("|---|---|---|---|---|---|---|---|");
    for profile in profiles {
        let tables = (format!("coldstart-limiter-{profile:?}"), format!("coldstart-snapshots-{profile:?}"));
        create_limiter_table(&dynamo.endpoint, &tables.0).await.unwrap();
        snapshot_store(&dynamo.endpoint, &tables.1).await.unwrap();
        let mut config = SimConfig::live(profile, 1);
        config.settings =
            Settings { limit: LimitMode::Anchored, latency: Latency::LEMLIST, ..Settings::default() };
        let sim = Sim::start(config).await.unwrap();
        for (name, event, label) in [
            ("lemdash-refresh", "{}".to_owned(), "first sync"),
            ("lemdash-refresh", "{}".to_owned(), "steady refresh"),
            ("lemdash-campaigns", http_event("/api/campaigns/dashboard"), "dashboard"),
            ("lemdash-mailboxes", http_event("/api/mailboxes"), "dashboard"),
        ] {
            if label == "steady refresh" {
                sim.burst(100);
            }
            let run = cold_start(name, event, &sim, &dynamo.endpoint, (&tables.0, &tables.1)).await;
            let size = std::fs::metadata(binary(name)).unwrap().len();
            println!(
                "| {profile:?} | {name} | {label} | {:.1} MB | {:.1} ms | {:.1} ms | {:.1} MB | {} |",
                size as f64 / 1e6,
                run.init.as_secs_f64() * 1000.0,
                run.first_event.as_secs_f64() * 1000.0,
                run.peak_rss_kb as f64 / 1024.0,
                run.what
            );
        }
    }
}
