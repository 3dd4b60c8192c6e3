//! The JSON form of a Python LogRecord, decoded in one pass.
//!
//! serde_json's parser drives a visitor that puts each key of the
//! top-level object straight into the [`Dict`] being built: the keys the
//! mapping reads into their slots, the others kept as fields, strings
//! borrowed from the body unless they had escapes. No `serde_json::Value`
//! tree is built: the `context` object is read as its list of entries,
//! and arrays and objects in values (which LogRecords rarely carry; they
//! are stored as their JSON text) are written out as that text while
//! parsed.
//!
//! What is accepted, and what each input maps to or fails with, is what
//! parsing the body into a `serde_json::Value` and mapping that object
//! gave (the tests in `json/tests.rs` compare the two on generated and
//! hostile input): the same parser reports the same syntax errors at the
//! same positions; a repeated key keeps its last value; fields that are
//! not LogRecord attributes come out sorted by key, as serde_json's `Map`
//! iterates; serde_json's raw-value escape (an object whose first key is
//! `$serde_json::private::RawValue`) is honoured the same way.
//!
//! **Bounds.** The body is at most [`MAX_BODY`] bytes, checked first.
//! Nesting is bounded by serde_json's recursion limit (128 levels), which
//! counts the top-level object and `context` like any other container, so
//! neither the parse nor the drop of a nested value can exhaust the stack.
//! Memory: no `serde_json::Value` tree is built for arrays and objects
//! inside values; they are written out as their JSON text while parsed
//! (an object's entries held until it ends, to sort them), so a nested
//! value costs about twice its text. What dominates is the list of the
//! dict's other keys, repeats included until mapped: an entry takes at
//! least 5 bytes of input (`"":0,`) and 64 bytes of memory, 3x that while
//! its vector doubles. The decoder's peak, the record it returns
//! included, stays under 40 bytes per input byte (40 MiB at the
//! [`MAX_BODY`] limit); `tests/python_json_memory_bound.rs` asserts it on
//! the shapes that make the most values per byte (measured at most 22:
//! a repeated key; 16 for distinct keys; 1.5 for nested objects, which
//! parsing into a `Value` made 110).

use super::error::{ErrorKind, IngestError, MAX_BODY};
use super::logrecord::{sort_last_wins, Dict, Val};
use distlog_core::record::Record;
use distlog_core::wire::Sender;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Number;
use std::borrow::Cow;
use std::fmt;

/// serde_json's marker key for a raw value: an object whose first key is
/// this one stands for the JSON value in its (string) value, which is
/// parsed afresh (with a fresh nesting limit, as serde_json does; each
/// level of this needs its quotes escaped again, so a 1 MiB body holds at
/// most about 15 such levels).
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Decodes a JSON Python record in one pass over the body (see the module
/// docs for the bounds).
pub fn decode_json(body: &[u8]) -> Result<(Sender, Record), IngestError> {
    if body.len() > MAX_BODY {
        return Err(IngestError::new(ErrorKind::TooLarge(body.len())));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let top = TopSeed
        .deserialize(&mut de)
        .and_then(|top| de.end().map(|()| top))
        .map_err(|e| IngestError::new(ErrorKind::Syntax(e.to_string())))?;
    match top {
        Some(dict) => dict.into_record(),
        None => Err(IngestError::new(ErrorKind::NotObject)),
    }
}

/// The top-level value: `Some` dict when it is an object, `None` when it is
/// any other (fully parsed) value.
struct TopSeed;

impl<'de> DeserializeSeed<'de> for TopSeed {
    type Value = Option<Dict<'de>>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed {
    type Value = Option<Dict<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // Parsed as values (not skipped) so that it fails exactly where a
        // `serde_json::Value` parse fails; each element's text dropped.
        let mut scratch = Vec::new();
        while seq
            .next_element_seed(TextSeed { out: &mut scratch })?
            .is_some()
        {
            scratch.clear();
        }
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut dict = Dict::default();
        let Some(mut key) = map.next_key_seed(KeySeed)? else {
            return Ok(Some(dict));
        };
        if key == RAW_VALUE_TOKEN {
            let text = map.next_value_seed(RawText)?;
            return Ok(parse_raw(&text, TopSeed)?.map(Dict::into_owned));
        }
        loop {
            let entries = key == "context";
            let v = map.next_value_seed(ValSeed { entries })?;
            dict.set(key, v);
            match map.next_key_seed(KeySeed)? {
                Some(k) => key = k,
                None => return Ok(Some(dict)),
            }
        }
    }
}

/// An object key, borrowed from the body when it had no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

/// Any value: scalars as [`Val`]s, arrays and objects as
/// `serde_json::Value`s, or (`entries`, for `context`) an object as the
/// list of its entries.
#[derive(Clone, Copy)]
struct ValSeed {
    entries: bool,
}

impl<'de> DeserializeSeed<'de> for ValSeed {
    type Value = Val<'de>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValSeed {
    type Value = Val<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Val::Bool(b))
    }

    fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
        Ok(Val::Num(i.into()))
    }

    fn visit_u64<E>(self, u: u64) -> Result<Self::Value, E> {
        Ok(Val::Num(u.into()))
    }

    fn visit_f64<E>(self, f: f64) -> Result<Self::Value, E> {
        // As `serde_json::Value` does: a non-finite float is null.
        Ok(Number::from_f64(f).map_or(Val::Null, Val::Num))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let mut text = Vec::new();
        TextSeed { out: &mut text }.visit_seq(seq)?;
        Ok(Val::Text(into_string(text)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(first) = map.next_key_seed(KeySeed)? else {
            return Ok(if self.entries {
                Val::Entries(Vec::new())
            } else {
                Val::Text("{}".to_owned())
            });
        };
        if first == RAW_VALUE_TOKEN {
            let text = map.next_value_seed(RawText)?;
            return parse_raw(&text, self).map(Val::into_owned);
        }
        if self.entries {
            let scalar = ValSeed { entries: false };
            let mut entries = vec![(first, map.next_value_seed(scalar)?)];
            while let Some(k) = map.next_key_seed(KeySeed)? {
                entries.push((k, map.next_value_seed(scalar)?));
            }
            return Ok(Val::Entries(entries));
        }
        let mut text = Vec::new();
        TextSeed { out: &mut text }.object(first, map)?;
        Ok(Val::Text(into_string(text)))
    }
}

/// Any value, written to `out` as the compact JSON text
/// `serde_json::Value`'s `to_string` gives for it (object keys sorted,
/// the last of a repeated key kept; scalars written by serde_json's own
/// serializer), without building the `Value`. An object's entries are
/// held until it ends (to sort them), each value's text in its own
/// buffer; arrays and scalars go straight to `out`.
struct TextSeed<'o> {
    out: &'o mut Vec<u8>,
}

impl TextSeed<'_> {
    /// Writes a scalar (or a raw value's parsed JSON) as serde_json does.
    fn write<T: serde::Serialize + ?Sized, E: de::Error>(self, v: &T) -> Result<(), E> {
        // Cannot fail: a `Vec` takes every write, and these values always
        // serialize.
        serde_json::to_writer(&mut *self.out, v).map_err(E::custom)
    }

    /// The rest of an object whose first key is `first`.
    fn object<'de, A: MapAccess<'de>>(
        self,
        first: Cow<'de, str>,
        mut map: A,
    ) -> Result<(), A::Error> {
        if first == RAW_VALUE_TOKEN {
            let text = map.next_value_seed(RawText)?;
            return parse_raw(&text, self);
        }
        let mut entries: Vec<(Cow<'de, str>, Vec<u8>)> = Vec::new();
        let mut key = first;
        loop {
            let mut text = Vec::new();
            map.next_value_seed(TextSeed { out: &mut text })?;
            entries.push((key, text));
            match map.next_key_seed(KeySeed)? {
                Some(k) => key = k,
                None => break,
            }
        }
        sort_last_wins(&mut entries);
        self.out.push(b'{');
        for (i, (k, v)) in entries.into_iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            serde_json::to_writer(&mut *self.out, &*k).map_err(de::Error::custom)?;
            self.out.push(b':');
            self.out.extend_from_slice(&v);
        }
        self.out.push(b'}');
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for TextSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<(), E> {
        self.write(&b)
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<(), E> {
        self.write(&i)
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<(), E> {
        self.write(&u)
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<(), E> {
        // As `serde_json::Value` holds it: a non-finite float is null.
        self.write(&Number::from_f64(f))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.write(s)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.write(&())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.push(b'[');
        let mut first = true;
        loop {
            // The comma goes in before the element is known to exist, and
            // comes out again at the end.
            let mark = self.out.len();
            if !first {
                self.out.push(b',');
            }
            if seq
                .next_element_seed(TextSeed {
                    out: &mut *self.out,
                })?
                .is_none()
            {
                self.out.truncate(mark);
                break;
            }
            first = false;
        }
        self.out.push(b']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        match map.next_key_seed(KeySeed)? {
            Some(first) => self.object(first, map),
            None => {
                self.out.extend_from_slice(b"{}");
                Ok(())
            }
        }
    }
}

/// The text a [`TextSeed`] wrote (serde_json's serializer writes UTF-8,
/// so the lossy branch is never taken).
fn into_string(text: Vec<u8>) -> String {
    String::from_utf8(text).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The value of a raw-value object's string `text`, read by `seed`: what
/// serde_json does with it (`serde_json::from_str`, its errors wrapped as
/// the outer parse's), through this module's visitors rather than a
/// `serde_json::Value`, so that the memory bound holds inside it too.
///
/// Each level starts a fresh 128-level nesting limit, so the levels are
/// bounded too: at most [`MAX_RAW_DEPTH`] raw values inside one another
/// (a deeper one is refused as a syntax error), which keeps the whole
/// parse within `(MAX_RAW_DEPTH + 1) * 128` levels of recursion: a worker's
/// 2 MiB stack holds that with room to spare (`nested_raw_values_*` in
/// the tests; without the bound, 12 levels in a 1 MiB body overflowed it).
fn parse_raw<'t, S: DeserializeSeed<'t>, E: de::Error>(
    text: &'t str,
    seed: S,
) -> Result<S::Value, E> {
    let depth = RAW_DEPTH.get();
    if depth >= MAX_RAW_DEPTH {
        return Err(E::custom(format_args!(
            "raw values nested more than {MAX_RAW_DEPTH} deep"
        )));
    }
    RAW_DEPTH.set(depth + 1);
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = seed
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(E::custom);
    RAW_DEPTH.set(depth);
    parsed
}

/// How many raw values may sit inside one another (see [`parse_raw`]).
const MAX_RAW_DEPTH: u32 = 2;

thread_local! {
    /// The raw values being parsed on this thread, one inside another.
    static RAW_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The string of a raw-value object.
struct RawText;

impl<'de> DeserializeSeed<'de> for RawText {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for RawText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("raw value")
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(s.to_owned())
    }
}

#[cfg(test)]
pub(super) mod tests;
