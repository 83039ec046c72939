//! Configuration values that may be secrets: written inline, or read when a
//! component starts from an environment variable (`{ env: NAME }`) or a file
//! (`{ file: /path }`), so that a Kubernetes Secret never has to be copied
//! into a ConfigMap. A secret's value never appears in `Debug` output or in
//! an error message.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// A string setting that may come from the environment or a file.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretValue {
    /// The value itself, written in the configuration.
    Inline(String),
    /// The value of this environment variable.
    Env(String),
    /// The contents of this file, without one trailing line break.
    File(PathBuf),
}

impl SecretValue {
    /// The value: read from the environment or the file now. `field` names
    /// the setting in the error (never the value).
    pub fn resolve(&self, field: &str) -> Result<String> {
        match self {
            Self::Inline(value) => Ok(value.clone()),
            Self::Env(name) => std::env::var(name).map_err(|e| Error::Secret {
                field: field.to_owned(),
                message: match e {
                    std::env::VarError::NotPresent => format!("environment variable {name} is not set"),
                    std::env::VarError::NotUnicode(_) => format!("environment variable {name} is not valid UTF-8"),
                },
            }),
            Self::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Secret { field: field.to_owned(), message: format!("cannot read {}: {e}", path.display()) })?;
                let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
                Ok(text.to_owned())
            }
        }
    }
}

impl From<&str> for SecretValue {
    fn from(value: &str) -> Self {
        Self::Inline(value.to_owned())
    }
}

impl From<String> for SecretValue {
    fn from(value: String) -> Self {
        Self::Inline(value)
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("<redacted>"),
            Self::Env(name) => write!(f, "{{ env: {name} }}"),
            Self::File(path) => write!(f, "{{ file: {} }}", path.display()),
        }
    }
}

impl Serialize for SecretValue {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        match self {
            // Serialized configuration is shown to people: never the value.
            Self::Inline(_) => s.serialize_str("<redacted>"),
            Self::Env(name) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("env", name)?;
                map.end()
            }
            Self::File(path) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("file", path)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SecretValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, `{ env: VARIABLE }` or `{ file: /path }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<SecretValue, E> {
                Ok(SecretValue::Inline(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<SecretValue, E> {
                Ok(SecretValue::Inline(v))
            }
            // Other scalars are refused without echoing them (serde's own
            // message would quote the value, which may be a secret).
            fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<SecretValue, E> {
                Err(E::custom("a boolean; expected a string (quote it), `{ env: VARIABLE }` or `{ file: /path }`"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<SecretValue, E> {
                Err(E::custom("a number; expected a string (quote it), `{ env: VARIABLE }` or `{ file: /path }`"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<SecretValue, E> {
                Err(E::custom("a number; expected a string (quote it), `{ env: VARIABLE }` or `{ file: /path }`"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<SecretValue, E> {
                Err(E::custom("a number; expected a string (quote it), `{ env: VARIABLE }` or `{ file: /path }`"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<SecretValue, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom("an empty map; expected `{ env: VARIABLE }` or `{ file: /path }`"));
                };
                let value = match key.as_str() {
                    "env" => SecretValue::Env(map.next_value()?),
                    "file" => SecretValue::File(map.next_value()?),
                    other => return Err(de::Error::unknown_field(other, &["env", "file"])),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!("`{extra}` beside `{key}`: give exactly one of `env` or `file`")));
                }
                match &value {
                    SecretValue::Env(name) if name.is_empty() => Err(de::Error::custom("`env` names no variable")),
                    _ => Ok(value),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> std::result::Result<SecretValue, String> {
        serde_yaml_ng::from_str::<SecretValue>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn inline_env_and_file_values() {
        assert_eq!(parse("hunter2").unwrap(), SecretValue::Inline("hunter2".into()));
        assert_eq!(parse("{ env: DW_TEST_SECRET }").unwrap(), SecretValue::Env("DW_TEST_SECRET".into()));
        assert_eq!(parse("{ file: /etc/x }").unwrap(), SecretValue::File("/etc/x".into()));
        let error = parse("{ envv: X }").unwrap_err();
        assert!(error.contains("envv") && error.contains("env"), "{error}");
        let error = parse("{ env: X, file: /y }").unwrap_err();
        assert!(error.contains("exactly one"), "{error}");
        assert!(parse("{}").is_err());
        assert!(parse("{ env: '' }").is_err());
        // A number is not a string (librdkafka options are quoted), and the
        // error does not show it.
        let error = parse("12345678").unwrap_err();
        assert!(!error.contains("12345678") && error.contains("quote"), "{error}");
    }

    #[test]
    fn resolution_and_errors_never_show_the_value() {
        let dir = std::env::temp_dir().join(format!("driftwatch-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hmac");
        std::fs::write(&file, "s3cr3t-from-file\n").unwrap();
        assert_eq!(SecretValue::File(file.clone()).resolve("hmac_secret").unwrap(), "s3cr3t-from-file");
        std::fs::write(&file, "two\nlines\r\n").unwrap();
        assert_eq!(SecretValue::File(file).resolve("hmac_secret").unwrap(), "two\nlines");
        let missing = SecretValue::File(dir.join("nope")).resolve("hmac_secret").unwrap_err().to_string();
        assert!(missing.contains("hmac_secret") && missing.contains("nope"), "{missing}");
        let unset = SecretValue::Env("DRIFTWATCH_TEST_SURELY_UNSET".into()).resolve("sasl.password").unwrap_err().to_string();
        assert!(unset.contains("DRIFTWATCH_TEST_SURELY_UNSET is not set") && unset.contains("sasl.password"), "{unset}");
        assert_eq!(SecretValue::Inline("hunter2".into()).resolve("x").unwrap(), "hunter2");
        // Shown values are redacted.
        let inline = SecretValue::Inline("hunter2".into());
        assert_eq!(format!("{inline:?}"), "<redacted>");
        assert_eq!(serde_json::to_string(&inline).unwrap(), "\"<redacted>\"");
        std::fs::remove_dir_all(dir).ok();
    }
}
