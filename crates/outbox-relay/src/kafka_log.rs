//! librdkafka's own log and error callbacks (connection refused, all brokers down,
//! authentication failed), written into the pipeline's log stream in its format and
//! rate-limited: a message is written at most once per [`REPEAT_WINDOW`], and the next time
//! it is written it says how many repeats were left out.
//!
//! Text: `outbox-ce relay: Kafka FAIL: <message>`; JSON: `{"event": "outbox.broker_log",
//! "level": ..., "facility": ..., "message": ..., "suppressed": N}` (`"code"` too for the
//! error callback, whose facility is `ERROR`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::observe::Logger;

/// The same message is written at most once in this window.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(30);

/// The level librdkafka's clients log at: warnings and errors (its notices and debug
/// lines are for `--producer-option debug=...`).
pub const LOG_LEVEL: RDKafkaLogLevel = RDKafkaLogLevel::Warning;

/// Which messages may be written now, and how many repeats of each were left out: plain
/// state, no clock of its own.
#[derive(Debug, Default)]
pub struct RateLimit {
    /// By message key: when it was last written, and the repeats left out since.
    seen: HashMap<String, (Instant, u64)>,
}

impl RateLimit {
    /// The most distinct messages remembered; older ones are forgotten first.
    const MAX_KEYS: usize = 1024;

    /// Whether the message of `key` is written at `now`: `Some(n)` with the `n` repeats
    /// left out since it was last written, `None` when this one is left out.
    pub fn admit(&mut self, key: &str, now: Instant) -> Option<u64> {
        if let Some((last, suppressed)) = self.seen.get_mut(key) {
            if now.saturating_duration_since(*last) < REPEAT_WINDOW {
                *suppressed += 1;
                return None;
            }
            let left_out = *suppressed;
            *last = now;
            *suppressed = 0;
            return Some(left_out);
        }
        if self.seen.len() >= Self::MAX_KEYS {
            self.seen
                .retain(|_, (last, _)| now.saturating_duration_since(*last) < REPEAT_WINDOW);
        }
        if self.seen.len() < Self::MAX_KEYS {
            self.seen.insert(key.to_owned(), (now, 0));
        }
        Some(0)
    }
}

/// What repeats of one message have in common: the message without librdkafka's thread
/// prefix (`[thrd:...]: `) and its trailing parenthesised notes (`(after 0ms in state
/// CONNECT)`, `(..., 3 identical error(s) suppressed)`), which change from one repeat to
/// the next. The error callback and the log callback report one failure alike.
pub(crate) fn repeat_key(message: &str) -> &str {
    let mut text = message.trim();
    if text.starts_with("[thrd:")
        && let Some(end) = text.find("]: ")
    {
        text = text.get(end + 3..).unwrap_or(text);
    }
    while text.ends_with(')')
        && let Some(open) = text.rfind(" (")
    {
        text = text.get(..open).unwrap_or(text).trim_end();
    }
    text
}

/// The log of one pipeline's Kafka clients, shared by them.
#[derive(Debug)]
pub struct KafkaLog {
    logger: Logger,
    command: &'static str,
    limit: Mutex<RateLimit>,
    last_error: Mutex<LastError>,
}

/// The last error the clients reported: the last cause (a connection refused, an
/// authentication failure, from an error-level log line or the error callback), and the
/// last "all brokers are down", which says only that some cause is at work.
#[derive(Debug, Default)]
struct LastError {
    cause: Option<String>,
    all_down: Option<String>,
}

impl KafkaLog {
    /// A log that writes with `logger`, as `outbox-ce <command>:` in text.
    pub fn new(logger: Logger, command: &'static str) -> Self {
        KafkaLog {
            logger,
            command,
            limit: Mutex::new(RateLimit::default()),
            last_error: Mutex::new(LastError::default()),
        }
    }

    /// librdkafka's log callback.
    pub fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let level = match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => "error",
            RDKafkaLogLevel::Warning => "warning",
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => "info",
            RDKafkaLogLevel::Debug => "debug",
        };
        if level == "error"
            && let Ok(mut last) = self.last_error.lock()
        {
            last.cause = Some(repeat_key(message).to_owned());
        }
        self.write(level, facility, None, message);
    }

    /// librdkafka's error callback; the error is also kept for [`KafkaLog::last_error`].
    pub fn error(&self, error: &KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        if let Ok(mut last) = self.last_error.lock() {
            let text = Some(match code {
                Some(code) => format!("{} ({code:?})", repeat_key(reason)),
                None => format!("{}: {error}", repeat_key(reason)),
            });
            if code == Some(RDKafkaErrorCode::AllBrokersDown) {
                last.all_down = text;
            } else {
                last.cause = text;
            }
        }
        let code = code.map(|c| format!("{c:?}"));
        self.write("error", "ERROR", code.as_deref(), reason);
    }

    /// The last error the clients reported since [`KafkaLog::clear_error`]: its last cause
    /// when one was reported, else the last "all brokers are down".
    pub fn last_error(&self) -> Option<String> {
        let last = self.last_error.lock().ok()?;
        last.cause.clone().or_else(|| last.all_down.clone())
    }

    /// Forgets the last error: the client works again.
    pub fn clear_error(&self) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = LastError::default();
        }
    }

    /// Whether a line about `message` is written now (see [`RateLimit::admit`]): for the
    /// errors a client returns rather than logs, such as a consumer's `poll`, which
    /// repeats the failure librdkafka logs.
    pub fn admit(&self, message: &str) -> Option<u64> {
        self.limit.lock().map_or(Some(0), |mut limit| {
            limit.admit(repeat_key(message), Instant::now())
        })
    }

    fn write(&self, level: &str, facility: &str, code: Option<&str>, message: &str) {
        if self.logger.quiet {
            return;
        }
        let Some(suppressed) = self.admit(message) else {
            return;
        };
        let mut text = format!("Kafka {facility}: {message}");
        if suppressed > 0 {
            text.push_str(&format!(
                " ({suppressed} repeats left out in the last {}s)",
                REPEAT_WINDOW.as_secs()
            ));
        }
        let mut fields = serde_json::json!({
            "facility": facility,
            "message": message,
            "suppressed": suppressed,
        });
        if let (Some(code), Some(object)) = (code, fields.as_object_mut()) {
            object.insert("code".into(), code.into());
        }
        self.logger
            .log_as(self.command, level, "outbox.broker_log", &text, fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_of_a_message_share_a_key() {
        let log = "[thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT)";
        let error = "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 1ms in state CONNECT, 4 identical error(s) suppressed)";
        assert_eq!(repeat_key(log), repeat_key(error));
        assert_eq!(
            repeat_key(error),
            "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused"
        );
        assert_eq!(repeat_key("1/1 brokers are down"), "1/1 brokers are down");
    }

    #[test]
    fn broker_log_repeats_are_rate_limited() {
        let mut limit = RateLimit::default();
        let start = Instant::now();
        assert_eq!(limit.admit("refused", start), Some(0));
        assert_eq!(limit.admit("other", start), Some(0));
        for n in 1..=5 {
            assert_eq!(limit.admit("refused", start + Duration::from_secs(n)), None);
        }
        assert_eq!(
            limit.admit("refused", start + REPEAT_WINDOW + Duration::from_secs(1)),
            Some(5),
            "written again after the window, with the count of those left out"
        );
        assert_eq!(
            limit.admit("refused", start + REPEAT_WINDOW + Duration::from_secs(2)),
            None
        );
    }

    #[test]
    fn the_remembered_messages_are_bounded() {
        let mut limit = RateLimit::default();
        let start = Instant::now();
        for n in 0..(RateLimit::MAX_KEYS * 3) {
            assert_eq!(limit.admit(&n.to_string(), start), Some(0));
        }
        assert!(limit.seen.len() <= RateLimit::MAX_KEYS);
    }
}
