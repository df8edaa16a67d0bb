//! SIP parser: never panics; whatever parses re-serialises into something
//! that parses again to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_voice::sip::message::{Message, frame_length, validate_request};

fuzz_target!(|data: &[u8]| {
    let _ = frame_length(data);
    if let Ok(m) = Message::parse(data) {
        if let Message::Request(r) = &m {
            let _ = validate_request(r);
            let _ = r.top_via();
            let _ = r.from();
            let _ = r.to();
        }
        let again = Message::parse(&m.to_bytes()).expect("serialised message parses");
        assert_eq!(again, m);
    }
});
