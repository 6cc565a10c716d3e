//! A [`Report`] written as a JMA 防災情報XML EEW document (VXSE43/44/45), the inverse of
//! [`super::jma_xml::parse`].
//!
//! Why XML: of the formats the appliance reads it is the one that carries every field a
//! report can hold — training status, PLUM areas and the assumed hypocentre, land or sea,
//! long-period classes, warnings per area and the warning's headline lists, times to the
//! millisecond. `eewgate whatif --write-telegrams` writes its reference earthquakes with
//! it, so `eewgate replay` can be run on exactly the reports the preview used.
//!
//! The promise, tested over every telegram of the fixture corpus: parsing the document
//! gives back the same report, except for what XML does not carry — `format` (always
//! `jma_xml`), `product` (the document's title, see [`product_for`]) and
//! `issuing_system` (code telegrams only). Reports XML cannot express are refused with an
//! [`EncodeError`] rather than written differently: cancels and delivery tests (a
//! different document, not needed here), a report without an issue time, and an area
//! that is neither arrived, PLUM nor given an arrival time.
//!
//! The document has the elements the parser reads and JMA's envelope around them
//! (`Control`, `Head`, namespaces). Areas are written in one `Pref` without a name or
//! code: the code tables compiled in do not say which 府県予報区 an area belongs to, and
//! the parser does not need it.

use std::fmt::Write as _;

use crate::intensity::{IntensityRange, LongPeriodRange, Upper};
use crate::report::{
    AreaForecast, Hypocenter, InfoType, JstTime, Kind, LandOrSea, Product, RegionLevel, Report,
    Status, WarnedRegion,
};

/// Why a report cannot be written as an XML document.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Cancels and delivery tests are other documents; only forecasts and warnings are
    /// written.
    #[error("a {0} report is not written as XML (only forecasts and warnings are)")]
    Unsupported(&'static str),
    /// A field the document needs is missing from the report.
    #[error("the report has no {0}")]
    Missing(&'static str),
    /// A combination XML cannot express (the parser would read it back differently).
    #[error("area {code}: {why}")]
    Unrepresentable {
        /// The area concerned.
        code: String,
        /// What cannot be expressed.
        why: &'static str,
    },
}

/// The document title for a report: the report's own XML product when it has one (a
/// VXSE43, 44 or 45 stays what it was); a warning with no warned area — which only the
/// warning product itself expresses — as VXSE43; anything else as VXSE45, the current
/// product that carries long-period classes.
pub fn product_for(report: &Report) -> Product {
    let warned = report.any_area_warned();
    match report.product {
        Product::Vxse43 => Product::Vxse43,
        _ if report.kind == Kind::Warning && !warned => Product::Vxse43,
        Product::Vxse44 => Product::Vxse44,
        _ => Product::Vxse45,
    }
}

fn title(product: Product) -> &'static str {
    match product {
        Product::Vxse43 => "緊急地震速報（警報）",
        Product::Vxse44 => "緊急地震速報（予報）",
        _ => "緊急地震速報（地震動予報）",
    }
}

/// Writes `report` as a JMA XML document (UTF-8 text).
pub fn encode(report: &Report) -> Result<String, EncodeError> {
    match report.kind {
        Kind::Cancel => return Err(EncodeError::Unsupported("cancel")),
        Kind::DeliveryTest => return Err(EncodeError::Unsupported("delivery test")),
        Kind::Forecast | Kind::Warning => {}
    }
    let info_type = match report.info_type {
        InfoType::Issued => "発表",
        InfoType::Correction => "訂正",
        InfoType::Cancel => return Err(EncodeError::Unsupported("cancel")),
    };
    let issued = report.issued_at.ok_or(EncodeError::Missing("issue time"))?;
    let status = match report.status {
        Status::Normal => "通常",
        Status::Training => "訓練",
        Status::Test => "試験",
    };
    let title = title(product_for(report));
    let utc = issued.0.naive_utc().format("%Y-%m-%dT%H:%M:%SZ");

    let mut x = String::with_capacity(4096);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str("<Report xmlns=\"http://xml.kishou.go.jp/jmaxml1/\" xmlns:jmx=\"http://xml.kishou.go.jp/jmaxml1/\">\n");
    let _ = writeln!(
        x,
        "<Control><Title>{title}</Title><DateTime>{utc}</DateTime><Status>{status}</Status>\
         <EditorialOffice>気象庁本庁</EditorialOffice><PublishingOffice>気象庁</PublishingOffice></Control>"
    );
    let _ = write!(
        x,
        "<Head xmlns=\"http://xml.kishou.go.jp/jmaxml1/informationBasis1/\"><Title>{title}</Title>\
         <ReportDateTime>{t}</ReportDateTime><TargetDateTime>{t}</TargetDateTime>\
         <EventID>{id}</EventID><InfoType>{info_type}</InfoType><Serial>{serial}</Serial>\
         <InfoKind>緊急地震速報</InfoKind><InfoKindVersion>1.2_0</InfoKindVersion>",
        t = issued.to_rfc3339(),
        id = report.event_id,
        serial = report.serial,
    );
    headline(&mut x, &report.warned_regions);
    x.push_str("</Head>\n");

    x.push_str("<Body xmlns=\"http://xml.kishou.go.jp/jmaxml1/body/seismology1/\" xmlns:jmx_eb=\"http://xml.kishou.go.jp/jmaxml1/elementBasis1/\">\n");
    earthquake(&mut x, report);
    intensity(&mut x, report)?;
    if report.final_report {
        x.push_str(
            "<NextAdvisory>この情報をもって、緊急地震速報：最終報とします。</NextAdvisory>\n",
        );
    }
    x.push_str("</Body>\n</Report>\n");
    Ok(x)
}

/// `Head/Headline`: each run of regions of one level as one `Information`, each region
/// as its own `Item`, so the parser reads them back in the same order.
fn headline(x: &mut String, regions: &[WarnedRegion]) {
    x.push_str("<Headline><Text></Text>");
    let mut rest = regions;
    while let Some(first) = rest.first() {
        let run = rest.iter().take_while(|r| r.level == first.level).count();
        let (this, next) = rest.split_at(run);
        let (list, code_type) = match first.level {
            RegionLevel::Region => ("緊急地震速報（地方予報区）", "緊急地震速報／地方予報区"),
            RegionLevel::Prefecture => ("緊急地震速報（府県予報区）", "緊急地震速報／府県予報区"),
            RegionLevel::Area => ("緊急地震速報（細分区域）", "地震情報／細分区域"),
        };
        let _ = write!(x, "<Information type=\"{list}\">");
        for r in this {
            let (last_name, last_code) = if r.newly_added {
                ("なし", "00")
            } else {
                ("緊急地震速報（警報）", "31")
            };
            let _ = write!(
                x,
                "<Item><Kind><Name>緊急地震速報（警報）</Name><Code>31</Code></Kind>\
                 <LastKind><Name>{last_name}</Name><Code>{last_code}</Code></LastKind>\
                 <Areas codeType=\"{code_type}\"><Area><Name>{name}</Name><Code>{code}</Code></Area></Areas></Item>",
                name = escape(&r.name),
                code = escape(&r.code),
            );
        }
        x.push_str("</Information>");
        rest = next;
    }
    x.push_str("</Headline>");
}

fn earthquake(x: &mut String, r: &Report) {
    x.push_str("<Earthquake>");
    if let Some(t) = r.origin_time {
        let _ = write!(x, "<OriginTime>{t}</OriginTime>");
    }
    if let Some(t) = r.detected_at {
        let _ = write!(x, "<ArrivalTime>{t}</ArrivalTime>");
    }
    if r.hypocenter.as_ref().is_some_and(|h| h.assumed) {
        x.push_str("<Condition>仮定震源要素</Condition>");
    }
    if r.hypocenter.is_some() || r.accuracy.is_some() {
        x.push_str("<Hypocenter><Area>");
        if let Some(h) = &r.hypocenter {
            hypocenter_area(x, h);
        }
        x.push_str("</Area>");
        if let Some(a) = &r.accuracy {
            let d = |v: Option<u8>| v.unwrap_or(0);
            let _ = write!(
                x,
                "<Accuracy><Epicenter rank=\"{}\" rank2=\"{}\">NaN</Epicenter><Depth rank=\"{}\">NaN</Depth>\
                 <MagnitudeCalculation rank=\"{}\">NaN</MagnitudeCalculation>\
                 <NumberOfMagnitudeCalculation>{}</NumberOfMagnitudeCalculation></Accuracy>",
                d(a.epicenter),
                d(a.hypocenter),
                d(a.depth),
                d(a.magnitude),
                d(a.magnitude_stations),
            );
        }
        x.push_str("</Hypocenter>");
    }
    match r.magnitude {
        Some(m) => {
            let _ = write!(x, "<jmx_eb:Magnitude type=\"Mj\">{m}</jmx_eb:Magnitude>");
        }
        None => x.push_str(
            "<jmx_eb:Magnitude type=\"Mj\" condition=\"不明\" description=\"Ｍ不明\">NaN</jmx_eb:Magnitude>",
        ),
    }
    x.push_str("</Earthquake>\n");
}

fn hypocenter_area(x: &mut String, h: &Hypocenter) {
    if let Some(name) = &h.name {
        let _ = write!(x, "<Name>{}</Name>", escape(name));
    }
    if let Some(code) = &h.code {
        let _ = write!(x, "<Code type=\"震央地名\">{}</Code>", escape(code));
    }
    // ISO 6709: signed degrees, then the height in metres (negative = depth, `+0` = very
    // shallow); no height when the depth is unknown. `{}` of an f64 is its shortest exact
    // form, so the parser reads back the very same value.
    let sign = |v: f64| if v < 0.0 { '-' } else { '+' };
    let _ = write!(
        x,
        "<jmx_eb:Coordinate>{}{}{}{}",
        sign(h.lat),
        h.lat.abs(),
        sign(h.lon),
        h.lon.abs()
    );
    match h.depth_km {
        Some(0) => x.push_str("+0"),
        Some(d) => {
            let _ = write!(x, "-{}", u32::from(d) * 1000);
        }
        None => {}
    }
    x.push_str("/</jmx_eb:Coordinate>");
    match h.land_or_sea {
        Some(LandOrSea::Land) => x.push_str("<LandOrSea>内陸</LandOrSea>"),
        Some(LandOrSea::Sea) => x.push_str("<LandOrSea>海域</LandOrSea>"),
        None => {}
    }
}

fn intensity(x: &mut String, r: &Report) -> Result<(), EncodeError> {
    let any = r.max_intensity.is_some()
        || r.max_long_period_class.is_some()
        || r.max_intensity_change.is_some()
        || !r.areas.is_empty();
    if !any {
        return Ok(());
    }
    x.push_str("<Intensity><Forecast>");
    if let Some(range) = &r.max_intensity {
        intensity_range(x, range);
    }
    if let Some(class) = r.max_long_period_class {
        // The report keeps only the highest class; that class alone is the range.
        long_period_range(
            x,
            &LongPeriodRange {
                lower: class,
                upper: Upper::At(class),
            },
        );
    }
    if let Some(c) = &r.max_intensity_change {
        let _ = write!(x, "<Appendix><MaxIntChange>{}</MaxIntChange>", c.change);
        if let Some(reason) = c.reason {
            let _ = write!(x, "<MaxIntChangeReason>{reason}</MaxIntChangeReason>");
        }
        x.push_str("</Appendix>");
    }
    if !r.areas.is_empty() {
        x.push_str("<Pref>");
        for a in &r.areas {
            area(x, a)?;
        }
        x.push_str("</Pref>");
    }
    x.push_str("</Forecast></Intensity>\n");
    Ok(())
}

fn intensity_range(x: &mut String, range: &IntensityRange) {
    let to = match range.upper {
        Upper::At(u) => u.as_str(),
        Upper::Over => "over",
    };
    let _ = write!(
        x,
        "<ForecastInt><From>{}</From><To>{to}</To></ForecastInt>",
        range.lower.as_str()
    );
}

fn long_period_range(x: &mut String, range: &LongPeriodRange) {
    let _ = write!(x, "<ForecastLgInt><From>{}</From><To>", range.lower);
    match range.upper {
        Upper::At(u) => {
            let _ = write!(x, "{u}");
        }
        Upper::Over => x.push_str("over"),
    }
    x.push_str("</To></ForecastLgInt>");
}

/// One `Pref/Area`. The kind code's second digit says how the arrival is given: 0 an
/// arrival time, 1 arrived (the condition text), 9 PLUM (the time PLUM predicted it).
fn area(x: &mut String, a: &AreaForecast) -> Result<(), EncodeError> {
    let unrepresentable = |why| EncodeError::Unrepresentable {
        code: a.code.clone(),
        why,
    };
    let (arrival_digit, time, condition) = match (a.arrived, a.plum, a.arrival) {
        (true, false, None) => ('1', None, true),
        (false, true, None) => ('9', a.plum_predicted_at, false),
        (false, false, Some(t)) => ('0', Some(t), false),
        (false, false, None) => {
            return Err(unrepresentable(
                "neither arrived, PLUM nor given an arrival time (XML has no such area)",
            ));
        }
        _ => {
            return Err(unrepresentable(
                "marked both arrived and PLUM, or given a time besides",
            ));
        }
    };
    if a.long_period.is_none() && a.long_period_class.is_some() {
        return Err(unrepresentable(
            "a long-period class without its range (XML carries the range)",
        ));
    }
    let warning_digit = if a.warning { '1' } else { '0' };
    let kind_name = if a.warning {
        "緊急地震速報（警報）"
    } else {
        "緊急地震速報（予報）"
    };
    let _ = write!(
        x,
        "<Area><Name>{}</Name><Code>{}</Code><Category><Kind><Name>{kind_name}</Name>\
         <Code>{warning_digit}{arrival_digit}</Code></Kind></Category>",
        escape(&a.name),
        escape(&a.code)
    );
    intensity_range(x, &a.intensity);
    if let Some(lp) = &a.long_period {
        long_period_range(x, lp);
    }
    if condition {
        x.push_str("<Condition>既に主要動到達と推測</Condition>");
    }
    if let Some(t) = time {
        write_time(x, "ArrivalTime", t);
    }
    x.push_str("</Area>");
    Ok(())
}

fn write_time(x: &mut String, element: &str, t: JstTime) {
    let _ = write!(x, "<{element}>{t}</{element}>");
}

/// Text content and attribute values: the five characters XML gives a meaning escaped,
/// and the control characters XML 1.0 does not allow dropped (newline and tab stay).
/// Shared by every XML eewgate writes (this encoder, the CAP payload).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_five_special_characters_are_escaped() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
        assert_eq!(escape("石川県能登地方"), "石川県能登地方");
    }
}
