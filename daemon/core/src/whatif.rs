//! "What would happen": reference earthquakes placed around the configured site and run
//! through a fresh [`Engine`] in simulated time, so the settings page (and `eewgate
//! whatif`) can show, before a save, the class the building would be given and exactly
//! which outputs would operate — a threshold typo is visible before it matters (issue 7).
//!
//! Pure like the rest of the crate: the receipt time comes in as a value, nothing is read
//! or written.
//!
//! # The reference earthquakes ([`scenarios`])
//!
//! | id | what |
//! |---|---|
//! | `nearby_m7_inland` | M7.0, depth 10 km, epicentre ~25 km from the site on land, issued 5 s after the origin |
//! | `distant_m8_offshore` | M8.0, depth 30 km, ~250 km away at sea, issued 15 s after the origin |
//! | `deep_m6` | M6.0, depth 380 km, ~100 km away: JMA predicts no intensity for deep events |
//! | `plum_only` | PLUM only: an assumed hypocentre at the site, its area 5- or more, warned, imminent |
//! | `training_nearby_m7` | the nearby M7.0 as a JMA training (訓練) report |
//!
//! Only the compiled-in code tables are used as geography: the forecast areas' centroids.
//! The nearby epicentre goes 25 km in the direction (of 16) whose point is closest to an
//! area centroid — towards land — and the distant one 250 km in the direction whose point
//! is farthest from every centroid — out to sea. Each epicentre is named after the
//! nearest area: code table 41 has the inland areas' own names under their codes, and
//! for the 28 island areas that have none, the name of the sea around them
//! ([`ISLAND_EPICENTRES`]) — so every report is valid. Code table 41 has no coordinates,
//! so an epicentre at sea carries the name of the nearest coast's area.
//!
//! Area forecasts are made the way the site-mode prediction makes its value: the
//! point-source chain ([`crate::predict::chain`]) and JMA2001 travel times, at each
//! area's centroid with a reference ground ([`REFERENCE_ARV400`]) and, for the site's own
//! area, at the site with the site's own amplification — so `area` and `site` modes give
//! the site the same class. Areas predicted 3 or more are listed (so a threshold at 3 is
//! visible too); when any area reaches 5-, every area at 4 or more is warned, as JMA
//! warns; arrival times are whole seconds (earlier, never later), and an area already
//! reached is "arrived". Long-period classes are not predicted (the crate has no
//! long-period model): an output that acts on them alone never operates here.
//!
//! Each report is written as a JMA XML document ([`crate::telegram::jma_xml_encode`]) and
//! parsed back, so a [`Scenario`]'s `report` is exactly what `eewgate replay` reads from
//! its `telegram` — the preview and a replay of the written telegram cannot disagree.
//!
//! # The preview ([`preview`])
//!
//! Each report is fed to a fresh engine at its issue time (the receipt time) and every
//! deadline is fired until nothing is scheduled — at most [`DRAIN_LIMIT_S`] later, as
//! `eewgate replay` does — so pre-start waits, countdowns, pulse ends, hold times and the
//! event's expiry all show, each at its offset from the receipt.

use chrono::{SubsecRound, TimeDelta};
use serde::Serialize;

use crate::codes;
use crate::engine::timeline::MAX_TICKS_PER_ADVANCE;
use crate::engine::{
    Action, ActionKind, Decision, Engine, Input, Label, LedPattern, OutputId, Step, Timeline,
};
use crate::intensity::{Intensity, IntensityRange, Upper};
use crate::predict::{
    self, Arrival, ArrivalBasis, ClassBasis, PredictionMode, PredictionSettings, Site, chain,
    traveltime,
};
use crate::report::{
    Accuracy, AreaForecast, EventId, Flags, Format, Hypocenter, InfoType, JstTime, Kind, LandOrSea,
    Product, Report, Status,
};
use crate::settings::{ContactMode, Release, Settings};
use crate::telegram::{self, Rejection, jma_xml_encode};

/// How long after the receipt deadlines are still fired (s): longer than any expiry
/// (≤ 1 h) plus hold time the settings allow — the same as `eewgate replay`.
pub const DRAIN_LIMIT_S: i64 = 6 * 3600;

/// The ground assumed at the areas' centroids (J-SHIS ARV400 = 1: Vs 400 m/s ground).
pub const REFERENCE_ARV400: f64 = 1.0;

/// Areas predicted at least this are listed in a reference report.
pub const LISTED_FROM: Intensity = Intensity::Three;

/// Epicentral distance of the nearby inland earthquake (km).
pub const NEARBY_KM: f64 = 25.0;
/// Epicentral distance of the distant offshore earthquake (km).
pub const DISTANT_KM: f64 = 250.0;
/// Epicentral distance of the deep earthquake (km).
pub const DEEP_KM: f64 = 100.0;
/// Depth of the deep earthquake (km): well beyond JMA's 150 km, so the deep policy
/// decides.
pub const DEEP_DEPTH_KM: u16 = 380;

/// Why the reference earthquakes could not be made (a bug: every site in Japan is tested).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum WhatIfError {
    /// The receipt time is outside what an event id (14 digits) can name.
    #[error("the time {0} cannot be given to a reference earthquake")]
    Time(JstTime),
    /// The report could not be written as JMA XML.
    #[error("reference earthquake {id}: {source}")]
    Encode {
        /// The scenario.
        id: &'static str,
        /// Why.
        #[source]
        source: jma_xml_encode::EncodeError,
    },
    /// The written report was rejected by the parser.
    #[error("reference earthquake {id}: the written telegram is rejected: {source}")]
    Rejected {
        /// The scenario.
        id: &'static str,
        /// Why.
        #[source]
        source: Rejection,
    },
}

/// Where a reference earthquake is, for people.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Epicentre {
    /// Epicentre name (code table 41).
    pub name: Option<String>,
    /// Its code.
    pub code: Option<String>,
    /// Latitude (degrees, as the report gives it: 0.1°).
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
    /// Depth (km).
    pub depth_km: Option<u16>,
    /// Magnitude (Mj).
    pub magnitude: Option<f64>,
    /// Distance from the site to the epicentre (km); `None` for an assumed hypocentre.
    pub distance_km: Option<f64>,
    /// Direction from the site, 16-wind compass in Japanese (北北西).
    pub direction_ja: &'static str,
    /// The same in English (NNW).
    pub direction_en: &'static str,
    /// Land or sea, when stated.
    pub land_or_sea: Option<LandOrSea>,
    /// 仮定震源要素 (PLUM only): no distance means anything.
    pub assumed: bool,
}

/// One reference earthquake: a report for this site and the telegram that carries it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    /// Stable id (`nearby_m7_inland`, …).
    pub id: &'static str,
    /// Name in Japanese.
    pub title_ja: &'static str,
    /// Name in English.
    pub title_en: &'static str,
    /// When it is received (its issue time).
    pub received_at: JstTime,
    /// Where it is.
    pub epicentre: Epicentre,
    /// The report, exactly as parsed from `telegram`.
    #[serde(skip)]
    pub report: Report,
    /// The JMA XML document of the report (what `eewgate whatif --write-telegrams` writes).
    #[serde(skip)]
    pub telegram: String,
}

/// What the site is predicted, as the engine sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SitePrediction {
    /// Area or site mode (the settings').
    pub mode: PredictionMode,
    /// The class the outputs act on.
    pub class: Option<Intensity>,
    /// The long-period class.
    pub long_period_class: Option<u8>,
    /// A warning (警報) covers the site's area.
    pub warning: bool,
    /// When the S wave arrives.
    pub arrival: Arrival,
    /// Seconds from the receipt to the S wave, when an arrival time is known.
    pub seconds_to_s: Option<f64>,
    /// Where the class came from.
    pub class_basis: ClassBasis,
    /// Where the arrival came from.
    pub arrival_basis: ArrivalBasis,
    /// The prediction's notes (stable codes).
    pub notes: Vec<&'static str>,
}

/// An action and how long after the receipt it happens.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimedAction {
    /// Milliseconds after the receipt.
    pub offset_ms: i64,
    /// The engine's action (the JSON `eewgate replay` prints).
    #[serde(flatten)]
    pub action: Action,
}

/// A decision and how long after the receipt it was made.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimedDecision {
    /// Milliseconds after the receipt.
    pub offset_ms: i64,
    /// The engine's decision.
    #[serde(flatten)]
    pub decision: Decision,
}

/// A relay contact's rule, as the preview shows it beside what it does.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RelaySummary {
    /// Latched or pulse (with its length).
    #[serde(flatten)]
    pub mode: ContactMode,
    /// Minimum closed time of a latched contact (s).
    pub hold_s: u32,
    /// PA pre-start (ms; 0 = not a pre-start contact).
    pub prestart_ms: u32,
    /// What releases it.
    pub release: Release,
}

/// One output in the preview: whether it operates and every action it is given.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutputPreview {
    /// `relay:1`, `audio`, `led`, `mqtt`.
    pub output: OutputId,
    /// A relay's name from the settings.
    pub name: Option<String>,
    /// Switched on in the settings.
    pub enabled: bool,
    /// It operates: a contact closes, the voice speaks, the LED shows the alert (or the
    /// exercise), an MQTT alert is published.
    pub fires: bool,
    /// A relay's rule.
    pub relay: Option<RelaySummary>,
    /// A relay still closed when nothing more is scheduled: only the operator's reset
    /// opens it.
    pub held_at_end: bool,
    /// What it is told to do, in order.
    pub actions: Vec<TimedAction>,
}

/// What one reference earthquake would do under the settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Preview {
    /// The scenario's id.
    pub scenario: &'static str,
    /// Its name in Japanese.
    pub title_ja: &'static str,
    /// Its name in English.
    pub title_en: &'static str,
    /// When it is received.
    pub received_at: JstTime,
    /// Where it is.
    pub epicentre: Epicentre,
    /// Real or training.
    pub label: Label,
    /// What the site is predicted.
    pub prediction: SitePrediction,
    /// The engine started an alarm for it.
    pub acted: bool,
    /// Why not, when it did not (`training_disabled`, `deep_event_ignored`,
    /// `below_every_output_rule`, …).
    pub reason: Option<&'static str>,
    /// Every decision, in order.
    pub decisions: Vec<TimedDecision>,
    /// Every output of the settings: relays in their order, then audio, LED, MQTT.
    pub outputs: Vec<OutputPreview>,
}

// ---------------------------------------------------------------------------------------
// Geometry

const COMPASS_JA: [&str; 16] = [
    "北",
    "北北東",
    "北東",
    "東北東",
    "東",
    "東南東",
    "南東",
    "南南東",
    "南",
    "南南西",
    "南西",
    "西南西",
    "西",
    "西北西",
    "北西",
    "北北西",
];
const COMPASS_EN: [&str; 16] = [
    "N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW",
    "NNW",
];

/// The point `km` from (`lat`, `lon`) on the great circle leaving at `bearing` degrees.
fn destination(lat: f64, lon: f64, bearing: f64, km: f64) -> (f64, f64) {
    let d = km / chain::EARTH_RADIUS_KM;
    let (p1, l1, b) = (lat.to_radians(), lon.to_radians(), bearing.to_radians());
    let p2 = (p1.sin() * d.cos() + p1.cos() * d.sin() * b.cos()).asin();
    let l2 = l1 + (b.sin() * d.sin() * p1.cos()).atan2(d.cos() - p1.sin() * p2.sin());
    (p2.to_degrees(), l2.to_degrees())
}

/// To the 0.1° a report carries.
fn tenth(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn nearest_centroid_km(lat: f64, lon: f64) -> f64 {
    predict::area_centroids()
        .map(|c| chain::haversine_km(lat, lon, c.lat, c.lon))
        .fold(f64::INFINITY, f64::min)
}

/// Of the 16 compass directions, the one whose point `km` away scores best (`better`
/// compares the distances to the nearest centroid): its index and the point, rounded.
fn pick_direction(site: &Site, km: f64, better: impl Fn(f64, f64) -> bool) -> (usize, f64, f64) {
    let mut best: Option<(usize, f64, f64, f64)> = None;
    for i in 0..16u32 {
        let (lat, lon) = destination(site.lat, site.lon, f64::from(i) * 22.5, km);
        let score = nearest_centroid_km(lat, lon);
        if best.is_none_or(|(_, _, _, s)| better(score, s)) {
            best = Some((i as usize, lat, lon, score));
        }
    }
    // Sixteen candidates were scored, so there is a best one.
    let (i, lat, lon, _) = best.unwrap_or((0, site.lat, site.lon, 0.0));
    (i, tenth(lat), tenth(lon))
}

/// The 28 forecast areas that are islands with no epicentre name of their own in code
/// table 41, each with the table's name for the sea around it (both codes from the
/// compiled-in tables; a test checks every one exists).
pub const ISLAND_EPICENTRES: [(&str, &str); 28] = [
    ("119", "180"), // 北海道奥尻島 → 北海道南西沖
    ("139", "183"), // 北海道利尻礼文 → 北海道北西沖
    ("354", "483"), // 神津島 → 新島・神津島近海
    ("355", "480"), // 伊豆大島 → 伊豆大島近海
    ("356", "483"), // 新島 → 新島・神津島近海
    ("357", "482"), // 三宅島 → 三宅島近海
    ("358", "476"), // 八丈島 → 八丈島近海
    ("359", "911"), // 小笠原 → 父島近海
    ("375", "498"), // 新潟県佐渡 → 佐渡付近
    ("535", "688"), // 兵庫県淡路島 → 淡路島付近
    ("575", "685"), // 島根県隠岐 → 隠岐島近海
    ("735", "795"), // 長崎県対馬 → 壱岐・対馬近海
    ("736", "795"), // 長崎県壱岐 → 壱岐・対馬近海
    ("737", "783"), // 長崎県五島 → 五島列島近海
    ("774", "798"), // 鹿児島県十島村 → トカラ列島近海
    ("775", "797"), // 鹿児島県甑島 → 薩摩半島西方沖
    ("776", "790"), // 鹿児島県種子島 → 種子島近海
    ("777", "790"), // 鹿児島県屋久島 → 種子島近海
    ("778", "793"), // 鹿児島県奄美北部 → 奄美大島近海
    ("779", "793"), // 鹿児島県奄美南部 → 奄美大島近海
    ("800", "850"), // 沖縄県本島北部 → 沖縄本島近海
    ("801", "850"), // 沖縄県本島中南部 → 沖縄本島近海
    ("802", "850"), // 沖縄県久米島 → 沖縄本島近海
    ("803", "851"), // 沖縄県大東島 → 南大東島近海
    ("804", "853"), // 沖縄県宮古島 → 宮古島近海
    ("805", "854"), // 沖縄県石垣島 → 石垣島近海
    ("806", "857"), // 沖縄県与那国島 → 与那国島近海
    ("807", "856"), // 沖縄県西表島 → 西表島付近
];

/// The epicentre name (code table 41) for an area: its own (the inland names are the
/// areas' codes) or, for an island, the sea around it. The flag says it is the area's own.
fn area_epicentre(area: &str) -> Option<(&'static str, &'static str, bool)> {
    if let Some((code, name)) = codes::EPICENTER.code_and_name(area) {
        return Some((code, name, true));
    }
    ISLAND_EPICENTRES
        .iter()
        .find(|(a, _)| *a == area)
        .and_then(|(_, e)| codes::EPICENTER.code_and_name(e))
        .map(|(code, name)| (code, name, false))
}

/// The epicentre name for a point: that of the nearest area ([`area_epicentre`]).
fn epicentre_name(lat: f64, lon: f64) -> Option<(&'static str, &'static str, bool)> {
    predict::area_centroids()
        .min_by(|a, b| {
            chain::haversine_km(lat, lon, a.lat, a.lon)
                .total_cmp(&chain::haversine_km(lat, lon, b.lat, b.lon))
        })
        .and_then(|c| area_epicentre(c.code))
}

fn direction_names(i: usize) -> (&'static str, &'static str) {
    (
        COMPASS_JA.get(i).copied().unwrap_or("北"),
        COMPASS_EN.get(i).copied().unwrap_or("N"),
    )
}

// ---------------------------------------------------------------------------------------
// Reports

fn add_ms(t: JstTime, ms: i64) -> JstTime {
    JstTime(
        t.0.checked_add_signed(TimeDelta::milliseconds(ms))
            .unwrap_or(t.0),
    )
}

fn add_s(t: JstTime, s: i64) -> JstTime {
    add_ms(t, s.saturating_mul(1000))
}

/// A quake's source, for the area forecasts.
#[derive(Clone, Copy, Debug)]
struct Source {
    lat: f64,
    lon: f64,
    depth_km: u16,
    magnitude: f64,
    origin: JstTime,
}

/// Class and S arrival at one point.
fn at_point(
    src: &Source,
    lat: f64,
    lon: f64,
    arv600: f64,
    prediction: &PredictionSettings,
) -> Option<(Intensity, JstTime)> {
    let distance = chain::haversine_km(src.lat, src.lon, lat, lon);
    let depth = f64::from(src.depth_km);
    let value = chain::point_source(src.magnitude, prediction.mw_offset, depth, distance, arv600)?;
    let (_, s) = traveltime::p_s_times(depth, distance)?;
    let ms = (s * 1000.0).round();
    if !ms.is_finite() {
        return None;
    }
    // Travel times in the table are below 2,000 s: the cast is exact.
    #[allow(clippy::cast_possible_truncation, reason = "|ms| < 2e6, integral")]
    let arrival = add_ms(src.origin, ms as i64);
    // JMA gives whole seconds; earlier rather than later.
    Some((value.class, JstTime(arrival.0.trunc_subsecs(0))))
}

/// JMA-style area forecasts for a shallow source: every area predicted [`LISTED_FROM`]
/// or more, strongest first.
fn area_forecasts(
    src: &Source,
    site: &Site,
    prediction: &PredictionSettings,
    issued: JstTime,
) -> Vec<AreaForecast> {
    let reference = chain::arv600_from_arv400(REFERENCE_ARV400, prediction.rock_factor);
    let mut listed: Vec<(Intensity, JstTime, &'static str, &'static str)> =
        predict::area_centroids()
            .filter_map(|c| {
                let (class, arrival) = if c.code == site.area_code {
                    at_point(
                        src,
                        site.lat,
                        site.lon,
                        site.arv600(prediction.rock_factor),
                        prediction,
                    )?
                } else {
                    at_point(src, c.lat, c.lon, reference, prediction)?
                };
                (class >= LISTED_FROM).then_some((class, arrival, c.code, c.name))
            })
            .collect();
    listed.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(b.2)));
    let warned = listed
        .first()
        .is_some_and(|(class, ..)| *class >= Intensity::FiveLower);
    listed
        .into_iter()
        .map(|(class, arrival, code, name)| {
            let arrived = arrival <= issued;
            AreaForecast {
                code: code.to_owned(),
                name: name.to_owned(),
                intensity: IntensityRange::exactly(class),
                long_period_class: None,
                long_period: None,
                warning: warned && class >= Intensity::Four,
                arrival: (!arrived).then_some(arrival),
                arrived,
                plum: false,
                plum_predicted_at: None,
            }
        })
        .collect()
}

/// What every draft shares; the parser derives the flags and `actionable`.
#[allow(
    clippy::too_many_arguments,
    reason = "one report's fields, named at the call"
)]
fn draft(
    event_id: EventId,
    status: Status,
    issued: JstTime,
    origin: JstTime,
    detected: JstTime,
    hypocenter: Hypocenter,
    magnitude: f64,
    accuracy: Accuracy,
    areas: Vec<AreaForecast>,
) -> Report {
    let max = areas.iter().map(|a| a.intensity.max_class()).max();
    let kind = if areas.iter().any(|a| a.warning) {
        Kind::Warning
    } else {
        Kind::Forecast
    };
    Report {
        format: Format::JmaXml,
        product: Product::Vxse45,
        event_id,
        serial: 1,
        final_report: false,
        kind,
        status,
        info_type: InfoType::Issued,
        issued_at: Some(issued),
        origin_time: Some(origin),
        detected_at: Some(detected),
        hypocenter: Some(hypocenter),
        magnitude: Some(magnitude),
        max_intensity: max.map(IntensityRange::exactly),
        max_long_period_class: None,
        accuracy: Some(accuracy),
        max_intensity_change: None,
        areas,
        warned_regions: Vec::new(),
        flags: Flags::default(),
        issuing_system: None,
        actionable: false,
        not_actionable_reason: None,
    }
}

/// Accuracy of a well-located report (several stations, grid search).
const LOCATED: Accuracy = Accuracy {
    epicenter: Some(4),
    depth: Some(4),
    magnitude: Some(4),
    magnitude_stations: Some(5),
    hypocenter: Some(4),
};

/// Accuracy JMA gives a PLUM-only report (as in the corpus: RK11811).
const PLUM_ACCURACY: Accuracy = Accuracy {
    epicenter: Some(1),
    depth: Some(1),
    magnitude: Some(8),
    magnitude_stations: Some(1),
    hypocenter: Some(1),
};

fn event_id(t: JstTime) -> Result<EventId, WhatIfError> {
    EventId::parse(&t.0.format("%Y%m%d%H%M%S").to_string()).ok_or(WhatIfError::Time(t))
}

/// A draft written as XML and read back: the scenario's report is the parser's.
fn finish(
    id: &'static str,
    title_ja: &'static str,
    title_en: &'static str,
    epicentre: Epicentre,
    draft: &Report,
    issued: JstTime,
) -> Result<Scenario, WhatIfError> {
    let xml = jma_xml_encode::encode(draft).map_err(|source| WhatIfError::Encode { id, source })?;
    let report =
        telegram::parse(xml.as_bytes()).map_err(|source| WhatIfError::Rejected { id, source })?;
    Ok(Scenario {
        id,
        title_ja,
        title_en,
        // The document always carries the issue time it was written with.
        received_at: report.issued_at.unwrap_or(issued),
        epicentre,
        report,
        telegram: xml,
    })
}

/// A shallow or deep located earthquake `km` away in direction `dir` (index, point).
#[allow(
    clippy::too_many_arguments,
    reason = "the scenario's parameters, named at the call"
)]
fn located(
    settings: &Settings,
    issued: JstTime,
    status: Status,
    (dir, lat, lon): (usize, f64, f64),
    depth_km: u16,
    magnitude: f64,
    delay_s: i64,
    land_or_sea: Option<LandOrSea>,
) -> Result<(Report, Epicentre), WhatIfError> {
    let origin = add_s(issued, -delay_s);
    let detected = add_s(origin, 1);
    let name = epicentre_name(lat, lon);
    // A quake "on land" named after the sea around an island is at sea.
    let land_or_sea = match (land_or_sea, name) {
        (Some(LandOrSea::Land), Some((_, _, false))) => Some(LandOrSea::Sea),
        (given, _) => given,
    };
    let hypocenter = Hypocenter {
        code: name.map(|(c, _, _)| c.to_owned()),
        name: name.map(|(_, n, _)| n.to_owned()),
        lat,
        lon,
        depth_km: Some(depth_km),
        assumed: false,
        land_or_sea,
    };
    let src = Source {
        lat,
        lon,
        depth_km,
        magnitude,
        origin,
    };
    // JMA predicts no intensity for deep events; neither does this.
    let areas = if depth_km > crate::report::DEEP_EVENT_KM {
        Vec::new()
    } else {
        area_forecasts(&src, &settings.site, &settings.prediction, issued)
    };
    let (direction_ja, direction_en) = direction_names(dir);
    let epicentre = Epicentre {
        name: hypocenter.name.clone(),
        code: hypocenter.code.clone(),
        lat,
        lon,
        depth_km: Some(depth_km),
        magnitude: Some(magnitude),
        distance_km: Some(chain::haversine_km(
            settings.site.lat,
            settings.site.lon,
            lat,
            lon,
        )),
        direction_ja,
        direction_en,
        land_or_sea,
        assumed: false,
    };
    let report = draft(
        event_id(detected)?,
        status,
        issued,
        origin,
        detected,
        hypocenter,
        magnitude,
        LOCATED,
        areas,
    );
    Ok((report, epicentre))
}

/// The reference earthquakes for the settings' site, received at `now` (to the second).
pub fn scenarios(settings: &Settings, now: JstTime) -> Result<Vec<Scenario>, WhatIfError> {
    let site = &settings.site;
    let issued = JstTime(now.0.trunc_subsecs(0));
    let inland = pick_direction(site, NEARBY_KM, |score, best| score < best);
    let seaward = pick_direction(site, DISTANT_KM, |score, best| score > best);
    let (sea_dir, _, _) = seaward;
    let (deep_lat, deep_lon) = destination(
        site.lat,
        site.lon,
        f64::from(sea_dir as u32) * 22.5,
        DEEP_KM,
    );
    let deep_point = (sea_dir, tenth(deep_lat), tenth(deep_lon));

    let mut out = Vec::with_capacity(5);

    let (nearby, nearby_at) = located(
        settings,
        issued,
        Status::Normal,
        inland,
        10,
        7.0,
        5,
        Some(LandOrSea::Land),
    )?;
    out.push(finish(
        "nearby_m7_inland",
        "近くの内陸の浅い地震 M7.0",
        "Nearby shallow inland M7.0",
        nearby_at.clone(),
        &nearby,
        issued,
    )?);

    let (distant, distant_at) = located(
        settings,
        issued,
        Status::Normal,
        seaward,
        30,
        8.0,
        15,
        Some(LandOrSea::Sea),
    )?;
    out.push(finish(
        "distant_m8_offshore",
        "遠くの海域の地震 M8.0",
        "Distant offshore M8.0",
        distant_at,
        &distant,
        issued,
    )?);

    let (deep, deep_at) = located(
        settings,
        issued,
        Status::Normal,
        deep_point,
        DEEP_DEPTH_KM,
        6.0,
        10,
        None,
    )?;
    out.push(finish(
        "deep_m6",
        "深発地震 M6.0（深さ 380 km）",
        "Deep M6.0 (depth 380 km)",
        deep_at,
        &deep,
        issued,
    )?);

    let (plum, plum_at) = plum_only(settings, issued)?;
    out.push(finish(
        "plum_only",
        "PLUM 法のみの予報（設置場所の区域で震度5弱以上）",
        "PLUM only (5- or more in the site's area)",
        plum_at,
        &plum,
        issued,
    )?);

    let mut training = nearby;
    training.status = Status::Training;
    out.push(finish(
        "training_nearby_m7",
        "訓練報（近くの内陸の地震 M7.0）",
        "Training report (the nearby inland M7.0)",
        nearby_at,
        &training,
        issued,
    )?);
    Ok(out)
}

/// A PLUM-only report: JMA's assumed hypocentre at the site (its area's epicentre name),
/// M1.0, depth 10 km, and the site's area predicted 5- or more by PLUM, warned.
fn plum_only(settings: &Settings, issued: JstTime) -> Result<(Report, Epicentre), WhatIfError> {
    let site = &settings.site;
    let (lat, lon) = (tenth(site.lat), tenth(site.lon));
    let origin = add_s(issued, -3);
    let name = area_epicentre(&site.area_code);
    let hypocenter = Hypocenter {
        code: name.map(|(c, _, _)| c.to_owned()),
        name: name.map(|(_, n, _)| n.to_owned()),
        lat,
        lon,
        depth_km: Some(10),
        assumed: true,
        land_or_sea: None,
    };
    let area = AreaForecast {
        code: site.area_code.clone(),
        name: codes::FORECAST_AREA
            .name(&site.area_code)
            .unwrap_or_default()
            .to_owned(),
        intensity: IntensityRange {
            lower: Intensity::FiveLower,
            upper: Upper::Over,
        },
        long_period_class: None,
        long_period: None,
        warning: true,
        arrival: None,
        arrived: false,
        plum: true,
        plum_predicted_at: Some(add_s(issued, -1)),
    };
    let epicentre = Epicentre {
        name: hypocenter.name.clone(),
        code: hypocenter.code.clone(),
        lat,
        lon,
        depth_km: Some(10),
        magnitude: Some(1.0),
        distance_km: None,
        direction_ja: "",
        direction_en: "",
        land_or_sea: None,
        assumed: true,
    };
    let mut report = draft(
        event_id(origin)?,
        Status::Normal,
        issued,
        origin,
        origin,
        hypocenter,
        1.0,
        PLUM_ACCURACY,
        vec![area],
    );
    report.max_intensity = Some(IntensityRange {
        lower: Intensity::FiveLower,
        upper: Upper::Over,
    });
    Ok((report, epicentre))
}

// ---------------------------------------------------------------------------------------
// The preview

fn offset_ms(from: JstTime, t: JstTime) -> i64 {
    t.0.signed_duration_since(from.0).num_milliseconds()
}

/// Whether an action means the output operates (rather than returning to rest).
fn operates(kind: &ActionKind) -> bool {
    match kind {
        ActionKind::On { .. }
        | ActionKind::Announce { .. }
        | ActionKind::Countdown { .. }
        | ActionKind::Publish { .. } => true,
        ActionKind::Led { pattern } => matches!(pattern, LedPattern::Alert | LedPattern::Exercise),
        ActionKind::Off | ActionKind::Stop => false,
    }
}

/// Runs every scenario through a fresh engine with `settings`; one preview each, in order.
pub fn preview(settings: &Settings, scenarios: &[Scenario]) -> Vec<Preview> {
    scenarios.iter().map(|s| preview_one(settings, s)).collect()
}

fn preview_one(settings: &Settings, s: &Scenario) -> Preview {
    let received = s.received_at;
    let mut timeline = Timeline::new(Engine::new(settings.clone()));
    // Each step with the time it ran at: the receipt, then every deadline in turn up to
    // the limit — the sequence `Timeline::drain(limit)` gives `eewgate replay`, one
    // deadline at a time so each decision gets its time.
    let mut steps: Vec<(JstTime, Step)> = timeline
        .feed(Input::Report(Box::new(s.report.clone())), received)
        .into_iter()
        .map(|step| (received, step))
        .collect();
    let limit = add_s(received, DRAIN_LIMIT_S);
    for _ in 0..MAX_TICKS_PER_ADVANCE {
        let Some(due) = timeline.deadline().filter(|d| *d <= limit) else {
            break;
        };
        for step in timeline.drain(due) {
            steps.push((timeline.now().unwrap_or(due), step));
        }
    }
    let closed_at_end = timeline.engine().closed_relays();

    let p = predict::predict(&s.report, &settings.site, &settings.prediction);
    let prediction = SitePrediction {
        mode: p.mode,
        class: p.intensity_class,
        long_period_class: p.long_period_class,
        warning: s
            .report
            .area(&settings.site.area_code)
            .is_some_and(|a| a.warning),
        arrival: p.arrival,
        seconds_to_s: p.remaining_s(received),
        class_basis: p.class_basis,
        arrival_basis: p.arrival_basis,
        notes: p.notes.clone(),
    };

    let mut decisions = Vec::new();
    let mut actions = Vec::new();
    for (at, step) in steps {
        for a in step.actions {
            actions.push(TimedAction {
                offset_ms: offset_ms(received, a.at),
                action: a,
            });
        }
        decisions.extend(step.decisions.into_iter().map(|decision| TimedDecision {
            offset_ms: offset_ms(received, at),
            decision,
        }));
    }
    let acted = decisions.iter().any(|d| d.decision.outcome == "started");
    let reason = if acted {
        None
    } else {
        decisions
            .iter()
            .find(|d| matches!(d.decision.outcome, "not_acted" | "delivery_test"))
            .map(|d| d.decision.detail.unwrap_or(d.decision.outcome))
    };

    let rules = &settings.outputs;
    let mut outputs: Vec<OutputPreview> = rules
        .relays
        .iter()
        .map(|r| {
            let id = OutputId::Relay(r.id);
            OutputPreview {
                output: id,
                name: Some(r.name.clone()),
                enabled: r.enabled,
                fires: false,
                relay: Some(RelaySummary {
                    mode: r.mode,
                    hold_s: r.hold_s,
                    prestart_ms: r.prestart_ms,
                    release: r.release,
                }),
                held_at_end: closed_at_end.contains(&r.id),
                actions: Vec::new(),
            }
        })
        .collect();
    for (output, enabled) in [
        (OutputId::Audio, rules.audio.enabled),
        (OutputId::Led, rules.led.enabled),
        (OutputId::Mqtt, rules.mqtt.enabled),
    ] {
        outputs.push(OutputPreview {
            output,
            name: None,
            enabled,
            fires: false,
            relay: None,
            held_at_end: false,
            actions: Vec::new(),
        });
    }
    for a in actions {
        if let Some(o) = outputs.iter_mut().find(|o| o.output == a.action.output) {
            o.fires |= operates(&a.action.kind);
            o.actions.push(a);
        }
    }

    Preview {
        scenario: s.id,
        title_ja: s.title_ja,
        title_en: s.title_en,
        received_at: received,
        epicentre: s.epicentre.clone(),
        label: match s.report.status {
            Status::Normal => Label::Real,
            Status::Training => Label::Training,
            Status::Test => Label::Test,
        },
        prediction,
        acted,
        reason,
        decisions,
        outputs,
    }
}
