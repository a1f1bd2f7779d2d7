//! The strict pacer keeps lemlist's limit as lemlist measures it; without it, 429 retries still
//! recover every response. Figures are printed (run with `--nocapture`), never timed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use lemdash_shared::lemlist::{ActivityQuery, LemlistClient};
use lemdash_shared::limiter::{PermitError, PermitSource, Priority, Unlimited};
use lemlist_sim::{LimitMode, Profile, ResetFormat, Settings, Sim};

use crate::support::{client_with, paced_client, sim, unpaced_client};

const BURST: usize = 100;
const TWO_SECONDS: Duration = Duration::from_secs(2);

/// 100 calls at once, spread over several endpoints. Returns how many succeeded.
async fn burst(client: &LemlistClient) -> usize {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..BURST {
        let client = client.clone();
        tasks.spawn(async move {
            match i % 3 {
                0 => client.team().await.map(drop),
                1 => client.campaigns(None).await.map(drop),
                _ => client.activities(&ActivityQuery::of_type("emailsReplied")).await.map(drop),
            }
        });
    }
    let mut ok = 0;
    while let Some(done) = tasks.join_next().await {
        done.expect("no task panics").expect("every call of the burst succeeds");
        ok += 1;
    }
    ok
}

fn report(label: &str, sim: &Sim) {
    let log = sim.log();
    println!(
        "{label}: {} requests, max {} arrivals in any 2 s, {} answered 429, {:.2} requests/s",
        log.total(),
        log.max_arrivals_in(TWO_SECONDS),
        log.rate_limited(),
        log.achieved_rate()
    );
}

#[tokio::test]
async fn a_paced_burst_never_exceeds_twenty_per_two_seconds() {
    for mode in [LimitMode::Sliding, LimitMode::Anchored] {
        let sim = sim(Profile::S, 21, Settings { limit: mode, ..Settings::default() }).await;
        let client = paced_client(&sim);
        assert_eq!(burst(&client).await, BURST);
        report(&format!("paced burst, {mode:?} server"), &sim);
        let log = sim.log();
        assert_eq!(log.rate_limited(), 0, "{mode:?}: no 429 at all");
        assert!(log.max_arrivals_in(TWO_SECONDS) <= 20, "{mode:?}: {}", log.max_arrivals_in(TWO_SECONDS));
        // S has few replies: one page per activities call, so 100 calls are 100 requests.
        assert_eq!(log.total(), BURST);
        assert_eq!(client.stats().rate_limited, 0);
    }
}

#[tokio::test]
async fn an_unpaced_burst_recovers_every_response_through_429_retries() {
    let sim = sim(Profile::S, 22, Settings { limit: LimitMode::Anchored, ..Settings::default() }).await;
    let client = unpaced_client(&sim);
    assert_eq!(burst(&client).await, BURST);
    report("unpaced burst, anchored server", &sim);
    let log = sim.log();
    assert!(log.rate_limited() >= 50, "the burst did hit the limit: {}", log.rate_limited());
    assert_eq!(client.stats().rate_limited as usize, log.rate_limited());
    let successes = log.own().filter(|e| e.status == 200).count();
    assert_eq!(successes, BURST, "each call got exactly one good answer");
}

/// Records the pauses the client asks for, and grants every permit.
#[derive(Debug, Default)]
struct RecordingPermits {
    pauses: Mutex<Vec<SystemTime>>,
}

#[async_trait::async_trait]
impl PermitSource for RecordingPermits {
    async fn acquire(&self, deadline: Option<Instant>, priority: Priority) -> Result<(), PermitError> {
        Unlimited.acquire(deadline, priority).await
    }

    async fn pause_until(&self, resume_at: SystemTime) {
        self.pauses.lock().unwrap().push(resume_at);
    }
}

#[tokio::test]
async fn every_reset_format_pauses_until_lemlists_window_ends() {
    for format in [ResetFormat::JsDate, ResetFormat::HttpDate, ResetFormat::UnixSeconds] {
        let sim = sim(
            Profile::S,
            23,
            Settings { limit: LimitMode::Anchored, reset_format: format, ..Settings::default() },
        )
        .await;
        let permits = Arc::new(RecordingPermits::default());
        let client = client_with(&sim, permits.clone());
        // 20 calls at once use the window up; the last answer says Remaining: 0.
        let started = SystemTime::now();
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let client = client.clone();
            calls.spawn(async move { client.team().await.map(drop) });
        }
        while let Some(done) = calls.join_next().await {
            done.unwrap().unwrap();
        }
        let pauses = permits.pauses.lock().unwrap().clone();
        assert_eq!(pauses.len(), 1, "{format:?}: one pause, asked for by the answer that emptied the window");
        let ahead = pauses[0].duration_since(started).unwrap_or_default();
        // The window opened at `started` and resets 2 s later; the headers give the reset and
        // the server's time to the second, so the estimate is within a second of that.
        assert!(ahead <= Duration::from_millis(3100), "{format:?}: {ahead:?}");
        // The pause must last until the server's window really ended: a call sent the moment
        // it ends is accepted. A pause that ended early would meet a 429 here.
        let wait = pauses[0].duration_since(SystemTime::now()).unwrap_or_default();
        tokio::time::sleep(wait).await;
        client.team().await.unwrap();
        assert_eq!(sim.log().rate_limited(), 0, "{format:?}: nothing was sent inside the window");
    }
}
