//! The building: where it is, how its ground amplifies shaking, which JMA forecast area
//! it is in — and the per-report prediction for it.
//!
//! The rules (applied by [`super::predict`]):
//!
//! - **Geometry** — whenever the report has a real (not assumed) hypocentre, the
//!   epicentral distance is filled; with a depth also the hypocentral distance and the
//!   JMA2001 P and S travel times. In area mode they are informational.
//! - **Area mode** — the class is JMA's for the site's area: the strongest class of its
//!   range ("or more" counts as the lower bound). Not listed → no class
//!   (`area_not_listed`). Arrival: JMA's time for the area when given; `Arrived` when JMA
//!   says so; `Imminent` for PLUM areas (the PLUM time is not an arrival); otherwise
//!   origin time + S travel time.
//! - **Site mode** — the point-source chain at the site, never on an assumed hypocentre,
//!   never deeper than 150 km, never without magnitude and depth, never for level-method
//!   reports; the class never falls below JMA's lower bound for the site's area (nor below
//!   the PLUM class of a PLUM area). Arrival: origin time + S travel time; PLUM area →
//!   `Imminent`; without a usable hypocentre, JMA's area arrival when there is one.
//! - **Long-period class** — the site's area's when it carries one, else the report's
//!   maximum (`long_period_from_report_max`): never understated.
//! - Cancel reports predict nothing (`cancel_report`).
//!
//! Every decision leaves a stable code in [`Prediction::notes`].

use std::sync::LazyLock;

use chrono::TimeDelta;
use serde::Serialize;

use super::chain::{self, PointSource};
use super::traveltime;
use super::{Arrival, ArrivalBasis, ClassBasis, Prediction, PredictionMode, PredictionSettings};
use crate::codes;
use crate::intensity::Intensity;
use crate::report::{AreaForecast, DEEP_EVENT_KM, InfoType, JstTime, Kind, Report};

const CENTROIDS: &str = include_str!("../../data/jma_eew_area_centroids.csv");

/// Plausible latitudes for a site in Japan (degrees).
pub const LAT_RANGE: (f64, f64) = (20.0, 46.0);
/// Plausible longitudes for a site in Japan (degrees).
pub const LON_RANGE: (f64, f64) = (122.0, 154.0);
/// Accepted ARV400 (J-SHIS amplification) values: above 0, at most 10.
pub const ARV400_MAX: f64 = 10.0;
/// Accepted AVS30 range (m/s), where the Fujimoto & Midorikawa (2006) relation holds.
pub const AVS30_RANGE: (f64, f64) = (100.0, 1500.0);

/// Site amplification of PGV, as the installer knows it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Amplification {
    /// J-SHIS 表層地盤増幅率: PGV amplification from Vs 400 m/s bedrock to the surface.
    Arv400(f64),
    /// Average shear-wave velocity of the top 30 m (m/s); converted with Fujimoto &
    /// Midorikawa (2006).
    Avs30(f64),
}

/// The building's location and ground.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Site {
    /// Latitude (degrees, WGS84 — the 0.4 km datum shift is below telegram resolution).
    pub lat: f64,
    /// Longitude (degrees).
    pub lon: f64,
    /// Ground amplification.
    pub amplification: Amplification,
    /// The site's JMA forecast area code (3 digits, 地震情報／細分区域).
    pub area_code: String,
}

/// Why a site was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SiteError {
    /// Latitude not a number inside Japan's range.
    #[error("latitude {0} is outside Japan (expected {min}–{max})", min = LAT_RANGE.0, max = LAT_RANGE.1)]
    Latitude(f64),
    /// Longitude not a number inside Japan's range.
    #[error("longitude {0} is outside Japan (expected {min}–{max})", min = LON_RANGE.0, max = LON_RANGE.1)]
    Longitude(f64),
    /// ARV400 not in (0, 10].
    #[error("ARV400 {0} is out of range (expected above 0, at most {ARV400_MAX})")]
    Arv400(f64),
    /// AVS30 not in 100–1500 m/s.
    #[error("AVS30 {0} m/s is out of range (expected {min}–{max} m/s)", min = AVS30_RANGE.0, max = AVS30_RANGE.1)]
    Avs30(f64),
    /// The area code is not one of JMA's 188 forecast areas.
    #[error("area code {0:?} is not a JMA forecast area (地震情報／細分区域)")]
    UnknownArea(String),
}

/// The forecast area whose centroid is nearest to a point — a suggestion for the
/// installer, not a determination (areas are polygons; near a boundary, check).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AreaSuggestion {
    /// 3-digit area code.
    pub code: &'static str,
    /// Area name.
    pub name: &'static str,
    /// Distance from the point to the area's centroid (km).
    pub distance_km: f64,
}

#[derive(Debug)]
struct Centroid {
    code: &'static str,
    name: &'static str,
    lat: f64,
    lon: f64,
}

fn parse_centroids(text: &'static str) -> Result<Vec<Centroid>, String> {
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .enumerate()
    {
        let mut cols = line.split(',').map(str::trim);
        let (Some(code), Some(name), Some(lat), Some(lon), None) = (
            cols.next(),
            cols.next(),
            cols.next(),
            cols.next(),
            cols.next(),
        ) else {
            return Err(format!("row {n}: expected 4 columns"));
        };
        let lat = lat.parse().map_err(|e| format!("row {n}: lat {e}"))?;
        let lon = lon.parse().map_err(|e| format!("row {n}: lon {e}"))?;
        out.push(Centroid {
            code,
            name,
            lat,
            lon,
        });
    }
    Ok(out)
}

static AREA_CENTROIDS: LazyLock<Vec<Centroid>> = LazyLock::new(|| {
    parse_centroids(CENTROIDS)
        .expect("the compiled-in area centroid table parses (checked by the unit tests)")
});

/// One forecast area's polygon centroid, from the compiled-in table.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct AreaCentroid {
    /// 3-digit area code.
    pub code: &'static str,
    /// Area name.
    pub name: &'static str,
    /// Latitude of the centroid (degrees).
    pub lat: f64,
    /// Longitude of the centroid (degrees).
    pub lon: f64,
}

/// Every forecast area's centroid (JMA's 188, in code order): the only geography compiled
/// in, used to suggest a site's area and to place the what-if preview's reference
/// earthquakes.
pub fn area_centroids() -> impl Iterator<Item = AreaCentroid> {
    AREA_CENTROIDS.iter().map(|c| AreaCentroid {
        code: c.code,
        name: c.name,
        lat: c.lat,
        lon: c.lon,
    })
}

/// The forecast area with the nearest centroid (of JMA's 188), or `None` for non-finite
/// coordinates.
pub fn suggest_area(lat: f64, lon: f64) -> Option<AreaSuggestion> {
    if !lat.is_finite() || !lon.is_finite() {
        return None;
    }
    AREA_CENTROIDS
        .iter()
        .map(|c| (c, chain::haversine_km(lat, lon, c.lat, c.lon)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, distance_km)| AreaSuggestion {
            code: c.code,
            name: c.name,
            distance_km,
        })
}

impl Site {
    /// A checked site. `area_code` `None` takes the area with the nearest centroid
    /// ([`suggest_area`]); callers that take the suggestion should show it to the installer.
    pub fn new(
        lat: f64,
        lon: f64,
        amplification: Amplification,
        area_code: Option<&str>,
    ) -> Result<Site, SiteError> {
        if !(LAT_RANGE.0..=LAT_RANGE.1).contains(&lat) {
            return Err(SiteError::Latitude(lat));
        }
        if !(LON_RANGE.0..=LON_RANGE.1).contains(&lon) {
            return Err(SiteError::Longitude(lon));
        }
        match amplification {
            Amplification::Arv400(v) if !(v > 0.0 && v <= ARV400_MAX) => {
                return Err(SiteError::Arv400(v));
            }
            Amplification::Avs30(v) if !(AVS30_RANGE.0..=AVS30_RANGE.1).contains(&v) => {
                return Err(SiteError::Avs30(v));
            }
            _ => {}
        }
        let area_code = match area_code {
            Some(code) => {
                let code = code.trim();
                if codes::FORECAST_AREA.name(code).is_none() {
                    return Err(SiteError::UnknownArea(code.to_owned()));
                }
                code.to_owned()
            }
            None => suggest_area(lat, lon)
                .map(|s| s.code.to_owned())
                // Finite coordinates (checked above) always have a nearest centroid.
                .ok_or(SiteError::Latitude(lat))?,
        };
        Ok(Site {
            lat,
            lon,
            amplification,
            area_code,
        })
    }

    /// PGV amplification from Vs 600 m/s bedrock to the surface: `rock_factor × ARV400`,
    /// or Fujimoto & Midorikawa (2006) from AVS30 (where `rock_factor` plays no part).
    pub fn arv600(&self, rock_factor: f64) -> f64 {
        match self.amplification {
            Amplification::Arv400(arv400) => chain::arv600_from_arv400(arv400, rock_factor),
            Amplification::Avs30(avs30) => chain::arv600_from_avs30(avs30),
        }
    }
}

/// What the report's hypocentre gives for the site.
#[derive(Debug, Default)]
struct Geometry {
    epicentral_km: Option<f64>,
    hypocentral_km: Option<f64>,
    depth_km: Option<f64>,
    p_s: Option<(f64, f64)>,
}

fn add_seconds(time: JstTime, seconds: f64) -> Option<JstTime> {
    let ms = (seconds * 1000.0).round();
    if !ms.is_finite() || ms.abs() > 1e12 {
        return None;
    }
    // |ms| <= 1e12 is exact in i64.
    #[allow(clippy::cast_possible_truncation, reason = "|ms| <= 1e12, integral")]
    let delta = TimeDelta::try_milliseconds(ms as i64)?;
    time.0.checked_add_signed(delta).map(JstTime)
}

fn empty(report: &Report, mode: PredictionMode) -> Prediction {
    Prediction {
        mode,
        intensity_class: None,
        area_range: None,
        instrumental_intensity: None,
        point_source_class: None,
        long_period_class: None,
        arrival: Arrival::Unknown,
        p_arrival: None,
        s_travel_time_s: None,
        p_travel_time_s: None,
        epicentral_distance_km: None,
        hypocentral_distance_km: None,
        fault_distance_km: None,
        pgv600_cm_s: None,
        pgv_cm_s: None,
        class_basis: ClassBasis::None,
        arrival_basis: ArrivalBasis::None,
        floor_applied: false,
        notes: Vec::new(),
        flags: report.flags,
    }
}

/// Builds the prediction. Pure; total over every [`Report`] value (no panics, no
/// arithmetic that can overflow; non-finite intermediates become "no value").
pub(super) fn predict_for_site(
    report: &Report,
    site: &Site,
    settings: &PredictionSettings,
) -> Prediction {
    let mut out = empty(report, settings.mode);
    let notes = &mut out.notes;

    if report.kind == Kind::Cancel || report.info_type == InfoType::Cancel {
        notes.push("cancel_report");
        return out;
    }
    if !report.actionable {
        notes.push("report_not_actionable");
    }

    let area = report.area(&site.area_code);
    if area.is_none() {
        notes.push("area_not_listed");
        if report.areas.is_empty() {
            notes.push("no_area_forecasts");
        }
    }
    if area.is_some_and(|a| a.plum) {
        notes.push("plum_area");
    }

    // Geometry, whenever the hypocentre is real.
    let geometry = geometry(report, site, notes);
    out.epicentral_distance_km = geometry.epicentral_km;
    out.hypocentral_distance_km = geometry.hypocentral_km;
    if let Some((p, s)) = geometry.p_s {
        out.p_travel_time_s = Some(p);
        out.s_travel_time_s = Some(s);
        out.p_arrival = report.origin_time.and_then(|t| add_seconds(t, p));
    }
    let travel_time_arrival = geometry
        .p_s
        .and_then(|(_, s)| report.origin_time.and_then(|t| add_seconds(t, s)));
    if geometry.p_s.is_some() && report.origin_time.is_none() {
        notes.push("origin_time_unknown");
    }

    // Long-period class: never understated.
    out.long_period_class = match area.and_then(|a| a.long_period_class) {
        Some(class) => Some(class),
        None => {
            if report.max_long_period_class.is_some() {
                notes.push("long_period_from_report_max");
            }
            report.max_long_period_class
        }
    };

    out.area_range = area.map(|a| a.intensity);
    match settings.mode {
        PredictionMode::Area => area_class(&mut out, area),
        PredictionMode::Site => site_class(&mut out, report, site, settings, area, &geometry),
    }
    arrival(&mut out, settings.mode, area, travel_time_arrival);
    out
}

fn geometry(report: &Report, site: &Site, notes: &mut Vec<&'static str>) -> Geometry {
    let Some(hypo) = &report.hypocenter else {
        notes.push("no_hypocenter");
        return Geometry::default();
    };
    if hypo.assumed {
        notes.push("assumed_hypocenter");
        return Geometry::default();
    }
    if report.flags.level_method {
        // The "hypocentre" of a level-method report is the triggering station.
        notes.push("level_method");
        return Geometry::default();
    }
    let epicentral = chain::haversine_km(hypo.lat, hypo.lon, site.lat, site.lon);
    if !epicentral.is_finite() {
        notes.push("no_hypocenter");
        return Geometry::default();
    }
    let mut g = Geometry {
        epicentral_km: Some(epicentral),
        ..Geometry::default()
    };
    let Some(depth) = hypo.depth_km.map(f64::from) else {
        notes.push("depth_unknown");
        return g;
    };
    if hypo.depth_km.is_some_and(|d| d > DEEP_EVENT_KM) || report.flags.deep {
        notes.push("deep_event");
    }
    g.depth_km = Some(depth);
    g.hypocentral_km = Some(epicentral.hypot(depth));
    g.p_s = traveltime::p_s_times(depth, epicentral);
    if g.p_s.is_none() {
        notes.push("outside_travel_time_table");
    }
    g
}

fn area_class(out: &mut Prediction, area: Option<&AreaForecast>) {
    match area {
        Some(a) => {
            out.intensity_class = Some(a.intensity.max_class());
            out.class_basis = if a.plum {
                ClassBasis::PlumArea
            } else {
                ClassBasis::AreaForecast
            };
        }
        None => out.class_basis = ClassBasis::NotListed,
    }
}

/// The point-source value when the rules allow one; otherwise the reason is noted.
fn point_source_value(
    report: &Report,
    site: &Site,
    settings: &PredictionSettings,
    geometry: &Geometry,
    notes: &mut Vec<&'static str>,
) -> Option<PointSource> {
    // Missing, assumed and level-method hypocentres were noted with the geometry.
    let (Some(epicentral), Some(depth)) = (geometry.epicentral_km, geometry.depth_km) else {
        return None;
    };
    if depth > f64::from(DEEP_EVENT_KM) || report.flags.deep {
        // Noted as deep_event with the geometry; JMA predicts no intensity there either.
        return None;
    }
    let Some(mj) = report.magnitude else {
        notes.push("magnitude_unknown");
        return None;
    };
    let value = chain::point_source(
        mj,
        settings.mw_offset,
        depth,
        epicentral,
        site.arv600(settings.rock_factor),
    );
    if value.is_none() {
        notes.push("point_source_not_computable");
    }
    value
}

fn site_class(
    out: &mut Prediction,
    report: &Report,
    site: &Site,
    settings: &PredictionSettings,
    area: Option<&AreaForecast>,
    geometry: &Geometry,
) {
    let value = point_source_value(report, site, settings, geometry, &mut out.notes);
    if let Some(v) = &value {
        out.instrumental_intensity = Some(v.instrumental_intensity);
        out.point_source_class = Some(v.class);
        out.fault_distance_km = Some(v.fault_distance_km);
        out.pgv600_cm_s = Some(v.pgv600_cm_s);
        out.pgv_cm_s = Some(v.pgv_cm_s);
    }
    // JMA's floor for the site: the lower bound of a point-source area, the stated class
    // of a PLUM area.
    let floor: Option<(Intensity, ClassBasis)> = area.map(|a| {
        if a.plum {
            (a.intensity.max_class(), ClassBasis::PlumArea)
        } else {
            (a.intensity.lower, ClassBasis::AreaFloor)
        }
    });
    match (value.map(|v| v.class), floor) {
        (Some(own), Some((floor, basis))) if floor > own => {
            out.intensity_class = Some(floor);
            out.class_basis = basis;
            out.floor_applied = true;
            out.notes.push("area_floor_applied");
        }
        (Some(own), _) => {
            out.intensity_class = Some(own);
            out.class_basis = ClassBasis::PointSource;
        }
        (None, Some((floor, basis))) => {
            out.intensity_class = Some(floor);
            out.class_basis = basis;
            out.notes.push("area_lower_bound_only");
        }
        (None, None) => {
            out.class_basis = ClassBasis::None;
        }
    }
}

fn arrival(
    out: &mut Prediction,
    mode: PredictionMode,
    area: Option<&AreaForecast>,
    travel_time: Option<JstTime>,
) {
    let from_area = |a: &AreaForecast| -> Option<(Arrival, ArrivalBasis)> {
        if a.plum {
            Some((Arrival::Imminent, ArrivalBasis::Plum))
        } else if a.arrived {
            Some((Arrival::Arrived, ArrivalBasis::AreaArrived))
        } else {
            a.arrival
                .map(|time| (Arrival::At { time }, ArrivalBasis::AreaForecast))
        }
    };
    let own = travel_time.map(|time| (Arrival::At { time }, ArrivalBasis::TravelTime));
    let chosen = match mode {
        // JMA's area values first; the site's own travel time fills the gaps.
        PredictionMode::Area => area.and_then(from_area).or(own),
        // PLUM areas have no countdown; otherwise the site's own travel time, and JMA's
        // area values only when there is none (no usable hypocentre).
        PredictionMode::Site => match area.filter(|a| a.plum) {
            Some(a) => from_area(a),
            None => {
                if own.is_some() && area.is_some_and(|a| a.arrived) {
                    out.notes.push("area_reported_arrived");
                }
                own.or_else(|| area.and_then(from_area))
            }
        },
    };
    match chosen {
        Some((arrival, basis)) => {
            out.arrival = arrival;
            out.arrival_basis = basis;
        }
        None => {
            out.notes.push("arrival_unknown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_centroid_table_covers_every_forecast_area() {
        let centroids = parse_centroids(CENTROIDS).unwrap();
        assert_eq!(centroids.len(), 188);
        for c in &centroids {
            assert_eq!(
                codes::FORECAST_AREA.name(c.code),
                Some(c.name),
                "{}",
                c.code
            );
            assert!((LAT_RANGE.0..=LAT_RANGE.1).contains(&c.lat));
            assert!((LON_RANGE.0..=LON_RANGE.1).contains(&c.lon));
        }
    }

    #[test]
    fn sites_are_checked() {
        let arv = Amplification::Arv400(1.0);
        assert!(Site::new(35.68, 139.76, arv, Some("350")).is_ok());
        assert_eq!(
            Site::new(10.0, 139.76, arv, None),
            Err(SiteError::Latitude(10.0))
        );
        assert!(matches!(
            Site::new(f64::NAN, 139.76, arv, None),
            Err(SiteError::Latitude(_))
        ));
        assert_eq!(
            Site::new(35.0, 160.0, arv, None),
            Err(SiteError::Longitude(160.0))
        );
        for bad in [0.0, -1.0, 10.5, f64::NAN] {
            assert!(matches!(
                Site::new(35.0, 139.0, Amplification::Arv400(bad), None),
                Err(SiteError::Arv400(_))
            ));
        }
        assert!(Site::new(35.0, 139.0, Amplification::Arv400(10.0), None).is_ok());
        for bad in [99.0, 1501.0, f64::INFINITY] {
            assert!(matches!(
                Site::new(35.0, 139.0, Amplification::Avs30(bad), None),
                Err(SiteError::Avs30(_))
            ));
        }
        assert_eq!(
            Site::new(35.0, 139.0, arv, Some("999")),
            Err(SiteError::UnknownArea("999".into()))
        );
        let err = Site::new(35.0, 139.0, arv, Some("999")).unwrap_err();
        assert!(err.to_string().contains("999"));
    }

    #[test]
    fn arrival_time_adds_milliseconds() {
        let t = JstTime::from_parts(2024, 1, 1, 23, 59, 50).unwrap();
        assert_eq!(
            add_seconds(t, 12.3456).unwrap().to_rfc3339(),
            "2024-01-02T00:00:02.346+09:00"
        );
        assert_eq!(add_seconds(t, f64::NAN), None);
        assert_eq!(add_seconds(t, 1e300), None);
    }
}
