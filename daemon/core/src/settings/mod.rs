//! Validated settings shared by the engine and the daemon.
//!
//! A [`Settings`] value cannot be wrong: it is built only by [`Settings::from_toml_str`] /
//! [`Settings::from_toml_table`] (or [`Settings::for_site`], every default), which check
//! every field and report *every* problem at once as [`SettingsErrors`], each with the
//! dotted path of the offending key. The TOML layout is documented key by key in
//! `docs/configuration.md` and shown in `config/eewgate.example.toml`; the reasons for the
//! format in `docs/adr/0005-settings-format.md`.
//!
//! The daemon owns further top-level sections (`[links]`, `[mqtt]`, `[web]`, …): it parses
//! the file once with [`parse_table`], passes the names of its sections to
//! [`Settings::load`] so they are not reported as unknown, checks them itself with a
//! [`Walker`], and reports both lists of problems together. `load` also returns
//! [`SettingsNote`]s — choices made for the installer (a `site.area_code` taken from the
//! coordinates) that must be shown to them.

mod defaults;
mod parse;
mod walk;

use chrono::NaiveTime;
use serde::Serialize;

use crate::intensity::Intensity;
use crate::predict::{PredictionSettings, Site};

pub use parse::{Loaded, SettingsError, SettingsErrors, SettingsNote, parse_table};
pub use walk::{Walker, did_you_mean};

/// Everything the engine needs to decide.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Settings {
    /// The building.
    pub site: Site,
    /// Area or site mode and the chain's constants.
    pub prediction: PredictionSettings,
    /// Which reports are acted on at all.
    pub alert: AlertSettings,
    /// Each output's own condition.
    pub outputs: OutputRules,
}

/// Act on, or ignore, reports with a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagPolicy {
    /// Act (the flag still travels with every action).
    Act,
    /// Record and publish, but operate nothing.
    Ignore,
}

/// Which reports are acted on at all, before any output's own rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertSettings {
    /// Act on JMA 訓練 (training) telegrams — labelled `training` on every output.
    pub training: bool,
    /// Act on JMA 試験 (test) telegrams — labelled `test`. Delivery tests (VXSE42) never act.
    pub test: bool,
    /// Allow local drills started from the web UI or command line — labelled `drill`.
    pub drill: bool,
    /// Deep events (> 150 km; JMA predicts no intensity).
    pub deep: FlagPolicy,
    /// PLUM-predicted reports.
    pub plum: FlagPolicy,
    /// Single-station reports (one observation point: false alarms likelier).
    pub single_station: FlagPolicy,
    /// Level-method reports (100 gal, no magnitude). Ignored unless enabled.
    pub level_method: FlagPolicy,
    /// Reports on an assumed hypocentre (仮定震源要素, PLUM-only).
    pub assumed_hypocenter: FlagPolicy,
    /// A report whose S wave reached the site up to this many seconds ago may still act;
    /// `None` = never act after the S arrival.
    pub past_arrival_s: Option<u32>,
    /// An event with no report for this long expires (its outputs release if their rule
    /// says so).
    pub event_expiry_s: u32,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            training: false,
            test: false,
            drill: true,
            deep: FlagPolicy::Act,
            plum: FlagPolicy::Act,
            single_station: FlagPolicy::Act,
            level_method: FlagPolicy::Ignore,
            assumed_hypocenter: FlagPolicy::Act,
            past_arrival_s: Some(10),
            event_expiry_s: 180,
        }
    }
}

/// Which non-real inputs an output follows. Whatever is included is labelled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Include {
    /// JMA 訓練.
    pub training: bool,
    /// JMA 試験 telegrams.
    pub test: bool,
    /// Local drills.
    pub drill: bool,
}

/// The condition shared by every output: what must be predicted for it to act.
/// With neither minimum set, any acted-on report qualifies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Trigger {
    /// Act when the site's class is at least this.
    pub min_class: Option<Intensity>,
    /// Act when the long-period class is at least this (0–4). With both minimums set,
    /// either suffices.
    pub min_long_period_class: Option<u8>,
    /// Act only on reports that carry a warning (警報).
    pub warning_only: bool,
    /// Non-real inputs followed.
    pub include: Include,
}

/// How a contact behaves once triggered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ContactMode {
    /// Stays closed until released (cancel, expiry or operator reset, per its rule).
    Latched,
    /// Closes for `pulse_ms` then opens by itself.
    Pulse {
        /// Pulse length in milliseconds.
        pulse_ms: u32,
    },
}

/// What releases a latched contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Release {
    /// The event was cancelled (取消).
    pub on_cancel: bool,
    /// The event expired (went quiet for `event_expiry_s`).
    pub on_expiry: bool,
    /// The operator pressed reset.
    pub on_reset: bool,
}

/// One relay contact's rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RelayRule {
    /// Contact number (1-based), as wired and as named in outputs (`relay:1`).
    pub id: u8,
    /// What it is connected to, for people ("elevators", "gas valve").
    pub name: String,
    /// A disabled contact never operates.
    pub enabled: bool,
    /// When it operates.
    pub trigger: Trigger,
    /// Latched or pulse.
    pub mode: ContactMode,
    /// A latched contact stays closed at least this long, whatever releases it (s).
    pub hold_s: u32,
    /// PA pre-start: when this contact closes, announcements wait this long (ms) so the
    /// amplifier is up before the first word. 0 = not a pre-start contact.
    pub prestart_ms: u32,
    /// What releases it.
    pub release: Release,
}

/// How announcements are worded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioStyle {
    /// 「震度５弱。あと２０秒」: class and seconds.
    Numbers,
    /// 「地震です。落ち着いて身を守ってください」: a fixed phrase.
    Phrase,
}

/// Hours during which only strong shaking is announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct QuietHours {
    /// Start (JST wall clock).
    pub start: NaiveTime,
    /// End (JST wall clock); may be before `start` (over midnight).
    pub end: NaiveTime,
    /// During quiet hours, announce only from this class up.
    pub min_class: Intensity,
}

/// The audio output's rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AudioRule {
    /// Audio off entirely when false.
    pub enabled: bool,
    /// When it speaks.
    pub trigger: Trigger,
    /// Numbers or phrase.
    pub style: AudioStyle,
    /// Count the last seconds down from this many (0 = no countdown).
    pub countdown_from_s: u8,
    /// Quiet hours, if any.
    pub quiet_hours: Option<QuietHours>,
}

/// The status LED's rule (the LED always shows faults and real alerts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct LedRule {
    /// LED off entirely when false (it still shows faults).
    pub enabled: bool,
    /// When it shows an alert.
    pub trigger: Trigger,
}

/// The MQTT alert output's rule (republishing of every report is separate and always on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct MqttRule {
    /// Alert publishing off when false.
    pub enabled: bool,
    /// When it publishes an alert.
    pub trigger: Trigger,
}

/// Each output's own condition.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutputRules {
    /// Relay contacts, by id (default four).
    pub relays: Vec<RelayRule>,
    /// Audio announcements.
    pub audio: AudioRule,
    /// Status LED.
    pub led: LedRule,
    /// MQTT alerts.
    pub mqtt: MqttRule,
}
