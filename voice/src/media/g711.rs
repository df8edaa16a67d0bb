//! G.711 µ-law and A-law (ITU-T G.711) encoding and decoding of 16-bit
//! linear PCM, by the classic segment algorithm (as in the ITU reference
//! and Sun's public-domain g711.c). Decoding uses 256-entry tables built at
//! compile time, so the hot path is one lookup per sample.

const BIAS: i32 = 0x84;
const CLIP: i32 = 32635;

/// Encodes one linear sample to µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(CLIP) + BIAS;
    let exponent = segment(pcm >> 7);
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as i32 | mantissa) as u8
}

/// Position of the highest set bit of `v` (0..=7), the G.711 segment.
fn segment(v: i32) -> u8 {
    let mut seg = 0u8;
    let mut v = v;
    while v > 1 && seg < 7 {
        v >>= 1;
        seg += 1;
    }
    seg
}

const fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    if sign != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one linear sample to A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let pcm = i32::from(sample);
    let (mask, mag) = if pcm >= 0 {
        (0xD5, pcm)
    } else {
        (0x55, -pcm - 1)
    };
    let mag = mag.min(0x7FFF);
    let code = if mag < 256 {
        mag >> 4
    } else {
        let seg = i32::from(segment(mag >> 8)) + 1;
        (seg << 4) | ((mag >> (seg + 3)) & 0x0F)
    };
    (code ^ mask) as u8
}

const fn alaw_decode(a: u8) -> i16 {
    let a = a ^ 0x55;
    let seg = ((a & 0x70) >> 4) as i32;
    let mut t = ((a & 0x0F) as i32) << 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    if a & 0x80 != 0 { t as i16 } else { -t as i16 }
}

const fn table(alaw: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if alaw {
            alaw_decode(i as u8)
        } else {
            ulaw_decode(i as u8)
        };
        i += 1;
    }
    t
}

static ULAW_TABLE: [i16; 256] = table(false);
static ALAW_TABLE: [i16; 256] = table(true);

/// Decodes one µ-law byte.
pub fn ulaw_to_linear(u: u8) -> i16 {
    ULAW_TABLE[usize::from(u)]
}

/// Decodes one A-law byte.
pub fn alaw_to_linear(a: u8) -> i16 {
    ALAW_TABLE[usize::from(a)]
}

/// Encodes a block of samples with the given codec, appending to `out`.
pub fn encode(codec: crate::sdp::Codec, pcm: &[i16], out: &mut Vec<u8>) {
    out.reserve(pcm.len());
    match codec {
        crate::sdp::Codec::Pcmu => out.extend(pcm.iter().map(|s| linear_to_ulaw(*s))),
        crate::sdp::Codec::Pcma => out.extend(pcm.iter().map(|s| linear_to_alaw(*s))),
    }
}

/// Decodes a block of G.711 bytes, appending to `out`.
pub fn decode(codec: crate::sdp::Codec, data: &[u8], out: &mut Vec<i16>) {
    out.reserve(data.len());
    match codec {
        crate::sdp::Codec::Pcmu => out.extend(data.iter().map(|b| ulaw_to_linear(*b))),
        crate::sdp::Codec::Pcma => out.extend(data.iter().map(|b| alaw_to_linear(*b))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_code_points() {
        // Silence and full scale, from the G.711 tables.
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
    }

    #[test]
    fn every_code_round_trips() {
        for b in 0..=255u8 {
            let u = ulaw_to_linear(b);
            // 0x7F and 0xFF both decode to 0 (negative and positive zero).
            let expect = if b == 0x7F { 0xFF } else { b };
            assert_eq!(linear_to_ulaw(u), expect, "ulaw {b:#x}");
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "alaw {b:#x}");
        }
    }

    #[test]
    fn quantisation_error_is_bounded_and_monotonic() {
        let mut prev_u = i16::MIN;
        let mut prev_a = i16::MIN;
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let u = ulaw_to_linear(linear_to_ulaw(s));
            let a = alaw_to_linear(linear_to_alaw(s));
            // Error within half a step of the coarsest segment (and ~3 % relative).
            let tol = |x: i16| (i32::from(x).abs() / 16).max(16) + 64;
            assert!(
                (i32::from(u) - i32::from(s)).abs() <= tol(s),
                "ulaw {s} -> {u}"
            );
            assert!(
                (i32::from(a) - i32::from(s)).abs() <= tol(s),
                "alaw {s} -> {a}"
            );
            assert!(u >= prev_u && a >= prev_a, "monotonic at {s}");
            prev_u = u;
            prev_a = a;
        }
    }
}
