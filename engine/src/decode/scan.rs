//! The scan: one strict pass over an event's bytes (hot path: no allocation except owned strings).

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------------------
// The scan (hot path: no allocation below this line except owned strings)
// ---------------------------------------------------------------------------

/// Where the scan stopped on input that is not JSON.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stop {
    /// A syntax error at byte `at`.
    Syntax { at: usize, kind: &'static str },
    /// Arrays and objects nested past [`MAX_DEPTH`].
    TooDeep,
}

pub(super) const SYNTAX: &str = "syntax error";
pub(super) const INVALID_VALUE: &str = "invalid value";
pub(super) const END: &str = "unexpected end of input";

/// State of one scan: the event's bytes, the position and the event being
/// filled.
pub(super) struct Cx<'n, 'a, 'o> {
    pub(super) trie: &'n [Node],
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
    pub(super) out: &'o mut DecodedEvent<'a>,
    /// The first well-formed but unusable value (wrong type, bad timestamp):
    /// reported once the whole event has been scanned, so that malformed JSON
    /// later in the event takes precedence, as a parse-then-read decoder
    /// would report it.
    pub(super) invalid: Option<DecodeError>,
    /// Whether a string held a byte above 0x7F (then the whole event's UTF-8
    /// is checked once the scan is done).
    pub(super) non_ascii: bool,
}

/// One JSON value as the scan hands it over.
pub(super) enum Val<'a> {
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
    pub(super) fn as_number(&self) -> Option<f64> {
        match *self {
            Val::I64(n) => Some(n as f64),
            Val::U64(n) => Some(n as f64),
            Val::F64(x) => Some(x),
            _ => None,
        }
    }

    pub(super) fn json_type(&self) -> JsonType {
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

pub(super) const ONES: u64 = 0x0101_0101_0101_0101;
pub(super) const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of every byte of `w` (eight string bytes, little-endian) that
/// ends a run of plain string bytes: `"`, `\` or a control character (below
/// 0x20, not allowed raw in a JSON string). Only the lowest marked byte is
/// exact (a borrow only moves upwards, from a byte that is itself marked),
/// which is the one the scan uses.
#[inline]
pub(super) fn string_stops(w: u64) -> u64 {
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let quote = zero(w ^ (ONES * u64::from(b'"')));
    let backslash = zero(w ^ (ONES * u64::from(b'\\')));
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    quote | backslash | control
}

impl<'a> Cx<'_, 'a, '_> {
    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    pub(super) fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// A syntax error at the current position (the end of input has its own
    /// kind).
    pub(super) fn unexpected(&self) -> Stop {
        let kind = if self.pos >= self.bytes.len() { END } else { SYNTAX };
        Stop::Syntax { at: self.pos, kind }
    }

    /// The whole event: `None` for an object (walked from trie level 0), the
    /// type of any other JSON value; anything but whitespace after it is an
    /// error.
    pub(super) fn root(&mut self) -> Result<Option<JsonType>, Stop> {
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
