//! Business hours: a weekly schedule in a **fixed** UTC offset.
//!
//! The schedule has no notion of daylight saving time or holidays: a site
//! that changes its offset twice a year updates the queue's configuration
//! (an [`Input::UpsertQueue`](crate::Input::UpsertQueue)) when the clocks
//! change. Hours gate *arrivals*: a contact that arrives while its queue is
//! closed gets the queue's [`ClosedAction`](crate::ClosedAction); contacts
//! already waiting at closing time stay and are served.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

const MINUTES_PER_DAY: u16 = 24 * 60;
const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_DAY: i64 = 24 * 60 * MS_PER_MINUTE;

/// One open interval of a day, in minutes since local midnight: open from
/// `start` (inclusive) to `end` (exclusive). `end` may be 1440 (midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenInterval {
    /// First open minute, 0..1440.
    pub start: u16,
    /// First closed minute after the interval, 1..=1440.
    pub end: u16,
}

impl OpenInterval {
    /// An interval from `h1:m1` to `h2:m2` local time.
    pub const fn hm(h1: u16, m1: u16, h2: u16, m2: u16) -> Self {
        OpenInterval {
            start: h1 * 60 + m1,
            end: h2 * 60 + m2,
        }
    }
}

/// A weekly opening schedule in a fixed offset from UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessHours {
    /// Local time minus UTC, in minutes (`60` for UTC+01:00, `-300` for UTC−05:00).
    pub utc_offset_minutes: i32,
    /// Open intervals for each weekday, Monday first (index 0) to Sunday (index 6).
    pub weekly: [Vec<OpenInterval>; 7],
}

impl BusinessHours {
    /// Open around the clock every day.
    pub fn always() -> Self {
        let day = vec![OpenInterval {
            start: 0,
            end: MINUTES_PER_DAY,
        }];
        BusinessHours {
            utc_offset_minutes: 0,
            weekly: std::array::from_fn(|_| day.clone()),
        }
    }

    /// Open Monday to Friday in one interval, closed at the weekend.
    pub fn weekdays(utc_offset_minutes: i32, open: OpenInterval) -> Self {
        BusinessHours {
            utc_offset_minutes,
            weekly: std::array::from_fn(|d| if d < 5 { vec![open] } else { Vec::new() }),
        }
    }

    /// Checks the intervals: inside the day, non-empty, and the offset within ±18 h.
    pub fn validate(&self) -> Result<(), String> {
        if self.utc_offset_minutes.abs() > 18 * 60 {
            return Err(format!(
                "utc_offset_minutes {} is outside ±1080",
                self.utc_offset_minutes
            ));
        }
        for (day, intervals) in self.weekly.iter().enumerate() {
            for iv in intervals {
                if iv.start >= iv.end || iv.end > MINUTES_PER_DAY {
                    return Err(format!(
                        "weekday {day}: interval {}..{} is empty or past midnight",
                        iv.start, iv.end
                    ));
                }
            }
        }
        Ok(())
    }

    /// Local weekday (0 = Monday) and minute of the day at `at`.
    pub fn local_weekday_minute(&self, at: Timestamp) -> (usize, u16) {
        let ms = i64::try_from(at.as_millis()).unwrap_or(i64::MAX);
        let local = ms.saturating_add(i64::from(self.utc_offset_minutes) * MS_PER_MINUTE);
        let days = local.div_euclid(MS_PER_DAY);
        let minute = local.rem_euclid(MS_PER_DAY) / MS_PER_MINUTE;
        // 1970-01-01 was a Thursday (index 3 when Monday is 0).
        let weekday = (days + 3).rem_euclid(7);
        (
            usize::try_from(weekday).unwrap_or(0),
            u16::try_from(minute).unwrap_or(0),
        )
    }

    /// Whether the schedule is open at `at`.
    pub fn is_open(&self, at: Timestamp) -> bool {
        let (day, minute) = self.local_weekday_minute(at);
        self.weekly[day]
            .iter()
            .any(|iv| iv.start <= minute && minute < iv.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-01-01 00:00:00 UTC was a Monday.
    const MONDAY: u64 = 1_704_067_200_000;
    const HOUR: u64 = 3_600_000;

    #[test]
    fn weekday_and_minute_in_offset() {
        let h = BusinessHours::weekdays(60, OpenInterval::hm(9, 0, 17, 0));
        assert_eq!(h.local_weekday_minute(Timestamp(MONDAY)), (0, 60));
        // Sunday 23:30 UTC is Monday 00:30 at UTC+1.
        assert_eq!(
            h.local_weekday_minute(Timestamp(MONDAY - HOUR / 2)),
            (0, 30)
        );
        let west = BusinessHours::weekdays(-300, OpenInterval::hm(9, 0, 17, 0));
        // Monday 03:00 UTC is Sunday 22:00 at UTC-5.
        assert_eq!(
            west.local_weekday_minute(Timestamp(MONDAY + 3 * HOUR)),
            (6, 22 * 60)
        );
    }

    #[test]
    fn open_and_closed() {
        let h = BusinessHours::weekdays(60, OpenInterval::hm(9, 0, 17, 0));
        // Monday 08:00 UTC = 09:00 local: open (start inclusive).
        assert!(h.is_open(Timestamp(MONDAY + 8 * HOUR)));
        // Monday 16:00 UTC = 17:00 local: closed (end exclusive).
        assert!(!h.is_open(Timestamp(MONDAY + 16 * HOUR)));
        assert!(h.is_open(Timestamp(MONDAY + 16 * HOUR - 1)));
        // Saturday noon: closed.
        assert!(!h.is_open(Timestamp(MONDAY + 5 * 24 * HOUR + 11 * HOUR)));
        assert!(BusinessHours::always().is_open(Timestamp(MONDAY + 5 * 24 * HOUR)));
    }

    #[test]
    fn validation() {
        let mut h = BusinessHours::always();
        assert!(h.validate().is_ok());
        h.weekly[2] = vec![OpenInterval {
            start: 600,
            end: 600,
        }];
        assert!(h.validate().is_err());
        let mut h = BusinessHours::always();
        h.utc_offset_minutes = 20 * 60;
        assert!(h.validate().is_err());
    }
}
