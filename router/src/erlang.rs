//! Erlang C (M/M/N) formulas behind the wait estimates.
//!
//! * A contact at position `p` in a queue served by `N` busy servers with
//!   mean handle time `AHT` waits for `p` service completions. With
//!   exponential handle times completions come at rate `N / AHT`, so the
//!   expected wait is `p · AHT / N` — the conditional waiting time of the
//!   Erlang C model. That is what
//!   [`Output::EstimateChanged`](crate::Output::EstimateChanged) announces.
//! * For a contact that has not arrived yet, [`erlang_c`] gives the chance of
//!   waiting at all and [`mean_wait`] / [`service_level`] the average speed
//!   of answer and the share answered within a threshold; queue snapshots
//!   show them as forecasts next to the observed figures.

use std::time::Duration;

/// Probability that an arriving contact has to wait, for `n` servers and an
/// offered load of `a` Erlangs (arrival rate × mean handle time). 1 when the
/// load is at or above the number of servers.
pub fn erlang_c(n: u32, a: f64) -> f64 {
    if n == 0 || !a.is_finite() || a >= f64::from(n) {
        return 1.0;
    }
    if a <= 0.0 {
        return 0.0;
    }
    // Erlang B by the stable recurrence, then C from B.
    let mut b = 1.0;
    for k in 1..=n {
        b = a * b / (f64::from(k) + a * b);
    }
    let n = f64::from(n);
    n * b / (n - a * (1.0 - b))
}

/// Average wait over all arriving contacts (average speed of answer), or
/// `None` when the queue is overloaded.
pub fn mean_wait(n: u32, a: f64, aht: Duration) -> Option<Duration> {
    if n == 0 || a >= f64::from(n) {
        return None;
    }
    let secs = erlang_c(n, a) * aht.as_secs_f64() / (f64::from(n) - a);
    Duration::try_from_secs_f64(secs).ok()
}

/// Share of contacts answered within `threshold`.
pub fn service_level(n: u32, a: f64, aht: Duration, threshold: Duration) -> f64 {
    if n == 0 || a >= f64::from(n) {
        return 0.0;
    }
    let aht = aht.as_secs_f64().max(f64::MIN_POSITIVE);
    let c = erlang_c(n, a);
    (1.0 - c * (-(f64::from(n) - a) * threshold.as_secs_f64() / aht).exp()).clamp(0.0, 1.0)
}

/// Expected wait of the contact at `position` (1 = next) when `servers`
/// (possibly fractional: shared agents count in part) are busy.
pub fn wait_at_position(position: u32, servers: f64, aht: Duration) -> Option<Duration> {
    if servers <= 0.0 || !servers.is_finite() {
        return None;
    }
    Duration::try_from_secs_f64(f64::from(position) * aht.as_secs_f64() / servers).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_values() {
        // 10 agents, 8 Erlangs: P(wait) ≈ 0.4092 (standard tables).
        let c = erlang_c(10, 8.0);
        assert!((c - 0.4092).abs() < 1e-3, "{c}");
        // One server: C = utilisation.
        assert!((erlang_c(1, 0.5) - 0.5).abs() < 1e-12);
        assert_eq!(erlang_c(3, 3.0), 1.0);
        assert_eq!(erlang_c(3, 0.0), 0.0);
        // ASA = C·AHT/(N−A) = 0.4092·180/2 ≈ 36.8 s
        let asa = mean_wait(10, 8.0, Duration::from_secs(180)).expect("stable");
        assert!((asa.as_secs_f64() - 36.8).abs() < 0.2, "{asa:?}");
        let sl = service_level(10, 8.0, Duration::from_secs(180), Duration::from_secs(20));
        assert!((0.6..0.75).contains(&sl), "{sl}");
        assert_eq!(mean_wait(2, 2.5, Duration::from_secs(60)), None);
    }

    #[test]
    fn position_wait() {
        let w = wait_at_position(3, 2.0, Duration::from_secs(100));
        assert_eq!(w, Some(Duration::from_secs(150)));
        assert_eq!(wait_at_position(3, 0.0, Duration::from_secs(100)), None);
    }
}
