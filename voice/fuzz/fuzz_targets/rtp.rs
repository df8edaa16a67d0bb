//! RTP/RTCP parsing and a media session fed arbitrary packets.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use switchboard_voice::media::MediaSession;
use switchboard_voice::media::rtp::{RtcpReport, RtpPacket};
use switchboard_voice::sdp::{Codec, Direction, NegotiatedMedia};

fuzz_target!(|data: &[u8]| {
    let _ = RtpPacket::parse(data);
    let _ = RtcpReport::parse_compound(data);
    let t0 = Instant::now();
    let media = NegotiatedMedia {
        remote_rtp: Some("127.0.0.1:6000".parse().unwrap()),
        codec: Codec::Pcmu,
        payload_type: 0,
        dtmf_payload_type: Some(101),
        direction: Direction::SendRecv,
        ptime_ms: 20,
    };
    let mut s = MediaSession::new(t0, &media, 1, 0, "fuzz".into());
    let from = "127.0.0.1:6000".parse().unwrap();
    let mut out = Vec::new();
    for (i, chunk) in data.chunks(172).enumerate() {
        let now = t0 + Duration::from_millis(20 * i as u64);
        s.handle_rtp(now, from, chunk);
        s.tick(now, &mut out);
    }
    while s.poll_event().is_some() {}
});
