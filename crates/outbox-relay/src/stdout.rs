//! The standard-output sink: one line of interchange JSON per message, exactly as
//! `outbox-ce encode` writes it, in publish order.
//!
//! A message counts as acknowledged once written; the engine flushes standard output before
//! it marks rows, so a row is marked only after its line left the process. Dead-letter
//! messages are lines too, with a `"topic"` member naming the dead-letter topic (the main
//! lines have none).

use std::future::{Ready, ready};
use std::io::{self, BufWriter, Write};

use outbox_cloudevents::Message;
use outbox_cloudevents::interchange::Record;

use crate::sink::{Probe, Route, Sink, SinkError};

/// Writes messages to standard output (or any writer).
pub struct StdoutSink<W: Write + Send = io::Stdout> {
    out: BufWriter<W>,
    dead_letter_topic: Option<String>,
    failed: Option<String>,
}

impl StdoutSink {
    /// A sink on the process's standard output.
    pub fn new(dead_letter_topic: Option<String>) -> Self {
        StdoutSink::to_writer(io::stdout(), dead_letter_topic)
    }
}

impl<W: Write + Send> StdoutSink<W> {
    /// A sink on `writer`.
    pub fn to_writer(writer: W, dead_letter_topic: Option<String>) -> Self {
        StdoutSink {
            out: BufWriter::with_capacity(1 << 16, writer),
            dead_letter_topic,
            failed: None,
        }
    }

    /// The writer, flushed.
    ///
    /// # Errors
    /// When flushing fails.
    pub fn into_inner(self) -> io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }

    fn write(&mut self, route: Route, message: &Message) -> io::Result<()> {
        let mut record = Record::from(message.clone());
        if route == Route::DeadLetter {
            record.topic.clone_from(&self.dead_letter_topic);
        }
        self.out.write_all(&record.to_json())?;
        self.out.write_all(b"\n")
    }
}

impl<W: Write + Send> Sink for StdoutSink<W> {
    type Delivery = Ready<Result<(), SinkError>>;

    fn send(&mut self, route: Route, message: &Message) -> Self::Delivery {
        if let Some(e) = &self.failed {
            return ready(Err(SinkError::fatal(e.clone())));
        }
        match self.write(route, message) {
            Ok(()) => ready(Ok(())),
            Err(e) => {
                let e = format!("standard output: {e}");
                self.failed = Some(e.clone());
                ready(Err(SinkError::fatal(e)))
            }
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if let Some(e) = &self.failed {
            return Err(SinkError::fatal(e.clone()));
        }
        self.out
            .flush()
            .map_err(|e| SinkError::fatal(format!("standard output: {e}")))
    }

    fn probe(&self) -> Option<Probe> {
        None
    }

    fn describe(&self) -> String {
        "standard output".to_owned()
    }
}
