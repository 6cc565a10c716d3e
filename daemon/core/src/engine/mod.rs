//! The alert engine: a deterministic state machine
//! `(state, input, now) → (actions, next deadline)`.
//!
//! It never reads a clock and never waits: the shell passes `now` with every input and
//! calls [`Engine::step`] with [`Input::Tick`] at (or after) the returned deadline. The
//! same inputs at the same times always give the same actions, which is what makes
//! `eewgate replay` and the scenario tests exact.
//!
//! The rules (JMA receiving-terminal guideline, and `docs/adr/0006-alert-engine.md`):
//!
//! - **Dedup per event id**: older serials and duplicates are dropped (copies arrive from
//!   two JMA systems and two links, out of order); a correction of the same serial is
//!   taken once; a cancel is always honoured.
//! - **Update rule for a running alarm** (guideline (1)4): a higher class (or long-period
//!   class) → update; the same class with less time left → update; a warning newly
//!   covering the site → update; otherwise keep. A running alarm is never downgraded.
//! - **Several events**: contacts are the union of what each event asks; the most
//!   dangerous event drives the voice and the LED; a weaker later event releases nothing.
//! - **Cancel** releases exactly what its event started (contacts released on expiry but
//!   not on cancel — the PA pre-start — open when the event would have expired; a cancel
//!   after the expiry still opens what the event holds) and speaks the cancellation only if
//!   the event had spoken and no other event has taken the voice.
//! - **Exercises** (JMA 訓練, JMA 試験, local drills) act only where enabled, on outputs
//!   that include them, and every action says so (`label`, `training`).

pub mod action;
pub mod timeline;
pub mod voice;

use std::collections::{BTreeMap, BTreeSet};

use chrono::TimeDelta;
use serde::Serialize;

use crate::intensity::Intensity;
use crate::predict::{self, Arrival, Prediction};
use crate::report::{InfoType, JstTime, Kind, RegionLevel, Report, Status};
use crate::settings::{ContactMode, FlagPolicy, Include, Settings, Trigger};

pub use action::{
    Action, ActionKind, AlertFlags, AlertState, Cause, Decision, Label, LedPattern, OutputId,
};
pub use timeline::Timeline;

/// How long a cancelled or expired event is remembered, so late copies and older serials
/// are still recognised as duplicates (s).
pub const TOMBSTONE_S: i64 = 3600;
/// A report delivered this long after JMA issued it is recorded but acts on nothing: a
/// backlog replayed by a reconnecting link must not start an alarm for shaking long past
/// (s). Generous against clock error (±1 s) and relay delays (< 1 s).
pub const MAX_REPORT_AGE_S: i64 = 60;
/// At most this many events are tracked; beyond it the oldest finished ones are forgotten.
pub const MAX_TRACKED_EVENTS: usize = 256;

/// A fault the status model reports to the engine (shown on the LED).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// No upstream link is delivering heartbeats.
    Link,
    /// The clock is unsynchronised or off by more than ±1 s.
    Clock,
}

/// A local drill: a synthetic alert labelled `drill` on every output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct DrillSpec {
    /// The class the drill announces.
    pub class: Intensity,
    /// Seconds from the start to the (pretend) S arrival.
    pub seconds: u32,
    /// Long-period class, if the drill includes one.
    pub long_period_class: Option<u8>,
    /// Whether the drill pretends a warning covers the site.
    pub warning: bool,
}

/// An operator's command (web UI, button, command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Stop the voice now; contacts stay. A stronger update speaks again.
    Silence,
    /// End every running alarm: contacts whose rule allows reset open, the voice stops.
    Reset,
    /// Start a local drill.
    Drill(DrillSpec),
    /// Prove one output works (the web UI's Tests page, and the scheduled probes): a
    /// contact closes for [`SELF_TEST_PULSE_MS`] (a pulse contact for its own pulse), the
    /// voice says the test phrase after the chime, the LED shows its lamp test. Refused
    /// while an alarm runs or the output is busy; an alarm that starts during a test
    /// takes the output over at once (a contact under test stays closed for it).
    SelfTest {
        /// The output to test (MQTT is proved by the shell's own probe, not here).
        output: OutputId,
    },
}

/// How long a latched contact closes for a self-test (ms): long enough for a read-back
/// and for a person to see the equipment react, short enough to do no harm.
pub const SELF_TEST_PULSE_MS: u32 = 500;

/// One input to the engine.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A validated report (any link, any format).
    Report(Box<Report>),
    /// Time passed: fire whatever is due.
    Tick,
    /// A fault appeared (`active`) or cleared.
    Fault {
        /// Which fault.
        fault: Fault,
        /// Appeared or cleared.
        active: bool,
    },
    /// An operator command.
    Command(Command),
    /// A recorded report replayed as a local drill (the web UI's drill of a real past
    /// event): labelled `drill` whatever its status, acted on only when drills are
    /// allowed (`alert.drill`), and kept apart from real events of the same id. Its times
    /// must already be shifted to "as if now" by the caller.
    DrillReport(Box<Report>),
}

/// What one step produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    /// What the outputs must do now, in order.
    pub actions: Vec<Action>,
    /// What the engine made of the input (for history and logs).
    pub decisions: Vec<Decision>,
    /// Call again with [`Input::Tick`] at this time (or earlier); `None` = nothing
    /// scheduled.
    pub next_deadline: Option<JstTime>,
}

/// Where an alarm stands: the most it has said for its event.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Level {
    class: Option<Intensity>,
    long_period: Option<u8>,
    /// A warning (警報) covers the site's area.
    warning: bool,
    /// Number of areas under warning in the report (a growing list re-announces).
    warned_areas: usize,
    arrival: Option<JstTime>,
    /// Arrived already, or PLUM-imminent: no countdown.
    imminent: bool,
    flags: AlertFlags,
    serial: u32,
}

impl Level {
    /// True when `new` must update an alarm standing at `self` (guideline (1)4).
    fn is_updated_by(&self, new: &Level) -> bool {
        if new.class > self.class || new.long_period > self.long_period {
            return true;
        }
        if new.class == self.class
            && let (Some(a), Some(b)) = (new.arrival, self.arrival)
            && a < b
        {
            return true;
        }
        new.warning && (!self.warning || new.warned_areas > self.warned_areas)
    }

    /// The level after an update: never lower than before.
    fn merged(&self, new: &Level) -> Level {
        let (arrival, imminent) = if new.class > self.class {
            (new.arrival, new.imminent)
        } else if new.class == self.class {
            let arrival = match (new.arrival, self.arrival) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (arrival, new.imminent || self.imminent)
        } else {
            (self.arrival, self.imminent)
        };
        Level {
            class: self.class.max(new.class),
            long_period: self.long_period.max(new.long_period),
            warning: self.warning || new.warning,
            warned_areas: self.warned_areas.max(new.warned_areas),
            arrival,
            imminent,
            flags: new.flags,
            serial: new.serial,
        }
    }

    /// Danger order between events: real first, then class, long-period class, warning,
    /// and the sooner arrival.
    fn danger(&self, label: Label) -> impl Ord {
        (
            label == Label::Real,
            self.class,
            self.long_period,
            self.warning,
            std::cmp::Reverse(self.arrival),
        )
    }
}

/// A running (or reset) alarm for one event.
#[derive(Clone, Debug)]
struct Alarm {
    level: Level,
    /// Contacts this event closed (or joined while closed).
    relays: BTreeSet<u8>,
    /// The voice spoke for this event (an announcement was emitted, not merely scheduled
    /// behind the PA pre-start), so its cancel is announced.
    audio: bool,
    /// The LED showed this event.
    led: bool,
    /// An MQTT alert was published for this event.
    mqtt: bool,
    /// The operator reset it: it no longer drives anything, but its level is remembered
    /// so only a real update restarts it.
    ended: bool,
    /// The operator silenced the voice for it.
    silenced: bool,
}

/// The alarm the voice and the LED follow, for the status model and the dashboard.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlarmView {
    /// JMA's event id.
    pub event_id: String,
    /// Real, or which exercise.
    pub label: Label,
    /// The site's predicted intensity class.
    pub class: Option<Intensity>,
    /// The site's predicted long-period class.
    pub long_period_class: Option<u8>,
    /// A warning covers the site's area.
    pub warning: bool,
    /// Predicted S-wave arrival at the site (no countdown when `imminent`).
    pub s_arrival_at: Option<JstTime>,
    /// Arrived already, or PLUM-imminent.
    pub imminent: bool,
    /// Deep, PLUM, single station, …
    pub flags: AlertFlags,
    /// The report the alarm stands at.
    pub serial: u32,
    /// JMA cancelled the event (its contacts may still be held).
    pub cancelled: bool,
}

#[derive(Clone, Debug)]
struct EventState {
    id: String,
    label: Label,
    last_serial: u32,
    last_info: InfoType,
    last_input_at: JstTime,
    cancelled: bool,
    final_seen: bool,
    alarm: Option<Alarm>,
    /// Set once cancelled or expired; the event is forgotten [`TOMBSTONE_S`] later.
    finished_at: Option<JstTime>,
}

#[derive(Clone, Debug, Default)]
struct RelayState {
    active: bool,
    /// Events holding a latched contact closed.
    owners: BTreeSet<String>,
    /// The event that closed it last (for the context of its `off`).
    closed_by: Option<String>,
    activated_at: Option<JstTime>,
    pulse_end: Option<JstTime>,
    /// Closed by a self-test (no event owns it): an alarm takes it over.
    self_test: bool,
    /// A release waiting for the hold time.
    release_at: Option<(JstTime, Cause)>,
}

#[derive(Clone, Debug, Default)]
struct AudioState {
    /// The event the voice speaks for.
    owner: Option<String>,
    /// An announcement waiting for a PA pre-start contact.
    pending: Option<JstTime>,
    /// Countdown numbers still to say: (time, seconds), soonest first.
    countdown: Vec<(JstTime, u8)>,
}

/// The alert engine. See the module docs for its rules.
#[derive(Clone, Debug)]
pub struct Engine {
    settings: Settings,
    events: BTreeMap<String, EventState>,
    relays: Vec<RelayState>,
    audio: AudioState,
    led: LedPattern,
    led_owner: Option<String>,
    /// Why the alarm the LED shows ended in this step (cancel, reset or expiry), for the
    /// cause of the LED's change.
    led_end_cause: Option<Cause>,
    faults: BTreeSet<Fault>,
}

pub(crate) fn add_ms(t: JstTime, ms: i64) -> JstTime {
    // Saturate instead of panicking: only reachable ~262,000 years from now.
    JstTime(
        t.0.checked_add_signed(TimeDelta::milliseconds(ms))
            .unwrap_or(t.0),
    )
}

fn label_of(status: Status) -> Label {
    match status {
        Status::Normal => Label::Real,
        Status::Training => Label::Training,
        Status::Test => Label::Test,
    }
}

fn stale_reason(r: &Report, now: JstTime) -> Option<&'static str> {
    let issued = r.issued_at?;
    let age_ms = now.0.signed_duration_since(issued.0).num_milliseconds();
    (age_ms > MAX_REPORT_AGE_S * 1000).then_some("stale_report")
}

fn event_key(label: Label, id: &str) -> String {
    // Training and real telegrams are separate events even if ids were to collide.
    match label {
        Label::Real => id.to_owned(),
        Label::Training => format!("training:{id}"),
        Label::Test => format!("test:{id}"),
        Label::Drill => format!("drill:{id}"),
    }
}

impl Engine {
    /// A new engine: nothing running, LED normal, no faults.
    pub fn new(settings: Settings) -> Self {
        let relays = vec![RelayState::default(); settings.outputs.relays.len()];
        Self {
            settings,
            events: BTreeMap::new(),
            relays,
            audio: AudioState::default(),
            led: LedPattern::Normal,
            led_owner: None,
            led_end_cause: None,
            faults: BTreeSet::new(),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The LED pattern currently shown.
    pub fn led(&self) -> LedPattern {
        self.led
    }

    /// Relay contacts currently closed, by id.
    pub fn closed_relays(&self) -> Vec<u8> {
        self.settings
            .outputs
            .relays
            .iter()
            .zip(&self.relays)
            .filter(|(_, s)| s.active)
            .map(|(r, _)| r.id)
            .collect()
    }

    /// The most dangerous running alarm — the one the voice and the LED follow — as a
    /// dashboard shows it.
    pub fn current_alarm(&self) -> Option<AlarmView> {
        self.events
            .values()
            .filter_map(|e| e.alarm.as_ref().filter(|a| !a.ended).map(|a| (e, a)))
            .max_by_key(|(e, a)| a.level.danger(e.label))
            .map(|(e, a)| AlarmView {
                event_id: e.id.clone(),
                label: e.label,
                class: a.level.class,
                long_period_class: a.level.long_period,
                warning: a.level.warning,
                s_arrival_at: a.level.arrival,
                imminent: a.level.imminent,
                flags: a.level.flags,
                serial: a.level.serial,
                cancelled: e.cancelled,
            })
    }

    /// Event ids with a running (not reset) alarm, most dangerous first.
    pub fn running_alarms(&self) -> Vec<String> {
        let mut running: Vec<&EventState> = self
            .events
            .values()
            .filter(|e| e.alarm.as_ref().is_some_and(|a| !a.ended))
            .collect();
        running
            .sort_by_key(|e| std::cmp::Reverse(e.alarm.as_ref().map(|a| a.level.danger(e.label))));
        running.iter().map(|e| e.id.clone()).collect()
    }

    /// One step: feed `input` at `now`, get the actions and the next deadline.
    pub fn step(&mut self, input: Input, now: JstTime) -> Step {
        let mut step = Step::default();
        match input {
            Input::Report(report) => {
                self.on_report(&report, label_of(report.status), now, &mut step)
            }
            Input::DrillReport(report) => {
                if self.settings.alert.drill {
                    self.on_report(&report, Label::Drill, now, &mut step);
                } else {
                    step.decisions.push(Decision {
                        event_id: Some(report.event_id.as_str().to_owned()),
                        serial: Some(report.serial),
                        label: Label::Drill,
                        outcome: "drill_disabled",
                        detail: None,
                    });
                }
            }
            Input::Tick => {}
            Input::Fault { fault, active } => {
                if active {
                    self.faults.insert(fault);
                } else {
                    self.faults.remove(&fault);
                }
            }
            Input::Command(Command::Silence) => self.on_silence(now, &mut step),
            Input::Command(Command::Reset) => self.on_reset(now, &mut step),
            Input::Command(Command::Drill(spec)) => self.on_drill(spec, now, &mut step),
            Input::Command(Command::SelfTest { output }) => {
                self.on_self_test(output, now, &mut step);
            }
        }
        self.fire_due(now, &mut step);
        self.update_led(now, &mut step);
        self.forget_old(now);
        step.next_deadline = self.next_deadline();
        step
    }

    // ---- reports -------------------------------------------------------------------

    fn on_report(&mut self, r: &Report, label: Label, now: JstTime, step: &mut Step) {
        let id = r.event_id.as_str().to_owned();
        let decision = |outcome, detail| Decision {
            event_id: Some(id.clone()),
            serial: Some(r.serial),
            label,
            outcome,
            detail,
        };
        if r.kind == Kind::DeliveryTest {
            step.decisions.push(decision("delivery_test", None));
            return;
        }
        let key = event_key(label, &id);
        if !self.events.contains_key(&key) {
            self.make_room();
        }
        let ev = self
            .events
            .entry(key.clone())
            .or_insert_with(|| EventState {
                id: id.clone(),
                label,
                last_serial: 0,
                last_info: InfoType::Issued,
                last_input_at: now,
                cancelled: false,
                final_seen: false,
                alarm: None,
                finished_at: None,
            });
        let is_cancel = r.kind == Kind::Cancel;
        if ev.cancelled {
            let outcome = if is_cancel {
                "duplicate"
            } else {
                "event_cancelled"
            };
            step.decisions.push(decision(outcome, None));
            return;
        }
        if !is_cancel && ev.last_serial > 0 {
            if r.serial < ev.last_serial {
                step.decisions.push(decision("older_serial", None));
                return;
            }
            let correction_of_same =
                r.info_type == InfoType::Correction && ev.last_info != InfoType::Correction;
            if r.serial == ev.last_serial && !correction_of_same {
                step.decisions.push(decision("duplicate", None));
                return;
            }
        }
        ev.last_serial = ev.last_serial.max(r.serial);
        ev.last_info = r.info_type;
        ev.last_input_at = now;
        ev.final_seen |= r.final_report;
        if ev.finished_at.is_some() && !is_cancel {
            // A newer report for an expired event: it is alive again.
            ev.finished_at = None;
        }
        step.decisions.push(decision("accepted", None));

        if is_cancel {
            self.on_cancel(&key, r.serial, now, step);
            return;
        }
        if let Some(why) = self.not_acted_reason(r, label) {
            step.decisions.push(decision("not_acted", Some(why)));
            return;
        }
        let prediction = predict::predict(r, &self.settings.site, &self.settings.prediction);
        if let Some(why) = stale_reason(r, now).or(self.past_arrival_reason(&prediction, now)) {
            step.decisions.push(decision("not_acted", Some(why)));
            return;
        }
        let level = self.level_of(r, &prediction);
        let wanted = self.any_output_wants(&level, label);
        let Some(ev) = self.events.get_mut(&key) else {
            return;
        };
        match &mut ev.alarm {
            None => {
                if !wanted {
                    step.decisions
                        .push(decision("not_acted", Some("below_every_output_rule")));
                    return;
                }
                ev.alarm = Some(Alarm {
                    level,
                    relays: BTreeSet::new(),
                    audio: false,
                    led: false,
                    mqtt: false,
                    ended: false,
                    silenced: false,
                });
                step.decisions.push(decision("started", None));
                self.drive(&key, Cause::Start, now, step);
            }
            Some(alarm) => {
                if alarm.level.is_updated_by(&level) {
                    alarm.level = alarm.level.merged(&level);
                    alarm.ended = false;
                    alarm.silenced = false;
                    step.decisions.push(decision("updated", None));
                    self.drive(&key, Cause::Update, now, step);
                } else {
                    step.decisions.push(decision("kept", None));
                }
            }
        }
    }

    /// Why a report is recorded but operates nothing, before any output's own rule.
    fn not_acted_reason(&self, r: &Report, label: Label) -> Option<&'static str> {
        let alert = &self.settings.alert;
        match label {
            Label::Training if !alert.training => return Some("training_disabled"),
            Label::Test if !alert.test => return Some("test_disabled"),
            _ => {}
        }
        if !r.actionable {
            return Some(r.not_actionable_reason.unwrap_or("not_actionable"));
        }
        let assumed = r.hypocenter.as_ref().is_some_and(|h| h.assumed);
        let ignored = [
            (
                r.flags.level_method,
                alert.level_method,
                "level_method_ignored",
            ),
            (r.flags.deep, alert.deep, "deep_event_ignored"),
            (r.flags.plum, alert.plum, "plum_ignored"),
            (
                r.flags.single_station,
                alert.single_station,
                "single_station_ignored",
            ),
            (
                assumed,
                alert.assumed_hypocenter,
                "assumed_hypocenter_ignored",
            ),
        ];
        ignored
            .into_iter()
            .find(|&(flag, policy, _)| flag && policy == FlagPolicy::Ignore)
            .map(|(_, _, why)| why)
    }

    fn past_arrival_reason(&self, p: &Prediction, now: JstTime) -> Option<&'static str> {
        let window = self.settings.alert.past_arrival_s;
        match p.arrival {
            Arrival::At { time } if time < now => {
                let late_ms = now.0.signed_duration_since(time.0).num_milliseconds();
                match window {
                    Some(s) if late_ms <= i64::from(s) * 1000 => None,
                    _ => Some("s_wave_passed"),
                }
            }
            Arrival::Arrived if window.is_none() => Some("s_wave_passed"),
            _ => None,
        }
    }

    fn level_of(&self, r: &Report, p: &Prediction) -> Level {
        let code = self.settings.site.area_code.as_str();
        let warning = r.area(code).is_some_and(|a| a.warning)
            || r.warned_regions
                .iter()
                .any(|w| w.level == RegionLevel::Area && w.code == code);
        let (arrival, imminent) = match p.arrival {
            Arrival::At { time } => (Some(time), false),
            Arrival::Arrived | Arrival::Imminent => (None, true),
            Arrival::Unknown => (None, false),
        };
        Level {
            class: p.intensity_class,
            long_period: p.long_period_class,
            warning,
            warned_areas: r.areas.iter().filter(|a| a.warning).count(),
            arrival,
            imminent,
            flags: AlertFlags {
                plum: r.flags.plum,
                deep: r.flags.deep,
                level_method: r.flags.level_method,
                single_station: r.flags.single_station,
                assumed_hypocenter: r.hypocenter.as_ref().is_some_and(|h| h.assumed),
            },
            serial: r.serial,
        }
    }

    // ---- output rules ----------------------------------------------------------------

    fn includes(&self, include: Include, label: Label) -> bool {
        let alert = &self.settings.alert;
        match label {
            Label::Real => true,
            Label::Training => alert.training && include.training,
            Label::Test => alert.test && include.test,
            Label::Drill => alert.drill && include.drill,
        }
    }

    fn triggers(&self, t: &Trigger, level: &Level, label: Label) -> bool {
        if !self.includes(t.include, label) || (t.warning_only && !level.warning) {
            return false;
        }
        let by_class = t.min_class.map(|m| level.class.is_some_and(|c| c >= m));
        let by_long = t
            .min_long_period_class
            .map(|m| level.long_period.is_some_and(|c| c >= m));
        match (by_class, by_long) {
            (None, None) => true,
            (a, b) => a.unwrap_or(false) || b.unwrap_or(false),
        }
    }

    fn any_output_wants(&self, level: &Level, label: Label) -> bool {
        let o = &self.settings.outputs;
        o.relays
            .iter()
            .any(|r| r.enabled && self.triggers(&r.trigger, level, label))
            || (o.audio.enabled && self.triggers(&o.audio.trigger, level, label))
            || (o.led.enabled && self.triggers(&o.led.trigger, level, label))
            || (o.mqtt.enabled && self.triggers(&o.mqtt.trigger, level, label))
    }

    fn in_quiet_hours(&self, level: &Level, now: JstTime) -> bool {
        let Some(q) = self.settings.outputs.audio.quiet_hours else {
            return false;
        };
        let t = now.0.time();
        let inside = if q.start <= q.end {
            t >= q.start && t < q.end
        } else {
            t >= q.start || t < q.end
        };
        inside && level.class.is_none_or(|c| c < q.min_class)
    }

    /// The event that drives the voice and LED: the most dangerous running alarm.
    fn driver(&self) -> Option<String> {
        self.events
            .iter()
            .filter_map(|(k, e)| {
                let a = e.alarm.as_ref().filter(|a| !a.ended)?;
                Some((a.level.danger(e.label), k))
            })
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, k)| k.clone())
    }

    /// Applies a started or updated alarm to every output.
    fn drive(&mut self, key: &str, cause: Cause, now: JstTime, step: &mut Step) {
        let Some(ev) = self.events.get(key) else {
            return;
        };
        let Some(alarm) = ev.alarm.as_ref() else {
            return;
        };
        let (level, label) = (alarm.level, ev.label);

        // Contacts: each rule on its own; a contact already closed gains an owner.
        let mut newly_owned = Vec::new();
        for (idx, rule) in self.settings.outputs.relays.iter().enumerate() {
            if !rule.enabled
                || alarm.relays.contains(&rule.id)
                || !self.triggers(&rule.trigger, &level, label)
            {
                continue;
            }
            newly_owned.push((idx, rule.id, rule.mode));
        }
        for (idx, id, mode) in newly_owned {
            let Some(state) = self.relays.get_mut(idx) else {
                continue;
            };
            let mut close = None;
            // A contact closed by a self-test is the alarm's now: it closes "again" (the
            // pin already is) and the test's pulse end no longer applies.
            let taken_over = std::mem::take(&mut state.self_test) && state.active;
            match mode {
                ContactMode::Latched => {
                    state.owners.insert(key.to_owned());
                    state.release_at = None;
                    if taken_over {
                        state.pulse_end = None;
                    }
                    if !state.active || taken_over {
                        close = Some(None);
                    }
                }
                ContactMode::Pulse { pulse_ms } => {
                    if !state.active || taken_over {
                        state.pulse_end = Some(add_ms(now, i64::from(pulse_ms)));
                        close = Some(Some(pulse_ms));
                    }
                }
            }
            if let Some(pulse_ms) = close {
                state.active = true;
                state.activated_at = Some(now);
                state.closed_by = Some(key.to_owned());
                let a = self.action(
                    now,
                    OutputId::Relay(id),
                    ActionKind::On { pulse_ms },
                    cause,
                    Some(key),
                );
                step.actions.push(a);
            }
            if let Some(alarm) = self.alarm_mut(key) {
                alarm.relays.insert(id);
            }
        }

        // Voice: only for the most dangerous event, unless quiet hours say otherwise.
        let audio = &self.settings.outputs.audio;
        let speaks = audio.enabled
            && self.triggers(&audio.trigger, &level, label)
            && self.driver().as_deref() == Some(key);
        if speaks {
            if self.in_quiet_hours(&level, now) {
                step.decisions.push(Decision {
                    event_id: Some(ev_id(&self.events, key)),
                    serial: Some(level.serial),
                    label,
                    outcome: "not_spoken",
                    detail: Some("quiet_hours"),
                });
            } else if !self.alarm_mut(key).is_some_and(|a| a.silenced) {
                self.speak(key, cause, now, step);
            }
        }

        // MQTT alert.
        let mqtt = &self.settings.outputs.mqtt;
        if mqtt.enabled && self.triggers(&mqtt.trigger, &level, label) {
            let first = !self.alarm_mut(key).is_some_and(|a| a.mqtt);
            if let Some(alarm) = self.alarm_mut(key) {
                alarm.mqtt = true;
            }
            let state = if first {
                AlertState::Started
            } else {
                AlertState::Updated
            };
            let driving = self.driver().as_deref() == Some(key);
            let a = self.action(
                now,
                OutputId::Mqtt,
                ActionKind::Publish { state, driving },
                cause,
                Some(key),
            );
            step.actions.push(a);
        }

        // LED: the rule decides whether this event may show; `update_led` shows it.
        let led = &self.settings.outputs.led;
        if led.enabled
            && self.triggers(&led.trigger, &level, label)
            && let Some(alarm) = self.alarm_mut(key)
        {
            alarm.led = true;
        }
    }

    fn alarm_mut(&mut self, key: &str) -> Option<&mut Alarm> {
        self.events.get_mut(key).and_then(|e| e.alarm.as_mut())
    }

    /// Announces now, or after the PA pre-start wait; schedules the countdown.
    fn speak(&mut self, key: &str, cause: Cause, now: JstTime, step: &mut Step) {
        let prestart_until = self
            .settings
            .outputs
            .relays
            .iter()
            .zip(&self.relays)
            .filter(|(rule, s)| rule.prestart_ms > 0 && s.active)
            .filter_map(|(rule, s)| {
                s.activated_at
                    .map(|t| add_ms(t, i64::from(rule.prestart_ms)))
            })
            .max();
        let announce_at = prestart_until.filter(|t| *t > now);
        self.audio.owner = Some(key.to_owned());
        self.audio.countdown.clear();
        match announce_at {
            Some(t) => self.audio.pending = Some(t),
            None => {
                self.audio.pending = None;
                let a = self.announcement(key, cause, now);
                step.actions.push(a);
                if let Some(alarm) = self.alarm_mut(key) {
                    alarm.audio = true;
                }
            }
        }
        let from = self.settings.outputs.audio.countdown_from_s;
        let start = announce_at.unwrap_or(now);
        if let Some(arrival) = self.alarm_mut(key).and_then(|a| a.level.arrival) {
            for n in (1..=from).rev() {
                let t = add_ms(arrival, -1000 * i64::from(n));
                if t > start {
                    self.audio.countdown.push((t, n));
                }
            }
        }
    }

    fn announcement(&self, key: &str, cause: Cause, now: JstTime) -> Action {
        let speech = match self
            .events
            .get(key)
            .and_then(|e| e.alarm.as_ref().map(|a| (e, a)))
        {
            Some((e, a)) => {
                let seconds_left = a.level.arrival.and_then(|t| {
                    let ms = t.0.signed_duration_since(now.0).num_milliseconds();
                    u32::try_from(ms / 1000).ok().filter(|s| *s >= 1)
                });
                voice::announcement(
                    self.settings.outputs.audio.style,
                    voice::Spoken {
                        label: e.label,
                        class: a.level.class,
                        warning: a.level.warning,
                        seconds_left,
                        flags: a.level.flags,
                    },
                )
            }
            None => voice::announcement(
                self.settings.outputs.audio.style,
                voice::Spoken {
                    label: Label::Real,
                    class: None,
                    warning: false,
                    seconds_left: None,
                    flags: AlertFlags::default(),
                },
            ),
        };
        self.action(
            now,
            OutputId::Audio,
            ActionKind::announce(speech.ja, speech.en),
            cause,
            Some(key),
        )
    }

    // ---- cancel, reset, silence, drill ----------------------------------------------

    fn on_cancel(&mut self, key: &str, serial: u32, now: JstTime, step: &mut Step) {
        let Some(ev) = self.events.get_mut(key) else {
            return;
        };
        ev.cancelled = true;
        ev.finished_at = Some(now);
        let label = ev.label;
        let id = ev.id.clone();
        let Some(mut alarm) = ev.alarm.take() else {
            // An event that expired may still hold latched contacts its expiry does not
            // release (release_on = ["cancel", "reset"]): its cancel releases them.
            let held: BTreeSet<u8> = self
                .settings
                .outputs
                .relays
                .iter()
                .zip(&self.relays)
                .filter(|(_, state)| state.owners.contains(key))
                .map(|(rule, _)| rule.id)
                .collect();
            self.release_event_relays(key, &held, Cause::Cancel, |r| r.on_cancel, now, step);
            step.decisions.push(Decision {
                event_id: Some(id),
                serial: Some(serial),
                label,
                outcome: "cancel_without_alarm",
                detail: None,
            });
            return;
        };
        alarm.level.serial = serial;
        // Keep the alarm's level for the context of the actions below.
        let context = alarm.clone();
        if let Some(ev) = self.events.get_mut(key) {
            ev.alarm = Some(context);
        }
        self.release_event_relays(
            key,
            &alarm.relays,
            Cause::Cancel,
            |r| r.on_cancel,
            now,
            step,
        );
        // The cancellation is spoken only if this event had spoken, and never over another
        // event that now drives the voice (the most dangerous event keeps the voice: "the
        // earlier warning was cancelled" must not interrupt a running, stronger one).
        let owned = self.audio.owner.as_deref() == Some(key);
        if owned {
            self.audio.pending = None;
            self.audio.countdown.clear();
        }
        // Where the cancellation sits in the actions; spoken (or merged) below.
        let cancellation_at =
            (alarm.audio && (owned || self.audio.owner.is_none())).then_some(step.actions.len());
        if alarm.mqtt {
            let a = self.action(
                now,
                OutputId::Mqtt,
                ActionKind::Publish {
                    state: AlertState::Cancelled,
                    driving: self.driver().as_deref() == Some(key),
                },
                Cause::Cancel,
                Some(key),
            );
            step.actions.push(a);
        }
        // Latched contacts whose rule keeps them through a cancel but releases them on
        // expiry (the PA pre-start, so the cancellation is heard) stay held until the event
        // would have expired; without this nothing but an operator reset would open them.
        let kept: BTreeSet<u8> = self
            .settings
            .outputs
            .relays
            .iter()
            .filter(|r| {
                alarm.relays.contains(&r.id)
                    && r.mode == ContactMode::Latched
                    && !r.release.on_cancel
                    && r.release.on_expiry
            })
            .map(|r| r.id)
            .collect();
        if let Some(ev) = self.events.get_mut(key) {
            if kept.is_empty() {
                ev.alarm = None;
            } else {
                ev.finished_at = None;
                ev.last_input_at = now;
                ev.alarm = Some(Alarm {
                    level: alarm.level,
                    relays: kept,
                    audio: false,
                    led: false,
                    mqtt: false,
                    ended: true,
                    silenced: true,
                });
            }
        }
        if self.audio.owner.as_deref() == Some(key) {
            self.audio.owner = None;
        }
        self.led_end_cause.get_or_insert(Cause::Cancel);
        step.decisions.push(Decision {
            event_id: Some(id),
            serial: Some(serial),
            label,
            outcome: "cancelled",
            detail: None,
        });
        let resumed_from = step.actions.len();
        self.resume_driver_voice(now, step);
        if let Some(at) = cancellation_at {
            let cancel = voice::cancellation(label);
            // When another alarm takes the voice in this same step, one announcement says
            // both (an announcement replaces what is playing, so two would cut the first).
            let resumed = step
                .actions
                .get_mut(resumed_from..)
                .and_then(|new| new.iter_mut().find(|a| a.output == OutputId::Audio));
            match resumed.map(|a| &mut a.kind) {
                Some(ActionKind::Announce {
                    text_ja,
                    text_en,
                    clips_ja,
                    clips_en,
                }) => {
                    clips_ja.splice(0..0, cancel.ja);
                    clips_en.splice(0..0, cancel.en);
                    *text_ja = voice::text_ja(clips_ja);
                    *text_en = voice::text_en(clips_en);
                }
                _ => {
                    let a = self.action(
                        now,
                        OutputId::Audio,
                        ActionKind::announce(cancel.ja, cancel.en),
                        Cause::Cancel,
                        Some(key),
                    );
                    step.actions.insert(at.min(step.actions.len()), a);
                }
            }
        }
    }

    /// After the voice's event ends, the next most dangerous alarm speaks again.
    fn resume_driver_voice(&mut self, now: JstTime, step: &mut Step) {
        if self.audio.owner.is_some() {
            return;
        }
        let Some(key) = self.driver() else {
            return;
        };
        let Some((level, label, silenced)) = self
            .events
            .get(&key)
            .and_then(|e| e.alarm.as_ref().map(|a| (a.level, e.label, a.silenced)))
        else {
            return;
        };
        let audio = &self.settings.outputs.audio;
        if audio.enabled
            && !silenced
            && self.triggers(&audio.trigger, &level, label)
            && !self.in_quiet_hours(&level, now)
        {
            self.speak(&key, Cause::Update, now, step);
        }
    }

    /// Releases the contacts `alarm` holds, where `allowed` says the rule permits it.
    fn release_event_relays(
        &mut self,
        key: &str,
        held: &BTreeSet<u8>,
        cause: Cause,
        allowed: impl Fn(&crate::settings::Release) -> bool,
        now: JstTime,
        step: &mut Step,
    ) {
        for (idx, rule) in self.settings.outputs.relays.iter().enumerate() {
            if !held.contains(&rule.id) {
                continue;
            }
            let Some(state) = self.relays.get_mut(idx) else {
                continue;
            };
            let release = match rule.mode {
                ContactMode::Latched => {
                    if !allowed(&rule.release) {
                        continue;
                    }
                    state.owners.remove(key);
                    state.active && state.owners.is_empty()
                }
                // A pulse this event started ends early on cancel.
                ContactMode::Pulse { .. } => {
                    cause == Cause::Cancel
                        && state.active
                        && state.closed_by.as_deref() == Some(key)
                }
            };
            if !release {
                continue;
            }
            match hold_until(rule, state) {
                Some(t) if t > now => state.release_at = Some((t, cause)),
                _ => {
                    state.active = false;
                    state.pulse_end = None;
                    state.release_at = None;
                    let id = rule.id;
                    let a =
                        self.action(now, OutputId::Relay(id), ActionKind::Off, cause, Some(key));
                    step.actions.push(a);
                }
            }
        }
    }

    fn on_reset(&mut self, now: JstTime, step: &mut Step) {
        let keys: Vec<String> = self
            .events
            .iter()
            .filter(|(_, e)| e.alarm.as_ref().is_some_and(|a| !a.ended))
            .map(|(k, _)| k.clone())
            .collect();
        // Contacts whose rule allows an operator reset open at once, whoever holds them.
        for (idx, rule) in self.settings.outputs.relays.iter().enumerate() {
            let Some(state) = self.relays.get_mut(idx) else {
                continue;
            };
            if !state.active || !rule.release.on_reset {
                continue;
            }
            // A latched contact stays closed at least its hold time, whatever releases it
            // (the elevators finish their stop even if reset at once).
            if let Some(t) = hold_until(rule, state).filter(|t| *t > now) {
                state.owners.clear();
                state.release_at = Some((t, Cause::Reset));
                continue;
            }
            let context = state.closed_by.clone();
            state.active = false;
            state.self_test = false;
            state.owners.clear();
            state.pulse_end = None;
            state.release_at = None;
            let a = self.action(
                now,
                OutputId::Relay(rule.id),
                ActionKind::Off,
                Cause::Reset,
                context.as_deref(),
            );
            step.actions.push(a);
        }
        let speaking = self.audio.owner.take();
        if let Some(owner) = speaking {
            self.audio.pending = None;
            self.audio.countdown.clear();
            let a = self.action(
                now,
                OutputId::Audio,
                ActionKind::Stop,
                Cause::Reset,
                Some(&owner),
            );
            step.actions.push(a);
        }
        for key in &keys {
            let published = self.alarm_mut(key).is_some_and(|a| a.mqtt);
            if published {
                let a = self.action(
                    now,
                    OutputId::Mqtt,
                    ActionKind::Publish {
                        state: AlertState::Reset,
                        driving: false,
                    },
                    Cause::Reset,
                    Some(key),
                );
                step.actions.push(a);
            }
            let reset_ids: BTreeSet<u8> = self
                .settings
                .outputs
                .relays
                .iter()
                .filter(|r| r.release.on_reset)
                .map(|r| r.id)
                .collect();
            if let Some(alarm) = self.alarm_mut(key) {
                alarm.ended = true;
                alarm.silenced = true;
                alarm.relays.retain(|id| !reset_ids.contains(id));
            }
        }
        self.led_end_cause.get_or_insert(Cause::Reset);
        step.decisions.push(Decision {
            event_id: None,
            serial: None,
            label: Label::Real,
            outcome: "reset",
            detail: None,
        });
    }

    fn on_silence(&mut self, now: JstTime, step: &mut Step) {
        if let Some(owner) = self.audio.owner.take() {
            self.audio.pending = None;
            self.audio.countdown.clear();
            let a = self.action(
                now,
                OutputId::Audio,
                ActionKind::Stop,
                Cause::Silence,
                Some(&owner),
            );
            step.actions.push(a);
        }
        for e in self.events.values_mut() {
            if let Some(a) = e.alarm.as_mut() {
                a.silenced = true;
            }
        }
        step.decisions.push(Decision {
            event_id: None,
            serial: None,
            label: Label::Real,
            outcome: "silenced",
            detail: None,
        });
    }

    fn on_drill(&mut self, spec: DrillSpec, now: JstTime, step: &mut Step) {
        if !self.settings.alert.drill {
            step.decisions.push(Decision {
                event_id: None,
                serial: None,
                label: Label::Drill,
                outcome: "drill_disabled",
                detail: None,
            });
            return;
        }
        let id = self.drill_id(now);
        let key = event_key(Label::Drill, &id);
        let level = Level {
            class: Some(spec.class),
            long_period: spec.long_period_class,
            warning: spec.warning,
            warned_areas: usize::from(spec.warning),
            arrival: Some(add_ms(now, 1000 * i64::from(spec.seconds))),
            imminent: false,
            flags: AlertFlags::default(),
            serial: 1,
        };
        self.make_room();
        self.events.insert(
            key.clone(),
            EventState {
                id: id.clone(),
                label: Label::Drill,
                last_serial: 1,
                last_info: InfoType::Issued,
                last_input_at: now,
                cancelled: false,
                final_seen: true,
                alarm: Some(Alarm {
                    level,
                    relays: BTreeSet::new(),
                    audio: false,
                    led: false,
                    mqtt: false,
                    ended: false,
                    silenced: false,
                }),
                finished_at: None,
            },
        );
        step.decisions.push(Decision {
            event_id: Some(id),
            serial: Some(1),
            label: Label::Drill,
            outcome: "drill_started",
            detail: None,
        });
        self.drive(&key, Cause::Start, now, step);
    }

    /// A synthetic drill's event id: `drill-` and the JST second it started
    /// (`drill-20261204120000`), so a drill keeps its own id in history across restarts
    /// of the daemon's tasks (the drill report is keyed by it); a second drill started
    /// within the same second while the first is remembered gets `-2`, `-3`, ….
    fn drill_id(&self, now: JstTime) -> String {
        let base = format!("drill-{}", now.0.format("%Y%m%d%H%M%S"));
        let taken = |id: &str| self.events.contains_key(&event_key(Label::Drill, id));
        if !taken(&base) {
            return base;
        }
        (2..=u32::MAX)
            .map(|n| format!("{base}-{n}"))
            .find(|id| !taken(id))
            .unwrap_or(base)
    }

    // ---- self-tests --------------------------------------------------------------------

    fn on_self_test(&mut self, output: OutputId, now: JstTime, step: &mut Step) {
        let outcome = match self.self_test(output, now) {
            Ok(actions) => {
                step.actions.extend(actions);
                Decision {
                    event_id: None,
                    serial: None,
                    label: Label::Test,
                    outcome: "self_test_started",
                    detail: None,
                }
            }
            Err(why) => Decision {
                event_id: None,
                serial: None,
                label: Label::Test,
                outcome: "self_test_refused",
                detail: Some(why),
            },
        };
        step.decisions.push(outcome);
    }

    /// The actions of a self-test of `output`, or why not (a stable code).
    fn self_test(&mut self, output: OutputId, now: JstTime) -> Result<Vec<Action>, &'static str> {
        // Nothing is tested while an alarm runs: the outputs are doing their real job.
        if self.driver().is_some() {
            return Err("alert_in_progress");
        }
        let kind = match output {
            OutputId::Relay(id) => {
                let (idx, rule) = self
                    .settings
                    .outputs
                    .relays
                    .iter()
                    .enumerate()
                    .find(|(_, r)| r.id == id)
                    .ok_or("unknown_output")?;
                if !rule.enabled {
                    return Err("output_disabled");
                }
                let pulse_ms = match rule.mode {
                    ContactMode::Pulse { pulse_ms } => pulse_ms,
                    ContactMode::Latched => SELF_TEST_PULSE_MS,
                };
                let state = self
                    .relays
                    .get_mut(idx)
                    .expect("one relay state per configured contact (Engine::new)");
                if state.active {
                    return Err("busy");
                }
                state.active = true;
                state.self_test = true;
                state.activated_at = Some(now);
                state.closed_by = None;
                state.pulse_end = Some(add_ms(now, i64::from(pulse_ms)));
                ActionKind::On {
                    pulse_ms: Some(pulse_ms),
                }
            }
            OutputId::Audio => {
                if !self.settings.outputs.audio.enabled {
                    return Err("output_disabled");
                }
                if self.audio.owner.is_some() || self.audio.pending.is_some() {
                    return Err("busy");
                }
                ActionKind::announce(vec![voice::SELF_TEST_ID], vec![voice::SELF_TEST_ID])
            }
            OutputId::Led => ActionKind::Led {
                pattern: LedPattern::LampTest,
            },
            OutputId::Mqtt => return Err("not_an_engine_test"),
        };
        let mut a = self.action(now, output, kind, Cause::SelfTest, None);
        a.label = Label::Test;
        a.training = true;
        Ok(vec![a])
    }

    // ---- time ------------------------------------------------------------------------

    fn fire_due(&mut self, now: JstTime, step: &mut Step) {
        // Contacts: pulse ends and held releases.
        for idx in 0..self.relays.len() {
            let Some(rule_id) = self.settings.outputs.relays.get(idx).map(|r| r.id) else {
                continue;
            };
            let Some(state) = self.relays.get_mut(idx) else {
                continue;
            };
            let due = if state.pulse_end.is_some_and(|t| t <= now) {
                Some(Cause::PulseEnd)
            } else {
                match state.release_at {
                    Some((t, _)) if t <= now => Some(Cause::HoldEnd),
                    _ => None,
                }
            };
            if let Some(cause) = due
                && state.active
            {
                state.active = false;
                state.self_test = false;
                state.pulse_end = None;
                state.release_at = None;
                state.owners.clear();
                let context = state.closed_by.clone();
                let a = self.action(
                    now,
                    OutputId::Relay(rule_id),
                    ActionKind::Off,
                    cause,
                    context.as_deref(),
                );
                step.actions.push(a);
            }
        }
        // Voice: the pre-start wait, then the countdown (only the latest number due).
        if self.audio.pending.is_some_and(|t| t <= now) {
            self.audio.pending = None;
            if let Some(owner) = self.audio.owner.clone() {
                let a = self.announcement(&owner, Cause::Prestart, now);
                step.actions.push(a);
                if let Some(alarm) = self.alarm_mut(&owner) {
                    alarm.audio = true;
                }
            }
        }
        let due: Vec<(JstTime, u8)> = self
            .audio
            .countdown
            .iter()
            .copied()
            .filter(|(t, _)| *t <= now)
            .collect();
        self.audio.countdown.retain(|(t, _)| *t > now);
        if let (Some(&(_, n)), Some(owner)) = (due.last(), self.audio.owner.clone()) {
            let a = self.action(
                now,
                OutputId::Audio,
                ActionKind::countdown(n),
                Cause::Countdown,
                Some(&owner),
            );
            step.actions.push(a);
        }
        // Events that went quiet.
        let expiry_ms = 1000 * i64::from(self.settings.alert.event_expiry_s);
        let expired: Vec<String> = self
            .events
            .iter()
            .filter(|(_, e)| e.finished_at.is_none() && add_ms(e.last_input_at, expiry_ms) <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.expire(&key, now, step);
        }
    }

    fn expire(&mut self, key: &str, now: JstTime, step: &mut Step) {
        let Some(ev) = self.events.get_mut(key) else {
            return;
        };
        ev.finished_at = Some(now);
        let Some(alarm) = ev.alarm.clone() else {
            return;
        };
        let (id, label, serial) = (ev.id.clone(), ev.label, alarm.level.serial);
        self.led_end_cause.get_or_insert(Cause::Expiry);
        self.release_event_relays(
            key,
            &alarm.relays,
            Cause::Expiry,
            |r| r.on_expiry,
            now,
            step,
        );
        if self.audio.owner.as_deref() == Some(key) {
            self.audio.owner = None;
            if self.audio.pending.take().is_some() || !self.audio.countdown.is_empty() {
                self.audio.countdown.clear();
                let a = self.action(
                    now,
                    OutputId::Audio,
                    ActionKind::Stop,
                    Cause::Expiry,
                    Some(key),
                );
                step.actions.push(a);
            }
        }
        if alarm.mqtt && !alarm.ended {
            let a = self.action(
                now,
                OutputId::Mqtt,
                ActionKind::Publish {
                    state: AlertState::Ended,
                    driving: false,
                },
                Cause::Expiry,
                Some(key),
            );
            step.actions.push(a);
        }
        if let Some(ev) = self.events.get_mut(key) {
            ev.alarm = None;
        }
        step.decisions.push(Decision {
            event_id: Some(id),
            serial: Some(serial),
            label,
            outcome: "expired",
            detail: None,
        });
        self.resume_driver_voice(now, step);
    }

    fn update_led(&mut self, now: JstTime, step: &mut Step) {
        let ended_cause = self.led_end_cause.take();
        let shown = self
            .events
            .iter()
            .filter_map(|(k, e)| {
                let a = e.alarm.as_ref().filter(|a| a.led && !a.ended)?;
                Some((a.level.danger(e.label), e.label, k))
            })
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, label, k)| (label, k.clone()));
        let (pattern, owner) = match shown {
            Some((Label::Real, k)) => (LedPattern::Alert, Some(k)),
            Some((_, k)) => (LedPattern::Exercise, Some(k)),
            None if !self.faults.is_empty() => (LedPattern::Fault, None),
            None => (LedPattern::Normal, None),
        };
        if pattern != self.led || (owner.is_some() && owner != self.led_owner) {
            let cause = match (pattern, self.led) {
                (LedPattern::Alert | LedPattern::Exercise, _) if self.led_owner.is_some() => {
                    Cause::Update
                }
                (LedPattern::Alert | LedPattern::Exercise, _) => Cause::Start,
                // The alarm shown ended: say why (not always "expiry").
                (_, LedPattern::Alert | LedPattern::Exercise) => {
                    ended_cause.unwrap_or(Cause::Expiry)
                }
                _ => Cause::Fault,
            };
            let context = owner.clone().or_else(|| self.led_owner.clone());
            self.led = pattern;
            self.led_owner = owner;
            let a = self.action(
                now,
                OutputId::Led,
                ActionKind::Led { pattern },
                cause,
                context.as_deref(),
            );
            step.actions.push(a);
        }
    }

    fn next_deadline(&self) -> Option<JstTime> {
        let expiry_ms = 1000 * i64::from(self.settings.alert.event_expiry_s);
        let relays = self
            .relays
            .iter()
            .filter(|s| s.active)
            .flat_map(|s| [s.pulse_end, s.release_at.map(|(t, _)| t)]);
        let audio = [
            self.audio.pending,
            self.audio.countdown.first().map(|(t, _)| *t),
        ];
        let events = self
            .events
            .values()
            .filter(|e| e.finished_at.is_none() && e.alarm.is_some())
            .map(|e| Some(add_ms(e.last_input_at, expiry_ms)));
        relays.chain(audio).chain(events).flatten().min()
    }

    /// Forgets finished events after [`TOMBSTONE_S`].
    fn forget_old(&mut self, now: JstTime) {
        let keep_ms = TOMBSTONE_S * 1000;
        self.events
            .retain(|_, e| e.finished_at.is_none_or(|t| add_ms(t, keep_ms) > now));
    }

    /// Bounds memory under a flood of distinct event ids: forget the oldest finished (or
    /// else quiet, alarm-free) events first. Running alarms are never forgotten.
    fn make_room(&mut self) {
        while self.events.len() >= MAX_TRACKED_EVENTS {
            let victim = self
                .events
                .iter()
                .filter(|(_, e)| e.alarm.is_none() || e.finished_at.is_some())
                .min_by_key(|(_, e)| (e.finished_at.is_none(), e.last_input_at))
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => {
                    self.events.remove(&k);
                }
                None => break,
            }
        }
    }

    /// Builds an action with the context of `key`'s alarm.
    fn action(
        &self,
        now: JstTime,
        output: OutputId,
        kind: ActionKind,
        cause: Cause,
        key: Option<&str>,
    ) -> Action {
        let ev = key.and_then(|k| self.events.get(k));
        let alarm = ev.and_then(|e| e.alarm.as_ref());
        let label = ev.map_or(Label::Real, |e| e.label);
        let level = alarm.map(|a| a.level);
        let arrival = level.and_then(|l| l.arrival);
        Action {
            at: now,
            output,
            kind,
            cause,
            event_id: ev.map(|e| e.id.clone()),
            serial: level.map(|l| l.serial).or(ev.map(|e| e.last_serial)),
            label,
            training: label.is_exercise(),
            intensity_class: level.and_then(|l| l.class),
            long_period_class: level.and_then(|l| l.long_period),
            warning: level.is_some_and(|l| l.warning),
            arrival,
            remaining_s: arrival.map(|t| {
                let ms = t.0.signed_duration_since(now.0).num_milliseconds();
                #[allow(clippy::cast_precision_loss, reason = "ms spans are < 2^53")]
                let s = ms as f64 / 1000.0;
                s
            }),
            flags: level.map(|l| l.flags).unwrap_or_default(),
        }
    }
}

/// Until when a closed latched contact must stay closed (`hold_s` after it closed);
/// `None` for pulse contacts, which end by themselves.
fn hold_until(rule: &crate::settings::RelayRule, state: &RelayState) -> Option<JstTime> {
    match rule.mode {
        ContactMode::Latched => state
            .activated_at
            .map(|t| add_ms(t, 1000 * i64::from(rule.hold_s))),
        ContactMode::Pulse { .. } => None,
    }
}

fn ev_id(events: &BTreeMap<String, EventState>, key: &str) -> String {
    events
        .get(key)
        .map_or_else(|| key.to_owned(), |e| e.id.clone())
}
