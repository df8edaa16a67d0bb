//! SDP (RFC 4566) parsing and the offer/answer model (RFC 3264) for what
//! Switchboard speaks: one audio stream over RTP/AVP with PCMU or PCMA and
//! RFC 4733 telephone-events.
//!
//! [`answer`] takes a remote offer and either returns our answer plus the
//! [`NegotiatedMedia`] the RTP layer needs, or a [`NegotiationError`] that
//! the endpoint answers with `488 Not Acceptable Here`. Streams we cannot
//! take are rejected in the answer with port 0, as RFC 3264 §6 requires.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// Media direction attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    SendRecv,
    /// `a=sendonly`
    SendOnly,
    /// `a=recvonly`
    RecvOnly,
    /// `a=inactive`
    Inactive,
}

impl Direction {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sendrecv" => Self::SendRecv,
            "sendonly" => Self::SendOnly,
            "recvonly" => Self::RecvOnly,
            "inactive" => Self::Inactive,
            _ => return None,
        })
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// The direction an answerer uses for an offered direction (RFC 3264 §6.1).
    pub fn answer_to(self) -> Self {
        match self {
            Self::SendRecv => Self::SendRecv,
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            Self::Inactive => Self::Inactive,
        }
    }

    /// Whether we may send media in this direction (seen from our side).
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// Whether we expect to receive media.
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }
}

/// Audio codecs Switchboard negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// The RFC 3551 static payload type.
    pub fn static_pt(self) -> u8 {
        match self {
            Self::Pcmu => 0,
            Self::Pcma => 8,
        }
    }

    /// The rtpmap encoding name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pcmu => "PCMU",
            Self::Pcma => "PCMA",
        }
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type (`audio`, `video`, …).
    pub kind: String,
    /// Port (0 = rejected/disabled).
    pub port: u16,
    /// Transport protocol (`RTP/AVP`, …).
    pub proto: String,
    /// Format list (payload types for RTP).
    pub formats: Vec<String>,
    /// Media-level connection address.
    pub connection: Option<IpAddr>,
    /// Attributes `a=name[:value]` in order.
    pub attributes: Vec<(String, Option<String>)>,
}

impl MediaDescription {
    /// The first value of an attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// The direction attribute, if present.
    pub fn direction(&self) -> Option<Direction> {
        self.attributes.iter().find_map(|(n, v)| {
            if v.is_none() {
                Direction::parse(n)
            } else {
                None
            }
        })
    }

    /// `(payload type, encoding name, clock rate)` for each rtpmap.
    pub fn rtpmaps(&self) -> Vec<(u8, String, u32)> {
        self.attributes
            .iter()
            .filter(|(n, _)| n == "rtpmap")
            .filter_map(|(_, v)| {
                let v = v.as_deref()?;
                let (pt, enc) = v.split_once(' ')?;
                let mut it = enc.trim().split('/');
                let name = it.next()?.to_owned();
                let rate = it.next()?.parse().ok()?;
                Some((pt.trim().parse().ok()?, name, rate))
            })
            .collect()
    }
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` session version.
    pub session_version: u64,
    /// `o=` address.
    pub origin_addr: Option<IpAddr>,
    /// Session-level `c=` address.
    pub connection: Option<IpAddr>,
    /// Session-level attributes.
    pub attributes: Vec<(String, Option<String>)>,
    /// Media sections.
    pub media: Vec<MediaDescription>,
}

/// Why an SDP body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Not UTF-8 text or no `v=0` first.
    #[error("not an SDP body")]
    NotSdp,
    /// A line is malformed.
    #[error("bad SDP line: {0}")]
    BadLine(String),
}

fn parse_c(v: &str) -> Result<Option<IpAddr>, SdpError> {
    // c=IN IP4 1.2.3.4[/ttl]
    let mut it = v.split_whitespace();
    let (Some("IN"), Some(_), Some(addr)) = (it.next(), it.next(), it.next()) else {
        return Err(SdpError::BadLine(format!("c={v}")));
    };
    let addr = addr.split('/').next().unwrap_or(addr);
    Ok(addr.parse().ok())
}

fn parse_attr(v: &str) -> (String, Option<String>) {
    match v.split_once(':') {
        Some((n, val)) => (n.to_owned(), Some(val.to_owned())),
        None => (v.to_owned(), None),
    }
}

impl SessionDescription {
    /// Parses an SDP body.
    pub fn parse(body: &[u8]) -> Result<Self, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::NotSdp)?;
        let mut sd = Self {
            session_id: 0,
            session_version: 0,
            origin_addr: None,
            connection: None,
            attributes: Vec::new(),
            media: Vec::new(),
        };
        let mut saw_v = false;
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(SdpError::BadLine(line.to_owned()));
            };
            if k.len() != 1 {
                return Err(SdpError::BadLine(line.to_owned()));
            }
            if !saw_v {
                if k != "v" || v.trim() != "0" {
                    return Err(SdpError::NotSdp);
                }
                saw_v = true;
                continue;
            }
            match (k, sd.media.last_mut()) {
                ("o", None) => {
                    let f: Vec<&str> = v.split_whitespace().collect();
                    if f.len() != 6 {
                        return Err(SdpError::BadLine(line.to_owned()));
                    }
                    sd.session_id = f[1].parse().unwrap_or(0);
                    sd.session_version = f[2].parse().unwrap_or(0);
                    sd.origin_addr = f[5].parse().ok();
                }
                ("c", None) => sd.connection = parse_c(v)?,
                ("c", Some(m)) => m.connection = parse_c(v)?,
                ("a", None) => sd.attributes.push(parse_attr(v)),
                ("a", Some(m)) => m.attributes.push(parse_attr(v)),
                ("m", _) => {
                    let f: Vec<&str> = v.split_whitespace().collect();
                    if f.len() < 3 {
                        return Err(SdpError::BadLine(line.to_owned()));
                    }
                    let port = f[1]
                        .split('/')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .ok_or_else(|| SdpError::BadLine(line.to_owned()))?;
                    sd.media.push(MediaDescription {
                        kind: f[0].to_owned(),
                        port,
                        proto: f[2].to_owned(),
                        formats: f[3..].iter().map(|s| (*s).to_owned()).collect(),
                        connection: None,
                        attributes: Vec::new(),
                    });
                }
                _ => {}
            }
        }
        if !saw_v {
            return Err(SdpError::NotSdp);
        }
        Ok(sd)
    }

    /// Serialises to SDP text with CRLF line ends.
    pub fn to_bytes(&self) -> Vec<u8> {
        let addr = self
            .origin_addr
            .or(self.connection)
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let ipver = |a: IpAddr| if a.is_ipv4() { "IP4" } else { "IP6" };
        let mut s = String::new();
        let _ = write!(
            s,
            "v=0\r\no=switchboard {} {} IN {} {addr}\r\ns=switchboard\r\n",
            self.session_id,
            self.session_version,
            ipver(addr)
        );
        if let Some(c) = self.connection {
            let _ = write!(s, "c=IN {} {c}\r\n", ipver(c));
        }
        s.push_str("t=0 0\r\n");
        for (n, v) in &self.attributes {
            let _ = match v {
                Some(v) => write!(s, "a={n}:{v}\r\n"),
                None => write!(s, "a={n}\r\n"),
            };
        }
        for m in &self.media {
            let _ = write!(s, "m={} {} {}", m.kind, m.port, m.proto);
            for f in &m.formats {
                let _ = write!(s, " {f}");
            }
            s.push_str("\r\n");
            if let Some(c) = m.connection {
                let _ = write!(s, "c=IN {} {c}\r\n", ipver(c));
            }
            for (n, v) in &m.attributes {
                let _ = match v {
                    Some(v) => write!(s, "a={n}:{v}\r\n"),
                    None => write!(s, "a={n}\r\n"),
                };
            }
        }
        s.into_bytes()
    }
}

/// What both sides agreed on for the audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// Where the peer wants RTP (from its SDP); `None` when it put the
    /// stream on hold with the `0.0.0.0` address.
    pub remote_rtp: Option<SocketAddr>,
    /// The codec.
    pub codec: Codec,
    /// Payload type used for the codec.
    pub payload_type: u8,
    /// Payload type for RFC 4733 telephone-event, if both support it.
    pub dtmf_payload_type: Option<u8>,
    /// Our direction (what we may do).
    pub direction: Direction,
    /// Packetisation time in milliseconds (we always send 20).
    pub ptime_ms: u32,
}

impl NegotiatedMedia {
    /// True when the peer has put us on hold (it will not send to us, or
    /// sends nothing at all).
    pub fn is_held(&self) -> bool {
        !self.direction.sends() || self.remote_rtp.is_none()
    }
}

/// Why an offer cannot be accepted (answered with 488).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// The body is not valid SDP.
    #[error(transparent)]
    Sdp(#[from] SdpError),
    /// No audio stream over RTP/AVP with PCMU or PCMA.
    #[error("no acceptable audio stream")]
    NoAcceptableAudio,
    /// The answer chose something we did not offer.
    #[error("answer does not match the offer")]
    AnswerMismatch,
}

/// Our payload type for telephone-event in offers we make.
pub const DTMF_PT: u8 = 101;

fn codec_for(pt: u8, maps: &[(u8, String, u32)]) -> Option<Codec> {
    if let Some((_, name, rate)) = maps.iter().find(|(p, _, _)| *p == pt) {
        if *rate != 8000 {
            return None;
        }
        return match name.to_ascii_uppercase().as_str() {
            "PCMU" => Some(Codec::Pcmu),
            "PCMA" => Some(Codec::Pcma),
            _ => None,
        };
    }
    match pt {
        0 => Some(Codec::Pcmu),
        8 => Some(Codec::Pcma),
        _ => None,
    }
}

fn dtmf_pt(maps: &[(u8, String, u32)]) -> Option<u8> {
    maps.iter()
        .find(|(_, n, r)| n.eq_ignore_ascii_case("telephone-event") && *r == 8000)
        .map(|(p, _, _)| *p)
}

fn remote_addr(sd: &SessionDescription, m: &MediaDescription) -> Option<SocketAddr> {
    let ip = m.connection.or(sd.connection)?;
    if ip.is_unspecified() || m.port == 0 {
        return None;
    }
    Some(SocketAddr::new(ip, m.port))
}

fn effective_direction(sd: &SessionDescription, m: &MediaDescription) -> Direction {
    m.direction()
        .or_else(|| {
            sd.attributes.iter().find_map(|(n, v)| {
                if v.is_none() {
                    Direction::parse(n)
                } else {
                    None
                }
            })
        })
        .unwrap_or(Direction::SendRecv)
}

/// Builds an offer (used for INVITEs without SDP and for our re-INVITEs).
pub fn offer(
    local_rtp: SocketAddr,
    session_id: u64,
    version: u64,
    direction: Direction,
    codecs: &[Codec],
) -> SessionDescription {
    let mut formats: Vec<String> = codecs.iter().map(|c| c.static_pt().to_string()).collect();
    formats.push(DTMF_PT.to_string());
    let mut attributes: Vec<(String, Option<String>)> = codecs
        .iter()
        .map(|c| {
            (
                "rtpmap".to_owned(),
                Some(format!("{} {}/8000", c.static_pt(), c.name())),
            )
        })
        .collect();
    attributes.push((
        "rtpmap".into(),
        Some(format!("{DTMF_PT} telephone-event/8000")),
    ));
    attributes.push(("fmtp".into(), Some(format!("{DTMF_PT} 0-16"))));
    attributes.push(("ptime".into(), Some("20".into())));
    attributes.push((direction.as_str().into(), None));
    SessionDescription {
        session_id,
        session_version: version,
        origin_addr: Some(local_rtp.ip()),
        connection: Some(local_rtp.ip()),
        attributes: Vec::new(),
        media: vec![MediaDescription {
            kind: "audio".into(),
            port: local_rtp.port(),
            proto: "RTP/AVP".into(),
            formats,
            connection: None,
            attributes,
        }],
    }
}

/// Answers a remote offer (RFC 3264 §6). `codecs` is our preference list;
/// the offerer's order wins among codecs we support, as §6.1 suggests.
/// `hold` makes us answer as if we wanted to stop sending (local hold).
pub fn answer(
    remote_offer: &SessionDescription,
    local_rtp: SocketAddr,
    session_id: u64,
    version: u64,
    codecs: &[Codec],
) -> Result<(SessionDescription, NegotiatedMedia), NegotiationError> {
    let mut chosen: Option<(usize, NegotiatedMedia)> = None;
    for (i, m) in remote_offer.media.iter().enumerate() {
        if chosen.is_some() || m.kind != "audio" || m.port == 0 || m.proto != "RTP/AVP" {
            continue;
        }
        let maps = m.rtpmaps();
        let pick = m.formats.iter().find_map(|f| {
            let pt: u8 = f.parse().ok()?;
            let c = codec_for(pt, &maps)?;
            codecs.contains(&c).then_some((pt, c))
        });
        let Some((pt, codec)) = pick else { continue };
        let dtmf = dtmf_pt(&maps).filter(|p| m.formats.iter().any(|f| f == &p.to_string()));
        let mut direction = effective_direction(remote_offer, m).answer_to();
        let remote = remote_addr(remote_offer, m);
        if remote.is_none() && m.connection.or(remote_offer.connection).is_some() {
            // RFC 2543-style hold: c=0.0.0.0 means the peer wants no media from us.
            direction = match direction {
                Direction::SendRecv | Direction::SendOnly => Direction::RecvOnly,
                d => d,
            };
        }
        let ptime = m
            .attr("ptime")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(20);
        chosen = Some((
            i,
            NegotiatedMedia {
                remote_rtp: remote,
                codec,
                payload_type: pt,
                dtmf_payload_type: dtmf,
                direction,
                ptime_ms: ptime,
            },
        ));
    }
    let (index, neg) = chosen.ok_or(NegotiationError::NoAcceptableAudio)?;
    let media = remote_offer
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| {
            if i == index {
                let mut formats = vec![neg.payload_type.to_string()];
                let mut attributes = vec![(
                    "rtpmap".to_owned(),
                    Some(format!("{} {}/8000", neg.payload_type, neg.codec.name())),
                )];
                if let Some(d) = neg.dtmf_payload_type {
                    formats.push(d.to_string());
                    attributes.push(("rtpmap".into(), Some(format!("{d} telephone-event/8000"))));
                    attributes.push(("fmtp".into(), Some(format!("{d} 0-16"))));
                }
                attributes.push(("ptime".into(), Some("20".into())));
                attributes.push((neg.direction.as_str().into(), None));
                MediaDescription {
                    kind: m.kind.clone(),
                    port: local_rtp.port(),
                    proto: m.proto.clone(),
                    formats,
                    connection: None,
                    attributes,
                }
            } else {
                MediaDescription {
                    kind: m.kind.clone(),
                    port: 0,
                    proto: m.proto.clone(),
                    formats: m.formats.iter().take(1).cloned().collect(),
                    connection: None,
                    attributes: Vec::new(),
                }
            }
        })
        .collect();
    Ok((
        SessionDescription {
            session_id,
            session_version: version,
            origin_addr: Some(local_rtp.ip()),
            connection: Some(local_rtp.ip()),
            attributes: Vec::new(),
            media,
        },
        neg,
    ))
}

/// Reads the peer's answer to an offer we made.
pub fn accept_answer(
    our_offer: &SessionDescription,
    remote_answer: &SessionDescription,
) -> Result<NegotiatedMedia, NegotiationError> {
    let offered: Vec<u8> = our_offer
        .media
        .first()
        .map(|m| m.formats.iter().filter_map(|f| f.parse().ok()).collect())
        .unwrap_or_default();
    let m = remote_answer
        .media
        .iter()
        .find(|m| m.kind == "audio" && m.port != 0)
        .ok_or(NegotiationError::NoAcceptableAudio)?;
    let maps = m.rtpmaps();
    let (pt, codec) = m
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .find_map(|pt| codec_for(pt, &maps).map(|c| (pt, c)))
        .ok_or(NegotiationError::NoAcceptableAudio)?;
    if !offered.contains(&pt) {
        return Err(NegotiationError::AnswerMismatch);
    }
    Ok(NegotiatedMedia {
        remote_rtp: remote_addr(remote_answer, m),
        codec,
        payload_type: pt,
        dtmf_payload_type: dtmf_pt(&maps),
        direction: effective_direction(remote_answer, m).answer_to(),
        ptime_ms: 20,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

    fn local() -> SocketAddr {
        "127.0.0.1:20000".parse().unwrap()
    }

    #[test]
    fn answers_a_plain_pcmu_offer() {
        let offer = SessionDescription::parse(SIPP_OFFER.as_bytes()).unwrap();
        let (ans, neg) = answer(&offer, local(), 1, 1, &[Codec::Pcmu, Codec::Pcma]).unwrap();
        assert_eq!(neg.codec, Codec::Pcmu);
        assert_eq!(neg.remote_rtp, Some("127.0.0.1:6000".parse().unwrap()));
        assert_eq!(neg.direction, Direction::SendRecv);
        assert_eq!(neg.dtmf_payload_type, None);
        let again = SessionDescription::parse(&ans.to_bytes()).unwrap();
        assert_eq!(again.media[0].port, 20000);
        assert_eq!(again.media[0].formats, vec!["0"]);
        assert_eq!(again.connection, Some(local().ip()));
    }

    #[test]
    fn prefers_offerers_order_and_keeps_telephone_event() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=video 5000 RTP/AVP 96\r\nm=audio 4000 RTP/AVP 9 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\n\
a=fmtp:96 0-15\r\na=ptime:20\r\n";
        let offer = SessionDescription::parse(sdp.as_bytes()).unwrap();
        let (ans, neg) = answer(&offer, local(), 1, 1, &[Codec::Pcmu, Codec::Pcma]).unwrap();
        assert_eq!(neg.codec, Codec::Pcma, "G.722 skipped, PCMA before PCMU");
        assert_eq!(neg.payload_type, 8);
        assert_eq!(neg.dtmf_payload_type, Some(96));
        assert_eq!(ans.media.len(), 2, "answer keeps every m-line");
        assert_eq!(ans.media[0].port, 0, "video rejected");
        assert_eq!(ans.media[1].formats, vec!["8", "96"]);
    }

    #[test]
    fn hold_offers_get_matching_directions() {
        for (attr, ours) in [
            ("sendonly", Direction::RecvOnly),
            ("inactive", Direction::Inactive),
            ("recvonly", Direction::SendOnly),
        ] {
            let sdp = format!("{SIPP_OFFER}a={attr}\r\n");
            let offer = SessionDescription::parse(sdp.as_bytes()).unwrap();
            let (ans, neg) = answer(&offer, local(), 1, 2, &[Codec::Pcmu]).unwrap();
            assert_eq!(neg.direction, ours);
            assert_eq!(ans.media[0].direction(), Some(ours));
        }
        let old = SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        let offer = SessionDescription::parse(old.as_bytes()).unwrap();
        let (_, neg) = answer(&offer, local(), 1, 2, &[Codec::Pcmu]).unwrap();
        assert!(neg.is_held());
        assert_eq!(neg.remote_rtp, None);
    }

    #[test]
    fn unacceptable_offers_are_refused() {
        let g729 = SIPP_OFFER
            .replace("RTP/AVP 0", "RTP/AVP 18")
            .replace("0 PCMU", "18 G729");
        let offer = SessionDescription::parse(g729.as_bytes()).unwrap();
        assert_eq!(
            answer(&offer, local(), 1, 1, &[Codec::Pcmu]).unwrap_err(),
            NegotiationError::NoAcceptableAudio
        );
        let srtp = SIPP_OFFER.replace("RTP/AVP", "RTP/SAVP");
        let offer = SessionDescription::parse(srtp.as_bytes()).unwrap();
        assert!(answer(&offer, local(), 1, 1, &[Codec::Pcmu]).is_err());
        // A dynamic PT mapped to PCMU at 16 kHz is not PCMU.
        let odd = SIPP_OFFER
            .replace("RTP/AVP 0", "RTP/AVP 97")
            .replace("0 PCMU/8000", "97 PCMU/16000");
        let offer = SessionDescription::parse(odd.as_bytes()).unwrap();
        assert!(answer(&offer, local(), 1, 1, &[Codec::Pcmu]).is_err());
        assert!(SessionDescription::parse(b"hello").is_err());
        assert!(SessionDescription::parse(b"v=0\r\nm=audio x RTP/AVP 0\r\n").is_err());
    }

    #[test]
    fn our_offer_and_their_answer() {
        let o = offer(
            local(),
            7,
            1,
            Direction::SendOnly,
            &[Codec::Pcmu, Codec::Pcma],
        );
        let parsed = SessionDescription::parse(&o.to_bytes()).unwrap();
        assert_eq!(parsed.media[0].formats, vec!["0", "8", "101"]);
        assert_eq!(parsed.media[0].direction(), Some(Direction::SendOnly));
        let (ans, _) = answer(
            &parsed,
            "127.0.0.1:7000".parse().unwrap(),
            9,
            1,
            &[Codec::Pcma],
        )
        .unwrap();
        let neg = accept_answer(&o, &ans).unwrap();
        assert_eq!(neg.codec, Codec::Pcma);
        assert_eq!(neg.direction, Direction::SendOnly);
        assert_eq!(neg.dtmf_payload_type, Some(101));
    }
}
