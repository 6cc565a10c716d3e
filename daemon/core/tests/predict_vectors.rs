//! Test vectors of the prediction reference data (`tests/data/prediction`, provenance in
//! its README): every row of the chain, binning and travel-time vector files.

#![allow(
    clippy::panic,
    reason = "test helpers name the row or value that failed"
)]

use eew_core::Intensity;
use eew_core::predict::chain::{self, PointSource};
use eew_core::predict::traveltime;

const CHAIN: &str = include_str!("data/prediction/intensity_chain_vectors.csv");
const BINNING: &str = include_str!("data/prediction/intensity_binning_vectors.csv");
const FORWARD: &str = include_str!("data/prediction/traveltime_forward_vectors.csv");
const INVERSE: &str = include_str!("data/prediction/traveltime_inverse_vectors.csv");

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

/// Rows as (header → value) lookups.
fn rows(text: &str) -> Vec<std::collections::HashMap<String, String>> {
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

fn num(row: &std::collections::HashMap<String, String>, key: &str) -> f64 {
    row[key]
        .parse()
        .unwrap_or_else(|e| panic!("{key}={:?}: {e}", row[key]))
}

fn class(s: &str) -> Intensity {
    Intensity::from_xml(s).unwrap_or_else(|| panic!("class {s:?}"))
}

fn close(what: &str, got: f64, want: f64, tol: f64, row: usize) {
    assert!(
        (got - want).abs() <= tol,
        "row {row}: {what} = {got}, expected {want} ± {tol}"
    );
}

#[test]
fn every_chain_vector_is_reproduced() {
    let rows = rows(CHAIN);
    assert_eq!(rows.len(), 32);
    for (i, row) in rows.iter().enumerate() {
        let arv600 = chain::arv600_from_arv400(num(row, "arv400"), num(row, "amp_600_to_400"));
        let ps: PointSource = chain::point_source(
            num(row, "mj"),
            num(row, "mj_to_mw_offset"),
            num(row, "depth_km"),
            num(row, "epicentral_distance_km"),
            arv600,
        )
        .expect("finite inputs give a value");
        close("mw", ps.mw, num(row, "mw"), 1e-4, i);
        close(
            "L",
            ps.fault_length_km,
            num(row, "fault_length_km"),
            1e-4,
            i,
        );
        let r = num(row, "hypocentral_distance_km");
        close("R", ps.hypocentral_distance_km, r, 1e-4, i);
        close(
            "X",
            ps.fault_distance_km,
            num(row, "fault_distance_km"),
            1e-4,
            i,
        );
        close(
            "log PGV600",
            ps.log10_pgv600,
            num(row, "log10_pgv600"),
            1e-4,
            i,
        );
        let pgv600 = num(row, "pgv600_cm_s");
        close("PGV600", ps.pgv600_cm_s, pgv600, 1e-5 * pgv600.max(1.0), i);
        let pgv = num(row, "pgv_surface_cm_s");
        close("PGV", ps.pgv_cm_s, pgv, 1e-5 * pgv.max(1.0), i);
        close(
            "I",
            ps.instrumental_intensity,
            num(row, "instrumental_intensity"),
            1e-3,
            i,
        );
        let raw = class(&row["class_raw_threshold"]);
        assert_eq!(
            chain::class_plain(ps.instrumental_intensity),
            Some(raw),
            "row {i} plain class ({})",
            row["variant"]
        );
        let rounded = num(row, "intensity_jma_rounded");
        assert_eq!(
            chain::jma_rounded(ps.instrumental_intensity),
            Some(rounded),
            "row {i}"
        );
        let jma = class(&row["class_after_jma_rounding"]);
        assert_eq!(ps.class, jma, "row {i} JMA class ({})", row["variant"]);
        assert_eq!(chain::class_jma(ps.instrumental_intensity), Some(jma));
    }
}

#[test]
fn every_binning_vector_is_exact() {
    let rows = rows(BINNING);
    assert_eq!(rows.len(), 20);
    for (i, row) in rows.iter().enumerate() {
        let value = num(row, "instrumental_intensity");
        assert_eq!(
            chain::class_plain(value),
            Some(class(&row["class_raw_threshold"])),
            "row {i}: plain class of {value}"
        );
        assert_eq!(
            chain::jma_rounded(value),
            Some(num(row, "intensity_after_jma_rounding")),
            "row {i}: rounding of {value}"
        );
        assert_eq!(
            chain::class_jma(value),
            Some(class(&row["class_after_jma_rounding"])),
            "row {i}: JMA class of {value}"
        );
    }
}

#[test]
fn every_forward_travel_time_vector_is_within_a_millisecond() {
    let rows = rows(FORWARD);
    assert_eq!(rows.len(), 18);
    let mut out_of_range = 0;
    for (i, row) in rows.iter().enumerate() {
        let depth = num(row, "depth_km");
        let distance = num(row, "epicentral_distance_km");
        let got = traveltime::p_s_times(depth, distance);
        if row["expected_p_time_s"].is_empty() {
            assert_eq!(got, None, "row {i}: ({depth}, {distance}) is off the table");
            out_of_range += 1;
            continue;
        }
        let (p, s) = got.unwrap_or_else(|| panic!("row {i}: ({depth}, {distance}) in range"));
        let tol = num(row, "abs_tolerance_s");
        assert!(tol <= 0.001);
        close("P", p, num(row, "expected_p_time_s"), tol, i);
        close("S", s, num(row, "expected_s_time_s"), tol, i);
        close(
            "S alone",
            traveltime::travel_time_s(traveltime::Wave::S, depth, distance).unwrap(),
            s,
            0.0,
            i,
        );
    }
    assert_eq!(out_of_range, 2);
}

#[test]
fn every_inverse_travel_time_vector_is_within_a_micrometre() {
    let rows = rows(INVERSE);
    assert_eq!(rows.len(), 3);
    for (i, row) in rows.iter().enumerate() {
        let (p, s) = traveltime::wavefront_radius_km(num(row, "depth_km"), num(row, "elapsed_s"))
            .unwrap_or_else(|| panic!("row {i} is inside the table"));
        let tol = num(row, "abs_tolerance_km");
        close("P radius", p, num(row, "expected_p_radius_km"), tol, i);
        close("S radius", s, num(row, "expected_s_radius_km"), tol, i);
    }
}
