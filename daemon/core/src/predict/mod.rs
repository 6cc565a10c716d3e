//! Site prediction: what a [`Report`] means for this building — intensity class and
//! seconds until the S wave — with the reason for every value.
//!
//! Two modes ([`PredictionMode`]):
//! - `area` (default): JMA's own forecast for the site's forecast area, taken from the
//!   report. Computing site values for others requires a JMA forecasting licence (see
//!   `docs/adr/0004-prediction-modes.md`), so this is the default.
//! - `site`: the point-source chain of `intensity-prediction.md` §1 (Mj→Mw, fault length,
//!   fault distance, Si & Midorikawa 1999 PGV on rock, amplification, Midorikawa 1999
//!   intensity, JMA rounding and classes), floored at JMA's lower bound for the site's
//!   area; never on an assumed hypocentre; nothing computed deeper than 150 km.
//!
//! Arrival times come from the JMA2001 travel-time table compiled into the binary
//! ([`traveltime`]), interpolated bilinearly in depth and distance.
//!
//! ```
//! use eew_core::predict::{self, Amplification, Arrival, PredictionMode, PredictionSettings, Site};
//!
//! let telegram = "37 03 00 110311144645 C11 110311144619 ND20110311144640 NCN001 \
//!                 JD////////////// JN/// 287 N382 E1427 010 43 01 RK6620/ RT10/// RC///// 9999=";
//! let report = eew_core::parse(telegram.as_bytes()).expect("a real first report of 2011-03-11");
//! // Sendai; without an area code the area with the nearest centroid is taken.
//! let site = Site::new(38.26, 140.87, Amplification::Arv400(1.5), None).expect("in Japan");
//! let settings = PredictionSettings { mode: PredictionMode::Site, ..Default::default() };
//! let p = predict::predict(&report, &site, &settings);
//! assert!(p.instrumental_intensity.is_some()); // M4.3 at 10 km: computed
//! assert!(matches!(p.arrival, Arrival::At { .. })); // origin time + JMA2001 S time
//! assert!(p.notes.contains(&"area_not_listed")); // the first report lists no area
//! ```
//!
//! Modules: [`chain`] (the formulas and JMA's rounding and classes), [`traveltime`]
//! (JMA2001), [`site`] (the building, its checks, the area suggestion and the rules that
//! turn a report into a [`Prediction`]). The rules are listed in [`site`]'s documentation;
//! every decision leaves a stable code in [`Prediction::notes`]:
//!
//! | note | meaning |
//! |---|---|
//! | `cancel_report` | the report cancels the event: nothing is predicted |
//! | `report_not_actionable` | the report is not actionable (see `Report::not_actionable_reason`) |
//! | `area_not_listed` | the site's area is not in the report |
//! | `no_area_forecasts` | the report lists no area at all |
//! | `plum_area` | the site's area is predicted by PLUM (no countdown) |
//! | `no_hypocenter` | no hypocentre: no distances, travel times or point-source value |
//! | `assumed_hypocenter` | 仮定震源要素: distances from it mean nothing; nothing computed |
//! | `level_method` | level-method report: its "hypocentre" is a station; nothing computed |
//! | `depth_unknown` | depth unknown: epicentral distance only |
//! | `deep_event` | deeper than 150 km: no point-source intensity (JMA gives none either) |
//! | `magnitude_unknown` | no magnitude: no point-source intensity |
//! | `point_source_not_computable` | the chain gave no finite value (bad settings) |
//! | `outside_travel_time_table` | beyond 2000 km or 700 km: no travel time |
//! | `origin_time_unknown` | travel times known but no origin time to add them to |
//! | `long_period_from_report_max` | the area carries no long-period class: the report's maximum is used |
//! | `area_floor_applied` | site mode: the point-source class was raised to JMA's lower bound (or PLUM class) |
//! | `area_lower_bound_only` | site mode: no point-source value; JMA's lower bound (or PLUM class) is the class |
//! | `area_reported_arrived` | site mode: JMA says the area has been reached; the site's own S time is shown |
//! | `arrival_unknown` | no arrival can be given |

pub mod chain;
pub mod site;
pub mod traveltime;

use serde::Serialize;

use crate::intensity::{Intensity, IntensityRange};
use crate::report::{Flags, JstTime, Report};

pub use site::{
    Amplification, AreaCentroid, AreaSuggestion, Site, SiteError, area_centroids, suggest_area,
};

/// Default Mj → Mw offset (`Mw = Mj − offset`), intensity-prediction.md §1.1.
pub const DEFAULT_MW_OFFSET: f64 = 0.171;
/// Default engineering-bedrock (Vs 600 m/s) → Vs 400 m/s factor used with ARV400.
pub const DEFAULT_ROCK_FACTOR: f64 = 1.41;

/// Which prediction drives the site's class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionMode {
    /// JMA's forecast for the site's area (default; no licence needed).
    #[default]
    Area,
    /// The point-source pinpoint value, floored at JMA's area lower bound.
    Site,
}

/// Prediction settings (validated: offsets finite, factor > 0).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PredictionSettings {
    /// Area or site mode.
    pub mode: PredictionMode,
    /// `Mw = Mj − mw_offset`.
    pub mw_offset: f64,
    /// Bedrock (Vs 600) → Vs 400 factor applied with ARV400 (1.41 J-SHIS-consistent; 1.31
    /// viewer-compatible).
    pub rock_factor: f64,
}

impl Default for PredictionSettings {
    fn default() -> Self {
        Self {
            mode: PredictionMode::Area,
            mw_offset: DEFAULT_MW_OFFSET,
            rock_factor: DEFAULT_ROCK_FACTOR,
        }
    }
}

/// When the S wave (主要動) reaches the site.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Arrival {
    /// Expected at this time.
    At {
        /// Predicted S arrival at the site.
        time: JstTime,
    },
    /// JMA says the S wave has already arrived in the site's area (既に主要動到達と推測).
    Arrived,
    /// The site's area is predicted by PLUM: strong motion is imminent or under way, and
    /// there is no countdown (the PLUM time is not an arrival time).
    Imminent,
    /// No arrival can be given (no origin time or hypocentre, outside the table).
    Unknown,
}

/// Where the site's class came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassBasis {
    /// JMA's forecast for the site's area (area mode).
    AreaForecast,
    /// JMA's PLUM forecast for the site's area.
    PlumArea,
    /// The point-source model at the site (site mode).
    PointSource,
    /// Site mode: the point-source class was below JMA's lower bound for the area, so
    /// JMA's lower bound is used.
    AreaFloor,
    /// The site's area is not listed and nothing else gives a class.
    NotListed,
    /// No class can be given (deep event, level method, unknown magnitude, …).
    None,
}

/// Where the arrival came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalBasis {
    /// JMA's arrival time for the site's area (area mode, listed area with a time).
    AreaForecast,
    /// JMA flags the area as already reached.
    AreaArrived,
    /// PLUM area: imminent, no countdown.
    Plum,
    /// Origin time + JMA2001 S travel time to the site.
    TravelTime,
    /// Nothing to compute from.
    None,
}

/// What a report means for the site, with its reasons.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// The mode that produced it.
    pub mode: PredictionMode,
    /// The class the outputs act on: area mode — the strongest class of JMA's range for
    /// the site's area ("or more" counts as its lower bound); site mode — max(point-source
    /// class, JMA's lower bound for the area, PLUM class). `None` when unknown.
    pub intensity_class: Option<Intensity>,
    /// JMA's range for the site's area when it is listed.
    pub area_range: Option<IntensityRange>,
    /// Site mode: the point-source instrumental intensity (unrounded), when computed.
    pub instrumental_intensity: Option<f64>,
    /// Site mode: the point-source class after JMA rounding, before any floor.
    pub point_source_class: Option<Intensity>,
    /// Long-period class: the site's area's when listed, else the report's maximum.
    pub long_period_class: Option<u8>,
    /// When the S wave arrives.
    pub arrival: Arrival,
    /// Origin + P travel time, when computable (informational).
    pub p_arrival: Option<JstTime>,
    /// JMA2001 S travel time from the hypocentre to the site (s).
    pub s_travel_time_s: Option<f64>,
    /// JMA2001 P travel time from the hypocentre to the site (s).
    pub p_travel_time_s: Option<f64>,
    /// Great-circle epicentral distance (km).
    pub epicentral_distance_km: Option<f64>,
    /// Hypocentral distance (km).
    pub hypocentral_distance_km: Option<f64>,
    /// Site mode: fault distance X (km).
    pub fault_distance_km: Option<f64>,
    /// Site mode: PGV on Vs 600 m/s bedrock (cm/s).
    pub pgv600_cm_s: Option<f64>,
    /// Site mode: surface PGV at the site (cm/s).
    pub pgv_cm_s: Option<f64>,
    /// Why the class is what it is.
    pub class_basis: ClassBasis,
    /// Why the arrival is what it is.
    pub arrival_basis: ArrivalBasis,
    /// True when site mode raised the point-source class to JMA's area lower bound.
    pub floor_applied: bool,
    /// Stable codes for every notable decision, in order (e.g. `assumed_hypocenter`,
    /// `deep_event`, `area_not_listed`, `outside_travel_time_table`).
    pub notes: Vec<&'static str>,
    /// The report's flags, carried so outputs can say them.
    pub flags: Flags,
}

impl Prediction {
    /// Seconds from `now` until the S wave (negative once passed); `None` unless
    /// [`Arrival::At`].
    pub fn remaining_s(&self, now: JstTime) -> Option<f64> {
        match self.arrival {
            Arrival::At { time } => {
                let ms = time.0.signed_duration_since(now.0).num_milliseconds();
                // Millisecond counts of realistic spans are far below 2^53.
                #[allow(clippy::cast_precision_loss, reason = "ms spans are < 2^53")]
                Some(ms as f64 / 1000.0)
            }
            _ => None,
        }
    }
}

/// Predicts what `report` means for `site`. Pure; never panics on any validated report.
pub fn predict(report: &Report, site: &Site, settings: &PredictionSettings) -> Prediction {
    site::predict_for_site(report, site, settings)
}
