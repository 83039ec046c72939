//! The one duration type of the configuration: written as a human duration
//! (`"250ms"`, `"30s"`, `"15m"`, `"4h"`, `"7d"`), held as a [`Duration`].

use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize};

/// A human duration (`"15m"`, `"4h"`), parsed by humantime when the
/// configuration is read, so a bad one is refused with its field's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// From whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// From whole milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(de::Error::custom)
    }
}

fn parse(s: &str) -> Result<HumanDuration, String> {
    humantime::parse_duration(s).map(HumanDuration).map_err(|e| format!("bad duration {s:?} ({e}); expected e.g. \"30s\", \"15m\", \"4h\""))
}

/// Deserializes a duration whose error names `field`: for fields inside a
/// tagged enum, where the path to the field is lost.
pub(crate) fn named<'de, D: Deserializer<'de>>(d: D, field: &str) -> Result<HumanDuration, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s).map_err(|e| de::Error::custom(format!("{field}: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn human_durations_round_trip_and_bad_ones_are_refused() {
        for (text, d) in [("250ms", 250), ("5s", 5_000), ("2m", 120_000), ("4h", 4 * 3_600_000), ("7d", 7 * 86_400_000)] {
            let parsed: HumanDuration = serde_json::from_str(&format!("{text:?}")).unwrap();
            assert_eq!(parsed, HumanDuration::from_millis(d), "{text}");
            let back: HumanDuration = serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
            assert_eq!(back, parsed);
        }
        for bad in ["\"5 parsecs\"", "\"\"", "5"] {
            let e = serde_json::from_str::<HumanDuration>(bad).unwrap_err().to_string();
            assert!(bad == "5" || e.contains("bad duration"), "{bad}: {e}");
        }
    }
}
