//! JMA code telegrams (コード電文) for 緊急地震速報: types 35, 36, 37 (advanced-user
//! forecasts), 39 (their cancel) and 47 (the public warning with its embedded advanced
//! part). Field reference: README "Input formats" and `docs/formats.md`.
//!
//! The parser works on bytes: a JMBSC dedicated line puts a half-width katakana title
//! (JIS X 0201 / Shift_JIS) and blank lines before the header, and those lines are
//! skipped without being decoded. From the header on the telegram must be ASCII.
//!
//! Both layouts are accepted: multi-line as JMA issues it (whose fixed line lengths are
//! checked) and single-line with every line break replaced by a space (as distributors'
//! JSON `OriginalText` carries it). Tokens are split on any whitespace run, so CRLF,
//! indented lines and EBI groups split across a line break all parse. Line breaks still
//! escaped as the two characters `\n` (text copied out of JSON or source code) are
//! unescaped first; a backslash never occurs in a real telegram.

use chrono::{Duration, NaiveTime};

use super::{Reason, Rejection, finish, reject};
use crate::codes;
use crate::intensity::{Intensity, IntensityRange, Upper};
use crate::report::{
    Accuracy, AreaForecast, EventId, Flags, Format, Hypocenter, InfoType, IntensityChange,
    IssuingSystem, JstTime, Kind, LandOrSea, Product, RegionLevel, Report, Status, WarnedRegion,
};

/// The terminator of every code telegram.
pub const TERMINATOR: &str = "9999=";

/// Offset of the first line that starts with a code-telegram header
/// (`aa bb nn yymmddhhmmss Cnf`), if any. Lines before it (a JMBSC title line, blank
/// lines) are not part of the telegram.
pub fn find_header(bytes: &[u8]) -> Option<usize> {
    let mut start = 0;
    loop {
        let rest = bytes.get(start..)?;
        if is_header(rest) {
            return Some(start);
        }
        let nl = rest.iter().position(|&b| b == b'\n')?;
        start += nl + 1;
    }
}

/// True when `bytes` begins with the five header tokens.
fn is_header(bytes: &[u8]) -> bool {
    // aa bb nn yymmddhhmmss Cnf: digit counts 2,2,2,12 then C + 2 digits.
    let shape: &[(usize, bool)] = &[(2, false), (2, false), (2, false), (12, false), (3, true)];
    let mut pos = 0;
    for (i, &(len, c_prefix)) in shape.iter().enumerate() {
        let Some(tok) = bytes.get(pos..pos + len) else {
            return false;
        };
        let ok = if c_prefix {
            tok.first() == Some(&b'C') && tok.iter().skip(1).all(u8::is_ascii_digit)
        } else {
            tok.iter().all(u8::is_ascii_digit)
        };
        if !ok {
            return false;
        }
        pos += len;
        let sep = bytes.get(pos);
        let last = i + 1 == shape.len();
        match sep {
            Some(b' ' | b'\t' | b'\r' | b'\n') => pos += 1,
            None if last => {}
            _ => return false,
        }
    }
    true
}

/// One whitespace-separated field and the (0-based) line it sits on.
#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    text: &'a str,
    line: usize,
}

/// A cursor over the tokens of one telegram.
#[derive(Debug)]
struct Fields<'a> {
    tokens: Vec<Token<'a>>,
    pos: usize,
}

impl<'a> Fields<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.pos).map(|t| t.text)
    }

    fn next(&mut self, what: &str) -> Result<&'a str, Rejection> {
        let t = self.tokens.get(self.pos).map(|t| t.text);
        self.pos += 1;
        t.ok_or_else(|| {
            Rejection::new(
                Reason::Truncated,
                format!("the telegram ends before its {what} field"),
            )
        })
    }

    /// Next field, which must have exactly `len` characters.
    fn fixed(&mut self, what: &str, len: usize) -> Result<&'a str, Rejection> {
        let t = self.next(what)?;
        if t.len() == len {
            Ok(t)
        } else {
            reject(
                Reason::Malformed,
                format!(
                    "the {what} field {t:?} has {} characters; it must have {len}",
                    t.chars().count()
                ),
            )
        }
    }

    /// Next field, which must be `prefix` followed by `len` more characters.
    fn prefixed(&mut self, what: &str, prefix: &str, len: usize) -> Result<&'a str, Rejection> {
        let t = self.fixed(what, prefix.len() + len)?;
        match t.strip_prefix(prefix) {
            Some(rest) => Ok(rest),
            None => reject(
                Reason::Malformed,
                format!("the {what} field {t:?} must start with {prefix}"),
            ),
        }
    }
}

/// True when the bytes hold a code-telegram header line (after unescaping `\n`).
pub fn looks_like(bytes: &[u8]) -> bool {
    find_header(&unescaped(bytes)).is_some()
}

/// The bytes with escaped line breaks turned into real ones; borrowed when there are none.
fn unescaped(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if bytes.contains(&b'\\') {
        std::borrow::Cow::Owned(unescape_line_breaks(bytes))
    } else {
        std::borrow::Cow::Borrowed(bytes)
    }
}

/// Parses one code telegram.
pub fn parse(bytes: &[u8]) -> Result<Report, Rejection> {
    let unescaped = unescaped(bytes);
    let bytes: &[u8] = &unescaped;
    let Some(start) = find_header(bytes) else {
        return if contains(bytes, TERMINATOR.as_bytes()) || contains(bytes, b"NCN") {
            reject(
                Reason::Truncated,
                "the telegram has no header line (aa bb nn yymmddhhmmss Cnf): its start is missing",
            )
        } else {
            reject(
                Reason::UnknownFormat,
                "the input is not XML, not JSON, and has no JMA code-telegram header line",
            )
        };
    };
    let body = bytes.get(start..).unwrap_or_default();
    let Ok(text) = std::str::from_utf8(body) else {
        return reject(
            Reason::InvalidEncoding,
            "the telegram contains bytes that are not ASCII after its header",
        );
    };
    if let Some(c) = text.chars().find(|c| !c.is_ascii()) {
        return reject(
            Reason::InvalidEncoding,
            format!("the telegram contains the non-ASCII character {c:?} after its header"),
        );
    }

    // Cut at the terminator; only whitespace may follow it.
    let Some(end) = find_terminator(text) else {
        return reject(
            Reason::Truncated,
            "the telegram has no 9999= terminator: it is cut short",
        );
    };
    let (code, after) = text.split_at(end);
    let after = after.get(TERMINATOR.len()..).unwrap_or_default();
    if !after.trim().is_empty() {
        return reject(
            Reason::Malformed,
            "there is text after the 9999= terminator",
        );
    }

    let lines: Vec<&str> = code.lines().map(str::trim).collect();
    let tokens: Vec<Token<'_>> = lines
        .iter()
        .enumerate()
        .flat_map(|(line, l)| {
            l.split_ascii_whitespace()
                .map(move |text| Token { text, line })
        })
        .collect();
    let mut f = Fields { tokens, pos: 0 };

    let header = Header::parse(&mut f)?;
    let multi_line = f.tokens.get(5).is_some_and(|t| t.line > 0);
    match header.product {
        Product::Code47 => parse_public_warning(header, &mut f, &lines, multi_line),
        _ => {
            if multi_line {
                check_line_lengths(&lines, 0, FIXED_LINES)?;
            }
            let body = Advanced::parse(&mut f, &header)?;
            expect_end(&f)?;
            build(header, body, Vec::new())
        }
    }
}

/// The first five fields plus the origin/detection time.
#[derive(Debug)]
struct Header {
    product: Product,
    issuing_system: Option<IssuingSystem>,
    status: Status,
    cancel_status: bool,
    delivery_test: bool,
    issued_at: JstTime,
    time: JstTime,
}

impl Header {
    fn parse(f: &mut Fields<'_>) -> Result<Self, Rejection> {
        let aa = f.fixed("telegram type (aa)", 2)?;
        let product = match aa {
            "35" => Product::Code35,
            "36" => Product::Code36,
            "37" => Product::Code37,
            "39" => Product::Code39,
            "47" => Product::Code47,
            "48" => {
                return reject(
                    Reason::UnsupportedProduct,
                    "type 48 (cancel of the public warning telegram) has no published layout; the type 39 cancel of the same event is acted on instead",
                );
            }
            "38" | "61" => {
                return reject(
                    Reason::UnsupportedProduct,
                    format!("telegram type {aa} is not an earthquake early warning report"),
                );
            }
            _ => {
                return reject(
                    Reason::UnknownCode,
                    format!("{aa:?} is not a JMA EEW telegram type (aa)"),
                );
            }
        };
        let bb = f.fixed("issuing office (bb)", 2)?;
        let issuing_system = match bb {
            "03" => Some(IssuingSystem::Tokyo),
            "04" => Some(IssuingSystem::Osaka),
            "01" | "02" | "05" | "06" => None,
            _ => {
                return reject(
                    Reason::UnknownCode,
                    format!("{bb:?} is not a JMA issuing office code (bb)"),
                );
            }
        };
        let nn = f.fixed("status (nn)", 2)?;
        let (status, cancel_status, delivery_test) = match nn {
            "00" => (Status::Normal, false, false),
            "01" => (Status::Training, false, false),
            "10" => (Status::Normal, true, false),
            "11" => (Status::Training, true, false),
            "20" => (Status::Test, false, false),
            "30" => (Status::Test, false, true),
            _ => {
                return reject(
                    Reason::UnknownCode,
                    format!("{nn:?} is not a code-telegram status (nn)"),
                );
            }
        };
        let is_cancel_type = product == Product::Code39;
        if is_cancel_type != cancel_status {
            return reject(
                Reason::Inconsistent,
                format!(
                    "telegram type {aa} does not match status {nn}: only type 39 carries a cancel status"
                ),
            );
        }
        let issued_at = time12(f.fixed("issue time", 12)?, "issue time")?;
        let cnf = f.prefixed("telegram count (Cnf)", "C", 2)?;
        if cnf != "11" {
            let digits_ok = cnf.bytes().all(|b| b.is_ascii_digit());
            return if digits_ok && cnf != "00" {
                reject(
                    Reason::SplitTelegram,
                    format!(
                        "C{cnf}: this telegram is one part of several and must be reassembled first"
                    ),
                )
            } else {
                reject(
                    Reason::InvalidField,
                    format!("C{cnf} is not a valid telegram count"),
                )
            };
        }
        let time = time12(f.fixed("origin time", 12)?, "origin time")?;
        Ok(Self {
            product,
            issuing_system,
            status,
            cancel_status,
            delivery_test,
            issued_at,
            time,
        })
    }
}

/// The advanced-user part: `ND… NCN… JD… JN…`, hypocenter line, `RK RT RC`, `EBI`.
#[derive(Debug)]
struct Advanced {
    event_id: EventId,
    serial: u32,
    ncn_status: u8,
    hypocenter: Option<Hypocenter>,
    magnitude: Option<f64>,
    max_intensity: Option<IntensityRange>,
    accuracy: Option<Accuracy>,
    rt_warning: Option<bool>,
    plum_only: bool,
    change: Option<IntensityChange>,
    areas: Vec<AreaForecast>,
    ebi_present: bool,
}

impl Advanced {
    fn parse(f: &mut Fields<'_>, header: &Header) -> Result<Self, Rejection> {
        let id = f.prefixed("event id (ND)", "ND", 14)?;
        let event_id = EventId::parse(id).ok_or_else(|| {
            Rejection::new(
                Reason::InvalidField,
                format!("ND{id} is not a 14-digit event id"),
            )
        })?;
        let ncn = f.prefixed("report number (NCN)", "NCN", 3)?;
        let (ncn_status, serial) = parse_ncn(ncn)?;
        let jd = f.prefixed("JD", "JD", 14)?;
        if !jd.bytes().all(|b| b.is_ascii_digit() || b == b'/') {
            return reject(
                Reason::InvalidField,
                format!("JD{jd} must be digits or slashes"),
            );
        }
        let jn = f.prefixed("JN", "JN", 3)?;
        if !jn.bytes().all(|b| b.is_ascii_digit() || b == b'/') {
            return reject(
                Reason::InvalidField,
                format!("JN{jn} must be digits or slashes"),
            );
        }

        let kkk = f.fixed("epicentre code", 3)?;
        let lat = f.fixed("latitude", 4)?;
        let lon = f.fixed("longitude", 5)?;
        let depth = f.fixed("depth", 3)?;
        let mag = f.fixed("magnitude", 2)?;
        let max = f.fixed("maximum intensity", 2)?;
        let rk = f.prefixed("accuracy (RK)", "RK", 5)?;
        let rt = f.prefixed("flags (RT)", "RT", 5)?;
        let rc = f.prefixed("change (RC)", "RC", 5)?;

        if header.cancel_status {
            let all_slashes = [kkk, lat, lon, depth, mag, max, rk, rt, rc]
                .iter()
                .all(|t| t.bytes().all(|b| b == b'/'));
            if !all_slashes {
                return reject(
                    Reason::Inconsistent,
                    "a cancel telegram (type 39) must have every hypocenter and accuracy field unset (slashes)",
                );
            }
            if f.peek().is_some() {
                return reject(
                    Reason::Inconsistent,
                    "a cancel telegram (type 39) carries no area block",
                );
            }
            return Ok(Self {
                event_id,
                serial,
                ncn_status,
                hypocenter: None,
                magnitude: None,
                max_intensity: None,
                accuracy: None,
                rt_warning: None,
                plum_only: false,
                change: None,
                areas: Vec::new(),
                ebi_present: false,
            });
        }

        let rk = digits5(rk, "RK")?;
        check_digits(
            &rk,
            "RK",
            &[b"12345678", b"12345678", b"0234568", b"012345", b"12349"],
        )?;
        let rt = digits5(rt, "RT")?;
        check_digits(
            &rt,
            "RT",
            &[b"01", b"01", b"0123456789", b"0123456789", b"0123456789"],
        )?;
        let rc = digits5(rc, "RC")?;
        check_digits(
            &rc,
            "RC",
            &[
                b"012",
                b"012349",
                b"0123456789",
                b"0123456789",
                b"0123456789",
            ],
        )?;
        let plum_only = rt[2] == Some(9);

        let coordinates = (opt_field(lat), opt_field(lon));
        let hypocenter = match coordinates {
            (None, None) => None,
            (Some(lat), Some(lon)) => {
                let code = opt_field(kkk)
                    .map(|k| digits_only(k, "epicentre code").map(|_| k.to_owned()))
                    .transpose()?;
                let name = code
                    .as_deref()
                    .map(|c| {
                        codes::EPICENTER.name(c).map(str::to_owned).ok_or_else(|| {
                            Rejection::new(
                                Reason::UnknownCode,
                                format!("the epicentre code {c} is not in JMA's code table 41"),
                            )
                        })
                    })
                    .transpose()?;
                Some(Hypocenter {
                    code,
                    name,
                    lat: coordinate(lat, b'N', b'S', "latitude")?,
                    lon: coordinate(lon, b'E', b'W', "longitude")?,
                    depth_km: opt_field(depth)
                        .map(|d| digits_only(d, "depth").map(|v| v as u16))
                        .transpose()?,
                    assumed: plum_only,
                    land_or_sea: match rt[0] {
                        Some(0) => Some(LandOrSea::Land),
                        Some(1) => Some(LandOrSea::Sea),
                        _ => None,
                    },
                })
            }
            _ => {
                return reject(
                    Reason::Inconsistent,
                    "the telegram gives only one of latitude and longitude",
                );
            }
        };
        let magnitude = opt_field(mag)
            .map(|m| digits_only(m, "magnitude").map(|v| f64::from(v) / 10.0))
            .transpose()?;
        let max_intensity = match opt_field(max) {
            None => None,
            Some(code) => Some(IntensityRange::exactly(
                Intensity::from_code_telegram(code).ok_or_else(|| {
                    Rejection::new(
                        Reason::InvalidField,
                        format!("{code:?} is not an intensity code"),
                    )
                })?,
            )),
        };

        let base = header.time;
        let mut areas = Vec::new();
        let mut ebi_present = false;
        while let Some(block) = f.peek() {
            let code_len = match block {
                "EBI" => 3,
                "ECI" => 5,
                "EII" => 7,
                _ => break,
            };
            f.pos += 1;
            ebi_present |= block == "EBI";
            while f
                .peek()
                .is_some_and(|t| t.len() == code_len && t.bytes().all(|b| b.is_ascii_digit()))
            {
                let area = parse_area_group(f, code_len, base)?;
                // ECI (city) and EII (point) blocks were never issued in practice and name
                // no forecast area; their groups are checked for shape and skipped.
                if let (3, Some(area)) = (code_len, area) {
                    areas.push(area);
                }
            }
        }

        Ok(Self {
            event_id,
            serial,
            ncn_status,
            hypocenter,
            magnitude,
            max_intensity,
            accuracy: Some(Accuracy {
                epicenter: rk[0],
                depth: rk[1],
                magnitude: rk[2].filter(|&d| d != 0),
                magnitude_stations: rk[3].filter(|&d| d != 0),
                hypocenter: rk[4],
            }),
            rt_warning: rt[1].map(|d| d == 1),
            plum_only,
            change: rc[0].map(|change| IntensityChange {
                change,
                reason: rc[1],
            }),
            areas,
            ebi_present,
        })
    }
}

/// One EBI-style group: `fff Se1e2e3e4 hhmmss y1y2`. Returns the area for EBI groups.
fn parse_area_group(
    f: &mut Fields<'_>,
    code_len: usize,
    base: JstTime,
) -> Result<Option<AreaForecast>, Rejection> {
    let code = f.fixed("area code", code_len)?;
    let s = f.prefixed("area intensity", "S", 4)?;
    let time = f.fixed("area arrival time", 6)?;
    let y = f.fixed("area flags", 2)?;

    // Se1e2e3e4: e1e2 is the upper bound and e3e4 the lower (S6-5+ = 5強〜6弱); when
    // e3e4 is `//` the range is "e1e2 or more" (S6-// = 6弱以上).
    let (e12, e34) = s.split_at(2);
    let class = |c: &str| {
        Intensity::from_code_telegram(c).ok_or_else(|| {
            Rejection::new(
                Reason::InvalidField,
                format!("area {code}: {c:?} is not an intensity code"),
            )
        })
    };
    let (lower, upper) = if e34 == "//" {
        (class(e12)?, Upper::Over)
    } else {
        (class(e34)?, Upper::At(class(e12)?))
    };
    let intensity = IntensityRange::new(lower, upper).ok_or_else(|| {
        Rejection::new(
            Reason::Inconsistent,
            format!("area {code}: the upper intensity bound is below the lower bound"),
        )
    })?;
    let time = match opt_field(time) {
        None => None,
        Some(t) => Some(time_of_day(t, base).ok_or_else(|| {
            Rejection::new(
                Reason::InvalidField,
                format!("area {code}: {t:?} is not a time hhmmss"),
            )
        })?),
    };
    let mut flags = y.bytes();
    let warning = match flags.next() {
        Some(b'1') => true,
        Some(b'0' | b'/') => false,
        _ => {
            return reject(
                Reason::InvalidField,
                format!("area {code}: {y:?} has no valid warning flag (y1)"),
            );
        }
    };
    let (arrival, arrived, plum, plum_predicted_at) = match flags.next() {
        Some(b'0') => (time, false, false, None),
        // Arrived: the time field should be //////; a time there has no meaning.
        Some(b'1') => (None, true, false, None),
        Some(b'9') => (None, false, true, time),
        Some(b'/') => (None, false, false, None),
        _ => {
            return reject(
                Reason::InvalidField,
                format!("area {code}: {y:?} has no valid arrival flag (y2)"),
            );
        }
    };
    if code_len != 3 {
        return Ok(None);
    }
    let name = codes::FORECAST_AREA.name(code).ok_or_else(|| {
        Rejection::new(
            Reason::UnknownCode,
            format!("the area code {code} is not a JMA forecast area"),
        )
    })?;
    Ok(Some(AreaForecast {
        code: code.to_owned(),
        name: name.to_owned(),
        intensity,
        long_period_class: None,
        long_period: None,
        warning,
        arrival,
        arrived,
        plum,
        plum_predicted_at,
    }))
}

/// Type 47: `ND… NCPNnn`, `cccc lat lon depth`, `PRC…`, the CAI/CPI/CBI (added) and
/// PAI/PPI/PBI (all) lists, then `NCP` and a complete advanced part.
fn parse_public_warning(
    header: Header,
    f: &mut Fields<'_>,
    lines: &[&str],
    multi_line: bool,
) -> Result<Report, Rejection> {
    if multi_line && lines.first().map(|l| l.len()) != Some(25) {
        return reject(
            Reason::BadLineLength,
            "the header line must be 25 characters",
        );
    }
    let id = f.prefixed("event id (ND)", "ND", 14)?.to_owned();
    let _warning_serial = f.prefixed("warning number (NCPN)", "NCPN", 2)?;
    let _reduced_code = f.fixed("abbreviated epicentre code", 4)?;
    let _lat = f.fixed("latitude", 4)?;
    let _lon = f.fixed("longitude", 5)?;
    let _depth = f.fixed("depth", 3)?;
    let prc = f.prefixed("warning change (PRC)", "PRC", 5)?;
    if !prc.bytes().all(|b| b.is_ascii_digit() || b == b'/') {
        return reject(
            Reason::InvalidField,
            format!("PRC{prc} must be digits or slashes"),
        );
    }

    let mut added = std::collections::HashSet::new();
    let mut regions = Vec::new();
    for (marker, level, is_added) in [
        ("CAI", RegionLevel::Region, true),
        ("CPI", RegionLevel::Prefecture, true),
        ("CBI", RegionLevel::Area, true),
        ("PAI", RegionLevel::Region, false),
        ("PPI", RegionLevel::Prefecture, false),
        ("PBI", RegionLevel::Area, false),
    ] {
        let m = f.next(marker)?;
        if m != marker {
            return reject(
                Reason::Malformed,
                format!("expected the {marker} list, found {m:?}"),
            );
        }
        let width = if level == RegionLevel::Area { 3 } else { 4 };
        while let Some(t) = f
            .peek()
            .filter(|t| t.len() == width && t.bytes().all(|b| b.is_ascii_digit()))
        {
            f.pos += 1;
            if t.bytes().all(|b| b == b'0') {
                continue; // 0000 / 000: none
            }
            let table = match level {
                RegionLevel::Region => &codes::REGION,
                RegionLevel::Prefecture => &codes::PREFECTURE,
                RegionLevel::Area => &codes::FORECAST_AREA,
            };
            let name = table.name(t).ok_or_else(|| {
                Rejection::new(
                    Reason::UnknownCode,
                    format!("{marker}: {t} is not in JMA's code tables"),
                )
            })?;
            if is_added {
                added.insert((level, t));
            } else {
                regions.push(WarnedRegion {
                    level,
                    code: t.to_owned(),
                    name: name.to_owned(),
                    newly_added: added.contains(&(level, t)),
                });
            }
        }
    }
    let ncp = f.next("NCP marker")?;
    if ncp != "NCP" {
        return reject(
            Reason::Malformed,
            format!("expected NCP before the advanced part, found {ncp:?}"),
        );
    }
    if multi_line {
        // The embedded advanced part keeps the fixed lines of types 35–37.
        let nd_line = lines.iter().position(|l| l.contains(" NCN")).unwrap_or(0);
        check_line_lengths(lines, nd_line, FIXED_LINES.get(2..).unwrap_or_default())?;
    }
    let body = Advanced::parse(f, &header)?;
    if body.event_id.as_str() != id {
        return reject(
            Reason::Inconsistent,
            format!(
                "the warning part's event id {id} differs from the advanced part's {}",
                body.event_id
            ),
        );
    }
    expect_end(f)?;
    build(header, body, regions)
}

/// Assembles and validates the report.
fn build(
    header: Header,
    body: Advanced,
    warned_regions: Vec<WarnedRegion>,
) -> Result<Report, Rejection> {
    let any_area_warned = body.areas.iter().any(|a| a.warning);
    // Drill telegrams are composed by hand and the one real sample (2012-04-20) carries
    // y1 = 1 with RT n2 = 0; a drill never drives outputs as real, so the cross-check
    // guards real telegrams only and a drill with either flag set reads as a warning.
    if body.ebi_present
        && header.status == Status::Normal
        && let Some(flag) = body.rt_warning
        && flag != any_area_warned
    {
        return reject(
            Reason::Inconsistent,
            if flag {
                "the warning flag (RT n2 = 1) is set but no area carries a warning (EBI y1 = 1)"
            } else {
                "an area carries a warning (EBI y1 = 1) but the warning flag (RT n2) is not set"
            },
        );
    }
    let level_method = header.product == Product::Code35;
    if level_method && body.magnitude.is_some() {
        return reject(
            Reason::Inconsistent,
            "a level-method telegram (type 35) has no magnitude, but this one gives one",
        );
    }
    let kind = if header.cancel_status {
        Kind::Cancel
    } else if header.delivery_test {
        Kind::DeliveryTest
    } else if header.product == Product::Code47 || body.rt_warning == Some(true) || any_area_warned
    {
        Kind::Warning
    } else {
        Kind::Forecast
    };
    let info_type = match (kind, body.ncn_status) {
        (Kind::Cancel, _) => InfoType::Cancel,
        (_, 6..=8) => InfoType::Correction,
        _ => InfoType::Issued,
    };
    let single_station = body
        .accuracy
        .is_some_and(|a| a.magnitude_stations == Some(1))
        || body.plum_only;
    let report = Report {
        format: Format::JmaCode,
        product: header.product,
        event_id: body.event_id,
        serial: body.serial,
        final_report: kind != Kind::Cancel && matches!(body.ncn_status, 8 | 9),
        kind,
        status: header.status,
        info_type,
        issued_at: Some(header.issued_at),
        origin_time: (!level_method && kind != Kind::Cancel).then_some(header.time),
        detected_at: (level_method || kind == Kind::Cancel).then_some(header.time),
        hypocenter: body.hypocenter,
        magnitude: body.magnitude,
        max_intensity: body.max_intensity,
        max_long_period_class: None,
        accuracy: body.accuracy,
        max_intensity_change: body.change,
        areas: body.areas,
        warned_regions,
        flags: Flags {
            plum: body.plum_only,
            deep: false,
            level_method,
            single_station,
        },
        issuing_system: header.issuing_system,
        actionable: false,
        not_actionable_reason: None,
    };
    finish(report)
}

/// The fixed-length lines of the multi-line layout: header, time, id, hypocenter.
const FIXED_LINES: &[(usize, &str)] = &[
    (25, "header"),
    (12, "origin time"),
    (46, "event id"),
    (48, "hypocenter"),
];

/// Multi-line layout: lines from `first` on must have the `expected` lengths.
fn check_line_lengths(
    lines: &[&str],
    first: usize,
    expected: &[(usize, &str)],
) -> Result<(), Rejection> {
    for (i, &(len, what)) in expected.iter().enumerate() {
        let line = lines.get(first + i).copied().unwrap_or_default();
        if line.len() != len {
            return reject(
                Reason::BadLineLength,
                format!(
                    "the {what} line has {} characters; it must have {len}: {line:?}",
                    line.len()
                ),
            );
        }
    }
    Ok(())
}

fn expect_end(f: &Fields<'_>) -> Result<(), Rejection> {
    match f.peek() {
        None => Ok(()),
        Some(t) => reject(
            Reason::Malformed,
            format!("unexpected field {t:?} before the 9999= terminator"),
        ),
    }
}

/// Byte offset of the first `9999=` that stands as a field of its own.
fn find_terminator(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text.get(from..)?.find(TERMINATOR) {
        let at = from + i;
        let before_ok = at == 0
            || text
                .as_bytes()
                .get(at - 1)
                .is_some_and(u8::is_ascii_whitespace);
        if before_ok {
            return Some(at);
        }
        from = at + TERMINATOR.len();
    }
    None
}

/// `NCNann`: a = status digit or `/`, nn = serial (`01`–`99`, or letter + digit for
/// 100 and above: `A0` = 100, `B5` = 115).
fn parse_ncn(ncn: &str) -> Result<(u8, u32), Rejection> {
    let b = ncn.as_bytes();
    let status = match b.first() {
        Some(b'/') => 0,
        Some(&d @ (b'0' | b'6' | b'7' | b'8' | b'9')) => d - b'0',
        _ => {
            return reject(
                Reason::InvalidField,
                format!(
                    "NCN{ncn}: {:?} is not a report status",
                    ncn.get(..1).unwrap_or("")
                ),
            );
        }
    };
    let serial = match (b.get(1), b.get(2)) {
        (Some(&t @ b'0'..=b'9'), Some(&u @ b'0'..=b'9')) => {
            u32::from(t - b'0') * 10 + u32::from(u - b'0')
        }
        (Some(&t @ b'A'..=b'Z'), Some(&u @ b'0'..=b'9')) => {
            u32::from(t - b'A' + 10) * 10 + u32::from(u - b'0')
        }
        _ => {
            return reject(
                Reason::InvalidField,
                format!("NCN{ncn}: the report number is not 01–99 or letter-digit"),
            );
        }
    };
    if serial == 0 {
        return reject(
            Reason::InvalidField,
            format!("NCN{ncn}: report number 0 does not exist"),
        );
    }
    Ok((status, serial))
}

/// `yymmddhhmmss` (JST, 21st century).
fn time12(s: &str, what: &str) -> Result<JstTime, Rejection> {
    let invalid = || {
        Rejection::new(
            Reason::InvalidField,
            format!("the {what} {s:?} is not a valid yymmddhhmmss time"),
        )
    };
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let n = |i: usize| s.get(i..i + 2).and_then(|p| p.parse::<u32>().ok());
    let year = 2000 + i32::try_from(n(0).ok_or_else(invalid)?).map_err(|_| invalid())?;
    JstTime::from_parts(
        year,
        n(2).ok_or_else(invalid)?,
        n(4).ok_or_else(invalid)?,
        n(6).ok_or_else(invalid)?,
        n(8).ok_or_else(invalid)?,
        n(10).ok_or_else(invalid)?,
    )
    .ok_or_else(invalid)
}

/// `hhmmss` on the day of `base`, rolled over to the next day when it would fall more
/// than an hour before `base` (an arrival just after midnight for an origin just before).
fn time_of_day(s: &str, base: JstTime) -> Option<JstTime> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |i: usize| s.get(i..i + 2).and_then(|p| p.parse::<u32>().ok());
    let t = NaiveTime::from_hms_opt(n(0)?, n(2)?, n(4)?)?;
    let candidate = JstTime::from_naive_jst(base.0.date_naive().and_time(t))?;
    if candidate.0 < base.0 - Duration::hours(1) {
        Some(JstTime(candidate.0 + Duration::days(1)))
    } else {
        Some(candidate)
    }
}

/// `None` for an all-slashes field (unknown), the text otherwise.
fn opt_field(s: &str) -> Option<&str> {
    (!s.bytes().all(|b| b == b'/')).then_some(s)
}

fn digits_only(s: &str, what: &str) -> Result<u32, Rejection> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().map_err(|_| {
            Rejection::new(
                Reason::InvalidField,
                format!("the {what} {s:?} is not a number"),
            )
        })
    } else {
        reject(
            Reason::InvalidField,
            format!("the {what} {s:?} must be digits or slashes"),
        )
    }
}

/// `N382` → 38.2, `S350` → −35.0, `E1427` → 142.7.
fn coordinate(s: &str, pos: u8, neg: u8, what: &str) -> Result<f64, Rejection> {
    let sign = match s.as_bytes().first() {
        Some(&c) if c == pos => 1.0,
        Some(&c) if c == neg => -1.0,
        _ => {
            return reject(
                Reason::InvalidField,
                format!(
                    "the {what} {s:?} must start with {} or {}",
                    pos as char, neg as char
                ),
            );
        }
    };
    let digits = s.get(1..).unwrap_or_default();
    Ok(sign * f64::from(digits_only(digits, what)?) / 10.0)
}

/// Five accuracy characters: digits or `/` (unknown).
fn digits5(s: &str, what: &str) -> Result<[Option<u8>; 5], Rejection> {
    let mut out = [None; 5];
    for (slot, b) in out.iter_mut().zip(s.bytes()) {
        *slot = match b {
            b'/' => None,
            b'0'..=b'9' => Some(b - b'0'),
            _ => {
                return reject(
                    Reason::InvalidField,
                    format!("{what}{s}: {:?} is not a digit or slash", b as char),
                );
            }
        };
    }
    Ok(out)
}

/// Each digit must be one the code tables define for its position.
fn check_digits(d: &[Option<u8>; 5], what: &str, allowed: &[&[u8]; 5]) -> Result<(), Rejection> {
    for (i, (digit, ok)) in d.iter().zip(allowed.iter()).enumerate() {
        if let Some(v) = digit
            && !ok.contains(&(b'0' + v))
        {
            return reject(
                Reason::UnknownCode,
                format!(
                    "{what} digit n{} = {v} is not defined in JMA's code table",
                    i + 1
                ),
            );
        }
    }
    Ok(())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Turns the two-character escapes `\r\n`, `\n` and `\r` into a real line break.
fn unescape_line_breaks(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            match bytes.get(i + 1) {
                Some(b'n') => {
                    out.push(b'\n');
                    i += 2;
                    continue;
                }
                Some(b'r') => {
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_letter_form_counts_from_one_hundred() {
        assert_eq!(parse_ncn("9A0").unwrap(), (9, 100));
        assert_eq!(parse_ncn("0B5").unwrap(), (0, 115));
        assert_eq!(parse_ncn("946").unwrap(), (9, 46));
        assert_eq!(parse_ncn("/01").unwrap(), (0, 1));
        assert!(parse_ncn("000").is_err());
        assert!(parse_ncn("5A0").is_err());
        assert!(parse_ncn("0a0").is_err());
    }

    #[test]
    fn arrival_times_after_midnight_roll_over_to_the_next_day() {
        let origin = time12("241231235950", "t").unwrap();
        let arrival = time_of_day("000010", origin).unwrap();
        assert_eq!(arrival.to_rfc3339(), "2025-01-01T00:00:10+09:00");
        let same_day = time_of_day("235958", origin).unwrap();
        assert_eq!(same_day.to_rfc3339(), "2024-12-31T23:59:58+09:00");
    }

    #[test]
    fn header_is_found_after_a_katakana_title_line_in_shift_jis() {
        // ﾅｳｷﾔｽﾄ3 ｷｼﾖｳ in JIS X 0201 bytes, then two blank lines.
        let mut input = vec![
            0xC5, 0xB3, 0xB7, 0xD4, 0xBD, 0xC4, b'3', b' ', 0xB7, 0xBC, 0xD6, 0xB3,
        ];
        input.extend_from_slice(b"\r\n\r\n\r\n");
        let offset = input.len();
        input.extend_from_slice(b"37 03 00 110415005029 C11\r\n");
        assert_eq!(find_header(&input), Some(offset));
    }

    #[test]
    fn line_break_escapes_are_unescaped() {
        assert_eq!(unescape_line_breaks(br"a\r\nb\nc"), b"a\nb\nc");
        assert_eq!(unescape_line_breaks(br"a\tb"), br"a\tb");
    }
}
