//! Binary-mode messages: header names get `ce_` in front (unless written `=name`), so the
//! fuzzer spends its time on attribute headers. A message that decodes invents nothing:
//! every attribute came from its header and the data is the value's bytes; and it
//! re-encodes in both modes to the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outbox_cloudevents::{Data, MessageRef, WireEvent, decode};
use outbox_cloudevents_fuzz::{Input, check_binary_round_trip, check_structured_round_trip};

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data, Some(b"ce_"));
    let message = input.message();
    if let Ok(event) = decode(&message) {
        check_nothing_invented(&message, &event);
        check_structured_round_trip(&event);
        check_binary_round_trip(&event);
    }
});

fn check_nothing_invented(message: &MessageRef<'_>, event: &WireEvent<'_>) {
    // The value of a header that was sent with one; a decoded attribute must be exactly it.
    let sent = |name: &str| {
        message
            .headers
            .iter()
            .find(|h| h.name == name.as_bytes() && h.value.is_some())
            .and_then(|h| h.value)
    };
    if let Some(content_type) = event.datacontenttype() {
        assert!(
            message.headers.iter().any(|h| {
                (h.name.eq_ignore_ascii_case(b"content-type") || h.name == b"ce_datacontenttype")
                    && h.value == Some(content_type.as_bytes())
            }),
            "datacontenttype invented"
        );
    }
    assert_eq!(Some(event.id().as_bytes()), sent("ce_id"));
    assert_eq!(Some(event.source().as_bytes()), sent("ce_source"));
    assert_eq!(Some(event.ty().as_bytes()), sent("ce_type"));
    assert_eq!(event.subject().map(str::as_bytes), sent("ce_subject"));
    assert_eq!(event.dataschema().map(str::as_bytes), sent("ce_dataschema"));
    assert_eq!(event.time().is_some(), sent("ce_time").is_some());
    for (name, value) in event.extensions() {
        assert_eq!(
            Some(value.to_canonical_string().as_bytes()),
            sent(&format!("ce_{name}")),
            "extension `{name}` is not its header"
        );
    }
    // The data is the value; JSON data is the JSON text without the white space around it.
    match event.data() {
        Some(Data::Json(raw)) => {
            let value = message.value.expect("data from a value");
            let json_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
            let start = value.iter().position(|b| !json_space(b)).unwrap_or(0);
            let end = value
                .iter()
                .rposition(|b| !json_space(b))
                .map_or(0, |e| e + 1);
            assert_eq!(
                raw.get().as_bytes(),
                &value[start..end],
                "data is not the value"
            );
        }
        Some(data) => assert_eq!(
            Some(data.as_bytes()),
            message.value,
            "data is not the value"
        ),
        None => {}
    }
}
