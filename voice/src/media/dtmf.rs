//! RFC 4733 telephone-events (DTMF over RTP): payload format, a detector
//! that reports each key press once despite redundant and retransmitted
//! packets, and a generator producing the packet sequence for a key press.

/// A DTMF key (RFC 4733 events 0–15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtmfDigit(char);

impl DtmfDigit {
    /// From a character (`0-9`, `*`, `#`, `A-D`, case-insensitive).
    pub fn from_char(c: char) -> Option<Self> {
        let c = c.to_ascii_uppercase();
        matches!(c, '0'..='9' | '*' | '#' | 'A'..='D').then_some(Self(c))
    }

    /// From an RFC 4733 event code.
    pub fn from_event(code: u8) -> Option<Self> {
        let c = match code {
            0..=9 => char::from(b'0' + code),
            10 => '*',
            11 => '#',
            12..=15 => char::from(b'A' + code - 12),
            _ => return None,
        };
        Some(Self(c))
    }

    /// The RFC 4733 event code.
    pub fn event(self) -> u8 {
        match self.0 {
            '*' => 10,
            '#' => 11,
            c @ '0'..='9' => c as u8 - b'0',
            c => c as u8 - b'A' + 12,
        }
    }

    /// The key as a character.
    pub fn as_char(self) -> char {
        self.0
    }
}

impl std::fmt::Display for DtmfDigit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code.
    pub event: u8,
    /// End bit.
    pub end: bool,
    /// Volume (0–63, -dBm0).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the 4-byte payload (extra bytes, e.g. redundancy, ignored).
    pub fn parse(p: &[u8]) -> Option<Self> {
        if p.len() < 4 {
            return None;
        }
        Some(Self {
            event: p[0],
            end: p[1] & 0x80 != 0,
            volume: p[1] & 0x3F,
            duration: u16::from_be_bytes([p[2], p[3]]),
        })
    }

    /// The 4-byte payload.
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// A detected key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectedDtmf {
    /// The key.
    pub digit: DtmfDigit,
    /// RTP timestamp of the event start (identifies it).
    pub timestamp: u32,
}

/// Reports each telephone-event once. Events are identified by their RTP
/// timestamp (RFC 4733 §2.5.1.3): the first packet of a new timestamp is a
/// new key press; later updates and the three redundant end packets for the
/// same timestamp are absorbed.
#[derive(Debug, Clone, Default)]
pub struct DtmfDetector {
    last: Option<u32>,
}

impl DtmfDetector {
    /// Feeds one telephone-event RTP packet.
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<DetectedDtmf> {
        let ev = TelephoneEvent::parse(payload)?;
        let digit = DtmfDigit::from_event(ev.event)?;
        if self.last == Some(timestamp) {
            return None;
        }
        self.last = Some(timestamp);
        Some(DetectedDtmf { digit, timestamp })
    }
}

/// One packet of a generated event: payload plus RTP header hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// The 4-byte payload.
    pub payload: [u8; 4],
    /// Marker bit (first packet of the event).
    pub marker: bool,
}

/// Produces the packets of one key press: one every 20 ms with the same RTP
/// timestamp and a growing duration, then the end packet three times
/// (RFC 4733 §2.5.1.4).
#[derive(Debug, Clone)]
pub struct DtmfGenerator {
    event: u8,
    total: u16,
    step: u16,
    sent: u16,
    end_sent: u8,
}

impl DtmfGenerator {
    /// A key press lasting `duration_ms` (at 8 kHz, 20 ms packets).
    pub fn new(digit: DtmfDigit, duration_ms: u32) -> Self {
        let total = (duration_ms.clamp(40, 5000) * 8) as u16;
        Self {
            event: digit.event(),
            total,
            step: 160,
            sent: 0,
            end_sent: 0,
        }
    }

    /// Whether every packet has been produced.
    pub fn done(&self) -> bool {
        self.end_sent >= 3
    }

    /// The next packet (call every 20 ms), or `None` when finished.
    pub fn next_packet(&mut self) -> Option<EventPacket> {
        if self.done() {
            return None;
        }
        let marker = self.sent == 0;
        self.sent = (self.sent + self.step).min(self.total);
        let end = self.sent >= self.total;
        if end {
            self.end_sent += 1;
        }
        Some(EventPacket {
            payload: TelephoneEvent {
                event: self.event,
                end,
                volume: 10,
                duration: self.sent,
            }
            .to_bytes(),
            marker,
        })
    }
}

/// Parses an INFO body carrying DTMF: `application/dtmf-relay`
/// (`Signal=5\r\nDuration=160`) or `application/dtmf` (`5`).
pub fn parse_info_body(content_type: &str, body: &[u8]) -> Option<DtmfDigit> {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    match ct.as_str() {
        "application/dtmf-relay" => text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            if !k.trim().eq_ignore_ascii_case("signal") {
                return None;
            }
            let v = v.trim();
            match v.parse::<u8>() {
                Ok(n) if v.len() == 2 => DtmfDigit::from_event(n),
                _ => v.chars().next().and_then(DtmfDigit::from_char),
            }
        }),
        "application/dtmf" => {
            let t = text.trim();
            match t.parse::<u8>() {
                Ok(n) if n > 9 => DtmfDigit::from_event(n),
                _ => t.chars().next().and_then(DtmfDigit::from_char),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_event_codes_map_both_ways() {
        for code in 0..16 {
            let d = DtmfDigit::from_event(code).unwrap();
            assert_eq!(d.event(), code);
            assert_eq!(DtmfDigit::from_char(d.as_char()), Some(d));
        }
        assert_eq!(DtmfDigit::from_event(16), None);
        assert_eq!(DtmfDigit::from_char('x'), None);
        assert_eq!(DtmfDigit::from_char('#').unwrap().event(), 11);
    }

    #[test]
    fn generator_then_detector_reports_each_press_once() {
        let mut det = DtmfDetector::default();
        let mut detected = Vec::new();
        for (i, c) in "1#9".chars().enumerate() {
            let mut g = DtmfGenerator::new(DtmfDigit::from_char(c).unwrap(), 100);
            let ts = 1000 + i as u32 * 8000;
            let mut packets = Vec::new();
            while let Some(p) = g.next_packet() {
                packets.push(p);
            }
            // 100 ms = 800 units = 5 packets of which the last is an end, +2 repeats.
            assert_eq!(packets.len(), 7);
            assert!(packets[0].marker && !packets[1].marker);
            let last = TelephoneEvent::parse(&packets[6].payload).unwrap();
            assert!(last.end);
            assert_eq!(last.duration, 800);
            assert!(!TelephoneEvent::parse(&packets[3].payload).unwrap().end);
            for p in packets {
                detected.extend(det.on_packet(ts, &p.payload));
            }
        }
        let s: String = detected.iter().map(|d| d.digit.as_char()).collect();
        assert_eq!(s, "1#9");
    }

    #[test]
    fn same_key_twice_is_two_presses() {
        let mut det = DtmfDetector::default();
        let ev = TelephoneEvent {
            event: 5,
            end: true,
            volume: 10,
            duration: 800,
        }
        .to_bytes();
        assert!(det.on_packet(100, &ev).is_some());
        assert!(det.on_packet(100, &ev).is_none());
        assert!(det.on_packet(2000, &ev).is_some());
        assert!(
            det.on_packet(3000, &[1, 2]).is_none(),
            "short payload ignored"
        );
        assert!(
            det.on_packet(4000, &[99, 0, 0, 0]).is_none(),
            "non-DTMF event ignored"
        );
    }

    #[test]
    fn info_bodies() {
        let d = |ct, b: &str| parse_info_body(ct, b.as_bytes()).map(DtmfDigit::as_char);
        assert_eq!(
            d("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(
            d("application/dtmf-relay", "Signal= #\r\nDuration=160"),
            Some('#')
        );
        assert_eq!(d("Application/DTMF-Relay; x=y", "signal=11\r\n"), Some('#'));
        assert_eq!(d("application/dtmf", "7"), Some('7'));
        assert_eq!(d("application/dtmf", "10"), Some('*'));
        assert_eq!(d("text/plain", "5"), None);
        assert_eq!(d("application/dtmf-relay", "Duration=160"), None);
    }
}
