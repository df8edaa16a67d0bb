//! RFC 4475-style torture messages (the fuzz corpus seeds in
//! `fuzz/corpus/sip_message/`) and property tests: the parser and the
//! endpoint never panic, valid messages are read correctly, and invalid
//! requests are refused with a 4xx/5xx or dropped, never accepted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use switchboard_voice::media::rtp::{RtcpReport, RtpPacket};
use switchboard_voice::sip::endpoint::{Endpoint, EndpointConfig, Transport};
use switchboard_voice::sip::message::{Message, Via, validate_request};

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "fuzz", "corpus", "sip_message"]
        .iter()
        .collect();
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    assert!(v.len() >= 15, "corpus seeds missing");
    v
}

/// Every response status the endpoint sent for one input.
fn endpoint_statuses(data: &[u8]) -> Vec<u16> {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(EndpointConfig::new("127.0.0.1:5060".parse().unwrap()), t0);
    ep.handle_input(t0, Transport::Udp, "127.0.0.1:5070".parse().unwrap(), data);
    ep.handle_timeout(t0 + Duration::from_secs(1));
    std::iter::from_fn(|| ep.poll_transmit())
        .filter_map(|t| match Message::parse(&t.data) {
            Ok(Message::Response(r)) => Some(r.status),
            _ => None,
        })
        .collect()
}

#[test]
fn valid_torture_messages_parse_and_validate() {
    for (name, data) in seeds().into_iter().filter(|(n, _)| n.starts_with("ok_")) {
        let m = Message::parse(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Message::Request(r) = &m {
            assert_eq!(validate_request(r), Ok(()), "{name}");
        }
        let again = Message::parse(&m.to_bytes()).unwrap();
        assert_eq!(again, m, "{name} round trip");
    }
}

#[test]
fn tortuous_invite_is_read_correctly() {
    let data = std::fs::read(
        [
            env!("CARGO_MANIFEST_DIR"),
            "fuzz",
            "corpus",
            "sip_message",
            "ok_wsinv.sip",
        ]
        .iter()
        .collect::<PathBuf>(),
    )
    .unwrap();
    let Message::Request(r) = Message::parse(&data).unwrap() else {
        panic!()
    };
    assert_eq!(r.to().unwrap().tag(), Some("1918181833n"));
    let from = r.from().unwrap();
    assert_eq!(from.display.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(r.cseq().unwrap().seq, 9);
    let vias = r.headers.values("Via");
    assert_eq!(vias.len(), 3, "{vias:?}");
    let v0 = Via::parse(&vias[0]).unwrap();
    assert_eq!(
        (v0.transport.as_str(), v0.host.as_str()),
        ("UDP", "192.0.2.2")
    );
    let v2 = Via::parse(&vias[2]).unwrap();
    assert_eq!(v2.branch(), Some("z9hG4bK30239"));
    assert_eq!(
        r.headers.get("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(r.headers.values("Contact").len(), 1);
    assert!(r.body.starts_with(b"v=0"));
}

#[test]
fn escaped_uris_are_decoded() {
    let data = std::fs::read(
        [
            env!("CARGO_MANIFEST_DIR"),
            "fuzz",
            "corpus",
            "sip_message",
            "ok_esc01.sip",
        ]
        .iter()
        .collect::<PathBuf>(),
    )
    .unwrap();
    let Message::Request(r) = Message::parse(&data).unwrap() else {
        panic!()
    };
    assert_eq!(r.to().unwrap().uri.user.as_deref(), Some("user"));
    assert_eq!(r.from().unwrap().uri.user.as_deref(), Some("I have spaces"));
}

#[test]
fn invalid_torture_requests_are_refused_or_dropped() {
    for (name, data) in seeds().into_iter().filter(|(n, _)| n.starts_with("bad_")) {
        let statuses = endpoint_statuses(&data);
        assert!(
            statuses.iter().all(|s| *s >= 400),
            "{name}: answered {statuses:?}"
        );
    }
    assert_eq!(
        endpoint_statuses(&seeds_named("bad_badvers.sip")),
        vec![505]
    );
    assert_eq!(endpoint_statuses(&seeds_named("bad_clerr.sip")), vec![400]);
    assert_eq!(
        endpoint_statuses(&seeds_named("bad_scalar02.sip")),
        vec![400]
    );
    assert_eq!(
        endpoint_statuses(&seeds_named("bad_lwsstart.sip")),
        vec![400]
    );
    assert!(endpoint_statuses(&seeds_named("bad_garbage.sip")).is_empty());
}

fn seeds_named(name: &str) -> Vec<u8> {
    seeds().into_iter().find(|(n, _)| n == name).unwrap().1
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parser_never_panics_and_round_trips(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(m) = Message::parse(&data) {
            let again = Message::parse(&m.to_bytes()).unwrap();
            prop_assert_eq!(again, m);
        }
    }

    #[test]
    fn mutated_seeds_never_panic_the_endpoint(idx in 0usize..19, pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let seeds = seeds();
        let (_, mut data) = seeds[idx % seeds.len()].clone();
        if !data.is_empty() {
            let p = pos.index(data.len());
            data[p] = byte;
            let c = cut.index(data.len() + 1);
            data.truncate(c.max(p));
        }
        if let Ok(m) = Message::parse(&data) {
            let again = Message::parse(&m.to_bytes()).unwrap();
            prop_assert_eq!(again, m);
        }
        let _ = endpoint_statuses(&data);
    }

    #[test]
    fn rtp_and_rtcp_parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(p) = RtpPacket::parse(&data) {
            let mut out = Vec::new();
            p.write(&mut out);
            let again = RtpPacket::parse(&out).unwrap();
            prop_assert_eq!(again.payload, p.payload);
            prop_assert_eq!(again.sequence, p.sequence);
        }
        let _ = RtcpReport::parse_compound(&data);
    }
}
