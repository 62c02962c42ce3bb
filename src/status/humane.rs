//! Durations for a person reading `status`: the units a person says ("3h 12m",
//! "in 21 days", "5 min ago"), exact enough to act on and no more. The log line's
//! compact form is [`crate::report::duration`]; this one is for the table only.
//!
//! It must never round a time that has passed into one still to come, or back.

use std::time::{Duration, SystemTime};

/// A length of time: `45s`, `12 min`, `3h 12m`, `2d 5h`, `21 days`.
pub fn span(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{mins} min"),
        3600..86_400 if mins == 0 => format!("{hours}h"),
        3600..86_400 => format!("{hours}h {mins}m"),
        86_400..604_800 if hours == 0 => format!("{days}d"),
        86_400..604_800 => format!("{days}d {hours}h"),
        _ => format!("{days} days"),
    }
}

/// `at` seen from `now`: `in 3h 12m`, `5 min ago`, `now` (within a second).
pub fn relative(at: SystemTime, now: SystemTime) -> String {
    match at.duration_since(now) {
        Ok(ahead) if ahead.as_secs() == 0 => "now".into(),
        Ok(ahead) => format!("in {}", span(ahead)),
        Err(e) if e.duration().as_secs() == 0 => "now".into(),
        Err(e) => format!("{} ago", span(e.duration())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const MIN: u64 = 60;
    const HOUR: u64 = 3600;
    const DAY: u64 = 86_400;

    #[test]
    fn spans_use_the_units_a_person_says() {
        let s = |secs: u64| span(Duration::from_secs(secs));
        assert_eq!(s(0), "0s");
        assert_eq!(s(45), "45s");
        assert_eq!(s(5 * MIN + 59), "5 min");
        assert_eq!(s(3 * HOUR + 12 * MIN + 30), "3h 12m");
        assert_eq!(s(8 * HOUR), "8h");
        assert_eq!(s(2 * DAY + 5 * HOUR + 59 * MIN), "2d 5h");
        assert_eq!(s(DAY), "1d");
        assert_eq!(s(21 * DAY + 3 * HOUR), "21 days");
        assert_eq!(s(7 * DAY), "7 days");
    }

    #[test]
    fn relative_times_say_which_side_of_now_they_are() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(relative(now + Duration::from_secs(21 * DAY + HOUR), now), "in 21 days");
        assert_eq!(relative(now - Duration::from_secs(5 * MIN + 10), now), "5 min ago");
        assert_eq!(relative(now + Duration::from_millis(300), now), "now");
        assert_eq!(relative(now - Duration::from_millis(300), now), "now");
        assert_eq!(relative(now - Duration::from_secs(3 * HOUR + 12 * MIN), now), "3h 12m ago");
    }
}
