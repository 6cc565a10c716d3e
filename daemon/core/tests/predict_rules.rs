//! The rules of site prediction (`eew_core::predict`), on real parsed telegrams and on
//! copies of them altered one field at a time.

use eew_core::predict::{
    self, Amplification, Arrival, ArrivalBasis, ClassBasis, PredictionMode, PredictionSettings,
    Site, chain, suggest_area, traveltime,
};
use eew_core::report::{JstTime, Report};
use eew_core::{Intensity, IntensityRange, Upper};

const OSAKA: &str = include_str!("fixtures/telegrams/20180618_osaka_ncn011_warning.txt");
const PLUM_ONLY: &str =
    include_str!("fixtures/telegrams/20260308_type36_plum_only_ncn905_final.txt");
const IWATE_PLUM: &str = include_str!("fixtures/telegrams/20211006_iwateoki_ncn916_final_plum.txt");
const CANCEL: &str = include_str!("fixtures/telegrams/20120108_ncn003_cancel.txt");
const UNKNOWN_DEPTH: &str =
    include_str!("fixtures/telegrams/20160610_ncn001_unknown_depth_mag.txt");
const NOTO_XML: &str =
    include_str!("fixtures/telegrams/jmaxml_vxse43_20240116_notooki_serial1_warning_real.xml");

fn parse(text: &str) -> Report {
    eew_core::parse(text.as_bytes()).expect("a fixture that parses")
}

fn settings(mode: PredictionMode) -> PredictionSettings {
    PredictionSettings {
        mode,
        ..PredictionSettings::default()
    }
}

const AREA: PredictionMode = PredictionMode::Area;
const SITE: PredictionMode = PredictionMode::Site;

fn site(lat: f64, lon: f64, arv400: f64, area: &str) -> Site {
    Site::new(lat, lon, Amplification::Arv400(arv400), Some(area)).expect("a valid site")
}

/// Mie-chūbu (461): 4〜5- with an arrival time 07:58:51 in the Osaka report.
fn mie(arv400: f64) -> Site {
    site(34.62, 136.31, arv400, "461")
}

fn time(s: &str) -> JstTime {
    JstTime::from_datetime(chrono::DateTime::parse_from_rfc3339(s).expect("RFC 3339"))
}

#[test]
fn area_mode_takes_jma_class_and_arrival_for_a_listed_area() {
    let report = parse(OSAKA);
    let p = predict::predict(&report, &mie(1.0), &settings(AREA));
    assert_eq!(p.mode, AREA);
    assert_eq!(p.intensity_class, Some(Intensity::FiveLower));
    assert_eq!(
        p.area_range,
        IntensityRange::new(Intensity::Four, Upper::At(Intensity::FiveLower))
    );
    assert_eq!(p.class_basis, ClassBasis::AreaForecast);
    assert_eq!(
        p.arrival,
        Arrival::At {
            time: time("2018-06-18T07:58:51+09:00")
        }
    );
    assert_eq!(p.arrival_basis, ArrivalBasis::AreaForecast);
    // Geometry is informational in area mode; no point-source value is computed.
    let delta = p.epicentral_distance_km.unwrap();
    let expected = chain::haversine_km(34.8, 135.6, 34.62, 136.31);
    assert!((delta - expected).abs() < 1e-9);
    let (tp, ts) = traveltime::p_s_times(10.0, delta).unwrap();
    assert_eq!(p.s_travel_time_s, Some(ts));
    assert_eq!(p.p_travel_time_s, Some(tp));
    assert!(p.hypocentral_distance_km.unwrap() > delta);
    assert!(p.instrumental_intensity.is_none() && p.pgv_cm_s.is_none());
    assert!(!p.floor_applied);
}

#[test]
fn area_mode_open_range_counts_as_its_lower_bound() {
    let report = parse(PLUM_ONLY); // area 212: 4 or more, PLUM
    let p = predict::predict(&report, &site(39.9, 141.2, 1.0, "212"), &settings(AREA));
    assert_eq!(p.intensity_class, Some(Intensity::Four));
    assert_eq!(p.area_range.unwrap().upper, Upper::Over);
    assert_eq!(p.class_basis, ClassBasis::PlumArea);
}

#[test]
fn area_mode_arrived_area() {
    let report = parse(OSAKA); // 520 大阪府北部: 6-〜6+, already arrived
    let p = predict::predict(&report, &site(34.78, 135.55, 1.0, "520"), &settings(AREA));
    assert_eq!(p.intensity_class, Some(Intensity::SixUpper));
    assert_eq!(p.arrival, Arrival::Arrived);
    assert_eq!(p.arrival_basis, ArrivalBasis::AreaArrived);
    assert_eq!(p.remaining_s(time("2018-06-18T07:58:50+09:00")), None);
}

#[test]
fn area_mode_not_listed_uses_travel_time_and_gives_no_class() {
    let report = parse(OSAKA);
    let tokyo = site(35.68, 139.76, 1.0, "350");
    let p = predict::predict(&report, &tokyo, &settings(AREA));
    assert_eq!(p.intensity_class, None);
    assert_eq!(p.area_range, None);
    assert_eq!(p.class_basis, ClassBasis::NotListed);
    assert!(p.notes.contains(&"area_not_listed"), "{:?}", p.notes);
    assert_eq!(p.arrival_basis, ArrivalBasis::TravelTime);
    let s = p.s_travel_time_s.unwrap();
    assert!(s > 60.0 && s < 120.0, "{s}");
    let Arrival::At { time: at } = p.arrival else {
        panic!("{:?}", p.arrival)
    };
    let origin = report.origin_time.unwrap();
    let ms = at.0.signed_duration_since(origin.0).num_milliseconds();
    assert_eq!(ms, (s * 1000.0).round() as i64);
    // The countdown from a given "now".
    let now = time("2018-06-18T07:58:49+09:00");
    let remaining = p.remaining_s(now).unwrap();
    assert!((remaining - (s - 15.0)).abs() < 0.001, "{remaining}");
    let p_at = p.p_arrival.unwrap();
    assert!(p_at < at);
}

#[test]
fn site_mode_floors_at_jma_lower_bound() {
    let report = parse(OSAKA);
    // Firm ground far from the source: the point source is below JMA's lower bound 4.
    let p = predict::predict(&report, &mie(0.3), &settings(SITE));
    let own = p.point_source_class.unwrap();
    assert!(own < Intensity::Four, "{own}");
    assert_eq!(p.intensity_class, Some(Intensity::Four));
    assert!(p.floor_applied);
    assert_eq!(p.class_basis, ClassBasis::AreaFloor);
    assert!(p.notes.contains(&"area_floor_applied"));
    // Site mode counts down to its own S arrival, not to JMA's area time.
    assert_eq!(p.arrival_basis, ArrivalBasis::TravelTime);
    let i = p.instrumental_intensity.unwrap();
    assert_eq!(chain::class_jma(i), Some(own));
    assert!(p.pgv_cm_s.unwrap() > 0.0 && p.pgv600_cm_s.unwrap() > 0.0);
    assert!(p.fault_distance_km.unwrap() > 3.0);
}

#[test]
fn site_mode_point_source_above_the_floor_is_kept() {
    let report = parse(OSAKA);
    // Soft ground in the same area: at or above the lower bound, the site's own value.
    let p = predict::predict(&report, &mie(3.0), &settings(SITE));
    let own = p.point_source_class.unwrap();
    assert!(own >= Intensity::Four, "{own}");
    assert_eq!(p.intensity_class, Some(own));
    assert!(!p.floor_applied);
    assert_eq!(p.class_basis, ClassBasis::PointSource);
}

#[test]
fn site_mode_unlisted_area_uses_the_point_source_alone() {
    let report = parse(OSAKA);
    let p = predict::predict(&report, &site(35.68, 139.76, 1.0, "350"), &settings(SITE));
    assert_eq!(p.class_basis, ClassBasis::PointSource);
    assert_eq!(p.intensity_class, p.point_source_class);
    assert!(p.intensity_class.unwrap() <= Intensity::Three);
    assert!(p.notes.contains(&"area_not_listed"));
}

#[test]
fn site_mode_never_runs_on_an_assumed_hypocentre() {
    let report = parse(PLUM_ONLY);
    assert!(report.hypocenter.as_ref().unwrap().assumed);
    // In the PLUM area: the PLUM class, imminent, no countdown.
    let p = predict::predict(&report, &site(39.9, 141.2, 2.0, "212"), &settings(SITE));
    assert_eq!(p.instrumental_intensity, None);
    assert_eq!(p.point_source_class, None);
    assert_eq!(p.epicentral_distance_km, None);
    assert_eq!(p.s_travel_time_s, None);
    assert!(p.notes.contains(&"assumed_hypocenter"), "{:?}", p.notes);
    assert_eq!(p.intensity_class, Some(Intensity::Four));
    assert_eq!(p.class_basis, ClassBasis::PlumArea);
    assert_eq!(p.arrival, Arrival::Imminent);
    assert_eq!(p.arrival_basis, ArrivalBasis::Plum);
    assert_eq!(p.remaining_s(time("2026-03-08T22:18:30+09:00")), None);
    // Elsewhere: nothing at all.
    let p = predict::predict(&report, &site(35.68, 139.76, 1.0, "350"), &settings(SITE));
    assert_eq!(p.intensity_class, None);
    assert_eq!(p.class_basis, ClassBasis::None);
    assert_eq!(p.arrival, Arrival::Unknown);
    assert!(p.notes.contains(&"assumed_hypocenter"));
    assert!(p.notes.contains(&"arrival_unknown"));
}

#[test]
fn site_mode_plum_area_gives_at_least_the_plum_class_and_no_countdown() {
    let report = parse(IWATE_PLUM); // 202 青森県三八上北: 5-, PLUM
    let p = predict::predict(&report, &site(40.6, 141.2, 0.5, "202"), &settings(SITE));
    assert!(p.point_source_class.unwrap() < Intensity::FiveLower);
    assert_eq!(p.intensity_class, Some(Intensity::FiveLower));
    assert_eq!(p.class_basis, ClassBasis::PlumArea);
    assert!(p.floor_applied);
    assert_eq!(p.arrival, Arrival::Imminent);
    assert_eq!(p.arrival_basis, ArrivalBasis::Plum);
    // The travel time is still given, for information.
    assert!(p.s_travel_time_s.is_some());
    assert!(p.notes.contains(&"plum_area"));
}

#[test]
fn arrived_areas_in_both_modes() {
    let report = parse(IWATE_PLUM); // 210 岩手県沿岸北部: 4, arrived
    let s = site(39.85, 141.72, 1.0, "210");
    let area = predict::predict(&report, &s, &settings(AREA));
    assert_eq!(area.arrival, Arrival::Arrived);
    assert_eq!(area.intensity_class, Some(Intensity::Four));
    let own = predict::predict(&report, &s, &settings(SITE));
    assert_eq!(own.arrival_basis, ArrivalBasis::TravelTime);
    assert!(own.notes.contains(&"area_reported_arrived"));
}

#[test]
fn deep_events_get_no_point_source_value() {
    let mut report = parse(OSAKA);
    if let Some(h) = report.hypocenter.as_mut() {
        h.depth_km = Some(200);
    }
    report.flags.deep = true;
    let p = predict::predict(&report, &mie(1.0), &settings(SITE));
    assert_eq!(p.instrumental_intensity, None);
    assert!(p.notes.contains(&"deep_event"), "{:?}", p.notes);
    // JMA's lower bound for the listed area still holds.
    assert_eq!(p.intensity_class, Some(Intensity::Four));
    assert_eq!(p.class_basis, ClassBasis::AreaFloor);
    assert!(!p.floor_applied);
    assert!(p.notes.contains(&"area_lower_bound_only"));
    // Travel times are still known (the table reaches 700 km).
    let delta = p.epicentral_distance_km.unwrap();
    assert_eq!(
        p.s_travel_time_s,
        traveltime::p_s_times(200.0, delta).map(|t| t.1)
    );
    // At exactly 150 km the value is still computed.
    let mut report = parse(OSAKA);
    if let Some(h) = report.hypocenter.as_mut() {
        h.depth_km = Some(150);
    }
    let p = predict::predict(&report, &mie(1.0), &settings(SITE));
    assert!(p.instrumental_intensity.is_some());
}

#[test]
fn unknown_magnitude_or_depth_and_level_method_give_no_value() {
    let mut report = parse(OSAKA);
    report.magnitude = None;
    let p = predict::predict(&report, &mie(1.0), &settings(SITE));
    assert_eq!(p.instrumental_intensity, None);
    assert!(p.notes.contains(&"magnitude_unknown"));
    assert_eq!(p.intensity_class, Some(Intensity::Four)); // JMA's lower bound

    let report = parse(UNKNOWN_DEPTH);
    let s = site(35.4, 136.9, 1.0, "432");
    for mode in [AREA, SITE] {
        let p = predict::predict(&report, &s, &settings(mode));
        assert_eq!(p.intensity_class, None);
        assert!(p.epicentral_distance_km.is_some());
        assert_eq!(p.hypocentral_distance_km, None);
        assert_eq!(p.s_travel_time_s, None);
        assert_eq!(p.arrival, Arrival::Unknown);
        for note in [
            "depth_unknown",
            "no_area_forecasts",
            "report_not_actionable",
            "arrival_unknown",
        ] {
            assert!(p.notes.contains(&note), "{note} in {:?}", p.notes);
        }
    }

    let mut report = parse(OSAKA);
    report.flags.level_method = true;
    let p = predict::predict(&report, &site(35.68, 139.76, 1.0, "350"), &settings(SITE));
    assert_eq!(p.instrumental_intensity, None);
    assert_eq!(p.epicentral_distance_km, None);
    assert_eq!(p.intensity_class, None);
    assert!(p.notes.contains(&"level_method"));
}

#[test]
fn cancel_reports_predict_nothing() {
    let report = parse(CANCEL);
    for mode in [AREA, SITE] {
        let p = predict::predict(&report, &site(35.68, 139.76, 1.0, "350"), &settings(mode));
        assert_eq!(p.intensity_class, None);
        assert_eq!(p.class_basis, ClassBasis::None);
        assert_eq!(p.arrival, Arrival::Unknown);
        assert_eq!(p.notes, vec!["cancel_report"]);
    }
}

#[test]
fn arrival_crosses_midnight() {
    let mut report = parse(OSAKA);
    report.origin_time = Some(time("2018-06-18T23:59:50+09:00"));
    let p = predict::predict(&report, &site(35.68, 139.76, 1.0, "350"), &settings(SITE));
    let Arrival::At { time: at } = p.arrival else {
        panic!("{:?}", p.arrival)
    };
    let s = p.s_travel_time_s.unwrap();
    assert!(s > 10.0);
    assert_eq!(
        at.0.date_naive(),
        chrono::NaiveDate::from_ymd_opt(2018, 6, 19).unwrap()
    );
    assert_eq!(
        at.0.signed_duration_since(report.origin_time.unwrap().0)
            .num_milliseconds(),
        (s * 1000.0).round() as i64
    );
    let now = time("2018-06-19T00:00:00+09:00");
    assert!((p.remaining_s(now).unwrap() - (s - 10.0)).abs() < 0.001);
}

#[test]
fn long_period_class_of_the_area_else_the_report_maximum() {
    let report = parse(NOTO_XML);
    let at = |area: &str| predict::predict(&report, &site(37.0, 137.0, 1.0, area), &settings(AREA));
    assert_eq!(at("390").long_period_class, Some(1));
    assert_eq!(at("391").long_period_class, Some(0));
    let elsewhere = at("350");
    assert_eq!(elsewhere.long_period_class, Some(1));
    assert!(elsewhere.notes.contains(&"long_period_from_report_max"));
}

#[test]
fn avs30_converts_like_the_rock_factor_at_400_m_s() {
    let report = parse(OSAKA);
    let by_arv = predict::predict(&report, &mie(1.0), &settings(SITE));
    let by_avs = Site::new(34.62, 136.31, Amplification::Avs30(400.0), Some("461")).unwrap();
    let by_avs = predict::predict(&report, &by_avs, &settings(SITE));
    let (a, b) = (
        by_arv.instrumental_intensity.unwrap(),
        by_avs.instrumental_intensity.unwrap(),
    );
    assert!((a - b).abs() < 0.005, "{a} vs {b}");
    // Softer ground amplifies more.
    let soft = Site::new(34.62, 136.31, Amplification::Avs30(150.0), Some("461")).unwrap();
    let soft = predict::predict(&report, &soft, &settings(SITE));
    assert!(soft.instrumental_intensity.unwrap() > a + 0.5);
    assert!((soft.pgv_cm_s.unwrap() / soft.pgv600_cm_s.unwrap() - soft_arv()).abs() < 1e-9);
}

fn soft_arv() -> f64 {
    chain::arv600_from_avs30(150.0)
}

#[test]
fn suggest_area_finds_tokyo_23_wards() {
    let s = suggest_area(35.68, 139.76).unwrap();
    assert_eq!(s.code, "350");
    assert_eq!(s.name, "東京都２３区");
    assert!(s.distance_km < 5.0);
    let site = Site::new(35.68, 139.76, Amplification::Arv400(1.0), None).unwrap();
    assert_eq!(site.area_code, "350");
    assert_eq!(suggest_area(f64::NAN, 139.0), None);
    // Osaka city centre.
    assert_eq!(suggest_area(34.69, 135.50).unwrap().code, "520");
}

#[test]
fn no_report_and_no_setting_makes_it_panic() {
    let fixtures = [
        OSAKA,
        PLUM_ONLY,
        IWATE_PLUM,
        CANCEL,
        UNKNOWN_DEPTH,
        NOTO_XML,
        include_str!("fixtures/telegrams/20110311_tohoku_ncn012_warning.txt"),
        include_str!("fixtures/telegrams/20110311_tohoku_ncn001_first.txt"),
        include_str!("fixtures/telegrams/20250811_miyakojima_ncn903_final.txt"),
        include_str!("fixtures/telegrams/dmdata_eewinfo_vxse45_rjtd_20110311144811.json"),
    ];
    let sites = [
        site(35.68, 139.76, 1.0, "350"),
        site(24.34, 124.16, 10.0, "805"),
        site(45.4, 141.7, 0.01, "135"),
        Site::new(38.26, 140.87, Amplification::Avs30(100.0), None).unwrap(),
    ];
    let hostile = [
        PredictionSettings::default(),
        PredictionSettings {
            mode: SITE,
            mw_offset: f64::NAN,
            rock_factor: f64::INFINITY,
        },
        PredictionSettings {
            mode: SITE,
            mw_offset: -1e300,
            rock_factor: -1.0,
        },
        PredictionSettings {
            mode: SITE,
            mw_offset: 0.0,
            rock_factor: 0.0,
        },
    ];
    let mut n = 0;
    for text in fixtures {
        let report = parse(text);
        for s in &sites {
            for settings in &hostile {
                let p = predict::predict(&report, s, settings);
                assert!(!p.notes.is_empty() || p.intensity_class.is_some());
                serde_json::to_string(&p).expect("a prediction serializes");
                n += 1;
            }
        }
    }
    assert_eq!(n, 160);
}

proptest::proptest! {
    /// Report values are validated by the parsers, but their fields are public: the
    /// prediction is total over any values whatsoever.
    #[test]
    fn any_hypocentre_and_magnitude_values_are_handled(
        lat in proptest::num::f64::ANY,
        lon in proptest::num::f64::ANY,
        depth in proptest::option::of(proptest::num::u16::ANY),
        magnitude in proptest::option::of(proptest::num::f64::ANY),
        assumed in proptest::bool::ANY,
        origin_s in proptest::option::of(-9_000_000_000_000i64..9_000_000_000_000i64),
        mode_site in proptest::bool::ANY,
    ) {
        let mut report = parse(OSAKA);
        if let Some(h) = report.hypocenter.as_mut() {
            h.lat = lat;
            h.lon = lon;
            h.depth_km = depth;
            h.assumed = assumed;
        }
        report.magnitude = magnitude;
        report.origin_time = origin_s
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map(|t| JstTime::from_datetime(t.fixed_offset()));
        let mode = if mode_site { SITE } else { AREA };
        let p = predict::predict(&report, &mie(1.0), &settings(mode));
        if let Some(i) = p.instrumental_intensity {
            proptest::prop_assert!(i.is_finite());
        }
        proptest::prop_assert!(p.intensity_class.is_some());
    }
}
