//! [`Report`]: one EEW telegram, normalized, whatever its wire format.
//!
//! The serde serialization of these types *is* the public JSON schema printed by
//! `eewgate parse` and documented in the README; field names and spellings are stable.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat};
use serde::{Serialize, Serializer};

use crate::intensity::{IntensityRange, LongPeriodRange};

/// Japan Standard Time, the offset every EEW time is given in or converted to.
pub fn jst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid UTC offset")
}

/// A point in time, always carried in JST (+09:00) and serialized as RFC 3339.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JstTime(pub DateTime<FixedOffset>);

impl JstTime {
    /// From a JST wall-clock date and time.
    pub fn from_naive_jst(naive: NaiveDateTime) -> Option<Self> {
        naive.and_local_timezone(jst()).single().map(JstTime)
    }

    /// From any offset, converted to JST.
    pub fn from_datetime(dt: DateTime<FixedOffset>) -> Self {
        JstTime(dt.with_timezone(&jst()))
    }

    /// Builds a time from date parts, `None` when they do not form a real time.
    pub fn from_parts(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<Self> {
        let date = NaiveDate::from_ymd_opt(y, mo, d)?;
        let time = NaiveTime::from_hms_opt(h, mi, s)?;
        Self::from_naive_jst(NaiveDateTime::new(date, time))
    }

    /// RFC 3339 with +09:00 and whole seconds (fractions only when present).
    pub fn to_rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::AutoSi, false)
    }
}

impl fmt::Display for JstTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for JstTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// The wire format a report arrived in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// JMA code telegram (コード電文).
    JmaCode,
    /// JMA disaster-prevention XML (防災情報XML).
    JmaXml,
    /// DM-D.S.S `eew-information` 1.0.0 JSON.
    DmdataJson,
    /// Wolfx `jma_eew` JSON (parsed through its embedded code telegram).
    WolfxJson,
}

/// Which JMA product the report is. Finer than [`Format`]: two products of one format
/// can carry the same event (VXSE43 and VXSE45 on the same link).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Product {
    /// Code telegram type 35: intensity only (level method / 100 gal).
    Code35,
    /// Code telegram type 36: M, intensity, arrival by low-accuracy methods or PLUM only.
    Code36,
    /// Code telegram type 37: M, intensity, arrival (normal).
    Code37,
    /// Code telegram type 39: cancel of the advanced-user telegram.
    Code39,
    /// Code telegram type 47: public warning with its embedded advanced part.
    Code47,
    /// Code telegram type 48: cancel of the public warning.
    Code48,
    /// XML VXSE42 delivery test (配信テスト).
    Vxse42,
    /// XML VXSE43 warning (警報).
    Vxse43,
    /// XML VXSE44 forecast (予報).
    Vxse44,
    /// XML VXSE45 ground-motion forecast (地震動予報).
    Vxse45,
}

/// What the report does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A forecast (予報) without any warned area.
    Forecast,
    /// The report announces or carries a warning (警報) for at least one area:
    /// code RT n2 = 1 or type 47, XML VXSE43 or any area of kind 1x, JSON `isWarning`.
    /// Defined by content, not by product, so the same report over two formats agrees.
    Warning,
    /// Cancels the event (取消 / type 39 / type 48).
    Cancel,
    /// A delivery test (VXSE42 or code status 30): proves the path, acts on nothing.
    DeliveryTest,
}

/// Operational status of the telegram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 通常: a real report.
    Normal,
    /// 訓練: a drill; never to drive outputs as a real event.
    Training,
    /// 試験 / delivery test / reference: never operational.
    Test,
}

/// Whether the report is new, a correction, or a cancel (Head/InfoType, NCN a).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InfoType {
    /// 発表.
    Issued,
    /// 訂正 (code NCN a = 6, 7 or 8).
    Correction,
    /// 取消.
    Cancel,
}

/// JMA's EEW processing system that issued a code telegram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssuingSystem {
    /// 東京 (bb = 03).
    Tokyo,
    /// 大阪 (bb = 04).
    Osaka,
}

/// A 14-digit event id (`ND` in code telegrams, `EventID` in XML): the key that ties
/// every report of one earthquake together.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(String);

impl EventId {
    /// Accepts exactly 14 ASCII digits.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit())).then(|| EventId(s.to_owned()))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The date and time the id encodes (yyyymmddhhmmss, JST), if it is a real time.
    pub fn time(&self) -> Option<JstTime> {
        let n = |r: std::ops::Range<usize>| self.0.get(r).and_then(|s| s.parse::<u32>().ok());
        let year = i32::try_from(n(0..4)?).ok()?;
        JstTime::from_parts(year, n(4..6)?, n(6..8)?, n(8..10)?, n(10..12)?, n(12..14)?)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Land or sea epicentre (RT n1, XML `LandOrSea`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LandOrSea {
    /// 内陸.
    Land,
    /// 海域.
    Sea,
}

/// The hypocenter as the report states it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hypocenter {
    /// 3-digit epicentre-name code (震央地名), when given.
    pub code: Option<String>,
    /// Epicentre name from the code table (or the report's own text).
    pub name: Option<String>,
    /// Latitude, degrees north (negative south).
    pub lat: f64,
    /// Longitude, degrees east (negative west).
    pub lon: f64,
    /// Depth in km; `None` when the report says unknown.
    pub depth_km: Option<u16>,
    /// 仮定震源要素: the hypocenter is an assumption (PLUM-only / single station);
    /// distances from it mean nothing.
    pub assumed: bool,
    /// Land or sea, when stated.
    pub land_or_sea: Option<LandOrSea>,
}

/// Accuracy digits (RK n1..n5 / XML ranks). `None` where the report says unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Accuracy {
    /// Epicentre accuracy (RK n1 / `Epicenter@rank`), 1–8.
    pub epicenter: Option<u8>,
    /// Depth accuracy (RK n2 / `Depth@rank`), 1–8.
    pub depth: Option<u8>,
    /// Magnitude accuracy (RK n3 / `MagnitudeCalculation@rank`).
    pub magnitude: Option<u8>,
    /// Number of stations used for M (RK n4 / `NumberOfMagnitudeCalculation`), 1–5 (5 = 5+).
    pub magnitude_stations: Option<u8>,
    /// Hypocentre accuracy (RK n5 / `Epicenter@rank2`), 1–4, or 9 = final-equivalent.
    pub hypocenter: Option<u8>,
}

/// Why the maximum intensity changed since the previous report (RC / `Appendix`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct IntensityChange {
    /// 0 no significant change, 1 up by ≥ 1, 2 down by ≥ 1.
    pub change: u8,
    /// 0 none, 1 M, 2 epicentre, 3 both, 4 depth, 9 PLUM.
    pub reason: Option<u8>,
}

/// The forecast for one area (EBI group / XML `Pref/Area` / JSON `regions[]`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AreaForecast {
    /// 3-digit area code (地震情報／細分区域).
    pub code: String,
    /// Area name from the code table.
    pub name: String,
    /// Predicted intensity range.
    pub intensity: IntensityRange,
    /// Highest predicted long-period class for the area, when given.
    pub long_period_class: Option<u8>,
    /// The full long-period range, when given.
    pub long_period: Option<LongPeriodRange>,
    /// A warning (警報) is in effect for this area.
    pub warning: bool,
    /// Predicted S-wave (主要動) arrival; `None` when arrived, PLUM or not given.
    pub arrival: Option<JstTime>,
    /// The main motion is estimated to have already arrived.
    pub arrived: bool,
    /// Predicted by PLUM: no arrival prediction, shaking is imminent.
    pub plum: bool,
    /// For PLUM areas: when PLUM first predicted this class (the time the wire carries
    /// in the arrival field, which is *not* an arrival time).
    pub plum_predicted_at: Option<JstTime>,
}

/// A region, prefecture or area listed in a warning's headline (VXSE43 `Headline`,
/// type-47 `PAI/PPI/PBI`, JSON `zones/prefectures/regions`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WarnedRegion {
    /// Which list it comes from.
    pub level: RegionLevel,
    /// 4-digit (region / prefecture) or 3-digit (area) code.
    pub code: String,
    /// Name from the code table.
    pub name: String,
    /// Newly added by this report (not warned before).
    pub newly_added: bool,
}

/// Granularity of a [`WarnedRegion`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionLevel {
    /// 地方予報区 (99xx).
    Region,
    /// 府県予報区 (9xxx).
    Prefecture,
    /// 細分区域 (3-digit).
    Area,
}

/// Special circumstances of a report that the engine handles by explicit settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Flags {
    /// Some prediction is by PLUM (areas with no arrival time), or the report is PLUM-only.
    pub plum: bool,
    /// Deep event (depth > 150 km): JMA gives no intensity prediction.
    pub deep: bool,
    /// Level method (type 35 / 100 gal): no magnitude, hypocenter is the triggering station.
    pub level_method: bool,
    /// Based on one station (RK n4 = 1 or assumed hypocenter): false alarms are likelier.
    pub single_station: bool,
}

/// Depth beyond which JMA gives no intensity prediction and a report is "deep".
pub const DEEP_EVENT_KM: u16 = 150;

/// One EEW report, normalized. Built only by the parsers, which validate it: a value of
/// this type has passed every check in [`crate::telegram::validate`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Wire format.
    pub format: Format,
    /// JMA product.
    pub product: Product,
    /// Event id (14 digits).
    pub event_id: EventId,
    /// Report number within the event (第n報).
    pub serial: u32,
    /// 最終報: the last report of the event (a later cancel is still possible).
    #[serde(rename = "final")]
    pub final_report: bool,
    /// Forecast / warning / cancel / delivery test.
    pub kind: Kind,
    /// Normal / training / test.
    pub status: Status,
    /// Issued / correction / cancel.
    pub info_type: InfoType,
    /// When JMA issued this report.
    pub issued_at: Option<JstTime>,
    /// Origin time of the earthquake.
    pub origin_time: Option<JstTime>,
    /// Detection time (the code telegram's time field for level-method reports; XML
    /// `ArrivalTime` of the first P wave).
    pub detected_at: Option<JstTime>,
    /// Hypocenter, when the report gives one.
    pub hypocenter: Option<Hypocenter>,
    /// Magnitude (Mj), when known.
    pub magnitude: Option<f64>,
    /// Maximum predicted intensity over all areas, when predicted.
    pub max_intensity: Option<IntensityRange>,
    /// Maximum predicted long-period class, when predicted.
    pub max_long_period_class: Option<u8>,
    /// Accuracy ranks, when given.
    pub accuracy: Option<Accuracy>,
    /// Change of the maximum intensity since the previous report.
    pub max_intensity_change: Option<IntensityChange>,
    /// Per-area forecasts (usually areas at intensity 4 or more, or long-period ≥ 1/3).
    pub areas: Vec<AreaForecast>,
    /// Regions, prefectures and areas named by a warning's headline lists.
    pub warned_regions: Vec<WarnedRegion>,
    /// Special circumstances.
    pub flags: Flags,
    /// Tokyo or Osaka system (code telegrams only).
    pub issuing_system: Option<IssuingSystem>,
    /// Whether the report carries what it needs to drive outputs (see
    /// [`Report::actionable`] for the rule). A report with unknown magnitude and depth
    /// is still recorded and shown, but operates nothing.
    pub actionable: bool,
    /// Why [`Report::actionable`] is false, as a stable code.
    pub not_actionable_reason: Option<&'static str>,
}

impl Report {
    /// True when at least one listed area is under a warning.
    pub fn any_area_warned(&self) -> bool {
        self.areas.iter().any(|a| a.warning)
    }

    /// The area forecast for a 3-digit area code, if listed.
    pub fn area(&self, code: &str) -> Option<&AreaForecast> {
        self.areas.iter().find(|a| a.code == code)
    }

    /// Moves every time of the report by `delta` (issue, origin, detection, arrivals,
    /// PLUM times), keeping the event id: a recorded sequence replayed "as if now" for a
    /// drill or the demo. Times that would overflow are left as they are.
    pub fn shift_times(&mut self, delta: chrono::TimeDelta) {
        let shift = |t: &mut Option<JstTime>| {
            if let Some(v) = t
                && let Some(moved) = v.0.checked_add_signed(delta)
            {
                *v = JstTime(moved);
            }
        };
        shift(&mut self.issued_at);
        shift(&mut self.origin_time);
        shift(&mut self.detected_at);
        for a in &mut self.areas {
            shift(&mut a.arrival);
            shift(&mut a.plum_predicted_at);
        }
    }
}
