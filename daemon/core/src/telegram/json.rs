//! JSON inputs: DM-D.S.S `eew-information` 1.0.0 bodies and Wolfx `jma_eew` messages.
//!
//! - **DM-D.S.S** (`_schema.type = "eew-information"`): the conversion of JMA's VXSE42–45
//!   XML. Read field by field with the same meaning as the XML parser: `type` gives the
//!   product, `body.intensity.regions[]` the area forecasts (kind code `x0` arrival,
//!   `x1` arrived, `x9` PLUM), `body.zones/prefectures/regions` the warned regions.
//!   The long-period fields are accepted under both spellings DM-D.S.S has used,
//!   `forecastMaxLgInt` and the older `forecastMaxLpgmInt` (the official VXSE43 sample
//!   still carries the latter).
//! - **Wolfx** (`type = "jma_eew"`): the embedded code telegram `OriginalText` is parsed
//!   with [`super::jma_code`] and is the report; Wolfx's own derived fields are only
//!   cross-checked against it, and any disagreement rejects the message.
//!
//! Other JSON that is recognised (legacy iedred7584 JSON, P2PQuake EPSP code 556, other
//! DM-D.S.S schemas, other Wolfx message types) is refused as an unsupported product;
//! anything else as an unknown format.
//!
//! Values are read from an untyped [`serde_json::Value`] so every rejection can name the
//! exact field. `null` is treated as absent, as the DM-D.S.S schema uses it for
//! "unknown".

use chrono::DateTime;
use serde_json::{Map, Value};

use super::{MAX_DEPTH_KM, Reason, Rejection, finish, jma_code, reject};
use crate::codes::{self, CodeTable};
use crate::intensity::{Intensity, IntensityRange, LongPeriodRange, Upper};
use crate::report::{
    Accuracy, AreaForecast, EventId, Flags, Format, Hypocenter, InfoType, IntensityChange, JstTime,
    Kind, LandOrSea, Product, RegionLevel, Report, Status, WarnedRegion,
};

/// `_schema.type` of DM-D.S.S EEW bodies.
const DMDATA_EEW_SCHEMA: &str = "eew-information";
/// `type` of Wolfx JMA EEW messages.
const WOLFX_JMA_EEW: &str = "jma_eew";
/// Other Wolfx message types: recognised, never EEW reports of JMA.
const WOLFX_OTHER_TYPES: &[&str] = &[
    "heartbeat",
    "pong",
    "jma_eqlist",
    "cenc_eqlist",
    "sc_eew",
    "fj_eew",
    "cenc_eew",
    "cwa_eew",
];
/// Area condition meaning the main motion has arrived (kind code `x1`).
const ARRIVED: &str = "既に主要動到達と推測";
/// Earthquake condition of a PLUM-only report.
const ASSUMED: &str = "仮定震源要素";
/// Tolerance for Wolfx's derived coordinates and magnitude (one decimal on the wire).
const WOLFX_TOLERANCE: f64 = 0.05 + 1e-9;

/// What a JSON object is, judged from its keys.
#[derive(Debug)]
enum Shape<'a> {
    /// DM-D.S.S `eew-information`.
    Dmdata,
    /// DM-D.S.S JSON of another schema type.
    DmdataOther(&'a str),
    /// Wolfx `jma_eew`.
    Wolfx,
    /// Another Wolfx message type.
    WolfxOther(&'a str),
    /// Legacy iedred7584 EEW JSON.
    Iedred,
    /// P2PQuake EPSP JSON; `Some(code)` when the API wrapper gives its code.
    P2pquake(Option<u64>),
    /// Some other distributor's JSON carrying a code telegram in `OriginalText`.
    OtherWithOriginalText,
    /// Not recognised; the `type` value when there is one.
    Unknown(Option<&'a str>),
}

fn shape(map: &Map<String, Value>) -> Shape<'_> {
    if let Some(schema) = map.get("_schema") {
        return match schema.get("type").and_then(Value::as_str) {
            Some(DMDATA_EEW_SCHEMA) => Shape::Dmdata,
            Some(other) => Shape::DmdataOther(other),
            None => Shape::Unknown(None),
        };
    }
    let type_field = map.get("type").and_then(Value::as_str);
    match type_field {
        Some(WOLFX_JMA_EEW) => return Shape::Wolfx,
        Some(t) if WOLFX_OTHER_TYPES.contains(&t) => return Shape::WolfxOther(t),
        _ => {}
    }
    if map.contains_key("ParseStatus") {
        return Shape::Iedred;
    }
    let code = map.get("code").and_then(Value::as_u64);
    if code.is_some() && (map.contains_key("time") || map.contains_key("id")) {
        return Shape::P2pquake(code);
    }
    let epsp_body = map
        .get("issue")
        .is_some_and(|issue| issue.get("eventId").is_some())
        && map.contains_key("earthquake")
        && (map.contains_key("areas") || map.contains_key("cancelled"));
    if epsp_body {
        return Shape::P2pquake(None);
    }
    if map.contains_key("OriginalText") {
        return Shape::OtherWithOriginalText;
    }
    Shape::Unknown(type_field)
}

/// Which JSON format the bytes are, if any supported one.
pub fn detect(bytes: &[u8]) -> Option<Format> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    match shape(value.as_object()?) {
        Shape::Dmdata => Some(Format::DmdataJson),
        Shape::Wolfx => Some(Format::WolfxJson),
        _ => None,
    }
}

/// Parses one JSON message.
pub fn parse(bytes: &[u8]) -> Result<Report, Rejection> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Rejection::new(
            Reason::InvalidEncoding,
            format!(
                "the JSON is not valid UTF-8 (bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        Rejection::new(
            Reason::Malformed,
            format!("the input is not valid JSON: {e}"),
        )
    })?;
    let Some(map) = value.as_object() else {
        return reject(
            Reason::UnknownFormat,
            "the JSON document is not an object, so it is no supported EEW message",
        );
    };
    match shape(map) {
        Shape::Dmdata => parse_dmdata(Obj::root(map)),
        Shape::Wolfx => parse_wolfx(Obj::root(map)),
        Shape::DmdataOther(t) => reject(
            Reason::UnsupportedProduct,
            format!(
                "DM-D.S.S JSON of schema type {t:?} is not an earthquake early warning; only {DMDATA_EEW_SCHEMA} is accepted"
            ),
        ),
        Shape::WolfxOther(t) => reject(
            Reason::UnsupportedProduct,
            format!(
                "Wolfx message type {t:?} is not a JMA earthquake early warning; only {WOLFX_JMA_EEW} is accepted"
            ),
        ),
        Shape::Iedred => reject(
            Reason::UnsupportedProduct,
            "legacy iedred7584 EEW JSON (ParseStatus/OriginalText) is a third-party derivative that is not accepted; feed the code telegram in its OriginalText instead",
        ),
        Shape::P2pquake(None | Some(556)) => reject(
            Reason::UnsupportedProduct,
            "P2PQuake EPSP code-556 EEW JSON is a warning-only derivative of VXSE43 that carries no forecasts below 5弱 and is not accepted as an operational input",
        ),
        Shape::P2pquake(Some(code)) => reject(
            Reason::UnsupportedProduct,
            format!("P2PQuake JSON with code {code} is not an earthquake early warning report"),
        ),
        Shape::OtherWithOriginalText => reject(
            Reason::UnsupportedProduct,
            "this JSON carries a code telegram in OriginalText but is neither Wolfx jma_eew nor DM-D.S.S; feed the code telegram itself instead",
        ),
        Shape::Unknown(Some(t)) => reject(
            Reason::UnknownFormat,
            format!("JSON with type {t:?} is neither DM-D.S.S eew-information nor Wolfx jma_eew"),
        ),
        Shape::Unknown(None) => reject(
            Reason::UnknownFormat,
            "the JSON is neither DM-D.S.S eew-information (no _schema.type) nor Wolfx jma_eew (no type)",
        ),
    }
}

// ---------------------------------------------------------------------------------------
// DM-D.S.S eew-information
// ---------------------------------------------------------------------------------------

fn parse_dmdata(doc: Obj<'_>) -> Result<Report, Rejection> {
    let schema = doc.req_obj("_schema")?;
    let version = schema.req_str("version")?;
    if !version.starts_with("1.") {
        return reject(
            Reason::UnsupportedProduct,
            format!("_schema.version {version:?} of eew-information is not supported; only 1.x is"),
        );
    }

    let title = doc.req_str("type")?;
    let product = match title {
        "緊急地震速報配信テスト" => Product::Vxse42,
        "緊急地震速報（警報）" => Product::Vxse43,
        "緊急地震速報（予報）" => Product::Vxse44,
        "緊急地震速報（地震動予報）" => Product::Vxse45,
        _ => {
            return reject(
                Reason::UnsupportedProduct,
                format!(
                    "type {title:?} is not an EEW product accepted here (VXSE42, 43, 44 or 45)"
                ),
            );
        }
    };
    if let Some(head_title) = doc.opt_str("title")?
        && head_title != title
    {
        return reject(
            Reason::Inconsistent,
            format!("title {head_title:?} differs from type {title:?}"),
        );
    }
    let status = match doc.req_str("status")? {
        "通常" => Status::Normal,
        "訓練" => Status::Training,
        "試験" => Status::Test,
        other => {
            return reject(
                Reason::InvalidField,
                format!("status {other:?} is not 通常, 訓練 or 試験"),
            );
        }
    };
    let info_type = match doc.req_str("infoType")? {
        "発表" | "遅延" => InfoType::Issued,
        "訂正" => InfoType::Correction,
        "取消" => InfoType::Cancel,
        other => {
            return reject(
                Reason::InvalidField,
                format!("infoType {other:?} is not 発表, 訂正, 遅延 or 取消"),
            );
        }
    };
    let id = doc.req_str("eventId")?;
    let event_id = EventId::parse(id).ok_or_else(|| {
        Rejection::new(
            Reason::InvalidField,
            format!("eventId {id:?} is not a 14-digit event id"),
        )
    })?;
    // Every sample carries serialNo, the cancels included (they repeat the last serial, as
    // Head/Serial does in the XML): a document without one is a broken conversion, and
    // inventing a serial would break the ordering of the event's reports downstream.
    let serial = serial_no(&doc)?;
    let issued_at = time(doc.req("reportDateTime")?, &doc.path("reportDateTime"))?;

    let body = doc.req_obj("body")?;
    let is_last = body.req_bool("isLastInfo")?;
    let is_canceled = body.req_bool("isCanceled")?;
    let cancel = info_type == InfoType::Cancel || is_canceled;
    if is_canceled != (info_type == InfoType::Cancel) {
        return reject(
            Reason::Inconsistent,
            if is_canceled {
                "body.isCanceled is true but infoType is not 取消"
            } else {
                "infoType is 取消 but body.isCanceled is false"
            },
        );
    }
    if cancel {
        for key in ["earthquake", "intensity"] {
            if body.opt(key).is_some() {
                return reject(
                    Reason::Inconsistent,
                    format!(
                        "a cancel (取消) carries no {}, but this one does",
                        body.path(key)
                    ),
                );
            }
        }
    }

    let is_warning = body.opt_bool("isWarning")?;
    let quake = match body.opt_obj("earthquake")? {
        Some(e) => Some(Earthquake::parse(&e)?),
        None if cancel || product == Product::Vxse42 => None,
        None => {
            return reject(
                Reason::MissingField,
                "body.earthquake is missing; every VXSE43/44/45 report that is not a cancel carries it",
            );
        }
    };
    let intensity = body
        .opt_obj("intensity")?
        .map(|i| IntensityPart::parse(&i))
        .transpose()?;
    let warned_regions = if cancel {
        Vec::new()
    } else {
        warned_regions(&body)?
    };

    let (max_intensity, max_long_period_class, max_intensity_change, areas) = match intensity {
        Some(i) => (i.max, i.max_long_period_class, i.change, i.areas),
        None => (None, None, None, Vec::new()),
    };
    let any_area_warned = areas.iter().any(|a| a.warning);
    let kind = if cancel {
        Kind::Cancel
    } else if product == Product::Vxse42 {
        Kind::DeliveryTest
    } else if product == Product::Vxse43 || is_warning == Some(true) || any_area_warned {
        Kind::Warning
    } else {
        Kind::Forecast
    };
    if !cancel && is_warning == Some(false) {
        if product == Product::Vxse43 {
            return reject(
                Reason::Inconsistent,
                "body.isWarning is false in a VXSE43 warning",
            );
        }
        if any_area_warned {
            return reject(
                Reason::Inconsistent,
                "body.isWarning is false but an area of body.intensity.regions is under a warning",
            );
        }
    }
    if kind != Kind::Warning && !warned_regions.is_empty() {
        return reject(
            Reason::Inconsistent,
            "body.zones/prefectures/regions list warned regions but nothing in the report is a warning",
        );
    }

    let (origin_time, detected_at, hypocenter, magnitude, accuracy, assumed) = match quake {
        Some(q) => (
            q.origin_time,
            Some(q.arrival_time),
            q.hypocenter,
            q.magnitude,
            q.accuracy,
            q.assumed,
        ),
        None => (None, None, None, None, None, false),
    };
    // 100 gal / level-method reports have no origin time and no magnitude; a PLUM-only
    // (assumed) report has no origin time either but is not level method.
    let level_method = detected_at.is_some() && origin_time.is_none() && !assumed;
    if level_method && magnitude.is_some() {
        return reject(
            Reason::Inconsistent,
            "a report without origin time (level method) has no magnitude, but this one gives one",
        );
    }
    let single_station = accuracy.is_some_and(|a| a.magnitude_stations == Some(1)) || assumed;

    let report = Report {
        format: Format::DmdataJson,
        product,
        event_id,
        serial,
        final_report: is_last && !cancel,
        kind,
        status,
        info_type,
        issued_at: Some(issued_at),
        origin_time,
        detected_at,
        hypocenter,
        magnitude,
        max_intensity,
        max_long_period_class,
        accuracy,
        max_intensity_change,
        areas,
        warned_regions,
        flags: Flags {
            plum: assumed,
            deep: false,
            level_method,
            single_station,
        },
        issuing_system: None,
        actionable: false,
        not_actionable_reason: None,
    };
    finish(report)
}

/// `serialNo`: a string of a positive integer.
fn serial_no(doc: &Obj<'_>) -> Result<u32, Rejection> {
    let path = doc.path("serialNo");
    let n = unsigned(doc.req("serialNo")?, &path)?;
    match u32::try_from(n) {
        Ok(0) => reject(
            Reason::InvalidField,
            format!("{path} is 0; report numbers start at 1"),
        ),
        Ok(serial) => Ok(serial),
        Err(_) => reject(
            Reason::OutOfRange,
            format!("{path} {n} is too large for a report number"),
        ),
    }
}

/// `body.earthquake`.
#[derive(Debug)]
struct Earthquake {
    origin_time: Option<JstTime>,
    arrival_time: JstTime,
    hypocenter: Option<Hypocenter>,
    magnitude: Option<f64>,
    accuracy: Option<Accuracy>,
    assumed: bool,
}

impl Earthquake {
    fn parse(e: &Obj<'_>) -> Result<Self, Rejection> {
        let origin_time = e
            .opt("originTime")
            .map(|v| time(v, &e.path("originTime")))
            .transpose()?;
        let arrival_time = time(e.req("arrivalTime")?, &e.path("arrivalTime"))?;
        let assumed = match e.opt_str("condition")? {
            None => false,
            Some(ASSUMED) => true,
            Some(other) => {
                return reject(
                    Reason::InvalidField,
                    format!("{} {other:?} is not {ASSUMED}", e.path("condition")),
                );
            }
        };

        let h = e.req_obj("hypocenter")?;
        let code = h.opt_str("code")?;
        let name = match code {
            Some(c) => Some(codes::EPICENTER.name(c).ok_or_else(|| {
                Rejection::new(
                    Reason::UnknownCode,
                    format!("{} {c} is not in JMA's code table 41", h.path("code")),
                )
            })?),
            None => h.opt_str("name")?,
        };
        let coordinate = h.req_obj("coordinate")?;
        let lat = coordinate_value(&coordinate, "latitude")?;
        let lon = coordinate_value(&coordinate, "longitude")?;
        let depth_km = depth(&h.req_obj("depth")?)?;
        let land_or_sea = match h.opt_str("landOrSea")? {
            None => None,
            Some("内陸") => Some(LandOrSea::Land),
            Some("海域") => Some(LandOrSea::Sea),
            Some(other) => {
                return reject(
                    Reason::InvalidField,
                    format!("{} {other:?} is not 内陸 or 海域", h.path("landOrSea")),
                );
            }
        };
        let accuracy = h.opt_obj("accuracy")?.map(|a| accuracy(&a)).transpose()?;
        let hypocenter = match (lat, lon) {
            (None, None) => None,
            (Some(lat), Some(lon)) => Some(Hypocenter {
                code: code.map(str::to_owned),
                name: name.map(str::to_owned),
                lat,
                lon,
                depth_km,
                assumed,
                land_or_sea,
            }),
            _ => {
                return reject(
                    Reason::Inconsistent,
                    format!(
                        "{} gives only one of latitude and longitude",
                        coordinate.path
                    ),
                );
            }
        };

        let m = e.req_obj("magnitude")?;
        let magnitude = m
            .opt("value")
            .map(|v| number(v, &m.path("value")))
            .transpose()?;
        Ok(Self {
            origin_time,
            arrival_time,
            hypocenter,
            magnitude,
            accuracy,
            assumed,
        })
    }
}

/// `coordinate.latitude.value` / `longitude.value`; `None` when the axis is absent
/// (DM-D.S.S omits both when the position is unknown).
fn coordinate_value(coordinate: &Obj<'_>, axis: &str) -> Result<Option<f64>, Rejection> {
    match coordinate.opt_obj(axis)? {
        None => Ok(None),
        Some(a) => number(a.req("value")?, &a.path("value")).map(Some),
    }
}

/// `hypocenter.depth`: `value` (km, null when unknown) and `condition`.
fn depth(d: &Obj<'_>) -> Result<Option<u16>, Rejection> {
    let path = d.path("value");
    let value = d.opt("value").map(|v| unsigned(v, &path)).transpose()?;
    let condition_path = d.path("condition");
    let fixed = |want: u16, what: &str| match value {
        Some(v) if v != u64::from(want) => reject(
            Reason::Inconsistent,
            format!("{path} {v} contradicts {condition_path} {what}"),
        ),
        _ => Ok(Some(want)),
    };
    match d.opt_str("condition")? {
        Some("ごく浅い") => fixed(0, "ごく浅い"),
        Some("７００ｋｍ以上") => fixed(MAX_DEPTH_KM, "７００ｋｍ以上"),
        Some("不明") => match value {
            Some(v) => reject(
                Reason::Inconsistent,
                format!("{path} {v} contradicts {condition_path} 不明"),
            ),
            None => Ok(None),
        },
        Some(other) => reject(
            Reason::InvalidField,
            format!("{condition_path} {other:?} is not ごく浅い, ７００ｋｍ以上 or 不明"),
        ),
        None => match value {
            None => Ok(None),
            Some(v) => u16::try_from(v).map(Some).map_err(|_| {
                Rejection::new(
                    Reason::OutOfRange,
                    format!("{path} {v} km is deeper than {MAX_DEPTH_KM} km"),
                )
            }),
        },
    }
}

/// `hypocenter.accuracy`: the same digits as code-telegram RK, 0 meaning unknown.
fn accuracy(a: &Obj<'_>) -> Result<Accuracy, Rejection> {
    let path = a.path("epicenters");
    let epicenters = a.req_array("epicenters")?;
    if epicenters.len() != 2 {
        return reject(
            Reason::Malformed,
            format!("{path} must have 2 elements, not {}", epicenters.len()),
        );
    }
    let rank = |v: Option<&Value>, path: &str, allowed: &[u8]| -> Result<Option<u8>, Rejection> {
        let v = v.ok_or_else(|| missing(path))?;
        digit(v, path, allowed).map(|d| (d != 0).then_some(d))
    };
    Ok(Accuracy {
        epicenter: rank(epicenters.first(), &format!("{path}[0]"), b"012345678")?,
        hypocenter: rank(epicenters.get(1), &format!("{path}[1]"), b"012349")?,
        depth: rank(a.opt("depth"), &a.path("depth"), b"012345678")?,
        magnitude: rank(
            a.opt("magnitudeCalculation"),
            &a.path("magnitudeCalculation"),
            b"0234568",
        )?,
        magnitude_stations: rank(
            a.opt("numberOfMagnitudeCalculation"),
            &a.path("numberOfMagnitudeCalculation"),
            b"012345",
        )?,
    })
}

/// `body.intensity`.
#[derive(Debug)]
struct IntensityPart {
    max: Option<IntensityRange>,
    max_long_period_class: Option<u8>,
    change: Option<IntensityChange>,
    areas: Vec<AreaForecast>,
}

impl IntensityPart {
    fn parse(i: &Obj<'_>) -> Result<Self, Rejection> {
        let max = intensity_range(&i.req_obj("forecastMaxInt")?)?;
        let max_long_period_class = long_period(i)?.map(|r| r.max_class());
        let change = match i.opt_obj("appendix")? {
            None => None,
            Some(a) => Some(IntensityChange {
                change: digit(a.req("maxIntChange")?, &a.path("maxIntChange"), b"012")?,
                reason: a
                    .opt("maxIntChangeReason")
                    .map(|v| digit(v, &a.path("maxIntChangeReason"), b"012349"))
                    .transpose()?,
            }),
        };
        let path = i.path("regions");
        let mut areas = Vec::new();
        for (n, v) in i.req_array("regions")?.iter().enumerate() {
            areas.push(area(&Obj::of(v, format!("{path}[{n}]"))?)?);
        }
        Ok(Self {
            max,
            max_long_period_class,
            change,
            areas,
        })
    }
}

/// One `body.intensity.regions[]` entry.
fn area(r: &Obj<'_>) -> Result<AreaForecast, Rejection> {
    let code = r.req_str("code")?;
    let name = codes::FORECAST_AREA.name(code).ok_or_else(|| {
        Rejection::new(
            Reason::UnknownCode,
            format!("{} {code} is not a JMA forecast area", r.path("code")),
        )
    })?;
    let intensity = intensity_range(&r.req_obj("forecastMaxInt")?)?.ok_or_else(|| {
        Rejection::new(
            Reason::InvalidField,
            format!(
                "{} is 不明; an area forecast must give an intensity",
                r.path("forecastMaxInt")
            ),
        )
    })?;
    let long_period = long_period(r)?;
    let is_plum = r.req_bool("isPlum")?;
    let warning = r.req_bool("isWarning")?;

    let kind = r.req_obj("kind")?;
    let kind_code = kind.req_str("code")?;
    let kind_path = kind.path("code");
    let mut digits = kind_code.bytes();
    let (warn_digit, arrival_digit) = match (digits.next(), digits.next(), digits.next()) {
        (Some(w @ (b'0' | b'1')), Some(a @ (b'0' | b'1' | b'9')), None) => (w, a),
        _ => {
            return reject(
                Reason::UnknownCode,
                format!(
                    "{kind_path} {kind_code:?} is not an EEW kind code (00, 01, 09, 10, 11 or 19)"
                ),
            );
        }
    };
    if (warn_digit == b'1') != warning {
        return reject(
            Reason::Inconsistent,
            format!(
                "{} is {warning} but {kind_path} is {kind_code}",
                r.path("isWarning")
            ),
        );
    }
    if (arrival_digit == b'9') != is_plum {
        return reject(
            Reason::Inconsistent,
            format!(
                "{} is {is_plum} but {kind_path} is {kind_code}",
                r.path("isPlum")
            ),
        );
    }
    let arrived_condition = match r.opt_str("condition")? {
        None => false,
        Some(ARRIVED) => true,
        Some(other) => {
            return reject(
                Reason::InvalidField,
                format!("{} {other:?} is not {ARRIVED}", r.path("condition")),
            );
        }
    };
    let time_path = r.path("arrivalTime");
    let arrival_time = r
        .opt("arrivalTime")
        .map(|v| time(v, &time_path))
        .transpose()?;
    let (arrival, arrived, plum, plum_predicted_at) = match arrival_digit {
        b'0' => {
            if arrived_condition {
                return reject(
                    Reason::Inconsistent,
                    format!(
                        "{} says {ARRIVED} but {kind_path} {kind_code} says not arrived",
                        r.path("condition")
                    ),
                );
            }
            let t = arrival_time.ok_or_else(|| {
                Rejection::new(
                    Reason::MissingField,
                    format!("{time_path} is missing; kind {kind_code} (not arrived) requires it"),
                )
            })?;
            (Some(t), false, false, None)
        }
        // Arrived: the arrival time, if any, has no meaning (as in code telegrams).
        b'1' => (None, true, false, None),
        // PLUM: the time is when PLUM first predicted this class, not an arrival.
        _ => (None, false, true, arrival_time),
    };
    if arrived_condition && !arrived {
        return reject(
            Reason::Inconsistent,
            format!(
                "{} says {ARRIVED} but {kind_path} is {kind_code}",
                r.path("condition")
            ),
        );
    }
    Ok(AreaForecast {
        code: code.to_owned(),
        name: name.to_owned(),
        intensity,
        long_period_class: long_period.map(|l| l.max_class()),
        long_period,
        warning,
        arrival,
        arrived,
        plum,
        plum_predicted_at,
    })
}

/// `forecastMaxInt {from, to}`; `None` when both are 不明.
fn intensity_range(o: &Obj<'_>) -> Result<Option<IntensityRange>, Rejection> {
    let bounds = (o.req_str("from")?, o.req_str("to")?);
    super::from_to_range(
        &o.path,
        bounds,
        "an intensity class",
        Intensity::from_xml,
        IntensityRange::new,
    )
}

/// `forecastMaxLgInt` (or the older spelling `forecastMaxLpgmInt`) of `o`, if given.
fn long_period(o: &Obj<'_>) -> Result<Option<LongPeriodRange>, Rejection> {
    let current = o.opt_obj("forecastMaxLgInt")?;
    let older = o.opt_obj("forecastMaxLpgmInt")?;
    let lg = match (current, older) {
        (None, None) => return Ok(None),
        (Some(a), Some(b)) if a.map != b.map => {
            return reject(
                Reason::Inconsistent,
                format!(
                    "{} and {} disagree",
                    o.path("forecastMaxLgInt"),
                    o.path("forecastMaxLpgmInt")
                ),
            );
        }
        (Some(lg), _) | (None, Some(lg)) => lg,
    };
    let bounds = (lg.req_str("from")?, lg.req_str("to")?);
    super::from_to_range(
        &lg.path,
        bounds,
        "a long-period class 0–4",
        LongPeriodRange::parse_class,
        LongPeriodRange::new,
    )
}

/// `body.zones` (地方予報区), `body.prefectures` (府県予報区), `body.regions` (細分区域).
fn warned_regions(body: &Obj<'_>) -> Result<Vec<WarnedRegion>, Rejection> {
    let lists: [(&str, RegionLevel, &CodeTable, &str); 3] = [
        ("zones", RegionLevel::Region, &codes::REGION, "地方予報区"),
        (
            "prefectures",
            RegionLevel::Prefecture,
            &codes::PREFECTURE,
            "府県予報区",
        ),
        (
            "regions",
            RegionLevel::Area,
            &codes::FORECAST_AREA,
            "細分区域",
        ),
    ];
    let mut out = Vec::new();
    for (key, level, table, table_name) in lists {
        let Some(items) = body.opt_array(key)? else {
            continue;
        };
        let path = body.path(key);
        for (n, v) in items.iter().enumerate() {
            let item = Obj::of(v, format!("{path}[{n}]"))?;
            let code = item.req_str("code")?;
            let name = table.name(code).ok_or_else(|| {
                Rejection::new(
                    Reason::UnknownCode,
                    format!(
                        "{} {code} is not in JMA's {table_name} table",
                        item.path("code")
                    ),
                )
            })?;
            let kind = item.req_obj("kind")?;
            let kind_code = kind.req_str("code")?;
            if kind_code != "31" {
                return reject(
                    Reason::UnknownCode,
                    format!(
                        "{} {kind_code:?} is not 31 (緊急地震速報（警報）)",
                        kind.path("code")
                    ),
                );
            }
            // The schema text calls it `last`; the documents carry `lastKind`.
            let last = match kind.opt_obj("lastKind")? {
                Some(last) => last,
                None => kind
                    .opt_obj("last")?
                    .ok_or_else(|| missing(&kind.path("lastKind")))?,
            };
            let newly_added = match last.req_str("code")? {
                "00" => true,
                "31" => false,
                other => {
                    return reject(
                        Reason::UnknownCode,
                        format!("{} {other:?} is not 00 or 31", last.path("code")),
                    );
                }
            };
            out.push(WarnedRegion {
                level,
                code: code.to_owned(),
                name: name.to_owned(),
                newly_added,
            });
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Wolfx jma_eew
// ---------------------------------------------------------------------------------------

fn parse_wolfx(doc: Obj<'_>) -> Result<Report, Rejection> {
    let text = doc.req_str("OriginalText")?;
    let mut report = jma_code::parse(text.as_bytes()).map_err(|r| {
        let reason = match r.reason {
            Reason::UnknownFormat => Reason::Malformed,
            other => other,
        };
        Rejection::new(reason, format!("OriginalText: {}", r.message))
    })?;
    report.format = Format::WolfxJson;
    cross_check_wolfx(&doc, &report)?;
    Ok(report)
}

/// Wolfx's derived fields must agree with the code telegram they came from. A derived
/// field that is absent (or null) is not checked; one that is present and disagrees
/// rejects the message, since one of the two is corrupted.
fn cross_check_wolfx(doc: &Obj<'_>, report: &Report) -> Result<(), Rejection> {
    let disagree = |field: &str, wolfx: String, telegram: String| {
        reject(
            Reason::Inconsistent,
            format!("{field} {wolfx} disagrees with OriginalText, which gives {telegram}"),
        )
    };

    let id_path = doc.path("EventID");
    let id = match doc.req("EventID")? {
        Value::String(s) => s.clone(),
        v @ Value::Number(_) => unsigned(v, &id_path)?.to_string(),
        v => return Err(wrong_type(&id_path, "string", v)),
    };
    if id != report.event_id.as_str() {
        return disagree("EventID", id, report.event_id.to_string());
    }
    let serial = unsigned(doc.req("Serial")?, &doc.path("Serial"))?;
    if serial != u64::from(report.serial) {
        return disagree("Serial", serial.to_string(), report.serial.to_string());
    }

    let cancel = report.kind == Kind::Cancel;
    let mut flags = vec![
        ("isCancel", cancel),
        ("isTraining", report.status == Status::Training),
    ];
    // A cancel's final/warning/assumption flags describe the cancelled event, which the
    // type-39 telegram no longer states: nothing to compare them with.
    if !cancel {
        flags.push(("isFinal", report.final_report));
        flags.push(("isWarn", report.kind == Kind::Warning));
        if let Some(h) = &report.hypocenter {
            flags.push(("isAssumption", h.assumed));
        }
    }
    for (key, want) in flags {
        if let Some(got) = doc.opt_bool(key)?
            && got != want
        {
            return disagree(key, got.to_string(), want.to_string());
        }
    }

    let close = |key: &str, want: f64| -> Result<(), Rejection> {
        match doc.opt(key) {
            Some(v) => {
                let got = number(v, &doc.path(key))?;
                if (got - want).abs() > WOLFX_TOLERANCE {
                    return disagree(key, got.to_string(), want.to_string());
                }
                Ok(())
            }
            None => Ok(()),
        }
    };
    if let Some(h) = &report.hypocenter {
        close("Latitude", h.lat)?;
        close("Longitude", h.lon)?;
        if let Some(d) = h.depth_km {
            close("Depth", f64::from(d))?;
        }
    }
    if let Some(m) = report.magnitude {
        // Wolfx spells it `Magunitude`; accept the correct spelling too should it change.
        let key = if doc.opt("Magunitude").is_some() {
            "Magunitude"
        } else {
            "Magnitude"
        };
        close(key, m)?;
    }

    if let Some(label) = doc.opt_str("MaxIntensity")? {
        let got = Intensity::from_label_ja(label);
        let want = report.max_intensity.map(|r| r.max_class());
        if got != want {
            return disagree(
                "MaxIntensity",
                format!("{label:?}"),
                want.map_or_else(
                    || "no maximum intensity".to_owned(),
                    |i| format!("{:?}", i.label_ja()),
                ),
            );
        }
    }

    if let Some(warn_areas) = doc.opt_array("WarnArea")? {
        if warn_areas.len() != report.areas.len() {
            return disagree(
                "WarnArea",
                format!("lists {} areas", warn_areas.len()),
                format!("{} EBI areas", report.areas.len()),
            );
        }
        let path = doc.path("WarnArea");
        for (n, (v, area)) in warn_areas.iter().zip(&report.areas).enumerate() {
            let item = Obj::of(v, format!("{path}[{n}]"))?;
            cross_check_warn_area(&item, area)?;
        }
    }
    Ok(())
}

/// One `WarnArea[]` entry against the EBI group at the same position.
fn cross_check_warn_area(item: &Obj<'_>, area: &AreaForecast) -> Result<(), Rejection> {
    let disagree = |key: &str, got: &str, want: &str| {
        reject(
            Reason::Inconsistent,
            format!(
                "{} {got:?} disagrees with OriginalText, whose area {} gives {want:?}",
                item.path(key),
                area.code
            ),
        )
    };
    let chiiki = item.req_str("Chiiki")?;
    if normalize_name(chiiki) != normalize_name(&area.name) {
        return disagree("Chiiki", chiiki, &area.name);
    }
    // Shindo1 is the code's e1e2 (the upper bound, or the lower bound of an open
    // range), Shindo2 its e3e4; spellings other than class labels are not compared.
    let (s1, s2) = match area.intensity.upper {
        Upper::At(u) => (u, Some(area.intensity.lower)),
        Upper::Over => (area.intensity.lower, None),
    };
    if let Some(got) = item.opt_str("Shindo1")?
        && Intensity::from_label_ja(got).is_some_and(|g| g != s1)
    {
        return disagree("Shindo1", got, s1.label_ja());
    }
    if let (Some(got), Some(want)) = (item.opt_str("Shindo2")?, s2)
        && Intensity::from_label_ja(got).is_some_and(|g| g != want)
    {
        return disagree("Shindo2", got, want.label_ja());
    }
    let want_type = if area.warning { "警報" } else { "予報" };
    if let Some(got) = item.opt_str("Type")?
        && matches!(got, "警報" | "予報")
        && got != want_type
    {
        return disagree("Type", got, want_type);
    }
    Ok(())
}

/// Area names compared without regard to full-width/half-width ASCII or spaces
/// (`東京都２３区` = `東京都23区`).
fn normalize_name(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFF01 + 0x21).unwrap_or(c),
            _ => c,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Field access with paths for messages
// ---------------------------------------------------------------------------------------

/// A JSON object and the dotted path it sits at (empty for the document).
#[derive(Debug, Clone)]
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn root(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            path: String::new(),
        }
    }

    /// `v` as an object at `path`, or a shape error.
    fn of(v: &'a Value, path: String) -> Result<Self, Rejection> {
        match v {
            Value::Object(map) => Ok(Self { map, path }),
            other => Err(wrong_type(&path, "object", other)),
        }
    }

    /// The path of a member.
    fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// A member, `null` counting as absent.
    fn opt(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn req(&self, key: &str) -> Result<&'a Value, Rejection> {
        self.opt(key).ok_or_else(|| missing(&self.path(key)))
    }

    fn opt_str(&self, key: &str) -> Result<Option<&'a str>, Rejection> {
        match self.opt(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(&self.path(key), "string", other)),
        }
    }

    fn req_str(&self, key: &str) -> Result<&'a str, Rejection> {
        self.opt_str(key)?.ok_or_else(|| missing(&self.path(key)))
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>, Rejection> {
        match self.opt(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(&self.path(key), "boolean", other)),
        }
    }

    fn req_bool(&self, key: &str) -> Result<bool, Rejection> {
        self.opt_bool(key)?.ok_or_else(|| missing(&self.path(key)))
    }

    fn opt_obj(&self, key: &str) -> Result<Option<Obj<'a>>, Rejection> {
        self.opt(key)
            .map(|v| Obj::of(v, self.path(key)))
            .transpose()
    }

    fn req_obj(&self, key: &str) -> Result<Obj<'a>, Rejection> {
        self.opt_obj(key)?.ok_or_else(|| missing(&self.path(key)))
    }

    fn opt_array(&self, key: &str) -> Result<Option<&'a [Value]>, Rejection> {
        match self.opt(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(wrong_type(&self.path(key), "array", other)),
        }
    }

    fn req_array(&self, key: &str) -> Result<&'a [Value], Rejection> {
        self.opt_array(key)?.ok_or_else(|| missing(&self.path(key)))
    }
}

fn missing(path: &str) -> Rejection {
    Rejection::new(
        Reason::MissingField,
        format!("the required field {path} is missing or null"),
    )
}

fn wrong_type(path: &str, expected: &str, got: &Value) -> Rejection {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    Rejection::new(
        Reason::Malformed,
        format!("{path} must be a JSON {expected}, not {got}"),
    )
}

/// A decimal number given as a JSON number or a string (`"38.1000"`).
fn number(v: &Value, path: &str) -> Result<f64, Rejection> {
    let invalid = || {
        Rejection::new(
            Reason::InvalidField,
            format!("{path} {v} is not a finite decimal number"),
        )
    };
    let n = match v {
        Value::Number(n) => n.as_f64().ok_or_else(invalid)?,
        Value::String(s) => {
            let plain = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
            if !plain {
                return Err(invalid());
            }
            s.parse::<f64>().map_err(|_| invalid())?
        }
        other => return Err(wrong_type(path, "number or numeric string", other)),
    };
    if n.is_finite() { Ok(n) } else { Err(invalid()) }
}

/// A non-negative integer given as a string of digits (`"5"`) or a JSON integer.
fn unsigned(v: &Value, path: &str) -> Result<u64, Rejection> {
    let invalid = || {
        Rejection::new(
            Reason::InvalidField,
            format!("{path} {v} is not a non-negative whole number"),
        )
    };
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(invalid),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map_err(|_| invalid())
        }
        Value::String(_) => Err(invalid()),
        other => Err(wrong_type(path, "string of digits", other)),
    }
}

/// One code digit (`"4"`), which must be one JMA's table defines.
fn digit(v: &Value, path: &str, allowed: &[u8]) -> Result<u8, Rejection> {
    let n = unsigned(v, path)?;
    match u8::try_from(n) {
        Ok(d) if d <= 9 && allowed.contains(&(b'0' + d)) => Ok(d),
        _ => reject(
            Reason::UnknownCode,
            format!("{path} = {n} is not defined in JMA's code table"),
        ),
    }
}

/// An RFC 3339 date-time, converted to JST.
fn time(v: &Value, path: &str) -> Result<JstTime, Rejection> {
    let Value::String(s) = v else {
        return Err(wrong_type(path, "string", v));
    };
    DateTime::parse_from_rfc3339(s)
        .map(JstTime::from_datetime)
        .map_err(|_| {
            Rejection::new(
                Reason::InvalidField,
                format!("{path} {s:?} is not an RFC 3339 date-time"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/fixtures/telegrams/", $name)).as_slice()
        };
    }

    const VXSE42: &[u8] = fixture!("dmdata_eewinfo_vxse42_rjtd_20090811050000.json");
    const VXSE43: &[u8] = fixture!("dmdata_eewinfo_vxse43_rjtd_20110311144810.json");
    const VXSE43_CANCEL: &[u8] = fixture!("dmdata_eewinfo_vxse43_rjtd_20110311145000.json");
    const VXSE44_FINAL: &[u8] = fixture!("dmdata_eewinfo_vxse44_rjtd_20180906031016.json");
    const VXSE45: &[u8] = fixture!("dmdata_eewinfo_vxse45_rjtd_20110311144810.json");
    const VXSE45_CANCEL: &[u8] = fixture!("dmdata_eewinfo_vxse45_rjtd_20110311144811.json");
    const WOLFX_1: &[u8] = fixture!("wolfx_20250811_miyakojima_serial1.json");
    const WOLFX_3: &[u8] = fixture!("wolfx_20250811_miyakojima_serial3.json");
    const WOLFX_46: &[u8] = fixture!("wolfx_20251208_aomori_serial46_final_warning.json");
    const CODE_1: &[u8] = fixture!("20250811_miyakojima_ncn001_first.txt");
    const CODE_3: &[u8] = fixture!("20250811_miyakojima_ncn903_final.txt");
    const IEDRED: &[u8] = fixture!("iedred_20180618_osaka_serial11_warning.json");
    const P2PQUAKE: &[u8] = fixture!("p2pquake_epsp_eew_20240116_notooki_serial1.json");

    fn ok(bytes: &[u8]) -> Report {
        parse(bytes).unwrap_or_else(|r| panic!("rejected: {r}"))
    }

    fn rejected(bytes: &[u8], reason: Reason) -> String {
        match parse(bytes) {
            Ok(r) => panic!("accepted: {r:?}"),
            Err(r) => {
                assert_eq!(r.reason, reason, "{}", r.message);
                assert!(!r.message.is_empty());
                r.message
            }
        }
    }

    /// A sample, edited.
    fn edited(sample: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
        let mut v: Value = serde_json::from_slice(sample).unwrap();
        edit(&mut v);
        serde_json::to_vec(&v).unwrap()
    }

    fn t(s: &str) -> Option<JstTime> {
        Some(JstTime::from_datetime(
            DateTime::parse_from_rfc3339(s).unwrap(),
        ))
    }

    #[test]
    fn detect_tells_the_two_formats_apart_and_nothing_else() {
        assert_eq!(detect(VXSE43), Some(Format::DmdataJson));
        assert_eq!(detect(VXSE42), Some(Format::DmdataJson));
        assert_eq!(detect(WOLFX_46), Some(Format::WolfxJson));
        assert_eq!(detect(IEDRED), None);
        assert_eq!(detect(P2PQUAKE), None);
        assert_eq!(detect(b"{"), None);
        assert_eq!(detect(br#"{"type":"heartbeat"}"#), None);
        assert_eq!(super::super::detect(VXSE45), Some(Format::DmdataJson));
    }

    #[test]
    fn dmdata_vxse42_delivery_test_is_a_test_report_without_earthquake() {
        let r = ok(VXSE42);
        assert_eq!(r.format, Format::DmdataJson);
        assert_eq!(r.product, Product::Vxse42);
        assert_eq!(r.kind, Kind::DeliveryTest);
        assert_eq!(r.status, Status::Test);
        assert_eq!(r.event_id.as_str(), "20090811050000");
        assert_eq!(r.serial, 1);
        assert_eq!(r.issued_at, t("2009-08-11T05:00:00+09:00"));
        assert!(r.hypocenter.is_none() && r.areas.is_empty() && !r.final_report);
        assert!(!r.actionable);
        assert_eq!(r.not_actionable_reason, Some("delivery_test"));
    }

    #[test]
    fn dmdata_vxse42_with_normal_status_is_refused() {
        let bytes = edited(VXSE42, |v| v["status"] = "通常".into());
        rejected(&bytes, Reason::Inconsistent);
    }

    #[test]
    fn dmdata_vxse43_warning_carries_hypocenter_areas_and_warned_regions() {
        let r = ok(VXSE43);
        assert_eq!(
            (r.product, r.kind, r.status),
            (Product::Vxse43, Kind::Warning, Status::Normal)
        );
        assert_eq!(r.event_id.as_str(), "20110311144640");
        assert_eq!(r.serial, 5);
        assert!(!r.final_report);
        assert_eq!(r.origin_time, t("2011-03-11T14:46:16+09:00"));
        assert_eq!(r.detected_at, t("2011-03-11T14:46:40+09:00"));
        let h = r.hypocenter.as_ref().unwrap();
        assert_eq!(h.code.as_deref(), Some("288"));
        assert_eq!(h.name.as_deref(), Some("三陸沖"));
        assert_eq!((h.lat, h.lon, h.depth_km), (38.1, 142.9, Some(10)));
        assert_eq!(h.land_or_sea, Some(LandOrSea::Sea));
        assert!(!h.assumed);
        assert_eq!(r.magnitude, Some(8.4));
        assert_eq!(
            r.max_intensity,
            Some(IntensityRange::exactly(Intensity::SixUpper))
        );
        // The VXSE43 sample spells the long-period fields forecastMaxLpgmInt.
        assert_eq!(r.max_long_period_class, Some(4));
        assert_eq!(
            r.accuracy,
            Some(Accuracy {
                epicenter: Some(4),
                depth: Some(4),
                magnitude: Some(5),
                magnitude_stations: Some(5),
                hypocenter: Some(4),
            })
        );
        assert_eq!(
            r.max_intensity_change,
            Some(IntensityChange {
                change: 0,
                reason: Some(0)
            })
        );
        assert_eq!(r.areas.len(), 58);
        assert!(r.areas.iter().all(|a| a.warning));

        let arrived = r.area("220").unwrap();
        assert_eq!(arrived.name, "宮城県北部");
        assert!(arrived.arrived && !arrived.plum && arrived.arrival.is_none());
        assert_eq!(arrived.long_period_class, Some(4));

        let plum = r.area("221").unwrap();
        assert!(plum.plum && !plum.arrived && plum.arrival.is_none());
        assert_eq!(plum.plum_predicted_at, t("2011-03-11T14:47:22+09:00"));

        let ahead = r.area("350").unwrap();
        assert_eq!(ahead.name, "東京都２３区");
        assert_eq!(ahead.intensity, IntensityRange::exactly(Intensity::Four));
        assert_eq!(ahead.arrival, t("2011-03-11T14:48:51+09:00"));
        assert_eq!(ahead.long_period, LongPeriodRange::new(3, Upper::At(3)));
        assert!(r.flags.plum && !r.flags.level_method && !r.flags.single_station);

        assert_eq!(r.warned_regions.len(), 8 + 22 + 58);
        let tohoku = &r.warned_regions[0];
        assert_eq!(
            (tohoku.level, tohoku.code.as_str(), tohoku.name.as_str()),
            (RegionLevel::Region, "9920", "東北")
        );
        assert!(!tohoku.newly_added);
        let tokai = r.warned_regions.iter().find(|w| w.code == "9936").unwrap();
        assert!(tokai.newly_added);
        let osaka = r.warned_regions.iter().find(|w| w.code == "9270").unwrap();
        assert_eq!(
            (osaka.level, osaka.newly_added),
            (RegionLevel::Prefecture, true)
        );
        assert!(r.actionable);
    }

    #[test]
    fn dmdata_vxse43_and_vxse45_of_one_report_agree_on_everything_but_product_and_serial() {
        // The two JMA samples are the same forecast; only their serials differ (5, 23).
        // forecastMaxLpgmInt (VXSE43 sample) and forecastMaxLgInt (VXSE45) read the same.
        let mut a = ok(VXSE43);
        let b = ok(VXSE45);
        assert_eq!((a.serial, b.product, b.serial), (5, Product::Vxse45, 23));
        a.product = Product::Vxse45;
        a.serial = 23;
        assert!(
            a == b,
            "VXSE43 and VXSE45 samples differ beyond product and serial"
        );
    }

    #[test]
    fn dmdata_cancels_are_cancels_with_their_serial_and_nothing_else() {
        for (bytes, product, serial) in [
            (VXSE43_CANCEL, Product::Vxse43, 5),
            (VXSE45_CANCEL, Product::Vxse45, 23),
        ] {
            let r = ok(bytes);
            assert_eq!(
                (r.product, r.kind, r.info_type),
                (product, Kind::Cancel, InfoType::Cancel)
            );
            assert_eq!(r.serial, serial);
            assert_eq!(r.event_id.as_str(), "20110311144640");
            // isLastInfo is true on a cancel; `final` means the last forecast.
            assert!(!r.final_report);
            assert!(r.hypocenter.is_none() && r.areas.is_empty() && r.warned_regions.is_empty());
            assert!(r.actionable);
        }
    }

    #[test]
    fn dmdata_vxse44_final_report_with_plum_and_arrived_areas() {
        let r = ok(VXSE44_FINAL);
        assert_eq!((r.product, r.kind), (Product::Vxse44, Kind::Warning));
        assert!(r.final_report);
        assert_eq!(r.serial, 26);
        assert_eq!(r.event_id.as_str(), "20180906030805");
        let h = r.hypocenter.as_ref().unwrap();
        assert_eq!(h.name.as_deref(), Some("胆振地方中東部"));
        assert_eq!(
            (h.depth_km, h.land_or_sea),
            (Some(30), Some(LandOrSea::Land))
        );
        assert_eq!(r.magnitude, Some(7.0));
        assert_eq!(r.accuracy.unwrap().hypocenter, Some(9));
        assert_eq!(
            r.max_intensity,
            Some(IntensityRange::exactly(Intensity::Seven))
        );
        assert_eq!(r.max_long_period_class, None);
        assert_eq!(r.areas.len(), 32);
        let range = r.area("122").unwrap();
        assert_eq!(
            range.intensity,
            IntensityRange::new(Intensity::FiveUpper, Upper::At(Intensity::SixLower)).unwrap()
        );
        let forecast_only = r.area("105").unwrap();
        assert!(!forecast_only.warning && forecast_only.arrived);
        let plum = r.area("146").unwrap();
        assert!(plum.plum && plum.warning);
        assert_eq!(plum.plum_predicted_at, t("2018-09-06T03:08:16+09:00"));
        assert!(r.areas.iter().all(|a| a.long_period.is_none()));
        assert!(r.warned_regions.is_empty());
    }

    #[test]
    fn dmdata_vxse45_forecast_reads_forecast_max_lg_int() {
        let r = ok(VXSE45);
        assert_eq!(r.max_long_period_class, Some(4));
        let a = r.area("352").unwrap();
        assert_eq!(
            (a.long_period_class, a.intensity.max_class()),
            (Some(1), Intensity::Four)
        );
    }

    #[test]
    fn dmdata_forecast_without_warnings_is_a_forecast() {
        let bytes = edited(VXSE45, |v| {
            let body = &mut v["body"];
            body["isWarning"] = false.into();
            for key in ["zones", "prefectures", "regions"] {
                body.as_object_mut().unwrap().remove(key);
            }
            for region in body["intensity"]["regions"].as_array_mut().unwrap() {
                region["isWarning"] = false.into();
                let code = region["kind"]["code"]
                    .as_str()
                    .unwrap()
                    .replacen('1', "0", 1);
                region["kind"]["code"] = code.into();
            }
        });
        let r = ok(&bytes);
        assert_eq!(r.kind, Kind::Forecast);
        assert!(!r.any_area_warned());
    }

    #[test]
    fn dmdata_assumed_hypocenter_and_depth_conditions() {
        let bytes = edited(VXSE45, |v| {
            let eq = &mut v["body"]["earthquake"];
            eq.as_object_mut().unwrap().remove("originTime");
            eq["condition"] = ASSUMED.into();
            eq["magnitude"]["value"] = "1.0".into();
            eq["hypocenter"]["accuracy"]["numberOfMagnitudeCalculation"] = "1".into();
            eq["hypocenter"]["depth"] =
                serde_json::json!({"type":"深さ","unit":"km","value":"0","condition":"ごく浅い"});
        });
        let r = ok(&bytes);
        let h = r.hypocenter.as_ref().unwrap();
        assert!(h.assumed);
        assert_eq!(h.depth_km, Some(0));
        assert!(r.flags.plum && r.flags.single_station && !r.flags.level_method);
        assert_eq!(r.origin_time, None);

        let deep = edited(VXSE45, |v| {
            v["body"]["earthquake"]["hypocenter"]["depth"] =
                serde_json::json!({"value": null, "condition": "７００ｋｍ以上"});
        });
        assert_eq!(ok(&deep).hypocenter.unwrap().depth_km, Some(700));
        let unknown = edited(VXSE45, |v| {
            v["body"]["earthquake"]["hypocenter"]["depth"] =
                serde_json::json!({"value": null, "condition": "不明"});
        });
        assert_eq!(ok(&unknown).hypocenter.unwrap().depth_km, None);
        let contradiction = edited(VXSE45, |v| {
            v["body"]["earthquake"]["hypocenter"]["depth"]["condition"] = "ごく浅い".into();
        });
        rejected(&contradiction, Reason::Inconsistent);
    }

    #[test]
    fn dmdata_level_method_report_has_no_origin_time_and_no_magnitude() {
        let bytes = edited(VXSE45, |v| {
            let eq = &mut v["body"]["earthquake"];
            eq.as_object_mut().unwrap().remove("originTime");
            eq["magnitude"]["value"] = Value::Null;
        });
        let r = ok(&bytes);
        assert!(r.flags.level_method);
        assert_eq!(r.magnitude, None);
        let with_magnitude = edited(VXSE45, |v| {
            v["body"]["earthquake"]
                .as_object_mut()
                .unwrap()
                .remove("originTime");
        });
        rejected(&with_magnitude, Reason::Inconsistent);
    }

    #[test]
    fn dmdata_unknown_coordinates_mean_no_hypocenter() {
        let bytes = edited(VXSE45, |v| {
            v["body"]["earthquake"]["hypocenter"]["coordinate"] =
                serde_json::json!({"condition": "不明"});
        });
        let r = ok(&bytes);
        assert!(r.hypocenter.is_none());
        assert_eq!(r.not_actionable_reason, Some("hypocenter_unknown"));
        let half = edited(VXSE45, |v| {
            v["body"]["earthquake"]["hypocenter"]["coordinate"]
                .as_object_mut()
                .unwrap()
                .remove("longitude");
        });
        rejected(&half, Reason::Inconsistent);
    }

    #[test]
    fn dmdata_numbers_may_be_json_numbers_or_strings() {
        let bytes = edited(VXSE45, |v| {
            let h = &mut v["body"]["earthquake"]["hypocenter"];
            h["coordinate"]["latitude"]["value"] = 38.1.into();
            h["coordinate"]["longitude"]["value"] = 142.9.into();
        });
        assert_eq!(ok(&bytes), ok(VXSE45));
        let nan = edited(VXSE45, |v| {
            v["body"]["earthquake"]["hypocenter"]["coordinate"]["latitude"]["value"] = "NaN".into();
        });
        rejected(&nan, Reason::InvalidField);
    }

    #[test]
    fn dmdata_open_upper_bounds_are_over() {
        let bytes = edited(VXSE45, |v| {
            let i = &mut v["body"]["intensity"];
            i["forecastMaxInt"] = serde_json::json!({"from": "6-", "to": "over"});
            i["forecastMaxLgInt"] = serde_json::json!({"from": "3", "to": "over"});
            i["regions"][0]["forecastMaxInt"] = serde_json::json!({"from": "5+", "to": "over"});
        });
        let r = ok(&bytes);
        assert_eq!(
            r.max_intensity,
            IntensityRange::new(Intensity::SixLower, Upper::Over)
        );
        assert_eq!(r.max_long_period_class, Some(3));
        assert_eq!(r.areas[0].intensity.upper, Upper::Over);
        let unknown = edited(VXSE45, |v| {
            v["body"]["intensity"]["forecastMaxInt"] =
                serde_json::json!({"from": "不明", "to": "不明"});
        });
        assert_eq!(ok(&unknown).max_intensity, None);
        let inverted = edited(VXSE45, |v| {
            v["body"]["intensity"]["forecastMaxInt"] = serde_json::json!({"from": "6+", "to": "4"});
        });
        rejected(&inverted, Reason::Inconsistent);
    }

    #[test]
    fn invalid_json_is_malformed_and_bad_bytes_are_invalid_encoding() {
        let msg = rejected(
            br#"{"_schema": {"type": "eew-information""#,
            Reason::Malformed,
        );
        assert!(msg.contains("not valid JSON"), "{msg}");
        rejected(
            b"{\"type\": \"jma_eew\", \"x\": \"\xff\"}",
            Reason::InvalidEncoding,
        );
        rejected(b"[1, 2]", Reason::UnknownFormat);
        rejected(br#"{"hello": "world"}"#, Reason::UnknownFormat);
        rejected(br#"{"type": "something"}"#, Reason::UnknownFormat);
    }

    #[test]
    fn wrong_schema_version_or_type_is_unsupported() {
        let v2 = edited(VXSE45, |v| v["_schema"]["version"] = "2.0.0".into());
        let msg = rejected(&v2, Reason::UnsupportedProduct);
        assert!(msg.contains("2.0.0"), "{msg}");
        let other = edited(VXSE45, |v| {
            v["_schema"]["type"] = "earthquake-information".into()
        });
        rejected(&other, Reason::UnsupportedProduct);
        let vxse47 = edited(VXSE45, |v| {
            v["type"] = "リアルタイム震度".into();
            v["title"] = "リアルタイム震度".into();
        });
        rejected(&vxse47, Reason::UnsupportedProduct);
        rejected(
            br#"{"type": "heartbeat", "ver": 1}"#,
            Reason::UnsupportedProduct,
        );
    }

    #[test]
    fn unknown_codes_are_refused() {
        let area = edited(VXSE45, |v| {
            v["body"]["intensity"]["regions"][3]["code"] = "999".into()
        });
        let msg = rejected(&area, Reason::UnknownCode);
        assert!(msg.contains("body.intensity.regions[3].code"), "{msg}");
        let epicentre = edited(VXSE45, |v| {
            v["body"]["earthquake"]["hypocenter"]["code"] = "000".into()
        });
        rejected(&epicentre, Reason::UnknownCode);
        let zone = edited(VXSE45, |v| v["body"]["zones"][0]["code"] = "9999".into());
        rejected(&zone, Reason::UnknownCode);
        let kind = edited(VXSE45, |v| {
            v["body"]["intensity"]["regions"][0]["kind"]["code"] = "12".into()
        });
        rejected(&kind, Reason::UnknownCode);
        let rank = edited(VXSE45, |v| {
            v["body"]["earthquake"]["hypocenter"]["accuracy"]["epicenters"][1] = "5".into();
        });
        rejected(&rank, Reason::UnknownCode);
    }

    #[test]
    fn area_flags_must_agree_with_the_kind_code() {
        // regions[0] of the VXSE45 sample is 220, kind 11 (warning, arrived).
        let warning = edited(VXSE45, |v| {
            v["body"]["intensity"]["regions"][0]["isWarning"] = false.into()
        });
        rejected(&warning, Reason::Inconsistent);
        let plum = edited(VXSE45, |v| {
            v["body"]["intensity"]["regions"][0]["isPlum"] = true.into()
        });
        rejected(&plum, Reason::Inconsistent);
        let no_arrival = edited(VXSE45, |v| {
            let r = &mut v["body"]["intensity"]["regions"][0];
            r["kind"]["code"] = "10".into();
        });
        rejected(&no_arrival, Reason::Inconsistent);
        let missing_time = edited(VXSE45, |v| {
            let r = v["body"]["intensity"]["regions"][0]
                .as_object_mut()
                .unwrap();
            r.insert(
                "kind".into(),
                serde_json::json!({"code": "10", "name": "x"}),
            );
            r.remove("condition");
        });
        rejected(&missing_time, Reason::MissingField);
    }

    #[test]
    fn warnings_and_cancels_must_be_consistent() {
        let not_warning = edited(VXSE43, |v| v["body"]["isWarning"] = false.into());
        rejected(&not_warning, Reason::Inconsistent);
        let half_cancel = edited(VXSE43_CANCEL, |v| v["body"]["isCanceled"] = false.into());
        rejected(&half_cancel, Reason::Inconsistent);
        let cancel_with_quake = edited(VXSE45, |v| {
            v["infoType"] = "取消".into();
            v["body"]["isCanceled"] = true.into();
        });
        rejected(&cancel_with_quake, Reason::Inconsistent);
        let title = edited(VXSE45, |v| v["title"] = "緊急地震速報（予報）".into());
        rejected(&title, Reason::Inconsistent);
    }

    #[test]
    fn missing_and_mistyped_fields_name_the_field() {
        let no_serial = edited(VXSE43_CANCEL, |v| v["serialNo"] = Value::Null);
        let msg = rejected(&no_serial, Reason::MissingField);
        assert!(msg.contains("serialNo"), "{msg}");
        let zero = edited(VXSE45, |v| v["serialNo"] = "0".into());
        rejected(&zero, Reason::InvalidField);
        let no_arrival = edited(VXSE45, |v| {
            v["body"]["earthquake"]
                .as_object_mut()
                .unwrap()
                .remove("arrivalTime");
        });
        let msg = rejected(&no_arrival, Reason::MissingField);
        assert!(msg.contains("body.earthquake.arrivalTime"), "{msg}");
        let bad_time = edited(VXSE45, |v| {
            v["reportDateTime"] = "2011-03-11 14:48:10".into()
        });
        rejected(&bad_time, Reason::InvalidField);
        let bad_id = edited(VXSE45, |v| v["eventId"] = "2011031114464".into());
        rejected(&bad_id, Reason::InvalidField);
        let flag = edited(VXSE45, |v| v["body"]["isLastInfo"] = "false".into());
        let msg = rejected(&flag, Reason::Malformed);
        assert!(msg.contains("body.isLastInfo"), "{msg}");
        let no_eq = edited(VXSE45, |v| {
            v["body"].as_object_mut().unwrap().remove("earthquake");
        });
        rejected(&no_eq, Reason::MissingField);
    }

    #[test]
    fn utc_times_are_converted_to_jst() {
        let bytes = edited(VXSE45, |v| {
            v["reportDateTime"] = "2011-03-11T05:48:10Z".into()
        });
        assert_eq!(
            ok(&bytes).issued_at.unwrap().to_rfc3339(),
            "2011-03-11T14:48:10+09:00"
        );
    }

    #[test]
    fn wolfx_reports_are_their_original_text_reformatted() {
        for (wolfx, code) in [(WOLFX_1, CODE_1), (WOLFX_3, CODE_3)] {
            let mut from_wolfx = ok(wolfx);
            assert_eq!(from_wolfx.format, Format::WolfxJson);
            from_wolfx.format = Format::JmaCode;
            assert_eq!(from_wolfx, jma_code::parse(code).unwrap());
        }
        let first = ok(WOLFX_1);
        assert_eq!(
            (first.serial, first.kind, first.final_report),
            (1, Kind::Forecast, false)
        );
        let last = ok(WOLFX_3);
        assert_eq!((last.serial, last.final_report), (3, true));
    }

    #[test]
    fn wolfx_final_warning_with_plum_areas() {
        let r = ok(WOLFX_46);
        assert_eq!(r.format, Format::WolfxJson);
        assert_eq!(r.event_id.as_str(), "20251208231519");
        assert_eq!(
            (r.serial, r.kind, r.final_report),
            (46, Kind::Warning, true)
        );
        assert_eq!(r.max_intensity.unwrap().max_class(), Intensity::SixLower);
        assert_eq!(r.areas.len(), 45);
        assert_eq!(r.areas[0].name, "青森県下北");
        let plum = r.area("146").unwrap();
        assert!(plum.plum && plum.arrival.is_none());
        assert_eq!(plum.plum_predicted_at, t("2025-12-08T23:16:05+09:00"));
        assert!(r.flags.plum);
    }

    #[test]
    fn wolfx_event_id_disagreeing_with_original_text_is_inconsistent() {
        let bytes = edited(WOLFX_1, |v| v["EventID"] = "20250811174017".into());
        let msg = rejected(&bytes, Reason::Inconsistent);
        assert!(msg.contains("EventID"), "{msg}");
    }

    #[test]
    fn wolfx_derived_fields_are_cross_checked() {
        type Edit = Box<dyn FnOnce(&mut Value)>;
        let cases: Vec<(&[u8], Edit)> = vec![
            (WOLFX_1, Box::new(|v| v["Serial"] = 2.into())),
            (WOLFX_1, Box::new(|v| v["isCancel"] = true.into())),
            (WOLFX_1, Box::new(|v| v["isTraining"] = true.into())),
            (WOLFX_1, Box::new(|v| v["isFinal"] = true.into())),
            (WOLFX_1, Box::new(|v| v["isWarn"] = true.into())),
            (WOLFX_1, Box::new(|v| v["isAssumption"] = true.into())),
            (WOLFX_1, Box::new(|v| v["Latitude"] = 24.5.into())),
            (WOLFX_1, Box::new(|v| v["Longitude"] = 125.3.into())),
            (WOLFX_1, Box::new(|v| v["Magunitude"] = 3.8.into())),
            (WOLFX_1, Box::new(|v| v["Depth"] = 20.into())),
            (WOLFX_1, Box::new(|v| v["MaxIntensity"] = "3".into())),
            (WOLFX_1, Box::new(|v| v["MaxIntensity"] = "不明".into())),
            (
                WOLFX_1,
                Box::new(|v| v["WarnArea"] = serde_json::json!([{"Chiiki": "宮古島"}])),
            ),
            (
                WOLFX_46,
                Box::new(|v| v["WarnArea"][1]["Chiiki"] = "青森県下北".into()),
            ),
            (
                WOLFX_46,
                Box::new(|v| v["WarnArea"][0]["Shindo1"] = "6強".into()),
            ),
            (
                WOLFX_46,
                Box::new(|v| v["WarnArea"][0]["Shindo2"] = "5弱".into()),
            ),
            (
                WOLFX_46,
                Box::new(|v| v["WarnArea"][0]["Type"] = "予報".into()),
            ),
            (
                WOLFX_46,
                Box::new(|v| {
                    v["WarnArea"].as_array_mut().unwrap().pop();
                }),
            ),
        ];
        for (sample, edit) in cases {
            rejected(&edited(sample, edit), Reason::Inconsistent);
        }
        // Within the tolerance, and absent derived fields, are fine.
        ok(&edited(WOLFX_1, |v| v["Latitude"] = 24.42.into()));
        ok(&edited(WOLFX_1, |v| {
            let o = v.as_object_mut().unwrap();
            for key in [
                "Latitude",
                "Magunitude",
                "MaxIntensity",
                "WarnArea",
                "isFinal",
            ] {
                o.remove(key);
            }
        }));
    }

    #[test]
    fn wolfx_without_original_text_is_missing_field() {
        let bytes = edited(WOLFX_1, |v| {
            v.as_object_mut().unwrap().remove("OriginalText");
        });
        let msg = rejected(&bytes, Reason::MissingField);
        assert!(msg.contains("OriginalText"), "{msg}");
        let no_id = edited(WOLFX_1, |v| {
            v.as_object_mut().unwrap().remove("EventID");
        });
        rejected(&no_id, Reason::MissingField);
    }

    #[test]
    fn wolfx_original_text_errors_keep_their_reason() {
        let cut = edited(WOLFX_1, |v| {
            v["OriginalText"] = "37 03 00 250811174027 C11 250811174008 ND20250811174016".into();
        });
        let msg = rejected(&cut, Reason::Truncated);
        assert!(msg.starts_with("OriginalText: "), "{msg}");
        let junk = edited(WOLFX_1, |v| v["OriginalText"] = "hello".into());
        rejected(&junk, Reason::Malformed);
    }

    #[test]
    fn third_party_derivatives_are_unsupported_products() {
        let msg = rejected(IEDRED, Reason::UnsupportedProduct);
        assert!(msg.contains("iedred7584"), "{msg}");
        let msg = rejected(P2PQUAKE, Reason::UnsupportedProduct);
        assert!(
            msg.contains("5弱") && msg.contains("not accepted as an operational input"),
            "{msg}"
        );
        let wrapped = edited(P2PQUAKE, |v| {
            v["code"] = 556.into();
            v["time"] = "2024/01/16 18:42:25.123".into();
        });
        rejected(&wrapped, Reason::UnsupportedProduct);
        rejected(
            br#"{"code": 551, "time": "x", "id": "y"}"#,
            Reason::UnsupportedProduct,
        );
        rejected(
            br#"{"OriginalText": "37 03 00"}"#,
            Reason::UnsupportedProduct,
        );
    }

    #[test]
    fn deep_nesting_and_huge_numbers_do_not_panic() {
        let deep = format!("{}{}", "{\"a\":[".repeat(5000), "]}".repeat(5000));
        rejected(deep.as_bytes(), Reason::Malformed);
        assert_eq!(detect(deep.as_bytes()), None);
        let deep_in_field = format!(
            "{{\"_schema\":{{\"type\":\"eew-information\",\"version\":\"1.0.0\"}},\"body\":{}1{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        rejected(deep_in_field.as_bytes(), Reason::Malformed);

        let huge = edited(VXSE45, |v| {
            v["serialNo"] =
                serde_json::from_str::<Value>("123456789012345678901234567890").unwrap();
        });
        rejected(&huge, Reason::InvalidField);
        let huge_string = edited(VXSE45, |v| v["serialNo"] = "99999999999999999999999".into());
        rejected(&huge_string, Reason::InvalidField);
        let big_u64 = edited(VXSE45, |v| v["serialNo"] = "18446744073709551615".into());
        rejected(&big_u64, Reason::OutOfRange);
        let huge_lat = edited(VXSE45, |v| {
            v["body"]["earthquake"]["hypocenter"]["coordinate"]["latitude"]["value"] =
                serde_json::from_str::<Value>("1e308").unwrap();
        });
        rejected(&huge_lat, Reason::OutOfRange);
        rejected(br#"{"type":"jma_eew","Serial":1e999}"#, Reason::Malformed);
        let huge_depth = edited(VXSE45, |v| {
            v["body"]["earthquake"]["hypocenter"]["depth"]["value"] = "4294967296".into();
        });
        rejected(&huge_depth, Reason::OutOfRange);
        let wolfx_huge = edited(WOLFX_1, |v| {
            v["Serial"] = serde_json::from_str::<Value>("1e300").unwrap()
        });
        rejected(&wolfx_huge, Reason::InvalidField);
    }

    #[test]
    fn every_truncation_of_every_sample_is_refused_without_panicking() {
        for sample in [VXSE42, VXSE43_CANCEL, VXSE45, WOLFX_46] {
            for end in (0..sample.len()).step_by(97) {
                let cut = sample.get(..end).unwrap();
                assert!(parse(cut).is_err());
                let _ = detect(cut);
            }
        }
    }

    #[test]
    fn area_names_compare_across_full_and_half_width() {
        assert_eq!(normalize_name("東京都２３区"), normalize_name("東京都23区"));
        assert_ne!(normalize_name("東京都２３区"), normalize_name("東京都24区"));
    }
}
