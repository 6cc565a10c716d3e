//! Validation of the point-source chain against JMA (`intensity-prediction.md` §6.3).
//!
//! 1. **JMA's telegram forecasts** — for every point-source area row of real EEW reports
//!    (`eew_forecast_areas.csv`; PLUM rows and reports on an assumed hypocentre skipped),
//!    the chain is run at every intensity station of the area, the maximum is binned with
//!    JMA's rounding and compared with JMA's `[from, to]` range (`over` = open upper).
//!    Criteria: ≥ 80% inside the range, ≥ 99% within one class, |mean offset| ≤ 0.2 class.
//!    Reference baseline: 84% / 99.9% / −0.08.
//! 2. **Observed intensities** (VXSE53) for the events with a magnitude below 8: the chain
//!    at each station vs the observed class. Criteria: ≥ 95% within one class,
//!    |mean residual| ≤ 0.6 class.
//!
//! Constants: Mw = Mj − 0.171, ARV600 = 1.41 × ARV400, ARV400 from `arv400_eqmonitor`.
//! Stations whose ARV is blank or ≤ 0 (two carry 0.00 in the source) or whose coordinates
//! are unknown are skipped, not given 1.0: a made-up factor would bias the area maximum.
//! Areas with no usable station are counted and skipped.
//!
//! The figures are printed (`cargo test -p eew-core --test predict_validation --
//! --nocapture`); the tests fail when a criterion fails.

#![allow(
    clippy::panic,
    reason = "test helpers name the row or value that failed"
)]

use std::collections::HashMap;

use eew_core::Intensity;
use eew_core::predict::{DEFAULT_MW_OFFSET, DEFAULT_ROCK_FACTOR, chain};
use eew_core::report::DEEP_EVENT_KM;

const STATIONS: &str = include_str!("data/prediction/jma_intensity_stations.csv");
const REPORTS: &str = include_str!("data/prediction/eew_forecast_reports.csv");
const AREAS: &str = include_str!("data/prediction/eew_forecast_areas.csv");
const OBS_EVENTS: &str = include_str!("data/prediction/observed_intensity_events.csv");
const OBS_STATIONS: &str = include_str!("data/prediction/observed_intensity_stations.csv");

type Row = HashMap<String, String>;

/// Splits one CSV line (double-quoted fields may hold commas and `""`).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

fn rows(text: &str) -> Vec<Row> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = split_csv(lines.next().expect("a header line"));
    lines
        .map(|l| {
            let values = split_csv(l);
            assert_eq!(values.len(), header.len(), "{l}");
            header.iter().cloned().zip(values).collect()
        })
        .collect()
}

fn opt_num(row: &Row, key: &str) -> Option<f64> {
    let v = row.get(key)?;
    if v.is_empty() {
        None
    } else {
        Some(v.parse().unwrap_or_else(|e| panic!("{key}={v:?}: {e}")))
    }
}

fn class_index(i: Intensity) -> i32 {
    Intensity::ALL
        .iter()
        .position(|&c| c == i)
        .and_then(|p| i32::try_from(p).ok())
        .expect("every class is in ALL")
}

/// A station with what the chain needs.
struct Station {
    lat: f64,
    lon: f64,
    arv400: f64,
}

/// ARV400 from the EQMonitor column; blank or ≤ 0 is missing.
fn usable_arv(row: &Row) -> Option<f64> {
    opt_num(row, "arv400_eqmonitor").filter(|&v| v > 0.0)
}

fn station_intensity(mj: f64, depth: f64, lat: f64, lon: f64, s: &Station) -> f64 {
    let delta = chain::haversine_km(lat, lon, s.lat, s.lon);
    chain::point_source(
        mj,
        DEFAULT_MW_OFFSET,
        depth,
        delta,
        chain::arv600_from_arv400(s.arv400, DEFAULT_ROCK_FACTOR),
    )
    .expect("finite inputs give a value")
    .instrumental_intensity
}

#[test]
fn point_source_reproduces_jma_area_forecasts() {
    let mut by_area: HashMap<String, Vec<Station>> = HashMap::new();
    let mut skipped_stations = 0;
    for row in rows(STATIONS) {
        let (Some(lat), Some(lon), Some(arv400)) =
            (opt_num(&row, "lat"), opt_num(&row, "lon"), usable_arv(&row))
        else {
            skipped_stations += 1;
            continue;
        };
        if row["area_code"].is_empty() {
            skipped_stations += 1;
            continue;
        }
        by_area
            .entry(row["area_code"].clone())
            .or_default()
            .push(Station { lat, lon, arv400 });
    }

    let reports: HashMap<(String, String), Row> = rows(REPORTS)
        .into_iter()
        .map(|r| ((r["case_id"].clone(), r["report_seq"].clone()), r))
        .collect();
    assert_eq!(reports.len(), 82);

    let (mut n, mut inside, mut within_one, mut offset_sum) = (0u32, 0u32, 0u32, 0i64);
    let (mut below, mut above) = (0u32, 0u32);
    let (mut skipped_plum, mut skipped_assumed, mut skipped_no_station) = (0, 0, 0);
    let area_rows = rows(AREAS);
    assert_eq!(area_rows.len(), 1384);
    for area in &area_rows {
        if area["is_plum"] == "1" {
            skipped_plum += 1;
            continue;
        }
        let report = &reports[&(area["case_id"].clone(), area["report_seq"].clone())];
        if !report["hypocenter_condition"].is_empty() {
            skipped_assumed += 1;
            continue;
        }
        let (Some(lat), Some(lon), Some(depth), Some(mj)) = (
            opt_num(report, "lat"),
            opt_num(report, "lon"),
            opt_num(report, "depth_km"),
            opt_num(report, "mj"),
        ) else {
            panic!("point-source report without hypocentre: {report:?}");
        };
        assert!(depth <= f64::from(DEEP_EVENT_KM));
        let Some(stations) = by_area.get(&area["area_code"]) else {
            skipped_no_station += 1;
            continue;
        };
        let max = stations
            .iter()
            .map(|s| station_intensity(mj, depth, lat, lon, s))
            .fold(f64::NEG_INFINITY, f64::max);
        let predicted = class_index(chain::class_jma(max).expect("finite"));
        let from = class_index(Intensity::from_xml(&area["forecast_from"]).expect("class"));
        let to = match area["forecast_to"].as_str() {
            "over" => None,
            s => Some(class_index(Intensity::from_xml(s).expect("class"))),
        };
        let offset = if predicted < from {
            below += 1;
            predicted - from
        } else if to.is_some_and(|to| predicted > to) {
            above += 1;
            predicted - to.unwrap_or(predicted)
        } else {
            0
        };
        n += 1;
        inside += u32::from(offset == 0);
        within_one += u32::from(offset.abs() <= 1);
        offset_sum += i64::from(offset);
    }
    let pct = |k: u32| 100.0 * f64::from(k) / f64::from(n);
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let mean_offset = offset_sum as f64 / f64::from(n);
    eprintln!(
        "JMA area forecasts: {n} point-source area rows — inside JMA's range {:.1}%, \
         within one class {:.1}%, mean offset {mean_offset:+.3} class \
         ({below} below, {above} above; baseline 84% / 99.9% / -0.08)",
        pct(inside),
        pct(within_one)
    );
    eprintln!(
        "  skipped: {skipped_plum} PLUM rows, {skipped_assumed} rows on an assumed hypocentre, \
         {skipped_no_station} rows of areas without a usable station; \
         {skipped_stations} stations without coordinates, area or ARV"
    );
    assert!(n >= 1200, "only {n} rows compared");
    assert!(
        pct(inside) >= 80.0,
        "inside JMA's range: {:.1}%",
        pct(inside)
    );
    assert!(
        pct(within_one) >= 99.0,
        "within one class: {:.1}%",
        pct(within_one)
    );
    assert!(mean_offset.abs() <= 0.2, "mean offset {mean_offset:+.3}");
}

#[test]
fn point_source_matches_observed_intensities_below_m8() {
    let events: HashMap<String, Row> = rows(OBS_EVENTS)
        .into_iter()
        .map(|r| (r["case_id"].clone(), r))
        .collect();
    assert_eq!(events.len(), 8);
    // case → (n, within one, residual sum)
    let mut per_event: HashMap<String, (u32, u32, i64)> = HashMap::new();
    let mut skipped = 0;
    for row in rows(OBS_STATIONS) {
        let event = &events[&row["case_id"]];
        let Some(mj) = opt_num(event, "mj").filter(|&m| m < 8.0) else {
            continue; // 2011 Tohoku: M given only as "over 8" (finite fault; not a criterion)
        };
        let (lat, lon, depth) = (
            opt_num(event, "lat").expect("event lat"),
            opt_num(event, "lon").expect("event lon"),
            opt_num(event, "depth_km").expect("event depth"),
        );
        let (Some(slat), Some(slon), Some(arv400), Some(observed)) = (
            opt_num(&row, "lat"),
            opt_num(&row, "lon"),
            usable_arv(&row),
            Intensity::from_xml(&row["observed_int"]),
        ) else {
            skipped += 1;
            continue;
        };
        let station = Station {
            lat: slat,
            lon: slon,
            arv400,
        };
        let predicted =
            chain::class_jma(station_intensity(mj, depth, lat, lon, &station)).expect("finite");
        let residual = class_index(predicted) - class_index(observed);
        let e = per_event.entry(row["case_id"].clone()).or_default();
        e.0 += 1;
        e.1 += u32::from(residual.abs() <= 1);
        e.2 += i64::from(residual);
    }
    let mut cases: Vec<_> = per_event.iter().collect();
    cases.sort_by_key(|(case, _)| (*case).clone());
    let (mut n, mut within, mut sum) = (0u32, 0u32, 0i64);
    for (case, &(cn, cw, cs)) in cases {
        #[allow(clippy::cast_precision_loss, reason = "small counts")]
        let mean = cs as f64 / f64::from(cn);
        eprintln!(
            "  {case}: {cn} stations, within one class {:.1}%, mean residual {mean:+.2}",
            100.0 * f64::from(cw) / f64::from(cn)
        );
        n += cn;
        within += cw;
        sum += cs;
    }
    let pct = 100.0 * f64::from(within) / f64::from(n);
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let mean = sum as f64 / f64::from(n);
    eprintln!(
        "Observed intensities (M < 8): {n} stations — within one class {pct:.1}%, \
         mean residual (predicted − observed) {mean:+.3} class; {skipped} station rows \
         skipped (no coordinates, no ARV, or no class)"
    );
    assert!(n >= 1000, "only {n} stations compared");
    assert!(pct >= 95.0, "within one class: {pct:.1}%");
    assert!(mean.abs() <= 0.6, "mean residual {mean:+.3}");
}
