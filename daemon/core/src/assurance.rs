//! Delivery assurance: which channels are still trusted, and which probes are due.
//!
//! No output is trusted because it was configured, only because it was recently seen
//! working (issue 7; the incident behind it is an alert path misconfigured for a year and
//! found at the first real alert). The shell records every proof as evidence (channel,
//! method, time, result); this module decides, from the newest successful proof of each
//! method and `now`, whether a channel is still trusted, and when the shell's scheduled
//! probes are due. It reads no clock: every function takes `now`.
//!
//! A channel's [`ChannelPolicy`] lists the methods that count and how long each keeps the
//! channel trusted: a contact read back by a scheduled probe stays trusted for two days
//! (the probe runs daily), an operator's confirmation for 31 days. Evidence by any other
//! method (a pin seen set, a clip handed to the sound card) is kept in history but proves
//! too little to reset the age. A channel never proved is trusted for its longest limit
//! from a baseline (the day the appliance first ran), so a new installation is not a
//! fault on its first boot — but becomes one if nobody ever tests it.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};

use crate::report::JstTime;

/// Evidence methods (the `method` of a proof).
pub mod method {
    /// A contact's read-back input followed a switching (a probe pulse, a test, an alarm).
    pub const READBACK: &str = "readback";
    /// A contact's read-back input shows the released level while idle.
    pub const READBACK_IDLE: &str = "readback_idle";
    /// An operator saw the output work and said so.
    pub const OPERATOR: &str = "operator";
    /// A probe came back through the broker on the alert topics' path.
    pub const ROUNDTRIP: &str = "roundtrip";
    /// The building management system answered a probe on the acknowledgement topic.
    pub const BMS_ACK: &str = "bms_ack";
    /// The audio probe was heard back through a loopback capture.
    pub const CAPTURE: &str = "capture";
    /// JMA's delivery-test telegram arrived (the whole path from JMA works).
    pub const DELIVERY_TEST: &str = "delivery_test";
    /// A continuous check of the status model (time sync, watchdog, storage) was healthy.
    pub const MONITOR: &str = "monitor";
}

/// How long an operator's confirmation keeps a channel trusted by default: a monthly
/// test, the rhythm of a building's own inspections.
pub const OPERATOR_MAX_AGE: TimeDelta = TimeDelta::days(31);
/// How long a scheduled read-back or capture probe keeps a channel trusted by default
/// (the probe runs daily: one missed day is tolerated, two are a fault).
pub const DAILY_PROBE_MAX_AGE: TimeDelta = TimeDelta::days(2);
/// How many probe intervals without a successful MQTT probe are tolerated.
pub const MQTT_MISSED_PROBES: i32 = 3;
/// How often a continuous check records its evidence, and how long that is trusted.
pub const MONITOR_EVERY: TimeDelta = TimeDelta::hours(1);
/// See [`MONITOR_EVERY`].
pub const MONITOR_MAX_AGE: TimeDelta = TimeDelta::hours(2);
/// How many expected delivery-test intervals may pass without one.
pub const DELIVERY_TESTS_MISSED: i32 = 3;

/// What a contact's scheduled probe does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayProbe {
    /// No scheduled probe: operator-confirmed tests only.
    None,
    /// Read the read-back input while the contact is released (it must show released).
    Idle,
    /// A short pulse whose read-back must follow (contacts marked safe to pulse).
    Pulse,
}

/// A channel and what it can be proved by.
#[derive(Clone, Debug, PartialEq)]
pub enum Channel {
    /// A relay contact.
    Relay {
        /// 1-based contact number.
        id: u8,
        /// A read-back input is wired.
        readback: bool,
        /// Its scheduled probe.
        probe: RelayProbe,
    },
    /// The status LED (only a person can see it).
    Led,
    /// The audio line into the PA.
    Audio {
        /// A loopback capture hears the probe back.
        capture: bool,
    },
    /// MQTT to the building management system.
    Mqtt {
        /// The BMS acknowledges probes: only its answer counts.
        bms_ack: bool,
        /// How often the probe runs.
        probe_every: TimeDelta,
    },
    /// JMA's delivery tests over any link.
    Upstream {
        /// How often JMA sends one on the configured links (VXSE42 is hourly).
        expected_every: TimeDelta,
    },
    /// Time synchronization, continuously checked.
    Time,
    /// The watchdog, continuously checked.
    Watchdog,
    /// History storage, continuously checked.
    Storage,
}

impl Channel {
    /// The channel's name in evidence, on the status model and in faults.
    pub fn name(&self) -> String {
        match self {
            Channel::Relay { id, .. } => format!("relay:{id}"),
            Channel::Led => "led".into(),
            Channel::Audio { .. } => "audio".into(),
            Channel::Mqtt { .. } => "mqtt".into(),
            Channel::Upstream { .. } => "upstream".into(),
            Channel::Time => "time".into(),
            Channel::Watchdog => "watchdog".into(),
            Channel::Storage => "storage".into(),
        }
    }

    /// The default policy: which methods count, for how long.
    pub fn default_policy(&self) -> ChannelPolicy {
        let accepts = match self {
            Channel::Relay {
                readback, probe, ..
            } => {
                let mut v = vec![(method::OPERATOR, OPERATOR_MAX_AGE)];
                if *readback {
                    // A read-back that followed a switching proves the contact; the idle
                    // check proves the wiring and a contact not stuck closed, which is
                    // what a contact that may not be pulsed can offer.
                    v.push((method::READBACK, DAILY_PROBE_MAX_AGE));
                    if *probe == RelayProbe::Idle {
                        v.push((method::READBACK_IDLE, DAILY_PROBE_MAX_AGE));
                    }
                }
                v
            }
            Channel::Led => vec![(method::OPERATOR, OPERATOR_MAX_AGE)],
            Channel::Audio { capture } => {
                let mut v = vec![(method::OPERATOR, OPERATOR_MAX_AGE)];
                if *capture {
                    v.push((method::CAPTURE, DAILY_PROBE_MAX_AGE));
                }
                v
            }
            Channel::Mqtt {
                bms_ack,
                probe_every,
            } => {
                let m = if *bms_ack {
                    method::BMS_ACK
                } else {
                    method::ROUNDTRIP
                };
                vec![(m, *probe_every * MQTT_MISSED_PROBES)]
            }
            Channel::Upstream { expected_every } => vec![(
                method::DELIVERY_TEST,
                *expected_every * DELIVERY_TESTS_MISSED,
            )],
            Channel::Time | Channel::Watchdog | Channel::Storage => {
                vec![(method::MONITOR, MONITOR_MAX_AGE)]
            }
        };
        ChannelPolicy {
            channel: self.name(),
            accepts: accepts
                .into_iter()
                .map(|(m, age)| (m.to_owned(), age))
                .collect(),
        }
    }
}

/// Which evidence methods keep a channel trusted, and for how long each.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelPolicy {
    /// The channel's name (`relay:1`, `mqtt`, …).
    pub channel: String,
    /// (method, maximum age) pairs; evidence by any other method does not count.
    pub accepts: Vec<(String, TimeDelta)>,
}

impl ChannelPolicy {
    /// Every method's limit replaced by one (a configured override of the channel).
    pub fn with_max_age(mut self, max_age: TimeDelta) -> Self {
        for (_, age) in &mut self.accepts {
            *age = max_age;
        }
        self
    }

    /// The operator method's limit replaced (the configured operator interval).
    pub fn with_operator_max_age(mut self, max_age: TimeDelta) -> Self {
        for (m, age) in &mut self.accepts {
            if m == method::OPERATOR {
                *age = max_age;
            }
        }
        self
    }

    /// The longest any accepted method keeps the channel trusted.
    pub fn longest(&self) -> TimeDelta {
        self.accepts
            .iter()
            .map(|(_, age)| *age)
            .max()
            .unwrap_or(TimeDelta::zero())
    }
}

/// Where one channel stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    /// The channel.
    pub channel: String,
    /// Its newest counting proof: when, and by which method.
    pub proved: Option<(DateTime<Utc>, String)>,
    /// When it stops (or stopped) being trusted without a new proof.
    pub due_at: DateTime<Utc>,
    /// `now` is past `due_at`.
    pub overdue: bool,
}

/// Where `policy`'s channel stands at `now`, given the newest successful proof of each
/// method (`ok_by_method`) and the `baseline` an unproved channel is counted from.
pub fn assess(
    policy: &ChannelPolicy,
    ok_by_method: &BTreeMap<String, DateTime<Utc>>,
    baseline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Standing {
    // The proof that keeps the channel trusted longest decides.
    let best = policy
        .accepts
        .iter()
        .filter_map(|(m, age)| ok_by_method.get(m).map(|at| (*at + *age, *at, m)))
        .max_by_key(|(due, _, _)| *due);
    let (due_at, proved) = match best {
        Some((due, at, m)) => (due, Some((at, m.clone()))),
        None => (baseline + policy.longest(), None),
    };
    Standing {
        channel: policy.channel.clone(),
        proved,
        due_at,
        overdue: now > due_at,
    }
}

/// The channels overdue at `now`, sorted by name; and the earliest time a channel still
/// trusted becomes overdue (when to look again), if any.
pub fn overdue(
    policies: &[ChannelPolicy],
    proofs: &BTreeMap<String, BTreeMap<String, DateTime<Utc>>>,
    baseline: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Vec<String>, Option<DateTime<Utc>>) {
    let empty = BTreeMap::new();
    let mut names = Vec::new();
    let mut next: Option<DateTime<Utc>> = None;
    for p in policies {
        let s = assess(p, proofs.get(&p.channel).unwrap_or(&empty), baseline, now);
        if s.overdue {
            names.push(s.channel);
        } else {
            next = Some(next.map_or(s.due_at, |n| n.min(s.due_at)));
        }
    }
    names.sort();
    names.dedup();
    (names, next)
}

/// A daily window of JST wall-clock time in which a probe may run (a contact pulsed at
/// 03:00 surprises nobody); `start > end` wraps past midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// From (inclusive).
    pub start: NaiveTime,
    /// Until (exclusive).
    pub end: NaiveTime,
}

impl Window {
    /// `now` is inside the window.
    pub fn contains(&self, now: JstTime) -> bool {
        let t = now.0.time();
        if self.start <= self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// Parses `HH:MM-HH:MM` (JST).
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('-')?;
        let start = NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?;
        let end = NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?;
        (start != end).then_some(Window { start, end })
    }
}

/// When a scheduled probe runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// At most this often.
    pub every: TimeDelta,
    /// Only inside this window (any time when `None`).
    pub window: Option<Window>,
}

impl Schedule {
    /// The probe is due at `now`, its last attempt having been at `last_attempt`.
    pub fn due(&self, last_attempt: Option<DateTime<Utc>>, now: JstTime) -> bool {
        if self.window.is_some_and(|w| !w.contains(now)) {
            return false;
        }
        let now = now.0.with_timezone(&Utc);
        match last_attempt {
            None => true,
            // A clock stepped backwards (last attempt "in the future") must not stop the
            // probes for as long as it jumped.
            Some(last) if last > now => true,
            Some(last) => now - last >= self.every,
        }
    }
}

/// When a drill runs by itself (the record a building's training plan asks for, e.g. on
/// the day of JMA's national drill).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrillTime {
    /// Once, at this moment.
    Once(DateTime<Utc>),
    /// Every year on this JST month, day, hour and minute.
    Yearly {
        /// 1–12.
        month: u32,
        /// 1–31 (a day a month lacks never comes).
        day: u32,
        /// 0–23.
        hour: u32,
        /// 0–59.
        minute: u32,
    },
}

/// How late a scheduled drill may still start (the daemon was busy, or restarting).
pub const DRILL_GRACE: TimeDelta = TimeDelta::minutes(10);

impl DrillTime {
    /// Parses `MM-DD HH:MM` (yearly, JST) or an RFC 3339 time (once).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(DrillTime::Once(t.with_timezone(&Utc)));
        }
        let (date, time) = s.split_once(' ')?;
        let (month, day) = date.split_once('-')?;
        let (hour, minute) = time.trim().split_once(':')?;
        let [month, day, hour, minute] =
            [month, day, hour, minute].map(|p| p.trim().parse::<u32>().ok());
        let (month, day, hour, minute) = (month?, day?, hour?, minute?);
        // Any leap year validates the day (02-29 included).
        chrono::NaiveDate::from_ymd_opt(2028, month, day)?;
        NaiveTime::from_hms_opt(hour, minute, 0)?;
        Some(DrillTime::Yearly {
            month,
            day,
            hour,
            minute,
        })
    }

    /// The occurrence at or before `now` that is still within [`DRILL_GRACE`], if any.
    fn occurrence(&self, now: JstTime) -> Option<DateTime<Utc>> {
        let utc = now.0.with_timezone(&Utc);
        let at = match *self {
            DrillTime::Once(at) => at,
            DrillTime::Yearly {
                month,
                day,
                hour,
                minute,
            } => {
                use chrono::Datelike;
                let naive = chrono::NaiveDate::from_ymd_opt(now.0.year(), month, day)?
                    .and_hms_opt(hour, minute, 0)?;
                JstTime::from_naive_jst(naive)?.0.with_timezone(&Utc)
            }
        };
        (at <= utc && utc - at < DRILL_GRACE).then_some(at)
    }

    /// The occurrence to run at `now`: due, after `since` (a drill due while the daemon
    /// was not running is not made up later, and one is never run twice), and not yet run
    /// (`last_run` before it).
    pub fn due(
        &self,
        since: DateTime<Utc>,
        last_run: Option<DateTime<Utc>>,
        now: JstTime,
    ) -> Option<DateTime<Utc>> {
        let at = self.occurrence(now)?;
        (at >= since && last_run.is_none_or(|l| l < at)).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
            .single()
            .expect("a valid date")
            + TimeDelta::hours(h)
    }

    fn jst(h: u32, m: u32) -> JstTime {
        JstTime::from_datetime(
            chrono::FixedOffset::east_opt(9 * 3600)
                .expect("JST is a valid offset")
                .with_ymd_and_hms(2026, 12, 1, h, m, 0)
                .single()
                .expect("a valid JST time"),
        )
    }

    #[test]
    fn the_proof_that_lasts_longest_decides() {
        let p = Channel::Relay {
            id: 1,
            readback: true,
            probe: RelayProbe::Pulse,
        }
        .default_policy();
        let mut proofs = BTreeMap::new();
        proofs.insert(method::READBACK.to_owned(), t(100));
        proofs.insert(method::OPERATOR.to_owned(), t(0));
        let s = assess(&p, &proofs, t(-1000), t(120));
        // Operator at 0 h + 31 d = 744 h beats read-back at 100 h + 48 h.
        assert_eq!(s.due_at, t(744));
        assert_eq!(s.proved, Some((t(0), method::OPERATOR.to_owned())));
        assert!(!s.overdue);
    }

    #[test]
    fn methods_that_prove_too_little_do_not_count() {
        let p = Channel::Relay {
            id: 2,
            readback: false,
            probe: RelayProbe::None,
        }
        .default_policy();
        let mut proofs = BTreeMap::new();
        proofs.insert("pin".to_owned(), t(1000));
        // Readback does not count without a read-back input either.
        proofs.insert(method::READBACK.to_owned(), t(1000));
        let s = assess(&p, &proofs, t(0), t(1000));
        assert_eq!(s.proved, None);
        assert!(s.overdue, "31 days from the baseline have passed");
    }

    #[test]
    fn an_unproved_channel_counts_from_the_baseline() {
        let p = Channel::Led.default_policy();
        let none = BTreeMap::new();
        assert!(!assess(&p, &none, t(0), t(744)).overdue);
        assert!(assess(&p, &none, t(0), t(745)).overdue);
    }

    #[test]
    fn mqtt_with_a_bms_acknowledgement_counts_only_the_acknowledgement() {
        let every = TimeDelta::minutes(5);
        let p = Channel::Mqtt {
            bms_ack: true,
            probe_every: every,
        }
        .default_policy();
        let mut proofs = BTreeMap::new();
        proofs.insert(method::ROUNDTRIP.to_owned(), t(10));
        proofs.insert(method::BMS_ACK.to_owned(), t(9));
        let s = assess(&p, &proofs, t(0), t(9) + TimeDelta::minutes(16));
        assert_eq!(s.due_at, t(9) + TimeDelta::minutes(15));
        assert!(s.overdue);
        let plain = Channel::Mqtt {
            bms_ack: false,
            probe_every: every,
        }
        .default_policy();
        assert!(!assess(&plain, &proofs, t(0), t(10) + TimeDelta::minutes(14)).overdue);
    }

    #[test]
    fn overrides_replace_the_limits() {
        let p = Channel::Led
            .default_policy()
            .with_operator_max_age(TimeDelta::days(7));
        assert_eq!(p.longest(), TimeDelta::days(7));
        let q = Channel::Audio { capture: true }
            .default_policy()
            .with_max_age(TimeDelta::hours(1));
        assert!(q.accepts.iter().all(|(_, a)| *a == TimeDelta::hours(1)));
    }

    #[test]
    fn overdue_lists_channels_sorted_and_says_when_to_look_again() {
        let policies = vec![
            Channel::Storage.default_policy(),
            Channel::Led.default_policy(),
            Channel::Time.default_policy(),
        ];
        let mut proofs = BTreeMap::new();
        let mut storage = BTreeMap::new();
        storage.insert(method::MONITOR.to_owned(), t(0));
        proofs.insert("storage".to_owned(), storage);
        let mut time = BTreeMap::new();
        time.insert(method::MONITOR.to_owned(), t(10));
        proofs.insert("time".to_owned(), time);
        let (names, next) = overdue(&policies, &proofs, t(0), t(3));
        assert_eq!(names, vec!["storage".to_owned()]);
        assert_eq!(next, Some(t(12)), "time's monitor proof ends first");
    }

    #[test]
    fn windows_include_their_start_exclude_their_end_and_may_wrap() {
        let w = Window::parse("02:00-04:00").expect("a valid window");
        assert!(!w.contains(jst(1, 59)));
        assert!(w.contains(jst(2, 0)));
        assert!(w.contains(jst(3, 59)));
        assert!(!w.contains(jst(4, 0)));
        let wrap = Window::parse("23:30-01:00").expect("a valid window");
        assert!(wrap.contains(jst(23, 45)));
        assert!(wrap.contains(jst(0, 30)));
        assert!(!wrap.contains(jst(1, 0)));
        assert!(!wrap.contains(jst(12, 0)));
        assert_eq!(Window::parse("02:00-02:00"), None);
        assert_eq!(Window::parse("2am-4am"), None);
        assert_eq!(Window::parse("25:00-04:00"), None);
    }

    #[test]
    fn scheduled_drills_run_once_at_their_time_and_are_not_made_up() {
        let yearly = DrillTime::parse("12-01 10:00").expect("a valid yearly time");
        let start = t(-48);
        // 10:00 JST on 2026-12-01 is 01:00 UTC.
        assert_eq!(yearly.due(start, None, jst(9, 59)), None, "not yet");
        let at = yearly
            .due(start, None, jst(10, 0))
            .expect("due at its minute");
        assert_eq!(at, t(1));
        assert_eq!(
            yearly.due(start, None, jst(10, 9)),
            Some(at),
            "within the grace"
        );
        assert_eq!(yearly.due(start, Some(at), jst(10, 1)), None, "run once");
        assert_eq!(
            yearly.due(start, None, jst(10, 10)),
            None,
            "too late: not made up"
        );
        assert_eq!(
            yearly.due(t(2), None, jst(10, 5)),
            None,
            "due before the daemon started"
        );
        let once = DrillTime::parse("2026-12-01T12:00:00+09:00").expect("RFC 3339");
        assert_eq!(once, DrillTime::Once(t(3)));
        assert_eq!(once.due(start, None, jst(12, 0)), Some(t(3)));
        assert!(
            DrillTime::parse("02-29 10:00").is_some(),
            "a leap day is a day"
        );
        for bad in [
            "02-30 10:00",
            "13-01 10:00",
            "12-01 24:00",
            "12-01",
            "tomorrow",
        ] {
            assert_eq!(DrillTime::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_schedule_is_due_after_its_interval_inside_its_window() {
        let s = Schedule {
            every: TimeDelta::hours(24),
            window: Window::parse("02:00-04:00"),
        };
        let at = |j: JstTime| j.0.with_timezone(&Utc);
        assert!(s.due(None, jst(2, 30)));
        assert!(!s.due(None, jst(12, 0)), "outside the window");
        let last = at(jst(2, 30)) - TimeDelta::hours(23);
        assert!(!s.due(Some(last), jst(2, 30)), "23 h is not yet a day");
        let last = at(jst(2, 30)) - TimeDelta::hours(24);
        assert!(s.due(Some(last), jst(2, 30)));
        let future = at(jst(2, 30)) + TimeDelta::hours(5);
        assert!(s.due(Some(future), jst(2, 30)), "a clock stepped back");
    }
}
