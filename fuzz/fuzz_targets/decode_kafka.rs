//! Any Kafka message through `decode` (mode detected from the headers). A message that
//! decodes re-encodes in both modes and decodes again to the same event.
//!
//! Input starting with `{` is a structured-mode value under the JSON format's
//! `content-type`; any other input is the message form of the fuzz crate's docs, so both
//! modes, `content-type` detection and stray headers are reached.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outbox_cloudevents::decode;
use outbox_cloudevents_fuzz::{Input, check_binary_round_trip, check_structured_round_trip};

fuzz_target!(|data: &[u8]| {
    let input = if data.first() == Some(&b'{') {
        Input::structured(data)
    } else {
        Input::parse(data, None)
    };
    let message = input.message();
    if let Ok(event) = decode(&message) {
        check_structured_round_trip(&event);
        check_binary_round_trip(&event);
    }
});
