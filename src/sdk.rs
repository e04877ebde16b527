//! Conversions to and from `cloudevents::Event` (crate `cloudevents-sdk`).

use std::borrow::Cow;

use cloudevents::event::{
    AttributesWriter, Data as SdkData, ExtensionValue as SdkValue, SpecVersion,
};
use cloudevents::{AttributesReader, Event, EventBuilder, EventBuilderV10};

use crate::error::{Error, ErrorKind, Result};
use crate::event::OutboxEvent;
use crate::mapping::Profile;
use crate::payload::{FromData, ToData};
use crate::wire::{Data, ExtensionValue, TimeStyle, WireEvent};

impl<'a> TryFrom<&'a Event> for WireEvent<'a> {
    type Error = Error;

    /// Borrows the event's attributes; JSON data is written out as text, with key order kept.
    /// Extensions are sorted by name (the SDK keeps them in a hash map).
    fn try_from(event: &'a Event) -> Result<Self> {
        if event.specversion() != SpecVersion::V10 {
            return Err(Error::new(
                ErrorKind::SpecVersion,
                format!(
                    "`{}` is not supported; only CloudEvents 1.0 is",
                    event.specversion()
                ),
            )
            .attribute("specversion"));
        }
        let data = match event.data() {
            None => None,
            Some(SdkData::Json(value)) => Some(Data::Json(Cow::Owned(
                serde_json::value::to_raw_value(value).map_err(|e| {
                    Error::new(ErrorKind::Json, "data cannot be written as JSON")
                        .attribute("data")
                        .caused_by(e)
                })?,
            ))),
            Some(SdkData::String(text)) => Some(Data::Text(Cow::Borrowed(text))),
            Some(SdkData::Binary(bytes)) => Some(Data::Binary(Cow::Borrowed(bytes))),
        };
        let mut wire = WireEvent {
            id: Cow::Borrowed(event.id()),
            source: Cow::Borrowed(event.source()),
            ty: Cow::Borrowed(event.ty()),
            datacontenttype: event.datacontenttype().map(Cow::Borrowed),
            dataschema: event.dataschema().map(|u| Cow::Borrowed(u.as_str())),
            subject: event.subject().map(Cow::Borrowed),
            time: event.time().copied(),
            extensions: event
                .iter_extensions()
                .map(|(name, value)| {
                    let value = match value {
                        SdkValue::String(s) => ExtensionValue::String(Cow::Borrowed(s)),
                        SdkValue::Boolean(b) => ExtensionValue::Boolean(*b),
                        SdkValue::Integer(i) => ExtensionValue::Integer(*i),
                    };
                    (Cow::Borrowed(name), value)
                })
                .collect(),
            data,
            time_style: TimeStyle::Canonical,
        };
        wire.validate()?;
        Ok(wire)
    }
}

impl TryFrom<WireEvent<'_>> for Event {
    type Error = Error;

    /// Builds the SDK's event. JSON data becomes a `serde_json::Value` (key order kept;
    /// integers beyond 64 bits become floats unless serde_json's `arbitrary_precision`
    /// feature is on). `dataschema` is parsed as a URL, which may normalise its spelling.
    fn try_from(wire: WireEvent<'_>) -> Result<Self> {
        let sdk_error = |e: cloudevents::event::EventBuilderError| {
            Error::new(ErrorKind::Invalid, "cloudevents-sdk refused the event").caused_by(e)
        };
        let mut builder = EventBuilderV10::new()
            .id(wire.id.into_owned())
            .source(wire.source.into_owned())
            .ty(wire.ty.into_owned());
        if let Some(time) = wire.time {
            builder = builder.time(time);
        }
        if let Some(subject) = wire.subject {
            builder = builder.subject(subject.into_owned());
        }
        for (name, value) in wire.extensions {
            builder = match value {
                ExtensionValue::String(s) => builder.extension(&name, s.into_owned()),
                ExtensionValue::Boolean(b) => builder.extension(&name, b),
                ExtensionValue::Integer(i) => builder.extension(&name, i),
            };
        }
        let mut event = builder.build().map_err(sdk_error)?;
        if let Some(data) = wire.data {
            let data = match data {
                Data::Json(raw) => SdkData::Json(serde_json::from_str(raw.get()).map_err(|e| {
                    Error::new(ErrorKind::Json, "data is not JSON")
                        .attribute("data")
                        .caused_by(e)
                })?),
                Data::Text(text) => SdkData::String(text.into_owned()),
                Data::Binary(bytes) => SdkData::Binary(bytes.into_owned()),
            };
            event.set_data_unchecked(data);
        }
        event.set_datacontenttype(wire.datacontenttype.map(Cow::into_owned));
        if let Some(schema) = wire.dataschema {
            let url = url::Url::parse(&schema).map_err(|e| {
                Error::new(ErrorKind::Invalid, "not an absolute URI")
                    .attribute("dataschema")
                    .caused_by(e)
            })?;
            event.set_dataschema(Some(url));
        }
        Ok(event)
    }
}

impl<P: ToData> OutboxEvent<P> {
    /// Maps the event to a `cloudevents::Event` in `profile`.
    ///
    /// # Errors
    /// As [`OutboxEvent::to_wire`].
    pub fn to_cloudevent(&self, profile: &Profile) -> Result<Event> {
        Event::try_from(self.to_wire(profile)?)
    }
}

impl<P: FromData> OutboxEvent<P> {
    /// Reads an outbox event from a `cloudevents::Event` written in `profile`.
    ///
    /// # Errors
    /// As [`OutboxEvent::from_wire`], and for an event that breaks the CloudEvents rules
    /// (an empty `id`, an illegal extension name, ...).
    pub fn from_cloudevent(event: &Event, profile: &Profile) -> Result<Self> {
        OutboxEvent::from_wire(WireEvent::try_from(event)?, profile)
    }
}

impl<P: ToData> TryFrom<&OutboxEvent<P>> for Event {
    type Error = Error;
    /// The canonical mapping; see [`OutboxEvent::to_cloudevent`] for the other profile.
    fn try_from(event: &OutboxEvent<P>) -> Result<Self> {
        event.to_cloudevent(&Profile::Canonical)
    }
}

impl<P: ToData> TryFrom<OutboxEvent<P>> for Event {
    type Error = Error;
    /// The canonical mapping; see [`OutboxEvent::to_cloudevent`] for the other profile.
    fn try_from(event: OutboxEvent<P>) -> Result<Self> {
        event.to_cloudevent(&Profile::Canonical)
    }
}

impl<P: FromData> TryFrom<&Event> for OutboxEvent<P> {
    type Error = Error;
    /// The canonical mapping; see [`OutboxEvent::from_cloudevent`] for the other profile.
    fn try_from(event: &Event) -> Result<Self> {
        OutboxEvent::from_cloudevent(event, &Profile::Canonical)
    }
}

impl<P: FromData> TryFrom<Event> for OutboxEvent<P> {
    type Error = Error;
    /// The canonical mapping; see [`OutboxEvent::from_cloudevent`] for the other profile.
    fn try_from(event: Event) -> Result<Self> {
        OutboxEvent::from_cloudevent(&event, &Profile::Canonical)
    }
}
