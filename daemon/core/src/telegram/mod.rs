//! Telegram parsers: bytes in any supported EEW format → a validated [`Report`], or a
//! [`Rejection`] with a reason. Nothing here panics on any input (property-tested and
//! fuzzed).
//!
//! - [`jma_code`]: JMA code telegrams (types 35, 36, 37, 39, 47, 48).
//! - [`jma_xml`]: JMA 防災情報XML VXSE42/43/44/45; [`jma_xml_encode`] writes a report
//!   back as such a document (the reference earthquakes of `eewgate whatif`).
//! - [`json`]: DM-D.S.S `eew-information` 1.0.0 bodies and Wolfx `jma_eew` messages.
//! - [`stream`]: a code-telegram byte stream (TCP, serial) split into telegrams.
//! - [`framing`]: link framing — the plain stream, or JMA's socket procedure.
//!
//! [`parse`] detects the format from the bytes ([`detect`]) and dispatches. Every parser
//! ends in [`finish`], which applies the checks common to all formats, so a [`Report`]
//! means the same thing whichever format it came from.

pub mod framing;
pub mod jma_code;
pub mod jma_xml;
pub mod jma_xml_encode;
pub mod json;
mod reject;
pub mod stream;

pub(crate) use reject::reject;
pub use reject::{Reason, Rejection};

use crate::codes;
use crate::intensity::Upper;
use crate::report::{DEEP_EVENT_KM, Kind, Report, Status};

/// Largest input accepted, in bytes. The largest real EEW message (a VXSE45 listing
/// every area, as DM-D.S.S JSON) is well under 200 KiB; anything bigger is not an EEW
/// telegram and is refused before parsing.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// JMA's area of responsibility for EEW epicentres, as a box (degrees). Generous on
/// purpose: it covers every epicentre-name region in code table 41 (Kurils, Sakhalin,
/// the seas around Okinawa); anything outside (or in the southern/western hemisphere)
/// is a corrupted telegram.
pub const LAT_RANGE: (f64, f64) = (15.0, 55.0);
/// See [`LAT_RANGE`].
pub const LON_RANGE: (f64, f64) = (115.0, 160.0);
/// Deepest hypocenter accepted, km.
pub const MAX_DEPTH_KM: u16 = 700;
/// Magnitude range the formats can express (code telegram `mm` = 01..99).
pub const MAGNITUDE_RANGE: (f64, f64) = (0.1, 9.9);
/// Longest plausible gap between origin time and issue time of one EEW report, seconds.
/// Real sequences end within a few minutes; a larger gap means a wrong date field.
pub const MAX_ISSUE_DELAY_S: i64 = 3600;

/// Which format some bytes are in, judged from their content alone.
pub fn detect(bytes: &[u8]) -> Option<crate::Format> {
    use crate::Format;
    let text = trim_start(bytes);
    match text.first()? {
        b'<' => Some(Format::JmaXml),
        b'{' => json::detect(text),
        _ => jma_code::looks_like(text).then_some(Format::JmaCode),
    }
}

/// Parses one telegram in any supported format.
pub fn parse(bytes: &[u8]) -> Result<Report, Rejection> {
    if bytes.len() > MAX_INPUT_BYTES {
        return reject(
            Reason::TooLarge,
            format!(
                "the input is {} bytes; no EEW telegram is larger than {MAX_INPUT_BYTES} bytes",
                bytes.len()
            ),
        );
    }
    let text = trim_start(bytes);
    match text.first() {
        None => reject(Reason::Empty, "the input is empty"),
        Some(b'<') => jma_xml::parse(text),
        Some(b'{') => json::parse(text),
        Some(_) => jma_code::parse(text),
    }
}

/// Decodes a predicted range written as a `From`/`To` pair, as JMA XML and DM-D.S.S JSON
/// both write intensity (`ForecastInt`) and long-period class (`ForecastLgInt`):
/// `不明` for both bounds means not predicted (`None`); `over` is an open upper bound.
/// `path` names the element in messages; `what` describes one valid bound.
pub(crate) fn from_to_range<T, R>(
    path: &str,
    (from, to): (&str, &str),
    what: &str,
    class: impl Fn(&str) -> Option<T>,
    build: impl FnOnce(T, Upper<T>) -> Option<R>,
) -> Result<Option<R>, Rejection> {
    const UNKNOWN: &str = "不明";
    match (from == UNKNOWN, to == UNKNOWN) {
        (true, true) => return Ok(None),
        (false, false) => {}
        _ => {
            return reject(
                Reason::Inconsistent,
                format!("{path} gives {from:?} to {to:?}: only one bound is 不明"),
            );
        }
    }
    let bound = |s: &str, which: &str| {
        class(s).ok_or_else(|| {
            let shown: String = s.chars().take(40).collect();
            Rejection::new(
                Reason::InvalidField,
                format!("{path} {which} {shown:?} is not {what}"),
            )
        })
    };
    let lower = bound(from, "lower bound")?;
    let upper = if to == "over" {
        Upper::Over
    } else {
        Upper::At(bound(to, "upper bound")?)
    };
    build(lower, upper).map(Some).ok_or_else(|| {
        Rejection::new(
            Reason::Inconsistent,
            format!("{path}: the upper bound {to} is below the lower bound {from}"),
        )
    })
}

/// Skips a UTF-8 byte-order mark and leading ASCII whitespace.
fn trim_start(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// The checks every report passes whatever its format, and the derived fields
/// (`flags.deep`, `actionable`). Every parser returns through here.
pub(crate) fn finish(mut report: Report) -> Result<Report, Rejection> {
    // Event id must be a real date-time: it is the key of everything downstream.
    let Some(id_time) = report.event_id.time() else {
        return reject(
            Reason::InvalidField,
            format!(
                "the event id {} is not a valid date and time",
                report.event_id
            ),
        );
    };
    if report.kind == Kind::DeliveryTest && report.status != Status::Test {
        return reject(
            Reason::Inconsistent,
            "a delivery test must have test status",
        );
    }

    if let (Some(issued), Some(origin)) = (report.issued_at, report.origin_time) {
        let delay = issued.0.signed_duration_since(origin.0).num_seconds();
        if delay < 0 {
            return reject(
                Reason::Inconsistent,
                format!("the report was issued at {issued}, before the origin time {origin}"),
            );
        }
        if delay > MAX_ISSUE_DELAY_S {
            return reject(
                Reason::Inconsistent,
                format!(
                    "the report was issued {delay} s after the origin time; an EEW report follows within minutes"
                ),
            );
        }
    }
    // The id is the detection time of the first report; origin or detection times that
    // are hours away from it mean a corrupted date.
    for (what, t) in [
        ("origin time", report.origin_time),
        ("detection time", report.detected_at),
    ] {
        if let Some(t) = t
            && t.0.signed_duration_since(id_time.0).num_seconds().abs() > MAX_ISSUE_DELAY_S
        {
            return reject(
                Reason::Inconsistent,
                format!(
                    "the {what} {t} is far from the time encoded in event id {}",
                    report.event_id
                ),
            );
        }
    }

    if let Some(h) = &report.hypocenter {
        if !(LAT_RANGE.0..=LAT_RANGE.1).contains(&h.lat)
            || !(LON_RANGE.0..=LON_RANGE.1).contains(&h.lon)
        {
            return reject(
                Reason::OutOfRange,
                format!(
                    "the epicentre {:.1}, {:.1} lies outside JMA's area of responsibility",
                    h.lat, h.lon
                ),
            );
        }
        if let Some(d) = h.depth_km
            && d > MAX_DEPTH_KM
        {
            return reject(
                Reason::OutOfRange,
                format!("the depth {d} km is deeper than {MAX_DEPTH_KM} km"),
            );
        }
        if let Some(code) = &h.code
            && codes::EPICENTER.name(code).is_none()
        {
            return reject(
                Reason::UnknownCode,
                format!("the epicentre code {code} is not in JMA's code table 41"),
            );
        }
        report.flags.deep = h.depth_km.is_some_and(|d| d > DEEP_EVENT_KM);
        if h.assumed {
            report.flags.single_station = true;
        }
    }
    if let Some(m) = report.magnitude
        && !(MAGNITUDE_RANGE.0..=MAGNITUDE_RANGE.1).contains(&m)
    {
        return reject(
            Reason::OutOfRange,
            format!(
                "the magnitude {m} is outside {}–{}",
                MAGNITUDE_RANGE.0, MAGNITUDE_RANGE.1
            ),
        );
    }

    let mut seen = std::collections::HashSet::new();
    for area in &report.areas {
        if codes::FORECAST_AREA.name(&area.code).is_none() {
            return reject(
                Reason::UnknownCode,
                format!("the area code {} is not a JMA forecast area", area.code),
            );
        }
        if !seen.insert(area.code.as_str()) {
            return reject(
                Reason::Inconsistent,
                format!("the area {} is listed twice", area.code),
            );
        }
        if (area.arrived || area.plum) && area.arrival.is_some() {
            return reject(
                Reason::Inconsistent,
                format!(
                    "the area {} has an arrival time although it is marked arrived or PLUM",
                    area.code
                ),
            );
        }
        if let (Some(arrival), Some(origin)) = (area.arrival, report.origin_time)
            && arrival < origin
        {
            return reject(
                Reason::Inconsistent,
                format!(
                    "the area {} has an S arrival {arrival} before the origin time {origin}",
                    area.code
                ),
            );
        }
        if area.plum {
            report.flags.plum = true;
        }
    }
    for region in &report.warned_regions {
        let table = match region.level {
            crate::RegionLevel::Region => &codes::REGION,
            crate::RegionLevel::Prefecture => &codes::PREFECTURE,
            crate::RegionLevel::Area => &codes::FORECAST_AREA,
        };
        if table.name(&region.code).is_none() {
            return reject(
                Reason::UnknownCode,
                format!(
                    "the warned region code {} is not in JMA's code tables",
                    region.code
                ),
            );
        }
    }

    let (actionable, why) = actionability(&report);
    report.actionable = actionable;
    report.not_actionable_reason = why;
    Ok(report)
}

/// Whether a report carries what the engine needs to operate outputs. Cancels always do
/// (they release what their event started); a delivery test never does. Otherwise:
/// level-method reports need the detection time, the station position and a predicted
/// intensity; PLUM-only (assumed hypocenter) reports need a predicted intensity; every
/// other report needs origin time, epicentre, depth and magnitude.
fn actionability(r: &Report) -> (bool, Option<&'static str>) {
    let predicted = r.max_intensity.is_some() || !r.areas.is_empty();
    let why = match r.kind {
        Kind::Cancel => None,
        Kind::DeliveryTest => Some("delivery_test"),
        _ if r.hypocenter.is_none() => Some("hypocenter_unknown"),
        _ if r.flags.level_method => {
            if r.detected_at.is_none() && r.origin_time.is_none() {
                Some("detection_time_unknown")
            } else if !predicted {
                Some("intensity_unknown")
            } else {
                None
            }
        }
        _ if r.hypocenter.as_ref().is_some_and(|h| h.assumed) => {
            (!predicted).then_some("intensity_unknown")
        }
        _ if r.origin_time.is_none() => Some("origin_time_unknown"),
        _ if r.hypocenter.as_ref().is_some_and(|h| h.depth_km.is_none()) => Some("depth_unknown"),
        _ if r.magnitude.is_none() => Some("magnitude_unknown"),
        _ => None,
    };
    (why.is_none(), why)
}
