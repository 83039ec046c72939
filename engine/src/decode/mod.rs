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

mod number;
mod output;
mod scan;
mod trie;

#[allow(unused_imports)]
use number::*;
pub use output::*;
#[allow(unused_imports)]
use scan::*;
#[allow(unused_imports)]
use trie::*;
pub use trie::{DecodeSpecError, DecoderSpec, SpecField};

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
