//! `eewgate parse` through the real binary: JSON Lines on stdout, one object per input,
//! exit status 1 when any input was rejected, stdin with `-`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/fixtures/telegrams")
        .join(name)
}

fn eewgate(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eewgate"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the eewgate binary starts");
    let mut pipe = child.stdin.take().expect("stdin was piped");
    if let Some(bytes) = stdin {
        // The binary stops reading past its size limit, so a broken pipe is expected
        // for oversized input.
        let _ = pipe.write_all(bytes);
    }
    drop(pipe);
    child
        .wait_with_output()
        .expect("the child runs to completion")
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .expect("stdout is UTF-8 JSON")
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is one JSON object"))
        .collect()
}

#[test]
fn valid_inputs_print_one_report_per_line_and_exit_zero() {
    let a = fixture("20110311_tohoku_ncn012_warning.txt");
    let b = fixture("20120108_ncn003_cancel.txt");
    let out = eewgate(&["parse", a.to_str().unwrap(), b.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports = lines(&out);
    assert_eq!(reports.len(), 2);
    let first = &reports[0];
    for key in [
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
    ] {
        assert!(first.get(key).is_some(), "key {key} missing");
    }
    assert_eq!(first["format"], "jma_code");
    assert_eq!(first["event_id"], "20110311144640");
    assert_eq!(first["serial"], 12);
    assert_eq!(first["kind"], "warning");
    assert_eq!(first["max_intensity"]["lower"], "5+");
    assert_eq!(first["input"], a.to_str().unwrap());
    assert_eq!(reports[1]["kind"], "cancel");
}

#[test]
fn a_rejected_input_is_reported_in_line_and_the_exit_status_is_one() {
    let good = fixture("20110311_tohoku_ncn012_warning.txt");
    let bad = fixture("malformed_truncated_no_terminator.txt");
    let out = eewgate(
        &["parse", bad.to_str().unwrap(), good.to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let objs = lines(&out);
    assert_eq!(
        objs.len(),
        2,
        "the good input after the bad one is still parsed"
    );
    assert_eq!(objs[0]["error"], "rejected");
    assert_eq!(objs[0]["reason"], "truncated");
    assert!(!objs[0]["message"].as_str().unwrap().is_empty());
    assert_eq!(objs[0]["input"], bad.to_str().unwrap());
    assert_eq!(objs[1]["serial"], 12);
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let text = std::fs::read(fixture("20250811_miyakojima_ncn903_final.txt")).unwrap();
    let out = eewgate(&["parse", "-"], Some(&text));
    assert!(out.status.success());
    let objs = lines(&out);
    assert_eq!(objs[0]["final"], true);
    assert_eq!(objs[0]["input"], "-");
}

#[test]
fn an_unreadable_file_is_an_error_line_not_a_crash() {
    let out = eewgate(&["parse", "/nonexistent/telegram.txt"], None);
    assert_eq!(out.status.code(), Some(1));
    let objs = lines(&out);
    assert_eq!(objs[0]["error"], "unreadable");
    assert!(
        objs[0]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/telegram.txt")
    );
}

#[test]
fn garbage_and_oversized_input_are_rejected_with_reasons() {
    let out = eewgate(&["parse", "-"], Some(b"hello world"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines(&out)[0]["reason"], "unknown_format");

    let huge = vec![b'7'; 2 * 1024 * 1024];
    let out = eewgate(&["parse", "-"], Some(&huge));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines(&out)[0]["reason"], "too_large");
}

#[test]
fn usage_errors_exit_two() {
    let out = eewgate(&["parse"], None);
    assert_eq!(out.status.code(), Some(2));
}
