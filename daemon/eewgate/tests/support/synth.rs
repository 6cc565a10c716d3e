//! Many distinct, valid code telegrams from one real one: the 2011 Tohoku warning
//! `20110311_tohoku_ncn009_warning.txt` (multi-line, with an EBI block), renumbered.
//!
//! Only fields of fixed width are rewritten, so JMA's fixed line lengths still hold:
//!
//! - the event id (`ND` + 14 digits) is the original's plus `event` seconds — it must stay
//!   within an hour of the origin time, so `event` is at most [`MAX_EVENT`];
//! - the report number (`NCN0nn`: serials 1–99 as digits, 100–359 as letter + digit);
//! - optionally every time in it (header issue time, origin time, event id, the EBI
//!   arrival times) moved together so that the issue time is a given instant: such a
//!   report is fresh and the engine acts on it (an old one is `stale_report`).
//!
//! Shared by the system tests and the latency benchmark (`#[path]` includes).

#![allow(dead_code, reason = "shared by several targets; each uses a part")]

use std::path::{Path, PathBuf};

use chrono::{Duration as TimeDelta, NaiveDate, NaiveDateTime, NaiveTime};

/// The real telegram everything is made from.
pub const BASE_FILE: &str = "20110311_tohoku_ncn009_warning.txt";

/// Largest event offset (s) that keeps the event id within an hour of the origin time.
pub const MAX_EVENT: u32 = 3000;

/// Largest serial a code telegram can carry (`Z9`).
pub const MAX_SERIAL: u32 = 359;

/// The fixture directory of real telegrams.
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures/telegrams")
}

/// The base telegram's text.
pub fn base() -> String {
    std::fs::read_to_string(fixture_dir().join(BASE_FILE)).expect("the base fixture is readable")
}

/// The base telegram's event id (its detection time), JST.
fn base_event_time() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2011, 3, 11)
        .and_then(|d| d.and_hms_opt(14, 46, 40))
        .expect("a real time")
}

/// `NCN` + status digit + two characters for `serial` (1–359).
fn ncn(serial: u32) -> String {
    assert!(
        (1..=MAX_SERIAL).contains(&serial),
        "serial {serial} out of 1–{MAX_SERIAL}"
    );
    if serial < 100 {
        format!("NCN0{serial:02}")
    } else {
        let letter = char::from(b'A' + u8::try_from(serial / 10 - 10).expect("A–Z"));
        format!("NCN0{letter}{}", serial % 10)
    }
}

/// The base telegram with event id `event` seconds after the original's, report number
/// `serial`, and — when `issued` is given — every time moved so it was issued then.
pub fn telegram(base: &str, event: u32, serial: u32, issued: Option<NaiveDateTime>) -> Vec<u8> {
    assert!(event <= MAX_EVENT, "event offset {event} > {MAX_EVENT}");
    let header_issue = |t: &str| NaiveDateTime::parse_from_str(t, "%y%m%d%H%M%S").ok();
    // Split into tokens, keeping the whitespace between them as it is.
    let mut pieces: Vec<(String, String)> = Vec::new();
    let mut token = String::new();
    let mut space = String::new();
    for c in base.chars() {
        if c.is_whitespace() {
            space.push(c);
        } else {
            if !space.is_empty() {
                pieces.push((std::mem::take(&mut token), std::mem::take(&mut space)));
            }
            token.push(c);
        }
    }
    pieces.push((token, space));
    let issue0 = pieces
        .get(3)
        .and_then(|(t, _)| header_issue(t))
        .expect("the header's issue time");
    let shift = issued.map_or(TimeDelta::zero(), |at| at - issue0);
    let ebi = pieces.iter().position(|(t, _)| t == "EBI");
    let mut out = String::with_capacity(base.len());
    for (i, (t, s)) in pieces.iter().enumerate() {
        let new = if i == 3 || i == 5 {
            let at = header_issue(t).expect("a yymmddhhmmss time") + shift;
            at.format("%y%m%d%H%M%S").to_string()
        } else if t.len() == 16 && t.starts_with("ND") {
            let at = base_event_time() + shift + TimeDelta::seconds(i64::from(event));
            format!("ND{}", at.format("%Y%m%d%H%M%S"))
        } else if t.starts_with("NCN") && t.len() == 6 {
            ncn(serial)
        } else if ebi.is_some_and(|e| i > e && (i - e - 1) % 4 == 2)
            && t.len() == 6
            && t.bytes().all(|b| b.is_ascii_digit())
        {
            let time = NaiveTime::parse_from_str(t, "%H%M%S").expect("an hhmmss arrival");
            (issue0.date().and_time(time) + shift)
                .format("%H%M%S")
                .to_string()
        } else {
            t.clone()
        };
        out.push_str(&new);
        out.push_str(s);
    }
    out.into_bytes()
}

/// `n` distinct telegrams: event `first_event + i / 99`, serial `i % 99 + 1` (each event
/// counts its serials up, as a real sequence does), old times (stale).
pub fn sequence(base: &str, first_event: u32, n: u32) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| telegram(base, first_event + i / 99, i % 99 + 1, None))
        .collect()
}

/// The event id `telegram(_, event, _, None)` carries.
pub fn event_id(event: u32) -> String {
    (base_event_time() + TimeDelta::seconds(i64::from(event)))
        .format("%Y%m%d%H%M%S")
        .to_string()
}

/// Writes telegrams as numbered files (`t00000.txt` …) into `dir`, for `eewgate sim`.
pub fn write_files(dir: &Path, telegrams: &[Vec<u8>]) {
    std::fs::create_dir_all(dir).expect("a scratch directory");
    for (i, t) in telegrams.iter().enumerate() {
        std::fs::write(dir.join(format!("t{i:05}.txt")), t).expect("a telegram file");
    }
}
