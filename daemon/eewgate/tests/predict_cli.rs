//! `eewgate predict` through the real binary: the chain's numbers for a bare hypocentre,
//! reports from files and stdin, error lines and usage errors.

#![allow(
    clippy::panic,
    reason = "test helpers name the row or value that failed"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/fixtures/telegrams")
        .join(name)
}

fn eewgate(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the eewgate binary starts");
    let mut pipe = child.stdin.take().expect("stdin was piped");
    if let Some(bytes) = stdin {
        let _ = pipe.write_all(bytes);
    }
    drop(pipe);
    child
        .wait_with_output()
        .expect("the child runs to completion")
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .expect("stdout is UTF-8 JSON")
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is one JSON object"))
        .collect()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is a number"))
}

/// A site `km` north of (35.0, 139.0) along the meridian: epicentral distance exactly `km`.
fn site_north_of_35_139(km: f64) -> String {
    let lat = 35.0 + km / (6371.0 * std::f64::consts::PI / 180.0);
    format!("{lat:.12},139.0")
}

#[test]
fn hypocentre_form_gives_the_chain_vector_numbers() {
    // intensity_chain_vectors.csv: Mj 7.0, D 10 km, Δ 20 km, ARV400 1.0, ×1.41 →
    // Mw 6.829, X 4.0177 km, log PGV600 1.648100, I 5.7714, class 6-.
    let site = site_north_of_35_139(20.0);
    let out = eewgate(
        &[
            "predict",
            "--site",
            &site,
            "--arv",
            "1.0",
            "--area",
            "441",
            "--hypocenter",
            "35.0,139.0,10",
            "--magnitude",
            "7.0",
            "--origin-time",
            "2024-01-01T23:59:55+09:00",
            "--now",
            "2024-01-01T23:59:57+09:00",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objs = lines(&out);
    assert_eq!(objs.len(), 1);
    let p = &objs[0];
    for key in [
        "instrumental_intensity",
        "intensity_class",
        "s_travel_time_s",
        "p_travel_time_s",
        "epicentral_distance_km",
        "hypocentral_distance_km",
        "pgv_cm_s",
        "mode",
        "class_basis",
        "notes",
        "arrival",
        "arrival_basis",
        "remaining_s",
        "point_source",
        "site",
    ] {
        assert!(p.get(key).is_some(), "key {key} missing in {p}");
    }
    assert_eq!(p["mode"], "site");
    assert!((f(&p["epicentral_distance_km"]) - 20.0).abs() < 1e-6);
    assert!((f(&p["hypocentral_distance_km"]) - 22.3607).abs() < 1e-4);
    assert!((f(&p["fault_distance_km"]) - 4.0177).abs() < 1e-4);
    assert!((f(&p["point_source"]["log10_pgv600"]) - 1.648100).abs() < 1e-4);
    assert!((f(&p["point_source"]["mw"]) - 6.829).abs() < 1e-9);
    assert!((f(&p["pgv_cm_s"]) - 62.707405).abs() < 1e-3);
    assert!((f(&p["instrumental_intensity"]) - 5.7714).abs() < 1e-3);
    assert_eq!(p["intensity_class"], "6-");
    assert_eq!(p["point_source_class"], "6-");
    assert_eq!(p["class_basis"], "point_source");
    // JMA2001 at D 10 km: 20 km → S 6.7 s (the reference's example).
    let s = f(&p["s_travel_time_s"]);
    assert!((s - 6.682).abs() < 0.01, "{s}");
    assert!(f(&p["p_travel_time_s"]) < s);
    assert_eq!(p["arrival"]["state"], "at");
    assert_eq!(p["arrival_basis"], "travel_time");
    // Origin 23:59:55 + 6.68 s crosses midnight.
    let at = p["arrival"]["time"].as_str().unwrap();
    assert!(at.starts_with("2024-01-02T00:00:01."), "{at}");
    assert!((f(&p["remaining_s"]) - (s - 2.0)).abs() < 0.001);
    assert_eq!(p["site"]["area_code"], "441");
    assert_eq!(p["site"]["area_suggested"], false);
    assert!(p.get("input").is_none());
}

#[test]
fn hypocentre_form_without_origin_time_or_now_omits_the_countdown() {
    let out = eewgate(
        &[
            "predict",
            "--site",
            "35.68,139.76",
            "--avs30",
            "400",
            "--hypocenter",
            "35.0,139.0,10",
            "--magnitude",
            "5.0",
        ],
        None,
    );
    assert!(out.status.success());
    let p = &lines(&out)[0];
    assert_eq!(p["arrival"]["state"], "unknown");
    assert!(p.get("remaining_s").is_none());
    assert!(f(&p["s_travel_time_s"]) > 0.0);
    assert_eq!(p["site"]["area_code"], "350");
    assert_eq!(p["site"]["area_suggested"], true);
    assert!((f(&p["site"]["arv600"]) - 1.41).abs() < 0.005);
    // Deep sources: no intensity, but travel times.
    let out = eewgate(
        &[
            "predict",
            "--site",
            "35.68,139.76",
            "--arv",
            "1",
            "--hypocenter",
            "35.0,139.0,400",
            "--magnitude",
            "6.0",
        ],
        None,
    );
    let p = &lines(&out)[0];
    assert_eq!(p["instrumental_intensity"], Value::Null);
    assert_eq!(p["intensity_class"], Value::Null);
    assert!(
        p["notes"]
            .as_array()
            .unwrap()
            .contains(&"deep_event".into())
    );
    assert!(f(&p["s_travel_time_s"]) > 0.0);
}

#[test]
fn report_files_in_both_modes() {
    let osaka = fixture("20180618_osaka_ncn011_warning.txt");
    let osaka = osaka.to_str().unwrap();
    let args = |mode: &str| {
        vec![
            "predict".to_owned(),
            "--site".into(),
            "34.62,136.31".into(),
            "--arv".into(),
            "0.3".into(),
            "--area".into(),
            "461".into(),
            "--mode".into(),
            mode.into(),
            osaka.into(),
        ]
    };
    let run = |mode: &str| {
        let a = args(mode);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = eewgate(&a, None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines(&out).remove(0)
    };
    let area = run("area");
    assert_eq!(area["mode"], "area");
    assert_eq!(area["event_id"], "20180618075838");
    assert_eq!(area["serial"], 11);
    assert_eq!(area["input"], osaka);
    assert_eq!(area["intensity_class"], "5-");
    assert_eq!(area["class_basis"], "area_forecast");
    assert_eq!(area["arrival"]["time"], "2018-06-18T07:58:51+09:00");
    assert_eq!(area["instrumental_intensity"], Value::Null);
    assert!(f(&area["s_travel_time_s"]) > 0.0);

    let site = run("site");
    assert_eq!(site["mode"], "site");
    assert_eq!(site["intensity_class"], "4");
    assert_eq!(site["floor_applied"], true);
    assert_eq!(site["class_basis"], "area_floor");
    assert!(f(&site["instrumental_intensity"]) < 3.5);
    assert_eq!(site["arrival_basis"], "travel_time");
}

#[test]
fn stdin_and_plum_reports() {
    let text = std::fs::read(fixture("20260308_type36_plum_only_ncn905_final.txt")).unwrap();
    let out = eewgate(
        &[
            "predict",
            "--site",
            "39.9,141.2",
            "--arv",
            "1",
            "--area",
            "212",
            "-",
        ],
        Some(&text),
    );
    assert!(out.status.success());
    let p = &lines(&out)[0];
    assert_eq!(p["input"], "-");
    assert_eq!(p["intensity_class"], "4");
    assert_eq!(p["class_basis"], "plum_area");
    assert_eq!(p["arrival"]["state"], "imminent");
    assert_eq!(p["instrumental_intensity"], Value::Null);
    let notes = p["notes"].as_array().unwrap();
    assert!(notes.contains(&"assumed_hypocenter".into()), "{notes:?}");
}

#[test]
fn rejected_and_unreadable_inputs_are_error_lines_with_status_one() {
    let good = fixture("20180618_osaka_ncn011_warning.txt");
    let bad = fixture("malformed_truncated_no_terminator.txt");
    let out = eewgate(
        &[
            "predict",
            "--site",
            "34.62,136.31",
            "--arv",
            "1",
            bad.to_str().unwrap(),
            "/nonexistent/telegram.txt",
            good.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let objs = lines(&out);
    assert_eq!(objs.len(), 3);
    assert_eq!(objs[0]["error"], "rejected");
    assert_eq!(objs[0]["reason"], "truncated");
    assert_eq!(objs[0]["input"], bad.to_str().unwrap());
    assert_eq!(objs[1]["error"], "unreadable");
    assert_eq!(objs[1]["reason"], "io");
    assert_eq!(objs[2]["serial"], 11);

    let out = eewgate(
        &["predict", "--site", "34.62,136.31", "--arv", "1", "-"],
        Some(b"hello world"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines(&out)[0]["reason"], "unknown_format");
}

#[test]
fn bad_arguments_exit_two_with_a_message() {
    let hypo = ["--hypocenter", "35,139,10", "--magnitude", "5"];
    let cases: &[(&[&str], &str)] = &[
        (&["--site", "35,139"], "--arv"),
        (
            &["--site", "35,139", "--arv", "1", "--avs30", "300"],
            "cannot be used",
        ),
        (&["--site", "10,139", "--arv", "1"], "latitude"),
        (&["--site", "35,170", "--arv", "1"], "longitude"),
        (&["--site", "35,139", "--arv", "0"], "ARV400"),
        (&["--site", "35,139", "--avs30", "50"], "AVS30"),
        (&["--site", "35,139", "--arv", "1", "--area", "999"], "999"),
        (&["--site", "35;139", "--arv", "1"], "LAT,LON"),
        (&["--site", "35,139", "--arv", "x"], "not a number"),
        (
            &["--site", "35,139", "--arv", "1", "--mode", "pinpoint"],
            "pinpoint",
        ),
        (
            &["--site", "35,139", "--arv", "1", "--now", "soon"],
            "RFC 3339",
        ),
        (
            &["--site", "35,139", "--arv", "1", "--rock-factor", "0"],
            "greater than 0",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["predict"];
        all.extend_from_slice(args);
        all.extend_from_slice(&hypo);
        let out = eewgate(&all, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {stderr}");
        assert!(stderr.contains(needle), "{all:?}: {stderr}");
        assert!(out.stdout.is_empty());
        assert!(!stderr.contains("panicked"));
    }
    // Neither a hypocentre nor files; a hypocentre without magnitude; both forms at once.
    for args in [
        vec!["predict", "--site", "35,139", "--arv", "1"],
        vec![
            "predict",
            "--site",
            "35,139",
            "--arv",
            "1",
            "--hypocenter",
            "35,139,10",
        ],
        vec![
            "predict",
            "--site",
            "35,139",
            "--arv",
            "1",
            "--hypocenter",
            "35,139,10",
            "--magnitude",
            "5",
            "file.txt",
        ],
        vec![
            "predict",
            "--site",
            "35,139",
            "--arv",
            "1",
            "--hypocenter",
            "35,139,800",
            "--magnitude",
            "5",
        ],
    ] {
        let out = eewgate(&args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn parse_still_works() {
    let out = eewgate(
        &[
            "parse",
            fixture("20180618_osaka_ncn011_warning.txt")
                .to_str()
                .unwrap(),
        ],
        None,
    );
    assert!(out.status.success());
    assert_eq!(lines(&out)[0]["serial"], 11);
}
