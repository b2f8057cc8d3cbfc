//! Dial windows: when a task may place calls. A time group has weekdays,
//! time ranges and excluded dates in a time zone; outside it no originate goes
//! out (live calls continue).

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
    #[error("bad time {0:?}: use HH:MM")]
    Time(String),
    #[error("bad date {0:?}: use YYYY-MM-DD")]
    Date(String),
    #[error("weekday {0} out of range: use 1 (Monday) … 7 (Sunday)")]
    Weekday(u32),
    #[error("time range {0}–{1} is empty")]
    EmptyRange(String, String),
}

/// A dial-time group as stored in `dial_time_groups`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DialWindowSpec {
    pub timezone: String,
    /// 1 = Monday … 7 = Sunday.
    pub weekdays: Vec<u32>,
    /// `[["09:00","12:00"],["13:30","20:00"]]`; end exclusive.
    pub time_ranges: Vec<(String, String)>,
    #[serde(default)]
    pub exclude_dates: Vec<String>,
}

/// A validated window.
#[derive(Debug, Clone, PartialEq)]
pub struct DialWindow {
    tz: Tz,
    weekdays: Vec<u32>,
    ranges: Vec<(NaiveTime, NaiveTime)>,
    exclude: Vec<NaiveDate>,
}

fn time(s: &str) -> Result<NaiveTime, WindowError> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(s.trim(), "%H:%M:%S"))
        .map_err(|_| WindowError::Time(s.to_string()))
}

impl DialWindow {
    pub fn new(spec: &DialWindowSpec) -> Result<DialWindow, WindowError> {
        let tz: Tz = spec.timezone.parse().map_err(|_| WindowError::TimeZone(spec.timezone.clone()))?;
        if let Some(d) = spec.weekdays.iter().find(|d| !(1..=7).contains(*d)) {
            return Err(WindowError::Weekday(*d));
        }
        let mut ranges = Vec::new();
        for (a, b) in &spec.time_ranges {
            let (ta, tb) = (time(a)?, time(b)?);
            if ta >= tb {
                return Err(WindowError::EmptyRange(a.clone(), b.clone()));
            }
            ranges.push((ta, tb));
        }
        let exclude = spec
            .exclude_dates
            .iter()
            .map(|d| NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| WindowError::Date(d.clone())))
            .collect::<Result<_, _>>()?;
        Ok(DialWindow { tz, weekdays: spec.weekdays.clone(), ranges, exclude })
    }

    /// Every day, every hour, in `tz`.
    pub fn always(tz: Tz) -> DialWindow {
        DialWindow { tz, weekdays: (1..=7).collect(), ranges: vec![], exclude: vec![] }
    }

    /// Calling hours only (e.g. 08:00–21:00 every day).
    pub fn hours(tz: Tz, from: &str, to: &str) -> Result<DialWindow, WindowError> {
        Self::new(&DialWindowSpec {
            timezone: tz.name().to_string(),
            weekdays: (1..=7).collect(),
            time_ranges: vec![(from.to_string(), to.to_string())],
            exclude_dates: vec![],
        })
    }

    /// Is dialing allowed at `now`?
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        let local = self.tz.from_utc_datetime(&now.naive_utc());
        let day = local.weekday().number_from_monday();
        if !self.weekdays.contains(&day) || self.exclude.contains(&local.date_naive()) {
            return false;
        }
        let t = local.time();
        self.ranges.is_empty() || self.ranges.iter().any(|(a, b)| t >= *a && t < *b)
    }

    /// The next instant the window opens (now if open), searching a week
    /// ahead minute by minute at range starts; `None` if it never opens.
    pub fn next_open(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(now) {
            return Some(now);
        }
        let local = self.tz.from_utc_datetime(&now.naive_utc());
        for day in 0..=8 {
            let date = local.date_naive() + chrono::Days::new(day);
            let starts: Vec<NaiveTime> =
                if self.ranges.is_empty() { vec![NaiveTime::MIN] } else { self.ranges.iter().map(|r| r.0).collect() };
            let mut cands: Vec<DateTime<Utc>> = starts
                .into_iter()
                .filter_map(|t| self.tz.from_local_datetime(&date.and_time(t)).earliest())
                .map(|d| d.with_timezone(&Utc))
                .filter(|d| *d > now && self.is_open(*d))
                .collect();
            cands.sort();
            if let Some(c) = cands.first() {
                return Some(*c);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> DialWindowSpec {
        DialWindowSpec {
            timezone: "Asia/Shanghai".into(),
            weekdays: vec![1, 2, 3, 4, 5],
            time_ranges: vec![("09:00".into(), "12:00".into()), ("13:30".into(), "20:00".into())],
            exclude_dates: vec!["2026-10-01".into()],
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        // Shanghai is UTC+8 all year.
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn open_and_closed_in_the_task_time_zone() {
        let w = DialWindow::new(&spec()).expect("valid");
        assert!(w.is_open(at("2026-11-23T10:00:00+08:00")), "Monday 10:00");
        assert!(!w.is_open(at("2026-11-23T12:30:00+08:00")), "lunch break");
        assert!(!w.is_open(at("2026-11-23T20:00:00+08:00")), "end exclusive");
        assert!(!w.is_open(at("2026-11-22T10:00:00+08:00")), "Sunday");
        assert!(!w.is_open(at("2026-10-01T10:00:00+08:00")), "excluded date");
        assert!(w.is_open(at("2026-11-23T02:00:00Z")), "10:00 in Shanghai is 02:00 UTC");
    }

    #[test]
    fn next_open_skips_breaks_weekends_and_holidays() {
        let w = DialWindow::new(&spec()).expect("valid");
        assert_eq!(w.next_open(at("2026-11-23T12:30:00+08:00")), Some(at("2026-11-23T13:30:00+08:00")));
        assert_eq!(w.next_open(at("2026-11-21T21:00:00+08:00")), Some(at("2026-11-23T09:00:00+08:00")));
        let t = at("2026-11-23T10:00:00+08:00");
        assert_eq!(w.next_open(t), Some(t));
    }

    #[test]
    fn bad_specs_name_the_problem() {
        let mut s = spec();
        s.timezone = "Mars/Olympus".into();
        assert_eq!(DialWindow::new(&s), Err(WindowError::TimeZone("Mars/Olympus".into())));
        let mut s = spec();
        s.time_ranges = vec![("25:00".into(), "26:00".into())];
        assert_eq!(DialWindow::new(&s), Err(WindowError::Time("25:00".into())));
        let mut s = spec();
        s.weekdays = vec![0];
        assert_eq!(DialWindow::new(&s), Err(WindowError::Weekday(0)));
    }
}
