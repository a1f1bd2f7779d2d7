//! `lemdash-coldstart-bench`: each Lambda binary's cold start, timed against a local stand-in
//! for the Lambda Runtime API. Prints a table; asserts nothing.
//!
//! ```text
//! cargo build --release -p lemdash-campaigns -p lemdash-mailboxes -p lemdash-refresh
//! cargo run --release -p lemdash-tests --bin lemdash-coldstart-bench
//! ```
//!
//! Each binary is started as Lambda starts a `provided.al2023` bootstrap (`AWS_LAMBDA_RUNTIME_API`
//! and the usual variables), with the lemlist simulator (profile M) and DynamoDB Local behind
//! it. *Init* is the time from starting the process to its first request for an event: reading
//! the configuration, building the clients, reaching DynamoDB. *First event* is the time from
//! handing it its first event to its answer: a dashboard read from the stored snapshot for the
//! API functions, a whole refresh for the refresh function. The binaries are this machine's
//! (x86_64): the arm64 ones run the same code.

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
use lemdash_shared::refresh::Refresher;
use lemdash_shared::secret::ApiKey;
use lemdash_shared::snapshot::SnapshotStore;
use lemdash_tests::dynamo_local::{DynamoLocal, create_limiter_table, snapshot_store};
use lemdash_tests::load;
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
        let deadline = (std::time::SystemTime::now() + Duration::from_secs(600))
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

#[tokio::main]
async fn main() {
    let dynamo = DynamoLocal::start().expect("DynamoDB Local starts (needs Java and npm)");
    create_limiter_table(&dynamo.endpoint, "coldstart-limiter").await.unwrap();
    let store = Arc::new(snapshot_store(&dynamo.endpoint, "coldstart-snapshots").await.unwrap());
    let mut config = SimConfig::live(Profile::M, 1);
    config.settings =
        Settings { limit: LimitMode::Anchored, latency: Latency::LEMLIST, ..Settings::default() };
    let sim = Sim::start(config).await.unwrap();
    // The API functions read a stored snapshot, as they do once the schedule has run.
    let key = ApiKey::new(sim.key()).fingerprint();
    let client =
        load::client(&sim.base_url(), sim.key(), Arc::new(lemdash_shared::limiter::StrictPacer::lemlist()));
    let seeded: Arc<dyn SnapshotStore> = store;
    Refresher::new(client, seeded, key, Duration::from_secs(30)).run().await.expect("the first refresh");

    println!("cold start of each function (x86_64 release build, DynamoDB Local, simulator profile M)");
    println!("| binary | size | init | first event | what the first event did |");
    println!("|---|---|---|---|---|");
    for (name, event) in [
        ("lemdash-campaigns", http_event("/api/campaigns/dashboard")),
        ("lemdash-mailboxes", http_event("/api/mailboxes")),
        ("lemdash-refresh", "{}".to_owned()),
    ] {
        let (address, api) = start_runtime_api(event).await;
        let path = binary(name);
        let size = std::fs::metadata(&path).unwrap().len();
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
            .env("AWS_ENDPOINT_URL_DYNAMODB", &dynamo.endpoint)
            .env("LEMLIST_API_KEY", sim.key())
            .env("LEMLIST_BASE_URL", sim.base_url())
            .env("LIMITER_TABLE", "coldstart-limiter")
            .env("SNAPSHOT_TABLE", "coldstart-snapshots")
            .env("AUTH_REQUIRED", "false")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the bootstrap starts");
        tokio::time::timeout(Duration::from_secs(120), api.done.notified())
            .await
            .expect("an answer within 2 min");
        child.kill().await.ok();
        let seen = api.seen.lock().unwrap();
        let init = seen.first_next.unwrap() - started;
        let (answered, what) = seen.answered.clone().unwrap();
        let first = answered - seen.event_sent.unwrap();
        println!(
            "| {name} | {:.1} MB | {:.1} ms | {:.1} ms | {what} |",
            size as f64 / 1e6,
            init.as_secs_f64() * 1000.0,
            first.as_secs_f64() * 1000.0
        );
    }
}
