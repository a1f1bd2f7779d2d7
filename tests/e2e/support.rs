//! Starting the real pieces on free ports.

use std::sync::{Arc, Once};

use lemdash_shared::lemlist::LemlistClient;
use lemdash_shared::limiter::{PermitSource, StrictPacer, Unlimited};
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
    lemlist_sim::load::client(&sim.base_url(), sim.key(), permits)
}

/// A client paced by the strict in-process pacer.
pub fn paced_client(sim: &Sim) -> LemlistClient {
    client_with(sim, Arc::new(StrictPacer::lemlist()))
}

/// A client with no pacing at all.
pub fn unpaced_client(sim: &Sim) -> LemlistClient {
    client_with(sim, Arc::new(Unlimited))
}
