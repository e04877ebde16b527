//! Payloads: typed (any serde type) or raw, and how each becomes CloudEvents data.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::error::{Error, ErrorKind, Result};
use crate::wire::Data;

/// A payload kept exactly as it arrived: JSON text byte for byte, or bytes of another type.
///
/// This is the default payload of [`OutboxEvent`](crate::OutboxEvent); use a serde type
/// instead (`OutboxEvent<InviteCreated>`) to work with typed domain data.
///
/// It is the owned form of [`Data`], plus [`Payload::Absent`]: see [`Data`] for why the two
/// are separate types. Equality is [`Data`]'s: JSON compares by its text.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum Payload {
    /// JSON, kept as its text so key order, white space inside and number spelling survive.
    Json(Box<RawValue>),
    /// A string under a non-JSON content type.
    Text(String),
    /// Bytes under a non-JSON content type.
    Binary(Vec<u8>),
    /// The event carries no data.
    Absent,
}

impl Payload {
    /// Parses `json` into a JSON payload, keeping its text.
    ///
    /// # Errors
    /// [`ErrorKind::Json`] when `json` is not one JSON value.
    pub fn from_json(json: impl Into<String>) -> Result<Self> {
        RawValue::from_string(json.into())
            .map(Payload::Json)
            .map_err(|e| Error::new(ErrorKind::Json, "payload is not JSON").caused_by(e))
    }

    /// The payload as CloudEvents data, borrowed; `None` when absent.
    pub fn as_data(&self) -> Option<Data<'_>> {
        match self {
            Payload::Json(raw) => Some(Data::Json(Cow::Borrowed(raw))),
            Payload::Text(text) => Some(Data::Text(Cow::Borrowed(text))),
            Payload::Binary(bytes) => Some(Data::Binary(Cow::Borrowed(bytes))),
            Payload::Absent => None,
        }
    }

    /// The JSON text, when the payload is JSON.
    pub fn as_json(&self) -> Option<&str> {
        match self {
            Payload::Json(raw) => Some(raw.get()),
            _ => None,
        }
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.as_data() == other.as_data()
    }
}

impl From<Option<Data<'_>>> for Payload {
    /// Owns the data; `None` is [`Payload::Absent`].
    fn from(data: Option<Data<'_>>) -> Self {
        match data {
            Some(Data::Json(raw)) => Payload::Json(raw.into_owned()),
            Some(Data::Text(text)) => Payload::Text(text.into_owned()),
            Some(Data::Binary(bytes)) => Payload::Binary(bytes.into_owned()),
            None => Payload::Absent,
        }
    }
}

/// A payload that can be written as CloudEvents data.
///
/// Implemented for every [`Serialize`] type (as JSON) and for [`Payload`].
pub trait ToData {
    /// The data for this payload, or `None` for an event without data.
    ///
    /// # Errors
    /// [`ErrorKind::Payload`] when the payload cannot be serialized.
    fn to_data(&self) -> Result<Option<Data<'_>>>;
}

/// A payload that can be read from CloudEvents data.
///
/// Implemented for every [`DeserializeOwned`] type (from JSON) and for [`Payload`].
pub trait FromData: Sized {
    /// Reads the payload from the event's data.
    ///
    /// # Errors
    /// [`ErrorKind::Payload`] when the data does not match the type, [`ErrorKind::Missing`]
    /// when a typed payload meets an event without data.
    fn from_data(data: Option<Data<'_>>) -> Result<Self>;
}

impl<T: Serialize> ToData for T {
    fn to_data(&self) -> Result<Option<Data<'_>>> {
        let raw = serde_json::value::to_raw_value(self).map_err(|e| {
            Error::new(ErrorKind::Payload, "payload cannot be written as JSON")
                .attribute("data")
                .caused_by(e)
        })?;
        Ok(Some(Data::Json(Cow::Owned(raw))))
    }
}

impl<T: DeserializeOwned> FromData for T {
    fn from_data(data: Option<Data<'_>>) -> Result<Self> {
        let mismatch = |e: serde_json::Error| {
            Error::new(
                ErrorKind::Payload,
                format!(
                    "data does not match the payload type `{}`",
                    std::any::type_name::<T>()
                ),
            )
            .attribute("data")
            .caused_by(e)
        };
        match data {
            Some(Data::Json(raw)) => serde_json::from_str(raw.get()).map_err(mismatch),
            Some(Data::Text(text)) => {
                serde_json::from_value(serde_json::Value::String(text.into_owned()))
                    .map_err(mismatch)
            }
            Some(Data::Binary(bytes)) => serde_json::from_slice(&bytes).map_err(mismatch),
            None => Err(Error::new(
                ErrorKind::Missing,
                "the event carries no data for the typed payload",
            )
            .attribute("data")),
        }
    }
}

impl ToData for Payload {
    fn to_data(&self) -> Result<Option<Data<'_>>> {
        Ok(self.as_data())
    }
}

impl FromData for Payload {
    fn from_data(data: Option<Data<'_>>) -> Result<Self> {
        Ok(Payload::from(data))
    }
}
