//! Checks of JSON against a shape that keep nothing: the agent's own files are checked whole at
//! start (a damaged file stops it there, naming the file) and parsed into memory only once it
//! answers (bench row 7f). Each shape type here deserializes from what its name says and allocates
//! nothing, whatever the input; [`Deferred`] holds what is built from the file afterwards.

use std::fmt;
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

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

type Build<T> = Box<dyn FnOnce() -> Result<Mutex<T>, String> + Send>;

/// A value built from a checked file on first use, then locked like a `Mutex`. A build that fails
/// after all (the file passed its check) is kept as its reason, so every later use is refused
/// rather than given an empty value that the next write would persist over the file.
pub struct Deferred<T>(LazyLock<Result<Mutex<T>, String>, Build<T>>);

impl<T> Deferred<T> {
    /// Built by `build` when first locked.
    pub fn new(build: impl FnOnce() -> Result<T, String> + Send + 'static) -> Self {
        Self(LazyLock::new(Box::new(move || build().map(Mutex::new))))
    }

    /// The value, built now if it is not yet; `Err`: why its build failed.
    pub fn lock(&self) -> Result<MutexGuard<'_, T>, &str> {
        match &*self.0 {
            Ok(value) => Ok(value.lock().unwrap_or_else(PoisonError::into_inner)),
            Err(reason) => Err(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deferred_value_is_built_once_and_a_failed_build_refuses_every_use() {
        let built = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&built);
        let d = Deferred::new(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(vec![1])
        });
        assert_eq!(built.load(std::sync::atomic::Ordering::SeqCst), 0);
        d.lock().unwrap().push(2);
        assert_eq!(*d.lock().unwrap(), [1, 2]);
        assert_eq!(built.load(std::sync::atomic::Ordering::SeqCst), 1);
        let failed = Deferred::<Vec<u8>>::new(|| Err("damaged".into()));
        assert_eq!(failed.lock().err(), Some("damaged"));
        assert_eq!(failed.lock().err(), Some("damaged"));
    }

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
