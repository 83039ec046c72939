//! The JSON event decoder: one JSON object per message → a [`DecodedEvent`].
//!
//! **Hot path.** Decoding dominates the engine's cost, so this module is
//! written to allocate nothing per event in the steady state (the one
//! exception: an owned copy of each string with an escape sequence, whose
//! buffer is recycled from event to event):
//!
//! ```text
//! bytes ──(size check)──▶ copy into the parser's padded buffer
//!       ──▶ simd-json tape (SIMD structural scan, UTF-8 validation, numbers
//!           and strings parsed once) ──▶ walk the tape, consulting the trie
//!           compiled from the DecoderSpec at every object level
//!       ──▶ DecodedEvent { model, model_version, prediction_id, timestamp_ms,
//!                          values[slot] }
//! ```
//!
//! Every field location is a path of object keys (`["features", "amount"]`,
//! flat `["amount"]`, or deeper). [`Decoder::new`] compiles all paths into a
//! trie of key segments; a value under a key that leads nowhere is skipped
//! in one step (a tape node knows the size of its subtree). Key order in the
//! input is arbitrary. Strings are borrowed from the input when they contain
//! no escape sequence; escaped strings are copied into owned strings that the
//! [`DecodedEvent`] recycles from one event to the next.
//!
//! Semantics worth knowing:
//! - **Duplicate keys: the last occurrence wins**, per leaf path. An object
//!   key that repeats is walked twice, so leaves found only in the first
//!   occurrence keep their values (the occurrences are merged).
//! - A path may be a prefix of another (`["meta"]` and `["meta", "x"]`): an
//!   object found there is walked for the longer path and the shorter one
//!   reads [`SlotValue::Other`].
//! - JSON `null` in the model, model version, prediction id or timestamp is
//!   the same as the field being absent.
//! - Feature slots are not type-checked here: the engine decides per feature
//!   type from the [`SlotValue`].
//! - Integers become `f64` in [`SlotValue::Number`] (exact up to 2^53);
//!   integers beyond the 64-bit range are read as the nearest `f64`.
//! - Nesting deeper than [`MAX_DEPTH`] (128) levels anywhere in the event is
//!   refused ([`DecodeError::TooDeep`]) by the parser's depth limit: its
//!   second stage keeps an explicit stack of that size and stops there, so a
//!   hostile event costs one bounded pass, and the walk (which recurses per
//!   object level) never goes deeper.
//! - Numbers are correctly rounded (tested against the standard library's
//!   parser on 50 000 random decimals); `1e400` and `NaN` are malformed.
//! - Why simd-json: on the generated ~730-byte events its tape plus this walk
//!   measured about a quarter faster than sonic-rs through a serde visitor
//!   (see benches/README.md); the visitor's per-value dispatch was the cost.
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

use simd_json::{Buffers, ErrorType, StaticNode, Tape};

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
        Fingerprint {
            len: bytes.len(),
            head,
            tail,
        }
    }

    /// Fibonacci hashing: the top `64 - shift` bits of the product.
    #[inline]
    fn bucket(self, shift: u32) -> usize {
        let mixed = (self.head ^ self.tail.rotate_left(29) ^ self.len as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> shift) as usize
    }
}

#[derive(Debug)]
struct Key {
    fingerprint: Fingerprint,
    text: Box<str>,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            table: vec![0; 2],
            shift: 63,
            keys: Vec::new(),
            entries: Vec::new(),
        }
    }
}

impl Node {
    /// Hot path: one hash probe (rarely more) per key of the input object.
    #[inline]
    fn find(&self, key: &str) -> Option<usize> {
        let bytes = key.as_bytes();
        let fingerprint = Fingerprint::of(bytes);
        let mask = self.table.len() - 1;
        let mut bucket = fingerprint.bucket(self.shift);
        // Terminates: at least half of the buckets are empty.
        loop {
            let slot = *self.table.get(bucket)?;
            let index = slot.checked_sub(1)? as usize;
            let k = self.keys.get(index)?;
            if k.fingerprint == fingerprint && (bytes.len() <= 16 || *k.text == *key) {
                return Some(index);
            }
            bucket = (bucket + 1) & mask;
        }
    }

    /// Build time only.
    fn find_or_insert(&mut self, key: &str) -> usize {
        if let Some(index) = self.find(key) {
            return index;
        }
        let index = self.keys.len();
        self.keys.push(Key {
            fingerprint: Fingerprint::of(key.as_bytes()),
            text: key.into(),
        });
        self.entries.push(Entry {
            leaf: None,
            child: None,
        });
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
        Ok(Decoder {
            nodes,
            slot_count,
            max_event_bytes: spec.max_event_bytes,
        })
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
    pub fn decode<'a>(
        &self,
        bytes: &'a [u8],
        out: &mut DecodedEvent<'a>,
    ) -> Result<(), DecodeError> {
        out.reset(self.slot_count);
        if bytes.len() > self.max_event_bytes {
            return Err(DecodeError::Oversize {
                len: bytes.len(),
                max: self.max_event_bytes,
            });
        }
        let mut parser = out.parser.take().unwrap_or_default();
        let result = self.decode_with(bytes, &mut parser, out);
        out.parser = Some(parser);
        if result.is_err() {
            out.reset(self.slot_count);
        }
        result
    }

    /// Parses `bytes` into the tape (in a copy: simd-json unescapes strings in
    /// place, and dead letters keep the original bytes), then walks it.
    fn decode_with<'a>(
        &self,
        bytes: &'a [u8],
        parser: &mut Parser,
        out: &mut DecodedEvent<'a>,
    ) -> Result<(), DecodeError> {
        let Parser { input, buffers, tape } = parser;
        input.clear();
        input.extend_from_slice(bytes);
        input.resize(bytes.len() + simd_json::INPUT_PADDING, 0);
        let base = input.as_ptr() as usize;
        // The tape's allocation is kept; its lifetime is the copy's.
        let mut nodes = std::mem::replace(tape, Tape(Vec::new())).reset();
        let result = match simd_json::fill_tape_padded(input, bytes.len(), buffers, &mut nodes) {
            Ok(()) => Cx { trie: &self.nodes, bytes, base, out }.root(&nodes.0),
            // Invalid UTF-8 is reported first, then nesting past the limit.
            Err(error) => Err(utf8_error(bytes)
                .or_else(|| {
                    matches!(error.error(), ErrorType::DepthLimitExceeded).then_some(DecodeError::TooDeep { limit: MAX_DEPTH })
                })
                .or_else(|| leading_array(bytes))
                .unwrap_or_else(|| syntax_error(bytes, &error))),
        };
        *tape = nodes.reset();
        result
    }
}

/// The UTF-8 error of `bytes`, if they are not UTF-8 (the parser validates
/// them too, but without the position).
fn utf8_error(bytes: &[u8]) -> Option<DecodeError> {
    std::str::from_utf8(bytes).err().map(|source| DecodeError::InvalidUtf8 {
        valid_up_to: source.valid_up_to(),
        source,
    })
}

/// An event that starts as an array is refused for that, even when the array
/// is malformed too (it can never be an event).
fn leading_array(bytes: &[u8]) -> Option<DecodeError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    (*first == b'[').then_some(DecodeError::NotAnObject { found: JsonType::Array })
}

/// A payload-free [`DecodeError::MalformedJson`] for a parser error: its
/// byte offset as line and column, and its kind.
fn syntax_error(bytes: &[u8], error: &simd_json::Error) -> DecodeError {
    let at = error.index().min(bytes.len());
    let before = &bytes[..at];
    let line = 1 + memchr::memchr_iter(b'\n', before).count();
    let column = 1 + at - memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
    let kind = match error.error() {
        ErrorType::Eof => "unexpected end of input",
        ErrorType::InvalidNumber
        | ErrorType::InvalidExponent
        | ErrorType::InvalidEscape
        | ErrorType::InvalidUnicodeEscape
        | ErrorType::InvalidUnicodeCodepoint
        | ErrorType::InvalidUtf8 => "invalid value",
        _ => "syntax error",
    };
    DecodeError::MalformedJson { line, column, kind }
}

/// The deepest nesting of arrays and objects an event may have.
pub const MAX_DEPTH: usize = 128;


fn insert(nodes: &mut Vec<Node>, path: &[String], target: Target) -> Result<(), DecodeSpecError> {
    let Some((last, parents)) = path.split_last() else {
        return Err(DecodeSpecError::EmptyPath {
            field: target.spec_field(),
        });
    };
    let mut node = 0;
    for segment in parents {
        let i = nodes[node].find_or_insert(segment);
        node = match nodes[node].entries[i].child {
            Some(child) => child as usize,
            None => {
                let child = nodes.len();
                nodes.push(Node::default());
                // Fewer nodes than path segments, which fit in memory.
                nodes[node].entries[i].child = Some(child as u32);
                child
            }
        };
    }
    let i = nodes[node].find_or_insert(last);
    let entry = &mut nodes[node].entries[i];
    if let Some(first) = entry.leaf {
        return Err(DecodeSpecError::DuplicatePath {
            first: first.spec_field(),
            second: target.spec_field(),
            path: path.to_vec(),
        });
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
    /// The parser's buffers, kept between events (bounded by the largest
    /// event decoded, itself at most `max_event_bytes`).
    parser: Option<Box<Parser>>,
}

/// simd-json's buffers for one decode at a time: the input copy (padded as
/// the parser needs), its stage buffers and the tape.
struct Parser {
    input: Vec<u8>,
    buffers: Buffers,
    tape: Tape<'static>,
}

impl Default for Parser {
    fn default() -> Self {
        // The parser's own stack stops at MAX_DEPTH (an explicit stack, no
        // recursion), which also bounds the walk's recursion over objects.
        Self { input: Vec::new(), buffers: Buffers::with_max_depth(1024, MAX_DEPTH), tape: Tape(Vec::new()) }
    }
}

impl Clone for Parser {
    /// Buffers hold nothing between decodes: a clone starts empty.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl fmt::Debug for Parser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parser").field("input_capacity", &self.input.capacity()).finish_non_exhaustive()
    }
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
            values: self
                .values
                .into_iter()
                .map(|_| SlotValue::Missing)
                .collect(),
            spare: self.spare,
            parser: self.parser,
        }
    }

    /// Moves every owned string into `spare` and sets every value to
    /// [`SlotValue::Missing`] (in place: one pass, no shrinking).
    fn salvage(&mut self) {
        let specials = [
            self.model.take(),
            self.model_version.take(),
            self.prediction_id.take(),
        ];
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

    /// An owned copy of `s`, in a recycled buffer when one is available.
    fn own(&mut self, s: &str) -> String {
        let mut owned = self.spare.pop().unwrap_or_default();
        owned.clear();
        owned.push_str(s);
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
            DecodeError::WrongType { .. } => DecodeReason::WrongType,
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
    /// A model, model version or prediction id of the wrong type.
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
// The walk over the tape (hot path: no allocation below this line except
// owned strings)
// ---------------------------------------------------------------------------

/// A tape node.
type TapeNode<'t> = simd_json::Node<'t>;

/// State of one walk.
struct Cx<'n, 'a, 'o> {
    trie: &'n [Node],
    /// The original event: strings without escapes are borrowed from it.
    bytes: &'a [u8],
    /// Address of the parser's copy of `bytes`, to find a string's offset.
    base: usize,
    out: &'o mut DecodedEvent<'a>,
}

/// One JSON value as the walk hands it over; `'t` is a string of the tape
/// (an unescaped string in the parser's copy, which is reused).
enum Val<'a, 't> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Borrowed(&'a str),
    Transient(&'t str),
    Array,
    Object,
}

impl Val<'_, '_> {
    fn json_type(&self) -> JsonType {
        match self {
            Val::Null => JsonType::Null,
            Val::Bool(_) => JsonType::Bool,
            Val::I64(_) | Val::U64(_) | Val::F64(_) => JsonType::Number,
            Val::Borrowed(_) | Val::Transient(_) => JsonType::String,
            Val::Array => JsonType::Array,
            Val::Object => JsonType::Object,
        }
    }
}

fn node_type(node: &TapeNode<'_>) -> JsonType {
    match node {
        TapeNode::String(_) => JsonType::String,
        TapeNode::Object { .. } => JsonType::Object,
        TapeNode::Array { .. } => JsonType::Array,
        TapeNode::Static(StaticNode::Null) => JsonType::Null,
        TapeNode::Static(StaticNode::Bool(_)) => JsonType::Bool,
        TapeNode::Static(_) => JsonType::Number,
    }
}

/// A tape that does not have the shape the parser promises: a bug, reported
/// as malformed input rather than a panic.
fn broken_tape() -> DecodeError {
    DecodeError::MalformedJson { line: 1, column: 1, kind: "syntax error" }
}

impl<'a> Cx<'_, 'a, '_> {
    /// The top-level value: must be an object.
    fn root(&mut self, tape: &[TapeNode<'_>]) -> Result<(), DecodeError> {
        match tape.first() {
            Some(&TapeNode::Object { len, .. }) => self.object(tape, 1, len, 0).map(drop),
            Some(other) => Err(DecodeError::NotAnObject { found: node_type(other) }),
            None => Err(broken_tape()),
        }
    }

    /// Walks the `len` entries of an object that start at `tape[i]`, looking
    /// keys up in trie level `level`; returns the index after the object.
    fn object(&mut self, tape: &[TapeNode<'_>], mut i: usize, len: usize, level: usize) -> Result<usize, DecodeError> {
        let trie = self.trie.get(level).ok_or_else(broken_tape)?;
        for _ in 0..len {
            let Some(TapeNode::String(key)) = tape.get(i) else {
                return Err(broken_tape());
            };
            i += 1;
            i = match trie.find(key) {
                Some(index) => self.entry(tape, i, trie.entries[index])?,
                None => skip(tape, i)?,
            };
        }
        Ok(i)
    }

    /// The value at `tape[i]` of a key the trie knows: a leaf to fill, a
    /// level to walk, or both. Returns the index after the value.
    #[inline]
    fn entry(&mut self, tape: &[TapeNode<'_>], i: usize, entry: Entry) -> Result<usize, DecodeError> {
        let (val, next) = match *tape.get(i).ok_or_else(broken_tape)? {
            TapeNode::Static(StaticNode::F64(x)) => (Val::F64(x), i + 1),
            TapeNode::Static(StaticNode::I64(n)) => (Val::I64(n), i + 1),
            TapeNode::Static(StaticNode::U64(n)) => (Val::U64(n), i + 1),
            TapeNode::Static(StaticNode::Bool(b)) => (Val::Bool(b), i + 1),
            TapeNode::Static(StaticNode::Null) => (Val::Null, i + 1),
            TapeNode::String(s) => (self.string(s), i + 1),
            TapeNode::Array { count, .. } => (Val::Array, i + 1 + count),
            TapeNode::Object { len, count } => {
                if let Some(child) = entry.child {
                    self.object(tape, i + 1, len, child as usize)?;
                }
                (Val::Object, i + 1 + count)
            }
        };
        if let Some(target) = entry.leaf {
            self.apply(target, val)?;
        }
        Ok(next)
    }

    /// A string of the tape, borrowed from the original event where it had no
    /// escape sequence (the parser's copy holds the same bytes at the same
    /// offset then), else transient.
    #[inline]
    fn string<'t>(&self, s: &'t str) -> Val<'a, 't> {
        let offset = (s.as_ptr() as usize).wrapping_sub(self.base);
        let original = offset.checked_add(s.len()).and_then(|end| self.bytes.get(offset..end));
        match original {
            Some(o) if o == s.as_bytes() => match std::str::from_utf8(o) {
                Ok(text) => Val::Borrowed(text),
                Err(_) => Val::Transient(s),
            },
            _ => Val::Transient(s),
        }
    }

    #[inline]
    fn apply(&mut self, target: Target, val: Val<'a, '_>) -> Result<(), DecodeError> {
        match target {
            Target::Slot(slot) => {
                let value = match val {
                    Val::Null => SlotValue::Null,
                    Val::Bool(b) => SlotValue::Bool(b),
                    Val::I64(n) => SlotValue::Number(n as f64),
                    Val::U64(n) => SlotValue::Number(n as f64),
                    Val::F64(x) => SlotValue::Number(x),
                    Val::Borrowed(s) => SlotValue::Text(Cow::Borrowed(s)),
                    Val::Transient(s) => SlotValue::Text(Cow::Owned(self.out.own(s))),
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
            Target::Timestamp => timestamp_ms(&val)
                .map(|v| self.out.timestamp_ms = v)
                .map_err(|source| DecodeError::BadTimestamp { source }),
        }
    }

    /// A string-valued special field; `null` is absent.
    fn text(&mut self, field: EventField, val: Val<'a, '_>) -> Result<Option<Cow<'a, str>>, DecodeError> {
        match val {
            Val::Null => Ok(None),
            Val::Borrowed(s) => Ok(Some(Cow::Borrowed(s))),
            Val::Transient(s) => Ok(Some(Cow::Owned(self.out.own(s)))),
            Val::I64(n) if field == EventField::PredictionId => Ok(Some(Cow::Owned(self.integer(n)))),
            Val::U64(n) if field == EventField::PredictionId => Ok(Some(Cow::Owned(self.integer(n)))),
            other => Err(DecodeError::WrongType { field, found: other.json_type() }),
        }
    }

    fn integer(&mut self, n: impl fmt::Display) -> String {
        let mut s = self.out.own("");
        // Writing to a String cannot fail.
        let _ = write!(s, "{n}");
        s
    }
}

/// The index after the value at `tape[i]`.
#[inline]
fn skip(tape: &[TapeNode<'_>], i: usize) -> Result<usize, DecodeError> {
    match tape.get(i).ok_or_else(broken_tape)? {
        TapeNode::Object { count, .. } | TapeNode::Array { count, .. } => Ok(i + 1 + count),
        _ => Ok(i + 1),
    }
}

/// Epoch milliseconds from an RFC 3339 string or a number; `null` is absent.
fn timestamp_ms(val: &Val<'_, '_>) -> Result<Option<i64>, TimestampError> {
    // 2^63 as f64; every f64 in [-2^63, 2^63) floors into i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let rfc3339 = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.timestamp_millis()))
            .map_err(|source| TimestampError::NotRfc3339 { source })
    };
    match *val {
        Val::Null => Ok(None),
        Val::Borrowed(s) | Val::Transient(s) => rfc3339(s),
        Val::I64(n) => Ok(Some(n)),
        Val::U64(n) => i64::try_from(n).map(Some).map_err(|_| TimestampError::OutOfRange),
        // Fractional milliseconds round down, like chrono's for RFC 3339.
        Val::F64(x) if x.is_finite() && (-LIMIT..LIMIT).contains(&x) => Ok(Some(x.floor() as i64)),
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
            slots: vec![
                p(&["features", "amount"]),
                p(&["features", "country"]),
                p(&["prediction"]),
                p(&["score"]),
            ],
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

    /// What the tape walk adds: strings without escapes are borrowed from the
    /// event itself (not the parser's reused copy), escaped ones are owned;
    /// integers past 64 bits read as the nearest f64; a malformed event that
    /// starts as an array is not an object; parser errors keep their position.
    #[test]
    fn tape_walk_borrows_owns_and_reports_positions() {
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

    #[test]
    fn numbers_are_correctly_rounded() {
        let spec = default_spec();
        for text in ["0.9999999999999999", "122.416294033786585", "1.5777777777770001", "10587.436593658975", "-4.4737164812014446e192", "5e-324", "1e22", "0.1"] {
            let json = format!(r#"{{"model":"m","features":{{"amount":{text}}}}}"#);
            let ev = decode_with(&spec, &json).unwrap();
            let expected: f64 = text.parse().unwrap();
            assert_eq!(ev.values[0], SlotValue::Number(expected), "{text}");
        }
        let ev = decode_with(&spec, r#"{"model":"m","features":{"amount":-9007199254740993}}"#).unwrap();
        assert_eq!(ev.values[0], SlotValue::Number(-9007199254740993i64 as f64));
        assert_eq!(reason(&spec, r#"{"model":"m","features":{"amount":1e400}}"#), DecodeReason::MalformedJson);
        assert_eq!(reason(&spec, r#"{"model":"m","features":{"amount":NaN}}"#), DecodeReason::MalformedJson);
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
        assert_eq!(
            out.values,
            [
                SlotValue::Number(120.5),
                text("DE"),
                SlotValue::Number(1.0),
                SlotValue::Number(0.83)
            ]
        );
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
        assert_eq!(
            out.values,
            [SlotValue::Number(3.0), text("FR"), SlotValue::Number(-0.5)]
        );
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
        assert_eq!(
            out.values,
            [
                SlotValue::Number(1.0),
                SlotValue::Missing,
                SlotValue::Missing,
                SlotValue::Missing
            ]
        );
        // A scalar where an object is expected: everything below is missing.
        let out = decode_with(&default_spec(), r#"{"features":5}"#).unwrap();
        assert_eq!(out.values[0], SlotValue::Missing);
        let out = decode_with(&default_spec(), "{}").unwrap();
        assert!(out.values.iter().all(|v| *v == SlotValue::Missing));
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
        assert_eq!(
            out.values,
            [
                SlotValue::Null,
                SlotValue::Null,
                SlotValue::Null,
                SlotValue::Missing
            ]
        );
    }

    #[test]
    fn escaped_strings_are_owned() {
        let json = r#"{"mod\u0065l":"fr\"aud","features":{"country":"D\u00c9 \ud83d\ude00","amount":"a\\b"},"prediction_id":"\n"}"#;
        let out = decode_with(&default_spec(), json).unwrap();
        assert_eq!(out.model.as_deref(), Some("fr\"aud"));
        assert!(matches!(out.model, Some(Cow::Owned(_))));
        assert_eq!(out.prediction_id.as_deref(), Some("\n"));
        assert_eq!(
            out.values[0],
            SlotValue::Text(Cow::Owned("a\\b".to_owned()))
        );
        assert_eq!(
            out.values[1],
            SlotValue::Text(Cow::Owned("DÉ 😀".to_owned()))
        );
        assert!(matches!(out.values[1], SlotValue::Text(Cow::Owned(_))));
        // Non-ASCII without escapes is still borrowed.
        let out = decode_with(&default_spec(), r#"{"features":{"country":"DÉ"}}"#).unwrap();
        assert!(matches!(
            out.values[1],
            SlotValue::Text(Cow::Borrowed("DÉ"))
        ));
    }

    #[test]
    fn booleans() {
        let out = decode_with(
            &default_spec(),
            r#"{"features":{"amount":true,"country":false},"prediction":true}"#,
        )
        .unwrap();
        assert_eq!(
            out.values[..3],
            [
                SlotValue::Bool(true),
                SlotValue::Bool(false),
                SlotValue::Bool(true)
            ]
        );
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
        assert_eq!(
            reason(&spec, r#"{"score":Infinity}"#),
            DecodeReason::MalformedJson
        );
        assert_eq!(
            reason(&spec, r#"{"score":-Infinity}"#),
            DecodeReason::MalformedJson
        );
        assert_eq!(reason(&spec, r#"{"a":1,}"#), DecodeReason::MalformedJson);
        assert_eq!(reason(&spec, r#"{"a":"\x"}"#), DecodeReason::MalformedJson);
        assert_eq!(
            reason(&spec, r#"{"score":1e999}"#),
            DecodeReason::MalformedJson
        );
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
        let err = decoder
            .decode(b"{\"skipped\":\"\xff\"}", &mut out)
            .unwrap_err();
        assert_eq!(err.reason(), DecodeReason::MalformedJson);
        assert!(matches!(
            err,
            DecodeError::InvalidUtf8 {
                valid_up_to: 12,
                ..
            }
        ));

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
            assert!(
                matches!(err, DecodeError::NotAnObject { found: f } if f == found),
                "{json}"
            );
        }

        assert_eq!(
            reason(&spec, r#"{"timestamp":"soon"}"#),
            DecodeReason::BadTimestamp
        );

        for (json, field, found) in [
            (r#"{"model":1}"#, EventField::Model, JsonType::Number),
            (
                r#"{"model":{"n":"x"}}"#,
                EventField::Model,
                JsonType::Object,
            ),
            (
                r#"{"model_version":3}"#,
                EventField::ModelVersion,
                JsonType::Number,
            ),
            (
                r#"{"model_version":["v"]}"#,
                EventField::ModelVersion,
                JsonType::Array,
            ),
            (
                r#"{"prediction_id":1.5}"#,
                EventField::PredictionId,
                JsonType::Number,
            ),
            (
                r#"{"prediction_id":true}"#,
                EventField::PredictionId,
                JsonType::Bool,
            ),
        ] {
            let err = decode_with(&spec, json).unwrap_err();
            assert_eq!(err.reason(), DecodeReason::WrongType);
            assert!(
                matches!(err, DecodeError::WrongType { field: fi, found: fo } if fi == field && fo == found),
                "{json}"
            );
        }
        let out = decode_with(&spec, r#"{"prediction_id":18446744073709551615}"#).unwrap();
        assert_eq!(out.prediction_id.as_deref(), Some("18446744073709551615"));

        let small = DecoderSpec {
            max_event_bytes: 10,
            ..default_spec()
        };
        assert_eq!(
            reason(&small, r#"{"model":"fraud"}"#),
            DecodeReason::Oversize
        );
        assert!(decode_with(&small, r#"{"a":"bc"}"#).is_ok());

        let labels: Vec<_> = DecodeReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            labels,
            [
                "oversize",
                "malformed_json",
                "not_an_object",
                "bad_timestamp",
                "wrong_type"
            ]
        );
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
        let decoder = Decoder::new(&DecoderSpec {
            max_event_bytes: 1024 * 1024,
            ..default_spec()
        })
        .unwrap();
        // 2 MB and not even valid JSON: parsing it would say malformed_json.
        let mut payload = br#"{"model":""#.to_vec();
        payload.resize(2 * 1024 * 1024, b'a');
        let mut out = DecodedEvent::new();
        let err = decoder.decode(&payload, &mut out).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::Oversize {
                len: 2_097_152,
                max: 1_048_576
            }
        ));
        assert_eq!(err.reason(), DecodeReason::Oversize);
        assert!(err.to_string().len() < 100);
    }

    #[test]
    fn spec_errors() {
        let spec = DecoderSpec {
            model: Some(vec![]),
            ..default_spec()
        };
        assert_eq!(
            Decoder::new(&spec).unwrap_err(),
            DecodeSpecError::EmptyPath {
                field: SpecField::Model
            }
        );
        let mut spec = default_spec();
        spec.slots.push(vec![]);
        assert_eq!(
            Decoder::new(&spec).unwrap_err(),
            DecodeSpecError::EmptyPath {
                field: SpecField::Slot { index: 4 }
            }
        );
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
        assert!(matches!(
            Decoder::new(&spec).unwrap_err(),
            DecodeSpecError::DuplicatePath {
                first: SpecField::Timestamp,
                ..
            }
        ));
        let spec = DecoderSpec {
            max_event_bytes: 0,
            ..default_spec()
        };
        assert_eq!(
            Decoder::new(&spec).unwrap_err(),
            DecodeSpecError::ZeroMaxEventBytes
        );
        // No paths at all: still checks that the event is an object.
        let spec = DecoderSpec {
            model: None,
            model_version: None,
            prediction_id: None,
            timestamp: None,
            slots: vec![],
            max_event_bytes: 100,
        };
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
        names.extend(
            [
                "",
                "a",
                "abcdefgh",
                "abcdefghijklmnop",
                "abcdefghijklmnopq",
                "é",
            ]
            .map(String::from),
        );
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

    fn check_any_input(decoder: &Decoder, bytes: &[u8]) {
        let mut out = DecodedEvent::new();
        let result = decoder.decode(bytes, &mut out);
        assert_eq!(out.values.len(), decoder.slot_count());
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
            decoder
                .decode(std::hint::black_box(json.as_bytes()), &mut out)
                .unwrap();
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
