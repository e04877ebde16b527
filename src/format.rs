//! The CloudEvents JSON event format (`application/cloudevents+json`), read and written in one
//! pass without an intermediate `serde_json::Value`.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::{self, Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{Error, ErrorKind, Result, quote};
use crate::escape::write_str;
use crate::names::{check_extension_name, reserved_index};
use crate::time;
use crate::wire::{
    Data, ExtensionValue, TimeStyle, WireEvent, check_extension_value, is_json_content_type,
};

impl<'a> WireEvent<'a> {
    /// Reads an event in the JSON event format, borrowing from `json` where it can.
    ///
    /// Members set to `null` count as absent. Extension values must be strings, booleans or
    /// 32-bit integers.
    ///
    /// # Errors
    /// [`ErrorKind::Json`] for bytes that are not one JSON object, [`ErrorKind::SpecVersion`]
    /// for a `specversion` other than `1.0`, [`ErrorKind::Missing`] for an absent required
    /// attribute, [`ErrorKind::Duplicate`] for a member given twice,
    /// [`ErrorKind::ConflictingData`] for `data` with `data_base64`, and the errors of each
    /// attribute's own checks.
    pub fn from_json(json: &'a [u8]) -> Result<Self> {
        Self::from_json_with(json, true)
    }

    /// [`from_json`](Self::from_json); `time` without an offset reads as UTC only when
    /// `time_without_offset` allows it.
    pub(crate) fn from_json_with(json: &'a [u8], time_without_offset: bool) -> Result<Self> {
        // Text that is UTF-8 as a whole is read as a `str`, so serde_json checks no string
        // of it again (per event, one check of the whole instead of one per string). Other
        // bytes are read as bytes, so that serde_json's error points at the broken string.
        let fields = match std::str::from_utf8(json) {
            Ok(text) => read_fields(serde_json::Deserializer::from_str(text), json)?,
            Err(_) => read_fields(serde_json::Deserializer::from_slice(json), json)?,
        };
        fields.finish(time_without_offset)
    }

    /// Writes the event in the JSON event format: members in a fixed order (`specversion`,
    /// `id`, `source`, `type`, `datacontenttype`, `dataschema`, `subject`, `time`, the
    /// extensions by name, then `data` or `data_base64`), no white space.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.json_len_hint());
        self.write_json(&mut out);
        out
    }

    pub(crate) fn json_len_hint(&self) -> usize {
        160 + self.id.len()
            + self.source.len()
            + self.ty.len()
            + self
                .extensions
                .iter()
                .map(|(k, _)| k.len() + 48)
                .sum::<usize>()
            + self
                .data
                .as_ref()
                .map_or(0, |d| d.as_bytes().len() * 4 / 3 + 16)
    }

    // Written by hand because it pays: W2 (a realistic event to a structured message) takes
    // 6,000 instructions with this writer, serde_json writing a plain struct of the same
    // members 9,560 (callgrind), and the bench's interleaved times are 1.8x apart.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"specversion":"1.0","id":"#);
        write_str(out, &self.id);
        out.extend_from_slice(br#","source":"#);
        write_str(out, &self.source);
        out.extend_from_slice(br#","type":"#);
        write_str(out, &self.ty);
        let optional = [
            ("datacontenttype", &self.datacontenttype),
            ("dataschema", &self.dataschema),
            ("subject", &self.subject),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                write_member(out, name);
                write_str(out, value);
            }
        }
        if let Some(stamp) = self.time_stamp() {
            write_member(out, "time");
            out.push(b'"');
            out.extend_from_slice(stamp.as_bytes());
            out.push(b'"');
        }
        for (name, value) in &self.extensions {
            write_member(out, name);
            match value {
                ExtensionValue::String(s) => write_str(out, s),
                ExtensionValue::Boolean(b) => {
                    out.extend_from_slice(if *b { b"true" } else { b"false" })
                }
                // Into the buffer, not through a `String`; writing into a Vec cannot fail.
                ExtensionValue::Integer(i) => {
                    let _ = serde_json::to_writer(&mut *out, i);
                }
            }
        }
        match &self.data {
            None => {}
            Some(Data::Json(raw)) => {
                write_member(out, "data");
                out.extend_from_slice(raw.get().as_bytes());
            }
            Some(Data::Text(text)) => {
                write_member(out, "data");
                write_str(out, text);
            }
            Some(Data::Binary(bytes)) => {
                write_member(out, "data_base64");
                out.push(b'"');
                // Encoded in place into room for the padded length; should the room ever be
                // short, through a string instead.
                let start = out.len();
                out.resize(start + bytes.len().div_ceil(3) * 4, 0);
                let written = out
                    .get_mut(start..)
                    .and_then(|room| BASE64.encode_slice(bytes, room).ok());
                match written {
                    Some(written) => out.truncate(start + written),
                    None => {
                        out.truncate(start);
                        out.extend_from_slice(BASE64.encode(bytes).as_bytes());
                    }
                }
                out.push(b'"');
            }
        }
        out.push(b'}');
    }
}

/// Writes `,"name":`; names are plain ASCII and need no escaping.
fn write_member(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// A string that borrows from the input when it holds no escapes.
pub(crate) struct Str<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> de::Deserialize<'de> for Str<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<Str<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// One member value as the attribute readers see it.
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(Cow<'a, str>),
    /// A number that is not a 64-bit integer, as serde_json's `arbitrary_precision` hands
    /// it over: its JSON text.
    Number(Cow<'a, str>),
    /// Any other JSON value, named by its kind.
    Other(&'static str),
}

/// The member name under which serde_json's `arbitrary_precision` passes a number that is
/// not a 64-bit integer to `visit_map`. The feature may be on for the whole build through
/// another crate, so it is looked for whatever this crate's features are.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

impl Scalar<'_> {
    pub(crate) fn kind(&self) -> Cow<'static, str> {
        match self {
            Scalar::Null => "null".into(),
            Scalar::Bool(_) => "a boolean".into(),
            Scalar::Int(_) => "an integer".into(),
            Scalar::Str(_) => "a string".into(),
            Scalar::Number(text) => format!("the number {}", quote(text)).into(),
            Scalar::Other(kind) => (*kind).into(),
        }
    }
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(
                    i64::try_from(v)
                        .map_or(Scalar::Other("an integer beyond 64 bits"), Scalar::Int),
                )
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Other("a fractional number"))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                match map.next_key::<Str<'de>>()? {
                    Some(Str(key)) if key == NUMBER_TOKEN => {
                        let Str(text) = map.next_value::<Str<'de>>()?;
                        return Ok(Scalar::Number(text));
                    }
                    Some(_) => {
                        map.next_value::<IgnoredAny>()?;
                    }
                    None => {}
                }
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("an object"))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("an array"))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a string member; `null` is absent. The error names no member: the caller knows
/// whether it is an attribute or a field.
pub(crate) fn scalar_str(value: Scalar<'_>) -> Result<Option<Cow<'_, str>>> {
    match value {
        Scalar::Null => Ok(None),
        Scalar::Str(s) => Ok(Some(s)),
        other => Err(Error::new(
            ErrorKind::Invalid,
            format!("must be a string, not {}", other.kind()),
        )),
    }
}

#[derive(Default)]
struct Fields<'a> {
    specversion: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    source: Option<Cow<'a, str>>,
    ty: Option<Cow<'a, str>>,
    datacontenttype: Option<Cow<'a, str>>,
    dataschema: Option<Cow<'a, str>>,
    subject: Option<Cow<'a, str>>,
    time: Option<Cow<'a, str>>,
    extensions: Vec<(Cow<'a, str>, ExtensionValue<'a>)>,
    data: Option<&'a RawValue>,
    data_base64: Option<Cow<'a, str>>,
    seen: u16,
}

struct EventVisitor<'e> {
    error: &'e mut Option<Error>,
}

impl<'de> Visitor<'de> for EventVisitor<'_> {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Fields::default();
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            if self.error.is_some() {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let result = match reserved_index(&key) {
                // One bit per core member, by its `reserved_index`, to find duplicates.
                Some(index) if fields.seen & (1 << index) != 0 => {
                    map.next_value::<IgnoredAny>()?;
                    Err(Error::new(ErrorKind::Duplicate, "member given twice")
                        .attribute(key.into_owned()))
                }
                Some(index) => {
                    fields.seen |= 1 << index;
                    if key == "data" {
                        fields.data = Some(map.next_value::<&'de RawValue>()?);
                        Ok(())
                    } else {
                        let value = map.next_value::<Scalar<'de>>()?;
                        fields.set(&key, value)
                    }
                }
                None => {
                    let value = map.next_value::<Scalar<'de>>()?;
                    fields.extension(key, value)
                }
            };
            if let Err(e) = result {
                *self.error = Some(e);
            }
        }
        Ok(fields)
    }
}

impl<'a> Fields<'a> {
    /// Sets the string attribute `name`, a core attribute other than `data`.
    fn set(&mut self, name: &str, value: Scalar<'a>) -> Result<()> {
        let slot = match name {
            "specversion" => &mut self.specversion,
            "id" => &mut self.id,
            "source" => &mut self.source,
            "type" => &mut self.ty,
            "datacontenttype" => &mut self.datacontenttype,
            "dataschema" => &mut self.dataschema,
            "subject" => &mut self.subject,
            "time" => &mut self.time,
            "data_base64" => &mut self.data_base64,
            _ => {
                return Err(Error::new(
                    ErrorKind::Invalid,
                    "is not a string attribute of the JSON event format",
                )
                .attribute(name.to_owned()));
            }
        };
        *slot = scalar_str(value).map_err(|e| e.attribute(name.to_owned()))?;
        Ok(())
    }

    fn extension(&mut self, name: Cow<'a, str>, value: Scalar<'a>) -> Result<()> {
        check_extension_name(&name)?;
        let value = match value {
            Scalar::Null => return Ok(()),
            Scalar::Str(s) => ExtensionValue::String(s),
            Scalar::Bool(b) => ExtensionValue::Boolean(b),
            Scalar::Int(i) => ExtensionValue::Integer(i),
            other @ (Scalar::Number(_) | Scalar::Other(_)) => {
                return Err(Error::new(
                    ErrorKind::Invalid,
                    format!(
                        "an extension must be a string, boolean or integer, not {}",
                        other.kind()
                    ),
                )
                .attribute(name.into_owned()));
            }
        };
        check_extension_value(&name, &value)?;
        if self.extensions.capacity() == 0 {
            // An outbox event has three to five extensions: one allocation for most events.
            self.extensions.reserve_exact(8);
        }
        self.extensions.push((name, value));
        Ok(())
    }

    fn finish(self, time_without_offset: bool) -> Result<WireEvent<'a>> {
        let specversion = required("specversion", self.specversion)?;
        check_specversion(&specversion)?;
        let time = match self.time {
            Some(t) => Some(time::parse(&t, time_without_offset).map_err(|e| e.attribute("time"))?),
            None => None,
        };
        let data = match (self.data, self.data_base64) {
            (Some(_), Some(_)) => {
                return Err(Error::new(
                    ErrorKind::ConflictingData,
                    "`data` and `data_base64` are both present; an event has one or neither",
                )
                .attribute("data"));
            }
            (None, Some(b64)) => Some(Data::Binary(Cow::Owned(
                BASE64.decode(b64.as_bytes()).map_err(|e| {
                    Error::new(ErrorKind::Invalid, "not valid base64")
                        .attribute("data_base64")
                        .caused_by(e)
                })?,
            ))),
            (Some(raw), None) => Some(json_data(raw, self.datacontenttype.as_deref())?),
            (None, None) => None,
        };
        let mut event = WireEvent {
            id: required("id", self.id)?,
            source: required("source", self.source)?,
            ty: required("type", self.ty)?,
            datacontenttype: self.datacontenttype,
            dataschema: self.dataschema,
            subject: self.subject,
            time,
            extensions: self.extensions,
            data,
            time_style: TimeStyle::Canonical,
        };
        event.validate_read()?;
        Ok(event)
    }
}

/// The members of an event in the JSON event format, as read by `de` from `json`.
fn read_fields<'a, R: serde_json::de::Read<'a>>(
    mut de: serde_json::Deserializer<R>,
    json: &[u8],
) -> Result<Fields<'a>> {
    let mut error = None;
    let parsed = de.deserialize_map(EventVisitor { error: &mut error });
    if let Some(error) = error {
        return Err(error);
    }
    parsed.and_then(|f| de.end().map(|()| f)).map_err(|e| {
        Error::new(ErrorKind::Json, "not a CloudEvent in the JSON event format")
            .reading_json(json)
            .caused_by(e)
    })
}

/// `data` under a JSON content type is JSON; under any other type a string is the text and
/// any other value is kept as JSON (JSON event format, section 3.1).
fn json_data<'a>(raw: &'a RawValue, content_type: Option<&str>) -> Result<Data<'a>> {
    if raw.get().starts_with('"') && !is_json_content_type(content_type) {
        let Str(text) = serde_json::from_str::<Str<'a>>(raw.get()).map_err(|e| {
            Error::new(ErrorKind::Json, "not a JSON string")
                .attribute("data")
                .caused_by(e)
        })?;
        return Ok(Data::Text(text));
    }
    Ok(Data::Json(Cow::Borrowed(raw)))
}

pub(crate) fn required<'a>(
    name: &'static str,
    value: Option<Cow<'a, str>>,
) -> Result<Cow<'a, str>> {
    value.ok_or_else(|| {
        Error::new(ErrorKind::Missing, "required attribute is absent").attribute(name)
    })
}

pub(crate) fn check_specversion(value: &str) -> Result<()> {
    if value == "1.0" {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::SpecVersion,
            format!("{} is not supported; only CloudEvents 1.0 is", quote(value)),
        )
        .attribute("specversion"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_when_nothing_is_escaped() {
        let json = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"a":1}}"#;
        let event = WireEvent::from_json(json).unwrap();
        assert!(matches!(event.id, Cow::Borrowed(_)));
        assert!(matches!(event.data, Some(Data::Json(Cow::Borrowed(_)))));
        assert_eq!(event.to_json(), json.to_vec());
    }

    #[test]
    fn text_and_binary_data() {
        let json = br#"{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"text/plain","data":"h\u00e9"}"#;
        let event = WireEvent::from_json(json).unwrap();
        assert_eq!(event.data, Some(Data::Text(Cow::Borrowed("hé"))));
        let json =
            br#"{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"/wA="}"#;
        let event = WireEvent::from_json(json).unwrap();
        assert_eq!(event.data, Some(Data::Binary(Cow::Borrowed(&[0xff, 0]))));
        assert_eq!(event.to_json(), json.to_vec());
    }
}
