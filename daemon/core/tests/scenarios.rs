//! Scenario tests for the alert engine: every `tests/scenarios/*.toml` is a timeline of
//! inputs (real telegrams from `tests/fixtures/telegrams/`, operator commands, drills,
//! faults, ticks) and the exact sequence of actions the engine must produce. The format
//! is described in `tests/scenarios/README.md`.
//!
//! ```text
//! cargo test -p eew-core --test scenarios                    # all scenarios
//! SCENARIO=cancel cargo test -p eew-core --test scenarios    # names containing "cancel"
//! SCENARIO_SHOW=1 cargo test -p eew-core --test scenarios -- --nocapture
//!                                 # print every run: one line per action, the decisions and
//!                                 # the end state
//! SCENARIO_PRINT=1 cargo test -p eew-core --test scenarios -- --nocapture
//!                                 # print every run as [[expect]] blocks (authoring aid:
//!                                 # review each action against the rule before pasting)
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::disallowed_methods,
    clippy::panic,
    reason = "a test harness: scenarios and fixtures are read from disk and a failure should stop the test"
)]

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta};
use eew_core::engine::{Command, DrillSpec, Engine, Fault, Input, Step, Timeline};
use eew_core::settings::Settings;
use eew_core::{Intensity, JstTime};
use serde::Deserialize;
use serde_json::Value as Json;
use toml::Value as Toml;

/// Without `until`, a scenario drains until nothing is scheduled, at most this long after
/// its last step (longer than any expiry, hold time or pulse the settings allow).
const DRAIN_HOURS: i64 = 6;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

fn telegrams_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/telegrams")
}

// ---------------------------------------------------------------------------------------
// The file format.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    description: String,
    /// TOML text, or a table, for `Settings::from_toml_str` / `from_toml_table`.
    settings: Toml,
    /// Drain deadlines up to this time after the last step (default: until idle).
    until: Option<Toml>,
    #[serde(default)]
    step: Vec<StepSpec>,
    #[serde(default)]
    expect: Vec<toml::Table>,
    #[serde(default)]
    expect_decision: Vec<toml::Table>,
    /// Compare decisions as an exact sequence (default: `expect_decision` is an ordered
    /// subsequence of the decisions).
    #[serde(default)]
    exact_decisions: bool,
    end: Option<EndSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSpec {
    at: Toml,
    /// Free text shown in failure output.
    note: Option<String>,
    telegram: Option<String>,
    /// Text substitutions applied to the telegram before parsing, for the few inputs the
    /// corpus lacks (each `[from, to]` must match exactly once).
    #[serde(default)]
    replace: Vec<[String; 2]>,
    command: Option<String>,
    drill: Option<DrillToml>,
    fault: Option<String>,
    active: Option<bool>,
    tick: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrillToml {
    class: String,
    seconds: u32,
    #[serde(default)]
    warning: bool,
    long_period_class: Option<u8>,
}

/// The engine's state once the scenario has run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndSpec {
    closed_relays: Option<Vec<u8>>,
    led: Option<String>,
    running: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------------------
// Running one scenario.

fn time_of(v: &Toml, what: &str) -> JstTime {
    let text = match v {
        Toml::String(s) => s.clone(),
        Toml::Datetime(d) => d.to_string(),
        other => panic!("{what}: expected an RFC 3339 time, found {other}"),
    };
    let t = DateTime::parse_from_rfc3339(&text)
        .unwrap_or_else(|e| panic!("{what}: {text:?} is not an RFC 3339 time with offset: {e}"));
    JstTime::from_datetime(t)
}

fn load_telegram(name: &str, replace: &[[String; 2]]) -> eew_core::Report {
    let path = telegrams_dir().join(name);
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("telegram {name}: {e}"));
    let mut text = String::from_utf8(bytes).unwrap_or_else(|_| panic!("{name}: not UTF-8"));
    for [from, to] in replace {
        let n = text.matches(from.as_str()).count();
        assert_eq!(
            n, 1,
            "{name}: replace {from:?} must match exactly once, matched {n} times"
        );
        text = text.replacen(from.as_str(), to, 1);
    }
    eew_core::parse(text.as_bytes())
        .unwrap_or_else(|r| panic!("{name}: rejected ({}): {}", r.reason.code(), r.message))
}

fn input_of(s: &StepSpec, where_: &str) -> Input {
    let given = [
        s.telegram.is_some(),
        s.command.is_some(),
        s.drill.is_some(),
        s.fault.is_some(),
        s.tick == Some(true),
    ];
    assert_eq!(
        given.iter().filter(|g| **g).count(),
        1,
        "{where_}: give exactly one of telegram, command, drill, fault, tick = true"
    );
    assert!(
        s.replace.is_empty() || s.telegram.is_some(),
        "{where_}: replace applies to a telegram"
    );
    assert!(
        s.active.is_none() || s.fault.is_some(),
        "{where_}: active applies to a fault"
    );
    if let Some(name) = &s.telegram {
        return Input::Report(Box::new(load_telegram(name, &s.replace)));
    }
    if let Some(c) = &s.command {
        return Input::Command(match c.as_str() {
            "silence" => Command::Silence,
            "reset" => Command::Reset,
            other => panic!("{where_}: unknown command {other:?} (silence, reset)"),
        });
    }
    if let Some(d) = &s.drill {
        let class = Intensity::from_xml(&d.class)
            .unwrap_or_else(|| panic!("{where_}: drill class {:?} is not a class", d.class));
        return Input::Command(Command::Drill(DrillSpec {
            class,
            seconds: d.seconds,
            long_period_class: d.long_period_class,
            warning: d.warning,
        }));
    }
    if let Some(f) = &s.fault {
        let fault = match f.as_str() {
            "link" => Fault::Link,
            "clock" => Fault::Clock,
            other => panic!("{where_}: unknown fault {other:?} (link, clock)"),
        };
        let active = s
            .active
            .unwrap_or_else(|| panic!("{where_}: a fault needs active = true/false"));
        return Input::Fault { fault, active };
    }
    Input::Tick
}

fn settings_of(v: &Toml, name: &str) -> Settings {
    let result = match v {
        Toml::String(text) => Settings::from_toml_str(text),
        Toml::Table(t) => Settings::from_toml_table(t, &[]),
        other => panic!("{name}: settings must be TOML text or a table, found {other}"),
    };
    result.unwrap_or_else(|e| panic!("{name}: invalid settings: {e}"))
}

/// Everything a run produced.
struct Run {
    actions: Vec<Json>,
    decisions: Vec<Json>,
    /// For failure output: the step (by index and name) that produced each action.
    origin: Vec<String>,
    closed_relays: Vec<u8>,
    led: String,
    running: Vec<String>,
}

fn run(scenario: &Scenario, name: &str) -> Run {
    let settings = settings_of(&scenario.settings, name);
    let mut timeline = Timeline::new(Engine::new(settings));
    let mut out = Run {
        actions: Vec::new(),
        decisions: Vec::new(),
        origin: Vec::new(),
        closed_relays: Vec::new(),
        led: String::new(),
        running: Vec::new(),
    };
    let collect = |steps: Vec<Step>, label: &str, out: &mut Run| {
        for s in steps {
            for a in &s.actions {
                out.actions.push(serde_json::to_value(a).unwrap());
                out.origin.push(label.to_owned());
            }
            for d in &s.decisions {
                out.decisions.push(serde_json::to_value(d).unwrap());
            }
        }
    };
    let mut last: Option<JstTime> = None;
    for (i, s) in scenario.step.iter().enumerate() {
        let where_ = format!("{name} step {}", i + 1);
        let at = time_of(&s.at, &where_);
        assert!(
            last.is_none_or(|l| l <= at),
            "{where_}: steps must be in time order"
        );
        last = Some(at);
        let label = describe_step(i, s);
        let input = input_of(s, &where_);
        // Deadlines due before this input fire first (as ticks), then the input.
        let ticks = timeline.advance_to(at);
        collect(ticks, &format!("tick before {label}"), &mut out);
        let own = timeline.feed(input, at);
        collect(own, &label, &mut out);
    }
    let limit = match &scenario.until {
        Some(u) => {
            let until = time_of(u, &format!("{name} until"));
            assert!(
                last.is_none_or(|l| l <= until),
                "{name}: until is before the last step"
            );
            until
        }
        None => {
            let l = last.unwrap_or_else(|| panic!("{name}: no steps"));
            JstTime(l.0 + TimeDelta::hours(DRAIN_HOURS))
        }
    };
    let drained = timeline.drain(limit);
    collect(drained, "drain", &mut out);
    if scenario.until.is_none() {
        assert!(
            timeline.deadline().is_none(),
            "{name}: still busy {DRAIN_HOURS} h after the last step (deadline {:?})",
            timeline.deadline().map(|d| d.to_string())
        );
    }
    let engine = timeline.engine();
    out.closed_relays = engine.closed_relays();
    out.led = serde_json::to_value(engine.led())
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned();
    out.running = engine.running_alarms();
    out
}

fn describe_step(i: usize, s: &StepSpec) -> String {
    let what = if let Some(t) = &s.telegram {
        if s.replace.is_empty() {
            t.clone()
        } else {
            format!("{t} (edited)")
        }
    } else if let Some(c) = &s.command {
        format!("command {c}")
    } else if let Some(d) = &s.drill {
        format!("drill {} {} s", d.class, d.seconds)
    } else if let Some(f) = &s.fault {
        format!("fault {f} active={}", s.active.unwrap_or(false))
    } else {
        "tick".to_owned()
    };
    match &s.note {
        Some(n) => format!("step {} {what} ({n})", i + 1),
        None => format!("step {} {what}", i + 1),
    }
}

// ---------------------------------------------------------------------------------------
// Comparing.

fn parse_time_str(s: &str) -> Option<DateTime<chrono::FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

/// Does the actual value match the expected one? Times compare as instants, numbers
/// numerically, tables as subsets.
fn value_matches(key: &str, expected: &Toml, actual: &Json) -> bool {
    match (expected, actual) {
        (Toml::Datetime(d), Json::String(a)) => {
            parse_time_str(&d.to_string()).is_some_and(|e| parse_time_str(a) == Some(e))
        }
        (Toml::String(e), Json::String(a)) if key == "at" || key == "arrival" => {
            match (parse_time_str(e), parse_time_str(a)) {
                (Some(e), Some(a)) => e == a,
                _ => e == a,
            }
        }
        (Toml::String(e), Json::String(a)) => e == a,
        (Toml::Integer(e), Json::Number(a)) => {
            #[allow(clippy::cast_precision_loss, reason = "small test numbers")]
            let e = *e as f64;
            a.as_f64().is_some_and(|a| (a - e).abs() < 1e-6)
        }
        (Toml::Float(e), Json::Number(a)) => a.as_f64().is_some_and(|a| (a - e).abs() < 1e-6),
        (Toml::Boolean(e), Json::Bool(a)) => e == a,
        (Toml::Table(e), Json::Object(_)) => table_matches(e, actual).is_empty(),
        (Toml::Array(e), Json::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| value_matches(key, e, a))
        }
        (Toml::String(e), Json::Null) => e == "none",
        _ => false,
    }
}

/// The keys of `expected` that `actual` does not match. A key `k_contains = "text"`
/// checks that string `k` contains the text; the value `"none"` matches an absent or null
/// key.
fn table_matches(expected: &toml::Table, actual: &Json) -> Vec<String> {
    let mut wrong = Vec::new();
    for (key, e) in expected {
        if let Some(base) = key.strip_suffix("_contains") {
            let ok = match (e, actual.get(base)) {
                (Toml::String(needle), Some(Json::String(hay))) => hay.contains(needle.as_str()),
                _ => false,
            };
            if !ok {
                wrong.push(key.clone());
            }
            continue;
        }
        let a = actual.get(key).unwrap_or(&Json::Null);
        if !value_matches(key, e, a) {
            wrong.push(key.clone());
        }
    }
    wrong
}

fn short_time(v: Option<&Json>) -> String {
    let Some(s) = v.and_then(Json::as_str) else {
        return "-".to_owned();
    };
    match parse_time_str(s) {
        Some(t) => t.format("%m-%d %H:%M:%S%.3f").to_string(),
        None => s.to_owned(),
    }
}

fn field(a: &Json, key: &str) -> String {
    match a.get(key) {
        None | Some(Json::Null) => "-".to_owned(),
        Some(Json::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// One action on one line, the fields people look at first.
fn action_line(a: &Json) -> String {
    let mut extra = Vec::new();
    for key in ["pulse_ms", "seconds", "pattern", "state", "driving"] {
        if let Some(v) = a.get(key).filter(|v| !v.is_null()) {
            extra.push(format!("{key}={v}"));
        }
    }
    if let Some(Json::String(t)) = a.get("text_ja") {
        extra.push(format!("text_ja={t:?}"));
    }
    let flags: Vec<&str> = a
        .get("flags")
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.as_bool() == Some(true))
                .map(|(k, _)| k.as_str())
                .collect()
        })
        .unwrap_or_default();
    if !flags.is_empty() {
        extra.push(format!("flags={}", flags.join("+")));
    }
    format!(
        "{} {:<8} {:<9} {:<10} {:<15} s{:<3} {:<8} class={:<3} lp={} warn={:<5} {}",
        short_time(a.get("at")),
        field(a, "output"),
        field(a, "action"),
        field(a, "cause"),
        field(a, "event_id"),
        field(a, "serial"),
        field(a, "label"),
        field(a, "intensity_class"),
        field(a, "long_period_class"),
        field(a, "warning"),
        extra.join(" ")
    )
}

fn expected_line(e: &toml::Table) -> String {
    e.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Compares a sequence: the count, then each listed key. Returns a readable report of
/// every difference, or `None` when they match.
fn compare_sequence(
    what: &str,
    expected: &[toml::Table],
    actual: &[Json],
    origin: Option<&[String]>,
    line: fn(&Json) -> String,
) -> Option<String> {
    let mut problems = Vec::new();
    if expected.len() != actual.len() {
        problems.push(format!(
            "expected {} {what}, got {}",
            expected.len(),
            actual.len()
        ));
    }
    for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
        let wrong = table_matches(e, a);
        if !wrong.is_empty() {
            problems.push(format!(
                "{what} #{}: {} differ",
                i + 1,
                wrong
                    .iter()
                    .map(|k| {
                        let base = k.strip_suffix("_contains").unwrap_or(k);
                        format!(
                            "{k} (expected {}, got {})",
                            e.get(k).map_or("?".to_owned(), ToString::to_string),
                            a.get(base).map_or("absent".to_owned(), ToString::to_string)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if problems.is_empty() {
        return None;
    }
    let mut out = String::new();
    for p in &problems {
        let _ = writeln!(out, "  - {p}");
    }
    let _ = writeln!(out, "  expected {what}:");
    for (i, e) in expected.iter().enumerate() {
        let mark = match actual.get(i) {
            Some(a) if table_matches(e, a).is_empty() => ' ',
            _ => '✗',
        };
        let _ = writeln!(out, "   {mark}{:>3}  {}", i + 1, expected_line(e));
    }
    let _ = writeln!(out, "  actual {what}:");
    let mut last_origin = "";
    for (i, a) in actual.iter().enumerate() {
        if let Some(o) = origin.and_then(|o| o.get(i))
            && o != last_origin
        {
            let _ = writeln!(out, "        ── {o}");
            last_origin = o;
        }
        let _ = writeln!(out, "    {:>3}  {}", i + 1, line(a));
    }
    Some(out)
}

fn decision_line(d: &Json) -> String {
    format!(
        "{:<16} {:<15} s{:<3} {:<8} {}",
        field(d, "outcome"),
        field(d, "event_id"),
        field(d, "serial"),
        field(d, "label"),
        field(d, "detail")
    )
}

/// `expected` appears in `actual` in order (others may lie between).
fn compare_subsequence(expected: &[toml::Table], actual: &[Json]) -> Option<String> {
    let mut next = 0;
    for (i, e) in expected.iter().enumerate() {
        match actual
            .iter()
            .enumerate()
            .skip(next)
            .find(|(_, a)| table_matches(e, a).is_empty())
        {
            Some((j, _)) => next = j + 1,
            None => {
                let mut out = format!(
                    "  - expected decision #{} ({}) not found in order after decision #{next}\n  actual decisions:\n",
                    i + 1,
                    expected_line(e)
                );
                for (j, a) in actual.iter().enumerate() {
                    let _ = writeln!(out, "    {:>3}  {}", j + 1, decision_line(a));
                }
                return Some(out);
            }
        }
    }
    None
}

fn check(scenario: &Scenario, run: &Run) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(f) = compare_sequence(
        "actions",
        &scenario.expect,
        &run.actions,
        Some(&run.origin),
        action_line,
    ) {
        failures.push(f);
    }
    if !scenario.expect_decision.is_empty() {
        let f = if scenario.exact_decisions {
            compare_sequence(
                "decisions",
                &scenario.expect_decision,
                &run.decisions,
                None,
                decision_line,
            )
        } else {
            compare_subsequence(&scenario.expect_decision, &run.decisions)
        };
        failures.extend(f);
    }
    if let Some(end) = &scenario.end {
        if let Some(r) = &end.closed_relays
            && *r != run.closed_relays
        {
            failures.push(format!(
                "  - at the end: closed relays {:?}, expected {r:?}\n",
                run.closed_relays
            ));
        }
        if let Some(l) = &end.led
            && *l != run.led
        {
            failures.push(format!(
                "  - at the end: LED {:?}, expected {l:?}\n",
                run.led
            ));
        }
        if let Some(r) = &end.running
            && *r != run.running
        {
            failures.push(format!(
                "  - at the end: running alarms {:?}, expected {r:?}\n",
                run.running
            ));
        }
    }
    failures
}

/// The run as `[[expect]]` blocks, for authoring (`SCENARIO_PRINT=1`).
fn as_expect_blocks(run: &Run) -> String {
    let mut out = String::new();
    for (a, o) in run.actions.iter().zip(&run.origin) {
        let _ = writeln!(out, "\n# {o}\n[[expect]]");
        for key in [
            "at",
            "output",
            "action",
            "cause",
            "event_id",
            "serial",
            "label",
            "training",
            "intensity_class",
            "warning",
            "pulse_ms",
            "seconds",
            "pattern",
            "state",
            "driving",
            "text_ja",
            "flags",
        ] {
            let Some(v) = a.get(key).filter(|v| !v.is_null()) else {
                continue;
            };
            let v = match (key, v) {
                ("at", Json::String(s)) => s.clone(),
                (_, Json::String(s)) => format!("{s:?}"),
                (_, Json::Object(m)) => format!(
                    "{{ {} }}",
                    m.iter()
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (_, v) => v.to_string(),
            };
            let _ = writeln!(out, "{key} = {v}");
        }
    }
    out
}

/// The run as one line per action and decision (`SCENARIO_SHOW`).
fn as_lines(run: &Run) -> String {
    let mut out = String::new();
    let mut last_origin = "";
    for (a, o) in run.actions.iter().zip(&run.origin) {
        if o != last_origin {
            let _ = writeln!(out, "      ── {o}");
            last_origin = o;
        }
        let _ = writeln!(out, "  {}", action_line(a));
    }
    let _ = writeln!(out, "  decisions:");
    for d in &run.decisions {
        let _ = writeln!(out, "  {}", decision_line(d));
    }
    let _ = writeln!(
        out,
        "  end: closed relays {:?}, LED {}, running {:?}",
        run.closed_relays, run.led, run.running
    );
    out
}

fn scenario_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_scenario_produces_exactly_its_expected_actions() {
    let filter = std::env::var("SCENARIO").ok();
    let print = std::env::var_os("SCENARIO_PRINT").is_some();
    let show = std::env::var_os("SCENARIO_SHOW").is_some();
    let files = scenario_files();
    assert!(
        filter.is_some() || files.len() >= 20,
        "expected at least 20 scenarios, found {}",
        files.len()
    );
    let mut report = String::new();
    let mut ran = 0;
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let text = fs::read_to_string(path).unwrap();
        let scenario: Scenario =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{name}.toml: {e}"));
        assert!(
            !scenario.description.trim().is_empty(),
            "{name}: description is empty"
        );
        assert!(
            !scenario.expect.is_empty() || scenario.end.is_some(),
            "{name}: nothing is expected; list [[expect]] actions (or an [end] state)"
        );
        let run = run(&scenario, &name);
        ran += 1;
        if print {
            println!("==== {name}{}", as_expect_blocks(&run));
        }
        if show {
            println!("==== {name}\n{}", as_lines(&run));
        }
        let failures = check(&scenario, &run);
        if !failures.is_empty() {
            let _ = writeln!(
                report,
                "\n■ {name}: {}\n{}",
                scenario.description.lines().next().unwrap_or(""),
                failures.concat()
            );
        }
    }
    assert!(ran > 0, "no scenario matched SCENARIO={filter:?}");
    assert!(report.is_empty(), "scenarios failed:\n{report}");
}

/// The runner itself: a deliberately wrong expectation is reported with both sequences.
#[test]
fn a_mismatch_is_reported_with_both_sequences() {
    let expected: Vec<toml::Table> =
        vec![toml::from_str("output = \"relay:1\"\naction = \"off\"").unwrap()];
    let actual = vec![
        serde_json::json!({"at": "2024-04-17T23:14:59+09:00", "output": "relay:1", "action": "on", "cause": "start"}),
    ];
    let report = compare_sequence("actions", &expected, &actual, None, action_line).unwrap();
    assert!(
        report.contains("action (expected \"off\", got \"on\")"),
        "{report}"
    );
    assert!(report.contains("expected actions:") && report.contains("actual actions:"));
    let none = compare_sequence(
        "actions",
        &[toml::from_str("action = \"on\"\nat = 2024-04-17T23:14:59.000+09:00").unwrap()],
        &actual,
        None,
        action_line,
    );
    assert!(none.is_none(), "{none:?}");
}
