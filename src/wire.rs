//! [`WireEvent`]: a CloudEvent as the codecs read and write it, borrowed where it can be.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use crate::error::{Error, ErrorKind, Result};
use crate::names::{check_absolute_uri, check_extension_name, check_non_empty, check_string};

/// A CloudEvents 1.0 event in the form the codecs read and write.
///
/// Every Kafka message, JSON event and outbox event passes through this type, so each
/// conversion is written once. Strings and JSON data borrow from the bytes they were decoded
/// from when nothing had to be unescaped; [`into_owned`](WireEvent::into_owned) detaches it.
///
/// Invariants, held by every constructor: `id`, `source`, `type` and `subject` are non-empty
/// strings without control characters; `dataschema` is an absolute URI; extension names are
/// valid and sorted, each once; String extension values hold no control characters (the
/// mapping relies on it).
#[derive(Debug, Clone, PartialEq)]
pub struct WireEvent<'a> {
    pub(crate) id: Cow<'a, str>,
    pub(crate) source: Cow<'a, str>,
    pub(crate) ty: Cow<'a, str>,
    pub(crate) datacontenttype: Option<Cow<'a, str>>,
    pub(crate) dataschema: Option<Cow<'a, str>>,
    pub(crate) subject: Option<Cow<'a, str>>,
    pub(crate) time: Option<DateTime<Utc>>,
    pub(crate) extensions: Vec<(Cow<'a, str>, ExtensionValue<'a>)>,
    pub(crate) data: Option<Data<'a>>,
    pub(crate) time_style: TimeStyle,
}

/// How `time` is written. Decoders read every form; only the python-outbox-core profile asks
/// for Python's `isoformat()` form, to reproduce that package's output exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum TimeStyle {
    /// `Z`, fraction digits as needed (0, 3, 6 or 9).
    #[default]
    Canonical,
    /// `+00:00`, 0 or 6 fraction digits (9 when nanoseconds are set).
    Isoformat,
}

/// The value of an extension attribute (CloudEvents 1.0 type system).
///
/// The spec's other types (Binary, URI, URI-reference, Timestamp) travel as their canonical
/// strings today; the enum may grow variants for them.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionValue<'a> {
    /// A String.
    String(Cow<'a, str>),
    /// A Boolean.
    Boolean(bool),
    /// An Integer (the spec's range is that of `i32`).
    Integer(i64),
}

impl ExtensionValue<'_> {
    /// The canonical string form, as binary mode writes it.
    pub fn to_canonical_string(&self) -> Cow<'_, str> {
        match self {
            ExtensionValue::String(s) => Cow::Borrowed(s),
            ExtensionValue::Boolean(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            ExtensionValue::Integer(i) => Cow::Owned(i.to_string()),
        }
    }

    /// The string, when the value is a String.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ExtensionValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Detaches the value from the bytes it borrows.
    pub fn into_owned(self) -> ExtensionValue<'static> {
        match self {
            ExtensionValue::String(s) => ExtensionValue::String(Cow::Owned(s.into_owned())),
            ExtensionValue::Boolean(b) => ExtensionValue::Boolean(b),
            ExtensionValue::Integer(i) => ExtensionValue::Integer(i),
        }
    }
}

/// The data of a CloudEvent, borrowed from the bytes it was decoded from where it can be.
///
/// [`Payload`](crate::Payload) is the owned counterpart an [`OutboxEvent`](crate::OutboxEvent)
/// holds. They are two types because they do two jobs: `Data` is a CloudEvent's data, whose
/// absence is the event's (`Option<Data>` in [`WireEvent::data`]) and which borrows from a
/// message; `Payload` is the payload type `P` of `OutboxEvent<P>`, so it owns its bytes and
/// needs a value for "no data" ([`Payload::Absent`](crate::Payload::Absent)) of its own. They
/// convert both ways ([`Payload::as_data`](crate::Payload::as_data) and `Payload`'s
/// `From<Option<Data>>`) and compare alike: JSON by its text.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum Data<'a> {
    /// A JSON value, kept as its text so key order and number spelling survive.
    Json(Cow<'a, RawValue>),
    /// A string under a non-JSON content type (`data` holding a string in the JSON format).
    Text(Cow<'a, str>),
    /// Bytes (`data_base64` in the JSON format, or a binary-mode value of a non-JSON type).
    Binary(Cow<'a, [u8]>),
}

impl<'a> Data<'a> {
    /// The bytes binary mode writes as the message value.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Data::Json(raw) => raw.get().as_bytes(),
            Data::Text(text) => text.as_bytes(),
            Data::Binary(bytes) => bytes,
        }
    }

    /// The bytes binary mode writes as the message value, without a copy.
    pub fn into_bytes(self) -> Cow<'a, [u8]> {
        match self {
            Data::Json(Cow::Borrowed(raw)) => Cow::Borrowed(raw.get().as_bytes()),
            Data::Json(Cow::Owned(raw)) => {
                Cow::Owned(Box::<str>::from(raw).into_boxed_bytes().into_vec())
            }
            Data::Text(Cow::Borrowed(text)) => Cow::Borrowed(text.as_bytes()),
            Data::Text(Cow::Owned(text)) => Cow::Owned(text.into_bytes()),
            Data::Binary(bytes) => bytes,
        }
    }

    /// Detaches the data from the bytes it borrows.
    pub fn into_owned(self) -> Data<'static> {
        match self {
            Data::Json(raw) => Data::Json(Cow::Owned(raw.into_owned())),
            Data::Text(text) => Data::Text(Cow::Owned(text.into_owned())),
            Data::Binary(bytes) => Data::Binary(Cow::Owned(bytes.into_owned())),
        }
    }
}

impl PartialEq for Data<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Data::Json(a), Data::Json(b)) => a.get() == b.get(),
            (Data::Text(a), Data::Text(b)) => a == b,
            (Data::Binary(a), Data::Binary(b)) => a == b,
            _ => false,
        }
    }
}

/// Whether a content type carries JSON: absent, `*/json` or `*/*+json`, parameters aside
/// (CloudEvents JSON format, section 3.1).
pub(crate) fn is_json_content_type(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return true;
    };
    let media = content_type
        .split_once(';')
        .map_or(content_type, |(media, _)| media)
        .trim();
    let Some((_, subtype)) = media.split_once('/') else {
        return false;
    };
    subtype.eq_ignore_ascii_case("json")
        || subtype
            .len()
            .checked_sub(5)
            .and_then(|plus| subtype.as_bytes().split_at_checked(plus))
            .is_some_and(|(head, tail)| !head.is_empty() && tail.eq_ignore_ascii_case(b"+json"))
}

impl<'a> WireEvent<'a> {
    /// The `id` attribute.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The `source` attribute (a URI-reference).
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The `type` attribute.
    pub fn ty(&self) -> &str {
        &self.ty
    }
    /// The `datacontenttype` attribute.
    pub fn datacontenttype(&self) -> Option<&str> {
        self.datacontenttype.as_deref()
    }
    /// The `dataschema` attribute (an absolute URI).
    pub fn dataschema(&self) -> Option<&str> {
        self.dataschema.as_deref()
    }
    /// The `subject` attribute.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }
    /// The `time` attribute.
    pub fn time(&self) -> Option<&DateTime<Utc>> {
        self.time.as_ref()
    }
    /// The extension attributes, sorted by name.
    pub fn extensions(&self) -> impl ExactSizeIterator<Item = (&str, &ExtensionValue<'a>)> {
        self.extensions.iter().map(|(k, v)| (k.as_ref(), v))
    }
    /// One extension attribute by name.
    pub fn extension(&self, name: &str) -> Option<&ExtensionValue<'a>> {
        let i = self
            .extensions
            .binary_search_by(|(k, _)| k.as_ref().cmp(name))
            .ok()?;
        self.extensions.get(i).map(|(_, v)| v)
    }
    /// The data, when the event carries any.
    pub fn data(&self) -> Option<&Data<'a>> {
        self.data.as_ref()
    }

    /// `time` as the writers write it.
    pub(crate) fn time_stamp(&self) -> Option<crate::time::Stamp> {
        let t = self.time.as_ref()?;
        Some(match self.time_style {
            TimeStyle::Canonical => crate::time::canonical(t),
            TimeStyle::Isoformat => crate::time::isoformat(t),
        })
    }

    /// Detaches the event from the bytes it borrows.
    pub fn into_owned(self) -> WireEvent<'static> {
        let own = |s: Cow<'a, str>| Cow::Owned(s.into_owned());
        WireEvent {
            id: own(self.id),
            source: own(self.source),
            ty: own(self.ty),
            datacontenttype: self.datacontenttype.map(own),
            dataschema: self.dataschema.map(own),
            subject: self.subject.map(own),
            time: self.time,
            extensions: self
                .extensions
                .into_iter()
                .map(|(k, v)| (own(k), v.into_owned()))
                .collect(),
            data: self.data.map(Data::into_owned),
            time_style: self.time_style,
        }
    }

    /// Checks the invariants on attributes set from outside the codecs, and sorts the
    /// extensions. Duplicate extension names are an error.
    pub(crate) fn validate(&mut self) -> Result<()> {
        self.validate_read()?;
        for (name, value) in &self.extensions {
            check_extension_name(name)?;
            check_extension_value(name, value)?;
        }
        Ok(())
    }

    /// [`validate`](Self::validate) for a decoder that has checked each extension's name and
    /// value as it read them.
    pub(crate) fn validate_read(&mut self) -> Result<()> {
        let required = [
            ("id", &self.id),
            ("source", &self.source),
            ("type", &self.ty),
        ];
        for (name, value) in required {
            check_non_empty(value).map_err(|e| e.attribute(name))?;
        }
        if let Some(subject) = &self.subject {
            check_non_empty(subject).map_err(|e| e.attribute("subject"))?;
        }
        if let Some(ct) = &self.datacontenttype {
            check_non_empty(ct).map_err(|e| e.attribute("datacontenttype"))?;
        }
        if let Some(schema) = &self.dataschema {
            check_absolute_uri(schema).map_err(|e| e.attribute("dataschema"))?;
        }
        self.extensions.sort_by(|a, b| a.0.cmp(&b.0));
        for pair in self.extensions.windows(2) {
            if let [(a, _), (b, _)] = pair
                && a == b
            {
                return Err(Error::new(ErrorKind::Duplicate, "extension set twice")
                    .attribute(a.clone().into_owned()));
            }
        }
        Ok(())
    }
}

pub(crate) fn check_extension_value(name: &str, value: &ExtensionValue<'_>) -> Result<()> {
    match value {
        ExtensionValue::String(s) => check_string(s).map_err(|e| e.attribute(name.to_owned())),
        ExtensionValue::Boolean(_) => Ok(()),
        ExtensionValue::Integer(i) if i32::try_from(*i).is_ok() => Ok(()),
        ExtensionValue::Integer(i) => Err(Error::new(
            ErrorKind::Invalid,
            format!("{i} is outside the Integer range of CloudEvents (32-bit signed)"),
        )
        .attribute(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        for yes in [
            None,
            Some("application/json"),
            Some("application/json; charset=utf-8"),
            Some("text/json"),
            Some("application/vnd.gridflow+json"),
            Some("Application/JSON"),
        ] {
            assert!(is_json_content_type(yes), "{yes:?}");
        }
        for no in [
            Some("text/plain"),
            Some("application/octet-stream"),
            Some("application/jsonx"),
            Some("json"),
            Some("application/+jsonp"),
        ] {
            assert!(!is_json_content_type(no), "{no:?}");
        }
    }
}
