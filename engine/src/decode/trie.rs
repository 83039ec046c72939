//! The decoder's specification and its path trie: the configured value paths, one node per
//! object level, with the keys of each level and what a key leads to.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------------------
// Specification and compiled decoder
// ---------------------------------------------------------------------------

/// Where each field of an event lives, as paths of object keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderSpec {
    /// Path of the model name; `None`: the engine assigns every event to its
    /// default model.
    pub model: Option<Vec<String>>,
    /// Path of the model version.
    pub model_version: Option<Vec<String>>,
    /// Path of the prediction id (a string, or an integer rendered as text).
    pub prediction_id: Option<Vec<String>>,
    /// Path of the event time: an RFC 3339 string or epoch milliseconds.
    pub timestamp: Option<Vec<String>>,
    /// Every value path any model needs (features, prediction, score,
    /// label…); slot `i` is `slots[i]`.
    pub slots: Vec<Vec<String>>,
    /// Events longer than this many bytes are refused before parsing.
    pub max_event_bytes: usize,
}

/// A field of a [`DecoderSpec`], to say which path an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecField {
    /// [`DecoderSpec::model`].
    Model,
    /// [`DecoderSpec::model_version`].
    ModelVersion,
    /// [`DecoderSpec::prediction_id`].
    PredictionId,
    /// [`DecoderSpec::timestamp`].
    Timestamp,
    /// `DecoderSpec::slots[index]`.
    Slot {
        /// The slot id.
        index: usize,
    },
}

impl fmt::Display for SpecField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecField::Model => f.write_str("model"),
            SpecField::ModelVersion => f.write_str("model_version"),
            SpecField::PredictionId => f.write_str("prediction_id"),
            SpecField::Timestamp => f.write_str("timestamp"),
            SpecField::Slot { index } => write!(f, "slot {index}"),
        }
    }
}

/// A [`DecoderSpec`] that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeSpecError {
    /// A path with no key in it.
    #[error("the {field} path is empty")]
    EmptyPath {
        /// The field whose path is empty.
        field: SpecField,
    },
    /// Two fields read the same path.
    #[error("the {second} path {path:?} is already the {first} path")]
    DuplicatePath {
        /// The field that claimed the path first.
        first: SpecField,
        /// The field that claimed it again.
        second: SpecField,
        /// The path both claim.
        path: Vec<String>,
    },
    /// `max_event_bytes` is zero.
    #[error("max_event_bytes must be at least 1")]
    ZeroMaxEventBytes,
    /// More slots than slot ids (2^31 - 1).
    #[error("{count} slots is more than the decoder supports")]
    TooManySlots {
        /// The number of slots asked for.
        count: usize,
    },
}

/// What a trie leaf fills in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Model,
    ModelVersion,
    PredictionId,
    Timestamp,
    Slot(u32),
}

impl Target {
    pub(super) fn spec_field(self) -> SpecField {
        match self {
            Target::Model => SpecField::Model,
            Target::ModelVersion => SpecField::ModelVersion,
            Target::PredictionId => SpecField::PredictionId,
            Target::Timestamp => SpecField::Timestamp,
            Target::Slot(i) => SpecField::Slot { index: i as usize },
        }
    }
}

/// What one key of one trie level leads to: a leaf, a deeper level, or both
/// (when one path is a prefix of another).
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) leaf: Option<Target>,
    pub(super) child: Option<u32>,
}

/// One level of the trie: an open-addressing hash table of its keys (load
/// factor at most 1/2, linear probing). `entries[i]` belongs to `keys[i]`.
///
/// Key lookup was the largest cost of decoding while it was a binary search
/// over strings (a `memcmp` call per probe); hashing the key's length and
/// first and last 8 bytes finds it in about one probe, and compares integers.
#[derive(Debug)]
pub(super) struct Node {
    /// `keys` index + 1; 0 is an empty bucket. Length: a power of two,
    /// `1 << (64 - shift)`.
    pub(super) table: Vec<u32>,
    pub(super) shift: u32,
    pub(super) keys: Vec<Key>,
    pub(super) entries: Vec<Entry>,
    /// Where this level's key predictions start in [`DecodedEvent::hints`]:
    /// one per key, plus one for the object's start.
    pub(super) hint_base: usize,
    /// The dot-separated path of this level's object (empty for the event
    /// itself), for [`DecodeError::NotAnObjectAt`].
    pub(super) path: Arc<str>,
}

/// A key and its fingerprint. For keys of at most 16 bytes the fingerprint
/// determines the key (`head` and `tail` cover it, overlapping when short).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fingerprint {
    pub(super) len: usize,
    pub(super) head: u64,
    pub(super) tail: u64,
}

impl Fingerprint {
    #[inline]
    pub(super) fn of(bytes: &[u8]) -> Fingerprint {
        // Two loads that together cover the key (overlapping when it is
        // shorter than twice their width): with the length, they determine
        // the key, so up to 16 bytes the fingerprint is exact. Most feature
        // names are under 8 bytes; no per-byte loop for them.
        let (head, tail) = if let (Some(h), Some(t)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
            (u64::from_le_bytes(*h), u64::from_le_bytes(*t))
        } else if let (Some(h), Some(t)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
            (u64::from(u32::from_le_bytes(*h)), u64::from(u32::from_le_bytes(*t)))
        } else if let (Some(h), Some(t)) = (bytes.first_chunk::<2>(), bytes.last_chunk::<2>()) {
            (u64::from(u16::from_le_bytes(*h)), u64::from(u16::from_le_bytes(*t)))
        } else {
            (bytes.first().map_or(0, |&b| u64::from(b)), 0)
        };
        Fingerprint { len: bytes.len(), head, tail }
    }

    /// Fibonacci hashing: the top `64 - shift` bits of the product.
    #[inline]
    pub(super) fn bucket(self, shift: u32) -> usize {
        let mixed = (self.head ^ self.tail.rotate_left(29) ^ self.len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> shift) as usize
    }
}

#[derive(Debug)]
pub(super) struct Key {
    pub(super) fingerprint: Fingerprint,
    pub(super) text: Box<str>,
    /// The key as it appears in compact JSON, between its opening quote and
    /// its value: `text":` (when that is at most 16 bytes and `text` needs no
    /// escape).
    pub(super) quoted: Option<QuotedKey>,
    /// The same with the comma and opening quote before it, `,"text":`: the
    /// bytes right after the previous member's value in compact JSON.
    pub(super) after_comma: Option<QuotedKey>,
}

/// Bytes that start a compactly written key (`text":`, or `,"text":`) as the
/// first bytes of a little-endian 16-byte word.
#[derive(Debug, Clone, Copy)]
pub(super) struct QuotedKey {
    pub(super) bytes: u128,
    pub(super) mask: u128,
    pub(super) len: usize,
}

impl QuotedKey {
    /// `prefix`, `text`, `":`, when that fits 16 bytes and `text` is written
    /// without escapes.
    pub(super) fn of(prefix: &[u8], text: &str) -> Option<QuotedKey> {
        let len = prefix.len() + text.len() + 2;
        if len > 16 || text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
            return None;
        }
        let mut word = [0u8; 16];
        let mut written = prefix.to_vec();
        written.extend_from_slice(text.as_bytes());
        written.extend_from_slice(b"\":");
        word[..len].copy_from_slice(&written);
        let mask = if len == 16 { u128::MAX } else { (1u128 << (8 * len)) - 1 };
        Some(QuotedKey { bytes: u128::from_le_bytes(word), mask, len })
    }

    /// Whether `chunk` (the next 16 bytes of input) starts with these bytes.
    #[inline]
    pub(super) fn starts(&self, chunk: &[u8; 16]) -> bool {
        u128::from_le_bytes(*chunk) & self.mask == self.bytes
    }
}

/// Where a predicted key is matched: right after its opening quote, or
/// right after the previous member's value (comma and quote included).
#[derive(Debug, Clone, Copy)]
pub(super) enum Follows {
    Quote,
    Value,
}

impl Key {
    /// Whether `bytes` (whose fingerprint is `fingerprint`) is this key.
    #[inline]
    pub(super) fn is(&self, fingerprint: Fingerprint, bytes: &[u8]) -> bool {
        self.fingerprint == fingerprint && (bytes.len() <= 16 || self.text.as_bytes() == bytes)
    }
}

impl Default for Node {
    fn default() -> Self {
        Node { table: vec![0; 2], shift: 63, keys: Vec::new(), entries: Vec::new(), hint_base: 0, path: Arc::from("") }
    }
}

impl Node {
    /// Hot path: one hash probe (rarely more) per key of the input object.
    #[inline]
    pub(super) fn find(&self, bytes: &[u8]) -> Option<usize> {
        self.find_by(Fingerprint::of(bytes), bytes)
    }

    /// [`Node::find`] with the key's fingerprint already taken.
    #[inline]
    pub(super) fn find_by(&self, fingerprint: Fingerprint, bytes: &[u8]) -> Option<usize> {
        let mask = self.table.len() - 1;
        let mut bucket = fingerprint.bucket(self.shift);
        // Terminates: at least half of the buckets are empty.
        loop {
            let slot = *self.table.get(bucket)?;
            let index = slot.checked_sub(1)? as usize;
            if self.keys.get(index)?.is(fingerprint, bytes) {
                return Some(index);
            }
            bucket = (bucket + 1) & mask;
        }
    }

    /// Build time only.
    pub(super) fn find_or_insert(&mut self, key: &str) -> usize {
        if let Some(index) = self.find(key.as_bytes()) {
            return index;
        }
        let index = self.keys.len();
        self.keys.push(Key {
            fingerprint: Fingerprint::of(key.as_bytes()),
            text: key.into(),
            quoted: QuotedKey::of(b"", key),
            after_comma: QuotedKey::of(b",\"", key),
        });
        self.entries.push(Entry { leaf: None, child: None });
        if 2 * self.keys.len() > self.table.len() {
            self.table = vec![0; 2 * self.table.len()];
            self.shift -= 1;
            for i in 0..self.keys.len() {
                self.place(i);
            }
        } else {
            self.place(index);
        }
        index
    }

    pub(super) fn place(&mut self, index: usize) {
        let mask = self.table.len() - 1;
        let mut bucket = self.keys[index].fingerprint.bucket(self.shift);
        while self.table[bucket] != 0 {
            bucket = (bucket + 1) & mask;
        }
        // Fewer keys than slots, and slots fit in u32 (checked in `new`).
        self.table[bucket] = index as u32 + 1;
    }
}

pub(super) fn insert(nodes: &mut Vec<Node>, path: &[String], target: Target) -> Result<(), DecodeSpecError> {
    let Some((last, parents)) = path.split_last() else {
        return Err(DecodeSpecError::EmptyPath { field: target.spec_field() });
    };
    let mut node = 0;
    for segment in parents {
        let i = nodes[node].find_or_insert(segment);
        node = match nodes[node].entries[i].child {
            Some(child) => child as usize,
            None => {
                let child = nodes.len();
                let path = match &*nodes[node].path {
                    "" => segment.clone(),
                    parent => format!("{parent}.{segment}"),
                };
                nodes.push(Node { path: Arc::from(path), ..Node::default() });
                // Fewer nodes than path segments, which fit in memory.
                nodes[node].entries[i].child = Some(child as u32);
                child
            }
        };
    }
    let i = nodes[node].find_or_insert(last);
    let entry = &mut nodes[node].entries[i];
    if let Some(first) = entry.leaf {
        return Err(DecodeSpecError::DuplicatePath { first: first.spec_field(), second: target.spec_field(), path: path.to_vec() });
    }
    entry.leaf = Some(target);
    Ok(())
}
