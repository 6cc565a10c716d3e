//! Invariant checks shared by the fuzz targets. They mirror `tests/properties.rs`: every
//! violated invariant panics, which libFuzzer records as a crash.

use std::collections::HashSet;

use eew_core::intensity::MAX_LONG_PERIOD_CLASS;
use eew_core::report::DEEP_EVENT_KM;
use eew_core::telegram::{LAT_RANGE, LON_RANGE, MAGNITUDE_RANGE, MAX_DEPTH_KM};
use eew_core::{
    InfoType, IntensityRange, JstTime, Kind, RegionLevel, Rejection, Report, Status, Upper, codes,
};

/// Keys of the public report JSON.
const REPORT_KEYS: &[&str] = &[
    "format",
    "event_id",
    "serial",
    "final",
    "kind",
    "status",
    "issued_at",
    "origin_time",
    "hypocenter",
    "magnitude",
    "max_intensity",
    "max_long_period_class",
    "areas",
    "flags",
    "issuing_system",
];
const AREA_KEYS: &[&str] = &[
    "code",
    "name",
    "intensity",
    "long_period_class",
    "warning",
    "arrival",
    "arrived",
    "plum",
];
const FLAG_KEYS: &[&str] = &["plum", "deep", "level_method", "single_station"];
const TIME_KEYS: &[&str] = &[
    "issued_at",
    "origin_time",
    "detected_at",
    "arrival",
    "plum_predicted_at",
];

/// A parser's outcome: a report that keeps every invariant, or a rejection with a sentence.
pub fn check_outcome(outcome: &Result<Report, Rejection>) {
    match outcome {
        Ok(report) => check_report(report),
        Err(rejection) => assert!(
            !rejection.message.trim().is_empty(),
            "rejection {:?} has an empty message",
            rejection.reason
        ),
    }
}

fn check_range(what: &str, r: &IntensityRange) {
    if let Upper::At(upper) = r.upper {
        assert!(
            r.lower <= upper,
            "{what}: lower {} above upper {upper}",
            r.lower
        );
    }
}

fn check_time(what: &str, t: Option<JstTime>) {
    if let Some(t) = t {
        assert_eq!(
            t.0.offset().local_minus_utc(),
            9 * 3600,
            "{what} {t} is not JST"
        );
        assert!(t.to_rfc3339().ends_with("+09:00"), "{what} {t}");
    }
}

/// Every invariant a [`Report`] promises.
pub fn check_report(r: &Report) {
    let id = r.event_id.as_str();
    assert!(
        id.len() == 14 && id.bytes().all(|b| b.is_ascii_digit()),
        "event id {id:?} is not 14 digits"
    );
    assert!(
        r.event_id.time().is_some(),
        "event id {id} is not a date and time"
    );
    assert!(r.serial >= 1, "serial {}", r.serial);
    if let Some(max) = &r.max_intensity {
        check_range("max_intensity", max);
    }
    if let Some(class) = r.max_long_period_class {
        assert!(
            class <= MAX_LONG_PERIOD_CLASS,
            "max_long_period_class {class}"
        );
    }
    match &r.hypocenter {
        Some(h) => {
            assert!(
                (LAT_RANGE.0..=LAT_RANGE.1).contains(&h.lat),
                "latitude {}",
                h.lat
            );
            assert!(
                (LON_RANGE.0..=LON_RANGE.1).contains(&h.lon),
                "longitude {}",
                h.lon
            );
            if let Some(d) = h.depth_km {
                assert!(d <= MAX_DEPTH_KM, "depth {d}");
            }
            let deep = h.depth_km.is_some_and(|d| d > DEEP_EVENT_KM);
            assert_eq!(r.flags.deep, deep, "flags.deep for depth {:?}", h.depth_km);
        }
        None => assert!(!r.flags.deep, "flags.deep without a hypocenter"),
    }
    if let Some(m) = r.magnitude {
        assert!(
            (MAGNITUDE_RANGE.0..=MAGNITUDE_RANGE.1).contains(&m),
            "magnitude {m}"
        );
    }
    let mut seen = HashSet::new();
    for a in &r.areas {
        assert!(
            codes::FORECAST_AREA.name(&a.code).is_some(),
            "area code {}",
            a.code
        );
        assert!(seen.insert(a.code.as_str()), "area {} listed twice", a.code);
        check_range(&a.code, &a.intensity);
        if let Some(class) = a.long_period_class {
            assert!(
                class <= MAX_LONG_PERIOD_CLASS,
                "area {} class {class}",
                a.code
            );
        }
        if let Some(lp) = &a.long_period {
            assert!(
                lp.lower <= MAX_LONG_PERIOD_CLASS,
                "area {} long period {lp:?}",
                a.code
            );
            if let Upper::At(u) = lp.upper {
                assert!(
                    lp.lower <= u && u <= MAX_LONG_PERIOD_CLASS,
                    "area {} {lp:?}",
                    a.code
                );
            }
        }
        if a.arrived || a.plum {
            assert!(
                a.arrival.is_none(),
                "area {} arrived/plum with an arrival",
                a.code
            );
        }
        check_time("arrival", a.arrival);
        check_time("plum_predicted_at", a.plum_predicted_at);
    }
    for w in &r.warned_regions {
        let table = match w.level {
            RegionLevel::Region => &codes::REGION,
            RegionLevel::Prefecture => &codes::PREFECTURE,
            RegionLevel::Area => &codes::FORECAST_AREA,
        };
        assert!(table.name(&w.code).is_some(), "warned region {}", w.code);
    }
    assert_eq!(
        r.actionable,
        r.not_actionable_reason.is_none(),
        "actionable"
    );
    assert_eq!(
        r.kind == Kind::Cancel,
        r.info_type == InfoType::Cancel,
        "kind {:?} / info_type {:?}",
        r.kind,
        r.info_type
    );
    if r.kind == Kind::DeliveryTest {
        assert_eq!(r.status, Status::Test, "delivery test status");
    }
    check_time("issued_at", r.issued_at);
    check_time("origin_time", r.origin_time);
    check_time("detected_at", r.detected_at);
    check_json(r);
}

fn check_json(r: &Report) {
    let value = serde_json::to_value(r).expect("a report serializes");
    let obj = value.as_object().expect("a report serializes to an object");
    for key in REPORT_KEYS {
        assert!(obj.contains_key(*key), "report JSON lacks {key}");
    }
    let areas = obj
        .get("areas")
        .and_then(|a| a.as_array())
        .expect("areas is an array");
    for area in areas {
        for key in AREA_KEYS {
            assert!(area.get(*key).is_some(), "area JSON lacks {key}");
        }
    }
    for key in FLAG_KEYS {
        assert!(
            obj.get("flags").and_then(|f| f.get(*key)).is_some(),
            "flags lacks {key}"
        );
    }
    check_json_times(&value);
}

fn check_json_times(value: &serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                if TIME_KEYS.contains(&key.as_str()) {
                    assert!(
                        v.is_null() || v.as_str().is_some_and(|s| s.ends_with("+09:00")),
                        "{key} = {v}"
                    );
                }
                check_json_times(v);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(check_json_times),
        _ => {}
    }
}
