//! Outbox event <-> CloudEvent, in two profiles.

use std::borrow::Cow;

use uuid::Uuid;

use crate::error::{Error, ErrorKind, Result, quote};
use crate::event::{DEFAULT_DATA_VERSION, JSON, OutboxEvent, content_type_of, outbox_extension};
use crate::names::{
    EventType, ExtensionName, check_filled, check_non_empty, check_uri_reference, hyphenated,
    parse_uuid,
};
use crate::payload::{FromData, ToData};
use crate::wire::{Data, ExtensionValue, TimeStyle, WireEvent};

/// How an outbox event maps to a CloudEvent.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Profile {
    /// This crate's mapping (see the crate docs): the payload is `data`, the outbox fields
    /// are `aggregateid`, `dataversion`, `correlationid`, `causationid` and `partitionkey`.
    #[default]
    Canonical,
    /// What python-outbox-core's `CloudEventsFormatter` writes: `data` is the whole
    /// `to_message()` object, `subject` is the aggregate id, `correlationid` the one
    /// extension, `time` in Python's `isoformat()` form.
    PythonOutboxCore {
        /// The formatter's `source`; `None` takes each event's own `source`.
        source: Option<String>,
    },
}

impl Profile {
    /// The python-outbox-core profile with each event's own `source`.
    pub fn python_outbox_core() -> Self {
        Profile::PythonOutboxCore { source: None }
    }
}

impl<P: ToData> OutboxEvent<P> {
    /// Maps the event to a CloudEvent in `profile`, borrowing from the event.
    ///
    /// # Errors
    /// [`ErrorKind::Payload`] when the payload cannot be written (for the python-outbox-core
    /// profile, also when it is not a JSON object).
    pub fn to_wire(&self, profile: &Profile) -> Result<WireEvent<'_>> {
        match profile {
            Profile::Canonical => self.to_canonical(),
            Profile::PythonOutboxCore { source } => self.to_python(source.as_deref()),
        }
    }

    fn extras(&self) -> impl Iterator<Item = (Cow<'_, str>, ExtensionValue<'_>)> {
        self.extensions
            .iter()
            .map(|(k, v)| (Cow::Borrowed(k.as_str()), borrow_value(v)))
    }

    fn to_canonical(&self) -> Result<WireEvent<'_>> {
        let string = |id: Uuid| ExtensionValue::String(Cow::Owned(hyphenated(id)));
        let mut extensions = Vec::with_capacity(5 + self.extensions.len());
        extensions.push((
            Cow::Borrowed("aggregateid"),
            ExtensionValue::String(Cow::Borrowed(&self.aggregate_id)),
        ));
        if let Some(id) = self.causation_id {
            extensions.push((Cow::Borrowed("causationid"), string(id)));
        }
        if let Some(id) = self.correlation_id {
            extensions.push((Cow::Borrowed("correlationid"), string(id)));
        }
        extensions.push((
            Cow::Borrowed("dataversion"),
            ExtensionValue::String(Cow::Borrowed(&self.data_version)),
        ));
        extensions.push((
            Cow::Borrowed("partitionkey"),
            ExtensionValue::String(Cow::Borrowed(self.partition_key())),
        ));
        if !self.extensions.is_empty() {
            extensions.extend(self.extras());
            extensions.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(WireEvent {
            id: Cow::Owned(hyphenated(self.event_id)),
            source: Cow::Borrowed(&self.source),
            ty: Cow::Borrowed(self.event_type.as_str()),
            datacontenttype: self.content_type.as_deref().map(Cow::Borrowed),
            dataschema: self.dataschema.as_deref().map(Cow::Borrowed),
            subject: self.subject.as_deref().map(Cow::Borrowed),
            time: Some(self.occurred_at),
            extensions,
            data: self.payload.to_data()?,
            time_style: TimeStyle::Canonical,
        })
    }

    fn to_python(&self, source: Option<&str>) -> Result<WireEvent<'_>> {
        let message = self.to_message_json()?;
        let message =
            serde_json::value::RawValue::from_string(String::from_utf8(message).map_err(|e| {
                Error::new(ErrorKind::NotUtf8, "to_message() JSON is not UTF-8").caused_by(e)
            })?)
            .map_err(|e| Error::new(ErrorKind::Json, "to_message() JSON").caused_by(e))?;
        let mut extensions: Vec<_> = self.extras().collect();
        if let Some(id) = self.correlation_id {
            extensions.push((
                Cow::Borrowed("correlationid"),
                ExtensionValue::String(Cow::Owned(hyphenated(id))),
            ));
            extensions.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let source = match source {
            Some(s) => {
                check_non_empty(s).map_err(|e| e.attribute("source"))?;
                Cow::Owned(s.to_owned())
            }
            None => Cow::Borrowed(self.source.as_str()),
        };
        Ok(WireEvent {
            id: Cow::Owned(hyphenated(self.event_id)),
            source,
            ty: Cow::Borrowed(self.event_type.as_str()),
            datacontenttype: Some(Cow::Borrowed(JSON)),
            dataschema: self.dataschema.as_deref().map(Cow::Borrowed),
            subject: Some(Cow::Borrowed(&self.aggregate_id)),
            time: Some(self.occurred_at),
            extensions,
            data: Some(Data::Json(Cow::Owned(message))),
            time_style: TimeStyle::Isoformat,
        })
    }
}

fn borrow_value<'a>(value: &'a ExtensionValue<'_>) -> ExtensionValue<'a> {
    match value {
        ExtensionValue::String(s) => ExtensionValue::String(Cow::Borrowed(s)),
        ExtensionValue::Boolean(b) => ExtensionValue::Boolean(*b),
        ExtensionValue::Integer(i) => ExtensionValue::Integer(*i),
    }
}

fn string_extension<'a>(name: &'static str, value: ExtensionValue<'a>) -> Result<Cow<'a, str>> {
    match value {
        ExtensionValue::String(s) => Ok(s),
        _ => Err(Error::new(ErrorKind::Invalid, "must be a string").attribute(name)),
    }
}

impl<P: FromData> OutboxEvent<P> {
    /// Reads an outbox event from a CloudEvent written in `profile`.
    ///
    /// Canonical: `id` must be a UUID, `type` reverse-DNS, `time` and the `aggregateid`
    /// extension present; an absent `dataversion` reads as `"1.0"`, an absent
    /// `partitionkey` as the aggregate id. python-outbox-core: `data` must be its
    /// `to_message()` object, whose `event_id` and `event_type` must agree with `id` and
    /// `type`. Everything else the CloudEvent carries is kept on the outbox event.
    ///
    /// # Errors
    /// [`ErrorKind::Missing`] and [`ErrorKind::Invalid`] naming the attribute;
    /// [`ErrorKind::Payload`] when the data does not match `P`.
    pub fn from_wire(event: WireEvent<'_>, profile: &Profile) -> Result<Self> {
        match profile {
            Profile::Canonical => Self::from_canonical(event),
            Profile::PythonOutboxCore { .. } => Self::from_python(event),
        }
    }

    fn from_canonical(event: WireEvent<'_>) -> Result<Self> {
        let event_id = parse_uuid(&event.id).map_err(|e| e.attribute("id"))?;
        let event_type = EventType::new(event.ty.as_ref()).map_err(|e| e.attribute("type"))?;
        check_uri_reference(&event.source).map_err(|e| e.attribute("source"))?;
        let occurred_at = event.time.ok_or_else(|| {
            Error::new(ErrorKind::Missing, "an outbox event needs a time").attribute("time")
        })?;
        let mut aggregate_id = None;
        let mut data_version = None;
        let mut correlation_id = None;
        let mut causation_id = None;
        let mut partition_key = None;
        let mut extensions = std::collections::BTreeMap::new();
        for (name, value) in event.extensions {
            match outbox_extension(name.as_bytes()) {
                Some(known) => {
                    let text = string_extension(known, value)?;
                    match known {
                        "aggregateid" => aggregate_id = Some(text),
                        "dataversion" => data_version = Some(text),
                        "partitionkey" => partition_key = Some(text),
                        "correlationid" => {
                            correlation_id =
                                Some(parse_uuid(&text).map_err(|e| e.attribute(known))?)
                        }
                        _ => {
                            causation_id = Some(parse_uuid(&text).map_err(|e| e.attribute(known))?)
                        }
                    }
                }
                None => {
                    extensions.insert(ExtensionName(name.into_owned()), value.into_owned());
                }
            }
        }
        let aggregate_id = aggregate_id
            .ok_or_else(|| {
                Error::new(ErrorKind::Missing, "an outbox event needs an aggregate id")
                    .attribute("aggregateid")
            })?
            .into_owned();
        // A `WireEvent`'s String extensions hold no control character (its invariant), so
        // only emptiness is left to check.
        check_filled(&aggregate_id).map_err(|e| e.attribute("aggregateid"))?;
        let data_version =
            data_version.map_or_else(|| DEFAULT_DATA_VERSION.to_owned(), Cow::into_owned);
        check_filled(&data_version).map_err(|e| e.attribute("dataversion"))?;
        let partition_key = partition_key
            .filter(|key| *key != aggregate_id)
            .map(Cow::into_owned);
        Ok(OutboxEvent {
            event_id,
            event_type,
            aggregate_id,
            occurred_at,
            source: event.source.into_owned(),
            data_version,
            correlation_id,
            causation_id,
            partition_key,
            payload: P::from_data(event.data)?,
            content_type: event.datacontenttype.map(content_type_of),
            subject: event.subject.map(Cow::into_owned),
            dataschema: event.dataschema.map(Cow::into_owned),
            extensions,
        })
    }

    fn from_python(event: WireEvent<'_>) -> Result<Self> {
        let Some(Data::Json(message)) = &event.data else {
            return Err(Error::new(
                ErrorKind::Invalid,
                "python-outbox-core puts the to_message() object in `data`; this event has none",
            )
            .attribute("data"));
        };
        let mut outbox = Self::from_message_json(message.get().as_bytes())
            .map_err(|e| e.or_at(crate::error::Location::Attribute("data".into())))?;
        if hyphenated(outbox.event_id) != event.id.to_ascii_lowercase() {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("{} differs from `event_id` in `data`", quote(&event.id)),
            )
            .attribute("id"));
        }
        if outbox.event_type.as_str() != event.ty {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("{} differs from `event_type` in `data`", quote(&event.ty)),
            )
            .attribute("type"));
        }
        for (name, value) in event.extensions {
            if name == "correlationid" {
                let text = string_extension("correlationid", value)?;
                let id = parse_uuid(&text).map_err(|e| e.attribute("correlationid"))?;
                if outbox.correlation_id != Some(id) {
                    return Err(Error::new(
                        ErrorKind::Invalid,
                        "differs from `correlation_id` in `data`",
                    )
                    .attribute("correlationid"));
                }
            } else {
                outbox
                    .extensions
                    .insert(ExtensionName(name.into_owned()), value.into_owned());
            }
        }
        if let Some(schema) = event.dataschema {
            outbox.dataschema = Some(schema.into_owned());
        }
        Ok(outbox)
    }
}
