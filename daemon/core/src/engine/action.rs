//! What the engine tells the outputs to do: [`Action`]s, and the record of why reports
//! were or were not acted on: [`Decision`]s.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::intensity::Intensity;
use crate::report::JstTime;

use super::voice;

/// One output of the appliance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OutputId {
    /// A relay contact, by its 1-based number.
    Relay(u8),
    /// The audio line out into the PA.
    Audio,
    /// The status LED.
    Led,
    /// Alerts published to the building management system over MQTT.
    Mqtt,
}

impl fmt::Display for OutputId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputId::Relay(n) => write!(f, "relay:{n}"),
            OutputId::Audio => f.write_str("audio"),
            OutputId::Led => f.write_str("led"),
            OutputId::Mqtt => f.write_str("mqtt"),
        }
    }
}

impl Serialize for OutputId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Whether an alert is real or one of the three kinds of exercise. Every action carries
/// it; only `real` alerts are real alarms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// A real JMA report (通常).
    Real,
    /// A JMA training telegram (訓練).
    Training,
    /// A JMA test telegram (試験) or delivery test.
    Test,
    /// A local drill started on this appliance.
    Drill,
}

impl Label {
    /// True for everything that is not a real alert.
    pub fn is_exercise(self) -> bool {
        self != Label::Real
    }
}

/// Special circumstances an output should be able to say ("deep earthquake",
/// "single station").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct AlertFlags {
    /// Some forecast is by PLUM.
    pub plum: bool,
    /// Deep event (> 150 km).
    pub deep: bool,
    /// Level method (100 gal).
    pub level_method: bool,
    /// Based on one station.
    pub single_station: bool,
    /// Assumed hypocentre (仮定震源要素).
    pub assumed_hypocenter: bool,
}

/// The LED's patterns, in increasing priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LedPattern {
    /// A lamp test (a self-test): every colour in turn for a few seconds, then back to
    /// the standing pattern. Only ever an action; the engine never stands at it.
    LampTest,
    /// All well, nothing happening (steady green).
    Normal,
    /// A fault: a link down or the clock not synchronised (amber blink).
    Fault,
    /// An exercise is running: training, test or drill (blue blink).
    Exercise,
    /// A real alert is running (red fast blink).
    Alert,
}

/// The alert state an MQTT alert message announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// An alarm started.
    Started,
    /// A running alarm was updated (stronger, sooner, or a warning).
    Updated,
    /// The event was cancelled.
    Cancelled,
    /// The event went quiet and expired.
    Ended,
    /// The operator reset the alarm.
    Reset,
}

/// What one output does.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ActionKind {
    /// Close a relay contact; `pulse_ms` set when it will open by itself.
    On {
        /// Pulse length, for pulse contacts.
        #[serde(skip_serializing_if = "Option::is_none")]
        pulse_ms: Option<u32>,
    },
    /// Open a relay contact.
    Off,
    /// Speak an announcement (replaces whatever is playing): play the clips of
    /// [`voice::CLIPS`] in order. Build it with [`ActionKind::announce`], which derives
    /// the texts from the clips.
    Announce {
        /// Japanese text: the `ja` of `clips_ja`, concatenated ([`voice::text_ja`]).
        text_ja: String,
        /// English text: the `en` of `clips_en`, joined by spaces ([`voice::text_en`]).
        text_en: String,
        /// The Japanese clips to play, by id.
        clips_ja: Vec<&'static str>,
        /// The English clips to play, by id.
        clips_en: Vec<&'static str>,
    },
    /// Speak one countdown number. Build it with [`ActionKind::countdown`].
    Countdown {
        /// Seconds left.
        seconds: u8,
        /// Japanese text (full-width digits), from `clips_ja`.
        text_ja: String,
        /// English text (words), from `clips_en`.
        text_en: String,
        /// The Japanese clips to play, by id.
        clips_ja: Vec<&'static str>,
        /// The English clips to play, by id.
        clips_en: Vec<&'static str>,
    },
    /// Stop speaking.
    Stop,
    /// Show an LED pattern.
    Led {
        /// The pattern.
        pattern: LedPattern,
    },
    /// Publish an alert message.
    Publish {
        /// The alert state announced.
        state: AlertState,
        /// True when this event is the one driving the outputs.
        driving: bool,
    },
}

impl ActionKind {
    /// An announcement of these clips, its texts built from them.
    pub fn announce(clips_ja: Vec<&'static str>, clips_en: Vec<&'static str>) -> Self {
        ActionKind::Announce {
            text_ja: voice::text_ja(&clips_ja),
            text_en: voice::text_en(&clips_en),
            clips_ja,
            clips_en,
        }
    }

    /// One countdown number, said with the number clips ([`voice::number_clips`]).
    pub fn countdown(seconds: u8) -> Self {
        // Every u8 is within the 0–999 the number clips cover, so this is never empty.
        let clips = voice::number_clips(u32::from(seconds)).unwrap_or_default();
        ActionKind::Countdown {
            seconds,
            text_ja: voice::text_ja(&clips),
            text_en: voice::text_en(&clips),
            clips_ja: clips.clone(),
            clips_en: clips,
        }
    }

    /// The `action` string of the JSON form.
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::On { .. } => "on",
            ActionKind::Off => "off",
            ActionKind::Announce { .. } => "announce",
            ActionKind::Countdown { .. } => "countdown",
            ActionKind::Stop => "stop",
            ActionKind::Led { .. } => "led",
            ActionKind::Publish { .. } => "publish",
        }
    }
}

/// Why an action happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// An alarm started.
    Start,
    /// A running alarm was updated.
    Update,
    /// A pre-start wait ended; the announcement begins.
    Prestart,
    /// Countdown to the S wave.
    Countdown,
    /// The event was cancelled.
    Cancel,
    /// The event expired.
    Expiry,
    /// A pulse ended.
    PulseEnd,
    /// A release waited for the contact's hold time.
    HoldEnd,
    /// Operator reset.
    Reset,
    /// Operator silence.
    Silence,
    /// A fault appeared or cleared.
    Fault,
    /// An operator's (or a scheduled probe's) self-test of the output.
    SelfTest,
}

/// One thing one output must do, at a time, for an event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Action {
    /// When the engine decided it (the `now` of the step).
    pub at: JstTime,
    /// Which output.
    pub output: OutputId,
    /// What to do.
    #[serde(flatten)]
    pub kind: ActionKind,
    /// Why.
    pub cause: Cause,
    /// The event it is for (`None` for fault changes).
    pub event_id: Option<String>,
    /// The report serial that caused it.
    pub serial: Option<u32>,
    /// Real, training, test or drill.
    pub label: Label,
    /// `label != real`: an exercise, never a real alarm.
    pub training: bool,
    /// The site's class the alarm stands at.
    pub intensity_class: Option<Intensity>,
    /// The long-period class the alarm stands at.
    pub long_period_class: Option<u8>,
    /// A warning (警報) is part of the alarm.
    pub warning: bool,
    /// Predicted S arrival at the site, when known.
    pub arrival: Option<JstTime>,
    /// Seconds from `at` to the S arrival, when known.
    pub remaining_s: Option<f64>,
    /// Special circumstances to say.
    pub flags: AlertFlags,
}

/// What the engine made of one input, for history and logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The event concerned, if any.
    pub event_id: Option<String>,
    /// The report serial, if any.
    pub serial: Option<u32>,
    /// Real, training, test or drill.
    pub label: Label,
    /// Stable code: `accepted`, `duplicate`, `older_serial`, `event_cancelled`,
    /// `not_acted`, `kept`, `updated`, `started`, `cancelled`, `cancel_without_alarm`,
    /// `expired`, `reset`, `silenced`, `drill_started`, `drill_disabled`,
    /// `delivery_test`.
    pub outcome: &'static str,
    /// Stable detail code (e.g. why a report was not acted on).
    pub detail: Option<&'static str>,
}
