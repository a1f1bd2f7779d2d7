//! What the unit tests share: waiting for a condition instead of sleeping a fixed time.

use std::time::{Duration, Instant};

/// Waits until `condition` holds, failing the test after 10 s (a loaded machine is slow, never
/// that slow): a condition awaited under a deadline, not a fixed settle sleep.
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
