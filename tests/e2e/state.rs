//! The sync state and the history in small parts, against DynamoDB Local and the simulator: a
//! steady refresh writes only what changed (counted at the store adapter), a refresh killed
//! between two item writes leaves a state the next one completes exactly, and a state of the
//! previous layout (one document) is upgraded in place without a sync from scratch.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lemdash_shared::refresh::{Outcome, Refresher};
use lemdash_shared::snapshot::dynamo::DynamoSnapshots;
use lemdash_shared::snapshot::parts::{Base, Document, Plan};
use lemdash_shared::snapshot::store::Units;
use lemdash_shared::snapshot::{Item, MemorySnapshots, SnapshotError, SnapshotStore, Stored, pack, unpack};
use lemdash_shared::sync::Mode;
use lemdash_tests::app::key;
use lemdash_tests::clock::MovedClock;
use lemdash_tests::dynamo_local::{DynamoLocal, snapshot_store};
use lemlist_sim::{LimitMode, Profile, Settings, Sim};
use serde_json::Value;

use crate::support::{sim, unpaced_client};
use crate::sync::{exact, refresh};

/// DynamoDB behind a recorder of the parts each save writes; it can also die after a number of
/// part writes, before the head, as a process killed mid-save does.
#[derive(Debug)]
struct Recorder {
    inner: DynamoSnapshots,
    written: Mutex<Vec<(Item, String)>>,
    die_after_puts: Mutex<Option<usize>>,
}

impl Recorder {
    fn new(inner: DynamoSnapshots) -> Self {
        Self { inner, written: Mutex::default(), die_after_puts: Mutex::default() }
    }

    /// The part names written since the last call, for `board`.
    fn take(&self, board: Item) -> Vec<String> {
        let mut all = self.written.lock().unwrap();
        let mine = all.iter().filter(|(b, _)| *b == board).map(|(_, n)| n.clone()).collect();
        all.clear();
        mine
    }
}

#[async_trait::async_trait]
impl SnapshotStore for Recorder {
    async fn load(&self, key: &str, board: Item) -> Result<Option<Stored>, SnapshotError> {
        self.inner.load(key, board).await
    }
    async fn save(
        &self,
        key: &str,
        board: Item,
        bytes: Vec<u8>,
        v: Option<u64>,
    ) -> Result<bool, SnapshotError> {
        self.inner.save(key, board, bytes, v).await
    }
    async fn load_parts(&self, key: &str, board: Item) -> Result<Option<Document>, SnapshotError> {
        self.inner.load_parts(key, board).await
    }
    async fn save_parts(
        &self,
        key: &str,
        board: Item,
        head: Vec<u8>,
        plan: &Plan,
        base: &Base,
    ) -> Result<bool, SnapshotError> {
        let die = {
            let mut armed = self.die_after_puts.lock().unwrap();
            armed.filter(|n| board == Item::Sync && *n < plan.puts.len()).and_then(|_| armed.take())
        };
        if let Some(n) = die {
            // The first n parts reach the table; the head never does (its condition cannot hold).
            let cut = Plan { puts: plan.puts[..n].to_vec(), manifest: plan.manifest.clone() };
            let never = Base { version: Some(u64::MAX - 1), manifest: None };
            assert!(!self.inner.save_parts(key, board, head, &cut, &never).await?);
            return Err(SnapshotError::Store(format!("killed after {n} of {} part writes", plan.puts.len())));
        }
        self.written.lock().unwrap().extend(plan.puts.iter().map(|p| (board, p.name.clone())));
        self.inner.save_parts(key, board, head, plan, base).await
    }
    fn units(&self) -> Units {
        self.inner.units()
    }
    async fn acquire_lease(
        &self,
        key: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, SnapshotError> {
        self.inner.acquire_lease(key, holder, now, until).await
    }
    async fn release_lease(&self, key: &str, holder: &str) -> Result<(), SnapshotError> {
        self.inner.release_lease(key, holder).await
    }
    async fn request_refresh(&self, key: &str, at_ms: i64) -> Result<(), SnapshotError> {
        self.inner.request_refresh(key, at_ms).await
    }
}

async fn setup(table: &str, profile: Profile, seed: u64) -> (DynamoLocal, Sim, Arc<Recorder>, Refresher) {
    let local = DynamoLocal::start().expect("DynamoDB Local starts");
    let store = snapshot_store(&local.endpoint, table).await.expect("the snapshot table is created");
    let sim = sim(profile, seed, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    let store = Arc::new(Recorder::new(store));
    let r = refresher(&sim, store.clone());
    (local, sim, store, r)
}

fn refresher(sim: &Sim, store: Arc<dyn SnapshotStore>) -> Refresher {
    Refresher::new(unpaced_client(sim), store, key(), Duration::from_secs(30)).with_clock(MovedClock::of(sim))
}

fn sync_writes(before: &Units, after: &Units) -> (u64, f64) {
    let t = |u: &Units| u.get("sync").copied().unwrap_or_default();
    (t(after).writes - t(before).writes, t(after).write_units - t(before).write_units)
}

#[tokio::test]
async fn a_steady_refresh_after_one_campaign_changed_writes_its_delta_its_day_and_the_head() {
    let (_local, sim, store, r) = setup("state-steady", Profile::M, 61).await;
    refresh(&r).await;
    refresh(&r).await;
    exact(&sim, &r).await.unwrap();
    let campaign = {
        let (_, state) = r.sync_state().await.unwrap().unwrap();
        state.campaigns.keys().next().expect("a tracked campaign").clone()
    };
    store.take(Item::Sync);
    // Replies from the campaign's first leads: some had never replied, so its set grows.
    assert!(sim.script(&campaign, 0, "emailsReplied", 40) > 0);
    let before = store.units();
    refresh(&r).await;
    let (writes, units) = sync_writes(&before, &store.units());
    exact(&sim, &r).await.unwrap();

    let written = store.take(Item::Sync);
    let today = format!("l#{}", r.now().date_naive());
    let delta = written.iter().find(|n| n.starts_with("d#")).expect("a delta of the new leads").clone();
    let mut expected = vec![delta.clone(), today];
    expected.sort();
    assert_eq!(written, expected, "the campaign's delta and today's counts, nothing else");
    assert_eq!(writes, written.len() as u64 + 1, "and the head");
    let Some(Document::Layered(stored)) = store.load_parts(key().as_str(), Item::Sync).await.unwrap() else {
        panic!("the state is stored in parts")
    };
    let named: BTreeMap<String, Value> = unpack(&stored.parts[&delta]).unwrap();
    assert_eq!(named.keys().collect::<Vec<_>>(), [&campaign], "the delta names that campaign only");
    println!("steady refresh, one campaign changed: {writes} sync items written, {units} write units");
}

#[tokio::test]
async fn a_refresh_killed_between_two_part_writes_leaves_a_state_the_next_one_completes() {
    let (_local, sim, store, r) = setup("state-killed", Profile::M, 62).await;
    // Killed in the first save of a first sync: nothing is stored, and the parts it wrote are
    // named by no head.
    *store.die_after_puts.lock().unwrap() = Some(10);
    assert!(r.run().await.is_err(), "the refresh dies with its save");
    assert!(r.sync_state().await.unwrap().is_none());
    refresh(&r).await;
    exact(&sim, &r).await.unwrap();
    let (first, _) = r.sync_state().await.unwrap().unwrap();

    // Killed in a steady save, between its delta and its day: the state stays the previous one.
    sim.burst(80);
    *store.die_after_puts.lock().unwrap() = Some(1);
    assert!(r.run().await.is_err());
    let (after_kill, _) = r.sync_state().await.unwrap().unwrap();
    assert_eq!(after_kill, first, "the head still names the previous parts");
    let outcome = r.run().await.unwrap();
    assert!(matches!(outcome, Outcome::Refreshed(_)), "{outcome:?}");
    exact(&sim, &r).await.unwrap();
    let state = r.sync_state().await.unwrap().unwrap().1;
    assert_eq!(state.last.mode, Some(Mode::Incremental), "carried on, not from scratch");
}

#[tokio::test]
async fn a_state_and_history_of_the_previous_layout_are_upgraded_in_place() {
    let sim = sim(Profile::M, 63, Settings { limit: LimitMode::Off, ..Settings::default() }).await;
    // A deployment before the upgrade: its state and history as one document each.
    let before = refresher(&sim, Arc::new(MemorySnapshots::default()));
    refresh(&before).await;
    sim.burst(60);
    refresh(&before).await;
    let (_, state) = before.sync_state().await.unwrap().unwrap();
    let (_, log) = before.health().await.unwrap().unwrap();
    let local = DynamoLocal::start().expect("DynamoDB Local starts");
    let store = Arc::new(snapshot_store(&local.endpoint, "state-upgrade").await.unwrap());
    assert!(store.save(key().as_str(), Item::Sync, pack(&state), None).await.unwrap());
    assert!(store.save(key().as_str(), Item::Health, pack(&log), None).await.unwrap());
    let after = refresher(&sim, store.clone());
    assert!(
        matches!(after.sync_state().await.unwrap(), Some((s, read)) if s.version() == Some(1) && read == state)
    );

    let figures = refresh(&after).await;
    exact(&sim, &after).await.unwrap();
    let (stamp, upgraded) = after.sync_state().await.unwrap().unwrap();
    assert_eq!(upgraded.last.mode, Some(Mode::Incremental), "no sync from scratch");
    assert_eq!(upgraded.last.histories, 0, "no history read again");
    assert!(figures.calls < 60, "{} calls: a steady refresh's", figures.calls);
    assert_eq!((stamp.version(), stamp.base.manifest.is_some()), (Some(2), true), "now in parts");
    assert_eq!(upgraded.campaigns.len(), state.campaigns.len());
    let (base, history) = after.health().await.unwrap().unwrap();
    assert!(base.manifest.is_some(), "the history is in parts too");
    assert!(!log.history.mailboxes.is_empty());
    for (id, points) in &log.history.mailboxes {
        let kept: Vec<_> = history.history.mailboxes[id].iter().map(|p| p.date).collect();
        assert!(points.iter().all(|p| kept.contains(&p.date)), "{id}: every day kept");
    }
    sim.burst(60);
    refresh(&after).await;
    exact(&sim, &after).await.unwrap();
}

/// DynamoDB holds at most 400 KB an item: a campaign whose sets compress to more than that is
/// stored in chunks, and a first sync's month of ledger ids in hourly parts, not in the head.
/// Round trip through DynamoDB Local; an incremental save after writes only what changed.
#[tokio::test]
async fn a_campaign_larger_than_an_item_and_a_months_ids_round_trip_through_dynamodb() {
    use lemdash_shared::sync::{SyncState, stored};
    let local = DynamoLocal::start().expect("DynamoDB Local starts");
    let store = snapshot_store(&local.endpoint, "state-large").await.unwrap();
    // 40,000 leads of 21 random characters: about 500 KB compressed.
    let mut x: u64 = 11;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alphabet: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    let mut lead = || -> String {
        let id: String = (0..17).map(|_| alphabet[(next() % 62) as usize]).collect();
        format!("lea_{id}")
    };
    let leads: Vec<String> = (0..40_000).map(|_| lead()).collect();
    let sets: lemdash_shared::sync::Tracked = serde_json::from_value(serde_json::json!({
        "sent": {"leads": leads.join(",")}, "opened": {"leads": leads[..10].join(",")}, "replied": {"leads": leads[0]}
    }))
    .unwrap();
    let mut state = SyncState::default();
    state.campaigns.insert("cam_AAAAAAAAAAAAAAAAA".into(), sets);
    // A first sync's month of ids: 30,000 activities over 30 days.
    let start: chrono::DateTime<chrono::Utc> = "2026-10-01T00:00:00Z".parse().unwrap();
    for i in 0..30_000i64 {
        state.ledger.recent.insert(
            format!("act_{i:06}_{}", lead()),
            (start + chrono::Duration::seconds(i * 86)).timestamp(),
        );
    }
    let stamp = stored::save(&store, key().as_str(), &mut state, &Default::default(), false)
        .await
        .expect("every item under DynamoDB's limit")
        .expect("no other writer");
    let manifest = stamp.base.manifest.clone().unwrap();
    let set = manifest.iter().find(|(n, _)| n.starts_with("s#")).unwrap().1;
    println!(
        "sets: {} bytes in {} items; ids: {} hourly parts",
        set.bytes,
        set.chunks,
        manifest.keys().filter(|n| n.starts_with("r#")).count()
    );
    assert!(set.chunks >= 2, "{} bytes in {} item", set.bytes, set.chunks);
    assert!(manifest.keys().filter(|n| n.starts_with("r#")).count() > 100);
    let (again, back) = stored::load(&store, key().as_str()).await.unwrap().unwrap();
    assert_eq!(back, state);
    assert_eq!(again, stamp);
    // A new id of an hour already stored: that hour's part and the head, nothing else.
    state.ledger.recent.insert("act_new".into(), start.timestamp());
    let before = store.units();
    stored::save(&store, key().as_str(), &mut state, &again, false).await.unwrap().unwrap();
    let after = store.units();
    let items = after["sync"].writes - before["sync"].writes;
    assert_eq!(items, 2, "the hour's ids and the head");
    assert_eq!(stored::load(&store, key().as_str()).await.unwrap().unwrap().1, state);
}
