//! JMA 防災情報XML EEW documents: VXSE42 (delivery test), VXSE43 (warning), VXSE44
//! (forecast) and VXSE45 (ground-motion forecast with long-period classes). Element
//! reference: README "Input formats" and the format reference, section 2.
//!
//! The document is read with quick-xml into a small element tree keyed by *local* names
//! (`jmx_eb:Coordinate` is `Coordinate`; namespaces are not checked). The tree is bounded
//! ([`MAX_DEPTH`], [`MAX_ELEMENTS`]) so hostile input cannot exhaust memory. Only the five
//! predefined entities and character references are resolved; a DOCTYPE is refused, so
//! no external or user-defined entity is ever expanded. The input must be UTF-8, as JMA
//! issues it.
//!
//! Fields are then read by path and mapped with the semantics of the code-telegram
//! parser (ADR 0003), so the same report received over two links yields the same
//! [`Report`].

use chrono::DateTime;
use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::errors::{Error as XmlError, IllFormedError, SyntaxError};
use quick_xml::events::{BytesDecl, BytesRef, BytesStart, Event};

use super::{MAX_INPUT_BYTES, Reason, Rejection, finish, reject};
use crate::codes;
use crate::intensity::{Intensity, IntensityRange, LongPeriodRange};
use crate::report::{
    Accuracy, AreaForecast, EventId, Flags, Format, Hypocenter, InfoType, IntensityChange, JstTime,
    Kind, LandOrSea, Product, RegionLevel, Report, Status, WarnedRegion,
};

/// Deepest element nesting accepted. Real EEW documents nest 8 levels
/// (`Report/Head/Headline/Information/Item/Areas/Area/Code`).
pub const MAX_DEPTH: usize = 32;

/// Most elements accepted in one document. A VXSE45 listing every forecast area has
/// about 4,000; anything far beyond is not an EEW document.
pub const MAX_ELEMENTS: usize = 20_000;

/// `Earthquake/Condition` of a PLUM-only report: the hypocentre is an assumption.
const ASSUMED_HYPOCENTER: &str = "仮定震源要素";
/// `Area/Condition` of an area whose main motion has arrived.
const ARRIVED: &str = "既に主要動到達と推測";

/// Parses one XML document.
pub fn parse(bytes: &[u8]) -> Result<Report, Rejection> {
    if bytes.len() > MAX_INPUT_BYTES {
        return reject(
            Reason::TooLarge,
            format!(
                "the XML document is {} bytes; no EEW document is larger than {MAX_INPUT_BYTES} bytes",
                bytes.len()
            ),
        );
    }
    let root = read_tree(bytes)?;
    if root.name != "Report" {
        return reject(
            Reason::UnknownFormat,
            format!(
                "the XML root element is <{}>, not a JMA <Report>",
                root.name
            ),
        );
    }
    let doc = Node {
        el: &root,
        path: String::new(),
    };
    build(&doc)
}

// ---------------------------------------------------------------------------------------
// The element tree
// ---------------------------------------------------------------------------------------

/// One element: local name, attributes (local names, namespace declarations dropped),
/// its own text (entities resolved, not trimmed) and its child elements.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
}

/// Builds the tree from reader events, enforcing the limits.
#[derive(Debug, Default)]
struct TreeBuilder {
    open: Vec<Element>,
    root: Option<Element>,
    count: usize,
}

impl TreeBuilder {
    /// A start tag (`empty` for `<x/>`, which is closed at once).
    fn start(&mut self, tag: &BytesStart<'_>, empty: bool) -> Result<(), Rejection> {
        let element = element(tag)?;
        if self.root.is_some() {
            return reject(
                Reason::Malformed,
                format!(
                    "the element <{}> follows the end of the root element; an XML document has one root",
                    element.name
                ),
            );
        }
        self.count += 1;
        if self.count > MAX_ELEMENTS {
            return reject(
                Reason::Malformed,
                format!(
                    "the XML document has more than {MAX_ELEMENTS} elements; no EEW document has so many"
                ),
            );
        }
        if self.open.len() >= MAX_DEPTH {
            return reject(
                Reason::Malformed,
                format!(
                    "the XML document nests elements more than {MAX_DEPTH} levels deep; no EEW document does"
                ),
            );
        }
        self.open.push(element);
        if empty { self.end() } else { Ok(()) }
    }

    /// An end tag (quick-xml has checked that it matches the open element).
    fn end(&mut self) -> Result<(), Rejection> {
        let Some(done) = self.open.pop() else {
            return reject(
                Reason::Malformed,
                "the XML document has an end tag without a start tag",
            );
        };
        match self.open.last_mut() {
            Some(parent) => parent.children.push(done),
            None => self.root = Some(done),
        }
        Ok(())
    }

    /// Character data; outside the root element only whitespace is allowed.
    fn text(&mut self, text: &str) -> Result<(), Rejection> {
        match self.open.last_mut() {
            Some(el) => {
                el.text.push_str(text);
                Ok(())
            }
            None if trim_xml(text).is_empty() => Ok(()),
            None => reject(
                Reason::Malformed,
                format!(
                    "the XML document has text outside its root element: {:?}",
                    truncate(trim_xml(text))
                ),
            ),
        }
    }

    fn finish(self) -> Result<Element, Rejection> {
        if let Some(open) = self.open.last() {
            return reject(
                Reason::Truncated,
                format!(
                    "the XML document ends before <{}> is closed: it is cut short",
                    open.name
                ),
            );
        }
        self.root.ok_or_else(|| {
            Rejection::new(
                Reason::Truncated,
                "the XML document has no root element: it is cut short",
            )
        })
    }
}

/// Reads the bytes into an element tree.
fn read_tree(bytes: &[u8]) -> Result<Element, Rejection> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Rejection::new(
            Reason::InvalidEncoding,
            format!(
                "the XML document is not valid UTF-8 (at byte {}); JMA documents are UTF-8",
                e.valid_up_to()
            ),
        )
    })?;
    if trim_xml(text).is_empty() {
        return reject(Reason::Empty, "the XML document is empty");
    }
    let mut reader = Reader::from_str(text);
    let mut tree = TreeBuilder::default();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| xml_error(&e, reader.error_position()))?;
        match event {
            Event::Start(tag) => tree.start(&tag, false)?,
            Event::Empty(tag) => tree.start(&tag, true)?,
            Event::End(_) => tree.end()?,
            Event::Text(t) => tree.text(&t)?,
            Event::CData(t) => tree.text(&t)?,
            Event::GeneralRef(r) => {
                let mut buf = [0u8; 4];
                tree.text(resolve_reference(&r)?.encode_utf8(&mut buf))?;
            }
            Event::Decl(decl) => check_declaration(&decl)?,
            Event::DocType(_) => {
                return reject(
                    Reason::Malformed,
                    "the XML document has a DOCTYPE declaration; JMA documents have none and its entities are not trusted",
                );
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => return tree.finish(),
        }
    }
}

/// An element's local name and attributes.
fn element(tag: &BytesStart<'_>) -> Result<Element, Rejection> {
    let qname = tag.name();
    if !is_xml_name(qname.as_ref()) {
        return reject(
            Reason::Malformed,
            format!(
                "{:?} is not a valid XML element name",
                truncate(qname.as_ref())
            ),
        );
    }
    let name = tag.local_name().as_ref().to_owned();
    let mut attrs = Vec::new();
    for attr in tag.attributes() {
        let attr = attr.map_err(|e| {
            Rejection::new(
                Reason::Malformed,
                format!("the element <{name}> has a broken attribute: {e}"),
            )
        })?;
        let key = attr.key.as_ref();
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| {
                Rejection::new(
                    Reason::Malformed,
                    format!("the attribute {key} of <{name}> has an invalid value: {e}"),
                )
            })?;
        attrs.push((
            attr.key.local_name().as_ref().to_owned(),
            value.into_owned(),
        ));
    }
    Ok(Element {
        name,
        attrs,
        ..Element::default()
    })
}

/// A (qualified) XML name: letters, digits and `_ - . :`, not starting with a digit,
/// `-` or `.`. Stricter than quick-xml, which accepts `<<x>` as an element named `<x`.
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '\u{B7}'))
}

/// A character reference, or one of the five predefined entities. Anything else would
/// need a DTD, which is refused.
fn resolve_reference(r: &BytesRef<'_>) -> Result<char, Rejection> {
    let name: &str = r;
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) => Ok(c),
            _ => reject(
                Reason::Malformed,
                format!("the character reference &{name}; is not a valid character"),
            ),
        };
    }
    match name {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        _ => reject(
            Reason::Malformed,
            format!(
                "the entity reference &{name}; is not defined; JMA documents use only the predefined XML entities"
            ),
        ),
    }
}

/// The XML declaration must not announce an encoding other than UTF-8.
fn check_declaration(decl: &BytesDecl<'_>) -> Result<(), Rejection> {
    match decl.encoding() {
        None => Ok(()),
        Some(Ok(enc)) if enc.eq_ignore_ascii_case("utf-8") || enc.eq_ignore_ascii_case("utf8") => {
            Ok(())
        }
        Some(Ok(enc)) => reject(
            Reason::InvalidEncoding,
            format!("the XML declaration announces encoding {enc:?}; JMA documents are UTF-8"),
        ),
        Some(Err(e)) => reject(
            Reason::Malformed,
            format!("the XML declaration is broken: {e}"),
        ),
    }
}

/// A quick-xml error as a rejection: constructs left open at the end of the input mean
/// the document is cut short; everything else is a syntax error.
fn xml_error(e: &XmlError, position: u64) -> Rejection {
    let cut_short = matches!(
        e,
        XmlError::Syntax(
            SyntaxError::UnclosedPI
                | SyntaxError::UnclosedXmlDecl
                | SyntaxError::UnclosedComment
                | SyntaxError::UnclosedDoctype
                | SyntaxError::UnclosedCData
                | SyntaxError::UnclosedTag
                | SyntaxError::UnclosedSingleQuotedAttributeValue
                | SyntaxError::UnclosedDoubleQuotedAttributeValue
        ) | XmlError::IllFormed(IllFormedError::MissingEndTag(_))
    );
    if cut_short {
        Rejection::new(
            Reason::Truncated,
            format!(
                "the XML document ends inside markup at byte {position} ({e}): it is cut short"
            ),
        )
    } else {
        Rejection::new(
            Reason::Malformed,
            format!("the XML document is not well-formed at byte {position}: {e}"),
        )
    }
}

/// Trims XML whitespace (space, tab, CR, LF) only: a full-width space is content.
fn trim_xml(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

/// At most 40 characters of `s`, for messages.
fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().nth(40).is_some() {
        out.push('…');
    }
    out
}

/// An element with its path from the root (`Head/EventID`), for lookups and messages.
#[derive(Debug)]
struct Node<'a> {
    el: &'a Element,
    path: String,
}

impl<'a> Node<'a> {
    fn child_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.path)
        }
    }

    /// Every child element called `name`, in document order.
    fn all<'n>(&'n self, name: &'n str) -> impl Iterator<Item = Node<'a>> + 'n {
        let el: &'a Element = self.el;
        el.children
            .iter()
            .filter(move |c| c.name == name)
            .map(move |c| Node {
                el: c,
                path: self.child_path(name),
            })
    }

    /// The child element `name`, which may appear at most once.
    fn child(&self, name: &str) -> Result<Option<Node<'a>>, Rejection> {
        let mut found = self.all(name);
        let first = found.next();
        if found.next().is_some() {
            return reject(
                Reason::Malformed,
                format!(
                    "{} appears more than once; it must appear at most once",
                    self.child_path(name)
                ),
            );
        }
        Ok(first)
    }

    /// The child element `name`, which must appear exactly once.
    fn require(&self, name: &str) -> Result<Node<'a>, Rejection> {
        self.child(name)?.ok_or_else(|| {
            Rejection::new(
                Reason::MissingField,
                format!("the document has no {}", self.child_path(name)),
            )
        })
    }

    /// This element's text without surrounding XML whitespace.
    fn text(&self) -> &'a str {
        let el: &'a Element = self.el;
        trim_xml(&el.text)
    }

    /// The text of the required child `name`, which must not be empty.
    fn require_text(&self, name: &str) -> Result<&'a str, Rejection> {
        let node = self.require(name)?;
        match node.text() {
            "" => reject(Reason::MissingField, format!("{} is empty", node.path)),
            t => Ok(t),
        }
    }

    /// The text of the optional child `name`; `None` when absent or empty.
    fn opt_text(&self, name: &str) -> Result<Option<&'a str>, Rejection> {
        Ok(self
            .child(name)?
            .map(|n| n.text())
            .filter(|t| !t.is_empty()))
    }

    /// The attribute `name` (local name).
    fn attr(&self, name: &str) -> Option<&'a str> {
        let el: &'a Element = self.el;
        el.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

// ---------------------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------------------

/// Maps the tree to a report.
fn build(doc: &Node<'_>) -> Result<Report, Rejection> {
    let control = doc.require("Control")?;
    let product = product(doc, &control)?;
    let status = match control.require_text("Status")? {
        "通常" => Status::Normal,
        "訓練" => Status::Training,
        "試験" => Status::Test,
        other => {
            return reject(
                Reason::UnknownCode,
                format!("Control/Status {other:?} is not 通常, 訓練 or 試験"),
            );
        }
    };

    let head = doc.require("Head")?;
    let id = head.require_text("EventID")?;
    let event_id = EventId::parse(id).ok_or_else(|| {
        Rejection::new(
            Reason::InvalidField,
            format!("Head/EventID {id:?} is not a 14-digit event id"),
        )
    })?;
    let serial = serial(head.require_text("Serial")?)?;
    let info_type = match head.require_text("InfoType")? {
        "発表" | "遅延" => InfoType::Issued,
        "訂正" => InfoType::Correction,
        "取消" => InfoType::Cancel,
        other => {
            return reject(
                Reason::UnknownCode,
                format!("Head/InfoType {other:?} is not 発表, 訂正, 遅延 or 取消"),
            );
        }
    };
    let issued_at = time(&head.require("ReportDateTime")?)?;
    let body = doc.require("Body")?;

    let mut report = Report {
        format: Format::JmaXml,
        product,
        event_id,
        serial,
        final_report: false,
        kind: Kind::Cancel,
        status,
        info_type,
        issued_at: Some(issued_at),
        origin_time: None,
        detected_at: None,
        hypocenter: None,
        magnitude: None,
        max_intensity: None,
        max_long_period_class: None,
        accuracy: None,
        max_intensity_change: None,
        areas: Vec::new(),
        warned_regions: Vec::new(),
        flags: Flags::default(),
        issuing_system: None,
        actionable: false,
        not_actionable_reason: None,
    };

    if info_type == InfoType::Cancel {
        // A cancel carries only Body/Text; content would contradict it.
        for part in ["Earthquake", "Intensity"] {
            if body.child(part)?.is_some() {
                return reject(
                    Reason::Inconsistent,
                    format!("a cancel (InfoType 取消) carries no Body/{part}, but this one does"),
                );
            }
        }
        return finish(report);
    }

    let quake = match body.child("Earthquake")? {
        Some(eq) => Some(Quake::parse(&eq)?),
        // The delivery test carries only a text.
        None if product == Product::Vxse42 => None,
        None => return reject(Reason::MissingField, "the document has no Body/Earthquake"),
    };
    let forecast = match body.child("Intensity")? {
        Some(intensity) => match intensity.child("Forecast")? {
            Some(f) => Forecast::parse(&f)?,
            None => Forecast::default(),
        },
        None => Forecast::default(),
    };
    let warned_regions = warned_regions(&head)?;

    let any_area_warned = forecast.areas.iter().any(|a| a.warning);
    report.kind = if product == Product::Vxse42 {
        Kind::DeliveryTest
    } else if product == Product::Vxse43 || any_area_warned {
        Kind::Warning
    } else {
        Kind::Forecast
    };
    report.final_report = body.child("NextAdvisory")?.is_some();
    if let Some(q) = quake {
        let assumed = q.assumed;
        report.flags = Flags {
            plum: assumed,
            deep: false,
            level_method: q.origin_time.is_none() && !assumed,
            single_station: q.accuracy.is_some_and(|a| a.magnitude_stations == Some(1)) || assumed,
        };
        report.origin_time = q.origin_time;
        report.detected_at = q.detected_at;
        report.hypocenter = q.hypocenter;
        report.magnitude = q.magnitude;
        report.accuracy = q.accuracy;
    }
    report.max_intensity = forecast.max_intensity;
    report.max_long_period_class = forecast.max_long_period.map(|r| r.max_class());
    report.max_intensity_change = forecast.change;
    report.areas = forecast.areas;
    report.warned_regions = warned_regions;
    finish(report)
}

/// The product, from `Control/Title` (or `Head/Title` when Control has none).
fn product(doc: &Node<'_>, control: &Node<'_>) -> Result<Product, Rejection> {
    let control_title = control.opt_text("Title")?;
    let head_title = match doc.child("Head")? {
        Some(head) => head.opt_text("Title")?,
        None => None,
    };
    let Some(title) = control_title.or(head_title) else {
        return reject(
            Reason::MissingField,
            "the document has neither Control/Title nor Head/Title",
        );
    };
    let product = match title {
        "緊急地震速報配信テスト" => Product::Vxse42,
        "緊急地震速報（警報）" => Product::Vxse43,
        "緊急地震速報（予報）" => Product::Vxse44,
        "緊急地震速報（地震動予報）" => Product::Vxse45,
        other => {
            return reject(
                Reason::UnsupportedProduct,
                format!(
                    "the document title {:?} is not an earthquake early warning (VXSE42, VXSE43, VXSE44 or VXSE45)",
                    truncate(other)
                ),
            );
        }
    };
    if let (Some(c), Some(h)) = (control_title, head_title)
        && c != h
    {
        return reject(
            Reason::Inconsistent,
            format!(
                "Control/Title {c:?} differs from Head/Title {:?}",
                truncate(h)
            ),
        );
    }
    Ok(product)
}

/// `Head/Serial`: a positive integer.
fn serial(s: &str) -> Result<u32, Rejection> {
    let invalid = || {
        Rejection::new(
            Reason::InvalidField,
            format!("Head/Serial {s:?} is not a report number ≥ 1"),
        )
    };
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match s.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(invalid()),
    }
}

/// An ISO 8601 date-time with offset, converted to JST.
fn time(node: &Node<'_>) -> Result<JstTime, Rejection> {
    let text = node.text();
    if text.is_empty() {
        return reject(Reason::MissingField, format!("{} is empty", node.path));
    }
    DateTime::parse_from_rfc3339(text)
        .map(JstTime::from_datetime)
        .map_err(|_| {
            Rejection::new(
                Reason::InvalidField,
                format!(
                    "{} {:?} is not an ISO 8601 date-time with offset",
                    node.path,
                    truncate(text)
                ),
            )
        })
}

/// `Body/Earthquake`.
#[derive(Debug)]
struct Quake {
    origin_time: Option<JstTime>,
    detected_at: Option<JstTime>,
    assumed: bool,
    hypocenter: Option<Hypocenter>,
    magnitude: Option<f64>,
    accuracy: Option<Accuracy>,
}

impl Quake {
    fn parse(eq: &Node<'_>) -> Result<Self, Rejection> {
        let origin_time = eq.child("OriginTime")?.map(|n| time(&n)).transpose()?;
        let detected_at = eq.child("ArrivalTime")?.map(|n| time(&n)).transpose()?;
        let assumed = match eq.opt_text("Condition")? {
            None => false,
            Some(ASSUMED_HYPOCENTER) => true,
            Some(other) => {
                return reject(
                    Reason::UnknownCode,
                    format!(
                        "Body/Earthquake/Condition {:?} is not {ASSUMED_HYPOCENTER}",
                        truncate(other)
                    ),
                );
            }
        };
        let hypo = eq.child("Hypocenter")?;
        let hypocenter = match &hypo {
            Some(h) => match h.child("Area")? {
                Some(area) => hypocenter(&area, assumed)?,
                None => None,
            },
            None => None,
        };
        let accuracy = match &hypo {
            Some(h) => h.child("Accuracy")?.map(|a| accuracy(&a)).transpose()?,
            None => None,
        };
        let magnitude = eq
            .child("Magnitude")?
            .map(|m| magnitude(&m))
            .transpose()?
            .flatten();
        Ok(Self {
            origin_time,
            detected_at,
            assumed,
            hypocenter,
            magnitude,
            accuracy,
        })
    }
}

/// `Hypocenter/Area`; `None` when the coordinate is absent or empty.
fn hypocenter(area: &Node<'_>, assumed: bool) -> Result<Option<Hypocenter>, Rejection> {
    let Some(coordinate) = area.child("Coordinate")? else {
        return Ok(None);
    };
    let Some((lat, lon, depth_km)) = iso6709(coordinate.text(), &coordinate.path)? else {
        return Ok(None);
    };
    // The epicentre-name code is the Code of type 震央地名 (an untyped Code is accepted).
    let code_node = area
        .all("Code")
        .find(|c| matches!(c.attr("type"), None | Some("震央地名")));
    let code = match code_node {
        None => None,
        Some(node) => {
            let c = node.text();
            if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_digit()) {
                return reject(
                    Reason::InvalidField,
                    format!(
                        "{} {:?} is not a 3-digit epicentre code",
                        node.path,
                        truncate(c)
                    ),
                );
            }
            Some(c.to_owned())
        }
    };
    let name = match &code {
        Some(c) => Some(
            codes::EPICENTER
                .name(c)
                .ok_or_else(|| {
                    Rejection::new(
                        Reason::UnknownCode,
                        format!("the epicentre code {c} is not in JMA's code table 41"),
                    )
                })?
                .to_owned(),
        ),
        None => area.opt_text("Name")?.map(str::to_owned),
    };
    let land_or_sea = match area.opt_text("LandOrSea")? {
        None => None,
        Some("内陸") => Some(LandOrSea::Land),
        Some("海域") => Some(LandOrSea::Sea),
        Some(other) => {
            return reject(
                Reason::UnknownCode,
                format!(
                    "{}/LandOrSea {:?} is not 内陸 or 海域",
                    area.path,
                    truncate(other)
                ),
            );
        }
    };
    Ok(Some(Hypocenter {
        code,
        name,
        lat,
        lon,
        depth_km,
        assumed,
        land_or_sea,
    }))
}

/// An ISO 6709 point `+33.2+132.4-50000/`: latitude and longitude in degrees, then an
/// optional height in metres (negative = depth; `+0` = very shallow, depth 0; no height
/// = depth unknown). `None` for an empty coordinate.
fn iso6709(s: &str, path: &str) -> Result<Option<(f64, f64, Option<u16>)>, Rejection> {
    if s.is_empty() {
        return Ok(None);
    }
    let invalid = |why: &str| {
        Rejection::new(
            Reason::InvalidField,
            format!(
                "{path} {:?} is not an ISO 6709 point +lat+lon-depth/: {why}",
                truncate(s)
            ),
        )
    };
    let Some(body) = s.strip_suffix('/') else {
        return Err(invalid("it must end with /"));
    };
    // Split before every sign: each component is a sign and a decimal number.
    let mut parts: Vec<(bool, &str)> = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let negative = match rest.as_bytes().first() {
            Some(b'+') => false,
            Some(b'-') => true,
            _ => return Err(invalid("each component must start with + or -")),
        };
        let tail = rest.get(1..).unwrap_or_default();
        let end = tail.find(['+', '-']).unwrap_or(tail.len());
        let (number, next) = tail.split_at(end);
        let digits_ok = !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && number.bytes().filter(|&b| b == b'.').count() <= 1
            && number.bytes().next().is_some_and(|b| b.is_ascii_digit());
        if !digits_ok {
            return Err(invalid("a component is not a decimal number"));
        }
        parts.push((negative, number));
        rest = next;
    }
    let value = |(negative, number): (bool, &str), int_digits: usize| -> Result<f64, Rejection> {
        let whole = number.split('.').next().unwrap_or_default();
        if whole.len() > int_digits {
            return Err(invalid("latitude and longitude must be in degrees"));
        }
        let v: f64 = number
            .parse()
            .map_err(|_| invalid("a component is not a number"))?;
        Ok(if negative { -v } else { v })
    };
    let mut parts = parts.into_iter();
    let (Some(lat), Some(lon)) = (parts.next(), parts.next()) else {
        return Err(invalid("it needs a latitude and a longitude"));
    };
    let lat = value(lat, 2)?;
    let lon = value(lon, 3)?;
    let depth_km = match parts.next() {
        None => None,
        Some((negative, number)) => {
            let metres: f64 = number
                .parse()
                .map_err(|_| invalid("the height is not a number"))?;
            if !negative && metres != 0.0 {
                return Err(invalid(
                    "the height is above sea level; a hypocentre has a depth",
                ));
            }
            let km = (metres / 1000.0).round();
            if km > f64::from(u16::MAX) {
                return reject(
                    Reason::OutOfRange,
                    format!("{path} {:?} gives a depth of {km} km", truncate(s)),
                );
            }
            // In range and non-negative: the cast is exact.
            Some(km as u16)
        }
    };
    if parts.next().is_some() {
        return Err(invalid("it has more than three components"));
    }
    Ok(Some((lat, lon, depth_km)))
}

/// `jmx_eb:Magnitude`: a number, or `NaN` when unknown (condition 不明 / Ｍ不明).
fn magnitude(node: &Node<'_>) -> Result<Option<f64>, Rejection> {
    let text = node.text();
    if text == "NaN" {
        return Ok(None);
    }
    let ok = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && text.bytes().filter(|&b| b == b'.').count() <= 1
        && text.bytes().next().is_some_and(|b| b.is_ascii_digit());
    match text.parse::<f64>() {
        Ok(m) if ok => Ok(Some(m)),
        _ => reject(
            Reason::InvalidField,
            format!("{} {:?} is not a magnitude", node.path, truncate(text)),
        ),
    }
}

/// `Hypocenter/Accuracy`. Rank 0 means unknown, as `/` does in the code telegram's RK.
fn accuracy(node: &Node<'_>) -> Result<Accuracy, Rejection> {
    let epicenter = node.child("Epicenter")?;
    let rank =
        |el: &Option<Node<'_>>, attr: &str, allowed: &[u8]| -> Result<Option<u8>, Rejection> {
            let Some(el) = el else { return Ok(None) };
            let Some(v) = el.attr(attr) else {
                return Ok(None);
            };
            digit(trim_xml(v), &format!("{}@{attr}", el.path), allowed)
        };
    let depth = node.child("Depth")?;
    let magnitude = node.child("MagnitudeCalculation")?;
    let stations = match node.child("NumberOfMagnitudeCalculation")? {
        None => None,
        Some(n) => digit(n.text(), &n.path, b"012345")?,
    };
    Ok(Accuracy {
        epicenter: rank(&epicenter, "rank", b"012345678")?,
        depth: rank(&depth, "rank", b"012345678")?,
        magnitude: rank(&magnitude, "rank", b"0234568")?,
        magnitude_stations: stations,
        hypocenter: rank(&epicenter, "rank2", b"012349")?,
    })
}

/// One accuracy digit from `allowed`; 0 (unknown) becomes `None`.
fn digit(s: &str, what: &str, allowed: &[u8]) -> Result<Option<u8>, Rejection> {
    let d = match s.as_bytes() {
        [d @ b'0'..=b'9'] => *d,
        _ => {
            return reject(
                Reason::InvalidField,
                format!("{what} {:?} is not a single digit", truncate(s)),
            );
        }
    };
    if !allowed.contains(&d) {
        return reject(
            Reason::UnknownCode,
            format!("{what} = {} is not defined in JMA's code table", d as char),
        );
    }
    Ok(Some(d - b'0').filter(|&v| v != 0))
}

/// `Body/Intensity/Forecast`.
#[derive(Debug, Default)]
struct Forecast {
    max_intensity: Option<IntensityRange>,
    max_long_period: Option<LongPeriodRange>,
    change: Option<IntensityChange>,
    areas: Vec<AreaForecast>,
}

impl Forecast {
    fn parse(forecast: &Node<'_>) -> Result<Self, Rejection> {
        let max_intensity = match forecast.child("ForecastInt")? {
            Some(n) => intensity_range(&n)?,
            None => None,
        };
        let max_long_period = match forecast.child("ForecastLgInt")? {
            Some(n) => long_period_range(&n)?,
            None => None,
        };
        let change = match forecast.child("Appendix")? {
            None => None,
            Some(appendix) => {
                let change = match appendix.opt_text("MaxIntChange")? {
                    None => None,
                    Some(c) => digit_code(c, "Appendix/MaxIntChange", b"012")?,
                };
                let reason = match appendix.opt_text("MaxIntChangeReason")? {
                    None => None,
                    Some(r) => digit_code(r, "Appendix/MaxIntChangeReason", b"012349")?,
                };
                change.map(|change| IntensityChange { change, reason })
            }
        };
        let mut areas = Vec::new();
        for pref in forecast.all("Pref") {
            for area in pref.all("Area") {
                areas.push(area_forecast(&area)?);
            }
        }
        Ok(Self {
            max_intensity,
            max_long_period,
            change,
            areas,
        })
    }
}

/// A single digit from `allowed`, kept as is (0 is a value here).
fn digit_code(s: &str, what: &str, allowed: &[u8]) -> Result<Option<u8>, Rejection> {
    match s.as_bytes() {
        [d] if allowed.contains(d) => Ok(Some(d - b'0')),
        [d] if d.is_ascii_digit() => reject(
            Reason::UnknownCode,
            format!("{what} = {} is not defined in JMA's code table", *d as char),
        ),
        _ => reject(
            Reason::InvalidField,
            format!("{what} {:?} is not a single digit", truncate(s)),
        ),
    }
}

/// `ForecastInt` `From`/`To`: `None` when both are 不明.
fn intensity_range(node: &Node<'_>) -> Result<Option<IntensityRange>, Rejection> {
    let bounds = (node.require_text("From")?, node.require_text("To")?);
    super::from_to_range(
        &node.path,
        bounds,
        "an intensity",
        Intensity::from_xml,
        IntensityRange::new,
    )
}

/// `ForecastLgInt` `From`/`To` (classes 0–4, `To` may be `over`): `None` when both are
/// 不明.
fn long_period_range(node: &Node<'_>) -> Result<Option<LongPeriodRange>, Rejection> {
    let bounds = (node.require_text("From")?, node.require_text("To")?);
    super::from_to_range(
        &node.path,
        bounds,
        "a long-period class 0–4",
        LongPeriodRange::parse_class,
        LongPeriodRange::new,
    )
}

/// One `Pref/Area`. `Category/Kind/Code` is two digits: warning (1) or forecast (0), then
/// not arrived (0, `ArrivalTime` = predicted arrival), arrived (1, `Condition`
/// 既に主要動到達と推測) or PLUM (9, `ArrivalTime` = when PLUM first predicted the class).
fn area_forecast(area: &Node<'_>) -> Result<AreaForecast, Rejection> {
    let code = area.require_text("Code")?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return reject(
            Reason::InvalidField,
            format!(
                "{}/Code {:?} is not a 3-digit area code",
                area.path,
                truncate(code)
            ),
        );
    }
    let name = codes::FORECAST_AREA.name(code).ok_or_else(|| {
        Rejection::new(
            Reason::UnknownCode,
            format!("the area code {code} is not a JMA forecast area"),
        )
    })?;
    let kind = area
        .require("Category")?
        .require("Kind")?
        .require_text("Code")?;
    let (warning, arrival_digit) = match kind.as_bytes() {
        [w @ (b'0' | b'1'), a @ (b'0' | b'1' | b'9')] => (*w == b'1', *a),
        _ => {
            return reject(
                Reason::UnknownCode,
                format!(
                    "area {code}: kind code {:?} is not 00, 01, 09, 10, 11 or 19",
                    truncate(kind)
                ),
            );
        }
    };
    let intensity = intensity_range(&area.require("ForecastInt")?)?.ok_or_else(|| {
        Rejection::new(
            Reason::InvalidField,
            format!(
                "area {code}: the predicted intensity is 不明, but a listed area must have one"
            ),
        )
    })?;
    let long_period = match area.child("ForecastLgInt")? {
        Some(n) => long_period_range(&n)?,
        None => None,
    };
    let time = area.child("ArrivalTime")?.map(|n| time(&n)).transpose()?;
    let arrived_condition = match area.opt_text("Condition")? {
        None => false,
        Some(ARRIVED) => true,
        Some(other) => {
            return reject(
                Reason::UnknownCode,
                format!(
                    "area {code}: Condition {:?} is not {ARRIVED}",
                    truncate(other)
                ),
            );
        }
    };
    let (arrival, arrived, plum, plum_predicted_at) = match (arrival_digit, time, arrived_condition)
    {
        (b'0', Some(t), false) => (Some(t), false, false, None),
        (b'0', _, _) => {
            return reject(
                Reason::Inconsistent,
                format!(
                    "area {code}: kind {kind} says the main motion has not arrived, so it needs an ArrivalTime and no Condition"
                ),
            );
        }
        // The kind code is authoritative: an arrived area is arrived even if the document
        // also carries a time or lacks the condition text (the code-telegram parser reads
        // EBI y2 = 1 the same way; ADR 0003). Acting as if arrived is the safe reading.
        (b'1', _, _) => (None, true, false, None),
        (_, t, false) => (None, false, true, t),
        (_, _, true) => {
            return reject(
                Reason::Inconsistent,
                format!(
                    "area {code}: kind {kind} is a PLUM prediction, which has no Condition {ARRIVED}"
                ),
            );
        }
    };
    Ok(AreaForecast {
        code: code.to_owned(),
        name: name.to_owned(),
        intensity,
        long_period_class: long_period.map(|r| r.max_class()),
        long_period,
        warning,
        arrival,
        arrived,
        plum,
        plum_predicted_at,
    })
}

/// `Head/Headline/Information` lists of a warning: regions, prefectures and areas, each
/// in items of `Kind` 31 (警報) whose `LastKind` 00 (なし) marks them newly added.
fn warned_regions(head: &Node<'_>) -> Result<Vec<WarnedRegion>, Rejection> {
    let mut regions = Vec::new();
    let Some(headline) = head.child("Headline")? else {
        return Ok(regions);
    };
    for info in headline.all("Information") {
        let Some(list) = info.attr("type") else {
            return reject(
                Reason::MissingField,
                format!("{} has no type attribute", info.path),
            );
        };
        let (level, table, width) = match list {
            "緊急地震速報（地方予報区）" => (RegionLevel::Region, &codes::REGION, 4),
            "緊急地震速報（府県予報区）" => {
                (RegionLevel::Prefecture, &codes::PREFECTURE, 4)
            }
            "緊急地震速報（細分区域）" => (RegionLevel::Area, &codes::FORECAST_AREA, 3),
            other => {
                return reject(
                    Reason::UnknownCode,
                    format!(
                        "{} type {:?} is not an EEW region list",
                        info.path,
                        truncate(other)
                    ),
                );
            }
        };
        for item in info.all("Item") {
            let kind = item.require("Kind")?.require_text("Code")?;
            if kind != "31" {
                return reject(
                    Reason::UnknownCode,
                    format!(
                        "{list}: kind code {:?} is not 31 (緊急地震速報（警報）)",
                        truncate(kind)
                    ),
                );
            }
            let newly_added = match item.require("LastKind")?.require_text("Code")? {
                "00" => true,
                "31" => false,
                other => {
                    return reject(
                        Reason::UnknownCode,
                        format!(
                            "{list}: last kind code {:?} is not 00 or 31",
                            truncate(other)
                        ),
                    );
                }
            };
            for area in item.require("Areas")?.all("Area") {
                let code = area.require_text("Code")?;
                if code.len() != width || !code.bytes().all(|b| b.is_ascii_digit()) {
                    return reject(
                        Reason::InvalidField,
                        format!(
                            "the warned region code {:?} ({list}) is not a {width}-digit code",
                            truncate(code)
                        ),
                    );
                }
                let name = table.name(code).ok_or_else(|| {
                    Rejection::new(
                        Reason::UnknownCode,
                        format!(
                            "the warned region code {code} ({list}) is not in JMA's code tables"
                        ),
                    )
                })?;
                regions.push(WarnedRegion {
                    level,
                    code: code.to_owned(),
                    name: name.to_owned(),
                    newly_added,
                });
            }
        }
    }
    Ok(regions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intensity::Upper;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/fixtures/telegrams/", $name))
        };
    }

    fn ok(bytes: &[u8]) -> Report {
        parse(bytes).unwrap_or_else(|r| panic!("rejected: {r}"))
    }

    fn rejected(bytes: &[u8]) -> Rejection {
        match parse(bytes) {
            Ok(r) => panic!("accepted: {r:?}"),
            Err(r) => r,
        }
    }

    fn t(s: &str) -> JstTime {
        JstTime::from_datetime(DateTime::parse_from_rfc3339(s).unwrap())
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// A hand-written VXSE45 in JMA's layout: a warning with long-period classes, an
    /// open upper bound (`over`), an arrived area, a PLUM area and a not-yet-arrived one.
    const VXSE45: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Report xmlns="http://xml.kishou.go.jp/jmaxml1/" xmlns:jmx="http://xml.kishou.go.jp/jmaxml1/">
<Control><Title>緊急地震速報（地震動予報）</Title><DateTime>2024-01-01T07:10:22Z</DateTime><Status>通常</Status><EditorialOffice>気象庁本庁</EditorialOffice><PublishingOffice>気象庁</PublishingOffice></Control>
<Head xmlns="http://xml.kishou.go.jp/jmaxml1/informationBasis1/"><Title>緊急地震速報（地震動予報）</Title><ReportDateTime>2024-01-01T16:10:22+09:00</ReportDateTime><TargetDateTime>2024-01-01T16:10:22+09:00</TargetDateTime><EventID>20240101161010</EventID><InfoType>発表</InfoType><Serial>7</Serial><InfoKind>緊急地震速報</InfoKind><InfoKindVersion>1.2_0</InfoKindVersion>
<Headline><Text>石川県能登地方で地震　北陸で強い揺れ</Text><Information type="緊急地震速報（細分区域）"><Item><Kind><Name>緊急地震速報（警報）</Name><Code>31</Code></Kind><LastKind><Name>緊急地震速報（警報）</Name><Code>31</Code></LastKind><Areas codeType="地震情報／細分区域"><Area><Name>石川県能登</Name><Code>390</Code></Area></Areas></Item><Item><Kind><Name>緊急地震速報（警報）</Name><Code>31</Code></Kind><LastKind><Name>なし</Name><Code>00</Code></LastKind><Areas codeType="地震情報／細分区域"><Area><Name>富山県東部</Name><Code>380</Code></Area></Areas></Item></Information></Headline></Head>
<Body xmlns="http://xml.kishou.go.jp/jmaxml1/body/seismology1/" xmlns:jmx_eb="http://xml.kishou.go.jp/jmaxml1/elementBasis1/">
<Earthquake><OriginTime>2024-01-01T16:10:09+09:00</OriginTime><ArrivalTime>2024-01-01T16:10:10+09:00</ArrivalTime>
<Hypocenter><Area><Name>石川県能登地方</Name><Code type="震央地名">390</Code><jmx_eb:Coordinate description="北緯３７．５度　東経１３７．２度　ごく浅い">+37.5+137.2+0/</jmx_eb:Coordinate><ReduceName>石川県</ReduceName><ReduceCode type="短縮用震央地名">9390</ReduceCode><LandOrSea>内陸</LandOrSea></Area>
<Accuracy><Epicenter rank="4" rank2="9">NaN</Epicenter><Depth rank="4">NaN</Depth><MagnitudeCalculation rank="5">NaN</MagnitudeCalculation><NumberOfMagnitudeCalculation>5</NumberOfMagnitudeCalculation></Accuracy></Hypocenter>
<jmx_eb:Magnitude type="Mj" description="Ｍ７．４">7.4</jmx_eb:Magnitude></Earthquake>
<Intensity><Forecast>
<ForecastInt><From>6+</From><To>over</To></ForecastInt><ForecastLgInt><From>3</From><To>over</To></ForecastLgInt>
<Appendix><MaxIntChange>1</MaxIntChange><MaxLgIntChange>1</MaxLgIntChange><MaxIntChangeReason>9</MaxIntChangeReason></Appendix>
<Pref><Name>石川</Name><Code>9170</Code><Area><Name>石川県能登</Name><Code>390</Code><Category><Kind><Name>緊急地震速報（警報）</Name><Code>11</Code></Kind></Category><ForecastInt><From>6+</From><To>over</To></ForecastInt><ForecastLgInt><From>3</From><To>over</To></ForecastLgInt><Condition>既に主要動到達と推測</Condition></Area></Pref>
<Pref><Name>富山</Name><Code>9160</Code><Area><Name>富山県東部</Name><Code>380</Code><Category><Kind><Name>緊急地震速報（警報）</Name><Code>19</Code></Kind></Category><ForecastInt><From>5+</From><To>6-</To></ForecastInt><ForecastLgInt><From>2</From><To>2</To></ForecastLgInt><ArrivalTime>2024-01-01T16:10:18+09:00</ArrivalTime></Area></Pref>
<Pref><Name>新潟</Name><Code>9150</Code><Area><Name>新潟県上越</Name><Code>370</Code><Category><Kind><Name>緊急地震速報（予報）</Name><Code>00</Code></Kind></Category><ForecastInt><From>4</From><To>4</To></ForecastInt><ForecastLgInt><From>1</From><To>1</To></ForecastLgInt><ArrivalTime>2024-01-01T16:10:31+09:00</ArrivalTime></Area></Pref>
</Forecast></Intensity>
<Comments><WarningComment codeType="固定付加文"><Text>強い揺れに警戒してください。</Text><Code>0201</Code></WarningComment></Comments>
</Body></Report>"#;

    #[test]
    fn vxse44_forecast_maps_every_field() {
        let r = ok(fixture!(
            "jmaxml_vxse44_20240417_bungo_36_01_01_serial1_forecast.xml"
        ));
        assert_eq!(r.format, Format::JmaXml);
        assert_eq!(r.product, Product::Vxse44);
        assert_eq!(r.event_id.as_str(), "20240417231454");
        assert_eq!(r.serial, 1);
        assert_eq!(
            (r.kind, r.status, r.info_type),
            (Kind::Forecast, Status::Normal, InfoType::Issued)
        );
        assert!(!r.final_report);
        assert_eq!(r.issued_at, Some(t("2024-04-17T23:14:57+09:00")));
        assert_eq!(r.origin_time, Some(t("2024-04-17T23:14:47+09:00")));
        assert_eq!(r.detected_at, Some(t("2024-04-17T23:14:54+09:00")));
        let h = r.hypocenter.as_ref().unwrap();
        assert_eq!(
            (h.code.as_deref(), h.name.as_deref()),
            (Some("681"), Some("豊後水道"))
        );
        assert_eq!((h.lat, h.lon, h.depth_km), (33.1, 132.4, Some(40)));
        assert_eq!((h.assumed, h.land_or_sea), (false, Some(LandOrSea::Sea)));
        assert_eq!(r.magnitude, Some(4.2));
        assert_eq!(
            r.max_intensity,
            Some(IntensityRange::exactly(Intensity::Three))
        );
        assert_eq!(r.max_long_period_class, None);
        // NumberOfMagnitudeCalculation 0 = unknown.
        assert_eq!(
            r.accuracy,
            Some(Accuracy {
                epicenter: Some(4),
                depth: Some(4),
                magnitude: Some(2),
                magnitude_stations: None,
                hypocenter: Some(4),
            })
        );
        assert!(r.areas.is_empty() && r.warned_regions.is_empty());
        assert_eq!(r.flags, Flags::default());
        assert!(r.actionable);
    }

    #[test]
    fn vxse44_with_warned_areas_is_a_warning_report() {
        let r = ok(fixture!(
            "jmaxml_vxse44_20240417_bungo_36_01_05_serial5_forecast.xml"
        ));
        assert_eq!(r.product, Product::Vxse44);
        assert_eq!(r.kind, Kind::Warning);
        assert!(r.areas.iter().any(|a| a.warning) && r.areas.iter().any(|a| !a.warning));
    }

    #[test]
    fn vxse43_headline_lists_mark_newly_added_regions() {
        let r = ok(fixture!(
            "jmaxml_vxse43_20110311_tohoku_sample_serial5_warning.xml"
        ));
        assert_eq!(
            (r.product, r.kind, r.serial),
            (Product::Vxse43, Kind::Warning, 5)
        );
        let find = |level, code: &str| {
            r.warned_regions
                .iter()
                .find(|w| w.level == level && w.code == code)
                .unwrap_or_else(|| panic!("{code} missing"))
        };
        let tohoku = find(RegionLevel::Region, "9920");
        assert_eq!((tohoku.name.as_str(), tohoku.newly_added), ("東北", false));
        let tokai = find(RegionLevel::Region, "9936");
        assert_eq!((tokai.name.as_str(), tokai.newly_added), ("東海", true));
        assert!(!find(RegionLevel::Prefecture, "9040").newly_added);
        assert!(find(RegionLevel::Prefecture, "9270").newly_added);
        assert!(!find(RegionLevel::Area, "222").newly_added);
        let osaka = find(RegionLevel::Area, "521");
        assert_eq!(
            (osaka.name.as_str(), osaka.newly_added),
            ("大阪府南部", true)
        );
        assert_eq!(r.warned_regions.len(), 8 + 22 + 58);
        // PLUM areas of the sample: the wire time is kept apart from arrivals.
        let miyagi_south = r.area("221").unwrap();
        assert!(miyagi_south.plum && miyagi_south.warning && !miyagi_south.arrived);
        assert_eq!(miyagi_south.arrival, None);
        assert_eq!(
            miyagi_south.plum_predicted_at,
            Some(t("2011-03-11T14:47:22+09:00"))
        );
        assert!(r.flags.plum);
        assert_eq!(r.max_long_period_class, Some(4));
    }

    #[test]
    fn real_2024_01_16_noto_warning() {
        let r = ok(fixture!(
            "jmaxml_vxse43_20240116_notooki_serial1_warning_real.xml"
        ));
        assert_eq!(
            (r.product, r.kind, r.serial),
            (Product::Vxse43, Kind::Warning, 1)
        );
        assert_eq!(r.event_id.as_str(), "20240116184216");
        assert_eq!(r.origin_time, Some(t("2024-01-16T18:42:12+09:00")));
        assert_eq!(r.detected_at, Some(t("2024-01-16T18:42:16+09:00")));
        assert_eq!(r.issued_at, Some(t("2024-01-16T18:42:25+09:00")));
        let h = r.hypocenter.as_ref().unwrap();
        assert_eq!(
            (h.code.as_deref(), h.name.as_deref()),
            (Some("495"), Some("能登半島沖"))
        );
        assert_eq!((h.lat, h.lon, h.depth_km), (37.3, 136.6, Some(10)));
        assert_eq!(r.magnitude, Some(5.7));
        assert_eq!(
            r.max_intensity,
            Some(IntensityRange::exactly(Intensity::FiveLower))
        );
        assert_eq!(r.max_long_period_class, Some(1));
        assert_eq!(
            r.max_intensity_change,
            Some(IntensityChange {
                change: 0,
                reason: Some(0)
            })
        );
        assert_eq!(r.accuracy.unwrap().magnitude_stations, Some(4));

        let noto = r.area("390").unwrap();
        assert_eq!(noto.name, "石川県能登");
        assert_eq!(
            noto.intensity,
            IntensityRange::new(Intensity::Four, Upper::At(Intensity::FiveLower)).unwrap()
        );
        assert!(noto.warning && noto.arrived && !noto.plum);
        assert_eq!((noto.arrival, noto.long_period_class), (None, Some(1)));
        let kaga = r.area("391").unwrap();
        assert_eq!(
            kaga.intensity,
            IntensityRange::new(Intensity::Three, Upper::At(Intensity::Four)).unwrap()
        );
        assert!(kaga.warning && !kaga.arrived && !kaga.plum);
        assert_eq!(kaga.arrival, Some(t("2024-01-16T18:42:31+09:00")));
        assert_eq!(kaga.long_period, LongPeriodRange::new(0, Upper::At(0)));

        let regions: Vec<_> = r
            .warned_regions
            .iter()
            .map(|w| (w.level, w.code.as_str(), w.name.as_str(), w.newly_added))
            .collect();
        assert_eq!(
            regions,
            [
                (RegionLevel::Region, "9934", "北陸", true),
                (RegionLevel::Prefecture, "9170", "石川", true),
                (RegionLevel::Area, "390", "石川県能登", true),
                (RegionLevel::Area, "391", "石川県加賀", true),
            ]
        );
        assert_eq!(r.flags, Flags::default());
        assert!(r.actionable);
    }

    #[test]
    fn cancels_carry_no_content() {
        for bytes in [
            &fixture!("jmaxml_vxse43_20110311_tohoku_sample_cancel.xml")[..],
            &fixture!("jmaxml_vxse43_20240417_bungo_37_01_03_serial2_cancel.xml")[..],
            &fixture!("jmaxml_vxse44_20240417_bungo_36_01_33_serial32_cancel.xml")[..],
        ] {
            let r = ok(bytes);
            assert_eq!((r.kind, r.info_type), (Kind::Cancel, InfoType::Cancel));
            assert!(!r.final_report);
            assert!(r.hypocenter.is_none() && r.areas.is_empty() && r.warned_regions.is_empty());
            assert!(r.actionable);
        }
        let r = ok(fixture!(
            "jmaxml_vxse44_20240417_bungo_36_01_33_serial32_cancel.xml"
        ));
        assert_eq!(
            (r.serial, r.issued_at),
            (32, Some(t("2024-04-17T23:17:00+09:00")))
        );

        // A cancel with an earthquake block contradicts itself.
        let forecast = text(fixture!(
            "jmaxml_vxse44_20240417_bungo_36_01_02_serial2_forecast.xml"
        ));
        let e = rejected(
            forecast
                .replace("<InfoType>発表</InfoType>", "<InfoType>取消</InfoType>")
                .as_bytes(),
        );
        assert_eq!(e.reason, Reason::Inconsistent);
    }

    #[test]
    fn vxse42_is_a_delivery_test() {
        let r = ok(fixture!("jmaxml_vxse42_20090811_delivery_test.xml"));
        assert_eq!(
            (r.product, r.kind, r.status),
            (Product::Vxse42, Kind::DeliveryTest, Status::Test)
        );
        assert_eq!(r.event_id.as_str(), "20090811050000");
        assert!(!r.actionable);
        assert_eq!(r.not_actionable_reason, Some("delivery_test"));
        // A delivery test with normal status is refused by the common checks.
        let normal =
            text(fixture!("jmaxml_vxse42_20090811_delivery_test.xml")).replace("試験", "通常");
        assert_eq!(rejected(normal.as_bytes()).reason, Reason::Inconsistent);
    }

    #[test]
    fn vxse45_long_period_classes_open_bounds_and_plum_areas() {
        let r = ok(VXSE45.as_bytes());
        assert_eq!(
            (r.product, r.kind, r.serial),
            (Product::Vxse45, Kind::Warning, 7)
        );
        assert_eq!(
            r.max_intensity,
            IntensityRange::new(Intensity::SixUpper, Upper::Over)
        );
        assert_eq!(r.max_long_period_class, Some(3));
        assert_eq!(
            r.max_intensity_change,
            Some(IntensityChange {
                change: 1,
                reason: Some(9)
            })
        );
        let h = r.hypocenter.as_ref().unwrap();
        assert_eq!(
            (h.code.as_deref(), h.name.as_deref()),
            (Some("390"), Some("石川県能登地方"))
        );
        assert_eq!(
            (h.depth_km, h.land_or_sea),
            (Some(0), Some(LandOrSea::Land))
        );
        assert_eq!(r.accuracy.unwrap().hypocenter, Some(9));

        let noto = r.area("390").unwrap();
        assert_eq!(
            noto.intensity,
            IntensityRange::new(Intensity::SixUpper, Upper::Over).unwrap()
        );
        assert_eq!(noto.long_period, LongPeriodRange::new(3, Upper::Over));
        assert_eq!(noto.long_period_class, Some(3));
        assert!(noto.arrived && noto.warning && noto.arrival.is_none());

        let toyama = r.area("380").unwrap();
        assert!(toyama.plum && toyama.warning && !toyama.arrived);
        assert_eq!(toyama.arrival, None);
        assert_eq!(
            toyama.plum_predicted_at,
            Some(t("2024-01-01T16:10:18+09:00"))
        );
        assert_eq!(toyama.long_period_class, Some(2));

        let joetsu = r.area("370").unwrap();
        assert!(!joetsu.warning && !joetsu.plum && !joetsu.arrived);
        assert_eq!(joetsu.arrival, Some(t("2024-01-01T16:10:31+09:00")));

        assert!(r.flags.plum);
        let added: Vec<_> = r
            .warned_regions
            .iter()
            .map(|w| (w.code.as_str(), w.newly_added))
            .collect();
        assert_eq!(added, [("390", false), ("380", true)]);
        assert!(r.actionable);
    }

    #[test]
    fn area_kind_must_agree_with_arrival_time_and_condition() {
        // Kind 19 (PLUM) with the arrived condition.
        let plum_arrived = VXSE45.replace(
            "<ArrivalTime>2024-01-01T16:10:18+09:00</ArrivalTime>",
            "<Condition>既に主要動到達と推測</Condition>",
        );
        assert_eq!(
            rejected(plum_arrived.as_bytes()).reason,
            Reason::Inconsistent
        );
        // Kind 11 (arrived) with an arrival time: still arrived, the time is ignored.
        let arrived_timed = VXSE45.replace(
            "<Condition>既に主要動到達と推測</Condition></Area>",
            "<ArrivalTime>2024-01-01T16:10:12+09:00</ArrivalTime></Area>",
        );
        let r = parse(arrived_timed.as_bytes()).expect("arrived with a time still parses");
        assert!(r.areas.iter().any(|a| a.arrived));
        assert!(
            r.areas
                .iter()
                .filter(|a| a.arrived)
                .all(|a| a.arrival.is_none())
        );
        // Kind 00 (not arrived) without an arrival time.
        let untimed = VXSE45.replace("<ArrivalTime>2024-01-01T16:10:31+09:00</ArrivalTime>", "");
        let e = rejected(untimed.as_bytes());
        assert_eq!(e.reason, Reason::Inconsistent);
        assert!(e.message.contains("area 370"), "{e}");
        // Kind 12 does not exist.
        let unknown = VXSE45.replace("<Code>11</Code>", "<Code>12</Code>");
        assert_eq!(rejected(unknown.as_bytes()).reason, Reason::UnknownCode);
    }

    #[test]
    fn unknown_magnitude_is_none() {
        let doc = VXSE45.replace(
            r#"<jmx_eb:Magnitude type="Mj" description="Ｍ７．４">7.4</jmx_eb:Magnitude>"#,
            r#"<jmx_eb:Magnitude type="Mj" condition="不明" description="Ｍ不明">NaN</jmx_eb:Magnitude>"#,
        );
        let r = ok(doc.as_bytes());
        assert_eq!(r.magnitude, None);
        assert_eq!(r.not_actionable_reason, Some("magnitude_unknown"));
        let junk = VXSE45.replace(">7.4<", ">7,4<");
        assert_eq!(rejected(junk.as_bytes()).reason, Reason::InvalidField);
    }

    #[test]
    fn coordinates_without_depth_and_empty_coordinates() {
        let no_depth = VXSE45.replace("+37.5+137.2+0/", "+37.5+137.2/");
        let r = ok(no_depth.as_bytes());
        let h = r.hypocenter.as_ref().unwrap();
        assert_eq!((h.lat, h.lon, h.depth_km), (37.5, 137.2, None));
        assert_eq!(r.not_actionable_reason, Some("depth_unknown"));

        let empty = VXSE45.replace("+37.5+137.2+0/", "");
        let r = ok(empty.as_bytes());
        assert_eq!(r.hypocenter, None);
        assert_eq!(r.not_actionable_reason, Some("hypocenter_unknown"));

        let deep = VXSE45.replace("+37.5+137.2+0/", "+37.5+137.2-370000/");
        assert_eq!(ok(deep.as_bytes()).hypocenter.unwrap().depth_km, Some(370));

        assert_eq!(
            iso6709("+35.1+139.2+0/", "c").unwrap(),
            Some((35.1, 139.2, Some(0)))
        );
        assert_eq!(
            iso6709("-10.5-120.25-10500/", "c").unwrap(),
            Some((-10.5, -120.25, Some(11)))
        );
        for bad in [
            "+35.1+139.2-10000",
            "35.1+139.2/",
            "+3510.5+13920.0/",
            "+35.1/",
            "+35.1+139.2+1000/",
            "+35..1+139.2/",
            "+35.1+139.2-10000-5/",
            "+35.1+-139.2/",
        ] {
            assert_eq!(
                iso6709(bad, "c").unwrap_err().reason,
                Reason::InvalidField,
                "{bad}"
            );
        }
    }

    #[test]
    fn assumed_hypocenter_and_level_method_set_their_flags() {
        let assumed = VXSE45.replace(
            "<Earthquake>",
            "<Earthquake><Condition>仮定震源要素</Condition>",
        );
        let r = ok(assumed.as_bytes());
        assert!(r.hypocenter.as_ref().unwrap().assumed);
        assert!(r.flags.plum && r.flags.single_station && !r.flags.level_method);

        let level = VXSE45.replace("<OriginTime>2024-01-01T16:10:09+09:00</OriginTime>", "");
        let r = ok(level.as_bytes());
        assert!(r.flags.level_method);
        assert_eq!(
            (r.origin_time, r.detected_at),
            (None, Some(t("2024-01-01T16:10:10+09:00")))
        );
    }

    #[test]
    fn next_advisory_marks_the_final_report() {
        let last = VXSE45.replace("<Comments>", "<NextAdvisory>この情報をもって、緊急地震速報：最終報とします。</NextAdvisory><Comments>");
        assert!(ok(last.as_bytes()).final_report);
        assert!(!ok(VXSE45.as_bytes()).final_report);
    }

    #[test]
    fn unknown_intensity_is_none_and_inverted_ranges_are_refused() {
        let unknown = VXSE45.replacen(
            "<ForecastInt><From>6+</From><To>over</To></ForecastInt><ForecastLgInt>",
            "<ForecastInt><From>不明</From><To>不明</To></ForecastInt><ForecastLgInt>",
            1,
        );
        assert_eq!(ok(unknown.as_bytes()).max_intensity, None);
        let inverted = VXSE45.replace("<From>5+</From><To>6-</To>", "<From>6-</From><To>5+</To>");
        assert_eq!(rejected(inverted.as_bytes()).reason, Reason::Inconsistent);
        let bad_class = VXSE45.replace("<From>2</From><To>2</To>", "<From>2</From><To>5</To>");
        assert_eq!(rejected(bad_class.as_bytes()).reason, Reason::InvalidField);
    }

    #[test]
    fn unknown_area_code_is_refused() {
        let doc = VXSE45.replace("<Code>370</Code>", "<Code>999</Code>");
        let e = rejected(doc.as_bytes());
        assert_eq!(e.reason, Reason::UnknownCode);
        assert!(e.message.contains("999"), "{e}");
        let region = VXSE45.replace(
            "<Code>380</Code></Area></Areas>",
            "<Code>998</Code></Area></Areas>",
        );
        assert_eq!(rejected(region.as_bytes()).reason, Reason::UnknownCode);
    }

    #[test]
    fn products_other_than_eew_are_unsupported() {
        let vxse51 = r#"<?xml version="1.0" encoding="UTF-8"?>
<Report xmlns="http://xml.kishou.go.jp/jmaxml1/"><Control><Title>震度速報</Title><Status>通常</Status></Control>
<Head xmlns="http://xml.kishou.go.jp/jmaxml1/informationBasis1/"><Title>震度速報</Title><EventID>20240101161010</EventID></Head><Body/></Report>"#;
        assert_eq!(
            rejected(vxse51.as_bytes()).reason,
            Reason::UnsupportedProduct
        );
        let vxse47 = VXSE45.replace(
            "緊急地震速報（地震動予報）",
            "緊急地震速報（リアルタイム震度）",
        );
        assert_eq!(
            rejected(vxse47.as_bytes()).reason,
            Reason::UnsupportedProduct
        );
        let not_jma = "<rss version=\"2.0\"><channel/></rss>";
        assert_eq!(rejected(not_jma.as_bytes()).reason, Reason::UnknownFormat);
        // Titles that disagree.
        let mixed = VXSE45.replacen("緊急地震速報（地震動予報）", "緊急地震速報（予報）", 1);
        assert_eq!(rejected(mixed.as_bytes()).reason, Reason::Inconsistent);
    }

    #[test]
    fn head_fields_are_checked() {
        let cases = [
            (
                "<EventID>20240101161010</EventID>",
                "<EventID>2024010116101</EventID>",
                Reason::InvalidField,
            ),
            (
                "<EventID>20240101161010</EventID>",
                "",
                Reason::MissingField,
            ),
            (
                "<Serial>7</Serial>",
                "<Serial>0</Serial>",
                Reason::InvalidField,
            ),
            (
                "<Serial>7</Serial>",
                "<Serial>-7</Serial>",
                Reason::InvalidField,
            ),
            (
                "<InfoType>発表</InfoType>",
                "<InfoType>更新</InfoType>",
                Reason::UnknownCode,
            ),
            (
                "<Status>通常</Status>",
                "<Status>正常</Status>",
                Reason::UnknownCode,
            ),
            (
                "<ReportDateTime>2024-01-01T16:10:22+09:00",
                "<ReportDateTime>2024-01-01 16:10:22",
                Reason::InvalidField,
            ),
            (
                "<Serial>7</Serial>",
                "<Serial>7</Serial><Serial>8</Serial>",
                Reason::Malformed,
            ),
        ];
        for (from, to, reason) in cases {
            let doc = VXSE45.replace(from, to);
            assert_eq!(rejected(doc.as_bytes()).reason, reason, "{to}");
        }
        let delayed = VXSE45.replace("<InfoType>発表</InfoType>", "<InfoType>遅延</InfoType>");
        assert_eq!(ok(delayed.as_bytes()).info_type, InfoType::Issued);
        let corrected = VXSE45.replace("<InfoType>発表</InfoType>", "<InfoType>訂正</InfoType>");
        assert_eq!(ok(corrected.as_bytes()).info_type, InfoType::Correction);
        let drill = VXSE45.replace("<Status>通常</Status>", "<Status>訓練</Status>");
        assert_eq!(ok(drill.as_bytes()).status, Status::Training);
    }

    #[test]
    fn malformed_xml_is_refused() {
        for doc in [
            "<Report><Control></Head></Report>",
            "<Report><Control><Title>a</Title></Control></Report><Report/>",
            "<Report>&nbsp;</Report>",
            "<Report a='1' a='2'/>",
            "<Report>x</Report>trailing",
            "<Report><<Control/></Report>",
        ] {
            let e = rejected(doc.as_bytes());
            assert_eq!(e.reason, Reason::Malformed, "{doc}: {e}");
        }
        // Entities are never defined by the document.
        let dtd = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><Report>&x;</Report>"#;
        assert_eq!(rejected(dtd.as_bytes()).reason, Reason::Malformed);
        let bomb = format!("<Report>{}</Report>", "&lol;".repeat(10));
        assert_eq!(rejected(bomb.as_bytes()).reason, Reason::Malformed);
        // Predefined entities and character references are fine.
        let escaped = VXSE45.replace("石川県能登地方で地震", "石川県&#x80FD;登地方&amp;地震");
        assert!(parse(escaped.as_bytes()).is_ok());
    }

    #[test]
    fn encodings_other_than_utf8_are_refused() {
        let mut sjis =
            b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><Report><Control><Title>".to_vec();
        sjis.extend_from_slice(&[0x8B, 0xD9, 0x8B, 0x7D]);
        sjis.extend_from_slice(b"</Title></Control></Report>");
        assert_eq!(rejected(&sjis).reason, Reason::InvalidEncoding);
        let declared = VXSE45.replace("encoding=\"UTF-8\"", "encoding=\"Shift_JIS\"");
        assert_eq!(
            rejected(declared.as_bytes()).reason,
            Reason::InvalidEncoding
        );
        let with_bom = [b"\xEF\xBB\xBF".as_slice(), VXSE45.as_bytes()].concat();
        assert!(parse(&with_bom).is_ok());
    }

    #[test]
    fn truncated_documents_are_refused_at_every_cut() {
        let full = fixture!("jmaxml_vxse43_20240116_notooki_serial1_warning_real.xml");
        let e = rejected(full.get(..full.len() / 2).unwrap());
        assert_eq!(e.reason, Reason::Truncated, "{e}");
        let e = rejected(&full[..full.len() - 12]);
        assert_eq!(e.reason, Reason::Truncated, "{e}");
        // Every prefix is rejected without a panic (cuts inside a character are not UTF-8).
        let trimmed = trim_xml(std::str::from_utf8(full).unwrap()).len();
        for cut in 0..trimmed {
            assert!(
                parse(&full[..cut]).is_err(),
                "prefix of {cut} bytes accepted"
            );
        }
        assert!(parse(full).is_ok());
    }

    #[test]
    fn deeply_nested_and_oversized_junk_is_refused() {
        let deep = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
        let e = rejected(deep.as_bytes());
        assert_eq!(e.reason, Reason::Malformed);
        assert!(e.message.contains("levels deep"), "{e}");
        let unclosed = "<a>".repeat(50_000);
        assert_eq!(rejected(unclosed.as_bytes()).reason, Reason::Malformed);
        let wide = format!("<Report>{}</Report>", "<x/>".repeat(MAX_ELEMENTS + 1));
        let e = rejected(wide.as_bytes());
        assert!(e.message.contains("elements"), "{e}");
        let huge = vec![b' '; MAX_INPUT_BYTES + 1];
        assert_eq!(rejected(&huge).reason, Reason::TooLarge);
        assert_eq!(rejected(b"  \n ").reason, Reason::Empty);
        assert_eq!(
            rejected(b"<?xml version=\"1.0\"?>").reason,
            Reason::Truncated
        );
    }

    #[test]
    fn accuracy_ranks_follow_the_code_table() {
        let zero = VXSE45.replace(r#"rank="4" rank2="9""#, r#"rank="0" rank2="0""#);
        let a = ok(zero.as_bytes()).accuracy.unwrap();
        assert_eq!((a.epicenter, a.hypocenter), (None, None));
        let single = VXSE45.replace(
            "<NumberOfMagnitudeCalculation>5</NumberOfMagnitudeCalculation>",
            "<NumberOfMagnitudeCalculation>1</NumberOfMagnitudeCalculation>",
        );
        assert!(ok(single.as_bytes()).flags.single_station);
        let undefined = VXSE45.replace(
            r#"<MagnitudeCalculation rank="5">"#,
            r#"<MagnitudeCalculation rank="7">"#,
        );
        assert_eq!(rejected(undefined.as_bytes()).reason, Reason::UnknownCode);
        let garbage = VXSE45.replace(r#"rank2="9""#, r#"rank2="x""#);
        assert_eq!(rejected(garbage.as_bytes()).reason, Reason::InvalidField);
    }

    #[test]
    fn every_xml_fixture_parses_through_the_dispatcher() {
        let all: [&[u8]; 8] = [
            fixture!("jmaxml_vxse42_20090811_delivery_test.xml"),
            fixture!("jmaxml_vxse43_20110311_tohoku_sample_cancel.xml"),
            fixture!("jmaxml_vxse43_20110311_tohoku_sample_serial5_warning.xml"),
            fixture!("jmaxml_vxse43_20240116_notooki_serial1_warning_real.xml"),
            fixture!("jmaxml_vxse43_20240417_bungo_37_01_01_serial1_warning.xml"),
            fixture!("jmaxml_vxse43_20240417_bungo_37_01_02_serial2_warning.xml"),
            fixture!("jmaxml_vxse44_20240417_bungo_36_01_12_serial12_forecast.xml"),
            fixture!("jmaxml_vxse44_20240417_bungo_36_01_32_serial32_forecast.xml"),
        ];
        for bytes in all {
            let r = crate::telegram::parse(bytes).unwrap();
            assert_eq!(r.format, Format::JmaXml);
        }
    }
}
