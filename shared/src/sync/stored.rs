//! The sync state as stored: a small head and parts ([`crate::snapshot::parts`]), so that a
//! refresh writes what changed, not the team's megabyte.
//!
//! Parts, by name:
//! - `s#<campaign>`: a tracked campaign's sets as of their last full write;
//! - `d#<n>`: a delta, one per save that found new leads in tracked campaigns: those leads, by
//!   campaign and stream. Deltas are read in order on top of the sets; once there are
//!   [`MAX_DELTAS`] of them, or [`MAX_DELTA_BYTES`], a save compacts them: it writes the sets of
//!   the campaigns they name again, whole, and names no delta any more;
//! - `p#<campaign>`: a history being read (first sync, or a campaign that started running);
//! - `c#<campaign>`: campaign details as last read (when they were read is in the head, so that
//!   reading unchanged details changes nothing stored);
//! - `e#<campaign>`: a running campaign's lead figures as last read, and `u#<user>` a team
//!   member's mailboxes (when, in the head, for the same reason);
//! - `l#<day>`: one UTC day of the ledger's counts, by source: a refresh writes today's (and a
//!   day the overlap reached back to), never the month;
//! - `r#<hour>`: when the ledger keeps more than [`HEAD_IDS`] ids (of activities a later read
//!   may show again: a first sync keeps those of the month, which no single item could hold),
//!   those of one UTC hour of `createdAt`.
//!
//! The head holds the rest: watermarks, feed spans, the progress of a first sync, the last
//! refresh, when each campaign's details and lead figures and each user were read, what events
//! marked to read again, and the ledger's ids when they are few (a
//! steady refresh keeps those of the overlap: a few hundred).
//!
//! A state saved by the previous layout (one document) is read as it is; the first save after
//! writes every part, and the upgrade is done: no sync from scratch.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{
    CachedDetail, CachedLeads, CachedUser, Changes, FeedResume, LastRefresh, Marks, Partial, Progress,
    SyncState, Tracked,
};
use crate::activity::Feed;
use crate::activity::ledger::{Counts, Ledger};
use crate::dashboard::leads::LeadFigures;
use crate::lemlist::{CampaignDetail, User};
use crate::snapshot::parts::{self, Base, Document, Part, content};
use crate::snapshot::{Item, SnapshotError, SnapshotStore, pack, unpack};

/// The most ledger ids the head holds (about 30 KB compressed); more go into hourly parts.
pub const HEAD_IDS: usize = 2_000;

/// A save compacts the deltas once there are this many.
pub const MAX_DELTAS: usize = 24;
/// Or once they take this many compressed bytes.
pub const MAX_DELTA_BYTES: usize = 24 * 1024;

/// When a campaign's details were read, and its status then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Read {
    at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
}

/// The head's own document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Head {
    watermarks: BTreeMap<Feed, DateTime<Utc>>,
    #[serde(default)]
    feed_spans: BTreeMap<Feed, u32>,
    #[serde(default)]
    feed_resume: BTreeMap<Feed, FeedResume>,
    full_at: Option<DateTime<Utc>>,
    #[serde(default)]
    progress: Option<Progress>,
    #[serde(default)]
    last: LastRefresh,
    #[serde(default)]
    read: BTreeMap<String, Read>,
    /// When each campaign's lead figures were read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    leads_read: BTreeMap<String, Read>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    users_read: BTreeMap<String, DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "is_default")]
    marks: Marks,
    #[serde(default)]
    undated: Counts,
    /// The ledger's ids, when there are at most [`HEAD_IDS`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    recent: BTreeMap<String, i64>,
    /// The number the next delta takes.
    #[serde(default)]
    next_delta: u64,
    #[serde(default, skip_serializing_if = "is_default")]
    hooks: crate::hooks::HooksState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    senders: Option<crate::health::performance::Senders>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// What a loaded state was read from: what its next save starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp {
    pub base: Base,
    next_delta: u64,
    /// The campaigns the stored deltas name.
    in_deltas: BTreeSet<String>,
}

impl Stamp {
    /// A save over a stored version that cannot be read: it writes every part.
    pub fn replacing(version: Option<u64>) -> Self {
        Self { base: Base { version, manifest: None }, ..Self::default() }
    }

    /// The stored version (what the API reports and tests compare).
    pub fn version(&self) -> Option<u64> {
        self.base.version
    }

    /// The stored size, compressed, of every part (the head aside).
    pub fn stored_bytes(&self) -> usize {
        self.base.manifest.iter().flatten().map(|(_, r)| r.bytes).sum()
    }

    fn deltas(&self) -> impl Iterator<Item = (&String, &parts::PartRef)> {
        self.base.manifest.iter().flatten().filter(|(n, _)| n.starts_with("d#"))
    }
}

fn name(prefix: &str, id: impl std::fmt::Display) -> String {
    format!("{prefix}#{id}")
}

/// Reads a stored state back; `None` when nothing is stored.
pub fn decode(document: Document) -> Result<(Stamp, SyncState), SnapshotError> {
    let layered = match document {
        Document::Whole(stored) => {
            let state: SyncState = unpack(&stored.bytes)?;
            let stamp =
                Stamp { base: Base { version: Some(stored.version), manifest: None }, ..Stamp::default() };
            return Ok((stamp, state));
        }
        Document::Layered(l) => l,
    };
    let head: Head = unpack(&layered.head)?;
    let read =
        Reads { details: head.read.clone(), leads: head.leads_read.clone(), users: head.users_read.clone() };
    let next_delta = head.next_delta;
    let mut state = head.into_state();
    let mut deltas = Vec::new();
    for (part, bytes) in &layered.parts {
        let Some((kind, id)) = part.split_once('#') else { continue };
        match kind {
            "d" => deltas
                .push((id.parse::<u64>().unwrap_or_default(), unpack::<BTreeMap<String, Tracked>>(bytes)?)),
            _ => read_part(&mut state, &read, part, kind, id, bytes)?,
        }
    }
    let in_deltas = apply_deltas(&mut state, deltas);
    let base = Base { version: Some(layered.version), manifest: Some(layered.manifest) };
    Ok((Stamp { base, next_delta, in_deltas }, state))
}

impl Head {
    /// The state the head describes, before its parts.
    fn into_state(self) -> SyncState {
        SyncState {
            watermarks: self.watermarks,
            feed_spans: self.feed_spans,
            feed_resume: self.feed_resume,
            full_at: self.full_at,
            progress: self.progress,
            last: self.last,
            hooks: self.hooks,
            senders: self.senders,
            marks: self.marks,
            ledger: Ledger { undated: self.undated, recent: self.recent, ..Ledger::default() },
            ..SyncState::default()
        }
    }

    /// The head of `state`, whose next delta takes `next_delta`.
    fn of(state: &SyncState, next_delta: u64) -> Self {
        Head {
            watermarks: state.watermarks.clone(),
            feed_spans: state.feed_spans.clone(),
            feed_resume: state.feed_resume.clone(),
            full_at: state.full_at,
            progress: state.progress.clone(),
            last: state.last.clone(),
            read: state
                .details
                .iter()
                .map(|(id, c)| (id.clone(), Read { at: c.read_at, status: c.status.clone() }))
                .collect(),
            leads_read: state
                .leads
                .iter()
                .map(|(id, c)| (id.clone(), Read { at: c.read_at, status: c.status.clone() }))
                .collect(),
            users_read: state.users.iter().map(|(id, c)| (id.clone(), c.read_at)).collect(),
            marks: state.marks.clone(),
            undated: state.ledger.undated,
            recent: if state.ledger.recent.len() <= HEAD_IDS {
                state.ledger.recent.clone()
            } else {
                BTreeMap::new()
            },
            next_delta,
            hooks: state.hooks.clone(),
            senders: state.senders.clone(),
        }
    }
}

/// When the cached parts were read, from the head.
struct Reads {
    details: BTreeMap<String, Read>,
    leads: BTreeMap<String, Read>,
    users: BTreeMap<String, DateTime<Utc>>,
}

fn read_at(read: &BTreeMap<String, Read>, id: &str) -> (DateTime<Utc>, Option<String>) {
    read.get(id).cloned().map_or((DateTime::<Utc>::UNIX_EPOCH, None), |r| (r.at, r.status))
}

/// One part other than a delta (`kind#id`) into `state`.
fn read_part(
    state: &mut SyncState,
    read: &Reads,
    part: &str,
    kind: &str,
    id: &str,
    bytes: &[u8],
) -> Result<(), SnapshotError> {
    match kind {
        "s" => drop(state.campaigns.insert(id.to_owned(), unpack::<Tracked>(bytes)?)),
        "p" => drop(state.partial.insert(id.to_owned(), unpack::<Partial>(bytes)?)),
        "c" => {
            let detail: CampaignDetail = unpack(bytes)?;
            let (read_at, status) = read_at(&read.details, id);
            state.details.insert(id.to_owned(), CachedDetail { detail, read_at, status });
        }
        "e" => {
            let figures: LeadFigures = unpack(bytes)?;
            let (read_at, status) = read_at(&read.leads, id);
            state.leads.insert(id.to_owned(), CachedLeads { figures, read_at, status });
        }
        "u" => {
            let user: User = unpack(bytes)?;
            let read_at = read.users.get(id).copied().unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
            state.users.insert(id.to_owned(), CachedUser { user, read_at });
        }
        "l" => {
            let day: NaiveDate = id.parse().map_err(|e| SnapshotError::Corrupt(format!("{part}: {e}")))?;
            for (source, counts) in unpack::<BTreeMap<String, [u32; 4]>>(bytes)? {
                state.ledger.days.entry(source).or_default().insert(day, counts);
            }
        }
        "r" => state.ledger.recent.extend(unpack::<BTreeMap<String, i64>>(bytes)?),
        _ => {}
    }
    Ok(())
}

/// The deltas, in order, on top of the sets of the campaigns still tracked; the campaigns they
/// name.
fn apply_deltas(
    state: &mut SyncState,
    mut deltas: Vec<(u64, BTreeMap<String, Tracked>)>,
) -> BTreeSet<String> {
    deltas.sort_by_key(|(n, _)| *n);
    let mut in_deltas = BTreeSet::new();
    for (_, delta) in deltas {
        for (id, sets) in delta {
            if let Some(tracked) = state.campaigns.get_mut(&id) {
                for stream in crate::activity::Stream::ALL {
                    tracked.get_mut(stream).merge(sets.get(stream).clone());
                }
                in_deltas.insert(id);
            }
        }
    }
    in_deltas
}

/// What a save writes: the head (compressed) and every part, written or kept.
pub struct Encoded {
    pub head: Vec<u8>,
    pub parts: BTreeMap<String, Part>,
    next_delta: u64,
    in_deltas: BTreeSet<String>,
}

/// The key's stored state; `None` when there is none.
pub async fn load(store: &dyn SnapshotStore, key: &str) -> Result<Option<(Stamp, SyncState)>, SnapshotError> {
    store.load_parts(key, Item::Sync).await?.map(decode).transpose()
}

/// Saves `state` over `stamp`: its new stamp, or `None` when another writer came first. The
/// changes it recorded are written, and forgotten; `whole` writes every set, changed or not.
pub async fn save(
    store: &dyn SnapshotStore,
    key: &str,
    state: &mut SyncState,
    stamp: &Stamp,
    whole: bool,
) -> Result<Option<Stamp>, SnapshotError> {
    let now = parts::wall_secs();
    let Encoded { head, parts: given, next_delta, in_deltas } = encode(state, stamp, now, whole);
    let plan = parts::plan(Item::Sync, &stamp.base, given, now)?;
    if !store.save_parts(key, Item::Sync, head, &plan, &stamp.base).await? {
        return Ok(None);
    }
    state.changes = Changes::default();
    Ok(Some(Stamp { base: stamp.base.after(plan.manifest), next_delta, in_deltas }))
}

/// Encodes `state` for a save over `stamp` at `now` (epoch s): only what changed is encoded, the
/// rest kept. `whole` writes every set whole (a state replaced as a whole).
pub fn encode(state: &SyncState, stamp: &Stamp, now: u64, whole: bool) -> Encoded {
    let (mut parts, next_delta, in_deltas) = set_parts(state, stamp, now, whole);
    for (id, partial) in &state.partial {
        parts.insert(name("p", id), content(partial));
    }
    for (id, cached) in &state.details {
        parts.insert(name("c", id), content(&cached.detail));
    }
    for (id, cached) in &state.leads {
        parts.insert(name("e", id), content(&cached.figures));
    }
    for (id, cached) in &state.users {
        parts.insert(name("u", id), content(&cached.user));
    }
    let mut days: BTreeMap<NaiveDate, BTreeMap<&str, [u32; 4]>> = BTreeMap::new();
    for (source, by_day) in &state.ledger.days {
        for (day, counts) in by_day {
            days.entry(*day).or_default().insert(source, *counts);
        }
    }
    for (day, counts) in &days {
        parts.insert(name("l", day), content(counts));
    }
    let mut hours: BTreeMap<String, BTreeMap<&str, i64>> = BTreeMap::new();
    for (id, at) in state.ledger.recent.iter().filter(|_| state.ledger.recent.len() > HEAD_IDS) {
        let hour = DateTime::<Utc>::from_timestamp(*at, 0).unwrap_or_default().format("%Y-%m-%dT%H");
        hours.entry(hour.to_string()).or_default().insert(id, *at);
    }
    for (hour, ids) in &hours {
        parts.insert(name("r", hour), content(ids));
    }
    Encoded { head: pack(&Head::of(state, next_delta)), parts, next_delta, in_deltas }
}

/// The sets' parts: each tracked campaign's sets, written when new, renewed, due or compacted,
/// else kept; and the deltas kept, with a new one for the leads new to kept sets. Also the
/// number the next delta takes and the campaigns the deltas name.
fn set_parts(
    state: &SyncState,
    stamp: &Stamp,
    now: u64,
    whole: bool,
) -> (BTreeMap<String, Part>, u64, BTreeSet<String>) {
    let due = stamp.base.due(Item::Sync, now);
    let named = |n: &str| stamp.base.manifest.as_ref().is_some_and(|m| m.contains_key(n));
    let delta_bytes: usize = stamp.deltas().map(|(_, r)| r.bytes).sum();
    let compact = whole
        || stamp.base.manifest.is_none()
        || stamp.deltas().count() >= MAX_DELTAS
        || delta_bytes >= MAX_DELTA_BYTES
        || stamp.deltas().any(|(n, _)| due.contains(n))
        // A campaign read again from scratch: the deltas' leads of its old sets must not apply.
        || state.changes.renewed.iter().any(|id| stamp.in_deltas.contains(id));
    let Changes { added, renewed } = &state.changes;
    let mut parts = BTreeMap::new();
    for (id, tracked) in &state.campaigns {
        let n = name("s", id);
        let write = whole
            || renewed.contains(id)
            || !named(&n)
            || due.contains(&n)
            || (compact && (stamp.in_deltas.contains(id) || added.contains_key(id)));
        parts.insert(n, if write { content(tracked) } else { Part::Keep });
    }
    let (mut next_delta, mut in_deltas) = (stamp.next_delta, BTreeSet::new());
    if !compact {
        for (n, _) in stamp.deltas() {
            parts.insert(n.clone(), Part::Keep);
        }
        in_deltas = stamp.in_deltas.clone();
        // Only leads of campaigns still tracked whose sets are not written whole now.
        let delta: BTreeMap<&String, &Tracked> =
            added.iter().filter(|(id, _)| matches!(parts.get(&name("s", id)), Some(Part::Keep))).collect();
        if !delta.is_empty() {
            in_deltas.extend(delta.keys().map(|id| (*id).clone()));
            parts.insert(name("d", format!("{next_delta:08}")), content(&delta));
            next_delta += 1;
        }
    }
    in_deltas.retain(|id| state.campaigns.contains_key(id));
    (parts, next_delta, in_deltas)
}

#[cfg(test)]
mod tests;
