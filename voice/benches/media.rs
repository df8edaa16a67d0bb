//! Hot-path benchmarks: per-packet media work and per-message SIP work.
//!
//! `cargo bench -p switchboard-voice --bench media`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchboard_voice::media::MediaSession;
use switchboard_voice::media::g711;
use switchboard_voice::media::jitter::{JitterBuffer, JitterConfig};
use switchboard_voice::media::rtp::RtpPacket;
use switchboard_voice::sdp::{Codec, Direction, NegotiatedMedia};
use switchboard_voice::sip::endpoint::{Endpoint, EndpointConfig, Event, Transport};
use switchboard_voice::sip::message::Message;

const INVITE: &str = "INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-BRANCH\r\n\
From: sipp <sip:sipp@127.0.0.1:5061>;tag=1SIPpTag001\r\n\
To: <sip:service@127.0.0.1:5060>\r\n\
Call-ID: CALLID@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: sip:sipp@127.0.0.1:5061\r\n\
Max-Forwards: 70\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 129\r\n\r\n\
v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn media() -> NegotiatedMedia {
    NegotiatedMedia {
        remote_rtp: Some("127.0.0.1:6000".parse().unwrap()),
        codec: Codec::Pcmu,
        payload_type: 0,
        dtmf_payload_type: Some(101),
        direction: Direction::SendRecv,
        ptime_ms: 20,
    }
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut v = Vec::new();
    RtpPacket {
        marker: false,
        payload_type: 0,
        sequence: seq,
        timestamp: u32::from(seq) * 160,
        ssrc: 7,
        payload: &[0x55; 160],
    }
    .write(&mut v);
    v
}

fn bench_media(c: &mut Criterion) {
    let mut g = c.benchmark_group("media");
    g.throughput(Throughput::Elements(1));
    // One 20 ms step of a call: receive one packet (parse, latch, jitter
    // buffer), play out one frame (G.711 decode), send one (encode, packetise).
    g.bench_function("packet_in_tick_out", |b| {
        let t0 = Instant::now();
        let mut s = MediaSession::new(t0, &media(), 1, 0, "bench".into());
        let from = "127.0.0.1:6000".parse().unwrap();
        let packets: Vec<Vec<u8>> = (0..=u16::MAX).map(rtp).collect();
        let pcm: switchboard_voice::media::Pcm = vec![1000i16; 160].into();
        let mut out = Vec::with_capacity(4);
        let mut i = 0usize;
        b.iter(|| {
            let now = t0 + Duration::from_millis(20 * i as u64);
            s.handle_rtp(now, from, &packets[i % packets.len()]);
            s.play(pcm.clone());
            out.clear();
            s.tick(now, &mut out);
            while let Some(e) = s.poll_event() {
                black_box(e);
            }
            i += 1;
            black_box(&out);
        });
    });
    g.bench_function("jitter_push_pop", |b| {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let payload = [0u8; 160];
        let mut i = 0u64;
        b.iter(|| {
            jb.push(
                t0 + Duration::from_millis(20 * i),
                i as u16,
                (i as u32) * 160,
                &payload,
            );
            black_box(jb.pop());
            i += 1;
        });
    });
    g.bench_function("g711_ulaw_encode_decode_160", |b| {
        let pcm: Vec<i16> = (0..160).map(|i| (i * 200 - 16000) as i16).collect();
        let mut enc = Vec::with_capacity(160);
        let mut dec = Vec::with_capacity(160);
        b.iter(|| {
            enc.clear();
            dec.clear();
            g711::encode(Codec::Pcmu, black_box(&pcm), &mut enc);
            g711::decode(Codec::Pcmu, &enc, &mut dec);
            black_box(&dec);
        });
    });
    g.finish();
}

fn bench_sip(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_invite", |b| {
        b.iter(|| black_box(Message::parse(black_box(INVITE.as_bytes())).unwrap()));
    });
    let wsinv = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/corpus/sip_message/ok_wsinv.sip"
    ))
    .unwrap();
    g.bench_function("parse_torture_wsinv", |b| {
        b.iter(|| black_box(Message::parse(black_box(&wsinv)).unwrap()));
    });
    // A whole call through the sans-IO endpoint: INVITE, answer, ACK, BYE.
    g.bench_function("endpoint_call_setup_teardown", |b| {
        let t0 = Instant::now();
        let mut ep = Endpoint::new(EndpointConfig::new("127.0.0.1:5060".parse().unwrap()), t0);
        let from = "127.0.0.1:5061".parse().unwrap();
        let rtp_addr = "127.0.0.1:30000".parse().unwrap();
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            let inv = INVITE
                .replace("BRANCH", &n.to_string())
                .replace("CALLID", &n.to_string());
            ep.handle_input(t0, Transport::Udp, from, inv.as_bytes());
            let mut call = None;
            while let Some(ev) = ep.poll_event() {
                if let Event::CallOffered { call: c, .. } = ev {
                    call = Some(c);
                }
            }
            let call = call.unwrap();
            ep.answer(t0, call, rtp_addr).unwrap();
            let mut tag = String::new();
            while let Some(t) = ep.poll_transmit() {
                if let Ok(Message::Response(r)) = Message::parse(&t.data)
                    && r.status == 200
                {
                    tag = r.to().unwrap().tag().unwrap().to_owned();
                }
            }
            let dialog = format!(
                "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{n}-M\r\nFrom: sipp <sip:sipp@127.0.0.1:5061>;tag=1SIPpTag001\r\n\
To: <sip:service@127.0.0.1:5060>;tag={tag}\r\nCall-ID: {n}@127.0.0.1\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n"
            );
            let ack = format!("ACK sip:service@127.0.0.1:5060 SIP/2.0\r\n{}CSeq: 1 ACK\r\n\r\n", dialog.replace("-M", "-a"));
            let bye = format!("BYE sip:service@127.0.0.1:5060 SIP/2.0\r\n{}CSeq: 2 BYE\r\n\r\n", dialog.replace("-M", "-b"));
            ep.handle_input(t0, Transport::Udp, from, ack.as_bytes());
            ep.handle_input(t0, Transport::Udp, from, bye.as_bytes());
            while ep.poll_transmit().is_some() {}
            while let Some(e) = ep.poll_event() {
                black_box(e);
            }
            // Let the BYE's server transaction (Timer J) expire so state stays bounded.
            ep.handle_timeout(t0 + Duration::from_secs(3600));
        });
        assert_eq!(ep.call_count(), 0);
    });
    g.finish();
}

criterion_group!(benches, bench_media, bench_sip);
criterion_main!(benches);
