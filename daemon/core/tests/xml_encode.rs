//! `telegram::jma_xml_encode` against the parser: every report of the fixture corpus,
//! whatever format it came in, written as JMA XML and parsed again, is the same report —
//! but for the fields XML does not carry (format, product, issuing system). Reports XML
//! cannot express must be refused, never written as something else.

#![allow(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    clippy::panic,
    reason = "a test harness over fixture files"
)]

use std::path::Path;

use eew_core::telegram::jma_xml_encode::{EncodeError, encode, product_for};
use eew_core::{Format, Kind, Report};

fn normalized(mut r: Report) -> Report {
    r.format = Format::JmaXml;
    r.product = eew_core::Product::Vxse45;
    r.issuing_system = None;
    r
}

#[test]
fn every_fixture_report_survives_the_round_trip_or_is_refused_for_a_stated_reason() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/telegrams");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.to_string_lossy();
            !n.ends_with(".expected.json")
                && (n.ends_with(".txt") || n.ends_with(".xml") || n.ends_with(".json"))
        })
        .collect();
    names.sort();
    let (mut round_trips, mut refused) = (0, 0);
    for path in names {
        let Ok(report) = eew_core::parse(&std::fs::read(&path).unwrap()) else {
            continue;
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match encode(&report) {
            Ok(xml) => {
                let back = eew_core::parse(xml.as_bytes())
                    .unwrap_or_else(|r| panic!("{name}: the written XML is rejected: {r}\n{xml}"));
                assert_eq!(back.format, Format::JmaXml, "{name}");
                assert_eq!(back.product, product_for(&report), "{name}");
                assert_eq!(
                    normalized(back),
                    normalized(report),
                    "{name}: the report read back differs\n{xml}"
                );
                round_trips += 1;
            }
            Err(EncodeError::Unsupported(_)) => {
                assert!(
                    matches!(report.kind, Kind::Cancel | Kind::DeliveryTest),
                    "{name}: refused as unsupported though it is a {:?}",
                    report.kind
                );
                refused += 1;
            }
            Err(e @ EncodeError::Unrepresentable { .. }) => {
                // Only an area that is neither arrived, PLUM nor timed has no XML form.
                assert!(
                    report
                        .areas
                        .iter()
                        .any(|a| !a.arrived && !a.plum && a.arrival.is_none()),
                    "{name}: refused ({e}) though every area is expressible"
                );
                refused += 1;
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    // The corpus has forecasts and warnings of every format, and a few cancels.
    assert!(
        round_trips >= 60,
        "only {round_trips} reports round-tripped"
    );
    assert!(
        refused >= 1,
        "the corpus has cancels, which XML writes as another document"
    );
}

#[test]
fn training_plum_long_period_and_fractional_times_are_kept() {
    // A real VXSE44 (an arrived area, timed areas) made a training report with a PLUM
    // area, long-period classes and an issue time to the millisecond: every one of those
    // survives.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/telegrams");
    let xml = std::fs::read_to_string(
        dir.join("jmaxml_vxse44_20240417_bungo_36_01_05_serial5_forecast.xml"),
    )
    .unwrap();
    let mut r = eew_core::parse(xml.as_bytes()).unwrap();
    r.status = eew_core::Status::Training;
    r.issued_at = r
        .issued_at
        .map(|t| eew_core::JstTime(t.0 + chrono::TimeDelta::milliseconds(250)));
    r.max_long_period_class = Some(2);
    if let Some(a) = r.areas.first_mut() {
        a.long_period = eew_core::LongPeriodRange::new(1, eew_core::Upper::Over);
        a.long_period_class = Some(1);
    }
    if let Some(a) = r.areas.iter_mut().find(|a| a.arrival.is_some()) {
        a.plum_predicted_at = a.arrival.take();
        a.plum = true;
    }
    // What the parser derives from a PLUM area (the mutated report must be one it could
    // have produced).
    r.flags.plum = true;
    let back = eew_core::parse(encode(&r).unwrap().as_bytes()).unwrap();
    assert_eq!(back.status, eew_core::Status::Training);
    assert!(back.flags.plum && back.areas.iter().any(|a| a.plum));
    assert_eq!(back.max_long_period_class, Some(2));
    assert_eq!(back.issued_at, r.issued_at);
    assert_eq!(normalized(back), normalized(r));
}

#[test]
fn areas_xml_cannot_express_are_refused() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/telegrams");
    let xml = std::fs::read_to_string(
        dir.join("jmaxml_vxse44_20240417_bungo_36_01_05_serial5_forecast.xml"),
    )
    .unwrap();
    let mut r = eew_core::parse(xml.as_bytes()).unwrap();
    let a = r.areas.first_mut().unwrap();
    a.arrived = false;
    a.plum = false;
    a.arrival = None;
    assert!(matches!(
        encode(&r),
        Err(EncodeError::Unrepresentable { .. })
    ));
    r.issued_at = None;
    assert_eq!(encode(&r), Err(EncodeError::Missing("issue time")));
}
