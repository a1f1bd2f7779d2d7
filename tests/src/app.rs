//! lemdash assembled around a test's own client and store, on the simulator's clock, through
//! the composition root.

use std::sync::Arc;
use std::time::Duration;

use lemdash_shared::app::{App, Parts};
use lemdash_shared::config::Config;
use lemdash_shared::hooks::events::EventStore;
use lemdash_shared::lemlist::LemlistClient;
use lemdash_shared::secret::{ApiKey, KeyFingerprint};
use lemdash_shared::snapshot::{MemorySnapshots, SnapshotStore};
use lemlist_sim::Sim;

use crate::clock::MovedClock;

/// The origin the tests' browser requests come from; the test configuration allows it.
pub const ORIGIN: &str = "https://app.example";

/// The fingerprint the tests store their snapshots under.
pub fn key() -> KeyFingerprint {
    ApiKey::new("test").fingerprint()
}

/// The configuration of an empty environment, with [`ORIGIN`] allowed and `budget` per request.
pub fn config(budget: Duration) -> Config {
    let mut config = Config::from_lookup(|_| None).expect("defaults are valid");
    config.http.allowed_origins = vec![ORIGIN.to_owned()];
    config.http.budget = budget;
    // Tests force refreshes back to back; the throttle has its own test.
    config.snapshots.forced_refresh_min = Duration::ZERO;
    config
}

/// The app around `client` and `store` (refreshed in this process), as a cold start builds it,
/// on `sim`'s clock.
pub fn with(config: &Config, sim: &Sim, client: &LemlistClient, store: Arc<dyn SnapshotStore>) -> App {
    with_events(config, sim, client, store, None)
}

/// The same with webhook deliveries kept in `events` (`None`: in memory).
pub fn with_events(
    config: &Config,
    sim: &Sim,
    client: &LemlistClient,
    store: Arc<dyn SnapshotStore>,
    events: Option<Arc<dyn EventStore>>,
) -> App {
    let parts = Parts { client: client.clone(), store, events, key: key(), clock: MovedClock::of(sim) };
    App::from_parts(config, parts)
}

/// The same with snapshots in this process's memory.
pub fn in_memory(sim: &Sim, client: &LemlistClient, budget: Duration) -> App {
    with(&config(budget), sim, client, Arc::new(MemorySnapshots::default()))
}

/// lemdash with webhooks, served over HTTP on a free port whose URL is its public one, around
/// `client` and `store`: lemlist (the simulator) registers and delivers to it.
pub async fn serving_hooks(
    sim: &Sim,
    client: &LemlistClient,
    store: Arc<dyn SnapshotStore>,
    mut config: Config,
) -> (App, String) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("a bound port"));
    config.hooks.public_url = Some(url.clone());
    config.hooks.off_because = None;
    let app = with(&config, sim, client, store);
    let router = app.api().router(lemdash_shared::api::Function::All);
    tokio::spawn(async move {
        axum::serve(listener, axum::ServiceExt::<axum::extract::Request>::into_make_service(router)).await
    });
    (app, url)
}
