//! Adaptive jitter buffer for 20 ms audio frames.
//!
//! Packets go in as they arrive ([`JitterBuffer::push`]); the media clock
//! takes one frame out every 20 ms ([`JitterBuffer::pop`]). The buffer
//!
//! * reorders by extended sequence number (wrap-around handled),
//! * drops duplicates and packets that arrive after their playout slot
//!   (counted as *late*),
//! * reports a gap as [`Playout::Lost`] so the decoder conceals it,
//! * adapts its target delay to the measured interarrival jitter (RFC 3550
//!   §6.4.1 estimator): it starts playing once that much audio is queued,
//!   and drops one frame when it holds more than the target plus a margin,
//!   so latency shrinks again after a burst,
//! * re-buffers after a long underrun and resets on a sequence jump
//!   (a new source).

use std::collections::BTreeMap;
use std::time::Instant;

/// Tuning of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Samples per frame (160 at 8 kHz / 20 ms).
    pub frame_samples: u32,
    /// Clock rate of the RTP timestamps.
    pub clock_rate: u32,
    /// Smallest target delay, in frames.
    pub min_frames: usize,
    /// Largest target delay, in frames.
    pub max_frames: usize,
    /// Most packets held before the oldest is dropped.
    pub capacity: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            frame_samples: 160,
            clock_rate: 8000,
            min_frames: 2,
            max_frames: 10,
            capacity: 64,
        }
    }
}

/// What the media clock gets for one 20 ms slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The frame due now.
    Frame {
        /// Extended sequence number.
        seq: u64,
        /// RTP timestamp.
        timestamp: u32,
        /// Encoded payload.
        payload: Vec<u8>,
    },
    /// The frame due now is missing: conceal it.
    Lost,
    /// Nothing to play (not started, or re-buffering).
    Empty,
}

/// Counters kept by the buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets accepted into the buffer.
    pub received: u64,
    /// Packets that arrived after their slot was played or concealed.
    pub late: u64,
    /// Packets received twice.
    pub duplicates: u64,
    /// Slots concealed because their packet was missing.
    pub concealed: u64,
    /// Frames dropped to bring latency back to target.
    pub dropped_for_latency: u64,
    /// Packets dropped because the buffer was full.
    pub overflow: u64,
    /// Times playout stopped to re-buffer.
    pub underruns: u64,
}

/// The jitter buffer. See the module documentation.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    packets: BTreeMap<u64, (u32, Vec<u8>)>,
    highest: Option<u64>,
    next: Option<u64>,
    playing: bool,
    empty_run: usize,
    // RFC 3550 jitter estimator state, in timestamp units (×16 fixed point).
    jitter_q4: u64,
    last_transit: Option<i64>,
    base: Option<Instant>,
    stats: JitterStats,
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(cfg: JitterConfig) -> Self {
        Self {
            cfg,
            packets: BTreeMap::new(),
            highest: None,
            next: None,
            playing: false,
            empty_run: 0,
            jitter_q4: 0,
            last_transit: None,
            base: None,
            stats: JitterStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Interarrival jitter estimate in timestamp units.
    pub fn jitter(&self) -> u32 {
        (self.jitter_q4 / 16) as u32
    }

    /// Current target delay in frames.
    pub fn target_frames(&self) -> usize {
        let j = self.jitter() as usize;
        let frame = self.cfg.frame_samples as usize;
        (1 + (3 * j).div_ceil(frame)).clamp(self.cfg.min_frames, self.cfg.max_frames)
    }

    /// Packets currently held.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Highest extended sequence number seen.
    pub fn highest_seq(&self) -> Option<u64> {
        self.highest
    }

    fn extend(&self, seq: u16) -> u64 {
        match self.highest {
            None => 65_536 + u64::from(seq),
            Some(h) => {
                let delta = i64::from(seq.wrapping_sub(h as u16) as i16);
                (h as i64 + delta).max(0) as u64
            }
        }
    }

    /// Resets sequence state (new source).
    pub fn reset(&mut self) {
        self.packets.clear();
        self.highest = None;
        self.next = None;
        self.playing = false;
        self.empty_run = 0;
        self.last_transit = None;
    }

    /// Adds a packet that arrived at `arrival`.
    pub fn push(&mut self, arrival: Instant, seq: u16, timestamp: u32, payload: &[u8]) {
        let mut ext = self.extend(seq);
        if let Some(h) = self.highest
            && ext.abs_diff(h) > 3000
        {
            // A jump this large is a new stream (restart or SSRC change).
            self.reset();
            ext = self.extend(seq);
        }
        // Jitter estimator (RFC 3550 A.8), on every packet including late ones.
        let base = *self.base.get_or_insert(arrival);
        let arrival_ts = (arrival.duration_since(base).as_micros() as i64)
            * i64::from(self.cfg.clock_rate)
            / 1_000_000;
        let transit = arrival_ts - i64::from(timestamp);
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs();
            // J += (|D| - J) / 16, kept ×16.
            self.jitter_q4 = (self.jitter_q4 + d).saturating_sub(self.jitter_q4 / 16);
        }
        self.last_transit = Some(transit);

        if self.next.is_some_and(|n| ext < n) {
            self.stats.late += 1;
            return;
        }
        if self.packets.contains_key(&ext) {
            self.stats.duplicates += 1;
            return;
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.packets.insert(ext, (timestamp, payload.to_vec()));
        self.stats.received += 1;
        while self.packets.len() > self.cfg.capacity {
            if let Some((k, _)) = self.packets.pop_first() {
                self.stats.overflow += 1;
                if self.next.is_some_and(|n| n <= k) {
                    self.next = Some(k + 1);
                }
            }
        }
    }

    /// Span of audio queued from the next slot to the newest packet, in frames.
    fn depth(&self) -> usize {
        match (
            self.next.or_else(|| self.packets.keys().next().copied()),
            self.highest,
        ) {
            (Some(n), Some(h)) if h >= n && !self.packets.is_empty() => (h - n + 1) as usize,
            _ => 0,
        }
    }

    /// Takes the frame for the current 20 ms slot.
    pub fn pop(&mut self) -> Playout {
        if !self.playing {
            if self.packets.is_empty() || self.depth() < self.target_frames() {
                return Playout::Empty;
            }
            self.playing = true;
            self.empty_run = 0;
            if let Some(first) = self.packets.keys().next().copied() {
                self.next = Some(self.next.map_or(first, |n| n.max(first)));
            }
        }
        let Some(next) = self.next else {
            return Playout::Empty;
        };
        // Too much queued: skip the oldest frame to cut latency.
        if self.depth() > self.target_frames() + 3 {
            if self.packets.remove(&next).is_some() {
                self.stats.dropped_for_latency += 1;
            }
            self.next = Some(next + 1);
            return self.pop_slot();
        }
        self.pop_slot()
    }

    fn pop_slot(&mut self) -> Playout {
        let Some(next) = self.next else {
            return Playout::Empty;
        };
        if let Some((timestamp, payload)) = self.packets.remove(&next) {
            self.next = Some(next + 1);
            self.empty_run = 0;
            return Playout::Frame {
                seq: next,
                timestamp,
                payload,
            };
        }
        if self.packets.is_empty() {
            // Nothing newer: the stream paused or the network stalled. Conceal
            // without skipping, so the packet still plays if it turns up; give
            // up and re-buffer after the maximum delay.
            self.empty_run += 1;
            if self.empty_run > self.cfg.max_frames {
                self.playing = false;
                self.stats.underruns += 1;
                return Playout::Empty;
            }
            self.stats.concealed += 1;
            return Playout::Lost;
        }
        // A newer packet exists, so this one is lost or late. While the buffer
        // holds less than the target, wait for it (conceal without advancing:
        // this is how the delay grows when jitter grows); otherwise move on.
        if self.depth() < self.target_frames() {
            self.stats.concealed += 1;
            return Playout::Lost;
        }
        self.next = Some(next + 1);
        self.stats.concealed += 1;
        Playout::Lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn frames(out: &[Playout]) -> Vec<String> {
        out.iter()
            .map(|p| match p {
                Playout::Frame { payload, .. } => format!("{}", payload[0]),
                Playout::Lost => "L".into(),
                Playout::Empty => "-".into(),
            })
            .collect()
    }

    #[test]
    fn in_order_stream_starts_after_target_and_plays_in_order() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut out = Vec::new();
        for i in 0..6u16 {
            jb.push(
                t0 + Duration::from_millis(20 * u64::from(i)),
                i,
                u32::from(i) * 160,
                &[i as u8],
            );
            out.push(jb.pop());
        }
        // Target is 2 frames with no jitter: silent for one slot, then in order.
        assert_eq!(frames(&out), ["-", "0", "1", "2", "3", "4"]);
        assert_eq!(jb.stats().concealed, 0);
    }

    /// Simulates a timeline: arrivals `(seq, arrival_ms)` with timestamps
    /// `seq * 160`; one pop every 20 ms from t = 0 for `slots` slots.
    fn simulate(jb: &mut JitterBuffer, arrivals: &[(u16, u64)], slots: u64) -> Vec<Playout> {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut i = 0;
        for slot in 0..slots {
            let now = slot * 20;
            while i < arrivals.len() && arrivals[i].1 <= now {
                let (seq, ms) = arrivals[i];
                jb.push(
                    t0 + Duration::from_millis(ms),
                    seq,
                    u32::from(seq) * 160,
                    &[seq as u8],
                );
                i += 1;
            }
            out.push(jb.pop());
        }
        out
    }

    #[test]
    fn reorders_and_conceals_and_counts_late() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let arrivals = [
            (0u16, 0u64),
            (2, 40),
            (1, 41),
            (3, 60),
            (5, 100),
            (6, 120),
            (4, 150),
        ];
        let out = simulate(&mut jb, &arrivals, 9);
        // 4 arrives at 150 ms, after its slot at 120 ms was concealed.
        assert_eq!(frames(&out), ["-", "-", "0", "1", "2", "3", "L", "5", "6"]);
        assert_eq!(jb.stats().late, 1);
        assert_eq!(jb.stats().concealed, 1);
        jb.push(Instant::now(), 6, 960, &[6]);
        assert_eq!(jb.stats().late, 2, "already played counts as late");
    }

    #[test]
    fn duplicates_are_dropped() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.push(t0, 10, 0, &[1]);
        jb.push(t0, 10, 0, &[1]);
        assert_eq!(jb.stats().duplicates, 1);
        assert_eq!(jb.len(), 1);
    }

    #[test]
    fn sequence_wraparound_is_in_order() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for (k, seq) in [65534u16, 65535, 0, 1].into_iter().enumerate() {
            jb.push(
                t0 + Duration::from_millis(20 * k as u64),
                seq,
                k as u32 * 160,
                &[k as u8],
            );
        }
        let out: Vec<Playout> = (0..4).map(|_| jb.pop()).collect();
        assert_eq!(frames(&out), ["0", "1", "2", "3"]);
    }

    #[test]
    fn target_grows_with_jitter_and_absorbs_it() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // Sent every 20 ms, every other packet delayed by 50 ms (so they reorder).
        let mut arrivals: Vec<(u16, u64)> = (0..300u64)
            .map(|i| (i as u16, 20 * i + if i % 2 == 1 { 50 } else { 0 }))
            .collect();
        arrivals.sort_by_key(|a| a.1);
        let out = simulate(&mut jb, &arrivals, 300);
        assert!(jb.jitter() > 150, "jitter {}", jb.jitter());
        let target = jb.target_frames();
        assert!(target > 2 && target <= 10, "target {target}");
        // Once the target has adapted, nothing is late or concealed any more.
        let tail = &out[100..];
        assert!(
            tail.iter().all(|p| matches!(p, Playout::Frame { .. })),
            "{:?}",
            frames(tail)
        );
        let seqs: Vec<u64> = tail
            .iter()
            .filter_map(|p| {
                if let Playout::Frame { seq, .. } = p {
                    Some(*seq)
                } else {
                    None
                }
            })
            .collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "in order");
    }

    #[test]
    fn latency_shrinks_after_a_burst() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // 10 in order, then a 600 ms stall, then 30 arriving at once.
        let mut arrivals: Vec<(u16, u64)> = (0..10u64).map(|i| (i as u16, 20 * i)).collect();
        arrivals.extend((10..40u64).map(|i| (i as u16, 800)));
        simulate(&mut jb, &arrivals, 60);
        assert!(jb.stats().dropped_for_latency > 0);
        assert!(jb.depth() <= jb.target_frames() + 3, "depth {}", jb.depth());
    }

    #[test]
    fn long_underrun_rebuffers_and_big_jump_resets() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.push(t0, 1, 0, &[1]);
        jb.push(t0, 2, 160, &[2]);
        assert!(matches!(jb.pop(), Playout::Frame { .. }));
        assert!(matches!(jb.pop(), Playout::Frame { .. }));
        let mut losses = 0;
        loop {
            match jb.pop() {
                Playout::Lost => losses += 1,
                Playout::Empty => break,
                Playout::Frame { .. } => panic!(),
            }
        }
        assert_eq!(losses, 10);
        assert_eq!(jb.stats().underruns, 1);
        // Resume after the pause: sequence continues, playback restarts after target.
        jb.push(t0 + Duration::from_secs(1), 3, 8000, &[3]);
        jb.push(t0 + Duration::from_millis(1020), 4, 8160, &[4]);
        assert_eq!(frames(&[jb.pop(), jb.pop()]), ["3", "4"]);
        // New source far away in sequence space.
        jb.push(t0 + Duration::from_secs(2), 40_000, 0, &[9]);
        jb.push(t0 + Duration::from_secs(2), 40_001, 160, &[8]);
        assert_eq!(jb.stats().late, 0);
        assert_eq!(frames(&[jb.pop(), jb.pop()]), ["9", "8"]);
    }

    #[test]
    fn overflow_drops_oldest() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig {
            capacity: 4,
            ..JitterConfig::default()
        });
        for i in 0..6u16 {
            jb.push(t0, i, u32::from(i) * 160, &[i as u8]);
        }
        assert_eq!(jb.len(), 4);
        assert_eq!(jb.stats().overflow, 2);
    }
}
