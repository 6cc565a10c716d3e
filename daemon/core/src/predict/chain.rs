//! The point-source intensity chain (`intensity-prediction.md` §1.1) and JMA's classes.
//!
//! Why this chain: it is the reconstruction of JMA's own point-source method ("従来法")
//! that reproduces 84% of JMA's telegram area forecasts (and 99.9% within one class) on
//! the validation set in `tests/data/prediction` — every constant below is the one that
//! was validated there; changing one changes the figures `tests/predict_validation.rs`
//! prints.
//!
//! 1. `Mw = Mj − offset`, clamped at 8.3 (the top of Si & Midorikawa's data set).
//! 2. Fault length `L = 10^(0.5·Mw − 1.85)` km (Utsu 1977); the source is a sphere of
//!    radius `L/2` around the hypocentre.
//! 3. Hypocentral distance `R = √(Δ² + D²)`; fault distance `X = max(R − L/2, 3 km)`.
//! 4. Si & Midorikawa (1999), event-type term 0:
//!    `log10 PGV600 = 0.58·Mw + 0.0038·D − 1.29 − log10(X + 0.0028·10^(0.5·Mw)) − 0.002·X`.
//! 5. Surface PGV = PGV600 × ARV600 (see [`arv600_from_arv400`], [`arv600_from_avs30`]).
//! 6. Midorikawa et al. (1999): `I = 2.68 + 1.72·log10 PGV`.
//! 7. Class: JMA's rounding of measured intensity, then the class thresholds
//!    ([`class_jma`]); [`class_plain`] is the unrounded comparison, for reference.

use serde::Serialize;

use crate::intensity::Intensity;

/// Mean Earth radius for great-circle distances (km).
pub const EARTH_RADIUS_KM: f64 = 6371.0;
/// Upper clamp of Mw (top of the Si & Midorikawa 1999 data set).
pub const MAX_MW: f64 = 8.3;
/// Floor of the fault distance X (km).
pub const MIN_FAULT_DISTANCE_KM: f64 = 3.0;

/// Every intermediate of one evaluation of the chain, for display and for tests.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PointSource {
    /// Moment magnitude used (after the offset and the 8.3 clamp).
    pub mw: f64,
    /// Fault length L (km).
    pub fault_length_km: f64,
    /// Source depth D (km).
    pub depth_km: f64,
    /// Epicentral distance Δ (km).
    pub epicentral_distance_km: f64,
    /// Hypocentral distance R (km).
    pub hypocentral_distance_km: f64,
    /// Fault distance X (km).
    pub fault_distance_km: f64,
    /// log10 of PGV on Vs 600 m/s bedrock.
    pub log10_pgv600: f64,
    /// PGV on Vs 600 m/s bedrock (cm/s).
    pub pgv600_cm_s: f64,
    /// Amplification from Vs 600 m/s bedrock to the surface.
    pub arv600: f64,
    /// Surface PGV (cm/s).
    pub pgv_cm_s: f64,
    /// Instrumental intensity, unrounded.
    pub instrumental_intensity: f64,
    /// Class after JMA's rounding ([`class_jma`]).
    pub class: Intensity,
}

/// Great-circle (haversine) distance in km between two points given in degrees.
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// ARV600 from a J-SHIS ARV400 (amplification relative to Vs 400 m/s) and the 600 → 400
/// factor (1.41 J-SHIS-consistent, 1.31 viewer-compatible).
pub fn arv600_from_arv400(arv400: f64, rock_factor: f64) -> f64 {
    rock_factor * arv400
}

/// ARV600 from AVS30 (m/s), Fujimoto & Midorikawa (2006): `10^(2.367 − 0.852·log10 AVS30)`
/// (≈ 1.41 at 400 m/s, ≈ 1 at 600 m/s).
pub fn arv600_from_avs30(avs30: f64) -> f64 {
    10f64.powf(2.367 - 0.852 * avs30.log10())
}

/// Runs the chain for magnitude `mj` (JMA), depth `depth_km`, epicentral distance
/// `epicentral_distance_km` and site amplification `arv600`. `None` when an input is not
/// finite, a distance or depth is negative, `arv600` is not positive, or the result is
/// not finite. Depth gating (no value deeper than 150 km) is the caller's decision.
pub fn point_source(
    mj: f64,
    mw_offset: f64,
    depth_km: f64,
    epicentral_distance_km: f64,
    arv600: f64,
) -> Option<PointSource> {
    let inputs = [mj, mw_offset, depth_km, epicentral_distance_km, arv600];
    if inputs.iter().any(|v| !v.is_finite())
        || depth_km < 0.0
        || epicentral_distance_km < 0.0
        || arv600 <= 0.0
    {
        return None;
    }
    let mw = (mj - mw_offset).min(MAX_MW);
    let fault_length_km = 10f64.powf(0.5 * mw - 1.85);
    let hypocentral_distance_km = epicentral_distance_km.hypot(depth_km);
    let fault_distance_km =
        (hypocentral_distance_km - fault_length_km / 2.0).max(MIN_FAULT_DISTANCE_KM);
    let x = fault_distance_km;
    let log10_pgv600 = 0.58 * mw + 0.0038 * depth_km
        - 1.29
        - (x + 0.0028 * 10f64.powf(0.5 * mw)).log10()
        - 0.002 * x;
    let pgv600_cm_s = 10f64.powf(log10_pgv600);
    let pgv_cm_s = pgv600_cm_s * arv600;
    let instrumental_intensity = 2.68 + 1.72 * pgv_cm_s.log10();
    let class = class_jma(instrumental_intensity)?;
    let result = PointSource {
        mw,
        fault_length_km,
        depth_km,
        epicentral_distance_km,
        hypocentral_distance_km,
        fault_distance_km,
        log10_pgv600,
        pgv600_cm_s,
        arv600,
        pgv_cm_s,
        instrumental_intensity,
        class,
    };
    [
        result.log10_pgv600,
        result.pgv_cm_s,
        result.instrumental_intensity,
    ]
    .iter()
    .all(|v| v.is_finite())
    .then_some(result)
}

/// Class thresholds in tenths of intensity: 0.5 → 1, 1.5 → 2, … 6.5 → 7 (lower bound
/// inclusive).
const THRESHOLDS_TENTHS: [(i64, Intensity); 9] = [
    (65, Intensity::Seven),
    (60, Intensity::SixUpper),
    (55, Intensity::SixLower),
    (50, Intensity::FiveUpper),
    (45, Intensity::FiveLower),
    (35, Intensity::Four),
    (25, Intensity::Three),
    (15, Intensity::Two),
    (5, Intensity::One),
];

/// The class of an intensity already expressed in tenths (45 = 4.5 → 5-).
pub fn class_from_tenths(tenths: i64) -> Intensity {
    THRESHOLDS_TENTHS
        .iter()
        .find(|&&(t, _)| tenths >= t)
        .map_or(Intensity::Zero, |&(_, class)| class)
}

/// JMA's rounding of a measured intensity, in tenths: round half up at the hundredths,
/// then drop everything below the tenths (4.495 → 4.50 → 45; 4.4949 → 4.49 → 44).
///
/// Done in decimal on the shortest representation of `intensity` that reads back as the
/// same `f64` — the decimal number the value stands for — so binary-float artefacts cannot
/// move a value across a class boundary (4.495 is stored as 4.49499999999999966…, yet is
/// 4.495). Negative values are rounded symmetrically (they are all class 0). Values are
/// clamped to ±100 first (far beyond any class). `None` for NaN or infinities.
pub fn jma_rounded_tenths(intensity: f64) -> Option<i64> {
    if !intensity.is_finite() {
        return None;
    }
    let clamped = intensity.clamp(-100.0, 100.0);
    let text = format!("{}", clamped.abs());
    let (whole, frac) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let whole: i64 = whole.parse().ok()?;
    let digit = |i: usize| -> i64 {
        frac.as_bytes()
            .get(i)
            .filter(|b| b.is_ascii_digit())
            .map_or(0, |b| i64::from(b - b'0'))
    };
    let mut hundredths = whole * 100 + digit(0) * 10 + digit(1);
    if digit(2) >= 5 {
        hundredths += 1;
    }
    let tenths = hundredths / 10;
    Some(if clamped < 0.0 { -tenths } else { tenths })
}

/// [`jma_rounded_tenths`] as a number (4.495 → 4.5).
pub fn jma_rounded(intensity: f64) -> Option<f64> {
    // Tenths of values clamped to ±100 are exact in f64.
    #[allow(clippy::cast_precision_loss, reason = "|tenths| <= 1000")]
    jma_rounded_tenths(intensity).map(|t| t as f64 / 10.0)
}

/// The class after JMA's rounding of measured intensity (the rule used for predictions,
/// so predicted and observed classes follow one rule). `None` for NaN or infinities.
pub fn class_jma(intensity: f64) -> Option<Intensity> {
    jma_rounded_tenths(intensity).map(class_from_tenths)
}

/// The class by plain comparison with the thresholds, without rounding (4.495 → 4).
/// `None` for NaN.
pub fn class_plain(intensity: f64) -> Option<Intensity> {
    if intensity.is_nan() {
        return None;
    }
    const THRESHOLDS: [(f64, Intensity); 9] = [
        (6.5, Intensity::Seven),
        (6.0, Intensity::SixUpper),
        (5.5, Intensity::SixLower),
        (5.0, Intensity::FiveUpper),
        (4.5, Intensity::FiveLower),
        (3.5, Intensity::Four),
        (2.5, Intensity::Three),
        (1.5, Intensity::Two),
        (0.5, Intensity::One),
    ];
    Some(
        THRESHOLDS
            .iter()
            .find(|&&(t, _)| intensity >= t)
            .map_or(Intensity::Zero, |&(_, class)| class),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worked_example_of_the_reference() {
        // Mj 7.171 (Mw 7.0), D 10 km, X 20 km → log PGV600 = 1.3078.
        let r = (20.0f64 + 10f64.powf(0.5 * 7.0 - 1.85) / 2.0).powi(2) - 100.0;
        let ps = point_source(7.171, 0.171, 10.0, r.sqrt(), 1.41).unwrap();
        assert!((ps.mw - 7.0).abs() < 1e-12);
        assert!((ps.fault_distance_km - 20.0).abs() < 1e-9);
        assert!(
            (ps.log10_pgv600 - 1.3078).abs() < 1e-4,
            "{}",
            ps.log10_pgv600
        );
        // The reference text gives I = 5.77 for this example, but its own formulas give
        // 2.68 + 1.72·log10(20.32 × 1.41) = 5.19 — 5強, the class it states; 5.77 is the
        // chain-vector row at Δ = 20 km (X = 4.0 km), checked in tests/predict_vectors.rs.
        assert!(
            (ps.instrumental_intensity - 5.186).abs() < 0.001,
            "{}",
            ps.instrumental_intensity
        );
        assert_eq!(ps.class, Intensity::FiveUpper);
    }

    #[test]
    fn fault_distance_floor_and_magnitude_clamp() {
        let near = point_source(7.0, 0.171, 0.0, 0.0, 1.0).unwrap();
        assert_eq!(near.fault_distance_km, MIN_FAULT_DISTANCE_KM);
        let great = point_source(9.9, 0.171, 10.0, 100.0, 1.0).unwrap();
        assert_eq!(great.mw, MAX_MW);
        assert!(point_source(f64::NAN, 0.171, 10.0, 1.0, 1.0).is_none());
        assert!(point_source(5.0, 0.171, -1.0, 1.0, 1.0).is_none());
        assert!(point_source(5.0, 0.171, 10.0, 1.0, 0.0).is_none());
    }

    #[test]
    fn avs30_conversion_matches_the_rock_factor() {
        assert!((arv600_from_avs30(400.0) - 1.41).abs() < 0.005);
        assert!((arv600_from_avs30(600.0) - 1.0).abs() < 0.02);
        assert!((arv600_from_arv400(2.0, 1.41) - 2.82).abs() < 1e-12);
    }

    #[test]
    fn rounding_is_decimal() {
        assert_eq!(jma_rounded_tenths(4.495), Some(45));
        assert_eq!(jma_rounded_tenths(4.4949), Some(44));
        assert_eq!(jma_rounded_tenths(4.49499999), Some(44));
        assert_eq!(jma_rounded_tenths(6.495), Some(65));
        assert_eq!(jma_rounded_tenths(0.0), Some(0));
        assert_eq!(jma_rounded_tenths(-3.0), Some(-30));
        assert_eq!(jma_rounded_tenths(7.0), Some(70));
        assert_eq!(jma_rounded_tenths(1e300), Some(1000));
        assert_eq!(jma_rounded_tenths(f64::NAN), None);
        assert_eq!(class_jma(4.495), Some(Intensity::FiveLower));
        assert_eq!(class_plain(4.495), Some(Intensity::Four));
        assert_eq!(class_jma(1e-30), Some(Intensity::Zero));
        assert_eq!(class_plain(f64::NEG_INFINITY), Some(Intensity::Zero));
        assert_eq!(class_plain(f64::NAN), None);
    }

    #[test]
    fn haversine_known_distance() {
        // One degree of latitude.
        let d = haversine_km(35.0, 139.0, 36.0, 139.0);
        assert!((d - 111.195).abs() < 0.01, "{d}");
        assert_eq!(haversine_km(35.0, 139.0, 35.0, 139.0), 0.0);
    }
}
