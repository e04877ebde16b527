//! Any bytes through the interchange JSON reader. A record that reads writes back and reads
//! again to the same record, and the written bytes are a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outbox_cloudevents::interchange::Record;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = Record::from_json(data) {
        let json = record.to_json();
        let back = Record::from_json(&json).unwrap_or_else(|e| {
            panic!(
                "written record does not read: {e}\n{}",
                String::from_utf8_lossy(&json)
            )
        });
        assert_eq!(back, record, "interchange round trip changed the record");
        assert_eq!(
            back.to_json(),
            json,
            "interchange writing is not a fixed point"
        );
    }
});
