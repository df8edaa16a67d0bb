//! The tokio server end to end without sipp: a tiny UDP "phone" in the test
//! calls in, sends a tone, and checks that the application receives the
//! decoded audio, that audio played by the application arrives as G.711 RTP,
//! and that hang-up from the application reaches the phone as a BYE.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use switchboard_voice::media::g711;
use switchboard_voice::media::rtp::{RtpPacket, is_rtcp};
use switchboard_voice::server::{ServerConfig, ServerEvent, VoiceServer};
use switchboard_voice::sip::endpoint::EndReason;
use switchboard_voice::sip::message::{Message, Method};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

async fn next_event(
    rx: &mut UnboundedReceiver<ServerEvent>,
    want: impl Fn(&ServerEvent) -> bool,
) -> ServerEvent {
    timeout(Duration::from_secs(10), async {
        loop {
            let ev = rx.recv().await.expect("server running");
            if want(&ev) {
                return ev;
            }
        }
    })
    .await
    .expect("event in time")
}

async fn recv_sip(sock: &UdpSocket) -> Message {
    let mut buf = vec![0u8; 65_535];
    let (n, _) = timeout(Duration::from_secs(10), sock.recv_from(&mut buf))
        .await
        .expect("SIP in time")
        .unwrap();
    Message::parse(&buf[..n]).unwrap()
}

#[tokio::test]
async fn audio_flows_both_ways_and_server_hangs_up() {
    let mut cfg = ServerConfig::local("127.0.0.1:0".parse().unwrap());
    cfg.rtp_ports = 41_000..41_400;
    let (server, mut events) = VoiceServer::start(cfg).await.unwrap();
    let target = server.local_addr();
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (sip_addr, rtp_addr) = (sip.local_addr().unwrap(), rtp.local_addr().unwrap());
    let body = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
        rtp_addr.port()
    );
    let dialog = format!(
        "From: <sip:phone@{sip_addr}>;tag=ph1\r\nCall-ID: audio-test\r\nMax-Forwards: 70\r\n"
    );
    let invite = format!(
        "INVITE sip:ivr@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {sip_addr};branch=z9hG4bK-a1\r\n{dialog}\
To: <sip:ivr@{target}>\r\nCSeq: 1 INVITE\r\nContact: <sip:phone@{sip_addr}>\r\n\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    sip.send_to(invite.as_bytes(), target).await.unwrap();

    let ServerEvent::CallOffered { call, info } = next_event(&mut events, |e| {
        matches!(e, ServerEvent::CallOffered { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(info.to.user.as_deref(), Some("ivr"));
    server.answer(call).unwrap();
    let ok = loop {
        if let Message::Response(r) = recv_sip(&sip).await
            && r.status == 200
        {
            break r;
        }
    };
    let to = ok.headers.get("To").unwrap().to_owned();
    let ack = format!(
        "ACK sip:ivr@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {sip_addr};branch=z9hG4bK-a2\r\n{dialog}To: {to}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    sip.send_to(ack.as_bytes(), target).await.unwrap();
    next_event(&mut events, |e| {
        matches!(e, ServerEvent::CallEstablished { .. })
    })
    .await;
    let answer = switchboard_voice::sdp::SessionDescription::parse(&ok.body).unwrap();
    let server_rtp = std::net::SocketAddr::new(answer.connection.unwrap(), answer.media[0].port);

    // Caller -> application: send 10 frames of a constant level, PCMA.
    assert!(server.receive_audio(call, true));
    for i in 0..10u16 {
        let payload = [g711::linear_to_alaw(4000); 160];
        let mut pkt = Vec::new();
        RtpPacket {
            marker: i == 0,
            payload_type: 8,
            sequence: 100 + i,
            timestamp: u32::from(i) * 160,
            ssrc: 99,
            payload: &payload,
        }
        .write(&mut pkt);
        rtp.send_to(&pkt, server_rtp).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ServerEvent::Audio { frame, .. } = next_event(
        &mut events,
        |e| matches!(e, ServerEvent::Audio { frame, .. } if !frame.concealed),
    )
    .await
    else {
        unreachable!()
    };
    assert_eq!(frame.samples.len(), 160);
    assert!(
        frame
            .samples
            .iter()
            .all(|s| *s == g711::alaw_to_linear(g711::linear_to_alaw(4000)))
    );

    // Application -> caller: play a level the phone can recognise.
    assert!(server.play(call, [-1234i16; 800].into()));
    let mut buf = [0u8; 1500];
    let wanted = g711::linear_to_alaw(-1234);
    let mut seen = 0;
    timeout(Duration::from_secs(10), async {
        while seen < 5 {
            let (n, _) = rtp.recv_from(&mut buf).await.unwrap();
            if is_rtcp(&buf[..n]) {
                continue;
            }
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            assert_eq!(p.payload_type, 8, "PCMA as negotiated");
            if p.payload.iter().all(|b| *b == wanted) {
                seen += 1;
            }
        }
    })
    .await
    .expect("played audio arrives");
    next_event(&mut events, |e| {
        matches!(e, ServerEvent::PlayoutFinished { .. })
    })
    .await;

    let stats = server.stats(call).await.expect("live call has stats");
    assert!(
        stats.packets_received >= 10 && stats.packets_sent >= 5,
        "{stats:?}"
    );

    // Application hangs up: the phone gets a BYE and answers it.
    server.hangup(call).unwrap();
    let bye = loop {
        if let Message::Request(r) = recv_sip(&sip).await
            && r.method == Method::Bye
        {
            break r;
        }
    };
    sip.send_to(&bye.response(200, "OK", None).to_bytes(), target)
        .await
        .unwrap();
    let ServerEvent::CallEnded { reason, stats, .. } =
        next_event(&mut events, |e| matches!(e, ServerEvent::CallEnded { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(reason, EndReason::LocalHangup);
    assert!(stats.is_some());
    assert_eq!(server.media_calls(), 0);
    server.shutdown();
}
