//! TOML → [`Settings`](super::Settings), every problem at once.
//!
//! The text is parsed into a [`toml::Table`] and walked by hand against the layout in
//! `docs/configuration.md`: every key is converted and range-checked on its own, unknown
//! keys are errors (with a suggestion when a known key is close), and the cross-field rules
//! run on whatever could be read. Nothing stops at the first problem, so an installer sees
//! the whole list in one go. Why it is done this way: `docs/adr/0005-settings-format.md`.

use std::fmt;

use chrono::NaiveTime;
use toml::{Table, Value};

use super::walk::{Walker, describe, join};
use super::{
    AlertSettings, AudioRule, AudioStyle, ContactMode, FlagPolicy, Include, LedRule, MqttRule,
    OutputRules, QuietHours, RelayRule, Release, Settings, Trigger,
};
use crate::codes::FORECAST_AREA;
use crate::intensity::Intensity;
use crate::predict::site::{
    ARV400_MAX, AVS30_RANGE, AreaSuggestion, LAT_RANGE, LON_RANGE, SiteError, suggest_area,
};
use crate::predict::{Amplification, PredictionMode, PredictionSettings, Site};

/// One problem in the settings, at a dotted key path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SettingsError {
    /// Dotted path of the key (`outputs.relay[2].min_class`; relay blocks count from 0 in
    /// file order). Empty for a TOML syntax error, whose message gives line and column.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found, in the order the file is checked: `[site]`, `[prediction]`,
/// `[alert]`, then `[outputs]` (audio, LED, MQTT, each relay block, then the rules that
/// span outputs), then unknown top-level sections. Within a table, problems with its
/// known keys come before its unknown keys. Never empty when returned as an error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SettingsErrors(pub Vec<SettingsError>);

impl fmt::Display for SettingsErrors {
    /// `3 problems in the settings:` followed by one indented line per problem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} problem{} in the settings:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl SettingsErrors {
    /// The paths of every problem, in order (handy in tests and logs).
    pub fn paths(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.path.as_str()).collect()
    }
}

/// Parses TOML text into a table. A syntax error becomes one [`SettingsError`] with an
/// empty path and `line L, column C` in its message (both counted from 1; columns in
/// characters).
pub fn parse_table(text: &str) -> Result<Table, SettingsErrors> {
    text.parse::<Table>().map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let (line, column) = line_column(text, span.start);
                format!(" at line {line}, column {column}")
            })
            .unwrap_or_default();
        let message = e.message().trim_end().replace('\n', "; ");
        SettingsErrors(vec![SettingsError {
            path: String::new(),
            message: format!("TOML syntax error{at}: {message}"),
        }])
    })
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut end = at.min(text.len());
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    let before = text.get(..end).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

// ---------------------------------------------------------------------------------------
// The layout: every key each table accepts (also the "did you mean" candidates).

/// The top-level sections eew-core owns.
const SECTIONS: &[&str] = &["site", "prediction", "alert", "outputs"];
const SITE_KEYS: &[&str] = &["lat", "lon", "arv400", "avs30", "area_code"];
const PREDICTION_KEYS: &[&str] = &["mode", "mw_offset", "rock_factor"];
const ALERT_KEYS: &[&str] = &[
    "training",
    "test",
    "drill",
    "deep",
    "plum",
    "single_station",
    "level_method",
    "assumed_hypocenter",
    "past_arrival_s",
    "event_expiry_s",
];
const OUTPUTS_KEYS: &[&str] = &["audio", "led", "mqtt", "relay"];
const INCLUDE_KEYS: &[&str] = &["training", "test", "drill"];
const RELAY_KEYS: &[&str] = &[
    "id",
    "name",
    "enabled",
    "min_class",
    "min_long_period_class",
    "warning_only",
    "include",
    "mode",
    "pulse_ms",
    "hold_s",
    "prestart_ms",
    "release_on",
];
const AUDIO_KEYS: &[&str] = &[
    "enabled",
    "min_class",
    "min_long_period_class",
    "warning_only",
    "include",
    "style",
    "countdown_from_s",
    "quiet_hours",
];
const QUIET_KEYS: &[&str] = &["start", "end", "min_class"];
const LED_KEYS: &[&str] = &[
    "enabled",
    "min_class",
    "min_long_period_class",
    "warning_only",
    "include",
];
const MQTT_KEYS: &[&str] = LED_KEYS;

/// Limits, shared with the documentation.
const MW_OFFSET: (f64, f64) = (-1.0, 1.0);
const ROCK_FACTOR_MAX: f64 = 3.0;
const PAST_ARRIVAL_MAX_S: u32 = 300;
const EVENT_EXPIRY_S: (u32, u32) = (10, 3600);
const RELAY_ID_MAX: u8 = 16;
const PULSE_MS: (u32, u32) = (100, 60_000);
const HOLD_MAX_S: u32 = 3600;
const PRESTART_MAX_MS: u32 = 10_000;
const COUNTDOWN_MAX_S: u32 = 60;
const NAME_MAX_CHARS: usize = 64;

const POLICIES: &[(&str, FlagPolicy)] = &[("act", FlagPolicy::Act), ("ignore", FlagPolicy::Ignore)];

const CLASS_HELP: &str = "allowed \"0\", \"1\", \"2\", \"3\", \"4\", \"5-\", \"5+\", \"6-\", \"6+\", \"7\" \
                          (or \"5弱\", \"5強\", \"6弱\", \"6強\")";

/// Something the reader decided on the installer's behalf, to be shown to them (logged
/// at startup, listed by `check-config`). Not an error: the settings are valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsNote {
    /// Dotted path of the key concerned (`site.area_code`).
    pub path: String,
    /// What was decided and what to check.
    pub message: String,
}

impl fmt::Display for SettingsNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Valid settings and the notes that came with them.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// The settings.
    pub settings: Settings,
    /// Decisions taken for the installer (today: a suggested `site.area_code`).
    pub notes: Vec<SettingsNote>,
}

impl Settings {
    /// The top-level sections this crate reads. Any other top-level key is an error unless
    /// the caller of [`from_toml_table`](Self::from_toml_table) owns it.
    pub const SECTIONS: &'static [&'static str] = SECTIONS;

    /// Parses and validates a complete settings file that has only eew-core's sections.
    /// Reports every problem at once. Notes are dropped; see [`load`](Self::load).
    pub fn from_toml_str(text: &str) -> Result<Settings, SettingsErrors> {
        let table = parse_table(text)?;
        Self::from_toml_table(&table, &[])
    }

    /// Validates eew-core's sections of an already parsed settings file; see
    /// [`load`](Self::load), which also returns the notes.
    pub fn from_toml_table(
        table: &Table,
        extra_known_sections: &[&str],
    ) -> Result<Settings, SettingsErrors> {
        Self::load(table, extra_known_sections).map(|l| l.settings)
    }

    /// Validates eew-core's sections of an already parsed settings file (see
    /// [`parse_table`]) and returns the settings with any [`SettingsNote`]s.
    ///
    /// `extra_known_sections` names the top-level sections someone else owns (the daemon's
    /// `links`, `mqtt`, `web`, …): they are skipped here, and still count as candidates
    /// for "did you mean" when another top-level key is unknown. Every other unknown
    /// top-level key is an error. The caller checks its own sections (for example with a
    /// [`Walker`]) and reports both lists together.
    pub fn load(table: &Table, extra_known_sections: &[&str]) -> Result<Loaded, SettingsErrors> {
        let mut w = Walker::new();
        let mut notes = Vec::new();

        let site = site(&mut w, table, &mut notes);
        let prediction = prediction(&mut w, table);
        let alert = alert(&mut w, table);
        let outputs = outputs(&mut w, table);

        let mut known: Vec<&str> = SECTIONS.to_vec();
        known.extend_from_slice(extra_known_sections);
        w.unknown_keys(table, "", &known);

        match site {
            Some(site) if w.is_clean() => Ok(Loaded {
                settings: Settings {
                    site,
                    prediction,
                    alert,
                    outputs,
                },
                notes,
            }),
            _ => {
                let mut errors = w.into_errors();
                if errors.is_empty() {
                    // Not reachable: a missing site always records why.
                    errors.push(SettingsError {
                        path: "site".to_owned(),
                        message: "invalid".to_owned(),
                    });
                }
                Err(SettingsErrors(errors))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// [site]

fn site(w: &mut Walker, root: &Table, notes: &mut Vec<SettingsNote>) -> Option<Site> {
    let t = match root.get("site") {
        None => {
            w.error(
                "site",
                "missing: the [site] section is required — the building's lat, lon, \
                 ground amplification (arv400 or avs30) and JMA forecast area (area_code)",
            );
            None
        }
        Some(v) => w.table_at("site", v),
    }?;
    let p = "site";

    let lat = w
        .require(
            t,
            p,
            "lat",
            "the building's latitude in degrees (WGS84), e.g. 35.681",
        )
        .and_then(|(path, v)| number_in(w, &path, v, LAT_RANGE, "degrees (Japan)"));
    let lon = w
        .require(
            t,
            p,
            "lon",
            "the building's longitude in degrees (WGS84), e.g. 139.767",
        )
        .and_then(|(path, v)| number_in(w, &path, v, LON_RANGE, "degrees (Japan)"));

    let arv400 = w.get(t, p, "arv400");
    let avs30 = w.get(t, p, "avs30");
    let amplification = match (arv400, avs30) {
        (Some(_), Some((path, _))) => {
            w.error(
                path,
                "give either arv400 or avs30, not both (arv400 is used directly; avs30 is \
                 converted to an amplification)",
            );
            None
        }
        (None, None) => {
            w.error(
                join(p, "arv400"),
                "missing: the site's ground amplification — arv400 (J-SHIS 表層地盤増幅率, \
                 e.g. 1.6) or avs30 (average shear-wave velocity of the top 30 m, m/s)",
            );
            None
        }
        (Some((path, v)), None) => w.number_at(&path, v).and_then(|x| {
            if x > 0.0 && x <= ARV400_MAX {
                Some(Amplification::Arv400(x))
            } else {
                w.error(
                    path,
                    format!("{x} is out of range; allowed above 0 and at most {ARV400_MAX}"),
                );
                None
            }
        }),
        (None, Some((path, v))) => {
            number_in(w, &path, v, AVS30_RANGE, "m/s").map(Amplification::Avs30)
        }
    };

    let nearest = lat.zip(lon).and_then(|(la, lo)| suggest_area(la, lo));
    let area_code = match w.get(t, p, "area_code") {
        None => Some(None),
        Some((path, v)) => area_code(w, &path, v, nearest.as_ref()).map(Some),
    };

    w.unknown_keys(t, p, SITE_KEYS);

    let (lat, lon, amplification, area_code) = (lat?, lon?, amplification?, area_code?);
    match Site::new(lat, lon, amplification, area_code.as_deref()) {
        Ok(site) => {
            if area_code.is_none() {
                let how_far = nearest
                    .as_ref()
                    .filter(|n| n.code == site.area_code)
                    .map(|n| format!(" ({}, centroid {:.1} km away)", n.name, n.distance_km))
                    .unwrap_or_default();
                notes.push(SettingsNote {
                    path: join(p, "area_code"),
                    message: format!(
                        "not set; using {:?}{how_far}, the forecast area whose centroid is \
                         nearest to the site. Areas are polygons: check it on JMA's map and \
                         set area_code explicitly",
                        site.area_code
                    ),
                });
            }
            Some(site)
        }
        Err(e) => {
            // The checks above mirror Site::new, so this is reached only if they drift.
            let key = match e {
                SiteError::Latitude(_) => "lat",
                SiteError::Longitude(_) => "lon",
                SiteError::Arv400(_) => "arv400",
                SiteError::Avs30(_) => "avs30",
                SiteError::UnknownArea(_) => "area_code",
            };
            w.error(join(p, key), e.to_string());
            None
        }
    }
}

/// A forecast-area code (string or integer) that is in JMA's table.
fn area_code(
    w: &mut Walker,
    path: &str,
    v: &Value,
    nearest: Option<&AreaSuggestion>,
) -> Option<String> {
    let code = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Integer(i) => i.to_string(),
        _ => {
            w.error(
                path,
                format!(
                    "expected a 3-digit JMA forecast area code such as \"350\", found {}",
                    describe(v)
                ),
            );
            return None;
        }
    };
    if FORECAST_AREA.name(&code).is_some() {
        return Some(code);
    }
    // Someone may have written the area's name instead of its code.
    let full_width: String = code
        .chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(0xFF10 + d).unwrap_or(c),
            None => c,
        })
        .collect();
    let by_name = FORECAST_AREA
        .code_of(&code)
        .or_else(|| FORECAST_AREA.code_of(&full_width));
    let hint = match (by_name, nearest) {
        (Some(c), _) => format!("; {code:?} is the name of area {c:?}, write area_code = \"{c}\""),
        (None, Some(n)) => format!(
            "; it must be one of JMA's 3-digit forecast area codes (地震情報／細分区域) — the \
             nearest to the site is \"{}\" {} (centroid {:.1} km away); or leave area_code \
             out to use that one",
            n.code, n.name, n.distance_km
        ),
        (None, None) => {
            "; it must be one of JMA's 3-digit forecast area codes (地震情報／細分区域, \
             e.g. \"350\" 東京都２３区) — see docs/configuration.md"
                .to_owned()
        }
    };
    w.error(
        path,
        format!("{code:?} is not a JMA forecast area code{hint}"),
    );
    None
}

/// A finite number within `lo..=hi`.
fn number_in(
    w: &mut Walker,
    path: &str,
    v: &Value,
    (lo, hi): (f64, f64),
    unit: &str,
) -> Option<f64> {
    let x = w.number_at(path, v)?;
    if (lo..=hi).contains(&x) {
        Some(x)
    } else {
        w.error(
            path,
            format!("{x} is out of range; allowed {lo}–{hi} {unit}"),
        );
        None
    }
}

// ---------------------------------------------------------------------------------------
// [prediction]

fn prediction(w: &mut Walker, root: &Table) -> PredictionSettings {
    let d = PredictionSettings::default();
    let Some(t) = w.section(root, "", "prediction") else {
        return d;
    };
    let p = "prediction";
    let mode = w
        .get(t, p, "mode")
        .and_then(|(path, v)| {
            w.choice_at(
                &path,
                v,
                &[
                    ("area", PredictionMode::Area),
                    ("site", PredictionMode::Site),
                ],
            )
        })
        .unwrap_or(d.mode);
    let mw_offset = w
        .get(t, p, "mw_offset")
        .and_then(|(path, v)| number_in(w, &path, v, MW_OFFSET, "(Mw = Mj − mw_offset)"))
        .unwrap_or(d.mw_offset);
    let rock_factor = w
        .get(t, p, "rock_factor")
        .and_then(|(path, v)| {
            let x = w.number_at(&path, v)?;
            if x > 0.0 && x <= ROCK_FACTOR_MAX {
                Some(x)
            } else {
                w.error(
                    path,
                    format!(
                        "{x} is out of range; allowed above 0 and at most {ROCK_FACTOR_MAX} \
                         (1.41 J-SHIS-consistent, 1.31 viewer-compatible)"
                    ),
                );
                None
            }
        })
        .unwrap_or(d.rock_factor);
    w.unknown_keys(t, p, PREDICTION_KEYS);
    PredictionSettings {
        mode,
        mw_offset,
        rock_factor,
    }
}

// ---------------------------------------------------------------------------------------
// [alert]

fn alert(w: &mut Walker, root: &Table) -> AlertSettings {
    let d = AlertSettings::default();
    let Some(t) = w.section(root, "", "alert") else {
        return d;
    };
    let p = "alert";
    let flag = |w: &mut Walker, key: &str, default: bool| {
        w.get(t, p, key)
            .and_then(|(path, v)| w.bool_at(&path, v))
            .unwrap_or(default)
    };
    let training = flag(w, "training", d.training);
    let test = flag(w, "test", d.test);
    let drill = flag(w, "drill", d.drill);
    let policy = |w: &mut Walker, key: &str, default: FlagPolicy| {
        w.get(t, p, key)
            .and_then(|(path, v)| w.choice_at(&path, v, POLICIES))
            .unwrap_or(default)
    };
    let deep = policy(w, "deep", d.deep);
    let plum = policy(w, "plum", d.plum);
    let single_station = policy(w, "single_station", d.single_station);
    let level_method = policy(w, "level_method", d.level_method);
    let assumed_hypocenter = policy(w, "assumed_hypocenter", d.assumed_hypocenter);
    let past_arrival_s = match w.get(t, p, "past_arrival_s") {
        None => d.past_arrival_s,
        Some((_, Value::Boolean(false))) => None,
        Some((path, Value::Boolean(true))) => {
            w.error(
                path,
                format!(
                    "true is not allowed; give a number of seconds (0–{PAST_ARRIVAL_MAX_S}), \
                     or false to never act once the S wave has arrived"
                ),
            );
            d.past_arrival_s
        }
        Some((path, v)) => w
            .u32_in(&path, v, 0, PAST_ARRIVAL_MAX_S)
            .map_or(d.past_arrival_s, Some),
    };
    let event_expiry_s = w
        .get(t, p, "event_expiry_s")
        .and_then(|(path, v)| w.u32_in(&path, v, EVENT_EXPIRY_S.0, EVENT_EXPIRY_S.1))
        .unwrap_or(d.event_expiry_s);
    w.unknown_keys(t, p, ALERT_KEYS);
    AlertSettings {
        training,
        test,
        drill,
        deep,
        plum,
        single_station,
        level_method,
        assumed_hypocenter,
        past_arrival_s,
        event_expiry_s,
    }
}

// ---------------------------------------------------------------------------------------
// Triggers: min_class, min_long_period_class, warning_only, include.

/// A `min_class` value as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClassSetting {
    /// `"any"`: no class condition.
    Any,
    /// A class.
    At(Intensity),
}

/// Parses an intensity class: `"0"`–`"7"`, `"5-"`…, `"5弱"`…, or the integers 0–4 and 7.
fn class_at(w: &mut Walker, path: &str, v: &Value, allow_any: bool) -> Option<ClassSetting> {
    let any_help = if allow_any {
        ", or \"any\" for no class condition"
    } else {
        ""
    };
    match v {
        Value::String(s) => {
            let s = s.trim();
            if allow_any && s.eq_ignore_ascii_case("any") {
                return Some(ClassSetting::Any);
            }
            if let Some(c) = Intensity::from_xml(s).or_else(|| Intensity::from_label_ja(s)) {
                return Some(ClassSetting::At(c));
            }
            let hint = match s {
                "5" | "6" => {
                    format!("; {s} alone is ambiguous, write \"{s}-\" (弱) or \"{s}+\" (強)")
                }
                _ => String::new(),
            };
            w.error(
                path,
                format!("{s:?} is not a JMA intensity class{hint}; {CLASS_HELP}{any_help}"),
            );
            None
        }
        Value::Integer(i @ (0..=4 | 7)) => {
            Intensity::from_xml(&i.to_string()).map(ClassSetting::At)
        }
        Value::Integer(i @ (5 | 6)) => {
            w.error(
                path,
                format!("{i} is ambiguous: write \"{i}-\" (弱) or \"{i}+\" (強)"),
            );
            None
        }
        _ => {
            w.error(
                path,
                format!(
                    "expected a JMA intensity class, found {}; {CLASS_HELP}{any_help}",
                    describe(v)
                ),
            );
            None
        }
    }
}

/// How `min_class` behaves in one output's table.
#[derive(Clone, Copy)]
enum ClassRule {
    /// Absent means the output's default.
    Default,
    /// Absent is an error unless `min_long_period_class` is given (relays).
    RequiredUnlessLongPeriod,
}

/// Reads the trigger keys of an output table; absent keys take `d`'s values.
fn trigger(w: &mut Walker, t: &Table, p: &str, d: Trigger, rule: ClassRule) -> Trigger {
    let class = w
        .get(t, p, "min_class")
        .map(|(path, v)| (path.clone(), class_at(w, &path, v, true)));
    let long_period = w
        .get(t, p, "min_long_period_class")
        .map(|(path, v)| w.int_in(&path, v, 0, 4).and_then(|i| u8::try_from(i).ok()));

    let min_class = match (&class, rule) {
        (Some((_, Some(ClassSetting::At(c)))), _) => Some(*c),
        (Some((path, Some(ClassSetting::Any))), _) => {
            if long_period.is_some() {
                let alone = match (rule, d.min_class) {
                    (ClassRule::Default, Some(c)) => format!(
                        "without min_class this output acts from class {:?} or the \
                         long-period class",
                        c.as_str()
                    ),
                    _ => "remove min_class to act on the long-period class alone".to_owned(),
                };
                w.error(
                    path.clone(),
                    format!(
                        "\"any\" (act on every report) cannot be combined with \
                         min_long_period_class; {alone}, or give a class to act on either"
                    ),
                );
            }
            None
        }
        (Some((_, None)), _) => d.min_class,
        (None, ClassRule::Default) => d.min_class,
        (None, ClassRule::RequiredUnlessLongPeriod) => {
            if long_period.is_none() {
                w.error(
                    join(p, "min_class"),
                    format!(
                        "missing: the class from which this output acts — {CLASS_HELP}, or \
                         \"any\" to act on every report (or give min_long_period_class)"
                    ),
                );
            }
            None
        }
    };
    let min_long_period_class = match long_period {
        None => d.min_long_period_class,
        Some(lp) => lp.or(d.min_long_period_class),
    };
    let warning_only = w
        .get(t, p, "warning_only")
        .and_then(|(path, v)| w.bool_at(&path, v))
        .unwrap_or(d.warning_only);
    let include = match w.get(t, p, "include") {
        None => d.include,
        Some((path, v)) => include(w, &path, v, d.include),
    };
    Trigger {
        min_class,
        min_long_period_class,
        warning_only,
        include,
    }
}

fn include(w: &mut Walker, path: &str, v: &Value, d: Include) -> Include {
    let Some(t) = w.table_at(path, v) else {
        return d;
    };
    let flag = |w: &mut Walker, key: &str, default: bool| {
        w.get(t, path, key)
            .and_then(|(p, v)| w.bool_at(&p, v))
            .unwrap_or(default)
    };
    let include = Include {
        training: flag(w, "training", d.training),
        test: flag(w, "test", d.test),
        drill: flag(w, "drill", d.drill),
    };
    w.unknown_keys(t, path, INCLUDE_KEYS);
    include
}

/// Unknown keys of an output table, with a pointer to `include.x` for `include_x`.
fn unknown_output_keys(w: &mut Walker, t: &Table, p: &str, known: &[&str]) {
    // Only the keys matter to `unknown_keys`; the values are not copied.
    let mut rest = Table::new();
    for key in t.keys() {
        match key.strip_prefix("include_") {
            Some(what) if INCLUDE_KEYS.contains(&what) && !known.contains(&key.as_str()) => {
                w.error(
                    join(p, key),
                    format!(
                        "unknown key {key:?}; write include.{what} = … (or \
                         include = {{ {what} = … }})"
                    ),
                );
            }
            _ => {
                rest.insert(key.clone(), Value::Boolean(false));
            }
        }
    }
    w.unknown_keys(&rest, p, known);
}

// ---------------------------------------------------------------------------------------
// [outputs]

fn outputs(w: &mut Walker, root: &Table) -> OutputRules {
    let Some(t) = w.section(root, "", "outputs") else {
        return OutputRules::default();
    };
    let p = "outputs";
    let audio = w
        .section(t, p, "audio")
        .map_or_else(AudioRule::default, |a| audio(w, a, "outputs.audio"));
    let led = w.section(t, p, "led").map_or_else(LedRule::default, |l| {
        let d = LedRule::default();
        let path = "outputs.led";
        let r = LedRule {
            enabled: enabled(w, l, path, d.enabled),
            trigger: trigger(w, l, path, d.trigger, ClassRule::Default),
        };
        unknown_output_keys(w, l, path, LED_KEYS);
        r
    });
    let mqtt = w.section(t, p, "mqtt").map_or_else(MqttRule::default, |m| {
        let d = MqttRule::default();
        let path = "outputs.mqtt";
        let r = MqttRule {
            enabled: enabled(w, m, path, d.enabled),
            trigger: trigger(w, m, path, d.trigger, ClassRule::Default),
        };
        unknown_output_keys(w, m, path, MQTT_KEYS);
        r
    });
    let indexed = |rules: Vec<RelayRule>| rules.into_iter().enumerate().collect::<Vec<_>>();
    let relays = match w.get(t, p, "relay") {
        None => indexed(RelayRule::defaults_for_audio(audio.trigger)),
        Some((path, Value::Table(_))) => {
            w.error(
                path,
                "expected an array of tables: write [[outputs.relay]] (double brackets) \
                 before each contact",
            );
            indexed(RelayRule::defaults_for_audio(audio.trigger))
        }
        Some((path, Value::Array(items))) => relays(w, &path, items),
        Some((path, v)) => {
            w.error(
                path,
                format!(
                    "expected an array of tables ([[outputs.relay]] blocks), found {}",
                    describe(v)
                ),
            );
            indexed(RelayRule::defaults_for_audio(audio.trigger))
        }
    };
    w.unknown_keys(t, p, OUTPUTS_KEYS);

    prestart_matches_audio(w, &relays, &audio);
    let relays = relays.into_iter().map(|(_, r)| r).collect();

    OutputRules {
        relays,
        audio,
        led,
        mqtt,
    }
}

fn enabled(w: &mut Walker, t: &Table, p: &str, default: bool) -> bool {
    w.get(t, p, "enabled")
        .and_then(|(path, v)| w.bool_at(&path, v))
        .unwrap_or(default)
}

fn audio(w: &mut Walker, t: &Table, p: &str) -> AudioRule {
    let d = AudioRule::default();
    let enabled = enabled(w, t, p, d.enabled);
    let trigger = trigger(w, t, p, d.trigger, ClassRule::Default);
    let style = w
        .get(t, p, "style")
        .and_then(|(path, v)| {
            w.choice_at(
                &path,
                v,
                &[
                    ("numbers", AudioStyle::Numbers),
                    ("phrase", AudioStyle::Phrase),
                ],
            )
        })
        .unwrap_or(d.style);
    let countdown_from_s = w
        .get(t, p, "countdown_from_s")
        .and_then(|(path, v)| w.int_in(&path, v, 0, i64::from(COUNTDOWN_MAX_S)))
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(d.countdown_from_s);
    let quiet_hours = match w.get(t, p, "quiet_hours") {
        None => None,
        Some((path, v)) => quiet_hours(w, &path, v, trigger.min_class),
    };
    unknown_output_keys(w, t, p, AUDIO_KEYS);
    AudioRule {
        enabled,
        trigger,
        style,
        countdown_from_s,
        quiet_hours,
    }
}

fn quiet_hours(
    w: &mut Walker,
    p: &str,
    v: &Value,
    audio_min: Option<Intensity>,
) -> Option<QuietHours> {
    let t = w.table_at(p, v)?;
    let start = w
        .require(
            t,
            p,
            "start",
            "when quiet hours begin, e.g. \"22:00\" (JST)",
        )
        .and_then(|(path, v)| time_at(w, &path, v));
    let end = w
        .require(t, p, "end", "when quiet hours end, e.g. \"07:00\" (JST)")
        .and_then(|(path, v)| time_at(w, &path, v));
    let min_class = match w.get(t, p, "min_class") {
        None => Some(Intensity::FiveLower),
        Some((path, v)) => match class_at(w, &path, v, false) {
            Some(ClassSetting::At(c)) => {
                if audio_min.is_some_and(|a| c <= a) {
                    let a = audio_min.map_or("", Intensity::as_str);
                    w.error(
                        path,
                        format!(
                            "quiet hours would change nothing: {:?} is not above the audio \
                             min_class {a:?}; give a stronger class",
                            c.as_str()
                        ),
                    );
                }
                Some(c)
            }
            _ => None,
        },
    };
    if let (Some(s), Some(e)) = (start, end)
        && s == e
    {
        w.error(
            join(p, "end"),
            format!(
                "quiet hours start and end at the same time ({}); give different times \
                     (an end before the start spans midnight), or remove quiet_hours",
                s.format("%H:%M")
            ),
        );
    }
    w.unknown_keys(t, p, QUIET_KEYS);
    Some(QuietHours {
        start: start?,
        end: end?,
        min_class: min_class?,
    })
}

/// A JST wall-clock time: a TOML local time (`22:00`, `22:00:00`) or a string
/// `"HH:MM"` / `"HH:MM:SS"`.
fn time_at(w: &mut Walker, path: &str, v: &Value) -> Option<NaiveTime> {
    let parsed = match v {
        Value::Datetime(d) if d.date.is_none() && d.offset.is_none() => d.time.and_then(|t| {
            NaiveTime::from_hms_opt(
                u32::from(t.hour),
                u32::from(t.minute),
                u32::from(t.second.unwrap_or(0)),
            )
        }),
        Value::String(s) => parse_hms(s.trim()),
        _ => None,
    };
    if parsed.is_none() {
        w.error(
            path,
            format!(
                "expected a time of day such as \"22:00\" or \"07:30:00\" (JST), found {}",
                describe(v)
            ),
        );
    }
    parsed
}

fn parse_hms(s: &str) -> Option<NaiveTime> {
    let mut parts = s.split(':');
    let mut num = |max: u32| -> Option<u32> {
        let p = parts.next()?;
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse::<u32>().ok().filter(|n| *n <= max)
    };
    let h = num(23)?;
    let m = num(59)?;
    let sec = match parts.next() {
        None => 0,
        Some(p) if p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
        Some(_) => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    NaiveTime::from_hms_opt(h, m, sec)
}

// ---------------------------------------------------------------------------------------
// [[outputs.relay]]

/// The relays, each with its index in the file (for paths in later checks).
fn relays(w: &mut Walker, p: &str, items: &[Value]) -> Vec<(usize, RelayRule)> {
    let mut out: Vec<(usize, RelayRule)> = Vec::new();
    let mut seen: Vec<(u8, String)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{p}[{i}]");
        let Some(t) = w.table_at(&path, item) else {
            continue;
        };
        if let Some(r) = relay(w, t, &path) {
            let id_path = join(&path, "id");
            if let Some((_, first)) = seen.iter().find(|(id, _)| *id == r.id) {
                w.error(
                    id_path,
                    format!(
                        "relay id {} is already used by {first}; each contact appears once",
                        r.id
                    ),
                );
            } else {
                seen.push((r.id, path.clone()));
            }
            out.push((i, r));
        }
    }
    out
}

/// One relay; `None` only when its id could not be read (everything else is still
/// checked).
fn relay(w: &mut Walker, t: &Table, p: &str) -> Option<RelayRule> {
    let id = w
        .require(
            t,
            p,
            "id",
            &format!("the contact number as wired, 1–{RELAY_ID_MAX}"),
        )
        .and_then(|(path, v)| w.int_in(&path, v, 1, i64::from(RELAY_ID_MAX)))
        .and_then(|i| u8::try_from(i).ok());
    let name = match w.get(t, p, "name") {
        None => id.map(|i| format!("relay {i}")).unwrap_or_default(),
        Some((path, v)) => match w.str_at(&path, v) {
            Some(s) if s.trim().is_empty() => {
                w.error(path, "must not be empty; say what the contact is wired to");
                String::new()
            }
            Some(s) if s.chars().count() > NAME_MAX_CHARS => {
                w.error(
                    path,
                    format!("too long; at most {NAME_MAX_CHARS} characters"),
                );
                String::new()
            }
            Some(s) if s.chars().any(char::is_control) => {
                w.error(path, "must not contain control characters (tabs, newlines)");
                String::new()
            }
            Some(s) => s.trim().to_owned(),
            None => String::new(),
        },
    };
    let enabled = enabled(w, t, p, true);
    let trigger = trigger(
        w,
        t,
        p,
        Trigger::default(),
        ClassRule::RequiredUnlessLongPeriod,
    );

    let pulse = w
        .get(t, p, "mode")
        .and_then(|(path, v)| w.choice_at(&path, v, &[("latched", false), ("pulse", true)]))
        .unwrap_or(false);
    let pulse_ms = w
        .get(t, p, "pulse_ms")
        .map(|(path, v)| (path.clone(), w.u32_in(&path, v, PULSE_MS.0, PULSE_MS.1)));
    let hold = w
        .get(t, p, "hold_s")
        .map(|(path, v)| (path.clone(), w.u32_in(&path, v, 0, HOLD_MAX_S)));
    let prestart_ms = w
        .get(t, p, "prestart_ms")
        .and_then(|(path, v)| w.u32_in(&path, v, 0, PRESTART_MAX_MS))
        .unwrap_or(0);
    let release_on = w
        .get(t, p, "release_on")
        .map(|(path, v)| (path.clone(), release_on(w, &path, v)));

    let (mode, hold_s, release) = if pulse {
        let ms = match pulse_ms {
            Some((_, ms)) => ms.unwrap_or(PULSE_MS.0),
            None => {
                w.error(
                    join(p, "pulse_ms"),
                    format!(
                        "missing: a pulse contact needs its pulse length in milliseconds \
                         ({}–{})",
                        PULSE_MS.0, PULSE_MS.1
                    ),
                );
                PULSE_MS.0
            }
        };
        if let Some((path, _)) = release_on {
            w.error(
                path,
                "a pulse contact opens by itself after pulse_ms; release_on applies only to \
                 mode = \"latched\"",
            );
        }
        if let Some((path, _)) = hold {
            w.error(
                path,
                "a pulse contact closes for exactly pulse_ms; hold_s applies only to \
                 mode = \"latched\"",
            );
        }
        (ContactMode::Pulse { pulse_ms: ms }, 0, Release::NONE)
    } else {
        if let Some((path, _)) = pulse_ms {
            w.error(
                path,
                "pulse_ms applies only to mode = \"pulse\"; a latched contact stays closed \
                 until released (set mode = \"pulse\", or remove pulse_ms)",
            );
        }
        let release = match release_on {
            None => Release::ANY,
            Some((_, None)) => Release::ANY,
            Some((path, Some(r))) => {
                if r == Release::NONE {
                    w.error(
                        path,
                        "a latched contact that nothing releases would stay closed forever; \
                         list at least one of \"cancel\", \"expiry\", \"reset\"",
                    );
                } else if !r.on_expiry && !r.on_reset {
                    w.error(
                        path,
                        "released only by \"cancel\", this contact would stay closed after \
                         every real (never cancelled) earthquake; add \"expiry\" or \"reset\"",
                    );
                }
                r
            }
        };
        let hold_s = hold.and_then(|(_, h)| h).unwrap_or(0);
        (ContactMode::Latched, hold_s, release)
    };

    unknown_output_keys(w, t, p, RELAY_KEYS);

    Some(RelayRule {
        id: id?,
        name,
        enabled,
        trigger,
        mode,
        hold_s,
        prestart_ms,
        release,
    })
}

fn release_on(w: &mut Walker, p: &str, v: &Value) -> Option<Release> {
    const EVENTS: &[&str] = &["cancel", "expiry", "reset"];
    let Value::Array(items) = v else {
        w.error(
            p,
            format!(
                "expected a list of release events, e.g. [\"cancel\", \"expiry\", \"reset\"], \
                 found {}",
                describe(v)
            ),
        );
        return None;
    };
    let mut r = Release::NONE;
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let path = format!("{p}[{i}]");
        let Some(which) = w.choice_at(&path, item, &[("cancel", 0), ("expiry", 1), ("reset", 2)])
        else {
            ok = false;
            continue;
        };
        let slot = match which {
            0 => &mut r.on_cancel,
            1 => &mut r.on_expiry,
            _ => &mut r.on_reset,
        };
        if *slot {
            let name = EVENTS.get(which).copied().unwrap_or("");
            w.error(path, format!("{name:?} is listed twice"));
            ok = false;
        }
        *slot = true;
    }
    ok.then_some(r)
}

/// A PA pre-start contact must close whenever audio speaks, or those announcements go to
/// an amplifier that is off: its trigger must cover the audio's.
fn prestart_matches_audio(w: &mut Walker, relays: &[(usize, RelayRule)], audio: &AudioRule) {
    if !audio.enabled {
        return;
    }
    let a = &audio.trigger;
    for (i, r) in relays {
        if !r.enabled || r.prestart_ms == 0 {
            continue;
        }
        let path = format!("outputs.relay[{i}]");
        let t = &r.trigger;
        let why = "(prestart_ms > 0) must close whenever audio speaks, or those \
                   announcements go to an amplifier that is off";
        let relay_any = t.min_class.is_none() && t.min_long_period_class.is_none();
        let audio_any = a.min_class.is_none() && a.min_long_period_class.is_none();
        if !relay_any {
            if audio_any {
                w.error(
                    join(&path, "min_class"),
                    format!(
                        "this PA pre-start contact {why}: audio speaks on every report, so \
                         set min_class = \"any\" here too"
                    ),
                );
            } else {
                if let Some(ac) = a.min_class
                    && t.min_class.is_none_or(|rc| rc > ac)
                {
                    w.error(
                        join(&path, "min_class"),
                        format!(
                            "this PA pre-start contact {why}: audio speaks from class {:?} \
                             but this contact closes {}; give it a class no stronger than \
                             the audio's",
                            ac.as_str(),
                            t.min_class.map_or_else(
                                || "on the long-period class only".to_owned(),
                                |rc| format!("only from {:?}", rc.as_str())
                            ),
                        ),
                    );
                }
                if let Some(al) = a.min_long_period_class
                    && t.min_long_period_class.is_none_or(|rl| rl > al)
                {
                    w.error(
                        join(&path, "min_long_period_class"),
                        format!(
                            "this PA pre-start contact {why}: audio speaks from long-period \
                             class {al}; give it a min_long_period_class of at most {al}"
                        ),
                    );
                }
            }
        }
        if t.warning_only && !a.warning_only {
            w.error(
                join(&path, "warning_only"),
                format!(
                    "this PA pre-start contact {why}: it closes only on warnings, but audio \
                     also speaks on forecasts; set the same warning_only on both"
                ),
            );
        }
        let missing: Vec<&str> = [
            ("training", a.include.training && !t.include.training),
            ("test", a.include.test && !t.include.test),
            ("drill", a.include.drill && !t.include.drill),
        ]
        .into_iter()
        .filter_map(|(name, missing)| missing.then_some(name))
        .collect();
        if !missing.is_empty() {
            w.error(
                join(&path, "include"),
                format!(
                    "this PA pre-start contact {why}: audio follows {} but this contact does \
                     not; include the same here",
                    missing.join(" and ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../../config/eewgate.example.toml");
    const REFERENCE: &str = include_str!("../../../../docs/configuration.md");

    /// Every key the reader accepts is shown in the example file (set, or commented out)
    /// and documented in the reference, so neither can fall behind the code silently.
    #[test]
    fn every_key_is_in_the_example_and_the_reference() {
        let tables: &[(&str, &[&str])] = &[
            ("site", SITE_KEYS),
            ("prediction", PREDICTION_KEYS),
            ("alert", ALERT_KEYS),
            ("include", INCLUDE_KEYS),
            ("relay", RELAY_KEYS),
            ("audio", AUDIO_KEYS),
            ("quiet_hours", QUIET_KEYS),
            ("led", LED_KEYS),
            ("mqtt", MQTT_KEYS),
        ];
        for (table, keys) in tables {
            for key in *keys {
                assert!(
                    EXAMPLE.contains(&format!("{key} = ")),
                    "{table}.{key} is not in config/eewgate.example.toml"
                );
                assert!(
                    REFERENCE.contains(&format!("`{key}`")),
                    "{table}.{key} is not in docs/configuration.md"
                );
            }
        }
        for section in SECTIONS {
            assert!(
                EXAMPLE.contains(&format!("[{section}")),
                "[{section}] not in the example"
            );
            assert!(
                REFERENCE.contains(&format!("`[{section}")),
                "[{section}] not documented"
            );
        }
        for output in OUTPUTS_KEYS {
            assert!(
                EXAMPLE.contains(&format!("outputs.{output}]")),
                "{output} not in the example"
            );
            assert!(
                REFERENCE.contains(&format!("outputs.{output}]")),
                "{output} not documented"
            );
        }
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_column("", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ab\ncd", 99), (2, 3));
        // Inside a multi-byte character: the character's start.
        assert_eq!(line_column("日本", 1), (1, 1));
        assert_eq!(line_column("日本", 3), (1, 2));
    }

    #[test]
    fn hms() {
        assert_eq!(parse_hms("22:00"), NaiveTime::from_hms_opt(22, 0, 0));
        assert_eq!(parse_hms("07:05:09"), NaiveTime::from_hms_opt(7, 5, 9));
        for bad in [
            "24:00",
            "7:00",
            "22:60",
            "22:00:60",
            "22",
            "22:00:00:00",
            "ab:cd",
            "",
        ] {
            assert_eq!(parse_hms(bad), None, "{bad}");
        }
    }
}
