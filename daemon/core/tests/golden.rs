//! Golden tests: every telegram in `tests/fixtures/telegrams/` is parsed and compared
//! with the `<file>.expected.json` beside it (the public JSON of `eewgate parse`, or the
//! rejection). Expected files were generated once with `BLESS=1` and then reviewed by
//! hand against the source telegram and the format reference; a change in output fails
//! here until it is reviewed and blessed again:
//!
//! ```text
//! BLESS=1 cargo test -p eew-core --test golden
//! git diff daemon/core/tests/fixtures   # review every change
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    reason = "a test harness: fixtures are read from disk and a failure should stop the test"
)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/telegrams")
}

/// Telegram files: everything except the index, its README and expected files.
fn telegram_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(fixtures())
        .expect("fixture directory exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            !name.ends_with(".expected.json") && name != "README.md" && name != "index.csv"
        })
        .collect();
    files.sort();
    files
}

fn expected_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().unwrap().to_os_string();
    name.push(".expected.json");
    file.with_file_name(name)
}

/// What `eewgate parse` prints for the file, minus the `input` key the CLI adds.
fn actual(file: &Path) -> Value {
    let bytes = fs::read(file).expect("fixture readable");
    match eew_core::parse(&bytes) {
        Ok(report) => serde_json::to_value(&report).expect("a report always serializes"),
        Err(rejection) => json!({
            "error": "rejected",
            "reason": rejection.reason.code(),
            "message": rejection.message,
        }),
    }
}

#[test]
fn every_fixture_matches_its_reviewed_expected_output() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    let files = telegram_files();
    assert!(
        files.len() >= 86,
        "fixture set is incomplete: {} files",
        files.len()
    );
    for file in &files {
        let got = actual(file);
        let path = expected_path(file);
        if bless {
            let mut text = serde_json::to_string_pretty(&got).unwrap();
            text.push('\n');
            fs::write(&path, text).unwrap();
            continue;
        }
        let Ok(text) = fs::read_to_string(&path) else {
            failures.push(format!(
                "{}: no expected file; run BLESS=1 and review it",
                file.display()
            ));
            continue;
        };
        let want: Value = serde_json::from_str(&text).expect("expected file is JSON");
        if want != got {
            failures.push(format!(
                "{}:\n--- expected\n{}\n--- actual\n{}",
                file.display(),
                serde_json::to_string_pretty(&want).unwrap(),
                serde_json::to_string_pretty(&got).unwrap()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn no_expected_file_is_left_without_its_telegram() {
    for entry in fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".expected.json") {
            assert!(
                path.with_file_name(stem).exists(),
                "{name} has no telegram beside it"
            );
        }
    }
}

/// The corpus index (kept from its source with provenance) records the event id and
/// serial of every real telegram: an independent check of the parsers' two key fields.
#[test]
fn parsed_event_ids_and_serials_agree_with_the_corpus_index() {
    let index = fs::read_to_string(fixtures().join("index.csv")).unwrap();
    let mut rows = BTreeMap::new();
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.splitn(6, ',').collect();
        rows.insert(cols[0].to_owned(), (cols[2].to_owned(), cols[3].to_owned()));
    }
    let mut checked = 0;
    for file in telegram_files() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let (event_id, serial) = rows
            .get(&name)
            .unwrap_or_else(|| panic!("{name} is not listed in index.csv"));
        if let Ok(report) = eew_core::parse(&fs::read(&file).unwrap()) {
            assert_eq!(report.event_id.as_str(), event_id, "{name}: event id");
            assert_eq!(report.serial.to_string(), *serial, "{name}: serial");
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} fixtures parsed");
}

/// Malformed and fragment files exist to be refused; each must be, with its reason.
#[test]
fn malformed_and_modified_fixtures_are_rejected_with_the_right_reason() {
    let cases = [
        ("malformed_20240719_json_escape_corruption.txt", "malformed"),
        ("malformed_fragment_head_only.txt", "truncated"),
        ("malformed_fragment_tail_deep_quake.txt", "truncated"),
        ("malformed_truncated_no_terminator.txt", "truncated"),
        (
            "modified_20110311_ncn009_out_of_range_accuracy.txt",
            "unknown_code",
        ),
        (
            "modified_20141215_south_west_hemisphere.txt",
            "out_of_range",
        ),
        (
            "iedred_20180618_osaka_serial11_warning.json",
            "unsupported_product",
        ),
        (
            "p2pquake_epsp_eew_20240116_notooki_serial1.json",
            "unsupported_product",
        ),
    ];
    for (name, reason) in cases {
        let got = actual(&fixtures().join(name));
        assert_eq!(got["error"], "rejected", "{name} must be rejected");
        assert_eq!(got["reason"], reason, "{name}: {}", got["message"]);
        assert!(!got["message"].as_str().unwrap().is_empty());
    }
}

/// Format detection from content alone agrees with the corpus index's format column.
#[test]
fn format_is_detected_from_content_for_every_fixture() {
    use eew_core::Format;
    let index = fs::read_to_string(fixtures().join("index.csv")).unwrap();
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.splitn(3, ',').collect();
        let (name, format) = (cols[0], cols[1]);
        let bytes = fs::read(fixtures().join(name)).unwrap();
        let expected = match format {
            "jma_code" => Some(Format::JmaCode),
            // a tail fragment has no header: nothing identifies it as a code telegram
            "jma_code_fragment" if name.contains("tail") => None,
            "jma_code_fragment" => Some(Format::JmaCode),
            f if f.starts_with("jma_xml") => Some(Format::JmaXml),
            f if f.starts_with("dmdata_json") => Some(Format::DmdataJson),
            "wolfx_json" => Some(Format::WolfxJson),
            _ => None, // third-party JSON eewgate does not accept
        };
        assert_eq!(eew_core::telegram::detect(&bytes), expected, "{name}");
    }
}
