//! Property tests of the telegram parsers.
//!
//! No input panics a parser, every input ends in a report or a rejection with a sentence,
//! and every report satisfies the invariants documented on [`eew_core::Report`] and
//! enforced by `telegram::finish`. Inputs are arbitrary bytes, and the real telegrams of
//! `tests/fixtures/telegrams/` with random damage: bit flips, inserted and deleted bytes,
//! truncation, swapped / duplicated / replaced tokens, changed digits and changed
//! whitespace. The fixtures are read from disk when the tests start, so a telegram added
//! to the corpus is covered without touching this file.
//!
//! Case counts are moderate (256–512 per property) so the file runs in seconds in debug
//! mode; `PROPTEST_CASES=N` raises them for a deeper run, and the fuzz targets in `fuzz/`
//! go deeper still. A failing case is saved by proptest in
//! `proptest-regressions/` and replayed first on every later run: commit those files.

#![allow(
    clippy::disallowed_methods,
    reason = "the tests read their fixture files; the ban on I/O is for the library"
)]
#![allow(
    clippy::panic,
    reason = "a test crate: the fixture loader outside #[test] fns fails the run by panicking"
)]

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use eew_core::intensity::MAX_LONG_PERIOD_CLASS;
use eew_core::report::DEEP_EVENT_KM;
use eew_core::telegram::{
    self, LAT_RANGE, LON_RANGE, MAGNITUDE_RANGE, MAX_DEPTH_KM, jma_code, jma_xml, json,
};
use eew_core::{
    InfoType, IntensityRange, JstTime, Kind, LongPeriodRange, RegionLevel, Rejection, Report,
    Status, Upper, codes,
};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// The wire family of a fixture, judged from its first non-blank byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Code,
    Xml,
    Json,
}

struct Fixture {
    name: String,
    bytes: Vec<u8>,
    family: Family,
}

/// Only the name: failure reports and regression files stay readable.
impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/telegrams")
}

/// Every telegram of the corpus, sorted by file name (README, index and expected outputs
/// are not telegrams).
static FIXTURES: LazyLock<Vec<Fixture>> = LazyLock::new(|| {
    let dir = fixture_dir();
    let mut fixtures: Vec<Fixture> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            let skip =
                name == "README.md" || name == "index.csv" || name.ends_with(".expected.json");
            (!skip).then_some((name, path))
        })
        .map(|(name, path)| {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
            let family = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'<') => Family::Xml,
                Some(b'{') => Family::Json,
                _ => Family::Code,
            };
            Fixture {
                name,
                bytes,
                family,
            }
        })
        .collect();
    fixtures.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        fixtures.len() >= 20,
        "the fixture corpus in {} looks empty",
        dir.display()
    );
    fixtures
});

fn family(family: Family) -> Vec<&'static Fixture> {
    FIXTURES.iter().filter(|f| f.family == family).collect()
}

/// The fixtures of one family that parse as they are (all of the family while its parser
/// accepts none, so the strategies never run dry).
fn parsing(fam: Family) -> Vec<&'static Fixture> {
    let all = family(fam);
    let ok: Vec<_> = all
        .iter()
        .copied()
        .filter(|f| eew_core::parse(&f.bytes).is_ok())
        .collect();
    if ok.is_empty() { all } else { ok }
}

static PARSING_CODE: LazyLock<Vec<&'static Fixture>> = LazyLock::new(|| parsing(Family::Code));
static PARSING_XML: LazyLock<Vec<&'static Fixture>> = LazyLock::new(|| parsing(Family::Xml));
static PARSING_JSON: LazyLock<Vec<&'static Fixture>> = LazyLock::new(|| parsing(Family::Json));

/// Element texts of the XML fixtures (`>text<`): values to put in another element.
static XML_TEXTS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let set: BTreeSet<&[u8]> = FIXTURES
        .iter()
        .filter(|f| f.family == Family::Xml)
        .flat_map(|f| {
            xml_text_spans(&f.bytes)
                .into_iter()
                .filter_map(|(s, e)| f.bytes.get(s..e))
        })
        .collect();
    set.into_iter().map(<[u8]>::to_vec).collect()
});

/// Leaf values of the JSON fixtures, plus edge values: what a JSON leaf can become.
static JSON_LEAVES: LazyLock<Vec<serde_json::Value>> = LazyLock::new(|| {
    let mut leaves: Vec<serde_json::Value> = [
        "null",
        "true",
        "false",
        "0",
        "-1",
        "1e300",
        "-0.0",
        "18446744073709551615",
        "\"\"",
        "\"over\"",
        "\"//\"",
        "\"不明\"",
        "[]",
        "{}",
    ]
    .iter()
    .filter_map(|t| serde_json::from_str(t).ok())
    .collect();
    for f in FIXTURES.iter().filter(|f| f.family == Family::Json) {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&f.bytes) {
            collect_leaves(&v, &mut leaves);
        }
    }
    leaves.sort_by_key(|v| v.to_string());
    leaves.dedup();
    leaves
});

fn collect_leaves(v: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
    match v {
        serde_json::Value::Object(map) => map.values().for_each(|x| collect_leaves(x, out)),
        serde_json::Value::Array(items) => items.iter().for_each(|x| collect_leaves(x, out)),
        leaf => out.push(leaf.clone()),
    }
}

/// Byte ranges of non-blank element text (`>text<`).
fn xml_text_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'>' => start = Some(i + 1),
            b'<' => {
                if let Some(s) = start.take()
                    && bytes
                        .get(s..i)
                        .is_some_and(|t| t.iter().any(|b| !b.is_ascii_whitespace()))
                {
                    spans.push((s, i));
                }
            }
            _ => {}
        }
    }
    spans
}

/// Every distinct whitespace-separated token of the fixtures of one family: material for
/// token replacement that keeps mutated telegrams close to parsing.
fn vocabulary(fam: Family) -> Vec<Vec<u8>> {
    let set: BTreeSet<&[u8]> = FIXTURES
        .iter()
        .filter(|f| f.family == fam)
        .flat_map(|f| {
            token_spans(&f.bytes)
                .into_iter()
                .filter_map(|(s, e)| f.bytes.get(s..e))
        })
        .collect();
    set.into_iter().map(<[u8]>::to_vec).collect()
}

static CODE_VOCABULARY: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| vocabulary(Family::Code));
static XML_VOCABULARY: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| vocabulary(Family::Xml));
static JSON_VOCABULARY: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| vocabulary(Family::Json));

fn vocabulary_of(fam: Family) -> &'static [Vec<u8>] {
    match fam {
        Family::Code => &CODE_VOCABULARY,
        Family::Xml => &XML_VOCABULARY,
        Family::Json => &JSON_VOCABULARY,
    }
}

/// Byte ranges of the whitespace-separated tokens.
fn token_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, b) in bytes.iter().enumerate() {
        match (b.is_ascii_whitespace(), start) {
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, bytes.len()));
    }
    spans
}

/// Byte ranges of the whitespace runs.
fn whitespace_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, b) in bytes.iter().enumerate() {
        match (b.is_ascii_whitespace(), start) {
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            (true, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, bytes.len()));
    }
    spans
}

// ---------------------------------------------------------------------------------------
// Invariants
// ---------------------------------------------------------------------------------------

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
/// Keys whose values are times, wherever they occur in the JSON.
const TIME_KEYS: &[&str] = &[
    "issued_at",
    "origin_time",
    "detected_at",
    "arrival",
    "plum_predicted_at",
];

fn check_intensity_range(what: &str, r: &IntensityRange) -> Result<(), TestCaseError> {
    if let Upper::At(upper) = r.upper {
        prop_assert!(
            r.lower <= upper,
            "{what}: lower bound {} above upper bound {}",
            r.lower,
            upper
        );
    }
    Ok(())
}

fn check_long_period_range(what: &str, r: &LongPeriodRange) -> Result<(), TestCaseError> {
    prop_assert!(
        r.lower <= MAX_LONG_PERIOD_CLASS,
        "{what}: lower class {} above 4",
        r.lower
    );
    if let Upper::At(upper) = r.upper {
        prop_assert!(
            upper <= MAX_LONG_PERIOD_CLASS,
            "{what}: upper class {upper} above 4"
        );
        prop_assert!(
            r.lower <= upper,
            "{what}: lower class {} above upper class {upper}",
            r.lower
        );
    }
    Ok(())
}

fn check_time(what: &str, t: Option<JstTime>) -> Result<(), TestCaseError> {
    if let Some(t) = t {
        prop_assert_eq!(
            t.0.offset().local_minus_utc(),
            9 * 3600,
            "{} is not in JST: {}",
            what,
            t
        );
        prop_assert!(
            t.to_rfc3339().ends_with("+09:00"),
            "{what} {t} does not end with +09:00"
        );
    }
    Ok(())
}

/// Every invariant a [`Report`] promises, whatever format it came from.
fn check_report(r: &Report) -> Result<(), TestCaseError> {
    let id = r.event_id.as_str();
    prop_assert!(
        id.len() == 14 && id.bytes().all(|b| b.is_ascii_digit()),
        "event id {id:?} is not 14 digits"
    );
    prop_assert!(
        r.event_id.time().is_some(),
        "event id {id} is not a valid date and time"
    );
    prop_assert!(r.serial >= 1, "serial {} is below 1", r.serial);

    if let Some(max) = &r.max_intensity {
        check_intensity_range("max_intensity", max)?;
    }
    if let Some(class) = r.max_long_period_class {
        prop_assert!(
            class <= MAX_LONG_PERIOD_CLASS,
            "max_long_period_class {class} above 4"
        );
    }

    match &r.hypocenter {
        Some(h) => {
            prop_assert!(
                (LAT_RANGE.0..=LAT_RANGE.1).contains(&h.lat),
                "latitude {} outside {:?}",
                h.lat,
                LAT_RANGE
            );
            prop_assert!(
                (LON_RANGE.0..=LON_RANGE.1).contains(&h.lon),
                "longitude {} outside {:?}",
                h.lon,
                LON_RANGE
            );
            if let Some(depth) = h.depth_km {
                prop_assert!(
                    depth <= MAX_DEPTH_KM,
                    "depth {depth} km deeper than {MAX_DEPTH_KM} km"
                );
            }
            let deep = h.depth_km.is_some_and(|d| d > DEEP_EVENT_KM);
            prop_assert_eq!(
                r.flags.deep,
                deep,
                "flags.deep disagrees with depth {:?}",
                h.depth_km
            );
        }
        None => prop_assert!(!r.flags.deep, "flags.deep is set without a hypocenter"),
    }
    if let Some(m) = r.magnitude {
        prop_assert!(
            (MAGNITUDE_RANGE.0..=MAGNITUDE_RANGE.1).contains(&m),
            "magnitude {m} outside {:?}",
            MAGNITUDE_RANGE
        );
    }

    let mut seen = HashSet::new();
    for a in &r.areas {
        prop_assert!(
            codes::FORECAST_AREA.name(&a.code).is_some(),
            "area code {} is not a forecast area",
            a.code
        );
        prop_assert!(
            seen.insert(a.code.as_str()),
            "area {} is listed twice",
            a.code
        );
        check_intensity_range(&format!("area {}", a.code), &a.intensity)?;
        if let Some(class) = a.long_period_class {
            prop_assert!(
                class <= MAX_LONG_PERIOD_CLASS,
                "area {}: long-period class {class} above 4",
                a.code
            );
        }
        if let Some(lp) = &a.long_period {
            check_long_period_range(&format!("area {}", a.code), lp)?;
        }
        if a.arrived || a.plum {
            prop_assert!(
                a.arrival.is_none(),
                "area {} has an arrival time although arrived={} plum={}",
                a.code,
                a.arrived,
                a.plum
            );
        }
        check_time("arrival", a.arrival)?;
        check_time("plum_predicted_at", a.plum_predicted_at)?;
    }
    for w in &r.warned_regions {
        let table = match w.level {
            RegionLevel::Region => &codes::REGION,
            RegionLevel::Prefecture => &codes::PREFECTURE,
            RegionLevel::Area => &codes::FORECAST_AREA,
        };
        prop_assert!(
            table.name(&w.code).is_some(),
            "warned region {} ({:?}) is not in its table",
            w.code,
            w.level
        );
    }

    prop_assert_eq!(
        r.actionable,
        r.not_actionable_reason.is_none(),
        "actionable disagrees with not_actionable_reason {:?}",
        r.not_actionable_reason
    );
    prop_assert_eq!(
        r.kind == Kind::Cancel,
        r.info_type == InfoType::Cancel,
        "kind {:?} and info_type {:?} disagree about cancel",
        r.kind,
        r.info_type
    );
    if r.kind == Kind::DeliveryTest {
        prop_assert_eq!(
            r.status,
            Status::Test,
            "a delivery test without test status"
        );
    }
    check_time("issued_at", r.issued_at)?;
    check_time("origin_time", r.origin_time)?;
    check_time("detected_at", r.detected_at)?;
    check_json(r)
}

fn check_json(r: &Report) -> Result<(), TestCaseError> {
    let value = serde_json::to_value(r)
        .map_err(|e| TestCaseError::fail(format!("report does not serialize: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(TestCaseError::fail(
            "report does not serialize to a JSON object",
        ));
    };
    for key in REPORT_KEYS {
        prop_assert!(obj.contains_key(*key), "report JSON lacks {key:?}");
    }
    let Some(areas) = obj.get("areas").and_then(|a| a.as_array()) else {
        return Err(TestCaseError::fail("report JSON `areas` is not an array"));
    };
    for area in areas {
        for key in AREA_KEYS {
            prop_assert!(area.get(*key).is_some(), "area JSON lacks {key:?}: {area}");
        }
    }
    let flags = obj.get("flags");
    for key in FLAG_KEYS {
        prop_assert!(
            flags.and_then(|f| f.get(*key)).is_some(),
            "flags JSON lacks {key:?}"
        );
    }
    check_json_times(&value)
}

/// Every time anywhere in the report JSON is null or ends with +09:00.
fn check_json_times(value: &serde_json::Value) -> Result<(), TestCaseError> {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                if TIME_KEYS.contains(&key.as_str()) {
                    prop_assert!(
                        v.is_null() || v.as_str().is_some_and(|s| s.ends_with("+09:00")),
                        "{key} = {v} is not null or a +09:00 time"
                    );
                }
                check_json_times(v)?;
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                check_json_times(v)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A parser's outcome is a report with every invariant, or a rejection with a sentence.
fn check_outcome(
    parser: &str,
    input: &[u8],
    outcome: &Result<Report, Rejection>,
) -> Result<(), TestCaseError> {
    let checked = match outcome {
        Ok(report) => check_report(report),
        Err(rejection) => {
            prop_assert!(
                !rejection.message.trim().is_empty(),
                "rejection {:?} has an empty message",
                rejection.reason
            );
            Ok(())
        }
    };
    checked.map_err(|e| {
        TestCaseError::fail(format!(
            "{parser}: {e}\ninput ({} bytes): {:?}",
            input.len(),
            String::from_utf8_lossy(input)
        ))
    })
}

/// Runs the detector and every parser over `input`; none may panic (a panic fails the
/// case), and each outcome must be valid.
fn check_all_parsers(input: &[u8]) -> Result<(), TestCaseError> {
    let _ = telegram::detect(input);
    check_outcome("eew_core::parse", input, &eew_core::parse(input))?;
    check_outcome("jma_code::parse", input, &jma_code::parse(input))?;
    check_outcome("jma_xml::parse", input, &jma_xml::parse(input))?;
    check_outcome("json::parse", input, &json::parse(input))
}

// ---------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------

/// Strings that mean something to one of the parsers, inserted or swapped in.
const DICTIONARY: &[&str] = &[
    // code telegrams
    "9999=",
    "EBI",
    "ECI",
    "EII",
    "NCP",
    "NCPN01",
    "PAI",
    "PBI",
    "CBI",
    "//",
    "////",
    "/////",
    "/",
    "C11",
    "C12",
    "C00",
    "ND",
    "NCN",
    "NCN9A0",
    "JD",
    "JN",
    "RK",
    "RT",
    "RC",
    "RT09///",
    "RT11///",
    "S",
    "S7//",
    "S6+5-",
    "S5-6+",
    "S////",
    "N999",
    "E9999",
    "S350",
    "W1403",
    "N000",
    "E0000",
    "999",
    "000",
    "700",
    "701",
    "99",
    "00",
    "01",
    "10",
    "11",
    "20",
    "30",
    "35",
    "36",
    "37",
    "38",
    "39",
    "47",
    "48",
    "03",
    "04",
    "000000",
    "235959",
    "999999",
    "//////",
    "19",
    "91",
    "\\n",
    "\\r\\n",
    "\\",
    "\r",
    "\n",
    "\r\n",
    // XML
    "<",
    ">",
    "</",
    "/>",
    "&amp;",
    "&#0;",
    "&#xD800;",
    "&bogus;",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<?xml version=\"1.0\"?>",
    "<Report>",
    "</Report>",
    "xmlns=\"\"",
    "<Body>",
    "<Item>",
    "<Area>",
    "<Code>",
    "</Code>",
    "<Kind>",
    "<Name>",
    "<From>",
    "<To>",
    "over",
    "不明",
    "取消",
    "訓練",
    "試験",
    "通常",
    "発表",
    "訂正",
    "over\"",
    "jmx_eb:",
    "type=\"震央地名\"",
    "condition=\"不明\"",
    // JSON
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "true",
    "false",
    "-1",
    "0",
    "-0",
    "1.5",
    "1e999",
    "NaN",
    "18446744073709551616",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"\"",
    "{}",
    "[]",
    // times
    "2024-02-30T25:61:61+09:00",
    "+09:00",
    "Z",
    "+14:00",
    "-12:00",
    "9999-12-31T23:59:59+09:00",
    "0000-01-01T00:00:00+09:00",
    // encodings
    "\u{feff}",
    "\u{3000}",
    "\u{ff71}",
    "é",
];

#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    InsertBytes(Index, Vec<u8>),
    InsertWord(Index, &'static str),
    DeleteBytes(Index, usize),
    Truncate(Index),
    SwapTokens(Index, Index),
    DuplicateToken(Index),
    DeleteToken(Index),
    /// Replace a token by one of the same family's vocabulary (or the dictionary).
    ReplaceToken(Index, Index, bool),
    /// Replace a token by one of the vocabulary with the same length and the same kind of
    /// first character (`ND…` by `ND…`, `S5-//` by `S04//`, an area code by an area code).
    ReplaceTokenAlike(Index, Index),
    /// XML: replace an element's text by another element text of the corpus.
    XmlText(Index, Index),
    /// XML: remove a leaf element (`<X …>text</X>`) whole.
    XmlDropElement(Index),
    /// JSON: replace a leaf value by another leaf of the corpus or an edge value.
    JsonLeaf(Index, Index),
    /// JSON: remove one member of some object.
    JsonDropKey(Index),
    ChangeDigit(Index, u8),
    ReplaceWhitespace(Index, &'static str),
    AllLineBreaksToCrLf,
    AllLineBreaksToSpaces,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let whitespace = select(&["", " ", "  ", "\t", "\n", "\r\n", "\r", "\n\n", " \n "][..]);
    prop_oneof![
        2 => (any::<Index>(), 0u8..8).prop_map(|(i, bit)| Mutation::FlipBit(i, bit)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(i, v)| Mutation::InsertBytes(i, v)),
        2 => (any::<Index>(), select(DICTIONARY)).prop_map(|(i, w)| Mutation::InsertWord(i, w)),
        2 => (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::DeleteBytes(i, n)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapTokens(a, b)),
        1 => any::<Index>().prop_map(Mutation::DuplicateToken),
        1 => any::<Index>().prop_map(Mutation::DeleteToken),
        4 => (any::<Index>(), any::<Index>(), any::<bool>()).prop_map(|(t, w, d)| Mutation::ReplaceToken(t, w, d)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(t, w)| Mutation::ReplaceTokenAlike(t, w)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(t, w)| Mutation::XmlText(t, w)),
        1 => any::<Index>().prop_map(Mutation::XmlDropElement),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(t, w)| Mutation::JsonLeaf(t, w)),
        1 => any::<Index>().prop_map(Mutation::JsonDropKey),
        4 => (any::<Index>(), 0u8..10).prop_map(|(i, d)| Mutation::ChangeDigit(i, d)),
        2 => (any::<Index>(), whitespace).prop_map(|(i, w)| Mutation::ReplaceWhitespace(i, w)),
        1 => Just(Mutation::AllLineBreaksToCrLf),
        1 => Just(Mutation::AllLineBreaksToSpaces),
    ]
}

/// Damage that keeps a telegram's shape, so that many mutants still parse and reach the
/// cross-field checks: digits, tokens from real telegrams, token order, whitespace, and
/// for XML and JSON element texts, leaf values and missing members.
fn gentle_mutation() -> impl Strategy<Value = Mutation> {
    let whitespace = select(&[" ", "\n", "\r\n", "  "][..]);
    prop_oneof![
        4 => (any::<Index>(), 0u8..10).prop_map(|(i, d)| Mutation::ChangeDigit(i, d)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(t, w)| Mutation::ReplaceToken(t, w, false)),
        6 => (any::<Index>(), any::<Index>()).prop_map(|(t, w)| Mutation::ReplaceTokenAlike(t, w)),
        6 => (any::<Index>(), any::<Index>()).prop_map(|(t, w)| Mutation::XmlText(t, w)),
        2 => any::<Index>().prop_map(Mutation::XmlDropElement),
        6 => (any::<Index>(), any::<Index>()).prop_map(|(t, w)| Mutation::JsonLeaf(t, w)),
        2 => any::<Index>().prop_map(Mutation::JsonDropKey),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapTokens(a, b)),
        1 => any::<Index>().prop_map(Mutation::DuplicateToken),
        1 => any::<Index>().prop_map(Mutation::DeleteToken),
        1 => (any::<Index>(), whitespace).prop_map(|(i, w)| Mutation::ReplaceWhitespace(i, w)),
    ]
}

fn splice(bytes: &[u8], (start, end): (usize, usize), with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + with.len());
    out.extend_from_slice(bytes.get(..start).unwrap_or_default());
    out.extend_from_slice(with);
    out.extend_from_slice(bytes.get(end..).unwrap_or_default());
    out
}

fn pick<T: Copy>(items: &[T], i: &Index) -> Option<T> {
    (!items.is_empty()).then(|| i.get(items)).copied()
}

fn apply(bytes: Vec<u8>, m: &Mutation, fam: Family) -> Vec<u8> {
    let len = bytes.len();
    // A position in 0..=len (insertion point) or 0..len (an existing byte).
    let gap = |i: &Index| i.index(len + 1);
    let at = |i: &Index| (len > 0).then(|| i.index(len));
    match m {
        Mutation::FlipBit(i, bit) => match at(i) {
            Some(p) => {
                let mut out = bytes;
                if let Some(b) = out.get_mut(p) {
                    *b ^= 1 << bit;
                }
                out
            }
            None => bytes,
        },
        Mutation::SetByte(i, v) => match at(i) {
            Some(p) => splice(&bytes, (p, p + 1), &[*v]),
            None => vec![*v],
        },
        Mutation::InsertBytes(i, v) => {
            let p = gap(i);
            splice(&bytes, (p, p), v)
        }
        Mutation::InsertWord(i, w) => {
            let p = gap(i);
            splice(&bytes, (p, p), w.as_bytes())
        }
        Mutation::DeleteBytes(i, n) => match at(i) {
            Some(p) => splice(&bytes, (p, (p + n).min(len)), b""),
            None => bytes,
        },
        Mutation::Truncate(i) => bytes.get(..gap(i)).unwrap_or_default().to_vec(),
        Mutation::SwapTokens(a, b) => {
            let spans = token_spans(&bytes);
            match (pick(&spans, a), pick(&spans, b)) {
                (Some(x), Some(y)) if x != y => {
                    let (first, second) = if x < y { (x, y) } else { (y, x) };
                    let text = |(s, e): (usize, usize)| bytes.get(s..e).unwrap_or_default();
                    let mut out = Vec::with_capacity(len);
                    out.extend_from_slice(bytes.get(..first.0).unwrap_or_default());
                    out.extend_from_slice(text(second));
                    out.extend_from_slice(bytes.get(first.1..second.0).unwrap_or_default());
                    out.extend_from_slice(text(first));
                    out.extend_from_slice(bytes.get(second.1..).unwrap_or_default());
                    out
                }
                _ => bytes,
            }
        }
        Mutation::DuplicateToken(i) => match pick(&token_spans(&bytes), i) {
            Some((s, e)) => {
                let mut with = bytes.get(s..e).unwrap_or_default().to_vec();
                with.push(b' ');
                splice(&bytes, (s, s), &with)
            }
            None => bytes,
        },
        Mutation::DeleteToken(i) => match pick(&token_spans(&bytes), i) {
            Some(span) => splice(&bytes, span, b""),
            None => bytes,
        },
        Mutation::ReplaceToken(t, w, from_dictionary) => match pick(&token_spans(&bytes), t) {
            Some(span) => {
                let vocabulary = vocabulary_of(fam);
                let word: &[u8] = if *from_dictionary || vocabulary.is_empty() {
                    w.get(DICTIONARY).as_bytes()
                } else {
                    w.get::<Vec<u8>>(vocabulary).as_slice()
                };
                splice(&bytes, span, word)
            }
            None => bytes,
        },
        Mutation::ReplaceTokenAlike(t, w) => match pick(&token_spans(&bytes), t) {
            Some((s, e)) => {
                let old = bytes.get(s..e).unwrap_or_default();
                let class = |b: Option<&u8>| b.map(|b| if b.is_ascii_digit() { b'0' } else { *b });
                let alike: Vec<&[u8]> = vocabulary_of(fam)
                    .iter()
                    .map(Vec::as_slice)
                    .filter(|v| v.len() == old.len() && class(v.first()) == class(old.first()))
                    .collect();
                match pick(&alike, w) {
                    Some(word) => splice(&bytes, (s, e), word),
                    None => bytes,
                }
            }
            None => bytes,
        },
        Mutation::XmlText(t, w) => match (pick(&xml_text_spans(&bytes), t), XML_TEXTS.is_empty()) {
            (Some(span), false) => splice(&bytes, span, w.get::<Vec<u8>>(&XML_TEXTS)),
            _ => bytes,
        },
        Mutation::XmlDropElement(t) => match pick(&xml_text_spans(&bytes), t) {
            Some((s, e)) => {
                let open = bytes
                    .get(..s)
                    .and_then(|b| b.iter().rposition(|&c| c == b'<'));
                let close = bytes
                    .get(e..)
                    .and_then(|b| b.iter().position(|&c| c == b'>'))
                    .map(|p| e + p + 1);
                match (open, close) {
                    (Some(open), Some(close)) => splice(&bytes, (open, close), b""),
                    _ => bytes,
                }
            }
            None => bytes,
        },
        Mutation::JsonLeaf(t, w) => {
            let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                return bytes;
            };
            let count = count_leaves(&value);
            if count == 0 || JSON_LEAVES.is_empty() {
                return bytes;
            }
            let mut nth = t.index(count);
            replace_leaf(&mut value, &mut nth, w.get(&JSON_LEAVES));
            serde_json::to_vec(&value).unwrap_or(bytes)
        }
        Mutation::JsonDropKey(t) => {
            let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                return bytes;
            };
            let count = count_keys(&value);
            if count == 0 {
                return bytes;
            }
            let mut nth = t.index(count);
            drop_key(&mut value, &mut nth);
            serde_json::to_vec(&value).unwrap_or(bytes)
        }
        Mutation::ChangeDigit(i, d) => {
            let digits: Vec<usize> = bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| b.is_ascii_digit())
                .map(|(p, _)| p)
                .collect();
            match pick(&digits, i) {
                Some(p) => splice(&bytes, (p, p + 1), &[b'0' + d]),
                None => bytes,
            }
        }
        Mutation::ReplaceWhitespace(i, w) => match pick(&whitespace_spans(&bytes), i) {
            Some(span) => splice(&bytes, span, w.as_bytes()),
            None => bytes,
        },
        Mutation::AllLineBreaksToCrLf => crlf(&bytes),
        Mutation::AllLineBreaksToSpaces => single_line(&bytes),
    }
}

fn count_leaves(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Object(map) => map.values().map(count_leaves).sum(),
        serde_json::Value::Array(items) => items.iter().map(count_leaves).sum(),
        _ => 1,
    }
}

/// Replaces the `nth` leaf (depth first); `nth` counts down to it.
fn replace_leaf(v: &mut serde_json::Value, nth: &mut usize, with: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(map) => map.values_mut().any(|x| replace_leaf(x, nth, with)),
        serde_json::Value::Array(items) => items.iter_mut().any(|x| replace_leaf(x, nth, with)),
        leaf if *nth == 0 => {
            *leaf = with.clone();
            true
        }
        _ => {
            *nth -= 1;
            false
        }
    }
}

fn count_keys(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Object(map) => map.len() + map.values().map(count_keys).sum::<usize>(),
        serde_json::Value::Array(items) => items.iter().map(count_keys).sum(),
        _ => 0,
    }
}

/// Removes the `nth` object member (depth first, an object's own keys before its
/// children's); `nth` counts down to it.
fn drop_key(v: &mut serde_json::Value, nth: &mut usize) -> bool {
    match v {
        serde_json::Value::Object(map) => {
            if *nth < map.len() {
                if let Some(key) = map.keys().nth(*nth).cloned() {
                    map.remove(&key);
                }
                return true;
            }
            *nth -= map.len();
            map.values_mut().any(|x| drop_key(x, nth))
        }
        serde_json::Value::Array(items) => items.iter_mut().any(|x| drop_key(x, nth)),
        _ => false,
    }
}

fn mutate(fixture: &Fixture, mutations: &[Mutation]) -> Vec<u8> {
    mutations.iter().fold(fixture.bytes.clone(), |bytes, m| {
        apply(bytes, m, fixture.family)
    })
}

/// Every line break (LF or CRLF) as CRLF.
fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
    for &b in bytes {
        match b {
            b'\r' => {}
            b'\n' => out.extend_from_slice(b"\r\n"),
            _ => out.push(b),
        }
    }
    out
}

/// Every line break (LF or CRLF) as one space, as distributors' JSON `OriginalText`
/// carries a code telegram.
fn single_line(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => {}
            b'\n' => out.push(b' '),
            _ => out.push(b),
        }
    }
    out
}

/// Line breaks escaped as the two characters `\n` (or `\r\n`) made real, as the code
/// telegram parser does before anything else.
fn unescape(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    text.replace("\\r", "").replace("\\n", "\n").into_bytes()
}

/// Does the code telegram in `bytes` span several lines before its terminator?
fn is_multi_line(bytes: &[u8]) -> bool {
    let unescaped = unescape(bytes);
    let text = String::from_utf8_lossy(&unescaped);
    let body = text.split("9999=").next().unwrap_or_default();
    body.trim().contains('\n')
}

fn fixture_index(fam: Family) -> impl Strategy<Value = &'static Fixture> {
    select(family(fam))
}

/// `cases` per property, or `PROPTEST_CASES` from the environment for a deeper run
/// (`PROPTEST_CASES=20000 cargo test -p eew-core --release --test properties`).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------

/// One layout of a parsing code telegram: the same tokens on the same lines (LF or CRLF
/// per line, blanks around lines), or all on one line (blanks between tokens).
#[derive(Clone, Debug)]
enum Layout {
    MultiLine {
        crlf: Vec<bool>,
        indent: Vec<&'static str>,
    },
    SingleLine {
        separators: Vec<&'static str>,
    },
}

fn layout() -> impl Strategy<Value = Layout> {
    let blank = select(&["", "", "", " ", "  ", "\t"][..]);
    let separator = select(&[" ", " ", " ", "  ", "\t", " \t "][..]);
    prop_oneof![
        (
            prop::collection::vec(any::<bool>(), 1..8),
            prop::collection::vec(blank, 1..8)
        )
            .prop_map(|(crlf, indent)| Layout::MultiLine { crlf, indent }),
        prop::collection::vec(separator, 1..12)
            .prop_map(|separators| Layout::SingleLine { separators }),
    ]
}

/// Lays the telegram of `bytes` out anew. The header's five fields keep single spaces,
/// which is how a header line is recognised.
fn relayout(bytes: &[u8], layout: &Layout) -> Vec<u8> {
    let unescaped = unescape(bytes);
    let text = String::from_utf8_lossy(&unescaped);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_ascii_whitespace().collect::<Vec<_>>())
        .filter(|tokens| !tokens.is_empty())
        .collect();
    let mut out = String::new();
    match layout {
        Layout::MultiLine { crlf, indent } => {
            for (n, tokens) in lines.iter().enumerate() {
                let cycle = |v: &[&'static str]| v.get(n % v.len().max(1)).copied().unwrap_or("");
                if n > 0 {
                    out.push_str(cycle(indent));
                }
                out.push_str(&tokens.join(" "));
                out.push_str(cycle(indent.get(1..).unwrap_or_default()));
                let cr = crlf.get(n % crlf.len().max(1)).copied().unwrap_or(false);
                out.push_str(if cr { "\r\n" } else { "\n" });
            }
        }
        Layout::SingleLine { separators } => {
            for (n, token) in lines.iter().flatten().enumerate() {
                if n > 0 {
                    let sep = if n < 5 {
                        " "
                    } else {
                        separators
                            .get(n % separators.len().max(1))
                            .copied()
                            .unwrap_or(" ")
                    };
                    out.push_str(sep);
                }
                out.push_str(token);
            }
            out.push('\n');
        }
    }
    out.into_bytes()
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn every_fixture_either_parses_into_a_valid_report_or_is_rejected_with_a_sentence() {
    for f in FIXTURES.iter() {
        if let Err(e) = check_all_parsers(&f.bytes) {
            panic!("fixture {}: {e}", f.name);
        }
    }
}

#[test]
fn every_multi_line_code_fixture_parses_the_same_in_single_line_and_crlf_layouts() {
    let mut compared = 0;
    for f in family(Family::Code) {
        let Ok(report) = eew_core::parse(&f.bytes) else {
            continue;
        };
        if !is_multi_line(&f.bytes) {
            continue;
        }
        let unescaped = unescape(&f.bytes);
        for (layout, bytes) in [
            ("single-line", single_line(&unescaped)),
            ("CRLF", crlf(&unescaped)),
        ] {
            match eew_core::parse(&bytes) {
                Ok(other) => assert_eq!(
                    other, report,
                    "{}: the {layout} layout gives another report",
                    f.name
                ),
                Err(e) => panic!("{}: the {layout} layout is rejected: {e}", f.name),
            }
        }
        compared += 1;
    }
    assert!(
        compared >= 5,
        "only {compared} multi-line code fixtures parse; the corpus has more"
    );
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_bytes_never_panic_the_parser_or_the_detector(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
    ) {
        check_all_parsers(&bytes)?;
    }

    #[test]
    fn arbitrary_bytes_after_a_format_s_opening_never_panic_any_parser(
        lead in select(&[
            "<",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Report xmlns=\"http://xml.kishou.go.jp/jmaxml1/\">",
            "{",
            "{\"type\":\"jma_eew\",",
            "{\"_schema\":{\"type\":\"eew-information\",\"version\":\"1.0.0\"},",
            "37 03 00 110415005029 C11\n",
            "47 03 00 061004150000 C11\n061004145930\nND20061004145955 NCPN01\n",
            "\u{feff}  \r\n",
        ][..]),
        tail in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = lead.as_bytes().to_vec();
        bytes.extend_from_slice(&tail);
        check_all_parsers(&bytes)?;
    }

    #[test]
    fn mutated_code_telegrams_never_panic_and_every_report_keeps_the_invariants(
        fixture in fixture_index(Family::Code),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        check_all_parsers(&mutate(fixture, &mutations))?;
    }

    #[test]
    fn slightly_damaged_code_telegrams_either_keep_every_invariant_or_are_rejected(
        fixture in select(PARSING_CODE.clone()),
        mutations in prop::collection::vec(gentle_mutation(), 1..4),
    ) {
        check_all_parsers(&mutate(fixture, &mutations))?;
    }

    #[test]
    fn any_whitespace_layout_of_a_parsing_code_telegram_gives_the_same_report(
        fixture in select(PARSING_CODE.clone()),
        layout in layout(),
    ) {
        let Ok(expected) = eew_core::parse(&fixture.bytes) else {
            return Err(TestCaseError::fail(format!("{} no longer parses", fixture.name)));
        };
        // A multi-line layout needs the line structure of a multi-line original.
        let layout = match layout {
            Layout::MultiLine { .. } if !is_multi_line(&fixture.bytes) => Layout::SingleLine { separators: vec![" "] },
            other => other,
        };
        let bytes = relayout(&fixture.bytes, &layout);
        match eew_core::parse(&bytes) {
            Ok(report) => prop_assert_eq!(report, expected, "{}: {:?}", fixture.name, String::from_utf8_lossy(&bytes)),
            Err(e) => prop_assert!(false, "{} rejected in layout {:?}: {}\n{:?}", fixture.name, layout, e, String::from_utf8_lossy(&bytes)),
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn mutated_xml_documents_never_panic_and_every_report_keeps_the_invariants(
        fixture in fixture_index(Family::Xml),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        check_all_parsers(&mutate(fixture, &mutations))?;
    }

    #[test]
    fn slightly_damaged_xml_documents_either_keep_every_invariant_or_are_rejected(
        fixture in select(PARSING_XML.clone()),
        mutations in prop::collection::vec(gentle_mutation(), 1..4),
    ) {
        check_all_parsers(&mutate(fixture, &mutations))?;
    }

    #[test]
    fn slightly_damaged_json_messages_either_keep_every_invariant_or_are_rejected(
        fixture in select(PARSING_JSON.clone()),
        mutations in prop::collection::vec(gentle_mutation(), 1..4),
    ) {
        check_all_parsers(&mutate(fixture, &mutations))?;
    }

    #[test]
    fn mutated_json_messages_never_panic_and_every_report_keeps_the_invariants(
        fixture in fixture_index(Family::Json),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        check_all_parsers(&mutate(fixture, &mutations))?;
    }

    #[test]
    fn a_report_s_format_is_the_format_the_detector_names(
        fixture in select(FIXTURES.iter().collect::<Vec<_>>()),
        mutations in prop::collection::vec(mutation(), 0..3),
    ) {
        let bytes = mutate(fixture, &mutations);
        if let Ok(report) = eew_core::parse(&bytes) {
            prop_assert_eq!(
                telegram::detect(&bytes),
                Some(report.format),
                "{:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}
