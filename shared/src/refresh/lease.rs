//! The refresh lease: at most one refresh per key runs at a time across every invocation. A
//! [`LeaseGuard`] renews the lease while it lives, and gives it up when released or dropped; a
//! process that dies leaves a lease that expires by itself.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::snapshot::{SnapshotError, SnapshotStore};

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

/// The lease of one key, held.
pub struct LeaseGuard {
    store: Arc<dyn SnapshotStore>,
    key: String,
    holder: String,
    renewal: tokio::task::JoinHandle<()>,
    released: bool,
}

impl LeaseGuard {
    /// Takes the key's lease for `lease` (renewed every third of it); `None` when another
    /// refresh holds it.
    pub async fn acquire(
        store: Arc<dyn SnapshotStore>,
        key: &str,
        lease: Duration,
    ) -> Result<Option<Self>, SnapshotError> {
        let holder = format!("{:016x}", rand::random::<u64>());
        let lease_ms = lease.as_millis() as i64;
        if !store.acquire_lease(key, &holder, now_ms(), now_ms() + lease_ms).await? {
            return Ok(None);
        }
        let renewal = {
            let (store, key, holder) = (store.clone(), key.to_owned(), holder.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    match store.acquire_lease(&key, &holder, now_ms(), now_ms() + lease_ms).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!("refresh lease lost to another refresh; finishing anyway")
                        }
                        Err(e) => tracing::warn!(error = %e, "could not renew the refresh lease"),
                    }
                }
            })
        };
        Ok(Some(Self { store, key: key.to_owned(), holder, renewal, released: false }))
    }

    /// Stops renewing and gives the lease up now.
    pub async fn release(mut self) {
        self.renewal.abort();
        self.released = true;
        if let Err(e) = self.store.release_lease(&self.key, &self.holder).await {
            tracing::warn!(error = %e, "could not release the refresh lease; it will expire");
        }
    }
}

impl Drop for LeaseGuard {
    /// A refresh cancelled (its future dropped) stops renewing, and gives the lease up in the
    /// background if a runtime is still there; otherwise the lease expires.
    fn drop(&mut self) {
        self.renewal.abort();
        if self.released {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, key, holder) = (self.store.clone(), self.key.clone(), self.holder.clone());
            runtime.spawn(async move {
                let _ = store.release_lease(&key, &holder).await;
            });
        }
    }
}
