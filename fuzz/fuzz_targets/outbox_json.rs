//! Any bytes through python-outbox-core's `to_message()` layout reader. An event that reads
//! writes back and reads again to the same event, and the written bytes are a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outbox_cloudevents::{OutboxEvent, Payload};

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = OutboxEvent::<Payload>::from_message_json(data) {
        let json = event
            .to_message_json()
            .unwrap_or_else(|e| panic!("an event read from the layout does not write: {e}"));
        let back = OutboxEvent::<Payload>::from_message_json(&json).unwrap_or_else(|e| {
            panic!(
                "written event does not read: {e}\n{}",
                String::from_utf8_lossy(&json)
            )
        });
        assert_eq!(back, event, "to_message() round trip changed the event");
        let again = back.to_message_json().expect("writes");
        assert_eq!(again, json, "to_message() writing is not a fixed point");
    }
});
