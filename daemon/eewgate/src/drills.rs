//! Recorded events a drill can replay (the web UI's Tests page): real JMA telegram
//! sequences from the corpus, embedded so a drill needs no file on the appliance. A drill
//! replays one as `drill` through the engine (`Input::DrillReport`): every output that
//! includes drills acts, every action is labelled, and real events are untouched.

use std::time::Duration;

use chrono::TimeDelta;
use eew_core::{EventId, JstTime, Report};

/// Embeds corpus files by name (provenance: daemon/core/tests/fixtures/telegrams/index.csv).
macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_bytes!(concat!("../../core/tests/fixtures/telegrams/", $name)))),*]
    };
}

/// JMA's official sample set (2024-06-13 edition) for the 2024-04-17 Bungo-channel
/// earthquake: 32 forecast reports (VXSE44) and the closing 取消.
pub const BUNGO_2024: &[(&str, &[u8])] = fixtures![
    "jmaxml_vxse44_20240417_bungo_36_01_01_serial1_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_02_serial2_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_03_serial3_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_04_serial4_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_05_serial5_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_06_serial6_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_07_serial7_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_08_serial8_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_09_serial9_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_10_serial10_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_11_serial11_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_12_serial12_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_13_serial13_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_14_serial14_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_15_serial15_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_16_serial16_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_17_serial17_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_18_serial18_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_19_serial19_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_20_serial20_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_21_serial21_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_22_serial22_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_23_serial23_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_24_serial24_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_25_serial25_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_26_serial26_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_27_serial27_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_28_serial28_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_29_serial29_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_30_serial30_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_31_serial31_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_32_serial32_forecast.xml",
    "jmaxml_vxse44_20240417_bungo_36_01_33_serial32_cancel.xml",
];

/// The 2011-03-11 Tohoku earthquake: JMA's 1st, 9th (warning) and 12th code telegrams.
pub const TOHOKU_2011: &[(&str, &[u8])] = fixtures![
    "20110311_tohoku_ncn001_first.txt",
    "20110311_tohoku_ncn009_warning.txt",
    "20110311_tohoku_ncn012_warning.txt",
];

/// The 2018-06-18 Osaka-fu Hokubu earthquake: JMA's 11th code telegram (a warning).
pub const OSAKA_2018: &[(&str, &[u8])] = fixtures!["20180618_osaka_ncn011_warning.txt"];

/// One recorded event a drill can replay.
#[derive(Debug)]
pub struct Recorded {
    /// Stable id for the API (`bungo-2024`).
    pub id: &'static str,
    /// For people, Japanese.
    pub title_ja: &'static str,
    /// For people, English.
    pub title_en: &'static str,
    /// The telegrams in order.
    pub telegrams: &'static [(&'static str, &'static [u8])],
}

/// Every recorded event on offer.
pub const RECORDED: &[Recorded] = &[
    Recorded {
        id: "bungo-2024",
        title_ja: "2024年4月17日 豊後水道 M6.6（最大震度6弱）— 33報",
        title_en: "2024-04-17 Bungo Channel M6.6 (max. intensity 6-) — 33 reports",
        telegrams: BUNGO_2024,
    },
    Recorded {
        id: "tohoku-2011",
        title_ja: "2011年3月11日 東北地方太平洋沖地震 — 第1・9・12報",
        title_en: "2011-03-11 Tohoku earthquake — reports 1, 9 and 12",
        telegrams: TOHOKU_2011,
    },
    Recorded {
        id: "osaka-2018",
        title_ja: "2018年6月18日 大阪府北部 — 第11報（警報）",
        title_en: "2018-06-18 northern Osaka — report 11 (warning)",
        telegrams: OSAKA_2018,
    },
];

/// The longest pause a drill keeps between two reports: the real spacing, but a drill
/// should not stand idle for minutes.
pub const MAX_GAP: Duration = Duration::from_secs(10);

/// A drill's plan: each report with its delay after the start, its times shifted so the
/// first report is issued at `now` (so arrival countdowns run as they did).
///
/// The event id is shifted too (the recorded id's date and time moved like the origin
/// time, still 14 digits): every run of a recorded event is an event of its own, so a
/// second run within the hour is not taken for a repeat of the first (the engine drops
/// serials it has seen), and its drill report, keyed by the event id, is its own.
pub fn plan(recorded: &Recorded, now: JstTime) -> Result<Vec<(Duration, Report)>, String> {
    let mut reports = Vec::with_capacity(recorded.telegrams.len());
    for (name, bytes) in recorded.telegrams {
        let r = eew_core::parse(bytes).map_err(|e| format!("{name}: {e:?}"))?;
        reports.push(r);
    }
    let Some(first) = reports.first().and_then(|r| r.issued_at) else {
        return Err(format!(
            "{}: no issue time in the first report",
            recorded.id
        ));
    };
    let shift = now.0.signed_duration_since(first.0);
    let run_id = reports
        .first()
        .and_then(|r| run_event_id(&r.event_id, shift, now));
    let mut at = Duration::ZERO;
    let mut prev = first;
    let mut out = Vec::with_capacity(reports.len());
    for mut r in reports {
        let issued = r.issued_at.unwrap_or(prev);
        let gap = issued
            .0
            .signed_duration_since(prev.0)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_GAP);
        at += gap;
        prev = issued;
        // Each report as if issued at its planned moment (a capped gap shifts the rest).
        let planned = shift + TimeDelta::from_std(at).unwrap_or(TimeDelta::zero())
            - issued.0.signed_duration_since(first.0);
        r.shift_times(planned);
        if let Some(id) = &run_id {
            r.event_id = id.clone();
        }
        out.push((at, r));
    }
    Ok(out)
}

/// The event id of one run: the recorded id's time moved by `shift` (or `now` when the
/// recorded id is not a time), as JMA writes it (yyyymmddhhmmss, JST).
fn run_event_id(recorded: &EventId, shift: TimeDelta, now: JstTime) -> Option<EventId> {
    let at = recorded
        .time()
        .and_then(|t| t.0.checked_add_signed(shift))
        .unwrap_or(now.0);
    EventId::parse(&at.format("%Y%m%d%H%M%S").to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn every_recorded_event_parses_and_plans_from_now() {
        let now =
            JstTime(chrono::DateTime::parse_from_rfc3339("2026-12-04T12:00:00+09:00").unwrap());
        for rec in RECORDED {
            let plan = plan(rec, now).unwrap();
            assert_eq!(plan.len(), rec.telegrams.len(), "{}", rec.id);
            assert_eq!(plan[0].0, Duration::ZERO);
            assert_eq!(plan[0].1.issued_at, Some(now), "{}", rec.id);
            for w in plan.windows(2) {
                assert!(w[1].0 >= w[0].0 && w[1].0 - w[0].0 <= MAX_GAP, "{}", rec.id);
                let at = |i: usize| w[i].1.issued_at.unwrap().0;
                let expect = TimeDelta::from_std(w[1].0 - w[0].0).unwrap();
                assert_eq!(
                    at(1) - at(0),
                    expect,
                    "{}: issue times follow the plan",
                    rec.id
                );
            }
            let ids: std::collections::BTreeSet<_> = plan
                .iter()
                .map(|(_, r)| r.event_id.as_str().to_owned())
                .collect();
            assert_eq!(ids.len(), 1, "{}: one event", rec.id);
            // The run's own id: the recorded one moved like the times.
            let original = eew_core::parse(rec.telegrams[0].1).unwrap().event_id;
            let moved = original.time().unwrap().0 + (now.0 - first_issued(rec));
            let expect = moved.format("%Y%m%d%H%M%S").to_string();
            assert!(ids.contains(&expect), "{}: {ids:?} is not {expect}", rec.id);
            assert!(!ids.contains(original.as_str()), "{}", rec.id);
        }
        // Two runs a second apart are two events.
        let later = JstTime(now.0 + TimeDelta::seconds(1));
        let a = plan(&RECORDED[0], now).unwrap();
        let b = plan(&RECORDED[0], later).unwrap();
        assert_ne!(a[0].1.event_id, b[0].1.event_id);
    }

    fn first_issued(rec: &Recorded) -> chrono::DateTime<chrono::FixedOffset> {
        eew_core::parse(rec.telegrams[0].1)
            .unwrap()
            .issued_at
            .unwrap()
            .0
    }
}
