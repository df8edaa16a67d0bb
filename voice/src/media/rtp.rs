//! RTP (RFC 3550 §5) and the RTCP sender/receiver reports (§6.4) that
//! Switchboard sends and reads. Parsing borrows from the datagram and never
//! panics; building writes into a caller's buffer.

/// Why a datagram is not a usable RTP or RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than its headers say.
    #[error("packet truncated")]
    Truncated,
    /// Version field is not 2.
    #[error("not RTP version 2")]
    BadVersion,
    /// Padding length larger than the payload.
    #[error("bad padding")]
    BadPadding,
}

/// A parsed RTP packet borrowing its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Payload with padding removed.
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses a packet: CSRC list and header extension are skipped, padding removed.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() < 12 {
            return Err(RtpError::Truncated);
        }
        if buf[0] >> 6 != 2 {
            return Err(RtpError::BadVersion);
        }
        let padding = buf[0] & 0x20 != 0;
        let extension = buf[0] & 0x10 != 0;
        let cc = usize::from(buf[0] & 0x0F);
        let mut off = 12 + 4 * cc;
        if buf.len() < off {
            return Err(RtpError::Truncated);
        }
        if extension {
            if buf.len() < off + 4 {
                return Err(RtpError::Truncated);
            }
            let words = usize::from(u16::from_be_bytes([buf[off + 2], buf[off + 3]]));
            off += 4 + 4 * words;
            if buf.len() < off {
                return Err(RtpError::Truncated);
            }
        }
        let mut end = buf.len();
        if padding {
            let pad = usize::from(buf[end - 1]);
            if pad == 0 || pad > end - off {
                return Err(RtpError::BadPadding);
            }
            end -= pad;
        }
        Ok(Self {
            marker: buf[1] & 0x80 != 0,
            payload_type: buf[1] & 0x7F,
            sequence: u16::from_be_bytes([buf[2], buf[3]]),
            timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
            ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
            payload: &buf[off..end],
        })
    }

    /// Appends the wire form (no CSRCs, no extension, no padding) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.reserve(12 + self.payload.len());
        out.push(0x80);
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7F));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(self.payload);
    }
}

/// True if the datagram looks like RTCP rather than RTP (RFC 5761 §4:
/// payload-type byte 192–223), for when both share a port.
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && (192..=223).contains(&buf[1])
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// Source this block is about.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP timestamp.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// A sender or receiver report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpReport {
    /// SR: sender info plus report blocks.
    Sender {
        /// Sender SSRC.
        ssrc: u32,
        /// NTP timestamp (64-bit fixed point).
        ntp: u64,
        /// RTP timestamp matching `ntp`.
        rtp_timestamp: u32,
        /// Packets sent.
        packet_count: u32,
        /// Payload octets sent.
        octet_count: u32,
        /// Reception reports.
        blocks: Vec<ReportBlock>,
    },
    /// RR: report blocks only.
    Receiver {
        /// Reporter SSRC.
        ssrc: u32,
        /// Reception reports.
        blocks: Vec<ReportBlock>,
    },
}

fn be32(b: &[u8], o: usize) -> Option<u32> {
    b.get(o..o + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn read_block(b: &[u8], o: usize) -> Option<ReportBlock> {
    let lost_word = be32(b, o + 4)?;
    let cum = (lost_word & 0x00FF_FFFF) as i32;
    let cum = if cum & 0x0080_0000 != 0 {
        cum - 0x0100_0000
    } else {
        cum
    };
    Some(ReportBlock {
        ssrc: be32(b, o)?,
        fraction_lost: (lost_word >> 24) as u8,
        cumulative_lost: cum,
        highest_seq: be32(b, o + 8)?,
        jitter: be32(b, o + 12)?,
        last_sr: be32(b, o + 16)?,
        delay_since_last_sr: be32(b, o + 20)?,
    })
}

fn write_block(b: &ReportBlock, out: &mut Vec<u8>) {
    out.extend_from_slice(&b.ssrc.to_be_bytes());
    let cum = (b.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF) as u32) & 0x00FF_FFFF;
    out.extend_from_slice(&((u32::from(b.fraction_lost) << 24) | cum).to_be_bytes());
    out.extend_from_slice(&b.highest_seq.to_be_bytes());
    out.extend_from_slice(&b.jitter.to_be_bytes());
    out.extend_from_slice(&b.last_sr.to_be_bytes());
    out.extend_from_slice(&b.delay_since_last_sr.to_be_bytes());
}

impl RtcpReport {
    /// Parses the SR/RR packets in a compound RTCP datagram; other packet
    /// types (SDES, BYE, APP, feedback) are skipped.
    pub fn parse_compound(buf: &[u8]) -> Result<Vec<Self>, RtpError> {
        let mut out = Vec::new();
        let mut off = 0;
        while off + 4 <= buf.len() {
            if buf[off] >> 6 != 2 {
                return Err(RtpError::BadVersion);
            }
            let count = usize::from(buf[off] & 0x1F);
            let pt = buf[off + 1];
            let len = (usize::from(u16::from_be_bytes([buf[off + 2], buf[off + 3]])) + 1) * 4;
            let pkt = buf.get(off..off + len).ok_or(RtpError::Truncated)?;
            match pt {
                200 => {
                    let ssrc = be32(pkt, 4).ok_or(RtpError::Truncated)?;
                    let hi = be32(pkt, 8).ok_or(RtpError::Truncated)?;
                    let lo = be32(pkt, 12).ok_or(RtpError::Truncated)?;
                    let blocks = (0..count)
                        .map(|i| read_block(pkt, 28 + 24 * i))
                        .collect::<Option<Vec<_>>>()
                        .ok_or(RtpError::Truncated)?;
                    out.push(Self::Sender {
                        ssrc,
                        ntp: (u64::from(hi) << 32) | u64::from(lo),
                        rtp_timestamp: be32(pkt, 16).ok_or(RtpError::Truncated)?,
                        packet_count: be32(pkt, 20).ok_or(RtpError::Truncated)?,
                        octet_count: be32(pkt, 24).ok_or(RtpError::Truncated)?,
                        blocks,
                    });
                }
                201 => {
                    let ssrc = be32(pkt, 4).ok_or(RtpError::Truncated)?;
                    let blocks = (0..count)
                        .map(|i| read_block(pkt, 8 + 24 * i))
                        .collect::<Option<Vec<_>>>()
                        .ok_or(RtpError::Truncated)?;
                    out.push(Self::Receiver { ssrc, blocks });
                }
                _ => {}
            }
            off += len;
        }
        if off != buf.len() {
            return Err(RtpError::Truncated);
        }
        Ok(out)
    }

    /// Appends the packet, followed by an SDES CNAME (RFC 3550 §6.1 requires
    /// one in every compound packet).
    pub fn write_compound(&self, cname: &str, out: &mut Vec<u8>) {
        let (pt, ssrc, blocks) = match self {
            Self::Sender { ssrc, blocks, .. } => (200u8, *ssrc, blocks),
            Self::Receiver { ssrc, blocks } => (201u8, *ssrc, blocks),
        };
        let n = blocks.len().min(31);
        let words = if pt == 200 { 6 + 6 * n } else { 1 + 6 * n };
        out.push(0x80 | n as u8);
        out.push(pt);
        out.extend_from_slice(&(words as u16).to_be_bytes());
        out.extend_from_slice(&ssrc.to_be_bytes());
        if let Self::Sender {
            ntp,
            rtp_timestamp,
            packet_count,
            octet_count,
            ..
        } = self
        {
            out.extend_from_slice(&ntp.to_be_bytes());
            out.extend_from_slice(&rtp_timestamp.to_be_bytes());
            out.extend_from_slice(&packet_count.to_be_bytes());
            out.extend_from_slice(&octet_count.to_be_bytes());
        }
        for b in &blocks[..n] {
            write_block(b, out);
        }
        // SDES with one chunk: SSRC, CNAME item, END, padded to 32 bits.
        let name = &cname.as_bytes()[..cname.len().min(255)];
        let chunk_len = 4 + 2 + name.len() + 1;
        let padded = chunk_len.div_ceil(4) * 4;
        out.push(0x81);
        out.push(202);
        out.extend_from_slice(&((padded / 4) as u16).to_be_bytes());
        out.extend_from_slice(&ssrc.to_be_bytes());
        out.push(1);
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.extend(std::iter::repeat_n(0u8, padded - chunk_len + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_round_trip() {
        let p = RtpPacket {
            marker: true,
            payload_type: 8,
            sequence: 65535,
            timestamp: 0xDEAD_BEEF,
            ssrc: 42,
            payload: &[1, 2, 3],
        };
        let mut buf = Vec::new();
        p.write(&mut buf);
        assert_eq!(buf.len(), 15);
        assert_eq!(RtpPacket::parse(&buf).unwrap(), p);
        assert!(!is_rtcp(&buf));
    }

    #[test]
    fn rtp_with_csrc_extension_and_padding() {
        let mut buf = vec![0x80 | 0x20 | 0x10 | 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        buf.extend_from_slice(&[9, 9, 9, 9]); // CSRC
        buf.extend_from_slice(&[0xBE, 0xDE, 0, 1, 7, 7, 7, 7]); // extension, 1 word
        buf.extend_from_slice(&[0xAA, 0xBB]); // payload
        buf.extend_from_slice(&[0, 0, 3]); // padding of 3
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(p.payload, &[0xAA, 0xBB]);
        assert_eq!(p.sequence, 1);
    }

    #[test]
    fn rtp_garbage_is_rejected() {
        assert_eq!(RtpPacket::parse(&[0x80; 5]), Err(RtpError::Truncated));
        assert_eq!(RtpPacket::parse(&[0x40; 12]), Err(RtpError::BadVersion));
        let mut pad = vec![0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200];
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::BadPadding));
        pad[0] = 0x8F; // 15 CSRCs claimed
        assert_eq!(RtpPacket::parse(&pad), Err(RtpError::Truncated));
    }

    #[test]
    fn rtcp_sr_and_rr_round_trip() {
        let block = ReportBlock {
            ssrc: 7,
            fraction_lost: 25,
            cumulative_lost: -3,
            highest_seq: 70_000,
            jitter: 12,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536,
        };
        for r in [
            RtcpReport::Sender {
                ssrc: 1,
                ntp: 0x0102_0304_0506_0708,
                rtp_timestamp: 160,
                packet_count: 50,
                octet_count: 8000,
                blocks: vec![block],
            },
            RtcpReport::Receiver {
                ssrc: 2,
                blocks: vec![block, ReportBlock::default()],
            },
        ] {
            let mut buf = Vec::new();
            r.write_compound("switchboard@host", &mut buf);
            assert!(is_rtcp(&buf));
            assert_eq!(buf.len() % 4, 0);
            assert_eq!(RtcpReport::parse_compound(&buf).unwrap(), vec![r]);
        }
        assert!(RtcpReport::parse_compound(&[0x81, 201, 0, 9, 0, 0]).is_err());
    }
}
