//! Any bytes through the JSON event format reader. An event that reads writes back and
//! reads again to the same event, and the written bytes are a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outbox_cloudevents::WireEvent;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = WireEvent::from_json(data) {
        let json = event.to_json();
        let back = WireEvent::from_json(&json).unwrap_or_else(|e| {
            panic!(
                "written event does not read: {e}\n{}",
                String::from_utf8_lossy(&json)
            )
        });
        assert_eq!(back, event, "JSON round trip changed the event");
        assert_eq!(back.to_json(), json, "JSON writing is not a fixed point");
    }
});
