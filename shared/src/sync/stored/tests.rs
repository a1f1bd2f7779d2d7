use super::*;
use crate::activity::Seen;
use crate::lemlist::Activity;
use crate::snapshot::MemorySnapshots;
use crate::snapshot::store::Stored;
use crate::sync::{Folded, PerStream};

const KEY: &str = "lemlist#test";

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    format!("2026-11-{day:02}T{hour:02}:00:00Z").parse().unwrap()
}

fn cid(n: u32) -> String {
    format!("cam_{n:017}")
}

fn sent(id: &str, campaign: u32, lead: &str, when: DateTime<Utc>) -> Activity {
    let mut a = Activity::sample(id, "emailsSent", Some(lead), Some(&cid(campaign)));
    a.created_at = when.to_rfc3339();
    a.send_user_mailbox_id = Some("usm_1".into());
    a
}

fn detail(n: u32) -> CampaignDetail {
    serde_json::from_value(serde_json::json!({"_id": cid(n), "name": format!("C{n}"), "senders": []}))
        .unwrap()
}

/// A steady state: campaigns 1 and 2 tracked with a few leads each, 3 being read, details and
/// lead figures of all three, one user, a mark of each kind, a month of counts.
fn state() -> SyncState {
    let mut s = SyncState {
        watermarks: Feed::ALL.iter().map(|f| (*f, at(20, 12))).collect(),
        full_at: Some(at(1, 0)),
        ..SyncState::default()
    };
    for n in 1..=2 {
        let leads: Vec<Activity> =
            (0..50).map(|i| sent(&format!("h{n}{i}"), n, &format!("lea_{n}_{i}"), at(5, 1))).collect();
        s.campaigns.insert(cid(n), PerStream { sent: Seen::of(&leads), ..PerStream::default() });
    }
    s.partial.insert(cid(3), Partial { until: at(20, 12), streams: PerStream::default() });
    for n in 1..=3 {
        s.details.insert(
            cid(n),
            CachedDetail { detail: detail(n), read_at: at(20, 12), status: Some("running".into()) },
        );
    }
    for n in 1..=3 {
        let figures = crate::dashboard::leads::LeadFigures {
            live: n.into(),
            companies: 1,
            sendable: true,
            states_absent: None,
        };
        s.leads.insert(cid(n), CachedLeads { figures, read_at: at(20, n), status: Some("running".into()) });
    }
    let user = crate::lemlist::User { id: "usr_1".into(), email: Some("a@x.io".into()), mailboxes: vec![] };
    s.users.insert("usr_1".into(), CachedUser { user, read_at: at(20, 11) });
    s.marks.campaign(&cid(2), at(20, 12), true);
    s.marks.user("usr_1", at(20, 12));
    for day in 1..=20 {
        s.fold(Feed::Sent, &sent(&format!("l{day}"), 1, "lea_1_0", at(day, 9)));
    }
    s.changes = Changes::default();
    s
}

async fn saved(store: &MemorySnapshots, state: &mut SyncState, stamp: &Stamp) -> Stamp {
    save(store, KEY, state, stamp, false).await.unwrap().expect("no other writer")
}

async fn loaded(store: &MemorySnapshots) -> (Stamp, SyncState) {
    load(store, KEY).await.unwrap().expect("a state")
}

/// The parts the next save writes, by name.
fn written(state: &SyncState, stamp: &Stamp) -> Vec<String> {
    let now = parts::wall_secs();
    let e = encode(state, stamp, now, false);
    parts::plan(Item::Sync, &stamp.base, e.parts, now).unwrap().puts.into_iter().map(|p| p.name).collect()
}

fn without_changes(mut s: SyncState) -> SyncState {
    s.changes = Changes::default();
    s
}

#[tokio::test]
async fn a_state_round_trips_through_its_parts() {
    let store = MemorySnapshots::default();
    let mut s = state();
    let stamp = saved(&store, &mut s, &Stamp::default()).await;
    let (again, back) = loaded(&store).await;
    assert_eq!(back, s);
    assert_eq!(again, stamp);
    assert_eq!(stamp.version(), Some(1));
    let names: Vec<&String> = stamp.base.manifest.as_ref().unwrap().keys().collect();
    assert_eq!(
        names.len(),
        2 + 1 + 3 + 3 + 1 + 20,
        "two sets, one history being read, three details, three lead figures, a user, 20 days"
    );
    // A state replaced as a whole writes its sets even when nothing says they changed.
    let replaced = encode(&back, &again, parts::wall_secs(), true);
    let sets = replaced.parts.iter().filter(|(n, p)| n.starts_with("s#") && matches!(p, Part::Write(_)));
    assert_eq!(sets.count(), 2);
}

#[tokio::test]
async fn one_activity_folded_writes_its_campaigns_delta_and_its_day_and_nothing_else() {
    let store = MemorySnapshots::default();
    let mut s = state();
    saved(&store, &mut s, &Stamp::default()).await;
    let (stamp, mut s) = loaded(&store).await;
    // A steady refresh reads every running campaign's details again: unchanged, nothing to write.
    for c in s.details.values_mut() {
        c.read_at = at(20, 13);
    }
    for l in s.leads.values_mut() {
        l.read_at = at(20, 13);
    }
    let folded = s.fold(Feed::Sent, &sent("new", 2, "lea_new", at(20, 12)));
    assert_eq!(folded, Folded { campaign: Some(cid(2)), day: Some(at(20, 0).date_naive()) });
    assert_eq!(written(&s, &stamp), ["d#00000000", "l#2026-11-20"]);
    let before = store.units()["sync"].write_units;
    let stamp = saved(&store, &mut s, &stamp).await;
    let units = store.units()["sync"].write_units - before;
    assert_eq!(units, 3.0, "the delta, the day and the head: a unit each");
    let (_, back) = loaded(&store).await;
    assert_eq!(back, without_changes(s.clone()));
    assert_eq!(back.campaigns[&cid(2)].sent.leads(), 51);
    assert_eq!(back.details[&cid(1)].read_at, at(20, 13), "when details were read is in the head");

    // Folding the same record again changes nothing; one of a campaign not tracked counts
    // the day only.
    assert_eq!(s.fold(Feed::Sent, &sent("new", 2, "lea_new", at(20, 12))), Folded::default());
    let other = s.fold(Feed::Sent, &sent("x", 9, "lea_x", at(20, 12)));
    assert_eq!(other, Folded { campaign: None, day: Some(at(20, 0).date_naive()) });
    assert_eq!(written(&s, &stamp), ["l#2026-11-20"]);
}

#[tokio::test]
async fn deltas_are_compacted_into_the_sets_they_name() {
    let store = MemorySnapshots::default();
    let mut s = state();
    let mut stamp = saved(&store, &mut s, &Stamp::default()).await;
    for i in 0..MAX_DELTAS {
        s.fold(Feed::Sent, &sent(&format!("n{i}"), 1, &format!("lea_n{i}"), at(20, 12)));
        stamp = saved(&store, &mut s, &stamp).await;
    }
    assert_eq!(stamp.deltas().count(), MAX_DELTAS);
    assert_eq!(loaded(&store).await.1, s);
    s.fold(Feed::Sent, &sent("last", 2, "lea_last", at(20, 12)));
    let names = written(&s, &stamp);
    assert_eq!(names, ["l#2026-11-20".into(), name("s", cid(1)), name("s", cid(2))], "both sets, whole");
    let stamp = saved(&store, &mut s, &stamp).await;
    assert_eq!(stamp.deltas().count(), 0);
    let (_, back) = loaded(&store).await;
    assert_eq!(
        (back.campaigns[&cid(1)].sent.leads(), back.campaigns[&cid(2)].sent.leads()),
        (50 + MAX_DELTAS, 51)
    );
    assert_eq!(back, s);
}

#[tokio::test]
async fn a_campaign_read_again_from_scratch_drops_its_old_deltas() {
    let store = MemorySnapshots::default();
    let mut s = state();
    let stamp = saved(&store, &mut s, &Stamp::default()).await;
    s.fold(Feed::Sent, &sent("gone", 1, "lea_gone", at(20, 12)));
    let stamp = saved(&store, &mut s, &stamp).await;
    // Campaign 1's sets are replaced, as a re-sync's history read to the end replaces them.
    s.campaigns.insert(cid(1), PerStream::default());
    s.changes.renewed.insert(cid(1));
    saved(&store, &mut s, &stamp).await;
    let (stamp, back) = loaded(&store).await;
    assert_eq!(back.campaigns[&cid(1)].sent.leads(), 0, "the delta's lead is not applied again");
    assert_eq!(stamp.deltas().count(), 0);
}

#[tokio::test]
async fn a_vanished_campaign_and_its_parts_go_and_a_lost_race_leaves_the_state_whole() {
    let store = MemorySnapshots::default();
    let mut s = state();
    let stamp = saved(&store, &mut s, &Stamp::default()).await;
    let mut other = s.clone();
    s.campaigns.remove(&cid(2));
    s.details.remove(&cid(2));
    let newer = saved(&store, &mut s, &stamp).await;
    let manifest = newer.base.manifest.as_ref().unwrap();
    assert!(!manifest.contains_key(&name("s", cid(2))) && !manifest.contains_key(&name("c", cid(2))));
    // A writer that read the first version loses: what is stored stays the second.
    other.fold(Feed::Sent, &sent("late", 1, "lea_late", at(20, 12)));
    assert_eq!(save(&store, KEY, &mut other, &stamp, false).await.unwrap(), None);
    assert!(!other.changes.added.is_empty(), "kept for a save that succeeds");
    assert_eq!(loaded(&store).await.1, s);
}

#[tokio::test]
async fn a_state_of_the_previous_layout_is_read_and_rewritten_in_parts() {
    let store = MemorySnapshots::default();
    let s = state();
    assert!(store.save(KEY, Item::Sync, pack(&s), None).await.unwrap());
    let (stamp, mut back) = loaded(&store).await;
    assert_eq!(back, s);
    assert_eq!((stamp.version(), stamp.base.manifest.is_none()), (Some(1), true));
    let all = written(&back, &stamp).len();
    assert_eq!(all, 2 + 1 + 3 + 3 + 1 + 20, "every part");
    saved(&store, &mut back, &stamp).await;
    let (stamp, again) = loaded(&store).await;
    assert_eq!((again, stamp.version()), (s, Some(2)));
    assert_eq!(store.load(KEY, Item::Sync).await.unwrap(), None::<Stored>, "the whole document is gone");
}

#[tokio::test]
async fn a_months_ids_go_into_hourly_parts_and_the_head_stays_small() {
    let store = MemorySnapshots::default();
    let mut s = state();
    // A first sync's month: 12,000 activities the ledger keeps the ids of, over 10 days.
    for i in 0..12_000u32 {
        s.fold(Feed::Opened, &sent(&format!("o{i:05}"), 1, "lea_1_0", at(1 + (i / 24) % 10, i % 24)));
    }
    let stamp = saved(&store, &mut s, &Stamp::default()).await;
    let manifest = stamp.base.manifest.clone().unwrap();
    let hours = manifest.keys().filter(|n| n.starts_with("r#")).count();
    assert_eq!(hours, 240 + 10, "ten days of 24 hours, and the fixture's ten later days (at 9 h)");
    let head = encode(&s, &stamp, parts::wall_secs(), false).head;
    assert!(head.len() < 30_000, "the head holds no id: {} bytes", head.len());
    let (_, back) = loaded(&store).await;
    assert_eq!(back.ledger.recent.len(), 12_020);
    assert_eq!(back, without_changes(s.clone()));

    // Once the overlap is all that is kept, the ids are back in the head and no hour is named.
    s.ledger.forget(at(20, 11), at(20, 0).date_naive());
    let stamp = saved(&store, &mut s, &stamp).await;
    assert!(!stamp.base.manifest.as_ref().unwrap().keys().any(|n| n.starts_with("r#")));
    assert_eq!(loaded(&store).await.1, without_changes(s));
}
