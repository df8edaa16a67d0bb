//! Per-queue counters, observed handle time and arrival rate.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::{Timestamp, millis};

/// Cumulative counters of one queue since it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QueueCounters {
    /// Contacts that entered the queue (arrivals and overflow moves in).
    pub entered: u64,
    /// Contacts answered (offer accepted) from this queue.
    pub answered: u64,
    /// …of which within the SLA threshold (wait counted from first arrival).
    pub answered_in_threshold: u64,
    /// Contacts abandoned while in this queue.
    pub abandoned: u64,
    /// …of which before the SLA threshold ("short abandons").
    pub abandoned_in_threshold: u64,
    /// Contacts moved out by an overflow rule.
    pub overflowed_out: u64,
    /// Contacts sent to voicemail.
    pub voicemail: u64,
    /// Contacts sent to a callback.
    pub callback: u64,
    /// Contacts turned away at arrival (closed).
    pub rejected: u64,
    /// Contacts withdrawn before being answered.
    pub withdrawn: u64,
    /// Sum of the answered contacts' waits, in milliseconds.
    pub total_wait_ms: u64,
}

impl QueueCounters {
    /// Service level so far: answered within the threshold ÷ (answered +
    /// abandoned after the threshold). Short abandons count for neither.
    /// `None` before anything counts.
    pub fn service_level(&self) -> Option<f64> {
        let late_abandons = self.abandoned - self.abandoned_in_threshold;
        let denom = self.answered + late_abandons;
        (denom > 0).then(|| self.answered_in_threshold as f64 / denom as f64)
    }

    /// Average speed of answer so far.
    pub fn average_speed_of_answer(&self) -> Option<Duration> {
        (self.answered > 0).then(|| Duration::from_millis(self.total_wait_ms / self.answered))
    }
}

/// Exponential moving average of handle time (talk plus wrap-up).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HandleTime {
    ms: f64,
    samples: u64,
}

impl HandleTime {
    pub(crate) fn new(expected: Duration) -> Self {
        HandleTime {
            ms: millis(expected) as f64,
            samples: 0,
        }
    }

    pub(crate) fn record(&mut self, sample: Duration, alpha: f64) {
        self.ms += alpha * (millis(sample) as f64 - self.ms);
        self.samples += 1;
    }

    pub(crate) fn ms(&self) -> f64 {
        self.ms
    }

    pub(crate) fn get(&self) -> Duration {
        Duration::from_millis(self.ms.max(0.0) as u64)
    }

    pub(crate) fn samples(&self) -> u64 {
        self.samples
    }
}

const BUCKET_MS: u64 = 60_000;
const BUCKETS: usize = 15;

/// Arrivals over the last 15 minutes, in one-minute buckets.
#[derive(Debug, Clone)]
pub(crate) struct ArrivalRate {
    buckets: [u32; BUCKETS],
    /// Index (minute number) of the newest bucket.
    head: u64,
    since: Timestamp,
}

impl ArrivalRate {
    pub(crate) fn new(now: Timestamp) -> Self {
        ArrivalRate {
            buckets: [0; BUCKETS],
            head: now.as_millis() / BUCKET_MS,
            since: now,
        }
    }

    fn advance(&mut self, now: Timestamp) {
        let minute = now.as_millis() / BUCKET_MS;
        if minute <= self.head {
            return;
        }
        let steps = (minute - self.head).min(BUCKETS as u64);
        for i in 1..=steps {
            let idx = ((self.head + i) % BUCKETS as u64) as usize;
            self.buckets[idx] = 0;
        }
        self.head = minute;
    }

    pub(crate) fn record(&mut self, now: Timestamp) {
        self.advance(now);
        let idx = (self.head % BUCKETS as u64) as usize;
        self.buckets[idx] = self.buckets[idx].saturating_add(1);
    }

    /// Arrivals per second over the window (or since creation if shorter).
    pub(crate) fn per_second(&self, now: Timestamp) -> f64 {
        let now_minute = now.as_millis() / BUCKET_MS;
        let total: u64 = (0..BUCKETS as u64)
            .filter_map(|age| self.head.checked_sub(age))
            .filter(|&minute| now_minute.saturating_sub(minute) < BUCKETS as u64)
            .map(|minute| u64::from(self.buckets[(minute % BUCKETS as u64) as usize]))
            .sum();
        let window = (BUCKETS as u64 * BUCKET_MS).min(millis(now.since(self.since)));
        if window == 0 {
            return 0.0;
        }
        total as f64 * 1000.0 / window as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_level_excludes_short_abandons() {
        let c = QueueCounters {
            answered: 8,
            answered_in_threshold: 6,
            abandoned: 3,
            abandoned_in_threshold: 1,
            total_wait_ms: 80_000,
            ..QueueCounters::default()
        };
        assert_eq!(c.service_level(), Some(0.6));
        assert_eq!(c.average_speed_of_answer(), Some(Duration::from_secs(10)));
        assert_eq!(QueueCounters::default().service_level(), None);
    }

    #[test]
    fn handle_time_moves_towards_samples() {
        let mut h = HandleTime::new(Duration::from_secs(100));
        h.record(Duration::from_secs(200), 0.5);
        assert_eq!(h.get(), Duration::from_secs(150));
        assert_eq!(h.samples(), 1);
    }

    #[test]
    fn arrival_rate_window() {
        let mut r = ArrivalRate::new(Timestamp::ZERO);
        for s in 0..60 {
            r.record(Timestamp::from_secs(s * 10));
        }
        // 60 arrivals in 600 s.
        let rate = r.per_second(Timestamp::from_secs(600));
        assert!((rate - 0.1).abs() < 1e-9, "{rate}");
        // Half an hour later, all have left the window.
        assert_eq!(r.per_second(Timestamp::from_secs(2400)), 0.0);
    }
}
