//! One call's media stream as a sans-IO state machine.
//!
//! The glue feeds received datagrams ([`MediaSession::handle_rtp`],
//! [`MediaSession::handle_rtcp`]) and calls [`MediaSession::tick`] every
//! 20 ms from one shared media clock. Each tick takes one frame out of the
//! jitter buffer (decoded, or concealed when missing), and sends one packet:
//! a DTMF event packet while a key press is being generated, otherwise the
//! next 20 ms of queued audio (silence when nothing is queued, which keeps
//! NAT bindings open and lets the peer latch). RTCP SR/RR go out every 5 s.
//!
//! **Symmetric RTP**: the first valid RTP packet fixes where we send
//! (`latching`), whatever the SDP said, so callers behind NAT hear us; after
//! that, packets from other addresses are ignored until a new SDP moves the
//! stream.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::dtmf::{DtmfDetector, DtmfDigit, DtmfGenerator};
use super::g711;
use super::jitter::{JitterBuffer, JitterConfig, Playout};
use super::playout::{Pcm, PlayQueue};
use super::rtp::{ReportBlock, RtcpReport, RtpPacket};
use crate::sdp::{Codec, Direction, NegotiatedMedia};

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// Interval of the media clock.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);
const RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// A datagram the glue must send from this call's RTP (or RTCP) socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaTransmit {
    /// Destination.
    pub to: SocketAddr,
    /// True for RTCP (send from the RTCP socket, RTP port + 1).
    pub rtcp: bool,
    /// Bytes.
    pub data: Vec<u8>,
}

/// 20 ms of decoded 8 kHz mono audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// 160 linear samples.
    pub samples: Vec<i16>,
    /// True when synthesised by loss concealment.
    pub concealed: bool,
}

/// What a media session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A decoded (or concealed) frame from the caller.
    Audio(AudioFrame),
    /// An RFC 4733 key press.
    Dtmf(DtmfDigit),
    /// We latched onto the peer's real RTP source address.
    Latched(SocketAddr),
    /// Everything queued with [`MediaSession::play`] has been sent.
    PlayoutFinished,
    /// An RTCP report from the peer.
    Rtcp(RtcpReport),
}

/// Per-call statistics (the numbers RTCP carries, plus buffer counters).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MediaStats {
    /// RTP packets sent.
    pub packets_sent: u64,
    /// Payload octets sent.
    pub octets_sent: u64,
    /// RTP audio packets received (including late and duplicate).
    pub packets_received: u64,
    /// Packets expected minus received (RFC 3550 cumulative loss).
    pub packets_lost: i64,
    /// Fraction lost over the last RTCP interval (0.0–1.0).
    pub fraction_lost: f32,
    /// Interarrival jitter in milliseconds.
    pub jitter_ms: f32,
    /// Packets that came after their playout slot.
    pub late: u64,
    /// Slots filled by loss concealment.
    pub concealed: u64,
    /// Duplicate packets.
    pub duplicates: u64,
    /// Packets from unexpected addresses after latching.
    pub foreign_packets: u64,
    /// The peer's view of our stream: fraction lost (0.0–1.0), from its last report.
    pub remote_fraction_lost: f32,
    /// The peer's view: jitter of our stream in ms.
    pub remote_jitter_ms: f32,
    /// Round-trip time from the last report block about us, if known.
    pub rtt_ms: Option<f32>,
}

/// One call's media. See the module documentation.
#[derive(Debug)]
pub struct MediaSession {
    codec: Codec,
    payload_type: u8,
    dtmf_pt: Option<u8>,
    direction: Direction,
    remote: Option<SocketAddr>,
    latched: bool,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    cname: String,
    start: Instant,
    ntp_start: u64,
    jitter: JitterBuffer,
    remote_ssrc: Option<u32>,
    detector: DtmfDetector,
    dtmf_queue: VecDeque<(DtmfDigit, u32)>,
    dtmf_current: Option<(DtmfGenerator, u32)>,
    outgoing: PlayQueue,
    playing_prompt: bool,
    last_frame: Vec<i16>,
    conceal_run: u32,
    next_rtcp: Instant,
    last_sr: Option<(u32, Instant)>,
    rx_base: Option<u64>,
    rx_packets: u64,
    prior_expected: u64,
    prior_received: u64,
    stats: MediaStats,
    events: VecDeque<MediaEvent>,
    scratch: Vec<u8>,
}

impl MediaSession {
    /// A session for negotiated media. `ssrc` should be random; `ntp_now`
    /// is the wall clock as a 64-bit NTP timestamp at `now` (used in SRs).
    pub fn new(
        now: Instant,
        media: &NegotiatedMedia,
        ssrc: u32,
        ntp_now: u64,
        cname: String,
    ) -> Self {
        Self {
            codec: media.codec,
            payload_type: media.payload_type,
            dtmf_pt: media.dtmf_payload_type,
            direction: media.direction,
            remote: media.remote_rtp,
            latched: false,
            ssrc,
            seq: (ssrc >> 16) as u16,
            timestamp: ssrc.rotate_left(7),
            cname,
            start: now,
            ntp_start: ntp_now,
            jitter: JitterBuffer::new(JitterConfig::default()),
            remote_ssrc: None,
            detector: DtmfDetector::default(),
            dtmf_queue: VecDeque::new(),
            dtmf_current: None,
            outgoing: PlayQueue::new(),
            playing_prompt: false,
            last_frame: vec![0; FRAME_SAMPLES],
            conceal_run: 0,
            next_rtcp: now + RTCP_INTERVAL,
            last_sr: None,
            rx_base: None,
            rx_packets: 0,
            prior_expected: 0,
            prior_received: 0,
            stats: MediaStats::default(),
            events: VecDeque::new(),
            scratch: Vec::with_capacity(256),
        }
    }

    /// Applies a renegotiation (re-INVITE: hold, unhold, new address or codec).
    pub fn update(&mut self, media: &NegotiatedMedia) {
        self.codec = media.codec;
        self.payload_type = media.payload_type;
        self.dtmf_pt = media.dtmf_payload_type;
        self.direction = media.direction;
        if media.remote_rtp.is_some() && media.remote_rtp != self.remote && !self.latched {
            self.remote = media.remote_rtp;
        } else if media.remote_rtp.is_some() && self.latched {
            // Keep the latched address unless the peer really moved its IP.
            if media.remote_rtp.map(|a| a.ip()) != self.remote.map(|a| a.ip()) {
                self.remote = media.remote_rtp;
                self.latched = false;
            }
        }
    }

    /// Where RTP goes now.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The negotiated codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Current statistics.
    pub fn stats(&self) -> MediaStats {
        let js = self.jitter.stats();
        MediaStats {
            late: js.late,
            concealed: js.concealed,
            duplicates: js.duplicates,
            jitter_ms: self.jitter.jitter() as f32 / 8.0,
            packets_lost: self.cumulative_lost(),
            ..self.stats
        }
    }

    fn ntp(&self, now: Instant) -> u64 {
        let d = now.saturating_duration_since(self.start);
        let frac = ((u64::from(d.subsec_nanos())) << 32) / 1_000_000_000;
        self.ntp_start.wrapping_add((d.as_secs() << 32) | frac)
    }

    fn cumulative_lost(&self) -> i64 {
        match (self.rx_base, self.jitter.highest_seq()) {
            (Some(b), Some(h)) if h >= b => (h - b + 1) as i64 - self.rx_packets as i64,
            _ => 0,
        }
    }

    /// Queues linear 8 kHz audio to send (a prompt, TTS output, …). The
    /// audio is shared, not copied.
    pub fn play(&mut self, pcm: Pcm) {
        self.outgoing.push(pcm);
        self.playing_prompt = true;
    }

    /// Drops queued audio (barge-in). Returns the number of samples dropped.
    pub fn stop_playing(&mut self) -> usize {
        let n = self.outgoing.clear();
        self.playing_prompt = false;
        n
    }

    /// Samples still queued.
    pub fn queued_samples(&self) -> usize {
        self.outgoing.len()
    }

    /// Queues an RFC 4733 key press; false if the peer did not negotiate
    /// telephone-event.
    pub fn send_dtmf(&mut self, digit: DtmfDigit, duration_ms: u32) -> bool {
        if self.dtmf_pt.is_none() {
            return false;
        }
        self.dtmf_queue.push_back((digit, duration_ms));
        true
    }

    /// Next event, if any.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// A datagram arrived on the RTP socket (RTCP multiplexed there is handled too).
    pub fn handle_rtp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        if super::rtp::is_rtcp(data) {
            self.handle_rtcp(now, from, data);
            return;
        }
        let Ok(pkt) = RtpPacket::parse(data) else {
            return;
        };
        let known = pkt.payload_type == self.payload_type || Some(pkt.payload_type) == self.dtmf_pt;
        if !known {
            return;
        }
        if self.latched && Some(from) != self.remote {
            self.stats.foreign_packets += 1;
            return;
        }
        if !self.latched {
            self.latched = true;
            if self.remote != Some(from) {
                self.remote = Some(from);
                self.events.push_back(MediaEvent::Latched(from));
            }
        }
        if self.remote_ssrc != Some(pkt.ssrc) {
            if self.remote_ssrc.is_some() {
                self.jitter.reset();
                self.rx_base = None;
                self.rx_packets = 0;
                self.prior_expected = 0;
                self.prior_received = 0;
            }
            self.remote_ssrc = Some(pkt.ssrc);
        }
        if Some(pkt.payload_type) == self.dtmf_pt {
            if let Some(d) = self.detector.on_packet(pkt.timestamp, pkt.payload) {
                self.events.push_back(MediaEvent::Dtmf(d.digit));
            }
            return;
        }
        self.stats.packets_received += 1;
        self.rx_packets += 1;
        self.jitter
            .push(now, pkt.sequence, pkt.timestamp, pkt.payload);
        if self.rx_base.is_none() {
            self.rx_base = self.jitter.highest_seq();
        }
    }

    /// A datagram arrived on the RTCP socket.
    pub fn handle_rtcp(&mut self, now: Instant, _from: SocketAddr, data: &[u8]) {
        let Ok(reports) = RtcpReport::parse_compound(data) else {
            return;
        };
        for r in reports {
            let blocks = match &r {
                RtcpReport::Sender { ntp, blocks, .. } => {
                    self.last_sr = Some(((ntp >> 16) as u32, now));
                    blocks
                }
                RtcpReport::Receiver { blocks, .. } => blocks,
            };
            if let Some(b) = blocks.iter().find(|b| b.ssrc == self.ssrc) {
                self.stats.remote_fraction_lost = f32::from(b.fraction_lost) / 256.0;
                self.stats.remote_jitter_ms = b.jitter as f32 / 8.0;
                if b.last_sr != 0 {
                    let now_mid = (self.ntp(now) >> 16) as u32;
                    let rtt = now_mid
                        .wrapping_sub(b.last_sr)
                        .wrapping_sub(b.delay_since_last_sr);
                    if rtt < 65536 * 10 {
                        self.stats.rtt_ms = Some(rtt as f32 * 1000.0 / 65536.0);
                    }
                }
            }
            self.events.push_back(MediaEvent::Rtcp(r));
        }
    }

    /// When the next RTCP report is due (the glue also ticks every 20 ms).
    pub fn next_rtcp(&self) -> Instant {
        self.next_rtcp
    }

    /// One 20 ms step: play out one received frame, send one packet, and
    /// an RTCP report when due.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<MediaTransmit>) {
        self.playout();
        self.send_one(out);
        if now >= self.next_rtcp {
            self.next_rtcp = now + RTCP_INTERVAL;
            if let Some(t) = self.rtcp_report(now) {
                out.push(t);
            }
        }
    }

    fn playout(&mut self) {
        match self.jitter.pop() {
            Playout::Frame { payload, .. } => {
                let mut samples = Vec::with_capacity(FRAME_SAMPLES);
                g711::decode(self.codec, &payload, &mut samples);
                samples.resize(FRAME_SAMPLES, 0);
                self.last_frame.clone_from(&samples);
                self.conceal_run = 0;
                self.events.push_back(MediaEvent::Audio(AudioFrame {
                    samples,
                    concealed: false,
                }));
            }
            Playout::Lost => {
                // Repeat the last frame, halving it each time; silence after three.
                self.conceal_run += 1;
                let shift = self.conceal_run.min(15);
                let samples: Vec<i16> = if self.conceal_run > 3 {
                    vec![0; FRAME_SAMPLES]
                } else {
                    self.last_frame.iter().map(|s| s >> shift).collect()
                };
                self.events.push_back(MediaEvent::Audio(AudioFrame {
                    samples,
                    concealed: true,
                }));
            }
            Playout::Empty => {}
        }
    }

    fn send_one(&mut self, out: &mut Vec<MediaTransmit>) {
        let ts_now = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
        let Some(to) = self.remote else {
            self.drain_audio();
            return;
        };
        if !self.direction.sends() {
            self.drain_audio();
            return;
        }
        // DTMF takes the slot while a key press is being sent.
        if self.dtmf_current.is_none()
            && let Some((digit, ms)) = self.dtmf_queue.pop_front()
        {
            self.dtmf_current = Some((DtmfGenerator::new(digit, ms), ts_now));
        }
        if let (Some((g, ts)), Some(pt)) = (self.dtmf_current.as_mut(), self.dtmf_pt) {
            let ts = *ts;
            if let Some(p) = g.next_packet() {
                if g.done() {
                    self.dtmf_current = None;
                }
                let pkt = RtpPacket {
                    marker: p.marker,
                    payload_type: pt,
                    sequence: self.seq,
                    timestamp: ts,
                    ssrc: self.ssrc,
                    payload: &p.payload,
                };
                self.emit(pkt_bytes(&pkt), to, out, 4);
                self.drain_audio();
                return;
            }
            self.dtmf_current = None;
        }
        let mut pcm = [0i16; FRAME_SAMPLES];
        self.outgoing.read(&mut pcm);
        self.check_prompt_done();
        self.scratch.clear();
        g711::encode(self.codec, &pcm, &mut self.scratch);
        let payload = std::mem::take(&mut self.scratch);
        let pkt = RtpPacket {
            marker: false,
            payload_type: self.payload_type,
            sequence: self.seq,
            timestamp: ts_now,
            ssrc: self.ssrc,
            payload: &payload,
        };
        let bytes = pkt_bytes(&pkt);
        self.scratch = payload;
        self.emit(bytes, to, out, FRAME_SAMPLES as u64);
    }

    fn drain_audio(&mut self) {
        self.outgoing.skip(FRAME_SAMPLES);
        self.check_prompt_done();
    }

    fn check_prompt_done(&mut self) {
        if self.playing_prompt && self.outgoing.is_empty() {
            self.playing_prompt = false;
            self.events.push_back(MediaEvent::PlayoutFinished);
        }
    }

    fn emit(
        &mut self,
        data: Vec<u8>,
        to: SocketAddr,
        out: &mut Vec<MediaTransmit>,
        payload_len: u64,
    ) {
        self.seq = self.seq.wrapping_add(1);
        self.stats.packets_sent += 1;
        self.stats.octets_sent += payload_len;
        out.push(MediaTransmit {
            to,
            rtcp: false,
            data,
        });
    }

    /// Builds our SR (if we sent anything) or RR, addressed to RTP port + 1.
    fn rtcp_report(&mut self, now: Instant) -> Option<MediaTransmit> {
        let remote = self.remote?;
        let mut blocks = Vec::new();
        if let (Some(rs), Some(base), Some(high)) =
            (self.remote_ssrc, self.rx_base, self.jitter.highest_seq())
        {
            let expected = high.saturating_sub(base) + 1;
            let exp_int = expected.saturating_sub(self.prior_expected);
            let rec_int = self.rx_packets.saturating_sub(self.prior_received);
            self.prior_expected = expected;
            self.prior_received = self.rx_packets;
            let lost_int = exp_int.saturating_sub(rec_int);
            let fraction = (lost_int << 8)
                .checked_div(exp_int)
                .map_or(0, |f| f.min(255) as u8);
            self.stats.fraction_lost = f32::from(fraction) / 256.0;
            let (lsr, dlsr) = match self.last_sr {
                Some((mid, at)) => {
                    let d = now.saturating_duration_since(at);
                    (mid, (d.as_secs_f64() * 65536.0) as u32)
                }
                None => (0, 0),
            };
            blocks.push(ReportBlock {
                ssrc: rs,
                fraction_lost: fraction,
                cumulative_lost: self.cumulative_lost().clamp(-0x80_0000, 0x7F_FFFF) as i32,
                highest_seq: high as u32,
                jitter: self.jitter.jitter(),
                last_sr: lsr,
                delay_since_last_sr: dlsr,
            });
        }
        let report = if self.stats.packets_sent > 0 {
            RtcpReport::Sender {
                ssrc: self.ssrc,
                ntp: self.ntp(now),
                rtp_timestamp: self.timestamp,
                packet_count: self.stats.packets_sent as u32,
                octet_count: self.stats.octets_sent as u32,
                blocks,
            }
        } else {
            RtcpReport::Receiver {
                ssrc: self.ssrc,
                blocks,
            }
        };
        let mut data = Vec::with_capacity(128);
        report.write_compound(&self.cname, &mut data);
        Some(MediaTransmit {
            to: SocketAddr::new(remote.ip(), remote.port().wrapping_add(1)),
            rtcp: true,
            data,
        })
    }
}

fn pkt_bytes(p: &RtpPacket<'_>) -> Vec<u8> {
    let mut v = Vec::with_capacity(12 + p.payload.len());
    p.write(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::dtmf::TelephoneEvent;

    fn neg() -> NegotiatedMedia {
        NegotiatedMedia {
            remote_rtp: Some("127.0.0.1:6000".parse().unwrap()),
            codec: Codec::Pcmu,
            payload_type: 0,
            dtmf_payload_type: Some(101),
            direction: Direction::SendRecv,
            ptime_ms: 20,
        }
    }

    fn rtp(seq: u16, ts: u32, pt: u8, payload: &[u8]) -> Vec<u8> {
        pkt_bytes(&RtpPacket {
            marker: false,
            payload_type: pt,
            sequence: seq,
            timestamp: ts,
            ssrc: 0xABCD,
            payload,
        })
    }

    #[test]
    fn sends_one_packet_per_tick_with_queued_audio_then_silence() {
        let t0 = Instant::now();
        let mut s = MediaSession::new(t0, &neg(), 0x1234_5678, 0, "sb".into());
        s.play(vec![1000i16; 240].into());
        let mut out = Vec::new();
        for i in 0..3 {
            s.tick(t0 + FRAME_DURATION * i, &mut out);
        }
        assert_eq!(out.len(), 3);
        let pkts: Vec<RtpPacket<'_>> = out
            .iter()
            .map(|t| RtpPacket::parse(&t.data).unwrap())
            .collect();
        assert_eq!(pkts[1].sequence, pkts[0].sequence.wrapping_add(1));
        assert_eq!(pkts[1].timestamp, pkts[0].timestamp.wrapping_add(160));
        assert_eq!(pkts[0].payload.len(), 160);
        assert_eq!(pkts[0].payload[0], g711::linear_to_ulaw(1000));
        assert_eq!(pkts[1].payload[79], g711::linear_to_ulaw(1000));
        assert_eq!(
            pkts[1].payload[80], 0xFF,
            "second half of frame 2 is silence"
        );
        assert_eq!(pkts[2].payload[0], 0xFF);
        let mut finished = 0;
        while let Some(e) = s.poll_event() {
            if e == MediaEvent::PlayoutFinished {
                finished += 1;
            }
        }
        assert_eq!(finished, 1);
        assert_eq!(s.stats().packets_sent, 3);
    }

    #[test]
    fn latches_to_the_real_source_and_ignores_others() {
        let t0 = Instant::now();
        let mut s = MediaSession::new(t0, &neg(), 1, 0, "sb".into());
        let nat: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        s.handle_rtp(t0, nat, &rtp(1, 0, 0, &[0xFF; 160]));
        assert_eq!(s.poll_event(), Some(MediaEvent::Latched(nat)));
        assert_eq!(s.remote(), Some(nat));
        s.handle_rtp(
            t0,
            "127.0.0.1:1".parse().unwrap(),
            &rtp(2, 160, 0, &[0xFF; 160]),
        );
        assert_eq!(s.stats().foreign_packets, 1);
        let mut out = Vec::new();
        s.tick(t0, &mut out);
        assert_eq!(out[0].to, nat);
    }

    #[test]
    fn receives_decodes_conceals_and_reports_loss() {
        let t0 = Instant::now();
        let mut s = MediaSession::new(t0, &neg(), 1, 0, "sb".into());
        let from: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let tone = g711::linear_to_ulaw(8000);
        let mut out = Vec::new();
        let mut frames = Vec::new();
        // Packets 10..=16 arrive on time except 12, which is lost; one tick per 20 ms.
        for i in 0..8u16 {
            let now = t0 + FRAME_DURATION * u32::from(i);
            let seq = 10 + i;
            if seq != 12 && seq <= 16 {
                s.handle_rtp(now, from, &rtp(seq, u32::from(seq) * 160, 0, &[tone; 160]));
            }
            s.tick(now, &mut out);
            while let Some(e) = s.poll_event() {
                if let MediaEvent::Audio(f) = e {
                    frames.push(f);
                }
            }
        }
        assert_eq!(frames.len(), 7, "6 frames + 1 concealed");
        assert!(!frames[0].concealed);
        assert_eq!(frames[0].samples[0], g711::ulaw_to_linear(tone));
        assert!(frames[2].concealed);
        assert_eq!(frames[2].samples[0], frames[1].samples[0] >> 1);
        let st = s.stats();
        assert_eq!(st.packets_received, 6);
        assert_eq!(st.packets_lost, 1);
        assert_eq!(st.concealed, 1);
        // RTCP after 5 s carries the loss.
        s.tick(t0 + Duration::from_secs(5), &mut out);
        let rtcp = out.iter().find(|t| t.rtcp).unwrap();
        assert_eq!(rtcp.to.port(), 6001);
        let reports = RtcpReport::parse_compound(&rtcp.data).unwrap();
        let RtcpReport::Sender {
            blocks,
            packet_count,
            ..
        } = &reports[0]
        else {
            panic!("we sent packets, so SR")
        };
        assert_eq!(*packet_count, 9);
        assert_eq!(blocks[0].ssrc, 0xABCD);
        assert_eq!(blocks[0].cumulative_lost, 1);
        assert_eq!(blocks[0].fraction_lost, (256 / 7) as u8);
        assert_eq!(blocks[0].highest_seq as u16, 16);
    }

    #[test]
    fn detects_and_generates_rfc4733() {
        let t0 = Instant::now();
        let mut s = MediaSession::new(t0, &neg(), 1, 0, "sb".into());
        let from: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let ev = TelephoneEvent {
            event: 11,
            end: false,
            volume: 10,
            duration: 160,
        };
        let end = TelephoneEvent {
            end: true,
            duration: 800,
            ..ev
        };
        s.handle_rtp(t0, from, &rtp(1, 5000, 101, &ev.to_bytes()));
        for _ in 0..3 {
            s.handle_rtp(t0, from, &rtp(2, 5000, 101, &end.to_bytes()));
        }
        let dtmf: Vec<_> = std::iter::from_fn(|| s.poll_event())
            .filter_map(|e| {
                if let MediaEvent::Dtmf(d) = e {
                    Some(d.as_char())
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(dtmf, vec!['#']);
        assert!(s.send_dtmf(DtmfDigit::from_char('7').unwrap(), 60));
        let mut out = Vec::new();
        for i in 0..6 {
            s.tick(t0 + FRAME_DURATION * i, &mut out);
        }
        let pts: Vec<u8> = out
            .iter()
            .map(|t| RtpPacket::parse(&t.data).unwrap().payload_type)
            .collect();
        // 60 ms = 3 packets, last is the end, sent 3 times => 5 event packets, then audio.
        assert_eq!(pts, vec![101, 101, 101, 101, 101, 0]);
        let first = RtpPacket::parse(&out[0].data).unwrap();
        let last = RtpPacket::parse(&out[4].data).unwrap();
        assert!(first.marker);
        assert_eq!(first.timestamp, last.timestamp);
        assert_eq!(TelephoneEvent::parse(first.payload).unwrap().event, 7);
        let mut no_te = neg();
        no_te.dtmf_payload_type = None;
        let mut s2 = MediaSession::new(t0, &no_te, 1, 0, "sb".into());
        assert!(!s2.send_dtmf(DtmfDigit::from_char('1').unwrap(), 100));
    }

    #[test]
    fn hold_stops_sending_and_unhold_resumes() {
        let t0 = Instant::now();
        let mut s = MediaSession::new(t0, &neg(), 1, 0, "sb".into());
        let mut held = neg();
        held.direction = Direction::RecvOnly;
        s.update(&held);
        let mut out = Vec::new();
        s.tick(t0, &mut out);
        assert!(out.is_empty());
        s.update(&neg());
        s.tick(t0 + FRAME_DURATION, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn rtt_from_report_about_us() {
        let t0 = Instant::now();
        let mut s = MediaSession::new(t0, &neg(), 77, 0, "sb".into());
        let mut out = Vec::new();
        s.tick(t0, &mut out);
        // Peer says: our SR's middle NTP bits were 0 s … use LSR = 1 s, DLSR = 0.5 s,
        // arriving at t0 + 1.6 s => RTT 100 ms.
        let rr = RtcpReport::Receiver {
            ssrc: 0xABCD,
            blocks: vec![ReportBlock {
                ssrc: 77,
                fraction_lost: 64,
                cumulative_lost: 3,
                highest_seq: 1,
                jitter: 80,
                last_sr: 65536,
                delay_since_last_sr: 32768,
            }],
        };
        let mut buf = Vec::new();
        rr.write_compound("peer", &mut buf);
        s.handle_rtcp(
            t0 + Duration::from_millis(1600),
            "127.0.0.1:6001".parse().unwrap(),
            &buf,
        );
        let st = s.stats();
        assert!((st.remote_fraction_lost - 0.25).abs() < 1e-6);
        assert!((st.remote_jitter_ms - 10.0).abs() < 1e-6);
        let rtt = st.rtt_ms.unwrap();
        assert!((rtt - 100.0).abs() < 0.1, "rtt {rtt}");
    }
}
