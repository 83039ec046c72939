//! The JSON event decoder: one JSON object per message → a [`DecodedEvent`].
//!
//! **Hot path.** Decoding dominates the engine's cost, so this module is
//! written to allocate nothing per event in the steady state (the one
//! exception: an owned copy of each string with an escape sequence, whose
//! buffer is recycled from event to event):
//!
//! ```text
//! bytes ──(size check)──▶ one scan over the bytes: every value's grammar is
//!           checked, and at every object level each key is looked up in the
//!           trie compiled from the DecoderSpec; only values a path leads to
//!           are converted (numbers parsed, strings unescaped)
//!       ──▶ UTF-8 check (std, one pass), only when a string held a byte
//!           above 0x7F or the scan failed (JSON allows such bytes nowhere
//!           else; a configured key matched byte for byte is valid UTF-8)
//!       ──▶ DecodedEvent { model, model_version, prediction_id, timestamp_ms,
//!                          values[slot] }
//! ```
//!
//! Every field location is a path of object keys (`["features", "amount"]`,
//! flat `["amount"]`, or deeper). [`Decoder::new`] compiles all paths into a
//! trie of key segments; a value under a key that leads nowhere is checked
//! and stepped over without being converted. Key order in the input is
//! arbitrary; each level remembers which key followed which in the last
//! event, so a topic that keeps one key order finds most keys by one
//! comparison instead of a hash lookup. Strings are borrowed from the input
//! when they contain no escape sequence; escaped strings are copied into
//! owned strings that the [`DecodedEvent`] recycles from one event to the
//! next.
//!
//! Semantics worth knowing:
//! - **Strict JSON** (RFC 8259): what serde_json refuses is refused (tested
//!   against it on random token soup, mutated events and arbitrary bytes):
//!   trailing commas or characters, `NaN`/`Infinity`, leading zeros, raw
//!   control characters in strings, invalid escapes, lone surrogates,
//!   invalid UTF-8 anywhere (also in a skipped value).
//! - **Duplicate keys: the last occurrence wins**, per leaf path. An object
//!   key that repeats is walked twice, so leaves found only in the first
//!   occurrence keep their values (the occurrences are merged).
//! - A path may be a prefix of another (`["meta"]` and `["meta", "x"]`): an
//!   object found there is walked for the longer path and the shorter one
//!   reads [`SlotValue::Other`].
//! - JSON `null` in the model, model version, prediction id or timestamp is
//!   the same as the field being absent.
//! - An object on the way to a configured path (`features` for
//!   `features.amount`) that holds anything else — a string, number, boolean,
//!   array or `null` — refuses the event ([`DecodeError::NotAnObjectAt`],
//!   reason `wrong_type`): none of the fields below it can be read. Absent, it
//!   is fine (every field below is missing).
//! - Feature slots are not type-checked here: the engine decides per feature
//!   type from the [`SlotValue`].
//! - Integers become `f64` in [`SlotValue::Number`] (exact up to 2^53);
//!   integers beyond the 64-bit range are read as the nearest `f64`.
//! - Nesting deeper than [`MAX_DEPTH`] (128) levels anywhere in the event is
//!   refused ([`DecodeError::TooDeep`]) as soon as the scan reaches the
//!   129th level, so a hostile event costs at most one pass and the scan's
//!   recursion stays bounded.
//! - Numbers are correctly rounded: integers of up to 19 digits and decimals
//!   with at most 2^53 in the mantissa and a power of ten up to 10^22 are
//!   exact by construction (Clinger's fast path: one rounding of two exact
//!   values); every other number goes to the standard library's correctly
//!   rounded parser. Tested against it on 50 000 random decimals; `1e400`
//!   and `NaN` are malformed.
//! - Why our own scan: the decoder only needs the values a path leads to, so
//!   converting every number of the event (as a DOM or tape parser does) is
//!   wasted work; on the generated ~660-byte events this scan measured 7–9 %
//!   faster than simd-json's tape plus a walk over it, which in turn was a
//!   quarter faster than sonic-rs through a serde visitor (see
//!   benches/README.md).
//!
//! ```
//! use driftwatch_engine::decode::{DecodedEvent, Decoder, DecoderSpec, SlotValue};
//!
//! let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
//! let spec = DecoderSpec {
//!     model: Some(path(&["model"])),
//!     model_version: None,
//!     prediction_id: None,
//!     timestamp: Some(path(&["timestamp"])),
//!     slots: vec![path(&["features", "amount"]), path(&["score"])],
//!     max_event_bytes: 64 * 1024,
//! };
//! let decoder = Decoder::new(&spec)?;
//! let mut event = DecodedEvent::new();
//! let line = br#"{"features":{"amount":120.5},"model":"fraud","timestamp":1700000000123,"score":0.83}"#;
//! decoder.decode(line, &mut event)?;
//! assert_eq!(event.model.as_deref(), Some("fraud"));
//! assert_eq!(event.timestamp_ms, Some(1_700_000_000_123));
//! assert_eq!(event.values, [SlotValue::Number(120.5), SlotValue::Number(0.83)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;

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
enum Target {
    Model,
    ModelVersion,
    PredictionId,
    Timestamp,
    Slot(u32),
}

impl Target {
    fn spec_field(self) -> SpecField {
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
struct Entry {
    leaf: Option<Target>,
    child: Option<u32>,
}

/// One level of the trie: an open-addressing hash table of its keys (load
/// factor at most 1/2, linear probing). `entries[i]` belongs to `keys[i]`.
///
/// Key lookup was the largest cost of decoding while it was a binary search
/// over strings (a `memcmp` call per probe); hashing the key's length and
/// first and last 8 bytes finds it in about one probe, and compares integers.
#[derive(Debug)]
struct Node {
    /// `keys` index + 1; 0 is an empty bucket. Length: a power of two,
    /// `1 << (64 - shift)`.
    table: Vec<u32>,
    shift: u32,
    keys: Vec<Key>,
    entries: Vec<Entry>,
    /// Where this level's key predictions start in [`DecodedEvent::hints`]:
    /// one per key, plus one for the object's start.
    hint_base: usize,
    /// The dot-separated path of this level's object (empty for the event
    /// itself), for [`DecodeError::NotAnObjectAt`].
    path: Arc<str>,
}

/// A key and its fingerprint. For keys of at most 16 bytes the fingerprint
/// determines the key (`head` and `tail` cover it, overlapping when short).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: usize,
    head: u64,
    tail: u64,
}

impl Fingerprint {
    #[inline]
    fn of(bytes: &[u8]) -> Fingerprint {
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
    fn bucket(self, shift: u32) -> usize {
        let mixed = (self.head ^ self.tail.rotate_left(29) ^ self.len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> shift) as usize
    }
}

#[derive(Debug)]
struct Key {
    fingerprint: Fingerprint,
    text: Box<str>,
    /// The key as it appears in compact JSON, between its opening quote and
    /// its value: `text":` (when that is at most 16 bytes and `text` needs no
    /// escape).
    quoted: Option<QuotedKey>,
    /// The same with the comma and opening quote before it, `,"text":`: the
    /// bytes right after the previous member's value in compact JSON.
    after_comma: Option<QuotedKey>,
}

/// Bytes that start a compactly written key (`text":`, or `,"text":`) as the
/// first bytes of a little-endian 16-byte word.
#[derive(Debug, Clone, Copy)]
struct QuotedKey {
    bytes: u128,
    mask: u128,
    len: usize,
}

impl QuotedKey {
    /// `prefix`, `text`, `":`, when that fits 16 bytes and `text` is written
    /// without escapes.
    fn of(prefix: &[u8], text: &str) -> Option<QuotedKey> {
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
    fn starts(&self, chunk: &[u8; 16]) -> bool {
        u128::from_le_bytes(*chunk) & self.mask == self.bytes
    }
}

/// Where a predicted key is matched: right after its opening quote, or
/// right after the previous member's value (comma and quote included).
#[derive(Debug, Clone, Copy)]
enum Follows {
    Quote,
    Value,
}

impl Key {
    /// Whether `bytes` (whose fingerprint is `fingerprint`) is this key.
    #[inline]
    fn is(&self, fingerprint: Fingerprint, bytes: &[u8]) -> bool {
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
    fn find(&self, bytes: &[u8]) -> Option<usize> {
        self.find_by(Fingerprint::of(bytes), bytes)
    }

    /// [`Node::find`] with the key's fingerprint already taken.
    #[inline]
    fn find_by(&self, fingerprint: Fingerprint, bytes: &[u8]) -> Option<usize> {
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
    fn find_or_insert(&mut self, key: &str) -> usize {
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

    fn place(&mut self, index: usize) {
        let mask = self.table.len() - 1;
        let mut bucket = self.keys[index].fingerprint.bucket(self.shift);
        while self.table[bucket] != 0 {
            bucket = (bucket + 1) & mask;
        }
        // Fewer keys than slots, and slots fit in u32 (checked in `new`).
        self.table[bucket] = index as u32 + 1;
    }
}

/// A compiled [`DecoderSpec`]: immutable, cheap to share between shards.
#[derive(Debug)]
pub struct Decoder {
    /// `nodes[0]` is the top-level object.
    nodes: Vec<Node>,
    slot_count: usize,
    /// Key predictions an event needs (one per key of every level, plus one
    /// per level).
    hint_count: usize,
    max_event_bytes: usize,
}

impl Decoder {
    /// Compiles `spec`; empty or duplicate paths are refused.
    pub fn new(spec: &DecoderSpec) -> Result<Decoder, DecodeSpecError> {
        if spec.max_event_bytes == 0 {
            return Err(DecodeSpecError::ZeroMaxEventBytes);
        }
        let slot_count = spec.slots.len();
        // Slot ids and trie indices are u32 (half the range: keys of one
        // level are at most slots + 4, and the hash table stores index + 1).
        if slot_count > (u32::MAX / 2) as usize {
            return Err(DecodeSpecError::TooManySlots { count: slot_count });
        }

        let mut nodes = vec![Node::default()];
        let specials = [
            (Target::Model, &spec.model),
            (Target::ModelVersion, &spec.model_version),
            (Target::PredictionId, &spec.prediction_id),
            (Target::Timestamp, &spec.timestamp),
        ];
        for (target, path) in specials {
            if let Some(path) = path {
                insert(&mut nodes, path, target)?;
            }
        }
        for (index, path) in spec.slots.iter().enumerate() {
            // In range: checked above.
            insert(&mut nodes, path, Target::Slot(index as u32))?;
        }
        let mut hint_count = 0;
        for node in &mut nodes {
            node.hint_base = hint_count;
            hint_count += node.keys.len() + 1;
        }
        Ok(Decoder { nodes, slot_count, hint_count, max_event_bytes: spec.max_event_bytes })
    }

    /// The number of value slots (`DecodedEvent::values.len()` after a decode).
    pub fn slot_count(&self) -> usize {
        self.slot_count
    }

    /// The size limit events are checked against.
    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// Decodes one event into `out`.
    ///
    /// `out` is cleared first (also when an error is returned, so it never
    /// holds a partial event); reuse it across events: in the steady state
    /// nothing is allocated except for events with escaped strings (see the
    /// module docs). Hot path.
    pub fn decode<'a>(&self, bytes: &'a [u8], out: &mut DecodedEvent<'a>) -> Result<(), DecodeError> {
        out.reset(self.slot_count);
        if bytes.len() > self.max_event_bytes {
            return Err(DecodeError::Oversize { len: bytes.len(), max: self.max_event_bytes });
        }
        out.hints.resize(self.hint_count, 0);
        let mut cx = Cx { trie: &self.nodes, bytes, pos: 0, out, invalid: None, non_ascii: false };
        let scanned = cx.root();
        let (invalid, non_ascii) = (cx.invalid.take(), cx.non_ascii);
        // Invalid UTF-8 is reported first, wherever it is (also in a skipped
        // value). The scan lets only strings hold bytes above 0x7F (anywhere
        // else they are a syntax error), and every such byte either went
        // through `Cx::string`, which notes it, or was matched exactly against
        // a configured key (a `str`, so valid UTF-8): the whole event is
        // validated only after a noted byte or a failed scan.
        if non_ascii || scanned.is_err() {
            if let Err(source) = std::str::from_utf8(bytes) {
                out.reset(self.slot_count);
                return Err(DecodeError::InvalidUtf8 { valid_up_to: source.valid_up_to(), source });
            }
        }
        let result = match scanned {
            Ok(None) => invalid.map_or(Ok(()), Err),
            Ok(Some(found)) => Err(DecodeError::NotAnObject { found }),
            Err(Stop::TooDeep) => Err(DecodeError::TooDeep { limit: MAX_DEPTH }),
            Err(Stop::Syntax { at, kind }) => Err(leading_array(bytes).unwrap_or_else(|| syntax_error(bytes, at, kind))),
        };
        if result.is_err() {
            out.reset(self.slot_count);
        }
        result
    }
}

/// An event that starts as an array is refused for that, even when the array
/// is malformed too (it can never be an event).
fn leading_array(bytes: &[u8]) -> Option<DecodeError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    (*first == b'[').then_some(DecodeError::NotAnObject { found: JsonType::Array })
}

/// A payload-free [`DecodeError::MalformedJson`] for a syntax error at byte
/// `at`: its position as line and column, and its kind.
fn syntax_error(bytes: &[u8], at: usize, kind: &'static str) -> DecodeError {
    let at = at.min(bytes.len());
    let before = &bytes[..at];
    let line = 1 + memchr::memchr_iter(b'\n', before).count();
    let column = 1 + at - memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    DecodeError::MalformedJson { line, column, kind }
}

/// The deepest nesting of arrays and objects an event may have.
pub const MAX_DEPTH: usize = 128;

fn insert(nodes: &mut Vec<Node>, path: &[String], target: Target) -> Result<(), DecodeSpecError> {
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

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

/// The value found at a slot's path.
#[derive(Debug, Clone, PartialEq)]
pub enum SlotValue<'a> {
    /// The path is absent from the event.
    Missing,
    /// JSON `null`.
    Null,
    /// A JSON number (integers are converted to `f64`).
    Number(f64),
    /// A JSON string; borrowed from the input unless it had escapes.
    Text(Cow<'a, str>),
    /// A JSON boolean.
    Bool(bool),
    /// An array or an object where a scalar was expected.
    Other,
}

/// One decoded event. Create it once and pass it to every
/// [`Decoder::decode`] call: it keeps its buffers between events.
#[derive(Debug, Clone, Default)]
pub struct DecodedEvent<'a> {
    /// The model name (`None`: absent, `null`, or no model path configured).
    pub model: Option<Cow<'a, str>>,
    /// The model version.
    pub model_version: Option<Cow<'a, str>>,
    /// The prediction id (an integer id is rendered as decimal text).
    pub prediction_id: Option<Cow<'a, str>>,
    /// Event time in milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// One value per slot of the spec; [`SlotValue::Missing`] where absent.
    pub values: Vec<SlotValue<'a>>,
    /// Owned strings of earlier events, kept for their capacity. Bounded by
    /// the number of strings one event can own (slots + 3).
    spare: Vec<String>,
    /// Which key followed which in the last event, per trie level: `hints[
    /// node.hint_base + k + 1]` is 1 + the index of the key that came after key
    /// `k` (slot `hint_base` for the object's first key), 0 when unknown.
    /// Topics keep one key order, so most keys are found by comparing them
    /// with the predicted one instead of hashing. Only a guess: a prediction
    /// is used only when the key matches.
    hints: Vec<u32>,
}

impl<'a> DecodedEvent<'a> {
    /// An empty event, ready for [`Decoder::decode`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Clears the event and re-types it for input of another lifetime, keeping
    /// its allocations (for a caller whose input buffer does not outlive one
    /// batch).
    pub fn recycle<'b>(mut self) -> DecodedEvent<'b> {
        self.salvage();
        self.values.clear();
        DecodedEvent {
            model: None,
            model_version: None,
            prediction_id: None,
            timestamp_ms: None,
            // Empty, so the closure never runs; same layout, so std collects
            // in place and the allocation is kept.
            values: self.values.into_iter().map(|_| SlotValue::Missing).collect(),
            spare: self.spare,
            hints: self.hints,
        }
    }

    /// Moves every owned string into `spare` and sets every value to
    /// [`SlotValue::Missing`] (in place: one pass, no shrinking).
    fn salvage(&mut self) {
        let specials = [self.model.take(), self.model_version.take(), self.prediction_id.take()];
        for field in specials {
            if let Some(Cow::Owned(s)) = field {
                self.spare.push(s);
            }
        }
        for value in &mut self.values {
            if let SlotValue::Text(Cow::Owned(s)) = std::mem::replace(value, SlotValue::Missing) {
                self.spare.push(s);
            }
        }
        self.timestamp_ms = None;
    }

    /// Hot path: O(slots), no allocation once `values` has grown.
    fn reset(&mut self, slot_count: usize) {
        self.salvage();
        self.values.resize(slot_count, SlotValue::Missing);
    }

    /// An empty string, in a recycled buffer when one is available.
    fn spare_string(&mut self) -> String {
        let mut owned = self.spare.pop().unwrap_or_default();
        owned.clear();
        owned
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// The JSON type of a value, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JsonType {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl JsonType {
    /// The lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Bool => "boolean",
            JsonType::Number => "number",
            JsonType::String => "string",
            JsonType::Array => "array",
            JsonType::Object => "object",
        }
    }
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event field that must have a given type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventField {
    /// The model name (a string).
    Model,
    /// The model version (a string).
    ModelVersion,
    /// The prediction id (a string or an integer).
    PredictionId,
}

impl EventField {
    /// The field's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventField::Model => "model",
            EventField::ModelVersion => "model_version",
            EventField::PredictionId => "prediction_id",
        }
    }

    const fn expected(self) -> &'static str {
        match self {
            EventField::Model | EventField::ModelVersion => "a string",
            EventField::PredictionId => "a string or an integer",
        }
    }
}

impl fmt::Display for EventField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// A string that is not an RFC 3339 date-time with an offset.
    #[error("not an RFC 3339 date-time")]
    NotRfc3339 {
        /// chrono's reason (it never quotes the input).
        #[source]
        source: chrono::ParseError,
    },
    /// A number outside the range of `i64` milliseconds.
    #[error("epoch milliseconds out of range")]
    OutOfRange,
    /// Neither a string nor a number.
    #[error("expected an RFC 3339 string or epoch milliseconds, found {found}")]
    WrongType {
        /// What was there instead.
        found: JsonType,
    },
}

/// An event that cannot be decoded. Messages never quote the payload; see
/// [`DecodeError::reason`] for the metric label.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The event is larger than `max_event_bytes`; it was not parsed.
    #[error("event of {len} bytes is over the limit of {max} bytes")]
    Oversize {
        /// The event's size in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The event is not UTF-8.
    #[error("event is not valid UTF-8 (at byte {valid_up_to})")]
    InvalidUtf8 {
        /// Bytes before the first invalid sequence.
        valid_up_to: usize,
        /// The UTF-8 error.
        #[source]
        source: std::str::Utf8Error,
    },
    /// Arrays and objects nested deeper than [`MAX_DEPTH`] levels; refused
    /// by the parser's depth limit.
    #[error("JSON nested deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// A JSON syntax error, trailing characters or `NaN`/`Infinity`.
    #[error("malformed JSON at line {line}, column {column} ({kind})")]
    MalformedJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What kind of syntax error. The parser's own message is not kept:
        /// it quotes the input around the error, and error messages must
        /// never carry payload bytes (they reach logs and dead-letter
        /// headers).
        kind: &'static str,
    },
    /// The event is valid JSON but not an object.
    #[error("event is a JSON {found}, not an object")]
    NotAnObject {
        /// The top-level JSON type.
        found: JsonType,
    },
    /// The timestamp is present but unusable.
    #[error("bad timestamp")]
    BadTimestamp {
        /// Why.
        #[source]
        source: TimestampError,
    },
    /// The model, model version or prediction id has the wrong JSON type.
    #[error("the {field} field must be {}, found {found}", field.expected())]
    WrongType {
        /// The field.
        field: EventField,
        /// What was there instead.
        found: JsonType,
    },
    /// An object on the path to a configured field (`features` in
    /// `features.amount`) holds another JSON type, `null` included: none of
    /// the fields below it can be read.
    #[error("{path}: expected an object, found {found}")]
    NotAnObjectAt {
        /// The object's dot-separated path, as configured.
        path: Arc<str>,
        /// What was there instead.
        found: JsonType,
    },
}

impl DecodeError {
    /// The closed label for metrics.
    pub fn reason(&self) -> DecodeReason {
        match self {
            DecodeError::Oversize { .. } => DecodeReason::Oversize,
            DecodeError::InvalidUtf8 { .. } | DecodeError::MalformedJson { .. } | DecodeError::TooDeep { .. } => {
                DecodeReason::MalformedJson
            }
            DecodeError::NotAnObject { .. } => DecodeReason::NotAnObject,
            DecodeError::BadTimestamp { .. } => DecodeReason::BadTimestamp,
            DecodeError::WrongType { .. } | DecodeError::NotAnObjectAt { .. } => DecodeReason::WrongType,
        }
    }
}

/// Why an event was refused: a closed set, used as the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeReason {
    /// Over `max_event_bytes`.
    Oversize,
    /// Not JSON (syntax, trailing garbage, invalid UTF-8, NaN/Infinity).
    MalformedJson,
    /// JSON, but not an object.
    NotAnObject,
    /// A timestamp that is neither RFC 3339 nor a finite number.
    BadTimestamp,
    /// A model, model version or prediction id of the wrong type, or an
    /// object on a configured path that is not an object.
    WrongType,
}

impl DecodeReason {
    /// Every reason, to create metric series up front.
    pub const ALL: [DecodeReason; 5] = [
        DecodeReason::Oversize,
        DecodeReason::MalformedJson,
        DecodeReason::NotAnObject,
        DecodeReason::BadTimestamp,
        DecodeReason::WrongType,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            DecodeReason::Oversize => "oversize",
            DecodeReason::MalformedJson => "malformed_json",
            DecodeReason::NotAnObject => "not_an_object",
            DecodeReason::BadTimestamp => "bad_timestamp",
            DecodeReason::WrongType => "wrong_type",
        }
    }
}

impl fmt::Display for DecodeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------
// The scan (hot path: no allocation below this line except owned strings)
// ---------------------------------------------------------------------------

/// Where the scan stopped on input that is not JSON.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// A syntax error at byte `at`.
    Syntax { at: usize, kind: &'static str },
    /// Arrays and objects nested past [`MAX_DEPTH`].
    TooDeep,
}

const SYNTAX: &str = "syntax error";
const INVALID_VALUE: &str = "invalid value";
const END: &str = "unexpected end of input";

/// State of one scan: the event's bytes, the position and the event being
/// filled.
struct Cx<'n, 'a, 'o> {
    trie: &'n [Node],
    bytes: &'a [u8],
    pos: usize,
    out: &'o mut DecodedEvent<'a>,
    /// The first well-formed but unusable value (wrong type, bad timestamp):
    /// reported once the whole event has been scanned, so that malformed JSON
    /// later in the event takes precedence, as a parse-then-read decoder
    /// would report it.
    invalid: Option<DecodeError>,
    /// Whether a string held a byte above 0x7F (then the whole event's UTF-8
    /// is checked once the scan is done).
    non_ascii: bool,
}

/// One JSON value as the scan hands it over.
enum Val<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    /// A string without escapes, borrowed from the event.
    Borrowed(&'a str),
    /// An unescaped copy (in a recycled buffer).
    Owned(String),
    Array,
    Object,
}

impl Val<'_> {
    /// A number as a slot stores it (`None` for anything else).
    fn as_number(&self) -> Option<f64> {
        match *self {
            Val::I64(n) => Some(n as f64),
            Val::U64(n) => Some(n as f64),
            Val::F64(x) => Some(x),
            _ => None,
        }
    }

    fn json_type(&self) -> JsonType {
        match self {
            Val::Null => JsonType::Null,
            Val::Bool(_) => JsonType::Bool,
            Val::I64(_) | Val::U64(_) | Val::F64(_) => JsonType::Number,
            Val::Borrowed(_) | Val::Owned(_) => JsonType::String,
            Val::Array => JsonType::Array,
            Val::Object => JsonType::Object,
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of every byte of `w` (eight string bytes, little-endian) that
/// ends a run of plain string bytes: `"`, `\` or a control character (below
/// 0x20, not allowed raw in a JSON string). Only the lowest marked byte is
/// exact (a borrow only moves upwards, from a byte that is itself marked),
/// which is the one the scan uses.
#[inline]
fn string_stops(w: u64) -> u64 {
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let quote = zero(w ^ (ONES * u64::from(b'"')));
    let backslash = zero(w ^ (ONES * u64::from(b'\\')));
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    quote | backslash | control
}

/// Powers of ten up to 10^8, to shift a mantissa by a run of digits.
const POW10_U64: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// How many of the eight bytes of `values` (input bytes XOR `'0'`,
/// little-endian) are digits, counted from the first: a byte is a digit iff
/// it is at most 9 now. Per byte, `(b & 0x7f) + 0x76` sets the high bit iff
/// the low seven bits are 10 or more, and cannot carry into the next byte.
#[inline]
fn leading_digits(values: u64) -> usize {
    let non_digit = (((values & !HIGHS) + ONES * 0x76) | values) & HIGHS;
    (non_digit.trailing_zeros() / 8) as usize
}

/// The decimal value of the first `n` (1..=8) digit values of `values` (the
/// first byte is the most significant digit): the digits are moved to the
/// top so that the bytes below are leading zeros, then combined pairwise in
/// three multiply-and-add steps.
#[inline]
fn digits_value(values: u64, n: usize) -> u64 {
    let v = values << (8 * (8 - n));
    let v = (v.wrapping_mul(10) + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    (v.wrapping_mul(10_000) + (v >> 32)) & 0xFFFF_FFFF
}

/// Exact powers of ten (10^22 is the last one an f64 holds exactly).
const POW10: [f64; 23] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22];

/// Largest `k` with `5^k` below 2^63: the most fraction digits (net of the
/// exponent) [`divide_pow10`] takes.
const MAX_POW5: usize = 27;

/// `5^k` for `k` in `0..=MAX_POW5`.
const POW5: [u64; MAX_POW5 + 1] = {
    let mut table = [1u64; MAX_POW5 + 1];
    let mut k = 1;
    while k <= MAX_POW5 {
        table[k] = table[k - 1] * 5;
        k += 1;
    }
    table
};

/// `floor((2^128 - 1) / 5^k)`: multiplying by it and keeping the top 128
/// bits divides by `5^k` to within 2 below the exact quotient.
const POW5_RECIPROCAL: [u128; MAX_POW5 + 1] = {
    let mut table = [0u128; MAX_POW5 + 1];
    let mut k = 0;
    while k <= MAX_POW5 {
        table[k] = u128::MAX / POW5[k] as u128;
        k += 1;
    }
    table
};

/// `2^e` for an exponent of the normal f64 range.
#[inline]
fn pow2(e: i32) -> f64 {
    debug_assert!((-1022..=1023).contains(&e));
    f64::from_bits(((1023 + e) as u64) << 52)
}

/// `m / 10^k`, correctly rounded (to nearest, ties to even), for `m ≥ 1` and
/// `k` in `1..=MAX_POW5`, in integer arithmetic alone: the decimals past
/// Clinger's fast path (17 to 19 significant digits, as shortest round-trip
/// formatting writes most doubles) without a second pass over their text.
///
/// `m / 10^k = m / 5^k · 2^-k`. With `m` shifted up to a full 64 bits and 64
/// zero bits appended, `n = m·2^(64+lz)`, the quotient `q = ⌊n / 5^k⌋` has at
/// least 65 significant bits (`5^k < 2^63`) and the remainder says whether
/// anything was cut off. The top 64 bits of `q`, with every lower bit and the
/// remainder folded into the last one ("sticky"), round to the same 53 bits
/// as the exact quotient: the cut-off part only decides a tie, and a tie needs
/// it to be zero. Scaling the rounded value by a power of two is exact (it
/// stays far inside the normal range: `m / 10^k ≥ 10^-27`). The quotient
/// comes from a multiplication by a precomputed reciprocal; the exact
/// remainder is only needed next to a halfway point.
#[inline]
fn divide_pow10(m: u64, k: usize) -> f64 {
    debug_assert!(m != 0 && (1..=MAX_POW5).contains(&k));
    let d = u128::from(POW5[k]);
    let lz = m.leading_zeros();
    let m = m << lz;
    let n = u128::from(m) << 64;
    // ⌊m · r / 2^64⌋ = ⌊n · r / 2^128⌋, from the two 64 × 64-bit halves of
    // m · r; at most 2 below ⌊n / 5^k⌋ and never above it.
    let r = POW5_RECIPROCAL[k];
    let low = u128::from(m) * (r as u64 as u128);
    let high = u128::from(m) * (r >> 64);
    let mut q = high + (low >> 64);
    // q ≥ 2^64 (n ≥ 2^127, 5^k < 2^63) and q < 2^126: 1..=62 bits below the top 64.
    let mut cut = 64 - q.leading_zeros();
    let mut top = (q >> cut) as u64;
    // Almost always the rounding is plain without the remainder (a sticky
    // last bit rounds as the exact quotient does): the shortfall (at most 2,
    // at most one unit of the top 64 bits) can only matter next to a halfway
    // point, where the 11 bits the conversion drops read 0x3FF or 0x400.
    if matches!(top & 0x7FF, 0x3FF | 0x400) {
        let mut rem = n - q * d;
        while rem >= d {
            q += 1;
            rem -= d;
        }
        cut = 64 - q.leading_zeros();
        let sticky = q & ((1u128 << cut) - 1) != 0 || rem != 0;
        top = (q >> cut) as u64 | u64::from(sticky);
    } else {
        top |= 1;
    }
    // `u64 as f64` rounds to nearest, ties to even.
    (top as f64) * pow2(cut as i32 - 64 - lz as i32 - k as i32)
}

/// `mantissa · 10^scale` (a decimal of at most 19 digits), correctly rounded,
/// by exact arithmetic: Clinger's fast path (both operands exact, one
/// rounding) up to 2^53 in the mantissa and 10^±22 in the scale, else
/// [`divide_pow10`] for scales down to 10^-27, else a 128-bit product for
/// positive scales that fit. `None` beyond those (the caller parses the text).
#[inline]
fn decimal(mantissa: u64, scale: i64) -> Option<f64> {
    if (-22..0).contains(&scale) {
        Some(fraction_value(mantissa, scale.unsigned_abs() as usize))
    } else if mantissa <= 1 << 53 && (0..=22).contains(&scale) {
        // Both operands exact: one rounding, the correct one.
        Some(mantissa as f64 * POW10[scale as usize])
    } else if mantissa == 0 {
        Some(0.0)
    } else if (-(MAX_POW5 as i64)..0).contains(&scale) {
        Some(divide_pow10(mantissa, scale.unsigned_abs() as usize))
    } else {
        // An exact integer; `u128 as f64` rounds to nearest, ties to even.
        usize::try_from(scale).ok().and_then(|s| POW10_U128.get(s)).and_then(|&p| u128::from(mantissa).checked_mul(p)).map(|n| n as f64)
    }
}

/// `mantissa / 10^k` for `k` in `1..=22`, correctly rounded: Clinger's fast
/// path (both operands exact, one rounding) up to 2^53 in the mantissa, else
/// [`divide_pow10`]. The common decimal of both number paths.
#[inline(always)]
fn fraction_value(mantissa: u64, k: usize) -> f64 {
    if mantissa <= 1 << 53 {
        mantissa as f64 / POW10[k]
    } else {
        divide_pow10(mantissa, k)
    }
}

/// Powers of ten that fit 128 bits, for decimals with a positive scale.
const POW10_U128: [u128; 39] = {
    let mut table = [1u128; 39];
    let mut k = 1;
    while k < 39 {
        table[k] = table[k - 1] * 10;
        k += 1;
    }
    table
};

impl<'a> Cx<'_, 'a, '_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// A syntax error at the current position (the end of input has its own
    /// kind).
    fn unexpected(&self) -> Stop {
        let kind = if self.pos >= self.bytes.len() { END } else { SYNTAX };
        Stop::Syntax { at: self.pos, kind }
    }

    /// The whole event: `None` for an object (walked from trie level 0), the
    /// type of any other JSON value; anything but whitespace after it is an
    /// error.
    fn root(&mut self) -> Result<Option<JsonType>, Stop> {
        self.ws();
        let found = match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                self.object(Some(0), 1)?;
                None
            }
            _ => Some(self.value(None, true, 0)?.json_type()),
        };
        self.ws();
        if self.pos < self.bytes.len() {
            return Err(self.unexpected());
        }
        Ok(found)
    }

    /// The value at the current position. `level`: the trie level an object
    /// here is walked with (`None`: only checked); `want`: whether the caller
    /// uses a scalar (numbers are converted and strings unescaped only then).
    /// `depth`: the nesting of the enclosing array or object.
    #[inline(always)]
    fn value(&mut self, level: Option<u32>, want: bool, depth: usize) -> Result<Val<'a>, Stop> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                let (start, end, escaped) = self.string()?;
                Ok(if want { self.text_value(start, end, escaped) } else { Val::Null })
            }
            Some(b'-' | b'0'..=b'9') => self.number(want),
            Some(b'{') => {
                self.pos += 1;
                self.object(level, depth + 1)?;
                Ok(Val::Object)
            }
            Some(b'[') => {
                self.pos += 1;
                self.array(depth + 1)?;
                Ok(Val::Array)
            }
            Some(b't') => self.literal(b"true", Val::Bool(true)),
            Some(b'f') => self.literal(b"false", Val::Bool(false)),
            Some(b'n') => self.literal(b"null", Val::Null),
            _ => Err(self.unexpected()),
        }
    }

    fn literal(&mut self, word: &'static [u8], val: Val<'a>) -> Result<Val<'a>, Stop> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end) == Some(word) {
            self.pos = end;
            return Ok(val);
        }
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let kind = if word.starts_with(rest) { END } else { SYNTAX };
        Err(Stop::Syntax { at: self.pos, kind })
    }

    /// The entries of an object whose `{` was just read, each key looked up
    /// in trie level `level` (`None`: an object nothing is read from).
    fn object(&mut self, level: Option<u32>, depth: usize) -> Result<(), Stop> {
        if depth > MAX_DEPTH {
            return Err(Stop::TooDeep);
        }
        let trie = self.trie;
        let node = level.and_then(|l| trie.get(l as usize));
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        // The hint slot of the last known key (the object's start at first).
        let mut hint = node.map_or(0, |n| n.hint_base);
        let mut entry = self.key(node, &mut hint)?;
        loop {
            self.ws();
            match entry {
                // Most members: a number for a slot, stored without going
                // through `Val` and `fill`.
                Some(Entry { leaf: Some(Target::Slot(slot)), .. }) if matches!(self.peek(), Some(b'-' | b'0'..=b'9')) => {
                    let x = self.slot_number()?;
                    // Slot ids come from the spec the values were sized for.
                    if let Some(v) = self.out.values.get_mut(slot as usize) {
                        *v = SlotValue::Number(x);
                    }
                }
                Some(entry) => {
                    let first = self.peek();
                    let val = self.value(entry.child, entry.leaf.is_some(), depth)?;
                    match entry.leaf {
                        Some(target) => self.apply(target, val),
                        // Only on the way to deeper paths: it must be an object.
                        None if !matches!(val, Val::Object) => self.not_an_object(entry.child, first),
                        None => {}
                    }
                }
                None => {
                    self.value(None, false, depth)?;
                }
            }
            // Compact JSON in the usual key order: the comma and the next key
            // in one comparison.
            if let Some(next) = node.and_then(|node| self.expected_key(node, &mut hint, Follows::Value)) {
                entry = Some(next);
                continue;
            }
            if self.next_member(b'}')? {
                return Ok(());
            }
            entry = self.key(node, &mut hint)?;
        }
    }

    /// The key of an object member at the current position (after `{` or a
    /// comma and any whitespace), through its colon: its trie entry, if
    /// `node` has one for it.
    #[inline]
    fn key(&mut self, node: Option<&Node>, hint: &mut usize) -> Result<Option<Entry>, Stop> {
        if self.peek() != Some(b'"') {
            return Err(self.unexpected());
        }
        self.pos += 1;
        if let Some(entry) = node.and_then(|node| self.expected_key(node, hint, Follows::Quote)) {
            return Ok(Some(entry));
        }
        let (start, end, escaped) = self.string()?;
        let entry = match node {
            Some(node) => self.lookup(node, start, end, escaped, hint),
            None => None,
        };
        self.ws();
        if self.peek() != Some(b':') {
            return Err(self.unexpected());
        }
        self.pos += 1;
        Ok(entry)
    }

    /// After a member of an array or object: `true` at its closing bracket
    /// `close`, `false` after a comma (another member follows).
    #[inline]
    fn next_member(&mut self, close: u8) -> Result<bool, Stop> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.ws();
                Ok(false)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(self.unexpected()),
        }
    }

    /// The elements of an array whose `[` was just read (only checked: no
    /// path leads into an array).
    fn array(&mut self, depth: usize) -> Result<(), Stop> {
        if depth > MAX_DEPTH {
            return Err(Stop::TooDeep);
        }
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.value(None, false, depth)?;
            if self.next_member(b']')? {
                return Ok(());
            }
        }
    }

    /// `bytes[start..end]` as text (`None` if it is not UTF-8: only a range
    /// with a byte above 0x7F can fail, and such an event is refused once the
    /// scan is done).
    #[inline]
    fn str_at(&self, start: usize, end: usize) -> Option<&'a str> {
        std::str::from_utf8(self.bytes.get(start..end)?).ok()
    }

    /// The common case in one comparison: the key that followed the previous
    /// known key last time (`hint`) is next again, written compactly: `key":`
    /// right after the opening quote, or `,"key":` right after the previous
    /// value (`follows`). Then its entry, with the position after the colon
    /// and `hint` moved to it; else `None`, nothing moved.
    #[inline]
    fn expected_key(&mut self, node: &Node, hint: &mut usize, follows: Follows) -> Option<Entry> {
        let predicted = (*self.out.hints.get(*hint)? as usize).checked_sub(1)?;
        let key = node.keys.get(predicted)?;
        let written = match follows {
            Follows::Quote => key.quoted,
            Follows::Value => key.after_comma,
        }?;
        if !written.starts(self.bytes.get(self.pos..)?.first_chunk::<16>()?) {
            return None;
        }
        self.pos += written.len;
        *hint = node.hint_base + predicted + 1;
        node.entries.get(predicted).copied()
    }

    /// The trie entry of the key `bytes[start..end]`: first the key that
    /// followed the previous known key last time (`hint`), else by hash.
    /// Moves `hint` to this key's slot when the key is known.
    #[inline]
    fn lookup(&mut self, node: &Node, start: usize, end: usize, escaped: bool, hint: &mut usize) -> Option<Entry> {
        let raw = self.bytes.get(start..end)?;
        let index = if escaped {
            // Not UTF-8: the event is refused for it after the scan.
            let raw = self.str_at(start, end)?;
            let mut key = self.out.spare_string();
            unescape(raw, &mut key);
            let index = node.find(key.as_bytes());
            self.out.spare.push(key);
            index?
        } else {
            let bytes = raw;
            let fingerprint = Fingerprint::of(bytes);
            let predicted = self.out.hints.get(*hint).map_or(0, |&h| h as usize);
            match predicted.checked_sub(1).filter(|&k| node.keys.get(k).is_some_and(|key| key.is(fingerprint, bytes))) {
                Some(k) => k,
                None => {
                    let found = node.find_by(fingerprint, bytes)?;
                    if let Some(h) = self.out.hints.get_mut(*hint) {
                        // Fewer keys than u32 (checked in `Decoder::new`).
                        *h = found as u32 + 1;
                    }
                    found
                }
            }
        };
        *hint = node.hint_base + index + 1;
        node.entries.get(index).copied()
    }

    /// The string whose opening quote was just read: its raw content
    /// `start..end` and whether it has escapes (all checked: escapes are
    /// valid, surrogates paired, no raw control characters). Leaves the
    /// position after the closing quote.
    #[inline]
    fn string(&mut self) -> Result<(usize, usize, bool), Stop> {
        let start = self.pos;
        let mut escaped = false;
        loop {
            // Eight bytes at a time to the first quote, backslash or control
            // character (most keys and values end in the first eight).
            // Until one is seen, bytes above 0x7F stop the run too.
            let high = if self.non_ascii { 0 } else { HIGHS };
            while let Some(chunk) = self.bytes.get(self.pos..).and_then(<[u8]>::first_chunk::<8>) {
                let w = u64::from_le_bytes(*chunk);
                let stops = string_stops(w) | (w & high);
                if stops != 0 {
                    self.pos += (stops.trailing_zeros() / 8) as usize;
                    break;
                }
                self.pos += 8;
            }
            match self.peek() {
                Some(b'"') => {
                    let end = self.pos;
                    self.pos += 1;
                    return Ok((start, end, escaped));
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                Some(0..=0x1f) => return Err(Stop::Syntax { at: self.pos, kind: INVALID_VALUE }),
                Some(0x80..) => {
                    self.non_ascii = true;
                    self.pos += 1;
                }
                // Fewer than eight bytes left.
                Some(_) => self.pos += 1,
                None => return Err(self.unexpected()),
            }
        }
    }

    /// Checks the escape sequence at the current backslash and steps over it.
    fn escape(&mut self) -> Result<(), Stop> {
        let at = self.pos;
        let invalid = Stop::Syntax { at, kind: INVALID_VALUE };
        self.pos += 1;
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.pos += 1;
                Ok(())
            }
            Some(b'u') => {
                let unit = hex4(self.bytes, self.pos + 1).ok_or(invalid)?;
                self.pos += 5;
                match unit {
                    0xD800..=0xDBFF => {
                        // A high surrogate needs its low half next.
                        let low = match self.bytes.get(self.pos..self.pos + 2) {
                            Some(b"\\u") => hex4(self.bytes, self.pos + 2),
                            _ => None,
                        };
                        if !matches!(low, Some(0xDC00..=0xDFFF)) {
                            return Err(invalid);
                        }
                        self.pos += 6;
                        Ok(())
                    }
                    0xDC00..=0xDFFF => Err(invalid),
                    _ => Ok(()),
                }
            }
            None => Err(self.unexpected()),
            Some(_) => Err(invalid),
        }
    }

    /// A string value: borrowed when it has no escapes, else unescaped into
    /// a recycled buffer.
    #[inline]
    fn text_value(&mut self, start: usize, end: usize, escaped: bool) -> Val<'a> {
        // Not UTF-8 (only possible with a byte above 0x7F): the event is
        // refused for it after the scan, so the value is never used.
        let raw = self.str_at(start, end).unwrap_or_default();
        if !escaped {
            return Val::Borrowed(raw);
        }
        let mut owned = self.out.spare_string();
        unescape(raw, &mut owned);
        Val::Owned(owned)
    }

    /// The number at the current position. Its grammar is checked
    /// (`-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`); when `want`,
    /// it is converted: integers of up to 19 digits exactly, decimals of up
    /// to 2^53 in the mantissa and 10^±22 in the scale by one correctly
    /// rounded operation on two exact values (Clinger's fast path), other
    /// decimals of up to 19 digits by exact integer arithmetic
    /// ([`divide_pow10`] for scales down to 10^-27, a 128-bit product above
    /// 1), every other number by the standard library's correctly rounded
    /// parser.
    #[inline]
    fn number(&mut self, want: bool) -> Result<Val<'a>, Stop> {
        let start = self.pos;
        let invalid = Stop::Syntax { at: start, kind: INVALID_VALUE };
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        // Digits of the integer and fraction parts, as one integer (wraps
        // past 19 digits; only used up to 19).
        let mut mantissa = 0u64;
        let mut digits: usize;
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                digits = 1;
            }
            Some(b'1'..=b'9') => digits = self.digits(&mut mantissa),
            _ => return Err(invalid),
        }
        let integer_digits = digits as i64;
        let mut integer = true;
        let mut scale = 0i64;
        let mut explicit_exponent = 0i64;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            integer = false;
            let fraction = self.digits(&mut mantissa);
            if fraction == 0 {
                return Err(invalid);
            }
            digits += fraction;
            scale = -(fraction as i64);
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            integer = false;
            let sign = match self.peek() {
                Some(b'-') => {
                    self.pos += 1;
                    -1
                }
                Some(b'+') => {
                    self.pos += 1;
                    1
                }
                _ => 1,
            };
            let first = self.pos;
            let mut exponent = 0i64;
            while let Some(d @ b'0'..=b'9') = self.peek() {
                exponent = (exponent * 10 + i64::from(d - b'0')).min(1 << 40);
                self.pos += 1;
            }
            if self.pos == first {
                return Err(invalid);
            }
            explicit_exponent = sign * exponent;
            scale += explicit_exponent;
        }
        // A value nobody reads is still refused when it is beyond the f64
        // range (as any strict parser refuses it): below 10^300 it cannot be,
        // so only a number that large is converted to find out.
        if !want && integer_digits + explicit_exponent <= 300 {
            return Ok(Val::Null);
        }
        if digits <= 19 {
            if integer {
                return Ok(match (negative, i64::try_from(mantissa)) {
                    (false, Ok(n)) => Val::I64(n),
                    (false, Err(_)) => Val::U64(mantissa),
                    // `-0` is a float (negative zero), as serde_json reads it.
                    (true, Ok(0)) => Val::F64(-0.0),
                    (true, Ok(n)) => Val::I64(-n),
                    (true, Err(_)) if mantissa == 1 << 63 => Val::I64(i64::MIN),
                    (true, Err(_)) => Val::F64(-(mantissa as f64)),
                });
            }
            if let Some(x) = decimal(mantissa, scale) {
                return Ok(Val::F64(if negative { -x } else { x }));
            }
        }
        // The number's bytes passed its grammar: ASCII.
        let text = self.str_at(start, self.pos).ok_or(invalid)?;
        if integer {
            // 20 digits may still fit 64 bits.
            if let Ok(n) = text.parse::<i64>() {
                return Ok(Val::I64(n));
            }
            if let Ok(n) = text.parse::<u64>() {
                return Ok(Val::U64(n));
            }
        }
        let x: f64 = text.parse().map_err(|_| invalid)?;
        if !x.is_finite() {
            return Err(invalid);
        }
        Ok(Val::F64(x))
    }

    /// The number at the current position, for a slot (which reads every
    /// number as `f64`). The usual shape — no exponent, at most 19 digits —
    /// is converted here, without branching on the sign: Clinger's fast path
    /// up to 2^53 in the mantissa, else [`divide_pow10`]. Any other number
    /// (and any malformed one) goes through [`Cx::number`] from its start,
    /// which gives the same value: both round correctly, and a slot converts
    /// integers with the same single rounding.
    #[inline(always)]
    fn slot_number(&mut self) -> Result<f64, Stop> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        self.pos += usize::from(negative);
        let leading_zero = self.peek() == Some(b'0');
        let mut mantissa = 0u64;
        let integer_digits = self.digits(&mut mantissa);
        let mut fraction = 0;
        let dot = self.peek() == Some(b'.');
        if dot {
            self.pos += 1;
            fraction = self.digits(&mut mantissa);
        }
        let plain = integer_digits != 0
            && !(leading_zero && integer_digits > 1)
            && (fraction != 0 || !dot)
            && !matches!(self.peek(), Some(b'e' | b'E'))
            && integer_digits + fraction <= 19;
        if !plain {
            self.pos = start;
            let invalid = Stop::Syntax { at: start, kind: INVALID_VALUE };
            return self.number(true)?.as_number().ok_or(invalid);
        }
        // At most 19 digits: `fraction` is at most 19, inside both tables.
        let x = if fraction == 0 { mantissa as f64 } else { fraction_value(mantissa, fraction) };
        // `x` is not negative: the sign is one bit.
        Ok(f64::from_bits(x.to_bits() | (u64::from(negative) << 63)))
    }

    /// Steps over a run of ASCII digits, appending them to `mantissa`
    /// (wrapping: callers use it only up to 19 digits); returns how many there
    /// were. Eight bytes at a time: numbers are most of an event's bytes.
    #[inline]
    fn digits(&mut self, mantissa: &mut u64) -> usize {
        let start = self.pos;
        while let Some(chunk) = self.bytes.get(self.pos..).and_then(<[u8]>::first_chunk::<8>) {
            let values = u64::from_le_bytes(*chunk) ^ (ONES * u64::from(b'0'));
            let n = leading_digits(values);
            if n == 0 {
                return self.pos - start;
            }
            *mantissa = mantissa.wrapping_mul(POW10_U64[n]).wrapping_add(digits_value(values, n));
            self.pos += n;
            if n < 8 {
                return self.pos - start;
            }
        }
        while let Some(d @ b'0'..=b'9') = self.peek() {
            *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            self.pos += 1;
        }
        self.pos - start
    }

    /// Fills `target` from a well-formed value; the first unusable one is
    /// kept for the end of the scan.
    #[inline]
    fn apply(&mut self, target: Target, val: Val<'a>) {
        if self.invalid.is_some() {
            return;
        }
        if let Err(error) = self.fill(target, val) {
            self.invalid = Some(error);
        }
    }

    /// A value that is not an object where trie level `child` expects one
    /// (`first`: its first byte, which tells its type): kept like an
    /// unusable value. Rare, so out of line.
    #[cold]
    #[inline(never)]
    fn not_an_object(&mut self, child: Option<u32>, first: Option<u8>) {
        if self.invalid.is_some() {
            return;
        }
        let found = match first {
            Some(b'"') => JsonType::String,
            Some(b'[') => JsonType::Array,
            Some(b't' | b'f') => JsonType::Bool,
            Some(b'n') => JsonType::Null,
            _ => JsonType::Number,
        };
        let path = child.and_then(|c| self.trie.get(c as usize)).map_or_else(|| Arc::from(""), |n| Arc::clone(&n.path));
        self.invalid = Some(DecodeError::NotAnObjectAt { path, found });
    }

    #[inline]
    fn fill(&mut self, target: Target, val: Val<'a>) -> Result<(), DecodeError> {
        match target {
            Target::Slot(slot) => {
                let value = match val {
                    Val::Null => SlotValue::Null,
                    Val::Bool(b) => SlotValue::Bool(b),
                    Val::I64(n) => SlotValue::Number(n as f64),
                    Val::U64(n) => SlotValue::Number(n as f64),
                    Val::F64(x) => SlotValue::Number(x),
                    Val::Borrowed(s) => SlotValue::Text(Cow::Borrowed(s)),
                    Val::Owned(s) => SlotValue::Text(Cow::Owned(s)),
                    Val::Array | Val::Object => SlotValue::Other,
                };
                // Slot ids come from the spec the values were sized for.
                if let Some(v) = self.out.values.get_mut(slot as usize) {
                    *v = value;
                }
                Ok(())
            }
            Target::Model => self.text(EventField::Model, val).map(|v| self.out.model = v),
            Target::ModelVersion => self.text(EventField::ModelVersion, val).map(|v| self.out.model_version = v),
            Target::PredictionId => self.text(EventField::PredictionId, val).map(|v| self.out.prediction_id = v),
            Target::Timestamp => {
                let result = timestamp_ms(&val);
                if let Val::Owned(s) = val {
                    self.out.spare.push(s);
                }
                result.map(|v| self.out.timestamp_ms = v).map_err(|source| DecodeError::BadTimestamp { source })
            }
        }
    }

    /// A string-valued special field; `null` is absent.
    fn text(&mut self, field: EventField, val: Val<'a>) -> Result<Option<Cow<'a, str>>, DecodeError> {
        match val {
            Val::Null => Ok(None),
            Val::Borrowed(s) => Ok(Some(Cow::Borrowed(s))),
            Val::Owned(s) => Ok(Some(Cow::Owned(s))),
            Val::I64(n) if field == EventField::PredictionId => Ok(Some(Cow::Owned(self.integer(n)))),
            Val::U64(n) if field == EventField::PredictionId => Ok(Some(Cow::Owned(self.integer(n)))),
            other => Err(DecodeError::WrongType { field, found: other.json_type() }),
        }
    }

    fn integer(&mut self, n: impl fmt::Display) -> String {
        let mut s = self.out.spare_string();
        // Writing to a String cannot fail.
        let _ = write!(s, "{n}");
        s
    }
}

/// The four hex digits at `bytes[at..]` as a UTF-16 code unit.
fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    digits.iter().try_fold(0u32, |unit, &b| Some(unit * 16 + char::from(b).to_digit(16)?))
}

/// Appends the content of a checked raw string (escapes valid, surrogates
/// paired) to `out`.
fn unescape(raw: &str, out: &mut String) {
    let mut rest = raw;
    while let Some(i) = memchr::memchr(b'\\', rest.as_bytes()) {
        out.push_str(rest.get(..i).unwrap_or_default());
        let bytes = rest.as_bytes();
        let (c, len) = match bytes.get(i + 1) {
            Some(b'u') => {
                let unit = hex4(bytes, i + 2).unwrap_or(0xFFFD);
                if (0xD800..0xDC00).contains(&unit) {
                    let low = hex4(bytes, i + 8).unwrap_or(0xDC00);
                    (char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF)), 12)
                } else {
                    (char::from_u32(unit), 6)
                }
            }
            Some(b'b') => (Some('\u{8}'), 2),
            Some(b'f') => (Some('\u{c}'), 2),
            Some(b'n') => (Some('\n'), 2),
            Some(b'r') => (Some('\r'), 2),
            Some(b't') => (Some('\t'), 2),
            Some(&b) => (Some(char::from(b)), 2),
            None => (None, 1),
        };
        out.push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
        rest = rest.get(i + len..).unwrap_or_default();
    }
    out.push_str(rest);
}

/// Epoch milliseconds from an RFC 3339 string or a number; `null` is absent.
fn timestamp_ms(val: &Val<'_>) -> Result<Option<i64>, TimestampError> {
    // 2^63 as f64; every f64 in [-2^63, 2^63) floors into i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let rfc3339 = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s).map(|t| Some(t.timestamp_millis())).map_err(|source| TimestampError::NotRfc3339 { source })
    };
    match val {
        Val::Null => Ok(None),
        Val::Borrowed(s) => rfc3339(s),
        Val::Owned(s) => rfc3339(s),
        Val::I64(n) => Ok(Some(*n)),
        Val::U64(n) => i64::try_from(*n).map(Some).map_err(|_| TimestampError::OutOfRange),
        // Fractional milliseconds round down, like chrono's for RFC 3339.
        Val::F64(x) if x.is_finite() && (-LIMIT..LIMIT).contains(x) => Ok(Some(x.floor() as i64)),
        Val::F64(_) => Err(TimestampError::OutOfRange),
        Val::Bool(_) | Val::Array | Val::Object => Err(TimestampError::WrongType { found: val.json_type() }),
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(segments: &[&str]) -> Vec<String> {
        segments.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The default shape: features under "features", four specials at the top.
    fn default_spec() -> DecoderSpec {
        DecoderSpec {
            model: Some(p(&["model"])),
            model_version: Some(p(&["model_version"])),
            prediction_id: Some(p(&["prediction_id"])),
            timestamp: Some(p(&["timestamp"])),
            slots: vec![p(&["features", "amount"]), p(&["features", "country"]), p(&["prediction"]), p(&["score"])],
            max_event_bytes: 64 * 1024,
        }
    }

    const DEFAULT_EVENT: &str = r#"{"model":"fraud","model_version":"v3","prediction_id":"p-1","timestamp":"2026-11-23T08:00:00.123Z","features":{"amount":120.5,"country":"DE"},"prediction":1,"score":0.83}"#;

    /// 2026-11-23T08:00:00.123Z in epoch milliseconds.
    const T0: i64 = 1_795_420_800_123;

    fn decode_with<'a>(spec: &DecoderSpec, json: &'a str) -> Result<DecodedEvent<'a>, DecodeError> {
        let decoder = Decoder::new(spec).unwrap();
        let mut out = DecodedEvent::new();
        decoder.decode(json.as_bytes(), &mut out)?;
        assert_eq!(out.values.len(), decoder.slot_count());
        Ok(out)
    }

    fn reason(spec: &DecoderSpec, json: &str) -> DecodeReason {
        decode_with(spec, json).unwrap_err().reason()
    }

    /// Numbers are correctly rounded (the values below are ones serde_json's
    /// default parser gets one ulp wrong), integers
    /// stay exact, and a number beyond the f64 range is malformed.
    /// Random decimals of every shape parse to exactly what the standard
    /// library's (correctly rounded) parser gives.
    #[test]
    fn random_numbers_match_the_standard_parser() {
        use rand::{Rng, SeedableRng};
        let spec = default_spec();
        let mut rng = rand::rngs::StdRng::seed_from_u64(20261123);
        let decoder = Decoder::new(&spec).unwrap();
        let mut scratch = DecodedEvent::new();
        for i in 0..50_000 {
            let bits = rng.gen::<u64>() & 0x7fef_ffff_ffff_ffff;
            let text = match i % 4 {
                0 => format!("{}", f64::from_bits(bits)),
                1 => format!("{:e}", -f64::from_bits(bits)),
                2 => format!("{}e{}", rng.gen_range(0..10u64.pow(18)), rng.gen_range(-30..30)),
                _ => {
                    let digits: String = (0..rng.gen_range(1..40)).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect();
                    format!("0.{digits}")
                }
            };
            let expected: f64 = text.parse().unwrap();
            let json = format!(r#"{{"model":"m","features":{{"amount":{text}}}}}"#);
            let mut ev = std::mem::take(&mut scratch).recycle();
            decoder.decode(json.as_bytes(), &mut ev).unwrap();
            assert_eq!(ev.values[0], SlotValue::Number(expected), "{text}");
            scratch = ev.recycle();
        }
    }

    /// A slot's number is read by its own fast path for the usual shape and
    /// by the general one otherwise: both give the standard library's value,
    /// bit for bit (the sign of zero too), and refuse what JSON refuses, at
    /// the 19-digit boundary, with leading zeros, signs and exponents.
    #[test]
    fn slot_numbers_match_the_standard_parser() {
        use rand::{Rng, SeedableRng};
        let spec = default_spec();
        let check = |text: &str| {
            let json = format!(r#"{{"model":"m","features":{{"amount":{text}}}}}"#);
            let is_json_number = matches!(serde_json::from_str::<serde_json::Value>(text), Ok(serde_json::Value::Number(_)));
            match decode_with(&spec, &json) {
                Ok(ev) => {
                    assert!(is_json_number, "{text} is not a JSON number");
                    let expected: f64 = text.parse().unwrap();
                    match ev.values[0] {
                        SlotValue::Number(x) => assert_eq!(x.to_bits(), expected.to_bits(), "{text}"),
                        ref other => panic!("{text}: {other:?}"),
                    }
                }
                Err(e) => {
                    assert!(!is_json_number, "{text}: {e}");
                    assert_eq!(e.reason(), DecodeReason::MalformedJson, "{text}");
                }
            }
        };
        let fixed = [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "7",
            "-7",
            "01",
            "-01",
            "00.5",
            "1.",
            "-",
            "-.5",
            ".5",
            "+1",
            "1.5e3",
            "1E-2",
            "-1.5e+3",
            "1.5e",
            "1234567890123456789",
            "-1234567890123456789",
            "12345678901234567890",
            "-9223372036854775808",
            "9223372036854775807",
            "18446744073709551615",
            "18446744073709551616",
            "0.1234567890123456789",
            "0.123456789012345678",
            "123456789.0123456789",
            "9007199254740993.0",
            "-9007199254740993.5",
            "1.7976931348623157",
            "-0.000000000000000001",
            "0.0000000000000000001",
            "9999999999999999999",
            "-999999999.9999999999",
            "1.-5",
            "1..5",
            "--1",
            "-0.5.5",
        ];
        for text in fixed {
            check(text);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(20261201);
        for _ in 0..30_000 {
            let digit = |rng: &mut rand::rngs::StdRng| char::from(b'0' + rng.gen_range(0..10u8));
            let mut text = String::new();
            if rng.gen_bool(0.5) {
                text.push('-');
            }
            if rng.gen_bool(0.2) {
                text.push('0');
            } else {
                text.push(char::from(b'1' + rng.gen_range(0..9u8)));
                (0..rng.gen_range(0..12)).for_each(|_| text.push(digit(&mut rng)));
            }
            if rng.gen_bool(0.9) {
                text.push('.');
                (0..rng.gen_range(1..19)).for_each(|_| text.push(digit(&mut rng)));
            }
            check(&text);
        }
    }

    /// The whole event's UTF-8 is checked only when a string held a byte
    /// above 0x7F or the scan failed, and invalid UTF-8 is still reported
    /// before anything else, wherever it is: in a key, after a syntax error,
    /// after a wrong type, after valid non-ASCII text, after the object.
    #[test]
    fn utf8_is_checked_first_wherever_it_is() {
        let spec = default_spec();
        let decoder = Decoder::new(&spec).unwrap();
        let utf8_error = |bytes: &[u8]| {
            let mut out = DecodedEvent::new();
            match decoder.decode(bytes, &mut out) {
                Err(DecodeError::InvalidUtf8 { valid_up_to, .. }) => Some(valid_up_to),
                _ => None,
            }
        };
        // Long enough that the string scan reads these bytes eight at a time.
        assert_eq!(utf8_error(b"{\"\xff\":1,\"padding\":\"0123456789abcdef\"}"), Some(2));
        assert_eq!(utf8_error(b"{\"key\":\"0123\xff456789abcdef\"}"), Some(12));
        assert_eq!(utf8_error(b"{\"a\":1,,\"b\":\"\xff\"}"), Some(13));
        assert_eq!(utf8_error(b"{\"model\":1,\"x\":\"\xc3\"}"), Some(16));
        assert_eq!(utf8_error(b"{\"x\":\"K\xc3\xb6ln\",\"y\":\"\xe2\x82\"}"), Some(18));
        assert_eq!(utf8_error(b"{\"a\":1}\xff"), Some(7));
        assert_eq!(utf8_error(b"\"\xff\""), Some(1));
        // Valid non-ASCII text: read, and borrowed when it has no escape.
        let json = r#"{"model":"frâud","features":{"country":"Köln","amount":1.5}}"#;
        let ev = decode_with(&spec, json).unwrap();
        assert!(matches!(&ev.model, Some(Cow::Borrowed(m)) if *m == "frâud"), "{:?}", ev.model);
        assert_eq!(ev.values[1], text("Köln"));
        assert_eq!(ev.values[0], SlotValue::Number(1.5));
        // Non-ASCII outside a string is a syntax error, as before.
        assert_eq!(reason(&spec, r#"{"a":1}é"#), DecodeReason::MalformedJson);
        assert!(matches!(decode_with(&spec, r#"{"a":é}"#), Err(DecodeError::MalformedJson { .. })));
    }

    /// Strings without escapes are borrowed from the event itself, escaped
    /// ones are owned; integers past 64 bits read as the nearest f64; a
    /// malformed event that starts as an array is not an object; syntax errors
    /// keep their position.
    #[test]
    fn scan_borrows_owns_and_reports_positions() {
        let spec = default_spec();
        let json = r#"{"model":"fraud","features":{"country":"D\u00c9","amount":123456789012345678901234},"model_version":"\\\\"}"#;
        let ev = decode_with(&spec, json).unwrap();
        let inside = |s: &str| json.as_bytes().as_ptr_range().contains(&s.as_ptr());
        assert!(matches!(&ev.model, Some(Cow::Borrowed(m)) if *m == "fraud" && inside(m)));
        assert!(matches!(&ev.values[1], SlotValue::Text(Cow::Owned(c)) if c == "DÉ"));
        // Unescaped, two backslashes: the same bytes as the start of the raw
        // text, so either form is right; the content is what counts.
        assert_eq!(ev.model_version.as_deref(), Some("\\\\"));
        assert_eq!(ev.values[0], SlotValue::Number(1.2345678901234568e23));
        assert!(matches!(decode_with(&spec, "  [1,2").unwrap_err(), DecodeError::NotAnObject { found: JsonType::Array }));
        let err = decode_with(&spec, "{\"model\":\"m\",\n \"score\":tru}").unwrap_err();
        assert!(matches!(err, DecodeError::MalformedJson { line: 2, column: 10, .. }), "{err:?}");
        assert!(matches!(decode_with(&spec, r#"{"model":"m""#).unwrap_err(), DecodeError::MalformedJson { .. }));
        assert!(matches!(decode_with(&spec, "").unwrap_err(), DecodeError::MalformedJson { kind: "unexpected end of input", .. }));
    }

    /// The integer-only division by a power of ten against the standard
    /// parser, bit for bit: random mantissas of every length up to 19 digits
    /// at every scale it takes, the extremes, and exact ties (a double's
    /// mantissa plus one half ulp, written with few enough digits), which must
    /// round to even.
    #[test]
    fn division_by_powers_of_ten_is_correctly_rounded() {
        use rand::{Rng, SeedableRng};
        let check = |m: u64, k: usize| {
            let digits = m.to_string();
            let text = if digits.len() > k {
                format!("{}.{}", &digits[..digits.len() - k], &digits[digits.len() - k..])
            } else {
                format!("0.{}{digits}", "0".repeat(k - digits.len()))
            };
            let expected: f64 = text.parse().unwrap();
            assert_eq!(divide_pow10(m, k).to_bits(), expected.to_bits(), "{m} / 10^{k} ({text})");
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(20261201);
        for _ in 0..300_000 {
            let len = rng.gen_range(1..=19u32);
            let m = rng.gen_range(10u64.pow(len - 1)..10u64.pow(len));
            check(m, rng.gen_range(1..=MAX_POW5));
        }
        for k in 1..=MAX_POW5 {
            for m in [1, 2, 5, 9, 10, (1 << 53) - 1, 1 << 53, (1 << 53) + 1, 9_999_999_999_999_999_999, u64::MAX / 10] {
                check(m, k);
            }
        }
        // (2^53 + 2j + 1) / 2 is halfway between two doubles; times 5^k it is
        // a decimal with k fraction digits.
        for k in 1..=3usize {
            for j in 0..2_000u64 {
                check(((1u64 << 53) + 2 * j + 1) * 5u64.pow(k as u32) * 2u64.pow(k as u32 - 1), k);
            }
        }
        // Just above a tie, by less than the quotient's last bit, so that
        // only the remainder tells: t = T / 2^54 with T odd, of 54 bits and
        // ≡ 1 (mod 4) (a tie that rounds down to even), and m / 5^k =
        // t + c / (5^k · 2^54), which must round up. T ≡ -c / 5^k (mod 2^54)
        // makes m an integer.
        let inverse = |a: u64| (0..6).fold(a, |x: u64, _| x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x))));
        let mask = (1u64 << 54) - 1;
        let mut near_ties = 0;
        for (k, &five) in POW5.iter().enumerate().skip(1) {
            for c in (1..400u64).step_by(2) {
                let t = c.wrapping_neg().wrapping_mul(inverse(five)) & mask;
                if t >> 53 == 0 || t & 3 != 1 {
                    continue;
                }
                let m = ((u128::from(t) * u128::from(five) + u128::from(c)) >> 54) as u64;
                check(m, k);
                near_ties += 1;
            }
        }
        assert!(near_ties > 1_000, "{near_ties}");
    }

    #[test]
    fn numbers_are_correctly_rounded() {
        let spec = default_spec();
        for text in [
            "0.9999999999999999",
            "122.416294033786585",
            "1.5777777777770001",
            "10587.436593658975",
            "-4.4737164812014446e192",
            "5e-324",
            "1e22",
            "0.1",
        ] {
            let json = format!(r#"{{"model":"m","features":{{"amount":{text}}}}}"#);
            let ev = decode_with(&spec, &json).unwrap();
            let expected: f64 = text.parse().unwrap();
            assert_eq!(ev.values[0], SlotValue::Number(expected), "{text}");
        }
        let ev = decode_with(&spec, r#"{"model":"m","features":{"amount":-9007199254740993}}"#).unwrap();
        assert_eq!(ev.values[0], SlotValue::Number(-9007199254740993i64 as f64));
        assert_eq!(reason(&spec, r#"{"model":"m","features":{"amount":1e400}}"#), DecodeReason::MalformedJson);
        assert_eq!(reason(&spec, r#"{"model":"m","features":{"amount":NaN}}"#), DecodeReason::MalformedJson);
        // Also where no path leads (skipped values are checked, not converted).
        for skipped in [r#"{"x":1e400}"#, r#"{"x":[-1e999]}"#, r#"{"features":{"tags":[1e309]}}"#, r#"{"x":1234567890e300}"#] {
            assert_eq!(reason(&spec, skipped), DecodeReason::MalformedJson, "{skipped}");
        }
        for fine in [r#"{"x":1e300}"#, r#"{"x":1e-400}"#, r#"{"x":0.1e308}"#, r#"{"x":17976931348623157e292}"#] {
            assert!(decode_with(&spec, fine).is_ok(), "{fine}");
        }
        // `-0` keeps its sign.
        let ev = decode_with(&spec, r#"{"model":"m","features":{"amount":-0}}"#).unwrap();
        assert!(matches!(ev.values[0], SlotValue::Number(z) if z == 0.0 && z.is_sign_negative()));
        let ev = decode_with(&spec, r#"{"model":"m","features":{"country":"D\u00c9"}}"#).unwrap();
        assert_eq!(ev.values[1], SlotValue::Text("DÉ".into()));
    }

    fn text(s: &str) -> SlotValue<'_> {
        SlotValue::Text(Cow::Borrowed(s))
    }

    #[test]
    fn default_shape() {
        let out = decode_with(&default_spec(), DEFAULT_EVENT).unwrap();
        assert_eq!(out.model.as_deref(), Some("fraud"));
        assert_eq!(out.model_version.as_deref(), Some("v3"));
        assert_eq!(out.prediction_id.as_deref(), Some("p-1"));
        assert_eq!(out.timestamp_ms, Some(T0));
        assert_eq!(out.values, [SlotValue::Number(120.5), text("DE"), SlotValue::Number(1.0), SlotValue::Number(0.83)]);
        // Unescaped strings are borrowed from the input.
        assert!(matches!(out.model, Some(Cow::Borrowed(_))));
        assert!(matches!(out.values[1], SlotValue::Text(Cow::Borrowed(_))));
    }

    #[test]
    fn flat_shape() {
        let spec = DecoderSpec {
            model: Some(p(&["m"])),
            model_version: None,
            prediction_id: Some(p(&["id"])),
            timestamp: Some(p(&["ts"])),
            slots: vec![p(&["amount"]), p(&["country"]), p(&["score"])],
            max_event_bytes: 1024,
        };
        let out = decode_with(
            &spec,
            r#"{"amount":3,"country":"FR","extra":{"a":[1,2,{"b":null}]},"score":-0.5,"ts":1700000000000,"m":"x","id":42}"#,
        )
        .unwrap();
        assert_eq!(out.model.as_deref(), Some("x"));
        assert_eq!(out.model_version, None);
        assert_eq!(out.prediction_id.as_deref(), Some("42"));
        assert_eq!(out.timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(out.values, [SlotValue::Number(3.0), text("FR"), SlotValue::Number(-0.5)]);
    }

    #[test]
    fn nested_deeper_paths_and_shared_prefixes() {
        let spec = DecoderSpec {
            model: Some(p(&["meta", "model", "name"])),
            model_version: Some(p(&["meta", "model", "version"])),
            prediction_id: Some(p(&["meta", "id"])),
            timestamp: Some(p(&["meta", "time", "event"])),
            slots: vec![
                p(&["payload", "inputs", "user", "age"]),
                p(&["payload", "inputs", "user", "tier"]),
                p(&["payload", "outputs", "score"]),
                p(&["payload", "outputs"]),
            ],
            max_event_bytes: 4096,
        };
        let json = r#"{"payload":{"outputs":{"score":0.1},"inputs":{"user":{"tier":"gold","age":41,"x":[]}}},
            "meta":{"time":{"event":"2026-11-23T09:00:00.123+01:00"},"model":{"version":"7","name":"churn"},"id":-9}}"#;
        let out = decode_with(&spec, json).unwrap();
        assert_eq!(out.model.as_deref(), Some("churn"));
        assert_eq!(out.model_version.as_deref(), Some("7"));
        assert_eq!(out.prediction_id.as_deref(), Some("-9"));
        assert_eq!(out.timestamp_ms, Some(T0));
        assert_eq!(
            out.values,
            [
                SlotValue::Number(41.0),
                text("gold"),
                SlotValue::Number(0.1),
                // A prefix of another path: walked, and reads as Other.
                SlotValue::Other
            ]
        );
    }

    #[test]
    fn keys_in_any_order() {
        let reordered = r#"{"score":0.83,"features":{"country":"DE","amount":120.5},"timestamp":"2026-11-23T08:00:00.123Z","prediction":1,"prediction_id":"p-1","model_version":"v3","model":"fraud"}"#;
        let a = decode_with(&default_spec(), DEFAULT_EVENT).unwrap();
        let b = decode_with(&default_spec(), reordered).unwrap();
        assert_eq!(a.model, b.model);
        assert_eq!(a.model_version, b.model_version);
        assert_eq!(a.prediction_id, b.prediction_id);
        assert_eq!(a.timestamp_ms, b.timestamp_ms);
        assert_eq!(a.values, b.values);
    }

    #[test]
    fn missing_fields() {
        let out = decode_with(&default_spec(), r#"{"features":{"amount":1}}"#).unwrap();
        assert_eq!(out.model, None);
        assert_eq!(out.model_version, None);
        assert_eq!(out.prediction_id, None);
        assert_eq!(out.timestamp_ms, None);
        assert_eq!(out.values, [SlotValue::Number(1.0), SlotValue::Missing, SlotValue::Missing, SlotValue::Missing]);
        // No `features` at all: everything below is missing.
        let out = decode_with(&default_spec(), "{}").unwrap();
        assert!(out.values.iter().all(|v| *v == SlotValue::Missing));
        let out = decode_with(&default_spec(), r#"{"features":{}}"#).unwrap();
        assert!(out.values.iter().all(|v| *v == SlotValue::Missing));
    }

    /// Regression: `features` (or any object on the way to a configured
    /// path) of another type, `null` included, read as every feature missing
    /// and was used; it refuses the event as `wrong_type`, naming the path.
    #[test]
    fn features_that_is_not_an_object_is_a_wrong_type_dead_letter() {
        for (value, found) in [
            ("5", JsonType::Number),
            ("-0.5", JsonType::Number),
            (r#""x""#, JsonType::String),
            ("[1,{}]", JsonType::Array),
            ("[]", JsonType::Array),
            ("true", JsonType::Bool),
            ("false", JsonType::Bool),
            ("null", JsonType::Null),
        ] {
            for json in [format!(r#"{{"model":"fraud","features":{value},"score":0.5}}"#), format!(r#"{{"features" : {value} }}"#)] {
                let err = decode_with(&default_spec(), &json).unwrap_err();
                assert_eq!(err.reason(), DecodeReason::WrongType, "{json}");
                assert!(
                    matches!(&err, DecodeError::NotAnObjectAt { path, found: f } if &**path == "features" && *f == found),
                    "{json}: {err:?}"
                );
                assert_eq!(err.to_string(), format!("features: expected an object, found {found}"));
            }
        }
        // Deeper levels name their whole path; malformed JSON later still wins.
        let err = decode_with(&rich_spec(), r#"{"extra":{"x":"y"}}"#).unwrap_err();
        assert_eq!(err.to_string(), "extra.x: expected an object, found string");
        let err = decode_with(&rich_spec(), r#"{"extra":7}"#).unwrap_err();
        assert_eq!(err.to_string(), "extra: expected an object, found number");
        assert_eq!(reason(&default_spec(), r#"{"features":5,"x":}"#), DecodeReason::MalformedJson);
        // A path that is also a field itself reads the value (no error).
        let spec = DecoderSpec { slots: vec![p(&["meta"]), p(&["meta", "x"])], ..default_spec() };
        let out = decode_with(&spec, r#"{"meta":5}"#).unwrap();
        assert_eq!(out.values, [SlotValue::Number(5.0), SlotValue::Missing]);
        // Unconfigured keys may hold anything.
        assert!(decode_with(&default_spec(), r#"{"other":{"features":5},"x":null}"#).is_ok());
    }

    #[test]
    fn null_values() {
        let out = decode_with(
            &default_spec(),
            r#"{"model":null,"model_version":null,"prediction_id":null,"timestamp":null,"features":{"amount":null,"country":null},"prediction":null}"#,
        )
        .unwrap();
        assert_eq!(out.model, None);
        assert_eq!(out.model_version, None);
        assert_eq!(out.prediction_id, None);
        assert_eq!(out.timestamp_ms, None);
        assert_eq!(out.values, [SlotValue::Null, SlotValue::Null, SlotValue::Null, SlotValue::Missing]);
    }

    #[test]
    fn escaped_strings_are_owned() {
        let json = r#"{"mod\u0065l":"fr\"aud","features":{"country":"D\u00c9 \ud83d\ude00","amount":"a\\b"},"prediction_id":"\n"}"#;
        let out = decode_with(&default_spec(), json).unwrap();
        assert_eq!(out.model.as_deref(), Some("fr\"aud"));
        assert!(matches!(out.model, Some(Cow::Owned(_))));
        assert_eq!(out.prediction_id.as_deref(), Some("\n"));
        assert_eq!(out.values[0], SlotValue::Text(Cow::Owned("a\\b".to_owned())));
        assert_eq!(out.values[1], SlotValue::Text(Cow::Owned("DÉ 😀".to_owned())));
        assert!(matches!(out.values[1], SlotValue::Text(Cow::Owned(_))));
        // Non-ASCII without escapes is still borrowed.
        let out = decode_with(&default_spec(), r#"{"features":{"country":"DÉ"}}"#).unwrap();
        assert!(matches!(out.values[1], SlotValue::Text(Cow::Borrowed("DÉ"))));
    }

    #[test]
    fn booleans() {
        let out = decode_with(&default_spec(), r#"{"features":{"amount":true,"country":false},"prediction":true}"#).unwrap();
        assert_eq!(out.values[..3], [SlotValue::Bool(true), SlotValue::Bool(false), SlotValue::Bool(true)]);
    }

    #[test]
    fn arrays_and_objects_where_scalars_are_expected() {
        let out = decode_with(
            &default_spec(),
            r#"{"features":{"amount":[1,[2,{"x":3}]],"country":{"code":"DE","n":{"deep":[]}}},"prediction":[],"score":{}}"#,
        )
        .unwrap();
        assert!(out.values.iter().all(|v| *v == SlotValue::Other));
    }

    #[test]
    fn duplicate_keys_last_one_wins() {
        let out = decode_with(
            &default_spec(),
            r#"{"model":"a","score":1,"model":"b","score":2,"features":{"amount":1},"features":{"country":"DE"}}"#,
        )
        .unwrap();
        assert_eq!(out.model.as_deref(), Some("b"));
        assert_eq!(out.values[3], SlotValue::Number(2.0));
        // Repeated objects merge.
        assert_eq!(out.values[0], SlotValue::Number(1.0));
        assert_eq!(out.values[1], text("DE"));
        // A later null clears an earlier value.
        let out = decode_with(&default_spec(), r#"{"model":"a","model":null}"#).unwrap();
        assert_eq!(out.model, None);
    }

    #[test]
    fn timestamps() {
        let ts = |raw: &str| {
            let json = format!(r#"{{"timestamp":{raw}}}"#);
            decode_with(&default_spec(), &json).map(|out| out.timestamp_ms)
        };
        assert_eq!(ts(r#""2026-11-23T08:00:00.123Z""#).unwrap(), Some(T0));
        assert_eq!(ts(r#""2026-11-23T08:00:00.123+00:00""#).unwrap(), Some(T0));
        assert_eq!(ts(r#""2026-11-23T03:30:00.123-04:30""#).unwrap(), Some(T0));
        assert_eq!(ts(r#""2026-11-23t08:00:00.123456789z""#).unwrap(), Some(T0));
        assert_eq!(ts(r#""2026-11-23 08:00:00.1239Z""#).unwrap(), Some(T0));
        assert_eq!(ts(r#""2026-11-23T08:00:00Z""#).unwrap(), Some(T0 - 123));
        assert_eq!(ts(r#""1969-12-31T23:59:59.999Z""#).unwrap(), Some(-1));
        // Escaped (transient) strings parse too.
        assert_eq!(ts(r#""2026-11-23T08:00:00.123\u005a""#).unwrap(), Some(T0));
        // Epoch milliseconds: integers and floats (fractions round down).
        assert_eq!(ts("1795420800123").unwrap(), Some(T0));
        assert_eq!(ts("1795420800123.9").unwrap(), Some(T0));
        assert_eq!(ts("1.795420800123e12").unwrap(), Some(T0));
        assert_eq!(ts("-1.5").unwrap(), Some(-2));
        assert_eq!(ts("0").unwrap(), Some(0));
        assert_eq!(ts("null").unwrap(), None);

        for bad in [
            r#""2026-11-23T08:00:00""#,
            r#""2026-11-23""#,
            r#""1795420800123""#,
            r#""2026-13-23T08:00:00Z""#,
            r#""2026-11-23T08:00:00Z trailing""#,
            r#""""#,
            "18446744073709551615",
            "1e300",
            "-1e19",
            "true",
            "[1]",
            r#"{"ms":1}"#,
        ] {
            let err = ts(bad).unwrap_err();
            assert_eq!(err.reason(), DecodeReason::BadTimestamp, "{bad}");
            assert!(matches!(err, DecodeError::BadTimestamp { .. }), "{bad}");
        }
    }

    #[test]
    fn every_reason() {
        let spec = default_spec();
        assert_eq!(reason(&spec, "{"), DecodeReason::MalformedJson);
        assert_eq!(reason(&spec, ""), DecodeReason::MalformedJson);
        assert_eq!(reason(&spec, r#"{"a":1} x"#), DecodeReason::MalformedJson);
        assert_eq!(reason(&spec, r#"{"a":1}{}"#), DecodeReason::MalformedJson);
        assert_eq!(reason(&spec, r#"{"a":NaN}"#), DecodeReason::MalformedJson);
        assert_eq!(reason(&spec, r#"{"score":Infinity}"#), DecodeReason::MalformedJson);
        assert_eq!(reason(&spec, r#"{"score":-Infinity}"#), DecodeReason::MalformedJson);
        assert_eq!(reason(&spec, r#"{"a":1,}"#), DecodeReason::MalformedJson);
        assert_eq!(reason(&spec, r#"{"a":"\x"}"#), DecodeReason::MalformedJson);
        assert_eq!(reason(&spec, r#"{"score":1e999}"#), DecodeReason::MalformedJson);
        // Deep nesting: up to 128 levels (the event's own object included)
        // is decoded, skipped or walked; deeper is refused by the parser's
        // depth limit — also a million levels in a skipped value.
        let deep = format!(r#"{{"score":{}{}}}"#, "[".repeat(127), "]".repeat(127));
        assert_eq!(decode_with(&spec, &deep).unwrap().values[3], SlotValue::Other);
        let deep = format!(r#"{{"x":{}{}}}"#, "[".repeat(127), "]".repeat(127));
        assert!(decode_with(&spec, &deep).is_ok());
        for levels in [128, 5000, 1_000_000] {
            let deep = format!(r#"{{"x":{}{}}}"#, "[".repeat(levels), "]".repeat(levels));
            let big = DecoderSpec { max_event_bytes: 4 << 20, ..spec.clone() };
            let err = decode_with(&big, &deep).unwrap_err();
            assert!(matches!(err, DecodeError::TooDeep { limit: 128 }), "{levels}: {err}");
            assert_eq!(err.reason(), DecodeReason::MalformedJson);
        }
        let deep = format!("{}1{}", r#"{"features":"#.repeat(5000), "}".repeat(5000));
        assert_eq!(reason(&spec, &deep), DecodeReason::MalformedJson);
        // Brackets inside strings do not count.
        let strings = format!(r#"{{"x":"{}","y":["{}"]}}"#, "[".repeat(500), "{".repeat(500));
        assert!(decode_with(&spec, &strings).is_ok());
        let escaped = format!(r#"{{"x":"\"{}\\","y":1}}"#, "[".repeat(500));
        assert!(decode_with(&spec, &escaped).is_ok());

        // Invalid UTF-8, also inside a value the decoder skips.
        let decoder = Decoder::new(&spec).unwrap();
        let mut out = DecodedEvent::new();
        let err = decoder.decode(b"{\"skipped\":\"\xff\"}", &mut out).unwrap_err();
        assert_eq!(err.reason(), DecodeReason::MalformedJson);
        assert!(matches!(err, DecodeError::InvalidUtf8 { valid_up_to: 12, .. }));

        for (json, found) in [
            ("[]", JsonType::Array),
            ("[1,2", JsonType::Array),
            ("\"x\"", JsonType::String),
            ("1", JsonType::Number),
            ("-1", JsonType::Number),
            ("0.5", JsonType::Number),
            ("true", JsonType::Bool),
            ("null", JsonType::Null),
        ] {
            let err = decode_with(&spec, json).unwrap_err();
            assert_eq!(err.reason(), DecodeReason::NotAnObject);
            assert!(matches!(err, DecodeError::NotAnObject { found: f } if f == found), "{json}");
        }

        assert_eq!(reason(&spec, r#"{"timestamp":"soon"}"#), DecodeReason::BadTimestamp);

        for (json, field, found) in [
            (r#"{"model":1}"#, EventField::Model, JsonType::Number),
            (r#"{"model":{"n":"x"}}"#, EventField::Model, JsonType::Object),
            (r#"{"model_version":3}"#, EventField::ModelVersion, JsonType::Number),
            (r#"{"model_version":["v"]}"#, EventField::ModelVersion, JsonType::Array),
            (r#"{"prediction_id":1.5}"#, EventField::PredictionId, JsonType::Number),
            (r#"{"prediction_id":true}"#, EventField::PredictionId, JsonType::Bool),
        ] {
            let err = decode_with(&spec, json).unwrap_err();
            assert_eq!(err.reason(), DecodeReason::WrongType);
            assert!(matches!(err, DecodeError::WrongType { field: fi, found: fo } if fi == field && fo == found), "{json}");
        }
        let out = decode_with(&spec, r#"{"prediction_id":18446744073709551615}"#).unwrap();
        assert_eq!(out.prediction_id.as_deref(), Some("18446744073709551615"));

        let small = DecoderSpec { max_event_bytes: 10, ..default_spec() };
        assert_eq!(reason(&small, r#"{"model":"fraud"}"#), DecodeReason::Oversize);
        assert!(decode_with(&small, r#"{"a":"bc"}"#).is_ok());

        let labels: Vec<_> = DecodeReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels, ["oversize", "malformed_json", "not_an_object", "bad_timestamp", "wrong_type"]);
    }

    #[test]
    fn error_messages_do_not_quote_the_payload() {
        let spec = default_spec();
        let secret = "s3cr3t-payload";
        for json in [
            format!(r#"{{"model":"{secret}","x":{secret}}}"#),
            format!(r#"{{"timestamp":"{secret}"}}"#),
            format!(r#""{secret}""#),
            format!(r#"{{"model":"{secret}","model":7}}"#),
            format!("{{\"{secret}\":\"\\q\"}}"),
        ] {
            let err = decode_with(&spec, &json).unwrap_err();
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(s) = source {
                message.push_str(&format!(": {s}"));
                source = s.source();
            }
            assert!(!message.contains(secret), "{message}");
            assert!(message.len() < 200, "{message}");
        }
    }

    #[test]
    fn errors_leave_the_event_empty() {
        let decoder = Decoder::new(&default_spec()).unwrap();
        let mut out = DecodedEvent::new();
        let json = r#"{"model":"fraud","score":1,"timestamp":"bad"}"#;
        decoder.decode(json.as_bytes(), &mut out).unwrap_err();
        assert_eq!(out.model, None);
        assert_eq!(out.values.len(), 4);
        assert!(out.values.iter().all(|v| *v == SlotValue::Missing));
    }

    #[test]
    fn oversize_is_refused_without_parsing() {
        let decoder = Decoder::new(&DecoderSpec { max_event_bytes: 1024 * 1024, ..default_spec() }).unwrap();
        // 2 MB and not even valid JSON: parsing it would say malformed_json.
        let mut payload = br#"{"model":""#.to_vec();
        payload.resize(2 * 1024 * 1024, b'a');
        let mut out = DecodedEvent::new();
        let err = decoder.decode(&payload, &mut out).unwrap_err();
        assert!(matches!(err, DecodeError::Oversize { len: 2_097_152, max: 1_048_576 }));
        assert_eq!(err.reason(), DecodeReason::Oversize);
        assert!(err.to_string().len() < 100);
    }

    #[test]
    fn spec_errors() {
        let spec = DecoderSpec { model: Some(vec![]), ..default_spec() };
        assert_eq!(Decoder::new(&spec).unwrap_err(), DecodeSpecError::EmptyPath { field: SpecField::Model });
        let mut spec = default_spec();
        spec.slots.push(vec![]);
        assert_eq!(Decoder::new(&spec).unwrap_err(), DecodeSpecError::EmptyPath { field: SpecField::Slot { index: 4 } });
        let mut spec = default_spec();
        spec.slots.push(p(&["features", "amount"]));
        assert_eq!(
            Decoder::new(&spec).unwrap_err(),
            DecodeSpecError::DuplicatePath {
                first: SpecField::Slot { index: 0 },
                second: SpecField::Slot { index: 4 },
                path: p(&["features", "amount"]),
            }
        );
        let mut spec = default_spec();
        spec.slots.push(p(&["timestamp"]));
        assert!(matches!(Decoder::new(&spec).unwrap_err(), DecodeSpecError::DuplicatePath { first: SpecField::Timestamp, .. }));
        let spec = DecoderSpec { max_event_bytes: 0, ..default_spec() };
        assert_eq!(Decoder::new(&spec).unwrap_err(), DecodeSpecError::ZeroMaxEventBytes);
        // No paths at all: still checks that the event is an object.
        let spec =
            DecoderSpec { model: None, model_version: None, prediction_id: None, timestamp: None, slots: vec![], max_event_bytes: 100 };
        assert!(decode_with(&spec, "").is_err());
        assert!(decode_with(&spec, r#"{"a":[1,{"b":2}]}"#).is_ok());
        assert_eq!(reason(&spec, "[]"), DecodeReason::NotAnObject);
    }

    #[test]
    fn reuse_keeps_buffers_and_bounds_spare_strings() {
        let decoder = Decoder::new(&default_spec()).unwrap();
        let mut out = DecodedEvent::new();
        let escaped = r#"{"model":"fr\u0061ud","prediction_id":17,"features":{"country":"D\u0045","amount":1}}"#;
        for _ in 0..100 {
            decoder.decode(escaped.as_bytes(), &mut out).unwrap();
            assert_eq!(out.model.as_deref(), Some("fraud"));
            assert_eq!(out.prediction_id.as_deref(), Some("17"));
            assert_eq!(out.values[1], text("DE"));
            decoder.decode(DEFAULT_EVENT.as_bytes(), &mut out).unwrap();
            assert!(out.spare.len() <= decoder.slot_count() + 3);
        }
        assert_eq!(out.spare.len(), 3);
        let capacity = out.values.capacity();
        let mut out = out.recycle();
        let owned = DEFAULT_EVENT.to_owned();
        decoder.decode(owned.as_bytes(), &mut out).unwrap();
        assert_eq!(out.model.as_deref(), Some("fraud"));
        assert_eq!(out.values.capacity(), capacity);
    }

    #[test]
    fn many_keys_with_shared_prefixes() {
        // Long keys (compared in full), 8- and 16-byte keys (fingerprint
        // only), the empty key, and unknown keys that differ by one byte.
        let mut names: Vec<String> = (0..300).map(|i| format!("feature_number_{i:03}")).collect();
        names.extend(["", "a", "abcdefgh", "abcdefghijklmnop", "abcdefghijklmnopq", "é"].map(String::from));
        let spec = DecoderSpec {
            model: None,
            model_version: None,
            prediction_id: None,
            timestamp: None,
            slots: names.iter().map(|n| vec![n.clone()]).collect(),
            max_event_bytes: 1 << 20,
        };
        let mut json = String::from("{");
        for (i, name) in names.iter().enumerate().rev() {
            json.push_str(&format!(r#""{name}":{i},"{name}x":-1,"#));
        }
        json.push_str(r#""feature_number_300":-1,"abcdefghijklmnoq":-1,"abcdefgi":-1}"#);
        let out = decode_with(&spec, &json).unwrap();
        for (i, value) in out.values.iter().enumerate() {
            assert_eq!(*value, SlotValue::Number(i as f64), "{}", names[i]);
        }
    }

    /// A valid event for mutation tests: every kind of value, escapes, nesting.
    const RICH_EVENT: &str = r#"{"model":"fr\"aud","model_version":"v3","prediction_id":12,"timestamp":"2026-11-23T08:00:00.123+02:00","features":{"amount":-1.5e3,"country":"D\u00c9","tags":["a",{"b":[null,true]}],"flag":false},"prediction":null,"score":0.83,"extra":{"x":{"y":[1,2,3]}}}"#;

    /// Whether serde_json (a strict parser) takes `bytes` for one JSON value.
    /// Its recursion limit (127 levels) is one below ours; the inputs below
    /// nest at most 64 deep.
    fn serde_accepts(bytes: &[u8]) -> bool {
        serde_json::from_slice::<serde_json::Value>(bytes).is_ok()
    }

    fn check_any_input(decoder: &Decoder, bytes: &[u8]) {
        let mut out = DecodedEvent::new();
        let result = decoder.decode(bytes, &mut out);
        assert_eq!(out.values.len(), decoder.slot_count());
        // The same inputs are JSON for both (an error other than malformed
        // JSON means the event parsed; an event that starts as an array is
        // refused as not an object whether or not the array is well formed).
        let leading_array = matches!(result, Err(DecodeError::NotAnObject { found: JsonType::Array }));
        if bytes.len() <= decoder.max_event_bytes() && !leading_array {
            let ours = result.as_ref().map_or_else(|e| e.reason() != DecodeReason::MalformedJson, |_| true);
            assert_eq!(ours, serde_accepts(bytes), "{:?}: {result:?}", String::from_utf8_lossy(bytes));
        }
        match result {
            Ok(()) => {
                // Whatever was kept is bounded by the input.
                let owned: usize = out
                    .values
                    .iter()
                    .map(|v| match v {
                        SlotValue::Text(Cow::Owned(s)) => s.len(),
                        _ => 0,
                    })
                    .sum();
                assert!(owned <= bytes.len());
            }
            Err(err) => {
                assert!(err.to_string().len() < 200);
                if bytes.len() > decoder.max_event_bytes() {
                    assert_eq!(err.reason(), DecodeReason::Oversize);
                }
            }
        }
        assert!(out.spare.len() <= decoder.slot_count() + 3);
    }

    fn json_token() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            "\"",
            "\"model\"",
            "\"features\"",
            "\"amount\"",
            "\"timestamp\"",
            "\"prediction_id\"",
            "\"score\"",
            "\"2026-11-23T08:00:00Z\"",
            "1",
            "-0.5e3",
            "1e999",
            "true",
            "null",
            "NaN",
            "\\u00e9",
            "\\",
            " ",
            "\n",
            "\"x\"",
            "\u{e9}",
        ])
    }

    fn rich_spec() -> DecoderSpec {
        let mut spec = default_spec();
        spec.slots.push(p(&["features", "tags"]));
        spec.slots.push(p(&["features", "flag"]));
        spec.slots.push(p(&["extra", "x", "y"]));
        spec.max_event_bytes = 512;
        spec
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
            let decoder = Decoder::new(&rich_spec()).unwrap();
            check_any_input(&decoder, &bytes);
        }

        #[test]
        fn arbitrary_token_soup_never_panics(tokens in prop::collection::vec(json_token(), 0..64)) {
            let decoder = Decoder::new(&rich_spec()).unwrap();
            check_any_input(&decoder, tokens.concat().as_bytes());
        }

        #[test]
        fn mutated_events_never_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8)
        ) {
            let decoder = Decoder::new(&rich_spec()).unwrap();
            let mut bytes = RICH_EVENT.as_bytes().to_vec();
            for (at, byte, op) in edits {
                let i = at.index(bytes.len() + 1);
                match op {
                    0 if i < bytes.len() => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    2 if i < bytes.len() => { bytes.remove(i); }
                    _ => bytes.truncate(i),
                }
            }
            check_any_input(&decoder, &bytes);
        }

        #[test]
        fn every_configured_key_is_found(
            keys in prop::collection::hash_set("[a-z_\u{e9}0-9]{0,20}", 1..60),
            unknown in prop::collection::vec("[a-z_0-9]{0,20}", 0..20),
        ) {
            let keys: Vec<String> = keys.into_iter().collect();
            let spec = DecoderSpec {
                model: None,
                model_version: None,
                prediction_id: None,
                timestamp: None,
                slots: keys.iter().map(|k| vec![k.clone()]).collect(),
                max_event_bytes: 1 << 20,
            };
            let decoder = Decoder::new(&spec).unwrap();
            let mut json = String::from("{");
            for (i, key) in keys.iter().enumerate() {
                json.push_str(&format!(r#""{key}":{i},"#));
            }
            for key in unknown.iter().filter(|k| !keys.contains(k)) {
                json.push_str(&format!(r#""{key}":"unknown","#));
            }
            json.push_str(r#""{}":0}"#);
            let mut out = DecodedEvent::new();
            decoder.decode(json.as_bytes(), &mut out).unwrap();
            for (i, value) in out.values.iter().enumerate() {
                prop_assert_eq!(value, &SlotValue::Number(i as f64));
            }
        }

        #[test]
        fn decoding_is_independent_of_key_order(seed in any::<u64>()) {
            let fields = [
                r#""model":"fraud""#, r#""model_version":"v3""#, r#""prediction_id":"p-1""#,
                r#""timestamp":1795420800123"#, r#""features":{"country":"DE","amount":120.5}"#,
                r#""prediction":1"#, r#""score":0.83"#, r#""noise":[{"model":"no"}]"#,
            ];
            let mut order: Vec<usize> = (0..fields.len()).collect();
            let mut state = seed | 1;
            for i in (1..order.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                order.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let json = format!("{{{}}}", order.iter().map(|&i| fields[i]).collect::<Vec<_>>().join(","));
            let out = decode_with(&default_spec(), &json).unwrap();
            prop_assert_eq!(out.model.as_deref(), Some("fraud"));
            prop_assert_eq!(out.timestamp_ms, Some(T0));
            prop_assert_eq!(
                out.values,
                vec![SlotValue::Number(120.5), text("DE"), SlotValue::Number(1.0), SlotValue::Number(0.83)]
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Key predictions never change a result: a run of events with keys
        /// in three orders and shifting spellings (compact, spaced around the
        /// colon, escaped, prefixes of other keys, one of exactly the 14
        /// bytes the one-comparison match takes, one longer, unknown ones),
        /// some cut short, decodes with one event buffer kept across the run
        /// (predictions warm) exactly as with a fresh buffer per event.
        #[test]
        fn predictions_never_change_a_result(
            templates in prop::collection::vec(prop::collection::vec(0..8usize, 0..10), 3),
            events in prop::collection::vec(
                (0..3usize, prop::collection::vec((0..6u8, -1000i32..1000), 10), any::<bool>(), 0..400usize),
                1..40,
            ),
        ) {
            const KEYS: [&str; 8] = ["k1", "k10", "k", "abcdefghijklmn", "abcdefghijklmno", "zz", "k1x", "amount"];
            let slots: Vec<Vec<String>> = KEYS[..5].iter().chain(&KEYS[7..]).map(|k| p(&["features", k])).collect();
            let spec = DecoderSpec { model: Some(p(&["model"])), model_version: None, prediction_id: None, timestamp: None, slots, max_event_bytes: 1 << 20 };
            let decoder = Decoder::new(&spec).unwrap();
            let mut warm = DecodedEvent::new();
            // Events follow one of three key orders, so that predictions are
            // mostly right and sometimes wrong in every way.
            for (template, spellings, cut, at) in &events {
                let mut json = String::from(r#"{"model":"m","features":{"#);
                for (i, (&key, &(spelling, value))) in templates[*template].iter().zip(spellings).enumerate() {
                    if i > 0 {
                        json.push(',');
                    }
                    let key = KEYS[key];
                    match spelling {
                        0..=3 => json.push_str(&format!(r#""{key}":{value}"#)),
                        4 => json.push_str(&format!(r#""{key}" : {value}"#)),
                        _ => json.push_str(&format!(r#""\u{:04x}{}":{value}"#, key.as_bytes()[0], &key[1..])),
                    }
                }
                json.push_str("}}");
                if *cut {
                    json.truncate(*at % (json.len() + 1));
                }
                let mut fresh = DecodedEvent::new();
                let cold = decoder.decode(json.as_bytes(), &mut fresh).map(|()| (fresh.model.clone(), fresh.values.clone()));
                let mut ev = std::mem::take(&mut warm).recycle();
                let hot = decoder.decode(json.as_bytes(), &mut ev).map(|()| (ev.model.clone(), ev.values.clone()));
                prop_assert_eq!(format!("{hot:?}"), format!("{cold:?}"), "{}", json);
                warm = ev.recycle();
            }
        }
    }

    /// A predicted key that is a prefix of the actual one, or the actual one
    /// spelled another way, is not taken for it.
    #[test]
    fn a_wrong_prediction_falls_back() {
        let spec = DecoderSpec {
            model: None,
            model_version: None,
            prediction_id: None,
            timestamp: None,
            slots: vec![p(&["k1"]), p(&["k10"])],
            max_event_bytes: 1 << 20,
        };
        let decoder = Decoder::new(&spec).unwrap();
        let mut warm = DecodedEvent::new();
        for (json, expected) in [
            (r#"{"k1":1,"k10":2}"#, [1.0, 2.0]),
            (r#"{"k10":3,"k1":4}"#, [4.0, 3.0]),
            (r#"{"k10":3,"k1":4}"#, [4.0, 3.0]),
            (r#"{"k1" :5,"k\u0031":6}"#, [6.0, f64::NAN]),
            (r#"{"k1":7}"#, [7.0, f64::NAN]),
        ] {
            let mut ev = std::mem::take(&mut warm).recycle();
            decoder.decode(json.as_bytes(), &mut ev).unwrap();
            let values: Vec<f64> = ev.values.iter().map(|v| if let SlotValue::Number(x) = v { *x } else { f64::NAN }).collect();
            assert_eq!(format!("{values:?}"), format!("{:?}", &expected), "{json}");
            warm = ev.recycle();
        }
    }

    /// A JSON value for the oracle test: scalars of every kind, strings with
    /// characters that need escapes, nested arrays and objects.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-z\"\\/\u{0}-\u{1f}\u{e9}\u{1f600}]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\"\u{e9}]{0,6}", inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// The slot value a decoded event should hold for `value` (None: a value
    /// the decoder reads differently, not compared).
    fn expected_slot(value: &serde_json::Value) -> SlotValue<'_> {
        use serde_json::Value;
        match value {
            Value::Null => SlotValue::Null,
            Value::Bool(b) => SlotValue::Bool(*b),
            Value::Number(n) => SlotValue::Number(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => SlotValue::Text(Cow::Borrowed(s)),
            Value::Array(_) | Value::Object(_) => SlotValue::Other,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Against serde_json as the oracle: an event serialised by it (compact
        /// or pretty) decodes to exactly the values it holds, at every depth,
        /// also when unknown values of any shape sit between them.
        #[test]
        fn values_match_serde_json(
            values in prop::collection::vec(json_value(), 1..6),
            noise in prop::collection::vec(json_value(), 0..4),
            pretty in any::<bool>(),
        ) {
            use serde_json::{json, Map};
            let mut features = Map::new();
            let mut slots = Vec::new();
            for (i, v) in values.iter().enumerate() {
                features.insert(format!("k{i}"), v.clone());
                slots.push(p(&["features", &format!("k{i}")]));
            }
            for (i, v) in noise.iter().enumerate() {
                features.insert(format!("n{i}"), v.clone());
            }
            let event = json!({"model": "m\u{e9}\"", "features": features, "tail": noise});
            let text = if pretty { serde_json::to_string_pretty(&event) } else { serde_json::to_string(&event) }.unwrap();
            let spec = DecoderSpec { model: Some(p(&["model"])), model_version: None, prediction_id: None, timestamp: None, slots, max_event_bytes: 1 << 20 };
            let decoder = Decoder::new(&spec).unwrap();
            let mut out = DecodedEvent::new();
            decoder.decode(text.as_bytes(), &mut out).unwrap();
            prop_assert_eq!(out.model.as_deref(), Some("m\u{e9}\""));
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(&out.values[i], &expected_slot(v), "slot {}", i);
            }
        }
    }

    /// Rough throughput, for orientation only (no assertion on speed):
    /// `cargo test --release -p driftwatch-engine decode::tests::throughput -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn throughput() {
        let mut spec = default_spec();
        let mut features = String::new();
        for i in 0..20 {
            spec.slots.push(p(&["features", &format!("f{i:02}")]));
            if i % 4 == 0 {
                features.push_str(&format!(r#""f{i:02}":"category-{i}","#));
            } else {
                features.push_str(&format!(r#""f{i:02}":{}.{i}25,"#, 1000 + i * 37));
            }
        }
        let json = format!(
            r#"{{"model":"fraud","model_version":"v3","prediction_id":"p-1234567","timestamp":"2026-11-23T08:00:00.123Z","features":{{{features}"amount":120.5,"country":"DE"}},"prediction":1,"score":0.83,"request":{{"ip":"10.0.0.1","ua":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36","session":"6f1c2a9e-53b4-4c1e-9d0a-8e7f3b2c1d00","tags":["a","b","c"]}},"latency_ms":12}}"#
        );
        let decoder = Decoder::new(&spec).unwrap();
        let mut out = DecodedEvent::new();
        let n = 2_000_000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            decoder.decode(std::hint::black_box(json.as_bytes()), &mut out).unwrap();
            std::hint::black_box(&out);
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{} bytes/event: {:.3} M events/s, {:.0} MB/s, {:.0} ns/event",
            json.len(),
            n as f64 / secs / 1e6,
            n as f64 * json.len() as f64 / secs / 1e6,
            secs / n as f64 * 1e9
        );
    }
}
