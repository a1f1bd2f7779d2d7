//! Documents stored as a small head and named parts, each written only when its content
//! changed: the sync state and the history and alerts ([`super::Item::Sync`],
//! [`super::Item::Health`]).
//!
//! A part is immutable once written: its item is keyed by its name and a hash of its content, so
//! that a new content is a new item and a reader can never see a part change under it. The head
//! names the parts that make up the document (its [`Manifest`]) and is written last, under the
//! version condition every store write has: until the head is written, the parts written before
//! it are invisible, and a writer killed between two writes leaves the previous document whole.
//! A part no head names any more is left to the table's TTL, which removes it for free (deletes
//! are billed by the size of what they remove).
//!
//! A part lives [`part_keep_secs`] after it is written; one that is still named when it gets
//! within a week of that is written again, so that a part that never changes never expires
//! under a head that needs it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Item, SnapshotError, compress};

/// A part as a head names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRef {
    /// The first 8 bytes of the SHA-256 of its content, in hex: also the last field of its key.
    pub hash: String,
    /// When it was written (epoch s, wall clock: what the TTL counts from).
    pub written: u64,
    /// Its stored (compressed) size.
    pub bytes: usize,
    /// The items it is stored in (a part larger than [`CHUNK_BYTES`] takes several: DynamoDB
    /// holds at most 400 KB an item).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub chunks: usize,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// The most compressed bytes of a part in one item (DynamoDB's limit is 400 KB, key included).
pub const CHUNK_BYTES: usize = 350_000;

impl PartRef {
    /// The sort keys of its items, in order: `<board>#<name>#<hash>`, then `…#<k>` for the
    /// further chunks.
    pub fn sort_keys(&self, board: Item, name: &str) -> Vec<String> {
        let first = sort_key(board, name, &self.hash);
        (0..self.chunks.max(1)).map(|k| if k == 0 { first.clone() } else { format!("{first}#{k}") }).collect()
    }
}

/// The parts of a document, by name.
pub type Manifest = BTreeMap<String, PartRef>;

/// What a document's writer gives for one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// The content (JSON, uncompressed): written when it differs from the stored part's.
    Write(Vec<u8>),
    /// The stored part stands as it is (the writer did not even encode it).
    Keep,
}

/// A document as stored in parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layered {
    pub version: u64,
    /// The head's own document, compressed.
    pub head: Vec<u8>,
    pub manifest: Manifest,
    /// Every part the manifest names, compressed.
    pub parts: BTreeMap<String, Vec<u8>>,
}

/// What a store holds for a board kept in parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    /// The previous layout: one compressed document (read once, on the upgrade).
    Whole(super::Stored),
    Layered(Layered),
}

/// Where a save starts from: the version and manifest it read (`None`: nothing stored; a
/// manifest of `None` with a version: a whole document of the previous layout).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Base {
    pub version: Option<u64>,
    pub manifest: Option<Manifest>,
}

impl Base {
    pub fn of(document: &Document) -> Self {
        match document {
            Document::Whole(stored) => Self { version: Some(stored.version), manifest: None },
            Document::Layered(l) => Self { version: Some(l.version), manifest: Some(l.manifest.clone()) },
        }
    }

    /// The parts this base names that are near their expiry at `now` (epoch s): a writer must
    /// give their content again instead of keeping them.
    pub fn due(&self, board: Item, now: u64) -> std::collections::BTreeSet<String> {
        let named = self.manifest.iter().flatten();
        named.filter(|(_, r)| due(board, r, now)).map(|(n, _)| n.clone()).collect()
    }

    /// The base after a save of `manifest` from this one succeeded.
    pub fn after(&self, manifest: Manifest) -> Self {
        Self { version: Some(self.version.map_or(1, |v| v + 1)), manifest: Some(manifest) }
    }
}

/// One part item to put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put {
    pub name: String,
    /// Its sort key: `<board>#<name>#<hash>`, and `#<k>` for a further chunk.
    pub sort_key: String,
    /// Which chunk of the part this is (0 for the first; most parts have one).
    pub chunk: usize,
    pub bytes: Vec<u8>,
}

/// What a save writes: the part items, then the head naming `manifest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub puts: Vec<Put>,
    pub manifest: Manifest,
}

/// How long a part item of `board` lives after it is written: the history and alerts 100 days
/// (a day's point is kept 90), the sync state's 35 (its ledger days are kept 30).
pub fn part_keep_secs(board: Item) -> u64 {
    let days = match board {
        Item::Health => 100,
        _ => 35,
    };
    days * 24 * 3600
}

/// A part still named this close to its expiry is written again.
pub const REWRITE_BEFORE_EXPIRY_SECS: u64 = 7 * 24 * 3600;

/// Whether a part written at `r.written` is within [`REWRITE_BEFORE_EXPIRY_SECS`] of its expiry.
fn due(board: Item, r: &PartRef, now: u64) -> bool {
    r.written + part_keep_secs(board) <= now + REWRITE_BEFORE_EXPIRY_SECS
}

/// Now on the wall clock, in epoch seconds: what DynamoDB's TTL compares.
pub fn wall_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn hash(content: &[u8]) -> String {
    Sha256::digest(content)[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The sort key of a part.
pub fn sort_key(board: Item, name: &str, hash: &str) -> String {
    format!("{}#{name}#{hash}", board.as_str())
}

/// Encodes a part's content.
pub fn content<T: Serialize>(value: &T) -> Part {
    Part::Write(serde_json::to_vec(value).expect("stored documents serialize"))
}

/// Decides what a save of `parts` over `base` writes at `now` (epoch s): every part whose
/// content differs from the stored one's, or that is near its expiry. Parts not given are no
/// longer named. Keeping a part the base does not name is a writer's error.
pub fn plan(
    board: Item,
    base: &Base,
    parts: BTreeMap<String, Part>,
    now: u64,
) -> Result<Plan, SnapshotError> {
    let previous = base.manifest.as_ref();
    let mut out = Plan { puts: vec![], manifest: Manifest::new() };
    for (name, part) in parts {
        let stored = previous.and_then(|m| m.get(&name));
        let content = match part {
            // A writer keeps only what [`Base::due`] does not name: kept as it is.
            Part::Keep => {
                let stored = stored.ok_or_else(|| {
                    SnapshotError::Corrupt(format!("part {name} is kept but was never stored"))
                })?;
                out.manifest.insert(name, stored.clone());
                continue;
            }
            Part::Write(content) => content,
        };
        let hash = hash(&content);
        if let Some(stored) = stored.filter(|s| s.hash == hash && !due(board, s, now)) {
            out.manifest.insert(name, stored.clone());
            continue;
        }
        let bytes = compress(&content);
        let chunks = bytes.len().div_ceil(CHUNK_BYTES).max(1);
        let part = PartRef { hash, written: now, bytes: bytes.len(), chunks };
        for (chunk, (sort_key, piece)) in
            part.sort_keys(board, &name).into_iter().zip(bytes.chunks(CHUNK_BYTES)).enumerate()
        {
            out.puts.push(Put { sort_key, name: name.clone(), chunk, bytes: piece.to_vec() });
        }
        out.manifest.insert(name, part);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(items: &[(&str, Part)]) -> BTreeMap<String, Part> {
        items.iter().map(|(n, p)| (n.to_string(), p.clone())).collect()
    }

    fn json(s: &str) -> Part {
        Part::Write(s.as_bytes().to_vec())
    }

    #[test]
    fn only_changed_parts_are_written_and_unnamed_ones_are_dropped() {
        let first = plan(Item::Sync, &Base::default(), parts(&[("a", json("[1]")), ("b", json("[2]"))]), 100)
            .unwrap();
        assert_eq!(first.puts.len(), 2);
        assert!(first.puts[0].sort_key.starts_with("sync#a#") && first.puts[0].sort_key.len() == 7 + 16);
        let base = Base::default().after(first.manifest.clone());
        let next =
            plan(Item::Sync, &base, parts(&[("a", json("[1]")), ("b", json("[3]")), ("c", Part::Keep)]), 200);
        assert!(matches!(next, Err(SnapshotError::Corrupt(_))), "c was never stored");
        let next = plan(Item::Sync, &base, parts(&[("a", json("[1]")), ("b", json("[3]"))]), 200).unwrap();
        assert_eq!(next.puts.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["b"], "a is unchanged");
        assert_eq!(next.manifest["a"], first.manifest["a"]);
        assert_eq!(next.manifest["b"].written, 200);
        let dropped = plan(Item::Sync, &base, parts(&[("a", Part::Keep)]), 300).unwrap();
        assert!(dropped.puts.is_empty() && dropped.manifest.len() == 1);
    }

    #[test]
    fn a_part_larger_than_an_item_is_written_in_chunks() {
        // Incompressible content: 800,000 bytes compressed, three items.
        let mut x: u64 = 7;
        let noise: Vec<u64> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            })
            .collect();
        let big = content(&noise);
        let first =
            plan(Item::Sync, &Base::default(), parts(&[("s#big", big), ("a", json("[1]"))]), 0).unwrap();
        let r = &first.manifest["s#big"];
        assert_eq!(r.chunks, r.bytes.div_ceil(CHUNK_BYTES));
        assert!(r.chunks >= 3, "{} bytes", r.bytes);
        let big: Vec<&Put> = first.puts.iter().filter(|p| p.name == "s#big").collect();
        assert_eq!(
            big.iter().map(|p| p.sort_key.clone()).collect::<Vec<_>>(),
            r.sort_keys(Item::Sync, "s#big")
        );
        assert!(big.iter().all(|p| p.bytes.len() <= CHUNK_BYTES));
        assert_eq!(big.iter().map(|p| p.bytes.len()).sum::<usize>(), r.bytes);
        assert_eq!(first.manifest["a"].chunks, 1);
        assert!(!serde_json::to_string(&first.manifest["a"]).unwrap().contains("chunks"), "one is not said");
    }

    #[test]
    fn a_part_near_its_expiry_is_written_again() {
        let first = plan(Item::Sync, &Base::default(), parts(&[("a", json("[1]"))]), 0).unwrap();
        let base = Base::default().after(first.manifest);
        let late = part_keep_secs(Item::Sync) - REWRITE_BEFORE_EXPIRY_SECS + 1;
        let again = plan(Item::Sync, &base, parts(&[("a", json("[1]"))]), late).unwrap();
        assert_eq!(again.puts.len(), 1, "same content, but about to expire");
        assert_eq!(base.due(Item::Sync, late), ["a".to_owned()].into());
        assert!(base.due(Item::Sync, late - 2).is_empty());
        let early = plan(Item::Sync, &base, parts(&[("a", json("[1]"))]), late - 2).unwrap();
        assert!(early.puts.is_empty());
    }
}
