//! Load for rate-limit tests and benchmarks: concurrent tasks calling lemlist through one
//! client, and a permit-source wrapper that plays network jitter.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use lemdash_shared::lemlist::{ClientConfig, LemlistClient};
use lemdash_shared::limiter::{PermitError, PermitSource, Priority};
use lemdash_shared::secret::ApiKey;
use rand::Rng;

/// Delays every permitted request by a random 0..`max` before it leaves: the network jitter
/// between the limiter's decision and lemlist's clock. Records how long each permit took.
#[derive(Debug)]
pub struct Jittered {
    inner: Arc<dyn PermitSource>,
    max: Duration,
    waits: Mutex<Vec<Duration>>,
}

impl Jittered {
    pub fn new(inner: Arc<dyn PermitSource>, max: Duration) -> Self {
        Self { inner, max, waits: Mutex::new(Vec::new()) }
    }

    /// How long each granted permit took to obtain, in grant order.
    pub fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait::async_trait]
impl PermitSource for Jittered {
    async fn acquire(&self, deadline: Option<Instant>, priority: Priority) -> Result<(), PermitError> {
        let asked = Instant::now();
        self.inner.acquire(deadline, priority).await?;
        self.waits.lock().unwrap_or_else(|e| e.into_inner()).push(asked.elapsed());
        if !self.max.is_zero() {
            let jitter = rand::rng().random_range(Duration::ZERO..=self.max);
            tokio::time::sleep(jitter).await;
        }
        Ok(())
    }

    async fn pause_until(&self, resume_at: SystemTime) {
        self.inner.pause_until(resume_at).await;
    }
}

pub fn client(base_url: &str, key: &str, permits: Arc<dyn PermitSource>) -> LemlistClient {
    let config = ClientConfig::new(base_url.parse().expect("a valid base URL"), ApiKey::new(key));
    LemlistClient::new(config, permits).expect("the client builds")
}

/// What a load run achieved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub ok: usize,
    pub failed: usize,
}

/// `tasks` concurrent tasks, each making `requests` calls to `GET /team` one after another.
pub async fn run(client: &LemlistClient, tasks: usize, requests: usize) -> LoadReport {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let client = client.clone();
        set.spawn(async move {
            let mut report = LoadReport::default();
            for _ in 0..requests {
                match client.team().await {
                    Ok(_) => report.ok += 1,
                    Err(e) => {
                        tracing::error!(error = %e, "load request failed");
                        report.failed += 1;
                    }
                }
            }
            report
        });
    }
    let mut total = LoadReport::default();
    while let Some(done) = set.join_next().await {
        let r = done.expect("load tasks do not panic");
        total.ok += r.ok;
        total.failed += r.failed;
    }
    total
}

/// The time to send `calls` requests at 10 per second after a 20-request burst.
pub fn lower_bound(calls: usize) -> Duration {
    Duration::from_secs_f64(calls.saturating_sub(20) as f64 / 10.0)
}

/// The least time between the first and the last of `calls` requests when no 2-second interval
/// may hold more than 20 arrivals: request `n + 20` comes at least 2 s after request `n`. Above
/// [`lower_bound`] for small counts, since a burst of 20 must be followed by 2 s of silence.
pub fn window_floor(calls: usize) -> Duration {
    Duration::from_secs(2 * (calls.saturating_sub(1) / 20) as u64)
}
