//! What decoding gives: the values found at the slots, the event, and why an event was refused.

#[allow(unused_imports)]
use super::*;

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
    pub(super) spare: Vec<String>,
    /// Which key followed which in the last event, per trie level: `hints[
    /// node.hint_base + k + 1]` is 1 + the index of the key that came after key
    /// `k` (slot `hint_base` for the object's first key), 0 when unknown.
    /// Topics keep one key order, so most keys are found by comparing them
    /// with the predicted one instead of hashing. Only a guess: a prediction
    /// is used only when the key matches.
    pub(super) hints: Vec<u32>,
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
    pub(super) fn salvage(&mut self) {
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
    pub(super) fn reset(&mut self, slot_count: usize) {
        self.salvage();
        self.values.resize(slot_count, SlotValue::Missing);
    }

    /// An empty string, in a recycled buffer when one is available.
    pub(super) fn spare_string(&mut self) -> String {
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

    pub(super) const fn expected(self) -> &'static str {
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
