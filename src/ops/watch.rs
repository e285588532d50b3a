//! What a rollout's gate watches beyond its devices: CloudWatch alarms as read, and the
//! maintenance windows that say when a device may be sent to. Pure logic over epoch seconds;
//! the worker reads the alarms and the clock.

use std::fmt;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

pub use crate::fleet::AlarmReading;
use crate::fleet::{AppInstance, Operation};
use serde::{Deserialize, Serialize};

/// What a gated rollout watches besides its devices' own state: their applications, the
/// team's alarms, and when each device may be sent to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    /// Panorama OTA and REBOOT: a device is healthy only once every application instance
    /// that ran before its operation runs again.
    #[serde(default = "yes")]
    pub app_health: bool,
    /// CloudWatch alarms: one in ALARM is a breach.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<String>,
    /// INSUFFICIENT_DATA counts as a breach too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alarm_strict: bool,
    /// The maintenance window of devices without one of their own (`--window`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// The device tag whose value is the device's own window.
    #[serde(default = "window_tag")]
    pub window_tag: String,
    /// A device that waited this long for its window is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_timeout_secs: Option<u64>,
    /// Each device's window as the plan was confirmed ("panorama:<id>" → spec): its own
    /// tag's, else `window`. A device not named may be sent to at any time.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub device_windows: std::collections::BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

/// The tag that carries a device's own maintenance window, unless configured otherwise.
pub const WINDOW_TAG: &str = "maintenance-window";

fn window_tag() -> String {
    WINDOW_TAG.into()
}

impl Default for Watch {
    fn default() -> Self {
        Self {
            app_health: true,
            alarms: Vec::new(),
            alarm_strict: false,
            window: None,
            window_tag: window_tag(),
            window_timeout_secs: None,
            device_windows: Default::default(),
        }
    }
}

impl Watch {
    /// What a plan journaled before gates watched anything is resumed with: nothing more
    /// than it was confirmed with.
    pub fn legacy() -> Box<Self> {
        Box::new(Self {
            app_health: false,
            ..Self::default()
        })
    }

    /// Whether a plan of this operation reads its appliances' applications.
    pub fn reads_apps(&self, op: &Operation) -> bool {
        self.app_health && matches!(op, Operation::Ota { .. } | Operation::Reboot)
    }

    /// Whether any device may have to wait for a window.
    pub fn has_windows(&self) -> bool {
        self.window.is_some() || !self.window_tag.is_empty()
    }
}

/// An application instance that ran before an operation, by id and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRef {
    pub id: String,
    pub name: String,
}

/// The applications running on an appliance before its operation: the baseline its health
/// is judged against afterwards.
pub fn app_baseline(apps: &[AppInstance]) -> Vec<AppRef> {
    apps.iter()
        .filter(|a| a.is_running())
        .map(|a| AppRef {
            id: a.id.clone(),
            name: a.name.clone(),
        })
        .collect()
}

/// Every application instance on an appliance, as a baseline: when none was read before
/// the operation, all of them must run.
pub fn app_baseline_all(apps: &[AppInstance]) -> Vec<AppRef> {
    apps.iter()
        .map(|a| AppRef {
            id: a.id.clone(),
            name: a.name.clone(),
        })
        .collect()
}

/// Whether every application that ran before the operation runs again: the reason, naming
/// each instance and its state, if not.
pub fn app_health(baseline: &[AppRef], now: &[AppInstance]) -> Result<(), String> {
    let bad: Vec<String> = baseline
        .iter()
        .filter_map(|b| match now.iter().find(|a| a.id == b.id) {
            Some(a) if a.is_running() => None,
            Some(a) => Some(a.state_text()),
            None => Some(format!("{} is gone", b.name)),
        })
        .collect();
    match bad.len() {
        0 => Ok(()),
        1 => Err(format!("its application is not running: {}", bad[0])),
        _ => Err(format!(
            "its applications are not running: {}",
            bad.join(", ")
        )),
    }
}

/// The alarms that break the gate, as one line naming each: an alarm in ALARM, and with
/// `strict` one in INSUFFICIENT_DATA too. `None`: the gate holds.
pub fn alarm_breach(readings: &[AlarmReading], strict: bool) -> Option<String> {
    let bad: Vec<String> = readings
        .iter()
        .filter(|a| a.state == "ALARM" || (strict && a.state == "INSUFFICIENT_DATA"))
        .map(AlarmReading::text)
        .collect();
    (!bad.is_empty()).then(|| format!("alarm {}", bad.join("; alarm ")))
}

/// The alarms breaking the gate, by name and state only: what a promotion accepts, so that a
/// new reason or timestamp of the same state does not break the gate again.
pub fn breach_key(readings: &[AlarmReading], strict: bool) -> Option<String> {
    let mut bad: Vec<String> = readings
        .iter()
        .filter(|a| a.state == "ALARM" || (strict && a.state == "INSUFFICIENT_DATA"))
        .map(|a| format!("{}={}", a.name, a.state))
        .collect();
    bad.sort();
    (!bad.is_empty()).then(|| bad.join(","))
}

/// Whether a breach is within what was accepted: each alarm breaking now was breaking, in
/// that state, when the operator promoted.
pub fn within(key: &str, accepted: &str) -> bool {
    let was: Vec<&str> = accepted.split(',').collect();
    key.split(',').all(|k| was.contains(&k))
}

/// The alarms that were asked for and that CloudWatch does not have.
pub fn missing_alarms<'a>(asked: &'a [String], readings: &[AlarmReading]) -> Vec<&'a str> {
    asked
        .iter()
        .filter(|n| !readings.iter().any(|r| &r.name == *n))
        .map(String::as_str)
        .collect()
}

/// "open now, until 2026-12-06 05:00 UTC" or "opens 2026-12-12 08:00 UTC", for a confirmation;
/// a spec that is not a window says why.
pub fn next_window_text(spec: &str, now: u64) -> String {
    match Windows::parse(spec) {
        Err(e) => format!("not a window, never sent: {e}"),
        Ok(w) => match w.at(now) {
            WindowState::Open { closes } => format!("open now, until {}", minute(closes)),
            WindowState::Shut { opens } => format!("opens {}", minute(opens)),
        },
    }
}

fn minute(secs: u64) -> String {
    Timestamp::from_second(i64::try_from(secs).unwrap_or(i64::MAX)).map_or_else(
        |_| secs.to_string(),
        |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// Where a device stands against its window at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowState {
    /// Open; it closes then (epoch seconds).
    Open { closes: u64 },
    /// Shut; it opens then.
    Shut { opens: u64 },
}

/// Recurring maintenance windows in a time zone: "Sat,Sun 02:00-05:00 America/Chicago",
/// "Mon-Fri 22:00-02:00 Europe/Berlin" (a window past midnight ends the next day), "daily
/// 01:00-03:00" (UTC when no zone is given). Several are joined with ';'.
#[derive(Clone, Debug, PartialEq)]
pub struct Windows {
    spans: Vec<Span>,
    text: String,
}

#[derive(Clone, Debug, PartialEq)]
struct Span {
    /// Monday first.
    days: [bool; 7],
    start: Time,
    end: Time,
    tz: TimeZone,
}

impl fmt::Display for Windows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

const FORM: &str = "write it like \"Sat,Sun 02:00-05:00 America/Chicago\", \"Mon-Fri 22:00-02:00 UTC\" or \"daily 01:00-03:00\"";

impl Windows {
    pub fn parse(text: &str) -> Result<Self, String> {
        let spans = text
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| span(s).map_err(|e| format!("window {s:?}: {e}; {FORM}")))
            .collect::<Result<Vec<_>, _>>()?;
        if spans.is_empty() {
            return Err(format!("window {text:?} names no window; {FORM}"));
        }
        Ok(Self {
            spans,
            text: text.trim().to_string(),
        })
    }

    /// Open or shut at `now` (epoch seconds), and until when.
    pub fn at(&self, now: u64) -> WindowState {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let mut closes: Option<i64> = None;
        let mut opens: Option<i64> = None;
        for s in &self.spans {
            for (start, end) in s.occurrences(now) {
                if start <= now && now < end {
                    closes = Some(closes.map_or(end, |c| c.max(end)));
                } else if start > now {
                    opens = Some(opens.map_or(start, |o| o.min(start)));
                }
            }
        }
        let secs = |t: i64| u64::try_from(t).unwrap_or(0);
        match (closes, opens) {
            (Some(c), _) => WindowState::Open { closes: secs(c) },
            (None, Some(o)) => WindowState::Shut { opens: secs(o) },
            // Every span names at least one day, so one opens within the week.
            (None, None) => WindowState::Shut { opens: u64::MAX },
        }
    }
}

impl Span {
    /// This span's windows that begin from the day before `now` to a week after it, as
    /// (start, end) epoch seconds; each begins and ends on its zone's own wall clock.
    fn occurrences(&self, now: i64) -> Vec<(i64, i64)> {
        let Ok(ts) = Timestamp::from_second(now) else {
            return Vec::new();
        };
        let today = ts.to_zoned(self.tz.clone()).date();
        let mut out = Vec::new();
        for off in -1i64..=7 {
            let Ok(day) = today.checked_add(off.days()) else {
                continue;
            };
            if !self.days[usize::from(day.weekday().to_monday_zero_offset().unsigned_abs())] {
                continue;
            }
            let end_day = if self.end <= self.start {
                day.tomorrow().ok()
            } else {
                Some(day)
            };
            if let (Some(start), Some(end)) = (
                self.instant(day, self.start),
                end_day.and_then(|d| self.instant(d, self.end)),
            ) {
                out.push((start, end));
            }
        }
        out
    }

    fn instant(&self, day: Date, time: Time) -> Option<i64> {
        day.to_datetime(time)
            .to_zoned(self.tz.clone())
            .ok()
            .map(|z| z.timestamp().as_second())
    }
}

fn span(text: &str) -> Result<Span, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (days, times, zone) = match words.as_slice() {
        [times] if times.contains('-') && times.contains(':') => ("daily", *times, None),
        [days, times] => (*days, *times, None),
        [days, times, zone] => (*days, *times, Some(*zone)),
        _ => return Err("expected DAYS HH:MM-HH:MM [TIME ZONE]".into()),
    };
    let (start, end) = times
        .split_once('-')
        .ok_or_else(|| format!("{times:?} is not HH:MM-HH:MM"))?;
    let (start, end) = (clock(start)?, clock(end)?);
    if start == end {
        return Err("a window that ends when it begins is never open".into());
    }
    let tz = match zone {
        None => TimeZone::UTC,
        Some(z) => TimeZone::get(z).map_err(|_| {
            format!("{z:?} is not a known time zone (IANA names such as America/Chicago, or UTC)")
        })?,
    };
    Ok(Span {
        days: weekdays(days)?,
        start,
        end,
        tz,
    })
}

fn clock(text: &str) -> Result<Time, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let num = |s: &str, max: i8| -> Result<i8, String> {
        s.parse::<i8>()
            .ok()
            .filter(|n| (0..=max).contains(n) && s.len() == 2)
            .ok_or_else(|| format!("{text:?} is not a time of day (HH:MM or HH:MM:SS)"))
    };
    let (h, m, s) = match parts.as_slice() {
        [h, m] => (num(h, 23)?, num(m, 59)?, 0),
        [h, m, s] => (num(h, 23)?, num(m, 59)?, num(s, 59)?),
        _ => return Err(format!("{text:?} is not a time of day (HH:MM or HH:MM:SS)")),
    };
    Time::new(h, m, s, 0).map_err(|e| e.to_string())
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(text: &str) -> Result<usize, String> {
    let t = text.trim().to_ascii_lowercase();
    let head: String = t.chars().take(3).collect();
    DAYS.iter()
        .position(|d| head.chars().count() == 3 && *d == head)
        .ok_or_else(|| format!("{text:?} is not a day (Mon, Tue, … Sun)"))
}

fn weekdays(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    if matches!(text.to_ascii_lowercase().as_str(), "daily" | "*" | "every") {
        return Ok([true; 7]);
    }
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut d = a;
                loop {
                    days[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[day(part)?] = true,
        }
    }
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Epoch seconds of a civil time in a zone.
    fn at(text: &str, zone: &str) -> u64 {
        let dt: jiff::civil::DateTime = text.parse().unwrap();
        let z = dt.to_zoned(TimeZone::get(zone).unwrap()).unwrap();
        u64::try_from(z.timestamp().as_second()).unwrap()
    }

    #[test]
    fn a_weekend_window_opens_in_its_own_time_zone() {
        let w = Windows::parse("Sat,Sun 02:00-05:00 America/Chicago").unwrap();
        // Friday 2026-12-04 23:00 in Chicago: shut until Saturday 02:00 Chicago time.
        let fri = at("2026-12-04T23:00", "America/Chicago");
        assert_eq!(
            w.at(fri),
            WindowState::Shut {
                opens: at("2026-12-05T02:00", "America/Chicago")
            }
        );
        let sat = at("2026-12-05T03:30", "America/Chicago");
        assert_eq!(
            w.at(sat),
            WindowState::Open {
                closes: at("2026-12-05T05:00", "America/Chicago")
            }
        );
        // Sunday after it closes: next Saturday.
        let sun = at("2026-12-06T05:00", "America/Chicago");
        assert_eq!(
            w.at(sun),
            WindowState::Shut {
                opens: at("2026-12-12T02:00", "America/Chicago")
            }
        );
    }

    #[test]
    fn a_window_past_midnight_belongs_to_the_day_it_begins() {
        let w = Windows::parse("Fri 22:00-02:00 UTC").unwrap();
        // Saturday 01:00 is inside Friday's window.
        assert_eq!(
            w.at(at("2026-12-05T01:00", "UTC")),
            WindowState::Open {
                closes: at("2026-12-05T02:00", "UTC")
            }
        );
        assert!(matches!(
            w.at(at("2026-12-05T02:00", "UTC")),
            WindowState::Shut { .. }
        ));
        let days = Windows::parse("Mon-Wed 10:00-11:00").unwrap();
        assert_eq!(
            days.at(at("2026-12-03T10:30", "UTC")),
            WindowState::Shut {
                opens: at("2026-12-07T10:00", "UTC")
            },
            "Thursday is not in Mon-Wed"
        );
        let daily = Windows::parse("01:00:00-01:00:30; Sun 12:00-13:00").unwrap();
        assert_eq!(
            daily.at(at("2026-12-06T00:59", "UTC")),
            WindowState::Shut {
                opens: at("2026-12-06T01:00", "UTC")
            }
        );
    }

    #[test]
    fn daylight_saving_keeps_the_wall_clock() {
        // Berlin leaves summer time on 2026-10-25 (03:00 goes back to 02:00): the window
        // opens at 03:00 local that day too, an hour later by UTC than the day before.
        let w = Windows::parse("daily 03:00-04:00 Europe/Berlin").unwrap();
        assert_eq!(
            w.at(at("2026-10-24T12:00", "Europe/Berlin")),
            WindowState::Shut {
                opens: at("2026-10-25T03:00", "Europe/Berlin")
            }
        );
    }

    #[test]
    fn bad_windows_name_what_is_wrong() {
        assert!(
            Windows::parse("Sat 2:00-05:00")
                .unwrap_err()
                .contains("time of day")
        );
        assert!(
            Windows::parse("Sat 02:00-05:00 Mars/Olympus")
                .unwrap_err()
                .contains("time zone")
        );
        assert!(
            Windows::parse("Caturday 02:00-05:00")
                .unwrap_err()
                .contains("not a day")
        );
        assert!(
            Windows::parse("Sat 02:00-02:00")
                .unwrap_err()
                .contains("never open")
        );
        assert!(Windows::parse(" ; ").unwrap_err().contains("no window"));
        // A tag's accents never split a character.
        assert!(
            Windows::parse("Mié-Vie 02:00-05:00")
                .unwrap_err()
                .contains("not a day")
        );
    }

    fn app(id: &str, health: &str, status: &str) -> AppInstance {
        AppInstance {
            id: id.into(),
            name: format!("app-{id}"),
            health: health.into(),
            status: status.into(),
            detail: (health == "ERROR").then(|| "failed to start".into()),
        }
    }

    #[test]
    fn apps_are_healthy_when_each_that_ran_before_runs_again() {
        let ok = "DEPLOYMENT_SUCCEEDED";
        // b was not running before: it is no part of the baseline.
        let before = app_baseline(&[
            app("a", "RUNNING", ok),
            app("b", "ERROR", ok),
            app("c", "RUNNING", ok),
        ]);
        assert_eq!(
            before.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
            ["a", "c"]
        );
        let after = [
            app("a", "RUNNING", ok),
            app("b", "ERROR", ok),
            app("c", "RUNNING", ok),
        ];
        assert_eq!(app_health(&before, &after), Ok(()));
        let broken = [app("a", "ERROR", ok), app("c", "NOT_AVAILABLE", ok)];
        assert_eq!(
            app_health(&before, &broken),
            Err(
                "its applications are not running: app-a ERROR (failed to start), app-c NOT_AVAILABLE"
                    .into()
            )
        );
        let redeploying = [app("a", "RUNNING", "DEPLOYMENT_IN_PROGRESS")];
        assert_eq!(
            app_health(&before, &redeploying),
            Err(
                "its applications are not running: app-a DEPLOYMENT_IN_PROGRESS, app-c is gone"
                    .into()
            )
        );
        assert_eq!(app_health(&[], &broken), Ok(()));
    }

    #[test]
    fn alarms_break_the_gate_in_alarm_and_when_strict_without_data() {
        let r = |name: &str, state: &str| AlarmReading {
            name: name.into(),
            state: state.into(),
            reason: "Threshold Crossed".into(),
            since: 1_765_000_000,
        };
        let readings = [r("a", "OK"), r("b", "INSUFFICIENT_DATA")];
        assert_eq!(alarm_breach(&readings, false), None);
        let strict = alarm_breach(&readings, true).unwrap();
        assert!(
            strict.starts_with("alarm b is INSUFFICIENT_DATA since 2025-"),
            "{strict}"
        );
        let firing = alarm_breach(&[r("a", "ALARM")], false).unwrap();
        assert!(firing.contains("a is ALARM") && firing.contains("Threshold Crossed"));
        let asked = vec!["a".to_string(), "c".to_string()];
        assert_eq!(missing_alarms(&asked, &readings), ["c"]);
    }
}
