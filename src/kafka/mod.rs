//! The CloudEvents Kafka protocol binding: binary and structured content modes.
//!
//! The message types here know no Kafka client; `rdkafka` conversions live behind the
//! `rdkafka` feature. [`Encoder`] writes messages, [`Decoder`] reads them.

use std::fmt;

use crate::error::{Error, ErrorKind, Result, quote};

mod decode;
mod encode;
mod message;

pub use decode::{Decoder, Leniency, decode, detect_mode};
pub use encode::Encoder;
pub use message::{
    EncodedMessage, Header, HeaderRef, HeadersIter, HeadersRef, Message, MessageRef,
};

/// The `content-type` of structured mode with the JSON event format.
pub const STRUCTURED_CONTENT_TYPE: &str = "application/cloudevents+json; charset=UTF-8";

/// The binding's content modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Attributes in `ce_` headers, data in the value.
    Binary,
    /// The whole event, in the JSON event format, in the value.
    Structured,
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "binary" => Ok(Mode::Binary),
            "structured" => Ok(Mode::Structured),
            _ => Err(Error::new(
                ErrorKind::Invalid,
                format!("{} is not a mode: use `binary` or `structured`", quote(s)),
            )),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Binary => "binary",
            Mode::Structured => "structured",
        })
    }
}
