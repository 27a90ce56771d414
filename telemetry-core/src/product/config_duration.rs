//! Durations in configuration files, spelled as humantime spells them (`5s`, `500ms`,
//! `1h 30m`), for the `Deserialize` of the configuration types.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// An optional duration field: absent or `null` is `None`; a string is read by
/// `humantime::parse_duration`.
pub(crate) fn optional<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    humantime::parse_duration(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("invalid duration `{text}`: {e}")))
}
