//! Checks of JSON against a shape that keep nothing: the agent's own files are checked whole at
//! start (a damaged file stops it there, naming the file) and parsed into memory only once it
//! answers (bench row 7f). Each type here deserializes from what its name says and allocates
//! nothing, whatever the input.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Any JSON string.
#[derive(Default)]
pub struct Str;

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(Str)
    }
}

impl Visitor<'_> for Str {
    type Value = Self;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self, E> {
        Ok(Self)
    }
}

/// A JSON list of strings.
#[derive(Default)]
pub struct Strs;

impl<'de> Deserialize<'de> for Strs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(Strs)
    }
}

impl<'de> Visitor<'de> for Strs {
    type Value = Self;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<Str>()?.is_some() {}
        Ok(Self)
    }
}

/// A JSON object whose values are all strings.
#[derive(Default)]
pub struct StrMap;

impl<'de> Deserialize<'de> for StrMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StrMap)
    }
}

impl<'de> Visitor<'de> for StrMap {
    type Value = Self;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of strings")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<Str, Str>()?.is_some() {}
        Ok(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shape_takes_what_it_names_and_nothing_else() {
        assert!(serde_json::from_str::<Str>(r#""a\"\u00e9""#).is_ok());
        assert!(serde_json::from_str::<Strs>(r#"["a", "b\n"]"#).is_ok());
        assert!(serde_json::from_str::<Strs>("[]").is_ok());
        assert!(serde_json::from_str::<StrMap>(r#"{"a": "b", "c\t": ""}"#).is_ok());
        for bad in ["1", "null", "[]", "{}", "true"] {
            assert!(serde_json::from_str::<Str>(bad).is_err(), "{bad}");
        }
        for bad in [r#"["a", 1]"#, r#""a""#, "[[]]", "{}"] {
            assert!(serde_json::from_str::<Strs>(bad).is_err(), "{bad}");
        }
        for bad in [r#"{"a": 1}"#, r#"{"a": null}"#, "[]", r#"{"a": ["b"]}"#] {
            assert!(serde_json::from_str::<StrMap>(bad).is_err(), "{bad}");
        }
    }
}
