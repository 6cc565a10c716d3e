//! A recorded report replayed as a local drill (`Input::DrillReport`, the web UI's drill
//! of a real past event): labelled `drill` on every action whatever the report's status,
//! kept apart from a real event of the same id, and refused when drills are not allowed.

#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test crate: fixtures are read from disk and a broken fixture should stop the run"
)]

use std::path::Path;

use eew_core::Report;
use eew_core::engine::{Engine, Input, Label};
use eew_core::settings::Settings;

fn osaka_warning() -> Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/telegrams/20180618_osaka_ncn011_warning.txt");
    eew_core::parse(&std::fs::read(path).unwrap()).unwrap()
}

fn settings(drill: bool) -> Settings {
    Settings::from_toml_str(&format!(
        "[site]\nlat = 34.69\nlon = 135.50\narv400 = 1.5\narea_code = \"600\"\n\
         [alert]\ndrill = {drill}\n\
         [[outputs.relay]]\nid = 1\nmin_class = \"4\"\ninclude = {{ drill = true }}\n\
         [[outputs.relay]]\nid = 2\nmin_class = \"4\"\n"
    ))
    .unwrap()
}

#[test]
fn a_real_report_replayed_as_a_drill_acts_labelled_on_drill_outputs_only() {
    let report = osaka_warning();
    let now = report.issued_at.unwrap();
    let mut engine = Engine::new(settings(true));
    let step = engine.step(Input::DrillReport(Box::new(report.clone())), now);
    let outcomes: Vec<&str> = step.decisions.iter().map(|d| d.outcome).collect();
    assert_eq!(outcomes, ["accepted", "started"], "{:?}", step.decisions);
    assert!(step.decisions.iter().all(|d| d.label == Label::Drill));
    assert!(!step.actions.is_empty());
    for a in &step.actions {
        assert_eq!(a.label, Label::Drill, "{a:?}");
        assert!(
            a.training,
            "every drill action is marked as not real: {a:?}"
        );
    }
    let relays: Vec<String> = step
        .actions
        .iter()
        .filter(|a| a.output.to_string().starts_with("relay:"))
        .map(|a| a.output.to_string())
        .collect();
    assert_eq!(relays, ["relay:1"], "only the contact that includes drills");
    let current = engine.current_alarm().unwrap();
    assert_eq!(current.label, Label::Drill);
    assert_eq!(current.event_id, report.event_id.as_str());

    // The same report, real, is its own event: accepted, not a duplicate of the drill.
    let step = engine.step(Input::Report(Box::new(report)), now);
    let outcomes: Vec<&str> = step.decisions.iter().map(|d| d.outcome).collect();
    assert_eq!(outcomes, ["accepted", "started"], "{:?}", step.decisions);
    assert!(step.actions.iter().all(|a| a.label == Label::Real));
    assert_eq!(engine.running_alarms().len(), 2);
}

#[test]
fn no_drill_when_drills_are_not_allowed() {
    let report = osaka_warning();
    let now = report.issued_at.unwrap();
    let mut engine = Engine::new(settings(false));
    let step = engine.step(Input::DrillReport(Box::new(report)), now);
    assert!(step.actions.is_empty(), "{:?}", step.actions);
    assert_eq!(step.decisions.len(), 1);
    assert_eq!(step.decisions[0].outcome, "drill_disabled");
    assert!(engine.current_alarm().is_none());
}

/// A synthetic drill is named after the JST second it started, so its id stays its own in
/// history (the drill report's key) across restarts of the daemon's tasks; a second one
/// in the same second gets a suffix, and every action carries the drill's id.
#[test]
fn synthetic_drills_are_named_after_their_start_and_never_share_an_id() {
    use eew_core::engine::{Command, DrillSpec};
    let now = osaka_warning().issued_at.unwrap();
    let mut engine = Engine::new(settings(true));
    let drill = |engine: &mut Engine, at| {
        let step = engine.step(
            Input::Command(Command::Drill(DrillSpec {
                class: eew_core::Intensity::FiveLower,
                seconds: 20,
                long_period_class: None,
                warning: false,
            })),
            at,
        );
        let started: Vec<&Option<String>> = step
            .decisions
            .iter()
            .filter(|d| d.outcome == "drill_started")
            .map(|d| &d.event_id)
            .collect();
        let [Some(id)] = started.as_slice() else {
            panic!("one drill started: {:?}", step.decisions)
        };
        assert!(!step.actions.is_empty());
        assert!(
            step.actions
                .iter()
                .all(|a| a.event_id.as_deref() == Some(id.as_str())),
            "{:?}",
            step.actions
        );
        id.clone()
    };
    let stamp = now.0.format("%Y%m%d%H%M%S").to_string();
    let first = drill(&mut engine, now);
    assert_eq!(first, format!("drill-{stamp}"));
    let second = drill(&mut engine, now);
    assert_eq!(second, format!("drill-{stamp}-2"));
    // A new engine (the daemon's tasks restarted) a second later: its own id again.
    let mut restarted = Engine::new(settings(true));
    let later = eew_core::JstTime(now.0 + chrono::TimeDelta::seconds(1));
    let third = drill(&mut restarted, later);
    assert_eq!(third, format!("drill-{}", later.0.format("%Y%m%d%H%M%S")));
    assert_ne!(third, first);
}
