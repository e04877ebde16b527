//! [`OutboxEvent`]: python-outbox-core's `IOutboxEvent`, in Rust.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, ErrorKind, Result};
use crate::names::{
    EventType, ExtensionName, check_absolute_uri, check_non_empty, check_string,
    check_uri_reference,
};
use crate::payload::Payload;
use crate::wire::{ExtensionValue, check_extension_value};

/// The default `data_version` (python-outbox-core's default).
pub const DEFAULT_DATA_VERSION: &str = "1.0";

/// The default `datacontenttype` of an outbox event's payload.
pub const JSON: &str = "application/json";

/// The extensions an outbox event maps to; an event's other extensions may not use them.
pub(crate) const OUTBOX_EXTENSIONS: [&str; 5] = [
    "aggregateid",
    "causationid",
    "correlationid",
    "dataversion",
    "partitionkey",
];

/// An owned content type; `application/json` as the constant, without an allocation.
pub(crate) fn content_type_of(content_type: Cow<'_, str>) -> Cow<'static, str> {
    if content_type == JSON {
        Cow::Borrowed(JSON)
    } else {
        Cow::Owned(content_type.into_owned())
    }
}

/// The place in [`OUTBOX_EXTENSIONS`] of the extension named `name` (given as bytes, so a
/// header name needs no UTF-8 check first); `None` for any other name. A `match`, which
/// compiles to a length switch, not five comparisons.
pub(crate) fn outbox_extension(name: &[u8]) -> Option<&'static str> {
    let index = match name {
        b"aggregateid" => 0,
        b"causationid" => 1,
        b"correlationid" => 2,
        b"dataversion" => 3,
        b"partitionkey" => 4,
        _ => return None,
    };
    OUTBOX_EXTENSIONS.get(index).copied()
}

/// A transactional-outbox event: python-outbox-core's `IOutboxEvent` with a payload of type
/// `P`.
///
/// `P` is any serde type for typed domain data (`OutboxEvent<InviteCreated>`) or
/// [`Payload`] (the default) to keep the payload exactly as it arrived.
///
/// Beside the outbox fields, an event keeps what a CloudEvent may carry beyond them
/// (`subject`, `dataschema`, a `datacontenttype` other than `application/json`, extensions
/// this crate does not know), so that CloudEvent -> outbox -> CloudEvent loses nothing.
///
/// # Building
/// [`OutboxEvent::new`] takes the required fields; the `with_*` methods set the others, by
/// one rule: a `with_*` whose argument type already guarantees a valid value (a [`Uuid`])
/// returns `Self`; one taking a string that must be checked returns `Result<Self>`, with an
/// [`ErrorKind::Invalid`] (or [`ErrorKind::ExtensionName`]) error naming the field or
/// attribute. So an event, once built, always maps to a valid CloudEvent.
///
/// ```
/// use outbox_cloudevents::OutboxEvent;
/// # fn main() -> Result<(), outbox_cloudevents::Error> {
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct InviteCreated { email: String }
///
/// let event = OutboxEvent::new(
///     "6f1c1c6e-3b1a-4f1e-9a53-0d3c3e3b1a10".parse().unwrap(),
///     "com.gridflow.invite.created",
///     "invite-123",
///     "2024-05-01T10:00:00Z".parse().unwrap(),
///     "user-service",
///     InviteCreated { email: "zoe@example.com".into() },
/// )?
/// .with_partition_key("tenant-7")?;
/// assert_eq!(event.partition_key(), "tenant-7");
/// assert_eq!(event.data_version(), "1.0");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent<P = Payload> {
    pub(crate) event_id: Uuid,
    pub(crate) event_type: EventType,
    pub(crate) aggregate_id: String,
    pub(crate) occurred_at: DateTime<Utc>,
    pub(crate) source: String,
    pub(crate) data_version: String,
    pub(crate) correlation_id: Option<Uuid>,
    pub(crate) causation_id: Option<Uuid>,
    pub(crate) partition_key: Option<String>,
    pub(crate) payload: P,
    /// `application/json`, by far the most common, is not allocated: see [`content_type_of`].
    pub(crate) content_type: Option<Cow<'static, str>>,
    pub(crate) subject: Option<String>,
    pub(crate) dataschema: Option<String>,
    pub(crate) extensions: BTreeMap<ExtensionName, ExtensionValue<'static>>,
}

impl<P> OutboxEvent<P> {
    /// Builds an event from the required outbox fields, with `data_version` `"1.0"`, no
    /// correlation or causation id, the aggregate id as partition key and
    /// `datacontenttype: application/json`.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] when `event_type` is not reverse-DNS (see [`EventType`]),
    /// `aggregate_id` is empty or holds a control character, or `source` is not a
    /// URI-reference.
    pub fn new(
        event_id: Uuid,
        event_type: impl AsRef<str>,
        aggregate_id: impl Into<String>,
        occurred_at: DateTime<Utc>,
        source: impl Into<String>,
        payload: P,
    ) -> Result<Self> {
        let aggregate_id = aggregate_id.into();
        check_non_empty(&aggregate_id).map_err(|e| e.field("aggregate_id"))?;
        let source = source.into();
        check_uri_reference(&source).map_err(|e| e.field("source"))?;
        Ok(OutboxEvent {
            event_id,
            event_type: EventType::new(event_type.as_ref())?,
            aggregate_id,
            occurred_at,
            source,
            data_version: DEFAULT_DATA_VERSION.to_owned(),
            correlation_id: None,
            causation_id: None,
            partition_key: None,
            payload,
            content_type: Some(Cow::Borrowed(JSON)),
            subject: None,
            dataschema: None,
            extensions: BTreeMap::new(),
        })
    }

    /// Sets `data_version` (semver recommended).
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] when it is empty or holds a control character.
    pub fn with_data_version(mut self, version: impl Into<String>) -> Result<Self> {
        let version = version.into();
        check_non_empty(&version).map_err(|e| e.field("data_version"))?;
        self.data_version = version;
        Ok(self)
    }

    /// Sets the correlation id (links related events across services).
    pub fn with_correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// Sets the causation id (the id of the event or command that caused this one).
    pub fn with_causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Overrides the partition key, as python-outbox-core's `get_partition_key()` does for
    /// an event type. A key equal to the aggregate id is the default and is not stored.
    ///
    /// A domain type can carry its own rule by implementing [`PartitionKey`] and calling
    /// [`OutboxEvent::with_partition_key_of_payload`].
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] on `partitionkey` when the key holds a control character: it
    /// is a CloudEvents String (Partitioning extension).
    pub fn with_partition_key(mut self, key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        check_string(&key).map_err(|e| e.attribute("partitionkey"))?;
        self.partition_key = (key != self.aggregate_id).then_some(key);
        Ok(self)
    }

    /// Sets `datacontenttype`; `None` leaves it unset (the data is then JSON by the spec).
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] for an empty content type.
    pub fn with_content_type(mut self, content_type: Option<String>) -> Result<Self> {
        if let Some(ct) = &content_type {
            check_non_empty(ct).map_err(|e| e.attribute("datacontenttype"))?;
        }
        self.content_type = content_type.map(Cow::Owned);
        Ok(self)
    }

    /// Sets the CloudEvents `subject`.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] for an empty subject or one with a control character.
    pub fn with_subject(mut self, subject: impl Into<String>) -> Result<Self> {
        let subject = subject.into();
        check_non_empty(&subject).map_err(|e| e.attribute("subject"))?;
        self.subject = Some(subject);
        Ok(self)
    }

    /// Sets the CloudEvents `dataschema`.
    ///
    /// # Errors
    /// [`ErrorKind::Invalid`] when it is not an absolute URI.
    pub fn with_dataschema(mut self, uri: impl Into<String>) -> Result<Self> {
        let uri = uri.into();
        check_absolute_uri(&uri).map_err(|e| e.attribute("dataschema"))?;
        self.dataschema = Some(uri);
        Ok(self)
    }

    /// Adds an extension attribute beyond the outbox ones.
    ///
    /// # Errors
    /// [`ErrorKind::ExtensionName`] for an invalid name or one the outbox mapping owns
    /// (`aggregateid`, `causationid`, `correlationid`, `dataversion`, `partitionkey`);
    /// [`ErrorKind::Invalid`] for a string with a control character or an integer outside
    /// 32 bits.
    pub fn with_extension(mut self, name: &str, value: ExtensionValue<'_>) -> Result<Self> {
        let name = ExtensionName::new(name)?;
        if OUTBOX_EXTENSIONS.contains(&name.as_str()) {
            return Err(Error::new(
                ErrorKind::ExtensionName,
                "this extension is written from the outbox fields; set the field instead",
            )
            .attribute(name.as_str().to_owned()));
        }
        check_extension_value(name.as_str(), &value)?;
        self.extensions.insert(name, value.into_owned());
        Ok(self)
    }

    /// The event id (the idempotency key; CloudEvents `id`).
    pub fn event_id(&self) -> Uuid {
        self.event_id
    }
    /// The reverse-DNS event type (CloudEvents `type`).
    pub fn event_type(&self) -> &EventType {
        &self.event_type
    }
    /// The id of the aggregate root that produced the event.
    pub fn aggregate_id(&self) -> &str {
        &self.aggregate_id
    }
    /// When the event occurred (domain time), to the nanosecond.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.occurred_at
    }
    /// The producing service, a URI-reference such as `user-service`.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The payload schema version.
    pub fn data_version(&self) -> &str {
        &self.data_version
    }
    /// The correlation id, when set.
    pub fn correlation_id(&self) -> Option<Uuid> {
        self.correlation_id
    }
    /// The causation id, when set.
    pub fn causation_id(&self) -> Option<Uuid> {
        self.causation_id
    }
    /// The partition key: the override when set, else the aggregate id.
    pub fn partition_key(&self) -> &str {
        self.partition_key.as_deref().unwrap_or(&self.aggregate_id)
    }
    /// The payload.
    pub fn payload(&self) -> &P {
        &self.payload
    }
    /// Takes the payload out of the event.
    pub fn into_payload(self) -> P {
        self.payload
    }
    /// The `datacontenttype` (`application/json` unless set otherwise).
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }
    /// The CloudEvents `subject`, when the event carries one.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }
    /// The CloudEvents `dataschema`, when the event carries one.
    pub fn dataschema(&self) -> Option<&str> {
        self.dataschema.as_deref()
    }
    /// Extension attributes beyond the outbox ones, by name.
    pub fn extensions(&self) -> &BTreeMap<ExtensionName, ExtensionValue<'static>> {
        &self.extensions
    }

    /// Replaces the payload, keeping every other field.
    pub fn map_payload<Q>(self, f: impl FnOnce(P) -> Q) -> OutboxEvent<Q> {
        OutboxEvent {
            event_id: self.event_id,
            event_type: self.event_type,
            aggregate_id: self.aggregate_id,
            occurred_at: self.occurred_at,
            source: self.source,
            data_version: self.data_version,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            partition_key: self.partition_key,
            payload: f(self.payload),
            content_type: self.content_type,
            subject: self.subject,
            dataschema: self.dataschema,
            extensions: self.extensions,
        }
    }
}

/// A domain type's own partition-key rule: the Rust form of overriding
/// `get_partition_key()` in a python-outbox-core event class.
///
/// ```
/// use outbox_cloudevents::{OutboxEvent, PartitionKey};
/// #[derive(serde::Serialize)]
/// struct OrderPlaced { tenant: String }
/// impl PartitionKey for OrderPlaced {
///     fn partition_key(&self) -> Option<String> { Some(self.tenant.clone()) }
/// }
/// # fn main() -> Result<(), outbox_cloudevents::Error> {
/// let event = OutboxEvent::new(
///     uuid::Uuid::nil(), "com.shop.order.placed", "order-1",
///     "2024-05-01T10:00:00Z".parse().unwrap(), "shop",
///     OrderPlaced { tenant: "acme".into() },
/// )?
/// .with_partition_key_of_payload()?;
/// assert_eq!(event.partition_key(), "acme");
/// # Ok(()) }
/// ```
pub trait PartitionKey {
    /// The key to partition by, or `None` for the aggregate id.
    fn partition_key(&self) -> Option<String>;
}

impl<P: PartitionKey> OutboxEvent<P> {
    /// Applies the payload type's [`PartitionKey`] rule.
    ///
    /// # Errors
    /// As [`OutboxEvent::with_partition_key`].
    pub fn with_partition_key_of_payload(self) -> Result<Self> {
        match self.payload.partition_key() {
            Some(key) => self.with_partition_key(key),
            None => Ok(self),
        }
    }
}
