//! Starting the real pieces on free ports.

use std::sync::{Arc, Once};

use std::time::Duration;

use lemdash_shared::api::{Api, Function};
use lemdash_shared::lemlist::LemlistClient;
use lemdash_shared::limiter::{PermitSource, StrictPacer, Unlimited};
use lemdash_shared::snapshot::{MemorySnapshots, SnapshotStore};
use lemlist_sim::{Profile, Settings, Sim, SimConfig};

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().init();
        }
    });
}

/// A simulator of `profile` and `seed` with `settings`.
pub async fn sim(profile: Profile, seed: u64, settings: Settings) -> Sim {
    init_logs();
    let mut config = SimConfig::new(profile, seed);
    config.settings = settings;
    Sim::start(config).await.expect("the simulator starts on a free port")
}

pub fn client_with(sim: &Sim, permits: Arc<dyn PermitSource>) -> LemlistClient {
    lemdash_tests::load::client(&sim.base_url(), sim.key(), permits)
}

/// A client paced by the strict in-process pacer.
pub fn paced_client(sim: &Sim) -> LemlistClient {
    client_with(sim, Arc::new(StrictPacer::lemlist()))
}

/// A client with no pacing at all.
pub fn unpaced_client(sim: &Sim) -> LemlistClient {
    client_with(sim, Arc::new(Unlimited))
}

/// The functions' API for `client` of `sim`, as a cold start builds it, with snapshots in
/// `store` (refreshed in this process), a `budget` per request, on the simulator's clock.
pub fn api_with(sim: &Sim, client: &LemlistClient, budget: Duration, store: Arc<dyn SnapshotStore>) -> Api {
    lemdash_tests::app::with(&lemdash_tests::app::config(budget), sim, client, store).api().clone()
}

/// The same with snapshots in this process.
pub fn api(sim: &Sim, client: &LemlistClient, budget: Duration) -> Api {
    api_with(sim, client, budget, Arc::new(MemorySnapshots::default()))
}

/// Waits until the key's first sync is done: after a cold page is answered with the dashboards
/// a first sync publishes first, it carries on in the background with the daily counts.
pub async fn first_sync_done(r: &lemdash_shared::refresh::Refresher) {
    for _ in 0..1800 {
        if r.sync_status().await.expect("the store answers").first_sync.is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the first sync did not end within 3 minutes");
}

/// Serves both functions' routes over HTTP on a free port, as `lemdash serve` does (the router
/// of `Function::All` through `axum::serve`); returns the base URL.
pub async fn serve(api: Api) -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("a free port");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = api.router(Function::All);
    tokio::spawn(async move {
        axum::serve(listener, axum::ServiceExt::<axum::extract::Request>::into_make_service(app)).await
    });
    url
}

/// Everything a test's log subscriber writes (JSON lines, as in Lambda), kept for searching.
#[derive(Clone, Default)]
pub struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures this thread's logs at debug level, in the Lambda functions' own JSON format, until
/// the guard is dropped. Use in a `current_thread` test, so that every task it spawns logs to
/// the same subscriber.
pub fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let filter = tracing_subscriber::EnvFilter::new("debug");
    let subscriber = lemdash_shared::telemetry::lambda_subscriber(filter, move || writer.clone());
    let guard = tracing::subscriber::set_default(subscriber);
    // Callsites first hit on another test's thread (no subscriber there) may have cached "not
    // interested"; ask them again now that this thread has one.
    tracing::callsite::rebuild_interest_cache();
    (captured, guard)
}
