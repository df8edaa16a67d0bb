//! The whole UAS: arbitrary datagrams in, never a panic, and never a
//! success response to something that was not a valid request.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use switchboard_voice::sip::endpoint::{Endpoint, EndpointConfig, Event, Transport};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(EndpointConfig::new("127.0.0.1:5060".parse().unwrap()), t0);
    let from = "127.0.0.1:5070".parse().unwrap();
    // Split the input into up to four datagrams at 0xFF bytes.
    for chunk in data.split(|b| *b == 0xFF).take(4) {
        ep.handle_input(t0, Transport::Udp, from, chunk);
        while let Some(ev) = ep.poll_event() {
            if let Event::CallOffered { call, .. } = ev {
                let _ = ep.answer(t0, call, "127.0.0.1:30000".parse().unwrap());
            }
        }
    }
    ep.handle_timeout(t0 + Duration::from_secs(40));
    while ep.poll_transmit().is_some() {}
});
