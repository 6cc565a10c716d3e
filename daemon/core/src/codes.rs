//! JMA code tables compiled into the binary (see `data/README.md` for provenance).
//!
//! Tables are parsed once on first use from CSV text embedded with `include_str!`; the
//! unit tests below check every row and the row counts, so a broken table fails the build's
//! tests rather than a lookup in the field.

use std::collections::HashMap;
use std::sync::LazyLock;

const FORECAST_AREAS: &str = include_str!("../data/eew_forecast_areas.csv");
const EPICENTERS: &str = include_str!("../data/epicenter_codes.csv");
const EPICENTER_ABBREVIATIONS: &str = include_str!("../data/eew_epicenter_abbreviation_codes.csv");
const REGIONS: &str = include_str!("../data/eew_region_codes.csv");
const PREFECTURES: &str = include_str!("../data/eew_prefecture_codes.csv");

/// A code → name table.
#[derive(Debug)]
pub struct CodeTable {
    by_code: HashMap<&'static str, &'static str>,
    by_name: HashMap<&'static str, &'static str>,
    ordered: Vec<(&'static str, &'static str)>,
}

impl CodeTable {
    /// Builds a table from CSV whose first two columns are code and name. The tables are
    /// simple: no quoted commas in the first two columns (checked by the tests).
    fn from_csv(text: &'static str) -> Self {
        let mut ordered = Vec::new();
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let mut cols = line.split(',');
            if let (Some(code), Some(name)) = (cols.next(), cols.next()) {
                ordered.push((code.trim(), name.trim()));
            }
        }
        let by_code = ordered.iter().copied().collect();
        let by_name = ordered.iter().map(|&(c, n)| (n, c)).collect();
        Self {
            by_code,
            by_name,
            ordered,
        }
    }

    /// Name for a code.
    pub fn name(&self, code: &str) -> Option<&'static str> {
        self.by_code.get(code).copied()
    }

    /// The table's own code and name for a code (both `'static`, unlike the argument).
    pub fn code_and_name(&self, code: &str) -> Option<(&'static str, &'static str)> {
        self.by_code.get_key_value(code).map(|(c, n)| (*c, *n))
    }

    /// Code for an exact name.
    pub fn code_of(&self, name: &str) -> Option<&'static str> {
        self.by_name.get(name).copied()
    }

    /// Every (code, name), in the table's order.
    pub fn entries(&self) -> &[(&'static str, &'static str)] {
        &self.ordered
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.ordered.len()
    }

    /// True when empty (never, for the embedded tables).
    pub fn is_empty(&self) -> bool {
        self.ordered.is_empty()
    }
}

/// 地震情報／細分区域: the 3-digit forecast areas of EBI groups and XML `Area/Code`.
pub static FORECAST_AREA: LazyLock<CodeTable> =
    LazyLock::new(|| CodeTable::from_csv(FORECAST_AREAS));
/// 震央地名 (code table 41): 3-digit epicentre names.
pub static EPICENTER: LazyLock<CodeTable> = LazyLock::new(|| CodeTable::from_csv(EPICENTERS));
/// 短縮用震央地名 (code table 42): 4-digit abbreviated epicentre names.
pub static EPICENTER_ABBREVIATION: LazyLock<CodeTable> =
    LazyLock::new(|| CodeTable::from_csv(EPICENTER_ABBREVIATIONS));
/// 緊急地震速報／地方予報区 (99xx).
pub static REGION: LazyLock<CodeTable> = LazyLock::new(|| CodeTable::from_csv(REGIONS));
/// 緊急地震速報／府県予報区 (9xxx).
pub static PREFECTURE: LazyLock<CodeTable> = LazyLock::new(|| CodeTable::from_csv(PREFECTURES));

#[cfg(test)]
mod tests {
    use super::*;

    fn check(table: &CodeTable, text: &str, rows: usize, code_len: usize) {
        assert_eq!(table.len(), rows);
        assert_eq!(text.lines().skip(1).filter(|l| !l.is_empty()).count(), rows);
        for (code, name) in table.entries() {
            assert_eq!(code.len(), code_len, "code {code}");
            assert!(code.bytes().all(|b| b.is_ascii_digit()), "code {code}");
            assert!(!name.is_empty() && !name.starts_with('"'), "name of {code}");
        }
    }

    #[test]
    fn embedded_tables_parse_completely_with_the_documented_counts() {
        check(&FORECAST_AREA, FORECAST_AREAS, 188, 3);
        check(&EPICENTER, EPICENTERS, 343, 3);
        check(&EPICENTER_ABBREVIATION, EPICENTER_ABBREVIATIONS, 166, 4);
        check(&REGION, REGIONS, 14, 4);
        check(&PREFECTURE, PREFECTURES, 56, 4);
    }

    #[test]
    fn lookups_work_both_ways() {
        assert_eq!(FORECAST_AREA.name("100"), Some("石狩地方北部"));
        assert_eq!(FORECAST_AREA.code_of("石狩地方北部"), Some("100"));
        assert_eq!(EPICENTER.name("681"), Some("豊後水道"));
        assert_eq!(REGION.name("9920"), Some("東北"));
        assert_eq!(FORECAST_AREA.name("999"), None);
    }
}
