//! Deterministic endpoint tests: SIP text in, SIP text and events out,
//! simulated time.

use super::*;
use crate::sdp::Direction;
use crate::sip::auth::{DigestParams, StaticCredentials, authorization_header};

const PEER: &str = "127.0.0.1:5070";
const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

struct Harness {
    ep: Endpoint,
    t0: Instant,
    now: Instant,
}

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

fn rtp_addr() -> SocketAddr {
    "127.0.0.1:30000".parse().unwrap()
}

impl Harness {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(f: impl FnOnce(&mut EndpointConfig)) -> Self {
        let mut cfg = EndpointConfig::new("127.0.0.1:5060".parse().unwrap());
        cfg.seed = 7;
        f(&mut cfg);
        let t0 = Instant::now();
        Self {
            ep: Endpoint::new(cfg, t0),
            t0,
            now: t0,
        }
    }

    fn input(&mut self, text: &str) {
        self.ep
            .handle_input(self.now, Transport::Udp, peer(), text.as_bytes());
    }

    fn advance_to(&mut self, ms: u64) {
        let until = self.t0 + Duration::from_millis(ms);
        while let Some(t) = self.ep.poll_timeout() {
            if t > until {
                break;
            }
            self.now = t;
            self.ep.handle_timeout(t);
        }
        self.now = until;
    }

    fn sent(&mut self) -> Vec<Message> {
        std::iter::from_fn(|| self.ep.poll_transmit())
            .map(|t| {
                assert_eq!(t.to, peer());
                Message::parse(&t.data).unwrap()
            })
            .collect()
    }

    fn statuses(&mut self) -> Vec<u16> {
        self.sent()
            .into_iter()
            .filter_map(|m| match m {
                Message::Response(r) => Some(r.status),
                Message::Request(_) => None,
            })
            .collect()
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.ep.poll_event()).collect()
    }

    fn offered(&mut self) -> CallHandle {
        let ev = self.events();
        match ev.as_slice() {
            [Event::CallOffered { call, .. }] => *call,
            other => panic!("expected CallOffered, got {other:?}"),
        }
    }
}

fn invite(branch: &str, call_id: &str, body: &str, extra: &str) -> String {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "INVITE sip:100@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@127.0.0.1:5070>;tag=alice1\r\n\
To: <sip:100@127.0.0.1:5060>\r\n\
Call-ID: {call_id}\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@127.0.0.1:5070>\r\n\
{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn in_dialog(
    method: &str,
    branch: &str,
    call_id: &str,
    to_tag: &str,
    cseq: u32,
    extra: &str,
    body: &str,
) -> String {
    format!(
        "{method} sip:100@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@127.0.0.1:5070>;tag=alice1\r\n\
To: <sip:100@127.0.0.1:5060>;tag={to_tag}\r\n\
Call-ID: {call_id}\r\n\
CSeq: {cseq} {method}\r\n\
{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn response_of(msgs: &[Message], status: u16) -> Response {
    msgs.iter()
        .find_map(|m| match m {
            Message::Response(r) if r.status == status => Some(r.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {status} in {msgs:?}"))
}

fn to_tag(r: &Response) -> String {
    r.to().unwrap().tag().unwrap().to_owned()
}

/// INVITE → 100, ring → 180, answer → 200 with SDP; returns (call, our tag).
fn answered_call(h: &mut Harness, call_id: &str) -> (CallHandle, String) {
    h.input(&invite("z9hG4bKinv1", call_id, OFFER, ""));
    assert_eq!(h.statuses(), vec![100]);
    let call = h.offered();
    h.ep.ring(h.now, call).unwrap();
    assert_eq!(h.statuses(), vec![180]);
    h.ep.answer(h.now, call, rtp_addr()).unwrap();
    let sent = h.sent();
    let ok = response_of(&sent, 200);
    let answer = SessionDescription::parse(&ok.body).unwrap();
    assert_eq!(answer.media[0].port, 30000);
    assert_eq!(answer.media[0].formats, vec!["0", "101"]);
    assert!(ok.headers.get("Contact").is_some());
    let ev = h.events();
    assert!(
        matches!(ev.as_slice(), [Event::MediaUpdated { held: false, .. }]),
        "{ev:?}"
    );
    (call, to_tag(&ok))
}

#[test]
fn basic_call_answer_ack_and_remote_bye() {
    let mut h = Harness::new();
    let (call, tag) = answered_call(&mut h, "c1");
    // The 200 is retransmitted at T1, 2·T1 … until the ACK.
    h.advance_to(500);
    assert_eq!(h.statuses(), vec![200]);
    h.advance_to(1500);
    assert_eq!(h.statuses(), vec![200]);
    h.input(&in_dialog("ACK", "z9hG4bKack1", "c1", &tag, 1, "", ""));
    assert_eq!(h.events(), vec![Event::CallEstablished { call }]);
    h.advance_to(10_000);
    assert!(h.statuses().is_empty(), "no more 200s after ACK");
    h.input(&in_dialog("ACK", "z9hG4bKack1", "c1", &tag, 1, "", ""));
    assert!(h.events().is_empty(), "retransmitted ACK ignored");
    h.input(&in_dialog("BYE", "z9hG4bKbye1", "c1", &tag, 2, "", ""));
    assert_eq!(h.statuses(), vec![200]);
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call,
            reason: EndReason::RemoteHangup
        }]
    );
    // A retransmitted BYE gets the same 200 from the transaction.
    h.input(&in_dialog("BYE", "z9hG4bKbye1", "c1", &tag, 2, "", ""));
    assert_eq!(h.statuses(), vec![200]);
    assert_eq!(h.ep.call_count(), 0);
}

#[test]
fn invite_retransmission_gets_last_response_not_a_new_call() {
    let mut h = Harness::new();
    h.input(&invite("z9hG4bKr", "cr", OFFER, ""));
    let call = h.offered();
    h.ep.ring(h.now, call).unwrap();
    h.sent();
    h.input(&invite("z9hG4bKr", "cr", OFFER, ""));
    assert_eq!(h.statuses(), vec![180]);
    assert!(h.events().is_empty());
}

#[test]
fn cancel_before_answer() {
    let mut h = Harness::new();
    h.input(&invite("z9hG4bKc", "cc", OFFER, ""));
    let call = h.offered();
    h.ep.ring(h.now, call).unwrap();
    h.sent();
    let cancel = "CANCEL sip:100@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKc;rport\r\nMax-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@127.0.0.1:5070>;tag=alice1\r\nTo: <sip:100@127.0.0.1:5060>\r\n\
Call-ID: cc\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n";
    h.input(cancel);
    let sent = h.sent();
    let statuses: Vec<u16> = sent
        .iter()
        .filter_map(|m| {
            if let Message::Response(r) = m {
                Some(r.status)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(statuses, vec![200, 487]);
    let r487 = response_of(&sent, 487);
    assert_eq!(r487.cseq().unwrap().method, Method::Invite);
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call,
            reason: EndReason::Cancelled
        }]
    );
    // Timer G retransmits the 487 until the ACK.
    h.advance_to(500);
    assert_eq!(h.statuses(), vec![487]);
    let ack = format!(
        "ACK sip:100@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKc;rport\r\n\
From: \"Alice\" <sip:alice@127.0.0.1:5070>;tag=alice1\r\nTo: <sip:100@127.0.0.1:5060>;tag={}\r\n\
Call-ID: cc\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        to_tag(&r487)
    );
    h.input(&ack);
    h.advance_to(40_000);
    assert!(h.statuses().is_empty());
    assert_eq!(h.ep.poll_timeout(), None, "every transaction is gone");
    // CANCEL for nothing: 481.
    h.input(&cancel.replace("z9hG4bKc", "z9hG4bKnone"));
    assert_eq!(h.statuses(), vec![481]);
}

#[test]
fn offerless_invite_gets_offer_in_200_and_answer_in_ack() {
    let mut h = Harness::new();
    h.input(&invite("z9hG4bKo", "co", "", ""));
    h.statuses();
    let call = h.offered();
    h.ep.answer(h.now, call, rtp_addr()).unwrap();
    let ok = response_of(&h.sent(), 200);
    let offer = SessionDescription::parse(&ok.body).unwrap();
    assert_eq!(offer.media[0].formats, vec!["0", "8", "101"]);
    assert!(h.events().is_empty(), "media not known until the ACK");
    let answer = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 6002 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    h.input(&in_dialog(
        "ACK",
        "z9hG4bKoa",
        "co",
        &to_tag(&ok),
        1,
        "Content-Type: application/sdp\r\n",
        answer,
    ));
    let ev = h.events();
    let Event::MediaUpdated { media, .. } = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(media.codec, Codec::Pcma);
    assert_eq!(media.remote_rtp, Some("127.0.0.1:6002".parse().unwrap()));
    assert_eq!(ev[1], Event::CallEstablished { call });
}

#[test]
fn missing_ack_ends_the_call_with_bye() {
    let mut h = Harness::new();
    let (call, _) = answered_call(&mut h, "cn");
    h.advance_to(31_999);
    // 200 at 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5 s.
    assert_eq!(h.statuses().len(), 10);
    assert!(h.events().is_empty());
    h.advance_to(32_000);
    let sent = h.sent();
    assert!(matches!(&sent[0], Message::Request(r) if r.method == Method::Bye));
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call,
            reason: EndReason::AckTimeout
        }]
    );
}

#[test]
fn remote_hold_and_unhold_by_reinvite() {
    let mut h = Harness::new();
    let (call, tag) = answered_call(&mut h, "ch");
    h.input(&in_dialog("ACK", "z9hG4bKa", "ch", &tag, 1, "", ""));
    h.events();
    for (cseq, attr, held, ours) in [
        (2, "a=sendonly\r\n", true, Direction::RecvOnly),
        (3, "a=inactive\r\n", true, Direction::Inactive),
        (4, "a=sendrecv\r\n", false, Direction::SendRecv),
    ] {
        let body = format!("{OFFER}{attr}");
        h.input(&in_dialog(
            "INVITE",
            &format!("z9hG4bKre{cseq}"),
            "ch",
            &tag,
            cseq,
            "Content-Type: application/sdp\r\nContact: <sip:alice@127.0.0.1:5070>\r\n",
            &body,
        ));
        let sent = h.sent();
        let ok = response_of(&sent, 200);
        let ans = SessionDescription::parse(&ok.body).unwrap();
        assert_eq!(ans.media[0].direction(), Some(ours));
        let ev = h.events();
        assert!(
            matches!(ev.as_slice(), [Event::MediaUpdated { call: c, held: h2, media }] if *c == call && *h2 == held && media.direction == ours),
            "{ev:?}"
        );
        h.input(&in_dialog(
            "ACK",
            &format!("z9hG4bKra{cseq}"),
            "ch",
            &tag,
            cseq,
            "",
            "",
        ));
    }
    // A re-INVITE we cannot do is refused and the call stays up.
    let g729 = OFFER
        .replace("RTP/AVP 0 101", "RTP/AVP 18")
        .replace("0 PCMU", "18 G729");
    h.input(&in_dialog(
        "INVITE",
        "z9hG4bKre9",
        "ch",
        &tag,
        9,
        "Content-Type: application/sdp\r\n",
        &g729,
    ));
    assert_eq!(h.statuses(), vec![100, 488]);
    assert_eq!(h.ep.call_count(), 1);
}

#[test]
fn info_dtmf_and_options() {
    let mut h = Harness::new();
    let (call, tag) = answered_call(&mut h, "ci");
    h.input(&in_dialog("ACK", "z9hG4bKa", "ci", &tag, 1, "", ""));
    h.events();
    h.input(&in_dialog(
        "INFO",
        "z9hG4bKi1",
        "ci",
        &tag,
        2,
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=5\r\nDuration=160\r\n",
    ));
    assert_eq!(h.statuses(), vec![200]);
    assert_eq!(
        h.events(),
        vec![Event::Dtmf {
            call,
            digit: DtmfDigit::from_char('5').unwrap(),
            source: DtmfSource::Info
        }]
    );
    h.input(&in_dialog(
        "INFO",
        "z9hG4bKi2",
        "ci",
        &tag,
        3,
        "Content-Type: text/plain\r\n",
        "hi",
    ));
    assert_eq!(h.statuses(), vec![415]);
    let options = "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKop\r\n\
From: <sip:mon@127.0.0.1>;tag=m\r\nTo: <sip:127.0.0.1:5060>\r\nCall-ID: op1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    h.input(options);
    let ok = response_of(&h.sent(), 200);
    assert!(ok.headers.get("Allow").unwrap().contains("INVITE"));
    assert_eq!(ok.headers.get("Accept"), Some("application/sdp"));
}

#[test]
fn local_hangup_sends_bye_with_dialog_headers_and_retransmits() {
    let mut h = Harness::new();
    let (call, tag) = answered_call(&mut h, "cb");
    h.input(&in_dialog("ACK", "z9hG4bKa", "cb", &tag, 1, "", ""));
    h.events();
    h.ep.hangup(h.now, call).unwrap();
    let sent = h.sent();
    let Message::Request(bye) = &sent[0] else {
        panic!()
    };
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(
        bye.uri, "sip:alice@127.0.0.1:5070",
        "sent to the remote target"
    );
    assert_eq!(bye.from().unwrap().tag(), Some(tag.as_str()));
    assert_eq!(bye.to().unwrap().tag(), Some("alice1"));
    assert_eq!(bye.call_id(), Some("cb"));
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call,
            reason: EndReason::LocalHangup
        }]
    );
    h.advance_to(500);
    assert_eq!(h.sent().len(), 1, "Timer E retransmits the BYE");
    h.input(&String::from_utf8(bye.response(200, "OK", None).to_bytes()).unwrap());
    h.advance_to(60_000);
    assert!(h.sent().is_empty());
    assert_eq!(h.ep.poll_timeout(), None);
    assert!(matches!(
        h.ep.hangup(h.now, call),
        Err(CommandError::UnknownCall(_))
    ));
}

#[test]
fn local_hold_sends_reinvite_and_acks_the_answer() {
    let mut h = Harness::new();
    let (call, tag) = answered_call(&mut h, "cl");
    assert!(matches!(
        h.ep.hold(h.now, call, true),
        Err(CommandError::WrongState(..))
    ));
    h.input(&in_dialog("ACK", "z9hG4bKa", "cl", &tag, 1, "", ""));
    h.events();
    h.ep.hold(h.now, call, true).unwrap();
    let sent = h.sent();
    let Message::Request(reinv) = &sent[0] else {
        panic!()
    };
    assert_eq!(reinv.method, Method::Invite);
    let offer = SessionDescription::parse(&reinv.body).unwrap();
    assert_eq!(offer.media[0].direction(), Some(Direction::SendOnly));
    // Peer answers recvonly.
    let (ans, _) = sdp::answer(
        &offer,
        "127.0.0.1:6000".parse().unwrap(),
        5,
        5,
        &[Codec::Pcmu],
    )
    .unwrap();
    let mut ok = reinv.response(200, "OK", Some("alice1"));
    ok.headers.push("Content-Type", "application/sdp");
    ok.body = ans.to_bytes();
    h.input(&String::from_utf8(ok.to_bytes()).unwrap());
    let sent = h.sent();
    let Message::Request(ack) = &sent[0] else {
        panic!()
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.cseq().unwrap().seq, reinv.cseq().unwrap().seq);
    let ev = h.events();
    assert!(
        matches!(ev.as_slice(), [Event::MediaUpdated { held: true, media, .. }] if media.direction == Direction::SendOnly),
        "{ev:?}"
    );
}

#[test]
fn session_timer_is_echoed() {
    let mut h = Harness::new();
    h.input(&invite(
        "z9hG4bKst",
        "cs",
        OFFER,
        "Supported: timer\r\nSession-Expires: 1800;refresher=uac\r\n",
    ));
    h.sent();
    let call = h.offered();
    h.ep.answer(h.now, call, rtp_addr()).unwrap();
    let ok = response_of(&h.sent(), 200);
    assert_eq!(
        ok.headers.get("Session-Expires"),
        Some("1800;refresher=uac")
    );
    assert_eq!(ok.headers.get("Require"), Some("timer"));
    // A refresh by UPDATE without a body is answered.
    h.input(&in_dialog("ACK", "z9hG4bKa", "cs", &to_tag(&ok), 1, "", ""));
    h.input(&in_dialog(
        "UPDATE",
        "z9hG4bKu",
        "cs",
        &to_tag(&ok),
        2,
        "Session-Expires: 1800\r\n",
        "",
    ));
    assert_eq!(h.statuses(), vec![200]);
}

#[test]
fn reject_and_hangup_before_answer() {
    let mut h = Harness::new();
    h.input(&invite("z9hG4bKrj", "crj", OFFER, ""));
    h.sent();
    let call = h.offered();
    h.ep.reject(h.now, call, 486).unwrap();
    assert_eq!(h.statuses(), vec![486]);
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call,
            reason: EndReason::Rejected(486)
        }]
    );
    // Without ACK, Timer H gives up at 64·T1.
    h.advance_to(32_000);
    assert_eq!(h.statuses().len(), 10);
    assert_eq!(h.ep.poll_timeout(), None);
    h.input(&invite("z9hG4bKrk", "crk", OFFER, ""));
    h.sent();
    let call = h.offered();
    h.ep.hangup(h.now, call).unwrap();
    assert_eq!(h.statuses(), vec![480]);
}

#[test]
fn bad_requests_get_the_right_status() {
    let mut h = Harness::new();
    let base = invite("z9hG4bKbad", "cbad", OFFER, "");
    let cases: Vec<(String, u16)> = vec![
        (base.replace("SIP/2.0\r\nVia", "SIP/3.0\r\nVia"), 505),
        (base.replace("Call-ID: cbad\r\n", ""), 400),
        (base.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"), 400),
        (base.replace("CSeq: 1 INVITE", "CSeq: one INVITE"), 400),
        (base.replace("Content-Length: ", "Content-Length: 9"), 400),
        (base.replace("Max-Forwards: 70", "Max-Forwards: 0"), 483),
        (base.replace("INVITE sip:100@", "INVITE http://100@"), 416),
        (
            base.replace(
                "Max-Forwards: 70\r\n",
                "Max-Forwards: 70\r\nRequire: 100rel\r\n",
            ),
            420,
        ),
        (
            invite(
                "z9hG4bKg",
                "cg",
                &OFFER
                    .replace("RTP/AVP 0 101", "RTP/AVP 18")
                    .replace("0 PCMU", "18 G729"),
                "",
            ),
            488,
        ),
        (
            invite("z9hG4bKt", "ct", "hello", "").replace("application/sdp", "text/plain"),
            415,
        ),
        (
            base.replace("INVITE sip", "FOO sip")
                .replace("1 INVITE", "1 FOO"),
            501,
        ),
        (
            base.replace("INVITE sip", "SUBSCRIBE sip")
                .replace("1 INVITE", "1 SUBSCRIBE"),
            405,
        ),
        (in_dialog("BYE", "z9hG4bKx", "nope", "zz", 2, "", ""), 481),
        (in_dialog("INFO", "z9hG4bKy", "nope", "zz", 2, "", ""), 481),
    ];
    for (text, status) in cases {
        h.input(&text);
        let got = h.statuses();
        assert_eq!(got.last().copied(), Some(status), "{text}");
        h.events();
    }
    for junk in [
        "",
        "\r\n\r\n",
        "garbage",
        "SIP/2.0 200 OK\r\n\r\n",
        "INVITE\r\n\r\n",
    ] {
        h.input(junk);
        assert!(h.sent().is_empty(), "{junk:?} must be dropped");
    }
    assert!(h.events().is_empty());
}

#[test]
fn registrar_with_digest_auth_and_expiry() {
    let mut h = Harness::with(|c| {
        c.domain = "sb.test".into();
        c.credentials = Some(Arc::new(StaticCredentials(vec![(
            "1001".into(),
            "secret".into(),
        )])));
    });
    let register = |auth: &str, cseq: u32, expires: u32| {
        format!(
            "REGISTER sip:sb.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKreg{cseq}\r\n\
Max-Forwards: 70\r\nFrom: <sip:1001@sb.test>;tag=r1\r\nTo: <sip:1001@sb.test>\r\nCall-ID: reg1\r\n\
CSeq: {cseq} REGISTER\r\nContact: <sip:1001@127.0.0.1:5070>\r\nExpires: {expires}\r\n{auth}Content-Length: 0\r\n\r\n"
        )
    };
    h.input(&register("", 1, 120));
    let r401 = response_of(&h.sent(), 401);
    let challenge = DigestParams::parse(r401.headers.get("WWW-Authenticate").unwrap()).unwrap();
    assert_eq!(challenge.realm, "sb.test");
    let bad = authorization_header(&challenge, "1001", "nope", "REGISTER", "sip:sb.test", "c1");
    h.input(&register(&format!("Authorization: {bad}\r\n"), 2, 120));
    assert_eq!(h.statuses(), vec![403]);
    let good = authorization_header(
        &challenge,
        "1001",
        "secret",
        "REGISTER",
        "sip:sb.test",
        "c1",
    );
    h.input(&register(&format!("Authorization: {good}\r\n"), 3, 120));
    let ok = response_of(&h.sent(), 200);
    assert_eq!(
        ok.headers.get("Contact"),
        Some("<sip:1001@127.0.0.1:5070>;expires=120")
    );
    let ev = h.events();
    assert!(
        matches!(&ev[..], [Event::Registered { aor, binding }] if aor == "1001@sb.test" && binding.source == peer())
    );
    assert_eq!(h.ep.bindings("1001@sb.test").len(), 1);
    // Too short.
    h.input(&register(&format!("Authorization: {good}\r\n"), 4, 10));
    let r423 = response_of(&h.sent(), 423);
    assert_eq!(r423.headers.get("Min-Expires"), Some("60"));
    // Expiry.
    h.advance_to(120_000);
    assert_eq!(
        h.events(),
        vec![Event::Unregistered {
            aor: "1001@sb.test".into(),
            contact: "sip:1001@127.0.0.1:5070".into()
        }]
    );
    assert!(h.ep.bindings("1001@sb.test").is_empty());
    // Someone else's AOR with valid credentials is refused.
    let other = register(&format!("Authorization: {good}\r\n"), 5, 120)
        .replace("<sip:1001@sb.test>\r\nCall", "<sip:1002@sb.test>\r\nCall");
    h.input(&other);
    assert_eq!(h.statuses(), vec![403]);
}

#[test]
fn invite_authentication_when_required() {
    let mut h = Harness::with(|c| {
        c.authenticate_invites = true;
        c.credentials = Some(Arc::new(StaticCredentials(vec![(
            "trunk".into(),
            "pw".into(),
        )])));
    });
    h.input(&invite("z9hG4bKa1", "ca", OFFER, ""));
    let sent = h.sent();
    let r401 = response_of(&sent, 401);
    assert!(h.events().is_empty());
    let ch = DigestParams::parse(r401.headers.get("WWW-Authenticate").unwrap()).unwrap();
    let auth = authorization_header(&ch, "trunk", "pw", "INVITE", "sip:100@127.0.0.1:5060", "x");
    h.input(
        &invite(
            "z9hG4bKa2",
            "ca",
            OFFER,
            &format!("Authorization: {auth}\r\n"),
        )
        .replace("CSeq: 1 INVITE", "CSeq: 2 INVITE"),
    );
    assert_eq!(h.statuses(), vec![100]);
    h.offered();
}

#[test]
fn invite_retransmitted_after_200_resends_the_200_not_a_new_call() {
    let mut h = Harness::new();
    let (_, tag) = answered_call(&mut h, "cx");
    h.input(&invite("z9hG4bKinv1", "cx", OFFER, ""));
    let sent = h.sent();
    assert_eq!(to_tag(&response_of(&sent, 200)), tag);
    assert!(h.events().is_empty(), "no second CallOffered");
    assert_eq!(h.ep.call_count(), 1);
}

#[test]
fn bye_in_early_dialog_ends_the_invite_with_487() {
    let mut h = Harness::new();
    h.input(&invite("z9hG4bKe", "ce", OFFER, ""));
    let call = h.offered();
    h.ep.ring(h.now, call).unwrap();
    let tag = to_tag(&response_of(&h.sent(), 180));
    h.input(&in_dialog("BYE", "z9hG4bKeb", "ce", &tag, 2, "", ""));
    assert_eq!(h.statuses(), vec![200, 487]);
    assert_eq!(
        h.events(),
        vec![Event::CallEnded {
            call,
            reason: EndReason::RemoteHangup
        }]
    );
}

#[test]
fn early_media_183_then_answer_on_the_same_port() {
    let mut h = Harness::new();
    h.input(&invite("z9hG4bKem", "cem", OFFER, ""));
    h.sent();
    let call = h.offered();
    let media = h.ep.progress(h.now, call, rtp_addr()).unwrap();
    assert_eq!(media.remote_rtp, Some("127.0.0.1:6000".parse().unwrap()));
    let sent = h.sent();
    let r183 = response_of(&sent, 183);
    let sdp183 = SessionDescription::parse(&r183.body).unwrap();
    assert_eq!(sdp183.media[0].port, 30000);
    assert!(matches!(
        h.events().as_slice(),
        [Event::MediaUpdated { .. }]
    ));
    h.ep.answer(h.now, call, rtp_addr()).unwrap();
    let ok = response_of(&h.sent(), 200);
    assert_eq!(to_tag(&ok), to_tag(&r183), "same dialog");
    assert_eq!(
        SessionDescription::parse(&ok.body).unwrap().media[0].port,
        30000
    );
    // Without an offer there is nothing to answer early.
    h.input(&invite("z9hG4bKem2", "cem2", "", ""));
    h.sent();
    h.events();
    let c2 = CallHandle(2);
    assert!(h.ep.progress(h.now, c2, rtp_addr()).is_err());
}

#[test]
fn completed_calls_leave_no_state_behind() {
    let mut h = Harness::new();
    for i in 0..300 {
        let id = format!("leak{i}");
        let (call, tag) = answered_call(&mut h, &id);
        h.input(&in_dialog(
            "ACK",
            &format!("z9hG4bKla{i}"),
            &id,
            &tag,
            1,
            "",
            "",
        ));
        if i % 2 == 0 {
            h.input(&in_dialog(
                "BYE",
                &format!("z9hG4bKlb{i}"),
                &id,
                &tag,
                2,
                "",
                "",
            ));
        } else {
            h.ep.hangup(h.now, call).unwrap();
            let bye = h
                .sent()
                .into_iter()
                .find_map(|m| match m {
                    Message::Request(r) if r.method == Method::Bye => Some(r),
                    _ => None,
                })
                .unwrap();
            h.input(&String::from_utf8(bye.response(200, "OK", None).to_bytes()).unwrap());
        }
        h.sent();
        h.events();
    }
    let busy = h.ep.state_sizes();
    assert_eq!(busy.calls, 0);
    assert!(
        busy.server_transactions > 0,
        "BYE transactions absorb retransmits for a while"
    );
    h.advance_to(60_000);
    let _ = h.ep.poll_timeout();
    assert_eq!(h.ep.state_sizes(), StateSizes::default());
}
